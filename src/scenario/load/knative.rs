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
        let leaf = e.merged().into_iter().next().unwrap_or_else(|| e.clone());
        let key = leaf
            .message
            .split('"')
            .nth(1)
            .map(|k| format!("metadata.annotations.{k}"))
            .unwrap_or_else(|| "metadata.annotations".to_string());
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
