//! The load generator's client connections: HTTP/1.1 or HTTP/2, over TCP or TLS.
//!
//! Owns, for `splitlab load`: connection set-up (TCP, the TLS handshake with the `tls` module's
//! configuration and ALPN, the HTTP/1.1 or HTTP/2 handshake), one exchange on a connection
//! (the request adapted to the protocol: `Host` for HTTP/1.1, `:authority` and `:scheme` for
//! HTTP/2), the causes a failed exchange is counted under, and the idle connections between
//! requests.
//!
//! An HTTP/1.1 connection is the lean client's (`h1`) when the caller has a prepared request
//! for its target (`connect`'s `lean`), else hyper's; HTTP/2 is always hyper's.
//!
//! A connection carries one request at a time whatever its protocol: HTTP/2's streams are not
//! multiplexed, so `--connections N` means at most N requests in flight over at most N
//! connections for HTTP/1.1 and HTTP/2 alike, and the open and closed loops behave the same.
//!
//! Must not: serve (the servers are in `http`), retry, or choose targets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::h1;
use super::http::{Body, MAX_BODY_BYTES};

/// How a target is reached.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTP/1.1 over TCP (`http://`).
    Http1,
    /// HTTP/2 with prior knowledge over TCP (`http://` with `--h2c`).
    H2c,
    /// TLS (`https://`): HTTP/2 when ALPN chose `h2` (offered with `--http2`), else HTTP/1.1.
    Tls {
        /// SNI and the name the certificate must hold.
        server_name: ServerName<'static>,
        config: Arc<rustls::ClientConfig>,
    },
}

impl Transport {
    /// Whether two targets on the same address may share connections.
    pub fn same_as(&self, other: &Transport) -> bool {
        match (self, other) {
            (Transport::Http1, Transport::Http1) | (Transport::H2c, Transport::H2c) => true,
            (
                Transport::Tls {
                    server_name: a,
                    config: ca,
                },
                Transport::Tls {
                    server_name: b,
                    config: cb,
                },
            ) => a == b && Arc::ptr_eq(ca, cb),
            _ => false,
        }
    }
}

/// The protocol a connection speaks (`summary.json` `protocol`, `load.json` `connections`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// HTTP/1.1, over TCP or TLS.
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2,
    /// HTTP/2 over cleartext, prior knowledge.
    H2c,
}

impl Protocol {
    /// Every protocol the client speaks.
    pub const ALL: [Protocol; 3] = [Protocol::Http1, Protocol::H2, Protocol::H2c];

    /// The ALPN identifier (`h2c` for cleartext HTTP/2, as RFC 7540 §3.1 names it).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "http/1.1",
            Protocol::H2 => "h2",
            Protocol::H2c => "h2c",
        }
    }
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
    /// The lean HTTP/1.1 client (`h1`).
    Lean(Box<h1::Conn>),
}

/// One client connection.
pub struct Conn {
    sender: Sender,
    protocol: Protocol,
    /// `https` or `http`, HTTP/2's `:scheme`.
    scheme: &'static str,
    /// The last `Host` sent over HTTP/1.1 and its header value: a connection's requests
    /// almost always name the same host, so it is checked once, not per request.
    host: Option<(String, HeaderValue)>,
}

impl Conn {
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the connection can take the next request (the peer has not closed it).
    pub fn is_ready(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_ready(),
            Sender::H2(s) => s.is_ready(),
            Sender::Lean(c) => c.is_ready(),
        }
    }

    /// The lean HTTP/1.1 connection, when it is one.
    pub fn lean(&mut self) -> Option<&mut h1::Conn> {
        match &mut self.sender {
            Sender::Lean(c) => Some(c),
            _ => None,
        }
    }

    /// Whether it may carry a request that wants (`lean`) or does not want the lean HTTP/1.1
    /// client: an HTTP/2 connection carries either.
    pub fn fits(&self, lean: bool) -> bool {
        match &self.sender {
            Sender::H1(_) => !lean,
            Sender::Lean(_) => lean,
            Sender::H2(_) => true,
        }
    }

    /// Sends `req` (its URI the path and query) to `host` and reads the whole response (at most
    /// `MAX_BODY_BYTES`). HTTP/1.1 gets `Host: host`; HTTP/2 gets `:authority` = `host` and no
    /// `Host` header (RFC 9113 §8.3.1). Errors are the cause the request is counted under.
    pub async fn send(
        &mut self,
        mut req: Request<Body>,
        host: &str,
    ) -> Result<Response<Bytes>, String> {
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                if self.host.as_ref().is_none_or(|(h, _)| h != host) {
                    self.host = HeaderValue::from_str(host)
                        .ok()
                        .map(|v| (host.to_string(), v));
                }
                if let Some((_, h)) = &self.host {
                    req.headers_mut().insert(HOST, h.clone());
                }
                s.send_request(req).await
            }
            Sender::H2(s) => {
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                *req.uri_mut() = Uri::builder()
                    .scheme(self.scheme)
                    .authority(host)
                    .path_and_query(path)
                    .build()
                    .map_err(|e| format!("bad host {host:?}: {e}"))?;
                req.headers_mut().remove(HOST);
                s.send_request(req).await
            }
            Sender::Lean(_) => {
                return Err("http: a lean connection got a hyper request".to_string());
            }
        }
        .map_err(|e| error_kind(&e))?;
        let (mut parts, body) = resp.into_parts();
        let (bytes, trailers) = read_body(body).await?;
        // gRPC's status comes in the trailers (`http::grpc_error` reads them from here).
        if let Some(trailers) = trailers {
            parts.extensions.insert(Trailers(trailers));
        }
        Ok(Response::from_parts(parts, bytes))
    }
}

