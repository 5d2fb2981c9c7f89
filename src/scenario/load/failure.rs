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
