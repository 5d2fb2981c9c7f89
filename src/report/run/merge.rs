//! A run's mergeable parts: what a shard of a sharded `splitlab load` run keeps so that
//! `splitlab merge` rebuilds the run's report exactly (counts added, latency histograms merged,
//! never percentiles averaged).
//!
//! Owns: `RunParts` (serde, one line of a load shard), merging several of them, and turning
//! the merged parts back into a [`RunReport`].
//!
//! Must not: read files or know about shards' headers (the caller checks those).
//!
//! Invariants: the parts hold what a load run records: counts, routing, latency and the
//! programmed split per window. A load run records no gauges, pods, autoscaler ticks,
//! rollouts or analysis, so the merged report has none (its `requests.csv`, a per-request
//! log, is not merged either: request ids are per shard).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{
    new_histogram, quantile_us, Cost, Counts, EngineStats, RevisionSummary, RunMeta, RunReport,
    Served, WindowCell,
};
use crate::model::time::SimDuration;

/// A latency histogram (microseconds) in HdrHistogram's V2 deflate encoding, base64, with
/// its exact maximum (the histogram's own is the top of a bucket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodedLatency {
    pub count: u64,
    pub max_us: u64,
    /// `None` when empty.
    pub histogram: Option<String>,
}

impl EncodedLatency {
    pub fn of(h: &Histogram<u64>, max_us: u64) -> Self {
        EncodedLatency {
            count: h.len(),
            max_us,
            histogram: (!h.is_empty()).then(|| {
                crate::report::hdr::to_base64(h)
                    .expect("encoding a histogram into memory fails only for counts above i64::MAX")
            }),
        }
    }

    /// The histogram, auto-resizing (so others can be added to it).
    pub fn decode(&self) -> Result<Histogram<u64>, String> {
        let mut h = new_histogram();
        if let Some(text) = &self.histogram {
            let d = crate::report::hdr::from_base64(text)?;
            h.add(&d)
                .map_err(|e| format!("cannot add a decoded histogram: {e:?}"))?;
        }
        if h.len() != self.count {
            return Err(format!(
                "histogram holds {} values, its count says {}",
                h.len(),
                self.count
            ));
        }
        Ok(h)
    }
}

/// One revision's (a classifier label's) totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionParts {
    pub name: String,
    /// As `RevisionSummary::counts` (`arrived`: routed to it).
    pub counts: Counts,
    pub latency: EncodedLatency,
    pub latency_sum_us: u128,
}

/// One `timeseries.csv` cell (window × revision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellParts {
    pub programmed_pct: f64,
    pub routed: u64,
    pub routed_default: u64,
    pub ended: Counts,
    pub latency: EncodedLatency,
}

/// A latency histogram with the sum of its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyParts {
    pub latency: EncodedLatency,
    pub latency_sum_us: u128,
}

/// What [`super::RunRecorder::finish_parts`] keeps of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParts {
    pub revisions: Vec<RevisionParts>,
    pub totals: Counts,
    pub window_ns: i64,
    /// `window * revisions + revision`.
    pub cells: Vec<CellParts>,
    /// Per window, the outcomes of requests that reached no revision.
    pub unrouted: Vec<Counts>,
    /// The latency of requests served without reaching a revision (a load run's responses no
    /// label matched); absent when there were none (and in shards from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unrouted_latency: Option<LatencyParts>,
    pub routes_csv: String,
    pub clamped_calls: u64,
    pub events: u64,
    pub wall_s: f64,
    pub sim_s: f64,
}

impl RunParts {
    fn windows(&self) -> usize {
        self.cells.len() / self.revisions.len().max(1)
    }

