//! HTTP pieces shared by the live servers, the gateway and the load generator: the server
//! (HTTP/1.1 and HTTP/2 on one port, TLS optional), body types, the header names, Knative's
//! error responses, connection set-up, the upstream connection pool and the streaming relay,
//! and the classification of a response as an error (`error_cause`, gRPC-aware).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::guard::{
    AcceptBackoff, AcceptStep, ConnLimits, ConnStats, ConnWatch, Expiry, Tracked, Watched,
    CLOSE_GRACE,
};
use super::relay;

/// A body's error: hyper's own, or the lean relay's (`relay`), which hyper cannot make. A
/// concrete type: with `Box<dyn Error>` the servers' futures fail the compiler's `Send` check.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The upstream's response body failed on the way (`relay`).
    #[error("{0}")]
    Relay(String),
}

/// Every body the live mode sends or relays.
pub type Body = BoxBody<Bytes, BodyError>;

/// A body hyper received, as a `Body`.
pub fn boxed(body: Incoming) -> Body {
    body.map_err(BodyError::Hyper).boxed()
}

/// What a server's handler may answer with: `Body`, or a body type of its own that wraps one
/// (the gateway's counting body), served without boxing it again.
pub trait ResponseBody:
    hyper::body::Body<Data = Bytes, Error = BodyError> + Send + Unpin + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data = Bytes, Error = BodyError> + Send + Unpin + 'static
{
}

/// The response header naming the revision that answered (or that the gateway routed to).
pub const REVISION_HEADER: &str = "knative-serving-revision";
/// The response header naming the pod that answered.
pub const POD_HEADER: &str = "knative-serving-pod";
/// Knative's tag-header routing request header (`Knative-Serving-Tag`).
pub const TAG_HEADER: &str = "knative-serving-tag";
/// The header the ingress appends to requests that took the default route while tag-header
/// routing is on (`Knative-Serving-Default-Route: true`); the queue-proxy's route tag reads it.
pub const DEFAULT_ROUTE_HEADER: &str = "knative-serving-default-route";
/// The request header carrying the client id, the `hash` picker's key (the arrival's client in
/// the scenario). A numeric value is the key itself, so a live run picks exactly as the
/// simulator does; any other value is hashed (`routing::pick::key_of`).
pub const CLIENT_HEADER: &str = "splitlab-client";

/// `REVISION_HEADER`, `TAG_HEADER` and `GRPC_STATUS` as parsed names, for the gateway's
/// per-request lookups: a lookup by `&str` parses and validates the name every time.
pub static REVISION_NAME: HeaderName = HeaderName::from_static(REVISION_HEADER);
pub static TAG_NAME: HeaderName = HeaderName::from_static(TAG_HEADER);
pub static GRPC_STATUS_NAME: HeaderName = HeaderName::from_static(GRPC_STATUS);

/// The queue-proxy's 503 when its breaker is full (`breaker.go:28`, `http.Error` adds `\n`).
pub const QUEUE_FULL_BODY: &str = "pending request queue full\n";
/// The queue-proxy's 504 at the revision timeout (`timeout.go:281-286`, no newline).
pub const QP_TIMEOUT_BODY: &str = "request timeout";
/// The activator's 504 at the revision timeout (`cmd/activator/main.go:232-247`).
pub const ACTIVATOR_TIMEOUT_BODY: &str = "activator request timeout";
/// A failing revision's application error (`model::failure`), with its `error_status`.
pub const APP_ERROR_BODY: &str = "application error\n";
/// The queue-proxy's 502 when its application does not accept the connection (not serving
/// yet, or crashed): the reverse proxy's dial error as knative.dev/pkg `network.ErrorHandler`
/// writes it (`err.Error()`), the user port being 8080.
pub const QP_APP_REFUSED_BODY: &str = "dial tcp 127.0.0.1:8080: connect: connection refused";
/// The queue-proxy's 502 for a request its application held when it crashed.
pub const QP_APP_CRASHED_BODY: &str = "EOF";

