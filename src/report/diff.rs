//! Comparing two runs from their `summary.json` files alone (`splitlab diff`): metric by metric,
//! the two values, their difference and whether it lies within the statistical noise expected
//! for the counts behind it.
//!
//! Owns: reading the fields of `summary.json` that a diff needs (errors name the file and the
//! field path), the noise model of each metric, the rows of a diff and their text table.
//!
//! Must not: simulate, print or decide exit statuses; everything here apart from
//! `RunSummary::read` is a pure function of its inputs.
//!
//! # Metrics and their noise
//!
//! Every difference is `B − A`. A metric is within noise ("ok") when `|B − A| ≤ z·SE`, with `SE`
//! the standard error of the difference under the hypothesis that both runs draw from the same
//! distribution; the default `z` is [`Z999`] (99.9% two-sided): a diff tests a dozen or more
//! metrics at once, and a wide band keeps false alarms rare.
//!
//! - **Share per revision**: `routed_r / Σ routed` in each run. Two-proportion test
//!   ([`two_proportion_se`]: pooled `p`, `SE = sqrt(p(1−p)(1/n1 + 1/n2))`, `n` = Σ routed).
//! - **Outcome proportions**: `served`, `rejected_qp`, `expired_activator`, `expired_qp`,
//!   `client_cancelled`, `errors`, `ingress_overflow` and `in_flight_at_end` of all requests, each as a share of
//!   `requests.arrived`; the same test.
//! - **Latency per revision**: the mean, p50, p90 and p99 of served requests; see
//!   [`quantile_se_ms`] and [`mean_se_ms`]. `SE` of the difference is
//!   `sqrt(SE_A² + SE_B²)`.
//!
//! The binomial model fits a per-request random picker under a steady load (a deterministic
//! picker such as `wrr` varies less, so its bands err wide). Outcomes that come in bursts (a
//! queue overflowing rejects many requests in a row) vary more from seed to seed than the model
//! says, so two seeds of one scenario with rejections or expiries can show `DIFFERS` for them:
//! the band covers the noise of counting independent requests, not that extra variation. The
//! same holds for shares when the split changes at a random time: in `instant-shift` the new
//! revision takes all traffic once it is ready, after a random start-up, so its share over the
//! run moves with that time (seeds 1 and 2 differ by 3.6 points, against a band of 0.4). The
//! band answers "could per-request routing noise alone explain this?"; to compare settings whose
//! runs vary for other reasons, use several seeds of each (`splitlab compare`).
//!
//! Invariants:
//! - Rows come in a fixed order: shares, then outcomes in `OUTCOMES` order, then latencies:
//!   every served request pooled (`latency (all) ...`, when both summaries have it), then the
//!   revisions in name order (the union of both runs' revisions).
//! - A revision present in only one run is shown with `-` on the other side. Its share is never
//!   within noise unless the run that has it routed it nothing; its latency is not compared.
//! - A proportion whose denominator is 0 (no request arrived, nothing routed) is undefined. Two
//!   undefined proportions agree; an undefined one never agrees with a defined one.
//! - A revision that served nothing in one run (or in both) has no latency there: its one
//!   latency row says so and is not compared.
//! - Only share and outcome rows count for `Diff::check_failed`: latency depends on the
//!   environment (a live run pays real network and scheduling costs a simulation does not
//!   model), so it is reported but never fails a check.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use super::accuracy::Z999;
use super::accuracy::{binomial_se, two_proportion_se};
use super::compare::{decimals, signed};
use super::run::SUMMARY_FILE;

/// The outcomes of `requests` compared as proportions of `requests.arrived`, in output order.
pub use super::record::END_KEYS as OUTCOMES;

/// Latency quantiles come from HDR histograms with 3 significant digits (`run.rs`, `SIGFIG`):
/// a reported value is within this fraction of the true one. Two quantiles closer than that
/// cannot be told apart, so a spacing never counts as smaller than this fraction of its upper
/// end (which also keeps the density estimate finite when two quantiles coincide).
const HISTOGRAM_RESOLUTION: f64 = 1e-3;

/// Reading a run's `summary.json` failed.
///
/// Each message is complete on its own: the underlying error is part of it (in `cause`) and not
/// also given as `source()`, so a printer that walks the chain (`{:#}`) shows it once.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{}: not a run directory (it does not exist or is not a directory)", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("{}: not JSON: {cause}", path.display())]
    Json {
        path: PathBuf,
        cause: serde_json::Error,
    },
    /// A field is missing or has the wrong type; `field` is its dotted path.
    #[error("{}: {field}: {problem}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
}

// ---------------------------------------------------------------------------------------------
// What a diff reads from summary.json
// ---------------------------------------------------------------------------------------------

/// The latency of a revision's served requests, in milliseconds, as `summary.json` reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyMs {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What a diff needs of one revision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RevisionSummary {
    /// Requests routed to the revision.
    pub routed: u64,
    pub served: u64,
    /// `None` when the revision served nothing (`latency_ms` is null).
    pub latency_ms: Option<LatencyMs>,
}

/// What a diff needs of one run's `summary.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// How the run is named in the output: the directory as given.
    pub label: String,
    pub scenario: String,
    pub seed: u64,
    /// `"sim"` or `"live"`.
    pub mode: String,
    /// `requests.arrived`.
    pub arrived: u64,
    /// `requests.<outcome>`, in `OUTCOMES` order.
    pub outcomes: [u64; OUTCOMES.len()],
    pub revisions: BTreeMap<String, RevisionSummary>,
    /// Every served request pooled over the revisions (`latency_ms` and `requests.served` at
    /// the top of `summary.json`); `None` for a summary written before it had them.
    pub overall: Option<RevisionSummary>,
}

