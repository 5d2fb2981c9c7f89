//! Resolution of a (validated, defaulted) `spec.traffic` block against the revisions and
//! configurations that exist into per-tag route groups: a port of serving
//! `pkg/reconciler/route/traffic/traffic.go` (`TR`), as specified in routing.md A2 and A3.
//!
//! Owns: the cluster inventory the resolver reads (`Inventory`), `TrafficConfig` (the `Config`
//! upstream: consolidated groups plus the flattened revision targets), `build_rollout`
//! (BuildRollout), `status_traffic` (GetRevisionTrafficTargets) and the runtime `TargetError`s
//! with their Route conditions (`route_lifecycle.go`, RL:126-181).
//!
//! Must not: validate the spec (that is `validation`; resolution assumes it passed), read files or
//! clocks. Invariant: every group in a successful `TrafficConfig` is consolidated (one entry per
//! revision, first occurrence order) and a group with one entry carries 100%.

use std::collections::BTreeMap;
use std::fmt;

use super::host::{DomainConfig, HostError};
use super::rollout::{ConfigurationRollout, RevisionRollout, Rollout, RolloutParams};
use super::TrafficTarget;

/// The key of the default (untagged) group.
pub const DEFAULT_TARGET: &str = "";

/// A Kubernetes condition status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

/// The transport a revision's container speaks; it decides the K8s service port (A11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    Http1,
    H2c,
}

/// What the resolver needs to know about a Revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionInfo {
    pub name: String,
    /// The `serving.knative.dev/configuration` label, if the revision has one.
    pub configuration: Option<String>,
    /// The `serving.knative.dev/service` label, if the revision has one.
    pub service: Option<String>,
    /// `Ready` condition (with the generation observed).
    pub ready: ConditionStatus,
    pub protocol: Protocol,
}

impl RevisionInfo {
    /// A ready revision created by configuration `configuration` of service `service`.
    pub fn ready(name: &str, configuration: &str, service: Option<&str>) -> Self {
        RevisionInfo {
            name: name.to_string(),
            configuration: Some(configuration.to_string()),
            service: service.map(str::to_string),
            ready: ConditionStatus::True,
            protocol: Protocol::Http1,
        }
    }
}

/// What the resolver needs to know about a Configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigurationInfo {
    pub name: String,
    /// `status.latestReadyRevisionName`; empty while no revision has become ready.
    pub latest_ready_revision: String,
    pub ready: ConditionStatus,
}

/// The revisions and configurations in the route's namespace (the listers upstream).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub revisions: BTreeMap<String, RevisionInfo>,
    pub configurations: BTreeMap<String, ConfigurationInfo>,
}

impl Inventory {
    /// Adds (or replaces) a revision.
    pub fn add_revision(&mut self, revision: RevisionInfo) {
        self.revisions.insert(revision.name.clone(), revision);
    }

    /// Adds (or replaces) a configuration.
    pub fn add_configuration(&mut self, name: &str, latest_ready: &str, ready: ConditionStatus) {
        self.configurations.insert(
            name.to_string(),
            ConfigurationInfo {
                name: name.to_string(),
                latest_ready_revision: latest_ready.to_string(),
                ready,
            },
        );
    }
}

/// A traffic target flattened to the revision level (`RevisionTarget`, TR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionTarget {
    pub tag: String,
    pub revision_name: String,
    pub configuration_name: String,
    pub latest_revision: bool,
    pub percent: i64,
    pub protocol: Protocol,
}

/// The resolved traffic of a route (`traffic.Config`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficConfig {
    /// Consolidated groups keyed by tag; `""` is the default group and receives every target.
    pub targets: BTreeMap<String, Vec<RevisionTarget>>,
    /// The spec targets flattened to revisions, merged on (tag, revision, latestRevision): the
    /// source of `status.traffic`.
    pub revision_targets: Vec<RevisionTarget>,
}

/// A runtime traffic-target error (`traffic/errors.go`), recorded on the Route's
/// `AllTrafficAssigned` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// `kind` is `Configuration` or `Revision`.
    Missing {
        kind: &'static str,
        name: String,
    },
    UnreadyConfiguration {
        name: String,
        failed: bool,
    },
    UnreadyRevision {
        name: String,
        failed: bool,
    },
    /// A Service-owned route referenced another service's (or no service's) revision (v1.21).
    NotOwned {
        revision: String,
        expected_service: String,
        actual_service: Option<String>,
    },
}

