//! Input files: serde mirrors of what users write, and the validated types built from them.
//!
//! Owns: reading YAML into mirrors with `deny_unknown_fields`, and errors that name the file,
//! line/column, field path, the offending value and what is allowed (`yaml`). The operator's
//! Knative configuration is input too: manifests and `kubectl get -o yaml` output (`kube`,
//! `manifest`), autoscaling annotations (`autoscaling`) and the cluster's ConfigMaps
//! (`configmap`); scenario files (`load`) join them with the simulator; `load --targets` files
//! (`targets`). The shipped scenarios are embedded in the binary (`shipped`).
//!
//! Must not: open files (callers pass the text and the file name) or know about the simulator.

pub mod autoscaling;
pub mod configmap;
pub mod kube;
pub mod load;
pub mod manifest;
pub mod rollout;
pub mod shipped;
pub mod spec;
pub mod targets;
pub mod yaml;

pub use spec::Scenario;
