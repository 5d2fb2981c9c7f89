//! The live mode's clock: wall time since the run started, scaled into scenario time.
//!
//! With `--time-scale X`, X seconds of scenario time pass per wall second: arrival times,
//! service times, start-up delays and timeouts from the scenario are divided by X before they
//! are slept, and every measurement is multiplied back. This is the one place in the crate that
//! reads the wall clock (clippy.toml bans `Instant::now` elsewhere).

use std::time::{Duration, Instant};

use crate::model::time::{SimDuration, SimTime};

/// Scenario time measured on the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    scale: f64,
}

impl Clock {
    /// A clock whose time 0 is now. `scale` must be positive and finite (checked by callers).
    #[allow(clippy::disallowed_methods)] // the live mode is the one user of the wall clock
    pub fn start(scale: f64) -> Self {
        debug_assert!(scale.is_finite() && scale > 0.0);
        Clock {
            start: Instant::now(),
            scale,
        }
    }

    /// The wall-clock instant now.
    #[allow(clippy::disallowed_methods)] // the live mode is the one user of the wall clock
    pub fn wall_now() -> Instant {
        Instant::now()
    }

    /// The wall clock now as Unix seconds (for instants the user gives as calendar times,
    /// such as `load --rollout-start`).
    #[allow(clippy::disallowed_methods)] // the live mode is the one user of the wall clock
    pub fn unix_now_s() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// Scenario time now.
    pub fn now(&self) -> SimTime {
        self.at(Self::wall_now())
    }

    /// The scenario time of a wall-clock instant (0 before the start).
    pub fn at(&self, instant: Instant) -> SimTime {
        let wall = instant.saturating_duration_since(self.start);
        SimTime((wall.as_nanos() as f64 * self.scale) as i64)
    }

    /// The wall-clock instant of scenario time `t`.
    pub fn instant(&self, t: SimTime) -> Instant {
        self.start + self.wall(SimDuration(t.as_nanos().max(0)))
    }

    /// A scenario duration as wall time.
    pub fn wall(&self, d: SimDuration) -> Duration {
        Duration::from_nanos((d.as_nanos().max(0) as f64 / self.scale) as u64)
    }

    /// Wall seconds since the start.
    pub fn wall_elapsed_s(&self) -> f64 {
        Self::wall_now()
            .saturating_duration_since(self.start)
            .as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_time_round_trips() {
        let c = Clock::start(10.0);
        // 10 s of scenario time is 1 s of wall time.
        assert_eq!(c.wall(SimDuration::from_secs(10)), Duration::from_secs(1));
        let t = SimTime::ZERO + SimDuration::from_secs(30);
        let back = c.at(c.instant(t));
        assert!((back.as_nanos() - t.as_nanos()).abs() < 100, "{back:?}");
        assert!(c.now() >= SimTime::ZERO);
    }
}
