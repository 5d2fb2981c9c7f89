//! The gateway: a reverse proxy that routes each request with the shared routing core, then
//! sends it straight to a pod (SKS Serve mode) or through the activator stage (Proxy mode).
//!
//! - **Routing.** `model::route_control::DataPlane`, the simulator's data plane: the `Host`
//!   header (a port suffix ignored) and `Knative-Serving-Tag` pick the group, the group's
//!   picker picks the revision. An unknown host gets 404; a group that cannot be routed 503.
//! - **Serve mode.** Round-robin over the revision's Kubernetes-ready endpoints (none: 503
//!   `no healthy upstream`, as Envoy answers).
//! - **Activator** (datapath.md A.3): the model's `Throttler` per activator replica, unbounded
//!   FIFO, capacity `cc ×` healthy pods, Knative's LB policy by cc. The revision timeout starts
//!   when the request enters the activator; at `timeoutSeconds` the request, waiting or being
//!   proxied, gets 504 `activator request timeout` and the upstream request is cancelled.
//! - Upstream failures give 502 with the error text (never a backend's address); a client's
//!   request body that fails on the way (bad chunked framing) 400; a `Transfer-Encoding` other
//!   than `chunked` alone 501, as Envoy answers. The revision's answers (200, 503, 504) are
//!   relayed. Every response names the revision in `Knative-Serving-Revision`.
//! - **Protocols** (`http::serve_with`, docs/gateway.md): HTTP/1.1 and HTTP/2 on one port, TLS
//!   optional; each HTTP/2 request is routed on its own, as Envoy routes streams. An HTTP/2
//!   request goes upstream over h2c (gRPC needs HTTP/2 end to end), trailers included.
//! - **Streaming** (`http::exchange`): in Serve mode a response's body is relayed as the client
//!   reads it, with backpressure; the activator stage reads its pod's short answer whole, as it
//!   holds the pod's slot until the answer is complete. The in-flight gauge counts a Serve-mode
//!   request until its response head is relayed.
//! - **Outcomes** (`GatewayStats`): every request is counted, and an error by cause
//!   (`http::error_cause`: `HTTP N` for 400 and above, `grpc-status N` for a failed gRPC call
//!   answered with HTTP 200, in its head or its trailers).
//! - The server binds what it is given (127.0.0.1 unless the user names another address);
//!   malformed requests and oversized headers are answered 400/431 by hyper and never reach
//!   the handler.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Request, Response, StatusCode};
use rand::RngExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::clock::Clock;
use super::http::{
    error_cause, exchange, grpc_error, text, Body, BodyError, ExchangeError, Pool, ServeOptions,
    ACTIVATOR_TIMEOUT_BODY, CLIENT_HEADER, MAX_BODY_BYTES, REVISION_NAME, TAG_NAME,
};
use super::load::{lock, Books, REQUEST_ID_HEADER};
use crate::model::activator::{ActivatorStat, ConcurrencyReporter, Throttler};
use crate::model::rng::StreamRng;
use crate::model::route_control::DataPlane;
use crate::model::time::SimTime;

use super::metrics::ActivatorMetrics;
use crate::report::run::Gauge;
use crate::routing::pick::key_of;

/// One revision as the data path sees it.
pub struct Backend {
    pub name: String,
    /// `name` as the `Knative-Serving-Revision` value (`None` if it cannot be one), made once
    /// rather than per response.
    revision_value: Option<HeaderValue>,
    pub index: u32,
    /// The revision timeout as wall time (the activator's deadline).
    pub timeout: Duration,
    pub state: Mutex<BackendState>,
}

