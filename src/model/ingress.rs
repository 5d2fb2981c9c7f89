//! The ingress profiles: how the Envoy gateway in front of Knative (Kourier, net-istio's Istio
//! gateway, net-contour's Contour) treats a request once the route's split has chosen its
//! revision. Source: `docs/knative/ingress.md` (§1 Envoy semantics, §6 the comparison
//! table, §7 "What a simulator must model"); upstream files are cited per rule.
//!
//! Owns, per gateway replica (one Envoy process):
//! - the circuit breaker of each revision cluster: requests outstanding to the cluster (its
//!   endpoints are the revision's pods in Serve mode, its activator subset in Proxy mode, so a
//!   backlog queued at the activator counts too); at `max_requests` a new request is refused with
//!   503 `x-envoy-overloaded: true` (flag UO), never retried;
//! - load balancing inside the cluster: a round-robin cursor, or least request with two random
//!   choices (P2C) over the replica's own count of active requests per host;
//! - the retry budget (Contour): the decision for a failed attempt and at most `max_retries`
//!   concurrent retries per cluster.
//!
//! The weighted split itself is `route_control::DataPlane`'s (chosen once per request, EV
//! `router.cc` `decodeHeaders`; a retry never re-picks the revision, EV `router.cc` `doRetry`).
//!
//! Must not: schedule events, read a clock, or draw from a generator it does not receive. `now`
//! and `rng` are arguments; `sim` (and later `live`) call `try_admit` when a request has its
//! revision and `release` exactly once when it ends, whatever the ending.
//!
//! Invariant: for each (replica, revision), `outstanding` = admitted − released, never above
//! `max_requests`; `release` of an admitted ticket twice is a bug (a debug assertion).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};

use crate::model::dist::Dist;
use crate::model::time::SimDuration;
use crate::routing::pick::mix64;

/// `ingress.profile`: which gateway the scenario's cluster runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IngressProfile {
    /// The simulator's original gateway: no circuit breaker, no retries, the sim's own spreading
    /// (round robin over pods, uniform over the activator subset). Kept for comparison, and the
    /// default so that earlier results stay reproducible.
    #[default]
    Ideal,
    /// net-kourier: one Envoy, round robin, no retries, Envoy's default breakers (1024).
    Kourier,
    /// net-istio: the Istio gateway, least request (P2C), retries disabled, breakers at 2³²−1.
    Istio,
    /// net-contour: round robin, retries on connect failure/reset (≤ 2), breakers 1024.
    Contour,
}

/// The names `ingress.profile` accepts, in the order error messages list them.
pub const PROFILE_NAMES: &str = "kourier, istio, contour, ideal";

/// Envoy's circuit-breaker default for `max_connections`, `max_pending_requests` and
/// `max_requests` (GCP `config/cluster/v3/circuit_breaker.pb.go:108-121`).
pub const ENVOY_DEFAULT_MAX_REQUESTS: u32 = 1024;
/// Envoy's default `max_retries` (concurrent retries per cluster), same source.
pub const ENVOY_DEFAULT_MAX_RETRIES: u32 = 3;
/// Istio's thresholds when no DestinationRule sets them: `math.MaxUint32` (IS
/// `pilot/pkg/networking/core/cluster_traffic_policy.go:476-490`): no breaking in practice.
pub const UNLIMITED: u32 = u32::MAX;

impl FromStr for IngressProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kourier" => Ok(IngressProfile::Kourier),
            "istio" => Ok(IngressProfile::Istio),
            "contour" => Ok(IngressProfile::Contour),
            "ideal" => Ok(IngressProfile::Ideal),
            other => Err(format!(
                "unknown ingress profile {other:?}; allowed: {PROFILE_NAMES}"
            )),
        }
    }
}

impl fmt::Display for IngressProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Load balancing inside a revision cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvoyLb {
    /// `ROUND_ROBIN`, Envoy's default `lb_policy` (GCP `cluster.pb.go:115`).
    RoundRobin,
    /// `LEAST_REQUEST` with `choice_count` 2 (GCP `cluster.pb.go:2361-2366`).
    LeastRequest,
}

