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

    /// A revision running at t = 0 with `ready` pods: its decider starts there, and its SKS mode
    /// is the one a new decider's EBC gives, `InitialScale·TotalValue − TBC`
    /// (multiscaler.go:325-333). Returns whether it starts in Serve mode.
    pub fn running_at_start(&mut self, ready: u32) -> bool {
        self.decider = Decider::new(&self.config, self.cc, ready, SimTime::ZERO);
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

    /// One decider tick and KPA reconcile (A.5.5, A.5.6, A.4) with `ready` ready and `live`
    /// (starting or ready) pods. With autoscaling off the pods stay as scripted and only the
    /// SKS mode is decided.
    pub fn tick(&mut self, now: SimTime, ready: u32, live: u32, enabled: bool) -> KpaTick {
        let result = self.decider.tick(now, ready, self.reachable).result;
        let (mode, replicas) = if enabled {
            self.scale_to_zero.set_reachable(self.reachable);
            let app = self.scale_to_zero.apply(
                now,
                result.desired_pods,
                result.excess_burst_capacity,
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
