//! `TrafficTarget`: one entry of a Route's (or Service's) `traffic` block, with Knative's field
//! names and defaulting.
//!
//! Mirrors serving `pkg/apis/serving/v1/route_types.go` (the type) and `route_defaults.go`
//! (`TrafficTarget.SetDefaults`, `RouteSpec.SetDefaults`). Field order in serialised output is
//! Knative's: `tag, revisionName, configurationName, latestRevision, percent, url`.
//!
//! This module owns the data shape only; validation lives in `validation`, resolution against
//! existing revisions in `resolve`.

use serde::{Deserialize, Serialize};

/// One traffic target. Empty strings stand for Go's empty string (the field is then omitted in
/// output, as Go's `omitempty` does); `latest_revision` and `percent` are pointers upstream, so
/// they are `Option` here and "not set" is distinguishable from `false` / `0`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficTarget {
    /// Optional tag: gives the target its own URL `{tag}-{route}.{ns}.{domain}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    /// A pinned revision.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision_name: String,
    /// A configuration whose latest ready revision receives the traffic.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub configuration_name: String,
    /// `true` means "the latest ready revision of the configuration".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
    /// Share of the route's traffic, 0..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Only in status (and only for tagged targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl TrafficTarget {
    /// A target pinned to `revision` (`latestRevision: false`).
    pub fn revision(revision: &str, percent: i64) -> Self {
        TrafficTarget {
            revision_name: revision.to_string(),
            latest_revision: Some(false),
            percent: Some(percent),
            ..Default::default()
        }
    }

    /// A target that follows the latest ready revision of `configuration`.
    pub fn configuration(configuration: &str, percent: i64) -> Self {
        TrafficTarget {
            configuration_name: configuration.to_string(),
            latest_revision: Some(true),
            percent: Some(percent),
            ..Default::default()
        }
    }

    /// A `latestRevision: true` target without a configuration name (a Service's spec form).
    pub fn latest(percent: i64) -> Self {
        TrafficTarget {
            latest_revision: Some(true),
            percent: Some(percent),
            ..Default::default()
        }
    }

    /// Builder: sets the tag.
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.tag = tag.to_string();
        self
    }

    /// `TrafficTarget.SetDefaults` (`route_defaults.go`): `latestRevision` defaults to
    /// `revisionName == ""`, `percent` to 0.
    pub fn set_defaults(&mut self) {
        if self.latest_revision.is_none() {
            self.latest_revision = Some(self.revision_name.is_empty());
        }
        if self.percent.is_none() {
            self.percent = Some(0);
        }
    }

    /// The percent after defaulting (`nil` counts as 0).
    pub fn percent_or_zero(&self) -> i64 {
        self.percent.unwrap_or(0)
    }

    /// `latestRevision` after defaulting.
    pub fn is_latest(&self) -> bool {
        self.latest_revision
            .unwrap_or(self.revision_name.is_empty())
    }
}

/// `RouteSpec.SetDefaults` for a Service's route spec (`route_defaults.go:40-65`): an empty
/// traffic block becomes `[{percent: 100, latestRevision: true}]`, then every target is
/// defaulted. `service_context` is true for a Service (which has a default configuration).
pub fn default_traffic(traffic: &mut Vec<TrafficTarget>, service_context: bool) {
    if service_context && traffic.is_empty() {
        traffic.push(TrafficTarget::latest(100));
    }
    for target in traffic.iter_mut() {
        target.set_defaults();
    }
}

/// The Route a Service reconciler builds (serving `service/resources/route.go:51-54`): every
/// target without a `revisionName` is pointed at the Service's configuration (which has the
/// Service's name).
pub fn service_route_traffic(traffic: &[TrafficTarget], configuration: &str) -> Vec<TrafficTarget> {
    traffic
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if t.revision_name.is_empty() {
                t.configuration_name = configuration.to_string();
            }
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_route_defaults_go() {
        // (input, want latestRevision, want percent)
        let cases = [
            // a revision target without latestRevision: false
            (
                TrafficTarget {
                    revision_name: "r".into(),
                    ..Default::default()
                },
                Some(false),
                Some(0),
            ),
            // a configuration target: true
            (
                TrafficTarget {
                    configuration_name: "c".into(),
                    percent: Some(40),
                    ..Default::default()
                },
                Some(true),
                Some(40),
            ),
            // explicit values are kept, even when validation will reject them
            (
                TrafficTarget {
                    revision_name: "r".into(),
                    latest_revision: Some(true),
                    ..Default::default()
                },
                Some(true),
                Some(0),
            ),
        ];
        for (mut target, latest, percent) in cases {
            target.set_defaults();
            assert_eq!(target.latest_revision, latest);
            assert_eq!(target.percent, percent);
        }
    }

    #[test]
    fn empty_service_traffic_defaults_to_latest_100() {
        let mut traffic = Vec::new();
        default_traffic(&mut traffic, true);
        assert_eq!(traffic, vec![TrafficTarget::latest(100)]);
        let mut route_traffic = Vec::new();
        default_traffic(&mut route_traffic, false);
        assert!(route_traffic.is_empty());
    }

    #[test]
    fn service_route_points_latest_targets_at_the_configuration() {
        let spec = vec![
            TrafficTarget::revision("hello-00001", 90),
            TrafficTarget::latest(10).with_tag("next"),
        ];
        let route = service_route_traffic(&spec, "hello");
        assert_eq!(route[0], spec[0]);
        assert_eq!(route[1].configuration_name, "hello");
        assert_eq!(
            (route[1].tag.as_str(), route[1].percent),
            ("next", Some(10))
        );
    }

    #[test]
    fn serialises_with_knative_field_names_in_order() {
        let target = TrafficTarget {
            tag: "canary".into(),
            revision_name: "hello-00002".into(),
            latest_revision: Some(false),
            percent: Some(10),
            ..Default::default()
        };
        let json = serde_json::to_string(&target).expect("serialisable");
        assert_eq!(
            json,
            r#"{"tag":"canary","revisionName":"hello-00002","latestRevision":false,"percent":10}"#
        );
        let back: TrafficTarget = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, target);
        assert!(serde_json::from_str::<TrafficTarget>(r#"{"percnt":10}"#).is_err());
    }
}

/// The parts of Kubernetes `ObjectMeta` that Knative's routing rules read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}
