//! Comparing settings: the grid of `--set` overrides, the metrics taken from each run, and the
//! statistics over seeds that say which differences are real.
//!
//! Owns: splitting `PATH=V1,V2,...` into values, expanding the grid of settings, the metric
//! definitions (`Metric`), their extraction from a `RunReport`, Student's t quantiles, means
//! with 95% confidence intervals (`compare.csv`: percentile bootstrap, seeded, so a count's
//! interval stays within its values' range; `paired.csv`: Student's t over the paired seeds),
//! paired differences against the first setting, and the layout
//! of `compare.csv` and `paired.csv` and of the printed sentences.
//!
//! Must not: load scenarios, simulate or schedule runs (that is the CLI's job); everything here
//! is a pure function of its inputs, apart from `Comparison::write`.
//!
//! Invariants:
//! - Grid order: the first `--set` varies slowest, the last fastest (an odometer), and each
//!   list keeps its values in the order given.
//! - A metric that is undefined for a run (`None`: e.g. `rollout_finished_s` when no gradual
//!   rollout finished) is left out of that setting's statistics; `seeds` in `compare.csv` counts
//!   the runs where it is defined, and a paired difference uses the seeds where both settings
//!   define it. With no value the statistics are empty fields; with one value (or one pair) the
//!   mean, min and max are given and the CI fields are empty (Student's t needs df ≥ 1).
//! - The same runs give the same bytes: rows come in setting order, then `Metric::ALL` order,
//!   and every number is printed with exactly 3 decimals.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::chart::{MetricBar, MetricPanel, QueueSeries};
use super::run::{Gauge, RunReport};
use super::write::{csv_field, write_atomic, Fixed3, WriteError};
use crate::model::time::SimTime;

pub const COMPARE_FILE: &str = "compare.csv";
pub const PAIRED_FILE: &str = "paired.csv";
pub const COMPARE_HEADER: &str = "setting,seeds,metric,mean,ci95_low,ci95_high,min,max";
pub const PAIRED_HEADER: &str = "setting,baseline,metric,mean_diff,ci95_low,ci95_high";

pub use super::run::SHIFT_SETTLE;

/// A `--set` list is malformed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// `flag` is the option the argument came with (`--set` for compare, `--grid` for plan).
    #[error("invalid {flag} {arg:?}: {message}")]
    BadSet {
        flag: &'static str,
        arg: String,
        message: String,
    },
    #[error("{flag} {path} is given twice; give its values in one comma-separated list")]
    DuplicatePath { flag: &'static str, path: String },
}

// ---------------------------------------------------------------------------------------------
// The grid
// ---------------------------------------------------------------------------------------------

/// Splits the value list of `--set PATH=V1,V2,...` at its commas.
///
/// A comma does not split inside double or single quotes, nor inside `[...]` or `{...}`, so a
/// value that needs a comma is written as YAML would: `"a,b"`, `[1, 2]`, `{min: 2s, max: 5s}`.
/// Quotes and brackets are kept: each value goes to the scenario's YAML parser as written.
/// Spaces around a value are trimmed. An empty value (`a=`, `a=1,,2`) is refused: write `~` for
/// null.
pub fn split_values(list: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in list.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced {c:?}"))?;
            }
            (None, ',') if depth == 0 => {
                values.push(std::mem::take(&mut current));
                continue;
            }
            (None, _) => {}
        }
        current.push(c);
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if depth > 0 {
        return Err("unclosed [ or {".to_string());
    }
    values.push(current);
    let values: Vec<String> = values.into_iter().map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err("empty value (write ~ for null)".to_string());
    }
    Ok(values)
}

/// Parses one `--set PATH=V1,V2,...` argument into its path and values (the path is checked by
/// the scenario loader, which names it on error).
pub fn parse_grid_set(flag: &'static str, arg: &str) -> Result<(String, Vec<String>), GridError> {
    let bad = |message: String| GridError::BadSet {
        flag,
        arg: arg.to_string(),
        message,
    };
    let (path, list) = arg
        .split_once('=')
        .filter(|(p, _)| !p.trim().is_empty())
        .ok_or_else(|| {
            bad("allowed: PATH=V1,V2,..., e.g. service.rollout_duration=0s,380s".to_string())
        })?;
    Ok((path.trim().to_string(), split_values(list).map_err(bad)?))
}

/// One point of the grid: the overrides it applies, in `--set` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// `(path, value)` pairs.
    pub overrides: Vec<(String, String)>,
    /// How the setting is named in files and sentences: `path=value` of every `--set` that has
    /// more than one value, joined with `;` (when none has, of every `--set`; `(scenario)` when
    /// there is no `--set` at all). Constant overrides apply to every setting and would only
    /// repeat themselves in each label.
    pub label: String,
}