/// The mutable part of a backend, changed by the control loop and the request path.
pub struct BackendState {
    /// SKS mode applied at the ingress: straight to the pods (Serve) or via the activator.
    pub serve: bool,
    /// Serve-mode endpoints: Kubernetes-ready pods (and terminating ones until they leave).
    pub endpoints: Vec<SocketAddr>,
    rr: usize,
    /// One throttler per activator replica; the first `subset` are the revision's subset.
    pub activators: Vec<Throttler>,
    pub subset: usize,
    /// Pod id (as the throttlers know it) to address.
    pub pod_addrs: HashMap<u32, SocketAddr>,
    waiters: HashMap<u64, (usize, oneshot::Sender<u32>)>,
    next_waiter: u64,
    lb_rng: StreamRng,
    /// Requests of the revision between routing and their answer (the gateway's view), and
    /// their time integral since the last metrics tick, for the autoscaler.
    pub in_flight: u64,
    pub conc_area: f64,
    pub conc_last_s: f64,
    pub requests_since_tick: u64,
    /// Requests waiting in the revision's queue-proxies (reported by the pods).
    pub qp_waiting: i64,
    /// The activators' stats for the revision (concurrency_reporter.go), kept in a live run.
    pub reporter: ConcurrencyReporter,
    reported: [u64; 3],
    /// Per activator replica, the revision's requests there and their time integral since the
    /// last report, for its `activator_request_concurrency`.
    replica_conc: Vec<ReplicaConcurrency>,
}

/// One activator replica's view of a revision's concurrency (its own `stats.Report`).
#[derive(Clone, Copy, Debug, Default)]
struct ReplicaConcurrency {
    in_flight: u64,
    area: f64,
    last_s: f64,
    /// Whether its last report was above zero (it reports once more at zero, then stops, as
    /// Knative deletes a revision's stat after a period without activity).
    active: bool,
}

impl BackendState {
    pub fn new(activators: Vec<Throttler>, lb_rng: StreamRng, serve: bool) -> Self {
        BackendState {
            serve,
            endpoints: Vec::new(),
            rr: 0,
            subset: 1,
            pod_addrs: HashMap::new(),
            waiters: HashMap::new(),
            next_waiter: 0,
            lb_rng,
            in_flight: 0,
            conc_area: 0.0,
            conc_last_s: 0.0,
            requests_since_tick: 0,
            qp_waiting: 0,
            reporter: ConcurrencyReporter::new(),
            reported: [u64::MAX; 3],
            replica_conc: vec![ReplicaConcurrency::default(); activators.len()],
            activators,
        }
    }

    /// A request enters (`+1`) or leaves (`-1`) activator replica `a`, at `now_s`.
    fn replica_request(&mut self, a: usize, delta: i64, now_s: f64) {
        if let Some(c) = self.replica_conc.get_mut(a) {
            c.area += c.in_flight as f64 * (now_s - c.last_s).max(0.0);
            c.last_s = now_s;
            c.in_flight = c.in_flight.saturating_add_signed(delta);
        }
    }

    /// Each activator replica's average concurrency of the revision since the last report
    /// (`period_s` ago), for those that report it (concurrency_reporter.go:168-216: a revision
    /// is reported while it had activity, and once more at zero).
    pub fn replica_concurrency(&mut self, now_s: f64, period_s: f64) -> Vec<Option<f64>> {
        self.replica_conc
            .iter_mut()
            .map(|c| {
                c.area += c.in_flight as f64 * (now_s - c.last_s).max(0.0);
                c.last_s = now_s;
                let average = if period_s > 0.0 {
                    c.area / period_s
                } else {
                    0.0
                };
                c.area = 0.0;
                let report = (average > 0.0 || c.active).then_some(average);
                c.active = average > 0.0;
                report
            })
            .collect()
    }

    /// Sends activator `a`'s waiting requests to pods while its capacity allows.
    pub fn dispatch(&mut self, a: usize) {
        loop {
            let waiters = &self.waiters;
            let Some((id, pod)) =
                self.activators[a].dispatch(&mut self.lb_rng, |h| waiters.contains_key(&h))
            else {
                break;
            };
            let (_, tx) = self
                .waiters
                .remove(&id)
                .expect("dispatch returns a live waiter");
            if tx.send(pod).is_err() {
                // Unreachable: the receiver lives in the request's seat, which removes its
                // waiter before it is dropped. Should it happen, the slot is not leaked.
                self.activators[a].release(pod);
            }
        }
    }

    pub fn dispatch_all(&mut self) {
        for a in 0..self.activators.len() {
            self.dispatch(a);
        }
    }

