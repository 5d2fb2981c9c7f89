//! `load --check`: a load run as a CI gate. Each check is a bound in the one grammar of
//! `bound` (`p99_ms<500`, `v2.error_rate<0.01`, `status.5xx==0`) or the bare `split`, looked
//! up in what a load run measured and judged PASS or FAIL.
//!
//! Subjects (a `LABEL.` prefix narrows one to a label: a revision the classifier names, or a
//! target of a targets file):
//! ```text
//! error_rate            (requests − served) / requests; a request in flight at the end is not served
//! mean_ms p50_ms p90_ms p99_ms p999_ms max_ms   latency of the served requests
//! status.5xx            responses whose status is in that class (1xx … 5xx), a count
//! status.503            responses with exactly that status, a count
//! requests served       counts
//! split                 bare: every window's observed share of every label inside its binomial band
//! ```
//!
//! `split` tests each (window, label) cell that has a programmed share (`--expect`) against
//! `p ± z·sqrt(p(1−p)/n)`, with `z` Bonferroni-corrected over the cells checked so the whole
//! check has a 5% false-alarm rate when routing is exactly as programmed (1 s windows over a
//! minute would otherwise fail one run in several by chance alone).
//!
//! Must not: run anything; it judges figures it is given.
//!
//! Invariants: a subject with no value (a latency when nothing was served) fails its check;
//! a label the run does not know is an error before any traffic is sent (`Check::labels`).

use std::collections::BTreeMap;

use super::accuracy::{binomial_cdf, binomial_se, normal_quantile};
use super::bound::{parse_parts, BoundError, Comparison};
use super::run::{LatencySummary, RunReport};

/// The family-wise false-alarm rate of the `split` check.
pub const SPLIT_ALPHA: f64 = 0.05;

/// A latency statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Stat {
    const ALL: [(Stat, &'static str); 6] = [
        (Stat::Mean, "mean_ms"),
        (Stat::P50, "p50_ms"),
        (Stat::P90, "p90_ms"),
        (Stat::P99, "p99_ms"),
        (Stat::P999, "p999_ms"),
        (Stat::Max, "max_ms"),
    ];

    fn of(self, l: &LatencySummary) -> f64 {
        match self {
            Stat::Mean => l.mean_ms,
            Stat::P50 => l.p50_ms,
            Stat::P90 => l.p90_ms,
            Stat::P99 => l.p99_ms,
            Stat::P999 => l.p999_ms,
            Stat::Max => l.max_ms,
        }
    }
}

/// Which responses `status.X` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    /// `5xx`: 500..=599.
    Class(u16),
    /// `503`.
    Code(u16),
}

impl StatusMatch {
    fn matches(self, code: u16) -> bool {
        match self {
            StatusMatch::Class(c) => code / 100 == c,
            StatusMatch::Code(c) => code == c,
        }
    }
}

/// What a check measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    ErrorRate,
    Latency(Stat),
    Status(StatusMatch),
    Requests,
    Served,
    Split,
}

/// One `--check`.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub label: Option<String>,
    pub quantity: Quantity,
    /// `None` for `split`.
    pub comparison: Option<Comparison>,
    /// The expression as written, trimmed.
    pub text: String,
}

const NAMES: &str =
    "error_rate, mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms, requests, served, status.5xx, status.503, split";

/// A bad `--check`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Syntax(#[from] BoundError),
    #[error("invalid check {expr:?}: {message}")]
    Subject { expr: String, message: String },
}

