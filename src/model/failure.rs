//! Revisions that fail (issue 12 §3): the failure settings in force for a revision and the
//! decisions they make, per request and per pod, for the simulator and the live mode alike.
//!
//! Owns: `FailureSpec` (what a revision's `failure:` block says, validated), the per-request
//! decisions (does the application answer with an error, how long does it work), the per-pod
//! ones (when does a container crash, does a container start at all) and Kubernetes' restart
//! back-off (`RestartBackOff`).
//!
//! Must not: schedule, hold requests or pods, or read a clock. Randomness comes from the
//! caller's dedicated failure streams (`Stream::FailureApp`, `FailureLatency`, `FailurePod`),
//! so a failure setting never shifts the arrivals, routing or service-time draws of a run
//! (common random numbers): the same seed with `error_rate: 0.1` and `0.2` fails a superset of
//! the same requests.
//!
//! Knative behaviour this relies on (datapath.md A.2, A.3, A.6; serving `pkg/queue`,
//! `pkg/activator/handler`):
//! - A 5xx from the application goes back through the queue-proxy and the activator unchanged:
//!   the activator only retries its own dial to the pod, never an application's response
//!   (serving `pkg/activator/handler/handler.go` proxies with `httputil.ReverseProxy`, whose
//!   response is copied as is; `pkg/queue/sharedmain` likewise).
//! - When nothing listens on the user port, the queue-proxy's reverse proxy fails to dial and
//!   answers 502 Bad Gateway (`pkg/queue/sharedmain/handlers.go` uses
//!   `pkghttp.NewHeaderPruningReverseProxy`, whose `ErrorHandler` writes 502). The
//!   queue-proxy's own aggressive TCP readiness probe of the user port normally keeps such a
//!   pod out of the endpoints; knative/serving#16649 is the case where the user container's
//!   readiness passes before the application accepts connections (`ready_before_serving`).
//! - A crashed container takes down what its queue-proxy holds for it (in flight and queued:
//!   502), its pod leaves the endpoints, and the kubelet restarts the container with
//!   CrashLoopBackOff: 10 s, doubling, capped at 300 s, reset once a container has run for
//!   10 min (kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts;
//!   kubelet `pkg/kubelet/kubelet.go` `backOffPeriod = 10s`, `MaxContainerBackOff = 300s`).

use rand::{Rng, RngExt};

use super::dist::Dist;
use super::time::{SimDuration, SimTime};

/// The status an application error carries by default.
pub const DEFAULT_ERROR_STATUS: u16 = 500;

/// A slow regression: the service time becomes `base × multiplier + added`.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyFault {
    /// >= 0; 1 leaves the service time as it is.
    pub multiplier: f64,
    /// Drawn per request and added, if set.
    pub added: Option<Dist>,
}

/// A revision's failure settings; `Default` is a healthy revision.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureSpec {
    /// Fraction (0 to 1) of requests the application answers with `error_status`.
    pub error_rate: f64,
    /// The status of those answers (500 to 599).
    pub error_status: u16,
    pub latency: Option<LatencyFault>,
    /// Every container start fails: the pod never becomes Ready and restarts with back-off.
    pub crash_loop: bool,
    /// A pod reports Ready this long before its application accepts connections
    /// (knative/serving#16649); requests reaching it in between get 502.
    pub ready_before_serving: SimDuration,
    /// How long a container serves before it crashes, drawn per container start.
    pub crash_after: Option<Dist>,
}

impl Default for FailureSpec {
    fn default() -> Self {
        FailureSpec {
            error_rate: 0.0,
            error_status: DEFAULT_ERROR_STATUS,
            latency: None,
            crash_loop: false,
            ready_before_serving: SimDuration::ZERO,
            crash_after: None,
        }
    }
}

/// What the application does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppAnswer {
    /// It serves it.
    Serve,
    /// It answers with this 5xx status.
    Error(u16),
}

impl FailureSpec {
    /// No failure at all (the error status does not matter then): the callers skip every draw.
    pub fn is_healthy(&self) -> bool {
        // Field by field, without building a default: it runs once per request.
        self.error_rate <= 0.0
            && self.latency.is_none()
            && !self.crash_loop
            && self.ready_before_serving <= SimDuration::ZERO
            && self.crash_after.is_none()
    }

    /// The application's answer to one request: an error with probability `error_rate`. One
    /// uniform draw per request whenever the rate is above zero, so two rates on the same seed
    /// fail nested sets of requests.
    pub fn answer(&self, rng: &mut impl Rng) -> AppAnswer {
        if self.error_rate <= 0.0 {
            return AppAnswer::Serve;
        }
        let u: f64 = rng.random();
        if u < self.error_rate {
            AppAnswer::Error(self.error_status)
        } else {
            AppAnswer::Serve
        }
    }

