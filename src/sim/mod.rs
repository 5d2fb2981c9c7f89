//! The discrete-event engine: simulated time, the event queue, and the
//! run loop of the Knative world (`world`).
//!
//! Owns: event ordering (time, then scheduling order), the merge of the arrival stream with
//! scheduled events, and the wiring of `model` components into a run. Must not: read clocks,
//! touch files or print (the CLI does), or use `live`.

pub mod queue;
pub mod world;

pub use world::{simulate, RunOptions, SimRun};
