//! `splitlab k8s job`: the printed ConfigMap and Indexed Job are valid Kubernetes objects (parsed
//! into k8s-openapi's `ConfigMap` and `Job`, and serialized back to the same JSON, so no field is
//! unknown or misspelled), in YAML and in JSON; the refusals; and the Job emulated locally: one
//! process per completion index running the pod's command line with `JOB_COMPLETION_INDEX`, its
//! stdout collected as the shard, then `splitlab merge`, against a single-process run (the same
//! bytes for compare and plan; for load the counts and exact percentiles of all requests).
//! Load traffic goes only to a 127.0.0.1 backend; every run is bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use crate::common::{assert_clear_error, merge, splitlab, temp_dir, text, SMALL_PLAN};
use crate::live::{count, one_live_run_at_a_time, start_backend_saying, summary};

fn k8s_job(args: &[&str]) -> std::process::Output {
    let mut all = vec!["k8s", "job"];
    all.extend(args);
    splitlab(&all)
}

/// `T` parsed from `v`, after checking that serializing it gives `v` back: k8s-openapi ignores
/// unknown fields, so a misspelled one would otherwise pass.
fn api_object<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value, what: &str) -> T {
    let t: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what} is not a valid object: {e}\n{v:#}"));
    let back = serde_json::to_value(&t).expect("serializes");
    assert_eq!(
        &back, v,
        "{what}: fields the API type does not know (misspelled?) were dropped"
    );
    t
}

/// The printed objects: YAML documents, or a JSON v1 List's items.
fn printed_objects(out: &std::process::Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    if stdout.starts_with('{') {
        let list: Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(list["kind"], "List");
        list["items"].as_array().expect("items").clone()
    } else {
        serde_saphyr::from_multiple::<Value>(&stdout).expect("YAML documents")
    }
}

/// The ConfigMap (if any) and the Job, validated.
fn validated(objects: &[Value]) -> (Option<ConfigMap>, Job) {
    match objects {
        [job] => (None, api_object(job, "the Job")),
        [cm, job] => (
            Some(api_object(cm, "the ConfigMap")),
            api_object(job, "the Job"),
        ),
        other => panic!("expected a ConfigMap and a Job, got {other:#?}"),
    }
}

const COMPARE: [&str; 7] = [
    "compare",
    "scenarios/canary-rollout.yaml",
    "--set",
    "duration=60s",
    "--set",
    "service.rollout_duration=10s,0s",
    "--seeds=2",
];

