//! Revisions that fail (issue 12 §3), in the simulator: each failure kind on a small scenario,
//! its effect, and the accounting (every request ends in exactly one outcome, overall and per
//! revision). The live mode's pods are tested in `live`.

use proptest::prelude::*;
use splitlab::report::run::RunReport;
use splitlab::scenario::load::load_scenario;
use splitlab::sim::{simulate, RunOptions};

use crate::common::assert_balanced;

/// Two revisions running at t = 0 with 2 pods each (cc 10, 20 ms), split 50/50, 100 req/s for
/// 60 s, the autoscaler off. `v2` gets `failure` (YAML lines under `failure:`, or nothing), and
/// `extra` is appended (a timeline).
fn scenario_text(failure: &str, extra: &str) -> String {
    let failure = if failure.is_empty() {
        String::new()
    } else {
        format!("    failure:\n{failure}")
    };
    format!(
        "name: failures\nduration: 60s\nseed: 3\nservice:\n  name: hello\n  rollout_duration: 0s\n\
         revisions:\n  - name: v1\n    container_concurrency: 10\n    service_time: {{constant: 20ms}}\n    pods: 2\n\
         \x20 - name: v2\n    container_concurrency: 10\n    service_time: {{constant: 20ms}}\n    pods: 2\n\
         \x20   startup: {{constant: 1s}}\n    timeout: 10s\n{failure}\
         traffic:\n  - revisionName: v1\n    percent: 50\n  - revisionName: v2\n    percent: 50\n\
         arrivals:\n  poisson: {{rate: 100}}\nautoscaler:\n  enabled: false\n\
         kubernetes:\n  readiness_delay: {{constant: 1s}}\n  endpoint_removal_delay: {{constant: 1s}}\n{extra}"
    )
}

fn run(text: &str) -> RunReport {
    let s = load_scenario("failures.yaml", text, &[], &|_| Err("no files".into()))
        .unwrap_or_else(|e| panic!("loads: {e}\n{text}"));
    let report = simulate(&s, &RunOptions::default()).into_report(0.0);
    assert_accounted(&report);
    report
}

/// `requests.*` sum to `arrived`, overall and per revision.
fn assert_accounted(report: &RunReport) {
    assert!(report.accounting_ok(), "{:?}", report.totals());
    let summary = report.summary_json();
    assert_balanced(&summary);
    for (name, rev) in summary["revisions"].as_object().expect("revisions") {
        let sum: u64 = splitlab::report::record::END_KEYS
            .iter()
            .map(|k| rev[*k].as_u64().expect("count"))
            .sum();
        assert_eq!(Some(sum), rev["arrived"].as_u64(), "{name}");
    }
}

#[test]
fn error_rate_answers_that_share_with_the_app_error_only_on_the_failing_revision() {
    let report = run(&scenario_text("      error_rate: 0.2\n", ""));
    let [v1, v2] = report.revisions() else {
        panic!("two revisions")
    };
    assert_eq!(v1.counts.app_error, 0);
    assert_eq!(v1.counts.served, v1.counts.arrived);
    let n = v2.counts.arrived as f64;
    let k = v2.counts.app_error as f64;
    // Binomial(n, 0.2): within 4.5 standard deviations.
    let sd = (n * 0.2 * 0.8).sqrt();
    assert!((k - 0.2 * n).abs() <= 4.5 * sd, "{k} app errors of {n}");
    // Served-with-error is not served, and nothing else went wrong.
    assert_eq!(v2.counts.served + v2.counts.app_error, v2.counts.arrived);
    assert_eq!(report.totals().app_error, v2.counts.app_error);
    // The other streams did not move: v1 sees the same requests as in a healthy run.
    let healthy = run(&scenario_text("", ""));
    assert_eq!(healthy.revisions()[0].counts, v1.counts);
    assert_eq!(healthy.totals().arrived, report.totals().arrived);
}

#[test]
fn latency_fault_slows_the_failing_revision() {
    // (failure block, v2's p50 in ms): the service time is 20 ms, constant, and nothing queues.
    let table = [
        // Three times slower.
        ("      latency: {multiplier: 3}\n", 60.0),
        // 100 ms added.
        ("      latency: {add: {constant: 100ms}}\n", 120.0),
        // Both.
        (
            "      latency: {multiplier: 2, add: {constant: 10ms}}\n",
            50.0,
        ),
    ];
    for (failure, p50) in table {
        let report = run(&scenario_text(failure, ""));
        let [v1, v2] = report.revisions() else {
            panic!("two revisions")
        };
        let l1 = v1.latency.expect("v1 served");
        let l2 = v2.latency.expect("v2 served");
        assert!((l1.p50_ms - 20.0).abs() < 0.5, "{failure}: v1 {l1:?}");
        assert!((l2.p50_ms - p50).abs() < 0.5, "{failure}: v2 {l2:?}");
        assert_eq!(v2.counts.served, v2.counts.arrived, "{failure}: all served");
    }
}

