//! The queue-proxy in one pod and the application behind it.
//!
//! Mirrors serving `pkg/queue/breaker.go` and `pkg/queue/sharedmain/main.go:406-421`
//! (datapath.md A.1, A.2): with containerConcurrency `cc > 0` a breaker admits at most `11·cc`
//! requests (`cc` executing, `10·cc` waiting in FIFO order) and answers the next one at once with
//! 503 `pending request queue full`; with `cc == 0` there is no breaker and the application's
//! own concurrency model decides (`AppModel::Workers` here; processor sharing lives in
//! `PsServer`). Queued requests are never moved to another pod (A.2.1).
//!
//! Requests are opaque `u64` handles. Cancellation is lazy: the owner marks a waiting request
//! dead and calls `forget_waiting`; dead handles are skipped when they reach the head.

use std::collections::VecDeque;

/// What the breaker did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A slot was free: the request starts executing now.
    Start,
    /// It waits in the FIFO.
    Queued,
    /// The breaker is full: 503.
    Rejected,
}

/// A FIFO breaker with `slots` concurrent executions and `depth` waiting places
/// (`depth == u32::MAX`: unbounded).
#[derive(Clone, Debug, Default)]
pub struct Breaker {
    slots: u32,
    depth: u32,
    executing: u32,
    waiting: VecDeque<u64>,
    dead_waiting: u32,
}

impl Breaker {
    /// The queue-proxy breaker for containerConcurrency `cc > 0`: `cc` slots, `10·cc` waiting.
    pub fn queue_proxy(cc: u32) -> Self {
        Breaker {
            slots: cc,
            depth: cc.saturating_mul(10),
            ..Default::default()
        }
    }

    /// An application with `workers` threads and an unbounded internal queue (cc = 0).
    pub fn workers(workers: u32) -> Self {
        Breaker {
            slots: workers.max(1),
            depth: u32::MAX,
            ..Default::default()
        }
    }

    /// Requests admitted and not finished (waiting + executing), as the breaker's `inFlight`.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.executing + self.waiting_len()
    }

    #[inline]
    pub fn waiting_len(&self) -> u32 {
        self.waiting.len() as u32 - self.dead_waiting
    }

    #[inline]
    pub fn executing(&self) -> u32 {
        self.executing
    }

    /// `Maybe` admission (breaker.go:83-107, 211-231).
    #[inline]
    pub fn admit(&mut self, req: u64) -> Admission {
        if self.executing < self.slots {
            self.executing += 1;
            Admission::Start
        } else if self.depth == u32::MAX || self.waiting_len() < self.depth {
            self.waiting.push_back(req);
            Admission::Queued
        } else {
            Admission::Rejected
        }
    }

    /// An executing request left (finished, timed out or cancelled): its slot goes to the
    /// oldest live waiter, which is returned and now counts as executing.
    #[inline]
    pub fn release(&mut self, mut is_alive: impl FnMut(u64) -> bool) -> Option<u64> {
        debug_assert!(self.executing > 0, "release without an executing request");
        self.executing -= 1;
        while let Some(next) = self.waiting.pop_front() {
            if is_alive(next) {
                self.executing += 1;
                return Some(next);
            }
            self.dead_waiting -= 1;
        }
        None
    }

    /// A waiting request was cancelled; it is skipped when it reaches the head.
    #[inline]
    pub fn forget_waiting(&mut self) {
        self.dead_waiting += 1;
        debug_assert!(self.dead_waiting as usize <= self.waiting.len());
    }
}

/// Processor sharing over `cores`: with `k` requests in service each progresses at
/// `min(1, cores / k)` of full speed (an application with no concurrency limit, cc = 0).
/// Implemented with virtual time: all jobs advance at the same rate, so a job finishes when the
/// virtual clock reaches its start mark plus its work.
#[derive(Clone, Debug)]
pub struct PsServer {
    cores: f64,
    /// Virtual seconds of work done per job so far.
    virtual_s: f64,
    last_update_s: f64,
    /// (virtual finish mark, request), unordered; k is small in practice.
    jobs: Vec<(f64, u64)>,
}

impl PsServer {
    pub fn new(cores: u32) -> Self {
        PsServer {
            cores: f64::from(cores.max(1)),
            virtual_s: 0.0,
            last_update_s: 0.0,
            jobs: Vec::new(),
        }
    }

