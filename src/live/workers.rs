//! The gateway's workers (`splitlab gateway --workers N`): N OS threads, each a single-threaded
//! tokio runtime with its own accept loop, as nginx runs `worker_processes` event loops.
//!
//! - **Listening.** Each worker has its own listening socket on the same address, bound with
//!   `SO_REUSEPORT`: the kernel spreads new connections over the workers' sockets, and a
//!   connection lives its whole life on the worker that accepted it (no wake-up crosses to
//!   another thread, no task is stolen). Where `SO_REUSEPORT` cannot be set, the workers share
//!   one listening socket (duplicated descriptors; whichever worker accepts first serves it).
//! - **What is shared.** The connection cap (`ServeOptions::slots`), the connection and
//!   request counters, and the backends' state; each worker has its own upstream connection
//!   pool and data plane copy (`cli::live::gateway` builds one `Gateway` per worker).
//!
//! Must not: route or relay (the `Gateway` does), or read signals (the caller stops the workers
//! through the `watch` channel they serve with).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use super::gateway::Gateway;
use super::http::ServeOptions;

/// The listening sockets' backlog (what `tokio::net::TcpListener::bind` uses).
const BACKLOG: u32 = 1024;

/// How long a stopped worker's open connections get to finish before its runtime is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// How the workers' listening sockets share the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// One worker, one socket.
    Single,
    /// One socket per worker, bound with `SO_REUSEPORT`.
    ReusePort,
    /// `SO_REUSEPORT` could not be set: one socket, its descriptor duplicated per worker.
    Shared,
}

/// One worker's single-threaded runtime.
pub fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A TCP socket for `addr` with `SO_REUSEADDR` (as `TcpListener::bind` sets it on unix) and,
/// with `reuseport`, `SO_REUSEPORT`.
fn socket(addr: SocketAddr, reuseport: bool) -> io::Result<TcpSocket> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    s.set_reuseaddr(true)?;
    if reuseport {
        set_reuseport(&s)?;
    }
    Ok(s)
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
fn set_reuseport(s: &TcpSocket) -> io::Result<()> {
    s.set_reuseport(true)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
)))]
fn set_reuseport(_: &TcpSocket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not supported here",
    ))
}

/// A listening socket on `addr` (registered with the current runtime's reactor to listen,
/// then released from it).
fn listen_on(s: TcpSocket, addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    s.bind(addr)?;
    s.listen(BACKLOG)?.into_std()
}

/// `n` listening sockets on `addr` (port 0: one the OS picks, the same for all), for `n`
/// workers; each worker registers its own with its runtime (`Workers::start`). Call it within
/// a runtime (tokio's `listen` registers the socket with the current reactor).
///
/// With more than one worker the sockets are bound with `SO_REUSEPORT`. An address another
/// process listens on is refused as without it: a probe socket without `SO_REUSEPORT` is bound
/// first, so a second gateway started on the same port fails instead of silently taking a
/// share of the first one's connections. Where `SO_REUSEPORT` cannot be set, one socket is
/// bound and its descriptor duplicated for every worker (`Sharing::Shared`).
pub fn listen(addr: SocketAddr, n: usize) -> io::Result<(Vec<std::net::TcpListener>, Sharing)> {
    if n <= 1 {
        return Ok((
            vec![listen_on(socket(addr, false)?, addr)?],
            Sharing::Single,
        ));
    }
    if addr.port() != 0 {
        // Refused here if anything listens on the address, with or without SO_REUSEPORT.
        socket(addr, false)?.bind(addr)?;
    }
    let first = match socket(addr, true) {
        Ok(s) => s,
        Err(_) => return listen_shared(addr, n),
    };
    let first = listen_on(first, addr)?;
    let local = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..n {
        listeners.push(listen_on(socket(local, true)?, local)?);
    }
    Ok((listeners, Sharing::ReusePort))
}

/// One socket on `addr`, its descriptor duplicated for each of `n` workers.
fn listen_shared(addr: SocketAddr, n: usize) -> io::Result<(Vec<std::net::TcpListener>, Sharing)> {
    let first = std::net::TcpListener::bind(addr)?;
    first.set_nonblocking(true)?;
    let mut listeners = vec![first];
    for _ in 1..n {
        listeners.push(listeners[0].try_clone()?);
    }
    Ok((listeners, Sharing::Shared))
}

/// The running workers.
pub struct Workers {
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Workers {
    /// Starts one thread per `(listener, gateway)`, each with its own single-threaded runtime,
    /// serving with `options` (cloned: the cap's slots and the counters are shared) until
    /// `stop` turns true (or its sender is dropped).
    pub fn start(
        parts: Vec<(std::net::TcpListener, Arc<Gateway>)>,
        options: &ServeOptions,
        stop: &watch::Receiver<bool>,
    ) -> io::Result<Workers> {
        let mut threads = Vec::with_capacity(parts.len());
        for (i, (listener, gw)) in parts.into_iter().enumerate() {
            let options = options.clone();
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("gateway-{i}"))
                .spawn(move || -> io::Result<()> {
                    let rt = runtime()?;
                    let listener = {
                        let _in = rt.enter();
                        TcpListener::from_std(listener)?
                    };
                    rt.block_on(gw.serve_with(listener, options, stop));
                    // Its connections saw the stop too and are finishing their requests.
                    rt.shutdown_timeout(SHUTDOWN_GRACE);
                    Ok(())
                })?;
            threads.push(thread);
        }
        Ok(Workers { threads })
    }

    /// Whether a worker has ended (it only does after the stop, unless it failed).
    pub fn any_ended(&self) -> bool {
        self.threads.iter().any(JoinHandle::is_finished)
    }

    /// Waits for every worker to end; returns the failures (an error or a panic), by worker.
    pub fn join(self) -> Vec<String> {
        self.threads
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| match t.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("worker {i}: {e}")),
                Err(_) => Some(format!("worker {i}: panicked")),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_listen_on_one_port_and_an_address_in_use_is_refused() {
        let rt = runtime().expect("runtime");
        let _in = rt.enter();
        let (listeners, sharing) = listen("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(listeners.len(), 3);
        assert_eq!(sharing, Sharing::ReusePort);
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
        // A second gateway on the same address is refused, one worker or several.
        let taken: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
        for n in [1, 2] {
            let err = listen(taken, n).map(|_| ()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{n} workers: {err}");
        }
        // The duplicated-socket fallback listens on one port too.
        let (shared, sharing) = listen_shared("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(sharing, Sharing::Shared);
        assert_eq!(shared.len(), 3);
        let port = shared[0].local_addr().unwrap().port();
        assert!(shared
            .iter()
            .all(|l| l.local_addr().unwrap().port() == port));
    }
}
