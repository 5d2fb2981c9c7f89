//! splitlab's integration tests, in one binary: the command line (`cli`), `splitlab compare`
//! (`compare`) and the simulator on every shipped scenario (`scenarios`).

mod cli;
mod compare;
mod scenarios;
