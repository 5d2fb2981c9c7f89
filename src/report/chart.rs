//! Charts of a run, drawn from its output files alone (`timeseries.csv`, `routes.csv`,
//! `summary.json`), so `splitlab plot` can re-render a run it did not simulate; and the chart of
//! `splitlab accuracy --out`.
//!
//! Owns: reading those files back (with errors naming the file, line and column), the six run
//! charts (`split`, `queues`, `outcomes`, `latency`, `pods`, `routes`), the accuracy chart, and
//! the embedded font they are drawn with.
//!
//! Every chart draws its legend in a strip right of its plot (`plot_and_legend`,
//! `draw_side_legend`), never over data: plotters clips series to the plot area but not its
//! own legend box. Counts on one axis whose peaks differ by 100× or more get a log axis
//! (`needs_log_axis`), so a small queue does not vanish beside a large one.
//!
//! Must not: simulate or compute measurements a run did not write; it only draws them.
//!
//! Invariants: every chart is written as `NAME.png` and `NAME.svg` at `WIDTH`×`HEIGHT`, each file
//! atomically (temp file and rename in the same directory, see `write`). Rendering needs no system
//! font: DejaVu Sans (Bitstream Vera license, shipped by the `dejavu` crate) is compiled in and
//! registered with plotters as `sans-serif`. The same files give the same SVG bytes.
//!
//! The split chart's band is the binomial 95% interval `p ± 1.96·√(p(1−p)/n)` around the
//! programmed share `p`. The exact `n` would be the window's default-group request count, which
//! `timeseries.csv` does not hold (it has `observed_pct` of the default group and `routed` of all
//! groups), so `n` is the window's `routed` summed over revisions. That equals the default-group
//! count when no request is routed by tag or header, and is larger otherwise (the band is then a
//! little too narrow).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};

use super::run::{ANALYSIS_FILE, ROUTES_FILE, SUMMARY_FILE, TIMESERIES_FILE};
use super::write::{remove_if_present, write_atomic, WriteError};

/// Width of every chart, in pixels.
pub const WIDTH: u32 = 1200;
/// Height of every chart, in pixels.
pub const HEIGHT: u32 = 800;

/// The charts `render_run_charts` writes, in order (`pods` only when `desired_pods` exists;
/// neither `queues` nor `pods` for a `splitlab load` run).
pub const RUN_CHARTS: [&str; 6] = ["split", "queues", "outcomes", "latency", "pods", "routes"];

/// The chart of Flagger's analysis, written after `RUN_CHARTS` when the run has `analysis.csv`.
pub const ANALYSIS_CHART: &str = "analysis";

/// The chart `render_accuracy_chart` writes.
pub const ACCURACY_CHART: &str = "accuracy";

/// What to look at in each of a run's charts (`RUN_CHARTS`, `ANALYSIS_CHART`), by chart name:
/// report.html's caption under it.
pub fn caption(name: &str) -> Option<&'static str> {
    Some(match name {
        "split" => {
            "each revision's observed share of the default route per window (dots) \
            against the programmed split (line) and its binomial 95% band; a dot outside the \
            band is more than noise."
        }
        "queues" => {
            "requests waiting at the queue-proxies and at the activator per revision \
            (the most per window); a queue that grows while traffic shifts is where 503s and \
            504s come from."
        }
        "outcomes" => {
            "requests ended per second by outcome, stacked, each outcome in its own colour \
            (served, 503s, 504s by where they expired, app errors, 502s, ingress overflow, \
            cancellations, errors such as refused connections); only outcomes that happened \
            are listed."
        }
        "latency" => {
            "p50 and p99 of the served requests per revision and window (log scale; windows \
            without arrivals, such as the drain at the end, are gaps); look for the p99 spike when a revision's share steps up faster than its pods come \
            ready."
        }
        "pods" => {
            "desired (the autoscaler's wish) and ready pods per revision; a gap between \
            them is pods still starting while requests wait."
        }
        "routes" => {
            "the share of the default route the routing core programmed for each \
            revision over time (the rollout-duration steps)."
        }
        "analysis" => "Flagger's analysis: the canary's weight and its metrics per check.",
        "compare" => {
            "each setting's mean over seeds (bar) with its 95% percentile-bootstrap interval \
            (whiskers: 2000 resamples with a fixed seed; the interval stays within the seeds' \
            values, so a count's never goes below 0); panels where every seed measured 0 say \
            all zero. Below, seed 1's queues per setting (a log axis when they differ by 100× \
            or more)."
        }
        _ => return None,
    })
}

/// Drawing or reading a chart's inputs failed.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The file is there but its content is not what a run writes.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot draw {name}: {message}")]
    Draw { name: String, message: String },
    #[error("cannot encode {}: {message}", path.display())]
    Encode { path: PathBuf, message: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("the embedded font cannot be loaded")]
    Font,
}

pub(super) type DrawResult = Result<(), Box<dyn StdError>>;

/// Registers the embedded font once per process; plotters keeps it in a global table.
pub(super) fn ensure_font() -> Result<(), ChartError> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Font)
    }
}

/// Line colours, picked by revision index (colour-blind friendly, Okabe–Ito).
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

pub(super) fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// One row of `timeseries.csv`, as the charts need it.
#[derive(Clone, Debug, PartialEq)]
struct WindowRow {
    t_s: f64,
    programmed_pct: f64,
    routed: u64,
    observed_pct: Option<f64>,
    served: u64,
    rejected_qp: u64,
    /// Both expiries together when the file has no `expired_activator` and `expired_qp`
    /// columns (written before them), else 0 (they are then counted apart).
    expired_both: u64,
    expired_activator: u64,
    expired_qp: u64,
    /// 0 in files written before these columns.
    client_cancelled: u64,
    errors: u64,
    /// Application errors and queue-proxy 502s (0 in files written before these columns).
    app_error: u64,
    bad_gateway: u64,
    qp_queue: u64,
    activator_queue: u64,
    ready_pods: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    desired_pods: Option<u64>,
    /// 0 in a `timeseries.csv` written before the column existed.
    ingress_overflow: u64,
}

/// A run's outputs, read back.
#[derive(Debug)]
struct RunData {
    scenario: String,
    seed: u64,
    /// Revision names in order of first appearance in `timeseries.csv`.
    revisions: Vec<String>,
    /// Window start times, ascending.
    windows: Vec<f64>,
    /// Window width in seconds (1 when there is only one window).
    window_s: f64,
    /// `rows[w][r]`: window `w`, revision `r`; `None` when the file has no such row.
    rows: Vec<Vec<Option<WindowRow>>>,
    /// `unrouted[w]`: window `w`'s row with an empty `revision` (requests that reached no
    /// revision), when the file has one.
    unrouted: Vec<Option<WindowRow>>,
    has_desired: bool,
    /// Whether `timeseries.csv` counts client-cancelled requests per window.
    has_cancelled: bool,
    /// The default group's split after each change: (time, percent by revision name).
    routes: Vec<(f64, BTreeMap<String, f64>)>,
    /// `analysis.csv` when present: one entry per tick.
    analysis: Vec<AnalysisPoint>,
    /// A `splitlab load` run (`summary.json` has `protocol`): no queue-proxy, activator or
    /// autoscaler of its own, so no `queues` or `pods` chart.
    load_run: bool,
}

/// One tick of Flagger's analysis, for the `analysis` chart.
#[derive(Clone, Debug)]
struct AnalysisPoint {
    t_s: f64,
    canary_weight: f64,
    primary_weight: f64,
    /// `ok`, `failed` or `none`.
    check: String,
}

impl RunData {
    fn end_s(&self) -> f64 {
        self.windows.last().map_or(1.0, |t| t + self.window_s)
    }

    /// `(t, f(row))` over the windows that have a row for revision `r` and a value.
    fn series(&self, r: usize, f: impl Fn(&WindowRow) -> Option<f64>) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter_map(|w| w[r].as_ref())
            .filter_map(|row| f(row).map(|v| (row.t_s, v)))
            .collect()
    }

    /// The start times (as bits) of windows in which no request was routed to any revision.
    fn idle_windows(&self) -> std::collections::BTreeSet<u64> {
        self.rows
            .iter()
            .zip(&self.windows)
            .filter(|(w, _)| w.iter().flatten().all(|row| row.routed == 0))
            .map(|(_, t)| t.to_bits())
            .collect()
    }

    fn title(&self, chart: &str) -> String {
        format!("{chart} — {} (seed {})", clip(&self.scenario), self.seed)
    }
}

/// At most this many characters of a name in a chart title: a title is one line of the chart,
/// and laying out a million characters took 42 s (issue 17 §3).
pub(crate) const TITLE_NAME_CHARS: usize = 80;

/// `name` cut to [`TITLE_NAME_CHARS`] characters, with an ellipsis when cut.
pub(crate) fn clip(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(TITLE_NAME_CHARS) {
        None => std::borrow::Cow::Borrowed(name),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &name[..cut])),
    }
}

fn read_text(path: &Path) -> Result<String, ChartError> {
    std::fs::read_to_string(path).map_err(|source| ChartError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, message: impl Into<String>) -> ChartError {
    ChartError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A CSV file with named columns; every lookup error names the file, line and column.
struct Csv<'p> {
    path: &'p Path,
    columns: BTreeMap<String, usize>,
    records: Vec<csv::StringRecord>,
}

impl<'p> Csv<'p> {
    fn read(path: &'p Path) -> Result<Self, ChartError> {
        let text = read_text(path)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| invalid(path, format!("bad header: {e}")))?
            .clone();
        if headers.is_empty() || headers.iter().all(str::is_empty) {
            return Err(invalid(path, "empty file: no header line"));
        }
        let columns = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        let records = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(path, e.to_string()))?;
        Ok(Csv {
            path,
            columns,
            records,
        })
    }

    fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    fn require(&self, columns: &[&str]) -> Result<(), ChartError> {
        match columns.iter().find(|c| !self.has(c)) {
            Some(c) => Err(invalid(self.path, format!("missing column {c:?}"))),
            None => Ok(()),
        }
    }

    fn line(record: &csv::StringRecord) -> u64 {
        record.position().map_or(0, csv::Position::line)
    }

    fn field<'r>(&self, record: &'r csv::StringRecord, column: &str) -> &'r str {
        self.columns
            .get(column)
            .and_then(|&i| record.get(i))
            .unwrap_or("")
    }

    fn parse<T: std::str::FromStr>(
        &self,
        record: &csv::StringRecord,
        column: &str,
    ) -> Result<Option<T>, ChartError> {
        let s = self.field(record, column);
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            invalid(
                self.path,
                format!(
                    "line {}: column {column}: {s:?} is not a {}",
                    Self::line(record),
                    std::any::type_name::<T>()
                ),
            )
        })
    }

    fn need<T: std::str::FromStr>(
        &self,
        record: &csv::StringRecord,
        column: &str,
    ) -> Result<T, ChartError> {
        self.parse(record, column)?.ok_or_else(|| {
            invalid(
                self.path,
                format!("line {}: column {column} is empty", Self::line(record)),
            )
        })
    }
}

