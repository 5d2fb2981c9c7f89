//! `splitlab k8s job compare|plan|load ARGS... --shards N [--image IMAGE] [--namespace NS]`:
//! prints a Kubernetes Indexed Job (and the ConfigMap holding its input files) that runs the
//! command's shards, one pod per shard, and says how to collect and merge them (docs/k8s.md).
//!
//! The pod of completion index `I` runs `splitlab COMMAND ARGS --shards N --emit jsonl`: the
//! command reads `I` from `JOB_COMPLETION_INDEX` (set by the Job controller) and writes its shard
//! to stdout, so `kubectl logs` collects it without shared storage; `splitlab merge` rebuilds
//! the outputs a single process writes.
//!
//! Owns: the manifest's shape (Indexed completion mode, per-index retries, resources, a
//! non-root read-only pod) and the collect/merge commands. Must not: talk to a cluster (the
//! printed objects are for `kubectl apply`), or change what the command's arguments mean: they
//! are checked by parsing them as `splitlab COMMAND` would, and only input file paths are
//! rewritten to where the ConfigMap is mounted.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::CommandFactory as _;
use serde_json::{json, Value};

/// Where the ConfigMap with the input files is mounted in the pod.
pub const INPUT_DIR: &str = "/scenario";
/// The image the manifest names unless `--image` is given (built from the repository's
/// Dockerfile).
pub const DEFAULT_IMAGE: &str = "ghcr.io/splitlab/splitlab:latest";
/// The distroless image's `nonroot` user and group.
pub const NONROOT_UID: i64 = 65532;
/// How long a finished Job (and its pods' logs) stays before the TTL controller deletes it.
pub const TTL_AFTER_FINISHED_S: i64 = 24 * 3600;
/// Retries of one failed index (a pod evicted, a node lost) before the index fails.
pub const BACKOFF_LIMIT_PER_INDEX: i64 = 2;
/// Default time between printing a load Job and its shards' `--start-at`: time to apply it,
/// pull the image and start every pod.
pub const DEFAULT_START_MARGIN: &str = "2m";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Print an Indexed Job running a command's shards, and how to collect and merge them:
    /// `splitlab k8s job compare SCENARIO --set ... --shards 8 --image IMAGE > job.yaml`.
    Job(JobArgs),
}

/// This command's own flags, which may also come after the command's arguments (they are
/// taken out of them), and whether each takes a value.
const OWN_FLAGS: [&str; 7] = [
    "--shards",
    "--parallelism",
    "--image",
    "--namespace",
    "--name",
    "--output",
    "--start-margin",
];

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The command the pods run: compare, plan or load.
    #[arg(value_name = "COMMAND")]
    command: String,
    /// Its arguments, as given to `splitlab COMMAND`, with this command's flags anywhere
    /// among them.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
    /// Shards (the Job's completions), one pod each.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Pods at once (default: all N).
    #[arg(long, value_name = "P")]
    parallelism: Option<usize>,
    /// The container image (built from the repository's Dockerfile).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// The namespace of the Job and its ConfigMap.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// The Job's name (default: splitlab-COMMAND-SCENARIO).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// yaml (default; documents separated by ---) or json (a v1 List).
    #[arg(long, value_name = "FORMAT")]
    output: Option<String>,
    /// load only, without --start-at: the shards start this long after now (Go duration).
    #[arg(long, value_name = "D")]
    start_margin: Option<String>,
}

/// Everything the manifest is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    pub command: String,
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub shards: usize,
    pub parallelism: usize,
    /// The pod's arguments after `splitlab`.
    pub pod_args: Vec<String>,
    /// ConfigMap key to file text.
    pub files: BTreeMap<String, String>,
    /// CPUs a pod asks for (the command's `--jobs`, else 1).
    pub cpu: usize,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let What::Job(job) = &args.what;
    let (spec, notes) = plan_job(job, crate::live::clock::Clock::unix_now_s())?;
    let objects = objects(&spec);
    let text = match job_flag(job, "--output")?.as_deref().unwrap_or("yaml") {
        "yaml" => to_yaml(&objects)?,
        "json" => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
        other => bail!("--output {other:?}: allowed: yaml, json"),
    };
    say_raw!("{text}")?;
    for n in notes {
        eprintln!("{n}");
    }
    eprintln!("{}", collect_commands(&spec));
    Ok(ExitCode::SUCCESS)
}