impl RunSummary {
    /// Reads `dir/summary.json`; `label` is `dir` as given.
    pub fn read(dir: &Path) -> Result<Self, DiffError> {
        if !dir.is_dir() {
            return Err(DiffError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|cause| DiffError::Read {
            path: path.clone(),
            cause,
        })?;
        Self::parse(&dir.display().to_string(), &path, &text)
    }

    /// Parses the content of a `summary.json`; `path` names it in errors.
    pub fn parse(label: &str, path: &Path, text: &str) -> Result<Self, DiffError> {
        let root: Value = serde_json::from_str(text).map_err(|cause| DiffError::Json {
            path: path.to_path_buf(),
            cause,
        })?;
        let f = Fields { path };
        let requests = f.typed(&root, "", "requests", "an object", |v| {
            v.is_object().then_some(v)
        })?;
        let mut outcomes = [0; OUTCOMES.len()];
        for (count, name) in outcomes.iter_mut().zip(OUTCOMES) {
            // Summaries written before failing revisions existed have no such outcome: none.
            let newer = matches!(name, "app_error" | "bad_gateway");
            *count = if newer && requests.get(name).is_none() {
                0
            } else {
                f.count(requests, "requests", name)?
            };
        }
        let mut revisions = BTreeMap::new();
        for (name, rev) in f.object(&root, "", "revisions")? {
            let at = format!("revisions.{name}");
            let summary = RevisionSummary {
                routed: f.count(rev, &at, "routed")?,
                served: f.count(rev, &at, "served")?,
                latency_ms: f.latency(rev, &at)?,
            };
            revisions.insert(name.clone(), summary);
        }
        let arrived = f.count(requests, "requests", "arrived")?;
        let overall = match root.get("latency_ms") {
            None => None,
            Some(_) => Some(RevisionSummary {
                routed: arrived,
                served: f.count(requests, "requests", "served")?,
                latency_ms: f.latency(&root, "")?,
            }),
        };
        Ok(RunSummary {
            label: label.to_string(),
            scenario: f.string(&root, "", "scenario")?,
            seed: f.count(&root, "", "seed")?,
            mode: f.string(&root, "", "mode")?,
            arrived,
            outcomes,
            revisions,
            overall,
        })
    }
}

/// Typed access to the fields of a JSON document, with errors naming the file and field path.
struct Fields<'a> {
    path: &'a Path,
}