fn finite(path: &Path, line: u64, column: &str, x: f64) -> Result<f64, ChartError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(invalid(
            path,
            format!("line {line}: column {column}: {x} is not finite"),
        ))
    }
}

fn read_run(dir: &Path) -> Result<RunData, ChartError> {
    let summary_path = dir.join(SUMMARY_FILE);
    let summary: serde_json::Value = serde_json::from_str(&read_text(&summary_path)?)
        .map_err(|e| invalid(&summary_path, format!("not JSON: {e}")))?;
    let scenario = summary
        .get("scenario")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| invalid(&summary_path, "no string field \"scenario\""))?
        .to_string();
    let seed = summary
        .get("seed")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| invalid(&summary_path, "no integer field \"seed\""))?;
    // Only `splitlab load` records the protocol it spoke (`RunReport::protocol`).
    let load_run = summary.get("protocol").is_some_and(|p| !p.is_null());

    let ts_path = dir.join(TIMESERIES_FILE);
    let ts = Csv::read(&ts_path)?;
    ts.require(&[
        "t_s",
        "revision",
        "programmed_pct",
        "routed",
        "observed_pct",
        "served",
        "rejected_qp",
        "expired",
        "qp_queue",
        "activator_queue",
        "ready_pods",
        "p50_ms",
        "p99_ms",
    ])?;
    let has_desired = ts.has("desired_pods");
    let has_failures = ts.has("app_error") && ts.has("bad_gateway");
    let has_overflow = ts.has("ingress_overflow");
    let has_expiries = ts.has("expired_activator") && ts.has("expired_qp");
    let has_cancelled = ts.has("client_cancelled") && ts.has("errors");
    let optional = |record: &csv::StringRecord, column: &str, has: bool| {
        if has {
            ts.need::<u64>(record, column)
        } else {
            Ok(0)
        }
    };
    let mut unrouted_cells: Vec<(usize, WindowRow)> = Vec::new();
    let mut revisions: Vec<String> = Vec::new();
    let mut windows: Vec<f64> = Vec::new();
    let mut cells: Vec<(usize, usize, WindowRow)> = Vec::new();
    for record in &ts.records {
        let line = Csv::line(record);
        let t_s = finite(&ts_path, line, "t_s", ts.need(record, "t_s")?)?;
        // An empty revision is the window's row of requests that reached no revision.
        let name = ts.field(record, "revision");
        let r = match revisions.iter().position(|n| n == name) {
            _ if name.is_empty() => usize::MAX,
            Some(r) => r,
            None => {
                revisions.push(name.to_string());
                revisions.len() - 1
            }
        };
        let w = match windows.last() {
            Some(&last) if last == t_s => windows.len() - 1,
            Some(&last) if t_s < last => {
                return Err(invalid(
                    &ts_path,
                    format!("line {line}: t_s {t_s} goes back in time (after {last})"),
                ))
            }
            _ => {
                windows.push(t_s);
                windows.len() - 1
            }
        };
        let opt_f = |c: &str| -> Result<Option<f64>, ChartError> {
            ts.parse::<f64>(record, c)?
                .map(|x| finite(&ts_path, line, c, x))
                .transpose()
        };
        let row = WindowRow {
            t_s,
            programmed_pct: finite(
                &ts_path,
                line,
                "programmed_pct",
                ts.need(record, "programmed_pct")?,
            )?,
            routed: ts.need(record, "routed")?,
            observed_pct: opt_f("observed_pct")?,
            served: ts.need(record, "served")?,
            rejected_qp: ts.need(record, "rejected_qp")?,
            expired_both: if has_expiries {
                0
            } else {
                ts.need(record, "expired")?
            },
            expired_activator: optional(record, "expired_activator", has_expiries)?,
            expired_qp: optional(record, "expired_qp", has_expiries)?,
            client_cancelled: optional(record, "client_cancelled", has_cancelled)?,
            errors: optional(record, "errors", has_cancelled)?,
            app_error: if has_failures {
                ts.need(record, "app_error")?
            } else {
                0
            },
            bad_gateway: if has_failures {
                ts.need(record, "bad_gateway")?
            } else {
                0
            },
            qp_queue: ts.need(record, "qp_queue")?,
            activator_queue: ts.need(record, "activator_queue")?,
            ready_pods: ts.need(record, "ready_pods")?,
            p50_ms: opt_f("p50_ms")?,
            p99_ms: opt_f("p99_ms")?,
            desired_pods: if has_desired {
                Some(ts.need(record, "desired_pods")?)
            } else {
                None
            },
            ingress_overflow: if has_overflow {
                ts.need(record, "ingress_overflow")?
            } else {
                0
            },
        };
        if r == usize::MAX {
            unrouted_cells.push((w, row));
        } else {
            cells.push((w, r, row));
        }
    }
    if windows.is_empty() {
        return Err(invalid(&ts_path, "no rows"));
    }
    let mut rows = vec![vec![None; revisions.len()]; windows.len()];
    for (w, r, row) in cells {
        if rows[w][r].is_some() {
            return Err(invalid(
                &ts_path,
                format!(
                    "two rows for revision {:?} at t_s {}",
                    revisions[r], windows[w]
                ),
            ));
        }
        rows[w][r] = Some(row);
    }
    let mut unrouted = vec![None; windows.len()];
    for (w, row) in unrouted_cells {
        if unrouted[w].is_some() {
            return Err(invalid(
                &ts_path,
                format!("two rows without a revision at t_s {}", windows[w]),
            ));
        }
        unrouted[w] = Some(row);
    }
    let window_s = match windows.as_slice() {
        [a, b, ..] => b - a,
        _ => 1.0,
    };

    let routes_path = dir.join(ROUTES_FILE);
    let rc = Csv::read(&routes_path)?;
    rc.require(&["t_s", "tag", "revision", "percent"])?;
    let mut routes: Vec<(f64, BTreeMap<String, f64>)> = Vec::new();
    for record in &rc.records {
        let line = Csv::line(record);
        let t_s = finite(&routes_path, line, "t_s", rc.need(record, "t_s")?)?;
        let percent = finite(&routes_path, line, "percent", rc.need(record, "percent")?)?;
        if !rc.field(record, "tag").is_empty() {
            continue;
        }
        // Each change lists the whole default group; a revision it leaves out has 0%.
        if routes.last().is_none_or(|(t, _)| *t != t_s) {
            routes.push((t_s, BTreeMap::new()));
        }
        let (_, split) = routes.last_mut().expect("pushed above");
        *split
            .entry(rc.field(record, "revision").to_string())
            .or_default() += percent;
    }

    let analysis_path = dir.join(ANALYSIS_FILE);
    let mut analysis = Vec::new();
    if analysis_path.exists() {
        let ac = Csv::read(&analysis_path)?;
        ac.require(&["t_s", "canary_weight", "primary_weight", "check"])?;
        for record in &ac.records {
            let line = Csv::line(record);
            analysis.push(AnalysisPoint {
                t_s: finite(&analysis_path, line, "t_s", ac.need(record, "t_s")?)?,
                canary_weight: finite(
                    &analysis_path,
                    line,
                    "canary_weight",
                    ac.need(record, "canary_weight")?,
                )?,
                primary_weight: finite(
                    &analysis_path,
                    line,
                    "primary_weight",
                    ac.need(record, "primary_weight")?,
                )?,
                check: ac.field(record, "check").to_string(),
            });
        }
    }

    Ok(RunData {
        scenario,
        seed,
        revisions,
        windows,
        window_s,
        rows,
        unrouted,
        has_desired,
        has_cancelled,
        routes,
        analysis,
        load_run,
    })
}

/// Renders the charts of the run whose outputs are in `dir`, from those files alone, and writes
/// each as PNG and SVG next to them. Returns the paths written, in `RUN_CHARTS` order (PNG before
/// SVG). `pods` is skipped when `timeseries.csv` has no `desired_pods` column; a `splitlab load`
/// run (`summary.json` with `protocol`) has neither `queues` nor `pods`: it measures no queue-proxy,
/// activator or autoscaler, and charts of zeros would only suggest it did.
pub fn render_run_charts(dir: &Path) -> Result<Vec<PathBuf>, ChartError> {
    ensure_font()?;
    let data = read_run(dir)?;
    let mut names = Vec::new();
    for name in RUN_CHARTS {
        let measured = match name {
            "queues" => !data.load_run,
            "pods" => data.has_desired && !data.load_run,
            _ => true,
        };
        if measured {
            names.push(name);
        } else {
            // A chart left by an earlier run in this directory is not this run's.
            for ext in ["png", "svg"] {
                remove_if_present(dir, &format!("{name}.{ext}"))?;
            }
        }
    }
    if data.analysis.is_empty() {
        // A chart left by an earlier run in this directory is not this run's.
        for ext in ["png", "svg"] {
            remove_if_present(dir, &format!("{ANALYSIS_CHART}.{ext}"))?;
        }
    } else {
        names.push(ANALYSIS_CHART);
    }
    // Each chart is drawn, encoded and written on its own: on the rayon pool they take the
    // machine's cores, which halves the part of `run` after the simulation on two (issue 18 §3).
    // The files and their order in the result are those of a serial loop.
    let per_chart: Vec<Vec<PathBuf>> = names
        .par_iter()
        .map(|name| render_run_chart(dir, &data, name))
        .collect::<Result<_, _>>()?;
    Ok(per_chart.into_iter().flatten().collect())
}

fn render_run_chart(dir: &Path, data: &RunData, name: &str) -> Result<Vec<PathBuf>, ChartError> {
    let draw = RunChart { data, name };
    write_both(dir, name, &draw)
}

/// Something drawable on any plotters backend.
pub(super) trait Draw {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

struct RunChart<'a> {
    data: &'a RunData,
    name: &'a str,
}

