//! Knative's metrics in the live mode (docs/metrics.md): README's `splitlab live ...
//! --prometheus-sd` command, run as written; the target list read while the run goes on (pods
//! join it as they are created); every target scraped over 127.0.0.1 during the run and once
//! it is over (`--metrics-linger`); the text format read here by its own small parser; names,
//! label sets, Knative's bucket boundaries, and counts that add up to what the run's summary
//! says each revision was routed and served. After the linger the list is empty.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{assert_balanced, temp_dir};
use crate::live::one_live_run_at_a_time;

/// The histogram boundaries Knative v1.18 uses for every latency view, in ms: serving
/// pkg/queue/request_metric.go:37-39 and pkg/activator/handler/metrics.go:44 (typed here from
/// the upstream source, not taken from the crate).
const KNATIVE_LATENCY_LE: [&str; 27] = [
    "5", "10", "20", "40", "60", "80", "100", "150", "200", "250", "300", "350", "400", "450",
    "500", "600", "700", "800", "900", "1000", "2000", "5000", "10000", "20000", "50000", "100000",
    "+Inf",
];

/// Resource labels every series carries (serving pkg/metrics/tags.go:117-128).
const RESOURCE: [&str; 4] = [
    "namespace_name",
    "service_name",
    "configuration_name",
    "revision_name",
];

/// (container of the target, family, type, labels besides the resource labels): what each
/// component exports, with the tag keys of its view.
const FAMILIES: [(&str, &str, &str, &[&str]); 14] = [
    // queue-proxy, request_metric.go:79 and :142
    (
        "queue-proxy",
        "revision_request_count",
        "counter",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
            "route_tag",
        ],
    ),
    (
        "queue-proxy",
        "revision_request_latencies",
        "histogram",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
            "route_tag",
        ],
    ),
    (
        "queue-proxy",
        "revision_app_request_count",
        "counter",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
        ],
    ),
    (
        "queue-proxy",
        "revision_app_request_latencies",
        "histogram",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
        ],
    ),
    (
        "queue-proxy",
        "revision_queue_depth",
        "gauge",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
        ],
    ),
    // activator, activator/handler/metrics.go:55-73
    (
        "activator",
        "activator_request_count",
        "counter",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
        ],
    ),
    (
        "activator",
        "activator_request_latencies",
        "histogram",
        &[
            "pod_name",
            "container_name",
            "response_code",
            "response_code_class",
        ],
    ),
    (
        "activator",
        "activator_request_concurrency",
        "gauge",
        &["pod_name", "container_name"],
    ),
    // autoscaler, autoscaler/scaling/metrics.go and reconciler/autoscaling/kpa/metrics.go
    ("autoscaler", "autoscaler_desired_pods", "gauge", &[]),
    ("autoscaler", "autoscaler_actual_pods", "gauge", &[]),
    (
        "autoscaler",
        "autoscaler_stable_request_concurrency",
        "gauge",
        &[],
    ),
    (
        "autoscaler",
        "autoscaler_panic_request_concurrency",
        "gauge",
        &[],
    ),
    ("autoscaler", "autoscaler_panic_mode", "gauge", &[]),
    (
        "autoscaler",
        "autoscaler_excess_burst_capacity",
        "gauge",
        &[],
    ),
];

/// One sample line.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One target's scrape: its `# TYPE`s and samples, in order.
#[derive(Clone, Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

