//! `splitlab merge INPUT... --out DIR`: rebuilds a sharded command's outputs from its shards
//! (docs/scale-out.md).
//!
//! The shards' headers are checked to be the whole of one grid (`report::shard`), then the
//! command named in them rebuilds its outputs from the kept results through the same code a
//! single process runs, so the files are the same bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::report::check::{self, Check, Quantity};
use crate::report::shard;

use super::sweep::MergeInput;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shard files (shard-I.jsonl, or `kubectl logs` of each pod), in any order.
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    /// Output directory: the command's outputs, as a single run of the whole grid writes them.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Judges the merged run of load shards, as `load --check` judges one run (shards refuse
    /// `--check`: a check is about the whole run): same grammar, each printed with its value
    /// and PASS or FAIL; exit 99 when any fails. Repeatable.
    #[arg(long = "check", value_name = "EXPR")]
    checks: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let headers = args
        .inputs
        .iter()
        .map(|file| Ok((file.clone(), shard::read_header(file)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The shards are checked to be one grid once their command is known to merge.
    let checked = || -> anyhow::Result<MergeInput> {
        Ok(MergeInput {
            grid: shard::check_set(&headers)?,
            files: args.inputs.clone(),
        })
    };
    let Some((first, header)) = headers.first() else {
        bail!("no shard given; give every shard file of one run");
    };
    let checks: Vec<Check> = args
        .checks
        .iter()
        .map(|c| check::parse(c).context("--check"))
        .collect::<anyhow::Result<_>>()?;
    if !checks.is_empty() && header.command != "load" {
        bail!(
            "--check: judges a merged load run; {} shards are judged by their merged outputs \
             (compare's and plan's --slo)",
            header.command
        );
    }
    if checks.iter().any(|c| c.quantity == Quantity::Split) {
        split_checkable(&header.args)?;
    }
    // One arm per command that merges.
    match header.command.as_str() {
        "compare" => super::compare::merge(&checked()?, &args.out),
        "plan" => super::plan::merge(&checked()?, &args.out),
        "load" => super::load_shard::merge_cmd(&checked()?, &args.out, &checks),
        "advise" => bail!(
            "{}: advise shards cannot be merged: advise refuses --shard (its search rounds \
             depend on earlier rounds); shard `compare --set KNOB=V1,V2,... --slo ...` instead",
            first.display()
        ),
        other => bail!(
            "{}: merging {other:?} shards is not supported by this splitlab (merges: compare, plan, load)",
            first.display()
        ),
    }
}

/// `--check split` on merged load shards needs the split every window was programmed with,
/// which the shards keep when they ran with a fixed `--expect`. A rollout's expected shares
/// (`--expect-rollout`) depend on when the rollout started relative to each shard's clock,
/// which a shard file does not keep, so that split is judged on each shard's own run only.
fn split_checkable(load_args: &[String]) -> anyhow::Result<()> {
    let has = |flag: &str| {
        load_args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if has("--expect-rollout") {
        bail!(
            "--check split: the shards ran with --expect-rollout, whose expected shares the shard \
             files do not keep; merge judges the split against a fixed --expect only"
        );
    }
    if !has("--expect") {
        bail!(
            "--check split: needs the programmed split; the shards ran without --expect \
             LABEL=PCT,..."
        );
    }
    Ok(())
}
