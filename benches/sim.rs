//! Simulator throughput: simulated requests per second of wall time for `scenarios/bench-1m.yaml`
//! (the SimPy reference model's scenario: Poisson 10,000 req/s split 90/10 over two revisions of
//! 10 pods, cc 10, exponential 10 ms service), shortened to 10 s of arrivals (about 100,000
//! requests) so the criterion loop stays short. Each iteration is one whole run: the engine
//! (`simulate`) and the report (`into_report`), as `splitlab run` does minus file output.
//! Run with `cargo bench --bench sim`; benches/README.md has the full-length comparison.
//!
//! `plan/flagger-plan` is one cell of `splitlab plan` (issue 13 §2): one run of
//! `scenarios/flagger-plan.yaml` (10 minutes at 200 req/s with Flagger's analysis, about
//! 120,000 requests) with a regressed canary, and the analytic rollback probability of its
//! setting. The speed target (540 such runs in under a minute on 2 cores) needs it under
//! about 200 ms.

//!
//! `scale/` (issue 17 §3): costs that must grow no faster than the work. `scale/pods=N` is
//! `bench-1m` for 2 s with revision 1 at N pods (every pod's readiness re-slices the
//! activator's trackers); `scale/rate=R` is `three-way-split` for 1 s at R req/s with the
//! autoscaler on (the activator's pick among thousands of trackers, most of them full).
//! Time per run should grow about linearly in N and R.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use splitlab::model::time::SimTime;
use splitlab::report::plan::{analytic_rollback_prob, AnalyticTraffic};
use splitlab::scenario::load::load_scenario;
use splitlab::scenario::Scenario;
use splitlab::sim::{simulate, RunOptions};

/// The scenario file, relative to the crate root.
const SCENARIO: &str = "scenarios/bench-1m.yaml";
/// The override that shortens the 100 s scenario for the criterion loop: 10 s ≈ 100,000 requests.
const SHORTEN: (&str, &str) = ("duration", "10s");

/// The scenario of a plan cell.
const PLAN_SCENARIO: &str = "scenarios/flagger-plan.yaml";

/// Loads `SCENARIO` with `sets` as `splitlab run` does: files it refers to resolve relative to it.
fn load(sets: &[(&str, &str)]) -> Scenario {
    load_file(SCENARIO, sets)
}

/// Loads `file` (relative to the crate root) with `sets`.
fn load_file(file: &str, sets: &[(&str, &str)]) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let base: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolve = move |rel: &str| -> Result<String, String> {
        let p = base.join(rel);
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(p, v)| (p.to_string(), v.to_string()))
        .collect();
    load_scenario(file, &text, &sets, &resolve).unwrap_or_else(|e| panic!("{e}"))
}

fn sim_throughput(c: &mut Criterion) {
    let scenario = load(&[SHORTEN]);
    let opts = RunOptions::default();
    // One run outside the loop: the request count for the throughput, and a sanity check that
    // the shortened scenario still runs as the full one does (every request served).
    let report = simulate(&scenario, &opts).into_report(0.0);
    let totals = *report.totals();
    assert!(
        report.accounting_ok(),
        "request accounting does not balance"
    );
    assert_eq!(totals.served, totals.arrived, "{totals:?}");

    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(totals.arrived));
    group.bench_function("bench-1m/duration=10s", |b| {
        b.iter(|| {
            let report = simulate(black_box(&scenario), &opts).into_report(0.0);
            black_box(report.totals().arrived)
        })
    });
    group.finish();
}

fn plan_cell(c: &mut Criterion) {
    let mut scenario = load_file(PLAN_SCENARIO, &[]);
    // The regressed canary: hello-00002 fails 2 % of its requests.
    let canary = scenario
        .revisions
        .iter()
        .position(|r| r.name == "hello-00002")
        .expect("the canary");
    scenario.revisions[canary].failure.error_rate = 0.02;
    let analysis = scenario.analysis.clone().expect("an analysis block");
    let traffic = AnalyticTraffic {
        start: analysis.start,
        created: scenario.revisions[canary]
            .created_at
            .expect("created on the timeline"),
        end: SimTime::ZERO + scenario.duration,
        rate_per_s: 200.0,
    };
    let opts = RunOptions::default();
    let report = simulate(&scenario, &opts).into_report(0.0);
    assert!(
        report.accounting_ok(),
        "request accounting does not balance"
    );
    assert_eq!(
        report.analysis().map(|a| a.phase.as_str()),
        Some("Failed"),
        "the 2 % canary is rolled back"
    );
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(report.totals().arrived));
    group.bench_function("flagger-plan/error_rate=0.02", |b| {
        b.iter(|| {
            let report = simulate(black_box(&scenario), &opts).into_report(0.0);
            let analytic = analytic_rollback_prob(&analysis.settings, &traffic, 0.02);
            black_box((report.analysis().map(|a| a.finished_s), analytic))
        })
    });
    group.finish();
}

fn scale(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let pods = ["1000", "4000"].map(|n| {
        (
            format!("pods={n}"),
            load(&[("duration", "2s"), ("revisions.0.pods", n)]),
        )
    });
    let rates = ["100000", "300000"].map(|r| {
        (
            format!("rate={r}"),
            load_file(
                "scenarios/three-way-split.yaml",
                &[("duration", "1s"), ("arrivals.poisson.rate", r)],
            ),
        )
    });
    let opts = RunOptions::default();
    for (name, scenario) in pods.iter().chain(rates.iter()) {
        let report = simulate(scenario, &opts).into_report(0.0);
        assert!(report.accounting_ok(), "{name}: accounting");
        group.throughput(Throughput::Elements(report.totals().arrived));
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let report = simulate(black_box(scenario), &opts).into_report(0.0);
                black_box(report.totals().arrived)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sim_throughput, plan_cell, scale);
criterion_main!(benches);
