//! A revision's pod, for real: an HTTP server on 127.0.0.1 whose handler is the queue-proxy
//! (datapath.md A.1-A.2) in front of a modelled application.
//!
//! - Admission is the model's own `Breaker` (`model::queue_proxy`): with containerConcurrency
//!   `cc > 0`, `cc` executing and `10·cc` waiting in FIFO order; the next request gets an
//!   immediate 503 `pending request queue full`. With `cc == 0` the application's workers
//!   (`AppModel::Workers`) queue without limit, or, for `AppModel::ProcessorSharing`, every
//!   request starts at once and shares the pod's cores: the model's own `PsServer` (virtual
//!   time) says when each finishes, and a driver task wakes each request at that instant.
//! - The revision timeout starts when the request enters the queue-proxy (before the breaker,
//!   A.2.2): a request still waiting or executing at `timeoutSeconds` gets 504 `request timeout`
//!   and leaves the queue.
//! - "Serving" is waiting a service time drawn from the revision's distribution (scenario time,
//!   scaled by the clock); the answer is `Hello <revision>!` with `Knative-Serving-Revision` and
//!   `Knative-Serving-Pod` headers. `GET /healthz` with `K-Network-Probe: queue` answers `queue`.
//!
//! - A failing revision (`model::failure`, shared with the simulator): the settings in force
//!   (`PodConfig::failure`, replaced by the control loop at a timeline `failure` event) make
//!   the application answer a drawn share of requests with `error_status` and
//!   `APP_ERROR_BODY` after their service time, and scale or lengthen the service time. Before
//!   `serving_from` (`ready_before_serving`) and after `Pod::crash`, the application does not
//!   accept connections: the queue-proxy answers 502 with its dial error at once, and a crash
//!   ends what it holds (waiting or executing) with 502 `EOF`.
//!
//! A request whose handler is dropped (the client or the activator hung up) gives its place
//! back: a drop guard forgets a waiting request and releases an executing one's slot, so slots
//! never leak whatever way a request ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use tokio::sync::Notify;

use super::clock::Clock;
use super::http::{
    full, set_header, text, Body, APP_ERROR_BODY, DEFAULT_ROUTE_HEADER, POD_HEADER,
    QP_APP_CRASHED_BODY, QP_APP_REFUSED_BODY, QP_TIMEOUT_BODY, QUEUE_FULL_BODY, REVISION_HEADER,
    TAG_HEADER,
};
use crate::model::dist::Dist;
use crate::model::failure::{AppAnswer, FailureSpec};
use crate::model::queue_proxy::{Admission, Breaker, PsServer};
use crate::model::rng::StreamRng;
use crate::model::time::SimTime;

use super::metrics::{route_tag, QueueProxyMetrics};

/// What the application's metric records for a request the revision timeout cut while the
/// application had it: the timeout handler cancels the request's context and the reverse
/// proxy's error handler answers 502 (knative.dev/pkg `network/error_handler.go`).
const PROXY_CANCELLED: u16 = 502;

/// Reports changes of the number of requests waiting in this pod's queue-proxy.
pub type QueueObserver = Arc<dyn Fn(i64) + Send + Sync>;

/// What a pod is.
pub struct PodConfig {
    pub revision: String,
    pub name: String,
    /// containerConcurrency; 0: no breaker, the application model instead: `workers`
    /// application threads, or processor sharing over `ps_cores` cores when that is set.
    pub cc: u32,
    pub workers: u32,
    pub ps_cores: Option<u32>,
    /// The revision timeout, scenario time.
    pub timeout: crate::model::time::SimDuration,
    pub service_time: Dist,
    pub rng: StreamRng,
    pub clock: Clock,
    pub on_queue: Option<QueueObserver>,
    /// The revision's failure settings in force (shared by its pods; healthy by default).
    pub failure: Arc<Mutex<FailureSpec>>,
    /// The streams of its error and added-latency draws (`Stream::FailureApp`, `FailureLatency`).
    pub failure_rngs: (StreamRng, StreamRng),
    /// Scenario time from which its application accepts connections (`ready_before_serving`).
    pub serving_from: SimTime,
    /// Where its queue-proxy records Knative's request metrics (`live::metrics`); kept across
    /// container restarts, as the queue-proxy container keeps running.
    pub metrics: Option<Arc<QueueProxyMetrics>>,
}

