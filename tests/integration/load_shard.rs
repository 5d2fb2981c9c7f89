//! `splitlab load --shard I/N --start-at T` in three processes against one loopback backend,
//! merged by `splitlab merge`: the merged counts are the sum of every request and the merged
//! histograms' percentiles are exactly those of one histogram over all requests' latencies
//! (from `--results`, recorded as load records them); the shares of `--max-requests`; the
//! flags a shard refuses.
//! Every server binds 127.0.0.1; every run is bounded in time and count.

use std::process::{Command, Stdio};

use hdrhistogram::Histogram;

use crate::common::{assert_balanced, assert_clear_error, splitlab, temp_dir, text};
use crate::live::{count, one_live_run_at_a_time, start_backend_saying, summary};

/// Unix seconds `ahead_s` from now, as `--start-at` takes them.
fn unix_in(ahead_s: f64) -> String {
    // The one shared instant every shard is given, as an operator computes it.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    format!("{:.3}", now + ahead_s)
}

/// Runs the shards `0..n` of `args` at once (each with `--shard I/N` and its own
/// `--results`), and returns their results files.
fn run_shards(dir: &std::path::Path, n: usize, args: &[&str]) -> Vec<std::path::PathBuf> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let results = dir.join(format!("results-{i}.jsonl"));
            let child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
                .arg("load")
                .args(args)
                .args(["--shard", &format!("{i}/{n}"), "--out"])
                .arg(dir)
                .arg("--results")
                .arg(&results)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("splitlab load starts");
            (child, results)
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(i, (child, results))| {
            let out = child.wait_with_output().expect("the shard ends");
            assert_eq!(
                out.status.code(),
                Some(0),
                "shard {i}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            results
        })
        .collect()
}

/// The `--results` lines of every file.
fn results_lines(files: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("--results is written")
                .lines()
                .map(|l| serde_json::from_str(l).expect("a results line is JSON"))
                .collect::<Vec<serde_json::Value>>()
        })
        .collect()
}

