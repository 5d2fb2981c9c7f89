//! Flagger's canary analysis on a Knative Service, as a pure state machine.
//!
//! Owns: the validated analysis settings (`AnalysisSettings`, Flagger's field names and
//! defaults), and `FlaggerController`, which replays one `advanceCanary` tick of fluxcd/flagger
//! v1.44.0 (`pkg/controller/scheduler.go:158-506`) per call to `tick(now, observation)`, with the
//! Knative provider's controller and router (`pkg/canary/knative_controller.go`,
//! `pkg/router/knative.go`). Spec: `docs/knative/flagger.md` §1-§4, §7; test vectors §8.
//!
//! Must not: read a clock, schedule anything, draw random numbers, or measure metrics. The
//! caller ticks it every `AnalysisSettings::interval` (first tick at the job's start), measures
//! the canary revision's requests over each metric's `window` and reports webhook results in the
//! `Observation`, and applies `TickOutcome::write` (the Service's new `spec.traffic`) through the
//! routing core. No panics on any input: weights are `i64` with saturating arithmetic.
//!
//! Modelling of Knative (spec §2, §7): the Service's `spec.traffic` is the two entries Flagger
//! writes, `[{latestRevision: true, canary%}, {revisionName: <annotation>, primary%}]`; Knative
//! rejects a write whose percents do not sum to 100; `status.traffic` follows `spec.traffic`
//! instantly (no route lag), with `latestRevision` resolved to the latest *ready* revision. So
//! `GetRoutes` reads back the duplicate-revision first match (`(0, 0)` in steady state) exactly
//! as the spec's vectors do.
//!
//! Invariants: every accepted write sums to 100 with both percents in [0, 100]; the failed-check
//! counter only grows within one analysis and is reset only where Flagger's `SyncStatus` resets
//! it (Initialized, analysis start, restart, rollback).

use std::collections::BTreeMap;
use std::fmt;

use crate::model::time::{SimDuration, SimTime};
use crate::routing::TrafficTarget;

/// `totalWeight` is always 100 (`scheduler.go:53-56`).
const TOTAL_WEIGHT: i64 = 100;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// The Canary's `spec.analysis` as written (Flagger's field names, CRD presence kept as
/// `Option`), plus the two `spec` switches the scheduler reads. Validated into
/// `AnalysisSettings` by `AnalysisSettings::from_spec`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalysisSpec {
    /// `analysis.interval`, a Go duration string ("1m", "30s").
    pub interval: String,
    /// `analysis.threshold`.
    pub threshold: Option<i64>,
    /// `analysis.maxWeight`.
    pub max_weight: Option<i64>,
    /// `analysis.stepWeight`.
    pub step_weight: Option<i64>,
    /// `analysis.stepWeights`.
    pub step_weights: Option<Vec<i64>>,
    /// `analysis.stepWeightPromotion`.
    pub step_weight_promotion: Option<i64>,
    /// `analysis.iterations`.
    pub iterations: Option<i64>,
    /// `analysis.metrics`.
    pub metrics: Vec<MetricSpec>,
    /// `analysis.webhooks`.
    pub webhooks: Vec<Webhook>,
    /// `spec.skipAnalysis`.
    pub skip_analysis: bool,
    /// `spec.suspend`.
    pub suspend: bool,
}

/// One entry of `analysis.metrics` as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSpec {
    /// `name`: `request-success-rate` or `request-duration`.
    pub name: String,
    /// `interval`: the PromQL range window; "" means Flagger's default "1m".
    pub interval: String,
    /// `thresholdRange.min`.
    pub min: Option<f64>,
    /// `thresholdRange.max`.
    pub max: Option<f64>,
    /// Deprecated `threshold`, used only when `thresholdRange` is absent.
    pub threshold: f64,
}

/// The two built-in Knative metrics (`pkg/metrics/observers/knative.go:29-59`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinMetric {
    /// `request-success-rate`: non-5xx / all × 100 over the window.
    SuccessRate,
    /// `request-duration`: p99 of the Envoy histogram over the window, in ms.
    Duration,
}

impl BuiltinMetric {
    pub fn name(self) -> &'static str {
        match self {
            BuiltinMetric::SuccessRate => "request-success-rate",
            BuiltinMetric::Duration => "request-duration",
        }
    }
}

/// `thresholdRange`: an inclusive acceptance band (checks use strict `<` / `>`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThresholdRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A validated metric check.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricCheck {
    pub metric: BuiltinMetric,
    /// The window `[{{ interval }}]` the caller measures over (default 1m,
    /// `canary.go:36, 678-681`, applied at `scheduler_metrics.go:143-146`).
    pub window: SimDuration,
    /// `Some` when `thresholdRange` was given; then `threshold` is ignored.
    pub range: Option<ThresholdRange>,
    /// Deprecated `threshold` (0 when absent).
    pub threshold: f64,
}

/// Webhook types (`crd.yaml:1157-1201`; semantics `scheduler_hooks.go`, spec §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookType {
    ConfirmRollout,
    PreRollout,
    /// `rollout` or the empty type.
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

/// One webhook, a gate whose result the caller reports each tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub name: String,
    pub kind: WebhookType,
}

/// Validated analysis settings: Flagger's defaults applied, the CRD's validation enforced.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisSettings {
    /// The ticker period (`GetAnalysisInterval`, `canary.go:636-652`).
    pub interval: SimDuration,
    /// `GetAnalysisThreshold`: `<= 0` becomes 1 (`canary.go:654-660`).
    pub threshold: i64,
    /// `analysis.maxWeight` as written (0 when absent); see `max_weight()`.
    pub max_weight: i64,
    /// `analysis.stepWeight` (0 when absent).
    pub step_weight: i64,
    /// `analysis.stepWeights` (empty when absent).
    pub step_weights: Vec<i64>,
    /// `analysis.stepWeightPromotion` (0 = shift all traffic at once).
    pub step_weight_promotion: i64,
    pub metrics: Vec<MetricCheck>,
    pub webhooks: Vec<Webhook>,
    pub skip_analysis: bool,
    pub suspend: bool,
}

/// Why an `AnalysisSpec` is not a valid Knative canary analysis.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    #[error("analysis.interval {0:?} does not match the pattern ^[0-9]+(m|s)")]
    IntervalPattern(String),
    #[error(
        "analysis.metrics[{index}].interval {value:?} does not match the pattern ^[0-9]+(m|s)"
    )]
    MetricIntervalPattern { index: usize, value: String },
    #[error("analysis.threshold is required")]
    MissingThreshold,
    #[error("analysis must set exactly one of iterations, stepWeight and stepWeights (found {0})")]
    OneOf(usize),
    #[error("analysis.iterations selects blue/green or a/b testing, which this model does not cover on knative")]
    Iterations,
    #[error("analysis.metrics[{index}].name {name:?} is not a built-in metric (request-success-rate, request-duration)")]
    UnknownMetric { index: usize, name: String },
}

