//! Scenario files: the serde mirror [`ScenarioFile`], `--set PATH=VALUE` overrides, and the
//! checks that turn a file into a validated [`Scenario`] (parse, don't validate).
//!
//! Owns: the scenario file format (its field names are the contract `--set` paths use), its
//! defaults, every semantic check (names, ranges, distributions, Knative's traffic validation,
//! revision and tag references, the timeline), reading the files a scenario refers to (a
//! Knative manifest or kubectl List, the cluster's ConfigMaps, trace and latency CSVs) through
//! the caller's `resolve`, and errors that
//! name the file, line:column (or the `--set` that produced the value), the field path, the
//! bad value and what is allowed.
//!
//! Must not: do I/O (`resolve` reads files relative to the scenario file), know about the
//! simulator, or panic on any input.
//!
//! Overrides are applied to a position-keeping tree of the document (`tree`), which is then
//! written back out and parsed into the mirror; every error carries a field path, and the
//! path is looked up in that tree to find where the value came from. Without overrides the
//! file's own text is parsed, so serde's errors keep their source snippets.

mod analysis;
mod failure;
mod knative;
mod table;
mod tree;

pub use self::analysis::{
    AnalysisFile, CanaryAnalysisFile, MetricFile, ThresholdRangeFile, WebhookFile,
};
pub use self::failure::{FailureEventFile, FailureFile, LatencyFile};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::IgnoredAny;
use serde::Deserialize;

use self::tree::{Node, Origin};
use crate::model::autoscaler::{Aggregation, AutoscalerConfig, ScalingMetric};
use crate::model::dist::Dist;
use crate::model::ingress::IngressProfile;
use crate::model::time::{SimDuration, SimTime};
use crate::routing::duration::parse_duration;
use crate::routing::field_error::err_out_of_bounds_value;
use crate::routing::field_error::{FieldError, FieldErrorExt};
use crate::routing::kn::TrafficFlags;
use crate::routing::pick::PickerKind;
use crate::routing::target::default_traffic;
use crate::routing::validation::{
    is_dns1035_label, is_dns1123_subdomain, reconciler_rollout_secs,
    validate_rollout_duration_annotation, validate_service, validate_traffic_list, TargetContext,
    ROLLOUT_DURATION_KEY,
};
use crate::routing::{ObjectMeta, TrafficTarget};
use crate::scenario::autoscaling::{ClusterAutoscaling, SCENARIO_KEYS};
use crate::scenario::configmap::ClusterConfig;
use crate::scenario::spec::{
    Action, ActivatorSpec, AppModel, ArrivalProcessSpec, ArrivalSpec, AutoscalerSpec, ClientSpec,
    IngressSpec, LbPolicy, MetricsSpec, RatePoint, RevisionSpec, Scenario, ServiceSpec,
    TimelineEvent,
};
use crate::scenario::yaml::{self, ScalarString, SourcePos, YamlError};

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

/// A scenario file as written. Durations are Go duration strings (`300ms`, `1.5s`, `2m`),
/// checked when the file is converted; counts are read as signed integers so that a negative
/// value gets a range message rather than a type error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// `[a-z0-9-]+`; names the output directory.
    pub name: String,
    /// How long arrivals are generated (> 0).
    pub duration: String,
    /// Drain time after `duration`; default: the longest request deadline of a revision
    /// (timeout, or the response-start timeout when shorter) plus one metrics window.
    #[serde(default)]
    pub drain: Option<String>,
    /// Default 1.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub service: ServiceFile,
    /// At least one; names unique.
    pub revisions: Vec<RevisionFile>,
    /// The Service's `spec.traffic`, Knative syntax; default: the manifest's, else
    /// `[{latestRevision: true, percent: 100}]`.
    #[serde(default)]
    pub traffic: Option<Vec<TrafficTarget>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub timeline: Vec<TimelineItemFile>,
    pub arrivals: ArrivalsFile,
    /// `random` (default), `wrr` or `hash`.
    #[serde(default)]
    pub picker: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress: IngressFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub activator: ActivatorFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub client: ClientFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: MetricsFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub autoscaler: AutoscalerFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub kubernetes: KubernetesFile,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster: ClusterFile,
    /// Flagger's canary analysis drives the Service's traffic (`load/analysis.rs`).
    #[serde(default)]
    pub analysis: Option<AnalysisFile>,
}

/// `cluster:`: the operator's cluster configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Knative ConfigMaps (`config-autoscaler`, `config-defaults`, `config-features`,
    /// `config-network`) as `kubectl get cm -o yaml` prints them, relative to the scenario
    /// file. They replace Knative's defaults; the scenario's own keys override them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub configmaps: Vec<String>,
}

/// An empty block (`timeline:` with nothing under it, say because every event is commented
/// out) is YAML null; it means the same as leaving the key out.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `service:`. Fields set here override the manifest's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    /// As the `serving.knative.dev/rollout-duration` annotation: whole seconds, not negative.
    #[serde(default)]
    pub rollout_duration: Option<String>,
    /// config-features `tag-header-based-routing`; default: the ConfigMap's, else false.
    #[serde(default)]
    pub tag_header_routing: Option<bool>,
    /// A Knative Service manifest, relative to the scenario file: one or several documents or a
    /// `kind: List` (`kubectl get ksvc,revisions -o yaml`); with several Services, `name`
    /// chooses one.
    #[serde(default)]
    pub manifest: Option<String>,
}

/// One entry of `revisions:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionFile {
    pub name: String,
    #[serde(default)]
    pub container_concurrency: Option<i64>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// responseStartTimeoutSeconds as a Go duration (`0s`: none).
    #[serde(default)]
    pub response_start_timeout: Option<String>,
    pub service_time: DistFile,
    #[serde(default)]
    pub app: Option<AppFile>,
    #[serde(default)]
    pub pods: Option<i64>,
    #[serde(default)]
    pub startup: Option<DistFile>,
    /// `autoscaling.knative.dev/min-scale` for this revision.
    #[serde(default)]
    pub min_scale: Option<i64>,
    /// `autoscaling.knative.dev/max-scale` (0 = unbounded).
    #[serde(default)]
    pub max_scale: Option<i64>,
    /// `autoscaling.knative.dev/initial-scale`.
    #[serde(default)]
    pub initial_scale: Option<i64>,
    /// The revision's `autoscaling.knative.dev/*` annotations by their Knative names
    /// (`min-scale`, `target`, ...), over the manifest's.
    #[serde(default)]
    pub autoscaling: Option<AutoscalingFile>,
    /// How the revision fails (`load/failure.rs`); absent: healthy.
    #[serde(default)]
    pub failure: Option<FailureFile>,
}

/// `revisions[].autoscaling`: Knative's annotation names without the
/// `autoscaling.knative.dev/` prefix, values as the annotations take them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AutoscalingFile {
    #[serde(default)]
    pub class: Option<ScalarString>,
    #[serde(default)]
    pub metric: Option<ScalarString>,
    #[serde(default)]
    pub target: Option<ScalarString>,
    #[serde(default)]
    pub target_utilization_percentage: Option<ScalarString>,
    #[serde(default)]
    pub min_scale: Option<ScalarString>,
    #[serde(default)]
    pub max_scale: Option<ScalarString>,
    #[serde(default)]
    pub initial_scale: Option<ScalarString>,
    #[serde(default)]
    pub activation_scale: Option<ScalarString>,
    #[serde(default)]
    pub scale_down_delay: Option<ScalarString>,
    #[serde(default)]
    pub window: Option<ScalarString>,
    #[serde(default)]
    pub panic_window_percentage: Option<ScalarString>,
    #[serde(default)]
    pub panic_threshold_percentage: Option<ScalarString>,
    #[serde(default)]
    pub target_burst_capacity: Option<ScalarString>,
    #[serde(default)]
    pub metric_aggregation_algorithm: Option<ScalarString>,
    #[serde(default)]
    pub scale_to_zero_pod_retention_period: Option<ScalarString>,
}

impl AutoscalingFile {
    /// (Knative name, value) of each key set, in `SCENARIO_KEYS` order.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        let fields = [
            &self.class,
            &self.metric,
            &self.target,
            &self.target_utilization_percentage,
            &self.min_scale,
            &self.max_scale,
            &self.initial_scale,
            &self.activation_scale,
            &self.scale_down_delay,
            &self.window,
            &self.panic_window_percentage,
            &self.panic_threshold_percentage,
            &self.target_burst_capacity,
            &self.metric_aggregation_algorithm,
            &self.scale_to_zero_pod_retention_period,
        ];
        SCENARIO_KEYS
            .iter()
            .zip(fields)
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.0.as_str())))
            .collect()
    }
}

/// A duration distribution: `{constant: 100ms}`, `{exponential: {mean: D}}`,
/// `{lognormal: {mean: D, p99: D}}`, `{uniform: {min: D, max: D}}` or
/// `{empirical: {file: x.csv, column: latency_ms}}` (values in milliseconds; the column
/// defaults to `latency_ms`) or `{empirical: {buckets: [{le: 5ms, count: 10}, ...,
/// {le: +Inf, count: 12}]}}` (a histogram's cumulative buckets, as Prometheus' `_bucket`
/// series; interpolated within each bucket as `histogram_quantile` does, `model::dist`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DistFile {
    Constant(String),
    Exponential {
        mean: String,
    },
    Lognormal {
        mean: String,
        p99: String,
    },
    Uniform {
        min: String,
        max: String,
    },
    Empirical {
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        column: Option<String>,
        #[serde(default)]
        buckets: Option<Vec<BucketFile>>,
    },
}

/// One histogram bucket of `{empirical: {buckets: [...]}}`: its upper bound (a Go duration, or
/// `+Inf`) and the cumulative count of values at or below it (any scale).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketFile {
    pub le: ScalarString,
    pub count: f64,
}

/// `{workers: N}` or `{processor_sharing: {cores: N}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AppFile {
    Workers(i64),
    ProcessorSharing { cores: i64 },
}

/// One timeline event: `at` and exactly one action key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineItemFile {
    pub at: String,
    #[serde(default)]
    pub create_revision: Option<String>,
    #[serde(default)]
    pub traffic: Option<Vec<TrafficTarget>>,
    #[serde(default)]
    pub kn: Option<KnFile>,
    #[serde(default)]
    pub scale: Option<ScaleFile>,
    #[serde(default)]
    pub rollout_duration: Option<String>,
    /// Replaces a revision's failure settings (`load/failure.rs`).
    #[serde(default)]
    pub failure: Option<FailureEventFile>,
}

/// `kn service update` flags: each string is one occurrence of the flag.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnFile {
    #[serde(default, deserialize_with = "null_as_default")]
    pub traffic: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub untag: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleFile {
    pub revision: String,
    pub pods: i64,
}

/// `arrivals:`: exactly one process key, plus shares and the client population.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalsFile {
    #[serde(default)]
    pub poisson: Option<RateFile>,
    #[serde(default)]
    pub constant: Option<RateFile>,
    #[serde(default)]
    pub schedule: Option<ScheduleFile>,
    #[serde(default)]
    pub bursts: Option<BurstsFile>,
    #[serde(default)]
    pub trace: Option<TraceFile>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: BTreeMap<String, f64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: BTreeMap<String, f64>,
    #[serde(default)]
    pub clients: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFile {
    pub rate: f64,
}

/// `schedule:`; `poisson` defaults to true.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    #[serde(default = "yes")]
    pub poisson: bool,
    pub points: Vec<RatePointFile>,
}

fn yes() -> bool {
    true
}

/// `{at: D, rate: R}` (a step) or `{at: D, ramp_to: R, over: D}` (a linear ramp).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePointFile {
    pub at: String,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub ramp_to: Option<f64>,
    #[serde(default)]
    pub over: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstsFile {
    pub on_rate: f64,
    pub off_rate: f64,
    pub on: DistFile,
    pub off: DistFile,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    pub file: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressFile {
    /// `kourier | istio | contour | ideal` (default `ideal`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Gateway replicas (default: the profile's, 1).
    #[serde(default)]
    pub replicas: Option<i64>,
    /// Circuit-breaker `max_requests` per revision cluster per replica (default: the
    /// profile's: 1024 for kourier and contour, 4294967295 for istio and ideal).
    #[serde(default)]
    pub max_requests: Option<i64>,
    /// Default: the profile's band.
    #[serde(default)]
    pub programming_delay: Option<DistFile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivatorFile {
    #[serde(default)]
    pub target_burst_capacity: Option<f64>,
    /// Activator pods (default 1, at most 20 as the activator's HPA allows).
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub probe_period: Option<String>,
    #[serde(default)]
    pub lb_policy: Option<LbPolicyFile>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LbPolicyFile {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "random_choice_2")]
    RandomChoice2,
    #[serde(rename = "first_available")]
    FirstAvailable,
    #[serde(rename = "round_robin")]
    RoundRobin,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    #[serde(default)]
    pub window: Option<String>,
}

/// config-autoscaler (and the per-revision autoscaling annotations' cluster defaults).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerFile {
    /// `false`: pod counts stay as scripted (the decider still computes the SKS mode).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `concurrency` (default) or `rps`.
    #[serde(default)]
    pub metric: Option<String>,
    /// `linear` (default) or `weighted-exponential`.
    #[serde(default)]
    pub aggregation: Option<String>,
    #[serde(default)]
    pub target_utilization_percentage: Option<f64>,
    #[serde(default)]
    pub container_concurrency_target_default: Option<f64>,
    #[serde(default)]
    pub stable_window: Option<String>,
    #[serde(default)]
    pub panic_window_percentage: Option<f64>,
    #[serde(default)]
    pub panic_threshold_percentage: Option<f64>,
    #[serde(default)]
    pub max_scale_up_rate: Option<f64>,
    #[serde(default)]
    pub max_scale_down_rate: Option<f64>,
    #[serde(default)]
    pub enable_scale_to_zero: Option<bool>,
    #[serde(default)]
    pub scale_to_zero_grace_period: Option<String>,
    #[serde(default)]
    pub initial_scale: Option<i64>,
    #[serde(default)]
    pub allow_zero_initial_scale: Option<bool>,
    #[serde(default)]
    pub min_scale: Option<i64>,
    #[serde(default)]
    pub max_scale: Option<i64>,
    #[serde(default)]
    pub scale_down_delay: Option<String>,
    #[serde(default)]
    pub activation_scale: Option<i64>,
}

