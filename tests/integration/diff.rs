//! `splitlab diff`: two seeds of one scenario agree within noise, a changed split does not, and
//! bad run directories are clear errors.

use crate::common::{assert_clear_error, splitlab, temp_dir, text};
use std::path::Path;

/// Runs the three-way split (40/30/30 plus a tag-only revision) for 20 s into `dir`.
fn run_three_way(dir: &Path, seed: &str, sets: &[&str]) {
    let mut args = vec![
        "run",
        "scenarios/three-way-split.yaml",
        "--set",
        "duration=20s",
        "--seed",
        seed,
        "--out",
        dir.to_str().expect("utf-8"),
    ];
    for set in sets {
        args.extend_from_slice(&["--set", set]);
    }
    let out = splitlab(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn diff_passes_two_seeds_and_fails_a_changed_split() {
    let (a, b, shifted) = (
        temp_dir("diff-seed-1"),
        temp_dir("diff-seed-2"),
        temp_dir("diff-shifted"),
    );
    run_three_way(&a, "1", &[]);
    run_three_way(&b, "2", &[]);
    // 50/20/30 instead of 40/30/30
    run_three_way(
        &shifted,
        "2",
        &["traffic.0.percent=50", "traffic.1.percent=20"],
    );
    let path = |d: &Path| d.to_str().expect("utf-8").to_string();

    let out = splitlab(&["diff", &path(&a), &path(&b), "--check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("(scenario three-way-split, mode sim, seed 1;")
            && stdout.contains("(scenario three-way-split, mode sim, seed 2;"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("compared metrics are within noise\n"),
        "{stdout}"
    );

    let out = splitlab(&["diff", &path(&a), &path(&shifted), "--check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    for revision in ["hello-00001", "hello-00002"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("share {revision} ")))
            .unwrap_or_else(|| panic!("no share row for {revision}: {stdout}"));
        assert!(row.ends_with("DIFFERS"), "{row}");
    }
    let row = stdout
        .lines()
        .find(|l| l.starts_with("share hello-00003 "))
        .expect("share row");
    assert!(row.ends_with("ok"), "{row}");
    assert!(
        stdout.contains("differ beyond noise: share hello-00001, share hello-00002"),
        "{stdout}"
    );

    // without --check the same difference is only reported
    let out = splitlab(&["diff", &path(&a), &path(&shifted)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    for d in [a, b, shifted] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn diff_errors_name_the_directory_or_file() {
    let dir = temp_dir("diff-errors");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).expect("temp dir");
    std::fs::write(
        bad.join("summary.json"),
        r#"{"scenario": "x", "seed": 1, "mode": "sim", "requests": {"arrived": 1}}"#,
    )
    .expect("write");
    let missing = dir.join("missing");
    let d = |p: &Path| p.to_str().expect("utf-8").to_string();
    // (RUN_A, what stderr must say); RUN_B is always the malformed one, read after RUN_A
    let cases = [
        (d(&missing), format!("{}: not a run directory", d(&missing))),
        (
            d(&dir),
            format!("cannot read {}", d(&dir.join("summary.json"))),
        ),
        (
            d(&bad),
            format!("{}: requests.served: missing", d(&bad.join("summary.json"))),
        ),
    ];
    for (run_a, want) in cases {
        let out = splitlab(&["diff", &run_a, &d(&bad)]);
        assert_clear_error(&out, &want, &run_a);
    }
    let _ = std::fs::remove_dir_all(dir);
}
