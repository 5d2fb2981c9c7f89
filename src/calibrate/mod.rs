//! `splitlab calibrate`: a scenario from what a cluster measured.
//!
//! Owns: choosing the set of Knative metric names a Prometheus has (`query`), reading its
//! range-query answers (`promjson`), turning series into scenario values (`derive`, and the
//! stages below) and writing the scenario's YAML text with a comment naming the query and time
//! range behind every value (`text`).
//! `--from`/`--to` parsing lives in `timestamp`.
//!
//! Must not: do I/O. Answers come through the caller's [`Source`] (the CLI reads a dump's
//! files, or asks `live::prometheus` to run the query against a URL); manifests come as text.
//! The scenario it writes is loaded by the caller with `scenario::load` before it is saved.
//!
//! How each value is derived is documented in docs/calibrate.md; in short:
//! - `arrivals.schedule`: the total request rate, one step per bin, centred on the middle of
//!   the rate window each sample averages;
//! - `traffic` and `timeline`: the split of untagged requests between revisions, whole percents,
//!   a new traffic block whenever it moves by [`SPLIT_THRESHOLD_PCT`] points;
//! - `arrivals.tags`: each route tag's share of all requests, its target the revision that
//!   served most of them;
//! - `revisions[].service_time`: the application latency histogram over the whole range;
//! - `revisions[].pods`: ready pods at the start; `startup`: requested-to-Ready lags.

pub mod derive;
pub mod promjson;
pub mod query;
mod text;
pub mod timestamp;

use std::collections::BTreeMap;

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
    let (knative, configmaps) = classify_manifests(&inputs.manifests)?;
    let window = query::rate_window(inputs.step.unwrap_or(DEFAULT_STEP));
    let mut notes = Vec::new();
    let requests = choose_names(inputs, source, window)?;
    let frame = Frame::new(inputs, &requests, &mut notes)?;
    let traffic = Traffic::derive(inputs, &requests, &frame, &mut notes)?;
    let latency = fetch_latency(inputs, source, &requests, window, &frame)?;
    let service_times = service_times(inputs, &latency, &traffic, &frame, &mut notes)?;
    let pods = Pods::fetch(inputs, source, &requests, window, &frame, &mut notes)?;
    let (yaml, summary) = text::scenario(&text::Parts {
        inputs,
        knative,
        configmaps: &configmaps,
        frame: &frame,
        requests: &requests,
        latency: &latency,
        traffic: &traffic,
        service_times: &service_times,
        pods: &pods,
        notes: &notes,
    });
    Ok(Calibrated {
        yaml,
        summary,
        notes,
    })
}

/// The request answer of the first name set whose request query returns series with values in
/// the range; the error lists every query tried and what it returned.
fn choose_names(
    inputs: &Inputs,
    source: &mut dyn Source,
    window: SimDuration,
) -> Result<Answer, CalibrateError> {
    let (ns, svc) = (inputs.namespace.as_str(), inputs.service.as_str());
    let (from, to) = (
        inputs.from.unwrap_or(f64::NEG_INFINITY),
        inputs.to.unwrap_or(f64::INFINITY),
    );
    let mut tried = Vec::new();
    for set in NameSet::ALL {
        let q = query::query(set, QueryKind::Requests, ns, svc, window);
        let key = q.key();
        let promql = q.promql.clone();
        match fetch(source, q)? {
            None => tried.push(format!(
                "  {promql}\n    ({}: no {key}.json in the dump)",
                set.describe()
            )),
            Some(a) if !derive::has_values_in(&a.series, from, to) => tried.push(format!(
                "  {promql}\n    ({}: {} returned {} series, none with values in the range)",
                set.describe(),
                a.fetched.origin,
                a.series.len()
            )),
            Some(a) => return Ok(a),
        }
    }
    Err(CalibrateError::NoRequests {
        namespace: ns.into(),
        service: svc.into(),
        range: range_text(inputs),
        tried: tried.join("\n"),
    })
}

