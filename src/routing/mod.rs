//! THE SHARED CORE: the Knative traffic model, used identically by the simulator (`sim`) and
//! the live gateway (`live`).
//!
//! Owns: the traffic spec (`target`), Knative's validation and error formatting
//! (`field_error`, `validation`, `duration`), resolution of a traffic block against the
//! revisions that exist into per-tag route tables (`resolve`), the rollout-duration state machine
//! (`rollout`), kn-style edits (`kn`), pickers (`pick`) and host/header routing (`host`).
//!
//! Must not: use tokio, files, the wall clock or a global RNG. Time and randomness are
//! arguments. Every rule taken from Knative cites the upstream file it mirrors; the spec we
//! follow is `docs/knative/routing.md` and `kn-traffic.md`.

pub mod duration;
pub mod field_error;
pub mod host;
pub mod ingress;
pub mod kn;
pub mod pick;
pub mod resolve;
pub mod rollout;
pub mod rollout_schedule;
pub mod target;
pub mod validation;

pub use target::{ObjectMeta, TrafficTarget};