/// The hop-by-hop header fields (RFC 9110 7.6.1): about one connection, never forwarded, in
/// either direction. `TE: trailers` is the exception the gateway passes on, the one value
/// HTTP/2 allows (RFC 9113 8.2.2), which gRPC clients send and Envoy forwards.
pub static HOP_BY_HOP: [HeaderName; 7] = [
    hyper::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    hyper::header::TE,
    hyper::header::TRAILER,
    hyper::header::TRANSFER_ENCODING,
    hyper::header::UPGRADE,
];

/// Whether a header field stays on its hop (`HOP_BY_HOP`, but not `TE: trailers`).
pub fn stays_on_hop(name: &str, value: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str()))
        && !(name.eq_ignore_ascii_case("te") && value.eq_ignore_ascii_case(b"trailers"))
}

/// The largest request header section a server accepts (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Serves HTTP/1.1 and HTTP/2 on `listener` with `handler` until `stop` turns true (`serve_with`
/// without TLS, with the default `ConnLimits`).
pub async fn serve<H, F, B>(listener: TcpListener, stop: watch::Receiver<bool>, handler: H)
where
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody,
{
    serve_with(listener, ServeOptions::default(), stop, handler).await;
}

/// How long a TLS client has to finish its handshake before its connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's settings beside its handler: TLS, the limits on its connections and where it
/// counts what those limits did.
#[derive(Clone, Default)]
pub struct ServeOptions {
    pub tls: Option<TlsAcceptor>,
    pub limits: ConnLimits,
    pub stats: Arc<ConnStats>,
    /// The connection cap's slots when several servers share one cap (the gateway's workers
    /// share `limits.max_connections`); `None`: the server makes its own.
    pub slots: Option<Arc<Semaphore>>,
}

/// Serves on `listener` with `handler` until `stop` turns true; then it stops accepting, and
/// each open connection finishes the requests it carries and closes.
///
/// Each connection speaks HTTP/1.1 or HTTP/2, whichever the client opens with (an HTTP/2
/// client's connection preface, RFC 9113 3.4, selects HTTP/2: h2c with prior knowledge in
/// clear text, ALPN `h2` under TLS), as Envoy's listeners with `codec_type: AUTO` do. With
/// `tls`, every connection is TLS first. HTTP/2 requests reach `handler` one by one, so a
/// connection's requests are routed each on its own. Malformed requests get 400 and oversized
/// headers 431 from hyper (over HTTP/2 the stream is refused); they never reach `handler`.
///
/// Hostile clients (`guard`): a connection beyond `limits.max_connections` is closed as soon
/// as it is accepted; a request head must arrive within the header timeout (408, then close)
/// and a connection without requests is closed after the idle timeout. A failing `accept` (the
/// file-descriptor limit) is retried with a back-off and logged once per burst on stderr.
pub async fn serve_with<H, F, B>(
    listener: TcpListener,
    options: ServeOptions,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody,
{
    let ServeOptions {
        tls,
        limits,
        stats,
        slots,
    } = options;
    let slots = slots.unwrap_or_else(|| Arc::new(Semaphore::new(limits.max_connections)));
    let mut backoff = AcceptBackoff::default();
    let local = listener
        .local_addr()
        .map_or_else(|_| "its address".to_string(), |a| a.to_string());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                if let AcceptStep::Go(Some(failures)) = backoff.succeeded() {
                    // A server's log line, at the moment it happens (the caller is serving).
                    eprintln!(
                        "splitlab: accepting on {local} again after {failures} failed accepts"
                    );
                }
                stream
            }
            Err(e) => {
                if let AcceptStep::Wait(pause, first) = backoff.failed(&e) {
                    stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if first {
                        eprintln!(
                            "splitlab: cannot accept connections on {local}: {e}; retrying with a \
                             back-off of up to 1 s (raise the open-files limit, `ulimit -n`, or \
                             lower the connection cap)"
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: closed at once, as Envoy's listener connection limit does.
            stats.refused_at_cap.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, stop, limits, &stats, handler).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    // A failed or slow handshake ends that connection only.
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_connection(stream, stop, limits, &stats, handler).await;
                    }
                }
            }
        });
    }
}

