//! `splitlab calibrate`: from the Prometheus dumps in tests/fixtures/prometheus-dump (a
//! Knative v1.18 one and an OpenTelemetry one, written by its generate.py with known traffic
//! and service times), then `splitlab run` on the scenario it wrote, whose measured rate, split
//! and latency percentiles must match what the dump says; `--prometheus URL` against a small
//! fake Prometheus on 127.0.0.1 serving the same answers; the docs' curl recipe against it;
//! and the errors a user meets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::{assert_clear_error, splitlab, temp_dir, text};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/prometheus-dump").join(name)
}

fn read_json(path: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `calibrate` with `args` then `run` on what it wrote; returns the scenario text and the
/// run's summary.json.
fn calibrate_and_run(label: &str, args: &[&str]) -> (String, serde_json::Value) {
    let dir = temp_dir(&format!("calibrate-{label}"));
    let scenario = dir.join("calibrated.yaml");
    let scenario_s = scenario.display().to_string();
    let mut all: Vec<&str> = vec!["calibrate"];
    all.extend(args);
    all.extend(["--out", &scenario_s]);
    let o = splitlab(&all);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains(&format!("wrote: {scenario_s}")), "{stdout}");
    let yaml = std::fs::read_to_string(&scenario).expect("the scenario is written");
    let out = dir.join("run").display().to_string();
    let o = splitlab(&["run", &scenario_s, "--out", &out]);
    assert!(o.status.success(), "{}\n{yaml}", text(&o.stderr));
    (yaml, read_json(&dir.join("run/summary.json")))
}

/// The run agrees with what the dump says (expected.json, computed by generate.py): the mean
/// request rate, each revision's share of requests, and its latency p50/p99 against the
/// dump's histogram_quantile.
fn assert_run_matches_dump(name: &str, yaml: &str, summary: &serde_json::Value) {
    let expected = read_json(&fixture(name).join("expected.json"));
    let duration = expected["duration_s"].as_f64().expect("duration_s");
    let arrived = summary["requests"]["arrived"].as_f64().expect("arrived");
    let want_rate = expected["mean_rate_per_s"].as_f64().expect("rate");
    // Poisson arrivals: 3% is more than four standard deviations at these counts
    let rate = arrived / duration;
    assert!(
        (rate - want_rate).abs() <= 0.03 * want_rate,
        "{name}: measured {rate} req/s, the dump says {want_rate}"
    );
    let revisions = expected["revisions"].as_object().expect("revisions");
    for (rev, want) in revisions {
        let got = &summary["revisions"][rev.as_str()];
        let routed = got["routed"].as_f64().expect("routed");
        let share = routed / arrived;
        let want_share = want["share"].as_f64().expect("share");
        assert!(
            (share - want_share).abs() <= 0.015,
            "{name} {rev}: share {share}, the dump says {want_share}"
        );
        for (q, tol) in [("p50", 0.05), ("p99", 0.08)] {
            let got = got["latency_ms"][q].as_f64().expect("latency");
            let want = want[format!("dump_{q}_ms")].as_f64().expect("quantile");
            assert!(
                (got - want).abs() <= tol * want,
                "{name} {rev}: {q} {got} ms, the dump says {want} ms"
            );
        }
    }
    for (tag, want) in expected["tags"].as_object().expect("tags") {
        let line = yaml
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{tag}: ")))
            .unwrap_or_else(|| panic!("{name}: no share for tag {tag}\n{yaml}"));
        let share: f64 = line
            .split(':')
            .nth(1)
            .expect("value")
            .trim()
            .parse()
            .expect("share");
        let want = want.as_f64().expect("share");
        assert!(
            (share - want).abs() <= 0.002,
            "{name}: tag {tag} share {share}, the dump says {want}"
        );
    }
}

