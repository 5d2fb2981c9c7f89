//! What the operator's own Knative configuration contributes to a scenario: the Service (and
//! Revisions) of `service.manifest`, the ConfigMaps of `cluster.configmaps`, and each revision's
//! autoscaling annotations merged with `revisions[].autoscaling`.
//!
//! Precedence, lowest first: Knative's defaults; the ConfigMaps (the cluster's defaults); the
//! manifest (a Revision object's own settings, else the Service template's); the scenario's
//! explicit keys (`autoscaler:`, `revisions[]`, `service:`); `--set`, which edits those keys.

use std::collections::BTreeMap;

use super::{Cx, RevisionFile, ScenarioError};
use crate::routing::field_error::{FieldError, FieldErrorExt};
use crate::scenario::autoscaling::{
    read_annotations, spellings, validate_annotations, validate_has_no_autoscaling_annotation,
    ClusterAutoscaling, GROUP,
};
use crate::scenario::configmap::{read_configmaps, ClusterConfig};
use crate::scenario::manifest::{load_manifests, Manifest, ManifestKind, RevisionSettings};
use crate::scenario::spec::RevisionAutoscaling;

/// What `service.manifest` contributes.
pub(super) struct ManifestInfo {
    /// The file's name as shown in messages.
    pub display: String,
    /// The Service chosen.
    pub manifest: Manifest,
    /// Revision objects of the file, by name.
    pub revisions: BTreeMap<String, Manifest>,
}

impl ManifestInfo {
    /// The settings revision `name` runs with, and the manifest object holding them (for
    /// positions): its own Revision object's, else the Service template's.
    pub fn settings_for(&self, name: &str) -> Option<(&RevisionSettings, &Manifest)> {
        if let Some(m) = self.revisions.get(name) {
            return m.revision.as_ref().map(|s| (s, m));
        }
        self.manifest.revision.as_ref().map(|s| (s, &self.manifest))
    }

    /// An error at Knative path `path` of the object `m`.
    pub fn err(&self, m: &Manifest, path: &str, message: String) -> ScenarioError {
        ScenarioError::in_file(
            &self.display,
            Some(m.positions.of_path(path)),
            path,
            message,
        )
    }
}

