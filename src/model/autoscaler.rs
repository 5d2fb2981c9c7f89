//! The KPA autoscaler: metric windows, the decider, the scaler's bounds and scale-to-zero, the
//! SKS mode and the activator count (datapath.md A.4, A.5.1–A.5.6, constants table (b)).
//!
//! Owns, each a faithful port of the serving file it cites:
//! - [`MetricWindow`]: the 1-second bucket ring of `pkg/autoscaler/aggregation/bucketing.go`,
//!   linear (default) or weighted-exponential averaging.
//! - [`Decider`]: `Scale(now)` of `pkg/autoscaler/scaling/autoscaler.go:149-313` plus the
//!   multiscaler's state around it (`pkg/autoscaler/scaling/multiscaler.go`: latest desired
//!   scale and EBC, `Poke`, the initial EBC) and the collector's `ErrNoData` rule
//!   (`pkg/autoscaler/metrics/collector.go`).
//! - [`ScaleToZero`]: the KPA reconciler's scaling half, `scaler.scale` and `handleScaleToZero`
//!   (`pkg/reconciler/autoscaling/kpa/scaler.go`), the SKS mode and the PA's Active condition
//!   (`kpa.go`).
//! - Free functions: [`apply_bounds`], [`excess_burst_capacity`], [`sks_mode`],
//!   [`num_activators`], [`assign_slice`].
//!
//! Must not: read clocks, schedule events, draw random numbers or print. Time is always the
//! `now` argument; the caller (the simulator) decides when ticks (every [`TICK_INTERVAL`]),
//! pokes and reconciles happen, and carries out the returned decisions.
//!
//! Invariants:
//! - Memory is bounded by the configured windows: a [`MetricWindow`] holds `ceil(window / 1 s)`
//!   floats, the scale-down-delay window at most `ceil(delay / 2 s)` entries.
//! - No input panics: non-finite metric values are ignored at `record`, out-of-range counts
//!   saturate, degenerate configurations (zero windows, zero rates) are clamped where upstream
//!   would divide by zero or index out of range (each place says so).
//! - A desired scale of `-1` means "no decision" (upstream's `invalidSR` / `scaleUnknown`).

use std::collections::VecDeque;

use crate::model::time::{SimDuration, SimTime, NANOS_PER_SEC};

/// Bucket granularity of every metric window (`pkg/autoscaler/config/config.go:37`,
/// `BucketSize = 1 s`).
pub const BUCKET_SIZE: SimDuration = SimDuration::from_secs(1);

/// The decider runs `Scale` this often (`multiscaler.go:36`, `tickInterval = 2 s`); it is also
/// the granularity of the scale-down-delay window (`autoscaler.go` `New`).
pub const TICK_INTERVAL: SimDuration = SimDuration::from_secs(2);

/// `minActivators` (`pkg/reconciler/autoscaling/kpa/kpa.go:53`).
pub const MIN_ACTIVATORS: u32 = 2;

/// The floor on the target value (`pkg/apis/autoscaling/register.go:87`, `TargetMin`).
pub const TARGET_MIN: f64 = 0.01;

/// Target utilization for metrics other than concurrency: not configurable upstream, only the
/// `target-utilization-percentage` annotation changes it (`pkg/autoscaler/config/config.go`,
/// `TargetUtilization`).
pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.7;

/// `activationTimeoutBuffer` added to the progress deadline (`scaler.go:69`).
pub const ACTIVATION_TIMEOUT_BUFFER: SimDuration = SimDuration::from_secs(30);

/// The async activator probe's period (`scaler.go:52-55`, `probePeriod`); a PA whose activator
/// is not yet confirmed is reconciled again this often.
pub const ACTIVATOR_PROBE_PERIOD: SimDuration = SimDuration::from_secs(1);

/// Re-enqueue delay when the PA can deactivate and the SKS is already in Proxy
/// (`handleScaleToZero`, "Long enough to ensure current iteration is finished").
pub const PROXY_REQUEUE: SimDuration = SimDuration::from_secs(3);

// bucketing.go constants: the weighted average's minimal decay, the weight sum it aims for, and
// the linear average's rounding (6 decimals, `roundToNDigits`, bucketing.go:130-141).
const MIN_EXPONENT: f64 = 0.2;
const WEIGHT_PRECISION: f64 = 0.9999;
const PRECISION_SCALE: f64 = 1e6;

/// Which metric the decider scales on (annotation `autoscaling.knative.dev/metric`,
/// `register.go:65-73`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScalingMetric {
    #[default]
    Concurrency,
    Rps,
}

/// How a window averages its buckets (annotation
/// `autoscaling.knative.dev/metric-aggregation-algorithm`, `register.go:110-124`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aggregation {
    #[default]
    Linear,
    WeightedExponential,
}

/// The SKS operation mode: whether the activator is in the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Requests go through the activator.
    Proxy,
    /// Requests go straight to the pods.
    Serve,
}

/// The PodAutoscaler's `Active` condition (`pa_lifecycle.go`): Unknown = activating,
/// True = active, False = inactive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveStatus {
    Activating,
    Active,
    Inactive,
}

