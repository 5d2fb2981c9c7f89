//! The measurements of one run: a `RunRecorder` the simulator (or the live mode) feeds as things
//! happen, and the `RunReport` it turns into at the end, which writes the run's files.
//!
//! Owns: per-run and per-window counting, time-weighted programmed split, latency histograms,
//! gauge maxima, split error, rollout spans, the autoscaler's tick log, panic time and cold
//! starts, and the layout of `summary.json`, `timeseries.csv`, `routes.csv`, `autoscaler.csv`
//! and `requests.csv`.
//!
//! Must not: route, simulate, autoscale or read a clock; it only observes what it is told, at
//! the times it is told. It never keeps one entry per request in memory: memory is bounded by
//! windows × revisions (plus route changes, autoscaler ticks and configurations), and the
//! optional request log streams to a spool file. Autoscaler ticks are kept in memory as
//! formatted rows, like route changes: there is one per revision per decider tick (every 2 s),
//! far fewer than windows × revisions at the usual 1 s window.
//!
//! Invariants:
//! - Time only moves forward. Calls come with non-decreasing times; a call with an earlier time
//!   than one already seen is treated as happening at the latest time seen (and counted in
//!   `RunReport::clamped_calls`), so windows that have been closed are never reopened.
//! - Windows are `[k·w, (k+1)·w)`. The rows of `timeseries.csv` cover `[0, end)`; a window that
//!   starts exactly at `end` is kept only when something was recorded at `end` (so no count is
//!   lost), and its `programmed_pct` is the split in force at `end`.
//! - A window's statistics are final when time leaves it, so only the current window holds
//!   histograms; closed windows keep their percentiles as numbers.
//! - Same calls ⇒ byte-identical files, apart from `engine.wall_s`, which the caller supplies.
//!
//! `summary.json` keys, in file order: `scenario`, `seed`, `mode`, `protocol` (only for
//! `splitlab load`: the HTTP protocol its connections spoke, see `RunReport::set_protocol`),
//! `requests` {`arrived`,
//! `served`, `rejected_qp`, `expired_activator`, `expired_qp`, `client_cancelled`, `app_error`,
//! `bad_gateway`, `errors`, `ingress_overflow`, `in_flight_at_end`}, `revisions` (revision index
//! order) {the same eleven, `routed`,
//! `latency_ms` {`mean`, `p50`, `p90`, `p99`, `p999`, `max`} or null, `peak_qp_queue`,
//! `peak_activator_queue`, `max_desired_pods`, `max_ready_pods`, `panic_seconds`,
//! `cold_starts`, `pod_crashes`, `pod_restarts`, `cost` {`pod_seconds`, `peak_pods`},
//! `worst_window` {`p99_ms`, `start_s`, `end_s`, `served`} or null, `p99_shift_ms` or null (the
//! worst p99 during the shift, `RunReport::shift_windows`)}, `cost`
//! {`pod_seconds`, `peak_total_pods`}, `split` {`max_abs_error_pct` or null, `noise_at_max_pct`
//! or null, `windows_measured`, `windows_outside_band` (`SplitNoise`)}, `rollout` (configuration names
//! sorted) {`started_s`, `finished_s`}, `engine` {`events`, `wall_s`, `sim_s`}, `analysis` (when
//! configured), `outside_requests` {`requests`, `served`, `statuses`} (only for `splitlab live
//! --listen`: requests from outside clients, not in `requests`, see
//! `RunReport::set_outside_requests`).
//! `RunReport::summary_json` holds the same content as a `serde_json::Value`, whose maps are
//! ordered by serde_json (alphabetically, as the `preserve_order` feature is off).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use hdrhistogram::Histogram;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::record::{Outcome, RequestRecord};
pub use super::write::WriteError;
use super::write::{
    csv_field, remove_if_present, round3, secs3, us_to_ms, write_atomic, Fixed3, Ms, SpoolFile,
    SpoolWriter,
};
use crate::model::time::{SimDuration, SimTime};

mod merge;
pub use merge::{EncodedLatency, MergedRun, RunParts};

pub const SUMMARY_FILE: &str = "summary.json";
pub const TIMESERIES_FILE: &str = "timeseries.csv";
pub const ROUTES_FILE: &str = "routes.csv";
pub const REQUESTS_FILE: &str = "requests.csv";
pub const AUTOSCALER_FILE: &str = "autoscaler.csv";
pub const ANALYSIS_FILE: &str = "analysis.csv";

pub const TIMESERIES_HEADER: &str = "t_s,revision,programmed_pct,routed,observed_pct,served,\
rejected_qp,expired,qp_queue,activator_queue,in_flight,ready_pods,p50_ms,p99_ms,desired_pods,\
app_error,bad_gateway,ingress_overflow,expired_activator,expired_qp,client_cancelled,errors";
pub const ROUTES_HEADER: &str = "t_s,tag,revision,percent";
pub const REQUESTS_HEADER: &str =
    "id,arrived_s,finished_s,revision,default_group,via_activator,outcome,status,latency_ms";
pub const AUTOSCALER_HEADER: &str = "t_s,revision,stable_concurrency,panic_concurrency,\
desired_pods,ready_pods,panic,excess_burst_capacity,mode";
/// `analysis.csv`: one row per tick of Flagger's analysis (issue 13 §1); the metric cells are
/// empty when the tick queried no metrics.
pub const ANALYSIS_HEADER: &str = "t_s,phase,failed_checks,canary_weight,primary_weight,check,\
success_rate_pct,duration_p99_ms,canary_requests,action";

/// One tick of Flagger's analysis, a row of `analysis.csv`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalysisTick<'a> {
    pub phase: &'a str,
    pub failed_checks: i64,
    pub canary_weight: i64,
    pub primary_weight: i64,
    pub check: &'a str,
    /// `None`: not measured this tick (or no canary requests in the window).
    pub success_rate_pct: Option<f64>,
    pub duration_p99_ms: Option<f64>,
    /// Requests the canary revision finished in the success-rate window (`None`: not measured).
    pub canary_requests: Option<u64>,
    pub action: &'a str,
}

/// `summary.json` `analysis` (present only when the scenario has an analysis).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AnalysisSummary {
    /// Flagger's phase at the end of the run.
    pub phase: String,
    /// When Promote re-pinned the primary to the canary (null: never).
    pub promoted_s: Option<f64>,
    /// When the analysis ended, Succeeded or Failed (null: still running at the end).
    pub finished_s: Option<f64>,
    /// `status.failedChecks` at the end.
    pub failed_checks: i64,
    /// Requests the canary revision finished from the first tick to the end.
    pub canary_requests: u64,
    /// Of those, the ones it failed with a 5xx (app error, 502, 503, expiry): the blast radius.
    pub canary_failed_requests: u64,
}

/// A window counts towards `split.max_abs_error_pct` only when at least this many
/// default-group requests were routed in it (to any revision): with fewer, a per-request picker's
/// binomial noise alone (±10 points at n = 100, p = 0.5) would dominate the figure.
pub const SPLIT_ERROR_MIN_REQUESTS: u64 = 100;

/// How long after the last rollout finished the shift is still watched (`p99_shift_ms`): the
/// queues and the autoscaler take a while to settle after the split stops moving.
pub const SHIFT_SETTLE: SimDuration = SimDuration::from_secs(60);

/// The split's largest error beside the noise a per-request picker makes anyway
/// (`summary.json` `split`, besides `max_abs_error_pct`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitNoise {
    /// The binomial 95% half-width, in percentage points, at the programmed share and the
    /// default-group count of the window where the largest error was.
    pub noise_at_max_pct: f64,
    /// The window-revision pairs measured: windows with at least `SPLIT_ERROR_MIN_REQUESTS`
    /// default-group requests and a programmed split, revisions programmed strictly between 0%
    /// and 100% (at 0% or 100% the share has no noise to compare with).
    pub measured: u64,
    /// Of those, the ones whose observed share is outside the binomial 95% band
    /// `p ± 1.96·√(p(1−p)/n)`: about 5% from noise alone.
    pub outside_band: u64,
}

/// `part` of `whole` in percent (0 of nothing).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// HDR histograms keep 3 significant digits: percentiles are within 0.1% of the true value.
const SIGFIG: u8 = 3;

/// A per-revision quantity whose current value the recorder is told about when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gauge {
    /// Requests waiting in the revision's queue-proxies.
    QpQueue,
    /// Requests for the revision waiting in the activator.
    ActivatorQueue,
    /// Requests of the revision between routing and their end.
    InFlight,
    /// Pods of the revision that are ready.
    ReadyPods,
    /// The autoscaler's desired pod count for the revision, as last decided. `autoscaler_tick`
    /// does not move it: the caller reports it here when it changes, like the other gauges.
    DesiredPods,
}

/// The number of gauges.
const GAUGES: usize = 5;

impl Gauge {
    pub const ALL: [Gauge; GAUGES] = [
        Gauge::QpQueue,
        Gauge::ActivatorQueue,
        Gauge::InFlight,
        Gauge::ReadyPods,
        Gauge::DesiredPods,
    ];

    pub fn index(self) -> usize {
        match self {
            Gauge::QpQueue => 0,
            Gauge::ActivatorQueue => 1,
            Gauge::InFlight => 2,
            Gauge::ReadyPods => 3,
            Gauge::DesiredPods => 4,
        }
    }
}

/// What the autoscaler saw and decided for one revision at one decider tick: a row of
/// `autoscaler.csv`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoscalerTick {
    /// Average concurrency over the stable window.
    pub stable_concurrency: f64,
    /// Average concurrency over the panic window.
    pub panic_concurrency: f64,
    /// The pods the autoscaler wants; -1 when it made no decision this tick.
    pub desired_pods: i64,
    pub ready_pods: u64,
    /// Whether the autoscaler is in panic mode after this tick.
    pub panic: bool,
    pub excess_burst_capacity: f64,
    /// The SKS mode: `"proxy"` (activator in the path) or `"serve"`.
    pub mode: &'static str,
}

impl AutoscalerTick {
    /// The row of a decider tick that produced `result`, with `ready_pods` ready and the SKS mode
    /// it asked for (`serve`: straight to the pods).
    pub fn new(
        result: &crate::model::autoscaler::ScaleResult,
        ready_pods: u32,
        serve: bool,
    ) -> Self {
        AutoscalerTick {
            stable_concurrency: result.stable,
            panic_concurrency: result.panic,
            desired_pods: i64::from(result.desired_pods),
            ready_pods: u64::from(ready_pods),
            panic: result.in_panic,
            excess_burst_capacity: result.excess_burst_capacity,
            mode: if serve { "serve" } else { "proxy" },
        }
    }
}

/// What the run was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMeta {
    pub scenario: String,
    pub seed: u64,
    /// `"sim"` or `"live"`.
    pub mode: String,
}

/// What running cost; `wall_s` is the only non-deterministic figure in the outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EngineStats {
    pub events: u64,
    pub wall_s: f64,
    pub sim_s: f64,
}

/// The request counts (every outcome, and those in flight at the end), at the top level or for one revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Top level: requests that arrived. Per revision: requests routed to it.
    pub arrived: u64,
    pub served: u64,
    pub rejected_qp: u64,
    pub expired_activator: u64,
    pub expired_qp: u64,
    pub client_cancelled: u64,
    pub app_error: u64,
    pub bad_gateway: u64,
    pub errors: u64,
    /// 503 UO from the gateway's circuit breaker.
    pub ingress_overflow: u64,
    pub in_flight_at_end: u64,
}

impl Counts {
    fn count(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Served => &mut self.served,
            Outcome::RejectedQp => &mut self.rejected_qp,
            Outcome::ExpiredActivator => &mut self.expired_activator,
            Outcome::ExpiredQp => &mut self.expired_qp,
            Outcome::ClientCancelled => &mut self.client_cancelled,
            Outcome::AppError => &mut self.app_error,
            Outcome::BadGateway => &mut self.bad_gateway,
            Outcome::Error => &mut self.errors,
            Outcome::IngressOverflow => &mut self.ingress_overflow,
        };
        *slot += 1;
    }

    /// Adds `other`'s counts to these (merging shards of one run, `merge`).
    pub fn add(&mut self, other: &Counts) {
        for (a, b) in [
            (&mut self.arrived, other.arrived),
            (&mut self.served, other.served),
            (&mut self.rejected_qp, other.rejected_qp),
            (&mut self.expired_activator, other.expired_activator),
            (&mut self.expired_qp, other.expired_qp),
            (&mut self.client_cancelled, other.client_cancelled),
            (&mut self.app_error, other.app_error),
            (&mut self.bad_gateway, other.bad_gateway),
            (&mut self.errors, other.errors),
            (&mut self.ingress_overflow, other.ingress_overflow),
            (&mut self.in_flight_at_end, other.in_flight_at_end),
        ] {
            *a = a.saturating_add(b);
        }
    }

    /// Requests that ended, all outcomes.
    pub fn ends(&self) -> u64 {
        self.served
            + self.rejected_qp
            + self.expired_activator
            + self.expired_qp
            + self.client_cancelled
            + self.app_error
            + self.bad_gateway
            + self.errors
            + self.ingress_overflow
    }

    /// Every arrival is accounted for by exactly one end or by being in flight at the end.
    pub fn balanced(&self) -> bool {
        let ends = [
            self.served,
            self.rejected_qp,
            self.expired_activator,
            self.expired_qp,
            self.client_cancelled,
            self.app_error,
            self.bad_gateway,
            self.errors,
            self.ingress_overflow,
            self.in_flight_at_end,
        ];
        // u128: a sum that overflows u64 must compare unequal, not wrap into equality.
        ends.iter().map(|&c| u128::from(c)).sum::<u128>() == u128::from(self.arrived)
    }
}