/// Reads `service.manifest`: the Service named `wanted` (or the only one), the Revisions of that
/// Service, and Knative's metadata checks on the Service.
pub(super) fn load_manifest(
    cx: &Cx,
    rel: &str,
    wanted: Option<&str>,
) -> Result<ManifestInfo, ScenarioError> {
    let text = cx.read("service.manifest", rel)?;
    let display = cx.display_name(rel);
    let manifests = load_manifests(&display, &text)?;
    let services: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| m.kind == ManifestKind::Service)
        .collect();
    let names = || {
        services
            .iter()
            .map(|m| m.meta.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match (wanted, services.as_slice()) {
        (_, []) => {
            return Err(cx.err(
                "service.manifest",
                format!("{display} holds no Knative Service; allowed: a serving.knative.dev/v1 Service manifest"),
            ))
        }
        (Some(name), _) => match services.iter().find(|m| m.meta.name == name) {
            Some(m) => *m,
            None if services.len() == 1 => services[0],
            None => {
                return Err(cx.err(
                    "service.name",
                    format!(
                        "{display} holds no Service named {name:?}; allowed: one of {}",
                        names()
                    ),
                ))
            }
        },
        (None, [one]) => *one,
        (None, _) => {
            return Err(cx.err(
                "service.manifest",
                format!(
                    "{display} holds several Services ({}); allowed: choose one with service.name",
                    names()
                ),
            ))
        }
    };
    let manifest = chosen.clone();
    // A Revision belongs to the Service its `serving.knative.dev/service` label names; one
    // without the label (hand-written) is taken as the chosen Service's.
    let revisions = manifests
        .iter()
        .filter(|m| m.kind == ManifestKind::Revision)
        .filter(|m| {
            m.meta
                .labels
                .get("serving.knative.dev/service")
                .is_none_or(|s| *s == manifest.meta.name)
        })
        .map(|m| (m.meta.name.clone(), m.clone()))
        .collect();
    let info = ManifestInfo {
        display,
        manifest,
        revisions,
    };
    // metadata_validation.go:78-89 (service_validation.go:34): the Service's own metadata may
    // not carry autoscaling annotations.
    if let Some(e) = validate_has_no_autoscaling_annotation(&info.manifest.meta.annotations)
        .via_field("annotations")
        .via_field("metadata")
    {
        // Point at the first such annotation's value.
        let key = info
            .manifest
            .meta
            .annotations
            .keys()
            .find(|k| k.starts_with(GROUP))
            .map_or_else(
                || "metadata.annotations".to_string(),
                |k| format!("metadata.annotations.{k}"),
            );
        return Err(info.err(&info.manifest, &key, e.to_string()));
    }
    Ok(info)
}

/// Reads `cluster.configmaps`.
pub(super) fn load_configmaps(cx: &Cx, files: &[String]) -> Result<ClusterConfig, ScenarioError> {
    let texts = files
        .iter()
        .enumerate()
        .map(|(i, rel)| {
            cx.read(&format!("cluster.configmaps[{i}]"), rel)
                .map(|text| (cx.display_name(rel), text))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(read_configmaps(&texts)?)
}

/// A revision's autoscaling settings: the manifest's annotations (its Revision object's, else
/// the template's), with the scenario's `revisions[i].autoscaling` keys (and the older
/// `min_scale`, `max_scale`, `initial_scale`) replacing them key by key; the merged map is
/// validated as Knative's webhook validates a revision's annotations.
pub(super) fn revision_autoscaling(
    cx: &Cx,
    i: usize,
    r: &RevisionFile,
    manifest: Option<&ManifestInfo>,
    cluster: &ClusterAutoscaling,
    warnings: &mut Vec<String>,
) -> Result<RevisionAutoscaling, ScenarioError> {
    let path = format!("revisions[{i}]");
    let settings = manifest.and_then(|m| m.settings_for(&r.name));
    let mut anns: BTreeMap<String, String> = settings
        .map(|(s, _)| s.annotations.clone())
        .unwrap_or_default();
    // Knative annotation key -> the scenario path that set it.
    let mut from_scenario: BTreeMap<String, String> = BTreeMap::new();
    let mut entries: Vec<(&str, String, String)> = r
        .autoscaling
        .as_ref()
        .map(|a| {
            a.entries()
                .into_iter()
                .map(|(k, v)| (k, v.to_string(), format!("{path}.autoscaling.{k}")))
                .collect()
        })
        .unwrap_or_default();
    let legacy = [
        ("min-scale", "min_scale", r.min_scale),
        ("max-scale", "max_scale", r.max_scale),
        ("initial-scale", "initial_scale", r.initial_scale),
    ];
    for (knative, field, value) in legacy {
        let Some(v) = value else { continue };
        if entries.iter().any(|(k, _, _)| *k == knative) {
            return Err(cx.err(
                &format!("{path}.{field}"),
                format!("{field} and autoscaling.{knative} are both set; allowed: one of them"),
            ));
        }
        entries.push((knative, v.to_string(), format!("{path}.{field}")));
    }
    for (short, value, at) in entries {
        for spelling in spellings(short) {
            anns.remove(*spelling);
        }
        let key = format!("{GROUP}/{short}");
        anns.insert(key.clone(), value);
        from_scenario.insert(key, at);
    }
    if let Some(e) = validate_annotations(cluster, &anns) {
        return Err(annotation_error(
            cx,
            &e,
            &from_scenario,
            settings,
            manifest,
            &path,
        ));
    }
    let who = format!("revision {}", r.name);
    let (a, w) = read_annotations(cluster, &anns, &who);
    warnings.extend(w);
    Ok(a)
}

/// Knative's errors about a revision's merged annotations, each at the value that caused it:
/// in the scenario when the scenario set it, else in the manifest.
fn annotation_error(
    cx: &Cx,
    e: &FieldError,
    from_scenario: &BTreeMap<String, String>,
    settings: Option<(&RevisionSettings, &Manifest)>,
    manifest: Option<&ManifestInfo>,
    path: &str,
) -> ScenarioError {
    let locate = |key_path: &str, leaf: &FieldError| -> ScenarioError {
        // Knative appends details to some paths (`...initial-scale must be greater than 0`).
        let scenario = from_scenario
            .iter()
            .filter(|(k, _)| key_path.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len());
        match (scenario, settings, manifest) {
            (Some((_, at)), _, _) => cx.err(at, leaf.to_string()),
            (None, Some((s, m)), Some(info)) => {
                let full = leaf.via_field(&s.path("metadata.annotations"));
                let full_path = full.paths.first().cloned().unwrap_or_default();
                info.err(m, &full_path, full.to_string())
            }
            _ => cx.err(&format!("{path}.autoscaling"), leaf.to_string()),
        }
    };
    let mut errors = e
        .merged()
        .into_iter()
        .map(|leaf| locate(leaf.paths.first().map_or("", String::as_str), &leaf));
    let mut first = errors
        .next()
        .unwrap_or_else(|| cx.err(&format!("{path}.autoscaling"), e.to_string()));
    first.related = errors.collect();
    first
}

#[cfg(test)]
mod tests {
    use crate::model::autoscaler::ScalingMetric;
    use crate::model::time::SimDuration;
    use crate::scenario::load::load_scenario;
    use crate::scenario::Scenario;

    /// A Service with template annotations, and the older Revision it pins with its own.
    const LIST: &str = "\
apiVersion: v1
kind: List
items:
- apiVersion: serving.knative.dev/v1
  kind: Service
  metadata:
    name: shop
    uid: 1234
    resourceVersion: \"99\"
    managedFields: [{manager: kubectl, operation: Update}]
  spec:
    template:
      metadata:
        annotations:
          autoscaling.knative.dev/min-scale: \"2\"
          autoscaling.knative.dev/max-scale: \"40\"
          autoscaling.knative.dev/target: \"50\"
      spec:
        timeoutSeconds: 400
        containers: [{image: shop}]
    traffic:
    - {revisionName: shop-00001, percent: 50}
    - {latestRevision: true, percent: 50}
  status:
    latestReadyRevisionName: shop-00002
- apiVersion: serving.knative.dev/v1
  kind: Revision
  metadata:
    name: shop-00001
    labels: {serving.knative.dev/service: shop}
    annotations:
      autoscaling.knative.dev/maxScale: \"10\"
  spec:
    containerConcurrency: 4
    timeoutSeconds: 30
    containers: [{image: shop}]
";

    const SCENARIO: &str = "\
name: m
duration: 30s
service:
  manifest: list.yaml
revisions:
  - name: shop-00001
    service_time: {constant: 10ms}
  - name: shop-00002
    service_time: {constant: 10ms}
arrivals:
  poisson: {rate: 10}
";

    fn load(
        files: &[(&str, &str)],
        scenario: &str,
        sets: &[(&str, &str)],
    ) -> Result<Scenario, String> {
        let resolve = |rel: &str| {
            files
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, t)| t.to_string())
                .ok_or_else(|| "no such file".to_string())
        };
        let sets: Vec<(String, String)> = sets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_scenario("s.yaml", scenario, &sets, &resolve).map_err(|e| e.to_string())
    }

    #[test]
    fn template_and_revision_annotations_apply_per_revision() {
        let s = load(&[("list.yaml", LIST)], SCENARIO, &[]).expect("valid");
        let old = &s.revisions[0];
        let new = &s.revisions[1];
        // shop-00001 has its own Revision object: its annotations and spec, not the template's.
        assert_eq!(
            (old.autoscaling.min_scale, old.autoscaling.max_scale),
            (None, Some(10))
        );
        assert_eq!(old.container_concurrency, 4);
        assert_eq!(old.timeout, SimDuration::from_secs(30));
        // shop-00002 comes from the template.
        assert_eq!(new.autoscaling.min_scale, Some(2));
        assert_eq!(new.autoscaling.max_scale, Some(40));
        assert_eq!(new.autoscaling.target, Some(50.0));
        // revision_defaults.go:66-72: timeoutSeconds 400 gets the 300 s response-start default.
        assert_eq!(new.timeout, SimDuration::from_secs(400));
        assert_eq!(
            new.response_start_timeout,
            Some(SimDuration::from_secs(300))
        );
        assert_eq!(new.request_deadline(), SimDuration::from_secs(300));
        // 30 s is below the default: no separate response-start timeout.
        assert_eq!(old.response_start_timeout, None);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn scenario_keys_override_the_manifest_key_by_key() {
        let s = load(
            &[("list.yaml", LIST)],
            SCENARIO,
            &[
                ("revisions.1.autoscaling", "{max-scale: 8, metric: rps}"),
                ("revisions.0.min_scale", "3"),
            ],
        )
        .expect("valid");
        let new = &s.revisions[1].autoscaling;
        assert_eq!((new.min_scale, new.max_scale), (Some(2), Some(8)));
        assert_eq!(new.metric, Some(ScalingMetric::Rps));
        // The older key and the legacy spelling in the manifest are one annotation.
        let old = &s.revisions[0].autoscaling;
        assert_eq!((old.min_scale, old.max_scale), (Some(3), Some(10)));
    }

    #[test]
    fn knative_messages_point_at_the_value() {
        // (manifest, --set overrides, expected start of the error)
        type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            // a bad template annotation, at its value in the List (annotation_validation.go:42)
            (LIST.replace("min-scale: \"2\"", "min-scale: \"-2\""), &[], "list.yaml:15:46: spec.template.metadata.annotations.autoscaling.knative.dev/min-scale: expected 0 <= -2 <= 2147483647: spec.template.metadata.annotations.autoscaling.knative.dev/min-scale"),
            // a Revision's own annotation (annotation_validation.go:183-188, both paths)
            (LIST.replace("maxScale: \"10\"", "maxScale: \"1\"\n      autoscaling.knative.dev/min-scale: \"3\""), &[], "list.yaml:32:7: metadata.annotations.autoscaling.knative.dev/max-scale: max-scale=1 is less than min-scale=3: metadata.annotations.autoscaling.knative.dev/max-scale, metadata.annotations.autoscaling.knative.dev/min-scale"),
            // the scenario's value, at the scenario's key (annotation_validation.go:169-170)
            (LIST.to_string(), &[("revisions.1.autoscaling.window", "5s")], "s.yaml: --set revisions.1.autoscaling.window=5s: expected 6s <= 5s <= 1h0m0s: autoscaling.knative.dev/window"),
            // a merged conflict: the scenario's max-scale below the template's min-scale
            (LIST.to_string(), &[("revisions.1.autoscaling.max-scale", "1")], "s.yaml: --set revisions.1.autoscaling.max-scale=1: max-scale=1 is less than min-scale=2"),
            // timeoutSeconds above max-revision-timeout-seconds (revision_validation.go:174-184)
            (LIST.replace("timeoutSeconds: 400", "timeoutSeconds: 900"), &[], "list.yaml:19:25: spec.template.spec.timeoutSeconds: expected 0 <= 900 <= 600: spec.template.spec.timeoutSeconds"),
            // autoscaling annotations on the Service's own metadata (metadata_validation.go:78-89)
            (LIST.replace("    uid: 1234\n", "    uid: 1234\n    annotations: {autoscaling.knative.dev/min-scale: \"1\"}\n"), &[], "list.yaml:9:54: metadata.annotations.autoscaling.knative.dev/min-scale: invalid key name \"autoscaling.knative.dev/min-scale\": metadata.annotations\nautoscaling annotations must be put under"),
            // the older and the Knative spelling of one setting in the scenario
            (LIST.to_string(), &[("revisions.0.min_scale", "1"), ("revisions.0.autoscaling", "{min-scale: 2}")], "min_scale and autoscaling.min-scale are both set"),
            // a scenario timeout above the cluster's maximum
            (LIST.to_string(), &[("revisions.0.timeout", "11m")], "11m is out of range; allowed: 1s to 600s (config-defaults max-revision-timeout-seconds)"),
        ];
        for (manifest, sets, want) in cases {
            let err = load(&[("list.yaml", manifest)], SCENARIO, sets).expect_err(want);
            assert!(
                err.starts_with(want) || err.contains(want),
                "{err}\nwant: {want}"
            );
        }
    }

    #[test]
    fn several_services_are_chosen_by_name() {
        let two = format!(
            "{LIST}---\napiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {{name: other}}\nspec: {{}}\n"
        );
        let err = load(&[("list.yaml", &two)], SCENARIO, &[]).expect_err("ambiguous");
        assert!(
            err.contains(
                "holds several Services (shop, other); allowed: choose one with service.name"
            ),
            "{err}"
        );
        let s = load(
            &[("list.yaml", &two)],
            SCENARIO,
            &[("service.name", "shop")],
        )
        .expect("chosen");
        assert_eq!(s.revisions[1].autoscaling.min_scale, Some(2));
        let err = load(
            &[("list.yaml", &two)],
            SCENARIO,
            &[("service.name", "nope")],
        )
        .expect_err("unknown");
        assert!(
            err.contains("holds no Service named \"nope\"; allowed: one of shop, other"),
            "{err}"
        );
    }

    const CONFIGMAPS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: config-autoscaler, namespace: knative-serving}
data:
  stable-window: \"30s\"
  initial-scale: \"3\"
  max-scale-limit: \"20\"
  max-scale: \"20\"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-defaults, namespace: knative-serving}
data:
  max-revision-timeout-seconds: \"900\"
  revision-timeout-seconds: \"100\"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config-network, namespace: knative-serving}
data:
  rollout-duration: \"45\"
";

    #[test]
    fn configmaps_are_the_cluster_defaults_and_the_scenario_wins() {
        let sc = format!("{SCENARIO}cluster:\n  configmaps: [cm.yaml]\n");
        let files = [
            (
                "list.yaml",
                LIST.replace("max-scale: \"40\"", "max-scale: \"20\""),
            ),
            ("cm.yaml", CONFIGMAPS.to_string()),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
        let s = load(&files, &sc, &[]).expect("valid");
        assert_eq!(
            s.autoscaler.config.stable_window,
            SimDuration::from_secs(30)
        );
        assert_eq!(s.autoscaler.config.initial_scale, 3);
        assert_eq!(s.service.rollout_duration_secs, 45);
        // config-defaults raises the maximum: 900 s is allowed, and the default timeout is 100 s
        // for revisions that set none (here both set one).
        let s = load(&files, &sc, &[("revisions.0.timeout", "15m")]).expect("valid");
        assert_eq!(s.revisions[0].timeout, SimDuration::from_secs(900));
        // The template's max-scale 40 is above the cluster's max-scale-limit 20.
        let files2 = [("list.yaml", LIST), ("cm.yaml", CONFIGMAPS)];
        let err = load(&files2, &sc, &[]).expect_err("limit");
        assert!(err.contains("expected 1 <= 40 <= 20: spec.template.metadata.annotations.autoscaling.knative.dev/max-scale"), "{err}");
        // An explicit scenario key wins over the ConfigMap, with a warning.
        let s = load(&files, &sc, &[("autoscaler.stable_window", "10s")]).expect("valid");
        assert_eq!(
            s.autoscaler.config.stable_window,
            SimDuration::from_secs(10)
        );
        assert!(
            s.warnings.iter().any(|w| w.contains(
                "autoscaler.stable_window overrides config-autoscaler stable-window from cm.yaml"
            )),
            "{:?}",
            s.warnings
        );
        // A bad ConfigMap value: Knative's message at the value.
        let bad = CONFIGMAPS.replace("\"30s\"", "\"30\"");
        let err = load(&[("list.yaml", LIST), ("cm.yaml", &bad)], &sc, &[]).expect_err("bad");
        assert!(err.starts_with("cm.yaml:5:18: data.stable-window: config-autoscaler: failed to parse data: failed to parse \"stable-window\": time: missing unit in duration \"30\""), "{err}");
    }

    #[test]
    fn settings_without_effect_are_warnings() {
        let sc = format!("{SCENARIO}timeline:\n  - {{at: 20s, create_revision: shop-00002}}\n")
            .replace(
                "manifest: list.yaml",
                "manifest: list.yaml\n  rollout_duration: 60s",
            )
            .replace(
                "  - name: shop-00002\n",
                "  - name: shop-00002\n    pods: 30\n",
            );
        let s = load(&[("list.yaml", LIST)], &sc, &[]).expect("valid");
        let w = s.warnings.join("\n");
        assert!(w.contains("revisions[1].pods=30 has no effect: with the autoscaler on, shop-00002 (created at 20s) starts at its initial scale, 2 pod(s)"), "{w}");
        assert!(w.contains("the rollout to shop-00002 (created at 20s) takes 60s, longer than the 10s left in the run"), "{w}");
        // With the autoscaler off the pods are used; no rollout: the duration has no effect.
        let s = load(
            &[("list.yaml", LIST)],
            SCENARIO,
            &[
                ("autoscaler.enabled", "false"),
                ("service.rollout_duration", "60s"),
            ],
        )
        .expect("valid");
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("no timeline event creates a revision"),
            "{:?}",
            s.warnings
        );
        // A scripted scale with the autoscaler on, a header share without header routing, a
        // Revision object the scenario does not run.
        let stray = format!(
            "{LIST}---\napiVersion: serving.knative.dev/v1\nkind: Revision\nmetadata: {{name: shop-00009}}\n"
        );
        let sc = format!(
            "{SCENARIO}timeline:\n  - {{at: 5s, scale: {{revision: shop-00001, pods: 4}}}}\n"
        )
        .replace(
            "  poisson: {rate: 10}\n",
            "  poisson: {rate: 10}\n  headers: {x: 0.1}\n",
        );
        let sc = sc.replace("arrivals:", "traffic: [{revisionName: shop-00001, percent: 90}, {latestRevision: true, percent: 10, tag: x}]\narrivals:");
        let s = load(&[("list.yaml", &stray)], &sc, &[]).expect("valid");
        let w = s.warnings.join("\n");
        assert!(w.contains("timeline[0].scale (shop-00001 to 4 pods) lasts only until the autoscaler's next tick"), "{w}");
        assert!(
            w.contains("arrivals.headers has no effect: tag-header-based routing is off"),
            "{w}"
        );
        assert!(
            w.contains("list.yaml: Revision shop-00009 is not one of the scenario's revisions"),
            "{w}"
        );
    }
}
