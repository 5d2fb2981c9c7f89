//! Sharded sweeps (issue 18 §1, docs/scale-out.md): `compare` and `plan` split over N
//! processes with `--shard I/N` (or `--shards N` and JOB_COMPLETION_INDEX, or `--emit jsonl`)
//! and rebuilt by `splitlab merge` into the bytes of a single-process run, for any N and any
//! order of the shards; every bad shard set refused with a message naming the file.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{
    assert_clear_error, markdown_section, merge, splitlab, splitlab_env, temp_dir, text, SMALL_PLAN,
};

/// A small compare grid: 2 settings × 3 seeds of a 60 s canary-rollout, with an SLO (its table
/// and sentences come from the kept results too).
const COMPARE: &[&str] = &[
    "compare",
    "scenarios/canary-rollout.yaml",
    "--set",
    "duration=60s",
    "--set",
    "service.rollout_duration=10s,0s",
    "--seeds",
    "3",
    "--slo",
    "p99_shift_ms<=4000",
];

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    out
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `grid` with `extra` arguments appended.
fn with<'a>(grid: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    grid.iter().chain(extra).copied().collect()
}

/// Runs `grid` as `n` shards into `dir`, returning the shard files in a shuffled order (a fixed
/// permutation per `n`: reversed, then rotated).
fn shards(grid: &[&str], n: usize, dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let spec = format!("{i}/{n}");
            let out = ok(
                splitlab(&with(
                    grid,
                    &["--shard", &spec, "--jobs", "1", "--out", path(dir)],
                )),
                &format!("shard {spec}"),
            );
            // a shard writes no outputs but its file, and says so
            assert_eq!(
                text(&out.stdout).lines().count(),
                1,
                "{}",
                text(&out.stdout)
            );
            dir.join(format!("shard-{i}.jsonl"))
        })
        .collect();
    files.reverse();
    files.rotate_left(n / 2);
    files
}

/// Every file of `want` has the same bytes in `got`, and `got` has no other file.
fn assert_same_files(want: &Path, got: &Path, names: &[&str], what: &str) {
    let list = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(list(want), expected, "{what}: the single run's files");
    assert_eq!(list(got), expected, "{what}: the merged files");
    for name in names {
        let a = std::fs::read(want.join(name)).expect("single run's file");
        let b = std::fs::read(got.join(name)).expect("merged file");
        assert!(
            a == b,
            "{what}: merged {name} differs from the single run's"
        );
    }
}

#[test]
fn merged_compare_shards_are_the_bytes_of_a_single_run_for_any_n_and_order() {
    let root = temp_dir("shard-compare");
    let single = root.join("single");
    let run = ok(
        splitlab(&with(COMPARE, &["--out", path(&single)])),
        "single compare",
    );
    for n in [1, 2, 3, 7] {
        let dir = root.join(format!("shards-{n}"));
        let files = shards(COMPARE, n, &dir);
        let merged = root.join(format!("merged-{n}"));
        let out = ok(merge(&files, &merged), &format!("merge of {n}"));
        assert_same_files(
            &single,
            &merged,
            &[
                "compare.csv",
                "paired.csv",
                "compare.png",
                "compare.svg",
                "report.html",
            ],
            &format!("{n} shards"),
        );
        // merge says what the single run says, but for the output directory
        assert_eq!(
            text(&out.stdout).replace(path(&merged), "OUT"),
            text(&run.stdout).replace(path(&single), "OUT"),
            "{n} shards"
        );
    }
    // 7 shards of 6 runs: shard 6 ran nothing, and its file is its header alone
    let empty = std::fs::read_to_string(root.join("shards-7/shard-6.jsonl")).expect("shard 6");
    assert_eq!(empty.lines().count(), 1, "{empty}");
    assert!(empty.starts_with("{\"format\":\"splitlab-shard/1\",\"command\":\"compare\""));
}

#[test]
fn merged_plan_shards_are_the_bytes_of_a_single_run() {
    let root = temp_dir("shard-plan");
    let single = root.join("single");
    ok(
        splitlab(&with(SMALL_PLAN, &["--out", path(&single)])),
        "single plan",
    );
    for n in [2, 3] {
        let dir = root.join(format!("shards-{n}"));
        let files = shards(SMALL_PLAN, n, &dir);
        let merged = root.join(format!("merged-{n}"));
        ok(merge(&files, &merged), &format!("merge of {n}"));
        assert_same_files(
            &single,
            &merged,
            &["plan.csv", "plan.png", "plan.svg", "report.html"],
            &format!("{n} plan shards"),
        );
    }
}

