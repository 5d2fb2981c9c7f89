//! What the ingress is programmed with, and how one request finds its group.
//!
//! `make_ingress` ports serving `pkg/reconciler/route/resources/ingress.go` (`IN:73-380`,
//! routing.md A11): rules per group and visibility, hosts, paths with tag-header matching, and
//! the weighted splits of each path, including a rollout's per-revision splits.
//! `RouteTable` is the compiled data-plane view that the simulator and the live gateway route
//! with: host (and `Knative-Serving-Tag` header) to a group, and each group's splits (A12: the
//! weights are copied exactly, no renormalisation).
//!
//! Must not: pick a revision (that is `pick`) or know about time.

use std::collections::{BTreeMap, HashMap};

use super::host::{DomainConfig, HostError};
use super::resolve::{Protocol, RevisionTarget, RouteRef, TrafficConfig, DEFAULT_TARGET};
use super::rollout::{ConfigurationRollout, Rollout};

/// `Knative-Serving-Tag` (networking `header.go:70`).
pub const TAG_HEADER: &str = "Knative-Serving-Tag";
/// `Knative-Serving-Default-Route` (networking `header.go:75`).
pub const DEFAULT_ROUTE_HEADER: &str = "Knative-Serving-Default-Route";
/// Headers appended to each split (serving `activator.go:23-25`).
pub const REVISION_HEADER: &str = "Knative-Serving-Revision";
pub const NAMESPACE_HEADER: &str = "Knative-Serving-Namespace";

/// Feature flags that change the ingress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoutingFeatures {
    /// config-features `tag-header-based-routing` (default disabled).
    pub tag_header_routing: bool,
    /// system-internal-tls: every split goes to port 443.
    pub system_internal_tls: bool,
}

/// Rule visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Visibility {
    ClusterLocal,
    ExternalIp,
}

/// One weighted destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub revision: String,
    pub percent: i64,
    /// 80 (http1), 81 (h2c) or 443 (system-internal-tls), from the target's *current* revision
    /// even for older rollout revisions (d.9).
    pub port: u16,
}

/// One path of a rule: optional exact header matches, headers appended, splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPath {
    pub headers: BTreeMap<String, String>,
    pub append_headers: BTreeMap<String, String>,
    pub splits: Vec<Split>,
}

/// One KIngress rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressRule {
    /// The group (tag) this rule serves; `""` is the default group.
    pub tag: String,
    pub visibility: Visibility,
    pub hosts: Vec<String>,
    pub paths: Vec<IngressPath>,
}

/// The KIngress spec (rules) plus the annotations splitlab reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    pub rules: Vec<IngressRule>,
    /// `networking.internal.knative.dev/tag-to-host`: tag to [cluster-local host, external host].
    pub tag_to_host: BTreeMap<String, [String; 2]>,
}

fn port_of(protocol: Protocol, features: RoutingFeatures) -> u16 {
    // networking ports.go:23-31
    match (features.system_internal_tls, protocol) {
        (true, _) => 443,
        (false, Protocol::H2c) => 81,
        (false, Protocol::Http1) => 80,
    }
}

/// The rollout entry the ingress uses for a latest target: binary search on configuration
/// name among the group's rollouts, returning the first with name >= wanted and **no equality
/// check** (IN:309-318, d.4). Harmless: a wrong match only matters with >= 2 revisions.
fn rollout_for<'a>(
    rollout: &'a Rollout,
    tag: &str,
    configuration: &str,
) -> Option<&'a ConfigurationRollout> {
    let by_tag = rollout.rollouts_by_tag(tag);
    by_tag.get(by_tag.partition_point(|c| c.configuration_name.as_str() < configuration))
}

/// `makeBaseIngressPath` splits (IN:320-380) of one consolidated group.
pub fn group_splits(
    tag: &str,
    targets: &[RevisionTarget],
    rollout: &Rollout,
    features: RoutingFeatures,
) -> Vec<Split> {
    let mut splits = Vec::with_capacity(targets.len() + 1);
    for target in targets.iter().filter(|t| t.percent != 0) {
        let port = port_of(target.protocol, features);
        let rolled = if target.latest_revision {
            rollout_for(rollout, tag, &target.configuration_name).filter(|c| c.revisions.len() >= 2)
        } else {
            None
        };
        match rolled {
            Some(cfg) => splits.extend(cfg.revisions.iter().map(|r| Split {
                revision: r.revision_name.clone(),
                percent: r.percent,
                port,
            })),
            None => splits.push(Split {
                revision: target.revision_name.clone(),
                percent: target.percent,
                port,
            }),
        }
    }
    splits
}

