//! The load generator's lean HTTP/1.1 client: a request written from bytes prepared once per
//! target, a response read with `httparse` into only what `load` looks at.
//!
//! Owns, for `splitlab load` over HTTP/1.1 (cleartext or TLS that did not choose h2):
//! - `RequestTemplate`: a target's request as bytes (request line, `Host`, the tag header, the
//!   extra headers, `Content-Length`), with the two per-request headers (request id, client)
//!   appended at send time, so a request is one buffer and one write.
//! - `ResponseReader`: an incremental parser of one response (head, then a `Content-Length`,
//!   chunked or read-to-close body; 1xx skipped; no body for `HEAD`, 204 and 304) that keeps
//!   only the named headers and trailers (the classifier's, `grpc-status`) instead of building a
//!   full `HeaderMap` per response, and hands a `Content-Length` body out of the read buffer
//!   without a copy.
//! - `Conn`: one keep-alive connection that sends a template and reads its response.
//!
//! The request bytes are what hyper's client writes for the same `Request` (header names in
//! lower case, a later extra header replacing an earlier one or a default of the same name,
//! `content-length` only for a non-empty body), so a server sees the same request whichever
//! client sent it. A target whose extra headers set the framing (`content-length`,
//! `transfer-encoding`) or that uses `CONNECT` has no template and goes through hyper.
//!
//! Must not: retry on its own (the caller decides, with `Failure::retryable`), pace, count.

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{stays_on_hop, MAX_BODY_BYTES};

/// The most a response head (status line and headers) or a trailer block may take.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// The most header fields a response head may have (hyper's client allows 100).
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// A target's request as bytes, ready to be completed with the request id and client.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    /// The request line, `host` and the tag header.
    head: Vec<u8>,
    /// The per-request headers' names, unless an extra header replaces them.
    id_name: Option<&'static str>,
    client_name: Option<&'static str>,
    /// The extra headers, `content-length`, the blank line.
    tail: Vec<u8>,
    body: Bytes,
    head_request: bool,
    idempotent: bool,
}

/// Why a request has no template (it goes through hyper).
#[derive(Debug, PartialEq, Eq)]
pub struct NotLean;

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

