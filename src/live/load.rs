//! The load generator: open loop, honest timing, every request counted once.
//!
//! - **Pacing.** Arrival times come from `model::arrival::ArrivalGen`, the code that drives the
//!   simulator. A dedicated OS thread sleeps until each arrival's wall-clock instant and hands
//!   the request to the runtime; it never waits for responses, so a slow server cannot slow the
//!   offered load (no coordinated omission).
//! - **Timing.** Latency is measured from the *intended* send time. The lag between the intended
//!   time and the moment the request's task starts is kept in its own HDR histogram
//!   (`send_lag_us` in `load.json`), so the pacer's accuracy is measured, not assumed.
//! - **Executors.** `Executor::Open` runs one task per request over a pool of at most
//!   `connections` keep-alive connections (a request that finds them all busy waits for one, and
//!   that wait counts in its latency). `Executor::Closed` (unlimited rate) runs `connections`
//!   workers that each send back to back on their own connection, as wrk and oha do. A
//!   connection (`client::Conn`) speaks HTTP/1.1 or HTTP/2, in cleartext or over TLS, and
//!   carries one request at a time either way, so both executors mean the same with HTTP/2.
//! - **Accounting.** A request is counted when it is created (`arrived`) and ends in exactly one
//!   outcome: served (by a revision/label), 503 from a queue-proxy, 504 by source, client
//!   timeout, error (connection error, other statuses; the cause is counted in `load.json`), or
//!   in flight when the run ended. Recording happens under the recorder's lock, and the run's
//!   end takes the recorder out under the same lock, so a late response can never be counted
//!   twice or after the report was made.
//! - **Bounds.** Arrivals stop at the duration or after `max_requests`; the run then waits at
//!   most `drain` for requests in flight; `max_in_flight` caps memory (a request beyond it ends
//!   at once as an error, cause `client in-flight cap`). A stop signal ends pacing at once. A
//!   pacer that falls more than `drain` behind its schedule (a rate this machine cannot create
//!   requests at) stops creating them and says so (`pacer_fell_behind_at_s`), so a run always
//!   ends within about duration + 2 × drain.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode};
use regex::Regex;
use tokio::sync::Semaphore;

use super::client::{self, Conn, ConnPool, Transport};
use super::clock::Clock;
use super::h1;
use super::http::{
    full, ACTIVATOR_TIMEOUT_BODY, APP_ERROR_BODY, CLIENT_HEADER, QP_APP_CRASHED_BODY,
    QP_APP_REFUSED_BODY, QP_TIMEOUT_BODY, QUEUE_FULL_BODY, REVISION_HEADER, TAG_HEADER,
};
use crate::model::arrival::{Address, ArrivalGen};
use crate::model::rng::StreamRng;
use crate::model::time::{SimDuration, SimTime};
use crate::report::analysis::CanaryBook;
use crate::report::record::{Outcome, RequestRecord};
use crate::report::run::{EngineStats, RunParts, RunRecorder, RunReport};

/// The request header carrying the load generator's request id (the in-process gateway uses it
/// to tell the recorder where it routed each request).
pub const REQUEST_ID_HEADER: &str = "splitlab-request-id";

/// Where requests go and what they look like.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// Path and query, e.g. `/`.
    pub path: String,
    /// `Host` header of requests to the main address.
    pub host: String,
    /// Per arrival tag (`ArrivalGen::tags`), the tag's own host.
    pub tag_hosts: Vec<String>,
    /// Per arrival tag, the tag name sent in `Knative-Serving-Tag` (on the main host).
    pub tag_names: Vec<String>,
    pub method: Method,
    /// Sent after the defaults (`Host`, the tag header), replacing a default of the same name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// HTTP/1.1, h2c, or TLS (`client::Transport`).
    pub transport: Transport,
}

impl Target {
    /// A `GET` of `path` at `addr` with `Host: host`, no tags, no extra headers, no body.
    pub fn new(addr: SocketAddr, path: String, host: String) -> Self {
        Target {
            addr,
            path,
            host,
            tag_hosts: vec![],
            tag_names: vec![],
            method: Method::GET,
            headers: vec![],
            body: Bytes::new(),
            transport: Transport::Http1,
        }
    }

    /// The `Host` of requests to the main address: a `Host` among the extra headers (which
    /// replace defaults, as every extra header does), else `host`. Over TLS it is also the
    /// server name; over HTTP/2 the `:authority`.
    pub fn main_host(&self) -> &str {
        self.host_override().unwrap_or(&self.host)
    }

    fn host_override(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == HOST)
            .and_then(|(_, v)| v.to_str().ok())
    }

    fn host_and_tag(&self, address: Address) -> (&str, Option<&str>) {
        let (host, tag) = match address {
            Address::Main => (self.host.as_str(), None),
            Address::Host(i) => (self.tag_hosts[i as usize].as_str(), None),
            Address::Header(i) => (
                self.host.as_str(),
                Some(self.tag_names[i as usize].as_str()),
            ),
        };
        (self.host_override().unwrap_or(host), tag)
    }
}

/// The targets of one run and how requests are spread over them: request `id` goes to
/// `cycle[id % cycle.len()]`, a smooth weighted round robin (nginx's), so the shares are exact
/// over every cycle and interleaved within it, whatever the executor.
#[derive(Clone, Debug)]
pub struct Targets {
    pub list: Vec<Target>,
    /// Per target, its label in the outputs (`load.json` `targets`, `--results`, `--check`);
    /// empty for a run with the single `--target`.
    pub names: Vec<String>,
    cycle: Vec<u32>,
    /// Per target, its endpoint: targets with the same address and transport share one, and
    /// share connections.
    endpoint_of: Vec<usize>,
    endpoints: usize,
}

/// Numbers the distinct (address, transport) pairs of `list`, in order of first appearance.
fn endpoints_of(list: &[Target]) -> (Vec<usize>, usize) {
    let mut firsts: Vec<&Target> = Vec::new();
    let of = list
        .iter()
        .map(|t| {
            match firsts
                .iter()
                .position(|f| f.addr == t.addr && f.transport.same_as(&t.transport))
            {
                Some(i) => i,
                None => {
                    firsts.push(t);
                    firsts.len() - 1
                }
            }
        })
        .collect();
    (of, firsts.len())
}