#[test]
fn three_load_shards_merge_into_the_exact_percentiles_of_all_their_requests() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let dir = temp_dir("load-shard");
    std::fs::create_dir_all(&dir).unwrap();
    // Three shards of 240 requests/s for 2 s, started together 1.5 s from now.
    let start = unix_in(1.5);
    let results = run_shards(
        &dir,
        3,
        &[
            "--target",
            &target,
            "--rate",
            "240",
            "--duration",
            "2s",
            "--classify",
            "body:v1=v1",
            "--expect",
            "v1=100",
            "--start-at",
            &start,
        ],
    );
    let lines = results_lines(&results);
    // Each shard sent its third of the rate: 80/s for 2 s.
    for (i, f) in results.iter().enumerate() {
        let n = results_lines(std::slice::from_ref(f)).len();
        assert!(
            (158..=161).contains(&n),
            "shard {i} sent {n}, not about 160"
        );
    }
    // Merged in any order.
    let merged = dir.join("merged");
    let shard = |i: usize| dir.join(format!("shard-{i}.jsonl"));
    let out = splitlab(&[
        "merge",
        shard(2).to_str().unwrap(),
        shard(0).to_str().unwrap(),
        shard(1).to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // Counts: every request of every shard, once.
    let s = summary(&merged);
    assert_balanced(&s);
    let served: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["outcome"] == "served").collect();
    assert_eq!(count(&s, "arrived"), lines.len() as u64, "{s}");
    assert_eq!(count(&s, "served"), served.len() as u64, "{s}");
    let unlabelled: Vec<&&serde_json::Value> =
        served.iter().filter(|l| l["label"] != "v1").collect();
    assert_eq!(
        s["revisions"]["v1"]["routed"],
        served.len() as u64,
        "served without the label v1: {unlabelled:?}\n{s}"
    );
    assert_eq!(s["protocol"], "http/1.1");
    let load_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("load.json")).unwrap()).unwrap();
    assert_eq!(load_json["sent"], lines.len() as u64);
    assert_eq!(load_json["statuses"]["200"], served.len() as u64);
    // One histogram over every served request's latency, recorded as load records it
    // (microseconds; --results gives them in milliseconds with microsecond resolution).
    let mut all = Histogram::<u64>::new(3).unwrap();
    for l in &served {
        let ms = l["latency_ms"].as_f64().expect("latency_ms");
        all.record((ms * 1000.0).round() as u64).unwrap();
    }
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(merged.join("histograms.json")).expect("histograms.json"),
    )
    .unwrap();
    for group in ["all", "v1"] {
        let h = splitlab::report::hdr::from_base64(doc[group]["histogram"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{group}: {e}"));
        assert_eq!(h.len(), all.len(), "{group}: count");
        assert_eq!(doc[group]["count"], all.len(), "{group}");
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                h.value_at_quantile(q),
                all.value_at_quantile(q),
                "{group}: quantile {q}"
            );
        }
        assert_eq!(h.max(), all.max(), "{group}: max");
        assert_eq!(h.min(), all.min(), "{group}: min");
    }
    // latency.hgrm is of the same merged histogram.
    let hgrm = std::fs::read_to_string(merged.join("latency.hgrm")).unwrap();
    assert!(
        hgrm.contains(&format!("Total count    = {:12}", all.len())),
        "{hgrm}"
    );
    // The windows line up: the timeseries holds every routed request in about two 1 s windows.
    let ts = std::fs::read_to_string(merged.join("timeseries.csv")).unwrap();
    let routed: u64 = ts
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(routed, served.len() as u64, "{ts}");
    let windows: std::collections::BTreeSet<&str> = ts
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert!((2..=3).contains(&windows.len()), "{ts}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn max_requests_is_shared_exactly_and_a_shard_refuses_what_it_cannot_do() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let dir = temp_dir("load-shard-max");
    std::fs::create_dir_all(&dir).unwrap();
    // 10 requests over 3 shards: 4, 3, 3, and the merge has all 10.
    let results = run_shards(
        &dir,
        3,
        &["--target", &target, "--rate", "100", "--max-requests", "10"],
    );
    let shares: Vec<usize> = results
        .iter()
        .map(|f| results_lines(std::slice::from_ref(f)).len())
        .collect();
    assert_eq!(shares, [4, 3, 3]);
    let merged = dir.join("merged");
    let mut args = vec!["merge".to_string()];
    for i in 0..3 {
        args.push(dir.join(format!("shard-{i}.jsonl")).display().to_string());
    }
    args.extend(["--out".to_string(), merged.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = splitlab(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(&summary(&merged), "arrived"), 10);
    // `merge --check` judges the merged run as `load --check` judges one: every check printed
    // with its value, exit 99 when one fails; a label the run lacks, or a split the shards had
    // no --expect for, is refused before anything is written.
    let with_checks = |checks: &[&str]| {
        let mut all: Vec<&str> = args.clone();
        for c in checks {
            all.extend(["--check", c]);
        }
        splitlab(&all)
    };
    let out = with_checks(&["error_rate<0.01", "status.5xx==0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("check PASS error_rate<0.01: 0"),
        "{printed}"
    );
    assert!(printed.contains("check PASS status.5xx==0: 0"), "{printed}");
    let out = with_checks(&["error_rate<0.01", "p99_ms<0"]);
    assert_eq!(out.status.code(), Some(99), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("check FAIL p99_ms<0: "));
    assert!(text(&out.stderr).contains("merge: 1 of 2 checks failed"));
    let out = with_checks(&["v9.p99_ms<5"]);
    assert_clear_error(&out, "no label \"v9\" in this run", "a label the run lacks");
    let out = with_checks(&["split"]);
    assert_clear_error(
        &out,
        "--check split: needs the programmed split",
        "no --expect",
    );
    // A missing shard is named.
    let out = splitlab(
        &args[..3]
            .iter()
            .chain(&args[4..])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_clear_error(&out, "shard 2 of 3 missing", "a missing shard");
    // What a shard refuses, before sending anything.
    let base = ["load", "--target", &target, "--rate", "10", "-d", "1s"];
    // (extra flags, part of the error)
    let cases: [(&[&str], &str); 5] = [
        (
            &["--shard", "0/2", "--requests"],
            "--requests: not with --shard",
        ), // ids are per shard
        (
            &["--shard", "0/2", "--check", "p99_ms<5"],
            "--check: not with --shard",
        ), // judged merged
        (&["--start-at", "1000000000"], "in the past"), // a start long gone
        (&["--start-at", "now+48h"], "at most 24 h ahead"), // a start too far ahead
        (&["--shards", "2"], "JOB_COMPLETION_INDEX"),   // outside a Job
    ];
    for (extra, fragment) in cases {
        let mut all: Vec<&str> = base.to_vec();
        all.extend(extra);
        let out_dir = dir.join("refused");
        all.extend(["--out", out_dir.to_str().unwrap()]);
        let out = splitlab(&all);
        assert_clear_error(&out, fragment, &format!("{extra:?}"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// docs/load.md's sharded load, as written (the backend's port in place of 8080).
const DOC_LINES: [&str; 3] = [
    "T=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)",
    "for i in 0 1 2; do splitlab load --target http://127.0.0.1:8080/ --rate 150 -d 2s --shard $i/3 --start-at $T --out out/load-shards & done; wait",
    "splitlab merge out/load-shards/shard-0.jsonl out/load-shards/shard-1.jsonl out/load-shards/shard-2.jsonl --out out/load-merged --check 'error_rate<0.01' --check 'p99_ms<500'",
];

#[test]
fn the_sharded_load_in_the_docs_runs_as_written() {
    let _live = one_live_run_at_a_time();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/load.md")).unwrap();
    for line in DOC_LINES {
        assert!(page.lines().any(|l| l == line), "docs/load.md shows {line}");
    }
    let port = start_backend_saying("Hello v1!\n");
    let dir = temp_dir("load-shard-docs");
    std::fs::create_dir_all(&dir).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_splitlab"))
        .parent()
        .unwrap();
    let script = DOC_LINES
        .join("\n")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let out = Command::new("sh")
        .args(["-c", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .current_dir(&dir)
        .output()
        .expect("sh runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let printed = text(&out.stdout);
    assert!(
        printed.contains("check PASS error_rate<0.01: 0"),
        "{printed}"
    );
    assert!(printed.contains("check PASS p99_ms<500: "), "{printed}");
    // 150 requests/s for 2 s over three shards, every one served and merged.
    let s = summary(&dir.join("out/load-merged"));
    assert_balanced(&s);
    let arrived = count(&s, "arrived");
    assert!((297..=303).contains(&arrived), "{arrived}");
    assert_eq!(count(&s, "served"), arrived);
    std::fs::remove_dir_all(&dir).ok();
}
