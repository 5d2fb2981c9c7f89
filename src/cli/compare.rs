//! `splitlab compare SCENARIO --set PATH=V1,V2,... [--set ...] [--seeds N] [--jobs J] [--out DIR]
//! [--slo EXPR]...`: run a grid of settings × seeds in parallel, give each setting's absolute
//! values, say which differences are real, and (with `--slo`) which settings pass the SLOs in
//! every seed.
//!
//! The runs go through the sweep engine (`cli::sweep`): every setting is loaded and validated
//! before any run starts, seed k is the scenario seed of run k under every setting (common
//! random numbers), and the metrics are collected by index, so the files are the same bytes
//! for any J.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::model::time::SimTime;

use crate::report::bound::{self, Bound};
use crate::report::chart::{render_compare_chart, CompareCurves, QueueSeries, COMPARE_CHART};
use crate::report::compare::{
    extract_metrics, queue_series, Comparison, MetricValues, COMPARE_FILE, PAIRED_FILE,
};
use crate::report::compare::{Estimate, Metric};
use crate::report::html::{Page, Table, REPORT_FILE};
use crate::report::slo::{pass_rate_low, setting_sentence, Evaluation};
use crate::scenario::Scenario;

use super::run::ScenarioSource;
use super::sweep;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// A scenario value and the values to compare, by dotted path (e.g.
    /// service.rollout_duration=0s,120s,380s); repeatable: the grid is the product of all
    /// lists, the first varying slowest. Commas inside quotes, [...] or {...} do not split.
    #[arg(
        long = "set",
        value_name = "PATH=V1,V2,...",
        allow_hyphen_values = true
    )]
    set: Vec<String>,
    /// Seeds 1..=N are run under every setting.
    #[arg(long, value_name = "N", default_value_t = 5)]
    seeds: u64,
    /// Runs at once (default: the number of available cores).
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Output directory (default: out/<scenario name>-compare).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A service-level objective (as `advise --slo`: p99_shift_ms<=800, expired==0,
    /// requests.rejected_qp<=10); repeatable. A setting passes when every SLO held in every
    /// seed.
    #[arg(long = "slo", value_name = "EXPR", allow_hyphen_values = true)]
    slo: Vec<String>,
    #[command(flatten)]
    shard: sweep::ShardArgs,
}

impl Args {
    /// The arguments that define the grid, as a shard's header records them (parsing them
    /// again after `compare SCENARIO` gives the same grid).
    fn grid_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self.set.iter().map(|s| format!("--set={s}")).collect();
        args.push(format!("--seeds={}", self.seeds));
        args.extend(self.slo.iter().map(|s| format!("--slo={s}")));
        args
    }
}

/// The grid of a compare: what `run` computes runs of and what `finish` writes from them.
struct Grid {
    source: ScenarioSource,
    slos: Vec<Bound>,
    seeds: usize,
    settings: Vec<sweep::LoadedSetting>,
}

impl Grid {
    fn new(args: &Args, source: ScenarioSource) -> anyhow::Result<Self> {
        let slos = args
            .slo
            .iter()
            .map(|s| bound::parse(s).context("--slo"))
            .collect::<anyhow::Result<Vec<Bound>>>()?;
        let seeds = sweep::seeds(args.seeds)?;
        let settings = sweep::load_settings(&source, "--set", &args.set)?;
        Ok(Grid {
            source,
            slos,
            seeds,
            settings,
        })
    }

