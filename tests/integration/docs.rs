//! README.md and docs/*.md tell the truth about the command line: every command line they show
//! is run by a test or by `.ci/run` (`every_documented_command_is_exercised`), and the output
//! they quote comes from a real run of the command beside it (`quoted_outputs_match_real_runs`;
//! `SPLITLAB_BLESS=1` rewrites the quoted lines from the runs).
//!
//! A command line is a line of a fenced shell block (no language, `sh`, `bash`, `shell`,
//! `console`) that starts with `splitlab `, `cargo ` or `source <(splitlab ` (in a `console`
//! block: after `$ `), less a trailing `# comment`. Synopsis lines (`[--flag X]`, `ARG...`,
//! `(A | B)`) are not commands; synopses belong in `text` blocks. A command is exercised when:
//! - it is a `$ ` line of a `console` block, which `quoted_outputs_match_real_runs` runs (all of
//!   them but those in [`CONSOLE_RUN_ELSEWHERE`]);
//! - it appears verbatim in a test source (`tests/integration/*.rs` but this file) or in
//!   `.ci/run`;
//! - or a test reads it from its page: an entry of [`READ_BY_TESTS`] names the page, the prefix
//!   the test filters lines by, and the test, whose source must name both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{markdown_section, temp_dir, text};

/// Tests that read their commands from a page by a line prefix, and run them.
/// (page, the section the test reads or "" for the whole page, prefix of the lines the test
/// takes, test file, test function)
const READ_BY_TESTS: &[(&str, &str, &str, &str, &str)] = &[
    // `splitlab live --listen`, driven by `load --expect-rollout` from outside
    (
        "docs/load.md",
        "",
        "splitlab live ",
        "load_rollout.rs",
        "load_expect_rollout_against_splitlab_live_passes_and_a_wrong_manifest_fails",
    ),
    // the advise study: README and docs/advise.md show the same command
    (
        "README.md",
        "",
        "cargo run --release -- advise",
        "advise.rs",
        "readme_advise_recommends_a_rollout_duration_that_run_confirms",
    ),
    (
        "docs/advise.md",
        "",
        "cargo run --release -- advise",
        "advise.rs",
        "readme_advise_recommends_a_rollout_duration_that_run_confirms",
    ),
    // calibrate, then advise, on the saved Prometheus dump
    (
        "docs/calibrate.md",
        "## From your Prometheus to an annotation",
        "cargo run --release -- ",
        "advise.rs",
        "readme_calibrate_then_advise_walk_recommends_what_run_confirms",
    ),
    // both Flagger canaries, simulated
    (
        "docs/canary.md",
        "",
        "cargo run --release -- run scenarios/flagger-",
        "analysis.rs",
        "readme_canary_analysis_commands_show_what_readme_says",
    ),
    // the bad canary, live (ignored by `cargo test`; .ci/run runs the ignored tests)
    (
        "docs/canary.md",
        "",
        "cargo run --release -- live scenarios/flagger-",
        "analysis.rs",
        "live_mode_rolls_the_bad_canary_back_at_the_simulators_tick",
    ),
    // the failing canary: the command and the lines it prints
    (
        "docs/canary.md",
        "## A failing canary",
        "cargo run --release -- ",
        "scenarios.rs",
        "readme_failing_canary_command_prints_what_readme_shows",
    ),
    // the per-profile study, with one seed and 120 s
    (
        "docs/studies.md",
        "",
        "cargo run --release -- compare",
        "compare.rs",
        "readme_ingress_profile_study_runs",
    ),
    // the plan example and the figures quoted beside it
    (
        "docs/plan.md",
        "",
        "cargo run --release -- plan ",
        "plan.rs",
        "readme_plan_command_recommends_a_setting_and_agrees_with_the_analytic_probability",
    ),
    // live mode's metrics: docs/live.md and docs/metrics.md show the same command
    (
        "docs/live.md",
        "",
        "cargo run --release -- live scenarios/live-metrics.yaml",
        "metrics.rs",
        "readme_live_metrics_command_exports_knatives_metrics_per_pod_with_counts_that_add_up",
    ),
    (
        "docs/metrics.md",
        "",
        "cargo run --release -- live scenarios/live-metrics.yaml",
        "metrics.rs",
        "readme_live_metrics_command_exports_knatives_metrics_per_pod_with_counts_that_add_up",
    ),
    // live mode against the simulator: run, live, diff --check
    (
        "README.md",
        "## Live mode",
        "cargo run --release -- ",
        "live.rs",
        "live_smoke_agrees_with_the_simulator_on_shares_and_outcomes",
    ),
    // the study's two settings (simulated through the library, as `run` does)
    (
        "docs/studies.md",
        "",
        "cargo run --release -- run scenarios/rollout-duration-study.yaml",
        "scenarios.rs",
        "rollout_duration_study_shows_the_difference",
    ),
    // README's compare, with one seed and 120 s
    (
        "README.md",
        "## Compare rollout durations",
        "cargo run --release -- compare",
        "docs.rs",
        "readme_compare_command_runs",
    ),
    // `load` over cleartext HTTP/1.1 against the documented gateway
    (
        "docs/load.md",
        "",
        "splitlab load ",
        "load.rs",
        "the_load_commands_in_the_docs_run_as_written",
    ),
    (
        "README.md",
        "",
        "splitlab load ",
        "load.rs",
        "the_load_commands_in_the_docs_run_as_written",
    ),
    (
        "README.md",
        "",
        "splitlab gateway --config gateway.yaml",
        "load.rs",
        "the_load_commands_in_the_docs_run_as_written",
    ),
    (
        "docs/gateway.md",
        "",
        "splitlab gateway --config gateway.yaml",
        "load.rs",
        "the_load_commands_in_the_docs_run_as_written",
    ),
    // the gateway over TLS (HTTP/2 and HTTP/1.1 by ALPN)
    (
        "docs/gateway.md",
        "",
        "splitlab gateway ",
        "h2.rs",
        "the_tls_gateway_of_the_docs_serves_h2_and_http1_by_alpn",
    ),
    // `load` over TLS and HTTP/2
    (
        "docs/load.md",
        "",
        "splitlab load ",
        "load_tls.rs",
        "the_tls_and_http2_commands_in_the_docs_run_as_written",
    ),
    // `load --expect-rollout`
    (
        "docs/load.md",
        "",
        "splitlab load ",
        "load_rollout.rs",
        "a_load_run_follows_knatives_rollout_schedule_and_a_wrong_start_fails_the_split_check",
    ),
    // sharded compare and merge: docs/scale-out.md's example, README's the same lines
    (
        "docs/scale-out.md",
        "## Example",
        "splitlab ",
        "shard.rs",
        "the_scale_out_example_of_the_docs_merges_to_a_single_runs_bytes",
    ),
    (
        "README.md",
        "## Scale out",
        "splitlab ",
        "shard.rs",
        "the_scale_out_example_of_the_docs_merges_to_a_single_runs_bytes",
    ),
];