/// Parses one `--check`.
pub fn parse(expr: &str) -> Result<Check, CheckError> {
    let parts = parse_parts(expr, true)?;
    let bad = |message: String| CheckError::Subject {
        expr: expr.to_string(),
        message,
    };
    let keys: Vec<&str> = parts.keys.iter().map(String::as_str).collect();
    // A leading key that is not a quantity is a label.
    let is_quantity = |k: &str| {
        matches!(k, "error_rate" | "requests" | "served" | "status" | "split")
            || Stat::ALL.iter().any(|(_, n)| *n == k)
    };
    let (label, rest) = match keys.as_slice() {
        [first, rest @ ..] if !is_quantity(first) && !rest.is_empty() => {
            (Some(first.to_string()), rest)
        }
        all => (None, all),
    };
    let quantity = match rest {
        ["error_rate"] => Quantity::ErrorRate,
        ["requests"] => Quantity::Requests,
        ["served"] => Quantity::Served,
        ["split"] => Quantity::Split,
        ["status", code] => Quantity::Status(parse_status(code).ok_or_else(|| {
            bad(format!(
                "status.{code}: allowed: a class 1xx..5xx or a code 100..599 (status.5xx, status.503)"
            ))
        })?),
        [name] if Stat::ALL.iter().any(|(_, n)| n == name) => {
            let (s, _) = Stat::ALL
                .iter()
                .find(|(_, n)| n == name)
                .expect("just found");
            Quantity::Latency(*s)
        }
        _ => {
            return Err(bad(format!(
                "unknown subject {:?}; allowed: {NAMES}, each optionally after LABEL. (v2.p99_ms)",
                parts.keys.join(".")
            )))
        }
    };
    match (quantity, &parts.comparison, &label) {
        (Quantity::Split, Some(_), _) => return Err(bad(
            "split takes no comparison: it passes when every window is inside its binomial band"
                .into(),
        )),
        (Quantity::Split, None, Some(_)) => {
            return Err(bad("split is about every label at once: write split".into()))
        }
        (q, None, _) if q != Quantity::Split => {
            return Err(bad(format!(
                "no operator; allowed: <, <=, >, >=, ==, != (e.g. {}<500); only split stands alone",
                parts.keys.join(".")
            )))
        }
        _ => {}
    }
    Ok(Check {
        label,
        quantity,
        comparison: parts.comparison,
        text: expr.trim().to_string(),
    })
}

fn parse_status(text: &str) -> Option<StatusMatch> {
    let b = text.as_bytes();
    if b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && text[1..].eq_ignore_ascii_case("xx") {
        return Some(StatusMatch::Class(u16::from(b[0] - b'0')));
    }
    text.parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c) && b.len() == 3)
        .map(StatusMatch::Code)
}

/// What one group of requests (the whole run, a label) measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub requests: u64,
    pub served: u64,
    pub latency: Option<LatencySummary>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl Group {
    fn value(&self, q: Quantity) -> Option<f64> {
        match q {
            Quantity::ErrorRate => (self.requests > 0).then(|| {
                (self.requests - self.served.min(self.requests)) as f64 / self.requests as f64
            }),
            Quantity::Latency(s) => self.latency.as_ref().map(|l| s.of(l)),
            Quantity::Status(m) => Some(
                self.statuses
                    .iter()
                    .filter(|(c, _)| m.matches(**c))
                    .map(|(_, n)| *n)
                    .sum::<u64>() as f64,
            ),
            Quantity::Requests => Some(self.requests as f64),
            Quantity::Served => Some(self.served as f64),
            Quantity::Split => None,
        }
    }
}

/// A (window, label) cell outside its band.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitMiss {
    pub window: usize,
    pub label: String,
    pub requests: u64,
    pub observed_pct: f64,
    /// The expected share; with a rollout, the lowest the schedule reaches near the window.
    pub programmed_pct: f64,
    /// The highest expected share near the window (equal to `programmed_pct` for a fixed split).
    pub programmed_hi_pct: f64,
    /// The band's half-width, in points, on the side the observed share fell.
    pub half_pct: f64,
}

impl SplitMiss {
    /// How far outside the band, in points.
    fn excess_pct(&self) -> f64 {
        if self.observed_pct < self.programmed_pct {
            self.programmed_pct - self.half_pct - self.observed_pct
        } else {
            self.observed_pct - self.programmed_hi_pct - self.half_pct
        }
    }
}

/// The `split` check's findings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitFindings {
    /// Cells (window × label) with a programmed share and requests.
    pub cells: usize,
    pub windows: usize,
    /// The band's z (Bonferroni-corrected).
    pub z: f64,
    pub misses: Vec<SplitMiss>,
}

/// Every window of `report` with a programmed split and requests, each label's share against
/// its Bonferroni-corrected binomial band. `None` when no window has a programmed split.
pub fn split_findings(report: &RunReport) -> Option<SplitFindings> {
    let labels = report.revisions().len();
    let windows: Vec<usize> = (0..report.windows())
        .filter(|&w| {
            let programmed: f64 = (0..labels).map(|r| report.cell(w, r).programmed_pct).sum();
            programmed > 0.0
        })
        .collect();
    split_findings_within(report, &windows, &|w, r| {
        let p = report.cell(w, r).programmed_pct;
        (p, p)
    })
}