struct QpState {
    breaker: Breaker,
    waiters: HashMap<u64, oneshot::Sender<()>>,
    next_id: u64,
    rng: StreamRng,
    failure_rngs: (StreamRng, StreamRng),
    /// Processor sharing (cc 0): the jobs in service and how to wake each when it finishes.
    ps: Option<PsState>,
}

struct PsState {
    server: PsServer,
    finishing: HashMap<u64, oneshot::Sender<()>>,
}

struct PodShared {
    revision: String,
    name: String,
    timeout: Duration,
    service_time: Dist,
    clock: Clock,
    state: Mutex<QpState>,
    on_queue: Option<QueueObserver>,
    /// Wakes the processor-sharing driver when its set of jobs changed.
    ps_changed: Notify,
    failure: Arc<Mutex<FailureSpec>>,
    serving_from: SimTime,
    /// Set when the application crashed: every request it holds or gets answers 502.
    crashed: watch::Sender<bool>,
    metrics: Option<Arc<QueueProxyMetrics>>,
    /// containerConcurrency > 0: the queue-proxy has a breaker (else the application queues).
    has_breaker: bool,
}

/// A running pod. Dropping it stops it as `stop` does (its stop channel closes).
pub struct Pod {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    shared: Arc<PodShared>,
}

impl Pod {
    /// Binds 127.0.0.1 on an OS-chosen port and starts serving.
    pub async fn start(config: PodConfig) -> std::io::Result<Pod> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let breaker = if config.cc > 0 {
            Breaker::queue_proxy(config.cc)
        } else {
            Breaker::workers(config.workers)
        };
        let shared = Arc::new(PodShared {
            revision: config.revision,
            name: config.name,
            timeout: config.clock.wall(config.timeout),
            service_time: config.service_time,
            clock: config.clock,
            state: Mutex::new(QpState {
                breaker,
                waiters: HashMap::new(),
                next_id: 0,
                rng: config.rng,
                failure_rngs: config.failure_rngs,
                ps: config
                    .ps_cores
                    .filter(|_| config.cc == 0)
                    .map(|cores| PsState {
                        server: PsServer::new(cores),
                        finishing: HashMap::new(),
                    }),
            }),
            on_queue: config.on_queue,
            ps_changed: Notify::new(),
            failure: config.failure,
            serving_from: config.serving_from,
            crashed: watch::channel(false).0,
            metrics: config.metrics,
            has_breaker: config.cc > 0,
        });
        let (stop, stopped) = watch::channel(false);
        if shared.lock().ps.is_some() {
            tokio::spawn(shared.clone().drive_ps(stopped.clone()));
        }
        let handler = shared.clone();
        tokio::spawn(super::http::serve(listener, stopped, move |req| {
            let shared = handler.clone();
            async move { shared.handle(req).await }
        }));
        Ok(Pod { addr, stop, shared })
    }

    /// The application crashes: what the queue-proxy holds for it and every later request get
    /// 502 (the pod is replaced by a new server when the kubelet restarts it).
    pub fn crash(&self) {
        self.shared.crashed.send_replace(true);
    }

    /// Stops accepting connections; open connections finish the request they carry and close.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// What admission decided for a request.
enum Entry {
    /// A processor-sharing application: served at once, sharing the cores.
    Sharing,
    Start,
    Queued(u64, oneshot::Receiver<()>),
    Rejected,
}

/// Where a request is in the queue-proxy, for the drop guard.
enum Place {
    Waiting(u64),
    Executing,
    /// In service on a processor-sharing application.
    Sharing(u64),
    Done,
}

struct Guard<'a> {
    pod: &'a PodShared,
    place: Place,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        match self.place {
            Place::Waiting(id) => {
                let mut st = self.pod.lock();
                if st.waiters.remove(&id).is_some() {
                    st.breaker.forget_waiting();
                    self.pod.queue_changed(-1);
                    drop(st);
                } else {
                    // Granted a slot at the same moment it gave up: give the slot back.
                    self.pod.release(st);
                }
            }
            Place::Executing => {
                let st = self.pod.lock();
                self.pod.release(st);
            }
            Place::Sharing(id) => self.pod.leave_ps(id),
            Place::Done => {}
        }
    }
}