impl Fields<'_> {
    fn error(&self, parent: &str, key: &str, problem: String) -> DiffError {
        DiffError::Field {
            path: self.path.to_path_buf(),
            field: if parent.is_empty() {
                key.to_string()
            } else {
                format!("{parent}.{key}")
            },
            problem,
        }
    }

    /// `parent` is the dotted path of `value` ("" for the root).
    fn get<'v>(&self, value: &'v Value, parent: &str, key: &str) -> Result<&'v Value, DiffError> {
        match value.get(key) {
            Some(v) => Ok(v),
            None if value.is_object() => Err(self.error(parent, key, "missing".to_string())),
            None => Err(self.error(parent, key, format!("its parent is not an object: {value}"))),
        }
    }

    fn typed<'v, T>(
        &self,
        value: &'v Value,
        parent: &str,
        key: &str,
        expected: &str,
        convert: impl FnOnce(&'v Value) -> Option<T>,
    ) -> Result<T, DiffError> {
        let v = self.get(value, parent, key)?;
        convert(v).ok_or_else(|| self.error(parent, key, format!("expected {expected}, found {v}")))
    }

    fn object<'v>(
        &self,
        value: &'v Value,
        parent: &str,
        key: &str,
    ) -> Result<&'v serde_json::Map<String, Value>, DiffError> {
        self.typed(value, parent, key, "an object", Value::as_object)
    }

    fn count(&self, value: &Value, parent: &str, key: &str) -> Result<u64, DiffError> {
        self.typed(value, parent, key, "a non-negative integer", Value::as_u64)
    }

    fn number(&self, value: &Value, parent: &str, key: &str) -> Result<f64, DiffError> {
        self.typed(value, parent, key, "a non-negative number", |v| {
            v.as_f64().filter(|x| x.is_finite() && *x >= 0.0)
        })
    }

    /// `value`'s `latency_ms` (`parent` its dotted path): `None` when it is null (nothing served).
    fn latency(&self, value: &Value, parent: &str) -> Result<Option<LatencyMs>, DiffError> {
        let lat = match self.get(value, parent, "latency_ms")? {
            Value::Null => return Ok(None),
            lat => lat,
        };
        let at = if parent.is_empty() {
            "latency_ms".to_string()
        } else {
            format!("{parent}.latency_ms")
        };
        let ms = |key| self.number(lat, &at, key);
        Ok(Some(LatencyMs {
            mean: ms("mean")?,
            p50: ms("p50")?,
            p90: ms("p90")?,
            p99: ms("p99")?,
            p999: ms("p999")?,
            max: ms("max")?,
        }))
    }

    fn string(&self, value: &Value, parent: &str, key: &str) -> Result<String, DiffError> {
        self.typed(value, parent, key, "a string", |v| {
            v.as_str().map(str::to_string)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Noise of latency estimates
// ---------------------------------------------------------------------------------------------

/// The standard error, in ms, of the sample `q`-quantile `x_q` of `n` served requests.
///
/// A sample quantile is asymptotically normal with variance `q(1−q) / (n·f(x_q)²)`, where `f` is
/// the density of the latency at `x_q` (e.g. Serfling, *Approximation Theorems of Mathematical
/// Statistics*, 2.3.3). `summary.json` has no density, so it is estimated from the next reported
/// quantile above: between `x_q` and `x_next` lies the probability `q_next − q`, so
/// `f ≈ (q_next − q) / (x_next − x_q)`: for p50 the (p50, p90) spacing, for p90 (p90, p99), for
/// p99 (p99, p999). The spacing is taken as at least the histogram's resolution
/// (`HISTOGRAM_RESOLUTION · x_next`), so two equal quantiles give a small band, not none. The
/// estimate is rough (it is the density of the distribution taken as uniform between reported
/// quantiles) but has the right size: the band widens where the tail is long and shrinks as
/// `1/sqrt(n)`. For the usual right-skewed latency the density falls between `x_q` and
/// `x_next`, so the estimate is below `f(x_q)` and the band errs wide: for an exponential
/// latency, p50's band is 2.0 times the asymptotic one and p90's and p99's 2.6 times.
pub fn quantile_se_ms(q: f64, x_q: f64, q_next: f64, x_next: f64, n: u64) -> f64 {
    let spacing = (x_next - x_q).max(HISTOGRAM_RESOLUTION * x_next);
    let density = (q_next - q) / spacing;
    binomial_se(q, n) / density
}

/// The standard error, in ms, of the mean latency of `n` served requests: `σ / sqrt(n)`.
///
/// `summary.json` has no standard deviation, so `σ` is that of the same picture
/// `quantile_se_ms` uses: the distribution uniform between neighbouring reported quantiles, with
/// mass 0.5 on [0, p50], 0.4 on [p50, p90], 0.09 on [p90, p99], 0.009 on [p99, p999] and 0.001
/// on [p999, max]. A uniform piece on [lo, hi] with mass w adds `w(lo+hi)/2` to the mean and
/// `w(lo² + lo·hi + hi²)/3` to the second moment.
pub fn mean_se_ms(lat: &LatencyMs, n: u64) -> f64 {
    let pieces = [
        (0.0, lat.p50, 0.5),
        (lat.p50, lat.p90, 0.4),
        (lat.p90, lat.p99, 0.09),
        (lat.p99, lat.p999, 0.009),
        (lat.p999, lat.max, 0.001),
    ];
    let m1: f64 = pieces.iter().map(|(lo, hi, w)| w * (lo + hi) / 2.0).sum();
    let m2: f64 = pieces
        .iter()
        .map(|(lo, hi, w)| w * (lo * lo + lo * hi + hi * hi) / 3.0)
        .sum();
    let variance = (m2 - m1 * m1).max(0.0);
    (variance / n as f64).sqrt()
}

/// A latency statistic of a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyStat {
    Mean,
    P50,
    P90,
    P99,
}

impl LatencyStat {
    pub const ALL: [LatencyStat; 4] = [
        LatencyStat::Mean,
        LatencyStat::P50,
        LatencyStat::P90,
        LatencyStat::P99,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LatencyStat::Mean => "mean",
            LatencyStat::P50 => "p50",
            LatencyStat::P90 => "p90",
            LatencyStat::P99 => "p99",
        }
    }

    /// The statistic in `lat` and its standard error over `n` served requests.
    pub fn value_and_se(self, lat: &LatencyMs, n: u64) -> (f64, f64) {
        match self {
            LatencyStat::Mean => (lat.mean, mean_se_ms(lat, n)),
            LatencyStat::P50 => (lat.p50, quantile_se_ms(0.5, lat.p50, 0.9, lat.p90, n)),
            LatencyStat::P90 => (lat.p90, quantile_se_ms(0.9, lat.p90, 0.99, lat.p99, n)),
            LatencyStat::P99 => (lat.p99, quantile_se_ms(0.99, lat.p99, 0.999, lat.p999, n)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rows of a diff
// ---------------------------------------------------------------------------------------------

/// The kind of a row, which decides its unit and whether it counts for `--check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// A revision's share of routed requests.
    Share,
    /// An outcome's share of arrived requests.
    Outcome,
    /// A latency statistic of a revision, in ms.
    Latency,
}

/// One side of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    /// The run has no such revision.
    Absent,
    /// `count` of `total`: a share, undefined when `total` is 0.
    Proportion { count: u64, total: u64 },
    /// A latency in ms.
    Ms(f64),
    /// The revision served nothing, so it has no latency.
    NothingServed,
}

impl Side {
    fn proportion(self) -> Option<f64> {
        match self {
            Side::Proportion { count, total } if total > 0 => Some(count as f64 / total as f64),
            _ => None,
        }
    }
}

/// Whether a difference lies within noise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within noise (or the same on both sides): printed "ok".
    Within,
    /// Beyond noise, or present on one side only.
    Differs,
    /// Not compared, and why (e.g. "nothing served in B").
    NotCompared(String),
}

/// One metric of a diff.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub section: Section,
    /// E.g. `share hello-00001`, `outcome served`, `latency hello-00001 p99`.
    pub metric: String,
    pub a: Side,
    pub b: Side,
    /// `B − A` (a fraction for shares, ms for latency); `None` when either side has no value.
    pub diff: Option<f64>,
    /// `z·SE`: the half-width of the noise band around 0, in the unit of `diff`.
    pub band: Option<f64>,
    pub verdict: Verdict,
}

/// Who a run is, for the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunHeader {
    pub label: String,
    pub scenario: String,
    pub mode: String,
    pub seed: u64,
    pub arrived: u64,
}