/// A route retry policy, as Envoy applies it (EV `router_filter.rst` §x-envoy-max-retries,
/// `retry_state_impl.cc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `num_retries`.
    pub num_retries: u32,
    /// The cluster's `max_retries` breaker: retries active at once per cluster per replica.
    pub max_concurrent: u32,
    /// Fully jittered exponential back-off: retry k waits U[0, (2^k − 1)·base), capped.
    pub backoff_base: SimDuration,
    pub backoff_cap: SimDuration,
}

impl IngressProfile {
    pub const fn name(self) -> &'static str {
        match self {
            IngressProfile::Ideal => "ideal",
            IngressProfile::Kourier => "kourier",
            IngressProfile::Istio => "istio",
            IngressProfile::Contour => "contour",
        }
    }

    /// Gateway replicas by default: Kourier's Deployment has no `replicas` (1, HPA 1-10; KR
    /// `config/300-gateway.yaml:15-31,184-208`); Istio's gateway chart leaves `replicaCount`
    /// unset (1, HPA 1-5; IS `manifests/charts/gateway/values.yaml:9-13`); Contour's Envoy is
    /// a DaemonSet (NC `config/contour/external.yaml:9150`), one per node: 1 stands for a
    /// one-node cluster, set `ingress.replicas` to the node count.
    pub const fn default_replicas(self) -> u32 {
        1
    }

    /// `max_requests` per revision cluster per replica. Kourier's cluster sets no
    /// `circuit_breakers` (KR `pkg/envoy/api/cluster.go:32-69`), nor does net-contour (CT
    /// `internal/envoy/v3/cluster.go:82,194-210` emits them only when set): Envoy's 1024.
    /// For an HTTP/1.1 upstream the in-flight cap is min(max_connections + max_pending,
    /// max_requests) = 1024 (ingress.md §1.3, inference).
    pub const fn default_max_requests(self) -> u32 {
        match self {
            IngressProfile::Kourier | IngressProfile::Contour => ENVOY_DEFAULT_MAX_REQUESTS,
            IngressProfile::Istio | IngressProfile::Ideal => UNLIMITED,
        }
    }

    /// The load balancer inside a revision cluster; `None` for `ideal` (the simulator's own).
    /// Istio defaults to LEAST_REQUEST without a DestinationRule (IS
    /// `cluster_traffic_policy.go:361-377,382-395`); Kourier and Contour set no `lb_policy`
    /// (KR `cluster.go:39-52`; CT `internal/envoy/v3/cluster.go:37-43`).
    pub const fn lb(self) -> Option<EnvoyLb> {
        match self {
            IngressProfile::Ideal => None,
            IngressProfile::Kourier | IngressProfile::Contour => Some(EnvoyLb::RoundRobin),
            IngressProfile::Istio => Some(EnvoyLb::LeastRequest),
        }
    }

    /// The route's retry policy. Kourier builds routes without one (KR
    /// `pkg/envoy/api/route.go:40-51`); net-istio sets `HTTPRetry{}` which istiod turns into no
    /// policy (NI `virtual_service.go:204-210`, IS `route/retry/retry.go:106-119`); net-contour
    /// sets `NumRetries: 2` on connect-failure/reset/refused-stream with no retriable status
    /// codes (NC `pkg/reconciler/contour/resources/httpproxy.go:83-98`).
    pub const fn retry_policy(self) -> Option<RetryPolicy> {
        match self {
            IngressProfile::Contour => Some(RetryPolicy {
                num_retries: 2,
                max_concurrent: ENVOY_DEFAULT_MAX_RETRIES,
                backoff_base: SimDuration::from_millis(25),
                backoff_cap: SimDuration::from_millis(250),
            }),
            _ => None,
        }
    }

    /// Kourier skips the whole ingress translation when a split's EndpointSlices have no ready
    /// address, so the previous Envoy config stays in force until they do (KR
    /// `pkg/generator/ingress_translator.go:216-231`).
    pub const fn keeps_config_without_ready_endpoints(self) -> bool {
        matches!(self, IngressProfile::Kourier)
    }

    /// The band between a config change and the replicas applying it (and the KIngress
    /// reporting Ready). The first probe goes out 200 ms after the write (NW
    /// `pkg/status/status.go:52-60`). Kourier writes its xDS snapshot synchronously: 0.2-0.5 s
    /// (ingress.md §2.6); istiod debounces 100 ms (max 10 s): 0.2-2 s (§3.6); net-contour probes
    /// twice (endpoint warm-up, then the HTTPProxy), each after a 100-500 ms DAG holdoff:
    /// 0.5-2 s (§4.6). All three bands are the spec's inferences. `ideal` keeps 0.2-0.6 s.
    pub fn default_programming_delay(self) -> Dist {
        let (min, max) = match self {
            IngressProfile::Ideal => (200, 600),
            IngressProfile::Kourier => (200, 500),
            IngressProfile::Istio => (200, 2000),
            IngressProfile::Contour => (500, 2000),
        };
        Dist::Uniform {
            min: SimDuration::from_millis(min),
            max: SimDuration::from_millis(max),
        }
    }
}

