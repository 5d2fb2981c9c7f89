//! Integration tests of the `splitlab` command line: the exact output forms other tools rely on,
//! exit statuses, and clear errors (never panics) on bad input.

use crate::common::{assert_clear_error, splitlab, temp_dir, text};
use std::process::Output;

/// Asserts no Rust panic reached the user.
fn assert_no_panic(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_ne!(
        out.status.code(),
        Some(101),
        "exit 101 is a panic: {stderr}"
    );
}

#[test]
fn validate_accepts_a_valid_multi_document_file() {
    let out = splitlab(&["validate", "scenarios/knative/helloworld.yaml"]);
    assert_no_panic(&out);
    assert_eq!(text(&out.stdout), "ok: scenarios/knative/helloworld.yaml\n");
    assert!(out.status.success());
}

#[test]
fn validate_accepts_scenarios_and_reports_their_errors() {
    let out = splitlab(&[
        "validate",
        "scenarios/canary-rollout.yaml",
        "scenarios/stacked-rollouts.yaml",
    ]);
    assert_no_panic(&out);
    assert_eq!(
        text(&out.stdout),
        "ok: scenarios/canary-rollout.yaml\nok: scenarios/stacked-rollouts.yaml\n"
    );
    let dir = temp_dir("cli-validate");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad-scenario.yaml");
    std::fs::write(&bad, "name: x\nduration: 10s\nrevisions:\n  - name: a\n    pods: lots\narrivals:\n  poisson: {rate: 5}\n")
        .expect("write");
    let out = splitlab(&["validate", bad.to_str().expect("utf-8")]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad-scenario.yaml:5:11: revisions[0].pods"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_reports_knative_messages_at_their_lines() {
    let out = splitlab(&[
        "validate",
        "tests/fixtures/invalid-traffic.yaml",
        "scenarios/knative/helloworld.yaml",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    // the valid file is still reported as ok
    assert_eq!(text(&out.stdout), "ok: scenarios/knative/helloworld.yaml\n");
    let stderr = text(&out.stderr);
    let f = "tests/fixtures/invalid-traffic.yaml";
    let r = "Route default/do.not.use.dots";
    let dns1035 = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    let expected = [
        format!("{f}:9:7: {r}: Multiple definitions for \"foo\": spec.traffic[0].tag, spec.traffic[1].tag"),
        format!("{f}:9:5: {r}: Traffic targets sum to 90, want 100: spec.traffic"),
        format!("{f}:15:7: {r}: invalid value: not a DNS 1035 label: [{dns1035}]: spec.traffic.tag[2]"),
        format!("{f}:4:9: {r}: not a DNS 1035 label: [{dns1035}]: metadata.name"),
        format!(
            "{f}:6:43: {r}: rollout-duration=211s44ms is not at second precision: metadata.annotations.serving.knative.dev/rollout-duration"
        ),
    ];
    for line in &expected {
        assert!(
            stderr.lines().any(|l| l == line),
            "missing line\n{line}\nin\n{stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), expected.len(), "{stderr}");
}

#[test]
fn validate_rejects_unknown_fields_with_position_and_path() {
    let out = splitlab(&["validate", "tests/fixtures/unknown-field.yaml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "tests/fixtures/unknown-field.yaml:8:7: spec.traffic[0].percnt: unknown field `percnt`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("expected one of"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn validate_bad_inputs_are_errors_not_panics() {
    let dir = temp_dir("cli-bad-inputs");
    std::fs::create_dir_all(&dir).expect("temp dir");
    // (file content, a fragment the error must contain)
    let cases = [
        ("apiVersion: [serving.knative.dev/v1\n", ":1:13:"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            "allowed: \"serving.knative.dev/v1\"",
        ),
        (
            "apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata: {name: x}\n",
            "allowed: \"Service\", \"Route\", \"Revision\"",
        ),
        ("# only a comment\n", "no YAML document"),
        ("\u{0}\u{1}binary", ""),
    ];
    for (i, (content, fragment)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{i}.yaml"));
        std::fs::write(&path, content).expect("write fixture");
        let out = splitlab(&["validate", path.to_str().expect("utf-8 path")]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{content:?}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{content:?}: {}",
            text(&out.stderr)
        );
    }
    let out = splitlab(&["validate", "no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read no/such/file.yaml"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn traffic_prints_the_resulting_block() {
    // 8.4 D11: the remainder goes to the one revision not named (found by its revisionName).
    let out = splitlab(&[
        "traffic",
        "tests/fixtures/two-revisions.yaml",
        "--traffic",
        "echo-00002=30",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "traffic:\n- tag: stable\n  revisionName: echo-00001\n  latestRevision: false\n  percent: 70\n- revisionName: echo-00002\n  latestRevision: false\n  percent: 30\n"
    );
}

#[test]
fn traffic_tag_and_traffic_flags_combine_in_knative_order() {
    // e2e TagCandidate:2:98 on the helloworld service: --tag runs before --traffic, so the new
    // tag can be used as a reference; '%' suffixes are accepted.
    let out = splitlab(&[
        "traffic",
        "scenarios/knative/helloworld.yaml",
        "--untag",
        "current",
        "--tag",
        "helloworld-go-00001=stable",
        "--traffic",
        "stable=2%,@latest=98%",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "traffic:\n- tag: stable\n  revisionName: helloworld-go-00001\n  latestRevision: false\n  percent: 2\n- tag: candidate\n  latestRevision: true\n  percent: 98\n"
    );
}

#[test]
fn traffic_reports_kn_and_server_errors() {
    let f = "tests/fixtures/two-revisions.yaml";
    // (flags, exact stderr)
    let cases: [(&[&str], &str); 4] = [
        // kn's own error (E12)
        (&["--untag", "nope"], "Error: tag(s) nope not present for any revisions of service echo\n"),
        // flag syntax (E1)
        (&["--traffic", "a=b=c"], "Error: expecting the value format in value1=value2, given a=b=c\n"),
        // sum over 100 (E9)
        (&["--traffic", "echo-00001=70,echo-00002=40"], "Error: given traffic percents sum to 110, want <=100\n"),
        // quirk Q1: kn produces [echo-00001#stable 40]; the cluster's webhook rejects it
        (
            &["--traffic", "stable=60"],
            "Error: admission webhook \"validation.webhook.serving.knative.dev\" denied the request: validation failed: Traffic targets sum to 40, want 100: spec.traffic\n",
        ),
    ];
    for (flags, stderr) in cases {
        let mut args = vec!["traffic", f];
        args.extend_from_slice(flags);
        let out = splitlab(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        assert_eq!(text(&out.stderr), stderr, "{flags:?}");
        assert!(out.stdout.is_empty(), "{flags:?}");
    }
}

#[test]
fn rollout_prints_the_knative_schedule() {
    // d.8: 100% over 60 s with a 4 s first step: size 7, 15 steps of 4 s, done at 64 s.
    let out = splitlab(&[
        "rollout",
        "--percent",
        "100",
        "--duration",
        "60s",
        "--ready-after",
        "4s",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "t_s,revision,percent");
    assert_eq!(
        &lines[1..5],
        &["0,old,99", "0,new,1", "8,old,92", "8,new,8"]
    );
    assert_eq!(lines.last().copied(), Some("64,new,100"));
    let times: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(times.len(), 16, "t=0 plus 15 steps: {stdout}");
    // every time's shares sum to the configuration's percent
    for t in &times {
        let sum: i64 = lines[1..]
            .iter()
            .filter(|l| l.split(',').next() == Some(*t))
            .map(|l| {
                l.rsplit(',')
                    .next()
                    .unwrap_or("0")
                    .parse::<i64>()
                    .expect("integer percent")
            })
            .sum();
        assert_eq!(sum, 100, "t={t}");
    }
}

#[test]
fn run_records_the_effective_seed_so_its_scenario_reruns_the_same() {
    // issue 17 §11: a `--seed 2` run saved `seed: 1`, so re-running its scenario.yaml gave
    // another run
    let dir = temp_dir("cli-seed");
    let (first, again) = (dir.join("first"), dir.join("again"));
    let out = splitlab(&[
        "run",
        "scenarios/three-way-split.yaml",
        "--seed",
        "2",
        "--set",
        "duration=5s",
        "--out",
        &first.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let saved = std::fs::read_to_string(first.join("scenario.yaml")).expect("scenario.yaml");
    assert!(saved.contains("#   --set duration=5s\n"), "{saved}");
    assert!(saved.contains("#   --set seed=2\n"), "{saved}");
    assert!(saved.lines().any(|l| l == "seed: 2"), "{saved}");
    let out = splitlab(&[
        "run",
        &first.join("scenario.yaml").display().to_string(),
        "--out",
        &again.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).expect("summary"))
            .expect("json")
    };
    let (a, b) = (summary(&first), summary(&again));
    assert_eq!(a["seed"], 2);
    assert_eq!((&a["seed"], &a["requests"]), (&b["seed"], &b["requests"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rollout_names_are_csv_escaped() {
    // issue 17 §12: `--to a,b` printed four fields and a newline broke rows; names are quoted
    // as CSV quotes them
    let out = splitlab(&[
        "rollout",
        "--percent",
        "100",
        "--duration",
        "2s",
        "--from",
        "x\"y",
        "--to",
        "a,b\nc",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "t_s,revision,percent\n0,\"x\"\"y\",99\n0,\"a,b\nc\",1\n2,\"a,b\nc\",100\n"
    );
    // ... and a CSV reader gets the names back, three fields a row
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let names: Vec<String> = reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            assert_eq!(r.len(), 3, "{r:?}");
            r[1].to_string()
        })
        .collect();
    assert_eq!(names, ["x\"y", "a,b\nc", "a,b\nc"]);
}

#[test]
fn rollout_fractional_step_times_are_printed_to_the_millisecond() {
    // TestObserveReady "step-begin < 1s": ready 1982 ns after the start, 120 s: 99 steps of
    // 1202020202 ns, the first at 1982 ns + 1202020202 ns (Knative computes that sum in f64 at
    // Unix-nanosecond magnitudes, so it may land a few hundred ns off): 1.202 s to the ms.
    let out = splitlab(&[
        "rollout",
        "--percent",
        "100",
        "--duration",
        "120s",
        "--ready-after",
        "1982ns",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().nth(3), Some("1.202,old,98"), "{stdout}");
    for line in stdout.lines().skip(1) {
        let t = line.split(',').next().unwrap_or("");
        let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "{line}");
    }
    // The default --ready-after 1s: 99 steps of 3828282828 ns; the last lands on 380 s (it
    // printed 380.000000024, the f64 sum's noise, before).
    let out = splitlab(&["rollout", "--percent", "100", "--duration", "380s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "t_s,revision,percent",
            "0,old,99",
            "0,new,1",
            "4.828,old,98",
            "4.828,new,2"
        ],
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"380,new,100"), "{stdout}");
}

#[test]
fn rollout_without_duration_switches_at_once() {
    let out = splitlab(&[
        "rollout",
        "--percent",
        "40",
        "--duration",
        "0s",
        "--from",
        "a",
        "--to",
        "b",
    ]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "t_s,revision,percent\n0,b,40\n");
}

#[test]
fn rollout_rejects_bad_flags() {
    // (flags, fragment of the error)
    let cases: [(&[&str], &str); 4] = [
        (
            &["--percent", "101", "--duration", "60s"],
            "allowed: 0 to 100",
        ),
        (&["--percent", "50", "--duration", "60"], "missing unit"),
        (
            &["--percent", "50", "--duration", "-5s"],
            "must not be negative",
        ),
        (
            &[
                "--percent",
                "50",
                "--duration",
                "60s",
                "--ready-after",
                "soon",
            ],
            "invalid duration",
        ),
    ];
    for (flags, fragment) in cases {
        let mut args = vec!["rollout"];
        args.extend_from_slice(flags);
        let out = splitlab(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn accuracy_reports_per_revision_rows() {
    // v1's largest deviation from 1,000 requests on, per picker
    let mut after = std::collections::BTreeMap::new();
    for picker in ["random", "wrr", "hash"] {
        let out = splitlab(&[
            "accuracy",
            "--weights",
            "v1=90,v2=10",
            "--requests",
            "20000",
            "--picker",
            picker,
            "--seed",
            "3",
        ]);
        assert_no_panic(&out);
        assert!(out.status.success(), "{picker}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("picker: {picker}, requests: 20000, seed: 3")
        );
        assert!(lines[1].split_whitespace().eq([
            "revision",
            "configured_pct",
            "count",
            "observed_pct",
            "max_abs_dev_pct",
            "max_dev_from_1000_pct",
            "in_95_band"
        ]));
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0][0], rows[0][1]), ("v1", "90.000"));
        let counts: u64 = rows
            .iter()
            .map(|r| r[2].parse::<u64>().expect("count"))
            .sum();
        assert_eq!(counts, 20000);
        if picker == "wrr" {
            // smooth WRR is exact at every multiple of 10 picks
            assert_eq!((rows[0][2], rows[1][2]), ("18000", "2000"));
            assert!(rows.iter().all(|r| r[6] == "yes"));
        }
        after.insert(
            picker,
            rows[0][5].parse::<f64>().expect("max_dev_from_1000_pct"),
        );
    }
    // Over every prefix the first request dominates; from 1,000 on, smooth WRR stays within
    // one request (0.1 points) while per-request random picks show their binomial noise.
    assert!(after["wrr"] <= 0.1, "{after:?}");
    assert!(after["random"] > 3.0 * after["wrr"], "{after:?}");
}

#[test]
fn accuracy_rejects_bad_weights() {
    // (weights, fragment of the error)
    let cases = [
        ("v1=90,v2=20", "sum to 110, want 100"),
        ("v1=90,v1=10", "given twice"),
        ("v1=ninety,v2=10", "integer from 0 to 100"),
        ("v1", "not NAME=PCT"),
    ];
    for (weights, fragment) in cases {
        let out = splitlab(&["accuracy", "--weights", weights, "--requests", "10"]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{weights}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{weights}: {}",
            text(&out.stderr)
        );
    }
}

/// Runs the binary with its stdout a pipe whose reader is already gone, as in
/// `splitlab run | head -0`: every write to stdout fails with a broken pipe.
fn splitlab_into_closed_pipe(args: &[&str]) -> Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the splitlab binary runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("the splitlab binary ends")
}

#[test]
fn a_closed_stdout_ends_quietly_and_outputs_are_still_written() {
    let out = splitlab_into_closed_pipe(&["rollout", "--percent", "100", "--duration", "60s"]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");

    let dir = crate::common::temp_dir("cli-closed-pipe");
    let out = splitlab_into_closed_pipe(&[
        "run",
        "scenarios/live-smoke.yaml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Printing comes last: every file, charts and report included, is on disk.
    for file in [
        "summary.json",
        "timeseries.csv",
        "routes.csv",
        "report.html",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
}

/// Runs the binary in `dir` (outside the clone: the shipped scenarios must be found anyway).
fn splitlab_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the splitlab binary runs")
}

#[test]
fn shipped_scenarios_run_from_any_directory_as_they_do_in_the_clone() {
    let elsewhere = temp_dir("cli-shipped");
    std::fs::create_dir_all(&elsewhere).expect("temp dir");
    // from-manifest reads scenarios/knative/helloworld.yaml: the embedded copy must resolve it
    let out_shipped = elsewhere.join("out");
    let shipped = splitlab_in(
        &elsewhere,
        &[
            "run",
            "from-manifest",
            "--out",
            out_shipped.to_str().expect("utf-8"),
        ],
    );
    assert!(shipped.status.success(), "{}", text(&shipped.stderr));
    let out_clone = elsewhere.join("clone-out");
    let clone = splitlab(&[
        "run",
        "scenarios/from-manifest.yaml",
        "--out",
        out_clone.to_str().expect("utf-8"),
    ]);
    assert!(clone.status.success(), "{}", text(&clone.stderr));
    let read = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
            .expect("json")
    };
    let (a, b) = (read(&out_shipped), read(&out_clone));
    assert_eq!(a["requests"], b["requests"], "same scenario, same run");
    assert_eq!(a["revisions"], b["revisions"]);
    assert!(a["requests"]["arrived"].as_u64().expect("arrived") > 0);

    // the default scenario too: `splitlab run` with no argument, outside the clone
    let default = splitlab_in(&elsewhere, &["run"]);
    assert!(default.status.success(), "{}", text(&default.stderr));
    assert!(elsewhere.join("out/canary-rollout/summary.json").is_file());

    // a name that is neither a file nor shipped lists what is shipped
    let missing = splitlab_in(&elsewhere, &["run", "nope"]);
    assert_clear_error(
        &missing,
        "cannot read nope: No such file or directory (os error 2); no shipped scenario has that name either (shipped: bench-1m, calibrate-loop, canary-rollout,",
        "unknown scenario",
    );
    let _ = std::fs::remove_dir_all(&elsewhere);
}

#[test]
fn scenarios_lists_each_shipped_scenario_and_shows_one_verbatim() {
    let list = splitlab(&["scenarios"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    let mut names = Vec::new();
    for entry in std::fs::read_dir("scenarios").expect("scenarios folder") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if let Some(stem) = name.strip_suffix(".yaml") {
            names.push(stem.to_string());
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        // each listed at the start of a line with its purpose beside it
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not listed in:\n{listed}"));
        assert!(
            line.len() > name.len() + 10,
            "{name} has no purpose: {line:?}"
        );
    }
    assert!(listed.contains(
        "canary-rollout          a gradual rollout (serving.knative.dev/rollout-duration) of a busy service."
    ), "{listed}");

    let show = splitlab(&["scenarios", "show", "canary-rollout"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    assert_eq!(
        text(&show.stdout),
        std::fs::read_to_string("scenarios/canary-rollout.yaml").expect("file")
    );
    let unknown = splitlab(&["scenarios", "show", "nope"]);
    assert_clear_error(
        &unknown,
        "no shipped scenario is named \"nope\" (shipped: bench-1m,",
        "show nope",
    );
}

#[test]
fn version_names_the_package_version() {
    let out = splitlab(&["--version"]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    assert!(
        version.starts_with(&format!("splitlab {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    // built from a git checkout (a clone, as in CI): the commit is named
    if std::path::Path::new(".git").exists() {
        assert!(version.contains("(commit "), "{version}");
    }
}

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    let help = text(&splitlab(&["--help"]).stdout);
    // the subcommands as --help lists them (two-space indented words under "Commands:")
    let subcommands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .collect();
    assert!(
        subcommands.contains(&"scenarios") && subcommands.len() >= 15,
        "{help}"
    );

    let bash = splitlab(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash.stderr));
    let script = text(&bash.stdout);
    for sub in &subcommands {
        assert!(
            script.contains(&format!("splitlab__subcmd__{sub})")),
            "bash completes {sub}"
        );
    }
    // the script is valid bash
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "{}", text(&check.stderr));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = splitlab(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let bad = splitlab(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2), "clap's usage error");
    assert!(text(&bad.stderr).contains("[possible values: bash, elvish, fish, powershell, zsh]"));

    let man = splitlab(&["man"]);
    assert!(man.status.success(), "{}", text(&man.stderr));
    let page = text(&man.stdout);
    assert!(page.contains("\n.TH splitlab 1 "), "{page}");
    for sub in &subcommands {
        assert!(
            page.contains(&format!(".SH \"SPLITLAB {}\"", sub.to_uppercase())),
            "man has a section for {sub}"
        );
    }
    // a subcommand's flag is documented in its own section
    let run = &page[page.find(".SH \"SPLITLAB RUN\"").expect("run section")..];
    let run = &run[..run[1..].find(".SH \"SPLITLAB").map_or(run.len(), |i| i + 1)];
    assert!(
        run.contains("\\-\\-requests") && run.contains("Also write requests.csv"),
        "{run}"
    );
}

#[test]
fn picker_help_and_errors_list_the_allowed_values() {
    let help = text(&splitlab(&["accuracy", "--help"]).stdout);
    assert!(
        help.contains("[possible values: random, wrr, hash]"),
        "{help}"
    );
    let bad = splitlab(&[
        "accuracy",
        "--weights",
        "a=100",
        "--requests",
        "5",
        "--picker",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("invalid value 'x' for '--picker <PICKER>'")
            && stderr.contains("[possible values: random, wrr, hash]"),
        "{stderr}"
    );
}

/// Issue 17 item 13: each message says a thing once, cuts a long bad value, names what was
/// expected and found, and places bad UTF-8 by line and column. Every message is compared
/// whole.
#[test]
fn error_messages_are_short_exact_and_say_each_thing_once() {
    let dir = temp_dir("cli-readable-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let base = std::fs::read_to_string("scenarios/instant-shift.yaml").unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let huge = "x".repeat(10 * 1024 * 1024);
    let big = write(
        "big.yaml",
        base.replacen("duration: 200s", &format!("duration: {huge}"), 1)
            .into_bytes(),
    );
    let list = write(
        "list.yaml",
        base.replacen("seed: 1", "seed: [1, 2]", 1).into_bytes(),
    );
    let map = write(
        "map.yaml",
        base.replacen("seed: 1", "seed: {a: 1}", 1).into_bytes(),
    );
    let utf8 = write(
        "utf8.yaml",
        base.replacen("name: instant-shift", "name: inst\u{e9}\u{0}", 1)
            .into_bytes()
            .into_iter()
            // é then a byte that is not UTF-8 where the NUL was
            .map(|b| if b == 0 { 0xff } else { b })
            .collect(),
    );
    let a_file = write("a-file", Vec::new());
    let trace = write(
        "trace.yaml",
        base.replacen("  poisson: {rate: 1000}", "  trace: {file: none.csv}", 1)
            .into_bytes(),
    );
    let line_of = |path: &str, needle: &str| {
        std::fs::read(path)
            .unwrap()
            .split(|b| *b == b'\n')
            .position(|l| l.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap()
            + 1
    };
    let (big_line, list_line) = (line_of(&big, "duration:"), line_of(&list, "seed:"));
    // (arguments, the first line of stderr, exactly)
    let cases: Vec<(Vec<String>, String)> = vec![
        // a 10 MB bad value: its first 200 characters and its size
        (
            vec!["run".into(), big.clone()],
            format!(
                "error: {big}:{big_line}:11: duration: time: invalid duration \"{}…\" (10485760 \
                 bytes); allowed: a Go duration such as 100ms, 1.5s or 2m",
                "x".repeat(200)
            ),
        ),
        // a list for an integer
        (
            vec!["run".into(), list.clone()],
            format!(
                "error: {list}:{list_line}:7: seed: expected a single value (a number, a string \
                 or true/false), found a list"
            ),
        ),
        // a map for an integer
        (
            vec!["run".into(), map.clone()],
            format!(
                "error: {map}:{list_line}:7: seed: expected a single value (a number, a string \
                 or true/false), found a map"
            ),
        ),
        // bad UTF-8: line and column (characters) of the first bad byte
        (
            vec!["run".into(), utf8.clone()],
            format!(
                "error: {utf8}:{}:12: invalid UTF-8 (byte 0xff); the file must be UTF-8 text",
                line_of(&utf8, "name:")
            ),
        ),
        // an OS error once, not twice
        (
            vec![
                "run".into(),
                "scenarios/instant-shift.yaml".into(),
                "--out".into(),
                format!("{a_file}/out"),
            ],
            format!(
                "error: --out {a_file}/out: cannot create the directory or write in it: cannot \
                 create output directory {a_file}/out: Not a directory (os error 20)"
            ),
        ),
        // a file the scenario names is missing: its path and "cannot read" once
        (
            vec!["run".into(), trace.clone()],
            format!(
                "error: {trace}:{}:17: arrivals.trace.file: cannot read {}: No such file or \
                 directory (os error 2)",
                line_of(&trace, "trace:"),
                dir.join("none.csv").display()
            ),
        ),
        // a missing file: "cannot read" once
        (
            vec!["run".into(), format!("{a_file}.missing")],
            format!("error: cannot read {a_file}.missing: No such file or directory (os error 2)"),
        ),
        // plot of a missing directory: its cause once
        (
            vec!["plot".into(), format!("{a_file}.missing")],
            format!("error: cannot plot {a_file}.missing: No such file or directory (os error 2)"),
        ),
        // plot of a file
        (
            vec!["plot".into(), a_file.clone()],
            format!(
                "error: cannot plot {a_file}: not a directory (plot reads a directory `splitlab \
                 run` wrote)"
            ),
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = splitlab(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().next().unwrap_or(""), want, "{args:?}");
        assert!(stderr.len() < 4096, "{} bytes of stderr", stderr.len());
    }
}
