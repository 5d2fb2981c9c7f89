//! The gateway's lean HTTP/1.1 upstream client: a request without a body written as one
//! buffer, its response head parsed with `httparse` (`h1::ResponseReader::relaying`), and its
//! body streamed to the client from the connection's read buffer, in the request's own task.
//!
//! Why: with hyper's client every relayed request crosses to a connection task and back (a
//! channel, two wake-ups, a task switch), which cost the gateway about a quarter more CPU per
//! request than nginx (benches/README.md, "gateway"). Here the connection is driven by the task
//! that relays it, as nginx drives an upstream from the request's event handler.
//!
//! Owns: which requests take this path (`is_lean`: HTTP/1.1, no body, not `CONNECT`; every
//! other goes through hyper), the request bytes (what hyper's client writes: the method, the
//! path, the headers as given, lower-case names), one response read per exchange (1xx skipped,
//! `Content-Length`, chunked with trailers, or read-to-close; no body for `HEAD`, 204 and 304),
//! the body relayed with backpressure (nothing is read from the upstream before the client has
//! taken what was read), and keep-alive: a connection goes back to the pool only after a
//! complete response with nothing after it, and one idle for longer than `STALE_CHECK_AFTER`
//! is checked for a close by its peer before it is used again. An idempotent request that
//! fails on a reused connection before any byte of a response came back is sent once more on
//! a new connection (the peer closed the idle connection as the request went out).
//!
//! Must not: route, count, or time out (the caller does).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::h1::{ParseError, Piece, ResponseReader};
use super::http::{Body, BodyError, ExchangeError, Pool};

/// An idle connection unused for longer than this is checked for a close by its peer (one
/// non-blocking read) before it carries a request; one used more recently is taken as is.
const STALE_CHECK_AFTER: Duration = Duration::from_millis(500);

/// How much room a read into a connection's buffer is given.
const READ_CHUNK: usize = 16 << 10;

/// Whether `req` goes upstream through this client: HTTP/1.1 without a body (the common
/// `GET`), and not `CONNECT`. A request with a body streams it through hyper's client.
pub fn is_lean<B: hyper::body::Body>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.method() != Method::CONNECT
        && req.body().is_end_stream()
}

/// One keep-alive HTTP/1.1 connection to an upstream.
pub struct Conn {
    tcp: TcpStream,
    rbuf: BytesMut,
    reader: ResponseReader,
    /// Whether it carried a request before.
    used: bool,
    /// When it went back to the pool.
    idle_since: Instant,
}

/// An exchange that failed before a response head came back, and whether it may be sent
/// again on a new connection.
struct Failure {
    cause: String,
    retryable: bool,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Conn {
            tcp,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            reader: ResponseReader::relaying(),
            used: false,
            idle_since: Instant::now(),
        })
    }

    /// Whether a pooled connection can carry a request: used recently, or its peer has not
    /// closed it (nothing to read, and no end of stream).
    pub(super) fn is_open(&self) -> bool {
        if self.idle_since.elapsed() < STALE_CHECK_AFTER {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes `head` (a request without a body) and reads the response head.
    async fn send(
        &mut self,
        head: &[u8],
        head_request: bool,
    ) -> Result<(StatusCode, HeaderMap), Failure> {
        let reused = self.used;
        self.used = true;
        if let Err(e) = self.tcp.write_all(head).await {
            return Err(Failure {
                cause: format!("connection error: {e}"),
                retryable: reused,
            });
        }
        let mut received = false;
        loop {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            let n = self
                .tcp
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| Failure {
                    cause: format!("connection error: {e}"),
                    retryable: reused && !received,
                })?;
            received |= n > 0;
            match self.reader.read_head(&mut self.rbuf, n == 0, head_request) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure {
                        retryable: reused && !received && e == ParseError::Closed,
                        cause: e.to_string(),
                    })
                }
            }
        }
    }
}