/// A request's Knative metrics (serving `pkg/queue/request_metric.go`): the queue-proxy's
/// request metric from its entry, the application's from the moment the breaker let it
/// through (with containerConcurrency 0 there is no breaker: from its entry). A request whose
/// handler is dropped (its caller hung up) is recorded as Knative's handlers record a
/// cancelled request: 502 once the application had it (the reverse proxy's error handler),
/// else 500 (`ProxyHandler`'s answer to a cancelled wait, handler.go:73-79).
struct Meter<'a> {
    pod: &'a PodShared,
    entered: SimTime,
    route_tag: String,
    app_from: Option<SimTime>,
    done: bool,
}

impl Meter<'_> {
    /// The application has the request; `in_flight` is the breaker's count then, if any.
    fn app_started(&mut self, in_flight: Option<u32>) {
        if let Some(m) = &self.pod.metrics {
            self.app_from = Some(self.pod.clock.now());
            if let Some(n) = in_flight {
                m.queue_depth(n);
            }
        }
    }

    /// The request ends with `status`; the application's own status when it differs (a
    /// request cut by the timeout: the proxy's 502 when its context is cancelled).
    fn finish(&mut self, status: u16, app_status: Option<u16>) {
        self.done = true;
        let Some(m) = &self.pod.metrics else { return };
        let now = self.pod.clock.now();
        if let Some(from) = self.app_from {
            m.app_request(app_status.unwrap_or(status), now.since(from));
        }
        m.request(status, &self.route_tag, now.since(self.entered));
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        if !self.done {
            let status = if self.app_from.is_some() { 502 } else { 500 };
            self.finish(status, None);
        }
    }
}