impl RunHeader {
    fn of(run: &RunSummary) -> Self {
        RunHeader {
            label: run.label.clone(),
            scenario: run.scenario.clone(),
            mode: run.mode.clone(),
            seed: run.seed,
            arrived: run.arrived,
        }
    }
}

/// Two runs compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub a: RunHeader,
    pub b: RunHeader,
    pub z: f64,
    pub rows: Vec<Row>,
}

impl Diff {
    /// The rows that differ beyond noise.
    pub fn differing(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Differs)
    }

    /// Whether a share or an outcome proportion differs (what `--check` fails on; latency never
    /// does, see the module docs).
    pub fn check_failed(&self) -> bool {
        self.differing().any(|r| r.section != Section::Latency)
    }
}

/// Compares run `b` with run `a`, each metric with a noise band `z` standard errors wide.
pub fn diff_runs(a: &RunSummary, b: &RunSummary, z: f64) -> Diff {
    let names: BTreeSet<&String> = a.revisions.keys().chain(b.revisions.keys()).collect();
    let routed_total = |run: &RunSummary| run.revisions.values().map(|r| r.routed).sum::<u64>();
    let (total_a, total_b) = (routed_total(a), routed_total(b));
    let mut rows = Vec::new();
    for name in &names {
        let share = |run: &RunSummary, total| match run.revisions.get(*name) {
            Some(rev) => Side::Proportion {
                count: rev.routed,
                total,
            },
            None => Side::Absent,
        };
        rows.push(proportion_row(
            Section::Share,
            format!("share {name}"),
            share(a, total_a),
            share(b, total_b),
            z,
        ));
    }
    for (i, outcome) in OUTCOMES.iter().enumerate() {
        let side = |run: &RunSummary| Side::Proportion {
            count: run.outcomes[i],
            total: run.arrived,
        };
        rows.push(proportion_row(
            Section::Outcome,
            format!("outcome {outcome}"),
            side(a),
            side(b),
            z,
        ));
    }
    if let (Some(all_a), Some(all_b)) = (&a.overall, &b.overall) {
        latency_rows(ALL, Some(all_a), Some(all_b), z, &mut rows);
    }
    for name in &names {
        latency_rows(
            name,
            a.revisions.get(*name),
            b.revisions.get(*name),
            z,
            &mut rows,
        );
    }
    Diff {
        a: RunHeader::of(a),
        b: RunHeader::of(b),
        z,
        rows,
    }
}

/// A share (`Side::Proportion` or `Side::Absent` on either side) compared by the two-proportion
/// test.
fn proportion_row(section: Section, metric: String, a: Side, b: Side, z: f64) -> Row {
    let (diff, band, verdict) = match (a, b) {
        (
            Side::Proportion {
                count: xa,
                total: na,
            },
            Side::Proportion {
                count: xb,
                total: nb,
            },
        ) => match (a.proportion(), b.proportion()) {
            (Some(pa), Some(pb)) => {
                let band = z * two_proportion_se(xa, na, xb, nb);
                let diff = pb - pa;
                // A hair of tolerance: equal shares with a zero-width band (p = 0 or 1) are ok.
                let within = diff.abs() <= band + 1e-12;
                (Some(diff), Some(band), within)
            }
            // Both undefined (nothing to share out on either side): they agree.
            (None, None) => (None, None, true),
            _ => (None, None, false),
        },
        // On one side only: ok only if the side that has it routed nothing there.
        (Side::Proportion { count, .. }, _) | (_, Side::Proportion { count, .. }) => {
            (None, None, count == 0)
        }
        _ => (None, None, true),
    };
    Row {
        section,
        metric,
        a,
        b,
        diff,
        band,
        verdict: if verdict {
            Verdict::Within
        } else {
            Verdict::Differs
        },
    }
}

/// What the latency rows of every served request pooled are named after (`latency (all) p99`):
/// not a Kubernetes name, so no revision's.
const ALL: &str = "(all)";

