//! `splitlab advise SCENARIO --slo EXPR... [--knob PATH] [--range LOW..HIGH] [--seeds N]
//! [--pass-rate R] [--jobs J] [--out DIR]`: the smallest knob value whose SLOs hold.
//!
//! A policy on the sweep engine (`cli::sweep`): each search round loads the round's knob values
//! as settings and runs them × seeds 1..=N (common random numbers: seed k is the same arrivals
//! under every value); the search itself (grid, bisection, verdict) is `report::advise`, the
//! SLO grammar `report::bound`. Exit status 0 with a recommendation, 3 without.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::report::advise::{apply_snippet, Advice, Knob, KnobUnit, ADVISE_CSV, ADVISE_JSON};
use crate::report::bound::{self, Bound};
use crate::report::compare::extract_metrics;
use crate::report::frontier::{
    render_frontier_chart, FrontierCurves, FrontierPanel, FrontierPoint, FRONTIER_CHART,
};
use crate::report::html::{Page, Table, REPORT_FILE};
use crate::report::slo::{broken, pass_rate_low, Evaluation};
use crate::report::write::{write_atomic, Fixed3};
use crate::routing::duration::{parse_duration, SECOND};
use crate::scenario::Scenario;

use super::sweep;

/// The knob `--knob` defaults to.
pub const DEFAULT_KNOB: &str = "service.rollout_duration";

/// Exit status when no value in the range meets the SLOs.
pub const NO_VALUE_EXIT: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// A service-level objective: a metric (as compare names it) or a dotted summary.json path,
    /// an operator (<, <=, >, >=, ==, !=) and a number, e.g. p99_shift_ms<=800, expired==0,
    /// requests.rejected_qp<=10; repeatable, all must hold.
    #[arg(
        long = "slo",
        value_name = "EXPR",
        required = true,
        allow_hyphen_values = true
    )]
    slo: Vec<String>,
    /// The scenario value searched, by its --set path (e.g.
    /// revisions.1.autoscaling.initial-scale).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_KNOB)]
    knob: String,
    /// The range searched: whole seconds (0s..600s) or whole numbers (1..20). Default for
    /// service.rollout_duration: 0s to the scenario's duration.
    #[arg(long, value_name = "LOW..HIGH", allow_hyphen_values = true)]
    range: Option<String>,
    /// Seeds 1..=N are run for every value evaluated.
    #[arg(long, value_name = "N", default_value_t = 10)]
    seeds: u64,
    /// The share of seeds in which every SLO must hold, in (0, 1].
    #[arg(long = "pass-rate", value_name = "R", default_value_t = 1.0)]
    pass_rate: f64,
    /// Runs at once (default: the number of available cores).
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Output directory (default: out/<scenario name>-advise).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overrides a scenario value for every candidate, as for `run` (e.g. the rollout to
    /// rehearse in a calibrated scenario); repeatable; not the knob's own path.
    #[arg(long = "set", value_name = "PATH=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
    /// Refused: advise's search rounds depend on the rounds before them (docs/scale-out.md).
    #[command(flatten)]
    shard: sweep::ShardArgs,
}

/// Why advise refuses `--shard`, `--shards` and `--emit`, and what to do instead.
pub const NO_SHARD: &str = "advise cannot be sharded: each search round picks its values from the results of the rounds before it, so no shard knows its runs in advance; shard the grid with `splitlab compare SCENARIO --set KNOB=V1,V2,... --slo EXPR... --shard I/N` and merge it (docs/scale-out.md), or run advise in one process";