/// End-to-end latency of a revision's served requests, in milliseconds with microsecond
/// resolution. Percentiles come from an HDR histogram (3 significant digits, nearest rank) and
/// never exceed the exact maximum; the mean and the maximum are exact.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    #[serde(rename = "mean")]
    pub mean_ms: f64,
    #[serde(rename = "p50")]
    pub p50_ms: f64,
    #[serde(rename = "p90")]
    pub p90_ms: f64,
    #[serde(rename = "p99")]
    pub p99_ms: f64,
    #[serde(rename = "p999")]
    pub p999_ms: f64,
    #[serde(rename = "max")]
    pub max_ms: f64,
}

/// One revision's totals over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionSummary {
    pub name: String,
    /// `arrived` is the number of requests routed to the revision.
    pub counts: Counts,
    pub routed: u64,
    /// `None` when the revision served nothing.
    pub latency: Option<LatencySummary>,
    pub peak_qp_queue: u64,
    pub peak_activator_queue: u64,
    /// Maximum of the `DesiredPods` gauge.
    pub max_desired_pods: u64,
    /// Maximum of the `ReadyPods` gauge.
    pub max_ready_pods: u64,
    /// Time in panic mode: from each autoscaler tick with `panic` to the revision's next tick,
    /// or to the end of the run after its last tick.
    pub panic_seconds: f64,
    /// Times the revision was scaled up from zero ready pods.
    pub cold_starts: u64,
    /// Container crashes of its pods, and the kubelet's restarts after them.
    pub pod_crashes: u64,
    pub pod_restarts: u64,
    /// ∫ pods dt over the run (pods from their creation to their termination, whether ready or
    /// not: what a quota pays for), in seconds.
    pub pod_seconds: f64,
    /// The most pods it had at once.
    pub peak_pods: u64,
}

/// A revision's worst `timeseries.csv` window by p99: where it was and how many served
/// requests that p99 is of. The earliest window wins a tie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorstWindow {
    pub p99_us: u64,
    pub start: SimTime,
    pub end: SimTime,
    pub served: u64,
}

/// What the run's pods cost, all revisions together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub pod_seconds: f64,
    /// The most pods of all revisions together at once (a rollout briefly runs both).
    pub peak_total_pods: u64,
}

/// When a configuration's rollout first started and last finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RolloutSpan {
    pub started: Option<SimTime>,
    pub finished: Option<SimTime>,
}

/// One row of `timeseries.csv`: a window × revision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowCell {
    /// Time-weighted percent of the revision in the default group's split over the window.
    pub programmed_pct: f64,
    /// Requests routed to the revision in the window, all groups.
    pub routed: u64,
    /// Of which in the default group.
    pub routed_default: u64,
    /// The requests that ended in the window, by outcome (`arrived` and `in_flight_at_end`
    /// unused: 0).
    pub ended: Counts,
    /// Maximum of each gauge during the window, indexed like `Gauge::ALL`.
    pub gauge_max: [u64; GAUGES],
    /// Of the served requests that finished in the window.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

impl WindowCell {
    /// Requests that ended in the window, all outcomes.
    pub fn ended(&self) -> u64 {
        self.ended.ends()
    }
}

/// What the recorder tracks for one revision.
#[derive(Debug)]
struct RevisionState {
    counts: Counts,
    routed: u64,
    /// Its served requests over the closed windows (the histogram is filled a window at a
    /// time from `window_latency`; the sum and maximum per request).
    latency: Served,
    window_latency: Histogram<u64>,
    window_max_us: u64,
    gauges: [u64; GAUGES],
    peaks: [u64; GAUGES],
    /// Time and panic flag of the latest autoscaler tick.
    last_tick: Option<(SimTime, bool)>,
    /// Time in panic up to `last_tick`, in nanoseconds.
    panic_ns: i128,
    cold_starts: u64,
    pod_crashes: u64,
    pod_restarts: u64,
    /// Pods now, since when, ∫ pods dt before that (pod·ns), and the most at once.
    pods: u64,
    pods_since: i64,
    pod_ns: i128,
    peak_pods: u64,
    /// Percent in the default group's split now.
    pct: i64,
    /// ∫ pct dt over the current window up to `RunRecorder::segment_start`, in percent·ns.
    pct_ns: i128,
}

impl RevisionState {
    fn new() -> Self {
        RevisionState {
            counts: Counts::default(),
            routed: 0,
            latency: Served::new(),
            window_latency: new_histogram(),
            window_max_us: 0,
            gauges: [0; GAUGES],
            peaks: [0; GAUGES],
            last_tick: None,
            panic_ns: 0,
            cold_starts: 0,
            pod_crashes: 0,
            pod_restarts: 0,
            pods: 0,
            pods_since: 0,
            pod_ns: 0,
            peak_pods: 0,
            pct: 0,
            pct_ns: 0,
        }
    }
}

/// An auto-resizing histogram: it grows with the largest latency seen (a bounded number of
/// times), so no maximum has to be guessed.
fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIG).expect("3 significant digits is a valid histogram precision")
}

fn record_us(hist: &mut Histogram<u64>, us: u64) {
    // An auto-resizing histogram only refuses values beyond i64::MAX / 2 µs (146,000 years);
    // clamp those rather than lose the request.
    if hist.record(us).is_err() {
        hist.saturating_record(us);
    }
}

/// The nearest-rank quantile, never above the exact maximum (the histogram reports the top of a
/// value's bucket, which can exceed the largest value recorded in it).
fn quantile_us(hist: &Histogram<u64>, q: f64, max_us: u64) -> u64 {
    hist.value_at_quantile(q).min(max_us)
}

/// Collects the measurements of one run. Every method is O(1) amortised and allocation-free per
/// request (histograms grow a bounded number of times; a new window allocates one row per
/// revision).
#[derive(Debug)]
pub struct RunRecorder {
    meta: RunMeta,
    names: Vec<String>,
    /// The names as CSV fields, computed once so the request log allocates nothing per row.
    csv_names: Vec<String>,
    index: HashMap<String, usize>,
    window_ns: i64,
    now: SimTime,
    window_start: i64,
    /// `window_start + window_ns` (saturating), kept so that `advance`'s common case, several
    /// times per simulated request, is two comparisons.
    window_end: i64,
    /// Where the current window's row of `cells` starts (`cells.len() - revs.len()`).
    cell_base: usize,
    /// Start of the current constant-split segment within the current window.
    segment_start: i64,
    /// Whether anything per-revision was recorded in the current window.
    touched: bool,
    revs: Vec<RevisionState>,
    /// Closed windows and the current one, `window * revisions + revision`.
    cells: Vec<WindowCell>,
    /// Per window, the outcomes of requests that reached no revision.
    unrouted: Vec<WindowCell>,
    /// Served requests that reached no revision (a load run's responses no classifier label
    /// matched): part of the run's overall latency.
    unrouted_latency: Served,
    totals: Counts,
    rollouts: BTreeMap<String, RolloutSpan>,
    routes_csv: String,
    autoscaler_csv: String,
    analysis_csv: Option<String>,
    analysis: Option<AnalysisSummary>,
    spool: Option<SpoolWriter>,
    clamped_calls: u64,
    /// Pods of all revisions now, and the most at once.
    total_pods: u64,
    peak_total_pods: u64,
    /// With [`RunRecorder::keep_window_histograms`]: each closed cell's latency histogram
    /// (indexed like `cells`), so shards of one run merge into exact window percentiles.
    kept_windows: Option<Vec<merge::EncodedLatency>>,
}

impl RunRecorder {
    /// `revisions` are the revision names, indexed as the other calls index them. `window` is
    /// the width of a `timeseries.csv` row. With `request_log`, every finished request is
    /// logged to `requests.csv`, spooled meanwhile in that directory (the output directory's
    /// staging area, [`super::write::StagedDir`]).
    ///
    /// # Panics
    /// If `window` is not positive or a revision name appears twice: both are programming
    /// errors in the caller (a scenario is validated before it runs).
    pub fn new(
        meta: RunMeta,
        revisions: Vec<String>,
        window: SimDuration,
        request_log: Option<&Path>,
    ) -> Self {
        assert!(window.0 > 0, "window must be positive, got {window}");
        let mut index = HashMap::with_capacity(revisions.len());
        for (i, name) in revisions.iter().enumerate() {
            let previous = index.insert(name.clone(), i);
            assert!(previous.is_none(), "revision {name:?} is listed twice");
        }
        let csv_names = revisions
            .iter()
            .map(|n| csv_field(n).into_owned())
            .collect();
        let revs: Vec<RevisionState> = revisions.iter().map(|_| RevisionState::new()).collect();
        let cells = vec![WindowCell::default(); revs.len()];
        RunRecorder {
            meta,
            names: revisions,
            csv_names,
            index,
            window_ns: window.0,
            now: SimTime::ZERO,
            window_start: 0,
            window_end: window.0,
            cell_base: 0,
            segment_start: 0,
            touched: false,
            revs,
            cells,
            unrouted: vec![WindowCell::default()],
            unrouted_latency: Served::new(),
            totals: Counts::default(),
            rollouts: BTreeMap::new(),
            routes_csv: format!("{ROUTES_HEADER}\n"),
            autoscaler_csv: format!("{AUTOSCALER_HEADER}\n"),
            analysis_csv: None,
            analysis: None,
            spool: request_log.map(|dir| SpoolWriter::create(dir, &format!("{REQUESTS_HEADER}\n"))),
            clamped_calls: 0,
            total_pods: 0,
            peak_total_pods: 0,
            kept_windows: None,
        }
    }

    /// Keeps every window's latency histogram (encoded, a few hundred bytes each) for
    /// [`RunRecorder::finish_parts`]: what a shard of a sharded load run needs.
    pub fn keep_window_histograms(&mut self) {
        self.kept_windows.get_or_insert_with(Vec::new);
    }

    /// The revision names, by index.
    pub fn revision_names(&self) -> &[String] {
        &self.names
    }

    /// The number of revisions the recorder was made with.
    pub fn revision_count(&self) -> usize {
        self.revs.len()
    }

    /// A request arrived (whether or not it will find a route).
    pub fn arrived(&mut self, t: SimTime) {
        self.advance(t);
        self.totals.arrived += 1;
    }

    /// The ingress picked `revision` for a request; `default_group` when it took the route's
    /// main split rather than a tag's.
    pub fn routed(&mut self, t: SimTime, revision: usize, default_group: bool) {
        self.advance(t);
        self.revs[revision].routed += 1;
        let cell = self.cell_mut(revision);
        cell.routed += 1;
        cell.routed_default += u64::from(default_group);
        self.touched = true;
    }

    /// A request ended; call exactly once per request that ends, at `rec.finished`.
    pub fn finished(&mut self, rec: &RequestRecord) {
        self.advance(rec.finished);
        self.totals.count(rec.outcome);
        // Round to the microsecond; a (buggy) negative latency counts as zero.
        let latency_us = (rec.latency_ns().max(0) as u64).saturating_add(500) / 1000;
        if let Some(r) = rec.revision {
            let st = &mut self.revs[r];
            st.counts.count(rec.outcome);
            if rec.outcome == Outcome::Served {
                // Only the window's histogram is touched per request; it is folded into the
                // run's histogram when the window closes (one add per window, not per request).
                record_us(&mut st.window_latency, latency_us);
                st.latency.note(latency_us);
                st.window_max_us = st.window_max_us.max(latency_us);
            }
            self.cell_mut(r).ended.count(rec.outcome);
            self.touched = true;
        } else {
            // A request that reached no revision (no route, a connection error, a load run's
            // response no label matched): its window's unrouted row, so a run of nothing but
            // failures still shows them per window; served, its latency counts overall.
            if rec.outcome == Outcome::Served {
                record_us(&mut self.unrouted_latency.hist, latency_us);
                self.unrouted_latency.note(latency_us);
            }
            self.unrouted
                .last_mut()
                .expect("one unrouted cell per window, the current one last")
                .ended
                .count(rec.outcome);
            self.touched = true;
        }
        if let Some(spool) = self.spool.as_mut() {
            let revision = rec.revision.map_or("", |r| self.csv_names[r].as_str());
            spool.append(|w| {
                writeln!(
                    w,
                    "{},{},{},{},{},{},{},{},{}",
                    rec.id,
                    rec.arrived,
                    rec.finished,
                    revision,
                    rec.default_group,
                    rec.via_activator,
                    rec.outcome.name(),
                    rec.outcome.status(),
                    Ms(latency_us)
                )
            });
        }
    }

    /// From `t` the data plane applies `splits` (revision name, percent) to the group `tag`
    /// (`""` is the default group). Names that are not among the run's revisions appear in
    /// `routes.csv` but have no `timeseries.csv` rows; a name listed twice gets the sum.
    pub fn programmed(&mut self, t: SimTime, tag: &str, splits: &[(String, i64)]) {
        let t = self.advance(t);
        let tag_field = csv_field(tag);
        for (name, percent) in splits {
            writeln!(
                self.routes_csv,
                "{t},{tag_field},{},{percent}",
                csv_field(name)
            )
            .expect("writing to a String cannot fail");
        }
        if !tag.is_empty() {
            return;
        }
        self.close_segment(t.0);
        for st in &mut self.revs {
            st.pct = 0;
        }
        for (name, percent) in splits {
            if let Some(&r) = self.index.get(name) {
                self.revs[r].pct += percent;
            }
        }
        self.touched = true;
    }

    /// The current value of `gauge` for `revision` is now `value`.
    pub fn gauge(&mut self, t: SimTime, revision: usize, gauge: Gauge, value: u64) {
        self.advance(t);
        let g = gauge.index();
        let st = &mut self.revs[revision];
        self.touched = true;
        if value <= st.gauges[g] {
            // The run's peak and the window's maximum are at least the value this one
            // replaces (every value passes here, and a window starts from the value then):
            // only a rise can move them. Half of the in-flight gauge's changes are falls.
            st.gauges[g] = value;
            return;
        }
        st.gauges[g] = value;
        st.peaks[g] = st.peaks[g].max(value);
        let cell = self.cell_mut(revision);
        cell.gauge_max[g] = cell.gauge_max[g].max(value);
    }