    fn rate(&self) -> f64 {
        if self.jobs.is_empty() {
            1.0
        } else {
            (self.cores / self.jobs.len() as f64).min(1.0)
        }
    }

    fn advance(&mut self, now_s: f64) {
        self.virtual_s += (now_s - self.last_update_s).max(0.0) * self.rate();
        self.last_update_s = now_s;
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Starts a job with `work_s` seconds of full-speed work.
    pub fn start(&mut self, now_s: f64, req: u64, work_s: f64) {
        self.advance(now_s);
        self.jobs.push((self.virtual_s + work_s, req));
    }

    /// Removes a job (cancelled or timed out) if present.
    pub fn remove(&mut self, now_s: f64, req: u64) -> bool {
        self.advance(now_s);
        match self.jobs.iter().position(|(_, r)| *r == req) {
            Some(i) => {
                self.jobs.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// When the next job finishes (in seconds), assuming no arrivals in between.
    pub fn next_completion_s(&self) -> Option<f64> {
        let min_mark = self
            .jobs
            .iter()
            .map(|(m, _)| *m)
            .fold(f64::INFINITY, f64::min);
        min_mark
            .is_finite()
            .then(|| self.last_update_s + ((min_mark - self.virtual_s).max(0.0) / self.rate()))
    }

    /// Removes and returns the jobs finished by `now_s`.
    pub fn take_finished(&mut self, now_s: f64, out: &mut Vec<u64>) {
        self.advance(now_s);
        // A tolerance for float drift: a job due within a nanosecond is done.
        let v = self.virtual_s + 1e-9;
        let mut i = 0;
        while i < self.jobs.len() {
            if self.jobs[i].0 <= v {
                out.push(self.jobs.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_admits_11cc_and_rejects_the_next() {
        let mut b = Breaker::queue_proxy(2);
        let outcomes: Vec<Admission> = (0..23).map(|i| b.admit(i)).collect();
        assert_eq!(&outcomes[..2], &[Admission::Start, Admission::Start]);
        assert!(outcomes[2..22].iter().all(|a| *a == Admission::Queued));
        assert_eq!(outcomes[22], Admission::Rejected);
        assert_eq!((b.in_flight(), b.waiting_len(), b.executing()), (22, 20, 2));
    }

    #[test]
    fn release_serves_fifo_and_skips_the_dead() {
        let mut b = Breaker::queue_proxy(1);
        for i in 0..4 {
            b.admit(i);
        }
        // request 1 (waiting) was cancelled
        b.forget_waiting();
        let dead = [1u64];
        assert_eq!(b.waiting_len(), 2);
        assert_eq!(b.release(|r| !dead.contains(&r)), Some(2));
        assert_eq!(b.release(|r| !dead.contains(&r)), Some(3));
        assert_eq!(b.release(|r| !dead.contains(&r)), None);
        assert_eq!((b.in_flight(), b.waiting_len()), (0, 0));
    }

    #[test]
    fn workers_never_reject() {
        let mut b = Breaker::workers(2);
        assert!((0..10_000).all(|i| b.admit(i) != Admission::Rejected));
        assert_eq!(b.waiting_len(), 9_998);
    }

    #[test]
    fn processor_sharing_slows_jobs_when_oversubscribed() {
        // one core, two jobs of 1 s each started together: both finish at 2 s
        let mut ps = PsServer::new(1);
        ps.start(0.0, 1, 1.0);
        ps.start(0.0, 2, 1.0);
        assert!((ps.next_completion_s().expect("jobs") - 2.0).abs() < 1e-9);
        let mut done = Vec::new();
        ps.take_finished(2.0, &mut done);
        done.sort();
        assert_eq!(done, vec![1, 2]);
        // two cores, two jobs: each runs at full speed
        let mut ps = PsServer::new(2);
        ps.start(0.0, 1, 1.0);
        ps.start(0.5, 2, 1.0);
        assert!((ps.next_completion_s().expect("jobs") - 1.0).abs() < 1e-9);
        // a removed job frees its share
        let mut ps = PsServer::new(1);
        ps.start(0.0, 1, 1.0);
        ps.start(0.0, 2, 1.0);
        assert!(ps.remove(0.5, 2));
        // job 1 did 0.25 s of work in 0.5 s; 0.75 s more at full speed
        assert!((ps.next_completion_s().expect("job") - 1.25).abs() < 1e-9);
    }
}
