//! `calibrate` end to end on in-memory answers: the name set it picks, the values it writes,
//! and that what it writes loads as a scenario.

use std::collections::BTreeMap;

use super::*;
use crate::scenario::load::load_scenario;

/// Answers by dump key; a key that is absent has no file.
struct Memory(BTreeMap<String, String>);

impl Source for Memory {
    fn query_range(&mut self, query: &Query) -> Result<Option<Fetched>, String> {
        Ok(self.0.get(&query.key()).map(|body| Fetched {
            origin: format!("mem/{}.json", query.key()),
            body: body.clone(),
            promql: Some(query.promql.clone()),
        }))
    }
}

/// A matrix body: each series is (labels, values at t0 + 15·i).
/// A series for [`matrix`]: its labels and its values.
type SeriesSpec<'a> = (&'a [(&'a str, &'a str)], Vec<f64>);

/// How a case of [`the_name_set_is_the_one_with_series`] ends: a set, or error fragments.
type Outcome = Result<NameSet, &'static [&'static str]>;

fn matrix(series: &[SeriesSpec]) -> String {
    let result: Vec<serde_json::Value> = series
        .iter()
        .map(|(labels, values)| {
            let metric: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect();
            let values: Vec<serde_json::Value> = values
                .iter()
                .enumerate()
                .map(|(i, v)| serde_json::json!([1000.0 + 15.0 * i as f64, format!("{v}")]))
                .collect();
            serde_json::json!({"metric": metric, "values": values})
        })
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
        .to_string()
}

fn inputs() -> Inputs {
    Inputs {
        namespace: "default".into(),
        service: "hello".into(),
        from: None,
        to: None,
        step: None,
        source: "memory".into(),
        manifests: vec![],
    }
}

/// A v1.18-named answer set: two revisions (80/20 then 50/50), a tag, latency, pods.
fn v118() -> BTreeMap<String, String> {
    let n = 9;
    let a: Vec<f64> = (0..n).map(|i| if i < 5 { 16.0 } else { 30.0 }).collect();
    let b: Vec<f64> = (0..n).map(|i| if i < 5 { 4.0 } else { 30.0 }).collect();
    let mut m = BTreeMap::new();
    m.insert(
        "v118-requests".into(),
        matrix(&[
            (
                &[("revision_name", "hello-00001"), ("route_tag", "DEFAULT")],
                a,
            ),
            (
                &[("revision_name", "hello-00002"), ("route_tag", "DEFAULT")],
                b,
            ),
            (
                &[("revision_name", "hello-00002"), ("route_tag", "candidate")],
                vec![1.0; n],
            ),
        ]),
    );
    let bucket = |rev: &'static str,
                  le: &'static str,
                  v: f64|
     -> (Vec<(&'static str, &'static str)>, Vec<f64>) {
        (vec![("revision_name", rev), ("le", le)], vec![v; n])
    };
    let buckets = [
        bucket("hello-00001", "50", 10.0),
        bucket("hello-00001", "100", 20.0),
        bucket("hello-00001", "+Inf", 20.0),
        bucket("hello-00002", "100", 5.0),
        bucket("hello-00002", "200", 10.0),
        bucket("hello-00002", "+Inf", 10.0),
    ];
    let refs: Vec<SeriesSpec> = buckets
        .iter()
        .map(|(l, v)| (l.as_slice(), v.clone()))
        .collect();
    m.insert("v118-latency".into(), matrix(&refs));
    m.insert(
        "v118-pods-ready".into(),
        matrix(&[
            (
                &[("revision_name", "hello-00001")],
                vec![2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0, 4.0],
            ),
            (&[("revision_name", "hello-00002")], vec![1.0; n]),
        ]),
    );
    m.insert(
        "v118-pods-requested".into(),
        matrix(&[
            (
                &[("revision_name", "hello-00001")],
                vec![2.0, 2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0],
            ),
            (&[("revision_name", "hello-00002")], vec![1.0; n]),
        ]),
    );
    m
}

fn otel_requests() -> String {
    matrix(&[(
        &[
            ("kn_revision_name", "hello-00001"),
            ("kn_route_tag", "kn:default"),
        ],
        vec![5.0; 4],
    )])
}

fn otel_latency() -> String {
    matrix(&[
        (
            &[("kn_revision_name", "hello-00001"), ("le", "0.1")],
            vec![4.0; 4],
        ),
        (
            &[("kn_revision_name", "hello-00001"), ("le", "+Inf")],
            vec![5.0; 4],
        ),
    ])
}