impl Draw for RunChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        match self.name {
            "split" => draw_split(area, self.data),
            "queues" => draw_pair(
                area,
                self.data,
                "queues",
                "requests waiting (max per window)",
                PairLine {
                    value: |row| Some(row.qp_queue as f64),
                    label: "queue-proxy queue (all pods)",
                },
                PairLine {
                    value: |row| Some(row.activator_queue as f64),
                    label: "activator queue",
                },
                false,
            ),
            "outcomes" => draw_outcomes(area, self.data),
            "latency" => draw_latency(area, self.data),
            "pods" => draw_pair(
                area,
                self.data,
                "pods",
                "pods (max per window)",
                PairLine {
                    value: |row| Some(row.ready_pods as f64),
                    label: "ready",
                },
                PairLine {
                    value: |row| row.desired_pods.map(|d| d as f64),
                    label: "desired (autoscaler)",
                },
                true,
            ),
            "routes" => draw_routes(area, self.data),
            ANALYSIS_CHART => draw_analysis(area, self.data),
            other => Err(format!("unknown chart {other:?}").into()),
        }
    }
}

/// Draws `chart` twice, as `name.svg` and `name.png` in `dir`, each written atomically.
fn write_both(dir: &Path, name: &str, chart: &impl Draw) -> Result<Vec<PathBuf>, ChartError> {
    write_both_sized(dir, name, chart, (WIDTH, HEIGHT))
}

/// `write_both` at `size` (width, height) pixels.
pub(super) fn write_both_sized(
    dir: &Path,
    name: &str,
    chart: &impl Draw,
    size: (u32, u32),
) -> Result<Vec<PathBuf>, ChartError> {
    let draw_error = |e: Box<dyn StdError>| ChartError::Draw {
        name: name.to_string(),
        message: e.to_string(),
    };
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| draw_error(e.into()))?;
        chart.draw(&area).map_err(draw_error)?;
        area.present().map_err(|e| draw_error(e.into()))?;
    }
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| draw_error(e.into()))?;
        chart.draw(&area).map_err(draw_error)?;
        area.present().map_err(|e| draw_error(e.into()))?;
    }
    let png_name = format!("{name}.png");
    let png_bytes = encode_png(&rgb, size).map_err(|message| ChartError::Encode {
        path: dir.join(&png_name),
        message,
    })?;
    let svg_name = format!("{name}.svg");
    write_atomic(dir, &png_name, |w| w.write_all(&png_bytes))?;
    write_atomic(dir, &svg_name, |w| w.write_all(svg.as_bytes()))?;
    Ok(vec![dir.join(png_name), dir.join(svg_name)])
}

fn encode_png(rgb: &[u8], size: (u32, u32)) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size.0, size.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // fdeflate's PNG-tuned deflate with adaptive filters: the same pixels (PNG is lossless) in
    // a fraction of the default level's time, which was the largest single cost of `run` after
    // the simulation; files are 2-3x larger (`Fastest`, the Up filter only, made them 10x).
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

pub(super) fn title_font() -> TextStyle<'static> {
    ("sans-serif", 28).into_font().into()
}

pub(super) fn label_font() -> TextStyle<'static> {
    ("sans-serif", 18).into_font().into()
}

/// The largest value of `ys`, or `floor` if that is larger (axes never collapse to zero width).
fn y_max(ys: impl Iterator<Item = f64>, floor: f64) -> f64 {
    ys.fold(floor, f64::max)
}

type Lin = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// Width of the legend strip right of a chart's plot area, in pixels.
pub(super) const LEGEND_W: u32 = 330;

/// Characters of a legend label per line in a `LEGEND_W` strip (16 px DejaVu Sans).
const LEGEND_CHARS: usize = 32;

/// Legend entries, collected while the series are drawn and drawn last in a strip beside the
/// plot (`draw_side_legend`): plotters clips series to the plot area but not its own legend
/// box, which then covers data.
pub(super) type Legend = Vec<(LegendMark, String)>;

/// The title above, then the plot area and a `LEGEND_W` strip for its legend on the right.
pub(super) type PlotAreas<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);

pub(super) fn plot_and_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<PlotAreas<DB>, Box<dyn StdError>>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, title_font())?;
    let (w, _) = area.dim_in_pixel();
    Ok(area.split_horizontally(w.saturating_sub(LEGEND_W)))
}

/// A linear chart with the house layout: axis labels, light grid (the title is above it).
fn linear_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: (f64, f64),
    y: (f64, f64),
    x_desc: &str,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Lin>, Box<dyn StdError>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .margin_right(10)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(label_font())
        .label_style(label_font())
        .x_label_formatter(&|v: &f64| tick(*v))
        .y_label_formatter(&|v: &f64| tick(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    Ok(chart)
}

/// Draws a line (dashed if asked) and adds its legend entry.
fn line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
    dashed: bool,
    legend: &mut Legend,
    label: String,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = color.stroke_width(width);
    if dashed {
        chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?;
        legend.push((LegendMark::DashedLine(color), label));
    } else {
        chart.draw_series(LineSeries::new(points, style))?;
        legend.push((LegendMark::Line(color), label));
    }
    Ok(())
}

/// Log-axis labels at 1, 2 and 5 times each power of ten inside `[lo, hi]` (plotters' own pick
/// can print one value twice and none below the first power of ten).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return out;
    }
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if (lo..=hi).contains(&v) {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

/// Log-axis labels: `log_ticks` over at most three decades, the powers of ten alone over more
/// (1-2-5 labels of six decades overlap on a chart's width).
fn decade_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let ticks = log_ticks(lo, hi);
    if hi / lo <= 1e3 {
        return ticks;
    }
    ticks
        .into_iter()
        .filter(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
        .collect()
}

/// Splits `points` where consecutive times are more than `max_gap` apart, so a line is not drawn
/// across windows that have no value.
fn segments(points: Vec<(f64, f64)>, max_gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(seg) if seg.last().is_some_and(|q| p.0 - q.0 <= max_gap) => seg.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

/// Draws `points` as lines broken at gaps wider than `max_gap`, with one legend entry.
#[allow(clippy::too_many_arguments)]
fn gapped_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    max_gap: f64,
    color: RGBColor,
    dashed: bool,
    legend: &mut Legend,
    label: String,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let mut segs = segments(points, max_gap).into_iter();
    line(
        chart,
        segs.next().unwrap_or_default(),
        color,
        2,
        dashed,
        legend,
        label,
    )?;
    let style = color.stroke_width(2);
    for seg in segs {
        if dashed {
            chart.draw_series(DashedLineSeries::new(seg, 10, 6, style))?;
        } else {
            chart.draw_series(LineSeries::new(seg, style))?;
        }
    }
    Ok(())
}

/// Step-line points of a piecewise-constant value: `(t_i, v_i)` holds until `t_{i+1}` (the last
/// until `end`).
fn steps(points: &[(f64, f64)], end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(t, v)) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(end, |p| p.0);
        out.push((t, v));
        out.push((next, v));
    }
    out
}

/// The binomial 95% half-width, in percent, of a share of `pct` percent over `n` trials.
fn band_half_width_pct(pct: f64, n: u64) -> f64 {
    if n == 0 {
        return 100.0;
    }
    let p = (pct / 100.0).clamp(0.0, 1.0);
    crate::report::accuracy::Z95 * crate::report::accuracy::binomial_se(p, n) * 100.0
}

/// Where revision `r` of `n` draws its observed share in a window starting at `t`: spread
/// across the window, so two revisions with the same share (two 30% revisions) never hide
/// each other's dots.
fn observed_x(t: f64, window_s: f64, r: usize, n: usize) -> f64 {
    t + window_s * (r + 1) as f64 / (n + 1) as f64
}

/// The dash and gap (pixels) of revision `r`'s dashed line (`r` ≥ 1): shorter dashes and longer
/// gaps for each later revision, so a line drawn over an equal one leaves it visible.
fn dash_pattern(r: usize) -> (u32, u32) {
    let k = (r.saturating_sub(1) % 3) as u32;
    (12 - 4 * k, 6 + 4 * k)
}

/// The marker of revision `r`'s observed dots: a shape per revision, as well as a colour.
fn marker_shape(r: usize) -> usize {
    r % 4
}

/// Draws `points` as markers of `shape` (0 circle, 1 triangle, 2 square, 3 diamond).
fn draw_markers<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    shape: usize,
    color: RGBColor,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = color.mix(0.9).filled();
    let at = |p: &(f64, f64)| EmptyElement::at(*p);
    match shape {
        0 => chart.draw_series(points.iter().map(|p| at(p) + Circle::new((0, 0), 4, style)))?,
        1 => chart.draw_series(
            points
                .iter()
                .map(|p| at(p) + Polygon::new(vec![(0, -5), (5, 4), (-5, 4)], style)),
        )?,
        2 => chart.draw_series(
            points
                .iter()
                .map(|p| at(p) + Rectangle::new([(-4, -4), (4, 4)], style)),
        )?,
        _ => chart.draw_series(
            points
                .iter()
                .map(|p| at(p) + Polygon::new(diamond_corners(5), style)),
        )?,
    };
    Ok(())
}

fn draw_split<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &RunData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let end = data.end_s();
    let (plot, strip) = plot_and_legend(area, &data.title("split"))?;
    let mut chart = linear_chart(
        &plot,
        (0.0, end),
        (0.0, 100.0),
        "time (s)",
        "share of default-group requests (%)",
    )?;
    let mut legend = Legend::new();
    // n of each window's band: every revision's routed requests in it.
    let totals: Vec<u64> = data
        .rows
        .iter()
        .map(|w| w.iter().flatten().map(|row| row.routed).sum())
        .collect();
    let n_revs = data.revisions.len();
    for (r, name) in data.revisions.iter().enumerate() {
        let c = color(r);
        // The band is one polygon per run of windows that had requests: a window without
        // any (the drain at the end, an idle spell) has no band rather than a 0-100% one.
        let mut bands: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut upper = Vec::new();
        let mut lower: Vec<(f64, f64)> = Vec::new();
        let mut flush = |upper: &mut Vec<(f64, f64)>, lower: &mut Vec<(f64, f64)>| {
            if !upper.is_empty() {
                let mut polygon = std::mem::take(upper);
                polygon.extend(lower.drain(..).rev());
                bands.push(polygon);
            }
        };
        for (w, window) in data.rows.iter().enumerate() {
            match &window[r] {
                Some(row) if totals[w] > 0 => {
                    let h = band_half_width_pct(row.programmed_pct, totals[w]);
                    let t1 = row.t_s + data.window_s;
                    upper.push((row.t_s, (row.programmed_pct + h).min(100.0)));
                    upper.push((t1, (row.programmed_pct + h).min(100.0)));
                    lower.push((row.t_s, (row.programmed_pct - h).max(0.0)));
                    lower.push((t1, (row.programmed_pct - h).max(0.0)));
                }
                _ => flush(&mut upper, &mut lower),
            }
        }
        flush(&mut upper, &mut lower);
        let band_style = c.mix(0.15).filled();
        chart.draw_series(bands.into_iter().map(|p| Polygon::new(p, band_style)))?;
        legend.push((
            LegendMark::Band(c),
            format!("{name}: binomial 95% band (n = window's routed)"),
        ));
        // The first revision's programmed line is solid, the others dashed on top, each with
        // shorter dashes and longer gaps than the one before: two revisions with the same
        // share show both colours in turn.
        let programmed = steps(&data.series(r, |row| Some(row.programmed_pct)), end);
        if r == 0 {
            chart.draw_series(LineSeries::new(programmed, c.stroke_width(3)))?;
            legend.push((LegendMark::Line(c), format!("{name}: programmed")));
        } else {
            let (dash, gap) = dash_pattern(r);
            chart.draw_series(DashedLineSeries::new(
                programmed,
                dash,
                gap,
                c.stroke_width(3),
            ))?;
            legend.push((LegendMark::DashedLine(c), format!("{name}: programmed")));
        }
        let observed: Vec<(f64, f64)> = data
            .series(r, |row| row.observed_pct)
            .into_iter()
            .map(|(t, v)| (observed_x(t, data.window_s, r, n_revs), v))
            .collect();
        draw_markers(&mut chart, &observed, marker_shape(r), c)?;
        legend.push((
            LegendMark::Marker(c, marker_shape(r)),
            format!("{name}: observed per window"),
        ));
    }
    draw_side_legend(&strip, &legend)
}