    /// The autoscaler's decider ticked for `revision` (every 2 s per revision): one row of
    /// `autoscaler.csv`, and the panic flag's time counts towards `panic_seconds` until the
    /// revision's next tick (or the end of the run).
    pub fn autoscaler_tick(&mut self, t: SimTime, revision: usize, tick: &AutoscalerTick) {
        let t = self.advance(t);
        let st = &mut self.revs[revision];
        if let Some((last, true)) = st.last_tick {
            st.panic_ns += i128::from(t.0 - last.0);
        }
        st.last_tick = Some((t, tick.panic));
        writeln!(
            self.autoscaler_csv,
            "{t},{},{},{},{},{},{},{},{}",
            self.csv_names[revision],
            Fixed3(tick.stable_concurrency),
            Fixed3(tick.panic_concurrency),
            tick.desired_pods,
            tick.ready_pods,
            tick.panic,
            Fixed3(tick.excess_burst_capacity),
            csv_field(tick.mode),
        )
        .expect("writing to a String cannot fail");
    }

    /// Flagger's analysis ticked at `t`: one row of `analysis.csv` (which exists from the
    /// first call on).
    pub fn analysis_tick(&mut self, t: SimTime, tick: &AnalysisTick<'_>) {
        let csv = self
            .analysis_csv
            .get_or_insert_with(|| format!("{ANALYSIS_HEADER}\n"));
        let opt = |v: Option<f64>| v.map(|v| Fixed3(v).to_string()).unwrap_or_default();
        writeln!(
            csv,
            "{t},{},{},{},{},{},{},{},{},{}",
            tick.phase,
            tick.failed_checks,
            tick.canary_weight,
            tick.primary_weight,
            tick.check,
            opt(tick.success_rate_pct),
            opt(tick.duration_p99_ms),
            tick.canary_requests
                .map(|n| n.to_string())
                .unwrap_or_default(),
            tick.action,
        )
        .expect("writing to a String cannot fail");
    }

    /// The analysis' end state for `summary.json` (called once, at the end of the run).
    pub fn analysis_summary(&mut self, summary: AnalysisSummary) {
        self.analysis = Some(summary);
    }

    /// `revision` was scaled up from zero ready pods.
    pub fn cold_start(&mut self, t: SimTime, revision: usize) {
        self.advance(t);
        self.revs[revision].cold_starts += 1;
    }

    /// A pod of `revision` crashed (its container exited).
    pub fn pod_crashed(&mut self, t: SimTime, revision: usize) {
        self.advance(t);
        self.revs[revision].pod_crashes += 1;
    }

    /// The kubelet restarted a crashed pod's container.
    pub fn pod_restarted(&mut self, t: SimTime, revision: usize) {
        self.advance(t);
        self.revs[revision].pod_restarts += 1;
    }

    /// `revision` has `count` pods from `t` on (created and not terminated, ready or not): the
    /// cost figures integrate it.
    pub fn pods(&mut self, t: SimTime, revision: usize, count: u64) {
        let t = self.advance(t);
        let st = &mut self.revs[revision];
        if st.pods == count {
            return;
        }
        st.pod_ns += i128::from(st.pods) * i128::from(t.0 - st.pods_since);
        st.pods_since = t.0;
        self.total_pods = self.total_pods - st.pods + count;
        st.pods = count;
        st.peak_pods = st.peak_pods.max(count);
        self.peak_total_pods = self.peak_total_pods.max(self.total_pods);
    }

    /// A rollout of `configuration` started; the first start is kept.
    pub fn rollout_started(&mut self, t: SimTime, configuration: &str) {
        let t = self.advance(t);
        let span = self.rollout_span(configuration);
        span.started.get_or_insert(t);
    }

    /// A rollout of `configuration` finished; the last finish is kept.
    pub fn rollout_finished(&mut self, t: SimTime, configuration: &str) {
        let t = self.advance(t);
        self.rollout_span(configuration).finished = Some(t);
    }

    /// Ends the run at `end`. `in_flight_at_end` holds, per revision index, the requests routed
    /// to it that have not ended (entries beyond the run's revisions count at the top level
    /// only); `unrouted_in_flight` those not routed yet.
    pub fn finish(
        self,
        end: SimTime,
        in_flight_at_end: &[u64],
        unrouted_in_flight: u64,
        engine: EngineStats,
    ) -> RunReport {
        self.finish_parts(end, in_flight_at_end, unrouted_in_flight, engine)
            .0
    }

    /// [`RunRecorder::finish`], and the run's mergeable parts (a shard of a sharded load run):
    /// `None` unless [`RunRecorder::keep_window_histograms`] was called before the first
    /// window closed.
    pub fn finish_parts(
        mut self,
        end: SimTime,
        in_flight_at_end: &[u64],
        unrouted_in_flight: u64,
        engine: EngineStats,
    ) -> (RunReport, Option<RunParts>) {
        let end = self.advance(end);
        let n = self.revs.len();
        if end.0 > self.window_start || self.touched {
            self.close_window(end.0);
        } else {
            // The window starting exactly at `end` holds nothing: drop its row.
            self.cells.truncate(self.cells.len() - n);
            self.unrouted.pop();
        }

        self.totals.in_flight_at_end = in_flight_at_end
            .iter()
            .fold(unrouted_in_flight, |sum, &c| sum.saturating_add(c));
        let revisions = self
            .revs
            .iter()
            .zip(&self.names)
            .enumerate()
            .map(|(r, (st, name))| {
                let mut counts = st.counts;
                counts.arrived = st.routed;
                counts.in_flight_at_end = in_flight_at_end.get(r).copied().unwrap_or(0);
                let panic_ns = st.panic_ns
                    + match st.last_tick {
                        Some((last, true)) => i128::from(end.0 - last.0),
                        _ => 0,
                    };
                RevisionSummary {
                    name: name.clone(),
                    counts,
                    routed: st.routed,
                    latency: st.latency.summary(),
                    peak_qp_queue: st.peaks[Gauge::QpQueue.index()],
                    peak_activator_queue: st.peaks[Gauge::ActivatorQueue.index()],
                    max_desired_pods: st.peaks[Gauge::DesiredPods.index()],
                    max_ready_pods: st.peaks[Gauge::ReadyPods.index()],
                    panic_seconds: panic_ns as f64 / 1e9,
                    cold_starts: st.cold_starts,
                    pod_crashes: st.pod_crashes,
                    pod_restarts: st.pod_restarts,
                    pod_seconds: (st.pod_ns
                        + i128::from(st.pods) * i128::from(end.0 - st.pods_since))
                        as f64
                        / 1e9,
                    peak_pods: st.peak_pods,
                }
            })
            .collect::<Vec<RevisionSummary>>();
        let cost = Cost {
            pod_seconds: revisions.iter().map(|r| r.pod_seconds).sum(),
            peak_total_pods: self.peak_total_pods,
        };
        let parts = self.kept_windows.take().map(|windows| RunParts {
            revisions: self
                .revs
                .iter()
                .zip(&revisions)
                .map(|(st, summary)| merge::RevisionParts {
                    name: summary.name.clone(),
                    counts: summary.counts,
                    latency: EncodedLatency::of(&st.latency.hist, st.latency.max_us),
                    latency_sum_us: st.latency.sum_us,
                })
                .collect(),
            totals: self.totals,
            window_ns: self.window_ns,
            cells: self
                .cells
                .iter()
                .zip(windows)
                .map(|(c, latency)| merge::CellParts {
                    programmed_pct: c.programmed_pct,
                    routed: c.routed,
                    routed_default: c.routed_default,
                    ended: c.ended,
                    latency,
                })
                .collect(),
            unrouted: self.unrouted.iter().map(|c| c.ended).collect(),
            unrouted_latency: (!self.unrouted_latency.hist.is_empty()).then(|| {
                merge::LatencyParts {
                    latency: EncodedLatency::of(
                        &self.unrouted_latency.hist,
                        self.unrouted_latency.max_us,
                    ),
                    latency_sum_us: self.unrouted_latency.sum_us,
                }
            }),
            routes_csv: self.routes_csv.clone(),
            clamped_calls: self.clamped_calls,
            events: engine.events,
            wall_s: engine.wall_s,
            sim_s: engine.sim_s,
        });

        let mut report = RunReport {
            meta: self.meta,
            revisions,
            totals: self.totals,
            latency: overall_latency(&self.revs, &self.unrouted_latency),
            window: SimDuration(self.window_ns),
            cells: self.cells,
            unrouted: self.unrouted,
            first_event: None,
            max_abs_error_pct: None,
            cost,
            rollouts: self.rollouts,
            engine,
            routes_csv: self.routes_csv,
            autoscaler_csv: self.autoscaler_csv,
            analysis_csv: self.analysis_csv,
            analysis: self.analysis,
            requests: self.spool.map(SpoolWriter::close),
            clamped_calls: self.clamped_calls,
            protocol: None,
            outside: None,
        };
        report.max_abs_error_pct = report.compute_max_abs_error_pct();
        (report, parts)
    }

    /// Moves time to `t` (or keeps it, if `t` is in the past), closing every window `t` leaves.
    ///
    /// Called several times per simulated request: the common case (time moves forward inside
    /// the current window) is inlined, the rest is `advance_slow`.
    #[inline(always)]
    fn advance(&mut self, t: SimTime) -> SimTime {
        if t >= self.now && t.0 < self.window_end {
            self.now = t;
            return t;
        }
        self.advance_slow(t)
    }

    #[cold]
    #[inline(never)]
    fn advance_slow(&mut self, t: SimTime) -> SimTime {
        let t = if t < self.now {
            self.clamped_calls += 1;
            self.now
        } else {
            t
        };
        loop {
            let end = self.window_end;
            // The second test stops at the end of representable time instead of looping there.
            if t.0 < end || end == self.window_start {
                break;
            }
            self.close_window(end);
            self.open_window(end);
        }
        self.now = t;
        t
    }

    #[inline]
    fn cell_mut(&mut self, revision: usize) -> &mut WindowCell {
        &mut self.cells[self.cell_base + revision]
    }

    /// Adds the split in force since `segment_start` to the window's integral, up to `t`.
    fn close_segment(&mut self, t: i64) {
        let span = i128::from(t - self.segment_start);
        for st in &mut self.revs {
            st.pct_ns += i128::from(st.pct) * span;
        }
        self.segment_start = t;
    }

    /// Finalises the current window's row, which ends at `end`.
    fn close_window(&mut self, end: i64) {
        self.close_segment(end);
        let len = end - self.window_start;
        for (st, cell) in self.revs.iter_mut().zip(&mut self.cells[self.cell_base..]) {
            if let Some(kept) = self.kept_windows.as_mut() {
                kept.push(merge::EncodedLatency::of(
                    &st.window_latency,
                    st.window_max_us,
                ));
            }
            cell.programmed_pct = if len > 0 {
                st.pct_ns as f64 / len as f64
            } else {
                // A zero-length last window: the split in force at its start.
                st.pct as f64
            };
            st.pct_ns = 0;
            if !st.window_latency.is_empty() {
                cell.p50_us = Some(quantile_us(&st.window_latency, 0.5, st.window_max_us));
                cell.p99_us = Some(quantile_us(&st.window_latency, 0.99, st.window_max_us));
                st.latency
                    .hist
                    .add(&st.window_latency)
                    .expect("an auto-resizing histogram accepts any other histogram's values");
                // reset keeps the counts array, so the next window allocates nothing.
                st.window_latency.reset();
                st.window_max_us = 0;
            }
        }
    }

    fn open_window(&mut self, start: i64) {
        self.window_start = start;
        self.window_end = start.saturating_add(self.window_ns);
        self.segment_start = start;
        self.touched = false;
        self.unrouted.push(WindowCell::default());
        // A gauge holds its value across the boundary, so that value is the new window's
        // maximum so far.
        self.cell_base = self.cells.len();
        for st in &self.revs {
            self.cells.push(WindowCell {
                gauge_max: st.gauges,
                ..WindowCell::default()
            });
        }
    }

    fn rollout_span(&mut self, configuration: &str) -> &mut RolloutSpan {
        // Look up first so a known configuration costs no allocation.
        if !self.rollouts.contains_key(configuration) {
            self.rollouts
                .insert(configuration.to_owned(), RolloutSpan::default());
        }
        self.rollouts
            .get_mut(configuration)
            .expect("inserted just above")
    }
}

/// Served requests' latency: a histogram in microseconds with the exact sum and maximum.
#[derive(Clone, Debug)]
struct Served {
    hist: Histogram<u64>,
    sum_us: u128,
    max_us: u64,
}

impl Served {
    fn new() -> Self {
        Served {
            hist: new_histogram(),
            sum_us: 0,
            max_us: 0,
        }
    }

