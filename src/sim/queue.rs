//! The event queue: a min-heap on (time, sequence number).
//!
//! Ordering guarantee: events fire in time order, and **events scheduled for the same instant
//! fire in the order they were scheduled** (the sequence number breaks ties). There is no
//! cancellation here: components that may cancel a scheduled event carry a generation in its
//! payload and ignore stale ones when they fire (lazy cancellation). Timers that usually do not
//! fire (request deadlines) are not put here at all; see `sim::deadline`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::model::time::SimTime;

/// Times are never negative in a run, so (time, seq) packs into one `u128` whose order is the
/// tuple's order: one comparison per heap step instead of two.
struct Entry<E> {
    key: u128,
    event: E,
}

#[inline]
fn key(at: SimTime, seq: u64) -> u128 {
    (u128::from(at.0.max(0) as u64) << 64) | u128::from(seq)
}

#[inline]
fn unkey(key: u128) -> (SimTime, u64) {
    (SimTime((key >> 64) as i64), key as u64)
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// A priority queue of events of type `E`.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `at`; returns its sequence number.
    #[inline]
    pub fn schedule(&mut self, at: SimTime, event: E) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            key: key(at, seq),
            event,
        });
        seq
    }

    /// Reserves a sequence number for an event kept outside the heap (the arrival stream), so
    /// that it orders against heap events exactly as if it had been scheduled now.
    #[inline]
    pub fn reserve_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The (time, seq) of the next event.
    #[inline]
    pub fn peek_key(&self) -> Option<(SimTime, u64)> {
        self.heap.peek().map(|e| unkey(e.key))
    }

    /// Removes and returns the next event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|e| (unkey(e.key).0, e.event))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

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
        let outside = q.reserve_seq();
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
}
