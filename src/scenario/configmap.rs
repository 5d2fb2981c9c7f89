//! The operator's cluster configuration: Knative's `config-autoscaler`, `config-defaults`,
//! `config-features` and `config-network` ConfigMaps as `kubectl get cm -n knative-serving NAME
//! -o yaml` prints them (one per document, several documents, or a `kind: List`), read with
//! Knative's key names, parsing and validation into a [`ClusterConfig`].
//!
//! Owns: the ports of serving `pkg/autoscaler/config/config.go` (AC: `NewConfigFromMap`,
//! `validate`), serving `pkg/apis/config/defaults.go` (DF: `NewDefaultsConfigFromMap`), serving
//! `pkg/apis/config/features.go` (FT: `NewFeaturesConfigFromMap`, `asFlag`), knative/networking
//! `pkg/config/config.go` (NW: the `rollout-duration` key), and knative/pkg
//! `configmap/parser/parse.go` (PP: `failed to parse "KEY": ...` with Go's strconv texts). The
//! error messages are upstream's; the position is the value's in the file.
//!
//! Keys Knative reads that splitlab does not model, and keys Knative does not read at all, are
//! warnings (Knative ignores unknown keys silently); `_example` is skipped as Knative does.
//!
//! Must not: open files or know the scenario format (`load` decides precedence).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::autoscaling::{ClusterAutoscaling, KPA};
use super::kube::read_objects;
use super::yaml::{from_document, ScalarString, SourcePos, YamlError};
use crate::model::autoscaler::AutoscalerConfig;
use crate::model::time::SimDuration;
use crate::routing::duration::{format_duration, parse_duration, round_duration, HOUR, SECOND};
use crate::routing::field_error::{err_out_of_bounds_value, go_quote};

/// The ConfigMaps splitlab reads.
pub const NAMES: &[&str] = &[
    "config-autoscaler",
    "config-defaults",
    "config-features",
    "config-network",
];

/// DF:37-73 and what splitlab models of config-defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// `revision-timeout-seconds` (DF:42): 300.
    pub revision_timeout_seconds: i64,
    /// `max-revision-timeout-seconds` (DF:45): 600.
    pub max_revision_timeout_seconds: i64,
    /// `revision-response-start-timeout-seconds` (DF:140: defaults to the revision timeout).
    pub revision_response_start_timeout_seconds: i64,
    /// `container-concurrency` (DF:64): 0.
    pub container_concurrency: i64,
    /// `container-concurrency-max-limit` (DF:68): 1000.
    pub container_concurrency_max_limit: i64,
    /// `allow-container-concurrency-zero` (DF:72): true.
    pub allow_container_concurrency_zero: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            revision_timeout_seconds: 300,
            max_revision_timeout_seconds: 600,
            revision_response_start_timeout_seconds: 300,
            container_concurrency: 0,
            container_concurrency_max_limit: 1000,
            allow_container_concurrency_zero: true,
        }
    }
}

/// Everything the ConfigMaps say that splitlab models. Without ConfigMaps, Knative's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterConfig {
    /// config-autoscaler (including `target-burst-capacity`).
    pub autoscaler: AutoscalerConfig,
    /// The config-autoscaler keys annotation validation reads.
    pub autoscaling: ClusterAutoscaling,
    /// The config-autoscaler keys the ConfigMap set (for the precedence warnings).
    pub autoscaler_keys: BTreeSet<String>,
    pub defaults: Defaults,
    /// config-features `tag-header-based-routing` (`None`: not set).
    pub tag_header_routing: Option<bool>,
    /// config-network `rollout-duration` in seconds (`None`: not set).
    pub rollout_duration_secs: Option<i64>,
    /// Where each ConfigMap came from, by name (for messages).
    pub sources: BTreeMap<String, String>,
    /// Unmodelled or unknown keys, ConfigMaps splitlab does not read.
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMapMirror {
    #[serde(default)]
    metadata: Option<MetaMirror>,
    #[serde(default)]
    data: Option<BTreeMap<String, Spanned<ScalarString>>>,
}

#[derive(Debug, Deserialize)]
struct MetaMirror {
    #[serde(default)]
    name: Option<Spanned<String>>,
}

/// One ConfigMap's data with the position of each value.
struct Data<'a> {
    file: &'a str,
    name: &'a str,
    values: BTreeMap<String, (String, SourcePos)>,
    at: SourcePos,
}

