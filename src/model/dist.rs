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
    /// A histogram's cumulative buckets (e.g. a Prometheus `_bucket` series), interpolated the
    /// way Prometheus' `histogram_quantile` reads them: within a bucket the mass is spread
    /// evenly between the previous upper bound (0 for the first) and its own; the share above
    /// the highest finite bound (the `+Inf` bucket) sits at that bound.
    Histogram {
        /// Finite upper bounds in seconds, strictly increasing, >= 0.
        upper_s: Vec<f64>,
        /// `cumulative[i]`: the share of values <= `upper_s[i]`; non-decreasing, the last <= 1
        /// (1 minus the last is the `+Inf` bucket's own share).
        cumulative: Vec<f64>,
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

    /// A histogram's buckets as `(upper bound, cumulative count)`, in order, `None` for the
    /// `+Inf` bound (only last). Counts may have any scale (they are divided by the total);
    /// they must be non-negative and non-decreasing, and some finite bucket must hold values.
    pub fn histogram(buckets: &[(Option<SimDuration>, f64)]) -> Result<Self, DistError> {
        let mut upper_s = Vec::with_capacity(buckets.len());
        let mut counts = Vec::with_capacity(buckets.len());
        let mut total = 0.0_f64;
        for (i, (le, count)) in buckets.iter().enumerate() {
            if !count.is_finite() || *count < 0.0 {
                return Err(DistError(format!(
                    "bucket {i}: count {count} is not a finite number >= 0"
                )));
            }
            if *count < total {
                return Err(DistError(format!(
                    "bucket {i}: cumulative count {count} is below the previous bucket's {total}; counts are cumulative (non-decreasing)"
                )));
            }
            total = *count;
            match le {
                Some(le) => {
                    if *le < SimDuration::ZERO {
                        return Err(DistError(format!("bucket {i}: le {le} is negative")));
                    }
                    if upper_s.last().is_some_and(|prev| le.as_secs_f64() <= *prev) {
                        return Err(DistError(format!(
                            "bucket {i}: le {le} is not above the previous bucket's; bounds must increase"
                        )));
                    }
                    upper_s.push(le.as_secs_f64());
                    counts.push(*count);
                }
                None if i + 1 != buckets.len() => {
                    return Err(DistError(format!(
                        "bucket {i}: le +Inf must be the last bucket"
                    )));
                }
                None => {}
            }
        }
        if upper_s.is_empty() || total <= 0.0 {
            return Err(DistError(
                "histogram holds no values (every count is 0, or no finite bucket)".to_string(),
            ));
        }
        let cumulative = counts.iter().map(|c| c / total).collect();
        Ok(Dist::Histogram {
            upper_s,
            cumulative,
        })
    }

    /// The `q` quantile (0 <= q <= 1) of a histogram, as Prometheus' `histogram_quantile`
    /// computes it (promql/quantile.go `bucketQuantile`: the first bucket whose cumulative
    /// count reaches the rank, linear within it, the highest finite bound for the `+Inf`
    /// bucket). `None` for the other distributions.
    pub fn histogram_quantile(&self, q: f64) -> Option<SimDuration> {
        match self {
            Dist::Histogram {
                upper_s,
                cumulative,
            } => Some(SimDuration::from_secs_f64(histogram_quantile_s(
                upper_s, cumulative, q,
            ))),
            _ => None,
        }
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
            Dist::Histogram {
                upper_s,
                cumulative,
            } => {
                let u: f64 = rand::RngExt::random(rng);
                SimDuration::from_secs_f64(histogram_quantile_s(upper_s, cumulative, u))
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
            Dist::Histogram {
                upper_s,
                cumulative,
            } => {
                let mut mean = 0.0;
                let (mut lo, mut below) = (0.0, 0.0);
                for (hi, cum) in upper_s.iter().zip(cumulative) {
                    mean += (cum - below) * (lo + hi) / 2.0;
                    (lo, below) = (*hi, *cum);
                }
                // The +Inf bucket's share sits at the highest finite bound.
                mean + (1.0 - below) * lo
            }
        }
    }
}