impl AnalysisSettings {
    /// Applies Flagger's defaults and the CRD's validation (`crd.yaml:976-1201`).
    pub fn from_spec(spec: &AnalysisSpec) -> Result<Self, AnalysisError> {
        if !matches_crd_duration(&spec.interval) {
            return Err(AnalysisError::IntervalPattern(spec.interval.clone()));
        }
        let threshold = spec.threshold.ok_or(AnalysisError::MissingThreshold)?;
        // oneOf {interval, threshold, X} for X in iterations, stepWeight, stepWeights
        // (crd.yaml:976-979): exactly one branch may be satisfied.
        let branches = [
            spec.iterations.is_some(),
            spec.step_weight.is_some(),
            spec.step_weights.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if branches != 1 {
            return Err(AnalysisError::OneOf(branches));
        }
        if spec.iterations.unwrap_or(0) > 0 {
            return Err(AnalysisError::Iterations);
        }
        let mut metrics = Vec::with_capacity(spec.metrics.len());
        for (index, m) in spec.metrics.iter().enumerate() {
            let metric = match m.name.as_str() {
                "request-success-rate" => BuiltinMetric::SuccessRate,
                "request-duration" => BuiltinMetric::Duration,
                _ => {
                    return Err(AnalysisError::UnknownMetric {
                        index,
                        name: m.name.clone(),
                    })
                }
            };
            let window = if m.interval.is_empty() {
                SimDuration::from_secs(60)
            } else if !matches_crd_duration(&m.interval) {
                return Err(AnalysisError::MetricIntervalPattern {
                    index,
                    value: m.interval.clone(),
                });
            } else {
                // The pattern admits strings Go cannot parse ("1mx"); Prometheus would then
                // reject the query, which is a failed check each tick. Falling back to 1m is
                // the closest well-formed reading.
                parse_go_duration(&m.interval).unwrap_or(SimDuration::from_secs(60))
            };
            let range = if m.min.is_some() || m.max.is_some() {
                Some(ThresholdRange {
                    min: m.min,
                    max: m.max,
                })
            } else {
                None
            };
            metrics.push(MetricCheck {
                metric,
                window,
                range,
                threshold: m.threshold,
            });
        }
        Ok(AnalysisSettings {
            interval: analysis_interval(&spec.interval),
            threshold: if threshold > 0 { threshold } else { 1 },
            max_weight: spec.max_weight.unwrap_or(0),
            step_weight: spec.step_weight.unwrap_or(0),
            step_weights: spec.step_weights.clone().unwrap_or_default(),
            step_weight_promotion: spec.step_weight_promotion.unwrap_or(0),
            metrics,
            webhooks: spec.webhooks.clone(),
            skip_analysis: spec.skip_analysis,
            suspend: spec.suspend,
        })
    }

    /// `maxWeight()` (`scheduler.go:41-51`): `min(100, last stepWeight)` when `stepWeights` is
    /// set, else `maxWeight` when positive, else 100.
    pub fn max_weight(&self) -> i64 {
        match self.step_weights.last() {
            Some(last) => TOTAL_WEIGHT.min(*last),
            None if self.max_weight > 0 => self.max_weight,
            None => TOTAL_WEIGHT,
        }
    }

    /// `nextStepWeight(w)` (`scheduler.go:58-88`).
    pub fn next_step_weight(&self, canary_weight: i64) -> i64 {
        let sw = &self.step_weights;
        if self.step_weight > 0 || sw.is_empty() {
            return self.step_weight;
        }
        let max_step = TOTAL_WEIGHT.saturating_sub(canary_weight);
        if max_step == 0 {
            return 1;
        }
        if canary_weight == 0 {
            return max_step.min(sw[0]);
        }
        for i in 0..sw.len() - 1 {
            if sw[i] == canary_weight {
                return max_step.min(sw[i + 1].saturating_sub(canary_weight));
            }
        }
        max_step
    }
}

/// `GetAnalysisInterval` (`canary.go:636-652`): "" or unparsable gives 60 s; below 10 s is
/// clamped to 10 s. (The CRD pattern is checked separately by `from_spec`.)
pub fn analysis_interval(raw: &str) -> SimDuration {
    let default = SimDuration::from_secs(60);
    if raw.is_empty() {
        return default;
    }
    match parse_go_duration(raw) {
        Some(d) if d < SimDuration::from_secs(10) => SimDuration::from_secs(10),
        Some(d) => d,
        None => default,
    }
}

/// The CRD's `pattern: "^[0-9]+(m|s)"` (`crd.yaml:981-984`), anchored only at the start, so
/// "1m30s" passes and "1h" does not. The empty string is allowed here (the field's absence).
pub fn matches_crd_duration(raw: &str) -> bool {
    if raw.is_empty() {
        return true;
    }
    let digits = raw.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(raw.as_bytes().get(digits), Some(b'm') | Some(b's'))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns, us/µs/μs, ms, s, m, h;
/// a lone "0" is zero. `None` on anything else, or on overflow.
pub fn parse_go_duration(raw: &str) -> Option<SimDuration> {
    let (neg, mut s) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    if s == "0" {
        return Some(SimDuration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        let (frac_part, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let (unit, rest) = rest.split_at(unit_len);
        let unit_ns: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let number: f64 = format!(
            "{}.{}",
            if int_part.is_empty() { "0" } else { int_part },
            if frac_part.is_empty() { "0" } else { frac_part }
        )
        .parse()
        .ok()?;
        total += number * unit_ns;
        s = rest;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(SimDuration(if neg { -ns } else { ns }))
}

// ---------------------------------------------------------------------------------------------
// Observation and outcome
// ---------------------------------------------------------------------------------------------

/// What one metric query returned for the canary revision over the metric's window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricReading {
    /// Empty vector or NaN: zero canary requests in the window (`prometheus.go:155-172`).
    NoValues,
    /// Success rate in percent, or p99 in ms (not yet truncated).
    Value(f64),
}

/// What the caller observed at a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// `service.status.latestCreatedRevisionName`: the canary for change detection, readiness
    /// and metrics. A name different from the analysed one is a new revision.
    pub latest_created: String,
    /// `service.status.latestReadyRevisionName`: what the `latestRevision: true` entry resolves
    /// to. The canary is Ready when this equals `latest_created`.
    pub latest_ready: String,
    /// Whether the pinned primary revision (the annotation) is Ready.
    pub primary_ready: bool,
    /// One reading per `AnalysisSettings::metrics`, in order; a missing entry is `NoValues`.
    pub metrics: Vec<MetricReading>,
    /// One result per `AnalysisSettings::webhooks`, in order: `true` when the hook answered
    /// with a status <= 202 (`webhook.go:90-92`). A missing entry passes, except for rollback
    /// hooks, where a missing entry means "no rollback requested".
    pub webhooks: Vec<bool>,
}

impl Observation {
    /// A steady observation: `latest` created and ready, primary ready, no readings.
    pub fn steady(latest: &str) -> Self {
        Observation {
            latest_created: latest.to_string(),
            latest_ready: latest.to_string(),
            primary_ready: true,
            metrics: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// Flagger's phases (`pkg/apis/flagger/v1beta1/status.go:40-68`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Initializing,
    Initialized,
    Waiting,
    Progressing,
    WaitingPromotion,
    Promoting,
    Finalising,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Initialized => "Initialized",
            Phase::Waiting => "Waiting",
            Phase::Progressing => "Progressing",
            Phase::WaitingPromotion => "WaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Finalising => "Finalising",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `check` column: whether this tick ran the pre-rollout hooks or the analysis, and how
/// it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    None,
    Ok,
    Failed,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::None => "none",
            Check::Ok => "ok",
            Check::Failed => "failed",
        }
    }
}

/// The first item that failed in a tick's checks (one failure per tick).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CheckFailure {
    /// `webhooks[index]`, a pre-rollout hook.
    PreRolloutHook { index: usize },
    /// `webhooks[index]`, a rollout hook.
    RolloutHook { index: usize },
    /// `metrics[index]` returned no values ("no values found", spec §4.5).
    NoValues { index: usize },
    /// `metrics[index]` was outside its threshold; `value` is Flagger's value (p99 truncated).
    Threshold { index: usize, value: f64 },
}

/// What the tick did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `spec.suspend` (`scheduler.go:168-174`).
    Suspended,
    /// Initialize + Initialized in one tick (spec §2.2).
    Initialize,
    /// No new revision and nothing in progress.
    Idle,
    /// The primary revision is not Ready: the tick returns, always retriable (spec §2.9).
    PrimaryNotReady,
    /// `GetRoutes` failed ("traffic spec invalid"): the tick returns.
    RoutesUnreadable,
    /// A confirm-rollout hook is closed: phase Waiting.
    AwaitConfirmRollout,
    /// New revision detected: phase Progressing, counters reset.
    Detected,
    /// A new revision during the analysis: 100/0 back to the primary, counters reset.
    Restarted,
    /// The canary revision is not Ready: the tick returns, never rolls back (spec §2.9).
    CanaryNotReady,
    /// `skipAnalysis`: SetRoutes(100, 0) then Promote, Succeeded (spec §2.7).
    SkippedAnalysis,
    /// Rolled back: by the threshold, or by a rollback hook.
    Rollback,
    /// Promoting with `stepWeightPromotion`: one promotion step written.
    PromotionStep,
    /// Promoting: all traffic to the new primary, phase Finalising.
    Finalise,
    /// Finalising: phase Succeeded.
    Succeed,
    /// A failed check: failedChecks + 1, weights held.
    CheckFailed,
    /// A confirm-traffic-increase hook is closed: weights held.
    TrafficIncreaseHeld,
    /// `nextStepWeight` is 0 (e.g. `stepWeight: 0`): nothing to do.
    NoStep,
    /// The canary weight advanced to this value.
    Advance(i64),
    /// A confirm-promotion hook is closed at max weight: phase WaitingPromotion.
    AwaitPromotion,
    /// Promote (re-pin the annotation): phase Promoting.
    Promote,
    /// Knative rejected the write ("Traffic targets sum to N, want 100"): the tick is lost.
    Rejected { sum: i64 },
}

impl Action {
    /// The `action` column of `analysis.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Suspended => "suspended",
            Action::Initialize => "initialize",
            Action::Idle => "idle",
            Action::PrimaryNotReady | Action::CanaryNotReady | Action::RoutesUnreadable => "halt",
            Action::AwaitConfirmRollout | Action::AwaitPromotion => "wait",
            Action::Detected => "detect",
            Action::Restarted => "restart",
            Action::SkippedAnalysis => "skip",
            Action::Rollback => "rollback",
            Action::PromotionStep => "promotion_step",
            Action::Finalise => "finalise",
            Action::Succeed => "succeed",
            Action::CheckFailed | Action::TrafficIncreaseHeld | Action::NoStep => "hold",
            Action::Advance(_) => "advance",
            Action::Promote => "promote",
            Action::Rejected { .. } => "rejected",
        }
    }
}

/// The Service's `spec.traffic` as Flagger's Knative router writes it (`knative.go:57-66`):
/// `[{latestRevision: true, percent: canary}, {revisionName: primary, percent: primary}]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecTraffic {
    pub latest_percent: i64,
    pub pinned_revision: String,
    pub pinned_percent: i64,
}

