//! `splitlab accuracy`: route N synthetic requests through a picker and report, per revision,
//! how closely the observed split follows the configured one. With `--out DIR`, also route the
//! same number of requests through every picker (same seed) and chart their running shares.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::report::accuracy::{ShareTracker, MIN_PREFIX};
use crate::report::chart::{render_accuracy_chart, AccuracyCurves, PickerCurve};
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
    #[arg(long, default_value = "random", value_parser = picker_parser())]
    picker: PickerKind,
    /// Seed of the random stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write accuracy.png and accuracy.svg here: the running share of every picker
    /// (random, wrr, hash; same seed) against the request count.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Checkpoints per decade of request counts on the accuracy chart.
const POINTS_PER_DECADE: f64 = 50.0;

/// The request count after `n` at which the running share is next recorded: about
/// `POINTS_PER_DECADE` counts per decade, every count while they are small.
fn next_checkpoint(n: u64) -> u64 {
    let scaled = (n as f64 * 10f64.powf(1.0 / POINTS_PER_DECADE)).ceil() as u64;
    scaled.max(n + 1)
}

/// Routes `requests` synthetic requests through a `kind` picker seeded with `seed` (each request
/// is its own client for the hash picker). Returns the split accuracy and each revision's running
/// share (percent) at log-spaced counts and at the last one; the curve's memory grows with the
/// number of checkpoints, not of requests.
fn route(
    kind: PickerKind,
    percents: &[u32],
    requests: u64,
    seed: u64,
) -> anyhow::Result<(ShareTracker, PickerCurve)> {
    let mut picker = Picker::new(kind, percents)?;
    let mut tracker =
        ShareTracker::new(&percents.iter().map(|p| f64::from(*p)).collect::<Vec<_>>());
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut points = Vec::new();
    let mut checkpoint = 1;
    for request in 0..requests {
        tracker.record(picker.pick(request, &mut rng));
        let n = request + 1;
        if n == checkpoint || n == requests {
            points.push((n, tracker.observed_pct()));
            checkpoint = next_checkpoint(n);
        }
    }
    let curve = PickerCurve {
        picker: kind.name().to_string(),
        points,
    };
    Ok((tracker, curve))
}

/// `random|wrr|hash`, listed in `--help` and in the error for another value.
fn picker_parser() -> impl clap::builder::TypedValueParser<Value = PickerKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["random", "wrr", "hash"])
        .try_map(|s: String| s.parse::<PickerKind>())
}