impl PodShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, QpState> {
        self.state
            .lock()
            .expect("queue-proxy lock is never poisoned: no code panics while holding it")
    }

    /// Reports a change of the waiting count. Called with the pod's lock held, so the changes
    /// of one pod are reported in the order they happened and a sum over pods never counts more
    /// than the pods really hold (reported after unlocking, a leave and an entry could swap and
    /// a full revision show 10·cc + 1 waiting in a pod). Lock order: pod, then the observer's.
    fn queue_changed(&self, delta: i64) {
        if let Some(f) = &self.on_queue {
            f(delta);
        }
    }

    /// An executing request left: its slot goes to the oldest waiter still waiting.
    fn release(&self, mut st: std::sync::MutexGuard<'_, QpState>) {
        let QpState {
            breaker, waiters, ..
        } = &mut *st;
        if let Some(next) = breaker.release(|h| waiters.contains_key(&h)) {
            let tx = waiters
                .remove(&next)
                .expect("release returns a live waiter");
            self.queue_changed(-1);
            drop(st);
            // If its handler is being dropped right now, its guard finds itself granted and
            // releases the slot again.
            let _ = tx.send(());
        }
    }

    /// A processor-sharing job left before finishing (timeout, or its client hung up): the
    /// others speed up, so the driver recomputes the next finish.
    fn leave_ps(&self, id: u64) {
        let mut st = self.lock();
        let now_s = self.clock.now().as_secs_f64();
        if let Some(ps) = st.ps.as_mut() {
            if ps.server.remove(now_s, id) {
                ps.finishing.remove(&id);
                drop(st);
                self.ps_changed.notify_one();
            }
        }
    }

    /// Wakes each processor-sharing job at the instant the model says it finishes. Runs until
    /// the pod is stopped and its last job is done.
    async fn drive_ps(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut finished = Vec::new();
        let mut stopping = false;
        loop {
            let next_s = {
                let mut st = self.lock();
                let Some(ps) = st.ps.as_mut() else { return };
                // Each job leaves at its own finish instant, not at this (later) wake-up: the
                // others get its share from then on, so timer lateness does not compound.
                let now_s = self.clock.now().as_secs_f64();
                for _ in 0..=ps.server.len() {
                    match ps.server.next_completion_s() {
                        Some(t) if t <= now_s => ps.server.take_finished(t, &mut finished),
                        _ => break,
                    }
                }
                ps.server.take_finished(now_s, &mut finished);
                for id in finished.drain(..) {
                    if let Some(tx) = ps.finishing.remove(&id) {
                        let _ = tx.send(());
                    }
                }
                if stopping && ps.server.is_empty() {
                    return;
                }
                ps.server.next_completion_s()
            };
            let wake = match next_s {
                Some(s) => self.clock.instant(SimTime::from_secs_f64(s)),
                // Nothing in service: sleep until a job arrives (or the pod stops).
                None => Clock::wall_now() + Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = self.ps_changed.notified() => {}
                r = stopped.changed(), if !stopping => {
                    stopping = r.is_err() || *stopped.borrow();
                }
            }
        }
    }

    /// Serves a request on the processor-sharing application: it starts at once, and finishes
    /// when the shared cores have done its work, or gets 504 at the revision timeout.
    async fn serve_ps(&self, deadline: tokio::time::Instant) -> (Response<Body>, Option<u16>) {
        let (id, rx, answer) = {
            let mut st = self.lock();
            let id = st.next_id;
            st.next_id += 1;
            let (work, answer) = self.draw_service(&mut st);
            let work_s = work.as_secs_f64();
            let now_s = self.clock.now().as_secs_f64();
            let ps = st
                .ps
                .as_mut()
                .expect("serve_ps runs on processor-sharing pods");
            ps.server.start(now_s, id, work_s);
            let (tx, rx) = oneshot::channel();
            ps.finishing.insert(id, tx);
            (id, rx, answer)
        };
        self.ps_changed.notify_one();
        let mut guard = Guard {
            pod: self,
            place: Place::Sharing(id),
        };
        match tokio::time::timeout_at(deadline, rx).await {
            // The driver already took it out of service.
            Ok(Ok(())) => {
                guard.place = Place::Done;
                (self.answer(answer), None)
            }
            _ => {
                drop(guard);
                (
                    self.stamp(text(StatusCode::GATEWAY_TIMEOUT, QP_TIMEOUT_BODY)),
                    Some(PROXY_CANCELLED),
                )
            }
        }
    }

    /// The queue-proxy's admission, under one lock: processor sharing takes everything, else
    /// the breaker decides.
    fn admit(&self) -> (Entry, u32) {
        let mut st = self.lock();
        if st.ps.is_some() {
            return (Entry::Sharing, 0);
        }
        let id = st.next_id;
        st.next_id += 1;
        let entry = match st.breaker.admit(id) {
            Admission::Start => Entry::Start,
            Admission::Queued => {
                let (tx, rx) = oneshot::channel();
                st.waiters.insert(id, tx);
                self.queue_changed(1);
                Entry::Queued(id, rx)
            }
            Admission::Rejected => Entry::Rejected,
        };
        (entry, st.breaker.in_flight())
    }

    /// Answers `req` while reading its body to the end (and discarding it), as an application
    /// that reads its request does: a pod that answered without reading a large body would
    /// close a connection the proxy in front is still writing to, and the client would see
    /// the proxy's 502 `error writing a body to connection` instead of the pod's answer.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let drain = async move {
            let mut body = body;
            // A broken body ends the reading; the answer is the model's either way.
            while let Some(Ok(_)) = http_body_util::BodyExt::frame(&mut body).await {}
        };
        let (resp, ()) = tokio::join!(self.respond(&parts), drain);
        resp
    }

    async fn respond(&self, req: &hyper::http::request::Parts) -> Response<Body> {
        if req.uri.path() == "/healthz" && req.headers.contains_key("k-network-probe") {
            // Probes are not counted (request_metric.go:113-116).
            return text(StatusCode::OK, "queue");
        }
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let mut meter = Meter {
            pod: self,
            entered: self.clock.now(),
            route_tag: match &self.metrics {
                Some(_) => route_tag(header(TAG_HEADER), header(DEFAULT_ROUTE_HEADER)),
                None => String::new(),
            },
            app_from: None,
            done: false,
        };
        let mut crashed = self.crashed.subscribe();
        if *crashed.borrow() || self.clock.now() < self.serving_from {
            // Nothing listens on the user port: the reverse proxy's dial is refused (the
            // application's handler sees the proxy's 502).
            meter.app_started(None);
            meter.finish(502, None);
            return self.stamp(text(StatusCode::BAD_GATEWAY, QP_APP_REFUSED_BODY));
        }
        let (resp, app_status) = tokio::select! {
            r = self.queue_and_serve(&mut meter) => r,
            // Dropping the request's future releases its place (its guard).
            _ = crashed.wait_for(|c| *c) => {
                (self.stamp(text(StatusCode::BAD_GATEWAY, QP_APP_CRASHED_BODY)), None)
            }
        };
        meter.finish(resp.status().as_u16(), app_status);
        resp
    }

    /// The application's answer to a request whose service ended: served, or its error.
    fn answer(&self, answer: AppAnswer) -> Response<Body> {
        match answer {
            AppAnswer::Serve => self.hello(),
            AppAnswer::Error(status) => self.stamp(text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                APP_ERROR_BODY,
            )),
        }
    }

    /// A service time drawn on `rng`, under the failure settings in force, and the application's
    /// answer (`model::failure`).
    fn draw_service(&self, st: &mut QpState) -> (crate::model::time::SimDuration, AppAnswer) {
        let base = self.service_time.sample(&mut st.rng);
        let failure = self
            .failure
            .lock()
            .expect("failure lock is never poisoned: no code panics while holding it");
        if failure.is_healthy() {
            return (base, AppAnswer::Serve);
        }
        let (app_rng, latency_rng) = &mut st.failure_rngs;
        let work = failure.service_time(base, latency_rng);
        (work, failure.answer(app_rng))
    }

    /// The request through the breaker and the application: the response, and the status the
    /// application's metric records when it differs from the response's.
    async fn queue_and_serve(&self, meter: &mut Meter<'_>) -> (Response<Body>, Option<u16>) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut guard = Guard {
            pod: self,
            place: Place::Done,
        };
        if !self.has_breaker {
            // No breaker: the application has the request at once (its workers queue it).
            meter.app_started(None);
        }
        let (entry, in_flight) = self.admit();
        let depth = self.has_breaker.then_some(in_flight);
        match entry {
            Entry::Sharing => return self.serve_ps(deadline).await,
            Entry::Rejected => {
                let resp = self.stamp(text(StatusCode::SERVICE_UNAVAILABLE, QUEUE_FULL_BODY));
                return (resp, None);
            }
            Entry::Start => {
                guard.place = Place::Executing;
                meter.app_started(depth);
            }
            Entry::Queued(id, rx) => {
                guard.place = Place::Waiting(id);
                match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(())) => {
                        guard.place = Place::Executing;
                        // The depth is read (under the pod lock) only for the metrics.
                        let depth = (self.has_breaker && self.metrics.is_some())
                            .then(|| self.lock().breaker.in_flight());
                        meter.app_started(depth);
                    }
                    // Timed out while waiting (the guard forgets it or gives back a late grant).
                    _ => {
                        drop(guard);
                        let resp = self.stamp(text(StatusCode::GATEWAY_TIMEOUT, QP_TIMEOUT_BODY));
                        return (resp, None);
                    }
                }
            }
        }
        let (work, answer) = {
            let mut st = self.lock();
            self.draw_service(&mut st)
        };
        let done = tokio::time::Instant::now() + self.clock.wall(work);
        if done > deadline {
            tokio::time::sleep_until(deadline).await;
            drop(guard);
            let resp = self.stamp(text(StatusCode::GATEWAY_TIMEOUT, QP_TIMEOUT_BODY));
            return (resp, Some(PROXY_CANCELLED));
        }
        tokio::time::sleep_until(done).await;
        drop(guard);
        (self.answer(answer), None)
    }

    /// The application's answer.
    fn hello(&self) -> Response<Body> {
        let mut resp = Response::new(full(format!("Hello {}!\n", self.revision)));
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.stamp(resp)
    }

    fn stamp(&self, mut resp: Response<Body>) -> Response<Body> {
        set_header(&mut resp, REVISION_HEADER, &self.revision);
        set_header(&mut resp, POD_HEADER, &self.name);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::http::{connect, full, send_on};
    use crate::model::rng::{stream, Stream};
    use crate::model::time::SimDuration;

    fn ms(n: i64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    /// Sends one GET to the pod; returns the status and how long the answer took.
    async fn get(addr: SocketAddr) -> (u16, Duration) {
        let started = Clock::wall_now();
        let mut conn = connect(addr).await.expect("the pod accepts");
        let mut req = Request::new(full(bytes::Bytes::new()));
        *req.uri_mut() = "/".parse().expect("a valid path");
        let Ok(resp) = send_on(&mut conn, req).await else {
            panic!("no answer from the pod");
        };
        (resp.status().as_u16(), started.elapsed())
    }

    /// A pod with cc 1 and 1 ms of work, answering as revision `r`.
    async fn quick_pod() -> Pod {
        Pod::start(quick_config()).await.expect("the pod starts")
    }

    /// `quick_pod`'s configuration, for tests that change a few fields.
    fn quick_config() -> PodConfig {
        PodConfig {
            revision: "r".into(),
            name: "r-pod-0".into(),
            cc: 1,
            workers: 1,
            ps_cores: None,
            timeout: ms(5_000),
            service_time: Dist::constant(ms(1)).expect("valid"),
            rng: stream(1, 0, Stream::ServiceTime, 0),
            clock: Clock::start(1.0),
            on_queue: None,
            failure: Default::default(),
            failure_rngs: (
                stream(1, 0, Stream::FailureApp, 0),
                stream(1, 0, Stream::FailureLatency, 0),
            ),
            serving_from: SimTime::ZERO,
            metrics: None,
        }
    }

    #[test]
    fn a_pod_answers_http1_and_h2c_prior_knowledge_on_one_port() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let pod = quick_pod().await;
            // HTTP/1.1.
            let (status, _) = get(pod.addr).await;
            assert_eq!(status, 200);
            // HTTP/2 with prior knowledge (h2c): the client's first bytes are the preface.
            let mut h2 = crate::live::http::connect_h2c(pod.addr)
                .await
                .expect("the pod accepts h2c");
            for _ in 0..2 {
                let mut req = Request::new(full(bytes::Bytes::new()));
                *req.uri_mut() = format!("http://{}/", pod.addr)
                    .parse()
                    .expect("a valid URI");
                *req.version_mut() = hyper::Version::HTTP_2;
                let resp = h2.send_request(req).await.expect("an h2 answer");
                assert_eq!(resp.version(), hyper::Version::HTTP_2);
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.headers()[REVISION_HEADER], "r");
                let body = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .expect("a body")
                    .to_bytes();
                assert_eq!(&body[..], b"Hello r!\n");
            }
            pod.stop();
        });
    }

    #[test]
    fn the_queue_proxy_counts_every_request_and_the_application_only_those_it_had() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let rev = super::super::metrics::RevisionLabels::new("ns", "svc", "r");
            let metrics = Arc::new(QueueProxyMetrics::new(&rev, "r-pod-0"));
            // cc 1: one executing, ten waiting; 100 ms of work, a 250 ms timeout.
            let pod = Pod::start(PodConfig {
                revision: "r".into(),
                name: "r-pod-0".into(),
                cc: 1,
                workers: 1,
                ps_cores: None,
                timeout: ms(250),
                service_time: Dist::constant(ms(100)).expect("valid"),
                rng: stream(1, 0, Stream::ServiceTime, 0),
                clock: Clock::start(1.0),
                on_queue: None,
                failure: Default::default(),
                failure_rngs: (
                    stream(1, 0, Stream::FailureApp, 0),
                    stream(1, 0, Stream::FailureLatency, 0),
                ),
                serving_from: SimTime::ZERO,
                metrics: Some(metrics.clone()),
            })
            .await
            .expect("the pod starts");
            // 13 at once: the first two are served (at 100 and 200 ms), the third starts at
            // 200 ms and is cut at 250 ms, the other eight time out waiting (a waiter granted
            // the slot right at its own deadline is cut too), two are rejected.
            let calls: Vec<_> = (0..13).map(|_| tokio::spawn(get(pod.addr))).collect();
            // At 220 ms the third got its slot with itself and eight others in the breaker
            // (the second got it with nine, the first with one).
            tokio::time::sleep(Duration::from_millis(220)).await;
            let depth = crate::report::prometheus::parse(&metrics.registry().encode())
                .expect("parses")
                .into_iter()
                .find(|s| s.name == "revision_queue_depth")
                .expect("recorded with a breaker");
            assert_eq!(depth.value, 9.0);
            let mut statuses = Vec::new();
            for c in calls {
                statuses.push(c.await.expect("the request task ends").0);
            }
            statuses.sort_unstable();
            let expected: Vec<u16> = [200; 2]
                .into_iter()
                .chain([503; 2])
                .chain([504; 9])
                .collect();
            assert_eq!(statuses, expected);
            let samples =
                crate::report::prometheus::parse(&metrics.registry().encode()).expect("parses");
            let count = |name: &str, code: &str| {
                samples
                    .iter()
                    .filter(|s| s.name == name && s.labels["response_code"] == code)
                    .map(|s| s.value)
                    .sum::<f64>()
            };
            // (family, response code, count): every request at the queue-proxy; at the
            // application only those it had.
            let cases = [
                ("revision_request_count", "200", 2.0),
                ("revision_request_count", "503", 2.0),
                ("revision_request_count", "504", 9.0),
                ("revision_app_request_count", "200", 2.0),
                ("revision_app_request_count", "503", 0.0),
                ("revision_app_request_count", "504", 0.0),
            ];
            for (name, code, n) in cases {
                assert_eq!(count(name, code), n, "{name} {code}");
            }
            // The cut ones count as the proxy's 502 at the application: the third, and any
            // waiter granted at its deadline; never one that timed out waiting for its slot.
            let cut = count("revision_app_request_count", "502");
            assert!((1.0..=9.0).contains(&cut), "{cut}");
            // A probe is not counted.
            let mut conn = connect(pod.addr).await.expect("the pod accepts");
            let mut req = Request::new(full(bytes::Bytes::new()));
            *req.uri_mut() = "/healthz".parse().expect("a valid path");
            req.headers_mut()
                .insert("k-network-probe", "queue".parse().expect("a header value"));
            assert!(send_on(&mut conn, req).await.is_ok());
            let after =
                crate::report::prometheus::parse(&metrics.registry().encode()).expect("parses");
            assert_eq!(after, samples);
            pod.stop();
        });
    }

    #[test]
    fn a_processor_sharing_pod_shares_its_core_and_times_out_what_cannot_finish() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let pod = Pod::start(PodConfig {
                cc: 0,
                ps_cores: Some(1),
                timeout: ms(300),
                service_time: Dist::constant(ms(100)).expect("valid"),
                ..quick_config()
            })
            .await
            .expect("the pod starts");
            // Alone: 100 ms of work takes 100 ms.
            let (status, took) = get(pod.addr).await;
            assert_eq!(status, 200);
            assert!(took >= Duration::from_millis(100), "{took:?}");
            assert!(took < Duration::from_millis(190), "{took:?}");
            // Two at once share the core: both finish at about 200 ms, not 100.
            let (a, b) = tokio::join!(get(pod.addr), get(pod.addr));
            for (status, took) in [a, b] {
                assert_eq!(status, 200);
                assert!(took >= Duration::from_millis(195), "{took:?}");
                assert!(took < Duration::from_millis(300), "{took:?}");
            }
            // Four at once would need 400 ms each: all get 504 at the 300 ms timeout, and
            // leave the core, so the next request is alone again.
            let (a, b, c, d) =
                tokio::join!(get(pod.addr), get(pod.addr), get(pod.addr), get(pod.addr));
            for (status, took) in [a, b, c, d] {
                assert_eq!(status, 504);
                assert!(took >= Duration::from_millis(300), "{took:?}");
            }
            let (status, took) = get(pod.addr).await;
            assert_eq!(status, 200);
            assert!(took < Duration::from_millis(190), "{took:?}");
            pod.stop();
        });
    }
}