/// Serves one connection, HTTP/1.1 or HTTP/2 as its first bytes say, until it ends, `stop`, or
/// one of its timers (`guard`) closes it.
pub(crate) async fn serve_connection<I, H, F, B>(
    io: I,
    mut stop: watch::Receiver<bool>,
    limits: ConnLimits,
    stats: &ConnStats,
    handler: H,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody,
{
    let conn_watch = ConnWatch::new();
    let requests = conn_watch.clone();
    let service = hyper::service::service_fn(move |req| {
        let in_flight = requests.begin();
        let response = handler(req);
        async move {
            let resp = response.await;
            Ok::<_, Infallible>(resp.map(|inner| Tracked {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let io = Watched::new(io, conn_watch.clone());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // The timer never fires after a deadline (`ConnWatch::next_check`); when it finds none due
    // it is set again.
    let first = conn_watch.next_check(&limits, tokio::time::Instant::now());
    let timer = tokio::time::sleep_until(first.unwrap_or_else(tokio::time::Instant::now));
    tokio::pin!(timer);
    let armed = first.is_some();
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.changed() => break,
            _ = timer.as_mut(), if armed => match conn_watch.expired(&limits) {
                Some(Expiry::Header) => {
                    stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    // The reader answers 408 and reads as closed: hyper ends the connection.
                    conn_watch.time_out();
                    let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                    return;
                }
                Some(Expiry::Idle) => {
                    stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                    return;
                }
                None => {
                    if let Some(at) = conn_watch.next_check(&limits, tokio::time::Instant::now()) {
                        timer.as_mut().reset(at);
                    }
                }
            },
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Sets a header from a string that is known to be a valid header value (revision and pod
/// names are DNS labels); an invalid one is left out rather than panicking.
pub fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Opens an HTTP/1.1 connection to `addr` and drives it on the runtime.
pub async fn connect(addr: SocketAddr) -> std::io::Result<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // The connection ends when the peer closes it or every sender is dropped.
        let _ = conn.await;
    });
    Ok(send)
}

/// Opens an HTTP/1.1 connection to `addr` for relaying: its read buffer is capped at
/// `MAX_HEADER_BYTES` (hyper's default lets it grow to about 400 KiB), so a relayed body moves
/// in frames of at most that size and each response held by a slow client costs the gateway
/// a few such frames (its server side's write buffer has the same cap).
pub async fn connect_upstream(addr: SocketAddr) -> std::io::Result<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEADER_BYTES)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // The connection ends when the peer closes it or every sender is dropped.
        let _ = conn.await;
    });
    Ok(send)
}

/// Opens an HTTP/2 connection to `addr` with prior knowledge (h2c) and drives it on the
/// runtime.
pub async fn connect_h2c(addr: SocketAddr) -> std::io::Result<http2::SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // The connection ends when the peer closes it or every sender is dropped.
        let _ = conn.await;
    });
    Ok(send)
}

/// Upstream connections per address: idle HTTP/1.1 keep-alive connections, and one shared
/// HTTP/2 connection (it multiplexes every request to that address). An HTTP/1.1 connection
/// is taken for one exchange and given back as soon as its response body has been relayed to
/// the end; its task may not have seen that end yet (hyper marks it ready a poll later), so
/// `take` waits for it to be ready, which on a live connection is at once.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<AddrMap<Vec<SendRequest<Body>>>>>,
    /// Idle connections of the lean client (`relay`), most recently used last.
    lean: Arc<Mutex<AddrMap<Vec<relay::Conn>>>>,
    h2: Arc<Mutex<AddrMap<http2::SendRequest<Body>>>>,
}

