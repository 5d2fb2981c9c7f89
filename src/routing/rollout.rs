//! The rollout-duration state machine: a port of serving `pkg/reconciler/route/traffic/rollout.go`
//! (see `../shared/knative/routing.md` A1, A4 to A10; citations `RO:a-b` are line ranges of that
//! file, `RR` is `pkg/reconciler/route/reconcile_resources.go`).
//!
//! Owns: the persisted rollout state (the `networking.internal.knative.dev/rollout` annotation)
//! with Go's exact JSON, its validation, and the three operations the route reconciler applies
//! to it: `observe_ready` (the ingress programmed the first 1%), `step` (merge the desired state
//! with the previous one and move traffic) and `done`. The ideal-reconciler driver that turns this
//! machine into a timetable lives in `rollout_schedule`.
//!
//! Must not: read a clock, do I/O, or touch globals. Time is an argument (`now_ns`, integer
//! nanoseconds since an arbitrary epoch, as Knative's `UnixNano`); 0 means "unset" in
//! [`RolloutParams`], so callers must use an epoch that keeps real times positive.
//!
//! Invariants (upheld by `step` whenever the previous state passed [`Rollout::validate`] and the
//! current state came from `BuildRollout`):
//! - configurations are sorted by (tag, configuration name), byte order;
//! - in each configuration the revision percents sum to the configuration's `percent`;
//! - revisions run oldest to newest; the last one is the rollout target.
//!
//! No function here panics on any input, including hand-edited annotations. Integer arithmetic
//! on values that come from the annotation wraps (two's complement), as Go's `int`/`int64` do;
//! float-to-integer conversions use Rust `as`, which truncates toward zero like Go but saturates
//! out-of-range values and maps NaN to 0 where Go's result is platform-defined (d.17).
//!
//! One deliberate divergence from upstream: [`step_config`] does not panic when a percent cut
//! removes revisions (routing.md d.1); see its doc.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use super::rollout_schedule::{schedule, ScheduleStep};

/// Nanoseconds per second, Go's `time.Second`.
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The whole rollout state (the `networking.internal.knative.dev/rollout` annotation). `RO:39-97`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Sorted by (tag, configuration name), byte order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub configurations: Vec<ConfigurationRollout>,
}

/// The rollout state of one (tag, configuration) pair.
///
/// Missing keys and JSON `null` deserialise to the zero value, as Go's `encoding/json` leaves
/// the field at its zero value in both cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigurationRollout {
    #[serde(deserialize_with = "null_as_default")]
    pub configuration_name: String,
    /// `""` is the default (untagged) group.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tag: String,
    /// The configuration target's percent of the whole route.
    #[serde(deserialize_with = "null_as_default")]
    pub percent: i64,
    /// Oldest first; the last one is the newest (the rollout target). Each percent is a share
    /// of the whole route's traffic.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub revisions: Vec<RevisionRollout>,
    /// Always serialised, as `{}` when every field is 0 (Go has no omitempty on it).
    #[serde(deserialize_with = "null_as_default")]
    pub step_params: RolloutParams,
}

/// One revision's share inside a configuration rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionRollout {
    #[serde(deserialize_with = "null_as_default")]
    pub revision_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub percent: i64,
}

