//! Seeded random streams: one independent generator per (seed, replication, stream), so each
//! component draws from its own sequence. Changing how one component uses randomness (or a
//! rollout setting that changes how many routing draws happen) leaves the others' sequences
//! untouched: the same seed gives the same arrivals under every setting (common random numbers).

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::routing::pick::mix64;

/// The generator every stream uses: small, fast, and stable across rand versions.
pub type StreamRng = Pcg64Mcg;

/// Stream identifiers. New streams get new numbers; existing numbers never change meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    Arrivals = 1,
    Routing = 2,
    IngressDelay = 3,
    // 4 was reserved for endpoint load balancing, which is round-robin and draws nothing.
    ActivatorLb = 5,
    /// The gateway's least-request (P2C) choices inside a revision cluster (`model::ingress`).
    IngressLb = 6,
    /// The gateway's retry back-off jitter (`model::ingress`).
    IngressRetry = 7,
    /// Per gateway replica r >= 1: its programming delay (`IngressReplicaDelay + 2 * r`; replica
    /// 0 draws from `IngressDelay`, so one replica draws exactly what the ideal gateway did).
    /// Far above the per-revision streams: at 8 its replica 4 drew `ServiceTime`'s revision 0.
    IngressReplicaDelay = 1 << 24,
    /// Per revision: `ServiceTime + 2 * revision index`.
    ServiceTime = 16,
    /// Per revision: `Startup + 2 * revision index`.
    Startup = 17,
    /// Per revision: `PodAddress + 2 * revision index` (the pods' IP addresses), far above the
    /// other per-revision streams so no revision index reaches it.
    PodAddress = 1 << 20,
    /// Per revision (sim) or per pod (live): whether the application answers a request with an
    /// error (`model::failure`). Far above the per-revision streams so no index reaches them.
    FailureApp = 1 << 32,
    /// Per revision or pod: the added latency of a slow revision.
    FailureLatency = (1 << 32) + 1,
    /// Per revision or pod: when containers crash.
    FailurePod = 1 << 33,
}

/// The number a stream's generator is seeded from: per-entity streams step by 2 from their base.
fn stream_id(stream: Stream, index: u64) -> u64 {
    (stream as u64).wrapping_add(index.wrapping_mul(2))
}

/// The generator for `stream` (plus `index`, e.g. a revision index, for per-entity streams).
pub fn stream(seed: u64, replication: u64, stream: Stream, index: u64) -> StreamRng {
    let id = stream_id(stream, index);
    let a = mix64(seed ^ mix64(replication.wrapping_add(0x5EED)));
    let b = mix64(a ^ mix64(id));
    let seed128 = (u128::from(mix64(b)) << 64) | u128::from(mix64(b ^ 0xA5A5_A5A5_A5A5_A5A5));
    StreamRng::from_seed(seed128.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |mut r: StreamRng| -> Vec<u64> { (0..4).map(|_| r.random()).collect() };
        assert_eq!(
            draw(stream(7, 0, Stream::Arrivals, 0)),
            draw(stream(7, 0, Stream::Arrivals, 0))
        );
        let variants = [
            draw(stream(7, 0, Stream::Arrivals, 0)),
            draw(stream(8, 0, Stream::Arrivals, 0)),
            draw(stream(7, 1, Stream::Arrivals, 0)),
            draw(stream(7, 0, Stream::Routing, 0)),
            draw(stream(7, 0, Stream::ServiceTime, 1)),
            draw(stream(7, 0, Stream::ServiceTime, 2)),
        ];
        for i in 0..variants.len() {
            for j in i + 1..variants.len() {
                assert_ne!(variants[i], variants[j], "streams {i} and {j} coincide");
            }
        }
    }

    #[test]
    fn per_entity_streams_never_reach_another_stream() {
        // (stream, how many entities it is drawn for): revisions and pods far beyond any
        // scenario, gateway replicas up to the validated 1000.
        const REVISIONS: u64 = 1 << 16;
        const PODS: u64 = 1 << 31;
        let ranged = [
            (Stream::ServiceTime, REVISIONS),
            (Stream::Startup, REVISIONS),
            (Stream::PodAddress, REVISIONS),
            (Stream::IngressReplicaDelay, 1000),
            (Stream::FailureApp, PODS),
            (Stream::FailureLatency, PODS),
            (Stream::FailurePod, PODS),
        ];
        let single = [
            Stream::Arrivals,
            Stream::Routing,
            Stream::IngressDelay,
            Stream::ActivatorLb,
            Stream::IngressLb,
            Stream::IngressRetry,
        ];
        // Every id a stream can take, as (first, last, parity) of a stride-2 run.
        let runs: Vec<(u64, u64)> = ranged
            .iter()
            .map(|&(s, n)| (stream_id(s, 0), stream_id(s, n - 1)))
            .chain(single.iter().map(|&s| (stream_id(s, 0), stream_id(s, 0))))
            .collect();
        let meets = |(a0, a1): (u64, u64), (b0, b1): (u64, u64)| {
            // Two stride-2 runs share an id iff they overlap and start on the same parity.
            a0 <= b1 && b0 <= a1 && a0 % 2 == b0 % 2
        };
        for i in 0..runs.len() {
            for j in i + 1..runs.len() {
                assert!(!meets(runs[i], runs[j]), "streams {i} and {j} share an id");
            }
        }
    }
}
