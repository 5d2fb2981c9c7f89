//! Arrival generation throughput: arrivals per second from `ArrivalGen::next` for each process,
//! with two tag shares, one header share and a client population (so every arrival pays for its
//! address and client too). Run with `cargo bench --bench arrival`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use splitlab::model::arrival::ArrivalGen;
use splitlab::model::dist::Dist;
use splitlab::model::time::{SimDuration, SimTime};
use splitlab::scenario::spec::{ArrivalProcessSpec, ArrivalSpec, RatePoint};

/// A sawtooth of one-second ramps between 0 and 2e6/s, so nearly every arrival is solved on a
/// ramp piece (the square-root path) and pieces are crossed often.
fn sawtooth(poisson: bool) -> ArrivalProcessSpec {
    let points = (0..20_000i64)
        .map(|i| RatePoint::Ramp {
            at: SimTime(i * 1_000_000_000),
            to_rate_per_s: if i % 2 == 0 { 2e6 } else { 0.0 },
            over: SimDuration::from_secs(1),
        })
        .collect();
    ArrivalProcessSpec::Schedule { points, poisson }
}

fn processes() -> Vec<(&'static str, ArrivalProcessSpec)> {
    vec![
        ("poisson", ArrivalProcessSpec::Poisson { rate_per_s: 1e6 }),
        ("constant", ArrivalProcessSpec::Constant { rate_per_s: 1e6 }),
        ("schedule_poisson", sawtooth(true)),
        ("schedule_even", sawtooth(false)),
        (
            "bursts",
            ArrivalProcessSpec::Bursts {
                on_rate_per_s: 2e6,
                off_rate_per_s: 1e5,
                on: Dist::exponential(SimDuration::from_millis(100)).expect("valid"),
                off: Dist::exponential(SimDuration::from_millis(300)).expect("valid"),
            },
        ),
    ]
}

fn next_throughput(c: &mut Criterion) {
    const BATCH: u64 = 1024;
    let mut group = c.benchmark_group("arrival");
    group.throughput(Throughput::Elements(BATCH));
    for (label, process) in processes() {
        let spec = ArrivalSpec {
            process,
            tag_shares: vec![("canary".into(), 0.05), ("stable".into(), 0.05)],
            header_shares: vec![("canary".into(), 0.01)],
            clients: Some(10_000),
        };
        let end = SimTime::MAX;
        let mut gen = ArrivalGen::new(&spec, end);
        let mut rng = Pcg64Mcg::seed_from_u64(42);
        group.bench_with_input(BenchmarkId::new("next", label), &spec, |b, spec| {
            b.iter(|| {
                let mut acc = 0i64;
                for _ in 0..BATCH {
                    match gen.next(&mut rng) {
                        Some(a) => acc = acc.wrapping_add(a.at.as_nanos() ^ a.client as i64),
                        // Not reached in a benchmark's time; restart rather than measure `None`.
                        None => gen = ArrivalGen::new(spec, end),
                    }
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, next_throughput);
criterion_main!(benches);
