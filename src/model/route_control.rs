//! The Route's control loop and the ingress data plane it programs: what the simulator and the
//! live gateway share, so that "the same routing core" is one piece of code, not two.
//!
//! - `RouteControl` is the route reconciler (serving `pkg/reconciler/route/route.go:331-383` and
//!   `resources/ingress.go`, routing.md RR/RG): it holds the Service's `spec.traffic`, the
//!   rollout annotation and the programmed generations, resolves the traffic against the
//!   revisions that exist, steps the rollout with `reconcile_rollout`, and compiles the route
//!   table. It also applies `kn service update` edits (kn's `compute`, then the webhook).
//! - `DataPlane` is the ingress's view of one programmed table: a picker per group, the group of
//!   each host and tag header, and the revision index of each split.
//!
//! Must not: schedule anything or read a clock. `now` is an argument; the caller decides when a
//! reconcile happens and applies a new generation after its own ingress programming delay
//! (`Reconciled::program`), then calls `RouteControl::programmed` and reconciles again, so that
//! ObserveReady sees the real delay and the rollout's step interval emerges from it.

use std::collections::BTreeMap;

use rand::Rng;

use crate::model::arrival::Address;
use crate::model::time::SimTime;
use crate::routing::host::DomainConfig;
use crate::routing::ingress::{
    MetricTag, RouteTable, RoutingFeatures, DEFAULT_ROUTE_HEADER, TAG_HEADER,
};
use crate::routing::kn::{
    compute, Command, RevisionInfo as KnRevision, ServiceState, TrafficFlags,
};
use crate::routing::pick::{Pick, Picker, PickerKind};
use crate::routing::resolve::{
    build_traffic_configuration, ConditionStatus, Inventory, RevisionInfo, RouteRef,
};
use crate::routing::rollout::reconcile_rollout;
use crate::routing::target::{default_traffic, service_route_traffic};
use crate::routing::validation::validate_service;
use crate::routing::{ObjectMeta, TrafficTarget};
use crate::scenario::spec::ServiceSpec;

/// Time 0 is this Unix-nanosecond instant for the rollout machine: Knative's `StartTime == 0`
/// means "unset", and its f64 arithmetic is reproduced at real magnitudes.
const EPOCH_NS: i64 = 1_000_000_000_000_000_000;

/// A revision as the route reconciler sees it: created, Ready or not.
#[derive(Clone, Copy, Debug)]
pub struct RevisionState<'a> {
    pub name: &'a str,
    pub ready: bool,
}

/// A rollout of a configuration (within a tag) started or finished at a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutChange {
    Started(String),
    Finished(String),
}

/// What one reconcile decided.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// A new ingress generation to apply after the programming delay.
    pub program: Option<u64>,
    /// When the rollout wants to be reconciled again (its next step).
    pub next_at: Option<SimTime>,
    pub rollouts: Vec<RolloutChange>,
    pub warning: Option<String>,
}

/// The route reconciler's state.
#[derive(Clone, Debug)]
pub struct RouteControl {
    configuration: String,
    traffic: Vec<TrafficTarget>,
    rollout_secs: i64,
    annotation: Option<String>,
    desired_table: Option<RouteTable>,
    desired_gen: u64,
    applied_gen: u64,
    route_ingress_ready: bool,
    rolling: BTreeMap<String, bool>,
    meta: ObjectMeta,
    domain: DomainConfig,
    features: RoutingFeatures,
    route: RouteRef,
}

