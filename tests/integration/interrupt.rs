//! SIGINT and SIGTERM (sent with the `kill` command to the child process) and the request log
//! spool: an interrupted `run` or `compare` leaves the output directory as it was, with no temp
//! file anywhere, and exits 130/143; an interrupted `load` keeps what it measured and exits
//! 143; the request log is spooled beside the outputs, never in the temp directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{temp_dir, text};
use crate::live::{one_live_run_at_a_time, start_backend_saying};

/// Starts `splitlab ARGS` with `TMPDIR` set to `tmp`.
fn spawn(args: &[&str], tmp: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .env("TMPDIR", tmp)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("splitlab starts")
}

/// Polls `ready` every 10 ms for up to 60 s.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Sends `signal` (`INT`, `TERM`) with the `kill` command and returns the exit code and stderr.
fn interrupt(child: Child, signal: &str) -> (Option<i32>, String) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let out = child.wait_with_output().expect("the child exits");
    (out.status.code(), text(&out.stderr))
}

/// Every entry of `dir`, hidden ones included, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The staging directory of a running command in `out`, once it holds a request log spool.
fn spool_started(out: &Path) -> bool {
    entries(out)
        .iter()
        .filter(|n| n.starts_with(".staging-"))
        .any(|n| {
            entries(&out.join(n))
                .iter()
                .any(|f| f.starts_with(".requests."))
        })
}

/// An earlier run's outputs: marker files that must survive an interrupted run byte for byte.
const OLD_FILES: [&str; 4] = ["report.html", "requests.csv", "split.svg", "summary.json"];

fn write_old_run(out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for name in OLD_FILES {
        std::fs::write(out.join(name), format!("old {name}")).unwrap();
    }
}

fn assert_old_run_intact(out: &Path, context: &str) {
    assert_eq!(
        entries(out),
        OLD_FILES,
        "{context}: no new file, no leftover"
    );
    for name in OLD_FILES {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap(),
            format!("old {name}"),
            "{context}: {name}"
        );
    }
}

#[test]
fn an_interrupted_run_leaves_the_earlier_outputs_as_they_were_and_no_spool() {
    // (signal, exit status: 128 + its number)
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let dir = temp_dir(&format!("interrupt-run-{signal}"));
        let (out, tmp) = (dir.join("out"), dir.join("tmp"));
        write_old_run(&out);
        std::fs::create_dir_all(&tmp).unwrap();
        // About a minute of simulation: the signal comes long before its end.
        let child = spawn(
            &[
                "run",
                "scenarios/canary-rollout.yaml",
                "--set",
                "duration=8000s",
                "--requests",
                "--out",
                out.to_str().unwrap(),
            ],
            &tmp,
        );
        wait_until("the request log spool", || spool_started(&out));
        let (status, stderr) = interrupt(child, signal);
        assert_eq!(status, Some(code), "SIG{signal}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "interrupted by SIG{signal}: outputs not written (the output directory keeps its \
                 earlier files)"
            )
        );
        assert_old_run_intact(&out, &format!("run, SIG{signal}"));
        assert_eq!(entries(&tmp), Vec::<String>::new(), "nothing in TMPDIR");
    }
}

#[test]
fn an_interrupted_compare_writes_nothing_and_exits_143() {
    let dir = temp_dir("interrupt-compare");
    let (out, tmp) = (dir.join("out"), dir.join("tmp"));
    write_old_run(&out);
    std::fs::create_dir_all(&tmp).unwrap();
    let child = spawn(
        &[
            "compare",
            "scenarios/canary-rollout.yaml",
            "--set",
            "service.rollout_duration=60s,120s",
            "--seeds",
            "500",
            "--jobs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &tmp,
    );
    // The runs take minutes; a second in, the signal is sure to come before any output.
    std::thread::sleep(Duration::from_secs(1));
    let (status, stderr) = interrupt(child, "TERM");
    assert_eq!(status, Some(143), "{stderr}");
    assert!(stderr.ends_with("interrupted by SIGTERM\n"), "{stderr}");
    assert_old_run_intact(&out, "compare");
    assert_eq!(entries(&tmp), Vec::<String>::new(), "nothing in TMPDIR");
}

#[test]
fn the_request_log_is_spooled_beside_the_outputs_not_in_the_temp_directory() {
    let dir = temp_dir("interrupt-spool-place");
    let out = dir.join("out");
    // A temp directory that does not exist: a spool there could not be created.
    let child = spawn(
        &[
            "run",
            "scenarios/instant-shift.yaml",
            "--requests",
            "--out",
            out.to_str().unwrap(),
        ],
        &dir.join("no-such-tmp"),
    );
    let result = child.wait_with_output().unwrap();
    assert!(result.status.success(), "{}", text(&result.stderr));
    let log = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    assert!(log.lines().count() > 1000, "every request logged");
    assert!(
        entries(&out).iter().all(|n| !n.starts_with('.')),
        "no staging directory or spool left: {:?}",
        entries(&out)
    );
}

#[test]
fn an_interrupted_load_keeps_its_results_and_exits_143() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let dir = temp_dir("interrupt-load");
    let (out, tmp) = (dir.join("out"), dir.join("tmp"));
    write_old_run(&out);
    std::fs::create_dir_all(&tmp).unwrap();
    let child = spawn(
        &[
            "load",
            "--target",
            &format!("http://127.0.0.1:{port}/"),
            "--rate",
            "100",
            "--duration",
            "60s",
            "--requests",
            "--out",
            out.to_str().unwrap(),
        ],
        &tmp,
    );
    wait_until("the request log spool", || spool_started(&out));
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = interrupt(child, "TERM");
    assert_eq!(status, Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    crate::common::assert_balanced(&summary);
    let arrived = summary["requests"]["arrived"].as_u64().unwrap();
    assert!(arrived > 10 && arrived < 3000, "{summary}");
    // The log has a row for each finished request (those in flight at the end have none).
    let rows = std::fs::read_to_string(out.join("requests.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    assert!(
        rows > 10 && rows <= arrived,
        "{rows} rows, {arrived} arrived"
    );
    assert!(
        entries(&out).iter().all(|n| !n.starts_with('.')),
        "{:?}",
        entries(&out)
    );
    assert_eq!(entries(&tmp), Vec::<String>::new(), "nothing in TMPDIR");
}
