//! The Route's control loop and the ingress data plane it programs: what the simulator and the
//! live gateway share, so that "the same routing core" is one piece of code, not two.
//!
//! - `RouteControl` is the route reconciler (serving `pkg/reconciler/route/route.go:331-383` and
//!   `resources/ingress.go`, routing.md RR/RG): it holds the Service's `spec.traffic`, the
//!   rollout annotation and the programmed generations, resolves the traffic against the
//!   revisions that exist, steps the rollout with `reconcile_rollout`, and compiles the route
//!   table. It also applies `kn service update` edits (kn's `compute`, then the webhook).
//! - `rollout_timeline` plays `RouteControl` and an ingress with a fixed programming delay over
//!   one rollout, as the simulator does, for `load --expect-rollout`'s expected split.
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
use crate::model::time::{SimDuration, SimTime};
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

/// Upper bound on the reconciles and programmings `rollout_timeline` plays: a rollout has at most
/// 99 steps per configuration, each one reconcile and one programming (plus the readiness
/// reconcile); this only guards against a machine that never settles.
const MAX_TIMELINE_EVENTS: usize = 10_000;

/// One group's split: `(revision, percent)`, as the route table lists it.
pub type GroupSplit = Vec<(String, i64)>;

/// One group's split before a rollout (`None`) and from each time since its start on.
pub type GroupSteps = Vec<(Option<SimDuration>, GroupSplit)>;

/// What the data plane carries over a rollout, as `rollout_timeline` plays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutTimeline {
    /// Every group's split in steady state before the rollout (only `from` exists and is ready).
    pub before: Vec<GroupChange>,
    /// From `t` on (time since the rollout started, non-decreasing), the groups whose split the
    /// newly applied generation changed.
    pub steps: Vec<(SimDuration, Vec<GroupChange>)>,
}

impl RolloutTimeline {
    /// The split of group `tag` (`""`: the route's main group) before the rollout and at each
    /// step that changed it: `(t, split)`, the first at `None` (before the rollout).
    pub fn group(&self, tag: &str) -> GroupSteps {
        let find = |changes: &[GroupChange]| {
            changes
                .iter()
                .find(|c| c.tag == tag)
                .map(|c| c.splits.clone())
        };
        let mut out: GroupSteps = Vec::new();
        if let Some(s) = find(&self.before) {
            out.push((None, s));
        }
        for (t, changes) in &self.steps {
            if let Some(s) = find(changes) {
                out.push((Some(*t), s));
            }
        }
        out
    }
}

