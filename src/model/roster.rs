//! The pods of every revision and their lifecycle (datapath.md A.6.3): the simulator
//! (`sim::world`) and the live mode (`live::world`) both keep their pod bookkeeping here and
//! act on what its transitions return.
//!
//! Owns: per pod its revision, its state (Starting -> Ready -> Terminating) and whether
//! Kubernetes marked it Ready (`Roster`); per revision whether and in which order it was
//! created, whether it is Ready, every pod it has had, its endpoints (the Kubernetes-ready pods in
//! the order they became ready, terminating ones included until they leave), how many of those
//! are draining, its activator-healthy pods, its start-up random stream and its pods' addresses
//! (`RevisionPods`); the configuration's latest ready revision (`Roster`).
//!
//! Each world keeps a revision's `RevisionPods` inside its own per-revision record (reached
//! through `AsMut`), so the simulator's request path reads the endpoints and the ready
//! count from the record it already holds; the transitions take the worlds' revision slice and
//! are the only code that changes a `RevisionPods`.
//!
//! Must not: schedule events, start or stop servers, read a clock. A transition mutates and
//! returns what the caller has to act on; the caller schedules what follows (a pod's app
//! readiness after its start-up delay, its activator probe tick and kubelet readiness, leaving
//! the endpoints after the removal delay) and draws those delays with `RevisionPods::sample`
//! from the revision's start-up stream, so their draw order is the caller's order of calls.
//!
//! Invariants: pod ids are dense, in creation order (a caller's per-pod table indexed by id stays
//! in step by pushing one entry per `add_pod`); a pod's state only moves forward, except that a
//! crash takes a Starting or Ready pod to Crashed and the kubelet's restart takes it back to
//! Starting (`model::failure`); a pod is in its revision's endpoints iff it is k8s-ready;
//! `draining` counts the terminating and crashed pods among the endpoints, so `ready_pods`
//! (endpoints minus draining) never underflows; `healthy` is sorted by the pods' `ip:port`
//! strings as upstream sorts its trackers (`throttler.go:310-313`; ties, which need an address
//! space used up, by id) and holds only pods that were Ready when found healthy; no two pods of
//! a revision share an address while the space lasts (a crashed pod keeps its address through
//! its restarts, as a restarted container keeps its pod's IP).

use std::collections::BTreeSet;
use std::fmt;

use rand::RngExt;

use crate::model::dist::Dist;
use crate::model::rng::{stream, Stream, StreamRng};
use crate::model::time::{SimDuration, SimTime};

/// The queue-proxy port the activator sends to (`pkg/networking/constants.go:24`, 8012): part of
/// the `ip:port` string its trackers are sorted by.
const QUEUE_PROXY_PORT: u16 = 8012;

/// Attempts at a fresh address before a pod shares one (the /16 is nearly full).
const ADDRESS_DRAWS: u32 = 64;

/// A pod's address as the activator knows it, `10.244.X.Y:8012`: ordered the way upstream orders
/// its pod trackers, by comparing the `ip:port` strings (`throttler.go:310-313`), so
/// `10.244.12.5:8012` comes before `10.244.3.17:8012`. Pods get their address from the pod
/// network's 10.244.0.0/16 (kubeadm/flannel's default), drawn uniformly, since which node a pod
/// lands on and which address its node hands out next do not follow creation order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodAddress {
    /// The `ip:port` string's bytes, zero-padded: byte order is Go's string order.
    dest: [u8; 24],
}

impl PodAddress {
    /// `10.244.{third}.{fourth}:8012`.
    pub fn new(third: u8, fourth: u8) -> Self {
        let text = format!("10.244.{third}.{fourth}:{QUEUE_PROXY_PORT}");
        let mut dest = [0u8; 24];
        dest[..text.len()].copy_from_slice(text.as_bytes());
        PodAddress { dest }
    }

    fn draw(rng: &mut StreamRng) -> Self {
        // .0 is the network, .1 the node's bridge, .255 the broadcast.
        PodAddress::new(rng.random::<u8>(), rng.random_range(2..=254))
    }
}

impl fmt::Display for PodAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.dest.iter().position(|&b| b == 0).unwrap_or(24);
        f.write_str(std::str::from_utf8(&self.dest[..len]).unwrap_or("?"))
    }
}

impl fmt::Debug for PodAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where a pod is in its life. (A.6.3's Gone, a terminating pod that holds no request any
/// more, is not a state here: nothing decides anything by it, and a terminating pod simply
/// serves what it holds.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Created; its app is not ready yet.
    Starting,
    /// Its app is ready (readiness probe passes); it may be activator-healthy and k8s-ready.
    Ready,
    /// Its container crashed (`model::failure`): not ready, but still a pod of the revision (it
    /// counts as live, not ready) waiting for the kubelet to restart the container. A pod that
    /// was Ready stays in the endpoints until its removal delay has passed.
    Crashed,
    /// Scaled down: no longer counted as live or ready. A pod that was Ready stays in the
    /// endpoints until its removal delay has passed.
    Terminating,
}

