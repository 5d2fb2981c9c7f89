//! A revision's pod, for real: an HTTP server on 127.0.0.1 whose handler is the queue-proxy
//! (datapath.md A.1-A.2) in front of a modelled application.
//!
//! - Admission is the model's own `Breaker` (`model::queue_proxy`): with containerConcurrency
//!   `cc > 0`, `cc` executing and `10·cc` waiting in FIFO order; the next request gets an
//!   immediate 503 `pending request queue full`. With `cc == 0` the application's workers
//!   (`AppModel::Workers`) queue without limit.
//! - The revision timeout starts when the request enters the queue-proxy (before the breaker,
//!   A.2.2): a request still waiting or executing at `timeoutSeconds` gets 504 `request timeout`
//!   and leaves the queue.
//! - "Serving" is waiting a service time drawn from the revision's distribution (scenario time,
//!   scaled by the clock); the answer is `Hello <revision>!` with `Knative-Serving-Revision` and
//!   `Knative-Serving-Pod` headers. `GET /healthz` with `K-Network-Probe: queue` answers `queue`.
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

use super::clock::Clock;
use super::http::{
    full, set_header, text, Body, POD_HEADER, QP_TIMEOUT_BODY, QUEUE_FULL_BODY, REVISION_HEADER,
};
use crate::model::dist::Dist;
use crate::model::queue_proxy::{Admission, Breaker};
use crate::model::rng::StreamRng;

/// Reports changes of the number of requests waiting in this pod's queue-proxy.
pub type QueueObserver = Arc<dyn Fn(i64) + Send + Sync>;

/// What a pod is.
pub struct PodConfig {
    pub revision: String,
    pub name: String,
    /// containerConcurrency; 0: no breaker, `workers` application threads instead.
    pub cc: u32,
    pub workers: u32,
    /// The revision timeout, scenario time.
    pub timeout: crate::model::time::SimDuration,
    pub service_time: Dist,
    pub rng: StreamRng,
    pub clock: Clock,
    pub on_queue: Option<QueueObserver>,
}

struct QpState {
    breaker: Breaker,
    waiters: HashMap<u64, oneshot::Sender<()>>,
    next_id: u64,
    rng: StreamRng,
}

struct PodShared {
    revision: String,
    name: String,
    timeout: Duration,
    service_time: Dist,
    clock: Clock,
    state: Mutex<QpState>,
    on_queue: Option<QueueObserver>,
}

/// A running pod. Dropping it does not stop it; call `stop`.
pub struct Pod {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
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
            }),
            on_queue: config.on_queue,
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(super::http::serve(listener, stopped, move |req| {
            let shared = shared.clone();
            async move { shared.handle(req).await }
        }));
        Ok(Pod { addr, stop })
    }

    /// Stops accepting connections; open connections finish the request they carry and close.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Where a request is in the queue-proxy, for the drop guard.
enum Place {
    Waiting(u64),
    Executing,
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
                    drop(st);
                    self.pod.queue_changed(-1);
                } else {
                    // Granted a slot at the same moment it gave up: give the slot back.
                    self.pod.release(st);
                }
            }
            Place::Executing => {
                let st = self.pod.lock();
                self.pod.release(st);
            }
            Place::Done => {}
        }
    }
}

impl PodShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, QpState> {
        self.state
            .lock()
            .expect("queue-proxy lock is never poisoned: no code panics while holding it")
    }

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
            drop(st);
            self.queue_changed(-1);
            // If its handler is being dropped right now, its guard finds itself granted and
            // releases the slot again.
            let _ = tx.send(());
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() == "/healthz" && req.headers().contains_key("k-network-probe") {
            return text(StatusCode::OK, "queue");
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut guard = Guard {
            pod: self,
            place: Place::Done,
        };
        let wait = {
            let mut st = self.lock();
            let id = st.next_id;
            st.next_id += 1;
            match st.breaker.admit(id) {
                Admission::Start => None,
                Admission::Queued => {
                    let (tx, rx) = oneshot::channel();
                    st.waiters.insert(id, tx);
                    Some((id, rx))
                }
                Admission::Rejected => {
                    drop(st);
                    return self.stamp(text(StatusCode::SERVICE_UNAVAILABLE, QUEUE_FULL_BODY));
                }
            }
        };
        match wait {
            None => guard.place = Place::Executing,
            Some((id, rx)) => {
                guard.place = Place::Waiting(id);
                self.queue_changed(1);
                match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(())) => guard.place = Place::Executing,
                    // Timed out while waiting (the guard forgets it or gives back a late grant).
                    _ => {
                        drop(guard);
                        return self.stamp(text(StatusCode::GATEWAY_TIMEOUT, QP_TIMEOUT_BODY));
                    }
                }
            }
        }
        let work = {
            let mut st = self.lock();
            self.service_time.sample(&mut st.rng)
        };
        let done = tokio::time::Instant::now() + self.clock.wall(work);
        if done > deadline {
            tokio::time::sleep_until(deadline).await;
            drop(guard);
            return self.stamp(text(StatusCode::GATEWAY_TIMEOUT, QP_TIMEOUT_BODY));
        }
        tokio::time::sleep_until(done).await;
        drop(guard);
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