/// config-autoscaler (`config/core/configmaps/autoscaler.yaml`; code defaults
/// `pkg/autoscaler/config/config.go:42-68`) as it applies to one revision: cluster values with
/// the revision's annotations already merged in (annotation-only knobs are the `Option` fields).
#[derive(Clone, Debug, PartialEq)]
pub struct AutoscalerConfig {
    /// Annotation `metric`: concurrency (default) or rps.
    pub metric: ScalingMetric,
    /// Annotation `metric-aggregation-algorithm`: linear (default) or weighted-exponential.
    pub aggregation: Aggregation,
    /// `container-concurrency-target-percentage` (yaml line 58): 70.
    pub container_concurrency_target_percentage: f64,
    /// Annotation `target-utilization-percentage`: overrides the utilization for every metric.
    pub target_utilization_percentage: Option<f64>,
    /// `container-concurrency-target-default` (line 77): the total when cc = 0. 100.
    pub container_concurrency_target_default: f64,
    /// `requests-per-second-target-default` (line 86): 200.
    pub rps_target_default: f64,
    /// Annotation `autoscaling.knative.dev/target`: overrides the total (capped at cc > 0).
    pub target: Option<f64>,
    /// `target-burst-capacity` (line 100): 211; -1 = activator always in the path, 0 = only at
    /// zero pods.
    pub target_burst_capacity: f64,
    /// `stable-window` (line 105): 60 s.
    pub stable_window: SimDuration,
    /// `panic-window-percentage` (line 115): 10, i.e. a 6 s panic window.
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage` (line 119): 200.
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate` (line 128): 1000.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (line 137): 2.
    pub max_scale_down_rate: f64,
    /// `enable-scale-to-zero` (line 140): true.
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period` (line 154): 30 s.
    pub scale_to_zero_grace_period: SimDuration,
    /// `scale-to-zero-pod-retention-period` (line 164): 0 s.
    pub scale_to_zero_pod_retention_period: SimDuration,
    /// `activator-capacity` (line 177): 100.
    pub activator_capacity: f64,
    /// `initial-scale` (line 183): 1.
    pub initial_scale: u32,
    /// `allow-zero-initial-scale` (line 187): false.
    pub allow_zero_initial_scale: bool,
    /// `min-scale` (line 191): 0.
    pub min_scale: u32,
    /// `max-scale` (line 196): 0 = unbounded.
    pub max_scale: u32,
    /// `scale-down-delay` (line 203): 0 s.
    pub scale_down_delay: SimDuration,
    /// Annotation `activation-scale` (`register.go:219-223`): unset; >= 2 when set.
    pub activation_scale: Option<u32>,
    /// config-deployment `progress-deadline` (`pkg/deployment/config.go:48`): 600 s. With
    /// [`ACTIVATION_TIMEOUT_BUFFER`] it bounds how long a PA may stay activating.
    pub progress_deadline: SimDuration,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        AutoscalerConfig {
            metric: ScalingMetric::Concurrency,
            aggregation: Aggregation::Linear,
            container_concurrency_target_percentage: 70.0,
            target_utilization_percentage: None,
            container_concurrency_target_default: 100.0,
            rps_target_default: 200.0,
            target: None,
            target_burst_capacity: 211.0,
            stable_window: SimDuration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            enable_scale_to_zero: true,
            scale_to_zero_grace_period: SimDuration::from_secs(30),
            scale_to_zero_pod_retention_period: SimDuration::ZERO,
            activator_capacity: 100.0,
            initial_scale: 1,
            allow_zero_initial_scale: false,
            min_scale: 0,
            max_scale: 0,
            scale_down_delay: SimDuration::ZERO,
            activation_scale: None,
            progress_deadline: SimDuration::from_secs(600),
        }
    }
}

/// What the decider aims for per pod (`TargetValue`) and what one pod can take (`TotalValue`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricTargets {
    pub target_value: f64,
    pub total_value: f64,
}

impl AutoscalerConfig {
    /// `ResolveMetricTarget` (`pkg/reconciler/autoscaling/resources/target.go:31-64`):
    /// concurrency: total = cc, or `container-concurrency-target-default` when cc = 0; rps:
    /// total = `requests-per-second-target-default`. The `target` annotation replaces the total,
    /// capped at cc when the metric is concurrency and cc > 0. Target = max(0.01, total × tu).
    pub fn metric_targets(&self, container_concurrency: u32) -> MetricTargets {
        let (mut total, mut tu) = match self.metric {
            ScalingMetric::Rps => (self.rps_target_default, DEFAULT_TARGET_UTILIZATION),
            ScalingMetric::Concurrency => (
                if container_concurrency == 0 {
                    self.container_concurrency_target_default
                } else {
                    f64::from(container_concurrency)
                },
                self.container_concurrency_target_percentage / 100.0,
            ),
        };
        if let Some(annotation) = self.target {
            total = annotation;
            if self.metric == ScalingMetric::Concurrency && container_concurrency != 0 {
                // Never aim above what containerConcurrency lets one pod take.
                total = annotation.min(f64::from(container_concurrency));
            }
        }
        if let Some(pct) = self.target_utilization_percentage {
            tu = pct / 100.0;
        }
        MetricTargets {
            target_value: TARGET_MIN.max(total * tu),
            total_value: total,
        }
    }

    /// The panic window: `stable × pct / 100` rounded to whole seconds, at least one bucket
    /// (`pkg/reconciler/autoscaling/resources/metric.go:41-52`). 60 s × 10 % = 6 s.
    pub fn panic_window(&self) -> SimDuration {
        let ns = self.stable_window.as_nanos() as f64 * self.panic_window_percentage / 100.0;
        // Go: time.Duration(float) truncates, then Duration.Round(time.Second) rounds halves
        // away from zero.
        let ns = if ns.is_finite() { ns as i64 } else { 0 };
        let rounded = round_half_away(ns, NANOS_PER_SEC);
        SimDuration(rounded.max(BUCKET_SIZE.as_nanos()))
    }

    /// `panicThreshold = pct / 100` (`pkg/reconciler/autoscaling/kpa/resources/decider.go`,
    /// `MakeDecider`): enter panic when `dppc / ready >= 2`.
    pub fn panic_threshold(&self) -> f64 {
        self.panic_threshold_percentage / 100.0
    }

    /// `GetInitialScale` (`kpa/resources/decider.go`): an initial scale of 0 counts only when
    /// zero initial scale is allowed; otherwise the cluster default (1) applies.
    pub fn effective_initial_scale(&self) -> u32 {
        if self.initial_scale == 0 && !self.allow_zero_initial_scale {
            1
        } else {
            self.initial_scale
        }
    }

    /// How long a PA may stay activating before it is scaled back to zero
    /// (`scaler.go:195-213`: progress deadline + 30 s).
    pub fn activation_timeout(&self) -> SimDuration {
        self.progress_deadline + ACTIVATION_TIMEOUT_BUFFER
    }
}

/// Go's `Duration.Round(m)`: to the nearest multiple of `m`, halves away from zero.
fn round_half_away(ns: i64, m: i64) -> i64 {
    let r = ns % m;
    let down = ns - r;
    if r.abs().saturating_mul(2) >= m {
        if ns >= 0 {
            down.saturating_add(m)
        } else {
            down.saturating_sub(m)
        }
    } else {
        down
    }
}

/// The whole second a time falls in: `Truncate(BucketSize)` and `timeToIndex` in one.
fn bucket_second(t: SimTime) -> i64 {
    t.as_nanos().div_euclid(NANOS_PER_SEC)
}

/// `computeSmoothingCoeff` (bucketing.go): `α = max(1 − (1 − 0.9999)^(1/nb), 0.2)`, so that the
/// window's weights sum to at least 0.9999 but long windows do not decay into a plain average.
/// 60 buckets → 0.2; 6 buckets → ≈ 0.785.
pub fn smoothing_coefficient(num_buckets: usize) -> f64 {
    let nb = num_buckets.max(1) as f64;
    (1.0 - (1.0 - WEIGHT_PRECISION).powf(1.0 / nb)).max(MIN_EXPONENT)
}

/// A ring of 1-second buckets covering one window (`TimedFloat64Buckets` /
/// `WeightedFloat64Buckets`, `pkg/autoscaler/aggregation/bucketing.go`).
///
/// A bucket is a sum: every value recorded in the same second adds to it (the scraper's total
/// and each activator's report land in the same bucket, datapath.md A.5.2).
#[derive(Clone, Debug)]
pub struct MetricWindow {
    buckets: Vec<f64>,
    window: SimDuration,
    aggregation: Aggregation,
    smoothing: f64,
    /// The second of the first write since the last full window of silence.
    first_write_s: i64,
    /// The second of the newest write; `None` before any write (Go's zero `time.Time`, which
    /// lies far more than a window in the past).
    last_write_s: Option<i64>,
    /// Sum of all buckets, including stale ones not yet cleared (upstream `windowTotal`).
    window_total: f64,
}

impl MetricWindow {
    /// `NewTimedFloat64Buckets` / `NewWeightedFloat64Buckets`: `ceil(window / 1 s)` buckets
    /// (at least one, where upstream would make an empty ring and divide by zero).
    pub fn new(window: SimDuration, aggregation: Aggregation) -> Self {
        let window_ns = window.as_nanos().max(0);
        let nb = (window_ns.saturating_add(NANOS_PER_SEC - 1) / NANOS_PER_SEC).max(1) as usize;
        MetricWindow {
            buckets: vec![0.0; nb],
            window: SimDuration(window_ns),
            aggregation,
            smoothing: smoothing_coefficient(nb),
            first_write_s: 0,
            last_write_s: None,
            window_total: 0.0,
        }
    }

    pub fn window(&self) -> SimDuration {
        self.window
    }

    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The weighted average's decay `α` (unused by the linear average).
    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    fn slot(&self, second: i64) -> usize {
        second.rem_euclid(self.buckets.len() as i64) as usize
    }

    /// Seconds between two bucket times as a span, saturating.
    fn span(from_s: i64, to_s: i64) -> SimDuration {
        SimDuration(to_s.saturating_sub(from_s).saturating_mul(NANOS_PER_SEC))
    }

    /// `Record` (bucketing.go): adds `value` to the bucket of `now`. A write after a gap zeroes
    /// the skipped buckets; a write after a full window of silence resets the ring and the
    /// first-write time (so the next averages are over a partial window again); a write more
    /// than a window older than the newest write is ignored. Non-finite values are ignored.
    pub fn record(&mut self, now: SimTime, value: f64) {
        if !value.is_finite() {
            return;
        }
        let t = bucket_second(now);
        if self.last_write_s != Some(t) {
            match self.last_write_s {
                None => self.reset(t),
                Some(last) => {
                    // "Ignore this value because it happened a window size ago."
                    if Self::span(t, last) >= self.window {
                        return;
                    }
                    if self.first_write_s > t {
                        self.first_write_s = t;
                    }
                    if t > last {
                        if Self::span(last, t) >= self.window {
                            self.reset(t);
                        } else {
                            // Clear every bucket between the last write and this one.
                            for s in last.saturating_add(1)..=t {
                                let i = self.slot(s);
                                self.window_total -= self.buckets[i];
                                self.buckets[i] = 0.0;
                            }
                            self.last_write_s = Some(t);
                        }
                    }
                    // Otherwise last − window < t < last: add to that bucket.
                }
            }
        }
        let i = self.slot(t);
        self.buckets[i] += value;
        self.window_total += value;
    }

    /// A first write, or one after a full window without writes: everything starts over.
    fn reset(&mut self, t: i64) {
        self.buckets.iter_mut().for_each(|b| *b = 0.0);
        self.window_total = 0.0;
        self.first_write_s = t;
        self.last_write_s = Some(t);
    }

    /// `IsEmpty` (bucketing.go): nothing recorded within the window before `now`
    /// (`now − lastWrite > window`, `now` truncated to the second), or never.
    pub fn is_empty(&self, now: SimTime) -> bool {
        match self.last_write_s {
            None => true,
            Some(last) => Self::span(last, bucket_second(now)) > self.window,
        }
    }

    /// `WindowAverage` (bucketing.go), `None` when [`is_empty`](Self::is_empty) (upstream
    /// returns 0 there; the collector turns an empty stable window into `ErrNoData`).
    ///
    /// Linear (`:201-231`): the current window total divided by the number of valid buckets.
    /// Buckets before the first write do not count (scale-from-zero reacts at once); when the
    /// last write is d seconds old the d newest buckets are left out, and gaps between writes
    /// count as zeros. Exactly a window after the last write the average is 0. The result is
    /// rounded to 6 decimals as upstream's `roundToNDigits` (`math.Round` since knative-v1.19,
    /// #15940; `math.Floor` before).
    ///
    /// Weighted exponential (`:105-183`): newest bucket weighted `α`, each older one `(1 − α)`
    /// times less; seconds without writes since the last write count as zeros.
    pub fn window_average(&self, now: SimTime) -> Option<f64> {
        if self.is_empty(now) {
            return None;
        }
        let last = self.last_write_s?;
        let t = bucket_second(now);
        let len = self.buckets.len() as i64;
        Some(match self.aggregation {
            Aggregation::Linear => {
                let valid = last.saturating_sub(self.first_write_s).saturating_add(1);
                let d = t.saturating_sub(last);
                if d <= 0 {
                    round_6(self.window_total / valid.min(len) as f64)
                } else if Self::span(last, t) < self.window {
                    let mut total = self.window_total;
                    for s in last + 1..=t {
                        total -= self.buckets[self.slot(s)];
                    }
                    round_6(total / valid.min(len - d).max(1) as f64)
                } else {
                    0.0
                }
            }
            Aggregation::WeightedExponential => {
                let alpha = self.smoothing;
                let mut multiplier = alpha;
                let mut num_buckets = len;
                if t > last {
                    let zeros = t - last;
                    multiplier *= (1.0 - alpha).powf(zeros as f64);
                    num_buckets -= zeros;
                }
                let mut sum = 0.0;
                for i in 0..num_buckets.max(0) {
                    sum += self.buckets[self.slot(last - i)] * multiplier;
                    multiplier *= 1.0 - alpha;
                }
                sum
            }
        })
    }
}

/// `roundToNDigits(6, x)` (bucketing.go:130-133): `math.Round(x·10⁶)/10⁶`, halves away from
/// zero as Go's `math.Round` (and Rust's `f64::round`).
fn round_6(x: f64) -> f64 {
    (x * PRECISION_SCALE).round() / PRECISION_SCALE
}

/// The scale-down-delay window: the maximum desired scale recorded over the last
/// `ceil(delay / 2 s)` tick buckets (`pkg/autoscaler/aggregation/max/timewindow.go` over
/// `max/window.go`, the "ascending minima" algorithm).
#[derive(Clone, Debug)]
struct MaxTimeWindow {
    /// Number of 2-second buckets in the window.
    size: i64,
    /// (bucket index, value), indexes ascending and values strictly descending.
    entries: VecDeque<(i64, i32)>,
}

impl MaxTimeWindow {
    fn new(duration: SimDuration) -> Self {
        let g = TICK_INTERVAL.as_nanos();
        let size = (duration.as_nanos().max(0).saturating_add(g - 1) / g).max(1);
        MaxTimeWindow {
            size,
            entries: VecDeque::new(),
        }
    }

    fn record(&mut self, now: SimTime, value: i32) {
        let mut index = bucket_second(now).div_euclid(TICK_INTERVAL.as_nanos() / NANOS_PER_SEC);
        // Upstream requires monotonic indexes; a clock going backwards counts as the newest
        // bucket instead of corrupting the order.
        if let Some(&(newest, _)) = self.entries.back() {
            index = index.max(newest);
        }
        let mut value = value;
        // Step one: a smaller or equal older value can never be the maximum again.
        while let Some(&(_, v)) = self.entries.back() {
            if value < v {
                break;
            }
            self.entries.pop_back();
        }
        // Step two: drop entries that left the window.
        while let Some(&(i, _)) = self.entries.front() {
            if index - i < self.size {
                break;
            }
            self.entries.pop_front();
        }
        // Step 2b: several values in one bucket keep the largest.
        if let Some(&(i, v)) = self.entries.back() {
            if i == index {
                value = value.max(v);
                self.entries.pop_back();
            }
        }
        self.entries.push_back((index, value));
    }

    fn current(&self) -> i32 {
        self.entries.front().map_or(0, |&(_, v)| v)
    }
}

/// `maxScaleUp` and `maxScaleDown` (`autoscaler.go:189-194`): up to `ceil(rate_up × R)`, down to
/// `floor(R / rate_down)` when reachable, else 0, with `R = max(1, ready)`.
pub fn scale_limits(
    ready_pods: u32,
    max_scale_up_rate: f64,
    max_scale_down_rate: f64,
    reachable: bool,
) -> (f64, f64) {
    let ready = f64::from(ready_pods.max(1));
    let max_up = (max_scale_up_rate * ready).ceil();
    let max_down = if reachable {
        (ready / max_scale_down_rate).floor()
    } else {
        0.0
    };
    (max_up, max_down)
}

/// Excess burst capacity (`autoscaler.go:278-292`): 0 when TBC = 0 (activator only at zero
/// pods), -1 when TBC is negative (always in the path), else
/// `floor(ready × TotalValue − TBC − panic-window value)` with the real ready count (not
/// `max(1, ready)`).
pub fn excess_burst_capacity(
    ready_pods: u32,
    total_value: f64,
    target_burst_capacity: f64,
    observed_panic_value: f64,
) -> f64 {
    if target_burst_capacity == 0.0 {
        0.0
    } else if target_burst_capacity > 0.0 {
        (f64::from(ready_pods) * total_value - target_burst_capacity - observed_panic_value).floor()
    } else {
        -1.0
    }
}

/// The EBC a new decider reports before its first tick (`multiscaler.go:325-333`):
/// `InitialScale × TotalValue − TBC` (Go's int32 conversion truncates), or TBC itself when it
/// is -1 or 0. With defaults 1 × 100 − 211 = −111: a new revision starts behind the activator.
pub fn initial_excess_burst_capacity(
    initial_scale: u32,
    total_value: f64,
    target_burst_capacity: f64,
) -> f64 {
    if target_burst_capacity == -1.0 || target_burst_capacity == 0.0 {
        target_burst_capacity
    } else {
        (f64::from(initial_scale) * total_value - target_burst_capacity).trunc()
    }
}

/// What one `Scale` produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleResult {
    /// The desired pod count; -1 when there was no data to decide on (`invalidSR`).
    pub desired_pods: i32,
    /// EBC of this tick; on a no-decision tick, the latest valid one (left unchanged).
    pub excess_burst_capacity: f64,
    /// Whether the decider is in panic mode after this tick.
    pub in_panic: bool,
    /// The stable-window average of the scaling metric (0 on a no-decision tick).
    pub stable: f64,
    /// The panic-window average of the scaling metric (0 on a no-decision tick).
    pub panic: f64,
}

impl ScaleResult {
    pub fn is_valid(&self) -> bool {
        self.desired_pods >= 0
    }
}

/// One multiscaler tick: the result and whether the KPA reconciler must run (`Inform`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    pub result: ScaleResult,
    /// The desired scale changed, or the EBC changed sign (`updateLatestScale`,
    /// `multiscaler.go:161-176`).
    pub inform: bool,
}

/// One revision's decider: its metric windows, panic state and scale-down-delay window, and the
/// multiscaler's record of its latest decision.
#[derive(Clone, Debug)]
pub struct Decider {
    metric: ScalingMetric,
    targets: MetricTargets,
    target_burst_capacity: f64,
    /// False when TBC = -1: then no scrape target exists (`kpa.go:335-352`,
    /// `resolveScrapeTarget`) and an empty window is not `ErrNoData` but averages of 0.
    scrape_target: bool,
    stable_window: SimDuration,
    panic_threshold: f64,
    max_scale_up_rate: f64,
    max_scale_down_rate: f64,
    activation_scale: i32,
    concurrency_stable: MetricWindow,
    concurrency_panic: MetricWindow,
    rps_stable: MetricWindow,
    rps_panic: MetricWindow,
    panic_time: Option<SimTime>,
    max_panic_pods: i32,
    delay_window: Option<MaxTimeWindow>,
    /// The multiscaler's `DesiredScale` (-1 until the first valid tick).
    latest_desired: i32,
    latest_ebc: f64,
}

impl Decider {
    /// `newAutoscaler` (`autoscaler.go:95-114`) and `createScaler` (`multiscaler.go:325-333`).
    ///
    /// A revision that already has more than one ready pod starts in panic mode with
    /// `maxPanicPods = ready`, so a restarted autoscaler that lost its history does not scale
    /// down before it has data. Windows are created empty, as the collector's are.
    pub fn new(
        config: &AutoscalerConfig,
        container_concurrency: u32,
        initial_ready: u32,
        now: SimTime,
    ) -> Self {
        let targets = config.metric_targets(container_concurrency);
        let stable_window = config.stable_window;
        let panic_window = config.panic_window();
        let window = |w| MetricWindow::new(w, config.aggregation);
        let tbc = config.target_burst_capacity;
        Decider {
            metric: config.metric,
            targets,
            target_burst_capacity: tbc,
            scrape_target: tbc != -1.0,
            stable_window,
            panic_threshold: config.panic_threshold(),
            max_scale_up_rate: config.max_scale_up_rate,
            max_scale_down_rate: config.max_scale_down_rate,
            activation_scale: config
                .activation_scale
                .map_or(1, |a| i32::try_from(a).unwrap_or(i32::MAX)),
            concurrency_stable: window(stable_window),
            concurrency_panic: window(panic_window),
            rps_stable: window(stable_window),
            rps_panic: window(panic_window),
            panic_time: (initial_ready > 1).then_some(now),
            max_panic_pods: i32::try_from(initial_ready).unwrap_or(i32::MAX),
            delay_window: (config.scale_down_delay > SimDuration::ZERO)
                .then(|| MaxTimeWindow::new(config.scale_down_delay)),
            latest_desired: -1,
            latest_ebc: initial_excess_burst_capacity(
                config.effective_initial_scale(),
                targets.total_value,
                tbc,
            ),
        }
    }

    /// A decider that has been running since long before `now` with `ready` pods, in steady
    /// state (datapath.md correction 5): created when its revision had no pods, so not in panic
    /// (`autoscaler.go:95-114` puts only a decider that meets more than one ready pod in panic,
    /// which happens when the autoscaler itself restarts), and already deciding the scale it
    /// runs at.
    ///
    /// Its history is a modelling choice, since the run does not know what came before `now`:
    /// every second of the stable window (and so of the panic window) before `now` held the
    /// middle of the band of load the KPA keeps at `ready` pods, `(ready − ½) × TargetValue` of
    /// the scaling metric, so the first decisions keep `ready` pods and the window then follows
    /// the run's own load as upstream's would after a change at `now`. With empty windows the
    /// first tick would average only the run's first seconds (the ramp from an empty system)
    /// and cut the pods by up to half at once.
    pub fn steady(
        config: &AutoscalerConfig,
        container_concurrency: u32,
        ready: u32,
        now: SimTime,
    ) -> Self {
        let mut decider = Decider::new(config, container_concurrency, 0, now);
        decider.latest_desired = i32::try_from(ready).unwrap_or(i32::MAX);
        if ready > 0 {
            let level = (f64::from(ready) - 0.5) * decider.targets.target_value;
            let seconds = decider.concurrency_stable.num_buckets() as i64;
            for back in (0..seconds).rev() {
                let t = SimTime(
                    now.as_nanos()
                        .saturating_sub(back.saturating_mul(NANOS_PER_SEC)),
                );
                match decider.metric {
                    ScalingMetric::Concurrency => decider.record_concurrency(t, level),
                    ScalingMetric::Rps => decider.record_rps(t, level),
                }
            }
        }
        decider
    }

    pub fn targets(&self) -> MetricTargets {
        self.targets
    }

    /// Whether an empty window means "no data" (`collector.go:201-203`): true unless TBC = −1,
    /// where nothing is scraped.
    pub fn has_scrape_target(&self) -> bool {
        self.scrape_target
    }

    /// Records a concurrency stat (already net of proxied requests, `collector.go` `record`)
    /// into the stable and panic concurrency windows.
    pub fn record_concurrency(&mut self, now: SimTime, value: f64) {
        self.concurrency_stable.record(now, value);
        self.concurrency_panic.record(now, value);
    }

    /// Records a request-count stat (requests in the last second, net of proxied ones).
    pub fn record_rps(&mut self, now: SimTime, value: f64) {
        self.rps_stable.record(now, value);
        self.rps_panic.record(now, value);
    }

    /// Whether the decider is in panic mode.
    pub fn in_panic(&self) -> bool {
        self.panic_time.is_some()
    }

    /// The multiscaler's latest desired scale (-1 before the first valid tick).
    pub fn desired_scale(&self) -> i32 {
        self.latest_desired
    }

    /// The multiscaler's latest EBC (the initial one before the first valid tick).
    pub fn latest_excess_burst_capacity(&self) -> f64 {
        self.latest_ebc
    }

    /// `Poke` (`multiscaler.go:352-364`): an activator stat with non-zero concurrency for a
    /// revision whose latest desired scale is 0 runs `Scale` at once instead of at the next
    /// tick. The caller records the stat first, then calls [`tick`](Self::tick) if this is true.
    pub fn should_poke(&self, stat_concurrency: f64) -> bool {
        self.latest_desired == 0 && stat_concurrency != 0.0
    }

    /// `tickScaler` (`multiscaler.go`): runs [`scale`](Self::scale) and, if it decided,
    /// stores the result; `inform` says whether the KPA must reconcile.
    pub fn tick(&mut self, now: SimTime, ready_pods: u32, reachable: bool) -> Tick {
        let result = self.scale(now, ready_pods, reachable);
        if !result.is_valid() {
            return Tick {
                result,
                inform: false,
            };
        }
        let changed = self.latest_desired != result.desired_pods;
        // sameSign on int32: only negative vs non-negative matters.
        let sign_flip = (self.latest_ebc < 0.0) != (result.excess_burst_capacity < 0.0);
        self.latest_desired = result.desired_pods;
        self.latest_ebc = result.excess_burst_capacity;
        Tick {
            result,
            inform: changed || sign_flip,
        }
    }

    /// `Scale(now)` (`autoscaler.go:149-313`, datapath.md A.5.5), for `ready_pods` Ready pods and
    /// the revision's reachability (routed by some Route).
    pub fn scale(&mut self, now: SimTime, ready_pods: u32, reachable: bool) -> ScaleResult {
        let (stable_window, panic_window) = match self.metric {
            ScalingMetric::Concurrency => (&self.concurrency_stable, &self.concurrency_panic),
            ScalingMetric::Rps => (&self.rps_stable, &self.rps_panic),
        };
        // collector.go StableAndPanicConcurrency/RPS: ErrNoData when the stable window is
        // empty and a scrape target exists; otherwise empty windows average to 0.
        let stable = stable_window.window_average(now);
        if stable.is_none() && self.scrape_target {
            return ScaleResult {
                desired_pods: -1,
                excess_burst_capacity: self.latest_ebc,
                in_panic: self.in_panic(),
                stable: 0.0,
                panic: 0.0,
            };
        }
        let stable = stable.unwrap_or(0.0);
        let panic = panic_window.window_average(now).unwrap_or(0.0);

        // :154-161 — use 1 if there are no ready pods.
        let ready = f64::from(ready_pods.max(1));
        // :189-194
        let (max_up, max_down) = scale_limits(
            ready_pods,
            self.max_scale_up_rate,
            self.max_scale_down_rate,
            reachable,
        );
        // :196-197
        let target = self.targets.target_value;
        let dspc = (stable / target).ceil();
        let dppc = (panic / target).ceil();
        // :207-208 — keep both counts in [maxScaleDown, maxScaleUp]; `as` saturates like a
        // well-behaved int32 conversion.
        let mut desired_stable = dspc.max(max_down).min(max_up) as i32;
        let mut desired_panic = dppc.max(max_down).min(max_up) as i32;
        // :211-218 — activation scale is the minimum non-zero scale.
        if self.activation_scale > 1 {
            if dspc > 0.0 && self.activation_scale > desired_stable {
                desired_stable = self.activation_scale;
            }
            if dppc > 0.0 && self.activation_scale > desired_panic {
                desired_panic = self.activation_scale;
            }
        }
        // :220-236 — enter, extend, or (a full stable window after the last over-threshold
        // tick) leave panic mode.
        let over_threshold = dppc / ready >= self.panic_threshold;
        if over_threshold {
            self.panic_time = Some(now);
        } else if let Some(since) = self.panic_time {
            if since + self.stable_window < now {
                self.panic_time = None;
                self.max_panic_pods = 0;
            }
        }
        // :238-257 — in panic, take the larger count and never scale down.
        let mut desired = desired_stable;
        if self.panic_time.is_some() {
            desired = desired.max(desired_panic);
            if desired > self.max_panic_pods {
                self.max_panic_pods = desired;
            }
            desired = self.max_panic_pods;
        }
        // :265-276 — scale-down delay: the maximum over the last delay window (2 s buckets);
        // not applied to unreachable revisions (A.5.6).
        if reachable {
            if let Some(delay) = self.delay_window.as_mut() {
                delay.record(now, desired);
                desired = delay.current();
            }
        }
        ScaleResult {
            desired_pods: desired,
            excess_burst_capacity: excess_burst_capacity(
                ready_pods,
                self.targets.total_value,
                self.target_burst_capacity,
                panic,
            ),
            in_panic: self.panic_time.is_some(),
            stable,
            panic,
        }
    }
}

/// `applyBounds` (`scaler.go`): at least `min_scale`, at most `max_scale` unless it is 0
/// (unbounded). With `min > max` (rejected by validation upstream) the maximum wins.
pub fn apply_bounds(desired: i32, min_scale: i32, max_scale: i32) -> i32 {
    let mut x = desired;
    if x < min_scale {
        x = min_scale;
    }
    if max_scale != 0 && x > max_scale {
        x = max_scale;
    }
    x
}

/// The SKS mode the KPA asks for (`kpa.go:128-142`) with the SKS reconciler's override
/// (`serverlessservice.go:243-253`).
///
/// The mode starts as Proxy and only `want > 0 && EBC >= 0` makes it Serve (`kpa.go:140`): a
/// scale of 0, a negative EBC, and no decision yet (`want == -1`, whether the PA is inactive,
/// `kpa.go:134`, or active) all keep the activator in the path. Zero ready pods force Proxy.
/// TBC enters through the EBC (−1 for TBC = −1, 0 for TBC = 0). The other override, "zero
/// activator endpoints → Serve", is left to the caller (the simulator always has activators).
/// `pa_inactive` only names `kpa.go:134`'s case; it cannot change the outcome.
pub fn sks_mode(want: i32, excess_burst_capacity: f64, ready_pods: u32, pa_inactive: bool) -> Mode {
    if ready_pods == 0 {
        return Mode::Proxy;
    }
    if want == -1 && pa_inactive {
        // kpa.go:134: unknown scale on an inactive PA stays in Proxy.
        Mode::Proxy
    } else if want > 0 && excess_burst_capacity >= 0.0 {
        // kpa.go:140: a positive scale with excess burst capacity serves.
        Mode::Serve
    } else {
        // kpa.go:128: the default.
        Mode::Proxy
    }
}

/// `computeNumActivators` (`kpa.go:354-368`): with TBC = 0 the minimum of 2; otherwise enough
/// activators of `activator_capacity` each to cover `ready × TotalValue + max(TBC, 0)`, at least
/// 2. The SKS then picks that many of the activators that exist
/// (`serverlessservice.go:135-187`), hence the cap.
pub fn num_activators(
    ready_pods: u32,
    total_value: f64,
    target_burst_capacity: f64,
    activator_capacity: f64,
    activators_available: u32,
) -> u32 {
    let wanted = if target_burst_capacity == 0.0 {
        MIN_ACTIVATORS
    } else {
        let mut capacity_to_cover = f64::from(ready_pods) * total_value;
        if target_burst_capacity > 0.0 {
            capacity_to_cover += target_burst_capacity;
        }
        // A zero capacity divides to +inf and saturates; NaN saturates to 0 and becomes 2.
        (f64::from(MIN_ACTIVATORS)).max((capacity_to_cover / activator_capacity).ceil()) as u32
    };
    wanted.min(activators_available)
}

/// The pods one activator sends to when cc > 0 (`assignSlice` and `pickIndices`,
/// `pkg/activator/net/throttler.go:360-409`, datapath.md A.3.3). `pods` must be sorted (upstream
/// sorts trackers by `ip:port`). With cc = 0 every activator uses all pods; the caller does not
/// call this.
///
/// - Not in the subset (`self_index` `None`, upstream -1), one activator, or at most one pod:
///   all pods.
/// - More activators than pods: activator `i` gets pod `i mod pods` (pods are shared, each
///   sharing activator may send up to cc).
/// - Otherwise a contiguous slice of `floor(pods / activators)` pods, and the
///   `pods mod activators` leftover pods go one each to activators `0 .. remnants − 1`.
///
/// A `self_index` beyond the activator count (inconsistent input; upstream would slice out of
/// range) gets whatever part of its range exists, possibly nothing.
pub fn assign_slice(pods: &[u32], num_activators: u32, self_index: Option<u32>) -> Vec<u32> {
    let n = pods.len();
    let Some(self_index) = self_index else {
        return pods.to_vec();
    };
    if n <= 1 || num_activators <= 1 {
        return pods.to_vec();
    }
    let (na, si) = (num_activators as usize, self_index as usize);
    if na > n {
        return vec![pods[si % n]];
    }
    let slice_size = n / na;
    let remnants = n % na;
    let begin = si.saturating_mul(slice_size).min(n);
    let end = begin.saturating_add(slice_size).min(n);
    let mut slice = pods[begin..end].to_vec();
    if si < remnants {
        slice.push(pods[n - remnants + si]);
    }
    slice
}

/// What one KPA reconcile decided about scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleApplication {
    /// `want`: the scale the reconciler reports (-1 = unknown). It drives the SKS mode and the
    /// PA's Active condition.
    pub want: i32,
    /// Set the deployment's replicas to this (`shouldApplyScale`); `None` leaves them as they are.
    pub replicas: Option<u32>,
    /// The SKS mode to program.
    pub mode: Mode,
    /// Reconcile again after this long (upstream `enqueueCB`), if set.
    pub requeue_after: Option<SimDuration>,
}

/// The KPA reconciler's scaling half for one revision: bounds, initial scale and the
/// scale-to-zero state machine (`scaler.go` `scale`, `handleScaleToZero`), the SKS mode, and the
/// PA's Active condition (`kpa.go` `computeActiveCondition`).
///
/// Simplifications, all on the caller's side of the boundary:
/// - The activator probe of an inactive PA is `activator_in_path_since`: `Some(t)` means a probe
///   would succeed and the SKS has been proxying since `t` (its `ProxyFor`); `None` means the
///   probe fails, and the async probe (period 1 s) is modelled as a re-enqueue after
///   [`ACTIVATOR_PROBE_PERIOD`]. With TBC = −1 upstream skips the probe; the caller passes
///   `Some` then anyway, since the activator is always in the path.
/// - When the PA may deactivate and the SKS is not yet in Proxy, upstream relies on the SKS
///   update to re-enqueue the PA; here `requeue_after` is zero.
/// - The Deployment's current replicas are not tracked: `replicas` is returned whenever upstream
///   would patch (upstream skips the patch when nothing changes).
/// - The PA's ServiceName is assumed set, so the scale target counts as initialized as soon as
///   enough pods are ready.
#[derive(Clone, Debug)]
pub struct ScaleToZero {
    enable_scale_to_zero: bool,
    stable_window: SimDuration,
    grace_period: SimDuration,
    pod_retention: SimDuration,
    activation_timeout: SimDuration,
    min_scale: i32,
    max_scale: i32,
    initial_scale: i32,
    reachable: bool,
    status: ActiveStatus,
    status_since: SimTime,
    scale_target_initialized: bool,
    /// The SKS mode asked for by the previous reconcile.
    last_mode: Option<Mode>,
}

impl ScaleToZero {
    /// A new PA: Active = Unknown (activating) since `now`, reachable.
    pub fn new(config: &AutoscalerConfig, now: SimTime) -> Self {
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        ScaleToZero {
            enable_scale_to_zero: config.enable_scale_to_zero,
            stable_window: config.stable_window,
            grace_period: config.scale_to_zero_grace_period,
            pod_retention: config.scale_to_zero_pod_retention_period,
            activation_timeout: config.activation_timeout(),
            min_scale: to_i32(config.min_scale),
            max_scale: to_i32(config.max_scale),
            initial_scale: to_i32(config.effective_initial_scale()),
            reachable: true,
            status: ActiveStatus::Activating,
            status_since: now,
            scale_target_initialized: false,
            last_mode: None,
        }
    }

    /// The PA's reachability (`pa.Spec.Reachability`): false when no Route references the
    /// revision. Unreachable revisions ignore minScale and initial scale.
    pub fn set_reachable(&mut self, reachable: bool) {
        self.reachable = reachable;
    }

    pub fn status(&self) -> ActiveStatus {
        self.status
    }

    /// When the Active condition last changed.
    pub fn status_since(&self) -> SimTime {
        self.status_since
    }

    pub fn is_scale_target_initialized(&self) -> bool {
        self.scale_target_initialized
    }

    /// `ScaleBounds` (`pa_lifecycle.go:88-103`): minScale counts only while reachable.
    fn scale_bounds(&self) -> (i32, i32) {
        let min = if self.reachable { self.min_scale } else { 0 };
        (min, self.max_scale)
    }

    /// One KPA reconcile (`kpa.go` ReconcileKind's scaling part): `scaler.scale` on the
    /// decider's `desired` scale, the SKS mode from the result and the decider's EBC, then the
    /// Active condition from the result and `ready_pods`.
    pub fn apply(
        &mut self,
        now: SimTime,
        desired: i32,
        excess_burst_capacity: f64,
        ready_pods: u32,
        activator_in_path_since: Option<SimTime>,
    ) -> ScaleApplication {
        let (want, apply, requeue_after) = self.scale(now, desired, activator_in_path_since);
        // The mode uses the PA status from before this reconcile, as upstream computes it
        // before computeStatus.
        let mode = sks_mode(
            want,
            excess_burst_capacity,
            ready_pods,
            self.status == ActiveStatus::Inactive,
        );
        self.last_mode = Some(mode);
        self.compute_active_condition(now, want, ready_pods);
        ScaleApplication {
            want,
            replicas: if apply {
                u32::try_from(want).ok()
            } else {
                None
            },
            mode,
            requeue_after,
        }
    }

    /// `scaler.scale` (`scaler.go:332-381`).
    fn scale(
        &self,
        now: SimTime,
        desired: i32,
        activator_in_path_since: Option<SimTime>,
    ) -> (i32, bool, Option<SimDuration>) {
        // "Metrics are not yet being collected."
        if desired < 0 && self.status != ActiveStatus::Activating {
            return (desired, false, None);
        }
        let (mut min, max) = self.scale_bounds();
        // Until the scale target has been initialized, initial scale is a minimum (A.5.6: for
        // reachable revisions).
        if self.initial_scale > 1 && !self.scale_target_initialized && self.reachable {
            min = min.max(self.initial_scale);
        }
        let desired = apply_bounds(desired, min, max);
        self.handle_scale_to_zero(now, desired, activator_in_path_since)
    }

    /// `handleScaleToZero` (`scaler.go:174-299`): returns (want, apply, requeue).
    fn handle_scale_to_zero(
        &self,
        now: SimTime,
        desired: i32,
        activator_in_path_since: Option<SimTime>,
    ) -> (i32, bool, Option<SimDuration>) {
        if desired != 0 {
            return (desired, true, None);
        }
        if !self.enable_scale_to_zero {
            return (1, true, None);
        }
        let in_status_for = now - self.status_since;
        match self.status {
            ActiveStatus::Activating => {
                // Stuck activating past the progress deadline: give up and scale to 0.
                if in_status_for > self.activation_timeout {
                    (0, true, None)
                } else {
                    (-1, false, Some(self.activation_timeout))
                }
            }
            ActiveStatus::Active => {
                if in_status_for >= self.stable_window {
                    // Report 0 without applying it: the PA becomes inactive and the activator
                    // is put in the path first.
                    let requeue = if self.last_mode == Some(Mode::Proxy) {
                        PROXY_REQUEUE
                    } else {
                        SimDuration::ZERO
                    };
                    (0, false, Some(requeue))
                } else {
                    // Hold one pod for the rest of the stable window.
                    (1, true, Some(self.stable_window_left(in_status_for)))
                }
            }
            ActiveStatus::Inactive => {
                let Some(proxy_since) = activator_in_path_since else {
                    // Not yet backed by the activator: the async probe retries.
                    return (0, false, Some(ACTIVATOR_PROBE_PERIOD));
                };
                let retention = self.pod_retention;
                if in_status_for >= self.grace_period.max(retention) {
                    return (0, true, None);
                }
                if retention > SimDuration::ZERO && in_status_for < retention {
                    return (0, false, Some(SimDuration(retention.0 - in_status_for.0)));
                }
                // The fast path: the activator has been in the path for a grace period.
                let proxy_for = now.since(proxy_since);
                let to = self.grace_period.0.saturating_sub(proxy_for.0);
                if to <= 0 {
                    (0, true, None)
                } else {
                    (0, false, Some(SimDuration(to)))
                }
            }
        }
    }

    fn stable_window_left(&self, active_for: SimDuration) -> SimDuration {
        SimDuration(self.stable_window.0.saturating_sub(active_for.0))
    }

    /// `computeActiveCondition` and `activeThreshold` (`kpa.go:286-333`).
    fn compute_active_condition(&mut self, now: SimTime, want: i32, ready_pods: u32) {
        let (min, _) = self.scale_bounds();
        let min_ready = if self.scale_target_initialized {
            min.max(1)
        } else {
            min.max(self.initial_scale)
        };
        let ready = i64::from(ready_pods);
        if ready >= i64::from(min_ready) {
            self.scale_target_initialized = true;
        }
        let inactive = self.status == ActiveStatus::Inactive;
        if want == 0 || min_ready == 0 {
            self.mark(now, ActiveStatus::Inactive);
        } else if ready < i64::from(min_ready) {
            if want > 0 || !inactive {
                self.mark(now, ActiveStatus::Activating);
            } else {
                self.mark(now, ActiveStatus::Inactive);
            }
        } else if want > 0 || !inactive {
            self.mark(now, ActiveStatus::Active);
        }
    }

    /// A condition's transition time changes only when its status does.
    fn mark(&mut self, now: SimTime, status: ActiveStatus) {
        if self.status != status {
            self.status = status;
            self.status_since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(secs: f64) -> SimTime {
        SimTime::from_secs_f64(secs)
    }

    fn secs(n: i64) -> SimDuration {
        SimDuration::from_secs(n)
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// name, window (s), (second, value) writes, time asked (s), expected average.
    type WindowRow = (&'static str, i64, Vec<(f64, f64)>, f64, Option<f64>);
    /// name, config, cc, concurrency, ready, reachable, expected desired, expected panic.
    type DesiredRow<'a> = (
        &'static str,
        &'a AutoscalerConfig,
        u32,
        f64,
        u32,
        bool,
        i32,
        bool,
    );
    /// name, pods, activators, self index, expected pods.
    type SliceRow = (&'static str, u32, u32, Option<u32>, Vec<u32>);

    // ---- A.5.4 target values -------------------------------------------------------------

    #[test]
    fn target_values_follow_target_go() {
        let base = AutoscalerConfig::default();
        let rps = AutoscalerConfig {
            metric: ScalingMetric::Rps,
            ..base.clone()
        };
        let with_target = |t: f64| AutoscalerConfig {
            target: Some(t),
            ..base.clone()
        };
        let with_tu = |pct: f64| AutoscalerConfig {
            target_utilization_percentage: Some(pct),
            ..base.clone()
        };
        #[rustfmt::skip]
        let rows: Vec<(&str, AutoscalerConfig, u32, f64, f64)> = vec![
            // cc 0: the default total 100, 70 % of it
            ("cc0 defaults", base.clone(), 0, 70.0, 100.0),
            // cc 10: total is cc
            ("cc10 defaults", base.clone(), 10, 7.0, 10.0),
            // cc 1: 0.7 concurrent per pod
            ("cc1 defaults", base.clone(), 1, 0.7, 1.0),
            // rps metric: 200 rps total, fixed 0.7 utilization
            ("rps", rps.clone(), 0, 140.0, 200.0),
            // rps ignores cc
            ("rps cc10", rps.clone(), 10, 140.0, 200.0),
            // target annotation replaces the cc-0 total
            ("target 50 cc0", with_target(50.0), 0, 35.0, 50.0),
            // target annotation above cc is capped at cc
            ("target 50 cc10", with_target(50.0), 10, 7.0, 10.0),
            // target annotation below cc wins
            ("target 4 cc10", with_target(4.0), 10, 2.8, 4.0),
            // target annotation on rps is not capped by cc
            ("rps target 50 cc10", AutoscalerConfig { target: Some(50.0), ..rps.clone() }, 10, 35.0, 50.0),
            // target-utilization-percentage annotation overrides 70 %
            ("tu 50 cc10", with_tu(50.0), 10, 5.0, 10.0),
            // and also the rps utilization
            ("rps tu 100", AutoscalerConfig { target_utilization_percentage: Some(100.0), ..rps }, 0, 200.0, 200.0),
            // cluster container-concurrency-target-percentage 100
            ("ccp 100 cc0", AutoscalerConfig { container_concurrency_target_percentage: 100.0, ..base.clone() }, 0, 100.0, 100.0),
            // TargetMin 0.01 floors tiny targets
            ("tu 0.5 cc1", with_tu(0.5), 1, 0.01, 1.0),
            // a tiny target annotation: total follows it, target floored
            ("target 0.001", with_target(0.001), 0, 0.01, 0.001),
        ];
        for (name, cfg, cc, target, total) in rows {
            let t = cfg.metric_targets(cc);
            assert!(
                approx(t.target_value, target),
                "{name}: target {}",
                t.target_value
            );
            assert!(
                approx(t.total_value, total),
                "{name}: total {}",
                t.total_value
            );
        }
    }

    #[test]
    fn panic_window_rounds_to_seconds_with_a_one_second_floor() {
        #[rustfmt::skip]
        let rows = [
            // defaults: 60 s × 10 % = 6 s
            (60_000, 10.0, 6_000),
            // 61 s × 10 % = 6.1 s → 6 s
            (61_000, 10.0, 6_000),
            // 65 s × 10 % = 6.5 s → 7 s (halves away from zero)
            (65_000, 10.0, 7_000),
            // 60 s × 1 % = 0.6 s → 1 s
            (60_000, 1.0, 1_000),
            // 10 s × 1 % = 0.1 s → 0 → the 1 s floor
            (10_000, 1.0, 1_000),
            // 100 %: the stable window
            (6_000, 100.0, 6_000),
        ];
        for (stable_ms, pct, want_ms) in rows {
            let cfg = AutoscalerConfig {
                stable_window: SimDuration::from_millis(stable_ms),
                panic_window_percentage: pct,
                ..AutoscalerConfig::default()
            };
            assert_eq!(
                cfg.panic_window(),
                SimDuration::from_millis(want_ms),
                "{stable_ms} ms × {pct} %"
            );
        }
    }

    #[test]
    fn defaults_match_config_autoscaler() {
        let c = AutoscalerConfig::default();
        assert_eq!(c.target_burst_capacity, 211.0);
        assert_eq!(c.stable_window, secs(60));
        assert_eq!(c.panic_window(), secs(6));
        assert_eq!(c.panic_threshold(), 2.0);
        assert_eq!((c.max_scale_up_rate, c.max_scale_down_rate), (1000.0, 2.0));
        assert_eq!(c.activation_timeout(), secs(630));
        assert_eq!(c.effective_initial_scale(), 1);
        // initial scale 0 needs allow-zero-initial-scale
        let zero = AutoscalerConfig {
            initial_scale: 0,
            ..c.clone()
        };
        assert_eq!(zero.effective_initial_scale(), 1);
        let allowed = AutoscalerConfig {
            allow_zero_initial_scale: true,
            ..zero
        };
        assert_eq!(allowed.effective_initial_scale(), 0);
    }

    // ---- A.5.3 windows -------------------------------------------------------------------

    fn linear(window_s: i64) -> MetricWindow {
        MetricWindow::new(secs(window_s), Aggregation::Linear)
    }

    #[test]
    fn linear_window_averages() {
        // Each row: window, (second, value) writes, the time asked, the expected average.
        #[rustfmt::skip]
        let rows: Vec<WindowRow> = vec![
            ("never written: no data", 5, vec![], 3.0, None),
            ("full window: 1..5 over 5 buckets", 5, vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0)], 4.0, Some(3.0)),
            ("asked mid-second: same bucket", 5, vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0)], 4.9, Some(3.0)),
            ("partial: divided by buckets since the first write", 60, vec![(0.0, 10.0), (1.0, 20.0)], 1.0, Some(15.0)),
            ("scale from zero: one bucket of 1", 60, vec![(100.0, 1.0)], 100.0, Some(1.0)),
            ("one second after the last write: that second left out", 60, vec![(0.0, 10.0), (1.0, 20.0)], 2.0, Some(15.0)),
            ("gaps between writes count as zeros", 5, vec![(0.0, 10.0), (3.0, 10.0)], 3.0, Some(5.0)),
            ("buckets in one second add up", 60, vec![(0.2, 1.0), (0.7, 2.0)], 0.9, Some(3.0)),
            ("old buckets roll off: 3 s window", 3, vec![(0.0, 3.0), (1.0, 3.0), (2.0, 3.0), (3.0, 6.0)], 3.0, Some(4.0)),
            ("stale data d < window: the newer d buckets left out", 5, vec![(0.0, 5.0), (1.0, 5.0), (2.0, 5.0), (3.0, 5.0), (4.0, 5.0), (5.0, 5.0)], 7.0, Some(5.0)),
            ("exactly a window after the last write: 0, not empty", 5, vec![(0.0, 7.0)], 5.0, Some(0.0)),
            ("more than a window after: no data", 5, vec![(0.0, 7.0)], 6.0, None),
            ("a full window of silence resets the first write", 5, vec![(0.0, 10.0), (10.0, 2.0)], 10.0, Some(2.0)),
            ("a write older than a window is ignored", 5, vec![(10.0, 4.0), (2.0, 100.0)], 10.0, Some(4.0)),
            ("a late write within the window adds to its bucket", 5, vec![(8.0, 4.0), (10.0, 4.0), (9.0, 4.0)], 10.0, Some(4.0)),
            // bucketing.go:130-133,213 roundToNDigits(6, ·): 1/3 rounds down either way.
            ("rounded to 6 decimals: 1/3", 60, vec![(0.0, 1.0), (1.0, 0.0), (2.0, 0.0)], 2.0, Some(0.333333)),
            // bucketing.go:130-133,213 math.Round since v1.19 (#15940): 2/3 → 0.666667, where
            // the old math.Floor gave 0.666666.
            ("rounded to 6 decimals: 2/3 rounds up", 60, vec![(0.0, 1.0), (1.0, 1.0), (2.0, 0.0)], 2.0, Some(0.666667)),
            // bucketing.go:130-133,227 the stale-data branch rounds too: (1 + 1 + 0)/3 seen a
            // second after the last write of a 5 s window.
            ("rounded in the stale branch too", 5, vec![(0.0, 1.0), (1.0, 1.0), (2.0, 0.0)], 3.0, Some(0.666667)),
        ];
        for (name, window, writes, at, want) in rows {
            let mut w = linear(window);
            for (t, v) in writes {
                w.record(s(t), v);
            }
            let got = w.window_average(s(at));
            match (got, want) {
                (Some(g), Some(e)) => assert!(approx(g, e), "{name}: got {g}, want {e}"),
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn non_finite_values_are_ignored_and_memory_is_bounded() {
        let mut w = linear(60);
        w.record(s(0.0), f64::NAN);
        w.record(s(0.0), f64::INFINITY);
        assert_eq!(w.window_average(s(0.0)), None);
        for t in 0..10_000 {
            w.record(s(t as f64), 1.0);
        }
        assert_eq!(w.num_buckets(), 60);
        assert!(approx(w.window_average(s(9_999.0)).expect("data"), 1.0));
        // a zero window still has one bucket instead of dividing by zero
        let mut z = MetricWindow::new(SimDuration::ZERO, Aggregation::Linear);
        z.record(s(1.0), 3.0);
        assert_eq!(z.num_buckets(), 1);
        assert_eq!(z.window_average(s(1.0)), Some(3.0));
    }

    #[test]
    fn weighted_exponential_coefficients() {
        #[rustfmt::skip]
        let rows = [
            // the 60-bucket stable window hits the 0.2 floor
            (60, 0.2),
            // the 6-bucket panic window: 1 − 0.0001^(1/6)
            (6, 1.0 - 0.0001f64.powf(1.0 / 6.0)),
            // one bucket: all weight on it
            (1, 0.9999),
            // 10 buckets: 1 − 0.0001^(1/10) ≈ 0.602
            (10, 1.0 - 0.0001f64.powf(0.1)),
        ];
        for (nb, alpha) in rows {
            assert!(approx(smoothing_coefficient(nb), alpha), "{nb} buckets");
        }
        assert!((smoothing_coefficient(6) - 0.785).abs() < 0.001);
        let w = MetricWindow::new(secs(6), Aggregation::WeightedExponential);
        assert!((w.smoothing() - 0.7846).abs() < 1e-4);
    }

    #[test]
    fn weighted_exponential_average() {
        let mut w = MetricWindow::new(secs(6), Aggregation::WeightedExponential);
        let a = w.smoothing();
        // data [10, 10, 5, 5], newest last (bucketing.go's example)
        for (t, v) in [(0.0, 10.0), (1.0, 10.0), (2.0, 5.0), (3.0, 5.0)] {
            w.record(s(t), v);
        }
        let at3 = 5.0 * a
            + 5.0 * a * (1.0 - a)
            + 10.0 * a * (1.0 - a).powi(2)
            + 10.0 * a * (1.0 - a).powi(3);
        assert!(approx(w.window_average(s(3.0)).expect("data"), at3));
        // two silent seconds: they count as zero-valued newest buckets
        let at5 = (1.0 - a).powi(2) * at3;
        assert!(approx(w.window_average(s(5.0)).expect("data"), at5));
        // reversing the data changes the weighted (not the linear) average
        let mut r = MetricWindow::new(secs(6), Aggregation::WeightedExponential);
        for (t, v) in [(0.0, 5.0), (1.0, 5.0), (2.0, 10.0), (3.0, 10.0)] {
            r.record(s(t), v);
        }
        assert!(r.window_average(s(3.0)).expect("data") > at3);
        // empty beyond a window
        assert_eq!(w.window_average(s(10.0)), None);
    }

    // ---- A.5.5 the decider ---------------------------------------------------------------

    #[test]
    fn scale_limits_rows() {
        #[rustfmt::skip]
        let rows = [
            // 0 ready counts as 1: up to 1000, down to 0
            (0, 1000.0, 2.0, true, 1000.0, 0.0),
            // 1 ready: floor(1/2) = 0
            (1, 1000.0, 2.0, true, 1000.0, 0.0),
            // 10 ready: 10000 up, 5 down
            (10, 1000.0, 2.0, true, 10000.0, 5.0),
            // 11 ready: floor(5.5) = 5
            (11, 1000.0, 2.0, true, 11000.0, 5.0),
            // unreachable: no scale-down limit
            (10, 1000.0, 2.0, false, 10000.0, 0.0),
            // a slow up rate still grows by at least one pod: ceil(1.1 × 3) = 4
            (3, 1.1, 2.0, true, 4.0, 1.0),
            // ceil(1.5 × 3) = 5, floor(3 / 1.5) = 2
            (3, 1.5, 1.5, true, 5.0, 2.0),
        ];
        for (ready, up, down, reachable, want_up, want_down) in rows {
            assert_eq!(
                scale_limits(ready, up, down, reachable),
                (want_up, want_down),
                "ready {ready} up {up} down {down} reachable {reachable}"
            );
        }
    }

    /// A decider created with no ready pods (so not in panic), fed `value` every second of
    /// 0..=59 s, then asked at 59 s.
    fn decide(
        cfg: &AutoscalerConfig,
        cc: u32,
        value: f64,
        ready: u32,
        reachable: bool,
    ) -> ScaleResult {
        let mut d = Decider::new(cfg, cc, 0, SimTime::ZERO);
        for t in 0..60 {
            d.record_concurrency(s(t as f64), value);
        }
        d.scale(s(59.0), ready, reachable)
    }

    #[test]
    fn desired_pods_rows() {
        let base = AutoscalerConfig::default();
        let act3 = AutoscalerConfig {
            activation_scale: Some(3),
            ..base.clone()
        };
        // Each row: config, cc, steady concurrency over 0..=59 s, ready pods, reachable,
        // expected desired pods and panic mode at t = 59 s.
        #[rustfmt::skip]
        let rows: Vec<DesiredRow> = vec![
            // dspc = ceil(70 / 70) = 1
            ("exactly the target", &base, 0, 70.0, 1, true, 1, false),
            // dspc = ceil(70.01 / 70) = 2, dppc 2, 2/1 >= 2: panic, desired max(2, 2)
            ("just above the target panics one pod", &base, 0, 70.01, 1, true, 2, true),
            // 2 ready: dppc 2, 2/2 = 1 < 2: stable
            ("just above the target with 2 pods", &base, 0, 70.01, 2, true, 2, false),
            // cc 10, target 7: 35 → 5 pods; 5/5 ready no panic
            ("cc10 35 concurrent", &base, 10, 35.0, 5, true, 5, false),
            // zero load with one pod: dspc 0, maxDown 0 → 0
            ("zero load one pod", &base, 0, 0.0, 1, true, 0, false),
            // zero load with 10 pods: clamped up to maxDown 5
            ("zero load clamps to maxDown", &base, 0, 0.0, 10, true, 5, false),
            // unreachable: maxDown 0 → 0
            ("zero load unreachable", &base, 0, 0.0, 10, false, 0, false),
            // 1e7 concurrent, 1 pod: dspc 142858, clamped to maxUp 1000 (and panicking)
            ("clamped to maxUp", &base, 0, 1e7, 1, true, 1000, true),
            // activation scale lifts a non-zero dspc: 1 → 3
            ("activation scale lifts 1 to 3", &act3, 0, 10.0, 1, true, 3, false),
            // activation scale does not apply to 0
            ("activation scale leaves 0", &act3, 0, 0.0, 1, true, 0, false),
            // activation scale below the count changes nothing: dspc 5
            ("activation scale below dspc", &act3, 0, 350.0, 5, true, 5, false),
        ];
        for (name, cfg, cc, value, ready, reachable, want, panic) in rows {
            let r = decide(cfg, cc, value, ready, reachable);
            assert_eq!((r.desired_pods, r.in_panic), (want, panic), "{name}: {r:?}");
        }
    }

    #[test]
    fn dspc_and_dppc_are_ceilings_of_the_two_windows() {
        let cfg = AutoscalerConfig::default();
        // 40 s of 0 then 20 s of 700: stable = 700·20/60 = 233.3 → dspc 4; panic = 700 → dppc 10
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        for t in 0..60 {
            d.record_concurrency(s(t as f64), if t < 40 { 0.0 } else { 700.0 });
        }
        let r = d.scale(s(59.0), 20, true);
        assert!((r.stable - 233.333333).abs() < 1e-6, "{r:?}");
        assert!(approx(r.panic, 700.0));
        // 20 ready: dppc/ready = 0.5 → no panic; desired = max(dspc 4, maxDown 10) = 10
        assert_eq!((r.desired_pods, r.in_panic), (10, false));
        assert_eq!(decide(&cfg, 0, 0.0, 1, true).desired_pods, 0);
    }

    #[test]
    fn no_data_is_no_decision_unless_nothing_is_scraped() {
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        // nothing recorded: ErrNoData → -1, initial EBC kept
        let r = d.scale(s(10.0), 0, true);
        assert_eq!((r.desired_pods, r.excess_burst_capacity), (-1, -111.0));
        let t = d.tick(s(10.0), 0, true);
        assert!(!t.inform);
        assert_eq!(d.desired_scale(), -1);
        // data older than the stable window: no data again
        d.record_concurrency(s(0.0), 5.0);
        assert_eq!(d.scale(s(61.0), 1, true).desired_pods, -1);
        // TBC = -1: no scrape target, so empty windows average 0 and the decider decides 0
        let all_proxy = AutoscalerConfig {
            target_burst_capacity: -1.0,
            ..cfg
        };
        let mut d = Decider::new(&all_proxy, 0, 0, SimTime::ZERO);
        let r = d.scale(s(10.0), 1, true);
        assert_eq!((r.desired_pods, r.excess_burst_capacity), (0, -1.0));
    }

    #[test]
    fn panic_enters_extends_and_exits_a_stable_window_after_the_last_over_threshold_tick() {
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        // One second of 1000 concurrent at t = 10 in a quiet stream; ticks every 2 s, 1 pod.
        // The 6 s panic window holds it at ticks 10, 12, 14 (1000/6 → dppc 3 ≥ 2): panic enters
        // at 10 and is extended to 14. It exits at the first tick after 14 + 60 = 74, i.e. 76.
        let mut log = Vec::new();
        for t in 0..=80 {
            d.record_concurrency(s(t as f64), if t == 10 { 1000.0 } else { 0.0 });
            if t % 2 == 0 {
                let r = d.tick(s(t as f64), 1, true).result;
                log.push((t, r.desired_pods, r.in_panic));
            }
        }
        for &(t, desired, panic) in &log {
            let want_panic = (10..=74).contains(&t);
            assert_eq!(panic, want_panic, "panic at t={t}");
            // Entering: stable 1000/11 → 2, panic 1000/6 → 3: desired 3. The ratchet holds 3
            // through the whole panic although dspc falls to 1 and dppc to 0.
            let want_desired = if t < 10 {
                0
            } else if t <= 74 {
                3
            } else {
                // out of panic: the stable window (17..=76) is all zeros
                0
            };
            assert_eq!(desired, want_desired, "desired at t={t}");
        }
    }

    #[test]
    fn ratchet_never_scales_down_in_panic_and_takes_the_larger_count() {
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        // 2 ready pods; panic window values 700, then 350, then 1400 (per second)
        let mut desired = Vec::new();
        for (t, v) in [(0, 700.0), (6, 350.0), (12, 1400.0)] {
            for k in t..t + 6 {
                d.record_concurrency(s(k as f64), v);
            }
            desired.push(d.scale(s((t + 5) as f64), 2, true));
        }
        // 700 → dppc 10, 10/2 ≥ 2: panic, desired 10
        assert_eq!((desired[0].desired_pods, desired[0].in_panic), (10, true));
        // 350 → dppc 5 (still over), but the ratchet keeps 10
        assert_eq!((desired[1].desired_pods, desired[1].in_panic), (10, true));
        // 1400 → dppc 20: up to 20
        assert_eq!((desired[2].desired_pods, desired[2].in_panic), (20, true));
    }

    #[test]
    fn a_new_decider_with_ready_pods_starts_in_panic_holding_them() {
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::new(&cfg, 0, 5, s(0.0));
        assert!(d.in_panic());
        for t in 0..=62 {
            d.record_concurrency(s(t as f64), 0.0);
        }
        // zero load, 5 ready: floor(5/2) = 2 outside panic, but panic holds 5
        let r = d.scale(s(60.0), 5, true);
        assert_eq!((r.desired_pods, r.in_panic), (5, true));
        // 0 + 60 < 62: panic exits, down to maxDown 2
        let r = d.scale(s(62.0), 5, true);
        assert_eq!((r.desired_pods, r.in_panic), (2, false));
        // one ready pod is not enough to start in panic
        assert!(!Decider::new(&cfg, 0, 1, s(0.0)).in_panic());
    }

    #[test]
    fn a_decider_running_in_steady_state_is_not_in_panic() {
        // datapath.md correction 5: only a restarted autoscaler meets ready pods in its new
        // decider (autoscaler.go:95-114); a revision running at t = 0 was created long before
        // with none, and scales down on zero load as any steady decider does.
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::steady(&cfg, 0, 5, s(0.0));
        assert!(!d.in_panic());
        assert_eq!(d.desired_scale(), 5);
        // its history keeps 5 pods: (5 − ½) × 70 = 315 concurrent, ceil(315 / 70) = 5
        let r = d.scale(s(0.0), 5, true);
        assert_eq!((r.desired_pods, r.in_panic), (5, false));
        assert!(approx(r.stable, 315.0) && approx(r.panic, 315.0));
        // the load stops at 0 s: the panic window empties first, the stable window slides
        // down, and without panic mode the pods follow (a panicking decider would hold 5 for
        // a minute, autoscaler.go:238-257)
        for t in 1..=30 {
            d.record_concurrency(s(f64::from(t)), 0.0);
        }
        // 30 s later: 29 history buckets of 315 in 60 → 152.25 → ceil(152.25/70) = 3
        let r = d.scale(s(30.0), 5, true);
        assert_eq!((r.desired_pods, r.in_panic), (3, false));
        // the rps metric's history is in requests per second
        let rps = AutoscalerConfig {
            metric: ScalingMetric::Rps,
            ..AutoscalerConfig::default()
        };
        let mut d = Decider::steady(&rps, 10, 4, s(0.0));
        let r = d.scale(s(0.0), 4, true);
        assert!(approx(r.stable, 3.5 * 140.0), "{}", r.stable);
        assert_eq!(r.desired_pods, 4);
        // no pods, no history: no data until something is recorded
        let mut d = Decider::steady(&cfg, 0, 0, s(0.0));
        assert_eq!(d.scale(s(2.0), 0, true).desired_pods, -1);
    }

    #[test]
    fn scale_down_delay_holds_the_maximum_of_the_last_delay_window() {
        // A 6 s stable window (1 s panic window), 3 pods: 210 concurrent for 0..=5 s, then 0.
        // Without delay: 3 until t = 6, then 2 (t = 8), then 1 (maxDown) from t = 10.
        // With a 10 s delay (5 buckets of 2 s) the 3 of t = 6 is held until t = 14.
        let base = AutoscalerConfig {
            stable_window: secs(6),
            ..AutoscalerConfig::default()
        };
        let delayed = AutoscalerConfig {
            scale_down_delay: secs(10),
            ..base.clone()
        };
        let run = |cfg: &AutoscalerConfig, reachable: bool| {
            let mut d = Decider::new(cfg, 0, 0, SimTime::ZERO);
            let mut out = Vec::new();
            for t in 0..=18 {
                d.record_concurrency(s(t as f64), if t <= 5 { 210.0 } else { 0.0 });
                if t % 2 == 0 {
                    out.push(d.tick(s(t as f64), 3, reachable).result.desired_pods);
                }
            }
            out
        };
        // t:                          0  2  4  6  8 10 12 14 16 18
        assert_eq!(run(&base, true), [3, 3, 3, 3, 2, 1, 1, 1, 1, 1]);
        assert_eq!(run(&delayed, true), [3, 3, 3, 3, 3, 3, 3, 3, 2, 1]);
        // unreachable: no delay and no maxDown
        assert_eq!(run(&delayed, false), [3, 3, 3, 3, 2, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn max_time_window_rows() {
        let mut w = MaxTimeWindow::new(secs(10));
        assert_eq!(w.size, 5);
        // (time, recorded value, current max)
        #[rustfmt::skip]
        let rows = [
            (0.0, 5, 5),
            // same 2 s bucket: the larger stays
            (1.0, 3, 5),
            (2.0, 4, 5),
            // bucket 4 (t = 8) still sees bucket 0
            (8.0, 1, 5),
            // bucket 5: bucket 0 left, 4 (t = 2) is the max
            (10.0, 1, 4),
            (12.0, 1, 1),
            (14.0, 7, 7),
            // a clock going backwards counts as the newest bucket
            (4.0, 2, 7),
        ];
        for (t, v, want) in rows {
            w.record(s(t), v);
            assert_eq!(w.current(), want, "t={t} v={v}");
        }
    }

    #[test]
    fn excess_burst_capacity_rows_and_the_worked_table() {
        #[rustfmt::skip]
        let rows = [
            // A.4 worked table at zero load, TBC 211. cc 0 (total 100): 2 pods short, 3 enough
            (2, 100.0, 211.0, 0.0, -11.0),
            (3, 100.0, 211.0, 0.0, 89.0),
            // cc 10 (total 10): 21 pods short, 22 enough
            (21, 10.0, 211.0, 0.0, -1.0),
            (22, 10.0, 211.0, 0.0, 9.0),
            // cc 1 (total 1): 210 pods short; 211 gives EBC 0, which is not negative (Serve)
            (210, 1.0, 211.0, 0.0, -1.0),
            (211, 1.0, 211.0, 0.0, 0.0),
            (212, 1.0, 211.0, 0.0, 1.0),
            // load in the panic window eats the headroom: 300 − 211 − 90 = −1
            (3, 100.0, 211.0, 90.0, -1.0),
            // floor of a fractional panic value
            (3, 100.0, 211.0, 0.5, 88.0),
            // zero ready pods
            (0, 100.0, 211.0, 0.0, -211.0),
            // TBC 0: always 0 (activator only at zero pods)
            (0, 100.0, 0.0, 500.0, 0.0),
            // TBC −1: always −1 (activator always in the path)
            (100, 100.0, -1.0, 0.0, -1.0),
        ];
        for (ready, total, tbc, panic, want) in rows {
            assert_eq!(
                excess_burst_capacity(ready, total, tbc, panic),
                want,
                "ready {ready} total {total} tbc {tbc} panic {panic}"
            );
        }
        // the mode at those boundaries (want 1, PA active)
        #[rustfmt::skip]
        let modes = [
            (2, 100.0, Mode::Proxy),
            (3, 100.0, Mode::Serve),
            (21, 10.0, Mode::Proxy),
            (22, 10.0, Mode::Serve),
            (210, 1.0, Mode::Proxy),
            (211, 1.0, Mode::Serve),
        ];
        for (ready, total, mode) in modes {
            let ebc = excess_burst_capacity(ready, total, 211.0, 0.0);
            assert_eq!(
                sks_mode(1, ebc, ready, false),
                mode,
                "ready {ready} total {total}"
            );
        }
    }

    #[test]
    fn initial_excess_burst_capacity_rows() {
        #[rustfmt::skip]
        let rows = [
            // defaults: 1 × 100 − 211 = −111 (Proxy)
            (1, 100.0, 211.0, -111.0),
            // initial scale 3, cc 0: 300 − 211 = 89 (Serve once ready)
            (3, 100.0, 211.0, 89.0),
            // cc 10: 10 − 211
            (1, 10.0, 211.0, -201.0),
            // TBC 0 and −1 are reported as is
            (1, 100.0, 0.0, 0.0),
            (5, 100.0, -1.0, -1.0),
            // int32 conversion truncates toward zero
            (1, 10.5, 200.0, -189.0),
        ];
        for (initial, total, tbc, want) in rows {
            assert_eq!(initial_excess_burst_capacity(initial, total, tbc), want);
        }
        let d = Decider::new(&AutoscalerConfig::default(), 0, 0, SimTime::ZERO);
        assert_eq!(d.latest_excess_burst_capacity(), -111.0);
    }

    #[test]
    fn tick_informs_on_desired_change_or_ebc_sign_flip() {
        let cfg = AutoscalerConfig {
            target_burst_capacity: 50.0,
            ..AutoscalerConfig::default()
        };
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        // initial EBC 100 − 50 = 50
        d.record_concurrency(s(0.0), 10.0);
        // first valid tick: desired −1 → 1: inform; EBC 1·100 − 50 − 10 = 40
        let t = d.tick(s(0.0), 1, true);
        assert!(t.inform);
        assert_eq!(
            (t.result.desired_pods, t.result.excess_burst_capacity),
            (1, 40.0)
        );
        // same decision, same sign: no inform
        d.record_concurrency(s(1.0), 10.0);
        assert!(!d.tick(s(1.0), 1, true).inform);
        // six seconds of 60 fill the panic window: EBC turns negative
        for k in 2..8 {
            d.record_concurrency(s(k as f64), 60.0);
        }
        let t = d.tick(s(7.0), 1, true);
        // desired stays 1 (ceil(≤ 60 / 70)), EBC 100 − 50 − 60 = −10: sign flip informs
        assert_eq!(
            (t.result.desired_pods, t.result.excess_burst_capacity),
            (1, -10.0)
        );
        assert!(t.inform);
    }

    #[test]
    fn scale_from_zero_poke_decides_one_pod_from_a_single_bucket() {
        let cfg = AutoscalerConfig::default();
        let mut d = Decider::new(&cfg, 0, 0, SimTime::ZERO);
        // before any decision a poke is pointless: the latest scale is −1, not 0
        assert!(!d.should_poke(1.0));
        d.record_concurrency(s(0.0), 0.0);
        let t = d.tick(s(0.0), 0, true);
        assert_eq!(d.desired_scale(), 0);
        assert!(t.inform);
        // a zero stat does not poke
        assert!(!d.should_poke(0.0));
        // minutes later the activator's immediate stat (concurrency 1) arrives
        let now = s(300.4);
        d.record_concurrency(now, 1.0);
        assert!(d.should_poke(1.0));
        let t = d.tick(now, 0, true);
        // the window holds one bucket since its first write: average 1 → dspc 1
        assert!(approx(t.result.stable, 1.0));
        assert_eq!(t.result.desired_pods, 1);
        assert!(t.inform);
        assert!(!d.should_poke(1.0));
    }

    #[test]
    fn rps_metric_uses_the_rps_windows() {
        let cfg = AutoscalerConfig {
            metric: ScalingMetric::Rps,
            ..AutoscalerConfig::default()
        };
        let mut d = Decider::new(&cfg, 10, 0, SimTime::ZERO);
        for t in 0..60 {
            d.record_rps(s(t as f64), 420.0);
            d.record_concurrency(s(t as f64), 1e6);
        }
        // 420 rps / 140 per pod = 3 pods; the huge concurrency is not the metric
        let r = d.scale(s(59.0), 3, true);
        assert_eq!((r.desired_pods, r.in_panic), (3, false));
        assert!(approx(r.stable, 420.0));
    }

    // ---- A.4 mode, A.3.3 activators ------------------------------------------------------

    #[test]
    fn sks_mode_rows() {
        #[rustfmt::skip]
        let rows = [
            // kpa.go:128,140 scaled to zero: Proxy
            (0, 10.0, 3, false, Mode::Proxy),
            // kpa.go:128,140 not enough burst capacity: Proxy
            (3, -1.0, 3, false, Mode::Proxy),
            // kpa.go:140 enough: Serve
            (3, 0.0, 3, false, Mode::Serve),
            // kpa.go:134 no decision and the PA was inactive: Proxy
            (-1, 10.0, 3, true, Mode::Proxy),
            // kpa.go:128,140 no decision, PA active, EBC ok: still Proxy (only want > 0 serves)
            (-1, 10.0, 3, false, Mode::Proxy),
            // kpa.go:140 want > 0 and EBC exactly 0 serves (EBC >= 0)
            (1, 0.0, 1, false, Mode::Serve),
            // serverlessservice.go:244-246 no ready pods → Proxy whatever the KPA wants
            (3, 50.0, 0, false, Mode::Proxy),
        ];
        for (want, ebc, ready, inactive, mode) in rows {
            assert_eq!(
                sks_mode(want, ebc, ready, inactive),
                mode,
                "want {want} ebc {ebc} ready {ready} inactive {inactive}"
            );
        }
    }

    #[test]
    fn num_activators_rows() {
        #[rustfmt::skip]
        let rows = [
            // TBC 0: always the minimum 2
            (50, 100.0, 0.0, 100.0, 20, 2),
            // TBC 211, no pods: ceil(211 / 100) = 3
            (0, 100.0, 211.0, 100.0, 20, 3),
            // 10 pods of 100 + 211 = 1211 → 13
            (10, 100.0, 211.0, 100.0, 20, 13),
            // capped by the activators that exist
            (10, 100.0, 211.0, 100.0, 5, 5),
            // TBC −1: only the pods' capacity, at least 2
            (1, 100.0, -1.0, 100.0, 20, 2),
            (5, 100.0, -1.0, 100.0, 20, 5),
            // cc 10: 22 pods × 10 + 211 = 431 → 5
            (22, 10.0, 211.0, 100.0, 20, 5),
            // no activators at all
            (5, 100.0, 211.0, 100.0, 0, 0),
            // a zero activator capacity saturates instead of dividing by zero
            (5, 100.0, 211.0, 0.0, 7, 7),
        ];
        for (ready, total, tbc, cap, avail, want) in rows {
            assert_eq!(
                num_activators(ready, total, tbc, cap, avail),
                want,
                "ready {ready} total {total} tbc {tbc} cap {cap} avail {avail}"
            );
        }
    }

    #[test]
    fn assign_slice_rows() {
        let pods = |n: u32| (0..n).collect::<Vec<u32>>();
        #[rustfmt::skip]
        let rows: Vec<SliceRow> = vec![
            ("not in the subset: all pods", 5, 2, None, vec![0, 1, 2, 3, 4]),
            ("one activator: all pods", 5, 1, Some(0), vec![0, 1, 2, 3, 4]),
            ("one pod: everyone shares it", 1, 3, Some(2), vec![0]),
            ("no pods", 0, 3, Some(1), vec![]),
            ("more activators than pods: i mod pods (3 → 0)", 3, 5, Some(3), vec![0]),
            ("more activators than pods: i mod pods (4 → 1)", 3, 5, Some(4), vec![1]),
            ("even split", 4, 2, Some(1), vec![2, 3]),
            ("remnant to activator 0", 5, 2, Some(0), vec![0, 1, 4]),
            ("no remnant for activator 1", 5, 2, Some(1), vec![2, 3]),
            ("20 pods / 3: slice 6, remnants 18, 19 to activators 0, 1", 20, 3, Some(0), vec![0, 1, 2, 3, 4, 5, 18]),
            ("20 pods / 3, activator 1", 20, 3, Some(1), vec![6, 7, 8, 9, 10, 11, 19]),
            ("20 pods / 3, activator 2", 20, 3, Some(2), vec![12, 13, 14, 15, 16, 17]),
            ("index beyond the activator count: nothing", 6, 3, Some(7), vec![]),
        ];
        for (name, n, na, idx, want) in rows {
            assert_eq!(assign_slice(&pods(n), na, idx), want, "{name}");
        }
        // with as many or more pods than activators, the slices partition the pods
        for n in 1..30u32 {
            for na in 2..=n {
                let mut all: Vec<u32> = (0..na)
                    .flat_map(|i| assign_slice(&pods(n), na, Some(i)))
                    .collect();
                all.sort();
                assert_eq!(all, pods(n), "{n} pods, {na} activators");
            }
        }
    }

    // ---- A.5.6 bounds and scale to zero --------------------------------------------------

    #[test]
    fn apply_bounds_rows() {
        #[rustfmt::skip]
        let rows = [
            (3, 0, 0, 3),    // unbounded
            (0, 2, 0, 2),    // raised to min
            (9, 0, 5, 5),    // capped at max
            (4, 2, 5, 4),    // inside
            (-1, 0, 0, 0),   // "unknown" bounded by min 0 becomes 0 (only while activating)
            (1, 5, 3, 3),    // min > max: max wins
        ];
        for (desired, min, max, want) in rows {
            assert_eq!(
                apply_bounds(desired, min, max),
                want,
                "{desired} in [{min}, {max}]"
            );
        }
    }

    /// A PA that became active at `t0` with one ready pod.
    fn active_pa(cfg: &AutoscalerConfig, t0: SimTime) -> ScaleToZero {
        let mut p = ScaleToZero::new(cfg, t0);
        let a = p.apply(t0, 1, -111.0, 1, None);
        assert_eq!((a.want, a.replicas), (1, Some(1)));
        assert_eq!((p.status(), p.status_since()), (ActiveStatus::Active, t0));
        p
    }

    #[test]
    fn scale_to_zero_waits_a_stable_window_then_for_the_activator_then_the_grace_period() {
        let cfg = AutoscalerConfig::default();
        let mut p = active_pa(&cfg, s(0.0));
        // desired 0 after 10 s active: hold 1 pod for the remaining 50 s
        let a = p.apply(s(10.0), 0, -111.0, 1, None);
        assert_eq!(
            (a.want, a.replicas, a.requeue_after),
            (1, Some(1), Some(secs(50)))
        );
        assert_eq!(p.status(), ActiveStatus::Active);
        // after a stable window: report 0 without applying it; the PA goes inactive and the
        // activator is put in the path
        let a = p.apply(s(60.0), 0, -111.0, 1, None);
        assert_eq!((a.want, a.replicas, a.mode), (0, None, Mode::Proxy));
        assert_eq!(
            (p.status(), p.status_since()),
            (ActiveStatus::Inactive, s(60.0))
        );
        // the activator is not in the path yet: probe again in 1 s
        let a = p.apply(s(61.0), 0, -111.0, 1, None);
        assert_eq!((a.replicas, a.requeue_after), (None, Some(secs(1))));
        // proxying since 62: at 70 inactive for 10 s, proxy for 8 s: wait 22 s more
        let a = p.apply(s(70.0), 0, -111.0, 1, Some(s(62.0)));
        assert_eq!(
            (a.want, a.replicas, a.requeue_after),
            (0, None, Some(secs(22)))
        );
        // at 90: inactive for the 30 s grace period: scale to zero
        let a = p.apply(s(90.0), 0, -111.0, 1, Some(s(62.0)));
        assert_eq!((a.want, a.replicas, a.mode), (0, Some(0), Mode::Proxy));
        assert_eq!(p.status(), ActiveStatus::Inactive);
    }

    #[test]
    fn scale_to_zero_fast_path_retention_and_disabled() {
        let cfg = AutoscalerConfig::default();
        // the activator has been in the path for 40 s (e.g. TBC −1): 5 s after going
        // inactive the fast path scales to zero
        let mut p = active_pa(&cfg, s(0.0));
        p.apply(s(60.0), 0, -1.0, 1, Some(s(20.0)));
        let a = p.apply(s(65.0), 0, -1.0, 1, Some(s(20.0)));
        assert_eq!(a.replicas, Some(0));
        // pod retention 120 s: the last pod stays until inactive for 120 s
        let retain = AutoscalerConfig {
            scale_to_zero_pod_retention_period: secs(120),
            ..cfg.clone()
        };
        let mut p = active_pa(&retain, s(0.0));
        p.apply(s(60.0), 0, -1.0, 1, Some(s(0.0)));
        let a = p.apply(s(90.0), 0, -1.0, 1, Some(s(0.0)));
        assert_eq!((a.replicas, a.requeue_after), (None, Some(secs(90))));
        let a = p.apply(s(180.0), 0, -1.0, 1, Some(s(0.0)));
        assert_eq!(a.replicas, Some(0));
        // enable-scale-to-zero false: desired 0 becomes 1, applied at once
        let never = AutoscalerConfig {
            enable_scale_to_zero: false,
            ..cfg
        };
        let mut p = active_pa(&never, s(0.0));
        let a = p.apply(s(500.0), 0, -111.0, 1, Some(s(0.0)));
        assert_eq!((a.want, a.replicas), (1, Some(1)));
        assert_eq!(p.status(), ActiveStatus::Active);
    }

    #[test]
    fn activation_times_out_after_the_progress_deadline() {
        let cfg = AutoscalerConfig::default();
        let mut p = ScaleToZero::new(&cfg, s(0.0));
        // no data yet: unknown stays unknown while activating, re-checked after 630 s
        let a = p.apply(s(1.0), -1, -111.0, 0, None);
        assert_eq!(
            (a.want, a.replicas, a.requeue_after, a.mode),
            (-1, None, Some(secs(630)), Mode::Proxy)
        );
        assert_eq!(p.status(), ActiveStatus::Activating);
        // desired 0 while activating (no pod ever got ready): held until 630 s have passed
        let a = p.apply(s(630.0), 0, -111.0, 0, None);
        assert_eq!((a.want, a.replicas), (-1, None));
        let a = p.apply(s(631.0), 0, -111.0, 0, None);
        assert_eq!((a.want, a.replicas), (0, Some(0)));
        assert_eq!(p.status(), ActiveStatus::Inactive);
        // once inactive, "no decision" is not applied
        let a = p.apply(s(632.0), -1, -111.0, 0, None);
        assert_eq!((a.want, a.replicas, a.mode), (-1, None, Mode::Proxy));
    }

    #[test]
    fn bounds_and_initial_scale_in_the_reconciler() {
        // min-scale 2: a desired 0 becomes 2 while reachable
        let min2 = AutoscalerConfig {
            min_scale: 2,
            max_scale: 5,
            ..AutoscalerConfig::default()
        };
        let mut p = ScaleToZero::new(&min2, s(0.0));
        let a = p.apply(s(0.0), 0, 0.0, 2, None);
        assert_eq!((a.want, a.replicas), (2, Some(2)));
        assert_eq!(p.status(), ActiveStatus::Active);
        // max-scale 5 caps 9
        assert_eq!(p.apply(s(2.0), 9, 0.0, 2, None).replicas, Some(5));
        // unreachable: min ignored, so 0 goes down the scale-to-zero path (held at 1 while
        // active for less than a stable window)
        p.set_reachable(false);
        let a = p.apply(s(4.0), 0, 0.0, 2, None);
        assert_eq!((a.want, a.replicas), (1, Some(1)));

        // initial scale 3: a minimum until 3 pods have been ready; Active only then
        let init3 = AutoscalerConfig {
            initial_scale: 3,
            ..AutoscalerConfig::default()
        };
        let mut p = ScaleToZero::new(&init3, s(0.0));
        let a = p.apply(s(0.0), 1, 0.0, 1, None);
        assert_eq!(a.replicas, Some(3));
        assert_eq!(p.status(), ActiveStatus::Activating);
        let a = p.apply(s(5.0), 1, 0.0, 3, None);
        assert_eq!(a.replicas, Some(3));
        assert_eq!(
            (p.status(), p.is_scale_target_initialized()),
            (ActiveStatus::Active, true)
        );
        // initialized: desired 1 is applied as is, and the PA stays active with 1 pod
        let a = p.apply(s(7.0), 1, 0.0, 3, None);
        assert_eq!(a.replicas, Some(1));
        p.apply(s(9.0), 1, 0.0, 1, None);
        assert_eq!(p.status(), ActiveStatus::Active);

        // allow-zero-initial-scale with initial scale 0: inactive from the first reconcile
        let zero = AutoscalerConfig {
            initial_scale: 0,
            allow_zero_initial_scale: true,
            ..AutoscalerConfig::default()
        };
        let mut p = ScaleToZero::new(&zero, s(0.0));
        let a = p.apply(s(0.0), -1, -111.0, 0, None);
        assert_eq!(a.want, -1);
        assert_eq!(p.status(), ActiveStatus::Inactive);
    }

    #[test]
    fn the_mode_uses_the_status_from_before_the_reconcile() {
        let cfg = AutoscalerConfig::default();
        let mut p = active_pa(&cfg, s(0.0));
        // deactivation reconcile: want 0 → Proxy, then the PA is inactive
        assert_eq!(p.apply(s(60.0), 0, 50.0, 3, None).mode, Mode::Proxy);
        // the SKS was already in Proxy, so the next deactivation check comes back in 3 s
        let mut q = active_pa(&cfg, s(0.0));
        q.apply(s(30.0), 2, -5.0, 2, None);
        let a = q.apply(s(60.0), 0, -5.0, 2, None);
        assert_eq!(a.requeue_after, Some(PROXY_REQUEUE));
        // an active PA with no decision (want −1) stays in Proxy even with capacity
        // (kpa.go:128-142: only want > 0 && EBC >= 0 serves)
        let mut r = active_pa(&cfg, s(0.0));
        assert_eq!(r.apply(s(2.0), -1, 10.0, 3, None).mode, Mode::Proxy);
        // once it decides, it serves
        assert_eq!(r.apply(s(4.0), 3, 10.0, 3, None).mode, Mode::Serve);
        // the SKS is in Serve, so its switch to Proxy re-enqueues the PA: no extra wait
        let a = r.apply(s(60.0), 0, 10.0, 3, None);
        assert_eq!(
            (a.want, a.mode, a.requeue_after),
            (0, Mode::Proxy, Some(SimDuration::ZERO))
        );
    }

    // ---- properties ----------------------------------------------------------------------

    /// Runs a decider over a load profile (one value per second, ticks every 2 s) with a
    /// constant ready count, returning every valid tick's result.
    fn run_profile(
        cfg: &AutoscalerConfig,
        cc: u32,
        ready: u32,
        initial_ready: u32,
        loads: &[f64],
    ) -> Vec<ScaleResult> {
        let mut d = Decider::new(cfg, cc, initial_ready, SimTime::ZERO);
        let mut out = Vec::new();
        for (t, &v) in loads.iter().enumerate() {
            let now = s(t as f64);
            d.record_concurrency(now, v);
            if t % 2 == 0 {
                let r = d.tick(now, ready, true).result;
                if r.is_valid() {
                    out.push(r);
                }
            }
        }
        out
    }

    fn profile_config() -> impl Strategy<Value = (AutoscalerConfig, u32)> {
        (
            prop_oneof![Just(0u32), 1u32..=20],
            prop_oneof![Just(SimDuration::ZERO), Just(secs(10)), Just(secs(30))],
            prop_oneof![Just(None), (2u32..=5).prop_map(Some)],
            prop_oneof![Just(secs(6)), Just(secs(20)), Just(secs(60))],
        )
            .prop_map(|(cc, delay, act, window)| {
                (
                    AutoscalerConfig {
                        scale_down_delay: delay,
                        activation_scale: act,
                        stable_window: window,
                        ..AutoscalerConfig::default()
                    },
                    cc,
                )
            })
    }

    fn loads() -> impl Strategy<Value = Vec<f64>> {
        proptest::collection::vec(
            prop_oneof![Just(0.0), 0.0f64..50.0, 0.0f64..2000.0, 1e4f64..1e6],
            1..180,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Never more than maxUp = ceil(1000 · max(1, ready)) pods.
        #[test]
        fn desired_never_exceeds_max_scale_up(
            (cfg, cc) in profile_config(),
            ready in 0u32..50,
            loads in loads(),
        ) {
            let max_up = (1000.0 * f64::from(ready.max(1))).ceil() as i32;
            for r in run_profile(&cfg, cc, ready, ready, &loads) {
                prop_assert!(r.desired_pods <= max_up, "{r:?} > {max_up}");
            }
        }

        /// While reachable, never below maxDown = floor(max(1, ready) / 2); 0 only when that is 0.
        #[test]
        fn desired_never_drops_below_max_scale_down(
            (cfg, cc) in profile_config(),
            ready in 0u32..50,
            loads in loads(),
        ) {
            let max_down = (f64::from(ready.max(1)) / 2.0).floor() as i32;
            for r in run_profile(&cfg, cc, ready, 0, &loads) {
                prop_assert!(r.desired_pods >= max_down, "{r:?} < {max_down}");
            }
        }

        /// Consecutive ticks in panic mode never lower the desired count. Without scale-down
        /// delay: its window is applied after the ratchet (upstream too), so a larger decision
        /// from before the panic may legitimately roll out of it during the panic.
        #[test]
        fn no_scale_down_while_panicking(
            (cfg, cc) in profile_config(),
            ready in 0u32..50,
            initial_ready in 0u32..50,
            loads in loads(),
        ) {
            let cfg = AutoscalerConfig { scale_down_delay: SimDuration::ZERO, ..cfg };
            let results = run_profile(&cfg, cc, ready, initial_ready, &loads);
            for pair in results.windows(2) {
                if pair[0].in_panic && pair[1].in_panic {
                    prop_assert!(pair[1].desired_pods >= pair[0].desired_pods, "{pair:?}");
                }
            }
        }

        /// Windows never panic and stay finite on any input; linear averages of non-negative
        /// values stay within [0, max value].
        #[test]
        fn window_averages_are_bounded(
            window_s in 1i64..90,
            writes in proptest::collection::vec((0.0f64..300.0, 0.0f64..1000.0), 0..200),
            at in 0.0f64..400.0,
        ) {
            let mut w = MetricWindow::new(secs(window_s), Aggregation::Linear);
            let mut e = MetricWindow::new(secs(window_s), Aggregation::WeightedExponential);
            for &(t, v) in &writes {
                w.record(s(t), v);
                e.record(s(t), v);
            }
            // a bucket may hold several writes of one second
            let bound = writes.iter().map(|w| w.1).sum::<f64>() + 1e-6;
            if let Some(a) = w.window_average(s(at)) {
                prop_assert!(a.is_finite() && a >= -1e-6 && a <= bound, "{a}");
            }
            if let Some(a) = e.window_average(s(at)) {
                prop_assert!(a.is_finite() && a >= -1e-6 && a <= bound, "{a}");
            }
        }
    }
}
