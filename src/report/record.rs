//! The record schema both the simulator and the live mode emit: one `RequestRecord` per
//! finished request, with exactly one `Outcome`.

use crate::model::time::SimTime;

/// How a request ended. Every request ends in exactly one outcome; requests still unfinished
/// when a run ends are counted as in flight instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The application answered.
    Served,
    /// 503 `pending request queue full` from a queue-proxy breaker.
    RejectedQp,
    /// 504 `activator request timeout`.
    ExpiredActivator,
    /// 504 `request timeout` from the queue-proxy.
    ExpiredQp,
    /// The client gave up first.
    ClientCancelled,
    /// The application answered with an error status (a failing revision's `error_rate`): it
    /// went back through the queue-proxy and the activator unchanged. Served-with-error, not
    /// served.
    AppError,
    /// 502 from the queue-proxy: its application did not accept the connection (not serving
    /// yet, `ready_before_serving`) or crashed while holding the request (`crash_after`).
    BadGateway,
    /// Anything else (no route for the host, no endpoint, a connection error).
    Error,
    /// 503 with `x-envoy-overloaded: true` (flag UO): the gateway replica's circuit breaker for
    /// the revision's cluster was full (`model::ingress`).
    IngressOverflow,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Served,
        Outcome::RejectedQp,
        Outcome::ExpiredActivator,
        Outcome::ExpiredQp,
        Outcome::ClientCancelled,
        Outcome::AppError,
        Outcome::BadGateway,
        Outcome::Error,
        Outcome::IngressOverflow,
    ];

    /// The name used in outputs (`summary.json` keys, `requests.csv`).
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::RejectedQp => "rejected_qp",
            Outcome::ExpiredActivator => "expired_activator",
            Outcome::ExpiredQp => "expired_qp",
            Outcome::ClientCancelled => "client_cancelled",
            Outcome::AppError => "app_error",
            Outcome::BadGateway => "bad_gateway",
            Outcome::Error => "errors",
            Outcome::IngressOverflow => "ingress_overflow",
        }
    }

    /// The HTTP status a client sees (0: none, the client cancelled). An application error is
    /// shown as 500 whatever its `error_status` (the record keeps the outcome, not the status).
    pub fn status(self) -> u16 {
        match self {
            Outcome::Served => 200,
            Outcome::RejectedQp | Outcome::IngressOverflow => 503,
            Outcome::ExpiredActivator | Outcome::ExpiredQp => 504,
            Outcome::ClientCancelled => 0,
            Outcome::AppError => 500,
            Outcome::BadGateway | Outcome::Error => 502,
        }
    }
}

/// The request counts of `summary.json` that account for every arrival, in file order: each
/// outcome's name, then `in_flight_at_end`.
pub const END_KEYS: [&str; 10] = [
    Outcome::Served.name(),
    Outcome::RejectedQp.name(),
    Outcome::ExpiredActivator.name(),
    Outcome::ExpiredQp.name(),
    Outcome::ClientCancelled.name(),
    Outcome::AppError.name(),
    Outcome::BadGateway.name(),
    Outcome::Error.name(),
    Outcome::IngressOverflow.name(),
    "in_flight_at_end",
];

/// One finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Sequence number in arrival order.
    pub id: u64,
    pub arrived: SimTime,
    pub finished: SimTime,
    /// The revision (index) the ingress chose; `None` when routing failed.
    pub revision: Option<usize>,
    /// Whether the request took the default group (the route's main split), as opposed to a tag.
    pub default_group: bool,
    /// Whether it went through the activator.
    pub via_activator: bool,
    pub outcome: Outcome,
}

impl RequestRecord {
    /// End-to-end latency in nanoseconds.
    pub fn latency_ns(&self) -> i64 {
        self.finished.0 - self.arrived.0
    }
}
