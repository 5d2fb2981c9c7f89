//! `splitlab calibrate`: a scenario from what a cluster measured.
//!
//! Owns: choosing the set of Knative metric names a Prometheus has (`query`), reading its
//! range-query answers (`promjson`), turning series into scenario values (`derive`) and writing
//! the scenario's YAML text with a comment naming the query and time range behind every value.
//! `--from`/`--to` parsing lives in `timestamp`.
//!
//! Must not: do I/O. Answers come through the caller's [`Source`] (the CLI reads a dump's
//! files, or asks `live::prometheus` to run the query against a URL); manifests come as text.
//! The scenario it writes is loaded by the caller with `scenario::load` before it is saved.
//!
//! How each value is derived is documented in docs/calibrate.md; in short:
//! - `arrivals.schedule`: the total request rate, one step per bin, placed at the middle of the
//!   rate window each sample averages;
//! - `traffic` and `timeline`: the split of untagged requests between revisions, whole percents,
//!   a new traffic block whenever it moves by [`SPLIT_THRESHOLD_PCT`] points;
//! - `arrivals.tags`: each route tag's share of all requests, its target the revision that
//!   served most of them;
//! - `revisions[].service_time`: the application latency histogram over the whole range;
//! - `revisions[].pods`: ready pods at the start; `startup`: requested-to-Ready lags.

pub mod derive;
pub mod promjson;
pub mod query;
pub mod timestamp;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use self::derive::Bins;
use self::promjson::Series;
use self::query::{NameSet, Query, QueryKind};
use crate::model::dist::Dist;
use crate::model::time::SimDuration;
use crate::scenario::kube::read_objects;

/// A split change smaller than this (in percentage points, in every revision) is noise.
pub const SPLIT_THRESHOLD_PCT: u32 = 5;

/// The most bins a calibration averages into (a week at 1 s is 604,800).
pub const MAX_BINS: usize = 1_000_000;

/// The step used to build query texts when none is given (the rate window is four steps).
pub const DEFAULT_STEP: SimDuration = SimDuration::from_secs(15);

/// What to calibrate.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub namespace: String,
    pub service: String,
    /// Unix seconds; `None`: the first sample of the request series.
    pub from: Option<f64>,
    /// Unix seconds; `None`: the last sample of the request series.
    pub to: Option<f64>,
    /// The bin width; `None`: the step of the samples.
    pub step: Option<SimDuration>,
    /// Names the source in the scenario's comment (`Prometheus at URL`, `the dump DIR`).
    pub source: String,
    /// `--manifests` files.
    pub manifests: Vec<ManifestInput>,
}

/// One `--manifests` file.
#[derive(Clone, Debug)]
pub struct ManifestInput {
    /// The name errors show.
    pub display: String,
    /// The path the scenario refers to it by (relative to the scenario file).
    pub scenario_path: String,
    pub text: String,
}

/// A query's answer.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// Where it came from (a file path or the request URL), for comments and errors.
    pub origin: String,
    pub body: String,
    /// The PromQL text it answers, when known (always for a URL; for a dump, `<key>.query`).
    pub promql: Option<String>,
}

/// Where answers come from: a dump directory or a Prometheus server.
pub trait Source {
    /// The answer to `query`; `Ok(None)` when the source has none (a dump without its file).
    fn query_range(&mut self, query: &Query) -> Result<Option<Fetched>, String>;
}

/// What stops a calibration.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Json(#[from] promjson::PromJsonError),
    #[error("no request series for Service {namespace}/{service}{range}; tried:\n{tried}")]
    NoRequests {
        namespace: String,
        service: String,
        range: String,
        tried: String,
    },
    #[error("no latency histogram for Service {namespace}/{service}: {tried}")]
    NoLatency {
        namespace: String,
        service: String,
        tried: String,
    },
    #[error("{0}")]
    Range(String),
    #[error("{0}")]
    Manifests(String),
}

/// A written scenario and what to tell the user about it.
#[derive(Clone, Debug)]
pub struct Calibrated {
    /// The scenario file's text.
    pub yaml: String,
    /// One line each: the names used, the range, per revision its rate and latency.
    pub summary: Vec<String>,
    /// Things the user should know (missing pod metrics, unparsable buckets, ...).
    pub notes: Vec<String>,
}

