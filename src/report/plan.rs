//! `splitlab plan` (issue 13 §2): what a grid of Flagger analysis settings detects, computed
//! from the per-run outcomes the sweep engine collects, beside the analytic detection
//! probability of the success-rate check.
//!
//! Owns: the `--regression SPEC` grammar (`Regression`), a run's outcome as plan reads it
//! (`SeedOutcome`), the per setting × regression statistics (`PlanRow`: the Wilson 95%
//! interval of the rollback probability, medians, means), the analytic rollback probability
//! (`analytic_rollback_prob`: a Markov chain over Flagger's failed-check counter), the
//! recommendation rule (`recommend`) and the layout of `plan.csv`.
//!
//! Must not: run simulations, read files or print; the CLI (`cli::plan`) does.
//!
//! Definitions (docs/plan.md says the same):
//! - *detect*: the regressed canary's analysis ends `Failed` (Flagger rolled it back) before
//!   the run ends; *time to detect* is the rollback tick minus the canary's creation.
//! - *time to promote*: the healthy canary's Promote tick minus its creation.
//! - *requests hurt*: the regressed canary's 5xx answers while it was not the primary
//!   (summary `analysis.canary_failed_requests`).

use std::fmt::Write as _;

use crate::model::failure::{FailureSpec, LatencyFault};
use crate::model::flagger::{
    evaluate_metric, AnalysisSettings, BuiltinMetric, MetricCheck, MetricReading, Verdict,
};
use crate::model::time::{SimDuration, SimTime};

use super::accuracy::{binomial_cdf, Z95};
use super::write::Fixed3;

/// The file `splitlab plan` writes its table to.
pub const PLAN_FILE: &str = "plan.csv";

/// `plan.csv`'s header.
pub const PLAN_HEADER: &str = "setting,regression,seeds,detect_prob,detect_ci95_low,\
detect_ci95_high,false_rollback_prob,median_detect_s,median_promote_s,requests_hurt_mean,\
analytic_detect_prob";

/// A bad `--regression` value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RegressionError {
    #[error(
        "invalid --regression {0:?}: allowed: error_rate=F (a fraction, 0 < F <= 1, e.g. \
         error_rate=0.02) or latency=Mx (a service-time multiplier > 0, e.g. latency=1.5x)"
    )]
    Syntax(String),
    #[error("invalid --regression {spec:?}: {message}")]
    Value { spec: String, message: String },
}

/// A regression applied to the canary: its label in `plan.csv` and the failure settings that
/// replace the canary revision's `failure:` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    pub label: String,
    pub failure: FailureSpec,
}

impl Regression {
    /// Parses `error_rate=F` or `latency=Mx`.
    pub fn parse(spec: &str) -> Result<Self, RegressionError> {
        let syntax = || RegressionError::Syntax(spec.to_string());
        let value = |message: String| RegressionError::Value {
            spec: spec.to_string(),
            message,
        };
        let (key, raw) = spec.split_once('=').ok_or_else(syntax)?;
        let (key, raw) = (key.trim(), raw.trim());
        match key {
            "error_rate" => {
                let rate: f64 = raw
                    .parse()
                    .map_err(|_| value(format!("{raw:?} is not a number; allowed: 0 < F <= 1")))?;
                if !(rate > 0.0 && rate <= 1.0) {
                    return Err(value(format!("{raw} is not allowed; allowed: 0 < F <= 1")));
                }
                Ok(Regression {
                    label: format!("error_rate={raw}"),
                    failure: FailureSpec {
                        error_rate: rate,
                        ..FailureSpec::default()
                    },
                })
            }
            "latency" => {
                let m: f64 = raw
                    .strip_suffix('x')
                    .and_then(|m| m.trim().parse().ok())
                    .ok_or_else(|| {
                        value(format!(
                            "{raw:?} is not a multiplier; allowed: Mx with M > 0, e.g. 1.5x"
                        ))
                    })?;
                if !(m.is_finite() && m > 0.0) {
                    return Err(value(format!("{raw} is not allowed; allowed: M > 0")));
                }
                Ok(Regression {
                    label: format!("latency={raw}"),
                    failure: FailureSpec {
                        latency: Some(LatencyFault {
                            multiplier: m,
                            added: None,
                        }),
                        ..FailureSpec::default()
                    },
                })
            }
            _ => Err(syntax()),
        }
    }

    /// The scenario canary's own failure as the regression (when no `--regression` is given).
    pub fn from_scenario(failure: &FailureSpec) -> Self {
        Regression {
            label: describe_failure(failure),
            failure: failure.clone(),
        }
    }
}

/// A short label for a failure block: `error_rate=0.05`, `latency=2x`, else `scenario failure`.
fn describe_failure(f: &FailureSpec) -> String {
    let healthy_but = |g: &FailureSpec| {
        FailureSpec {
            error_rate: 0.0,
            error_status: f.error_status,
            latency: None,
            ..g.clone()
        } == FailureSpec {
            error_status: f.error_status,
            ..FailureSpec::default()
        }
    };
    if !healthy_but(f) {
        return "scenario failure".to_string();
    }
    let mut parts = Vec::new();
    if f.error_rate > 0.0 {
        parts.push(format!("error_rate={}", f.error_rate));
    }
    if let Some(l) = &f.latency {
        if l.added.is_some() {
            return "scenario failure".to_string();
        }
        parts.push(format!("latency={}x", l.multiplier));
    }
    if parts.is_empty() {
        "healthy".to_string()
    } else {
        parts.join("+")
    }
}

