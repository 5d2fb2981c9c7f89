//! The validated scenario: what the simulator (and later the live mode) runs. Every value here
//! has passed validation, so consumers trust it (parse, don't validate).
//!
//! Built from a scenario file by `scenario::load` (the serde mirror lives there); the field
//! names of the file are those of `ScenarioFile` and are what `--set PATH=VALUE` addresses.

use crate::model::autoscaler::{Aggregation, AutoscalerConfig, ScalingMetric};
use crate::model::dist::Dist;
use crate::model::failure::FailureSpec;
use crate::model::time::{SimDuration, SimTime};
use crate::routing::pick::PickerKind;
use crate::routing::TrafficTarget;

/// A whole scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name`: also the default output directory `out/<name>`.
    pub name: String,
    /// How long arrivals are generated; the run then drains for at most `drain`.
    pub duration: SimDuration,
    /// Extra simulated time after `duration` for requests in flight to finish (default: the
    /// longest revision timeout plus one metrics window). Requests still unfinished then are
    /// counted as `in_flight_at_end`.
    pub drain: SimDuration,
    pub seed: u64,
    pub service: ServiceSpec,
    /// Every revision the scenario may use, in file order (the revision index is the position).
    pub revisions: Vec<RevisionSpec>,
    /// The initial `spec.traffic` of the Service (Knative syntax, defaulted and validated as a
    /// Service's; targets without `revisionName` follow the Service's configuration).
    pub traffic: Vec<TrafficTarget>,
    /// Timeline events sorted by time (stable: same-time events keep file order).
    pub timeline: Vec<TimelineEvent>,
    pub arrivals: ArrivalSpec,
    pub picker: PickerKind,
    pub ingress: IngressSpec,
    pub activator: ActivatorSpec,
    pub client: ClientSpec,
    pub metrics: MetricsSpec,
    pub autoscaler: AutoscalerSpec,
    /// From a pod's app being ready to Kubernetes marking it Ready (the kubelet probe phase):
    /// Serve-mode endpoints and the autoscaler's ready count use Kubernetes readiness; the
    /// activator's own probe sees the pod earlier. Default uniform 0-10 s.
    pub kubelet_ready_delay: Dist,
    /// From a pod's termination to its removal from the endpoints the ingress and the
    /// activator use (endpoints controller and informers); it receives traffic meanwhile.
    /// Default uniform 0.5-2 s (datapath.md gives no figure: a parameter).
    pub endpoint_removal_delay: Dist,
    /// The scenario file's text (after `--set` overrides), for reports.
    pub source_yaml: String,
    /// Settings that are valid but have no effect in this run, or that splitlab does not model
    /// (unmodelled ConfigMap keys and annotations, a rollout longer than the run, ...): printed
    /// with the summary, never silent.
    pub warnings: Vec<String>,
    /// `analysis:`: Flagger's canary analysis owns the Service's traffic (issue 13 §1).
    pub analysis: Option<AnalysisRun>,
}

/// `analysis:` validated: Flagger's settings, when its job starts, and each webhook's
/// scheduled results.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisRun {
    /// The first tick; then one every `settings.interval`.
    pub start: SimTime,
    pub settings: crate::model::flagger::AnalysisSettings,
    /// One per `settings.webhooks`, in order: `[from, to)` in which the hook reports a
    /// failure (a gate stays closed, a pre-rollout or rollout hook fails the check, a rollback
    /// hook asks for the rollback); `None`: it always passes (a rollback hook never asks).
    pub webhook_failures: Vec<Option<(SimTime, SimTime)>>,
}

impl AnalysisRun {
    /// The results the controller reads at `now` (`Observation::webhooks`): `true` is a
    /// status <= 202.
    pub fn webhook_results(&self, now: SimTime) -> Vec<bool> {
        use crate::model::flagger::WebhookType;
        self.settings
            .webhooks
            .iter()
            .zip(&self.webhook_failures)
            .map(|(hook, window)| {
                let failing = window.is_some_and(|(from, to)| from <= now && now < to);
                if hook.kind == WebhookType::Rollback {
                    failing
                } else {
                    !failing
                }
            })
            .collect()
    }
}

/// The Knative Service under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub namespace: String,
    /// The external domain (config-domain), e.g. `example.com`.
    pub domain: String,
    /// `serving.knative.dev/rollout-duration` truncated to whole seconds; 0 disables gradual
    /// rollout (the reconciler's `rd`).
    pub rollout_duration_secs: i64,
    /// config-features `tag-header-based-routing`.
    pub tag_header_routing: bool,
}

/// How the application inside a pod serves requests when the queue-proxy does not limit
/// concurrency (containerConcurrency 0): Knative imposes no limit, so this decides overload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppModel {
    /// `n` workers with an unbounded internal FIFO.
    Workers(u32),
    /// Processor sharing over `cores`: with k requests in service each progresses at
    /// `min(1, cores / k)` of full speed.
    ProcessorSharing { cores: u32 },
}

