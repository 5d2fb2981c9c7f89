//! The simulated Knative world and its run loop.
//!
//! One `World` holds the route (spec traffic, the rollout annotation, the programmed ingress),
//! the revisions (pods, queue-proxies, the activators' throttlers, the autoscaler, SKS mode) and
//! every request in flight. Events come from the event queue and from the arrival stream, which is merged in
//! without being queued (it is one stream whose next element is always known).
//!
//! Faithfulness notes (datapath.md and routing.md):
//! - The route reconciler (`reconcile`) mirrors RR:331-383 and RG:164-197: it resolves the
//!   traffic, steps the rollout with `reconcile_rollout`, and programs the ingress, which applies
//!   the new split after the ingress programming delay; that readiness report triggers the next
//!   reconcile, so ObserveReady sees the real delay and the step interval emerges from it.
//! - Deadlines: a request's revision timeout starts at the activator (proxied) or the
//!   queue-proxy (direct); with no modelled ingress latency both start at arrival, so for a
//!   proxied request the activator's 504 always comes first (A.3.1). A client timeout applies
//!   from arrival. Deadlines are kept per revision in arrival order (they are monotone), so a
//!   request that finishes in time costs no timer event at all.
//! - Autoscaling (A.5): every second the scraper's stat (the time-averaged concurrency and
//!   count of requests that went straight to the pods, only while a pod is Ready) and the
//!   activator's report (`model::activator::ConcurrencyReporter`: its requests, less the first
//!   one it reported at once) go into the revision's decider; every 2 s the decider and the
//!   KPA's bounds and scale-to-zero decide the pods and the SKS mode (Serve iff ready pods, a
//!   wanted scale > 0 and excess burst capacity >= 0, A.4). A mode change is applied after the
//!   ingress programming delay; requests already at an activator finish through it.
//! - Pods (A.6.3): their states, endpoints and readiness are `model::roster`'s (shared with the
//!   live mode); the world schedules each step: start-up delay, then the activator's probe tick,
//!   then Kubernetes readiness (Serve endpoints, the autoscaler's ready count); a terminating pod
//!   stops counting as ready at once and leaves the endpoints after a delay. Activators (A.3.3):
//!   a subset per revision splits its healthy pods; each has its own FIFO.
//! - Failures (`model::failure`, issue 12 §3): the application answers a drawn share of
//!   requests with an error (after its service time, unchanged by the queue-proxy and the
//!   activator) and may be slower; a request reaching a pod whose application does not accept
//!   connections (not serving yet, or crashed) gets 502 from the queue-proxy at once; a crash
//!   ends what the pod's queue-proxy holds with 502, the pod drains out of the endpoints, and the
//!   kubelet restarts its container after Kubernetes' back-off, through start-up and readiness
//!   again. A crash-looping revision's containers fail when their start-up completes, so it
//!   never becomes Ready.
//! - Ingress profile (`model::ingress`): a routed request reaches a gateway replica (by client),
//!   passes its circuit breaker for the revision's cluster or ends at once as
//!   `ingress_overflow`, and is balanced by the profile's LB over the cluster's endpoints (pods
//!   in Serve mode, the activator subset in Proxy mode); `finish` releases it. `ideal` admits
//!   everything and keeps the original spreading, drawing nothing, so its runs are unchanged.
//!   Kourier translates nothing while a split has no ready endpoint (the generation is held)
//!   and translates it again when one appears. Each replica applies a generation after its own
//!   programming delay; the KIngress is Ready, for the route reconciler, when all have.

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;

use super::queue::{EventQueue, Key};
use crate::model::activator::{ConcurrencyReporter, Throttler};
use crate::model::arrival::{Arrival, ArrivalGen};
use crate::model::failure::{AppAnswer, ContainerLife, FailureSpec};
use crate::model::flagger::FlaggerController;
use crate::model::ingress::{applies_config, Gateway, Host, Ticket};
use crate::model::queue_proxy::{Admission, Breaker, PsServer};
use crate::model::revision::{scale_down_victims, Kpa};
use crate::model::rng::{stream, Stream, StreamRng};
use crate::model::roster::{next_probe_tick, RevisionPods, Roster};
use crate::model::route_control::{DataPlane, RevisionState, RolloutChange, RouteControl};
use crate::model::time::{SimDuration, SimTime, NANOS_PER_SEC};
use crate::report::analysis::CanaryBook;
use crate::report::record::{Outcome, RequestRecord};
use crate::report::run::{AutoscalerTick, EngineStats, Gauge, RunMeta, RunRecorder, RunReport};
use crate::scenario::spec::{Action, AnalysisRun, AppModel, Scenario};
/// The decider's tick (multiscaler.go:36).
const DECIDER_TICK: SimDuration = SimDuration::from_secs(2);
/// The queue-proxy's and activator's stat period, and the autoscaler's bucket (A.5.1).
const METRICS_TICK: SimDuration = SimDuration::from_secs(1);
/// The shortest deadline list whose finished head entries an arrival drops (`on_arrival`).
const DEADLINE_SLACK: usize = 64;

/// How one run is executed.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Replication index: a second stream family for the same seed.
    pub replication: u64,
    /// Keep a record of every request (`requests.csv`), spooled during the run in this
    /// directory (the output directory's staging area).
    pub request_log: Option<std::path::PathBuf>,
}

/// The result of a run, before wall-clock figures are added by the caller.
pub struct SimRun {
    recorder: RunRecorder,
    end: SimTime,
    in_flight: Vec<u64>,
    events: u64,
    /// The scenario's first timeline event, where the shift may start (`p99_shift_ms`).
    first_event: Option<SimTime>,
    /// Things the run could not do as the scenario asked (e.g. a rejected kn edit).
    pub warnings: Vec<String>,
}

impl SimRun {
    /// Finishes the report; `wall_s` is the caller's measurement of the run's wall time.
    pub fn into_report(self, wall_s: f64) -> RunReport {
        let engine = EngineStats {
            events: self.events,
            wall_s,
            sim_s: self.end.as_secs_f64(),
        };
        let mut report = self.recorder.finish(self.end, &self.in_flight, 0, engine);
        report.set_first_event(self.first_event);
        report
    }
}