/// One pod as the roster knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodEntry {
    pub rev: u32,
    pub state: PodState,
    /// Kubernetes marked it Ready: a Serve-mode endpoint, counted by the autoscaler. Cleared
    /// when it leaves the endpoints.
    pub k8s_ready: bool,
    /// Its IP address and queue-proxy port: the activator's order of pods.
    pub address: PodAddress,
}

/// One revision's pods. A world keeps it in its revision record and reads it; only `Roster`'s
/// transitions change it, but for `sample`, which draws from its start-up stream.
#[derive(Debug)]
pub struct RevisionPods {
    created: bool,
    created_order: u32,
    ready: bool,
    /// Every pod the revision has had, in creation order.
    pods: Vec<u32>,
    /// Kubernetes-ready pods, in the order they became ready: the Serve-mode endpoints. It still
    /// holds terminating pods until the endpoints propagation delay has passed.
    endpoints: Vec<u32>,
    /// Terminating (and crashed) pods still in `endpoints`: not counted as ready.
    draining: u32,
    /// Pods not terminating (starting, ready or crashed): what the revision pays for.
    live: u32,
    /// Activator-healthy pods, sorted by address (`ip:port`), then id.
    healthy: Vec<u32>,
    /// Start-up, endpoint removal and kubelet delays.
    startup_rng: StreamRng,
    /// Its pods' addresses.
    address_rng: StreamRng,
    /// Addresses its live pods hold.
    addresses_in_use: BTreeSet<PodAddress>,
}

impl RevisionPods {
    /// Revision `index`, not created, with its start-up stream
    /// `stream(seed, replication, Stream::Startup, index)` and its address stream
    /// (`Stream::PodAddress`).
    pub fn new(seed: u64, replication: u64, index: usize) -> Self {
        RevisionPods {
            created: false,
            created_order: 0,
            ready: false,
            pods: Vec::new(),
            endpoints: Vec::new(),
            draining: 0,
            live: 0,
            healthy: Vec::new(),
            startup_rng: stream(seed, replication, Stream::Startup, index as u64),
            address_rng: stream(seed, replication, Stream::PodAddress, index as u64),
            addresses_in_use: BTreeSet::new(),
        }
    }

    /// A fresh address for a new pod: one no live pod of the revision holds, if a few draws
    /// find one.
    fn draw_address(&mut self) -> PodAddress {
        let mut address = PodAddress::draw(&mut self.address_rng);
        for _ in 1..ADDRESS_DRAWS {
            if !self.addresses_in_use.contains(&address) {
                break;
            }
            address = PodAddress::draw(&mut self.address_rng);
        }
        self.addresses_in_use.insert(address);
        address
    }

    /// The revision exists (at start or by a timeline event).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The revision reached its readiness threshold once (it stays Ready).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// The Serve-mode endpoints, terminating ones included until they leave.
    #[inline]
    pub fn endpoints(&self) -> &[u32] {
        &self.endpoints
    }

    /// The activator-healthy pods, in the activator's order: by `ip:port`
    /// (`throttler.go:310-313`).
    pub fn healthy(&self) -> &[u32] {
        &self.healthy
    }

    /// Ready pods: endpoints that are not draining (what the autoscaler counts).
    #[inline]
    pub fn ready_pods(&self) -> u32 {
        self.endpoints.len() as u32 - self.draining
    }

    /// Pods not terminating, ready or not (what `Roster::live_pods` lists), without listing them.
    #[inline]
    pub fn live_count(&self) -> u32 {
        self.live
    }

    /// One draw from `dist` on the revision's start-up stream.
    pub fn sample(&mut self, dist: &Dist) -> SimDuration {
        dist.sample(&mut self.startup_rng)
    }
}

impl AsMut<RevisionPods> for RevisionPods {
    fn as_mut(&mut self) -> &mut RevisionPods {
        self
    }
}

/// Every pod, and the latest ready revision. Its transitions take the world's revision records
/// (`revs`, indexed by revision) and change their `RevisionPods`.
#[derive(Debug, Default)]
pub struct Roster {
    pods: Vec<PodEntry>,
    latest_ready: Option<u32>,
    next_created_order: u32,
}

impl Roster {
    /// No pods, no ready revision.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pod `id` (from `add_pod`).
    #[inline]
    pub fn pod(&self, id: u32) -> &PodEntry {
        &self.pods[id as usize]
    }

