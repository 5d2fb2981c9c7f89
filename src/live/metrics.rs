//! Knative's metrics in a live run: the names, labels and buckets a Knative v1.18 cluster
//! exports through its Prometheus exporter, served at `/metrics` on 127.0.0.1, and the
//! Prometheus `file_sd` target list of every endpoint (docs/metrics.md).
//!
//! Owns: the metric families of each component (`QueueProxyMetrics` per pod,
//! `ActivatorMetrics` per activator replica, `AutoscalerMetrics`), the `/metrics` servers
//! (`Endpoint`) and the target list (`Targets`). The values are recorded by the components
//! themselves where Knative records them (`live::pod`, `live::gateway`, `live::world`); this
//! module only names them. The registry and its text format are `report::prometheus`.
//!
//! Names (knative.dev/pkg `metrics/prometheus_exporter.go:46`: the exporter's namespace is the
//! component, joined with `_`): `revision_*` from the queue-proxy (component `"revision"`,
//! serving `pkg/queue/sharedmain/main.go:441`), `activator_*`, `autoscaler_*`. Counters keep
//! their view's name (`request_count`, no `_total`: contrib.go.opencensus.io/exporter/prometheus
//! writes a `CounterValue` under the view name). Resource labels (`namespace_name`,
//! `service_name`, `configuration_name`, `revision_name`: serving `pkg/metrics/tags.go:117-128`)
//! become constant labels of every series, the view's tag keys the others; a tag key the
//! recording context lacks is exported with an empty value.
//!
//! Latencies are in scenario milliseconds, truncated to whole milliseconds as Knative's
//! `float64(latency.Milliseconds())` does; with `--time-scale k` a rate Prometheus computes per
//! wall second is `k` times the scenario's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::{Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::http::{full, Body};
use crate::model::time::SimDuration;
use crate::report::prometheus::{labels, FamilyId, Labels, Registry};
use crate::report::write::{write_atomic, WriteError};

/// The latency histograms' upper bounds, in milliseconds: serving
/// `pkg/queue/request_metric.go:37-39` (queue-proxy) and
/// `pkg/activator/handler/metrics.go:44` (activator), the same list.
pub const LATENCY_BUCKETS_MS: [f64; 26] = [
    5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0,
    500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0,
];

/// The `container_name` of the queue-proxy's series (`PodRevisionContext(pod, "queue-proxy",
/// ...)`, request_metric.go:97).
pub const QUEUE_PROXY_CONTAINER: &str = "queue-proxy";
/// The activator's `container_name` (`activator.Name`, pkg/activator/activator.go:21).
pub const ACTIVATOR_CONTAINER: &str = "activator";

/// A revision's resource labels (serving `pkg/metrics/tags.go:117-128`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionLabels {
    pub namespace: String,
    /// The service; `"unknown"` when empty (`valueOrUnknown`, tags.go:47-52).
    pub service: String,
    /// The configuration: a Knative Service's configuration has the service's name.
    pub configuration: String,
    pub revision: String,
}

impl RevisionLabels {
    pub fn new(namespace: &str, service: &str, revision: &str) -> Self {
        RevisionLabels {
            namespace: namespace.to_string(),
            service: if service.is_empty() {
                "unknown".into()
            } else {
                service.to_string()
            },
            configuration: service.to_string(),
            revision: revision.to_string(),
        }
    }

    fn labels(&self) -> Labels {
        labels([
            ("namespace_name", self.namespace.as_str()),
            ("service_name", self.service.as_str()),
            ("configuration_name", self.configuration.as_str()),
            ("revision_name", self.revision.as_str()),
        ])
    }
}

/// `response_code` and `response_code_class` (`AugmentWithResponse`, tags.go:130-154).
fn with_response(mut l: Labels, status: u16) -> Labels {
    l.insert("response_code".into(), status.to_string());
    l.insert("response_code_class".into(), format!("{}xx", status / 100));
    l
}

/// Milliseconds as Knative records them: `float64(latency.Milliseconds())`, truncated.
fn whole_ms(latency: SimDuration) -> f64 {
    (latency.as_secs_f64() * 1000.0).floor().max(0.0)
}

/// The route tag the queue-proxy records (serving `pkg/queue/request_metric.go:210-230`):
/// from the `Knative-Serving-Tag` and `Knative-Serving-Default-Route` request headers, which
/// the ingress appends (`routing::ingress`).
pub fn route_tag(tag_header: Option<&str>, default_route: Option<&str>) -> String {
    match (tag_header.filter(|t| !t.is_empty()), default_route) {
        (None, None) | (None, Some("")) => "DISABLED".into(),
        (None, Some(_)) => "DEFAULT".into(),
        (Some(_), Some("true")) => "UNDEFINED".into(),
        (Some(tag), _) => tag.to_string(),
    }
}