#[test]
fn a_v118_dump_calibrates_a_scenario_that_runs_as_the_dump_says() {
    let dump = fixture("v118").display().to_string();
    let (yaml, summary) =
        calibrate_and_run("v118", &["--prometheus-dump", &dump, "--service", "hello"]);
    assert!(
        yaml.contains("(Knative v1.18 (OpenCensus) names)"),
        "{yaml}"
    );
    // the scale-ups: requested to Ready in 30 s (hello-00001) and 15 s (hello-00002)
    assert!(yaml.contains("    startup: {constant: 30s}"), "{yaml}");
    assert!(yaml.contains("    startup: {constant: 15s}"), "{yaml}");
    assert!(yaml.contains("    pods: 3   # [v118-pods-ready]"), "{yaml}");
    // the rate step is in the schedule: 21 req/s before, 61 after
    assert!(
        yaml.contains("rate: 20.") || yaml.contains("rate: 21."),
        "{yaml}"
    );
    assert!(
        yaml.contains("rate: 60.") || yaml.contains("rate: 61."),
        "{yaml}"
    );
    assert_run_matches_dump("v118", &yaml, &summary);
}

/// With `--manifests` (a kubectl List and ConfigMaps) and a step coarser than the dump's: the
/// scenario points at the files by paths relative to itself, and still runs as the dump says.
#[test]
fn manifests_and_a_coarser_step_keep_the_dump_s_load() {
    let dump = fixture("v118").display().to_string();
    let list = root()
        .join("scenarios/knative/hello-list.yaml")
        .display()
        .to_string();
    let cm = root()
        .join("scenarios/knative/config-autoscaler.yaml")
        .display()
        .to_string();
    let (yaml, summary) = calibrate_and_run(
        "manifests",
        &[
            "--prometheus-dump",
            &dump,
            "--service",
            "hello",
            "--step",
            "30s",
            "--manifests",
            &list,
            &cm,
        ],
    );
    assert!(yaml.contains("step 30s"), "{yaml}");
    assert!(
        yaml.contains("scenarios/knative/hello-list.yaml   # --manifests"),
        "{yaml}"
    );
    assert!(
        yaml.contains("scenarios/knative/config-autoscaler.yaml\n"),
        "{yaml}"
    );
    // one schedule point per 30 s bin at most (20 bins)
    let points = yaml
        .lines()
        .filter(|l| l.contains("{at: ") && l.contains("rate: "))
        .count();
    assert!((2..=20).contains(&points), "{points} points\n{yaml}");
    assert_run_matches_dump("v118", &yaml, &summary);
}

#[test]
fn an_opentelemetry_dump_calibrates_a_scenario_that_runs_as_the_dump_says() {
    let dump = fixture("otel").display().to_string();
    let (yaml, summary) = calibrate_and_run(
        "otel",
        &[
            "--prometheus-dump",
            &dump,
            "--service",
            "hello",
            "--namespace",
            "default",
        ],
    );
    assert!(
        yaml.contains("(Knative v1.19+ (OpenTelemetry) names)"),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "# note: no otel-pods-ready.json in the dump; pod counts keep the scenario defaults"
        ),
        "{yaml}"
    );
    assert_run_matches_dump("otel", &yaml, &summary);
}

