//! splitlab's integration tests, in one binary: `splitlab advise` (`advise`), Flagger's analysis (`analysis`), `splitlab calibrate` from Prometheus dumps and a fake Prometheus (`calibrate`), the calibrate loop with a real Prometheus (`calibrate_loop`, harness in `prometheus`), the charts (`charts`), the command line (`cli`),
//! `splitlab compare` (`compare`), the operator's Knative configuration (`config`), `splitlab diff` (`diff`), failing revisions (`failures`), the live mode on loopback (`live`), `splitlab load` for CI and real clusters (`load`), Knative's metrics in the live mode (`metrics`), `splitlab plan` (`plan`) and the simulator on every shipped
//! scenario (`scenarios`).

mod advise;
mod analysis;
mod calibrate;
mod calibrate_loop;
mod charts;
mod cli;
mod common;
mod compare;
mod config;
mod diff;
mod failures;
mod fuzz;
mod interrupt;
mod live;
mod load;
mod metrics;
mod plan;
mod prometheus;
mod scenarios;