/// Timing of a rollout in progress, all in nanoseconds (0 means unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RolloutParams {
    /// When the newest revision got its first 1% (`UnixNano` upstream). Lower-case "t" in JSON.
    #[serde(
        rename = "starttime",
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub start_time: i64,
    /// When the next step is due.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub next_step_time: i64,
    /// Nanoseconds between two steps; 0 until `observe_ready` computed it.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub step_duration: i64,
    /// Percent moved per step; 0 until `observe_ready` computed it (no step happens before).
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub step_size: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Go's `json.Unmarshal` treats `null` as "leave the zero value"; serde would reject it.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl Rollout {
    /// The configuration rollouts of `tag`: a contiguous run of the sorted list, found by binary
    /// search for the first entry whose tag is `>= tag`. Empty when the tag is absent. Assumes
    /// the list is sorted (see [`Rollout::sort`]). `RO:100-112`
    pub fn rollouts_by_tag(&self, tag: &str) -> &[ConfigurationRollout] {
        let start = self
            .configurations
            .partition_point(|c| c.tag.as_str() < tag);
        let len = self.configurations[start..]
            .iter()
            .take_while(|c| c.tag == tag)
            .count();
        &self.configurations[start..start + len]
    }

    /// True when no configuration is mid-rollout. `RO:114-130`
    pub fn done(&self) -> bool {
        self.configurations.iter().all(ConfigurationRollout::done)
    }

    /// The checks run on a deserialised annotation; `false` means "discard it". Fails when a
    /// configuration has `percent > 100`, a step size outside `0..=percent`, or revision percents
    /// that do not sum to `percent` (the sum wraps like Go's `int`). `RO:135-155`
    pub fn validate(&self) -> bool {
        self.configurations.iter().all(|c| {
            let sum = c
                .revisions
                .iter()
                .fold(0i64, |acc, r| acc.wrapping_add(r.percent));
            c.percent <= 100
                && c.step_params.step_size >= 0
                && c.step_params.step_size <= c.percent
                && sum == c.percent
        })
    }

    /// The ingress reported ready: every configuration whose rollout started (`start_time > 0`)
    /// but has no timing yet (`step_duration == 0`) gets its step interval, size and next step
    /// time. The interval is the time the first 1% took, rounded up to whole seconds and at
    /// least 1 s (`minStepSec`); see [`compute_properties`]. `RO:160-174`
    pub fn observe_ready(&mut self, now_ns: i64, duration_secs: f64) {
        for cfg in &mut self.configurations {
            let params = &cfg.step_params;
            if params.step_duration == 0 && params.start_time > 0 {
                // A clock skew (now before start) also ends up at the 1 s floor.
                let elapsed_secs = go_duration_seconds(now_ns.wrapping_sub(params.start_time));
                let min_step_sec = go_max(1.0, elapsed_secs.ceil());
                compute_properties(cfg, now_ns as f64, min_step_sec, duration_secs);
            }
        }
    }

    /// Merges `self` (the current desired rollout, "cur", as `BuildRollout` makes it: one
    /// revision per configuration) with the previous state and moves traffic. Returns the
    /// effective rollout (sorted) and the earliest `next_step_time > 0` among the configurations
    /// that went through [`step_config`], or 0 when nothing is scheduled. `RO:183-268`
    ///
    /// Upstream quirks kept on purpose (routing.md A6, d.2, d.3):
    /// - without previous state (None or no configurations) `cur` is returned as is;
    /// - a tag absent from `prev` keeps only the first configuration of that tag;
    /// - a configuration at 1% takes `cur` at once (no gradual rollout), at 0% it is dropped;
    /// - configurations only in `prev` are dropped.
    ///
    /// `prev` is not modified (upstream mutates it; here each matched configuration is cloned).
    pub fn step(&self, prev: Option<&Rollout>, now_ns: i64) -> (Rollout, i64) {
        let prev = match prev {
            Some(p) if !p.configurations.is_empty() => p,
            _ => return (self.clone(), 0),
        };
        let cur_by_tag = group_by_tag(&self.configurations);
        let prev_by_tag = group_by_tag(&prev.configurations);

        let mut ret = Vec::with_capacity(self.configurations.len());
        let mut return_ts = i64::MAX;
        for (tag, ccfgs) in &cur_by_tag {
            let Some(pcfgs) = prev_by_tag.get(tag) else {
                // RO:211-213: only the first configuration of a new tag survives (d.3).
                if let Some(first) = ccfgs.first() {
                    ret.push((*first).clone());
                }
                continue;
            };
            // Sorted merge on configuration name (RO:217-262).
            let (mut i, mut j) = (0, 0);
            while let Some(ccfg) = ccfgs.get(i) {
                let Some(pcfg) = pcfgs.get(j) else {
                    // New configuration after every previous one: copied, even at 0% (as
                    // upstream; only the `<` branch below checks the percent).
                    ret.push((*ccfg).clone());
                    i += 1;
                    continue;
                };
                match ccfg.configuration_name.cmp(&pcfg.configuration_name) {
                    Ordering::Equal => {
                        match ccfg.percent {
                            p if p > 1 => {
                                let mut prev_cfg = (*pcfg).clone();
                                let stepped = step_config(ccfg, &mut prev_cfg, now_ns);
                                let nst = stepped.step_params.next_step_time;
                                if nst > 0 && nst < return_ts {
                                    return_ts = nst;
                                }
                                ret.push(stepped);
                            }
                            // 1% targets never roll gradually (d.2).
                            1 => ret.push((*ccfg).clone()),
                            // 0% (or a negative percent from a hand-made cur): dropped.
                            _ => {}
                        }
                        i += 1;
                        j += 1;
                    }
                    Ordering::Less => {
                        if ccfg.percent != 0 {
                            ret.push((*ccfg).clone());
                        }
                        i += 1;
                    }
                    // A configuration that was removed: its previous state is dropped.
                    Ordering::Greater => j += 1,
                }
            }
        }
        let mut effective = Rollout {
            configurations: ret,
        };
        effective.sort();
        let next_ts = if return_ts == i64::MAX { 0 } else { return_ts };
        (effective, next_ts)
    }

    /// Sorts by tag, then configuration name, both in byte order (Rust `str` ordering is byte
    /// order, like Go's `<` on strings). Stable, so duplicate keys (only possible in hand-edited
    /// input) keep their order. `RO:489-497`
    pub fn sort(&mut self) {
        self.configurations.sort_by(|a, b| {
            a.tag
                .cmp(&b.tag)
                .then_with(|| a.configuration_name.cmp(&b.configuration_name))
        });
    }

    /// The annotation value, byte-identical to Go's `json.Marshal` (`IN:95-98`): keys in struct
    /// order, omitempty as in A1, `stepParams` always present, an empty rollout as `{}`, and
    /// Go's HTML-safe escaping of `<`, `>`, `&`, U+2028 and U+2029 (names that contain them
    /// cannot occur in Kubernetes, but byte parity is cheap).
    pub fn to_json(&self) -> String {
        let json = serde_json::to_string(self)
            .expect("plain structs of strings and integers always serialise");
        go_html_escape(&json)
    }

    /// Parses an annotation the way the reconciler does (`RR:311-329`): unparseable input or
    /// input that fails [`Rollout::validate`] gives `None`, i.e. "no previous state", which makes
    /// [`Rollout::step`] return the current state unchanged.
    ///
    /// Missing keys and `null` values are zero values, as in Go. Known differences from Go's
    /// decoder, all reachable only by hand-editing: Go matches keys case-insensitively
    /// (`"Percent"` sets `percent`; here an unknown key is ignored) and lets a repeated key
    /// overwrite (here a repeated key is a parse error, so `None`).
    pub fn from_json(annotation: &str) -> Option<Rollout> {
        serde_json::from_str::<Rollout>(annotation)
            .ok()
            .filter(Rollout::validate)
    }
}

