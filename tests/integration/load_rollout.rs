//! `splitlab load --expect-rollout`: a load run checked against Knative's rollout schedule.
//!
//! `splitlab live` cannot be the far end: it binds its gateway to an ephemeral port inside its
//! own process and drives it with its own load generator, whose request ids its ledger keys
//! on, so an outside `splitlab load` can neither find it nor be counted apart. The stand-in
//! here is a small HTTP server that answers as a Knative ingress during the rollout of
//! `scenarios/knative/hello-rollout.yaml` would: `Knative-Serving-Revision` picked at random
//! with the new revision's share computed *by hand* from serving's rollout.go (rollout-duration
//! 4 s, an instant ingress: minStepSec 1, numSteps 3, stepSize round(99/3) = 33, so 1% from T,
//! 34% from T+1 s, 67% from T+2 s, 100% from T+3 s), not by splitlab's code, so a wrong
//! schedule in splitlab fails here. A third test runs the same manifest's rollout in the
//! simulator and in `splitlab live` and finds the same steps in their `routes.csv`.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use crate::common::{temp_dir, text};
use crate::live::one_live_run_at_a_time;

fn unix_now_s() -> f64 {
    splitlab::live::clock::Clock::unix_now_s()
}

/// The new revision's percent `s` seconds after the rollout started (hand-computed above).
fn new_revision_pct(s: f64) -> u64 {
    match s {
        s if s < 0.0 => 0,
        s if s < 1.0 => 1,
        s if s < 2.0 => 34,
        s if s < 3.0 => 67,
        _ => 100,
    }
}

/// Starts the stand-in ingress whose rollout started at `start_unix_s`; returns its port.
fn start_rolling_backend(start_unix_s: f64, seed: u64) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut s) = conn else { return };
            // One xorshift stream per connection.
            let mut x = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => return,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let pct = new_revision_pct(unix_now_s() - start_unix_s);
                        let rev = if x % 100 < pct {
                            "hello-00002"
                        } else {
                            "hello-00001"
                        };
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nknative-serving-revision: {rev}\r\ncontent-length: 3\r\n\r\nok\n"
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

/// The `splitlab load --expect-rollout` commands of README.md and docs/load.md.
fn documented_commands() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/load.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    docs.lines()
        .chain(readme.lines())
        .filter(|l| l.starts_with("splitlab load ") && l.contains("--expect-rollout"))
        .map(str::to_string)
        .collect()
}

fn split_line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("check ") && l.contains(" split: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_load_run_follows_knatives_rollout_schedule_and_a_wrong_start_fails_the_split_check() {
    let _live = one_live_run_at_a_time();
    let commands = documented_commands();
    assert_eq!(commands.len(), 1, "one in docs/load.md, none in README.md");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("load-rollout");
    std::fs::create_dir_all(dir.join("scenarios/knative")).unwrap();
    std::fs::copy(
        root.join("scenarios/knative/hello-rollout.yaml"),
        dir.join("scenarios/knative/hello-rollout.yaml"),
    )
    .unwrap();
    // The runs, each against its own stand-in whose rollout starts as the run does, all at
    // once: (what, command words after `splitlab`, the start the stand-in uses, exit status)
    let mut runs: Vec<(String, Vec<String>, i32)> = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        // As documented, `--rollout-start now`.
        runs.push((command.clone(), words(command), 0));
        if i == 0 {
            // The same with an RFC 3339 start and a tight slack: still inside every band.
            let t = splitlab::calibrate::timestamp::format_instant(unix_now_s() + 0.5);
            let tight = command.replace(
                "--rollout-start now",
                &format!("--rollout-start {t} --rollout-slack 250ms"),
            );
            runs.push((format!("tight: {tight}"), words(&tight), 0));
            // A start an hour early: the schedule says 100% hello-00002 from the first window.
            let early = command.replace(
                "--rollout-start now",
                &format!("--rollout-start {:.3}", unix_now_s() - 3600.0),
            );
            runs.push((format!("an hour early: {early}"), words(&early), 99));
        }
    }
    let mut children = Vec::new();
    for (n, (what, words, want)) in runs.into_iter().enumerate() {
        let start = words
            .iter()
            .position(|w| w == "--rollout-start")
            .map(|i| words[i + 1].clone())
            .unwrap();
        let stand_in_start = match start.as_str() {
            "now" => unix_now_s(),
            // the hour-early run: the stand-in's rollout really starts now
            t if t.parse::<f64>().is_ok() => unix_now_s(),
            t => t_of(t),
        };
        let port = start_rolling_backend(stand_in_start, n as u64 + 1);
        let words: Vec<String> = words
            .iter()
            .map(|w| w.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")))
            .map(|w| w.replace("out/load-rollout", &format!("out/load-rollout-{n}")))
            .collect();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
            .args(&words[1..])
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push((what, n, want, child));
    }
    for (what, n, want, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{what}\n{stdout}{stderr}");
        let line = split_line(&stdout);
        if want == 0 {
            assert!(
                line.starts_with("check PASS split: 0 of "),
                "{what}: {line}"
            );
        } else {
            // Windows 0-2 see 1%, 34% and 67% of hello-00002 where 100% was expected.
            assert!(line.starts_with("check FAIL split: "), "{what}: {line}");
            assert!(line.contains("outside the band"), "{what}: {line}");
        }
        assert!(
            stderr.contains("expect-rollout: hello-00001 -> hello-00002 over 4s from "),
            "{what}: {stderr}"
        );
        // The programmed step line: every step of the schedule in routes.csv.
        let routes =
            std::fs::read_to_string(dir.join(format!("out/load-rollout-{n}/routes.csv"))).unwrap();
        let new_shares: Vec<&str> = routes
            .lines()
            .filter(|l| l.contains(",hello-00002,"))
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        let wanted: &[&str] = if want == 0 {
            &["1", "34", "67", "100"]
        } else {
            &["100"]
        };
        assert_eq!(new_shares, wanted, "{what}: {routes}");
    }
}