impl RouteControl {
    /// `traffic` is the Service's validated `spec.traffic`; it is defaulted here.
    pub fn new(service: &ServiceSpec, traffic: &[TrafficTarget]) -> Self {
        let mut traffic = traffic.to_vec();
        default_traffic(&mut traffic, true);
        RouteControl {
            configuration: service.name.clone(),
            traffic,
            rollout_secs: service.rollout_duration_secs,
            annotation: None,
            desired_table: None,
            desired_gen: 0,
            applied_gen: 0,
            route_ingress_ready: false,
            rolling: BTreeMap::new(),
            meta: ObjectMeta {
                name: service.name.clone(),
                namespace: service.namespace.clone(),
                ..Default::default()
            },
            domain: DomainConfig {
                domain: service.domain.clone(),
                ..DomainConfig::default()
            },
            features: RoutingFeatures {
                tag_header_routing: service.tag_header_routing,
                system_internal_tls: false,
            },
            route: RouteRef {
                name: service.name.clone(),
                namespace: service.namespace.clone(),
                service: Some(service.name.clone()),
            },
        }
    }

    /// The generation the data plane applies now; the reconciler then runs again.
    pub fn programmed(&mut self, generation: u64) {
        self.applied_gen = self.applied_gen.max(generation);
    }

    /// Whether `generation` is newer than what the data plane has.
    pub fn is_new(&self, generation: u64) -> bool {
        generation > self.applied_gen
    }

    /// The table of the newest generation (what a data plane applying it compiles).
    pub fn desired_table(&self) -> Option<&RouteTable> {
        self.desired_table.as_ref()
    }

    /// Whether the desired table references `revision` in any group: a revision no route
    /// references is unreachable, and the autoscaler drops its min-scale and scale-down limits
    /// (pa.go:54-82).
    pub fn reachable(&self, revision: &str) -> bool {
        self.desired_table.as_ref().is_some_and(|t| {
            t.groups
                .iter()
                .any(|g| g.splits.iter().any(|s| s.revision == revision))
        })
    }

    /// Replaces `spec.traffic` (already validated as a Service's); reconcile afterwards.
    pub fn set_traffic(&mut self, traffic: &[TrafficTarget]) {
        let mut t = traffic.to_vec();
        default_traffic(&mut t, true);
        self.traffic = t;
    }

    /// Changes the rollout duration (whole seconds; 0 disables); reconcile afterwards.
    pub fn set_rollout_duration(&mut self, secs: i64) {
        self.rollout_secs = secs;
    }

    /// A `kn service update --traffic/--tag/--untag` edit of the traffic in force, validated by
    /// the webhook; on success reconcile afterwards. `created` lists the revisions that exist.
    pub fn apply_kn(
        &mut self,
        traffic: &[String],
        tags: &[String],
        untags: &[String],
        created: &[&str],
        latest_ready: &str,
    ) -> Result<(), String> {
        let status: Vec<TrafficTarget> = self
            .traffic
            .iter()
            .map(|t| {
                let mut s = t.clone();
                if s.is_latest() {
                    s.revision_name = latest_ready.to_string();
                }
                s
            })
            .collect();
        let revisions: Vec<KnRevision> = created
            .iter()
            .map(|name| KnRevision {
                name: (*name).to_string(),
                tags_annotation: String::new(),
            })
            .collect();
        let state = ServiceState {
            name: self.configuration.clone(),
            spec_traffic: self.traffic.clone(),
            status_traffic: status,
            latest_ready_revision: latest_ready.to_string(),
        };
        let mut t = TrafficFlags::from_occurrences(traffic, tags, untags)
            .and_then(|flags| compute(&state, &flags, &revisions, false, Command::Update))
            .map_err(|e| format!("kn edit failed: {e}"))?;
        default_traffic(&mut t, true);
        if let Some(err) = validate_service(&self.meta, &t) {
            return Err(format!("kn edit rejected by the webhook: {err}"));
        }
        self.traffic = t;
        Ok(())
    }

