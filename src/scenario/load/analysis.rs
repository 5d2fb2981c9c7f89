//! The scenario's `analysis:` block (issue 13 §1): Flagger's canary analysis written inline
//! with Flagger's own field names, or read from a `flagger.app/v1beta1` Canary manifest, and
//! its conversion into `AnalysisRun` (`model::flagger::AnalysisSettings` plus when the job
//! starts and what each webhook answers).
//!
//! ```yaml
//! analysis:
//!   start: 30s                        # the job's first tick (default 0s)
//!   canary:                           # Flagger's spec.analysis, camelCase as in the CRD
//!     interval: 1m
//!     threshold: 5
//!     maxWeight: 50
//!     stepWeight: 10
//!     metrics:
//!       - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
//!       - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}
//!     webhooks:
//!       # fail_between (splitlab): from `from` until `to` the hook reports a failure: a
//!       # confirm-* gate stays closed, a pre-rollout/rollout hook fails the check, a rollback
//!       # hook asks for the rollback. Outside it the hook passes (a rollback hook stays quiet).
//!       - {name: gate, type: confirm-promotion, fail_between: [0s, 5m]}
//! # or
//! analysis:
//!   start: 0s
//!   flagger: canary.yaml              # a Canary with spec.provider: knative, relative to
//!                                     # the scenario; reads spec.analysis, skipAnalysis, suspend
//! ```
//!
//! `url`, `timeout`, `metadata`, `muteAlert` and `retries` of a webhook are accepted and
//! ignored (splitlab answers for the hook). Must not: know about the simulator.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::tree::{self, Origin};
use super::{Cx, ScenarioError};
use crate::model::flagger::{
    AnalysisError, AnalysisSettings, AnalysisSpec, MetricSpec, Webhook, WebhookType,
};
use crate::model::time::{SimDuration, SimTime};
use crate::scenario::spec::AnalysisRun;
use crate::scenario::yaml;

/// `analysis:`: exactly one of `canary` and `flagger`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisFile {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub canary: Option<CanaryAnalysisFile>,
    #[serde(default)]
    pub flagger: Option<String>,
}

/// Flagger's `spec.analysis` (`crd.yaml:976-1201`), the keys this model reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryAnalysisFile {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub threshold: Option<i64>,
    #[serde(default)]
    pub max_weight: Option<i64>,
    #[serde(default)]
    pub step_weight: Option<i64>,
    #[serde(default)]
    pub step_weights: Option<Vec<i64>>,
    #[serde(default)]
    pub step_weight_promotion: Option<i64>,
    #[serde(default)]
    pub iterations: Option<i64>,
    #[serde(default)]
    pub metrics: Vec<MetricFile>,
    #[serde(default)]
    pub webhooks: Vec<WebhookFile>,
    /// Flagger keys the model does not read: accepted, each with a warning
    /// (`UNMODELLED_KEYS`); any other unknown key is still refused.
    #[serde(default)]
    pub alerts: Option<IgnoredAny>,
    #[serde(default)]
    pub primary_ready_threshold: Option<IgnoredAny>,
    #[serde(default)]
    pub canary_ready_threshold: Option<IgnoredAny>,
    #[serde(default, rename = "match")]
    pub match_conditions: Option<IgnoredAny>,
    #[serde(default)]
    pub session_affinity: Option<IgnoredAny>,
    #[serde(default)]
    pub mirror: Option<IgnoredAny>,
    #[serde(default)]
    pub mirror_weight: Option<IgnoredAny>,
}

impl CanaryAnalysisFile {
    /// The Flagger keys present that the model does not read, by their names in the file.
    fn unmodelled_keys(&self) -> Vec<&'static str> {
        [
            ("alerts", self.alerts.is_some()),
            (
                "primaryReadyThreshold",
                self.primary_ready_threshold.is_some(),
            ),
            (
                "canaryReadyThreshold",
                self.canary_ready_threshold.is_some(),
            ),
            ("match", self.match_conditions.is_some()),
            ("sessionAffinity", self.session_affinity.is_some()),
            ("mirror", self.mirror.is_some()),
            ("mirrorWeight", self.mirror_weight.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect()
    }
}

/// `analysis.metrics[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricFile {
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub threshold_range: Option<ThresholdRangeFile>,
    #[serde(default)]
    pub threshold: Option<f64>,
}