/// Kubernetes behaviour around pods.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesFile {
    /// From app ready to Kubernetes Ready (the kubelet's readiness probe phase: period 10 s by
    /// default, so uniform 0-10 s).
    #[serde(default)]
    pub readiness_delay: Option<DistFile>,
    /// From a pod's termination to its removal from the endpoints.
    #[serde(default)]
    pub endpoint_removal_delay: Option<DistFile>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A scenario could not be loaded. The details ([`ScenarioErrorDetail`]) are boxed, so a
/// `Result` carrying this error stays small; they are read through `Deref` (`err.pos`).
///
/// Display: `FILE:LINE:COL: PATH: MESSAGE`, or `FILE: --set PATH=VALUE: MESSAGE` when the bad
/// value came from an override, then a source snippet when one is available, then any
/// related errors (Knative reports several at once), one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError(Box<ScenarioErrorDetail>);

/// What a [`ScenarioError`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioErrorDetail {
    /// The file holding the bad value: the scenario, or a file it refers to.
    pub file: String,
    pub pos: Option<SourcePos>,
    /// The `--set PATH=VALUE` override that produced the bad value.
    pub set: Option<String>,
    /// The field path (`revisions[0].service_time.lognormal`); for a CSV file, the column.
    pub path: String,
    pub message: String,
    pub snippet: String,
    pub related: Vec<ScenarioError>,
}

impl std::ops::Deref for ScenarioError {
    type Target = ScenarioErrorDetail;
    fn deref(&self) -> &ScenarioErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for ScenarioError {
    fn deref_mut(&mut self) -> &mut ScenarioErrorDetail {
        &mut self.0
    }
}

impl ScenarioError {
    pub(crate) fn in_file(
        file: &str,
        pos: Option<SourcePos>,
        path: &str,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError(Box::new(ScenarioErrorDetail {
            file: file.to_string(),
            pos: pos.filter(|p| p.line > 0),
            set: None,
            path: path.to_string(),
            message: message.into(),
            snippet: String::new(),
            related: Vec::new(),
        }))
    }
}

impl From<YamlError> for ScenarioError {
    fn from(e: YamlError) -> Self {
        ScenarioError(Box::new(ScenarioErrorDetail {
            file: e.file,
            pos: e.pos,
            set: None,
            path: clean_path(&e.path),
            message: e.message,
            snippet: e.snippet,
            related: Vec::new(),
        }))
    }
}

/// serde_path_to_error writes `?` for a segment it could not name (a key being parsed when
/// the YAML broke); such segments say nothing, so they are dropped.
fn clean_path(path: &str) -> String {
    path.split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".")
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        let mut show_path = !self.path.is_empty();
        if let Some(set) = &self.set {
            write!(f, ": --set {set}")?;
            // The path is already in `--set PATH=...` when the error is about that value itself.
            let set_path = set.split_once('=').map_or(set.as_str(), |(p, _)| p);
            let same = match (tree::parse_path(set_path), tree::parse_path(&self.path)) {
                (Ok(a), Ok(b)) => tree::same_path(&a, &b),
                _ => false,
            };
            show_path &= !same;
        } else if let Some(pos) = self.pos {
            write!(f, ":{pos}")?;
        }
        if show_path {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        for r in &self.related {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Splits a `--set PATH=VALUE` argument at its first `=`.
pub fn parse_set(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((path, value)) if !path.trim().is_empty() => {
            tree::parse_path(path.trim())?;
            Ok((path.trim().to_string(), value.to_string()))
        }
        _ => Err(format!(
            "invalid --set {arg:?}; allowed: PATH=VALUE, e.g. service.rollout_duration=380s"
        )),
    }
}

/// Loads a scenario: `text` is the file named `file`; `sets` are `--set` overrides (applied in
/// order, before any check); `resolve` returns the text of a file named relative to the
/// scenario file (a manifest, a trace, a latency CSV).
/// Reads the rate schedule of `splitlab load --schedule` from `text` (the file `name`), with
/// the same CSV rules and error positions as a scenario's trace.
pub fn read_rate_schedule(name: &str, text: &str) -> Result<Vec<RatePoint>, ScenarioError> {
    table::read_rate_schedule(text)
        .map_err(|e| ScenarioError::in_file(name, e.pos, &e.column, e.message))
}

pub fn load_scenario(
    file: &str,
    text: &str,
    sets: &[(String, String)],
    resolve: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Scenario, ScenarioError> {
    // Malformed YAML is reported with serde-saphyr's message and snippet, before any override.
    yaml::from_str::<IgnoredAny>(file, text)?;
    let mut doc = tree::parse(text, Origin::File)
        .map_err(|e| ScenarioError::in_file(file, e.pos, "", e.message))?;
    for (i, (path, value)) in sets.iter().enumerate() {
        let set_error = |message: String| {
            let mut err = ScenarioError::in_file(file, None, path, message);
            err.set = Some(format!("{path}={value}"));
            err
        };
        let segs = tree::parse_path(path).map_err(set_error)?;
        let node = if value.trim().is_empty() {
            tree::parse("~", Origin::Set(i))
        } else {
            tree::parse(value, Origin::Set(i))
        };
        let mut node =
            node.map_err(|e| set_error(format!("the value is not YAML: {}", e.message)))?;
        node.set_origin(Origin::Set(i));
        tree::apply_set(&mut doc, &segs, node).map_err(set_error)?;
    }
    let cx = Cx {
        file,
        doc: &doc,
        sets,
        resolve,
    };
    let (mirror, source_yaml) = if sets.is_empty() {
        let mirror =
            yaml::from_str::<ScenarioFile>(file, text).map_err(|e| cx.mirror_error(e, false))?;
        (mirror, text.to_string())
    } else {
        let mut source = format!("# {file} with overrides:\n");
        for (path, value) in sets {
            // A multi-line value must not end the comment.
            let value = value.replace('\n', "\\n");
            source.push_str(&format!("#   --set {path}={value}\n"));
        }
        source.push_str(&tree::to_yaml(&doc));
        let mirror =
            yaml::from_str::<ScenarioFile>(file, &source).map_err(|e| cx.mirror_error(e, true))?;
        (mirror, source)
    };
    build(&cx, mirror, source_yaml)
}

// ---------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------

/// What every check needs: where values came from, and how to read referenced files.
struct Cx<'a> {
    file: &'a str,
    doc: &'a Node,
    sets: &'a [(String, String)],
    resolve: &'a dyn Fn(&str) -> Result<String, String>,
}

/// The longest scenario name: a Kubernetes name label's 63 characters, well within a
/// directory name's 255 bytes (a million-character name ran, then failed to make its directory).
pub const MAX_NAME_CHARS: usize = 63;

/// The highest request rate a scenario may ask for: a simulated request costs about a
/// microsecond, so a million per second runs at about real time; ~1e9 aborted on allocation
/// (docs/limits.md).
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// At most this many metric windows in a run (duration plus drain over `metrics.window`): each
/// window keeps a row of every series, so 720 h of 1 s windows held 1.9 GB for 2,558 requests;
/// 100,000 windows is 27 h at 1 s or 69 days at 60 s (docs/limits.md).
pub const MAX_WINDOWS: u64 = 100_000;

/// Allowed values of a Go duration field, for messages.
const GO_DURATION: &str = "a Go duration such as 100ms, 1.5s or 2m";

impl Cx<'_> {
    /// An error about the value at `path` of the scenario.
    fn err(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.err_at(path, message, false)
    }

    fn err_at(&self, path: &str, message: impl Into<String>, at_key: bool) -> ScenarioError {
        let found = tree::parse_path(path)
            .ok()
            .map(|segs| self.doc.locate(&segs));
        let mut err = ScenarioError::in_file(self.file, None, path, message);
        match found {
            Some(l) => match l.origin {
                Origin::File => {
                    let pos = if at_key {
                        l.key_pos.unwrap_or(l.pos)
                    } else {
                        l.pos
                    };
                    err.pos = Some(pos).filter(|p| p.line > 0);
                }
                Origin::Set(i) => {
                    err.set = self.sets.get(i).map(|(p, v)| format!("{p}={v}"));
                }
            },
            None => err.pos = Some(self.doc.pos),
        }
        err
    }

    /// A serde error from parsing the mirror. In an overridden document its positions are in
    /// the re-written text, so the path is looked up in the tree instead; a missing field is
    /// pointed at the mapping that lacks it (serde-saphyr points at a neighbouring key). A type
    /// error gets the offending scalar, which serde's message leaves out.
    fn mirror_error(&self, e: YamlError, overridden: bool) -> ScenarioError {
        let path = clean_path(&e.path);
        let mut message = e.message.clone();
        let scalar = tree::parse_path(&path).ok().and_then(|segs| {
            match self.doc.get(&segs).map(|n| &n.kind) {
                Some(tree::Kind::Scalar { text, .. }) => Some(text.clone()),
                _ => None,
            }
        });
        if let Some(text) = scalar {
            if message.starts_with("invalid") && !message.contains(&text) {
                message = format!("{message} (got {text:?})");
            }
        }
        if overridden || message.starts_with("missing field") {
            let at_key = message.starts_with("unknown field") || message.contains("duplicate");
            return self.err_at(&path, message, at_key);
        }
        let mut err = ScenarioError::from(e);
        err.path = path;
        err.message = message;
        err
    }

    /// The name shown for a file the scenario refers to: relative to the scenario's directory.
    fn display_name(&self, rel: &str) -> String {
        match std::path::Path::new(self.file).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(rel).display().to_string(),
            _ => rel.to_string(),
        }
    }

    fn read(&self, path: &str, rel: &str) -> Result<String, ScenarioError> {
        (self.resolve)(rel)
            .map_err(|e| self.err(path, format!("cannot read {}: {e}", self.display_name(rel))))
    }

    fn duration(&self, path: &str, text: &str) -> Result<SimDuration, ScenarioError> {
        parse_duration(text)
            .map(SimDuration)
            .map_err(|e| self.err(path, format!("{e}; allowed: {GO_DURATION}")))
    }

    fn positive_duration(&self, path: &str, text: &str) -> Result<SimDuration, ScenarioError> {
        let d = self.duration(path, text)?;
        if d <= SimDuration::ZERO {
            return Err(self.err(path, format!("{text} is not allowed; allowed: > 0s")));
        }
        Ok(d)
    }

    fn duration_within(
        &self,
        path: &str,
        text: &str,
        min: SimDuration,
        max: SimDuration,
    ) -> Result<SimDuration, ScenarioError> {
        let d = self.duration(path, text)?;
        if d < min || d > max {
            return Err(self.err(
                path,
                format!("{text} is out of range; allowed: {min} to {max}"),
            ));
        }
        Ok(d)
    }

    fn int_within(&self, path: &str, value: i64, min: i64, max: i64) -> Result<u32, ScenarioError> {
        if value < min || value > max {
            return Err(self.err(
                path,
                format!("{value} is out of range; allowed: {min} to {max}"),
            ));
        }
        u32::try_from(value).map_err(|_| self.err(path, format!("{value} does not fit")))
    }

    /// A request rate: finite, > 0 (or >= 0 when `zero_ok`) and at most [`MAX_RATE_PER_S`].
    fn rate(&self, path: &str, value: f64, zero_ok: bool) -> Result<f64, ScenarioError> {
        let ok = value.is_finite()
            && (value > 0.0 || zero_ok && value == 0.0)
            && value <= MAX_RATE_PER_S;
        if !ok {
            let allowed = if zero_ok { ">= 0" } else { "> 0" };
            return Err(self.err(
                path,
                format!("rate {value} is not allowed; allowed: a finite number of requests per second {allowed} and at most {MAX_RATE_PER_S}"),
            ));
        }
        Ok(value)
    }

    /// The rollout duration as the annotation would carry it: Knative's rules, then the
    /// reconciler's whole seconds.
    fn rollout_secs(&self, path: &str, text: &str) -> Result<i64, ScenarioError> {
        let annotations = BTreeMap::from([(ROLLOUT_DURATION_KEY.to_string(), text.to_string())]);
        if let Some(e) = validate_rollout_duration_annotation(&annotations) {
            let message = e
                .merged()
                .first()
                .map_or_else(|| e.to_string(), |leaf| leaf.message.clone());
            return Err(self.err(
                path,
                format!("{message}; allowed: a Go duration in whole seconds, >= 0s (as the {ROLLOUT_DURATION_KEY} annotation)"),
            ));
        }
        Ok(reconciler_rollout_secs(&annotations, 0))
    }

    fn dist(&self, path: &str, d: &DistFile) -> Result<Dist, ScenarioError> {
        let (variant, result) = match d {
            DistFile::Constant(v) => (
                "constant",
                Dist::constant(self.duration(&format!("{path}.constant"), v)?),
            ),
            DistFile::Exponential { mean } => (
                "exponential",
                Dist::exponential(self.duration(&format!("{path}.exponential.mean"), mean)?),
            ),
            DistFile::Lognormal { mean, p99 } => (
                "lognormal",
                Dist::lognormal(
                    self.duration(&format!("{path}.lognormal.mean"), mean)?,
                    self.duration(&format!("{path}.lognormal.p99"), p99)?,
                ),
            ),
            DistFile::Uniform { min, max } => (
                "uniform",
                Dist::uniform(
                    self.duration(&format!("{path}.uniform.min"), min)?,
                    self.duration(&format!("{path}.uniform.max"), max)?,
                ),
            ),
            DistFile::Empirical {
                file: Some(file),
                column,
                buckets: None,
            } => {
                let column = column.as_deref().unwrap_or("latency_ms");
                let text = self.read(&format!("{path}.empirical.file"), file)?;
                let samples =
                    table::read_samples_ms(&text, column).map_err(|e| self.table_error(file, e))?;
                ("empirical", Dist::empirical(samples))
            }
            DistFile::Empirical {
                file: None,
                column: None,
                buckets: Some(buckets),
            } => {
                let mut parsed = Vec::with_capacity(buckets.len());
                for (i, b) in buckets.iter().enumerate() {
                    let le = b.le.0.trim();
                    let le = if le == "+Inf" || le == "Inf" {
                        None
                    } else {
                        Some(self.duration(&format!("{path}.empirical.buckets[{i}].le"), le)?)
                    };
                    parsed.push((le, b.count));
                }
                ("empirical", Dist::histogram(&parsed))
            }
            DistFile::Empirical { .. } => {
                return Err(self.err(
                    &format!("{path}.empirical"),
                    "needs either `file` (with an optional `column`) or `buckets`".to_string(),
                ))
            }
        };
        result.map_err(|e| self.err(&format!("{path}.{variant}"), e.0))
    }