/// The most a targets file's weights may add up to (the round-robin cycle's length).
pub const MAX_TOTAL_WEIGHT: u32 = 1_000_000;

impl Targets {
    /// One target, unnamed.
    pub fn single(target: Target) -> Self {
        Targets {
            list: vec![target],
            names: vec![],
            cycle: vec![0],
            endpoint_of: vec![0],
            endpoints: 1,
        }
    }

    /// Named targets with positive weights adding up to at most `MAX_TOTAL_WEIGHT`.
    ///
    /// # Panics
    /// If `targets` is empty, a weight is 0 or the weights add up to more than the cap (the
    /// caller validates them).
    pub fn weighted(targets: Vec<(String, Target, u32)>) -> Self {
        assert!(!targets.is_empty(), "at least one target");
        let weights: Vec<i64> = targets.iter().map(|(_, _, w)| i64::from(*w)).collect();
        assert!(weights.iter().all(|w| *w > 0), "weights are positive");
        let total: i64 = weights.iter().sum();
        assert!(
            total <= i64::from(MAX_TOTAL_WEIGHT),
            "weights within the cap"
        );
        let mut current = vec![0i64; weights.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .expect("not empty");
            current[best] -= total;
            cycle.push(best as u32);
        }
        let (names, list): (Vec<String>, Vec<Target>) =
            targets.into_iter().map(|(n, t, _)| (n, t)).unzip();
        let (endpoint_of, endpoints) = endpoints_of(&list);
        Targets {
            list,
            names,
            cycle,
            endpoint_of,
            endpoints,
        }
    }

    /// The target of request `id`.
    pub fn pick(&self, id: u64) -> usize {
        self.cycle[(id % self.cycle.len() as u64) as usize] as usize
    }
}

/// How a response is attributed to a revision (a "label").
#[derive(Clone, Debug)]
pub enum Classifier {
    /// By the value of a response header; unknown values go to `other`.
    Header {
        name: String,
        labels: HashMap<String, usize>,
        other: usize,
    },
    /// By the first body pattern that matches; no match goes to `other`.
    Body {
        patterns: Vec<(Regex, usize)>,
        other: usize,
    },
}

impl Classifier {
    /// Knative's own responses: the `Knative-Serving-Revision` header, labels = revisions.
    pub fn revision_header(revisions: &[String]) -> Classifier {
        Classifier::Header {
            name: REVISION_HEADER.to_string(),
            labels: revisions
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone(), i))
                .collect(),
            other: usize::MAX,
        }
    }

    fn label(&self, headers: &HeaderMap, body: &[u8]) -> Option<usize> {
        let found = match self {
            Classifier::Header {
                name,
                labels,
                other,
            } => headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| labels.get(v).copied().unwrap_or(*other)),
            Classifier::Body { patterns, other } => {
                let text = String::from_utf8_lossy(body);
                Some(
                    patterns
                        .iter()
                        .find(|(re, _)| re.is_match(&text))
                        .map_or(*other, |(_, l)| *l),
                )
            }
        };
        found.filter(|l| *l != usize::MAX)
    }
}

/// The outcome a response means (datapath.md (c)): 2xx served; 503 `pending request queue
/// full`: the queue-proxy rejected it; 504 `activator request timeout` / `request timeout`:
/// expired at the activator / the queue-proxy; a 5xx with the application's error body: the
/// application's error (`app_error`); 502 with the queue-proxy's dial or EOF error: its
/// application was not listening or crashed (`bad_gateway`); anything else an error.
pub fn outcome_of(status: StatusCode, body: &[u8]) -> Outcome {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    match status.as_u16() {
        200..=299 => Outcome::Served,
        503 if body == QUEUE_FULL_BODY.trim_end().as_bytes() => Outcome::RejectedQp,
        504 if body == ACTIVATOR_TIMEOUT_BODY.as_bytes() => Outcome::ExpiredActivator,
        504 if body == QP_TIMEOUT_BODY.as_bytes() => Outcome::ExpiredQp,
        502 if body == QP_APP_REFUSED_BODY.as_bytes() || body == QP_APP_CRASHED_BODY.as_bytes() => {
            Outcome::BadGateway
        }
        500..=599 if body == APP_ERROR_BODY.trim_end().as_bytes() => Outcome::AppError,
        _ => Outcome::Error,
    }
}

/// Where the in-process gateway routed each request, by request id (live mode only): lets the
/// recorder attribute every outcome, including client timeouts and requests in flight at the
/// end, to the revision the ingress chose, as the simulator does.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: HashMap<u64, Entry>,
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    Routed {
        revision: u32,
        default_group: bool,
        via_activator: bool,
    },
    /// The client finished before the gateway routed it: the gateway must not count it.
    Done,
}

/// The recorder and the ledger, behind one lock. `None` once the run has ended.
pub struct Books {
    pub recorder: Option<RunRecorder>,
    pub ledger: Ledger,
    /// Requests created and not ended.
    pub in_flight: u64,
    /// Flagger's measurements in `splitlab live` (fed with every request recorded as finished
    /// by a revision, under the same lock, so the analysis counts exactly what the run counts).
    pub analysis: Option<CanaryBook>,
}

impl Books {
    pub fn new(recorder: RunRecorder) -> Arc<Mutex<Books>> {
        Arc::new(Mutex::new(Books {
            recorder: Some(recorder),
            ledger: Ledger::default(),
            in_flight: 0,
            analysis: None,
        }))
    }

    /// The gateway routed request `id` to `revision` at `t`; false when it must not be counted
    /// (the run is over or the client already gave up on it).
    pub fn routed(&mut self, id: u64, t: SimTime, revision: u32, default_group: bool) -> bool {
        let Some(rec) = self.recorder.as_mut() else {
            return false;
        };
        if let Some(Entry::Done) = self.ledger.entries.get(&id) {
            self.ledger.entries.remove(&id);
            return false;
        }
        rec.routed(t, revision as usize, default_group);
        self.ledger.entries.insert(
            id,
            Entry::Routed {
                revision,
                default_group,
                via_activator: false,
            },
        );
        true
    }

    /// The gateway's activator took request `id` (it had no ready capacity to go straight to).
    pub fn via_activator(&mut self, id: u64) {
        if let Some(Entry::Routed { via_activator, .. }) = self.ledger.entries.get_mut(&id) {
            *via_activator = true;
        }
    }
}