    /// The parts of the whole run from its shards' (in shard order): counts added, histograms
    /// merged. Window k of every shard is the same wall-clock second (the shards started
    /// together); a window's programmed split is the first shard's that has the window.
    pub fn merge(shards: &[RunParts]) -> Result<MergedRun, String> {
        let first = shards.first().ok_or("no shards to merge")?;
        let names: Vec<&str> = first.revisions.iter().map(|r| r.name.as_str()).collect();
        for (i, s) in shards.iter().enumerate() {
            let theirs: Vec<&str> = s.revisions.iter().map(|r| r.name.as_str()).collect();
            if theirs != names {
                return Err(format!(
                    "shard {i} has labels {theirs:?}, shard 0 has {names:?}"
                ));
            }
            if s.window_ns != first.window_ns {
                return Err(format!(
                    "shard {i} has {} ns windows, shard 0 has {} ns",
                    s.window_ns, first.window_ns
                ));
            }
            if s.cells.len() != s.windows() * s.revisions.len() || s.unrouted.len() != s.windows() {
                return Err(format!(
                    "shard {i}: {} cells and {} unrouted rows do not make whole windows of {} labels",
                    s.cells.len(),
                    s.unrouted.len(),
                    s.revisions.len()
                ));
            }
        }
        let n = names.len();
        let windows = shards.iter().map(RunParts::windows).max().unwrap_or(0);
        let mut revisions = Vec::with_capacity(n);
        for (r, name) in names.iter().enumerate() {
            let mut counts = Counts::default();
            let mut served = Served::new();
            for (i, s) in shards.iter().enumerate() {
                let p = &s.revisions[r];
                counts.add(&p.counts);
                served.add(&decoded(&p.latency, p.latency_sum_us, i)?);
            }
            revisions.push((name.to_string(), counts, served));
        }
        let mut cells = Vec::with_capacity(windows * n);
        let mut unrouted = Vec::with_capacity(windows);
        for w in 0..windows {
            for r in 0..n {
                let mut cell = WindowCell::default();
                let mut programmed = None;
                let mut hist = new_histogram();
                let mut max_us = 0;
                for (i, s) in shards.iter().enumerate() {
                    let Some(c) = s.cells.get(w * n + r) else {
                        continue;
                    };
                    programmed.get_or_insert(c.programmed_pct);
                    cell.routed += c.routed;
                    cell.routed_default += c.routed_default;
                    cell.ended.add(&c.ended);
                    add_decoded(&mut hist, &c.latency, i)?;
                    max_us = max_us.max(c.latency.max_us);
                }
                cell.programmed_pct = programmed.unwrap_or(0.0);
                if !hist.is_empty() {
                    cell.p50_us = Some(quantile_us(&hist, 0.5, max_us));
                    cell.p99_us = Some(quantile_us(&hist, 0.99, max_us));
                }
                cells.push(cell);
            }
            let mut ended = Counts::default();
            for s in shards {
                if let Some(c) = s.unrouted.get(w) {
                    ended.add(c);
                }
            }
            unrouted.push(WindowCell {
                ended,
                ..WindowCell::default()
            });
        }
        let mut totals = Counts::default();
        for s in shards {
            totals.add(&s.totals);
        }
        let mut unrouted_latency = Served::new();
        for (i, s) in shards.iter().enumerate() {
            if let Some(p) = &s.unrouted_latency {
                unrouted_latency.add(&decoded(&p.latency, p.latency_sum_us, i)?);
            }
        }
        Ok(MergedRun {
            revisions,
            unrouted_latency,
            totals,
            window_ns: first.window_ns,
            cells,
            unrouted,
            routes_csv: first.routes_csv.clone(),
            clamped_calls: shards.iter().map(|s| s.clamped_calls).sum(),
            events: shards.iter().map(|s| s.events).sum(),
            wall_s: shards.iter().map(|s| s.wall_s).fold(0.0, f64::max),
            sim_s: shards.iter().map(|s| s.sim_s).fold(0.0, f64::max),
        })
    }
}

/// A shard's served latency: its encoded histogram decoded, with the sum kept beside it.
fn decoded(e: &EncodedLatency, sum_us: u128, shard: usize) -> Result<Served, String> {
    Ok(Served {
        hist: e.decode().map_err(|m| format!("shard {shard}: {m}"))?,
        sum_us,
        max_us: e.max_us,
    })
}

fn add_decoded(into: &mut Histogram<u64>, e: &EncodedLatency, shard: usize) -> Result<(), String> {
    let h = e.decode().map_err(|m| format!("shard {shard}: {m}"))?;
    into.add(&h)
        .map_err(|e| format!("shard {shard}: cannot merge a histogram: {e:?}"))
}