/// One run's analysis, as plan reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeedOutcome {
    /// The analysis ended `Failed`: Flagger rolled the canary back.
    pub rolled_back: bool,
    /// Rollback tick minus the canary's creation (s), when rolled back.
    pub detect_s: Option<f64>,
    /// Promote tick minus the canary's creation (s), when promoted.
    pub promote_s: Option<f64>,
    /// The canary's 5xx answers while it was not the primary.
    pub hurt: u64,
}

impl SeedOutcome {
    /// From summary.json's `analysis` values: the final `phase`, `finished_s`, `promoted_s`
    /// and `canary_failed_requests`; `created_s` is the canary's creation.
    pub fn new(
        phase: &str,
        finished_s: Option<f64>,
        promoted_s: Option<f64>,
        canary_failed_requests: u64,
        created_s: f64,
    ) -> Self {
        let rolled_back = phase == "Failed";
        let since = |t: f64| ((t - created_s) * 1e3).round() / 1e3;
        SeedOutcome {
            rolled_back,
            detect_s: finished_s.filter(|_| rolled_back).map(since),
            promote_s: promoted_s.map(since),
            hurt: canary_failed_requests,
        }
    }
}

/// The Wilson score 95% interval of a binomial proportion with `k` successes in `n` trials
/// (Wilson 1927): `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`. Unlike the Wald
/// interval it stays inside [0, 1] and is not degenerate at 0 or n successes. `n = 0`:
/// `(0, 1)`.
pub fn wilson95(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let center = p + z2 / (2.0 * n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    (
        ((center - half) / denom).max(0.0),
        ((center + half) / denom).min(1.0),
    )
}

/// The median of `xs` (the mean of the middle two for an even count); `None` when empty.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// One line of `plan.csv`: a setting against one regression.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub setting: String,
    pub regression: String,
    pub seeds: usize,
    /// Share of the regressed runs rolled back.
    pub detect_prob: f64,
    pub detect_ci95: (f64, f64),
    /// Share of the healthy runs rolled back (the same on every row of a setting).
    pub false_rollback_prob: f64,
    /// Median time to detect over the regressed runs rolled back.
    pub median_detect_s: Option<f64>,
    /// Median time to promote over the healthy runs promoted.
    pub median_promote_s: Option<f64>,
    /// Mean requests hurt over all regressed runs.
    pub requests_hurt_mean: f64,
    /// `analytic_rollback_prob` for this setting and regression, when it applies.
    pub analytic_detect_prob: Option<f64>,
}

impl PlanRow {
    /// The row of `setting` × `regression` from the healthy canary's runs and the regressed
    /// canary's runs (the same seeds, in order).
    pub fn new(
        setting: &str,
        regression: &str,
        healthy: &[SeedOutcome],
        regressed: &[SeedOutcome],
        analytic_detect_prob: Option<f64>,
    ) -> Self {
        let n = regressed.len();
        let detected = regressed.iter().filter(|o| o.rolled_back).count();
        let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let false_rollbacks = healthy.iter().filter(|o| o.rolled_back).count();
        PlanRow {
            setting: setting.to_string(),
            regression: regression.to_string(),
            seeds: n,
            detect_prob: share(detected, n),
            detect_ci95: wilson95(detected, n),
            false_rollback_prob: share(false_rollbacks, healthy.len()),
            median_detect_s: median(regressed.iter().filter_map(|o| o.detect_s).collect()),
            median_promote_s: median(healthy.iter().filter_map(|o| o.promote_s).collect()),
            requests_hurt_mean: if n == 0 {
                0.0
            } else {
                regressed.iter().map(|o| o.hurt as f64).sum::<f64>() / n as f64
            },
            analytic_detect_prob,
        }
    }
}

/// `plan.csv`: the header and one line per row, numbers with 3 decimals, empty when undefined.
pub fn plan_csv(rows: &[PlanRow]) -> String {
    let num = |x: Option<f64>| {
        x.filter(|v| v.is_finite())
            .map(|v| Fixed3(v).to_string())
            .unwrap_or_default()
    };
    let mut out = format!("{PLAN_HEADER}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            super::write::csv_field(&r.setting),
            super::write::csv_field(&r.regression),
            r.seeds,
            num(Some(r.detect_prob)),
            num(Some(r.detect_ci95.0)),
            num(Some(r.detect_ci95.1)),
            num(Some(r.false_rollback_prob)),
            num(r.median_detect_s),
            num(r.median_promote_s),
            num(Some(r.requests_hurt_mean)),
            num(r.analytic_detect_prob),
        );
    }
    out
}

/// The recommendation rule: among the settings (labels in grid order) whose every row has
/// `detect_prob >= power` and `false_rollback_prob <= max_false_rollback`, and whose healthy
/// canary was promoted (a median time to promote), the one with the smallest median time to
/// promote; the first in grid order on a tie. `None`: no setting qualifies.
pub fn recommend(
    settings: &[String],
    rows: &[PlanRow],
    power: f64,
    max_false_rollback: f64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, label) in settings.iter().enumerate() {
        let mine: Vec<&PlanRow> = rows.iter().filter(|r| &r.setting == label).collect();
        let Some(promote) = mine.first().and_then(|r| r.median_promote_s) else {
            continue;
        };
        let ok = !mine.is_empty()
            && mine
                .iter()
                .all(|r| r.detect_prob >= power && r.false_rollback_prob <= max_false_rollback);
        if ok && best.is_none_or(|(_, b)| promote < b) {
            best = Some((i, promote));
        }
    }
    best.map(|(i, _)| i)
}