/// The outcomes chart's layers, bottom up: `(label, colour, count in a row)`. Every outcome of
/// `Outcome` has its layer; `expired` stands for both expiries in files written before
/// `expired_activator` and `expired_qp` existed (then those two are 0).
type OutcomeLayer = (&'static str, RGBColor, fn(&WindowRow) -> u64);

const OUTCOME_LAYERS: [OutcomeLayer; 10] = [
    ("served", RGBColor(0, 158, 115), |r| r.served),
    (
        "503 rejected: queue-proxy queue full",
        RGBColor(230, 159, 0),
        |r| r.rejected_qp,
    ),
    (
        "504 expired (activator and queue-proxy)",
        RGBColor(213, 94, 0),
        |r| r.expired_both,
    ),
    ("504 expired in the activator", RGBColor(213, 94, 0), |r| {
        r.expired_activator
    }),
    ("504 expired in a queue-proxy", RGBColor(140, 45, 20), |r| {
        r.expired_qp
    }),
    (
        "5xx app error: the application answered an error",
        RGBColor(204, 121, 167),
        |r| r.app_error,
    ),
    (
        "502 bad gateway: app not listening yet, or crashed",
        RGBColor(86, 180, 233),
        |r| r.bad_gateway,
    ),
    (
        "503 ingress overflow: Envoy circuit breaker",
        RGBColor(0, 114, 178),
        |r| r.ingress_overflow,
    ),
    ("client cancelled", RGBColor(160, 160, 160), |r| {
        r.client_cancelled
    }),
    (
        "error: no route, connection failed, other",
        RGBColor(40, 40, 40),
        |r| r.errors,
    ),
];

/// Per window, each `OUTCOME_LAYERS` layer per second, summed over the window's rows (every
/// revision and the unrouted row).
fn outcome_rates(data: &RunData) -> Vec<(f64, [f64; OUTCOME_LAYERS.len()])> {
    let per_s = 1.0 / data.window_s;
    data.rows
        .iter()
        .zip(&data.unrouted)
        .zip(&data.windows)
        .map(|((w, u), &t)| {
            let mut s = [0.0; OUTCOME_LAYERS.len()];
            for row in w.iter().flatten().chain(u) {
                for (k, (_, _, count)) in OUTCOME_LAYERS.iter().enumerate() {
                    s[k] += count(row) as f64 * per_s;
                }
            }
            (t, s)
        })
        .collect()
}

fn draw_outcomes<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &RunData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let sums = outcome_rates(data);
    let top = y_max(sums.iter().map(|(_, s)| s.iter().sum()), 1.0) * 1.1;
    let (plot, strip) = plot_and_legend(area, &data.title("outcomes"))?;
    let mut chart = linear_chart(
        &plot,
        (0.0, data.end_s()),
        (0.0, top),
        "time (s)",
        "requests ended per second, by outcome (stacked)",
    )?;
    // Layers that never happen stay out (served is always listed, so a run of nothing but
    // failures says so).
    let present: Vec<usize> = (0..OUTCOME_LAYERS.len())
        .filter(|&k| k == 0 || sums.iter().any(|(_, s)| s[k] > 0.0))
        .collect();
    // Draw the tallest stack first so each lower layer paints over it.
    for (i, &k) in present.iter().enumerate().rev() {
        let (_, c, _) = OUTCOME_LAYERS[k];
        let below = &present[..=i];
        let points: Vec<(f64, f64)> = steps(
            &sums
                .iter()
                .map(|(t, s)| (*t, below.iter().map(|&j| s[j]).sum()))
                .collect::<Vec<_>>(),
            data.end_s(),
        );
        chart.draw_series(AreaSeries::new(points, 0.0, c.mix(0.75)).border_style(c))?;
    }
    let mut legend: Legend = present
        .iter()
        .rev()
        .map(|&k| {
            (
                LegendMark::Box(OUTCOME_LAYERS[k].1),
                OUTCOME_LAYERS[k].0.to_string(),
            )
        })
        .collect();
    if present.len() == 1 {
        legend.push((LegendMark::Text, "no request failed".into()));
    }
    if !data.has_cancelled {
        legend.push((
            LegendMark::Text,
            "client-cancelled requests: not in this timeseries.csv (see summary.json)".into(),
        ));
    }
    draw_side_legend(&strip, &legend)
}