    /// The configuration's latest ready revision: the newest created one that became Ready.
    pub fn latest_ready(&self) -> Option<u32> {
        self.latest_ready
    }

    /// The revision's starting and ready pods, with whether each is ready.
    pub fn live_pods(&self, revision: &RevisionPods) -> Vec<(u32, bool)> {
        revision
            .pods
            .iter()
            .filter_map(|&p| match self.pods[p as usize].state {
                PodState::Starting | PodState::Crashed => Some((p, false)),
                PodState::Ready => Some((p, true)),
                PodState::Terminating => None,
            })
            .collect()
    }

    /// Creates the revision, next in creation order; false if it already exists.
    pub fn create(&mut self, revision: &mut RevisionPods) -> bool {
        if revision.created {
            return false;
        }
        revision.created = true;
        revision.created_order = self.next_created_order;
        self.next_created_order += 1;
        true
    }

    /// A new Starting pod of `rev` with an address from the revision's address stream; returns
    /// its id.
    pub fn add_pod<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], rev: u32) -> u32 {
        let id = self.pods.len() as u32;
        let r = revs[rev as usize].as_mut();
        let address = r.draw_address();
        self.pods.push(PodEntry {
            rev,
            state: PodState::Starting,
            k8s_ready: false,
            address,
        });
        r.pods.push(id);
        r.live += 1;
        id
    }

    /// Scale-down: the pod is terminating at once (no longer live, and no longer ready if it was
    /// k8s-ready: it drains). Returns whether it was Ready, i.e. whether it has to leave the
    /// endpoints (`leaves_endpoints`) after the removal delay. A pod already terminating stays
    /// as it is (false).
    pub fn terminate<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], pod: u32) -> bool {
        let p = &mut self.pods[pod as usize];
        if p.state == PodState::Terminating {
            return false;
        }
        let was_ready = p.state == PodState::Ready;
        // A crashed pod still in the endpoints already drains, and its crash's removal is due.
        let drains_now = p.k8s_ready && p.state != PodState::Crashed;
        p.state = PodState::Terminating;
        let r = revs[p.rev as usize].as_mut();
        r.live -= 1;
        if drains_now {
            r.draining += 1;
        }
        if !was_ready && !r.endpoints.contains(&pod) && !r.healthy.contains(&pod) {
            // No removal to come (never in the endpoints, or a crashed pod that already left
            // them): its address is free at once.
            r.addresses_in_use.remove(&p.address);
        }
        was_ready
    }

    /// The pod's container crashed (`model::failure`): a Ready pod stops counting as ready at
    /// once but stays in the endpoints (draining) and in the activator's healthy set until the
    /// caller's `leaves_endpoints` after the removal delay; a Starting pod (a crash loop) simply
    /// waits for its restart. Returns whether it was Ready, i.e. whether it has endpoints to
    /// leave; `None` if it was neither Starting nor Ready (crashed already, or terminating).
    pub fn crash<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], pod: u32) -> Option<bool> {
        let p = &mut self.pods[pod as usize];
        let was_ready = match p.state {
            PodState::Ready => true,
            PodState::Starting => false,
            PodState::Crashed | PodState::Terminating => return None,
        };
        p.state = PodState::Crashed;
        let r = revs[p.rev as usize].as_mut();
        if p.k8s_ready {
            r.draining += 1;
        }
        // The pod keeps its address: its container restarts in the same pod.
        Some(was_ready)
    }

    /// The kubelet restarts the crashed pod's container: Crashed -> Starting (it then starts up
    /// and becomes ready as a new pod does). A pod still in the endpoints leaves them now (its
    /// removal came later than the back-off; the caller ignores that removal when it comes).
    /// Returns its revision, or `None` if it was not Crashed (e.g. terminated meanwhile).
    pub fn restart<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], pod: u32) -> Option<u32> {
        if self.pods[pod as usize].state != PodState::Crashed {
            return None;
        }
        let rev = self.leaves_endpoints(revs, pod);
        self.pods[pod as usize].state = PodState::Starting;
        Some(rev)
    }

    /// `terminate`, and for a pod that was Ready the delay after which it leaves the endpoints
    /// (`removal`, drawn from its revision's start-up stream), for the caller to schedule.
    pub fn terminate_with_removal<R: AsMut<RevisionPods>>(
        &mut self,
        revs: &mut [R],
        pod: u32,
        removal: &Dist,
    ) -> Option<SimDuration> {
        let rev = self.pods[pod as usize].rev;
        self.terminate(revs, pod)
            .then(|| revs[rev as usize].as_mut().sample(removal))
    }

    /// The terminating pod leaves the endpoints and the activator's healthy set. Returns its
    /// revision.
    pub fn leaves_endpoints<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], pod: u32) -> u32 {
        let p = &mut self.pods[pod as usize];
        let rev = p.rev;
        let r = revs[rev as usize].as_mut();
        if p.k8s_ready {
            p.k8s_ready = false;
            r.draining -= 1;
        }
        r.endpoints.retain(|e| *e != pod);
        r.healthy.retain(|e| *e != pod);
        if p.state == PodState::Terminating {
            // Gone from everywhere: its address may go to a new pod. A crashed pod keeps it for
            // its restart.
            r.addresses_in_use.remove(&p.address);
        }
        rev
    }

    /// The pod's app is ready (its readiness probe passes): Starting -> Ready. Returns its
    /// revision, or `None` if it was not Starting (e.g. terminated while starting).
    pub fn app_ready(&mut self, pod: u32) -> Option<u32> {
        let p = &mut self.pods[pod as usize];
        if p.state != PodState::Starting {
            return None;
        }
        p.state = PodState::Ready;
        Some(p.rev)
    }

    /// Kubernetes marks the Ready pod Ready: it joins the endpoints. The revision becomes Ready
    /// once its ready pods reach `ready_threshold(its record, pods it has had)`
    /// (`Kpa::ready_threshold`). Returns the revision and whether it became Ready now, or `None`
    /// if the pod was not Ready or already k8s-ready.
    pub fn k8s_ready<R: AsMut<RevisionPods>>(
        &mut self,
        revs: &mut [R],
        pod: u32,
        ready_threshold: impl FnOnce(&R, usize) -> usize,
    ) -> Option<(u32, bool)> {
        let p = &mut self.pods[pod as usize];
        if p.state != PodState::Ready || p.k8s_ready {
            return None;
        }
        p.k8s_ready = true;
        let rev = p.rev;
        let r = revs[rev as usize].as_mut();
        r.endpoints.push(pod);
        let became_ready = !r.ready && {
            let (serving, pods) = (r.endpoints.len() - r.draining as usize, r.pods.len());
            serving >= ready_threshold(&revs[rev as usize], pods)
        };
        if became_ready {
            self.revision_ready(revs, rev);
        }
        Some((rev, became_ready))
    }

    /// The activator finds the Ready pod healthy (its probe tick): it joins the healthy set in
    /// address order. Returns its revision, or `None` if the pod is not Ready.
    pub fn healthy<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], pod: u32) -> Option<u32> {
        let p = &self.pods[pod as usize];
        if p.state != PodState::Ready {
            return None;
        }
        let key = |id: u32| (self.pods[id as usize].address, id);
        let healthy = &mut revs[p.rev as usize].as_mut().healthy;
        if let Err(i) = healthy.binary_search_by_key(&key(pod), |&h| key(h)) {
            healthy.insert(i, pod);
        }
        Some(p.rev)
    }

    /// The revision reached its readiness threshold (or runs its pods at the start): Ready, and
    /// the configuration's latest ready revision if it is the newest created one that is ready.
    pub fn revision_ready<R: AsMut<RevisionPods>>(&mut self, revs: &mut [R], rev: u32) {
        let r = revs[rev as usize].as_mut();
        r.ready = true;
        let order = r.created_order;
        let newer = match self.latest_ready {
            None => true,
            Some(cur) => order > revs[cur as usize].as_mut().created_order,
        };
        if newer {
            self.latest_ready = Some(rev);
        }
    }
}