/// Runs a scenario to completion.
pub fn simulate(scenario: &Scenario, opts: &RunOptions) -> SimRun {
    let mut world = World::new(scenario, opts);
    world.run();
    if let Some(a) = &world.analysis {
        world.recorder.analysis_summary(a.book.summary());
    }
    let in_flight = world.revs.iter().map(|r| u64::from(r.in_flight)).collect();
    SimRun {
        recorder: world.recorder,
        end: world.now,
        in_flight,
        events: world.events,
        first_event: scenario.timeline.first().map(|e| e.at),
        warnings: world.warnings,
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Timeline(u32),
    PodReady(u32),
    PodHealthy(u32),
    /// The request (handle) finishes its service at the pod it is executing on.
    ServiceDone(u64),
    PsWake {
        pod: u32,
        gen: u32,
    },
    Deadline {
        rev: u32,
    },
    /// Gateway replica `replica` applies generation `generation`.
    IngressProgrammed {
        generation: u64,
        replica: u16,
    },
    SksApply {
        rev: u32,
        serve: bool,
        gen: u32,
    },
    Reconcile,
    DeciderTick,
    MetricsTick,
    PodK8sReady(u32),
    PodLeavesEndpoints(u32),
    /// The pod's container crashes, if it is still due then (`Pod::crash_at`).
    PodCrash(u32),
    /// A crashed pod leaves the endpoints, unless its container restarted meanwhile.
    CrashedLeavesEndpoints {
        pod: u32,
        incarnation: u32,
    },
    /// The kubelet restarts the crashed container.
    PodRestart {
        pod: u32,
        incarnation: u32,
    },
    /// Flagger's analysis job ticks (measured by `report::analysis`).
    AnalysisTick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Free,
    ActivatorQueue,
    QpQueue,
    Executing,
    /// Turned away before reaching a breaker slot (503 at the QP, no endpoint): holds nothing
    /// at the pod, but a proxied request still holds its activator slot until it finishes.
    Rejected,
}

#[derive(Clone, Copy, Debug)]
struct Req {
    id: u64,
    gen: u32,
    arrived: SimTime,
    rev: u32,
    pod: u32,
    loc: Loc,
    default_group: bool,
    via_activator: bool,
    /// The activator (index into the revision's activators) a proxied request went through.
    activator: u16,
    /// The application answers it with an error when its service ends.
    app_error: bool,
    /// What it holds at the gateway replica (released in `finish`).
    ingress: Ticket,
}

enum Server {
    Breaker(Breaker),
    Ps { ps: PsServer, gen: u32 },
}

/// What the simulator adds to a pod of the roster (same id: one is pushed per `Roster::add_pod`).
struct Pod {
    /// The roster's `rev` of the pod (it never changes), at hand for the request path.
    rev: u32,
    server: Server,
    /// Its application accepts connections from then on (a failing revision's
    /// `ready_before_serving`).
    serving_from: SimTime,
    /// Its container is down (not started yet, or crashed and not ready again).
    down: bool,
    /// Its container's crashes, restarts and back-off (`crash_after`, `crash_loop`).
    life: ContainerLife,
}

struct Rev {
    name: String,
    cc: u32,
    /// Deadline offset from arrival: min(revision timeout, client timeout).
    deadline_after: SimDuration,
    /// The client gives up before the revision timeout.
    client_first: bool,
    app: AppModel,
    /// Its pods' lifecycle, changed by `World::roster`.
    pods: RevisionPods,
    /// The round-robin cursor over the endpoints.
    endpoint_rr: usize,
    /// One throttler per activator replica; the first `subset` are the revision's activator
    /// subset (the SKS endpoints), the others keep draining what they hold (A.3.3).
    activators: Vec<Throttler>,
    subset: usize,
    serve_applied: bool,
    in_flight: u32,
    qp_waiting: u32,
    deadlines: VecDeque<(SimTime, u64)>,
    /// The length of `deadlines` at which an arrival drops its finished head entries.
    deadline_prune_at: usize,
    deadline_event: Option<SimTime>,
    kpa: Kpa,
    /// The activators' stats for the revision (concurrency_reporter.go).
    reporter: ConcurrencyReporter,
    /// The revision's requests in the system, integrated since the last metrics tick.
    /// In request-nanoseconds: integer sums, so the per-request path has no float division.
    conc_area_ns: u128,
    conc_last_ns: i64,
    /// Requests routed to it since the last metrics tick (the RPS metric).
    requests_since_tick: u64,
    /// The gauges last reported: qp queue, activator queue, in flight, ready pods.
    reported: [u64; 4],
    /// The pod count last reported for the cost figures.
    reported_pods: u64,
    service_rng: StreamRng,
    /// The failure settings in force, and their streams (`Stream::FailureApp` and co.).
    failure: FailureSpec,
    /// `failure.is_healthy()`, kept with it: it is asked on every service start.
    failure_healthy: bool,
    failure_app_rng: StreamRng,
    failure_latency_rng: StreamRng,
    failure_pod_rng: StreamRng,
}

impl Rev {
    /// Adds `in_flight` requests held since the last call to the concurrency integral, up to
    /// `now` (the QP's and activator's time-weighted stats, request.go:96-104).
    #[inline(always)]
    fn integrate_concurrency(&mut self, now: SimTime, in_flight: u64) {
        let now_ns = now.as_nanos();
        self.conc_area_ns += u128::from(in_flight) * (now_ns - self.conc_last_ns).max(0) as u128;
        self.conc_last_ns = now_ns;
    }

    /// The in-flight gauge last reported (0 before the first report).
    fn in_flight_reported(&self) -> u64 {
        if self.reported[2] == u64::MAX {
            0
        } else {
            self.reported[2]
        }
    }
}

impl AsMut<RevisionPods> for Rev {
    fn as_mut(&mut self) -> &mut RevisionPods {
        &mut self.pods
    }
}

struct World<'a> {
    s: &'a Scenario,
    now: SimTime,
    events: u64,
    queue: EventQueue<Ev>,
    arrivals: ArrivalGen,
    /// The next arrival and its place in the order of events (`EventQueue::reserve`).
    next_arrival: Option<(Arrival, Key)>,
    arrival_rng: StreamRng,
    routing_rng: StreamRng,
    delay_rng: StreamRng,
    lb_rng: StreamRng,
    reqs: Vec<Req>,
    free: Vec<u32>,
    next_req_id: u64,
    /// The pods' lifecycle (`Rev::pods` holds each revision's part); `pods` holds the rest of
    /// each pod, by the same id.
    roster: Roster,
    pods: Vec<Pod>,
    revs: Vec<Rev>,
    rev_index: BTreeMap<String, u32>,
    // the route
    control: RouteControl,
    reconcile_at: Option<SimTime>,
    /// The data plane of each gateway replica (one for `ideal`): each applies a generation
    /// after its own programming delay; the KIngress is Ready when all have.
    planes: Vec<DataPlane>,
    /// The generation each replica applied last.
    replica_applied: Vec<u64>,
    /// Programming delays of replicas 1.. (replica 0 uses `delay_rng`).
    replica_delay_rngs: Vec<StreamRng>,
    /// The ingress profile's gateway replicas: breakers, LB, retries (`model::ingress`).
    gateway: Gateway,
    ingress_lb_rng: StreamRng,
    /// Kourier: a generation not translated because a split had no ready endpoint; translated
    /// again when endpoints appear (KR ingress_translator.go:225-231, the tracker re-reconciles).
    held_generation: Option<u64>,
    recorder: RunRecorder,
    warnings: Vec<String>,
    scratch: Vec<u64>,
    hard_end: SimTime,
    /// Flagger's analysis, which owns the Service's traffic, when the scenario has one.
    analysis: Option<Analysis<'a>>,
}

/// Flagger's analysis: its settings, the controller and what it measures (`report::analysis`).
struct Analysis<'a> {
    run: &'a AnalysisRun,
    controller: FlaggerController,
    book: CanaryBook,
}

#[inline]
fn handle(slot: u32, gen: u32) -> u64 {
    (u64::from(slot) << 32) | u64::from(gen)
}

#[inline]
fn slot_of(h: u64) -> usize {
    (h >> 32) as usize
}

