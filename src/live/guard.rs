//! What a server does about clients that hold its connections (issue 17 item 4): a header-read
//! timeout (slowloris), an idle timeout, a connection cap, and a back-off when `accept` fails
//! (at the file-descriptor limit). Used by `http::serve_with` for the gateway and the pods.
//!
//! A connection is, at any moment, in one of three phases, as Envoy's HTTP connection manager
//! sees it:
//!
//! - **busy**: one or more requests in flight (their heads were read, their responses are not
//!   yet written to the end). No timer: a slow backend or a long upload is not the client's
//!   fault here (the revision timeout bounds a request).
//! - **idle**: no request in flight and no byte of a new one. Closed after `idle_timeout`
//!   (Envoy `common_http_protocol_options.idle_timeout`, nginx `keepalive_timeout`); an HTTP/2
//!   connection is closed with GOAWAY.
//! - **head**: bytes of a request head are arriving, or the connection is new (nginx's and Go's
//!   `ReadHeaderTimeout` count from the accept too). The head must be complete within
//!   `header_timeout` (Envoy `request_headers_timeout`, nginx `client_header_timeout`); if it
//!   is not, a client that sent part of a head gets `408 Request Timeout` and the connection is
//!   closed, one that sent nothing is closed. After an HTTP/2 connection preface, the
//!   connection is HTTP/2 and has no head phase (a HEADERS frame arrives whole).
//!
//! The phase is read from the connection's own bytes (`Watched`, a reader wrapper) and from
//! its requests (`ConnWatch::begin`, whose guard ends with the response body), so hyper needs
//! no timer of its own. Must not: read or change request or response data.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::http::{Body, BodyError};

/// The default header-read timeout: Envoy leaves `request_headers_timeout` off and nginx's
/// `client_header_timeout` is 60 s; 10 s is what a real client needs many times over (a head
/// is one write) and bounds what a slowloris client can hold.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default idle timeout: nginx's `keepalive_timeout` is 75 s, Envoy's downstream
/// `idle_timeout` 1 h; 60 s keeps a client's pooled connections across pauses of a minute
/// (Go's and hyper's client pools keep idle connections 90 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The connection cap when the file-descriptor limit allows it (nginx's `worker_connections`
/// default is 512 per worker; Envoy has no default cap and warns about it).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// File descriptors kept for everything but client connections (listeners, the runtime's
/// epoll and wake-up descriptors, output files).
const RESERVED_FDS: usize = 32;
/// The answer to a client whose request head did not arrive in time (RFC 9110 15.5.9).
const REQUEST_TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
/// How long a connection closed by a timer has to say goodbye (HTTP/2's GOAWAY).
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A server's limits on its connections (docs/limits.md, "The gateway and the pods under
/// hostile clients").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// A request head's time limit, from its first byte (or the connection's start); `None`:
    /// no limit.
    pub header_timeout: Option<Duration>,
    /// How long a connection may stay open with no request in flight; `None`: no limit.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connections: default_max_connections(open_files_limit()),
        }
    }
}

/// `DEFAULT_MAX_CONNECTIONS`, or fewer when the soft `RLIMIT_NOFILE` (`nofile`) is lower: each
/// client connection of the gateway may need one upstream connection too, so half of what is
/// left after `RESERVED_FDS` (at least 1).
pub fn default_max_connections(nofile: Option<u64>) -> usize {
    let Some(nofile) = nofile else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let usable = usize::try_from(nofile).unwrap_or(usize::MAX);
    (usable.saturating_sub(RESERVED_FDS) / 2).clamp(1, DEFAULT_MAX_CONNECTIONS)
}

/// The process's soft limit on open files, from `/proc/self/limits` (`None` where that file
/// does not exist, or for `unlimited`).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What the servers did to protect themselves, for the gateway's final line.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections closed at once because `max_connections` were open.
    pub refused_at_cap: AtomicU64,
    /// Connections closed because a request head did not arrive within `header_timeout`.
    pub header_timeouts: AtomicU64,
    /// Connections closed after `idle_timeout` without a request.
    pub idle_closed: AtomicU64,
    /// `accept` calls that failed (the file-descriptor limit, mostly).
    pub accept_errors: AtomicU64,
}

