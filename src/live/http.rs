//! HTTP pieces shared by the live servers, the gateway and the load generator: body types, the
//! header names, Knative's error responses, connection set-up and the upstream connection pool.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Every body the live mode sends or relays.
pub type Body = BoxBody<Bytes, hyper::Error>;

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

/// The largest request header section a server accepts (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Serves HTTP/1.1 on `listener` with `handler` until `stop` turns true; then it stops
/// accepting, and each open connection finishes the request it carries and closes. Malformed
/// requests get 400 and oversized headers 431 from hyper; they never reach `handler`.
pub async fn serve<H, F>(listener: TcpListener, mut stop: watch::Receiver<bool>, handler: H)
where
    H: Fn(hyper::Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = handler(req);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
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

/// Idle keep-alive connections per upstream address. A connection is taken for one exchange
/// and given back once its response body has been read to the end, so a pooled connection is
/// always ready for the next request.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<HashMap<SocketAddr, Vec<SendRequest<Body>>>>>,
}

impl Pool {
    /// An idle connection to `addr` that is still open, if any.
    pub fn idle(&self, addr: SocketAddr) -> Option<SendRequest<Body>> {
        let mut idle = self
            .idle
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it");
        let conns = idle.get_mut(&addr)?;
        // Connections the peer closed meanwhile are dropped on the way.
        std::iter::from_fn(|| conns.pop()).find(SendRequest::is_ready)
    }

    /// An idle connection to `addr`, or a new one.
    pub async fn take(&self, addr: SocketAddr) -> std::io::Result<SendRequest<Body>> {
        match self.idle(addr) {
            Some(c) => Ok(c),
            None => connect(addr).await,
        }
    }

    /// Returns a connection after a complete exchange.
    pub fn give_back(&self, addr: SocketAddr, conn: SendRequest<Body>) {
        if conn.is_ready() {
            self.idle
                .lock()
                .expect("pool lock is never poisoned: no code panics while holding it")
                .entry(addr)
                .or_default()
                .push(conn);
        }
    }

    /// Drops every idle connection to `addr` (its server is going away).
    pub fn forget(&self, addr: SocketAddr) {
        self.idle
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
            .remove(&addr);
    }
}

/// The largest response body the gateway relays (it reads bodies whole before relaying them).
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
    let resp = conn.send_request(req).await.map_err(SendError::Request)?;
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| SendError::Body(e.to_string()))?
        .to_bytes();
    Ok(Response::from_parts(parts, bytes))
}

/// Sends `req` to `addr` over a pooled connection and reads the whole response. Errors are the
/// text the gateway puts in its 502.
pub async fn exchange(
    pool: &Pool,
    addr: SocketAddr,
    req: hyper::Request<Body>,
) -> Result<Response<Bytes>, String> {
    let mut conn = pool
        .take(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let resp = send_on(&mut conn, req).await.map_err(|e| match e {
        SendError::Request(e) => format!("proxy to {addr}: {e}"),
        SendError::Body(e) => format!("reading the response of {addr}: {e}"),
    })?;
    pool.give_back(addr, conn);
    Ok(resp)
}
