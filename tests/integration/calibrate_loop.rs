//! The calibrate loop with a real Prometheus (issue 14 §3): `splitlab live` on a scenario with a
//! rate step and two revisions exports Knative's metrics; a Prometheus on 127.0.0.1 scrapes them
//! through the live run's file_sd target list; `splitlab calibrate --prometheus` builds a
//! scenario from that Prometheus; `splitlab run` simulates it; and `splitlab diff` finds the
//! live run and the calibrated simulation alike within its noise: the split, every outcome, and
//! each revision's latency percentiles. The request rate is compared before and after the step
//! as Poisson counts. Skipped, saying so, where Prometheus is not installed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{assert_balanced, splitlab, temp_dir, text};
use crate::live::{one_live_run_at_a_time, summary};
use crate::prometheus;

/// Requests that arrived in `[from_s, to_s)` of a run, from its `timeseries.csv` windows
/// (column `routed`, summed over the revisions' rows of each window starting in the range).
fn arrived_between(dir: &Path, from_s: f64, to_s: f64) -> f64 {
    let text = std::fs::read_to_string(dir.join("timeseries.csv")).expect("timeseries.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("timeseries.csv has no {name}: {header:?}"))
    };
    let (t, routed) = (col("t_s"), col("routed"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| {
            let t: f64 = r[t].parse().expect("t_s");
            t >= from_s && t < to_s
        })
        .map(|r| r[routed].parse::<f64>().expect("routed"))
        .sum()
}

#[test]
#[ignore = "timing-sensitive against the wall clock: .ci/run runs the ignored tests alone, after the suite"]
fn live_metrics_scraped_by_prometheus_calibrate_a_scenario_that_matches_the_live_run() {
    let dir = temp_dir("calibrate-loop");
    std::fs::create_dir_all(&dir).expect("create the test directory");
    let sd = dir.join("targets.json");
    // The list must exist before Prometheus reads it; the live run rewrites it.
    std::fs::write(&sd, "[]").expect("write the empty target list");
    let Some(prom) = prometheus::start(&dir, &sd, "1s") else {
        return;
    };
    let _turn = one_live_run_at_a_time();
    let live_out = dir.join("live");
    // Prometheus stores wall-clock times: the run's range is read off the wall clock.
    #[allow(clippy::disallowed_methods)]
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let live = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args([
            "live",
            "scenarios/calibrate-loop.yaml",
            "--prometheus-sd",
            sd.to_str().expect("utf-8"),
            "--metrics-linger",
            "3s",
            "--out",
            live_out.to_str().expect("utf-8"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("splitlab live runs");
    assert!(live.status.success(), "{}", text(&live.stderr));
    let live_summary = summary(&live_out);
    assert_balanced(&live_summary);
    // Prometheus has scraped the final values during the linger; give its last rate window
    // a moment to be queryable.
    std::thread::sleep(Duration::from_secs(1));

    // Calibrate from the Prometheus, over the run's 40 s.
    let calibrated = dir.join("calibrated.yaml");
    let dump = dir.join("dump");
    let (from, to) = (t0.to_string(), (t0 + 40).to_string());
    let out = splitlab(&[
        "calibrate",
        "--prometheus",
        &prom.url,
        "--service",
        "hello",
        "--from",
        &from,
        "--to",
        &to,
        "--step",
        "1s",
        "--out",
        calibrated.to_str().expect("utf-8"),
        "--save-dump",
        dump.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let said = text(&out.stdout);
    assert!(said.contains("names: Knative v1.18"), "{said}");

    // Simulate it, and compare with the live run.
    let sim_out = dir.join("sim");
    let out = splitlab(&[
        "run",
        calibrated.to_str().expect("utf-8"),
        "--out",
        sim_out.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_loop_agrees(&live_out, &sim_out);

    // SPLITLAB_BLESS=1 keeps this run as the offline fixture: the saved answers, the range,
    // and the live run's summary and time series to compare against.
    if std::env::var_os("SPLITLAB_BLESS").is_some() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
        let _ = std::fs::remove_dir_all(&fixture);
        std::fs::create_dir_all(fixture.join("live")).expect("create the fixture");
        for entry in std::fs::read_dir(&dump).expect("the saved dump") {
            let path = entry.expect("a dump entry").path();
            std::fs::copy(&path, fixture.join(path.file_name().expect("a name"))).expect("copy");
        }
        for file in ["summary.json", "timeseries.csv"] {
            std::fs::copy(live_out.join(file), fixture.join("live").join(file)).expect("copy");
        }
        std::fs::write(fixture.join("range"), format!("{from} {to}\n")).expect("write range");
    }
}

/// The loop's saved answers (`calibrate --save-dump`), its range (`range`: from and to, unix
/// seconds) and its live run (`live/summary.json`, `live/timeseries.csv`).
const FIXTURE: &str = "tests/fixtures/prometheus-dump/loop";

/// The calibrated simulation and the live run agree, checked as the loop test does: diff
/// --check, the latency rows, and the rates before and after the step.
fn assert_loop_agrees(live_out: &Path, sim_out: &Path) {
    let out = splitlab(&[
        "diff",
        live_out.to_str().expect("utf-8"),
        sim_out.to_str().expect("utf-8"),
        "--check",
    ]);
    let table = text(&out.stdout);
    println!("{table}");
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    // --check gates shares and outcomes; the latency rows must be within noise too.
    for revision in ["hello-00001", "hello-00002"] {
        for stat in ["p50", "p90", "p99"] {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("latency {revision} {stat} ")))
                .unwrap_or_else(|| panic!("no latency {revision} {stat} row:\n{table}"));
            assert!(row.ends_with(" ok"), "{row}\n{table}");
        }
    }
    assert_rates_agree(live_out, sim_out);
}

/// The same loop offline, from the fixture a blessed run of the test above saved: `calibrate
/// --prometheus-dump` gives a scenario whose simulation agrees with the live run behind it.
#[test]
fn the_loops_saved_dump_calibrates_offline_to_the_same_agreement() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join(FIXTURE);
    let range = std::fs::read_to_string(fixture.join("range")).expect("the fixture's range");
    let (from, to) = range.trim().split_once(' ').expect("range: FROM TO");
    let dir = temp_dir("calibrate-loop-offline");
    let calibrated = dir.join("calibrated.yaml");
    let out = splitlab(&[
        "calibrate",
        "--prometheus-dump",
        fixture.to_str().expect("utf-8"),
        "--service",
        "hello",
        "--from",
        from,
        "--to",
        to,
        "--step",
        "1s",
        "--out",
        calibrated.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sim_out = dir.join("sim");
    let out = splitlab(&[
        "run",
        calibrated.to_str().expect("utf-8"),
        "--out",
        sim_out.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_loop_agrees(&fixture.join("live"), &sim_out);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The request rate of two runs agrees before and after the loop scenario's step.
fn assert_rates_agree(live_out: &Path, sim_out: &Path) {
    // The rate, before and after the step (20 s), within Poisson noise at z = 3.29. Prometheus
    // sees a counter from its first scrape of a series that exists from its first request, and
    // rate() needs two samples in its 4 s window: the run's first seconds are invisible to it
    // (as on any cluster), so the rate before the step is compared from 8 s; the step itself
    // is smeared over the rate window, so the rate after it is compared from 24 s.
    for (from_s, to_s) in [(8.0, 20.0), (24.0, 40.0)] {
        let (a, b) = (
            arrived_between(live_out, from_s, to_s),
            arrived_between(sim_out, from_s, to_s),
        );
        let noise = 3.29 * (a + b).sqrt();
        assert!(
            (a - b).abs() <= noise,
            "arrivals in [{from_s}, {to_s}) s: live {a}, calibrated {b}, noise ±{noise:.1}"
        );
    }
}