/// `thresholdRange: {min, max}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRangeFile {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// `analysis.webhooks[]`: Flagger's keys plus splitlab's `fail_between`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookFile {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, rename = "fail_between")]
    pub fail_between: Option<Vec<String>>,
    #[serde(default)]
    pub url: Option<IgnoredAny>,
    #[serde(default)]
    pub timeout: Option<IgnoredAny>,
    #[serde(default)]
    pub metadata: Option<IgnoredAny>,
    #[serde(default)]
    pub mute_alert: Option<IgnoredAny>,
    #[serde(default)]
    pub retries: Option<IgnoredAny>,
}

/// A Canary manifest: only what the Knative scheduler reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CanaryManifest {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    spec: CanaryManifestSpec,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CanaryManifestSpec {
    #[serde(default)]
    provider: Option<String>,
    analysis: CanaryAnalysisFile,
    #[serde(default)]
    skip_analysis: bool,
    #[serde(default)]
    suspend: bool,
}

/// The allowed webhook types (`crd.yaml:1157-1201`).
const WEBHOOK_TYPES: &str =
    "confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event";

fn webhook_type(raw: &str) -> Option<WebhookType> {
    Some(match raw {
        "confirm-rollout" => WebhookType::ConfirmRollout,
        "pre-rollout" => WebhookType::PreRollout,
        "rollout" | "" => WebhookType::Rollout,
        "confirm-traffic-increase" => WebhookType::ConfirmTrafficIncrease,
        "confirm-promotion" => WebhookType::ConfirmPromotion,
        "post-rollout" => WebhookType::PostRollout,
        "rollback" => WebhookType::Rollback,
        "event" => WebhookType::Event,
        _ => return None,
    })
}

/// Where an error about the analysis goes: the scenario (through `Cx`), or the Canary file.
enum Place<'a> {
    Scenario,
    Manifest {
        display: String,
        doc: tree::Node,
        prefix: &'a str,
    },
}

impl Place<'_> {
    /// `path` is relative to the analysis block (`interval`, `metrics[1].name`).
    fn err(&self, cx: &Cx<'_>, base: &str, path: &str, message: String) -> ScenarioError {
        let full = if path.is_empty() {
            base.to_string()
        } else {
            format!("{base}.{path}")
        };
        match self {
            Place::Scenario => cx.err(&full, message),
            Place::Manifest {
                display,
                doc,
                prefix,
            } => {
                let kpath = if path.is_empty() {
                    prefix.to_string()
                } else {
                    format!("{prefix}.{path}")
                };
                let pos = tree::parse_path(&kpath)
                    .ok()
                    .map(|segs| doc.locate(&segs).pos);
                ScenarioError::in_file(display, pos, &kpath, message)
            }
        }
    }
}

