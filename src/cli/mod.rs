//! The command line: clap types and one function per subcommand. The only module that uses
//! `anyhow` and prints; everything it calls returns typed errors.

/// `println!` that returns the write error instead of panicking (a closed pipe, as in
/// `splitlab run | head -1`, must not panic); use with `?`.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the write error instead of panicking; use with `?`.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod accuracy;
mod advise;
mod calibrate;
mod compare;
mod diff;
mod expect_rollout;
mod interrupt;
mod k8s;
mod live;
mod load_shard;
mod merge;
mod plan;
mod plot;
mod rollout;
mod run;
mod scenarios;
mod shell;
mod sweep;
mod traffic;
mod validate;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// splitlab: simulate and load-test Knative Serving traffic splits and gradual rollouts.
#[derive(Debug, Parser)]
#[command(name = "splitlab", version = env!("SPLITLAB_VERSION"), about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a scenario (default: scenarios/canary-rollout.yaml) and write its outputs.
    Run(run::Args),
    /// Re-render a run's charts from the files in its output directory.
    Plot(plot::Args),
    /// Validate Knative Service/Route manifests as the Knative webhook would.
    Validate(validate::Args),
    /// Apply `kn service update --traffic/--tag/--untag` edits to a Service manifest.
    Traffic(traffic::Args),
    /// Print the schedule of a rollout-duration rollout as CSV (t_s,revision,percent).
    Rollout(rollout::Args),
    /// Route synthetic requests through a picker and report split accuracy.
    Accuracy(accuracy::Args),
    /// Run a grid of settings × seeds in parallel and compare them (compare.csv, paired.csv).
    Compare(compare::Args),
    /// Run a scenario for real: pod servers, the gateway and the activator on 127.0.0.1,
    /// driven by the scenario's arrivals in wall-clock time.
    Live(live::LiveArgs),
    /// Send open-loop HTTP load to an endpoint and write the same outputs as a run.
    Load(Box<live::LoadArgs>),
    /// Run the splitting gateway alone in front of backends named in a config file.
    Gateway(live::GatewayArgs),
    /// Compare two runs' summary.json metric by metric, within statistical noise.
    Diff(diff::Args),
    /// Build a scenario from a cluster's Prometheus metrics (a server or a saved dump).
    Calibrate(calibrate::Args),
    /// Find the smallest value of a knob (default service.rollout_duration) whose SLOs hold
    /// over seeds: exit 0 with a recommendation, 3 when no value in the range meets them.
    Advise(advise::Args),
    /// How likely Flagger analysis settings are to catch a regressed canary, how fast they
    /// promote a healthy one, and which to use (plan.csv).
    Plan(plan::Args),
    /// Rebuild a sharded compare or plan's outputs from its shards (docs/scale-out.md); the
    /// files are the bytes a single process writes.
    Merge(merge::Args),
    /// List the scenarios shipped inside the binary, or print one (`scenarios show NAME`).
    Scenarios(scenarios::Args),
    /// Print Kubernetes manifests: `k8s job compare|plan|load ARGS... --shards N` prints an
    /// Indexed Job running the command's shards, and how to collect and merge them.
    K8s(k8s::Args),
    /// Print a shell completion script (`source <(splitlab completions bash)`).
    Completions(shell::CompletionsArgs),
    /// Print the man page in roff (`splitlab man > splitlab.1 && man ./splitlab.1`).
    Man(shell::ManArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Plot(args) => plot::run(&args),
        Command::Validate(args) => validate::run(&args),
        Command::Traffic(args) => traffic::run(&args),
        Command::Rollout(args) => rollout::run(&args),
        Command::Accuracy(args) => accuracy::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Live(args) => live::live(&args),
        Command::Load(args) => live::load_cmd(&args),
        Command::Gateway(args) => live::gateway(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Advise(args) => advise::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Scenarios(args) => scenarios::run(&args),
        Command::K8s(args) => k8s::run(&args),
        Command::Completions(args) => shell::completions(&args),
        Command::Man(args) => shell::man(&args),
    }
}

