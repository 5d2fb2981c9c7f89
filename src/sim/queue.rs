//! The event queue: a min-heap on (time, sequence number).
//!
//! Ordering guarantee: events fire in time order, and **events scheduled for the same instant
//! fire in the order they were scheduled** (the sequence number breaks ties). There is no
//! cancellation here: components that may cancel a scheduled event carry a generation in its
//! payload and ignore stale ones when they fire (lazy cancellation). Timers that usually do not
//! fire (request deadlines) are not put here at all; see `sim::deadline`.
//!
//! The heap is 4-ary and keeps its keys apart from its events: a sift compares keys only (the
//! four children of a node share one cache line), moves an event once per level, and the tree
//! is half as tall as a binary heap's. As a `std::collections::BinaryHeap` of (key, event)
//! pairs it was one of the engine's largest costs (benches/README.md, "Issue 18 §3").

use std::hint::select_unpredictable;

use crate::model::time::SimTime;

/// Children per node.
const ARITY: usize = 4;
// `pop`'s tournament over a full node is written out for four children.
const _: () = assert!(ARITY == 4);

/// Times are never negative in a run, so (time, seq) packs into one `u128` whose order is the
/// tuple's order: one comparison per heap step instead of two. Keys are unique (every event has
/// its own sequence number), so the order of events is total.
#[inline]
fn key(at: SimTime, seq: u64) -> u128 {
    (u128::from(at.0.max(0) as u64) << 64) | u128::from(seq)
}

#[inline]
fn unkey(key: u128) -> (SimTime, u64) {
    (SimTime((key >> 64) as i64), key as u64)
}

