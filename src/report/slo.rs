//! SLOs over seeds: which seeds of a setting met every bound, the pass rate and its one-sided
//! lower confidence bound, and the sentences that say so. Shared by `compare --slo` (does a
//! setting pass?) and `advise` (the smallest value that does).
//!
//! Must not: parse bounds (`bound` does) or run anything; everything here is a pure function
//! of the values observed.
//!
//! Invariants: a seed passes when every bound held in it; a subject with no value fails its
//! bound and is counted as undefined as well as failed.

use super::accuracy::binomial_cdf;
use super::bound::Bound;

/// The one-sided confidence of `pass_rate_low`.
pub const CONFIDENCE: f64 = 0.95;

/// The fewest seeds out of `seeds` in which every SLO must hold for a pass rate of at least
/// `rate` (in (0, 1]).
pub fn required_passes(seeds: usize, rate: f64) -> usize {
    // The small slack keeps 0.9 × 10 at 9, not 10, despite binary fractions.
    ((rate * seeds as f64) - 1e-9).ceil().max(0.0) as usize
}

/// The one-sided lower confidence bound (`CONFIDENCE`) of a pass rate seen as `passes` of
/// `seeds`: Clopper-Pearson's exact bound, the `p` at which `passes` or more successes have
/// probability 1 − `CONFIDENCE`. 0 with no pass; `(1 − CONFIDENCE)^(1/n)` with every seed
/// passing (20/20 gives 0.861).
pub fn pass_rate_low(passes: usize, seeds: usize) -> f64 {
    if passes == 0 || seeds == 0 {
        return 0.0;
    }
    let alpha = 1.0 - CONFIDENCE;
    if passes == seeds {
        return alpha.powf(1.0 / seeds as f64);
    }
    // P(X ≥ passes) grows with p: bisect for the p where it equals alpha.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if binomial_upper_tail(passes, seeds, mid) < alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// P(X ≥ k) for X ~ Binomial(n, p), k ≥ 1.
fn binomial_upper_tail(k: usize, n: usize, p: f64) -> f64 {
    1.0 - binomial_cdf(k as u64 - 1, n as u64, p)
}

/// One knob value's runs: per seed (1..=N), the observed value of every SLO's subject.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// `observed[seed − 1][slo]`.
    pub observed: Vec<Vec<Option<f64>>>,
    /// Per seed, whether every SLO held.
    pub seed_passed: Vec<bool>,
    /// Per SLO, the seeds it failed in (undefined ones included).
    pub failed: Vec<usize>,
    /// Per SLO, the seeds where its subject had no value (which fails it).
    pub undefined: Vec<usize>,
}

impl Evaluation {
    pub fn new(slos: &[Bound], observed: Vec<Vec<Option<f64>>>) -> Self {
        let seed_passed = observed
            .iter()
            .map(|row| slos.iter().zip(row).all(|(b, v)| b.holds(*v)))
            .collect();
        let failed = (0..slos.len())
            .map(|s| observed.iter().filter(|row| !slos[s].holds(row[s])).count())
            .collect();
        let undefined = (0..slos.len())
            .map(|s| observed.iter().filter(|row| row[s].is_none()).count())
            .collect();
        Evaluation {
            observed,
            seed_passed,
            failed,
            undefined,
        }
    }

    pub fn seeds(&self) -> usize {
        self.observed.len()
    }

    /// Seeds in which every SLO held.
    pub fn passes(&self) -> usize {
        self.seed_passed.iter().filter(|p| **p).count()
    }

    pub fn meets(&self, required: usize) -> bool {
        self.passes() >= required
    }