/// A map keyed by backend address. The pool looks one up twice per relayed request, and with
/// the default SipHash hashing the address was most of that; the keys are the configured
/// backends' and pods' addresses, not chosen by clients, so a hash that resists chosen keys
/// buys nothing here.
type AddrMap<V> = HashMap<SocketAddr, V, std::hash::BuildHasherDefault<AddrHasher>>;

/// A multiply-rotate hash (as rustc's `FxHasher`) of the few integers a `SocketAddr` hashes,
/// finished with `mix64`.
#[derive(Default)]
struct AddrHasher(u64);

impl AddrHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits depending on the low bits only (the port's last
        // write): a finalizer mixes every bit into the bucket index hashbrown takes from them.
        crate::routing::pick::mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

impl Pool {
    /// An idle connection to `addr` that is still open, if any (it may be finishing the end of
    /// its last response: `take` waits for it).
    fn idle(&self, addr: SocketAddr) -> Option<SendRequest<Body>> {
        let mut idle = self
            .idle
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it");
        let conns = idle.get_mut(&addr)?;
        // Connections the peer closed meanwhile are dropped on the way.
        std::iter::from_fn(|| conns.pop()).find(|c| !c.is_closed())
    }

    /// An idle connection to `addr` once it is ready, or a new one (`connect_upstream`).
    pub async fn take(&self, addr: SocketAddr) -> std::io::Result<SendRequest<Body>> {
        while let Some(mut c) = self.idle(addr) {
            // Ready at once unless its task is still reading the end of the last response; an
            // error means the peer closed it meanwhile: try the next one.
            if c.ready().await.is_ok() {
                return Ok(c);
            }
        }
        connect_upstream(addr).await
    }

    /// The HTTP/2 connection to `addr`, opened if there is none or the peer closed it.
    pub async fn take_h2(&self, addr: SocketAddr) -> std::io::Result<http2::SendRequest<Body>> {
        let open = self
            .h2
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .get(&addr)
            .filter(|c| c.is_ready())
            .cloned();
        if let Some(c) = open {
            return Ok(c);
        }
        // Two requests may open one each at the same moment; the later one stays pooled and
        // the other serves its request, then closes when its last sender is dropped.
        let c = connect_h2c(addr).await?;
        self.put_h2(addr, c.clone());
        Ok(c)
    }

    /// Pools `conn` as the HTTP/2 connection to `addr`, in place of the one there (which its
    /// peer is closing: requests still on it finish there).
    fn put_h2(&self, addr: SocketAddr, conn: http2::SendRequest<Body>) {
        self.h2
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .insert(addr, conn);
    }

    /// Returns a connection after a complete exchange (its response read to the end).
    fn give_back(&self, addr: SocketAddr, conn: SendRequest<Body>) {
        if !conn.is_closed() {
            self.idle
                .lock()
                .expect("pool lock is never poisoned: no code panics while holding it")
                .entry(addr)
                .or_default()
                .push(conn);
        }
    }

    /// The most recently used idle lean connection to `addr` that is still open, if any.
    pub(super) fn take_lean(&self, addr: SocketAddr) -> Option<relay::Conn> {
        let mut idle = self
            .lean
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it");
        let conns = idle.get_mut(&addr)?;
        std::iter::from_fn(|| conns.pop()).find(|c| c.is_open())
    }

    /// Returns a lean connection after a complete response with nothing after it.
    pub(super) fn give_back_lean(&self, addr: SocketAddr, conn: relay::Conn) {
        self.lean
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .entry(addr)
            .or_default()
            .push(conn);
    }

    /// Drops every idle connection to `addr` (its server is going away).
    pub fn forget(&self, addr: SocketAddr) {
        self.lean
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .remove(&addr);
        self.idle
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .remove(&addr);
        self.h2
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .remove(&addr);
    }
}

/// The largest response body `send_on` reads whole (the load generator's responses; the
/// gateway's activator stage reads its pods' short answers whole too). The gateway streams
/// every other response through without holding it.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Why an exchange on a connection failed.
#[derive(Debug)]
pub enum SendError {
    /// The request could not be sent or no response head came back.
    Request(hyper::Error),
    /// The response body failed or exceeded `MAX_BODY_BYTES`.
    Body(String),
}

/// Sends `req` on `conn` and reads the whole response (at most `MAX_BODY_BYTES`). Afterwards
/// `conn` is ready for the next request if the server keeps the connection open.
pub async fn send_on(
    conn: &mut SendRequest<Body>,
    req: hyper::Request<Body>,
) -> Result<Response<Bytes>, SendError> {
    send_on_with_trailers(conn, req).await.map(|(resp, _)| resp)
}

/// `send_on`, with the response's trailers (gRPC's `grpc-status` travels in them).
pub async fn send_on_with_trailers(
    conn: &mut SendRequest<Body>,
    req: hyper::Request<Body>,
) -> Result<(Response<Bytes>, Option<HeaderMap>), SendError> {
    let resp = conn.send_request(req).await.map_err(SendError::Request)?;
    let (parts, body) = resp.into_parts();
    let collected = http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| SendError::Body(e.to_string()))?;
    let trailers = collected.trailers().cloned();
    Ok((Response::from_parts(parts, collected.to_bytes()), trailers))
}