    /// The route reconciler (RR:331-383, RG:164-197) at `now`, over the created revisions.
    pub fn reconcile(
        &mut self,
        now: SimTime,
        revisions: &[RevisionState<'_>],
        latest_ready: &str,
    ) -> Reconciled {
        let mut out = Reconciled::default();
        let mut inv = Inventory::default();
        for r in revisions {
            let mut info =
                RevisionInfo::ready(r.name, &self.configuration, Some(&self.configuration));
            info.ready = if r.ready {
                ConditionStatus::True
            } else {
                ConditionStatus::Unknown
            };
            inv.add_revision(info);
        }
        inv.add_configuration(&self.configuration, latest_ready, ConditionStatus::True);
        let route_traffic = service_route_traffic(&self.traffic, &self.configuration);
        let tc = match build_traffic_configuration(&inv, &self.route, &route_traffic) {
            Ok(tc) => tc,
            // d.13: a target error freezes the ingress; the last good split stays live.
            Err(_) => return out,
        };
        let cur = tc.build_rollout();
        let ingress_ready = self.applied_gen == self.desired_gen;
        let (effective, next_ns) = reconcile_rollout(
            &cur,
            self.annotation.as_deref(),
            self.rollout_secs,
            ingress_ready,
            self.route_ingress_ready,
            EPOCH_NS + now.as_nanos(),
        );
        self.annotation = Some(effective.to_json());
        let table =
            match RouteTable::build(&tc, &effective, &self.route, &self.domain, self.features) {
                Ok(t) => t,
                Err(e) => {
                    out.warning = Some(format!("the route cannot be programmed: {e}"));
                    return out;
                }
            };
        if self.desired_table.as_ref() != Some(&table) {
            self.desired_table = Some(table);
            self.desired_gen += 1;
            out.program = Some(self.desired_gen);
        }
        self.route_ingress_ready = self.applied_gen == self.desired_gen && effective.done();
        for cfg in &effective.configurations {
            let key = format!("{}/{}", cfg.tag, cfg.configuration_name);
            let in_progress = cfg.revisions.len() >= 2;
            let was = self.rolling.get(&key).copied().unwrap_or(false);
            if in_progress && !was {
                out.rollouts
                    .push(RolloutChange::Started(cfg.configuration_name.clone()));
            } else if !in_progress && was {
                out.rollouts
                    .push(RolloutChange::Finished(cfg.configuration_name.clone()));
            }
            self.rolling.insert(key, in_progress);
        }
        if next_ns > 0 {
            out.next_at = Some(SimTime(next_ns - EPOCH_NS).max(now));
        }
        out
    }

    /// The route's main host (`{route}.{namespace}.{domain}`) or a tag's own host.
    pub fn host(&self, tag: &str) -> String {
        self.domain
            .external_host(&self.route.name, &self.route.namespace, tag)
            .unwrap_or_default()
    }
}

/// A change to one group's programmed split, for the run's `routes.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    pub tag: String,
    pub splits: Vec<(String, i64)>,
}

/// The data plane of one programmed route table.
#[derive(Clone, Debug, Default)]
pub struct DataPlane {
    table: Option<RouteTable>,
    /// Per group; `None` for a group the data plane cannot route (no positive weight, or a
    /// revision the scenario does not know), whose requests end as errors.
    pickers: Vec<Option<Picker>>,
    group_revs: Vec<Vec<u32>>,
    default_group: Option<usize>,
    main_group: Option<usize>,
    host_groups: Vec<Option<usize>>,
    header_groups: Vec<Option<usize>>,
    /// Whether the pickers read the request's key (`hash`): callers skip computing it otherwise.
    keyed: bool,
}

/// What a data plane decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    /// Revision index.
    pub revision: u32,
    /// Whether the request took the route's main split rather than a tag's.
    pub default_group: bool,
}

