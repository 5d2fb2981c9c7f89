//! `splitlab run [SCENARIO] [--out DIR] [--seed N] [--set PATH=VALUE]... [--requests]`: simulate
//! a scenario and write its outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::Write as _;

use anyhow::{bail, Context};

use crate::report::chart::render_run_charts;
use crate::report::chart::ANALYSIS_CHART;
use crate::report::run::{ANALYSIS_FILE, REQUESTS_FILE};
use crate::report::write::{write_atomic, StagedDir};
use crate::scenario::load::{load_scenario, parse_set};
use crate::scenario::shipped;
use crate::sim::{simulate, RunOptions};

/// The scenario `splitlab run` uses when none is given.
pub const DEFAULT_SCENARIO: &str = "scenarios/canary-rollout.yaml";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file, or a shipped scenario's name (`splitlab scenarios` lists them;
    /// default: scenarios/canary-rollout.yaml).
    #[arg(value_name = "SCENARIO")]
    scenario: Option<PathBuf>,
    /// Output directory (default: out/<scenario name>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overrides the scenario's seed (as `--set seed=N`, recorded in scenario.yaml).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Overrides a scenario value before validation, by its dotted path in the file
    /// (e.g. service.rollout_duration=380s, revisions.0.pods=30); repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
    /// Also write requests.csv, one row per request.
    #[arg(long)]
    requests: bool,
}

/// Reads and validates a scenario file with `--set` overrides; paths inside it resolve
/// relative to the file. A path that is not a file but names a shipped scenario
/// (`canary-rollout`, or `scenarios/canary-rollout.yaml` outside a clone) loads the copy
/// embedded in the binary, whose inputs resolve among the shipped files.
pub(crate) fn load(path: &Path, sets: &[String]) -> anyhow::Result<crate::scenario::Scenario> {
    // A bad override is named before a missing file.
    for s in sets {
        parse_set(s).map_err(anyhow::Error::msg)?;
    }
    ScenarioSource::read(path)?.load(sets)
}

/// A scenario's text and where the files it names are read from, before any override: read
/// once, loaded under each setting of a grid, and embedded in a shard's header.
#[derive(Clone, Debug)]
pub(crate) struct ScenarioSource {
    /// The path as given.
    pub path: PathBuf,
    /// The name messages show.
    name: String,
    /// The file's full text.
    pub text: String,
    /// Files the scenario names are shipped files (relative to this shipped folder), not
    /// files on disk.
    shipped: bool,
    /// The folder the scenario's relative paths resolve against.
    base: PathBuf,
}

impl ScenarioSource {
    /// Reads the scenario at `path` (a file, or a shipped scenario's name).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            if let Some(found) = path.to_str().and_then(shipped::find) {
                // The shipped text: `embedded` recognises it as the shipped scenario.
                return Ok(Self::embedded(path, found.text.to_string()));
            }
        }
        let text = super::read_input(path).map_err(|e| {
            // A bare name that is neither a file nor shipped: say what is shipped (a path with
            // folders was meant as a file, and its error says all).
            if path.exists() || path.components().count() > 1 {
                return e;
            }
            anyhow::anyhow!(
                "{e}; no shipped scenario has that name either (shipped: {}; `splitlab scenarios` \
                 says what each is for)",
                shipped::names()
            )
        })?;
        Ok(Self::embedded(path, text))
    }

    /// The scenario a shard's header embeds: `text` as the file at `path`; the files it names
    /// are read as `read` would (shipped ones from the binary, others beside `path`).
    pub fn embedded(path: &Path, text: String) -> Self {
        if !path.exists() {
            if let Some(found) = path.to_str().and_then(shipped::find) {
                if found.text == text {
                    return ScenarioSource {
                        path: path.to_path_buf(),
                        name: format!("{} (shipped)", found.file),
                        text,
                        shipped: true,
                        base: Path::new(found.file)
                            .parent()
                            .map(Path::to_path_buf)
                            .unwrap_or_default(),
                    };
                }
            }
        }
        ScenarioSource {
            path: path.to_path_buf(),
            name: super::display_name(path),
            text,
            shipped: false,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    /// Validates the scenario with `--set` overrides.
    pub fn load(&self, sets: &[String]) -> anyhow::Result<crate::scenario::Scenario> {
        let sets = sets
            .iter()
            .map(|s| parse_set(s).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let base = &self.base;
        let result = if self.shipped {
            let resolve = |rel: &str| -> Result<String, String> {
                let p = base.join(rel);
                let p = p.to_string_lossy().replace('\\', "/");
                shipped::file(&p).map(str::to_string).ok_or_else(|| {
                    format!("no shipped file {p} (the shipped scenarios read only shipped files)")
                })
            };
            load_scenario(&self.name, &self.text, &sets, &resolve)
        } else {
            let resolve = |rel: &str| -> Result<String, String> {
                let p = base.join(rel);
                super::read_referenced(&p)
            };
            load_scenario(&self.name, &self.text, &sets, &resolve)
        };
        result.map_err(|e| anyhow::anyhow!("{e}"))
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // From here a signal removes the staging directory and exits 130/143.
    super::interrupt::exit_on_signal()?;
    let path = args
        .scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCENARIO));
    // `--seed N` is the override `seed=N`, applied last: scenario.yaml then records the seed the
    // run used, so re-running it gives the same run.
    let mut sets = args.set.clone();
    sets.extend(args.seed.map(|seed| format!("seed={seed}")));
    let scenario = load(&path, &sets)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(&scenario.name));
    // Before the run: an output directory that cannot be written fails now, not after it; the
    // request log is spooled in the staging directory, beside the outputs.
    let staged = stage(&out)?;
    // The CLI, not the simulator, reads the wall clock: it reports how long the run took.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut sim = simulate(
        &scenario,
        &RunOptions {
            replication: 0,
            request_log: args.requests.then(|| staged.path().to_path_buf()),
        },
    );
    // The scenario's own warnings (settings without effect) first, then the run's.
    let mut warnings = scenario.warnings.clone();
    warnings.append(&mut sim.warnings);
    let report = sim.into_report(started.elapsed().as_secs_f64());
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if !report.accounting_ok() {
        bail!("internal error: request accounting does not balance; outputs not written");
    }
    let written = write_outputs(&staged, &report, &scenario.source_yaml)?;
    commit(staged)?;
    written.print()?;
    Ok(request_log_status(&report))
}