    /// Counts `us` in the exact sum and maximum (the histogram is the caller's to fill).
    #[inline]
    fn note(&mut self, us: u64) {
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds `other`'s requests to these.
    fn add(&mut self, other: &Served) {
        self.hist
            .add(&other.hist)
            .expect("an auto-resizing histogram accepts any other histogram's values");
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    fn summary(&self) -> Option<LatencySummary> {
        summarize_latency(&self.hist, self.sum_us, self.max_us)
    }
}

/// The latency of every served request: each revision's and `unrouted`'s (served without
/// reaching a revision) histograms merged, so the percentiles are of the pooled requests,
/// never an average of per-revision percentiles.
fn overall_latency(revs: &[RevisionState], unrouted: &Served) -> Option<LatencySummary> {
    let mut all = unrouted.clone();
    for st in revs {
        all.add(&st.latency);
    }
    all.summary()
}

fn summarize_latency(hist: &Histogram<u64>, sum_us: u128, max: u64) -> Option<LatencySummary> {
    let n = hist.len();
    if n == 0 {
        return None;
    }
    let n128 = u128::from(n);
    let mean_us = (sum_us + n128 / 2) / n128;
    let q = |q| us_to_ms(quantile_us(hist, q, max));
    Some(LatencySummary {
        mean_ms: us_to_ms(u64::try_from(mean_us).unwrap_or(u64::MAX)),
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: us_to_ms(max),
    })
}

/// Everything measured in one run: what the files and the terminal table are made of.
#[derive(Debug)]
pub struct RunReport {
    meta: RunMeta,
    revisions: Vec<RevisionSummary>,
    totals: Counts,
    latency: Option<LatencySummary>,
    window: SimDuration,
    cells: Vec<WindowCell>,
    /// Per window, the outcomes of requests that reached no revision.
    unrouted: Vec<WindowCell>,
    /// The scenario's first timeline event, where the shift may start (`p99_shift_ms`).
    first_event: Option<SimTime>,
    max_abs_error_pct: Option<f64>,
    cost: Cost,
    rollouts: BTreeMap<String, RolloutSpan>,
    engine: EngineStats,
    routes_csv: String,
    autoscaler_csv: String,
    analysis_csv: Option<String>,
    analysis: Option<AnalysisSummary>,
    requests: Option<SpoolFile>,
    clamped_calls: u64,
    protocol: Option<String>,
    outside: Option<OutsideRequests>,
}

/// Requests that reached `splitlab live`'s gateway from outside clients (`--listen`): served
/// and answered like the run's own, but not the run's arrivals, so they are kept apart from its
/// ledger and counted here by their answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutsideRequests {
    pub requests: u64,
    /// Answered with a status below 400.
    pub served: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl RunReport {
    /// `summary.json` `outside_requests`: what outside clients of `splitlab live --listen` got.
    /// Left out when never set.
    pub fn set_outside_requests(&mut self, outside: OutsideRequests) {
        self.outside = Some(outside);
    }

    /// `summary.json` `protocol`: what a load run's connections spoke (`http/1.1`, `h2`,
    /// `h2c`; several joined with `+`). Left out of `summary.json` when never set (simulated
    /// runs, `splitlab live`) or set to `None` (no connection was made).
    pub fn set_protocol(&mut self, protocol: Option<String>) {
        self.protocol = protocol;
    }

    /// The time of the scenario's first timeline event (`None`: none, as in `splitlab load`):
    /// where the shift of `p99_shift_ms` may start before any rollout does.
    pub fn set_first_event(&mut self, first_event: Option<SimTime>) {
        self.first_event = first_event;
    }

    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    /// The outcomes of window `window`'s requests that reached no revision.
    pub fn unrouted_cell(&self, window: usize) -> &WindowCell {
        &self.unrouted[window]
    }

    /// Whether any request reached no revision: `timeseries.csv` then has a row with an empty
    /// `revision` per window.
    pub fn has_unrouted(&self) -> bool {
        self.unrouted.iter().any(|c| c.ended() > 0)
    }

    /// The metrics windows of the shift, `first..last`: from the window holding the first
    /// timeline event or the first rollout start, whichever is earlier (`first_event`), to the
    /// last window that starts before `SHIFT_SETTLE` after the last rollout finished (after its
    /// start when no gradual rollout happened, as with rollout-duration 0; to the end of the run
    /// when a rollout never finished). `None` without timeline events and rollouts.
    pub fn shift_windows(&self, first_event: Option<SimTime>) -> Option<std::ops::Range<usize>> {
        let first_rollout = self.rollouts.values().filter_map(|s| s.started).min();
        let start = match (first_event, first_rollout) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let unfinished = self
            .rollouts
            .values()
            .any(|s| s.started.is_some() && s.finished.is_none());
        let window_ns = self.window.0.max(1);
        let windows = self.windows();
        let last_window = if unfinished {
            windows
        } else {
            let finished = self.rollouts.values().filter_map(|s| s.finished).max();
            let settled = finished.unwrap_or(start).0.saturating_add(SHIFT_SETTLE.0);
            // Windows [k·w, (k+1)·w) that start before `settled`.
            usize::try_from((settled.saturating_add(window_ns - 1)).div_euclid(window_ns))
                .unwrap_or(0)
                .min(windows)
        };
        let first_window = usize::try_from(start.0.div_euclid(window_ns)).unwrap_or(0);
        Some(first_window..last_window.max(first_window))
    }

    /// Per revision (in order), the worst p99 during the shift (`shift_windows`), in
    /// milliseconds: the highest of its windows' p99 (`timeseries.csv` `p99_ms`). `None` without
    /// a shift or when the revision served nothing then.
    pub fn p99_shift_ms(&self, first_event: Option<SimTime>) -> Vec<Option<f64>> {
        let Some(range) = self.shift_windows(first_event) else {
            return vec![None; self.revisions.len()];
        };
        (0..self.revisions.len())
            .map(|r| {
                range
                    .clone()
                    .filter_map(|w| self.cell(w, r).p99_us)
                    .max()
                    .map(|us| us as f64 / 1000.0)
            })
            .collect()
    }

    /// The top-level counts; requests never routed count only here.
    pub fn totals(&self) -> &Counts {
        &self.totals
    }

    /// What the pods cost, all revisions together (`summary.json` `cost`).
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The latency of every served request, all revisions pooled (merged histograms); `None`
    /// when nothing was served. Not part of `summary.json`, which reports it per revision.
    pub fn latency(&self) -> Option<&LatencySummary> {
        self.latency.as_ref()
    }

    /// Per revision, in index order.
    pub fn revisions(&self) -> &[RevisionSummary] {
        &self.revisions
    }

    pub fn rollouts(&self) -> &BTreeMap<String, RolloutSpan> {
        &self.rollouts
    }

    pub fn engine(&self) -> &EngineStats {
        &self.engine
    }

    pub fn window(&self) -> SimDuration {
        self.window
    }

    /// The number of `timeseries.csv` windows.
    pub fn windows(&self) -> usize {
        self.cells
            .len()
            .checked_div(self.revisions.len())
            .unwrap_or(0)
    }

    /// Per revision (in order), its window with the highest p99 (see `WorstWindow`).
    pub fn worst_windows(&self) -> Vec<Option<WorstWindow>> {
        (0..self.revisions.len())
            .map(|r| {
                let mut worst: Option<WorstWindow> = None;
                for k in 0..self.windows() {
                    let c = self.cell(k, r);
                    let Some(p99_us) = c.p99_us else { continue };
                    if worst.is_none_or(|w| p99_us > w.p99_us) {
                        let start = (k as i64).saturating_mul(self.window.0);
                        worst = Some(WorstWindow {
                            p99_us,
                            start: SimTime(start),
                            end: SimTime(start.saturating_add(self.window.0)),
                            served: c.ended.served,
                        });
                    }
                }
                worst
            })
            .collect()
    }

    /// The row of window `window` and revision `revision`.
    pub fn cell(&self, window: usize, revision: usize) -> &WindowCell {
        &self.cells[window * self.revisions.len() + revision]
    }

    /// The revision's share (percent) of the window's default-group requests; `None` when the
    /// window had none.
    pub fn observed_pct(&self, window: usize, revision: usize) -> Option<f64> {
        let total = self.default_total(window);
        (total > 0)
            .then(|| self.cell(window, revision).routed_default as f64 * 100.0 / total as f64)
    }

    /// The largest |observed_pct − programmed_pct| over windows with at least
    /// `SPLIT_ERROR_MIN_REQUESTS` default-group requests (all revisions together) and a
    /// programmed split; `None` when no window qualifies (too few requests, or nothing to
    /// compare with, as in `splitlab load` without `--expect`).
    pub fn max_abs_error_pct(&self) -> Option<f64> {
        self.max_abs_error_pct
    }

    /// Calls whose time was earlier than one already seen (and so were counted at that later
    /// time). Zero for a well-behaved caller.
    pub fn clamped_calls(&self) -> u64 {
        self.clamped_calls
    }

    /// arrived = served + rejected_qp + expired_activator + expired_qp + client_cancelled +
    /// app_error + bad_gateway + errors + ingress_overflow + in_flight_at_end, at the top level and
    /// for every revision.
    pub fn accounting_ok(&self) -> bool {
        self.totals.balanced() && self.revisions.iter().all(|r| r.counts.balanced())
    }

    fn default_total(&self, window: usize) -> u64 {
        let n = self.revisions.len();
        self.cells[window * n..(window + 1) * n]
            .iter()
            .map(|c| c.routed_default)
            .sum()
    }

    fn compute_max_abs_error_pct(&self) -> Option<f64> {
        self.split_errors().map(|(err, _)| err)
    }

    /// The largest split error and where it was, `(error, window, revision)` over the windows
    /// that qualify (see `max_abs_error_pct`); the earliest of a tie.
    fn split_errors(&self) -> Option<(f64, (usize, usize))> {
        let mut max: Option<(f64, (usize, usize))> = None;
        for w in self.split_windows() {
            for r in 0..self.revisions.len() {
                let observed = self.observed_pct(w, r).unwrap_or(0.0);
                let err = (observed - self.cell(w, r).programmed_pct).abs();
                if max.is_none_or(|(m, _)| err > m) {
                    max = Some((err, (w, r)));
                }
            }
        }
        max
    }

    /// Windows with at least `SPLIT_ERROR_MIN_REQUESTS` default-group requests and a programmed
    /// split: where the split's error is measured.
    fn split_windows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.windows()).filter(|&w| {
            let programmed: f64 = (0..self.revisions.len())
                .map(|r| self.cell(w, r).programmed_pct)
                .sum();
            // No programmed split in this window: there is nothing to measure the error against.
            self.default_total(w) >= SPLIT_ERROR_MIN_REQUESTS && programmed > 0.0
        })
    }

    /// The split's largest error beside binomial noise (see `SplitNoise`); `None` when no
    /// window qualifies.
    pub fn split_noise(&self) -> Option<SplitNoise> {
        use super::accuracy::{binomial_se, Z95};
        let half_pct = |p_pct: f64, n: u64| Z95 * binomial_se(p_pct / 100.0, n) * 100.0;
        let (_, (w_max, r_max)) = self.split_errors()?;
        let (mut measured, mut outside_band) = (0, 0);
        for w in self.split_windows() {
            let n = self.default_total(w);
            for r in 0..self.revisions.len() {
                let p = self.cell(w, r).programmed_pct;
                if p <= 0.0 || p >= 100.0 {
                    continue;
                }
                measured += 1;
                let observed = self.observed_pct(w, r).unwrap_or(0.0);
                // a share exactly on the band's edge is inside
                if (observed - p).abs() > half_pct(p, n) + 1e-9 {
                    outside_band += 1;
                }
            }
        }
        Some(SplitNoise {
            noise_at_max_pct: half_pct(
                self.cell(w_max, r_max).programmed_pct,
                self.default_total(w_max),
            ),
            measured,
            outside_band,
        })
    }

    /// Writes `summary.json`, `timeseries.csv`, `routes.csv`, `autoscaler.csv` (the header
    /// alone when the autoscaler never ticked), `analysis.csv` when the scenario has an
    /// analysis (else one left by an earlier run is removed) and, when requests were kept, `requests.csv`
    /// into `dir` (created if missing), each atomically. Without kept requests, or when the
    /// request log failed during the run ([`RunReport::request_log_error`]), a `requests.csv`
    /// left in `dir` by an earlier run is removed, so the directory never pairs this run's
    /// summary with another run's request log; the other files are written all the same.
    pub fn write(&self, dir: &Path) -> Result<(), WriteError> {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut json = serde_json::to_vec_pretty(&self.summary_doc())?;
        json.push(b'\n');
        write_atomic(dir, SUMMARY_FILE, |w| w.write_all(&json))?;
        write_atomic(dir, TIMESERIES_FILE, |w| self.write_timeseries(w))?;
        write_atomic(dir, ROUTES_FILE, |w| {
            w.write_all(self.routes_csv.as_bytes())
        })?;
        write_atomic(dir, AUTOSCALER_FILE, |w| {
            w.write_all(self.autoscaler_csv.as_bytes())
        })?;
        match &self.analysis_csv {
            Some(csv) => write_atomic(dir, ANALYSIS_FILE, |w| w.write_all(csv.as_bytes()))?,
            None => remove_if_present(dir, ANALYSIS_FILE)?,
        }
        match &self.requests {
            Some(spool) if spool.check().is_ok() => {
                write_atomic(dir, REQUESTS_FILE, |w| spool.copy_to(w))
            }
            _ => remove_if_present(dir, REQUESTS_FILE),
        }
    }

    /// Why the request log (`--requests`) is incomplete, when writing it failed during the
    /// run (a full disk); [`RunReport::write`] then leaves `requests.csv` out.
    pub fn request_log_error(&self) -> Option<WriteError> {
        self.requests.as_ref().and_then(|s| s.check().err())
    }

