//! `splitlab plot RUN_DIR`: re-render the charts of a run from the files in its output
//! directory (`summary.json`, `timeseries.csv`, `routes.csv`), without simulating again.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::report::chart::render_run_charts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory written by `splitlab run`.
    #[arg(value_name = "RUN_DIR")]
    dir: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let written = render_run_charts(&args.dir)
        .with_context(|| format!("cannot render the charts of {}", args.dir.display()))?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