/// Reads the text exposition format (version 0.0.4): `# TYPE` lines, and
/// `name{label="value",...} value` with `\\`, `\"`, `\n` escapes in values.
fn parse_exposition(body: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            scrape.types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("a name");
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let bytes: Vec<char> = body.chars().collect();
            let mut i = 0;
            loop {
                if bytes[i] == '}' {
                    i += 1;
                    break;
                }
                if bytes[i] == ',' {
                    i += 1;
                }
                let eq = (i..bytes.len()).find(|&j| bytes[j] == '=').expect("=");
                let key: String = bytes[i..eq].iter().collect();
                assert_eq!(bytes[eq + 1], '"', "quoted value in {line}");
                let mut value = String::new();
                let mut j = eq + 2;
                loop {
                    match bytes[j] {
                        '\\' => {
                            value.push(match bytes[j + 1] {
                                'n' => '\n',
                                c => c,
                            });
                            j += 2;
                        }
                        '"' => break,
                        c => {
                            value.push(c);
                            j += 1;
                        }
                    }
                }
                labels.insert(key, value);
                i = j + 1;
            }
            let consumed: String = bytes[..i].iter().collect();
            rest = &body[consumed.len()..];
        }
        let value = rest.trim();
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a number in {line:?}")),
        };
        scrape.samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    scrape
}

/// `GET /metrics` on 127.0.0.1:`port`; the status line's code and the body.
fn scrape(addr: &str) -> (u16, String) {
    assert!(addr.starts_with("127.0.0.1:"), "{addr} is not loopback");
    let mut s = TcpStream::connect(addr).expect("the metrics endpoint accepts");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("a complete answer");
    let (head, body) = buf.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    (code, body.to_string())
}

/// The target list: (address, labels) per group; `None` while it does not exist yet.
fn read_targets(path: &Path) -> Option<Vec<(String, BTreeMap<String, String>)>> {
    let text = std::fs::read_to_string(path).ok()?;
    // Rewritten atomically: whatever is there is a complete list.
    let v: serde_json::Value = serde_json::from_str(&text).expect("the target list is JSON");
    let groups = v.as_array().expect("file_sd: a list of groups");
    Some(
        groups
            .iter()
            .flat_map(|g| {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(g["labels"].clone()).expect("string labels");
                g["targets"]
                    .as_array()
                    .expect("targets")
                    .iter()
                    .map(move |t| (t.as_str().expect("host:port").to_string(), labels.clone()))
            })
            .collect(),
    )
}

/// Scrapes every target of the list: (target labels, scrape).
fn scrape_all(path: &Path) -> Vec<(BTreeMap<String, String>, Scrape)> {
    read_targets(path)
        .expect("the target list exists")
        .into_iter()
        .map(|(addr, labels)| {
            let (code, body) = scrape(&addr);
            assert_eq!(code, 200, "{addr}");
            (labels, parse_exposition(&body))
        })
        .collect()
}

/// Polls `done` every 25 ms, at most `timeout` in all.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let step = Duration::from_millis(25);
    for _ in 0..timeout.as_millis() / step.as_millis() {
        if done() {
            return;
        }
        std::thread::sleep(step);
    }
    assert!(done(), "timed out waiting for {what}");
}

/// docs/live.md's command for this capability, split into its arguments after `cargo run --release --`.
fn readme_command() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs/live.md")).expect("docs/live.md");
    let lines: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- live scenarios/live-metrics.yaml"))
        .collect();
    assert_eq!(lines.len(), 1, "docs/live.md shows the command once");
    let docs = std::fs::read_to_string(root.join("docs/metrics.md")).expect("docs/metrics.md");
    assert!(
        docs.contains(lines[0]),
        "docs/metrics.md shows docs/live.md's command"
    );
    lines[0]
        .split_whitespace()
        .skip(4)
        .map(str::to_string)
        .collect()
}

/// Sum of a family's samples per revision, over the series whose labels match `filter`.
fn sum_by_revision(
    scrapes: &[(BTreeMap<String, String>, Scrape)],
    name: &str,
    filter: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (_, s) in scrapes {
        for x in s
            .samples
            .iter()
            .filter(|x| x.name == name && filter(&x.labels))
        {
            *out.entry(x.labels["revision_name"].clone()).or_insert(0.0) += x.value;
        }
    }
    out
}

