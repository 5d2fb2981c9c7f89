//! splitlab: a discrete-event simulator and load-test harness for Knative Serving traffic
//! splitting and gradual (rollout-duration) rollouts.
//!
//! # Architecture map
//!
//! | module     | owns | may use |
//! |------------|------|---------|
//! | `routing`  | the shared core: traffic spec, Knative validation, resolution into route tables, the rollout-duration state machine, kn edits, pickers, host/header routing. Pure. | nothing else in the crate |
//! | `scenario` | serde mirrors of input files (Knative manifests and `kubectl get -o yaml` output, autoscaling annotations, the cluster's ConfigMaps, scenarios) and their validated forms (`Scenario`; `rollout`: the Service a `load --expect-rollout` run checks), with file/line/column errors and Knative's own messages | `routing`, `model` (its time and distribution types) |
//! | `model`    | Knative behaviour as state machines taking `now` and `rng`: arrivals, the ingress profiles' gateway (breakers, LB, retries), queue-proxy breaker and application, activator throttler and stat reporter, the pods' lifecycle shared by `sim` and `live` (`roster`), failing revisions and the kubelet's restart back-off (`failure`), Flagger's canary analysis on a Knative Service (`flagger`: validated `spec.analysis` settings and the scheduler as a pure `tick(now, observation)` machine; the caller measures the metrics and applies the `spec.traffic` it returns), distributions, simulated time | `routing`, `scenario::spec` (the validated inputs it models) |
//! | `sim`      | the discrete-event engine: event queue, seeded streams, the Knative world and its run loop, including the ticks of Flagger's analysis (measured by `report::analysis`) | `model`, `routing`, `report`, `scenario` |
//! | `live`     | sockets and the wall clock: pod servers with the queue-proxy, the gateway with the activator, the open-loop load generator (its client over HTTP/1.1 or HTTP/2, cleartext or rustls TLS: `client`, `tls`), `splitlab live` (with Flagger's analysis ticked on the scaled clock, measured by `report::analysis`), Knative's metrics at `/metrics` per component and the Prometheus `file_sd` target list (`metrics`), and the Prometheus range-query GET behind `calibrate --prometheus` | `routing`, `model`, `report`, `scenario::spec` |
//! | `report`   | the request record schema, split accuracy, what Flagger's analysis measures and records in both modes (`analysis`: the canary's metric windows, `analysis.csv` rows, the summary), run recording and output files (and a load run's mergeable parts, `run::merge`, which `splitlab merge` rebuilds a sharded load run from), the statistics of `compare` and `plan` (with `plan`'s analytic rollback probability of a Flagger analysis), the shard file of a sharded sweep (`shard`), the SLO bound grammar (`bound`) and `advise`'s pure search (`advise`), `load --check split` against a fixed split or a rollout's schedule in run time (`check`, `expect`), the Prometheus registry and text format (`prometheus`) | `model` (time) |
//! | `calibrate` | `splitlab calibrate`'s input work: Prometheus range-query answers (Knative's v1.18 or OpenTelemetry metric names) into series, rates, a latency histogram, pod counts, and the text of a scenario that says where each value came from. Pure: answers come through a `Source` the caller implements | `scenario` (to read manifests' kinds), `model` (distributions, time) |
//! | `cli`      | clap types and one function per subcommand; the only place `anyhow` is used | everything |
//! | `fuzz`     | fuzz entry points: one reader of untrusted text each (and the gateway's request path over an in-memory stream), with the checks every input must pass (for `fuzz/` and the proptest harness) | `scenario`, `routing`, `live` (`http_request`) |
//!
//! Dependencies point inward: `cli -> {calibrate, scenario, sim, live, report}`, `calibrate -> {scenario, model}`, `sim -> {model, routing,
//! report}`, `live -> {routing, model, report}`, `model -> routing`. `sim` and `live` never use
//! each other; they meet in `routing`, `model` and `report`.

pub mod calibrate;
pub mod cli;
pub mod fuzz;
pub mod live;
pub mod model;
pub mod report;
pub mod routing;
pub mod scenario;
pub mod sim;
