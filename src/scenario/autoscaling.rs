//! Knative's per-revision autoscaling annotations (`autoscaling.knative.dev/*`): reading and
//! validating them exactly as the webhook does, into a [`RevisionAutoscaling`] the KPA model
//! merges over the cluster's config-autoscaler.
//!
//! Owns: the ports of serving `pkg/apis/autoscaling/annotation_validation.go`
//! (`ValidateAnnotations` and its helpers; AV below), the annotation keys and their legacy
//! camelCase spellings (`pkg/apis/autoscaling/register.go`, RG below, `kmap.KeyPriority`: the
//! first key present wins), `ValidateHasNoAutoscalingAnnotation`
//! (`pkg/apis/serving/metadata_validation.go:78-89`, a Service's own metadata must not carry
//! them), and what the KPA reads from a valid value (`pa_lifecycle.go`,
//! `metric_lifecycle.go:79-87`).
//!
//! Must not: do I/O, know file positions (callers map Knative's field paths to positions), or
//! accept what upstream refuses. Where upstream accepts a value splitlab cannot simulate (the
//! HPA class, a custom class, an HPA metric such as `cpu`), the value is kept out of the model and
//! a warning says so: the revision is simulated with the KPA on the cluster's metric.
//!
//! One deliberate difference: Go's `strconv.ParseFloat` accepts `NaN` and `Inf`, which pass
//! upstream's range checks because every comparison with NaN is false; splitlab refuses
//! non-finite numbers with the same `invalid value` message, since they have no meaning in the
//! model.

use std::collections::BTreeMap;

use crate::model::autoscaler::{Aggregation, ScalingMetric};
use crate::model::time::SimDuration;
use crate::routing::duration::{format_duration, parse_duration, round_duration, HOUR, SECOND};
use crate::routing::field_error::{
    err_generic, err_invalid_key_name, err_invalid_value, err_out_of_bounds_value, FieldError,
    FieldErrorExt, CURRENT_FIELD,
};
use crate::scenario::manifest::{Manifest, ManifestKind};
use crate::scenario::spec::RevisionAutoscaling;

/// RG:32 `GroupName`: the annotations' prefix.
pub const GROUP: &str = "autoscaling.knative.dev";
/// RG:40 the Knative Pod Autoscaler class, the only class splitlab models.
pub const KPA: &str = "kpa.autoscaling.knative.dev";
/// RG:42 the Kubernetes HPA class.
pub const HPA: &str = "hpa.autoscaling.knative.dev";

/// RG:141 `WindowMin`.
const WINDOW_MIN: i64 = 6 * SECOND;
/// RG:144 `WindowMax`.
const WINDOW_MAX: i64 = HOUR;
/// RG:87 `TargetMin`.
const TARGET_MIN: f64 = 0.01;

// RG:226-283, the `kmap.KeyPriority` lists: the first key present is the one read.
pub const CLASS: &[&str] = &["autoscaling.knative.dev/class"];
pub const INITIAL_SCALE: &[&str] = &[
    "autoscaling.knative.dev/initial-scale",
    "autoscaling.knative.dev/initialScale",
];
pub const MAX_SCALE: &[&str] = &[
    "autoscaling.knative.dev/max-scale",
    "autoscaling.knative.dev/maxScale",
];
pub const METRIC: &[&str] = &["autoscaling.knative.dev/metric"];
pub const ALGORITHM: &[&str] = &[
    "autoscaling.knative.dev/metric-aggregation-algorithm",
    "autoscaling.knative.dev/metricAggregationAlgorithm",
];
pub const ACTIVATION_SCALE: &[&str] = &["autoscaling.knative.dev/activation-scale"];
pub const MIN_SCALE: &[&str] = &[
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/minScale",
];
pub const PANIC_THRESHOLD: &[&str] = &[
    "autoscaling.knative.dev/panic-threshold-percentage",
    "autoscaling.knative.dev/panicThresholdPercentage",
];
pub const PANIC_WINDOW: &[&str] = &[
    "autoscaling.knative.dev/panic-window-percentage",
    "autoscaling.knative.dev/panicWindowPercentage",
];
pub const SCALE_DOWN_DELAY: &[&str] = &[
    "autoscaling.knative.dev/scale-down-delay",
    "autoscaling.knative.dev/scaleDownDelay",
];
pub const RETENTION: &[&str] = &[
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
    "autoscaling.knative.dev/scaleToZeroPodRetentionPeriod",
];
pub const TARGET: &[&str] = &["autoscaling.knative.dev/target"];
pub const TARGET_BURST_CAPACITY: &[&str] = &[
    "autoscaling.knative.dev/target-burst-capacity",
    "autoscaling.knative.dev/targetBurstCapacity",
];
pub const TARGET_UTILIZATION: &[&str] = &[
    "autoscaling.knative.dev/target-utilization-percentage",
    "autoscaling.knative.dev/targetUtilizationPercentage",
];
pub const WINDOW: &[&str] = &["autoscaling.knative.dev/window"];