/// Merged parts, ready to become a report.
pub struct MergedRun {
    /// Name, counts, served latency.
    revisions: Vec<(String, Counts, Served)>,
    /// Requests served without reaching a revision.
    unrouted_latency: Served,
    totals: Counts,
    window_ns: i64,
    cells: Vec<WindowCell>,
    unrouted: Vec<WindowCell>,
    routes_csv: String,
    clamped_calls: u64,
    events: u64,
    wall_s: f64,
    sim_s: f64,
}

impl MergedRun {
    /// The report of the whole run, as one process would have made it.
    pub fn into_report(self, meta: RunMeta) -> RunReport {
        let mut all = self.unrouted_latency;
        let revisions = self
            .revisions
            .iter()
            .map(|(name, counts, served)| {
                all.add(served);
                RevisionSummary {
                    name: name.clone(),
                    counts: *counts,
                    routed: counts.arrived,
                    latency: served.summary(),
                    peak_qp_queue: 0,
                    peak_activator_queue: 0,
                    max_desired_pods: 0,
                    max_ready_pods: 0,
                    panic_seconds: 0.0,
                    cold_starts: 0,
                    pod_crashes: 0,
                    pod_restarts: 0,
                    pod_seconds: 0.0,
                    peak_pods: 0,
                }
            })
            .collect();
        let mut report = RunReport {
            meta,
            revisions,
            totals: self.totals,
            latency: all.summary(),
            window: SimDuration(self.window_ns),
            cells: self.cells,
            unrouted: self.unrouted,
            first_event: None,
            max_abs_error_pct: None,
            cost: Cost::default(),
            rollouts: Default::default(),
            engine: EngineStats {
                events: self.events,
                wall_s: self.wall_s,
                sim_s: self.sim_s,
            },
            routes_csv: self.routes_csv,
            autoscaler_csv: format!("{}\n", super::AUTOSCALER_HEADER),
            analysis_csv: None,
            analysis: None,
            requests: None,
            clamped_calls: self.clamped_calls,
            protocol: None,
            outside: None,
        };
        report.max_abs_error_pct = report.compute_max_abs_error_pct();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::super::RunRecorder;
    use super::*;
    use crate::model::time::SimTime;
    use crate::report::record::Outcome;

    /// One request: (id, arrived ns, finished ns, revision, outcome).
    type Req = (u64, i64, i64, Option<usize>, Outcome);

    /// `n` requests over `span_ns`, deterministic (xorshift), with latencies from 0.1 to 400 ms,
    /// mostly served, some errors and some that reached no revision.
    fn requests(n: u64, span_ns: i64) -> Vec<Req> {
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|id| {
                let arrived = (next() % span_ns as u64) as i64;
                let latency = 100_000 + (next() % 400_000_000) as i64;
                let (revision, outcome) = match next() % 20 {
                    0 => (None, Outcome::Error),
                    1 => (Some(1), Outcome::BadGateway),
                    // served, but no classifier label matched the response
                    2 => (None, Outcome::Served),
                    k if k < 12 => (Some(0), Outcome::Served),
                    _ => (Some(1), Outcome::Served),
                };
                (id, arrived, arrived + latency, revision, outcome)
            })
            .collect()
    }

    /// Plays `reqs` into a recorder (routing at arrival, the end at finish, in time order).
    fn play(reqs: &[Req], end_ns: i64, keep: bool) -> (RunReport, Option<RunParts>) {
        let mut r = RunRecorder::new(
            RunMeta {
                scenario: "load".into(),
                seed: 1,
                mode: "live".into(),
            },
            vec!["v1".into(), "v2".into()],
            SimDuration::from_secs(1),
            None,
        );
        if keep {
            r.keep_window_histograms();
        }
        r.programmed(SimTime::ZERO, "", &[("v1".into(), 60), ("v2".into(), 40)]);
        // (time, is the end, index)
        let mut events: Vec<(i64, bool, usize)> = Vec::new();
        for (k, q) in reqs.iter().enumerate() {
            events.push((q.1, false, k));
            events.push((q.2, true, k));
        }
        events.sort();
        for (t, end, k) in events {
            let (id, arrived, finished, revision, outcome) = reqs[k];
            if end {
                r.finished(&rec(id, arrived, finished, revision, outcome));
            } else {
                r.arrived(SimTime(t));
                if let Some(rev) = revision {
                    r.routed(SimTime(t), rev, true);
                }
            }
        }
        let engine = EngineStats {
            events: reqs.len() as u64,
            wall_s: 3.0,
            sim_s: end_ns as f64 / 1e9,
        };
        r.finish_parts(SimTime(end_ns), &[0, 0], 0, engine)
    }

