//! splitlab's integration tests, in one binary: the charts (`charts`), the command line (`cli`),
//! `splitlab compare` (`compare`) and the simulator on every shipped scenario (`scenarios`).

mod charts;
mod cli;
mod common;
mod compare;
mod scenarios;
