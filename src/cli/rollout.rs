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

/// A non-negative Go duration flag, in nanoseconds.
fn duration_flag(flag: &str, value: &str, examples: &str) -> anyhow::Result<i64> {
    let ns = parse_duration(value)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{flag} {value:?}: allowed: a Go duration such as {examples}"))?;
    if ns < 0 {
        bail!("{flag} {value}: must not be negative");
    }
    Ok(ns)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if !(0..=100).contains(&args.percent) {
        bail!(
            "--percent {} is out of range; allowed: 0 to 100",
            args.percent
        );
    }
    let duration_ns = duration_flag("--duration", &args.duration, "380s, 6m20s or 1h")?;
    let ready_ns = duration_flag("--ready-after", &args.ready_after, "1s or 2500ms")?;
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
    // Names are the user's: the csv writer quotes a comma, a quote or a newline in them.
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["t_s", "revision", "percent"])?;
    for step in schedule(args.percent, duration_secs, ready_ns, &args.from, &args.to) {
        for rev in step.revisions.iter().filter(|r| r.percent > 0) {
            csv.write_record([
                seconds_to_the_ms(step.t_ns),
                rev.revision_name.clone(),
                rev.percent.to_string(),
            ])?;
        }
    }
    let out = String::from_utf8(csv.into_inner().context("cannot write the schedule")?)
        .context("the schedule is UTF-8")?;
    say_raw!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

/// A step time in seconds, rounded to the millisecond, without trailing zeros (`4.828`, `380`).
/// Knative keeps step times as integer Unix nanoseconds but adds the step duration in f64
/// (serving pkg/reconciler/route/traffic/rollout.go:480-484, `NextStepTime = int64(nowTS +
/// stepDuration)`), where one unit in the last place is 256 ns: the digits below the
/// millisecond depend on the wall clock's epoch (`380.000000024` for a 380 s rollout), not on
/// the schedule.
fn seconds_to_the_ms(t_ns: i64) -> String {
    let ms = (i128::from(t_ns) + 500_000).div_euclid(1_000_000);
    let (whole, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::seconds_to_the_ms;

    #[test]
    fn step_times_print_to_the_millisecond() {
        for (t_ns, printed) in [
            (0, "0"),                 // the first 1%
            (380_000_000_024, "380"), // f64 noise below the ms is dropped
            (4_828_282_880, "4.828"), // rounded down
            (8_656_565_708, "8.657"), // rounded up
            (1_202_022_184, "1.202"), // TestObserveReady's first step
            (1_500_000_000, "1.5"),   // no trailing zeros
            (999_999_999, "1"),       // rounding carries into the seconds
        ] {
            assert_eq!(seconds_to_the_ms(t_ns), printed, "{t_ns}");
        }
    }
}