/// One fetched query, parsed.
struct Answer {
    query: Query,
    fetched: Fetched,
    series: Vec<Series>,
}

impl Answer {
    /// `[key]`, how the scenario's comments refer to the query.
    fn tag(&self) -> String {
        format!("[{}]", self.query.key())
    }
}

fn fetch(source: &mut dyn Source, query: Query) -> Result<Option<Answer>, CalibrateError> {
    let Some(fetched) = source.query_range(&query).map_err(CalibrateError::Source)? else {
        return Ok(None);
    };
    let series = promjson::parse_matrix(&fetched.origin, &fetched.body)?;
    Ok(Some(Answer {
        query,
        fetched,
        series,
    }))
}

/// Builds the scenario.
pub fn calibrate(inputs: &Inputs, source: &mut dyn Source) -> Result<Calibrated, CalibrateError> {
    let (ns, svc) = (inputs.namespace.as_str(), inputs.service.as_str());
    let step_for_queries = inputs.step.unwrap_or(DEFAULT_STEP);
    let window = query::rate_window(step_for_queries);
    let in_range = |series: &[Series]| {
        derive::has_values_in(
            series,
            inputs.from.unwrap_or(f64::NEG_INFINITY),
            inputs.to.unwrap_or(f64::INFINITY),
        )
    };

    // Which names: the first set whose request query returns series in the range.
    let mut tried = Vec::new();
    let mut chosen = None;
    for set in NameSet::ALL {
        let q = query::query(set, QueryKind::Requests, ns, svc, window);
        let key = q.key();
        let promql = q.promql.clone();
        match fetch(source, q)? {
            None => tried.push(format!(
                "  {promql}\n    ({}: no {key}.json in the dump)",
                set.describe()
            )),
            Some(a) if !in_range(&a.series) => tried.push(format!(
                "  {promql}\n    ({}: {} returned {} series, none with values in the range)",
                set.describe(),
                a.fetched.origin,
                a.series.len()
            )),
            Some(a) => {
                chosen = Some(a);
                break;
            }
        }
    }
    let range_text = match (inputs.from, inputs.to) {
        (None, None) => String::new(),
        (f, t) => format!(
            " between {} and {}",
            f.map_or("the first sample".into(), timestamp::format_instant),
            t.map_or("the last sample".into(), timestamp::format_instant)
        ),
    };
    let Some(requests) = chosen else {
        return Err(CalibrateError::NoRequests {
            namespace: ns.into(),
            service: svc.into(),
            range: range_text,
            tried: tried.join("\n"),
        });
    };
    let set = requests.query.set;

    // The range and the bins.
    let (first, last) = derive::time_span(&requests.series)
        .ok_or_else(|| CalibrateError::Range(format!("{}: no samples", requests.fetched.origin)))?;
    let from = inputs.from.unwrap_or(first);
    let to = inputs.to.unwrap_or(last);
    if to <= from {
        return Err(CalibrateError::Range(format!(
            "the range {} .. {} is empty; --to must be after --from",
            timestamp::format_instant(from),
            timestamp::format_instant(to)
        )));
    }
    let step_s = match inputs.step {
        Some(s) => s.as_secs_f64(),
        None => derive::sample_step(&requests.series).ok_or_else(|| {
            CalibrateError::Range(format!(
                "{}: no series has two samples, so the step is unknown; pass --step",
                requests.fetched.origin
            ))
        })?,
    };
    if step_s <= 0.0 || step_s > to - from {
        return Err(CalibrateError::Range(format!(
            "--step {step_s}s does not fit the range of {}s",
            to - from
        )));
    }
    if (to - from) / step_s > MAX_BINS as f64 {
        return Err(CalibrateError::Range(format!(
            "{}s at a step of {}s is more than {MAX_BINS} steps; choose a larger --step or a shorter range",
            num(to - from),
            num(step_s)
        )));
    }
    let bins = Bins::new(from, to, step_s);
    let duration_s = to - from;
    // Where a rate belongs: the middle of the window it averages.
    let rate_window_s = requests
        .fetched
        .promql
        .as_deref()
        .and_then(query::window_of)
        .map(|w| w.as_secs_f64());
    // A sample at t is the average rate over (t - W, t]: its value belongs to t - W/2. A bin's
    // value (the mean of its samples, `sample_step` apart) holds for one bin width centred
    // there, so it starts W/2 + sample_step/2 before the bin: the schedule then carries as many
    // requests as the counter counted, without a lag. Without the query text, no shift.
    let sample_step_s = derive::sample_step(&requests.series).unwrap_or(step_s);
    let shift_s = rate_window_s.map_or(0.0, |w| (w + sample_step_s) / 2.0);
    let at = |k: usize| -> f64 { (bins.start_s(k) - shift_s).max(0.0) };

    let mut notes = Vec::new();
    let mut summary = vec![
        format!("names: {}", set.describe()),
        format!(
            "range: {} .. {} ({}), step {}",
            timestamp::format_instant(from),
            timestamp::format_instant(to),
            secs(duration_s),
            secs(step_s)
        ),
    ];
    if rate_window_s.is_none() {
        notes.push(format!(
            "{}: the query text is unknown (no {}.query beside it), so rates are placed at their sample times rather than the middle of their window",
            requests.fetched.origin,
            requests.query.key()
        ));
    }

    // Rates by revision and by (tag, revision).
    let rev_label = set.revision_label();
    let tag_label = set.tag_label();
    let mut by_rev: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for s in &requests.series {
        let b = derive::binned(s, &bins);
        let rev = s.label(rev_label).to_string();
        add(by_rev.entry(rev.clone()).or_default(), &b);
        let tag = s.label(tag_label);
        if set.is_tag(tag) {
            add(
                by_tag
                    .entry(tag.to_string())
                    .or_default()
                    .entry(rev)
                    .or_default(),
                &b,
            );
        }
    }
    by_rev.retain(|name, rates| {
        let keep = !name.is_empty() && rates.iter().any(|r| *r > 0.0);
        if name.is_empty() && rates.iter().any(|r| *r > 0.0) {
            notes.push(format!(
                "{}: series without a {rev_label} label are left out",
                requests.fetched.origin
            ));
        }
        keep
    });
    if by_rev.is_empty() {
        return Err(CalibrateError::NoRequests {
            namespace: ns.into(),
            service: svc.into(),
            range: range_text,
            tried: format!(
                "  {}\n    ({}: only zero rates or no {rev_label} label)",
                requests.query.promql, requests.fetched.origin
            ),
        });
    }
    let revisions: Vec<String> = by_rev.keys().cloned().collect();
    let total: Vec<f64> = (0..bins.count)
        .map(|k| by_rev.values().map(|r| r[k]).sum())
        .collect();
    // How long each bin's rate holds in the scenario: shares of requests are weighted by it, so
    // they are the shares of the requests the scenario sends.
    let hold_s: Vec<f64> = (0..bins.count)
        .map(|k| {
            let end = if k + 1 == bins.count {
                duration_s
            } else {
                at(k + 1)
            };
            (end.min(duration_s) - at(k)).max(0.0)
        })
        .collect();
    let requests_of =
        |rates: &[f64]| -> f64 { rates.iter().zip(&hold_s).map(|(r, h)| r * h).sum() };
    let total_requests: f64 = requests_of(&total);

    // Tags: share of all requests, target the revision serving most of them.
    let mut tags: Vec<(String, String, f64)> = Vec::new();
    let mut tagged_by_rev: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (tag, revs) in &by_tag {
        let mut best: Option<(&String, f64)> = None;
        let mut tag_total = 0.0;
        for (rev, rates) in revs {
            if !by_rev.contains_key(rev) {
                continue;
            }
            add(tagged_by_rev.entry(rev.clone()).or_default(), rates);
            let sum: f64 = requests_of(rates);
            tag_total += sum;
            if best.is_none_or(|(_, b)| sum > b) {
                best = Some((rev, sum));
            }
        }
        if let Some((rev, _)) = best.filter(|_| tag_total > 0.0) {
            let share = tag_total / total_requests;
            if revs.len() > 1 {
                notes.push(format!(
                    "{tag_label}={tag:?} reached {} revisions; the scenario sends it to {rev}, which served most of it",
                    revs.len()
                ));
            }
            tags.push((tag.clone(), rev.clone(), share));
        }
    }

    // The split of untagged requests.
    let untagged: Vec<Vec<f64>> = revisions
        .iter()
        .map(|r| {
            let tagged = tagged_by_rev.get(r);
            (0..bins.count)
                .map(|k| (by_rev[r][k] - tagged.map_or(0.0, |t| t[k])).max(0.0))
                .collect()
        })
        .collect();
    let splits = derive::split_changes(&untagged, bins.count, SPLIT_THRESHOLD_PCT);
    let initial_split = match splits.first() {
        Some((_, pct)) => pct.clone(),
        // Only tagged traffic: the default route keeps the first revision.
        None => {
            let mut p = vec![0; revisions.len()];
            p[0] = 100;
            p
        }
    };

    // Latency histograms.
    let latency_query = query::query(set, QueryKind::Latency, ns, svc, window);
    let latency_promql = latency_query.promql.clone();
    let latency = fetch(source, latency_query)?;
    let latency = match latency {
        Some(a) if derive::has_values_in(&a.series, from, to) => a,
        Some(a) => {
            return Err(CalibrateError::NoLatency {
                namespace: ns.into(),
                service: svc.into(),
                tried: format!(
                    "{latency_promql}\n    ({} returned {} series, none with values in the range)",
                    a.fetched.origin,
                    a.series.len()
                ),
            })
        }
        None => {
            return Err(CalibrateError::NoLatency {
                namespace: ns.into(),
                service: svc.into(),
                tried: format!(
                    "{latency_promql}\n    (no {}-latency.json in the dump)",
                    key_prefix(set)
                ),
            })
        }
    };
    let mut service_times = Vec::new();
    for rev in &revisions {
        let own: Vec<&Series> = latency
            .series
            .iter()
            .filter(|s| s.label(rev_label) == rev)
            .collect();
        let (mut buckets, mut bad) = derive::histogram(&own, &bins, set.latency_unit_s());
        let mut whose = "its own";
        if buckets.iter().all(|b| b.1 <= 0.0) {
            let all: Vec<&Series> = latency.series.iter().collect();
            (buckets, bad) = derive::histogram(&all, &bins, set.latency_unit_s());
            whose = "the whole Service's (the revision has none)";
            notes.push(format!(
                "{rev}: no latency buckets of its own in {}; it gets the whole Service's",
                latency.fetched.origin
            ));
        }
        if !bad.is_empty() {
            notes.push(format!(
                "{}: le values that are not numbers were left out: {}",
                latency.fetched.origin,
                bad.join(", ")
            ));
        }
        let as_durations: Vec<(Option<SimDuration>, f64)> = buckets
            .iter()
            .map(|(le, c)| (le.map(SimDuration::from_secs_f64), *c))
            .collect();
        let dist = Dist::histogram(&as_durations).map_err(|e| CalibrateError::NoLatency {
            namespace: ns.into(),
            service: svc.into(),
            tried: format!("{}: {rev}: {e}", latency.fetched.origin),
        })?;
        service_times.push((buckets, dist, whose));
    }

    // Pods: optional.
    let mut pods_ready = None;
    let mut pods_requested = None;
    for kind in [QueryKind::PodsReady, QueryKind::PodsRequested] {
        let q = query::query(set, kind, ns, svc, window);
        let key = q.key();
        let mut found = match fetch(source, q)? {
            Some(a) if derive::has_values_in(&a.series, from, to) => Some(a),
            Some(a) => {
                notes.push(format!(
                    "{}: no values in the range; {}",
                    a.fetched.origin,
                    pods_note(kind)
                ));
                None
            }
            None => {
                notes.push(format!("no {key}.json in the dump; {}", pods_note(kind)));
                None
            }
        };
        if found.is_none() && kind == QueryKind::PodsRequested {
            // The decider's desired pods stand in for the requested ones.
            let q = query::query(set, QueryKind::PodsDesired, ns, svc, window);
            if let Some(a) =
                fetch(source, q)?.filter(|a| derive::has_values_in(&a.series, from, to))
            {
                notes.pop();
                notes.push(format!(
                    "no requested-pod counts ({key}); start-up times use the desired pods of {}",
                    a.fetched.origin
                ));
                found = Some(a);
            }
        }
        if let Some(a) = found {
            let per_rev = derive::by_label(&a.series, rev_label, &bins);
            if kind == QueryKind::PodsReady {
                pods_ready = Some((a, per_rev));
            } else {
                pods_requested = Some((a, per_rev));
            }
        }
    }

    // ---- the scenario text ----
    let mut y = String::new();
    let w = &mut y;
    let _ = writeln!(
        w,
        "# Calibrated by `splitlab calibrate` from {}",
        inputs.source
    );
    let _ = writeln!(w, "# ({}) for the Service {ns}/{svc}.", set.describe());
    let _ = writeln!(
        w,
        "# Time range: {} .. {} (unix {} .. {}), step {}; scenario time 0s is {}.",
        timestamp::format_instant(from),
        timestamp::format_instant(to),
        unix(from),
        unix(to),
        secs(step_s),
        timestamp::format_instant(from)
    );
    match rate_window_s {
        Some(rw) => {
            let _ = writeln!(
                w,
                "# A rate is Prometheus' average over the query's {} window; each step of the schedule and the",
                secs(rw)
            );
            let _ = writeln!(
                w,
                "# timeline starts {} before its sample (half the window and half a sample step), centred on it.",
                secs(shift_s)
            );
        }
        None => {
            let _ = writeln!(
                w,
                "# The query texts are not in the dump: rates are placed at their sample times."
            );
        }
    }
    let _ = writeln!(
        w,
        "# Queries (each value below names the one it came from):"
    );
    let answers: Vec<&Answer> = [Some(&requests), Some(&latency)]
        .into_iter()
        .chain([
            pods_ready.as_ref().map(|p| &p.0),
            pods_requested.as_ref().map(|p| &p.0),
        ])
        .flatten()
        .collect();
    for a in &answers {
        let text = a.fetched.promql.as_deref().unwrap_or(&a.query.promql);
        let _ = writeln!(w, "#   {} {}", a.tag(), one_line(text));
        let _ = writeln!(
            w,
            "#     answered by {}: {} series",
            a.fetched.origin,
            a.series.len()
        );
    }
    for n in &notes {
        let _ = writeln!(w, "# note: {}", one_line(n));
    }
    let _ = writeln!(w, "name: {}", scenario_name(svc));
    let _ = writeln!(w, "duration: {}", secs(duration_s));
    let _ = writeln!(w, "seed: 1");
    let _ = writeln!(w, "service:");
    let _ = writeln!(w, "  name: {}", yaml_str(svc));
    let _ = writeln!(w, "  namespace: {}", yaml_str(ns));
    let (knative, configmaps) = classify_manifests(&inputs.manifests)?;
    if let Some(m) = &knative {
        let _ = writeln!(
            w,
            "  manifest: {}   # --manifests: the Service, its revisions' annotations, containerConcurrency and timeouts",
            yaml_str(&m.scenario_path)
        );
    }
    if !configmaps.is_empty() {
        let _ = writeln!(w, "cluster:");
        let _ = writeln!(w, "  configmaps:   # --manifests: the cluster's ConfigMaps");
        for c in &configmaps {
            let _ = writeln!(w, "    - {}", yaml_str(&c.scenario_path));
        }
    }
    let _ = writeln!(w, "revisions:");
    let mut lags_all: Vec<f64> = Vec::new();
    for (i, rev) in revisions.iter().enumerate() {
        let (buckets, dist, whose) = &service_times[i];
        let count = buckets.last().map_or(0.0, |b| b.1);
        let q = |p: f64| dist.histogram_quantile(p).map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(w, "  - name: {}", yaml_str(rev));
        let _ = writeln!(
            w,
            "    # {} {whose} application latency histogram over the range: {:.0} requests, mean {}, p50 {}, p90 {}, p99 {} (interpolated as histogram_quantile)",
            latency.tag(),
            count,
            ms(dist.mean_secs()),
            ms(q(0.5)),
            ms(q(0.9)),
            ms(q(0.99))
        );
        let _ = writeln!(w, "    service_time:");
        let _ = writeln!(w, "      empirical:");
        let _ = writeln!(w, "        buckets:");
        for (le, c) in buckets {
            let le = le.map_or("+Inf".to_string(), ms);
            let _ = writeln!(w, "          - {{le: {le}, count: {}}}", num(*c));
        }
        summary.push(format!(
            "{rev}: {:.1}% of requests; service time p50 {}, p99 {}",
            requests_of(&by_rev[rev]) / total_requests * 100.0,
            ms(q(0.5)),
            ms(q(0.99))
        ));
        if let Some((a, ready)) = &pods_ready {
            let series = ready.get(rev);
            let start = series.and_then(|s| s.first()).copied().unwrap_or(0.0);
            let max = series.map_or(0.0, |s| s.iter().copied().fold(0.0, f64::max));
            let _ = writeln!(
                w,
                "    pods: {}   # {} ready pods at 0s ({} at most over the range)",
                start.round() as i64,
                a.tag(),
                max.round() as i64
            );
            if let Some((r, requested)) = &pods_requested {
                let lags = match (requested.get(rev), series) {
                    (Some(req), Some(ready)) => derive::startup_lags(req, ready, step_s),
                    _ => Vec::new(),
                };
                if let (Some(lo), Some(hi)) = (
                    lags.iter().copied().min_by(f64::total_cmp),
                    lags.iter().copied().max_by(f64::total_cmp),
                ) {
                    let dist = if lo == hi {
                        format!("{{constant: {}}}", secs(lo))
                    } else {
                        format!("{{uniform: {{min: {}, max: {}}}}}", secs(lo), secs(hi))
                    };
                    let _ = writeln!(
                        w,
                        "    startup: {dist}   # {} rose {} times; {} reached each in {}..{} (to the step)",
                        r.tag(),
                        lags.len(),
                        a.tag(),
                        secs(lo),
                        secs(hi)
                    );
                    lags_all.extend(lags);
                } else {
                    let _ = writeln!(
                        w,
                        "    # startup: the default; {} shows no scale-up that {} completed in the range",
                        r.tag(),
                        a.tag()
                    );
                }
            }
        }
    }
    // traffic
    let tag_targets: Vec<String> = tags
        .iter()
        .map(|(tag, rev, _)| {
            format!(
                "{{tag: {}, revisionName: {}, percent: 0}}",
                yaml_str(tag),
                yaml_str(rev)
            )
        })
        .collect();
    let block = |pct: &[u32]| -> Vec<String> {
        let mut targets: Vec<String> = revisions
            .iter()
            .zip(pct)
            .filter(|(_, p)| **p > 0)
            .map(|(r, p)| format!("{{revisionName: {}, percent: {p}}}", yaml_str(r)))
            .collect();
        targets.extend(tag_targets.iter().cloned());
        targets
    };
    let _ = writeln!(
        w,
        "traffic:   # {} the split of untagged requests at 0s; tags as {tag_label} shows them",
        requests.tag()
    );
    for t in block(&initial_split) {
        let _ = writeln!(w, "  - {t}");
    }
    if splits.len() > 1 {
        let _ = writeln!(
            w,
            "timeline:   # {} the split whenever it moved by {SPLIT_THRESHOLD_PCT} points or more",
            requests.tag()
        );
        for (k, pct) in &splits[1..] {
            let _ = writeln!(
                w,
                "  - {{at: {}, traffic: [{}]}}",
                secs(at(*k)),
                block(pct).join(", ")
            );
        }
    }
    let _ = writeln!(w, "arrivals:");
    let _ = writeln!(
        w,
        "  schedule:   # {} the total request rate (req/s) of every revision",
        requests.tag()
    );
    let _ = writeln!(w, "    poisson: true");
    let _ = writeln!(w, "    points:");
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (k, rate) in total.iter().enumerate() {
        let t = round_ms(at(k));
        let rate = round3(*rate);
        match points.last_mut() {
            Some(last) if last.0 == t => last.1 = rate,
            Some(last) if last.1 == rate => {}
            _ => points.push((t, rate)),
        }
    }
    for (t, rate) in &points {
        let _ = writeln!(w, "      - {{at: {}, rate: {}}}", secs(*t), num(*rate));
    }
    if !tags.is_empty() {
        let _ = writeln!(
            w,
            "  tags:   # {} each tag's share of all requests ({tag_label})",
            requests.tag()
        );
        for (tag, _, share) in &tags {
            let _ = writeln!(w, "    {}: {}", yaml_str(tag), num6(*share));
        }
    }
    if !lags_all.is_empty() {
        let _ = writeln!(w, "kubernetes:");
        let _ = writeln!(
            w,
            "  readiness_delay: {{constant: 0s}}   # included in startup: the ready-pod counts are Kubernetes-Ready pods"
        );
    }
    let scheduled: f64 = points
        .iter()
        .enumerate()
        .map(|(i, (t, rate))| {
            let end = points.get(i + 1).map_or(duration_s, |next| next.0);
            rate * (end - t).max(0.0)
        })
        .sum();
    summary.push(format!(
        "arrivals: {} schedule points, {:.2} req/s on average; {} split change(s); {} tag(s)",
        points.len(),
        scheduled / duration_s,
        splits.len().saturating_sub(1),
        tags.len()
    ));
    Ok(Calibrated {
        yaml: y,
        summary,
        notes,
    })
}