impl Setting {
    /// The overrides as `PATH=VALUE` arguments, as `splitlab run --set` takes them.
    pub fn set_args(&self) -> Vec<String> {
        self.overrides
            .iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect()
    }
}

/// The cartesian product of the `--set` lists: the first list varies slowest.
pub fn expand_grid(
    flag: &'static str,
    sets: &[(String, Vec<String>)],
) -> Result<Vec<Setting>, GridError> {
    for (i, (path, _)) in sets.iter().enumerate() {
        if sets[..i].iter().any(|(p, _)| p == path) {
            return Err(GridError::DuplicatePath {
                flag,
                path: path.clone(),
            });
        }
    }
    let varying: Vec<bool> = if sets.iter().any(|(_, v)| v.len() > 1) {
        sets.iter().map(|(_, v)| v.len() > 1).collect()
    } else {
        vec![true; sets.len()]
    };
    let mut grid = vec![Vec::<(String, String)>::new()];
    for (path, values) in sets {
        grid = grid
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut o = prefix.clone();
                    o.push((path.clone(), v.clone()));
                    o
                })
            })
            .collect();
    }
    Ok(grid
        .into_iter()
        .map(|overrides| {
            let parts: Vec<String> = overrides
                .iter()
                .zip(&varying)
                .filter(|(_, &shown)| shown)
                .map(|((p, v), _)| format!("{p}={v}"))
                .collect();
            let label = if parts.is_empty() {
                "(scenario)".to_string()
            } else {
                parts.join(";")
            };
            Setting { overrides, label }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// What `compare` measures in each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// 503s: requests the queue-proxies turned away (all revisions).
    RejectedQp,
    /// 504s of both kinds: expired in the activator plus expired in a queue-proxy.
    Expired,
    /// p99 latency of every served request of the run, all revisions pooled.
    P99Ms,
    /// The worst p99 during the shift: the maximum, over the metrics windows that overlap the
    /// shift and over revisions, of the window's p99 (`timeseries.csv`'s `p99_ms`). The shift
    /// runs from the first timeline event or the first rollout start, whichever is earlier, to
    /// `SHIFT_SETTLE` after the last rollout finished (after its start when no gradual rollout
    /// happened, as with rollout-duration 0; to the end of the run when a rollout never
    /// finished). Undefined without timeline events and rollouts, or with nothing served then.
    P99ShiftMs,
    /// The largest queue-proxy queue of any revision.
    PeakQpQueue,
    /// The largest activator queue of any revision.
    PeakActivatorQueue,
    /// The largest number of pods the autoscaler asked for, for any revision.
    MaxDesiredPods,
    /// When the last rollout finished, in seconds. Undefined when no gradual rollout happened
    /// (rollout-duration 0 shifts at once and records none) or one was still going at the end.
    RolloutFinishedS,
    /// Pod-seconds of all revisions together over the run (`summary.json` `cost.pod_seconds`).
    PodSeconds,
    /// The most pods of all revisions at once (`cost.peak_total_pods`): what a rollout needs
    /// from a quota.
    PeakTotalPods,
    /// 503 UO from the gateway's circuit breakers (`ingress.profile`), all revisions.
    IngressOverflow,
}

pub const METRICS: usize = 11;

/// One run's value of every metric, indexed like `Metric::ALL`.
pub type MetricValues = [Option<f64>; METRICS];

impl Metric {
    pub const ALL: [Metric; METRICS] = [
        Metric::RejectedQp,
        Metric::Expired,
        Metric::P99Ms,
        Metric::P99ShiftMs,
        Metric::PeakQpQueue,
        Metric::PeakActivatorQueue,
        Metric::MaxDesiredPods,
        Metric::RolloutFinishedS,
        Metric::PodSeconds,
        Metric::PeakTotalPods,
        Metric::IngressOverflow,
    ];

    /// The name in the CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RejectedQp => "rejected_qp",
            Metric::Expired => "expired",
            Metric::P99Ms => "p99_ms",
            Metric::P99ShiftMs => "p99_shift_ms",
            Metric::PeakQpQueue => "peak_qp_queue",
            Metric::PeakActivatorQueue => "peak_activator_queue",
            Metric::MaxDesiredPods => "max_desired_pods",
            Metric::RolloutFinishedS => "rollout_finished_s",
            Metric::PodSeconds => "pod_seconds",
            Metric::PeakTotalPods => "peak_total_pods",
            Metric::IngressOverflow => "ingress_overflow",
        }
    }

    /// What the metric is, with its unit: the compare chart's panel title.
    pub fn title(self) -> &'static str {
        match self {
            Metric::RejectedQp => "503 rejected by queue-proxies (requests)",
            Metric::Expired => "504 expired (requests)",
            Metric::P99Ms => "p99 latency of the run (ms)",
            Metric::P99ShiftMs => "worst p99 during the shift (ms)",
            Metric::PeakQpQueue => "peak queue-proxy queue (requests)",
            Metric::PeakActivatorQueue => "peak activator queue (requests)",
            Metric::MaxDesiredPods => "most pods desired (pods)",
            Metric::RolloutFinishedS => "last rollout finished (s)",
            Metric::PodSeconds => "pod-seconds (pod·s)",
            Metric::PeakTotalPods => "most pods at once (pods)",
            Metric::IngressOverflow => "503 ingress overflow (requests)",
        }
    }
}

