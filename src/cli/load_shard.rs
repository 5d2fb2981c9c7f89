//! `load --shard I/N` and the load arm of `splitlab merge` (issue 18 §2, docs/load.md
//! "Sharded load"): what one shard of a load run keeps, and the whole run rebuilt from its
//! shards.
//!
//! A load shard is a shard file (`report::shard`, docs/scale-out.md) with one item, `i` = the
//! shard's index, whose `r` is a [`LoadShard`]: every count the run's outputs are made of and
//! its latency histograms in HdrHistogram's V2 encoding (per label, per target, overall and per
//! 1 s window), so the merge adds counts exactly and merges histograms: the merged
//! percentiles are those of one histogram over every request of every shard.
//!
//! Must not: send traffic or read clocks (the load command does), average percentiles.
//!
//! What is not rebuilt: `requests.csv` (refused with `--shard`: request ids are per shard),
//! `load.json`'s `send_lag_us` percentiles are of the merged histogram and `peak_rss_mib` is
//! the largest shard's; `--check` is judged on the merged run by `merge --check` (a split
//! check only for shards run with a fixed `--expect`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::live::client::Protocol;
use crate::live::load::{GroupStats, LoadStats};
use crate::report::run::{EncodedLatency, RunMeta, RunParts, RunReport};

/// One group's (the run's, a label's, a target's) counts and served latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupParts {
    pub requests: u64,
    pub served: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub latency: EncodedLatency,
    pub latency_sum_us: u128,
}

impl GroupParts {
    pub fn of(g: &GroupStats) -> Self {
        GroupParts {
            requests: g.requests,
            served: g.served,
            statuses: g.statuses.clone(),
            latency: EncodedLatency::of(&g.latency_us, g.latency_max_us),
            latency_sum_us: g.latency_sum_us,
        }
    }

    /// Adds this group to `into`.
    fn add_to(&self, into: &mut GroupStats) -> Result<(), String> {
        into.requests += self.requests;
        into.served += self.served;
        for (s, n) in &self.statuses {
            *into.statuses.entry(*s).or_default() += n;
        }
        let h = self.latency.decode()?;
        into.latency_us
            .add(&h)
            .map_err(|e| format!("cannot merge a histogram: {e:?}"))?;
        into.latency_sum_us += self.latency_sum_us;
        into.latency_max_us = into.latency_max_us.max(self.latency.max_us);
        Ok(())
    }
}

/// The kept result of one load shard: the `r` of its item line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadShard {
    /// The classifier's labels (the report's revisions), `other` last.
    pub labels: Vec<String>,
    /// The targets file's names (empty for `--target`).
    pub target_names: Vec<String>,
    /// The targets as `load.json` names them.
    pub target_desc: String,
    /// The run's description (the `scenario.txt` of a load run).
    pub description: String,
    pub seed: u64,
    /// The recorder's counts, latency and windows.
    pub run: RunParts,
    /// The load generator's own figures (`load.json`, `histograms.json`).
    pub sent: u64,
    pub overall: GroupParts,
    pub by_label: BTreeMap<usize, GroupParts>,
    pub by_target: BTreeMap<usize, GroupParts>,
    pub send_lag: EncodedLatency,
    pub error_causes: BTreeMap<String, u64>,
    pub pacing_wall_s: f64,
    pub pacer_fell_behind_at_s: Option<f64>,
    pub connections: BTreeMap<String, u64>,
    pub peak_rss_mib: Option<f64>,
    pub interrupted: bool,
}

impl LoadShard {
    /// A finished shard's kept result.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        labels: &[String],
        target_names: &[String],
        target_desc: &str,
        description: &str,
        seed: u64,
        run: RunParts,
        stats: &LoadStats,
        peak_rss_mib: Option<f64>,
        interrupted: bool,
    ) -> Self {
        LoadShard {
            labels: labels.to_vec(),
            target_names: target_names.to_vec(),
            target_desc: target_desc.to_string(),
            description: description.to_string(),
            seed,
            run,
            sent: stats.sent,
            overall: GroupParts::of(&stats.overall),
            by_label: stats
                .labels
                .iter()
                .map(|(i, g)| (*i, GroupParts::of(g)))
                .collect(),
            by_target: stats
                .targets
                .iter()
                .map(|(i, g)| (*i, GroupParts::of(g)))
                .collect(),
            send_lag: EncodedLatency::of(&stats.send_lag_us, stats.send_lag_us.max()),
            error_causes: stats.error_causes.clone(),
            pacing_wall_s: stats.pacing_wall_s,
            pacer_fell_behind_at_s: stats.pacer_fell_behind_at_s,
            connections: stats
                .connections
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            peak_rss_mib,
            interrupted,
        }
    }
}

