//! Integration tests of `splitlab compare`: the files' exact headers and shapes, byte-identical
//! output for any number of jobs, exact zeros for the baseline against itself, and clear
//! errors (exit 1, no panic) on bad input.

use crate::common::{assert_clear_error, splitlab, temp_dir, text};
use std::path::{Path, PathBuf};
use std::process::Output;

const COMPARE_HEADER: &str = "setting,seeds,metric,mean,ci95_low,ci95_high,min,max";
const PAIRED_HEADER: &str = "setting,baseline,metric,mean_diff,ci95_low,ci95_high";
const METRICS: usize = 11;

/// A short comparison: 60 s of canary-rollout, rollout-duration 10s (finishes in the run) as the
/// baseline against 0s (no gradual rollout), 3 seeds.
fn short_compare(out: &Path, jobs: &str) -> Output {
    splitlab(&[
        "compare",
        "scenarios/canary-rollout.yaml",
        "--set",
        "duration=60s",
        "--set",
        "service.rollout_duration=10s,0s",
        "--seeds",
        "3",
        "--jobs",
        jobs,
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn compare_is_the_same_for_any_jobs_and_the_baseline_differs_by_zero() {
    let one = temp_dir("compare-j1");
    let two = temp_dir("compare-j2");
    let out1 = short_compare(&one, "1");
    assert!(out1.status.success(), "{}", text(&out1.stderr));
    let out2 = short_compare(&two, "2");
    assert!(out2.status.success(), "{}", text(&out2.stderr));
    // stderr is not a terminal here: the progress bar stays silent
    assert_eq!(text(&out1.stderr), "");

    for file in ["compare.csv", "paired.csv", "compare.svg"] {
        assert_eq!(
            read(one.join(file)),
            read(two.join(file)),
            "{file} differs between --jobs 1 and --jobs 2"
        );
    }
    let png = |dir: &Path| std::fs::read(dir.join("compare.png")).expect("compare.png");
    assert!(png(&one) == png(&two), "compare.png differs between --jobs");
    crate::charts::assert_png_sized(&one.join("compare.png"), (1200, 1300));
    crate::charts::assert_svg(&one.join("compare.svg"));
    let svg = read(one.join("compare.svg"));
    assert!(
        svg.contains("compare — canary-rollout"),
        "title names the scenario"
    );
    // panel titles say what each metric is, with its unit
    for title in [
        "peak activator queue (requests)",
        "peak queue-proxy queue (requests)",
        "worst p99 during the shift (ms)",
        "most pods desired (pods)",
        "504 expired (requests)",
        "503 rejected by queue-proxies (requests)",
    ] {
        assert!(svg.contains(title), "a panel for {title}");
    }
    // no 503 or 504 in any seed of this scenario: those panels say so
    assert!(svg.contains("all zero"), "an all-zero panel is said");
    let compare_csv = read(one.join("compare.csv"));
    let p99_mean = compare_csv
        .lines()
        .find(|l| l.starts_with("service.rollout_duration=10s,3,p99_ms,"))
        .and_then(|l| l.split(',').nth(3))
        .expect("p99_ms mean");
    crate::charts::assert_report_html(&one.join("report.html"), 1, "canary-rollout", &[]);
    let html = read(one.join("report.html"));
    assert!(
        html.contains(&format!(">{p99_mean} [")),
        "compare.csv's numbers"
    );
    assert!(
        html.contains("paired.csv: mean difference"),
        "the paired table"
    );
    // the tables' headers say what their cells are, by the settings' values
    assert!(
        html.contains("<th>0s: mean [95% CI]</th>"),
        "compare.csv's header"
    );
    assert!(html.contains("<th>0s − 10s</th>"), "paired.csv's header");
    // the findings: one per metric, not one per setting and metric
    assert!(
        html.contains("<li>Differences against 10s (service.rollout_duration), per metric:"),
        "the findings' lead"
    );
    assert_eq!(
        html.matches("<li>peak_activator_queue: 0s ").count(),
        1,
        "one finding for peak_activator_queue"
    );
    assert!(
        html.contains(">0.000 [0.000, 0.000]<"),
        "the baseline against itself"
    );
    assert_eq!(read(one.join("report.html")), read(two.join("report.html")));
    // the tick labels are the values, the axis names the path
    assert!(
        svg.contains("\n10s\n</text>") && svg.contains("\n0s\n</text>"),
        "setting tick labels"
    );
    assert_eq!(
        text(&out1.stdout).replace(one.to_str().expect("utf-8"), "DIR"),
        text(&out2.stdout).replace(two.to_str().expect("utf-8"), "DIR"),
        "the printed sentences do not depend on --jobs"
    );

    let compare = read(one.join("compare.csv"));
    let lines: Vec<&str> = compare.lines().collect();
    assert_eq!(lines[0], COMPARE_HEADER);
    assert_eq!(
        lines.len(),
        1 + 2 * METRICS,
        "2 settings × {METRICS} metrics"
    );
    let metrics: Vec<&str> = lines[1..=METRICS]
        .iter()
        .map(|l| l.split(',').nth(2).expect("metric column"))
        .collect();
    assert_eq!(
        metrics,
        [
            "rejected_qp",
            "expired",
            "p99_ms",
            "p99_shift_ms",
            "peak_qp_queue",
            "peak_activator_queue",
            "max_desired_pods",
            "rollout_finished_s",
            "pod_seconds",
            "peak_total_pods",
            "ingress_overflow"
        ]
    );
    for line in &lines[1..=METRICS] {
        assert!(
            line.starts_with("service.rollout_duration=10s,3,"),
            "the baseline has every metric for every seed: {line}"
        );
    }
    // rollout-duration 0s records no gradual rollout: rollout_finished_s is undefined
    assert_eq!(
        lines[2 * METRICS - 3],
        "service.rollout_duration=0s,0,rollout_finished_s,,,,,"
    );
    // The cost of a rollout: both revisions' pods at once, over a quota.
    for line in &lines[2 * METRICS - 2..2 * METRICS] {
        assert!(
            line.starts_with("service.rollout_duration=0s,3,"),
            "cost is defined for every run: {line}"
        );
    }
    // the ideal gateway has no breaker
    assert_eq!(
        lines[2 * METRICS],
        "service.rollout_duration=0s,3,ingress_overflow,0.000,0.000,0.000,0.000,0.000"
    );

    let paired = read(one.join("paired.csv"));
    let lines: Vec<&str> = paired.lines().collect();
    assert_eq!(lines[0], PAIRED_HEADER);
    assert_eq!(lines.len(), 1 + 2 * METRICS);
    for line in &lines[1..=METRICS] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(
            (fields[0], fields[1], &fields[3..]),
            (
                "service.rollout_duration=10s",
                "service.rollout_duration=10s",
                &["0.000", "0.000", "0.000"][..]
            ),
            "{line}"
        );
    }
    let stdout = text(&out1.stdout);
    assert!(
        stdout.contains(
            "service.rollout_duration=0s vs service.rollout_duration=10s: peak_activator_queue "
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&one);
    let _ = std::fs::remove_dir_all(&two);
}

#[test]
fn compare_refuses_bad_input_clearly() {
    let out = temp_dir("compare-bad");
    let out = out.to_str().expect("utf-8 path");
    let scenario = "scenarios/canary-rollout.yaml";
    // (arguments after the scenario, a piece of the message)
    let cases: [(&[&str], &str); 6] = [
        (
            &["--set", "service.rollout_duration"],
            "invalid --set \"service.rollout_duration\"",
        ),
        (&["--set", "service.rollout_duration=0s,,1s"], "empty value"),
        (
            &["--set", "service.rollout_duration=0s,soon"],
            "setting service.rollout_duration=soon",
        ),
        (&["--set", "a=1", "--set", "a=2"], "--set a is given twice"),
        (&["--seeds", "0"], "--seeds must be at least 1"),
        (&["--jobs", "0"], "--jobs must be at least 1"),
    ];
    for (args, message) in cases {
        let mut all = vec!["compare", scenario, "--out", out];
        all.extend_from_slice(args);
        assert_clear_error(&splitlab(&all), message, &format!("{args:?}"));
    }
    assert!(!Path::new(out).exists(), "nothing is written on bad input");
}

/// docs/studies.md's commands of "The rollout-duration study per profile", each run as written but with
/// one seed and 120 s (the instant shift happens at 60 s): under Kourier and Contour the instant
/// shift's activator backlog overflows the gateway's breaker, under Istio and the ideal gateway
/// not, and a 380 s rollout never does; more Kourier replicas overflow less.
#[test]
fn readme_ingress_profile_study_runs() {
    let readme = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/studies.md"));
    let commands: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- compare") && l.contains("ingress."))
        .collect();
    assert_eq!(
        commands.len(),
        2,
        "the two per-profile commands in docs/studies.md"
    );
    for (k, command) in commands.into_iter().enumerate() {
        let mut args: Vec<String> = command
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .map(str::to_string)
            .collect();
        let seeds = args.iter().position(|a| a == "--seeds").expect("--seeds");
        args[seeds + 1] = "1".to_string();
        let out = temp_dir(&format!("compare-readme-profiles-{k}"));
        args.extend(["--set", "duration=120s", "--out"].map(str::to_string));
        args.push(out.to_str().expect("utf-8 path").to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = splitlab(&refs);
        assert!(run.status.success(), "{command}: {}", text(&run.stderr));
        let csv = read(out.join("compare.csv"));
        let overflow = |setting: &str| -> f64 {
            csv.lines()
                .find(|l| l.starts_with(&format!("{setting},1,ingress_overflow,")))
                .and_then(|l| l.split(',').nth(3))
                .unwrap_or_else(|| panic!("{setting} in {csv}"))
                .parse()
                .expect("a number")
        };
        let profile = |p: &str, rd: &str| {
            overflow(&format!(
                "ingress.profile={p};service.rollout_duration={rd}"
            ))
        };
        if command.contains("ingress.replicas=") {
            let replicas = |n: u32| overflow(&format!("ingress.replicas={n}"));
            assert!(
                replicas(1) > replicas(4) && replicas(4) > replicas(8),
                "{csv}"
            );
        } else {
            for p in ["kourier", "contour"] {
                assert!(profile(p, "0s") > 1000.0, "{p}: {csv}");
            }
            for p in ["istio", "ideal"] {
                assert_eq!(profile(p, "0s"), 0.0, "{p}");
            }
            for p in ["kourier", "istio", "contour", "ideal"] {
                assert_eq!(profile(p, "380s"), 0.0, "{p}");
            }
        }
        let _ = std::fs::remove_dir_all(out);
    }
}

/// `compare --slo`: each setting's absolute values are printed, then which settings pass every
/// SLO in every seed; an undefined metric fails its SLO and is named as undefined; report.html
/// has the SLO table; compare.csv keeps its layout.
#[test]
fn compare_marks_which_settings_pass_the_slos() {
    let out = temp_dir("compare-slo");
    let run = splitlab(&[
        "compare",
        "scenarios/canary-rollout.yaml",
        "--set",
        "duration=60s",
        "--set",
        "service.rollout_duration=10s,0s",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--slo",
        "requests.rejected_qp==0",
        "--slo",
        "rollout_finished_s<100",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    // absolute values first, one line per setting; 0s has no rollout_finished_s
    assert!(
        lines[0].starts_with(
            "service.rollout_duration=10s: mean over 2 seeds: rejected_qp 0, expired 0, p99_ms "
        ),
        "{stdout}"
    );
    assert!(lines[0].contains(", rollout_finished_s "), "{stdout}");
    assert!(
        lines[1].starts_with("service.rollout_duration=0s: mean over 2 seeds: rejected_qp 0, "),
        "{stdout}"
    );
    assert!(!lines[1].contains("rollout_finished_s"), "{stdout}");
    for want in [
        "SLOs: service.rollout_duration=10s passes: all SLOs held in 2/2 seeds (pass rate ≥ 0.22 at 95%)",
        "SLOs: service.rollout_duration=0s fails: all SLOs held in 0/2 seeds (rollout_finished_s undefined in 2/2)",
    ] {
        assert!(lines.contains(&want), "{want:?} in {stdout}");
    }
    let html = read(out.join("report.html"));
    assert!(html.contains("SLOs: which settings pass (every SLO in every seed)"));
    assert!(
        html.contains("<th>rollout_finished_s&lt;100 failed in</th>"),
        "{html}"
    );
    assert!(html.contains("<td>service.rollout_duration=0s</td><td>no</td><td>0/2</td>"));
    let compare = read(out.join("compare.csv"));
    assert_eq!(compare.lines().next(), Some(COMPARE_HEADER));
    assert_eq!(compare.lines().count(), 1 + 2 * METRICS);
    assert_eq!(
        read(out.join("paired.csv")).lines().next(),
        Some(PAIRED_HEADER)
    );
    // a bad --slo is refused before any run
    let bad = temp_dir("compare-slo-bad");
    assert_clear_error(
        &splitlab(&[
            "compare",
            "scenarios/canary-rollout.yaml",
            "--slo",
            "p99<1",
            "--out",
            bad.to_str().expect("utf-8 path"),
        ]),
        "unknown metric \"p99\"",
        "--slo p99<1",
    );
    assert!(!bad.exists());
    let _ = std::fs::remove_dir_all(&out);
}