/// Parses `--range LOW..HIGH` into its unit and ends: both whole seconds as Go durations
/// (`0s..600s`, `1m..10m`) or both integers (`1..20`).
pub(crate) fn parse_range(text: &str) -> Result<(KnobUnit, i64, i64), String> {
    let allowed = "allowed: LOW..HIGH in whole seconds (0s..600s) or whole numbers (1..20)";
    let (low, high) = text
        .split_once("..")
        .ok_or_else(|| format!("invalid --range {text:?}: no \"..\"; {allowed}"))?;
    let (low, high) = (low.trim(), high.trim());
    let int = |s: &str| s.parse::<i64>().ok();
    let secs = |s: &str| -> Result<i64, String> {
        let ns =
            parse_duration(s).map_err(|e| format!("invalid --range {text:?}: {e}; {allowed}"))?;
        if ns % SECOND != 0 {
            return Err(format!(
                "invalid --range {text:?}: {s} is not whole seconds; {allowed}"
            ));
        }
        Ok(ns / SECOND)
    };
    let (unit, lo, hi) = match (int(low), int(high)) {
        (Some(lo), Some(hi)) => (KnobUnit::Units, lo, hi),
        (None, None) => (KnobUnit::Seconds, secs(low)?, secs(high)?),
        _ => {
            return Err(format!(
                "invalid --range {text:?}: one end is a duration and the other a number; {allowed}"
            ))
        }
    };
    if lo > hi {
        return Err(format!(
            "invalid --range {text:?}: LOW is above HIGH; {allowed}"
        ));
    }
    Ok((unit, lo, hi))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.shard.refuse(NO_SHARD)?;
    let slos = args
        .slo
        .iter()
        .map(|s| bound::parse(s).context("--slo"))
        .collect::<anyhow::Result<Vec<Bound>>>()?;
    if !(args.pass_rate > 0.0 && args.pass_rate <= 1.0) {
        bail!(
            "invalid --pass-rate {}: allowed: a share of seeds above 0 and at most 1 (e.g. 0.9)",
            args.pass_rate
        );
    }
    let seeds = sweep::seeds(args.seeds)?;
    let jobs = sweep::jobs(args.jobs)?;
    // The scenario as written: its name, duration and revision names (the knob's values are
    // loaded, and checked, round by round).
    for set in &args.set {
        let (path, values) = crate::report::compare::parse_grid_set("--set", set)?;
        if path == args.knob {
            bail!("--set {set}: {path} is the knob; give its range with --range");
        }
        if values.len() != 1 {
            bail!(
                "--set {set}: one value per --set (a value with a comma is quoted, as in YAML: \"a,b\"); advise searches only the knob"
            );
        }
    }
    let source = super::run::ScenarioSource::read(&args.scenario)?;
    let base = source.load(&args.set)?;
    let (unit, low, high) = match &args.range {
        Some(text) => parse_range(text).map_err(anyhow::Error::msg)?,
        None if args.knob == DEFAULT_KNOB => (
            KnobUnit::Seconds,
            0,
            base.duration.as_nanos() / SECOND,
        ),
        None => bail!(
            "--range is needed for --knob {}: give LOW..HIGH in whole seconds (0s..600s) or whole numbers (1..20)",
            args.knob
        ),
    };
    let knob = Knob {
        path: args.knob.clone(),
        unit,
        low,
        high,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(format!("{}-advise", base.name)));

    let mut warned_load = BTreeSet::new();
    let mut warned_run = sweep::WarnOnce::default();
    let advice = Advice::search(
        knob.clone(),
        slos.clone(),
        seeds,
        args.pass_rate,
        |values| -> anyhow::Result<Vec<Evaluation>> {
            let list: Vec<String> = values.iter().map(|v| knob.format(*v)).collect();
            // The fixed overrides come first, as one-value lists: constant, so not in labels.
            let mut grid = args.set.clone();
            grid.push(format!("{}={}", knob.path, list.join(",")));
            let settings = sweep::load_settings_warned(&source, "--knob", &grid, &mut warned_load)?;
            let results = sweep::run_grid(settings.len(), seeds, jobs, |cell, seed| {
                observe(&settings[cell].scenario, seed, &slos)
            })?;
            let mut rows: Vec<Vec<Vec<Option<f64>>>> = vec![Vec::new(); settings.len()];
            for (i, r) in results.into_iter().enumerate() {
                let label = &settings[i / seeds].setting.label;
                let r = r.with_context(|| format!("setting {label}, seed {}", i % seeds + 1))?;
                if !r.accounting_ok {
                    bail!(
                        "internal error: request accounting does not balance (setting {label}, seed {}); outputs not written",
                        i % seeds + 1
                    );
                }
                warned_run.warn(label, r.warnings);
                rows[i / seeds].push(r.values);
            }
            let evals: Vec<Evaluation> = rows
                .into_iter()
                .map(|observed| Evaluation::new(&slos, observed))
                .collect();
            for (v, e) in list.iter().zip(&evals) {
                say!(
                    "evaluated {}={v}: all SLOs held in {}/{seeds} seeds{}",
                    knob.path,
                    e.passes(),
                    failures(&slos, e)
                )?;
            }
            Ok(evals)
        },
    )?;

    let snippet = advice.recommended.and_then(|r| {
        apply_snippet(
            &knob.path,
            &knob.format(r),
            &base.service.name,
            revision_of(&knob.path, &base),
        )
    });
    // Every file goes to a staging directory first and reaches `out` in one commit, so an
    // interrupted advise never mixes its files with an earlier one's.
    let staged = super::run::stage(&out)?;
    write_outputs(
        staged.path(),
        &out,
        &advice,
        &base,
        &args.scenario,
        snippet.as_deref(),
    )?;
    staged
        .commit(&[])
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;

    say!("{}", advice.verdict())?;
    for note in advice.notes() {
        say!("note: {note}")?;
    }
    if let Some(r) = advice.recommended {
        match &snippet {
            Some(s) => say_raw!("apply:\n{s}")?,
            None => say!(
                "apply: no Knative setting corresponds to {}; in the scenario: --set {}={}",
                knob.path,
                knob.path,
                knob.format(r)
            )?,
        }
    }
    say!(
        "outputs: {} ({ADVISE_CSV}, {ADVISE_JSON}, {FRONTIER_CHART}.png, {FRONTIER_CHART}.svg, {REPORT_FILE})",
        out.display()
    )?;
    Ok(if advice.recommended.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NO_VALUE_EXIT)
    })
}