/// A load run rebuilt from its shards.
pub struct MergedLoad {
    pub report: RunReport,
    pub stats: LoadStats,
    pub labels: Vec<String>,
    pub target_names: Vec<String>,
    pub target_desc: String,
    pub description: String,
    pub peak_rss_mib: Option<f64>,
    /// Shards that were interrupted (their figures cover the run up to the signal).
    pub interrupted: Vec<usize>,
}

/// The protocol `client::Protocol::name` calls `name` (`load.json` keys them by `&'static str`).
fn protocol_name(name: &str) -> Option<&'static str> {
    Protocol::ALL
        .into_iter()
        .map(Protocol::name)
        .find(|p| *p == name)
}

/// Merges the shards (in shard order; `shards[k]` is shard k's): counts added, histograms
/// merged. Shards of one run have the same labels, targets and description (the shard headers'
/// args are checked equal before this).
pub fn merge(shards: &[LoadShard]) -> Result<MergedLoad, String> {
    let first = shards.first().ok_or("no load shards to merge")?;
    for (k, s) in shards.iter().enumerate() {
        for (what, same) in [
            ("labels", s.labels == first.labels),
            ("targets", s.target_names == first.target_names),
            ("target", s.target_desc == first.target_desc),
            ("description", s.description == first.description),
            ("seed", s.seed == first.seed),
        ] {
            if !same {
                return Err(format!(
                    "shard {k}: its {what} differ from shard 0's: not shards of one load run"
                ));
            }
        }
    }
    let parts: Vec<RunParts> = shards.iter().map(|s| s.run.clone()).collect();
    let run = RunParts::merge(&parts)?;
    let mut report = run.into_report(RunMeta {
        scenario: "load".into(),
        seed: first.seed,
        mode: "live".into(),
    });
    let mut stats = LoadStats::default();
    for (k, s) in shards.iter().enumerate() {
        let at = |e: String| format!("shard {k}: {e}");
        stats.sent += s.sent;
        s.overall.add_to(&mut stats.overall).map_err(at)?;
        for (i, g) in &s.by_label {
            g.add_to(stats.labels.entry(*i).or_default()).map_err(at)?;
        }
        for (i, g) in &s.by_target {
            g.add_to(stats.targets.entry(*i).or_default()).map_err(at)?;
        }
        let lag = s.send_lag.decode().map_err(at)?;
        stats
            .send_lag_us
            .add(&lag)
            .map_err(|e| at(format!("cannot merge a histogram: {e:?}")))?;
        for (c, n) in &s.error_causes {
            *stats.error_causes.entry(c.clone()).or_default() += n;
        }
        stats.pacing_wall_s = stats.pacing_wall_s.max(s.pacing_wall_s);
        stats.pacer_fell_behind_at_s =
            match (stats.pacer_fell_behind_at_s, s.pacer_fell_behind_at_s) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        for (p, n) in &s.connections {
            let name = protocol_name(p).ok_or_else(|| {
                let allowed: Vec<&str> = Protocol::ALL.into_iter().map(Protocol::name).collect();
                at(format!(
                    "unknown connection protocol {p:?}; allowed: {}",
                    allowed.join(", ")
                ))
            })?;
            *stats.connections.entry(name).or_default() += n;
        }
    }
    report.set_protocol(super::live::protocol_of(&stats));
    Ok(MergedLoad {
        report,
        stats,
        labels: first.labels.clone(),
        target_names: first.target_names.clone(),
        target_desc: first.target_desc.clone(),
        description: first.description.clone(),
        peak_rss_mib: shards
            .iter()
            .filter_map(|s| s.peak_rss_mib)
            .reduce(f64::max),
        interrupted: shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.interrupted)
            .map(|(k, _)| k)
            .collect(),
    })
}

/// Shard `i` of `n`'s share of `total` whole things (requests, connections): `total / n`, the
/// remainder going one each to the first shards, so the shares add up to `total` exactly.
pub fn share(total: u64, i: usize, n: usize) -> u64 {
    let (i, n) = (i as u64, n.max(1) as u64);
    total / n + u64::from(i < total % n)
}

/// How far ahead `--start-at` may be.
pub const START_AT_MAX_AHEAD_S: f64 = 24.0 * 3600.0;
/// How far in the past `--start-at` may be (a shard started a moment late still joins).
pub const START_AT_MAX_LATE_S: f64 = 1.0;