#[test]
fn the_name_set_is_the_one_with_series() {
    let empty = matrix(&[]);
    let nan_only = matrix(&[(&[("revision_name", "x")], vec![f64::NAN; 3])]);
    // (answers present, --from, expected set or the error's fragments)
    let with = |pairs: &[(&str, String)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let both = {
        let mut m = v118();
        m.insert("otel-requests".into(), otel_requests());
        m.insert("otel-latency".into(), otel_latency());
        m
    };
    let otel = with(&[
        ("otel-requests", otel_requests()),
        ("otel-latency", otel_latency()),
    ]);
    let cases: Vec<(BTreeMap<String, String>, Option<f64>, Outcome)> = vec![
        // only the v1.18 names answer
        (v118(), None, Ok(NameSet::V118)),
        // the dump has no v1.18 files: the OTel names
        (otel.clone(), None, Ok(NameSet::Otel)),
        // v1.18 answers with no series (a v1.19 cluster): the OTel names
        (
            {
                let mut m = otel.clone();
                m.insert("v118-requests".into(), empty.clone());
                m
            },
            None,
            Ok(NameSet::Otel),
        ),
        // v1.18 answers only NaN: no values
        (
            {
                let mut m = otel.clone();
                m.insert("v118-requests".into(), nan_only.clone());
                m
            },
            None,
            Ok(NameSet::Otel),
        ),
        // both have series (an upgrade inside the range): the first, v1.18
        (both.clone(), None, Ok(NameSet::V118)),
        // neither: the error shows both queries and what each returned
        (
            with(&[("v118-requests", empty.clone())]),
            None,
            Err(&[
                "no request series for Service default/hello; tried:",
                "revision_request_count{namespace_name=\"default\", service_name=\"hello\"}",
                "mem/v118-requests.json returned 0 series",
                "http_server_request_duration_seconds_count",
                "no otel-requests.json in the dump",
            ]),
        ),
        // a range after every sample
        (
            v118(),
            Some(5000.0),
            Err(&[
                "between 1970-01-01T01:23:20Z and the last sample",
                "none with values in the range",
            ]),
        ),
    ];
    for (answers, from, want) in cases {
        let mut input = inputs();
        input.from = from;
        let got = calibrate(&input, &mut Memory(answers));
        match (got, want) {
            (Ok(c), Ok(set)) => assert!(
                c.summary[0].contains(set.describe()),
                "{:?} vs {set:?}",
                c.summary
            ),
            (Err(e), Err(fragments)) => {
                let e = e.to_string();
                for f in fragments {
                    assert!(e.contains(f), "{f:?} not in {e}");
                }
            }
            (got, want) => panic!("{got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_calibrated_scenario_says_what_the_series_say_and_loads() {
    let c = calibrate(&inputs(), &mut Memory(v118())).expect("calibrates");
    let y = &c.yaml;
    // the schedule: 21 req/s (16 + 4 + 1), then 61 req/s from sample 5 (75 s), each step
    // starting 37.5 s before its sample (half the 1m window of the 15 s step, half a step)
    assert!(
        y.contains("      - {at: 0s, rate: 21}\n      - {at: 37.5s, rate: 61}\n"),
        "{y}"
    );
    // the untagged split: 80/20, then 50/50 with the same shift; the tag in every block
    assert!(y.contains("  - {revisionName: hello-00001, percent: 80}\n  - {revisionName: hello-00002, percent: 20}\n  - {tag: candidate, revisionName: hello-00002, percent: 0}\n"), "{y}");
    assert!(y.contains("  - {at: 37.5s, traffic: [{revisionName: hello-00001, percent: 50}, {revisionName: hello-00002, percent: 50}, {tag: candidate, revisionName: hello-00002, percent: 0}]}"), "{y}");
    // the tag's share of the requests the schedule sends: 1 req/s over 120 s, of 21 req/s
    // held for 37.5 s and 61 req/s for the remaining 82.5 s
    let share = 120.0 / (21.0 * 37.5 + 61.0 * 82.5);
    assert!(
        y.contains(&format!("    candidate: {}\n", text::num6(share))),
        "{y}"
    );
    // hello-00001's buckets in milliseconds, counts = rate × 15 s × 8 bins
    assert!(y.contains("          - {le: 50ms, count: 1200}\n          - {le: 100ms, count: 2400}\n          - {le: +Inf, count: 2400}\n"), "{y}");
    // pods at the start, and the one scale-up: requested 4 at bin 5, ready at bin 7
    assert!(
        y.contains("    pods: 2   # [v118-pods-ready] ready pods at 0s (4 at most"),
        "{y}"
    );
    assert!(y.contains("    startup: {constant: 30s}"), "{y}");
    assert!(y.contains("  readiness_delay: {constant: 0s}"), "{y}");
    // every query is named with its origin, and the range is said
    for key in [
        "v118-requests",
        "v118-latency",
        "v118-pods-ready",
        "v118-pods-requested",
    ] {
        assert!(y.contains(&format!("#   [{key}] ")), "{key}: {y}");
        assert!(
            y.contains(&format!("answered by mem/{key}.json")),
            "{key}: {y}"
        );
    }
    assert!(y.contains("# Time range: 1970-01-01T00:16:40Z .. 1970-01-01T00:18:40Z (unix 1000 .. 1120), step 15s"), "{y}");
    assert!(y.contains("duration: 120s\n"), "{y}");

    let s = load_scenario("calibrated.yaml", y, &[], &|p: &str| {
        Err(format!("{p}: no files"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{y}"));
    assert_eq!(s.revisions.len(), 2);
    let p50 = s.revisions[0]
        .service_time
        .histogram_quantile(0.5)
        .expect("histogram");
    assert_eq!(
        p50,
        SimDuration::from_millis(50),
        "half the requests are <= 50 ms"
    );
    assert_eq!(s.revisions[1].pods, 1);
    assert_eq!(
        s.arrivals.tag_shares,
        vec![("candidate".to_string(), share_rounded(share))]
    );
}

fn share_rounded(x: f64) -> f64 {
    text::num6(x).parse().expect("a number")
}

#[test]
fn missing_pieces_are_said() {
    // no pods files: the scenario keeps the defaults and says so
    let mut m = v118();
    m.remove("v118-pods-ready");
    m.remove("v118-pods-requested");
    let c = calibrate(&inputs(), &mut Memory(m)).expect("calibrates");
    assert!(
        c.notes.iter().any(|n| n.contains(
            "no v118-pods-ready.json in the dump; pod counts keep the scenario defaults"
        )),
        "{:?}",
        c.notes
    );
    assert!(!c.yaml.contains("pods:"), "{}", c.yaml);

    // no requested pods but the decider's desired pods: they stand in
    let mut m = v118();
    let requested = m.remove("v118-pods-requested").expect("in the set");
    m.insert("v118-pods-desired".into(), requested);
    let c = calibrate(&inputs(), &mut Memory(m)).expect("calibrates");
    assert!(
        c.yaml
            .contains("    startup: {constant: 30s}   # [v118-pods-desired] rose 1 times"),
        "{}",
        c.yaml
    );
    assert!(c.notes.iter().any(|n| n.contains("no requested-pod counts (v118-pods-requested); start-up times use the desired pods of mem/v118-pods-desired.json")), "{:?}", c.notes);

    // no latency file: an error naming the query
    let mut m = v118();
    m.remove("v118-latency");
    let e = calibrate(&inputs(), &mut Memory(m))
        .expect_err("no latency")
        .to_string();
    assert!(e.starts_with("no latency histogram for Service default/hello: sum by (revision_name, le) (rate(revision_app_request_latencies_bucket"), "{e}");
    assert!(e.contains("no v118-latency.json in the dump"), "{e}");

    // a bad file: its name and the JSON path
    let mut m = v118();
    m.insert("v118-latency".into(), r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#.into());
    let e = calibrate(&inputs(), &mut Memory(m))
        .expect_err("bad")
        .to_string();
    assert!(
        e.starts_with(
            "mem/v118-latency.json: data.result[0].values[0][1]: \"x\" is not a sample value"
        ),
        "{e}"
    );

    // a range of too many steps
    let mut i = inputs();
    i.from = Some(0.0);
    i.to = Some(1120.0);
    i.step = Some(SimDuration::from_millis(1));
    let e = calibrate(&i, &mut Memory(v118()))
        .expect_err("too many bins")
        .to_string();
    assert!(
        e.contains("1120s at a step of 0.001s is more than 1000000 steps; choose a larger --step"),
        "{e}"
    );

    // a range the wrong way round
    let mut i = inputs();
    i.from = Some(1100.0);
    i.to = Some(1050.0);
    let e = calibrate(&i, &mut Memory(v118()))
        .expect_err("empty range")
        .to_string();
    // (the command refuses --to before --from itself; the library finds nothing in the range)
    assert!(
        e.contains("returned 3 series, none with values in the range"),
        "{e}"
    );
}

#[test]
fn manifests_are_classified() {
    let ksvc = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\n";
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-autoscaler}\ndata: {}\n";
    let file = |name: &str, text: &str| ManifestInput {
        display: name.into(),
        scenario_path: format!("../{name}"),
        text: text.into(),
    };
    let mut i = inputs();
    i.manifests = vec![file("svc.yaml", ksvc), file("cm.yaml", cm)];
    let c = calibrate(&i, &mut Memory(v118())).expect("calibrates");
    assert!(
        c.yaml.contains("  manifest: ../svc.yaml   # --manifests"),
        "{}",
        c.yaml
    );
    assert!(
        c.yaml.contains(
            "cluster:\n  configmaps:   # --manifests: the cluster's ConfigMaps\n    - ../cm.yaml\n"
        ),
        "{}",
        c.yaml
    );

    // (files, error fragment)
    let cases = [
        (
            vec![file("a.yaml", ksvc), file("b.yaml", ksvc)],
            "a.yaml and b.yaml both hold Knative objects",
        ),
        (
            vec![file("m.yaml", &format!("{ksvc}---\n{cm}"))],
            "m.yaml mixes ConfigMaps and Knative objects",
        ),
        (
            vec![file(
                "d.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            )],
            "d.yaml:2:7: kind \"Deployment\" is not read",
        ),
    ];
    for (files, fragment) in cases {
        let mut i = inputs();
        i.manifests = files;
        let e = calibrate(&i, &mut Memory(v118()))
            .expect_err(fragment)
            .to_string();
        assert!(e.contains(fragment), "{e}\nwant: {fragment}");
    }
}
