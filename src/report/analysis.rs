//! What Flagger's analysis measures and records, shared by the simulator and the live mode
//! (issue 13 §1): the canary revision's recent finished requests, the readings Flagger's
//! Knative observer would return over each metric's window (`pkg/metrics/observers/knative.go:
//! 29-59`, spec §4.2), the `analysis.csv` row of each tick and the run's analysis summary.
//!
//! Owns: `CanaryBook`, fed with every finished request and ticked with the caller's
//! `model::flagger::FlaggerController`. Must not: decide anything Flagger decides (the
//! controller does), touch the route (the caller applies `TickOutcome::write` as it applies a
//! timeline traffic change) or read a clock (times are arguments). `sim` and `live` both drive
//! the controller through this book, so a tick measures and records the same way in both.
//!
//! What counts (spec §4.2: `envoy_cluster_upstream_rq` of the canary revision's cluster): the
//! requests the canary revision finished, by the time they finished. Served is a success; an
//! application error, 502, the queue-proxy's 503 and the 504s are 5xx. A request the client
//! cancelled is left out (Envoy records no response code for it), and so are requests that
//! never went upstream (the gateway's overflow, no healthy endpoint) or ended in an error the
//! client saw without a Knative status, which Envoy counts elsewhere.
//!
//! Invariant: the window holds only the latest created revision's requests, none older than
//! twice the longest metric window before the last one recorded.

use std::collections::VecDeque;

use crate::model::flagger::{
    Action, AnalysisSettings, BuiltinMetric, FlaggerController, MetricReading, Observation, Phase,
    TickOutcome,
};
use crate::model::time::{SimDuration, SimTime};
use crate::report::record::Outcome;
use crate::report::run::{AnalysisSummary, AnalysisTick};

/// One finished canary request.
#[derive(Clone, Copy, Debug)]
struct Finished {
    at: SimTime,
    failed: bool,
    latency: SimDuration,
}

/// The measurements and bookkeeping of one run's analysis.
#[derive(Clone, Debug)]
pub struct CanaryBook {
    settings: AnalysisSettings,
    /// The scenario's revisions by index.
    names: Vec<String>,
    /// The revision whose requests `window` holds (the latest created one).
    canary: Option<u32>,
    /// The `flagger.app/primary-revision` annotation as of the last tick (only a tick changes it).
    primary: Option<String>,
    window: VecDeque<Finished>,
    longest_window: SimDuration,
    summary: AnalysisSummary,
    /// Whether the first tick has happened (the blast radius counts from then on).
    started: bool,
}

/// The metric readings over each metric's window ending at a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Readings {
    /// One per `settings.metrics`, in order.
    pub metrics: Vec<MetricReading>,
    /// The number of requests in the first success-rate window (else the first window).
    pub count: Option<u64>,
}

/// What one tick did and its `analysis.csv` row.
#[derive(Clone, Debug)]
pub struct Ticked {
    pub out: TickOutcome,
    success_rate_pct: Option<f64>,
    duration_p99_ms: Option<f64>,
    canary_requests: Option<u64>,
}

impl Ticked {
    /// The `analysis.csv` row of the tick.
    pub fn csv_row(&self) -> AnalysisTick<'_> {
        AnalysisTick {
            phase: self.out.phase.as_str(),
            failed_checks: self.out.failed_checks,
            canary_weight: self.out.canary_weight,
            primary_weight: self.out.primary_share(),
            check: self.out.check.as_str(),
            success_rate_pct: self.success_rate_pct,
            duration_p99_ms: self.duration_p99_ms,
            canary_requests: self.canary_requests,
            action: self.out.action.as_str(),
        }
    }
}

