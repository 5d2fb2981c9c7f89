//! Flagger's analysis driven by the simulator (issue 13 §1): what the world keeps for the
//! controller (`model::flagger`) between ticks, and the metric readings it measures.
//!
//! Owns: the canary revision's recent finished requests (a ring pruned to the longest metric
//! window), the readings Flagger's Knative observer would return over each window
//! (`pkg/metrics/observers/knative.go:29-59`, spec §4.2), and the run's analysis summary.
//! Must not: decide anything Flagger decides (the controller does) or touch the route (the
//! world applies `TickOutcome::write` as it applies a timeline traffic change).
//!
//! What counts (spec §4.2: `envoy_cluster_upstream_rq` of the canary revision's cluster): the
//! requests the canary revision finished, by the time they finished. Served is a success; an
//! application error, 502, the queue-proxy's 503 and the 504s are 5xx. A request the client
//! cancelled is left out (Envoy records no response code for it), and so are requests that
//! never went upstream (the gateway's overflow, no healthy endpoint), which Envoy counts
//! elsewhere.

use std::collections::VecDeque;

use crate::model::flagger::{
    Action, BuiltinMetric, FlaggerController, MetricReading, Observation, Phase, TickOutcome,
};
use crate::model::time::{SimDuration, SimTime};
use crate::report::record::Outcome;
use crate::report::run::{AnalysisSummary, AnalysisTick};
use crate::scenario::spec::AnalysisRun;

/// One finished canary request.
#[derive(Clone, Copy, Debug)]
struct Finished {
    at: SimTime,
    failed: bool,
    latency: SimDuration,
}

/// What the world keeps for Flagger's analysis.
pub(super) struct AnalysisDriver<'a> {
    pub run: &'a AnalysisRun,
    pub controller: FlaggerController,
    /// The revision whose requests `window` holds (the latest created one).
    canary: Option<u32>,
    window: VecDeque<Finished>,
    longest_window: SimDuration,
    summary: AnalysisSummary,
    started: bool,
}

impl<'a> AnalysisDriver<'a> {
    pub fn new(run: &'a AnalysisRun) -> Self {
        let longest_window = run
            .settings
            .metrics
            .iter()
            .map(|m| m.window)
            .max()
            .unwrap_or(SimDuration::ZERO);
        AnalysisDriver {
            run,
            controller: FlaggerController::new(run.settings.clone()),
            canary: None,
            window: VecDeque::new(),
            longest_window,
            summary: AnalysisSummary {
                phase: Phase::Initializing.as_str().to_string(),
                ..Default::default()
            },
            started: false,
        }
    }

    /// Whether a request `outcome` of a revision counts, and as a failure (see the module doc).
    fn failed(outcome: Outcome) -> Option<bool> {
        match outcome {
            Outcome::Served => Some(false),
            Outcome::AppError
            | Outcome::BadGateway
            | Outcome::RejectedQp
            | Outcome::ExpiredActivator
            | Outcome::ExpiredQp => Some(true),
            Outcome::ClientCancelled | Outcome::Error | Outcome::IngressOverflow => None,
        }
    }

    /// A new revision was created: it is the canary from now on (`latestCreatedRevisionName`).
    pub fn created(&mut self, rev: u32) {
        if self.canary != Some(rev) {
            self.canary = Some(rev);
            self.window.clear();
        }
    }

    pub fn latest_created(&self) -> Option<u32> {
        self.canary
    }

    /// Revision `rev` (named `name`) finished a request at `now` that arrived at `arrived`.
    pub fn finished(
        &mut self,
        rev: u32,
        name: &str,
        now: SimTime,
        arrived: SimTime,
        outcome: Outcome,
    ) {
        if self.canary != Some(rev) {
            return;
        }
        let Some(failed) = Self::failed(outcome) else {
            return;
        };
        // The blast radius: what the canary answered while it was not the primary.
        if self.started
            && self
                .controller
                .primary_revision()
                .is_some_and(|p| p != name)
        {
            self.summary.canary_requests += 1;
            self.summary.canary_failed_requests += u64::from(failed);
        }
        self.window.push_back(Finished {
            at: now,
            failed,
            latency: now - arrived,
        });
        while self
            .window
            .front()
            .is_some_and(|f| f.at + self.longest_window < now)
        {
            self.window.pop_front();
        }
    }

    /// The readings over each metric's window ending at `now`, and the number of requests in
    /// the first success-rate window (else the first window).
    pub fn readings(&self, now: SimTime) -> (Vec<MetricReading>, Option<u64>) {
        let mut count = None;
        let mut readings = Vec::with_capacity(self.run.settings.metrics.len());
        for m in &self.run.settings.metrics {
            // Prometheus' range `[w]` ending now: requests finished in (now - w, now].
            let inside = self.window.iter().filter(|f| f.at + m.window > now);
            let reading = match m.metric {
                BuiltinMetric::SuccessRate => {
                    let (mut all, mut bad) = (0u64, 0u64);
                    for f in inside {
                        all += 1;
                        bad += u64::from(f.failed);
                    }
                    count.get_or_insert(all);
                    if all == 0 {
                        MetricReading::NoValues
                    } else {
                        MetricReading::Value((all - bad) as f64 / all as f64 * 100.0)
                    }
                }
                BuiltinMetric::Duration => {
                    let mut ms: Vec<f64> = inside.map(|f| f.latency.as_secs_f64() * 1e3).collect();
                    if count.is_none()
                        && self
                            .run
                            .settings
                            .metrics
                            .iter()
                            .all(|c| c.metric != BuiltinMetric::SuccessRate)
                    {
                        count = Some(ms.len() as u64);
                    }
                    if ms.is_empty() {
                        MetricReading::NoValues
                    } else {
                        ms.sort_by(f64::total_cmp);
                        // Nearest rank: the smallest value with at least 99 % at or below it.
                        let rank = ((ms.len() as f64) * 0.99).ceil() as usize;
                        MetricReading::Value(ms[rank.clamp(1, ms.len()) - 1])
                    }
                }
            };
            readings.push(reading);
        }
        (readings, count)
    }

