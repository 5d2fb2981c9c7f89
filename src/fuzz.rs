//! Fuzz entry points: each feeds one input to one of splitlab's readers of untrusted text and
//! checks what every input must give: no panic, and either a value or an error that names the
//! file (and, where the reader knows it, the line and column).
//!
//! Used by the cargo-fuzz targets in `fuzz/` (libFuzzer, a memory limit per input) and by the
//! bounded proptest harness that every `cargo test` runs (`tests/integration/fuzz.rs`), so a
//! new reader gets both by getting an entry here. See docs/fuzzing.md.
//!
//! Must not: touch files, sockets or the wall clock; every reader here is given text or bytes
//! (`http_request` serves its bytes over an in-memory duplex stream; its only clock is the
//! connection's timers, shortened to 5 ms).

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

/// Bytes a client sends on one connection to the gateway's request path: the server
/// (`live::http::serve_connection`, with the connection limits of `live::guard`) and the
/// gateway's handler (`Gateway::handle`, with no routes: every routed request is a 404), over
/// an in-memory duplex stream, with the header and idle timeouts at 5 ms so that each input
/// ends quickly. The connection must end within 5 s without a panic, and what comes back must be
/// empty or start as an HTTP/1.x response (`HTTP/1.1 NNN `, or `HTTP/1.0 NNN ` to an HTTP/1.0
/// request, as RFC 9110 section 6.2 has a server answer), or, after an HTTP/2 preface, with an
/// HTTP/2 SETTINGS frame.
pub fn http_request(data: &[u8]) {
    let answer = http_answer(data);
    if answer.is_empty() {
        return;
    }
    if data.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") {
        // A frame header is 9 bytes; type 4 is SETTINGS, the server's first frame.
        assert!(
            answer.len() >= 9 && answer[3] == 4,
            "an HTTP/2 answer that does not open with SETTINGS: {:?}",
            &answer[..answer.len().min(32)]
        );
        return;
    }
    let head = &answer[..answer.len().min(13)];
    let well_formed = head.len() == 13
        && (head.starts_with(b"HTTP/1.1 ") || head.starts_with(b"HTTP/1.0 "))
        && head[9..12].iter().all(u8::is_ascii_digit)
        && head[12] == b' ';
    assert!(
        well_formed,
        "not an HTTP/1.x response: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
}

/// What the gateway's request path answers to `data` on one connection (`http_request`).
fn http_answer(data: &[u8]) -> Vec<u8> {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::live::gateway::Gateway;
    use crate::live::guard::{ConnLimits, ConnStats};
    use crate::live::http::{serve_connection, Pool};
    use crate::model::rng::{stream, Stream};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let gw = Arc::new(Gateway {
            plane: Mutex::new((Default::default(), stream(1, 0, Stream::Routing, 0))),
            backends: Vec::new(),
            pool: Pool::default(),
            hooks: None,
            activator_metrics: Vec::new(),
            stats: Default::default(),
        });
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let limits = ConnLimits {
            header_timeout: Some(std::time::Duration::from_millis(5)),
            idle_timeout: Some(std::time::Duration::from_millis(5)),
            max_connections: 1,
        };
        let served = tokio::spawn(async move {
            let stats = ConnStats::default();
            serve_connection(server, stopped, limits, &stats, move |req| {
                let gw = gw.clone();
                async move { gw.handle(req).await }
            })
            .await;
        });
        // The client writes what the duplex takes while the server reads, and keeps its side
        // open (hyper drops a request whose client half-closes); the connection's timers end it.
        let (mut read, mut write) = tokio::io::split(&mut client);
        let writing = async {
            let _ = write.write_all(data).await;
        };
        let mut answer = Vec::new();
        let reading = read.read_to_end(&mut answer);
        let exchanged = async { tokio::join!(writing, reading) };
        let bound = std::time::Duration::from_secs(5);
        assert!(
            tokio::time::timeout(bound, exchanged).await.is_ok(),
            "the connection did not end within {bound:?}"
        );
        if let Err(e) = served.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        answer
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_harness_sees_the_gateways_answers() {
        let host = "Host: hello.default.example.com\r\n";
        // (request bytes, what the answer starts with)
        let cases = [
            // No routes in the harness: a well-formed request is a 404.
            (format!("GET / HTTP/1.1\r\n{host}\r\n"), "HTTP/1.1 404 "),
            // A coding beyond chunked: 501 before routing.
            (
                format!(
                    "POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
                ),
                "HTTP/1.1 501 ",
            ),
            // Not HTTP: hyper's 400.
            ("NOT HTTP\r\n\r\n".to_string(), "HTTP/1.1 400 "),
            // Half a head: 408 at the header timeout.
            (format!("GET / HTTP/1.1\r\n{host}"), "HTTP/1.1 408 "),
            // Nothing: closed without an answer.
            (String::new(), ""),
            // An HTTP/1.0 request is answered in HTTP/1.0 (libFuzzer's first find: the
            // harness wanted HTTP/1.1 here).
            (
                "PRI q* HTTP/1.0\r\n\r\nSM\r\n\r\n".to_string(),
                "HTTP/1.0 404 ",
            ),
        ];
        for (request, want) in cases {
            let answer = http_answer(request.as_bytes());
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with(want), "{request:?}: {answer:?}");
            if want.is_empty() {
                assert_eq!(answer, "", "{request:?}");
            }
            http_request(request.as_bytes());
        }
    }
}