/// ` (p99_shift_ms>800 in 3/5)`, or nothing when every SLO held in every seed.
fn failures(slos: &[Bound], e: &Evaluation) -> String {
    let parts = broken(slos, e);
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// The revision a `revisions.N.*` knob points at, by name.
fn revision_of<'a>(path: &str, scenario: &'a Scenario) -> Option<&'a str> {
    let index: usize = path
        .strip_prefix("revisions.")?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    scenario.revisions.get(index).map(|r| r.name.as_str())
}

/// One run's SLO subjects.
struct Observed {
    values: Vec<Option<f64>>,
    warnings: Vec<String>,
    accounting_ok: bool,
}

/// Simulates `scenario` with scenario seed `seed` and looks up every SLO's subject.
fn observe(scenario: &Scenario, seed: u64, slos: &[Bound]) -> Result<Observed, bound::BoundError> {
    let run = sweep::simulate_seed(scenario, seed);
    let metrics = extract_metrics(&run.report, scenario.timeline.first().map(|e| e.at));
    let summary = run.report.summary_json();
    let values = slos
        .iter()
        .map(|b| b.observe(&metrics, &summary))
        .collect::<Result<_, _>>()?;
    Ok(Observed {
        values,
        warnings: run.warnings,
        accounting_ok: run.report.accounting_ok(),
    })
}

