//! Routing-core throughput: picks per second for each picker on 2, 3 and 8 destinations, and
//! the cost of one rollout `Step`. Run with `cargo bench --bench routing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use splitlab::routing::pick::{Pick, Picker, PickerKind};

/// Realistic splits: a canary, a three-way split, and a wide spread.
fn splits() -> Vec<(&'static str, Vec<u32>)> {
    vec![
        ("2", vec![90, 10]),
        ("3", vec![40, 30, 30]),
        ("8", vec![30, 20, 15, 10, 10, 5, 5, 5]),
    ]
}

fn pick_throughput(c: &mut Criterion) {
    const BATCH: u64 = 1024;
    let mut group = c.benchmark_group("pick");
    group.throughput(Throughput::Elements(BATCH));
    for kind in PickerKind::ALL {
        for (label, weights) in splits() {
            let mut picker = Picker::new(kind, &weights).expect("positive weights");
            let mut rng = Pcg64Mcg::seed_from_u64(42);
            let mut key = 0u64;
            group.bench_with_input(BenchmarkId::new(kind.name(), label), &weights, |b, _| {
                b.iter(|| {
                    let mut acc = 0usize;
                    for _ in 0..BATCH {
                        key = key.wrapping_add(1);
                        acc += picker.pick(black_box(key), &mut rng);
                    }
                    black_box(acc)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pick_throughput);
criterion_main!(benches);