impl CanaryBook {
    /// A book for `settings` over the revisions `names` (by index).
    pub fn new(settings: &AnalysisSettings, names: Vec<String>) -> Self {
        let longest_window = settings
            .metrics
            .iter()
            .map(|m| m.window)
            .max()
            .unwrap_or(SimDuration::ZERO);
        CanaryBook {
            settings: settings.clone(),
            names,
            canary: None,
            primary: None,
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

    /// The latest created revision, if any.
    pub fn latest_created(&self) -> Option<u32> {
        self.canary
    }

    /// Revision `rev` finished a request at `now` that arrived at `arrived`.
    pub fn finished(&mut self, rev: u32, now: SimTime, arrived: SimTime, outcome: Outcome) {
        if self.canary != Some(rev) {
            return;
        }
        let Some(failed) = Self::failed(outcome) else {
            return;
        };
        let name = self.names.get(rev as usize).map(String::as_str);
        // The blast radius: what the canary answered while it was not the primary.
        if self.started && self.primary.as_deref().is_some_and(|p| Some(p) != name) {
            self.summary.canary_requests += 1;
            self.summary.canary_failed_requests += u64::from(failed);
        }
        self.window.push_back(Finished {
            at: now,
            failed,
            latency: now - arrived,
        });
        // Kept for two of the longest windows: a live tick runs a little after its time, when
        // later requests have been recorded, and must still see its whole window.
        while self
            .window
            .front()
            .is_some_and(|f| f.at + self.longest_window + self.longest_window < now)
        {
            self.window.pop_front();
        }
    }

    /// The readings over each metric's window ending at `now`.
    pub fn readings(&self, now: SimTime) -> Readings {
        let mut count = None;
        let mut metrics = Vec::with_capacity(self.settings.metrics.len());
        for m in &self.settings.metrics {
            // Prometheus' range `[w]` ending now: requests finished in (now - w, now]. (A live
            // request may finish between the tick's time and the moment it runs: not yet.)
            let inside = self
                .window
                .iter()
                .filter(|f| f.at + m.window > now && f.at <= now);
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
                        // (The controller truncates it to whole ms, knative.go:90.)
                        let rank = ((ms.len() as f64) * 0.99).ceil() as usize;
                        MetricReading::Value(ms[rank.clamp(1, ms.len()) - 1])
                    }
                }
            };
            metrics.push(reading);
        }
        Readings { metrics, count }
    }

    /// The index of revision `name`, if the scenario has it.
    fn index(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// One tick of `controller` at `now`: measures each metric's window, observes the Service
    /// (`latest_ready`: the configuration's latest ready revision; `ready(i)`: whether revision
    /// `i` is ready; `webhooks`: each webhook's result), ticks, and keeps the summary. The
    /// caller records `Ticked::csv_row` and applies `Ticked::out.write`.
    pub fn tick(
        &mut self,
        controller: &mut FlaggerController,
        now: SimTime,
        latest_ready: Option<u32>,
        ready: impl Fn(u32) -> bool,
        webhooks: Vec<bool>,
    ) -> Ticked {
        let name = |i: Option<u32>| {
            i.and_then(|i| self.names.get(i as usize))
                .cloned()
                .unwrap_or_default()
        };
        let readings = self.readings(now);
        // A primary the scenario does not know is not waited for (the data plane reports it).
        let primary_ready = controller
            .primary_revision()
            .and_then(|p| self.index(p))
            .is_none_or(ready);
        let obs = Observation {
            latest_created: name(self.canary),
            latest_ready: name(latest_ready),
            primary_ready,
            metrics: readings.metrics,
            webhooks,
        };
        self.started = true;
        let was_finished = controller.is_finished();
        let out = controller.tick(now, &obs);
        self.primary = controller.primary_revision().map(str::to_string);
        let value = |i: usize| match obs.metrics.get(i) {
            Some(MetricReading::Value(v)) if i < out.metrics_evaluated => Some(*v),
            _ => None,
        };
        let metric = |which: BuiltinMetric| {
            self.settings
                .metrics
                .iter()
                .position(|m| m.metric == which)
                .and_then(value)
        };
        let success_rate_pct = metric(BuiltinMetric::SuccessRate);
        let duration_p99_ms = metric(BuiltinMetric::Duration);
        let canary_requests = readings.count.filter(|_| out.metrics_evaluated > 0);
        if matches!(out.action, Action::Promote | Action::SkippedAnalysis) {
            self.summary.promoted_s = Some(secs3(now));
        }
        if controller.is_finished() && !was_finished {
            self.summary.finished_s = Some(secs3(now));
        }
        self.summary.phase = out.phase.as_str().to_string();
        self.summary.failed_checks = out.failed_checks;
        Ticked {
            out,
            success_rate_pct,
            duration_p99_ms,
            canary_requests,
        }
    }

    /// `summary.json` `analysis` so far.
    pub fn summary(&self) -> AnalysisSummary {
        self.summary.clone()
    }
}

