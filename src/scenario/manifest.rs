//! Knative `Service`, `Route` and `Revision` manifests (`serving.knative.dev/v1`), as `kubectl
//! apply` would send them or `kubectl get -o yaml` prints them (documents or `kind: List` items,
//! cut by `kube`): the serde mirror, then a `Manifest` that keeps the source position of every
//! traffic target, annotation value and revision spec field, so Knative's validation messages
//! can point at the line that caused them.
//!
//! Only what splitlab reads is typed (metadata, `spec.traffic`, `status.traffic`, the latest
//! revision names, and per revision the annotations, `containerConcurrency`, `timeoutSeconds`
//! and `responseStartTimeoutSeconds` of a Service's `spec.template` or of a Revision); the rest
//! of the template is accepted as-is. A typo in a traffic target or in a Service's `spec` is an
//! error, as with kubectl's strict field validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::kube::read_objects;
use super::yaml::{from_document, Document, ScalarString as Scalar, SourcePos, YamlError};
use crate::routing::{ObjectMeta, TrafficTarget};

/// The API version splitlab understands.
pub const SERVING_API_VERSION: &str = "serving.knative.dev/v1";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestMirror {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    metadata: Spanned<MetadataMirror>,
    #[serde(default)]
    spec: Option<SpecMirror>,
    #[serde(default)]
    status: Option<StatusMirror>,
}

/// A `kind: Revision` (`kubectl get revisions -o yaml`): its own metadata and spec.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionMirror {
    metadata: Spanned<MetadataMirror>,
    #[serde(default)]
    spec: Option<RevisionSpecMirror>,
}

/// Metadata: unknown keys (uid, generation, ...) are what the API server adds; ignore them.
#[derive(Debug, Deserialize)]
struct MetadataMirror {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<Spanned<BTreeMap<String, Spanned<Scalar>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecMirror {
    #[serde(default)]
    template: Option<Spanned<TemplateMirror>>,
    #[serde(default)]
    traffic: Option<Spanned<Vec<Spanned<TrafficTarget>>>>,
}

/// `spec.template`: only what splitlab reads; the pod spec (containers, ...) is ignored.
#[derive(Debug, Default, Deserialize)]
struct TemplateMirror {
    #[serde(default)]
    metadata: Option<TemplateMetaMirror>,
    #[serde(default)]
    spec: Option<RevisionSpecMirror>,
}

#[derive(Debug, Default, Deserialize)]
struct TemplateMetaMirror {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    annotations: Option<Spanned<BTreeMap<String, Spanned<Scalar>>>>,
}

/// A revision spec's fields splitlab models.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionSpecMirror {
    #[serde(default)]
    container_concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    timeout_seconds: Option<Spanned<i64>>,
    #[serde(default)]
    response_start_timeout_seconds: Option<Spanned<i64>>,
}

/// Status: only the fields splitlab reads; the rest (conditions, url, ...) is ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusMirror {
    #[serde(default)]
    traffic: Vec<TrafficTarget>,
    #[serde(default)]
    latest_ready_revision_name: String,
    #[serde(default)]
    latest_created_revision_name: String,
}

/// What a manifest says about the revisions it makes: a Service's `spec.template`, or a
/// Revision's own metadata and spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionSettings {
    /// The template's `metadata.name` (a Service's; often empty) or the Revision's name.
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub container_concurrency: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub response_start_timeout_seconds: Option<i64>,
    /// The Knative path of these settings: `spec.template` for a Service, empty for a Revision.
    pub prefix: String,
}

impl RevisionSettings {
    /// The Knative path of `field` (`metadata.annotations`, `spec.timeoutSeconds`).
    pub fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }
}

/// The kind of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    Service,
    Route,
    Revision,
}

impl ManifestKind {
    pub fn name(self) -> &'static str {
        match self {
            ManifestKind::Service => "Service",
            ManifestKind::Route => "Route",
            ManifestKind::Revision => "Revision",
        }
    }
}

/// Where things are in the source, for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestPositions {
    /// The document's first line.
    pub document: SourcePos,
    pub metadata: SourcePos,
    pub name: Option<SourcePos>,
    pub annotations: Option<SourcePos>,
    /// The `spec.traffic` list.
    pub traffic: Option<SourcePos>,
    /// Each `spec.traffic[i]`.
    pub targets: Vec<SourcePos>,
    /// Other values by Knative path: each annotation value
    /// (`spec.template.metadata.annotations.<key>`, `metadata.annotations.<key>`) and the
    /// revision spec's fields (`spec.template.spec.timeoutSeconds`).
    pub fields: BTreeMap<String, SourcePos>,
}