fn draw_latency<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &RunData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    // A window without arrivals (the drain after the last one) holds only the stragglers'
    // latencies: a gap, not a spike.
    let idle = data.idle_windows();
    let values = || {
        data.rows
            .iter()
            .flatten()
            .flatten()
            .filter(|r| !idle.contains(&r.t_s.to_bits()))
            .flat_map(|r| [r.p50_ms, r.p99_ms])
            .flatten()
            .filter(|v| *v > 0.0)
    };
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > 0.0 {
        (lo / 1.5, hi * 1.5)
    } else {
        (1.0, 1000.0)
    };
    let (plot, strip) = plot_and_legend(area, &data.title("latency"))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(20)
        .margin_right(10)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(
            0.0..data.end_s(),
            (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
        )?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency of served requests (ms, log scale)")
        .axis_desc_style(label_font())
        .label_style(label_font())
        .x_label_formatter(&|v: &f64| tick(*v))
        .y_label_formatter(&|v: &f64| tick(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let mut legend = Legend::new();
    let half = data.window_s / 2.0;
    for (r, name) in data.revisions.iter().enumerate() {
        let c = color(r);
        let at_mid = |v: Vec<(f64, f64)>| {
            v.into_iter()
                .filter(|(t, _)| !idle.contains(&t.to_bits()))
                .map(|(t, y)| (t + half, y))
                .collect()
        };
        let p50 = at_mid(data.series(r, |row| row.p50_ms.filter(|v| *v > 0.0)));
        let p99 = at_mid(data.series(r, |row| row.p99_ms.filter(|v| *v > 0.0)));
        // A window without served requests has no percentile: the line breaks there.
        let gap = data.window_s * 1.5;
        gapped_line(
            &mut chart,
            p50,
            gap,
            c,
            false,
            &mut legend,
            format!("{name}: p50 per window"),
        )?;
        gapped_line(
            &mut chart,
            p99,
            gap,
            c,
            true,
            &mut legend,
            format!("{name}: p99 per window"),
        )?;
    }
    if values().next().is_none() {
        legend.push((LegendMark::Text, "nothing was served: no latency".into()));
    }
    draw_side_legend(&strip, &legend)
}

/// Whether series with these peaks need a log axis: the largest is 100× the smallest non-zero
/// one or more, so on a linear axis the small ones would vanish.
fn needs_log_axis(peaks: &[f64]) -> bool {
    let max = peaks.iter().copied().fold(0.0, f64::max);
    let min = peaks
        .iter()
        .copied()
        .filter(|p| *p > 0.0)
        .fold(f64::INFINITY, f64::min);
    max > 0.0 && min.is_finite() && max >= 100.0 * min
}

/// Where a log axis of counts puts 0, labelled `0`: as far below 1 as 2 is above it.
const LOG_FLOOR: f64 = 0.5;

/// One line of a time chart of counts (`draw_count_lines`).
struct CountLine {
    color: RGBColor,
    dashed: bool,
    label: String,
    points: Vec<(f64, f64)>,
}

/// Draws `lines` over `[0, end]` on `plot` with a y axis of counts: linear, or logarithmic when
/// their peaks differ by 100× or more (`needs_log_axis`; zeros then sit at the axis' bottom,
/// labelled 0). An axis whose lines are all zero says so. Returns their legend entries.
fn draw_count_lines<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    end: f64,
    y_label: &str,
    lines: Vec<CountLine>,
    margin: u32,
) -> Result<Legend, Box<dyn StdError>>
where
    DB::ErrorType: 'static,
{
    let peaks: Vec<f64> = lines
        .iter()
        .map(|l| y_max(l.points.iter().map(|p| p.1), 0.0))
        .collect();
    let max = y_max(peaks.iter().copied(), 1.0);
    let mut legend = Legend::new();
    let builder = |plot| {
        let mut b = ChartBuilder::on(plot);
        b.margin(margin)
            .margin_right(10)
            .x_label_area_size(60)
            .y_label_area_size(90);
        b
    };
    if needs_log_axis(&peaks) {
        let top = max * 1.5;
        let mut ticks = vec![LOG_FLOOR];
        ticks.extend(log_ticks(1.0, top));
        let mut chart = builder(plot).build_cartesian_2d(
            0.0..end,
            (LOG_FLOOR..top).log_scale().with_key_points(ticks),
        )?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc(format!("{y_label}, log scale"))
            .axis_desc_style(label_font())
            .label_style(label_font())
            .x_label_formatter(&|v: &f64| tick(*v))
            .y_label_formatter(&|v: &f64| {
                if *v <= LOG_FLOOR {
                    "0".to_string()
                } else {
                    tick(*v)
                }
            })
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for l in lines {
            let points = l
                .points
                .into_iter()
                .map(|(t, v)| (t, v.max(LOG_FLOOR)))
                .collect();
            line(
                &mut chart,
                points,
                l.color,
                2,
                l.dashed,
                &mut legend,
                l.label,
            )?;
        }
        legend.push((
            LegendMark::Text,
            "log scale: the series differ by 100× or more; 0 sits at the bottom".into(),
        ));
    } else {
        let top = max * 1.1;
        let mut chart = builder(plot).build_cartesian_2d(0.0..end, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc(y_label)
            .axis_desc_style(label_font())
            .label_style(label_font())
            .x_label_formatter(&|v: &f64| tick(*v))
            .y_label_formatter(&|v: &f64| tick(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        if peaks.iter().all(|p| *p == 0.0) {
            // Flat lines on an empty axis would read as missing data: say it.
            chart.draw_series(std::iter::once(Text::new(
                "all zero in every window",
                (end * 0.4, top * 0.55),
                ("sans-serif", 22).into_font(),
            )))?;
        }
        for l in lines {
            line(
                &mut chart,
                l.points,
                l.color,
                2,
                l.dashed,
                &mut legend,
                l.label,
            )?;
        }
    }
    Ok(legend)
}

/// One column of a paired chart: what it reads and how its legend entry ends.
struct PairLine {
    value: fn(&WindowRow) -> Option<f64>,
    label: &'static str,
}

/// Per revision, two series in the revision's colour: `solid` and `dashed`, optionally drawn
/// as steps (a value holds for its whole window). The queues and pods charts are this chart.
/// The y axis is logarithmic when the series' peaks differ by 100× or more (`needs_log_axis`),
/// so a small queue does not vanish beside a large one.
fn draw_pair<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &RunData,
    chart_name: &str,
    y_label: &str,
    solid: PairLine,
    dashed: PairLine,
    stepped: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut lines = Vec::new();
    for (r, name) in data.revisions.iter().enumerate() {
        for (spec, is_dashed) in [(&solid, false), (&dashed, true)] {
            let points = data.series(r, spec.value);
            let points = if stepped {
                steps(&points, data.end_s())
            } else {
                points
            };
            lines.push(CountLine {
                color: color(r),
                dashed: is_dashed,
                label: format!("{name}: {}", spec.label),
                points,
            });
        }
    }
    let (plot, strip) = plot_and_legend(area, &data.title(chart_name))?;
    let legend = draw_count_lines(&plot, data.end_s(), y_label, lines, 20)?;
    draw_side_legend(&strip, &legend)
}

fn draw_routes<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &RunData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let end = data
        .end_s()
        .max(data.routes.last().map_or(0.0, |(t, _)| *t));
    let (plot, strip) = plot_and_legend(area, &data.title("routes"))?;
    let mut chart = linear_chart(
        &plot,
        (0.0, end),
        (0.0, 105.0),
        "time (s)",
        "programmed share of the default group (%)",
    )?;
    let mut legend = Legend::new();
    // Revisions of the time series first (same colours as the other charts), then any others.
    let mut names = data.revisions.clone();
    for (_, split) in &data.routes {
        for name in split.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut drawn = 0;
    for (r, name) in names.iter().enumerate() {
        let points: Vec<(f64, f64)> = data
            .routes
            .iter()
            .map(|(t, split)| (*t, split.get(name).copied().unwrap_or(0.0)))
            .collect();
        if points.iter().all(|(_, v)| *v == 0.0) {
            continue;
        }
        // Later revisions dashed on top: two with the same share stay apart.
        line(
            &mut chart,
            steps(&points, end),
            color(r),
            3,
            drawn > 0,
            &mut legend,
            name.clone(),
        )?;
        drawn += 1;
    }
    draw_side_legend(&strip, &legend)
}

/// Flagger's analysis: the canary's and the primary's weight after each tick (steps), and each
/// tick's check marked on the canary line: a filled green circle passed, a red cross failed.
fn draw_analysis<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, data: &RunData) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let end = data
        .end_s()
        .max(data.analysis.last().map_or(0.0, |p| p.t_s));
    let (plot, strip) = plot_and_legend(area, &data.title("analysis (Flagger)"))?;
    let mut chart = linear_chart(
        &plot,
        (0.0, end),
        (0.0, 105.0),
        "time (s)",
        "weight written by Flagger (%)",
    )?;
    let mut legend = Legend::new();
    let canary: Vec<(f64, f64)> = data
        .analysis
        .iter()
        .map(|p| (p.t_s, p.canary_weight))
        .collect();
    let primary: Vec<(f64, f64)> = data
        .analysis
        .iter()
        .map(|p| (p.t_s, p.primary_weight))
        .collect();
    line(
        &mut chart,
        steps(&primary, end),
        color(0),
        3,
        false,
        &mut legend,
        "primary".to_string(),
    )?;
    line(
        &mut chart,
        steps(&canary, end),
        color(1),
        3,
        true,
        &mut legend,
        "canary".to_string(),
    )?;
    let green = RGBColor(0, 150, 60);
    let red = RGBColor(210, 30, 30);
    let at = |check: &str| -> Vec<(f64, f64)> {
        data.analysis
            .iter()
            .filter(|p| p.check == check)
            .map(|p| (p.t_s, p.canary_weight))
            .collect()
    };
    chart.draw_series(
        at("ok")
            .into_iter()
            .map(|p| Circle::new(p, 7, green.filled())),
    )?;
    legend.push((LegendMark::Marker(green, 0), "check passed".into()));
    chart.draw_series(
        at("failed")
            .into_iter()
            .map(|p| Cross::new(p, 9, red.stroke_width(3))),
    )?;
    legend.push((LegendMark::Cross(red), "check failed".into()));
    draw_side_legend(&strip, &legend)
}

/// One picker's running shares, for the accuracy chart.
#[derive(Clone, Debug, PartialEq)]
pub struct PickerCurve {
    /// The picker's name as the command line spells it.
    pub picker: String,
    /// `(requests so far, share of each revision in percent)` at log-spaced request counts.
    pub points: Vec<(u64, Vec<f64>)>,
}

/// What `splitlab accuracy --out` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyCurves {
    /// Revision names and their configured percents.
    pub revisions: Vec<(String, f64)>,
    pub seed: u64,
    pub requests: u64,
    pub pickers: Vec<PickerCurve>,
}

/// Writes `accuracy.png` and `accuracy.svg` in `dir` (which must exist): one panel per picker,
/// each revision's running share against the request count (log x axis), with the binomial 95%
/// band around its configured share.
pub fn render_accuracy_chart(
    dir: &Path,
    curves: &AccuracyCurves,
) -> Result<Vec<PathBuf>, ChartError> {
    ensure_font()?;
    write_both(dir, ACCURACY_CHART, curves)
}

impl Draw for AccuracyCurves {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (plots, strip) = plot_and_legend(
            area,
            &format!(
                "accuracy — running share per picker, {} requests (seed {})",
                self.requests, self.seed
            ),
        )?;
        let panels = plots.split_evenly((self.pickers.len().max(1), 1));
        let n_max = self.requests.max(2) as f64;
        let mut legend = Legend::new();
        for (i, (panel, curve)) in panels.iter().zip(&self.pickers).enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("picker: {}", curve.picker), label_font())
                .margin(10)
                .margin_right(35)
                .x_label_area_size(45)
                .y_label_area_size(80)
                .build_cartesian_2d(
                    (1.0..n_max)
                        .log_scale()
                        .with_key_points(decade_ticks(1.0, n_max)),
                    0.0..100.0,
                )?;
            chart
                .configure_mesh()
                .x_desc("requests routed (log scale)")
                .y_desc("running share (%)")
                .x_label_formatter(&|v: &f64| tick(*v))
                .y_label_formatter(&|v: &f64| tick(*v))
                .axis_desc_style(label_font())
                .label_style(label_font())
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            // Every panel has the same entries: the legend lists the first panel's.
            let mut panel_legend = Legend::new();
            for (r, (name, pct)) in self.revisions.iter().enumerate() {
                let c = color(r);
                let ns: Vec<f64> = curve.points.iter().map(|(n, _)| *n as f64).collect();
                let mut polygon: Vec<(f64, f64)> = curve
                    .points
                    .iter()
                    .map(|(n, _)| (*n as f64, (pct + band_half_width_pct(*pct, *n)).min(100.0)))
                    .collect();
                polygon.extend(
                    curve
                        .points
                        .iter()
                        .rev()
                        .map(|(n, _)| (*n as f64, (pct - band_half_width_pct(*pct, *n)).max(0.0))),
                );
                chart.draw_series(std::iter::once(Polygon::new(polygon, c.mix(0.15).filled())))?;
                panel_legend.push((
                    LegendMark::Band(c),
                    format!("{name}: binomial 95% band around {pct}%"),
                ));
                let running: Vec<(f64, f64)> = curve
                    .points
                    .iter()
                    .filter_map(|(n, shares)| shares.get(r).map(|s| (*n as f64, *s)))
                    .collect();
                line(
                    &mut chart,
                    running,
                    c,
                    2,
                    false,
                    &mut panel_legend,
                    format!("{name}: running share"),
                )?;
                if let (Some(first), Some(last)) = (ns.first(), ns.last()) {
                    line(
                        &mut chart,
                        vec![(*first, *pct), (*last, *pct)],
                        c,
                        1,
                        true,
                        &mut panel_legend,
                        format!("{name}: configured"),
                    )?;
                }
            }
            // Where `accuracy`'s max_dev_from_N column starts counting.
            let from = crate::report::accuracy::MIN_PREFIX as f64;
            if from < n_max {
                chart.draw_series(DashedLineSeries::new(
                    vec![(from, 0.0), (from, 100.0)],
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))?;
                panel_legend.push((
                    LegendMark::Dashed,
                    format!(
                        "{}: the printed max_dev_from_{} counts from here",
                        crate::report::accuracy::MIN_PREFIX,
                        crate::report::accuracy::MIN_PREFIX
                    ),
                ));
            }
            if i == 0 {
                legend = panel_legend;
            }
        }
        draw_side_legend(&strip, &legend)
    }
}

/// The chart `render_compare_chart` writes.
pub const COMPARE_CHART: &str = "compare";

/// Height of the compare chart: two rows of metric panels above the queue overlay need more than
/// `HEIGHT` to stay readable. Its width is `WIDTH`.
pub const COMPARE_HEIGHT: u32 = 1300;

/// One setting's value of one metric over seeds: the mean and its 95% CI, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricBar {
    pub mean: f64,
    /// `None` with fewer than two seeds.
    pub ci95: Option<(f64, f64)>,
}

/// One metric panel of the compare chart: a bar per setting (`None` where the metric is
/// undefined for that setting).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPanel {
    pub metric: String,
    pub bars: Vec<Option<MetricBar>>,
}

/// One setting's queues of one seed: per metrics window, `(t_s, activator queue, QP queue)`,
/// each summed over revisions (of their window maxima).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueueSeries {
    pub points: Vec<(f64, u64, u64)>,
}

