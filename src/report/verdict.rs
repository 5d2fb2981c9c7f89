//! The verdict a run's `report.html` leads with: what happened to each revision, in sentences a
//! person reads before any table, and the table of the few figures they act on.
//!
//! Owns: turning a run's `summary.json` (simulated, live or load: the same schema) into those
//! sentences and that table. Reads the JSON, not the recorder, so `splitlab plot` rebuilds the
//! same page from the files alone.
//!
//! Must not: judge against SLOs (that is `bound`/`slo`: a run has none) or invent figures the
//! summary does not have; a figure that is zero or absent (a load run has no pods or queues) is
//! left out rather than said as zero.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::Table;
use super::record::Outcome;

/// Every way a request can fail, in the summary's accounting order, with what it means to an
/// operator (the status a client saw and who answered it).
const FAILURES: [(Outcome, &str); 8] = [
    (
        Outcome::RejectedQp,
        "rejected by the queue-proxy (503, queue full)",
    ),
    (Outcome::ExpiredActivator, "expired at the activator (504)"),
    (Outcome::ExpiredQp, "expired at the queue-proxy (504)"),
    (Outcome::ClientCancelled, "cancelled by the client"),
    (Outcome::AppError, "application errors"),
    (
        Outcome::BadGateway,
        "502s (application not listening or crashed)",
    ),
    (Outcome::Error, "transport errors (no HTTP response)"),
    (
        Outcome::IngressOverflow,
        "rejected by the ingress's circuit breaker (503)",
    ),
];

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency for reading: whole milliseconds from 10 ms, else one decimal; seconds from 10 s.
fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// A time in the run: `130 s`, `12.5 s`.
fn secs(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.1} s")
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_string();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else if p >= 0.1 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The failures of a counts object, largest first: `3,000 application errors, 1,000 rejected ...`.
fn failure_list(counts: &Value) -> (u64, String) {
    let mut parts: Vec<(u64, &str)> = FAILURES
        .iter()
        .map(|(outcome, what)| (count(counts, outcome.name()), *what))
        .filter(|(n, _)| *n > 0)
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.0));
    let total = parts.iter().map(|(n, _)| n).sum();
    let text = parts
        .iter()
        .map(|(n, what)| format!("{} {what}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    (total, text)
}

/// The verdict's sentences: the run as a whole first, then one per revision, then the split and
/// the rollouts. Empty for a summary without requests.
pub fn sentences(summary: &Value) -> Vec<String> {
    let Some(requests) = summary.get("requests") else {
        return Vec::new();
    };
    let arrived = count(requests, "arrived");
    let mut out = Vec::new();
    let (failed, causes) = failure_list(requests);
    let in_flight = count(requests, "in_flight_at_end");
    let mut head = if arrived == 0 {
        "No request arrived.".to_string()
    } else if failed == 0 {
        format!("All {} requests were served.", thousands(arrived))
    } else {
        format!(
            "{} of {} requests ({}) failed: {causes}.",
            thousands(failed),
            thousands(arrived),
            pct(failed, arrived)
        )
    };
    if in_flight > 0 {
        let _ = write!(
            head,
            " {} were still in flight when the run ended.",
            thousands(in_flight)
        );
    }
    // With more than one revision, what the Service's clients saw: every served request's
    // latency pooled (not an average of the revisions' percentiles), what an SLO is written on.
    let revisions = summary.get("revisions").and_then(Value::as_object);
    let pooled = (
        number(summary, &["latency_ms", "p50"]),
        number(summary, &["latency_ms", "p99"]),
    );
    if let (true, (Some(p50), Some(p99))) = (revisions.is_some_and(|r| r.len() > 1), pooled) {
        let _ = write!(
            head,
            " Over all revisions, clients saw p50 {} and p99 {}.",
            ms(p50),
            ms(p99)
        );
    }
    out.push(head);

    if let Some(revisions) = revisions {
        for (name, rev) in revisions {
            out.push(revision_sentence(name, rev, arrived));
        }
    }

    let noise = number(summary, &["split", "noise_at_max_pct"]);
    let measured = number(summary, &["split", "windows_measured"]).unwrap_or(0.0);
    let outside = number(summary, &["split", "windows_outside_band"]).unwrap_or(0.0);
    let max_gap = number(summary, &["split", "max_abs_error_pct"]);
    if let (Some(err), Some(noise), true) = (max_gap, noise, measured > 0.0) {
        out.push(split_sentence(err, noise, outside, measured));
    } else if let Some(err) = number(summary, &["split", "max_abs_error_pct"]) {
        out.push(format!(
            "Split: the largest gap between a window's observed share and the programmed split was \
             {err:.1} percentage points (binomial noise alone gives a few points in windows of a \
             few hundred requests; the split chart's band shows where noise ends)."
        ));
    }
    if let Some(Value::Object(rollouts)) = summary.get("rollout") {
        for (config, span) in rollouts {
            let started = number(span, &["started_s"]);
            let finished = number(span, &["finished_s"]);
            out.push(match (started, finished) {
                (Some(a), Some(b)) => format!(
                    "Rollout of {config}: from {} to {} ({}).",
                    secs(a),
                    secs(b),
                    secs(((b - a) * 10.0).round() / 10.0)
                ),
                (Some(a), None) => format!(
                    "Rollout of {config}: started at {} and had not finished when the run ended.",
                    secs(a)
                ),
                _ => format!("Rollout of {config}: never started."),
            });
        }
    }
    out
}

/// One revision: what it received, how it ended, its worst latency and when, its queues and pods.
fn revision_sentence(name: &str, rev: &Value, all: u64) -> String {
    let routed = count(rev, "arrived");
    let mut s = format!(
        "{name} received {} requests ({} of all)",
        thousands(routed),
        pct(routed, all)
    );
    let (failed, causes) = failure_list(rev);
    if routed == 0 {
        s.push('.');
    } else if failed == 0 {
        s.push_str(": all served.");
    } else {
        let _ = write!(
            s,
            ": {} failed ({}): {causes}.",
            thousands(failed),
            pct(failed, routed)
        );
    }
    if let Some(p99) = number(rev, &["latency_ms", "p99"]) {
        let _ = write!(s, " p99 {}", ms(p99));
        let worst = rev.get("worst_window");
        match (
            worst.and_then(|w| number(w, &["p99_ms"])),
            worst.and_then(|w| number(w, &["start_s"])),
            worst.and_then(|w| number(w, &["end_s"])),
        ) {
            (Some(w), Some(a), Some(b)) if w > p99 => {
                let _ = write!(
                    s,
                    " overall, worst {} in the window {}–{}.",
                    ms(w),
                    secs(a).trim_end_matches(" s"),
                    secs(b)
                );
            }
            _ => s.push('.'),
        }
    }
    let qp = count(rev, "peak_qp_queue");
    let act = count(rev, "peak_activator_queue");
    match (qp, act) {
        (0, 0) => {}
        (0, a) => {
            let _ = write!(
                s,
                " Requests waited at the activator (peak queue {}).",
                thousands(a)
            );
        }
        (q, 0) => {
            let _ = write!(
                s,
                " Requests queued in its queue-proxies (peak {}).",
                thousands(q)
            );
        }
        (q, a) => {
            let _ = write!(
                s,
                " Peak queues: activator {}, queue-proxy {}.",
                thousands(a),
                thousands(q)
            );
        }
    }
    let pods = count(rev, "max_ready_pods");
    if pods > 0 {
        let _ = write!(s, " Up to {pods} ready pods");
        match number(rev, &["panic_seconds"]) {
            Some(p) if p > 0.0 => {
                let _ = write!(s, ", {} in panic mode.", secs(p));
            }
            _ => s.push('.'),
        }
    }
    let crashes = count(rev, "pod_crashes");
    if crashes > 0 {
        let _ = write!(s, " {crashes} pod crashes.");
    }
    s
}

/// The figures a reader acts on, one row per revision: what it got, what failed, the tail and
/// its worst window, the queues and the pods. Every other field is in the full tables.
pub fn key_table(summary: &Value) -> Option<Table> {
    let Value::Object(revisions) = summary.get("revisions")? else {
        return None;
    };
    let header = [
        "revision",
        "requests",
        "served",
        "failed",
        "p50 ms",
        "p99 ms",
        "worst window p99 ms",
        "worst window",
        "worst p99 in the shift ms",
        "peak QP queue",
        "peak activator queue",
        "max ready pods",
    ];
    let opt = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.1}"));
    let rows = revisions
        .iter()
        .map(|(name, rev)| {
            let worst = rev.get("worst_window");
            let window = match (
                worst.and_then(|w| number(w, &["start_s"])),
                worst.and_then(|w| number(w, &["end_s"])),
            ) {
                (Some(a), Some(b)) => format!("{a}–{b} s"),
                _ => String::new(),
            };
            vec![
                name.clone(),
                count(rev, "arrived").to_string(),
                count(rev, "served").to_string(),
                failure_list(rev).0.to_string(),
                opt(number(rev, &["latency_ms", "p50"])),
                opt(number(rev, &["latency_ms", "p99"])),
                opt(worst.and_then(|w| number(w, &["p99_ms"]))),
                window,
                opt(number(rev, &["p99_shift_ms"])),
                count(rev, "peak_qp_queue").to_string(),
                count(rev, "peak_activator_queue").to_string(),
                count(rev, "max_ready_pods").to_string(),
            ]
        })
        .collect();
    Some(Table {
        caption: "per revision: the key figures (every field is in the full tables below)"
            .to_string(),
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    })
}

