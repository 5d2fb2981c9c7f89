//! `splitlab diff RUN_A RUN_B [--z Z] [--check]`: compare two runs from their `summary.json`,
//! metric by metric, and say which differences lie beyond statistical noise.
//!
//! The comparison and its table are `report::diff`; this prints the table and maps `--check` to
//! the exit status: 1 when a share or outcome proportion differs beyond noise. Latency
//! differences are printed but never fail the check, because a live run pays real network and
//! scheduling costs that a simulation does not model.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::report::diff::{diff_runs, render, RunSummary, Z999};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory written by `splitlab run` (or the live mode).
    #[arg(value_name = "RUN_A")]
    a: PathBuf,
    /// Another such directory, compared with RUN_A (differences are B − A).
    #[arg(value_name = "RUN_B")]
    b: PathBuf,
    /// Half-width of the noise band in standard errors [default: 3.29, 99.9% two-sided].
    #[arg(long, value_name = "Z", default_value_t = Z999, hide_default_value = true, value_parser = parse_z)]
    z: f64,
    /// Exit 1 when a share or an outcome proportion differs beyond noise (latency differences
    /// are reported but do not fail the check).
    #[arg(long)]
    check: bool,
}

/// A z of a noise band: a finite number above 0.
fn parse_z(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(z) if z.is_finite() && z > 0.0 => Ok(z),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let a = RunSummary::read(&args.a)?;
    let b = RunSummary::read(&args.b)?;
    let diff = diff_runs(&a, &b, args.z);
    say_raw!("{}", render(&diff))?;
    if args.check && diff.check_failed() {
        eprintln!("check failed: a share or outcome proportion differs beyond noise");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