impl SpecTraffic {
    /// The two entries in Knative's shape, in Flagger's order, for the routing core.
    pub fn to_targets(&self) -> Vec<TrafficTarget> {
        vec![
            TrafficTarget {
                latest_revision: Some(true),
                percent: Some(self.latest_percent),
                ..Default::default()
            },
            TrafficTarget {
                revision_name: self.pinned_revision.clone(),
                percent: Some(self.pinned_percent),
                ..Default::default()
            },
        ]
    }

    /// The effective split once `latestRevision` resolves to `latest_ready` (entries for one
    /// revision add up; zero shares are dropped).
    pub fn split(&self, latest_ready: &str) -> BTreeMap<String, i64> {
        let mut split = BTreeMap::new();
        for (rev, pct) in [
            (latest_ready, self.latest_percent),
            (self.pinned_revision.as_str(), self.pinned_percent),
        ] {
            if pct > 0 {
                *split.entry(rev.to_string()).or_insert(0) += pct;
            }
        }
        split
    }
}

/// The result of one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TickOutcome {
    pub phase: Phase,
    /// `status.canaryWeight` after the tick (display only; the scheduler never reads it).
    pub canary_weight: i64,
    /// `status.failedChecks` after the tick.
    pub failed_checks: i64,
    pub check: Check,
    pub failure: Option<CheckFailure>,
    /// How many metrics were queried this tick (0: leave the metric cells empty).
    pub metrics_evaluated: usize,
    /// The `spec.traffic` Knative accepted this tick; the caller applies it.
    pub write: Option<SpecTraffic>,
    pub action: Action,
    /// What `GetRoutes` would read after the tick, `(primary, canary)`, duplicate quirk included.
    pub routes: Option<(i64, i64)>,
    /// The effective split after the tick (revision name -> percent).
    pub split: BTreeMap<String, i64>,
    /// The `flagger.app/primary-revision` annotation after the tick.
    pub primary_revision: Option<String>,
}

impl TickOutcome {
    /// The primary revision's resolved share of the traffic the tick leaves (the
    /// `primary_weight` column of `analysis.csv`); after Promote this is the new revision's.
    pub fn primary_share(&self) -> i64 {
        self.primary_revision
            .as_ref()
            .and_then(|p| self.split.get(p))
            .copied()
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// Controller
// ---------------------------------------------------------------------------------------------

/// Flagger's persisted Canary status plus the two pieces of the Knative Service it writes.
#[derive(Clone, Debug)]
pub struct FlaggerController {
    settings: AnalysisSettings,
    phase: Phase,
    failed_checks: i64,
    canary_weight: i64,
    iterations: i64,
    /// `lastAppliedSpec` / `lastPromotedSpec`: the hash of `latestCreatedRevisionName`, kept as
    /// the name itself (`spec.go:32-65`).
    last_applied: Option<String>,
    last_promoted: Option<String>,
    /// The `flagger.app/primary-revision` annotation.
    primary: Option<String>,
    /// The Service's `spec.traffic` once Flagger has written it.
    spec: Option<SpecTraffic>,
    last_tick: Option<SimTime>,
}

/// One tick's scratch: the fields of `TickOutcome` the tick body fills in.
struct TickScratch {
    check: Check,
    failure: Option<CheckFailure>,
    metrics_evaluated: usize,
    write: Option<SpecTraffic>,
}

impl FlaggerController {
    /// A Canary just created: `status.phase` Initializing (`controller.go:299-305`).
    pub fn new(settings: AnalysisSettings) -> Self {
        FlaggerController {
            settings,
            phase: Phase::Initializing,
            failed_checks: 0,
            canary_weight: 0,
            iterations: 0,
            last_applied: None,
            last_promoted: None,
            primary: None,
            spec: None,
            last_tick: None,
        }
    }

    pub fn settings(&self) -> &AnalysisSettings {
        &self.settings
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The `flagger.app/primary-revision` annotation.
    pub fn primary_revision(&self) -> Option<&str> {
        self.primary.as_deref()
    }

    /// The Service's current `spec.traffic` as Flagger last wrote it.
    pub fn spec_traffic(&self) -> Option<&SpecTraffic> {
        self.spec.as_ref()
    }

    /// When the caller should tick next: the job ticks immediately at start, then every
    /// interval (`job.go:32-45`).
    pub fn next_tick(&self) -> SimTime {
        match self.last_tick {
            None => SimTime::ZERO,
            Some(t) => t + self.settings.interval,
        }
    }

    /// Whether the analysis has ended (Succeeded or Failed); a later tick may start a new one.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Succeeded | Phase::Failed)
    }

    /// One `advanceCanary` tick (`scheduler.go:158-506`, spec §3.3 and §7), in code order.
    pub fn tick(&mut self, now: SimTime, obs: &Observation) -> TickOutcome {
        self.last_tick = Some(now);
        let mut scratch = TickScratch {
            check: Check::None,
            failure: None,
            metrics_evaluated: 0,
            write: None,
        };
        let action = self.advance(obs, &mut scratch);
        TickOutcome {
            phase: self.phase,
            canary_weight: self.canary_weight,
            failed_checks: self.failed_checks,
            check: scratch.check,
            failure: scratch.failure,
            metrics_evaluated: scratch.metrics_evaluated,
            write: scratch.write,
            action,
            routes: self.get_routes(&obs.latest_ready),
            split: self
                .spec
                .as_ref()
                .map(|s| s.split(&obs.latest_ready))
                .unwrap_or_default(),
            primary_revision: self.primary.clone(),
        }
    }

    fn advance(&mut self, obs: &Observation, scratch: &mut TickScratch) -> Action {
        let s = &self.settings;
        // scheduler.go:168-174
        if s.suspend {
            return Action::Suspended;
        }
        let mut initialized = false;
        // KnativeController.Initialize (knative_controller.go:91-124): only while Initializing;
        // pins the latest created revision without waiting for it to be Ready.
        if self.phase == Phase::Initializing {
            self.primary = Some(obs.latest_created.clone());
            self.spec = Some(SpecTraffic {
                latest_percent: 0,
                pinned_revision: obs.latest_created.clone(),
                pinned_percent: TOTAL_WEIGHT,
            });
            scratch.write = self.spec.clone();
        }
        // KnativeRouter.Reconcile (knative.go:20-40): writes the annotation only when missing.
        if self.primary.is_none() {
            self.primary = Some(obs.latest_created.clone());
        }
        // setPhaseInitialized (scheduler.go:275-278, 1037-1059): the in-memory lastAppliedSpec
        // is re-read, so shouldAdvance below sees the fresh hash.
        if self.phase == Phase::Initializing {
            self.sync_status(Phase::Initialized, &obs.latest_created);
            initialized = true;
        }
        let idle = if initialized {
            Action::Initialize
        } else {
            Action::Idle
        };

        // shouldAdvance (scheduler.go:852-884). In Failed, Flagger first re-syncs
        // lastAppliedSpec server side; the in-memory status it then compares against is the
        // old one, so the comparison is the same as in any other phase.
        let in_flight = matches!(
            self.phase,
            Phase::Progressing
                | Phase::Waiting
                | Phase::WaitingPromotion
                | Phase::Promoting
                | Phase::Finalising
        );
        if !in_flight && !self.has_target_changed(&obs.latest_created) {
            return idle;
        }

        // IsPrimaryReady (scheduler.go:295-311; knative_controller.go:22-38): every error is
        // retriable on Knative, so a primary that is not Ready only halts the tick.
        if !self.settings.skip_analysis && !obs.primary_ready {
            return Action::PrimaryNotReady;
        }

        // GetRoutes (scheduler.go:314-318) reads status.traffic (knative.go:75-108).
        let Some((primary_weight, canary_weight)) = self.get_routes(&obs.latest_ready) else {
            return Action::RoutesUnreadable;
        };

        // checkCanaryStatus (scheduler.go:886-933): outside an analysis, the confirm-rollout
        // gate, then Progressing with counters reset; no analysis work in this tick.
        if !matches!(
            self.phase,
            Phase::Progressing | Phase::WaitingPromotion | Phase::Promoting | Phase::Finalising
        ) {
            // scheduler_hooks.go:44-65
            if !self.gates_pass(WebhookType::ConfirmRollout, obs) {
                if self.phase != Phase::Waiting {
                    self.set_phase(Phase::Waiting);
                }
                return Action::AwaitConfirmRollout;
            }
            self.sync_status(Phase::Progressing, &obs.latest_created);
            return Action::Detected;
        }

        // hasCanaryRevisionChanged (scheduler.go:328-351, 935-946): only in Progressing and
        // WaitingPromotion; back to 100/0 on the *current* primary, counters reset. Quirk
        // (spec §3.7): confirm-rollout is not re-run, and the abandoned revision is never
        // promoted.
        if matches!(self.phase, Phase::Progressing | Phase::WaitingPromotion)
            && self.has_target_changed(&obs.latest_created)
        {
            if let Err(action) = self.set_routes(TOTAL_WEIGHT, 0, scratch) {
                return action;
            }
            self.sync_status(Phase::Progressing, &obs.latest_created);
            return Action::Restarted;
        }

        // IsCanaryReady (scheduler.go:354-361; knative_controller.go:41-55): retriable, so a
        // canary that never becomes Ready halts the analysis forever with no failed check and
        // progressDeadlineSeconds has no effect (spec §2.9, V10).
        if obs.latest_ready != obs.latest_created {
            return Action::CanaryNotReady;
        }

        // shouldSkipAnalysis (scheduler.go:778-850). Knative quirk (spec §2.7, V8): SetRoutes
        // runs while the annotation still names the old revision, Promote only re-pins it, so
        // real traffic stays 100% on the old revision while the canary reports Succeeded.
        if self.settings.skip_analysis {
            if let Err(action) = self.set_routes(TOTAL_WEIGHT, 0, scratch) {
                return action;
            }
            self.primary = Some(obs.latest_created.clone());
            self.set_phase(Phase::Succeeded);
            return Action::SkippedAnalysis;
        }

        // Rollback hooks (scheduler.go:369-378; scheduler_hooks.go:126-139): a hook answering
        // <= 202 rolls back. (Waiting is listed upstream but cannot get here.)
        if matches!(
            self.phase,
            Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion
        ) && self.any_rollback_hook(obs)
        {
            return self.rollback(&obs.latest_created, scratch);
        }

        // Promoting (scheduler.go:381-390, runPromotionTrafficShift :509-562).
        if self.phase == Phase::Promoting {
            let step = self.settings.step_weight_promotion;
            if step == 0 {
                if let Err(action) = self.set_routes(TOTAL_WEIGHT, 0, scratch) {
                    return action;
                }
                self.set_phase(Phase::Finalising);
                return Action::Finalise;
            }
            // Knative quirk (spec §2.6, V9): GetRoutes read the duplicate first match (w, w), so
            // (w+s, w-s) sums to 100 only when w = 50; Knative rejects the rest and the canary
            // stays in Promoting forever.
            if canary_weight > 0 {
                let pw = primary_weight.saturating_add(step).min(TOTAL_WEIGHT);
                let cw = canary_weight.saturating_sub(step).max(0);
                if let Err(action) = self.set_routes(pw, cw, scratch) {
                    return action;
                }
                if pw == TOTAL_WEIGHT {
                    self.set_phase(Phase::Finalising);
                    return Action::Finalise;
                }
                self.canary_weight = cw;
                return Action::PromotionStep;
            }
            return Action::NoStep;
        }

        // Finalising (scheduler.go:393-427): ScaleToZero is a no-op on Knative.
        if self.phase == Phase::Finalising {
            self.set_phase(Phase::Succeeded);
            return Action::Succeed;
        }

        // Threshold check (scheduler.go:430-440): evaluated on the counter at the *start* of
        // the tick, before this tick's checks, so one more tick passes after the threshold-th
        // failure (spec §3.4).
        if matches!(self.phase, Phase::Progressing | Phase::WaitingPromotion)
            && self.failed_checks >= self.settings.threshold
        {
            return self.rollback(&obs.latest_created, scratch);
        }

        // Checks (scheduler.go:449-467): at weight 0 only the pre-rollout hooks run (no metric
        // is evaluated); otherwise runAnalysis stops at the first failure. One increment per
        // tick at most; never reset by a success (the counter is cumulative).
        let passed = if canary_weight == 0 && self.iterations == 0 {
            self.run_pre_rollout_hooks(obs, scratch)
        } else {
            self.run_analysis(obs, scratch)
        };
        scratch.check = if passed { Check::Ok } else { Check::Failed };
        if !passed {
            self.failed_checks = self.failed_checks.saturating_add(1);
            return Action::CheckFailed;
        }

        // The canary strategy (scheduler.go:493-504).
        let step = self.settings.next_step_weight(canary_weight);
        if step <= 0 {
            return Action::NoStep;
        }
        // confirm-traffic-increase also gates the tick that would promote: the code checks
        // only the phase (spec §3.3 step 19).
        if !matches!(
            self.phase,
            Phase::Promoting | Phase::WaitingPromotion | Phase::Finalising
        ) && !self.gates_pass(WebhookType::ConfirmTrafficIncrease, obs)
        {
            return Action::TrafficIncreaseHeld;
        }
        self.run_canary(obs, primary_weight, canary_weight, step, scratch)
    }

    /// runCanary (scheduler.go:565-637).
    fn run_canary(
        &mut self,
        obs: &Observation,
        primary_weight: i64,
        canary_weight: i64,
        step: i64,
        scratch: &mut TickScratch,
    ) -> Action {
        let max_weight = self.settings.max_weight();
        if canary_weight < max_weight {
            // Overshoot quirk (scheduler.go:592-599, spec §3.5, V4): the canary is capped at
            // 100, not at maxWeight.
            let pw = primary_weight.saturating_sub(step).max(0);
            let cw = canary_weight.saturating_add(step).min(TOTAL_WEIGHT);
            if let Err(action) = self.set_routes(pw, cw, scratch) {
                return action;
            }
            self.canary_weight = cw;
            return Action::Advance(cw);
        }
        // confirm-promotion (scheduler_hooks.go:67-93): closed -> WaitingPromotion, whose
        // setStatusPhase shows canaryWeight 0 while real traffic is unchanged (spec §3.6, V7).
        if !self.gates_pass(WebhookType::ConfirmPromotion, obs) {
            if self.phase != Phase::WaitingPromotion {
                self.set_phase(Phase::WaitingPromotion);
            }
            return Action::AwaitPromotion;
        }
        // Promote (knative_controller.go:126-137) only re-pins the annotation; traffic is
        // untouched until the next (Promoting) tick.
        self.primary = Some(obs.latest_created.clone());
        self.set_phase(Phase::Promoting);
        Action::Promote
    }

    /// runPreRolloutHooks (scheduler_hooks.go:95-109).
    fn run_pre_rollout_hooks(&self, obs: &Observation, scratch: &mut TickScratch) -> bool {
        for (index, hook) in self.settings.webhooks.iter().enumerate() {
            if hook.kind == WebhookType::PreRollout && !hook_result(obs, index, hook.kind) {
                scratch.failure = Some(CheckFailure::PreRolloutHook { index });
                return false;
            }
        }
        true
    }

    /// runAnalysis (scheduler.go:752-776): rollout hooks, then the built-in metrics in list
    /// order; the first failure ends it.
    fn run_analysis(&self, obs: &Observation, scratch: &mut TickScratch) -> bool {
        for (index, hook) in self.settings.webhooks.iter().enumerate() {
            if hook.kind == WebhookType::Rollout && !hook_result(obs, index, hook.kind) {
                scratch.failure = Some(CheckFailure::RolloutHook { index });
                return false;
            }
        }
        for (index, check) in self.settings.metrics.iter().enumerate() {
            scratch.metrics_evaluated = index + 1;
            let reading = obs
                .metrics
                .get(index)
                .copied()
                .unwrap_or(MetricReading::NoValues);
            match evaluate_metric(check, reading) {
                Verdict::Pass => {}
                Verdict::NoValues => {
                    scratch.failure = Some(CheckFailure::NoValues { index });
                    return false;
                }
                Verdict::Fail(value) => {
                    scratch.failure = Some(CheckFailure::Threshold { index, value });
                    return false;
                }
            }
        }
        true
    }

    fn gates_pass(&self, kind: WebhookType, obs: &Observation) -> bool {
        self.settings
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, h)| h.kind == kind)
            .all(|(i, h)| hook_result(obs, i, h.kind))
    }