    #[test]
    fn shards_merge_into_the_report_of_one_recorder_of_every_request() {
        let end = 4_000_000_000;
        let all = requests(3_000, 3_500_000_000);
        let (whole, none) = play(&all, end, false);
        assert!(none.is_none(), "parts only when asked for");
        // (shards, how requests are dealt to them)
        type Deal = fn(u64, usize) -> usize;
        let cases: [(usize, Deal); 3] = [
            (1, |_, _| 0),                         // one shard: the whole run
            (3, |id, n| (id % n as u64) as usize), // round-robin
            (2, |id, _| usize::from(id % 7 == 0)), // uneven: one shard gets a seventh
        ];
        for (n, deal) in cases {
            let parts: Vec<RunParts> = (0..n)
                .map(|s| {
                    let mine: Vec<Req> =
                        all.iter().copied().filter(|q| deal(q.0, n) == s).collect();
                    let (_, p) = play(&mine, end, true);
                    let p = p.expect("kept parts");
                    // Through JSON, as a shard file carries them.
                    serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap()
                })
                .collect();
            let merged = RunParts::merge(&parts)
                .expect("shards of one run merge")
                .into_report(whole.meta().clone());
            assert_eq!(merged.summary_json(), whole.summary_json(), "{n} shards");
            assert_eq!(merged.windows(), whole.windows(), "{n} shards");
            for w in 0..whole.windows() {
                for r in 0..2 {
                    assert_eq!(
                        merged.cell(w, r),
                        whole.cell(w, r),
                        "{n} shards: window {w}"
                    );
                }
                assert_eq!(merged.unrouted_cell(w), whole.unrouted_cell(w));
            }
        }
    }

    /// A load run whose responses no label matched (a plain target without Knative's revision
    /// header) still has an overall latency: `--check p99_ms<...` judges it, merged or not.
    #[test]
    fn served_requests_without_a_label_make_the_overall_latency() {
        let unlabelled: Vec<Req> = (0..100u64)
            .map(|id| {
                let arrived = id as i64 * 10_000_000;
                // 1 ms to 100 ms: p99 is the 99th value
                (
                    id,
                    arrived,
                    arrived + (id as i64 + 1) * 1_000_000,
                    None,
                    Outcome::Served,
                )
            })
            .collect();
        let (whole, parts) = play(&unlabelled, 2_000_000_000, true);
        let latency = whole.latency().expect("served requests have a latency");
        // p99 within the histogram's precision (3 significant digits); the maximum is exact.
        assert!((latency.p99_ms - 99.0).abs() < 0.1, "{latency:?}");
        assert_eq!(latency.max_ms, 100.0);
        assert!(whole.revisions().iter().all(|r| r.latency.is_none()));
        let parts = parts.expect("kept parts");
        let merged = RunParts::merge(&[parts.clone(), parts])
            .expect("two shards")
            .into_report(whole.meta().clone());
        let merged_latency = merged.latency().expect("merged too");
        assert_eq!(merged_latency, latency, "two copies: the same distribution");
    }

    #[test]
    fn parts_of_different_runs_are_refused() {
        let reqs = requests(50, 1_000_000_000);
        let (_, a) = play(&reqs, 2_000_000_000, true);
        let a = a.unwrap();
        // (what differs, part of the error)
        let mut labels = a.clone();
        labels.revisions[1].name = "v3".into();
        let mut window = a.clone();
        window.window_ns *= 2;
        let mut torn = a.clone();
        torn.cells.pop();
        let mut count = a.clone();
        count.revisions[0].latency.count += 1;
        let cases = [
            (labels, "has labels"),              // another classifier
            (window, "ns windows"),              // another window width
            (torn, "do not make whole windows"), // cells cut short
            (count, "its count says"),           // a histogram that is not what it claims
        ];
        for (bad, fragment) in cases {
            let err = RunParts::merge(&[a.clone(), bad]).err().expect("refused");
            assert!(err.contains(fragment), "{err}");
        }
    }
}
