//! The rollout timetable behind `splitlab rollout`: the [`rollout`](super::rollout) state machine
//! driven by an ideal route reconciler (routing.md A4), for one configuration moving from
//! revision `from` to revision `to`.
//!
//! Owns: the event order of that ideal reconciler and the choice of epoch. Must not: read a
//! clock or do I/O; it only calls the state machine.
//!
//! The model, with t = 0 the moment `to` becomes the configuration's latest ready revision:
//! - the stored annotation starts as the baseline `[from P]` (configuration `config`, tag `""`);
//! - t = 0: reconcile with cur = `[to P]` (the first 1% moves, the timing waits);
//! - t = `ready_after`: the ingress reports ready; reconcile with `ObserveReady` first;
//! - then a reconcile exactly at each returned next-step time (`enqueueAfter`), until done.
//!
//! Every reconcile reads the annotation the previous one wrote, through
//! `to_json`/`from_json`, so an annotation that fails validation is dropped exactly as
//! `RR:311-329` drops it. Reconciles triggered by the ingress after each later step are not
//! modelled: they find `now < next_step_time` and change nothing.
//!
//! Invariants: the first row is at t = 0; rows are distinct consecutive splits in time order;
//! each row lists only revisions with a non-zero share, and the shares sum to P.

use super::rollout::{
    reconcile_rollout, ConfigurationRollout, RevisionRollout, Rollout, RolloutParams,
};

/// The machine runs at `SCHEDULE_EPOCH_NS + t`. Two reasons for a non-zero epoch:
/// - `start_time == 0` means "unset" upstream (real times are Unix nanoseconds, never 0), so a
///   rollout started at t = 0 with epoch 0 would never get its timing and would stall;
/// - f64 parity: `observe_ready` adds the step interval to `now` in f64, whose spacing at this
///   magnitude is 128 ns. 1e18 ns is `time.Unix(1e9, 0)`, the clock of the upstream
///   reconciler tests (routing.md C6), so those vectors, rounding included, are reproduced.
pub const SCHEDULE_EPOCH_NS: i64 = 1_000_000_000_000_000_000;

/// The configuration name used for the single configuration being rolled.
pub const SCHEDULE_CONFIGURATION: &str = "config";

/// Upper bound on reconciles, far above what any input needs (at most `percent − 1 <= 99`
/// steps plus the readiness reconcile); it only guards against a machine that never finishes.
const MAX_RECONCILES: usize = 1_000;

/// One row of the timetable: from `t_ns` (relative to the moment `to` became latest ready) the
/// configuration's traffic is split as `revisions`, each percent a share of the whole route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleStep {
    pub t_ns: i64,
    /// Oldest first, only non-zero shares.
    pub revisions: Vec<RevisionRollout>,
}