/// A priority queue of events of type `E`.
///
/// Invariant: `keys.len() == events.len()`, `events[i]` was scheduled with `keys[i]`, and every
/// node's key is below its children's (`keys[i] < keys[ARITY * i + 1 ..= ARITY * i + ARITY]`),
/// except that while `vacant` the root's slot holds a popped event and orders nothing.
pub struct EventQueue<E> {
    keys: Vec<u128>,
    events: Vec<E>,
    next_seq: u64,
    /// `pop` took the root and left its slot to be refilled. The next `schedule` refills it with
    /// its own event, sifted down from the root: one sift where refilling it with the last leaf
    /// and then adding the event from a new leaf takes two (a pod whose request ended often
    /// starts the next one at once). Any other call refills it with the last leaf (`settle`).
    /// Which slot holds which event never changes the order events fire in: keys are unique.
    vacant: bool,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            keys: Vec::with_capacity(1024),
            events: Vec::with_capacity(1024),
            next_seq: 0,
            vacant: false,
        }
    }

    /// Schedules `event` at `at`; returns its sequence number.
    #[inline]
    pub fn schedule(&mut self, at: SimTime, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let k = key(at, seq);
        if self.vacant {
            self.vacant = false;
            self.sift_down(k, event);
            return seq;
        }
        // Sift up from a new leaf: parents above `k` move down into the hole.
        let mut hole = self.keys.len();
        self.keys.push(k);
        self.events.push(event);
        while hole > 0 {
            let parent = (hole - 1) / ARITY;
            if self.keys[parent] <= k {
                break;
            }
            self.keys[hole] = self.keys[parent];
            self.events[hole] = self.events[parent];
            hole = parent;
        }
        self.keys[hole] = k;
        self.events[hole] = event;
        seq
    }

    /// Reserves a sequence number for an event kept outside the heap (the arrival stream), so
    /// that it orders against heap events exactly as if it had been scheduled now. Returns the
    /// key it has for `peek` at time `at`.
    #[inline]
    pub fn reserve(&mut self, at: SimTime) -> Key {
        let seq = self.next_seq;
        self.next_seq += 1;
        Key(key(at, seq))
    }

    /// The key of the next event.
    #[inline]
    pub fn peek(&mut self) -> Option<Key> {
        self.settle();
        self.keys.first().map(|&k| Key(k))
    }

    /// The (time, seq) of the next event.
    #[cfg(test)]
    fn peek_key(&mut self) -> Option<(SimTime, u64)> {
        self.peek().map(|k| unkey(k.0))
    }

    /// Removes and returns the next event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.settle();
        let top_key = *self.keys.first()?;
        let top = self.events[0];
        // The root's slot is refilled by the next call (see `vacant`).
        self.vacant = true;
        Some((unkey(top_key).0, top))
    }

    /// Refills a vacant root with the last leaf.
    #[inline]
    fn settle(&mut self) {
        if !self.vacant {
            return;
        }
        self.vacant = false;
        let last_key = self.keys.pop().expect("a vacant root is a slot");
        let last = self.events.pop().expect("as many events as keys");
        if !self.keys.is_empty() {
            self.sift_down(last_key, last);
        }
    }

    /// Puts `(k, event)` in the root's slot, whose old content is dropped, and sifts it down:
    /// the smallest child moves up into the hole while it is below `k`.
    #[inline]
    fn sift_down(&mut self, k: u128, event: E) {
        let n = self.keys.len();
        let mut hole = 0;
        loop {
            let first = ARITY * hole + 1;
            if first >= n {
                break;
            }
            let (best, best_key) = if first + ARITY <= n {
                // A full node (all but the last one on the way down): a fixed tournament of
                // three comparisons, with no loop and one bounds check. Keys are unique, so
                // which of two equal keys wins never arises. Which child is smallest is a coin
                // toss to the branch predictor, so each match is a select (cmov), not a branch.
                let c = &self.keys[first..first + ARITY];
                let (a, ka) = select_unpredictable(c[1] < c[0], (1, c[1]), (0, c[0]));
                let (b, kb) = select_unpredictable(c[3] < c[2], (3, c[3]), (2, c[2]));
                let (best, best_key) = select_unpredictable(kb < ka, (b, kb), (a, ka));
                (first + best, best_key)
            } else {
                let mut best = first;
                let mut best_key = self.keys[first];
                for c in first + 1..n {
                    let ck = self.keys[c];
                    if ck < best_key {
                        best = c;
                        best_key = ck;
                    }
                }
                (best, best_key)
            };
            if k <= best_key {
                break;
            }
            self.keys[hole] = best_key;
            self.events[hole] = self.events[best];
            hole = best;
        }
        self.keys[hole] = k;
        self.events[hole] = event;
    }

    pub fn len(&self) -> usize {
        self.keys.len() - usize::from(self.vacant)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An event's place in the order: its time, then its sequence number. Arrivals, kept outside
/// the heap, compare against `EventQueue::peek` with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(u128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_instant_events_fire_in_scheduling_order() {
        let mut q = EventQueue::new();
        // (time, label), scheduled in this order
        let schedule = [
            (5, "c1"),
            (1, "a"),
            (5, "c2"),
            (3, "b"),
            (5, "c3"),
            (1, "a2"),
        ];
        for (t, label) in schedule {
            q.schedule(SimTime(t), label);
        }
        let fired: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(fired, vec!["a", "a2", "b", "c1", "c2", "c3"]);
    }

    #[test]
    fn reserved_sequence_numbers_interleave_with_scheduled_events() {
        let mut q: EventQueue<&str> = EventQueue::new();
        q.schedule(SimTime(10), "first");
        let outside = unkey(q.reserve(SimTime(10)).0).1;
        q.schedule(SimTime(10), "third");
        let (at, seq) = q.peek_key().expect("non-empty");
        assert_eq!(at, SimTime(10));
        assert!(seq < outside, "the earlier-scheduled event wins the tie");
        q.pop();
        let (_, seq) = q.peek_key().expect("non-empty");
        assert!(
            outside < seq,
            "the reserved slot precedes a later-scheduled event"
        );
    }

    #[test]
    fn pops_in_key_order_under_interleaved_schedules_and_pops() {
        // A reference: the same operations on an ordered set of (time, seq). Times are drawn
        // from a small range so ties are frequent; pops are interleaved so the heap is sifted
        // from every shape, not only from a full one.
        let mut q: EventQueue<u64> = EventQueue::new();
        let mut reference = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut step = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u64 {
            let r = step();
            if r % 3 == 0 {
                let got = q.pop();
                let want = reference.pop_first();
                assert_eq!(
                    got.map(|(t, event)| (t.0, event)),
                    want,
                    "round {round}: pop differs from the sorted reference"
                );
            } else {
                let at = (r >> 8) as i64 % 50;
                // The event is its own sequence number, so a pop names which event fired.
                let seq = q.schedule(SimTime(at), q.next_seq);
                reference.insert((at, seq));
            }
            assert_eq!(q.len(), reference.len());
        }
    }
}