// ---------------------------------------------------------------------------------------------
// The analytic detection probability
// ---------------------------------------------------------------------------------------------

/// What the analytic model needs of a scenario besides Flagger's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalyticTraffic {
    /// `analysis.start`: the job's first tick.
    pub start: SimTime,
    /// When the canary revision is created.
    pub created: SimTime,
    /// The run's end: no tick after it.
    pub end: SimTime,
    /// The Service's request rate (constant).
    pub rate_per_s: f64,
}

/// The probability that Flagger rolls back a canary whose requests fail (5xx) independently
/// with probability `error_rate`, judged by the first success-rate metric alone (other
/// metrics are taken to pass), before the run ends. `None` when the analysis has no
/// success-rate metric.
///
/// The model follows Flagger's tick (spec §3.3, §3.4, §8 "computed properties"): tick 0 at
/// `start` initializes; the first later tick at or after the canary's creation detects it; the
/// next writes the first step (pre-rollout hooks, no metric); from then on each tick first
/// rolls back when `failedChecks >= threshold`, else runs the check: a failure adds one and
/// holds the weight, a pass advances it by `nextStepWeight` (capped at 100) or, at
/// `maxWeight`, promotes (absorbing). A Markov chain over (the weights in force over the
/// metric's window, failedChecks) carries the probabilities from tick to tick.
///
/// Arrivals are Poisson and each is routed to the canary with its weight's probability, so in
/// a stretch of the window the canary's successes S and failures X are independent Poisson
/// counts (means λ(1 − error_rate) and λ·error_rate, λ = rate × weight × length). The check
/// fails on zero requests ("no values found") or a success rate under its minimum.
/// - Window <= interval (`1m` window, `1m` or longer interval): consecutive windows share no
///   request, checks are independent given the weights: each fails with
///   `check_failure_prob` (the verdict from Flagger's own `evaluate_metric`). Exact.
/// - Window = 2 × interval (`1m` window, `30s` interval, as the shipped scenarios): each
///   window is the previous interval and the last one, so consecutive checks share half their
///   requests. The chain then also carries the distribution of the previous interval's margin
///   `D = a·S − b·X` (the success rate passes iff the window's `D >= 0`, with `a/b = (100 −
///   min)/min` in lowest terms), conditioned on the checks so far. Exact.
/// - Other ratios: checks are taken as independent given the weights (an approximation: a
///   window longer than the interval makes consecutive checks positively correlated).
///
/// Assumed: the canary is Ready by the tick after detection, webhooks pass, a weight applies
/// at its tick (the ingress programming delay, under a second, is ignored), and no canary
/// request fails for another reason (overload).
pub fn analytic_rollback_prob(
    settings: &AnalysisSettings,
    traffic: &AnalyticTraffic,
    error_rate: f64,
) -> Option<f64> {
    let check = settings
        .metrics
        .iter()
        .find(|m| m.metric == BuiltinMetric::SuccessRate)?;
    let interval = settings.interval.max(SimDuration::from_secs(1));
    let tick_at = |k: i64| traffic.start + SimDuration(interval.0.saturating_mul(k));
    // Tick 0 initializes; a revision created at tick 0's instant is seen at tick 1 (the job's
    // first tick is scheduled before the timeline's events).
    let mut detect = 1i64;
    while tick_at(detect) < traffic.created {
        detect += 1;
    }
    let first_step = settings.next_step_weight(0).clamp(0, 100);
    let ticks = (detect + 2..)
        .take_while(|&k| tick_at(k) <= traffic.end)
        .count();
    let p = error_rate.clamp(0.0, 1.0);
    let chain = Chain {
        settings,
        interval,
        rate_per_s: traffic.rate_per_s,
        p,
    };
    let lattice = margin_lattice(check);
    Some(match lattice {
        Some((a, b)) if check.window.0 == 2 * interval.0 => chain.carried(first_step, ticks, a, b),
        _ => chain.independent(check, first_step, ticks),
    })
}