impl ConnStats {
    /// The non-zero counts as `name N` pairs, in a fixed order.
    pub fn summary(&self) -> Vec<(&'static str, u64)> {
        [
            ("refused at the connection cap", &self.refused_at_cap),
            ("header timeouts", &self.header_timeouts),
            ("closed idle", &self.idle_closed),
            ("accept errors", &self.accept_errors),
        ]
        .into_iter()
        .map(|(name, n)| (name, n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// Go's `net/http` back-off on a failed `accept` (server.go `Serve`): 5 ms, doubling up to
/// 1 s, reset by a success. Without it a listener at the file-descriptor limit is reported
/// readable forever and its loop spins.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    delay: Option<Duration>,
    /// Failures in the current burst.
    failures: u64,
}

/// What to do after an `accept`.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptStep {
    /// Accept again at once; with the failures of the burst that just ended, if any.
    Go(Option<u64>),
    /// Wait this long first; `true` for the first failure of a burst (the one to log).
    Wait(Duration, bool),
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    pub fn succeeded(&mut self) -> AcceptStep {
        self.delay = None;
        let ended = std::mem::take(&mut self.failures);
        AcceptStep::Go((ended > 0).then_some(ended))
    }

    pub fn failed(&mut self, e: &io::Error) -> AcceptStep {
        // A connection that died in the backlog is that connection's problem only.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return AcceptStep::Go(None);
        }
        self.failures += 1;
        let delay = self.delay.map_or(Self::FIRST, |d| (d * 2).min(Self::MAX));
        self.delay = Some(delay);
        AcceptStep::Wait(delay, self.failures == 1)
    }
}

const PHASE_HEAD: u8 = 0;
const PHASE_IDLE: u8 = 1;

/// The HTTP/2 connection preface (RFC 9113 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a connection's timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Header,
    Idle,
}

/// One connection's phase, shared by its reader, its requests and its timer.
#[derive(Debug)]
pub struct ConnWatch {
    base: Instant,
    phase: AtomicU8,
    /// When the current head or idle phase began, in ns after `base`.
    since_ns: AtomicU64,
    in_flight: AtomicUsize,
    /// Bytes of the current request head were read.
    head_bytes: AtomicBool,
    /// The connection opened with the HTTP/2 preface.
    h2: AtomicBool,
    /// The header timeout fired: the reader answers 408 (if a head was started) and ends.
    timed_out: AtomicBool,
}

impl ConnWatch {
    /// A new connection: in the head phase from now.
    pub fn new() -> Arc<Self> {
        Arc::new(ConnWatch {
            base: Instant::now(),
            phase: AtomicU8::new(PHASE_HEAD),
            since_ns: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_bytes: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A phase begins now. Nothing is woken: `next_check` keeps the connection's timer at or
    /// before any deadline a phase begun from now on can have.
    fn enter(&self, phase: u8) {
        self.since_ns.store(self.now_ns(), Ordering::Release);
        self.phase.store(phase, Ordering::Release);
    }

    /// A request's head was read: the connection is busy until the guard is dropped (with
    /// the response body, or the handler if it never answers).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_bytes.store(false, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Bytes came in on the connection.
    fn read(&self, bytes: &[u8]) {
        if self.h2.load(Ordering::Relaxed) || self.in_flight.load(Ordering::Acquire) > 0 {
            return;
        }
        self.head_bytes.store(true, Ordering::Relaxed);
        if self.phase.load(Ordering::Acquire) == PHASE_IDLE && !bytes.is_empty() {
            self.enter(PHASE_HEAD);
        }
    }

    /// The connection opened with the HTTP/2 preface: no head phase from now on.
    fn is_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
        self.head_bytes.store(false, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0 {
            self.enter(PHASE_IDLE);
        }
    }

    /// When the connection's timer fires and why, if it has one now.
    pub fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let phase = self.phase.load(Ordering::Acquire);
        let since = self.base + Duration::from_nanos(self.since_ns.load(Ordering::Acquire));
        if phase == PHASE_HEAD && !self.h2.load(Ordering::Relaxed) {
            limits.header_timeout.map(|t| (since + t, Expiry::Header))
        } else {
            limits.idle_timeout.map(|t| (since + t, Expiry::Idle))
        }
    }

    /// When the connection's timer should next look at it (`None`: never, no limit is set).
    ///
    /// That is the current deadline, but no later than the shortest limit from now: a phase
    /// that begins after this call has a deadline at least that far away, so a request's phase
    /// changes (two per request) need not wake the timer. Waking it for each of them cost a
    /// spurious poll of the connection and a timer re-arm per change, a few per cent of the
    /// gateway's CPU; this way a busy connection's timer looks once per shortest limit.
    pub fn next_check(&self, limits: &ConnLimits, now: Instant) -> Option<Instant> {
        let shortest = match (limits.header_timeout, limits.idle_timeout) {
            (Some(h), Some(i)) => h.min(i),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return None,
        };
        let cap = now + shortest;
        Some(self.deadline(limits).map_or(cap, |(at, _)| at.min(cap)))
    }

    /// The timer fired: what expired, if its deadline is still due (a request may have begun
    /// since).
    pub fn expired(&self, limits: &ConnLimits) -> Option<Expiry> {
        self.deadline(limits)
            .filter(|(at, _)| *at <= Instant::now())
            .map(|(_, why)| why)
    }

    /// The header timeout fired: the reader answers and ends the connection.
    pub fn time_out(&self) {
        self.timed_out.store(true, Ordering::Release);
    }
}

/// A request in flight on its connection; dropping it makes the connection idle if it was the
/// last.
#[derive(Debug)]
pub struct InFlight(Arc<ConnWatch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(PHASE_IDLE);
        }
    }
}