/// A Route condition as Knative writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl TargetError {
    /// `IsFailure()`: a failure overrides an earlier deferred error (TR:314-318).
    pub fn is_failure(&self) -> bool {
        match self {
            TargetError::Missing { .. } | TargetError::NotOwned { .. } => true,
            TargetError::UnreadyConfiguration { failed, .. }
            | TargetError::UnreadyRevision { failed, .. } => *failed,
        }
    }

    /// The `AllTrafficAssigned` condition this error produces (RL:126-181, routing.md A14 table).
    pub fn condition(&self) -> Condition {
        let (status, reason, message) = match self {
            TargetError::Missing { kind, name } => (
                ConditionStatus::False,
                format!("{kind}Missing"),
                format!("{kind} {name:?} referenced in traffic not found."),
            ),
            TargetError::UnreadyConfiguration {
                name,
                failed: false,
            } => (
                ConditionStatus::Unknown,
                "RevisionMissing".to_string(),
                format!("Configuration {name:?} is waiting for a Revision to become ready."),
            ),
            TargetError::UnreadyConfiguration { name, failed: true } => (
                ConditionStatus::False,
                "RevisionMissing".to_string(),
                format!("Configuration {name:?} does not have any ready Revision."),
            ),
            TargetError::UnreadyRevision {
                name,
                failed: false,
            } => (
                ConditionStatus::Unknown,
                "RevisionMissing".to_string(),
                format!("Revision {name:?} is not yet ready."),
            ),
            TargetError::UnreadyRevision { name, failed: true } => (
                ConditionStatus::False,
                "RevisionMissing".to_string(),
                format!("Revision {name:?} failed to become ready."),
            ),
            TargetError::NotOwned { .. } => (
                ConditionStatus::False,
                "RevisionNotOwned".to_string(),
                format!("{self}."),
            ),
        };
        Condition {
            status,
            reason,
            message,
        }
    }
}

impl fmt::Display for TargetError {
    /// `Error()` of the upstream error types (`traffic/errors.go`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Missing { kind, name } => {
                write!(f, "{kind} {name:?} referenced in traffic not found")
            }
            TargetError::UnreadyConfiguration { name, failed } => {
                write!(f, "Configuration {name:?} not ready, isFailure={failed}")
            }
            TargetError::UnreadyRevision { name, failed } => {
                write!(f, "Revision {name:?} not ready, isFailure={failed}")
            }
            TargetError::NotOwned {
                revision,
                expected_service,
                actual_service: None,
            } => {
                write!(
                    f,
                    "Revision {revision:?} does not belong to Service {expected_service:?}"
                )
            }
            TargetError::NotOwned {
                revision,
                expected_service,
                actual_service: Some(actual),
            } => {
                write!(
                    f,
                    "Revision {revision:?} belongs to Service {actual:?}, not Service {expected_service:?}"
                )
            }
        }
    }
}

impl std::error::Error for TargetError {}

/// The route being resolved: its name and, for a Service-owned route, the
/// `serving.knative.dev/service` label value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteRef {
    pub name: String,
    pub namespace: String,
    pub service: Option<String>,
}

