//! The validated scenario: what the simulator (and later the live mode) runs. Every value here
//! has passed validation, so consumers trust it (parse, don't validate).
//!
//! Built from a scenario file by `scenario::load` (the serde mirror lives there); the field
//! names of the file are those of `ScenarioFile` and are what `--set PATH=VALUE` addresses.

use crate::model::dist::Dist;
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
    /// timeoutSeconds (default 300 s): the QP and activator deadlines.
    pub timeout: SimDuration,
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
    /// `autoscaling.knative.dev/min-scale`, `max-scale`, `initial-scale` for this revision
    /// (`None`: the cluster default in `Scenario::autoscaler`).
    pub min_scale: Option<u32>,
    pub max_scale: Option<u32>,
    pub initial_scale: Option<u32>,
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
