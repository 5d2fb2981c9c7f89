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
    new_histogram, quantile_us, summarize_latency, Cost, Counts, EngineStats, RevisionSummary,
    RunMeta, RunReport, WindowCell,
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
        for r in 0..n {
            let mut counts = Counts::default();
            let mut hist = new_histogram();
            let (mut sum_us, mut max_us) = (0u128, 0u64);
            for (i, s) in shards.iter().enumerate() {
                let p = &s.revisions[r];
                counts.add(&p.counts);
                add_decoded(&mut hist, &p.latency, i)?;
                sum_us += p.latency_sum_us;
                max_us = max_us.max(p.latency.max_us);
            }
            revisions.push((names[r].to_string(), counts, hist, sum_us, max_us));
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
        Ok(MergedRun {
            revisions,
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

fn add_decoded(into: &mut Histogram<u64>, e: &EncodedLatency, shard: usize) -> Result<(), String> {
    let h = e.decode().map_err(|m| format!("shard {shard}: {m}"))?;
    into.add(&h)
        .map_err(|e| format!("shard {shard}: cannot merge a histogram: {e:?}"))
}

/// Merged parts, ready to become a report.
pub struct MergedRun {
    /// Name, counts, latency histogram, its sum and exact maximum.
    revisions: Vec<(String, Counts, Histogram<u64>, u128, u64)>,
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
        let mut all = new_histogram();
        let (mut sum_all, mut max_all) = (0u128, 0u64);
        let revisions = self
            .revisions
            .iter()
            .map(|(name, counts, hist, sum_us, max_us)| {
                all.add(hist)
                    .expect("an auto-resizing histogram accepts any other histogram's values");
                sum_all += sum_us;
                max_all = max_all.max(*max_us);
                RevisionSummary {
                    name: name.clone(),
                    counts: *counts,
                    routed: counts.arrived,
                    latency: summarize_latency(hist, *sum_us, *max_us),
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
            latency: summarize_latency(&all, sum_all, max_all),
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