#[test]
fn ready_before_serving_turns_requests_to_new_pods_into_502() {
    // v2 scales from 2 to 4 pods at 20 s: the new pods are Ready (endpoints, activator) 3 s
    // before their app accepts connections; the requests the ingress sends them then get 502.
    let timeline = "timeline:\n  - at: 20s\n    scale: {revision: v2, pods: 4}\n";
    let bad = run(&scenario_text("      ready_before_serving: 3s\n", timeline));
    let good = run(&scenario_text("", timeline));
    let (v2_bad, v2_good) = (&bad.revisions()[1], &good.revisions()[1]);
    assert_eq!(v2_good.counts.bad_gateway, 0);
    assert!(v2_bad.counts.bad_gateway > 0, "{:?}", v2_bad.counts);
    // Only between the new pods' readiness (start-up 1 s, kubelet 1 s: 22 s) and their app
    // (3 s later): requests are sent round-robin, so about half of v2's requests then.
    let windows: Vec<u64> = (0..bad.windows())
        .map(|k| bad.cell(k, 1).ended.bad_gateway)
        .collect();
    let outside: u64 = windows
        .iter()
        .enumerate()
        .filter(|(k, _)| !(21..=25).contains(k))
        .map(|(_, c)| c)
        .sum();
    assert_eq!(outside, 0, "{windows:?}");
    let routed_then: u64 = (21..=25).map(|k| bad.cell(k, 1).routed).sum();
    let share = v2_bad.counts.bad_gateway as f64 / routed_then as f64;
    assert!((0.2..0.6).contains(&share), "{share}: {windows:?}");
    // v1 is untouched.
    assert_eq!(bad.revisions()[0].counts, good.revisions()[0].counts);
}

#[test]
fn crash_after_fails_what_the_pod_holds_and_the_kubelet_restarts_it_with_back_off() {
    // Each container crashes 10 s after it starts serving. Per pod (start-up 1 s, kubelet 1 s):
    // crash at 10 s, restart after 10 s (20 s), serving at 21 s, crash at 31 s, restart after
    // 20 s (51 s), serving at 52 s, crash at 62 s only if the run still goes then.
    let report = run(&scenario_text("      crash_after: {constant: 10s}\n", ""));
    let v2 = &report.revisions()[1];
    assert!(v2.counts.bad_gateway > 0, "{:?}", v2.counts);
    assert_eq!((v2.pod_crashes, v2.pod_restarts), (4, 4), "{v2:?}");
    // Both pods down from 10 s to 21 s: v2 has no endpoint then, and 502s stop once the
    // crashed pods left the endpoints (1 s).
    for k in 12..20 {
        assert_eq!(report.cell(k, 1).ended.bad_gateway, 0, "window {k}");
        assert_eq!(
            report.cell(k, 1).ended.served,
            0,
            "window {k}: nothing serves"
        );
    }
    assert!(report.cell(10, 1).ended.bad_gateway > 0);
    // Back in service after the first restart, down again after the second crash.
    assert!(report.cell(25, 1).ended.served > 0);
    assert_eq!(report.cell(40, 1).ended.served, 0);
    assert!(report.cell(55, 1).ended.served > 0);
    let v1 = &report.revisions()[0];
    assert_eq!((v1.pod_crashes, v1.counts.bad_gateway), (0, 0));
}

/// v1 runs at t = 0; v2 is created at 10 s and its containers crash as they start.
fn crash_loop_text(traffic: &str, extra_timeline: &str) -> String {
    format!(
        "name: loop\nduration: 60s\nseed: 5\nservice:\n  name: hello\n  rollout_duration: 0s\n\
         revisions:\n  - name: v1\n    container_concurrency: 10\n    service_time: {{constant: 20ms}}\n    pods: 2\n\
         \x20 - name: v2\n    container_concurrency: 10\n    service_time: {{constant: 20ms}}\n    pods: 1\n\
         \x20   startup: {{constant: 2s}}\n    timeout: 5s\n    failure: {{crash_loop: true}}\n\
         traffic:\n{traffic}\
         timeline:\n  - at: 10s\n    create_revision: v2\n{extra_timeline}\
         arrivals:\n  poisson: {{rate: 50}}\nautoscaler:\n  enabled: false\n"
    )
}

#[test]
fn crash_loop_never_ready_latest_revision_route_stays_on_the_old_one() {
    // A configuration target follows the latest *ready* revision (routing.md; serving
    // pkg/reconciler/route/traffic/traffic.go resolves ConfigurationName to
    // Status.LatestReadyRevisionName): v2 never becomes Ready, so every request goes to v1.
    let report = run(&crash_loop_text(
        "  - latestRevision: true\n    percent: 100\n",
        "",
    ));
    let [v1, v2] = report.revisions() else {
        panic!("two revisions")
    };
    assert_eq!(v2.counts.arrived, 0, "{v2:?}");
    assert_eq!(v1.counts.served, report.totals().arrived);
    assert_eq!(v2.max_ready_pods, 0);
    // The kubelet's back-off: crashes at 12 s, 24 s (restart 22 s), 46 s (restart 44 s);
    // the next restart would be at 86 s.
    assert_eq!((v2.pod_crashes, v2.pod_restarts), (3, 2), "{v2:?}");
    // Yet it costs a pod all along.
    assert!(v2.pod_seconds > 49.0, "{}", v2.pod_seconds);
}