/// `MakeIngressSpec` (IN:73-380) for a route with external and cluster-local visibility.
pub fn make_ingress(
    tc: &TrafficConfig,
    rollout: &Rollout,
    route: &RouteRef,
    domain: &DomainConfig,
    features: RoutingFeatures,
) -> Result<Ingress, HostError> {
    let mut rules = Vec::new();
    let mut tag_to_host = BTreeMap::new();
    let group_paths: BTreeMap<&str, Vec<Split>> = tc
        .targets
        .iter()
        .map(|(tag, targets)| (tag.as_str(), group_splits(tag, targets, rollout, features)))
        .collect();
    // Rule names are the sorted keys of Targets, so "" comes first.
    for (tag, splits) in &group_paths {
        let local_hosts = domain.cluster_local_hosts(&route.name, &route.namespace, tag)?;
        let external = domain.external_host(&route.name, &route.namespace, tag)?;
        if !tag.is_empty() {
            let primary_local = local_hosts
                .iter()
                .max_by_key(|h| h.len())
                .cloned()
                .unwrap_or_default();
            tag_to_host.insert(tag.to_string(), [primary_local, external.clone()]);
        }
        let paths = if !features.tag_header_routing {
            vec![IngressPath {
                headers: BTreeMap::new(),
                append_headers: BTreeMap::new(),
                splits: splits.clone(),
            }]
        } else if tag.is_empty() {
            // IN:184-216: one header-matched path per tag (sorted), prepended to the base path,
            // which marks requests as having taken the default route.
            let mut paths: Vec<IngressPath> = group_paths
                .iter()
                .filter(|(t, _)| !t.is_empty())
                .map(|(t, s)| IngressPath {
                    headers: BTreeMap::from([(TAG_HEADER.to_string(), t.to_string())]),
                    append_headers: BTreeMap::new(),
                    splits: s.clone(),
                })
                .collect();
            paths.push(IngressPath {
                headers: BTreeMap::new(),
                append_headers: BTreeMap::from([(
                    DEFAULT_ROUTE_HEADER.to_string(),
                    "true".to_string(),
                )]),
                splits: splits.clone(),
            });
            paths
        } else {
            vec![IngressPath {
                headers: BTreeMap::new(),
                append_headers: BTreeMap::from([(TAG_HEADER.to_string(), tag.to_string())]),
                splits: splits.clone(),
            }]
        };
        rules.push(IngressRule {
            tag: tag.to_string(),
            visibility: Visibility::ClusterLocal,
            hosts: local_hosts,
            paths: paths.clone(),
        });
        // ExternalIP: one rule per host (since v1.21, IN:264-284).
        rules.push(IngressRule {
            tag: tag.to_string(),
            visibility: Visibility::ExternalIp,
            hosts: vec![external],
            paths,
        });
    }
    Ok(Ingress { rules, tag_to_host })
}

/// The metric tag queue-proxy records for a request (serving `routetag_handler.go:58-76`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricTag {
    /// Tag-header routing is off: `kn:disabled`.
    Disabled,
    /// The default route: `kn:default`.
    Default,
    /// A tag header that matched no tag fell through to the default route: `kn:undefined`.
    Undefined,
    /// The request reached this group (index) through its tag.
    Tag(usize),
}

/// Where one request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteDecision {
    /// Index into `RouteTable::groups`.
    pub group: usize,
    pub metric_tag: MetricTag,
}

/// One group's programmed split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRoute {
    pub tag: String,
    pub splits: Vec<Split>,
}

/// The compiled data-plane view of an ingress: host and tag header to a group; per group, its
/// splits. Group 0 is the default group when the route has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable {
    pub groups: Vec<GroupRoute>,
    hosts: HashMap<String, usize>,
    header_tags: HashMap<String, usize>,
    tag_header_routing: bool,
}