/// A response body that keeps its request in flight until hyper has written it to the end
/// (and drops it). Generic over the handler's body so it wraps it without another box.
pub struct Tracked<B = Body> {
    pub inner: B,
    pub _in_flight: InFlight,
}

impl<B> hyper::body::Body for Tracked<B>
where
    B: hyper::body::Body<Data = Bytes, Error = BodyError> + Unpin,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's byte stream as the server reads it, telling its `ConnWatch` when bytes of a
/// request head arrive and whether it opened with the HTTP/2 preface; after the header
/// timeout it answers 408 (best effort: one write) and reads as closed.
pub struct Watched<I> {
    inner: I,
    watch: Arc<ConnWatch>,
    /// Bytes of the HTTP/2 preface matched so far; `None` once decided.
    preface: Option<usize>,
    answered: bool,
}

impl<I> Watched<I> {
    pub fn new(inner: I, watch: Arc<ConnWatch>) -> Self {
        Watched {
            inner,
            watch,
            preface: Some(0),
            answered: false,
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        if let Some(matched) = self.preface {
            let n = bytes.len().min(H2_PREFACE.len() - matched);
            self.preface = if bytes[..n] != H2_PREFACE[matched..matched + n] {
                None
            } else if matched + n == H2_PREFACE.len() {
                self.watch.is_h2();
                None
            } else {
                Some(matched + n)
            };
        }
        self.watch.read(bytes);
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.watch.timed_out.load(Ordering::Acquire) {
            if !this.answered && this.watch.head_bytes.load(Ordering::Relaxed) {
                this.answered = true;
                // One try: a client that does not read is not waited for.
                let inner = Pin::new(&mut this.inner);
                if let Poll::Ready(Ok(_)) = inner.poll_write(cx, REQUEST_TIMEOUT_RESPONSE) {
                    let _ = Pin::new(&mut this.inner).poll_flush(cx);
                    let _ = Pin::new(&mut this.inner).poll_shutdown(cx);
                }
            }
            // Reads as the end of the stream: hyper closes the connection.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                this.saw(new);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_in_the_open_files_limit() {
        // (soft RLIMIT_NOFILE, cap)
        let cases = [
            (None, DEFAULT_MAX_CONNECTIONS), // limit unknown: the default
            (Some(1_048_576), DEFAULT_MAX_CONNECTIONS), // a raised limit: the default
            (Some(20_000), 9_984),           // (20000 - 32) / 2
            (Some(1024), 496),               // the usual shell default
            (Some(64), 16),                  // a tiny limit
            (Some(10), 1),                   // below the reserve: still one
        ];
        for (nofile, cap) in cases {
            assert_eq!(default_max_connections(nofile), cap, "{nofile:?}");
        }
    }

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 1048576              files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(1024));
        // `unlimited` or a missing line: unknown.
        let unlimited = limits.replace("1024 ", "unlimited ");
        assert_eq!(parse_open_files_limit(&unlimited), None);
        assert_eq!(parse_open_files_limit("Max cpu time  1  1  s\n"), None);
    }

    #[test]
    fn accept_failures_back_off_from_5_ms_to_1_s_and_log_once_per_burst() {
        let emfile = io::Error::from_raw_os_error(24);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        let mut b = AcceptBackoff::default();
        // (error or success, step)
        let ms = Duration::from_millis;
        let cases: Vec<(Option<&io::Error>, AcceptStep)> = vec![
            // A connection that died in the backlog: no pause, not a burst.
            (Some(&aborted), AcceptStep::Go(None)),
            // The fd limit: 5 ms, logged once, then doubling without a log.
            (Some(&emfile), AcceptStep::Wait(ms(5), true)),
            (Some(&emfile), AcceptStep::Wait(ms(10), false)),
            (Some(&emfile), AcceptStep::Wait(ms(20), false)),
            (Some(&emfile), AcceptStep::Wait(ms(40), false)),
            (Some(&emfile), AcceptStep::Wait(ms(80), false)),
            (Some(&emfile), AcceptStep::Wait(ms(160), false)),
            (Some(&emfile), AcceptStep::Wait(ms(320), false)),
            (Some(&emfile), AcceptStep::Wait(ms(640), false)),
            // Capped at 1 s.
            (Some(&emfile), AcceptStep::Wait(ms(1000), false)),
            (Some(&emfile), AcceptStep::Wait(ms(1000), false)),
            // A success ends the burst and says how long it was.
            (None, AcceptStep::Go(Some(10))),
            (None, AcceptStep::Go(None)),
            // A new burst starts from 5 ms and is logged again.
            (Some(&emfile), AcceptStep::Wait(ms(5), true)),
        ];
        for (i, (event, want)) in cases.into_iter().enumerate() {
            let got = match event {
                Some(e) => b.failed(e),
                None => b.succeeded(),
            };
            assert_eq!(got, want, "step {i}");
        }
    }

