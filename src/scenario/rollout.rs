//! `load --expect-rollout MANIFEST`: the Knative Service whose rollout a load run checks, read
//! from its manifest the way a scenario's `service.manifest` is read (the same validation of
//! the rollout-duration annotation and of `spec.traffic`, with the same file/line errors), plus
//! the two revisions the rollout moves between.
//!
//! The revisions, from the Service's status (`kubectl get ksvc NAME -o yaml` once the new
//! revision is ready, routing.md TBL:851-940):
//! - the new one is `status.latestReadyRevisionName`;
//! - the old one is the first `status.traffic` entry with `latestRevision: true` naming another
//!   revision (during a rollout Knative lists the configuration's old and new revisions there,
//!   `[{old, 99, latest}, {new, 1, latest}]`).
//!
//! A Service whose traffic pins every revision has no rollout: its split is fixed, and neither
//! is needed.
//!
//! Must not: open files (the caller passes the text) or compute the schedule (that is
//! `model::route_control::rollout_timeline`).

use super::load::{load_scenario, ScenarioError};
use super::manifest::{load_manifests, ManifestKind};
use super::spec::ServiceSpec;
use crate::routing::TrafficTarget;

/// A Service as `--expect-rollout` needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutService {
    pub service: ServiceSpec,
    /// `spec.traffic`, validated and defaulted as a Service's.
    pub traffic: Vec<TrafficTarget>,
    /// The rollout's old and new revisions; `None` when no target follows the configuration
    /// (a fixed split).
    pub revisions: Option<(String, String)>,
}

