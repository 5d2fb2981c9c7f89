//! `splitlab merge INPUT... --out DIR`: rebuilds a sharded command's outputs from its shards
//! (docs/scale-out.md).
//!
//! The shards' headers are checked to be the whole of one grid (`report::shard`), then the
//! command named in them rebuilds its outputs from the kept results through the same code a
//! single process runs, so the files are the same bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

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
    // One arm per command that merges.
    match header.command.as_str() {
        "compare" => super::compare::merge(&checked()?, &args.out),
        "plan" => super::plan::merge(&checked()?, &args.out),
        "load" => super::load_shard::merge_cmd(&checked()?, &args.out),
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