/// Unix seconds of an RFC 3339 time this test wrote.
fn t_of(text: &str) -> f64 {
    splitlab::calibrate::timestamp::parse_instant(text).unwrap()
}

/// Splits a documented command line on spaces (the rollout commands quote nothing).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn bad_rollout_expectations_are_refused_before_sending() {
    let m = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/knative/hello-rollout.yaml"
    );
    let base = [
        "load",
        "--target",
        "http://127.0.0.1:9/",
        "--rate",
        "10",
        "--duration",
        "2s",
        "--check",
        "split",
    ];
    // (extra arguments, fragment of the error)
    let cases: [(&[&str], &str); 5] = [
        (
            &["--expect-rollout", m, "--rollout-start", "now", "--expect", "a=100"],
            "--expect and --expect-rollout: give one",
        ),
        (&["--expect-rollout", m], "needs --rollout-start T"),
        (
            &["--expect-rollout", m, "--rollout-start", "yesterday"],
            "--rollout-start: \"yesterday\" is not a time",
        ),
        (
            &["--expect-rollout", m, "--rollout-start", "2099-01-01T00:00:00Z"],
            "after the run's 2.0 s: the run would see nothing of the rollout",
        ),
        (
            &[
                "--expect-rollout",
                concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/knative/helloworld.yaml"),
                "--rollout-start",
                "now",
            ],
            "status.traffic: no entry with latestRevision: true names a revision other than \"helloworld-go-00002\"",
        ),
    ];
    for (extra, fragment) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        let out = crate::common::splitlab(&args);
        crate::common::assert_clear_error(&out, fragment, &format!("{extra:?}"));
        assert!(
            !text(&out.stdout).contains("sent "),
            "{extra:?}: nothing sent"
        );
    }
}

/// The simulator and `splitlab live`, on a scenario built from the same manifest (the new
/// revision ready at 1.5 s, the ingress programming at once), program the very steps the
/// stand-in above serves and `--expect-rollout` expects: 1%, 34%, 67%, 100% of hello-00002 at
/// T, T+1 s, T+2 s, T+3 s (live on the wall clock, within 100 ms).
#[test]
fn the_simulator_and_live_program_the_schedule_load_expects_for_the_same_manifest() {
    let _live = one_live_run_at_a_time();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("load-rollout-sim");
    std::fs::create_dir_all(dir.join("knative")).unwrap();
    std::fs::copy(
        root.join("scenarios/knative/hello-rollout.yaml"),
        dir.join("knative/hello-rollout.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        "name: rollout-sim\nduration: 5s\nseed: 1\nservice:\n  manifest: knative/hello-rollout.yaml\n\
         kubernetes:\n  readiness_delay: {constant: 0s}\ningress:\n  programming_delay: {constant: 0s}\n\
         revisions:\n  - {name: hello-00001, service_time: {constant: 1ms}, pods: 2}\n\
         \x20 - {name: hello-00002, service_time: {constant: 1ms}, pods: 2, startup: {constant: 500ms}}\n\
         timeline:\n  - {at: 1s, create_revision: hello-00002}\narrivals:\n  constant: {rate: 100}\n",
    )
    .unwrap();
    // T = 1.5 s: created at 1 s, started and ready 500 ms later.
    let want: Vec<(f64, u64)> = [0.0, 1.0, 2.0, 3.0]
        .iter()
        .map(|s| (1.5 + s, new_revision_pct(*s)))
        .collect();
    // (command, tolerance in s)
    for (command, tolerance) in [("run", 0.0), ("live", 0.1)] {
        let out_dir = dir.join(format!("out-{command}"));
        let out = crate::common::splitlab(&[
            command,
            dir.join("s.yaml").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        let routes = std::fs::read_to_string(out_dir.join("routes.csv")).unwrap();
        let steps: Vec<(f64, u64)> = routes
            .lines()
            .filter(|l| l.contains(",hello-00002,"))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].parse().unwrap(), f[3].parse().unwrap())
            })
            .collect();
        assert_eq!(steps.len(), want.len(), "{command}: {routes}");
        for ((t, pct), (want_t, want_pct)) in steps.iter().zip(&want) {
            assert_eq!(pct, want_pct, "{command}: {routes}");
            assert!(
                (t - want_t).abs() <= tolerance && *t >= *want_t,
                "{command}: {t} vs {want_t}: {routes}"
            );
        }
    }
}