    /// The mean of SLO `slo`'s subject over the seeds where it has a value.
    pub fn mean(&self, slo: usize) -> Option<f64> {
        let values: Vec<f64> = self.observed.iter().filter_map(|row| row[slo]).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Each SLO that failed in some seed of `e`, as `p99_shift_ms>800 in 7/20` (its violation
/// and the seeds it failed in) and `rollout_finished_s undefined in 3/20` (the seeds where it
/// had no value), in SLO order.
pub fn broken(slos: &[Bound], e: &Evaluation) -> Vec<String> {
    let n = e.seeds();
    let mut out = Vec::new();
    for (i, b) in slos.iter().enumerate() {
        let violated = e.failed[i] - e.undefined[i];
        if violated > 0 {
            out.push(format!("{} in {violated}/{n}", b.violation()));
        }
        if e.undefined[i] > 0 {
            out.push(format!(
                "{} undefined in {}/{n}",
                b.subject_name(),
                e.undefined[i]
            ));
        }
    }
    out
}

/// Whether every SLO held in every seed of a setting, as a sentence: `a=2 passes: all SLOs held
/// in 5/5 seeds (pass rate ≥ 0.55 at 95%)` or `a=1 fails: all SLOs held in 2/5 seeds
/// (p99_ms>800 in 3/5)` (`compare --slo`).
pub fn setting_sentence(label: &str, slos: &[Bound], e: &Evaluation) -> String {
    let (passes, seeds) = (e.passes(), e.seeds());
    if passes == seeds {
        format!(
            "{label} passes: all SLOs held in {passes}/{seeds} seeds (pass rate ≥ {:.2} at {:.0}%)",
            pass_rate_low(passes, seeds),
            CONFIDENCE * 100.0
        )
    } else {
        format!(
            "{label} fails: all SLOs held in {passes}/{seeds} seeds ({})",
            broken(slos, e).join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::bound::parse;

    #[test]
    fn required_passes_rounds_up() {
        // (seeds, rate, required)
        let cases = [
            (20, 1.0, 20), // every seed
            (10, 0.9, 9),  // 0.9 × 10 is 9 despite binary fractions
            (10, 0.85, 9), // rounded up
            (3, 0.5, 2),   // at least half
        ];
        for (seeds, rate, want) in cases {
            assert_eq!(required_passes(seeds, rate), want, "{rate} of {seeds}");
        }
    }

    #[test]
    fn pass_rate_low_matches_clopper_pearson_tables() {
        // (passes, seeds, one-sided 95% lower bound = two-sided 90% Clopper-Pearson lower end)
        let cases = [
            (20, 20, 0.8609), // 0.05^(1/20), the headline example
            (5, 5, 0.5493),   // 0.05^(1/5)
            (9, 10, 0.6058),  // textbook 90% interval for 9/10: [0.6058, 0.9949]
            (5, 10, 0.2224),  // textbook 90% interval for 5/10: [0.2224, 0.7776]
            (0, 10, 0.0),     // no pass: no lower bound above 0
        ];
        for (x, n, want) in cases {
            let got = pass_rate_low(x, n);
            assert!((got - want).abs() < 5e-4, "{x}/{n}: {got} vs {want}");
        }
        // the defining property, away from the closed forms
        let p = pass_rate_low(13, 17);
        assert!((binomial_upper_tail(13, 17, p) - 0.05).abs() < 1e-9);
    }

    #[test]
    fn a_setting_passes_only_when_every_slo_held_in_every_seed() {
        let slos = [
            parse("p99_ms<=10").expect("valid"),
            parse("expired==0").expect("valid"),
        ];
        // (per seed: p99_ms, expired; the sentence)
        let cases: [(&[(f64, f64)], &str); 4] = [
            (
                &[(5.0, 0.0), (9.0, 0.0)],
                "a=1 passes: all SLOs held in 2/2 seeds (pass rate ≥ 0.22 at 95%)",
            ), // both seeds
            (
                &[(5.0, 0.0), (11.0, 0.0)],
                "a=1 fails: all SLOs held in 1/2 seeds (p99_ms>10 in 1/2)",
            ), // one seed broke one
            (
                &[(11.0, 1.0), (11.0, 0.0)],
                "a=1 fails: all SLOs held in 0/2 seeds (p99_ms>10 in 2/2, expired!=0 in 1/2)",
            ), // both broke
            (
                &[(f64::NAN, 0.0), (11.0, 0.0)],
                "a=1 fails: all SLOs held in 0/2 seeds (p99_ms>10 in 1/2, p99_ms undefined in 1/2)",
            ), // NaN stands for an undefined value here
        ];
        for (rows, want) in cases {
            let observed = rows
                .iter()
                .map(|(p, x)| vec![Some(*p).filter(|v| !v.is_nan()), Some(*x)])
                .collect();
            let e = Evaluation::new(&slos, observed);
            assert_eq!(setting_sentence("a=1", &slos, &e), want);
        }
    }
}