/// The validated `ingress:` block.
#[derive(Clone, Debug, PartialEq)]
pub struct IngressSpec {
    pub profile: IngressProfile,
    /// Gateway replicas (Envoy processes); each has its own breakers and LB state.
    pub replicas: u32,
    /// Circuit-breaker threshold per revision cluster per replica (`UNLIMITED`: none).
    pub max_requests: u32,
    /// Delay between a change of the programmed split (new traffic block, rollout step, SKS mode
    /// change) and the moment the data plane applies it; also when the KIngress reports Ready,
    /// which is what ObserveReady sees. Each replica draws its own; Ready when all applied.
    pub programming_delay: Dist,
}

impl IngressSpec {
    /// A profile with its defaults.
    pub fn of(profile: IngressProfile) -> Self {
        IngressSpec {
            profile,
            replicas: profile.default_replicas(),
            max_requests: profile.default_max_requests(),
            programming_delay: profile.default_programming_delay(),
        }
    }
}

/// An upstream endpoint of a revision cluster, as the gateway sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A pod (Serve mode), by pod id.
    Pod(u32),
    /// An activator of the revision's subset (Proxy mode), by index.
    Activator(u16),
}

/// What a request holds at the gateway: released once when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticket {
    pub replica: u16,
    /// Counted in the replica's cluster `outstanding` (false for `ideal`, which counts nothing).
    pub admitted: bool,
    /// The host least request chose (counted in its active requests); `None` under round robin,
    /// which keeps no per-host count.
    pub host: Option<Host>,
}

/// Why an upstream attempt failed, for the retry decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// TCP connect failure (flag UF): a host still in the replica's endpoints whose listener is
    /// gone.
    ConnectFailure,
    /// Reset or disconnect before the response headers (UR/UC).
    Reset,
    /// An HTTP 503 answered by a queue-proxy or an activator (breaker full, deadline).
    Status503,
    /// The cluster's own breaker refused the request (UO).
    Overflow,
}

/// The gateway's answer to a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after `backoff`, with a host re-picked inside the same revision cluster. The retry
    /// holds one of the cluster's `max_retries` until `retry_done`.
    Retry { backoff: SimDuration },
    /// The route has no retry policy: the failure goes back to the client.
    NoPolicy,
    /// The policy does not retry this failure (status codes, overflow).
    NotRetriable,
    /// `num_retries` used up (flag URX).
    LimitExceeded,
    /// The cluster's `max_retries` concurrent retries are in use (flag UO,
    /// `upstream_rq_retry_overflow`): the original failure goes back to the client.
    RetryOverflow,
}

#[derive(Clone, Debug, Default)]
struct Replica {
    /// Per revision cluster: requests admitted and not yet released.
    outstanding: Vec<u32>,
    /// Per revision cluster: retries in progress.
    retries: Vec<u32>,
    /// Per revision cluster: the round-robin cursor.
    rr: Vec<usize>,
    /// Active requests per (revision, host), for least request.
    host_active: HashMap<(u32, Host), u32>,
}

/// The gateway's state: every replica's breakers, LB and retry budget.
#[derive(Clone, Debug)]
pub struct Gateway {
    profile: IngressProfile,
    max_requests: u32,
    lb: Option<EnvoyLb>,
    retry: Option<RetryPolicy>,
    replicas: Vec<Replica>,
}