#[test]
fn indexed_job_pods_emit_their_shard_on_stdout_and_merge() {
    let root = temp_dir("shard-emit");
    std::fs::create_dir_all(&root).expect("temp dir");
    let single = root.join("single");
    ok(
        splitlab(&with(COMPARE, &["--out", path(&single)])),
        "single compare",
    );
    // what `kubectl logs` of each pod of an Indexed Job of 2 collects
    let files: Vec<PathBuf> = ["1", "0"]
        .iter()
        .map(|index| {
            let out = ok(
                splitlab_env(
                    &with(COMPARE, &["--shards", "2", "--emit", "jsonl"]),
                    &[("JOB_COMPLETION_INDEX", index)],
                ),
                &format!("pod {index}"),
            );
            let file = root.join(format!("pod-{index}.log"));
            std::fs::write(&file, &out.stdout).expect("write the log");
            file
        })
        .collect();
    let first = std::fs::read_to_string(&files[0]).expect("pod 1's log");
    assert!(
        first.starts_with("{\"format\":\"splitlab-shard/1\""),
        "stdout holds the shard alone: {first}"
    );
    assert!(first
        .lines()
        .next()
        .is_some_and(|l| l.contains("\"shard\":1,\"shards\":2,\"total\":6")));
    let merged = root.join("merged");
    ok(merge(&files, &merged), "merge of the logs");
    assert_same_files(
        &single,
        &merged,
        &[
            "compare.csv",
            "paired.csv",
            "compare.png",
            "compare.svg",
            "report.html",
        ],
        "emitted shards",
    );
    // a pod's index that is not set, or not below the count
    let cases: [(Option<&str>, &str); 3] = [
        (None, "--shards 2 reads this shard's index from JOB_COMPLETION_INDEX, which is not set; give --shard I/2 outside a Kubernetes Indexed Job"),
        (Some("2"), "JOB_COMPLETION_INDEX=\"2\" is not a shard index for --shards 2; allowed: 0 to 1"),
        (Some("x"), "JOB_COMPLETION_INDEX=\"x\" is not a shard index for --shards 2; allowed: 0 to 1"),
    ];
    for (index, message) in cases {
        let envs: Vec<(&str, &str)> = index
            .map(|i| ("JOB_COMPLETION_INDEX", i))
            .into_iter()
            .collect();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"));
        cmd.args(with(COMPARE, &["--shards", "2", "--emit", "jsonl"]))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("JOB_COMPLETION_INDEX")
            .envs(envs);
        let out = cmd.output().expect("splitlab runs");
        assert_clear_error(&out, message, &format!("JOB_COMPLETION_INDEX {index:?}"));
        assert_eq!(text(&out.stdout), "", "nothing on stdout");
    }
}