/// `BuildTrafficConfiguration` (TR:81-85, TR:437-452). `traffic` must be validated and
/// defaulted; a Service's targets must carry `configurationName` already (the Service
/// reconciler fills it in, serving `service/resources/route.go:51-54`).
///
/// On any `TargetError` the whole configuration is discarded and the error is returned: the
/// *last failure*, or else the *first non-failure* (TR:314-318, TR:320-350).
pub fn build_traffic_configuration(
    inventory: &Inventory,
    route: &RouteRef,
    traffic: &[TrafficTarget],
) -> Result<TrafficConfig, TargetError> {
    let mut groups: BTreeMap<String, Vec<RevisionTarget>> = BTreeMap::new();
    let mut revision_targets: Vec<RevisionTarget> = Vec::with_capacity(traffic.len());
    let mut deferred: Option<TargetError> = None;

    for target in traffic {
        let flattened = if !target.revision_name.is_empty() {
            add_revision_target(inventory, route, target)
        } else if !target.configuration_name.is_empty() {
            add_configuration_target(inventory, target)
        } else {
            // Validation rules this out for Routes; upstream silently ignores it (TR:437-452).
            continue;
        };
        match flattened {
            Ok(rt) => {
                merge_if_necessary(&mut revision_targets, &rt);
                groups
                    .entry(DEFAULT_TARGET.to_string())
                    .or_default()
                    .push(rt.clone());
                if !rt.tag.is_empty() {
                    groups.entry(rt.tag.clone()).or_default().push(rt);
                }
            }
            // deferTargetError: a failure always overwrites an earlier error.
            Err(err) => {
                if deferred.is_none() || err.is_failure() {
                    deferred = Some(err);
                }
            }
        }
    }
    if let Some(err) = deferred {
        return Err(err);
    }
    let targets = groups
        .into_iter()
        .map(|(tag, rts)| (tag, consolidate(rts)))
        .collect();
    Ok(TrafficConfig {
        targets,
        revision_targets,
    })
}

/// TR:354-377: a configuration target resolves to its latest ready revision, which must be Ready
/// (since v1.8).
fn add_configuration_target(
    inventory: &Inventory,
    target: &TrafficTarget,
) -> Result<RevisionTarget, TargetError> {
    let config = inventory
        .configurations
        .get(&target.configuration_name)
        .ok_or_else(|| TargetError::Missing {
            kind: "Configuration",
            name: target.configuration_name.clone(),
        })?;
    if config.latest_ready_revision.is_empty() {
        return Err(TargetError::UnreadyConfiguration {
            name: config.name.clone(),
            failed: config.ready == ConditionStatus::False,
        });
    }
    let revision = ready_revision(inventory, &config.latest_ready_revision)?;
    Ok(RevisionTarget {
        tag: target.tag.clone(),
        revision_name: revision.name.clone(),
        configuration_name: target.configuration_name.clone(),
        latest_revision: target.is_latest(),
        percent: target.percent_or_zero(),
        protocol: revision.protocol,
    })
}

/// TR:379-412: a pinned revision must exist, belong to the route's service (v1.21), be Ready,
/// and its configuration (from its label) must exist.
fn add_revision_target(
    inventory: &Inventory,
    route: &RouteRef,
    target: &TrafficTarget,
) -> Result<RevisionTarget, TargetError> {
    let revision = inventory
        .revisions
        .get(&target.revision_name)
        .ok_or_else(|| TargetError::Missing {
            kind: "Revision",
            name: target.revision_name.clone(),
        })?;
    if let Some(expected) = &route.service {
        if revision.service.as_ref() != Some(expected) {
            return Err(TargetError::NotOwned {
                revision: revision.name.clone(),
                expected_service: expected.clone(),
                actual_service: revision.service.clone(),
            });
        }
    }
    let revision = ready_revision(inventory, &target.revision_name)?;
    let mut configuration_name = target.configuration_name.clone();
    if let Some(config) = &revision.configuration {
        if !inventory.configurations.contains_key(config) {
            return Err(TargetError::Missing {
                kind: "Configuration",
                name: config.clone(),
            });
        }
        configuration_name = config.clone();
    }
    Ok(RevisionTarget {
        tag: target.tag.clone(),
        revision_name: revision.name.clone(),
        configuration_name,
        latest_revision: target.is_latest(),
        percent: target.percent_or_zero(),
        protocol: revision.protocol,
    })
}

fn ready_revision<'a>(
    inventory: &'a Inventory,
    name: &str,
) -> Result<&'a RevisionInfo, TargetError> {
    let revision = inventory
        .revisions
        .get(name)
        .ok_or_else(|| TargetError::Missing {
            kind: "Revision",
            name: name.to_string(),
        })?;
    if revision.ready != ConditionStatus::True {
        return Err(TargetError::UnreadyRevision {
            name: revision.name.clone(),
            failed: revision.ready == ConditionStatus::False,
        });
    }
    Ok(revision)
}