    fn table_error(&self, rel: &str, e: table::TableError) -> ScenarioError {
        ScenarioError::in_file(&self.display_name(rel), e.pos, &e.column, e.message)
    }

    /// Turns Knative's validation errors into scenario errors; `locate` maps a Knative field
    /// path (`spec.traffic[1].tag`) to an error at the right place.
    fn knative(
        &self,
        err: &FieldError,
        locate: &dyn Fn(&str, String) -> ScenarioError,
    ) -> ScenarioError {
        let mut errors = err.merged().into_iter().map(|leaf| {
            locate(
                leaf.paths.first().map_or("", String::as_str),
                leaf.to_string(),
            )
        });
        let mut first = errors.next().unwrap_or_else(|| locate("", err.to_string()));
        first.related = errors.collect();
        first
    }
}

/// The scenario path of the target a Knative `spec.traffic...` path is about: `[i]` after
/// `spec.traffic` (or `spec.traffic.tag[i]`, Knative's array-value form) selects target `i`.
fn traffic_path(prefix: &str, knative_path: &str) -> String {
    let index = knative_path
        .strip_prefix("spec.traffic")
        .and_then(|rest| rest.split_once('['))
        .and_then(|(_, after)| after.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok());
    match index {
        Some(i) => format!("{prefix}[{i}]"),
        None => prefix.to_string(),
    }
}

/// Where the initial traffic block came from.
enum TrafficSource {
    Scenario,
    Manifest,
    Default,
}

/// The run's metric windows are at most [`MAX_WINDOWS`]; the error names `duration` when it
/// alone is too long, else `drain`.
fn check_window_count(
    cx: &Cx,
    f: &ScenarioFile,
    duration: SimDuration,
    drain: SimDuration,
    window: SimDuration,
) -> Result<(), ScenarioError> {
    let per = |d: SimDuration| {
        let w = u64::try_from(window.0).unwrap_or(u64::MAX).max(1);
        u64::try_from(d.0).unwrap_or(0).div_ceil(w)
    };
    let windows = per(duration).saturating_add(per(drain));
    if windows <= MAX_WINDOWS {
        return Ok(());
    }
    let shown = f.metrics.window.as_deref().unwrap_or("1s");
    let (path, text, other) = if per(duration) > MAX_WINDOWS {
        ("duration", f.duration.as_str(), "the drain")
    } else {
        ("drain", f.drain.as_deref().unwrap_or(""), "the duration")
    };
    Err(cx.err(
        path,
        format!("{text} with metrics.window {shown} is {windows} metric windows (with {other}); allowed: at most {MAX_WINDOWS} windows (a longer metrics.window or a shorter run)"),
    ))
}