/// The cells of `windows` (those with requests) against expected shares that may lie anywhere
/// in a range: `expected(window, label)` is `(lo, hi)` in percent, and a cell misses when its
/// count is in an exact binomial tail beyond the range: `P(X ≤ k | lo) < α/2m` below it or
/// `P(X ≥ k | hi) < α/2m` above it, `α = SPLIT_ALPHA`, Bonferroni-corrected over the `m` cells
/// checked. A miss is shown with the normal band `p ± z·sqrt(p(1−p)/n)` at the same level
/// (`z`), which the exact test matches where the normal approximation holds. `None` when no
/// window of `windows` has requests.
pub fn split_findings_within(
    report: &RunReport,
    windows: &[usize],
    expected: &dyn Fn(usize, usize) -> (f64, f64),
) -> Option<SplitFindings> {
    let labels = report.revisions().len();
    let total = |w: usize| -> u64 { (0..labels).map(|r| report.cell(w, r).routed_default).sum() };
    let windows: Vec<usize> = windows.iter().copied().filter(|&w| total(w) > 0).collect();
    if windows.is_empty() {
        return None;
    }
    let cells = windows.len() * labels;
    let z = normal_quantile(1.0 - SPLIT_ALPHA / (2.0 * cells as f64));
    let mut misses = Vec::new();
    for &w in &windows {
        let n = total(w);
        for r in 0..labels {
            let (lo_pct, hi_pct) = expected(w, r);
            let (lo, hi) = (lo_pct / 100.0, hi_pct / 100.0);
            let k = report.cell(w, r).routed_default;
            let observed = k as f64 / n as f64;
            let half_lo = z * binomial_se(lo, n);
            let half_hi = z * binomial_se(hi, n);
            // The exact binomial tails decide (the normal band above is only shown): with a few
            // requests in a window, the drain at the end or a slow start, the normal band says
            // 0 of 1 is outside 90% ± 83, which is no evidence at all (P = 0.1).
            let tail = SPLIT_ALPHA / (2.0 * cells as f64);
            let half = if observed < lo && binomial_cdf(k, n, lo) < tail {
                Some(half_lo)
            } else if observed > hi && k > 0 && 1.0 - binomial_cdf(k - 1, n, hi) < tail {
                Some(half_hi)
            } else {
                None
            };
            if let Some(half) = half {
                misses.push(SplitMiss {
                    window: w,
                    label: report.revisions()[r].name.clone(),
                    requests: n,
                    observed_pct: observed * 100.0,
                    programmed_pct: lo_pct,
                    programmed_hi_pct: hi_pct,
                    half_pct: half * 100.0,
                });
            }
        }
    }
    Some(SplitFindings {
        cells,
        windows: windows.len(),
        z,
        misses,
    })
}

/// What a load run measured, as the checks see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    pub overall: Group,
    /// By label: the classifier's labels and the targets' names.
    pub labels: BTreeMap<String, Group>,
    pub split: Option<SplitFindings>,
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// The measured value as printed (`0.0125`, `3 of 40 cells outside …`, `no value`).
    pub value: String,
}

impl Check {
    /// The label this check needs, if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Judges the check against `m`.
    pub fn judge(&self, m: &Measured) -> Verdict {
        if self.quantity == Quantity::Split {
            return match &m.split {
                None => Verdict {
                    passed: false,
                    value: "no window with a programmed split and requests (give --expect or --expect-rollout)".into(),
                },
                Some(f) if f.misses.is_empty() => Verdict {
                    passed: true,
                    value: format!(
                        "0 of {} cells ({} windows) outside the band (z {:.2})",
                        f.cells, f.windows, f.z
                    ),
                },
                Some(f) => {
                    let worst = f
                        .misses
                        .iter()
                        .max_by(|a, b| a.excess_pct().total_cmp(&b.excess_pct()))
                        .expect("misses is not empty");
                    let expected = if worst.programmed_hi_pct > worst.programmed_pct {
                        format!(
                            "{:.1}..{:.1}%",
                            worst.programmed_pct, worst.programmed_hi_pct
                        )
                    } else {
                        format!("{:.1}%", worst.programmed_pct)
                    };
                    Verdict {
                        passed: false,
                        value: format!(
                            "{} of {} cells ({} windows) outside the band (z {:.2}); worst: window {} {} {:.1}% of {} vs {} ± {:.1}",
                            f.misses.len(),
                            f.cells,
                            f.windows,
                            f.z,
                            worst.window,
                            worst.label,
                            worst.observed_pct,
                            worst.requests,
                            expected,
                            worst.half_pct
                        ),
                    }
                }
            };
        }
        let comparison = self
            .comparison
            .as_ref()
            .expect("every check but split has a comparison");
        let group = match &self.label {
            None => Some(&m.overall),
            Some(l) => m.labels.get(l),
        };
        let value = group.and_then(|g| g.value(self.quantity));
        Verdict {
            passed: comparison.holds(value),
            value: match value {
                Some(v) if self.quantity == Quantity::ErrorRate => format!("{v:.4}"),
                Some(v) if v.fract() == 0.0 => format!("{v}"),
                Some(v) => format!("{v:.3}"),
                None => "no value".into(),
            },
        }
    }
}