/// `$ ` lines of console blocks that `quoted_outputs_match_real_runs` does not run, and the test
/// that does (or why not).
const CONSOLE_RUN_ELSEWHERE: &[(&str, &str)] = &[];

/// One command line shown in a page.
#[derive(Debug, Clone)]
struct Shown {
    file: String,
    line: usize,
    command: String,
    /// In a `console` block (a `$ ` line).
    console: bool,
    /// The heading of the section it is in (`## ...`, `### ...`), "" before the first.
    section: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md (not docs/knative/: upstream's text), by path from the root.
fn pages() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let body =
                std::fs::read_to_string(root().join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, body)
        })
        .collect()
}

/// A fenced block of a page: its language, and its lines with their line numbers (1-based).
struct Block {
    lang: String,
    lines: Vec<(usize, String)>,
}

fn blocks(body: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, l) in body.lines().enumerate() {
        if let Some(fence) = l.trim_start().strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    open = Some(Block {
                        lang: fence.trim().to_string(),
                        lines: Vec::new(),
                    })
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.lines.push((i + 1, l.to_string()));
        }
    }
    out
}

/// The command of a line, if it is one: `$ ` and a trailing `# comment` removed.
fn command_of(line: &str, console: bool) -> Option<String> {
    let line = if console {
        line.strip_prefix("$ ")?
    } else {
        line
    };
    if !(line.starts_with("splitlab ")
        || line.starts_with("cargo ")
        || line.starts_with("source <(splitlab ")
        || line == "splitlab")
    {
        return None;
    }
    let synopsis = line.contains("[--") || line.contains("...") || line.contains(" | ");
    if synopsis {
        return None;
    }
    // `cmd   # what it does`: a comment starts at a `#` after whitespace.
    let cut = line.find(" #").unwrap_or(line.len());
    Some(line[..cut].trim_end().to_string())
}