impl ConfigurationRollout {
    /// True when no rollout is going on: zero or one revision. `RO:125-130`
    pub fn done(&self) -> bool {
        self.revisions.len() < 2
    }
}

/// Groups configurations by tag, keeping their order within a tag. A `BTreeMap` replaces Go's
/// randomly ordered map; the result is sorted afterwards anyway (d.16).
fn group_by_tag(cfgs: &[ConfigurationRollout]) -> BTreeMap<&str, Vec<&ConfigurationRollout>> {
    let mut groups: BTreeMap<&str, Vec<&ConfigurationRollout>> = BTreeMap::new();
    for cfg in cfgs {
        groups.entry(cfg.tag.as_str()).or_default().push(cfg);
    }
    groups
}

/// Applies a change of the configuration's percent (`goal`) to a previous rollout, in place.
/// `RO:274-303`
///
/// - `goal == 0`: every revision is removed;
/// - an increase goes entirely to the newest revision;
/// - a decrease is taken from the oldest revisions first; a revision whose share is used up
///   (exactly or not) is removed.
///
/// `prev.percent` itself is left as it was (the caller builds the result with `goal`).
pub fn adjust_percentage(goal: i64, prev: &mut ConfigurationRollout) {
    let diff = goal.wrapping_sub(prev.percent);
    if goal == 0 {
        prev.revisions.clear();
    } else if diff > 0 {
        // Upstream only calls this with a non-empty list; an empty one has nobody to give to.
        if let Some(newest) = prev.revisions.last_mut() {
            newest.percent = newest.percent.wrapping_add(diff);
        }
    } else if diff < 0 {
        let mut remaining = diff.wrapping_neg();
        let mut removed = 0;
        for rev in &mut prev.revisions {
            if remaining <= 0 {
                break;
            }
            if rev.percent > remaining {
                rev.percent -= remaining;
                break;
            }
            remaining = remaining.wrapping_sub(rev.percent);
            removed += 1;
        }
        prev.revisions.drain(..removed);
    }
}