/// Reads the one Knative Service of `text` (the file `file`).
pub fn read_rollout_service(file: &str, text: &str) -> Result<RolloutService, ScenarioError> {
    let err = |pos, path: &str, message: String| ScenarioError::in_file(file, pos, path, message);
    let manifests = load_manifests(file, text)?;
    let services: Vec<_> = manifests
        .iter()
        .filter(|m| m.kind == ManifestKind::Service)
        .collect();
    let m = match services.as_slice() {
        [one] => *one,
        [] => {
            return Err(err(
                None,
                "",
                "holds no Knative Service; allowed: one serving.knative.dev/v1 Service (kubectl get ksvc NAME -o yaml)".into(),
            ))
        }
        several => {
            return Err(err(
                Some(several[1].positions.document),
                "",
                format!(
                    "holds several Knative Services ({}); allowed: one",
                    several
                        .iter()
                        .map(|m| m.meta.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    };
    let spec_traffic = m.spec_traffic.clone().unwrap_or_default();
    let follows_latest = spec_traffic.is_empty() || spec_traffic.iter().any(|t| t.is_latest());
    let revisions = if follows_latest {
        let to = m.latest_ready_revision.clone();
        if to.is_empty() {
            return Err(err(
                Some(m.positions.document),
                "status.latestReadyRevisionName",
                "missing: the rollout's new revision is the Service's latest ready one; give the Service as `kubectl get ksvc NAME -o yaml` prints it once the new revision is ready".into(),
            ));
        }
        let from = m
            .status_traffic
            .iter()
            .flatten()
            .find(|t| t.is_latest() && !t.revision_name.is_empty() && t.revision_name != to)
            .map(|t| t.revision_name.clone());
        let Some(from) = from else {
            return Err(err(
                Some(m.positions.document),
                "status.traffic",
                format!("no entry with latestRevision: true names a revision other than {to:?}, so the revision the rollout started from is unknown; allowed: the status Knative shows during the rollout (e.g. [{{revisionName: OLD, latestRevision: true, percent: 99}}, {{revisionName: {to}, latestRevision: true, percent: 1}}])"),
            ));
        };
        Some((from, to))
    } else {
        None
    };
    // The Service through the scenario loader: one revision per name the traffic or the
    // rollout needs, so that every pinned target resolves.
    let mut names: Vec<&str> = spec_traffic
        .iter()
        .filter(|t| !t.revision_name.is_empty())
        .map(|t| t.revision_name.as_str())
        .collect();
    if let Some((from, to)) = &revisions {
        names.push(from);
        names.push(to);
    }
    names.dedup();
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(*n));
    if names.is_empty() {
        return Err(err(
            Some(m.positions.document),
            "spec.traffic",
            "names no revision; allowed: a Service whose traffic names a revision or follows its latest ready one".into(),
        ));
    }
    let quoted = serde_json::to_string(file).expect("a string serializes");
    let mut scenario = format!(
        "name: expect-rollout\nduration: 1s\nservice:\n  manifest: {quoted}\n  name: {}\nrevisions:\n",
        serde_json::to_string(&m.meta.name).expect("a string serializes")
    );
    for n in &names {
        scenario.push_str(&format!(
            "  - {{name: {}, service_time: {{constant: 1ms}}, pods: 1}}\n",
            serde_json::to_string(n).expect("a string serializes")
        ));
    }
    scenario.push_str("arrivals:\n  constant: {rate: 1}\n");
    let owned = text.to_string();
    let resolve = move |_: &str| -> Result<String, String> { Ok(owned.clone()) };
    let s = load_scenario("--expect-rollout", &scenario, &[], &resolve)?;
    Ok(RolloutService {
        service: s.service,
        traffic: s.traffic,
        revisions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLING: &str = "apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  annotations:
    serving.knative.dev/rollout-duration: \"4s\"
spec:
  template:
    spec:
      containers: [{image: example/hello}]
  traffic:
    - latestRevision: true
      percent: 100
status:
  latestReadyRevisionName: hello-00002
  traffic:
    - {revisionName: hello-00001, latestRevision: true, percent: 99}
    - {revisionName: hello-00002, latestRevision: true, percent: 1}
";

    #[test]
    fn a_service_mid_rollout_gives_its_duration_traffic_and_revisions() {
        let s = read_rollout_service("svc.yaml", ROLLING).expect("valid");
        assert_eq!(s.service.name, "hello");
        assert_eq!(s.service.rollout_duration_secs, 4);
        assert_eq!(
            s.revisions,
            Some(("hello-00001".to_string(), "hello-00002".to_string()))
        );
        assert_eq!(s.traffic.len(), 1);
        assert!(s.traffic[0].is_latest());
        // No annotation: no rollout (Knative switches at once), still a valid expectation.
        let instant = ROLLING.replace(
            "    serving.knative.dev/rollout-duration: \"4s\"\n",
            "    a: b\n",
        );
        let s = read_rollout_service("svc.yaml", &instant).expect("valid");
        assert_eq!(s.service.rollout_duration_secs, 0);
        // Every revision pinned: a fixed split, no revisions needed from the status.
        let pinned = "apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello}
spec:
  traffic:
    - {revisionName: hello-00001, percent: 90}
    - {revisionName: hello-00002, percent: 10}
";
        let s = read_rollout_service("svc.yaml", pinned).expect("valid");
        assert_eq!(s.revisions, None);
    }

    #[test]
    fn what_cannot_be_an_expectation_is_a_clear_error() {
        // (what, manifest, fragment of the message)
        let cases = [
            (
                "no status",
                ROLLING.split("status:").next().unwrap_or_default().to_string(),
                "svc.yaml:1:1: status.latestReadyRevisionName: missing",
            ),
            (
                "the status names only the new revision",
                ROLLING.replace(
                    "    - {revisionName: hello-00001, latestRevision: true, percent: 99}\n",
                    "",
                ),
                "status.traffic: no entry with latestRevision: true names a revision other than \"hello-00002\"",
            ),
            (
                "a bad annotation: Knative's own message, at its line",
                ROLLING.replace("\"4s\"", "\"-4s\""),
                "svc.yaml:6:",
            ),
            (
                "not a Service",
                "apiVersion: serving.knative.dev/v1\nkind: Route\nmetadata: {name: r}\n".to_string(),
                "holds no Knative Service",
            ),
        ];
        for (what, text, fragment) in cases {
            let e = read_rollout_service("svc.yaml", &text).expect_err(what);
            assert!(e.to_string().contains(fragment), "{what}: {e}");
        }
    }
}
