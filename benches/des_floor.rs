//! The floor under the engine's speed: benches/simpy_ref.py's model as the plainest
//! hand-written discrete-event simulation in Rust, with nothing of splitlab's around it.
//!
//! One Poisson arrival stream, a weighted random choice of revision, round-robin over the
//! revision's pods, `cc` requests in service and a FIFO queue of `qd` per pod (a full one
//! rejects), exponential service drawn when service starts, no timeout, drained to the end: the
//! reference's model (its docstring), with a `std::collections::BinaryHeap` of completions, the
//! next arrival kept beside it, and each revision's latencies in an HDR histogram. No windows,
//! gauges, deadlines, ingress, activator, autoscaler or report: what `splitlab run` does beyond
//! this is what its engine costs above the floor.
//!
//! `benches/engine_vs_simpy.sh` runs it beside the reference and splitlab, with the reference's
//! options; by hand:
//!
//! ```sh
//! cargo run --release --example des_floor -- --lambda 10000 --duration 100 --weights 90,10 \
//!     --pods 10,10 --cc 10 --qd 100 --service-mean 0.01 --seed 1
//! ```
//!
//! It prints one JSON object: `total` (arrived, served, rejected), `mean_latency_s`,
//! `p99_latency_s` (of served requests, all revisions) and `sim_wall_s` (the simulation alone,
//! as the reference's field of that name).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::process::ExitCode;

use hdrhistogram::Histogram;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg64Mcg;

struct Options {
    lambda: f64,
    duration_s: f64,
    weights: Vec<f64>,
    pods: Vec<usize>,
    cc: u32,
    qd: usize,
    service_mean_s: f64,
    seed: u64,
}

/// The reference's options this model has (`--lb rr` and `--timeout 0` are the only ones it
/// supports, so they are accepted and checked, not varied).
fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        lambda: 10_000.0,
        duration_s: 100.0,
        weights: vec![90.0, 10.0],
        pods: vec![10, 10],
        cc: 10,
        qd: 100,
        service_mean_s: 0.01,
        seed: 1,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--json" {
            continue; // the output is always JSON
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag}: a value is missing"))?;
        let bad = |what: &str| format!("{flag} {value:?}: expected {what}");
        // A finite number above 0 (a rate or seconds).
        let positive = |what: &str| {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| bad(what))
        };
        match flag.as_str() {
            "--lambda" => o.lambda = positive("a rate above 0")?,
            "--duration" => o.duration_s = positive("seconds above 0")?,
            "--weights" => {
                o.weights = value
                    .split(',')
                    .map(|w| w.parse().ok().filter(|&v: &f64| v >= 0.0 && v.is_finite()))
                    .collect::<Option<Vec<f64>>>()
                    .filter(|w| w.iter().sum::<f64>() > 0.0)
                    .ok_or_else(|| bad("comma-separated weights, not all 0"))?
            }
            "--pods" => {
                o.pods = value
                    .split(',')
                    .map(|p| p.parse().ok().filter(|&v: &usize| v > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| bad("comma-separated pod counts above 0"))?
            }
            "--cc" => {
                o.cc = value
                    .parse()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| bad("a concurrency above 0"))?
            }
            "--qd" => o.qd = value.parse().map_err(|_| bad("a queue depth"))?,
            "--service-mean" => o.service_mean_s = positive("seconds above 0")?,
            "--seed" => o.seed = value.parse().map_err(|_| bad("an integer"))?,
            "--lb" if value == "rr" => {}
            "--timeout" if value.parse::<f64>() == Ok(0.0) => {}
            "--lb" | "--timeout" => return Err(bad("rr, or 0 for --timeout: all this model has")),
            _ => return Err(format!("{flag}: unknown option")),
        }
    }
    if o.pods.len() == 1 {
        o.pods = vec![o.pods[0]; o.weights.len()];
    }
    if o.pods.len() != o.weights.len() {
        return Err(format!(
            "--pods has {} counts for {} weights",
            o.pods.len(),
            o.weights.len()
        ));
    }
    Ok(o)
}

struct Pod {
    busy: u32,
    /// Arrival times of the waiting requests, in ns.
    queue: VecDeque<i64>,
}

/// A service completion: (time ns, sequence), then what it ends.
type Completion = Reverse<((i64, u64), (u32, u32, i64))>;

struct Totals {
    arrived: u64,
    served: u64,
    rejected: u64,
    latency_us: Histogram<u64>,
}