    fn write_timeseries(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "{TIMESERIES_HEADER}")?;
        let names: Vec<_> = self.revisions.iter().map(|r| csv_field(&r.name)).collect();
        let opt_ms = |us: Option<u64>| us.map(|us| Ms(us).to_string()).unwrap_or_default();
        let has_unrouted = self.has_unrouted();
        for k in 0..self.windows() {
            let start = SimTime((k as i64).saturating_mul(self.window.0));
            for (r, name) in names.iter().enumerate() {
                let c = self.cell(k, r);
                let observed = self
                    .observed_pct(k, r)
                    .map(|p| Fixed3(p).to_string())
                    .unwrap_or_default();
                let [qp, act, in_flight, ready, desired] = c.gauge_max;
                writeln!(
                    w,
                    "{start},{name},{},{},{observed},{},{},{},{qp},{act},{in_flight},{ready},{},{},\
                     {desired},{},{},{},{},{},{},{}",
                    Fixed3(c.programmed_pct),
                    c.routed,
                    c.ended.served,
                    c.ended.rejected_qp,
                    c.ended.expired_activator + c.ended.expired_qp,
                    opt_ms(c.p50_us),
                    opt_ms(c.p99_us),
                    c.ended.app_error,
                    c.ended.bad_gateway,
                    c.ended.ingress_overflow,
                    c.ended.expired_activator,
                    c.ended.expired_qp,
                    c.ended.client_cancelled,
                    c.ended.errors,
                )?;
            }
            if has_unrouted {
                let u = &self.unrouted_cell(k).ended;
                writeln!(
                    w,
                    "{start},,0.000,0,,{},{},{},0,0,0,0,,,0,{},{},{},{},{},{},{}",
                    u.served,
                    u.rejected_qp,
                    u.expired_activator + u.expired_qp,
                    u.app_error,
                    u.bad_gateway,
                    u.ingress_overflow,
                    u.expired_activator,
                    u.expired_qp,
                    u.client_cancelled,
                    u.errors,
                )?;
            }
        }
        Ok(())
    }

    fn summary_doc(&self) -> SummaryDoc<'_> {
        let noise = self.split_noise();
        SummaryDoc {
            scenario: &self.meta.scenario,
            seed: self.meta.seed,
            mode: &self.meta.mode,
            protocol: self.protocol.as_deref(),
            requests: &self.totals,
            latency_ms: self.latency.as_ref(),
            revisions: RevisionsDoc(
                &self.revisions,
                self.worst_windows(),
                self.p99_shift_ms(self.first_event),
            ),
            cost: CostDoc {
                pod_seconds: round3(self.cost.pod_seconds),
                peak_total_pods: self.cost.peak_total_pods,
            },
            split: SplitDoc {
                max_abs_error_pct: self.max_abs_error_pct.map(round3),
                noise_at_max_pct: noise.map(|n| round3(n.noise_at_max_pct)),
                windows_measured: noise.map_or(0, |n| n.measured),
                windows_outside_band: noise.map_or(0, |n| n.outside_band),
            },
            rollout: self
                .rollouts
                .iter()
                .map(|(name, span)| {
                    (
                        name.as_str(),
                        RolloutDoc {
                            started_s: span.started.map(|t| secs3(t.0)),
                            finished_s: span.finished.map(|t| secs3(t.0)),
                        },
                    )
                })
                .collect(),
            engine: EngineDoc {
                events: self.engine.events,
                wall_s: round3(self.engine.wall_s),
                sim_s: round3(self.engine.sim_s),
            },
            analysis: self.analysis.as_ref(),
            outside_requests: self.outside.as_ref(),
        }
    }

    /// Flagger's analysis at the end of the run (`summary.json` `analysis`), when configured.
    pub fn analysis(&self) -> Option<&AnalysisSummary> {
        self.analysis.as_ref()
    }

    /// `analysis.csv`, when the scenario has an analysis.
    pub fn analysis_csv(&self) -> Option<&str> {
        self.analysis_csv.as_deref()
    }

    /// The content of `summary.json` (map keys in serde_json's order, see the module docs).
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::to_value(self.summary_doc())
            .expect("the summary has string keys and finite numbers only")
    }

    /// A short table for the terminal.
    pub fn summary_table(&self) -> String {
        let mut s = String::new();
        let t = &self.totals;
        let m = &self.meta;
        let e = &self.engine;
        // Writing to a String cannot fail; the results are ignored through this one helper.
        let mut line = |text: String| {
            s.push_str(&text);
            s.push('\n');
        };
        // A `splitlab load` run (the one kind with a protocol) measured a real endpoint: it has
        // no simulated time, and no queue-proxy, activator or autoscaler of its own to report.
        let load_run = self.protocol.is_some();
        line(format!(
            "scenario {}  seed {}  mode {}  {} {:.3} s  events {}  wall {:.3} s",
            m.scenario,
            m.seed,
            m.mode,
            if load_run { "ran" } else { "simulated" },
            e.sim_s,
            e.events,
            e.wall_s
        ));
        let simulator_only = t.rejected_qp
            + t.expired_activator
            + t.expired_qp
            + t.app_error
            + t.bad_gateway
            + t.ingress_overflow;
        if load_run && simulator_only == 0 {
            line(format!(
                "requests: arrived {}  served {}  errors {}  timeout {}  in_flight_at_end {}",
                t.arrived, t.served, t.errors, t.client_cancelled, t.in_flight_at_end
            ));
        } else {
            line(format!(
            "requests: arrived {}  served {}  rejected_qp {}  expired_activator {}  expired_qp {}  \
             client_cancelled {}  app_error {}  bad_gateway {}  errors {}  ingress_overflow {}  \
             in_flight_at_end {}",
            t.arrived,
            t.served,
            t.rejected_qp,
            t.expired_activator,
            t.expired_qp,
            t.client_cancelled,
            t.app_error,
            t.bad_gateway,
            t.errors,
            t.ingress_overflow,
            t.in_flight_at_end
        ));
        }
        let width = self
            .revisions
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max("revision".len());
        // A revision's p50 and p99 as printed, `-` when it served nothing.
        let p50_p99 = |l: Option<&LatencySummary>| {
            l.map_or(("-".to_owned(), "-".to_owned()), |l| {
                (format!("{:.3}", l.p50_ms), format!("{:.3}", l.p99_ms))
            })
        };
        if load_run {
            line(format!(
                "{:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "revision",
                "routed",
                "served",
                "errors",
                "timeout",
                "in_flight",
                "p50_ms",
                "p99_ms"
            ));
            for r in &self.revisions {
                let c = &r.counts;
                let (p50, p99) = p50_p99(r.latency.as_ref());
                line(format!(
                    "{:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    r.name,
                    r.routed,
                    c.served,
                    c.errors,
                    c.client_cancelled,
                    c.in_flight_at_end,
                    p50,
                    p99
                ));
            }
        } else {
            line(format!(
                "{:<width$} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
                "revision",
                "routed",
                "served",
                "rej_qp",
                "expired",
                "in_flight",
                "p50_ms",
                "p99_ms",
                "peak_qp",
                "peak_act",
                "max_pods"
            ));
            for r in &self.revisions {
                let c = &r.counts;
                let (p50, p99) = p50_p99(r.latency.as_ref());
                line(format!(
                    "{:<width$} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}",
                    r.name,
                    r.routed,
                    c.served,
                    c.rejected_qp,
                    c.expired_activator + c.expired_qp,
                    c.in_flight_at_end,
                    p50,
                    p99,
                    r.peak_qp_queue,
                    r.peak_activator_queue,
                    r.max_desired_pods
                ));
            }
        }
        line(match (self.max_abs_error_pct, self.split_noise()) {
            // Every measured share programmed 0% or 100%: there is no noise to compare with.
            (Some(err), Some(noise)) if noise.measured == 0 => format!(
                "split: max abs error {err:.3} pct points (windows of {} with >= {} \
                 default-group requests)",
                self.window, SPLIT_ERROR_MIN_REQUESTS
            ),
            (Some(err), Some(noise)) => format!(
                "split: max abs error {err:.3} pct points (windows of {} with >= {} \
                 default-group requests); binomial 95% noise there ±{:.3}; {} of {} \
                 window shares outside their 95% band ({:.1}%, about 5% from noise alone)",
                self.window,
                SPLIT_ERROR_MIN_REQUESTS,
                noise.noise_at_max_pct,
                noise.outside_band,
                noise.measured,
                percent(noise.outside_band, noise.measured),
            ),
            _ => format!(
                "split: no error measured (no window of {} had both a programmed split and >= {} \
                 default-group requests)",
                self.window, SPLIT_ERROR_MIN_REQUESTS
            ),
        });
        for (name, span) in &self.rollouts {
            let at = |t: Option<SimTime>| {
                t.map_or("-".to_owned(), |t| format!("{:.3} s", t.as_secs_f64()))
            };
            line(format!(
                "rollout {name}: started {}, finished {}",
                at(span.started),
                at(span.finished)
            ));
        }
        line(format!(
            "accounting: {}",
            if self.accounting_ok() {
                "ok"
            } else {
                "MISMATCH (arrived != ended + in flight)"
            }
        ));
        s
    }
}

// ---------------------------------------------------------------------------------------------
// summary.json: serialisation-only views, so the file's key order is the struct field order.
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct SummaryDoc<'a> {
    scenario: &'a str,
    seed: u64,
    mode: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    requests: &'a Counts,
    /// Every served request's latency, pooled over the revisions (and requests that reached
    /// none): what the Service's users saw, the figure an SLO is written on.
    latency_ms: Option<&'a LatencySummary>,
    revisions: RevisionsDoc<'a>,
    cost: CostDoc,
    split: SplitDoc,
    rollout: BTreeMap<&'a str, RolloutDoc>,
    engine: EngineDoc,
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<&'a AnalysisSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outside_requests: Option<&'a OutsideRequests>,
}

/// The revisions as a JSON object in index order (a `BTreeMap` would sort them by name).
struct RevisionsDoc<'a>(
    &'a [RevisionSummary],
    Vec<Option<WorstWindow>>,
    Vec<Option<f64>>,
);