impl Gateway {
    /// A gateway for `revisions` revision clusters.
    pub fn new(spec: &IngressSpec, revisions: usize) -> Self {
        let replica = Replica {
            outstanding: vec![0; revisions],
            retries: vec![0; revisions],
            rr: vec![0; revisions],
            host_active: HashMap::new(),
        };
        Gateway {
            profile: spec.profile,
            max_requests: spec.max_requests,
            lb: spec.profile.lb(),
            retry: spec.profile.retry_policy(),
            replicas: vec![replica; spec.replicas.max(1) as usize],
        }
    }

    pub fn profile(&self) -> IngressProfile {
        self.profile
    }

    /// `ideal`: the gateway counts nothing and leaves spreading to the caller.
    pub fn is_ideal(&self) -> bool {
        self.profile == IngressProfile::Ideal
    }

    /// The cluster LB, `None` for `ideal`.
    pub fn lb(&self) -> Option<EnvoyLb> {
        self.lb
    }

    /// The replica a request of `client` reaches. Load spreads per TCP connection (the cloud LB
    /// or kube-proxy) and keep-alive connections stick to a replica (ingress.md §2.5, inference):
    /// a client is one connection, so a client population pins each client to a replica, and a
    /// per-request client id (no population) spreads requests evenly at random. A hash, not a
    /// draw, so no generator moves.
    pub fn replica_of(&self, client: u64) -> u16 {
        let n = self.replicas.len() as u64;
        if n == 1 {
            0
        } else {
            (mix64(client ^ 0x1A6E_5500_C0FF_EE00) % n) as u16
        }
    }

    /// The circuit breaker of `rev`'s cluster at `replica`: `Some` ticket to hold until the
    /// request ends, or `None` when `max_requests` are outstanding (503 UO, EV
    /// `circuit_breaking.rst`; never retried, `retry_state_impl.cc` `wouldRetryFromReset`).
    pub fn try_admit(&mut self, replica: u16, rev: u32) -> Option<Ticket> {
        if self.is_ideal() {
            return Some(Ticket::default());
        }
        let out = &mut self.replicas[replica as usize].outstanding[rev as usize];
        if *out >= self.max_requests {
            return None;
        }
        *out += 1;
        Some(Ticket {
            replica,
            admitted: true,
            host: None,
        })
    }

    /// The replica's LB picks one of `n` hosts of `rev`'s cluster (`host(i)` names the i-th);
    /// returns its index, or `None` for `ideal` or an empty cluster. The ticket records the host
    /// so that `release` gives its active request back.
    pub fn pick_host<R: Rng + ?Sized>(
        &mut self,
        ticket: &mut Ticket,
        rev: u32,
        n: usize,
        host: impl Fn(usize) -> Host,
        rng: &mut R,
    ) -> Option<usize> {
        let lb = self.lb?;
        if n == 0 {
            return None;
        }
        let r = &mut self.replicas[ticket.replica as usize];
        let i = match lb {
            EnvoyLb::RoundRobin => {
                let c = &mut r.rr[rev as usize];
                let i = *c % n;
                *c = c.wrapping_add(1);
                i
            }
            // Envoy's unweighted P2C: two uniform draws (with replacement); the fewer active
            // requests wins, the first on a tie (`LeastRequestLoadBalancer::unweightedHostPick`).
            EnvoyLb::LeastRequest => {
                let a = rng.random_range(0..n);
                let b = rng.random_range(0..n);
                let active = |i: usize| r.host_active.get(&(rev, host(i))).copied().unwrap_or(0);
                if active(b) < active(a) {
                    b
                } else {
                    a
                }
            }
        };
        if let Some(old) = ticket.host.take() {
            release_host(r, rev, old);
        }
        // Only least request reads the hosts' active requests: round robin counts nothing per
        // host (a map update per request it would never read).
        if lb == EnvoyLb::LeastRequest {
            let h = host(i);
            *r.host_active.entry((rev, h)).or_insert(0) += 1;
            ticket.host = Some(h);
        }
        Some(i)
    }