/// The `live --listen` scenario and command of docs/load.md ("Against `splitlab live`").
fn documented_live_rollout() -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/load.md")).unwrap();
    let section = &docs[docs.find("**Against `splitlab live`.**").unwrap()..];
    // Its own info string, so the targets file stays the first plain ```yaml block.
    let fence = "```yaml live-rollout.yaml\n";
    let yaml_at = section.find(fence).unwrap() + fence.len();
    let yaml = &section[yaml_at..yaml_at + section[yaml_at..].find("```").unwrap()];
    let command = section
        .lines()
        .find(|l| l.starts_with("splitlab live "))
        .unwrap();
    (yaml.to_string(), command.to_string())
}

#[test]
fn load_expect_rollout_against_splitlab_live_passes_and_a_wrong_manifest_fails() {
    let _live = one_live_run_at_a_time();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("load-rollout-live");
    std::fs::create_dir_all(dir.join("scenarios/knative")).unwrap();
    let manifest =
        std::fs::read_to_string(root.join("scenarios/knative/hello-rollout.yaml")).unwrap();
    std::fs::write(dir.join("scenarios/knative/hello-rollout.yaml"), &manifest).unwrap();
    // The same Service with another rollout-duration: another schedule.
    let wrong = manifest.replace("rollout-duration: \"4s\"", "rollout-duration: \"8s\"");
    assert_ne!(wrong, manifest);
    std::fs::write(dir.join("scenarios/knative/hello-rollout-8s.yaml"), wrong).unwrap();
    let (yaml, command) = documented_live_rollout();
    std::fs::write(dir.join("live-rollout.yaml"), yaml).unwrap();
    let live_words: Vec<String> = words(&command.replace("127.0.0.1:8081", "127.0.0.1:0"));
    let mut live = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(&live_words[1..])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `live: gateway listening on http://ADDR; time zero T0` on stderr.
    let mut stderr = std::io::BufReader::new(live.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("live: gateway listening on http://") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "live ended before listening");
    }
    let rest = line.trim()["live: gateway listening on http://".len()..].to_string();
    let (addr, zero) = rest.split_once("; time zero ").unwrap();
    let addr = addr.to_string();
    let zero = t_of(zero);
    let drain = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The rollout starts at time zero + 1.5 s (created at 1 s, ready 500 ms later): the loads
    // start with it.
    let t = zero + 1.5;
    let wait = t - 0.05 - unix_now_s();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let rollout_start = splitlab::calibrate::timestamp::format_instant(t);
    // (manifest, exit status, check line)
    let runs = [
        (
            "scenarios/knative/hello-rollout.yaml",
            0,
            "check PASS split: 0 of ",
        ),
        (
            "scenarios/knative/hello-rollout-8s.yaml",
            99,
            "check FAIL split: ",
        ),
    ];
    let children: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, (manifest, _, _))| {
            let target = format!("http://{addr}/");
            let out = format!("out/outside-{i}");
            std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
                .args([
                    "load",
                    "--target",
                    &target,
                    "--host",
                    "hello.default.example.com",
                    "--rate",
                    "100",
                    "--duration",
                    "4s",
                    "--expect-rollout",
                    manifest,
                    "--rollout-start",
                    &rollout_start,
                    "--check",
                    "split",
                    "--out",
                    &out,
                ])
                .current_dir(&dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile a 600 KB chunked POST from outside is served too (bodies stream through the
    // gateway to the pod).
    let chunk = "x".repeat(60_000);
    let mut post = String::from(
        "POST / HTTP/1.1\r\nHost: hello.default.example.com\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
    );
    for _ in 0..10 {
        post.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    post.push_str("0\r\n\r\n");
    let mut s = std::net::TcpStream::connect(addr.as_str()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(post.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut outside_sent = 0;
    for (i, ((manifest, want, check), child)) in runs.iter().zip(children).enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(*want),
            "{manifest}\n{stdout}{}",
            text(&out.stderr)
        );
        let line = split_line(&stdout);
        assert!(line.starts_with(check), "{manifest}: {line}\n{stdout}");
        let summary = crate::live::summary(&dir.join(format!("out/outside-{i}")));
        outside_sent += crate::live::count(&summary, "arrived");
    }
    let status = live.wait().unwrap();
    let live_stderr = drain.join().unwrap();
    assert!(status.success(), "{live_stderr}");
    // The live run's own books balance, its own arrivals are its own (100/s for 8 s), and
    // the outside requests are counted apart, every one served.
    let v = crate::live::summary(&dir.join("out/live-rollout"));
    crate::common::assert_balanced(&v);
    assert_eq!(crate::live::count(&v, "arrived"), 800, "{v}");
    let outside = &v["outside_requests"];
    assert_eq!(outside["requests"].as_u64(), Some(outside_sent + 1), "{v}");
    assert_eq!(outside["served"], outside["requests"], "{v}");
    assert_eq!(outside["statuses"]["200"], outside["requests"], "{v}");
}