    fn activator_waiting(&self) -> u64 {
        self.activators
            .iter()
            .map(|t| u64::from(t.waiting_len()))
            .sum()
    }
}

/// What the gateway reports to a live run (absent for `splitlab gateway`).
#[derive(Clone)]
pub struct Hooks {
    pub books: Arc<Mutex<Books>>,
    pub clock: Clock,
    /// The activator's immediate stat to the autoscaler, with the revision's index: sent when a
    /// request enters the activator for a revision it had no entry for
    /// (`concurrency_reporter.go:111-154`), so a revision at zero wakes at once instead of at
    /// the next decider tick.
    pub pokes: tokio::sync::mpsc::UnboundedSender<(u32, ActivatorStat)>,
    /// The value of `RUN_HEADER` on the run's own requests. A request without it came from an
    /// outside client (`splitlab live --listen`): served alike, kept out of the books (its
    /// request id, if any, is another run's), counted in `GatewayStats::outside`.
    pub run_token: HeaderValue,
}

/// The header `splitlab live`'s own load generator sends with `Hooks::run_token`.
pub const RUN_HEADER: &str = "splitlab-live-run";

/// The gateway's shared state.
pub struct Gateway {
    pub plane: Mutex<(DataPlane, StreamRng)>,
    pub backends: Vec<Arc<Backend>>,
    pub pool: Pool,
    pub hooks: Option<Hooks>,
    /// Each activator replica's Knative metrics (`live::metrics`), in a live run.
    pub activator_metrics: Vec<Arc<ActivatorMetrics>>,
    /// What the gateway answered, for `splitlab gateway`'s closing line.
    pub stats: Arc<GatewayStats>,
}

/// The gateway's count of requests and of errors by cause (`http::error_cause`: an HTTP
/// status of 400 or above, a gRPC status other than 0, a body that failed on the way).
#[derive(Debug, Default)]
pub struct GatewayStats {
    requests: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Outside clients' requests in a live run, by answer status.
    outside: Mutex<BTreeMap<u16, u64>>,
}

impl GatewayStats {
    /// Requests the gateway answered (or is answering).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Errors by cause, in cause order.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.lock_errors().clone()
    }

    fn error(&self, cause: String) {
        *self.lock_errors().entry(cause).or_default() += 1;
    }

    /// Outside clients' requests in a live run (`Hooks::run_token`), by answer status.
    pub fn outside(&self) -> BTreeMap<u16, u64> {
        self.lock_outside().clone()
    }

    fn lock_outside(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, u64>> {
        self.outside
            .lock()
            .expect("stats lock is never poisoned: no code panics while holding it")
    }

    fn lock_errors(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.errors
            .lock()
            .expect("stats lock is never poisoned: no code panics while holding it")
    }
}