/// Seconds with three decimals, as every summary time.
fn secs3(t: SimTime) -> f64 {
    (t.as_secs_f64() * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flagger::{AnalysisSpec, MetricSpec};

    fn settings() -> AnalysisSettings {
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
        AnalysisSettings::from_spec(&spec).expect("valid")
    }

    fn names() -> Vec<String> {
        ["v1", "v2", "v3"].map(String::from).to_vec()
    }

    fn s(x: i64) -> SimTime {
        SimTime::ZERO + SimDuration::from_secs(x)
    }

    /// A request of `rev` finishing at `at` s after `lat` ms.
    fn finish(b: &mut CanaryBook, rev: u32, at: i64, lat: i64, outcome: Outcome) {
        let arrived = SimTime(s(at).0 - SimDuration::from_millis(lat).0);
        b.finished(rev, s(at), arrived, outcome);
    }

    #[test]
    fn readings_cover_each_metrics_window_of_the_latest_revision() {
        let mut b = CanaryBook::new(&settings(), names());
        // Nothing yet: no values.
        assert_eq!(
            b.readings(s(60)).metrics,
            vec![MetricReading::NoValues, MetricReading::NoValues]
        );
        b.created(1);
        // Another revision's requests are not the canary's.
        finish(&mut b, 0, 10, 900, Outcome::AppError);
        // (finished at, latency ms, outcome), all by the canary.
        for (at, lat, outcome) in [
            (5, 100, Outcome::Served),           // before both windows at t=70
            (20, 200, Outcome::AppError),        // in the 1m window only
            (50, 300, Outcome::Served),          // in both
            (60, 400, Outcome::ClientCancelled), // left out
            (65, 50, Outcome::ExpiredQp),        // a 5xx, in both
            (66, 10, Outcome::Error),            // no Knative status: left out
            (71, 900, Outcome::AppError),        // after the tick's time: not yet
        ] {
            finish(&mut b, 1, at, lat, outcome);
        }
        let r = b.readings(s(70));
        // 1m window (10, 70]: 20 (5xx), 50 (ok), 65 (5xx): 1 of 3 succeeded.
        assert_eq!(r.metrics[0], MetricReading::Value(1.0 / 3.0 * 100.0));
        assert_eq!(r.count, Some(3));
        // 30s window (40, 70]: latencies 300 and 50: p99 by nearest rank is 300.
        assert_eq!(r.metrics[1], MetricReading::Value(300.0));
        // A tick that runs late, after requests of the next minute were recorded, still reads
        // its own window: 1m window (10, 70] as above.
        finish(&mut b, 1, 125, 10, Outcome::Served);
        assert_eq!(b.readings(s(70)), r);
        // A new revision starts an empty window.
        b.created(2);
        assert_eq!(b.readings(s(70)).count, Some(0));
    }

    #[test]
    fn ticks_record_rows_summary_and_the_blast_radius() {
        let settings = settings();
        let mut c = FlaggerController::new(settings.clone());
        let mut b = CanaryBook::new(&settings, names());
        b.created(0);
        // Before the first tick nothing counts towards the blast radius.
        finish(&mut b, 0, 0, 10, Outcome::AppError);
        // t=0: v1 is the only revision: Flagger initializes, pinning v1 as the primary.
        let t = b.tick(&mut c, s(0), Some(0), |_| true, Vec::new());
        assert_eq!(t.csv_row().phase, "Initialized");
        assert_eq!(t.csv_row().primary_weight, 100);
        assert_eq!(t.csv_row().success_rate_pct, None);
        // The primary's own requests are not the canary's blast radius.
        finish(&mut b, 0, 30, 10, Outcome::AppError);
        b.created(1);
        // (tick at, canary requests before it: finished at and outcome, expected row:
        // phase, check, failed checks, canary weight, primary weight, success rate, count,
        // action, whether Flagger writes spec.traffic)
        type Row = (
            &'static str,
            &'static str,
            i64,
            i64,
            i64,
            Option<f64>,
            Option<u64>,
        );
        type Case = (i64, Vec<(i64, Outcome)>, Row, &'static str, bool);
        let table: [Case; 5] = [
            // The new revision is detected: no step, no metrics.
            (
                60,
                vec![],
                ("Progressing", "none", 0, 0, 100, None, None),
                "detect",
                false,
            ),
            // The first step: metrics are not queried at weight 0, so the check passes.
            (
                120,
                vec![(70, Outcome::Served)],
                ("Progressing", "ok", 0, 10, 90, None, None),
                "advance",
                true,
            ),
            // 1 of the 2 requests in (120, 180] failed (the one at 70 is out of the window).
            (
                180,
                vec![(130, Outcome::Served), (140, Outcome::AppError)],
                ("Progressing", "failed", 1, 10, 90, Some(50.0), Some(2)),
                "hold",
                false,
            ),
            // Again: the failed checks reach the threshold (2).
            (
                240,
                vec![(200, Outcome::Served), (210, Outcome::BadGateway)],
                ("Progressing", "failed", 2, 10, 90, Some(50.0), Some(2)),
                "hold",
                false,
            ),
            // The next tick rolls back: 100 % to the primary.
            (
                300,
                vec![],
                ("Failed", "none", 0, 0, 100, None, None),
                "rollback",
                true,
            ),
        ];
        for (at, requests, want, action, writes) in table {
            for (f, outcome) in requests {
                finish(&mut b, 1, f, 20, outcome);
            }
            let t = b.tick(&mut c, s(at), Some(1), |_| true, Vec::new());
            let row = t.csv_row();
            let got = (
                row.phase,
                row.check,
                row.failed_checks,
                row.canary_weight,
                row.primary_weight,
                row.success_rate_pct,
                row.canary_requests,
            );
            assert_eq!(got, want, "t={at}");
            assert_eq!(row.action, action, "t={at}");
            assert_eq!(t.out.write.is_some(), writes, "t={at}");
            // The p99's window (30 s) held no request at any measured tick, and a failed
            // success rate stops the evaluation before it: never measured.
            assert_eq!(row.duration_p99_ms, None, "t={at}");
        }
        let sum = b.summary();
        assert_eq!(sum.phase, "Failed");
        assert_eq!(sum.finished_s, Some(300.0));
        assert_eq!(sum.promoted_s, None);
        // The blast radius: the canary's 5 requests after the first tick, 2 of them 5xx.
        assert_eq!((sum.canary_requests, sum.canary_failed_requests), (5, 2));
    }
}