impl Data<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    fn err(&self, key: &str, message: String) -> YamlError {
        let pos = self.values.get(key).map_or(self.at, |(_, p)| *p);
        YamlError {
            file: self.file.to_string(),
            pos: Some(pos),
            path: if self.values.contains_key(key) {
                format!("data.{key}")
            } else {
                "data".to_string()
            },
            message: format!("{}: {message}", self.name),
            snippet: String::new(),
        }
    }

    /// PP: `failed to parse "KEY": <strconv error>`, with `wrap` before it (config-autoscaler
    /// wraps with `failed to parse data: `, AC:100).
    fn parse<T>(
        &self,
        key: &str,
        wrap: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, YamlError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => parse(raw).map(Some).map_err(|e| {
                self.err(key, format!("{wrap}failed to parse {}: {e}", go_quote(key)))
            }),
        }
    }

    /// The keys that are neither modelled nor `_example`, split into those Knative reads
    /// (`known`) and the others.
    fn leftovers(&self, modelled: &[&str], known: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut unmodelled = Vec::new();
        let mut unknown = Vec::new();
        for k in self.values.keys() {
            if k == "_example" || modelled.contains(&k.as_str()) {
                continue;
            }
            if known.contains(&k.as_str()) {
                unmodelled.push(k.clone());
            } else {
                unknown.push(k.clone());
            }
        }
        (unmodelled, unknown)
    }
}

/// Go's `strconv.ParseInt(s, 10, bits)` error text.
fn go_int(s: &str, bits: u32) -> Result<i64, String> {
    let err = |what: &str| format!("strconv.ParseInt: parsing {}: {what}", go_quote(s));
    match s.parse::<i64>() {
        Ok(v) => {
            let (lo, hi) = if bits >= 64 {
                (i64::MIN, i64::MAX)
            } else {
                (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
            };
            if v < lo || v > hi {
                Err(err("value out of range"))
            } else {
                Ok(v)
            }
        }
        Err(e) => match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                Err(err("value out of range"))
            }
            _ => Err(err("invalid syntax")),
        },
    }
}

/// Go's `strconv.ParseFloat(s, 64)`; non-finite values are refused (see
/// `scenario::autoscaling`).
fn go_float(s: &str) -> Result<f64, String> {
    let t = s.trim_start_matches(['+', '-']);
    let bad = t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity");
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && !bad => Ok(v),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

fn go_duration(s: &str) -> Result<i64, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Reads the ConfigMaps of `files` (display name, text), later files after earlier ones; a
/// ConfigMap may appear only once.
pub fn read_configmaps(files: &[(String, String)]) -> Result<ClusterConfig, YamlError> {
    let mut c = ClusterConfig::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut found: BTreeMap<String, (String, ConfigMapMirror, SourcePos, u32)> = BTreeMap::new();
    for (file, text) in files {
        for obj in read_objects(file, text)? {
            let fail = |pos: SourcePos, path: &str, message: String| YamlError {
                file: file.clone(),
                pos: Some(pos),
                path: path.to_string(),
                message,
                snippet: String::new(),
            };
            if obj.api_version != "v1" {
                return Err(fail(
                    obj.api_version_pos,
                    "apiVersion",
                    format!(
                        "unsupported apiVersion {:?}; allowed: \"v1\" (a ConfigMap)",
                        obj.api_version
                    ),
                ));
            }
            if obj.kind != "ConfigMap" {
                return Err(fail(
                    obj.kind_pos,
                    "kind",
                    format!("unsupported kind {:?}; allowed: \"ConfigMap\"", obj.kind),
                ));
            }
            let mirror: ConfigMapMirror = from_document(file, &obj.doc)?;
            let name = obj.name.clone();
            let name_pos = mirror
                .metadata
                .as_ref()
                .and_then(|m| m.name.as_ref())
                .map_or(obj.pos, |n| obj.doc.pos(n.referenced));
            if !NAMES.contains(&name.as_str()) {
                c.warnings.push(format!(
                    "{file}: ConfigMap {name:?} is not one splitlab reads (allowed: {}); ignored",
                    NAMES.join(", ")
                ));
                continue;
            }
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                return Err(fail(
                    name_pos,
                    "metadata.name",
                    format!("ConfigMap {name:?} is given twice (also in {first}); allowed: each ConfigMap once"),
                ));
            }
            found.insert(name, (file.clone(), mirror, obj.pos, obj.doc.line_offset()));
        }
    }
    for (name, (file, mirror, at, line_offset)) in found {
        let data = Data {
            file: &file,
            name: &name,
            values: mirror
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let pos = SourcePos::of_location(v.referenced, line_offset);
                    (k, (v.value.0, pos))
                })
                .collect(),
            at,
        };
        match name.as_str() {
            "config-autoscaler" => autoscaler(&data, &mut c)?,
            "config-defaults" => defaults(&data, &mut c)?,
            "config-features" => features(&data, &mut c),
            _ => network(&data, &mut c)?,
        }
        c.sources.insert(name.clone(), file.clone());
    }
    Ok(c)
}

