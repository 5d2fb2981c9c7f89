//! The rollout-duration state machine: a port of serving `pkg/reconciler/route/traffic/rollout.go`
//! (see `../shared/knative/routing.md` A1, A4 to A10).
//!
//! Pure: time is an argument (`now_ns`, integer nanoseconds since an arbitrary epoch, as
//! Knative's `UnixNano`), no clock, no I/O.

use serde::{Deserialize, Serialize};

/// The whole rollout state (the `networking.internal.knative.dev/rollout` annotation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Sorted by (tag, configuration name), byte order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<ConfigurationRollout>,
}

/// The rollout state of one (tag, configuration) pair.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationRollout {
    pub configuration_name: String,
    /// `""` is the default (untagged) group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// The configuration target's percent of the whole route.
    pub percent: i64,
    /// Oldest first; the last one is the newest (the rollout target). Each percent is a share
    /// of the whole route's traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionRollout>,
    pub step_params: RolloutParams,
}

/// One revision's share inside a configuration rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRollout {
    pub revision_name: String,
    pub percent: i64,
}

/// Timing of a rollout in progress, all in nanoseconds (0 means unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutParams {
    #[serde(rename = "starttime", default, skip_serializing_if = "is_zero")]
    pub start_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_step_time: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_duration: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_size: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