/// The activator's next probe tick at or after `now` (ticks every `period` from zero,
/// revision_backends.go:90-96): when it finds a newly ready pod healthy.
pub fn next_probe_tick(now: SimTime, period: SimDuration) -> SimTime {
    let period = period.as_nanos().max(1);
    SimTime((now.as_nanos() + period - 1) / period * period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The roster and its revisions' records, as a world holds them, with the transitions in
    /// one place for the tests.
    struct Fixture {
        roster: Roster,
        revs: Vec<RevisionPods>,
    }

    impl Fixture {
        fn new(seed: u64, replication: u64, n: usize) -> Self {
            Fixture {
                roster: Roster::new(),
                revs: (0..n)
                    .map(|i| RevisionPods::new(seed, replication, i))
                    .collect(),
            }
        }
        fn rev(&self, rev: u32) -> &RevisionPods {
            &self.revs[rev as usize]
        }
        fn pod(&self, id: u32) -> &PodEntry {
            self.roster.pod(id)
        }
        fn pod_count(&self) -> usize {
            self.roster.pods.len()
        }
        fn ready_pods(&self, rev: u32) -> u32 {
            self.rev(rev).ready_pods()
        }
        fn latest_ready(&self) -> Option<u32> {
            self.roster.latest_ready()
        }
        fn live_pods(&self, rev: u32) -> Vec<(u32, bool)> {
            self.roster.live_pods(self.rev(rev))
        }
        fn create(&mut self, rev: u32) -> bool {
            self.roster.create(&mut self.revs[rev as usize])
        }
        fn add_pod(&mut self, rev: u32) -> u32 {
            self.roster.add_pod(&mut self.revs, rev)
        }
        fn sample(&mut self, rev: u32, dist: &Dist) -> SimDuration {
            self.revs[rev as usize].sample(dist)
        }
        fn terminate(&mut self, pod: u32) -> bool {
            self.roster.terminate(&mut self.revs, pod)
        }
        fn leaves_endpoints(&mut self, pod: u32) -> u32 {
            self.roster.leaves_endpoints(&mut self.revs, pod)
        }
        fn app_ready(&mut self, pod: u32) -> Option<u32> {
            self.roster.app_ready(pod)
        }
        fn k8s_ready(
            &mut self,
            pod: u32,
            threshold: impl FnOnce(usize) -> usize,
        ) -> Option<(u32, bool)> {
            self.roster
                .k8s_ready(&mut self.revs, pod, |_, pods| threshold(pods))
        }
        fn healthy(&mut self, pod: u32) -> Option<u32> {
            self.roster.healthy(&mut self.revs, pod)
        }
    }

    /// A fixture of `n` revisions, all created in index order.
    fn created(n: usize) -> Fixture {
        let mut roster = Fixture::new(1, 0, n);
        for rev in 0..n as u32 {
            assert!(roster.create(rev));
        }
        roster
    }

    /// A pod of `rev` taken to Ready and k8s-ready under `threshold`; returns it and whether the
    /// revision became ready.
    fn ready_pod(roster: &mut Fixture, rev: u32, threshold: usize) -> (u32, bool) {
        let pod = roster.add_pod(rev);
        assert_eq!(roster.app_ready(pod), Some(rev));
        let (r, became) = roster.k8s_ready(pod, |_| threshold).expect("Ready pod");
        assert_eq!(r, rev);
        (pod, became)
    }

    #[test]
    fn revision_becomes_ready_at_its_threshold() {
        type Row = (usize, usize, &'static [bool]);
        let table: &[Row] = &[
            // Threshold 1: the first k8s-ready pod makes it Ready, later ones do not again.
            (1, 3, &[true, false, false]),
            // Threshold 3: the third pod does.
            (3, 3, &[false, false, true]),
            // A threshold above what it gets: never.
            (5, 2, &[false, false]),
        ];
        for &(threshold, pods, want) in table {
            let mut roster = created(1);
            let got: Vec<bool> = (0..pods)
                .map(|_| ready_pod(&mut roster, 0, threshold).1)
                .collect();
            assert_eq!(got, want, "threshold {threshold}");
            assert_eq!(roster.rev(0).ready(), want.contains(&true));
            assert_eq!(roster.ready_pods(0), pods as u32);
            assert_eq!(roster.rev(0).endpoints().len(), pods);
        }
    }

    #[test]
    fn the_threshold_sees_every_pod_the_revision_has_had() {
        let mut roster = created(1);
        let first = roster.add_pod(0);
        roster.add_pod(0);
        roster.terminate(first);
        let pod = roster.add_pod(0);
        roster.app_ready(pod);
        let mut seen = None;
        roster.k8s_ready(pod, |n| {
            seen = Some(n);
            1
        });
        assert_eq!(seen, Some(3));
    }

    #[test]
    fn latest_ready_follows_creation_order_not_readiness_order() {
        type Row = (&'static [u32], &'static [u32], &'static [u32]);
        let table: &[Row] = &[
            // Created 0, 1, 2; ready 2, 0, 1: 2 stays the latest ready.
            (&[0, 1, 2], &[2, 0, 1], &[2, 2, 2]),
            // Ready in creation order: each takes over.
            (&[0, 1, 2], &[0, 1, 2], &[0, 1, 2]),
            // Created 2, 0, 1 (a revision's index is not its age); ready 1, 2, 0.
            (&[2, 0, 1], &[1, 2, 0], &[1, 1, 1]),
            // Created 1 then 0; ready 0 then 1: 1 is older and does not take over.
            (&[1, 0], &[0, 1], &[0, 0]),
        ];
        for &(creation, readiness, want) in table {
            let mut roster = Fixture::new(1, 0, 3);
            for &rev in creation {
                assert!(roster.create(rev));
                assert!(!roster.create(rev), "created twice");
            }
            assert_eq!(roster.latest_ready(), None);
            let got: Vec<u32> = readiness
                .iter()
                .map(|&rev| {
                    ready_pod(&mut roster, rev, 1);
                    roster.latest_ready().expect("one is ready")
                })
                .collect();
            assert_eq!(got, want, "created {creation:?}, ready {readiness:?}");
        }
    }

    #[test]
    fn a_terminated_k8s_ready_pod_drains_until_it_leaves_the_endpoints() {
        let mut roster = created(1);
        let (a, _) = ready_pod(&mut roster, 0, 1);
        let (b, _) = ready_pod(&mut roster, 0, 1);
        assert!(
            roster.terminate(b),
            "it was Ready: it has endpoints to leave"
        );
        // Still an endpoint, no longer ready nor live.
        assert_eq!(roster.rev(0).endpoints(), &[a, b]);
        assert_eq!(roster.ready_pods(0), 1);
        assert_eq!(roster.live_pods(0), vec![(a, true)]);
        assert_eq!(roster.leaves_endpoints(b), 0);
        assert_eq!(roster.rev(0).endpoints(), &[a]);
        assert_eq!(roster.ready_pods(0), 1);
        assert!(!roster.pod(b).k8s_ready);
        // The revision stays Ready.
        assert!(roster.rev(0).ready());
    }

    #[test]
    fn a_ready_pod_terminated_before_kubernetes_readiness_never_joins_the_endpoints() {
        let mut roster = created(1);
        let pod = roster.add_pod(0);
        roster.app_ready(pod);
        assert_eq!(roster.healthy(pod), Some(0));
        assert!(roster.terminate(pod));
        assert_eq!(roster.ready_pods(0), 0, "not k8s-ready: nothing drains");
        assert_eq!(roster.k8s_ready(pod, |_| 1), None);
        assert_eq!(roster.leaves_endpoints(pod), 0);
        assert!(roster.rev(0).healthy().is_empty());
        assert!(roster.rev(0).endpoints().is_empty());
    }

    #[test]
    fn transitions_from_the_wrong_state_do_nothing() {
        let mut roster = created(1);
        let starting = roster.add_pod(0);
        // A Starting pod is neither k8s-ready nor healthy.
        assert_eq!(roster.k8s_ready(starting, |_| 1), None);
        assert_eq!(roster.healthy(starting), None);
        // A terminated Starting pod has no endpoints to leave and never becomes ready.
        assert!(!roster.terminate(starting));
        assert_eq!(roster.app_ready(starting), None);
        assert_eq!(roster.k8s_ready(starting, |_| 1), None);
        assert_eq!(roster.healthy(starting), None);
        assert_eq!(roster.pod(starting).state, PodState::Terminating);
        // Terminating twice changes nothing.
        let (ready, _) = ready_pod(&mut roster, 0, 1);
        assert!(roster.terminate(ready));
        assert!(!roster.terminate(ready));
        assert_eq!(roster.ready_pods(0), 0);
        // App-ready and k8s-ready only once.
        let pod = roster.add_pod(0);
        assert_eq!(roster.app_ready(pod), Some(0));
        assert_eq!(roster.app_ready(pod), None);
        assert!(roster.k8s_ready(pod, |_| 1).is_some());
        assert_eq!(roster.k8s_ready(pod, |_| 1), None);
        assert_eq!(roster.rev(0).endpoints(), &[ready, pod]);
    }

    #[test]
    fn addresses_order_as_ip_port_strings() {
        // throttler.go:310-313 sorts trackers by `dest` ("ip:port") with Go's string `<`.
        type Row = ((u8, u8), (u8, u8));
        let table: &[Row] = &[
            // "10.244.12.5:8012" < "10.244.3.17:8012": '1' < '3', not 12 > 3.
            ((12, 5), (3, 17)),
            // "10.244.1.50:8012" < "10.244.1.5:8012": '0' < ':' after the common "1.5".
            ((1, 50), (1, 5)),
            // "10.244.1.254:8012" < "10.244.2.2:8012".
            ((1, 254), (2, 2)),
            // "10.244.100.9:8012" < "10.244.99.9:8012".
            ((100, 9), (99, 9)),
        ];
        for &((a3, a4), (b3, b4)) in table {
            let (a, b) = (PodAddress::new(a3, a4), PodAddress::new(b3, b4));
            assert!(a < b, "{a} < {b}");
            assert_eq!(
                a.cmp(&b),
                a.to_string().cmp(&b.to_string()),
                "the byte order is the string order"
            );
        }
        assert_eq!(PodAddress::new(7, 200).to_string(), "10.244.7.200:8012");
    }

    #[test]
    fn healthy_follows_address_order_without_duplicates() {
        type Row = &'static [usize];
        let table: &[Row] = &[
            // Found healthy in reverse creation order.
            &[3, 2, 1, 0],
            // Out of order, with a second probe of the same pods.
            &[2, 0, 3, 0, 2],
        ];
        for &order in table {
            let mut roster = created(1);
            let pods: Vec<u32> = (0..4).map(|_| roster.add_pod(0)).collect();
            for &p in &pods {
                roster.app_ready(p);
            }
            for &i in order {
                assert_eq!(roster.healthy(pods[i]), Some(0));
            }
            let mut want: Vec<u32> = order.iter().map(|&i| pods[i]).collect();
            want.sort_unstable_by_key(|&p| roster.pod(p).address.to_string());
            want.dedup();
            assert_eq!(roster.rev(0).healthy(), want, "{order:?}");
        }
    }

    #[test]
    fn a_crashed_pod_drains_then_restarts_as_a_starting_pod() {
        let mut roster = created(1);
        let (a, _) = ready_pod(&mut roster, 0, 1);
        let (b, _) = ready_pod(&mut roster, 0, 1);
        assert_eq!(roster.healthy(b), Some(0));
        // Crashed: no longer ready, still an endpoint and healthy until its removal.
        assert_eq!(roster.roster.crash(&mut roster.revs, b), Some(true));
        assert_eq!(roster.roster.crash(&mut roster.revs, b), None, "once");
        assert_eq!(roster.ready_pods(0), 1);
        assert_eq!(roster.rev(0).endpoints(), &[a, b]);
        // Still a pod of the revision: the autoscaler does not replace it.
        assert_eq!(roster.live_pods(0), vec![(a, true), (b, false)]);
        assert_eq!(roster.leaves_endpoints(b), 0);
        assert!(roster.rev(0).healthy().is_empty());
        assert_eq!(roster.rev(0).endpoints(), &[a]);
        // The kubelet restarts it: Starting, then ready again as any pod.
        assert_eq!(roster.roster.restart(&mut roster.revs, b), Some(0));
        assert_eq!(roster.pod(b).state, PodState::Starting);
        assert_eq!(roster.app_ready(b), Some(0));
        assert!(roster.k8s_ready(b, |_| 1).is_some());
        assert_eq!(roster.ready_pods(0), 2);
        // A crash-looping pod crashes while Starting: nothing to leave.
        let c = roster.add_pod(0);
        assert_eq!(roster.roster.crash(&mut roster.revs, c), Some(false));
        // A restart before the removal takes it out of the endpoints at once.
        assert_eq!(roster.roster.crash(&mut roster.revs, a), Some(true));
        assert_eq!(roster.roster.restart(&mut roster.revs, a), Some(0));
        assert_eq!(roster.rev(0).endpoints(), &[b]);
        assert_eq!(roster.ready_pods(0), 1);
        // Terminating a crashed pod does not drain it twice.
        assert_eq!(roster.roster.crash(&mut roster.revs, b), Some(true));
        assert!(!roster.terminate(b));
        assert_eq!(roster.ready_pods(0), 0);
        roster.leaves_endpoints(b);
        assert_eq!(roster.ready_pods(0), 0);
        assert_eq!(
            roster.roster.restart(&mut roster.revs, b),
            None,
            "terminated"
        );
    }

    #[test]
    fn the_activator_order_is_not_creation_order() {
        // With seed 1 the address draw puts a later pod first: the activator's first-available
        // policy then packs that pod, not the oldest (throttler.go:310-313, lb_policy.go:80-87).
        let mut roster = created(1);
        let pods: Vec<u32> = (0..8).map(|_| roster.add_pod(0)).collect();
        for &p in &pods {
            roster.app_ready(p);
            roster.healthy(p);
        }
        let healthy = roster.rev(0).healthy().to_vec();
        assert_ne!(healthy, pods, "addresses would have to be drawn in order");
        let mut sorted = healthy.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, pods, "every pod once");
        // Live pods of a revision hold distinct addresses.
        let addresses: BTreeSet<PodAddress> = pods.iter().map(|&p| roster.pod(p).address).collect();
        assert_eq!(addresses.len(), pods.len());
    }

    #[test]
    fn live_pods_are_starting_and_ready_ones_with_their_readiness() {
        let mut roster = created(2);
        let starting = roster.add_pod(0);
        let other_rev = roster.add_pod(1);
        let ready = roster.add_pod(0);
        roster.app_ready(ready);
        let terminated = roster.add_pod(0);
        roster.app_ready(terminated);
        roster.terminate(terminated);
        assert_eq!(roster.live_pods(0), vec![(starting, false), (ready, true)]);
        assert_eq!(roster.live_pods(1), vec![(other_rev, false)]);
    }

    #[test]
    fn each_revision_draws_from_its_own_startup_stream() {
        let dist = Dist::exponential(SimDuration::from_secs(1)).expect("valid");
        let mut roster = Fixture::new(7, 2, 2);
        // Draws on revision 0 do not move revision 1's stream.
        roster.sample(0, &dist);
        let got: Vec<SimDuration> = (0..3).map(|_| roster.sample(1, &dist)).collect();
        let mut rng = stream(7, 2, Stream::Startup, 1);
        let want: Vec<SimDuration> = (0..3).map(|_| dist.sample(&mut rng)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn probe_ticks_round_up_to_the_period() {
        let ms = SimDuration::from_millis;
        let at = |m: i64| SimTime::ZERO + ms(m);
        let table = [
            // On a tick: that tick.
            (at(400), ms(200), at(400)),
            // Just after one: the next.
            (SimTime(400_000_001), ms(200), at(600)),
            (at(401), ms(200), at(600)),
            // Zero is a tick.
            (SimTime::ZERO, ms(200), SimTime::ZERO),
            // A zero period probes at once.
            (SimTime(123), SimDuration::ZERO, SimTime(123)),
        ];
        for (now, period, want) in table {
            assert_eq!(next_probe_tick(now, period), want, "{now} every {period}");
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Add(u32),
        AppReady(usize),
        K8sReady(usize),
        Healthy(usize),
        Terminate(usize),
        LeavesEndpoints(usize),
        Crash(usize),
        Restart(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2u32).prop_map(Op::Add),
            any::<usize>().prop_map(Op::AppReady),
            any::<usize>().prop_map(Op::K8sReady),
            any::<usize>().prop_map(Op::Healthy),
            any::<usize>().prop_map(Op::Terminate),
            any::<usize>().prop_map(Op::LeavesEndpoints),
            any::<usize>().prop_map(Op::Crash),
            any::<usize>().prop_map(Op::Restart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Under any sequence of transitions (leaving the endpoints only after a terminate that
        /// returned true, as callers schedule it), the endpoints are exactly the k8s-ready pods,
        /// the ready pods the k8s-ready ones not terminating, and healthy is in address order.
        #[test]
        fn endpoints_draining_and_healthy_stay_consistent(
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let mut roster = created(2);
            let mut may_leave: Vec<u32> = Vec::new();
            for op in ops {
                let n = roster.pod_count();
                match op {
                    Op::Add(rev) => {
                        roster.add_pod(rev);
                    }
                    Op::AppReady(i) if n > 0 => {
                        roster.app_ready((i % n) as u32);
                    }
                    Op::K8sReady(i) if n > 0 => {
                        roster.k8s_ready((i % n) as u32, |_| 2);
                    }
                    Op::Healthy(i) if n > 0 => {
                        roster.healthy((i % n) as u32);
                    }
                    Op::Terminate(i) if n > 0 => {
                        let pod = (i % n) as u32;
                        let was_ready = roster.terminate(pod);
                        if was_ready {
                            may_leave.push(pod);
                        }
                    }
                    Op::LeavesEndpoints(i) if !may_leave.is_empty() => {
                        let pod = may_leave.swap_remove(i % may_leave.len());
                        roster.leaves_endpoints(pod);
                    }
                    Op::Crash(i) if n > 0 => {
                        let pod = (i % n) as u32;
                        if roster.roster.crash(&mut roster.revs, pod) == Some(true) {
                            may_leave.push(pod);
                        }
                    }
                    Op::Restart(i) if n > 0 => {
                        let pod = (i % n) as u32;
                        if roster.roster.restart(&mut roster.revs, pod).is_some() {
                            // Its pending removal is stale now (the caller ignores it).
                            may_leave.retain(|&p| p != pod);
                        }
                    }
                    _ => {}
                }
                for rev in 0..2u32 {
                    let r = roster.rev(rev);
                    let mut endpoints = r.endpoints().to_vec();
                    endpoints.sort_unstable();
                    let k8s: Vec<u32> = (0..roster.pod_count() as u32)
                        .filter(|&p| roster.pod(p).rev == rev && roster.pod(p).k8s_ready)
                        .collect();
                    prop_assert_eq!(&endpoints, &k8s);
                    let serving = k8s
                        .iter()
                        .filter(|&&p| roster.pod(p).state == PodState::Ready)
                        .count();
                    prop_assert_eq!(r.ready_pods() as usize, serving);
                    let key = |p: u32| (roster.pod(p).address, p);
                    prop_assert!(r.healthy().windows(2).all(|w| key(w[0]) < key(w[1])));
                    let live = roster.live_pods(rev).len();
                    let not_terminating = (0..roster.pod_count() as u32)
                        .filter(|&p| {
                            roster.pod(p).rev == rev
                                && roster.pod(p).state != PodState::Terminating
                        })
                        .count();
                    prop_assert_eq!(live, not_terminating);
                    prop_assert_eq!(r.live_count() as usize, live);
                }
            }
        }
    }
}
