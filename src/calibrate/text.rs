//! The calibrated scenario's text: the YAML `splitlab run` reads, with a header naming the
//! source, the range and every query, and a comment on each value naming the query it came
//! from (`[key]`).
//!
//! Must not: derive anything (the parent module hands over finished values).

use std::fmt::Write as _;

use super::SPLIT_THRESHOLD_PCT;
use super::{derive, timestamp, Answer, Frame, Inputs, ManifestInput, Pods, ServiceTime, Traffic};

/// Everything the text is written from.
pub(super) struct Parts<'a> {
    pub inputs: &'a Inputs,
    pub knative: Option<&'a ManifestInput>,
    pub configmaps: &'a [&'a ManifestInput],
    pub frame: &'a Frame,
    pub requests: &'a Answer,
    pub latency: &'a Answer,
    pub traffic: &'a Traffic,
    pub service_times: &'a [ServiceTime],
    pub pods: &'a Pods,
    pub notes: &'a [String],
}

/// The scenario's text and the summary lines for the user.
pub(super) fn scenario(p: &Parts) -> (String, Vec<String>) {
    let mut y = String::new();
    let mut summary = Vec::new();
    let w = &mut y;
    let f = p.frame;
    let set = p.requests.query.set;
    let (ns, svc) = (p.inputs.namespace.as_str(), p.inputs.service.as_str());
    summary.push(format!("names: {}", set.describe()));
    summary.push(format!(
        "range: {} .. {} ({}), step {}",
        timestamp::format_instant(f.from),
        timestamp::format_instant(f.to),
        secs(f.duration_s),
        secs(f.step_s)
    ));

    // The header: where, when, which queries.
    let _ = writeln!(
        w,
        "# Calibrated by `splitlab calibrate` from {}",
        p.inputs.source
    );
    let _ = writeln!(w, "# ({}) for the Service {ns}/{svc}.", set.describe());
    let _ = writeln!(
        w,
        "# Time range: {} .. {} (unix {} .. {}), step {}; scenario time 0s is {}.",
        timestamp::format_instant(f.from),
        timestamp::format_instant(f.to),
        num(f.from),
        num(f.to),
        secs(f.step_s),
        timestamp::format_instant(f.from)
    );
    match f.rate_window_s {
        Some(rw) => {
            let _ = writeln!(
                w,
                "# A rate is Prometheus' average over the query's {} window; each step of the schedule and the",
                secs(rw)
            );
            let _ = writeln!(
                w,
                "# timeline starts {} before its sample (half the window and half a sample step), centred on it.",
                secs(f.shift_s)
            );
        }
        None => {
            let _ = writeln!(
                w,
                "# The query texts are not in the dump: rates are placed at their sample times."
            );
        }
    }
    let _ = writeln!(
        w,
        "# Queries (each value below names the one it came from):"
    );
    let answers = [Some(p.requests), Some(p.latency)]
        .into_iter()
        .chain([
            p.pods.ready.as_ref().map(|c| &c.0),
            p.pods.requested.as_ref().map(|c| &c.0),
        ])
        .flatten();
    for a in answers {
        let text = a.fetched.promql.as_deref().unwrap_or(&a.query.promql);
        let _ = writeln!(w, "#   {} {}", a.tag(), one_line(text));
        let _ = writeln!(
            w,
            "#     answered by {}: {} series",
            a.fetched.origin,
            a.series.len()
        );
    }
    for n in p.notes {
        let _ = writeln!(w, "# note: {}", one_line(n));
    }

    // The Service and the files it points at.
    let _ = writeln!(w, "name: {}", scenario_name(svc));
    let _ = writeln!(w, "duration: {}", secs(f.duration_s));
    let _ = writeln!(w, "seed: 1");
    let _ = writeln!(w, "service:");
    let _ = writeln!(w, "  name: {}", yaml_str(svc));
    let _ = writeln!(w, "  namespace: {}", yaml_str(ns));
    if let Some(m) = p.knative {
        let _ = writeln!(
            w,
            "  manifest: {}   # --manifests: the Service, its revisions' annotations, containerConcurrency and timeouts",
            yaml_str(&m.scenario_path)
        );
    }
    if !p.configmaps.is_empty() {
        let _ = writeln!(w, "cluster:");
        let _ = writeln!(w, "  configmaps:   # --manifests: the cluster's ConfigMaps");
        for c in p.configmaps {
            let _ = writeln!(w, "    - {}", yaml_str(&c.scenario_path));
        }
    }

    // Revisions.
    let t = p.traffic;
    let _ = writeln!(w, "revisions:");
    let mut any_lag = false;
    for (rev, st) in t.revisions.iter().zip(p.service_times) {
        let count = st.buckets.last().map_or(0.0, |b| b.1);
        let q = |q: f64| {
            st.dist
                .histogram_quantile(q)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let _ = writeln!(w, "  - name: {}", yaml_str(rev));
        let _ = writeln!(
            w,
            "    # {} {} application latency histogram over the range: {:.0} requests, mean {}, p50 {}, p90 {}, p99 {} (interpolated as histogram_quantile)",
            p.latency.tag(),
            st.whose,
            count,
            ms(st.dist.mean_secs()),
            ms(q(0.5)),
            ms(q(0.9)),
            ms(q(0.99))
        );
        let _ = writeln!(w, "    service_time:");
        let _ = writeln!(w, "      empirical:");
        let _ = writeln!(w, "        buckets:");
        for (le, c) in &st.buckets {
            let le = le.map_or("+Inf".to_string(), ms);
            let _ = writeln!(w, "          - {{le: {le}, count: {}}}", num(*c));
        }
        summary.push(format!(
            "{rev}: {:.1}% of requests; service time p50 {}, p99 {}",
            f.requests_of(&t.by_rev[rev]) / t.total_requests * 100.0,
            ms(q(0.5)),
            ms(q(0.99))
        ));
        any_lag |= pods(w, p, rev);
    }

    // Traffic: the split at 0s and its changes, every block with the tags' targets.
    let tag_label = set.tag_label();
    let tag_targets: Vec<String> = t
        .tags
        .iter()
        .map(|r| {
            format!(
                "{{tag: {}, revisionName: {}, percent: 0}}",
                yaml_str(&r.tag),
                yaml_str(&r.revision)
            )
        })
        .collect();
    let block = |pct: &[u32]| -> Vec<String> {
        let mut targets: Vec<String> = t
            .revisions
            .iter()
            .zip(pct)
            .filter(|(_, p)| **p > 0)
            .map(|(r, p)| format!("{{revisionName: {}, percent: {p}}}", yaml_str(r)))
            .collect();
        targets.extend(tag_targets.iter().cloned());
        targets
    };
    let _ = writeln!(
        w,
        "traffic:   # {} the split of untagged requests at 0s; tags as {tag_label} shows them",
        p.requests.tag()
    );
    for target in block(&t.initial_split) {
        let _ = writeln!(w, "  - {target}");
    }
    if t.splits.len() > 1 {
        let _ = writeln!(
            w,
            "timeline:   # {} the split whenever it moved by {SPLIT_THRESHOLD_PCT} points or more",
            p.requests.tag()
        );
        for (k, pct) in &t.splits[1..] {
            let _ = writeln!(
                w,
                "  - {{at: {}, traffic: [{}]}}",
                secs(f.at(*k)),
                block(pct).join(", ")
            );
        }
    }

    // Arrivals: the schedule, one step per bin (equal neighbours merged), and the tags.
    let _ = writeln!(w, "arrivals:");
    let _ = writeln!(
        w,
        "  schedule:   # {} the total request rate (req/s) of every revision",
        p.requests.tag()
    );
    let _ = writeln!(w, "    poisson: true");
    let _ = writeln!(w, "    points:");
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (k, rate) in t.total.iter().enumerate() {
        let at = round3(f.at(k));
        let rate = round3(*rate);
        match points.last_mut() {
            Some(last) if last.0 == at => last.1 = rate,
            Some(last) if last.1 == rate => {}
            _ => points.push((at, rate)),
        }
    }
    for (at, rate) in &points {
        let _ = writeln!(w, "      - {{at: {}, rate: {}}}", secs(*at), num(*rate));
    }
    if !t.tags.is_empty() {
        let _ = writeln!(
            w,
            "  tags:   # {} each tag's share of all requests ({tag_label})",
            p.requests.tag()
        );
        for r in &t.tags {
            let _ = writeln!(w, "    {}: {}", yaml_str(&r.tag), num6(r.share));
        }
    }
    if any_lag {
        let _ = writeln!(w, "kubernetes:");
        let _ = writeln!(
            w,
            "  readiness_delay: {{constant: 0s}}   # included in startup: the ready-pod counts are Kubernetes-Ready pods"
        );
    }
    let scheduled: f64 = points
        .iter()
        .enumerate()
        .map(|(i, (at, rate))| {
            let end = points.get(i + 1).map_or(f.duration_s, |next| next.0);
            rate * (end - at).max(0.0)
        })
        .sum();
    summary.push(format!(
        "arrivals: {} schedule points, {:.2} req/s on average; {} split change(s); {} tag(s)",
        points.len(),
        scheduled / f.duration_s,
        t.splits.len().saturating_sub(1),
        t.tags.len()
    ));
    (y, summary)
}

/// A revision's `pods` and `startup`; whether a start-up lag was written.
fn pods(w: &mut String, p: &Parts, rev: &str) -> bool {
    let Some((ready_answer, ready)) = &p.pods.ready else {
        return false;
    };
    let series = ready.get(rev);
    let start = series.and_then(|s| s.first()).copied().unwrap_or(0.0);
    let max = series.map_or(0.0, |s| s.iter().copied().fold(0.0, f64::max));
    let _ = writeln!(
        w,
        "    pods: {}   # {} ready pods at 0s ({} at most over the range)",
        start.round() as i64,
        ready_answer.tag(),
        max.round() as i64
    );
    let Some((requested_answer, requested)) = &p.pods.requested else {
        return false;
    };
    let lags = match (requested.get(rev), series) {
        (Some(req), Some(ready)) => derive::startup_lags(req, ready, p.frame.step_s),
        _ => Vec::new(),
    };
    let (Some(lo), Some(hi)) = (
        lags.iter().copied().min_by(f64::total_cmp),
        lags.iter().copied().max_by(f64::total_cmp),
    ) else {
        let _ = writeln!(
            w,
            "    # startup: the default; {} shows no scale-up that {} completed in the range",
            requested_answer.tag(),
            ready_answer.tag()
        );
        return false;
    };
    let dist = if lo == hi {
        format!("{{constant: {}}}", secs(lo))
    } else {
        format!("{{uniform: {{min: {}, max: {}}}}}", secs(lo), secs(hi))
    };
    let _ = writeln!(
        w,
        "    startup: {dist}   # {} rose {} times; {} reached each in {}..{} (to the step)",
        requested_answer.tag(),
        lags.len(),
        ready_answer.tag(),
        secs(lo),
        secs(hi)
    );
    true
}

/// A scenario name from a Service name: `calibrated-<name>`, lower-case letters, digits, `-`.
fn scenario_name(service: &str) -> String {
    let cleaned: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("calibrated-{cleaned}")
}

/// A YAML scalar, quoted when plain style would change its meaning.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serialises")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A number with at most three decimals, no trailing zeros.
pub(super) fn num(x: f64) -> String {
    trim(format!("{:.3}", round3(x)))
}

pub(super) fn num6(x: f64) -> String {
    trim(format!("{x:.6}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Seconds as a Go duration (`12.5s`).
fn secs(s: f64) -> String {
    format!("{}s", num(s))
}

/// Seconds as a Go duration in milliseconds (`5ms`, `2500ms`, `0.5ms`).
fn ms(s: f64) -> String {
    format!("{}ms", num(s * 1000.0))
}
