//! splitlab's integration tests, in one binary: Flagger's analysis (`analysis`), the charts (`charts`), the command line (`cli`),
//! `splitlab compare` (`compare`), the operator's Knative configuration (`config`), `splitlab diff` (`diff`), failing revisions (`failures`), the live mode on loopback (`live`), `splitlab plan` (`plan`) and the simulator on every shipped
//! scenario (`scenarios`).

mod analysis;
mod charts;
mod cli;
mod common;
mod compare;
mod config;
mod diff;
mod failures;
mod live;
mod plan;
mod scenarios;
