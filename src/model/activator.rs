//! The activator's per-revision throttler (serving `pkg/activator/net/throttler.go`,
//! `lb_policy.go`; datapath.md A.3.2).
//!
//! - One **unbounded FIFO** per revision: the revision breaker's queue depth is nominally 10000
//!   but its total slots are 10000 + MaxInt32, so it never rejects (A.3.2). Requests leave it by
//!   getting capacity, by timeout, or by client cancellation.
//! - cc > 0: capacity `cc × healthy pods`; each pod takes at most `cc` requests in flight from
//!   this activator (its tracker's breaker, used through non-blocking `Reserve`).
//! - cc = 0: no per-pod limit; a gate that is closed with zero healthy pods and releases every
//!   waiter at once when the first pod becomes healthy (`infiniteBreaker`).
//! - Load balancing by cc: 0 → random choice of 2 by in-flight count, 1–3 → first available in
//!   tracker order, >= 4 → round-robin (throttler.go:181-193). The tracker order is the order
//!   the caller gives the pods in: upstream's, by `ip:port` (throttler.go:310-313, the roster's
//!   `healthy`), not by age.
//! - [`ConcurrencyReporter`]: the activator's stats for the autoscaler
//!   (`pkg/activator/handler/concurrency_reporter.go`).
//!
//! Must not: read a clock or schedule events (the reporter takes `now`). Requests are opaque
//! `u64` handles; cancellation of a waiting request is lazy (`forget_waiting`).

use std::collections::VecDeque;

use rand::{Rng, RngExt};

use crate::model::time::SimTime;
pub use crate::scenario::spec::LbPolicy;

