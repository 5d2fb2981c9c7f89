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
//! - `--shard I/N` runs the runs `i` with `i % N == I` and writes their kept results as a shard
//!   (`report::shard`); a command's outputs are computed from the kept results of the whole
//!   grid by one function, whether they come from this process or from `merge`, so a merged
//!   grid writes the bytes a single process does (docs/scale-out.md).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::report::compare::{expand_grid, parse_grid_set, Setting};
use crate::report::run::RunReport;
use crate::report::shard::{self, EmbeddedScenario, Header, ShardSpec, ShardWriter};
use crate::scenario::Scenario;
use crate::sim::{simulate, RunOptions};

use super::run::ScenarioSource;

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
    scenario: &ScenarioSource,
    flag: &'static str,
    grid: &[String],
) -> anyhow::Result<Vec<LoadedSetting>> {
    load_settings_warned(scenario, flag, grid, &mut BTreeSet::new())
}

/// `load_settings` for a command that loads several grids in turn (`advise`, one per search
/// round): a warning in `warned` was printed before and is not printed again.
pub(crate) fn load_settings_warned(
    scenario: &ScenarioSource,
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
            let loaded = scenario
                .load(&setting.set_args())
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

/// The sharding flags of a sweep command (docs/scale-out.md).
#[derive(Debug, Default, clap::Args)]
pub struct ShardArgs {
    /// Run only shard I of N (0-based) of the grid's runs, the runs i with i % N == I, and
    /// write their results to DIR/shard-I.jsonl for `splitlab merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Run shard $JOB_COMPLETION_INDEX of N (a Kubernetes Indexed Job's pod).
    #[arg(long, value_name = "N", conflicts_with = "shard")]
    shards: Option<usize>,
    /// Write the shard to stdout as JSON Lines instead of a file (`kubectl logs` collects it);
    /// everything else goes to stderr. Without --shard/--shards: the whole grid as shard 0/1.
    #[arg(long, value_name = "FORMAT", value_parser = ["jsonl"])]
    emit: Option<String>,
}

/// Where a shard goes.
pub(crate) enum ShardOut {
    /// `DIR/shard-I.jsonl`.
    Dir,
    /// Stdout (`--emit jsonl`).
    Stdout,
}

impl ShardArgs {
    /// The shard this process runs, or `None` for the whole grid with the command's outputs.
    pub fn part(&self) -> anyhow::Result<Option<(ShardSpec, ShardOut)>> {
        let to = || match self.emit {
            Some(_) => ShardOut::Stdout,
            None => ShardOut::Dir,
        };
        if let Some(text) = &self.shard {
            return Ok(Some((
                shard::parse_spec(text).map_err(anyhow::Error::msg)?,
                to(),
            )));
        }
        if let Some(count) = self.shards {
            if count == 0 {
                bail!("--shards must be at least 1");
            }
            let var = "JOB_COMPLETION_INDEX";
            let Some(value) = std::env::var_os(var) else {
                bail!(
                    "--shards {count} reads this shard's index from {var}, which is not set; \
                     give --shard I/{count} outside a Kubernetes Indexed Job"
                );
            };
            let text = value.to_string_lossy();
            return match text.trim().parse::<usize>() {
                Ok(index) if index < count => Ok(Some((ShardSpec { index, count }, to()))),
                _ => bail!(
                    "{var}={text:?} is not a shard index for --shards {count}; allowed: 0 to {}",
                    count - 1
                ),
            };
        }
        Ok(self
            .emit
            .as_ref()
            .map(|_| (ShardSpec { index: 0, count: 1 }, ShardOut::Stdout)))
    }

    /// Refuses sharding for a command that cannot be sharded, saying why.
    pub fn refuse(&self, why: &str) -> anyhow::Result<()> {
        if self.shard.is_some() || self.shards.is_some() || self.emit.is_some() {
            bail!("{why}");
        }
        Ok(())
    }
}

/// Writes the kept results `results` of shard `spec` (in index order, as [`run_grid_part`]
/// returns them) with their header: to `out/shard-I.jsonl`, or to stdout.
pub(crate) fn write_shard<R>(
    command: &str,
    args: Vec<String>,
    scenario: &ScenarioSource,
    total: usize,
    (spec, to): (ShardSpec, ShardOut),
    out: &Path,
    results: &[R],
) -> anyhow::Result<()>
where
    R: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    // A result that does not read back equal (a NaN or an infinity, which JSON writes as null)
    // would merge into other bytes than a single run writes: refused here, not at the merge.
    for (i, r) in shard::indices(spec, total).zip(results) {
        let text = serde_json::to_string(r).context("cannot serialize a run's result")?;
        let back: Option<R> = serde_json::from_str(&text).ok();
        if back.as_ref() != Some(r) {
            bail!(
                "internal error: run {i}'s result does not read back from JSON unchanged (a NaN \
                 or infinite value?): {text}; the shard is not written"
            );
        }
    }
    let header = Header {
        format: shard::FORMAT.to_string(),
        command: command.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        args,
        scenario: EmbeddedScenario {
            path: scenario.path.display().to_string(),
            text: scenario.text.clone(),
        },
        shard: spec.index,
        shards: spec.count,
        total,
    };
    let fill = |w: &mut dyn std::io::Write| -> std::io::Result<()> {
        let mut writer = ShardWriter::new(w, &header)?;
        for (i, r) in shard::indices(spec, total).zip(results) {
            writer.item(i, r)?;
        }
        writer.finish().map(drop)
    };
    match to {
        ShardOut::Stdout => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            fill(&mut lock).context("cannot write the shard to stdout")?;
            lock.flush().context("cannot write the shard to stdout")?;
        }
        ShardOut::Dir => {
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let name = shard::file_name(spec.index);
            crate::report::write::write_atomic(out, &name, |w| fill(w))
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            say!(
                "shard {} of {}: {} of {total} runs written to {}",
                spec.index,
                spec.count,
                results.len(),
                out.join(&name).display()
            )?;
        }
    }
    Ok(())
}

