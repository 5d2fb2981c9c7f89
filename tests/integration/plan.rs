//! Integration tests of `splitlab plan`: README's command on the bad-canary scenario (a
//! recommendation, and the analytic detection probability inside the simulated one's 95%
//! interval), byte-identical outputs for any `--jobs`, and clear errors on bad input.

use crate::common::{assert_clear_error, splitlab, temp_dir, text};
use std::path::Path;

const PLAN_HEADER: &str = "setting,regression,seeds,detect_prob,detect_ci95_low,detect_ci95_high,\
false_rollback_prob,median_detect_s,median_promote_s,requests_hurt_mean,analytic_detect_prob";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// plan.csv's rows as column name -> value maps.
fn rows(csv: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|l| {
            // Labels hold no comma in these tests (one --grid path each).
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &std::collections::BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?} in {row:?}", row[col]))
}

/// docs/plan.md's "Canary analysis: how much traffic a step needs": its plan command, run as written
/// (with `--out`), recommends the setting README names, and for every row the analytic
/// detection probability lies inside the simulated one's 95% interval.
#[test]
fn readme_plan_command_recommends_a_setting_and_agrees_with_the_analytic_probability() {
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.md"));
    let commands: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- plan "))
        .collect();
    assert_eq!(commands.len(), 1, "one plan command in docs/plan.md");
    let out = temp_dir("plan-readme");
    let mut args: Vec<&str> = commands[0].split_whitespace().skip(4).collect();
    let out_arg = out.to_str().expect("utf-8 path");
    args.extend(["--out", out_arg]);
    let o = splitlab(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);

    let csv = read(&out.join("plan.csv"));
    assert_eq!(csv.lines().next(), Some(PLAN_HEADER));
    let rows = rows(&csv);
    assert_eq!(rows.len(), 2, "{csv}");
    for r in &rows {
        let (lo, hi) = (num(r, "detect_ci95_low"), num(r, "detect_ci95_high"));
        let (sim, analytic) = (num(r, "detect_prob"), num(r, "analytic_detect_prob"));
        assert!(lo <= sim && sim <= hi, "{r:?}");
        assert!(
            lo <= analytic && analytic <= hi,
            "analytic {analytic} outside the simulated [{lo}, {hi}]: {r:?}"
        );
        assert_eq!(r["seeds"], "20");
        // A healthy canary at 100 req/s is never rolled back, and it is promoted.
        assert_eq!(num(r, "false_rollback_prob"), 0.0, "{r:?}");
        assert!(num(r, "median_promote_s") > 0.0, "{r:?}");
    }
    // The figures README quotes.
    for (i, detect, lo, hi, analytic, promote) in [
        (0, "1.000", "0.839", "1.000", "0.981", "190.000"),
        (1, "0.800", "0.584", "0.919", "0.830", "100.000"),
    ] {
        let r = &rows[i];
        assert_eq!(
            (
                r["detect_prob"].as_str(),
                r["detect_ci95_low"].as_str(),
                r["detect_ci95_high"].as_str(),
                r["analytic_detect_prob"].as_str(),
                r["median_promote_s"].as_str()
            ),
            (detect, lo, hi, analytic, promote),
            "{r:?}"
        );
    }
    for quoted in [
        "(analytic 0.981)",
        "16 of 20",
        "interval 0.584-0.919, analytic 0.830",
        "promoted 190 s or 100 s",
    ] {
        assert!(readme.contains(quoted), "docs/plan.md quotes {quoted:?}");
    }
    // The settings tell apart: a bigger step promotes faster and detects less.
    assert!(num(&rows[1], "median_promote_s") < num(&rows[0], "median_promote_s"));
    assert!(num(&rows[1], "analytic_detect_prob") < num(&rows[0], "analytic_detect_prob"));

    let recommended = stdout
        .lines()
        .find_map(|l| l.strip_prefix("recommended: "))
        .unwrap_or_else(|| panic!("no recommendation in {stdout}"));
    let setting = recommended.split(' ').next().expect("a setting");
    assert!(
        readme.contains(&format!("recommends `{setting}`")),
        "docs/plan.md names the recommendation {setting}"
    );
    let chosen = rows
        .iter()
        .find(|r| r["setting"] == setting)
        .expect("the recommended row");
    assert!(num(chosen, "detect_prob") >= 0.9, "{chosen:?}");

    crate::charts::assert_png_sized(&out.join("plan.png"), (1200, 800));
    crate::charts::assert_svg(&out.join("plan.svg"));
    let html = read(&out.join("report.html"));
    assert!(html.contains("plan.csv: per setting and regression"));
    assert!(html.contains("<svg"));
}

