//! `advise`'s search and verdict, as pure functions: the coarse grid, the bisection step, the
//! verdict sentence, the snippet to apply, and the layout of `advise.csv` and `advise.json`. The
//! SLO tally over seeds and the pass rate's lower bound are `slo`'s, shared with `compare`.
//!
//! Must not: load scenarios or run anything (the CLI does, through the sweep engine); every
//! function here is a function of the evaluations it is given.
//!
//! The search assumes the SLOs' pass rate is monotone in the knob: once a value meets them,
//! every larger value does too (a longer rollout-duration moves traffic more gently; a larger
//! initial-scale has more pods ready). It brackets the answer between the *largest* value that
//! failed and the next evaluated value above it (which met them), and halves that bracket until
//! the two are one unit apart (whole seconds for durations, whole units for integers). So the
//! recommendation is the smallest value above every failure seen, and the evaluated value just
//! below it failed. When the assumption does not hold, some value below the last failure met the
//! SLOs: those values are reported as non-monotone evaluations, and the recommendation stays
//! above the last failure (the safe side); values never evaluated between grid points are not
//! known to pass or fail.
//!
//! Invariants: a value meets the SLOs when every SLO held in at least `required` of its seeds
//! (`required_passes`); evaluations are kept by value (a `BTreeMap`), so the files list them in
//! value order whatever order the search evaluated them in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::bound::Bound;
use super::slo::{broken, pass_rate_low, required_passes, Evaluation, CONFIDENCE};
use super::write::Fixed3;

pub const ADVISE_CSV: &str = "advise.csv";
pub const ADVISE_JSON: &str = "advise.json";
/// The fixed columns of `advise.csv`; one `mean_<metric>` column per SLO subject follows.
pub const ADVISE_HEADER: &str = "value,seeds,passes,pass_rate,pass_rate_low";

/// The coarse grid divides the range into this many steps (fewer when the range has fewer
/// units).
pub const GRID_STEPS: i64 = 6;

/// What the knob's values count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobUnit {
    /// Whole seconds, written `240s`.
    Seconds,
    /// Whole numbers, written `5`.
    Units,
}

impl KnobUnit {
    /// How a value is written in `--set`, the files and the sentences.
    pub fn format(self, value: i64) -> String {
        match self {
            KnobUnit::Seconds => format!("{value}s"),
            KnobUnit::Units => value.to_string(),
        }
    }
}

/// The knob and the range searched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Knob {
    /// A `--set` path.
    pub path: String,
    pub unit: KnobUnit,
    pub low: i64,
    pub high: i64,
}

impl Knob {
    pub fn format(&self, value: i64) -> String {
        self.unit.format(value)
    }
}

/// The coarse grid over `low..=high`: `GRID_STEPS` equal steps rounded down to whole units,
/// both ends included, no value twice.
pub fn coarse_grid(low: i64, high: i64) -> Vec<i64> {
    let span = high - low;
    let steps = GRID_STEPS.min(span).max(1);
    let mut grid: Vec<i64> = (0..=steps).map(|i| low + span * i / steps).collect();
    grid.dedup();
    grid
}

/// What the search does next, given what it has evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Evaluate this value (the middle of the bracket).
    Evaluate(i64),
    /// The smallest value above the last failure, one unit above it (or the smallest value
    /// evaluated, when nothing failed).
    Recommend(i64),
    /// The largest value evaluated failed.
    NoneMeets,
}

/// The bracket: the largest value that failed and the next evaluated value above it.
fn bracket(evals: &BTreeMap<i64, Evaluation>, required: usize) -> (Option<i64>, Option<i64>) {
    let last_fail = evals
        .iter()
        .rev()
        .find(|(_, e)| !e.meets(required))
        .map(|(v, _)| *v);
    let above = match last_fail {
        Some(lo) => evals.range(lo + 1..).next().map(|(v, _)| *v),
        None => evals.keys().next().copied(),
    };
    (last_fail, above)
}

/// The next step of the search (see the module docs). `evals` holds at least the coarse grid.
pub fn next_step(evals: &BTreeMap<i64, Evaluation>, required: usize) -> Step {
    match bracket(evals, required) {
        (_, None) => Step::NoneMeets,
        (None, Some(v)) => Step::Recommend(v),
        (Some(lo), Some(hi)) if hi - lo <= 1 => Step::Recommend(hi),
        (Some(lo), Some(hi)) => Step::Evaluate(lo + (hi - lo) / 2),
    }
}

