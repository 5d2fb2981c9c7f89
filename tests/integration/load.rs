//! `splitlab load` for CI and real clusters, on loopback: `--check` (each check passing and
//! failing, exit status 99), a run in which nothing succeeded (exit 1), headers, method and
//! body, a targets file, `Knative-Serving-Tag` routing through `splitlab gateway`,
//! `--results` (also from a killed run), `latency.hgrm` and `histograms.json`, and the bounds
//! on `--schedule`, `--connections` and `--out`.
//! Every server binds 127.0.0.1; every run is bounded in time.

use std::io::{BufRead, BufReader, Read, Write};

use crate::common::{assert_balanced, assert_clear_error, splitlab, temp_dir, text};
use crate::live::{
    count, dead_port, one_live_run_at_a_time, start_backend_saying, start_gateway, summary,
};

fn load(args: &[&str]) -> std::process::Output {
    let mut all = vec!["load"];
    all.extend(args);
    splitlab(&all)
}

fn check_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("check ")).collect()
}

#[test]
fn checks_pass_with_exit_0_and_any_failure_exits_99() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let out_dir = temp_dir("load-checks");
    let out_s = out_dir.to_str().unwrap();
    let base = [
        "--target",
        &target,
        "--rate",
        "200",
        "--duration",
        "1s",
        "--classify",
        "body:Hello v1=v1",
        "--out",
        out_s,
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        load(&a)
    };
    let out = with(&[
        "--expect",
        "v1=100",
        "--check",
        "error_rate<0.01",
        "--check",
        "p99_ms<5000",
        "--check",
        "split",
        "--check",
        "status.5xx==0",
        "--check",
        "status.200==200",
        "--check",
        "v1.error_rate==0",
        "--check",
        "v1.p50_ms<5000",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines = check_lines(&stdout);
    assert_eq!(
        lines,
        [
            "check PASS error_rate<0.01: 0.0000",
            lines[1],
            lines[2],
            "check PASS status.5xx==0: 0",
            "check PASS status.200==200: 200",
            "check PASS v1.error_rate==0: 0.0000",
            lines[6],
        ],
        "{stdout}"
    );
    assert!(lines[1].starts_with("check PASS p99_ms<5000: "), "{stdout}");
    assert!(lines[2].starts_with("check PASS split: 0 of "), "{stdout}");
    assert!(
        lines[6].starts_with("check PASS v1.p50_ms<5000: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("failures: none of 200 requests"),
        "{stdout}"
    );
    // Each kind of check failing: the run still writes its outputs, and exits 99.
    let out = with(&[
        "--expect",
        "v1=50,v2=50",
        "--check",
        "p99_ms<0.001",
        "--check",
        "split",
        "--check",
        "status.200<1",
        "--check",
        "v2.error_rate<0.5",
        "--check",
        "error_rate<0.01",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}{}", text(&out.stderr));
    let lines = check_lines(&stdout);
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].starts_with("check FAIL p99_ms<0.001: "),
        "{stdout}"
    );
    // All of v1 against 50/50: both labels outside their band.
    assert!(lines[1].starts_with("check FAIL split: "), "{stdout}");
    assert!(lines[1].contains("outside the band"), "{stdout}");
    assert_eq!(lines[2], "check FAIL status.200<1: 200", "{stdout}");
    // v2 got nothing: no error rate to judge, which fails.
    assert_eq!(
        lines[3], "check FAIL v2.error_rate<0.5: no value",
        "{stdout}"
    );
    assert_eq!(lines[4], "check PASS error_rate<0.01: 0.0000", "{stdout}");
    assert!(text(&out.stderr).contains("4 of 5 checks failed"));
    assert_balanced(&summary(&out_dir));
    // A label the run cannot report, and a bad expression, are refused before any traffic.
    let out = with(&["--check", "v9.p99_ms<1"]);
    assert_clear_error(
        &out,
        "--check \"v9.p99_ms<1\": no label \"v9\" in this run; labels: v1, other",
        "unknown label",
    );
    let out = with(&["--check", "p99<1"]);
    assert_clear_error(&out, "unknown subject \"p99\"", "bad subject");
    let out = with(&["--check", "split"]);
    assert_clear_error(
        &out,
        "--check split: needs the programmed split",
        "no expect",
    );
}

/// Without labels (a plain target: no Knative revision header, no --classify), every
/// response is unlabelled; the run's overall latency is still every served request's, so
/// `--check p99_ms<...` has a value to judge.
#[test]
fn a_latency_check_judges_a_run_without_labels() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let out_dir = temp_dir("load-check-unlabelled");
    let out = load(&[
        "--target",
        &target,
        "--rate",
        "100",
        "--duration",
        "1s",
        "--out",
        out_dir.to_str().unwrap(),
        "--check",
        "p99_ms<5000",
        "--check",
        "p99_ms<0.001",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}{}", text(&out.stderr));
    let lines = check_lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("check PASS p99_ms<5000: "), "{stdout}");
    assert!(
        lines[1].starts_with("check FAIL p99_ms<0.001: "),
        "{stdout}"
    );
    assert!(!stdout.contains("no value"), "{stdout}");
    let p99: f64 = lines[0]["check PASS p99_ms<5000: ".len()..]
        .parse()
        .expect("the check prints the p99 in ms");
    assert!(p99 > 0.0 && p99 < 5000.0, "{p99}");
    assert_balanced(&summary(&out_dir));
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn a_run_where_nothing_succeeded_exits_1_and_names_the_causes() {
    let _live = one_live_run_at_a_time();
    let out_dir = temp_dir("load-nothing");
    let target = format!("http://127.0.0.1:{}/", dead_port());
    let out = load(&[
        "--target",
        &target,
        "--rate",
        "100",
        "--duration",
        "1s",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("failures: 100 of 100 requests (100 × connect: connection refused)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: no request succeeded (100 requests); failures: 100 of 100"),
        "{stderr}"
    );
    // The outputs are written all the same.
    assert_eq!(count(&summary(&out_dir), "errors"), 100);
    // The failures reached no revision: timeseries.csv counts them in each window's row
    // without one, and the outcomes chart draws them (it was empty).
    let ts = std::fs::read_to_string(out_dir.join("timeseries.csv")).expect("timeseries.csv");
    let header: Vec<&str> = ts.lines().next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let errors: u64 = ts
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[col("revision")].is_empty())
        .map(|f| f[col("errors")].parse::<u64>().expect("errors"))
        .sum();
    assert_eq!(errors, 100, "{ts}");
    let outcomes = std::fs::read_to_string(out_dir.join("outcomes.svg")).expect("outcomes.svg");
    assert!(
        outcomes.contains("error: no route, connection"),
        "the errors' layer"
    );
}

/// A backend that answers `METHOD BODY` (the request's method and body) to each request.
fn start_echo_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let method = request_line.split(' ').next().unwrap_or("").to_string();
                    let mut length = 0usize;
                    let mut tag = String::from("-");
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (name, value) = h.split_once(':').unwrap_or((h, ""));
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "x-tag" => tag = value.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let reply = format!("{method} {} {tag}\n", String::from_utf8_lossy(&body));
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if writer.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn method_body_and_headers_reach_the_server_and_a_targets_file_splits_by_weight() {
    let _live = one_live_run_at_a_time();
    let port = start_echo_backend();
    let dir = temp_dir("load-targets");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    // --method, --body @FILE and --header on a single target.
    std::fs::write(dir.join("payload.txt"), "hello-body").unwrap();
    let body_arg = format!("@{}", dir.join("payload.txt").display());
    let out_dir = dir.join("one");
    let out = load(&[
        "--target",
        &url,
        "--method",
        "post",
        "--body",
        &body_arg,
        "--header",
        "X-Tag: cli",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--classify",
        "body:^POST hello-body cli=posted",
        "--check",
        "posted.served==100",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // A targets file: weights 3:1, each its own method, headers and body; the command line's
    // --header is the default a target's own header replaces.
    let targets = dir.join("targets.yaml");
    std::fs::write(
        &targets,
        format!(
            "targets:\n\
             \x20 - name: main\n    url: {url}\n    weight: 3\n\
             \x20 - name: tagged\n    url: {url}\n    method: PUT\n    headers: {{X-Tag: v2}}\n    body_file: payload.txt\n"
        ),
    )
    .unwrap();
    let out_dir = dir.join("two");
    let results = dir.join("results.jsonl");
    let out = load(&[
        "--targets",
        targets.to_str().unwrap(),
        "--header",
        "X-Tag: cli",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--classify",
        "body:^GET  cli=plain,^PUT hello-body v2=put",
        "--check",
        "main.served==150",
        "--check",
        "tagged.served==50",
        "--check",
        "plain.served==150",
        "--check",
        "put.served==50",
        "--check",
        "tagged.status.2xx==50",
        "--results",
        results.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(check_lines(&stdout).len(), 5, "{stdout}");
    // Per-target figures in load.json.
    let load_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load.json")).unwrap()).unwrap();
    assert_eq!(load_json["targets"]["main"]["requests"], 150, "{load_json}");
    assert_eq!(load_json["targets"]["tagged"]["served"], 50, "{load_json}");
    // --results: one line per request, with its target and label.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 200);
    let tagged: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["target"] == "tagged").collect();
    assert_eq!(tagged.len(), 50);
    assert!(tagged
        .iter()
        .all(|l| l["label"] == "put" && l["status"] == 200 && l["error"].is_null()));
    assert!(lines.iter().all(|l| l["latency_ms"].as_f64().unwrap() > 0.0
        && (0.0..1.0).contains(&l["intended_s"].as_f64().unwrap())));
    // A bad targets file is named by file, line and field.
    std::fs::write(
        &targets,
        "targets:\n  - name: main\n    url: ftp://127.0.0.1/\n",
    )
    .unwrap();
    let out = load(&[
        "--targets",
        targets.to_str().unwrap(),
        "--rate",
        "1",
        "--duration",
        "1s",
    ]);
    assert_clear_error(
        &out,
        "targets.yaml:3:10: targets[0].url: \"ftp://127.0.0.1/\": allowed: http[s]://HOST[:PORT][/PATH]",
        "bad url",
    );
    // A bad --header is refused.
    let out = load(&[
        "--target",
        &url,
        "--rate",
        "1",
        "--duration",
        "1s",
        "--header",
        "X-Tag",
    ]);
    assert_clear_error(
        &out,
        "--header \"X-Tag\": expected 'NAME: VALUE'",
        "bad header",
    );
}

#[test]
fn a_knative_serving_tag_header_reaches_the_tags_revision_through_the_gateway() {
    let _live = one_live_run_at_a_time();
    let v1 = start_backend_saying("Hello v1!\n");
    let v2 = start_backend_saying("Hello v2!\n");
    let dir = temp_dir("load-tag-header");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "service: {{name: hello, namespace: default, domain: example.com, tag_header_routing: true}}\n\
             traffic:\n  - {{revisionName: v1, percent: 100}}\n  - {{revisionName: v2, percent: 0, tag: candidate}}\n\
             backends:\n  v1: [http://127.0.0.1:{v1}]\n  v2: [http://127.0.0.1:{v2}]\n"
        ),
    )
    .unwrap();
    let (mut gw, port) = start_gateway(&config);
    let targets = dir.join("targets.yaml");
    std::fs::write(
        &targets,
        format!(
            "targets:\n\
             \x20 - name: main\n    url: http://127.0.0.1:{port}/\n    weight: 3\n\
             \x20 - name: tagged\n    url: http://127.0.0.1:{port}/\n    headers: {{Knative-Serving-Tag: candidate}}\n"
        ),
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = load(&[
        "--targets",
        targets.to_str().unwrap(),
        "--host",
        "hello.default.example.com",
        "--labels",
        "v1,v2",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--check",
        "v2.served==50",
        "--check",
        "tagged.served==50",
        "--check",
        "v1.served==150",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let _ = gw.kill();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    // Every tagged request went to v2 (the tag's revision, at 0% of the main route), every
    // other one to v1: the revision header the gateway answers with says so.
    let v = summary(&out_dir);
    assert_eq!(v["revisions"]["v2"]["served"], 50, "{v}");
    assert_eq!(v["revisions"]["v1"]["served"], 150, "{v}");
    // latency.hgrm: overall, per label and per target; histograms.json decodes to the counts.
    let hgrm = std::fs::read_to_string(out_dir.join("latency.hgrm")).unwrap();
    for section in [
        "# all\n",
        "# v1\n",
        "# v2\n",
        "# target:main\n",
        "# target:tagged\n",
    ] {
        assert!(hgrm.contains(section), "{section} in {hgrm}");
    }
    assert!(hgrm.contains("Total count    =          200]"), "{hgrm}");
    let hist: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("histograms.json")).unwrap())
            .unwrap();
    for (label, n) in [("all", 200), ("v1", 150), ("v2", 50), ("target:tagged", 50)] {
        let h = splitlab::report::hdr::from_base64(hist[label]["histogram"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(h.len(), n, "{label}");
        assert_eq!(hist[label]["count"], n, "{label}");
    }
}

#[test]
fn a_killed_run_keeps_the_results_lines_it_had_written() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let dir = temp_dir("load-killed");
    std::fs::create_dir_all(&dir).unwrap();
    let results = dir.join("results.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args([
            "load",
            "--target",
            &format!("http://127.0.0.1:{port}/"),
            "--rate",
            "200",
            "--duration",
            "30s",
            "--results",
            results.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for some lines, then kill it without a chance to clean up.
    let lines_now = || {
        std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    for _ in 0..500 {
        if lines_now() >= 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(text.ends_with('\n'), "the last line is whole");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is whole JSON"))
        .collect();
    assert!(lines.len() >= 100, "{}", lines.len());
    assert!(lines.iter().all(|l| l["status"] == 200));
}

#[test]
fn schedule_rates_connections_and_an_unwritable_out_are_refused_before_sending() {
    let _live = one_live_run_at_a_time();
    let dir = temp_dir("load-bounds");
    std::fs::create_dir_all(&dir).unwrap();
    let target = format!("http://127.0.0.1:{}/", dead_port());
    // A schedule row beyond --rate's cap (it ran 147 s for a 1 s run before).
    let schedule = dir.join("schedule.csv");
    std::fs::write(&schedule, "0,100\n0.2,1e12\n").unwrap();
    let out = load(&[
        "--target",
        &target,
        "--schedule",
        schedule.to_str().unwrap(),
        "--duration",
        "1s",
        "--drain",
        "1s",
        "--out",
        dir.join("o1").to_str().unwrap(),
    ]);
    assert_clear_error(
        &out,
        "row 2 (at_s 0.2) has rate 1000000000000 requests/s; allowed: at most 10000000 (as --rate)",
        "schedule rate",
    );
    // A rate at the cap the machine cannot create requests at: the pacer stops once it is
    // more than --drain behind, and says so (this run took 12.6 s for a 1 s run before).
    std::fs::write(&schedule, "0,100\n0.2,1e7\n").unwrap();
    let out = load(&[
        "--target",
        &target,
        "--schedule",
        schedule.to_str().unwrap(),
        "--duration",
        "1s",
        "--drain",
        "200ms",
        "--out",
        dir.join("o1").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: the load generator fell more than --drain behind its schedule"),
        "{stderr}"
    );
    let load_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("o1").join("load.json")).unwrap())
            .unwrap();
    let behind_at = load_json["pacer_fell_behind_at_s"].as_f64().unwrap();
    assert!((0.2..1.0).contains(&behind_at), "{load_json}");
    let arrived = count(&summary(&dir.join("o1")), "arrived");
    assert!((20..7_000_000).contains(&arrived), "{arrived}");
    // Connections far beyond what one client can open (it aborted before).
    let out = load(&[
        "--target",
        &target,
        "--rate",
        "max",
        "--max-requests",
        "1",
        "--connections",
        "10000000",
        "--out",
        dir.join("o2").to_str().unwrap(),
    ]);
    assert_clear_error(
        &out,
        "--connections 10000000: allowed: 1 to 20000",
        "connections",
    );
    // An --out that cannot be created: refused before a 30 s run, not after it.
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let bad_out = file.join("out");
    let out = load(&[
        "--target",
        &target,
        "--rate",
        "10",
        "--duration",
        "30s",
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert_clear_error(
        &out,
        &format!("--out {}: cannot create the directory", bad_out.display()),
        "unwritable out",
    );
    assert!(!text(&out.stdout).contains("sent "), "nothing was sent");
}

/// Splits a command line as a POSIX shell would for the quoting the docs use (single quotes).
pub(crate) fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Whether a docs command reaches its target over TLS or HTTP/2 (load_tls runs those against
/// its own backends; the gateway speaks HTTP/1.1 in cleartext).
pub(crate) fn speaks_tls_or_h2(command: &str) -> bool {
    command.contains("https://") || command.contains("--http2") || command.contains("--h2c")
}

/// The `splitlab load` commands of docs/load.md and README.md over cleartext HTTP/1.1, and the
/// targets file of docs/load.md, run as written against `splitlab gateway` started as
/// docs/gateway.md (and README) show it, with the config file shown there (the backends' and
/// the gateway's ports replaced by the ones the test got): every check they make passes, so
/// the examples fit together (the Host the load sends is the one the gateway serves, the split
/// it expects is the one the config programs, and no request fails).
#[test]
fn the_load_commands_in_the_docs_run_as_written() {
    let _live = one_live_run_at_a_time();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/load.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let gateway_doc = std::fs::read_to_string(root.join("docs/gateway.md")).unwrap();
    let commands: Vec<&str> = docs
        .lines()
        .chain(readme.lines())
        // The rollout's commands run against a rolling stand-in (load_rollout.rs), the TLS and
        // HTTP/2 ones against their own backends (load_tls.rs).
        .filter(|l| {
            l.starts_with("splitlab load ")
                && !l.contains("--expect-rollout")
                && !speaks_tls_or_h2(l)
        })
        .collect();
    assert_eq!(commands.len(), 4, "three in docs/load.md, one in README.md");
    let targets_yaml = docs
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the targets file in docs/load.md");
    let config_section = gateway_doc
        .split("## The config file")
        .nth(1)
        .expect("docs/gateway.md's config section");
    let gateway_yaml = config_section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the config file in docs/gateway.md");
    let gateway_command = "splitlab gateway --config gateway.yaml";
    for (file, text) in [("docs/gateway.md", config_section), ("README.md", &readme)] {
        assert!(
            text.lines().any(|l| l == gateway_command),
            "{file} starts the gateway with {gateway_command:?}"
        );
    }
    let v1 = start_backend_saying("Hello v1!\n");
    let v2 = start_backend_saying("Hello v2!\n");
    let dir = temp_dir("load-docs");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gateway.yaml");
    assert!(gateway_yaml.contains("127.0.0.1:8081") && gateway_yaml.contains("127.0.0.1:8082"));
    std::fs::write(
        &config,
        gateway_yaml
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{v1}"))
            .replace("127.0.0.1:8082", &format!("127.0.0.1:{v2}")),
    )
    .unwrap();
    let (mut gw, port) = start_gateway(&config);
    let here = format!("127.0.0.1:{port}");
    std::fs::write(
        dir.join("targets.yaml"),
        targets_yaml.replace("127.0.0.1:8080", &here),
    )
    .unwrap();
    let mut outcomes = Vec::new();
    for command in &commands {
        let words = shell_words(&command.replace("127.0.0.1:8080", &here));
        assert_eq!(words[0], "splitlab");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
            .args(&words[1..])
            .current_dir(&dir)
            .output()
            .unwrap();
        outcomes.push((command.to_string(), out));
    }
    let _ = gw.kill();
    for (command, out) in outcomes {
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}\n{stdout}{}",
            text(&out.stderr)
        );
        let checks = command.matches("--check").count();
        let passed = check_lines(&stdout)
            .iter()
            .filter(|l| l.starts_with("check PASS"))
            .count();
        assert_eq!(passed, checks, "{command}\n{stdout}");
    }
    // The targets run streamed its results where the command says.
    let results = std::fs::read_to_string(dir.join("out/load/results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 400);
}

#[test]
fn when_the_outputs_cannot_be_written_at_the_end_the_summary_goes_to_stdout() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let dir = temp_dir("load-lost-out");
    let out_dir = dir.join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args([
            "load",
            "--target",
            &format!("http://127.0.0.1:{port}/"),
            "--rate",
            "100",
            "--duration",
            "2s",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The directory is checked and created before sending; then it is replaced by a file.
    for _ in 0..200 {
        if out_dir.is_dir() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Well into the 2 s of sending.
    std::thread::sleep(std::time::Duration::from_millis(700));
    std::fs::remove_dir_all(&out_dir).unwrap();
    std::fs::write(&out_dir, "not a directory").unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("requests: arrived 200  served 200"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failures: none of 200 requests"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the outputs could not be written; the summary above is the run's"),
        "{stderr}"
    );
}

/// `-r`, `-d` and `-c` are `--rate`, `--duration` and `--connections` (as in wrk, oha and hey;
/// `live` has `-c` too). A load run's summary shows what a load run measures: no simulated
/// time, no simulator-only outcome or column (queue-proxy, activator, pods), and a run stopped
/// by `--max-requests` reports how long it ran, not its ten-minute bound.
#[test]
fn load_takes_the_short_flags_and_prints_only_what_it_measures() {
    let _live = one_live_run_at_a_time();
    for (command, flag) in [
        ("load", "-c, --connections <N>"),
        ("load", "-d, --duration <D>"),
        ("load", "-r, --rate <R>"),
        ("live", "-c, --connections <N>"),
    ] {
        let help = text(&splitlab(&[command, "--help"]).stdout);
        assert!(
            help.contains(flag),
            "{command} --help lacks {flag}:\n{help}"
        );
    }
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let dir = temp_dir("load-short-flags");
    let out_s = dir.to_str().unwrap();
    let classify = ["--classify", "body:Hello v1=v1"];
    let mut args = vec!["--target", &target, "-r", "50", "-d", "1s", "-c", "2"];
    args.extend(classify);
    args.extend(["--out", out_s]);
    let out = load(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let described = std::fs::read_to_string(dir.join("scenario.yaml")).unwrap();
    assert!(
        described.contains("rate: 50\nduration: 1s\nconnections: 2\n"),
        "{described}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("scenario load  seed 1  mode live  ran "),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        "requests: arrived 50  served 50  errors 0  timeout 0  in_flight_at_end 0"
    );
    assert_eq!(
        lines[2],
        "revision    routed    served    errors   timeout in_flight    p50_ms    p99_ms"
    );
    assert!(
        lines[3].starts_with("v1              50        50         0         0         0 "),
        "{stdout}"
    );
    // The charts of what a load run measures, and no queues or pods chart of zeros.
    for chart in ["split", "outcomes", "latency", "routes"] {
        assert!(dir.join(format!("{chart}.png")).exists(), "{chart}.png");
    }
    for chart in ["queues", "pods"] {
        assert!(!dir.join(format!("{chart}.png")).exists(), "{chart}.png");
        assert!(!dir.join(format!("{chart}.svg")).exists(), "{chart}.svg");
    }
    // Stopped by its count: it ran for well under a second, not the 600 s bound of a closed loop.
    let mut args = vec![
        "--target",
        &target,
        "-r",
        "max",
        "--max-requests",
        "100",
        "-c",
        "2",
    ];
    args.extend(classify);
    args.extend(["--out", out_s]);
    let out = load(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let ran: f64 = stdout
        .lines()
        .next()
        .and_then(|l| l.split("  ran ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no 'ran S s' in {stdout}"));
    assert!(ran < 30.0, "ran {ran} s for 100 requests:\n{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}