/// `mergeIfNecessary` (TR:416-425): merges only entries with the same (tag, revision,
/// latestRevision), summing percents.
fn merge_if_necessary(targets: &mut Vec<RevisionTarget>, rt: &RevisionTarget) {
    if let Some(existing) = targets.iter_mut().find(|t| {
        t.tag == rt.tag
            && t.revision_name == rt.revision_name
            && t.latest_revision == rt.latest_revision
    }) {
        existing.percent += rt.percent;
    } else {
        targets.push(rt.clone());
    }
}

/// `consolidate` (TR:462-485): merge entries with the same revision name whatever their tag or
/// latestRevision (the first occurrence keeps its fields), keep first-occurrence order, and give a
/// lone entry 100%.
fn consolidate(targets: Vec<RevisionTarget>) -> Vec<RevisionTarget> {
    let mut out: Vec<RevisionTarget> = Vec::with_capacity(targets.len());
    for rt in targets {
        match out.iter_mut().find(|t| t.revision_name == rt.revision_name) {
            Some(first) => first.percent += rt.percent,
            None => out.push(rt),
        }
    }
    if out.len() == 1 {
        out[0].percent = 100;
    }
    out
}

impl TrafficConfig {
    /// `BuildRollout` (TR:230-268, routing.md A3): one single-revision configuration rollout per
    /// consolidated `latestRevision` entry with a non-zero percent, per group, sorted by
    /// (tag, configuration).
    pub fn build_rollout(&self) -> Rollout {
        let mut configurations: Vec<ConfigurationRollout> = Vec::new();
        for (tag, targets) in &self.targets {
            for rt in targets
                .iter()
                .filter(|rt| rt.latest_revision && rt.percent != 0)
            {
                configurations.push(ConfigurationRollout {
                    configuration_name: rt.configuration_name.clone(),
                    tag: tag.clone(),
                    percent: rt.percent,
                    revisions: vec![RevisionRollout {
                        revision_name: rt.revision_name.clone(),
                        percent: rt.percent,
                    }],
                    step_params: RolloutParams::default(),
                });
            }
        }
        configurations.sort_by(|a, b| {
            (a.tag.as_bytes(), a.configuration_name.as_bytes())
                .cmp(&(b.tag.as_bytes(), b.configuration_name.as_bytes()))
        });
        Rollout { configurations }
    }

