//! Helpers every integration test module shares: running the binary, reading its output,
//! temporary directories.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `splitlab` binary from the project root.
pub fn splitlab(args: &[&str]) -> Output {
    splitlab_env(args, &[])
}

/// [`splitlab`] with extra environment variables for the child.
pub fn splitlab_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the splitlab binary runs")
}

/// The text of a Markdown page under the heading `heading` (e.g. `"## Live mode"`), up to the
/// next heading of level 2; `None` when the page has no such heading.
pub fn markdown_section<'a>(page: &'a str, heading: &str) -> Option<&'a str> {
    page.split(heading)
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
}

/// The binary's output as text (it only writes UTF-8).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// A fresh, empty temporary directory path; `label` must be unique among the tests (they run
/// in parallel in one binary), so callers prefix it with their module. It lives under cargo's
/// `target/tmp` and is emptied when a test asks for it again, so runs do not pile up in the
/// system's temporary directory; a failed test's outputs stay there to look at.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("splitlab-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every arrival in `summary` ends in exactly one outcome or is in flight at the end.
pub fn assert_balanced(summary: &serde_json::Value) {
    let req = &summary["requests"];
    let ends: u64 = splitlab::report::record::END_KEYS
        .iter()
        .map(|k| {
            req[*k]
                .as_u64()
                .unwrap_or_else(|| panic!("requests.{k} in {summary}"))
        })
        .sum();
    assert_eq!(
        ends,
        req["arrived"].as_u64().expect("requests.arrived"),
        "{summary}"
    );
}

/// The run failed as a user error should: exit status 1, no panic, and a message on stderr
/// containing `fragment`. `context` names the case in failure messages.
pub fn assert_clear_error(out: &std::process::Output, fragment: &str, context: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{context}: {stderr}");
    assert!(!stderr.contains("panicked"), "{context}: {stderr}");
    assert!(
        stderr.contains(fragment),
        "{context}: {fragment:?} not in {stderr}"
    );
}

/// A small plan grid: 2 settings × (healthy, the canary's failure) × 2 seeds (the sharded-sweep
/// and Indexed-Job tests merge it).
pub const SMALL_PLAN: &[&str] = &[
    "plan",
    "scenarios/flagger-bad-canary.yaml",
    "--grid",
    "duration=150s",
    "--grid",
    "analysis.canary.stepWeight=10,25",
    "--seeds",
    "2",
];

/// `splitlab merge FILES... --out OUT`.
pub fn merge(files: &[std::path::PathBuf], out: &std::path::Path) -> Output {
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    splitlab(&args)
}
