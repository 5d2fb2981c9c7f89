//! splitlab's integration tests, in one binary: the command line (`cli`) and the simulator on
//! every shipped scenario (`scenarios`).

mod cli;
mod scenarios;