/// Every `revisionName` in `traffic` must be a revision of the scenario.
fn check_revision_refs(
    traffic: &[TrafficTarget],
    revisions: &BTreeMap<String, usize>,
    locate: &dyn Fn(usize, String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    for (j, t) in traffic.iter().enumerate() {
        if !t.revision_name.is_empty() && !revisions.contains_key(&t.revision_name) {
            let names: Vec<&str> = revisions.keys().map(String::as_str).collect();
            return Err(locate(
                j,
                format!(
                    "unknown revision {:?}; allowed: a name from revisions: {}",
                    t.revision_name,
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn tags_of(traffic: &[TrafficTarget]) -> impl Iterator<Item = String> + '_ {
    traffic
        .iter()
        .filter(|t| !t.tag.is_empty())
        .map(|t| t.tag.clone())
}

/// The tag a kn `--tag` entry sets: `REV=TAG`, or a bare `TAG` (for `@latest`).
fn kn_tag(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(_, tag)| tag)
}

/// The revision a kn entry names on the left of `=` (`--traffic REF=PCT`, `--tag REV=TAG`).
fn kn_ref(entry: &str) -> Option<&str> {
    entry.split_once('=').map(|(r, _)| r)
}

fn build(cx: &Cx, f: ScenarioFile, source_yaml: String) -> Result<Scenario, ScenarioError> {
    if f.name.chars().count() > MAX_NAME_CHARS {
        return Err(cx.err(
            "name",
            format!(
                "a name of {} characters is too long; allowed: at most {MAX_NAME_CHARS} (it names the output directory and every chart title)",
                f.name.chars().count()
            ),
        ));
    }
    if f.name.is_empty()
        || !f
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(cx.err(
            "name",
            format!(
                "{:?} is not allowed; allowed: lower-case letters, digits and '-' (it names the output directory)",
                f.name
            ),
        ));
    }
    let duration = cx.positive_duration("duration", &f.duration)?;

    // The cluster's ConfigMaps, then the service with what its manifest contributes.
    let cluster = knative::load_configmaps(cx, &f.cluster.configmaps)?;
    let mut warnings = cluster.warnings.clone();
    let svc = &f.service;
    let manifest = svc
        .manifest
        .as_deref()
        .map(|rel| knative::load_manifest(cx, rel, svc.name.as_deref()))
        .transpose()?;
    let name = match (&svc.name, &manifest) {
        (Some(n), _) => n.clone(),
        (None, Some(m)) if !m.manifest.meta.name.is_empty() => m.manifest.meta.name.clone(),
        _ => {
            return Err(cx.err(
                "service.name",
                "the service has no name; allowed: service.name, or a service.manifest whose metadata.name is set",
            ))
        }
    };
    let namespace = match (&svc.namespace, &manifest) {
        (Some(ns), _) => ns.clone(),
        (None, Some(m)) if !m.manifest.meta.namespace.is_empty() => {
            m.manifest.meta.namespace.clone()
        }
        _ => "default".to_string(),
    };
    if namespace.contains('.') || !is_dns1123_subdomain(&namespace).is_empty() {
        return Err(cx.err(
            "service.namespace",
            format!("{namespace:?} is not allowed; allowed: a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)"),
        ));
    }
    let domain = svc
        .domain
        .clone()
        .unwrap_or_else(|| "example.com".to_string());
    let domain_errors = is_dns1123_subdomain(&domain);
    if !domain_errors.is_empty() {
        return Err(cx.err(
            "service.domain",
            format!("{domain:?} is not allowed: {}", domain_errors.join("; ")),
        ));
    }
    let annotations = match (&svc.rollout_duration, &manifest) {
        (Some(text), _) => {
            cx.rollout_secs("service.rollout_duration", text)?;
            BTreeMap::from([(ROLLOUT_DURATION_KEY.to_string(), text.clone())])
        }
        (None, Some(m)) => m.manifest.meta.annotations.clone(),
        (None, None) => BTreeMap::new(),
    };

    let target_burst_capacity = f
        .activator
        .target_burst_capacity
        .unwrap_or(cluster.autoscaler.target_burst_capacity);
    if !(target_burst_capacity.is_finite()
        && (target_burst_capacity == -1.0 || target_burst_capacity >= 0.0))
    {
        return Err(cx.err(
            "activator.target_burst_capacity",
            format!("{target_burst_capacity} is not allowed; allowed: -1 (activator always in the path), 0 (only at zero pods) or > 0"),
        ));
    }
    let autoscaler = build_autoscaler(cx, &f, &cluster, target_burst_capacity, &mut warnings)?;
    // What ValidateAnnotations reads of the cluster (annotation_validation.go:54).
    let cluster_autoscaling = ClusterAutoscaling {
        allow_zero_initial_scale: autoscaler.config.allow_zero_initial_scale,
        ..cluster.autoscaling.clone()
    };

    // Revisions.
    if f.revisions.is_empty() {
        return Err(cx.err(
            "revisions",
            "no revisions; allowed: a list of at least one revision",
        ));
    }
    let mut revisions = Vec::with_capacity(f.revisions.len());
    let mut index_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in f.revisions.iter().enumerate() {
        let path = format!("revisions[{i}]");
        let label = is_dns1035_label(&r.name);
        if !label.is_empty() {
            return Err(cx.err(
                &format!("{path}.name"),
                format!("{:?} is not a DNS-1035 label: {}", r.name, label.join("; ")),
            ));
        }
        if let Some(first) = index_of.insert(r.name.clone(), i) {
            return Err(cx.err(
                &format!("{path}.name"),
                format!(
                    "duplicate revision name {:?} (also revisions[{first}].name); allowed: unique names",
                    r.name
                ),
            ));
        }
        let settings = manifest.as_ref().and_then(|m| m.settings_for(&r.name));
        let in_manifest = |field: &str, message: String| -> ScenarioError {
            match (settings, &manifest) {
                (Some((s, m)), Some(info)) => info.err(m, &s.path(field), message),
                _ => cx.err(&path, message),
            }
        };
        let defaults = &cluster.defaults;
        // serving metadata_validation.go:92-107: 0 (or 1 without allow-container-concurrency-
        // zero) to container-concurrency-max-limit; unset: config-defaults container-concurrency
        // (revision_defaults.go:75-77).
        let min_cc = i64::from(!defaults.allow_container_concurrency_zero);
        let cc = match (
            r.container_concurrency,
            settings.and_then(|(s, _)| s.container_concurrency),
        ) {
            (Some(v), _) => cx.int_within(
                &format!("{path}.container_concurrency"),
                v,
                min_cc,
                defaults.container_concurrency_max_limit,
            )?,
            (None, Some(v)) => {
                if v < min_cc || v > defaults.container_concurrency_max_limit {
                    let (s, _) = settings.expect("a manifest value comes with its settings");
                    let e = err_out_of_bounds_value(
                        v,
                        min_cc,
                        defaults.container_concurrency_max_limit,
                        "",
                    )
                    .via_field(&s.path("spec.containerConcurrency"));
                    return Err(in_manifest("spec.containerConcurrency", e.to_string()));
                }
                v as u32
            }
            (None, None) => defaults.container_concurrency as u32,
        };
        // revision_validation.go:174-184: 0 means the default; otherwise up to config-defaults
        // max-revision-timeout-seconds (600).
        let max_timeout = SimDuration::from_secs(defaults.max_revision_timeout_seconds);
        let timeout = match (&r.timeout, settings.and_then(|(s, _)| s.timeout_seconds)) {
            (Some(text), _) => {
                let d = cx.duration(&format!("{path}.timeout"), text)?;
                if d < SimDuration::from_secs(1) || d > max_timeout {
                    return Err(cx.err(
                        &format!("{path}.timeout"),
                        format!("{text} is out of range; allowed: 1s to {max_timeout} (config-defaults max-revision-timeout-seconds)"),
                    ));
                }
                d
            }
            (None, Some(secs)) if secs != 0 => {
                if secs < 0 || secs > defaults.max_revision_timeout_seconds {
                    let (s, _) = settings.expect("a manifest value comes with its settings");
                    let e = err_out_of_bounds_value(
                        secs,
                        0,
                        defaults.max_revision_timeout_seconds,
                        "timeoutSeconds",
                    )
                    .via_field(&s.path("spec"));
                    return Err(in_manifest("spec.timeoutSeconds", e.to_string()));
                }
                SimDuration::from_secs(secs)
            }
            _ => SimDuration::from_secs(defaults.revision_timeout_seconds),
        };
        // revision_defaults.go:66-72: unset, it is config-defaults'
        // revision-response-start-timeout-seconds when that is non-zero and below the timeout.
        let response_start_timeout = match (
            &r.response_start_timeout,
            settings.and_then(|(s, _)| s.response_start_timeout_seconds),
        ) {
            (Some(text), _) => {
                let d = cx.duration(&format!("{path}.response_start_timeout"), text)?;
                if d < SimDuration::ZERO {
                    return Err(cx.err(
                        &format!("{path}.response_start_timeout"),
                        format!(
                            "{text} is negative; allowed: >= 0s (0s: no response-start timeout)"
                        ),
                    ));
                }
                (d > SimDuration::ZERO).then_some(d)
            }
            (None, Some(secs)) => {
                if secs < 0 {
                    return Err(in_manifest(
                        "spec.responseStartTimeoutSeconds",
                        format!("{secs} is negative; allowed: >= 0 (0: no response-start timeout)"),
                    ));
                }
                (secs > 0).then(|| SimDuration::from_secs(secs))
            }
            (None, None) => {
                let default = defaults.revision_response_start_timeout_seconds;
                (default != 0 && SimDuration::from_secs(default) < timeout)
                    .then(|| SimDuration::from_secs(default))
            }
        };
        let service_time = cx.dist(&format!("{path}.service_time"), &r.service_time)?;
        let app = match r.app {
            None => AppModel::Workers(1000),
            Some(AppFile::Workers(n)) => AppModel::Workers(cx.int_within(
                &format!("{path}.app.workers"),
                n,
                1,
                i64::from(u32::MAX),
            )?),
            Some(AppFile::ProcessorSharing { cores }) => AppModel::ProcessorSharing {
                cores: cx.int_within(
                    &format!("{path}.app.processor_sharing.cores"),
                    cores,
                    1,
                    i64::from(u32::MAX),
                )?,
            },
        };
        let pods = cx.int_within(&format!("{path}.pods"), r.pods.unwrap_or(1), 0, 10_000)?;
        let startup = match &r.startup {
            Some(d) => cx.dist(&format!("{path}.startup"), d)?,
            None => Dist::Uniform {
                min: SimDuration::from_secs(1),
                max: SimDuration::from_secs(3),
            },
        };
        let autoscaling = knative::revision_autoscaling(
            cx,
            i,
            r,
            manifest.as_ref(),
            &cluster_autoscaling,
            &mut warnings,
        )?;
        for (key, v) in [
            ("min-scale", autoscaling.min_scale),
            ("max-scale", autoscaling.max_scale),
            ("initial-scale", autoscaling.initial_scale),
        ] {
            if v.is_some_and(|v| v > 10_000) {
                return Err(cx.err(
                    &format!("{path}.autoscaling.{key}"),
                    format!(
                        "{key} {} is more than splitlab simulates; allowed: 0 to 10000 pods",
                        v.unwrap_or(0)
                    ),
                ));
            }
        }
        revisions.push(RevisionSpec {
            name: r.name.clone(),
            container_concurrency: cc,
            timeout,
            response_start_timeout,
            service_time,
            app,
            pods,
            startup,
            created_at: None,
            autoscaling,
            failure: match &r.failure {
                Some(f) => failure::failure_spec(cx, &format!("{path}.failure"), f)?,
                None => Default::default(),
            },
        });
    }

    // The initial traffic block, validated as the webhook validates a Service.
    let (mut traffic, source) = match (
        &f.traffic,
        manifest
            .as_ref()
            .and_then(|m| m.manifest.spec_traffic.as_ref()),
    ) {
        (Some(t), _) => (t.clone(), TrafficSource::Scenario),
        (None, Some(t)) => (t.clone(), TrafficSource::Manifest),
        (None, None) => (Vec::new(), TrafficSource::Default),
    };
    default_traffic(&mut traffic, true);
    let in_manifest = |knative_path: &str, message: String| -> ScenarioError {
        match &manifest {
            Some(m) => ScenarioError::in_file(
                &m.display,
                Some(m.manifest.positions.of_path(knative_path)),
                knative_path,
                message,
            ),
            None => cx.err("service", message),
        }
    };
    let locate_initial = |knative_path: &str, message: String| -> ScenarioError {
        if knative_path.starts_with("spec.traffic") {
            match source {
                TrafficSource::Manifest => in_manifest(knative_path, message),
                _ => cx.err(&traffic_path("traffic", knative_path), message),
            }
        } else if knative_path.starts_with("metadata.name") && svc.name.is_none() {
            in_manifest(knative_path, message)
        } else if knative_path.starts_with("metadata.name") {
            cx.err("service.name", message)
        } else if knative_path.starts_with("metadata.annotations") && svc.rollout_duration.is_none()
        {
            in_manifest(knative_path, message)
        } else {
            cx.err("service", message)
        }
    };
    let meta = ObjectMeta {
        name: name.clone(),
        namespace: namespace.clone(),
        labels: BTreeMap::new(),
        annotations: annotations.clone(),
    };
    if let Some(e) = validate_service(&meta, &traffic) {
        return Err(cx.knative(&e, &locate_initial));
    }
    let locate_initial_target = |j: usize, message: String| match source {
        TrafficSource::Manifest => in_manifest(&format!("spec.traffic[{j}]"), message),
        _ => cx.err(&format!("traffic[{j}].revisionName"), message),
    };
    check_revision_refs(&traffic, &index_of, &locate_initial_target)?;
    let rollout_duration_secs =
        reconciler_rollout_secs(&annotations, cluster.rollout_duration_secs.unwrap_or(0));
    let mut known_tags: BTreeSet<String> = tags_of(&traffic).collect();
    let tag_header_routing = svc
        .tag_header_routing
        .or(cluster.tag_header_routing)
        .unwrap_or(false);

    // The timeline.
    let mut events: Vec<(usize, TimelineEvent)> = Vec::with_capacity(f.timeline.len());
    let mut created_by: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, item) in f.timeline.iter().enumerate() {
        let path = format!("timeline[{k}]");
        let at = cx.duration(&format!("{path}.at"), &item.at)?;
        if at < SimDuration::ZERO || at > duration {
            return Err(cx.err(
                &format!("{path}.at"),
                format!(
                    "{} is outside the run; allowed: 0s to {duration} (the duration)",
                    item.at
                ),
            ));
        }
        let present: Vec<&str> = [
            ("create_revision", item.create_revision.is_some()),
            ("traffic", item.traffic.is_some()),
            ("kn", item.kn.is_some()),
            ("scale", item.scale.is_some()),
            ("rollout_duration", item.rollout_duration.is_some()),
            ("failure", item.failure.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        if present.len() != 1 {
            let got = if present.is_empty() {
                "none".to_string()
            } else {
                present.join(", ")
            };
            return Err(cx.err(
                &path,
                format!("a timeline event needs exactly one action (got {got}); allowed: create_revision, traffic, kn, scale, rollout_duration, failure"),
            ));
        }
        let unknown_revision = |field: &str, name: &str| {
            let names: Vec<&str> = index_of.keys().map(String::as_str).collect();
            cx.err(
                &format!("{path}.{field}"),
                format!(
                    "unknown revision {name:?}; allowed: a name from revisions: {}",
                    names.join(", ")
                ),
            )
        };
        let action = if let Some(rev) = &item.create_revision {
            let Some(&r) = index_of.get(rev) else {
                return Err(unknown_revision("create_revision", rev));
            };
            if let Some(first) = created_by.insert(r, k) {
                return Err(cx.err(
                    &format!("{path}.create_revision"),
                    format!("revision {rev:?} is already created by timeline[{first}]; allowed: one create_revision per revision"),
                ));
            }
            Action::CreateRevision(r)
        } else if let Some(t) = &item.traffic {
            let mut t = t.clone();
            default_traffic(&mut t, true);
            let prefix = format!("{path}.traffic");
            if let Some(e) = validate_traffic_list(&t, TargetContext::SERVICE_SPEC)
                .via_field("traffic")
                .via_field("spec")
            {
                let locate =
                    |kp: &str, message: String| cx.err(&traffic_path(&prefix, kp), message);
                return Err(cx.knative(&e, &locate));
            }
            check_revision_refs(&t, &index_of, &|j, message| {
                cx.err(&format!("{prefix}[{j}].revisionName"), message)
            })?;
            known_tags.extend(tags_of(&t));
            Action::SetTraffic(t)
        } else if let Some(kn) = &item.kn {
            if kn.traffic.is_empty() && kn.tag.is_empty() && kn.untag.is_empty() {
                return Err(cx.err(
                    &format!("{path}.kn"),
                    "an empty kn edit; allowed: at least one of traffic, tag, untag",
                ));
            }
            // Each occurrence on its own, so an error points at the one that is bad.
            let lists = [
                ("traffic", &kn.traffic),
                ("tag", &kn.tag),
                ("untag", &kn.untag),
            ];
            for (field, list) in lists {
                for (j, occurrence) in list.iter().enumerate() {
                    let one = std::slice::from_ref(occurrence);
                    let result = match field {
                        "traffic" => TrafficFlags::from_occurrences(one, &[], &[]),
                        "tag" => TrafficFlags::from_occurrences(&[], one, &[]),
                        _ => TrafficFlags::from_occurrences(&[], &[], one),
                    };
                    if let Err(e) = result {
                        return Err(cx.err(&format!("{path}.kn.{field}[{j}]"), e.to_string()));
                    }
                }
            }
            let flags = TrafficFlags::from_occurrences(&kn.traffic, &kn.tag, &kn.untag)
                .map_err(|e| cx.err(&format!("{path}.kn"), e.to_string()))?;
            known_tags.extend(flags.tags.iter().map(|t| kn_tag(t).to_string()));
            Action::Kn {
                traffic: kn.traffic.clone(),
                tags: kn.tag.clone(),
                untags: kn.untag.clone(),
            }
        } else if let Some(scale) = &item.scale {
            let Some(&r) = index_of.get(&scale.revision) else {
                return Err(unknown_revision("scale.revision", &scale.revision));
            };
            let pods = cx.int_within(&format!("{path}.scale.pods"), scale.pods, 0, 10_000)?;
            Action::Scale { revision: r, pods }
        } else if let Some(text) = &item.rollout_duration {
            Action::SetRolloutDuration {
                secs: cx.rollout_secs(&format!("{path}.rollout_duration"), text)?,
            }
        } else if let Some(f) = &item.failure {
            let Some(&r) = index_of.get(&f.revision) else {
                return Err(unknown_revision("failure.revision", &f.revision));
            };
            Action::SetFailure {
                revision: r,
                failure: failure::failure_spec(cx, &format!("{path}.failure"), &f.block())?,
            }
        } else {
            // `present.len() == 1` above: one of the branches matched.
            return Err(cx.err(&path, "a timeline event needs exactly one action"));
        };
        events.push((
            k,
            TimelineEvent {
                at: SimTime(at.0),
                action,
            },
        ));
    }
    // Stable: same-time events keep file order.
    events.sort_by_key(|(_, e)| e.at);

    // A revision the timeline creates may not be named before it exists.
    let creation: BTreeMap<usize, (usize, SimTime, usize)> = events
        .iter()
        .enumerate()
        .filter_map(|(order, (k, e))| match e.action {
            Action::CreateRevision(r) => Some((r, (order, e.at, *k))),
            _ => None,
        })
        .collect();
    let not_yet = |r: usize| {
        let (_, at, k) = creation
            .get(&r)
            .copied()
            .expect("not_yet is only called for revisions the timeline creates");
        format!(
            "revision {:?} does not exist yet: timeline[{k}] creates it at {}s; allowed: name it only at or after its creation",
            revisions[r].name, at
        )
    };
    for (j, t) in traffic.iter().enumerate() {
        if let Some(&r) = index_of.get(&t.revision_name) {
            if creation.contains_key(&r) {
                return Err(locate_initial_target(j, not_yet(r)));
            }
        }
    }
    for (order, (k, e)) in events.iter().enumerate() {
        let later = |name: &str| {
            index_of
                .get(name)
                .copied()
                .filter(|r| creation.get(r).is_some_and(|(o, _, _)| *o > order))
        };
        match &e.action {
            Action::SetTraffic(t) => {
                for (j, target) in t.iter().enumerate() {
                    if let Some(r) = later(&target.revision_name) {
                        return Err(cx.err(
                            &format!("timeline[{k}].traffic[{j}].revisionName"),
                            not_yet(r),
                        ));
                    }
                }
            }
            Action::Kn { traffic, tags, .. } => {
                let lists = [("traffic", traffic), ("tag", tags)];
                for (field, list) in lists {
                    for (j, occurrence) in list.iter().enumerate() {
                        for entry in occurrence.split(',') {
                            if let Some(r) = kn_ref(entry.trim()).and_then(later) {
                                return Err(
                                    cx.err(&format!("timeline[{k}].kn.{field}[{j}]"), not_yet(r))
                                );
                            }
                        }
                    }
                }
            }
            Action::Scale { revision, .. } => {
                if let Some(r) = later(&revisions[*revision].name) {
                    return Err(cx.err(&format!("timeline[{k}].scale.revision"), not_yet(r)));
                }
            }
            _ => {}
        }
    }
    for (&r, &(_, at, _)) in &creation {
        revisions[r].created_at = Some(at);
    }
    let timeline: Vec<TimelineEvent> = events.into_iter().map(|(_, e)| e).collect();
    warnings.extend(no_effect_warnings(
        &f,
        &revisions,
        &timeline,
        &autoscaler,
        rollout_duration_secs,
        tag_header_routing,
        duration,
    ));
    if let Some(info) = &manifest {
        for name in info.revisions.keys().filter(|n| !index_of.contains_key(*n)) {
            warnings.push(format!(
                "{}: Revision {name} is not one of the scenario's revisions; its settings are not used",
                info.display
            ));
        }
    }

    // Arrivals.
    let arrivals = build_arrivals(cx, &f.arrivals, duration, &known_tags)?;

    let picker = match &f.picker {
        None => PickerKind::Random,
        Some(p) => p.parse::<PickerKind>().map_err(|e| cx.err("picker", e))?,
    };
    let profile = match &f.ingress.profile {
        None => IngressProfile::default(),
        Some(p) => p
            .parse::<IngressProfile>()
            .map_err(|e| cx.err("ingress.profile", e))?,
    };
    let ingress = IngressSpec {
        profile,
        replicas: match f.ingress.replicas {
            Some(n) => cx.int_within("ingress.replicas", n, 1, 1000)?,
            None => profile.default_replicas(),
        },
        max_requests: match f.ingress.max_requests {
            Some(n) => cx.int_within("ingress.max_requests", n, 1, i64::from(u32::MAX))?,
            None => profile.default_max_requests(),
        },
        programming_delay: match &f.ingress.programming_delay {
            Some(d) => cx.dist("ingress.programming_delay", d)?,
            None => profile.default_programming_delay(),
        },
    };
    let activator = ActivatorSpec {
        replicas: cx.int_within(
            "activator.replicas",
            f.activator.replicas.unwrap_or(1),
            1,
            20,
        )?,
        probe_period: match &f.activator.probe_period {
            Some(text) => cx.positive_duration("activator.probe_period", text)?,
            None => SimDuration::from_millis(200),
        },
        lb_policy: match f.activator.lb_policy {
            None | Some(LbPolicyFile::Auto) => None,
            Some(LbPolicyFile::RandomChoice2) => Some(LbPolicy::RandomChoice2),
            Some(LbPolicyFile::FirstAvailable) => Some(LbPolicy::FirstAvailable),
            Some(LbPolicyFile::RoundRobin) => Some(LbPolicy::RoundRobin),
        },
    };
    let client = ClientSpec {
        timeout: f
            .client
            .timeout
            .as_deref()
            .map(|text| cx.positive_duration("client.timeout", text))
            .transpose()?,
    };
    let metrics = MetricsSpec {
        window: match &f.metrics.window {
            Some(text) => cx.duration_within(
                "metrics.window",
                text,
                SimDuration::from_millis(100),
                SimDuration::from_secs(60),
            )?,
            None => SimDuration::from_secs(1),
        },
    };
    let drain = match &f.drain {
        Some(text) => {
            let d = cx.duration("drain", text)?;
            if d < SimDuration::ZERO {
                return Err(cx.err("drain", format!("{text} is negative; allowed: >= 0s")));
            }
            d
        }
        None => {
            let longest = revisions
                .iter()
                .map(RevisionSpec::request_deadline)
                .max()
                .unwrap_or(SimDuration::ZERO);
            longest + metrics.window
        }
    };
    check_window_count(cx, &f, duration, drain, metrics.window)?;

    let kubelet_ready_delay = match &f.kubernetes.readiness_delay {
        Some(d) => cx.dist("kubernetes.readiness_delay", d)?,
        None => Dist::Uniform {
            min: SimDuration::ZERO,
            max: SimDuration::from_secs(10),
        },
    };
    let endpoint_removal_delay = match &f.kubernetes.endpoint_removal_delay {
        Some(d) => cx.dist("kubernetes.endpoint_removal_delay", d)?,
        None => Dist::Uniform {
            min: SimDuration::from_millis(500),
            max: SimDuration::from_secs(2),
        },
    };
    let analysis = match f.analysis.as_ref() {
        Some(a) => {
            let (run, unmodelled) = analysis::analysis_run(cx, a)?;
            warnings.extend(unmodelled);
            warnings.extend(traffic_under_analysis_warnings(&timeline, run.start));
            Some(run)
        }
        None => None,
    };

    Ok(Scenario {
        name: f.name,
        duration,
        drain,
        seed: f.seed.unwrap_or(1),
        service: ServiceSpec {
            name,
            namespace,
            domain,
            rollout_duration_secs,
            tag_header_routing,
        },
        revisions,
        traffic,
        timeline,
        arrivals,
        picker,
        ingress,
        activator,
        client,
        metrics,
        autoscaler,
        kubelet_ready_delay,
        endpoint_removal_delay,
        source_yaml,
        warnings,
        analysis,
    })
}

/// A timeline edit of `spec.traffic` once Flagger's analysis ticks: on a cluster that is a
/// person editing a Service Flagger manages. The model's controller keeps its own weights (it
/// does not read the Service back each tick as Flagger's `GetRoutes` does), so the edit holds
/// only until Flagger's next weight change: said, never silent.
fn traffic_under_analysis_warnings(timeline: &[TimelineEvent], start: SimTime) -> Vec<String> {
    timeline
        .iter()
        .filter(|e| e.at >= start && matches!(e.action, Action::SetTraffic(_) | Action::Kn { .. }))
        .map(|e| {
            format!(
                "the timeline event at {}s edits spec.traffic while Flagger's analysis drives it (from {start}s): the edit holds only until Flagger's next weight change (the model's Flagger keeps its own weights and does not read the edit back); leave traffic to the analysis, or end the analysis first",
                e.at
            )
        })
        .collect()
}

/// Settings that are valid but change nothing in this run: said, never silent.
fn no_effect_warnings(
    f: &ScenarioFile,
    revisions: &[RevisionSpec],
    timeline: &[TimelineEvent],
    autoscaler: &AutoscalerSpec,
    rollout_secs: i64,
    tag_header_routing: bool,
    duration: SimDuration,
) -> Vec<String> {
    let mut warnings = Vec::new();
    // A revision the timeline creates starts at its initial scale when the autoscaler is on
    // (`Kpa::created`): its scripted pods are not used.
    if autoscaler.enabled {
        for (i, (r, file)) in revisions.iter().zip(&f.revisions).enumerate() {
            if let (Some(at), Some(pods)) = (r.created_at, file.pods) {
                let mut config = autoscaler.config.clone();
                r.autoscaling.apply_to(&mut config);
                let start = config.effective_initial_scale().max(config.min_scale);
                warnings.push(format!(
                    "revisions[{i}].pods={pods} has no effect: with the autoscaler on, {} (created at {at}s) starts at its initial scale, {start} pod(s) (autoscaling.knative.dev/initial-scale, min-scale; config-autoscaler initial-scale), then the autoscaler decides; set autoscaler.enabled=false to script pods",
                    r.name
                ));
            }
        }
    }
    // A scripted scale is the KPA's to undo at its next tick (every 2 s) when it is on.
    if autoscaler.enabled {
        for (k, item) in f.timeline.iter().enumerate() {
            if let Some(scale) = &item.scale {
                warnings.push(format!(
                    "timeline[{k}].scale ({} to {} pods) lasts only until the autoscaler's next tick (2 s): with the autoscaler on, the KPA sets the pod count; set autoscaler.enabled=false to script pods",
                    scale.revision, scale.pods
                ));
            }
        }
    }
    // Header routing is off: the header share addresses the main route like any request.
    if !tag_header_routing && !f.arrivals.headers.is_empty() {
        warnings.push(
            "arrivals.headers has no effect: tag-header-based routing is off (service.tag_header_routing, config-features tag-header-based-routing), so a Knative-Serving-Tag header is ignored".to_string(),
        );
    }
    // A gradual rollout starts when a new revision becomes the latest ready one.
    let changes_duration = timeline
        .iter()
        .any(|e| matches!(e.action, Action::SetRolloutDuration { .. }));
    if rollout_secs > 0 && !changes_duration {
        let rollout = SimDuration::from_secs(rollout_secs);
        let creations: Vec<(usize, SimTime)> = timeline
            .iter()
            .filter_map(|e| match e.action {
                Action::CreateRevision(r) => Some((r, e.at)),
                _ => None,
            })
            .collect();
        if creations.is_empty() {
            warnings.push(format!(
                "the rollout duration ({rollout}) has no effect: no timeline event creates a revision, so no gradual rollout starts"
            ));
        }
        for (r, at) in creations {
            let left = SimDuration(duration.0 - at.0);
            if rollout > left {
                warnings.push(format!(
                    "the rollout to {} (created at {at}s) takes {rollout}, longer than the {left} left in the run: it will not finish",
                    revisions[r].name
                ));
            }
        }
    }
    warnings
}

/// config-autoscaler with Knative's defaults (datapath.md (b)); ranges as Knative validates
/// them (`pkg/apis/autoscaling/register.go`).
fn build_autoscaler(
    cx: &Cx,
    f: &ScenarioFile,
    cluster: &ClusterConfig,
    target_burst_capacity: f64,
    warnings: &mut Vec<String>,
) -> Result<AutoscalerSpec, ScenarioError> {
    let a = &f.autoscaler;
    // The scenario's keys win over the ConfigMap's; say so when both set one.
    let overrides = [
        ("metric", a.metric.is_some(), ""),
        (
            "target_utilization_percentage",
            a.target_utilization_percentage.is_some(),
            "",
        ),
        (
            "container_concurrency_target_default",
            a.container_concurrency_target_default.is_some(),
            "container-concurrency-target-default",
        ),
        ("stable_window", a.stable_window.is_some(), "stable-window"),
        (
            "panic_window_percentage",
            a.panic_window_percentage.is_some(),
            "panic-window-percentage",
        ),
        (
            "panic_threshold_percentage",
            a.panic_threshold_percentage.is_some(),
            "panic-threshold-percentage",
        ),
        (
            "max_scale_up_rate",
            a.max_scale_up_rate.is_some(),
            "max-scale-up-rate",
        ),
        (
            "max_scale_down_rate",
            a.max_scale_down_rate.is_some(),
            "max-scale-down-rate",
        ),
        (
            "enable_scale_to_zero",
            a.enable_scale_to_zero.is_some(),
            "enable-scale-to-zero",
        ),
        (
            "scale_to_zero_grace_period",
            a.scale_to_zero_grace_period.is_some(),
            "scale-to-zero-grace-period",
        ),
        ("initial_scale", a.initial_scale.is_some(), "initial-scale"),
        (
            "allow_zero_initial_scale",
            a.allow_zero_initial_scale.is_some(),
            "allow-zero-initial-scale",
        ),
        ("min_scale", a.min_scale.is_some(), "min-scale"),
        ("max_scale", a.max_scale.is_some(), "max-scale"),
        (
            "scale_down_delay",
            a.scale_down_delay.is_some(),
            "scale-down-delay",
        ),
    ];
    let source = cluster.sources.get("config-autoscaler");
    for (field, set, key) in overrides {
        if set && cluster.autoscaler_keys.contains(key) {
            warnings.push(format!(
                "autoscaler.{field} overrides config-autoscaler {key} from {}",
                source.map_or("the ConfigMap", String::as_str)
            ));
        }
    }
    if f.activator.target_burst_capacity.is_some()
        && cluster.autoscaler_keys.contains("target-burst-capacity")
    {
        warnings.push(format!(
            "activator.target_burst_capacity overrides config-autoscaler target-burst-capacity from {}",
            source.map_or("the ConfigMap", String::as_str)
        ));
    }
    let mut c = AutoscalerConfig {
        target_burst_capacity,
        ..cluster.autoscaler.clone()
    };
    let range =
        |path: &str, v: f64, lo: f64, hi: f64, allowed: &str| -> Result<f64, ScenarioError> {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(v)
            } else {
                Err(cx.err(path, format!("{v} is out of range; allowed: {allowed}")))
            }
        };
    if let Some(m) = &a.metric {
        c.metric = match m.as_str() {
            "concurrency" => ScalingMetric::Concurrency,
            "rps" => ScalingMetric::Rps,
            other => {
                return Err(cx.err(
                    "autoscaler.metric",
                    format!("{other:?} is not a metric; allowed: concurrency, rps"),
                ))
            }
        };
    }
    if let Some(m) = &a.aggregation {
        c.aggregation = match m.as_str() {
            "linear" => Aggregation::Linear,
            "weighted-exponential" => Aggregation::WeightedExponential,
            other => {
                return Err(cx.err(
                    "autoscaler.aggregation",
                    format!(
                        "{other:?} is not an aggregation; allowed: linear, weighted-exponential"
                    ),
                ))
            }
        };
    }
    if let Some(v) = a.target_utilization_percentage {
        c.target_utilization_percentage = Some(range(
            "autoscaler.target_utilization_percentage",
            v,
            1.0,
            100.0,
            "1 to 100",
        )?);
    }
    if let Some(v) = a.container_concurrency_target_default {
        c.container_concurrency_target_default = range(
            "autoscaler.container_concurrency_target_default",
            v,
            0.01,
            1e6,
            "> 0",
        )?;
    }
    if let Some(text) = &a.stable_window {
        c.stable_window = cx.duration_within(
            "autoscaler.stable_window",
            text,
            SimDuration::from_secs(6),
            SimDuration::from_secs(3600),
        )?;
    }
    if let Some(v) = a.panic_window_percentage {
        c.panic_window_percentage = range(
            "autoscaler.panic_window_percentage",
            v,
            1.0,
            100.0,
            "1 to 100",
        )?;
    }
    if let Some(v) = a.panic_threshold_percentage {
        c.panic_threshold_percentage = range(
            "autoscaler.panic_threshold_percentage",
            v,
            110.0,
            1000.0,
            "110 to 1000",
        )?;
    }
    if let Some(v) = a.max_scale_up_rate {
        c.max_scale_up_rate = range("autoscaler.max_scale_up_rate", v, 1.000_001, 1e9, "> 1")?;
    }
    if let Some(v) = a.max_scale_down_rate {
        c.max_scale_down_rate = range("autoscaler.max_scale_down_rate", v, 1.000_001, 1e9, "> 1")?;
    }
    if let Some(v) = a.enable_scale_to_zero {
        c.enable_scale_to_zero = v;
    }
    if let Some(text) = &a.scale_to_zero_grace_period {
        c.scale_to_zero_grace_period = cx.duration_within(
            "autoscaler.scale_to_zero_grace_period",
            text,
            SimDuration::ZERO,
            SimDuration::from_secs(3600),
        )?;
    }
    if let Some(v) = a.initial_scale {
        c.initial_scale = cx.int_within("autoscaler.initial_scale", v, 0, 10_000)?;
    }
    if let Some(v) = a.allow_zero_initial_scale {
        c.allow_zero_initial_scale = v;
    }
    if let Some(v) = a.min_scale {
        c.min_scale = cx.int_within("autoscaler.min_scale", v, 0, 10_000)?;
    }
    if let Some(v) = a.max_scale {
        c.max_scale = cx.int_within("autoscaler.max_scale", v, 0, 10_000)?;
    }
    if let Some(text) = &a.scale_down_delay {
        c.scale_down_delay = cx.duration_within(
            "autoscaler.scale_down_delay",
            text,
            SimDuration::ZERO,
            SimDuration::from_secs(3600),
        )?;
    }
    if let Some(v) = a.activation_scale {
        c.activation_scale = Some(cx.int_within("autoscaler.activation_scale", v, 2, 10_000)?);
    }
    Ok(AutoscalerSpec {
        enabled: a.enabled.unwrap_or(true),
        config: c,
    })
}

fn build_arrivals(
    cx: &Cx,
    a: &ArrivalsFile,
    duration: SimDuration,
    known_tags: &BTreeSet<String>,
) -> Result<ArrivalSpec, ScenarioError> {
    const PROCESSES: &str = "exactly one of poisson, constant, schedule, bursts, trace";
    let present: Vec<&str> = [
        ("poisson", a.poisson.is_some()),
        ("constant", a.constant.is_some()),
        ("schedule", a.schedule.is_some()),
        ("bursts", a.bursts.is_some()),
        ("trace", a.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    match present.as_slice() {
        [] => {
            return Err(cx.err(
                "arrivals",
                format!("no arrival process; allowed: {PROCESSES}"),
            ))
        }
        [_] => {}
        [_, second, ..] => {
            return Err(cx.err_at(
                &format!("arrivals.{second}"),
                format!(
                    "{} arrival processes ({}); allowed: {PROCESSES}",
                    present.len(),
                    present.join(", ")
                ),
                true,
            ))
        }
    }
    let process = if let Some(p) = &a.poisson {
        ArrivalProcessSpec::Poisson {
            rate_per_s: cx.rate("arrivals.poisson.rate", p.rate, false)?,
        }
    } else if let Some(c) = &a.constant {
        ArrivalProcessSpec::Constant {
            rate_per_s: cx.rate("arrivals.constant.rate", c.rate, false)?,
        }
    } else if let Some(s) = &a.schedule {
        if s.points.is_empty() {
            return Err(cx.err(
                "arrivals.schedule.points",
                "no points; allowed: a list of {at, rate} steps and {at, ramp_to, over} ramps",
            ));
        }
        let mut points = Vec::with_capacity(s.points.len());
        let mut previous = SimDuration::ZERO;
        let mut any_positive = false;
        for (i, p) in s.points.iter().enumerate() {
            let path = format!("arrivals.schedule.points[{i}]");
            let at = cx.duration(&format!("{path}.at"), &p.at)?;
            if at < previous || at > duration {
                return Err(cx.err(
                    &format!("{path}.at"),
                    format!("{} is not allowed; allowed: from the previous point's {previous} to {duration} (the duration)", p.at),
                ));
            }
            previous = at;
            let point = match (p.rate, p.ramp_to, &p.over) {
                (Some(rate), None, None) => RatePoint::Step {
                    at: SimTime(at.0),
                    rate_per_s: cx.rate(&format!("{path}.rate"), rate, true)?,
                },
                (None, Some(to), Some(over)) => RatePoint::Ramp {
                    at: SimTime(at.0),
                    to_rate_per_s: cx.rate(&format!("{path}.ramp_to"), to, true)?,
                    over: cx.positive_duration(&format!("{path}.over"), over)?,
                },
                _ => {
                    return Err(cx.err(
                        &path,
                        "a point needs either rate (a step) or ramp_to and over (a ramp)",
                    ))
                }
            };
            any_positive |= match point {
                RatePoint::Step { rate_per_s, .. } => rate_per_s > 0.0,
                RatePoint::Ramp { to_rate_per_s, .. } => to_rate_per_s > 0.0,
            };
            points.push(point);
        }
        if !any_positive {
            return Err(cx.err(
                "arrivals.schedule.points",
                "every rate is 0; allowed: at least one point with a rate > 0",
            ));
        }
        ArrivalProcessSpec::Schedule {
            points,
            poisson: s.poisson,
        }
    } else if let Some(b) = &a.bursts {
        let on = cx.dist("arrivals.bursts.on", &b.on)?;
        if on.mean_secs() <= 0.0 {
            return Err(cx.err(
                "arrivals.bursts.on",
                "the on phase always lasts 0s; allowed: a distribution with a mean > 0s",
            ));
        }
        ArrivalProcessSpec::Bursts {
            on_rate_per_s: cx.rate("arrivals.bursts.on_rate", b.on_rate, false)?,
            off_rate_per_s: cx.rate("arrivals.bursts.off_rate", b.off_rate, true)?,
            on,
            off: cx.dist("arrivals.bursts.off", &b.off)?,
        }
    } else if let Some(t) = &a.trace {
        let text = cx.read("arrivals.trace.file", &t.file)?;
        let rows = table::read_trace(&text, duration, known_tags)
            .map_err(|e| cx.table_error(&t.file, e))?;
        if rows.is_empty() {
            return Err(cx.err(
                "arrivals.trace.file",
                format!("{} has no rows within the duration ({duration}); allowed: a trace with at least one request", cx.display_name(&t.file)),
            ));
        }
        ArrivalProcessSpec::Trace { rows }
    } else {
        return Err(cx.err(
            "arrivals",
            format!("no arrival process; allowed: {PROCESSES}"),
        ));
    };

    let shares =
        |field: &str, map: &BTreeMap<String, f64>| -> Result<Vec<(String, f64)>, ScenarioError> {
            let mut sum = 0.0;
            for (tag, &share) in map {
                let path = format!("arrivals.{field}.{tag}");
                if !(0.0..=1.0).contains(&share) {
                    return Err(cx.err(
                        &path,
                        format!("share {share} is not allowed; allowed: 0 to 1"),
                    ));
                }
                if !known_tags.contains(tag) {
                    let known: Vec<&str> = known_tags.iter().map(String::as_str).collect();
                    return Err(cx.err_at(
                        &path,
                        format!(
                            "tag {tag:?} is not in any traffic block of the scenario; allowed: {}",
                            if known.is_empty() {
                                "none (no traffic block has a tag)".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                        true,
                    ));
                }
                sum += share;
            }
            // Shares such as 0.7 + 0.2 + 0.1 add up to a hair over 1 in floating point.
            if sum > 1.0 + 1e-9 {
                return Err(cx.err(
                    &format!("arrivals.{field}"),
                    format!("the shares sum to {sum}; allowed: a sum <= 1"),
                ));
            }
            Ok(map.iter().map(|(t, s)| (t.clone(), *s)).collect())
        };
    let tag_shares = shares("tags", &a.tags)?;
    let header_shares = shares("headers", &a.headers)?;
    if a.clients == Some(0) {
        return Err(cx.err(
            "arrivals.clients",
            "0 clients; allowed: >= 1 (or leave it out: every request is its own client)",
        ));
    }
    Ok(ArrivalSpec {
        process,
        tag_shares,
        header_shares,
        clients: a.clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid scenario using most features; the error cases below edit one line of it. Line
    /// numbers matter: the expected positions refer to them.
    const BASE: &str = "\
name: t
duration: 60s
service:
  name: hello
  rollout_duration: 10s
revisions:
  - name: hello-00001
    container_concurrency: 10
    service_time: {lognormal: {mean: 100ms, p99: 300ms}}
    pods: 2
  - name: hello-00002
    service_time: {exponential: {mean: 50ms}}
traffic:
  - latestRevision: true
    tag: current
    percent: 100
timeline:
  - at: 20s
    create_revision: hello-00002
  - at: 40s
    traffic:
      - revisionName: hello-00002
        tag: next
        percent: 100
arrivals:
  poisson: {rate: 100}
  tags: {next: 0.1}
  headers: {current: 0.1}
";

    fn no_files(path: &str) -> Result<String, String> {
        Err(format!("{path}: no such file"))
    }

    fn load(text: &str) -> Result<Scenario, ScenarioError> {
        load_scenario("s.yaml", text, &[], &no_files)
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "BASE has no {from:?}");
        BASE.replacen(from, to, 1)
    }

    fn pos(line: u32, column: u32) -> Option<SourcePos> {
        Some(SourcePos { line, column })
    }

    fn sets(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_timeline_traffic_edit_under_flaggers_analysis_is_a_warning() {
        let with_start = |start: &str| {
            format!(
                "{BASE}analysis:\n  start: {start}\n  canary: {{interval: 10s, threshold: 2, maxWeight: 50, stepWeight: 10}}\n"
            )
        };
        let warned = |s: &Scenario| {
            s.warnings
                .iter()
                .filter(|w| w.contains("edits spec.traffic while Flagger's analysis drives it"))
                .cloned()
                .collect::<Vec<_>>()
        };
        // The analysis starts before the 40 s traffic edit: said once, naming both times.
        let s = load(&with_start("30s")).expect("valid");
        let w = warned(&s);
        assert_eq!(w.len(), 1, "{:?}", s.warnings);
        assert!(w[0].starts_with("the timeline event at 40s") && w[0].contains("(from 30s)"));
        // It starts after the edit: nothing to say.
        assert!(warned(&load(&with_start("50s")).expect("valid")).is_empty());
        // No analysis: nothing to say.
        assert!(warned(&load(BASE).expect("valid")).is_empty());
    }

    #[test]
    fn base_scenario_loads_with_defaults() {
        let s = load(BASE).expect("valid");
        assert_eq!(s.name, "t");
        assert_eq!(s.duration, SimDuration::from_secs(60));
        assert_eq!(s.seed, 1);
        assert_eq!(
            s.service,
            ServiceSpec {
                name: "hello".into(),
                namespace: "default".into(),
                domain: "example.com".into(),
                rollout_duration_secs: 10,
                tag_header_routing: false,
            }
        );
        let (v1, v2) = (&s.revisions[0], &s.revisions[1]);
        assert_eq!((v1.container_concurrency, v1.pods), (10, 2));
        assert_eq!((v2.container_concurrency, v2.pods), (0, 1));
        assert_eq!(v2.timeout, SimDuration::from_secs(300));
        assert_eq!(v2.app, AppModel::Workers(1000));
        assert_eq!(
            v2.startup,
            Dist::uniform(SimDuration::from_secs(1), SimDuration::from_secs(3)).expect("valid")
        );
        assert_eq!(v1.created_at, None);
        assert_eq!(v2.created_at, Some(SimTime(20_000_000_000)));
        // The initial traffic is defaulted as the webhook does.
        assert_eq!(
            s.traffic,
            vec![TrafficTarget::latest(100).with_tag("current")]
        );
        assert_eq!(s.timeline.len(), 2);
        assert_eq!(s.timeline[0].action, Action::CreateRevision(1));
        assert_eq!(
            s.arrivals.process,
            ArrivalProcessSpec::Poisson { rate_per_s: 100.0 }
        );
        assert_eq!(s.arrivals.tag_shares, vec![("next".to_string(), 0.1)]);
        assert_eq!(s.picker, PickerKind::Random);
        assert_eq!(s.autoscaler.config.target_burst_capacity, 211.0);
        assert_eq!(s.activator.probe_period, SimDuration::from_millis(200));
        assert_eq!(s.metrics.window, SimDuration::from_secs(1));
        // Default drain: the longest revision timeout plus one metrics window.
        assert_eq!(s.drain, SimDuration::from_secs(301));
        assert_eq!(s.source_yaml, BASE);
        // The ingress: `ideal` unless asked (docs/models.md, "Ingress profiles", says why).
        assert_eq!(s.ingress, IngressSpec::of(IngressProfile::Ideal));
    }

    #[test]
    fn ingress_profile_brings_its_defaults_and_takes_overrides() {
        // (ingress block, profile, replicas, max_requests, programming delay in ms)
        let rows = [
            // Kourier: 1 replica, Envoy's 1024, 0.2-0.5 s (ingress.md §7.2)
            ("{profile: kourier}", IngressProfile::Kourier, 1, 1024, (200, 500)),
            // Istio: thresholds at 2^32-1, 0.2-2 s (§7.3)
            ("{profile: istio}", IngressProfile::Istio, 1, u32::MAX, (200, 2000)),
            // Contour: 1024, two probe phases 0.5-2 s (§7.4)
            ("{profile: contour}", IngressProfile::Contour, 1, 1024, (500, 2000)),
            // overrides win over the profile's defaults
            ("{profile: istio, replicas: 3, max_requests: 10, programming_delay: {uniform: {min: 1s, max: 2s}}}", IngressProfile::Istio, 3, 10, (1000, 2000)),
        ];
        for (block, profile, replicas, max, (lo, hi)) in rows {
            let s = load(&format!("{BASE}ingress: {block}\n")).expect(block);
            assert_eq!(s.ingress.profile, profile, "{block}");
            assert_eq!(s.ingress.replicas, replicas, "{block}");
            assert_eq!(s.ingress.max_requests, max, "{block}");
            let band = Dist::uniform(SimDuration::from_millis(lo), SimDuration::from_millis(hi));
            assert_eq!(s.ingress.programming_delay, band.expect("valid"), "{block}");
        }
    }

    #[test]
    fn every_shipped_scenario_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("scenarios/ exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        names.sort();
        assert!(names.len() >= 6, "{names:?}");
        let mut loaded = BTreeMap::new();
        for path in &names {
            let text = std::fs::read_to_string(path).expect("readable");
            let base = dir.clone();
            let resolve =
                move |rel: &str| std::fs::read_to_string(base.join(rel)).map_err(|e| e.to_string());
            let shown = format!(
                "scenarios/{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
            );
            let s = load_scenario(&shown, &text, &[], &resolve).unwrap_or_else(|e| panic!("{e}"));
            assert!(text.starts_with('#'), "{shown} opens with a comment block");
            assert_eq!(
                format!("scenarios/{}.yaml", s.name),
                shown,
                "name matches the file"
            );
            loaded.insert(s.name.clone(), s);
        }
        let canary = &loaded["canary-rollout"];
        assert_eq!(canary.service.rollout_duration_secs, 120);
        assert_eq!(
            canary.revisions[1].created_at,
            Some(SimTime(30_000_000_000))
        );
        assert_eq!(loaded["instant-shift"].service.rollout_duration_secs, 0);
        let bench = &loaded["bench-1m"];
        assert_eq!(
            bench.arrivals.process,
            ArrivalProcessSpec::Poisson {
                rate_per_s: 10_000.0
            }
        );
        assert_eq!(
            bench.traffic,
            vec![
                TrafficTarget::revision("hello-00001", 90),
                TrafficTarget::revision("hello-00002", 10)
            ]
        );
        assert!(bench
            .revisions
            .iter()
            .all(|r| r.pods == 10 && r.container_concurrency == 10));
        let three = &loaded["three-way-split"];
        assert_eq!(
            three.arrivals.tag_shares,
            vec![("preview".to_string(), 0.02)]
        );
        let manual = &loaded["manual-canary"];
        assert!(manual
            .timeline
            .iter()
            .any(|e| matches!(e.action, Action::Kn { .. })));
        assert!(manual
            .timeline
            .iter()
            .any(|e| matches!(e.action, Action::SetTraffic(_))));
        let stacked = &loaded["stacked-rollouts"];
        let created: Vec<_> = stacked.revisions.iter().map(|r| r.created_at).collect();
        assert_eq!(
            created,
            vec![
                None,
                Some(SimTime(20_000_000_000)),
                Some(SimTime(60_000_000_000))
            ]
        );
    }

    #[test]
    fn errors_name_position_path_and_what_is_allowed() {
        // (scenario text, expected position, expected path, message fragment)
        let cases: Vec<(String, Option<SourcePos>, &str, &str)> = vec![
            // an unknown field
            (edit("    pods: 2", "    podz: 2"), pos(10, 5), "revisions[0].podz", "unknown field `podz`, expected one of"),
            // a wrong type, with the value serde leaves out
            (edit("    pods: 2", "    pods: two"), pos(10, 11), "revisions[0].pods", "invalid i64 (got \"two\")"),
            // a list where a number belongs
            (edit("    pods: 2", "    pods: [2]"), pos(10, 11), "revisions[0].pods", "expected"),
            // a duration without a unit
            (edit("duration: 60s", "duration: 60"), pos(2, 11), "duration", "time: missing unit in duration \"60\"; allowed: a Go duration"),
            // a duration that is not positive
            (edit("duration: 60s", "duration: -5s"), pos(2, 11), "duration", "-5s is not allowed; allowed: > 0s"),
            // a bad lognormal
            (edit("p99: 300ms", "p99: 50ms"), pos(9, 31), "revisions[0].service_time.lognormal", "lognormal needs 0 < mean < p99 (got mean 0.1s, p99 0.05s)"),
            // a distribution that does not exist
            (edit("{exponential: {mean: 50ms}}", "{gamma: 50ms}"), pos(12, 20), "revisions[1].service_time", "unknown variant `gamma`, expected one of constant"),
            // a bad duration inside a distribution
            (edit("{exponential: {mean: 50ms}}", "{exponential: {mean: fast}}"), pos(12, 40), "revisions[1].service_time.exponential.mean", "time: invalid duration \"fast\""),
            // a missing required field, pointed at the mapping that lacks it
            (edit("    service_time: {exponential: {mean: 50ms}}\n", ""), pos(11, 5), "revisions[1]", "missing field `service_time`"),
            // pods out of range
            (edit("    pods: 2", "    pods: 10001"), pos(10, 11), "revisions[0].pods", "10001 is out of range; allowed: 0 to 10000"),
            // containerConcurrency out of range
            (edit("container_concurrency: 10", "container_concurrency: -1"), pos(8, 28), "revisions[0].container_concurrency", "allowed: 0 to 1000"),
            // a revision name that is not a DNS-1035 label
            (edit("  - name: hello-00001", "  - name: Hello_1"), pos(7, 11), "revisions[0].name", "\"Hello_1\" is not a DNS-1035 label"),
            // a duplicate revision
            (edit("  - name: hello-00002", "  - name: hello-00001"), pos(11, 11), "revisions[1].name", "duplicate revision name \"hello-00001\" (also revisions[0].name)"),
            // a traffic block that does not sum to 100: Knative's message, at the list
            (edit("    percent: 100\ntimeline", "    percent: 90\ntimeline"), pos(14, 3), "traffic", "Traffic targets sum to 90, want 100: spec.traffic"),
            // Knative's target rule, in a timeline block, at the target
            (edit("      - revisionName: hello-00002\n", "      - revisionName: hello-00002\n        latestRevision: true\n"), pos(22, 9), "timeline[1].traffic[0]", "may not set revisionName \"hello-00002\" when latestRevision is true: spec.traffic[0].latestRevision"),
            // a Service may not name a configuration
            (edit("  - latestRevision: true\n", "  - configurationName: hello\n"), pos(14, 5), "traffic[0]", "spec.traffic[0].configurationName"),
            // the Service name, with Knative's message
            (edit("  name: hello\n", "  name: Hello\n"), pos(4, 9), "service.name", "not a DNS 1035 label"),
            // an unknown revision in the initial traffic
            (edit("  - latestRevision: true\n", "  - revisionName: hello-00009\n"), pos(14, 19), "traffic[0].revisionName", "unknown revision \"hello-00009\"; allowed: a name from revisions: hello-00001, hello-00002"),
            // an unknown revision in a timeline action
            (edit("create_revision: hello-00002", "create_revision: hello-0002"), pos(19, 22), "timeline[0].create_revision", "unknown revision \"hello-0002\""),
            // a revision named by a traffic block before the timeline creates it
            (edit("  - at: 40s", "  - at: 10s"), pos(22, 23), "timeline[1].traffic[0].revisionName", "revision \"hello-00002\" does not exist yet: timeline[0] creates it at 20s"),
            // a timeline event after the end of the run
            (edit("  - at: 40s", "  - at: 61s"), pos(20, 9), "timeline[1].at", "61s is outside the run; allowed: 0s to 60s"),
            // a timeline event with two actions
            (edit("    create_revision: hello-00002\n", "    create_revision: hello-00002\n    scale: {revision: hello-00001, pods: 3}\n"), pos(18, 5), "timeline[0]", "exactly one action (got create_revision, scale)"),
            // a kn flag that is not a CSV record
            (edit("    traffic:\n      - revisionName: hello-00002\n        tag: next\n        percent: 100\n", "    kn: {traffic: [\"a\\\"b=1\"]}\n"), pos(21, 20), "timeline[1].kn.traffic[0]", "invalid argument \"a\\\"b=1\" for \"--traffic\" flag"),
            // a rollout duration Knative rejects
            (edit("  rollout_duration: 10s", "  rollout_duration: -1s"), pos(5, 21), "service.rollout_duration", "rollout-duration=-1s must be positive"),
            // a share sum over 1
            (edit("  tags: {next: 0.1}", "  tags: {next: 0.6, current: 0.5}"), pos(27, 9), "arrivals.tags", "the shares sum to 1.1; allowed: a sum <= 1"),
            // a share outside [0, 1]
            (edit("  headers: {current: 0.1}", "  headers: {current: 1.5}"), pos(28, 22), "arrivals.headers.current", "share 1.5 is not allowed; allowed: 0 to 1"),
            // a tag no traffic block has, at its key
            (edit("  tags: {next: 0.1}", "  tags: {nxt: 0.1}"), pos(27, 10), "arrivals.tags.nxt", "tag \"nxt\" is not in any traffic block of the scenario; allowed: current, next"),
            // a rate that is not positive
            (edit("{rate: 100}", "{rate: 0}"), pos(26, 19), "arrivals.poisson.rate", "rate 0 is not allowed; allowed: a finite number of requests per second > 0"),
            // a rate no run can simulate: ~1e9 req/s aborted on allocation
            (edit("{rate: 100}", "{rate: 1e9}"), pos(26, 19), "arrivals.poisson.rate", "rate 1000000000 is not allowed; allowed: a finite number of requests per second > 0 and at most 1000000"),
            // 1.8e19 req/s, past every integer count
            (edit("{rate: 100}", "{rate: 1.8e19}"), pos(26, 19), "arrivals.poisson.rate", "rate 18000000000000000000 is not allowed; allowed: a finite number of requests per second > 0 and at most 1000000"),
            // a schedule step too
            (edit("  poisson: {rate: 100}", "  schedule: {points: [{at: 0s, rate: 2e6}]}"), pos(26, 38), "arrivals.schedule.points[0].rate", "rate 2000000 is not allowed; allowed: a finite number of requests per second >= 0 and at most 1000000"),
            // 720 h of 1 s windows: 2.6 million metric windows held 1.9 GB for 2,558 requests
            (edit("duration: 60s", "duration: 720h"), pos(2, 11), "duration", "720h with metrics.window 1s is 2592301 metric windows (with the drain); allowed: at most 100000 windows (a longer metrics.window or a shorter run)"),
            // a long drain counts too
            (format!("{BASE}drain: 10000h\n"), pos(29, 8), "drain", "10000h with metrics.window 1s is 36000060 metric windows (with the duration); allowed: at most 100000 windows (a longer metrics.window or a shorter run)"),
            // no arrivals at all
            (BASE[..BASE.find("arrivals:").unwrap_or(0)].to_string(), pos(1, 1), "", "missing field `arrivals`"),
            // an arrivals block without a process
            (edit("  poisson: {rate: 100}\n", ""), pos(26, 3), "arrivals", "no arrival process; allowed: exactly one of poisson, constant, schedule, bursts, trace"),
            // two arrival processes: at the second
            (edit("  poisson: {rate: 100}\n", "  poisson: {rate: 100}\n  constant: {rate: 5}\n"), pos(27, 3), "arrivals.constant", "2 arrival processes (poisson, constant)"),
            // malformed YAML
            (edit("  tags: {next: 0.1}", "  tags: {next: 0.1"), pos(28, 10), "arrivals.tags", "did not find expected ',' or '}'"),
            // a picker that does not exist
            (format!("{BASE}picker: fastest\n"), pos(29, 9), "picker", "unknown picker \"fastest\"; allowed: random, wrr, hash"),
            // an ingress profile that does not exist: the allowed names (model::ingress)
            (format!("{BASE}ingress: {{profile: nginx}}\n"), pos(29, 20), "ingress.profile", "unknown ingress profile \"nginx\"; allowed: kourier, istio, contour, ideal"),
            // no gateway replica
            (format!("{BASE}ingress: {{profile: kourier, replicas: 0}}\n"), pos(29, 39), "ingress.replicas", "0 is out of range; allowed: 1 to 1000"),
            // a target burst capacity between -1 and 0
            (format!("{BASE}activator: {{target_burst_capacity: -0.5}}\n"), pos(29, 36), "activator.target_burst_capacity", "allowed: -1 (activator always in the path), 0"),
            // a metrics window too small
            (format!("{BASE}metrics: {{window: 10ms}}\n"), pos(29, 19), "metrics.window", "10ms is out of range; allowed: 0.1s to 60s"),
            // a scenario name too long for a directory
            (edit("name: t", &format!("name: {}", "a".repeat(64))), pos(1, 7), "name", "a name of 64 characters is too long; allowed: at most 63 (it names the output directory and every chart title)"),
            // a scenario name that cannot name a directory
            (edit("name: t", "name: My_Run"), pos(1, 7), "name", "\"My_Run\" is not allowed; allowed: lower-case letters, digits and '-'"),
        ];
        for (text, want_pos, want_path, fragment) in &cases {
            let err = load(text).expect_err(fragment);
            assert_eq!(
                (err.pos, err.path.as_str()),
                (*want_pos, *want_path),
                "{fragment}: {err}"
            );
            assert!(err.message.contains(fragment), "{fragment}: {err}");
            assert_eq!(err.set, None);
            // The display leads with file:line:col and the path.
            let p = want_pos.expect("every case has a position");
            let head = if want_path.is_empty() {
                format!("s.yaml:{p}: ")
            } else {
                format!("s.yaml:{p}: {want_path}: ")
            };
            assert!(err.to_string().starts_with(&head), "{err}");
        }
    }

    #[test]
    fn knative_reports_every_error_with_its_own_position() {
        let text = edit(
            "  - latestRevision: true\n    tag: current\n    percent: 100\n",
            "  - latestRevision: true\n    tag: foo\n    percent: 50\n  - revisionName: hello-00001\n    tag: foo\n    percent: 40\n",
        );
        let err = load(&text).expect_err("duplicate tag and bad sum");
        let shown = err.to_string();
        assert_eq!(
            shown.lines().collect::<Vec<_>>(),
            vec![
                "s.yaml:14:5: traffic[0]: Multiple definitions for \"foo\": spec.traffic[0].tag, spec.traffic[1].tag",
                "s.yaml:14:3: traffic: Traffic targets sum to 90, want 100: spec.traffic",
            ]
        );
    }

    #[test]
    fn overrides_apply_before_validation() {
        // (overrides, check on the loaded scenario)
        type Check = fn(&Scenario) -> bool;
        let cases: Vec<(Vec<(String, String)>, Check)> = vec![
            // the rollout duration, as a Go duration
            (sets(&[("service.rollout_duration", "380s")]), |s| {
                s.service.rollout_duration_secs == 380
            }),
            // a list item by index, dotted
            (sets(&[("revisions.0.pods", "20")]), |s| {
                s.revisions[0].pods == 20
            }),
            // ... and bracketed, with a flow value
            (sets(&[("revisions[1].startup", "{constant: 1s}")]), |s| {
                s.revisions[1].startup == Dist::Constant(SimDuration::from_secs(1))
            }),
            // a new key in a mapping the file does not have
            (sets(&[("client.timeout", "30s")]), |s| {
                s.client.timeout == Some(SimDuration::from_secs(30))
            }),
            // a rate
            (sets(&[("arrivals.poisson.rate", "2500")]), |s| {
                s.arrivals.process == ArrivalProcessSpec::Poisson { rate_per_s: 2500.0 }
            }),
            // later overrides win, and a timeline event can move
            (
                sets(&[("timeline.1.at", "50s"), ("timeline.1.at", "55s")]),
                |s| s.timeline[1].at == SimTime(55_000_000_000),
            ),
            // an override can replace a whole block
            (
                sets(&[(
                    "traffic",
                    "[{revisionName: hello-00001, percent: 100, tag: current}]",
                )]),
                |s| {
                    s.traffic
                        == vec![TrafficTarget::revision("hello-00001", 100).with_tag("current")]
                },
            ),
            // a quoted value stays a string
            (sets(&[("service.name", "\"shop\"")]), |s| {
                s.service.name == "shop"
            }),
        ];
        for (overrides, check) in cases {
            let s = load_scenario("s.yaml", BASE, &overrides, &no_files)
                .unwrap_or_else(|e| panic!("{overrides:?}: {e}"));
            assert!(check(&s), "{overrides:?}");
            assert!(
                s.source_yaml
                    .starts_with("# s.yaml with overrides:\n#   --set "),
                "{}",
                s.source_yaml
            );
        }
    }

    #[test]
    fn override_errors_name_the_set() {
        // (overrides, expected display prefix)
        let cases = [
            // a bad value: the error names the --set, not a line of the file
            (sets(&[("service.rollout_duration", "abc")]), "s.yaml: --set service.rollout_duration=abc: invalid value: abc; allowed: a Go duration in whole seconds"),
            // a value that breaks a deeper rule shows the field path too
            (sets(&[("revisions.0.service_time", "{lognormal: {mean: 1s, p99: 0.5s}}")]), "s.yaml: --set revisions.0.service_time={lognormal: {mean: 1s, p99: 0.5s}}: revisions[0].service_time.lognormal: lognormal needs 0 < mean < p99"),
            // a wrong type
            (sets(&[("revisions.0.pods", "x")]), "s.yaml: --set revisions.0.pods=x: invalid i64 (got \"x\")"),
            // an unknown field created by an override
            (sets(&[("revisions.0.podz", "1")]), "s.yaml: --set revisions.0.podz=1: unknown field `podz`"),
            // an index past the end of a list
            (sets(&[("revisions.5.pods", "1")]), "s.yaml: --set revisions.5.pods=1: index 5 is out of range: revisions has 2 item(s)"),
            // a path through a scalar
            (sets(&[("name.first", "x")]), "s.yaml: --set name.first=x: name is a scalar (\"t\") and has no field first"),
            // a value that is not YAML
            (sets(&[("revisions.0.pods", "[1")]), "s.yaml: --set revisions.0.pods=[1: the value is not YAML"),
            // a second arrival process added by an override
            (sets(&[("arrivals.constant.rate", "5")]), "s.yaml: --set arrivals.constant.rate=5: arrivals.constant: 2 arrival processes"),
        ];
        for (overrides, prefix) in cases {
            let err = load_scenario("s.yaml", BASE, &overrides, &no_files).expect_err(prefix);
            assert!(err.to_string().starts_with(prefix), "{err}\nwant: {prefix}");
            assert_eq!(err.pos, None);
            assert!(err.set.is_some());
        }
        // With overrides present, an error in the file's own text keeps its position.
        let text = edit("duration: 60s", "duration: 60");
        let err = load_scenario(
            "s.yaml",
            &text,
            &sets(&[("revisions.0.pods", "3")]),
            &no_files,
        )
        .expect_err("bad duration");
        assert_eq!((err.pos, err.set.as_deref()), (pos(2, 11), None), "{err}");
        // ... and an override can repair the file.
        load_scenario("s.yaml", &text, &sets(&[("duration", "60s")]), &no_files).expect("repaired");
    }

    #[test]
    fn set_arguments_parse() {
        // (argument, expected result)
        let cases = [
            // the usual form
            (
                "service.rollout_duration=380s",
                Ok(("service.rollout_duration", "380s")),
            ),
            // only the first = splits
            (
                "timeline.0.kn.traffic=[\"a=1\"]",
                Ok(("timeline.0.kn.traffic", "[\"a=1\"]")),
            ),
            // an empty value is allowed (YAML null)
            ("client.timeout=", Ok(("client.timeout", ""))),
            // no =
            ("service.rollout_duration", Err("allowed: PATH=VALUE")),
            // no path
            ("=380s", Err("allowed: PATH=VALUE")),
            // an empty segment
            ("service..name=x", Err("empty segment")),
        ];
        for (arg, want) in cases {
            match (parse_set(arg), want) {
                (Ok((p, v)), Ok((wp, wv))) => assert_eq!((p.as_str(), v.as_str()), (wp, wv)),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{arg}: {e}"),
                (got, _) => panic!("{arg}: {got:?}"),
            }
        }
    }

    const MANIFEST: &str = "\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: shop
  namespace: store
  annotations:
    serving.knative.dev/rollout-duration: \"240s\"
spec:
  template:
    spec:
      containerConcurrency: 25
      timeoutSeconds: 60
      containers:
        - image: example/shop
  traffic:
    - revisionName: shop-00001
      percent: 80
    - latestRevision: true
      tag: next
      percent: 20
";

    const WITH_MANIFEST: &str = "\
name: m
duration: 30s
service:
  manifest: knative/shop.yaml
revisions:
  - name: shop-00001
    service_time: {constant: 10ms}
  - name: shop-00002
    container_concurrency: 5
    service_time: {constant: 10ms}
arrivals:
  poisson: {rate: 10}
  tags: {next: 0.5}
";

    fn with_files<'a>(
        files: &'a [(&'a str, &'a str)],
    ) -> impl Fn(&str) -> Result<String, String> + 'a {
        move |path: &str| {
            files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| "no such file".to_string())
        }
    }

    #[test]
    fn manifest_gives_defaults_the_scenario_overrides() {
        let files = [("knative/shop.yaml", MANIFEST)];
        let resolve = with_files(&files);
        let s = load_scenario("scenarios/m.yaml", WITH_MANIFEST, &[], &resolve).expect("valid");
        assert_eq!(
            (s.service.name.as_str(), s.service.namespace.as_str()),
            ("shop", "store")
        );
        assert_eq!(s.service.rollout_duration_secs, 240);
        // containerConcurrency and timeoutSeconds are defaults for revisions that do not set them
        assert_eq!(s.revisions[0].container_concurrency, 25);
        assert_eq!(s.revisions[1].container_concurrency, 5);
        assert_eq!(s.revisions[0].timeout, SimDuration::from_secs(60));
        // spec.traffic is used when the scenario has none, and its tags count
        assert_eq!(s.traffic.len(), 2);
        assert_eq!(s.traffic[1].tag, "next");
        // scenario fields win
        let overridden = load_scenario(
            "scenarios/m.yaml",
            WITH_MANIFEST,
            &sets(&[
                ("service.rollout_duration", "0s"),
                ("service.name", "other"),
                (
                    "traffic",
                    "[{latestRevision: true, percent: 100, tag: next}]",
                ),
            ]),
            &resolve,
        )
        .expect("valid");
        assert_eq!(overridden.service.rollout_duration_secs, 0);
        assert_eq!(overridden.service.name, "other");
        assert_eq!(overridden.traffic.len(), 1);
    }

    #[test]
    fn manifest_errors_point_into_the_manifest() {
        // (manifest text, expected display prefix)
        let cases = [
            // Knative's rejection of the manifest's traffic, at the target in the manifest
            (MANIFEST.replace("percent: 80", "percent: 70"), "scenarios/knative/shop.yaml:16:5: spec.traffic: Traffic targets sum to 90, want 100: spec.traffic"),
            // a revision the scenario does not have
            (MANIFEST.replace("shop-00001", "shop-00009"), "scenarios/knative/shop.yaml:16:7: spec.traffic[0]: unknown revision \"shop-00009\""),
            // the annotation, with Knative's message
            (MANIFEST.replace("\"240s\"", "\"1.5s\""), "scenarios/knative/shop.yaml:7:43: metadata.annotations.serving.knative.dev/rollout-duration: rollout-duration=1.5s is not at second precision"),
            // containerConcurrency out of range
            (MANIFEST.replace("containerConcurrency: 25", "containerConcurrency: 5000"), "scenarios/knative/shop.yaml:11:29: spec.template.spec.containerConcurrency: expected 0 <= 5000 <= 1000: spec.template.spec.containerConcurrency"),
            // a typo in the manifest's traffic
            (MANIFEST.replace("      percent: 80", "      percnt: 80"), "scenarios/knative/shop.yaml:17:7: spec.traffic[0].percnt: unknown field `percnt`"),
            // not a Service
            (MANIFEST.replace("kind: Service", "kind: Route").replace("  template:\n    spec:\n      containerConcurrency: 25\n      timeoutSeconds: 60\n      containers:\n        - image: example/shop\n", ""), "scenarios/m.yaml:4:13: service.manifest: scenarios/knative/shop.yaml holds no Knative Service"),
        ];
        for (manifest, prefix) in cases {
            let files = [("knative/shop.yaml", manifest.as_str())];
            let err = load_scenario("scenarios/m.yaml", WITH_MANIFEST, &[], &with_files(&files))
                .expect_err(prefix);
            assert!(err.to_string().starts_with(prefix), "{err}\nwant: {prefix}");
        }
        // A manifest that cannot be read: at the field naming it.
        let err = load_scenario("scenarios/m.yaml", WITH_MANIFEST, &[], &with_files(&[]))
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "scenarios/m.yaml:4:13: service.manifest: cannot read scenarios/knative/shop.yaml: no such file"
        );
    }

    #[test]
    fn empirical_buckets_are_a_histogram() {
        let scenario = |service_time: &str| edit("{exponential: {mean: 50ms}}", service_time);
        let s = load_scenario(
            "s.yaml",
            &scenario("{empirical: {buckets: [{le: 100ms, count: 10}, {le: 0.2s, count: 30}, {le: +Inf, count: 40}]}}"),
            &[],
            &with_files(&[]),
        )
        .expect("valid");
        let want = Dist::histogram(&[
            (Some(SimDuration::from_millis(100)), 10.0),
            (Some(SimDuration::from_millis(200)), 30.0),
            (None, 40.0),
        ])
        .expect("valid");
        assert_eq!(s.revisions[1].service_time, want);

        // (service_time, expected error fragment)
        let cases = [
            // both forms at once
            ("{empirical: {file: lat.csv, buckets: [{le: 1s, count: 1}]}}", "revisions[1].service_time.empirical: needs either `file` (with an optional `column`) or `buckets`"),
            // neither
            ("{empirical: {}}", "needs either `file`"),
            // a bound that is not a duration
            ("{empirical: {buckets: [{le: soon, count: 1}]}}", "revisions[1].service_time.empirical.buckets[0].le"),
            // counts that are not cumulative
            ("{empirical: {buckets: [{le: 1s, count: 5}, {le: 2s, count: 1}]}}", "revisions[1].service_time.empirical: bucket 1: cumulative count 1 is below"),
            // an unknown key in a bucket
            ("{empirical: {buckets: [{le: 1s, cnt: 5}]}}", "unknown field `cnt`"),
        ];
        for (service_time, fragment) in cases {
            let err = load_scenario("s.yaml", &scenario(service_time), &[], &with_files(&[]))
                .expect_err(service_time);
            assert!(
                err.to_string().contains(fragment),
                "{err}\nwant: {fragment}"
            );
        }
    }

    #[test]
    fn trace_and_empirical_files_are_read_with_line_numbers() {
        let scenario = edit(
            "  poisson: {rate: 100}\n",
            "  trace: {file: traces/t.csv}\n",
        )
        .replace(
            "{exponential: {mean: 50ms}}",
            "{empirical: {file: lat.csv}}",
        );
        let trace = "t_s,tag,client\n0.5,,1\n1.25,next,2\n70,,3\n";
        let latencies = "latency_ms\n10\n20\n";
        let files = [("traces/t.csv", trace), ("lat.csv", latencies)];
        let s = load_scenario("dir/s.yaml", &scenario, &[], &with_files(&files)).expect("valid");
        let ArrivalProcessSpec::Trace { rows } = &s.arrivals.process else {
            panic!("{:?}", s.arrivals.process);
        };
        assert_eq!(
            rows.len(),
            2,
            "the row after the 60 s duration is not replayed"
        );
        assert_eq!(rows[1].tag.as_deref(), Some("next"));
        assert_eq!(rows[1].client, Some(2));
        assert_eq!(
            s.revisions[1].service_time,
            Dist::empirical(vec![
                SimDuration::from_millis(10),
                SimDuration::from_millis(20)
            ])
            .expect("valid")
        );

        // (trace, latencies, expected display prefix)
        let cases = [
            // a trace time that is not a number
            ("t_s\n1\nsoon\n", latencies, "dir/traces/t.csv:3:1: t_s: \"soon\" is not a time"),
            // a trace tag no traffic block has
            ("t_s,tag\n1,blue\n", latencies, "dir/traces/t.csv:2:3: tag: tag \"blue\" is not in any traffic block; allowed: current, next"),
            // rows out of order
            ("t_s\n5\n4\n", latencies, "dir/traces/t.csv:3:1: t_s: 4 is before the previous row's 5"),
            // a latency that is not a number
            (trace, "latency_ms\n10\nx\n", "dir/lat.csv:3:1: latency_ms: \"x\" is not a latency"),
            // no samples at all
            (trace, "latency_ms\n", "dir/s.yaml:12:31: revisions[1].service_time.empirical: empirical distribution has no samples"),
            // the column is missing
            (trace, "ms\n1\n", "dir/lat.csv:1:1: latency_ms: the header has no column \"latency_ms\"; it has: ms"),
        ];
        for (trace, latencies, prefix) in cases {
            let files = [("traces/t.csv", trace), ("lat.csv", latencies)];
            let err =
                load_scenario("dir/s.yaml", &scenario, &[], &with_files(&files)).expect_err(prefix);
            assert!(err.to_string().starts_with(prefix), "{err}\nwant: {prefix}");
        }
    }

    #[test]
    fn timeline_is_sorted_stably_and_kn_tags_count() {
        let text = edit(
            "timeline:\n",
            "timeline:\n  - at: 50s\n    scale: {revision: hello-00001, pods: 4}\n  - at: 20s\n    rollout_duration: 0s\n  - at: 50s\n    kn: {tag: [\"hello-00001=stable\"], untag: [current]}\n",
        )
        .replace("  headers: {current: 0.1}", "  headers: {stable: 0.1}");
        let s = load(&text).expect("valid");
        let order: Vec<(i64, &str)> = s
            .timeline
            .iter()
            .map(|e| {
                let kind = match e.action {
                    Action::CreateRevision(_) => "create",
                    Action::SetTraffic(_) => "traffic",
                    Action::Kn { .. } => "kn",
                    Action::Scale { .. } => "scale",
                    Action::SetRolloutDuration { .. } => "rollout",
                    Action::SetFailure { .. } => "failure",
                };
                (e.at.0 / 1_000_000_000, kind)
            })
            .collect();
        // file order: scale@50, rollout@20, kn@50, create@20, traffic@40
        assert_eq!(
            order,
            vec![
                (20, "rollout"),
                (20, "create"),
                (40, "traffic"),
                (50, "scale"),
                (50, "kn")
            ]
        );
        assert_eq!(s.arrivals.header_shares, vec![("stable".to_string(), 0.1)]);
        // kn naming a revision before the timeline creates it
        let early = edit(
            "timeline:\n",
            "timeline:\n  - at: 5s\n    kn: {traffic: [\"hello-00002=10,hello-00001=90\"]}\n",
        );
        let err = load(&early).expect_err("too early");
        assert!(
            err.to_string().starts_with("s.yaml:19:20: timeline[0].kn.traffic[0]: revision \"hello-00002\" does not exist yet"),
            "{err}"
        );
    }

    #[test]
    fn other_arrival_processes() {
        // (arrivals block, check)
        type Check = fn(&ArrivalProcessSpec) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            // evenly spaced
            ("  constant: {rate: 50}\n", |p| *p == ArrivalProcessSpec::Constant { rate_per_s: 50.0 }),
            // a schedule with a step and a ramp; poisson defaults to true
            ("  schedule: {points: [{at: 0s, rate: 10}, {at: 10s, ramp_to: 100, over: 5s}]}\n", |p| matches!(p, ArrivalProcessSpec::Schedule { points, poisson: true } if points.len() == 2)),
            // bursts
            ("  bursts: {on_rate: 200, off_rate: 0, on: {constant: 5s}, off: {exponential: {mean: 20s}}}\n", |p| matches!(p, ArrivalProcessSpec::Bursts { on_rate_per_s, .. } if *on_rate_per_s == 200.0)),
        ];
        for (block, check) in cases {
            let s = load(&edit("  poisson: {rate: 100}\n", block))
                .unwrap_or_else(|e| panic!("{block}: {e}"));
            assert!(
                check(&s.arrivals.process),
                "{block}: {:?}",
                s.arrivals.process
            );
        }
        // (arrivals block, expected display prefix)
        let bad = [
            // points out of order
            ("  schedule: {points: [{at: 10s, rate: 10}, {at: 5s, rate: 1}]}\n", "s.yaml:26:49: arrivals.schedule.points[1].at: 5s is not allowed; allowed: from the previous point's 10s"),
            // a point that is both a step and a ramp
            ("  schedule: {points: [{at: 0s, rate: 10, ramp_to: 5}]}\n", "s.yaml:26:23: arrivals.schedule.points[0]: a point needs either rate"),
            // nothing but zero rates
            ("  schedule: {points: [{at: 0s, rate: 0}]}\n", "s.yaml:26:22: arrivals.schedule.points: every rate is 0"),
            // an on phase that never lasts
            ("  bursts: {on_rate: 1, off_rate: 1, on: {constant: 0s}, off: {constant: 1s}}\n", "s.yaml:26:41: arrivals.bursts.on: the on phase always lasts 0s"),
            // a trace the resolver cannot find
            ("  trace: {file: none.csv}\n", "s.yaml:26:17: arrivals.trace.file: cannot read none.csv: none.csv: no such file"),
        ];
        for (block, prefix) in bad {
            let err = load(&edit("  poisson: {rate: 100}\n", block)).expect_err(prefix);
            assert!(err.to_string().starts_with(prefix), "{err}\nwant: {prefix}");
        }
    }

    #[test]
    fn empty_blocks_mean_absent() {
        // The timeline's events commented out, and empty client, metrics and tags blocks.
        let start = BASE.find("timeline:").unwrap_or(0);
        let end = BASE.find("arrivals:").unwrap_or(0);
        let text = format!(
            "{}timeline:\n#  - at: 20s\nclient:\nmetrics:\n{}",
            &BASE[..start],
            BASE[end..].replace("  tags: {next: 0.1}\n", "  tags:\n")
        );
        let s = load(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(s.timeline.is_empty());
        assert!(s.arrivals.tag_shares.is_empty());
        assert_eq!(s.client.timeout, None);
        assert_eq!(s.metrics.window, SimDuration::from_secs(1));
    }

    #[test]
    fn no_input_panics() {
        let inputs = [
            "",
            "# only a comment\n",
            "[]\n",
            "42\n",
            "name: [\n",
            "a: 1\n---\nb: 2\n",
            "name: x\nrevisions: {}\n",
            "name: &a x\nduration: *a\n",
            "name: t\nduration: 9999999999999999999h\n",
            "\t- tab\n",
            "name: t\nduration: 1s\nrevisions: []\narrivals: {poisson: {rate: .nan}}\n",
        ];
        for text in inputs {
            assert!(load(text).is_err(), "{text:?}");
            for (path, value) in [("a.b", "1"), ("revisions.0", "x"), ("", "")] {
                let _ = load_scenario("s.yaml", text, &sets(&[(path, value)]), &no_files);
            }
        }
    }
}