impl ManifestPositions {
    /// The source position of a Knative field path such as `spec.traffic[1].tag`,
    /// `spec.traffic.tag[1]`, `spec.traffic`, `metadata.name`, or
    /// `metadata.annotations.<key>`: the most specific node recorded.
    pub fn of_path(&self, path: &str) -> SourcePos {
        // The longest recorded path the error's path starts with (Knative appends details to
        // some paths: `...initial-scale must be greater than 0`).
        if let Some(pos) = self
            .fields
            .iter()
            .filter(|(k, _)| path.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
        {
            return pos;
        }
        if let Some(rest) = path.strip_prefix("spec.traffic") {
            // `[i]...` (target-relative) or `.tag[i]` (ErrInvalidArrayValue).
            let index = rest
                .split_once('[')
                .and_then(|(_, after)| after.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok());
            if let Some(pos) = index.and_then(|i| self.targets.get(i)) {
                return *pos;
            }
            return self.traffic.unwrap_or(self.document);
        }
        if path == "metadata.name" {
            return self.name.unwrap_or(self.metadata);
        }
        if path.starts_with("metadata.annotations") {
            return self.annotations.unwrap_or(self.metadata);
        }
        if path.starts_with("metadata") {
            return self.metadata;
        }
        self.document
    }
}

/// A Knative Service or Route read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    pub meta: ObjectMeta,
    /// `spec.traffic` as written (not defaulted); `None` when absent.
    pub spec_traffic: Option<Vec<TrafficTarget>>,
    /// `status.traffic`, when the manifest carries a status (e.g. `kubectl get -o yaml`).
    pub status_traffic: Option<Vec<TrafficTarget>>,
    pub latest_ready_revision: String,
    pub latest_created_revision: String,
    pub positions: ManifestPositions,
    /// 0-based index of the object in its file (documents and List items in order).
    pub document_index: usize,
    /// The revision settings: a Service's template, a Revision's own; `None` for a Route.
    pub revision: Option<RevisionSettings>,
}

impl Manifest {
    /// A short description for messages: `Service default/hello`.
    pub fn describe(&self) -> String {
        let ns = if self.meta.namespace.is_empty() {
            "default"
        } else {
            &self.meta.namespace
        };
        format!("{} {}/{}", self.kind.name(), ns, self.meta.name)
    }
}

/// Reads every object of a file (`---` documents, `kind: List` items) as a Knative Service,
/// Route or Revision.
pub fn load_manifests(file: &str, text: &str) -> Result<Vec<Manifest>, YamlError> {
    read_objects(file, text)?
        .into_iter()
        .enumerate()
        .map(|(i, obj)| {
            if obj.kind == "Revision" && obj.api_version == SERVING_API_VERSION {
                let mirror: RevisionMirror = from_document(file, &obj.doc)?;
                return Ok(convert_revision(&obj.doc, i, obj.pos, mirror));
            }
            let mirror: ManifestMirror = from_document(file, &obj.doc)?;
            convert(file, &obj.doc, i, obj.pos, mirror)
        })
        .collect()
}

/// Annotations and the position of each value, recorded under `prefix.<key>`.
fn annotations(
    doc: &Document,
    a: Option<Spanned<BTreeMap<String, Spanned<Scalar>>>>,
    prefix: &str,
    fields: &mut BTreeMap<String, SourcePos>,
) -> (BTreeMap<String, String>, Option<SourcePos>) {
    let Some(a) = a else {
        return (BTreeMap::new(), None);
    };
    let map = a
        .value
        .into_iter()
        .map(|(k, v)| {
            fields.insert(format!("{prefix}.{k}"), doc.pos(v.referenced));
            (k, v.value.0)
        })
        .collect();
    (map, Some(doc.pos(a.referenced)))
}

/// The revision spec's fields, positions recorded under `prefix.<field>`.
fn revision_spec(
    doc: &Document,
    spec: RevisionSpecMirror,
    prefix: &str,
    fields: &mut BTreeMap<String, SourcePos>,
) -> (Option<i64>, Option<i64>, Option<i64>) {
    let mut take = |name: &str, v: Option<Spanned<i64>>| {
        v.map(|v| {
            fields.insert(format!("{prefix}.{name}"), doc.pos(v.referenced));
            v.value
        })
    };
    (
        take("containerConcurrency", spec.container_concurrency),
        take("timeoutSeconds", spec.timeout_seconds),
        take(
            "responseStartTimeoutSeconds",
            spec.response_start_timeout_seconds,
        ),
    )
}

