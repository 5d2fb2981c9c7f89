//! `splitlab live`: a scenario run in wall-clock time, in one process, over real sockets.
//!
//! The control loop here plays the cluster's controllers on a scaled wall clock: the timeline,
//! the route reconciler and its rollout steps (`model::route_control::RouteControl`, shared
//! with the simulator), the ingress programming delay, pods starting after their start-up
//! delay, the activator's probe tick and Kubernetes readiness (the pods' states, endpoints and
//! readiness kept by `model::roster`, as in the simulator), the SKS mode and the KPA
//! (`model::autoscaler`, fed with live measurements every second and ticking every 2 s, and
//! woken at once by the activator's poke when a revision at zero gets its first request).
//! Requests travel for real: the load generator (`live::load`) sends them to the gateway
//! (`live::gateway`), which proxies them to pod servers (`live::pod`).
//!
//! Flagger's analysis (`model::flagger`) as in the simulator: the controller ticks at
//! `analysis.start` and every interval of scenario time; `Books::analysis` (`report::analysis`,
//! the simulator's measuring code) is fed with every request the run records as finished by a
//! revision, and the `spec.traffic` Flagger writes goes through the route control as a timeline
//! traffic change does. Its windows are in scenario time at the client's end of each request.
//!
//! Failing revisions (`model::failure`) as in the simulator: each revision's settings in force
//! are shared with its pod servers (a timeline `failure` event replaces them), which answer
//! application errors, serve slower, refuse requests before their application serves, and
//! crash; the control loop crashes pods (`crash_after`, `crash_loop`), drains them out of the
//! endpoints and restarts them after Kubernetes' back-off with a new server.
//!
//! What differs from the simulator, by construction: real sockets add latency (tens to hundreds
//! of microseconds on loopback) and the OS scheduler adds jitter. A pod "serves" by waiting:
//! a service time, or for a processor-sharing application (`app: processor_sharing`) until the
//! model's `PsServer` says its share of the cores has done the work; no CPU is burnt.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::clock::Clock;
use super::gateway::{Backend, BackendState, Gateway, Hooks, RUN_HEADER};
use super::http::Pool;
use super::load::{self, lock, Books, Classifier, Executor, LoadPlan, LoadStats, Target};
use super::metrics::{
    ActivatorMetrics, AutoscalerMetrics, Decision, Endpoints, QueueProxyMetrics, RevisionLabels,
    Targets, ACTIVATOR_CONTAINER, QUEUE_PROXY_CONTAINER,
};
use super::pod::{Pod, PodConfig};
use crate::model::activator::{ActivatorStat, Throttler};
use crate::model::arrival::ArrivalGen;
use crate::model::autoscaler::ScalingMetric;
use crate::model::failure::{ContainerLife, FailureSpec};
use crate::model::flagger::FlaggerController;
use crate::model::revision::{scale_down_victims, Kpa};
use crate::model::rng::{stream, Stream, StreamRng};
use crate::model::roster::{next_probe_tick, PodEntry, PodState, RevisionPods, Roster};
use crate::model::route_control::{DataPlane, RevisionState, RolloutChange, RouteControl};
use crate::model::time::{SimDuration, SimTime};
use crate::report::analysis::CanaryBook;
use crate::report::run::{AutoscalerTick, Gauge, OutsideRequests, RunMeta, RunRecorder, RunReport};
use crate::scenario::spec::{Action, AnalysisRun, AppModel, Scenario};

/// The decider's tick (multiscaler.go:36) and the metrics period (A.5.1), as in the simulator.
const DECIDER_TICK: SimDuration = SimDuration::from_secs(2);
const METRICS_TICK: SimDuration = SimDuration::from_secs(1);

/// How a live run is executed.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Scenario seconds per wall second.
    pub time_scale: f64,
    /// Most connections from the load generator to the gateway.
    pub connections: usize,
    /// Most requests in flight at the load generator.
    pub max_in_flight: u64,
    /// Keep one `requests.csv` row per finished request, spooled during the run in this
    /// directory (the output directory's staging area).
    pub request_log: Option<std::path::PathBuf>,
    /// Where to write the Prometheus `file_sd` list of the metrics endpoints.
    pub prometheus_sd: Option<std::path::PathBuf>,
    /// Where the gateway listens, for outside clients too (`--listen`); `None`: an ephemeral
    /// port on 127.0.0.1 only the run's own load generator knows.
    pub listen: Option<SocketAddr>,
    /// Told the gateway's address and the run's time zero (Unix seconds) once it listens.
    pub on_listening: Option<fn(SocketAddr, f64)>,
}