/// Every key Knative reads, for the "not an annotation Knative reads" warning.
const ALL: &[&[&str]] = &[
    CLASS,
    INITIAL_SCALE,
    MAX_SCALE,
    METRIC,
    ALGORITHM,
    ACTIVATION_SCALE,
    MIN_SCALE,
    PANIC_THRESHOLD,
    PANIC_WINDOW,
    SCALE_DOWN_DELAY,
    RETENTION,
    TARGET,
    TARGET_BURST_CAPACITY,
    TARGET_UTILIZATION,
    WINDOW,
];

/// Every spelling of the annotation named `short` (`min-scale`: `.../min-scale`,
/// `.../minScale`); empty for a name Knative does not read.
pub fn spellings(short: &str) -> &'static [&'static str] {
    ALL.iter()
        .copied()
        .find(|keys| keys[0].strip_prefix("autoscaling.knative.dev/") == Some(short))
        .unwrap_or(&[])
}

/// `KeyPriority.Get`: the first of `keys` present in `m`, with its value.
fn get<'a>(
    m: &'a BTreeMap<String, String>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    keys.iter()
        .find_map(|k| m.get(*k).map(|v| (*k, v.as_str())))
}

/// What `ValidateAnnotations` reads from the cluster's config-autoscaler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterAutoscaling {
    /// `pod-autoscaler-class` (default [`KPA`]).
    pub class: String,
    /// `max-scale-limit` (default 0: no limit).
    pub max_scale_limit: i32,
    /// `allow-zero-initial-scale` (default false).
    pub allow_zero_initial_scale: bool,
}

impl Default for ClusterAutoscaling {
    fn default() -> Self {
        ClusterAutoscaling {
            class: KPA.to_string(),
            max_scale_limit: 0,
            allow_zero_initial_scale: false,
        }
    }
}

/// Go's `strconv.ParseInt(v, 10, 32)`: `Err(true)` when out of range, `Err(false)` when not a
/// number.
fn parse_i32(v: &str) -> Result<i32, bool> {
    // Rust accepts a leading '+' as Go does; neither accepts '_' in base 10.
    match v.parse::<i64>() {
        Ok(i) => i32::try_from(i).map_err(|_| true),
        Err(e) => Err(matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        )),
    }
}

/// Go's `strconv.ParseFloat(v, 64)`, refusing non-finite values (see the module docs).
fn parse_f64(v: &str) -> Option<f64> {
    let t = v.trim_start_matches(['+', '-']);
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return None;
    }
    v.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// AV:33-51 `getIntGE0`.
