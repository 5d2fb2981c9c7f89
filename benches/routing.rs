//! Routing-core throughput: picks per second for each picker on 2, 3 and 8 destinations, and
//! the cost of one rollout `Step`. Run with `cargo bench --bench routing`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use splitlab::routing::pick::{Pick, Picker, PickerKind};
use splitlab::routing::rollout::{ConfigurationRollout, RevisionRollout, Rollout, RolloutParams};

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

/// One reconcile mid-rollout: a 100% configuration target in the middle of a 380 s rollout,
/// stepping (the common case on every enqueueAfter).
fn rollout_step(c: &mut Criterion) {
    let now = 1_000_000_000_000_000_000i64;
    let prev = Rollout {
        configurations: vec![ConfigurationRollout {
            configuration_name: "config".into(),
            tag: String::new(),
            percent: 100,
            revisions: vec![
                RevisionRollout {
                    revision_name: "config-00001".into(),
                    percent: 60,
                },
                RevisionRollout {
                    revision_name: "config-00002".into(),
                    percent: 40,
                },
            ],
            step_params: RolloutParams {
                start_time: now - 100_000_000_000,
                next_step_time: now,
                step_duration: 4_000_000_000,
                step_size: 4,
            },
        }],
    };
    let cur = Rollout {
        configurations: vec![ConfigurationRollout {
            configuration_name: "config".into(),
            tag: String::new(),
            percent: 100,
            revisions: vec![RevisionRollout {
                revision_name: "config-00002".into(),
                percent: 100,
            }],
            step_params: RolloutParams::default(),
        }],
    };
    let mut group = c.benchmark_group("rollout");
    group.throughput(Throughput::Elements(1));
    group.bench_function("step", |b| {
        b.iter(|| black_box(cur.step(Some(black_box(&prev)), black_box(now))))
    });
    group.finish();
}

criterion_group!(benches, pick_throughput, rollout_step);
criterion_main!(benches);