/// The metrics `compare.{png,svg}` draws, one panel each, in this order.
pub const CHART_METRICS: [Metric; 6] = [
    Metric::PeakActivatorQueue,
    Metric::PeakQpQueue,
    Metric::P99ShiftMs,
    Metric::MaxDesiredPods,
    Metric::Expired,
    Metric::RejectedQp,
];

/// One run's activator and queue-proxy queues per metrics window, each summed over revisions
/// (of the window maxima, as in `timeseries.csv`), for the compare chart's overlay.
pub fn queue_series(report: &RunReport) -> QueueSeries {
    let window_s = report.window().as_secs_f64();
    let revisions = report.revisions().len();
    let points = (0..report.windows())
        .map(|w| {
            let (mut act, mut qp) = (0, 0);
            for r in 0..revisions {
                let g = &report.cell(w, r).gauge_max;
                act += g[Gauge::ActivatorQueue.index()];
                qp += g[Gauge::QpQueue.index()];
            }
            (w as f64 * window_s, act, qp)
        })
        .collect();
    QueueSeries { points }
}

/// Takes every metric from one run. `first_event` is the time of the scenario's first timeline
/// event (`None` without one), where the shift may start before any rollout does.
pub fn extract_metrics(report: &RunReport, first_event: Option<SimTime>) -> MetricValues {
    let totals = report.totals();
    let revs = report.revisions();
    let max_of = |f: fn(&super::run::RevisionSummary) -> u64| {
        Some(revs.iter().map(f).max().unwrap_or(0) as f64)
    };
    Metric::ALL.map(|m| match m {
        Metric::RejectedQp => Some(totals.rejected_qp as f64),
        Metric::Expired => Some((totals.expired_activator + totals.expired_qp) as f64),
        Metric::P99Ms => report.latency().map(|l| l.p99_ms),
        Metric::P99ShiftMs => p99_shift_ms(report, first_event),
        Metric::PeakQpQueue => max_of(|r| r.peak_qp_queue),
        Metric::PeakActivatorQueue => max_of(|r| r.peak_activator_queue),
        Metric::MaxDesiredPods => max_of(|r| r.max_desired_pods),
        Metric::RolloutFinishedS => rollout_finished(report).map(|t| t.as_secs_f64()),
        Metric::PodSeconds => Some(report.cost().pod_seconds),
        Metric::PeakTotalPods => Some(report.cost().peak_total_pods as f64),
        Metric::IngressOverflow => Some(totals.ingress_overflow as f64),
    })
}

/// The last finish of any rollout, when every rollout that started has finished.
fn rollout_finished(report: &RunReport) -> Option<SimTime> {
    let spans = report.rollouts().values();
    if spans
        .clone()
        .any(|s| s.started.is_some() && s.finished.is_none())
    {
        return None;
    }
    spans.filter_map(|s| s.finished).max()
}