/// Knative's choice of policy by containerConcurrency.
pub fn default_policy(cc: u32) -> LbPolicy {
    match cc {
        0 => LbPolicy::RandomChoice2,
        1..=3 => LbPolicy::FirstAvailable,
        _ => LbPolicy::RoundRobin,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracker {
    pod: u32,
    in_flight: u32,
}

/// `Throttler::slot` of a pod without a tracker.
const NO_TRACKER: u32 = u32::MAX;

/// One revision's throttler in one activator.
///
/// Costs (issue 17 §3): a dispatch and a release are O(1) plus a pick, which looks at one bit
/// per tracker, 64 at a time (the trackers with room are a bitset, so a pick does not visit
/// full ones one by one); `set_pods` is O(P) with no sorting, and returns at once when the pods
/// do not change (a pod's tracker is found through a table indexed by pod id).
#[derive(Clone, Debug)]
pub struct Throttler {
    cc: u32,
    policy: LbPolicy,
    /// Healthy pods in the order given (upstream's: by `ip:port`).
    trackers: Vec<Tracker>,
    /// Pod id -> its position in `trackers` (`NO_TRACKER` when it has none). Pod ids are the
    /// world's dense pod indices, so this is as long as the highest id seen.
    slot: Vec<u32>,
    /// Bit i: the tracker at position i has room (in flight < cc). Unused for cc = 0, where
    /// every tracker has room.
    open: Vec<u64>,
    rr_next: usize,
    waiting: VecDeque<u64>,
    dead_waiting: u32,
    /// Requests dispatched to a pod and not yet finished.
    in_flight: u32,
}

impl Throttler {
    pub fn new(cc: u32, policy: Option<LbPolicy>) -> Self {
        Throttler {
            cc,
            policy: policy.unwrap_or_else(|| default_policy(cc)),
            trackers: Vec::new(),
            slot: Vec::new(),
            open: Vec::new(),
            rr_next: 0,
            waiting: VecDeque::new(),
            dead_waiting: 0,
            in_flight: 0,
        }
    }

    #[inline]
    pub fn waiting_len(&self) -> u32 {
        self.waiting.len() as u32 - self.dead_waiting
    }

    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub fn healthy_pods(&self) -> usize {
        self.trackers.len()
    }

    /// `calculateCapacity` in pod-direct mode: `cc × trackers`; unlimited for cc = 0 once a pod
    /// is healthy; 0 without pods.
    pub fn capacity(&self) -> u64 {
        match (self.trackers.len(), self.cc) {
            (0, _) => 0,
            (_, 0) => u64::MAX,
            (n, cc) => u64::from(cc) * n as u64,
        }
    }

    fn tracker_of(&self, pod: u32) -> Option<usize> {
        match self.slot.get(pod as usize) {
            Some(&s) if s != NO_TRACKER => Some(s as usize),
            _ => None,
        }
    }

    /// Rebuilds `slot` and `open` from `trackers`, clearing the slots of `previous` first.
    fn reindex(&mut self, previous: &[Tracker]) {
        for t in previous {
            self.slot[t.pod as usize] = NO_TRACKER;
        }
        for (i, t) in self.trackers.iter().enumerate() {
            self.slot[t.pod as usize] = i as u32;
        }
        self.open.clear();
        if self.cc > 0 {
            self.open.resize(self.trackers.len().div_ceil(64), 0);
            for (i, t) in self.trackers.iter().enumerate() {
                if t.in_flight < self.cc {
                    self.open[i / 64] |= 1 << (i % 64);
                }
            }
        }
    }

    /// A pod left the endpoints; requests already sent to it finish there.
    pub fn remove_pod(&mut self, pod: u32) {
        if let Some(i) = self.tracker_of(pod) {
            let previous = self.trackers.clone();
            self.trackers.remove(i);
            self.reindex(&previous);
        }
    }

    /// The pods this activator may send to, in the activator's order (`ip:port`,
    /// throttler.go:310-313), changed: a new probe result, or a new slice after subsetting
    /// (A.3.3). Trackers of pods it keeps keep their in-flight counts; new pods start at zero
    /// (each tracker's capacity is reset to the full cc, throttler.go:281-289). The round-robin
    /// cursor is a position and stays where it is (lb_policy.go:89-116). A pod listed twice
    /// counts once.
    pub fn set_pods(&mut self, pods: &[u32]) {
        if pods.len() == self.trackers.len()
            && pods.iter().zip(&self.trackers).all(|(&p, t)| p == t.pod)
        {
            return;
        }
        if let Some(&max) = pods.iter().max() {
            if max as usize >= self.slot.len() {
                self.slot.resize(max as usize + 1, NO_TRACKER);
            }
        }
        let previous = std::mem::take(&mut self.trackers);
        // Marks a pod already taken from `pods` (its slot still points into `previous` or is
        // empty until `reindex`).
        const TAKEN: u32 = 1 << 31;
        let mut trackers = Vec::with_capacity(pods.len());
        for &pod in pods {
            let s = self.slot[pod as usize];
            if s != NO_TRACKER && s & TAKEN != 0 {
                continue;
            }
            let in_flight = if s == NO_TRACKER {
                0
            } else {
                previous[s as usize].in_flight
            };
            trackers.push(Tracker { pod, in_flight });
            self.slot[pod as usize] = if s == NO_TRACKER { TAKEN } else { s | TAKEN };
        }
        for t in &trackers {
            self.slot[t.pod as usize] = NO_TRACKER;
        }
        self.trackers = trackers;
        self.reindex(&previous);
    }

    pub fn enqueue(&mut self, req: u64) {
        self.waiting.push_back(req);
    }

    /// A waiting request was cancelled or timed out.
    pub fn forget_waiting(&mut self) {
        self.dead_waiting += 1;
    }

    /// A dispatched request finished (any outcome): frees its revision slot and, if the pod is
    /// still tracked, its pod slot.
    pub fn release(&mut self, pod: u32) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(i) = self.tracker_of(pod) {
            let t = &mut self.trackers[i];
            t.in_flight = t.in_flight.saturating_sub(1);
            if self.cc > 0 && t.in_flight < self.cc {
                self.open[i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// Takes the oldest live waiter and a pod for it, if capacity allows.
    pub fn dispatch<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        mut is_alive: impl FnMut(u64) -> bool,
    ) -> Option<(u64, u32)> {
        if u64::from(self.in_flight) >= self.capacity() {
            return None;
        }
        // Drop dead heads first, so they never hold a pod choice.
        while let Some(&head) = self.waiting.front() {
            if is_alive(head) {
                break;
            }
            self.waiting.pop_front();
            self.dead_waiting -= 1;
        }
        self.waiting.front()?;
        let idx = self.pick(rng)?;
        let req = self.waiting.pop_front().expect("checked non-empty above");
        let tracker = &mut self.trackers[idx];
        tracker.in_flight += 1;
        if self.cc > 0 && tracker.in_flight >= self.cc {
            self.open[idx / 64] &= !(1 << (idx % 64));
        }
        self.in_flight += 1;
        Some((req, tracker.pod))
    }

    /// The first position at or after `from` whose tracker has room, if any.
    fn first_open_from(&self, from: usize) -> Option<usize> {
        if self.cc == 0 {
            return (from < self.trackers.len()).then_some(from);
        }
        let mut word = from / 64;
        // the first word without the positions before `from`
        let mut bits = self.open.get(word)? & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            bits = *self.open.get(word)?;
        }
    }

    /// The LB policies of `lb_policy.go`.
    fn pick<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<usize> {
        let n = self.trackers.len();
        if n == 0 {
            return None;
        }
        match self.policy {
            // lb_policy.go:80-87: the first tracker (in sorted order) that has room.
            LbPolicy::FirstAvailable => self.first_open_from(0),
            // lb_policy.go:89-116: from the cursor, the first with room; the cursor moves past
            // it. The cursor is a position in the trackers: it goes back to 0 when the list has
            // shrunk below it (:97-101), and nothing else moves it.
            LbPolicy::RoundRobin => {
                if self.rr_next >= n {
                    self.rr_next = 0;
                }
                let found = self
                    .first_open_from(self.rr_next)
                    .or_else(|| self.first_open_from(0));
                if let Some(i) = found {
                    self.rr_next = i + 1;
                }
                found
            }
            // lb_policy.go:41-76: two distinct random trackers, the one with fewer in flight
            // (ties at random); no capacity check.
            LbPolicy::RandomChoice2 => {
                if n == 1 {
                    return Some(0);
                }
                let a = rng.random_range(0..n);
                let mut b = rng.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let (ia, ib) = (self.trackers[a].in_flight, self.trackers[b].in_flight);
                Some(match ia.cmp(&ib) {
                    std::cmp::Ordering::Less => a,
                    std::cmp::Ordering::Greater => b,
                    std::cmp::Ordering::Equal => {
                        if rng.random::<bool>() {
                            a
                        } else {
                            b
                        }
                    }
                })
            }
        }
    }
}

/// A stat the activator sends the autoscaler for a revision (the two `asmetrics.Stat` fields it
/// sets): average concurrency and request count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivatorStat {
    pub concurrency: f64,
    pub requests: f64,
}

/// One report period of a [`ConcurrencyReporter`]: what it measured, and what it sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivatorReport {
    /// Request-seconds of the revision's requests at the activator since the last report.
    pub request_seconds: f64,
    /// Requests that reached the activator since the last report.
    pub requests: u64,
    /// The stat sent to the autoscaler; `None` when the activator had no entry for the revision
    /// (nothing since a period without activity).
    pub sent: Option<ActivatorStat>,
}

/// The activator's stats for one revision (`pkg/activator/handler/concurrency_reporter.go` over
/// networking's `RequestStats`), for the activators together: requests count from the moment
/// they reach the activator until they end (it sits outside the timeout handler, A.3.1), so a
/// request counts while it waits and while it is proxied.
///
/// - The first request for a revision without an entry creates one and is reported at once as
///   concurrency 1, one request (`getOrCreateStat`, :111-154): the stat that wakes a revision at
///   zero.
/// - Every report period (`reportInterval`, 1 s, :41) each entry reports its time-averaged
///   concurrency since the entry was created or last reported, and its request count, minus the
///   first request already reported (concurrency at least 0, :176-209). An entry whose period
///   had no activity (average 0) reports that once and is deleted (:186-190, :161-171).
///
/// Simplification: upstream each activator replica keeps its own entry; here the revision's
/// activators share one, so a revision's first request wakes it once, not once per replica.
#[derive(Clone, Debug, Default)]
pub struct ConcurrencyReporter {
    in_flight: u32,
    /// Request-seconds since `since`, integrated up to `last`.
    area: f64,
    last: SimTime,
    /// Start of the period being measured: the entry's creation or the last report.
    since: SimTime,
    requests: u64,
    /// The revision has an entry (`stats[key]`).
    tracked: bool,
    /// `firstRequest`: 1 until the report after the entry was created.
    first_request: f64,
}

impl ConcurrencyReporter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests of the revision at the activator now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    fn advance(&mut self, now: SimTime) {
        if now > self.last {
            self.area += f64::from(self.in_flight) * (now - self.last).as_secs_f64();
            self.last = now;
        }
    }

    /// A request reaches the activator (`handleRequestIn`). Returns the immediate stat when the
    /// revision had no entry.
    pub fn request_in(&mut self, now: SimTime) -> Option<ActivatorStat> {
        self.advance(now);
        self.in_flight += 1;
        self.requests += 1;
        if self.tracked {
            return None;
        }
        // NewRequestStats(event.Time): the entry measures from this request on.
        self.tracked = true;
        self.first_request = 1.0;
        self.since = now;
        self.area = 0.0;
        self.requests = 1;
        Some(ActivatorStat {
            concurrency: 1.0,
            requests: 1.0,
        })
    }

    /// The request ends, whatever its outcome (`handleRequestOut`).
    pub fn request_out(&mut self, now: SimTime) {
        self.advance(now);
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The report at `now` (`report`/`computeReport`): measures the period since the last
    /// report and starts a new one.
    pub fn report(&mut self, now: SimTime) -> ActivatorReport {
        self.advance(now);
        let request_seconds = self.area;
        let requests = self.requests;
        self.area = 0.0;
        self.requests = 0;
        let period = now.since(self.since).as_secs_f64();
        self.since = now;
        if !self.tracked {
            return ActivatorReport {
                request_seconds,
                requests,
                sent: None,
            };
        }
        let average = if period > 0.0 {
            request_seconds / period
        } else {
            0.0
        };
        let first = std::mem::take(&mut self.first_request);
        if average == 0.0 && self.in_flight == 0 {
            // No activity the whole period, and no request holds the entry (refs == 0).
            self.tracked = false;
        }
        ActivatorReport {
            request_seconds,
            requests,
            sent: Some(ActivatorStat {
                concurrency: (average - first).max(0.0),
                requests: requests as f64 - first,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn drain(t: &mut Throttler, rng: &mut Pcg64Mcg) -> Vec<(u64, u32)> {
        std::iter::from_fn(|| t.dispatch(rng, |_| true)).collect()
    }

    #[test]
    fn no_pods_means_no_capacity_and_an_unbounded_queue() {
        let mut t = Throttler::new(10, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        for i in 0..50_000 {
            t.enqueue(i);
        }
        assert_eq!(t.capacity(), 0);
        assert!(t.dispatch(&mut rng, |_| true).is_none());
        assert_eq!(t.waiting_len(), 50_000);
    }

    #[test]
    fn per_pod_in_flight_is_capped_at_cc() {
        // cc 2, two pods: capacity 4; the fifth waits until a release
        let mut t = Throttler::new(2, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        // pod 7's address sorts before pod 3's (the roster gives pods in `ip:port` order)
        t.set_pods(&[7, 3]);
        for i in 0..5 {
            t.enqueue(i);
        }
        let sent = drain(&mut t, &mut rng);
        assert_eq!(sent.len(), 4);
        // lb_policy.go:80-87 first-available (cc 1-3) packs the first pod in the activator's
        // order (throttler.go:310-313), not the oldest or lowest id
        assert_eq!(
            sent.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![7, 7, 3, 3]
        );
        assert_eq!((t.waiting_len(), t.in_flight()), (1, 4));
        t.release(7);
        assert_eq!(t.dispatch(&mut rng, |_| true), Some((4, 7)));
    }

    #[test]
    fn round_robin_rotates_for_cc_4_and_above() {
        let mut t = Throttler::new(4, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        t.set_pods(&[1, 2, 3]);
        for i in 0..6 {
            t.enqueue(i);
        }
        let pods: Vec<u32> = drain(&mut t, &mut rng).into_iter().map(|s| s.1).collect();
        assert_eq!(pods, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn round_robin_cursor_is_a_position() {
        // Each row: pods, picks, new pods, the next picks (cc 4: no pod fills up).
        type Row = (
            &'static str,
            &'static [u32],
            usize,
            &'static [u32],
            &'static [u32],
        );
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // lb_policy.go:109 idx = p + 1: after 1, 2 the cursor is at position 2; pod 1
            // leaving does not move it, so position 2 of [2, 3, 4] is pod 4
            ("a removal before the cursor", &[1, 2, 3], 2, &[2, 3, 4], &[4, 2, 3]),
            // lb_policy.go:97-101 the list shrank below the cursor: back to position 0
            ("shrunk below the cursor", &[1, 2, 3], 3, &[5, 6], &[5, 6, 5]),
            // a new pod in the activator's order takes its place in the rotation
            ("an insertion before the cursor", &[2, 4], 1, &[1, 2, 4], &[2, 4, 1]),
        ];
        for &(name, pods, first, next_pods, want) in rows {
            let mut t = Throttler::new(4, None);
            let mut rng = Pcg64Mcg::seed_from_u64(1);
            t.set_pods(pods);
            for i in 0..first {
                t.enqueue(i as u64);
                let (_, pod) = t.dispatch(&mut rng, |_| true).expect("room");
                t.release(pod);
            }
            t.set_pods(next_pods);
            let got: Vec<u32> = (0..want.len())
                .map(|i| {
                    t.enqueue(100 + i as u64);
                    let (_, pod) = t.dispatch(&mut rng, |_| true).expect("room");
                    t.release(pod);
                    pod
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn set_pods_keeps_in_flight_of_pods_it_keeps() {
        let mut t = Throttler::new(1, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        t.set_pods(&[1, 2]);
        for i in 0..3 {
            t.enqueue(i);
        }
        assert_eq!(drain(&mut t, &mut rng), vec![(0, 1), (1, 2)]);
        // pod 1 moves to another activator, pod 3 arrives: capacity is cc × 2 pods, and the
        // request still at pod 1 counts against it until it finishes
        t.set_pods(&[2, 3]);
        assert_eq!(t.healthy_pods(), 2);
        assert!(t.dispatch(&mut rng, |_| true).is_none());
        t.release(1);
        // pod 2 is still full (its in-flight count was kept), pod 3 is free
        assert_eq!(t.dispatch(&mut rng, |_| true), Some((2, 3)));
        assert!(t.dispatch(&mut rng, |_| true).is_none());
    }

    #[test]
    fn cc_zero_opens_the_gate_for_everyone() {
        let mut t = Throttler::new(0, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        for i in 0..1000 {
            t.enqueue(i);
        }
        assert!(t.dispatch(&mut rng, |_| true).is_none());
        t.set_pods(&[1, 2]);
        let sent = drain(&mut t, &mut rng);
        assert_eq!(sent.len(), 1000);
        // power of two choices keeps the two pods balanced
        let on_one = sent.iter().filter(|s| s.1 == 1).count();
        assert!((480..=520).contains(&on_one), "{on_one}");
    }

    #[test]
    fn dead_waiters_are_skipped_and_removed_pods_stop_receiving() {
        let mut t = Throttler::new(1, None);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        t.set_pods(&[1, 2]);
        for i in 0..3 {
            t.enqueue(i);
        }
        t.forget_waiting();
        assert_eq!(t.dispatch(&mut rng, |r| r != 0), Some((1, 1)));
        t.remove_pod(2);
        assert_eq!(t.capacity(), 1);
        assert!(t.dispatch(&mut rng, |r| r != 0).is_none());
        t.release(1);
        assert_eq!(t.dispatch(&mut rng, |r| r != 0), Some((2, 1)));
    }

    /// The throttler as it was before issue 17 §3 (linear scans, sorted index rebuilt on every
    /// change): the reference the indexed one must match pick for pick.
    use std::collections::{BTreeMap, BTreeSet};

    struct Naive {
        cc: u32,
        policy: LbPolicy,
        trackers: Vec<Tracker>,
        rr_next: usize,
    }

    impl Naive {
        fn set_pods(&mut self, pods: &[u32]) {
            let kept: BTreeMap<u32, u32> =
                self.trackers.iter().map(|t| (t.pod, t.in_flight)).collect();
            let mut seen = BTreeSet::new();
            self.trackers = pods
                .iter()
                .filter(|p| seen.insert(**p))
                .map(|&pod| Tracker {
                    pod,
                    in_flight: kept.get(&pod).copied().unwrap_or(0),
                })
                .collect();
        }
        fn room(&self, i: usize) -> bool {
            self.cc == 0 || self.trackers[i].in_flight < self.cc
        }
        /// The pod a dispatch would pick (None: no room), for the two scanning policies.
        fn pick(&mut self) -> Option<u32> {
            let n = self.trackers.len();
            let i = match self.policy {
                LbPolicy::FirstAvailable => (0..n).find(|&i| self.room(i)),
                LbPolicy::RoundRobin => {
                    if self.rr_next >= n {
                        self.rr_next = 0;
                    }
                    let start = self.rr_next;
                    let found = (0..n).map(|k| (start + k) % n).find(|&i| self.room(i));
                    if let Some(i) = found {
                        self.rr_next = i + 1;
                    }
                    found
                }
                LbPolicy::RandomChoice2 => unreachable!("not compared"),
            }?;
            self.trackers[i].in_flight += 1;
            Some(self.trackers[i].pod)
        }
        fn release(&mut self, pod: u32) {
            if let Some(t) = self.trackers.iter_mut().find(|t| t.pod == pod) {
                t.in_flight = t.in_flight.saturating_sub(1);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn indexed_trackers_pick_as_the_linear_scan_did(
            cc in 0u32..4,
            round_robin in proptest::bool::ANY,
            // up to 150 pods: trackers span several 64-bit words of the bitset
            ops in proptest::collection::vec((0u8..4, proptest::collection::vec(0u32..150, 0..140)), 1..60),
        ) {
            let policy = if round_robin { LbPolicy::RoundRobin } else { LbPolicy::FirstAvailable };
            let mut t = Throttler::new(cc, Some(policy));
            let mut naive = Naive { cc, policy, trackers: Vec::new(), rr_next: 0 };
            let mut rng = Pcg64Mcg::seed_from_u64(1);
            let mut sent: Vec<u32> = Vec::new();
            let mut next = 0u64;
            for (op, pods) in ops {
                match op {
                    // new pods (in any order, maybe listed twice)
                    0 => {
                        t.set_pods(&pods);
                        naive.set_pods(&pods);
                    }
                    // a pod leaves
                    1 => if let Some(&pod) = pods.first() {
                        t.remove_pod(pod);
                        naive.trackers.retain(|x| x.pod != pod);
                    },
                    // requests finish
                    2 => for k in pods {
                        if !sent.is_empty() {
                            let pod = sent.remove(k as usize % sent.len());
                            t.release(pod);
                            naive.release(pod);
                        }
                    },
                    // requests arrive and are dispatched while there is room
                    _ => for _ in 0..pods.len() {
                        // the revision's capacity gate comes first (in flight at removed
                        // pods counts against it); then the pick
                        let gate_open = u64::from(t.in_flight()) < t.capacity();
                        t.enqueue(next);
                        next += 1;
                        let got = t.dispatch(&mut rng, |_| true).map(|(_, pod)| pod);
                        let want = if gate_open { naive.pick() } else { None };
                        proptest::prop_assert_eq!(got, want);
                        if let Some(pod) = got {
                            sent.push(pod);
                        }
                    },
                }
                let want: Vec<(u32, u32)> = naive.trackers.iter().map(|x| (x.pod, x.in_flight)).collect();
                let got: Vec<(u32, u32)> = t.trackers.iter().map(|x| (x.pod, x.in_flight)).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }

    fn at(secs: f64) -> SimTime {
        SimTime::from_secs_f64(secs)
    }

    #[test]
    fn the_first_request_is_reported_at_once_and_not_again() {
        // concurrency_reporter.go:111-154: a revision without an entry reports {1, 1} at once;
        // :176-209 the next report subtracts that first request (concurrency at least 0).
        let mut r = ConcurrencyReporter::new();
        let first = ActivatorStat {
            concurrency: 1.0,
            requests: 1.0,
        };
        assert_eq!(r.request_in(at(0.5)), Some(first));
        // a second request while the entry exists sends nothing at once
        assert_eq!(r.request_in(at(0.5)), None);
        r.request_out(at(0.75));
        // [0.5, 1.0]: 1 request the whole half second, a second one for a quarter: average
        // (0.5 + 0.25) / 0.5 = 1.5 over the entry's life, minus the 1 already reported
        let report = r.report(at(1.0));
        assert_eq!(report.requests, 2);
        assert!((report.request_seconds - 0.75).abs() < 1e-12);
        assert_eq!(
            report.sent,
            Some(ActivatorStat {
                concurrency: 0.5,
                requests: 1.0
            })
        );
        // the following period counts in full: one request in flight all second
        let report = r.report(at(2.0));
        assert_eq!(
            report.sent,
            Some(ActivatorStat {
                concurrency: 1.0,
                requests: 0.0
            })
        );
    }

    #[test]
    fn reporter_rows() {
        // Each row: (request in/out events as (time, +1/-1)), report times, the stats sent.
        type Row = (
            &'static str,
            Vec<(f64, i32)>,
            Vec<f64>,
            Vec<Option<(f64, f64)>>,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // concurrency_reporter.go:196 max(avg − first, 0): a short first request reports
            // 0 afterwards, not a negative concurrency
            ("short first request", vec![(0.2, 1), (0.3, -1)], vec![1.0], vec![Some((0.0, 0.0))]),
            // :186-190,161-171 a period with no activity reports once, then the entry is gone
            ("idle entry is deleted", vec![(0.2, 1), (0.3, -1)], vec![1.0, 2.0, 3.0],
             vec![Some((0.0, 0.0)), Some((0.0, 0.0)), None]),
            // no request ever: no entry, nothing to send
            ("never used", vec![], vec![1.0], vec![None]),
            // :111-154 after deletion the next request is a first request again: its stat
            // went out at once, so the period's report subtracts it
            ("first again after deletion", vec![(0.2, 1), (0.3, -1), (2.5, 1)], vec![1.0, 2.0, 3.0],
             vec![Some((0.0, 0.0)), Some((0.0, 0.0)), Some((0.0, 0.0))]),
            // a request still in flight keeps the entry and counts in full after the first period
            ("busy entry stays", vec![(0.0, 1)], vec![1.0, 2.0], vec![Some((0.0, 0.0)), Some((1.0, 0.0))]),
        ];
        for (name, events, reports, want) in rows {
            let mut r = ConcurrencyReporter::new();
            let mut events = events.into_iter().peekable();
            for (t, want) in reports.into_iter().zip(want) {
                while let Some(&(e, d)) = events.peek() {
                    if e > t {
                        break;
                    }
                    if d > 0 {
                        r.request_in(at(e));
                    } else {
                        r.request_out(at(e));
                    }
                    events.next();
                }
                let got = r.report(at(t)).sent.map(|s| (s.concurrency, s.requests));
                assert_eq!(got, want, "{name} at {t}");
            }
        }
    }

    proptest::proptest! {
        /// Whatever the requests and report times, every request reaches the autoscaler's
        /// request count exactly once (the immediate stat's 1 is taken off the next report,
        /// concurrency_reporter.go:196-197), concurrency is never negative, and the request
        /// seconds measured are what was in flight.
        #[test]
        fn every_request_is_counted_once(
            steps in proptest::collection::vec((0u8..3, 1u64..1500), 1..80),
        ) {
            let mut r = ConcurrencyReporter::new();
            let (mut now_ms, mut in_flight, mut arrived) = (0u64, 0u32, 0u64);
            let (mut sent_requests, mut area, mut measured) = (0.0, 0.0, 0.0);
            for (kind, dt) in steps {
                area += f64::from(in_flight) * dt as f64 / 1e3;
                now_ms += dt;
                let now = SimTime(now_ms as i64 * 1_000_000);
                match kind {
                    0 => {
                        arrived += 1;
                        in_flight += 1;
                        if let Some(stat) = r.request_in(now) {
                            sent_requests += stat.requests;
                        }
                    }
                    1 if in_flight > 0 => {
                        in_flight -= 1;
                        r.request_out(now);
                    }
                    _ => {
                        let report = r.report(now);
                        measured += report.request_seconds;
                        if let Some(stat) = report.sent {
                            proptest::prop_assert!(stat.concurrency >= 0.0);
                            sent_requests += stat.requests;
                        }
                    }
                }
            }
            // a last report closes the period
            let report = r.report(SimTime((now_ms as i64 + 1000) * 1_000_000));
            area += f64::from(in_flight);
            measured += report.request_seconds;
            if let Some(stat) = report.sent {
                sent_requests += stat.requests;
            }
            proptest::prop_assert_eq!(sent_requests, arrived as f64);
            proptest::prop_assert!((measured - area).abs() < 1e-6, "{} vs {}", measured, area);
        }
    }
}