/// Locks the books (never poisoned: nothing panics while holding the lock).
pub fn lock(books: &Mutex<Books>) -> std::sync::MutexGuard<'_, Books> {
    books
        .lock()
        .expect("books lock is never poisoned: no code panics while holding it")
}

/// How requests are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Executor {
    /// Paced by the arrival process, over at most this many connections.
    Open { connections: usize },
    /// As fast as possible: this many workers, each with its own connection.
    Closed { connections: usize },
}

/// One load run.
pub struct LoadPlan {
    pub arrivals: ArrivalGen,
    pub rng: StreamRng,
    /// Arrivals are created over `[0, duration)`.
    pub duration: SimDuration,
    pub max_requests: Option<u64>,
    /// After the last arrival, how long requests in flight may take to end.
    pub drain: SimDuration,
    pub client_timeout: Option<SimDuration>,
    pub executor: Executor,
    pub max_in_flight: u64,
    /// Whether the recorder's `routed` is fed here (from the response's label) rather than by an
    /// in-process gateway.
    pub record_routing: bool,
}

/// What one group of requests (the run, a label, a target) got: counts, statuses and the
/// latency of its served requests (from the intended send time, microseconds).
#[derive(Clone, Debug)]
pub struct GroupStats {
    /// Requests sent to a target; responses attributed to a label; every request overall.
    pub requests: u64,
    pub served: u64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    pub latency_us: Histogram<u64>,
    pub latency_sum_us: u128,
    pub latency_max_us: u64,
}

impl Default for GroupStats {
    fn default() -> Self {
        GroupStats {
            requests: 0,
            served: 0,
            statuses: BTreeMap::new(),
            latency_us: Histogram::new(3).expect("3 significant digits is valid"),
            latency_sum_us: 0,
            latency_max_us: 0,
        }
    }
}

impl GroupStats {
    fn ended(&mut self, status: Option<u16>, served_us: Option<u64>) {
        if let Some(s) = status {
            *self.statuses.entry(s).or_default() += 1;
        }
        if let Some(us) = served_us {
            self.served += 1;
            if self.latency_us.record(us).is_err() {
                self.latency_us.saturating_record(us);
            }
            self.latency_sum_us += u128::from(us);
            self.latency_max_us = self.latency_max_us.max(us);
        }
    }
}

/// Figures about the load generator itself (`load.json`).
#[derive(Debug)]
pub struct LoadStats {
    pub sent: u64,
    /// Every request's statuses and served latency (requests: those that ended).
    pub overall: GroupStats,
    /// By classifier label (index as the recorder's revisions).
    pub labels: BTreeMap<usize, GroupStats>,
    /// By target (index as `Targets::list`); empty for a single unnamed target.
    pub targets: BTreeMap<usize, GroupStats>,
    /// Intended send time to the start of the request's task, microseconds.
    pub send_lag_us: Histogram<u64>,
    /// Error outcomes by cause (`HTTP 502`, `connect: …`, `client in-flight cap`).
    pub error_causes: BTreeMap<String, u64>,
    /// Wall time from the start to the last arrival, seconds.
    pub pacing_wall_s: f64,
    /// When the pacer fell more than the drain behind and stopped: the intended time (seconds)
    /// of the first request it did not create.
    pub pacer_fell_behind_at_s: Option<f64>,
    /// Connections opened, by the protocol they speak (`client::Protocol::name`).
    pub connections: BTreeMap<&'static str, u64>,
}

impl Default for LoadStats {
    fn default() -> Self {
        LoadStats {
            sent: 0,
            overall: GroupStats::default(),
            labels: BTreeMap::new(),
            targets: BTreeMap::new(),
            send_lag_us: Histogram::new(3).expect("3 significant digits is valid"),
            error_causes: BTreeMap::new(),
            pacing_wall_s: 0.0,
            pacer_fell_behind_at_s: None,
            connections: BTreeMap::new(),
        }
    }
}

/// What a finished load run hands back: the recorder (taken out of the books at the end) and
/// the in-flight requests at that moment.
pub struct LoadResult {
    pub recorder: RunRecorder,
    pub end: SimTime,
    /// Per revision, requests routed to it and not ended; then those not routed.
    pub in_flight_by_revision: Vec<u64>,
    pub unrouted_in_flight: u64,
    pub stats: LoadStats,
    pub interrupted: bool,
    /// `--results`: the lines written, or why writing stopped.
    pub results: Option<Result<u64, String>>,
}

impl LoadResult {
    /// Closes the recorder into the run's report (`wall_s`: the wall time to report), keeping
    /// the load generator's own figures.
    pub fn report(self, wall_s: f64) -> (RunReport, LoadStats, bool) {
        let (report, _, stats, interrupted) = self.report_parts(wall_s);
        (report, stats, interrupted)
    }

    /// [`LoadResult::report`], and the run's mergeable parts when the recorder kept its
    /// windows' histograms (`load --shard`, `RunRecorder::keep_window_histograms`).
    pub fn report_parts(self, wall_s: f64) -> (RunReport, Option<RunParts>, LoadStats, bool) {
        // `results` is read before this by whoever wants it.
        let engine = EngineStats {
            events: self.stats.sent,
            wall_s,
            sim_s: self.end.as_secs_f64(),
        };
        let (report, parts) = self.recorder.finish_parts(
            self.end,
            &self.in_flight_by_revision,
            self.unrouted_in_flight,
            engine,
        );
        (report, parts, self.stats, self.interrupted)
    }
}

struct Shared {
    clock: Clock,
    targets: Targets,
    /// Per target, its path parsed once (a request's URI is a clone: no parse per request),
    /// or the error its requests fail with.
    uris: Vec<Result<hyper::Uri, String>>,
    results: Option<Mutex<ResultsWriter>>,
    /// The classifier's labels by index (the recorder's revisions).
    label_names: Vec<String>,
    classifier: Classifier,
    books: Arc<Mutex<Books>>,
    stats: Mutex<LoadStats>,
    /// Requests the recorder has counted whose `stats` and `--results` line are not in yet
    /// (raised under the books lock, lowered once they are in): the end of the run waits for
    /// none before it reads `stats`, so both count every request the recorder counted.
    settling: AtomicU64,
    record_routing: bool,
    client_timeout: Option<Duration>,
    conns: Semaphore,
    pool: ConnPool,
    /// Per target, its requests for the lean HTTP/1.1 client (`h1`), if it can send them.
    lean: Vec<Option<LeanRequests>>,
    /// The response headers the lean client keeps: what `finish` reads.
    keep: Vec<HeaderName>,
}