impl Serialize for RevisionsDoc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for ((r, worst), shift) in self.0.iter().zip(&self.1).zip(&self.2) {
            map.serialize_entry(
                &r.name,
                &RevisionDoc {
                    counts: &r.counts,
                    routed: r.routed,
                    latency_ms: r.latency.as_ref(),
                    peak_qp_queue: r.peak_qp_queue,
                    peak_activator_queue: r.peak_activator_queue,
                    max_desired_pods: r.max_desired_pods,
                    max_ready_pods: r.max_ready_pods,
                    panic_seconds: round3(r.panic_seconds),
                    cold_starts: r.cold_starts,
                    pod_crashes: r.pod_crashes,
                    pod_restarts: r.pod_restarts,
                    cost: RevisionCostDoc {
                        pod_seconds: round3(r.pod_seconds),
                        peak_pods: r.peak_pods,
                    },
                    worst_window: worst.map(|w| WorstWindowDoc {
                        p99_ms: w.p99_us as f64 / 1000.0,
                        start_s: secs3(w.start.0),
                        end_s: secs3(w.end.0),
                        served: w.served,
                    }),
                    p99_shift_ms: *shift,
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct RevisionDoc<'a> {
    #[serde(flatten)]
    counts: &'a Counts,
    routed: u64,
    latency_ms: Option<&'a LatencySummary>,
    peak_qp_queue: u64,
    peak_activator_queue: u64,
    max_desired_pods: u64,
    max_ready_pods: u64,
    panic_seconds: f64,
    cold_starts: u64,
    pod_crashes: u64,
    pod_restarts: u64,
    cost: RevisionCostDoc,
    /// The window whose p99 was the revision's worst (`None` when it served nothing).
    worst_window: Option<WorstWindowDoc>,
    /// The worst p99 during the shift (`RunReport::p99_shift_ms`); `None` without a shift or
    /// when the revision served nothing then.
    p99_shift_ms: Option<f64>,
}

/// `summary.json` `revisions.NAME.worst_window`: the `timeseries.csv` window with the highest
/// p99 of the requests the revision served in it, where it starts and ends and how many
/// requests that p99 is of (a p99 of a few requests is their maximum). The earliest wins a tie.
#[derive(Serialize)]
struct WorstWindowDoc {
    p99_ms: f64,
    start_s: f64,
    end_s: f64,
    served: u64,
}

#[derive(Serialize)]
struct RevisionCostDoc {
    pod_seconds: f64,
    peak_pods: u64,
}

#[derive(Serialize)]
struct CostDoc {
    pod_seconds: f64,
    peak_total_pods: u64,
}

#[derive(Serialize)]
struct SplitDoc {
    max_abs_error_pct: Option<f64>,
    /// `SplitNoise::noise_at_max_pct`.
    noise_at_max_pct: Option<f64>,
    /// `SplitNoise::measured` and `outside_band`.
    windows_measured: u64,
    windows_outside_band: u64,
}

#[derive(Serialize)]
struct RolloutDoc {
    started_s: Option<f64>,
    finished_s: Option<f64>,
}

#[derive(Serialize)]
struct EngineDoc {
    events: u64,
    wall_s: f64,
    sim_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    const S: i64 = 1_000_000_000;
    const MS: i64 = 1_000_000;

    fn meta() -> RunMeta {
        RunMeta {
            scenario: "demo".into(),
            seed: 7,
            mode: "sim".into(),
        }
    }

    fn recorder(revisions: &[&str], window: SimDuration, keep: bool) -> RunRecorder {
        let names = revisions.iter().map(|s| s.to_string()).collect();
        let spool_dir = std::env::temp_dir();
        RunRecorder::new(meta(), names, window, keep.then_some(spool_dir.as_path()))
    }

    fn engine() -> EngineStats {
        EngineStats {
            events: 42,
            wall_s: 0.5,
            sim_s: 10.0,
        }
    }

    fn split(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    pub(super) fn rec(
        id: u64,
        arrived: i64,
        finished: i64,
        revision: Option<usize>,
        outcome: Outcome,
    ) -> RequestRecord {
        RequestRecord {
            id,
            arrived: SimTime(arrived),
            finished: SimTime(finished),
            revision,
            default_group: true,
            via_activator: false,
            outcome,
        }
    }

    /// A directory under the system temp dir, removed when dropped.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "splitlab-report-test-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            TestDir(path)
        }
        fn read(&self, file: &str) -> String {
            std::fs::read_to_string(self.0.join(file)).expect("output file readable")
        }
        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .expect("dir readable")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A small run touching every kind of call, used by the file tests.
    fn sample_run(keep: bool) -> RunReport {
        let mut r = recorder(&["a", "b"], SimDuration::from_secs(1), keep);
        r.programmed(SimTime::ZERO, "", &split(&[("a", 100), ("b", 0)]));
        r.gauge(SimTime::ZERO, 0, Gauge::ReadyPods, 1);
        r.gauge(SimTime::ZERO, 0, Gauge::DesiredPods, 1);
        r.pods(SimTime::ZERO, 0, 1);
        r.autoscaler_tick(
            SimTime::ZERO,
            0,
            &tick(0.0, 0.0, 1, 1, false, -201.0, "proxy"),
        );
        r.autoscaler_tick(
            SimTime::ZERO,
            1,
            &tick(0.0, 0.0, 0, 0, false, -211.0, "proxy"),
        );
        r.arrived(SimTime(100 * MS));
        r.routed(SimTime(100 * MS), 0, true);
        r.arrived(SimTime(200 * MS));
        r.gauge(SimTime(250 * MS), 0, Gauge::QpQueue, 1);
        r.finished(&rec(1, 200 * MS, 300 * MS, None, Outcome::Error));
        r.finished(&rec(0, 100 * MS, 350_500 * 1000, Some(0), Outcome::Served));
        r.rollout_started(SimTime(S), "cfg");
        r.programmed(SimTime(S), "", &split(&[("a", 99), ("b", 1)]));
        r.programmed(SimTime(S), "cand", &split(&[("b", 100)]));
        r.arrived(SimTime(1500 * MS));
        r.routed(SimTime(1500 * MS), 1, false);
        r.finished(&RequestRecord {
            via_activator: true,
            default_group: false,
            ..rec(2, 1500 * MS, 1800 * MS, Some(1), Outcome::ExpiredActivator)
        });
        r.gauge(SimTime(1800 * MS), 1, Gauge::DesiredPods, 2);
        r.cold_start(SimTime(1800 * MS), 1);
        r.pods(SimTime(1800 * MS), 1, 2);
        r.pod_crashed(SimTime(1900 * MS), 1);
        r.arrived(SimTime(1900 * MS));
        r.routed(SimTime(1900 * MS), 1, true);
        r.rollout_finished(SimTime(2 * S), "cfg");
        r.pods(SimTime(2 * S), 1, 1);
        r.pod_restarted(SimTime(2 * S), 1);
        r.autoscaler_tick(
            SimTime(2 * S),
            0,
            &tick(0.25, 0.5, -1, 1, true, -201.5, "proxy"),
        );
        r.autoscaler_tick(
            SimTime(2 * S),
            1,
            &tick(1.0 / 3.0, 1.0, 2, 0, true, 0.12345, "serve"),
        );
        r.finish(SimTime(2500 * MS), &[0, 1], 0, engine())
    }

    fn tick(
        stable_concurrency: f64,
        panic_concurrency: f64,
        desired_pods: i64,
        ready_pods: u64,
        panic: bool,
        excess_burst_capacity: f64,
        mode: &'static str,
    ) -> AutoscalerTick {
        AutoscalerTick {
            stable_concurrency,
            panic_concurrency,
            desired_pods,
            ready_pods,
            panic,
            excess_burst_capacity,
            mode,
        }
    }

    #[test]
    fn windows_are_half_open() {
        // (time of the routing, window it lands in), w = 1 s
        let cases = [
            (0, 0),         // the very start
            (S - 1, 0),     // last nanosecond of window 0
            (S, 1),         // a boundary belongs to the window it starts
            (2 * S + 1, 2), // just after a boundary
            (5 * S - 1, 4), // last nanosecond before the end
        ];
        for (t, window) in cases {
            let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
            r.routed(SimTime(t), 0, true);
            let report = r.finish(SimTime(5 * S), &[1], 0, engine());
            assert_eq!(report.windows(), 5, "t = {t}");
            for k in 0..5 {
                let expected = u64::from(k == window);
                assert_eq!(report.cell(k, 0).routed, expected, "t = {t}, window {k}");
            }
        }
    }

    #[test]
    fn the_last_window_follows_the_end() {
        // (end, a request served at this time (or none), windows, last window's programmed_pct)
        let cases = [
            // end on a boundary with nothing at the end: no empty trailing row; the last row is
            // [2 s, 3 s): 0.25 s at 100 and 0.75 s at 40
            (3 * S, None, 3, 55.0),
            // something finished exactly at the end: its window is kept, with the split at `end`
            (3 * S, Some(3 * S), 4, 40.0),
            // end mid-window: the last window is averaged over [2 s, 2.5 s) only
            (2500 * MS, None, 3, 70.0),
            // nothing at all in a zero-length run
            (0, None, 0, 0.0),
        ];
        for (end, served_at, windows, last_pct) in cases {
            let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
            if end > 0 {
                r.programmed(SimTime::ZERO, "", &split(&[("a", 100)]));
                r.programmed(SimTime(2250 * MS), "", &split(&[("a", 40)]));
            }
            if let Some(t) = served_at {
                r.finished(&rec(0, 0, t, Some(0), Outcome::Served));
            }
            let report = r.finish(SimTime(end), &[0], 0, engine());
            assert_eq!(report.windows(), windows, "end {end}");
            if windows > 0 {
                let last = report.cell(windows - 1, 0);
                assert!(
                    (last.programmed_pct - last_pct).abs() < 1e-9,
                    "end {end}: {last:?}"
                );
                assert_eq!(
                    last.ended.served,
                    u64::from(served_at.is_some()),
                    "end {end}"
                );
            }
        }
    }

    #[test]
    fn programmed_pct_is_time_weighted_and_only_default_group() {
        let mut r = recorder(&["a", "b"], SimDuration::from_secs(10), false);
        r.programmed(SimTime::ZERO, "", &split(&[("a", 100), ("b", 0)]));
        r.programmed(SimTime(2500 * MS), "", &split(&[("a", 40), ("b", 60)]));
        // A tag's split is written to routes.csv but does not move the default-group share.
        r.programmed(SimTime(5 * S), "cand", &split(&[("b", 100)]));
        // A name that is not a revision of the run: routes.csv only.
        r.programmed(
            SimTime(12 * S),
            "",
            &split(&[("a", 40), ("b", 60), ("zz", 0)]),
        );
        let report = r.finish(SimTime(15 * S), &[0, 0], 0, engine());
        assert_eq!(report.windows(), 2);
        // window 0: 2.5 s at 100 and 7.5 s at 40 → 55; b: 7.5 s at 60 → 45
        assert!((report.cell(0, 0).programmed_pct - 55.0).abs() < 1e-9);
        assert!((report.cell(0, 1).programmed_pct - 45.0).abs() < 1e-9);
        // window 1 is [10 s, 15 s): constant
        assert!((report.cell(1, 0).programmed_pct - 40.0).abs() < 1e-9);
        assert!((report.cell(1, 1).programmed_pct - 60.0).abs() < 1e-9);
        assert_eq!(
            report.routes_csv,
            "t_s,tag,revision,percent\n\
             0,,a,100\n0,,b,0\n\
             2.5,,a,40\n2.5,,b,60\n\
             5,cand,b,100\n\
             12,,a,40\n12,,b,60\n12,,zz,0\n"
        );
    }

    #[test]
    fn split_error_is_none_without_a_programmed_split_or_enough_requests() {
        // (programmed split, default-group requests to `a` in window 0, expected error)
        type Split = [(&'static str, i64); 2];
        let cases: [(Option<Split>, i64, Option<f64>); 4] = [
            // `splitlab load` without --expect: plenty of requests, nothing to compare with
            (None, 500, None),
            // a split, but too few requests in every window
            (Some([("a", 50), ("b", 50)]), 99, None),
            // a split and enough requests: all to a, so 100 vs 50 is 50 points off
            (Some([("a", 50), ("b", 50)]), 100, Some(50.0)),
            // a split that puts everything on a, and everything arrives there: exactly 0
            (Some([("a", 100), ("b", 0)]), 100, Some(0.0)),
        ];
        for (programmed, n, expected) in cases {
            let mut r = recorder(&["a", "b"], SimDuration::from_secs(1), false);
            if let Some(p) = programmed {
                r.programmed(SimTime::ZERO, "", &split(&p));
            }
            for i in 0..n {
                r.routed(SimTime(i * MS), 0, true);
            }
            let report = r.finish(SimTime(S), &[n as u64, 0], 0, engine());
            assert_eq!(report.max_abs_error_pct(), expected, "{programmed:?} {n}");
            let line = report
                .summary_table()
                .lines()
                .find(|l| l.starts_with("split:"))
                .expect("a split line")
                .to_owned();
            assert_eq!(
                line.contains("no error measured"),
                expected.is_none(),
                "{line}"
            );
        }
    }

    #[test]
    fn observed_pct_and_split_error_need_100_default_requests() {
        // (default-group requests to `a` in window 1, expected max_abs_error_pct)
        let cases = [
            (99, 10.0),  // window 1 (100% vs 50%) is below the threshold: only window 0 counts
            (100, 50.0), // exactly at the threshold it counts
        ];
        for (window1, expected) in cases {
            let mut r = recorder(&["a", "b"], SimDuration::from_secs(1), false);
            r.programmed(SimTime::ZERO, "", &split(&[("a", 50), ("b", 50)]));
            // window 0: 60 / 40 in the default group, plus 50 tagged requests to b
            for i in 0..150 {
                let t = SimTime(i * MS);
                match i {
                    0..60 => r.routed(t, 0, true),
                    60..100 => r.routed(t, 1, true),
                    _ => r.routed(t, 1, false),
                }
            }
            for i in 0..window1 {
                r.routed(SimTime(S + i * MS), 0, true);
            }
            let report = r.finish(SimTime(3 * S), &[60 + window1 as u64, 90], 0, engine());
            assert_eq!(report.observed_pct(0, 0), Some(60.0));
            assert_eq!(report.observed_pct(0, 1), Some(40.0));
            assert_eq!(report.cell(0, 1).routed, 90);
            assert_eq!(report.observed_pct(1, 0), Some(100.0));
            // no default-group request in window 2
            assert_eq!(report.observed_pct(2, 0), None);
            assert_eq!(report.max_abs_error_pct(), Some(expected), "{window1}");
            let dir = TestDir::new(&format!("observed-{window1}"));
            report.write(&dir.0).expect("write");
            let ts = dir.read(TIMESERIES_FILE);
            let rows: Vec<&str> = ts.lines().collect();
            assert_eq!(
                rows[1], "0,a,50.000,60,60.000,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0",
                "window 0 of a"
            );
            assert_eq!(
                rows[2],
                "0,b,50.000,90,40.000,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0"
            );
            assert_eq!(
                rows[5], "2,a,50.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0",
                "empty observed_pct"
            );
        }
    }

    #[test]
    fn gauges_keep_window_maxima_and_peaks() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        // (time ms, gauge, value)
        let changes = [
            (0, Gauge::ReadyPods, 1),
            (200, Gauge::ActivatorQueue, 2),
            (300, Gauge::ActivatorQueue, 0),
            (500, Gauge::QpQueue, 3),
            (700, Gauge::QpQueue, 1), // still 1 when window 1 opens
            (1500, Gauge::QpQueue, 0),
            (2200, Gauge::InFlight, 5),
        ];
        for (ms, gauge, value) in changes {
            r.gauge(SimTime(ms * MS), 0, gauge, value);
        }
        let report = r.finish(SimTime(3 * S), &[0], 0, engine());
        // [qp_queue, activator_queue, in_flight, ready_pods, desired_pods] per window
        let expected = [[3, 2, 0, 1, 0], [1, 0, 0, 1, 0], [0, 0, 5, 1, 0]];
        for (k, maxima) in expected.iter().enumerate() {
            assert_eq!(&report.cell(k, 0).gauge_max, maxima, "window {k}");
        }
        let a = &report.revisions()[0];
        assert_eq!((a.peak_qp_queue, a.peak_activator_queue), (3, 2));
    }

    #[test]
    fn latency_percentiles_match_a_known_set() {
        let mut r = recorder(&["a", "b"], SimDuration::from_secs(10), false);
        // a serves 1..=1000 ms; the failures do not count towards latency
        for i in 1..=1000 {
            r.finished(&rec(i as u64, 0, i * MS, Some(0), Outcome::Served));
        }
        r.finished(&rec(0, 0, 2000 * MS, Some(0), Outcome::ExpiredQp));
        // b serves 1..=100 µs, below 2048 µs, where the histogram is exact
        for i in 1..=100 {
            r.finished(&rec(
                0,
                2000 * MS,
                2000 * MS + i * 1000,
                Some(1),
                Outcome::Served,
            ));
        }
        let report = r.finish(SimTime(10 * S), &[0, 0], 0, engine());
        let a = report.revisions()[0].latency.expect("a served");
        // (name, reported ms, true ms): HDR at 3 significant digits is within 0.1%
        let quantiles = [
            ("p50", a.p50_ms, 500.0),
            ("p90", a.p90_ms, 900.0),
            ("p99", a.p99_ms, 990.0),
            ("p999", a.p999_ms, 999.0),
        ];
        for (name, got, want) in quantiles {
            assert!(
                (got - want).abs() <= want * 0.001,
                "{name}: {got} vs {want}"
            );
        }
        assert_eq!(a.mean_ms, 500.5, "the mean is exact");
        assert_eq!(a.max_ms, 1000.0, "the maximum is exact");
        let b = report.revisions()[1].latency.expect("b served");
        assert_eq!(
            (b.mean_ms, b.p50_ms, b.p90_ms, b.p99_ms, b.p999_ms, b.max_ms),
            (0.051, 0.05, 0.09, 0.099, 0.1, 0.1)
        );
        // the window histogram agrees with the run's
        let w = report.cell(0, 1);
        assert_eq!((w.p50_us, w.p99_us), (Some(50), Some(99)));
        let wa = report.cell(0, 0);
        let p99 = wa.p99_us.expect("served in window") as f64;
        assert!((p99 - 990_000.0).abs() <= 990.0, "{p99}");
        // all revisions pooled: 1,100 requests, the 1,089th smallest is a's 989 ms
        let all = report.latency().expect("served");
        assert!((all.p99_ms - 989.0).abs() <= 0.989, "{}", all.p99_ms);
        assert_eq!(
            all.mean_ms, 455.005,
            "(500,500,000 + 5,050) µs / 1,100, rounded"
        );
        assert_eq!(all.max_ms, 1000.0);
    }

    #[test]
    fn latency_is_null_without_served_requests() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.routed(SimTime::ZERO, 0, true);
        r.finished(&rec(0, 0, MS, Some(0), Outcome::RejectedQp));
        let report = r.finish(SimTime(S), &[0], 0, engine());
        assert_eq!(
            report.summary_json()["revisions"]["a"]["latency_ms"],
            json!(null)
        );
        assert_eq!(
            (report.cell(0, 0).p50_us, report.cell(0, 0).p99_us),
            (None, None)
        );
        assert_eq!(report.latency(), None);
    }

    #[test]
    fn rollout_keeps_first_start_and_last_finish() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.rollout_started(SimTime(S), "cfg");
        r.rollout_started(SimTime(2 * S), "cfg");
        r.rollout_started(SimTime(3 * S), "other");
        r.rollout_finished(SimTime(5 * S), "cfg");
        r.rollout_finished(SimTime(9_123_456_789), "cfg");
        let report = r.finish(SimTime(10 * S), &[0], 0, engine());
        assert_eq!(
            report.summary_json()["rollout"],
            json!({
                "cfg": {"started_s": 1.0, "finished_s": 9.123},
                "other": {"started_s": 3.0, "finished_s": null},
            })
        );
    }

    #[test]
    fn accounting_balances_arrivals_against_ends() {
        // (in flight per revision, unrouted in flight, expected accounting_ok)
        let cases = [
            (vec![1], 1, true),  // everything accounted for
            (vec![0], 1, false), // a request of `a` went missing (revision and top level)
            (vec![1], 0, false), // the unrouted one went missing (top level only)
            (vec![2], 0, false), // one too many in flight at `a`
        ];
        for (in_flight, unrouted, ok) in cases {
            let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
            for i in 0..5 {
                r.arrived(SimTime(i * MS));
            }
            for i in 0..3 {
                r.routed(SimTime(10 * MS + i), 0, true);
            }
            r.finished(&rec(0, 0, 20 * MS, Some(0), Outcome::Served));
            r.finished(&rec(1, 0, 21 * MS, Some(0), Outcome::RejectedQp));
            // no route for the host: counts at the top level only
            r.finished(&rec(4, 0, 22 * MS, None, Outcome::Error));
            let report = r.finish(SimTime(S), &in_flight, unrouted, engine());
            assert_eq!(report.accounting_ok(), ok, "{in_flight:?} {unrouted}");
            assert_eq!(report.totals().errors, 1);
            assert_eq!(report.revisions()[0].counts.errors, 0);
            assert_eq!(report.revisions()[0].counts.arrived, 3);
        }
    }

    #[test]
    fn late_calls_are_clamped_to_the_latest_time() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.routed(SimTime(2 * S), 0, true);
        r.routed(SimTime(S / 2), 0, true);
        let report = r.finish(SimTime(3 * S), &[2], 0, engine());
        assert_eq!(report.clamped_calls(), 1);
        assert_eq!(report.cell(0, 0).routed, 0);
        assert_eq!(report.cell(2, 0).routed, 2);
    }

