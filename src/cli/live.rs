//! `splitlab live`, `splitlab load` and `splitlab gateway`: the live mode's commands.
//!
//! Each builds a multi-threaded tokio runtime, runs, and on Ctrl-C or SIGTERM stops pacing at
//! once, counts what is in flight, writes its outputs completely and exits.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::io::Write as _;

use anyhow::{bail, Context};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use regex::Regex;
use serde::Deserialize;

use crate::live::client::Transport;
use crate::live::clock::Clock;
use crate::live::gateway::{Backend, BackendState, Gateway};
use crate::live::guard::{default_max_connections, open_files_limit, ConnLimits, ConnStats};
use crate::live::http::{Pool, ServeOptions};
use crate::live::load::{
    self, Books, Classifier, Executor, GroupStats, LoadPlan, LoadStats, Target,
};
use crate::live::world::{run_live, LiveOptions};
use crate::model::arrival::ArrivalGen;
use crate::model::rng::{stream, Stream};
use crate::model::route_control::{DataPlane, RevisionState, RouteControl};
use crate::model::time::{SimDuration, SimTime};
use crate::report::check::{self, Check, Quantity};
use crate::report::run::{LatencySummary, RunMeta, RunRecorder, RunReport};
use crate::report::write::{write_atomic, StagedDir};
use crate::routing::duration::parse_duration;
use crate::routing::pick::PickerKind;
use crate::routing::validation::validate_service;
use crate::routing::{ObjectMeta, TrafficTarget};
use crate::scenario::spec::{ArrivalProcessSpec, ArrivalSpec, RatePoint, ServiceSpec};

/// The load generator's own figures, next to the run's files.
pub const LOAD_FILE: &str = "load.json";

// ------------------------------------------------------------------ splitlab live

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// The scenario file.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// Scenario seconds per wall second (10: ten scenario minutes take one).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    time_scale: f64,
    /// Output directory (default: out/<scenario name>-live).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overrides a scenario value, as for `run`; repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
    /// Overrides the scenario's seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Most connections from the load generator to the gateway.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 4096)]
    connections: usize,
    /// Most requests in flight at the load generator (memory bound).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    max_in_flight: u64,
    /// Also write requests.csv, one row per finished request (as `run --requests`).
    #[arg(long)]
    requests: bool,
    /// Write the Prometheus file_sd target list of every metrics endpoint (each pod's
    /// queue-proxy, each activator, the autoscaler) here, rewritten as pods come and go
    /// (docs/metrics.md).
    #[arg(long, value_name = "FILE")]
    prometheus_sd: Option<PathBuf>,
    /// After the run, keep serving the final metrics this long (wall time, a Go duration) so a
    /// Prometheus scrapes them once more; then the target list is emptied.
    #[arg(long, value_name = "D", default_value = "0s")]
    metrics_linger: String,
    /// Also serve outside clients (e.g. `splitlab load --expect-rollout`) on this address; its
    /// address and the run's time zero are printed on stderr at start. Their requests are
    /// counted apart (summary.json `outside_requests`). Anything but loopback is warned about.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub fn live(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 1000.0) {
        bail!(
            "--time-scale {}: must be a number in (0, 1000]",
            args.time_scale
        );
    }
    let linger = match parse_duration(&args.metrics_linger) {
        Ok(ns) if ns >= 0 => std::time::Duration::from_nanos(ns as u64),
        Ok(_) => bail!(
            "--metrics-linger {:?}: must not be negative",
            args.metrics_linger
        ),
        Err(e) => bail!(
            "--metrics-linger {:?}: {e} (a Go duration such as 5s)",
            args.metrics_linger
        ),
    };
    if let Some(dir) = args.prometheus_sd.as_deref().and_then(Path::parent) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("--prometheus-sd: cannot create directory {}", dir.display())
            })?;
        }
    }
    let mut scenario = super::run::load(&args.scenario, &args.set)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(format!("{}-live", scenario.name)));
    let wall = (scenario.duration + scenario.drain).as_secs_f64() / args.time_scale;
    eprintln!(
        "live: {} on 127.0.0.1, {:.1} s of wall time at most (time scale {})",
        scenario.name, wall, args.time_scale
    );
    // Before any traffic: an output directory that cannot be written fails now; the request
    // log is spooled in the staging directory.
    let staged = super::run::stage(&out)?;
    let runtime = runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    let opts = LiveOptions {
        time_scale: args.time_scale,
        connections: args.connections.max(1),
        max_in_flight: args.max_in_flight.max(1),
        request_log: args.requests.then(|| staged.path().to_path_buf()),
        prometheus_sd: args.prometheus_sd.clone(),
        listen: args.listen,
        on_listening: Some(announce_listening),
    };
    let result = runtime.block_on(async {
        watch_signals(stop.clone());
        run_live(&scenario, &opts, stop.clone()).await
    });
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            return Err(e.into());
        }
    };
    if let Some(sd) = &args.prometheus_sd {
        eprintln!("metrics: Prometheus targets in {}", sd.display());
    }
    for w in scenario.warnings.iter().chain(&run.warnings) {
        eprintln!("warning: {w}");
    }
    let target = args.scenario.display().to_string();
    write_and_print(
        staged,
        &run.report,
        &scenario.source_yaml,
        &run.stats,
        &target,
        &[],
        peak_rss_mib(),
        |_| Ok(()),
    )?;
    if run.interrupted {
        eprintln!(
            "interrupted by {}: outputs cover the run up to the signal",
            super::interrupt::recorded_name()
        );
    }
    // The endpoints serve their final values (on the runtime's workers) until the linger is
    // over; then the target list is emptied, so a Prometheus drops the targets.
    if !linger.is_zero() && !stop.load(Ordering::Relaxed) {
        runtime.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(linger) => {}
                _ = wait_for_stop(&stop) => {}
            }
        });
    }
    run.endpoints
        .stop_all_and_clear()
        .context("cannot empty the Prometheus target list")?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(super::interrupt::exit_code(
        run.interrupted,
        super::run::request_log_status(&run.report),
    ))
}