/// Creates `out` and a fresh staging directory in it for a run's files.
pub(crate) fn stage(out: &Path) -> anyhow::Result<StagedDir> {
    StagedDir::create(out).with_context(|| {
        format!(
            "--out {}: cannot create the directory or write in it",
            out.display()
        )
    })
}

/// Moves a run's staged files into its output directory together, removing files an earlier
/// run wrote that this one did not (its analysis, its request log).
pub(crate) fn commit(staged: StagedDir) -> anyhow::Result<()> {
    let out = staged.out().to_path_buf();
    let analysis_png = format!("{ANALYSIS_CHART}.png");
    let analysis_svg = format!("{ANALYSIS_CHART}.svg");
    staged
        .commit(&[ANALYSIS_FILE, REQUESTS_FILE, &analysis_png, &analysis_svg])
        .with_context(|| format!("cannot write outputs to {}", out.display()))
}

/// Exit 1 (after every other file is written) when `--requests` was asked for and the request
/// log could not be written during the run: the log is dropped, the rest kept.
pub(crate) fn request_log_status(report: &crate::report::run::RunReport) -> ExitCode {
    match report.request_log_error() {
        Some(e) => {
            eprintln!("error: {e}; the other outputs are written");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// Writes a run's files (`RunReport::write`), the scenario as run, the charts and report.html
/// into `staged` (the caller commits them): the same outputs for `run` and `live`. Prints
/// nothing, so a closed stdout cannot cut the outputs short; [`Written::print`] reports them
/// afterwards.
pub(crate) fn write_outputs(
    staged: &StagedDir,
    report: &crate::report::run::RunReport,
    scenario_yaml: &str,
) -> anyhow::Result<Written> {
    let (dir, out) = (staged.path(), staged.out());
    report
        .write(dir)
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    // The scenario as run (with its overrides), for report.html and for `plot`.
    write_atomic(dir, super::plot::SCENARIO_FILE, |w| {
        w.write_all(scenario_yaml.as_bytes())
    })
    .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    // The charts are drawn from the files just written, exactly as `splitlab plot` would.
    let charts = render_run_charts(dir).with_context(|| {
        format!(
            "outputs are written to {} but their charts are not",
            out.display()
        )
    })?;
    super::plot::write_run_report(dir, &charts)?;
    Ok(Written {
        out: out.to_path_buf(),
        summary: report.summary_table(),
        charts: charts.len(),
        html: out.join(crate::report::html::REPORT_FILE),
    })
}

/// What [`write_outputs`] wrote, to print once every file is on disk.
pub(crate) struct Written {
    out: std::path::PathBuf,
    summary: String,
    charts: usize,
    html: std::path::PathBuf,
}

impl Written {
    /// Prints the summary table and where the outputs are.
    pub(crate) fn print(&self) -> std::io::Result<()> {
        let out = self.out.display();
        say_raw!("{}", self.summary)?;
        say!("outputs: {out}")?;
        say!("charts: {} files in {out}", self.charts)?;
        say!("report: {}", self.html.display())
    }
}