/// Why a live run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot bind 127.0.0.1: {0}")]
    Bind(std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// A finished live run.
pub struct LiveRun {
    pub report: RunReport,
    pub stats: LoadStats,
    pub warnings: Vec<String>,
    pub interrupted: bool,
    /// The metrics endpoints, still serving their final values; the caller stops them
    /// (`Endpoints::stop_all_and_clear`) when Prometheus has had its last scrape.
    pub endpoints: Arc<Endpoints>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Timeline(u32),
    PodReady(u32),
    PodHealthy(u32),
    PodK8sReady(u32),
    PodLeavesEndpoints(u32),
    IngressProgrammed(u64),
    SksApply {
        rev: u32,
        serve: bool,
        gen: u32,
    },
    Reconcile,
    MetricsTick,
    DeciderTick,
    /// The pod's application crashes, if it is still due then (`ContainerLife::crash_due`).
    PodCrash(u32),
    /// A crashed pod leaves the endpoints, unless it restarted meanwhile.
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

/// Flagger's analysis: its settings and the controller; what it measures lives in
/// `Books::analysis`, beside the recorder.
struct Analysis<'a> {
    run: &'a AnalysisRun,
    controller: FlaggerController,
}

struct Rev {
    /// Its pods' lifecycle, changed by `Control::roster`.
    pods: RevisionPods,
    kpa: Kpa,
    /// The failure settings in force, shared with its pod servers.
    failure: Arc<Mutex<FailureSpec>>,
    /// When its containers crash (`Stream::FailurePod`).
    crash_rng: StreamRng,
}

impl AsMut<RevisionPods> for Rev {
    fn as_mut(&mut self) -> &mut RevisionPods {
        &mut self.pods
    }
}

struct Control<'a> {
    s: &'a Scenario,
    clock: Clock,
    now: SimTime,
    seq: u64,
    heap: BinaryHeap<Reverse<(SimTime, u64, Ev)>>,
    revs: Vec<Rev>,
    /// The pods' lifecycle (`Rev::pods` holds each revision's part).
    roster: Roster,
    /// Each pod's server once its app is up, by pod id (one pushed per `Roster::add_pod`).
    servers: Vec<Option<Pod>>,
    /// Each pod's crashes and restarts, by pod id.
    lives: Vec<ContainerLife>,
    control: RouteControl,
    rev_index: BTreeMap<String, u32>,
    tags: Vec<String>,
    gateway: Arc<Gateway>,
    books: Arc<Mutex<Books>>,
    delay_rng: StreamRng,
    warnings: Vec<String>,
    reconcile_at: Option<SimTime>,
    /// The metrics endpoints, each pod's queue-proxy metrics by pod id (kept across container
    /// restarts), and the autoscaler's.
    endpoints: Arc<Endpoints>,
    pod_metrics: Vec<Arc<QueueProxyMetrics>>,
    rev_labels: Vec<RevisionLabels>,
    autoscaler_metrics: Arc<AutoscalerMetrics>,
    /// Flagger's analysis, which owns the Service's traffic, when the scenario has one.
    analysis: Option<Analysis<'a>>,
}