/// One step of a rollout in progress, in place: when `now_ns >= next_step_time`, move
/// `step_size` percent to the newest revision, taking it from the second-newest first and
/// dropping revisions that reach 0, newest to oldest (d.14). The newest revision is capped at
/// the configuration's percent, which keeps the sum when everything older is used up. Sets the
/// next step time to `now_ns + step_duration` in integer arithmetic, or clears the parameters
/// when one revision is left. At most one step per call, however late `now_ns` is. `RO:307-361`
pub fn step_revisions(cfg: &mut ConfigurationRollout, now_ns: i64) {
    let count = cfg.revisions.len();
    if now_ns < cfg.step_params.next_step_time || count < 2 {
        return;
    }
    let step_size = cfg.step_params.step_size;
    let mut remaining = step_size;
    // `read` is one past the revision being drained, so it never goes below 0; `write` is where
    // the newest revision lands once the drained ones are cut off.
    let mut write = count - 1;
    let mut read = count - 1;
    while remaining > 0 && read > 0 {
        let rev = &mut cfg.revisions[read - 1];
        if rev.percent > remaining {
            rev.percent -= remaining;
            break;
        }
        remaining = remaining.wrapping_sub(rev.percent);
        write -= 1;
        read -= 1;
    }
    cfg.revisions.swap(write, count - 1);
    let newest = &mut cfg.revisions[write];
    newest.percent = newest.percent.wrapping_add(step_size).min(cfg.percent);
    cfg.revisions.truncate(write + 1);
    if cfg.revisions.len() > 1 {
        cfg.step_params.next_step_time = now_ns.wrapping_add(cfg.step_params.step_duration);
    } else {
        cfg.step_params = RolloutParams::default();
    }
}

/// Computes the step interval, step size and next step time once the first 1% is ready.
/// `RO:453-485`
///
/// With `d = max(1, duration − min_step)` seconds left after the first step, the rollout takes
/// `num_steps = min(max(1, d / min_step), percent − 1)` steps (a float, steps are never below
/// 1%), each of `round((percent − 1) / num_steps)` percent and `(d / num_steps) * 1e9` ns.
///
/// Float parity with Go: everything is f64 in that order of operations; `round` is half away
/// from zero like Go's `math.Round`; conversions truncate toward zero. `next_step_time` is
/// `now + interval` added in f64 and then truncated, so at ~1e18 ns it can be off from the
/// integer sum by up to the f64 spacing (128-256 ns), exactly as upstream.
///
/// `percent == 1` (only reachable through a hand-edited annotation) gives `0/0`: the step size
/// is NaN, which `as` turns into 0 (so no step ever happens, see [`step_config`]), and the
/// interval is +inf, which saturates to `i64::MAX`. Go's conversions of these are
/// platform-defined; nothing panics here.
pub fn compute_properties(
    cfg: &mut ConfigurationRollout,
    now_ns: f64,
    min_step_sec: f64,
    duration_secs: f64,
) {
    let left_secs = go_max(1.0, duration_secs - min_step_sec);
    let mut num_steps = go_max(1.0, left_secs / min_step_sec);
    // The first 1% has already moved.
    let rem_percent = cfg.percent.wrapping_sub(1) as f64;
    if rem_percent < num_steps {
        num_steps = rem_percent;
    }
    let step_size = (rem_percent / num_steps).round();
    let step_duration_ns = left_secs / num_steps * NANOS_PER_SEC as f64;
    cfg.step_params.step_duration = step_duration_ns as i64;
    cfg.step_params.step_size = step_size as i64;
    cfg.step_params.next_step_time = (now_ns + step_duration_ns) as i64;
}