/// Values below the last failure that met the SLOs: evidence against monotonicity.
pub fn non_monotone(evals: &BTreeMap<i64, Evaluation>, required: usize) -> Vec<i64> {
    match bracket(evals, required).0 {
        Some(lo) => evals
            .range(..lo)
            .filter(|(_, e)| e.meets(required))
            .map(|(v, _)| *v)
            .collect(),
        None => Vec::new(),
    }
}

/// A finished search: its inputs, every evaluation, and the recommendation (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    pub knob: Knob,
    pub slos: Vec<Bound>,
    pub seeds: usize,
    /// `--pass-rate`.
    pub pass_rate: f64,
    pub evals: BTreeMap<i64, Evaluation>,
    pub recommended: Option<i64>,
}

impl Advice {
    /// Runs the pure part of the search to its end: `evaluate` is called with the values of one
    /// round (the coarse grid first, then one bisection point per round) and returns their
    /// evaluations in the same order.
    pub fn search<E>(
        knob: Knob,
        slos: Vec<Bound>,
        seeds: usize,
        pass_rate: f64,
        mut evaluate: impl FnMut(&[i64]) -> Result<Vec<Evaluation>, E>,
    ) -> Result<Advice, E> {
        let required = required_passes(seeds, pass_rate);
        let mut evals = BTreeMap::new();
        let mut round = coarse_grid(knob.low, knob.high);
        let recommended = loop {
            let results = evaluate(&round)?;
            evals.extend(round.iter().copied().zip(results));
            match next_step(&evals, required) {
                Step::Evaluate(v) => round = vec![v],
                Step::Recommend(v) => break Some(v),
                Step::NoneMeets => break None,
            }
        };
        Ok(Advice {
            knob,
            slos,
            seeds,
            pass_rate,
            evals,
            recommended,
        })
    }

    pub fn required(&self) -> usize {
        required_passes(self.seeds, self.pass_rate)
    }