#[test]
fn the_printed_job_and_configmap_are_valid_kubernetes_objects() {
    for output in ["yaml", "json"] {
        let mut args = COMPARE.to_vec();
        args.extend([
            "--shards",
            "3",
            "--parallelism",
            "2",
            "--image",
            "registry.example/splitlab:1",
            "--namespace",
            "perf",
            "--output",
            output,
        ]);
        let out = k8s_job(&args);
        let objects = printed_objects(&out);
        let (cm, job) = validated(&objects);
        let cm = cm.expect("the scenario's ConfigMap");
        let scenario = std::fs::read_to_string("scenarios/canary-rollout.yaml").unwrap();
        let data = cm.data.expect("data");
        assert_eq!(data.get("canary-rollout.yaml"), Some(&scenario));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("perf"));
        let spec = job.spec.expect("spec");
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!(spec.completions, Some(3));
        assert_eq!(spec.parallelism, Some(2));
        assert_eq!(spec.backoff_limit_per_index, Some(2));
        assert_eq!(spec.max_failed_indexes, Some(0));
        assert!(spec.ttl_seconds_after_finished.is_some());
        let pod = spec.template.spec.expect("pod spec");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let psc = pod.security_context.expect("pod securityContext");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(65532));
        assert_eq!(
            psc.seccomp_profile.map(|p| p.type_),
            Some("RuntimeDefault".to_string())
        );
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/splitlab:1"));
        let sc = c
            .security_context
            .clone()
            .expect("container securityContext");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
        let limits = c.resources.clone().and_then(|r| r.limits).expect("limits");
        assert_eq!(limits["cpu"].0, "1");
        // The pod runs the same command on the mounted scenario, as shard $JOB_COMPLETION_INDEX.
        let pod_args = c.args.clone().expect("args");
        assert_eq!(
            pod_args,
            [
                "compare",
                "/scenario/canary-rollout.yaml",
                "--set",
                "duration=60s",
                "--set",
                "service.rollout_duration=10s,0s",
                "--seeds=2",
                "--shards",
                "3",
                "--emit",
                "jsonl"
            ]
        );
        let cm_name = cm.metadata.name.expect("name");
        let volumes = pod.volumes.expect("volumes");
        assert!(volumes
            .iter()
            .any(|v| v.config_map.as_ref().map(|c| c.name.as_str()) == Some(cm_name.as_str())));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("kubectl apply -f job.yaml"), "{stderr}");
        assert!(
            stderr.contains("batch.kubernetes.io/job-completion-index=$i"),
            "{stderr}"
        );
        assert!(stderr.contains("splitlab merge shard-*.jsonl"), "{stderr}");
    }
    // The check refuses a misspelled field (it is what makes the test above able to fail).
    let mut objects = printed_objects(&k8s_job(&[COMPARE[0], COMPARE[1], "--shards", "2"]));
    objects[1]["spec"]["completionMod"] = Value::from("Indexed");
    let refused = std::panic::catch_unwind(|| api_object::<Job>(&objects[1], "a bad Job"));
    assert!(refused.is_err(), "a misspelled field must be refused");
}

#[test]
fn bad_job_requests_are_refused_with_a_clear_error() {
    // (args after `k8s job`, part of the error)
    let cases = [
        // not a sharded command
        (
            "run scenarios/canary-rollout.yaml --shards 2",
            "allowed: compare, plan, load",
        ),
        // how many pods?
        (
            "compare scenarios/canary-rollout.yaml",
            "--shards N is required",
        ),
        // a pod's own index is the Job's to set
        (
            "compare scenarios/canary-rollout.yaml --shards 2 --shard 0/2",
            "the Job sets it",
        ),
        // the command's own error, before any pod runs
        (
            "compare scenarios/canary-rollout.yaml --shards 2 --seedz 3",
            "--seedz",
        ),
        // more pods than shards
        (
            "compare scenarios/canary-rollout.yaml --shards 2 --parallelism 3",
            "allowed: 1 to --shards",
        ),
        // load names its target
        ("load --rate 10 -d 1s --shards 2", "--target"),
        // a check judges the merged run, not a shard
        (
            "load --target http://127.0.0.1:9/ --rate 10 -d 1s --check p99_ms<5 --shards 2",
            "--check: not with --shards",
        ),
    ];
    for (args, fragment) in cases {
        let words: Vec<&str> = args.split_whitespace().collect();
        assert_clear_error(&k8s_job(&words), fragment, args);
    }
}