/// A target's requests prepared for the lean HTTP/1.1 client, one per address.
struct LeanRequests {
    main: h1::RequestTemplate,
    /// Per arrival tag: to the tag's host, and to the main host with the tag header.
    hosts: Vec<h1::RequestTemplate>,
    tags: Vec<h1::RequestTemplate>,
}

impl LeanRequests {
    /// `None` when the target's requests need hyper (`h1::NotLean`) or its path did not parse
    /// (its requests fail on the way, as before).
    fn of(target: &Target, uri: &Result<hyper::Uri, String>) -> Option<Self> {
        if matches!(target.transport, Transport::H2c) {
            return None;
        }
        let path = uri.as_ref().ok()?.to_string();
        let make = |address: Address| {
            let (host, tag) = target.host_and_tag(address);
            h1::RequestTemplate::new(
                &target.method,
                &path,
                host,
                tag.map(|t| (TAG_HEADER, t)),
                (REQUEST_ID_HEADER, CLIENT_HEADER),
                &target.headers,
                target.body.clone(),
            )
            .ok()
        };
        Some(LeanRequests {
            main: make(Address::Main)?,
            hosts: (0..target.tag_hosts.len())
                .map(|i| make(Address::Host(u16::try_from(i).ok()?)))
                .collect::<Option<_>>()?,
            tags: (0..target.tag_names.len())
                .map(|i| make(Address::Header(u16::try_from(i).ok()?)))
                .collect::<Option<_>>()?,
        })
    }

    fn get(&self, address: Address) -> Option<&h1::RequestTemplate> {
        match address {
            Address::Main => Some(&self.main),
            Address::Host(i) => self.hosts.get(i as usize),
            Address::Header(i) => self.tags.get(i as usize),
        }
    }
}