fn shown_commands() -> Vec<Shown> {
    let mut out = Vec::new();
    for (file, body) in pages() {
        let headings: Vec<(usize, &str)> = {
            let fenced = blocks(&body)
                .iter()
                .flat_map(|b| b.lines.iter().map(|(n, _)| *n))
                .collect::<std::collections::BTreeSet<usize>>();
            body.lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with("## ") || l.starts_with("### "))
                .filter(|(i, _)| !fenced.contains(&(i + 1)))
                .map(|(i, l)| (i + 1, l))
                .collect()
        };
        // `text` blocks hold synopses and output, `yaml`/`json` files: not commands.
        let shell = |lang: &str| matches!(lang, "" | "sh" | "bash" | "shell" | "console");
        for b in blocks(&body).into_iter().filter(|b| shell(&b.lang)) {
            let console = b.lang == "console";
            for (n, l) in &b.lines {
                if let Some(command) = command_of(l, console) {
                    let section = headings
                        .iter()
                        .rev()
                        .find(|(h, _)| h < n)
                        .map_or(String::new(), |(_, l)| l.to_string());
                    out.push(Shown {
                        file: file.clone(),
                        line: *n,
                        command,
                        console,
                        section,
                    });
                }
            }
        }
    }
    out
}

/// Every test source by file name, and `.ci/run`, without their comment lines (a command
/// named in a comment is not run).
fn sources() -> BTreeMap<String, String> {
    let code = |text: String, comment: &str| -> String {
        text.lines()
            .filter(|l| !l.trim_start().starts_with(comment))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = BTreeMap::new();
    let dir = root().join("tests/integration");
    for e in std::fs::read_dir(&dir)
        .expect("tests/integration")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") {
            let src = std::fs::read_to_string(e.path()).expect("a test source");
            out.insert(name, code(src, "//"));
        }
    }
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    out.insert(".ci/run".to_string(), code(ci, "#"));
    out
}

/// Commands that are a part of one `.ci/run` runs whole, with why.
const PART_OF_CI: &[(&str, &str)] = &[(
    "cargo test --test integration fuzz_",
    "the fuzz tests alone; .ci/run's `cargo test` runs them with the rest",
)];