fn warn_leftovers(data: &Data, modelled: &[&str], known: &[&str], c: &mut ClusterConfig) {
    let (unmodelled, unknown) = data.leftovers(modelled, known);
    if !unmodelled.is_empty() {
        c.warnings.push(format!(
            "{}: {} keys splitlab does not model, ignored: {}",
            data.file,
            data.name,
            unmodelled.join(", ")
        ));
    }
    if !unknown.is_empty() {
        c.warnings.push(format!(
            "{}: {} keys Knative does not read, ignored: {}",
            data.file,
            data.name,
            unknown.join(", ")
        ));
    }
}

/// AC:42-205.
fn autoscaler(data: &Data, c: &mut ClusterConfig) -> Result<(), YamlError> {
    const WRAP: &str = "failed to parse data: ";
    let a = &mut c.autoscaler;
    let int32 = |k: &str| data.parse(k, WRAP, |s| go_int(s, 32));
    let float = |k: &str| data.parse(k, WRAP, go_float);
    let boolean = |k: &str| data.parse(k, WRAP, go_bool);
    let duration = |k: &str| data.parse(k, WRAP, go_duration);
    // AC:74-99, in upstream's order (the first bad key is the one reported).
    let class = data
        .get("pod-autoscaler-class")
        .map(|s| s.trim().to_string());
    let enable_scale_to_zero = boolean("enable-scale-to-zero")?;
    let allow_zero = boolean("allow-zero-initial-scale")?;
    let up = float("max-scale-up-rate")?;
    let down = float("max-scale-down-rate")?;
    let cc_pct = float("container-concurrency-target-percentage")?;
    let cc_default = float("container-concurrency-target-default")?;
    let rps = float("requests-per-second-target-default")?;
    let tbc = float("target-burst-capacity")?;
    let pwp = float("panic-window-percentage")?;
    let activator = float("activator-capacity")?;
    let ptp = float("panic-threshold-percentage")?;
    let initial = int32("initial-scale")?;
    let min = int32("min-scale")?;
    let max = int32("max-scale")?;
    let limit = int32("max-scale-limit")?;
    let stable = duration("stable-window")?;
    let sdd = duration("scale-down-delay")?;
    let grace = duration("scale-to-zero-grace-period")?;
    let retention = duration("scale-to-zero-pod-retention-period")?;

    // The values as upstream holds them (AC:42-68 defaults, fractions after AC:107-109).
    let mut fraction = cc_pct.unwrap_or(a.container_concurrency_target_percentage);
    if fraction > 1.0 {
        fraction /= 100.0;
    }
    let v_tbc = tbc.unwrap_or(a.target_burst_capacity);
    let v_cc_default = cc_default.unwrap_or(a.container_concurrency_target_default);
    let v_rps = rps.unwrap_or(a.rps_target_default);
    let v_activator = activator.unwrap_or(a.activator_capacity);
    let v_up = up.unwrap_or(a.max_scale_up_rate);
    let v_down = down.unwrap_or(a.max_scale_down_rate);
    let v_stable = stable.unwrap_or(a.stable_window.0);
    let v_pwp = pwp.unwrap_or(a.panic_window_percentage);
    let v_grace = grace.unwrap_or(a.scale_to_zero_grace_period.0);
    let v_sdd = sdd.unwrap_or(a.scale_down_delay.0);
    let v_retention = retention.unwrap_or(a.scale_to_zero_pod_retention_period.0);
    let v_initial = initial.unwrap_or(i64::from(a.initial_scale));
    let v_allow_zero = allow_zero.unwrap_or(a.allow_zero_initial_scale);
    let v_min = min.unwrap_or(i64::from(a.min_scale));
    let v_max = max.unwrap_or(i64::from(a.max_scale));
    let v_limit = limit.unwrap_or(0);
    let d = format_duration;

    // AC:114-205 `validate`, in order; each error names the key it is about.
    let checks: Vec<(bool, &str, String)> = vec![
        (v_grace <= 0, "scale-to-zero-grace-period", format!("scale-to-zero-grace-period must be positive, was: {}", d(v_grace))),
        (v_sdd < 0, "scale-down-delay", format!("scale-down-delay cannot be negative, was: {}", d(v_sdd))),
        (round_duration(v_sdd, SECOND) != v_sdd, "scale-down-delay", format!("scale-down-delay = {}, must be specified with at most second precision", d(v_sdd))),
        (v_retention < 0, "scale-to-zero-pod-retention-period", format!("scale-to-zero-pod-retention-period cannot be negative, was: {}", d(v_retention))),
        (v_tbc < 0.0 && v_tbc != -1.0, "target-burst-capacity", format!("target-burst-capacity must be either non-negative or -1 (for unlimited), was: {v_tbc:.6}")),
        (fraction <= 0.0 || fraction > 1.0, "container-concurrency-target-percentage", format!("container-concurrency-target-percentage = {fraction:.6} is outside of valid range of (0, 100]")),
        (fraction * v_cc_default < 0.01, "container-concurrency-target-default", format!("container-concurrency-target-percentage and container-concurrency-target-default yield target concurrency of {}, can't be less than 0.01", fraction * v_cc_default)),
        (v_rps < 0.01, "requests-per-second-target-default", format!("requests-per-second-target-default must be at least 0.01, was: {v_rps}")),
        (v_activator < 1.0, "activator-capacity", format!("activator-capacity = {v_activator}, must be at least 1")),
        (v_up <= 1.0, "max-scale-up-rate", format!("max-scale-up-rate = {v_up}, must be greater than 1.0")),
        (v_down <= 1.0, "max-scale-down-rate", format!("max-scale-down-rate = {v_down}, must be greater than 1.0")),
        (!(6 * SECOND..=HOUR).contains(&v_stable), "stable-window", format!("stable-window = {}, must be in [6s; 1h0m0s] range", d(v_stable))),
        (round_duration(v_stable, SECOND) != v_stable, "stable-window", format!("stable-window = {}, must be specified with at most second precision", d(v_stable))),
        (!(1.0..=100.0).contains(&v_pwp), "panic-window-percentage", format!("panic-window-percentage = {v_pwp}, must be in [1, 100] interval")),
        (v_initial < 0 || (v_initial == 0 && !v_allow_zero), "initial-scale", format!("initial-scale = {v_initial}, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)")),
        (v_min < 0, "min-scale", format!("min-scale = {v_min}, must be at least 0")),
        (v_max < i64::from(v_limit > 0) || (v_limit > 0 && v_max > v_limit), "max-scale", format!("max-scale = {v_max}, must be in [{}, max-scale-limit({v_limit})] range", i64::from(v_limit > 0))),
        (v_limit < 0, "max-scale-limit", format!("max-scale-limit = {v_limit}, must be at least 0")),
        (v_min > v_max && v_max > 0, "min-scale", format!("min-scale ({v_min}) must be less than max-scale ({v_max})")),
    ];
    if let Some((_, key, message)) = checks.into_iter().find(|(bad, _, _)| *bad) {
        return Err(data.err(key, message));
    }
    // splitlab's own limit on pod counts (its scenarios allow up to 10000 pods).
    for (key, v) in [
        ("initial-scale", v_initial),
        ("min-scale", v_min),
        ("max-scale", v_max),
    ] {
        if v > 10_000 {
            return Err(data.err(
                key,
                format!("{v} pods is more than splitlab simulates; allowed: 0 to 10000"),
            ));
        }
    }

    if let Some(v) = enable_scale_to_zero {
        a.enable_scale_to_zero = v;
    }
    a.allow_zero_initial_scale = v_allow_zero;
    a.max_scale_up_rate = v_up;
    a.max_scale_down_rate = v_down;
    a.container_concurrency_target_percentage = fraction * 100.0;
    a.container_concurrency_target_default = v_cc_default;
    a.rps_target_default = v_rps;
    a.target_burst_capacity = v_tbc;
    a.panic_window_percentage = v_pwp;
    a.activator_capacity = v_activator;
    if let Some(v) = ptp {
        // AC's validate does not bound the cluster's panic threshold; the decider uses it as is.
        a.panic_threshold_percentage = v;
    }
    a.initial_scale = v_initial as u32;
    a.min_scale = v_min as u32;
    a.max_scale = v_max as u32;
    a.stable_window = SimDuration(v_stable);
    a.scale_down_delay = SimDuration(v_sdd);
    a.scale_to_zero_grace_period = SimDuration(v_grace);
    a.scale_to_zero_pod_retention_period = SimDuration(v_retention);
    c.autoscaling = ClusterAutoscaling {
        class: class.clone().unwrap_or_else(|| KPA.to_string()),
        max_scale_limit: v_limit as i32,
        allow_zero_initial_scale: v_allow_zero,
    };
    if let Some(class) = class.filter(|c| c != KPA) {
        c.warnings.push(format!(
            "{}: config-autoscaler pod-autoscaler-class {class:?} is not modelled; revisions without a class annotation are scaled by the KPA",
            data.file
        ));
    }
    const MODELLED: &[&str] = &[
        "pod-autoscaler-class",
        "enable-scale-to-zero",
        "allow-zero-initial-scale",
        "max-scale-up-rate",
        "max-scale-down-rate",
        "container-concurrency-target-percentage",
        "container-concurrency-target-default",
        "requests-per-second-target-default",
        "target-burst-capacity",
        "panic-window-percentage",
        "activator-capacity",
        "panic-threshold-percentage",
        "initial-scale",
        "min-scale",
        "max-scale",
        "max-scale-limit",
        "stable-window",
        "scale-down-delay",
        "scale-to-zero-grace-period",
        "scale-to-zero-pod-retention-period",
    ];
    c.autoscaler_keys = data
        .values
        .keys()
        .filter(|k| MODELLED.contains(&k.as_str()))
        .cloned()
        .collect();
    warn_leftovers(data, MODELLED, &[], c);
    Ok(())
}

