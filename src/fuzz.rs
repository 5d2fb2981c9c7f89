//! Fuzz entry points: each feeds one input to one of splitlab's readers of untrusted text and
//! checks what every input must give: no panic, and either a value or an error that names the
//! file (and, where the reader knows it, the line and column).
//!
//! Used by the cargo-fuzz targets in `fuzz/` (libFuzzer, a memory limit per input) and by the
//! bounded proptest harness that every `cargo test` runs (`tests/integration/fuzz.rs`), so a
//! new reader gets both by getting an entry here. See docs/fuzzing.md.
//!
//! Must not: touch files, sockets or the clock; every reader here is given text.

use crate::routing::kn::{compute, Command, RevisionInfo, ServiceState, TrafficFlags};
use crate::routing::target::default_traffic;
use crate::routing::validation::validate_service;
use crate::routing::TrafficTarget;
use crate::scenario::load::{load_scenario, parse_set, read_rate_schedule};

/// The name every input is read under; every error must start with it.
pub const FILE: &str = "fuzz.yaml";

/// Panics unless `message` names the input file (`fuzz.yaml: ...` or `fuzz.yaml:L:C: ...`).
fn assert_names_file(message: &str) {
    assert!(
        message.starts_with(FILE),
        "an error that does not name the file: {message:?}"
    );
}

/// The text of `data`, or `None` for bytes that are not UTF-8 (the command line refuses those
/// before any reader sees them, with their line and column).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A scenario file; any file it names (a trace, a latency CSV, a manifest) reads as `side`, so
/// the CSV and manifest readers behind a scenario are fuzzed through it too.
pub fn scenario(yaml: &str, side: &str) {
    let named = std::cell::RefCell::new(Vec::new());
    let resolve = |name: &str| -> Result<String, String> {
        named.borrow_mut().push(name.to_string());
        Ok(side.to_string())
    };
    if let Err(e) = load_scenario(FILE, yaml, &[], &resolve) {
        let message = e.to_string();
        // An error in a file the scenario names starts with that file's name.
        let in_side_file = named
            .borrow()
            .iter()
            .any(|n| message.starts_with(n.as_str()));
        if !in_side_file {
            assert_names_file(&message);
        }
    }
}

/// [`scenario`] from raw bytes: the first NUL byte separates the scenario from the side file.
pub fn scenario_bytes(data: &[u8]) {
    let (yaml, side) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let (Some(yaml), Some(side)) = (text(yaml), text(side)) {
        scenario(yaml, side);
    }
}

/// A scenario with `--set PATH=VALUE` overrides (the first line of `data` is the override).
pub fn scenario_set(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let (set, yaml) = t.split_once('\n').unwrap_or((t, ""));
    let Ok(set) = parse_set(set) else { return };
    let resolve = |_: &str| -> Result<String, String> { Err("no such file".into()) };
    if let Err(e) = load_scenario(FILE, yaml, &[set], &resolve) {
        assert_names_file(&e.to_string());
    }
}

/// Knative manifests (`validate`, `traffic`, a scenario's `service.manifest`), then Knative's
/// validation of every Service and Route found.
pub fn manifests(data: &[u8]) {
    let Some(t) = text(data) else { return };
    match crate::scenario::manifest::load_manifests(FILE, t) {
        Ok(list) => {
            for m in &list {
                if let Some(traffic) = &m.spec_traffic {
                    let mut stored = traffic.clone();
                    default_traffic(&mut stored, true);
                    let _ = validate_service(&m.meta, &stored);
                }
            }
        }
        Err(e) => assert_names_file(&e.to_string()),
    }
    if let Err(e) = crate::scenario::kube::read_objects(FILE, t) {
        assert_names_file(&e.to_string());
    }
}

/// The cluster's ConfigMaps (`validate`, a scenario's `cluster.configmaps`).
pub fn configmaps(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Err(e) = crate::scenario::configmap::read_configmaps(&[(FILE.into(), t.into())]) {
        assert_names_file(&e.to_string());
    }
}

/// `load --targets` and `gateway --config` target lists.
pub fn targets(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Err(e) = crate::scenario::targets::parse(FILE, t) {
        assert_names_file(&e.to_string());
    }
}

/// `load --schedule` CSV.
pub fn rate_schedule(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Err(e) = read_rate_schedule(FILE, t) {
        assert_names_file(&e.to_string());
    }
}

/// `kn service update --traffic/--tag/--untag` (`splitlab traffic`): each line of `data` is
/// one flag occurrence, `t VALUE`, `g VALUE` or `u VALUE`; the edit is applied to a Service
/// with two revisions and the result goes through the webhook's validation.
pub fn kn_flags(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let (mut traffic, mut tags, mut untags) = (Vec::new(), Vec::new(), Vec::new());
    for line in t.lines() {
        if let Some(v) = line.strip_prefix("t ") {
            traffic.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("g ") {
            tags.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("u ") {
            untags.push(v.to_string());
        }
    }
    let Ok(flags) = TrafficFlags::from_occurrences(&traffic, &tags, &untags) else {
        return;
    };
    let latest = TrafficTarget {
        latest_revision: Some(true),
        percent: Some(100),
        ..TrafficTarget::default()
    };
    let mut status = latest.clone();
    status.revision_name = "hello-00002".into();
    let state = ServiceState {
        name: "hello".into(),
        spec_traffic: vec![latest],
        status_traffic: vec![status],
        latest_ready_revision: "hello-00002".into(),
    };
    let revisions: Vec<RevisionInfo> = ["hello-00001", "hello-00002"]
        .into_iter()
        .map(|name| RevisionInfo {
            name: name.into(),
            tags_annotation: String::new(),
        })
        .collect();
    for mutation in [false, true] {
        if let Ok(mut result) = compute(&state, &flags, &revisions, mutation, Command::Update) {
            default_traffic(&mut result, true);
            let meta = crate::routing::ObjectMeta {
                name: "hello".into(),
                ..Default::default()
            };
            let _ = validate_service(&meta, &result);
        }
    }
}