impl RequestTemplate {
    /// The request `method path` to `host` (no `host` header when it is not a valid header
    /// value, as the hyper path does), with the tag header when `tag` (name, value) is given,
    /// the per-request headers `names` (request id, client), then `extra` (a later one
    /// replacing an earlier one or a default of the same name), and `body`.
    pub fn new(
        method: &Method,
        path: &str,
        host: &str,
        tag: Option<(&str, &str)>,
        names: (&'static str, &'static str),
        extra: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Self, NotLean> {
        let framing = |n: &HeaderName| {
            n == hyper::header::CONTENT_LENGTH || n == hyper::header::TRANSFER_ENCODING
        };
        if *method == Method::CONNECT || extra.iter().any(|(n, _)| framing(n)) {
            return Err(NotLean);
        }
        let overridden = |name: &str| extra.iter().any(|(n, _)| n.as_str() == name);
        let mut head = Vec::with_capacity(128);
        head.extend_from_slice(method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        if let Ok(h) = HeaderValue::from_str(host) {
            header_line(&mut head, b"host", h.as_bytes());
        }
        if let Some((name, value)) = tag {
            if !overridden(name) && HeaderValue::from_str(value).is_ok() {
                header_line(&mut head, name.as_bytes(), value.as_bytes());
            }
        }
        let mut tail = Vec::new();
        // Each extra header once, with its last value (`HeaderMap::insert` replaces).
        for (i, (name, _)) in extra.iter().enumerate() {
            if *name == hyper::header::HOST || extra[..i].iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some((_, value)) = extra.iter().rev().find(|(n, _)| n == name) {
                header_line(&mut tail, name.as_str().as_bytes(), value.as_bytes());
            }
        }
        if !body.is_empty() {
            header_line(
                &mut tail,
                b"content-length",
                body.len().to_string().as_bytes(),
            );
        }
        tail.extend_from_slice(b"\r\n");
        Ok(RequestTemplate {
            head,
            id_name: (!overridden(names.0)).then_some(names.0),
            client_name: (!overridden(names.1)).then_some(names.1),
            tail,
            body,
            head_request: *method == Method::HEAD,
            // RFC 9110 §9.2.2.
            idempotent: [
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::TRACE,
                Method::PUT,
                Method::DELETE,
            ]
            .contains(method),
        })
    }

    /// Writes request `id` of `client` into `out` (cleared first).
    pub fn write(&self, out: &mut Vec<u8>, id: u64, client: u64) {
        out.clear();
        out.extend_from_slice(&self.head);
        for (name, v) in [(self.id_name, id), (self.client_name, client)] {
            if let Some(name) = name {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                push_decimal(out, v);
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(&self.tail);
        out.extend_from_slice(&self.body);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// One response as `load` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    /// Only the headers asked for.
    pub headers: HeaderMap,
    /// Only the trailers asked for; `None` when there are none of them.
    pub trailers: Option<HeaderMap>,
    pub body: Bytes,
    /// Whether the connection may carry the next request.
    pub keep_alive: bool,
}

/// Why a response could not be read; the text is the cause a request is counted under.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The peer closed the connection before the response was complete.
    #[error("connection closed")]
    Closed,
    #[error("http: invalid response head: {0}")]
    Head(String),
    #[error("http: message head is too large")]
    HeadTooLarge,
    #[error("http: invalid content-length")]
    ContentLength,
    #[error("http: invalid chunked body")]
    Chunked,
    /// The body exceeds `MAX_BODY_BYTES` (the hyper path's words).
    #[error("reading the response body")]
    BodyTooLarge,
    #[error("http: unexpected 101 switching protocols")]
    Upgrade,
}

/// A piece of a relayed response body (`ResponseReader::next_piece`).
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Data(Bytes),
    /// The trailers: the body is over.
    Trailers(HeaderMap),
    /// The body is over (no trailers).
    End,
    /// More bytes are needed.
    More,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    /// Bytes of a `Content-Length` body still to come.
    Length(usize),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(usize),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// The trailer section after the last chunk.
    Trailers,
    /// No length given: the body ends when the connection does.
    UntilClose,
}

/// Reads one response from a byte stream handed over in pieces, then the next one.
#[derive(Debug)]
pub struct ResponseReader {
    keep: Vec<HeaderName>,
    /// Relaying (`relaying`): every header and trailer is kept, and a body streams through
    /// `next_piece` without a size limit.
    all: bool,
    state: State,
    status: StatusCode,
    headers: HeaderMap,
    keep_alive: bool,
    /// A chunked or read-to-close body.
    body: BytesMut,
}

impl ResponseReader {
    /// A reader keeping the headers and trailers named in `keep`.
    pub fn new(keep: Vec<HeaderName>) -> Self {
        ResponseReader {
            keep,
            all: false,
            state: State::Head,
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            keep_alive: true,
            body: BytesMut::new(),
        }
    }

    /// A reader for the gateway's relay: every header and trailer kept, a body of any size
    /// handed out piece by piece (`read_head`, then `next_piece`).
    pub fn relaying() -> Self {
        ResponseReader {
            all: true,
            ..Self::new(Vec::new())
        }
    }

    /// The bytes of a `Content-Length` body not yet handed out (0 between responses); `None`
    /// for a chunked or read-to-close body.
    pub fn remaining(&self) -> Option<usize> {
        match self.state {
            State::Head => Some(0),
            State::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the connection may carry the next request once the current response is read.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Reads a response head from `buf` (1xx heads skipped): its status and headers once it is
    /// complete, `None` while more bytes are needed. The body then comes from `next_piece`.
    pub fn read_head(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
        head_request: bool,
    ) -> Result<Option<(StatusCode, HeaderMap)>, ParseError> {
        debug_assert_eq!(self.state, State::Head, "a head is read between responses");
        if self.head(buf, head_request)? {
            Ok(Some((self.status, std::mem::take(&mut self.headers))))
        } else {
            need_more(eof).map(|_| None)
        }
    }

    /// The next piece of the body whose head `read_head` returned, out of `buf` without a copy:
    /// data as it arrives, then the trailers (if any) or the end, after which the reader is
    /// ready for the next response. `eof`: nothing more will come.
    pub fn next_piece(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Piece, ParseError> {
        loop {
            match self.state {
                State::Head => return Ok(Piece::End),
                State::Length(0) => {
                    self.state = State::Head;
                    return Ok(Piece::End);
                }
                State::Length(n) => {
                    if buf.is_empty() {
                        return need_more(eof).map(|_| Piece::More);
                    }
                    let take = n.min(buf.len());
                    self.state = State::Length(n - take);
                    return Ok(Piece::Data(buf.split_to(take).freeze()));
                }
                State::ChunkSize => {
                    let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(ParseError::Chunked);
                        }
                        return need_more(eof).map(|_| Piece::More);
                    };
                    let size = chunk_size(&buf[..end])?;
                    // A body read whole (`feed`) refuses a chunk it could not hold at once.
                    if !self.all && self.body.len().saturating_add(size) > MAX_BODY_BYTES {
                        return Err(ParseError::BodyTooLarge);
                    }
                    let _ = buf.split_to(end + 1);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(n) => {
                    if buf.is_empty() {
                        return need_more(eof).map(|_| Piece::More);
                    }
                    let take = n.min(buf.len());
                    self.state = if take == n {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(n - take)
                    };
                    return Ok(Piece::Data(buf.split_to(take).freeze()));
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return need_more(eof).map(|_| Piece::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ParseError::Chunked);
                    }
                    let _ = buf.split_to(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((n, fields))) => {
                            let mut kept = HeaderMap::new();
                            self.keep_fields(fields, &mut kept)?;
                            let _ = buf.split_to(n);
                            self.state = State::Head;
                            return Ok(if kept.is_empty() {
                                Piece::End
                            } else {
                                Piece::Trailers(kept)
                            });
                        }
                        Ok(httparse::Status::Partial) => {
                            if buf.len() > MAX_HEAD_BYTES {
                                return Err(ParseError::HeadTooLarge);
                            }
                            return need_more(eof).map(|_| Piece::More);
                        }
                        Err(_) => return Err(ParseError::Chunked),
                    }
                }
                State::UntilClose => {
                    if !buf.is_empty() {
                        return Ok(Piece::Data(buf.split().freeze()));
                    }
                    if !eof {
                        return Ok(Piece::More);
                    }
                    self.keep_alive = false;
                    self.state = State::Head;
                    return Ok(Piece::End);
                }
            }
        }
    }

    /// Consumes what it can of `buf`: the complete response when it is there (`eof`: nothing
    /// more will come), `None` when more bytes are needed. `head_request`: the request was a
    /// `HEAD` (no body follows). After an error the reader must not be used again.
    pub fn feed(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
        head_request: bool,
    ) -> Result<Option<Response>, ParseError> {
        loop {
            match self.state {
                State::Head => {
                    if !self.head(buf, head_request)? {
                        return need_more(eof);
                    }
                }
                // Whole, out of the read buffer without a copy.
                State::Length(n) => {
                    if buf.len() < n {
                        return need_more(eof);
                    }
                    let body = buf.split_to(n).freeze();
                    return Ok(Some(self.done(body)));
                }
                _ => match self.next_piece(buf, eof)? {
                    Piece::Data(data) => {
                        if self.body.len() + data.len() > MAX_BODY_BYTES {
                            return Err(ParseError::BodyTooLarge);
                        }
                        self.body.extend_from_slice(&data);
                    }
                    Piece::Trailers(trailers) => {
                        let body = std::mem::take(&mut self.body).freeze();
                        let mut resp = self.done(body);
                        resp.trailers = Some(trailers);
                        return Ok(Some(resp));
                    }
                    Piece::End => {
                        let body = std::mem::take(&mut self.body).freeze();
                        return Ok(Some(self.done(body)));
                    }
                    Piece::More => return Ok(None),
                },
            }
        }
    }

    /// Parses a head from `buf` if it is complete there; 1xx heads are skipped.
    fn head(&mut self, buf: &mut BytesMut, head_request: bool) -> Result<bool, ParseError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut fields);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(ParseError::HeadTooLarge);
                }
                return Ok(false);
            }
            Err(e) => return Err(ParseError::Head(e.to_string())),
        };
        if n > MAX_HEAD_BYTES {
            return Err(ParseError::HeadTooLarge);
        }
        let code = resp.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| ParseError::Head(format!("status {code}")))?;
        if code == 101 {
            return Err(ParseError::Upgrade);
        }
        if status.is_informational() {
            // 100 Continue, 103 Early Hints: the real response follows.
            let _ = buf.split_to(n);
            return self.head(buf, head_request);
        }
        let http10 = resp.version == Some(0);
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut transfer_encoding = false;
        let mut close = false;
        let mut keep_alive_token = false;
        for f in resp.headers.iter() {
            let name = f.name;
            if name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(f.value)
                    .ok()
                    .map(str::trim)
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or(ParseError::ContentLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(ParseError::ContentLength);
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
                // Chunked only when it is the last coding (RFC 9112 §6.3).
                chunked = f
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in f.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let mut headers = HeaderMap::with_capacity(if self.all { resp.headers.len() } else { 0 });
        self.keep_fields(resp.headers, &mut headers)?;
        let _ = buf.split_to(n);
        self.status = status;
        self.headers = headers;
        self.body.clear();
        self.keep_alive = if http10 { keep_alive_token } else { !close };
        self.state = if head_request || code == 204 || code == 304 {
            State::Length(0)
        } else if transfer_encoding {
            // Transfer-Encoding overrides Content-Length, and such a response is not to be
            // trusted with the connection's next one (RFC 9112 §6.3 item 3).
            if length.is_some() {
                self.keep_alive = false;
            }
            if chunked {
                State::ChunkSize
            } else {
                State::UntilClose
            }
        } else if let Some(l) = length {
            // A relayed body streams through: only a body read whole is limited.
            if l > MAX_BODY_BYTES && !self.all {
                return Err(ParseError::BodyTooLarge);
            }
            State::Length(l)
        } else {
            State::UntilClose
        };
        Ok(true)
    }

    /// Keeps the fields asked for (all of them when relaying: then a name or value hyper would
    /// refuse fails the response, as hyper's client fails it).
    fn keep_fields(
        &self,
        fields: &[httparse::Header<'_>],
        into: &mut HeaderMap,
    ) -> Result<(), ParseError> {
        for f in fields {
            if self.all {
                // A relayed response's own framing and connection fields are this hop's: the
                // gateway would only remove them again.
                if stays_on_hop(f.name, f.value) {
                    continue;
                }
                let name = HeaderName::from_bytes(f.name.as_bytes())
                    .map_err(|_| ParseError::Head(format!("header name {:?}", f.name)))?;
                let value = HeaderValue::from_bytes(f.value)
                    .map_err(|_| ParseError::Head(format!("value of header {:?}", f.name)))?;
                into.append(name, value);
            } else if let Some(k) = self
                .keep
                .iter()
                .find(|k| f.name.eq_ignore_ascii_case(k.as_str()))
            {
                if let Ok(v) = HeaderValue::from_bytes(f.value) {
                    into.append(k.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// The response is complete: hands it out and gets ready for the next.
    fn done(&mut self, body: Bytes) -> Response {
        self.state = State::Head;
        Response {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            trailers: None,
            body,
            keep_alive: self.keep_alive,
        }
    }
}

/// More bytes are needed: none will come after `eof`.
fn need_more(eof: bool) -> Result<Option<Response>, ParseError> {
    if eof {
        Err(ParseError::Closed)
    } else {
        Ok(None)
    }
}

/// A chunk-size line without its `\n`: hex digits, then optional extensions after `;`.
fn chunk_size(line: &[u8]) -> Result<usize, ParseError> {
    let line = line.strip_suffix(b"\r").ok_or(ParseError::Chunked)?;
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let rest = line[digits_end..].trim_ascii_start();
    if digits_end == 0 || !(rest.is_empty() || rest[0] == b';') {
        return Err(ParseError::Chunked);
    }
    let mut size = 0usize;
    for b in &line[..digits_end] {
        let d = (*b as char).to_digit(16).ok_or(ParseError::Chunked)? as usize;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(d))
            .ok_or(ParseError::Chunked)?;
    }
    Ok(size)
}

/// The stream under a connection.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// An exchange that failed, and whether it may be sent again on a new connection: the
/// connection had carried earlier requests (the server may have closed it while idle), nothing
/// of a response came back, and either the request was not sent or it is idempotent.
#[derive(Debug)]
pub struct Failure {
    pub cause: String,
    pub retryable: bool,
}

/// One HTTP/1.1 connection of the lean client.
pub struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    reader: ResponseReader,
    /// Whether it carried a request before.
    used: bool,
    open: bool,
}

impl Conn {
    /// A connection over `tcp`, keeping the response headers named in `keep`.
    pub fn tcp(tcp: TcpStream, keep: Vec<HeaderName>) -> Self {
        Self::with(Stream::Tcp(tcp), keep)
    }

    /// A connection over TLS (ALPN chose HTTP/1.1 or nothing).
    pub fn tls(tls: tokio_rustls::client::TlsStream<TcpStream>, keep: Vec<HeaderName>) -> Self {
        Self::with(Stream::Tls(Box::new(tls)), keep)
    }

    fn with(stream: Stream, keep: Vec<HeaderName>) -> Self {
        Conn {
            stream,
            rbuf: BytesMut::with_capacity(8 << 10),
            wbuf: Vec::with_capacity(256),
            reader: ResponseReader::new(keep),
            used: false,
            open: true,
        }
    }

    /// Whether it can take the next request.
    pub fn is_ready(&self) -> bool {
        self.open
    }

    /// Sends request `id` of `client` from `template` and reads its whole response.
    pub async fn send(
        &mut self,
        template: &RequestTemplate,
        id: u64,
        client: u64,
    ) -> Result<Response, Failure> {
        let reused = self.used;
        self.used = true;
        // Not reusable until a response completes.
        self.open = false;
        template.write(&mut self.wbuf, id, client);
        if let Err(e) = self.write().await {
            return Err(Failure {
                cause: format!("http: connection error: {e}"),
                retryable: reused,
            });
        }
        let mut received = false;
        loop {
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(8 << 10);
            }
            let n = match self.read().await {
                Ok(n) => n,
                Err(e) => {
                    return Err(Failure {
                        cause: format!("http: connection error: {e}"),
                        retryable: reused && !received && template.idempotent,
                    })
                }
            };
            received |= n > 0;
            match self
                .reader
                .feed(&mut self.rbuf, n == 0, template.head_request)
            {
                Ok(Some(resp)) => {
                    // Bytes nobody asked for after the response: the connection is out of
                    // step with its requests.
                    self.open = resp.keep_alive && self.rbuf.is_empty();
                    return Ok(resp);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure {
                        retryable: reused
                            && !received
                            && template.idempotent
                            && e == ParseError::Closed,
                        cause: e.to_string(),
                    })
                }
            }
        }
    }

    async fn write(&mut self) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(&self.wbuf).await,
            Stream::Tls(s) => {
                s.write_all(&self.wbuf).await?;
                s.flush().await
            }
        }
    }

    async fn read(&mut self) -> std::io::Result<usize> {
        match &mut self.stream {
            Stream::Tcp(s) => s.read_buf(&mut self.rbuf).await,
            Stream::Tls(s) => s.read_buf(&mut self.rbuf).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keep() -> Vec<HeaderName> {
        vec![
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("knative-serving-revision"),
        ]
    }

    /// Feeds `input` whole, then EOF if it needs more; the responses read and the error.
    fn read_all(input: &[u8], head_request: bool) -> (Vec<Response>, Option<ParseError>, usize) {
        read_in_pieces(&[input], head_request)
    }

    /// Feeds `pieces` one after another (then EOF), reading every response it can.
    fn read_in_pieces(
        pieces: &[&[u8]],
        head_request: bool,
    ) -> (Vec<Response>, Option<ParseError>, usize) {
        let mut r = ResponseReader::new(keep());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let feeds = pieces.iter().map(|p| (*p, false)).chain([(&b""[..], true)]);
        for (piece, eof) in feeds {
            buf.extend_from_slice(piece);
            loop {
                if eof && buf.is_empty() && r.state == State::Head {
                    return (out, None, 0); // a clean end between responses
                }
                match r.feed(&mut buf, eof, head_request) {
                    Ok(Some(resp)) => out.push(resp),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), buf.len()),
                }
            }
        }
        (out, None, buf.len())
    }

    fn header(m: &HeaderMap, name: &str) -> Option<String> {
        m.get(name).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn responses_are_framed_as_http_1_1_says() {
        // (what, input, HEAD request, status, body, keep-alive, kept revision header, kept
        // grpc-status trailer)
        type Case = (
            &'static str,
            &'static str,
            bool,
            u16,
            &'static str,
            bool,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            // The usual: Content-Length, keep-alive by default in HTTP/1.1.
            (
                "content-length",
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nServer: x\r\n\r\nHello v1!\n",
                false, 200, "Hello v1!\n", true, None, None,
            ),
            // Header names in any case; the kept header is kept, the others not.
            (
                "kept header",
                "HTTP/1.1 200 OK\r\ncontent-LENGTH: 2\r\nKnative-Serving-Revision: v2\r\n\r\nok",
                false, 200, "ok", true, Some("v2"), None,
            ),
            // Chunked, with chunk extensions, upper-case hex and a kept trailer.
            (
                "chunked with extensions and trailers",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nHello\r\nA ; x\r\n, world!!!\r\n0\r\ngrpc-status: 7\r\nother: 1\r\n\r\n",
                false, 200, "Hello, world!!!", true, None, Some("7"),
            ),
            // A 100 Continue before the real response is skipped.
            (
                "1xx skipped",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
                false, 201, "x", true, None, None,
            ),
            // 204 and 304 have no body whatever their headers say.
            ("204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", true, None, None),
            (
                "304 with a length",
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
                false, 304, "", true, None, None,
            ),
            // A HEAD response's Content-Length announces a body that is not sent.
            (
                "HEAD",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true, 200, "", true, None, None,
            ),
            // Connection: close: the body as framed, and the connection not reused.
            (
                "connection close",
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
                false, 200, "bye", false, None, None,
            ),
            // HTTP/1.0 closes unless it says keep-alive...
            (
                "HTTP/1.0",
                "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
                false, 200, "ok", false, None, None,
            ),
            // ...and keeps the connection when it does.
            (
                "HTTP/1.0 keep-alive",
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
                false, 200, "ok", true, None, None,
            ),
            // No length at all: the body runs to the end of the connection.
            (
                "read to close",
                "HTTP/1.1 200 OK\r\n\r\nall of it",
                false, 200, "all of it", false, None, None,
            ),
            // Transfer-Encoding wins over Content-Length, and the connection is not trusted.
            (
                "chunked and a length",
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
                false, 200, "a", false, None, None,
            ),
            // An error status is a response like any other.
            (
                "503",
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 27\r\n\r\npending request queue full\n",
                false, 503, "pending request queue full\n", true, None, None,
            ),
        ];
        for (what, input, head, status, body, keep_alive, rev, grpc) in cases {
            let (resps, err, _) = read_all(input.as_bytes(), *head);
            assert_eq!(err, None, "{what}");
            assert_eq!(resps.len(), 1, "{what}");
            let r = &resps[0];
            assert_eq!(r.status.as_u16(), *status, "{what}");
            assert_eq!(&r.body[..], body.as_bytes(), "{what}");
            assert_eq!(r.keep_alive, *keep_alive, "{what}");
            assert_eq!(
                header(&r.headers, "knative-serving-revision").as_deref(),
                *rev,
                "{what}"
            );
            assert_eq!(r.headers.get("server"), None, "{what}: not asked for");
            let trailer = r.trailers.as_ref().and_then(|t| header(t, "grpc-status"));
            assert_eq!(trailer.as_deref(), *grpc, "{what}");
        }
    }

    #[test]
    fn malformed_or_cut_responses_are_errors() {
        // (what, input, the error)
        let cases: &[(&str, &[u8], ParseError)] = &[
            // Not HTTP at all.
            (
                "garbage",
                b"SSH-2.0-OpenSSH\r\n\r\n",
                ParseError::Head("invalid HTTP version".into()),
            ),
            // A body cut short by the peer closing.
            (
                "short body",
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                ParseError::Closed,
            ),
            // Closed in the middle of the head.
            (
                "short head",
                b"HTTP/1.1 200 OK\r\nContent-Le",
                ParseError::Closed,
            ),
            // Two different lengths.
            (
                "conflicting lengths",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                ParseError::ContentLength,
            ),
            (
                "bad length",
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                ParseError::ContentLength,
            ),
            // A chunk size that is not hex.
            (
                "bad chunk size",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ParseError::Chunked,
            ),
            // A chunk's data not followed by CRLF.
            (
                "chunk overrun",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n",
                ParseError::Chunked,
            ),
            // A chunk size that overflows.
            (
                "huge chunk",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
                ParseError::Chunked,
            ),
            // Chunked body cut before the last chunk.
            (
                "chunked cut",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
                ParseError::Closed,
            ),
            // A body above the cap is refused before it is read.
            (
                "too large",
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                ParseError::BodyTooLarge,
            ),
            // Switching protocols is not something load asked for.
            (
                "101",
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                ParseError::Upgrade,
            ),
        ];
        for (what, input, want) in cases {
            let (resps, err, _) = read_all(input, false);
            assert!(resps.is_empty(), "{what}");
            assert_eq!(err.as_ref(), Some(want), "{what}");
        }
    }

    #[test]
    fn a_head_larger_than_the_cap_is_an_error_before_it_ends() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        while input.len() <= MAX_HEAD_BYTES {
            input.extend_from_slice(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut r = ResponseReader::new(keep());
        let mut buf = BytesMut::from(&input[..]);
        // Not complete (no blank line), yet refused rather than buffered on.
        assert!(matches!(
            r.feed(&mut buf, false, false),
            Err(ParseError::HeadTooLarge) | Err(ParseError::Head(_))
        ));
    }

    #[test]
    fn bytes_after_a_response_stay_in_the_buffer() {
        // `Conn::send` sees them there and does not reuse the connection.
        let mut r = ResponseReader::new(keep());
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1"[..]);
        let resp = r.feed(&mut buf, false, false).unwrap().unwrap();
        assert_eq!(&resp.body[..], b"a");
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    #[test]
    fn a_request_is_what_hyper_would_write() {
        let extra = [
            (
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("1"),
            ),
            // A later value replaces an earlier one of the same name.
            (
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("2"),
            ),
            // Replaces the default client header.
            (
                HeaderName::from_static("splitlab-client"),
                HeaderValue::from_static("me"),
            ),
            // Host among the extra headers is the caller's `host` already: not written twice.
            (hyper::header::HOST, HeaderValue::from_static("ignored")),
        ];
        let t = RequestTemplate::new(
            &Method::POST,
            "/p?q=1",
            "h.example.com",
            Some(("knative-serving-tag", "canary")),
            ("splitlab-request-id", "splitlab-client"),
            &extra,
            Bytes::from_static(b"body"),
        )
        .unwrap();
        let mut out = Vec::new();
        t.write(&mut out, 1234, 1234);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q=1 HTTP/1.1\r\nhost: h.example.com\r\nknative-serving-tag: canary\r\n\
             splitlab-request-id: 1234\r\nx-a: 2\r\nsplitlab-client: me\r\n\
             content-length: 4\r\n\r\nbody"
        );
        // A GET without a body has no content-length; ids of any size.
        let t = RequestTemplate::new(&Method::GET, "/", "h", None, ("i", "c"), &[], Bytes::new())
            .unwrap();
        let mut out = Vec::new();
        t.write(&mut out, 0, u64::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: h\r\ni: 0\r\nc: 18446744073709551615\r\n\r\n"
        );
        // Framing set by the user, or CONNECT: hyper's job.
        let cl = [(hyper::header::CONTENT_LENGTH, HeaderValue::from_static("4"))];
        let not = |m: &Method, extra: &[(HeaderName, HeaderValue)]| {
            RequestTemplate::new(m, "/", "h", None, ("i", "c"), extra, Bytes::new()).err()
        };
        assert_eq!(not(&Method::GET, &cl), Some(NotLean));
        assert_eq!(not(&Method::CONNECT, &[]), Some(NotLean));
        assert_eq!(not(&Method::GET, &[]), None);
    }

    /// A server that answers one request per connection and then closes it without saying
    /// so (as a server closing an idle keep-alive connection does).
    async fn one_answer_per_connection() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        addr
    }

    #[test]
    fn a_relaying_reader_leaves_the_hop_by_hop_fields_on_their_hop() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: keep-alive\r\n\
               Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: grpc-status\r\n\
               Content-Length: 2\r\nX-A: 1\r\n\r\nok"[..],
        );
        let mut r = ResponseReader::relaying();
        let (status, headers) = r.read_head(&mut buf, false, false).unwrap().unwrap();
        assert_eq!(status, 200);
        let kept: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            kept,
            [
                ("server", "nginx"),
                ("te", "trailers"),
                ("content-length", "2"),
                ("x-a", "1")
            ]
        );
        // The framing was read all the same, and so was the connection's fate.
        assert_eq!(r.remaining(), Some(2));
        assert!(r.keep_alive());
    }

    #[test]
    fn a_request_on_a_connection_the_server_closed_may_be_sent_again_only_if_safe() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let addr = one_answer_per_connection().await;
            let template = |m: Method| {
                RequestTemplate::new(&m, "/", "h", None, ("i", "c"), &[], Bytes::new()).unwrap()
            };
            // (method, whether its failure on the closed connection may be retried)
            let cases = [
                (Method::GET, true),   // idempotent: nothing came back, safe to send again
                (Method::POST, false), // it may have been processed: not sent twice
            ];
            for (method, retryable) in cases {
                let t = template(method.clone());
                let mut c = Conn::tcp(TcpStream::connect(addr).await.unwrap(), keep());
                // The first request on a new connection is answered.
                let first = c.send(&t, 1, 1).await.unwrap();
                assert_eq!(&first.body[..], b"ok", "{method}");
                assert!(c.is_ready(), "{method}: nothing said it would close");
                // Let the close arrive, then send on the dead connection.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let failed = c.send(&t, 2, 2).await.unwrap_err();
                assert_eq!(failed.retryable, retryable, "{method}: {failed:?}");
                assert!(!c.is_ready(), "{method}");
                // A new connection answers again.
                let mut fresh = Conn::tcp(TcpStream::connect(addr).await.unwrap(), keep());
                assert!(fresh.send(&t, 3, 3).await.is_ok(), "{method}");
            }
            // A new connection's first request is never retried, even an idempotent one: it
            // was not reused, so its failure is the server's answer, not a stale connection.
            let closing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let closing_addr = closing.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((s, _)) = closing.accept().await {
                    drop(s);
                }
            });
            let mut fresh = Conn::tcp(TcpStream::connect(closing_addr).await.unwrap(), keep());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let failed = fresh.send(&template(Method::GET), 4, 4).await.unwrap_err();
            assert!(
                !failed.retryable,
                "a fresh connection's failure: {failed:?}"
            );
        });
    }

    /// A valid stream of three responses (content-length, chunked with a trailer, 204).
    const STREAM: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKnative-Serving-Revision: v1\r\n\r\nhello\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";

    proptest! {
        #[test]
        fn any_split_of_a_stream_reads_the_same(mut cuts in proptest::collection::vec(0..STREAM.len(), 0..12)) {
            cuts.sort_unstable();
            cuts.dedup();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in cuts {
                pieces.push(&STREAM[from..c]);
                from = c;
            }
            pieces.push(&STREAM[from..]);
            let (whole, err_whole, _) = read_all(STREAM, false);
            let (split, err_split, _) = read_in_pieces(&pieces, false);
            prop_assert_eq!(err_whole, None);
            prop_assert_eq!(err_split, None);
            prop_assert_eq!(whole.len(), 3);
            prop_assert_eq!(split, whole);
        }
    }
}
