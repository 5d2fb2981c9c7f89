//! A revision's `failure:` block and the timeline's `failure:` event (issue 12 §3): their serde
//! mirrors and their conversion into `model::failure::FailureSpec`.
//!
//! ```yaml
//! revisions:
//!   - name: v2
//!     service_time: {constant: 20ms}
//!     failure:
//!       error_rate: 0.2              # fraction answered with error_status (default 500)
//!       error_status: 503
//!       latency: {multiplier: 3, add: {constant: 50ms}}
//!       crash_loop: false            # every container start fails: never Ready
//!       ready_before_serving: 2s     # Ready 2 s before the app accepts (serving#16649)
//!       crash_after: {exponential: {mean: 60s}}
//! timeline:
//!   - {at: 90s, failure: {revision: v2, error_rate: 0.5}}   # replaces v2's whole block
//! ```
//!
//! Must not: know about the simulator. Errors name the field path, the value and what is
//! allowed, like the rest of `load`.

use serde::Deserialize;

use super::{Cx, DistFile, ScenarioError};
use crate::model::failure::{FailureSpec, LatencyFault, DEFAULT_ERROR_STATUS};
use crate::model::time::SimDuration;

/// `revisions[].failure`. Every key is optional; an absent key is healthy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureFile {
    #[serde(default)]
    pub error_rate: Option<f64>,
    #[serde(default)]
    pub error_status: Option<i64>,
    #[serde(default)]
    pub latency: Option<LatencyFile>,
    #[serde(default)]
    pub crash_loop: Option<bool>,
    #[serde(default)]
    pub ready_before_serving: Option<String>,
    #[serde(default)]
    pub crash_after: Option<DistFile>,
}

/// `latency: {multiplier: X, add: DIST}`: the service time becomes `base × X + DIST`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyFile {
    #[serde(default)]
    pub multiplier: Option<f64>,
    #[serde(default)]
    pub add: Option<DistFile>,
}

/// `timeline[].failure`: the revision, and the block that replaces its failure settings from
/// then on (the same keys as `revisions[].failure`; serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, so they are repeated).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureEventFile {
    pub revision: String,
    #[serde(default)]
    pub error_rate: Option<f64>,
    #[serde(default)]
    pub error_status: Option<i64>,
    #[serde(default)]
    pub latency: Option<LatencyFile>,
    #[serde(default)]
    pub crash_loop: Option<bool>,
    #[serde(default)]
    pub ready_before_serving: Option<String>,
    #[serde(default)]
    pub crash_after: Option<DistFile>,
}

impl FailureEventFile {
    /// The block without its revision.
    pub fn block(&self) -> FailureFile {
        FailureFile {
            error_rate: self.error_rate,
            error_status: self.error_status,
            latency: self.latency.clone(),
            crash_loop: self.crash_loop,
            ready_before_serving: self.ready_before_serving.clone(),
            crash_after: self.crash_after.clone(),
        }
    }
}

