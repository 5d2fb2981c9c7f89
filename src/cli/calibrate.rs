//! `splitlab calibrate (--prometheus URL | --prometheus-dump DIR) --service NAME
//! [--namespace NS] [--from T] [--to T] [--step D] [--manifests FILE...] --out SCENARIO`:
//! a scenario from what the cluster measured (docs/calibrate.md).
//!
//! The derivation is `calibrate` (pure); this reads the dump's files or runs the queries
//! through `live::prometheus`, reads `--manifests`, loads the written scenario with the
//! scenario loader (so what is saved is known to run) and writes it atomically.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::calibrate::query::Query;
use crate::calibrate::timestamp::parse_instant;
use crate::calibrate::{calibrate, Fetched, Inputs, ManifestInput, Source, DEFAULT_STEP};
use crate::live::prometheus::{self, PrometheusUrl};
use crate::model::time::SimDuration;
use crate::report::write::write_atomic;
use crate::routing::duration::parse_duration;
use crate::scenario::load::load_scenario;

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The range `--prometheus` queries when `--from` is not given: the hour before `--to`.
const DEFAULT_LOOKBACK_S: f64 = 3600.0;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["prometheus", "prometheus_dump"])))]
pub struct Args {
    /// A Prometheus server's base URL (http only), e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    /// A directory of saved /api/v1/query_range answers, <key>.json each (docs/calibrate.md).
    #[arg(long = "prometheus-dump", value_name = "DIR")]
    prometheus_dump: Option<PathBuf>,
    /// The Knative Service.
    #[arg(long, value_name = "NAME")]
    service: String,
    /// Its namespace.
    #[arg(long, value_name = "NS", default_value = "default")]
    namespace: String,
    /// Start: RFC 3339 or unix seconds [default: the dump's first sample; with --prometheus,
    /// an hour before --to].
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End: RFC 3339 or unix seconds [default: the dump's last sample; with --prometheus, now].
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// The query step and the schedule's resolution, a Go duration [default: the dump's step;
    /// with --prometheus, 15s]. The rate window is four steps.
    #[arg(long, value_name = "D")]
    step: Option<String>,
    /// `kubectl get -o yaml` output: one file of Knative Service/Route/Revision objects, and
    /// files of Knative ConfigMaps.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    manifests: Vec<PathBuf>,
    /// The scenario file to write.
    #[arg(long, value_name = "SCENARIO")]
    out: PathBuf,
    /// With --prometheus: also save every answer as a dump in DIR (<key>.json and
    /// <key>.query), so the same calibration can be run again offline with --prometheus-dump.
    #[arg(long = "save-dump", value_name = "DIR", requires = "prometheus")]
    save_dump: Option<PathBuf>,
}

/// A source whose answers are also saved as a dump (`--save-dump`): `<key>.json`, the answer's
/// body as received, and `<key>.query`, its PromQL text, each written atomically.
struct Saving {
    inner: Box<dyn Source>,
    dir: PathBuf,
}

impl Source for Saving {
    fn query_range(&mut self, query: &Query) -> Result<Option<Fetched>, String> {
        let fetched = self.inner.query_range(query)?;
        if let Some(f) = &fetched {
            let key = query.key();
            let save = |name: String, text: &str| {
                write_atomic(&self.dir, &name, |w| {
                    use std::io::Write as _;
                    w.write_all(text.as_bytes())
                })
                .map_err(|e| format!("cannot save {}: {e}", self.dir.join(&name).display()))
            };
            save(format!("{key}.json"), &f.body)?;
            save(format!("{key}.query"), &format!("{}\n", query.promql))?;
        }
        Ok(fetched)
    }
}

/// Answers from a dump directory: `<key>.json`, with the query text in `<key>.query` if there.
struct Dump {
    dir: PathBuf,
}

impl Source for Dump {
    fn query_range(&mut self, query: &Query) -> Result<Option<Fetched>, String> {
        let key = query.key();
        let json = self.dir.join(format!("{key}.json"));
        let body = match std::fs::read_to_string(&json) {
            Ok(body) => body,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", json.display())),
        };
        let text = self.dir.join(format!("{key}.query"));
        let promql = match std::fs::read_to_string(&text) {
            Ok(q) => Some(q.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", text.display())),
        };
        Ok(Some(Fetched {
            origin: json.display().to_string(),
            body,
            promql,
        }))
    }
}

/// Answers from a Prometheus server.
struct Server {
    url: PrometheusUrl,
    from: f64,
    to: f64,
    step_s: f64,
}

impl Source for Server {
    fn query_range(&mut self, query: &Query) -> Result<Option<Fetched>, String> {
        let (status, body) = prometheus::query_range(
            &self.url,
            &query.promql,
            self.from,
            self.to,
            self.step_s,
            QUERY_TIMEOUT,
        )
        .map_err(|e| e.to_string())?;
        let target = self
            .url
            .query_range_target(&query.promql, self.from, self.to, self.step_s);
        let origin = self.url.url_of(&target);
        if status != 200 && !body.trim_start().starts_with('{') {
            let start: String = body.chars().take(200).collect();
            return Err(format!("GET {origin}: HTTP {status}: {start}"));
        }
        Ok(Some(Fetched {
            origin: format!(
                "Prometheus at {}",
                self.url
                    .url_of(&format!("{}/api/v1/query_range", self.url.prefix))
            ),
            body,
            promql: Some(query.promql.clone()),
        }))
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let instant = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<f64>> {
        v.as_deref()
            .map(|t| parse_instant(t).with_context(|| format!("--{flag}")))
            .transpose()
    };
    let mut from = instant("from", &args.from)?;
    let mut to = instant("to", &args.to)?;
    let step = match &args.step {
        None => None,
        Some(text) => {
            let ns = parse_duration(text).map_err(|e| {
                anyhow::anyhow!("--step: {e}; allowed: a Go duration above 0, e.g. 15s")
            })?;
            if ns <= 0 {
                bail!("--step: {text:?} must be above 0");
            }
            Some(SimDuration(ns))
        }
    };
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            bail!("--to must be after --from (got {} .. {})", f, t);
        }
    }