    /// The distinct SLO subjects, in SLO order, with the index of the first SLO naming each.
    pub fn subjects(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for (i, b) in self.slos.iter().enumerate() {
            let name = b.subject_name();
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, i));
            }
        }
        out
    }

    /// The largest evaluated value below the recommendation (which failed).
    pub fn next_smaller(&self) -> Option<i64> {
        let r = self.recommended?;
        self.evals.range(..r).next_back().map(|(v, _)| *v)
    }

    /// `p99_shift_ms>800 in 7/20, expired!=0 in 1/20`: the SLOs that failed at a value.
    fn failures(&self, e: &Evaluation) -> String {
        let parts = broken(&self.slos, e);
        if parts.is_empty() {
            "every SLO held".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// `all SLOs held in 20/20 seeds (pass rate ≥ 0.86 at 95%)`.
    fn held(&self, e: &Evaluation) -> String {
        let (passes, seeds) = (e.passes(), e.seeds());
        let all = if passes == seeds {
            "all SLOs held"
        } else {
            "all SLOs held together"
        };
        format!(
            "{all} in {passes}/{seeds} seeds (pass rate ≥ {:.2} at {:.0}%)",
            pass_rate_low(passes, seeds),
            CONFIDENCE * 100.0
        )
    }

    /// The verdict line, e.g. `recommended: service.rollout_duration=240s — all SLOs held in
    /// 20/20 seeds (pass rate ≥ 0.86 at 95%); 180s: p99_shift_ms>800 in 7/20`, or, with no
    /// recommendation, which value came closest and which SLO failed there.
    pub fn verdict(&self) -> String {
        let Some(r) = self.recommended else {
            return self.no_value_sentence();
        };
        let e = &self.evals[&r];
        let mut s = format!(
            "recommended: {}={} — {}",
            self.knob.path,
            self.knob.format(r),
            self.held(e)
        );
        if self.pass_rate < 1.0 {
            let _ = write!(
                s,
                ", needed {}/{} (--pass-rate {})",
                self.required(),
                self.seeds,
                self.pass_rate
            );
        }
        match self.next_smaller() {
            Some(v) => {
                let _ = write!(
                    s,
                    "; {}: {}",
                    self.knob.format(v),
                    self.failures(&self.evals[&v])
                );
            }
            None => s.push_str("; it is the low end of the range: a smaller value was not tried"),
        }
        s
    }

    /// Exit status 3's sentence: the value that came closest (most seeds passing; the larger
    /// value on a tie) and the SLOs that failed there.
    fn no_value_sentence(&self) -> String {
        let closest = self
            .evals
            .iter()
            .max_by_key(|(v, e)| (e.passes(), **v))
            .map(|(v, e)| (*v, e));
        let head = format!(
            "no value of {} in {}..{} met the SLOs in {}/{} seeds",
            self.knob.path,
            self.knob.format(self.knob.low),
            self.knob.format(self.knob.high),
            self.required(),
            self.seeds
        );
        match closest {
            Some((v, e)) => {
                let nearest = self
                    .slos
                    .iter()
                    .zip(&e.failed)
                    .filter(|(_, n)| **n > 0)
                    .min_by_key(|(_, n)| **n)
                    .map(|(b, _)| b.to_string())
                    .unwrap_or_default();
                format!(
                    "{head}; closest: {}={}, where {}: {}; the SLO that failed closest: {nearest}",
                    self.knob.path,
                    self.knob.format(v),
                    self.held(e),
                    self.failures(e)
                )
            }
            None => head,
        }
    }

    /// Notes on non-monotone evaluations (empty when the pass rate was monotone where seen).
    pub fn notes(&self) -> Vec<String> {
        let required = self.required();
        let Some(last_fail) = bracket(&self.evals, required).0 else {
            return Vec::new();
        };
        non_monotone(&self.evals, required)
            .into_iter()
            .map(|v| {
                format!(
                    "not monotone: {}={} met the SLOs ({}/{} seeds) but the larger {} failed ({}); the search assumes a larger value is never worse and recommends only above the last failure",
                    self.knob.path,
                    self.knob.format(v),
                    self.evals[&v].passes(),
                    self.seeds,
                    self.knob.format(last_fail),
                    self.failures(&self.evals[&last_fail])
                )
            })
            .collect()
    }

    /// The text of `advise.csv`: one row per evaluated value, in value order.
    pub fn csv(&self) -> String {
        let subjects = self.subjects();
        let mut out = ADVISE_HEADER.to_string();
        for (name, _) in &subjects {
            let _ = write!(out, ",mean_{name}");
        }
        out.push('\n');
        for (v, e) in &self.evals {
            let _ = write!(
                out,
                "{},{},{},{},{}",
                self.knob.format(*v),
                e.seeds(),
                e.passes(),
                Fixed3(e.passes() as f64 / e.seeds().max(1) as f64),
                Fixed3(pass_rate_low(e.passes(), e.seeds()))
            );
            for (_, slo) in &subjects {
                let mean = e.mean(*slo).map(|m| Fixed3(m).to_string());
                let _ = write!(out, ",{}", mean.unwrap_or_default());
            }
            out.push('\n');
        }
        out
    }

    /// The content of `advise.json`: `knob` (the path), `recommended`, `slos`, `evaluated`, and
    /// the search's inputs `range`, `seeds`, `pass_rate` with its `non_monotone` values.
    pub fn json(&self, snippet: Option<&str>) -> serde_json::Value {
        let subjects = self.subjects();
        let evaluated: Vec<serde_json::Value> = self
            .evals
            .iter()
            .map(|(v, e)| {
                let failed: serde_json::Map<String, serde_json::Value> = self
                    .slos
                    .iter()
                    .zip(&e.failed)
                    .map(|(b, n)| (b.to_string(), (*n).into()))
                    .collect();
                let means: serde_json::Map<String, serde_json::Value> = subjects
                    .iter()
                    .map(|(name, slo)| (name.clone(), e.mean(*slo).map(round3).into()))
                    .collect();
                serde_json::json!({
                    "value": self.knob.format(*v),
                    "seeds": e.seeds(),
                    "passes": e.passes(),
                    "pass_rate": round3(e.passes() as f64 / e.seeds().max(1) as f64),
                    "pass_rate_low": round3(pass_rate_low(e.passes(), e.seeds())),
                    "meets": e.meets(self.required()),
                    "failed_seeds": failed,
                    "mean": means,
                })
            })
            .collect();
        let recommended = self.recommended.map(|r| {
            let e = &self.evals[&r];
            serde_json::json!({
                "value": self.knob.format(r),
                "passes": e.passes(),
                "seeds": e.seeds(),
                "pass_rate_low": round3(pass_rate_low(e.passes(), e.seeds())),
                "next_smaller": self.next_smaller().map(|v| self.knob.format(v)),
                "apply": snippet,
            })
        });
        serde_json::json!({
            "knob": self.knob.path,
            "range": {
                "low": self.knob.format(self.knob.low),
                "high": self.knob.format(self.knob.high),
            },
            "seeds": self.seeds,
            "pass_rate": self.pass_rate,
            "non_monotone": non_monotone(&self.evals, self.required())
                .into_iter()
                .map(|v| self.knob.format(v))
                .collect::<Vec<_>>(),
            "recommended": recommended,
            "slos": self.slos.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "evaluated": evaluated,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The Knative setting a knob path stands for, as YAML to apply, e.g. for
/// `service.rollout_duration` the Service's `serving.knative.dev/rollout-duration` annotation
/// (serving `pkg/apis/serving/register.go:61`; a Service's annotations reach its Route,
/// `route.go:38`). `revision` names the revision a `revisions.N.*` path points at (its template
/// carries the annotation). `None` when no Knative setting corresponds (a scenario-only knob).
pub fn apply_snippet(
    path: &str,
    value: &str,
    service: &str,
    revision: Option<&str>,
) -> Option<String> {
    let annotations = |kind: &str, key: &str| {
        format!("# the {kind}\nmetadata:\n  annotations:\n    {key}: \"{value}\"\n")
    };
    let template = |key: &str| {
        format!(
            "# the Service {service}'s revision template (the revision after {})\nspec:\n  template:\n    metadata:\n      annotations:\n        {key}: \"{value}\"\n",
            revision.unwrap_or("the current one")
        )
    };
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["service", "rollout_duration"] => Some(annotations(
            &format!("Service {service} (or its Route)"),
            "serving.knative.dev/rollout-duration",
        )),
        ["revisions", _, "autoscaling", key] => {
            Some(template(&format!("autoscaling.knative.dev/{key}")))
        }
        ["revisions", _, key @ ("min_scale" | "max_scale" | "initial_scale")] => Some(template(
            &format!("autoscaling.knative.dev/{}", key.replace('_', "-")),
        )),
        ["revisions", _, "container_concurrency"] => Some(format!(
            "# the Service {service}'s revision template\nspec:\n  template:\n    spec:\n      containerConcurrency: {value}\n"
        )),
        ["autoscaler", key] => {
            let key = match *key {
                "target_utilization_percentage" => "container-concurrency-target-percentage",
                "enabled" | "metric" | "aggregation" => return None,
                k => return Some(configmap(&k.replace('_', "-"), value)),
            };
            Some(configmap(key, value))
        }
        ["activator", "target_burst_capacity"] => Some(configmap("target-burst-capacity", value)),
        _ => None,
    }
}

/// A config-autoscaler data key (knative-serving namespace).
fn configmap(key: &str, value: &str) -> String {
    format!(
        "# ConfigMap config-autoscaler in namespace knative-serving\ndata:\n  {key}: \"{value}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::bound::parse;

    #[test]
    fn the_coarse_grid_covers_the_range_in_whole_units() {
        // (low, high, grid)
        let cases: [(i64, i64, &[i64]); 5] = [
            (0, 600, &[0, 100, 200, 300, 400, 500, 600]), // six equal steps
            (120, 240, &[120, 140, 160, 180, 200, 220, 240]), // an offset range
            (0, 10, &[0, 1, 3, 5, 6, 8, 10]),             // rounded down to whole units
            (1, 4, &[1, 2, 3, 4]),                        // fewer units than steps
            (5, 5, &[5]),                                 // one value
        ];
        for (low, high, want) in cases {
            assert_eq!(coarse_grid(low, high), want, "{low}..{high}");
        }
    }

    /// An evaluation of one SLO (`x<=10`) whose value in each seed is given.
    fn eval(values: &[f64]) -> Evaluation {
        let slos = [parse("p99_ms<=10").expect("valid")];
        Evaluation::new(&slos, values.iter().map(|v| vec![Some(*v)]).collect())
    }

    fn evals(points: &[(i64, &[f64])]) -> BTreeMap<i64, Evaluation> {
        points.iter().map(|(v, xs)| (*v, eval(xs))).collect()
    }

    #[test]
    fn the_search_bisects_between_the_last_failure_and_the_next_pass() {
        let pass: &[f64] = &[1.0, 2.0];
        let fail: &[f64] = &[1.0, 20.0];
        // (evaluations, required passes, next step)
        let cases = [
            (
                evals(&[(0, fail), (100, pass), (200, pass)]),
                2,
                Step::Evaluate(50),
            ), // bracket 0..100
            (
                evals(&[(0, fail), (50, fail), (100, pass)]),
                2,
                Step::Evaluate(75),
            ), // moved up
            (
                evals(&[(0, fail), (99, fail), (100, pass)]),
                2,
                Step::Recommend(100),
            ), // one unit apart
            (evals(&[(0, pass), (100, pass)]), 2, Step::Recommend(0)), // nothing failed
            (evals(&[(0, fail), (100, fail)]), 2, Step::NoneMeets),    // the top failed
            (
                evals(&[(0, fail), (100, pass), (200, fail)]),
                2,
                Step::NoneMeets,
            ), // the top failed, non-monotone
            (evals(&[(0, fail), (100, fail)]), 1, Step::Recommend(0)), // --pass-rate 0.5: 1 of 2 is enough
            (
                evals(&[(0, pass), (100, fail), (200, pass)]),
                2,
                Step::Evaluate(150),
            ), // above the last failure
        ];
        for (i, (e, required, want)) in cases.into_iter().enumerate() {
            assert_eq!(next_step(&e, required), want, "case {i}");
        }
        assert_eq!(
            non_monotone(&evals(&[(0, pass), (100, fail), (200, pass)]), 2),
            [0]
        );
        assert!(non_monotone(&evals(&[(0, fail), (100, pass)]), 2).is_empty());
    }

    fn knob(low: i64, high: i64) -> Knob {
        Knob {
            path: "service.rollout_duration".to_string(),
            unit: KnobUnit::Seconds,
            low,
            high,
        }
    }

    #[test]
    fn a_search_finds_the_threshold_of_a_monotone_response() {
        // p99 falls with the knob: 1000 / (v + 1) ms in seed 1, +5 ms in seed 2; the bound
        // 10 ms holds from v = 99 (seed 1) and v = 199 (seed 2).
        let slos = vec![parse("p99_ms<=10").expect("valid")];
        let mut rounds = Vec::new();
        let advice = Advice::search(knob(0, 600), slos.clone(), 2, 1.0, |values| {
            rounds.push(values.to_vec());
            Ok::<_, ()>(
                values
                    .iter()
                    .map(|&v| {
                        let y = 1000.0 / (v as f64 + 1.0);
                        Evaluation::new(&slos, vec![vec![Some(y)], vec![Some(y + 5.0)]])
                    })
                    .collect(),
            )
        })
        .expect("search");
        assert_eq!(advice.recommended, Some(199));
        assert_eq!(advice.next_smaller(), Some(198));
        assert_eq!(
            rounds[0],
            [0, 100, 200, 300, 400, 500, 600],
            "the grid first"
        );
        assert_eq!(
            rounds[1..].iter().flatten().copied().collect::<Vec<_>>(),
            [150, 175, 187, 193, 196, 198, 199],
            "then one bisection point per round"
        );
        assert_eq!(
            advice.verdict(),
            "recommended: service.rollout_duration=199s — all SLOs held in 2/2 seeds (pass rate ≥ 0.22 at 95%); 198s: p99_ms>10 in 1/2"
        );
        let csv = advice.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "value,seeds,passes,pass_rate,pass_rate_low,mean_p99_ms"
        );
        assert_eq!(lines.len(), 1 + 14, "one row per evaluated value");
        assert_eq!(lines[1], "0s,2,0,0.000,0.000,1002.500");
        assert!(lines[8].starts_with("198s,2,1,0.500,"), "{}", lines[8]);
        let json = advice.json(Some("x"));
        assert_eq!(json["knob"], "service.rollout_duration");
        assert_eq!(
            json["range"],
            serde_json::json!({"low": "0s", "high": "600s"})
        );
        assert_eq!(json["recommended"]["value"], "199s");
        assert_eq!(json["recommended"]["next_smaller"], "198s");
        assert_eq!(json["slos"], serde_json::json!(["p99_ms<=10"]));
        assert_eq!(json["evaluated"].as_array().map(Vec::len), Some(14));
        assert!(advice.notes().is_empty());
    }

    #[test]
    fn no_value_says_which_slo_failed_closest() {
        let slos = vec![
            parse("p99_ms<=10").expect("valid"),
            parse("expired==0").expect("valid"),
        ];
        let advice = Advice::search(knob(0, 60), slos.clone(), 4, 1.0, |values| {
            Ok::<_, ()>(
                values
                    .iter()
                    .map(|&v| {
                        // p99 never meets the bound; expired is 0 in more seeds as v grows
                        let rows = (0..4)
                            .map(|k| {
                                let expired = if (k as i64) * 20 < v { 0.0 } else { 1.0 };
                                vec![Some(11.0), Some(expired)]
                            })
                            .collect();
                        Evaluation::new(&slos, rows)
                    })
                    .collect(),
            )
        })
        .expect("search");
        assert_eq!(advice.recommended, None);
        assert_eq!(
            advice.verdict(),
            "no value of service.rollout_duration in 0s..60s met the SLOs in 4/4 seeds; closest: service.rollout_duration=60s, where all SLOs held together in 0/4 seeds (pass rate ≥ 0.00 at 95%): p99_ms>10 in 4/4, expired!=0 in 1/4; the SLO that failed closest: expired==0"
        );
    }

    #[test]
    fn non_monotone_evaluations_are_noted() {
        let slos = vec![parse("p99_ms<=10").expect("valid")];
        // passes at 0, fails at 100, passes from 200
        let advice = Advice::search(knob(0, 600), slos.clone(), 1, 1.0, |values| {
            Ok::<_, ()>(
                values
                    .iter()
                    .map(|&v| {
                        let y = if (1..=150).contains(&v) { 20.0 } else { 1.0 };
                        Evaluation::new(&slos, vec![vec![Some(y)]])
                    })
                    .collect(),
            )
        })
        .expect("search");
        assert_eq!(advice.recommended, Some(151));
        let notes = advice.notes();
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("not monotone: service.rollout_duration=0s met the SLOs (1/1 seeds) but the larger 150s failed (p99_ms>10 in 1/1)"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn snippets_name_the_knative_setting() {
        // (path, value, a line of the snippet; None: no Knative setting)
        let cases = [
            (
                "service.rollout_duration",
                "240s",
                Some("    serving.knative.dev/rollout-duration: \"240s\""),
            ), // the headline knob
            (
                "revisions.1.autoscaling.initial-scale",
                "5",
                Some("        autoscaling.knative.dev/initial-scale: \"5\""),
            ), // pre-scale
            (
                "revisions.1.min_scale",
                "2",
                Some("        autoscaling.knative.dev/min-scale: \"2\""),
            ), // the scenario's own key
            (
                "revisions.0.container_concurrency",
                "20",
                Some("      containerConcurrency: 20"),
            ), // a spec field
            (
                "autoscaler.max_scale_up_rate",
                "100",
                Some("  max-scale-up-rate: \"100\""),
            ), // config-autoscaler
            (
                "autoscaler.target_utilization_percentage",
                "70",
                Some("  container-concurrency-target-percentage: \"70\""),
            ), // renamed key
            ("arrivals.poisson.rate", "100", None), // the load is not a setting
        ];
        for (path, value, want) in cases {
            let got = apply_snippet(path, value, "hello", Some("hello-00002"));
            match want {
                Some(line) => {
                    let got = got.unwrap_or_else(|| panic!("{path}: no snippet"));
                    assert!(got.lines().any(|l| l == line), "{path}: {got}");
                }
                None => assert_eq!(got, None, "{path}"),
            }
        }
    }
}