/// Runs the Job's pods locally: each index's process with `JOB_COMPLETION_INDEX`, the pod's
/// args (the ConfigMap's files written to `dir/input` in place of `/scenario`), its own working
/// directory (the pod's /tmp), its stdout the shard. Returns the shard files and the working
/// directories.
fn emulate(objects: &[Value], dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (cm, job) = validated(objects);
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    for (k, v) in cm.and_then(|c| c.data).unwrap_or_default() {
        std::fs::write(input.join(k), v).unwrap();
    }
    let spec = job.spec.expect("spec");
    let n = spec.completions.expect("completions") as usize;
    let args: Vec<String> = spec.template.spec.expect("pod").containers[0]
        .args
        .clone()
        .expect("args")
        .into_iter()
        .map(|a| a.replace("/scenario/", &format!("{}/", input.display())))
        .collect();
    let children: Vec<_> = (0..n)
        .map(|i| {
            let work = dir.join(format!("pod-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_splitlab"))
                .args(&args)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .current_dir(&work)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("a pod starts");
            (child, work)
        })
        .collect();
    let mut shards = Vec::new();
    let mut works = Vec::new();
    for (i, (child, work)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("a pod ends");
        assert_eq!(out.status.code(), Some(0), "pod {i}: {}", text(&out.stderr));
        let log = text(&out.stdout);
        assert!(
            log.lines().all(|l| l.starts_with('{')),
            "pod {i}: stdout is the shard alone: {log}"
        );
        let file = dir.join(format!("shard-{i}.jsonl"));
        std::fs::write(&file, log).unwrap();
        shards.push(file);
        works.push(work);
    }
    (shards, works)
}