/// ` between A and B` for an error about the requested range (empty without one).
fn range_text(inputs: &Inputs) -> String {
    match (inputs.from, inputs.to) {
        (None, None) => String::new(),
        (f, t) => format!(
            " between {} and {}",
            f.map_or("the first sample".into(), timestamp::format_instant),
            t.map_or("the last sample".into(), timestamp::format_instant)
        ),
    }
}

/// The time frame: the range, its bins, and where each bin's rate goes in scenario time.
struct Frame {
    from: f64,
    to: f64,
    step_s: f64,
    bins: Bins,
    duration_s: f64,
    /// The rate window of the request query, when its text is known.
    rate_window_s: Option<f64>,
    /// How far before its bin a bin's rate starts in the scenario.
    shift_s: f64,
    /// How long each bin's rate holds in the scenario.
    hold_s: Vec<f64>,
}

impl Frame {
    fn new(
        inputs: &Inputs,
        requests: &Answer,
        notes: &mut Vec<String>,
    ) -> Result<Self, CalibrateError> {
        let origin = &requests.fetched.origin;
        let (first, last) = derive::time_span(&requests.series)
            .ok_or_else(|| CalibrateError::Range(format!("{origin}: no samples")))?;
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
                    "{origin}: no series has two samples, so the step is unknown; pass --step"
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
                text::num(to - from),
                text::num(step_s)
            )));
        }
        let bins = Bins::new(from, to, step_s);
        let duration_s = to - from;
        let rate_window_s = requests
            .fetched
            .promql
            .as_deref()
            .and_then(query::window_of)
            .map(|w| w.as_secs_f64());
        if rate_window_s.is_none() {
            notes.push(format!(
                "{origin}: the query text is unknown (no {}.query beside it), so rates are placed at their sample times rather than the middle of their window",
                requests.query.key()
            ));
        }
        // A sample at t is the average rate over (t - W, t]: its value belongs to t - W/2. A
        // bin's value (the mean of its samples, `sample_step` apart) holds for one bin width
        // centred there, so it starts W/2 + sample_step/2 before the bin: the schedule then
        // carries as many requests as the counter counted, without a lag. Without the query
        // text, no shift.
        let sample_step_s = derive::sample_step(&requests.series).unwrap_or(step_s);
        let shift_s = rate_window_s.map_or(0.0, |w| (w + sample_step_s) / 2.0);
        let mut frame = Frame {
            from,
            to,
            step_s,
            bins,
            duration_s,
            rate_window_s,
            shift_s,
            hold_s: Vec::new(),
        };
        frame.hold_s = (0..bins.count)
            .map(|k| {
                let end = if k + 1 == bins.count {
                    duration_s
                } else {
                    frame.at(k + 1)
                };
                (end.min(duration_s) - frame.at(k)).max(0.0)
            })
            .collect();
        Ok(frame)
    }

    /// Where bin `k`'s rate starts in scenario time (seconds).
    fn at(&self, k: usize) -> f64 {
        (self.bins.start_s(k) - self.shift_s).max(0.0)
    }

    /// The requests a per-bin rate sends in the scenario: shares of requests are weighted by
    /// how long each bin's rate holds, so they are the shares of what the scenario sends.
    fn requests_of(&self, rates: &[f64]) -> f64 {
        rates.iter().zip(&self.hold_s).map(|(r, h)| r * h).sum()
    }
}

/// A route tag as the scenario addresses it.
struct TagRoute {
    tag: String,
    /// The revision that served most of its requests.
    revision: String,
    /// Its share of all requests.
    share: f64,
}

/// Rates by revision and tag, and the split over time.
struct Traffic {
    /// Every revision with requests in the range, by name.
    revisions: Vec<String>,
    by_rev: BTreeMap<String, Vec<f64>>,
    /// The total rate per bin.
    total: Vec<f64>,
    total_requests: f64,
    tags: Vec<TagRoute>,
    /// `(bin, percents by revision)`: the first block and every change.
    splits: Vec<(usize, Vec<u32>)>,
    initial_split: Vec<u32>,
}