/// Why an exchange with a backend failed, in words a client may see: never the backend's
/// address (the gateway's backends are internal; Envoy's local replies name none either).
#[derive(Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The client's own request body failed on the way (bad chunked framing, or the client
    /// hung up mid-body): the client's fault, 400 (Envoy answers a codec error with 400).
    ClientBody,
    /// The backend could not be reached or did not answer properly: 502 with this text.
    Upstream(String),
}

impl ExchangeError {
    /// A failed `send_request`: the client's fault if the request body it was relaying (the
    /// client's `Incoming`) is what failed (hyper reports it as a user error caused by that
    /// body's own hyper error).
    fn of_request(e: &hyper::Error) -> Self {
        let client_body = e.is_user()
            && std::error::Error::source(e).is_some_and(|s| {
                s.is::<hyper::Error>()
                    || s.downcast_ref::<BodyError>()
                        .is_some_and(|b| matches!(b, BodyError::Hyper(_)))
            });
        if client_body {
            ExchangeError::ClientBody
        } else {
            ExchangeError::Upstream(format!("upstream request failed: {e}"))
        }
    }

    pub(super) fn of_connect(e: &std::io::Error) -> Self {
        ExchangeError::Upstream(format!("upstream connect error: {e}"))
    }
}

/// Sends `req` to `addr` and returns the response as soon as its head arrives; its body is
/// relayed frame by frame as the caller reads it (backpressure: nothing is read from the
/// upstream faster than the caller takes it, so the gateway holds at most a few frames per
/// response whatever the body's size). Trailers pass through.
///
/// An HTTP/2 request goes over the pool's HTTP/2 connection to `addr` (h2c with prior
/// knowledge: what a Knative ingress does for a revision whose port is named `h2c`, and what
/// gRPC needs end to end); any other over a pooled HTTP/1.1 connection, given back to the pool
/// only once the body was relayed to its end (a body the caller abandons closes it).
pub async fn exchange(
    pool: &Pool,
    addr: SocketAddr,
    req: hyper::Request<Body>,
) -> Result<Response<Body>, ExchangeError> {
    // The lean path's future is the common one and stays inline; the other two are boxed, so
    // that every request's future is not as large as theirs (it is moved a few times).
    if req.version() == Version::HTTP_2 {
        return Box::pin(exchange_h2(pool, addr, req)).await;
    }
    if relay::is_lean(&req) {
        return relay::exchange(pool, addr, req).await;
    }
    Box::pin(exchange_h1(pool, addr, req)).await
}

