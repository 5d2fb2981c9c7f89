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

use super::rollout::{ConfigurationRollout, RevisionRollout, Rollout, RolloutParams};

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
    let duration_secs = duration_secs as f64;
    let ready_at_ns = SCHEDULE_EPOCH_NS.saturating_add(ready_after_ns.max(0));

    let mut annotation = single_revision_rollout(from, percent).to_json();
    let mut steps: Vec<ScheduleStep> = Vec::new();
    // t = 0: the new revision became latest ready. The route's IngressReady is still True
    // (steady state), so this reconcile does not call ObserveReady.
    let mut now_ns = SCHEDULE_EPOCH_NS;
    let mut ingress_ready_seen = false;
    let mut ready_pending = true;
    for _ in 0..MAX_RECONCILES {
        let mut prev = Rollout::from_json(&annotation);
        // A4 (RR:331-383): ObserveReady runs while the ingress is ready and the route is not
        // marked ready, i.e. on every reconcile from the readiness report on during a
        // rollout; it is a no-op once the timing is set.
        if ingress_ready_seen {
            if let Some(prev) = prev.as_mut() {
                prev.observe_ready(now_ns, duration_secs);
            }
        }
        let (effective, next_ts) = cur.step(prev.as_ref(), now_ns);
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
