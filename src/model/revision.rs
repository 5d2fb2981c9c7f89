//! One revision's autoscaling state and the KPA/SKS decisions made on it: what the simulator
//! and the live mode both apply to their pods (datapath.md A.3.3, A.4, A.5.5-A.5.6, A.6.3).
//!
//! Owns: the revision's autoscaler config (cluster defaults overridden by its annotations), its
//! decider and scale-to-zero state, its reachability, the SKS mode it asked for and since when
//! the activator is in its path; and the small rules around them (initial pods, readiness
//! threshold, the activator subset and slices, which pods go on scale-down).
//!
//! Must not: schedule anything, hold pods or requests, or read a clock. The caller applies a
//! requested SKS mode after its own ingress delay (`Kpa::tick` returns the generation to apply;
//! `Kpa::mode_applied` tells whether a delayed application is still current).

use crate::model::activator::ActivatorStat;
use crate::model::autoscaler::{
    assign_slice, initial_excess_burst_capacity, num_activators, sks_mode, AutoscalerConfig,
    Decider, Mode, ScaleResult, ScaleToZero,
};
use crate::model::time::SimTime;
use crate::scenario::spec::RevisionSpec;

/// One revision's KPA.
#[derive(Clone, Debug)]
pub struct Kpa {
    pub config: AutoscalerConfig,
    cc: u32,
    pub decider: Decider,
    scale_to_zero: ScaleToZero,
    /// Whether the PA is not Unreachable (pa.go:54-82): a route references the revision, or it
    /// was created and no route has referenced it yet (routing state `pending`,
    /// ReachabilityUnknown, which keeps min-scale: `pa_lifecycle.go:88-103`). Set through
    /// [`Kpa::set_routed`].
    pub reachable: bool,
    /// Created by the configuration and not yet referenced by a route (routing state
    /// `pending`, `configuration/resources/revision.go:46`); the labeler moves it to `active`
    /// when a route first references it, and to `reserve` when none does any more
    /// (`labeler/accessors.go:102-117`).
    pending: bool,
    /// Since when the activator is in its path (SKS Proxy applied); `None` in Serve mode.
    pub proxy_since: Option<SimTime>,
    /// The SKS mode asked for last, and its generation.
    serve_desired: bool,
    sks_gen: u32,
}

/// What one decider tick and KPA reconcile decided.
#[derive(Clone, Copy, Debug)]
pub struct KpaTick {
    pub result: ScaleResult,
    /// The SKS mode asked for: Serve (straight to the pods) or Proxy (via the activator).
    pub serve: bool,
    /// A new mode to apply after the ingress delay, with its generation.
    pub mode_change: Option<u32>,
    /// Pods to run now (autoscaling on and the scaler applied a scale).
    pub replicas: Option<u32>,
}

impl Kpa {
    /// The KPA of revision `spec` under the cluster's `cluster` config.
    pub fn new(cluster: &AutoscalerConfig, spec: &RevisionSpec) -> Self {
        let mut config = cluster.clone();
        spec.autoscaling.apply_to(&mut config);
        let cc = spec.container_concurrency;
        Kpa {
            decider: Decider::new(&config, cc, 0, SimTime::ZERO),
            scale_to_zero: ScaleToZero::new(&config, SimTime::ZERO),
            config,
            cc,
            reachable: false,
            pending: false,
            proxy_since: None,
            serve_desired: false,
            sks_gen: 0,
        }
    }

    /// The revision is created at `now`: a new decider and PA. Returns the pods it starts with:
    /// those the scenario gives it, except that with the autoscaler on a revision created later
    /// starts at its initial scale (at least its min-scale).
    pub fn created(
        &mut self,
        now: SimTime,
        scripted_pods: u32,
        at_start: bool,
        enabled: bool,
    ) -> u32 {
        self.decider = Decider::new(&self.config, self.cc, 0, now);
        self.scale_to_zero = ScaleToZero::new(&self.config, now);
        if !at_start {
            // A new revision is `pending` until a route references it.
            self.pending = true;
            self.reachable = true;
        }
        if at_start || !enabled {
            scripted_pods
        } else {
            self.config
                .effective_initial_scale()
                .max(self.config.min_scale)
        }
    }

    /// A revision running at t = 0 with `ready` pods: its decider starts there in steady state,
    /// not in panic (datapath.md correction 5, `Decider::steady`), and its SKS mode is the one a
    /// new decider's EBC gives, `InitialScale·TotalValue − TBC` (multiscaler.go:325-333).
    /// Returns whether it starts in Serve mode.
    pub fn running_at_start(&mut self, ready: u32) -> bool {
        self.decider = Decider::steady(&self.config, self.cc, ready, SimTime::ZERO);
        let ebc = initial_excess_burst_capacity(
            self.config.effective_initial_scale(),
            self.config.metric_targets(self.cc).total_value,
            self.config.target_burst_capacity,
        );
        let serve = sks_mode(ready as i32, ebc, ready, false) == Mode::Serve;
        self.serve_desired = serve;
        self.proxy_since = (!serve).then_some(SimTime::ZERO);
        serve
    }

