//! The live mode on loopback: the sim-vs-live agreement on scenarios/live-smoke.yaml, and the
//! reliability cases (a dead backend, malformed requests, a revision with no pods, SIGTERM).
//! Every server binds 127.0.0.1; every run is bounded in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{assert_balanced, splitlab, temp_dir, text};

fn summary(dir: &std::path::Path) -> serde_json::Value {
    let s = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json is written");
    serde_json::from_str(&s).expect("summary.json is JSON")
}

fn count(v: &serde_json::Value, key: &str) -> u64 {
    v["requests"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("requests.{key} in {v}"))
}

#[test]
fn live_smoke_agrees_with_the_simulator_on_shares_and_outcomes() {
    let sim = temp_dir("live-smoke-sim");
    let live = temp_dir("live-smoke-live");
    let out = splitlab(&[
        "run",
        "scenarios/live-smoke.yaml",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = splitlab(&[
        "live",
        "scenarios/live-smoke.yaml",
        "--time-scale",
        "2",
        "--out",
        live.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&live);
    assert_eq!(v["mode"], "live");
    assert_balanced(&v);
    // The overload really happened: the queue-proxies rejected requests with 503.
    assert!(count(&v, "rejected_qp") > 300, "{v}");
    for f in ["timeseries.csv", "routes.csv", "load.json", "report.html"] {
        assert!(live.join(f).exists(), "{f} missing");
    }
    let out = splitlab(&[
        "diff",
        sim.to_str().unwrap(),
        live.to_str().unwrap(),
        "--check",
    ]);
    assert!(
        out.status.success(),
        "sim and live differ beyond noise:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Starts `splitlab gateway` on an OS-chosen port; returns the child and the port.
fn start_gateway(config: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args([
            "gateway",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

/// A tiny HTTP backend answering `Hello v1!` to every request, on its own thread.
fn start_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let body = "Hello v1!\n";
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn gateway_config(label: &str, live_port: u16, dead_port: u16) -> std::path::PathBuf {
    let dir = temp_dir(label);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            "service: {{name: hello, namespace: default, domain: example.com}}\n\
             traffic:\n  - {{revisionName: v1, percent: 50}}\n  - {{revisionName: v2, percent: 50}}\n\
             backends:\n  v1: [http://127.0.0.1:{live_port}]\n  v2: [http://127.0.0.1:{dead_port}]\n"
        ),
    )
    .unwrap();
    path
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_dead_backend_gets_502_and_the_gateway_keeps_serving_the_rest() {
    let live_port = start_backend();
    let config = gateway_config("live-dead-backend", live_port, dead_port());
    let (mut gw, port) = start_gateway(&config);
    let out_dir = temp_dir("live-dead-backend-out");
    let out = splitlab(&[
        "load",
        "--target",
        &format!("http://127.0.0.1:{port}/"),
        "--host",
        "hello.default.example.com",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--classify",
        "body:Hello v1=v1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let _ = gw.kill();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    let arrived = count(&v, "arrived");
    let (served, errors) = (count(&v, "served"), count(&v, "errors"));
    assert_eq!(arrived, 400, "{v}");
    // Half the traffic goes to the dead backend: 502s; the other half is served.
    assert!(served > 140 && errors > 140, "{v}");
    assert_eq!(served + errors, arrived, "{v}");
    let load = std::fs::read_to_string(out_dir.join("load.json")).unwrap();
    assert!(load.contains("HTTP 502"), "{load}");
    // Without --expect there is no split to measure against: no error figure, not 100 points.
    assert!(v["split"]["max_abs_error_pct"].is_null(), "{v}");
    assert!(text(&out.stdout).contains("split: no error measured"));
}

fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn malformed_requests_and_oversized_headers_get_4xx_and_the_gateway_survives() {
    let live_port = start_backend();
    let config = gateway_config("live-malformed", live_port, live_port);
    let (mut gw, port) = start_gateway(&config);
    let garbage = raw_exchange(port, b"THIS IS NOT HTTP\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: hello.default.example.com\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let oversized = raw_exchange(port, big.as_bytes());
    assert!(oversized.starts_with("HTTP/1.1 431"), "{oversized:?}");
    let unknown = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: nobody.example.org\r\nConnection: close\r\n\r\n",
    );
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown:?}");
    let ok = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: hello.default.example.com\r\nConnection: close\r\n\r\n",
    );
    let _ = gw.kill();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:?}");
    assert!(ok.contains("Hello v1!"), "{ok:?}");
}

#[test]
fn a_revision_with_no_pods_holds_requests_at_the_activator_until_they_expire() {
    let out_dir = temp_dir("live-no-pods");
    let out = splitlab(&[
        "live",
        "scenarios/live-smoke.yaml",
        "--set",
        "revisions.0.pods=1",
        "--set",
        "revisions.0.timeout=1s",
        "--set",
        "traffic=[{revisionName: hello-00001, percent: 100}]",
        "--set",
        "timeline=[{at: 0.2s, scale: {revision: hello-00001, pods: 0}}]",
        "--set",
        "duration=3s",
        "--set",
        "arrivals={poisson: {rate: 50}}",
        "--set",
        "activator.target_burst_capacity=200",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    let arrived = count(&v, "arrived");
    assert!(arrived > 50, "{v}");
    // The only pod leaves within 2.2 s (endpoint removal delay up to 2 s): from then on every
    // request waits at the activator, which has no pod to send it to, and gets its 504 at the
    // revision timeout (1 s).
    let expired = count(&v, "expired_activator");
    assert!(expired >= 30, "{v}");
    assert_eq!(count(&v, "served") + expired, arrived, "{v}");
    assert!(
        v["revisions"]["hello-00001"]["peak_activator_queue"]
            .as_u64()
            .unwrap()
            >= 30
    );
}

#[test]
fn sigterm_stops_a_live_run_promptly_with_complete_outputs() {
    let out_dir = temp_dir("live-sigterm");
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args([
            "live",
            "scenarios/live-smoke.yaml",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("splitlab live starts");
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut waited = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        waited += 1;
        assert!(
            waited < 100,
            "splitlab live did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let v = summary(&out_dir);
    assert_balanced(&v);
    // It stopped early: far fewer than the ~6,500 requests of the whole scenario.
    let arrived = count(&v, "arrived");
    assert!(arrived > 100 && arrived < 3000, "{v}");
}

#[test]
fn a_closed_loop_load_counts_every_request_it_sends() {
    let port = start_backend();
    let out_dir = temp_dir("live-closed-loop");
    let out = splitlab(&[
        "load",
        "--target",
        &format!("http://127.0.0.1:{port}/"),
        "--rate",
        "max",
        "--max-requests",
        "300",
        "--connections",
        "4",
        "--classify",
        "body:Hello v1=v1",
        "--expect",
        "v1=100",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    assert_eq!(count(&v, "arrived"), 300, "{v}");
    assert_eq!(count(&v, "served"), 300, "{v}");
    let load: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load.json")).unwrap()).unwrap();
    assert_eq!(load["sent"], 300, "{load}");
}

#[test]
fn the_gateway_hash_picker_keys_on_the_client_header() {
    let port_v1 = start_backend();
    let dir = temp_dir("live-hash-picker");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "service: {{name: hello, namespace: default, domain: example.com}}\n\
             picker: hash\n\
             traffic:\n  - {{revisionName: v1, percent: 50}}\n  - {{revisionName: v2, percent: 50}}\n\
             backends:\n  v1: [http://127.0.0.1:{port_v1}]\n  v2: [http://127.0.0.1:{port_v1}]\n"
        ),
    )
    .unwrap();
    let (mut gw, port) = start_gateway(&config);
    let revision_of = |client: u64| {
        let resp = raw_exchange(
            port,
            format!(
                "GET / HTTP/1.1\r\nHost: hello.default.example.com\r\nsplitlab-client: {client}\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        let line = resp
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with("knative-serving-revision:")
            })
            .unwrap_or_else(|| panic!("no revision header in {resp:?}"))
            .to_owned();
        line.rsplit(' ').next().unwrap().trim().to_owned()
    };
    // One client stays on one revision; different clients spread over both.
    let mut seen = std::collections::BTreeSet::new();
    for client in 0..40u64 {
        let first = revision_of(client);
        assert_eq!(revision_of(client), first, "client {client} moved");
        seen.insert(first);
    }
    // The load generator sends each request's client id (its sequence number here): the split
    // follows the weights instead of every request landing on one revision.
    let out_dir = temp_dir("live-hash-picker-out");
    let out = splitlab(&[
        "load",
        "--target",
        &format!("http://127.0.0.1:{port}/"),
        "--host",
        "hello.default.example.com",
        "--rate",
        "400",
        "--duration",
        "1s",
        "--expect",
        "v1=50,v2=50",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let _ = gw.kill();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    let v1 = v["revisions"]["v1"]["served"].as_u64().unwrap();
    let v2 = v["revisions"]["v2"]["served"].as_u64().unwrap();
    assert_eq!(v1 + v2, 400, "{v}");
    // 400 distinct clients at 50/50: within 4.5 binomial standard deviations (±45) of 200.
    assert!((155..=245).contains(&v1), "{v}");
}