    fn runs(&self) -> usize {
        self.settings.len() * self.seeds
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // From here a signal removes the staging directory and exits 130/143.
    super::interrupt::exit_on_signal()?;
    let part = args.shard.part()?;
    let jobs = sweep::jobs(args.jobs)?;
    let grid = Grid::new(args, ScenarioSource::read(&args.scenario)?)?;
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("out").join(format!("{}-compare", grid.settings[0].scenario.name))
    });
    let results = sweep::run_grid_part(
        grid.settings.len(),
        grid.seeds,
        jobs,
        part.as_ref().map(|p| p.0),
        |cell, seed| run_one(&grid.settings[cell].scenario, seed, seed == 1, &grid.slos),
    )?;
    match part {
        Some(part) => {
            sweep::write_shard(
                "compare",
                args.grid_args(),
                &grid.source,
                grid.runs(),
                part,
                &out,
                &results,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        None => finish(grid, &out, results),
    }
}

/// `splitlab merge` of compare shards: the outputs of the whole grid from its kept results.
pub(crate) fn merge(input: &sweep::MergeInput, out: &Path) -> anyhow::Result<ExitCode> {
    super::interrupt::exit_on_signal()?;
    let super::Command::Compare(args) = super::reparse("compare", &input.grid)? else {
        unreachable!("reparse parses the command it is given")
    };
    let grid = Grid::new(&args, input.scenario())?;
    let results = input.results(grid.runs())?;
    finish(grid, out, results)
}

/// Writes the outputs of the whole grid from every run's kept result, in run order: the one
/// code path of a single process and of `merge`.
fn finish(grid: Grid, out: &Path, results: Vec<RunResult>) -> anyhow::Result<ExitCode> {
    let Grid {
        source,
        slos,
        seeds,
        settings,
    } = grid;
    let mut runs = Vec::with_capacity(results.len());
    let mut queues = Vec::with_capacity(settings.len());
    let mut warned = sweep::WarnOnce::default();
    let mut slo_rows: Vec<Vec<Vec<Option<f64>>>> = vec![Vec::new(); settings.len()];
    for (i, r) in results.into_iter().enumerate() {
        let label = &settings[i / seeds].setting.label;
        let seed = i % seeds + 1;
        if !r.accounting_ok {
            bail!(
                "internal error: request accounting does not balance (setting {label}, seed \
                 {seed}); outputs not written"
            );
        }
        warned.warn(label, r.warnings);
        slo_rows[i / seeds].push(
            r.slo_values
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("setting {label}, seed {seed}"))?,
        );
        runs.push(r.metrics);
        if let Some(q) = r.queues {
            queues.push(q);
        }
    }
    let scenario_name = settings[0].scenario.name.clone();
    let comparison = Comparison::new(
        settings.into_iter().map(|s| s.setting.label).collect(),
        seeds,
        runs,
    );
    // Every file goes to a staging directory first and reaches `out` in one commit, so an
    // interrupted compare never mixes its files with an earlier one's.
    let staged = super::run::stage(out)?;
    let dir = staged.path();
    comparison
        .write(dir)
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    let curves = CompareCurves {
        scenario: scenario_name,
        labels: comparison.labels().to_vec(),
        seeds,
        panels: comparison.metric_panels(),
        queues,
    };
    render_compare_chart(dir, &curves).with_context(|| {
        format!(
            "outputs are written to {} but their chart is not",
            out.display()
        )
    })?;
    let chart = super::chart_svg(dir, COMPARE_CHART)?;
    let slo_evals: Vec<Evaluation> = slo_rows
        .into_iter()
        .map(|rows| Evaluation::new(&slos, rows))
        .collect();
    let slo_sentences: Vec<String> = comparison
        .labels()
        .iter()
        .zip(&slo_evals)
        .filter(|_| !slos.is_empty())
        .map(|(label, e)| format!("SLOs: {}", setting_sentence(label, &slos, e)))
        .collect();
    let mut sentences = comparison.absolute_sentences();
    sentences.extend(comparison.sentences());
    sentences.extend(slo_sentences.iter().cloned());
    // The page groups the differences per metric: one finding each, not one per setting.
    let mut findings = comparison.absolute_sentences();
    findings.extend(comparison.grouped_sentences());
    findings.extend(slo_sentences);
    // The scenario file itself; the settings' overrides are in the tables' columns.
    let scenario_yaml = Some(source.text);
    let short_baseline = crate::report::chart::short_labels(comparison.labels())
        .0
        .first()
        .cloned()
        .unwrap_or_default();
    super::write_report(
        dir,
        &Page {
            title: format!(
                "splitlab compare — {} ({} settings × {seeds} seeds)",
                curves.scenario,
                comparison.labels().len()
            ),
            scenario_yaml,
            sentences: findings,
            tables: [slo_table(&comparison, &slos, &slo_evals)]
                .into_iter()
                .flatten()
                .chain([
                    estimate_table(
                        &comparison,
                        "compare.csv: mean [95% CI, percentile bootstrap] over seeds".to_string(),
                        &comparison.summary(),
                        |l| format!("{l}: mean [95% CI]"),
                    ),
                    estimate_table(
                        &comparison,
                        format!(
                            "paired.csv: mean difference [95% CI, Student's t] against {}",
                            comparison.labels()[0]
                        ),
                        &comparison.paired(),
                        |l| format!("{l} − {}", short_baseline),
                    ),
                ])
                .collect(),
            charts: vec![chart],
            ..Page::default()
        },
    )?;
    staged
        .commit(&[])
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    for sentence in &sentences {
        say!("{sentence}")?;
    }
    say!(
        "outputs: {} ({COMPARE_FILE}, {PAIRED_FILE}, compare.png, compare.svg, {REPORT_FILE})",
        out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What compare keeps of a run (and a shard writes of it).
#[derive(PartialEq, serde::Serialize, serde::Deserialize)]
struct RunResult {
    metrics: MetricValues,
    /// Each `--slo`'s subject in this run, or why one has none.
    slo_values: Result<Vec<Option<f64>>, String>,
    /// Seed 1's queues, for the chart's overlay; `None` for the other seeds.
    queues: Option<QueueSeries>,
    warnings: Vec<String>,
    accounting_ok: bool,
}

/// Simulates one setting with scenario seed `seed`; only the metrics are kept, and the queue
/// series when `keep_queues`.
fn run_one(scenario: &Scenario, seed: u64, keep_queues: bool, slos: &[Bound]) -> RunResult {
    let run = sweep::simulate_seed(scenario, seed);
    let first_event: Option<SimTime> = scenario.timeline.first().map(|e| e.at);
    let metrics = extract_metrics(&run.report, first_event);
    // summary.json's value tree only when a bound may need it
    let summary = if slos.is_empty() {
        serde_json::Value::Null
    } else {
        run.report.summary_json()
    };
    RunResult {
        slo_values: slos
            .iter()
            .map(|b| b.observe(&metrics, &summary))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string()),
        metrics,
        queues: keep_queues.then(|| queue_series(&run.report)),
        warnings: run.warnings,
        accounting_ok: run.report.accounting_ok(),
    }
}

/// The `--slo` table: per setting, the seeds where every SLO held, each SLO's failing seeds,
/// and whether the setting passes (every SLO in every seed). `None` without `--slo`.
fn slo_table(comparison: &Comparison, slos: &[Bound], evals: &[Evaluation]) -> Option<Table> {
    if slos.is_empty() {
        return None;
    }
    let mut header = vec![
        "setting".to_string(),
        "passes".to_string(),
        "all SLOs held in".to_string(),
        "pass rate ≥ (95%)".to_string(),
    ];
    header.extend(slos.iter().map(|b| format!("{b} failed in")));
    let rows = comparison
        .labels()
        .iter()
        .zip(evals)
        .map(|(label, e)| {
            let mut row = vec![
                label.clone(),
                if e.passes() == e.seeds() { "yes" } else { "no" }.to_string(),
                format!("{}/{}", e.passes(), e.seeds()),
                format!("{:.3}", pass_rate_low(e.passes(), e.seeds())),
            ];
            row.extend(e.failed.iter().map(|n| format!("{n}/{}", e.seeds())));
            row
        })
        .collect();
    Some(Table {
        caption: "SLOs: which settings pass (every SLO in every seed)".to_string(),
        header,
        rows,
    })
}

/// A metric × setting table of estimates: `mean [low, high]` (`mean` alone without a CI, empty
/// when undefined), 3 decimals as in the CSV files.
/// `column` names a setting's column from its label (each table's headers say what its cells
/// are, so the two tables never share a header row).
fn estimate_table(
    comparison: &Comparison,
    caption: String,
    rows: &[(usize, Metric, Option<Estimate>)],
    column: impl Fn(&str) -> String,
) -> Table {
    // Columns by the settings' values; the caption names their paths once.
    let (short, axis) = crate::report::chart::short_labels(comparison.labels());
    let caption = format!("{caption} (columns: {axis})");
    let mut header = vec!["metric".to_string()];
    header.extend(short.iter().map(|l| column(l)));
    let rows =
        Metric::ALL
            .iter()
            .map(|&metric| {
                let mut row = vec![metric.name().to_string()];
                row.extend(rows.iter().filter(|(_, m, _)| *m == metric).map(
                    |(_, _, est)| match est {
                        None => String::new(),
                        Some(e) => match e.ci95 {
                            Some((lo, hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", e.mean),
                            None => format!("{:.3}", e.mean),
                        },
                    },
                ));
                row
            })
            .collect();
    Table {
        caption,
        header,
        rows,
    }
}