fn convert_revision(
    doc: &Document,
    index: usize,
    document: SourcePos,
    m: RevisionMirror,
) -> Manifest {
    let metadata = m.metadata.value;
    let mut fields = BTreeMap::new();
    let (anns, anns_pos) = annotations(
        doc,
        metadata.annotations,
        "metadata.annotations",
        &mut fields,
    );
    let (cc, timeout, rst) = revision_spec(doc, m.spec.unwrap_or_default(), "spec", &mut fields);
    let name = metadata.name.map(|n| n.value).unwrap_or_default();
    Manifest {
        kind: ManifestKind::Revision,
        meta: ObjectMeta {
            name: name.clone(),
            namespace: metadata.namespace,
            labels: metadata.labels,
            annotations: anns.clone(),
        },
        spec_traffic: None,
        status_traffic: None,
        latest_ready_revision: String::new(),
        latest_created_revision: String::new(),
        positions: ManifestPositions {
            document,
            metadata: doc.pos(m.metadata.referenced),
            annotations: anns_pos,
            fields,
            ..Default::default()
        },
        document_index: index,
        revision: Some(RevisionSettings {
            name,
            annotations: anns,
            container_concurrency: cc,
            timeout_seconds: timeout,
            response_start_timeout_seconds: rst,
            prefix: String::new(),
        }),
    }
}

