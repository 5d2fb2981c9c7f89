//! The PromQL queries `calibrate` runs, for each of the two sets of names Knative has exported.
//!
//! Owns: the metric and label names of each set, verified against knative/serving's code, the
//! text of every query, and the key that names a query's file in a dump (`<key>.json`).
//!
//! - **Knative v1.18 and earlier** (OpenCensus; knative/pkg's Prometheus exporter prefixes the
//!   process's component, `prom.Options{Namespace: config.component}`, release-1.18
//!   `vendor/knative.dev/pkg/metrics/prometheus_exporter.go:46`): the queue-proxy (component
//!   `revision`, `pkg/queue/sharedmain/main.go:441`) exports `revision_request_count` (tag keys
//!   `pod_name`, `container_name`, `response_code`, `response_code_class`, `route_tag`,
//!   `pkg/queue/request_metric.go:79`) and `revision_app_request_latencies` (milliseconds,
//!   whole ones: `latency.Milliseconds()`; buckets 5, 10, 20, 40, ... 100000,
//!   `request_metric.go:37-60`; no `route_tag`), with the resource labels `namespace_name`,
//!   `service_name`, `configuration_name`, `revision_name` (`pkg/metrics/key.go`); the KPA in
//!   the autoscaler (component `autoscaler`, `cmd/autoscaler/main.go:67`) exports
//!   `autoscaler_requested_pods` and `autoscaler_actual_pods` (ready pods) with the same four
//!   labels (`pkg/reconciler/autoscaling/kpa/metrics.go:27-46`, `kpa.go:243`), and its decider
//!   `autoscaler_desired_pods` (`pkg/autoscaler/scaling/metrics.go:27-30`).
//! - **Knative v1.19 and later** (OpenTelemetry, exported with
//!   `otlptranslator.UnderscoreEscapingWithSuffixes`: dots become underscores, the unit `s`
//!   becomes `_seconds`, `{pod}`-style units are dropped; knative/pkg
//!   `observability/metrics/prometheus_enabled.go:35-37`): the queue-proxy's otelhttp
//!   `http.server.request.duration` (`http_server_request_duration_seconds_*`, with the
//!   `kn.route.tag` attribute, `pkg/queue/routetag_handler.go:39-47`,
//!   `pkg/queue/sharedmain/handlers.go:98-105`) and `kn.serving.invocation.duration`
//!   (`kn_serving_invocation_duration_seconds_*`, seconds, buckets 0.005 ... 10,
//!   `pkg/queue/request_metric.go:30-66`). The queue-proxy's `kn.revision.name`,
//!   `kn.service.name` and `k8s.namespace.name` are *resource* attributes
//!   (`pkg/queue/sharedmain/otel.go:90-130`), which the exporter puts on `target_info`, not on
//!   each series: the queries join `target_info` on `job` and `instance`. The autoscaler's
//!   `kn.revision.pods.requested` and `kn.revision.pods.count` (ready pods) carry
//!   `kn.revision.name`, `kn.service.name`, `k8s.namespace.name` as metric attributes
//!   (`pkg/reconciler/autoscaling/kpa/metrics.go:42-100`, `kpa.go:250-255`), as does the
//!   decider's `kn.revision.pods.desired` (`pkg/autoscaler/scaling/metrics.go:85-89`,
//!   `cmd/autoscaler/main.go:256-262`).
//!
//! Must not: run queries (the caller's `Source` does).

use crate::model::time::SimDuration;

/// Which names a Prometheus has for Knative's metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameSet {
    /// Knative v1.18 and earlier: OpenCensus names (`revision_request_count`, ...).
    V118,
    /// Knative v1.19 and later: OpenTelemetry names (`kn_serving_invocation_duration_seconds`).
    Otel,
}

/// What a query measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryKind {
    /// Request rate by revision and route tag (req/s).
    Requests,
    /// The application's latency histogram: bucket rates by revision and `le`.
    Latency,
    /// Ready pods by revision.
    PodsReady,
    /// Pods the autoscaler requested from Kubernetes, by revision.
    PodsRequested,
    /// Pods the autoscaler's decider wants (before the KPA's min/max bounds), by revision: the
    /// stand-in for `PodsRequested` when a server does not have it.
    PodsDesired,
}

impl QueryKind {
    pub const ALL: [QueryKind; 5] = [
        QueryKind::Requests,
        QueryKind::Latency,
        QueryKind::PodsReady,
        QueryKind::PodsRequested,
        QueryKind::PodsDesired,
    ];

    fn slug(self) -> &'static str {
        match self {
            QueryKind::Requests => "requests",
            QueryKind::Latency => "latency",
            QueryKind::PodsReady => "pods-ready",
            QueryKind::PodsRequested => "pods-requested",
            QueryKind::PodsDesired => "pods-desired",
        }
    }
}