/// The success-rate check as a lattice: it passes iff `a·S − b·X >= 0` (S successes, X
/// failures, not both zero), `a/b = (100 − min)/min` in lowest terms (`min` to 3 decimals).
/// `None` when the minimum is not in (0, 100).
fn margin_lattice(check: &MetricCheck) -> Option<(i64, i64)> {
    let min = match check.range {
        Some(r) => r.min?,
        None => check.threshold,
    };
    if !(min > 0.0 && min < 100.0) {
        return None;
    }
    let a = ((100.0 - min) * 1000.0).round() as i64;
    let b = (min * 1000.0).round() as i64;
    let g = gcd(a, b).max(1);
    Some((a / g, b / g))
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// The distribution of one stretch's margin `D = a·S − b·X`: a dense vector from `lo`, with the
/// mass of "no request at all" kept apart in `empty` (it fails a check when the whole window is
/// empty, whatever D).
#[derive(Clone, Debug, PartialEq)]
struct Margin {
    lo: i64,
    p: Vec<f64>,
    empty: f64,
}

impl Margin {
    fn none() -> Self {
        Margin {
            lo: 0,
            p: Vec::new(),
            empty: 1.0,
        }
    }

    /// S ~ Poisson(λ(1 − p)), X ~ Poisson(λp), independent.
    fn of_stretch(lambda: f64, p: f64, a: i64, b: i64) -> Self {
        let s = poisson_pmf(lambda * (1.0 - p));
        let x = poisson_pmf(lambda * p);
        let (s_lo, x_lo) = (s.0 as i64, x.0 as i64);
        let (s_hi, x_hi) = (s_lo + s.1.len() as i64 - 1, x_lo + x.1.len() as i64 - 1);
        let lo = a * s_lo - b * x_hi;
        let hi = a * s_hi - b * x_lo;
        let mut p_d = vec![0.0; (hi - lo + 1).max(0) as usize];
        let mut empty = 0.0;
        for (i, ps) in s.1.iter().enumerate() {
            for (j, px) in x.1.iter().enumerate() {
                let (sv, xv) = (s_lo + i as i64, x_lo + j as i64);
                let mass = ps * px;
                if sv == 0 && xv == 0 {
                    empty += mass;
                } else {
                    p_d[(a * sv - b * xv - lo) as usize] += mass;
                }
            }
        }
        Margin { lo, p: p_d, empty }
    }

    fn total(&self) -> f64 {
        self.empty + self.p.iter().sum::<f64>()
    }

    /// Adds `other` (same layout, or empty vectors) into `self`.
    fn add(&mut self, other: &Margin) {
        if self.p.is_empty() && self.empty == 0.0 {
            *self = other.clone();
            return;
        }
        self.empty += other.empty;
        if self.p.is_empty() {
            self.lo = other.lo;
            self.p = other.p.clone();
            return;
        }
        // Same weight, same stretch: the same layout (checked, not assumed).
        if other.p.is_empty() {
            return;
        }
        assert_eq!(
            (self.lo, self.p.len()),
            (other.lo, other.p.len()),
            "carried margins of one chain state share their stretch"
        );
        for (x, y) in self.p.iter_mut().zip(&other.p) {
            *x += y;
        }
    }
}

/// Poisson(mean)'s pmf over mean ± 12 sd (+20), as (first value, probabilities).
fn poisson_pmf(mean: f64) -> (u64, Vec<f64>) {
    // NaN and non-positive means alike: no event.
    if mean.is_nan() || mean <= 0.0 {
        return (0, vec![1.0]);
    }
    let sd = mean.sqrt();
    let hi = (mean + 12.0 * sd + 20.0).ceil() as u64;
    let lo = (mean - 12.0 * sd - 20.0).floor().max(0.0) as u64;
    let ln_mean = mean.ln();
    let mut ln_fact = 0.0f64;
    let mut out = Vec::with_capacity((hi - lo + 1) as usize);
    for n in 0..=hi {
        if n > 0 {
            ln_fact += (n as f64).ln();
        }
        if n >= lo {
            out.push((-mean + n as f64 * ln_mean - ln_fact).exp());
        }
    }
    (lo, out)
}

/// The chain's fixed inputs.
struct Chain<'a> {
    settings: &'a AnalysisSettings,
    interval: SimDuration,
    rate_per_s: f64,
    p: f64,
}

impl Chain<'_> {
    /// The weight after a passed check at `w`, or `None` when the pass promotes.
    fn advance(&self, w: i64) -> Option<i64> {
        if w >= self.settings.max_weight() {
            return None;
        }
        let step = self.settings.next_step_weight(w);
        Some(if step > 0 { (w + step).min(100) } else { w })
    }

    /// Checks independent given the weights over the window (see `analytic_rollback_prob`).
    fn independent(&self, check: &MetricCheck, first_step: i64, ticks: usize) -> f64 {
        let span = (check.window.0.max(1) + self.interval.0 - 1) / self.interval.0;
        let span = usize::try_from(span).unwrap_or(1).max(1);
        type States = std::collections::BTreeMap<(Vec<i64>, i64), f64>;
        let mut states = States::new();
        let mut hist = vec![0; span];
        hist.insert(0, first_step);
        hist.truncate(span);
        states.insert((hist, 0), 1.0);
        let mut rolled_back = 0.0;
        let mut cache: Vec<(u64, f64)> = Vec::new();
        let push = |h: &[i64], w: i64| {
            let mut h2 = h.to_vec();
            h2.insert(0, w);
            h2.truncate(span);
            h2
        };
        for _ in 0..ticks {
            let mut next = States::new();
            for ((hist, failed), prob) in states {
                if failed >= self.settings.threshold {
                    rolled_back += prob;
                    continue;
                }
                let lambda =
                    expected_in_window(&hist, self.interval, check.window, self.rate_per_s);
                // λ is a sum of weight × overlap terms: cached by its exact bits.
                let q = match cache.iter().find(|(b, _)| *b == lambda.to_bits()) {
                    Some((_, q)) => *q,
                    None => {
                        let q = check_failure_prob(check, lambda, self.p);
                        cache.push((lambda.to_bits(), q));
                        q
                    }
                };
                if q > 0.0 {
                    *next.entry((push(&hist, hist[0]), failed + 1)).or_default() += prob * q;
                }
                if q < 1.0 {
                    if let Some(w) = self.advance(hist[0]) {
                        *next.entry((push(&hist, w), failed)).or_default() += prob * (1.0 - q);
                    }
                }
            }
            states = next;
        }
        rolled_back.clamp(0.0, 1.0)
    }

    /// Window = 2 × interval: the chain also carries the previous interval's margin.
    fn carried(&self, first_step: i64, ticks: usize, a: i64, b: i64) -> f64 {
        // (weight now, weight of the last interval, failed) -> the last interval's margin
        // (its mass is the state's probability).
        type States = std::collections::BTreeMap<(i64, i64, i64), Margin>;
        let mut states = States::new();
        // The interval before the first step had weight 0: no canary request.
        states.insert((first_step, 0, 0), Margin::none());
        let mut rolled_back = 0.0;
        let mut pieces: std::collections::BTreeMap<i64, Margin> = Default::default();
        for _ in 0..ticks {
            let mut next = States::new();
            for ((w, _, failed), carry) in states {
                if failed >= self.settings.threshold {
                    rolled_back += carry.total();
                    continue;
                }
                let piece = pieces.entry(w).or_insert_with(|| {
                    let lambda = self.rate_per_s * (w as f64 / 100.0) * self.interval.as_secs_f64();
                    Margin::of_stretch(lambda, self.p, a, b)
                });
                let (pass, fail) = split_on_check(&carry, piece);
                next.entry((w, w, failed + 1))
                    .or_insert_with(|| Margin {
                        lo: 0,
                        p: Vec::new(),
                        empty: 0.0,
                    })
                    .add(&fail);
                if let Some(w2) = self.advance(w) {
                    next.entry((w2, w, failed))
                        .or_insert_with(|| Margin {
                            lo: 0,
                            p: Vec::new(),
                            empty: 0.0,
                        })
                        .add(&pass);
                }
            }
            states = next;
        }
        rolled_back.clamp(0.0, 1.0)
    }
}