/// Returns once `stop` is set (Ctrl-C during the metrics linger).
async fn wait_for_stop(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------ splitlab load

/// `--rate` and every `--schedule` row are at most this many requests per second.
pub const MAX_LOAD_RATE_PER_S: f64 = 10_000_000.0;

/// `--connections` is at most this: one client address reaches one server port over about
/// 28,000 ephemeral ports (Linux's default range), so more connections cannot be opened anyway,
/// and each costs a task and buffers.
pub const MAX_CONNECTIONS: usize = 20_000;

/// The exit status when a `--check` failed (k6's convention).
pub const CHECK_FAILED_EXIT: u8 = 99;

/// The HdrHistogram percentile distribution of served latency, overall and per label.
pub const HGRM_FILE: &str = "latency.hgrm";
/// Each label's served-latency histogram, HdrHistogram V2 compressed, base64.
pub const HISTOGRAMS_FILE: &str = "histograms.json";

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The endpoint, http[s]://HOST[:PORT][/PATH]. Anything but loopback is contacted only
    /// because you name it here.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "targets",
        conflicts_with = "targets"
    )]
    target: Option<String>,
    /// Several endpoints with weights, in one run: a YAML targets file (docs/load.md). --host,
    /// --header, --method and --body apply to each target as defaults.
    #[arg(long, value_name = "FILE")]
    targets: Option<PathBuf>,
    /// The Host header to send (e.g. helloworld-go.default.example.com for a Knative ingress);
    /// over TLS also the server name (SNI), over HTTP/2 the :authority.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// A request header, 'NAME: VALUE' (repeatable; e.g. 'Knative-Serving-Tag: v2').
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    headers: Vec<String>,
    /// The request method (default GET).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// The request body: the text itself, or @FILE for a file's bytes.
    #[arg(long, value_name = "STRING|@FILE", allow_hyphen_values = true)]
    body: Option<String>,
    /// Requests per second, evenly spaced (as vegeta's constant pacer); `max`: as fast as the
    /// connections allow (closed loop, as wrk and oha).
    #[arg(short = 'r', long, value_name = "R", conflicts_with = "schedule")]
    rate: Option<String>,
    /// A rate schedule CSV: `at_s,rate_per_s[,ramp_s]` per row (a step, or a linear ramp to the
    /// rate over ramp_s).
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// Arrival process for --rate and --schedule: constant (evenly spaced) or poisson.
    #[arg(long, value_name = "KIND", default_value = "constant")]
    arrivals: String,
    /// How long to send (Go duration, e.g. 30s). Required unless --max-requests is given.
    #[arg(short = 'd', long, value_name = "D")]
    duration: Option<String>,
    /// Stop after this many requests.
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// How responses are attributed: header:NAME (its value is the label) or
    /// body:REGEX=LABEL[,REGEX=LABEL...] (the first matching pattern). Default:
    /// header:knative-serving-revision.
    #[arg(long, value_name = "SPEC")]
    classify: Option<String>,
    /// The expected split, LABEL=PCT,... (sums to 100): drawn as the programmed split.
    #[arg(long, value_name = "SPLIT")]
    expect: Option<String>,
    /// A Knative Service manifest whose rollout the run checks (instead of --expect): the
    /// expected split over time is Knative's schedule for it, from --rollout-start
    /// (docs/load.md).
    #[arg(long, value_name = "MANIFEST")]
    expect_rollout: Option<PathBuf>,
    /// When the rollout started (its new revision became ready): RFC 3339, unix seconds, or now.
    #[arg(long, value_name = "T")]
    rollout_start: Option<String>,
    /// How far a window looks around itself for the schedule's splits (clock skew, ingress
    /// programming delay, an estimated --rollout-start).
    #[arg(
        long,
        value_name = "D",
        default_value = "1s",
        allow_hyphen_values = true
    )]
    rollout_slack: String,
    /// Labels to expect from a header classifier besides those in --expect (comma-separated).
    #[arg(long, value_name = "LIST")]
    labels: Option<String>,
    /// Connections (the open loop opens up to this many; `--rate max` uses exactly this many).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 64)]
    connections: usize,
    /// A request not answered this long after its intended send time is a client timeout.
    #[arg(long, value_name = "D", default_value = "30s")]
    timeout: String,
    /// After the last request is sent, how long to wait for answers.
    #[arg(long, value_name = "D", default_value = "10s")]
    drain: String,
    /// Output directory (created, and checked writable, before anything is sent).
    #[arg(long, value_name = "DIR", default_value = "out/load")]
    out: PathBuf,
    /// Seed for Poisson arrivals.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Most requests in flight (memory bound).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    max_in_flight: u64,
    /// Also write requests.csv, one row per finished request (as `run --requests`).
    #[arg(long)]
    requests: bool,
    /// A pass/fail bound on the run (repeatable): error_rate<0.01, p99_ms<500, split,
    /// status.5xx==0, v2.p99_ms<300 (docs/load.md). Exit status 99 when any fails.
    #[arg(long = "check", value_name = "EXPR")]
    checks: Vec<String>,
    /// Stream one JSON line per request to FILE as it ends (flushed at once).
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// For https:// targets: trust only the CA certificates in this PEM file, instead of the
    /// system's roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    cacert: Option<PathBuf>,
    /// For https:// targets: do not verify the server's certificate (the traffic is encrypted
    /// but anyone on the path can read and change it).
    #[arg(long)]
    insecure: bool,
    /// HTTP/2 over TLS (ALPN h2, for https:// targets; the server may still choose HTTP/1.1).
    #[arg(long, conflicts_with = "h2c")]
    http2: bool,
    /// HTTP/2 with prior knowledge over cleartext (h2c, for http:// targets), as a Knative
    /// ingress serves h2c and gRPC revisions.
    #[arg(long)]
    h2c: bool,
    /// A shard sends 1/N of the rate (of each schedule row; with `--rate max` 1/N of the
    /// connections) and of --max-requests, and writes its shard for `splitlab merge` instead
    /// of the run's outputs (docs/load.md).
    #[command(flatten)]
    sharding: super::sweep::ShardArgs,
    /// Wait until T before sending, so shards started apart stay in phase: RFC 3339, unix
    /// seconds, now or now+DURATION; at most 1 s ago and 24 h ahead.
    #[arg(long, value_name = "T")]
    start_at: Option<String>,
}