/// DF:111-173.
fn defaults(data: &Data, c: &mut ClusterConfig) -> Result<(), YamlError> {
    let d = &mut c.defaults;
    let int64 = |k: &str| data.parse(k, "", |s| go_int(s, 64));
    // DF:115-137 in order (templates and quantities are not modelled, so not parsed).
    if let Some(v) = data.parse("allow-container-concurrency-zero", "", go_bool)? {
        d.allow_container_concurrency_zero = v;
    }
    let timeout = int64("revision-timeout-seconds")?;
    let max_timeout = int64("max-revision-timeout-seconds")?;
    let idle = int64("revision-idle-timeout-seconds")?;
    let cc = int64("container-concurrency")?;
    let cc_max = int64("container-concurrency-max-limit")?;
    d.revision_timeout_seconds = timeout.unwrap_or(d.revision_timeout_seconds);
    d.max_revision_timeout_seconds = max_timeout.unwrap_or(d.max_revision_timeout_seconds);
    d.container_concurrency = cc.unwrap_or(d.container_concurrency);
    d.container_concurrency_max_limit = cc_max.unwrap_or(d.container_concurrency_max_limit);
    // DF:140-146: the response-start default is the revision timeout unless set.
    d.revision_response_start_timeout_seconds =
        int64("revision-response-start-timeout-seconds")?.unwrap_or(d.revision_timeout_seconds);
    let idle = idle.unwrap_or(0);
    let checks: Vec<(bool, &str, String)> = vec![
        (d.revision_timeout_seconds > d.max_revision_timeout_seconds, "revision-timeout-seconds", format!("revision-timeout-seconds ({}) cannot be greater than max-revision-timeout-seconds ({})", d.revision_timeout_seconds, d.max_revision_timeout_seconds)),
        (d.revision_response_start_timeout_seconds > 0 && d.revision_response_start_timeout_seconds > d.revision_timeout_seconds, "revision-response-start-timeout-seconds", format!("revision-response-start-timeout-seconds ({}) cannot be greater than revision-timeout-seconds ({})", d.revision_response_start_timeout_seconds, d.revision_timeout_seconds)),
        (idle > 0 && idle > d.revision_timeout_seconds, "revision-idle-timeout-seconds", format!("revision-idle-timeout-seconds ({idle}) cannot be greater than revision-timeout-seconds ({})", d.revision_timeout_seconds)),
        (d.container_concurrency_max_limit < 1, "container-concurrency-max-limit", err_out_of_bounds_value(d.container_concurrency_max_limit, 1, i32::MAX, "container-concurrency-max-limit").to_string()),
        (d.container_concurrency < 0 || d.container_concurrency > d.container_concurrency_max_limit, "container-concurrency", err_out_of_bounds_value(d.container_concurrency, 0, d.container_concurrency_max_limit, "container-concurrency").to_string()),
    ];
    if let Some((_, key, message)) = checks.into_iter().find(|(bad, _, _)| *bad) {
        return Err(data.err(key, message));
    }
    // splitlab's own bounds: its queue-proxy model takes containerConcurrency up to 1000 and
    // timeouts up to an hour.
    if d.container_concurrency_max_limit > 1000 {
        return Err(data.err(
            "container-concurrency-max-limit",
            format!(
                "{} is more than splitlab models; allowed: 1 to 1000",
                d.container_concurrency_max_limit
            ),
        ));
    }
    if d.max_revision_timeout_seconds > 3600 {
        return Err(data.err(
            "max-revision-timeout-seconds",
            format!(
                "{} is more than splitlab models; allowed: up to 3600",
                d.max_revision_timeout_seconds
            ),
        ));
    }
    if d.revision_timeout_seconds < 1 {
        return Err(data.err(
            "revision-timeout-seconds",
            format!(
                "{} is not a timeout splitlab can run; allowed: 1 to max-revision-timeout-seconds",
                d.revision_timeout_seconds
            ),
        ));
    }
    warn_leftovers(
        data,
        &[
            "allow-container-concurrency-zero",
            "revision-timeout-seconds",
            "max-revision-timeout-seconds",
            "revision-response-start-timeout-seconds",
            "container-concurrency",
            "container-concurrency-max-limit",
        ],
        &[
            "init-container-name-template",
            "container-name-template",
            "enable-service-links",
            "revision-idle-timeout-seconds",
            "revision-cpu-request",
            "revision-memory-request",
            "revision-ephemeral-storage-request",
            "revision-cpu-limit",
            "revision-memory-limit",
            "revision-ephemeral-storage-limit",
        ],
        c,
    );
    Ok(())
}