impl NameSet {
    /// In the order `calibrate` tries them.
    pub const ALL: [NameSet; 2] = [NameSet::V118, NameSet::Otel];

    /// How reports name the set.
    pub fn describe(self) -> &'static str {
        match self {
            NameSet::V118 => "Knative v1.18 (OpenCensus) names",
            NameSet::Otel => "Knative v1.19+ (OpenTelemetry) names",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            NameSet::V118 => "v118",
            NameSet::Otel => "otel",
        }
    }

    /// The label naming a series' revision.
    pub fn revision_label(self) -> &'static str {
        match self {
            NameSet::V118 => "revision_name",
            NameSet::Otel => "kn_revision_name",
        }
    }

    /// The label naming the route tag a request came through.
    pub fn tag_label(self) -> &'static str {
        match self {
            NameSet::V118 => "route_tag",
            NameSet::Otel => "kn_route_tag",
        }
    }

    /// The route-tag values that are not a tag: the default route, a tag header the route does
    /// not know, tag-header routing disabled (release-1.18 `pkg/queue/request_metric.go`
    /// `defaultTagName`...; main `pkg/queue/routetag_handler.go:50-54`), and none.
    pub fn is_tag(self, value: &str) -> bool {
        let sentinels: &[&str] = match self {
            NameSet::V118 => &["", "DEFAULT", "UNDEFINED", "DISABLED"],
            NameSet::Otel => &["", "kn:default", "kn:undefined", "kn:disabled"],
        };
        !sentinels.contains(&value)
    }

    /// Seconds per unit of the latency histogram's `le` bounds.
    pub fn latency_unit_s(self) -> f64 {
        match self {
            NameSet::V118 => 1e-3,
            NameSet::Otel => 1.0,
        }
    }
}

/// One query of one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub set: NameSet,
    pub kind: QueryKind,
    /// The PromQL text.
    pub promql: String,
}

impl Query {
    /// Names the query's file in a dump: `<key>.json` (and optionally `<key>.query`, the PromQL
    /// text it was run with).
    pub fn key(&self) -> String {
        format!("{}-{}", self.set.slug(), self.kind.slug())
    }
}

/// The rate window `calibrate` uses for a query step: four steps, so that a rate has at least
/// two samples whenever the step is at least the scrape interval / 2.
pub fn rate_window(step: SimDuration) -> SimDuration {
    SimDuration(step.0 * 4)
}