/// The value of one of this command's flags, given before the command or among its args.
fn job_flag(job: &JobArgs, flag: &str) -> anyhow::Result<Option<String>> {
    let (_, own) = split_own_flags(&job.args)?;
    let before = match flag {
        "--shards" => job.shards.map(|n| n.to_string()),
        "--parallelism" => job.parallelism.map(|n| n.to_string()),
        "--image" => job.image.clone(),
        "--namespace" => job.namespace.clone(),
        "--name" => job.name.clone(),
        "--output" => job.output.clone(),
        "--start-margin" => job.start_margin.clone(),
        _ => None,
    };
    match (before, own.get(flag)) {
        (Some(_), Some(_)) => bail!("{flag}: given twice"),
        (a, b) => Ok(a.or_else(|| b.cloned())),
    }
}

/// Splits `args` into the command's and this command's own flags (`--flag VALUE` or
/// `--flag=VALUE`).
fn split_own_flags(args: &[String]) -> anyhow::Result<(Vec<String>, BTreeMap<String, String>)> {
    let mut rest = Vec::new();
    let mut own = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if OWN_FLAGS.contains(&f) => (f.to_string(), Some(v.to_string())),
            _ if OWN_FLAGS.contains(&a.as_str()) => (a.clone(), None),
            _ => {
                rest.push(a.clone());
                continue;
            }
        };
        let value = match value {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .with_context(|| format!("{flag}: needs a value"))?,
        };
        if own.insert(flag.clone(), value).is_some() {
            bail!("{flag}: given twice");
        }
    }
    Ok((rest, own))
}

/// A Kubernetes object name (DNS-1123 label): lower-case letters, digits and `-`, at most 63
/// characters (a Job's name is also a pod label's value), starting and ending alphanumeric.
fn dns_label(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(50); // room for the ConfigMap's "-input" and the pods' suffixes
    out.trim_end_matches('-').to_string()
}

