//! `load --expect-rollout MANIFEST --rollout-start T [--rollout-slack D]`: the split a load run
//! should observe while Knative rolls the Service of MANIFEST out, starting at T.
//!
//! The schedule is the route reconciler's (`model::route_control::rollout_timeline`, the code
//! the simulator and `splitlab live` run) with an instant ingress: the first 1% at T, the
//! timing taken at T, then Knative's equal steps. It is shifted into the run's time when the
//! run starts, fed to the recorder as programmed splits while the run goes (the split chart's
//! step line, `routes.csv`), and judged per window by `report::expect` (`--check split`).

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};

use crate::calibrate::timestamp::{format_instant, parse_instant};
use crate::live::clock::Clock;
use crate::live::load::{lock, Books};
use crate::model::route_control::{rollout_timeline, GroupSteps};
use crate::model::time::{SimDuration, SimTime};
use crate::report::check::SplitFindings;
use crate::report::expect::{rollout_split_findings, SplitSchedule};
use crate::report::run::RunReport;
use crate::scenario::rollout::read_rollout_service;

/// The rollout a load run checks, before the run starts.
#[derive(Clone, Debug)]
pub struct RolloutExpectation {
    /// T, Unix seconds.
    start_unix_s: f64,
    /// The main group's split before the rollout, then at each step (time since T).
    main: GroupSteps,
    slack: SimDuration,
    /// What the expectation is, for a line on stderr.
    pub note: String,
}

/// Reads the manifest and plays its rollout. `now_unix_s` is the wall clock; the run will last
/// at most `run_bound` (its duration) from about then.
pub fn prepare(
    manifest: &std::path::Path,
    start: &str,
    slack: &str,
    now_unix_s: f64,
    run_bound: SimDuration,
) -> anyhow::Result<RolloutExpectation> {
    let start_unix_s = if start.trim() == "now" {
        now_unix_s
    } else {
        parse_instant(start).map_err(|e| anyhow::anyhow!("--rollout-start: {e}, or now"))?
    };
    let slack_ns = crate::routing::duration::parse_duration(slack)
        .ok()
        .filter(|ns| *ns >= 0)
        .with_context(|| {
            format!("--rollout-slack {slack:?}: allowed: a Go duration >= 0 such as 1s or 250ms")
        })?;
    let ahead_s = start_unix_s - now_unix_s;
    if ahead_s >= run_bound.as_secs_f64() {
        bail!(
            "--rollout-start {start}: {} is {ahead_s:.1} s from now, after the run's {:.1} s: the run would see nothing of the rollout; allowed: a time before the run ends (or now)",
            format_instant(start_unix_s),
            run_bound.as_secs_f64()
        );
    }
    let name = manifest.display().to_string();
    let text = super::read_input(manifest).context("--expect-rollout")?;
    from_text(&name, &text, start_unix_s, slack_ns, now_unix_s, run_bound)
}