impl Backend {
    pub fn new(name: String, index: u32, timeout: Duration, state: BackendState) -> Self {
        Backend {
            revision_value: HeaderValue::from_str(&name).ok(),
            name,
            index,
            timeout,
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, BackendState> {
        self.state
            .lock()
            .expect("backend lock is never poisoned: no code panics while holding it")
    }
}

impl Gateway {
    /// Serves on `listener` until `stop` turns true (`http::serve`).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: watch::Receiver<bool>) {
        self.serve_with(listener, ServeOptions::default(), stop)
            .await;
    }

    /// Serves on `listener` with `options` (TLS, connection limits) until `stop` turns true
    /// (`http::serve_with`).
    pub async fn serve_with(
        self: Arc<Self>,
        listener: TcpListener,
        options: ServeOptions,
        stop: watch::Receiver<bool>,
    ) {
        super::http::serve_with(listener, options, stop, move |req| {
            let gw = self.clone();
            async move { gw.handle(req).await }
        })
        .await;
    }

    /// Reports the revision's gauges that changed (backend lock held, books innermost).
    pub fn report(&self, backend: &Backend, st: &mut BackendState) {
        let Some(h) = &self.hooks else { return };
        let values = [
            st.qp_waiting.max(0) as u64,
            st.activator_waiting(),
            st.in_flight,
        ];
        if values == st.reported {
            return;
        }
        let now = h.clock.now();
        let mut books = lock(&h.books);
        let Some(rec) = books.recorder.as_mut() else {
            return;
        };
        for (i, g) in [Gauge::QpQueue, Gauge::ActivatorQueue, Gauge::InFlight]
            .into_iter()
            .enumerate()
        {
            if values[i] != st.reported[i] {
                if i == 2 {
                    // The autoscaler's concurrency: integrate the old value up to now.
                    let now_s = now.as_secs_f64();
                    let previous = if st.reported[2] == u64::MAX {
                        0
                    } else {
                        st.reported[2]
                    };
                    st.conc_area += previous as f64 * (now_s - st.conc_last_s).max(0.0);
                    st.conc_last_s = now_s;
                }
                st.reported[i] = values[i];
                rec.gauge(now, backend.index as usize, g, values[i]);
            }
        }
    }

    /// Answers a request and counts its outcome: at once when its head says it failed, else
    /// when its body ends (a gRPC status arrives in the trailers).
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Counted> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let outside = self
            .hooks
            .as_ref()
            .is_some_and(|h| !is_own(h, req.headers()));
        let resp = if transfer_encoding_supported(req.headers()) {
            self.route_and_forward(req).await
        } else {
            text(
                StatusCode::NOT_IMPLEMENTED,
                UNSUPPORTED_TRANSFER_ENCODING_BODY,
            )
        };
        if outside {
            *self
                .stats
                .lock_outside()
                .entry(resp.status().as_u16())
                .or_default() += 1;
        }
        // Counted now if its head says it failed; else the trailers (or a failing body) may
        // yet make it an error.
        let counted = match error_cause(resp.status(), resp.headers(), None) {
            Some(cause) => {
                self.stats.error(cause);
                true
            }
            None => false,
        };
        resp.map(|body| Counted {
            inner: body,
            counted,
            stats: self.stats.clone(),
        })
    }