#[test]
fn crash_loop_pinned_target_is_not_programmed_and_traffic_stays_where_it_was() {
    // Pinned to the broken revision at 20 s. Upstream, a traffic block naming a revision that
    // is not Ready is not programmed at all: `addRevisionTarget` returns `errUnreadyRevision`
    // (serving pkg/reconciler/route/traffic/traffic.go:395-397) and `configureTraffic` marks the
    // Route not ready and returns without configuring it ("Traffic targets aren't ready, no
    // need to configure Route", pkg/reconciler/route/route.go:475-481), so the ingress keeps the
    // split it had: every request still goes to v1, none waits for v2.
    let text = crash_loop_text(
        "  - revisionName: v1\n    percent: 100\n",
        "  - at: 20s\n    traffic: [{revisionName: v2, percent: 100}]\n",
    );
    let report = run(&text);
    let [v1, v2] = report.revisions() else {
        panic!("two revisions")
    };
    assert_eq!(v2.counts.arrived, 0, "{v2:?}");
    assert_eq!(v1.counts.served, report.totals().arrived);
    assert!(v2.pod_crashes >= 3, "{v2:?}");
}

#[test]
fn a_timeline_failure_event_changes_the_revision_from_then_on() {
    // v2 is healthy until 30 s, then answers every request with 503; at 45 s it is healthy
    // again (the event's block replaces the revision's).
    let timeline =
        "timeline:\n  - at: 30s\n    failure: {revision: v2, error_rate: 1, error_status: 503}\n\
                    \x20 - at: 45s\n    failure: {revision: v2}\n";
    let report = run(&scenario_text("", timeline));
    for k in 0..report.windows() {
        let c = report.cell(k, 1);
        // The windows holding 30 s and 45 s are split; before and after, nothing fails; in
        // between, nothing is served.
        if !(30..=45).contains(&k) {
            assert_eq!(c.ended.app_error, 0, "window {k}");
        } else if (31..45).contains(&k) {
            assert_eq!(c.ended.served, 0, "window {k}: {c:?}");
        }
    }
    let v2 = &report.revisions()[1];
    assert!(v2.counts.app_error > 500, "{v2:?}");
    assert_eq!(report.revisions()[0].counts.app_error, 0);
}

#[test]
fn cost_counts_both_revisions_pods_during_a_rollout() {
    // v1 has 2 pods all along; v2 (created at 20 s, 3 pods) runs beside it: 5 pods at once.
    let text =
        "name: cost\nduration: 60s\nseed: 1\nservice:\n  name: hello\n  rollout_duration: 0s\n\
                revisions:\n  - name: v1\n    service_time: {constant: 10ms}\n    pods: 2\n\
                \x20 - name: v2\n    service_time: {constant: 10ms}\n    pods: 3\n\
                traffic:\n  - latestRevision: true\n    percent: 100\n\
                timeline:\n  - at: 20s\n    create_revision: v2\n\
                arrivals:\n  constant: {rate: 10}\nautoscaler:\n  enabled: false\n";
    let report = run(text);
    let end_s = report.summary_json()["engine"]["sim_s"]
        .as_f64()
        .expect("sim_s");
    let cost = report.cost();
    assert_eq!(cost.peak_total_pods, 5);
    let [v1, v2] = report.revisions() else {
        panic!("two revisions")
    };
    assert_eq!((v1.peak_pods, v2.peak_pods), (2, 3));
    assert!((v1.pod_seconds - 2.0 * end_s).abs() < 1e-6, "{v1:?}");
    assert!(
        (v2.pod_seconds - 3.0 * (end_s - 20.0)).abs() < 1e-6,
        "{v2:?}"
    );
    assert!((cost.pod_seconds - v1.pod_seconds - v2.pod_seconds).abs() < 1e-6);
    let json = report.summary_json();
    assert_eq!(json["cost"]["peak_total_pods"], 5);
    assert_eq!(json["revisions"]["v2"]["cost"]["peak_pods"], 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Whatever the failure settings, every request ends in exactly one outcome (or is in flight
    /// at the end), overall and per revision.
    #[test]
    fn any_failure_keeps_the_accounting_balanced(
        rate in 0.0f64..=1.0,
        multiplier in 0.5f64..4.0,
        ready_before_ms in 0u64..4000,
        crash_mean_s in 1u64..30,
        crash_loop in any::<bool>(),
        at_s in 1u64..59,
    ) {
        let failure = format!(
            "      error_rate: {rate}\n      latency: {{multiplier: {multiplier}}}\n\
             \x20     ready_before_serving: {ready_before_ms}ms\n\
             \x20     crash_after: {{exponential: {{mean: {crash_mean_s}s}}}}\n"
        );
        let timeline = format!(
            "timeline:\n  - at: {at_s}s\n    failure: {{revision: v2, crash_loop: {crash_loop}, error_rate: {rate}}}\n\
             \x20 - at: {at_s}s\n    scale: {{revision: v2, pods: 3}}\n"
        );
        // `run` asserts the accounting.
        run(&scenario_text(&failure, &timeline));
    }
}