/// A load run of 1 s windows over labels a and b, where window `w` routes `per_window[w]`
/// requests to a and b (at its middle), programmed `a_pct`/`100 − a_pct` when given: the run
/// the `split` tests here and in `expect` judge.
#[cfg(test)]
pub(crate) fn two_label_run(per_window: &[(u64, u64)], a_pct: Option<i64>) -> RunReport {
    use crate::model::time::{SimDuration, SimTime};
    use crate::report::run::{EngineStats, RunMeta, RunRecorder};
    let mut rec = RunRecorder::new(
        RunMeta {
            scenario: "t".into(),
            seed: 1,
            mode: "live".into(),
        },
        vec!["a".into(), "b".into()],
        SimDuration::from_secs(1),
        None,
    );
    if let Some(a) = a_pct {
        rec.programmed(SimTime::ZERO, "", &[("a".into(), a), ("b".into(), 100 - a)]);
    }
    for (w, (a, b)) in per_window.iter().enumerate() {
        let t = SimTime::ZERO + SimDuration::from_secs_f64(w as f64 + 0.5);
        for r in std::iter::repeat_n(0, *a as usize).chain(std::iter::repeat_n(1, *b as usize)) {
            rec.arrived(t);
            rec.routed(t, r, true);
        }
    }
    let end = SimTime::ZERO + SimDuration::from_secs(per_window.len() as i64);
    let n = per_window.iter().map(|(a, b)| a + b).sum::<u64>();
    rec.finish(end, &[0, 0], n, EngineStats::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_into_label_quantity_and_comparison() {
        // (expression, label, quantity, has comparison)
        let cases = [
            ("error_rate<0.01", None, Quantity::ErrorRate, true), // the whole run
            ("p99_ms<500", None, Quantity::Latency(Stat::P99), true), // a percentile
            ("mean_ms <= 20", None, Quantity::Latency(Stat::Mean), true), // spaces, the mean
            ("split", None, Quantity::Split, false),              // bare
            (
                "status.5xx==0",
                None,
                Quantity::Status(StatusMatch::Class(5)),
                true,
            ), // a class
            (
                "status.503<10",
                None,
                Quantity::Status(StatusMatch::Code(503)),
                true,
            ), // an exact code
            (
                "v2.p99_ms<300",
                Some("v2"),
                Quantity::Latency(Stat::P99),
                true,
            ), // per label
            (
                "hello-00002.error_rate<0.01",
                Some("hello-00002"),
                Quantity::ErrorRate,
                true,
            ), // a revision name
            (
                "tag.status.4XX==0",
                Some("tag"),
                Quantity::Status(StatusMatch::Class(4)),
                true,
            ), // a label's status class, upper case
            ("served>=100", None, Quantity::Served, true),        // a count
        ];
        for (expr, label, quantity, has_cmp) in cases {
            let c = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(c.label.as_deref(), label, "{expr}");
            assert_eq!(c.quantity, quantity, "{expr}");
            assert_eq!(c.comparison.is_some(), has_cmp, "{expr}");
        }
    }

    #[test]
    fn bad_checks_say_what_is_allowed() {
        // (expression, fragment of the message)
        let cases = [
            ("p99<500", "unknown subject \"p99\"; allowed: error_rate"), // no unit
            ("p99_ms", "no operator; allowed: <, <="),                   // not bare
            ("split<1", "split takes no comparison"),                    // split is bare
            ("v2.split", "split is about every label at once"),          // per-label split
            ("status.6xx==0", "status.6xx: allowed: a class 1xx..5xx"),  // no such class
            ("status.50==0", "status.50: allowed"),                      // two digits
            ("v2.p99<1", "unknown subject \"v2.p99\""),                  // label, bad quantity
            ("p99_ms<=fast", "\"fast\" is not a number"),                // the shared grammar
            ("p99_ms=500", "\"=5\" is not an operator"),                 // the shared grammar
        ];
        for (expr, fragment) in cases {
            let err = parse(expr).expect_err(expr).to_string();
            assert!(err.contains(fragment), "{expr}: {err}");
            assert!(err.contains(&format!("{expr:?}")), "names it: {err}");
        }
    }

    fn latency(p99: f64) -> LatencySummary {
        LatencySummary {
            mean_ms: 5.0,
            p50_ms: 4.0,
            p90_ms: 8.0,
            p99_ms: p99,
            p999_ms: p99,
            max_ms: p99,
        }
    }

    #[test]
    fn checks_are_judged_against_what_was_measured() {
        let m = Measured {
            overall: Group {
                requests: 200,
                served: 198,
                latency: Some(latency(40.0)),
                statuses: BTreeMap::from([(200, 198), (502, 1), (503, 1)]),
            },
            labels: BTreeMap::from([
                (
                    "v2".to_string(),
                    Group {
                        requests: 100,
                        served: 100,
                        latency: Some(latency(350.0)),
                        statuses: BTreeMap::from([(200, 100)]),
                    },
                ),
                ("v3".to_string(), Group::default()),
            ]),
            split: None,
        };
        // (check, passed, value printed)
        let cases = [
            ("error_rate<0.01", false, "0.0100"),    // 2/200 is not below 1%
            ("error_rate<=0.01", true, "0.0100"),    // on the bound
            ("p99_ms<500", true, "40"),              // overall latency
            ("v2.p99_ms<300", false, "350"),         // the label's latency
            ("v2.error_rate==0", true, "0.0000"),    // the label's errors
            ("status.5xx==0", false, "2"),           // two 5xx
            ("status.503==1", true, "1"),            // an exact code
            ("status.4xx==0", true, "0"),            // none in the class
            ("v3.p99_ms<1", false, "no value"),      // nothing served: fails
            ("v3.error_rate<1", false, "no value"),  // no requests: fails
            ("nosuch.served>=0", false, "no value"), // an unknown label fails (cli refuses it first)
            (
                "split",
                false,
                "no window with a programmed split and requests (give --expect or --expect-rollout)",
            ),
        ];
        for (expr, passed, value) in cases {
            let v = parse(expr).expect(expr).judge(&m);
            assert_eq!(v.passed, passed, "{expr}: {v:?}");
            assert_eq!(v.value, value, "{expr}: {v:?}");
        }
    }

    fn report_with(per_window: &[(u64, u64)]) -> RunReport {
        two_label_run(per_window, Some(50))
    }

    fn report_split(per_window: &[(u64, u64)], a_pct: i64) -> RunReport {
        two_label_run(per_window, Some(a_pct))
    }

    #[test]
    fn split_holds_when_every_window_is_inside_its_corrected_band() {
        // 100 per window at 50/50, 10 windows × 2 labels = 20 cells: z = Φ⁻¹(1 − 0.05/40) =
        // 3.02, a half-width of 15.1 points.
        // (windows, passes, fragment)
        type Case<'a> = (&'a [(u64, u64)], bool, &'a str);
        let cases: [Case; 3] = [
            (&[(50, 50); 10], true, "0 of 20 cells (10 windows)"), // exact
            (
                &[
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (64, 36),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                ],
                true,
                "0 of 20",
            ), // 14 points off: inside the corrected band (outside the uncorrected 9.8)
            (
                &[
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (70, 30),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                    (50, 50),
                ],
                false,
                "2 of 20 cells (10 windows) outside the band (z 3.02); worst: window 4",
            ), // 20 points off, in one window: both labels miss
        ];
        for (windows, passes, fragment) in cases {
            let m = Measured {
                split: split_findings(&report_with(windows)),
                ..Measured::default()
            };
            let v = parse("split").expect("valid").judge(&m);
            assert_eq!(v.passed, passes, "{v:?}");
            assert!(v.value.contains(fragment), "{v:?}");
        }
    }

    #[test]
    fn a_window_of_a_few_requests_is_judged_by_the_exact_binomial_tail() {
        // 90/10 with 400 requests over two full windows and a drain window of one request that
        // went to b: 0 of 1 for a is P = 0.1, no evidence (the normal band, 90% ± 83, would
        // call it a miss; CI saw exactly this). (windows, passes, fragment)
        type Case<'a> = (&'a [(u64, u64)], bool, &'a str);
        let cases: [Case; 3] = [
            (
                &[(180, 20), (180, 20), (0, 1)],
                true,
                "0 of 6 cells (3 windows)",
            ),
            // the same drain window, four of four to b: P = 1e-4 for a, below 0.05/12
            (&[(180, 20), (180, 20), (0, 4)], false, "2 of 6 cells"),
            // a full window far off still fails
            (&[(180, 20), (100, 100)], false, "2 of 4 cells (2 windows)"),
        ];
        for (windows, passes, fragment) in cases {
            let m = Measured {
                split: split_findings(&report_split(windows, 90)),
                ..Measured::default()
            };
            let v = parse("split").expect("valid").judge(&m);
            assert_eq!(v.passed, passes, "{windows:?}: {v:?}");
            assert!(v.value.contains(fragment), "{windows:?}: {v:?}");
        }
    }
}