/// `exchange` over the pool's HTTP/2 connection to `addr`.
async fn exchange_h2(
    pool: &Pool,
    addr: SocketAddr,
    mut req: hyper::Request<Body>,
) -> Result<Response<Body>, ExchangeError> {
    let mut conn = pool
        .take_h2(addr)
        .await
        .map_err(|e| ExchangeError::of_connect(&e))?;
    // HTTP/2 names the target in :scheme and :authority; an h2c hop is plain http.
    if req.uri().scheme().is_none() {
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(hyper::http::uri::Scheme::HTTP);
        if parts.authority.is_none() {
            parts.authority = addr.to_string().parse().ok();
        }
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(hyper::http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = hyper::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    // A request the backend never processed goes again on a new connection, once: one
    // the pooled connection never sent (it was closing) comes back whole; one it sent is
    // kept for that only when it has no body (a body is read on the way, not replayable).
    let again = hyper::body::Body::is_end_stream(req.body()).then(|| replay(&req));
    let mut e = match conn.try_send_request(req).await {
        Ok(resp) => return Ok(resp.map(boxed)),
        Err(e) => e,
    };
    let unsent = e.take_message();
    let Some(req) = unsent.or_else(|| again.filter(|r| unprocessed(e.error(), r.method()))) else {
        return Err(ExchangeError::of_request(&e.into_error()));
    };
    let mut conn = connect_h2c(addr)
        .await
        .map_err(|e| ExchangeError::of_connect(&e))?;
    // Queued on the new connection before others may take it from the pool: the first
    // stream of a connection is never refused by a server that closes after N requests.
    let sent = conn.send_request(req);
    pool.put_h2(addr, conn);
    let resp = sent.await.map_err(|e| ExchangeError::of_request(&e))?;
    Ok(resp.map(boxed))
}

/// `exchange` over a pooled HTTP/1.1 connection with hyper's client (a request with a body, or
/// `CONNECT`).
async fn exchange_h1(
    pool: &Pool,
    addr: SocketAddr,
    req: hyper::Request<Body>,
) -> Result<Response<Body>, ExchangeError> {
    let mut conn = pool
        .take(addr)
        .await
        .map_err(|e| ExchangeError::of_connect(&e))?;
    let resp = conn
        .send_request(req)
        .await
        .map_err(|e| ExchangeError::of_request(&e))?;
    let (parts, body) = resp.into_parts();
    let body = Relayed {
        inner: body,
        conn: Some((pool.clone(), addr, conn)),
    };
    Ok(Response::from_parts(parts, body.boxed()))
}

/// A copy of a request without a body: method, target, version and headers.
fn replay(req: &hyper::Request<Body>) -> hyper::Request<Body> {
    let mut copy = hyper::Request::new(full(Bytes::new()));
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// Whether an HTTP/2 request that failed with `e` was certainly not processed by the backend,
/// so that sending it again cannot do its work twice (RFC 9113 8.7):
/// - the backend refused its stream (`REFUSED_STREAM`), whatever the method;
/// - or the backend's GOAWAY ended the connection (nginx sends one after `keepalive_requests`,
///   Envoy and Go's server when they drain), and the method is idempotent (RFC 9110 9.2.2).
///   A GOAWAY's last stream id leaves the streams above it unprocessed, but a stream below it
///   that the closing connection cut off reports the same error, and may have been processed:
///   only an idempotent request may go again without knowing which.
fn unprocessed(e: &hyper::Error, method: &hyper::Method) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            let refused = h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            return refused || (h2.is_go_away() && h2.is_remote() && method.is_idempotent());
        }
        source = s.source();
    }
    false
}

/// An upstream HTTP/1.1 response body on its way to the client; its connection goes back to
/// the pool when the body's last frame has been taken.
struct Relayed {
    inner: Incoming,
    conn: Option<(Pool, SocketAddr, SendRequest<Body>)>,
}

impl Relayed {
    fn ended(&mut self) {
        // Its task may not have seen the end of the response it just delivered yet: the next
        // `Pool::take` waits for that (no task per response to wait for it here).
        if let Some((pool, addr, conn)) = self.conn.take() {
            pool.give_back(addr, conn);
        }
    }
}