/// Runs `plan` against `target` on the current runtime and returns when arrivals are over and
/// requests have drained (or `stop` was set). `books` holds the recorder to feed.
pub async fn run(
    plan: LoadPlan,
    targets: Targets,
    results: Option<ResultsWriter>,
    classifier: Classifier,
    clock: Clock,
    books: Arc<Mutex<Books>>,
    stop: Arc<AtomicBool>,
) -> LoadResult {
    let connections = match plan.executor {
        Executor::Open { connections } | Executor::Closed { connections } => connections.max(1),
    };
    let label_names = lock(&books)
        .recorder
        .as_ref()
        .map(|r| r.revision_names().to_vec())
        .unwrap_or_default();
    let uris: Vec<Result<hyper::Uri, String>> = targets
        .list
        .iter()
        .map(|t| t.path.parse().map_err(|e| format!("bad path: {e}")))
        .collect();
    // What `finish` reads of a response: the classifier's header and gRPC's status.
    let mut keep = vec![super::http::GRPC_STATUS_NAME.clone()];
    if let Classifier::Header { name, .. } = &classifier {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            keep.push(n);
        }
    }
    let shared = Arc::new(Shared {
        label_names,
        clock,
        results: results.map(Mutex::new),
        classifier,
        books,
        stats: Mutex::new(LoadStats::default()),
        settling: AtomicU64::new(0),
        record_routing: plan.record_routing,
        client_timeout: plan.client_timeout.map(|t| clock.wall(t)),
        conns: Semaphore::new(connections),
        pool: ConnPool::new(targets.endpoints),
        lean: targets
            .list
            .iter()
            .zip(&uris)
            .map(|(t, u)| LeanRequests::of(t, u))
            .collect(),
        keep,
        uris,
        targets,
    });
    let end_of_arrivals = SimTime::ZERO + plan.duration;
    let max_requests = plan.max_requests.unwrap_or(u64::MAX);
    match plan.executor {
        Executor::Open { .. } => {
            let handle = tokio::runtime::Handle::current();
            let pacer_shared = shared.clone();
            let pacer_stop = stop.clone();
            let max_in_flight = plan.max_in_flight;
            // A pacer more than the drain behind its schedule (a rate the machine cannot
            // create requests at) stops: the run ends within duration + drain (+ drain).
            let give_up = shared.clock.instant(end_of_arrivals + plan.drain);
            let LoadPlan {
                mut arrivals,
                mut rng,
                ..
            } = plan;
            // The pacer is a blocking thread: it sleeps until each intended instant, in slices
            // of at most 50 ms so a stop signal is seen at once, with a timer slack of 1 ns.
            let pacer = tokio::task::spawn_blocking(move || {
                let _slack = TimerSlack::precise();
                let mut id = 0u64;
                'arrivals: while id < max_requests {
                    let Some(a) = arrivals.next(&mut rng) else {
                        break;
                    };
                    let intended = pacer_shared.clock.instant(a.at);
                    loop {
                        if pacer_stop.load(Ordering::Relaxed) {
                            break 'arrivals;
                        }
                        let now = Clock::wall_now();
                        if now >= intended {
                            if now > give_up {
                                lock_stats(&pacer_shared.stats).pacer_fell_behind_at_s =
                                    Some(a.at.as_secs_f64());
                                break 'arrivals;
                            }
                            break;
                        }
                        std::thread::sleep((intended - now).min(Duration::from_millis(50)));
                    }
                    if pacer_shared.arrive(id, a.at, max_in_flight) {
                        let s = pacer_shared.clone();
                        handle.spawn(async move { s.one(id, a.address, a.client, intended).await });
                    }
                    id += 1;
                }
                pacer_shared.clock.wall_elapsed_s()
            });
            let pacing_wall_s = pacer.await.expect("the pacer does not panic");
            lock_stats(&shared.stats).pacing_wall_s = pacing_wall_s;
        }
        Executor::Closed { connections } => {
            let next = Arc::new(AtomicU64::new(0));
            let deadline = shared.clock.instant(end_of_arrivals);
            let mut workers = Vec::with_capacity(connections);
            for _ in 0..connections {
                let s = shared.clone();
                let next = next.clone();
                let stop = stop.clone();
                workers.push(tokio::spawn(async move {
                    let mut conn: Option<Conn> = None;
                    let mut conn_endpoint = usize::MAX;
                    loop {
                        let now = Clock::wall_now();
                        if now >= deadline || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id >= max_requests {
                            break;
                        }
                        let at = s.clock.at(now);
                        if !s.arrive(id, at, u64::MAX) {
                            break;
                        }
                        // Sent now, as created: a closed loop has no intended time to lag.
                        lock_stats(&s.stats).sent += 1;
                        let target = s.targets.pick(id);
                        let endpoint = s.targets.endpoint_of[target];
                        if endpoint != conn_endpoint {
                            conn = None;
                        }
                        conn_endpoint = endpoint;
                        // Each request its own client, as arrivals without `clients` have.
                        let result = s
                            .exchange_on(&mut conn, target, Address::Main, id, id)
                            .await;
                        s.finish(id, target, at, result);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
            lock_stats(&shared.stats).pacing_wall_s = shared.clock.wall_elapsed_s();
        }
    }
    // Drain: wait for what is in flight, at most `drain`, polling every 10 ms.
    let drain_until = Clock::wall_now() + shared.clock.wall(plan.drain);
    while !stop.load(Ordering::Relaxed) && Clock::wall_now() < drain_until {
        if lock(&shared.books).in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A run stopped by its request count ends when it stopped: its duration bound (ten minutes
    // for a closed loop) is not how long it ran.
    let end = if max_requests == u64::MAX {
        shared.clock.now().max(end_of_arrivals)
    } else {
        shared.clock.now()
    };
    let (recorder, in_flight_by_revision, unrouted_in_flight) = {
        let mut books = lock(&shared.books);
        let recorder = books
            .recorder
            .take()
            .expect("the recorder is taken once, at the end of the run");
        let revisions = recorder.revision_count();
        let mut in_flight_by_revision = vec![0u64; revisions];
        let mut routed_in_flight = 0;
        for entry in books.ledger.entries.values() {
            if let Entry::Routed { revision, .. } = entry {
                in_flight_by_revision[*revision as usize] += 1;
                routed_in_flight += 1;
            }
        }
        (
            recorder,
            in_flight_by_revision,
            books.in_flight - routed_in_flight,
        )
    };
    // No request starts settling once the recorder is gone; those that had finish at once
    // (no await between the raise and the lowering).
    while shared.settling.load(Ordering::Acquire) != 0 {
        tokio::task::yield_now().await;
    }
    let stats = std::mem::take(&mut *lock_stats(&shared.stats));
    LoadResult {
        recorder,
        end,
        in_flight_by_revision,
        unrouted_in_flight,
        stats,
        interrupted: stop.load(Ordering::Relaxed),
        results: results_outcome(shared.results.as_ref()),
    }
}

/// The calling thread's timer slack set to 1 ns while it lives (Linux): the default 50 µs lets
/// the kernel end each of the pacer's sleeps up to 50 µs late, the whole of its send lag on an
/// idle machine. The previous slack comes back on drop (the pacer runs on a pooled thread).
struct TimerSlack {
    #[cfg(target_os = "linux")]
    previous: Option<libc::c_ulong>,
}

impl TimerSlack {
    fn precise() -> Self {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_TIMERSLACK and PR_SET_TIMERSLACK read and set an integer of the
            // calling thread; no memory is passed.
            let previous = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
            let set = previous >= 0
                && unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) }
                    == 0;
            TimerSlack {
                previous: set.then_some(previous as libc::c_ulong),
            }
        }
        #[cfg(not(target_os = "linux"))]
        TimerSlack {}
    }
}

impl Drop for TimerSlack {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(previous) = self.previous {
            // SAFETY: as in `precise`.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, previous, 0, 0, 0) };
        }
    }
}

/// `--results`: one JSON line per ended request, written as it ends and flushed at once, so a
/// run killed at any moment leaves every line it finished (the file is a stream, not an
/// atomic output). The first write error stops the writing and is reported at the end.
pub struct ResultsWriter {
    out: std::io::BufWriter<std::fs::File>,
    lines: u64,
    failed: Option<std::io::Error>,
}

/// One `--results` line.
#[derive(serde::Serialize)]
struct ResultLine<'a> {
    id: u64,
    /// The intended send time, seconds from the start of the run.
    intended_s: f64,
    /// From the intended send time to the end.
    latency_ms: f64,
    status: Option<u16>,
    outcome: &'static str,
    /// The classifier's label (a revision).
    label: Option<&'a str>,
    /// The target's name (a targets file).
    target: Option<&'a str>,
    error: Option<&'a str>,
}

impl ResultsWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(ResultsWriter {
            out: std::io::BufWriter::new(std::fs::File::create(path)?),
            lines: 0,
            failed: None,
        })
    }

    fn write(&mut self, line: &ResultLine<'_>) {
        use std::io::Write as _;
        if self.failed.is_some() {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        match written {
            Ok(()) => self.lines += 1,
            Err(e) => self.failed = Some(e),
        }
    }
}

/// What `--results` wrote: the lines, or the error that stopped it.
pub fn results_outcome(w: Option<&Mutex<ResultsWriter>>) -> Option<Result<u64, String>> {
    let w = lock_results(w?);
    Some(match &w.failed {
        None => Ok(w.lines),
        Some(e) => Err(format!("stopped after {} lines: {e}", w.lines)),
    })
}

fn lock_results(m: &Mutex<ResultsWriter>) -> std::sync::MutexGuard<'_, ResultsWriter> {
    m.lock()
        .expect("results lock is never poisoned: no code panics while holding it")
}

/// One request counted by the recorder whose other counts are not in yet (`Shared::settling`),
/// until dropped. Raised while the books lock is held.
struct Settling<'a>(&'a AtomicU64);

impl<'a> Settling<'a> {
    fn raise(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Settling(count)
    }
}

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

fn lock_stats(m: &Mutex<LoadStats>) -> std::sync::MutexGuard<'_, LoadStats> {
    m.lock()
        .expect("stats lock is never poisoned: no code panics while holding it")
}

/// What an exchange produced.
enum Exchanged {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        trailers: Option<Box<HeaderMap>>,
        body: Bytes,
    },
    Failed(String),
    TimedOut,
}