/// What `render_compare_chart` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareCurves {
    pub scenario: String,
    /// Setting labels, in grid order.
    pub labels: Vec<String>,
    pub seeds: usize,
    pub panels: Vec<MetricPanel>,
    /// Seed 1's queues, one per setting, in `labels` order.
    pub queues: Vec<QueueSeries>,
}

/// Writes `compare.png` and `compare.svg` in `dir` (which must exist), `WIDTH`×`COMPARE_HEIGHT`:
/// one panel per metric with a bar per setting and its 95% CI whiskers, and below them the
/// activator and QP queues of every setting for seed 1.
pub fn render_compare_chart(
    dir: &Path,
    curves: &CompareCurves,
) -> Result<Vec<PathBuf>, ChartError> {
    ensure_font()?;
    write_both_sized(dir, COMPARE_CHART, curves, (WIDTH, COMPARE_HEIGHT))
}

/// A tick label without float noise (`0.6`, not `0.6000000000000001`) or a needless `.0`.
pub(super) fn tick(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    format!("{}", if r == 0.0 { 0.0 } else { r })
}

/// Short tick labels for settings and the axis name they share: `a=1;b=2` becomes `1;2` with
/// axis `a;b` when every label names the same paths; otherwise the labels stay whole.
pub(crate) fn short_labels(labels: &[String]) -> (Vec<String>, String) {
    let split = |l: &str| -> Option<Vec<(String, String)>> {
        l.split(';')
            .map(|part| {
                part.split_once('=')
                    .map(|(p, v)| (p.to_string(), v.to_string()))
            })
            .collect()
    };
    let parts: Option<Vec<Vec<(String, String)>>> = labels.iter().map(|l| split(l)).collect();
    if let Some(parts) = parts {
        let paths = |p: &Vec<(String, String)>| -> Vec<String> {
            p.iter().map(|(k, _)| k.clone()).collect()
        };
        if let Some(first) = parts.first() {
            let axis = paths(first);
            if parts.iter().all(|p| paths(p) == axis) {
                let short = parts
                    .iter()
                    .map(|p| {
                        p.iter()
                            .map(|(_, v)| v.as_str())
                            .collect::<Vec<_>>()
                            .join(";")
                    })
                    .collect();
                return (short, axis.join(";"));
            }
        }
    }
    (labels.to_vec(), "setting".to_string())
}

impl Draw for CompareCurves {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let area = area.titled(
            &format!(
                "compare — {}: mean over {} seeds, 95% percentile-bootstrap interval",
                clip(&self.scenario),
                self.seeds
            ),
            title_font(),
        )?;
        let (_, h) = area.dim_in_pixel();
        let overlay_h = (h as f64 * 0.38) as u32;
        let (bars_area, overlay_area) = area.split_vertically(h - overlay_h);
        let cols = 3usize;
        let rows = self.panels.len().div_ceil(cols).max(1);
        let cells = bars_area.split_evenly((rows, cols));
        let (ticks, axis) = short_labels(&self.labels);
        let n = self.labels.len().max(1);
        for (panel, cell) in self.panels.iter().zip(&cells) {
            self.draw_panel(cell, panel, &ticks, &axis, n)?;
        }
        self.draw_overlay(&overlay_area)
    }
}

impl CompareCurves {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &MetricPanel,
        ticks: &[String],
        axis: &str,
        n: usize,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let values = panel.bars.iter().flatten().flat_map(|b| {
            let (lo, hi) = b.ci95.unwrap_or((b.mean, b.mean));
            [b.mean, lo, hi]
        });
        let (lo, hi) = values.fold((0.0f64, 1.0f64), |(lo, hi), v| {
            if v.is_finite() {
                (lo.min(v), hi.max(v))
            } else {
                (lo, hi)
            }
        });
        let bottom = if lo < 0.0 { lo * 1.1 } else { 0.0 };
        let top = hi * 1.12;
        let all_zero = !panel.bars.is_empty()
            && panel.bars.iter().all(|b| {
                b.is_some_and(|b| b.mean == 0.0 && b.ci95.is_none_or(|c| c == (0.0, 0.0)))
            });
        let ticks_owned: Vec<String> = ticks.to_vec();
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.metric, label_font())
            .margin(12)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), bottom..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    ticks_owned.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(axis)
            .y_label_formatter(&|v: &f64| tick(*v))
            .axis_desc_style(label_font())
            .label_style(("sans-serif", 15).into_font())
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (i, bar) in panel.bars.iter().enumerate() {
            let x = i as f64;
            let c = color(i);
            match bar {
                Some(b) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.32, 0.0), (x + 0.32, b.mean)],
                        c.mix(0.75).filled(),
                    )))?;
                    if let Some((lo, hi)) = b.ci95 {
                        let whisker = BLACK.stroke_width(2);
                        chart.draw_series([
                            PathElement::new(vec![(x, lo), (x, hi)], whisker),
                            PathElement::new(vec![(x - 0.12, lo), (x + 0.12, lo)], whisker),
                            PathElement::new(vec![(x - 0.12, hi), (x + 0.12, hi)], whisker),
                        ])?;
                    }
                }
                None => {
                    chart.draw_series(std::iter::once(Text::new(
                        "n/a",
                        (x - 0.15, (top - bottom) * 0.05 + bottom),
                        label_font(),
                    )))?;
                }
            }
        }
        if all_zero {
            // Empty axes would read as missing data: say it.
            let mid = (n as f64 - 1.0) / 2.0;
            chart.draw_series(std::iter::once(Text::new(
                "all zero",
                (mid - 0.3, (top + bottom) / 2.0),
                ("sans-serif", 22).into_font(),
            )))?;
        }
        Ok(())
    }

    fn draw_overlay<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let end = self
            .queues
            .iter()
            .filter_map(|q| q.points.last().map(|p| p.0))
            .fold(1.0, f64::max);
        let (short, axis) = short_labels(&self.labels);
        let mut lines = Vec::new();
        for (i, q) in self.queues.iter().enumerate() {
            let label = short.get(i).map_or("", String::as_str);
            let act: Vec<(f64, f64)> = q.points.iter().map(|&(t, a, _)| (t, a as f64)).collect();
            let qp: Vec<(f64, f64)> = q.points.iter().map(|&(t, _, p)| (t, p as f64)).collect();
            for (dashed, what, points) in [(false, "activator", act), (true, "queue-proxy", qp)] {
                lines.push(CountLine {
                    color: color(i),
                    dashed,
                    label: format!("{label} {what}"),
                    points,
                });
            }
        }
        let area = area.titled(
            "queues of seed 1, summed over revisions: activator (solid), queue-proxy (dashed)",
            label_font(),
        )?;
        let (w, _) = area.dim_in_pixel();
        let (plot, strip) = area.split_horizontally(w.saturating_sub(LEGEND_W));
        let mut legend: Legend = vec![(LegendMark::Text, format!("{axis}:"))];
        legend.extend(draw_count_lines(
            &plot,
            end,
            "requests waiting (max per window)",
            lines,
            12,
        )?);
        draw_side_legend(&strip, &legend)
    }
}

/// The chart `render_plan_chart` writes.
pub const PLAN_CHART: &str = "plan";

/// What `render_plan_chart` draws: `splitlab plan`'s rows.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanCurves {
    pub scenario: String,
    pub seeds: usize,
    /// Setting labels, in grid order.
    pub settings: Vec<String>,
    /// Regression labels, in order.
    pub regressions: Vec<String>,
    /// One per setting × regression, setting-major (`plan.csv`'s rows).
    pub rows: Vec<super::plan::PlanRow>,
    /// `--power`: drawn as a dashed line on the detection panel.
    pub power: f64,
    /// The recommended setting, marked under its bars.
    pub recommended: Option<usize>,
}

/// Writes `plan.png` and `plan.svg` in `dir` (which must exist), `WIDTH`×`HEIGHT`: above, per
/// setting, the detection probability of each regression with its 95% Wilson interval, the
/// analytic probability as a diamond and the healthy canary's false-rollback probability; below,
/// the healthy canary's median time to promote. The legend is beside the panels, never over
/// the data.
pub fn render_plan_chart(dir: &Path, curves: &PlanCurves) -> Result<Vec<PathBuf>, ChartError> {
    ensure_font()?;
    write_both(dir, PLAN_CHART, curves)
}

impl PlanCurves {
    fn row(&self, s: usize, r: usize) -> Option<&super::plan::PlanRow> {
        self.rows.get(s * self.regressions.len() + r)
    }
}

impl Draw for PlanCurves {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let area = area.titled(
            &format!(
                "plan — {}: {} seeds per setting and variant",
                clip(&self.scenario),
                self.seeds
            ),
            title_font(),
        )?;
        let (w, h) = area.dim_in_pixel();
        let (plots, legend_area) = area.split_horizontally(w - 270);
        let (top, bottom) = plots.split_vertically((h as f64 * 0.58) as u32);
        let n = self.settings.len().max(1);
        let (ticks, axis) = short_labels(&self.settings);
        let tick_label = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                ticks.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let grey = RGBColor(150, 150, 150);
        let groups = self.regressions.len() + 1;
        let bar_w = 0.8 / groups as f64;
        let offset = |g: usize| -0.4 + bar_w * (g as f64 + 0.5);