    /// The service time under the latency fault: `base × multiplier + added` (one draw from
    /// `rng` when `added` is set).
    pub fn service_time(&self, base: SimDuration, rng: &mut impl Rng) -> SimDuration {
        let Some(l) = &self.latency else {
            return base;
        };
        let scaled = if l.multiplier == 1.0 {
            base
        } else {
            SimDuration::from_secs_f64(base.as_secs_f64() * l.multiplier)
        };
        match &l.added {
            Some(d) => scaled + d.sample(rng),
            None => scaled,
        }
    }

    /// When a container that starts serving at `serving_from` crashes, if it does.
    pub fn crash_at(&self, serving_from: SimTime, rng: &mut impl Rng) -> Option<SimTime> {
        self.crash_after
            .as_ref()
            .map(|d| serving_from + d.sample(rng))
    }

    /// When the application of a container whose readiness passes at `ready_at` accepts
    /// connections.
    pub fn serving_from(&self, ready_at: SimTime) -> SimTime {
        ready_at + self.ready_before_serving
    }
}

/// One pod's container life under a failing revision, kept alike by the simulator and the live
/// mode: when the running container is due to crash, when it (re)started (for the back-off's
/// reset), the kubelet's back-off, and an incarnation, bumped at each crash and restart, that
/// makes an event scheduled for an earlier container stale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContainerLife {
    crash_at: Option<SimTime>,
    started: SimTime,
    backoff: RestartBackOff,
    incarnation: u32,
}

impl ContainerLife {
    /// A pod whose first container starts at `now`.
    pub fn new(now: SimTime) -> Self {
        ContainerLife {
            started: now,
            ..Default::default()
        }
    }

    /// The running container crashes at `at` (`None`: it does not); returns `at` for the
    /// caller to schedule.
    pub fn arm(&mut self, at: Option<SimTime>) -> Option<SimTime> {
        self.crash_at = at;
        at
    }

    /// Whether a crash event at `now` is still the one armed.
    pub fn crash_due(&self, now: SimTime) -> bool {
        self.crash_at == Some(now)
    }

    /// Whether an event scheduled for `incarnation` is still current.
    pub fn is_current(&self, incarnation: u32) -> bool {
        self.incarnation == incarnation
    }

    /// The incarnation events scheduled now are for.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The container crashed at `now`: disarms it and returns the new incarnation (for its
    /// endpoint removal and restart events) and the kubelet's delay before the restart.
    pub fn crashed(&mut self, now: SimTime) -> (u32, SimDuration) {
        self.crash_at = None;
        self.incarnation = self.incarnation.wrapping_add(1);
        (self.incarnation, self.backoff.crashed(self.started, now))
    }

    /// The kubelet restarted the container at `now`.
    pub fn restarted(&mut self, now: SimTime) {
        self.incarnation = self.incarnation.wrapping_add(1);
        self.started = now;
    }
}

/// Kubernetes' CrashLoopBackOff for one pod's container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartBackOff {
    /// Restarts since the back-off was last reset.
    restarts: u32,
}

impl RestartBackOff {
    /// The first restart's delay (kubelet `backOffPeriod`).
    pub const INITIAL: SimDuration = SimDuration::from_secs(10);
    /// The cap (kubelet `MaxContainerBackOff`).
    pub const MAX: SimDuration = SimDuration::from_secs(300);
    /// A container that ran this long resets the back-off.
    pub const RESET_AFTER: SimDuration = SimDuration::from_secs(600);

    /// The container, started at `started`, exited at `now`: the delay before the kubelet
    /// starts it again (10 s, 20 s, 40 s, ... 300 s; back to 10 s after 10 min of running).
    pub fn crashed(&mut self, started: SimTime, now: SimTime) -> SimDuration {
        if now.since(started) >= Self::RESET_AFTER {
            self.restarts = 0;
        }
        let doublings = self.restarts.min(16);
        self.restarts = self.restarts.saturating_add(1);
        SimDuration(
            Self::INITIAL
                .as_nanos()
                .saturating_mul(1 << doublings)
                .min(Self::MAX.as_nanos()),
        )
    }

    /// Restarts since the last reset.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::{stream, Stream};
    use proptest::prelude::*;

    fn secs(s: i64) -> SimDuration {
        SimDuration::from_secs(s)
    }

    #[test]
    fn a_container_life_makes_earlier_events_stale_and_backs_off() {
        let s = |secs: i64| SimTime::ZERO + SimDuration::from_secs(secs);
        let mut life = ContainerLife::new(s(0));
        assert_eq!(life.arm(Some(s(5))), Some(s(5)));
        assert!(!life.crash_due(s(4)), "not the armed instant");
        assert!(life.crash_due(s(5)));
        let before = life.incarnation();
        // crashed after 5 s of running: the first back-off step
        let (crashed, delay) = life.crashed(s(5));
        assert_ne!(crashed, before);
        assert_eq!(delay, SimDuration::from_secs(10));
        assert!(!life.crash_due(s(5)), "disarmed");
        assert!(
            !life.is_current(before),
            "events of the earlier container are stale"
        );
        assert!(life.is_current(crashed));
        life.restarted(s(15));
        assert!(
            !life.is_current(crashed),
            "a restart makes the crash's removal stale"
        );
        // crashes again 1 s after the restart: the back-off doubles
        assert_eq!(life.crashed(s(16)).1, SimDuration::from_secs(20));
        // a container that ran 10 min resets it
        life.restarted(s(36));
        assert_eq!(life.crashed(s(636)).1, SimDuration::from_secs(10));
    }