    fn any_rollback_hook(&self, obs: &Observation) -> bool {
        self.settings
            .webhooks
            .iter()
            .enumerate()
            .any(|(i, h)| h.kind == WebhookType::Rollback && hook_result(obs, i, h.kind))
    }

    /// rollback (scheduler.go:948-998): 100/0 to the current annotation, then
    /// SyncStatus({Failed, 0}), which also resets failedChecks (spec §2.8).
    fn rollback(&mut self, latest_created: &str, scratch: &mut TickScratch) -> Action {
        if let Err(action) = self.set_routes(TOTAL_WEIGHT, 0, scratch) {
            return action;
        }
        self.sync_status(Phase::Failed, latest_created);
        Action::Rollback
    }

    /// HasTargetChanged for Knative (knative_controller.go:139-145, spec.go:32-49).
    fn has_target_changed(&self, latest_created: &str) -> bool {
        let Some(applied) = &self.last_applied else {
            return true;
        };
        if self.last_promoted.as_deref() == Some(latest_created) {
            return false;
        }
        applied != latest_created
    }

    /// syncCanaryStatus (status.go:33-70): every counter is overwritten, not merged.
    fn sync_status(&mut self, phase: Phase, latest_created: &str) {
        self.phase = phase;
        self.canary_weight = 0;
        self.failed_checks = 0;
        self.iterations = 0;
        self.last_applied = Some(latest_created.to_string());
        if phase == Phase::Initialized {
            self.last_promoted = self.last_applied.clone();
        }
    }