fn simulate(o: &Options) -> Totals {
    let sum: f64 = o.weights.iter().sum();
    let cumulative: Vec<f64> = o
        .weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / sum;
            Some(*acc)
        })
        .collect();
    let mut arrival_rng = Pcg64Mcg::seed_from_u64(o.seed);
    let mut route_rng = Pcg64Mcg::seed_from_u64(o.seed + 1);
    let mut service_rng = Pcg64Mcg::seed_from_u64(o.seed + 2);
    let gap = Exp::new(o.lambda).expect("a positive rate");
    let service = Exp::new(1.0 / o.service_mean_s).expect("a positive mean");
    let ns = |s: f64| (s * 1e9 + 0.5) as i64;
    let end_ns = ns(o.duration_s);
    let mut pods: Vec<Vec<Pod>> = o
        .pods
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| Pod {
                    busy: 0,
                    queue: VecDeque::new(),
                })
                .collect()
        })
        .collect();
    let mut cursor = vec![0usize; pods.len()];
    let mut completions: BinaryHeap<Completion> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut t = Totals {
        arrived: 0,
        served: 0,
        rejected: 0,
        latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
    };
    let mut next_arrival = ns(gap.sample(&mut arrival_rng));
    loop {
        let arrival_first = next_arrival < end_ns
            && completions
                .peek()
                .is_none_or(|Reverse(((at, _), _))| next_arrival < *at);
        if arrival_first {
            let now = next_arrival;
            next_arrival = now + ns(gap.sample(&mut arrival_rng));
            t.arrived += 1;
            let u: f64 = route_rng.random();
            let rev = cumulative
                .iter()
                .position(|&c| u < c)
                .unwrap_or(pods.len() - 1);
            let pod = cursor[rev] % pods[rev].len();
            cursor[rev] += 1;
            let p = &mut pods[rev][pod];
            if p.busy < o.cc {
                p.busy += 1;
                seq += 1;
                let done = now + ns(service.sample(&mut service_rng));
                completions.push(Reverse(((done, seq), (rev as u32, pod as u32, now))));
            } else if p.queue.len() < o.qd {
                p.queue.push_back(now);
            } else {
                t.rejected += 1;
            }
        } else {
            let Some(Reverse(((now, _), (rev, pod, arrived)))) = completions.pop() else {
                break;
            };
            t.served += 1;
            let latency_us = ((now - arrived).max(0) as u64 + 500) / 1000;
            t.latency_us.saturating_record(latency_us);
            let p = &mut pods[rev as usize][pod as usize];
            match p.queue.pop_front() {
                Some(waiting_since) => {
                    seq += 1;
                    let done = now + ns(service.sample(&mut service_rng));
                    completions.push(Reverse(((done, seq), (rev, pod, waiting_since))));
                }
                None => p.busy -= 1,
            }
        }
    }
    t
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("des_floor: {e}");
            return ExitCode::from(2);
        }
    };
    // A benchmark program, not the simulator: it times itself as the reference does.
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    let t = simulate(&options);
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{{\"total\": {{\"arrived\": {}, \"served\": {}, \"rejected\": {}}}, \
         \"mean_latency_s\": {:.6}, \"p99_latency_s\": {:.6}, \"sim_wall_s\": {wall:.6}}}",
        t.arrived,
        t.served,
        t.rejected,
        t.latency_us.mean() / 1e6,
        t.latency_us.value_at_quantile(0.99) as f64 / 1e6,
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &str) -> Options {
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        parse(&args).expect("valid options")
    }

    #[test]
    fn every_request_is_served_or_rejected() {
        let t = simulate(&options(
            "--lambda 2000 --duration 20 --pods 2,1 --cc 2 --qd 3",
        ));
        assert!(t.rejected > 0, "an overloaded revision rejects");
        assert_eq!(t.arrived, t.served + t.rejected);
        assert_eq!(t.latency_us.len(), t.served);
    }

    #[test]
    fn one_pod_one_slot_loses_what_mm1k_theory_says() {
        // M/M/1/K with K = 5 (one in service, four waiting): P(full) = (1 - ρ) ρ^K / (1 - ρ^(K+1)).
        let (lambda, mu, k) = (100.0f64, 125.0f64, 5);
        let t = simulate(&options(
            "--lambda 100 --duration 2000 --weights 1 --pods 1 --cc 1 --qd 4 --service-mean 0.008",
        ));
        let rho = lambda / mu;
        let want = (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1));
        let got = t.rejected as f64 / t.arrived as f64;
        assert!(
            (got - want).abs() < 0.005,
            "loss {got:.4}, M/M/1/K theory {want:.4}"
        );
    }

    #[test]
    fn bad_options_are_named_with_what_is_allowed() {
        for (args, says) in [
            ("--lambda 0", "--lambda \"0\": expected a rate above 0"),
            (
                "--pods 2,x",
                "--pods \"2,x\": expected comma-separated pod counts above 0",
            ),
            ("--lb least", "--lb \"least\": expected rr"),
            (
                "--weights 1,1 --pods 1,1,1",
                "--pods has 3 counts for 2 weights",
            ),
            ("--cc", "--cc: a value is missing"),
            ("--warp 9", "--warp: unknown option"),
        ] {
            let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
            let err = parse(&args).err().expect("refused");
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }
}