/// One revision.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionSpec {
    pub name: String,
    /// containerConcurrency: 0 means no queue-proxy breaker.
    pub container_concurrency: u32,
    /// timeoutSeconds (default config-defaults `revision-timeout-seconds`, 300 s): the QP and
    /// activator deadlines.
    pub timeout: SimDuration,
    /// responseStartTimeoutSeconds: how long the activator and queue-proxy wait for the first
    /// byte of the response (504 after it). `None`: no separate limit (serving
    /// `revision_defaults.go:66-72` sets one only when the cluster default is non-zero and below
    /// `timeout`).
    pub response_start_timeout: Option<SimDuration>,
    pub service_time: Dist,
    /// Used when `container_concurrency == 0`; default `Workers(1000)`.
    pub app: AppModel,
    /// Pods requested when the revision is created (fixed until a `scale` event).
    pub pods: u32,
    /// Pod start-up delay: request to app ready (scheduling, image pull, start, app init).
    pub startup: Dist,
    /// `None`: exists and is ready at t = 0 (its pods are already running). `Some(t)`: created by
    /// a timeline `create_revision` event at `t`.
    pub created_at: Option<SimTime>,
    /// The revision's `autoscaling.knative.dev/*` settings, merged over the cluster's
    /// config-autoscaler (`Scenario::autoscaler`) by [`RevisionAutoscaling::apply_to`].
    pub autoscaling: RevisionAutoscaling,
    /// How it fails (`failure:`; the default is healthy). A timeline `failure` event replaces it.
    pub failure: FailureSpec,
}

impl RevisionSpec {
    /// The deadline of a request in the revision: the application writes its response when it
    /// completes, so the response-start timeout, when set, bounds the whole request as well.
    pub fn request_deadline(&self) -> SimDuration {
        match self.response_start_timeout {
            Some(rst) => self.timeout.min(rst),
            None => self.timeout,
        }
    }
}

/// A revision's validated autoscaling annotations (serving `pkg/apis/autoscaling/register.go`);
/// `None` keeps the cluster's value. Built by `scenario::autoscaling` from a manifest's
/// annotations and a scenario's `revisions[].autoscaling`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionAutoscaling {
    pub metric: Option<ScalingMetric>,
    pub target: Option<f64>,
    pub target_utilization_percentage: Option<f64>,
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub initial_scale: Option<u32>,
    pub activation_scale: Option<u32>,
    pub scale_down_delay: Option<SimDuration>,
    /// `window`: the stable window.
    pub window: Option<SimDuration>,
    pub panic_window_percentage: Option<f64>,
    pub panic_threshold_percentage: Option<f64>,
    pub target_burst_capacity: Option<f64>,
    pub aggregation: Option<Aggregation>,
    pub scale_to_zero_pod_retention_period: Option<SimDuration>,
}

impl RevisionAutoscaling {
    /// The revision's config: the cluster's, with each annotation set here in its place, as the
    /// PodAutoscaler's accessors read them (`pa_lifecycle.go`: an annotation overrides the
    /// config-autoscaler value).
    pub fn apply_to(&self, config: &mut AutoscalerConfig) {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut config.metric, self.metric);
        if self.target.is_some() {
            config.target = self.target;
        }
        if self.target_utilization_percentage.is_some() {
            config.target_utilization_percentage = self.target_utilization_percentage;
        }
        set(&mut config.min_scale, self.min_scale);
        set(&mut config.max_scale, self.max_scale);
        set(&mut config.initial_scale, self.initial_scale);
        if self.activation_scale.is_some() {
            config.activation_scale = self.activation_scale;
        }
        set(&mut config.scale_down_delay, self.scale_down_delay);
        set(&mut config.stable_window, self.window);
        set(
            &mut config.panic_window_percentage,
            self.panic_window_percentage,
        );
        set(
            &mut config.panic_threshold_percentage,
            self.panic_threshold_percentage,
        );
        set(
            &mut config.target_burst_capacity,
            self.target_burst_capacity,
        );
        set(&mut config.aggregation, self.aggregation);
        set(
            &mut config.scale_to_zero_pod_retention_period,
            self.scale_to_zero_pod_retention_period,
        );
    }

    /// Each setting of `over` replaces this one's.
    pub fn overlay(&mut self, over: &RevisionAutoscaling) {
        fn take<T: Copy>(field: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *field = value;
            }
        }
        take(&mut self.metric, over.metric);
        take(&mut self.target, over.target);
        take(
            &mut self.target_utilization_percentage,
            over.target_utilization_percentage,
        );
        take(&mut self.min_scale, over.min_scale);
        take(&mut self.max_scale, over.max_scale);
        take(&mut self.initial_scale, over.initial_scale);
        take(&mut self.activation_scale, over.activation_scale);
        take(&mut self.scale_down_delay, over.scale_down_delay);
        take(&mut self.window, over.window);
        take(
            &mut self.panic_window_percentage,
            over.panic_window_percentage,
        );
        take(
            &mut self.panic_threshold_percentage,
            over.panic_threshold_percentage,
        );
        take(&mut self.target_burst_capacity, over.target_burst_capacity);
        take(&mut self.aggregation, over.aggregation);
        take(
            &mut self.scale_to_zero_pod_retention_period,
            over.scale_to_zero_pod_retention_period,
        );
    }
}