/// See `Metric::P99ShiftMs`: the worst of the revisions' `summary.json` `p99_shift_ms` (one
/// definition of the shift, `RunReport::shift_windows`).
fn p99_shift_ms(report: &RunReport, first_event: Option<SimTime>) -> Option<f64> {
    report
        .p99_shift_ms(first_event)
        .into_iter()
        .flatten()
        .reduce(f64::max)
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom: the factor of a
/// two-sided 95% confidence interval. Exact (to 6 decimals) from a table for df ≤ 30; beyond,
/// the Cornish-Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5), whose error at df = 30 is
/// below 1e-6 and shrinks from there. `df` = 0 has no quantile: NaN.
pub fn t975(df: u64) -> f64 {
    /// df = 1..=30 (any statistics textbook; e.g. NIST/SEMATECH e-Handbook table 1.3.6.7.2).
    const TABLE: [f64; 30] = [
        12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
        2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
        2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
        2.048407, 2.045230, 2.042272,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[(df - 1) as usize],
        _ => t975_expansion(df as f64),
    }
}

/// A&S 26.7.5 around the normal quantile z = 1.959964.
fn t975_expansion(df: f64) -> f64 {
    let x = crate::report::accuracy::Z95;
    let g1 = (x.powi(3) + x) / 4.0;
    let g2 = (5.0 * x.powi(5) + 16.0 * x.powi(3) + 3.0 * x) / 96.0;
    let g3 = (3.0 * x.powi(7) + 19.0 * x.powi(5) + 17.0 * x.powi(3) - 15.0 * x) / 384.0;
    let g4 = (79.0 * x.powi(9) + 776.0 * x.powi(7) + 1482.0 * x.powi(5)
        - 1920.0 * x.powi(3)
        - 945.0 * x)
        / 92160.0;
    x + g1 / df + g2 / df.powi(2) + g3 / df.powi(3) + g4 / df.powi(4)
}

/// The mean of a sample with its 95% confidence interval (Student's t, df = n − 1), min and max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// `None` with a single value.
    pub ci95: Option<(f64, f64)>,
    pub min: f64,
    pub max: f64,
}

/// Estimates the mean of `values`; `None` when there are none.
pub fn estimate(values: &[f64]) -> Option<Estimate> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let ci95 = (n >= 2).then(|| {
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let sd = (ss / (n - 1) as f64).sqrt();
        let half = t975(n as u64 - 1) * sd / (n as f64).sqrt();
        (mean - half, mean + half)
    });
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Estimate {
        n,
        mean,
        ci95,
        min,
        max,
    })
}

/// Resamples of `bootstrap_ci95`.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The seed of `bootstrap_ci95`'s generator: fixed, so the same values give the same interval.
const BOOTSTRAP_SEED: u64 = 0x5EED_B007;