/// The arguments a load shard's header records: the command line after `load`, without the
/// flags that differ between the shards of one run (`--shard`, `--shards`, `--out`, `--emit`,
/// `--results`), so `merge` can check the shards are of one run.
fn shard_header_args(argv: &[String]) -> Vec<String> {
    const PER_SHARD: [&str; 5] = ["--shard", "--shards", "--out", "--emit", "--results"];
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in argv {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if PER_SHARD.contains(&a.as_str()) {
            skip_value = true;
            continue;
        }
        if PER_SHARD
            .iter()
            .any(|f| a.strip_prefix(f).is_some_and(|rest| rest.starts_with('=')))
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// The arrival process of shard `i` of `n`: 1/N of the rate (of every schedule row's rate).
fn process_share(process: ArrivalProcessSpec, n: usize) -> ArrivalProcessSpec {
    let n = n as f64;
    match process {
        ArrivalProcessSpec::Constant { rate_per_s } => ArrivalProcessSpec::Constant {
            rate_per_s: rate_per_s / n,
        },
        ArrivalProcessSpec::Poisson { rate_per_s } => ArrivalProcessSpec::Poisson {
            rate_per_s: rate_per_s / n,
        },
        ArrivalProcessSpec::Schedule { points, poisson } => ArrivalProcessSpec::Schedule {
            points: points
                .into_iter()
                .map(|p| match p {
                    RatePoint::Step { at, rate_per_s } => RatePoint::Step {
                        at,
                        rate_per_s: rate_per_s / n,
                    },
                    RatePoint::Ramp {
                        at,
                        to_rate_per_s,
                        over,
                    } => RatePoint::Ramp {
                        at,
                        to_rate_per_s: to_rate_per_s / n,
                        over,
                    },
                })
                .collect(),
            poisson,
        },
        other => other,
    }
}

/// A duration flag in Go syntax, positive.
fn duration_flag(flag: &str, value: &str) -> anyhow::Result<SimDuration> {
    match parse_duration(value) {
        Ok(ns) if ns > 0 => Ok(SimDuration(ns)),
        Ok(_) => bail!("{flag} {value:?}: must be positive"),
        Err(e) => bail!("{flag} {value:?}: {e} (a Go duration such as 30s, 1m30s, 500ms)"),
    }
}

/// A resolved `http[s]://host[:port][/path]`.
struct ResolvedUrl {
    addr: SocketAddr,
    /// Path and query.
    path: String,
    /// `host[:port]` as written.
    authority: String,
    https: bool,
}

/// Splits `http[s]://host[:port][/path]` and resolves it.
async fn resolve_target(url: &str) -> anyhow::Result<ResolvedUrl> {
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("--target {url:?}: not a URL (http[s]://HOST[:PORT][/PATH])"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => {
            bail!("--target {url:?}: scheme {other:?} is not supported; use http:// or https://")
        }
        None => bail!("--target {url:?}: missing scheme; write http://{url} or https://{url}"),
    };
    let host = uri
        .host()
        .with_context(|| format!("--target {url:?}: missing host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("--target {url:?}: cannot resolve {host}"))?
        .next()
        .with_context(|| format!("--target {url:?}: {host} has no address"))?;
    let authority = uri
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_string());
    Ok(ResolvedUrl {
        addr,
        path,
        authority,
        https,
    })
}

/// How the run's targets are reached: the protocol flags and, made once when some target is
/// `https://`, the TLS client configuration.
struct TransportChoice {
    http2: bool,
    h2c: bool,
    trust: crate::live::tls::Trust,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl TransportChoice {
    fn new(args: &LoadArgs) -> Self {
        TransportChoice {
            http2: args.http2,
            h2c: args.h2c,
            trust: match (&args.cacert, args.insecure) {
                (Some(file), _) => crate::live::tls::Trust::CaFile(file.clone()),
                (None, true) => crate::live::tls::Trust::Insecure,
                (None, false) => crate::live::tls::Trust::System,
            },
            tls: None,
        }
    }

    /// The transport of a target at `url` whose `Host` is `host` (the TLS server name).
    fn of(&mut self, url: &ResolvedUrl, host: &str) -> anyhow::Result<Transport> {
        use crate::live::tls;
        if !url.https {
            if self.http2 {
                bail!(
                    "--http2 is HTTP/2 over TLS (ALPN), for https:// targets; for HTTP/2 over cleartext http:// use --h2c"
                );
            }
            return Ok(if self.h2c {
                Transport::H2c
            } else {
                Transport::Http1
            });
        }
        if self.h2c {
            bail!(
                "--h2c is HTTP/2 over cleartext, for http:// targets; for HTTP/2 over https:// use --http2"
            );
        }
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => {
                let c = tls::client_config(&self.trust, self.http2)?;
                self.tls = Some(c.clone());
                c
            }
        };
        let server_name = tls::server_name(host).context("the TLS server name (SNI)")?;
        Ok(Transport::Tls {
            server_name,
            config,
        })
    }
}

/// Reads a schedule CSV into rate points (`scenario::load::read_rate_schedule`), each rate at
/// most `MAX_LOAD_RATE_PER_S` (as `--rate`).
fn read_schedule(path: &Path) -> anyhow::Result<Vec<RatePoint>> {
    let text = super::read_input(path)?;
    let points = crate::scenario::load::read_rate_schedule(&super::display_name(path), &text)?;
    for (row, p) in points.iter().enumerate() {
        let (at, rate) = match p {
            RatePoint::Step { at, rate_per_s } => (*at, *rate_per_s),
            RatePoint::Ramp {
                at, to_rate_per_s, ..
            } => (*at, *to_rate_per_s),
        };
        if !(rate.is_finite() && rate <= MAX_LOAD_RATE_PER_S) {
            bail!(
                "--schedule {}: row {} (at_s {at}) has rate {rate} requests/s; allowed: at most {MAX_LOAD_RATE_PER_S} (as --rate)",
                path.display(),
                row + 1
            );
        }
    }
    Ok(points)
}

/// One `--header 'NAME: VALUE'`.
fn parse_header(text: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = text
        .split_once(':')
        .with_context(|| format!("--header {text:?}: expected 'NAME: VALUE'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("--header {text:?}: {:?} is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim()).with_context(|| {
        format!("--header {text:?}: the value holds visible ASCII, spaces and tabs only")
    })?;
    Ok((name, value))
}

fn parse_method(flag: &str, text: &str) -> anyhow::Result<Method> {
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("{flag} {text:?}: not an HTTP method (GET, POST, ...)"))
}

/// `--body STRING|@FILE`.
fn read_body(text: &str) -> anyhow::Result<Bytes> {
    match text.strip_prefix('@') {
        Some(file) => std::fs::read(file)
            .map(Bytes::from)
            .with_context(|| format!("--body {text:?}: cannot read {file}")),
        None => Ok(Bytes::from(text.to_string())),
    }
}

/// The targets of a run: `--target`, or `--targets FILE`, each with the command line's
/// `--host`, `--header`, `--method` and `--body` as defaults.
async fn build_targets(args: &LoadArgs) -> anyhow::Result<(load::Targets, String)> {
    let mut headers = Vec::new();
    for h in &args.headers {
        headers.push(parse_header(h)?);
    }
    let method = args
        .method
        .as_deref()
        .map(|m| parse_method("--method", m))
        .transpose()?
        .unwrap_or(Method::GET);
    let body = args
        .body
        .as_deref()
        .map(read_body)
        .transpose()?
        .unwrap_or_default();
    let with_defaults = |mut t: Target| {
        t.method = method.clone();
        t.headers = headers.clone();
        t.body = body.clone();
        t
    };
    let mut transports = TransportChoice::new(args);
    if let Some(url) = &args.target {
        let resolved = resolve_target(url).await?;
        let mut t = with_defaults(Target::new(
            resolved.addr,
            resolved.path.clone(),
            args.host.clone().unwrap_or(resolved.authority.clone()),
        ));
        t.transport = transports.of(&resolved, t.main_host())?;
        let addr = resolved.addr;
        return Ok((load::Targets::single(t), format!("{url} ({addr})")));
    }
    let file = args
        .targets
        .as_ref()
        .context("one of --target URL and --targets FILE is required")?;
    let name = super::display_name(file);
    let specs = crate::scenario::targets::parse(&name, &super::read_input(file)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = file.parent().unwrap_or(Path::new(""));
    let mut list = Vec::new();
    let mut desc = Vec::new();
    for spec in specs {
        let resolved = resolve_target(&spec.url)
            .await
            .with_context(|| format!("{name}: target {}", spec.name))?;
        let addr = resolved.addr;
        let mut t = with_defaults(Target::new(
            addr,
            resolved.path.clone(),
            args.host.clone().unwrap_or(resolved.authority.clone()),
        ));
        if let Some(m) = &spec.method {
            t.method = parse_method(&format!("{name}: target {}: method", spec.name), m)?;
        }
        for (n, v) in &spec.headers {
            let (n, v) = parse_header(&format!("{n}: {v}"))
                .with_context(|| format!("{name}: target {}", spec.name))?;
            t.headers.retain(|(x, _)| *x != n);
            t.headers.push((n, v));
        }
        match &spec.body {
            Some(crate::scenario::targets::BodySource::Text(b)) => t.body = Bytes::from(b.clone()),
            Some(crate::scenario::targets::BodySource::File(f)) => {
                let p = base.join(f);
                t.body = std::fs::read(&p).map(Bytes::from).with_context(|| {
                    format!(
                        "{name}: target {}: cannot read body_file {}",
                        spec.name,
                        p.display()
                    )
                })?;
            }
            None => {}
        }
        t.transport = transports
            .of(&resolved, t.main_host())
            .with_context(|| format!("{name}: target {}", spec.name))?;
        desc.push(format!("{}={} ({addr})", spec.name, spec.url));
        list.push((spec.name, t, spec.weight));
    }
    Ok((load::Targets::weighted(list), desc.join(", ")))
}

pub fn load_cmd(args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let poisson = match args.arrivals.as_str() {
        "constant" => false,
        "poisson" => true,
        other => bail!("--arrivals {other:?}: must be constant or poisson"),
    };
    if args.connections == 0 || args.connections > MAX_CONNECTIONS {
        bail!(
            "--connections {}: allowed: 1 to {MAX_CONNECTIONS} (one client reaches one server port over about 28,000 ephemeral ports)",
            args.connections
        );
    }
    let timeout = duration_flag("--timeout", &args.timeout)?;
    let drain = duration_flag("--drain", &args.drain)?;
    let checks: Vec<Check> = args
        .checks
        .iter()
        .map(|c| check::parse(c).context("--check"))
        .collect::<anyhow::Result<_>>()?;
    let expect: Option<Vec<(String, i64)>> = args
        .expect
        .as_deref()
        .map(|spec| super::accuracy::parse_split("--expect", spec))
        .transpose()?
        .map(|split| split.into_iter().map(|(l, p)| (l, i64::from(p))).collect());
    match (&args.expect, &args.expect_rollout, &args.rollout_start) {
        (Some(_), Some(_), _) => bail!(
            "--expect and --expect-rollout: give one (a fixed split, or a Service whose rollout the run checks)"
        ),
        (_, Some(_), None) => bail!(
            "--expect-rollout: needs --rollout-start T (RFC 3339, unix seconds, or now): when the new revision became ready"
        ),
        (_, None, Some(_)) => {
            bail!("--rollout-start: only with --expect-rollout MANIFEST")
        }
        _ => {}
    }
    let part = args.sharding.part()?;
    let shard = part.as_ref().map(|(s, _)| (s.index, s.count));
    let emit_jsonl = matches!(part, Some((_, super::sweep::ShardOut::Stdout)));
    if shard.is_some() {
        if args.requests {
            bail!("--requests: not with --shard (request ids are per shard; merge rebuilds every other output)");
        }
        if !checks.is_empty() {
            bail!("--check: not with --shard (a check judges the whole run: read the merged summary.json)");
        }
    }
    let start_at = args
        .start_at
        .as_deref()
        .map(|t| super::load_shard::parse_start_at(t, Clock::unix_now_s()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if expect.is_none()
        && args.expect_rollout.is_none()
        && checks.iter().any(|c| c.quantity == Quantity::Split)
    {
        bail!("--check split: needs the programmed split; give --expect LABEL=PCT,... or --expect-rollout MANIFEST");
    }
    // The process and the closed-loop choice.
    let (process, closed) = match (&args.rate, &args.schedule) {
        (Some(r), None) if r == "max" => (None, true),
        (Some(r), None) => {
            let rate: f64 = r
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x > 0.0 && *x <= MAX_LOAD_RATE_PER_S)
                .with_context(|| {
                    format!("--rate {r:?}: must be a rate in (0, {MAX_LOAD_RATE_PER_S}] requests/s, or max")
                })?;
            let p = if poisson {
                ArrivalProcessSpec::Poisson { rate_per_s: rate }
            } else {
                ArrivalProcessSpec::Constant { rate_per_s: rate }
            };
            (Some(p), false)
        }
        (None, Some(file)) => (
            Some(ArrivalProcessSpec::Schedule {
                points: read_schedule(file)?,
                poisson,
            }),
            false,
        ),
        _ => bail!("one of --rate R (or --rate max) and --schedule FILE is required"),
    };
    // The whole run's bounds (a shard sends its share in the same time).
    let duration = match (&args.duration, args.max_requests) {
        (Some(d), _) => duration_flag("--duration", d)?,
        (None, Some(n)) => match &process {
            Some(ArrivalProcessSpec::Constant { rate_per_s })
            | Some(ArrivalProcessSpec::Poisson { rate_per_s }) => {
                SimDuration::from_secs_f64(n as f64 / rate_per_s * 2.0 + 1.0)
            }
            // A closed loop or a schedule with only a count: at most ten minutes.
            _ => SimDuration::from_secs(600),
        },
        (None, None) => {
            bail!("--duration or --max-requests is required (a load run always stops by itself)")
        }
    };
    // A shard's share: of the rate, of a closed loop's connections, of the request count.
    let (process, connections, max_requests) = match shard {
        Some((i, n)) => (
            process.map(|p| process_share(p, n)),
            if closed {
                (super::load_shard::share(args.connections as u64, i, n) as usize).max(1)
            } else {
                args.connections
            },
            args.max_requests.map(|m| super::load_shard::share(m, i, n)),
        ),
        None => (process, args.connections, args.max_requests),
    };
    let rollout = match (&args.expect_rollout, &args.rollout_start) {
        (Some(manifest), Some(start)) => Some(super::expect_rollout::prepare(
            manifest,
            start,
            &args.rollout_slack,
            Clock::unix_now_s(),
            duration,
        )?),
        _ => None,
    };
    if let Some(r) = &rollout {
        eprintln!("{}", r.note);
    }
    // Labels and the classifier.
    let mut labels: Vec<String> = expect.iter().flatten().map(|(l, _)| l.clone()).collect();
    for l in rollout.iter().flat_map(|r| r.labels()) {
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let add_label = |l: &str, labels: &mut Vec<String>| -> usize {
        match labels.iter().position(|x| x == l) {
            Some(i) => i,
            None => {
                labels.push(l.to_string());
                labels.len() - 1
            }
        }
    };
    for l in args
        .labels
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        add_label(l.trim(), &mut labels);
    }
    let spec = args
        .classify
        .clone()
        .unwrap_or_else(|| format!("header:{}", crate::live::http::REVISION_HEADER));
    enum Kind {
        Header(String),
        Body(Vec<(Regex, usize)>),
    }
    let kind = if let Some(name) = spec.strip_prefix("header:") {
        if name.is_empty() || hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            bail!("--classify {spec:?}: {name:?} is not a header name");
        }
        Kind::Header(name.to_ascii_lowercase())
    } else if let Some(rules) = spec.strip_prefix("body:") {
        let mut patterns = Vec::new();
        for rule in rules.split(',').filter(|r| !r.is_empty()) {
            let (re, label) = rule
                .rsplit_once('=')
                .with_context(|| format!("--classify {spec:?}: {rule:?} is not REGEX=LABEL"))?;
            let re = Regex::new(re)
                .with_context(|| format!("--classify {spec:?}: bad regular expression {re:?}"))?;
            patterns.push((re, add_label(label, &mut labels)));
        }
        if patterns.is_empty() {
            bail!("--classify {spec:?}: no REGEX=LABEL rules");
        }
        Kind::Body(patterns)
    } else {
        bail!("--classify {spec:?}: must be header:NAME or body:REGEX=LABEL,...");
    };
    let other = labels.len();
    labels.push("other".into());
    let classifier = match kind {
        Kind::Header(name) => Classifier::Header {
            name,
            labels: labels
                .iter()
                .enumerate()
                .take(other)
                .map(|(i, l)| (l.clone(), i))
                .collect::<HashMap<_, _>>(),
            other,
        },
        Kind::Body(patterns) => Classifier::Body { patterns, other },
    };

    let runtime = runtime()?;
    let (targets, target_desc) = runtime.block_on(build_targets(args))?;
    // Every label a check names must be one the run reports.
    if let Some(clash) = targets.names.iter().find(|n| labels.contains(n)) {
        bail!("--targets: target name {clash:?} is also a classifier label; rename the target");
    }
    check_labels(&checks, &labels, &targets.names)?;
    // Before any traffic (a run's outputs must not be lost to a directory found unwritable at
    // the end); the request log is spooled in the staging directory.
    // A shard writes only its shard file (DIR/shard-I.jsonl, or stdout): checked writable now.
    let staged = match shard {
        None => Some(super::run::stage(&args.out)?),
        Some((i, _)) if !emit_jsonl => {
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("--out: cannot create {}", args.out.display()))?;
            write_atomic(&args.out, &crate::report::shard::file_name(i), |_| Ok(()))
                .with_context(|| format!("--out {} is not writable", args.out.display()))?;
            None
        }
        Some(_) => None,
    };
    let results = args
        .results
        .as_deref()
        .map(|path| {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("--results: cannot create directory {}", dir.display())
                })?;
            }
            load::ResultsWriter::create(path)
                .with_context(|| format!("--results: cannot create {}", path.display()))
        })
        .transpose()?;
    if args.insecure {
        eprintln!(
            "WARNING: --insecure: certificates of https:// targets are NOT verified; anyone on the path can read and change this traffic"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut rollout_schedule = None;
    let result = runtime.block_on(async {
        for t in &targets.list {
            if !t.addr.ip().is_loopback() {
                eprintln!(
                    "load: sending to {} (not loopback), as the targets name it",
                    t.addr
                );
            }
        }
        watch_signals(stop.clone());
        if let Some(at) = start_at {
            let wait_s = at - Clock::unix_now_s();
            if wait_s > 0.0 {
                eprintln!(
                    "load: waiting {wait_s:.1} s for --start-at {}",
                    crate::calibrate::timestamp::format_instant(at)
                );
                let until =
                    tokio::time::Instant::now() + std::time::Duration::from_secs_f64(wait_s);
                while tokio::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    let left = until - tokio::time::Instant::now();
                    tokio::time::sleep(left.min(std::time::Duration::from_millis(50))).await;
                }
            }
        }
        let clock = Clock::start(1.0);
        let mut recorder = RunRecorder::new(
            RunMeta {
                scenario: "load".into(),
                seed: args.seed,
                mode: "live".into(),
            },
            labels.clone(),
            SimDuration::from_secs(1),
            staged.as_ref().filter(|_| args.requests).map(|s| s.path()),
        );
        if shard.is_some() {
            recorder.keep_window_histograms();
        }
        if let Some(expect) = &expect {
            recorder.programmed(SimTime::ZERO, "", expect);
        }
        let books = Books::new(recorder);
        let feeder = rollout.as_ref().map(|r| {
            let schedule = r.schedule(Clock::unix_now_s() - clock.wall_elapsed_s());
            rollout_schedule = Some(schedule.clone());
            tokio::spawn(super::expect_rollout::feed(books.clone(), clock, schedule))
        });
        let arrivals_spec = ArrivalSpec {
            process: process.unwrap_or(ArrivalProcessSpec::Constant { rate_per_s: 1.0 }),
            tag_shares: vec![],
            header_shares: vec![],
            clients: None,
        };
        let plan = LoadPlan {
            // A shard's deterministic arrivals fall between the other shards' (`with_phase`).
            arrivals: ArrivalGen::new(&arrivals_spec, SimTime::ZERO + duration)
                .with_phase(shard.map_or(0.0, |(i, n)| i as f64 / n as f64)),
            // Each shard its own arrival stream (shard 0's is an unsharded run's).
            rng: stream(
                args.seed,
                shard.map_or(0, |(i, _)| i as u64),
                Stream::Arrivals,
                0,
            ),
            duration,
            max_requests,
            drain,
            client_timeout: Some(timeout),
            executor: if closed {
                Executor::Closed { connections }
            } else {
                Executor::Open { connections }
            },
            max_in_flight: args.max_in_flight.max(1),
            record_routing: true,
        };
        let result = load::run(
            plan,
            targets.clone(),
            results,
            classifier,
            clock,
            books,
            stop.clone(),
        )
        .await;
        if let Some(f) = feeder {
            f.abort();
        }
        result
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let wall_s = result.stats.pacing_wall_s;
    let results_written = result.results.clone();
    let (mut report, parts, stats, interrupted) = result.report_parts(wall_s);
    report.set_protocol(protocol_of(&stats));
    let description = format!(
        "# splitlab load\ntarget: {}\nrate: {}\nduration: {}\nconnections: {}\n",
        args.target
            .clone()
            .or_else(|| args.targets.as_ref().map(|t| t.display().to_string()))
            .unwrap_or_default(),
        args.rate.as_deref().unwrap_or("schedule"),
        duration,
        args.connections
    );
    let Some(staged) = staged else {
        let (i, n) = shard.context("only a shard has no staged outputs")?;
        let parts = parts.context("a shard's recorder keeps its windows' histograms")?;
        let kept = super::load_shard::LoadShard::new(
            &labels,
            &targets.names,
            &target_desc,
            &description,
            args.seed,
            parts,
            &stats,
            peak_rss_mib(),
            interrupted,
        );
        let argv: Vec<String> = std::env::args()
            .skip_while(|a| a != "load")
            .skip(1)
            .collect();
        let header_args = shard_header_args(&argv);
        // The targets file (if any) is the run's input, embedded as the scenario.
        let source = match &args.targets {
            Some(f) => super::run::ScenarioSource::embedded(f, super::read_input(f)?),
            None => super::run::ScenarioSource::embedded(Path::new(""), String::new()),
        };
        let part = part.context("a shard has its part")?;
        super::sweep::write_shard(
            "load",
            header_args,
            &source,
            n,
            part,
            &args.out,
            std::slice::from_ref(&kept),
        )?;
        eprintln!(
            "load: shard {i} of {n}: {} requests, {} served",
            report.totals().arrived,
            report.totals().served
        );
        return Ok(super::interrupt::exit_code(interrupted, ExitCode::SUCCESS));
    };
    let written = write_and_print(
        staged,
        &report,
        &description,
        &stats,
        &target_desc,
        &targets.names,
        peak_rss_mib(),
        |dir| write_histograms(dir, &labels, &targets.names, &stats),
    );
    if let Err(e) = written {
        // The run's traffic is spent: keep at least its figures, on stdout.
        say!("{}", report.summary_table())?;
        say!("{}", failures_line(&report, &stats))?;
        return Err(e.context("the outputs could not be written; the summary above is the run's"));
    }
    let achieved = report.totals().arrived as f64 / wall_s.max(1e-9);
    say!(
        "sent {} requests in {:.2} s: {:.1} requests/s",
        report.totals().arrived,
        wall_s,
        achieved
    )?;
    if let (Some(path), Some(r)) = (&args.results, results_written) {
        match r {
            Ok(n) => say!("results: {n} lines in {}", path.display())?,
            Err(e) => eprintln!("warning: --results {}: {e}", path.display()),
        }
    }
    say!("{}", failures_line(&report, &stats))?;
    let h1 = stats.connections.get("http/1.1").copied().unwrap_or(0);
    if args.http2 && h1 > 0 {
        eprintln!(
            "warning: --http2: the server chose HTTP/1.1 (ALPN) on {h1} of {} connections",
            stats.connections.values().sum::<u64>()
        );
    }
    if interrupted {
        eprintln!(
            "interrupted by {}: outputs cover the run up to the signal",
            super::interrupt::recorded_name()
        );
    }
    if !checks.is_empty() {
        let split = match (&rollout, &rollout_schedule) {
            (Some(r), Some(schedule)) => r.findings(&report, schedule),
            _ if expect.is_some() => check::split_findings(&report),
            _ => None,
        };
        let measured = measure(&report, &stats, &labels, &targets.names, split);
        let failed = print_checks(&checks, &measured)?;
        if failed > 0 {
            eprintln!("load: {failed} of {} checks failed", checks.len());
            return Ok(super::interrupt::exit_code(
                interrupted,
                ExitCode::from(CHECK_FAILED_EXIT),
            ));
        }
        return Ok(super::interrupt::exit_code(
            interrupted,
            super::run::request_log_status(&report),
        ));
    }
    if report.totals().served == 0 && report.totals().arrived > 0 {
        eprintln!(
            "error: no request succeeded ({} requests); {}",
            report.totals().arrived,
            failures_line(&report, &stats)
        );
        return Ok(super::interrupt::exit_code(interrupted, ExitCode::FAILURE));
    }
    Ok(super::interrupt::exit_code(
        interrupted,
        super::run::request_log_status(&report),
    ))
}

/// `splitlab merge` of a load run's shards: writes the run's outputs (as one process running
/// the whole load writes them, but `requests.csv`) and prints its summary.
pub(super) fn write_merged_load(
    merged: &super::load_shard::MergedLoad,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let staged = super::run::stage(out)?;
    write_and_print(
        staged,
        &merged.report,
        &merged.description,
        &merged.stats,
        &merged.target_desc,
        &merged.target_names,
        merged.peak_rss_mib,
        |dir| write_histograms(dir, &merged.labels, &merged.target_names, &merged.stats),
    )?;
    say!(
        "sent {} requests in {:.2} s (the longest shard's pacing)",
        merged.report.totals().arrived,
        merged.stats.pacing_wall_s
    )?;
    say!("{}", failures_line(&merged.report, &merged.stats))?;
    if !merged.interrupted.is_empty() {
        eprintln!(
            "warning: shards {:?} were interrupted: their figures cover their run up to the signal",
            merged.interrupted
        );
    }
    Ok(super::run::request_log_status(&merged.report))
}

/// `summary.json` `protocol`: what the run's connections spoke, several joined with `+`
/// (`h2`, `http/1.1`, `h2+http/1.1`); `None` when no connection was made.
pub(super) fn protocol_of(stats: &LoadStats) -> Option<String> {
    let names: Vec<&str> = stats.connections.keys().copied().collect();
    (!names.is_empty()).then(|| names.join("+"))
}

/// `failures: 3 of 400 requests (2 × HTTP 502, 1 × client timeout)`: every request not
/// served, by cause.
fn failures_line(report: &RunReport, stats: &LoadStats) -> String {
    let t = report.totals();
    let failed = t.arrived - t.served.min(t.arrived);
    if failed == 0 {
        return format!("failures: none of {} requests", t.arrived);
    }
    let mut causes: Vec<(u64, String)> = stats
        .error_causes
        .iter()
        .map(|(c, n)| (*n, c.clone()))
        .collect();
    for (n, what) in [
        (t.rejected_qp, "rejected by a queue-proxy (503)"),
        (t.expired_activator, "expired at the activator (504)"),
        (t.expired_qp, "expired at a queue-proxy (504)"),
        (t.client_cancelled, "client timeout"),
        (t.app_error, "application error"),
        (t.bad_gateway, "queue-proxy bad gateway (502)"),
        (t.ingress_overflow, "ingress overflow (503)"),
        (t.in_flight_at_end, "in flight at the end"),
    ] {
        if n > 0 {
            causes.push((n, what.to_string()));
        }
    }
    causes.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let text: Vec<String> = causes.iter().map(|(n, c)| format!("{n} × {c}")).collect();
    format!(
        "failures: {failed} of {} requests ({})",
        t.arrived,
        text.join(", ")
    )
}

/// A group's served latency as the run report states it (nearest rank, never above the max).
fn latency_of(g: &GroupStats) -> Option<LatencySummary> {
    if g.served == 0 {
        return None;
    }
    let h = &g.latency_us;
    let q = |p: f64| h.value_at_quantile(p).min(g.latency_max_us) as f64 / 1000.0;
    Some(LatencySummary {
        mean_ms: g.latency_sum_us as f64 / g.served as f64 / 1000.0,
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: g.latency_max_us as f64 / 1000.0,
    })
}

/// Every label a check names must be one the run reports (a classifier label or a target name).
pub(super) fn check_labels(
    checks: &[Check],
    labels: &[String],
    target_names: &[String],
) -> anyhow::Result<()> {
    for c in checks {
        if let Some(l) = c.label() {
            if !labels.iter().any(|x| x == l) && !target_names.iter().any(|x| x == l) {
                let mut known: Vec<&str> = labels.iter().map(String::as_str).collect();
                known.extend(target_names.iter().map(String::as_str));
                bail!(
                    "--check {:?}: no label {l:?} in this run; labels: {} (from --expect, --labels, --classify body rules and --targets names)",
                    c.text,
                    known.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Prints every check with its value and PASS or FAIL; returns how many failed.
pub(super) fn print_checks(checks: &[Check], measured: &check::Measured) -> anyhow::Result<usize> {
    let mut failed = 0;
    for c in checks {
        let v = c.judge(measured);
        failed += usize::from(!v.passed);
        say!(
            "check {} {}: {}",
            if v.passed { "PASS" } else { "FAIL" },
            c.text,
            v.value
        )?;
    }
    Ok(failed)
}

/// What the checks look at: the run's totals and latency (as in summary.json), each classifier
/// label's (a revision in summary.json) and each target's, with the statuses seen.
pub(super) fn measure(
    report: &RunReport,
    stats: &LoadStats,
    labels: &[String],
    target_names: &[String],
    split: Option<check::SplitFindings>,
) -> check::Measured {
    let t = report.totals();
    let mut m = check::Measured {
        overall: check::Group {
            requests: t.arrived,
            served: t.served,
            latency: report.latency().copied(),
            statuses: stats.overall.statuses.clone(),
        },
        labels: BTreeMap::new(),
        split,
    };
    for (i, rev) in report.revisions().iter().enumerate() {
        m.labels.insert(
            rev.name.clone(),
            check::Group {
                requests: rev.counts.arrived,
                served: rev.counts.served,
                latency: rev.latency,
                statuses: stats
                    .labels
                    .get(&i)
                    .map(|g| g.statuses.clone())
                    .unwrap_or_default(),
            },
        );
    }
    debug_assert_eq!(labels.len(), report.revisions().len());
    for (i, name) in target_names.iter().enumerate() {
        let g = stats.targets.get(&i).cloned().unwrap_or_default();
        m.labels.insert(
            name.clone(),
            check::Group {
                requests: g.requests,
                served: g.served,
                latency: latency_of(&g),
                statuses: g.statuses,
            },
        );
    }
    m
}

/// `latency.hgrm` and `histograms.json`: the served latency overall, per classifier label and
/// per target.
fn write_histograms(
    out: &Path,
    labels: &[String],
    target_names: &[String],
    stats: &LoadStats,
) -> anyhow::Result<()> {
    let mut groups: Vec<(String, &hdrhistogram::Histogram<u64>)> =
        vec![("all".to_string(), &stats.overall.latency_us)];
    for (i, g) in &stats.labels {
        if let Some(l) = labels.get(*i) {
            groups.push((l.clone(), &g.latency_us));
        }
    }
    for (i, g) in &stats.targets {
        if let Some(n) = target_names.get(*i) {
            groups.push((format!("target:{n}"), &g.latency_us));
        }
    }
    let mut hgrm = String::new();
    for (name, h) in &groups {
        hgrm.push_str(&format!("# {name}\n"));
        hgrm.push_str(&crate::report::hdr::percentile_distribution(h));
        hgrm.push('\n');
    }
    write_atomic(out, HGRM_FILE, |w| w.write_all(hgrm.as_bytes()))
        .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    let mut doc = serde_json::Map::new();
    for (name, h) in &groups {
        doc.insert(
            name.clone(),
            serde_json::json!({
                "unit": "us",
                "count": h.len(),
                "histogram": crate::report::hdr::to_base64(h).map_err(|e| {
                    anyhow::anyhow!("cannot serialize the histogram of {name}: {e}")
                })?,
            }),
        );
    }
    write_atomic(out, HISTOGRAMS_FILE, |w| {
        serde_json::to_writer_pretty(&mut *w, &serde_json::Value::Object(doc))?;
        w.write_all(b"\n")
    })
    .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    Ok(())
}

// ------------------------------------------------------------------ splitlab gateway

#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The gateway config (YAML): service, traffic, backends.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on. Anything but loopback exposes the gateway beyond this machine
    /// and is announced with a warning on stderr.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Stop after this long (Go duration); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "D")]
    duration: Option<String>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key. ALPN offers h2 and
    /// http/1.1.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A request head must arrive within this (Go duration; 0s: no limit); a client that
    /// trickles it gets 408 and is closed.
    #[arg(long, value_name = "D", default_value = "10s")]
    header_timeout: String,
    /// Close a connection after this long without a request (Go duration; 0s: never).
    #[arg(long, value_name = "D", default_value = "60s")]
    idle_timeout: String,
    /// Connections served at once; more are closed as soon as they are accepted. Default:
    /// 10000, or half the open-files limit (`ulimit -n`) less 32 if that is lower.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Event loops: N threads, each a single-threaded runtime with its own listening socket
    /// on the address (SO_REUSEPORT), serving each connection it accepts to its end, as
    /// nginx's worker processes. Default: the number of available cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

/// `splitlab gateway --config FILE`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayConfig {
    service: GatewayService,
    traffic: Vec<TrafficTarget>,
    /// Revision name to backend URLs (http://HOST:PORT).
    backends: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    picker: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayService {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default = "default_domain")]
    domain: String,
    #[serde(default)]
    tag_header_routing: bool,
}

fn default_namespace() -> String {
    "default".into()
}

fn default_domain() -> String {
    "example.com".into()
}

pub fn gateway(args: &GatewayArgs) -> anyhow::Result<ExitCode> {
    let name = super::display_name(&args.config);
    let text = super::read_input(&args.config)?;
    let config: GatewayConfig =
        crate::scenario::yaml::from_str(&name, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run_for = args
        .duration
        .as_deref()
        .map(|d| duration_flag("--duration", d))
        .transpose()?;
    let limits = gateway_limits(args)?;
    let workers = gateway_workers(args.workers)?;
    let picker = match config.picker.as_deref().unwrap_or("random") {
        "random" => PickerKind::Random,
        "wrr" => PickerKind::Wrr,
        "hash" => PickerKind::Hash,
        other => bail!("{name}: picker: {other:?} is not one of random, wrr, hash"),
    };
    let meta = ObjectMeta {
        name: config.service.name.clone(),
        namespace: config.service.namespace.clone(),
        ..Default::default()
    };
    let mut traffic = config.traffic.clone();
    crate::routing::target::default_traffic(&mut traffic, true);
    if let Some(err) = validate_service(&meta, &traffic) {
        bail!("{name}: traffic: {err}");
    }
    let service = ServiceSpec {
        name: config.service.name.clone(),
        namespace: config.service.namespace.clone(),
        domain: config.service.domain.clone(),
        rollout_duration_secs: 0,
        tag_header_routing: config.service.tag_header_routing,
    };
    let names: Vec<String> = config.backends.keys().cloned().collect();
    for t in &traffic {
        if !t.revision_name.is_empty() && !config.backends.contains_key(&t.revision_name) {
            bail!(
                "{name}: traffic names revision {:?}, which has no entry under backends (has: {})",
                t.revision_name,
                names.join(", ")
            );
        }
        if t.revision_name.is_empty() {
            bail!("{name}: traffic: every target needs a revisionName (the gateway has no configurations)");
        }
    }
    // Setting up, the signals and the stop run here; the workers serve on their own threads.
    let runtime = crate::live::workers::runtime().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut backends = Vec::new();
        for (i, (rev, urls)) in config.backends.iter().enumerate() {
            let mut st =
                BackendState::new(vec![], stream(0, 0, Stream::ActivatorLb, i as u64), true);
            for url in urls {
                let resolved = resolve_target(url)
                    .await
                    .with_context(|| format!("{name}: backends.{rev}"))?;
                if resolved.https {
                    bail!("{name}: backends.{rev}: {url:?}: the gateway reaches backends over http:// only");
                }
                st.endpoints.push(resolved.addr);
            }
            if st.endpoints.is_empty() {
                bail!("{name}: backends.{rev}: no URLs");
            }
            backends.push(Arc::new(Backend::new(
                rev.clone(),
                i as u32,
                std::time::Duration::from_secs(300),
                st,
            )));
        }
        let mut control = RouteControl::new(&service, &traffic);
        let revs: Vec<RevisionState<'_>> = names
            .iter()
            .map(|n| RevisionState {
                name: n,
                ready: true,
            })
            .collect();
        let out = control.reconcile(SimTime::ZERO, &revs, "");
        if let Some(w) = out.warning {
            bail!("{name}: {w}");
        }
        let gen = out.program.context("the route has no traffic to program")?;
        control.programmed(gen);
        let table = control.desired_table().context("the route has no table")?;
        let index: BTreeMap<String, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let (plane, changes, warnings) =
            DataPlane::program(&control, table, None, picker, &index, &[]);
        if let Some(w) = warnings.first() {
            bail!("{name}: {w}");
        }
        // One gateway per worker: its own pool (an upstream connection is driven by the
        // worker that opened it) and its own data plane and picker stream; the backends and
        // the counters are shared.
        let seed = config.seed.unwrap_or(1);
        let stats: Arc<crate::live::gateway::GatewayStats> = Default::default();
        let gateways: Vec<Arc<Gateway>> = (0..workers)
            .map(|w| {
                Arc::new(Gateway {
                    plane: Mutex::new((plane.clone(), stream(seed, 0, Stream::Routing, w as u64))),
                    backends: backends.clone(),
                    pool: Pool::default(),
                    hooks: None,
                    activator_metrics: Vec::new(),
                    stats: stats.clone(),
                })
            })
            .collect();
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::live::tls_server::acceptor(cert, key)?),
            _ => None,
        };
        let (listeners, sharing) = crate::live::workers::listen(args.listen, workers)
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let local = listeners
            .first()
            .context("no listening socket")?
            .local_addr()?;
        if let Some(warning) = exposure_warning("gateway", local) {
            eprintln!("{warning}");
        }
        if sharing == crate::live::workers::Sharing::Shared {
            eprintln!(
                "gateway: SO_REUSEPORT is not available: the {workers} workers share one \
                 listening socket"
            );
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        say!("gateway: listening on {scheme}://{local}")?;
        for c in &changes {
            let tag = if c.tag.is_empty() {
                "(default)"
            } else {
                &c.tag
            };
            let splits: Vec<String> = c.splits.iter().map(|(r, p)| format!("{r}={p}%")).collect();
            let host = control.host(&c.tag);
            say!("  {tag}: host {host}: {}", splits.join(" "))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        watch_signals(stop.clone());
        let (tx, rx) = tokio::sync::watch::channel(false);
        let conn_stats = Arc::new(ConnStats::default());
        let options = ServeOptions {
            tls,
            // One cap over every worker's connections.
            slots: Some(Arc::new(tokio::sync::Semaphore::new(limits.max_connections))),
            limits,
            stats: conn_stats.clone(),
        };
        let parts = listeners.into_iter().zip(gateways).collect();
        let running = crate::live::workers::Workers::start(parts, &options, &rx)
            .context("cannot start the gateway's worker threads")?;
        let clock = Clock::start(1.0);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let expired = run_for.is_some_and(|d| clock.now() >= SimTime::ZERO + d);
            // A worker ends before the stop only if it failed: the others stop with it.
            if stop.load(Ordering::Relaxed) || expired || running.any_ended() {
                break;
            }
        }
        let _ = tx.send(true);
        let failed = tokio::task::spawn_blocking(move || running.join())
            .await
            .unwrap_or_else(|e| vec![format!("joining the workers: {e}")]);
        let errors = stats.errors();
        let causes: Vec<String> = errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        say!(
            "gateway: stopped: requests {}  errors {}{}",
            stats.requests(),
            errors.values().sum::<u64>(),
            if causes.is_empty() {
                String::new()
            } else {
                format!(" ({})", causes.join(", "))
            }
        )?;
        let guarded: Vec<String> = conn_stats
            .summary()
            .iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect();
        if !guarded.is_empty() {
            say!("gateway: connections: {}", guarded.join(", "))?;
        }
        if !failed.is_empty() {
            bail!("gateway: {}", failed.join("; "));
        }
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(ExitCode::SUCCESS)
}

/// The gateway's connection limits from its flags (`guard::ConnLimits`; 0s turns a timeout off).
fn gateway_limits(args: &GatewayArgs) -> anyhow::Result<ConnLimits> {
    let timeout = |flag: &str, value: &str| -> anyhow::Result<Option<std::time::Duration>> {
        match parse_duration(value) {
            Ok(0) => Ok(None),
            Ok(ns) if ns > 0 => Ok(Some(std::time::Duration::from_nanos(ns as u64))),
            Ok(_) => bail!("{flag} {value:?}: must not be negative"),
            Err(e) => {
                bail!("{flag} {value:?}: {e} (a Go duration such as 10s, 500ms; 0s: no limit)")
            }
        }
    };
    let mut limits = ConnLimits {
        header_timeout: timeout("--header-timeout", &args.header_timeout)?,
        idle_timeout: timeout("--idle-timeout", &args.idle_timeout)?,
        ..ConnLimits::default()
    };
    if let Some(n) = args.max_connections {
        if !(1..=MAX_CONNECTIONS_FLAG).contains(&n) {
            bail!("--max-connections {n}: allowed: 1 to {MAX_CONNECTIONS_FLAG}");
        }
        let fit = default_max_connections(open_files_limit());
        if n > fit {
            eprintln!(
                "gateway: warning: --max-connections {n} is above what the open-files limit \
                 leaves room for ({fit}): at that limit new connections wait until others close"
            );
        }
        limits.max_connections = n;
    }
    Ok(limits)
}

/// `--workers`: at least 1, at most `MAX_WORKERS`; default: the available cores (1 if that
/// cannot be told).
fn gateway_workers(flag: Option<usize>) -> anyhow::Result<usize> {
    match flag {
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))),
        Some(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        Some(n) => bail!(
            "--workers {n}: allowed: 1 to {MAX_WORKERS} (each worker is a thread with its own \
             event loop; default: the number of cores)"
        ),
    }
}

/// The largest `--workers`: far beyond any machine's cores, small enough that a typo does not
/// start thousands of threads.
const MAX_WORKERS: usize = 1024;

/// The largest `--max-connections`: a million connections is beyond one process's sockets on
/// any usual machine.
const MAX_CONNECTIONS_FLAG: usize = 1_000_000;

/// The warning `gateway` (and `live --listen`, as `who`) prints when it listens beyond
/// loopback (an unspecified address such as 0.0.0.0 is every interface): it then relays
/// anyone's requests to its backends.
fn exposure_warning(who: &str, local: SocketAddr) -> Option<String> {
    (!local.ip().is_loopback()).then(|| {
        format!(
            "{who}: WARNING: listening on {local}, which is not loopback: anyone who can reach \
             this machine can send requests through the gateway to its backends (use --listen \
             127.0.0.1:PORT to keep it local)"
        )
    })
}

/// `live --listen`: where outside clients reach the gateway, and the run's time zero (what
/// `load --rollout-start` needs, plus the scenario's own offset to the rollout), on stderr.
fn announce_listening(local: SocketAddr, start_unix_s: f64) {
    if let Some(warning) = exposure_warning("live", local) {
        eprintln!("{warning}");
    }
    eprintln!(
        "live: gateway listening on http://{local}; time zero {}",
        crate::calibrate::timestamp::format_instant(start_unix_s)
    );
}

// ------------------------------------------------------------------ shared

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Sets `stop` on Ctrl-C or SIGTERM, and records the signal: the command then writes what it
/// has and exits 130 or 143 ([`super::interrupt::exit_code`]).
fn watch_signals(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let signal = super::interrupt::next_signal().await;
        super::interrupt::record(signal);
        stop.store(true, Ordering::Relaxed);
    });
}

/// A live or load run's end: checks the accounting, writes the run's files and `load.json`,
/// then prints the summary and the load generator's figures.
#[allow(clippy::too_many_arguments)]
fn write_and_print(
    staged: StagedDir,
    report: &RunReport,
    scenario_text: &str,
    stats: &LoadStats,
    target: &str,
    target_names: &[String],
    peak_rss: Option<f64>,
    extra: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if !report.accounting_ok() {
        bail!("internal error: request accounting does not balance; outputs not written");
    }
    let written = super::run::write_outputs(&staged, report, scenario_text)?;
    write_load_json(
        staged.path(),
        staged.out(),
        stats,
        target,
        target_names,
        peak_rss,
    )?;
    extra(staged.path())?;
    super::run::commit(staged)?;
    written.print()?;
    print_load_stats(stats)?;
    Ok(())
}

fn write_load_json(
    dir: &Path,
    out: &Path,
    stats: &LoadStats,
    target: &str,
    target_names: &[String],
    peak_rss: Option<f64>,
) -> anyhow::Result<()> {
    let h = &stats.send_lag_us;
    let q = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    let doc = serde_json::json!({
        "target": target,
        "sent": stats.sent,
        "pacing_wall_s": stats.pacing_wall_s,
        "send_lag_us": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": h.max()},
        "error_causes": stats.error_causes,
        "pacer_fell_behind_at_s": stats.pacer_fell_behind_at_s,
        "statuses": stats.overall.statuses,
        "connections": stats.connections,
        "targets": target_names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let g = stats.targets.get(&i).cloned().unwrap_or_default();
                let doc = serde_json::json!({
                    "requests": g.requests,
                    "served": g.served,
                    "statuses": g.statuses,
                    "latency_ms": latency_of(&g),
                });
                (name.clone(), doc)
            })
            .collect::<serde_json::Map<_, _>>(),
        "peak_rss_mib": peak_rss,
    });
    write_atomic(dir, LOAD_FILE, |w| {
        serde_json::to_writer_pretty(&mut *w, &doc)?;
        w.write_all(b"\n")
    })
    .with_context(|| format!("cannot write outputs to {}", out.display()))?;
    Ok(())
}