/// A duration as PromQL writes it (`1m`, `15s`, `500ms`).
pub fn promql_duration(d: SimDuration) -> String {
    let ms = d.0 / 1_000_000;
    if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A PromQL string literal (double quotes, backslash escapes).
fn literal(s: &str) -> String {
    format!("{s:?}")
}

/// The query of `kind` in `set` for the Service `namespace/service`, with rate window `window`.
pub fn query(
    set: NameSet,
    kind: QueryKind,
    namespace: &str,
    service: &str,
    window: SimDuration,
) -> Query {
    let w = promql_duration(window);
    let (ns, svc) = (literal(namespace), literal(service));
    let promql = match set {
        NameSet::V118 => {
            let sel = format!("{{namespace_name={ns}, service_name={svc}}}");
            match kind {
                QueryKind::Requests => format!(
                    "sum by (revision_name, route_tag) (rate(revision_request_count{sel}[{w}]))"
                ),
                QueryKind::Latency => format!(
                    "sum by (revision_name, le) (rate(revision_app_request_latencies_bucket{sel}[{w}]))"
                ),
                QueryKind::PodsReady => {
                    format!("sum by (revision_name) (autoscaler_actual_pods{sel})")
                }
                QueryKind::PodsRequested => {
                    format!("sum by (revision_name) (autoscaler_requested_pods{sel})")
                }
                QueryKind::PodsDesired => {
                    format!("sum by (revision_name) (autoscaler_desired_pods{sel})")
                }
            }
        }
        NameSet::Otel => {
            let join = format!(
                "* on (job, instance) group_left (kn_revision_name) target_info{{k8s_namespace_name={ns}, kn_service_name={svc}}}"
            );
            let sel = format!("{{k8s_namespace_name={ns}, kn_service_name={svc}}}");
            match kind {
                QueryKind::Requests => format!(
                    "sum by (kn_revision_name, kn_route_tag) (rate(http_server_request_duration_seconds_count[{w}]) {join})"
                ),
                QueryKind::Latency => format!(
                    "sum by (kn_revision_name, le) (rate(kn_serving_invocation_duration_seconds_bucket[{w}]) {join})"
                ),
                QueryKind::PodsReady => {
                    format!("sum by (kn_revision_name) (kn_revision_pods_count{sel})")
                }
                QueryKind::PodsRequested => {
                    format!("sum by (kn_revision_name) (kn_revision_pods_requested{sel})")
                }
                QueryKind::PodsDesired => {
                    format!("sum by (kn_revision_name) (kn_revision_pods_desired{sel})")
                }
            }
        }
    };
    Query { set, kind, promql }
}

/// The range window of a query's text: the duration inside its last `[...]` (`None` when there
/// is none or it does not parse), to place a rate at the middle of the window it averages.
pub fn window_of(promql: &str) -> Option<SimDuration> {
    let end = promql.rfind(']')?;
    let start = promql[..end].rfind('[')?;
    let text = &promql[start + 1..end];
    // PromQL's durations are Go's plus d, w, y; the queries calibrate runs use ms, s, m, h.
    crate::routing::duration::parse_duration(text)
        .ok()
        .map(SimDuration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_use_each_sets_names() {
        let w = SimDuration::from_secs(60);
        // (set, kind, the query's text, its dump key)
        let cases = [
            (
                NameSet::V118,
                QueryKind::Requests,
                r#"sum by (revision_name, route_tag) (rate(revision_request_count{namespace_name="default", service_name="hello"}[1m]))"#,
                "v118-requests",
            ),
            (
                NameSet::V118,
                QueryKind::Latency,
                r#"sum by (revision_name, le) (rate(revision_app_request_latencies_bucket{namespace_name="default", service_name="hello"}[1m]))"#,
                "v118-latency",
            ),
            (
                NameSet::V118,
                QueryKind::PodsReady,
                r#"sum by (revision_name) (autoscaler_actual_pods{namespace_name="default", service_name="hello"})"#,
                "v118-pods-ready",
            ),
            (
                NameSet::V118,
                QueryKind::PodsRequested,
                r#"sum by (revision_name) (autoscaler_requested_pods{namespace_name="default", service_name="hello"})"#,
                "v118-pods-requested",
            ),
            (
                NameSet::Otel,
                QueryKind::Requests,
                r#"sum by (kn_revision_name, kn_route_tag) (rate(http_server_request_duration_seconds_count[1m]) * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="default", kn_service_name="hello"})"#,
                "otel-requests",
            ),
            (
                NameSet::Otel,
                QueryKind::Latency,
                r#"sum by (kn_revision_name, le) (rate(kn_serving_invocation_duration_seconds_bucket[1m]) * on (job, instance) group_left (kn_revision_name) target_info{k8s_namespace_name="default", kn_service_name="hello"})"#,
                "otel-latency",
            ),
            (
                NameSet::Otel,
                QueryKind::PodsReady,
                r#"sum by (kn_revision_name) (kn_revision_pods_count{k8s_namespace_name="default", kn_service_name="hello"})"#,
                "otel-pods-ready",
            ),
            (
                NameSet::Otel,
                QueryKind::PodsRequested,
                r#"sum by (kn_revision_name) (kn_revision_pods_requested{k8s_namespace_name="default", kn_service_name="hello"})"#,
                "otel-pods-requested",
            ),
        ];
        for (set, kind, text, key) in cases {
            let q = query(set, kind, "default", "hello", w);
            assert_eq!(q.promql, text);
            assert_eq!(q.key(), key);
        }
        // a name with a quote is escaped, not injected
        let q = query(NameSet::V118, QueryKind::PodsReady, "a\"b", "s", w);
        assert!(
            q.promql.contains(r#"namespace_name="a\"b""#),
            "{}",
            q.promql
        );
    }

    #[test]
    fn tags_and_windows() {
        // (set, route tag value, is a tag)
        let cases = [
            (NameSet::V118, "candidate", true),
            (NameSet::V118, "DEFAULT", false),
            (NameSet::V118, "DISABLED", false),
            (NameSet::V118, "", false),
            (NameSet::Otel, "candidate", true),
            (NameSet::Otel, "kn:default", false),
            (NameSet::Otel, "kn:undefined", false),
            // the v1.18 sentinel is a (strange) tag name under the OTel names
            (NameSet::Otel, "DEFAULT", true),
        ];
        for (set, value, want) in cases {
            assert_eq!(set.is_tag(value), want, "{set:?} {value:?}");
        }
        // (step, rate window as PromQL writes it)
        let windows = [(15, "1m"), (2, "8s"), (45, "3m")];
        for (step, want) in windows {
            let w = rate_window(SimDuration::from_secs(step));
            assert_eq!(promql_duration(w), want);
            let q = query(NameSet::Otel, QueryKind::Latency, "n", "s", w);
            assert_eq!(window_of(&q.promql), Some(w), "{}", q.promql);
        }
        assert_eq!(promql_duration(SimDuration::from_millis(1500)), "1500ms");
        assert_eq!(window_of("sum(up)"), None);
    }
}