/// The command line a shard's header records (`command`, its normalized `args`, the scenario
/// path), parsed again as the command line it came from.
fn reparse(command: &str, header: &crate::report::shard::Header) -> anyhow::Result<Command> {
    let line = ["splitlab", command]
        .into_iter()
        .map(String::from)
        .chain(header.args.iter().cloned())
        .chain(["--".to_string(), header.scenario.path.clone()]);
    Cli::try_parse_from(line)
        .map(|cli| cli.command)
        .map_err(|e| {
            anyhow::anyhow!(
                "the shards' arguments {:?} are not a {command} command line of this splitlab: {}",
                header.args,
                e.render().to_string().trim_end()
            )
        })
}

/// The chart `name` as `report.html` embeds it: its SVG, read back from `dir/NAME.svg` where it
/// was just drawn.
fn chart_svg(dir: &Path, name: &str) -> anyhow::Result<crate::report::html::Chart> {
    let path = dir.join(format!("{name}.svg"));
    let svg = read_input(&path)?;
    Ok(crate::report::html::Chart {
        name: name.to_string(),
        svg,
    })
}

/// Renders `page` into `dir/report.html`, written atomically.
fn write_report(dir: &Path, page: &crate::report::html::Page) -> anyhow::Result<()> {
    use crate::report::html::{render_page, REPORT_FILE};
    let html = render_page(page);
    crate::report::write::write_atomic(dir, REPORT_FILE, |w| {
        std::io::Write::write_all(w, html.as_bytes())
    })
    .with_context(|| format!("cannot write {}", dir.join(REPORT_FILE).display()))
}

/// Reads a whole input file as UTF-8, naming it in the error (with the line and column of the
/// first byte that is not UTF-8).
fn read_input(path: &Path) -> anyhow::Result<String> {
    read_utf8(path).map_err(anyhow::Error::msg)
}

/// Reads a whole file as UTF-8; the error names the file, and the line and column of the first
/// byte that is not UTF-8.
pub(crate) fn read_utf8(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = e.utf8_error().valid_up_to();
        // The prefix is valid UTF-8 by definition of `valid_up_to`.
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(
            "{}:{line}:{column}: invalid UTF-8 (byte 0x{:02x}); the file must be UTF-8 text",
            path.display(),
            bytes[valid]
        )
    })
}

/// A file a scenario names (a trace, a manifest), for the loader's resolver: the loader's
/// message already says "cannot read PATH", so the error is only the cause (and the line and
/// column of bad UTF-8), without the path a second time.
fn read_referenced(path: &Path) -> Result<String, String> {
    read_utf8(path).map_err(|e| {
        let shown = path.display().to_string();
        if let Some(cause) = e.strip_prefix(&format!("cannot read {shown}: ")) {
            return cause.to_string();
        }
        let at = e.strip_prefix(&format!("{shown}:")).and_then(|rest| {
            let (line, rest) = rest.split_once(':')?;
            let (column, cause) = rest.split_once(": ")?;
            Some(format!("line {line}, column {column}: {cause}"))
        });
        at.unwrap_or(e)
    })
}

/// At most this many characters of a value are echoed in a message; a longer one is cut, with
/// its length (a 10 MB bad value must not fill the terminal).
pub const MAX_ECHO_CHARS: usize = 200;

/// An error and its causes as one line each way a person reads them: each cause once (a
/// cause whose text its parent already ends with is not repeated, as thiserror messages that
/// print their `source` would be), and every long echoed value cut ([`clip_echoes`]).
pub fn readable_error(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    clip_echoes(&text)
}