    async fn route_and_forward(&self, req: Request<Incoming>) -> Response<Body> {
        // Route by the borrowed headers: nothing is copied on the request path.
        let mut req = req;
        let (routed, append) = {
            let headers = req.headers();
            let host = headers
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("");
            let tag = headers.get(&TAG_NAME).and_then(|h| h.to_str().ok());
            let mut guard = self
                .plane
                .lock()
                .expect("plane lock is never poisoned: no code panics while holding it");
            let (plane, rng) = &mut *guard;
            let Some((group, append)) = plane.route_of_request(host, tag) else {
                return text(StatusCode::NOT_FOUND, "no route for this host\n");
            };
            let append = append.and_then(|(name, value)| {
                Some((
                    hyper::header::HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            });
            // Only the hash picker reads the key: the others skip the header.
            let client = if plane.keyed() {
                client_key(headers.get(CLIENT_HEADER), rng)
            } else {
                0
            };
            (plane.pick(group, client, rng), append)
        };
        // The header the ingress appends for the route taken (read by the queue-proxy's
        // route tag).
        if let Some((name, value)) = append {
            req.headers_mut().insert(name, value);
        }
        let Some(routed) = routed else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n");
        };
        let backend = &self.backends[routed.revision as usize];
        // The load generator's request id, in a live run: what the books know it by.
        let mut id = None;
        if let Some(h) = self.hooks.as_ref().filter(|h| is_own(h, req.headers())) {
            id = req
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(id) = id {
                let now = h.clock.now();
                lock(&h.books).routed(id, now, routed.revision, routed.default_group);
            }
        }
        let in_flight = InFlight::enter(self, backend);
        let mut resp = self.forward(backend, req, id).await;
        drop(in_flight);
        if let Some(value) = &backend.revision_value {
            if !resp.headers().contains_key(&REVISION_NAME) {
                resp.headers_mut()
                    .insert(REVISION_NAME.clone(), value.clone());
            }
        }
        resp
    }

    async fn forward(
        &self,
        backend: &Backend,
        req: Request<Incoming>,
        request_id: Option<u64>,
    ) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        strip_hop_headers(&mut parts.headers);
        let req = Request::from_parts(parts, super::http::boxed(body));
        let serve_addr = {
            let mut st = backend.lock();
            st.requests_since_tick += 1;
            if st.serve {
                if st.endpoints.is_empty() {
                    return text(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream\n");
                }
                let i = st.rr % st.endpoints.len();
                st.rr = st.rr.wrapping_add(1);
                Some(st.endpoints[i])
            } else {
                None
            }
        };
        if let Some(addr) = serve_addr {
            return relay(exchange(&self.pool, addr, req).await);
        }
        // Boxed: its state (a seat, a meter and a second exchange) would otherwise make every
        // request's future as large, and each request's future is moved a few times.
        Box::pin(self.via_activator(backend, req, request_id)).await
    }

    /// `forward` for a revision behind the activator (scaled to zero, or a `live` run).
    async fn via_activator(
        &self,
        backend: &Backend,
        req: Request<Body>,
        request_id: Option<u64>,
    ) -> Response<Body> {
        // The activator: its timeout starts now and covers the wait and the proxying.
        let deadline = tokio::time::Instant::now() + backend.timeout;
        let mut meter = ActivatorMeter {
            gw: self,
            rev: backend.index as usize,
            a: usize::MAX,
            entered: self.hooks.as_ref().map(|h| h.clock.now()),
            done: false,
        };
        let (a, id, rx) = {
            let mut st = backend.lock();
            let subset = st.subset.max(1);
            let a = if subset == 1 {
                0
            } else {
                st.lb_rng.random_range(0..subset)
            };
            let id = st.next_waiter;
            st.next_waiter += 1;
            let (tx, rx) = oneshot::channel();
            st.waiters.insert(id, (a, tx));
            st.activators[a].enqueue(id);
            if let Some(h) = &self.hooks {
                st.replica_request(a, 1, h.clock.now().as_secs_f64());
            }
            meter.a = a;
            st.dispatch(a);
            self.report(backend, &mut st);
            let first = self
                .hooks
                .as_ref()
                .and_then(|h| st.reporter.request_in(h.clock.now()));
            drop(st);
            if let Some(h) = &self.hooks {
                if let Some(stat) = first {
                    // The control loop is gone only once the run is over: nothing to wake.
                    let _ = h.pokes.send((backend.index, stat));
                }
                if let Some(request_id) = request_id {
                    lock(&h.books).via_activator(request_id);
                }
            }
            (a, id, rx)
        };
        let mut seat = Seat {
            gw: self,
            backend,
            a,
            state: SeatState::Waiting(id),
            rx,
        };
        let pod = match tokio::time::timeout_at(deadline, &mut seat.rx).await {
            Ok(Ok(pod)) => pod,
            _ => {
                drop(seat);
                return meter.finish(text(StatusCode::GATEWAY_TIMEOUT, ACTIVATOR_TIMEOUT_BODY));
            }
        };
        seat.state = SeatState::Holding(pod);
        let addr = backend.lock().pod_addrs.get(&pod).copied();
        let Some(addr) = addr else {
            drop(seat);
            return meter.finish(text(StatusCode::BAD_GATEWAY, "pod is gone\n"));
        };
        // The activator holds the pod's slot until the answer is complete, so it reads the
        // pod's (short) answer whole here, under the revision timeout, trailers included.
        let whole = async {
            let (parts, body) = exchange(&self.pool, addr, req).await?.into_parts();
            let collected = http_body_util::Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    ExchangeError::Upstream(format!("reading the upstream response: {e}"))
                })?;
            let body = collected
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed();
            Ok(Response::from_parts(parts, body))
        };
        let resp = match tokio::time::timeout_at(deadline, whole).await {
            Ok(r) => relay(r),
            // Dropping the exchange closes its connection: the queue-proxy drops the request.
            Err(_) => text(StatusCode::GATEWAY_TIMEOUT, ACTIVATOR_TIMEOUT_BODY),
        };
        drop(seat);
        meter.finish(resp)
    }
}