/// One check over `carry` (the previous interval, as carried: its mass is the state's
/// probability) and `piece` (the last interval's distribution): the last interval's margin
/// jointly with "the check passed", and with "it failed". The check passes iff the window is
/// not empty and its margin is >= 0.
fn split_on_check(carry: &Margin, piece: &Margin) -> (Margin, Margin) {
    // ge[i]: carry's non-empty mass with D >= lo + i; suffix sums.
    let n = carry.p.len();
    let mut ge = vec![0.0; n + 1];
    for i in (0..n).rev() {
        ge[i] = ge[i + 1] + carry.p[i];
    }
    let carry_nonempty = ge[0];
    let total = carry.empty + carry_nonempty;
    // Carry mass (empty included) with D >= y; the empty carry has D = 0.
    let at_least = |y: i64| -> f64 {
        let idx = y - carry.lo;
        let nonempty = if idx <= 0 {
            carry_nonempty
        } else if idx as usize >= n {
            0.0
        } else {
            ge[idx as usize]
        };
        nonempty + if y <= 0 { carry.empty } else { 0.0 }
    };
    let mut pass = Margin {
        lo: piece.lo,
        p: vec![0.0; piece.p.len()],
        empty: 0.0,
    };
    let mut fail = pass.clone();
    for (i, &pd) in piece.p.iter().enumerate() {
        if pd == 0.0 {
            continue;
        }
        let d = piece.lo + i as i64;
        let ok = pd * at_least(-d);
        pass.p[i] = ok;
        fail.p[i] = (pd * total - ok).max(0.0);
    }
    // An empty last interval: the window is the carry alone, and an empty carry fails.
    let ok = piece.empty * (at_least(0) - carry.empty);
    pass.empty = ok;
    fail.empty = (piece.empty * total - ok).max(0.0);
    (pass, fail)
}

/// The expected canary requests finished in the metric window ending at a tick: the rate times
/// each step's weight times the part of the window it held (newest first).
fn expected_in_window(
    hist: &[i64],
    interval: SimDuration,
    window: SimDuration,
    rate_per_s: f64,
) -> f64 {
    let mut lambda = 0.0;
    for (j, w) in hist.iter().enumerate() {
        let from = interval.0.saturating_mul(j as i64);
        let overlap = (window.0 - from).clamp(0, interval.0);
        lambda += rate_per_s * (*w as f64 / 100.0) * (overlap as f64 / 1e9);
    }
    lambda
}

/// The probability that one check of the success rate fails with a Poisson(`lambda`) canary
/// count in the window and each request failing with `error_rate`.
pub fn check_failure_prob(check: &MetricCheck, lambda: f64, error_rate: f64) -> f64 {
    let p = error_rate.clamp(0.0, 1.0);
    // No requests (λ ≤ 0 or NaN: the pmf is 1 at n = 0) is "no values": a failed check.
    let (lo, pmf) = poisson_pmf(lambda);
    pmf.iter()
        .enumerate()
        .filter(|(_, pn)| **pn > 0.0)
        .map(|(i, pn)| pn * fail_given_n(check, lo + i as u64, p))
        .sum::<f64>()
        .clamp(0.0, 1.0)
}