    let out_dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let out_name = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--out {}: not a file name", args.out.display()))?
        .to_string();
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;

    let mut manifests = Vec::new();
    for m in &args.manifests {
        let text = super::read_input(m)?;
        manifests.push(ManifestInput {
            display: super::display_name(m),
            scenario_path: relative_to(&out_dir, m)?,
            text,
        });
    }

    let (source_text, mut source): (String, Box<dyn Source>) =
        match (&args.prometheus, &args.prometheus_dump) {
            (Some(url), _) => {
                let parsed = PrometheusUrl::parse(url)?;
                let t = to.unwrap_or_else(prometheus::now_unix_s);
                let f = from.unwrap_or(t - DEFAULT_LOOKBACK_S);
                (from, to) = (Some(f), Some(t));
                let step_s = step.unwrap_or(DEFAULT_STEP).as_secs_f64();
                (
                    format!("Prometheus at {url}"),
                    Box::new(Server {
                        url: parsed,
                        from: f,
                        to: t,
                        step_s,
                    }),
                )
            }
            (None, Some(dir)) => {
                if !dir.is_dir() {
                    bail!("--prometheus-dump {}: not a directory", dir.display());
                }
                (
                    format!("the Prometheus dump {}", dir.display()),
                    Box::new(Dump { dir: dir.clone() }),
                )
            }
            (None, None) => bail!("give --prometheus URL or --prometheus-dump DIR"),
        };
    if let Some(dir) = &args.save_dump {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--save-dump: cannot create {}", dir.display()))?;
        source = Box::new(Saving {
            inner: source,
            dir: dir.clone(),
        });
    }
    let inputs = Inputs {
        namespace: args.namespace.clone(),
        service: args.service.clone(),
        from,
        to,
        step,
        source: source_text,
        manifests,
    };
    let calibrated = calibrate(&inputs, source.as_mut()).map_err(|e| anyhow::anyhow!("{e}"))?;

    // What is written must run: load it as `run` would, relative to where it goes.
    let display = super::display_name(&args.out);
    let base = out_dir.clone();
    let resolve = |rel: &str| -> Result<String, String> {
        let p = base.join(rel);
        super::read_referenced(&p)
    };
    let scenario = load_scenario(&display, &calibrated.yaml, &[], &resolve)
        .map_err(|e| anyhow::anyhow!("the calibrated scenario does not load: {e}"))?;
    write_atomic(&out_dir, &out_name, |w| {
        use std::io::Write as _;
        w.write_all(calibrated.yaml.as_bytes())
    })
    .with_context(|| format!("cannot write {}", args.out.display()))?;

    for line in &calibrated.summary {
        say!("{line}")?;
    }
    for note in &calibrated.notes {
        say!("note: {note}")?;
    }
    for w in &scenario.warnings {
        eprintln!("warning: {w}");
    }
    say!("wrote: {display}")?;
    say!("run it: splitlab run {display}")?;
    Ok(ExitCode::SUCCESS)
}

/// `file` relative to `dir` (both as the current directory sees them), for a path inside a
/// scenario written to `dir`.
fn relative_to(dir: &Path, file: &Path) -> anyhow::Result<String> {
    let abs =
        |p: &Path| std::fs::canonicalize(p).with_context(|| format!("cannot find {}", p.display()));
    let (dir, file) = (abs(dir)?, abs(file)?);
    let d: Vec<Component> = dir.components().collect();
    let f: Vec<Component> = file.components().collect();
    let common = d.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    for c in &f[common..] {
        rel.push(c.as_os_str());
    }
    rel.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", file.display()))
}