    /// setStatusPhase (status.go:146-186): failedChecks untouched.
    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        if !matches!(
            phase,
            Phase::Progressing | Phase::Waiting | Phase::Promoting
        ) {
            self.canary_weight = 0;
            // `iterations - 1` for WaitingPromotion; the canary strategy has iterations 0.
            self.iterations = if phase == Phase::WaitingPromotion {
                -1
            } else {
                0
            };
        }
        if matches!(phase, Phase::Initialized | Phase::Succeeded) {
            self.last_promoted = self.last_applied.clone();
        }
    }

    /// KnativeRouter.SetRoutes (knative.go:42-73) against Knative's validation: the whole
    /// `spec.traffic` is replaced, or rejected when the percents do not sum to 100
    /// (route_validation.go:59, 85-87).
    fn set_routes(
        &mut self,
        primary_weight: i64,
        canary_weight: i64,
        scratch: &mut TickScratch,
    ) -> Result<(), Action> {
        let Some(primary) = self.primary.clone() else {
            return Err(Action::RoutesUnreadable);
        };
        let sum = primary_weight.saturating_add(canary_weight);
        let in_range = |p: i64| (0..=TOTAL_WEIGHT).contains(&p);
        if sum != TOTAL_WEIGHT || !in_range(primary_weight) || !in_range(canary_weight) {
            return Err(Action::Rejected { sum });
        }
        let spec = SpecTraffic {
            latest_percent: canary_weight,
            pinned_revision: primary,
            pinned_percent: primary_weight,
        };
        self.spec = Some(spec.clone());
        scratch.write = Some(spec);
        Ok(())
    }

    /// KnativeRouter.GetRoutes (knative.go:75-108) over status.traffic with no route lag:
    /// status entries follow spec order, `latestRevision` resolved to `latest_ready`, and are
    /// not merged (traffic.go:416-425). The primary is the *first* entry naming the
    /// annotation, so when the latest ready revision is the primary the `latestRevision` entry
    /// is read for both: `(0, 0)` in steady state, `(w, w)` after Promote (spec §2.5 point 2).
    fn get_routes(&self, latest_ready: &str) -> Option<(i64, i64)> {
        let spec = self.spec.as_ref()?;
        let primary = self.primary.as_deref()?;
        let entries = [
            (latest_ready, spec.latest_percent),
            (spec.pinned_revision.as_str(), spec.pinned_percent),
        ];
        let canary = entries[0].1;
        let primary_pct = entries.iter().find(|(rev, _)| *rev == primary)?.1;
        Some((primary_pct, canary))
    }
}

/// A missing result passes, except for rollback hooks (a missing one requests nothing).
fn hook_result(obs: &Observation, index: usize, kind: WebhookType) -> bool {
    obs.webhooks
        .get(index)
        .copied()
        .unwrap_or(kind != WebhookType::Rollback)
}

/// A metric's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Pass,
    /// "no values found": a failed check (spec §4.5).
    NoValues,
    /// Outside the threshold, with Flagger's value.
    Fail(f64),
}

