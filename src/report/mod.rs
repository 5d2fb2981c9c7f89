//! Measurement and output: the statistics both the simulator and the live mode report.
//!
//! Owns: split-accuracy tracking (`accuracy`), what Flagger's analysis measures and records in
//! both modes (`analysis`: the canary's metric windows, `analysis.csv` rows, the summary), the
//! per-request record schema (`record`), the measurements of one run and its output files
//! (`run`, with the file mechanics in `write`),
//! charts of a run and of split accuracy drawn from the output files alone (`chart`), and the
//! statistics of comparing settings over seeds (`compare`), with its chart in `chart`; comparing
//! two finished runs from their `summary.json` within statistical noise (`diff`); HdrHistogram's
//! exchange formats (`hdr`: `.hgrm` and V2 compressed base64); the
//! bound-expression grammar of SLOs and its evaluator over a run (`bound`), their tally over
//! seeds with the pass rate's confidence bound (`slo`, for `compare --slo` and `advise`); `load
//! --check`'s subjects and verdicts over a load run (`check`), and the split a load run should
//! observe during a rollout (`expect`);
//! `advise`'s search, verdict and files (`advise`) and its frontier chart (`frontier`); the
//! detection power of Flagger analysis settings from seeded runs, beside its analytic value
//! (`plan`); a Prometheus registry and its text exposition format (`prometheus`), which the
//! live mode serves; the self-contained `report.html` page (`html`) and the verdict a run's page
//! leads with (`verdict`); the shard file a part of a sweep or a load run writes and `merge`
//! reads (`shard`).
//!
//! Must not: route or simulate; it only observes outcomes it is given.

pub mod accuracy;
pub mod advise;
pub mod analysis;
pub mod bound;
pub mod chart;
pub mod check;
pub mod compare;
pub mod diff;
pub mod expect;
pub mod frontier;
pub mod hdr;
pub mod html;
pub mod plan;
pub mod prometheus;
pub mod record;
pub mod run;
pub mod shard;
pub mod slo;
pub mod verdict;
pub mod write;
