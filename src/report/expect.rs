//! `load --expect-rollout`: the split a load run should observe while a rollout moves the
//! route's main group, as a step function of run time, and the `split` check against it.
//!
//! Owns: the schedule in run time (`SplitSchedule`, built by the caller from
//! `model::route_control::rollout_timeline` shifted by the rollout's start) and the rule that
//! turns it into each window's expected shares.
//!
//! The rule: window `[a, b)` expects each label's share to lie between the least and the most
//! the schedule gives it over `[a − slack, b + slack)`; the cell passes when the observed share
//! is inside `[lo − z·se(lo), hi + z·se(hi)]` (`check::split_findings_within`, `z`
//! Bonferroni-corrected over the cells). Where the schedule is constant around the window this
//! is exactly `--expect`'s binomial band; around a step the band spans both sides of it. Why a
//! range rather than the time-weighted average: the run's clock and the cluster's agree only to
//! within the ingress's programming delay (each step reaches the data plane that much after
//! the reconciler decides it), the rollout's start is the user's estimate, and a response is
//! counted in the window it *ended* in; a time-weighted average would be exact only for a step
//! that lands where the model says, to the millisecond. Mixing two shares within a window can
//! only narrow the spread of the count (a sum of Bernoulli trials with unequal `p` has a
//! variance at most `n·p̄(1−p̄)`), so the band stays conservative.
//!
//! Must not: read a clock or route; it judges counts it is given.
//!
//! Invariants: the schedule's first step is in force from the start of time; steps are in
//! non-decreasing time order; a label the schedule never names is expected at 0%.

use std::collections::BTreeMap;

use super::check::{split_findings_within, SplitFindings};
use super::run::RunReport;
use crate::model::time::{SimDuration, SimTime};

/// The main group's expected split over run time: `(from, percent by label)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSchedule {
    steps: Vec<(SimTime, BTreeMap<String, f64>)>,
}

impl SplitSchedule {
    /// `steps` as `(from, splits)`; the first is taken to hold from the start of time whatever
    /// its `from`; a revision listed twice in one split (a pinned target and a configuration's
    /// resolving to it) gets the sum. Steps are sorted by time (stable).
    ///
    /// # Panics
    /// If `steps` is empty.
    pub fn new(mut steps: Vec<(SimTime, Vec<(String, i64)>)>) -> Self {
        assert!(!steps.is_empty(), "a schedule has a first split");
        steps.sort_by_key(|(t, _)| *t);
        let steps = steps
            .into_iter()
            .map(|(t, split)| {
                let mut shares: BTreeMap<String, f64> = BTreeMap::new();
                for (label, pct) in split {
                    *shares.entry(label).or_default() += pct as f64;
                }
                (t, shares)
            })
            .collect();
        SplitSchedule { steps }
    }

    /// The steps, `(from, percent by label)`, the first in force from the start of time.
    pub fn steps(&self) -> &[(SimTime, BTreeMap<String, f64>)] {
        &self.steps
    }

    /// The index of the step in force at `t`.
    fn index_at(&self, t: SimTime) -> usize {
        self.steps
            .iter()
            .rposition(|(from, _)| *from <= t)
            .unwrap_or(0)
    }

    /// The least and the most percent `label` has over `[from, to)` (at `from` when empty).
    pub fn range_pct(&self, label: &str, from: SimTime, to: SimTime) -> (f64, f64) {
        let first = self.index_at(from);
        let last = if to > from {
            self.index_at(SimTime(to.as_nanos() - 1))
        } else {
            first
        };
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for (_, shares) in &self.steps[first..=last.max(first)] {
            let p = shares.get(label).copied().unwrap_or(0.0);
            lo = lo.min(p);
            hi = hi.max(p);
        }
        (lo, hi)
    }
}

