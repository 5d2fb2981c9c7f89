//! The live mode on loopback: the sim-vs-live agreement on scenarios/live-smoke.yaml, and the
//! reliability cases (a dead backend, one dying mid-run, malformed requests, a revision with no
//! pods, overload at 5× capacity, SIGTERM).
//! Every server binds 127.0.0.1; every run is bounded in time.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::common::{assert_balanced, markdown_section, splitlab, temp_dir, text};

/// Live runs measure wall-clock latency and memory on the 2-core machine, so they take turns:
/// two of them at once starve each other's pacers and sockets (a run's peak memory then tracks
/// the other run's load, not its own queues). Each live test holds this for its whole run; the
/// simulator's tests still run beside it.
static LIVE: Mutex<()> = Mutex::new(());

pub(crate) fn one_live_run_at_a_time() -> MutexGuard<'static, ()> {
    // A test that panicked while holding it leaves nothing behind to protect.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn summary(dir: &std::path::Path) -> serde_json::Value {
    let s = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json is written");
    serde_json::from_str(&s).expect("summary.json is JSON")
}

pub(crate) fn count(v: &serde_json::Value, key: &str) -> u64 {
    v["requests"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("requests.{key} in {v}"))
}

/// README's live-mode commands (and docs/live.md's, the same lines), run as written with their
/// `out/` directories in temporary ones: `run` and `live` of live-smoke, then `diff --check`.
fn readme_live_smoke_commands() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let page = std::fs::read_to_string(root.join("docs/live.md")).expect("docs/live.md");
    let section = markdown_section(&readme, "## Live mode").expect("README's live mode section");
    let commands: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- "))
        .map(str::to_string)
        .collect();
    assert_eq!(commands.len(), 3, "run, live and diff in README.md");
    for c in &commands {
        assert!(page.lines().any(|l| l == c), "docs/live.md shows {c}");
    }
    commands
}