/// `prepare` once the manifest is read and the times parsed.
fn from_text(
    name: &str,
    text: &str,
    start_unix_s: f64,
    slack_ns: i64,
    now_unix_s: f64,
    run_bound: SimDuration,
) -> anyhow::Result<RolloutExpectation> {
    let svc =
        read_rollout_service(name, text).map_err(|e| anyhow::anyhow!("--expect-rollout: {e}"))?;
    // Play the rollout up to the end of the run (it usually finishes before).
    let until_s = (now_unix_s - start_unix_s).max(0.0) + run_bound.as_secs_f64() + 1.0;
    let (main, note) = match &svc.revisions {
        Some((from, to)) => {
            let t = rollout_timeline(
                &svc.service,
                &svc.traffic,
                from,
                to,
                SimDuration(0),
                SimDuration::from_secs_f64(until_s),
            );
            let main = t.group("");
            let steps = main.len().saturating_sub(1);
            let over = main
                .last()
                .and_then(|(t, _)| *t)
                .map_or(0.0, SimDuration::as_secs_f64);
            let note = if svc.service.rollout_duration_secs == 0 {
                format!(
                    "expect-rollout: {name} sets no serving.knative.dev/rollout-duration: Knative moves the traffic from {from} to {to} at once, at {}",
                    format_instant(start_unix_s)
                )
            } else {
                format!(
                    "expect-rollout: {from} -> {to} over {}s from {}: {steps} programmed splits of the main route over {over:.1} s",
                    svc.service.rollout_duration_secs,
                    format_instant(start_unix_s)
                )
            };
            (main, note)
        }
        None => {
            // Every revision pinned: the reconciler's steady state is the whole expectation.
            let pinned = svc
                .traffic
                .iter()
                .map(|t| t.revision_name.as_str())
                .find(|r| !r.is_empty())
                .unwrap_or_default();
            let main = rollout_timeline(
                &svc.service,
                &svc.traffic,
                pinned,
                pinned,
                SimDuration(0),
                SimDuration(0),
            )
            .group("");
            let split = main.first().map(|(_, s)| s.clone()).unwrap_or_default();
            let note = format!(
                "expect-rollout: {name} pins every revision: no rollout, a fixed split ({})",
                split
                    .iter()
                    .map(|(r, p)| format!("{r}={p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            (main, note)
        }
    };
    if main.is_empty() {
        bail!(
            "--expect-rollout {name}: the Service's route has no main group to expect a split of"
        );
    }
    Ok(RolloutExpectation {
        start_unix_s,
        main,
        slack: SimDuration(slack_ns),
        note,
    })
}

impl RolloutExpectation {
    /// Every revision the schedule names (labels the run must report), in first-seen order.
    pub fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, split) in &self.main {
            for (r, _) in split {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }

    /// The schedule in the time of a run that started at `run_start_unix_s`.
    pub fn schedule(&self, run_start_unix_s: f64) -> SplitSchedule {
        let offset_ns = ((self.start_unix_s - run_start_unix_s) * 1e9).round() as i64;
        SplitSchedule::new(
            self.main
                .iter()
                .map(|(at, split)| {
                    let t = match at {
                        None => SimTime(i64::MIN),
                        Some(d) => SimTime(offset_ns.saturating_add(d.as_nanos())),
                    };
                    (t, split.clone())
                })
                .collect(),
        )
    }

    /// `--check split`'s findings over the run.
    pub fn findings(&self, report: &RunReport, schedule: &SplitSchedule) -> Option<SplitFindings> {
        rollout_split_findings(report, schedule, self.slack)
    }
}

/// Tells the run's recorder each programmed split of `schedule` as the run reaches it (the one
/// in force at 0 at once), so `routes.csv`, the windows' `programmed_pct` and the split chart
/// show the schedule. Ends when the schedule does or the run's recorder is gone.
pub async fn feed(books: Arc<Mutex<Books>>, clock: Clock, schedule: SplitSchedule) {
    let steps = schedule.steps();
    let first = steps
        .iter()
        .rposition(|(t, _)| *t <= SimTime::ZERO)
        .unwrap_or(0);
    for (t, shares) in &steps[first..] {
        let at = (*t).max(SimTime::ZERO);
        tokio::time::sleep_until(clock.instant(at).into()).await;
        let split: Vec<(String, i64)> = shares
            .iter()
            .map(|(r, p)| (r.clone(), p.round() as i64))
            .collect();
        let mut b = lock(&books);
        let Some(rec) = b.recorder.as_mut() else {
            return;
        };
        rec.programmed(clock.now().max(at), "", &split);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T: f64 = 1_796_205_600.0;

    const ROLLING: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  annotations: {serving.knative.dev/rollout-duration: \"4s\"}
spec:
  traffic:
    - {latestRevision: true, percent: 100}
status:
  latestReadyRevisionName: hello-00002
  traffic:
    - {revisionName: hello-00001, latestRevision: true, percent: 99}
    - {revisionName: hello-00002, latestRevision: true, percent: 1}
";

    fn expect(text: &str) -> RolloutExpectation {
        from_text("svc.yaml", text, T, 0, T, SimDuration::from_secs(10)).expect("valid")
    }

    /// The schedule of `e` in a run that started `run_after_s` after T: (from ns, new %).
    fn new_pct(e: &RolloutExpectation, run_after_s: f64) -> Vec<(i64, f64)> {
        e.schedule(T + run_after_s)
            .steps()
            .iter()
            .map(|(t, shares)| {
                (
                    t.as_nanos(),
                    shares.get("hello-00002").copied().unwrap_or(0.0),
                )
            })
            .collect()
    }

    #[test]
    fn the_expectation_is_knatives_schedule_shifted_into_the_run() {
        let e = expect(ROLLING);
        assert_eq!(e.labels(), vec!["hello-00001", "hello-00002"]);
        assert!(
            e.note
                .starts_with("expect-rollout: hello-00001 -> hello-00002 over 4s from "),
            "{}",
            e.note
        );
        // (what, the run's start after T in s, wanted (from ns, hello-00002 %))
        let cases = [
            (
                "the run starts with the rollout",
                0.0,
                vec![
                    (i64::MIN, 0.0),
                    (0, 1.0),
                    (S, 34.0),
                    (2 * S, 67.0),
                    (3 * S, 100.0),
                ],
            ),
            (
                "the run starts 2 s into it",
                2.0,
                vec![
                    (i64::MIN, 0.0),
                    (-2 * S, 1.0),
                    (-S, 34.0),
                    (0, 67.0),
                    (S, 100.0),
                ],
            ),
            (
                "the run starts 1.5 s before it",
                -1.5,
                vec![
                    (i64::MIN, 0.0),
                    (3 * S / 2, 1.0),
                    (5 * S / 2, 34.0),
                    (7 * S / 2, 67.0),
                    (9 * S / 2, 100.0),
                ],
            ),
        ];
        for (what, after, want) in cases {
            assert_eq!(new_pct(&e, after), want, "{what}");
        }
    }

    #[test]
    fn a_service_without_a_rollout_is_accepted_and_said_so() {
        // No annotation: Knative switches at once, at T.
        let instant = expect(&ROLLING.replace(
            "annotations: {serving.knative.dev/rollout-duration: \"4s\"}",
            "annotations: {a: b}",
        ));
        assert!(
            instant.note.contains(
                "sets no serving.knative.dev/rollout-duration: Knative moves the traffic from hello-00001 to hello-00002 at once"
            ),
            "{}",
            instant.note
        );
        assert_eq!(new_pct(&instant, 0.0), vec![(i64::MIN, 0.0), (0, 100.0)]);
        // Every revision pinned: a fixed split, whatever T.
        let pinned = expect(
            "apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  traffic:
    - {revisionName: hello-00001, percent: 90}
    - {revisionName: hello-00002, percent: 10}
",
        );
        assert!(
            pinned.note.ends_with(
                "pins every revision: no rollout, a fixed split (hello-00001=90,hello-00002=10)"
            ),
            "{}",
            pinned.note
        );
        assert_eq!(new_pct(&pinned, 5.0), vec![(i64::MIN, 10.0)]);
    }

    #[test]
    fn bad_times_are_refused() {
        let bound = SimDuration::from_secs(10);
        let m = std::path::Path::new("does-not-matter.yaml");
        // (start, slack, fragment of the error)
        let cases = [
            (
                "yesterday",
                "1s",
                "--rollout-start: \"yesterday\" is not a time",
            ), // not a time
            (
                "1796205700",
                "1s",
                "is 100.0 s from now, after the run's 10.0 s",
            ), // after the run
            (
                "now",
                "-1s",
                "--rollout-slack \"-1s\": allowed: a Go duration >= 0",
            ), // negative
            ("now", "soon", "--rollout-slack \"soon\""), // not a duration
        ];
        for (start, slack, fragment) in cases {
            let e = prepare(m, start, slack, T, bound).expect_err(start);
            assert!(
                format!("{e:#}").contains(fragment),
                "{start} {slack}: {e:#}"
            );
        }
    }
}
