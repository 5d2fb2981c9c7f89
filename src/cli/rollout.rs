//! `splitlab rollout --percent P --duration D`: the schedule Knative follows when a configuration
//! target of P% gets a new revision at t=0, as CSV `t_s,revision,percent`.

use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::routing::duration::parse_duration;
use crate::routing::rollout_schedule::schedule;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration target's percent of the route (0 to 100).
    #[arg(long, value_name = "P")]
    percent: i64,
    /// The rollout duration, as the serving.knative.dev/rollout-duration annotation takes it
    /// (a Go duration such as 380s or 6m20s); Knative truncates it to whole seconds.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    duration: String,
    /// When the ingress reports the first 1% split ready (a Go duration).
    #[arg(
        long,
        value_name = "T",
        default_value = "1s",
        allow_hyphen_values = true
    )]
    ready_after: String,
    /// The revision being replaced.
    #[arg(long, value_name = "NAME", default_value = "old")]
    from: String,
    /// The new revision.
    #[arg(long, value_name = "NAME", default_value = "new")]
    to: String,
}

/// Nanoseconds as seconds with up to 9 decimals and no trailing zeros.
pub(crate) fn format_secs(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    let (secs, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if frac == 0 {
        format!("{sign}{secs}")
    } else {
        let digits = format!("{frac:09}");
        format!("{sign}{secs}.{}", digits.trim_end_matches('0'))
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if !(0..=100).contains(&args.percent) {
        bail!(
            "--percent {} is out of range; allowed: 0 to 100",
            args.percent
        );
    }
    let duration_ns = parse_duration(&args.duration)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "--duration {:?}: allowed: a Go duration such as 380s, 6m20s or 1h",
                args.duration
            )
        })?;
    if duration_ns < 0 {
        bail!("--duration {}: must not be negative", args.duration);
    }
    let ready_ns = parse_duration(&args.ready_after)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "--ready-after {:?}: allowed: a Go duration such as 1s or 2500ms",
                args.ready_after
            )
        })?;
    if ready_ns < 0 {
        bail!("--ready-after {}: must not be negative", args.ready_after);
    }
    if args.from == args.to {
        bail!("--from and --to name the same revision {:?}", args.from);
    }
    // Step times are Unix nanoseconds in Knative; beyond ~200 years they overflow i64.
    const MAX_SECS: i64 = 100 * 365 * 24 * 3600;
    if duration_ns / 1_000_000_000 > MAX_SECS || ready_ns / 1_000_000_000 > MAX_SECS {
        bail!("--duration and --ready-after must be at most 100 years (876000h)");
    }
    // RR:331-383: rd = int(d.Seconds()).
    let duration_secs = duration_ns / 1_000_000_000;
    let mut out = String::from("t_s,revision,percent\n");
    for step in schedule(args.percent, duration_secs, ready_ns, &args.from, &args.to) {
        for rev in step.revisions.iter().filter(|r| r.percent > 0) {
            out.push_str(&format!(
                "{},{},{}\n",
                format_secs(step.t_ns),
                rev.revision_name,
                rev.percent
            ));
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