fn get_int_ge0(m: &BTreeMap<String, String>, keys: &[&'static str]) -> (i32, Option<FieldError>) {
    let Some((k, v)) = get(m, keys) else {
        return (0, None);
    };
    match parse_i32(v) {
        Ok(i) if i >= 0 => (i, None),
        Ok(_) | Err(true) => (0, Some(err_out_of_bounds_value(v, 0, i32::MAX, k))),
        Err(false) => (0, Some(err_invalid_value(v, k, &[]))),
    }
}

/// AV:53-64 `ValidateAnnotations`, paths relative to the annotations map (callers add
/// `metadata.annotations` or `spec.template.metadata.annotations`).
pub fn validate_annotations(
    cluster: &ClusterAutoscaling,
    anns: &BTreeMap<String, String>,
) -> Option<FieldError> {
    validate_class(anns)
        .also(validate_min_max_scale(cluster, anns))
        .also(validate_floats(anns))
        .also(validate_window(anns))
        .also(validate_last_pod_retention(anns))
        .also(validate_scale_down_delay(anns))
        .also(validate_metric(cluster, anns))
        .also(validate_algorithm(anns))
        .also(validate_initial_scale(cluster, anns))
}

/// AV:66-73: a class in the `.knative.dev` domain must be the KPA or the HPA.
fn validate_class(m: &BTreeMap<String, String>) -> Option<FieldError> {
    let (k, v) = get(m, CLASS)?;
    (v.ends_with(".knative.dev") && v != KPA && v != HPA).then(|| err_invalid_value(v, k, &[]))
}

/// AV:75-91: only checked when the class annotation says KPA (custom autoscalers may use
/// their own values).
fn validate_algorithm(m: &BTreeMap<String, String>) -> Option<FieldError> {
    if get(m, CLASS).map(|(_, v)| v) != Some(KPA) {
        return None;
    }
    let (k, v) = get(m, ALGORITHM)?;
    match v {
        "" | "linear" | "weighted-exponential" | "weightedExponential" => None,
        _ => Some(err_invalid_value(v, k, &[])),
    }
}

/// AV:93-133.
fn validate_floats(m: &BTreeMap<String, String>) -> Option<FieldError> {
    let mut errs: Option<FieldError> = None;
    if let Some((k, v)) = get(m, PANIC_WINDOW) {
        match parse_f64(v) {
            None => errs = errs.also(err_invalid_value(v, k, &[])),
            // AV:98 assigns rather than appends, so this error replaces nothing before it (it is
            // the first check); kept as upstream.
            Some(f) if !(1.0..=100.0).contains(&f) => {
                errs = Some(err_out_of_bounds_value(v, 1, 100, k))
            }
            Some(_) => {}
        }
    }
    if let Some((k, v)) = get(m, PANIC_THRESHOLD) {
        match parse_f64(v) {
            None => errs = errs.also(err_invalid_value(v, k, &[])),
            Some(f) if !(110.0..=1000.0).contains(&f) => {
                errs = errs.also(err_out_of_bounds_value(v, 110, 1000, k))
            }
            Some(_) => {}
        }
    }
    if let Some((k, v)) = get(m, TARGET) {
        match parse_f64(v) {
            None => errs = errs.also(err_invalid_value(v, k, &[])),
            Some(f) if f < TARGET_MIN => {
                errs = errs.also(err_generic(
                    format!("target {v} should be at least {TARGET_MIN}"),
                    &[k],
                ))
            }
            Some(_) => {}
        }
    }
    if let Some((k, v)) = get(m, TARGET_UTILIZATION) {
        match parse_f64(v) {
            None => errs = errs.also(err_invalid_value(v, k, &[])),
            Some(f) if !(1.0..=100.0).contains(&f) => {
                errs = errs.also(err_out_of_bounds_value(v, 1, 100, k))
            }
            Some(_) => {}
        }
    }
    if let Some((k, v)) = get(m, TARGET_BURST_CAPACITY) {
        match parse_f64(v) {
            Some(f) if f >= 0.0 || f == -1.0 => {}
            _ => errs = errs.also(err_invalid_value(v, k, &[])),
        }
    }
    errs
}

/// AV:135-149: 0 to 1h, whole seconds (`d.Round(time.Second) != d`).
fn validate_scale_down_delay(m: &BTreeMap<String, String>) -> Option<FieldError> {
    let (k, v) = get(m, SCALE_DOWN_DELAY)?;
    match parse_duration(v) {
        Err(_) => Some(err_invalid_value(v, k, &[])),
        Ok(d) if !(0..=WINDOW_MAX).contains(&d) => Some(err_out_of_bounds_value(
            v,
            format_duration(0),
            format_duration(WINDOW_MAX),
            k,
        )),
        Ok(d) if round_duration(d, SECOND) != d => Some(err_generic(
            "must be specified with at most second precision",
            &[k],
        )),
        Ok(_) => None,
    }
}

/// AV:151-162.
fn validate_last_pod_retention(m: &BTreeMap<String, String>) -> Option<FieldError> {
    let (k, v) = get(m, RETENTION)?;
    match parse_duration(v) {
        Err(_) => Some(err_invalid_value(v, k, &[])),
        Ok(d) if !(0..=WINDOW_MAX).contains(&d) => Some(err_out_of_bounds_value(
            v,
            format_duration(0),
            format_duration(WINDOW_MAX),
            k,
        )),
        Ok(_) => None,
    }
}

/// AV:164-176: 6s to 1h, whole seconds (`Truncate` here, not `Round`). The path is always the
/// canonical key (the window has no legacy spelling).
fn validate_window(m: &BTreeMap<String, String>) -> Option<FieldError> {
    let (k, v) = get(m, WINDOW)?;
    match parse_duration(v) {
        Err(_) => Some(err_invalid_value(v, k, &[])),
        Ok(d) if !(WINDOW_MIN..=WINDOW_MAX).contains(&d) => Some(err_out_of_bounds_value(
            v,
            format_duration(WINDOW_MIN),
            format_duration(WINDOW_MAX),
            k,
        )),
        Ok(d) if d - d % SECOND != d => Some(err_generic(
            "must be specified with at most second precision",
            &[k],
        )),
        Ok(_) => None,
    }
}

/// AV:178-216 and 218-235 `validateMaxScaleWithinLimit`.
fn validate_min_max_scale(
    cluster: &ClusterAutoscaling,
    m: &BTreeMap<String, String>,
) -> Option<FieldError> {
    let (min, mut errs) = get_int_ge0(m, MIN_SCALE);
    let (max, err) = get_int_ge0(m, MAX_SCALE);
    errs = errs.also(err);
    if max != 0 && max < min {
        errs = errs.also(FieldError::new(
            format!("max-scale={max} is less than min-scale={min}"),
            &[MAX_SCALE[0], MIN_SCALE[0]],
        ));
    }
    if let Some((k, _)) = get(m, MAX_SCALE) {
        errs = errs.also(validate_max_scale_within_limit(
            k,
            max,
            cluster.max_scale_limit,
        ));
    }
    if let Some((k, v)) = get(m, ACTIVATION_SCALE) {
        match parse_i32(v) {
            Err(_) => errs = errs.also(err_invalid_value(v, k, &[])),
            Ok(nz) if min > nz => {
                errs = errs.also(FieldError::new(
                    format!("min-scale={min} is greater than activation-scale={nz}"),
                    &[k],
                ))
            }
            Ok(nz) if max < nz && max != 0 => {
                errs = errs.also(FieldError::new(
                    format!("max-scale={max} is less than activation-scale={nz}"),
                    &[k],
                ))
            }
            Ok(nz) if nz < 2 => {
                errs = errs.also(FieldError::new(
                    format!("activation-scale={nz} must be greater than 1"),
                    &[k],
                ))
            }
            Ok(_) => {}
        }
    }
    errs
}

fn validate_max_scale_within_limit(key: &str, max: i32, limit: i32) -> Option<FieldError> {
    if limit == 0 {
        return None;
    }
    let mut errs: Option<FieldError> = None;
    if max > limit {
        errs = errs.also(err_out_of_bounds_value(max, 1, limit, key));
    }
    if max == 0 {
        errs = errs.also(FieldError::new(
            format!("max-scale=0 (unlimited), must be less than {limit}"),
            &[key],
        ));
    }
    errs
}

/// AV:237-263: with the KPA class (the annotation's, else the cluster's), `concurrency` or
/// `rps`; with the HPA class anything but empty; other classes are left alone.
fn validate_metric(
    cluster: &ClusterAutoscaling,
    m: &BTreeMap<String, String>,
) -> Option<FieldError> {
    let (_, metric) = get(m, METRIC)?;
    let class = get(m, CLASS).map_or(cluster.class.as_str(), |(_, c)| c);
    let ok = match class {
        KPA => matches!(metric, "concurrency" | "rps"),
        HPA => !metric.is_empty(),
        _ => true,
    };
    // AV:260 names the canonical key whatever spelling was used.
    (!ok).then(|| err_invalid_value(metric, METRIC[0], &[]))
}

/// AV:265-277: `strconv.Atoi`, then not negative, then not 0 unless the cluster allows it.
/// The details ride in the path, as upstream writes them.
fn validate_initial_scale(
    cluster: &ClusterAutoscaling,
    m: &BTreeMap<String, String>,
) -> Option<FieldError> {
    let (k, v) = get(m, INITIAL_SCALE)?;
    match v.parse::<i64>() {
        Err(_) => Some(err_invalid_value(v, k, &[])),
        Ok(i) if i < 0 => Some(err_invalid_value(
            v,
            &format!("{k} must be greater than 0"),
            &[],
        )),
        Ok(0) if !cluster.allow_zero_initial_scale => Some(err_invalid_value(
            v,
            &format!("{k}=0 not allowed by cluster"),
            &[],
        )),
        Ok(_) => None,
    }
}

/// `ValidateHasNoAutoscalingAnnotation` (`metadata_validation.go:78-89`): a Service's (or
/// Configuration's) own metadata must not carry autoscaling annotations. Path relative to the
/// annotations map's parent (callers add `metadata.annotations`).
pub fn validate_has_no_autoscaling_annotation(
    anns: &BTreeMap<String, String>,
) -> Option<FieldError> {
    let mut errs: Option<FieldError> = None;
    for key in anns.keys().filter(|k| k.starts_with(GROUP)) {
        errs = errs.also(err_invalid_key_name(
            key,
            CURRENT_FIELD,
            &[r#"autoscaling annotations must be put under "spec.template.metadata.annotations" to work"#],
        ));
    }
    errs
}

/// The autoscaling checks the webhook makes on a manifest: a Service's own metadata carries
/// none, and its template's (or a Revision's) annotations are valid under `cluster`. Paths are
/// Knative's from the object's root.
pub fn validate_manifest(m: &Manifest, cluster: &ClusterAutoscaling) -> Option<FieldError> {
    let mut errs: Option<FieldError> = None;
    if m.kind == ManifestKind::Service {
        errs = validate_has_no_autoscaling_annotation(&m.meta.annotations)
            .via_field("annotations")
            .via_field("metadata");
    }
    if let Some(s) = &m.revision {
        errs = errs.also(
            validate_annotations(cluster, &s.annotations)
                .via_field(&s.path("metadata.annotations")),
        );
    }
    errs
}

/// Reads annotations that passed [`validate_annotations`] into what the KPA model uses, and the
/// warnings for what it cannot use. `who` names the revision in warnings.
pub fn read_annotations(
    cluster: &ClusterAutoscaling,
    anns: &BTreeMap<String, String>,
    who: &str,
) -> (RevisionAutoscaling, Vec<String>) {
    let mut warnings = Vec::new();
    let mut a = RevisionAutoscaling::default();
    let int = |keys: &[&'static str]| {
        get(anns, keys)
            .and_then(|(_, v)| v.parse::<i64>().ok())
            .and_then(|i| u32::try_from(i).ok())
    };
    let float = |keys: &[&'static str]| get(anns, keys).and_then(|(_, v)| parse_f64(v));
    let duration = |keys: &[&'static str]| {
        get(anns, keys)
            .and_then(|(_, v)| parse_duration(v).ok())
            .map(SimDuration)
    };
    let class = get(anns, CLASS).map_or(cluster.class.as_str(), |(_, c)| c);
    if class != KPA {
        warnings.push(format!(
            "{who}: autoscaling class {class:?} is not modelled (splitlab simulates only the Knative Pod Autoscaler, {KPA}); the revision is scaled by the KPA"
        ));
    }
    if let Some((k, metric)) = get(anns, METRIC) {
        match metric {
            "concurrency" => a.metric = Some(ScalingMetric::Concurrency),
            "rps" => a.metric = Some(ScalingMetric::Rps),
            other => warnings.push(format!(
                "{who}: {k}={other:?} is not modelled (splitlab scales on concurrency or rps); the cluster's metric is used"
            )),
        }
    }
    a.target = float(TARGET);
    a.target_utilization_percentage = float(TARGET_UTILIZATION);
    a.min_scale = int(MIN_SCALE);
    a.max_scale = int(MAX_SCALE);
    a.initial_scale = int(INITIAL_SCALE);
    a.activation_scale = int(ACTIVATION_SCALE);
    a.scale_down_delay = duration(SCALE_DOWN_DELAY);
    a.window = duration(WINDOW);
    a.panic_window_percentage = float(PANIC_WINDOW);
    a.panic_threshold_percentage = float(PANIC_THRESHOLD);
    a.target_burst_capacity = float(TARGET_BURST_CAPACITY);
    a.scale_to_zero_pod_retention_period = duration(RETENTION);
    // metric_lifecycle.go:79-87 and collector.go:281: weighted only for the two spellings of
    // weighted-exponential; anything else (validated or not) is the linear average.
    a.aggregation = get(anns, ALGORITHM).map(|(k, v)| match v {
        "weighted-exponential" | "weightedExponential" => Aggregation::WeightedExponential,
        "linear" | "" => Aggregation::Linear,
        other => {
            warnings.push(format!(
                "{who}: {k}={other:?} is not an algorithm the autoscaler knows; it averages linearly"
            ));
            Aggregation::Linear
        }
    });
    for key in anns.keys().filter(|k| k.starts_with(&format!("{GROUP}/"))) {
        if !ALL.iter().any(|keys| keys.contains(&key.as_str())) {
            warnings.push(format!(
                "{who}: annotation {key} is not one Knative's autoscaler reads; ignored"
            ));
        }
    }
    (a, warnings)
}

/// The annotation keys of `revisions[].autoscaling` in a scenario: Knative's names without the
/// `autoscaling.knative.dev/` prefix.
pub const SCENARIO_KEYS: &[&str] = &[
    "class",
    "metric",
    "target",
    "target-utilization-percentage",
    "min-scale",
    "max-scale",
    "initial-scale",
    "activation-scale",
    "scale-down-delay",
    "window",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "target-burst-capacity",
    "metric-aggregation-algorithm",
    "scale-to-zero-pod-retention-period",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn anns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{GROUP}/{k}"), v.to_string()))
            .collect()
    }

    fn cluster() -> ClusterAutoscaling {
        ClusterAutoscaling::default()
    }

    #[test]
    fn validation_messages_match_upstream() {
        let limited = ClusterAutoscaling {
            max_scale_limit: 40,
            ..cluster()
        };
        let zero_ok = ClusterAutoscaling {
            allow_zero_initial_scale: true,
            ..cluster()
        };
        let hpa_cluster = ClusterAutoscaling {
            class: HPA.to_string(),
            ..cluster()
        };
        // (cluster, annotations, the error text or "" when valid)
        type Row<'a> = (&'a ClusterAutoscaling, &'a [(&'a str, &'a str)], &'a str);
        let table: &[Row] = &[
            // AV:66-73 a knative.dev class that is neither KPA nor HPA
            (&cluster(), &[("class", "foo.autoscaling.knative.dev")], "invalid value: foo.autoscaling.knative.dev: autoscaling.knative.dev/class"),
            // AV:68 a class outside the knative.dev domain is left alone
            (&cluster(), &[("class", "example.com/custom")], ""),
            // AV:42 getIntGE0: negative
            (&cluster(), &[("min-scale", "-1")], "expected 0 <= -1 <= 2147483647: autoscaling.knative.dev/min-scale"),
            // AV:41 getIntGE0: out of int32 range
            (&cluster(), &[("max-scale", "3000000000")], "expected 0 <= 3000000000 <= 2147483647: autoscaling.knative.dev/max-scale"),
            // AV:44 getIntGE0: not a number
            (&cluster(), &[("min-scale", "two")], "invalid value: two: autoscaling.knative.dev/min-scale"),
            // AV:183-188 max below min; both paths
            (&cluster(), &[("min-scale", "5"), ("max-scale", "2")], "max-scale=2 is less than min-scale=5: autoscaling.knative.dev/max-scale, autoscaling.knative.dev/min-scale"),
            // RG:249-252 the legacy spelling is read (and named)
            (&cluster(), &[("minScale", "-3")], "expected 0 <= -3 <= 2147483647: autoscaling.knative.dev/minScale"),
            // AV:223-225 above the cluster's max-scale-limit
            (&limited, &[("max-scale", "50")], "expected 1 <= 50 <= 40: autoscaling.knative.dev/max-scale"),
            // AV:227-232 unlimited with a limit set
            (&limited, &[("max-scale", "0")], "max-scale=0 (unlimited), must be less than 40: autoscaling.knative.dev/max-scale"),
            // AV:198-202 activation-scale below min-scale
            (&cluster(), &[("min-scale", "3"), ("activation-scale", "2")], "min-scale=3 is greater than activation-scale=2: autoscaling.knative.dev/activation-scale"),
            // AV:203-207 activation-scale above max-scale
            (&cluster(), &[("max-scale", "3"), ("activation-scale", "5")], "max-scale=3 is less than activation-scale=5: autoscaling.knative.dev/activation-scale"),
            // AV:208-213 activation-scale must be >= 2
            (&cluster(), &[("activation-scale", "1")], "activation-scale=1 must be greater than 1: autoscaling.knative.dev/activation-scale"),
            // AV:97-99 panic-window-percentage 1..100
            (&cluster(), &[("panic-window-percentage", "0.5")], "expected 1 <= 0.5 <= 100: autoscaling.knative.dev/panic-window-percentage"),
            // AV:105-107 panic-threshold-percentage 110..1000
            (&cluster(), &[("panic-threshold-percentage", "100")], "expected 110 <= 100 <= 1000: autoscaling.knative.dev/panic-threshold-percentage"),
            // AV:114-116 target >= 0.01
            (&cluster(), &[("target", "0.001")], "target 0.001 should be at least 0.01: autoscaling.knative.dev/target"),
            // AV:112-113 target not a number
            (&cluster(), &[("target", "fifty")], "invalid value: fifty: autoscaling.knative.dev/target"),
            // AV:122-124 target-utilization-percentage 1..100
            (&cluster(), &[("target-utilization-percentage", "120")], "expected 1 <= 120 <= 100: autoscaling.knative.dev/target-utilization-percentage"),
            // AV:128-130 TBC: -1 or >= 0
            (&cluster(), &[("target-burst-capacity", "-2")], "invalid value: -2: autoscaling.knative.dev/target-burst-capacity"),
            (&cluster(), &[("target-burst-capacity", "-1")], ""),
            // AV:140-143 scale-down-delay 0..1h
            (&cluster(), &[("scale-down-delay", "2h")], "expected 0s <= 2h <= 1h0m0s: autoscaling.knative.dev/scale-down-delay"),
            // AV:144-146 whole seconds
            (&cluster(), &[("scale-down-delay", "1.5s")], "must be specified with at most second precision: autoscaling.knative.dev/scale-down-delay"),
            // AV:155-158 scale-to-zero-pod-retention-period 0..1h
            (&cluster(), &[("scale-to-zero-pod-retention-period", "-1s")], "expected 0s <= -1s <= 1h0m0s: autoscaling.knative.dev/scale-to-zero-pod-retention-period"),
            // AV:169-170 window 6s..1h
            (&cluster(), &[("window", "5s")], "expected 6s <= 5s <= 1h0m0s: autoscaling.knative.dev/window"),
            // AV:171-172 window whole seconds
            (&cluster(), &[("window", "10500ms")], "must be specified with at most second precision: autoscaling.knative.dev/window"),
            // AV:167-168 window not a duration
            (&cluster(), &[("window", "60")], "invalid value: 60: autoscaling.knative.dev/window"),
            // AV:244-248 KPA (the cluster default): concurrency or rps only
            (&cluster(), &[("metric", "cpu")], "invalid value: cpu: autoscaling.knative.dev/metric"),
            // AV:249-255 HPA: any non-empty metric
            (&cluster(), &[("class", HPA), ("metric", "cpu")], ""),
            (&hpa_cluster, &[("metric", "memory")], ""),
            (&cluster(), &[("class", HPA), ("metric", "")], "invalid value: : autoscaling.knative.dev/metric"),
            // AV:256-258 other classes are left alone
            (&cluster(), &[("class", "example.com/custom"), ("metric", "latency")], ""),
            // AV:77-79 the algorithm is only checked when the class annotation says KPA
            (&cluster(), &[("metric-aggregation-algorithm", "median")], ""),
            (&cluster(), &[("class", KPA), ("metric-aggregation-algorithm", "median")], "invalid value: median: autoscaling.knative.dev/metric-aggregation-algorithm"),
            (&cluster(), &[("class", KPA), ("metric-aggregation-algorithm", "weightedExponential")], ""),
            // AV:268-269 initial-scale not an integer
            (&cluster(), &[("initial-scale", "1.5")], "invalid value: 1.5: autoscaling.knative.dev/initial-scale"),
            // AV:270-271 negative: the detail rides in the path
            (&cluster(), &[("initial-scale", "-1")], "invalid value: -1: autoscaling.knative.dev/initial-scale must be greater than 0"),
            // AV:272-273 zero without allow-zero-initial-scale
            (&cluster(), &[("initial-scale", "0")], "invalid value: 0: autoscaling.knative.dev/initial-scale=0 not allowed by cluster"),
            (&zero_ok, &[("initial-scale", "0")], ""),
            // the issue's example is valid
            (&cluster(), &[("min-scale", "2"), ("max-scale", "40"), ("target", "50")], ""),
        ];
        for (cluster, pairs, want) in table {
            let got = validate_annotations(cluster, &anns(pairs))
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(got, *want, "{pairs:?}");
        }
    }

    #[test]
    fn several_errors_are_reported_together() {
        let e = validate_annotations(
            &cluster(),
            &anns(&[("min-scale", "-1"), ("window", "1s"), ("target", "0")]),
        )
        .expect("invalid")
        .via_field("annotations")
        .via_field("metadata");
        assert_eq!(e.merged().len(), 3, "{e}");
        assert!(e.to_string().contains(
            "expected 6s <= 1s <= 1h0m0s: metadata.annotations.autoscaling.knative.dev/window"
        ));
    }

    #[test]
    fn service_metadata_must_not_carry_autoscaling_annotations() {
        let e = validate_has_no_autoscaling_annotation(&anns(&[("min-scale", "2")]))
            .expect("banned")
            .via_field("annotations")
            .via_field("metadata");
        assert_eq!(
            e.to_string(),
            "invalid key name \"autoscaling.knative.dev/min-scale\": metadata.annotations\nautoscaling annotations must be put under \"spec.template.metadata.annotations\" to work"
        );
    }

    #[test]
    fn reads_what_the_kpa_uses_and_warns_about_the_rest() {
        let (a, w) = read_annotations(
            &cluster(),
            &anns(&[
                ("min-scale", "2"),
                ("max-scale", "40"),
                ("target", "50"),
                ("window", "2m"),
                ("metric", "rps"),
                ("metricAggregationAlgorithm", "weightedExponential"),
                ("no-such-thing", "1"),
            ]),
            "revision r",
        );
        assert_eq!(a.min_scale, Some(2));
        assert_eq!(a.max_scale, Some(40));
        assert_eq!(a.target, Some(50.0));
        assert_eq!(a.window, Some(SimDuration::from_secs(120)));
        assert_eq!(a.metric, Some(ScalingMetric::Rps));
        assert_eq!(a.aggregation, Some(Aggregation::WeightedExponential));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("no-such-thing"), "{w:?}");
        // The HPA class and its metrics are valid but not modelled: warnings, no settings.
        let (a, w) = read_annotations(&cluster(), &anns(&[("class", HPA), ("metric", "cpu")]), "r");
        assert_eq!(a.metric, None);
        assert_eq!(w.len(), 2, "{w:?}");
    }

    use proptest::prelude::*;

    /// Values near every bound and every spelling, plus arbitrary text.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            (-3i64..60).prop_map(|i| i.to_string()),
            prop_oneof![
                Just("0.5"),
                Just("110"),
                Just("1000.5"),
                Just("-1"),
                Just("NaN"),
                Just("inf")
            ]
            .prop_map(str::to_string),
            prop_oneof![
                Just("5s"),
                Just("6s"),
                Just("1h"),
                Just("61m"),
                Just("1.5s"),
                Just("2m")
            ]
            .prop_map(str::to_string),
            prop_oneof![
                Just(KPA),
                Just(HPA),
                Just("rps"),
                Just("concurrency"),
                Just("cpu"),
                Just("weightedExponential")
            ]
            .prop_map(str::to_string),
            "\\PC{0,8}",
        ]
    }

    fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
        let keys: Vec<&'static str> = ALL.iter().flat_map(|k| k.iter().copied()).collect();
        proptest::collection::btree_map(proptest::sample::select(keys), value(), 0..8)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the annotations, validation does not panic, and what it accepts reads into
        /// values inside Knative's bounds (annotation_validation.go), which the KPA can trust.
        #[test]
        fn accepted_annotations_read_within_bounds(anns in annotations(), limit in 0i32..50) {
            let cluster = ClusterAutoscaling { max_scale_limit: limit, ..ClusterAutoscaling::default() };
            if validate_annotations(&cluster, &anns).is_some() {
                return Ok(());
            }
            let (a, _) = read_annotations(&cluster, &anns, "r");
            if let (Some(min), Some(max)) = (a.min_scale, a.max_scale) {
                prop_assert!(max == 0 || min <= max);
            }
            if limit > 0 && get(&anns, MAX_SCALE).is_some() {
                prop_assert!(a.max_scale.is_some_and(|m| m >= 1 && m <= limit as u32));
            }
            if let Some(nz) = a.activation_scale {
                prop_assert!(nz >= 2);
            }
            if let Some(w) = a.window {
                prop_assert!((WINDOW_MIN..=WINDOW_MAX).contains(&w.0));
            }
            if let Some(p) = a.panic_window_percentage {
                prop_assert!((1.0..=100.0).contains(&p));
            }
            if let Some(p) = a.panic_threshold_percentage {
                prop_assert!((110.0..=1000.0).contains(&p));
            }
            if let Some(t) = a.target {
                prop_assert!(t >= TARGET_MIN);
            }
            if let Some(t) = a.target_burst_capacity {
                prop_assert!(t >= 0.0 || t == -1.0);
            }
            if let Some(d) = a.scale_down_delay {
                prop_assert!((0..=WINDOW_MAX).contains(&d.0));
            }
            if let Some(i) = a.initial_scale {
                prop_assert!(i >= 1);
            }
        }
    }
}