impl hyper::body::Body for Relayed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.ended(),
            // A failed body leaves its connection unusable: it closes with `conn`.
            Poll::Ready(Some(Err(_))) => self.conn = None,
            _ => {}
        }
        polled.map(|frame| frame.map(|r| r.map_err(BodyError::Hyper)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// What a response means for the gateway and the load generator: `None` when it is a success,
/// else the error's cause. An HTTP status of 400 or above is `HTTP N`; a gRPC status other
/// than 0 is `grpc-status N`, whether it came in the headers (a trailers-only response) or in
/// the trailers (gRPC over HTTP/2, PROTOCOL-HTTP2.md): a gRPC call that failed is answered
/// with HTTP 200, so the status alone would count it as served.
pub fn error_cause(
    status: StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) -> Option<String> {
    if status.as_u16() >= 400 {
        return Some(format!("HTTP {}", status.as_u16()));
    }
    grpc_error(headers, trailers)
}

/// The header (or trailer) carrying a gRPC call's status code.
pub const GRPC_STATUS: &str = "grpc-status";

/// `grpc-status N` when the response's gRPC status (trailers first, then headers) is present
/// and not 0 (OK).
pub fn grpc_error(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> Option<String> {
    let value = trailers
        .and_then(|t| t.get(&GRPC_STATUS_NAME))
        .or_else(|| headers.get(&GRPC_STATUS_NAME))?;
    let value = String::from_utf8_lossy(value.as_bytes());
    let value = value.trim();
    (value != "0").then(|| format!("{GRPC_STATUS} {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_addresses_hash_apart() {
        use std::hash::BuildHasher;
        let hasher = std::hash::BuildHasherDefault::<AddrHasher>::default();
        let addrs = (0..64u8).flat_map(|host| {
            (8000..8064u16).map(move |port| SocketAddr::from(([10, 0, 0, host], port)))
        });
        let hashes: Vec<u64> = addrs.map(|a| hasher.hash_one(a)).collect();
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), hashes.len(), "every address its own hash");
        // hashbrown picks the bucket from the low bits and a tag from the top 7.
        let low: std::collections::HashSet<_> = hashes.iter().map(|h| h & 1023).collect();
        let top: std::collections::HashSet<_> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 900, "{} of 1024 buckets", low.len());
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn a_grpc_status_other_than_0_is_an_error_in_headers_or_trailers() {
        let map = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        // (status, headers, trailers, cause)
        let cases: &[(u16, HeaderMap, Option<HeaderMap>, Option<&str>)] = &[
            // A plain HTTP success.
            (200, map(&[]), None, None),
            // A gRPC call that succeeded: status 0 in the trailers.
            (200, map(&[]), Some(map(&[("grpc-status", "0")])), None),
            // A gRPC call that failed (INTERNAL) answers HTTP 200: the trailer decides.
            (
                200,
                map(&[]),
                Some(map(&[("grpc-status", "13")])),
                Some("grpc-status 13"),
            ),
            // A trailers-only response carries the status in its headers.
            (
                200,
                map(&[("grpc-status", "5")]),
                None,
                Some("grpc-status 5"),
            ),
            // The trailers are the final word when both are there.
            (
                200,
                map(&[("grpc-status", "0")]),
                Some(map(&[("grpc-status", "14")])),
                Some("grpc-status 14"),
            ),
            // An HTTP error is an error whatever the gRPC status says.
            (502, map(&[("grpc-status", "0")]), None, Some("HTTP 502")),
            (404, map(&[]), None, Some("HTTP 404")),
            // A redirect is not an error.
            (302, map(&[]), None, None),
        ];
        for (status, headers, trailers, want) in cases {
            let got = error_cause(
                StatusCode::from_u16(*status).expect("valid status"),
                headers,
                trailers.as_ref(),
            );
            assert_eq!(got.as_deref(), *want, "{status} {headers:?} {trailers:?}");
        }
    }
}