/// A request's activator metrics (`MetricHandler`, activator/handler/metric_handler.go:44-65):
/// recorded when it leaves the activator, with its status and the time since it entered; a
/// request whose caller hung up as the reverse proxy's cancelled request (502).
struct ActivatorMeter<'a> {
    gw: &'a Gateway,
    rev: usize,
    /// The replica it entered (set once chosen).
    a: usize,
    entered: Option<SimTime>,
    done: bool,
}

impl ActivatorMeter<'_> {
    fn finish(&mut self, resp: Response<Body>) -> Response<Body> {
        self.record(resp.status().as_u16());
        resp
    }

    fn record(&mut self, status: u16) {
        self.done = true;
        let (Some(h), Some(entered)) = (&self.gw.hooks, self.entered) else {
            return;
        };
        if let Some(m) = self.gw.activator_metrics.get(self.a) {
            m.request(self.rev, status, h.clock.now().since(entered));
        }
    }
}

impl Drop for ActivatorMeter<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record(502);
        }
    }
}

/// Counts a request in its revision's in-flight gauge while the gateway holds it.
struct InFlight<'a> {
    gw: &'a Gateway,
    backend: &'a Backend,
}

impl<'a> InFlight<'a> {
    fn enter(gw: &'a Gateway, backend: &'a Backend) -> Self {
        let mut st = backend.lock();
        st.in_flight += 1;
        gw.report(backend, &mut st);
        InFlight { gw, backend }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.backend.lock();
        st.in_flight -= 1;
        self.gw.report(self.backend, &mut st);
    }
}

enum SeatState {
    Waiting(u64),
    Holding(u32),
}

/// A request's place at the activator: waiting (forgotten if it gives up) or holding a pod
/// slot (released when it ends), whichever way its handler ends.
struct Seat<'a> {
    gw: &'a Gateway,
    backend: &'a Backend,
    a: usize,
    state: SeatState,
    /// Where `dispatch` sends the pod; it lives as long as the seat, so a send never fails.
    rx: oneshot::Receiver<u32>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        let mut st = self.backend.lock();
        match self.state {
            SeatState::Waiting(id) => {
                if st.waiters.remove(&id).is_some() {
                    st.activators[self.a].forget_waiting();
                } else if let Ok(pod) = self.rx.try_recv() {
                    // A pod was sent to it as it gave up: give the slot back.
                    st.activators[self.a].release(pod);
                    st.dispatch(self.a);
                }
            }
            SeatState::Holding(pod) => {
                st.activators[self.a].release(pod);
                st.dispatch(self.a);
            }
        }
        if let Some(h) = &self.gw.hooks {
            let now = h.clock.now();
            st.reporter.request_out(now);
            st.replica_request(self.a, -1, now.as_secs_f64());
        }
        self.gw.report(self.backend, &mut st);
    }
}

/// A response body on its way to the client, counted as an error if its trailers carry a
/// gRPC status other than 0 or it fails on the way (unless its head was counted as one
/// already). Only trailers are looked at: the data passes through untouched.
pub(crate) struct Counted {
    inner: Body,
    /// Whether it was counted as an error already.
    counted: bool,
    stats: Arc<GatewayStats>,
}

impl hyper::body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                // The head's `grpc-status`, if any, was 0: the trailers' decides.
                let cause = frame
                    .trailers_ref()
                    .and_then(|t| grpc_error(&HeaderMap::new(), Some(t)));
                if let Some(cause) = cause.filter(|_| !self.counted) {
                    self.counted = true;
                    self.stats.error(cause);
                }
            }
            Poll::Ready(Some(Err(_))) if !self.counted => {
                self.counted = true;
                self.stats.error("upstream body failed".into());
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request is the live run's own (it carries `RUN_HEADER` with the run's token).
fn is_own(hooks: &Hooks, headers: &HeaderMap) -> bool {
    headers.get(RUN_HEADER) == Some(&hooks.run_token)
}