/// The latency rows of revision `name`: one per `LatencyStat`, or a single row saying why there
/// is nothing to compare.
fn latency_rows(
    name: &str,
    a: Option<&RevisionSummary>,
    b: Option<&RevisionSummary>,
    z: f64,
    rows: &mut Vec<Row>,
) {
    let served = |rev: Option<&RevisionSummary>| {
        rev.and_then(|r| r.latency_ms.filter(|_| r.served > 0).map(|l| (l, r.served)))
    };
    let side = |rev: Option<&RevisionSummary>| match (rev, served(rev)) {
        (None, _) => Side::Absent,
        (Some(_), None) => Side::NothingServed,
        (Some(_), Some((lat, _))) => Side::Ms(lat.mean),
    };
    let (Some((lat_a, n_a)), Some((lat_b, n_b))) = (served(a), served(b)) else {
        let reason = match (a, b) {
            (None, _) => "revision only in B".to_string(),
            (_, None) => "revision only in A".to_string(),
            _ => match (served(a), served(b)) {
                (None, None) => "nothing served in A or B".to_string(),
                (None, _) => "nothing served in A".to_string(),
                _ => "nothing served in B".to_string(),
            },
        };
        rows.push(Row {
            section: Section::Latency,
            metric: format!("latency {name} mean"),
            a: side(a),
            b: side(b),
            diff: None,
            band: None,
            verdict: Verdict::NotCompared(reason),
        });
        return;
    };
    for stat in LatencyStat::ALL {
        let (va, se_a) = stat.value_and_se(&lat_a, n_a);
        let (vb, se_b) = stat.value_and_se(&lat_b, n_b);
        let band = z * se_a.hypot(se_b);
        let diff = vb - va;
        rows.push(Row {
            section: Section::Latency,
            metric: format!("latency {name} {}", stat.name()),
            a: Side::Ms(va),
            b: Side::Ms(vb),
            diff: Some(diff),
            band: Some(band),
            verdict: if diff.abs() <= band + 1e-9 {
                Verdict::Within
            } else {
                Verdict::Differs
            },
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The text table
// ---------------------------------------------------------------------------------------------

/// The diff as an aligned text table, with a header naming both runs and a last line that
/// counts the metrics beyond noise. Shares and proportions are in percent (differences in
/// percentage points, `pp`), latencies in ms with decimals to suit their size.
pub fn render(diff: &Diff) -> String {
    let mut out = String::new();
    for (which, run) in [("A", &diff.a), ("B", &diff.b)] {
        let _ = writeln!(
            out,
            "{which}: {} (scenario {}, mode {}, seed {}; {} requests arrived)",
            run.label, run.scenario, run.mode, run.seed, run.arrived
        );
    }
    let _ = writeln!(
        out,
        "diff = B - A; noise = z·SE with z = {}; a metric is ok when |diff| <= noise",
        z_text(diff.z)
    );
    out.push('\n');

    let header = ["metric", "A", "B", "diff", "noise", "verdict"].map(String::from);
    let mut cells = vec![header];
    cells.extend(diff.rows.iter().map(row_cells));
    let width = |col: usize| cells.iter().map(|r| r[col].chars().count()).max();
    let widths: Vec<usize> = (0..6).map(|c| width(c).unwrap_or(0)).collect();
    for row in &cells {
        let mut line = String::new();
        for (col, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            match col {
                // the metric and verdict read left to right; numbers align on the right
                0 => line.push_str(&format!("{cell}{}", " ".repeat(pad))),
                5 => line.push_str(cell),
                _ => line.push_str(&format!("{}{cell}", " ".repeat(pad))),
            }
            if col < 5 {
                line.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out.push('\n');

    let compared = diff
        .rows
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::NotCompared(_)))
        .count();
    let differing: Vec<&str> = diff.differing().map(|r| r.metric.as_str()).collect();
    if differing.is_empty() {
        let _ = writeln!(out, "all {compared} compared metrics are within noise");
    } else {
        let _ = writeln!(
            out,
            "{} of {compared} compared metrics differ beyond noise: {}",
            differing.len(),
            differing.join(", ")
        );
    }
    out
}

/// `z` as given, with its two-sided coverage when it is the default.
fn z_text(z: f64) -> String {
    if z == Z999 {
        "3.29 (99.9% two-sided)".to_string()
    } else {
        format!("{z}")
    }
}

fn row_cells(row: &Row) -> [String; 6] {
    let verdict = match &row.verdict {
        Verdict::Within => "ok".to_string(),
        Verdict::Differs => "DIFFERS".to_string(),
        Verdict::NotCompared(why) => format!("n/a: {why}"),
    };
    let (a, b, diff, band) = match row.section {
        Section::Share | Section::Outcome => (
            percent_cell(row.a),
            percent_cell(row.b),
            row.diff
                .map(|d| format!("{} pp", signed(d * 100.0, 3)))
                .unwrap_or_else(|| "-".to_string()),
            row.band
                .map(|n| format!("±{:.3} pp", n * 100.0))
                .unwrap_or_else(|| "-".to_string()),
        ),
        Section::Latency => {
            // Enough decimals for the smaller of the values and the band, so a band of 0.4 ms
            // around 150 ms is not printed as ±0.
            let dp = [row.a, row.b]
                .into_iter()
                .filter_map(|s| match s {
                    Side::Ms(v) => Some(decimals(v)),
                    _ => None,
                })
                .chain(row.band.map(decimals))
                .max()
                .unwrap_or(0);
            (
                ms_cell(row.a, dp),
                ms_cell(row.b, dp),
                row.diff
                    .map(|d| format!("{} ms", signed(d, dp)))
                    .unwrap_or_else(|| "-".to_string()),
                row.band
                    .map(|n| format!("±{n:.dp$} ms"))
                    .unwrap_or_else(|| "-".to_string()),
            )
        }
    };
    [row.metric.clone(), a, b, diff, band, verdict]
}

fn percent_cell(side: Side) -> String {
    match side {
        Side::Proportion { count, total } if total > 0 => {
            format!("{:.3}% ({count})", count as f64 * 100.0 / total as f64)
        }
        Side::Proportion { count, .. } => format!("- ({count})"),
        _ => "-".to_string(),
    }
}

fn ms_cell(side: Side, dp: usize) -> String {
    match side {
        Side::Ms(v) => format!("{v:.dp$} ms"),
        Side::NothingServed => "none served".to_string(),
        _ => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A latency with the given quantiles (mean between p50 and p90, max above p999).
    fn lat(p50: f64, p90: f64, p99: f64, p999: f64) -> LatencyMs {
        LatencyMs {
            mean: (p50 + p90) / 2.0,
            p50,
            p90,
            p99,
            p999,
            max: p999 * 1.25,
        }
    }

    /// A run whose revisions each served all they were routed, with one latency for all.
    fn run(label: &str, routed: &[(&str, u64)], outcomes: [u64; OUTCOMES.len()]) -> RunSummary {
        let revisions = routed
            .iter()
            .map(|(name, n)| {
                let rev = RevisionSummary {
                    routed: *n,
                    served: *n,
                    latency_ms: (*n > 0).then(|| lat(100.0, 140.0, 230.0, 320.0)),
                };
                (name.to_string(), rev)
            })
            .collect();
        RunSummary {
            label: label.to_string(),
            scenario: "t".to_string(),
            seed: 1,
            mode: "sim".to_string(),
            arrived: outcomes.iter().sum(),
            outcomes,
            revisions,
            overall: None,
        }
    }

    /// All served: the outcome counts of `n` requests that all succeeded.
    fn served(n: u64) -> [u64; OUTCOMES.len()] {
        let mut outcomes = [0; OUTCOMES.len()];
        outcomes[0] = n;
        outcomes
    }

    fn golden() -> RunSummary {
        let text = include_str!("../../tests/golden/manual-canary/summary.json");
        RunSummary::parse("golden", Path::new("summary.json"), text).expect("the golden parses")
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum V {
        Ok,
        Differs,
        NotCompared,
    }

    fn kind(v: &Verdict) -> V {
        match v {
            Verdict::Within => V::Ok,
            Verdict::Differs => V::Differs,
            Verdict::NotCompared(_) => V::NotCompared,
        }
    }

    /// (why, run A, run B, the verdicts expected of some rows by metric, whether --check fails)
    type Case = (
        &'static str,
        RunSummary,
        RunSummary,
        Vec<(&'static str, V)>,
        bool,
    );

    #[test]
    fn verdicts_by_case() {
        let a = run("a", &[("a", 500), ("b", 500)], served(1000));
        let mut zero_served = run("b", &[("a", 500), ("b", 500)], served(1000));
        zero_served.revisions.insert(
            "b".to_string(),
            RevisionSummary {
                routed: 500,
                served: 0,
                latency_ms: None,
            },
        );
        let mut slow = run("b", &[("a", 500), ("b", 500)], served(1000));
        slow.revisions.get_mut("a").expect("a").latency_ms = Some(lat(200.0, 280.0, 460.0, 640.0));
        let cases: Vec<Case> = vec![
            // identical summaries: every row within noise, including the latencies
            (
                "identical golden",
                golden(),
                golden(),
                vec![
                    ("share hello-00001", V::Ok),
                    ("outcome served", V::Ok),
                    ("latency hello-00002 p99", V::Ok),
                ],
                false,
            ),
            // 90/10 against 50/50 over 10,000 requests: 40 points against a band of ~2.3
            (
                "far beyond noise",
                run("a", &[("a", 9000), ("b", 1000)], served(10_000)),
                run("b", &[("a", 5000), ("b", 5000)], served(10_000)),
                vec![("share a", V::Differs), ("share b", V::Differs)],
                true,
            ),
            // 50% against 54% over 1,000: band 3.29·0.0223 = 7.4 points > 4
            (
                "within noise at small n",
                run("a", &[("a", 500), ("b", 500)], served(1000)),
                run("b", &[("a", 540), ("b", 460)], served(1000)),
                vec![("share a", V::Ok), ("share b", V::Ok)],
                false,
            ),
            // the same shares over 100,000: band 0.74 points < 4
            (
                "differs at large n",
                run("a", &[("a", 50_000), ("b", 50_000)], served(100_000)),
                run("b", &[("a", 54_000), ("b", 46_000)], served(100_000)),
                vec![("share a", V::Differs), ("share b", V::Differs)],
                true,
            ),
            // a revision only in B that got traffic: its share differs, its latency is not compared
            (
                "missing revision",
                run("a", &[("a", 1000)], served(1000)),
                run("b", &[("a", 900), ("c", 100)], served(1000)),
                vec![
                    ("share c", V::Differs),
                    ("latency c mean", V::NotCompared),
                    ("latency a p50", V::Ok),
                ],
                true,
            ),
            // a revision only in B that got nothing: nothing to differ
            (
                "missing revision routed nothing",
                run("a", &[("a", 1000)], served(1000)),
                run("b", &[("a", 1000), ("c", 0)], served(1000)),
                vec![
                    ("share a", V::Ok),
                    ("share c", V::Ok),
                    ("latency c mean", V::NotCompared),
                ],
                false,
            ),
            // b served nothing in B: no latency to compare, shares still compared
            (
                "zero served",
                a.clone(),
                zero_served,
                vec![
                    ("share b", V::Ok),
                    ("latency b mean", V::NotCompared),
                    ("latency a p50", V::Ok),
                ],
                false,
            ),
            // 5% rejected against none over 10,000: an outcome beyond noise fails the check
            (
                "outcome shift",
                run("a", &[("a", 10_000)], served(10_000)),
                run("b", &[("a", 10_000)], {
                    let mut o = served(9500);
                    o[1] = 500;
                    o
                }),
                vec![
                    ("outcome served", V::Differs),
                    ("outcome rejected_qp", V::Differs),
                    ("outcome errors", V::Ok),
                ],
                true,
            ),
            // latency doubled: reported as differing, but --check passes
            (
                "latency only",
                a,
                slow,
                vec![
                    ("latency a p50", V::Differs),
                    ("latency a mean", V::Differs),
                    ("latency b p50", V::Ok),
                ],
                false,
            ),
            // no request at all in A: every proportion is undefined there and differs
            (
                "empty run",
                run("a", &[("a", 0)], served(0)),
                run("b", &[("a", 10)], served(10)),
                vec![("share a", V::Differs), ("outcome served", V::Differs)],
                true,
            ),
        ];
        for (why, a, b, expected, check_fails) in cases {
            let diff = diff_runs(&a, &b, Z999);
            for (metric, want) in expected {
                let row = diff
                    .rows
                    .iter()
                    .find(|r| r.metric == metric)
                    .unwrap_or_else(|| panic!("{why}: no row {metric}"));
                assert_eq!(kind(&row.verdict), want, "{why}: {row:?}");
            }
            assert_eq!(diff.check_failed(), check_fails, "{why}");
        }
    }

    #[test]
    fn identical_runs_have_every_row_within_noise() {
        let diff = diff_runs(&golden(), &golden(), Z999);
        // 2 shares, the outcomes and in-flight, all requests and 2 revisions × 4 latency
        // statistics
        assert_eq!(diff.rows.len(), 2 + OUTCOMES.len() + 4 + 8);
        for row in &diff.rows {
            assert_eq!(row.verdict, Verdict::Within, "{row:?}");
            assert_eq!(row.diff, Some(0.0), "{row:?}");
        }
    }

    #[test]
    fn the_pooled_latency_comes_first_and_only_when_both_runs_have_it() {
        let a = golden();
        let all = a.overall.expect("the golden has the pooled latency");
        assert_eq!((all.routed, all.served), (a.arrived, 74_786));
        assert_eq!(all.latency_ms.map(|l| l.p99), Some(2314.239));
        // B's pooled latency twice A's: its mean and median differ (p90's band is wide here: it
        // is estimated from the spacing up to a p99 of 2.3 s), the revisions' stay within noise
        let mut b = golden();
        b.overall = Some(RevisionSummary {
            latency_ms: all.latency_ms.map(|l| LatencyMs {
                mean: 2.0 * l.mean,
                p50: 2.0 * l.p50,
                p90: 2.0 * l.p90,
                p99: 2.0 * l.p99,
                p999: 2.0 * l.p999,
                max: 2.0 * l.max,
            }),
            ..all
        });
        let diff = diff_runs(&a, &b, Z999);
        let latency: Vec<(&str, V)> = diff
            .rows
            .iter()
            .filter(|r| r.section == Section::Latency)
            .map(|r| (r.metric.as_str(), kind(&r.verdict)))
            .take(5)
            .collect();
        assert_eq!(
            latency,
            [
                ("latency (all) mean", V::Differs),
                ("latency (all) p50", V::Differs),
                ("latency (all) p90", V::Ok),
                ("latency (all) p99", V::Differs),
                ("latency hello-00001 mean", V::Ok),
            ]
        );
        assert!(!diff.check_failed(), "latency never fails --check");
        // A summary from before the pooled latency: no (all) rows, whichever side it is on
        let mut old = golden();
        old.overall = None;
        for (x, y) in [(&old, &b), (&b, &old)] {
            let diff = diff_runs(x, y, Z999);
            assert!(
                diff.rows.iter().all(|r| !r.metric.contains("(all)")),
                "{:?}",
                diff.rows
            );
        }
    }

    #[test]
    fn latency_standard_errors_match_hand_computation() {
        let l = lat(100.0, 140.0, 230.0, 320.0);
        let l = LatencyMs { max: 400.0, ..l };
        let n = 1600;
        // (statistic, SE in ms)
        let cases = [
            // f = 0.4/40 = 0.01 per ms; sqrt(0.25/1600) = 0.0125; 0.0125/0.01
            (LatencyStat::P50, 1.25),
            // f = 0.09/90 = 0.001; sqrt(0.09/1600) = 0.0075; 0.0075/0.001
            (LatencyStat::P90, 7.5),
            // f = 0.009/90 = 0.0001; sqrt(0.0099/1600) = 0.00248747; /0.0001
            (LatencyStat::P99, 24.874_685_927_665_5),
            // pieces: E[X] = 25 + 48 + 16.65 + 2.475 + 0.36 = 92.485;
            // E[X²] = 1666.667 + 5813.333 + 3141 + 686.7 + 130.133 = 11437.833;
            // σ² = 2884.358, σ = 53.706, σ/40
            (LatencyStat::Mean, 1.342_655_509_692_763),
        ];
        for (stat, want) in cases {
            let (_, se) = stat.value_and_se(&l, n);
            assert!((se - want).abs() < 1e-9, "{stat:?}: {se} != {want}");
        }
        // two equal quantiles: the spacing is the histogram's resolution, 0.1% of 100 ms
        let flat = LatencyMs { p90: 100.0, ..l };
        let (_, se) = LatencyStat::P50.value_and_se(&flat, n);
        assert!((se - 0.0125 / (0.4 / 0.1)).abs() < 1e-12, "{se}");
        // the band of a row combines both runs' SEs: z·sqrt(1.25² + 1.25²)
        let a = RunSummary {
            revisions: BTreeMap::from([(
                "a".to_string(),
                RevisionSummary {
                    routed: n,
                    served: n,
                    latency_ms: Some(l),
                },
            )]),
            ..run("a", &[], served(n))
        };
        let diff = diff_runs(&a, &a, 2.0);
        let row = diff
            .rows
            .iter()
            .find(|r| r.metric == "latency a p50")
            .expect("row");
        let band = row.band.expect("band");
        assert!((band - 2.0 * 1.25 * 2f64.sqrt()).abs() < 1e-12, "{band}");
    }

    #[test]
    fn a_proportion_band_is_the_two_proportion_test() {
        // 500/1000 against 540/1000: pooled 0.52, SE = sqrt(0.52·0.48·0.002) = 0.0223428
        let diff = diff_runs(
            &run("a", &[("a", 500), ("b", 500)], served(1000)),
            &run("b", &[("a", 540), ("b", 460)], served(1000)),
            Z999,
        );
        let row = &diff.rows[0];
        assert_eq!(row.metric, "share a");
        assert!((row.diff.expect("diff") - 0.04).abs() < 1e-12);
        let band = row.band.expect("band");
        assert!(
            (band - Z999 * 0.022_342_784_070_030_3).abs() < 1e-12,
            "{band}"
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        let good = include_str!("../../tests/golden/manual-canary/summary.json");
        // `"key": value` as the golden has it at `pointer`, so the cases follow a re-blessed
        // golden; a document the replacement did not change would parse and fail the case.
        let golden: serde_json::Value = serde_json::from_str(good).expect("the golden parses");
        let field = |key: &str, pointer: &str| {
            let value = golden.pointer(pointer).expect("the golden has the field");
            let text = format!("\"{key}\": {value}");
            assert!(good.contains(&text), "{text} in the golden");
            text
        };
        // (what is wrong, the document, the expected message)
        let cases = [
            // not JSON at all
            ("truncated", "{", "summary.json: not JSON: "),
            // a top-level field missing
            (
                "no seed",
                &good.replace("\"seed\": 1,", ""),
                "summary.json: seed: missing",
            ),
            // a nested count missing
            (
                "no served",
                &good.replacen(&format!("{},", field("served", "/requests/served")), "", 1),
                "summary.json: requests.served: missing",
            ),
            // a latency of the wrong type
            (
                "p50 a string",
                &good.replacen(
                    &field("p50", "/revisions/hello-00001/latency_ms/p50"),
                    "\"p50\": \"fast\"",
                    1,
                ),
                "summary.json: revisions.hello-00001.latency_ms.p50: expected a non-negative number, found \"fast\"",
            ),
            // the pooled latency of the wrong type
            (
                "overall mean a string",
                &good.replacen(
                    &field("mean", "/latency_ms/mean"),
                    "\"mean\": \"slow\"",
                    1,
                ),
                "summary.json: latency_ms.mean: expected a non-negative number, found \"slow\"",
            ),
            // a negative count
            (
                "negative routed",
                &good.replacen(
                    &field("routed", "/revisions/hello-00001/routed"),
                    "\"routed\": -1",
                    1,
                ),
                "summary.json: revisions.hello-00001.routed: expected a non-negative integer, found -1",
            ),
            // revisions is not a map
            (
                "revisions a list",
                &good.replacen("\"revisions\": {", "\"revisions\": [], \"x\": {", 1),
                "summary.json: revisions: expected an object, found []",
            ),
        ];
        for (why, text, want) in cases {
            let err = RunSummary::parse("x", Path::new("summary.json"), text)
                .expect_err(why)
                .to_string();
            assert!(err.starts_with(want), "{why}: {err}");
        }
    }

    #[test]
    fn the_table_is_aligned_and_names_both_runs() {
        let mut b = run("run-b", &[("a", 900), ("c", 100)], served(1000));
        b.seed = 2;
        b.mode = "live".to_string();
        let diff = diff_runs(&run("run-a", &[("a", 1000)], served(1000)), &b, Z999);
        let text = render(&diff);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "A: run-a (scenario t, mode sim, seed 1; 1000 requests arrived)"
        );
        assert_eq!(
            lines[1],
            "B: run-b (scenario t, mode live, seed 2; 1000 requests arrived)"
        );
        assert!(
            lines[2].contains("z = 3.29 (99.9% two-sided)"),
            "{}",
            lines[2]
        );
        // every table line has its verdict at the header's verdict column (in characters: the
        // bands' "±" is two bytes)
        let header = lines[4];
        let col = header.find("verdict").expect("verdict column");
        assert!(header.is_ascii());
        let table = &lines[4..lines.len() - 2];
        assert_eq!(table.len(), 1 + diff.rows.len());
        for (line, row) in table[1..].iter().zip(&diff.rows) {
            assert!(line.starts_with(&row.metric), "{line}");
            let verdict: String = line.chars().skip(col).collect();
            assert!(
                ["ok", "DIFFERS", "n/a: "]
                    .iter()
                    .any(|v| verdict.starts_with(v)),
                "{line}"
            );
        }
        let share_c = table
            .iter()
            .find(|l| l.starts_with("share c "))
            .expect("row");
        assert!(
            share_c.contains(" - ") && share_c.contains("10.000% (100)"),
            "{share_c}"
        );
        assert!(share_c.ends_with("DIFFERS"), "{share_c}");
        assert_eq!(
            lines[lines.len() - 1],
            "2 of 16 compared metrics differ beyond noise: share a, share c"
        );
    }
}