/// `merge` of the shards, given in reverse order (any order merges), which must succeed.
fn merge_all(shards: &[PathBuf], out: &Path) {
    let reversed: Vec<PathBuf> = shards.iter().rev().cloned().collect();
    let o = merge(&reversed, out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn the_indexed_job_emulated_locally_merges_to_a_single_process_run() {
    // (the command line, the files that must be the same bytes)
    let cases: [(&[&str], &[&str]); 1] = [(SMALL_PLAN, &["plan.csv"])];
    for (command, files) in cases {
        let dir = temp_dir(&format!("k8s-emulate-{}", command[0]));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = command.to_vec();
        args.extend(["--shards", "3", "--output", "json"]);
        let objects = printed_objects(&k8s_job(&args));
        let (shards, _) = emulate(&objects, &dir);
        let merged = dir.join("merged");
        merge_all(&shards, &merged);
        let single = dir.join("single");
        let mut one = command.to_vec();
        one.extend(["--out", single.to_str().unwrap()]);
        let o = splitlab(&one);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        for f in files {
            let a = std::fs::read(single.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            let b = std::fs::read(merged.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(
                a == b,
                "{}: {f} differs from a single process's",
                command[0]
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_load_job_emulated_locally_merges_to_the_counts_and_percentiles_of_all_requests() {
    let _live = one_live_run_at_a_time();
    let port = start_backend_saying("Hello v1!\n");
    let target = format!("http://127.0.0.1:{port}/");
    let dir = temp_dir("k8s-emulate-load");
    std::fs::create_dir_all(&dir).unwrap();
    // Each pod writes its --results into its working directory (the pod's /tmp).
    let out = k8s_job(&[
        "load",
        "--target",
        &target,
        "--rate",
        "90",
        "-d",
        "1s",
        "--classify",
        "body:v1=v1",
        "--results",
        "results.jsonl",
        "--shards",
        "3",
        "--start-margin",
        "2s",
        "--output",
        "json",
    ]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("WARNING: the Job's 3 pods send load to"),
        "{stderr}"
    );
    let objects = printed_objects(&out);
    let (shards, works) = emulate(&objects, &dir);
    let merged = dir.join("merged");
    merge_all(&shards, &merged);
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    let (mut sent, mut served) = (0u64, 0u64);
    for w in &works {
        for l in std::fs::read_to_string(w.join("results.jsonl"))
            .unwrap()
            .lines()
        {
            let v: Value = serde_json::from_str(l).unwrap();
            sent += 1;
            if v["outcome"] == "served" {
                served += 1;
                let us = (v["latency_ms"].as_f64().unwrap() * 1000.0).round() as u64;
                all.record(us).unwrap();
            }
        }
    }
    assert!((87..=93).contains(&sent), "{sent} requests, not about 90");
    let s = summary(&merged);
    assert_eq!(count(&s, "arrived"), sent);
    assert_eq!(count(&s, "served"), served);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("histograms.json")).unwrap())
            .unwrap();
    let h = splitlab::report::hdr::from_base64(doc["all"]["histogram"].as_str().unwrap()).unwrap();
    assert_eq!(h.len(), all.len());
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(
            h.value_at_quantile(q),
            all.value_at_quantile(q),
            "quantile {q}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The commands docs/k8s.md and README.md show, verbatim.
const DOC_COMPARE_JOB: &str = "splitlab k8s job compare scenarios/canary-rollout.yaml --set duration=60s --set service.rollout_duration=10s,0s --seeds=2 --shards 3 --image ghcr.io/example/splitlab:0.1.0 > job.yaml";
const DOC_MERGE: &str = "splitlab merge shard-*.jsonl --out out/splitlab-compare-canary-rollout";
const DOC_LOAD_JOB: &str = "splitlab k8s job load --target http://hello.default.svc.cluster.local/ --rate 3000 -d 60s --shards 3 --image ghcr.io/example/splitlab:0.1.0 > load-job.yaml";

/// Runs a shell line in `dir` with the built `splitlab` first on the PATH.
fn sh(line: &str, dir: &Path) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_splitlab")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", line])
        .env("PATH", path)
        .current_dir(dir)
        .output()
        .expect("sh runs")
}

/// docs/k8s.md's example as written: the Job printed into job.yaml, its pods emulated, the
/// printed merge command run on their logs; the merged compare.csv and paired.csv are the
/// bytes one process writes. The load example prints a valid Job with its warning.
#[test]
fn the_k8s_commands_in_the_docs_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/k8s.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for line in [DOC_COMPARE_JOB, DOC_MERGE, DOC_LOAD_JOB] {
        assert!(page.lines().any(|l| l == line), "docs/k8s.md shows {line}");
    }
    assert!(
        readme.lines().any(|l| l == DOC_COMPARE_JOB),
        "README shows {DOC_COMPARE_JOB}"
    );
    let dir = temp_dir("k8s-docs");
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    std::fs::copy(
        root.join("scenarios/canary-rollout.yaml"),
        dir.join("scenarios/canary-rollout.yaml"),
    )
    .unwrap();
    let out = sh(DOC_COMPARE_JOB, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The merge command the docs show is the one printed.
    assert!(
        text(&out.stderr).contains(DOC_MERGE),
        "{}",
        text(&out.stderr)
    );
    let yaml = std::fs::read_to_string(dir.join("job.yaml")).unwrap();
    let objects = serde_saphyr::from_multiple::<Value>(&yaml).expect("YAML documents");
    let (shards, _) = emulate(&objects, &dir);
    assert_eq!(shards.len(), 3);
    let out = sh(DOC_MERGE, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let single = dir.join("single");
    let o = splitlab(&[
        COMPARE[0],
        COMPARE[1],
        COMPARE[2],
        COMPARE[3],
        COMPARE[4],
        COMPARE[5],
        COMPARE[6],
        "--out",
        single.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in ["compare.csv", "paired.csv"] {
        let a = std::fs::read(single.join(f)).unwrap();
        let b = std::fs::read(dir.join("out/splitlab-compare-canary-rollout").join(f))
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(a == b, "{f} differs from a single process's");
    }
    // The load Job: printed, valid, and it says where the pods send.
    let out = sh(DOC_LOAD_JOB, &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "WARNING: the Job's 3 pods send load to http://hello.default.svc.cluster.local/"
        ),
        "{}",
        text(&out.stderr)
    );
    let yaml = std::fs::read_to_string(dir.join("load-job.yaml")).unwrap();
    let objects = serde_saphyr::from_multiple::<Value>(&yaml).expect("YAML documents");
    let (cm, job) = validated(&objects);
    assert!(cm.is_none(), "no input files for a --target load");
    let args = job.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let at = args
        .iter()
        .position(|a| a == "--start-at")
        .expect("--start-at");
    assert!(
        args[at + 1].ends_with('Z'),
        "an absolute RFC 3339 time: {args:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