    #[test]
    fn p99_shift_is_the_worst_window_p99_from_the_shift_start_to_the_settle() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.programmed(SimTime::ZERO, "", &split(&[("a", 100)]));
        // (arrival s, latency ms): 500 ms before the rollout, 40 ms during it, 900 ms more than
        // SHIFT_SETTLE after it finished
        for (i, (at_s, ms)) in [(0, 500), (3, 40), (70, 900)].into_iter().enumerate() {
            let at = at_s * S;
            r.arrived(SimTime(at));
            r.routed(SimTime(at), 0, true);
            r.finished(&rec(i as u64, at, at + ms * MS, Some(0), Outcome::Served));
            if at_s == 0 {
                r.rollout_started(SimTime(2 * S), "cfg");
            } else if at_s == 3 {
                r.rollout_finished(SimTime(5 * S), "cfg");
            }
        }
        let mut report = r.finish(SimTime(80 * S), &[0], 0, EngineStats::default());
        // windows 2 (the start) up to 65 s (5 s + 60 s): only the 40 ms window
        assert_eq!(report.shift_windows(None), Some(2..65));
        assert_eq!(report.p99_shift_ms(None), [Some(40.0)]);
        // a timeline event at 0 s starts the shift there: the 500 ms window counts
        assert_eq!(report.p99_shift_ms(Some(SimTime::ZERO)), [Some(500.0)]);
        report.set_first_event(Some(SimTime::ZERO));
        assert_eq!(
            report.summary_json()["revisions"]["a"]["p99_shift_ms"],
            500.0
        );
    }

    #[test]
    fn requests_without_a_revision_get_a_row_per_window() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        // a connection error at 0.5 s and a client cancellation at 1.5 s, both unrouted
        r.arrived(SimTime(500 * MS));
        r.finished(&rec(0, 500 * MS, 500 * MS, None, Outcome::Error));
        r.arrived(SimTime(1500 * MS));
        r.finished(&rec(
            1,
            1500 * MS,
            1500 * MS,
            None,
            Outcome::ClientCancelled,
        ));
        let report = r.finish(SimTime(2 * S), &[0], 0, EngineStats::default());
        assert!(report.has_unrouted());
        assert_eq!(
            (
                report.unrouted_cell(0).ended.errors,
                report.unrouted_cell(1).ended.client_cancelled
            ),
            (1, 1)
        );
        let dir = TestDir::new("unrouted");
        report.write(&dir.0).expect("write");
        let ts = dir.read(TIMESERIES_FILE);
        let rows: Vec<&str> = ts
            .lines()
            .skip(1)
            .filter(|l| l.contains(",,0.000,"))
            .collect();
        assert_eq!(
            rows,
            [
                "0,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,1",
                "1,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,1,0"
            ]
        );
    }

    #[test]
    fn worst_window_is_the_highest_p99_and_the_earliest_of_a_tie() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.programmed(SimTime::ZERO, "", &split(&[("a", 100)]));
        // (arrival ms, latency ms): window 0 has 10 ms, window 1 has 40 ms twice, window 2 has
        // 40 ms (a tie: window 1 is earlier), window 3 has 5 ms
        let requests = [(0, 10), (1000, 40), (1100, 40), (2000, 40), (3000, 5)];
        for (id, (at, latency)) in requests.into_iter().enumerate() {
            r.arrived(SimTime(at * MS));
            r.routed(SimTime(at * MS), 0, true);
            r.finished(&rec(
                id as u64,
                at * MS,
                (at + latency) * MS,
                Some(0),
                Outcome::Served,
            ));
        }
        let report = r.finish(SimTime(4 * S), &[0], 0, engine());
        let worst = report.worst_windows()[0].expect("served");
        assert_eq!(
            (worst.start, worst.end, worst.served),
            (SimTime(S), SimTime(2 * S), 2)
        );
        assert!(
            (39_000..=41_000).contains(&worst.p99_us),
            "40 ms within the histogram's precision: {}",
            worst.p99_us
        );
    }

    #[test]
    fn summary_json_has_the_contract_content_and_order() {
        let report = sample_run(false);
        assert!(report.accounting_ok());
        let expected = json!({
            "scenario": "demo",
            "seed": 7,
            "mode": "sim",
            "requests": {
                "arrived": 4, "served": 1, "rejected_qp": 0, "expired_activator": 1,
                "expired_qp": 0, "client_cancelled": 0, "app_error": 0, "bad_gateway": 0,
                "errors": 1, "ingress_overflow": 0, "in_flight_at_end": 1
            },
            // the one served request (a's), pooled with the requests that reached no revision
            "latency_ms": {
                "mean": 250.5, "p50": 250.5, "p90": 250.5, "p99": 250.5,
                "p999": 250.5, "max": 250.5
            },
            "revisions": {
                "a": {
                    "arrived": 1, "served": 1, "rejected_qp": 0, "expired_activator": 0,
                    "expired_qp": 0, "client_cancelled": 0, "app_error": 0, "bad_gateway": 0,
                    "errors": 0, "ingress_overflow": 0, "in_flight_at_end": 0,
                    "routed": 1,
                    "latency_ms": {
                        "mean": 250.5, "p50": 250.5, "p90": 250.5, "p99": 250.5,
                        "p999": 250.5, "max": 250.5
                    },
                    "peak_qp_queue": 1, "peak_activator_queue": 0,
                    "max_desired_pods": 1, "max_ready_pods": 1, "panic_seconds": 0.5,
                    "cold_starts": 0, "pod_crashes": 0, "pod_restarts": 0,
                    // 1 pod for the whole 2.5 s
                    "cost": {"pod_seconds": 2.5, "peak_pods": 1},
                    // one window, 1 s: its p99 is the one request's latency
                    "worst_window": {"p99_ms": 250.5, "start_s": 0.0, "end_s": 1.0, "served": 1},
                    // the shift starts with the rollout at 1 s: nothing served since
                    "p99_shift_ms": null
                },
                "b": {
                    "arrived": 2, "served": 0, "rejected_qp": 0, "expired_activator": 1,
                    "expired_qp": 0, "client_cancelled": 0, "app_error": 0, "bad_gateway": 0,
                    "errors": 0, "ingress_overflow": 0, "in_flight_at_end": 1,
                    "routed": 2, "latency_ms": null,
                    "peak_qp_queue": 0, "peak_activator_queue": 0,
                    "max_desired_pods": 2, "max_ready_pods": 0, "panic_seconds": 0.5,
                    "cold_starts": 1, "pod_crashes": 1, "pod_restarts": 1,
                    // 2 pods for 0.2 s, then 1 for 0.5 s
                    "cost": {"pod_seconds": 0.9, "peak_pods": 2},
                    // served nothing: no window has a p99
                    "worst_window": null,
                    "p99_shift_ms": null
                }
            },
            // both together: 3 pods at once from 1.8 s to 2 s
            "cost": {"pod_seconds": 3.4, "peak_total_pods": 3},
            // 4 requests: no window qualifies
            "split": {
                "max_abs_error_pct": null, "noise_at_max_pct": null,
                "windows_measured": 0, "windows_outside_band": 0
            },
            "rollout": {"cfg": {"started_s": 1.0, "finished_s": 2.0}},
            "engine": {"events": 42, "wall_s": 0.5, "sim_s": 10.0}
        });
        assert_eq!(report.summary_json(), expected);

        let dir = TestDir::new("summary-order");
        report.write(&dir.0).expect("write");
        let text = dir.read(SUMMARY_FILE);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("valid json"),
            expected
        );
        // Keys appear in the documented order, revisions in index order.
        let keys = [
            "\"scenario\"",
            "\"seed\"",
            "\"mode\"",
            "\"requests\"",
            "\"latency_ms\"",
            "\"p999\"",
            "\"revisions\"",
            "\"a\"",
            "\"routed\"",
            "\"latency_ms\"",
            "\"p999\"",
            "\"peak_qp_queue\"",
            "\"peak_activator_queue\"",
            "\"max_desired_pods\"",
            "\"max_ready_pods\"",
            "\"panic_seconds\"",
            "\"cold_starts\"",
            "\"pod_crashes\"",
            "\"pod_restarts\"",
            "\"cost\"",
            "\"peak_pods\"",
            "\"worst_window\"",
            "\"b\"",
            "\"peak_total_pods\"",
            "\"split\"",
            "\"rollout\"",
            "\"engine\"",
            "\"wall_s\"",
        ];
        // Each key after the one before it (keys such as "latency_ms" occur more than once).
        let mut at = 0;
        for k in keys {
            let found = text[at..]
                .find(k)
                .unwrap_or_else(|| panic!("{k} missing after byte {at}: {text}"));
            at += found + k.len();
        }
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn files_have_exact_headers_and_rows() {
        let report = sample_run(true);
        let dir = TestDir::new("headers");
        report.write(&dir.0).expect("write");
        assert_eq!(
            dir.entries(),
            [
                "autoscaler.csv",
                "requests.csv",
                "routes.csv",
                "summary.json",
                "timeseries.csv"
            ]
        );
        assert_eq!(
            dir.read(TIMESERIES_FILE),
            "t_s,revision,programmed_pct,routed,observed_pct,served,rejected_qp,expired,\
             qp_queue,activator_queue,in_flight,ready_pods,p50_ms,p99_ms,desired_pods,app_error,\
             bad_gateway,ingress_overflow,expired_activator,expired_qp,client_cancelled,errors\n\
             0,a,100.000,1,100.000,1,0,0,1,0,0,1,250.500,250.500,1,0,0,0,0,0,0,0\n\
             0,b,0.000,0,0.000,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0\n\
             0,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,1\n\
             1,a,99.000,0,0.000,0,0,0,1,0,0,1,,,1,0,0,0,0,0,0,0\n\
             1,b,1.000,2,100.000,0,0,1,0,0,0,0,,,2,0,0,0,1,0,0,0\n\
             1,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0\n\
             2,a,99.000,0,,0,0,0,1,0,0,1,,,1,0,0,0,0,0,0,0\n\
             2,b,1.000,0,,0,0,0,0,0,0,0,,,2,0,0,0,0,0,0,0\n\
             2,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0\n"
        );
        assert_eq!(
            dir.read(AUTOSCALER_FILE),
            "t_s,revision,stable_concurrency,panic_concurrency,desired_pods,ready_pods,panic,\
             excess_burst_capacity,mode\n\
             0,a,0.000,0.000,1,1,false,-201.000,proxy\n\
             0,b,0.000,0.000,0,0,false,-211.000,proxy\n\
             2,a,0.250,0.500,-1,1,true,-201.500,proxy\n\
             2,b,0.333,1.000,2,0,true,0.123,serve\n"
        );
        assert_eq!(
            dir.read(ROUTES_FILE),
            "t_s,tag,revision,percent\n0,,a,100\n0,,b,0\n1,,a,99\n1,,b,1\n1,cand,b,100\n"
        );
        assert_eq!(
            dir.read(REQUESTS_FILE),
            "id,arrived_s,finished_s,revision,default_group,via_activator,outcome,status,latency_ms\n\
             1,0.2,0.3,,true,false,errors,502,100.000\n\
             0,0.1,0.3505,a,true,false,served,200,250.500\n\
             2,1.5,1.8,b,false,true,expired_activator,504,300.000\n"
        );
        let spool = report.requests.as_ref().expect("kept").path().to_path_buf();
        assert!(spool.exists());
        drop(report);
        assert!(!spool.exists(), "the spool is removed with the report");
    }

    #[test]
    fn requests_csv_only_when_kept() {
        let dir = TestDir::new("keep");
        sample_run(true).write(&dir.0).expect("write kept");
        assert!(dir.0.join(REQUESTS_FILE).exists());
        // A later run without the log into the same directory removes the stale one.
        sample_run(false).write(&dir.0).expect("write not kept");
        assert_eq!(
            dir.entries(),
            [
                "autoscaler.csv",
                "routes.csv",
                "summary.json",
                "timeseries.csv"
            ]
        );
    }

    #[test]
    fn identical_inputs_give_identical_bytes() {
        let (one, two) = (TestDir::new("same-1"), TestDir::new("same-2"));
        sample_run(true).write(&one.0).expect("write one");
        sample_run(true).write(&two.0).expect("write two");
        for file in [
            SUMMARY_FILE,
            TIMESERIES_FILE,
            ROUTES_FILE,
            AUTOSCALER_FILE,
            REQUESTS_FILE,
        ] {
            assert_eq!(one.read(file), two.read(file), "{file}");
        }
    }

    #[test]
    fn a_failing_write_leaves_no_partial_file() {
        // The output "directory" is a file: nothing is created, the file is untouched.
        let dir = TestDir::new("dir-is-file");
        std::fs::write(&dir.0, b"not a directory").expect("setup");
        let err = sample_run(true).write(&dir.0).expect_err("dir is a file");
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("cannot create output directory "));
        assert_eq!(
            std::fs::read(&dir.0).expect("still a file"),
            b"not a directory"
        );
        std::fs::remove_file(&dir.0).expect("cleanup");

        // The target name is taken by a directory: the rename fails, the temp file is removed,
        // and the files written before it are complete.
        let dir = TestDir::new("target-is-dir");
        std::fs::create_dir_all(dir.0.join(TIMESERIES_FILE)).expect("setup");
        let err = sample_run(true)
            .write(&dir.0)
            .expect_err("target is a directory");
        assert!(matches!(err, WriteError::File { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot write "), "{err}");
        assert_eq!(dir.entries(), ["summary.json", "timeseries.csv"]);
        assert!(dir.0.join(TIMESERIES_FILE).is_dir());
        serde_json::from_str::<serde_json::Value>(&dir.read(SUMMARY_FILE))
            .expect("summary.json is complete");
    }

    #[test]
    fn a_broken_request_log_is_dropped_and_the_rest_written() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), true);
        let spool = r.spool.as_mut().expect("kept");
        let spool_path = spool.path().to_path_buf();
        assert!(spool_path.exists());
        spool.append(|_| Err(io::Error::other("disk full")));
        assert!(
            !spool_path.exists(),
            "an unusable spool gives its space back at once"
        );
        r.finished(&rec(0, 0, MS, Some(0), Outcome::Served));
        let report = r.finish(SimTime(S), &[0], 0, engine());
        let dir = TestDir::new("broken-spool");
        std::fs::create_dir_all(&dir.0).expect("mkdir");
        std::fs::write(dir.0.join(REQUESTS_FILE), "an earlier run's log").expect("stale");
        report.write(&dir.0).expect("the other files are written");
        let err = report.request_log_error().expect("reported");
        assert!(matches!(err, WriteError::Spool { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "request log spool {} failed during the run (disk full): requests.csv is not \
                 written",
                spool_path.display()
            )
        );
        assert!(dir.0.join(SUMMARY_FILE).exists());
        assert!(
            !dir.0.join(REQUESTS_FILE).exists(),
            "no earlier run's log beside this run's summary"
        );
    }

    #[test]
    fn the_table_names_every_revision() {
        let table = sample_run(false).summary_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("scenario demo  seed 7  mode sim"));
        assert!(lines[1].starts_with("requests: arrived 4  served 1"));
        assert!(lines[2].starts_with("revision") && lines[2].ends_with(" peak_act max_pods"));
        assert!(lines[3].starts_with("a ") && lines[3].contains("250.500"));
        // the last column is the largest desired pod count
        assert!(
            lines[3].ends_with(" 1") && lines[4].ends_with(" 2"),
            "{table}"
        );
        assert!(lines[4].starts_with("b "));
        assert!(table.contains("rollout cfg: started 1.000 s, finished 2.000 s"));
        assert!(table.ends_with("accounting: ok\n"));
    }

    #[test]
    fn autoscaler_csv_has_one_row_per_tick_in_call_order() {
        // (time ns, revision, tick, expected row)
        let cases = [
            // nothing decided yet: desired -1, the activator in the path
            (
                0,
                0,
                tick(0.0, 0.0, -1, 0, false, -211.0, "proxy"),
                "0,a,0.000,0.000,-1,0,false,-211.000,proxy",
            ),
            // other revision at the same instant; a name with a comma is quoted
            (
                0,
                1,
                tick(12.3456, 30.0004, 3, 2, true, -0.0001, "proxy"),
                "0,\"b,c\",12.346,30.000,3,2,true,0.000,proxy",
            ),
            // t with every decimal of a nanosecond, no trailing zeros
            (
                2 * S + 1,
                0,
                tick(0.5, 1.25, 1, 1, false, 7.5, "serve"),
                "2.000000001,a,0.500,1.250,1,1,false,7.500,serve",
            ),
            // t of a whole number of milliseconds
            (
                4 * S + 500 * MS,
                1,
                tick(1e6, 2e6, 100_000, 99_999, true, -1e6, "serve"),
                "4.5,\"b,c\",1000000.000,2000000.000,100000,99999,true,-1000000.000,serve",
            ),
        ];
        let mut r = recorder(&["a", "b,c"], SimDuration::from_secs(1), false);
        for (t, revision, tick, _) in &cases {
            r.autoscaler_tick(SimTime(*t), *revision, tick);
        }
        let report = r.finish(SimTime(5 * S), &[0, 0], 0, engine());
        let dir = TestDir::new("autoscaler-rows");
        report.write(&dir.0).expect("write");
        let text = dir.read(AUTOSCALER_FILE);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], AUTOSCALER_HEADER);
        assert_eq!(rows.len(), cases.len() + 1);
        for (i, (_, _, _, row)) in cases.iter().enumerate() {
            assert_eq!(rows[i + 1], *row, "row {i}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn autoscaler_csv_is_the_header_alone_without_ticks() {
        let mut r = recorder(&["a"], SimDuration::from_secs(1), false);
        r.routed(SimTime::ZERO, 0, true);
        let report = r.finish(SimTime(S), &[1], 0, engine());
        let dir = TestDir::new("autoscaler-empty");
        report.write(&dir.0).expect("write");
        assert_eq!(
            dir.read(AUTOSCALER_FILE),
            "t_s,revision,stable_concurrency,panic_concurrency,desired_pods,ready_pods,panic,\
             excess_burst_capacity,mode\n"
        );
        let a = &report.revisions()[0];
        assert_eq!(
            (
                a.max_desired_pods,
                a.max_ready_pods,
                a.panic_seconds,
                a.cold_starts
            ),
            (0, 0, 0.0, 0)
        );
    }

    #[test]
    fn desired_pods_column_keeps_window_maxima() {
        let mut r = recorder(&["a", "b"], SimDuration::from_secs(1), false);
        // (time ms, revision, desired pods)
        let changes = [
            (0, 0, 1),    // a wants 1 from the start
            (400, 0, 5),  // a panics up to 5 within window 0
            (900, 0, 3),  // and settles on 3, which it holds into window 1
            (1000, 1, 2), // b on the boundary: window 1
            (2100, 0, 8), // a's peak
            (2200, 0, 0), // a scaled to zero; still 8 for window 2
            (3999, 1, 4), // b rises in the last millisecond of window 3
        ];
        for (ms, revision, value) in changes {
            r.gauge(SimTime(ms * MS), revision, Gauge::DesiredPods, value);
        }
        let report = r.finish(SimTime(5 * S), &[0, 0], 0, engine());
        // (window, a's maximum, b's maximum)
        let expected = [
            (0, 5, 0), // 1, 5, 3
            (1, 3, 2), // 3 carried over; b's change on the boundary
            (2, 8, 2), // 3 → 8 → 0
            (3, 0, 4), // 0 carried over; b rises at 3.999 s
            (4, 0, 4), // nothing changes: the held values
        ];
        let dir = TestDir::new("desired-pods");
        report.write(&dir.0).expect("write");
        let ts = dir.read(TIMESERIES_FILE);
        let rows: Vec<&str> = ts.lines().skip(1).collect();
        assert_eq!(rows.len(), 10);
        for (k, a, b) in expected {
            assert_eq!(report.cell(k, 0).gauge_max[4], a, "window {k} of a");
            assert_eq!(report.cell(k, 1).gauge_max[4], b, "window {k} of b");
            for (r, want) in [(0, a), (1, b)] {
                let row = rows[k * 2 + r];
                // desired_pods, then seven outcome columns added later
                assert_eq!(
                    row.rsplit(',').nth(7),
                    Some(want.to_string().as_str()),
                    "{row}"
                );
            }
        }
        let json = report.summary_json();
        assert_eq!(json["revisions"]["a"]["max_desired_pods"], json!(8));
        assert_eq!(json["revisions"]["b"]["max_desired_pods"], json!(4));
        // the other gauges are untouched
        assert_eq!(json["revisions"]["a"]["max_ready_pods"], json!(0));
    }

    #[test]
    fn panic_seconds_count_from_panicking_ticks_to_the_next_or_the_end() {
        // (ticks as (time ms, panic), end ms, expected panic_seconds)
        // (time ms, panic) of each of a's ticks
        type Ticks = &'static [(i64, bool)];
        let cases: [(Ticks, i64, f64); 8] = [
            // never ticked
            (&[], 10_000, 0.0),
            // ticked, never panicked
            (&[(0, false), (2000, false), (4000, false)], 10_000, 0.0),
            // one panicking tick between calm ones: until the next tick
            (&[(0, false), (2000, true), (4000, false)], 10_000, 2.0),
            // panic stays on: consecutive spans add up
            (&[(2000, true), (4000, true), (6000, false)], 10_000, 4.0),
            // panic toggles on, off, on
            (
                &[(0, true), (2000, false), (4000, true), (6000, false)],
                10_000,
                4.0,
            ),
            // the last tick panics: it counts up to the end of the run
            (&[(0, false), (2000, true), (4000, true)], 9_500, 7.5),
            // a panicking tick exactly at the end adds nothing
            (&[(0, false), (10_000, true)], 10_000, 0.0),
            // irregular spacing; the run ends on a panicking tick
            (&[(1500, true), (2250, false), (3000, true)], 3_000, 0.75),
        ];
        for (ticks, end_ms, want) in cases {
            let mut r = recorder(&["a", "b"], SimDuration::from_secs(1), false);
            for &(ms, panic) in ticks {
                r.autoscaler_tick(
                    SimTime(ms * MS),
                    0,
                    &tick(1.0, 2.0, 1, 1, panic, 0.0, "serve"),
                );
                // b ticks in between, always panicking: its span must not leak into a's
                r.autoscaler_tick(
                    SimTime(ms * MS),
                    1,
                    &tick(1.0, 2.0, 1, 1, true, 0.0, "serve"),
                );
            }
            let report = r.finish(SimTime(end_ms * MS), &[0, 0], 0, engine());
            let a = &report.revisions()[0];
            assert!(
                (a.panic_seconds - want).abs() < 1e-9,
                "{ticks:?} end {end_ms}: {}",
                a.panic_seconds
            );
            assert_eq!(
                report.summary_json()["revisions"]["a"]["panic_seconds"],
                json!(want),
                "{ticks:?}"
            );
            // b panicked from its first tick to the end
            let b_want = ticks
                .first()
                .map_or(0.0, |&(ms, _)| (end_ms - ms) as f64 / 1000.0);
            let b = &report.revisions()[1];
            assert!(
                (b.panic_seconds - b_want).abs() < 1e-9,
                "{ticks:?}: b {}",
                b.panic_seconds
            );
        }
    }

    #[test]
    fn max_ready_pods_and_cold_starts_per_revision() {
        let mut r = recorder(&["a", "b", "c"], SimDuration::from_secs(1), false);
        // (time ms, revision, ready pods); a cold start precedes each rise from zero
        let ready = [
            (0, 0, 3),    // a starts with pods: not a cold start here
            (100, 1, 1),  // b's first pod
            (500, 1, 4),  // b grows
            (1200, 1, 0), // b scales to zero
            (1300, 0, 7), // a's peak
            (1400, 0, 2), // a shrinks
            (3000, 1, 2), // b again from zero
        ];
        for (ms, revision, value) in ready {
            if revision == 1 && (ms == 100 || ms == 3000) {
                r.cold_start(SimTime(ms * MS), 1);
            }
            r.gauge(SimTime(ms * MS), revision, Gauge::ReadyPods, value);
        }
        let report = r.finish(SimTime(4 * S), &[0, 0, 0], 0, engine());
        // (revision, max_ready_pods, cold_starts)
        let expected = [("a", 7, 0), ("b", 4, 2), ("c", 0, 0)];
        let json = report.summary_json();
        for (i, (name, max_ready, cold)) in expected.into_iter().enumerate() {
            let rev = &report.revisions()[i];
            assert_eq!(
                (rev.name.as_str(), rev.max_ready_pods, rev.cold_starts),
                (name, max_ready, cold)
            );
            assert_eq!(json["revisions"][name]["max_ready_pods"], json!(max_ready));
            assert_eq!(json["revisions"][name]["cold_starts"], json!(cold));
        }
        // ready_pods in timeseries.csv: b's window maxima 4, 4, 0, 2
        let b_ready: Vec<u64> = (0..4).map(|k| report.cell(k, 1).gauge_max[3]).collect();
        assert_eq!(b_ready, [4, 4, 0, 2]);
    }
}