/// The split's largest gap beside the noise at its window, and how many window shares were
/// outside their binomial 95% band. Noise alone puts about 5% of them outside; the split is
/// called more than noise when the count exceeds that by more than 3 standard deviations of a
/// Binomial(measured, 0.05) (plus one, for small counts).
fn split_sentence(err: f64, noise: f64, outside: f64, measured: f64) -> String {
    let expected = 0.05 * measured;
    let limit = expected + 3.0 * (measured * 0.05 * 0.95).sqrt() + 1.0;
    let verdict = if outside <= limit {
        "within binomial noise"
    } else {
        "more than binomial noise explains: look at the split chart's dots outside the band"
    };
    format!(
        "Split: the largest gap between a window's observed share and the programmed split was \
         {err:.1} percentage points, where binomial noise alone spans ±{noise:.1}; {} of {} \
         window shares ({:.1}%) were outside their 95% band, about 5% from noise alone: {verdict}.",
        thousands(outside as u64),
        thousands(measured as u64),
        outside * 100.0 / measured,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome but `served` is a failure the verdict names.
    #[test]
    fn failures_cover_every_outcome_but_served() {
        let named: Vec<Outcome> = FAILURES.iter().map(|(o, _)| *o).collect();
        let failures: Vec<Outcome> = Outcome::ALL
            .into_iter()
            .filter(|o| *o != Outcome::Served)
            .collect();
        assert_eq!(named, failures);
    }

    fn summary(revisions: Value, requests: Value) -> Value {
        serde_json::json!({
            "scenario": "s", "seed": 1, "mode": "sim",
            "requests": requests,
            "revisions": revisions,
            "split": {"max_abs_error_pct": 2.345},
            "rollout": {"hello": {"started_s": 40.0, "finished_s": 159.2}},
        })
    }

    #[test]
    fn a_healthy_run_says_everything_was_served_and_where_latency_peaked() {
        let s = summary(
            serde_json::json!({
                "hello-00001": {"arrived": 1000, "served": 1000,
                    "latency_ms": {"p50": 80.0, "p99": 300.0},
                    "worst_window": {"p99_ms": 640.0, "start_s": 153.0, "end_s": 154.0, "served": 58},
                    "peak_qp_queue": 0, "peak_activator_queue": 0, "max_ready_pods": 15,
                    "panic_seconds": 0.0},
                "hello-00002": {"arrived": 3000, "served": 3000,
                    "latency_ms": {"p50": 90.0, "p99": 403.4},
                    "worst_window": {"p99_ms": 829.4, "start_s": 55.0, "end_s": 56.0, "served": 171},
                    "peak_qp_queue": 0, "peak_activator_queue": 278, "max_ready_pods": 33,
                    "panic_seconds": 138.0},
            }),
            serde_json::json!({"arrived": 4000, "served": 4000, "in_flight_at_end": 0}),
        );
        let got = sentences(&s);
        assert_eq!(
            got,
            [
                "All 4,000 requests were served.",
                "hello-00001 received 1,000 requests (25% of all): all served. p99 300 ms \
                 overall, worst 640 ms in the window 153–154 s. Up to 15 ready pods.",
                "hello-00002 received 3,000 requests (75% of all): all served. p99 403 ms \
                 overall, worst 829 ms in the window 55–56 s. Requests waited at the activator \
                 (peak queue 278). Up to 33 ready pods, 138 s in panic mode.",
                "Split: the largest gap between a window's observed share and the programmed \
                 split was 2.3 percentage points (binomial noise alone gives a few points in \
                 windows of a few hundred requests; the split chart's band shows where noise \
                 ends).",
                "Rollout of hello: from 40 s to 159.2 s (119.2 s).",
            ]
        );
    }

    #[test]
    fn the_split_gap_is_said_beside_its_noise() {
        // (max gap, noise there, outside, measured, sentence ends)
        let cases = [
            // 4.6 points at ±4.8 noise, 9 of 160 outside (5.6%): noise
            (
                4.6,
                4.8,
                9.0,
                160.0,
                "9 of 160 window shares (5.6%) were outside their 95% \
              band, about 5% from noise alone: within binomial noise.",
            ),
            // 40 of 160 outside: more than noise
            (
                12.0,
                4.8,
                40.0,
                160.0,
                "40 of 160 window shares (25.0%) were outside their 95% \
              band, about 5% from noise alone: more than binomial noise explains: look at the \
              split chart's dots outside the band.",
            ),
        ];
        for (err, noise, outside, measured, end) in cases {
            let mut s = summary(serde_json::json!({}), serde_json::json!({"arrived": 0}));
            s["split"] = serde_json::json!({
                "max_abs_error_pct": err, "noise_at_max_pct": noise,
                "windows_measured": measured, "windows_outside_band": outside
            });
            let got = sentences(&s);
            let split = got
                .iter()
                .find(|l| l.starts_with("Split:"))
                .expect("a split sentence");
            assert!(
                split.contains(&format!("binomial noise alone spans ±{noise:.1}")),
                "{split}"
            );
            assert!(split.ends_with(end), "{split}");
        }
    }

    #[test]
    fn failures_are_counted_by_cause_largest_first() {
        let s = summary(
            serde_json::json!({
                "v1": {"arrived": 6000, "served": 6000, "latency_ms": {"p99": 5.25}},
                "v2": {"arrived": 4000, "served": 2500, "app_error": 400, "rejected_qp": 1000,
                       "expired_activator": 100, "latency_ms": {"p99": 12000.0},
                       "peak_qp_queue": 10, "peak_activator_queue": 7, "pod_crashes": 2},
            }),
            serde_json::json!({"arrived": 10000, "served": 8500, "app_error": 400,
                "rejected_qp": 1000, "expired_activator": 100, "in_flight_at_end": 3}),
        );
        let got = sentences(&s);
        assert_eq!(
            got[0],
            "1,500 of 10,000 requests (15%) failed: 1,000 rejected by the queue-proxy (503, \
             queue full), 400 application errors, 100 expired at the activator (504). 3 were \
             still in flight when the run ended."
        );
        // no worst window in the summary: p99 alone; sub-10 ms latencies keep a decimal
        assert_eq!(
            got[1],
            "v1 received 6,000 requests (60% of all): all served. p99 5.2 ms."
        );
        assert_eq!(
            got[2],
            "v2 received 4,000 requests (40% of all): 1,500 failed (38%): 1,000 rejected by \
             the queue-proxy (503, queue full), 400 application errors, 100 expired at the \
             activator (504). p99 12.0 s. Peak queues: activator 7, queue-proxy 10. 2 pod \
             crashes."
        );
    }

    #[test]
    fn a_load_run_without_pods_or_queues_says_only_what_it_measured() {
        let s = serde_json::json!({
            "requests": {"arrived": 10, "errors": 10},
            "revisions": {"unlabelled": {"arrived": 10, "errors": 10, "latency_ms": null}},
            "rollout": {"hello": {"started_s": 3.0, "finished_s": null}},
        });
        assert_eq!(
            sentences(&s),
            [
                "10 of 10 requests (100%) failed: 10 transport errors (no HTTP response).",
                "unlabelled received 10 requests (100% of all): 10 failed (100%): 10 transport \
                 errors (no HTTP response).",
                "Rollout of hello: started at 3 s and had not finished when the run ended.",
            ]
        );
        assert!(sentences(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn the_service_wide_latency_leads_when_there_are_several_revisions() {
        let rev =
            |p99: f64| serde_json::json!({"arrived": 10, "served": 10, "latency_ms": {"p99": p99}});
        let requests = serde_json::json!({"arrived": 20, "served": 20});
        let mut two = summary(
            serde_json::json!({"a": rev(9.0), "b": rev(300.0)}),
            requests.clone(),
        );
        two["latency_ms"] = serde_json::json!({"p50": 4.25, "p99": 290.0});
        assert_eq!(
            sentences(&two)[0],
            "All 20 requests were served. Over all revisions, clients saw p50 4.2 ms and p99 \
             290 ms."
        );
        // One revision: its own sentence says it; a summary from before the block: nothing.
        let mut one = summary(serde_json::json!({"a": rev(9.0)}), requests.clone());
        one["latency_ms"] = serde_json::json!({"p50": 4.25, "p99": 9.0});
        assert_eq!(sentences(&one)[0], "All 20 requests were served.");
        let older = summary(
            serde_json::json!({"a": rev(9.0), "b": rev(300.0)}),
            requests,
        );
        assert_eq!(sentences(&older)[0], "All 20 requests were served.");
    }

    #[test]
    fn key_table_has_one_row_per_revision_with_the_acted_on_figures() {
        let s = summary(
            serde_json::json!({
                "a": {"arrived": 10, "served": 8, "app_error": 2,
                      "latency_ms": {"p50": 1.25, "p99": 9.0},
                      "worst_window": {"p99_ms": 20.0, "start_s": 3.0, "end_s": 4.0, "served": 5},
                      "p99_shift_ms": 12.5,
                      "peak_qp_queue": 4, "peak_activator_queue": 0, "max_ready_pods": 2},
                "b": {"arrived": 0, "latency_ms": null},
            }),
            serde_json::json!({"arrived": 10}),
        );
        let t = key_table(&s).expect("revisions");
        assert_eq!(t.header.len(), 12);
        assert_eq!(
            t.rows,
            [
                ["a", "10", "8", "2", "1.2", "9.0", "20.0", "3–4 s", "12.5", "4", "0", "2"],
                ["b", "0", "0", "0", "", "", "", "", "", "0", "0", "0"],
            ]
        );
        assert_eq!(key_table(&serde_json::json!({})), None);
    }

    #[test]
    fn numbers_read_well() {
        // (n, thousands)
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), want);
        }
        // (ms, text): a decimal below 10 ms, whole ms up to 10 s, then seconds
        for (v, want) in [
            (5.25, "5.2 ms"),
            (403.4, "403 ms"),
            (9999.0, "9999 ms"),
            (12000.0, "12.0 s"),
        ] {
            assert_eq!(ms(v), want);
        }
        // (part, whole, percent)
        for (p, w, want) in [
            (1, 3, "33%"),
            (1, 200, "0.5%"),
            (1, 10000, "0.01%"),
            (0, 5, "0%"),
            (1, 0, "0%"),
        ] {
            assert_eq!(pct(p, w), want, "{p}/{w}");
        }
    }
}