impl RouteTable {
    /// Compiles the route table from an ingress.
    pub fn from_ingress(ingress: &Ingress, features: RoutingFeatures) -> Self {
        let mut groups: Vec<GroupRoute> = Vec::new();
        let mut index_of: BTreeMap<String, usize> = BTreeMap::new();
        let mut hosts = HashMap::new();
        for rule in &ingress.rules {
            let base = rule
                .paths
                .last()
                .map(|p| p.splits.clone())
                .unwrap_or_default();
            let idx = *index_of.entry(rule.tag.clone()).or_insert_with(|| {
                groups.push(GroupRoute {
                    tag: rule.tag.clone(),
                    splits: base,
                });
                groups.len() - 1
            });
            for host in &rule.hosts {
                hosts.insert(host.clone(), idx);
            }
        }
        let header_tags = if features.tag_header_routing {
            index_of
                .iter()
                .filter(|(t, _)| !t.is_empty())
                .map(|(t, i)| (t.clone(), *i))
                .collect()
        } else {
            HashMap::new()
        };
        RouteTable {
            groups,
            hosts,
            header_tags,
            tag_header_routing: features.tag_header_routing,
        }
    }

    /// Builds the table straight from a resolved configuration and the effective rollout.
    pub fn build(
        tc: &TrafficConfig,
        rollout: &Rollout,
        route: &RouteRef,
        domain: &DomainConfig,
        features: RoutingFeatures,
    ) -> Result<Self, HostError> {
        Ok(Self::from_ingress(
            &make_ingress(tc, rollout, route, domain, features)?,
            features,
        ))
    }