        // Detection probability.
        let mut chart = ChartBuilder::on(&top)
            .caption(
                "rollback probability: regressed canary (detection), healthy canary (false rollback)",
                label_font(),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(75)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..1.08)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&tick_label)
            .x_desc(axis.as_str())
            .y_desc("probability")
            .y_label_formatter(&|v: &f64| tick(*v))
            .axis_desc_style(label_font())
            .label_style(("sans-serif", 15).into_font())
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            vec![(-0.5, self.power), (n as f64 - 0.5, self.power)],
            8,
            5,
            BLACK.stroke_width(1),
        ))?;
        for s in 0..self.settings.len() {
            let x0 = s as f64;
            for r in 0..self.regressions.len() {
                let Some(row) = self.row(s, r) else { continue };
                let x = x0 + offset(r);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - bar_w * 0.42, 0.0), (x + bar_w * 0.42, row.detect_prob)],
                    color(r).mix(0.8).filled(),
                )))?;
                let (lo, hi) = row.detect_ci95;
                let whisker = BLACK.stroke_width(2);
                let cap = bar_w * 0.2;
                chart.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], whisker),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], whisker),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], whisker),
                ])?;
                if let Some(a) = row.analytic_detect_prob {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((x, a)) + Polygon::new(diamond_corners(8), BLACK.filled()),
                    ))?;
                }
            }
            if let Some(row) = self.row(s, 0) {
                let x = x0 + offset(self.regressions.len());
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (x - bar_w * 0.42, 0.0),
                        (x + bar_w * 0.42, row.false_rollback_prob.max(0.004)),
                    ],
                    grey.filled(),
                )))?;
                // The value, so a zero is visible.
                chart.draw_series(std::iter::once(Text::new(
                    format!("{:.2}", row.false_rollback_prob),
                    (x - bar_w * 0.3, row.false_rollback_prob + 0.07),
                    ("sans-serif", 14).into_font(),
                )))?;
            }
        }

        // Time to promote.
        let promote: Vec<Option<f64>> = (0..self.settings.len())
            .map(|s| self.row(s, 0).and_then(|r| r.median_promote_s))
            .collect();
        let top_s = y_max(promote.iter().flatten().copied(), 1.0) * 1.15;
        let ticks2 = short_labels(&self.settings).0;
        let mut chart = ChartBuilder::on(&bottom)
            .caption(
                "healthy canary: median time from creation to promotion",
                label_font(),
            )
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(75)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top_s)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    ticks2.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(axis.as_str())
            .y_desc("seconds")
            .y_label_formatter(&|v: &f64| tick(*v))
            .axis_desc_style(label_font())
            .label_style(("sans-serif", 15).into_font())
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let chosen = RGBColor(0, 150, 60);
        for (s, p) in promote.iter().enumerate() {
            let x = s as f64;
            let fill = if self.recommended == Some(s) {
                chosen
            } else {
                color(6)
            };
            match p {
                Some(v) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.3, 0.0), (x + 0.3, *v)],
                        fill.mix(0.8).filled(),
                    )))?;
                }
                None => {
                    chart.draw_series(std::iter::once(Text::new(
                        "never",
                        (x - 0.12, top_s * 0.05),
                        label_font(),
                    )))?;
                }
            }
        }

        // The legend, beside the panels.
        let mut entries: Vec<(LegendMark, String)> = self
            .regressions
            .iter()
            .enumerate()
            .map(|(r, l)| (LegendMark::Box(color(r)), format!("detected: {l}")))
            .collect();
        entries.push((LegendMark::Whisker, "95% Wilson interval".to_string()));
        entries.push((LegendMark::Diamond, "analytic (success rate)".to_string()));
        entries.push((
            LegendMark::Box(grey),
            "false rollback (healthy)".to_string(),
        ));
        entries.push((LegendMark::Dashed, format!("power {}", self.power)));
        entries.push((LegendMark::Box(color(6)), "time to promote".to_string()));
        if self.recommended.is_some() {
            entries.push((LegendMark::Box(chosen), "recommended".to_string()));
        }
        draw_side_legend(&legend_area, &entries)
    }
}

/// A mark in a side legend.
#[derive(Clone, Copy, Debug)]
pub(super) enum LegendMark {
    /// A filled box (a bar or a stacked area).
    Box(RGBColor),
    /// A light box (a confidence band).
    Band(RGBColor),
    Line(RGBColor),
    DashedLine(RGBColor),
    /// A marker of `marker_shape`'s shape.
    Marker(RGBColor, usize),
    Cross(RGBColor),
    Whisker,
    Diamond,
    Dashed,
    /// No mark: a note.
    Text,
}

/// The corners of a diamond `r` pixels from its centre, relative to it.
fn diamond_corners(r: i32) -> Vec<(i32, i32)> {
    vec![(0, -r), (r, 0), (0, r), (-r, 0)]
}

