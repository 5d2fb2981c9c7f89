//! The one sweep engine behind every command that runs settings × seeds (`compare`, `plan`,
//! `advise`, and the commands to come): loading the grid's settings, the worker pool, the progress bar,
//! and the order runs are collected in.
//!
//! Each command is a small policy on top: what it varies (the cells), what it keeps of each
//! run (the closure's result), and what it computes from the kept results.
//!
//! Invariants:
//! - Every setting is loaded and validated before any run starts, so a bad override fails at
//!   once, naming its setting.
//! - Run `i` is cell `i / seeds` with seed `i % seeds + 1`: seed k is the scenario seed of run k
//!   in every cell (common random numbers: the same arrivals everywhere).
//! - Results are collected by index, so what a command writes is the same bytes for any
//!   `--jobs`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::report::compare::{expand_grid, parse_grid_set, Setting};
use crate::report::run::RunReport;
use crate::scenario::Scenario;
use crate::sim::{simulate, RunOptions};

/// At most this many seeds per setting: a 95% interval of a mean narrows as 1/sqrt(seeds), so
/// 10,000 seeds put it within 2% of the spread between runs; more buy nothing a decision needs
/// and each costs a whole run (docs/limits.md).
pub(crate) const MAX_SEEDS: usize = 10_000;
/// At most this many worker threads: one per core is the fastest; more only add threads (a
/// million kept creating them).
pub(crate) const MAX_JOBS: usize = 256;
/// At most this many runs in one grid (settings x seeds): every run's kept values stay in
/// memory until the grid's statistics are computed.
pub(crate) const MAX_RUNS: usize = 1_000_000;

/// One setting of the grid, loaded and validated.
pub(crate) struct LoadedSetting {
    /// The grid point: its overrides and its label.
    pub setting: Setting,
    pub scenario: Scenario,
}

/// The worker count: `--jobs J`, or the available cores when not given.
pub(crate) fn jobs(arg: Option<usize>) -> anyhow::Result<usize> {
    Ok(match arg {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(j) if j > MAX_JOBS => bail!(
            "--jobs {j} is too many; allowed: 1 to {MAX_JOBS} (one worker per core is the fastest; more only add threads)"
        ),
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    })
}

/// `--seeds N` as a count of runs per cell.
pub(crate) fn seeds(arg: u64) -> anyhow::Result<usize> {
    if arg == 0 {
        bail!("--seeds must be at least 1");
    }
    match usize::try_from(arg) {
        Ok(n) if n <= MAX_SEEDS => Ok(n),
        _ => bail!(
            "--seeds {arg} is too many; allowed: 1 to {MAX_SEEDS} ({MAX_SEEDS} seeds already narrow a 95% interval to 2% of the spread between runs)"
        ),
    }
}

/// Expands the `--set`-style grid arguments (`flag` names them in messages) and loads every
/// setting of `scenario`. A scenario warning usually holds for every setting: it is printed
/// once, naming the first setting it came from.
pub(crate) fn load_settings(
    scenario: &Path,
    flag: &'static str,
    grid: &[String],
) -> anyhow::Result<Vec<LoadedSetting>> {
    load_settings_warned(scenario, flag, grid, &mut BTreeSet::new())
}

/// `load_settings` for a command that loads several grids in turn (`advise`, one per search
/// round): a warning in `warned` was printed before and is not printed again.
pub(crate) fn load_settings_warned(
    scenario: &Path,
    flag: &'static str,
    grid: &[String],
    warned: &mut BTreeSet<String>,
) -> anyhow::Result<Vec<LoadedSetting>> {
    let sets = grid
        .iter()
        .map(|s| parse_grid_set(flag, s))
        .collect::<Result<Vec<_>, _>>()?;
    let grid = expand_grid(flag, &sets)?;
    grid.into_iter()
        .map(|setting| {
            let loaded = super::run::load(scenario, &setting.set_args())
                .with_context(|| format!("setting {}", setting.label))?;
            for w in &loaded.warnings {
                if warned.insert(w.clone()) {
                    eprintln!("warning: setting {}: {w}", setting.label);
                }
            }
            Ok(LoadedSetting {
                setting,
                scenario: loaded,
            })
        })
        .collect()
}

