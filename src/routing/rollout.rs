//! The rollout-duration state machine: a port of serving `pkg/reconciler/route/traffic/rollout.go`
//! (see `docs/knative/routing.md` A1, A4 to A10; citations `RO:a-b` are line ranges of that
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
use serde_json::{Map, Value};

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
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub start_time: i64,
    /// When the next step is due.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub next_step_time: i64,
    /// Nanoseconds between two steps; 0 until `observe_ready` computed it.
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
    pub step_duration: i64,
    /// Percent moved per step; 0 until `observe_ready` computed it (no step happens before).
    #[serde(skip_serializing_if = "is_zero", deserialize_with = "null_as_default")]
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
    /// Decoding follows Go's `encoding/json` where serde differs: missing keys and `null` are
    /// zero values, unknown keys are ignored, keys match case-insensitively when no exact key
    /// is present (`"Percent"` sets `percent`), a repeated key keeps the last value, and an
    /// array where an object belongs is an error (serde would read it positionally). Remaining
    /// differences, reachable only by hand-editing: when several case variants of a key appear
    /// (`"Percent"` and `"PERCENT"`) Go keeps the last in the document, here the first in byte
    /// order wins; Go's `null` after a value for the same key keeps the value, here it resets
    /// it; and the integer literal `-0` is rejected (serde reads it as a float).
    pub fn from_json(annotation: &str) -> Option<Rollout> {
        let mut value: Value = serde_json::from_str(annotation).ok()?;
        if !go_normalize(&mut value, GoShape::Rollout) {
            return None;
        }
        serde_json::from_value::<Rollout>(value)
            .ok()
            .filter(Rollout::validate)
    }
}

/// The structs an annotation decodes into, for [`go_normalize`].
#[derive(Clone, Copy)]
enum GoShape {
    Rollout,
    Configuration,
    Revision,
    Params,
}

impl GoShape {
    /// The JSON keys of the struct.
    fn keys(self) -> &'static [&'static str] {
        match self {
            GoShape::Rollout => &["configurations"],
            GoShape::Configuration => &[
                "configurationName",
                "tag",
                "percent",
                "revisions",
                "stepParams",
            ],
            GoShape::Revision => &["revisionName", "percent"],
            GoShape::Params => &["starttime", "nextStepTime", "stepDuration", "stepSize"],
        }
    }
}

