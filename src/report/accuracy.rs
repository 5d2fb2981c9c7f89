//! Split accuracy: how closely the observed share of each destination follows its programmed
//! share, prefix by prefix, and whether the final share is within binomial noise; and the
//! binomial statistics it rests on, which `diff` uses too (normal quantiles, the standard error
//! of a share, the two-proportion test's standard error).

/// The two-sided 95% normal quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The two-sided 99.9% normal quantile (Φ⁻¹(0.9995)).
pub const Z999: f64 = 3.290_526_731_491_925_5;

/// The standard error `sqrt(p(1−p)/n)` of the share of `n` independent picks with probability
/// `p`. For `n == 0` there is no share: infinite.
pub fn binomial_se(p: f64, n: u64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    (p * (1.0 - p) / n as f64).sqrt()
}

/// The standard error of the difference of two shares `x1/n1` and `x2/n2` under the hypothesis
/// that both come from one probability, estimated by the pooled share `p = (x1+x2)/(n1+n2)`:
/// `sqrt(p(1−p)(1/n1 + 1/n2))` (the two-proportion z-test). Infinite when `n1` or `n2` is 0.
pub fn two_proportion_se(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return f64::INFINITY;
    }
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    binomial_se(pooled, n1).hypot(binomial_se(pooled, n2))
}

/// The binomial 95% band of the share of `n` independent picks with probability `p`:
/// `p ± z·sqrt(p(1−p)/n)`, clamped to [0, 1]. For `n == 0` the band is all of [0, 1].
pub fn binomial_band(p: f64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let half = Z95 * binomial_se(p, n);
    ((p - half).max(0.0), (p + half).min(1.0))
}

/// The standard normal quantile Φ⁻¹(p) for p in (0, 1), by Acklam's rational approximation
/// (relative error below 1.2e-9); ±∞ at 0 and 1.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Running split accuracy over a stream of picks.
#[derive(Clone, Debug, PartialEq)]
///
/// A pick costs O(1) however many destinations there are: between two picks of a destination
/// its running share `count / n` only falls as `n` grows, so its largest deviation over those
/// prefixes is at one end of the stretch; each destination is measured when its count changes
/// (both ends) and, for the stretch still open, when the rows are read.
pub struct ShareTracker {
    expected: Vec<f64>,
    counts: Vec<u64>,
    total: u64,
    /// The largest deviation over the prefixes measured so far.
    max_abs_dev: Vec<f64>,
    /// The same over prefixes of at least `min_prefix` picks only.
    max_abs_dev_after: Vec<f64>,
    min_prefix: u64,
}

/// `ShareTracker::new`'s minimum prefix for `ShareRow::max_abs_dev_after`: the first picks
/// deviate by most of a share whatever the picker (one pick of a 90/10 split is 100/0, 10
/// points off), so the largest deviation over every prefix says nothing about the picker; from
/// 1,000 picks on, a per-request random picker's 95% noise at 10% is ±1.9 points while smooth
/// WRR stays within one pick (0.1 points).
pub const MIN_PREFIX: u64 = 1000;

/// The accuracy of one destination.
#[derive(Clone, Debug, PartialEq)]
pub struct ShareRow {
    /// Programmed share in [0, 1].
    pub expected: f64,
    pub count: u64,
    /// Observed share in [0, 1].
    pub observed: f64,
    /// The largest |running share − expected| over all prefixes.
    pub max_abs_dev: f64,
    /// The same over prefixes of at least the tracker's minimum (`MIN_PREFIX`) picks; `None`
    /// with fewer picks.
    pub max_abs_dev_after: Option<f64>,
    /// Whether the final share is inside the binomial 95% band around `expected`.
    pub in_band: bool,
}

impl ShareTracker {
    /// `weights` need not sum to 1; they are normalised. `max_abs_dev_after` counts from
    /// `MIN_PREFIX` picks.
    pub fn new(weights: &[f64]) -> Self {
        Self::with_min_prefix(weights, MIN_PREFIX)
    }

