//! `splitlab validate FILE...`: Knative's admission checks on Service and Route manifests, with
//! each message pointed at the YAML line and column of the offending target.

use crate::routing::field_error::FieldErrorExt;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::routing::target::default_traffic;
use crate::routing::validation::{validate_route, validate_service};
use crate::scenario::manifest::{load_manifests, Manifest, ManifestKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Knative Service or Route manifests (serving.knative.dev/v1; several YAML documents per
    /// file are allowed) or splitlab scenario files.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// A splitlab scenario (as opposed to a Knative manifest): a top-level `revisions:` key and no
/// `apiVersion:`.
/// A file of ConfigMaps (`kubectl get cm -o yaml`): every object is a `v1` `ConfigMap`.
fn is_configmaps(name: &str, text: &str) -> bool {
    crate::scenario::kube::read_objects(name, text).is_ok_and(|objs| {
        !objs.is_empty()
            && objs
                .iter()
                .all(|o| o.api_version == "v1" && o.kind == "ConfigMap")
    })
}

fn is_scenario(text: &str) -> bool {
    let top_level = |key: &str| text.lines().any(|l| l.starts_with(key));
    top_level("revisions:") && !top_level("apiVersion:")
}

/// Knative's validation of one manifest, as the webhook runs it: on the defaulted object.
/// Returns one `(source position, message)` per merged error.
pub(crate) fn knative_errors(m: &Manifest) -> Vec<(crate::scenario::yaml::SourcePos, String)> {
    let mut traffic = m.spec_traffic.clone().unwrap_or_default();
    let service = m.kind == ManifestKind::Service;
    default_traffic(&mut traffic, service);
    let err = match m.kind {
        ManifestKind::Service => validate_service(&m.meta, &traffic),
        ManifestKind::Route => validate_route(&m.meta, &traffic),
        ManifestKind::Revision => None,
    };
    // The autoscaling annotations, under Knative's default config-autoscaler.
    let err = err.also(crate::scenario::autoscaling::validate_manifest(
        m,
        &Default::default(),
    ));
    err.map(|e| {
        e.merged()
            .into_iter()
            .map(|leaf| {
                let pos = m
                    .positions
                    .of_path(leaf.paths.first().map_or("", String::as_str));
                (pos, leaf.to_string())
            })
            .collect()
    })
    .unwrap_or_default()
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in &args.files {
        let name = super::display_name(path);
        let text = match super::read_input(path) {
            Ok(t) => t,
            Err(err) => {
                // The message names the file (and the position of bad UTF-8).
                eprintln!("{}", super::readable_error(&err));
                failed = true;
                continue;
            }
        };
        if is_configmaps(&name, &text) {
            // Knative's parsing and validation of config-autoscaler, config-defaults,
            // config-features and config-network.
            match crate::scenario::configmap::read_configmaps(&[(name.clone(), text)]) {
                Ok(c) => {
                    for w in &c.warnings {
                        eprintln!("warning: {w}");
                    }
                    say!("ok: {name}")?
                }
                Err(err) => {
                    eprintln!("{}", super::clip_echoes(&err.to_string()));
                    failed = true;
                }
            }
            continue;
        }
        if is_scenario(&text) {
            match super::run::load(path, &[]) {
                Ok(scenario) => {
                    for w in &scenario.warnings {
                        eprintln!("warning: {w}");
                    }
                    say!("ok: {name}")?
                }
                Err(err) => {
                    eprintln!("{}", super::readable_error(&err));
                    failed = true;
                }
            }
            continue;
        }
        let manifests = match load_manifests(&name, &text) {
            Ok(m) => m,
            Err(err) => {
                eprintln!("{}", super::clip_echoes(&err.to_string()));
                failed = true;
                continue;
            }
        };
        let mut file_ok = true;
        for m in &manifests {
            for (pos, message) in knative_errors(m) {
                let line = format!("{name}:{pos}: {}: {message}", m.describe());
                eprintln!("{}", super::clip_echoes(&line));
                file_ok = false;
            }
        }
        if file_ok {
            say!("ok: {name}")?;
        }
        failed |= !file_ok;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