    /// The index of the group with this tag (`""` for the default group).
    pub fn group_index(&self, tag: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.tag == tag)
    }

    /// Routes a request by its `Host` (a port suffix and letter case are ignored) and its
    /// `Knative-Serving-Tag` header. Unknown hosts get `None` (the gateway answers 404).
    /// On the default host with tag-header routing on, a known tag selects that tag's group and
    /// an unknown one falls through to the default group (d.19).
    pub fn route(&self, host: &str, tag_header: Option<&str>) -> Option<RouteDecision> {
        let host = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let group = match self.hosts.get(host) {
            Some(g) => *g,
            None => *self.hosts.get(&host.to_ascii_lowercase())?,
        };
        let is_default = self.groups[group].tag == DEFAULT_TARGET;
        if !self.tag_header_routing {
            return Some(RouteDecision {
                group,
                metric_tag: MetricTag::Disabled,
            });
        }
        if !is_default {
            return Some(RouteDecision {
                group,
                metric_tag: MetricTag::Tag(group),
            });
        }
        Some(match tag_header {
            Some(tag) => match self.header_tags.get(tag) {
                Some(&g) => RouteDecision {
                    group: g,
                    metric_tag: MetricTag::Tag(g),
                },
                None => RouteDecision {
                    group,
                    metric_tag: MetricTag::Undefined,
                },
            },
            None => RouteDecision {
                group,
                metric_tag: MetricTag::Default,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::rollout::{RevisionRollout, RolloutParams};

    fn target(
        tag: &str,
        revision: &str,
        config: &str,
        latest: bool,
        percent: i64,
    ) -> RevisionTarget {
        RevisionTarget {
            tag: tag.into(),
            revision_name: revision.into(),
            configuration_name: config.into(),
            latest_revision: latest,
            percent,
            protocol: Protocol::Http1,
        }
    }

    fn route() -> RouteRef {
        RouteRef {
            name: "test-route".into(),
            namespace: "test-ns".into(),
            service: None,
        }
    }

    /// TestMakeIngressSpecCorrectRules: "" -> v2 at 100, v1 -> v1 at 100.
    fn two_groups() -> TrafficConfig {
        TrafficConfig {
            targets: BTreeMap::from([
                ("".to_string(), vec![target("", "v2", "config", false, 100)]),
                (
                    "v1".to_string(),
                    vec![target("v1", "v1", "config", false, 100)],
                ),
            ]),
            revision_targets: vec![],
        }
    }

    fn split(revision: &str, percent: i64) -> Split {
        Split {
            revision: revision.into(),
            percent,
            port: 80,
        }
    }

    #[test]
    fn correct_rules() {
        // TestMakeIngressSpecCorrectRules
        let ing = make_ingress(
            &two_groups(),
            &Rollout::default(),
            &route(),
            &DomainConfig::default(),
            RoutingFeatures::default(),
        )
        .expect("valid");
        let got: Vec<(Visibility, Vec<String>, Vec<Split>)> = ing
            .rules
            .iter()
            .map(|r| (r.visibility, r.hosts.clone(), r.paths[0].splits.clone()))
            .collect();
        let s = |v: &[&str]| v.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (
                    Visibility::ClusterLocal,
                    s(&[
                        "test-route.test-ns",
                        "test-route.test-ns.svc",
                        "test-route.test-ns.svc.cluster.local"
                    ]),
                    vec![split("v2", 100)]
                ),
                (
                    Visibility::ExternalIp,
                    s(&["test-route.test-ns.example.com"]),
                    vec![split("v2", 100)]
                ),
                (
                    Visibility::ClusterLocal,
                    s(&[
                        "v1-test-route.test-ns",
                        "v1-test-route.test-ns.svc",
                        "v1-test-route.test-ns.svc.cluster.local"
                    ]),
                    vec![split("v1", 100)]
                ),
                (
                    Visibility::ExternalIp,
                    s(&["v1-test-route.test-ns.example.com"]),
                    vec![split("v1", 100)]
                ),
            ]
        );
        assert!(ing
            .rules
            .iter()
            .all(|r| r.paths.len() == 1 && r.paths[0].append_headers.is_empty()));
    }

    #[test]
    fn correct_rules_with_tag_based_routing() {
        // TestMakeIngressSpecCorrectRulesWithTagBasedRouting
        let features = RoutingFeatures {
            tag_header_routing: true,
            ..Default::default()
        };
        let ing = make_ingress(
            &two_groups(),
            &Rollout::default(),
            &route(),
            &DomainConfig::default(),
            features,
        )
        .expect("valid");
        let default_rule = &ing.rules[1];
        assert_eq!(default_rule.tag, "");
        assert_eq!(
            default_rule.paths,
            vec![
                IngressPath {
                    headers: BTreeMap::from([(TAG_HEADER.into(), "v1".into())]),
                    append_headers: BTreeMap::new(),
                    splits: vec![split("v1", 100)],
                },
                IngressPath {
                    headers: BTreeMap::new(),
                    append_headers: BTreeMap::from([(DEFAULT_ROUTE_HEADER.into(), "true".into())]),
                    splits: vec![split("v2", 100)],
                },
            ]
        );
        assert_eq!(
            ing.rules[3].paths,
            vec![IngressPath {
                headers: BTreeMap::new(),
                append_headers: BTreeMap::from([(TAG_HEADER.into(), "v1".into())]),
                splits: vec![split("v1", 100)],
            }]
        );
    }

    #[test]
    fn actual_rollout_splits_and_tag_to_host() {
        // TestMakeIngressWithActualRollout: the builder copies the rollout as-is.
        let tc = TrafficConfig {
            targets: BTreeMap::from([
                (
                    "".to_string(),
                    vec![
                        target("", "rune-01911", "rune", true, 1),
                        target("", "valhalla-01982", "valhalla", true, 99),
                    ],
                ),
                (
                    "hammer".to_string(),
                    vec![
                        target("hammer", "thor-02020", "thor", true, 80),
                        target("hammer", "thor-beta", "thor", false, 20),
                    ],
                ),
            ]),
            revision_targets: vec![],
        };
        let cfg =
            |tag: &str, name: &str, percent: i64, revs: &[(&str, i64)]| ConfigurationRollout {
                configuration_name: name.into(),
                tag: tag.into(),
                percent,
                revisions: revs
                    .iter()
                    .map(|(r, p)| RevisionRollout {
                        revision_name: r.to_string(),
                        percent: *p,
                    })
                    .collect(),
                step_params: RolloutParams::default(),
            };
        let rollout = Rollout {
            configurations: vec![
                // upstream's list is unsorted and names rune twice; the lookup still finds rune
                cfg("", "rune", 1, &[("rune-01911", 1)]),
                cfg(
                    "",
                    "valhalla",
                    99,
                    &[("valhalla-01981", 41), ("valhalla-01982", 68)],
                ),
                cfg("", "rune", 1, &[("rune-01911", 1)]),
                cfg(
                    "hammer",
                    "thor",
                    80,
                    &[("thor-02018", 60), ("thor-02019", 15), ("thor-02020", 5)],
                ),
            ],
        };
        let ing = make_ingress(
            &tc,
            &rollout,
            &route(),
            &DomainConfig::default(),
            RoutingFeatures::default(),
        )
        .expect("valid");
        assert_eq!(
            ing.rules[0].paths[0].splits,
            vec![
                split("rune-01911", 1),
                split("valhalla-01981", 41),
                split("valhalla-01982", 68)
            ]
        );
        assert_eq!(
            ing.rules[2].paths[0].splits,
            vec![
                split("thor-02018", 60),
                split("thor-02019", 15),
                split("thor-02020", 5),
                split("thor-beta", 20)
            ]
        );
        assert_eq!(
            ing.tag_to_host,
            BTreeMap::from([(
                "hammer".to_string(),
                [
                    "hammer-test-route.test-ns.svc.cluster.local".to_string(),
                    "hammer-test-route.test-ns.example.com".to_string()
                ]
            )])
        );
    }

    #[test]
    fn zero_percent_target_is_skipped_and_two_targets_keep_weights() {
        // TestMakeIngressRuleZeroPercentTarget and TestMakeIngressRuleTwoTargets
        let zero = vec![
            target("", "dolphin", "c", false, 100),
            target("", "orca", "c", false, 0),
        ];
        assert_eq!(
            group_splits("", &zero, &Rollout::default(), RoutingFeatures::default()),
            vec![split("dolphin", 100)]
        );
        let two = vec![
            target("a-tag", "beluga", "c", false, 80),
            target("a-tag", "narwhal", "c", false, 20),
        ];
        assert_eq!(
            group_splits(
                "a-tag",
                &two,
                &Rollout::default(),
                RoutingFeatures::default()
            ),
            vec![split("beluga", 80), split("narwhal", 20)]
        );
    }

    #[test]
    fn ports_follow_protocol_and_tls() {
        let mut h2 = target("", "r", "c", false, 100);
        h2.protocol = Protocol::H2c;
        let splits = group_splits(
            "",
            std::slice::from_ref(&h2),
            &Rollout::default(),
            RoutingFeatures::default(),
        );
        assert_eq!(splits[0].port, 81);
        let tls = RoutingFeatures {
            system_internal_tls: true,
            ..Default::default()
        };
        assert_eq!(
            group_splits("", &[h2], &Rollout::default(), tls)[0].port,
            443
        );
    }

    #[test]
    fn host_and_header_routing() {
        let dc = DomainConfig::default();
        let off = RouteTable::build(
            &two_groups(),
            &Rollout::default(),
            &route(),
            &dc,
            RoutingFeatures::default(),
        )
        .expect("valid");
        let on_features = RoutingFeatures {
            tag_header_routing: true,
            ..Default::default()
        };
        let on = RouteTable::build(
            &two_groups(),
            &Rollout::default(),
            &route(),
            &dc,
            on_features,
        )
        .expect("valid");
        let default = off.group_index("").expect("default group");
        let v1 = off.group_index("v1").expect("v1 group");
        // (table, host, tag header, expected group, expected metric tag)
        let cases = [
            // the default host reaches the default group
            (
                &off,
                "test-route.test-ns.example.com",
                None,
                Some(default),
                Some(MetricTag::Disabled),
            ),
            // a port suffix and upper case are ignored
            (
                &off,
                "Test-Route.test-ns.example.com:8080",
                None,
                Some(default),
                Some(MetricTag::Disabled),
            ),
            // cluster-local short name
            (
                &off,
                "test-route.test-ns",
                None,
                Some(default),
                Some(MetricTag::Disabled),
            ),
            // the tag host reaches the tag's group
            (
                &off,
                "v1-test-route.test-ns.example.com",
                None,
                Some(v1),
                Some(MetricTag::Disabled),
            ),
            // with the feature off, the header is ignored
            (
                &off,
                "test-route.test-ns.example.com",
                Some("v1"),
                Some(default),
                Some(MetricTag::Disabled),
            ),
            // feature on: the header selects the tag
            (
                &on,
                "test-route.test-ns.example.com",
                Some("v1"),
                Some(v1),
                Some(MetricTag::Tag(v1)),
            ),
            // feature on: an unknown tag falls through to the default group (kn:undefined)
            (
                &on,
                "test-route.test-ns.example.com",
                Some("nope"),
                Some(default),
                Some(MetricTag::Undefined),
            ),
            // feature on, no header: kn:default
            (
                &on,
                "test-route.test-ns.example.com",
                None,
                Some(default),
                Some(MetricTag::Default),
            ),
            // feature on, the tag host keeps its group whatever the header says
            (
                &on,
                "v1-test-route.test-ns.example.com",
                Some("zzz"),
                Some(v1),
                Some(MetricTag::Tag(v1)),
            ),
            // an unknown host
            (&off, "other.test-ns.example.com", None, None, None),
        ];
        for (table, host, header, group, tag) in cases {
            let got = table.route(host, header);
            assert_eq!(got.map(|d| d.group), group, "{host} {header:?}");
            assert_eq!(got.map(|d| d.metric_tag), tag, "{host} {header:?}");
        }
    }
}