#[test]
fn every_documented_command_is_exercised() {
    let sources = sources();
    // Each registry entry must be true of its test: the test exists and names the page and
    // the prefix it filters by.
    for (page, section, prefix, file, test) in READ_BY_TESTS {
        let src = sources
            .get(*file)
            .unwrap_or_else(|| panic!("READ_BY_TESTS: no tests/integration/{file}"));
        assert!(
            src.contains(&format!("fn {test}(")),
            "READ_BY_TESTS: no fn {test} in {file}"
        );
        let page_named = src.contains(&format!("\"{page}\""))
            || (*page != "README.md" && src.contains(&page.replace("docs/", "")));
        assert!(page_named, "READ_BY_TESTS: {file} does not read {page}");
        assert!(
            section.is_empty() || src.contains(section),
            "READ_BY_TESTS: {file} does not read the section {section:?}"
        );
        let prefix_literal = prefix.trim_end();
        assert!(
            src.contains(prefix_literal),
            "READ_BY_TESTS: {file} does not filter by {prefix:?}"
        );
        assert!(
            shown_commands().iter().any(|s| s.file == *page
                && (section.is_empty() || s.section == *section)
                && s.command.starts_with(prefix)),
            "READ_BY_TESTS: {page} shows no command starting with {prefix:?}"
        );
    }
    for (command, _) in PART_OF_CI {
        assert!(
            command.starts_with("cargo test ") && sources[".ci/run"].contains("\ncargo test\n"),
            "PART_OF_CI: {command} is not part of .ci/run's `cargo test`"
        );
    }
    let shown = shown_commands();
    let mut covered = Vec::new();
    let mut missing = Vec::new();
    for s in &shown {
        let run_here = s.console && !CONSOLE_RUN_ELSEWHERE.iter().any(|(c, _)| *c == s.command);
        // This file's registry holds prefixes and commands; it runs none of them verbatim.
        let verbatim = sources
            .iter()
            .any(|(name, src)| name != "docs.rs" && src.contains(&s.command));
        let read = READ_BY_TESTS.iter().any(|(page, section, prefix, _, _)| {
            *page == s.file
                && (section.is_empty() || s.section == *section)
                && s.command.starts_with(prefix)
        });
        let part = PART_OF_CI.iter().any(|(c, _)| *c == s.command);
        if run_here || verbatim || read || part {
            covered.push(s.command.clone());
        } else {
            missing.push(s);
        }
    }
    // A line shown twice (README's example is also on its reference page) is covered once.
    let missing: Vec<String> = missing
        .into_iter()
        .filter(|s| !covered.contains(&s.command))
        .map(|s| format!("{}:{}: {}", s.file, s.line, s.command))
        .collect();
    assert!(
        missing.is_empty(),
        "command lines no test or .ci/run exercises (run them in a test, or name the test in \
         tests/integration/docs.rs READ_BY_TESTS):\n{}",
        missing.join("\n")
    );
}

/// README's compare example, with one seed and 120 s of the study (the instant shift happens at
/// 60 s): every setting runs, and the instant shift queues far more at the activator than the
/// 380 s rollout.
#[test]
fn readme_compare_command_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = markdown_section(&readme, "## Compare rollout durations")
        .expect("README's compare section");
    let commands: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- compare"))
        .collect();
    assert_eq!(commands.len(), 1, "{section}");
    let out = temp_dir("docs-readme-compare");
    let mut args: Vec<String> = commands[0]
        .split_whitespace()
        .skip(4)
        .map(str::to_string)
        .collect();
    let seeds = args.iter().position(|a| a == "--seeds").expect("--seeds");
    args[seeds + 1] = "1".to_string();
    args.extend(
        [
            "--set",
            "duration=120s",
            "--out",
            out.to_str().expect("utf-8"),
        ]
        .map(str::to_string),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("splitlab runs");
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    let csv = std::fs::read_to_string(out.join("compare.csv")).expect("compare.csv");
    let peak = |setting: &str| -> f64 {
        csv.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[0] == setting && f[2] == "peak_activator_queue")
            .and_then(|f| f[3].parse().ok())
            .unwrap_or_else(|| panic!("{setting} peak_activator_queue in {csv}"))
    };
    for rd in ["0s", "60s", "120s", "240s", "380s"] {
        peak(&format!("service.rollout_duration={rd}"));
    }
    let (instant, gradual) = (
        peak("service.rollout_duration=0s"),
        peak("service.rollout_duration=380s"),
    );
    assert!(instant > 10.0 * gradual.max(1.0), "{instant} vs {gradual}");
    let _ = std::fs::remove_dir_all(out);
}

/// `$ ` lines of `console` blocks with the output shown under each, until the next `$ `.
struct Session {
    file: String,
    steps: Vec<Step>,
}