/// FT:121-163, 207-220: a flag is Enabled, Allowed or Disabled (any case); any other value
/// is ignored by Knative (the default stays), which splitlab turns into a warning.
fn features(data: &Data, c: &mut ClusterConfig) {
    const KEY: &str = "tag-header-based-routing";
    if let Some(raw) = data.get(KEY) {
        if raw.eq_ignore_ascii_case("enabled") {
            c.tag_header_routing = Some(true);
        } else if raw.eq_ignore_ascii_case("disabled") || raw.eq_ignore_ascii_case("allowed") {
            // Allowed is not Enabled: the ingress adds header routes only when Enabled
            // (route/resources/ingress.go:184).
            c.tag_header_routing = Some(false);
        } else {
            c.warnings.push(format!(
                "{}: config-features {KEY}={raw:?} is not a flag Knative knows (Enabled, Allowed, Disabled); Knative ignores it and keeps Disabled",
                data.file
            ));
            c.tag_header_routing = Some(false);
        }
    }
    const KNOWN: &[&str] = &[
        "autodetect-http2",
        "kubernetes.podspec-persistent-volume-write",
        "multi-container",
        "multi-container-probing",
        "queueproxy.mount-podinfo",
        "queueproxy.resource-defaults",
        "secure-pod-defaults",
        "kubernetes.containerspec-addcapabilities",
        "kubernetes.podspec-affinity",
        "kubernetes.podspec-dnsconfig",
        "kubernetes.podspec-dnspolicy",
        "kubernetes.podspec-emptydir",
        "kubernetes.podspec-fieldref",
        "kubernetes.podspec-hostaliases",
        "kubernetes.podspec-hostipc",
        "kubernetes.podspec-hostnetwork",
        "kubernetes.podspec-hostpid",
        "kubernetes.podspec-hostpath",
        "kubernetes.podspec-volumes-csi",
        "kubernetes.podspec-volumes-ephemeral",
        "kubernetes.podspec-volumes-image",
        "kubernetes.podspec-init-containers",
        "kubernetes.podspec-volumes-mount-propagation",
        "kubernetes.podspec-nodeselector",
        "kubernetes.podspec-persistent-volume-claim",
        "kubernetes.podspec-priorityclassname",
        "kubernetes.podspec-runtimeclassname",
        "kubernetes.podspec-schedulername",
        "kubernetes.podspec-securitycontext",
        "kubernetes.podspec-shareprocessnamespace",
        "kubernetes.podspec-tolerations",
        "kubernetes.podspec-topologyspreadconstraints",
    ];
    warn_leftovers(data, &[KEY], KNOWN, c);
}