fn key_prefix(set: NameSet) -> &'static str {
    match set {
        NameSet::V118 => "v118",
        NameSet::Otel => "otel",
    }
}

fn pods_note(kind: QueryKind) -> &'static str {
    match kind {
        QueryKind::PodsReady => "pod counts keep the scenario defaults",
        _ => "pod start-up times keep the scenario default",
    }
}

/// Splits `--manifests` into the Knative manifest (at most one file) and ConfigMap files.
fn classify_manifests(
    files: &[ManifestInput],
) -> Result<(Option<&ManifestInput>, Vec<&ManifestInput>), CalibrateError> {
    let mut knative: Option<&ManifestInput> = None;
    let mut configmaps = Vec::new();
    for f in files {
        let objects = read_objects(&f.display, &f.text)
            .map_err(|e| CalibrateError::Manifests(e.to_string()))?;
        let is_cm = |k: &str| k == "ConfigMap";
        let is_kn = |k: &str| matches!(k, "Service" | "Route" | "Revision");
        if objects.is_empty() {
            return Err(CalibrateError::Manifests(format!(
                "{}: no Kubernetes objects",
                f.display
            )));
        }
        if let Some(o) = objects.iter().find(|o| !is_cm(&o.kind) && !is_kn(&o.kind)) {
            return Err(CalibrateError::Manifests(format!(
                "{}:{}: kind {:?} is not read; allowed: Knative Service, Route, Revision, and ConfigMap",
                f.display, o.kind_pos, o.kind
            )));
        }
        let cms = objects.iter().filter(|o| is_cm(&o.kind)).count();
        if cms == objects.len() {
            configmaps.push(f);
        } else if cms == 0 {
            if let Some(prev) = knative {
                return Err(CalibrateError::Manifests(format!(
                    "{} and {} both hold Knative objects; give one file (`kubectl get ksvc/NAME revisions -o yaml` prints them all as one List)",
                    prev.display, f.display
                )));
            }
            knative = Some(f);
        } else {
            return Err(CalibrateError::Manifests(format!(
                "{} mixes ConfigMaps and Knative objects; give them as separate files (a scenario reads them as service.manifest and cluster.configmaps)",
                f.display
            )));
        }
    }
    Ok((knative, configmaps))
}

fn add(acc: &mut Vec<f64>, values: &[f64]) {
    if acc.len() < values.len() {
        acc.resize(values.len(), 0.0);
    }
    for (a, v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}

/// A scenario name from a Service name: `calibrated-<name>`, lower-case letters, digits, `-`.
fn scenario_name(service: &str) -> String {
    let cleaned: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("calibrated-{cleaned}")
}

/// A YAML scalar, quoted when plain style would change its meaning.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serialises")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// A number with at most three decimals, no trailing zeros.
fn num(x: f64) -> String {
    trim(format!("{:.3}", round3(x)))
}

fn num6(x: f64) -> String {
    trim(format!("{x:.6}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Seconds as a Go duration (`12.5s`).
fn secs(s: f64) -> String {
    format!("{}s", num(s))
}

/// Seconds as a Go duration in milliseconds (`5ms`, `2500ms`, `0.5ms`).
fn ms(s: f64) -> String {
    format!("{}ms", num(s * 1000.0))
}

fn unix(s: f64) -> String {
    num(s)
}

#[cfg(test)]
mod tests;