/// The validated block at `path` (`revisions[1].failure`, `timeline[3].failure`).
pub(super) fn failure_spec(
    cx: &Cx<'_>,
    path: &str,
    f: &FailureFile,
) -> Result<FailureSpec, ScenarioError> {
    let mut spec = FailureSpec::default();
    if let Some(rate) = f.error_rate {
        if !(rate.is_finite() && (0.0..=1.0).contains(&rate)) {
            return Err(cx.err(
                &format!("{path}.error_rate"),
                format!("{rate} is not allowed; allowed: a fraction from 0 to 1"),
            ));
        }
        spec.error_rate = rate;
    }
    if let Some(status) = f.error_status {
        spec.error_status =
            u16::try_from(cx.int_within(&format!("{path}.error_status"), status, 500, 599)?)
                .expect("500..=599 fits in u16");
    } else {
        spec.error_status = DEFAULT_ERROR_STATUS;
    }
    if let Some(l) = &f.latency {
        if l.multiplier.is_none() && l.add.is_none() {
            return Err(cx.err(
                &format!("{path}.latency"),
                "an empty latency fault; allowed: multiplier, add or both",
            ));
        }
        let multiplier = l.multiplier.unwrap_or(1.0);
        if !(multiplier.is_finite() && multiplier >= 0.0) {
            return Err(cx.err(
                &format!("{path}.latency.multiplier"),
                format!("{multiplier} is not allowed; allowed: a finite number >= 0"),
            ));
        }
        let added = l
            .add
            .as_ref()
            .map(|d| cx.dist(&format!("{path}.latency.add"), d))
            .transpose()?;
        spec.latency = Some(LatencyFault { multiplier, added });
    }
    spec.crash_loop = f.crash_loop.unwrap_or(false);
    if let Some(text) = &f.ready_before_serving {
        spec.ready_before_serving = cx.duration_within(
            &format!("{path}.ready_before_serving"),
            text,
            SimDuration::ZERO,
            SimDuration::from_secs(3600),
        )?;
    }
    spec.crash_after = f
        .crash_after
        .as_ref()
        .map(|d| cx.dist(&format!("{path}.crash_after"), d))
        .transpose()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use crate::model::dist::Dist;
    use crate::model::failure::{FailureSpec, LatencyFault};
    use crate::model::time::SimDuration;
    use crate::scenario::load::load_scenario;
    use crate::scenario::spec::Action;
    use crate::scenario::yaml::SourcePos;

    /// Two revisions; `v2`'s failure block and a timeline follow at the marked lines.
    fn text(failure: &str, timeline: &str) -> String {
        format!(
            "name: f\nduration: 60s\nservice:\n  name: hello\nrevisions:\n  - name: v1\n    service_time: {{constant: 10ms}}\n\
             \x20 - name: v2\n    service_time: {{constant: 10ms}}\n    failure: {failure}\n\
             traffic:\n  - revisionName: v1\n    percent: 100\n{timeline}arrivals:\n  poisson: {{rate: 10}}\n"
        )
    }

    fn load(text: &str) -> Result<crate::scenario::Scenario, super::ScenarioError> {
        load_scenario("f.yaml", text, &[], &|p| Err(format!("{p}: no such file")))
    }

    #[test]
    fn a_failure_block_becomes_the_revisions_settings() {
        let ms = SimDuration::from_millis;
        let table = [
            // Absent keys are healthy; the status defaults to 500.
            ("{}", FailureSpec::default()),
            (
                "{error_rate: 0.25, error_status: 503}",
                FailureSpec {
                    error_rate: 0.25,
                    error_status: 503,
                    ..Default::default()
                },
            ),
            (
                "{latency: {multiplier: 2.5, add: {constant: 40ms}}, crash_loop: true}",
                FailureSpec {
                    latency: Some(LatencyFault {
                        multiplier: 2.5,
                        added: Some(Dist::constant(ms(40)).expect("valid")),
                    }),
                    crash_loop: true,
                    ..Default::default()
                },
            ),
            // A multiplier alone; the added distribution alone defaults the multiplier to 1.
            (
                "{latency: {add: {constant: 5ms}}, ready_before_serving: 1500ms}",
                FailureSpec {
                    latency: Some(LatencyFault {
                        multiplier: 1.0,
                        added: Some(Dist::constant(ms(5)).expect("valid")),
                    }),
                    ready_before_serving: ms(1500),
                    ..Default::default()
                },
            ),
            (
                "{crash_after: {exponential: {mean: 30s}}}",
                FailureSpec {
                    crash_after: Some(Dist::exponential(ms(30_000)).expect("valid")),
                    ..Default::default()
                },
            ),
        ];
        for (block, want) in table {
            let s = load(&text(block, "")).unwrap_or_else(|e| panic!("{block}: {e}"));
            assert_eq!(s.revisions[1].failure, want, "{block}");
            assert!(s.revisions[0].failure.is_healthy());
        }
    }

    #[test]
    fn a_timeline_failure_event_names_its_revision_and_replaces_the_block() {
        let s = load(&text(
            "{error_rate: 0.1}",
            "timeline:\n  - at: 30s\n    failure: {revision: v2, crash_loop: true}\n",
        ))
        .expect("valid");
        assert_eq!(
            s.timeline[0].action,
            Action::SetFailure {
                revision: 1,
                failure: FailureSpec {
                    crash_loop: true,
                    ..Default::default()
                },
            }
        );
    }

    #[test]
    fn bad_failure_settings_name_place_path_and_what_is_allowed() {
        let pos = |line, column| Some(SourcePos { line, column });
        // (failure block on line 10 from column 14, timeline, position, path, message fragment)
        let cases: &[(&str, &str, Option<SourcePos>, &str, &str)] = &[
            // A rate is a fraction.
            (
                "{error_rate: 1.5}",
                "",
                pos(10, 27),
                "revisions[1].failure.error_rate",
                "1.5 is not allowed; allowed: a fraction from 0 to 1",
            ),
            // An application error is a 5xx.
            (
                "{error_status: 404}",
                "",
                pos(10, 29),
                "revisions[1].failure.error_status",
                "404 is out of range; allowed: 500 to 599",
            ),
            // A latency fault says what it does.
            (
                "{latency: {}}",
                "",
                pos(10, 24),
                "revisions[1].failure.latency",
                "an empty latency fault; allowed: multiplier, add or both",
            ),
            (
                "{latency: {multiplier: -1}}",
                "",
                pos(10, 37),
                "revisions[1].failure.latency.multiplier",
                "-1 is not allowed; allowed: a finite number >= 0",
            ),
            (
                "{ready_before_serving: -1s}",
                "",
                pos(10, 37),
                "revisions[1].failure.ready_before_serving",
                "-1s is out of range; allowed: 0s to 3600s",
            ),
            (
                "{crash_after: {exponential: {mean: 0s}}}",
                "",
                pos(10, 42),
                "revisions[1].failure.crash_after.exponential",
                "exponential mean 0s must be > 0s",
            ),
            // Unknown keys are refused.
            (
                "{error_rat: 0.1}",
                "",
                pos(10, 15),
                "revisions[1].failure.error_rat",
                "unknown field `error_rat`",
            ),
            // The event names a revision of the scenario.
            (
                "{}",
                "timeline:\n  - at: 30s\n    failure: {revision: v3}\n",
                pos(16, 25),
                "timeline[0].failure.revision",
                "unknown revision \"v3\"; allowed: a name from revisions: v1, v2",
            ),
            (
                "{}",
                "timeline:\n  - at: 30s\n    failure: {revision: v2, error_rate: -0.1}\n",
                pos(16, 41),
                "timeline[0].failure.error_rate",
                "-0.1 is not allowed",
            ),
        ];
        for (block, timeline, at, path, fragment) in cases {
            let e = load(&text(block, timeline)).expect_err(block);
            assert_eq!(e.path, *path, "{block}: {e}");
            assert!(e.message.contains(fragment), "{block}: {}", e.message);
            assert_eq!(e.pos, *at, "{block}: {e}");
        }
    }
}