    /// The routes now reference the revision (`referenced`) or not: its PA's reachability.
    /// A revision running at t = 0 that no route references is `reserve` (unreachable).
    pub fn set_routed(&mut self, referenced: bool) {
        if referenced {
            self.pending = false;
        }
        self.reachable = referenced || self.pending;
    }

    /// The scaling metric and its per-pod target (`TargetValue`, `ResolveMetricTarget`), as
    /// the autoscaler's metrics report them.
    pub fn scaling_target(&self) -> (crate::model::autoscaler::ScalingMetric, f64) {
        (
            self.config.metric,
            self.config.metric_targets(self.cc).target_value,
        )
    }

    /// Ready pods the revision needs to be Ready: its PA is Active at
    /// max(min-scale, initial-scale) ready pods (kpa.go:324-333), at least one, and no more than
    /// it has pods.
    pub fn ready_threshold(&self, pods: usize) -> usize {
        let needed = self
            .config
            .min_scale
            .max(self.config.effective_initial_scale())
            .max(1) as usize;
        needed.min(pods.max(1))
    }

    /// The activator subset for `ready` pods and each of `replicas` activators' pods
    /// (kpa.go:354-368, throttler.go:360-409): activators in the subset split the `healthy`
    /// pods (cc > 0; with cc = 0 each gets all); one outside the subset keeps all pods for what
    /// it holds. Returns the subset size and the slices.
    pub fn activator_slices(
        &self,
        healthy: &[u32],
        ready: u32,
        replicas: u32,
    ) -> (usize, Vec<Vec<u32>>) {
        let n = num_activators(
            ready,
            self.config.metric_targets(self.cc).total_value,
            self.config.target_burst_capacity,
            self.config.activator_capacity,
            replicas,
        )
        .clamp(1, replicas.max(1));
        let slices = (0..replicas)
            .map(|i| {
                if self.cc == 0 || i >= n {
                    healthy.to_vec()
                } else {
                    assign_slice(healthy, n, Some(i))
                }
            })
            .collect();
        (n as usize, slices)
    }

    /// The scraper's stat for the second ending at `now` (A.5.2): the concurrency and request
    /// count of requests that reached the revision's pods straight (net of proxied ones,
    /// collector.go:389-398). The scraper finds no pod to scrape while none is Ready and
    /// returns no stat (stats_scraper.go:264-276, collector.go:332-334); with TBC = −1 there is
    /// no scraper at all (kpa.go:335-352). Until something is recorded the decider has no data
    /// (collector.go:201-203).
    pub fn record_scrape(&mut self, now: SimTime, ready: u32, concurrency: f64, requests: f64) {
        if ready == 0 || !self.decider.has_scrape_target() {
            return;
        }
        self.decider.record_concurrency(now, concurrency);
        self.decider.record_rps(now, requests);
    }

    /// A stat from the activator reaches the autoscaler at `now`: recorded into the same
    /// buckets as the scraper's (cmd/autoscaler/main.go:170-173), whether or not any pod is
    /// Ready. Returns whether it pokes the decider (multiscaler.go:352-364): the caller then
    /// runs [`tick`](Self::tick) at once.
    pub fn record_activator(&mut self, now: SimTime, stat: ActivatorStat) -> bool {
        self.decider.record_concurrency(now, stat.concurrency);
        self.decider.record_rps(now, stat.requests);
        self.decider.should_poke(stat.concurrency)
    }

    /// One decider tick and KPA reconcile (A.5.5, A.5.6, A.4) with `ready` ready and `live`
    /// (starting or ready) pods. With autoscaling off the pods stay as scripted and only the
    /// SKS mode is decided. The reconcile reads the multiscaler's latest valid desired scale
    /// and EBC (kpa.go:123 `decider.Status.DesiredScale`): a tick without data leaves them as
    /// they were (multiscaler.go:339-349), −1 only before the first decision.
    pub fn tick(&mut self, now: SimTime, ready: u32, live: u32, enabled: bool) -> KpaTick {
        let result = self.decider.tick(now, ready, self.reachable).result;
        let (mode, replicas) = if enabled {
            self.scale_to_zero.set_reachable(self.reachable);
            let app = self.scale_to_zero.apply(
                now,
                self.decider.desired_scale(),
                self.decider.latest_excess_burst_capacity(),
                ready,
                self.proxy_since,
            );
            (app.mode, app.replicas)
        } else {
            (
                sks_mode(live as i32, result.excess_burst_capacity, ready, false),
                None,
            )
        };
        let serve = mode == Mode::Serve;
        let mode_change = (serve != self.serve_desired).then(|| {
            self.serve_desired = serve;
            self.sks_gen += 1;
            self.sks_gen
        });
        KpaTick {
            result,
            serve,
            mode_change,
            replicas,
        }
    }