/// A short plan: the bad canary's own failure (no --regression), two step weights, 3 seeds,
/// cut to 150 s.
fn short_plan(out: &Path, jobs: &str) -> std::process::Output {
    splitlab(&[
        "plan",
        "scenarios/flagger-bad-canary.yaml",
        "--grid",
        "duration=150s",
        "--grid",
        "analysis.canary.stepWeight=10,25",
        "--seeds",
        "3",
        "--jobs",
        jobs,
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
}

#[test]
fn plan_is_the_same_for_any_jobs() {
    let (one, two) = (temp_dir("plan-j1"), temp_dir("plan-j2"));
    let o1 = short_plan(&one, "1");
    assert!(o1.status.success(), "{}", text(&o1.stderr));
    let o2 = short_plan(&two, "2");
    assert!(o2.status.success(), "{}", text(&o2.stderr));
    // stderr is not a terminal: no progress bar
    assert_eq!(text(&o1.stderr), "");
    let findings = |o: &std::process::Output| {
        text(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with("outputs: "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(findings(&o1), findings(&o2));
    for file in ["plan.csv", "plan.svg", "report.html"] {
        assert_eq!(
            read(&one.join(file)),
            read(&two.join(file)),
            "{file} differs between --jobs 1 and 2"
        );
    }
    let csv = read(&one.join("plan.csv"));
    let rows = rows(&csv);
    // Without --regression the regression is the scenario canary's own failure.
    let labels: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["setting"].as_str(), r["regression"].as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("analysis.canary.stepWeight=10", "error_rate=0.05"),
            ("analysis.canary.stepWeight=25", "error_rate=0.05")
        ]
    );
    // 150 s: the 5 % canary is not rolled back yet (its third failed check is at 150 s), so
    // nothing is recommended; the healthy canary is promoted at 120 s with steps of 25 (two
    // checks), not yet with steps of 10.
    for r in &rows {
        assert_eq!(r["detect_prob"], "0.000", "{r:?}");
        assert_eq!(r["median_detect_s"], "", "{r:?}");
        assert!(num(r, "requests_hurt_mean") > 0.0, "{r:?}");
    }
    assert_eq!(rows[0]["median_promote_s"], "");
    assert_eq!(rows[1]["median_promote_s"], "100.000");
    assert!(text(&o1.stdout).contains("no setting detects every regression"));
}

#[test]
fn bad_plan_input_is_a_clear_error() {
    let out = temp_dir("plan-bad");
    let out = out.to_str().expect("utf-8 path");
    let bad = "scenarios/flagger-bad-canary.yaml";
    // (arguments after `plan`, fragment of the message)
    let cases: [(&[&str], &str); 9] = [
        // an unknown regression kind names the value and what is allowed
        (
            &[bad, "--regression", "crash=1"],
            "invalid --regression \"crash=1\": allowed: error_rate=F",
        ),
        // an error rate out of range
        (
            &[bad, "--regression", "error_rate=2"],
            "allowed: 0 < F <= 1",
        ),
        // a latency without its x
        (
            &[bad, "--regression", "latency=2"],
            "allowed: Mx with M > 0",
        ),
        // a grid argument without =
        (
            &[bad, "--grid", "stepWeight"],
            "invalid --grid \"stepWeight\"",
        ),
        // a grid path the scenario does not have
        (
            &[bad, "--grid", "analysis.canary.stepWieght=5,10"],
            "stepWieght",
        ),
        // a probability out of range
        (&[bad, "--power", "1.5"], "--power 1.5 is not allowed"),
        // no analysis to plan
        (
            &[
                "scenarios/canary-rollout.yaml",
                "--regression",
                "error_rate=0.02",
            ],
            "has no analysis: block",
        ),
        // a healthy canary and no --regression
        (
            &["scenarios/flagger-canary.yaml"],
            "no --regression given and the canary hello-00002 is healthy",
        ),
        // no seeds
        (&[bad, "--seeds", "0"], "--seeds must be at least 1"),
    ];
    for (args, fragment) in cases {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        all.extend(["--out", out]);
        let o = splitlab(&all);
        assert_clear_error(&o, fragment, &args.join(" "));
        assert!(!Path::new(out).join("plan.csv").exists(), "{args:?}");
    }
}