#[test]
fn readme_live_metrics_command_exports_knatives_metrics_per_pod_with_counts_that_add_up() {
    let _live = one_live_run_at_a_time();
    let dir = temp_dir("metrics-live");
    std::fs::create_dir_all(&dir).unwrap();
    let sd = dir.join("targets.json");
    let out = dir.join("out");
    // README's command as written, with the target list and outputs in the temporary directory.
    let mut args = readme_command();
    let at = args
        .iter()
        .position(|a| a == "--prometheus-sd")
        .expect("docs/live.md passes --prometheus-sd");
    args[at + 1] = sd.display().to_string();
    args.extend(["--out".to_string(), out.display().to_string()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("splitlab live starts");

    // At the start: the activator, the autoscaler and hello-00001's two pods; hello-00002 (created
    // at 2 s of scenario time, 1 s of wall time) joins with its pods.
    wait_for("the target list", Duration::from_secs(20), || {
        read_targets(&sd).is_some_and(|t| t.len() >= 4)
    });
    let first: BTreeSet<String> = read_targets(&sd)
        .unwrap()
        .into_iter()
        .map(|(_, l)| l["pod"].clone())
        .collect();
    assert!(
        first.contains("activator-0") && first.contains("autoscaler"),
        "{first:?}"
    );
    assert!(first.contains("hello-00001-pod-0") && first.contains("hello-00001-pod-1"));
    assert!(
        !first.iter().any(|p| p.starts_with("hello-00002")),
        "{first:?}"
    );
    wait_for("hello-00002's pods", Duration::from_secs(20), || {
        read_targets(&sd).is_some_and(|t| t.len() == 6)
    });
    // Mid-run: every target answers, and requests are being counted.
    let mid = scrape_all(&sd);
    let mid_count: f64 = sum_by_revision(&mid, "revision_request_count", |_| true)
        .values()
        .sum();

    // Over: summary.json is written and the endpoints linger with their final values.
    wait_for("summary.json", Duration::from_secs(60), || {
        out.join("summary.json").exists()
    });
    let last = scrape_all(&sd);
    let status = child.wait().expect("splitlab live ends");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    // The list is emptied at exit.
    assert_eq!(read_targets(&sd).expect("still there"), vec![]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_balanced(&summary);

    // Names and types per component, and each series' label names.
    for (labels, scrape) in &last {
        let container = labels["container"].as_str();
        let expected: Vec<_> = FAMILIES.iter().filter(|f| f.0 == container).collect();
        assert!(!expected.is_empty(), "unexpected container {container}");
        for (_, family, kind, keys) in &expected {
            assert_eq!(
                scrape.types.get(*family).map(String::as_str),
                Some(*kind),
                "{family} in {container}'s scrape: {:?}",
                scrape.types
            );
            let mut names: BTreeSet<&str> = RESOURCE.into_iter().collect();
            names.extend(keys.iter().copied());
            let suffixes: &[&str] = if *kind == "histogram" {
                &["_bucket", "_sum", "_count"]
            } else {
                &[""]
            };
            for suffix in suffixes {
                let series: Vec<&Sample> = scrape
                    .samples
                    .iter()
                    .filter(|s| s.name == format!("{family}{suffix}"))
                    .collect();
                assert!(!series.is_empty(), "{family}{suffix} in {container}");
                for s in series {
                    let mut got: BTreeSet<&str> = s.labels.keys().map(String::as_str).collect();
                    if *suffix == "_bucket" {
                        assert!(got.remove("le"), "{s:?}");
                    }
                    assert_eq!(got, names, "{family}{suffix}");
                    assert_eq!(s.labels["namespace_name"], "default");
                    assert_eq!(s.labels["service_name"], "hello");
                    assert_eq!(s.labels["configuration_name"], "hello");
                    if let Some(pod) = s.labels.get("pod_name") {
                        // Each pod's series on its own target.
                        assert_eq!(pod, &labels["pod"], "{family}");
                        assert_eq!(s.labels["container_name"], container);
                    }
                    if let Some(code) = s.labels.get("response_code").filter(|c| !c.is_empty()) {
                        let class = format!("{}xx", &code[..1]);
                        assert_eq!(s.labels["response_code_class"], class);
                    }
                }
            }
        }
        // Histograms: Knative's boundaries in order, cumulative, +Inf equal to _count.
        for (family, kind) in &scrape.types {
            if kind != "histogram" {
                continue;
            }
            let mut by_series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
            for s in scrape
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let mut key = s.labels.clone();
                let le = key.remove("le").expect("le");
                by_series
                    .entry(format!("{key:?}"))
                    .or_default()
                    .push((le, s.value));
            }
            for (key, buckets) in by_series {
                let les: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
                assert_eq!(les, KNATIVE_LATENCY_LE, "{family} {key}");
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family}: {buckets:?}"
                );
                let count = scrape
                    .samples
                    .iter()
                    .find(|s| {
                        s.name == format!("{family}_count") && format!("{:?}", s.labels) == key
                    })
                    .expect("a _count per series");
                assert_eq!(buckets.last().unwrap().1, count.value, "{family} {key}");
            }
        }
    }

    // Counts add up to the summary, per revision: every request went through the activator
    // (target-burst-capacity -1) and was answered 200 by a queue-proxy and its application.
    let revisions = summary["revisions"].as_object().expect("revisions");
    let qp = sum_by_revision(&last, "revision_request_count", |_| true);
    let qp_200 = sum_by_revision(&last, "revision_request_count", |l| {
        l["response_code"] == "200"
    });
    let app_200 = sum_by_revision(&last, "revision_app_request_count", |l| {
        l["response_code"] == "200"
    });
    let qp_latency = sum_by_revision(&last, "revision_request_latencies_count", |_| true);
    let activator = sum_by_revision(&last, "activator_request_count", |_| true);
    let activator_200 = sum_by_revision(&last, "activator_request_count", |l| {
        l["response_code"] == "200"
    });
    assert_eq!(revisions.len(), 2);
    for (rev, v) in revisions {
        let served = v["served"].as_f64().unwrap();
        let routed = v["routed"].as_f64().unwrap();
        assert!(served > 100.0, "{rev}: {v}");
        assert_eq!(qp_200[rev], served, "{rev}: queue-proxy 200s vs served");
        assert_eq!(
            qp[rev], served,
            "{rev}: nothing else reached the queue-proxies"
        );
        assert_eq!(app_200[rev], served, "{rev}: application 200s vs served");
        assert_eq!(qp_latency[rev], qp[rev], "{rev}: one latency per request");
        assert_eq!(activator[rev], routed, "{rev}: activator vs routed");
        assert_eq!(activator_200[rev], served, "{rev}");
    }
    // route_tag: the default route's requests, and hello-00001's tagged ones (its own host
    // and the tag header), as the ingress marks them.
    let tags_of = |rev: &str| -> BTreeSet<String> {
        last.iter()
            .flat_map(|(_, s)| &s.samples)
            .filter(|x| x.name == "revision_request_count" && x.labels["revision_name"] == rev)
            .map(|x| x.labels["route_tag"].clone())
            .collect()
    };
    assert_eq!(
        tags_of("hello-00001"),
        BTreeSet::from(["DEFAULT".into(), "current".into()])
    );
    assert_eq!(tags_of("hello-00002"), BTreeSet::from(["DEFAULT".into()]));
    let total: f64 = qp.values().sum();
    assert!(
        mid_count > 0.0 && mid_count < total,
        "{mid_count} then {total}"
    );
    // The autoscaler reports both revisions' two ready pods at the end.
    let actual = sum_by_revision(&last, "autoscaler_actual_pods", |_| true);
    assert_eq!(
        actual,
        BTreeMap::from([("hello-00001".into(), 2.0), ("hello-00002".into(), 2.0)])
    );
}

#[test]
fn a_bad_metrics_linger_is_a_clear_error_before_anything_runs() {
    // (value, what the message says)
    let cases = [
        ("soon", "--metrics-linger \"soon\""), // not a duration
        ("-1s", "--metrics-linger"),           // negative
    ];
    for (value, fragment) in cases {
        let flag = format!("--metrics-linger={value}");
        let out = crate::common::splitlab(&["live", "scenarios/live-metrics.yaml", &flag]);
        crate::common::assert_clear_error(&out, fragment, value);
    }
}