/// `--start-at T` in unix seconds, `now_unix_s` being the wall clock: `now`, `now+DURATION`
/// (Go syntax), or what `--rollout-start` takes (RFC 3339 or unix seconds). Refused more than
/// a second in the past or more than 24 h ahead.
pub fn parse_start_at(text: &str, now_unix_s: f64) -> Result<f64, String> {
    let t = text.trim();
    let at = if t == "now" {
        now_unix_s
    } else if let Some(d) = t.strip_prefix("now+") {
        let ns = crate::routing::duration::parse_duration(d).map_err(|e| {
            format!("--start-at {text:?}: {e} (now+DURATION takes a Go duration such as 90s)")
        })?;
        if ns < 0 {
            return Err(format!(
                "--start-at {text:?}: the duration must not be negative"
            ));
        }
        now_unix_s + ns as f64 / 1e9
    } else {
        crate::calibrate::timestamp::parse_instant(t).map_err(|_| {
            format!("--start-at {text:?}: allowed: RFC 3339 (2026-12-03T04:00:00Z), unix seconds, now or now+DURATION")
        })?
    };
    let ahead = at - now_unix_s;
    if ahead < -START_AT_MAX_LATE_S {
        return Err(format!(
            "--start-at {text:?}: {:.1} s in the past; allowed: from 1 s ago to 24 h ahead (shards that start late are out of phase)",
            -ahead
        ));
    }
    if ahead > START_AT_MAX_AHEAD_S {
        return Err(format!(
            "--start-at {text:?}: {:.0} s ahead; allowed: at most 24 h ahead",
            ahead
        ));
    }
    Ok(at)
}

/// `splitlab merge` of load shards: the run's outputs rebuilt from them.
pub fn merge_cmd(
    input: &super::sweep::MergeInput,
    out: &std::path::Path,
    checks: &[crate::report::check::Check],
) -> anyhow::Result<std::process::ExitCode> {
    if input.grid.total != input.grid.shards {
        anyhow::bail!(
            "a load run's shards hold one item each: the header says {} items for {} shards",
            input.grid.total,
            input.grid.shards
        );
    }
    let shards: Vec<LoadShard> = input.results(input.grid.total)?;
    let merged = merge(&shards).map_err(anyhow::Error::msg)?;
    // Before anything is written: a check naming no label of the run is a usage error.
    super::live::check_labels(checks, &merged.labels, &merged.target_names)?;
    let status = super::live::write_merged_load(&merged, out)?;
    if checks.is_empty() {
        return Ok(status);
    }
    // `merge::split_checkable` let a split check through only for shards run with --expect,
    // whose windows keep the programmed split.
    let split = crate::report::check::split_findings(&merged.report);
    let measured = super::live::measure(
        &merged.report,
        &merged.stats,
        &merged.labels,
        &merged.target_names,
        split,
    );
    let failed = super::live::print_checks(checks, &measured)?;
    if failed > 0 {
        eprintln!("merge: {failed} of {} checks failed", checks.len());
        return Ok(std::process::ExitCode::from(super::live::CHECK_FAILED_EXIT));
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        // (total, shards, the shares)
        let cases: [(u64, usize, &[u64]); 4] = [
            (10, 3, &[4, 3, 3]), // the remainder to the first shard
            (11, 3, &[4, 4, 3]), // to the first two
            (2, 3, &[1, 1, 0]),  // fewer than shards: the last gets none
            (64, 1, &[64]),      // one shard: everything
        ];
        for (total, n, want) in cases {
            let got: Vec<u64> = (0..n).map(|i| share(total, i, n)).collect();
            assert_eq!(got, want, "{total} over {n}");
            assert_eq!(got.iter().sum::<u64>(), total);
        }
    }

    #[test]
    fn start_at_is_now_later_or_an_instant_within_a_day() {
        let now = 1_800_000_000.0;
        // (text, unix seconds or part of the error)
        let cases: [(&str, Result<f64, &str>); 8] = [
            ("now", Ok(now)),                         // at once
            ("now+90s", Ok(now + 90.0)),              // a margin for pods to start
            ("1800000030", Ok(now + 30.0)),           // unix seconds
            ("2027-01-15T08:00:10Z", Ok(now + 10.0)), // RFC 3339
            ("1799999999.5", Ok(now - 0.5)),          // half a second late: joins
            ("1799999990", Err("in the past")),       // ten seconds late: out of phase
            ("now+25h", Err("at most 24 h ahead")),   // a typo'd date, surely
            ("tomorrow", Err("allowed: RFC 3339")),   // not a time
        ];
        for (text, want) in cases {
            match (parse_start_at(text, now), want) {
                (Ok(g), Ok(w)) => assert!((g - w).abs() < 1e-6, "{text}: {g} != {w}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (g, w) => panic!("{text}: got {g:?}, want {w:?}"),
            }
        }
    }
}
