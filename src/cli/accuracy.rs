//! `splitlab accuracy`: route N synthetic requests through a picker and report, per revision,
//! how closely the observed split follows the configured one.

use std::process::ExitCode;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::report::accuracy::ShareTracker;
use crate::routing::pick::{Pick, Picker, PickerKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The split, as NAME=PCT pairs separated by commas (e.g. v1=90,v2=10); percents sum to 100.
    #[arg(long, value_name = "NAME=PCT,...")]
    weights: String,
    /// How many requests to route (1 to 1,000,000,000).
    #[arg(long, value_name = "N")]
    requests: u64,
    /// How each request chooses: per-request weighted random (what Envoy does), smooth weighted
    /// round-robin, or sticky hashing of a client id (one synthetic client per request).
    #[arg(long, default_value = "random", value_parser = parse_picker)]
    picker: PickerKind,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_picker(s: &str) -> Result<PickerKind, String> {
    s.parse()
}

/// Parses `v1=90,v2=10` into names and percents, with Knative's bounds.
pub(crate) fn parse_weights(spec: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for item in spec.split(',') {
        let (name, pct) = item
            .split_once('=')
            .with_context(|| format!("--weights: {item:?} is not NAME=PCT (e.g. v1=90,v2=10)"))?;
        if name.is_empty() {
            bail!("--weights: {item:?} has an empty name");
        }
        if out.iter().any(|(n, _)| n == name) {
            bail!("--weights: {name:?} is given twice");
        }
        let pct: u32 = pct
            .trim_end_matches('%')
            .parse()
            .ok()
            .filter(|p| *p <= 100)
            .with_context(|| {
                format!("--weights: percent {pct:?} of {name:?} must be an integer from 0 to 100")
            })?;
        out.push((name.to_string(), pct));
    }
    let sum: u32 = out.iter().map(|(_, p)| p).sum();
    if sum != 100 {
        bail!("--weights: percents sum to {sum}, want 100");
    }
    Ok(out)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let weights = parse_weights(&args.weights)?;
    if args.requests == 0 || args.requests > 1_000_000_000 {
        bail!(
            "--requests {} is out of range; allowed: 1 to 1000000000",
            args.requests
        );
    }
    let percents: Vec<u32> = weights.iter().map(|(_, p)| *p).collect();
    let mut picker = Picker::new(args.picker, &percents)?;
    let mut tracker =
        ShareTracker::new(&percents.iter().map(|p| f64::from(*p)).collect::<Vec<_>>());
    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);
    for request in 0..args.requests {
        // Each request is its own client for the hash picker.
        tracker.record(picker.pick(request, &mut rng));
    }
    println!(
        "picker: {}, requests: {}, seed: {}",
        args.picker, args.requests, args.seed
    );
    println!(
        "{:<20} {:>14} {:>12} {:>12} {:>16} {:>10}",
        "revision", "configured_pct", "count", "observed_pct", "max_abs_dev_pct", "in_95_band"
    );
    for ((name, _), row) in weights.iter().zip(tracker.rows()) {
        println!(
            "{:<20} {:>14.3} {:>12} {:>12.3} {:>16.3} {:>10}",
            name,
            row.expected * 100.0,
            row.count,
            row.observed * 100.0,
            row.max_abs_dev * 100.0,
            if row.in_band { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