/// `text` with every quoted value (`"..."`) longer than [`MAX_ECHO_CHARS`] cut to that many
/// characters and followed by its size (`"abc…" (10485760 bytes)`), and any line still longer
/// than 5 × that (an unquoted echo, a source excerpt) cut the same way.
pub fn clip_echoes(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = clip_quoted(line);
        if line.chars().count() > 5 * MAX_ECHO_CHARS {
            out.extend(line.chars().take(MAX_ECHO_CHARS));
            out.push_str(&format!("… ({} bytes)", line.len()));
        } else {
            out.push_str(&line);
        }
    }
    out
}

/// One line with its long quoted values cut (see [`clip_echoes`]).
fn clip_quoted(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // The closing quote: the first one not escaped by a backslash.
        let mut escaped = false;
        let close = body.char_indices().find_map(|(j, c)| {
            let end = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end.then_some(j)
        });
        let Some(close) = close else {
            // No closing quote: the rest of the line is the value.
            out.push_str(&clip_value(body, ""));
            return out;
        };
        out.push_str(&clip_value(&body[..close], "\""));
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `value` then `close`, or its first [`MAX_ECHO_CHARS`] characters, `…`, `close` and its size.
fn clip_value(value: &str, close: &str) -> String {
    if value.chars().count() <= MAX_ECHO_CHARS {
        return format!("{value}{close}");
    }
    let head: String = value.chars().take(MAX_ECHO_CHARS).collect();
    format!("{head}…{close} ({} bytes)", value.len())
}

/// The name shown for a file in messages.
fn display_name(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_echoes_are_cut_with_their_size() {
        let long = "y".repeat(300);
        let head = "y".repeat(MAX_ECHO_CHARS);
        // (text, as shown)
        let cases = [
            // short values stay whole
            (
                "a \"short\" value".to_string(),
                "a \"short\" value".to_string(),
            ),
            // a long quoted value: 200 characters, then its size in bytes
            (
                format!("bad \"{long}\"; allowed: x"),
                format!("bad \"{head}…\" (300 bytes); allowed: x"),
            ),
            // an escaped quote does not end the value
            (
                format!("bad \"a\\\"{long}\" end"),
                format!(
                    "bad \"a\\\"{}…\" (303 bytes) end",
                    &head[..MAX_ECHO_CHARS - 3]
                ),
            ),
            // an unquoted line five times the limit is cut as a whole
            (
                format!("12 | {}", "z".repeat(2000)),
                format!("12 | {}… (2005 bytes)", "z".repeat(MAX_ECHO_CHARS - 5)),
            ),
            // multi-byte characters are counted as characters, never split
            (
                format!("\"{}\"", "é".repeat(250)),
                format!("\"{}…\" (500 bytes)", "é".repeat(MAX_ECHO_CHARS)),
            ),
        ];
        for (text, shown) in cases {
            assert_eq!(clip_echoes(&text), shown);
        }
    }

    #[test]
    fn a_cause_already_in_its_parents_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write f: {source}")]
        struct Wrapper {
            source: std::io::Error,
        }
        let io = || std::io::Error::from_raw_os_error(13);
        let err = anyhow::Error::new(Wrapper { source: io() }).context("--out d");
        assert_eq!(
            readable_error(&err),
            "--out d: cannot write f: Permission denied (os error 13)"
        );
        // Causes that are not repeated are all kept.
        let err = anyhow::Error::new(io()).context("cannot read x");
        assert_eq!(
            readable_error(&err),
            "cannot read x: Permission denied (os error 13)"
        );
    }

    #[test]
    fn bad_utf8_is_placed_by_line_and_column() {
        let path = std::env::temp_dir().join(format!("splitlab-utf8-{}", std::process::id()));
        std::fs::write(&path, b"a: 1\nb: \xc3\xa9\xfe\n").expect("write");
        let err = read_utf8(&path).expect_err("not UTF-8");
        std::fs::remove_file(&path).expect("cleanup");
        assert_eq!(
            err,
            format!(
                "{}:2:5: invalid UTF-8 (byte 0xfe); the file must be UTF-8 text",
                path.display()
            )
        );
    }
}