/// A fake Prometheus: answers `/api/v1/query_range` from a dump directory, matching the query
/// text against its `<key>.query` files (an empty matrix for any other query), and refuses a
/// range other than `want_range` (start, end, step in seconds) with Prometheus' error answer.
struct FakePrometheus {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakePrometheus {
    fn start(dump: &Path, want_range: (f64, f64, f64)) -> Self {
        let mut answers = BTreeMap::new();
        for entry in std::fs::read_dir(dump).expect("dump dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "query") {
                let query = std::fs::read_to_string(&path)
                    .expect("query")
                    .trim()
                    .to_string();
                let body = std::fs::read_to_string(path.with_extension("json")).expect("json");
                answers.insert(query, body);
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if !serve(stream, &answers, want_range, &log) {
                    break;
                }
            }
        });
        FakePrometheus {
            port,
            seen,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakePrometheus {
    fn drop(&mut self) {
        // The server stops at /quit.
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.write_all(b"GET /quit HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one connection; `false` to stop.
fn serve(
    stream: TcpStream,
    answers: &BTreeMap<String, String>,
    want: (f64, f64, f64),
    seen: &Mutex<Vec<String>>,
) -> bool {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return true;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    if target == "/quit" {
        return false;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let instant = |k: &str| {
        params
            .get(k)
            .and_then(|v| splitlab::calibrate::timestamp::parse_instant(v).ok())
    };
    let step = params.get("step").and_then(|s| {
        s.parse::<f64>().ok().or_else(|| {
            splitlab::routing::duration::parse_duration(s)
                .ok()
                .map(|ns| ns as f64 / 1e9)
        })
    });
    let (status, body) = if path != "/api/v1/query_range" {
        (404, "404 page not found\n".to_string())
    } else if (instant("start"), instant("end"), step) != (Some(want.0), Some(want.1), Some(want.2))
    {
        let message = format!(
            "unexpected range {:?}",
            (params.get("start"), params.get("end"), params.get("step"))
        );
        let body =
            serde_json::json!({"status": "error", "errorType": "bad_data", "error": message});
        (400, body.to_string())
    } else {
        let q = params.get("query").cloned().unwrap_or_default();
        seen.lock().expect("log").push(q.clone());
        let empty = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        (
            200,
            answers
                .get(&q)
                .cloned()
                .unwrap_or_else(|| empty.to_string()),
        )
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    true
}

/// Percent-decoding of a query-string value (`+` is a space, as in forms).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scenario's lines that are not comments: what `run` reads.
fn body_lines(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect()
}

const V118_RANGE: (f64, f64, f64) = (1_796_205_600.0, 1_796_206_200.0, 15.0);

#[test]
fn a_prometheus_url_gives_the_scenario_its_dump_gives() {
    let fake = FakePrometheus::start(&fixture("v118"), V118_RANGE);
    let dir = temp_dir("calibrate-url");
    let out = dir.join("from-url.yaml").display().to_string();
    let o = splitlab(&[
        "calibrate",
        "--prometheus",
        &fake.url(),
        "--service",
        "hello",
        "--from",
        "2026-12-02T10:00:00Z",
        "--to",
        "1796206200",
        "--step",
        "15s",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let from_url = std::fs::read_to_string(&out).expect("written");
    assert!(
        from_url.contains(&format!("from Prometheus at {}", fake.url())),
        "{from_url}"
    );
    // the v1.18 queries were asked and answered; the OTel request query was not needed
    let seen = fake.seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen[0].starts_with("sum by (revision_name, route_tag) (rate(revision_request_count{"),
        "{seen:?}"
    );

    let dump = fixture("v118").display().to_string();
    let o = splitlab(&[
        "calibrate",
        "--prometheus-dump",
        &dump,
        "--service",
        "hello",
        "--out",
        &dir.join("from-dump.yaml").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let from_dump = std::fs::read_to_string(dir.join("from-dump.yaml")).expect("written");
    assert_eq!(body_lines(&from_url), body_lines(&from_dump));

    // a range the server refuses: Prometheus' own message, naming the URL
    let o = splitlab(&[
        "calibrate",
        "--prometheus",
        &fake.url(),
        "--service",
        "hello",
        "--from",
        "1796205000",
        "--to",
        "1796206200",
        "--out",
        &out,
    ]);
    assert_clear_error(
        &o,
        "status: Prometheus answered \"error\": bad_data: unexpected range",
        "a refused range",
    );
    assert_clear_error(
        &o,
        &format!("Prometheus at {}/api/v1/query_range", fake.url()),
        "a refused range",
    );
}

/// docs/calibrate.md's curl recipe, run as written against the fake Prometheus (with its
/// variables set in the environment), saves a dump that calibrates to the same scenario.
#[test]
fn the_docs_curl_recipe_saves_a_dump_calibrate_reads() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no curl on PATH");
        return;
    }
    let doc = std::fs::read_to_string(root().join("docs/calibrate.md")).expect("docs/calibrate.md");
    let start = doc.find("```sh\n# curl recipe").expect("the recipe block") + "```sh\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let recipe = &doc[start..end];
    let fake = FakePrometheus::start(&fixture("v118"), V118_RANGE);
    let dir = temp_dir("calibrate-curl");
    std::fs::create_dir_all(&dir).expect("dir");
    let dump = dir.join("dump");
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(recipe)
        .env("PROM", fake.url())
        .env("NS", "default")
        .env("SVC", "hello")
        .env("START", "2026-12-02T10:00:00Z")
        .env("END", "2026-12-02T10:10:00Z")
        .env("STEP", "15s")
        .env("DUMP", &dump)
        .output()
        .expect("bash runs");
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    // all ten queries were sent, each matching one calibrate runs
    assert_eq!(fake.seen.lock().expect("log").len(), 10);
    for key in [
        "v118-requests",
        "v118-latency",
        "v118-pods-ready",
        "v118-pods-requested",
    ] {
        let saved = std::fs::read_to_string(dump.join(format!("{key}.query"))).expect("query");
        let fixture_query =
            std::fs::read_to_string(fixture("v118").join(format!("{key}.query"))).expect("query");
        assert_eq!(saved.trim(), fixture_query.trim(), "{key}");
    }
    let a = dir.join("a.yaml").display().to_string();
    let b = dir.join("b.yaml").display().to_string();
    let dump_s = dump.display().to_string();
    let fixture_s = fixture("v118").display().to_string();
    for (d, out) in [(&dump_s, &a), (&fixture_s, &b)] {
        let o = splitlab(&[
            "calibrate",
            "--prometheus-dump",
            d,
            "--service",
            "hello",
            "--out",
            out,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let read = |p: &str| std::fs::read_to_string(p).expect("written");
    assert_eq!(body_lines(&read(&a)), body_lines(&read(&b)));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = temp_dir("calibrate-errors");
    std::fs::create_dir_all(dir.join("empty")).expect("dir");
    // a dump whose latency file is broken at one value
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).expect("dir");
    for entry in std::fs::read_dir(fixture("v118")).expect("fixture") {
        let p = entry.expect("entry").path();
        std::fs::copy(&p, broken.join(p.file_name().expect("name"))).expect("copy");
    }
    let latency = broken.join("v118-latency.json");
    let t = std::fs::read_to_string(&latency).expect("read");
    assert!(t.contains(r#"[1796205615,""#));
    std::fs::write(
        &latency,
        t.replacen(r#"[1796205615,""#, r#"[1796205615,"x"#, 1),
    )
    .expect("write");
    let bad_value = dir.join("bad-value");
    std::fs::create_dir_all(&bad_value).expect("dir");
    std::fs::write(
        bad_value.join("v118-requests.json"),
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"revision_name":"a"},"values":[[1,"1"],[2,"one"]]}]}}"#,
    )
    .expect("write");
    let out = dir.join("s.yaml").display().to_string();
    let empty = dir.join("empty").display().to_string();
    let bad_value_s = bad_value.display().to_string();
    let v118 = fixture("v118").display().to_string();
    // (arguments, error fragment)
    let cases: Vec<(Vec<&str>, String)> = vec![
        // nothing in the dump: which queries were tried and what they returned
        (
            vec!["--prometheus-dump", &empty, "--service", "hello"],
            "no request series for Service default/hello; tried:".to_string(),
        ),
        (
            vec!["--prometheus-dump", &empty, "--service", "hello"],
            "no v118-requests.json in the dump".to_string(),
        ),
        // a bad value: the file and its JSON path
        (
            vec!["--prometheus-dump", &bad_value_s, "--service", "hello"],
            format!("{bad_value_s}/v118-requests.json: data.result[0].values[1][1]: \"one\" is not a sample value"),
        ),
        // times and steps that do not parse or do not fit
        (
            vec!["--prometheus-dump", &v118, "--service", "hello", "--from", "yesterday"],
            "--from: \"yesterday\" is not a time; allowed: RFC 3339".to_string(),
        ),
        (
            vec!["--prometheus-dump", &v118, "--service", "hello", "--from", "1796206200", "--to", "1796205600"],
            "--to must be after --from".to_string(),
        ),
        (
            vec!["--prometheus-dump", &v118, "--service", "hello", "--step", "0s"],
            "--step: \"0s\" must be above 0".to_string(),
        ),
        // TLS is refused with what to do instead
        (
            vec!["--prometheus", "https://prom:9090", "--service", "hello"],
            "is not an http URL; allowed: http://HOST[:PORT][/PATH] (https is not supported".to_string(),
        ),
        // nothing listens there
        (
            vec!["--prometheus", "http://127.0.0.1:1", "--service", "hello", "--from", "0", "--to", "60"],
            "GET http://127.0.0.1:1/api/v1/query_range?query=".to_string(),
        ),
        // a manifest file the loader cannot use
        (
            vec!["--prometheus-dump", &v118, "--service", "hello", "--manifests", "Cargo.toml"],
            "Cargo.toml".to_string(),
        ),
    ];
    for (args, fragment) in cases {
        let mut all = vec!["calibrate"];
        all.extend(args.iter().copied());
        all.extend(["--out", &out]);
        let o = splitlab(&all);
        assert_clear_error(&o, &fragment, &args.join(" "));
    }
    assert!(!Path::new(&out).exists(), "nothing is written on an error");
    // the latency file with a broken series is named with its path
    let broken_s = broken.display().to_string();
    let o = splitlab(&[
        "calibrate",
        "--prometheus-dump",
        &broken_s,
        "--service",
        "hello",
        "--out",
        &out,
    ]);
    assert_clear_error(
        &o,
        &format!("{broken_s}/v118-latency.json: data.result[0].values[1][1]: \"x"),
        "a broken latency file",
    );
}

/// docs/calibrate.md's "Calibrating from Prometheus": its commands, run as written (`--out` and the run's
/// output into a temporary directory), write a scenario that runs.
#[test]
fn readme_calibrate_commands_run() {
    let readme =
        std::fs::read_to_string(root().join("docs/calibrate.md")).expect("docs/calibrate.md");
    let section = readme
        .split("## Calibrating from Prometheus")
        .nth(1)
        .expect("the docs/calibrate.md section");
    let commands: Vec<&str> = section
        .lines()
        .take_while(|l| !l.starts_with("## ") && !l.starts_with("### "))
        .filter_map(|l| l.strip_prefix("$ splitlab "))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let dir = temp_dir("calibrate-readme");
    std::fs::create_dir_all(&dir).expect("dir");
    let scenario = dir.join("calibrated-hello.yaml").display().to_string();
    let run_out = dir.join("run").display().to_string();
    for command in commands {
        let args: Vec<String> = command
            .split_whitespace()
            .map(|a| match a {
                "out/calibrated-hello.yaml" => scenario.clone(),
                other => other.to_string(),
            })
            .collect();
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if args[0] == "run" {
            args.extend(["--out", &run_out]);
        }
        let o = splitlab(&args);
        assert!(o.status.success(), "{command}: {}", text(&o.stderr));
    }
    let summary = read_json(&dir.join("run/summary.json"));
    assert!(summary["requests"]["arrived"].as_u64().expect("arrived") > 20_000);
}

/// docs/calibrate.md's example: the command as written prints what the docs show.
#[test]
fn docs_calibrate_example_prints_what_the_docs_show() {
    let doc = std::fs::read_to_string(root().join("docs/calibrate.md")).expect("docs/calibrate.md");
    let start = doc
        .find("```console\n$ splitlab calibrate ")
        .expect("the example")
        + "```console\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let mut lines = doc[start..end].lines();
    let command = lines
        .next()
        .expect("the command")
        .trim_start_matches("$ splitlab ");
    let shown: Vec<&str> = lines.collect();
    let dir = temp_dir("calibrate-docs");
    std::fs::create_dir_all(&dir).expect("dir");
    let scenario = dir.join("calibrated-hello.yaml").display().to_string();
    let args: Vec<String> = command
        .split_whitespace()
        .map(|a| {
            if a == "out/calibrated-hello.yaml" {
                scenario.clone()
            } else {
                a.to_string()
            }
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = splitlab(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let printed = text(&o.stdout).replace(&scenario, "out/calibrated-hello.yaml");
    assert_eq!(printed.lines().collect::<Vec<_>>(), shown);
}
