//! The command line: clap types and one function per subcommand. The only module that uses
//! `anyhow` and prints; everything it calls returns typed errors.

/// `println!` that returns the write error instead of panicking (a closed pipe, as in
/// `splitlab run | head -1`, must not panic); use with `?`.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the write error instead of panicking; use with `?`.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod accuracy;
mod advise;
mod calibrate;
mod compare;
mod diff;
mod interrupt;
mod live;
mod plan;
mod plot;
mod rollout;
mod run;
mod sweep;
mod traffic;
mod validate;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// splitlab: simulate and load-test Knative Serving traffic splits and gradual rollouts.
#[derive(Debug, Parser)]
#[command(name = "splitlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a scenario (default: scenarios/canary-rollout.yaml) and write its outputs.
    Run(run::Args),
    /// Re-render a run's charts from the files in its output directory.
    Plot(plot::Args),
    /// Validate Knative Service/Route manifests as the Knative webhook would.
    Validate(validate::Args),
    /// Apply `kn service update --traffic/--tag/--untag` edits to a Service manifest.
    Traffic(traffic::Args),
    /// Print the schedule of a rollout-duration rollout as CSV (t_s,revision,percent).
    Rollout(rollout::Args),
    /// Route synthetic requests through a picker and report split accuracy.
    Accuracy(accuracy::Args),
    /// Run a grid of settings × seeds in parallel and compare them (compare.csv, paired.csv).
    Compare(compare::Args),
    /// Run a scenario for real: pod servers, the gateway and the activator on 127.0.0.1,
    /// driven by the scenario's arrivals in wall-clock time.
    Live(live::LiveArgs),
    /// Send open-loop HTTP load to an endpoint and write the same outputs as a run.
    Load(Box<live::LoadArgs>),
    /// Run the splitting gateway alone in front of backends named in a config file.
    Gateway(live::GatewayArgs),
    /// Compare two runs' summary.json metric by metric, within statistical noise.
    Diff(diff::Args),
    /// Build a scenario from a cluster's Prometheus metrics (a server or a saved dump).
    Calibrate(calibrate::Args),
    /// Find the smallest value of a knob (default service.rollout_duration) whose SLOs hold
    /// over seeds: exit 0 with a recommendation, 3 when no value in the range meets them.
    Advise(advise::Args),
    /// How likely Flagger analysis settings are to catch a regressed canary, how fast they
    /// promote a healthy one, and which to use (plan.csv).
    Plan(plan::Args),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Traffic(args) => traffic::run(&args),
        Command::Rollout(args) => rollout::run(&args),
        Command::Accuracy(args) => accuracy::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Live(args) => live::live(&args),
        Command::Load(args) => live::load_cmd(&args),
        Command::Gateway(args) => live::gateway(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Advise(args) => advise::run(&args),
        Command::Plan(args) => plan::run(&args),
    }
}

/// The chart `name` as `report.html` embeds it: its SVG, read back from `dir/NAME.svg` where it
/// was just drawn.
fn chart_svg(dir: &Path, name: &str) -> anyhow::Result<crate::report::html::Chart> {
    let path = dir.join(format!("{name}.svg"));
    let svg = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(crate::report::html::Chart {
        name: name.to_string(),
        svg,
    })
}

/// Renders `page` into `dir/report.html`, written atomically.
fn write_report(dir: &Path, page: &crate::report::html::Page) -> anyhow::Result<()> {
    use crate::report::html::{render_page, REPORT_FILE};
    let html = render_page(page);
    crate::report::write::write_atomic(dir, REPORT_FILE, |w| {
        std::io::Write::write_all(w, html.as_bytes())
    })
    .with_context(|| format!("cannot write {}", dir.join(REPORT_FILE).display()))
}

/// Reads a whole input file as UTF-8, naming it in the error.
fn read_input(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The name shown for a file in messages.
fn display_name(path: &Path) -> String {
    path.display().to_string()
}