impl DataPlane {
    /// Compiles `table` (the newest generation of `control`) with fresh pickers of `kind`.
    /// `revision_index` maps revision names to indices; `tags` are the arrival process's tags,
    /// whose hosts and headers are resolved once here. Returns the plane, the groups whose
    /// split differs from `previous`, and a warning per group that cannot be routed.
    pub fn program(
        control: &RouteControl,
        table: &RouteTable,
        previous: Option<&DataPlane>,
        kind: PickerKind,
        revision_index: &BTreeMap<String, u32>,
        tags: &[String],
    ) -> (DataPlane, Vec<GroupChange>, Vec<String>) {
        let mut plane = DataPlane {
            keyed: kind == PickerKind::Hash,
            ..DataPlane::default()
        };
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        let previous = previous.and_then(|p| p.table.as_ref());
        for group in &table.groups {
            let weights: Vec<u32> = group
                .splits
                .iter()
                .map(|s| s.percent.clamp(0, 100) as u32)
                .collect();
            let revs: Option<Vec<u32>> = group
                .splits
                .iter()
                .map(|s| revision_index.get(&s.revision).copied())
                .collect();
            let picker = match revs.as_ref() {
                Some(_) => Picker::new(kind, &weights).ok(),
                None => None,
            };
            if picker.is_none() {
                warnings.push(format!(
                    "route group {:?} cannot be routed: {:?}",
                    group.tag, group.splits
                ));
            }
            plane.pickers.push(picker);
            plane.group_revs.push(revs.unwrap_or_default());
            let changed =
                previous.and_then(|p| p.groups.iter().find(|g| g.tag == group.tag)) != Some(group);
            if changed {
                changes.push(GroupChange {
                    tag: group.tag.clone(),
                    splits: group
                        .splits
                        .iter()
                        .map(|s| (s.revision.clone(), s.percent))
                        .collect(),
                });
            }
        }
        let main_host = control.host("");
        plane.default_group = table.group_index("");
        plane.main_group = table.route(&main_host, None).map(|d| d.group);
        plane.host_groups = tags
            .iter()
            .map(|t| table.route(&control.host(t), None).map(|d| d.group))
            .collect();
        plane.header_groups = tags
            .iter()
            .map(|t| table.route(&main_host, Some(t)).map(|d| d.group))
            .collect();
        plane.table = Some(table.clone());
        (plane, changes, warnings)
    }

    /// The group a generated arrival's address reaches (resolved when programmed).
    pub fn group_of(&self, address: Address) -> Option<usize> {
        match address {
            Address::Main => self.main_group,
            Address::Host(i) => self.host_groups.get(i as usize).copied().flatten(),
            Address::Header(i) => self.header_groups.get(i as usize).copied().flatten(),
        }
    }

    /// The group an HTTP request reaches by its `Host` and `Knative-Serving-Tag` header.
    pub fn group_of_request(&self, host: &str, tag_header: Option<&str>) -> Option<usize> {
        self.table
            .as_ref()?
            .route(host, tag_header)
            .map(|d| d.group)
    }

    /// The route of an HTTP request (as `group_of_request`) with the route tag the queue-proxy
    /// will record, and the header the ingress appends for it (`routing::ingress`: a tag route
    /// appends `Knative-Serving-Tag`, the default route `Knative-Serving-Default-Route: true`
    /// when tag-header routing is on; nothing when it is off).
    pub fn route_of_request(
        &self,
        host: &str,
        tag_header: Option<&str>,
    ) -> Option<(usize, Option<(&'static str, &str)>)> {
        let table = self.table.as_ref()?;
        let d = table.route(host, tag_header)?;
        let append = match d.metric_tag {
            MetricTag::Disabled => None,
            MetricTag::Default | MetricTag::Undefined => Some((DEFAULT_ROUTE_HEADER, "true")),
            MetricTag::Tag(g) => Some((TAG_HEADER, table.groups[g].tag.as_str())),
        };
        Some((d.group, append))
    }

    /// Whether `pick` reads its `client` key (the `hash` picker); for the others any key does.
    pub fn keyed(&self) -> bool {
        self.keyed
    }

    /// Picks a revision in `group` for a request of `client`; `None` when the group cannot be
    /// routed (the ingress answers with an error).
    #[inline]
    pub fn pick<R: Rng + ?Sized>(
        &mut self,
        group: usize,
        client: u64,
        rng: &mut R,
    ) -> Option<Routed> {
        let picker = self.pickers.get_mut(group)?.as_mut()?;
        let split = picker.pick(client, rng);
        Some(Routed {
            revision: self.group_revs[group][split],
            default_group: Some(group) == self.default_group,
        })
    }
}
