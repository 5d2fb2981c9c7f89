//! Knative behaviour as state machines that take `now` and `rng` as arguments: arrivals,
//! ingress, activator, queue-proxy breaker, application, pods, the autoscaler, failing revisions,
//! and Flagger's canary-analysis controller.
//!
//! Must not: own the event loop or schedule events (that is `sim`), read clocks, or print.
//! `model` may use `routing` and nothing else in the crate, so the live mode can drive the same
//! models with real time.

pub mod activator;
pub mod arrival;
pub mod autoscaler;
pub mod dist;
pub mod failure;
pub mod flagger;
pub mod ingress;
pub mod queue_proxy;
pub mod revision;
pub mod rng;
pub mod roster;
pub mod route_control;
pub mod time;

pub use time::{SimDuration, SimTime};