/// The timetable of a gradual rollout of `percent` (the configuration's share of the route)
/// from `from` to `to` over `duration_secs`, when the ingress takes `ready_after_ns` to program
/// the first 1%.
///
/// With `duration_secs <= 0` (rollout disabled) or `percent <= 1` (d.2) there is one row at
/// t = 0 with `[to P]`. A `percent > 100` fails the annotation's validation, so Knative (and
/// this model) switches at once too; callers should reject percents outside 0..=100 anyway. A
/// negative `ready_after_ns` is taken as 0 (readiness cannot precede the rollout it reports on).
///
/// If the step times overflow i64 nanoseconds (durations of centuries), upstream schedules
/// nothing further and so does this model: the last row is then not `[to P]`.
pub fn schedule(
    percent: i64,
    duration_secs: i64,
    ready_after_ns: i64,
    from: &str,
    to: &str,
) -> Vec<ScheduleStep> {
    let cur = single_revision_rollout(to, percent);
    if duration_secs <= 0 || percent <= 1 {
        return vec![ScheduleStep {
            t_ns: 0,
            revisions: split_of(&cur),
        }];
    }
    let ready_at_ns = SCHEDULE_EPOCH_NS.saturating_add(ready_after_ns.max(0));

    let mut annotation = single_revision_rollout(from, percent).to_json();
    let mut steps: Vec<ScheduleStep> = Vec::new();
    // t = 0: the new revision became latest ready. The route's IngressReady is still True
    // (steady state), so this reconcile does not call ObserveReady.
    let mut now_ns = SCHEDULE_EPOCH_NS;
    let mut ingress_ready_seen = false;
    let mut ready_pending = true;
    for _ in 0..MAX_RECONCILES {
        // A4: ObserveReady runs while the ingress is ready and the route is not marked ready,
        // i.e. on every reconcile from the readiness report on during a rollout; it is a no-op
        // once the timing is set.
        let (effective, next_ts) = reconcile_rollout(
            &cur,
            Some(&annotation),
            duration_secs,
            ingress_ready_seen,
            false,
            now_ns,
        );
        let split = split_of(&effective);
        if steps.last().is_none_or(|last| last.revisions != split) {
            steps.push(ScheduleStep {
                t_ns: now_ns - SCHEDULE_EPOCH_NS,
                revisions: split,
            });
        }
        annotation = effective.to_json();
        if effective.done() {
            break;
        }
        // The next event: the readiness report or the enqueued step, whichever comes first
        // (the readiness report first on a tie; the step reconcile at the same instant would
        // then change nothing more, so it is not repeated).
        let timer = (next_ts > 0).then_some(next_ts);
        now_ns = match (ready_pending, timer) {
            (true, Some(t)) if t < ready_at_ns => t,
            (true, _) => {
                ready_pending = false;
                ingress_ready_seen = true;
                ready_at_ns
            }
            (false, Some(t)) => t,
            // Nothing scheduled and nothing pending: the machine stalled (only when step
            // times overflow i64, see the doc above).
            (false, None) => break,
        }
        .max(now_ns);
    }
    steps
}

/// The state `BuildRollout` produces for one configuration target at `percent` whose latest
/// ready revision is `revision` (A3).
fn single_revision_rollout(revision: &str, percent: i64) -> Rollout {
    Rollout {
        configurations: vec![ConfigurationRollout {
            configuration_name: SCHEDULE_CONFIGURATION.to_owned(),
            tag: String::new(),
            percent,
            revisions: vec![RevisionRollout {
                revision_name: revision.to_owned(),
                percent,
            }],
            step_params: RolloutParams::default(),
        }],
    }
}

