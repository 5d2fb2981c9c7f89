//! Measurement and output: the statistics both the simulator and the live mode report.
//!
//! Owns: split-accuracy tracking (`accuracy`). Later: the per-request record schema, aggregation,
//! CSV/JSON writers, plots and HTML.
//!
//! Must not: route or simulate; it only observes outcomes it is given.

pub mod accuracy;
pub mod record;