/// Rewrites a parsed annotation so that serde decodes it as Go's `json.Unmarshal` would:
/// `null` objects become `{}` (zero values), keys that match a field only case-insensitively
/// are renamed to it, and nested objects are visited. Returns false where Go fails (a
/// non-object where a struct belongs, a non-array where a slice belongs). Scalars are left to
/// serde, whose type errors match Go's for these field types.
fn go_normalize(value: &mut Value, shape: GoShape) -> bool {
    let object = match value {
        Value::Null => {
            *value = Value::Object(Map::new());
            return true;
        }
        Value::Object(object) => object,
        _ => return false,
    };
    let fields = shape.keys();
    let inexact: Vec<String> = object
        .keys()
        .filter(|k| !fields.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in inexact {
        if let Some(field) = fields.iter().find(|f| go_fold_eq(&key, f)) {
            let v = object.remove(&key).expect("the key was just listed");
            // An exact key, or an earlier variant, wins.
            object.entry(*field).or_insert(v);
        }
    }
    let nested_ok =
        |object: &mut Map<String, Value>, key: &str, shape: GoShape, array: bool| match object
            .get_mut(key)
        {
            None => true,
            Some(v) if array => match v {
                Value::Null => true,
                Value::Array(items) => items.iter_mut().all(|item| go_normalize(item, shape)),
                _ => false,
            },
            Some(v) => go_normalize(v, shape),
        };
    match shape {
        GoShape::Rollout => nested_ok(object, "configurations", GoShape::Configuration, true),
        GoShape::Configuration => {
            nested_ok(object, "revisions", GoShape::Revision, true)
                && nested_ok(object, "stepParams", GoShape::Params, false)
        }
        GoShape::Revision | GoShape::Params => true,
    }
}

/// Go's key matching fallback (`bytes.EqualFold`, simple Unicode case folding) against one of
/// our ASCII field names: each character must fold to the field's character, so the Kelvin
/// sign matches `k` and the long s matches `s` as in Go.
fn go_fold_eq(key: &str, field: &str) -> bool {
    let mut key_chars = key.chars();
    for f in field.chars() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let folds = k == f
            || k.to_lowercase().eq(f.to_lowercase())
            || k.to_uppercase().eq(f.to_uppercase());
        if !folds {
            return false;
        }
    }
    key_chars.next().is_none()
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

/// `reconcileRollout` (RR:331-383, routing.md A4): one route reconcile's effective rollout.
///
/// - `cur` is `BuildRollout()` of the resolved traffic (the desired state);
/// - `annotation` is the KIngress's stored rollout annotation, if any; an unparseable or invalid
///   one counts as no previous state (RR:311-329);
/// - `rollout_secs` is the reconciler's duration (`reconciler_rollout_secs`): `<= 0` disables
///   gradual rollout and returns `cur`;
/// - `ingress_ready` is the KIngress `Ready` condition, `route_ingress_ready` the route's own
///   `IngressReady` condition: timing is observed while the first is true and the second is not.
///
/// Returns the effective rollout (what the ingress is programmed with and the next annotation)
/// and the time of the next step, 0 when nothing is scheduled (the caller's `enqueueAfter`).
pub fn reconcile_rollout(
    cur: &Rollout,
    annotation: Option<&str>,
    rollout_secs: i64,
    ingress_ready: bool,
    route_ingress_ready: bool,
    now_ns: i64,
) -> (Rollout, i64) {
    if rollout_secs <= 0 {
        return (cur.clone(), 0);
    }
    let mut prev = annotation.and_then(Rollout::from_json);
    if ingress_ready && !route_ingress_ready {
        if let Some(prev) = prev.as_mut() {
            prev.observe_ready(now_ns, rollout_secs as f64);
        }
    }
    cur.step(prev.as_ref(), now_ns)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rev(name: &str, percent: i64) -> RevisionRollout {
        RevisionRollout {
            revision_name: name.to_owned(),
            percent,
        }
    }

    /// StepParams as the spec writes them: SP{st, nst, dur, sz}.
    fn sp(
        start_time: i64,
        next_step_time: i64,
        step_duration: i64,
        step_size: i64,
    ) -> RolloutParams {
        RolloutParams {
            start_time,
            next_step_time,
            step_duration,
            step_size,
        }
    }

    fn st(start_time: i64) -> RolloutParams {
        sp(start_time, 0, 0, 0)
    }

    fn cfg(
        name: &str,
        tag: &str,
        percent: i64,
        revisions: &[(&str, i64)],
        step_params: RolloutParams,
    ) -> ConfigurationRollout {
        ConfigurationRollout {
            configuration_name: name.to_owned(),
            tag: tag.to_owned(),
            percent,
            revisions: revisions.iter().map(|&(n, p)| rev(n, p)).collect(),
            step_params,
        }
    }

    /// A default-tag configuration without timing.
    fn plain(name: &str, percent: i64, revisions: &[(&str, i64)]) -> ConfigurationRollout {
        cfg(name, "", percent, revisions, RolloutParams::default())
    }

    fn ro(configurations: Vec<ConfigurationRollout>) -> Rollout {
        Rollout { configurations }
    }

    fn percents(revs: &[RevisionRollout]) -> Vec<i64> {
        revs.iter().map(|r| r.percent).collect()
    }

    /// Revisions with empty names, as the upstream tests of the helpers write them.
    fn anon(percents: &[i64]) -> Vec<RevisionRollout> {
        percents.iter().map(|&p| rev("", p)).collect()
    }

    // Upstream revision names (RT:35-1008), shortened only where the spec shortens them.
    const THEIR: &str = "their-satanic-majesties-request";
    const LET: &str = "let-it-bleed";
    const STICKY: &str = "sticky-fingers";
    const BEGGARS: &str = "beggars-banquet";
    const GOAT: &str = "goat-head-soup";
    const NOW_C1: i64 = 2020;

    struct StepCase {
        name: &'static str,
        prev: Option<Rollout>,
        cur: Rollout,
        want: Rollout,
        want_next: i64,
    }

    /// The two-configuration previous state of C1 #5 and #6.
    fn mick_keith_prev() -> Rollout {
        ro(vec![
            cfg(
                "keith",
                "",
                52,
                &[(STICKY, 36), (BEGGARS, 16)],
                sp(1971, 2018, 55, 4),
            ),
            cfg(
                "mick",
                "",
                42,
                &[(THEIR, 37), (LET, 5)],
                sp(1961, 2019, 43, 3),
            ),
        ])
    }

    fn mick_stepped() -> ConfigurationRollout {
        cfg(
            "mick",
            "",
            42,
            &[(THEIR, 34), (LET, 8)],
            sp(1961, 2063, 43, 3),
        )
    }

    fn step_cases() -> Vec<StepCase> {
        vec![
            // C1#1 "no prev"
            StepCase {
                name: "no prev",
                prev: None,
                cur: ro(vec![]),
                want: ro(vec![]),
                want_next: 0,
            },
            // C1#2 "prev is empty"
            StepCase {
                name: "prev is empty",
                prev: Some(ro(vec![plain("mick", 100, &[])])),
                cur: ro(vec![plain("mick", 100, &[(LET, 100)])]),
                want: ro(vec![plain("mick", 100, &[(LET, 100)])]),
                want_next: 0,
            },
            // C1#3 "simplest, same": the goal's params are dropped.
            StepCase {
                name: "simplest, same",
                prev: Some(ro(vec![plain("mick", 100, &[(LET, 100)])])),
                cur: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(LET, 100)],
                    sp(2004, 2009, 2020, 14),
                )]),
                want: ro(vec![plain("mick", 100, &[(LET, 100)])]),
                want_next: 0,
            },
            // C1#4 "simplest, step"
            StepCase {
                name: "simplest, step",
                prev: Some(ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(THEIR, 95), (LET, 5)],
                    sp(2004, 2019, 5, 3),
                )])),
                cur: ro(vec![plain("mick", 100, &[(LET, 100)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(THEIR, 92), (LET, 8)],
                    sp(2004, 2025, 5, 3),
                )]),
                want_next: 2025,
            },
            // C1#5 "multiple configs step"
            StepCase {
                name: "multiple configs step",
                prev: Some(mick_keith_prev()),
                cur: ro(vec![
                    plain("keith", 52, &[(BEGGARS, 52)]),
                    plain("mick", 42, &[(LET, 42)]),
                ]),
                want: ro(vec![
                    cfg(
                        "keith",
                        "",
                        52,
                        &[(STICKY, 32), (BEGGARS, 20)],
                        sp(1971, 2075, 55, 4),
                    ),
                    mick_stepped(),
                ]),
                want_next: 2063,
            },
            // C1#6 "multiple configs step and roll"
            StepCase {
                name: "multiple configs step and roll",
                prev: Some(mick_keith_prev()),
                cur: ro(vec![
                    plain("keith", 52, &[("tattoo-you", 52)]),
                    plain("mick", 42, &[(LET, 42)]),
                ]),
                want: ro(vec![
                    cfg(
                        "keith",
                        "",
                        52,
                        &[(STICKY, 36), (BEGGARS, 15), ("tattoo-you", 1)],
                        st(NOW_C1),
                    ),
                    mick_stepped(),
                ]),
                want_next: 2063,
            },
            // C1#7 "simplest, step, when stepsize=0": before ObserveReady nothing moves.
            StepCase {
                name: "simplest, step, when stepsize=0",
                prev: Some(ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(THEIR, 95), (LET, 5)],
                    st(2004),
                )])),
                cur: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(LET, 100)],
                    sp(2004, 2009, 2020, 14),
                )]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(THEIR, 95), (LET, 5)],
                    st(2004),
                )]),
                want_next: 0,
            },
            // C1#8 "when new revision becomes 0%"
            StepCase {
                name: "when new revision becomes 0%",
                prev: Some(ro(vec![plain(
                    "charlie",
                    100,
                    &[("your-satanic-majesties-request", 100)],
                )])),
                cur: ro(vec![plain("charlie", 0, &[("aftermath", 0)])]),
                want: ro(vec![]),
                want_next: 0,
            },
            // C1#9 "when new config is added but it's 0%"
            StepCase {
                name: "when new config is added but it's 0%",
                prev: Some(ro(vec![plain(
                    "mick",
                    100,
                    &[("between-the-buttons", 100)],
                )])),
                cur: ro(vec![
                    plain("charlie", 0, &[("aftermath", 0)]),
                    plain("mick", 100, &[("between-the-buttons", 100)]),
                ]),
                want: ro(vec![plain("mick", 100, &[("between-the-buttons", 100)])]),
                want_next: 0,
            },
            // C1#10 "simplest, roll": old timing is thrown out.
            StepCase {
                name: "simplest, roll",
                prev: Some(ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 100)],
                    sp(1981, 1984, 1988, 11),
                )])),
                cur: ro(vec![plain("mick", 100, &[(LET, 100)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 99), (LET, 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#11 "roll with percentage change down"
            StepCase {
                name: "roll with percentage change down",
                prev: Some(ro(vec![plain(
                    "mick",
                    42,
                    &[(GOAT, 11), ("aftermath", 31)],
                )])),
                cur: ro(vec![plain("mick", 33, &[(LET, 33)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    33,
                    &[(GOAT, 2), ("aftermath", 30), (LET, 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#12 "roll with percentage change up"
            StepCase {
                name: "roll with percentage change up",
                prev: Some(ro(vec![plain(
                    "mick",
                    25,
                    &[(GOAT, 11), ("aftermath", 14)],
                )])),
                cur: ro(vec![plain("mick", 75, &[(LET, 75)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    75,
                    &[(GOAT, 11), ("aftermath", 63), (LET, 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#13 "roll, where sum < 100% (one route targets a revision, e.g.)"
            StepCase {
                name: "roll, where sum < 100%",
                prev: Some(ro(vec![plain("brian", 70, &[("exile-on-main-st", 70)])])),
                cur: ro(vec![plain("brian", 70, &[(LET, 70)])]),
                want: ro(vec![cfg(
                    "brian",
                    "",
                    70,
                    &[("exile-on-main-st", 69), (LET, 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#14 "roll with two existing revisions, no deletes"
            StepCase {
                name: "roll with two existing revisions, no deletes",
                prev: Some(ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 95), (BEGGARS, 5)],
                    st(NOW_C1 - 1982),
                )])),
                cur: ro(vec![plain("mick", 100, &[(STICKY, 100)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 95), (BEGGARS, 4), (STICKY, 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#15 "roll with delete (two fast successive rolls)"
            StepCase {
                name: "roll with delete (two fast successive rolls)",
                prev: Some(ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 99), ("bridges-to-babylon", 1)],
                    st(NOW_C1 - 1984),
                )])),
                cur: ro(vec![plain("mick", 100, &[("between-the-buttons", 100)])]),
                want: ro(vec![cfg(
                    "mick",
                    "",
                    100,
                    &[(GOAT, 99), ("between-the-buttons", 1)],
                    st(NOW_C1),
                )]),
                want_next: 0,
            },
            // C1#16 "roll with delete (minimal config target)": 1% switches at once.
            StepCase {
                name: "roll with delete (minimal config target)",
                prev: Some(ro(vec![plain("mick", 1, &[("bridges-to-babylon", 1)])])),
                cur: ro(vec![plain("mick", 1, &[("between-the-buttons", 1)])]),
                want: ro(vec![plain("mick", 1, &[("between-the-buttons", 1)])]),
                want_next: 0,
            },
            // C1#17 "new tag, no roll"
            StepCase {
                name: "new tag, no roll",
                prev: Some(ro(vec![plain("mick", 100, &[("black-on-blue", 100)])])),
                cur: ro(vec![
                    plain("mick", 100, &[("black-on-blue", 100)]),
                    cfg(
                        "mick",
                        "jagger",
                        100,
                        &[("black-on-blue", 100)],
                        RolloutParams::default(),
                    ),
                ]),
                want: ro(vec![
                    plain("mick", 100, &[("black-on-blue", 100)]),
                    cfg(
                        "mick",
                        "jagger",
                        100,
                        &[("black-on-blue", 100)],
                        RolloutParams::default(),
                    ),
                ]),
                want_next: 0,
            },
            // C1#18 "deleted config, no roll"
            StepCase {
                name: "deleted config, no roll",
                prev: Some(ro(vec![
                    plain("keith", 50, &[("black-on-blue", 50)]),
                    plain("mick", 50, &[("it's-only-rock-n-roll", 50)]),
                ])),
                cur: ro(vec![plain("mick", 100, &[("it's-only-rock-n-roll", 100)])]),
                want: ro(vec![plain("mick", 100, &[("it's-only-rock-n-roll", 100)])]),
                want_next: 0,
            },
            // C1#19 "a/b config, roll both": only the 99% one rolls gradually.
            StepCase {
                name: "a/b config, roll both",
                prev: Some(ro(vec![
                    plain("keith", 99, &[("can't-get-no-satisfaction", 99)]),
                    plain("mick", 1, &[("get-off-my-cloud", 1)]),
                ])),
                cur: ro(vec![
                    plain("keith", 99, &[("black-on-blue", 99)]),
                    plain("mick", 1, &[("it's-only-rock-n-roll", 1)]),
                ]),
                want: ro(vec![
                    cfg(
                        "keith",
                        "",
                        99,
                        &[("can't-get-no-satisfaction", 98), ("black-on-blue", 1)],
                        st(NOW_C1),
                    ),
                    plain("mick", 1, &[("it's-only-rock-n-roll", 1)]),
                ]),
                want_next: 0,
            },
            // C1#20 "new config, no roll, newer smaller"
            StepCase {
                name: "new config, no roll, newer smaller",
                prev: Some(ro(vec![plain(
                    "mick",
                    100,
                    &[("it's-only-rock-n-roll", 100)],
                )])),
                cur: ro(vec![
                    plain("keith", 50, &[("black-on-blue", 50)]),
                    plain("mick", 50, &[("it's-only-rock-n-roll", 50)]),
                ]),
                want: ro(vec![
                    plain("keith", 50, &[("black-on-blue", 50)]),
                    plain("mick", 50, &[("it's-only-rock-n-roll", 50)]),
                ]),
                want_next: 0,
            },
            // C1#21 "new config, no roll, newer larger"
            StepCase {
                name: "new config, no roll, newer larger",
                prev: Some(ro(vec![plain("keith", 100, &[("black-on-blue", 100)])])),
                cur: ro(vec![
                    plain("keith", 50, &[("black-on-blue", 50)]),
                    plain("mick", 50, &[("it's-only-rock-n-roll", 50)]),
                ]),
                want: ro(vec![
                    plain("keith", 50, &[("black-on-blue", 50)]),
                    plain("mick", 50, &[("it's-only-rock-n-roll", 50)]),
                ]),
                want_next: 0,
            },
        ]
    }

    #[test]
    fn step_matches_upstream_test_step() {
        let cases = step_cases();
        assert_eq!(cases.len(), 21, "every TestStep row is ported");
        for case in cases {
            let (got, got_next) = case.cur.step(case.prev.as_ref(), NOW_C1);
            assert_eq!(got, case.want, "{}", case.name);
            assert!(got.validate(), "{}: output must validate", case.name);
            assert_eq!(got_next, case.want_next, "{}: next step time", case.name);
        }
    }

    #[test]
    fn step_does_not_modify_prev() {
        let prev = mick_keith_prev();
        let cur = ro(vec![
            plain("keith", 10, &[("tattoo-you", 10)]),
            plain("mick", 42, &[(LET, 42)]),
        ]);
        let before = prev.clone();
        let _ = cur.step(Some(&prev), NOW_C1);
        assert_eq!(prev, before);
    }

    // C2: TestObserveReady (RT:1010-1129).
    #[test]
    fn observe_ready_matches_upstream() {
        const NOW: i64 = 200_620_092_020 + 1982;
        const OLDEN_DAYS: i64 = 198_219_841_988;
        const ANCIENT_DAYS: i64 = 14_921_812;
        const DURATION_SECS: f64 = 120.0;
        let secs = |n: i64| n * NANOS_PER_SEC;
        // (upstream config name, percent, input params, wanted params)
        let rows: Vec<(&str, i64, RolloutParams, RolloutParams)> = vec![
            // "has-step": StepDuration != 0, untouched.
            ("has-step", 100, sp(0, 0, 11, 0), sp(0, 0, 11, 0)),
            // "no-step-no-begin": StartTime == 0, untouched.
            ("no-step-no-begin", 100, sp(0, 0, 0, 0), sp(0, 0, 0, 0)),
            // "step-begin < 1s": minStep 1, d 119, 99 steps of 1%.
            (
                "step-begin < 1s",
                100,
                st(200_620_092_020),
                sp(200_620_092_020, NOW + 1_202_020_202, 1_202_020_202, 1),
            ),
            // "step-begin > 1s": minStep 3, d 117, 39 steps, round(99/39) = 3.
            (
                "step-begin > 1s",
                100,
                st(OLDEN_DAYS),
                sp(OLDEN_DAYS, NOW + secs(3), secs(3), 3),
            ),
            // "step-begin > 1s, step size round up": round(74/39) = 2.
            (
                "step-begin > 1s, step size round up",
                75,
                st(OLDEN_DAYS),
                sp(OLDEN_DAYS, NOW + secs(3), secs(3), 2),
            ),
            // "Percent not 100%": round(49/39) = 1.
            (
                "Percent not 100%",
                50,
                st(OLDEN_DAYS),
                sp(OLDEN_DAYS, NOW + secs(3), secs(3), 1),
            ),
            // "días antiguos": minStep 201 > duration, so one step of 12% after 1 s.
            (
                "días antiguos",
                13,
                st(ANCIENT_DAYS),
                sp(ANCIENT_DAYS, NOW + secs(1), secs(1), 12),
            ),
        ];
        let mut rollout = ro(rows
            .iter()
            .map(|(name, p, input, _)| cfg(name, "", *p, &[], input.clone()))
            .collect());
        rollout.observe_ready(NOW, DURATION_SECS);
        for ((name, _, _, want), got) in rows.iter().zip(&rollout.configurations) {
            assert_eq!(&got.step_params, want, "{name}");
        }
    }

    // C3: TestStepRevisions (RT:1457-1646).
    #[test]
    fn step_revisions_matches_upstream() {
        // (subtest, now, percent, revisions, params, wanted revisions, wanted params)
        type Row = (
            &'static str,
            i64,
            i64,
            Vec<i64>,
            RolloutParams,
            Vec<i64>,
            RolloutParams,
        );
        let rows: Vec<Row> = vec![
            (
                "noop (1): too soon",
                1982,
                0,
                vec![10, 5, 60],
                sp(0, 1984, 0, 10),
                vec![10, 5, 60],
                sp(0, 1984, 0, 10),
            ),
            (
                "noop (2): done",
                1982,
                0,
                vec![10],
                sp(0, 1984, 10, 10),
                vec![10],
                sp(0, 1984, 10, 10),
            ),
            (
                "step last, exact time",
                1984,
                90,
                vec![30, 60],
                sp(0, 1984, 55, 10),
                vec![20, 70],
                sp(0, 2039, 55, 10),
            ),
            (
                "step last, delete some",
                1988,
                90,
                vec![22, 5, 3, 60],
                sp(0, 1984, 55, 10),
                vec![20, 70],
                sp(0, 2043, 55, 10),
            ),
            (
                "over target now",
                1988,
                15,
                vec![5, 1, 1, 8],
                sp(0, 1984, 77, 10),
                vec![15],
                RolloutParams::default(),
            ),
            (
                "the very last step",
                2006,
                15,
                vec![5, 1, 1, 8],
                sp(1977, 1984, 77, 8),
                vec![15],
                RolloutParams::default(),
            ),
        ];
        for (name, now, percent, revs, params, want_revs, want_params) in rows {
            let mut c = ConfigurationRollout {
                percent,
                revisions: anon(&revs),
                step_params: params,
                ..ConfigurationRollout::default()
            };
            step_revisions(&mut c, now);
            assert_eq!(percents(&c.revisions), want_revs, "{name}");
            assert_eq!(c.step_params, want_params, "{name}");
            assert_eq!(c.percent, percent, "{name}: percent untouched");
        }
    }

    #[test]
    fn step_revisions_moves_the_newest_revision_down() {
        // The newest revision keeps its name when older ones drop out.
        let mut c = cfg(
            "c",
            "",
            90,
            &[("a", 22), ("b", 5), ("c", 3), ("d", 60)],
            sp(0, 1984, 55, 10),
        );
        step_revisions(&mut c, 1988);
        assert_eq!(c.revisions, vec![rev("a", 20), rev("d", 70)]);
    }

    // C4: TestAdjustPercentage (RT:1131-1256).
    #[test]
    fn adjust_percentage_matches_upstream() {
        // (subtest, goal, prev percent, prev revisions, wanted revisions)
        type Row = (&'static str, i64, i64, Vec<i64>, Vec<i64>);
        let rows: Vec<Row> = vec![
            ("noop, 100%", 100, 100, vec![71, 29], vec![71, 29]),
            ("noop, 42%", 42, 42, vec![21, 21], vec![21, 21]),
            ("raise, 42% -> 75%", 75, 42, vec![21, 21], vec![21, 54]),
            ("lower, 75%->42%, lose 1", 42, 75, vec![21, 54], vec![42]),
            (
                "lower, 75%->42%, lose 1, update 2, keep 3",
                42,
                75,
                vec![21, 22, 32],
                vec![10, 32],
            ),
            (
                "lower, 75%->42%, lose 2, update 3",
                42,
                75,
                vec![10, 5, 60],
                vec![42],
            ),
            ("go to 0%", 0, 75, vec![10, 5, 60], vec![]),
        ];
        for (name, goal, prev_percent, revs, want) in rows {
            let mut prev = ConfigurationRollout {
                percent: prev_percent,
                revisions: anon(&revs),
                ..ConfigurationRollout::default()
            };
            adjust_percentage(goal, &mut prev);
            assert_eq!(percents(&prev.revisions), want, "{name}");
            assert_eq!(
                prev.percent, prev_percent,
                "{name}: prev percent is not updated"
            );
        }
    }

    #[test]
    fn adjust_percentage_up_on_an_empty_list_does_nothing() {
        let mut prev = plain("c", 10, &[]);
        adjust_percentage(50, &mut prev);
        assert!(prev.revisions.is_empty());
    }

    // C5: TestValidateFailures (RT:1258-1360).
    #[test]
    fn validate_failures() {
        let rows: Vec<(&str, Rollout)> = vec![
            (
                "config > 100%",
                ro(vec![plain("keith", 101, &[("black-on-blue", 101)])]),
            ),
            (
                "step size > percent",
                ro(vec![cfg(
                    "keith",
                    "",
                    71,
                    &[("black-on-blue", 71)],
                    sp(0, 0, 0, 75),
                )]),
            ),
            (
                "step size < 0",
                ro(vec![cfg(
                    "keith",
                    "",
                    71,
                    &[("black-on-blue", 71)],
                    sp(0, 0, 0, -1),
                )]),
            ),
            (
                "rev more than config",
                ro(vec![plain("keith", 42, &[("black-on-blue", 43)])]),
            ),
            (
                "revs more than config",
                ro(vec![plain(
                    "keith",
                    42,
                    &[("black-on-blue", 41), ("smith", 3)],
                )]),
            ),
            (
                "2nd config > 100%",
                ro(vec![
                    plain("rob", 10, &[("roy", 10)]),
                    cfg(
                        "keith",
                        "richards",
                        101,
                        &[("black-on-blue", 101)],
                        RolloutParams::default(),
                    ),
                ]),
            ),
        ];
        for (name, r) in rows {
            assert!(!r.validate(), "{name}: must fail validation");
            assert_eq!(
                Rollout::from_json(&r.to_json()),
                None,
                "{name}: dropped on read"
            );
        }
    }

    #[test]
    fn validate_accepts_edges() {
        // Percent 100 with step size == percent, and an empty rollout, are fine.
        let r = ro(vec![cfg(
            "a",
            "",
            100,
            &[("x", 60), ("y", 40)],
            sp(1, 2, 3, 100),
        )]);
        assert!(r.validate());
        assert!(ro(vec![]).validate());
        assert!(ro(vec![plain("no", 0, &[])]).validate());
    }

    // C5: TestConfigDone (RT:1362-1409).
    #[test]
    fn config_done() {
        let one = plain("one", 100, &[("roy", 100)]);
        let none = plain("no", 0, &[]);
        let many = plain("many", 100, &[("black-on-blue", 83), ("flowers", 17)]);
        assert!(one.done(), "single revision rollout is done");
        assert!(none.done(), "zero revisions rollout is done");
        assert!(!many.done(), "many revisions rollout is not done");
        assert!(ro(vec![one.clone(), none.clone()]).done());
        assert!(!ro(vec![one, none, many]).done(), "one config in progress");
        assert!(ro(vec![]).done());
    }

    // C5: TestGetByTag (RT:1648-1716).
    #[test]
    fn rollouts_by_tag() {
        let mut r = ro(vec![
            plain("one", 50, &[("rob", 10), ("roy", 40)]),
            plain("two", 40, &[("wish", 40)]),
            cfg(
                "two",
                "gilberto",
                100,
                &[("wish", 100)],
                RolloutParams::default(),
            ),
            plain("three", 10, &[("forty-two", 5), ("flowers", 5)]),
            cfg(
                "three",
                "jobim",
                100,
                &[("forty-two", 60), ("flowers", 40)],
                RolloutParams::default(),
            ),
        ]);
        r.sort();
        let keys: Vec<(&str, &str)> = r
            .configurations
            .iter()
            .map(|c| (c.configuration_name.as_str(), c.tag.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("one", ""),
                ("three", ""),
                ("two", ""),
                ("two", "gilberto"),
                ("three", "jobim")
            ]
        );
        assert_eq!(r.rollouts_by_tag(""), &r.configurations[0..3]);
        assert_eq!(r.rollouts_by_tag("gilberto"), &r.configurations[3..4]);
        assert_eq!(r.rollouts_by_tag("jobim"), &r.configurations[4..5]);
        assert!(r.rollouts_by_tag("nyaful").is_empty());
        // Between two tags, and past the end.
        assert!(r.rollouts_by_tag("h").is_empty());
        assert!(r.rollouts_by_tag("zzz").is_empty());
        assert!(ro(vec![]).rollouts_by_tag("").is_empty());
    }

    #[test]
    fn sort_is_by_tag_then_name_in_byte_order() {
        let mut r = ro(vec![
            plain("b", 1, &[]),
            cfg("a", "t", 1, &[], RolloutParams::default()),
            plain("B", 1, &[]),
            plain("a", 1, &[]),
        ]);
        r.sort();
        let keys: Vec<(&str, &str)> = r
            .configurations
            .iter()
            .map(|c| (c.tag.as_str(), c.configuration_name.as_str()))
            .collect();
        // Upper case sorts before lower case in bytes.
        assert_eq!(keys, vec![("", "B"), ("", "a"), ("", "b"), ("t", "a")]);
    }

    // C5: TestJSONRoundtrip.
    #[test]
    fn json_roundtrip() {
        let orig = ro(vec![
            cfg("one", "", 100, &[("roy", 100)], sp(1955, 1988, 1984, 0)),
            plain("no", 0, &[]),
            plain("many", 100, &[("black-on-blue", 83), ("flowers", 17)]),
        ]);
        let json = orig.to_json();
        assert_eq!(
            json,
            concat!(
                r#"{"configurations":["#,
                r#"{"configurationName":"one","percent":100,"revisions":[{"revisionName":"roy","percent":100}],"#,
                r#""stepParams":{"starttime":1955,"nextStepTime":1988,"stepDuration":1984}},"#,
                r#"{"configurationName":"no","percent":0,"stepParams":{}},"#,
                r#"{"configurationName":"many","percent":100,"revisions":[{"revisionName":"black-on-blue","percent":83},{"revisionName":"flowers","percent":17}],"stepParams":{}}"#,
                r#"]}"#
            )
        );
        assert_eq!(Rollout::from_json(&json), Some(orig));
    }

    // A1 / IT:142 (TestMakeIngressWithTaggedRollout) and IT:53 (empty rollout).
    #[test]
    fn json_matches_go_annotation() {
        const IT142: &str = r#"{"configurations":[{"configurationName":"valhalla","percent":100,"revisions":[{"revisionName":"valhalla-01982","percent":100}],"stepParams":{}},{"configurationName":"thor","tag":"tagged","percent":100,"revisions":[{"revisionName":"thor-02020","percent":100}],"stepParams":{}}]}"#;
        let r = ro(vec![
            plain("valhalla", 100, &[("valhalla-01982", 100)]),
            cfg(
                "thor",
                "tagged",
                100,
                &[("thor-02020", 100)],
                RolloutParams::default(),
            ),
        ]);
        assert_eq!(r.to_json(), IT142);
        assert_eq!(Rollout::from_json(IT142), Some(r));
        assert_eq!(ro(vec![]).to_json(), "{}");
        assert_eq!(Rollout::from_json("{}"), Some(ro(vec![])));
        // Step size is the last key, all four present in Go's order.
        let full = ro(vec![cfg("c", "", 2, &[("a", 1), ("b", 1)], sp(1, 2, 3, 1))]);
        assert!(full.to_json().contains(
            r#""stepParams":{"starttime":1,"nextStepTime":2,"stepDuration":3,"stepSize":1}"#
        ));
    }

    #[test]
    fn json_escapes_like_go() {
        let r = ro(vec![plain("a<b>&c\u{2028}", 0, &[])]);
        let json = r.to_json();
        assert_eq!(
            json,
            r#"{"configurations":[{"configurationName":"a\u003cb\u003e\u0026c\u2028","percent":0,"stepParams":{}}]}"#
        );
        assert_eq!(Rollout::from_json(&json), Some(r));
    }

    #[test]
    fn from_json_drops_what_the_reconciler_drops() {
        // RR:311-329: unparseable or invalid means "no previous state".
        for bad in [
            "",
            "not json",
            "[]",
            "[[]]",
            r#"{"configurations":{}}"#,
            r#"{"configurations":[["a","",0]]}"#,
            r#"{"configurations":[{"configurationName":"a","stepParams":[]}]}"#,
            r#"{"configurations":[{"configurationName":"a","revisions":{}}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":"100"}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":1.5}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":1e2}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":9223372036854775808}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":50,"revisions":[{"revisionName":"x","percent":40}]}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":101,"revisions":[{"revisionName":"x","percent":101}]}]}"#,
            r#"{"configurations":[{"configurationName":"a","percent":10,"revisions":[{"revisionName":"x","percent":10}],"stepParams":{"stepSize":11}}]}"#,
            r#"{"configurations":[]} trailing"#,
        ] {
            assert_eq!(Rollout::from_json(bad), None, "{bad}");
        }
    }

    #[test]
    fn from_json_reads_missing_and_null_as_zero_like_go() {
        let got = Rollout::from_json(
            r#"{"configurations":[{"configurationName":"a","tag":null,"revisions":null,"stepParams":null,"extra":1},{"percent":5,"revisions":[{"revisionName":"x","percent":5}]}],"unknown":true}"#,
        );
        assert_eq!(
            got,
            Some(ro(vec![plain("a", 0, &[]), plain("", 5, &[("x", 5)])]))
        );
        assert_eq!(
            Rollout::from_json(r#"{"configurations":null}"#),
            Some(ro(vec![]))
        );
        // A top-level null leaves the zero value in Go: an empty, valid rollout.
        assert_eq!(Rollout::from_json("null"), Some(ro(vec![])));
        // A null element of the slice is a zero-valued configuration.
        assert_eq!(
            Rollout::from_json(r#"{"configurations":[null]}"#),
            Some(ro(vec![plain("", 0, &[])]))
        );
    }

    #[test]
    fn from_json_matches_keys_like_go() {
        // Case-insensitive fallback, including Go's Kelvin sign and long s folds.
        let got = Rollout::from_json(
            "{\"Configurations\":[{\"CONFIGURATIONNAME\":\"a\",\"Percent\":5,\"Revisions\":[{\"RevisionName\":\"x\",\"percent\":5}],\"stepparams\":{\"StartTime\":7,\"\u{017F}tep\u{212A}ize\":0}}]}",
        );
        assert_eq!(got, Some(ro(vec![cfg("a", "", 5, &[("x", 5)], st(7))])));
        // An exact key wins over a case variant; a repeated key keeps the last value.
        let got = Rollout::from_json(
            r#"{"configurations":[{"Percent":9,"percent":5,"percent":4,"revisions":[{"revisionName":"x","percent":4}]}]}"#,
        );
        assert_eq!(got, Some(ro(vec![plain("", 4, &[("x", 4)])])));
        assert!(go_fold_eq("percent", "percent"));
        assert!(!go_fold_eq("percents", "percent"));
        assert!(!go_fold_eq("percen", "percent"));
    }

    // C6 "simple route rollout when ingress becomes ready" (TBL:393-496).
    #[test]
    fn reconciler_vector_ingress_becomes_ready() {
        let now = 1_000_000_000 * NANOS_PER_SEC; // time.Unix(1e9, 0)
        let mut prev = ro(vec![cfg(
            "config",
            "",
            100,
            &[("config-00000", 99), ("config-00001", 1)],
            st(now - 3 * NANOS_PER_SEC),
        )]);
        prev.observe_ready(now, 120.0);
        assert_eq!(
            prev.configurations[0].step_params,
            sp(
                now - 3 * NANOS_PER_SEC,
                now + 3 * NANOS_PER_SEC,
                3 * NANOS_PER_SEC,
                3
            )
        );
        let cur = ro(vec![plain("config", 100, &[("config-00001", 100)])]);
        let (effective, next) = cur.step(Some(&prev), now);
        assert_eq!(
            effective.configurations[0].revisions,
            vec![rev("config-00000", 99), rev("config-00001", 1)]
        );
        assert_eq!(next, now + 3 * NANOS_PER_SEC);
        assert!(!effective.done());
    }

    // C6 "simple route rollout and rollout ends" (TBL:497-568).
    #[test]
    fn reconciler_vector_rollout_ends() {
        let now = 1_000_000_000 * NANOS_PER_SEC;
        let mut prev = ro(vec![cfg(
            "config",
            "",
            100,
            &[("config-00000", 1), ("config-00001", 99)],
            sp(
                now - 3600 * NANOS_PER_SEC,
                now - NANOS_PER_SEC,
                NANOS_PER_SEC,
                4,
            ),
        )]);
        prev.observe_ready(now, 120.0); // no-op: the timing is already set
        let cur = ro(vec![plain("config", 100, &[("config-00001", 100)])]);
        let (effective, next) = cur.step(Some(&prev), now);
        assert_eq!(effective, cur, "the annotation equals the baseline");
        assert_eq!(next, 0);
        assert!(effective.done());
    }

    // C6 "new latest ready revision; rollout enabled" (TBL:851-940).
    #[test]
    fn reconciler_vector_new_latest_ready_revision() {
        let now = 1_000_000_000 * NANOS_PER_SEC;
        let prev = ro(vec![plain("config", 100, &[("config-00001", 100)])]);
        let cur = ro(vec![plain("config", 100, &[("config-00002", 100)])]);
        let (effective, next) = cur.step(Some(&prev), now);
        assert_eq!(
            effective,
            ro(vec![cfg(
                "config",
                "",
                100,
                &[("config-00001", 99), ("config-00002", 1)],
                st(now)
            )])
        );
        assert_eq!(next, 0, "nothing is scheduled before the ingress is ready");
    }

    // d.1: the upstream panic and our fix.
    #[test]
    fn percent_cut_that_removes_revisions_does_not_panic() {
        let now = 5_000;
        // Mid-rollout: A is being drained into B. Cutting 100 -> 70 removes A (20) entirely
        // and 10 from B; upstream then reads prev.Revisions[1] of a one-element list.
        let prev_cfg = cfg(
            "c",
            "",
            100,
            &[("A", 20), ("B", 80)],
            sp(1000, 9_000, 2_000, 5),
        );
        let prev = ro(vec![prev_cfg.clone()]);

        // Same target: the cut finished the rollout.
        let (got, next) = ro(vec![plain("c", 70, &[("B", 70)])]).step(Some(&prev), now);
        assert_eq!(got, ro(vec![plain("c", 70, &[("B", 70)])]));
        assert_eq!(next, 0);
        assert!(got.validate());

        // A new revision arrives with the cut: it stacks on what is left.
        let (got, next) = ro(vec![plain("c", 70, &[("C", 70)])]).step(Some(&prev), now);
        assert_eq!(
            got,
            ro(vec![cfg("c", "", 70, &[("B", 69), ("C", 1)], st(now))])
        );
        assert_eq!(next, 0);
        assert!(got.validate());

        // Rolling back to the revision the cut removed starts a rollout towards it.
        let (got, _) = ro(vec![plain("c", 70, &[("A", 70)])]).step(Some(&prev), now);
        assert_eq!(
            got,
            ro(vec![cfg("c", "", 70, &[("B", 69), ("A", 1)], st(now))])
        );

        // Three revisions, the cut removes the two oldest; the rollout continues with the
        // carried timing and steps (now >= next step time).
        let prev3 = ro(vec![cfg(
            "c",
            "",
            100,
            &[("A", 10), ("B", 30), ("C", 60)],
            sp(1000, 4_000, 2_000, 5),
        )]);
        let (got, next) = ro(vec![plain("c", 50, &[("C", 50)])]).step(Some(&prev3), now);
        // 100 -> 50: A (10) and B (30) go, C loses 10 -> [C 50]: the rollout is over.
        assert_eq!(got, ro(vec![plain("c", 50, &[("C", 50)])]));
        assert_eq!(next, 0);
        let (got, next) = ro(vec![plain("c", 65, &[("C", 65)])]).step(Some(&prev3), now);
        // 100 -> 65: A goes, B 30 -> 5; then one step of 5 drains B: [C 65].
        assert_eq!(got, ro(vec![plain("c", 65, &[("C", 65)])]));
        assert_eq!(next, 0);
        let (got, next) = ro(vec![plain("c", 90, &[("C", 90)])]).step(Some(&prev3), now);
        // 100 -> 90: A goes (exact), then one step of 5 from B: [B 25, C 65].
        assert_eq!(
            got,
            ro(vec![cfg(
                "c",
                "",
                90,
                &[("B", 25), ("C", 65)],
                sp(1000, 7_000, 2_000, 5)
            )])
        );
        assert_eq!(next, 7_000);
        assert!(got.validate());
    }

    #[test]
    fn step_config_treats_a_list_emptied_by_adjustment_as_fresh() {
        // Only an invalid previous state (sum < percent) can be emptied by a cut.
        let mut prev = cfg("c", "", 100, &[("A", 10)], st(7));
        let goal = plain("c", 50, &[("B", 50)]);
        let got = step_config(&goal, &mut prev, 1_000);
        assert_eq!(got, goal);
        assert!(prev.revisions.is_empty());
    }

    #[test]
    fn step_config_with_a_goal_without_revisions_passes_it_through() {
        let mut prev = plain("c", 50, &[("A", 50)]);
        let goal = cfg("c", "", 50, &[], sp(1, 2, 3, 4));
        let got = step_config(&goal, &mut prev, 1_000);
        assert_eq!(got, plain("c", 50, &[]));
    }

    // Upstream behaviour kept: a cut below the step size leaves an annotation that fails
    // Validate, so the next reconcile has no previous state and switches at once.
    #[test]
    fn percent_cut_below_step_size_invalidates_the_annotation() {
        let prev = ro(vec![cfg(
            "c",
            "",
            100,
            &[("A", 80), ("B", 20)],
            sp(1000, 9_000, 2_000, 60),
        )]);
        let cur = ro(vec![plain("c", 30, &[("B", 30)])]);
        let (got, next) = cur.step(Some(&prev), 5_000);
        assert_eq!(
            got,
            ro(vec![cfg(
                "c",
                "",
                30,
                &[("A", 10), ("B", 20)],
                sp(1000, 9_000, 2_000, 60)
            )])
        );
        assert_eq!(next, 9_000);
        assert!(!got.validate());
        let reread = Rollout::from_json(&got.to_json());
        assert_eq!(reread, None);
        let (again, _) = cur.step(reread.as_ref(), 6_000);
        assert_eq!(again, cur);
    }

    #[test]
    fn new_tag_keeps_only_its_first_configuration() {
        // d.3: prev had no "" entries, cur has two.
        let prev = ro(vec![cfg(
            "a",
            "t",
            100,
            &[("a1", 100)],
            RolloutParams::default(),
        )]);
        let cur = ro(vec![
            plain("a", 50, &[("a1", 50)]),
            plain("b", 50, &[("b1", 50)]),
            cfg("a", "t", 100, &[("a1", 100)], RolloutParams::default()),
        ]);
        let (got, _) = cur.step(Some(&prev), 10);
        assert_eq!(
            got,
            ro(vec![
                plain("a", 50, &[("a1", 50)]),
                cfg("a", "t", 100, &[("a1", 100)], RolloutParams::default()),
            ])
        );
    }

    #[test]
    fn next_ts_is_the_earliest_positive_next_step_time() {
        let prev = ro(vec![
            cfg("a", "", 50, &[("a1", 40), ("a2", 10)], sp(1, 500, 100, 5)),
            cfg("b", "", 50, &[("b1", 40), ("b2", 10)], sp(1, 300, 100, 5)),
        ]);
        let cur = ro(vec![
            plain("a", 50, &[("a2", 50)]),
            plain("b", 50, &[("b2", 50)]),
        ]);
        let (_, next) = cur.step(Some(&prev), 200);
        assert_eq!(next, 300);
        let (got, next) = cur.step(Some(&prev), 300);
        assert_eq!(next, 400, "b stepped at 300 and is due again at 400");
        assert_eq!(percents(&got.configurations[1].revisions), vec![35, 15]);
    }

    #[test]
    fn float_helpers_follow_go() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_max(1.0, -3.0), 1.0);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_max(0.0, -0.0).is_sign_positive());
        assert_eq!(go_duration_seconds(2_400_252_014), 2.400252014);
        assert_eq!(go_duration_seconds(-1_500_000_000), -1.5);
        // Half away from zero, like math.Round.
        assert_eq!((2.5f64).round(), 3.0);
        assert_eq!((-2.5f64).round(), -3.0);
    }

    #[test]
    fn compute_properties_percent_one_is_nan_safe() {
        // d.17: Percent 1 gives 0/0; the step size becomes 0 so no step ever runs.
        let mut r = ro(vec![cfg("c", "", 1, &[("a", 1)], st(1_000))]);
        r.observe_ready(5 * NANOS_PER_SEC, 120.0);
        let params = &r.configurations[0].step_params;
        assert_eq!(params.step_size, 0);
        assert_eq!(params.step_duration, i64::MAX);
        assert_eq!(params.next_step_time, i64::MAX);
    }

    #[test]
    fn hand_edited_extremes_do_not_panic() {
        let prev = ro(vec![cfg(
            "c",
            "",
            i64::MIN + 5,
            &[("a", i64::MIN), ("b", 5)],
            sp(i64::MAX, i64::MAX, i64::MAX, 0),
        )]);
        let mut observed = prev.clone();
        observed.observe_ready(i64::MIN, f64::NAN);
        observed.observe_ready(i64::MAX, f64::INFINITY);
        for p in [2, 50, 100] {
            for target in ["a", "b", "z"] {
                let cur = ro(vec![plain("c", p, &[(target, p)])]);
                let _ = cur.step(Some(&prev), i64::MAX);
                let _ = cur.step(Some(&observed), i64::MIN);
            }
        }
        let mut c = cfg(
            "c",
            "",
            3,
            &[("a", i64::MIN), ("b", -7), ("c", i64::MAX)],
            sp(0, i64::MIN, i64::MAX, i64::MAX),
        );
        step_revisions(&mut c, i64::MAX);
        let mut c = cfg(
            "c",
            "",
            i64::MIN,
            &[("a", i64::MAX)],
            RolloutParams::default(),
        );
        adjust_percentage(i64::MAX, &mut c);
        adjust_percentage(-5, &mut c);
    }

    // ---- property tests ----

    const EPOCH: i64 = 1_000_000_000_000_000_000;

    /// What happens to the route between two looks at the rollout.
    #[derive(Clone, Debug)]
    enum Event {
        /// The configuration's latest ready revision changes to a fresh one.
        NewRevision,
        /// The configuration target's percent changes (0 removes it from the rollout).
        SetPercent(i64),
        /// The ingress reports ready: ObserveReady, then Step.
        IngressReady,
        /// A reconcile some milliseconds later, for any other reason.
        Advance(i64),
        /// The enqueued reconcile at the returned next step time.
        AdvanceToNext,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            2 => Just(Event::NewRevision),
            1 => (0i64..=100).prop_map(Event::SetPercent),
            2 => Just(Event::IngressReady),
            2 => (0i64..5_000).prop_map(Event::Advance),
            3 => Just(Event::AdvanceToNext),
        ]
    }

    /// A route with one configuration target, reconciled like A4 with the annotation
    /// round-tripped through JSON each time.
    struct Harness {
        annotation: String,
        latest: String,
        revisions_made: u32,
        percent: i64,
        now_ns: i64,
        next_ts: i64,
        duration_secs: f64,
        /// (latest, percent, newest share) after the previous reconcile.
        last_newest: Option<(String, i64, i64)>,
    }

    impl Harness {
        fn new(percent: i64, duration_secs: f64) -> Self {
            let h = Harness {
                annotation: String::new(),
                latest: "rev-0".to_owned(),
                revisions_made: 1,
                percent,
                now_ns: EPOCH,
                next_ts: 0,
                duration_secs,
                last_newest: None,
            };
            // The KIngress is created with the baseline (no gradual rollout at creation).
            let baseline = h.cur();
            Harness {
                annotation: baseline.to_json(),
                ..h
            }
        }

        /// BuildRollout: a 0% default-group target gets no rollout entry (A3).
        fn cur(&self) -> Rollout {
            if self.percent == 0 {
                return ro(vec![]);
            }
            ro(vec![plain(
                "config",
                self.percent,
                &[(&self.latest, self.percent)],
            )])
        }

        fn reconcile(&mut self, ingress_ready: bool) -> Result<(), TestCaseError> {
            let mut prev = Rollout::from_json(&self.annotation);
            if ingress_ready {
                if let Some(prev) = prev.as_mut() {
                    prev.observe_ready(self.now_ns, self.duration_secs);
                }
            }
            let (effective, next_ts) = self.cur().step(prev.as_ref(), self.now_ns);
            if self.percent == 0 {
                prop_assert!(effective.configurations.is_empty());
                self.last_newest = None;
            } else {
                prop_assert_eq!(effective.configurations.len(), 1);
                let c = &effective.configurations[0];
                prop_assert_eq!(c.percent, self.percent);
                let sum: i64 = c.revisions.iter().map(|r| r.percent).sum();
                prop_assert_eq!(sum, self.percent, "sum of {:?}", c);
                prop_assert!(c.revisions.iter().all(|r| r.percent > 0), "{:?}", c);
                let newest = c.revisions.last().expect("a target at > 0% has a revision");
                prop_assert_eq!(&newest.revision_name, &self.latest);
                if let Some((latest, percent, share)) = &self.last_newest {
                    if *latest == self.latest && *percent == self.percent {
                        prop_assert!(newest.percent >= *share, "newest share went down: {:?}", c);
                    }
                }
                self.last_newest = Some((self.latest.clone(), self.percent, newest.percent));
            }
            self.annotation = effective.to_json();
            self.next_ts = next_ts;
            Ok(())
        }

        fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
            match event {
                Event::NewRevision => {
                    self.latest = format!("rev-{}", self.revisions_made);
                    self.revisions_made += 1;
                    self.reconcile(false)
                }
                Event::SetPercent(p) => {
                    self.percent = *p;
                    self.reconcile(false)
                }
                Event::IngressReady => self.reconcile(true),
                Event::Advance(ms) => {
                    self.now_ns += ms * 1_000_000;
                    self.reconcile(false)
                }
                Event::AdvanceToNext => {
                    self.now_ns = self.now_ns.max(self.next_ts);
                    self.reconcile(false)
                }
            }
        }

        /// Drives the rollout to its end with a ready ingress; returns the final state.
        fn finish(&mut self) -> Result<Rollout, TestCaseError> {
            for _ in 0..400 {
                // An annotation that fails validation (a percent cut below the step size) is
                // "no previous state" to the next reconcile, which then applies the desired
                // split at once (RR:311-329): keep reconciling until the stored state is done.
                let stored = Rollout::from_json(&self.annotation);
                if stored.as_ref().is_some_and(Rollout::done) {
                    break;
                }
                self.now_ns = self.now_ns.max(self.next_ts);
                self.reconcile(true)?;
            }
            let stored = Rollout::from_json(&self.annotation);
            prop_assert!(stored.is_some(), "the final annotation validates");
            Ok(stored.expect("checked above"))
        }
    }

    /// Found by the property below: 66% over 1 s, a new revision, the ingress ready (one step
    /// of 65% planned), then the target cut to 2%. The carried step size (65) exceeds the new
    /// percent, so the stored annotation fails validation (upstream keeps the same params), and
    /// the next reconcile treats it as no previous state and switches to the newest revision.
    #[test]
    fn percent_cut_below_step_size_ends_the_rollout_at_once() {
        let mut h = Harness::new(0, 1.0);
        for e in [
            Event::SetPercent(66),
            Event::NewRevision,
            Event::IngressReady,
            Event::SetPercent(2),
        ] {
            h.apply(&e).expect("invariants hold");
        }
        assert!(
            Rollout::from_json(&h.annotation).is_none(),
            "upstream stores an invalid annotation here"
        );
        let last = h.finish().expect("finishes");
        assert_eq!(last, ro(vec![plain("config", 2, &[(&h.latest, 2)])]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random new revisions (stacking), percent changes up and down (including the d.1
        /// cut), readiness reports and reconciles: sums hold at every step, the newest share
        /// never drops while the target is unchanged, nothing panics, and the rollout ends
        /// with exactly one revision at the target's percent.
        #[test]
        fn random_reconcile_sequences_keep_sums_and_finish(
            start_percent in 0i64..=100,
            duration_secs in 1u32..=600,
            events in prop::collection::vec(event(), 0..40),
        ) {
            let mut h = Harness::new(start_percent, f64::from(duration_secs));
            for e in &events {
                h.apply(e)?;
            }
            let last = h.finish()?;
            if h.percent == 0 {
                prop_assert!(last.configurations.is_empty());
            } else {
                prop_assert_eq!(
                    last,
                    ro(vec![plain("config", h.percent, &[(&h.latest, h.percent)])])
                );
            }
        }

        /// d.1 directly: any valid mid-rollout state, any lower (or higher) percent, the same
        /// or a new target: no panic and the sum equals the new percent.
        #[test]
        fn percent_change_mid_rollout_never_panics(
            shares in prop::collection::vec(1i64..=30, 1..6),
            new_percent in 2i64..=100,
            new_target in any::<bool>(),
            step_size in 0i64..=5,
            due in any::<bool>(),
        ) {
            let total: i64 = shares.iter().sum();
            prop_assume!(total <= 100);
            let revs: Vec<(String, i64)> = shares
                .iter()
                .enumerate()
                .map(|(i, &p)| (format!("r{i}"), p))
                .collect();
            let rev_refs: Vec<(&str, i64)> = revs.iter().map(|(n, p)| (n.as_str(), *p)).collect();
            let step_size = step_size.min(total);
            let prev = ro(vec![cfg("c", "", total, &rev_refs, sp(10, 100, 50, step_size))]);
            prop_assume!(prev.validate());
            let target = if new_target { "fresh".to_owned() } else { revs[revs.len() - 1].0.clone() };
            let cur = ro(vec![plain("c", new_percent, &[(&target, new_percent)])]);
            let now = if due { 100 } else { 99 };
            let (got, _) = cur.step(Some(&prev), now);
            prop_assert_eq!(got.configurations.len(), 1);
            let c = &got.configurations[0];
            let sum: i64 = c.revisions.iter().map(|r| r.percent).sum();
            prop_assert_eq!(sum, new_percent);
            prop_assert_eq!(&c.revisions.last().expect("non-empty").revision_name, &target);
            // Valid unless the carried step size now exceeds the percent (upstream behaviour).
            prop_assert_eq!(got.validate(), c.step_params.step_size <= new_percent);
        }
    }
    #[test]
    fn reconcile_rollout_follows_rr_331_383() {
        let now: i64 = 1_000_000_000_000_000_000;
        let one = |rev: &str| Rollout {
            configurations: vec![ConfigurationRollout {
                configuration_name: "config".into(),
                tag: String::new(),
                percent: 100,
                revisions: vec![RevisionRollout {
                    revision_name: rev.into(),
                    percent: 100,
                }],
                step_params: RolloutParams::default(),
            }],
        };
        let cur = one("config-00002");
        // mid-rollout state whose first 1% went out 3 s ago (C6 "when ingress becomes ready")
        let mid = Rollout {
            configurations: vec![ConfigurationRollout {
                configuration_name: "config".into(),
                tag: String::new(),
                percent: 100,
                revisions: vec![
                    RevisionRollout {
                        revision_name: "config-00001".into(),
                        percent: 99,
                    },
                    RevisionRollout {
                        revision_name: "config-00002".into(),
                        percent: 1,
                    },
                ],
                step_params: RolloutParams {
                    start_time: now - 3_000_000_000,
                    ..Default::default()
                },
            }],
        };
        let mid_json = mid.to_json();
        // (annotation, rollout secs, ingress ready, route IngressReady, expected revisions, next)
        let split = |r: &Rollout| -> Vec<(String, i64)> {
            r.configurations[0]
                .revisions
                .iter()
                .map(|x| (x.revision_name.clone(), x.percent))
                .collect()
        };
        // disabled: the desired state at once (d.10: switching rollout off mid-rollout)
        let (eff, next) = reconcile_rollout(&cur, Some(&mid_json), 0, true, false, now);
        assert_eq!((split(&eff), next), (vec![("config-00002".into(), 100)], 0));
        // a corrupt annotation is no previous state: no gradual rollout (d.12)
        let (eff, next) = reconcile_rollout(&cur, Some("{not json"), 120, true, false, now);
        assert_eq!((split(&eff), next), (vec![("config-00002".into(), 100)], 0));
        // the ingress is not ready yet: the timing waits, nothing is scheduled
        let (eff, next) = reconcile_rollout(&cur, Some(&mid_json), 120, false, false, now);
        assert_eq!(
            (
                split(&eff),
                next,
                eff.configurations[0].step_params.step_size
            ),
            (split(&mid), 0, 0)
        );
        // ready, and the route is not yet marked ready: ObserveReady sets 3 s steps of 3%
        let (eff, next) = reconcile_rollout(&cur, Some(&mid_json), 120, true, false, now);
        let sp = &eff.configurations[0].step_params;
        assert_eq!(
            (sp.step_duration, sp.step_size, sp.next_step_time),
            (3_000_000_000, 3, now + 3_000_000_000)
        );
        assert_eq!((split(&eff), next), (split(&mid), now + 3_000_000_000));
        // ready but the route already shows IngressReady: no ObserveReady (upstream's guard)
        let (eff, _) = reconcile_rollout(&cur, Some(&mid_json), 120, true, true, now);
        assert_eq!(eff.configurations[0].step_params.step_size, 0);
    }
}
