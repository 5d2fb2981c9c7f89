//! `splitlab plot RUN_DIR`: re-render the charts of a run from the files in its output
//! directory (`summary.json`, `timeseries.csv`, `routes.csv`), without simulating again, and
//! its `report.html` (with `scenario.yaml` when the directory has it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::report::chart::render_run_charts;
use crate::report::html::{summary_tables, Chart, Page, REPORT_FILE};
use crate::report::run::SUMMARY_FILE;

/// The copy of the scenario file `run` writes next to its outputs, for `report.html`.
pub const SCENARIO_FILE: &str = "scenario.yaml";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory written by `splitlab run`.
    #[arg(value_name = "RUN_DIR")]
    dir: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // Said once, here: every file below would otherwise fail with the same cause.
    match std::fs::metadata(&args.dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "cannot plot {}: not a directory (plot reads a directory `splitlab run` wrote)",
            args.dir.display()
        ),
        Err(e) => bail!("cannot plot {}: {e}", args.dir.display()),
    }
    let written = render_run_charts(&args.dir)
        .with_context(|| format!("cannot render the charts of {}", args.dir.display()))?;
    for path in &written {
        say!("{}", path.display())?;
    }
    let report = write_run_report(&args.dir, &written)?;
    say!("{}", report.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `report.html` in `dir` from its `summary.json`, `scenario.yaml` (if there) and the
/// SVG charts among `charts` (the paths `render_run_charts` returned).
pub(crate) fn write_run_report(dir: &Path, charts: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let summary_path = dir.join(SUMMARY_FILE);
    let summary = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("cannot read {}", summary_path.display()))?;
    let tables =
        summary_tables(&summary).map_err(|e| anyhow::anyhow!("{}: {e}", summary_path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&summary)?;
    let scenario = json["scenario"].as_str().unwrap_or("(unnamed)");
    let title = match json["seed"].as_u64() {
        Some(seed) => format!("splitlab run — {scenario} (seed {seed})"),
        None => format!("splitlab run — {scenario}"),
    };
    let scenario_yaml = std::fs::read_to_string(dir.join(SCENARIO_FILE)).ok();
    let charts = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .map(|p| {
            let svg = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Chart { name, svg })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    super::write_report(
        dir,
        &Page {
            title,
            verdict: crate::report::verdict::sentences(&json),
            scenario_yaml,
            sentences: Vec::new(),
            tables: crate::report::verdict::key_table(&json)
                .into_iter()
                .collect(),
            details: tables,
            charts,
        },
    )?;
    Ok(dir.join(REPORT_FILE))
}