    /// The request holding `ticket` for `rev` ended (any outcome): call exactly once.
    /// Inlined: for `ideal` (an unadmitted ticket) it is one test on every request's end.
    #[inline]
    pub fn release(&mut self, ticket: Ticket, rev: u32) {
        if !ticket.admitted {
            return;
        }
        let r = &mut self.replicas[ticket.replica as usize];
        let out = &mut r.outstanding[rev as usize];
        debug_assert!(*out > 0, "released a request the cluster does not hold");
        *out = out.saturating_sub(1);
        if let Some(h) = ticket.host {
            release_host(r, rev, h);
        }
    }

    /// Requests outstanding to `rev`'s cluster at `replica`.
    pub fn outstanding(&self, replica: u16, rev: u32) -> u32 {
        self.replicas[replica as usize].outstanding[rev as usize]
    }

    /// Requests outstanding to `rev`'s cluster, all replicas together.
    pub fn outstanding_total(&self, rev: u32) -> u64 {
        self.replicas
            .iter()
            .map(|r| u64::from(r.outstanding[rev as usize]))
            .sum()
    }

    /// Whether a failed attempt of a request to `rev` at `replica` is retried, after
    /// `retries_done` retries. Envoy (EV `retry_state_impl.cc`): an overflow reset is never
    /// retried (`wouldRetryFromReset`); the policy's `retry_on` decides the rest (Contour:
    /// connect-failure and reset, no status codes, so never a queue-proxy or activator 503);
    /// `retries_remaining_ == 0` gives URX; a full `max_retries` breaker gives UO. The host is
    /// re-picked by the caller with `pick_host` in the same cluster (EV `router.cc` `doRetry`).
    pub fn retry_decision<R: Rng + ?Sized>(
        &mut self,
        replica: u16,
        rev: u32,
        failure: UpstreamFailure,
        retries_done: u32,
        rng: &mut R,
    ) -> RetryDecision {
        let Some(policy) = self.retry else {
            return RetryDecision::NoPolicy;
        };
        match failure {
            UpstreamFailure::ConnectFailure | UpstreamFailure::Reset => {}
            UpstreamFailure::Status503 | UpstreamFailure::Overflow => {
                return RetryDecision::NotRetriable
            }
        }
        if retries_done >= policy.num_retries {
            return RetryDecision::LimitExceeded;
        }
        let active = &mut self.replicas[replica as usize].retries[rev as usize];
        if *active >= policy.max_concurrent {
            return RetryDecision::RetryOverflow;
        }
        *active += 1;
        RetryDecision::Retry {
            backoff: backoff(&policy, retries_done + 1, rng),
        }
    }

    /// A retry granted by `retry_decision` ended (its attempt finished, whatever the result).
    pub fn retry_done(&mut self, replica: u16, rev: u32) {
        let active = &mut self.replicas[replica as usize].retries[rev as usize];
        debug_assert!(*active > 0, "a retry ended that was never granted");
        *active = active.saturating_sub(1);
    }
}

fn release_host(r: &mut Replica, rev: u32, h: Host) {
    if let Some(c) = r.host_active.get_mut(&(rev, h)) {
        *c -= 1;
        if *c == 0 {
            r.host_active.remove(&(rev, h));
        }
    }
}

/// The back-off before retry `k` (1-based): U[0, min((2^k − 1)·base, cap)) in whole
/// milliseconds, so U[0,24] ms then U[0,74] ms with Envoy's 25 ms base (EV `router_filter.rst`
/// §x-envoy-max-retries).
pub fn backoff<R: Rng + ?Sized>(policy: &RetryPolicy, k: u32, rng: &mut R) -> SimDuration {
    let base_ms = policy.backoff_base.as_nanos() / 1_000_000;
    let cap_ms = policy.backoff_cap.as_nanos() / 1_000_000;
    let factor = (1i64 << k.min(20)) - 1;
    let upper = base_ms.saturating_mul(factor).min(cap_ms).max(1);
    SimDuration::from_millis(rng.random_range(0..upper))
}