/// The validated `analysis:` block.
/// The validated analysis, and a warning for each Flagger key it accepted without modelling it
/// (alerts, readiness thresholds, A/B `match`, session affinity, mirroring).
pub(super) fn analysis_run(
    cx: &Cx<'_>,
    f: &AnalysisFile,
) -> Result<(AnalysisRun, Vec<String>), ScenarioError> {
    let start = match &f.start {
        Some(text) => {
            SimTime::ZERO
                + cx.duration_within(
                    "analysis.start",
                    text,
                    SimDuration::ZERO,
                    SimDuration::from_secs(365 * 24 * 3600),
                )?
        }
        None => SimTime::ZERO,
    };
    let (canary, skip_analysis, suspend, place, base, shown) = match (&f.canary, &f.flagger) {
        (Some(c), None) => (
            c.clone(),
            false,
            false,
            Place::Scenario,
            "analysis.canary",
            "analysis.canary".to_string(),
        ),
        (None, Some(rel)) => {
            let text = cx.read("analysis.flagger", rel)?;
            let display = cx.display_name(rel);
            let manifest: CanaryManifest = yaml::from_str(&display, &text)?;
            let doc = tree::parse(&text, Origin::File)
                .map_err(|e| ScenarioError::in_file(&display, e.pos, "", e.message))?;
            let at = |path: &str, message: String| {
                let pos = tree::parse_path(path).ok().map(|s| doc.locate(&s).pos);
                ScenarioError::in_file(&display, pos, path, message)
            };
            if manifest.api_version != "flagger.app/v1beta1" || manifest.kind != "Canary" {
                return Err(at(
                    "kind",
                    format!(
                        "{} {:?} is not a Canary; allowed: apiVersion flagger.app/v1beta1, kind Canary",
                        manifest.api_version, manifest.kind
                    ),
                ));
            }
            let provider = manifest.spec.provider.clone().unwrap_or_default();
            if provider != "knative" {
                return Err(at(
                    "spec.provider",
                    format!(
                        "provider {provider:?} is not modelled; allowed: knative (splitlab simulates Flagger on a Knative Service only)"
                    ),
                ));
            }
            let s = manifest.spec;
            let shown = format!("{display}: spec.analysis");
            (
                s.analysis,
                s.skip_analysis,
                s.suspend,
                Place::Manifest {
                    display,
                    doc,
                    prefix: "spec.analysis",
                },
                "analysis.flagger",
                shown,
            )
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(cx.err(
                "analysis",
                "an analysis needs exactly one of canary and flagger; allowed: canary: {interval, threshold, ...} (Flagger's spec.analysis) or flagger: FILE (a Canary manifest)",
            ))
        }
    };
    let mut webhooks = Vec::with_capacity(canary.webhooks.len());
    let mut webhook_failures = Vec::with_capacity(canary.webhooks.len());
    for (i, w) in canary.webhooks.iter().enumerate() {
        let raw = w.kind.as_deref().unwrap_or("");
        let Some(kind) = webhook_type(raw) else {
            return Err(place.err(
                cx,
                base,
                &format!("webhooks[{i}].type"),
                format!("{raw:?} is not a webhook type; allowed: {WEBHOOK_TYPES}"),
            ));
        };
        webhooks.push(Webhook {
            name: w.name.clone(),
            kind,
        });
        let window = match w.fail_between.as_deref() {
            None => None,
            Some([from, to]) => {
                let path = format!("webhooks[{i}].fail_between");
                let parse = |j: usize, text: &str| {
                    crate::routing::duration::parse_duration(text)
                        .map(SimDuration)
                        .ok()
                        .filter(|d| *d >= SimDuration::ZERO)
                        .ok_or_else(|| {
                            place.err(
                                cx,
                                base,
                                &format!("{path}[{j}]"),
                                format!("{text:?} is not allowed; allowed: a Go duration >= 0s such as 90s or 5m"),
                            )
                        })
                };
                let (from, to) = (parse(0, from)?, parse(1, to)?);
                if to < from {
                    return Err(place.err(
                        cx,
                        base,
                        &path,
                        format!("[{from}, {to}] ends before it starts; allowed: [from, to] with from <= to"),
                    ));
                }
                Some((SimTime::ZERO + from, SimTime::ZERO + to))
            }
            Some(other) => {
                return Err(place.err(
                    cx,
                    base,
                    &format!("webhooks[{i}].fail_between"),
                    format!(
                        "{} values; allowed: [from, to], two durations from the run's start",
                        other.len()
                    ),
                ))
            }
        };
        webhook_failures.push(window);
    }
    let spec = AnalysisSpec {
        interval: canary.interval.clone().unwrap_or_default(),
        threshold: canary.threshold,
        max_weight: canary.max_weight,
        step_weight: canary.step_weight,
        step_weights: canary.step_weights.clone(),
        step_weight_promotion: canary.step_weight_promotion,
        iterations: canary.iterations,
        metrics: canary
            .metrics
            .iter()
            .map(|m| MetricSpec {
                name: m.name.clone(),
                interval: m.interval.clone().unwrap_or_default(),
                min: m.threshold_range.as_ref().and_then(|r| r.min),
                max: m.threshold_range.as_ref().and_then(|r| r.max),
                threshold: m.threshold.unwrap_or(0.0),
            })
            .collect(),
        webhooks,
        skip_analysis,
        suspend,
    };
    let settings = AnalysisSettings::from_spec(&spec).map_err(|e| {
        let path = match &e {
            AnalysisError::IntervalPattern(_) => "interval".to_string(),
            AnalysisError::MetricIntervalPattern { index, .. } => {
                format!("metrics[{index}].interval")
            }
            AnalysisError::UnknownMetric { index, .. } => format!("metrics[{index}].name"),
            AnalysisError::Iterations => "iterations".to_string(),
            AnalysisError::MissingThreshold | AnalysisError::OneOf(_) => String::new(),
        };
        let allowed = match &e {
            AnalysisError::IntervalPattern(_) | AnalysisError::MetricIntervalPattern { .. } => {
                "; allowed: whole seconds or minutes such as 30s or 1m"
            }
            AnalysisError::MissingThreshold => {
                "; allowed: threshold: N (failed checks before rollback)"
            }
            AnalysisError::OneOf(_) => "; allowed: stepWeight: N or stepWeights: [..]",
            AnalysisError::Iterations => "; allowed: stepWeight or stepWeights (a canary release)",
            AnalysisError::UnknownMetric { .. } => "",
        };
        place.err(cx, base, &path, format!("{e}{allowed}"))
    })?;
    let warnings = canary
        .unmodelled_keys()
        .into_iter()
        .map(|k| format!("{shown}.{k} ignored: not modelled"))
        .collect();
    Ok((
        AnalysisRun {
            start,
            settings,
            webhook_failures,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use crate::model::flagger::{BuiltinMetric, WebhookType};
    use crate::model::time::{SimDuration, SimTime};
    use crate::scenario::load::load_scenario;
    use crate::scenario::yaml::SourcePos;

    /// A one-revision scenario whose `analysis:` block starts on line 10.
    fn text(analysis: &str) -> String {
        format!(
            "name: a\nduration: 60s\nservice:\n  name: hello\nrevisions:\n  - name: v1\n    service_time: {{constant: 10ms}}\n\
             arrivals:\n  poisson: {{rate: 10}}\nanalysis:\n{analysis}"
        )
    }

    const INLINE: &str = "  start: 30s\n  canary:\n    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 10\n    metrics:\n      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}\n      - {name: request-duration, thresholdRange: {max: 500}, interval: 30s}\n    webhooks:\n      - {name: gate, type: confirm-promotion, fail_between: [0s, 5m]}\n      - {name: rb, type: rollback, fail_between: [2m, 3m]}\n";

    const CANARY: &str = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: hello\nspec:\n  provider: knative\n  targetRef:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n    name: hello\n  analysis:\n    interval: 1m\n    threshold: 5\n    maxWeight: 50\n    stepWeight: 10\n    metrics:\n      - name: request-success-rate\n        thresholdRange: {min: 99}\n        interval: 1m\n      - name: request-duration\n        thresholdRange: {max: 500}\n        interval: 30s\n    webhooks:\n      - name: gate\n        type: confirm-promotion\n        url: http://flagger-loadtester.test/gate/check\n        fail_between: [0s, 5m]\n      - {name: rb, type: rollback, fail_between: [2m, 3m]}\n";

    fn load(
        text: &str,
        sets: &[(&str, &str)],
        canary: &str,
    ) -> Result<crate::scenario::Scenario, super::ScenarioError> {
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        let canary = canary.to_string();
        load_scenario("a.yaml", text, &sets, &move |p| {
            if p == "canary.yaml" {
                Ok(canary.clone())
            } else {
                Err(format!("{p}: no such file"))
            }
        })
    }

    #[test]
    fn an_inline_block_becomes_flaggers_settings_and_a_hook_schedule() {
        let s = load(&text(INLINE), &[], "").expect("valid");
        let a = s.analysis.expect("an analysis");
        assert_eq!(a.start, SimTime::ZERO + SimDuration::from_secs(30));
        assert_eq!(a.settings.interval, SimDuration::from_secs(60));
        assert_eq!((a.settings.threshold, a.settings.max_weight()), (5, 50));
        assert_eq!(a.settings.step_weight, 10);
        assert_eq!(a.settings.metrics[0].metric, BuiltinMetric::SuccessRate);
        assert_eq!(a.settings.metrics[1].window, SimDuration::from_secs(30));
        assert_eq!(a.settings.webhooks[1].kind, WebhookType::Rollback);
        let at = |s| SimTime::ZERO + SimDuration::from_secs(s);
        // The gate is closed until 5m; the rollback hook asks only within [2m, 3m).
        assert_eq!(a.webhook_results(at(0)), vec![false, false]);
        assert_eq!(a.webhook_results(at(150)), vec![false, true]);
        assert_eq!(a.webhook_results(at(180)), vec![false, false]);
        assert_eq!(a.webhook_results(at(300)), vec![true, false]);
    }

    #[test]
    fn unmodelled_flagger_keys_are_warnings_and_typos_errors() {
        let extra = "    alerts:\n      - {name: slack, severity: error}\n    primaryReadyThreshold: 100\n    canaryReadyThreshold: 100\n    match:\n      - headers: {x-canary: {exact: insider}}\n    sessionAffinity: {cookieName: flagger-cookie}\n    mirror: false\n    mirrorWeight: 10\n";
        let manifest = CANARY.replace("    webhooks:\n", &format!("{extra}    webhooks:\n"));
        let plain =
            load(&text("  start: 30s\n  flagger: canary.yaml\n"), &[], CANARY).expect("valid");
        let s = load(
            &text("  start: 30s\n  flagger: canary.yaml\n"),
            &[],
            &manifest,
        )
        .expect("unmodelled keys are accepted");
        // The same analysis as without them, and one warning each, in the CRD's order.
        assert_eq!(s.analysis, plain.analysis);
        let keys = [
            "alerts",
            "primaryReadyThreshold",
            "canaryReadyThreshold",
            "match",
            "sessionAffinity",
            "mirror",
            "mirrorWeight",
        ];
        let warned: Vec<&String> = s
            .warnings
            .iter()
            .filter(|w| w.ends_with("ignored: not modelled"))
            .collect();
        assert_eq!(warned.len(), keys.len(), "{:?}", s.warnings);
        for (w, k) in warned.iter().zip(keys) {
            assert_eq!(
                w.as_str(),
                format!("canary.yaml: spec.analysis.{k} ignored: not modelled")
            );
        }
        // The inline block warns the same way, under its own path.
        let inline = INLINE.replace("    webhooks:\n", "    alerts: []\n    webhooks:\n");
        let s = load(&text(&inline), &[], "").expect("valid");
        assert!(
            s.warnings
                .contains(&"analysis.canary.alerts ignored: not modelled".to_string()),
            "{:?}",
            s.warnings
        );
        // A typo is still an error naming the key.
        let typo = CANARY.replace("    webhooks:\n", "    stepWieght: 5\n    webhooks:\n");
        let err = load(&text("  start: 30s\n  flagger: canary.yaml\n"), &[], &typo)
            .expect_err("an unknown key")
            .to_string();
        assert!(err.contains("stepWieght"), "{err}");
    }

    #[test]
    fn a_canary_manifest_reads_the_same_as_the_inline_block() {
        let inline = load(&text(INLINE), &[], "").expect("valid");
        let file =
            load(&text("  start: 30s\n  flagger: canary.yaml\n"), &[], CANARY).expect("valid");
        assert_eq!(inline.analysis, file.analysis);
        // spec.skipAnalysis and spec.suspend are read.
        let skip = CANARY.replace(
            "  provider: knative\n",
            "  provider: knative\n  skipAnalysis: true\n  suspend: true\n",
        );
        let file = load(&text("  flagger: canary.yaml\n"), &[], &skip).expect("valid");
        let settings = file.analysis.expect("an analysis").settings;
        assert!(settings.skip_analysis && settings.suspend);
    }

    #[test]
    fn set_overrides_reach_flaggers_fields() {
        let s = load(&text(INLINE), &[("analysis.canary.stepWeight", "20")], "").expect("valid");
        assert_eq!(s.analysis.expect("an analysis").settings.step_weight, 20);
        let e = load(&text(INLINE), &[("analysis.canary.interval", "1h")], "").expect_err("1h");
        assert_eq!(e.set.as_deref(), Some("analysis.canary.interval=1h"));
        assert!(e.message.contains("does not match the pattern"), "{e}");
    }

    #[test]
    fn bad_analysis_settings_name_place_path_and_what_is_allowed() {
        let pos = |line, column| Some(SourcePos { line, column });
        // (analysis block, Canary file, file, position, path, message fragment)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Option<SourcePos>,
            &'a str,
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            // Flagger's CRD pattern for the interval.
            (
                "  canary: {interval: 1h, threshold: 1, stepWeight: 10}\n",
                "",
                "a.yaml",
                pos(11, 22),
                "analysis.canary.interval",
                "\"1h\" does not match the pattern ^[0-9]+(m|s); allowed: whole seconds",
            ),
            // The oneOf of the CRD.
            (
                "  canary: {threshold: 1, stepWeight: 10, stepWeights: [10, 20]}\n",
                "",
                "a.yaml",
                pos(11, 11),
                "analysis.canary",
                "exactly one of iterations, stepWeight and stepWeights (found 2)",
            ),
            (
                "  canary: {stepWeight: 10}\n",
                "",
                "a.yaml",
                pos(11, 11),
                "analysis.canary",
                "analysis.threshold is required",
            ),
            (
                "  canary:\n    threshold: 1\n    stepWeight: 5\n    metrics: [{name: error-rate}]\n",
                "",
                "a.yaml",
                pos(14, 22),
                "analysis.canary.metrics[0].name",
                "is not a built-in metric",
            ),
            (
                "  canary:\n    threshold: 1\n    stepWeight: 5\n    webhooks: [{name: g, type: gate}]\n",
                "",
                "a.yaml",
                pos(14, 32),
                "analysis.canary.webhooks[0].type",
                "\"gate\" is not a webhook type; allowed: confirm-rollout",
            ),
            (
                "  canary:\n    threshold: 1\n    stepWeight: 5\n    webhooks: [{name: g, type: rollout, fail_between: [2m, 1m]}]\n",
                "",
                "a.yaml",
                pos(14, 55),
                "analysis.canary.webhooks[0].fail_between",
                "ends before it starts",
            ),
            // Flagger's names are camelCase; unknown keys are refused.
            (
                "  canary: {threshold: 1, step_weight: 5}\n",
                "",
                "a.yaml",
                pos(11, 26),
                "analysis.canary.step_weight",
                "unknown field `step_weight`",
            ),
            (
                "  canary: {threshold: 1, stepWeight: 5}\n  flagger: canary.yaml\n",
                "",
                "a.yaml",
                pos(11, 3),
                "analysis",
                "exactly one of canary and flagger",
            ),
            // A Canary for another provider is refused, pointing into the Canary file.
            (
                "  flagger: canary.yaml\n",
                "provider: istio",
                "canary.yaml",
                pos(6, 13),
                "spec.provider",
                "provider \"istio\" is not modelled; allowed: knative",
            ),
            (
                "  flagger: canary.yaml\n",
                "interval: 1h",
                "canary.yaml",
                pos(12, 15),
                "spec.analysis.interval",
                "does not match the pattern",
            ),
            (
                "  flagger: missing.yaml\n",
                "",
                "a.yaml",
                pos(11, 12),
                "analysis.flagger",
                "cannot read missing.yaml",
            ),
        ];
        for (block, canary_edit, file, at, path, fragment) in cases {
            let canary = match canary_edit.split_once(": ") {
                Some(("provider", v)) => {
                    CANARY.replace("provider: knative", &format!("provider: {v}"))
                }
                Some(("interval", v)) => CANARY.replace(
                    "interval: 1m\n    threshold",
                    &format!("interval: {v}\n    threshold"),
                ),
                _ => CANARY.to_string(),
            };
            let e = load(&text(block), &[], &canary).expect_err(block);
            assert_eq!(e.file, *file, "{block}: {e}");
            assert_eq!(e.path, *path, "{block}: {e}");
            assert!(e.message.contains(fragment), "{block}: {}", e.message);
            assert_eq!(e.pos, *at, "{block}: {e}");
        }
    }
}