/// The request line and headers of `parts` (a request without a body), as hyper's client
/// writes them; `content-length: 0` for a method whose body is expected but empty.
fn write_head(out: &mut Vec<u8>, parts: &hyper::http::request::Parts) {
    let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(HOST) {
        if let Some(authority) = parts.uri.authority() {
            line(out, b"host", authority.as_str().as_bytes());
        }
    }
    for (name, value) in &parts.headers {
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let body_expected = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if body_expected && !parts.headers.contains_key(CONTENT_LENGTH) {
        line(out, b"content-length", b"0");
    }
    out.extend_from_slice(b"\r\n");
}

/// Sends `req` (one `is_lean` accepts) to `addr` over a pooled or new connection and returns
/// the response as soon as its head arrives; the body follows as the caller reads it.
pub async fn exchange(
    pool: &Pool,
    addr: SocketAddr,
    req: Request<Body>,
) -> Result<Response<Body>, ExchangeError> {
    debug_assert!(
        is_lean(&req),
        "only requests without a body take the lean path"
    );
    let (parts, _empty) = req.into_parts();
    let mut head = Vec::with_capacity(256 + 64 * parts.headers.len());
    write_head(&mut head, &parts);
    let head_request = parts.method == Method::HEAD;
    let mut retried = false;
    loop {
        let mut conn = match pool.take_lean(addr) {
            Some(c) => c,
            None => Conn::connect(addr)
                .await
                .map_err(|e| ExchangeError::of_connect(&e))?,
        };
        match conn.send(&head, head_request).await {
            Ok((status, headers)) => {
                let mut body = Relayed {
                    conn: Some(conn),
                    pool: pool.clone(),
                    addr,
                    eof: false,
                };
                // No body (HEAD, 204, 304, `content-length: 0`): hyper will not poll it, so
                // the connection goes back now.
                body.end_if_empty();
                let mut resp = Response::new(body.boxed());
                *resp.status_mut() = status;
                *resp.headers_mut() = headers;
                return Ok(resp);
            }
            Err(f) if f.retryable && parts.method.is_idempotent() && !retried => retried = true,
            Err(f) => {
                return Err(ExchangeError::Upstream(format!(
                    "upstream request failed: {}",
                    f.cause
                )))
            }
        }
    }
}

/// A response body read from its connection as the client takes it; the connection goes back
/// to the pool when the body ended cleanly and nothing followed it, else it closes.
struct Relayed {
    conn: Option<Conn>,
    pool: Pool,
    addr: SocketAddr,
    /// The peer closed its side.
    eof: bool,
}

impl Relayed {
    fn end_if_empty(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            if c.reader.remaining() == Some(0)
                && c.reader.next_piece(&mut c.rbuf, false) == Ok(Piece::End)
            {
                self.ended();
            }
        }
    }

    /// The body failed: its connection closes, and hyper aborts the client's response.
    fn fail(&mut self, e: impl std::fmt::Display) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(BodyError::Relay(format!(
            "reading the upstream response: {e}"
        )))))
    }

    fn ended(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if conn.reader.keep_alive() && conn.rbuf.is_empty() && !self.eof {
                conn.idle_since = Instant::now();
                self.pool.give_back_lean(self.addr, conn);
            }
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
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match conn.reader.next_piece(&mut conn.rbuf, this.eof) {
                Ok(Piece::Data(data)) => {
                    // The last of a `Content-Length` body: `is_end_stream` now says so and hyper
                    // polls no more, so the connection goes back here.
                    this.end_if_empty();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Piece::Trailers(trailers)) => {
                    this.ended();
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(Piece::End) => {
                    this.ended();
                    return Poll::Ready(None);
                }
                Ok(Piece::More) => {}
                Err(e) => return this.fail(e),
            }
            if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 4 {
                conn.rbuf.reserve(READ_CHUNK);
            }
            match conn.tcp.try_read_buf(&mut conn.rbuf) {
                Ok(0) => this.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    match conn.tcp.poll_read_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => return this.fail(e),
                    }
                }
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn
            .as_ref()
            .is_none_or(|c| c.reader.remaining() == Some(0))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.conn.as_ref().and_then(|c| c.reader.remaining()) {
            Some(n) => hyper::body::SizeHint::with_exact(n as u64),
            None => hyper::body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::net::TcpListener;

    fn request(method: Method, uri: &str, headers: &[(&'static str, &'static str)]) -> Vec<u8> {
        let mut req = Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let mut out = Vec::new();
        write_head(&mut out, &parts);
        out
    }

    #[test]
    fn the_request_head_is_what_hyper_writes() {
        type Case = (
            Method,
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (
                Method::GET,
                "/a?b=1",
                &[("host", "h.example.com"), ("x-b", "2"), ("x-b", "3")],
                "GET /a?b=1 HTTP/1.1\r\nhost: h.example.com\r\nx-b: 2\r\nx-b: 3\r\n\r\n",
            ),
            // No `Host`: the absolute URI's authority names the target.
            (
                Method::HEAD,
                "http://h.example.com:8080/x",
                &[],
                "HEAD /x HTTP/1.1\r\nhost: h.example.com:8080\r\n\r\n",
            ),
            // A method whose body is expected, with none: an explicit empty body.
            (
                Method::POST,
                "/",
                &[("host", "h")],
                "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
            ),
            (
                Method::PUT,
                "/",
                &[("host", "h"), ("content-length", "0")],
                "PUT / HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n",
            ),
            (
                Method::DELETE,
                "*",
                &[("host", "h")],
                "DELETE * HTTP/1.1\r\nhost: h\r\n\r\n",
            ),
        ];
        for (method, uri, headers, want) in cases {
            let got = request(method.clone(), uri, headers);
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{method} {uri}");
        }
    }

    #[test]
    fn only_http_1_1_requests_without_a_body_take_the_lean_path() {
        let empty = || http_body_util::Empty::<Bytes>::new();
        let full = || http_body_util::Full::new(Bytes::from_static(b"x"));
        let req = |m: Method, v: Version| Request::builder().method(m).version(v);
        assert!(is_lean(
            &req(Method::GET, Version::HTTP_11).body(empty()).unwrap()
        ));
        assert!(is_lean(
            &req(Method::POST, Version::HTTP_11).body(empty()).unwrap()
        ));
        assert!(!is_lean(
            &req(Method::POST, Version::HTTP_11).body(full()).unwrap()
        ));
        assert!(!is_lean(
            &req(Method::GET, Version::HTTP_10).body(empty()).unwrap()
        ));
        assert!(!is_lean(
            &req(Method::GET, Version::HTTP_2).body(empty()).unwrap()
        ));
        assert!(!is_lean(
            &req(Method::CONNECT, Version::HTTP_11)
                .body(empty())
                .unwrap()
        ));
    }

    /// Reads a response head and body from `pieces` fed one after another (then EOF): the
    /// status, the body, the trailers, and whether the connection may be reused.
    fn relay_pieces(
        pieces: &[&[u8]],
        head_request: bool,
    ) -> Result<(u16, Vec<u8>, Option<HeaderMap>, bool), ParseError> {
        let mut r = ResponseReader::relaying();
        let mut buf = BytesMut::new();
        let mut feed = pieces.iter();
        let mut eof = false;
        let mut more = |buf: &mut BytesMut, eof: &mut bool| match feed.next() {
            Some(p) => buf.extend_from_slice(p),
            None => *eof = true,
        };
        let status = loop {
            if let Some((status, _)) = r.read_head(&mut buf, eof, head_request)? {
                break status;
            }
            more(&mut buf, &mut eof);
        };
        let mut body = Vec::new();
        loop {
            match r.next_piece(&mut buf, eof)? {
                Piece::Data(d) => body.extend_from_slice(&d),
                Piece::Trailers(t) => {
                    return Ok((
                        status.as_u16(),
                        body,
                        Some(t),
                        r.keep_alive() && buf.is_empty(),
                    ))
                }
                Piece::End => {
                    return Ok((
                        status.as_u16(),
                        body,
                        None,
                        r.keep_alive() && buf.is_empty(),
                    ))
                }
                Piece::More => more(&mut buf, &mut eof),
            }
        }
    }

    const CHUNKED: &[u8] =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\
        x-a: 1\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\ngrpc-status: 0\r\nx-t: 2\r\n\r\n";

    #[test]
    fn bodies_relay_as_http_1_1_frames_them() {
        let (status, body, trailers, reuse) = relay_pieces(&[CHUNKED], false).unwrap();
        assert_eq!(
            (status, body.as_slice(), reuse),
            (200, &b"hello, world"[..], true)
        );
        let trailers = trailers.unwrap();
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["x-t"], "2");
        // (input, HEAD request, (status, body, connection reusable) or the error)
        type Case = (
            &'static [u8],
            bool,
            Result<(u16, &'static [u8], bool), ParseError>,
        );
        let cases: &[Case] = &[
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
                false,
                Ok((200, b"abc", true)),
            ),
            // Larger than what is read whole: a relayed body streams, whatever its size.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\nab",
                false,
                Err(ParseError::Closed),
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nab",
                false,
                Err(ParseError::Closed),
            ),
            (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na",
                false,
                Ok((200, b"a", false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
                false,
                Ok((200, b"until the end", false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                true,
                Ok((200, b"", true)),
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                Ok((204, b"", true)),
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
                false,
                Ok((304, b"", true)),
            ),
            // Bytes after the response: the connection is out of step, not reused.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naX",
                false,
                Ok((200, b"a", false)),
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                false,
                Err(ParseError::Upgrade),
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                false,
                Err(ParseError::Chunked),
            ),
            (
                b"HTTP/1.1 200 OK\r\nbad\x01name: x\r\n\r\n",
                false,
                Err(ParseError::Head("invalid header name".into())),
            ),
        ];
        for (input, head_request, want) in cases {
            let got = relay_pieces(&[input], *head_request).map(|(s, b, _, reuse)| (s, b, reuse));
            let want = want.clone().map(|(s, b, reuse)| (s, b.to_vec(), reuse));
            match (&got, &want) {
                // httparse's words for a bad name; the kind is what matters.
                (Err(ParseError::Head(_)), Err(ParseError::Head(_))) => {}
                _ => assert_eq!(got, want, "{}", String::from_utf8_lossy(input)),
            }
        }
    }

    proptest! {
        #[test]
        fn any_split_of_a_chunked_response_relays_the_same(mut cuts in proptest::collection::vec(0..CHUNKED.len(), 0..12)) {
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([CHUNKED.len()]) {
                pieces.push(&CHUNKED[at..c]);
                at = c;
            }
            let (status, body, trailers, reuse) = relay_pieces(&pieces, false).unwrap();
            prop_assert_eq!((status, body.as_slice(), reuse), (200, &b"hello, world"[..], true));
            prop_assert_eq!(trailers.unwrap().len(), 2);
        }
    }

    /// An upstream on 127.0.0.1 that answers each request it reads with `answer(n)` (n counts
    /// requests over all connections), closing the connection after answer i when `close(i)`.
    /// Returns its address and its count of accepted connections.
    async fn upstream(
        answer: fn(usize) -> &'static [u8],
        close: fn(usize) -> bool,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 1024];
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let i = requests.fetch_add(1, Ordering::SeqCst);
                            if s.write_all(answer(i)).await.is_err() {
                                return;
                            }
                            if close(i) {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get(method: Method) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri("/")
            .header("host", "h")
            .body(super::super::http::full(""))
            .unwrap()
    }

    /// Status, body, trailers of one lean exchange, or the 502's text.
    async fn send(
        pool: &Pool,
        addr: SocketAddr,
        method: Method,
    ) -> Result<(u16, Bytes, Option<HeaderMap>), String> {
        let resp = exchange(pool, addr, get(method))
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let collected = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        let trailers = collected.trailers().cloned();
        Ok((status, collected.to_bytes(), trailers))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_connection_is_reused_after_each_complete_response() {
        runtime().block_on(async {
            let (addr, accepted) = upstream(
                |i| if i % 2 == 0 {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                } else {
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-t: 1\r\n\r\n"
                },
                |_| false,
            )
            .await;
            let pool = Pool::default();
            for i in 0..5 {
                let (status, body, trailers) = send(&pool, addr, Method::GET).await.unwrap();
                assert_eq!((status, &body[..]), (200, &b"ok"[..]));
                assert_eq!(trailers.is_some(), i % 2 == 1);
            }
            let (status, body, _) = send(&pool, addr, Method::HEAD).await.unwrap();
            assert_eq!((status, body.len()), (200, 0));
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for every request");
        });
    }

    #[test]
    fn an_idempotent_request_on_a_connection_the_peer_closed_is_sent_again() {
        runtime().block_on(async {
            // Each connection answers once, then closes (as a server closing an idle
            // keep-alive connection does) without saying so in its response.
            let (addr, accepted) = upstream(
                |_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                |_| true,
            )
            .await;
            let pool = Pool::default();
            assert!(send(&pool, addr, Method::GET).await.is_ok());
            // The close has arrived, but the connection was used just now: it is taken as is.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (status, _, _) = send(&pool, addr, Method::GET).await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                accepted.load(Ordering::SeqCst),
                2,
                "the first connection, then a new one"
            );
            // A POST is not sent twice: the client gets the failure.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let err = send(&pool, addr, Method::POST).await.unwrap_err();
            assert!(err.contains("upstream request failed"), "{err}");
            // An idle connection older than STALE_CHECK_AFTER is checked before use: the
            // POST then goes out on a new connection and succeeds.
            assert!(send(&pool, addr, Method::GET).await.is_ok());
            tokio::time::sleep(STALE_CHECK_AFTER + Duration::from_millis(100)).await;
            let (status, _, _) = send(&pool, addr, Method::POST).await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(accepted.load(Ordering::SeqCst), 4);
        });
    }

    #[test]
    fn a_body_cut_short_fails_instead_of_ending() {
        runtime().block_on(async {
            let (addr, _) = upstream(
                |i| {
                    if i == 0 {
                        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcd"
                    } else {
                        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n"
                    }
                },
                |_| true,
            )
            .await;
            let pool = Pool::default();
            for _ in 0..2 {
                let err = send(&pool, addr, Method::GET).await.unwrap_err();
                assert!(
                    err.contains("reading the upstream response: connection closed"),
                    "{err}"
                );
            }
        });
    }
}