/// Runs `scenario` live. Must be called on a multi-threaded tokio runtime. `stop` ends the run
/// early (Ctrl-C); outputs still cover everything that happened.
pub async fn run_live(
    s: &Scenario,
    opts: &LiveOptions,
    stop: Arc<AtomicBool>,
) -> Result<LiveRun, LiveError> {
    let seed = s.seed;
    let names: Vec<String> = s.revisions.iter().map(|r| r.name.clone()).collect();
    let recorder = RunRecorder::new(
        RunMeta {
            scenario: s.name.clone(),
            seed,
            mode: "live".into(),
        },
        names.clone(),
        s.metrics.window,
        opts.request_log.as_deref(),
    );
    let books = Books::new(recorder);
    lock(&books).analysis = s
        .analysis
        .as_ref()
        .map(|run| CanaryBook::new(&run.settings, names.clone()));
    let clock = Clock::start(opts.time_scale);
    let start_unix_s = Clock::unix_now_s();
    let end = SimTime::ZERO + s.duration;
    let arrivals = ArrivalGen::new(&s.arrivals, end);
    let tags = arrivals.tags().to_vec();
    let backends: Vec<Arc<Backend>> = s
        .revisions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Arc::new(Backend::new(
                r.name.clone(),
                i as u32,
                clock.wall(r.request_deadline()),
                BackendState::new(
                    (0..s.activator.replicas.max(1))
                        .map(|_| Throttler::new(r.container_concurrency, s.activator.lb_policy))
                        .collect(),
                    stream(seed, 0, Stream::ActivatorLb, i as u64),
                    false,
                ),
            ))
        })
        .collect();
    let (poke_tx, pokes) = tokio::sync::mpsc::unbounded_channel();
    // Knative's metrics: one endpoint per pod, per activator replica, and the autoscaler's,
    // listed in the target list from the start.
    let rev_labels: Vec<RevisionLabels> = s
        .revisions
        .iter()
        .map(|r| RevisionLabels::new(&s.service.namespace, &s.service.name, &r.name))
        .collect();
    let endpoints = Arc::new(Endpoints::new(Targets::new(opts.prometheus_sd.as_deref())));
    let mut warnings = Vec::new();
    if let Err(e) = endpoints.write_targets() {
        warnings.push(format!("cannot write the Prometheus target list: {e}"));
    }
    let activator_metrics: Vec<Arc<ActivatorMetrics>> = (0..s.activator.replicas.max(1))
        .map(|i| Arc::new(ActivatorMetrics::new(&activator_pod(i), &rev_labels)))
        .collect();
    for (i, m) in activator_metrics.iter().enumerate() {
        let ns = &s.service.namespace;
        let started = endpoints
            .start(
                m.registry(),
                ns,
                &activator_pod(i as u32),
                ACTIVATOR_CONTAINER,
            )
            .await;
        warnings.extend(started.err());
    }
    let autoscaler_metrics = Arc::new(AutoscalerMetrics::new(&rev_labels));
    let started = endpoints
        .start(
            autoscaler_metrics.registry(),
            &s.service.namespace,
            AUTOSCALER_POD,
            "autoscaler",
        )
        .await;
    warnings.extend(started.err());
    let gateway = Arc::new(Gateway {
        plane: Mutex::new((DataPlane::default(), stream(seed, 0, Stream::Routing, 0))),
        backends,
        pool: Pool::default(),
        hooks: Some(Hooks {
            books: books.clone(),
            clock,
            pokes: poke_tx,
            run_token: run_token(),
        }),
        activator_metrics,
        stats: Default::default(),
    });
    let listen = opts
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| LiveError::Listen(listen, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| LiveError::Listen(listen, e))?;
    if let Some(announce) = opts.on_listening {
        announce(bound, start_unix_s);
    }
    // The run's own load generator reaches an every-interface listener over loopback.
    let gw_addr = if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    };
    let (stop_servers, servers_stopped) = watch::channel(false);
    tokio::spawn(gateway.clone().serve(listener, servers_stopped));

    let mut control = Control::new(s, clock, gateway.clone(), books.clone(), tags.clone());
    control.warnings = warnings;
    control.endpoints = endpoints.clone();
    control.rev_labels = rev_labels;
    control.autoscaler_metrics = autoscaler_metrics;
    control.start().await;
    let own = gateway
        .hooks
        .as_ref()
        .map(|h| h.run_token.clone())
        .expect("the live gateway has hooks");
    let target = Target {
        tag_hosts: tags.iter().map(|t| control.control.host(t)).collect(),
        tag_names: tags.clone(),
        headers: vec![(HeaderName::from_static(RUN_HEADER), own)],
        ..Target::new(gw_addr, "/".into(), control.control.host(""))
    };
    let plan = LoadPlan {
        arrivals,
        rng: stream(seed, 0, Stream::Arrivals, 0),
        duration: s.duration,
        max_requests: None,
        drain: s.drain,
        client_timeout: s.client.timeout,
        executor: Executor::Open {
            connections: opts.connections,
        },
        max_in_flight: opts.max_in_flight,
        record_routing: false,
    };
    let classifier = Classifier::revision_header(&names);
    let load_task = tokio::spawn(load::run(
        plan,
        load::Targets::single(target),
        None,
        classifier,
        clock,
        books.clone(),
        stop.clone(),
    ));
    let hard_end = end + s.drain;
    control.run_until(&load_task, hard_end, pokes).await;
    let mut result = load_task
        .await
        .expect("the load generator task does not panic");
    if let Some(book) = lock(&books).analysis.take() {
        result.recorder.analysis_summary(book.summary());
    }
    let _ = stop_servers.send(true);
    for server in control.servers.iter().flatten() {
        server.stop();
    }
    let (mut report, stats, interrupted) = result.report(clock.wall_elapsed_s());
    if opts.listen.is_some() {
        let statuses = gateway.stats.outside();
        report.set_outside_requests(OutsideRequests {
            requests: statuses.values().sum(),
            served: statuses
                .iter()
                .filter(|(status, _)| **status < 400)
                .map(|(_, n)| n)
                .sum(),
            statuses,
        });
    }
    Ok(LiveRun {
        report,
        stats,
        warnings: control.warnings,
        interrupted,
        endpoints,
    })
}

/// A value outside clients do not send: the process and the wall clock's nanoseconds.
fn run_token() -> HeaderValue {
    let nanos = (Clock::unix_now_s().fract() * 1e9) as u64;
    HeaderValue::from_str(&format!("{}-{nanos}", std::process::id()))
        .expect("digits and a dash are a valid header value")
}

/// The name of activator replica `i` (its `pod_name`).
fn activator_pod(i: u32) -> String {
    format!("activator-{i}")
}

/// The autoscaler's target name (its metrics carry no pod label).
const AUTOSCALER_POD: &str = "autoscaler";

