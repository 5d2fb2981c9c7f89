//! `splitlab traffic FILE [--traffic REF=PCT]... [--tag REV=TAG]... [--untag TAG]...`: what
//! `kn service update` would write into `spec.traffic`, then what the cluster's webhook says.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use crate::routing::kn::{compute, Command, RevisionInfo, ServiceState, TrafficFlags};
use crate::routing::target::default_traffic;
use crate::routing::validation::validate_service;
use crate::routing::TrafficTarget;
use crate::scenario::manifest::{load_manifests, ManifestKind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Knative Service manifest (spec.traffic, and status.traffic /
    /// status.latestReadyRevisionName when present).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// kn's --traffic: REF=PCT where REF is a revision, a tag or @latest; a CSV list per flag.
    #[arg(long = "traffic", value_name = "REF=PCT", allow_hyphen_values = true)]
    traffic: Vec<String>,
    /// kn's --tag: REV=TAG where REV is a revision or @latest; a CSV list per flag.
    #[arg(long = "tag", value_name = "REV=TAG", allow_hyphen_values = true)]
    tag: Vec<String>,
    /// kn's --untag: TAG; a CSV list per flag.
    #[arg(long = "untag", value_name = "TAG", allow_hyphen_values = true)]
    untag: Vec<String>,
    /// The update also changes the template, so it creates a new revision (kn's "mutation").
    #[arg(long)]
    mutation: bool,
    /// Overrides status.latestReadyRevisionName.
    #[arg(long, value_name = "REV")]
    latest_ready: Option<String>,
    /// The service's revisions (what `kn` lists); default: the revisions named in status.traffic
    /// plus the latest ready one.
    #[arg(long, value_name = "R1,R2,...", value_delimiter = ',')]
    revisions: Option<Vec<String>>,
}

#[derive(Serialize)]
struct TrafficBlock<'a> {
    traffic: &'a [TrafficTarget],
}

/// How kn and a real cluster report a rejected update.
const WEBHOOK_DENIED: &str =
    "admission webhook \"validation.webhook.serving.knative.dev\" denied the request: validation failed: ";

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let name = super::display_name(&args.file);
    let text = super::read_input(&args.file)?;
    let manifests = load_manifests(&name, &text)?;
    let Some(svc) = manifests.iter().find(|m| m.kind == ManifestKind::Service) else {
        bail!("{name}: no Knative Service in the file (found {}); kn traffic edits apply to a Service",
            manifests.iter().map(|m| m.describe()).collect::<Vec<_>>().join(", "));
    };
    // kn edits the stored object, which the API server has defaulted.
    let mut spec = svc.spec_traffic.clone().unwrap_or_default();
    default_traffic(&mut spec, true);
    let latest_ready = args
        .latest_ready
        .clone()
        .unwrap_or_else(|| svc.latest_ready_revision.clone());
    // Without a status, assume the steady state a real cluster would show: status mirrors spec,
    // with latestRevision targets naming the latest ready revision.
    let status = svc.status_traffic.clone().unwrap_or_else(|| {
        spec.iter()
            .map(|t| {
                let mut s = t.clone();
                if s.is_latest() {
                    s.revision_name = latest_ready.clone();
                }
                s.configuration_name.clear();
                s
            })
            .collect()
    });
    let revisions: Vec<String> = match &args.revisions {
        Some(list) => list.clone(),
        None => {
            let mut names: Vec<String> = status
                .iter()
                .map(|t| t.revision_name.clone())
                .filter(|n| !n.is_empty())
                .collect();
            if !latest_ready.is_empty() {
                names.push(latest_ready.clone());
            }
            names.dedup();
            names
        }
    };
    let revisions: Vec<RevisionInfo> = revisions
        .into_iter()
        .map(|name| RevisionInfo {
            name,
            tags_annotation: String::new(),
        })
        .collect();
    let state = ServiceState {
        name: svc.meta.name.clone(),
        spec_traffic: spec,
        status_traffic: status,
        latest_ready_revision: latest_ready,
    };
    let flags = match TrafficFlags::from_occurrences(&args.traffic, &args.tag, &args.untag) {
        Ok(f) => f,
        Err(err) => {
            eprintln!("Error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let result = match compute(&state, &flags, &revisions, args.mutation, Command::Update) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("Error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // What the cluster does with kn's update: default, then validate.
    let mut stored = result.clone();
    default_traffic(&mut stored, true);
    if let Some(err) = validate_service(&svc.meta, &stored) {
        eprintln!("Error: {WEBHOOK_DENIED}{err}");
        return Ok(ExitCode::FAILURE);
    }
    say_raw!(
        "{}",
        serde_saphyr::to_string(&TrafficBlock { traffic: &result })?
    )?;
    Ok(ExitCode::SUCCESS)
}