/// A ConfigMap key for a file: its name, with characters outside `[-._a-zA-Z0-9]` as `_`.
fn file_key(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or("input".into(), |n| n.to_string_lossy().into_owned());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The load flags whose value is a file the pod must read.
const LOAD_FILE_FLAGS: [&str; 4] = ["--targets", "--schedule", "--expect-rollout", "--cacert"];

/// The Job for `job`, and notes for stderr. `now_unix_s` is the wall clock (for a load run's
/// default `--start-at`).
pub fn plan_job(job: &JobArgs, now_unix_s: f64) -> anyhow::Result<(JobSpec, Vec<String>)> {
    let command = job.command.as_str();
    if !["compare", "plan", "load"].contains(&command) {
        bail!("k8s job {command:?}: allowed: compare, plan, load (the commands that shard)");
    }
    let (mut args, _) = split_own_flags(&job.args)?;
    let shards: usize = match job_flag(job, "--shards")? {
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .with_context(|| format!("--shards {n:?}: allowed: 1 to {MAX_SHARDS}"))?,
        None => bail!("--shards N is required: the Job's completions, one pod per shard"),
    };
    let parallelism: usize = match job_flag(job, "--parallelism")? {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| (1..=shards).contains(p))
            .with_context(|| format!("--parallelism {p:?}: allowed: 1 to --shards ({shards})"))?,
        None => shards,
    };
    for a in &args {
        let flag = a.split('=').next().unwrap_or(a);
        if ["--shard", "--shards", "--emit"].contains(&flag) {
            bail!("{flag}: the Job sets it (each pod runs --shards {shards} --emit jsonl with its JOB_COMPLETION_INDEX)");
        }
    }
    let mut notes = Vec::new();
    let mut files = BTreeMap::new();
    let add_file = |path: &str, files: &mut BTreeMap<String, String>| -> anyhow::Result<String> {
        let p = Path::new(path);
        let mut key = file_key(p);
        let text = super::read_input(p)?;
        if files.get(&key).is_some_and(|t| *t != text) {
            key = format!("{}-{key}", files.len());
        }
        files.insert(key.clone(), text);
        Ok(format!("{INPUT_DIR}/{key}"))
    };
    // The command line as the command parses it: its errors now, not in N pods.
    let matches = super::Cli::command()
        .try_get_matches_from(
            ["splitlab", command]
                .into_iter()
                .map(String::from)
                .chain(args.iter().cloned()),
        )
        .map_err(|e| anyhow::anyhow!("splitlab {command} {}: {}", args.join(" "), e.render()))?;
    let sub = matches
        .subcommand_matches(command)
        .context("the command's own arguments")?;
    let mut stem = String::new();
    if command == "load" {
        // What a load shard refuses, refused here rather than in every pod.
        for (flag, why) in [
            ("checks", "--check: not with --shards (a check judges the whole run: read the merged summary.json)"),
            ("requests", "--requests: not with --shards (request ids are per shard)"),
        ] {
            if sub.value_source(flag) == Some(clap::parser::ValueSource::CommandLine) {
                bail!("{why}");
            }
        }
        for flag in LOAD_FILE_FLAGS {
            let mut i = 0;
            while i < args.len() {
                if args[i] == flag && i + 1 < args.len() {
                    args[i + 1] = add_file(&args[i + 1], &mut files)?;
                    i += 1;
                } else if let Some(v) = args[i].strip_prefix(&format!("{flag}=")) {
                    let mounted = add_file(v, &mut files)?;
                    args[i] = format!("{flag}={mounted}");
                }
                i += 1;
            }
        }
        for i in 0..args.len() {
            if args[i] == "--body" && i + 1 < args.len() {
                if let Some(f) = args[i + 1].strip_prefix('@') {
                    args[i + 1] = format!("@{}", add_file(f, &mut files)?);
                }
            }
        }
        let target = sub
            .get_one::<String>("target")
            .cloned()
            .unwrap_or_else(|| "the targets file's URLs".into());
        notes.push(format!(
            "WARNING: the Job's {shards} pods send load to {target}, as you named it: give the address the pods reach (a Service's URL in the cluster), never 127.0.0.1 (in a pod that is the pod itself)"
        ));
        if sub.get_one::<String>("start_at").is_none() {
            let margin = job_flag(job, "--start-margin")?
                .unwrap_or_else(|| DEFAULT_START_MARGIN.to_string());
            let ns = crate::routing::duration::parse_duration(&margin)
                .ok()
                .filter(|ns| *ns > 0)
                .with_context(|| {
                    format!("--start-margin {margin:?}: allowed: a positive Go duration such as 2m")
                })?;
            let at =
                crate::calibrate::timestamp::format_instant((now_unix_s + ns as f64 / 1e9).ceil());
            notes.push(format!(
                "load shards start together at --start-at {at} (now + {margin}): apply the Job before then; a pod that starts later than 1 s after it fails (print the Job again)"
            ));
            args.push("--start-at".into());
            args.push(at);
        }
    } else {
        let scenario = sub
            .get_one::<std::path::PathBuf>("scenario")
            .context("the scenario argument")?
            .to_string_lossy()
            .into_owned();
        stem = Path::new(&scenario)
            .file_stem()
            .map_or(scenario.clone(), |s| s.to_string_lossy().into_owned());
        if Path::new(&scenario).is_file() {
            let mounted = add_file(&scenario, &mut files)?;
            if let Some(a) = args.iter_mut().find(|a| **a == scenario) {
                *a = mounted;
            }
            notes.push(format!(
                "the scenario {scenario} is in the ConfigMap; files it names (traces, manifests) are not: use a self-contained scenario"
            ));
        } else {
            notes.push(format!(
                "{scenario} is not a file here: the pods look it up as a shipped scenario"
            ));
        }
    }
    let cpu = sub
        .try_get_one::<usize>("jobs")
        .ok()
        .flatten()
        .copied()
        .unwrap_or(1)
        .max(1);
    args.extend(
        ["--shards", &shards.to_string(), "--emit", "jsonl"]
            .into_iter()
            .map(String::from),
    );
    let pod_args: Vec<String> = std::iter::once(command.to_string()).chain(args).collect();
    // What each pod will parse, parsed here.
    super::Cli::command()
        .try_get_matches_from(std::iter::once("splitlab".to_string()).chain(pod_args.clone()))
        .map_err(|e| anyhow::anyhow!("the pods' command line: {}", e.render()))?;
    let name = match job_flag(job, "--name")? {
        Some(n) => {
            if dns_label(&n) != n || n.is_empty() {
                bail!("--name {n:?}: allowed: lower-case letters, digits and '-', at most 50 characters, starting and ending with a letter or digit");
            }
            n
        }
        None if command == "load" => "splitlab-load".to_string(),
        None => dns_label(&format!("splitlab-{command}-{stem}")),
    };
    let namespace = job_flag(job, "--namespace")?.unwrap_or_else(|| "default".into());
    if dns_label(&namespace) != namespace {
        bail!(
            "--namespace {namespace:?}: not a namespace name (lower-case letters, digits and '-')"
        );
    }
    Ok((
        JobSpec {
            command: command.to_string(),
            name,
            namespace,
            image: job_flag(job, "--image")?.unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
            shards,
            parallelism,
            pod_args,
            files,
            cpu,
        },
        notes,
    ))
}

/// The most shards: an Indexed Job's completions are limited to 100,000.
pub const MAX_SHARDS: usize = 100_000;