struct Step {
    command: String,
    /// The lines shown, with their line numbers in the page.
    shown: Vec<(usize, String)>,
}

fn sessions() -> Vec<Session> {
    let mut out = Vec::new();
    for (file, body) in pages() {
        for b in blocks(&body).into_iter().filter(|b| b.lang == "console") {
            let mut steps: Vec<Step> = Vec::new();
            for (n, l) in b.lines {
                if let Some(c) = l.strip_prefix("$ ") {
                    steps.push(Step {
                        command: c.to_string(),
                        shown: Vec::new(),
                    });
                } else if let Some(step) = steps.last_mut() {
                    step.shown.push((n, l));
                }
            }
            if !steps.is_empty() {
                out.push(Session {
                    file: file.clone(),
                    steps,
                });
            }
        }
    }
    out
}

/// `wall 0.030 s` (the run's wall time) as `wall * s`: the one figure no run repeats.
fn masked(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("wall ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits > 0 && rest[digits..].starts_with(" s") {
            out.push('*');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// `printed` with the wall time `shown` quotes (a release build's, not the test's debug build).
fn with_wall_of(printed: &str, shown: &str) -> String {
    let wall = |l: &str| -> Option<(usize, usize)> {
        let at = l.find("wall ")? + 5;
        let len = l[at..].find(' ').unwrap_or(l.len() - at);
        Some((at, at + len))
    };
    match (wall(printed), wall(shown)) {
        (Some((a, b)), Some((c, d))) => {
            format!("{}{}{}", &printed[..a], &shown[c..d], &printed[b..])
        }
        _ => printed.to_string(),
    }
}

/// A shown line matches a printed one; `...` inside a shown line stands for any text.
fn line_matches(shown: &str, printed: &str) -> bool {
    let (shown, printed) = (masked(shown), masked(printed));
    let parts: Vec<&str> = shown.split("...").collect();
    if parts.len() == 1 {
        return shown == printed;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !printed.starts_with(first) || !printed[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &printed[first.len()..printed.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Runs a session's commands in one shell, in a scratch directory that sees the project's
/// scenarios/ and tests/ (so `out/` paths land in it), with `splitlab` the binary under test
/// and `cargo run --release --` read as `splitlab`. Returns each command's output (stdout and
/// stderr together).
fn run_session(session: &Session, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("bin")).expect("scratch dir");
    for link in ["scenarios", "tests"] {
        let _ = std::os::unix::fs::symlink(root().join(link), dir.join(link));
    }
    let _ = std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_splitlab"), dir.join("bin/splitlab"));
    const MARK: &str = "@@@splitlab-docs-step@@@";
    let mut script = String::new();
    for step in &session.steps {
        let command = match step.command.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("splitlab {rest}"),
            None => step.command.clone(),
        };
        // The marker's printf must not change the `$?` a later `echo $?` shows.
        script.push_str(&format!(
            "{command} 2>&1; __s=$?; printf '\n{MARK}\n'; (exit $__s)\n"
        ));
    }
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("bash")
        .args(["-c", &script])
        .env("PATH", path)
        .current_dir(dir)
        .output()
        .expect("bash runs");
    let all = text(&o.stdout);
    let mut outputs: Vec<String> = all
        .split(&format!("\n{MARK}\n"))
        .map(str::to_string)
        .collect();
    outputs.truncate(session.steps.len());
    assert_eq!(outputs.len(), session.steps.len(), "{script}\n{all}");
    outputs
}

/// The printed lines a step's shown lines match, in order (`...` alone skips any lines), or
/// the first shown line that matches none.
fn find_shown(step: &Step, printed: &str) -> Result<(), (usize, String)> {
    let lines: Vec<&str> = printed.lines().collect();
    let mut at = 0;
    for (n, shown) in &step.shown {
        if shown == "..." || shown.trim().is_empty() {
            continue;
        }
        match lines[at..].iter().position(|l| line_matches(shown, l)) {
            Some(k) => at += k + 1,
            None => return Err((*n, shown.clone())),
        }
    }
    Ok(())
}

/// With `SPLITLAB_BLESS=1`: each shown line that matches nothing is replaced by the printed
/// line that starts with the same word (the next one after the last line matched).
fn bless(file: &str, step: &Step, printed: &str) {
    let path = root().join(file);
    let body = std::fs::read_to_string(&path).expect("page");
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    let printed: Vec<&str> = printed.lines().collect();
    let mut at = 0;
    for (n, shown) in &step.shown {
        if shown == "..." || shown.trim().is_empty() {
            continue;
        }
        if let Some(k) = printed[at..].iter().position(|l| line_matches(shown, l)) {
            at += k + 1;
            continue;
        }
        let word = shown.split_whitespace().next().unwrap_or_default();
        if let Some(k) = printed[at..]
            .iter()
            .position(|l| l.split_whitespace().next() == Some(word))
        {
            lines[n - 1] = with_wall_of(printed[at + k], shown);
            at += k + 1;
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("blessed page");
}

/// Every `console` block of README.md and docs/*.md runs as shown: each `$ ` command runs, and
/// every line shown under it is a line it printed (in order; `wall` times aside; `...` for
/// lines or text left out). `SPLITLAB_BLESS=1 cargo test --test integration quoted_outputs`
/// rewrites stale lines from the runs.
#[test]
fn quoted_outputs_match_real_runs() {
    let bless_mode = std::env::var_os("SPLITLAB_BLESS").is_some();
    let mut stale = Vec::new();
    for (k, session) in sessions().iter().enumerate() {
        if session
            .steps
            .iter()
            .any(|s| CONSOLE_RUN_ELSEWHERE.iter().any(|(c, _)| *c == s.command))
        {
            continue;
        }
        let dir = temp_dir(&format!("docs-console-{k}"));
        let outputs = run_session(session, &dir);
        for (step, printed) in session.steps.iter().zip(&outputs) {
            if let Err((n, shown)) = find_shown(step, printed) {
                if bless_mode {
                    bless(&session.file, step, printed);
                }
                stale.push(format!(
                    "{}:{n}: `{}` no longer prints {shown:?}; it printed:\n{printed}",
                    session.file, step.command
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        stale.is_empty(),
        "quoted output that no longer matches a real run{}:\n{}",
        if bless_mode {
            " (rewritten: run again)"
        } else {
            " (SPLITLAB_BLESS=1 rewrites it)"
        },
        stale.join("\n")
    );
}

/// GitHub's anchor of a heading: lower case, spaces as `-`, other punctuation dropped.
fn anchor_of(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every relative link of README.md and docs/*.md reaches a file that exists, and its
/// `#anchor`, if any, a heading of that file (the README split moved text between pages).
#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for (file, body) in pages() {
        let dir = root()
            .join(&file)
            .parent()
            .expect("a page's folder")
            .to_path_buf();
        for (n, line) in body.lines().enumerate() {
            for piece in line.split("](").skip(1) {
                let Some(target) = piece.split(')').next() else {
                    continue;
                };
                if target.starts_with("http") || target.contains(' ') {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let full = if path.is_empty() {
                    root().join(&file)
                } else {
                    dir.join(path)
                };
                if !full.exists() {
                    broken.push(format!("{file}:{}: {target}: no such file", n + 1));
                    continue;
                }
                if anchor.is_empty() || full.is_dir() {
                    continue;
                }
                let text = std::fs::read_to_string(&full).unwrap_or_default();
                let fenced: std::collections::BTreeSet<usize> = blocks(&text)
                    .iter()
                    .flat_map(|b| b.lines.iter().map(|(k, _)| *k))
                    .collect();
                let found = text
                    .lines()
                    .enumerate()
                    .filter(|(k, l)| l.starts_with('#') && !fenced.contains(&(k + 1)))
                    .any(|(_, l)| anchor_of(l) == anchor);
                if !found {
                    broken.push(format!("{file}:{}: {target}: no such heading", n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