    #[test]
    fn a_connection_moves_between_head_idle_and_busy() {
        let limits = ConnLimits {
            header_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 1,
        };
        let w = ConnWatch::new();
        let why = |w: &ConnWatch| w.deadline(&limits).map(|(_, e)| e);
        // New: the head phase, from the accept.
        assert_eq!(why(&w), Some(Expiry::Header));
        // A request's head was read: busy, no timer.
        w.read(b"GET / HTTP/1.1\r\n\r\n");
        let req = w.begin();
        assert_eq!(why(&w), None);
        // Body bytes while busy change nothing.
        w.read(b"body");
        assert_eq!(why(&w), None);
        // The response is written: idle.
        drop(req);
        assert_eq!(why(&w), Some(Expiry::Idle));
        // The first byte of the next head: the header timer.
        w.read(b"G");
        assert_eq!(why(&w), Some(Expiry::Header));
        // Two requests at once (HTTP/2 streams): busy until both end.
        let (a, b) = (w.begin(), w.begin());
        drop(a);
        assert_eq!(why(&w), None);
        drop(b);
        assert_eq!(why(&w), Some(Expiry::Idle));
        // No limits: no timer.
        let none = ConnLimits {
            header_timeout: None,
            idle_timeout: None,
            max_connections: 1,
        };
        assert_eq!(w.deadline(&none), None);
    }

    #[test]
    fn the_timer_looks_no_later_than_any_deadline_a_request_can_bring() {
        // The timer is not woken when a phase changes, so where it is set must be at or before
        // the deadline of every phase that can begin before it fires.
        let limits = ConnLimits {
            header_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 1,
        };
        let w = ConnWatch::new();
        let check = |w: &ConnWatch| {
            w.next_check(&limits, Instant::now())
                .expect("limits are set")
        };
        // New: at the header deadline itself.
        let at = check(&w);
        assert_eq!(Some(at), w.deadline(&limits).map(|(d, _)| d));
        // Busy (no deadline): the shortest limit from now.
        w.read(b"GET / HTTP/1.1\r\n\r\n");
        let req = w.begin();
        let at = check(&w);
        assert!(at <= Instant::now() + Duration::from_secs(10));
        // The request ends (idle, 60 s) and the next head begins (10 s): both later than `at`,
        // which was set before either began.
        drop(req);
        assert!(w.deadline(&limits).is_some_and(|(d, _)| at <= d));
        w.read(b"G");
        let (head, why) = w.deadline(&limits).expect("the head phase has a deadline");
        assert_eq!(why, Expiry::Header);
        assert!(at <= head);
        // Idle alone: the shortest limit from now, before the idle deadline.
        let _req = w.begin();
        drop(_req);
        let at = check(&w);
        let (idle, _) = w.deadline(&limits).expect("idle has a deadline");
        assert!(at <= idle && at <= Instant::now() + Duration::from_secs(10));
        // No limits: no timer at all.
        let none = ConnLimits {
            header_timeout: None,
            idle_timeout: None,
            max_connections: 1,
        };
        assert_eq!(w.next_check(&none, Instant::now()), None);
    }

    #[test]
    fn the_http2_preface_ends_the_head_phase_even_in_pieces() {
        // (reads, HTTP/2 detected)
        let cases: [(&[&[u8]], bool); 4] = [
            (&[H2_PREFACE], true),                                   // at once
            (&[b"PRI * HTTP/2", b".0\r\n\r\nSM\r\n\r\n\0\0"], true), // in two reads, frames after
            (&[b"PRI * HTTP/1.1\r\n"], false),                       // a near miss
            (&[b"GET / HTTP/1.1\r\n"], false),                       // HTTP/1.1
        ];
        for (reads, h2) in cases {
            let w = ConnWatch::new();
            let mut io = Watched::new(tokio::io::empty(), w.clone());
            for r in reads {
                io.saw(r);
            }
            assert_eq!(w.h2.load(Ordering::Relaxed), h2, "{reads:?}");
            let limits = ConnLimits::default();
            let want = if h2 { Expiry::Idle } else { Expiry::Header };
            assert_eq!(w.deadline(&limits).map(|(_, e)| e), Some(want), "{reads:?}");
        }
    }
}