/// Merges one configuration of the current desired state (`goal`, a single revision) with its
/// previous state, which is mutated: first [`adjust_percentage`] to `goal.percent`, then
/// `RO:365-446`:
///
/// - same newest revision (or no previous revisions): steady state, or a rollout in progress
///   whose revisions and timing carry over and which steps when `step_size > 0` (it is 0 until
///   [`Rollout::observe_ready`]);
/// - a new revision: it starts at 1%, taken from the newest previous revision with a share > 0;
///   every older revision keeps its share (a stacked rollout, d.15); timing restarts with
///   `start_time = now_ns` and everything else unset.
///
/// **Divergence from upstream** (routing.md d.1). Upstream captures `pc = len(prev.Revisions)`
/// before `adjustPercentage` and then reads `prev.Revisions[pc-1]` (`RO:383`); when a lowered
/// percent removed the oldest revision(s) that index is out of range and the controller
/// panics, again on every retry. Here the goal is compared with the last revision of the
/// *adjusted* list (the same revision whenever upstream does not panic, since adjustment only
/// removes from the front), and a list emptied by the adjustment is treated like an empty
/// previous state (the goal is taken as is). A `goal` without revisions (never produced by
/// `BuildRollout`; upstream would panic on `goal.Revisions[0]`) is returned unchanged, with
/// cleared timing.
pub fn step_config(
    goal: &ConfigurationRollout,
    prev: &mut ConfigurationRollout,
    now_ns: i64,
) -> ConfigurationRollout {
    let mut ret = ConfigurationRollout {
        configuration_name: goal.configuration_name.clone(),
        tag: goal.tag.clone(),
        percent: goal.percent,
        revisions: goal.revisions.clone(),
        // Timing starts empty; filled below when the previous rollout carries over.
        step_params: RolloutParams::default(),
    };
    let Some(goal_rev) = goal.revisions.first() else {
        return ret;
    };
    if !prev.revisions.is_empty() {
        adjust_percentage(goal.percent, prev);
    }
    let same_newest = prev
        .revisions
        .last()
        .is_none_or(|newest| newest.revision_name == goal_rev.revision_name);
    if same_newest {
        if prev.revisions.len() > 1 {
            ret.revisions = prev.revisions.clone();
            ret.step_params = prev.step_params.clone();
            // Before ObserveReady the step size is 0: wait for the ingress.
            if ret.step_params.step_size > 0 {
                step_revisions(&mut ret, now_ns);
            }
        }
        return ret;
    }

    // RO:416-444: a new revision starts (or stacks on) a rollout.
    ret.step_params = RolloutParams {
        start_time: now_ns,
        ..RolloutParams::default()
    };
    if let Some(donor) = prev.revisions.iter_mut().rev().find(|r| r.percent > 0) {
        donor.percent -= 1;
    }
    let mut revisions: Vec<RevisionRollout> = prev
        .revisions
        .iter()
        .filter(|r| r.percent != 0)
        .cloned()
        .collect();
    revisions.push(RevisionRollout {
        revision_name: goal_rev.revision_name.clone(),
        percent: 1,
    });
    ret.revisions = revisions;
    ret
}

/// Go's `time.Duration.Seconds()`: whole seconds plus the nanosecond remainder / 1e9, which is
/// not always the same float as `ns / 1e9`.
fn go_duration_seconds(duration_ns: i64) -> f64 {
    let secs = duration_ns / NANOS_PER_SEC;
    let nanos = duration_ns % NANOS_PER_SEC;
    secs as f64 + nanos as f64 / 1e9
}

/// Go's `math.Max`: +inf wins over NaN, NaN wins over everything else, +0 beats -0. (Rust's
/// `f64::max` ignores NaN instead.)
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `json.Marshal` escapes these for safe embedding in HTML. They can only occur inside JSON
/// strings (never in the structure), so replacing them in the whole text is exact.
fn go_html_escape(json: &str) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(ch),
        }
    }
    out
}