fn convert(
    file: &str,
    doc: &Document,
    index: usize,
    document: SourcePos,
    m: ManifestMirror,
) -> Result<Manifest, YamlError> {
    let error = |pos: SourcePos, path: &str, message: String| YamlError {
        file: file.to_string(),
        pos: Some(pos),
        path: path.to_string(),
        message,
        snippet: String::new(),
    };
    if m.api_version.value != SERVING_API_VERSION {
        return Err(error(
            doc.pos(m.api_version.referenced),
            "apiVersion",
            format!(
                "unsupported apiVersion {:?}; allowed: {SERVING_API_VERSION:?}",
                m.api_version.value
            ),
        ));
    }
    let kind = match m.kind.value.as_str() {
        "Service" => ManifestKind::Service,
        "Route" => ManifestKind::Route,
        other => {
            return Err(error(
                doc.pos(m.kind.referenced),
                "kind",
                format!(
                    "unsupported kind {other:?}; allowed: \"Service\", \"Route\", \"Revision\""
                ),
            ))
        }
    };
    let metadata = m.metadata.value;
    let mut fields = BTreeMap::new();
    let name_pos = metadata.name.as_ref().map(|n| doc.pos(n.referenced));
    let (anns, anns_pos) = annotations(
        doc,
        metadata.annotations,
        "metadata.annotations",
        &mut fields,
    );
    let meta = ObjectMeta {
        name: metadata.name.map(|n| n.value).unwrap_or_default(),
        namespace: metadata.namespace,
        labels: metadata.labels,
        annotations: anns,
    };
    let spec = m.spec.unwrap_or(SpecMirror {
        template: None,
        traffic: None,
    });
    if kind == ManifestKind::Route && spec.template.is_some() {
        return Err(error(
            document,
            "spec.template",
            "a Route has no template; allowed in a Route spec: traffic".to_string(),
        ));
    }
    let revision = (kind == ManifestKind::Service).then(|| {
        let template = spec.template.map(|t| t.value).unwrap_or_default();
        let tmeta = template.metadata.unwrap_or_default();
        let (annotations, _) = annotations(
            doc,
            tmeta.annotations,
            "spec.template.metadata.annotations",
            &mut fields,
        );
        let (cc, timeout, rst) = revision_spec(
            doc,
            template.spec.unwrap_or_default(),
            "spec.template.spec",
            &mut fields,
        );
        RevisionSettings {
            name: tmeta.name.unwrap_or_default(),
            annotations,
            container_concurrency: cc,
            timeout_seconds: timeout,
            response_start_timeout_seconds: rst,
            prefix: "spec.template".to_string(),
        }
    });
    let mut positions = ManifestPositions {
        document,
        metadata: doc.pos(m.metadata.referenced),
        name: name_pos,
        annotations: anns_pos,
        fields,
        ..Default::default()
    };
    let spec_traffic = spec.traffic.map(|list| {
        positions.traffic = Some(doc.pos(list.referenced));
        positions.targets = list.value.iter().map(|t| doc.pos(t.referenced)).collect();
        list.value.into_iter().map(|t| t.value).collect()
    });
    let (status_traffic, latest_ready_revision, latest_created_revision) = match m.status {
        Some(s) => (
            Some(s.traffic),
            s.latest_ready_revision_name,
            s.latest_created_revision_name,
        ),
        None => (None, String::new(), String::new()),
    };
    Ok(Manifest {
        kind,
        meta,
        spec_traffic,
        status_traffic,
        latest_ready_revision,
        latest_created_revision,
        positions,
        document_index: index,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: default
  annotations:
    serving.knative.dev/rollout-duration: 380s
spec:
  template:
    spec:
      containers:
      - image: ghcr.io/knative/helloworld-go:latest
  traffic:
  - tag: current
    revisionName: hello-00001
    percent: 90
  - latestRevision: true
    percent: 10
status:
  latestReadyRevisionName: hello-00002
  url: http://hello.default.example.com
  traffic:
  - tag: current
    revisionName: hello-00001
    percent: 90
    url: http://current-hello.default.example.com
  - revisionName: hello-00002
    latestRevision: true
    percent: 10
---
apiVersion: serving.knative.dev/v1
kind: Route
metadata:
  name: blue-green
spec:
  traffic:
  - configurationName: blue
    percent: 100
";

    #[test]
    fn reads_services_and_routes_with_positions() {
        let ms = load_manifests("svc.yaml", SERVICE).expect("valid");
        assert_eq!(ms.len(), 2);
        let svc = &ms[0];
        assert_eq!(svc.kind, ManifestKind::Service);
        assert_eq!(svc.describe(), "Service default/hello");
        assert_eq!(
            svc.meta.annotations["serving.knative.dev/rollout-duration"],
            "380s"
        );
        let traffic = svc.spec_traffic.as_ref().expect("traffic");
        assert_eq!(
            traffic[0],
            TrafficTarget::revision("hello-00001", 90)
                .with_tag("current")
                .tap_latest(None)
        );
        assert_eq!(
            svc.positions.targets,
            vec![
                SourcePos {
                    line: 14,
                    column: 5
                },
                SourcePos {
                    line: 17,
                    column: 5
                }
            ]
        );
        assert_eq!(
            svc.positions.of_path("spec.traffic[1].percent"),
            SourcePos {
                line: 17,
                column: 5
            }
        );
        assert_eq!(
            svc.positions.of_path("spec.traffic.tag[0]"),
            SourcePos {
                line: 14,
                column: 5
            }
        );
        assert_eq!(svc.latest_ready_revision, "hello-00002");
        assert_eq!(svc.status_traffic.as_ref().map(Vec::len), Some(2));
        let route = &ms[1];
        assert_eq!(route.kind, ManifestKind::Route);
        assert_eq!(route.document_index, 1);
        assert_eq!(
            route.positions.targets,
            vec![SourcePos {
                line: 37,
                column: 5
            }]
        );
    }

    #[test]
    fn rejects_other_kinds_and_typos_with_positions() {
        // (yaml, expected position, expected path, message fragment)
        let cases = [
            // another API group
            ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", (1, 13), "apiVersion", "allowed: \"serving.knative.dev/v1\""),
            // a Knative kind splitlab does not read
            ("apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata: {name: x}\n", (2, 7), "kind", "allowed: \"Service\", \"Route\", \"Revision\""),
            // a typo in a traffic target
            ("apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: x}\nspec:\n  traffic:\n  - revisionName: a\n    percnt: 100\n", (7, 5), "spec.traffic[0].percnt", "unknown field `percnt`"),
            // a typo in spec
            ("apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: x}\nspec:\n  trafic: []\n", (5, 3), "spec.trafic", "unknown field `trafic`"),
            // a percent that is not a number
            ("apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: x}\nspec:\n  traffic:\n  - revisionName: a\n    percent: all\n", (7, 14), "spec.traffic[0].percent", "i64"),
        ];
        for (yaml, (line, column), path, fragment) in cases {
            let err = load_manifests("m.yaml", yaml).expect_err(yaml);
            assert_eq!(err.pos, Some(SourcePos { line, column }), "{err}");
            assert_eq!(err.path, path, "{err}");
            assert!(err.message.contains(fragment), "{err}");
        }
    }

    impl TrafficTarget {
        fn tap_latest(mut self, latest: Option<bool>) -> Self {
            self.latest_revision = latest;
            self
        }
    }
}