/// Kourier's rule: a new config is translated (and applied) only if every split of it has at
/// least one ready endpoint; `ready_endpoints` gives each split's count. Other profiles apply
/// whatever they get (an empty cluster then answers 503 UH).
pub fn applies_config(
    profile: IngressProfile,
    ready_endpoints: impl IntoIterator<Item = usize>,
) -> bool {
    !profile.keeps_config_without_ready_endpoints() || ready_endpoints.into_iter().all(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{stream, Stream};
    use proptest::prelude::*;

    fn gateway(profile: IngressProfile, replicas: u32, max: u32, revs: usize) -> Gateway {
        let mut spec = IngressSpec::of(profile);
        spec.replicas = replicas;
        spec.max_requests = max;
        Gateway::new(&spec, revs)
    }

    #[test]
    fn profile_parameters_follow_the_spec_table() {
        use IngressProfile::*;
        // (profile, max_requests, lb, retries, keeps old config) — ingress.md §6
        let rows = [
            // KR cluster.go:32-69 sets no breakers/lb_policy; route.go:40-51 no retry policy;
            // ingress_translator.go:216-231 skips a split without ready addresses
            (Kourier, 1024, Some(EnvoyLb::RoundRobin), None, true),
            // IS cluster_traffic_policy.go:476-490 MaxUint32; :382-395 LEAST_REQUEST;
            // NI virtual_service.go:204-210 HTTPRetry{} → IS retry.go:116-119 nil policy
            (Istio, u32::MAX, Some(EnvoyLb::LeastRequest), None, false),
            // CT cluster.go:37-43 ROUND_ROBIN; NC httpproxy.go:83-98 NumRetries 2
            (Contour, 1024, Some(EnvoyLb::RoundRobin), Some(2), false),
            // the simulator's original gateway
            (Ideal, u32::MAX, None, None, false),
        ];
        for (p, max, lb, retries, keeps) in rows {
            assert_eq!(p.default_max_requests(), max, "{p}");
            assert_eq!(p.lb(), lb, "{p}");
            assert_eq!(p.retry_policy().map(|r| r.num_retries), retries, "{p}");
            assert_eq!(p.keeps_config_without_ready_endpoints(), keeps, "{p}");
            assert_eq!(p.name().parse::<IngressProfile>(), Ok(p));
        }
        assert_eq!(
            "nginx".parse::<IngressProfile>(),
            Err(
                "unknown ingress profile \"nginx\"; allowed: kourier, istio, contour, ideal".into()
            )
        );
    }

    #[test]
    fn breaker_refuses_at_max_per_replica_and_cluster() {
        let mut g = gateway(IngressProfile::Kourier, 2, 3, 2);
        let tickets: Vec<Ticket> = (0..3)
            .map(|_| g.try_admit(0, 0).expect("under max"))
            .collect();
        // the 4th request to the same cluster on the same replica overflows (503 UO)
        assert_eq!(g.try_admit(0, 0), None);
        // another cluster, and the same cluster on another replica, have their own counts
        assert!(g.try_admit(0, 1).is_some());
        assert!(g.try_admit(1, 0).is_some());
        g.release(tickets[0], 0);
        assert_eq!(g.outstanding(0, 0), 2);
        assert!(g.try_admit(0, 0).is_some());
        assert_eq!(g.outstanding_total(0), 4);
    }

    #[test]
    fn istio_and_ideal_never_overflow() {
        for p in [IngressProfile::Istio, IngressProfile::Ideal] {
            let mut g = Gateway::new(&IngressSpec::of(p), 1);
            for _ in 0..100_000 {
                assert!(g.try_admit(0, 0).is_some(), "{p}");
            }
        }
    }

    #[test]
    fn round_robin_cycles_per_replica_and_cluster() {
        let mut g = gateway(IngressProfile::Kourier, 2, 1024, 1);
        let mut rng = stream(1, 0, Stream::IngressLb, 0);
        let mut picks = |replica: u16| {
            let mut t = g.try_admit(replica, 0).expect("admitted");
            g.pick_host(&mut t, 0, 3, |i| Host::Pod(i as u32), &mut rng)
                .expect("a host")
        };
        // each replica has its own cursor (Envoy's RR state is per process)
        assert_eq!(
            [picks(0), picks(0), picks(1), picks(0), picks(1)],
            [0, 1, 0, 2, 1]
        );
    }

    #[test]
    fn least_request_spreads_evenly_where_round_robin_ignores_load() {
        // one host busy with long requests: P2C steers new ones away from it, RR does not
        let run = |profile: IngressProfile| -> [u32; 4] {
            let mut g = gateway(profile, 1, u32::MAX, 1);
            let mut rng = stream(1, 0, Stream::IngressLb, 0);
            let mut busy = Vec::new();
            let mut counts = [0u32; 4];
            for k in 0..4000 {
                let mut t = g.try_admit(0, 0).expect("no limit");
                let i = g
                    .pick_host(&mut t, 0, 4, |i| Host::Pod(i as u32), &mut rng)
                    .expect("a host");
                counts[i] += 1;
                if i == 0 {
                    busy.push(t); // host 0's requests never finish
                } else if k % 2 == 0 {
                    g.release(t, 0);
                } else {
                    busy.push(t);
                    let old = busy.remove(0);
                    g.release(old, 0);
                }
            }
            counts
        };
        let rr = run(IngressProfile::Kourier);
        let p2c = run(IngressProfile::Istio);
        assert_eq!(rr, [1000; 4], "round robin: equal counts whatever the load");
        // P2C still takes the loaded host when both draws land on it (1/16 with 4 hosts, about
        // 250 of 4000) and early on, before its load stands out; never RR's even share
        assert!(
            p2c[0] < 700,
            "least request avoids the loaded host: {p2c:?}"
        );
        assert!(p2c[1..].iter().all(|&n| n > 1000), "{p2c:?}");
    }

    #[test]
    fn contour_retries_only_connect_failures_and_resets() {
        use RetryDecision::*;
        use UpstreamFailure::*;
        let mut rng = stream(1, 0, Stream::IngressRetry, 0);
        // (profile, failure, retries done, expected) — ingress.md §4.2, §1.2
        let rows = [
            // NC httpproxy.go:88 retry_on connect-failure
            (IngressProfile::Contour, ConnectFailure, 0, true),
            // NC httpproxy.go:88 retry_on reset; second retry of two
            (IngressProfile::Contour, Reset, 1, true),
            // num_retries 2 used: URX (retry_state_impl.cc shouldRetry)
            (IngressProfile::Contour, Reset, 2, false),
            // no retriable_status_codes, no 5xx: a QP/activator 503 goes back as is
            (IngressProfile::Contour, Status503, 0, false),
            // an overflow reset is never retried (retry_state_impl.cc wouldRetryFromReset)
            (IngressProfile::Contour, Overflow, 0, false),
            // Kourier's routes carry no retry policy (KR route.go:40-51)
            (IngressProfile::Kourier, ConnectFailure, 0, false),
            // net-istio disables retries (NI virtual_service.go:204-210)
            (IngressProfile::Istio, Reset, 0, false),
        ];
        for (p, failure, done, retried) in rows {
            let mut g = gateway(p, 1, 1024, 1);
            let d = g.retry_decision(0, 0, failure, done, &mut rng);
            assert_eq!(
                matches!(d, Retry { .. }),
                retried,
                "{p} {failure:?} {done}: {d:?}"
            );
        }
        let mut g = gateway(IngressProfile::Kourier, 1, 1024, 1);
        assert_eq!(g.retry_decision(0, 0, Reset, 0, &mut rng), NoPolicy);
        let mut g = gateway(IngressProfile::Contour, 1, 1024, 1);
        assert_eq!(g.retry_decision(0, 0, Status503, 0, &mut rng), NotRetriable);
        assert_eq!(g.retry_decision(0, 0, Reset, 2, &mut rng), LimitExceeded);
    }

    #[test]
    fn contour_allows_three_concurrent_retries_per_cluster_and_replica() {
        let mut g = gateway(IngressProfile::Contour, 2, 1024, 2);
        let mut rng = stream(1, 0, Stream::IngressRetry, 0);
        for _ in 0..3 {
            let d = g.retry_decision(0, 0, UpstreamFailure::ConnectFailure, 0, &mut rng);
            assert!(matches!(d, RetryDecision::Retry { .. }));
        }
        // the 4th concurrent retry overflows the max_retries breaker (UO)
        let d = g.retry_decision(0, 0, UpstreamFailure::ConnectFailure, 0, &mut rng);
        assert_eq!(d, RetryDecision::RetryOverflow);
        // other clusters and replicas have their own budget
        let d = g.retry_decision(0, 1, UpstreamFailure::ConnectFailure, 0, &mut rng);
        assert!(matches!(d, RetryDecision::Retry { .. }));
        let d = g.retry_decision(1, 0, UpstreamFailure::ConnectFailure, 0, &mut rng);
        assert!(matches!(d, RetryDecision::Retry { .. }));
        g.retry_done(0, 0);
        let d = g.retry_decision(0, 0, UpstreamFailure::Reset, 1, &mut rng);
        assert!(matches!(d, RetryDecision::Retry { .. }));
    }

    #[test]
    fn backoff_is_fully_jittered_exponential_with_a_25ms_base() {
        let policy = IngressProfile::Contour
            .retry_policy()
            .expect("contour retries");
        let mut rng = stream(3, 0, Stream::IngressRetry, 0);
        // (retry k, exclusive upper bound in ms) — EV router_filter.rst: U[0,24], U[0,74], cap 250
        for (k, upper) in [(1, 25), (2, 75), (3, 175), (4, 250), (9, 250)] {
            let max = (0..2000)
                .map(|_| backoff(&policy, k, &mut rng).as_nanos() / 1_000_000)
                .max()
                .expect("draws");
            assert!(max < upper && max >= upper - 3, "retry {k}: max {max} ms");
        }
    }

    #[test]
    fn kourier_keeps_the_old_config_when_a_split_has_no_ready_endpoint() {
        // (profile, ready endpoints per split, applied) — KR ingress_translator.go:225-231
        let rows = [
            (IngressProfile::Kourier, vec![3, 0], false),
            (IngressProfile::Kourier, vec![3, 2], true),
            (IngressProfile::Istio, vec![3, 0], true),
            (IngressProfile::Contour, vec![0], true),
            (IngressProfile::Ideal, vec![0], true),
        ];
        for (p, ready, applied) in rows {
            assert_eq!(
                applies_config(p, ready.iter().copied()),
                applied,
                "{p} {ready:?}"
            );
        }
    }

    #[test]
    fn replicas_are_chosen_by_client() {
        let g = gateway(IngressProfile::Istio, 3, 1024, 1);
        let mut seen = [0u32; 3];
        for client in 0..30_000u64 {
            let r = g.replica_of(client);
            assert_eq!(r, g.replica_of(client), "a client keeps its replica");
            seen[r as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{seen:?}"
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Admit { replica: u16, rev: u32 },
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u16..2, 0u32..2).prop_map(|(replica, rev)| Op::Admit { replica, rev }),
            (0usize..64).prop_map(Op::Release),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Outstanding per (replica, cluster) is admitted − released and never above the limit;
        /// every host count returns to zero when everything is released.
        #[test]
        fn outstanding_is_admitted_minus_released(ops in proptest::collection::vec(op(), 0..200)) {
            let mut g = gateway(IngressProfile::Istio, 2, 5, 2);
            g.max_requests = 5;
            let mut rng = stream(1, 0, Stream::IngressLb, 0);
            let mut held: Vec<(Ticket, u32)> = Vec::new();
            for o in ops {
                match o {
                    Op::Admit { replica, rev } => {
                        let before = g.outstanding(replica, rev);
                        match g.try_admit(replica, rev) {
                            Some(mut t) => {
                                prop_assert!(before < 5);
                                g.pick_host(&mut t, rev, 3, |i| Host::Activator(i as u16), &mut rng);
                                held.push((t, rev));
                            }
                            None => prop_assert_eq!(before, 5),
                        }
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let (t, rev) = held.swap_remove(i % held.len());
                        g.release(t, rev);
                    }
                    Op::Release(_) => {}
                }
                for replica in 0..2u16 {
                    for rev in 0..2u32 {
                        let n = held.iter().filter(|(t, r)| t.replica == replica && *r == rev).count();
                        prop_assert_eq!(g.outstanding(replica, rev) as usize, n);
                        prop_assert!(n <= 5);
                    }
                }
            }
            for (t, rev) in held.drain(..) {
                g.release(t, rev);
            }
            prop_assert!(g.replicas.iter().all(|r| r.host_active.is_empty()));
        }
    }
}