impl<'a> Control<'a> {
    fn new(
        s: &'a Scenario,
        clock: Clock,
        gateway: Arc<Gateway>,
        books: Arc<Mutex<Books>>,
        tags: Vec<String>,
    ) -> Self {
        let seed = s.seed;
        let revs = s
            .revisions
            .iter()
            .enumerate()
            .map(|(i, r)| Rev {
                pods: RevisionPods::new(seed, 0, i),
                kpa: Kpa::new(&s.autoscaler.config, r),
                failure: Arc::new(Mutex::new(r.failure.clone())),
                crash_rng: stream(seed, 0, Stream::FailurePod, i as u64),
            })
            .collect();
        Control {
            s,
            clock,
            now: SimTime::ZERO,
            seq: 0,
            heap: BinaryHeap::new(),
            revs,
            roster: Roster::new(),
            servers: Vec::new(),
            lives: Vec::new(),
            control: RouteControl::new(&s.service, &s.traffic),
            rev_index: s
                .revisions
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name.clone(), i as u32))
                .collect(),
            tags,
            gateway,
            books,
            delay_rng: stream(seed, 0, Stream::IngressDelay, 0),
            warnings: Vec::new(),
            reconcile_at: None,
            endpoints: Arc::new(Endpoints::new(Targets::new(None))),
            pod_metrics: Vec::new(),
            rev_labels: Vec::new(),
            autoscaler_metrics: Arc::new(AutoscalerMetrics::new(&[])),
            analysis: s.analysis.as_ref().map(|run| Analysis {
                run,
                controller: FlaggerController::new(run.settings.clone()),
            }),
        }
    }

    fn schedule(&mut self, at: SimTime, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, ev)));
    }

    /// Revisions running at t = 0 with their pods, the first programming, the ticks.
    async fn start(&mut self) {
        for i in 0..self.revs.len() {
            if self.s.revisions[i].created_at.is_none() {
                self.create_revision(i as u32, true).await;
            }
        }
        // Before the timeline, so a tick and a timeline event at the same instant fire in the
        // simulator's order.
        if let Some(a) = &self.analysis {
            self.schedule(a.run.start, Ev::AnalysisTick);
        }
        for (i, ev) in self.s.timeline.iter().enumerate() {
            self.schedule(ev.at, Ev::Timeline(i as u32));
        }
        for i in 0..self.revs.len() {
            if !self.revs[i].pods.created() {
                continue;
            }
            let r = &mut self.revs[i];
            let ready = r.pods.ready_pods();
            let serve = r.kpa.running_at_start(ready);
            self.gateway.backends[i].lock().serve = serve;
            self.gauge(i, Gauge::DesiredPods, u64::from(ready));
        }
        if let Some(gen) = self.reconcile() {
            self.apply_programming(gen);
            self.reconcile();
        }
        self.schedule(SimTime::ZERO + DECIDER_TICK, Ev::DeciderTick);
        self.schedule(SimTime::ZERO + METRICS_TICK, Ev::MetricsTick);
    }

    /// Plays events at their wall-clock times until the load generator is done or `hard_end`,
    /// and the activator's pokes as they come (after any event already due, so time never runs
    /// backwards).
    async fn run_until<T>(
        &mut self,
        load: &tokio::task::JoinHandle<T>,
        hard_end: SimTime,
        mut pokes: tokio::sync::mpsc::UnboundedReceiver<(u32, ActivatorStat)>,
    ) {
        let mut poked: Vec<(u32, ActivatorStat)> = Vec::new();
        while !load.is_finished() {
            let next = self
                .heap
                .peek()
                .map(|Reverse((at, _, _))| *at)
                .filter(|at| *at <= hard_end);
            if let Some(at) = next {
                if Clock::wall_now() >= self.clock.instant(at) {
                    let Reverse((at, _, ev)) = self.heap.pop().expect("peeked above");
                    self.now = at;
                    self.on_event(ev).await;
                    continue;
                }
            }
            for (rev, stat) in poked.drain(..) {
                self.now = self.now.max(self.clock.now());
                self.poke(rev, stat).await;
            }
            // Wake at the next event, at a poke, or every 50 ms to notice the end of the load.
            let mut nap = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
            if let Some(at) = next {
                nap = nap.min(tokio::time::Instant::from_std(self.clock.instant(at)));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(nap) => {}
                Some(poke) = pokes.recv() => poked.push(poke),
            }
        }
    }

    async fn on_event(&mut self, ev: Ev) {
        match ev {
            Ev::Timeline(i) => self.on_timeline(i as usize).await,
            Ev::AnalysisTick => self.on_analysis_tick(),
            Ev::PodReady(pod) => self.on_pod_ready(pod).await,
            Ev::PodHealthy(pod) => self.on_pod_healthy(pod),
            Ev::PodK8sReady(pod) => self.on_pod_k8s_ready(pod),
            Ev::PodLeavesEndpoints(pod) => self.on_pod_leaves_endpoints(pod),
            Ev::PodCrash(pod) => {
                if self.lives[pod as usize].crash_due(self.now) {
                    self.crash(pod);
                }
            }
            Ev::CrashedLeavesEndpoints { pod, incarnation } => {
                if self.lives[pod as usize].is_current(incarnation) {
                    self.on_pod_leaves_endpoints(pod);
                }
            }
            Ev::PodRestart { pod, incarnation } => {
                if self.lives[pod as usize].is_current(incarnation) {
                    self.restart(pod);
                }
            }
            Ev::IngressProgrammed(gen) => {
                if self.control.is_new(gen) {
                    self.apply_programming(gen);
                    self.reconcile();
                }
            }
            Ev::SksApply { rev, serve, gen } => {
                let mut st = self.gateway.backends[rev as usize].lock();
                if self.revs[rev as usize]
                    .kpa
                    .mode_applied(gen, serve, st.serve, self.now)
                {
                    st.serve = serve;
                }
            }
            Ev::Reconcile => {
                if self.reconcile_at == Some(self.now) {
                    self.reconcile_at = None;
                }
                self.reconcile();
            }
            Ev::MetricsTick => {
                self.on_metrics_tick().await;
                self.schedule(self.now + METRICS_TICK, Ev::MetricsTick);
            }
            Ev::DeciderTick => {
                for rev in 0..self.revs.len() as u32 {
                    if self.revs[rev as usize].pods.created() {
                        self.autoscale(rev).await;
                        if self.s.activator.replicas > 1 {
                            self.reslice(rev);
                        }
                    }
                }
                self.schedule(self.now + DECIDER_TICK, Ev::DeciderTick);
            }
        }
    }

    fn gauge(&self, rev: usize, g: Gauge, value: u64) {
        let now = self.clock.now();
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            rec.gauge(now, rev, g, value);
        }
    }

    fn warn(&mut self, m: String) {
        self.warnings.push(format!("t={}s: {m}", self.now));
    }

    // ------------------------------------------------------------ the route

    /// The configuration's latest ready revision, "" before one is ready.
    fn latest_ready_name(&self) -> &'a str {
        self.roster
            .latest_ready()
            .map(|i| self.s.revisions[i as usize].name.as_str())
            .unwrap_or_default()
    }

    fn reconcile(&mut self) -> Option<u64> {
        let names: Vec<&str> = self.s.revisions.iter().map(|r| r.name.as_str()).collect();
        let latest = self.latest_ready_name();
        let created: Vec<RevisionState<'_>> = self
            .revs
            .iter()
            .zip(&names)
            .filter(|(r, _)| r.pods.created())
            .map(|(r, n)| RevisionState {
                name: n,
                ready: r.pods.ready(),
            })
            .collect();
        let out = self.control.reconcile(self.now, &created, latest);
        if let Some(w) = out.warning {
            self.warn(w);
        }
        if out.program.is_some() {
            for (r, n) in self.revs.iter_mut().zip(&names) {
                r.kpa.set_routed(self.control.reachable(n));
            }
        }
        if let Some(gen) = out.program {
            let delay = self.s.ingress.programming_delay.sample(&mut self.delay_rng);
            self.schedule(self.now + delay, Ev::IngressProgrammed(gen));
        }
        let now = self.clock.now();
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            for change in &out.rollouts {
                match change {
                    RolloutChange::Started(c) => rec.rollout_started(now, c),
                    RolloutChange::Finished(c) => rec.rollout_finished(now, c),
                }
            }
        }
        if let Some(at) = out.next_at {
            if self.reconcile_at.is_none_or(|t| at < t || t < self.now) {
                self.reconcile_at = Some(at);
                self.schedule(at, Ev::Reconcile);
            }
        }
        out.program
    }

    fn apply_programming(&mut self, gen: u64) {
        self.control.programmed(gen);
        let Some(table) = self.control.desired_table() else {
            return;
        };
        let mut guard = self
            .gateway
            .plane
            .lock()
            .expect("plane lock is never poisoned: no code panics while holding it");
        let (plane, changes, warnings) = DataPlane::program(
            &self.control,
            table,
            Some(&guard.0),
            self.s.picker,
            &self.rev_index,
            &self.tags,
        );
        guard.0 = plane;
        drop(guard);
        for w in warnings {
            self.warn(w);
        }
        let now = self.clock.now();
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            for c in changes {
                rec.programmed(now, &c.tag, &c.splits);
            }
        }
    }

    /// One tick of Flagger's analysis job, as in the simulator: measure the canary's windows
    /// (`Books::analysis`), tick the controller at the tick's scenario time, record the
    /// `analysis.csv` row, apply the `spec.traffic` it wrote as a timeline traffic change is
    /// applied, and tick again after the interval while arrivals last.
    fn on_analysis_tick(&mut self) {
        let Some(mut a) = self.analysis.take() else {
            return;
        };
        let latest_ready = self.roster.latest_ready();
        let revs = &self.revs;
        let ticked = {
            let mut books = lock(&self.books);
            let Books {
                recorder, analysis, ..
            } = &mut *books;
            match (recorder.as_mut(), analysis.as_mut()) {
                (Some(rec), Some(book)) => {
                    let t = book.tick(
                        &mut a.controller,
                        self.now,
                        latest_ready,
                        |i| revs[i as usize].pods.ready(),
                        a.run.webhook_results(self.now),
                    );
                    rec.analysis_tick(self.now, &t.csv_row());
                    Some(t)
                }
                // The run is over: nothing more is measured or recorded.
                _ => None,
            }
        };
        let next = self.now + a.run.settings.interval;
        self.analysis = Some(a);
        let Some(ticked) = ticked else {
            return;
        };
        if let Some(write) = &ticked.out.write {
            self.control.set_traffic(&write.to_targets());
            self.reconcile();
        }
        if next <= SimTime::ZERO + self.s.duration {
            self.schedule(next, Ev::AnalysisTick);
        }
    }

    async fn on_timeline(&mut self, i: usize) {
        match &self.s.timeline[i].action {
            Action::CreateRevision(rev) => self.create_revision(*rev as u32, false).await,
            Action::SetTraffic(traffic) => {
                self.control.set_traffic(traffic);
                self.reconcile();
            }
            Action::Kn {
                traffic,
                tags,
                untags,
            } => {
                let names: Vec<&str> = self.s.revisions.iter().map(|r| r.name.as_str()).collect();
                let latest = self.latest_ready_name();
                let created: Vec<&str> = self
                    .revs
                    .iter()
                    .zip(&names)
                    .filter(|(r, _)| r.pods.created())
                    .map(|(_, n)| *n)
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
            Action::Scale { revision, pods } => {
                if self.revs[*revision].pods.created() {
                    self.set_pods(*revision as u32, *pods, false).await;
                } else {
                    let name = self.s.revisions[*revision].name.clone();
                    self.warn(format!("scale of {name} before it was created: ignored"));
                }
            }
            Action::SetRolloutDuration { secs } => {
                self.control.set_rollout_duration(*secs);
                self.reconcile();
            }
            Action::SetFailure { revision, failure } => {
                // The pods see the new settings at their next request; serving containers draw
                // their crash anew (as in the simulator).
                let r = &mut self.revs[*revision];
                *r.failure.lock().expect("failure lock is never poisoned") = failure.clone();
                let serving: Vec<u32> = self
                    .roster
                    .live_pods(&self.revs[*revision].pods)
                    .into_iter()
                    .filter_map(|(p, ready)| ready.then_some(p))
                    .collect();
                for pod in serving {
                    self.draw_crash(pod, self.now);
                }
            }
        }
    }

    // ------------------------------------------------------------ pods

    async fn create_revision(&mut self, rev: u32, at_start: bool) {
        let r = &mut self.revs[rev as usize];
        if !self.roster.create(&mut r.pods) {
            return;
        }
        if let Some(book) = lock(&self.books).analysis.as_mut() {
            book.created(rev);
        }
        let r = &mut self.revs[rev as usize];
        let pods = r.kpa.created(
            self.now,
            self.s.revisions[rev as usize].pods,
            at_start,
            self.s.autoscaler.enabled,
        );
        self.set_pods(rev, pods, at_start).await;
        if at_start && pods > 0 {
            self.roster.revision_ready(&mut self.revs, rev);
        }
    }

    async fn set_pods(&mut self, rev: u32, target: u32, at_start: bool) {
        let live = self.roster.live_pods(&self.revs[rev as usize].pods);
        if (live.len() as u32) < target {
            for _ in live.len() as u32..target {
                let id = self.roster.add_pod(&mut self.revs, rev);
                self.servers.push(None);
                self.lives.push(ContainerLife::new(self.now));
                self.pod_created(rev, id).await;
                if at_start {
                    self.on_pod_ready(id).await;
                } else {
                    let delay = self.revs[rev as usize]
                        .pods
                        .sample(&self.s.revisions[rev as usize].startup);
                    self.schedule(self.now + delay, Ev::PodReady(id));
                }
            }
        } else {
            for pod in scale_down_victims(&live, target) {
                self.terminate(pod);
            }
        }
        self.report_ready(rev);
    }

    fn terminate(&mut self, pod: u32) {
        let removal = &self.s.endpoint_removal_delay;
        if let Some(delay) = self
            .roster
            .terminate_with_removal(&mut self.revs, pod, removal)
        {
            self.schedule(self.now + delay, Ev::PodLeavesEndpoints(pod));
        } else {
            // Never Ready: nothing to drain, the pod is gone at once.
            self.pod_gone(pod);
        }
    }

    fn on_pod_leaves_endpoints(&mut self, pod: u32) {
        let rev = self.roster.leaves_endpoints(&mut self.revs, pod);
        self.server_leaves(rev, pod);
        if self.roster.pod(pod).state == PodState::Terminating {
            self.pod_gone(pod);
        }
        self.reslice(rev);
        self.report_ready(rev);
    }

    /// A new pod: its queue-proxy's metrics endpoint starts with it (the queue-proxy container
    /// runs from the pod's start, before the application is ready).
    async fn pod_created(&mut self, rev: u32, pod: u32) {
        let name = self.pod_name(rev, pod);
        let metrics = Arc::new(QueueProxyMetrics::new(
            &self.rev_labels[rev as usize],
            &name,
        ));
        debug_assert_eq!(self.pod_metrics.len(), pod as usize);
        self.pod_metrics.push(metrics.clone());
        let started = self
            .endpoints
            .start(
                metrics.registry(),
                &self.s.service.namespace,
                &name,
                QUEUE_PROXY_CONTAINER,
            )
            .await;
        if let Err(e) = started {
            self.warn(e);
        }
    }

    /// The pod is gone: its metrics endpoint stops and leaves the target list.
    fn pod_gone(&mut self, pod: u32) {
        let rev = self.roster.pod(pod).rev;
        let name = self.pod_name(rev, pod);
        if let Err(e) = self.endpoints.stop(&name) {
            self.warn(e);
        }
    }

    fn pod_name(&self, rev: u32, pod: u32) -> String {
        format!("{}-pod-{pod}", self.s.revisions[rev as usize].name)
    }

    /// The pod's server stops and leaves the gateway's endpoints.
    fn server_leaves(&mut self, rev: u32, pod: u32) {
        if let Some(server) = &self.servers[pod as usize] {
            let addr = server.addr;
            server.stop();
            let mut st = self.gateway.backends[rev as usize].lock();
            st.endpoints.retain(|a| *a != addr);
            drop(st);
            self.gateway.pool.forget(addr);
        }
    }

    /// Under `crash_after`, when the pod's application, serving from `from`, crashes.
    fn draw_crash(&mut self, pod: u32, from: SimTime) {
        let rev = self.roster.pod(pod).rev as usize;
        let r = &mut self.revs[rev];
        let crash_at = r
            .failure
            .lock()
            .expect("failure lock is never poisoned")
            .crash_at(from, &mut r.crash_rng);
        if let Some(at) = self.lives[pod as usize].arm(crash_at) {
            self.schedule(at, Ev::PodCrash(pod));
        }
    }

    /// The pod's container crashes (as `sim::world::World::crash`): its server answers 502 to
    /// what it holds and gets, it drains out of the endpoints, and the kubelet restarts it
    /// after its back-off.
    fn crash(&mut self, pod: u32) {
        let Some(was_ready) = self.roster.crash(&mut self.revs, pod) else {
            return;
        };
        let rev = self.roster.pod(pod).rev;
        if let Some(server) = &self.servers[pod as usize] {
            server.crash();
        }
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            rec.pod_crashed(self.clock.now(), rev as usize);
        }
        let (incarnation, delay) = self.lives[pod as usize].crashed(self.now);
        if was_ready {
            let removal = self.revs[rev as usize]
                .pods
                .sample(&self.s.endpoint_removal_delay);
            self.schedule(
                self.now + removal,
                Ev::CrashedLeavesEndpoints { pod, incarnation },
            );
        }
        self.schedule(self.now + delay, Ev::PodRestart { pod, incarnation });
        self.report_ready(rev);
    }

    /// The kubelet restarts the crashed container: a new server once its start-up is over.
    fn restart(&mut self, pod: u32) {
        let Some(rev) = self.roster.restart(&mut self.revs, pod) else {
            return;
        };
        self.server_leaves(rev, pod);
        self.servers[pod as usize] = None;
        self.lives[pod as usize].restarted(self.now);
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            rec.pod_restarted(self.clock.now(), rev as usize);
        }
        self.reslice(rev);
        let delay = self.revs[rev as usize]
            .pods
            .sample(&self.s.revisions[rev as usize].startup);
        self.schedule(self.now + delay, Ev::PodReady(pod));
        self.report_ready(rev);
    }

    /// The pod's app is ready: its server starts listening.
    async fn on_pod_ready(&mut self, pod: u32) {
        let PodEntry { rev, state, .. } = *self.roster.pod(pod);
        if state != PodState::Starting {
            return;
        }
        let (crash_loop, ready_before) = {
            let f = self.revs[rev as usize]
                .failure
                .lock()
                .expect("failure lock is never poisoned");
            (f.crash_loop, f.ready_before_serving)
        };
        if crash_loop && self.now > SimTime::ZERO {
            // A crash loop: the container exits as its start-up completes, never Ready.
            self.crash(pod);
            return;
        }
        // Pods running at t = 0 serve already.
        let serving_from = if self.now > SimTime::ZERO {
            self.now + ready_before
        } else {
            self.now
        };
        let incarnation = u64::from(self.lives[pod as usize].incarnation());
        let spec = &self.s.revisions[rev as usize];
        let (workers, ps_cores) = match spec.app {
            AppModel::Workers(n) => (n, None),
            AppModel::ProcessorSharing { cores } => (cores, Some(cores)),
        };
        let backend = self.gateway.backends[rev as usize].clone();
        let gw = self.gateway.clone();
        let on_queue: super::pod::QueueObserver = Arc::new(move |delta| {
            let mut st = backend.lock();
            st.qp_waiting += delta;
            gw.report(&backend, &mut st);
        });
        let config = PodConfig {
            revision: spec.name.clone(),
            name: self.pod_name(rev, pod),
            cc: spec.container_concurrency,
            workers,
            ps_cores,
            timeout: spec.request_deadline(),
            service_time: spec.service_time.clone(),
            // One stream per pod: pods serve concurrently, so a shared stream's draws would
            // be handed out in an order the OS scheduler decides.
            rng: stream(
                self.s.seed,
                0,
                Stream::ServiceTime,
                u64::from(rev) * 1000 + u64::from(pod),
            ),
            clock: self.clock,
            on_queue: Some(on_queue),
            failure: self.revs[rev as usize].failure.clone(),
            // Per pod and container start, like the service times.
            failure_rngs: {
                let index = u64::from(rev) * 1000 + u64::from(pod) + (incarnation << 32);
                (
                    stream(self.s.seed, 0, Stream::FailureApp, index),
                    stream(self.s.seed, 0, Stream::FailureLatency, index),
                )
            },
            serving_from,
            metrics: self.pod_metrics.get(pod as usize).cloned(),
        };
        let server = match Pod::start(config).await {
            Ok(p) => p,
            Err(e) => {
                self.warn(format!("pod {pod} of {} could not start: {e}", spec.name));
                return;
            }
        };
        self.gateway.backends[rev as usize]
            .lock()
            .pod_addrs
            .insert(pod, server.addr);
        self.servers[pod as usize] = Some(server);
        self.roster.app_ready(pod).expect(
            "still Starting: only this control loop changes pods, and it was awaiting the server",
        );
        self.draw_crash(pod, serving_from);
        if self.now == SimTime::ZERO {
            self.on_pod_healthy(pod);
            self.on_pod_k8s_ready(pod);
            return;
        }
        // The activator's probe tick, then Kubernetes readiness after the kubelet phase.
        let tick = next_probe_tick(self.now, self.s.activator.probe_period);
        self.schedule(tick, Ev::PodHealthy(pod));
        let delay = self.revs[rev as usize]
            .pods
            .sample(&self.s.kubelet_ready_delay);
        self.schedule(self.now + delay, Ev::PodK8sReady(pod));
    }

    fn on_pod_k8s_ready(&mut self, pod: u32) {
        let threshold = |r: &Rev, pods| r.kpa.ready_threshold(pods);
        let Some((rev, became_ready)) = self.roster.k8s_ready(&mut self.revs, pod, threshold)
        else {
            return;
        };
        if let Some(server) = &self.servers[pod as usize] {
            self.gateway.backends[rev as usize]
                .lock()
                .endpoints
                .push(server.addr);
        }
        if became_ready && self.now > SimTime::ZERO {
            self.reconcile();
        }
        self.report_ready(rev);
    }

    fn on_pod_healthy(&mut self, pod: u32) {
        if let Some(rev) = self.roster.healthy(&mut self.revs, pod) {
            self.reslice(rev);
        }
    }

    /// The activator subset and each activator's pod slice (kpa.go:354-368,
    /// throttler.go:360-409), as in the simulator; then waiting requests are dispatched.
    fn reslice(&mut self, rev: u32) {
        let r = &self.revs[rev as usize];
        let backend = self.gateway.backends[rev as usize].clone();
        let mut st = backend.lock();
        let ready = r.pods.ready_pods();
        let (subset, slices) =
            r.kpa
                .activator_slices(r.pods.healthy(), ready, st.activators.len() as u32);
        st.subset = subset;
        for (throttler, slice) in st.activators.iter_mut().zip(&slices) {
            throttler.set_pods(slice);
        }
        st.dispatch_all();
        self.gateway.report(&backend, &mut st);
    }

    fn report_ready(&self, rev: u32) {
        let pods = &self.revs[rev as usize].pods;
        self.gauge(rev as usize, Gauge::ReadyPods, u64::from(pods.ready_pods()));
        self.autoscaler_metrics
            .pods(rev as usize, pods.ready_pods(), None);
        let now = self.clock.now();
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            rec.pods(now, rev as usize, u64::from(pods.live_count()));
        }
    }

    // ------------------------------------------------------------ the autoscaler

    /// Every second, as in the simulator: the scraper's stat (requests that went straight to
    /// the pods, only while a pod is Ready) and the activators' report feed each revision's
    /// decider; a report may poke it.
    async fn on_metrics_tick(&mut self) {
        let now = self.now;
        let now_s = self.clock.now().as_secs_f64();
        let mut poked = Vec::new();
        for (i, r) in self.revs.iter_mut().enumerate() {
            if !r.pods.created() {
                continue;
            }
            let mut st = self.gateway.backends[i].lock();
            st.conc_area += st.in_flight as f64 * (now_s - st.conc_last_s).max(0.0);
            st.conc_last_s = now_s;
            let report = st.reporter.report(self.clock.now());
            let direct = (st.conc_area - report.request_seconds).max(0.0);
            let average = direct / METRICS_TICK.as_secs_f64();
            st.conc_area = 0.0;
            let requests = std::mem::take(&mut st.requests_since_tick);
            let replicas = st.replica_concurrency(now_s, METRICS_TICK.as_secs_f64());
            drop(st);
            for (a, c) in replicas.into_iter().enumerate() {
                if let (Some(c), Some(m)) = (c, self.gateway.activator_metrics.get(a)) {
                    m.concurrency(i, c);
                }
            }
            let direct_requests = requests.saturating_sub(report.requests);
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
            self.autoscale(rev).await;
        }
    }

    /// The activator's immediate stat for a revision it had no entry for: recorded, and a
    /// revision at zero decides at once (`multiscaler.go:352-364`), as in the simulator.
    async fn poke(&mut self, rev: u32, stat: ActivatorStat) {
        let now = self.now;
        let r = &mut self.revs[rev as usize];
        if r.pods.created() && r.kpa.record_activator(now, stat) {
            self.autoscale(rev).await;
        }
    }

    async fn autoscale(&mut self, rev: u32) {
        let now = self.now;
        let live = self.roster.live_pods(&self.revs[rev as usize].pods).len() as u32;
        let r = &mut self.revs[rev as usize];
        let ready = r.pods.ready_pods();
        let tick = r.kpa.tick(now, ready, live, self.s.autoscaler.enabled);
        if let Some(gen) = tick.mode_change {
            let delay = self.s.ingress.programming_delay.sample(&mut self.delay_rng);
            self.schedule(
                now + delay,
                Ev::SksApply {
                    rev,
                    serve: tick.serve,
                    gen,
                },
            );
        }
        let replicas = tick.replicas;
        let m = &self.autoscaler_metrics;
        if tick.result.is_valid() {
            let (metric, target) = self.revs[rev as usize].kpa.scaling_target();
            m.decided(
                rev as usize,
                &Decision {
                    desired_pods: tick.result.desired_pods,
                    excess_burst_capacity: tick.result.excess_burst_capacity,
                    stable: tick.result.stable,
                    panic: tick.result.panic,
                    target,
                    rps: metric == ScalingMetric::Rps,
                },
            );
        }
        m.panic_mode(rev as usize, tick.result.in_panic);
        m.pods(rev as usize, ready, Some(replicas.unwrap_or(live)));
        let t = self.clock.now();
        if let Some(rec) = lock(&self.books).recorder.as_mut() {
            rec.autoscaler_tick(
                t,
                rev as usize,
                &AutoscalerTick::new(&tick.result, ready, tick.serve),
            );
            if let Some(n) = replicas {
                if n != live && live == 0 && ready == 0 && n > 0 {
                    rec.cold_start(t, rev as usize);
                }
            }
        }
        if let Some(n) = replicas {
            if n != live {
                self.set_pods(rev, n, false).await;
            }
        }
        self.gauge(
            rev as usize,
            Gauge::DesiredPods,
            u64::from(replicas.unwrap_or(live)),
        );
    }
}