/// `text` broken into lines of at most `width` characters at spaces (a longer word stays
/// whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Draws `entries` top-down in `area` (a strip beside the plots, so no entry covers data),
/// each label wrapped to the strip's width. Entries that do not fit its height are counted in
/// a last line instead.
pub(super) fn draw_side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(LegendMark, String)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    const LINE: i32 = 19;
    const GAP: i32 = 11;
    let (_, h) = area.dim_in_pixel();
    let bottom = h as i32 - 30;
    let font = ("sans-serif", 16).into_font();
    let x = 10i32;
    let mut y = 40i32;
    for (i, (mark, label)) in entries.iter().enumerate() {
        let lines = wrap(label, LEGEND_CHARS);
        let height = LINE * lines.len().max(1) as i32;
        if y + height > bottom && i + 1 < entries.len() {
            area.draw(&Text::new(
                format!("… and {} more", entries.len() - i),
                (x, y - 9),
                font.clone(),
            ))?;
            break;
        }
        match *mark {
            LegendMark::Box(c) => {
                area.draw(&Rectangle::new(
                    [(x, y - 8), (x + 22, y + 8)],
                    c.mix(0.8).filled(),
                ))?;
            }
            LegendMark::Band(c) => {
                area.draw(&Rectangle::new(
                    [(x, y - 8), (x + 22, y + 8)],
                    c.mix(0.3).filled(),
                ))?;
            }
            LegendMark::Line(c) => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 24, y)],
                    c.stroke_width(3),
                ))?;
            }
            LegendMark::DashedLine(c) => {
                let s = c.stroke_width(3);
                area.draw(&PathElement::new(vec![(x, y), (x + 9, y)], s))?;
                area.draw(&PathElement::new(vec![(x + 15, y), (x + 24, y)], s))?;
            }
            LegendMark::Marker(c, shape) => {
                let style = c.filled();
                let at = EmptyElement::at((x + 12, y));
                match shape {
                    0 => area.draw(&(at + Circle::new((0, 0), 5, style)))?,
                    1 => area.draw(&(at + Polygon::new(vec![(0, -6), (6, 5), (-6, 5)], style)))?,
                    2 => area.draw(&(at + Rectangle::new([(-5, -5), (5, 5)], style)))?,
                    _ => area.draw(&(at + Polygon::new(diamond_corners(6), style)))?,
                }
            }
            LegendMark::Cross(c) => {
                area.draw(&Cross::new((x + 12, y), 7, c.stroke_width(3)))?;
            }
            LegendMark::Whisker => {
                let s = BLACK.stroke_width(2);
                area.draw(&PathElement::new(vec![(x + 11, y - 9), (x + 11, y + 9)], s))?;
                area.draw(&PathElement::new(vec![(x + 5, y - 9), (x + 17, y - 9)], s))?;
                area.draw(&PathElement::new(vec![(x + 5, y + 9), (x + 17, y + 9)], s))?;
            }
            LegendMark::Diamond => {
                area.draw(
                    &(EmptyElement::at((x + 11, y))
                        + Polygon::new(diamond_corners(8), BLACK.filled())),
                )?;
            }
            LegendMark::Dashed => {
                let s = BLACK.stroke_width(1);
                area.draw(&PathElement::new(vec![(x, y), (x + 8, y)], s))?;
                area.draw(&PathElement::new(vec![(x + 13, y), (x + 22, y)], s))?;
            }
            LegendMark::Text => {}
        }
        let text_x = if matches!(mark, LegendMark::Text) {
            x
        } else {
            x + 32
        };
        for (k, l) in lines.iter().enumerate() {
            area.draw(&Text::new(
                l.clone(),
                (text_x, y - 9 + LINE * k as i32),
                font.clone(),
            ))?;
        }
        y += height + GAP;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_hold_each_value_until_the_next_change() {
        // (points, end, step points)
        type Case<'a> = (&'a [(f64, f64)], f64, Vec<(f64, f64)>);
        let cases: [Case; 3] = [
            // nothing to draw
            (&[], 10.0, vec![]),
            // one value holds to the end
            (&[(0.0, 5.0)], 10.0, vec![(0.0, 5.0), (10.0, 5.0)]),
            // a change at 4 s
            (
                &[(0.0, 5.0), (4.0, 7.0)],
                10.0,
                vec![(0.0, 5.0), (4.0, 5.0), (4.0, 7.0), (10.0, 7.0)],
            ),
        ];
        for (points, end, want) in cases {
            assert_eq!(steps(points, end), want);
        }
    }

    #[test]
    fn every_run_chart_has_a_caption() {
        for name in RUN_CHARTS.iter().chain([&ANALYSIS_CHART]) {
            assert!(caption(name).is_some_and(|c| c.len() > 40), "{name}");
        }
        assert_eq!(caption(ACCURACY_CHART), None);
        // the compare chart's caption says which interval its whiskers are
        assert!(caption(COMPARE_CHART).is_some_and(|c| c.contains("percentile-bootstrap")));
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade_inside_the_range() {
        // (lo, hi, ticks)
        let cases: [(f64, f64, &[f64]); 4] = [
            (40.0, 1300.0, &[50.0, 100.0, 200.0, 500.0, 1000.0]),
            (0.5, 3.0, &[0.5, 1.0, 2.0]),
            (100.0, 100.5, &[100.0]),
            (0.0, 10.0, &[]), // no log axis from 0
        ];
        for (lo, hi, want) in cases {
            let got = log_ticks(lo, hi);
            assert_eq!(got.len(), want.len(), "{lo}..{hi}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9 * w, "{lo}..{hi}: {got:?}");
            }
        }
    }

    #[test]
    fn over_many_decades_only_powers_of_ten_are_labelled() {
        // (lo, hi, ticks)
        let cases: [(f64, f64, &[f64]); 2] = [
            (1.0, 1e5, &[1.0, 10.0, 100.0, 1e3, 1e4, 1e5]),
            (
                1.0,
                500.0,
                &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0],
            ),
        ];
        for (lo, hi, want) in cases {
            let got = decade_ticks(lo, hi);
            assert_eq!(got.len(), want.len(), "{lo}..{hi}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9 * w, "{lo}..{hi}: {got:?}");
            }
        }
    }

    #[test]
    fn segments_break_at_gaps() {
        let points = vec![(0.0, 1.0), (1.0, 2.0), (5.0, 3.0), (6.0, 4.0)];
        assert_eq!(
            segments(points, 1.5),
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(5.0, 3.0), (6.0, 4.0)]]
        );
        assert!(segments(vec![], 1.0).is_empty());
    }

    #[test]
    fn band_is_the_binomial_interval() {
        // (pct, n, half width in percent)
        let cases = [
            (50.0, 100, 9.799_819_922_700_27), // ±9.8 points at n = 100, p = 0.5
            (10.0, 10_000, 0.587_989_195_362_016), // p = 0.1: 1.96 × 0.3
            (0.0, 100, 0.0),                   // a revision with no share has no noise
            (50.0, 0, 100.0),                  // no requests: anything goes
        ];
        for (pct, n, want) in cases {
            let got = band_half_width_pct(pct, n);
            assert!((got - want).abs() < 1e-9, "{pct}% of {n}: {got} != {want}");
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("splitlab-chart-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    const HEADER: &str = "t_s,revision,programmed_pct,routed,observed_pct,served,rejected_qp,\
expired,qp_queue,activator_queue,in_flight,ready_pods,p50_ms,p99_ms,desired_pods";

    fn write_run(dir: &Path, timeseries: &str) {
        std::fs::write(dir.join(SUMMARY_FILE), r#"{"scenario": "t", "seed": 7}"#).expect("w");
        std::fs::write(dir.join(TIMESERIES_FILE), timeseries).expect("w");
        std::fs::write(
            dir.join(ROUTES_FILE),
            "t_s,tag,revision,percent\n0,,a,100\n1,,a,50\n1,,b,50\n1,x,b,100\n",
        )
        .expect("w");
    }

    #[test]
    fn renders_every_chart_from_files() {
        let dir = temp_dir("ok");
        write_run(
            &dir,
            &format!(
                "{HEADER}\n0,a,100.000,100,100.000,100,0,0,0,0,1,2,10.000,20.000,2\n\
0,b,0.000,0,,0,0,0,0,0,0,0,,,0\n\
1,a,50.000,60,60.000,55,3,2,4,1,1,2,11.000,30.000,3\n\
1,b,50.000,40,40.000,40,0,0,0,5,0,1,12.000,40.000,2\n"
            ),
        );
        let written = render_run_charts(&dir).expect("render");
        assert_eq!(written.len(), 12);
        for path in &written {
            assert!(path.exists(), "{}", path.display());
        }
        let svg = std::fs::read_to_string(dir.join("split.svg")).expect("svg");
        assert!(svg.contains("split — t (seed 7)"), "title in the svg");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_long_scenario_name_is_cut_in_titles() {
        // laying out a million-character title took 42 s; every title shows 80 characters
        let dir = temp_dir("long-name");
        let long = "n".repeat(10_000);
        write_run(
            &dir,
            &format!("{HEADER}\n0,a,100.000,100,100.000,100,0,0,0,0,1,2,10.000,20.000,2\n"),
        );
        std::fs::write(
            dir.join(SUMMARY_FILE),
            format!(r#"{{"scenario": "{long}", "seed": 7}}"#),
        )
        .expect("w");
        render_run_charts(&dir).expect("render");
        let svg = std::fs::read_to_string(dir.join("split.svg")).expect("svg");
        let cut = format!("split — {}… (seed 7)", &long[..TITLE_NAME_CHARS]);
        assert!(svg.contains(&cut), "the cut title in the svg");
        assert!(
            !svg.contains(&long[..TITLE_NAME_CHARS + 1]),
            "no more of the name"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_errors_naming_file_and_place() {
        // (timeseries.csv content, text the error must hold)
        let cases = [
            ("", "timeseries.csv: empty file"),
            ("t_s,revision\n0,a\n", "missing column \"programmed_pct\""),
            (
                &*format!("{HEADER}\n0,a,x,1,1,1,0,0,0,0,0,1,1,1,1\n"),
                "line 2: column programmed_pct: \"x\" is not a f64",
            ),
            (&*format!("{HEADER}\n"), "timeseries.csv: no rows"),
            (
                &*format!(
                    "{HEADER}\n1,a,1,1,1,1,0,0,0,0,0,1,1,1,1\n0,a,1,1,1,1,0,0,0,0,0,1,1,1,1\n"
                ),
                "line 3: t_s 0 goes back in time",
            ),
            ("a,b\n1,2,3\n", "timeseries.csv:"), // ragged rows
        ];
        for (i, (timeseries, want)) in cases.iter().enumerate() {
            let dir = temp_dir(&format!("bad{i}"));
            write_run(&dir, timeseries);
            let err = render_run_charts(&dir).expect_err("bad input").to_string();
            assert!(err.contains(want), "case {i}: {err:?} lacks {want:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_log_axis_only_when_peaks_differ_by_a_hundred_times() {
        // (peaks, log axis)
        let cases: [(&[f64], bool); 5] = [
            (&[4404.0, 3.0], true),         // an activator queue beside a small QP queue
            (&[4404.0, 68.0], false),       // 65×: a linear axis shows both
            (&[4404.0, 0.0, 0.0], false),   // zero series never force a log axis
            (&[1000.0, 10.0, 500.0], true), // exactly 100×
            (&[], false),                   // nothing drawn
        ];
        for (peaks, want) in cases {
            assert_eq!(needs_log_axis(peaks), want, "{peaks:?}");
        }
    }

    #[test]
    fn equal_shares_stay_apart_on_the_split_chart() {
        // two 30% revisions (and a 40% one): each revision's dots sit at their own place in
        // the window and have their own shape
        let xs: Vec<f64> = (0..3).map(|r| observed_x(10.0, 1.0, r, 3)).collect();
        assert_eq!(xs, [10.25, 10.5, 10.75]);
        assert_ne!(marker_shape(0), marker_shape(1));
        assert_ne!(marker_shape(1), marker_shape(2));
        // their programmed lines: the later one's dashes are shorter, its gaps longer
        let ((d1, g1), (d2, g2)) = (dash_pattern(1), dash_pattern(2));
        assert!(d2 < d1 && g2 > g1, "{d1}/{g1} then {d2}/{g2}");
    }

    #[test]
    fn a_window_without_arrivals_is_idle() {
        // the drain window at 2 s: nothing routed, only stragglers served (their p99 is not
        // drawn as a spike)
        let dir = temp_dir("idle");
        write_run(
            &dir,
            &format!(
                "{HEADER}\n0,a,100.000,100,100.000,100,0,0,0,0,1,2,10.000,20.000,2\n\
1,a,100.000,0,,0,0,0,0,0,0,2,,,2\n\
2,a,100.000,0,,5,0,0,0,0,0,2,300.000,900.000,2\n"
            ),
        );
        let data = read_run(&dir).expect("read");
        let idle: Vec<f64> = data
            .idle_windows()
            .into_iter()
            .map(f64::from_bits)
            .collect();
        assert_eq!(idle, [1.0, 2.0]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn labels_wrap_at_spaces() {
        // (text, width, lines)
        let cases: [(&str, usize, &[&str]); 3] = [
            ("served", 32, &["served"]),
            ("a bb ccc dddd", 6, &["a bb", "ccc", "dddd"]),
            (
                "averyveryverylongword x",
                5,
                &["averyveryverylongword", "x"],
            ),
        ];
        for (text, width, want) in cases {
            assert_eq!(wrap(text, width), want, "{text}");
        }
    }

    /// The x of every `<text>` in `svg` whose content contains `needle`.
    fn text_xs(svg: &str, needle: &str) -> Vec<f64> {
        svg.split("<text")
            .skip(1)
            .filter(|t| {
                t.split_once('>')
                    .is_some_and(|(_, rest)| rest.contains(needle))
            })
            .filter_map(|t| {
                let x = t.split_once("x=\"")?.1;
                x[..x.find('"')?].parse().ok()
            })
            .collect()
    }

    #[test]
    fn legends_sit_in_a_strip_right_of_the_plot() {
        // plotters clips series to the plot area, so a legend inside it covers data; every run
        // chart draws its legend in the strip instead
        let dir = temp_dir("legend");
        write_run(
            &dir,
            &format!(
                "{HEADER}\n0,a,50.000,100,50.000,100,0,0,0,0,1,2,10.000,20.000,2\n\
0,b,50.000,100,50.000,90,10,0,0,5,0,1,12.000,40.000,2\n"
            ),
        );
        render_run_charts(&dir).expect("render");
        let strip = (WIDTH - LEGEND_W) as f64;
        for (chart, entry) in [
            ("split", "observed per window"),
            ("outcomes", "503 rejected"),
            ("latency", "p99 per window"),
            ("queues", "activator queue"),
            ("pods", "desired"),
            ("routes", "b"),
        ] {
            let svg = std::fs::read_to_string(dir.join(format!("{chart}.svg"))).expect("svg");
            let xs = text_xs(&svg, entry);
            assert!(!xs.is_empty(), "{chart}: no legend entry {entry:?}");
            assert!(
                xs.iter().all(|x| *x >= strip),
                "{chart}: {xs:?} inside the plot"
            );
        }
        // a queue that never formed says so rather than drawing an empty axis
        let queues = std::fs::read_to_string(dir.join("queues.svg")).expect("svg");
        assert!(!queues.contains("all zero"), "b's activator queue is 5");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_outcome_is_drawn_even_without_a_revision() {
        // a load against a dead port: every request an error that reached no revision
        let dir = temp_dir("errors");
        let header = format!(
            "{HEADER},app_error,bad_gateway,ingress_overflow,expired_activator,expired_qp,\
client_cancelled,errors"
        );
        write_run(
            &dir,
            &format!(
                "{header}\n0,a,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,0\n\
0,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,50\n\
1,a,0.000,0,,0,0,2,0,0,0,0,,,0,0,0,0,1,1,3,0\n\
1,,0.000,0,,0,0,0,0,0,0,0,,,0,0,0,0,0,0,0,50\n"
            ),
        );
        let data = read_run(&dir).expect("read");
        assert_eq!(
            data.revisions,
            ["a"],
            "the empty revision is not a revision"
        );
        let rates = outcome_rates(&data);
        let layer = |name: &str| {
            OUTCOME_LAYERS
                .iter()
                .position(|l| l.0.starts_with(name))
                .expect("a layer")
        };
        assert_eq!(rates[0].1[layer("error")], 50.0);
        assert_eq!(rates[1].1[layer("error")], 50.0);
        assert_eq!(rates[1].1[layer("504 expired in the activator")], 1.0);
        assert_eq!(rates[1].1[layer("504 expired in a queue")], 1.0);
        assert_eq!(
            rates[1].1[layer("504 expired (")],
            0.0,
            "counted apart, not twice"
        );
        assert_eq!(rates[1].1[layer("client cancelled")], 3.0);
        render_run_charts(&dir).expect("render");
        let svg = std::fs::read_to_string(dir.join("outcomes.svg")).expect("svg");
        assert!(svg.contains("error: no route"), "the errors' legend entry");
        // nothing queued in this run: the queues chart says so
        let queues = std::fs::read_to_string(dir.join("queues.svg")).expect("svg");
        assert!(
            queues.contains("all zero in every window"),
            "an all-zero chart is said"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pods_is_skipped_without_desired_pods() {
        let dir = temp_dir("nodesired");
        write_run(
            &dir,
            "t_s,revision,programmed_pct,routed,observed_pct,served,rejected_qp,expired,qp_queue,\
activator_queue,in_flight,ready_pods,p50_ms,p99_ms\n0,a,100,10,100,10,0,0,0,0,0,1,1.5,2.5\n",
        );
        let written = render_run_charts(&dir).expect("render");
        assert_eq!(written.len(), 10);
        assert!(!dir.join("pods.png").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