/// Runs `run(cell, seed)` for every cell in `0..cells` and seed in `1..=seeds` on a pool of
/// `jobs` threads, with a progress bar on a terminal; the results come back in run order
/// (cell-major), whatever order the runs finish in.
pub(crate) fn run_grid<R, F>(
    cells: usize,
    seeds: usize,
    jobs: usize,
    run: F,
) -> anyhow::Result<Vec<R>>
where
    R: Send,
    F: Fn(usize, u64) -> R + Sync,
{
    let total = cells.saturating_mul(seeds);
    if total > MAX_RUNS {
        bail!(
            "the grid is {total} runs ({cells} settings x {seeds} seeds); allowed: at most {MAX_RUNS} runs (fewer settings or seeds)"
        );
    }
    // The stderr target draws nothing when stderr is not a terminal.
    let progress = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
            .expect("the template is valid"),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("cannot start the worker threads")?;
    let results = pool.install(|| {
        (0..total)
            .into_par_iter()
            .map(|i| {
                let r = run(i / seeds, (i % seeds) as u64 + 1);
                progress.inc(1);
                r
            })
            .collect()
    });
    progress.finish_and_clear();
    Ok(results)
}

/// One simulated run of a sweep: its report (requests not kept, no wall time: nothing of it
/// reaches a sweep's files) and the warnings the run raised.
pub(crate) struct SeedRun {
    pub report: RunReport,
    pub warnings: Vec<String>,
}

/// Simulates `scenario` with scenario seed `seed`.
pub(crate) fn simulate_seed(scenario: &Scenario, seed: u64) -> SeedRun {
    let mut scenario = scenario.clone();
    scenario.seed = seed;
    let mut sim = simulate(
        &scenario,
        &RunOptions {
            replication: 0,
            request_log: None,
        },
    );
    let warnings = std::mem::take(&mut sim.warnings);
    SeedRun {
        report: sim.into_report(0.0),
        warnings,
    }
}

/// Prints each run warning once per cell label (a warning usually repeats for every seed).
#[derive(Default)]
pub(crate) struct WarnOnce(BTreeSet<(String, String)>);

impl WarnOnce {
    pub fn warn(&mut self, label: &str, warnings: impl IntoIterator<Item = String>) {
        for w in warnings {
            if self.0.insert((label.to_string(), w.clone())) {
                eprintln!("warning: setting {label}: {w}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_jobs_are_bounded_with_the_reason() {
        // (--seeds, the error, or None when accepted)
        let seed_cases: [(u64, Option<&str>); 5] = [
            // no run at all
            (0, Some("--seeds must be at least 1")),
            // the most a sweep needs
            (MAX_SEEDS as u64, None),
            // 100 million aborted on allocation
            (100_000_000, Some("--seeds 100000000 is too many; allowed: 1 to 10000 (10000 seeds already narrow a 95% interval to 2% of the spread between runs)")),
            // past i64: panicked with an overflow
            (9_223_372_036_854_775_809, Some("--seeds 9223372036854775809 is too many; allowed: 1 to 10000 (10000 seeds already narrow a 95% interval to 2% of the spread between runs)")),
            // u64::MAX: panicked with a capacity overflow
            (u64::MAX, Some("--seeds 18446744073709551615 is too many; allowed: 1 to 10000 (10000 seeds already narrow a 95% interval to 2% of the spread between runs)")),
        ];
        for (arg, want) in seed_cases {
            match (seeds(arg), want) {
                (Ok(n), None) => assert_eq!(n as u64, arg),
                (Err(e), Some(msg)) => assert_eq!(e.to_string(), msg),
                (got, _) => panic!("--seeds {arg}: {:?}", got.map_err(|e| e.to_string())),
            }
        }
        // (--jobs, the error, or None when accepted)
        let job_cases: [(usize, Option<&str>); 3] = [
            (0, Some("--jobs must be at least 1")),
            (MAX_JOBS, None),
            // a million kept creating threads
            (1_000_000, Some("--jobs 1000000 is too many; allowed: 1 to 256 (one worker per core is the fastest; more only add threads)")),
        ];
        for (arg, want) in job_cases {
            match (jobs(Some(arg)), want) {
                (Ok(n), None) => assert_eq!(n, arg),
                (Err(e), Some(msg)) => assert_eq!(e.to_string(), msg),
                (got, _) => panic!("--jobs {arg}: {:?}", got.map_err(|e| e.to_string())),
            }
        }
    }

    #[test]
    fn a_grid_of_too_many_runs_is_refused_before_running() {
        // 1,000 settings x 10,000 seeds: each within its limit, together ten million runs
        let Err(err) = run_grid(1_000, 10_000, 1, |_, _| ()) else {
            panic!("ten million runs were started");
        };
        assert_eq!(
            err.to_string(),
            "the grid is 10000000 runs (1000 settings x 10000 seeds); allowed: at most 1000000 runs (fewer settings or seeds)"
        );
    }
}