/// One built-in metric against its threshold (scheduler_metrics.go:148-217, spec §4.4).
pub fn evaluate_metric(check: &MetricCheck, reading: MetricReading) -> Verdict {
    let raw = match reading {
        MetricReading::Value(v) if !v.is_nan() => v,
        // prometheus.go:155-172: NaN is "no values found" too.
        _ => return Verdict::NoValues,
    };
    match check.metric {
        BuiltinMetric::SuccessRate => {
            let fail = match check.range {
                Some(r) => r.min.is_some_and(|m| raw < m) || r.max.is_some_and(|m| raw > m),
                None => check.threshold > raw,
            };
            if fail {
                Verdict::Fail(raw)
            } else {
                Verdict::Pass
            }
        }
        BuiltinMetric::Duration => {
            // knative.go:90: time.Duration(int64(value)) * time.Millisecond truncates the p99
            // toward zero; thresholds convert the same way (time.Duration(*tr.Max)).
            let val = raw as i64;
            let ms = |x: f64| x as i64;
            let fail = match check.range {
                Some(r) => r.min.is_some_and(|m| val < ms(m)) || r.max.is_some_and(|m| val > ms(m)),
                None => val > ms(check.threshold),
            };
            if fail {
                Verdict::Fail(val as f64)
            } else {
                Verdict::Pass
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const R1: &str = "podinfo-00001";
    const R2: &str = "podinfo-00002";
    const R3: &str = "podinfo-00003";

    /// One row of a §8 vector: minute, phase after the tick, failedChecks,
    /// status.canaryWeight, GetRoutes after the tick, effective split, action.
    type Row = (
        i64,
        Phase,
        i64,
        i64,
        (i64, i64),
        &'static [(&'static str, i64)],
        Action,
    );

    fn metric(name: &str, min: Option<f64>, max: Option<f64>) -> MetricSpec {
        MetricSpec {
            name: name.to_string(),
            min,
            max,
            ..Default::default()
        }
    }

    fn hook(name: &str, kind: WebhookType) -> Webhook {
        Webhook {
            name: name.to_string(),
            kind,
        }
    }

    /// The tutorial's canary (knative-progressive-delivery.md:88-109) with §8's interval.
    fn spec(step_weight: i64, max_weight: i64, threshold: i64) -> AnalysisSpec {
        AnalysisSpec {
            interval: "1m".to_string(),
            threshold: Some(threshold),
            max_weight: Some(max_weight),
            step_weight: Some(step_weight),
            metrics: vec![
                metric("request-success-rate", Some(99.0), None),
                metric("request-duration", None, Some(500.0)),
            ],
            ..Default::default()
        }
    }

    /// §8 conventions: -00001 Ready at 0, -00002 created and Ready just before tick 1; healthy
    /// readings (100 %, 200 ms) unless the vector says otherwise.
    fn healthy(k: i64) -> Observation {
        let mut obs = Observation::steady(if k == 0 { R1 } else { R2 });
        obs.metrics = vec![MetricReading::Value(100.0), MetricReading::Value(200.0)];
        obs
    }

    fn run_vector(spec: AnalysisSpec, observe: impl Fn(i64) -> Observation, rows: &[Row]) {
        let settings = AnalysisSettings::from_spec(&spec).expect("vector settings are valid");
        let interval = settings.interval;
        let mut c = FlaggerController::new(settings);
        for (minute, phase, failed, weight, routes, split, action) in rows {
            let now = SimTime::ZERO + SimDuration(interval.0 * minute);
            assert_eq!(c.next_tick(), now, "tick time at {minute}m");
            let out = c.tick(now, &observe(*minute));
            let want_split: BTreeMap<String, i64> =
                split.iter().map(|(r, p)| (r.to_string(), *p)).collect();
            assert_eq!(
                (
                    out.phase,
                    out.failed_checks,
                    out.canary_weight,
                    out.routes,
                    out.split,
                    out.action
                ),
                (*phase, *failed, *weight, Some(*routes), want_split, *action),
                "row {minute}m"
            );
            assert_eq!(
                out.check == Check::Failed,
                out.action == Action::CheckFailed
            );
            if let Some(w) = &out.write {
                assert_eq!(w.latest_percent + w.pinned_percent, 100, "row {minute}m");
            }
        }
    }

    use Action::*;
    use Phase::*;

    // Rows shared by every vector: t=0 Initialize+Initialized (knative_controller.go:91-124,
    // scheduler.go:275-278), t=1m detection (scheduler.go:886-933).
    const INIT: Row = (0, Initialized, 0, 0, (0, 0), &[(R1, 100)], Initialize);
    const DETECT: Row = (1, Progressing, 0, 0, (100, 0), &[(R1, 100)], Detected);

    #[test]
    fn v1_healthy_promotes() {
        // V1: stepWeight 10, maxWeight 50, threshold 5; runCanary scheduler.go:565-637,
        // runPromotionTrafficShift :518-530, Finalising :393-427.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 10, (90, 10), &[(R2, 10), (R1, 90)], Advance(10)), // pre-rollout tick
            (3, Progressing, 0, 20, (80, 20), &[(R2, 20), (R1, 80)], Advance(20)),
            (4, Progressing, 0, 30, (70, 30), &[(R2, 30), (R1, 70)], Advance(30)),
            (5, Progressing, 0, 40, (60, 40), &[(R2, 40), (R1, 60)], Advance(40)),
            (6, Progressing, 0, 50, (50, 50), &[(R2, 50), (R1, 50)], Advance(50)),
            (7, Promoting, 0, 50, (50, 50), &[(R2, 50), (R1, 50)], Promote), // duplicate first match
            (8, Finalising, 0, 0, (0, 0), &[(R2, 100)], Finalise),
            (9, Succeeded, 0, 0, (0, 0), &[(R2, 100)], Succeed),
            (10, Succeeded, 0, 0, (0, 0), &[(R2, 100)], Idle),
        ];
        run_vector(spec(10, 50, 5), healthy, rows);
    }

    fn failing_from(k0: i64, reading: MetricReading) -> impl Fn(i64) -> Observation {
        move |k| {
            let mut obs = healthy(k);
            if k >= k0 {
                obs.metrics[0] = reading;
            }
            obs
        }
    }

    const V2_ROWS: &[Row] = &[
        INIT,
        DETECT,
        (
            2,
            Progressing,
            0,
            10,
            (90, 10),
            &[(R2, 10), (R1, 90)],
            Advance(10),
        ),
        (
            3,
            Progressing,
            0,
            20,
            (80, 20),
            &[(R2, 20), (R1, 80)],
            Advance(20),
        ),
        (
            4,
            Progressing,
            0,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            Advance(30),
        ),
        (
            5,
            Progressing,
            1,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            CheckFailed,
        ),
        (
            6,
            Progressing,
            2,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            CheckFailed,
        ),
        (
            7,
            Progressing,
            3,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            CheckFailed,
        ),
        (
            8,
            Progressing,
            4,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            CheckFailed,
        ),
        (
            9,
            Progressing,
            5,
            30,
            (70, 30),
            &[(R2, 30), (R1, 70)],
            CheckFailed,
        ),
        // scheduler.go:430-440 then rollback :948-998 (SyncStatus resets failedChecks)
        (10, Failed, 0, 0, (100, 0), &[(R1, 100)], Rollback),
        (11, Failed, 0, 0, (100, 0), &[(R1, 100)], Idle),
    ];

    #[test]
    fn v2_failing_checks_roll_back_at_threshold() {
        // V2: checks #1, #2 pass, #3 on fail (95 % < min 99); scheduler_metrics.go:165-170.
        run_vector(
            spec(10, 50, 5),
            failing_from(5, MetricReading::Value(95.0)),
            V2_ROWS,
        );
    }

    #[test]
    fn v2_no_values_is_a_failed_check() {
        // V2 note / §4.5: "no values found" in place of the failures gives the same table
        // (scheduler_metrics.go:153-163, scheduler.go:461-465).
        run_vector(
            spec(10, 50, 5),
            failing_from(5, MetricReading::NoValues),
            V2_ROWS,
        );
    }

    #[test]
    fn v3_failed_checks_are_cumulative() {
        // V3: pass, fail, pass, fail with threshold 2; no writer resets the counter on a
        // success (spec §3.4, scheduler.go:455, 462).
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 10, (90, 10), &[(R2, 10), (R1, 90)], Advance(10)),
            (3, Progressing, 0, 20, (80, 20), &[(R2, 20), (R1, 80)], Advance(20)),
            (4, Progressing, 1, 20, (80, 20), &[(R2, 20), (R1, 80)], CheckFailed),
            (5, Progressing, 1, 30, (70, 30), &[(R2, 30), (R1, 70)], Advance(30)),
            (6, Progressing, 2, 30, (70, 30), &[(R2, 30), (R1, 70)], CheckFailed),
            (7, Failed, 0, 0, (100, 0), &[(R1, 100)], Rollback),
        ];
        let observe = |k| {
            let mut obs = healthy(k);
            if k == 4 || k == 6 {
                obs.metrics[0] = MetricReading::Value(95.0);
            }
            obs
        };
        run_vector(spec(10, 50, 2), observe, rows);
    }

    #[test]
    fn v4_overshoot_past_max_weight() {
        // V4: stepWeight 20, maxWeight 50 -> 60 (capped at 100, scheduler.go:592-599;
        // deployment-strategies.md:128-142).
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 20, (80, 20), &[(R2, 20), (R1, 80)], Advance(20)),
            (3, Progressing, 0, 40, (60, 40), &[(R2, 40), (R1, 60)], Advance(40)),
            (4, Progressing, 0, 60, (40, 60), &[(R2, 60), (R1, 40)], Advance(60)),
            (5, Promoting, 0, 60, (60, 60), &[(R2, 60), (R1, 40)], Promote),
            (6, Finalising, 0, 0, (0, 0), &[(R2, 100)], Finalise),
            (7, Succeeded, 0, 0, (0, 0), &[(R2, 100)], Succeed),
        ];
        run_vector(spec(20, 50, 5), healthy, rows);
    }

    #[test]
    fn v5_step_weights_ladder() {
        // V5: stepWeights [1, 2, 10, 80]; nextStepWeight scheduler.go:58-88, maxWeight :41-51
        // (deployment-strategies.md:150-164).
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 1, (99, 1), &[(R2, 1), (R1, 99)], Advance(1)),
            (3, Progressing, 0, 2, (98, 2), &[(R2, 2), (R1, 98)], Advance(2)),
            (4, Progressing, 0, 10, (90, 10), &[(R2, 10), (R1, 90)], Advance(10)),
            (5, Progressing, 0, 80, (20, 80), &[(R2, 80), (R1, 20)], Advance(80)),
            (6, Promoting, 0, 80, (80, 80), &[(R2, 80), (R1, 20)], Promote),
            (7, Finalising, 0, 0, (0, 0), &[(R2, 100)], Finalise),
            (8, Succeeded, 0, 0, (0, 0), &[(R2, 100)], Succeed),
        ];
        let mut s = spec(0, 0, 5);
        s.step_weight = None;
        s.max_weight = None;
        s.step_weights = Some(vec![1, 2, 10, 80]);
        run_vector(s, healthy, rows);
    }

    #[test]
    fn v6_new_revision_restarts_the_analysis() {
        // V6: -00003 created just before 5m; hasCanaryRevisionChanged scheduler.go:328-351,
        // 935-946: 100/0 to the current primary, counters reset, confirm-rollout not re-run.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 10, (90, 10), &[(R2, 10), (R1, 90)], Advance(10)),
            (3, Progressing, 0, 20, (80, 20), &[(R2, 20), (R1, 80)], Advance(20)),
            (4, Progressing, 0, 30, (70, 30), &[(R2, 30), (R1, 70)], Advance(30)),
            (5, Progressing, 0, 0, (100, 0), &[(R1, 100)], Restarted),
            (6, Progressing, 0, 10, (90, 10), &[(R3, 10), (R1, 90)], Advance(10)),
            (7, Progressing, 0, 20, (80, 20), &[(R3, 20), (R1, 80)], Advance(20)),
            (8, Progressing, 0, 30, (70, 30), &[(R3, 30), (R1, 70)], Advance(30)),
            (9, Progressing, 0, 40, (60, 40), &[(R3, 40), (R1, 60)], Advance(40)),
            (10, Progressing, 0, 50, (50, 50), &[(R3, 50), (R1, 50)], Advance(50)),
            (11, Promoting, 0, 50, (50, 50), &[(R3, 50), (R1, 50)], Promote),
            (12, Finalising, 0, 0, (0, 0), &[(R3, 100)], Finalise),
            (13, Succeeded, 0, 0, (0, 0), &[(R3, 100)], Succeed),
        ];
        let observe = |k| {
            let mut obs = healthy(k);
            if k >= 5 {
                obs.latest_created = R3.to_string();
                obs.latest_ready = R3.to_string();
            }
            obs
        };
        run_vector(spec(10, 50, 5), observe, rows);
    }

    #[test]
    fn v7_confirm_promotion_gate() {
        // V7: maxWeight 30; confirm-promotion fails twice then passes (scheduler_hooks.go:67-93);
        // WaitingPromotion shows weight 0 while traffic stays 30 % (status.go:161-167).
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 10, (90, 10), &[(R2, 10), (R1, 90)], Advance(10)),
            (3, Progressing, 0, 20, (80, 20), &[(R2, 20), (R1, 80)], Advance(20)),
            (4, Progressing, 0, 30, (70, 30), &[(R2, 30), (R1, 70)], Advance(30)),
            (5, WaitingPromotion, 0, 0, (70, 30), &[(R2, 30), (R1, 70)], Action::AwaitPromotion),
            (6, WaitingPromotion, 0, 0, (70, 30), &[(R2, 30), (R1, 70)], Action::AwaitPromotion),
            (7, Promoting, 0, 0, (30, 30), &[(R2, 30), (R1, 70)], Promote),
            (8, Finalising, 0, 0, (0, 0), &[(R2, 100)], Finalise),
            (9, Succeeded, 0, 0, (0, 0), &[(R2, 100)], Succeed),
        ];
        let mut s = spec(10, 30, 5);
        s.webhooks = vec![hook("gate", WebhookType::ConfirmPromotion)];
        let observe = |k| {
            let mut obs = healthy(k);
            obs.webhooks = vec![!(k == 5 || k == 6)];
            obs
        };
        run_vector(s, observe, rows);
    }

    #[test]
    fn v8_skip_analysis_promotes_without_moving_traffic() {
        // V8: skipAnalysis; shouldSkipAnalysis scheduler.go:778-850 writes 100/0 with the old
        // annotation, then Promote re-pins it: Succeeded while -00001 keeps 100 %.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Succeeded, 0, 0, (0, 0), &[(R1, 100)], SkippedAnalysis),
            (3, Succeeded, 0, 0, (0, 0), &[(R1, 100)], Idle),
        ];
        let mut s = spec(10, 50, 5);
        s.skip_analysis = true;
        run_vector(s, healthy, rows);
    }

    #[test]
    fn v9_step_weight_promotion_sticks_in_promoting() {
        // V9: stepWeight 25, maxWeight 50, stepWeightPromotion 20; runPromotionTrafficShift
        // scheduler.go:533-546 on the duplicate (w, w) read of knative.go:87-92.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 0, 25, (75, 25), &[(R2, 25), (R1, 75)], Advance(25)),
            (3, Progressing, 0, 50, (50, 50), &[(R2, 50), (R1, 50)], Advance(50)),
            (4, Promoting, 0, 50, (50, 50), &[(R2, 50), (R1, 50)], Promote),
            (5, Promoting, 0, 30, (30, 30), &[(R2, 100)], PromotionStep),
            (6, Promoting, 0, 30, (30, 30), &[(R2, 100)], Rejected { sum: 60 }),
            (7, Promoting, 0, 30, (30, 30), &[(R2, 100)], Rejected { sum: 60 }),
        ];
        let mut s = spec(25, 50, 5);
        s.step_weight_promotion = Some(20);
        run_vector(s, healthy, rows);
    }

    #[test]
    fn v10_canary_never_ready_halts_forever() {
        // V10: IsCanaryReady is always retriable on Knative (knative_controller.go:41-55,
        // scheduler.go:354-361): no failed checks, no rollback.
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            (1, Progressing, 0, 0, (0, 0), &[(R1, 100)], Detected),
            (2, Progressing, 0, 0, (0, 0), &[(R1, 100)], CanaryNotReady),
            (3, Progressing, 0, 0, (0, 0), &[(R1, 100)], CanaryNotReady),
            (30, Progressing, 0, 0, (0, 0), &[(R1, 100)], CanaryNotReady),
        ];
        let observe = |k| {
            let mut obs = healthy(k);
            obs.latest_ready = R1.to_string();
            obs
        };
        let settings = AnalysisSettings::from_spec(&spec(10, 50, 2)).expect("valid");
        let mut c = FlaggerController::new(settings);
        for (minute, phase, failed, weight, routes, split, action) in rows {
            // Tick every minute up to the row (the "…" row of the vector is tick 30).
            let mut out = None;
            while c.next_tick() <= SimTime::ZERO + SimDuration::from_secs(60 * minute) {
                let now = c.next_tick();
                out = Some(c.tick(now, &observe(now.as_nanos() / 60_000_000_000)));
            }
            let out = out.expect("ticked");
            let want: BTreeMap<String, i64> =
                split.iter().map(|(r, p)| (r.to_string(), *p)).collect();
            assert_eq!(
                (
                    out.phase,
                    out.failed_checks,
                    out.canary_weight,
                    out.routes,
                    out.split,
                    out.action
                ),
                (*phase, *failed, *weight, Some(*routes), want, *action),
                "row {minute}m"
            );
        }
    }

    #[test]
    fn v11_pre_rollout_hook_failures_count() {
        // V11: the pre-rollout hook always fails, threshold 3 (scheduler.go:449-457,
        // scheduler_hooks.go:95-109).
        #[rustfmt::skip]
        let rows: &[Row] = &[
            INIT,
            DETECT,
            (2, Progressing, 1, 0, (100, 0), &[(R1, 100)], CheckFailed),
            (3, Progressing, 2, 0, (100, 0), &[(R1, 100)], CheckFailed),
            (4, Progressing, 3, 0, (100, 0), &[(R1, 100)], CheckFailed),
            (5, Failed, 0, 0, (100, 0), &[(R1, 100)], Rollback),
        ];
        let mut s = spec(10, 50, 3);
        s.webhooks = vec![hook("pre", WebhookType::PreRollout)];
        let observe = |k| {
            let mut obs = healthy(k);
            obs.webhooks = vec![false];
            obs
        };
        run_vector(s, observe, rows);
    }

    #[test]
    fn v12_metric_value_to_verdict() {
        let check = |metric, range: Option<(Option<f64>, Option<f64>)>, threshold| MetricCheck {
            metric,
            window: SimDuration::from_secs(60),
            range: range.map(|(min, max)| ThresholdRange { min, max }),
            threshold,
        };
        use BuiltinMetric::{Duration, SuccessRate};
        use MetricReading::{NoValues, Value};
        #[rustfmt::skip]
        let rows = [
            // V12 row 1: 99 < 99 is false (scheduler_metrics.go:165)
            (check(SuccessRate, Some((Some(99.0), None)), 0.0), Value(99.0), Verdict::Pass),
            // V12 row 2
            (check(SuccessRate, Some((Some(99.0), None)), 0.0), Value(98.99), Verdict::Fail(98.99)),
            // V12 row 3: NaN / empty vector = ErrNoValuesFound (prometheus.go:155-172)
            (check(SuccessRate, Some((Some(99.0), None)), 0.0), NoValues, Verdict::NoValues),
            (check(SuccessRate, Some((Some(99.0), None)), 0.0), Value(f64::NAN), Verdict::NoValues),
            // V12 row 4: deprecated threshold, 99 > 98 (scheduler_metrics.go:176)
            (check(SuccessRate, None, 99.0), Value(98.0), Verdict::Fail(98.0)),
            // V12 row 5: 500.9 truncates to 500 ms (knative.go:90)
            (check(Duration, Some((None, Some(500.0))), 0.0), Value(500.9), Verdict::Pass),
            // V12 row 6
            (check(Duration, Some((None, Some(500.0))), 0.0), Value(501.2), Verdict::Fail(501.0)),
            // V12 row 7: neither threshold nor range, 0 ms > 0 is false (scheduler_metrics.go:210)
            (check(Duration, None, 0.0), Value(0.7), Verdict::Pass),
            // V12 row 8
            (check(Duration, None, 0.0), Value(3.0), Verdict::Fail(3.0)),
        ];
        for (i, (c, reading, want)) in rows.iter().enumerate() {
            assert_eq!(evaluate_metric(c, *reading), *want, "row {i}");
        }
    }

    #[test]
    fn v13_interval_parsing() {
        #[rustfmt::skip]
        let rows: [(&str, Option<i64>); 6] = [
            ("", Some(60)),      // V13 row 1: canary.go:638-640
            ("5s", Some(10)),    // V13 row 2: clamped, canary.go:647-649
            ("15s", Some(15)),   // V13 row 3
            ("1m30s", Some(90)), // V13 row 4: passes the start-anchored pattern
            ("1h", None),        // V13 row 5: rejected by crd.yaml:981-984
            ("5sx", Some(60)),   // V13 row 6: passes the pattern, Go cannot parse it: 60 s
        ];
        for (raw, want) in rows {
            let mut s = spec(10, 50, 5);
            s.interval = raw.to_string();
            match (AnalysisSettings::from_spec(&s), want) {
                (Ok(settings), Some(secs)) => {
                    assert_eq!(settings.interval, SimDuration::from_secs(secs), "{raw:?}")
                }
                (Err(e), None) => assert_eq!(e, AnalysisError::IntervalPattern(raw.into())),
                (got, _) => panic!("{raw:?}: {got:?}"),
            }
        }
        // Bypassing the CRD: GetAnalysisInterval alone.
        assert_eq!(analysis_interval("garbage"), SimDuration::from_secs(60));
        assert_eq!(analysis_interval("1h"), SimDuration::from_secs(3600));
    }

    #[test]
    fn go_duration_parser() {
        #[rustfmt::skip]
        let rows: [(&str, Option<i64>); 9] = [
            ("0", Some(0)),
            ("1.5s", Some(1_500_000_000)),
            ("2m3s", Some(123_000_000_000)),
            ("100ms", Some(100_000_000)),
            ("-1s", Some(-1_000_000_000)),
            (".5m", Some(30_000_000_000)),
            ("1", None), // a number needs a unit
            ("s", None),
            ("1d", None),
        ];
        for (raw, want) in rows {
            assert_eq!(parse_go_duration(raw).map(|d| d.0), want, "{raw:?}");
        }
    }

    #[test]
    fn settings_validation_and_defaults() {
        // threshold <= 0 -> 1 (canary.go:654-660); maxWeight 0 -> 100 (scheduler.go:41-51).
        let s = AnalysisSettings::from_spec(&spec(10, 0, 0)).expect("valid");
        assert_eq!((s.threshold, s.max_weight()), (1, 100));
        assert_eq!(s.metrics[0].window, SimDuration::from_secs(60));
        // stepWeights: maxWeight = min(100, last) (scheduler.go:42-45).
        let mut w = spec(0, 0, 1);
        w.step_weight = None;
        w.step_weights = Some(vec![5, 150]);
        let s = AnalysisSettings::from_spec(&w).expect("valid");
        assert_eq!(
            (s.max_weight(), s.next_step_weight(0), s.next_step_weight(5)),
            (100, 5, 95)
        );
        // oneOf (crd.yaml:976-979)
        let mut both = spec(10, 50, 1);
        both.step_weights = Some(vec![10]);
        assert_eq!(
            AnalysisSettings::from_spec(&both),
            Err(AnalysisError::OneOf(2))
        );
        let mut none = spec(10, 50, 1);
        none.step_weight = None;
        assert_eq!(
            AnalysisSettings::from_spec(&none),
            Err(AnalysisError::OneOf(0))
        );
        let mut bg = spec(10, 50, 1);
        bg.step_weight = None;
        bg.iterations = Some(5);
        assert_eq!(
            AnalysisSettings::from_spec(&bg),
            Err(AnalysisError::Iterations)
        );
        let mut custom = spec(10, 50, 1);
        custom.metrics.push(metric("error-rate", None, Some(1.0)));
        assert!(matches!(
            AnalysisSettings::from_spec(&custom),
            Err(AnalysisError::UnknownMetric { index: 2, .. })
        ));
    }

    #[test]
    fn rollback_hook_and_gates() {
        // A rollback hook answering <= 202 rolls back from Progressing (scheduler.go:369-378).
        let mut s = spec(10, 50, 5);
        s.webhooks = vec![
            hook("rb", WebhookType::Rollback),
            hook("ti", WebhookType::ConfirmTrafficIncrease),
        ];
        let mut c = FlaggerController::new(AnalysisSettings::from_spec(&s).expect("valid"));
        c.tick(SimTime::ZERO, &healthy(0));
        c.tick(SimTime::ZERO, &healthy(1));
        // confirm-traffic-increase closed: held, no counter change (scheduler_hooks.go:26-42)
        let mut obs = healthy(2);
        obs.webhooks = vec![false, false];
        let out = c.tick(SimTime::ZERO, &obs);
        assert_eq!(
            (out.action, out.failed_checks, out.check),
            (TrafficIncreaseHeld, 0, Check::Ok)
        );
        obs.webhooks = vec![true, true];
        let out = c.tick(SimTime::ZERO, &obs);
        assert_eq!(
            (out.action, out.phase, out.routes),
            (Rollback, Failed, Some((100, 0)))
        );
    }

    #[test]
    fn confirm_rollout_gate_waits() {
        // confirm-rollout closed: Waiting, retried each tick, no counter (scheduler_hooks.go:44-65).
        let mut s = spec(10, 50, 5);
        s.webhooks = vec![hook("go", WebhookType::ConfirmRollout)];
        let mut c = FlaggerController::new(AnalysisSettings::from_spec(&s).expect("valid"));
        c.tick(SimTime::ZERO, &healthy(0));
        let mut obs = healthy(1);
        obs.webhooks = vec![false];
        for _ in 0..2 {
            let out = c.tick(SimTime::ZERO, &obs);
            assert_eq!((out.phase, out.action), (Waiting, AwaitConfirmRollout));
        }
        obs.webhooks = vec![true];
        assert_eq!(c.tick(SimTime::ZERO, &obs).action, Detected);
    }

    fn run_minutes(
        c: &mut FlaggerController,
        observe: impl Fn(i64) -> Observation,
        minutes: i64,
    ) -> TickOutcome {
        let mut out = None;
        for k in 0..=minutes {
            out = Some(c.tick(SimTime::ZERO + SimDuration::from_secs(60 * k), &observe(k)));
        }
        out.expect("at least one tick")
    }

    #[test]
    fn new_revision_after_failed_or_succeeded_starts_a_new_analysis() {
        // shouldAdvance (scheduler.go:852-884): after Failed (V2 at 10m) and after Succeeded
        // (V1 at 9m), a new latestCreatedRevisionName is a changed target (spec.go:32-49).
        let after = |k0: i64, base: fn(i64) -> Observation| {
            move |k| {
                let mut obs = base(k);
                if k >= k0 {
                    obs = healthy(k);
                    obs.latest_created = R3.to_string();
                    obs.latest_ready = R3.to_string();
                }
                obs
            }
        };
        let failing: fn(i64) -> Observation = |k| {
            let mut obs = healthy(k);
            if k >= 5 {
                obs.metrics[0] = MetricReading::Value(95.0);
            }
            obs
        };
        let settings = AnalysisSettings::from_spec(&spec(10, 50, 5)).expect("valid");
        let mut c = FlaggerController::new(settings.clone());
        let out = run_minutes(&mut c, after(12, failing), 12);
        assert_eq!(
            (out.phase, out.action, out.routes),
            (Progressing, Detected, Some((100, 0)))
        );
        assert_eq!(c.primary_revision(), Some(R1));
        let mut c = FlaggerController::new(settings);
        let out = run_minutes(&mut c, after(11, healthy), 11);
        assert_eq!((out.phase, out.action), (Progressing, Detected));
        assert_eq!((c.primary_revision(), out.primary_share()), (Some(R2), 100));
    }

    #[test]
    fn new_revision_while_promoting_leaves_routes_unreadable() {
        // Spec §3.7 says promotion completes; the code says otherwise on Knative: at the
        // Promoting tick spec.traffic still pins -00001 while the annotation names -00002, so
        // once -00003 is the latest ready revision no status entry names the annotation and
        // GetRoutes fails ("traffic spec invalid", knative.go:94-96) every tick, while the
        // unanalysed -00003 keeps the canary's 50 %.
        let observe = |k| {
            let mut obs = healthy(k);
            if k >= 8 {
                obs.latest_created = R3.to_string();
                obs.latest_ready = R3.to_string();
            }
            obs
        };
        let mut c =
            FlaggerController::new(AnalysisSettings::from_spec(&spec(10, 50, 5)).expect("valid"));
        let out = run_minutes(&mut c, observe, 10);
        assert_eq!(
            (out.phase, out.action, out.routes),
            (Promoting, RoutesUnreadable, None)
        );
        let want: BTreeMap<String, i64> = [(R3.to_string(), 50), (R1.to_string(), 50)].into();
        assert_eq!(out.split, want);
    }

    #[test]
    fn suspend_returns_before_initialize() {
        // spec.suspend (scheduler.go:168-174): nothing is written, not even Initialize.
        let mut s = spec(10, 50, 5);
        s.suspend = true;
        let mut c = FlaggerController::new(AnalysisSettings::from_spec(&s).expect("valid"));
        let out = c.tick(SimTime::ZERO, &healthy(0));
        assert_eq!(
            (out.phase, out.action, out.write, out.routes),
            (Initializing, Suspended, None, None)
        );
    }

    proptest! {
        /// Healthy-or-failing checks with a positive stepWeight: every write sums to 100, the
        /// canary stays below maxWeight + stepWeight (the overshoot), failed checks never
        /// decrease within an analysis, and the analysis ends in Succeeded or Failed within
        /// 2 + ceil(maxWeight/stepWeight) + threshold + 3 ticks.
        #[test]
        fn analysis_terminates_with_valid_weights(
            step in 1i64..=60,
            max in 1i64..=100,
            threshold in 1i64..=5,
            checks in proptest::collection::vec(0u8..3, 200),
        ) {
            let settings = AnalysisSettings::from_spec(&spec(step, max, threshold)).expect("valid");
            let max_weight = settings.max_weight();
            let mut c = FlaggerController::new(settings);
            let bound = 2 + (max + step - 1) / step + threshold + 3;
            let mut prev_failed = 0;
            let mut finished_at = None;
            for k in 0..=bound {
                let mut obs = healthy(k);
                obs.metrics[0] = match checks[k as usize] {
                    0 => MetricReading::Value(100.0),
                    1 => MetricReading::Value(50.0),
                    _ => MetricReading::NoValues,
                };
                let out = c.tick(c.next_tick(), &obs);
                if let Some(w) = &out.write {
                    prop_assert_eq!(w.latest_percent + w.pinned_percent, 100);
                    prop_assert!((0..=100).contains(&w.latest_percent));
                }
                prop_assert!(out.canary_weight >= 0 && out.canary_weight < max_weight + step);
                prop_assert!(out.canary_weight <= 100);
                if out.phase == Progressing && out.action != Detected {
                    prop_assert!(out.failed_checks >= prev_failed);
                }
                prev_failed = out.failed_checks;
                if k > 0 && c.is_finished() {
                    finished_at = Some(k);
                    break;
                }
            }
            prop_assert!(finished_at.is_some(), "not finished within {} ticks", bound);
        }

        /// Any settings and any observations: no panic, and every accepted write is valid.
        #[test]
        fn no_panics_on_any_input(
            step in -200i64..200,
            max in -200i64..200,
            promo in -200i64..200,
            threshold in -3i64..5,
            ladder in proptest::option::of(proptest::collection::vec(-200i64..200, 0..5)),
            skip in any::<bool>(),
            ticks in proptest::collection::vec(
                (0usize..4, 0usize..4, any::<bool>(), -10.0f64..1000.0, any::<bool>(),
                 proptest::collection::vec(any::<bool>(), 0..8)),
                1..60),
        ) {
            let names = [R1, R2, R3, "podinfo-00004"];
            let mut s = spec(step, max, threshold);
            if ladder.is_some() {
                s.step_weight = None;
            }
            s.step_weights = ladder;
            s.step_weight_promotion = Some(promo);
            s.skip_analysis = skip;
            s.webhooks = vec![
                hook("a", WebhookType::ConfirmRollout),
                hook("b", WebhookType::PreRollout),
                hook("c", WebhookType::Rollout),
                hook("d", WebhookType::ConfirmTrafficIncrease),
                hook("e", WebhookType::ConfirmPromotion),
                hook("f", WebhookType::Rollback),
                hook("g", WebhookType::PostRollout),
            ];
            let Ok(settings) = AnalysisSettings::from_spec(&s) else { return Ok(()) };
            let mut c = FlaggerController::new(settings);
            for (created, ready, primary_ready, value, nan, hooks) in ticks {
                let obs = Observation {
                    latest_created: names[created].to_string(),
                    latest_ready: names[ready].to_string(),
                    primary_ready,
                    metrics: vec![MetricReading::Value(if nan { f64::NAN } else { value })],
                    webhooks: hooks,
                };
                let out = c.tick(c.next_tick(), &obs);
                if let Some(w) = &out.write {
                    prop_assert_eq!(w.latest_percent + w.pinned_percent, 100);
                    prop_assert!(w.latest_percent >= 0 && w.pinned_percent >= 0);
                }
                prop_assert!(out.failed_checks >= 0);
            }
        }
    }
}