/// Reads a response body whole (at most `MAX_BODY_BYTES`) with its trailers. A body of one
/// data frame (the usual small response) is kept as it came, without a copy.
async fn read_body(
    mut body: hyper::body::Incoming,
) -> Result<(Bytes, Option<hyper::HeaderMap>), String> {
    let failed = || "reading the response body".to_string();
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    let mut len = 0usize;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| failed())?;
        let frame = match frame.into_data() {
            Ok(data) => {
                len += data.len();
                if len > MAX_BODY_BYTES {
                    return Err(failed());
                }
                match (&mut first, &mut rest) {
                    (None, _) => first = Some(data),
                    (Some(f), None) => {
                        let mut b = bytes::BytesMut::with_capacity(f.len() + data.len());
                        b.extend_from_slice(f);
                        b.extend_from_slice(&data);
                        rest = Some(b);
                    }
                    (Some(_), Some(b)) => b.extend_from_slice(&data),
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(t) = frame.into_trailers() {
            trailers = Some(t);
        }
    }
    let bytes = match rest {
        Some(b) => b.freeze(),
        None => first.unwrap_or_default(),
    };
    Ok((bytes, trailers))
}

/// The trailers of a response `Conn::send` read (HTTP/2 and chunked HTTP/1.1), in its
/// extensions.
#[derive(Clone, Debug)]
pub struct Trailers(pub hyper::HeaderMap);

/// Opens a connection to `addr` as `transport` says and drives it on the runtime. Errors are
/// the cause the request is counted under: `connect: connection refused`, `tls: invalid peer
/// certificate: UnknownIssuer`, `http2 handshake: …`. With `lean` (the response headers to
/// keep), an HTTP/1.1 connection is the lean client's (`h1`), else hyper's.
pub async fn connect(
    addr: SocketAddr,
    transport: &Transport,
    lean: Option<&[HeaderName]>,
) -> Result<Conn, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    match transport {
        Transport::Http1 => match lean {
            Some(keep) => Ok(lean_conn(
                Box::new(h1::Conn::tcp(tcp, keep.to_vec())),
                "http",
            )),
            None => h1(tcp, "http").await,
        },
        Transport::H2c => h2(tcp, "http", Protocol::H2c).await,
        Transport::Tls {
            server_name,
            config,
        } => {
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(server_name.clone(), tcp)
                .await
                .map_err(|e| format!("tls: {}", tls_cause(&e)))?;
            let alpn_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            match lean {
                _ if alpn_h2 => h2(tls, "https", Protocol::H2).await,
                Some(keep) => Ok(lean_conn(
                    Box::new(h1::Conn::tls(tls, keep.to_vec())),
                    "https",
                )),
                None => h1(tls, "https").await,
            }
        }
    }
}

fn lean_conn(c: Box<h1::Conn>, scheme: &'static str) -> Conn {
    Conn {
        sender: Sender::Lean(c),
        protocol: Protocol::Http1,
        scheme,
        host: None,
    }
}

async fn h1<S>(io: S, scheme: &'static str) -> Result<Conn, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when the peer closes it or the sender is dropped.
        let _ = conn.await;
    });
    Ok(Conn {
        sender: Sender::H1(sender),
        protocol: Protocol::Http1,
        scheme,
        host: None,
    })
}

async fn h2<S>(io: S, scheme: &'static str, protocol: Protocol) -> Result<Conn, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| format!("http2 handshake: {}", with_source(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn {
        sender: Sender::H2(sender),
        protocol,
        scheme,
        host: None,
    })
}

/// A TLS handshake's failure: rustls' own error when there is one (`invalid peer certificate:
/// UnknownIssuer`), else the I/O error.
fn tls_cause(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => tls.to_string(),
        None => e.to_string(),
    }
}

/// An error with its cause (hyper's HTTP/2 errors say `http2 error` and keep the rest in the
/// source).
fn with_source(e: &dyn std::error::Error) -> String {
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

fn error_kind(e: &hyper::Error) -> String {
    if e.is_closed() || e.is_incomplete_message() {
        "connection closed".into()
    } else if e.is_timeout() {
        "timeout".into()
    } else {
        format!("http: {}", with_source(e))
    }
}

/// Idle connections per endpoint (an index the caller assigns: targets with the same address
/// and transport share one). A connection is taken for one exchange and given back after it,
/// so an idle connection is never carrying a request.
pub struct ConnPool {
    idle: Vec<Mutex<Vec<Conn>>>,
}

impl ConnPool {
    pub fn new(endpoints: usize) -> Self {
        ConnPool {
            idle: (0..endpoints).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    fn lock(&self, endpoint: usize) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle[endpoint]
            .lock()
            .expect("pool lock is never poisoned: no code panics while holding it")
    }

    /// An idle connection to `endpoint` that is still open, if any.
    pub fn idle(&self, endpoint: usize) -> Option<Conn> {
        let mut conns = self.lock(endpoint);
        // Connections the peer closed meanwhile are dropped on the way.
        std::iter::from_fn(|| conns.pop()).find(Conn::is_ready)
    }

    /// Returns a connection after a complete exchange.
    pub fn give_back(&self, endpoint: usize, conn: Conn) {
        if conn.is_ready() {
            self.lock(endpoint).push(conn);
        }
    }
}