impl Shared {
    /// A request is created at `at`; false when it ended at once (the in-flight cap).
    fn arrive(&self, id: u64, at: SimTime, max_in_flight: u64) -> bool {
        let mut books = lock(&self.books);
        let over_cap = books.in_flight >= max_in_flight;
        let Some(rec) = books.recorder.as_mut() else {
            return false;
        };
        rec.arrived(at);
        // Only a request with counts to add after the lock settles (most add none here).
        let _settling =
            (over_cap || !self.targets.names.is_empty()).then(|| Settling::raise(&self.settling));
        if over_cap {
            rec.finished(&RequestRecord {
                id,
                arrived: at,
                finished: at,
                revision: None,
                default_group: false,
                via_activator: false,
                outcome: Outcome::Error,
            });
            drop(books);
            *lock_stats(&self.stats)
                .error_causes
                .entry("client in-flight cap".into())
                .or_default() += 1;
            return false;
        }
        books.in_flight += 1;
        drop(books);
        if !self.targets.names.is_empty() {
            lock_stats(&self.stats)
                .targets
                .entry(self.targets.pick(id))
                .or_default()
                .requests += 1;
        }
        true
    }

    /// One paced request.
    async fn one(self: Arc<Self>, id: u64, address: Address, client: u64, intended: Instant) {
        let target = self.targets.pick(id);
        let started = Clock::wall_now();
        let lag_us = started.saturating_duration_since(intended).as_micros() as u64;
        {
            let mut st = lock_stats(&self.stats);
            st.sent += 1;
            let _ = st.send_lag_us.record(lag_us);
        }
        let work = async {
            let Ok(_permit) = self.conns.acquire().await else {
                return Exchanged::Failed("client closed".into());
            };
            let endpoint = self.targets.endpoint_of[target];
            let mut conn = self.pool.idle(endpoint);
            let result = self
                .exchange_on(&mut conn, target, address, client, id)
                .await;
            if let Some(c) = conn {
                self.pool.give_back(endpoint, c);
            }
            result
        };
        let result = match self.client_timeout {
            Some(t) => tokio::time::timeout_at((intended + t).into(), work)
                .await
                .unwrap_or(Exchanged::TimedOut),
            None => work.await,
        };
        self.finish(id, target, self.clock.at(intended), result);
    }

    /// Sends one request on `conn` (opening it if needed); keeps `conn` only if reusable.
    async fn exchange_on(
        &self,
        conn: &mut Option<Conn>,
        target: usize,
        address: Address,
        client: u64,
        id: u64,
    ) -> Exchanged {
        match self.lean[target].as_ref().and_then(|l| l.get(address)) {
            Some(template) => {
                self.exchange_lean(conn, target, address, template, client, id)
                    .await
            }
            None => self.exchange_hyper(conn, target, address, client, id).await,
        }
    }

