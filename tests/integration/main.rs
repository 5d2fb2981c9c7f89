//! splitlab's integration tests, in one binary: `splitlab advise` (`advise`), Flagger's analysis (`analysis`), `splitlab calibrate` from Prometheus dumps and a fake Prometheus (`calibrate`), the calibrate loop with a real Prometheus (`calibrate_loop`, harness in `prometheus`), the charts (`charts`), the command line (`cli`),
//! `splitlab compare` (`compare`), the operator's Knative configuration (`config`), `splitlab diff` (`diff`), failing revisions (`failures`), every input reader under random and mutated input (`fuzz`), `splitlab gateway` over HTTP/2, TLS and gRPC (`h2`), the gateway under hostile clients and its HTTP details (`hostile`), interrupted runs and their output directories (`interrupt`), `splitlab k8s job`'s manifests against the Kubernetes API types and its Indexed Job emulated locally (`k8s`), the live mode on loopback (`live`), `splitlab load` for CI and real clusters (`load`), against a rollout's schedule (`load_rollout`), sharded and merged to exact percentiles (`load_shard`), over TLS and HTTP/2 (`load_tls`), Knative's metrics in the live mode (`metrics`), `splitlab plan` (`plan`), sharded sweeps and `splitlab merge` (`shard`) and the simulator on every shipped
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
mod docs;
mod failures;
mod fuzz;
mod h2;
mod hostile;
mod interrupt;
mod k8s;
mod live;
mod load;
mod load_rollout;
mod load_shard;
mod load_tls;
mod metrics;
mod plan;
mod prometheus;
mod scenarios;
mod shard;