/// The percentile bootstrap 95% interval of the mean of `values`: the 2.5th and 97.5th
/// percentiles (nearest rank) of the means of `BOOTSTRAP_RESAMPLES` resamples drawn with
/// replacement by a generator with a fixed seed. Unlike Student's t it never leaves
/// `[min, max]` of the values, so the interval of a count never goes below 0. `None` with
/// fewer than two values.
pub fn bootstrap_ci95(values: &[f64]) -> Option<(f64, f64)> {
    use rand::{RngExt, SeedableRng};
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(BOOTSTRAP_SEED);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[(q * (BOOTSTRAP_RESAMPLES - 1) as f64).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// `estimate` with the percentile bootstrap interval (`bootstrap_ci95`) instead of Student's t:
/// `compare.csv`'s means, whose metrics (counts, latencies, durations) cannot be negative.
pub fn estimate_bootstrap(values: &[f64]) -> Option<Estimate> {
    estimate(values).map(|e| Estimate {
        ci95: bootstrap_ci95(values),
        ..e
    })
}

/// Differences `setting − baseline` seed by seed, over the seeds where both are defined.
pub fn paired_diffs(setting: &[Option<f64>], baseline: &[Option<f64>]) -> Vec<f64> {
    setting
        .iter()
        .zip(baseline)
        .filter_map(|(s, b)| Some((*s)? - (*b)?))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The comparison and its files
// ---------------------------------------------------------------------------------------------

/// Every run's metrics, by setting and seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    labels: Vec<String>,
    seeds: usize,
    /// `runs[setting * seeds + (seed − 1)]`.
    runs: Vec<MetricValues>,
}

impl Comparison {
    /// `runs` holds, setting by setting, the metrics of seeds 1..=`seeds`.
    ///
    /// # Panics
    /// When `runs` does not hold `labels.len() × seeds` entries (a caller bug).
    pub fn new(labels: Vec<String>, seeds: usize, runs: Vec<MetricValues>) -> Self {
        assert_eq!(
            runs.len(),
            labels.len() * seeds,
            "one MetricValues per setting and seed"
        );
        Comparison {
            labels,
            seeds,
            runs,
        }
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn seeds(&self) -> usize {
        self.seeds
    }

    /// The compare chart's metric panels (`CHART_METRICS`): each setting's mean and 95% CI.
    pub fn metric_panels(&self) -> Vec<MetricPanel> {
        let summary = self.summary();
        CHART_METRICS
            .iter()
            .map(|&metric| MetricPanel {
                metric: metric.title().to_string(),
                bars: summary
                    .iter()
                    .filter(|(_, m, _)| *m == metric)
                    .map(|(_, _, est)| {
                        est.map(|e| MetricBar {
                            mean: e.mean,
                            ci95: e.ci95,
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// The values of `metric` for setting `s`, seed by seed.
    fn series(&self, s: usize, metric: usize) -> Vec<Option<f64>> {
        self.runs[s * self.seeds..(s + 1) * self.seeds]
            .iter()
            .map(|m| m[metric])
            .collect()
    }

    /// The estimate of every setting × metric, in setting then `Metric::ALL` order, with the
    /// percentile bootstrap interval (`bootstrap_ci95`).
    pub fn summary(&self) -> Vec<(usize, Metric, Option<Estimate>)> {
        let mut rows = Vec::new();
        for s in 0..self.labels.len() {
            for (m, &metric) in Metric::ALL.iter().enumerate() {
                let values: Vec<f64> = self.series(s, m).into_iter().flatten().collect();
                rows.push((s, metric, estimate_bootstrap(&values)));
            }
        }
        rows
    }

    /// The paired difference of every setting (the first included) against the first.
    pub fn paired(&self) -> Vec<(usize, Metric, Option<Estimate>)> {
        let mut rows = Vec::new();
        for s in 0..self.labels.len() {
            for (m, &metric) in Metric::ALL.iter().enumerate() {
                let diffs = paired_diffs(&self.series(s, m), &self.series(0, m));
                rows.push((s, metric, estimate(&diffs)));
            }
        }
        rows
    }

    /// The text of `compare.csv`.
    pub fn compare_csv(&self) -> String {
        let mut out = format!("{COMPARE_HEADER}\n");
        for (s, metric, est) in self.summary() {
            let label = csv_field(&self.labels[s]);
            let n = est.map_or(0, |e| e.n);
            let _ = write!(out, "{label},{n},{}", metric.name());
            let fields = est.map(|e| {
                let (lo, hi) = e.ci95.unzip();
                [Some(e.mean), lo, hi, Some(e.min), Some(e.max)]
            });
            for f in fields.unwrap_or([None; 5]) {
                let _ = write!(out, ",{}", num(f));
            }
            out.push('\n');
        }
        out
    }

    /// The text of `paired.csv`.
    pub fn paired_csv(&self) -> String {
        let mut out = format!("{PAIRED_HEADER}\n");
        let baseline = csv_field(&self.labels[0]).into_owned();
        for (s, metric, est) in self.paired() {
            let label = csv_field(&self.labels[s]);
            let mean = est.map(|e| e.mean);
            let (lo, hi) = est.and_then(|e| e.ci95).unzip();
            let _ = writeln!(
                out,
                "{label},{baseline},{},{},{},{}",
                metric.name(),
                num(mean),
                num(lo),
                num(hi)
            );
        }
        out
    }

    /// One sentence per setting with its absolute values, not only differences: the mean over
    /// seeds of every metric defined for it, e.g. `a=2: mean over 3 seeds: rejected_qp 6,
    /// p99_ms 412` (whole numbers without decimals, others as in the difference sentences;
    /// undefined metrics left out).
    pub fn absolute_sentences(&self) -> Vec<String> {
        let summary = self.summary();
        (0..self.labels.len())
            .map(|s| {
                let parts: Vec<String> = summary
                    .iter()
                    .filter(|(i, _, _)| *i == s)
                    .filter_map(|(_, metric, est)| {
                        let e = est.as_ref()?;
                        // whole numbers (counts, mostly) without decimals
                        let dp = if e.mean.fract() == 0.0 {
                            0
                        } else {
                            decimals(e.mean.abs())
                        };
                        Some(format!("{} {:.dp$}", metric.name(), e.mean))
                    })
                    .collect();
                format!(
                    "{}: mean over {} seeds: {}",
                    self.labels[s],
                    self.seeds,
                    parts.join(", ")
                )
            })
            .collect()
    }

    /// One sentence per setting after the first and metric with a CI, e.g.
    /// `b=2 vs b=1: peak_activator_queue -7810 ± 120 (95% CI)`: the mean paired difference ±
    /// the half-width of its 95% CI. When the interval contains 0 the sentence ends
    /// `(95% CI, includes 0)`: no difference was shown. When every paired difference is exactly
    /// 0 it says `identical in every seed` instead.
    pub fn sentences(&self) -> Vec<String> {
        self.paired()
            .into_iter()
            .filter(|(s, _, _)| *s > 0)
            .filter_map(|(s, metric, est)| {
                let est = est?;
                if est.min == 0.0 && est.max == 0.0 {
                    return Some(format!(
                        "{} vs {}: {} identical in every seed",
                        self.labels[s],
                        self.labels[0],
                        metric.name()
                    ));
                }
                let (lo, hi) = est.ci95?;
                let half = (hi - lo) / 2.0;
                let dp = decimals(est.mean.abs().max(half));
                let includes_zero = lo <= 0.0 && 0.0 <= hi;
                Some(format!(
                    "{} vs {}: {} {} ± {:.dp$} (95% CI{})",
                    self.labels[s],
                    self.labels[0],
                    metric.name(),
                    signed(est.mean, dp),
                    half,
                    if includes_zero { ", includes 0" } else { "" },
                ))
            })
            .collect()
    }

    /// The findings of `sentences` grouped per metric (for `report.html`): first what they
    /// are, then one sentence per metric with each setting by its short label (the values of
    /// its `--set` paths), e.g. `peak_activator_queue: 60s -7810 ± 120; 120s -8010 ± 95`; a
    /// setting whose interval contains 0 says `(includes 0)`, one equal in every seed
    /// `identical`. Metrics without any paired estimate are left out; with a single setting
    /// there is nothing to compare and no sentence.
    pub fn grouped_sentences(&self) -> Vec<String> {
        let (short, axis) = super::chart::short_labels(&self.labels);
        let paired = self.paired();
        let per_metric: Vec<String> = Metric::ALL
            .iter()
            .filter_map(|&metric| {
                let parts: Vec<String> = paired
                    .iter()
                    .filter(|(s, m, _)| *s > 0 && *m == metric)
                    .filter_map(|(s, _, est)| {
                        let est = est.as_ref()?;
                        let label = &short[*s];
                        if est.min == 0.0 && est.max == 0.0 {
                            return Some(format!("{label} identical in every seed"));
                        }
                        let (lo, hi) = est.ci95?;
                        let half = (hi - lo) / 2.0;
                        let dp = decimals(est.mean.abs().max(half));
                        let zero = if lo <= 0.0 && 0.0 <= hi {
                            " (includes 0)"
                        } else {
                            ""
                        };
                        Some(format!(
                            "{label} {} ± {half:.dp$}{zero}",
                            signed(est.mean, dp)
                        ))
                    })
                    .collect();
                (!parts.is_empty()).then(|| format!("{}: {}", metric.name(), parts.join("; ")))
            })
            .collect();
        if per_metric.is_empty() {
            return per_metric;
        }
        let mut out = vec![format!(
            "Differences against {} ({axis}), per metric: the mean paired difference ± the \
             half-width of its 95% CI (Student's t over the seeds):",
            short[0]
        )];
        out.extend(per_metric);
        out
    }

    /// Writes `compare.csv` and `paired.csv` into `dir` (created if needed), each atomically.
    pub fn write(&self, dir: &Path) -> Result<(), WriteError> {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let compare = self.compare_csv();
        write_atomic(dir, COMPARE_FILE, |w| w.write_all(compare.as_bytes()))?;
        let paired = self.paired_csv();
        write_atomic(dir, PAIRED_FILE, |w| w.write_all(paired.as_bytes()))
    }
}

/// A CSV number: 3 decimals, empty when undefined.
fn num(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| Fixed3(v).to_string())
        .unwrap_or_default()
}

/// Decimals worth printing in a sentence for numbers of this size.
pub(crate) fn decimals(magnitude: f64) -> usize {
    if magnitude >= 100.0 {
        0
    } else if magnitude >= 1.0 {
        1
    } else {
        3
    }
}

/// `x` with `dp` decimals and an explicit sign (`+0` for zero, never `-0`).
pub(crate) fn signed(x: f64, dp: usize) -> String {
    let s = format!("{x:+.dp$}");
    if s.trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        format!("{:+.dp$}", 0.0)
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t975_matches_textbook_values() {
        // (df, t_0.975 from the textbook table, to 3 decimals)
        let cases = [
            (1, 12.706),        // the Cauchy distribution
            (2, 4.303),         // three seeds
            (5, 2.571),         // six seeds
            (9, 2.262),         // ten seeds: the headline comparison
            (30, 2.042),        // the last table row
            (31, 2.040),        // the first value from the expansion
            (40, 2.021),        // textbook row 40
            (60, 2.000),        // textbook row 60
            (120, 1.980),       // textbook row 120
            (1_000_000, 1.960), // ~ the normal quantile
        ];
        for (df, want) in cases {
            let got = t975(df);
            assert!((got - want).abs() < 0.0005, "df {df}: {got} vs {want}");
        }
        assert!(t975(0).is_nan(), "df 0 has no quantile");
    }

    #[test]
    fn the_expansion_agrees_with_the_table_where_they_meet() {
        // The table's df = 30 row against the expansion, and monotonic decrease past it.
        assert!((t975_expansion(30.0) - 2.042272).abs() < 1e-5);
        let mut prev = t975(30);
        for df in 31..500 {
            let t = t975(df);
            assert!(t < prev && t > 1.959_96, "df {df}: {t}");
            prev = t;
        }
    }

    #[test]
    fn estimate_of_a_known_sample() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample sd sqrt(32/7) = 2.138090, t(7) = 2.364624
        let e = estimate(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("values");
        assert_eq!((e.n, e.mean, e.min, e.max), (8, 5.0, 2.0, 9.0));
        let half = 2.364624 * (32.0f64 / 7.0).sqrt() / 8.0f64.sqrt();
        let (lo, hi) = e.ci95.expect("n ≥ 2");
        assert!((lo - (5.0 - half)).abs() < 1e-9 && (hi - (5.0 + half)).abs() < 1e-9);
        assert!((half - 1.787496).abs() < 1e-5, "{half}");
        // one value: no interval; none: no estimate
        let one = estimate(&[3.5]).expect("one value");
        assert_eq!(
            (one.mean, one.ci95, one.min, one.max),
            (3.5, None, 3.5, 3.5)
        );
        assert_eq!(estimate(&[]), None);
    }

    #[test]
    fn a_setting_against_itself_differs_by_exactly_zero() {
        let values = [Some(0.1), Some(7810.3), None, Some(1e-9), Some(-3.0)];
        let diffs = paired_diffs(&values, &values);
        assert_eq!(diffs.len(), 4, "the undefined seed is left out");
        let e = estimate(&diffs).expect("pairs");
        assert_eq!(
            (e.mean, e.ci95, e.min, e.max),
            (0.0, Some((0.0, 0.0)), 0.0, 0.0)
        );
        // pairing uses only seeds where both are defined
        assert_eq!(
            paired_diffs(&[Some(5.0), None, Some(1.0)], &[Some(2.0), Some(1.0), None]),
            vec![3.0]
        );
    }

    #[test]
    fn the_bootstrap_interval_of_a_count_stays_in_its_range() {
        // peak_qp_queue 0, 0, 1 over three seeds: Student's t goes below 0, the bootstrap not
        let values = [0.0, 0.0, 1.0];
        let (t_lo, _) = estimate(&values).and_then(|e| e.ci95).expect("t");
        assert!(t_lo < 0.0, "{t_lo}");
        let (lo, hi) = bootstrap_ci95(&values).expect("bootstrap");
        assert!(
            (0.0..=1.0).contains(&lo) && (lo..=1.0).contains(&hi),
            "{lo}..{hi}"
        );
        assert!(
            lo < 1.0 / 3.0 && hi > 1.0 / 3.0,
            "around the mean: {lo}..{hi}"
        );
        // seeded: the same values give the same interval
        assert_eq!(bootstrap_ci95(&values), Some((lo, hi)));
        // a wide sample: the interval narrows with more values
        let many: Vec<f64> = (0..40).map(|i| f64::from(i % 10)).collect();
        let (a, b) = bootstrap_ci95(&many).expect("bootstrap");
        assert!(a > 3.0 && b < 6.0, "{a}..{b}");
        assert_eq!(bootstrap_ci95(&[5.0]), None, "one value has no interval");
    }

    #[test]
    fn values_split_at_top_level_commas() {
        // (list, values or error)
        let cases: [(&str, Result<Vec<&str>, &str>); 8] = [
            ("0s,60s, 380s", Ok(vec!["0s", "60s", "380s"])), // trimmed
            ("380s", Ok(vec!["380s"])),                      // one value
            ("\"a,b\",c", Ok(vec!["\"a,b\"", "c"])),         // double quotes keep the comma
            ("'a,b'", Ok(vec!["'a,b'"])),                    // single quotes too
            (
                "[1, 2],{min: 2s, max: 5s}",
                Ok(vec!["[1, 2]", "{min: 2s, max: 5s}"]),
            ), // flow YAML
            ("1,,2", Err("empty value (write ~ for null)")), // empty element
            ("\"a,b", Err("unterminated \" quote")),         // open quote
            ("[1,2", Err("unclosed [ or {")),                // open bracket
        ];
        for (list, want) in cases {
            let want = want
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(String::from);
            assert_eq!(split_values(list), want, "{list}");
        }
        assert!(parse_grid_set("--set", "novalue").is_err());
        assert!(parse_grid_set("--set", "=1,2").is_err());
        assert_eq!(
            parse_grid_set("--set", "service.rollout_duration=0s,380s"),
            Ok((
                "service.rollout_duration".to_string(),
                vec!["0s".to_string(), "380s".to_string()]
            ))
        );
    }

    fn set(path: &str, values: &[&str]) -> (String, Vec<String>) {
        (
            path.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        )
    }

    #[test]
    fn the_first_set_varies_slowest() {
        let grid = expand_grid(
            "--set",
            &[
                set("duration", &["60s"]),
                set("a", &["1", "2"]),
                set("b", &["x", "y", "z"]),
            ],
        )
        .expect("grid");
        let labels: Vec<&str> = grid.iter().map(|s| s.label.as_str()).collect();
        // the constant duration is applied but not shown
        assert_eq!(
            labels,
            ["a=1;b=x", "a=1;b=y", "a=1;b=z", "a=2;b=x", "a=2;b=y", "a=2;b=z"]
        );
        assert_eq!(grid[4].set_args(), ["duration=60s", "a=2", "b=y"]);
        // nothing varies: every override is shown; no --set: the scenario as it is
        let one = expand_grid("--set", &[set("a", &["1"]), set("b", &["x"])]).expect("grid");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].label, "a=1;b=x");
        assert_eq!(
            expand_grid("--set", &[]).expect("grid")[0].label,
            "(scenario)"
        );
        assert_eq!(
            expand_grid("--set", &[set("a", &["1"]), set("a", &["2"])]),
            Err(GridError::DuplicatePath {
                flag: "--set",
                path: "a".to_string()
            })
        );
    }

    #[test]
    fn files_and_sentences_have_a_fixed_form() {
        let mut runs = Vec::new();
        // setting 0: rejected 10, 12, 14; setting 1: 5, 6, 7 (paired diffs -5, -6, -7)
        for (s, base) in [(0, 10.0), (1, 5.0)] {
            for k in 0..3 {
                let mut m: MetricValues = [None; METRICS];
                m[0] = Some(base + f64::from(k) * if s == 0 { 2.0 } else { 1.0 });
                m[1] = Some(1.0);
                runs.push(m);
            }
        }
        let c = Comparison::new(vec!["a=1".into(), "a=2".into()], 3, runs);
        let compare = c.compare_csv();
        let lines: Vec<&str> = compare.lines().collect();
        assert_eq!(lines[0], COMPARE_HEADER);
        assert_eq!(lines.len(), 1 + 2 * METRICS);
        let (lo, hi) = bootstrap_ci95(&[10.0, 12.0, 14.0]).expect("3 values");
        assert!((10.0..12.0).contains(&lo) && hi > 12.0 && hi <= 14.0);
        assert_eq!(
            lines[1],
            format!("a=1,3,rejected_qp,12.000,{lo:.3},{hi:.3},10.000,14.000")
        );
        assert_eq!(lines[2], "a=1,3,expired,1.000,1.000,1.000,1.000,1.000");
        assert_eq!(lines[3], "a=1,0,p99_ms,,,,,", "undefined everywhere");
        let paired = c.paired_csv();
        let lines: Vec<&str> = paired.lines().collect();
        assert_eq!(lines[0], PAIRED_HEADER);
        assert_eq!(lines[1], "a=1,a=1,rejected_qp,0.000,0.000,0.000");
        let half = 4.302653 / 3f64.sqrt();
        assert_eq!(
            lines[1 + METRICS],
            format!(
                "a=2,a=1,rejected_qp,-6.000,{:.3},{:.3}",
                -6.0 - half,
                -6.0 + half
            )
        );
        assert_eq!(
            c.absolute_sentences(),
            [
                "a=1: mean over 3 seeds: rejected_qp 12, expired 1",
                "a=2: mean over 3 seeds: rejected_qp 6, expired 1",
            ],
            "absolute values per setting; undefined metrics left out"
        );
        assert_eq!(
            c.sentences(),
            [
                format!("a=2 vs a=1: rejected_qp -6.0 ± {half:.1} (95% CI)"),
                "a=2 vs a=1: expired identical in every seed".to_string(),
            ]
        );
        assert_eq!(
            c.grouped_sentences(),
            [
                "Differences against 1 (a), per metric: the mean paired difference ± the \
                 half-width of its 95% CI (Student's t over the seeds):"
                    .to_string(),
                format!("rejected_qp: 2 -6.0 ± {half:.1}"),
                "expired: 2 identical in every seed".to_string(),
            ],
            "one finding per metric"
        );
    }
}