/// The configuration's current split, zero shares left out; empty when it was dropped (0%).
fn split_of(rollout: &Rollout) -> Vec<RevisionRollout> {
    rollout
        .rollouts_by_tag("")
        .iter()
        .find(|c| c.configuration_name == SCHEDULE_CONFIGURATION)
        .map(|c| {
            c.revisions
                .iter()
                .filter(|r| r.percent != 0)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: i64 = 1_000_000_000;

    fn row(t_ns: i64, revisions: &[(&str, i64)]) -> ScheduleStep {
        ScheduleStep {
            t_ns,
            revisions: revisions
                .iter()
                .map(|&(n, p)| RevisionRollout {
                    revision_name: n.to_owned(),
                    percent: p,
                })
                .collect(),
        }
    }

    /// The rows of a two-revision rollout that moves `size` every `interval_ns` from `t1_ns` on.
    fn stepped_rows(percent: i64, size: i64, t1_ns: i64, interval_ns: i64) -> Vec<ScheduleStep> {
        let mut rows = vec![row(0, &[("a", percent - 1), ("b", 1)])];
        let mut to = 1;
        let mut t = t1_ns;
        while to < percent {
            to = (to + size).min(percent);
            rows.push(if to < percent {
                row(t, &[("a", percent - to), ("b", to)])
            } else {
                row(t, &[("b", percent)])
            });
            t += interval_ns;
        }
        rows
    }

    #[test]
    fn schedule_matches_hand_computed_rollouts() {
        // (what, percent, duration s, ready after ns, wanted rows)
        let rows: Vec<(&str, i64, i64, i64, Vec<ScheduleStep>)> = vec![
            // C6 "simple route rollout when ingress becomes ready": first 1% ready after 3 s,
            // 120 s: minStep 3, 39 steps planned, size 3, so 33 real steps 3 s apart.
            (
                "C6, 100% over 120 s",
                100,
                120,
                3 * SEC,
                stepped_rows(100, 3, 6 * SEC, 3 * SEC),
            ),
            // d.8: 100% over 60 s with a 4 s first step: size 7, 15 steps, ends at 64 s.
            (
                "d.8, 4 s first step",
                100,
                60,
                4 * SEC,
                stepped_rows(100, 7, 8 * SEC, 4 * SEC),
            ),
            // d.8: with a 1 s first step: size 2, 50 steps, ends at 51 s.
            (
                "d.8, 1 s first step",
                100,
                60,
                SEC,
                stepped_rows(100, 2, 2 * SEC, SEC),
            ),
            // Ready at once: minStep is still 1 s.
            ("ready at t=0", 100, 60, 0, stepped_rows(100, 2, SEC, SEC)),
            // 1.5 s rounds up to 2 s: d 58, 29 steps, size round(99/29) = 3, 33 steps.
            (
                "ready after 1.5 s",
                100,
                60,
                1_500_000_000,
                stepped_rows(100, 3, 3_500_000_000, 2 * SEC),
            ),
            // d.7: readiness slower than the duration: one step of 99% after 1 s.
            (
                "d.7, ready after the duration",
                100,
                10,
                30 * SEC,
                stepped_rows(100, 99, 31 * SEC, SEC),
            ),
            // A 2% target: one step of 1%.
            (
                "2% target",
                2,
                60,
                SEC,
                stepped_rows(2, 1, 60 * SEC, 59 * SEC),
            ),
            // 50% over 30 s, ready after 2 s: d 28, 14 steps, size round(49/14) = 4 (3.5 rounds
            // away from zero), 13 steps 2 s apart.
            (
                "50% over 30 s",
                50,
                30,
                2 * SEC,
                stepped_rows(50, 4, 4 * SEC, 2 * SEC),
            ),
            // A negative readiness delay is taken as 0.
            (
                "negative ready delay",
                100,
                60,
                -5 * SEC,
                stepped_rows(100, 2, SEC, SEC),
            ),
            // No gradual rollout: disabled, 1%, 0%, or the same revision.
            ("duration 0", 100, 0, SEC, vec![row(0, &[("b", 100)])]),
            (
                "negative duration",
                100,
                -3,
                SEC,
                vec![row(0, &[("b", 100)])],
            ),
            ("1% target", 1, 60, SEC, vec![row(0, &[("b", 1)])]),
            ("0% target", 0, 60, SEC, vec![row(0, &[])]),
            // Over 100% the baseline annotation fails Validate: instant switch, as in Knative.
            ("101% target", 101, 60, SEC, vec![row(0, &[("b", 101)])]),
        ];
        for (what, percent, duration_secs, ready_after_ns, want) in rows {
            let got = schedule(percent, duration_secs, ready_after_ns, "a", "b");
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(
            schedule(100, 60, SEC, "b", "b"),
            vec![row(0, &[("b", 100)])],
            "same revision"
        );
    }

    #[test]
    fn first_step_time_keeps_the_f64_rounding_of_observe_ready() {
        // 1e18 + 1 ns is not representable in f64 (spacing 128 ns): upstream computes the first
        // next step time from the rounded value, so it lands 1 ns before ready + interval.
        // minStep 1, d 59, 59 steps of 1 s, size 2.
        let got = schedule(100, 60, 1, "a", "b");
        assert_eq!(got[1].t_ns, SEC);
        assert_eq!(got[2].t_ns, 2 * SEC, "later steps are integer sums");
        // A delay that is a multiple of 128 ns is exact (3 s + 128 ns rounds up to a 4 s step).
        let got = schedule(100, 60, 3 * SEC + 128, "a", "b");
        assert_eq!(got[1].t_ns, 3 * SEC + 128 + 4 * SEC);
    }

    #[test]
    fn absurd_inputs_do_not_panic() {
        for (percent, duration_secs, ready_after_ns) in [
            (100, i64::MAX, 0),
            (100, 9_500_000_000, SEC),
            (100, 60, i64::MAX),
            (i64::MAX, 60, SEC),
            (i64::MIN, 60, SEC),
            (100, i64::MIN, i64::MIN),
        ] {
            let got = schedule(percent, duration_secs, ready_after_ns, "a", "b");
            assert_eq!(got.first().map(|s| s.t_ns), Some(0));
        }
        // When the step times overflow, nothing more is scheduled: the rollout stops at 1%.
        assert_eq!(
            schedule(100, i64::MAX, 0, "a", "b"),
            vec![row(0, &[("a", 99), ("b", 1)])]
        );
    }

    /// The formulas of routing.md A5 and d.8, computed independently of the state machine:
    /// (step size, number of steps after the first 1%, interval ns, time of the first step).
    fn expected(percent: i64, duration_secs: i64, ready_after_ns: i64) -> (i64, i64, i64, i64) {
        let min_step_sec = ((ready_after_ns + SEC - 1) / SEC).max(1);
        let left_secs = (duration_secs - min_step_sec).max(1) as f64;
        let rem = (percent - 1) as f64;
        let num_steps = (left_secs / min_step_sec as f64).max(1.0).min(rem);
        let size = (rem / num_steps).round() as i64;
        let count = (percent - 1 + size - 1) / size;
        let interval_f = left_secs / num_steps * 1e9;
        let first =
            ((SCHEDULE_EPOCH_NS + ready_after_ns) as f64 + interval_f) as i64 - SCHEDULE_EPOCH_NS;
        (size, count, interval_f as i64, first)
    }

    fn rollout_case() -> impl Strategy<Value = (i64, i64, i64)> {
        (2i64..=100, 1i64..=86_400).prop_flat_map(|(percent, duration_secs)| {
            (Just(percent), Just(duration_secs), 0..=duration_secs * SEC)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Sums, monotonicity and termination: every row sums to P, the new revision's share
        /// never decreases (the old one's never increases), and the last row is `[to P]`.
        #[test]
        fn schedule_rows_sum_grow_and_finish((percent, duration_secs, ready_after_ns) in rollout_case()) {
            let rows = schedule(percent, duration_secs, ready_after_ns, "from", "to");
            prop_assert!(rows.len() >= 2);
            let mut last_to = 0;
            let mut last_t = -1;
            for r in &rows {
                let sum: i64 = r.revisions.iter().map(|x| x.percent).sum();
                prop_assert_eq!(sum, percent);
                prop_assert!(r.t_ns > last_t, "rows are in strictly increasing time");
                last_t = r.t_ns;
                let to = r.revisions.last().expect("a row at > 0% has a revision");
                prop_assert_eq!(to.revision_name.as_str(), "to");
                prop_assert!(to.percent > last_to, "each row moves traffic to the new revision");
                last_to = to.percent;
                prop_assert!(r.revisions.len() <= 2);
            }
            let last = rows.last().expect("at least two rows");
            prop_assert_eq!(last, &row(last.t_ns, &[("to", percent)]));
        }

        /// Step count, size and times follow the formulas for any percent, duration (1 s..24 h)
        /// and readiness delay (0..=duration).
        #[test]
        fn schedule_follows_the_step_formulas((percent, duration_secs, ready_after_ns) in rollout_case()) {
            let rows = schedule(percent, duration_secs, ready_after_ns, "from", "to");
            let (size, count, interval_ns, first_ns) = expected(percent, duration_secs, ready_after_ns);
            prop_assert_eq!(rows.len() as i64, 1 + count);
            prop_assert_eq!(&rows[0], &row(0, &[("from", percent - 1), ("to", 1)]));
            // f64 rounding of ObserveReady's next step time stays within the f64 spacing.
            prop_assert!((first_ns - (ready_after_ns + interval_ns)).abs() <= 256);
            for (k, r) in rows.iter().enumerate().skip(1) {
                let k = k as i64;
                prop_assert_eq!(r.t_ns, first_ns + (k - 1) * interval_ns, "step {}", k);
                let to = (1 + k * size).min(percent);
                let want = if to < percent {
                    row(r.t_ns, &[("from", percent - to), ("to", to)])
                } else {
                    row(r.t_ns, &[("to", percent)])
                };
                prop_assert_eq!(r, &want);
            }
        }
    }
}