/// The ConfigMap (when there are files) and the Job.
pub fn objects(spec: &JobSpec) -> Vec<Value> {
    let labels = json!({
        "app.kubernetes.io/name": "splitlab",
        "app.kubernetes.io/component": spec.command,
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "splitlab",
    });
    let config_map = format!("{}-input", spec.name);
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": {}})];
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    let mut out = Vec::new();
    if !spec.files.is_empty() {
        out.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map, "namespace": spec.namespace, "labels": labels},
            "data": spec.files,
        }));
        volumes.push(json!({"name": "input", "configMap": {"name": config_map}}));
        mounts.push(json!({"name": "input", "mountPath": INPUT_DIR, "readOnly": true}));
    }
    // A sweep's memory grows with its runs at once; a load pod's with its requests in flight.
    let memory_request = format!("{}Mi", 256 * spec.cpu);
    let memory_limit = format!("{}Gi", spec.cpu);
    out.push(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.shards,
            "parallelism": spec.parallelism,
            // Per-index retries (beta and on by default since 1.29, GA in 1.33): a failed
            // shard is retried alone, and the Job fails as soon as one index is out of retries
            // (every shard is needed for the merge).
            "backoffLimitPerIndex": BACKOFF_LIMIT_PER_INDEX,
            "maxFailedIndexes": 0,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": NONROOT_UID,
                        "runAsGroup": NONROOT_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "splitlab",
                        "image": spec.image,
                        "args": spec.pod_args,
                        "workingDir": "/tmp",
                        "resources": {
                            "requests": {"cpu": spec.cpu.to_string(), "memory": memory_request},
                            "limits": {"cpu": spec.cpu.to_string(), "memory": memory_limit},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "runAsUser": NONROOT_UID,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }));
    out
}

/// The objects as YAML documents separated by `---`.
fn to_yaml(objects: &[Value]) -> anyhow::Result<String> {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(o).context("cannot write the manifest as YAML")?);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(text)
}

/// The commands that apply the Job, wait for it, collect each index's shard from its
/// succeeded pod's log and merge them.
pub fn collect_commands(spec: &JobSpec) -> String {
    let (ns, name, n) = (&spec.namespace, &spec.name, spec.shards);
    format!(
        "# run, collect and merge ({n} shards):\n\
         kubectl apply -f job.yaml\n\
         kubectl -n {ns} wait --for=condition=complete --timeout=24h job/{name}\n\
         for i in $(seq 0 {last}); do\n\
         \x20 pod=$(kubectl -n {ns} get pods -l batch.kubernetes.io/job-name={name},batch.kubernetes.io/job-completion-index=$i --field-selector=status.phase=Succeeded -o name | head -n 1)\n\
         \x20 kubectl -n {ns} logs \"$pod\" | grep '^{{' > shard-$i.jsonl\n\
         done\n\
         splitlab merge shard-*.jsonl --out out/{name}",
        last = n - 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn own_flags_are_taken_out_of_the_commands_arguments() {
        // (args, the command's args, this command's flags, or part of the error)
        type Case<'a> = (
            &'a str,
            Result<(&'a str, &'a [(&'a str, &'a str)]), &'a str>,
        );
        let cases: [Case; 5] = [
            ("s.yaml --seeds 3", Ok(("s.yaml --seeds 3", &[]))), // none of ours
            (
                "s.yaml --shards 4 --seeds 3",
                Ok(("s.yaml --seeds 3", &[("--shards", "4")])),
            ), // among them
            (
                "s.yaml --image=r/i:1 --namespace perf",
                Ok(("s.yaml", &[("--image", "r/i:1"), ("--namespace", "perf")])),
            ), // both forms
            ("s.yaml --shards", Err("needs a value")),           // the last word
            ("--shards 2 s.yaml --shards=3", Err("given twice")), // twice
        ];
        for (args, want) in cases {
            match (split_own_flags(&words(args)), want) {
                (Ok((rest, own)), Ok((r, o))) => {
                    assert_eq!(rest, words(r), "{args}");
                    let o: BTreeMap<String, String> = o
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(own, o, "{args}");
                }
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{args}: {e}"),
                (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names_become_dns_labels_and_file_names_configmap_keys() {
        // (text, DNS-1123 label)
        let labels = [
            (
                "splitlab-compare-canary-rollout",
                "splitlab-compare-canary-rollout",
            ), // already one
            (
                "splitlab-plan-Flagger_Bad.Canary",
                "splitlab-plan-flagger-bad-canary",
            ), // case, _ and .
            ("--x--", "x"),                     // no leading or trailing '-'
            (&"a".repeat(80), &"a".repeat(50)), // room for suffixes
        ];
        for (text, want) in labels {
            assert_eq!(dns_label(text), want, "{text}");
        }
        // (path, key)
        let keys = [
            ("scenarios/canary-rollout.yaml", "canary-rollout.yaml"), // the file name
            ("/tmp/my targets (1).yaml", "my_targets__1_.yaml"),      // outside [-._a-zA-Z0-9]
        ];
        for (path, want) in keys {
            assert_eq!(file_key(Path::new(path)), want, "{path}");
        }
    }
}