#[test]
#[ignore = "timing-sensitive against the wall clock (failed 3 times in this session's parallel suites at load average 6-14, passes alone): .ci/run runs the ignored tests alone, after the suite"]
fn live_smoke_agrees_with_the_simulator_on_shares_and_outcomes() {
    let _live = one_live_run_at_a_time();
    let sim = temp_dir("live-smoke-sim");
    let live = temp_dir("live-smoke-live");
    let commands = readme_live_smoke_commands();
    let args = |k: usize| -> Vec<String> {
        commands[k]
            .split_whitespace()
            .skip(4)
            .map(|a| match a {
                "out/smoke-sim" => sim.display().to_string(),
                "out/smoke-live" => live.display().to_string(),
                other => other.to_string(),
            })
            .collect()
    };
    let (run_args, live_args, diff_args) = (args(0), args(1), args(2));
    assert_eq!(run_args[..2], ["run", "scenarios/live-smoke.yaml"]);
    assert_eq!(live_args[..2], ["live", "scenarios/live-smoke.yaml"]);
    assert_eq!(diff_args[0], "diff");
    let as_str = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let out = splitlab(&run_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}: {}",
        as_str(&run_args),
        text(&out.stderr)
    );
    let out = splitlab(&live_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}: {}",
        as_str(&live_args),
        text(&out.stderr)
    );
    let v = summary(&live);
    assert_eq!(v["mode"], "live");
    assert_balanced(&v);
    // The overload really happened: the queue-proxies rejected requests with 503.
    assert!(count(&v, "rejected_qp") > 300, "{v}");
    for f in ["timeseries.csv", "routes.csv", "load.json", "report.html"] {
        assert!(live.join(f).exists(), "{f} missing");
    }
    assert!(
        diff_args.iter().any(|a| a == "--check"),
        "{}",
        as_str(&diff_args)
    );
    let out = splitlab(&diff_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "sim and live differ beyond noise:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Starts `splitlab gateway` on an OS-chosen port for at most 20 s; returns the child and the
/// port.
pub(crate) fn start_gateway(config: &std::path::Path) -> (Child, u16) {
    start_gateway_with(config, &[], &["--duration", "20s"])
}

/// `splitlab gateway` on an OS-chosen port with `extra` flags, run through `prefix` (e.g.
/// `prlimit`, empty for none); returns the child and its port, read from its first line.
pub(crate) fn start_gateway_with(
    config: &std::path::Path,
    prefix: &[&str],
    extra: &[&str],
) -> (Child, u16) {
    let mut args: Vec<&str> = prefix.to_vec();
    args.push(env!("CARGO_BIN_EXE_splitlab"));
    args.extend([
        "gateway",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    args.extend(extra);
    let mut child = Command::new(args[0])
        .args(&args[1..])
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

/// A tiny HTTP backend answering `Hello v1!` to every request, on its own threads.
pub(crate) fn start_backend() -> u16 {
    start_killable_backend().0
}

/// A backend answering `body` to every request.
pub(crate) fn start_backend_saying(body: &'static str) -> u16 {
    start_backend_with(body).0
}

/// A backend that can be killed mid-run: once the flag is set it stops accepting (its port is
/// closed: connections are refused) and drops every open connection without answering.
fn start_killable_backend() -> (u16, Arc<AtomicBool>) {
    start_backend_with("Hello v1!\n")
}

fn start_backend_with(body: &'static str) -> (u16, Arc<AtomicBool>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let dead = Arc::new(AtomicBool::new(false));
    let flag = dead.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            let mut s = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
            };
            let flag = flag.clone();
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                while !flag.load(Ordering::SeqCst) {
                    let n = match s.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue
                        }
                        Err(_) => return,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        if flag.load(Ordering::SeqCst) {
                            return;
                        }
                        pending.drain(..end + 4);
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
        // The listener drops here: the port is closed.
    });
    (port, dead)
}

/// Writes `yaml` as `gateway.yaml` in a fresh temporary directory named by `label`; returns its
/// path.
pub(crate) fn write_gateway_config(label: &str, yaml: &str) -> std::path::PathBuf {
    let dir = temp_dir(label);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A gateway config splitting 50/50 between v1 and v2 at the given ports, with `picker`.
fn gateway_config(label: &str, picker: &str, v1_port: u16, v2_port: u16) -> std::path::PathBuf {
    write_gateway_config(
        label,
        &format!(
            "service: {{name: hello, namespace: default, domain: example.com}}\n\
             picker: {picker}\n\
             traffic:\n  - {{revisionName: v1, percent: 50}}\n  - {{revisionName: v2, percent: 50}}\n\
             backends:\n  v1: [http://127.0.0.1:{v1_port}]\n  v2: [http://127.0.0.1:{v2_port}]\n"
        ),
    )
}

/// A port nothing listens on (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `splitlab load` arguments: `rate` req/s for `duration` to the gateway on `port` with the
/// service's host, then `extra`, writing to `out_dir`.
fn load_args(
    port: u16,
    rate: &str,
    duration: &str,
    extra: &[&str],
    out_dir: &std::path::Path,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "load",
        "--target",
        &format!("http://127.0.0.1:{port}/"),
        "--host",
        "hello.default.example.com",
        "--rate",
        rate,
        "--duration",
        duration,
        "--out",
        out_dir.to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_dead_backend_gets_502_and_the_gateway_keeps_serving_the_rest() {
    let _live = one_live_run_at_a_time();
    let live_port = start_backend();
    let config = gateway_config("live-dead-backend", "random", live_port, dead_port());
    let (mut gw, port) = start_gateway(&config);
    let out_dir = temp_dir("live-dead-backend-out");
    let args = load_args(
        port,
        "200",
        "2s",
        &["--classify", "body:Hello v1=v1"],
        &out_dir,
    );
    let out = splitlab(&as_strs(&args));
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

#[test]
fn a_backend_that_dies_mid_run_gets_502_and_the_gateway_keeps_serving_the_rest() {
    let _live = one_live_run_at_a_time();
    let (port_v1, _) = start_killable_backend();
    let (port_v2, kill_v2) = start_killable_backend();
    let config = gateway_config("live-dying-backend", "random", port_v1, port_v2);
    let (mut gw, port) = start_gateway(&config);
    let out_dir = temp_dir("live-dying-backend-out");
    let load = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(load_args(
            port,
            "200",
            "3s",
            &["--expect", "v1=50,v2=50"],
            &out_dir,
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the load generator starts");
    // v2 serves for the first second, then dies with connections open.
    std::thread::sleep(Duration::from_secs(1));
    kill_v2.store(true, Ordering::SeqCst);
    let out = load.wait_with_output().expect("the load generator ends");
    // The gateway outlived its backend: it still answers (v1 200s, v2 502s).
    let after = raw_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: hello.default.example.com\r\nsplitlab-client: 1\r\nConnection: close\r\n\r\n",
    );
    let _ = gw.kill();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        after.starts_with("HTTP/1.1 200") || after.starts_with("HTTP/1.1 502"),
        "{after:?}"
    );
    let v = summary(&out_dir);
    assert_balanced(&v);
    assert_eq!(count(&v, "arrived"), 600, "{v}");
    let rev = |name: &str, key: &str| v["revisions"][name][key].as_u64().unwrap();
    // v1 never failed: everything routed to it was served, before and after v2 died.
    assert_eq!(rev("v1", "served"), rev("v1", "routed"), "{v}");
    assert!(rev("v1", "served") > 200, "{v}");
    // v2 served its first second (~100 requests), then every request to it got a 502.
    assert!((60..=140).contains(&rev("v2", "served")), "{v}");
    assert!(rev("v2", "errors") > 150, "{v}");
    assert_eq!(
        rev("v2", "served") + rev("v2", "errors"),
        rev("v2", "routed"),
        "{v}"
    );
    assert_eq!(count(&v, "served") + count(&v, "errors"), 600, "{v}");
    let load = std::fs::read_to_string(out_dir.join("load.json")).unwrap();
    assert!(load.contains("HTTP 502"), "{load}");
}

/// Runs `splitlab CMD scenarios/live-smoke.yaml` (`run` or `live`) with `--set` settings and
/// extra flags into a fresh directory; asserts it succeeded with every request accounted for.
fn smoke_with(cmd: &str, label: &str, settings: &[&str], extra: &[&str]) -> std::path::PathBuf {
    let (dir, args) = smoke_args(cmd, label, settings, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = splitlab(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_balanced(&summary(&dir));
    dir
}

/// The arguments of `smoke_with`, and its fresh output directory.
fn smoke_args(
    cmd: &str,
    label: &str,
    settings: &[&str],
    extra: &[&str],
) -> (std::path::PathBuf, Vec<String>) {
    let dir = temp_dir(label);
    let mut args = vec![cmd.to_string(), "scenarios/live-smoke.yaml".to_string()];
    for s in settings {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    args.extend(["--out".to_string(), dir.to_str().unwrap().to_string()]);
    (dir, args)
}

/// `splitlab ARGS` run to its end while its resident set is read from `/proc/PID/status` every
/// 100 ms: its output, and the samples as (seconds since it started, MiB). Linux only.
fn splitlab_rss_sampled(args: &[String]) -> (std::process::Output, Vec<(f64, f64)>) {
    // The samples' times are the wall clock's: what the run's resident set did as it ran.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(args)
        // Freed memory goes back to the system at once (mimalloc, the binary's allocator,
        // holds it for a while by default): the samples are what the run keeps.
        .env("MIMALLOC_PURGE_DELAY", "0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the splitlab binary runs");
    let status_file = format!("/proc/{}/status", child.id());
    let done = Arc::new(AtomicBool::new(false));
    let sampling = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !sampling.load(Ordering::SeqCst) {
            // An exited process's status has no VmRSS line: no sample.
            let rss_kib = std::fs::read_to_string(&status_file).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            });
            if let Some(kib) = rss_kib {
                samples.push((started.elapsed().as_secs_f64(), kib / 1024.0));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    let out = child.wait_with_output().expect("waiting for splitlab");
    done.store(true, Ordering::SeqCst);
    (out, sampler.join().expect("the sampler ends"))
}

/// `splitlab live` on one revision of 2 pods at cc 4 (20-40 ms service: ~270 req/s of
/// capacity) offered 1,333 req/s, five times its capacity, for `duration`; `tbc` is the
/// activator's target-burst-capacity (0: queue-proxies only; -1: the activator always in the
/// path). Returns the summary, the process's peak resident set (MiB) from load.json, and its
/// resident set sampled while it ran (`splitlab_rss_sampled`).
fn overload_run(
    label: &str,
    duration: &str,
    tbc: i32,
    connections: &str,
) -> (serde_json::Value, f64, Vec<(f64, f64)>) {
    let duration = format!("duration={duration}");
    let tbc = format!("activator.target_burst_capacity={tbc}");
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 4, timeout: 1s, \
         service_time: {uniform: {min: 20ms, max: 40ms}}, pods: 2}]",
        "timeline=[]",
        "traffic=[{revisionName: hello-00001, percent: 100}]",
        &duration,
        "arrivals={poisson: {rate: 1333}}",
        &tbc,
    ];
    let (out_dir, args) = smoke_args("live", label, &settings, &["--connections", connections]);
    let (out, samples) = splitlab_rss_sampled(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_balanced(&summary(&out_dir));
    let load: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load.json")).unwrap()).unwrap();
    let rss = load["peak_rss_mib"]
        .as_f64()
        .unwrap_or_else(|| panic!("no peak_rss_mib in {load}"));
    (summary(&out_dir), rss, samples)
}

/// The largest sample taken from `from` s to `to` s; at least 20 of them, or the run was
/// not watched closely enough to tell.
fn peak_between(samples: &[(f64, f64)], from: f64, to: f64) -> f64 {
    let within: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| (from..to).contains(t))
        .map(|(_, mib)| *mib)
        .collect();
    assert!(
        within.len() >= 20,
        "{} resident-set samples from {from} s to {to} s (is /proc mounted?): {samples:?}",
        within.len()
    );
    within.into_iter().fold(0.0, f64::max)
}

#[test]
#[ignore = "timing-sensitive against the wall clock: .ci/run runs the ignored tests alone, after the suite"]
fn overload_at_5x_capacity_accounts_for_every_request_and_memory_does_not_grow_with_the_run() {
    let _live = one_live_run_at_a_time();
    // 256 connections: enough for everything the pods hold (88) and the replies in flight;
    // memory then depends on the queues, not on how many sockets a scheduling hiccup opens
    // (with 4,096 it varied by 6 MiB between runs of the same length on a busy machine).
    let (v, rss, samples) = overload_run("live-overload", "20s", 0, "256");
    let arrived = count(&v, "arrived");
    assert!(arrived > 20 * 1200, "{v}");
    // ~1,333 req/s offered, ~270 served: the queue-proxies (11·cc deep) reject the rest.
    assert!(count(&v, "served") * 100 <= arrived * 30, "{v}");
    assert!(count(&v, "rejected_qp") * 100 >= arrived * 65, "{v}");
    assert_eq!(count(&v, "in_flight_at_end"), 0, "{v}");
    assert_eq!(
        v["revisions"]["hello-00001"]["peak_qp_queue"].as_u64(),
        Some(80),
        "2 pods × 10·cc waiting: {v}"
    );
    assert!(rss < 64.0, "{rss} MiB");
    // Queues are bounded, so memory is too. The resident set climbs for the first ~8 s (the
    // allocator's pools and the connections' buffers filling), then stays flat: measured in
    // one process of the test build, 40 MiB from 8 s to 20 s with two busy loops beside it,
    // 43 MiB from 8 s to 60 s alone. Comparing two processes instead (a 2 s and a 10 s run)
    // measured the warm-up and each process's own peak: 38.0 -> 45.1 MiB in CI. From 8 s to
    // 13.5 s and from 13.5 s to 19 s the run takes ~7,300 requests: a leak of 300 bytes a
    // request raises the later peak by the 2 MiB this allows (the two peaks measured 0.0-0.2
    // MiB apart; a leak of 600 bytes put in `finish` measured +4.7 MiB and failed).
    let settled = peak_between(&samples, 8.0, 13.5);
    let later = peak_between(&samples, 13.5, 19.0);
    eprintln!("resident set: {settled} MiB from 8 s to 13.5 s, {later} MiB from 13.5 s to 19 s");
    assert!(
        later < settled + 2.0,
        "{settled} MiB from 8 s to 13.5 s, {later} MiB from 13.5 s to 19 s: {samples:?}"
    );
}

#[test]
fn overload_at_5x_capacity_through_the_activator_expires_at_the_timeout_within_bounded_memory() {
    let _live = one_live_run_at_a_time();
    // The default 4,096 connections, so the activator can hold everything that arrives.
    let (v, rss, _) = overload_run("live-overload-activator", "3s", -1, "4096");
    let arrived = count(&v, "arrived");
    // The activator holds what the pods cannot take, FIFO, and each request expires at the
    // revision timeout (1 s): the queue peaks near rate × timeout, and since a request is
    // dispatched only once all older ones were, almost all are dispatched too late to finish
    // (the simulator shows the same goodput collapse: 3.1% served at 8 s, live 3.0%).
    assert!(count(&v, "expired_activator") * 100 >= arrived * 80, "{v}");
    assert_eq!(count(&v, "rejected_qp"), 0, "{v}");
    assert_eq!(count(&v, "in_flight_at_end"), 0, "{v}");
    let peak = v["revisions"]["hello-00001"]["peak_activator_queue"]
        .as_u64()
        .unwrap();
    assert!((1000..=1700).contains(&peak), "{v}");
    // Bounded by what waits (≤ rate × timeout), not by the run: measured 60-65 MiB.
    assert!(rss < 128.0, "{rss} MiB");
}

#[test]
fn a_request_at_a_revision_scaled_to_zero_wakes_it_at_once_as_in_the_simulator() {
    let _live = one_live_run_at_a_time();
    // One pod at first; no traffic, so the KPA (6 s stable window) scales the revision to zero.
    // Requests start at 14.1 s, between two decider ticks (every 2 s): the activator's poke must
    // wake the revision at once, so the first request waits for a pod start (300 ms) and the
    // probe, not for the next tick at 16 s (which would make it wait about 2.2 s).
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 4, timeout: 10s, \
         service_time: {uniform: {min: 20ms, max: 40ms}}, pods: 1, startup: {constant: 300ms}}]",
        "timeline=[]",
        "traffic=[{revisionName: hello-00001, percent: 100}]",
        "duration=20s",
        "arrivals={schedule: {points: [{at: 0s, rate: 0}, {at: 14.1s, rate: 20}]}}",
        "autoscaler.enabled=true",
        "autoscaler.stable_window=6s",
        "autoscaler.scale_to_zero_grace_period=1s",
        "activator.target_burst_capacity=200",
    ];
    let sim = summary(&smoke_with("run", "live-cold-sim", &settings, &[]));
    let live = summary(&smoke_with(
        "live",
        "live-cold-live",
        &settings,
        &["--time-scale", "4"],
    ));
    let max_ms = |v: &serde_json::Value| {
        v["revisions"]["hello-00001"]["latency_ms"]["max"]
            .as_f64()
            .unwrap_or_else(|| panic!("nothing served: {v}"))
    };
    for v in [&sim, &live] {
        assert_eq!(count(v, "served"), count(v, "arrived"), "{v}");
        assert_eq!(v["revisions"]["hello-00001"]["cold_starts"], 1, "{v}");
        // Measured: simulated 478 ms, live 470-473 ms; without the poke, live 2,288 ms.
        assert!(max_ms(v) < 1000.0, "{v}");
    }
    assert!((max_ms(&live) - max_ms(&sim)).abs() < 150.0, "{sim} {live}");
}

#[test]
#[ignore = "timing-sensitive against the wall clock: .ci/run runs the ignored tests alone, after the suite"]
fn a_processor_sharing_app_agrees_with_the_simulator() {
    let _live = one_live_run_at_a_time();
    // cc 0, one core per pod shared by every request in it, 20 ms of work each, 80 req/s over
    // two pods (utilisation 0.8): requests slow each other down, so the mean latency is
    // about 52 ms, where pods serving each request alone would answer in about 20 ms.
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 0, \
         app: {processor_sharing: {cores: 1}}, timeout: 10s, service_time: {constant: 20ms}, \
         pods: 2}]",
        "timeline=[]",
        "traffic=[{revisionName: hello-00001, percent: 100}]",
        "duration=12s",
        "arrivals={poisson: {rate: 80}}",
    ];
    let sim = smoke_with("run", "live-ps-sim", &settings, &[]);
    // At real speed: the live run's per-request overhead (sockets, timers, a debug build) is
    // fixed in wall time, and at 80 % utilisation each extra millisecond of it shows up several
    // times over in the mean. `--time-scale 2` doubled it in model time, and a slow CI machine
    // measured live 61.1 ms against the simulator's 52.4 ms.
    let live = smoke_with("live", "live-ps-live", &settings, &[]);
    let out = splitlab(&[
        "diff",
        sim.to_str().unwrap(),
        live.to_str().unwrap(),
        "--check",
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let mean = |dir: &std::path::Path| {
        summary(dir)["revisions"]["hello-00001"]["latency_ms"]["mean"]
            .as_f64()
            .unwrap()
    };
    let (sim_ms, live_ms) = (mean(&sim), mean(&live));
    // Measured at real speed: simulated 52.4 ms, live 54.6-56.2 ms, also with one core kept
    // busy (at --time-scale 2 on the same machine: 57.0-59.7 ms).
    assert!(sim_ms > 40.0, "{sim_ms}");
    assert!(
        (live_ms - sim_ms).abs() < 8.0,
        "sim {sim_ms} ms, live {live_ms} ms"
    );
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
    let _live = one_live_run_at_a_time();
    let live_port = start_backend();
    let config = gateway_config("live-malformed", "random", live_port, live_port);
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
    let _live = one_live_run_at_a_time();
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
        "--requests",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    let arrived = count(&v, "arrived");
    assert!(arrived > 50, "{v}");
    // --requests: one row per finished request, with the route the gateway took.
    let csv = std::fs::read_to_string(out_dir.join("requests.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,arrived_s,finished_s,revision,default_group,via_activator,outcome,status,latency_ms")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows.len() as u64,
        arrived - count(&v, "in_flight_at_end"),
        "{v}"
    );
    let expired_rows: Vec<_> = rows
        .iter()
        .filter(|r| r[6] == "expired_activator")
        .collect();
    assert_eq!(expired_rows.len() as u64, count(&v, "expired_activator"));
    for r in &expired_rows {
        // Routed to the revision on the main route, held by the activator, 504 at the timeout.
        assert_eq!(
            &r[3..8],
            ["hello-00001", "true", "true", "expired_activator", "504"],
            "{r:?}"
        );
        let waited_s: f64 = r[2].parse::<f64>().unwrap() - r[1].parse::<f64>().unwrap();
        assert!((0.95..1.3).contains(&waited_s), "{r:?}");
    }
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
    let _live = one_live_run_at_a_time();
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
    // Interrupted runs exit 128 + SIGTERM (15), with their outputs written.
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    let v = summary(&out_dir);
    assert_balanced(&v);
    // It stopped early: far fewer than the ~6,500 requests of the whole scenario.
    let arrived = count(&v, "arrived");
    assert!(arrived > 100 && arrived < 3000, "{v}");
}

#[test]
fn a_closed_loop_load_counts_every_request_it_sends() {
    let _live = one_live_run_at_a_time();
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

/// The names of a process's threads (Linux: /proc/PID/task/*/comm).
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_gateway_with_two_workers_splits_counts_each_request_once_and_stops_on_sigterm() {
    let _live = one_live_run_at_a_time();
    let v1 = start_backend();
    let v2 = start_backend_saying("Hello v2!\n");
    let config = gateway_config("live-workers", "wrr", v1, v2);
    let (mut gw, port) = start_gateway_with(&config, &[], &["--workers", "2", "--duration", "20s"]);
    // Two event loops, each on its own thread (named as it starts, maybe just after the
    // gateway's first line).
    let since = splitlab::live::clock::Clock::wall_now();
    let workers = loop {
        let workers: Vec<String> = thread_names(gw.id())
            .into_iter()
            .filter(|n| n.starts_with("gateway-"))
            .collect();
        if workers.len() == 2 || since.elapsed() > Duration::from_secs(2) {
            break workers;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(workers, ["gateway-0", "gateway-1"]);
    // 40 connections of one request each: the kernel spreads them over both workers' sockets.
    let mut bodies = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..40 {
        let resp = raw_exchange(
            port,
            b"GET / HTTP/1.1\r\nHost: hello.default.example.com\r\nConnection: close\r\n\r\n",
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
        let body = resp.rsplit("\r\n\r\n").next().unwrap().trim().to_owned();
        *bodies.entry(body).or_default() += 1;
    }
    // Each worker's wrr picker keeps its own share within one request of 50/50: together
    // within two.
    let v1_got = bodies.get("Hello v1!").copied().unwrap_or(0);
    let v2_got = bodies.get("Hello v2!").copied().unwrap_or(0);
    assert_eq!(v1_got + v2_got, 40, "{bodies:?}");
    assert!((18..=22).contains(&v1_got), "{bodies:?}");
    // A keep-alive connection left open does not hold the stop up.
    let mut open = TcpStream::connect(("127.0.0.1", port)).unwrap();
    open.write_all(b"GET / HTTP/1.1\r\nHost: hello.default.example.com\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    open.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let status = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let since = splitlab::live::clock::Clock::wall_now();
    let ended = loop {
        if let Some(status) = gw.try_wait().unwrap() {
            break status;
        }
        if since.elapsed() > Duration::from_secs(5) {
            let _ = gw.kill();
            panic!("the gateway did not stop within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    gw.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(ended.success(), "{ended:?}: {stdout}");
    // Both workers' requests, each counted once: the 40 and the keep-alive one.
    assert!(
        stdout.contains("gateway: stopped: requests 41  errors 0\n"),
        "{stdout}"
    );
}

#[test]
fn the_gateway_hash_picker_keys_on_the_client_header() {
    let _live = one_live_run_at_a_time();
    let port = start_backend();
    let config = gateway_config("live-hash-picker", "hash", port, port);
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
    let args = load_args(port, "400", "1s", &["--expect", "v1=50,v2=50"], &out_dir);
    let out = splitlab(&as_strs(&args));
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

#[test]
fn load_follows_a_rate_schedule_file() {
    let _live = one_live_run_at_a_time();
    let port = start_backend();
    let dir = temp_dir("live-schedule");
    std::fs::create_dir_all(&dir).unwrap();
    let schedule = dir.join("schedule.csv");
    // 100 req/s for half a second, then 300 req/s: 50 + 150 requests in the one second.
    std::fs::write(&schedule, "at_s,rate_per_s\n0,100\n0.5,300\n").unwrap();
    let out_dir = dir.join("out");
    let target = format!("http://127.0.0.1:{port}/");
    let load = |extra: &[&str]| {
        let mut args = vec!["load", "--target", &target, "--duration", "1s"];
        args.extend(["--schedule", schedule.to_str().unwrap()]);
        args.extend(["--out", out_dir.to_str().unwrap()]);
        args.extend(extra);
        splitlab(&args)
    };
    let out = load(&["--classify", "body:Hello v1=v1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = summary(&out_dir);
    assert_balanced(&v);
    let arrived = count(&v, "arrived");
    assert!((195..=205).contains(&arrived), "{v}");
    assert_eq!(count(&v, "served"), arrived, "{v}");
    // A bad cell is named by file, line, column and field.
    std::fs::write(&schedule, "0,100\n1,-5\n").unwrap();
    let out = load(&[]);
    crate::common::assert_clear_error(&out, "schedule.csv:2:3: rate_per_s: \"-5\"", "bad rate");
}

/// One revision's count in a summary.
fn rev_count(v: &serde_json::Value, rev: &str, key: &str) -> u64 {
    v["revisions"][rev][key]
        .as_u64()
        .unwrap_or_else(|| panic!("revisions.{rev}.{key} in {v}"))
}

#[test]
#[ignore = "timing-sensitive against the wall clock: .ci/run runs the ignored tests alone, after the suite"]
fn live_pods_answer_application_errors_and_serve_slower_as_the_simulator_does() {
    let _live = one_live_run_at_a_time();
    // 50/50 between a healthy revision and one whose application answers 30% of requests with
    // 503 and works three times longer (60 ms instead of 20 ms).
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 4, timeout: 5s, \
         service_time: {constant: 20ms}, pods: 2}, {name: hello-00002, container_concurrency: 4, \
         timeout: 5s, service_time: {constant: 20ms}, pods: 2, \
         failure: {error_rate: 0.3, error_status: 503, latency: {multiplier: 3}}}]",
        "timeline=[]",
        "traffic=[{revisionName: hello-00001, percent: 50}, {revisionName: hello-00002, percent: 50}]",
        "duration=10s",
        "arrivals={poisson: {rate: 100}}",
    ];
    let sim = summary(&smoke_with("run", "live-fail-sim", &settings, &[]));
    // At real speed, run alone: beside the parallel suite, at `--time-scale 2`, the live p50 of
    // the 60 ms revision measured 70.85 ms once (overhead doubled in model time, and a loaded
    // machine's timers).
    let live = summary(&smoke_with("live", "live-fail-live", &settings, &[]));
    for v in [&sim, &live] {
        assert_eq!(rev_count(v, "hello-00001", "app_error"), 0, "{v}");
        let n = rev_count(v, "hello-00002", "arrived") as f64;
        let k = rev_count(v, "hello-00002", "app_error") as f64;
        let sd = (n * 0.3 * 0.7).sqrt();
        assert!((k - 0.3 * n).abs() <= 4.5 * sd, "{k} of {n}: {v}");
        assert_eq!(
            rev_count(v, "hello-00002", "served") + rev_count(v, "hello-00002", "app_error"),
            rev_count(v, "hello-00002", "arrived"),
            "{v}"
        );
        let p50 = |rev: &str| {
            v["revisions"][rev]["latency_ms"]["p50"]
                .as_f64()
                .unwrap_or_else(|| panic!("{rev} served nothing: {v}"))
        };
        // Live adds loopback and timer latency (a few ms), never less than the work.
        assert!((20.0..30.0).contains(&p50("hello-00001")), "{v}");
        assert!((60.0..70.0).contains(&p50("hello-00002")), "{v}");
    }
}

#[test]
fn live_pods_refuse_before_serving_and_crash_with_502s() {
    let _live = one_live_run_at_a_time();
    // One revision: 1 pod at t = 0 that crashes at 4 s (crash_after 4 s from its start), and 2
    // more started at 1 s whose pods are Ready 2 s before their application serves (at 1.3 s,
    // kubelet readiness at once): requests reaching those get the queue-proxy's 502 until
    // 3.3 s; the first pod's crash fails what it holds and what reaches it until it leaves the
    // endpoints. The kubelet would restart it after 10 s, past the run's end.
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 4, timeout: 5s, \
         service_time: {constant: 20ms}, pods: 1, startup: {constant: 300ms}, \
         failure: {ready_before_serving: 2s, crash_after: {constant: 4s}}}]",
        "timeline=[{at: 1s, scale: {revision: hello-00001, pods: 3}}]",
        "traffic=[{revisionName: hello-00001, percent: 100}]",
        "duration=6s",
        "arrivals={poisson: {rate: 100}}",
        "kubernetes.readiness_delay={constant: 0s}",
        "kubernetes.endpoint_removal_delay={constant: 500ms}",
    ];
    let sim = summary(&smoke_with("run", "live-crash-sim", &settings, &[]));
    let live = summary(&smoke_with(
        "live",
        "live-crash-live",
        &settings,
        &["--time-scale", "2"],
    ));
    for v in [&sim, &live] {
        let rev = &v["revisions"]["hello-00001"];
        // The pod of t = 0 crashes at 4 s; the later two at 7.3 s, after the run.
        assert_eq!(rev["pod_crashes"], 1, "{v}");
        assert_eq!(rev["pod_restarts"], 0, "{v}");
        // About a third of 2 s of 100 req/s, plus what the crashed pod got.
        let bad = rev_count(v, "hello-00001", "bad_gateway");
        assert!((30..=160).contains(&bad), "{bad}: {v}");
        assert_eq!(rev["cost"]["peak_pods"], 3, "{v}");
    }
}

#[test]
fn live_crash_loop_keeps_the_route_on_the_ready_revision_and_a_failure_event_applies_at_once() {
    let _live = one_live_run_at_a_time();
    // hello-00002, created at 1 s, crash-loops: never Ready, so the configuration target stays
    // on hello-00001 (its first restart, 10 s after the crash at 1.3 s, is past the run). At
    // 4 s a timeline event makes hello-00001 answer every request with a 500.
    let settings = [
        "revisions=[{name: hello-00001, container_concurrency: 4, timeout: 5s, \
         service_time: {constant: 20ms}, pods: 2}, {name: hello-00002, container_concurrency: 4, \
         timeout: 5s, service_time: {constant: 20ms}, pods: 1, startup: {constant: 300ms}, \
         failure: {crash_loop: true}}]",
        "timeline=[{at: 1s, create_revision: hello-00002}, \
         {at: 4s, failure: {revision: hello-00001, error_rate: 1}}]",
        "traffic=[{latestRevision: true, percent: 100}]",
        "duration=8s",
        "arrivals={poisson: {rate: 50}}",
    ];
    let sim = summary(&smoke_with("run", "live-loop-sim", &settings, &[]));
    let live = summary(&smoke_with(
        "live",
        "live-loop-live",
        &settings,
        &["--time-scale", "2"],
    ));
    for v in [&sim, &live] {
        assert_eq!(rev_count(v, "hello-00002", "arrived"), 0, "{v}");
        assert_eq!(v["revisions"]["hello-00002"]["pod_crashes"], 1, "{v}");
        assert_eq!(v["revisions"]["hello-00002"]["max_ready_pods"], 0, "{v}");
        let arrived = rev_count(v, "hello-00001", "arrived") as f64;
        let errors = rev_count(v, "hello-00001", "app_error") as f64;
        // Half the run, give or take the Poisson arrivals.
        assert!((0.35..0.65).contains(&(errors / arrived)), "{v}");
        assert_eq!(
            rev_count(v, "hello-00001", "served") + rev_count(v, "hello-00001", "app_error"),
            rev_count(v, "hello-00001", "arrived"),
            "{v}"
        );
    }
}