/// `histogram_quantile` over normalised cumulative shares (see [`Dist::histogram_quantile`]).
fn histogram_quantile_s(upper_s: &[f64], cumulative: &[f64], q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0);
    let below = |b: usize| if b == 0 { 0.0 } else { cumulative[b - 1] };
    // The first bucket whose cumulative share reaches q; for q = 0 the first non-empty one (an
    // empty bucket has nothing to interpolate).
    let found = if q > 0.0 {
        cumulative.iter().position(|c| *c >= q)
    } else {
        (0..cumulative.len()).find(|b| cumulative[*b] > below(*b))
    };
    let Some(b) = found else {
        // Beyond the last finite bucket: the +Inf bucket.
        return upper_s.last().copied().unwrap_or(0.0);
    };
    let start = if b == 0 { 0.0 } else { upper_s[b - 1] };
    let below = below(b);
    let count = cumulative[b] - below;
    if count <= 0.0 {
        return upper_s[b];
    }
    start + (upper_s[b] - start) * ((q - below).max(0.0) / count)
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

    fn hist(buckets: &[(Option<f64>, f64)]) -> Result<Dist, DistError> {
        let b: Vec<_> = buckets
            .iter()
            .map(|(le, c)| (le.map(SimDuration::from_secs_f64), *c))
            .collect();
        Dist::histogram(&b)
    }

    #[test]
    fn histogram_quantiles_interpolate_as_prometheus_does() {
        // 50 values: 10 <= 0.1 s, 20 in (0.1, 0.2], 10 in (0.2, 0.5], 10 above 0.5 s.
        let h = hist(&[
            (Some(0.1), 10.0),
            (Some(0.2), 30.0),
            (Some(0.5), 40.0),
            (None, 50.0),
        ])
        .expect("valid");
        // A bucket with nothing in it between two that hold values.
        let gap = hist(&[(Some(0.1), 10.0), (Some(0.2), 10.0), (Some(0.3), 20.0)]).expect("valid");
        // (histogram, q, expected seconds): hand-computed with promql's bucketQuantile
        let cases = [
            // rank 25 falls in (0.1, 0.2]: 0.1 + 0.1 × 15/20
            (&h, 0.5, 0.175),
            // rank 5 in the first bucket, which starts at 0
            (&h, 0.1, 0.05),
            // a rank equal to a bucket's cumulative count is that bucket's upper bound
            (&h, 0.2, 0.1),
            (&h, 0.8, 0.5),
            // the +Inf bucket answers the highest finite bound
            (&h, 0.9, 0.5),
            (&h, 1.0, 0.5),
            // q = 0: the start of the first bucket
            (&h, 0.0, 0.0),
            // rank 10 is reached by the first bucket, the empty one is skipped
            (&gap, 0.5, 0.1),
            // rank 15 in (0.2, 0.3]
            (&gap, 0.75, 0.25),
            // q = 0 with an empty first bucket: the first non-empty one's start
            (
                &hist(&[(Some(0.1), 0.0), (Some(0.2), 4.0)]).expect("valid"),
                0.0,
                0.1,
            ),
        ];
        for (d, q, want) in cases {
            let got = d.histogram_quantile(q).expect("a histogram").as_secs_f64();
            assert!(
                (got - want).abs() < 1e-9,
                "q {q}: {got} vs {want} for {d:?}"
            );
        }
        assert_eq!(
            Dist::constant(ms(1))
                .expect("valid")
                .histogram_quantile(0.5),
            None
        );
    }

    #[test]
    fn histogram_samples_follow_its_quantiles_and_mean() {
        let h = hist(&[
            (Some(0.1), 10.0),
            (Some(0.2), 30.0),
            (Some(0.5), 40.0),
            (None, 50.0),
        ])
        .expect("valid");
        // means of the buckets' shares: 0.2 × 0.05 + 0.4 × 0.15 + 0.2 × 0.35 + 0.2 × 0.5
        assert!((h.mean_secs() - 0.24).abs() < 1e-12, "{}", h.mean_secs());
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let n = 100_000;
        let mut xs: Vec<f64> = (0..n).map(|_| h.sample(&mut rng).as_secs_f64()).collect();
        xs.sort_by(f64::total_cmp);
        for q in [0.1, 0.3, 0.5, 0.7] {
            let want = h.histogram_quantile(q).expect("histogram").as_secs_f64();
            let got = xs[(q * n as f64) as usize];
            assert!((got - want).abs() < 0.01, "q {q}: sampled {got} vs {want}");
        }
        // a fifth of the values are the +Inf bucket's, at 0.5 s exactly
        let at_top = xs.iter().filter(|x| (**x - 0.5).abs() < 1e-9).count() as f64 / n as f64;
        assert!((at_top - 0.2).abs() < 0.01, "{at_top}");
        let mean = xs.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.24).abs() < 0.005, "{mean}");
    }

    #[test]
    fn bad_histograms_are_errors() {
        // (buckets, part of the message)
        type Buckets<'a> = &'a [(Option<f64>, f64)];
        let cases: [(Buckets, &str); 6] = [
            // nothing at all
            (&[], "holds no values"),
            // all counts zero
            (&[(Some(0.1), 0.0), (None, 0.0)], "holds no values"),
            // counts must be cumulative
            (&[(Some(0.1), 5.0), (Some(0.2), 3.0)], "non-decreasing"),
            // bounds must increase
            (
                &[(Some(0.2), 1.0), (Some(0.1), 2.0)],
                "bounds must increase",
            ),
            // +Inf only last
            (&[(None, 1.0), (Some(0.1), 2.0)], "+Inf must be the last"),
            // a count that is not a number
            (&[(Some(0.1), f64::NAN)], "not a finite number"),
        ];
        for (buckets, fragment) in cases {
            let e = hist(buckets).expect_err("invalid");
            assert!(e.0.contains(fragment), "{buckets:?}: {e}");
        }
    }
}