/// The process's peak resident set so far (`VmHWM` in `/proc/self/status`), in MiB; `None`
/// where that file does not exist (not Linux). It shows whether a run's memory stayed bounded.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

fn print_load_stats(stats: &LoadStats) -> std::io::Result<()> {
    let h = &stats.send_lag_us;
    if !h.is_empty() {
        say!(
            "send lag (intended to actual): p50 {} µs, p99 {} µs, max {} µs",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max()
        )?;
    }
    for (cause, n) in &stats.error_causes {
        say!("errors: {n} × {cause}")?;
    }
    if let Some(at) = stats.pacer_fell_behind_at_s {
        eprintln!(
            "warning: the load generator fell more than --drain behind its schedule and stopped creating requests at {at:.3} s: this machine cannot send at that rate"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_takes_its_share_of_the_rate_and_its_header_drops_per_shard_flags() {
        let step = |at_s: i64, rate_per_s: f64| RatePoint::Step {
            at: SimTime(at_s * 1_000_000_000),
            rate_per_s,
        };
        // (the whole run's process, shards, a shard's)
        let cases = [
            // evenly spaced
            (
                ArrivalProcessSpec::Constant { rate_per_s: 300.0 },
                3,
                ArrivalProcessSpec::Constant { rate_per_s: 100.0 },
            ),
            // Poisson: the sum of independent Poisson streams is Poisson at the sum
            (
                ArrivalProcessSpec::Poisson { rate_per_s: 10.0 },
                4,
                ArrivalProcessSpec::Poisson { rate_per_s: 2.5 },
            ),
            // a schedule: every row's rate, at the same times
            (
                ArrivalProcessSpec::Schedule {
                    points: vec![step(0, 60.0), step(5, 120.0)],
                    poisson: false,
                },
                2,
                ArrivalProcessSpec::Schedule {
                    points: vec![step(0, 30.0), step(5, 60.0)],
                    poisson: false,
                },
            ),
        ];
        for (whole, n, want) in cases {
            assert_eq!(process_share(whole.clone(), n), want, "{whole:?} over {n}");
        }
        // The flags that differ between shards are left out, in both spellings.
        let argv: Vec<String> = [
            "--target",
            "http://x/",
            "--shard",
            "1/3",
            "--out=o1",
            "--rate",
            "9",
            "--results",
            "r1.jsonl",
            "--emit",
            "jsonl",
            "--start-at",
            "now+5s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shard_header_args(&argv),
            [
                "--target",
                "http://x/",
                "--rate",
                "9",
                "--start-at",
                "now+5s"
            ]
        );
    }

    #[test]
    fn listening_beyond_loopback_is_warned_about() {
        // (address, warned)
        let cases = [
            ("127.0.0.1:8080", false),  // the default
            ("127.0.0.2:8080", false),  // all of 127.0.0.0/8 is loopback
            ("[::1]:8080", false),      // IPv6 loopback
            ("0.0.0.0:8080", true),     // every interface
            ("[::]:8080", true),        // every interface, IPv6
            ("192.168.1.5:8080", true), // a LAN address
        ];
        for (addr, warned) in cases {
            let addr: SocketAddr = addr.parse().expect("a valid address");
            let got = exposure_warning("gateway", addr);
            assert_eq!(got.is_some(), warned, "{addr}: {got:?}");
            // `live --listen` says it is live.
            let live = exposure_warning("live", addr);
            assert!(live.is_none_or(|w| w.starts_with("live: WARNING: listening on ")));
            if let Some(w) = got {
                assert!(
                    w.starts_with(&format!(
                        "gateway: WARNING: listening on {addr}, which is not loopback"
                    )),
                    "{w}"
                );
            }
        }
    }
}