/// A pod's queue-proxy metrics (serving `pkg/queue/request_metric.go`).
pub struct QueueProxyMetrics {
    registry: Arc<Registry>,
    /// Resource labels, `pod_name` and `container_name`.
    base: Labels,
    /// `base` with the empty response labels `revision_queue_depth` is exported with.
    depth_labels: Labels,
    request_count: FamilyId,
    request_latencies: FamilyId,
    app_request_count: FamilyId,
    app_request_latencies: FamilyId,
    queue_depth: FamilyId,
}

impl QueueProxyMetrics {
    pub fn new(rev: &RevisionLabels, pod: &str) -> Self {
        let registry = Arc::new(Registry::new());
        let mut base = rev.labels();
        base.insert("pod_name".into(), pod.to_string());
        base.insert("container_name".into(), QUEUE_PROXY_CONTAINER.into());
        // Descriptions as the views' (request_metric.go:41-61, 143-156).
        let request_count = registry.counter(
            "revision_request_count",
            "The number of requests that are routed to queue-proxy",
        );
        let request_latencies = registry.histogram(
            "revision_request_latencies",
            "The response time in millisecond",
            &LATENCY_BUCKETS_MS,
        );
        let app_request_count = registry.counter(
            "revision_app_request_count",
            "The number of requests that are routed to user-container",
        );
        let app_request_latencies = registry.histogram(
            "revision_app_request_latencies",
            "The response time in millisecond",
            &LATENCY_BUCKETS_MS,
        );
        let queue_depth = registry.gauge(
            "revision_queue_depth",
            "The number of items queued at this queue proxy.",
        );
        let mut depth_labels = base.clone();
        depth_labels.insert("response_code".into(), String::new());
        depth_labels.insert("response_code_class".into(), String::new());
        QueueProxyMetrics {
            registry,
            base,
            depth_labels,
            request_count,
            request_latencies,
            app_request_count,
            app_request_latencies,
            queue_depth,
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A request left the queue-proxy (`requestMetricsHandler`, request_metric.go:108-136:
    /// every request but probes, with its status, route tag and time since it entered).
    pub fn request(&self, status: u16, route_tag: &str, latency: SimDuration) {
        let mut l = with_response(self.base.clone(), status);
        l.insert("route_tag".into(), route_tag.to_string());
        self.registry.count_and_observe(
            self.request_count,
            self.request_latencies,
            &l,
            whole_ms(latency),
        );
    }

    /// The application answered a request the breaker let through
    /// (`appRequestMetricsHandler`, request_metric.go:174-202: inside the breaker, from the
    /// moment the request got its slot).
    pub fn app_request(&self, status: u16, latency: SimDuration) {
        let l = with_response(self.base.clone(), status);
        self.registry.count_and_observe(
            self.app_request_count,
            self.app_request_latencies,
            &l,
            whole_ms(latency),
        );
    }

    /// The breaker's in-flight count as a request gets its slot (request_metric.go:178-180;
    /// only with a breaker, i.e. containerConcurrency > 0). Recorded without response tags, so
    /// they are exported empty.
    pub fn queue_depth(&self, in_flight: u32) {
        self.registry
            .set(self.queue_depth, &self.depth_labels, f64::from(in_flight));
    }
}

/// One activator replica's metrics (serving `pkg/activator/handler/metrics.go`).
pub struct ActivatorMetrics {
    registry: Arc<Registry>,
    /// Per revision index: resource labels, `pod_name`, `container_name`.
    bases: Vec<Labels>,
    request_count: FamilyId,
    request_latencies: FamilyId,
    request_concurrency: FamilyId,
}

impl ActivatorMetrics {
    pub fn new(pod: &str, revisions: &[RevisionLabels]) -> Self {
        let registry = Arc::new(Registry::new());
        let bases = revisions
            .iter()
            .map(|r| {
                let mut l = r.labels();
                l.insert("pod_name".into(), pod.to_string());
                l.insert("container_name".into(), ACTIVATOR_CONTAINER.into());
                l
            })
            .collect();
        // Declared in the order and with the descriptions of metrics.go:55-73.
        let request_concurrency = registry.gauge(
            "activator_request_concurrency",
            "Concurrent requests that are routed to Activator",
        );
        let request_count = registry.counter(
            "activator_request_count",
            "The number of requests that are routed to Activator",
        );
        let request_latencies = registry.histogram(
            "activator_request_latencies",
            "The response time in millisecond",
            &LATENCY_BUCKETS_MS,
        );
        ActivatorMetrics {
            registry,
            bases,
            request_count,
            request_latencies,
            request_concurrency,
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A request of revision `rev` left the activator (`MetricHandler`,
    /// metric_handler.go:44-65: outside the activator's timeout, from its entry).
    pub fn request(&self, rev: usize, status: u16, latency: SimDuration) {
        let l = with_response(self.bases[rev].clone(), status);
        self.registry.count_and_observe(
            self.request_count,
            self.request_latencies,
            &l,
            whole_ms(latency),
        );
    }

    /// The revision's average concurrency at this activator over the last report period
    /// (`reportToMetricsBackend`, concurrency_reporter.go:203-216, every second).
    pub fn concurrency(&self, rev: usize, value: f64) {
        self.registry
            .set(self.request_concurrency, &self.bases[rev], value);
    }
}

/// The autoscaler's metrics (serving `pkg/autoscaler/scaling/metrics.go`, the decider, and
/// `pkg/reconciler/autoscaling/kpa/metrics.go`, the KPA reconciler; one process).
pub struct AutoscalerMetrics {
    registry: Arc<Registry>,
    bases: Vec<Labels>,
    desired_pods: FamilyId,
    stable_concurrency: FamilyId,
    excess_burst_capacity: FamilyId,
    panic_concurrency: FamilyId,
    target_concurrency: FamilyId,
    panic_mode: FamilyId,
    stable_rps: FamilyId,
    panic_rps: FamilyId,
    target_rps: FamilyId,
    requested_pods: FamilyId,
    actual_pods: FamilyId,
}

/// What one decider tick decided, for `AutoscalerMetrics::decided`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub desired_pods: i32,
    pub excess_burst_capacity: f64,
    /// The stable- and panic-window averages of the scaling metric, and its per-pod target.
    pub stable: f64,
    pub panic: f64,
    pub target: f64,
    /// Whether the scaling metric is `rps` (else concurrency).
    pub rps: bool,
}

impl AutoscalerMetrics {
    pub fn new(revisions: &[RevisionLabels]) -> Self {
        let registry = Arc::new(Registry::new());
        let bases = revisions.iter().map(RevisionLabels::labels).collect();
        // scaling/metrics.go:73-118, then kpa/metrics.go:57-82 (the two it has here).
        let g = |name: &str, help: &str| registry.gauge(name, help);
        let desired_pods = g(
            "autoscaler_desired_pods",
            "Number of pods autoscaler wants to allocate",
        );
        let stable_concurrency = g(
            "autoscaler_stable_request_concurrency",
            "Average of requests count over the stable window",
        );
        let excess_burst_capacity = g(
            "autoscaler_excess_burst_capacity",
            "Current excess burst capacity over average request count over the stable window",
        );
        let panic_concurrency = g(
            "autoscaler_panic_request_concurrency",
            "Average of requests count over the panic window",
        );
        let target_concurrency = g(
            "autoscaler_target_concurrency_per_pod",
            "The desired number of concurrent requests for each pod",
        );
        let panic_mode = g(
            "autoscaler_panic_mode",
            "1 if autoscaler is in panic mode, 0 otherwise",
        );
        let stable_rps = g(
            "autoscaler_stable_requests_per_second",
            "Average requests-per-second over the stable window",
        );
        let panic_rps = g(
            "autoscaler_panic_requests_per_second",
            "Average requests-per-second over the panic window",
        );
        let target_rps = g(
            "autoscaler_target_requests_per_second",
            "The desired requests-per-second for each pod",
        );
        let requested_pods = g(
            "autoscaler_requested_pods",
            "Number of pods autoscaler requested from Kubernetes",
        );
        let actual_pods = g(
            "autoscaler_actual_pods",
            "Number of pods that are allocated currently",
        );
        AutoscalerMetrics {
            registry,
            bases,
            desired_pods,
            stable_concurrency,
            excess_burst_capacity,
            panic_concurrency,
            target_concurrency,
            panic_mode,
            stable_rps,
            panic_rps,
            target_rps,
            requested_pods,
            actual_pods,
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A decider tick with data (`Scale`, scaling/autoscaler.go:291-308; a tick without data
    /// returns before recording, autoscaler.go:166-173).
    pub fn decided(&self, rev: usize, d: &Decision) {
        let l = &self.bases[rev];
        let r = &self.registry;
        r.set(self.excess_burst_capacity, l, d.excess_burst_capacity);
        r.set(self.desired_pods, l, f64::from(d.desired_pods));
        let (stable, panic, target) = if d.rps {
            (self.stable_rps, self.panic_rps, self.target_rps)
        } else {
            (
                self.stable_concurrency,
                self.panic_concurrency,
                self.target_concurrency,
            )
        };
        r.set(stable, l, d.stable);
        r.set(panic, l, d.panic);
        r.set(target, l, d.target);
    }

    /// Whether the decider is panicking (autoscaler.go:106-108, 213-227: recorded on entering
    /// and leaving panic; as a last value, the same as recording it every tick).
    pub fn panic_mode(&self, rev: usize, panicking: bool) {
        let v = if panicking { 1.0 } else { 0.0 };
        self.registry.set(self.panic_mode, &self.bases[rev], v);
    }

    /// The KPA reconciler's pod counts (`reportMetrics`, kpa/kpa.go:239-254): ready pods, and
    /// the scale it asks for when it has one.
    pub fn pods(&self, rev: usize, ready: u32, requested: Option<u32>) {
        let l = &self.bases[rev];
        self.registry.set(self.actual_pods, l, f64::from(ready));
        if let Some(n) = requested {
            self.registry.set(self.requested_pods, l, f64::from(n));
        }
    }
}

/// A `/metrics` server on 127.0.0.1. Dropping it does not stop it; call `stop`.
pub struct Endpoint {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Endpoint {
    /// Serves `registry` at `GET /metrics` on an OS-chosen port of 127.0.0.1 (anything else:
    /// 404), as the components' Prometheus exporters do on their metrics ports.
    pub async fn start(registry: Arc<Registry>) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(super::http::serve(listener, stopped, move |req| {
            let registry = registry.clone();
            async move { exposition(&registry, req.uri().path()) }
        }));
        Ok(Endpoint { addr, stop })
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// The answer to a request for `path`.
fn exposition(registry: &Registry, path: &str) -> Response<Body> {
    if path != "/metrics" {
        return super::http::text(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let mut resp = Response::new(full(registry.encode()));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// One scrape target of the `file_sd` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// Target labels, as a Kubernetes service monitor would give: `namespace`, `pod`,
    /// `container`.
    pub labels: BTreeMap<String, String>,
}

/// The Prometheus `file_sd` target list of a run's metrics endpoints, rewritten atomically
/// (`report::write::write_atomic`) whenever an endpoint comes or goes.
pub struct Targets {
    file: Option<(PathBuf, String)>,
    /// By pod name (unique in a run).
    targets: BTreeMap<String, Target>,
}

impl Targets {
    /// A list written to `path` when set, else kept only in memory.
    pub fn new(path: Option<&Path>) -> Self {
        let file = path.map(|p| {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (dir, name)
        });
        Targets {
            file,
            targets: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, pod: &str, target: Target) -> Result<(), WriteError> {
        self.targets.insert(pod.to_string(), target);
        self.write()
    }

    pub fn remove(&mut self, pod: &str) -> Result<(), WriteError> {
        if self.targets.remove(pod).is_some() {
            self.write()
        } else {
            Ok(())
        }
    }

    /// Empties the list (the run is over).
    pub fn clear(&mut self) -> Result<(), WriteError> {
        self.targets.clear();
        self.write()
    }

    /// The list as JSON: one group per endpoint, so each keeps its own labels.
    pub fn json(&self) -> String {
        let groups: Vec<serde_json::Value> = self
            .targets
            .values()
            .map(|t| {
                serde_json::json!({
                    "targets": [t.addr.to_string()],
                    "labels": t.labels,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&groups).expect("JSON values always encode");
        text.push('\n');
        text
    }

    /// Writes the list (at start, and at each change).
    pub fn write(&self) -> Result<(), WriteError> {
        let Some((dir, name)) = &self.file else {
            return Ok(());
        };
        let text = self.json();
        write_atomic(dir, name, |w| {
            use std::io::Write as _;
            w.write_all(text.as_bytes())
        })
    }
}

/// The labels of a target.
pub fn target_labels(namespace: &str, pod: &str, container: &str) -> BTreeMap<String, String> {
    [
        ("namespace", namespace),
        ("pod", pod),
        ("container", container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every endpoint of a run, for the control loop: started and stopped with their pods.
pub struct Endpoints {
    targets: Mutex<Targets>,
    servers: Mutex<BTreeMap<String, Endpoint>>,
}

impl Endpoints {
    pub fn new(targets: Targets) -> Self {
        Endpoints {
            targets: Mutex::new(targets),
            servers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts serving `registry` for `pod` and lists it. Errors are returned as text for the
    /// run's warnings.
    pub async fn start(
        &self,
        registry: Arc<Registry>,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(), String> {
        let endpoint = Endpoint::start(registry)
            .await
            .map_err(|e| format!("the metrics endpoint of {pod} could not start: {e}"))?;
        let target = Target {
            addr: endpoint.addr,
            labels: target_labels(namespace, pod, container),
        };
        self.lock_servers().insert(pod.to_string(), endpoint);
        self.lock_targets()
            .add(pod, target)
            .map_err(|e| format!("cannot write the Prometheus target list: {e}"))
    }

    /// Stops `pod`'s endpoint and takes it off the list.
    pub fn stop(&self, pod: &str) -> Result<(), String> {
        if let Some(e) = self.lock_servers().remove(pod) {
            e.stop();
        }
        self.lock_targets()
            .remove(pod)
            .map_err(|e| format!("cannot write the Prometheus target list: {e}"))
    }

    /// Writes the target list as it is (at the start of a run).
    pub fn write_targets(&self) -> Result<(), WriteError> {
        self.lock_targets().write()
    }

    /// Stops every endpoint and empties the target list (the run is over).
    pub fn stop_all_and_clear(&self) -> Result<(), WriteError> {
        self.stop_all();
        self.lock_targets().clear()
    }

    /// Stops every endpoint (the target list keeps its last content).
    pub fn stop_all(&self) {
        for e in std::mem::take(&mut *self.lock_servers()).into_values() {
            e.stop();
        }
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Endpoint>> {
        self.servers
            .lock()
            .expect("endpoints lock is never poisoned: no code panics while holding it")
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, Targets> {
        self.targets
            .lock()
            .expect("targets lock is never poisoned: no code panics while holding it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_tag_is_read_from_the_headers_the_ingress_appends() {
        // (Knative-Serving-Tag, Knative-Serving-Default-Route, route_tag)
        let cases = [
            (None, None, "DISABLED"),                    // tag-header routing off
            (None, Some("true"), "DEFAULT"),             // the default route
            (Some("canary"), Some("true"), "UNDEFINED"), // an unknown tag fell through
            (Some("canary"), None, "canary"),            // a tag route appended its tag
            (Some(""), None, "DISABLED"),                // an empty tag header is no tag
        ];
        for (tag, default, expected) in cases {
            assert_eq!(route_tag(tag, default), expected, "{tag:?} {default:?}");
        }
    }

    #[test]
    fn latencies_are_whole_milliseconds_and_codes_carry_their_class() {
        let rev = RevisionLabels::new("default", "svc", "svc-00001");
        let m = QueueProxyMetrics::new(&rev, "svc-00001-pod-0");
        m.request(503, "DISABLED", SimDuration(5_999_000));
        m.app_request(200, SimDuration(10_001_000));
        let text = m.registry().encode();
        let samples = crate::report::prometheus::parse(&text).expect("parses");
        let sum = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.value)
                .expect("present")
        };
        // 5.999 ms is recorded as 5 (in the le=5 bucket), 10.001 ms as 10.
        assert_eq!(sum("revision_request_latencies_sum"), 5.0);
        assert_eq!(sum("revision_app_request_latencies_sum"), 10.0);
        let count = samples
            .iter()
            .find(|s| s.name == "revision_request_count")
            .expect("present");
        assert_eq!(count.labels["response_code"], "503");
        assert_eq!(count.labels["response_code_class"], "5xx");
        assert_eq!(count.labels["route_tag"], "DISABLED");
        assert_eq!(count.labels["container_name"], "queue-proxy");
        assert_eq!(count.labels["configuration_name"], "svc");
    }

    #[test]
    fn the_target_list_is_one_group_per_endpoint() {
        let mut t = Targets::new(None);
        let addr: SocketAddr = "127.0.0.1:9091".parse().expect("an address");
        t.add(
            "p-1",
            Target {
                addr,
                labels: target_labels("ns", "p-1", "queue-proxy"),
            },
        )
        .expect("in memory");
        let v: serde_json::Value = serde_json::from_str(&t.json()).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!([{
                "targets": ["127.0.0.1:9091"],
                "labels": {"namespace": "ns", "pod": "p-1", "container": "queue-proxy"},
            }])
        );
        t.remove("p-1").expect("in memory");
        assert_eq!(t.json().trim(), "[]");
    }
}