/// The Knative Pod Autoscaler.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerSpec {
    /// `false`: pod counts stay as scripted; the decider still computes the SKS mode.
    pub enabled: bool,
    /// config-autoscaler, including `target-burst-capacity` (written under `activator:` in a
    /// scenario file, since it decides when the activator is in the path).
    pub config: crate::model::autoscaler::AutoscalerConfig,
}

/// A scheduled change.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEvent {
    pub at: SimTime,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The revision (by index into `Scenario::revisions`) is created: its pods start, and once
    /// its first pod is ready it becomes the configuration's latest ready revision.
    CreateRevision(usize),
    /// Replace the Service's `spec.traffic` (validated as a Service's).
    SetTraffic(Vec<TrafficTarget>),
    /// A `kn service update` edit: each string is one occurrence of the flag. The edit is applied
    /// to the traffic block in force at that moment, and the result is validated then.
    Kn {
        traffic: Vec<String>,
        tags: Vec<String>,
        untags: Vec<String>,
    },
    /// Set a revision's pod count.
    Scale { revision: usize, pods: u32 },
    /// Change the rollout duration (whole seconds; 0 disables).
    SetRolloutDuration { secs: i64 },
    /// Replace a revision's failure settings from now on.
    SetFailure {
        revision: usize,
        failure: FailureSpec,
    },
}

/// Where requests come from.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalSpec {
    pub process: ArrivalProcessSpec,
    /// Shares of requests that address a tag's own URL (`{tag}-{route}.{ns}.{domain}`), by tag;
    /// the rest address the route's main URL. Sum <= 1.
    pub tag_shares: Vec<(String, f64)>,
    /// Shares of requests that carry a `Knative-Serving-Tag` header naming the tag while
    /// addressing the main URL (only honoured with tag-header routing). Sum <= 1.
    pub header_shares: Vec<(String, f64)>,
    /// Size of the client population: each request carries a client id drawn uniformly from
    /// `0..clients` (used by the hash picker). `None`: every request is its own client.
    pub clients: Option<u64>,
}

/// The arrival process.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrivalProcessSpec {
    /// Poisson at a constant rate.
    Poisson { rate_per_s: f64 },
    /// Evenly spaced at a constant rate (as vegeta's constant pacer).
    Constant { rate_per_s: f64 },
    /// A piecewise rate schedule: steps and linear ramps. `poisson` chooses Poisson
    /// (non-homogeneous, by thinning or inversion) or evenly spaced by the integrated rate.
    Schedule {
        points: Vec<RatePoint>,
        poisson: bool,
    },
    /// On/off modulated Poisson: `on_rate_per_s` for `on`, then `off_rate_per_s` for `off`
    /// (both durations drawn per period), repeating; starts in the on phase.
    Bursts {
        on_rate_per_s: f64,
        off_rate_per_s: f64,
        on: Dist,
        off: Dist,
    },
    /// Replay of a trace: arrival times (sorted) with an optional tag and client per request.
    Trace { rows: Vec<TraceRow> },
}

/// One point of a rate schedule. The rate before the first point is 0.
#[derive(Clone, Debug, PartialEq)]
pub enum RatePoint {
    /// From `at` on, the rate is `rate_per_s`.
    Step { at: SimTime, rate_per_s: f64 },
    /// From `at`, the rate moves linearly from its current value to `to_rate_per_s` over `over`,
    /// then stays there.
    Ramp {
        at: SimTime,
        to_rate_per_s: f64,
        over: SimDuration,
    },
}

/// One request of a replayed trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    pub at: SimTime,
    pub tag: Option<String>,
    pub client: Option<u64>,
}

/// The ingress (Envoy through Kourier / net-istio / net-contour, or the ideal gateway): its
/// profile, replicas, circuit-breaker threshold and programming delay (`model::ingress`).
pub use crate::model::ingress::IngressSpec;

/// The activator.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivatorSpec {
    /// Readiness probe period (default 200 ms).
    pub probe_period: SimDuration,
    /// Activator pods in the cluster (default 1). With more than one, each revision is served by
    /// a subset of `numActivators` of them (kpa.go:354-368) that split its pods between them, each
    /// with its own FIFO (A.3.3).
    pub replicas: u32,
    /// Load-balancing policy; `None` = by cc as Knative does (0: random-choice-of-2, 1–3:
    /// first-available, >= 4: round-robin).
    pub lb_policy: Option<LbPolicy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbPolicy {
    RandomChoice2,
    FirstAvailable,
    RoundRobin,
}

/// The clients.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSpec {
    /// A client gives up after this long; the request leaves whatever queue it is in.
    pub timeout: Option<SimDuration>,
}

/// Measurement settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsSpec {
    /// The time-series window (default 1 s).
    pub window: SimDuration,
}