/// Parses `v1=90,v2=10` into names and percents, with Knative's bounds; `flag` names the
/// option in errors (`--weights` here, `--expect` for `splitlab load`).
pub(crate) fn parse_split(flag: &str, spec: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let mut out: Vec<(String, u32)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for item in spec.split(',') {
        let (name, pct) = item
            .split_once('=')
            .with_context(|| format!("{flag}: {item:?} is not NAME=PCT (e.g. v1=90,v2=10)"))?;
        let (name, pct) = (name.trim(), pct.trim());
        if name.is_empty() {
            bail!("{flag}: {item:?} has an empty name");
        }
        if !seen.insert(name.to_string()) {
            bail!("{flag}: {name:?} is given twice");
        }
        let pct: u32 = pct
            .trim_end_matches('%')
            .parse()
            .ok()
            .filter(|p| *p <= 100)
            .with_context(|| {
                format!("{flag}: percent {pct:?} of {name:?} must be an integer from 0 to 100")
            })?;
        out.push((name.to_string(), pct));
    }
    let sum: u32 = out.iter().map(|(_, p)| p).sum();
    if sum != 100 {
        bail!("{flag}: percents sum to {sum}, want 100");
    }
    Ok(out)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let weights = parse_split("--weights", &args.weights)?;
    if args.requests == 0 || args.requests > 1_000_000_000 {
        bail!(
            "--requests {} is out of range; allowed: 1 to 1000000000",
            args.requests
        );
    }
    let percents: Vec<u32> = weights.iter().map(|(_, p)| *p).collect();
    // Without --out only the chosen picker runs; with it every picker does, once, and the table
    // comes from the chosen picker's run.
    let kinds: Vec<PickerKind> = if args.out.is_some() {
        PickerKind::ALL.to_vec()
    } else {
        vec![args.picker]
    };
    let runs = kinds
        .iter()
        .map(|kind| route(*kind, &percents, args.requests, args.seed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chosen = kinds
        .iter()
        .position(|k| *k == args.picker)
        .expect("the chosen picker is among the kinds run");
    let (trackers, curves): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    let tracker = &trackers[chosen];
    let mut charts = Vec::new();
    if let Some(dir) = &args.out {
        let curves = AccuracyCurves {
            revisions: weights
                .iter()
                .map(|(name, pct)| (name.clone(), f64::from(*pct)))
                .collect(),
            seed: args.seed,
            requests: args.requests,
            pickers: curves,
        };
        // Both charts reach `dir` together in one commit, or neither does.
        let staged = super::run::stage(dir)?;
        let staging = staged.path().to_path_buf();
        charts = render_accuracy_chart(&staging, &curves)
            .with_context(|| format!("cannot write the accuracy chart to {}", dir.display()))?
            .into_iter()
            .map(|p| p.strip_prefix(&staging).map_or(p.clone(), |f| dir.join(f)))
            .collect();
        staged
            .commit(&[])
            .with_context(|| format!("cannot write outputs to {}", dir.display()))?;
    }
    // Printed once the chart is on disk, so a closed stdout cannot cut the outputs short.
    say!(
        "picker: {}, requests: {}, seed: {}",
        args.picker,
        args.requests,
        args.seed
    )?;
    let after_header = format!("max_dev_from_{MIN_PREFIX}_pct");
    say!(
        "{:<20} {:>14} {:>12} {:>12} {:>16} {:>22} {:>10}",
        "revision",
        "configured_pct",
        "count",
        "observed_pct",
        "max_abs_dev_pct",
        after_header,
        "in_95_band"
    )?;
    for ((name, _), row) in weights.iter().zip(tracker.rows()) {
        // The deviation from MIN_PREFIX requests on tells the pickers apart; before, the first
        // requests' deviation (most of a share) dominates whatever the picker.
        let after = row
            .max_abs_dev_after
            .map_or("-".to_string(), |d| format!("{:.3}", d * 100.0));
        say!(
            "{:<20} {:>14.3} {:>12} {:>12.3} {:>16.3} {:>22} {:>10}",
            name,
            row.expected * 100.0,
            row.count,
            row.observed * 100.0,
            row.max_abs_dev * 100.0,
            after,
            if row.in_band { "yes" } else { "no" }
        )?;
    }
    for path in charts {
        say!("chart: {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_log_spaced() {
        // (n, next checkpoint)
        let cases = [
            (1, 2),                 // every count while small
            (10, 11),               // 10 · 1.047 = 10.47 -> 11
            (100, 105),             // about 4.7% further
            (1_000_000, 1_047_129), // 50 per decade
        ];
        for (n, want) in cases {
            assert_eq!(next_checkpoint(n), want, "after {n}");
        }
        let mut n = 1;
        let mut points = 1;
        while n < 1_000_000 {
            n = next_checkpoint(n);
            points += 1;
        }
        assert!(points < 350, "{points} checkpoints up to 10^6");
    }

    #[test]
    fn route_curve_ends_at_the_last_request() {
        let (_, curve) = route(PickerKind::Wrr, &[90, 10], 1000, 1).expect("picker");
        let (n, shares) = curve.points.last().expect("points");
        assert_eq!(*n, 1000);
        // smooth WRR is exact at every multiple of the period
        assert_eq!(shares, &vec![90.0, 10.0]);
        assert_eq!(curve.points[0].0, 1);
    }
}