/// P(the check fails | n requests in the window), failures ~ Binomial(n, p).
fn fail_given_n(check: &MetricCheck, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let passes = |x: u64| {
        let rate = (n - x) as f64 / n as f64 * 100.0;
        evaluate_metric(check, MetricReading::Value(rate)) == Verdict::Pass
    };
    // The verdict is monotone in the failure count: find the most failures that still pass.
    let guess = match check.range.and_then(|r| r.min) {
        Some(min) => (n as f64 * (1.0 - min / 100.0)).floor(),
        None => (n as f64 * (1.0 - check.threshold / 100.0)).floor(),
    };
    let mut k = guess.clamp(0.0, n as f64) as i64;
    while k < n as i64 && passes((k + 1) as u64) {
        k += 1;
    }
    while k >= 0 && !passes(k as u64) {
        k -= 1;
    }
    if k < 0 {
        return 1.0;
    }
    1.0 - binomial_cdf(k as u64, n, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flagger::{AnalysisSpec, MetricSpec, ThresholdRange};

    fn sr_check(min: f64) -> MetricCheck {
        MetricCheck {
            metric: BuiltinMetric::SuccessRate,
            window: SimDuration::from_secs(60),
            range: Some(ThresholdRange {
                min: Some(min),
                max: None,
            }),
            threshold: 0.0,
        }
    }

    #[test]
    fn wilson_interval_matches_known_values() {
        // (k, n, low, high): reference values from R's prop.test(correct = FALSE) / the
        // formula, 1e-4.
        let cases = [
            (0, 10, 0.0, 0.277_5),       // none: the upper bound is z²/(n+z²)
            (10, 10, 0.722_5, 1.0),      // all: mirrored
            (5, 10, 0.236_6, 0.763_4),   // half
            (81, 100, 0.722_2, 0.874_9), // a proportion in between
            (0, 0, 0.0, 1.0),            // no trials: anything goes
        ];
        for (k, n, lo, hi) in cases {
            let (l, h) = wilson95(k, n);
            assert!((l - lo).abs() < 1e-4, "{k}/{n}: low {l} != {lo}");
            assert!((h - hi).abs() < 1e-4, "{k}/{n}: high {h} != {hi}");
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        // (values, median)
        let cases: [(Vec<f64>, Option<f64>); 3] = [
            (vec![3.0, 1.0, 2.0], Some(2.0)),      // odd: the middle one
            (vec![4.0, 1.0, 2.0, 3.0], Some(2.5)), // even: the mean of the middle two
            (vec![], None),                        // none
        ];
        for (xs, want) in cases {
            assert_eq!(median(xs.clone()), want, "{xs:?}");
        }
    }

    #[test]
    fn regressions_parse_or_name_what_is_allowed() {
        // (spec, Ok(label) or Err(fragment))
        let cases: [(&str, Result<&str, &str>); 9] = [
            ("error_rate=0.02", Ok("error_rate=0.02")), // a 2 % error rate
            ("latency=1.5x", Ok("latency=1.5x")),       // 1.5 × the service time
            ("error_rate=0", Err("0 < F <= 1")),        // zero is no regression
            ("error_rate=1.2", Err("0 < F <= 1")),      // above 1
            ("error_rate=abc", Err("\"abc\" is not a number")), // not a number
            ("latency=1.5", Err("allowed: Mx")),        // no x
            ("latency=-2x", Err("allowed: M > 0")),     // negative
            ("crash=1", Err("allowed: error_rate=F")),  // unknown kind
            ("error_rate", Err("allowed: error_rate=F")), // no value
        ];
        for (spec, want) in cases {
            match (Regression::parse(spec), want) {
                (Ok(r), Ok(label)) => assert_eq!(r.label, label, "{spec}"),
                (Err(e), Err(fragment)) => {
                    let msg = e.to_string();
                    assert!(msg.contains(fragment), "{spec}: {msg}");
                    assert!(msg.contains(spec), "{spec}: the value is named: {msg}");
                }
                (got, want) => panic!("{spec}: {got:?}, want {want:?}"),
            }
        }
        let r = Regression::parse("latency=2x").expect("valid");
        assert_eq!(r.failure.latency.map(|l| l.multiplier), Some(2.0));
        assert_eq!(
            Regression::parse("error_rate=0.05")
                .expect("valid")
                .failure
                .error_rate,
            0.05
        );
    }

    #[test]
    fn scenario_failures_are_labelled() {
        // (failure, label)
        let cases = [
            (
                FailureSpec {
                    error_rate: 0.05,
                    ..FailureSpec::default()
                },
                "error_rate=0.05",
            ),
            (
                FailureSpec {
                    crash_loop: true,
                    ..FailureSpec::default()
                },
                "scenario failure",
            ),
            (FailureSpec::default(), "healthy"),
        ];
        for (f, want) in cases {
            assert_eq!(Regression::from_scenario(&f).label, want);
        }
    }

    #[test]
    fn binomial_cdf_known_values() {
        // (k, n, p, P(X <= k))
        let cases = [
            (0, 10, 0.5, 1.0 / 1024.0),   // all tails
            (5, 10, 0.5, 638.0 / 1024.0), // half or fewer
            (2, 100, 0.01, 0.920_626_8),  // Poisson-like small p
            (10, 5_000, 0.05, 0.0),       // far below the mean 250: underflows to 0
            (10, 10, 0.3, 1.0),           // k = n
        ];
        for (k, n, p, want) in cases {
            let got = binomial_cdf(k, n, p);
            assert!(
                (got - want).abs() < 1e-6,
                "({k}, {n}, {p}): {got} != {want}"
            );
        }
    }

    #[test]
    fn a_check_fails_as_flaggers_verdict_says() {
        let check = sr_check(99.0);
        // (λ, error rate, failure probability, tolerance)
        let cases = [
            // No traffic: "no values found" every time.
            (0.0, 0.0, 1.0, 0.0),
            // A healthy canary at λ = 2: fails only when no request came, e^-2.
            (2.0, 0.0, (-2.0f64).exp(), 1e-12),
            // A 5 % error rate at λ = 300: failures X ~ Poisson(15) and successes S ~
            // Poisson(285) are independent; the check passes iff S >= 99 X. Summed
            // independently (Python, the same f64 rate formula): 1 − 8.167e-5.
            (300.0, 0.05, 0.999_918_328_442_013_4, 1e-9),
            // λ = 1, p = 0.01: n = 0 fails, and below n = 100 any failure takes the rate under
            // 99 %: e^-1 + Σ_{n>=1} P(n) (1 − 0.99^n) = 1 − e^-0.01 + e^-1 (n >= 100 is
            // negligible at λ = 1).
            (1.0, 0.01, 1.0 - (-0.01f64).exp() + (-1.0f64).exp(), 1e-9),
        ];
        for (lambda, p, want, tol) in cases {
            let got = check_failure_prob(&check, lambda, p);
            assert!(
                (got - want).abs() <= tol,
                "λ {lambda}, p {p}: {got} != {want}"
            );
        }
    }

    fn settings(step: i64, max: i64, threshold: i64, interval: &str) -> AnalysisSettings {
        AnalysisSettings::from_spec(&AnalysisSpec {
            interval: interval.into(),
            threshold: Some(threshold),
            step_weight: Some(step),
            max_weight: Some(max),
            metrics: vec![MetricSpec {
                name: "request-success-rate".into(),
                min: Some(99.0),
                interval: "1m".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .expect("valid")
    }

    fn traffic(rate: f64, end_s: i64) -> AnalyticTraffic {
        AnalyticTraffic {
            start: SimTime::ZERO,
            created: SimTime::ZERO + SimDuration::from_secs(20),
            end: SimTime::ZERO + SimDuration::from_secs(end_s),
            rate_per_s: rate,
        }
    }

    #[test]
    fn analytic_probability_in_the_limits() {
        let s = settings(10, 50, 5, "30s");
        // (traffic, error rate, rollback probability, tolerance)
        let cases = [
            // A 5 % error rate at 100 req/s: a check passes with probability < 1e-4 (see
            // a_check_fails_as_flaggers_verdict_says); rollback all but certain.
            (traffic(100.0, 330), 0.05, 1.0, 1e-6),
            // Healthy at 100 req/s: checks never fail.
            (traffic(100.0, 330), 0.0, 0.0, 1e-9),
            // No traffic at all: every check is "no values found": rolled back.
            (traffic(0.0, 330), 0.0, 1.0, 1e-9),
            // The run ends before the rollback tick: detection at 30 s, first step at 60 s,
            // failing checks at 90..210 s (5), rollback at 240 s > 230 s.
            (traffic(100.0, 230), 0.05, 0.0, 1e-9),
            // ... and at 240 s it is in, unless one of the five checks passes: the first (λ =
            // 300, weight 10 over half the window) with probability 8.2e-5, the others (λ =
            // 600) far less often.
            (traffic(100.0, 240), 0.05, 0.999_918, 1e-6),
        ];
        for (i, (t, p, want, tol)) in cases.iter().enumerate() {
            let got = analytic_rollback_prob(&s, t, *p).expect("a success-rate metric");
            assert!((got - want).abs() <= *tol, "case {i}: {got} != {want}");
        }
    }

    #[test]
    fn analytic_probability_matches_a_hand_computed_chain() {
        // threshold 1, stepWeight 50, maxWeight 50, interval 1m, window 1m: one check at weight
        // 50 (λ = rate × 0.5 × 60), then promotion or rollback. The rollback probability is
        // exactly that check's failure probability.
        let s = settings(50, 50, 1, "1m");
        let t = traffic(1.0, 600);
        let lambda = 30.0;
        let want = check_failure_prob(&s.metrics[0], lambda, 0.02);
        let got = analytic_rollback_prob(&s, &t, 0.02).expect("sr metric");
        assert!((got - want).abs() < 1e-12, "{got} != {want}");
        // threshold 2: two failures before the single pass that promotes: q² (each fail holds
        // the weight at 50, so λ is the same each tick).
        let s2 = settings(50, 50, 2, "1m");
        let got2 = analytic_rollback_prob(&s2, &t, 0.02).expect("sr metric");
        assert!(
            (got2 - want * want).abs() < 1e-12,
            "{got2} != {}",
            want * want
        );
        // Without a success-rate metric there is no analytic figure.
        let mut s3 = s.clone();
        s3.metrics[0].metric = BuiltinMetric::Duration;
        assert_eq!(analytic_rollback_prob(&s3, &t, 0.02), None);
    }

    /// The rollback probability by brute force: every count of successes and failures in every
    /// interval, the verdict from Flagger's `evaluate_metric` on the window's counts.
    fn brute_force(
        s: &AnalysisSettings,
        rate: f64,
        p: f64,
        ticks: usize,
        state: (i64, (u64, u64), i64),
    ) -> f64 {
        let (w, carry, failed) = state;
        // The rollback needs a tick of its own.
        if ticks == 0 {
            return 0.0;
        }
        if failed >= s.threshold {
            return 1.0;
        }
        let lambda = rate * w as f64 / 100.0 * s.interval.as_secs_f64();
        let pmf = |mean: f64, k: u64| {
            (-mean + k as f64 * mean.ln() - (1..=k).map(|i| (i as f64).ln()).sum::<f64>()).exp()
        };
        let mut total = 0.0;
        for sv in 0..=16u64 {
            for xv in 0..=8u64 {
                let prob = pmf(lambda * (1.0 - p), sv) * pmf(lambda * p, xv);
                let (n, x) = (carry.0 + carry.1 + sv + xv, carry.1 + xv);
                let reading = if n == 0 {
                    MetricReading::NoValues
                } else {
                    MetricReading::Value((n - x) as f64 / n as f64 * 100.0)
                };
                let passed = evaluate_metric(&s.metrics[0], reading) == Verdict::Pass;
                let next = if passed {
                    if w >= s.max_weight() {
                        continue; // promoted
                    }
                    ((w + s.next_step_weight(w)).min(100), (sv, xv), failed)
                } else {
                    (w, (sv, xv), failed + 1)
                };
                total += prob * brute_force(s, rate, p, ticks - 1, next);
            }
        }
        total
    }

    #[test]
    fn overlapping_windows_match_brute_force() {
        // interval 30 s, window 1 m: each check shares an interval with the one before.
        // (stepWeight, maxWeight, threshold, min %, error rate)
        let cases = [
            (50, 100, 2, 90.0, 0.2),  // two steps, two failures to roll back
            (50, 50, 2, 75.0, 0.3),   // failures hold the weight at 50
            (25, 100, 1, 95.0, 0.05), // the first failure rolls back
        ];
        for (step, max, threshold, min, p) in cases {
            let mut s = settings(step, max, threshold, "30s");
            s.metrics[0].range = Some(ThresholdRange {
                min: Some(min),
                max: None,
            });
            assert_eq!(s.metrics[0].window, SimDuration::from_secs(60));
            // λ = 2 per interval at weight 50: small enough to enumerate.
            let rate = 2.0 / (0.5 * 30.0);
            // Created at 20 s: detected at 30 s, first step at 60 s, checks at 90, 120, 150 s.
            let t = traffic(rate, 150);
            let got = analytic_rollback_prob(&s, &t, p).expect("sr metric");
            let first = s.next_step_weight(0);
            let want = brute_force(&s, rate, p, 3, (first, (0, 0), 0));
            assert!(
                (got - want).abs() < 1e-7,
                "{step}/{max}/{threshold}/{min}/{p}: {got} != {want}"
            );
            // Checks taken as independent would differ: the overlap matters.
            let independent = Chain {
                settings: &s,
                interval: s.interval,
                rate_per_s: rate,
                p,
            }
            .independent(&s.metrics[0], first, 3);
            assert!(
                (independent - want).abs() > 1e-3,
                "a case that tells them apart: {independent} vs {want}"
            );
        }
    }

    fn row(setting: &str, detect: f64, false_rb: f64, promote: Option<f64>) -> PlanRow {
        PlanRow {
            setting: setting.into(),
            regression: "r".into(),
            seeds: 20,
            detect_prob: detect,
            detect_ci95: (0.0, 1.0),
            false_rollback_prob: false_rb,
            median_detect_s: None,
            median_promote_s: promote,
            requests_hurt_mean: 0.0,
            analytic_detect_prob: None,
        }
    }

    #[test]
    fn the_fastest_setting_that_detects_and_keeps_good_canaries_is_recommended() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        // (rows, recommended index)
        let cases: [(Vec<PlanRow>, Option<usize>); 5] = [
            // b is fastest among those meeting both bounds (a is slower, c detects too little).
            (
                vec![
                    row("a", 0.95, 0.0, Some(300.0)),
                    row("b", 0.90, 0.05, Some(200.0)),
                    row("c", 0.80, 0.0, Some(100.0)),
                ],
                Some(1),
            ),
            // c would be fastest but rolls back good canaries too often.
            (
                vec![
                    row("a", 0.95, 0.0, Some(300.0)),
                    row("c", 0.99, 0.10, Some(100.0)),
                ],
                Some(0),
            ),
            // a setting must meet P for every regression.
            (
                vec![
                    row("a", 0.95, 0.0, Some(300.0)),
                    row("b", 0.95, 0.0, Some(200.0)),
                    row("b", 0.50, 0.0, Some(200.0)),
                ],
                Some(0),
            ),
            // a tie goes to the first in grid order; a healthy canary never promoted is out.
            (
                vec![
                    row("a", 0.95, 0.0, None),
                    row("b", 0.95, 0.0, Some(200.0)),
                    row("d", 0.95, 0.0, Some(200.0)),
                ],
                Some(1),
            ),
            // none qualifies.
            (vec![row("a", 0.5, 0.0, Some(1.0))], None),
        ];
        for (i, (rows, want)) in cases.into_iter().enumerate() {
            assert_eq!(recommend(&labels, &rows, 0.9, 0.05), want, "case {i}");
        }
    }

    #[test]
    fn rows_aggregate_seed_outcomes() {
        let o = |rb: bool, d: Option<f64>, pr: Option<f64>, hurt: u64| SeedOutcome {
            rolled_back: rb,
            detect_s: d,
            promote_s: pr,
            hurt,
        };
        let healthy = [
            o(false, None, Some(190.0), 0),
            o(true, Some(100.0), None, 0),
        ];
        let bad = [
            o(true, Some(220.0), None, 80),
            o(false, None, Some(190.0), 20),
        ];
        let r = PlanRow::new("s", "error_rate=0.02", &healthy, &bad, Some(0.4));
        assert_eq!(r.detect_prob, 0.5);
        assert_eq!(r.detect_ci95, wilson95(1, 2));
        assert_eq!(r.false_rollback_prob, 0.5);
        assert_eq!(r.median_detect_s, Some(220.0));
        assert_eq!(r.median_promote_s, Some(190.0));
        assert_eq!(r.requests_hurt_mean, 50.0);
        let csv = plan_csv(&[r]);
        assert_eq!(
            csv,
            format!(
                "{PLAN_HEADER}\ns,error_rate=0.02,2,0.500,{:.3},{:.3},0.500,220.000,190.000,\
50.000,0.400\n",
                wilson95(1, 2).0,
                wilson95(1, 2).1
            )
        );
        // From a summary: times are since the canary's creation.
        let s = SeedOutcome::new("Failed", Some(240.0), None, 81, 20.0);
        assert_eq!(s, o(true, Some(220.0), None, 81));
        let s = SeedOutcome::new("Succeeded", Some(270.0), Some(210.0), 0, 20.0);
        assert_eq!(s, o(false, None, Some(190.0), 0));
    }
}