    /// `exchange_on` through hyper's client.
    async fn exchange_hyper(
        &self,
        conn: &mut Option<Conn>,
        target: usize,
        address: Address,
        client: u64,
        id: u64,
    ) -> Exchanged {
        let uri = match &self.uris[target] {
            Ok(u) => u.clone(),
            Err(e) => return Exchanged::Failed(e.clone()),
        };
        let target = &self.targets.list[target];
        let (host, tag) = target.host_and_tag(address);
        let mut req = Request::new(full(target.body.clone()));
        *req.method_mut() = target.method.clone();
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        if let Some(tag) = tag.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(TAG_HEADER, tag);
        }
        let id_value = HeaderValue::from(id);
        // The closed loop's client is the request id: one formatted value serves both.
        let client_value = if client == id {
            id_value.clone()
        } else {
            HeaderValue::from(client)
        };
        headers.insert(REQUEST_ID_HEADER, id_value);
        headers.insert(CLIENT_HEADER, client_value);
        // The host goes in as the protocol wants it (`Host`, or HTTP/2's `:authority`).
        for (name, value) in target.headers.iter().filter(|(n, _)| *n != HOST) {
            headers.insert(name.clone(), value.clone());
        }
        let mut c = match conn.take() {
            Some(c) if c.is_ready() && c.fits(false) => c,
            _ => match self.connect(target.addr, &target.transport, false).await {
                Ok(c) => c,
                Err(cause) => return Exchanged::Failed(cause),
            },
        };
        let resp = match c.send(req, host).await {
            Ok(r) => r,
            Err(cause) => return Exchanged::Failed(cause),
        };
        if c.is_ready() {
            *conn = Some(c);
        }
        let (mut parts, body) = resp.into_parts();
        Exchanged::Response {
            status: parts.status,
            trailers: parts
                .extensions
                .remove::<client::Trailers>()
                .map(|t| Box::new(t.0)),
            headers: parts.headers,
            body,
        }
    }

    /// Opens a connection (the lean client's for HTTP/1.1 with `lean`) and counts it.
    async fn connect(
        &self,
        addr: SocketAddr,
        transport: &Transport,
        lean: bool,
    ) -> Result<Conn, String> {
        let c = client::connect(addr, transport, lean.then_some(self.keep.as_slice())).await?;
        *lock_stats(&self.stats)
            .connections
            .entry(c.protocol().name())
            .or_default() += 1;
        Ok(c)
    }

    /// `exchange_on` for a target the lean HTTP/1.1 client can send: the request is `template`
    /// completed with `id` and `client`. A request that failed on a reused connection before
    /// anything came back (the server closed it while idle) is sent once more on a new one.
    /// Over TLS, a connection whose ALPN chose h2 sends it through hyper instead.
    async fn exchange_lean(
        &self,
        conn: &mut Option<Conn>,
        target: usize,
        address: Address,
        template: &h1::RequestTemplate,
        client: u64,
        id: u64,
    ) -> Exchanged {
        let Target {
            addr, transport, ..
        } = &self.targets.list[target];
        let (addr, transport) = (*addr, transport);
        let mut c = match conn.take() {
            Some(c) if c.is_ready() && c.fits(true) => c,
            _ => match self.connect(addr, transport, true).await {
                Ok(c) => c,
                Err(cause) => return Exchanged::Failed(cause),
            },
        };
        let mut retried = false;
        loop {
            let Some(lean) = c.lean() else {
                // HTTP/2 over TLS: the request as hyper sends it.
                *conn = Some(c);
                return self.exchange_hyper(conn, target, address, client, id).await;
            };
            match lean.send(template, id, client).await {
                Ok(resp) => {
                    if c.is_ready() {
                        *conn = Some(c);
                    }
                    return Exchanged::Response {
                        status: resp.status,
                        headers: resp.headers,
                        trailers: resp.trailers.map(Box::new),
                        body: resp.body,
                    };
                }
                Err(f) if f.retryable && !retried => {
                    retried = true;
                    c = match self.connect(addr, transport, true).await {
                        Ok(c) => c,
                        Err(cause) => return Exchanged::Failed(cause),
                    };
                }
                Err(f) => return Exchanged::Failed(f.cause),
            }
        }
    }

    /// Ends request `id` (created at `arrived`) with what its exchange produced.
    fn finish(&self, id: u64, target: usize, arrived: SimTime, result: Exchanged) {
        let status = match &result {
            Exchanged::Response { status, .. } => Some(status.as_u16()),
            _ => None,
        };
        let (outcome, label, cause) = match &result {
            Exchanged::Response {
                status,
                headers,
                trailers,
                body,
            } => {
                // A gRPC call that answered 200 with a grpc-status other than 0 failed.
                let (outcome, cause) = match outcome_of(*status, body) {
                    Outcome::Served => {
                        match super::http::grpc_error(headers, trailers.as_deref()) {
                            Some(cause) => (Outcome::Error, Some(cause)),
                            None => (Outcome::Served, None),
                        }
                    }
                    Outcome::Error => (Outcome::Error, Some(format!("HTTP {}", status.as_u16()))),
                    other => (other, None),
                };
                (outcome, self.classifier.label(headers, body), cause)
            }
            Exchanged::Failed(e) => (Outcome::Error, None, Some(e.clone())),
            Exchanged::TimedOut => (Outcome::ClientCancelled, None, None),
        };
        let cause = cause.or_else(|| {
            matches!(result, Exchanged::TimedOut).then(|| "client timeout".to_string())
        });
        let mut books = lock(&self.books);
        let Books {
            recorder,
            ledger,
            analysis,
            ..
        } = &mut *books;
        let Some(rec) = recorder.as_mut() else {
            return; // the run is over: it was counted in flight
        };
        let _settling = Settling::raise(&self.settling);
        let now = self.clock.now();
        // Where it went: the in-process gateway's ledger in live mode, else the response's label.
        let (revision, default_group, via_activator) = if self.record_routing {
            if let Some(l) = label {
                rec.routed(now, l, true);
            }
            (label, true, false)
        } else {
            match ledger.entries.remove(&id) {
                Some(Entry::Routed {
                    revision,
                    default_group,
                    via_activator,
                }) => (Some(revision as usize), default_group, via_activator),
                Some(Entry::Done) | None => {
                    // It may still reach the gateway (a client timeout): tell the gateway.
                    if matches!(result, Exchanged::TimedOut) {
                        ledger.entries.insert(id, Entry::Done);
                    }
                    (None, false, false)
                }
            }
        };
        let finished = now.max(arrived);
        rec.finished(&RequestRecord {
            id,
            arrived,
            finished,
            revision,
            default_group,
            via_activator,
            outcome,
        });
        if let (Some(book), Some(rev)) = (analysis.as_mut(), revision) {
            book.finished(rev as u32, finished, arrived, outcome);
        }
        books.in_flight -= 1;
        drop(books);
        #[cfg(test)]
        tests::held_after_the_recorder(id);
        let latency_us = u64::try_from((now.max(arrived) - arrived).0 / 1_000).unwrap_or(0);
        let served_us = (outcome == Outcome::Served).then_some(latency_us);
        {
            let mut st = lock_stats(&self.stats);
            st.overall.requests += 1;
            st.overall.ended(status, served_us);
            if let Some(l) = label {
                let g = st.labels.entry(l).or_default();
                g.requests += 1;
                g.ended(status, served_us);
            }
            if !self.targets.names.is_empty() {
                st.targets
                    .entry(target)
                    .or_default()
                    .ended(status, served_us);
            }
            // A client timeout is its own outcome, not an error: its cause is named in the
            // failures line, not counted under error_causes.
            if let Some(cause) = cause.as_ref().filter(|_| outcome == Outcome::Error) {
                *st.error_causes.entry(cause.clone()).or_default() += 1;
            }
        }
        if let Some(results) = &self.results {
            let line = ResultLine {
                id,
                intended_s: arrived.as_secs_f64(),
                latency_ms: latency_us as f64 / 1000.0,
                status,
                outcome: outcome.name(),
                label: label.and_then(|l| self.classifier_name(l)),
                target: self.targets.names.get(target).map(String::as_str),
                error: cause.as_deref(),
            };
            lock_results(results).write(&line);
        }
    }

    fn classifier_name(&self, label: usize) -> Option<&str> {
        self.label_names.get(label).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{stream, Stream};
    use crate::report::run::RunMeta;
    use crate::scenario::spec::{ArrivalProcessSpec, ArrivalSpec};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The request `finish` holds for 200 ms after counting it in the recorder, before its stats
    /// and results line: a finish the end of the run overtakes (none: `u64::MAX`).
    static HOLD: AtomicU64 = AtomicU64::new(u64::MAX);

    pub(super) fn held_after_the_recorder(id: u64) {
        if HOLD.load(Ordering::SeqCst) == id {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A loopback backend answering every request `200 Hello v1!`.
    async fn hello_backend() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nHello v1!\n";
                            if s.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    /// The end of a run reads the stats once every request the recorder counted is in them and
    /// in `--results`: the last request's finish is held between the recorder and its stats
    /// while the run ends, and both still count it. (Before `Shared::settling`, load.json's
    /// statuses missed such a request: CI once saw 479 of 480.)
    #[test]
    fn a_run_ends_with_every_request_the_recorder_counted_in_its_stats_and_results() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let n = 20;
        let dir = std::env::temp_dir().join(format!("splitlab-load-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let results_path = dir.join("results.jsonl");
        let result = rt.block_on(async {
            let addr = hello_backend().await;
            let recorder = RunRecorder::new(
                RunMeta {
                    scenario: "load".into(),
                    seed: 1,
                    mode: "live".into(),
                },
                vec!["v1".into()],
                SimDuration::from_secs(1),
                None,
            );
            let spec = ArrivalSpec {
                process: ArrivalProcessSpec::Constant { rate_per_s: 200.0 },
                tag_shares: vec![],
                header_shares: vec![],
                clients: None,
            };
            let duration = SimDuration::from_secs(10);
            let plan = LoadPlan {
                arrivals: ArrivalGen::new(&spec, SimTime::ZERO + duration),
                rng: stream(1, 0, Stream::Arrivals, 0),
                duration,
                max_requests: Some(n),
                drain: SimDuration::from_secs(5),
                client_timeout: Some(SimDuration::from_secs(5)),
                // Paced every 5 ms (each its own task, as the end of the run does not wait
                // for them one by one): request n - 1 is the last to finish.
                executor: Executor::Open { connections: 1 },
                max_in_flight: 100,
                record_routing: true,
            };
            HOLD.store(n - 1, Ordering::SeqCst);
            run(
                plan,
                Targets::single(Target::new(addr, "/".into(), "hello".into())),
                Some(ResultsWriter::create(&results_path).unwrap()),
                Classifier::Body {
                    patterns: vec![(Regex::new("v1").unwrap(), 0)],
                    other: usize::MAX,
                },
                Clock::start(1.0),
                Books::new(recorder),
                Arc::new(AtomicBool::new(false)),
            )
            .await
        });
        HOLD.store(u64::MAX, Ordering::SeqCst);
        // Every task ends with the runtime: the results file is closed (flushed).
        drop(rt);
        assert_eq!(result.results, Some(Ok(n)), "every results line written");
        let lines = std::fs::read_to_string(&results_path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(lines.lines().count() as u64, n);
        let (report, _, stats, _) = result.report_parts(1.0);
        assert_eq!(report.totals().served, n);
        assert_eq!(report.revisions()[0].routed, n);
        assert_eq!(stats.sent, n);
        assert_eq!(stats.overall.requests, n);
        assert_eq!(stats.overall.statuses.get(&200), Some(&n));
        assert_eq!(stats.labels[&0].served, n);
    }

    #[test]
    fn outcomes_follow_knative_status_and_body() {
        let table: &[(u16, &str, Outcome)] = &[
            // Served by the app.
            (200, "Hello hello-00001!\n", Outcome::Served),
            // The queue-proxy's breaker is full (http.Error adds a newline).
            (503, "pending request queue full\n", Outcome::RejectedQp),
            // The activator's timeout handler.
            (504, "activator request timeout", Outcome::ExpiredActivator),
            // The queue-proxy's timeout handler.
            (504, "request timeout", Outcome::ExpiredQp),
            // Another 503 (an ingress with no healthy upstream) is not a QP rejection.
            (503, "no healthy upstream", Outcome::Error),
            (502, "dial tcp: connection refused", Outcome::Error),
            // A failing revision's application error, whatever its status.
            (500, "application error\n", Outcome::AppError),
            (503, "application error\n", Outcome::AppError),
            // The queue-proxy could not reach its application, or it crashed mid-request.
            (
                502,
                "dial tcp 127.0.0.1:8080: connect: connection refused",
                Outcome::BadGateway,
            ),
            (502, "EOF", Outcome::BadGateway),
            // The gateway's own dial error to a pod is not the queue-proxy's.
            (
                502,
                "dial tcp 127.0.0.1:4000: connection refused\n",
                Outcome::Error,
            ),
            (404, "", Outcome::Error),
        ];
        for (status, body, want) in table {
            let got = outcome_of(StatusCode::from_u16(*status).unwrap(), body.as_bytes());
            assert_eq!(got, *want, "{status} {body:?}");
        }
    }

    #[test]
    fn body_classifier_takes_the_first_matching_pattern() {
        let c = Classifier::Body {
            patterns: vec![
                (Regex::new("Hello World!").unwrap(), 0),
                (Regex::new("Hello Knative!").unwrap(), 1),
            ],
            other: 2,
        };
        let h = HeaderMap::new();
        assert_eq!(c.label(&h, b"Hello World!\n"), Some(0));
        assert_eq!(c.label(&h, b"Hello Knative!\n"), Some(1));
        assert_eq!(c.label(&h, b"something else"), Some(2));
    }

    #[test]
    fn targets_share_connections_only_with_the_same_address_and_transport() {
        let t = |port: u16, transport: Transport| Target {
            transport,
            ..Target::new(([127, 0, 0, 1], port).into(), "/".into(), "h".into())
        };
        let targets = Targets::weighted(vec![
            ("a".into(), t(1, Transport::Http1), 1),
            // Same address and transport as a: one endpoint.
            ("b".into(), t(1, Transport::Http1), 1),
            // Same address, HTTP/2: its own connections.
            ("c".into(), t(1, Transport::H2c), 1),
            // Another address.
            ("d".into(), t(2, Transport::Http1), 1),
        ]);
        assert_eq!(targets.endpoint_of, [0, 0, 1, 2]);
        assert_eq!(targets.endpoints, 3);
    }

    #[test]
    fn weighted_targets_take_exact_interleaved_shares() {
        let t = |port: u16| Target::new(([127, 0, 0, 1], port).into(), "/".into(), "h".into());
        // (weights, the first cycle of picks)
        let cases: [(&[u32], &[usize]); 3] = [
            (&[1], &[0]),                         // one target
            (&[3, 1], &[0, 0, 1, 0]),             // 3:1, the minority in the middle
            (&[5, 1, 1], &[0, 0, 1, 0, 2, 0, 0]), // nginx's smooth WRR example (a a b a c a a)
        ];
        for (weights, cycle) in cases {
            let targets = Targets::weighted(
                weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (format!("t{i}"), t(i as u16 + 1), *w))
                    .collect(),
            );
            let picks: Vec<usize> = (0..cycle.len() as u64).map(|id| targets.pick(id)).collect();
            assert_eq!(picks, cycle, "{weights:?}");
            // Every cycle repeats: over 10 cycles each target has exactly 10 × its weight.
            let n = cycle.len() as u64 * 10;
            for (i, w) in weights.iter().enumerate() {
                let got = (0..n).filter(|id| targets.pick(*id) == i).count();
                assert_eq!(got, *w as usize * 10, "{weights:?} target {i}");
            }
        }
    }
}
