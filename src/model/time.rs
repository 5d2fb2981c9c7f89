//! Simulated time: integer nanoseconds, never floats in event keys (STYLE habit 1).
//!
//! `SimTime` is an instant since the start of a run, `SimDuration` a span. Both are `i64`
//! nanoseconds, which covers ±292 years; arithmetic saturates instead of wrapping so that a
//! "never" deadline (`SimTime::MAX`) stays never.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub i64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub i64);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    /// A deadline that never comes.
    pub const MAX: SimTime = SimTime(i64::MAX);

    pub fn from_secs_f64(secs: f64) -> Self {
        SimTime((secs * NANOS_PER_SEC as f64).round() as i64)
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// The span since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0).max(0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const MAX: SimDuration = SimDuration(i64::MAX);

    pub const fn from_secs(secs: i64) -> Self {
        SimDuration(secs.saturating_mul(NANOS_PER_SEC))
    }

    pub const fn from_millis(ms: i64) -> Self {
        SimDuration(ms.saturating_mul(1_000_000))
    }

    pub fn from_secs_f64(secs: f64) -> Self {
        let ns = secs * NANOS_PER_SEC as f64;
        // Sampled durations are non-negative: adding a half and truncating rounds them without
        // a libm call (this sits on the simulator's per-request path).
        if ns >= 0.0 {
            SimDuration((ns + 0.5) as i64)
        } else {
            SimDuration(ns.round() as i64)
        }
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, other: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(other.0))
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for SimTime {
    /// Seconds with up to 9 decimals, no trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_secs(f, self.0)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_secs(f, self.0)?;
        f.write_str("s")
    }
}

fn write_secs(f: &mut fmt::Formatter<'_>, ns: i64) -> fmt::Result {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    let (secs, frac) = (abs / NANOS_PER_SEC as u64, abs % NANOS_PER_SEC as u64);
    if frac == 0 {
        write!(f, "{sign}{secs}")
    } else {
        let digits = format!("{frac:09}");
        write!(f, "{sign}{secs}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_formats() {
        assert_eq!(SimTime::MAX + SimDuration::from_secs(1), SimTime::MAX);
        assert_eq!(SimTime(5).since(SimTime(9)), SimDuration::ZERO);
        assert_eq!(SimTime(1_500_000_000).to_string(), "1.5");
        assert_eq!(SimTime(3_000_000_000).to_string(), "3");
        assert_eq!(SimTime(1).to_string(), "0.000000001");
        assert_eq!(SimDuration::from_millis(250).to_string(), "0.25s");
        assert_eq!(
            SimTime::from_secs_f64(0.1) - SimTime::ZERO,
            SimDuration::from_millis(100)
        );
    }
}