impl Traffic {
    fn derive(
        inputs: &Inputs,
        requests: &Answer,
        frame: &Frame,
        notes: &mut Vec<String>,
    ) -> Result<Self, CalibrateError> {
        let set = requests.query.set;
        let bins = &frame.bins;
        let rev_label = set.revision_label();
        let tag_label = set.tag_label();
        let mut by_rev: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut by_tag: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
        for s in &requests.series {
            let b = derive::binned(s, bins);
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
            let counted = rates.iter().any(|r| *r > 0.0);
            if name.is_empty() && counted {
                notes.push(format!(
                    "{}: series without a {rev_label} label are left out",
                    requests.fetched.origin
                ));
            }
            !name.is_empty() && counted
        });
        if by_rev.is_empty() {
            return Err(CalibrateError::NoRequests {
                namespace: inputs.namespace.clone(),
                service: inputs.service.clone(),
                range: range_text(inputs),
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
        let total_requests = frame.requests_of(&total);

        // Tags: share of all requests, target the revision serving most of them.
        let mut tags = Vec::new();
        let mut tagged_by_rev: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (tag, revs) in &by_tag {
            let mut best: Option<(&String, f64)> = None;
            let mut tag_total = 0.0;
            for (rev, rates) in revs {
                if !by_rev.contains_key(rev) {
                    continue;
                }
                add(tagged_by_rev.entry(rev.clone()).or_default(), rates);
                let sum = frame.requests_of(rates);
                tag_total += sum;
                if best.is_none_or(|(_, b)| sum > b) {
                    best = Some((rev, sum));
                }
            }
            if let Some((rev, _)) = best.filter(|_| tag_total > 0.0) {
                if revs.len() > 1 {
                    notes.push(format!(
                        "{tag_label}={tag:?} reached {} revisions; the scenario sends it to {rev}, which served most of it",
                        revs.len()
                    ));
                }
                tags.push(TagRoute {
                    tag: tag.clone(),
                    revision: rev.clone(),
                    share: tag_total / total_requests,
                });
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
        Ok(Traffic {
            revisions,
            by_rev,
            total,
            total_requests,
            tags,
            splits,
            initial_split,
        })
    }
}

/// The latency histogram answer of the chosen name set: required.
fn fetch_latency(
    inputs: &Inputs,
    source: &mut dyn Source,
    requests: &Answer,
    window: SimDuration,
    frame: &Frame,
) -> Result<Answer, CalibrateError> {
    let set = requests.query.set;
    let q = query::query(
        set,
        QueryKind::Latency,
        &inputs.namespace,
        &inputs.service,
        window,
    );
    let (promql, key) = (q.promql.clone(), q.key());
    let why = match fetch(source, q)? {
        Some(a) if derive::has_values_in(&a.series, frame.from, frame.to) => return Ok(a),
        Some(a) => format!(
            "{} returned {} series, none with values in the range",
            a.fetched.origin,
            a.series.len()
        ),
        None => format!("no {key}.json in the dump"),
    };
    Err(CalibrateError::NoLatency {
        namespace: inputs.namespace.clone(),
        service: inputs.service.clone(),
        tried: format!("{promql}\n    ({why})"),
    })
}

/// A revision's service time: the histogram's buckets (seconds), its distribution, and whose
/// buckets they are.
struct ServiceTime {
    buckets: Vec<(Option<f64>, f64)>,
    dist: Dist,
    whose: &'static str,
}

fn service_times(
    inputs: &Inputs,
    latency: &Answer,
    traffic: &Traffic,
    frame: &Frame,
    notes: &mut Vec<String>,
) -> Result<Vec<ServiceTime>, CalibrateError> {
    let set = latency.query.set;
    let origin = &latency.fetched.origin;
    let mut out = Vec::with_capacity(traffic.revisions.len());
    for rev in &traffic.revisions {
        let own: Vec<&Series> = latency
            .series
            .iter()
            .filter(|s| s.label(set.revision_label()) == rev)
            .collect();
        let (mut buckets, mut bad) = derive::histogram(&own, &frame.bins, set.latency_unit_s());
        let mut whose = "its own";
        if buckets.iter().all(|b| b.1 <= 0.0) {
            let all: Vec<&Series> = latency.series.iter().collect();
            (buckets, bad) = derive::histogram(&all, &frame.bins, set.latency_unit_s());
            whose = "the whole Service's (the revision has none)";
            notes.push(format!(
                "{rev}: no latency buckets of its own in {origin}; it gets the whole Service's"
            ));
        }
        if !bad.is_empty() {
            notes.push(format!(
                "{origin}: le values that are not numbers were left out: {}",
                bad.join(", ")
            ));
        }
        let as_durations: Vec<(Option<SimDuration>, f64)> = buckets
            .iter()
            .map(|(le, c)| (le.map(SimDuration::from_secs_f64), *c))
            .collect();
        let dist = Dist::histogram(&as_durations).map_err(|e| CalibrateError::NoLatency {
            namespace: inputs.namespace.clone(),
            service: inputs.service.clone(),
            tried: format!("{origin}: {rev}: {e}"),
        })?;
        out.push(ServiceTime {
            buckets,
            dist,
            whose,
        });
    }
    Ok(out)
}

/// Pod counts per revision and bin, with the answer they came from.
type PodCounts = (Answer, BTreeMap<String, Vec<f64>>);

/// The autoscaler's pod counts, when the server has them.
struct Pods {
    ready: Option<PodCounts>,
    /// Requested pods, or the decider's desired pods standing in.
    requested: Option<PodCounts>,
}

impl Pods {
    fn fetch(
        inputs: &Inputs,
        source: &mut dyn Source,
        requests: &Answer,
        window: SimDuration,
        frame: &Frame,
        notes: &mut Vec<String>,
    ) -> Result<Self, CalibrateError> {
        let set = requests.query.set;
        let mut one = |kind: QueryKind| -> Result<Result<PodCounts, String>, CalibrateError> {
            let q = query::query(set, kind, &inputs.namespace, &inputs.service, window);
            let key = q.key();
            Ok(match fetch(source, q)? {
                Some(a) if derive::has_values_in(&a.series, frame.from, frame.to) => {
                    let per_rev =
                        derive::gauge_by_label(&a.series, set.revision_label(), &frame.bins);
                    Ok((a, per_rev))
                }
                Some(a) => Err(format!("{}: no values in the range", a.fetched.origin)),
                None => Err(format!("no {key}.json in the dump")),
            })
        };
        let ready = match one(QueryKind::PodsReady)? {
            Ok(p) => Some(p),
            Err(why) => {
                notes.push(format!("{why}; pod counts keep the scenario defaults"));
                None
            }
        };
        let requested = match one(QueryKind::PodsRequested)? {
            Ok(p) => Some(p),
            // The decider's desired pods stand in for the requested ones.
            Err(why) => match one(QueryKind::PodsDesired)? {
                Ok(p) => {
                    notes.push(format!(
                        "no requested-pod counts ({}); start-up times use the desired pods of {}",
                        query::query(
                            set,
                            QueryKind::PodsRequested,
                            &inputs.namespace,
                            &inputs.service,
                            window
                        )
                        .key(),
                        p.0.fetched.origin
                    ));
                    Some(p)
                }
                Err(_) => {
                    notes.push(format!(
                        "{why}; pod start-up times keep the scenario default"
                    ));
                    None
                }
            },
        };
        Ok(Pods { ready, requested })
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

/// Adds `values` into `acc` element by element.
fn add(acc: &mut Vec<f64>, values: &[f64]) {
    if acc.len() < values.len() {
        acc.resize(values.len(), 0.0);
    }
    for (a, v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}

#[cfg(test)]
mod tests;