    /// `GetRevisionTrafficTargets` (TR:153-184, A2 "Status traffic"): one entry per flattened
    /// revision target; a `latestRevision` entry found in `rollout` by exact (tag, configuration)
    /// expands to one entry per rollout revision. `configurationName` is never copied; tagged
    /// entries get their URL. Pass an empty rollout outside a rollout (RG:485-491).
    pub fn status_traffic(
        &self,
        rollout: &Rollout,
        route: &RouteRef,
        domain: &DomainConfig,
    ) -> Result<Vec<TrafficTarget>, HostError> {
        let mut out = Vec::with_capacity(self.revision_targets.len());
        for rt in &self.revision_targets {
            let url = if rt.tag.is_empty() {
                None
            } else {
                Some(domain.tag_url(&route.name, &route.namespace, &rt.tag)?)
            };
            let entry = |revision: &str, percent: i64| TrafficTarget {
                tag: rt.tag.clone(),
                revision_name: revision.to_string(),
                latest_revision: Some(rt.latest_revision),
                percent: Some(percent),
                url: url.clone(),
                ..Default::default()
            };
            // TR:87-95: an exact linear match on (tag, configurationName).
            let found = rt.latest_revision.then(|| {
                rollout
                    .configurations
                    .iter()
                    .find(|c| c.tag == rt.tag && c.configuration_name == rt.configuration_name)
            });
            match found.flatten() {
                Some(cfg) if !cfg.revisions.is_empty() => {
                    out.extend(
                        cfg.revisions
                            .iter()
                            .map(|r| entry(&r.revision_name, r.percent)),
                    );
                }
                _ => out.push(entry(&rt.revision_name, rt.percent)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `TT` fixture: route `test-route` in namespace `test`; configurations `good` and `nice`
    /// each with revision-1 (http1) and revision-2 (h2c, latest ready); `inactive` is like them.
    fn fixture() -> Inventory {
        let mut inv = Inventory::default();
        for config in ["good", "nice", "inactive"] {
            inv.add_configuration(
                config,
                &format!("{config}-revision-2"),
                ConditionStatus::True,
            );
            inv.add_revision(RevisionInfo::ready(
                &format!("{config}-revision-1"),
                config,
                None,
            ));
            let mut second = RevisionInfo::ready(&format!("{config}-revision-2"), config, None);
            second.protocol = Protocol::H2c;
            inv.add_revision(second);
        }
        inv
    }

    fn route() -> RouteRef {
        RouteRef {
            name: "test-route".into(),
            namespace: "test".into(),
            service: None,
        }
    }

    fn rt(tag: &str, revision: &str, config: &str, latest: bool, percent: i64) -> RevisionTarget {
        let protocol = if revision.ends_with("-2") {
            Protocol::H2c
        } else {
            Protocol::Http1
        };
        RevisionTarget {
            tag: tag.into(),
            revision_name: revision.into(),
            configuration_name: config.into(),
            latest_revision: latest,
            percent,
            protocol,
        }
    }

    fn defaulted(mut traffic: Vec<TrafficTarget>) -> Vec<TrafficTarget> {
        crate::routing::target::default_traffic(&mut traffic, false);
        traffic
    }

    fn cfg_rollout(tag: &str, config: &str, percent: i64, revision: &str) -> ConfigurationRollout {
        ConfigurationRollout {
            configuration_name: config.into(),
            tag: tag.into(),
            percent,
            revisions: vec![RevisionRollout {
                revision_name: revision.into(),
                percent,
            }],
            step_params: RolloutParams::default(),
        }
    }

    #[test]
    fn vanilla_configuration_target() {
        // TestBuildTrafficConfigurationVanilla
        let tc = build_traffic_configuration(
            &fixture(),
            &route(),
            &defaulted(vec![TrafficTarget::configuration("good", 100)]),
        )
        .expect("resolves");
        assert_eq!(tc.targets.len(), 1);
        assert_eq!(
            tc.targets[""],
            vec![rt("", "good-revision-2", "good", true, 100)]
        );
        assert_eq!(
            tc.build_rollout().configurations,
            vec![cfg_rollout("", "good", 100, "good-revision-2")]
        );
    }

    #[test]
    fn same_config_entries_merge() {
        // TestBuildTrafficConfiguration_TwoEntriesSameConfig: 42/16/42, and 100/nil/nil
        for percents in [[Some(42), Some(16), Some(42)], [Some(100), None, None]] {
            let traffic: Vec<TrafficTarget> = percents
                .iter()
                .map(|p| TrafficTarget {
                    configuration_name: "nice".into(),
                    percent: *p,
                    ..Default::default()
                })
                .collect();
            let tc = build_traffic_configuration(&fixture(), &route(), &defaulted(traffic))
                .expect("resolves");
            assert_eq!(
                tc.targets[""],
                vec![rt("", "nice-revision-2", "nice", true, 100)]
            );
            assert_eq!(
                tc.revision_targets,
                vec![rt("", "nice-revision-2", "nice", true, 100)]
            );
            assert_eq!(
                tc.build_rollout().configurations,
                vec![cfg_rollout("", "nice", 100, "nice-revision-2")]
            );
        }
    }

    #[test]
    fn three_configs_with_tags() {
        // TestBuildTrafficConfiguration_ThreeConfigs
        let traffic = defaulted(vec![
            TrafficTarget::configuration("nice", 30),
            TrafficTarget::configuration("good", 35).with_tag("robert"),
            TrafficTarget::configuration("inactive", 35).with_tag("jackson"),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(
            tc.targets[""],
            vec![
                rt("", "nice-revision-2", "nice", true, 30),
                rt("robert", "good-revision-2", "good", true, 35),
                rt("jackson", "inactive-revision-2", "inactive", true, 35),
            ]
        );
        assert_eq!(
            tc.targets["robert"],
            vec![rt("robert", "good-revision-2", "good", true, 100)]
        );
        assert_eq!(
            tc.targets["jackson"],
            vec![rt("jackson", "inactive-revision-2", "inactive", true, 100)]
        );
        let rollout = tc.build_rollout();
        let keys: Vec<(&str, &str, i64)> = rollout
            .configurations
            .iter()
            .map(|c| (c.tag.as_str(), c.configuration_name.as_str(), c.percent))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("", "good", 35),
                ("", "inactive", 35),
                ("", "nice", 30),
                ("jackson", "inactive", 100),
                ("robert", "good", 100)
            ]
        );
    }

    #[test]
    fn same_config_different_tags() {
        // TestBuildTrafficConfiguration_TwoEntriesSameConfigDifferentTags
        let traffic = defaulted(vec![
            TrafficTarget::configuration("nice", 90),
            TrafficTarget::configuration("nice", 10).with_tag("robert"),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(
            tc.targets[""],
            vec![rt("", "nice-revision-2", "nice", true, 100)]
        );
        assert_eq!(
            tc.targets["robert"],
            vec![rt("robert", "nice-revision-2", "nice", true, 100)]
        );
        assert_eq!(
            tc.revision_targets,
            vec![
                rt("", "nice-revision-2", "nice", true, 90),
                rt("robert", "nice-revision-2", "nice", true, 10)
            ]
        );
        assert_eq!(
            tc.build_rollout().configurations,
            vec![
                cfg_rollout("", "nice", 100, "nice-revision-2"),
                cfg_rollout("robert", "nice", 100, "nice-revision-2")
            ]
        );
    }

    #[test]
    fn canary_revision_plus_configuration() {
        // TestBuildTrafficConfiguration_Canary
        let traffic = defaulted(vec![
            TrafficTarget::revision("good-revision-1", 90),
            TrafficTarget::configuration("good", 10),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(
            tc.targets[""],
            vec![
                rt("", "good-revision-1", "good", false, 90),
                rt("", "good-revision-2", "good", true, 10)
            ]
        );
        assert_eq!(
            tc.build_rollout().configurations,
            vec![cfg_rollout("", "good", 10, "good-revision-2")]
        );
    }

    #[test]
    fn consolidated_first_occurrence_wins() {
        // TestBuildTrafficConfiguration_Consolidated: the pinned good-revision-2 comes first, so the
        // merged default entry is latestRevision=false and there is no "" rollout (d.5).
        let traffic = defaulted(vec![
            TrafficTarget::revision("good-revision-1", 49).with_tag("one"),
            TrafficTarget::revision("good-revision-2", 50).with_tag("two"),
            TrafficTarget::configuration("good", 1).with_tag("also-two"),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(
            tc.targets[""],
            vec![
                rt("one", "good-revision-1", "good", false, 49),
                rt("two", "good-revision-2", "good", false, 51)
            ]
        );
        assert_eq!(
            tc.targets["one"],
            vec![rt("one", "good-revision-1", "good", false, 100)]
        );
        assert_eq!(
            tc.targets["two"],
            vec![rt("two", "good-revision-2", "good", false, 100)]
        );
        assert_eq!(
            tc.targets["also-two"],
            vec![rt("also-two", "good-revision-2", "good", true, 100)]
        );
        let percents: Vec<i64> = tc.revision_targets.iter().map(|t| t.percent).collect();
        assert_eq!(percents, vec![49, 50, 1]);
        assert_eq!(
            tc.build_rollout().configurations,
            vec![cfg_rollout("also-two", "good", 100, "good-revision-2")]
        );
    }

    #[test]
    fn two_fixed_revisions_have_no_rollout() {
        // TestBuildTrafficConfiguration_TwoFixedRevisions
        let traffic = defaulted(vec![
            TrafficTarget::revision("good-revision-1", 90),
            TrafficTarget::revision("good-revision-2", 10),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(tc.build_rollout(), Rollout::default());
    }

    fn preliminary() -> Vec<TrafficTarget> {
        defaulted(vec![
            TrafficTarget::revision("good-revision-1", 100),
            TrafficTarget {
                tag: "beta".into(),
                revision_name: "good-revision-2".into(),
                ..Default::default()
            },
            TrafficTarget {
                tag: "alpha".into(),
                configuration_name: "nice".into(),
                ..Default::default()
            },
        ])
    }

    #[test]
    fn preliminary_zero_percent_tags() {
        // TestBuildTrafficConfiguration_Preliminary
        let tc =
            build_traffic_configuration(&fixture(), &route(), &preliminary()).expect("resolves");
        assert_eq!(
            tc.targets[""],
            vec![
                rt("", "good-revision-1", "good", false, 100),
                rt("beta", "good-revision-2", "good", false, 0),
                rt("alpha", "nice-revision-2", "nice", true, 0),
            ]
        );
        assert_eq!(
            tc.targets["beta"],
            vec![rt("beta", "good-revision-2", "good", false, 100)]
        );
        assert_eq!(
            tc.targets["alpha"],
            vec![rt("alpha", "nice-revision-2", "nice", true, 100)]
        );
    }

    #[test]
    fn tag_with_zero_percent_still_rolls_at_100() {
        // TestBuildTrafficConfigurationTag0Percent
        let traffic = defaulted(vec![
            TrafficTarget::configuration("nice", 100),
            TrafficTarget::configuration("good", 0).with_tag("robert"),
        ]);
        let tc = build_traffic_configuration(&fixture(), &route(), &traffic).expect("resolves");
        assert_eq!(
            tc.build_rollout().configurations,
            vec![
                cfg_rollout("", "nice", 100, "nice-revision-2"),
                cfg_rollout("robert", "good", 100, "good-revision-2")
            ]
        );
    }

    #[test]
    fn target_errors_and_their_precedence() {
        let mut inv = fixture();
        inv.add_configuration("empty", "", ConditionStatus::Unknown);
        inv.add_configuration("failed", "", ConditionStatus::False);
        let mut unready = RevisionInfo::ready("unready-revision", "good", None);
        unready.ready = ConditionStatus::Unknown;
        inv.add_revision(unready);
        let mut broken = RevisionInfo::ready("failed-revision", "good", None);
        broken.ready = ConditionStatus::False;
        inv.add_revision(broken);
        // (traffic, expected Error(), expected condition message)
        let cases: Vec<(Vec<TrafficTarget>, &str, &str)> = vec![
            // missing configuration
            (
                vec![TrafficTarget::configuration("missing-config", 100)],
                r#"Configuration "missing-config" referenced in traffic not found"#,
                r#"Configuration "missing-config" referenced in traffic not found."#,
            ),
            // missing revision
            (
                vec![TrafficTarget::revision("missing-revision", 100)],
                r#"Revision "missing-revision" referenced in traffic not found"#,
                r#"Revision "missing-revision" referenced in traffic not found."#,
            ),
            // unready revision
            (
                vec![TrafficTarget::revision("unready-revision", 100)],
                r#"Revision "unready-revision" not ready, isFailure=false"#,
                r#"Revision "unready-revision" is not yet ready."#,
            ),
            // failed revision
            (
                vec![TrafficTarget::revision("failed-revision", 100)],
                r#"Revision "failed-revision" not ready, isFailure=true"#,
                r#"Revision "failed-revision" failed to become ready."#,
            ),
            // a configuration waiting for its first revision
            (
                vec![TrafficTarget::configuration("empty", 100)],
                r#"Configuration "empty" not ready, isFailure=false"#,
                r#"Configuration "empty" is waiting for a Revision to become ready."#,
            ),
            // EmptyAndFailedConfigurations: the later failure overrides
            (
                vec![
                    TrafficTarget::configuration("empty", 50),
                    TrafficTarget::configuration("failed", 50),
                ],
                r#"Configuration "failed" not ready, isFailure=true"#,
                r#"Configuration "failed" does not have any ready Revision."#,
            ),
            // FailedAndEmptyConfigurations: a later non-failure does not override
            (
                vec![
                    TrafficTarget::configuration("failed", 50),
                    TrafficTarget::configuration("empty", 50),
                ],
                r#"Configuration "failed" not ready, isFailure=true"#,
                r#"Configuration "failed" does not have any ready Revision."#,
            ),
        ];
        for (traffic, error, message) in cases {
            let err = build_traffic_configuration(&inv, &route(), &defaulted(traffic))
                .expect_err("must fail");
            assert_eq!(err.to_string(), error);
            assert_eq!(err.condition().message, message);
        }
    }

    #[test]
    fn revision_ownership() {
        // TestBuildTrafficConfiguration_RevisionOwnership
        let mut inv = fixture();
        inv.add_revision(RevisionInfo::ready("mine", "good", Some("my-service")));
        inv.add_revision(RevisionInfo::ready("theirs", "good", Some("other-service")));
        let owned = RouteRef {
            service: Some("my-service".into()),
            ..route()
        };
        let ok = build_traffic_configuration(
            &inv,
            &owned,
            &defaulted(vec![TrafficTarget::revision("mine", 100)]),
        );
        assert!(ok.is_ok());
        let err = build_traffic_configuration(
            &inv,
            &owned,
            &defaulted(vec![TrafficTarget::revision("theirs", 100)]),
        )
        .expect_err("other service");
        assert!(err.to_string().contains("my-service"), "{err}");
        assert_eq!(err.condition().reason, "RevisionNotOwned");
        assert_eq!(
            err.condition().message,
            r#"Revision "theirs" belongs to Service "other-service", not Service "my-service"."#
        );
        let err = build_traffic_configuration(
            &inv,
            &owned,
            &defaulted(vec![TrafficTarget::revision("good-revision-1", 100)]),
        )
        .expect_err("unlabelled revision");
        assert!(
            err.to_string().contains("does not belong to Service"),
            "{err}"
        );
        // a standalone route may reference any revision
        assert!(build_traffic_configuration(
            &inv,
            &route(),
            &defaulted(vec![TrafficTarget::revision("theirs", 100)])
        )
        .is_ok());
    }

    #[test]
    fn round_tripping_status_without_rollout() {
        // TestRoundTripping
        let tc =
            build_traffic_configuration(&fixture(), &route(), &preliminary()).expect("resolves");
        let status = tc
            .status_traffic(&Rollout::default(), &route(), &DomainConfig::default())
            .expect("hosts");
        let expected = vec![
            TrafficTarget {
                revision_name: "good-revision-1".into(),
                latest_revision: Some(false),
                percent: Some(100),
                ..Default::default()
            },
            TrafficTarget {
                tag: "beta".into(),
                revision_name: "good-revision-2".into(),
                latest_revision: Some(false),
                percent: Some(0),
                url: Some("http://beta-test-route.test.example.com".into()),
                ..Default::default()
            },
            TrafficTarget {
                tag: "alpha".into(),
                revision_name: "nice-revision-2".into(),
                latest_revision: Some(true),
                percent: Some(0),
                url: Some("http://alpha-test-route.test.example.com".into()),
                ..Default::default()
            },
        ];
        assert_eq!(status, expected);
    }

    #[test]
    fn round_tripping_status_with_rollout() {
        // TestRoundTrippingWithRollout: the alpha spec percent was 0, yet status shows 81/19.
        let mut inv = fixture();
        inv.add_revision(RevisionInfo::ready("older-rev", "good", None));
        let traffic = defaulted(vec![
            TrafficTarget::configuration("good", 100),
            TrafficTarget {
                tag: "beta".into(),
                revision_name: "good-revision-2".into(),
                ..Default::default()
            },
            TrafficTarget {
                tag: "alpha".into(),
                configuration_name: "nice".into(),
                ..Default::default()
            },
        ]);
        let tc = build_traffic_configuration(&inv, &route(), &traffic).expect("resolves");
        let two = |tag: &str, config: &str, a: (&str, i64), b: (&str, i64)| ConfigurationRollout {
            configuration_name: config.into(),
            tag: tag.into(),
            percent: 100,
            revisions: vec![
                RevisionRollout {
                    revision_name: a.0.into(),
                    percent: a.1,
                },
                RevisionRollout {
                    revision_name: b.0.into(),
                    percent: b.1,
                },
            ],
            step_params: RolloutParams::default(),
        };
        let rollout = Rollout {
            configurations: vec![
                two("", "good", ("older-rev", 56), ("good-revision-1", 44)),
                two(
                    "alpha",
                    "nice",
                    ("nice-revision-1", 81),
                    ("nice-revision-2", 19),
                ),
            ],
        };
        let status = tc
            .status_traffic(&rollout, &route(), &DomainConfig::default())
            .expect("hosts");
        let got: Vec<(&str, &str, i64, bool)> = status
            .iter()
            .map(|t| {
                (
                    t.tag.as_str(),
                    t.revision_name.as_str(),
                    t.percent_or_zero(),
                    t.url.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("", "older-rev", 56, false),
                ("", "good-revision-1", 44, false),
                ("beta", "good-revision-2", 0, true),
                ("alpha", "nice-revision-1", 81, true),
                ("alpha", "nice-revision-2", 19, true),
            ]
        );
    }
}