    #[test]
    fn back_off_doubles_from_10s_to_the_5min_cap_and_resets_after_10min() {
        let t = |s: i64| SimTime::ZERO + secs(s);
        // (started, crashed, delay): the kubelet's sequence for one container.
        let table = [
            // Crashes right after starting: 10, 20, 40, 80, 160, then the 300 s cap.
            (0, 1, 10),
            (11, 12, 20),
            (32, 33, 40),
            (73, 74, 80),
            (154, 155, 160),
            (315, 316, 300),
            (616, 617, 300),
            // It ran 10 min before crashing: the back-off starts over.
            (917, 1517, 10),
            (1527, 1528, 20),
        ];
        let mut b = RestartBackOff::default();
        for (started, crashed, want) in table {
            assert_eq!(
                b.crashed(t(started), t(crashed)),
                secs(want),
                "crash at {crashed}"
            );
        }
        assert_eq!(b.restarts(), 2);
    }

    #[test]
    fn latency_fault_scales_and_adds() {
        let base = SimDuration::from_millis(100);
        let mut rng = stream(1, 0, Stream::FailureLatency, 0);
        let table = [
            // No fault: as is.
            (None, 100),
            // Three times slower.
            (
                Some(LatencyFault {
                    multiplier: 3.0,
                    added: None,
                }),
                300,
            ),
            // 50 ms more.
            (
                Some(LatencyFault {
                    multiplier: 1.0,
                    added: Some(Dist::constant(SimDuration::from_millis(50)).expect("valid")),
                }),
                150,
            ),
            // Both.
            (
                Some(LatencyFault {
                    multiplier: 2.0,
                    added: Some(Dist::constant(SimDuration::from_millis(50)).expect("valid")),
                }),
                250,
            ),
        ];
        for (latency, want_ms) in table {
            let f = FailureSpec {
                latency: latency.clone(),
                ..Default::default()
            };
            assert_eq!(
                f.service_time(base, &mut rng),
                SimDuration::from_millis(want_ms),
                "{latency:?}"
            );
        }
    }

    #[test]
    fn healthy_is_the_default_only() {
        assert!(FailureSpec::default().is_healthy());
        // (a setting, healthy): each failure kind on its own is not healthy.
        let table = [
            (
                FailureSpec {
                    error_status: 503,
                    ..Default::default()
                },
                true,
            ),
            (
                FailureSpec {
                    error_rate: 0.1,
                    ..Default::default()
                },
                false,
            ),
            (
                FailureSpec {
                    crash_loop: true,
                    ..Default::default()
                },
                false,
            ),
            (
                FailureSpec {
                    ready_before_serving: secs(1),
                    ..Default::default()
                },
                false,
            ),
            (
                FailureSpec {
                    crash_after: Some(Dist::constant(secs(1)).expect("valid")),
                    ..Default::default()
                },
                false,
            ),
            (
                FailureSpec {
                    latency: Some(LatencyFault {
                        multiplier: 1.0,
                        added: None,
                    }),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (f, healthy) in table {
            assert_eq!(f.is_healthy(), healthy, "{f:?}");
        }
        let mut rng = stream(1, 0, Stream::FailureApp, 0);
        assert_eq!(
            FailureSpec::default().answer(&mut rng),
            AppAnswer::Serve,
            "rate 0 never fails"
        );
    }

    proptest! {
        /// The error fraction is within a binomial bound of the rate, and a higher rate on the
        /// same stream fails every request a lower one fails (common random numbers).
        #[test]
        fn error_rate_is_binomial_and_nested(seed in 0u64..1000, low in 0.0f64..0.5, extra in 0.0f64..0.5) {
            let n = 4000;
            let high = low + extra;
            let spec = |rate: f64| FailureSpec { error_rate: rate, error_status: 503, ..Default::default() };
            let draw = |rate: f64| -> Vec<bool> {
                let mut rng = stream(seed, 0, Stream::FailureApp, 0);
                (0..n).map(|_| spec(rate).answer(&mut rng) == AppAnswer::Error(503)).collect()
            };
            let (a, b) = (draw(low), draw(high));
            for (x, y) in a.iter().zip(&b) {
                prop_assert!(!x || *y, "a request failed at {low} but not at {high}");
            }
            let k = b.iter().filter(|&&x| x).count() as f64;
            let sd = (n as f64 * high * (1.0 - high)).sqrt();
            prop_assert!((k - n as f64 * high).abs() <= 5.0 * sd + 1.0, "{k} errors of {n} at {high}");
        }
    }
}