/// The route reconciler and the ingress over one rollout, played as the simulator plays them
/// (`sim::world`: reconcile, program after the ingress's delay, `programmed`, reconcile again at
/// each `next_at`): the Service's configuration has `from` as its latest ready revision (steady
/// state), and at t = 0 `to` becomes its latest ready revision, which is when Knative's rollout
/// starts (routing.md A4; serving `pkg/reconciler/route/route.go:331-383`). Every generation
/// takes `programming_delay` to be applied, and ObserveReady sees that delay, so the step
/// interval and the first step's time come out of the same code as in a simulated run.
///
/// `traffic` is the Service's validated `spec.traffic`; revisions it pins by name exist and are
/// ready throughout. The play ends when nothing more is scheduled (the rollout is done) or when
/// a reconcile is asked for later than `until`.
pub fn rollout_timeline(
    service: &ServiceSpec,
    traffic: &[TrafficTarget],
    from: &str,
    to: &str,
    programming_delay: SimDuration,
    until: SimDuration,
) -> RolloutTimeline {
    let delay = SimDuration(programming_delay.as_nanos().max(0));
    let mut control = RouteControl::new(service, traffic);
    let mut names: Vec<&str> = traffic
        .iter()
        .filter(|t| !t.revision_name.is_empty())
        .map(|t| t.revision_name.as_str())
        .collect();
    names.push(from);
    names.sort_unstable();
    names.dedup();
    let groups_of = |control: &RouteControl| -> Vec<GroupChange> {
        control
            .desired_table()
            .map(|t| {
                t.groups
                    .iter()
                    .map(|g| GroupChange {
                        tag: g.tag.clone(),
                        splits: g
                            .splits
                            .iter()
                            .map(|s| (s.revision.clone(), s.percent))
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Steady state before the rollout: the ingress has applied the baseline.
    let before_revs = ready_states(&names);
    let start = SimTime::ZERO;
    if let Some(gen) = control.reconcile(start, &before_revs, from).program {
        control.programmed(gen);
        control.reconcile(start, &before_revs, from);
    }
    let before = groups_of(&control);

    // t = 0: `to` is created and ready, and becomes the latest ready revision.
    names.push(to);
    names.sort_unstable();
    names.dedup();
    let revs = ready_states(&names);
    let mut applied = before.clone();
    let mut steps: Vec<(SimDuration, Vec<GroupChange>)> = Vec::new();
    // Pending programmings (apply time, generation), in time order (one delay for all).
    let mut programs: std::collections::VecDeque<(SimTime, u64)> = Default::default();
    let mut reconcile_at: Option<SimTime> = Some(start);
    let end = start + until;
    for _ in 0..MAX_TIMELINE_EVENTS {
        // The next event: a programming before a reconcile at the same instant (it was
        // scheduled first: the reconcile that asked for it ran earlier or at that instant).
        let next_program = programs.front().map(|(t, _)| *t);
        let now = match (next_program, reconcile_at) {
            (Some(p), Some(r)) if p <= r => p,
            (Some(p), None) => p,
            (_, Some(r)) => r,
            (None, None) => break,
        };
        if now > end {
            break;
        }
        if next_program == Some(now) {
            let (_, gen) = programs.pop_front().expect("a programming is due");
            control.programmed(gen);
            let groups = groups_of(&control);
            let changed: Vec<GroupChange> = groups
                .iter()
                .filter(|g| !applied.contains(g))
                .cloned()
                .collect();
            if !changed.is_empty() {
                steps.push((now.since(start), changed));
            }
            applied = groups;
        } else {
            reconcile_at = None;
        }
        let out = control.reconcile(now, &revs, to);
        if let Some(gen) = out.program {
            programs.push_back((now + delay, gen));
        }
        if let Some(at) = out.next_at {
            if reconcile_at.is_none_or(|t| at < t) {
                reconcile_at = Some(at.max(now));
            }
        }
    }
    RolloutTimeline { before, steps }
}

/// Every revision of `names`, created and ready.
fn ready_states<'a>(names: &[&'a str]) -> Vec<RevisionState<'a>> {
    names
        .iter()
        .map(|n| RevisionState {
            name: n,
            ready: true,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// A group's splits over time, in nanoseconds.
    type Rows = Vec<(Option<i64>, Vec<(String, i64)>)>;

    fn service(rollout_secs: i64) -> ServiceSpec {
        ServiceSpec {
            name: "hello".into(),
            namespace: "default".into(),
            domain: "example.com".into(),
            rollout_duration_secs: rollout_secs,
            tag_header_routing: false,
        }
    }

    fn latest(percent: i64, tag: &str) -> TrafficTarget {
        TrafficTarget {
            tag: tag.into(),
            latest_revision: Some(true),
            percent: Some(percent),
            ..Default::default()
        }
    }

    fn split(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    #[test]
    fn the_main_group_follows_knatives_schedule() {
        // Each row's schedule is computed by hand from serving's rollout.go (routing.md
        // "computeProperties"): with the ingress's delay d, ObserveReady runs when the first 1%
        // is applied (t = d), elapsed = d, minStepSec = max(1, ceil(d)), numSteps = (rd −
        // minStepSec)/minStepSec, stepSize = round(99/numSteps), each step applied d after its
        // reconcile.
        // (what, rollout s, delay ns, main group's splits over time)
        type Row<'a> = (&'a str, i64, i64, Rows);
        let rows: Vec<Row> = vec![
            (
                // rd 4 s, no delay: minStep 1, numSteps 3, stepSize 33, one step a second
                "4s, instant ingress",
                4,
                0,
                vec![
                    (None, split(&[("a", 100)])),
                    (Some(0), split(&[("a", 99), ("b", 1)])),
                    (Some(S), split(&[("a", 66), ("b", 34)])),
                    (Some(2 * S), split(&[("a", 33), ("b", 67)])),
                    (Some(3 * S), split(&[("b", 100)])),
                ],
            ),
            (
                // d = 1.5 s: minStep 2, d' = 2, numSteps 1, stepSize 99: one step 2 s after
                // ObserveReady (t = 1.5), applied at 3.5 + 1.5 = 5 s
                "4s, 1.5 s ingress",
                4,
                3 * S / 2,
                vec![
                    (None, split(&[("a", 100)])),
                    (Some(3 * S / 2), split(&[("a", 99), ("b", 1)])),
                    (Some(5 * S), split(&[("b", 100)])),
                ],
            ),
            (
                // rollout disabled: the switch is applied after the delay
                "no rollout",
                0,
                S / 10,
                vec![
                    (None, split(&[("a", 100)])),
                    (Some(S / 10), split(&[("b", 100)])),
                ],
            ),
        ];
        for (what, rd, delay, want) in rows {
            let t = rollout_timeline(
                &service(rd),
                &[latest(100, "")],
                "a",
                "b",
                SimDuration(delay),
                SimDuration(3600 * S),
            );
            let got: Rows = t
                .group("")
                .into_iter()
                .map(|(at, s)| (at.map(|d| d.as_nanos()), s))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_pinned_revision_before_the_configuration_target_switches_the_main_group_at_once() {
        // helloworld.yaml's traffic: 90% pinned to `a` (tag current), then 10% following the
        // latest (tag candidate), rd 4 s, instant ingress. Before the rollout both main-group
        // entries resolve to `a` and consolidate into the first, pinned one (latestRevision
        // false), so the annotation has no main-group rollout for the configuration and the new
        // revision's 10% arrives at once (routing.md "Consolidation is by revision name, and
        // the first occurrence wins", TestBuildTrafficConfigurationConsolidated). The
        // candidate tag's own group rolls at 100% as any configuration: 1, 34, 67, 100.
        let traffic = [
            TrafficTarget {
                tag: "current".into(),
                revision_name: "a".into(),
                latest_revision: Some(false),
                percent: Some(90),
                ..Default::default()
            },
            latest(10, "candidate"),
        ];
        let t = rollout_timeline(
            &service(4),
            &traffic,
            "a",
            "b",
            SimDuration(0),
            SimDuration(3600 * S),
        );
        let at = |group: &str| -> Rows {
            t.group(group)
                .into_iter()
                .map(|(at, s)| (at.map(|d| d.as_nanos()), s))
                .collect()
        };
        assert_eq!(
            at(""),
            vec![
                (None, split(&[("a", 100)])),
                (Some(0), split(&[("a", 90), ("b", 10)])),
            ]
        );
        assert_eq!(at("current"), vec![(None, split(&[("a", 100)]))]);
        assert_eq!(
            at("candidate"),
            vec![
                (None, split(&[("a", 100)])),
                (Some(0), split(&[("a", 99), ("b", 1)])),
                (Some(S), split(&[("a", 66), ("b", 34)])),
                (Some(2 * S), split(&[("a", 33), ("b", 67)])),
                (Some(3 * S), split(&[("b", 100)])),
            ]
        );
    }

    #[test]
    fn the_play_stops_at_until() {
        // A 100 s rollout played for 10 s: the steps after 10 s are not there.
        let t = rollout_timeline(
            &service(100),
            &[latest(100, "")],
            "a",
            "b",
            SimDuration(0),
            SimDuration(10 * S),
        );
        let main = t.group("");
        assert!(main
            .iter()
            .all(|(at, _)| at.is_none_or(|d| d.as_nanos() <= 10 * S)));
        assert!(main.len() > 3, "{main:?}");
    }
}