    /// As `new`, with `max_abs_dev_after` counted from `min_prefix` picks (at least 1).
    pub fn with_min_prefix(weights: &[f64], min_prefix: u64) -> Self {
        let sum: f64 = weights.iter().sum();
        let expected = weights
            .iter()
            .map(|w| if sum > 0.0 { w / sum } else { 0.0 })
            .collect();
        ShareTracker {
            expected,
            counts: vec![0; weights.len()],
            total: 0,
            max_abs_dev: vec![0.0; weights.len()],
            max_abs_dev_after: vec![0.0; weights.len()],
            min_prefix: min_prefix.max(1),
        }
    }

    /// Records one pick of destination `index`.
    pub fn record(&mut self, index: usize) {
        // The stretch of `index` that ends here: its share after the previous pick (none
        // before the first pick of all).
        if self.total > 0 {
            self.measure(index, self.total);
        }
        self.counts[index] += 1;
        self.total += 1;
        // ... and the stretch that starts here.
        self.measure(index, self.total);
        // Every destination's stretch counts for `max_abs_dev_after` from here on.
        if self.total == self.min_prefix {
            for i in 0..self.counts.len() {
                self.measure(i, self.total);
            }
        }
    }

    /// The deviation of destination `i` after `n` picks (its count unchanged since).
    fn deviation(&self, i: usize, n: u64) -> f64 {
        (self.counts[i] as f64 / n as f64 - self.expected[i]).abs()
    }

    fn measure(&mut self, i: usize, n: u64) {
        let d = self.deviation(i, n);
        if d > self.max_abs_dev[i] {
            self.max_abs_dev[i] = d;
        }
        if n >= self.min_prefix && d > self.max_abs_dev_after[i] {
            self.max_abs_dev_after[i] = d;
        }
    }

