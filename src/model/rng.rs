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
pub enum Stream {
    Arrivals = 1,
    Routing = 2,
    IngressDelay = 3,
    // 4 was reserved for endpoint load balancing, which is round-robin and draws nothing.
    ActivatorLb = 5,
    /// Per revision: `ServiceTime + 2 * revision index`.
    ServiceTime = 16,
    /// Per revision: `Startup + 2 * revision index`.
    Startup = 17,
    /// Per revision: `PodAddress + 2 * revision index` (the pods' IP addresses), far above the
    /// other per-revision streams so no revision index reaches it.
    PodAddress = 1 << 20,
}

/// The generator for `stream` (plus `index`, e.g. a revision index, for per-entity streams).
pub fn stream(seed: u64, replication: u64, stream: Stream, index: u64) -> StreamRng {
    let id = (stream as u64).wrapping_add(index.wrapping_mul(2));
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
}