#[test]
fn bad_shard_sets_are_refused_naming_the_file() {
    let root = temp_dir("shard-refusals");
    let dir = root.join("shards");
    let files = shards(COMPARE, 3, &dir);
    let shard = |i: usize| dir.join(format!("shard-{i}.jsonl"));
    let read = |p: &Path| std::fs::read_to_string(p).expect("shard");
    let d = |p: &Path| p.display().to_string();
    // a copy of shard 2 with its header's `from` replaced by `to`
    let edited = |name: &str, from: &str, to: &str| {
        let text = read(&shard(2));
        let (header, items) = text.split_once('\n').expect("a header line");
        assert!(header.contains(from), "{from} in {header}");
        let file = root.join(name);
        std::fs::write(&file, format!("{}\n{items}", header.replacen(from, to, 1))).expect("write");
        file
    };
    let other_args = edited("args.jsonl", "--seeds=3", "--seeds=4");
    let other_version = edited(
        "version.jsonl",
        &format!("\"version\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\":\"0.0.1\"",
    );
    let other_scenario = edited("scenario.jsonl", "# canary-rollout:", "# changed:");
    let unknown = edited(
        "load.jsonl",
        "\"command\":\"compare\"",
        "\"command\":\"lodge\"",
    );
    let cut = root.join("cut.jsonl");
    let whole = read(&shard(2));
    std::fs::write(&cut, &whole[..whole.len() - 5]).expect("write");
    let (a, b, c) = (shard(0), shard(1), shard(2));
    // (shards given, the message)
    let cases: Vec<(Vec<&Path>, String)> = vec![
        // shard 1 missing
        (
            vec![&c, &a],
            "shard 1 of 3 missing (given: 0, 2); merge needs every shard".to_string(),
        ),
        // shard 0 given twice
        (
            vec![&a, &b, &c, &a],
            format!("{} and {} are both shard 0 of 3; give each shard once", d(&a), d(&a)),
        ),
        // a shard of another grid
        (
            vec![&a, &b, &other_args],
            format!(
                "{}: args [\"--set=duration=60s\", \"--set=service.rollout_duration=10s,0s\", \"--seeds=4\", \"--slo=p99_shift_ms<=4000\"] differs from {}'s [\"--set=duration=60s\", \"--set=service.rollout_duration=10s,0s\", \"--seeds=3\", \"--slo=p99_shift_ms<=4000\"]; merge only the shards of one run",
                d(&other_args),
                d(&a)
            ),
        ),
        // a shard of another splitlab
        (
            vec![&a, &b, &other_version],
            format!(
                "{}: splitlab version \"0.0.1\" differs from {}'s \"{}\"; merge only the shards of one run",
                d(&other_version),
                d(&a),
                env!("CARGO_PKG_VERSION")
            ),
        ),
        // the scenario file changed between shards
        (
            vec![&a, &b, &other_scenario],
            format!(
                "{}: the text of scenario \"scenarios/canary-rollout.yaml\" differs from {}'s (the file changed between shards); merge only the shards of one run",
                d(&other_scenario),
                d(&a)
            ),
        ),
        // a shard cut short in its last line
        (
            vec![&a, &b, &cut],
            format!(
                "{}:3: truncated: the last line has no newline (the shard was cut short); run this shard again",
                d(&cut)
            ),
        ),
        // a command merge does not know
        (
            vec![&unknown],
            format!(
                "{}: merging \"lodge\" shards is not supported by this splitlab (merges: compare, plan, load)",
                d(&unknown)
            ),
        ),
    ];
    for (i, (given, message)) in cases.into_iter().enumerate() {
        let out_dir = root.join(format!("out-{i}"));
        let given: Vec<PathBuf> = given.iter().map(|f| f.to_path_buf()).collect();
        let out = merge(&given, &out_dir);
        assert_clear_error(&out, &message, &message);
        assert!(!out_dir.exists(), "{message}: no output written");
    }
    // the three shards, in any order, merge
    ok(merge(&files, &root.join("merged")), "the whole set");
}

#[test]
fn advise_refuses_to_shard_and_says_what_to_do_instead() {
    for flags in [
        &["--shard", "0/2"][..],
        &["--shards", "2"],
        &["--emit", "jsonl"],
    ] {
        let mut args = vec![
            "advise",
            "scenarios/canary-rollout.yaml",
            "--slo",
            "expired==0",
        ];
        args.extend(flags);
        assert_clear_error(
            &splitlab(&args),
            "advise cannot be sharded: each search round picks its values from the results of the rounds before it, so no shard knows its runs in advance; shard the grid with `splitlab compare SCENARIO --set KNOB=V1,V2,... --slo EXPR... --shard I/N` and merge it (docs/scale-out.md), or run advise in one process",
            &format!("advise {flags:?}"),
        );
    }
}

/// docs/scale-out.md's example (and README's, the same lines): the shards and the merge as
/// written (their `out/` put in a temporary directory) give the single run's files.
#[test]
fn the_scale_out_example_of_the_docs_merges_to_a_single_runs_bytes() {
    let root_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root_dir.join("docs/scale-out.md")).expect("the page");
    let readme = std::fs::read_to_string(root_dir.join("README.md")).expect("README");
    let commands = |section: &str| -> Vec<String> {
        section
            .lines()
            .filter(|l| l.starts_with("splitlab "))
            .map(String::from)
            .collect()
    };
    let example = commands(markdown_section(&page, "## Example").expect("an Example section"));
    assert_eq!(example.len(), 3, "two shards and a merge: {example:?}");
    assert_eq!(
        commands(markdown_section(&readme, "## Scale out").expect("README's Scale out section")),
        example,
        "README shows the docs' example"
    );
    let tmp = temp_dir("shard-docs");
    let local = |line: &str| line.replace(" out/", &format!(" {}/", path(&tmp)));
    for line in &example {
        let line = local(line);
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        ok(splitlab(&args), &line);
    }
    // the same grid in one process
    let compare = local(&example[0]);
    let mut args: Vec<&str> = compare.split_whitespace().skip(1).collect();
    let at = args
        .iter()
        .position(|a| *a == "--shard")
        .expect("--shard in the example");
    args.drain(at..at + 2);
    let at = args
        .iter()
        .position(|a| *a == "--out")
        .expect("--out in the example");
    let single = tmp.join("single");
    args[at + 1] = path(&single);
    ok(splitlab(&args), "the example's grid in one process");
    assert_same_files(
        &single,
        &tmp.join("merged"),
        &[
            "compare.csv",
            "paired.csv",
            "compare.png",
            "compare.svg",
            "report.html",
        ],
        "the docs' example",
    );
}