/// NW:338-369: `rollout-duration` (legacy `rolloutDuration`, the new key wins), whole seconds.
fn network(data: &Data, c: &mut ClusterConfig) -> Result<(), YamlError> {
    let int = |k: &str| data.parse(k, "", |s| go_int(s, 64));
    let legacy = int("rolloutDuration")?;
    let current = int("rollout-duration")?;
    let (key, secs) = match (current, legacy) {
        (Some(v), _) => ("rollout-duration", Some(v)),
        (None, Some(v)) => ("rolloutDuration", Some(v)),
        (None, None) => ("rollout-duration", None),
    };
    if let Some(v) = secs {
        if v < 0 {
            return Err(data.err(
                key,
                format!("rollout-duration must be a positive integer, but was {v}"),
            ));
        }
    }
    c.rollout_duration_secs = secs;
    warn_leftovers(
        data,
        &["rollout-duration", "rolloutDuration"],
        &[
            "ingress-class",
            "ingress.class",
            "certificate-class",
            "certificate.class",
            "domain-template",
            "domainTemplate",
            "tag-template",
            "tagTemplate",
            "auto-tls",
            "autoTLS",
            "external-domain-tls",
            "http-protocol",
            "httpProtocol",
            "autocreate-cluster-domain-claims",
            "autocreateClusterDomainClaims",
            "enable-mesh-pod-addressability",
            "default-external-scheme",
            "defaultExternalScheme",
            "internal-encryption",
            "system-internal-tls",
            "cluster-local-domain-tls",
            "mesh-compatibility-mode",
            "namespace-wildcard-cert-selector",
        ],
        c,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, data: &[(&str, &str)]) -> String {
        let mut s = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: knative-serving\ndata:\n");
        for (k, v) in data {
            s.push_str(&format!("  {k}: \"{v}\"\n"));
        }
        s
    }

    fn read(text: String) -> Result<ClusterConfig, YamlError> {
        read_configmaps(&[("cm.yaml".to_string(), text)])
    }

    #[test]
    fn reads_the_keys_splitlab_models() {
        let text = [
            cm(
                "config-autoscaler",
                &[
                    ("min-scale", "2"),
                    ("max-scale", "40"),
                    ("stable-window", "2m"),
                    ("container-concurrency-target-percentage", "0.5"),
                    ("max-scale-limit", "100"),
                    ("_example", "ignored: yes"),
                ],
            ),
            cm(
                "config-defaults",
                &[
                    ("revision-timeout-seconds", "120"),
                    ("container-concurrency", "8"),
                ],
            ),
            cm(
                "config-features",
                &[
                    ("tag-header-based-routing", "Enabled"),
                    ("multi-container", "enabled"),
                ],
            ),
            cm(
                "config-network",
                &[
                    ("rollout-duration", "120"),
                    ("ingress-class", "kourier.ingress.networking.knative.dev"),
                ],
            ),
        ]
        .join("---\n");
        let c = read(text).expect("valid");
        assert_eq!(c.autoscaler.min_scale, 2);
        assert_eq!(c.autoscaler.max_scale, 40);
        assert_eq!(c.autoscaler.stable_window, SimDuration::from_secs(120));
        assert_eq!(c.autoscaler.container_concurrency_target_percentage, 50.0);
        assert_eq!(c.autoscaling.max_scale_limit, 100);
        assert_eq!(c.defaults.revision_timeout_seconds, 120);
        // DF:140: the response-start default follows the revision timeout.
        assert_eq!(c.defaults.revision_response_start_timeout_seconds, 120);
        assert_eq!(c.defaults.container_concurrency, 8);
        assert_eq!(c.tag_header_routing, Some(true));
        assert_eq!(c.rollout_duration_secs, Some(120));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[0]
                .contains("config-features keys splitlab does not model, ignored: multi-container"),
            "{:?}",
            c.warnings
        );
        assert!(c.warnings[1].contains("ingress-class"), "{:?}", c.warnings);
    }

    #[test]
    fn knative_messages_with_positions() {
        // (ConfigMap, data, line of the bad value, path, message)
        type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], u32, &'a str, &'a str);
        let table: &[Row] = &[
            // PP AsFunc wrapped by AC:100
            ("config-autoscaler", &[("min-scale", "two")], 7, "data.min-scale", "config-autoscaler: failed to parse data: failed to parse \"min-scale\": strconv.ParseInt: parsing \"two\": invalid syntax"),
            ("config-autoscaler", &[("enable-scale-to-zero", "yes")], 7, "data.enable-scale-to-zero", "failed to parse \"enable-scale-to-zero\": strconv.ParseBool: parsing \"yes\": invalid syntax"),
            ("config-autoscaler", &[("stable-window", "60")], 7, "data.stable-window", "failed to parse \"stable-window\": time: missing unit in duration \"60\""),
            // AC:115-117
            ("config-autoscaler", &[("scale-to-zero-grace-period", "0s")], 7, "data.scale-to-zero-grace-period", "scale-to-zero-grace-period must be positive, was: 0s"),
            // AC:131-133
            ("config-autoscaler", &[("target-burst-capacity", "-2")], 7, "data.target-burst-capacity", "target-burst-capacity must be either non-negative or -1 (for unlimited), was: -2.000000"),
            // AC:151-153
            ("config-autoscaler", &[("max-scale-up-rate", "1")], 7, "data.max-scale-up-rate", "max-scale-up-rate = 1, must be greater than 1.0"),
            // AC:161-164
            ("config-autoscaler", &[("stable-window", "5s")], 7, "data.stable-window", "stable-window = 5s, must be in [6s; 1h0m0s] range"),
            // AC:171-175
            ("config-autoscaler", &[("panic-window-percentage", "101")], 7, "data.panic-window-percentage", "panic-window-percentage = 101, must be in [1, 100] interval"),
            // AC:177-179
            ("config-autoscaler", &[("initial-scale", "0")], 7, "data.initial-scale", "initial-scale = 0, must be at least 0 (or at least 1 when allow-zero-initial-scale is false)"),
            // AC:191-194 max-scale above the limit
            ("config-autoscaler", &[("max-scale", "50"), ("max-scale-limit", "40")], 7, "data.max-scale", "max-scale = 50, must be in [1, max-scale-limit(40)] range"),
            // AC:200-202
            ("config-autoscaler", &[("min-scale", "5"), ("max-scale", "2")], 7, "data.min-scale", "min-scale (5) must be less than max-scale (2)"),
            // DF:148-150
            ("config-defaults", &[("revision-timeout-seconds", "900")], 7, "data.revision-timeout-seconds", "config-defaults: revision-timeout-seconds (900) cannot be greater than max-revision-timeout-seconds (600)"),
            // DF:151-153
            ("config-defaults", &[("revision-response-start-timeout-seconds", "400")], 7, "data.revision-response-start-timeout-seconds", "revision-response-start-timeout-seconds (400) cannot be greater than revision-timeout-seconds (300)"),
            // DF:161-164
            ("config-defaults", &[("container-concurrency", "2000")], 7, "data.container-concurrency", "expected 0 <= 2000 <= 1000: container-concurrency"),
            // NW:367-369
            ("config-network", &[("rollout-duration", "-5")], 7, "data.rollout-duration", "rollout-duration must be a positive integer, but was -5"),
            // PP: AsInt
            ("config-network", &[("rollout-duration", "380s")], 7, "data.rollout-duration", "failed to parse \"rollout-duration\": strconv.ParseInt: parsing \"380s\": invalid syntax"),
        ];
        for (name, data, line, path, message) in table {
            let err = read(cm(name, data)).expect_err(message);
            assert_eq!(err.pos.map(|p| p.line), Some(*line), "{err}");
            assert_eq!(err.path, *path, "{err}");
            assert!(err.message.contains(message), "{err}");
        }
    }

    #[test]
    fn other_configmaps_and_kinds() {
        let c = read(cm("config-domain", &[("example.com", "")])).expect("a warning");
        assert!(c.warnings[0].contains("\"config-domain\" is not one splitlab reads"));
        let err = read("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n".to_string())
            .expect_err("kind");
        assert!(err.message.contains("allowed: \"ConfigMap\""), "{err}");
        let twice = format!(
            "{}---\n{}",
            cm("config-network", &[]),
            cm("config-network", &[])
        );
        let err = read(twice).expect_err("twice");
        assert!(err.message.contains("given twice"), "{err}");
        // Knative ignores an unknown flag value; splitlab says so.
        let c = read(cm("config-features", &[("tag-header-based-routing", "on")])).expect("valid");
        assert_eq!(c.tag_header_routing, Some(false));
        assert!(c.warnings[0].contains("keeps Disabled"), "{:?}", c.warnings);
    }
}
