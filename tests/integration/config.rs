//! The operator's own configuration: a `kubectl get -o yaml` List with autoscaling annotations
//! and the cluster's ConfigMaps drive `splitlab run`, whose pods obey them; bad annotations and
//! ConfigMaps are refused with Knative's messages at file:line:col.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{assert_clear_error, splitlab, temp_dir, text};

/// autoscaler.csv rows of `revision`: (t_s, desired_pods, ready_pods).
fn pods_of(dir: &Path, revision: &str) -> Vec<(f64, i64, i64)> {
    let csv = std::fs::read_to_string(dir.join("autoscaler.csv")).expect("autoscaler.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let (t, rev, desired, ready) = (
        col("t_s"),
        col("revision"),
        col("desired_pods"),
        col("ready_pods"),
    );
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[rev] == revision)
        .map(|f| {
            (
                f[t].parse().expect("t_s"),
                f[desired].parse().expect("desired_pods"),
                f[ready].parse().expect("ready_pods"),
            )
        })
        .collect()
}

/// The README's `splitlab run scenarios/kubectl-config.yaml`: hello-00002 (the template's
/// min-scale 2, max-scale 40) never drops below 2 ready pods once up and never goes above 40
/// although the surge asks for more; hello-00001 (its own Revision: max-scale 10) stays at or
/// below 10; hello-00003, created from the template at 100 s, keeps its 2 pods; the ConfigMaps'
/// 30 s rollout duration finishes within the run; the unmodelled ConfigMap key is a warning.
#[test]
fn kubectl_list_and_configmaps_drive_the_pods() {
    let dir = temp_dir("config-kubectl");
    let out = splitlab(&[
        "run",
        "scenarios/kubectl-config.yaml",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("config-network keys splitlab does not model, ignored: ingress-class"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("rollout hello: started"), "{stdout}");

    let mut maxima = BTreeMap::new();
    for (revision, min, max) in [
        ("hello-00001", 1, 10),
        ("hello-00002", 2, 40),
        ("hello-00003", 2, 40),
    ] {
        let rows = pods_of(&dir, revision);
        assert!(!rows.is_empty(), "{revision}");
        let up = rows
            .iter()
            .position(|r| r.2 >= min)
            .unwrap_or_else(|| panic!("{revision} never reached {min} ready pods"));
        // desired_pods is the decider's recommendation; the KPA clamps it to the scale bounds
        // (pa_lifecycle.go:88-103), so the ready pods never exceed max-scale.
        for &(t, _, ready) in &rows {
            assert!(
                ready <= max,
                "{revision} at {t}: {ready} ready > max-scale {max}"
            );
        }
        for &(t, _, ready) in &rows[up..] {
            assert!(
                ready >= min,
                "{revision} at {t}: {ready} ready < min-scale {min}"
            );
        }
        let peak_desired = rows.iter().map(|r| r.1).max().unwrap_or(0);
        let peak_ready = rows.iter().map(|r| r.2).max().unwrap_or(0);
        maxima.insert(revision, (peak_desired, peak_ready));
    }
    // The surge asks hello-00002 for more than 40 pods: max-scale binds.
    let (desired, ready) = maxima["hello-00002"];
    assert!(desired > 40 && ready == 40, "{maxima:?}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    crate::common::assert_balanced(&summary);
    let _ = std::fs::remove_dir_all(dir);
}

/// A bad annotation in the List and a bad ConfigMap value: exit 1, Knative's message, and the
/// value's file:line:col.
#[test]
fn bad_annotations_and_configmaps_get_knatives_messages() {
    let dir = temp_dir("config-bad");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list = std::fs::read_to_string("scenarios/knative/hello-list.yaml").expect("fixture");
    let bad_list = dir.join("hello-list.yaml");
    std::fs::write(
        &bad_list,
        list.replace(
            "autoscaling.knative.dev/min-scale: \"2\"",
            "autoscaling.knative.dev/min-scale: \"50\"",
        ),
    )
    .expect("write");
    let cm = std::fs::read_to_string("scenarios/knative/config-autoscaler.yaml").expect("fixture");
    let bad_cm = dir.join("config-autoscaler.yaml");
    std::fs::write(
        &bad_cm,
        cm.replace("stable-window: \"30s\"", "stable-window: \"2s\""),
    )
    .expect("write");
    let cases = [
        (
            format!("service.manifest={}", bad_list.display()),
            "hello-list.yaml:61:46: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale: max-scale=40 is less than min-scale=50: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale, spec.template.metadata.annotations.autoscaling.knative.dev/min-scale"
                .to_string(),
        ),
        (
            format!("cluster.configmaps=[{}]", bad_cm.display()),
            "config-autoscaler.yaml:24:18: data.stable-window: config-autoscaler: stable-window = 2s, must be in [6s; 1h0m0s] range".to_string(),
        ),
    ];
    for (set, fragment) in cases {
        let out = splitlab(&["run", "scenarios/kubectl-config.yaml", "--set", &set]);
        assert_clear_error(&out, &fragment, &set);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The README's `splitlab validate scenarios/knative/hello-list.yaml`: a kubectl List is a
/// manifest file `validate` reads, annotations included.
#[test]
fn validate_reads_kubectl_lists() {
    let out = splitlab(&["validate", "scenarios/knative/hello-list.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: scenarios/knative/hello-list.yaml\n");
    // A bad annotation in a List item: Knative's message at the value.
    let dir = temp_dir("config-validate");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let list = std::fs::read_to_string("scenarios/knative/hello-list.yaml").expect("fixture");
    let bad = dir.join("list.yaml");
    std::fs::write(
        &bad,
        list.replace("max-scale: \"10\"", "max-scale: \"ten\""),
    )
    .expect("write");
    let out = splitlab(&["validate", bad.to_str().expect("utf-8")]);
    assert_clear_error(
        &out,
        "list.yaml:115:42: Revision default/hello-00001: invalid value: ten: metadata.annotations.autoscaling.knative.dev/max-scale",
        "validate",
    );
    // ConfigMaps: Knative's parsing and validation, with the unmodelled keys as warnings.
    let out = splitlab(&[
        "validate",
        "scenarios/knative/config-autoscaler.yaml",
        "scenarios/knative/config-network-features.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: scenarios/knative/config-autoscaler.yaml\nok: scenarios/knative/config-network-features.yaml\n"
    );
    assert!(text(&out.stderr).contains("ingress-class"));
    let cm = std::fs::read_to_string("scenarios/knative/config-defaults.yaml").expect("fixture");
    let bad = dir.join("config-defaults.yaml");
    std::fs::write(&bad, cm.replace("\"120\"", "\"900\"")).expect("write");
    let out = splitlab(&["validate", bad.to_str().expect("utf-8")]);
    assert_clear_error(
        &out,
        "config-defaults.yaml:9:29: data.revision-timeout-seconds: config-defaults: revision-timeout-seconds (900) cannot be greater than max-revision-timeout-seconds (600)",
        "validate ConfigMap",
    );
    let _ = std::fs::remove_dir_all(dir);
}