    /// The running share of every destination, in percent (all 0 before the first pick).
    pub fn observed_pct(&self) -> Vec<f64> {
        let n = self.total.max(1) as f64;
        self.counts.iter().map(|c| *c as f64 * 100.0 / n).collect()
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// One row per destination.
    pub fn rows(&self) -> Vec<ShareRow> {
        let n = self.total;
        self.expected
            .iter()
            .zip(&self.counts)
            .zip(&self.max_abs_dev)
            .zip(&self.max_abs_dev_after)
            .enumerate()
            .map(|(i, (((&expected, &count), &dev), &after))| {
                // the stretch still open: measured at the last pick
                let max_abs_dev = if n == 0 {
                    dev
                } else {
                    dev.max(self.deviation(i, n))
                };
                let max_abs_dev_after =
                    (n >= self.min_prefix).then(|| after.max(self.deviation(i, n)));
                let observed = if n == 0 { 0.0 } else { count as f64 / n as f64 };
                let (lo, hi) = binomial_band(expected, n);
                // A tiny tolerance: a share exactly on the band edge (e.g. p = 0 or 1) is inside.
                let in_band = observed >= lo - 1e-12 && observed <= hi + 1e-12;
                ShareRow {
                    expected,
                    count,
                    observed,
                    max_abs_dev,
                    max_abs_dev_after,
                    in_band,
                }
            })
            .collect()
    }
}

/// P(X <= k) for X ~ Binomial(n, p), summed in log space (no underflow at large n).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    let mut ln_pmf = n as f64 * ln_q;
    let mut sum = ln_pmf.exp();
    for x in 0..k {
        ln_pmf += ((n - x) as f64 / (x + 1) as f64).ln() + ln_p - ln_q;
        sum += ln_pmf.exp();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_matches_the_normal_approximation() {
        // (p, n, expected half width)
        let cases = [
            // 10% over 10,000: 1.96 * 0.003 = 0.00588
            (0.1, 10_000, 0.005_879_891_953_620_162),
            // 50% over 100: 1.96 * 0.05
            (0.5, 100, 0.097_998_199_227_002_7),
            // certainty has no width
            (1.0, 50, 0.0),
        ];
        for (p, n, half) in cases {
            let (lo, hi) = binomial_band(p, n);
            assert!(
                ((hi - lo) / 2.0 - half).abs() < 1e-12 || (p == 1.0 && lo == 1.0 && hi == 1.0),
                "{p} {n}: {lo} {hi}"
            );
        }
        assert_eq!(binomial_band(0.3, 0), (0.0, 1.0));
    }

    #[test]
    fn normal_quantile_matches_the_tables() {
        // (p, Φ⁻¹(p))
        let cases = [
            (0.975, Z95),                        // the 95% two-sided quantile
            (0.9995, Z999),                      // the 99.9% one
            (0.5, 0.0),                          // the median
            (0.025, -Z95),                       // the lower tail, symmetric
            (1.0 - 1e-6, 4.753_424_308_822_899), // far in the tail (Bonferroni over many cells)
        ];
        for (p, want) in cases {
            let got = normal_quantile(p);
            assert!((got - want).abs() < 1e-7, "{p}: {got} vs {want}");
        }
    }

    #[test]
    fn two_proportion_se_matches_hand_computation() {
        // (x1, n1, x2, n2, expected SE)
        let cases = [
            // pooled 0.52: sqrt(0.52·0.48·(2/1000)) = sqrt(0.0004992)
            (500, 1000, 540, 1000, 0.022_342_784_070_030_305),
            // unequal sizes, pooled 0.2: sqrt(0.16·(1/100 + 1/400)) = sqrt(0.002)
            (20, 100, 80, 400, 0.044_721_359_549_995_794),
            // both certain: no spread
            (10, 10, 30, 30, 0.0),
            // nothing picked in one: no share there
            (0, 0, 5, 10, f64::INFINITY),
        ];
        for (x1, n1, x2, n2, want) in cases {
            let se = two_proportion_se(x1, n1, x2, n2);
            assert!(
                se == want || (se - want).abs() < 1e-15,
                "{x1}/{n1} vs {x2}/{n2}: {se} != {want}"
            );
        }
    }

    #[test]
    fn tracker_reports_prefix_deviation_and_band() {
        let mut t = ShareTracker::new(&[90.0, 10.0]);
        // a, a, b: after 1 pick the shares are 1/0 (dev 0.1); after 3, 2/3 and 1/3 (dev 0.2333)
        for i in [0, 0, 1] {
            t.record(i);
        }
        let rows = t.rows();
        assert_eq!(rows[0].count, 2);
        assert!((rows[0].max_abs_dev - (0.9 - 2.0 / 3.0)).abs() < 1e-12);
        assert!((rows[1].max_abs_dev - (1.0 / 3.0 - 0.1)).abs() < 1e-12);
        // 1/3 is inside 0.1 ± 1.96·sqrt(0.09/3) = [0, 0.439]
        assert!(rows[1].in_band);
        let mut skewed = ShareTracker::new(&[50.0, 50.0]);
        for _ in 0..100 {
            skewed.record(0);
        }
        assert!(!skewed.rows()[0].in_band);
    }

    proptest::proptest! {
        #[test]
        fn deviation_measured_at_the_ends_is_every_prefix_s(
            weights in proptest::collection::vec(0.0f64..10.0, 1..6),
            picks in proptest::collection::vec(0usize..6, 0..200),
        ) {
            // the running deviation measured after every pick for every destination, as
            // `record` did before it became O(1)
            let w = weights.len();
            let min_prefix = 50;
            let mut t = ShareTracker::with_min_prefix(&weights, min_prefix);
            let mut counts = vec![0u64; w];
            let mut every = vec![0.0f64; w];
            let mut after = vec![0.0f64; w];
            for (k, &p) in picks.iter().enumerate() {
                let p = p % w;
                t.record(p);
                counts[p] += 1;
                for i in 0..w {
                    let d = (counts[i] as f64 / (k + 1) as f64 - t.expected[i]).abs();
                    every[i] = every[i].max(d);
                    if k as u64 + 1 >= min_prefix {
                        after[i] = after[i].max(d);
                    }
                }
            }
            let got: Vec<f64> = t.rows().iter().map(|r| r.max_abs_dev).collect();
            proptest::prop_assert_eq!(got, every);
            let got_after: Vec<Option<f64>> =
                t.rows().iter().map(|r| r.max_abs_dev_after).collect();
            let want_after: Vec<Option<f64>> = after
                .iter()
                .map(|d| (picks.len() as u64 >= min_prefix).then_some(*d))
                .collect();
            proptest::prop_assert_eq!(got_after, want_after);
        }
    }
}
