//! The fuzzing habit in every `cargo test`: a bounded proptest run of each entry point of
//! `splitlab::fuzz` (the same ones the cargo-fuzz targets in `fuzz/` call), on arbitrary bytes
//! and on mutations of the shipped scenarios and manifests. A case fails on a panic or on an
//! error that does not name its file. `SPLITLAB_FUZZ_CASES` sets the cases per target (default
//! 256, a few seconds in all); docs/fuzzing.md says how to run longer.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Cases per target: small by default, so CI stays within its budget.
fn cases() -> u32 {
    std::env::var("SPLITLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        // A failing input is shrunk, but not for ever.
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Every `.yaml` under `dir` (not recursive), as seeds for mutation.
fn seeds(dir: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Values that have broken YAML readers before: wrong kinds, huge and odd numbers, anchors,
/// tags, long and empty strings.
const NASTY: &[&str] = &[
    "-1",
    "0",
    "1e400",
    "-0.0",
    ".nan",
    ".inf",
    "18446744073709551616",
    "9223372036854775808",
    "[1, 2]",
    "{a: 1}",
    "[]",
    "{}",
    "\"\"",
    "~",
    "&a x",
    "*a",
    "!!binary aGk=",
    "9999999999h",
    "1ns",
    "-5s",
    "0.0001ms",
    "true",
    "\"\\u0000\"",
    "'a\tb'",
    "- x",
    "|\n  block",
    "x,y\n1,2",
];

/// One edit of a seed file.
#[derive(Clone, Debug)]
enum Edit {
    /// Delete line `i` (modulo the line count).
    DeleteLine(usize),
    /// Repeat line `i`.
    DuplicateLine(usize),
    /// Replace the value after `key:` on line `i` with a nasty value.
    ReplaceValue(usize, usize),
    /// Insert a character at byte `i` (moved to a character boundary).
    Insert(usize, char),
    /// Cut the file at byte `i`.
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(i, v)| Edit::ReplaceValue(i, v)),
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut text = seed.to_string();
    for e in edits {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let n = lines.len().max(1);
        match *e {
            Edit::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::ReplaceValue(i, v) if !lines.is_empty() => {
                let l = &mut lines[i % n];
                if let Some(at) = l.find(": ") {
                    l.truncate(at + 2);
                    l.push_str(NASTY[v % NASTY.len()]);
                }
            }
            Edit::Insert(i, c) => {
                let mut at = i % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert(at, c);
                continue;
            }
            Edit::Truncate(i) => {
                let mut at = i % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
                continue;
            }
            _ => {}
        }
        text = lines.join("\n") + "\n";
    }
    text
}

/// Runs `target` on arbitrary bytes, then on mutated seeds.
fn fuzz(target: fn(&[u8]), seeds: &[String]) {
    runner()
        .run(&proptest::collection::vec(any::<u8>(), 0..1024), |data| {
            target(&data);
            Ok(())
        })
        .unwrap();
    if seeds.is_empty() {
        return;
    }
    let mutated = (0..seeds.len(), proptest::collection::vec(edit(), 1..6));
    runner()
        .run(&mutated, |(i, edits)| {
            target(apply(&seeds[i], &edits).as_bytes());
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_scenario_loader() {
    fuzz(splitlab::fuzz::scenario_bytes, &seeds("scenarios"));
}

#[test]
fn fuzz_scenario_overrides() {
    let seeds: Vec<String> = seeds("scenarios")
        .into_iter()
        .flat_map(|s| {
            [
                "seed=7",
                "revisions.0.pods=3",
                "service.rollout_duration=30s",
            ]
            .map(|set| format!("{set}\n{s}"))
        })
        .collect();
    fuzz(splitlab::fuzz::scenario_set, &seeds);
}

#[test]
fn fuzz_scenario_side_files() {
    // A scenario that reads a trace, with a mutated CSV as the trace.
    let trace = "t_s,tag\n0.1,\n0.2,canary\n";
    let yaml = seeds("scenarios")
        .into_iter()
        .find(|s| s.contains("\narrivals:\n  poisson:"))
        .unwrap()
        .replacen("  poisson:", "  trace: {file: t.csv}\n  ignored:", 1);
    let yaml = yaml
        .lines()
        .filter(|l| !l.starts_with("  ignored:"))
        .collect::<Vec<_>>()
        .join("\n");
    runner()
        .run(&proptest::collection::vec(edit(), 1..6), |edits| {
            splitlab::fuzz::scenario(&yaml, &apply(trace, &edits));
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_manifest_loader() {
    fuzz(splitlab::fuzz::manifests, &seeds("scenarios/knative"));
}

#[test]
fn fuzz_configmaps() {
    fuzz(splitlab::fuzz::configmaps, &seeds("scenarios/knative"));
}

#[test]
fn fuzz_targets_file() {
    let seeds = vec![
        "targets:\n  - name: v1\n    url: http://127.0.0.1:8080/\n    weight: 90\n  - name: v2\n    url: http://127.0.0.1:8081/\n    weight: 10\n".to_string(),
    ];
    fuzz(splitlab::fuzz::targets, &seeds);
}

#[test]
fn fuzz_rate_schedule_csv() {
    let seeds = vec!["at_s,rate_per_s,ramp_s\n0,100\n10,200,5\n20,0\n".to_string()];
    fuzz(splitlab::fuzz::rate_schedule, &seeds);
}

#[test]
fn fuzz_kn_flags() {
    let seeds = vec![
        "t hello-00001=90,hello-00002=10\ng hello-00002=canary\n".to_string(),
        "t @latest=50\nt candidate=50\nu old\n".to_string(),
        "t \"a,b\"=1\ng @latest=current\n".to_string(),
    ];
    fuzz(splitlab::fuzz::kn_flags, &seeds);
}

#[test]
fn fuzz_http_request() {
    let host = "Host: hello.default.example.com\r\n";
    let seeds = vec![
        format!("GET / HTTP/1.1\r\n{host}\r\n"),
        format!("POST /x?y=1 HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nhello"),
        format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        format!("GET / HTTP/1.1\r\n{host}Knative-Serving-Tag: canary\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n{host}\r\n"),
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_string(),
    ];
    fuzz(splitlab::fuzz::http_request, &seeds);
}

/// docs/fuzzing.md, `fuzz/` and `splitlab::fuzz` name the same targets: every entry point has
/// a libFuzzer target and a row in the docs, every target calls an entry point.
#[test]
fn fuzz_targets_docs_and_entry_points_agree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let source = read("src/fuzz.rs");
    let entry_points: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("pub fn "))
        .map(|l| l.split('(').next().unwrap())
        .collect();
    assert!(entry_points.len() >= 7, "{entry_points:?}");
    let docs = read("docs/fuzzing.md");
    let manifest = read("fuzz/Cargo.toml");
    let called: Vec<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("path = \""))
        .map(|p| {
            let target = read(&format!("fuzz/{}", p.trim_end_matches('"')));
            let call = target
                .split("splitlab::fuzz::")
                .nth(1)
                .expect("calls splitlab::fuzz");
            call.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .collect();
    // `scenario` is the text form of `scenario_bytes`, which has the row and the target.
    for f in entry_points.iter().filter(|f| **f != "scenario") {
        assert!(
            docs.contains(&format!("| `{f}` |")),
            "{f} not in docs/fuzzing.md"
        );
        assert!(called.iter().any(|c| c == f), "no fuzz/ target calls {f}");
    }
}