/// Every window of `report` with requests, each label's observed share against the range the
/// schedule gives it over the window widened by `slack` on both sides (the module's rule).
/// `None` when no window has requests.
pub fn rollout_split_findings(
    report: &RunReport,
    schedule: &SplitSchedule,
    slack: SimDuration,
) -> Option<SplitFindings> {
    let w = report.window().as_nanos();
    let slack = slack.as_nanos().max(0);
    let labels: Vec<String> = report.revisions().iter().map(|r| r.name.clone()).collect();
    let windows: Vec<usize> = (0..report.windows()).collect();
    split_findings_within(report, &windows, &|win, r| {
        let a = SimTime(win as i64 * w - slack);
        let b = SimTime((win as i64 + 1) * w + slack);
        schedule.range_pct(&labels[r], a, b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;

    fn split(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    /// Knative's 4 s rollout from a to b, its first 1% at `start` (run time).
    fn rollout_at(start: i64) -> SplitSchedule {
        SplitSchedule::new(vec![
            (SimTime(i64::MIN), split(&[("a", 100)])),
            (SimTime(start), split(&[("a", 99), ("b", 1)])),
            (SimTime(start + S), split(&[("a", 66), ("b", 34)])),
            (SimTime(start + 2 * S), split(&[("a", 33), ("b", 67)])),
            (SimTime(start + 3 * S), split(&[("b", 100)])),
        ])
    }

    #[test]
    fn the_range_covers_every_step_in_force_over_the_interval() {
        let s = rollout_at(1500 * MS);
        // (from ms, to ms, label, wanted (lo, hi))
        let cases = [
            (0, 1000, "b", (0.0, 0.0)),          // before the rollout
            (0, 1500, "b", (0.0, 0.0)),          // up to the first step, exclusive
            (0, 1501, "b", (0.0, 1.0)),          // the first 1% just reached
            (1500, 2500, "b", (1.0, 1.0)),       // exactly the first step
            (1000, 3000, "b", (0.0, 34.0)),      // two steps
            (1000, 3000, "a", (66.0, 100.0)),    // the other side
            (9000, 10000, "b", (100.0, 100.0)),  // done
            (9000, 10000, "c", (0.0, 0.0)),      // a label the schedule never names
            (-5000, -4000, "a", (100.0, 100.0)), // before the run: the first step holds
        ];
        for (from, to, label, want) in cases {
            let got = s.range_pct(label, SimTime(from * MS), SimTime(to * MS));
            assert_eq!(got, want, "[{from}, {to}) {label}");
        }
        // A split naming a revision twice (pinned and latest) sums it.
        let merged = SplitSchedule::new(vec![(SimTime(0), split(&[("a", 90), ("a", 10)]))]);
        assert_eq!(
            merged.range_pct("a", SimTime(0), SimTime(S)),
            (100.0, 100.0)
        );
    }

    /// A load run of 1 s windows where window `w` routes `per_window[w]` requests to a and b.
    fn report_with(per_window: &[(u64, u64)]) -> RunReport {
        crate::report::check::two_label_run(per_window, None)
    }

    #[test]
    fn windows_are_judged_against_the_schedule_around_them() {
        // 400 requests per 1 s window; the rollout's first 1% at 1.5 s; 5 windows × 2 labels =
        // 10 cells: z = Φ⁻¹(1 − 0.05/20) = 2.81.
        // (what, per window (a, b), rollout start ms, slack ms, misses)
        type Case<'a> = (&'a str, [(u64, u64); 5], i64, i64, usize);
        let on_schedule = [(400, 0), (398, 2), (334, 66), (198, 202), (0, 400)];
        let cases: [Case; 5] = [
            // windows 1-4 each straddle a step: their observed shares are inside the ranges
            ("on schedule", on_schedule, 1500, 0, 0),
            // the rollout an hour earlier: every window expects 100% b; windows 0-3 miss on
            // both labels
            (
                "started an hour earlier",
                on_schedule,
                1500 - 3_600_000,
                0,
                8,
            ),
            // 2 s later: windows 1-2 expect exactly 0% b (see 0.5% and 16.5%), window 3 0..1%
            // (sees 50.5%), window 4 1..34% (sees 100%): both labels miss in each
            ("started 2 s later", on_schedule, 3500, 0, 8),
            // the same, with 2 s of slack: every range now spans the observed share
            ("started 2 s later, 2 s slack", on_schedule, 3500, 2000, 0),
            // a step that never came: b stays at 1% from 2 s on
            (
                "stalled at 1%",
                [(400, 0), (398, 2), (396, 4), (396, 4), (396, 4)],
                1500,
                0,
                4,
            ),
        ];
        for (what, windows, start, slack, misses) in cases {
            let f = rollout_split_findings(
                &report_with(&windows),
                &rollout_at(start * MS),
                SimDuration(slack * MS),
            )
            .expect("windows with requests");
            assert_eq!(f.cells, 10, "{what}");
            assert!((f.z - 2.807).abs() < 1e-3, "{what}: {}", f.z);
            assert_eq!(f.misses.len(), misses, "{what}: {:?}", f.misses);
        }
    }
}