impl<'a> World<'a> {
    fn new(s: &'a Scenario, opts: &RunOptions) -> Self {
        let seed = s.seed;
        let rep = opts.replication;
        let rev_index: BTreeMap<String, u32> = s
            .revisions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i as u32))
            .collect();
        let revs: Vec<Rev> = s
            .revisions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let client = s.client.timeout.unwrap_or(SimDuration::MAX);
                Rev {
                    name: r.name.clone(),
                    cc: r.container_concurrency,
                    deadline_after: r.request_deadline().min(client),
                    client_first: client < r.request_deadline(),
                    app: r.app,
                    pods: RevisionPods::new(seed, rep, i),
                    endpoint_rr: 0,
                    activators: (0..s.activator.replicas.max(1))
                        .map(|_| Throttler::new(r.container_concurrency, s.activator.lb_policy))
                        .collect(),
                    subset: 1,
                    serve_applied: false,
                    in_flight: 0,
                    qp_waiting: 0,
                    deadlines: VecDeque::new(),
                    deadline_prune_at: DEADLINE_SLACK,
                    deadline_event: None,
                    kpa: Kpa::new(&s.autoscaler.config, r),
                    reporter: ConcurrencyReporter::new(),
                    conc_area_ns: 0,
                    conc_last_ns: 0,
                    requests_since_tick: 0,
                    reported: [u64::MAX; 4],
                    reported_pods: 0,
                    service_rng: stream(seed, rep, Stream::ServiceTime, i as u64),
                    failure: r.failure.clone(),
                    failure_healthy: r.failure.is_healthy(),
                    failure_app_rng: stream(seed, rep, Stream::FailureApp, i as u64),
                    failure_latency_rng: stream(seed, rep, Stream::FailureLatency, i as u64),
                    failure_pod_rng: stream(seed, rep, Stream::FailurePod, i as u64),
                }
            })
            .collect();
        let meta = RunMeta {
            scenario: s.name.clone(),
            seed,
            mode: "sim".to_string(),
        };
        let recorder = RunRecorder::new(
            meta,
            s.revisions.iter().map(|r| r.name.clone()).collect(),
            s.metrics.window,
            opts.request_log.as_deref(),
        );
        let end = SimTime::ZERO + s.duration;
        World {
            s,
            now: SimTime::ZERO,
            events: 0,
            queue: EventQueue::new(),
            arrivals: ArrivalGen::new(&s.arrivals, end),
            next_arrival: None,
            arrival_rng: stream(seed, rep, Stream::Arrivals, 0),
            routing_rng: stream(seed, rep, Stream::Routing, 0),
            delay_rng: stream(seed, rep, Stream::IngressDelay, 0),
            lb_rng: stream(seed, rep, Stream::ActivatorLb, 0),
            reqs: Vec::with_capacity(4096),
            free: Vec::new(),
            next_req_id: 0,
            roster: Roster::new(),
            pods: Vec::new(),
            revs,
            rev_index,
            control: RouteControl::new(&s.service, &s.traffic),
            reconcile_at: None,
            planes: vec![DataPlane::default(); s.ingress.replicas.max(1) as usize],
            replica_applied: vec![0; s.ingress.replicas.max(1) as usize],
            replica_delay_rngs: (1..u64::from(s.ingress.replicas.max(1)))
                .map(|r| stream(seed, rep, Stream::IngressReplicaDelay, r))
                .collect(),
            gateway: Gateway::new(&s.ingress, s.revisions.len()),
            ingress_lb_rng: stream(seed, rep, Stream::IngressLb, 0),
            held_generation: None,
            recorder,
            warnings: Vec::new(),
            scratch: Vec::new(),
            hard_end: end + s.drain,
            analysis: s.analysis.as_ref().map(|run| Analysis {
                run,
                controller: FlaggerController::new(run.settings.clone()),
                book: CanaryBook::new(
                    &run.settings,
                    s.revisions.iter().map(|r| r.name.clone()).collect(),
                ),
            }),
        }
    }

    // ---------------------------------------------------------------- the loop

    fn run(&mut self) {
        self.start();
        self.pull_arrival();
        loop {
            let next_event = self.queue.peek();
            let take_arrival = match (&self.next_arrival, next_event) {
                (Some((_, key)), Some(top)) => *key < top,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_arrival {
                let (arrival, _) = self.next_arrival.take().expect("checked above");
                self.now = arrival.at;
                self.events += 1;
                self.on_arrival(arrival);
                self.pull_arrival();
            } else {
                if self.next_arrival.is_none()
                    && self.total_in_flight() == 0
                    && self.now >= SimTime::ZERO + self.s.duration
                {
                    break;
                }
                let (at, ev) = self.queue.pop().expect("peeked above");
                if at > self.hard_end {
                    break;
                }
                self.now = at;
                self.events += 1;
                self.on_event(ev);
            }
        }
        let end = SimTime::ZERO + self.s.duration;
        if self.now < end {
            self.now = end;
        }
    }

    fn total_in_flight(&self) -> u64 {
        self.revs.iter().map(|r| u64::from(r.in_flight)).sum()
    }

    fn pull_arrival(&mut self) {
        self.next_arrival = self
            .arrivals
            .next(&mut self.arrival_rng)
            .map(|a| (a, self.queue.reserve(a.at)));
    }

    fn start(&mut self) {
        // Revisions that exist at t = 0 run their pods already; they are ready, healthy for the
        // activator and in the SKS mode their excess burst capacity gives.
        for i in 0..self.revs.len() {
            if self.s.revisions[i].created_at.is_none() {
                self.create_revision(i as u32, true);
            }
        }
        if let Some(a) = &self.analysis {
            self.queue.schedule(a.run.start, Ev::AnalysisTick);
        }
        for (i, ev) in self.s.timeline.iter().enumerate() {
            self.queue.schedule(ev.at, Ev::Timeline(i as u32));
        }
        // The SKS mode a running revision is in.
        for i in 0..self.revs.len() {
            if self.revs[i].pods.created() {
                let r = &mut self.revs[i];
                let ready = r.pods.ready_pods();
                r.serve_applied = r.kpa.running_at_start(ready);
                // Running revisions start at the scale they run at (not 0 until the first tick).
                self.recorder
                    .gauge(SimTime::ZERO, i, Gauge::DesiredPods, u64::from(ready));
            }
        }
        // The KIngress is created with the desired split (no gradual rollout at creation,
        // RR:59-72) and is programmed before the run starts.
        if let Some(gen) = self.reconcile() {
            if self.held_generation.is_none() {
                self.apply_programming(gen, None);
                self.reconcile();
            }
        }
        self.queue
            .schedule(SimTime::ZERO + DECIDER_TICK, Ev::DeciderTick);
        self.queue
            .schedule(SimTime::ZERO + METRICS_TICK, Ev::MetricsTick);
    }

    fn on_event(&mut self, ev: Ev) {
        match ev {
            Ev::Timeline(i) => self.on_timeline(i as usize),
            Ev::AnalysisTick => self.on_analysis_tick(),
            Ev::PodReady(pod) => self.on_pod_ready(pod),
            Ev::PodHealthy(pod) => self.on_pod_healthy(pod),
            Ev::ServiceDone(req) => self.on_service_done(req),
            Ev::PsWake { pod, gen } => self.on_ps_wake(pod, gen),
            Ev::Deadline { rev } => self.on_deadline(rev),
            Ev::IngressProgrammed {
                generation,
                replica,
            } => {
                if self.control.is_new(generation)
                    && self.replica_applied[replica as usize] < generation
                    && self.apply_programming(generation, Some(replica as usize))
                {
                    self.reconcile();
                }
            }
            Ev::SksApply { rev, serve, gen } => {
                let r = &mut self.revs[rev as usize];
                if r.kpa.mode_applied(gen, serve, r.serve_applied, self.now) {
                    r.serve_applied = serve;
                }
                self.retry_held_programming();
            }
            Ev::PodK8sReady(pod) => self.on_pod_k8s_ready(pod),
            Ev::PodLeavesEndpoints(pod) => self.on_pod_leaves_endpoints(pod),
            Ev::PodCrash(pod) => {
                if self.pods[pod as usize].life.crash_due(self.now) {
                    self.crash(pod);
                }
            }
            Ev::CrashedLeavesEndpoints { pod, incarnation } => {
                if self.pods[pod as usize].life.is_current(incarnation) {
                    self.on_pod_leaves_endpoints(pod);
                }
            }
            Ev::PodRestart { pod, incarnation } => {
                if self.pods[pod as usize].life.is_current(incarnation) {
                    self.restart(pod);
                }
            }
            Ev::MetricsTick => {
                self.on_metrics_tick();
                if self.now < self.hard_end {
                    self.queue
                        .schedule(self.now + METRICS_TICK, Ev::MetricsTick);
                }
            }
            Ev::Reconcile => {
                if self.reconcile_at == Some(self.now) {
                    self.reconcile_at = None;
                }
                self.reconcile();
            }
            Ev::DeciderTick => {
                self.on_decider_tick();
                if self.now < self.hard_end {
                    self.queue
                        .schedule(self.now + DECIDER_TICK, Ev::DeciderTick);
                }
            }
        }
    }

    // ---------------------------------------------------------------- requests

    fn on_arrival(&mut self, a: Arrival) {
        self.recorder.arrived(self.now);
        let id = self.next_req_id;
        self.next_req_id += 1;
        let replica = self.gateway.replica_of(a.client);
        let plane = &mut self.planes[replica as usize];
        let routed = plane
            .group_of(a.address)
            .and_then(|g| plane.pick(g, a.client, &mut self.routing_rng));
        let Some(routed) = routed else {
            // No rule for the host: the ingress answers 404.
            self.recorder.finished(&RequestRecord {
                id,
                arrived: self.now,
                finished: self.now,
                revision: None,
                default_group: false,
                via_activator: false,
                outcome: Outcome::Error,
            });
            return;
        };
        let rev = routed.revision;
        let default_group = routed.default_group;
        let Some(ticket) = self.gateway.try_admit(replica, rev) else {
            // The replica's circuit breaker for the revision's cluster is full: 503 UO, never
            // reaching an activator or a queue-proxy (model::ingress).
            self.recorder.routed(self.now, rev as usize, default_group);
            self.recorder.finished(&RequestRecord {
                id,
                arrived: self.now,
                finished: self.now,
                revision: Some(rev as usize),
                default_group,
                via_activator: false,
                outcome: Outcome::IngressOverflow,
            });
            return;
        };
        self.recorder.routed(self.now, rev as usize, default_group);
        self.revs[rev as usize].requests_since_tick += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.reqs.push(Req {
                    id: 0,
                    gen: 0,
                    arrived: SimTime::ZERO,
                    rev: 0,
                    pod: 0,
                    loc: Loc::Free,
                    default_group: false,
                    via_activator: false,
                    activator: 0,
                    app_error: false,
                    ingress: Ticket::default(),
                });
                (self.reqs.len() - 1) as u32
            }
        };
        let r = &mut self.reqs[slot as usize];
        r.id = id;
        r.arrived = self.now;
        r.rev = rev;
        r.default_group = default_group;
        r.ingress = ticket;
        let h = handle(slot, r.gen);
        let revr = &mut self.revs[rev as usize];
        revr.in_flight += 1;
        let deadline = self.now + revr.deadline_after;
        // Drop finished heads so the deadline list stays small, once it has doubled since the
        // last time: looking at the head on every arrival would cost a request lookup each
        // time (the oldest request in flight usually keeps its place for many arrivals), and
        // `on_deadline` skips finished entries anyway. The list stays within twice what it
        // must hold (from its oldest request in flight on).
        if revr.deadlines.len() >= revr.deadline_prune_at {
            while let Some(&(_, head)) = revr.deadlines.front() {
                if self.reqs[slot_of(head)].gen == head as u32
                    && self.reqs[slot_of(head)].loc != Loc::Free
                {
                    break;
                }
                revr.deadlines.pop_front();
            }
            revr.deadline_prune_at = (2 * revr.deadlines.len()).max(DEADLINE_SLACK);
        }
        revr.deadlines.push_back((deadline, h));
        if revr.deadline_event.is_none() {
            revr.deadline_event = Some(deadline);
            self.queue.schedule(deadline, Ev::Deadline { rev });
        }
        if self.revs[rev as usize].serve_applied {
            self.reqs[slot as usize].via_activator = false;
            let rr = &mut self.revs[rev as usize];
            let endpoints = rr.pods.endpoints();
            if endpoints.is_empty() {
                // Serve mode with no endpoint left: the ingress has no healthy upstream.
                self.reqs[slot as usize].loc = Loc::Rejected;
                self.finish(h, Outcome::Error);
                return;
            }
            // The profile's LB at the request's gateway replica; `ideal`: one cursor.
            let ticket = &mut self.reqs[slot as usize].ingress;
            let chosen = self.gateway.pick_host(
                ticket,
                rev,
                endpoints.len(),
                |i| Host::Pod(endpoints[i]),
                &mut self.ingress_lb_rng,
            );
            let pod = match chosen {
                Some(i) => endpoints[i],
                None => {
                    let pod = endpoints[rr.endpoint_rr % endpoints.len()];
                    rr.endpoint_rr = rr.endpoint_rr.wrapping_add(1);
                    pod
                }
            };
            self.qp_admit(pod, h);
            self.touch_direct(rev);
        } else {
            let req = &mut self.reqs[slot as usize];
            req.via_activator = true;
            req.loc = Loc::ActivatorQueue;
            // The ingress balances over the revision's activator subset; each has its own FIFO.
            let subset = self.revs[rev as usize].subset.max(1);
            let chosen = self.gateway.pick_host(
                &mut self.reqs[slot as usize].ingress,
                rev,
                subset,
                |i| Host::Activator(i as u16),
                &mut self.ingress_lb_rng,
            );
            let a = match chosen {
                Some(a) => a,
                None if subset == 1 => 0,
                None => self.lb_rng.random_range(0..subset),
            };
            self.reqs[slot as usize].activator = a as u16;
            self.revs[rev as usize].activators[a].enqueue(h);
            self.dispatch(rev, a);
            // The activator's immediate stat for a revision it had no entry for is recorded at
            // once and wakes a revision at zero (concurrency_reporter.go:111-154,
            // multiscaler.go:352-364).
            let r = &mut self.revs[rev as usize];
            if let Some(stat) = r.reporter.request_in(self.now) {
                if r.kpa.record_activator(self.now, stat) {
                    self.autoscale(rev);
                }
            }
            self.touch(rev);
        }
    }

    /// Sends an activator's waiting requests to pods while its capacity allows.
    fn dispatch(&mut self, rev: u32, activator: usize) {
        loop {
            let reqs = &self.reqs;
            let alive = |h: u64| {
                let r = &reqs[slot_of(h)];
                r.gen == h as u32 && r.loc == Loc::ActivatorQueue
            };
            let Some((h, pod)) =
                self.revs[rev as usize].activators[activator].dispatch(&mut self.lb_rng, alive)
            else {
                break;
            };
            self.qp_admit(pod, h);
        }
    }

    fn dispatch_all(&mut self, rev: u32) {
        for a in 0..self.revs[rev as usize].activators.len() {
            self.dispatch(rev, a);
        }
    }

    /// Recomputes the activator subset and each activator's pod slice (`Kpa::activator_slices`).
    fn reslice(&mut self, rev: u32) {
        let r = &mut self.revs[rev as usize];
        let ready = r.pods.ready_pods();
        let (subset, slices) =
            r.kpa
                .activator_slices(r.pods.healthy(), ready, r.activators.len() as u32);
        r.subset = subset;
        for (throttler, slice) in r.activators.iter_mut().zip(&slices) {
            throttler.set_pods(slice);
        }
    }

    /// A request reaches a pod's queue-proxy.
    fn qp_admit(&mut self, pod: u32, h: u64) {
        let slot = slot_of(h);
        self.reqs[slot].pod = pod;
        let p = &mut self.pods[pod as usize];
        if p.down || self.now < p.serving_from {
            // Nothing listens on the user port: the queue-proxy's dial is refused and its
            // reverse proxy answers 502 at once (`model::failure`).
            self.reqs[slot].loc = Loc::Rejected;
            self.finish(h, Outcome::BadGateway);
            return;
        }
        match &mut p.server {
            Server::Breaker(b) => match b.admit(h) {
                Admission::Start => self.start_service(pod, h),
                Admission::Queued => {
                    self.reqs[slot].loc = Loc::QpQueue;
                    self.revs[p.rev as usize].qp_waiting += 1;
                }
                Admission::Rejected => {
                    self.reqs[slot].loc = Loc::Rejected;
                    self.finish(h, Outcome::RejectedQp);
                }
            },
            Server::Ps { .. } => self.start_service(pod, h),
        }
    }

    fn start_service(&mut self, pod: u32, h: u64) {
        let slot = slot_of(h);
        self.reqs[slot].loc = Loc::Executing;
        let rev = self.pods[pod as usize].rev as usize;
        let r = &mut self.revs[rev];
        let mut work = self.s.revisions[rev]
            .service_time
            .sample(&mut r.service_rng);
        if !r.failure_healthy {
            work = r.failure.service_time(work, &mut r.failure_latency_rng);
            self.reqs[slot].app_error = matches!(
                r.failure.answer(&mut r.failure_app_rng),
                AppAnswer::Error(_)
            );
        }
        match &mut self.pods[pod as usize].server {
            Server::Breaker(_) => {
                self.queue.schedule(self.now + work, Ev::ServiceDone(h));
            }
            Server::Ps { ps, .. } => {
                ps.start(self.now.as_secs_f64(), h, work.as_secs_f64());
                self.reschedule_ps(pod);
            }
        }
    }

    /// A processor-sharing pod's set of jobs changed: its next completion moves, so the
    /// pending wake-up is superseded (its generation goes stale) and a new one is scheduled.
    fn reschedule_ps(&mut self, pod: u32) {
        if let Server::Ps { ps, gen } = &mut self.pods[pod as usize].server {
            *gen += 1;
            let g = *gen;
            if let Some(t) = ps.next_completion_s() {
                self.queue.schedule(
                    SimTime::from_secs_f64(t).max(self.now),
                    Ev::PsWake { pod, gen: g },
                );
            }
        }
    }

    fn on_service_done(&mut self, h: u64) {
        let r = &self.reqs[slot_of(h)];
        if r.gen != h as u32 || r.loc != Loc::Executing {
            return; // timed out or cancelled earlier
        }
        self.finish(h, self.answer_of(h));
    }

    /// How a request whose service ended finishes: served, or the application's error.
    fn answer_of(&self, h: u64) -> Outcome {
        if self.reqs[slot_of(h)].app_error {
            Outcome::AppError
        } else {
            Outcome::Served
        }
    }

    fn on_ps_wake(&mut self, pod: u32, gen: u32) {
        let now_s = self.now.as_secs_f64();
        let mut done = std::mem::take(&mut self.scratch);
        done.clear();
        match &mut self.pods[pod as usize].server {
            Server::Ps { ps, gen: g } if *g == gen => ps.take_finished(now_s, &mut done),
            _ => return,
        }
        for &h in &done {
            // The job already left the server; finish without removing it again.
            self.reqs[slot_of(h)].loc = Loc::Executing;
            self.finish(h, self.answer_of(h));
        }
        self.scratch = done;
        self.reschedule_ps(pod);
    }

    /// Ends a request with `outcome`, wherever it is, and frees what it held.
    fn finish(&mut self, h: u64, outcome: Outcome) {
        let slot = slot_of(h);
        // Only the fields used below: copying the whole slot cost more than the rest of this.
        let Req {
            id,
            arrived,
            rev,
            pod,
            loc,
            default_group,
            via_activator,
            activator,
            ingress,
            ..
        } = self.reqs[slot];
        match loc {
            Loc::Free => return,
            Loc::ActivatorQueue => {
                if via_activator {
                    self.revs[rev as usize].activators[activator as usize].forget_waiting();
                }
            }
            Loc::QpQueue => {
                if let Server::Breaker(b) = &mut self.pods[pod as usize].server {
                    b.forget_waiting();
                }
                self.revs[rev as usize].qp_waiting -= 1;
            }
            Loc::Executing => self.release_pod_slot(
                pod,
                h,
                matches!(outcome, Outcome::Served | Outcome::AppError),
            ),
            Loc::Rejected => {}
        }
        if via_activator && loc != Loc::ActivatorQueue {
            self.revs[rev as usize].activators[activator as usize].release(pod);
        }
        let req = &mut self.reqs[slot];
        req.loc = Loc::Free;
        req.app_error = false;
        req.gen = req.gen.wrapping_add(1);
        self.free.push(slot as u32);
        self.revs[rev as usize].in_flight -= 1;
        // Every ending passes here once (a freed slot returns above): the gateway releases.
        self.gateway.release(ingress, rev);
        debug_assert!(
            self.gateway.is_ideal()
                || self.gateway.outstanding_total(rev)
                    == u64::from(self.revs[rev as usize].in_flight),
            "the gateway holds exactly the revision's requests in flight"
        );
        if via_activator {
            self.revs[rev as usize].reporter.request_out(self.now);
        }
        if let Some(a) = &mut self.analysis {
            a.book.finished(rev, self.now, arrived, outcome);
        }
        self.recorder.finished(&RequestRecord {
            id,
            arrived,
            finished: self.now,
            revision: Some(rev as usize),
            default_group,
            via_activator,
            outcome,
        });
        if via_activator {
            self.dispatch(rev, activator as usize);
            self.touch(rev);
        } else {
            self.touch_direct(rev);
        }
    }

    /// An executing request leaves its pod: the breaker slot goes to the next waiter.
    fn release_pod_slot(&mut self, pod: u32, h: u64, served: bool) {
        let p = &mut self.pods[pod as usize];
        let rev = p.rev;
        match &mut p.server {
            Server::Breaker(b) => {
                let reqs = &self.reqs;
                let next = b.release(|w| {
                    let r = &reqs[slot_of(w)];
                    r.gen == w as u32 && r.loc == Loc::QpQueue
                });
                if let Some(next) = next {
                    self.revs[rev as usize].qp_waiting -= 1;
                    self.start_service(pod, next);
                }
            }
            Server::Ps { ps, .. } => {
                if !served && ps.remove(self.now.as_secs_f64(), h) {
                    self.reschedule_ps(pod);
                }
            }
        }
    }

    fn on_deadline(&mut self, rev: u32) {
        let r = &mut self.revs[rev as usize];
        r.deadline_event = None;
        loop {
            let r = &mut self.revs[rev as usize];
            let Some(&(deadline, h)) = r.deadlines.front() else {
                break;
            };
            let req = &self.reqs[slot_of(h)];
            let alive = req.gen == h as u32 && req.loc != Loc::Free;
            if alive && deadline > self.now {
                r.deadline_event = Some(deadline);
                self.queue.schedule(deadline, Ev::Deadline { rev });
                break;
            }
            r.deadlines.pop_front();
            if alive {
                let outcome = if r.client_first {
                    Outcome::ClientCancelled
                } else if req.via_activator {
                    Outcome::ExpiredActivator
                } else {
                    Outcome::ExpiredQp
                };
                self.finish(h, outcome);
            }
        }
    }

    /// Reports the revision's gauges that changed, and feeds its concurrency window.
    fn touch(&mut self, rev: u32) {
        let r = &self.revs[rev as usize];
        let activator_waiting = r
            .activators
            .iter()
            .map(|a| u64::from(a.waiting_len()))
            .sum();
        self.touch_gauges(rev, activator_waiting);
    }

    /// `touch` after a change that left the revision's activators and pods alone (a request
    /// that went straight to a pod arrived or ended). Their gauges are what was last reported,
    /// so only the queue-proxies' queue and the requests in flight can have moved: those two
    /// are reported here, inline, as `touch_gauges` would (this runs twice per request). When
    /// something else differs (nothing reported yet, or pods that changed since), the full
    /// `touch` runs instead.
    #[inline]
    fn touch_direct(&mut self, rev: u32) {
        let now = self.now;
        let r = &mut self.revs[rev as usize];
        if r.reported[1] == u64::MAX
            || r.reported[2] == u64::MAX
            || u64::from(r.pods.ready_pods()) != r.reported[3]
            || u64::from(r.pods.live_count()) != r.reported_pods
        {
            self.touch(rev);
            return;
        }
        let qp_waiting = u64::from(r.qp_waiting);
        if qp_waiting != r.reported[0] {
            r.reported[0] = qp_waiting;
            self.recorder
                .gauge(now, rev as usize, Gauge::QpQueue, qp_waiting);
        }
        let in_flight = u64::from(r.in_flight);
        if in_flight != r.reported[2] {
            // The last value is a count here (`touch_direct` runs `touch` until every gauge
            // was reported once), so it needs no placeholder check.
            r.integrate_concurrency(now, u64::from(r.reported[2] as u32));
            r.reported[2] = in_flight;
            self.recorder
                .gauge(now, rev as usize, Gauge::InFlight, in_flight);
        }
    }

    fn touch_gauges(&mut self, rev: u32, activator_waiting: u64) {
        let r = &mut self.revs[rev as usize];
        let values = [
            u64::from(r.qp_waiting),
            activator_waiting,
            u64::from(r.in_flight),
            u64::from(r.pods.ready_pods()),
        ];
        if values[2] != r.reported[2] {
            // Integrate the previous concurrency up to now (the QP's and activator's
            // time-weighted stats, request.go:96-104).
            r.integrate_concurrency(self.now, r.in_flight_reported());
        }
        for (i, gauge) in [
            Gauge::QpQueue,
            Gauge::ActivatorQueue,
            Gauge::InFlight,
            Gauge::ReadyPods,
        ]
        .into_iter()
        .enumerate()
        {
            if values[i] != r.reported[i] {
                r.reported[i] = values[i];
                self.recorder
                    .gauge(self.now, rev as usize, gauge, values[i]);
            }
        }
        let pods = u64::from(r.pods.live_count());
        if pods != r.reported_pods {
            r.reported_pods = pods;
            self.recorder.pods(self.now, rev as usize, pods);
        }
    }

    // ---------------------------------------------------------------- pods and revisions

    fn create_revision(&mut self, rev: u32, at_start: bool) {
        let r = &mut self.revs[rev as usize];
        if !self.roster.create(&mut r.pods) {
            return;
        }
        if let Some(a) = &mut self.analysis {
            a.book.created(rev);
        }
        let pods = r.kpa.created(
            self.now,
            self.s.revisions[rev as usize].pods,
            at_start,
            self.s.autoscaler.enabled,
        );
        r.conc_last_ns = self.now.as_nanos();
        self.set_pods(rev, pods, at_start);
        if at_start && pods > 0 {
            self.roster.revision_ready(&mut self.revs, rev);
        }
    }

    fn new_server(&self, rev: u32) -> Server {
        let r = &self.revs[rev as usize];
        match (r.cc, r.app) {
            (cc, _) if cc > 0 => Server::Breaker(Breaker::queue_proxy(cc)),
            (_, AppModel::Workers(n)) => Server::Breaker(Breaker::workers(n)),
            (_, AppModel::ProcessorSharing { cores }) => Server::Ps {
                ps: PsServer::new(cores),
                gen: 0,
            },
        }
    }

    /// Starts or stops pods until the revision has `target` live ones. With `at_start` (t = 0)
    /// each pod is ready as soon as it is added, before the next one is: its readiness (the
    /// revision's threshold, the activator slices) sees only the pods added so far.
    fn set_pods(&mut self, rev: u32, target: u32, at_start: bool) {
        let live = self.roster.live_pods(&self.revs[rev as usize].pods);
        if (live.len() as u32) < target {
            for _ in live.len() as u32..target {
                let id = self.roster.add_pod(&mut self.revs, rev);
                let server = self.new_server(rev);
                self.pods.push(Pod {
                    rev,
                    server,
                    serving_from: SimTime::ZERO,
                    down: true,
                    life: ContainerLife::new(self.now),
                });
                debug_assert_eq!(self.pods.len(), id as usize + 1, "pods follow the roster");
                if at_start {
                    self.on_pod_ready(id);
                } else {
                    let delay = self.revs[rev as usize]
                        .pods
                        .sample(&self.s.revisions[rev as usize].startup);
                    self.queue.schedule(self.now + delay, Ev::PodReady(id));
                }
            }
        } else {
            for pod in scale_down_victims(&live, target) {
                self.terminate(pod);
            }
        }
        self.touch(rev);
    }

    /// Scale-down: the pod is terminating at once (no longer counted as ready or live), but it
    /// leaves the endpoints the ingress and the activator use only after the endpoints
    /// propagation delay, receiving traffic meanwhile; it then serves what it holds (A.6.3).
    /// Queued requests are never moved to another pod.
    fn terminate(&mut self, pod: u32) {
        let removal = &self.s.endpoint_removal_delay;
        if let Some(delay) = self
            .roster
            .terminate_with_removal(&mut self.revs, pod, removal)
        {
            self.queue
                .schedule(self.now + delay, Ev::PodLeavesEndpoints(pod));
        }
        self.touch(self.roster.pod(pod).rev);
    }

    fn on_pod_leaves_endpoints(&mut self, pod: u32) {
        let rev = self.roster.leaves_endpoints(&mut self.revs, pod);
        self.reslice(rev);
        self.touch(rev);
    }

    /// The app in the pod is ready (its readiness probe passes).
    fn on_pod_ready(&mut self, pod: u32) {
        let rev = self.pods[pod as usize].rev as usize;
        if self.now > SimTime::ZERO
            && self.revs[rev].failure.crash_loop
            && self.roster.pod(pod).state == crate::model::roster::PodState::Starting
        {
            // A crash loop: the container exits as its start-up completes, never Ready.
            self.crash(pod);
            return;
        }
        let Some(rev) = self.roster.app_ready(pod) else {
            return;
        };
        self.container_serves(pod);
        if self.now == SimTime::ZERO {
            // Pods running before the run starts are ready everywhere.
            self.on_pod_healthy(pod);
            self.on_pod_k8s_ready(pod);
            return;
        }
        // The activator sees the pod at its next probe tick (revision_backends.go:90-96), with
        // probe optimisation before Kubernetes does (A.3.4).
        let tick = next_probe_tick(self.now, self.s.activator.probe_period);
        self.queue.schedule(tick, Ev::PodHealthy(pod));
        // Kubernetes marks it Ready after the kubelet's probe phase (A.6.1).
        let delay = self.revs[rev as usize]
            .pods
            .sample(&self.s.kubelet_ready_delay);
        self.queue.schedule(self.now + delay, Ev::PodK8sReady(pod));
        self.touch(rev);
    }

    /// The pod's container passed readiness now: its application accepts connections from
    /// `serving_from` (later with `ready_before_serving`; pods running at t = 0 serve already),
    /// and under `crash_after` its crash is drawn.
    fn container_serves(&mut self, pod: u32) {
        let now = self.now;
        let rev = self.pods[pod as usize].rev as usize;
        let r = &mut self.revs[rev];
        let serving_from = if now == SimTime::ZERO {
            now
        } else {
            r.failure.serving_from(now)
        };
        let crash_at = r.failure.crash_at(serving_from, &mut r.failure_pod_rng);
        let p = &mut self.pods[pod as usize];
        p.down = false;
        p.serving_from = serving_from;
        if let Some(at) = p.life.arm(crash_at) {
            self.queue.schedule(at, Ev::PodCrash(pod));
        }
    }

    /// The pod's container crashes: the requests its queue-proxy holds (executing and queued)
    /// get 502, a Ready pod drains out of the endpoints after the removal delay, and the kubelet
    /// restarts the container after its back-off.
    fn crash(&mut self, pod: u32) {
        let Some(was_ready) = self.roster.crash(&mut self.revs, pod) else {
            return;
        };
        let rev = self.pods[pod as usize].rev;
        self.recorder.pod_crashed(self.now, rev as usize);
        // What the pod holds, found by scanning the requests (crashes are rare).
        let mut held = std::mem::take(&mut self.scratch);
        held.clear();
        for (slot, req) in self.reqs.iter_mut().enumerate() {
            if req.pod == pod && req.rev == rev && matches!(req.loc, Loc::Executing | Loc::QpQueue)
            {
                if req.loc == Loc::QpQueue {
                    self.revs[rev as usize].qp_waiting -= 1;
                }
                // Its server goes with the container: nothing is released there.
                req.loc = Loc::Rejected;
                held.push(handle(slot as u32, req.gen));
            }
        }
        let mut server = self.new_server(rev);
        let p = &mut self.pods[pod as usize];
        if let (Server::Ps { gen: old, .. }, Server::Ps { gen, .. }) = (&p.server, &mut server) {
            // Pending wake-ups of the old server must not match the new one.
            *gen = old.wrapping_add(1);
        }
        p.server = server;
        p.down = true;
        let (incarnation, delay) = p.life.crashed(self.now);
        for &h in &held {
            self.finish(h, Outcome::BadGateway);
        }
        self.scratch = held;
        if was_ready {
            let removal = self.revs[rev as usize]
                .pods
                .sample(&self.s.endpoint_removal_delay);
            self.queue.schedule(
                self.now + removal,
                Ev::CrashedLeavesEndpoints { pod, incarnation },
            );
        }
        self.queue
            .schedule(self.now + delay, Ev::PodRestart { pod, incarnation });
        self.touch(rev);
    }

    /// The kubelet restarts the crashed container: the pod starts up again.
    fn restart(&mut self, pod: u32) {
        let Some(rev) = self.roster.restart(&mut self.revs, pod) else {
            return;
        };
        self.pods[pod as usize].life.restarted(self.now);
        self.recorder.pod_restarted(self.now, rev as usize);
        self.reslice(rev);
        let delay = self.revs[rev as usize]
            .pods
            .sample(&self.s.revisions[rev as usize].startup);
        self.queue.schedule(self.now + delay, Ev::PodReady(pod));
        self.touch(rev);
    }

    /// Kubernetes marks the pod Ready: an endpoint for Serve mode, counted by the autoscaler.
    fn on_pod_k8s_ready(&mut self, pod: u32) {
        let threshold = |r: &Rev, pods| r.kpa.ready_threshold(pods);
        let Some((rev, became_ready)) = self.roster.k8s_ready(&mut self.revs, pod, threshold)
        else {
            return;
        };
        if became_ready && self.now > SimTime::ZERO {
            self.reconcile();
        }
        self.retry_held_programming();
        self.touch(rev);
    }

    fn on_pod_healthy(&mut self, pod: u32) {
        let Some(rev) = self.roster.healthy(&mut self.revs, pod) else {
            return;
        };
        self.reslice(rev);
        self.dispatch_all(rev);
        self.touch(rev);
    }

    /// Every second: the scraper's stat and the activators' report for each revision go into
    /// its decider (A.5.2). The scraper sees the requests that went straight to the pods (the
    /// queue-proxies' concurrency net of proxied requests), and only while a pod is Ready
    /// (`Kpa::record_scrape`); the activators report theirs, less the first request they
    /// reported at once (`ConcurrencyReporter::report`). A report may poke the decider.
    fn on_metrics_tick(&mut self) {
        let now = self.now;
        let mut poked = Vec::new();
        for (i, r) in self
            .revs
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| r.pods.created())
        {
            r.integrate_concurrency(now, r.in_flight_reported());
            let report = r.reporter.report(now);
            let area_s = r.conc_area_ns as f64 / NANOS_PER_SEC as f64;
            let direct = (area_s - report.request_seconds).max(0.0);
            let average = direct / METRICS_TICK.as_secs_f64();
            r.conc_area_ns = 0;
            let direct_requests = r.requests_since_tick.saturating_sub(report.requests);
            r.requests_since_tick = 0;
            let ready = r.pods.ready_pods();
            r.kpa
                .record_scrape(now, ready, average, direct_requests as f64);
            if let Some(stat) = report.sent {
                if r.kpa.record_activator(now, stat) {
                    poked.push(i as u32);
                }
            }
        }
        for rev in poked {
            self.autoscale(rev);
        }
    }

    fn on_decider_tick(&mut self) {
        for rev in 0..self.revs.len() as u32 {
            if self.revs[rev as usize].pods.created() {
                self.autoscale(rev);
                // The subset follows the ready pods (numActivators).
                if self.revs[rev as usize].activators.len() > 1 {
                    self.reslice(rev);
                    self.dispatch_all(rev);
                }
            }
        }
    }

    /// One decider tick and KPA reconcile for a revision (A.5.5, A.5.6, A.4): the desired scale
    /// (applied when autoscaling is on), the SKS mode (applied after the ingress delay).
    fn autoscale(&mut self, rev: u32) {
        let now = self.now;
        let live = self.roster.live_pods(&self.revs[rev as usize].pods).len() as u32;
        let r = &mut self.revs[rev as usize];
        let ready = r.pods.ready_pods();
        let tick = r.kpa.tick(now, ready, live, self.s.autoscaler.enabled);
        if let Some(gen) = tick.mode_change {
            let delay = self.s.ingress.programming_delay.sample(&mut self.delay_rng);
            self.queue.schedule(
                now + delay,
                Ev::SksApply {
                    rev,
                    serve: tick.serve,
                    gen,
                },
            );
        }
        self.recorder.autoscaler_tick(
            now,
            rev as usize,
            &AutoscalerTick::new(&tick.result, ready, tick.serve),
        );
        let replicas = tick.replicas;
        if let Some(n) = replicas {
            if n != live {
                if live == 0 && ready == 0 && n > 0 {
                    self.recorder.cold_start(now, rev as usize);
                }
                self.set_pods(rev, n, false);
            }
        }
        let desired = u64::from(replicas.unwrap_or(live));
        self.recorder
            .gauge(now, rev as usize, Gauge::DesiredPods, desired);
    }

    // ---------------------------------------------------------------- the route

    /// The route reconciler (RR:331-383) over the created revisions; returns a new generation
    /// the ingress is asked to program (also scheduled after the programming delay).
    fn reconcile(&mut self) -> Option<u64> {
        let latest = self
            .roster
            .latest_ready()
            .map(|i| self.revs[i as usize].name.as_str())
            .unwrap_or_default();
        let created: Vec<RevisionState<'_>> = self
            .revs
            .iter()
            .filter(|r| r.pods.created())
            .map(|r| RevisionState {
                name: &r.name,
                ready: r.pods.ready(),
            })
            .collect();
        let out = self.control.reconcile(self.now, &created, latest);
        if let Some(w) = out.warning {
            self.warn(w);
        }
        if out.program.is_some() {
            for r in self.revs.iter_mut() {
                r.kpa.set_routed(self.control.reachable(&r.name));
            }
        }
        if let Some(gen) = out.program {
            self.translate(gen);
        }
        for change in out.rollouts {
            match change {
                RolloutChange::Started(c) => self.recorder.rollout_started(self.now, &c),
                RolloutChange::Finished(c) => self.recorder.rollout_finished(self.now, &c),
            }
        }
        if let Some(at) = out.next_at {
            if self.reconcile_at.is_none_or(|t| at < t || t < self.now) {
                self.reconcile_at = Some(at);
                self.queue.schedule(at, Ev::Reconcile);
            }
        }
        out.program
    }

    /// The ingress controller translates generation `gen` and pushes it: each gateway replica
    /// applies it after its own delay (ingress.md §7.1). Kourier translates nothing while a
    /// split has no ready endpoint: the generation is held, the replicas keep the old config.
    fn translate(&mut self, gen: u64) {
        if let Some(split) = self.split_without_endpoints() {
            if self.held_generation.is_none() {
                self.warn(format!(
                    "{} keeps the previous ingress config: {split} has no ready endpoint",
                    self.gateway.profile()
                ));
            }
            self.held_generation = Some(gen);
            return;
        }
        self.held_generation = None;
        for replica in 0..self.planes.len() {
            let rng = match replica {
                0 => &mut self.delay_rng,
                r => &mut self.replica_delay_rngs[r - 1],
            };
            let delay = self.s.ingress.programming_delay.sample(rng);
            let ev = Ev::IngressProgrammed {
                generation: gen,
                replica: replica as u16,
            };
            self.queue.schedule(self.now + delay, ev);
        }
    }

    /// Gateway replica `replica` (all of them for `None`) applies generation `gen` of the
    /// ingress. Returns whether every replica now has it: the KIngress is Ready (the prober
    /// needs every gateway pod, NW status.go:432-443) and the route reconciler runs again.
    /// `routes.csv` follows replica 0.
    fn apply_programming(&mut self, gen: u64, replica: Option<usize>) -> bool {
        let replicas = match replica {
            Some(r) => r..r + 1,
            None => 0..self.planes.len(),
        };
        for r in replicas {
            self.replica_applied[r] = self.replica_applied[r].max(gen);
            let Some(table) = self.control.desired_table() else {
                continue;
            };
            let (plane, changes, warnings) = DataPlane::program(
                &self.control,
                table,
                Some(&self.planes[r]),
                self.s.picker,
                &self.rev_index,
                self.arrivals.tags(),
            );
            self.planes[r] = plane;
            if r == 0 {
                for w in warnings {
                    self.warn(w);
                }
                for c in changes {
                    self.recorder.programmed(self.now, &c.tag, &c.splits);
                }
            }
        }
        let ready = self.replica_applied.iter().all(|&g| g >= gen);
        if ready {
            self.control.programmed(gen);
        }
        ready
    }

    /// Kourier's rule (KR ingress_translator.go:225-231): the first revision of the desired
    /// table's positive splits (KIngress skips 0% targets, SV ingress.go:327-329) whose public
    /// service has no ready endpoint: no pod endpoint in Serve mode (activators in Proxy mode).
    fn split_without_endpoints(&self) -> Option<String> {
        let table = self.control.desired_table()?;
        let ready = |name: &str| {
            let Some(&i) = self.rev_index.get(name) else {
                return 1; // unknown to the scenario: the data plane reports it
            };
            let r = &self.revs[i as usize];
            match (r.pods.created(), r.serve_applied) {
                (false, _) => 0,
                (true, true) => r.pods.endpoints().len(),
                (true, false) => r.subset.max(1),
            }
        };
        let splits = || {
            table
                .groups
                .iter()
                .flat_map(|g| &g.splits)
                .filter(|s| s.percent > 0)
        };
        if applies_config(self.gateway.profile(), splits().map(|s| ready(&s.revision))) {
            None
        } else {
            splits()
                .find(|s| ready(&s.revision) == 0)
                .map(|s| s.revision.clone())
        }
    }

    /// Endpoints were added: Kourier's tracker re-translates a held generation at once (KR
    /// ingress_translator.go:510-533), and the replicas apply it after their delays.
    fn retry_held_programming(&mut self) {
        if let Some(gen) = self.held_generation {
            if self.control.is_new(gen) {
                self.translate(gen);
            } else {
                self.held_generation = None;
            }
        }
    }

    /// One tick of Flagger's analysis job: observe the Service, tick the controller, apply the
    /// `spec.traffic` it wrote as a timeline traffic change is applied, and tick again after
    /// the interval while arrivals last.
    fn on_analysis_tick(&mut self) {
        let Some(mut a) = self.analysis.take() else {
            return;
        };
        let revs = &self.revs;
        let ticked = a.book.tick(
            &mut a.controller,
            self.now,
            self.roster.latest_ready(),
            |i| revs[i as usize].pods.ready(),
            a.run.webhook_results(self.now),
        );
        self.recorder.analysis_tick(self.now, &ticked.csv_row());
        let out = ticked.out;
        let next = self.now + a.run.settings.interval;
        self.analysis = Some(a);
        if let Some(write) = &out.write {
            self.control.set_traffic(&write.to_targets());
            self.reconcile();
        }
        if next <= SimTime::ZERO + self.s.duration {
            self.queue.schedule(next, Ev::AnalysisTick);
        }
    }

    fn on_timeline(&mut self, i: usize) {
        let ev = &self.s.timeline[i];
        match &ev.action {
            Action::CreateRevision(rev) => self.create_revision(*rev as u32, false),
            Action::SetTraffic(traffic) => {
                self.control.set_traffic(traffic);
                self.reconcile();
            }
            Action::Kn {
                traffic,
                tags,
                untags,
            } => self.apply_kn(traffic, tags, untags),
            Action::Scale { revision, pods } => {
                let rev = *revision as u32;
                if self.revs[rev as usize].pods.created() {
                    self.set_pods(rev, *pods, false);
                } else {
                    self.warn(format!(
                        "scale of {} before it was created: ignored",
                        self.revs[rev as usize].name
                    ));
                }
            }
            Action::SetRolloutDuration { secs } => {
                self.control.set_rollout_duration(*secs);
                self.reconcile();
            }
            Action::SetFailure { revision, failure } => self.set_failure(*revision, failure),
        }
    }

    /// A timeline `failure` event: the revision's settings are replaced from now on. Requests
    /// starting service from now see the new error rate and latency; containers serving now
    /// draw their crash anew under the new `crash_after` (none without it); `crash_loop` and
    /// `ready_before_serving` apply to the next container starts.
    fn set_failure(&mut self, rev: usize, failure: &FailureSpec) {
        self.revs[rev].failure = failure.clone();
        self.revs[rev].failure_healthy = failure.is_healthy();
        let now = self.now;
        let serving: Vec<u32> = self
            .roster
            .live_pods(&self.revs[rev].pods)
            .into_iter()
            .filter_map(|(p, ready)| ready.then_some(p))
            .collect();
        for pod in serving {
            let r = &mut self.revs[rev];
            let from = now.max(self.pods[pod as usize].serving_from);
            let crash_at = r.failure.crash_at(from, &mut r.failure_pod_rng);
            if let Some(at) = self.pods[pod as usize].life.arm(crash_at) {
                self.queue.schedule(at, Ev::PodCrash(pod));
            }
        }
    }

    fn apply_kn(&mut self, traffic: &[String], tags: &[String], untags: &[String]) {
        let latest = self
            .roster
            .latest_ready()
            .map(|i| self.revs[i as usize].name.as_str())
            .unwrap_or_default();
        let created: Vec<&str> = self
            .revs
            .iter()
            .filter(|r| r.pods.created())
            .map(|r| r.name.as_str())
            .collect();
        match self
            .control
            .apply_kn(traffic, tags, untags, &created, latest)
        {
            Ok(()) => {
                self.reconcile();
            }
            Err(e) => self.warn(e),
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(format!("t={}s: {message}", self.now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::autoscaler::AutoscalerConfig;
    use crate::model::dist::Dist;
    use crate::model::ingress::IngressProfile;
    use crate::report::run::RunReport;
    use crate::routing::pick::PickerKind;
    use crate::routing::TrafficTarget;
    use crate::scenario::spec::{
        ActivatorSpec, ArrivalProcessSpec, ArrivalSpec, AutoscalerSpec, ClientSpec, IngressSpec,
        MetricsSpec, RevisionSpec, ServiceSpec, TimelineEvent,
    };

    /// One revision, one pod, Serve mode from the start (TBC 0), Poisson arrivals, exponential
    /// service: an M/M/c/K queue with K = 11·c.
    fn mmck(rate_per_s: f64, cc: u32, mean_service: SimDuration, secs: i64, seed: u64) -> Scenario {
        Scenario {
            name: "mmck".into(),
            duration: SimDuration::from_secs(secs),
            drain: SimDuration::from_secs(10),
            seed,
            service: ServiceSpec {
                name: "svc".into(),
                namespace: "default".into(),
                domain: "example.com".into(),
                rollout_duration_secs: 0,
                tag_header_routing: false,
            },
            revisions: vec![RevisionSpec {
                name: "svc-00001".into(),
                container_concurrency: cc,
                timeout: SimDuration::from_secs(300),
                response_start_timeout: None,
                service_time: Dist::exponential(mean_service).expect("valid"),
                app: AppModel::Workers(1000),
                pods: 1,
                startup: Dist::constant(SimDuration::from_secs(1)).expect("valid"),
                created_at: None,
                autoscaling: Default::default(),
                failure: FailureSpec::default(),
            }],
            traffic: vec![TrafficTarget::revision("svc-00001", 100)],
            timeline: vec![],
            arrivals: ArrivalSpec {
                process: ArrivalProcessSpec::Poisson { rate_per_s },
                tag_shares: vec![],
                header_shares: vec![],
                clients: None,
            },
            picker: PickerKind::Random,
            ingress: IngressSpec {
                programming_delay: Dist::constant(SimDuration::from_millis(300)).expect("valid"),
                ..IngressSpec::of(IngressProfile::Ideal)
            },
            activator: ActivatorSpec {
                replicas: 1,
                probe_period: SimDuration::from_millis(200),
                lb_policy: None,
            },
            client: ClientSpec { timeout: None },
            metrics: MetricsSpec {
                window: SimDuration::from_secs(1),
            },
            // TBC 0: the activator only at zero ready pods, so it stays out of the path here.
            autoscaler: AutoscalerSpec {
                enabled: false,
                config: AutoscalerConfig {
                    target_burst_capacity: 0.0,
                    ..Default::default()
                },
            },
            kubelet_ready_delay: Dist::constant(SimDuration::from_secs(5)).expect("valid"),
            endpoint_removal_delay: Dist::constant(SimDuration::from_secs(1)).expect("valid"),
            source_yaml: String::new(),
            warnings: Vec::new(),
            analysis: None,
        }
    }

    /// Stationary M/M/c/K: (blocking probability, mean number in system).
    fn mmck_theory(lambda: f64, mu: f64, c: u32, k: u32) -> (f64, f64) {
        let a = lambda / mu;
        let mut terms = Vec::with_capacity(k as usize + 1);
        let mut term = 1.0; // a^n / n! for n < c, then a^n / (c! c^(n-c))
        for n in 0..=k {
            if n > 0 {
                term *= if n <= c {
                    a / f64::from(n)
                } else {
                    a / f64::from(c)
                };
            }
            terms.push(term);
        }
        let norm: f64 = terms.iter().sum();
        let p: Vec<f64> = terms.iter().map(|t| t / norm).collect();
        let mean: f64 = p.iter().enumerate().map(|(n, pn)| n as f64 * pn).sum();
        (p[k as usize], mean)
    }

    #[test]
    fn single_pod_matches_mmck_theory() {
        let mean_service = SimDuration::from_millis(10);
        let mu = 100.0;
        // (cc, offered load ρ = λ/(c·μ)): light, heavy, critical and overload
        let cases = [(2, 0.7), (2, 0.95), (4, 1.0), (2, 1.5)];
        for (cc, rho) in cases {
            let lambda = rho * f64::from(cc) * mu;
            let secs = 2_000;
            let report = simulate(
                &mmck(lambda, cc, mean_service, secs, 7),
                &RunOptions::default(),
            )
            .into_report(0.0);
            assert!(report.accounting_ok());
            let rev = &report.revisions()[0];
            let c = rev.counts;
            let blocking = c.rejected_qp as f64 / c.arrived as f64;
            // Little's law on admitted requests: L = λ_admitted · W
            let admitted = (c.arrived - c.rejected_qp) as f64 / secs as f64;
            let w_s = rev.latency.expect("served requests").mean_ms / 1e3;
            let (pk, l) = mmck_theory(lambda, mu, cc, 11 * cc);
            // Blocking: binomial noise on ~λT draws is tiny; correlation inflates it, so allow
            // 12% relative (or 2e-4 absolute for rare blocking).
            assert!(
                (blocking - pk).abs() <= (0.12 * pk).max(2e-4),
                "cc {cc} rho {rho}: blocking {blocking:.5} vs theory {pk:.5}"
            );
            assert!(
                (admitted * w_s - l).abs() <= 0.06 * l,
                "cc {cc} rho {rho}: L {:.3} vs theory {l:.3}",
                admitted * w_s
            );
        }
    }

    #[test]
    fn cc_zero_app_models_match_mm1() {
        // containerConcurrency 0: no breaker; the application decides. One worker (FIFO) and
        // processor sharing over one core both give M/M/1's mean sojourn E[S]/(1-ρ).
        let mean_service = SimDuration::from_millis(10);
        let rho = 0.7;
        let expected_ms = 10.0 / (1.0 - rho);
        for app in [
            AppModel::Workers(1),
            AppModel::ProcessorSharing { cores: 1 },
        ] {
            let mut s = mmck(rho * 100.0, 0, mean_service, 3_000, 9);
            s.revisions[0].app = app;
            let report = simulate(&s, &RunOptions::default()).into_report(0.0);
            assert!(report.accounting_ok());
            let rev = &report.revisions()[0];
            assert_eq!(rev.counts.rejected_qp, 0, "{app:?}: no breaker, no 503");
            let mean = rev.latency.expect("served").mean_ms;
            assert!(
                (mean - expected_ms).abs() <= 0.06 * expected_ms,
                "{app:?}: mean {mean:.2} ms vs {expected_ms:.2}"
            );
        }
    }

    #[test]
    fn same_seed_same_results_and_seeds_differ() {
        let s = mmck(300.0, 2, SimDuration::from_millis(10), 200, 3);
        let a = simulate(&s, &RunOptions::default()).into_report(0.0);
        let b = simulate(&s, &RunOptions::default()).into_report(0.0);
        assert_eq!(a.totals(), b.totals());
        assert_eq!(a.revisions()[0].latency, b.revisions()[0].latency);
        let mut other = s.clone();
        other.seed = 4;
        let c = simulate(&other, &RunOptions::default()).into_report(0.0);
        assert_ne!(a.totals(), c.totals());
    }

    /// `mmck` with the activator always in the path (TBC -1) and the ingress `profile`: one pod
    /// (cc 10, 100 ms) serves ~100 req/s of 1,000 req/s, so the backlog queues at the activator.
    fn activator_backlog(profile: IngressProfile, replicas: u32) -> SimRun {
        let mut s = mmck(1000.0, 10, SimDuration::from_millis(100), 3, 1);
        s.autoscaler.config.target_burst_capacity = -1.0;
        s.ingress = IngressSpec {
            replicas,
            programming_delay: Dist::constant(SimDuration::from_millis(300)).expect("valid"),
            ..IngressSpec::of(profile)
        };
        simulate(&s, &RunOptions::default())
    }

    #[test]
    fn kourier_breaker_turns_the_activator_backlog_into_overflow_and_istio_does_not() {
        let report = |p, n| activator_backlog(p, n).into_report(0.0);
        let kourier = report(IngressProfile::Kourier, 1);
        let istio = report(IngressProfile::Istio, 1);
        let ideal = report(IngressProfile::Ideal, 1);
        let kourier2 = report(IngressProfile::Kourier, 2);
        let contour = report(IngressProfile::Contour, 1);
        for r in [&kourier, &istio, &ideal, &kourier2, &contour] {
            // sum of outcomes (with in-flight) == arrived, overall and per revision
            assert!(r.accounting_ok());
        }
        let overflow = |r: &RunReport| r.revisions()[0].counts.ingress_overflow;
        // ~3,000 arrivals: the activator's backlog passes 1,024 outstanding on the one replica
        // after ~1.1 s, from then on the breaker answers 503 UO (about 1,800)
        assert!(overflow(&kourier) > 1_000, "{:?}", kourier.totals());
        assert_eq!(overflow(&kourier), kourier.totals().ingress_overflow);
        // the activator's queue never holds more than the breaker lets through
        assert!(kourier.revisions()[0].peak_activator_queue <= 1024);
        // Istio's thresholds are 2^32-1: the backlog stays queued at the activator
        assert_eq!(overflow(&istio), 0);
        assert!(istio.revisions()[0].peak_activator_queue > 2_000);
        // with one activator the least-request choice is the ideal gateway's: same run
        assert_eq!(istio.totals(), ideal.totals());
        // Contour's breakers are Envoy's defaults as Kourier's (its retries need a connect
        // failure or reset, which this run has not): same run
        assert_eq!(contour.totals(), kourier.totals());
        // two replicas: 1,024 each, and requests spread over both
        assert!(
            overflow(&kourier2) > 0 && overflow(&kourier2) < overflow(&kourier),
            "{} vs {}",
            overflow(&kourier2),
            overflow(&kourier)
        );
    }

    /// Two revisions at 50/50 in Serve mode (TBC 0); at 5 s svc-00002 loses its one pod (it
    /// leaves the endpoints 1 ms later) and at 5.1 s the traffic moves to 20/80. Until its SKS
    /// switches to Proxy (the next decider tick plus the programming delay, 6.3 s) svc-00002
    /// has no ready endpoint.
    fn endpoints_gone(profile: IngressProfile) -> SimRun {
        let mut s = mmck(400.0, 10, SimDuration::from_millis(10), 8, 1);
        let mut v2 = s.revisions[0].clone();
        v2.name = "svc-00002".into();
        s.revisions.push(v2);
        s.traffic = vec![
            TrafficTarget::revision("svc-00001", 50),
            TrafficTarget::revision("svc-00002", 50),
        ];
        s.endpoint_removal_delay = Dist::constant(SimDuration::from_millis(1)).expect("valid");
        let at = SimTime::ZERO + SimDuration::from_secs(5);
        s.timeline = vec![
            TimelineEvent {
                at,
                action: Action::Scale {
                    revision: 1,
                    pods: 0,
                },
            },
            TimelineEvent {
                at: at + SimDuration::from_millis(100),
                action: Action::SetTraffic(vec![
                    TrafficTarget::revision("svc-00001", 20),
                    TrafficTarget::revision("svc-00002", 80),
                ]),
            },
        ];
        s.ingress = IngressSpec {
            programming_delay: Dist::constant(SimDuration::from_millis(300)).expect("valid"),
            ..IngressSpec::of(profile)
        };
        simulate(&s, &RunOptions::default())
    }

    #[test]
    fn kourier_keeps_the_old_split_while_a_revision_has_no_ready_endpoint() {
        let kourier = endpoints_gone(IngressProfile::Kourier);
        let ideal = endpoints_gone(IngressProfile::Ideal);
        assert!(
            kourier.warnings.iter().any(|w| w.ends_with(
                "kourier keeps the previous ingress config: svc-00002 has no ready endpoint"
            )),
            "{:?}",
            kourier.warnings
        );
        assert!(ideal.warnings.iter().all(|w| !w.contains("keeps")));
        let (kourier, ideal) = (kourier.into_report(0.0), ideal.into_report(0.0));
        assert!(kourier.accounting_ok() && ideal.accounting_ok());
        // 503 UH at svc-00002 from 5 s to 6.3 s: Kourier holds the 20/80 config and sends it
        // 50% throughout (about 260), the ideal gateway 80% from 5.4 s (about 80 + 290)
        let errors = |r: &RunReport| r.revisions()[1].counts.errors;
        assert!(
            errors(&ideal) >= errors(&kourier) + 60,
            "ideal {} vs kourier {}",
            errors(&ideal),
            errors(&kourier)
        );
        // and Kourier applies the 20/80 split once the activator is svc-00002's endpoint
        assert!(
            kourier.revisions()[1].routed > kourier.revisions()[0].routed,
            "{:?}",
            kourier.revisions()
        );
    }

    #[test]
    fn least_request_beats_round_robin_spreading_over_busy_pods() {
        // 4 pods at cc 1 (each queues 10 at its queue-proxy) at 85% load, Serve mode: the
        // gateway's least request (Istio) sends a request to the less busy of two pods, round
        // robin (Kourier) takes turns whatever each pod holds (mean about 32 vs 38 ms)
        let run = |profile: IngressProfile| {
            let mut s = mmck(340.0, 1, SimDuration::from_millis(10), 300, 5);
            s.revisions[0].pods = 4;
            s.ingress = IngressSpec {
                programming_delay: Dist::constant(SimDuration::from_millis(300)).expect("valid"),
                ..IngressSpec::of(profile)
            };
            let report = simulate(&s, &RunOptions::default()).into_report(0.0);
            assert!(report.accounting_ok(), "{profile}");
            report
        };
        let (kourier, istio, ideal) = (
            run(IngressProfile::Kourier),
            run(IngressProfile::Istio),
            run(IngressProfile::Ideal),
        );
        let mean = |r: &RunReport| r.revisions()[0].latency.expect("served").mean_ms;
        assert!(
            mean(&istio) < 0.9 * mean(&kourier),
            "istio {:.2} ms vs kourier {:.2} ms",
            mean(&istio),
            mean(&kourier)
        );
        // one replica's round robin is the ideal gateway's cursor: the same run
        assert_eq!(kourier.totals(), ideal.totals());
        assert_eq!(mean(&kourier), mean(&ideal));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

        /// Whatever ends a request (served, queue-proxy 503, either 504, client cancel, no
        /// endpoint, gateway overflow), the gateway releases it exactly once: `finish` asserts
        /// (debug) that the gateway holds exactly the revision's requests in flight, and the
        /// outcomes account for every arrival.
        #[test]
        fn every_ending_releases_the_gateway_once(
            rate in 50.0f64..600.0,
            cc in 1u32..4,
            tbc in proptest::sample::select(vec![-1.0f64, 0.0]),
            timeout_ms in 200i64..3000,
            client_ms in proptest::option::of(100i64..2000),
            max_requests in 2u32..60,
            replicas in 1u32..3,
            profile in proptest::sample::select(vec![
                IngressProfile::Kourier, IngressProfile::Istio, IngressProfile::Contour,
            ]),
        ) {
            let mut s = mmck(rate, cc, SimDuration::from_millis(20), 4, 3);
            s.revisions[0].pods = 2;
            s.revisions[0].timeout = SimDuration::from_millis(timeout_ms);
            s.client.timeout = client_ms.map(SimDuration::from_millis);
            s.autoscaler.config.target_burst_capacity = tbc;
            s.timeline = vec![TimelineEvent {
                at: SimTime::ZERO + SimDuration::from_secs(2),
                action: Action::Scale { revision: 0, pods: 1 },
            }];
            s.ingress = IngressSpec {
                replicas,
                max_requests,
                ..IngressSpec::of(profile)
            };
            let report = simulate(&s, &RunOptions::default()).into_report(0.0);
            proptest::prop_assert!(report.accounting_ok());
        }
    }

    /// 100% svc-00001 until 5 s, then 100% svc-00002, with 100 ms metrics windows and the
    /// gateway's programming delay uniform 0.2-2 s over `replicas` replicas.
    fn skewed_shift(replicas: u32) -> RunReport {
        let mut s = mmck(2000.0, 10, SimDuration::from_millis(1), 10, 2);
        let mut v2 = s.revisions[0].clone();
        v2.name = "svc-00002".into();
        s.revisions.push(v2);
        s.metrics.window = SimDuration::from_millis(100);
        s.timeline = vec![TimelineEvent {
            at: SimTime::ZERO + SimDuration::from_secs(5),
            action: Action::SetTraffic(vec![TrafficTarget::revision("svc-00002", 100)]),
        }];
        s.ingress = IngressSpec {
            replicas,
            programming_delay: Dist::uniform(
                SimDuration::from_millis(200),
                SimDuration::from_secs(2),
            )
            .expect("valid"),
            ..IngressSpec::of(IngressProfile::Istio)
        };
        let report = simulate(&s, &RunOptions::default()).into_report(0.0);
        assert!(report.accounting_ok());
        report
    }

    #[test]
    fn gateway_replicas_apply_a_new_split_each_after_its_own_delay() {
        // windows in which both revisions were routed to: the switch window with one replica;
        // with three, the span between the first and the last replica's switch
        let mixed = |r: &RunReport| {
            (0..r.windows())
                .filter(|&w| r.cell(w, 0).routed > 0 && r.cell(w, 1).routed > 0)
                .count()
        };
        let (one, three) = (skewed_shift(1), skewed_shift(3));
        assert_eq!(mixed(&one), 1);
        assert!(mixed(&three) >= 3, "{} mixed windows", mixed(&three));
    }
}