    /// Mode change `gen` (asking for `serve`) reaches the ingress at `now`, which currently
    /// serves straight to the pods or not (`serving`): whether it switches. A superseded
    /// generation does nothing.
    pub fn mode_applied(&mut self, gen: u32, serve: bool, serving: bool, now: SimTime) -> bool {
        if gen != self.sks_gen || serve == serving {
            return false;
        }
        self.proxy_since = (!serve).then_some(now);
        true
    }
}

/// The pods to stop to go from `live` (id, ready) pods down to `target`: starting pods first,
/// then the newest ready ones.
pub fn scale_down_victims(live: &[(u32, bool)], target: u32) -> Vec<u32> {
    let mut victims = live.to_vec();
    victims.sort_by_key(|&(id, ready)| (ready, std::cmp::Reverse(id)));
    victims
        .into_iter()
        .take(live.len().saturating_sub(target as usize))
        .map(|(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activator::ConcurrencyReporter;
    use crate::scenario::load::load_scenario;

    fn at(secs: f64) -> SimTime {
        SimTime::from_secs_f64(secs)
    }

    /// The KPA of a cc-10 revision under the default config (TBC 211), as a scenario file gives
    /// it (so the test follows whatever a revision spec holds).
    fn kpa() -> Kpa {
        let text = "name: t\nduration: 10s\nservice: {name: hello}\nrevisions:\n  - name: hello-00001\n    container_concurrency: 10\n    service_time: {constant: 100ms}\n    pods: 1\ntraffic:\n  - latestRevision: true\n    percent: 100\narrivals:\n  poisson: {rate: 10}\n";
        let s = load_scenario("t.yaml", text, &[], &|p: &str| {
            Err(format!("{p}: no files"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let mut k = Kpa::new(&s.autoscaler.config, &s.revisions[0]);
        k.reachable = true;
        k
    }

    #[test]
    fn a_revision_running_at_start_is_not_in_panic() {
        // datapath.md correction 5 (autoscaler.go:95-114): 30 pods running at t = 0 are not
        // held by panic mode. Its steady history keeps them at first...
        let mut k = kpa();
        k.created(SimTime::ZERO, 30, true, true);
        k.running_at_start(30);
        assert!(!k.decider.in_panic());
        k.record_scrape(at(1.0), 30, 0.0, 0.0);
        let t = k.tick(at(2.0), 30, 30, true);
        assert_eq!((t.result.desired_pods, t.result.in_panic), (29, false));
        // ...and once 40 s without load have slid into the window (20 s of history at 206.5
        // left of 60: ceil(68.8 / 7) = 10), the pods go down by the most a tick allows,
        // floor(30 / 2) = 15 (autoscaler.go:191-194), where a panicking decider would hold 30
        // until a minute after its start.
        for sec in 2..=40 {
            k.record_scrape(at(f64::from(sec)), 30, 0.0, 0.0);
        }
        let t = k.tick(at(40.0), 30, 30, true);
        assert_eq!((t.result.desired_pods, t.result.in_panic), (15, false));
        assert_eq!(t.replicas, Some(15));
    }

    #[test]
    fn no_data_keeps_the_last_valid_desired_scale() {
        // multiscaler.go:339-349: a tick without data (collector.go:201-203 ErrNoData) leaves
        // DesiredScale as it was, and the KPA reconciles on that (kpa.go:123), not on −1.
        let mut k = kpa();
        k.created(SimTime::ZERO, 1, true, true);
        k.running_at_start(3);
        // 21 concurrent on cc 10 (target 7): 3 pods
        k.record_scrape(at(1.0), 3, 21.0, 210.0);
        let t = k.tick(at(2.0), 3, 3, true);
        assert_eq!((t.result.desired_pods, t.replicas), (3, Some(3)));
        // a minute and more without any stat: the window is empty, no decision...
        let t = k.tick(at(64.0), 3, 3, true);
        assert_eq!(t.result.desired_pods, -1);
        // ...and the reconcile still applies 3, in Proxy (EBC 3·10 − 211 − 21 < 0)
        assert_eq!(k.decider.desired_scale(), 3);
        assert_eq!((t.replicas, t.serve), (Some(3), false));
    }

    #[test]
    fn the_scraper_sees_nothing_until_a_pod_is_ready_but_the_activator_counts() {
        // stats_scraper.go:264-276: no Ready pod, no stat, so no data (collector.go:201-203);
        // activator stats are recorded regardless (cmd/autoscaler/main.go:170-173).
        let mut k = kpa();
        k.created(at(60.0), 0, false, true);
        k.record_scrape(at(61.0), 0, 5.0, 50.0);
        let t = k.tick(at(62.0), 0, 1, true);
        assert_eq!(t.result.desired_pods, -1, "nothing scraped: no data");
        // the PA activates at its initial scale while it has no data (scaler.go:336-361)
        assert!(!t.serve);
        let poke = k.record_activator(
            at(62.5),
            crate::model::activator::ActivatorStat {
                concurrency: 14.0,
                requests: 14.0,
            },
        );
        assert!(!poke, "the latest scale is −1, not 0: no poke");
        let t = k.tick(at(64.0), 0, 1, true);
        // ceil(14 / 7) = 2
        assert_eq!(t.result.desired_pods, 2);
    }

    #[test]
    fn the_first_request_is_counted_once() {
        // concurrency_reporter.go:111-154,176-209: the immediate {1, 1} and the next report,
        // which subtracts it, add up to what was in flight; counting it twice (1 recorded at
        // once plus the full period's average, as the simulator did) would make this 1.
        let mut k = kpa();
        k.created(SimTime::ZERO, 0, true, true);
        // a decider that decided 0 (scaled to zero long ago)
        k.decider.record_concurrency(at(0.0), 0.0);
        k.tick(at(0.0), 0, 0, true);
        assert_eq!(k.decider.desired_scale(), 0);
        let mut reporter = ConcurrencyReporter::new();
        let now = at(100.0);
        let stat = reporter.request_in(now).expect("first request");
        assert!(k.record_activator(now, stat), "wakes the revision");
        // the request waits the whole next second at the activator
        let report = reporter.report(at(101.0));
        k.record_activator(at(101.0), report.sent.expect("tracked"));
        let report = reporter.report(at(102.0));
        k.record_activator(at(102.0), report.sent.expect("tracked"));
        // buckets 100, 101, 102 hold 1, 0, 1: the request was there all along, counted once
        let t = k.tick(at(102.0), 0, 1, true);
        assert!(
            (t.result.stable - 2.0 / 3.0).abs() < 1e-6,
            "{}",
            t.result.stable
        );
    }

    #[test]
    fn a_new_revision_is_reachable_until_routes_drop_it() {
        let spec = crate::scenario::spec::RevisionSpec {
            name: "r".into(),
            container_concurrency: 0,
            timeout: crate::model::time::SimDuration::from_secs(300),
            response_start_timeout: None,
            service_time: crate::model::dist::Dist::constant(
                crate::model::time::SimDuration::from_secs(1),
            )
            .expect("valid"),
            app: crate::scenario::spec::AppModel::Workers(1),
            pods: 1,
            startup: crate::model::dist::Dist::constant(
                crate::model::time::SimDuration::from_secs(1),
            )
            .expect("valid"),
            created_at: None,
            autoscaling: Default::default(),
            failure: Default::default(),
        };
        let mut kpa = Kpa::new(&AutoscalerConfig::default(), &spec);
        // (step, referenced by a route, reachable after)
        // pa.go:70-80 reachability(): pending -> Unknown (reachable), active -> Reachable,
        // reserve -> Unreachable.
        kpa.created(SimTime::ZERO, 1, false, true);
        assert!(kpa.reachable, "created: pending");
        let rows = [(false, true), (true, true), (false, false), (true, true)];
        for (i, (referenced, want)) in rows.into_iter().enumerate() {
            kpa.set_routed(referenced);
            assert_eq!(kpa.reachable, want, "step {i}");
        }
        // A revision running at t = 0 without a route is reserve.
        let mut old = Kpa::new(&AutoscalerConfig::default(), &spec);
        old.created(SimTime::ZERO, 1, true, true);
        old.set_routed(false);
        assert!(!old.reachable);
    }

    #[test]
    fn scale_down_stops_starting_pods_first_then_the_newest_ready() {
        type Row<'a> = (&'a [(u32, bool)], u32, &'a [u32]);
        let table: &[Row] = &[
            // Two starting pods go before any ready one, newest first.
            (&[(1, true), (2, false), (3, true), (4, false)], 2, &[4, 2]),
            // Then the newest ready pods.
            (&[(1, true), (2, true), (3, true)], 1, &[3, 2]),
            // Nothing to stop at or above the target.
            (&[(1, true)], 1, &[]),
            (&[(1, true)], 5, &[]),
        ];
        for (live, target, want) in table {
            assert_eq!(
                scale_down_victims(live, *target),
                *want,
                "{live:?} -> {target}"
            );
        }
    }
}