    /// One tick at `now` with `obs` (whose metric readings came from `readings`); returns the
    /// outcome and its `analysis.csv` row values.
    pub fn tick(
        &mut self,
        now: SimTime,
        obs: &Observation,
        count: Option<u64>,
    ) -> (TickOutcome, Row) {
        self.started = true;
        let was_finished = self.controller.is_finished();
        let out = self.controller.tick(now, obs);
        let value = |i: usize| match obs.metrics.get(i) {
            Some(MetricReading::Value(v)) if i < out.metrics_evaluated => Some(*v),
            _ => None,
        };
        let metric = |which: BuiltinMetric| {
            self.run
                .settings
                .metrics
                .iter()
                .position(|m| m.metric == which)
                .and_then(value)
        };
        let row = Row {
            success_rate_pct: metric(BuiltinMetric::SuccessRate),
            duration_p99_ms: metric(BuiltinMetric::Duration),
            canary_requests: count.filter(|_| out.metrics_evaluated > 0),
        };
        if matches!(out.action, Action::Promote | Action::SkippedAnalysis) {
            self.summary.promoted_s = Some(secs3(now));
        }
        if self.controller.is_finished() && !was_finished {
            self.summary.finished_s = Some(secs3(now));
        }
        self.summary.phase = out.phase.as_str().to_string();
        self.summary.failed_checks = out.failed_checks;
        (out, row)
    }

    /// The `analysis.csv` row of `out`.
    pub fn csv_row<'o>(out: &'o TickOutcome, row: &Row) -> AnalysisTick<'o> {
        AnalysisTick {
            phase: out.phase.as_str(),
            failed_checks: out.failed_checks,
            canary_weight: out.canary_weight,
            primary_weight: out.primary_share(),
            check: out.check.as_str(),
            success_rate_pct: row.success_rate_pct,
            duration_p99_ms: row.duration_p99_ms,
            canary_requests: row.canary_requests,
            action: out.action.as_str(),
        }
    }

    pub fn summary(&self) -> AnalysisSummary {
        self.summary.clone()
    }
}

/// The measured cells of one `analysis.csv` row.
pub(super) struct Row {
    success_rate_pct: Option<f64>,
    duration_p99_ms: Option<f64>,
    canary_requests: Option<u64>,
}

/// Seconds with three decimals, as every summary time.
fn secs3(t: SimTime) -> f64 {
    (t.as_secs_f64() * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flagger::{AnalysisSettings, AnalysisSpec, MetricSpec};

    fn run() -> AnalysisRun {
        let spec = AnalysisSpec {
            interval: "1m".into(),
            threshold: Some(2),
            step_weight: Some(10),
            metrics: vec![
                MetricSpec {
                    name: "request-success-rate".into(),
                    min: Some(99.0),
                    ..Default::default()
                },
                MetricSpec {
                    name: "request-duration".into(),
                    interval: "30s".into(),
                    max: Some(500.0),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        AnalysisRun {
            start: SimTime::ZERO,
            settings: AnalysisSettings::from_spec(&spec).expect("valid"),
            webhook_failures: Vec::new(),
        }
    }

    #[test]
    fn readings_cover_each_metrics_window_of_the_latest_revision() {
        let run = run();
        let mut d = AnalysisDriver::new(&run);
        let s = |x: i64| SimTime::ZERO + SimDuration::from_secs(x);
        let ms = SimDuration::from_millis;
        // Nothing yet: no values.
        assert_eq!(
            d.readings(s(60)).0,
            vec![MetricReading::NoValues, MetricReading::NoValues]
        );
        d.created(1);
        // Another revision's requests are not the canary's.
        d.finished(
            0,
            "v1",
            s(10),
            SimTime(s(10).0 - ms(900).0),
            Outcome::AppError,
        );
        // (finished at, latency ms, outcome), all by the canary.
        for (at, lat, outcome) in [
            (5, 100, Outcome::Served),           // before both windows at t=70
            (20, 200, Outcome::AppError),        // in the 1m window only
            (50, 300, Outcome::Served),          // in both
            (60, 400, Outcome::ClientCancelled), // left out
            (65, 50, Outcome::ExpiredQp),        // a 5xx, in both
        ] {
            d.finished(1, "v2", s(at), SimTime(s(at).0 - ms(lat).0), outcome);
        }
        let (r, count) = d.readings(s(70));
        // 1m window (10, 70]: 20 (5xx), 50 (ok), 65 (5xx): 1 of 3 succeeded.
        assert_eq!(r[0], MetricReading::Value(1.0 / 3.0 * 100.0));
        assert_eq!(count, Some(3));
        // 30s window (40, 70]: latencies 300 and 50: p99 by nearest rank is 300.
        assert_eq!(r[1], MetricReading::Value(300.0));
        // A new revision starts an empty window.
        d.created(2);
        assert_eq!(d.readings(s(70)).1, Some(0));
    }
}