/// A merge's inputs: the shard files and their checked common header.
pub(crate) struct MergeInput {
    pub files: Vec<PathBuf>,
    pub grid: Header,
}

impl MergeInput {
    /// The scenario the shards ran, from the header.
    pub fn scenario(&self) -> ScenarioSource {
        ScenarioSource::embedded(
            Path::new(&self.grid.scenario.path),
            self.grid.scenario.text.clone(),
        )
    }

    /// Every run's kept result, in run order, after checking the shards ran a grid of `total`.
    pub fn results<R: serde::de::DeserializeOwned>(&self, total: usize) -> anyhow::Result<Vec<R>> {
        if total != self.grid.total {
            bail!(
                "the shards' header says {} runs, but their arguments make a grid of {total}; \
                 were they written by another build of splitlab {}?",
                self.grid.total,
                self.grid.version
            );
        }
        Ok(shard::read_items(&self.files, &self.grid)?)
    }
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
    run_grid_part(cells, seeds, jobs, None, run)
}

/// [`run_grid`] for the runs of shard `part` alone (all of them for `None`), in run order.
pub(crate) fn run_grid_part<R, F>(
    cells: usize,
    seeds: usize,
    jobs: usize,
    part: Option<ShardSpec>,
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
    let part = part.unwrap_or(ShardSpec { index: 0, count: 1 });
    // Shard I's runs (`shard::indices`: I, I + N, I + 2N, ... below the total), the same list
    // `write_shard` numbers the results by.
    let mine: Vec<usize> = shard::indices(part, total).collect();
    let progress =
        ProgressBar::with_draw_target(Some(mine.len() as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}")
            .expect("the template is valid"),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("cannot start the worker threads")?;
    let results = pool.install(|| {
        mine.into_par_iter()
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
    fn a_result_json_cannot_carry_exactly_is_refused_before_the_shard_is_written() {
        let dir = std::env::temp_dir().join(format!("splitlab-sweep-nan-{}", std::process::id()));
        let scenario = ScenarioSource::embedded(Path::new("s.yaml"), "name: s\n".to_string());
        let part = || (ShardSpec { index: 1, count: 2 }, ShardOut::Dir);
        // (run 1's and run 3's results, the error or None when written)
        let cases: [([Option<f64>; 2], Option<&str>); 3] = [
            // JSON writes NaN as null, which reads back as None
            ([Some(0.5), Some(f64::NAN)], Some("internal error: run 3's result does not read back from JSON unchanged (a NaN or infinite value?): null; the shard is not written")),
            // an infinity too
            ([Some(f64::INFINITY), None], Some("internal error: run 1's result does not read back from JSON unchanged (a NaN or infinite value?): null; the shard is not written")),
            // every finite value reads back exactly
            ([Some(0.1 + 0.2), None], None),
        ];
        for (results, want) in cases {
            let got = write_shard("compare", vec![], &scenario, 4, part(), &dir, &results);
            match (got, want) {
                (Err(e), Some(msg)) => assert_eq!(e.to_string(), msg),
                (Ok(()), None) => assert!(dir.join("shard-1.jsonl").exists()),
                (got, _) => panic!("{results:?}: {:?}", got.map_err(|e| e.to_string())),
            }
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
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