/// The upstream's answer, without its hop-by-hop headers (an upstream's `connection: close`
/// is about its own connection, not the client's); 400 when the client's own request body
/// failed on the way, else 502 with the error's text (which names no address).
fn relay(r: Result<Response<Body>, ExchangeError>) -> Response<Body> {
    match r {
        Ok(mut resp) => {
            strip_hop_headers(resp.headers_mut());
            resp
        }
        Err(ExchangeError::ClientBody) => text(StatusCode::BAD_REQUEST, CLIENT_BODY_FAILED_BODY),
        Err(ExchangeError::Upstream(e)) => {
            let mut resp = Response::new(super::http::full(format!("{e}\n")));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp
        }
    }
}

/// The 400 for a request whose body's framing was broken (or cut) on the way in.
const CLIENT_BODY_FAILED_BODY: &str = "malformed request body\n";

/// The 501 for a request whose `Transfer-Encoding` is more than `chunked` (Envoy's
/// `http1.invalid_transfer_encoding`, codec_impl.cc: any coding but a lone `chunked` is
/// refused, as RFC 9112 6.1 allows for codings a server does not implement).
const UNSUPPORTED_TRANSFER_ENCODING_BODY: &str = "unsupported transfer encoding\n";

/// Whether an HTTP/1.1 request's `Transfer-Encoding` is one the gateway relays: absent, or
/// `chunked` alone. `gzip, chunked` would reach the backend as `chunked` with the gzip coding
/// lost (hop-by-hop framing is re-made on the upstream hop), so it is refused instead.
fn transfer_encoding_supported(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(hyper::header::TRANSFER_ENCODING).iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(v), None) => v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"),
        _ => false,
    }
}

