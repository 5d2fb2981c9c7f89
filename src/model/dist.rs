//! Duration distributions: service times, pod start-up delays, ingress programming delays.
//!
//! Parameters are validated at construction (`Dist::*` constructors return errors naming what is
//! allowed); sampling never fails and never returns a negative duration.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};

use super::time::SimDuration;

/// The two-sided 99th-percentile normal quantile, for lognormal-by-p99.
const Z99: f64 = 2.326_347_874_040_841;

/// A distribution of non-negative durations.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Constant(SimDuration),
    Exponential {
        mean: SimDuration,
        exp: Exp<f64>,
    },
    /// Parameterised the way operators know their services: by mean and p99.
    LogNormal {
        mean: SimDuration,
        p99: SimDuration,
        dist: LogNormal<f64>,
    },
    Uniform {
        min: SimDuration,
        max: SimDuration,
    },
    /// Resampling of observed values (e.g. from a latency CSV), sorted.
    Empirical {
        samples: Vec<SimDuration>,
    },
}

/// A distribution's parameters are not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DistError(pub String);

impl Dist {
    pub fn constant(value: SimDuration) -> Result<Self, DistError> {
        if value < SimDuration::ZERO {
            return Err(DistError(format!(
                "constant {value} is negative; allowed: >= 0s"
            )));
        }
        Ok(Dist::Constant(value))
    }

    pub fn exponential(mean: SimDuration) -> Result<Self, DistError> {
        if mean <= SimDuration::ZERO {
            return Err(DistError(format!("exponential mean {mean} must be > 0s")));
        }
        let exp = Exp::new(1.0 / mean.as_secs_f64())
            .map_err(|e| DistError(format!("exponential mean {mean}: {e}")))?;
        Ok(Dist::Exponential { mean, exp })
    }

    /// Lognormal with the given mean and 99th percentile. Solving
    /// `mean = exp(mu + s²/2)`, `p99 = exp(mu + z·s)` gives `s = z − sqrt(z² − 2·ln(p99/mean))`,
    /// which exists when `mean < p99 <= mean·exp(z²/2)` (about 14.97 × mean).
    pub fn lognormal(mean: SimDuration, p99: SimDuration) -> Result<Self, DistError> {
        if mean <= SimDuration::ZERO || p99 <= mean {
            return Err(DistError(format!(
                "lognormal needs 0 < mean < p99 (got mean {mean}, p99 {p99})"
            )));
        }
        let ratio = p99.as_secs_f64() / mean.as_secs_f64();
        let disc = Z99 * Z99 - 2.0 * ratio.ln();
        if disc < 0.0 {
            return Err(DistError(format!(
                "lognormal p99 {p99} is more than {:.2} × the mean {mean}; no lognormal has that shape",
                (Z99 * Z99 / 2.0).exp()
            )));
        }
        let sigma = Z99 - disc.sqrt();
        let mu = mean.as_secs_f64().ln() - sigma * sigma / 2.0;
        let dist = LogNormal::new(mu, sigma).map_err(|e| DistError(format!("lognormal: {e}")))?;
        Ok(Dist::LogNormal { mean, p99, dist })
    }

    pub fn uniform(min: SimDuration, max: SimDuration) -> Result<Self, DistError> {
        if min < SimDuration::ZERO || max < min {
            return Err(DistError(format!(
                "uniform needs 0s <= min <= max (got min {min}, max {max})"
            )));
        }
        Ok(Dist::Uniform { min, max })
    }

    pub fn empirical(mut samples: Vec<SimDuration>) -> Result<Self, DistError> {
        if samples.is_empty() {
            return Err(DistError(
                "empirical distribution has no samples".to_string(),
            ));
        }
        if let Some(bad) = samples.iter().find(|s| **s < SimDuration::ZERO) {
            return Err(DistError(format!("empirical sample {bad} is negative")));
        }
        samples.sort();
        Ok(Dist::Empirical { samples })
    }

    /// Draws one duration.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> SimDuration {
        match self {
            Dist::Constant(v) => *v,
            Dist::Exponential { exp, .. } => SimDuration::from_secs_f64(exp.sample(rng)),
            Dist::LogNormal { dist, .. } => SimDuration::from_secs_f64(dist.sample(rng)),
            Dist::Uniform { min, max } => {
                if min == max {
                    *min
                } else {
                    SimDuration(rand::RngExt::random_range(rng, min.0..=max.0))
                }
            }
            Dist::Empirical { samples } => {
                samples[rand::RngExt::random_range(rng, 0..samples.len())]
            }
        }
    }

    /// The mean, in seconds.
    pub fn mean_secs(&self) -> f64 {
        match self {
            Dist::Constant(v) => v.as_secs_f64(),
            Dist::Exponential { mean, .. } | Dist::LogNormal { mean, .. } => mean.as_secs_f64(),
            Dist::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
            Dist::Empirical { samples } => {
                samples.iter().map(|s| s.as_secs_f64()).sum::<f64>() / samples.len() as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn ms(v: i64) -> SimDuration {
        SimDuration::from_millis(v)
    }

    fn sample_stats(d: &Dist, n: usize) -> (f64, f64) {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let mut xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).collect();
        xs.sort_by(f64::total_cmp);
        let mean = xs.iter().sum::<f64>() / n as f64;
        (mean, xs[(n as f64 * 0.99) as usize])
    }

    #[test]
    fn sample_means_and_quantiles_match_parameters() {
        // (distribution, expected mean s, expected p99 s or NaN when not checked, tolerance)
        let cases = [
            (Dist::constant(ms(100)).expect("valid"), 0.1, 0.1, 1e-12),
            (
                Dist::exponential(ms(10)).expect("valid"),
                0.01,
                0.01 * 100f64.ln(),
                0.03,
            ),
            (
                Dist::lognormal(ms(100), ms(400)).expect("valid"),
                0.1,
                0.4,
                0.03,
            ),
            (
                Dist::uniform(ms(1000), ms(3000)).expect("valid"),
                2.0,
                2.98,
                0.02,
            ),
        ];
        for (d, mean, p99, tol) in cases {
            let (m, q) = sample_stats(&d, 200_000);
            assert!((m - mean).abs() <= tol * mean, "{d:?}: mean {m} vs {mean}");
            assert!(
                (q - p99).abs() <= 2.0 * tol * p99 + 1e-12,
                "{d:?}: p99 {q} vs {p99}"
            );
            assert!((d.mean_secs() - mean).abs() < 1e-9);
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Dist::exponential(ms(0)).is_err());
        assert!(Dist::lognormal(ms(100), ms(100)).is_err());
        assert!(Dist::lognormal(ms(100), ms(2000))
            .expect_err("too heavy")
            .0
            .contains("14.97"));
        assert!(Dist::uniform(ms(5), ms(1)).is_err());
        assert!(Dist::empirical(vec![]).is_err());
        assert!(Dist::constant(SimDuration(-1)).is_err());
    }

    #[test]
    fn empirical_resamples_only_observed_values() {
        let d = Dist::empirical(vec![ms(30), ms(10), ms(20)]).expect("valid");
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        for _ in 0..100 {
            assert!([ms(10), ms(20), ms(30)].contains(&d.sample(&mut rng)));
        }
        assert!((d.mean_secs() - 0.02).abs() < 1e-12);
    }
}