/// `advise.csv`, `advise.json`, the frontier chart and report.html, written into `dir` (the
/// staging directory of `out`, which error messages name).
fn write_outputs(
    dir: &Path,
    out: &Path,
    advice: &Advice,
    base: &Scenario,
    scenario_path: &Path,
    snippet: Option<&str>,
) -> anyhow::Result<()> {
    let cannot = || format!("cannot write outputs to {}", out.display());
    let csv = advice.csv();
    write_atomic(dir, ADVISE_CSV, |w| w.write_all(csv.as_bytes())).with_context(cannot)?;
    let mut json = serde_json::to_vec_pretty(&advice.json(snippet))
        .expect("the advice has string keys and finite numbers only");
    json.push(b'\n');
    write_atomic(dir, ADVISE_JSON, |w| w.write_all(&json)).with_context(cannot)?;

    let knob = &advice.knob;
    let required = advice.required();
    let panels = advice
        .subjects()
        .into_iter()
        .map(|(subject, first)| FrontierPanel {
            bounds: advice
                .slos
                .iter()
                .filter(|b| b.subject_name() == subject)
                .map(|b| (b.to_string(), b.value))
                .collect(),
            points: advice
                .evals
                .iter()
                .map(|(v, e)| FrontierPoint {
                    x: *v as f64,
                    mean: e.mean(first),
                    seeds: e.observed.iter().filter_map(|row| row[first]).collect(),
                    meets: e.meets(required),
                })
                .collect(),
            subject,
        })
        .collect();
    let curves = FrontierCurves {
        title: format!("advise — {}: {} against the SLOs", base.name, knob.path),
        x_desc: match knob.unit {
            KnobUnit::Seconds => format!("{} (s)", knob.path),
            KnobUnit::Units => knob.path.clone(),
        },
        x_suffix: match knob.unit {
            KnobUnit::Seconds => "s".to_string(),
            KnobUnit::Units => String::new(),
        },
        seeds: advice.seeds,
        panels,
        recommended: advice.recommended.map(|r| (r as f64, knob.format(r))),
    };
    render_frontier_chart(dir, &curves).with_context(|| {
        format!(
            "outputs are written to {} but their chart is not",
            out.display()
        )
    })?;
    let chart = super::chart_svg(dir, FRONTIER_CHART)?;

    let mut sentences = vec![advice.verdict()];
    sentences.extend(advice.notes().into_iter().map(|n| format!("note: {n}")));
    if let Some(s) = snippet {
        sentences.push(format!("apply:\n{s}"));
    }
    sentences.push(format!(
        "assumption: the SLOs' pass rate is monotone in {} (a larger value is never worse); the search brackets the answer between the largest failing value and the next passing one",
        knob.path
    ));
    let subjects = advice.subjects();
    let mut header: Vec<String> = ["value", "seeds", "passes", "pass rate (≥ at 95%)", "meets"]
        .map(String::from)
        .to_vec();
    header.extend(subjects.iter().map(|(s, _)| format!("mean {s}")));
    header.extend(advice.slos.iter().map(|b| format!("{} failed in", b)));
    let rows = advice
        .evals
        .iter()
        .map(|(v, e)| {
            let mut row = vec![
                knob.format(*v),
                e.seeds().to_string(),
                e.passes().to_string(),
                format!(
                    "{} (≥ {})",
                    Fixed3(e.passes() as f64 / e.seeds().max(1) as f64),
                    Fixed3(pass_rate_low(e.passes(), e.seeds()))
                ),
                if e.meets(required) { "yes" } else { "no" }.to_string(),
            ];
            row.extend(subjects.iter().map(|(_, i)| {
                e.mean(*i)
                    .map(|m| Fixed3(m).to_string())
                    .unwrap_or_default()
            }));
            row.extend(e.failed.iter().map(|n| format!("{n}/{}", e.seeds())));
            row
        })
        .collect();
    super::write_report(
        dir,
        &Page {
            title: format!(
                "splitlab advise — {} ({} in {}..{}, {} seeds)",
                base.name,
                knob.path,
                knob.format(knob.low),
                knob.format(knob.high),
                advice.seeds
            ),
            scenario_yaml: std::fs::read_to_string(scenario_path).ok(),
            sentences,
            tables: vec![Table {
                caption: format!("{ADVISE_CSV}: every value evaluated"),
                header,
                rows,
            }],
            charts: vec![chart],
            ..Page::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_whole_seconds_or_whole_numbers() {
        // (text, unit and ends, or a fragment of the error)
        type Want = Result<(KnobUnit, i64, i64), &'static str>;
        let cases: [(&str, Want); 9] = [
            ("0s..600s", Ok((KnobUnit::Seconds, 0, 600))), // the default's form
            ("1m..10m", Ok((KnobUnit::Seconds, 60, 600))), // any Go duration in whole seconds
            (" 1 .. 20 ", Ok((KnobUnit::Units, 1, 20))),   // integers, spaces
            ("5..5", Ok((KnobUnit::Units, 5, 5))),         // one value
            ("0s-600s", Err("no \"..\"")),                 // wrong separator
            ("0s..1.5s", Err("1.5s is not whole seconds")), // a fraction
            (
                "0s..10",
                Err("one end is a duration and the other a number"),
            ), // mixed
            ("600s..0s", Err("LOW is above HIGH")),        // reversed
            ("a..b", Err("time: invalid duration")),       // neither
        ];
        for (text, want) in cases {
            match (parse_range(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(fragment)) => {
                    assert!(got.contains(fragment), "{text}: {got}");
                    assert!(got.contains("allowed: LOW..HIGH"), "{text}: {got}");
                }
                (got, want) => panic!("{text}: {got:?}, wanted {want:?}"),
            }
        }
    }
}