/// Removes the hop-by-hop headers (`http::HOP_BY_HOP`), keeping `TE: trailers`.
fn strip_hop_headers(h: &mut hyper::HeaderMap) {
    use hyper::header::TE;
    let hop = &super::http::HOP_BY_HOP;
    // One pass over the few headers a message has (comparing parsed names is cheap), then a
    // removal, which hashes, only for those present: usually none or one.
    let mut present = [false; 7];
    for name in h.keys() {
        if let Some(i) = hop.iter().position(|n| *n == name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    let te_trailers = h
        .get(TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for (name, _) in hop.iter().zip(present).filter(|(_, p)| *p) {
        h.remove(name);
    }
    if te_trailers {
        h.insert(hyper::header::TE, HeaderValue::from_static("trailers"));
    }
}

/// The `hash` picker's key for a request: the `splitlab-client` header's value (a number as
/// itself, so a live run picks as the simulator does for that client; any other text hashed),
/// or a random key when the header is absent, so anonymous requests spread by weight as a
/// ring-hash balancer without its hash header does.
fn client_key<R: rand::Rng + ?Sized>(value: Option<&HeaderValue>, rng: &mut R) -> u64 {
    match value.and_then(|v| v.to_str().ok()) {
        Some(v) => v.parse().unwrap_or_else(|_| key_of(v)),
        None => rng.next_u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{stream, Stream};

    #[test]
    fn each_activator_replica_reports_its_own_average_concurrency_then_zero_once() {
        let throttlers = (0..2).map(|_| Throttler::new(1, None)).collect();
        let mut st = BackendState::new(throttlers, stream(1, 0, Stream::ActivatorLb, 0), false);
        // Replica 0 holds one request from 0.2 s to 0.7 s and another from 0.5 s to 1.0 s.
        st.replica_request(0, 1, 0.2);
        st.replica_request(0, 1, 0.5);
        st.replica_request(0, -1, 0.7);
        // (report at, replica 0, replica 1): 1 request-second over the second; then the
        // second that ends at 2 s had nothing, reported once as 0; then nothing is reported.
        // Replica 1 never had a request: never reported.
        let cases = [
            (1.0, Some(1.0), None),
            (2.0, Some(0.0), None),
            (3.0, None, None),
        ];
        for (i, (at, r0, r1)) in cases.into_iter().enumerate() {
            if i == 0 {
                // The second request leaves exactly at the report.
                st.replica_request(0, -1, 1.0);
            }
            let got = st.replica_concurrency(at, 1.0);
            let round = |v: Option<f64>| v.map(|x| (x * 1e9).round() / 1e9);
            assert_eq!(
                got.into_iter().map(round).collect::<Vec<_>>(),
                vec![r0, r1],
                "at {at}"
            );
        }
    }

    #[test]
    fn a_response_is_counted_as_an_error_once_by_its_head_or_by_its_trailers() {
        // A body of one data frame, then trailers carrying gRPC status 13.
        struct Frames(std::collections::VecDeque<Frame<bytes::Bytes>>);
        impl hyper::body::Body for Frames {
            type Data = bytes::Bytes;
            type Error = BodyError;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<bytes::Bytes>, BodyError>>> {
                Poll::Ready(self.0.pop_front().map(Ok))
            }
        }
        fn failing_trailers() -> Body {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("13"));
            Frames(
                [
                    Frame::data(bytes::Bytes::from_static(b"x")),
                    Frame::trailers(trailers),
                ]
                .into(),
            )
            .boxed()
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // (counted by its head already, errors after its body)
        for (counted, want) in [
            (false, vec![("grpc-status 13".to_string(), 1)]),
            (true, vec![]),
        ] {
            let stats = Arc::new(GatewayStats::default());
            let body = Counted {
                inner: failing_trailers(),
                counted,
                stats: stats.clone(),
            };
            rt.block_on(async {
                let collected = body.collect().await.expect("the body ends");
                assert!(collected.trailers().is_some(), "trailers pass through");
            });
            assert_eq!(stats.errors().into_iter().collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn an_upstreams_hop_by_hop_headers_stay_on_its_hop() {
        let mut resp = Response::new(super::super::http::full("x"));
        for (name, value) in [
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("content-type", "text/plain"),
            ("grpc-status", "0"),
        ] {
            resp.headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        let relayed = relay(Ok(resp));
        let mut names: Vec<_> = relayed.headers().keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "grpc-status"]);
    }

    #[test]
    fn the_headers_stripped_are_the_hop_by_hop_list_and_te_trailers_stays() {
        let mut h = HeaderMap::new();
        for name in super::super::http::HOP_BY_HOP
            .iter()
            .chain([&hyper::header::CONTENT_TYPE])
        {
            h.insert(name, HeaderValue::from_static("x"));
        }
        strip_hop_headers(&mut h);
        let names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type"]);
        h.insert(hyper::header::TE, HeaderValue::from_static("trailers"));
        strip_hop_headers(&mut h);
        assert_eq!(h.get(hyper::header::TE).unwrap(), "trailers");
    }

    #[test]
    fn only_chunked_alone_is_a_supported_transfer_encoding() {
        // (Transfer-Encoding values, relayed)
        let cases: [(&[&'static str], bool); 7] = [
            (&[], true),                      // no body framing header
            (&["chunked"], true),             // the one coding relayed
            (&[" Chunked "], true),           // case and spaces do not matter
            (&["gzip, chunked"], false),      // gzip would be lost on the way: 501
            (&["gzip", "chunked"], false),    // the same in two fields
            (&["identity, chunked"], false),  // Envoy refuses this too
            (&["chunked", "chunked"], false), // chunked twice (RFC 9112 6.1)
        ];
        for (values, ok) in cases {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(
                    hyper::header::TRANSFER_ENCODING,
                    HeaderValue::from_static(v),
                );
            }
            assert_eq!(transfer_encoding_supported(&h), ok, "{values:?}");
        }
    }

    #[test]
    fn client_key_is_the_number_or_the_hash_of_the_header() {
        let mut rng = stream(1, 0, Stream::Routing, 0);
        // (header value, key)
        let cases = [
            ("42", 42),                 // a scenario's client id, as itself
            ("0", 0),                   // client 0 is a client like any other
            ("alice", key_of("alice")), // any other text, hashed
            ("18446744073709551616", key_of("18446744073709551616")), // beyond u64: hashed
        ];
        for (value, key) in cases {
            let v = HeaderValue::from_static(value);
            assert_eq!(client_key(Some(&v), &mut rng), key, "{value}");
        }
        // No header: a fresh random key each time.
        let a = client_key(None, &mut rng);
        let b = client_key(None, &mut rng);
        assert_ne!(a, b);
    }
}
