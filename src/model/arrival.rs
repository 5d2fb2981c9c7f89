//! Request arrivals: turns a validated `ArrivalSpec` into a stream of `(time, address, client)`.
//!
//! Owns: the arrival processes (Poisson, constant, piecewise rate schedules, on/off bursts, trace
//! replay), the choice of address (main URL, a tag's own URL, or the main URL with a
//! `Knative-Serving-Tag` header) and of the client id.
//!
//! Must not: read clocks, do I/O, or allocate per arrival. The simulator and the live load
//! generator both pull from `ArrivalGen::next`, the first at several million requests per second,
//! so all set-up (tag table, rate pieces, trace copy) happens in `ArrivalGen::new`. Its input is
//! the validated `scenario::spec::ArrivalSpec`, plain data; nothing else of `scenario` is used.
//!
//! # How times are made
//!
//! Every process except a trace is a *unit-rate* sequence of points `y_0 < y_1 < …` mapped
//! through the inverse of the integrated rate `Λ(t) = ∫₀ᵗ λ`:
//! `t_k = Λ⁻¹(y_k) = inf { t : Λ(t) > y_k }`.
//! - Poisson (`Poisson`, `Schedule { poisson: true }`, `Bursts`): `y_k` is a running sum of
//!   Exp(1) draws, each by the ziggurat (`rand_distr::Exp1`; no logarithm in ~99 % of draws)
//!   starting from the arrival's gap word, the rare longer draws continuing on a stream of their
//!   own (`GapWords`), so each arrival still takes three words. Inversion of `Λ` is
//!   exact: `λ` is piecewise linear, so `Λ` is piecewise quadratic and each piece is solved in
//!   closed form; no thinning, no rejected draws.
//! - Evenly spaced (`Constant`, `Schedule { poisson: false }`): `y_k = k` for `k = 0, 1, 2, …`.
//!   The first arrival is therefore at the start of the first stretch with a positive rate
//!   (t = 0 for `Constant`), then one every `1/rate`. This is vegeta's `LinearPacer` (first hit
//!   at once); vegeta's `ConstantPacer` instead waits one interval before its first hit. Over
//!   `[0, end)` a constant rate gives `ceil(rate · end)` arrivals.
//!
//! Times are computed in `f64` nanoseconds and rounded to the nearest nanosecond. Stretches where
//! the rate is zero hold no arrivals and are skipped in one step each.
//!
//! A trace is replayed row by row in time order (rows at the same instant keep their order).
//!
//! # Addresses and clients
//!
//! One uniform `u` per arrival picks the address: the `tag_shares` bands in order give
//! `Host(tag)`, then the `header_shares` bands give `Header(tag)`, and the rest `Main`. A trace
//! row with a tag goes to `Host(tag)`; a row without one takes the bands like any arrival. The
//! client is the row's when a trace row has one; otherwise uniform in `0..n` for
//! `clients: Some(n)`, or the arrival's sequence number (0, 1, 2, …) for `None`.
//!
//! # Invariants
//!
//! - Arrivals are returned with non-decreasing `at`, and `at < end`; after the first `None` every
//!   call returns `None`.
//! - Randomness comes only from the `rng` argument, in a fixed pattern: the first call draws one
//!   64-bit word (the seed of the burst phase stream, drawn for every process so the pattern is
//!   the same whatever the process), then each arrival draws exactly three words, in the order
//!   gap, address, client, whether or not they are used. So the same rng state gives the same
//!   sequence, and two runs that differ only in shares, clients or picker see the same arrival
//!   times (common random numbers). Burst phase lengths come from their own stream (seeded by
//!   that first word), so changing a burst rate keeps the phase boundaries. The call that finds
//!   the end still draws its three words; calls after it draw nothing.
//! - No input makes `next` panic or loop without bound: rates are clamped to
//!   `[0, MAX_RATE_PER_S]` (NaN counts as 0), a schedule is crossed piece by piece, and a burst
//!   process stops after `MAX_PHASES_PER_ARRIVAL` phases without an arrival.

use std::collections::HashMap;

use std::convert::Infallible;

use rand::{Rng, SeedableRng, TryRng};
use rand_distr::{Distribution, Exp1};
use rand_pcg::Pcg64Mcg;

use crate::model::dist::Dist;
use crate::model::time::{SimTime, NANOS_PER_SEC};
use crate::scenario::spec::{ArrivalProcessSpec, ArrivalSpec, RatePoint};

/// The highest rate honoured; larger rates (and +∞) are clamped to it. One arrival per
/// nanosecond is the resolution of `SimTime`, and the cap bounds the number of arrivals before
/// `end` (at most about `1e9 × end` in seconds), so a caller's loop always ends.
pub const MAX_RATE_PER_S: f64 = 1e9;

/// How many burst phases one call to `next` may cross without finding an arrival before the
/// process is declared finished. Only reached with phases of a few nanoseconds or rates so low
/// that an arrival needs millions of phases; documented rather than looped on for ever.
pub const MAX_PHASES_PER_ARRIVAL: u32 = 1 << 24;

/// Where a request is sent. The `u16` indexes `ArrivalGen::tags()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// The route's main URL.
    Main,
    /// A tag's own URL (`{tag}-{route}.{namespace}.{domain}`).
    Host(u16),
    /// The main URL with a `Knative-Serving-Tag: {tag}` header.
    Header(u16),
}

/// One request arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub at: SimTime,
    pub address: Address,
    /// The client id (the hash picker's key).
    pub client: u64,
}

/// A generator of arrivals over `[0, end)`.
#[derive(Clone, Debug)]
pub struct ArrivalGen {
    tags: Vec<String>,
    /// Address bands over `[0, 1)`: a uniform `u` below `bands[i].upper` (and not below the
    /// previous band's) picks `bands[i].address`; past the last band, `Main`.
    bands: Vec<Band>,
    clients: Option<u64>,
    end_ns: i64,
    source: Source,
    /// Poisson: `y_k` is a running sum of Exp(1); otherwise `y_k = k`.
    poisson: bool,
    /// The last unit-rate point `y` (Poisson only).
    unit: f64,
    /// Arrivals returned so far: `k`, and the client id when `clients` is `None`.
    seq: u64,
    /// Added to `y_k = k` of a process that is not Poisson (`with_phase`).
    phase: f64,
    /// The last arrival's exact time, so rounding error between pieces cannot go backwards.
    last_ns: f64,
    /// Burst phase lengths; seeded from the caller's rng on the first call.
    phase_rng: Pcg64Mcg,
    /// The words a Poisson gap takes beyond its gap word (`GapWords`); seeded with
    /// `phase_rng`, from the same word of the caller's rng.
    gap_rng: Pcg64Mcg,
    started: bool,
    done: bool,
}

#[derive(Clone, Copy, Debug)]
struct Band {
    upper: f64,
    address: Address,
}

#[derive(Clone, Debug)]
enum Source {
    /// A fixed piecewise-linear rate: `pieces` cover `[0, ∞)` in order, the last one constant
    /// and unbounded; `idx` is the piece the last arrival fell in.
    Pieces { pieces: Vec<Piece>, idx: usize },
    /// On/off phases generated as they are reached; `piece` is the current phase.
    Bursts {
        piece: Piece,
        on: bool,
        on_rate_per_ns: f64,
        off_rate_per_ns: f64,
        on_len: Dist,
        off_len: Dist,
    },
    /// Replay; `rows` sorted by time.
    Trace { rows: Vec<TraceEntry>, idx: usize },
}

/// A trace row with its tag resolved to an index into `tags` (`NO_TAG`: none).
#[derive(Clone, Copy, Debug)]
struct TraceEntry {
    at_ns: i64,
    tag: u16,
    client: Option<u64>,
}

/// `Address` carries a `u16`; this value marks "no tag", so at most 65,535 tags are addressable.
const NO_TAG: u16 = u16::MAX;

/// Makes `gap_rng`'s seed differ from `phase_rng`'s (the digits of π's fraction).
const GAP_RNG_SALT: u64 = 0x243f_6a88_85a3_08d3;

/// The words one Exp(1) draw of a Poisson gap reads: `first` (the arrival's gap word), then
/// words of `rest`. The ziggurat (`rand_distr::Exp1`) returns on its first word in about 98.9 %
/// of draws; the others (a wedge or the tail) read more. Taking those from `rest`, not from the
/// caller's rng, keeps every arrival at exactly three words of the caller's stream, so two runs
/// with one seed see the same addresses and clients whatever their rates (common random
/// numbers).
struct GapWords<'a> {
    first: Option<u64>,
    rest: &'a mut Pcg64Mcg,
}

impl TryRng for GapWords<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.try_next_u64().map(|word| (word >> 32) as u32)
    }

    #[inline(always)]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(match self.first.take() {
            Some(word) => word,
            None => self.rest.next_u64(),
        })
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::rand_core::utils::fill_bytes_via_next_word(dst, || self.try_next_u64())
    }
}

/// 2⁻⁵³: maps the top 53 bits of a word onto `[0, 1)`.
const UNIT_F64: f64 = 1.0 / (1u64 << 53) as f64;

/// A stretch `[start_ns, end_ns)` on which the rate is linear:
/// `λ(start_ns + s) = rate0_per_ns + slope_per_ns2 · s`, with `Λ(start_ns) = lambda_start`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start_ns: f64,
    end_ns: f64,
    rate0_per_ns: f64,
    slope_per_ns2: f64,
    /// `1 / rate0_per_ns` on constant pieces with a positive rate (a multiply is cheaper and,
    /// for rates dividing 1e9, exact), else 0.
    ns_per_unit: f64,
    lambda_start: f64,
    lambda_end: f64,
}

impl Piece {
    /// A piece from `start_ns` to `end_ns` (may be +∞ when the rate is constant) whose rate goes
    /// linearly from `rate0_per_ns` to `rate1_per_ns`.
    fn new(
        start_ns: f64,
        end_ns: f64,
        rate0_per_ns: f64,
        rate1_per_ns: f64,
        lambda_start: f64,
    ) -> Piece {
        let len_ns = end_ns - start_ns;
        let constant = rate0_per_ns == rate1_per_ns || !len_ns.is_finite();
        let (slope_per_ns2, integral) = if constant {
            // 0 · ∞ would be NaN: an unbounded zero-rate piece holds nothing.
            let integral = if rate0_per_ns > 0.0 {
                rate0_per_ns * len_ns
            } else {
                0.0
            };
            (0.0, integral)
        } else {
            // The trapezoid is exact for a linear rate and never negative.
            let slope = (rate1_per_ns - rate0_per_ns) / len_ns;
            (
                slope,
                ((rate0_per_ns + rate1_per_ns) / 2.0 * len_ns).max(0.0),
            )
        };
        let ns_per_unit = if constant && rate0_per_ns > 0.0 {
            1.0 / rate0_per_ns
        } else {
            0.0
        };
        Piece {
            start_ns,
            end_ns,
            rate0_per_ns,
            slope_per_ns2,
            ns_per_unit,
            lambda_start,
            lambda_end: lambda_start + integral,
        }
    }

    /// The time at which `Λ` reaches `lambda`, for `lambda_start <= lambda <= lambda_end`.
    #[inline]
    fn invert(&self, lambda: f64) -> f64 {
        let delta = lambda - self.lambda_start;
        // `delta == 0` on a ramp from zero would otherwise be 0/0.
        if delta.is_nan() || delta <= 0.0 {
            return self.start_ns;
        }
        let s = if self.slope_per_ns2 == 0.0 {
            delta * self.ns_per_unit
        } else {
            // Solves r0·s + a·s²/2 = Δ as s = 2Δ / (r0 + √(r0² + 2aΔ)): no cancellation when
            // a is tiny, and it handles ramps up and down alike.
            let r0 = self.rate0_per_ns;
            let disc = (r0 * r0 + 2.0 * self.slope_per_ns2 * delta).max(0.0);
            let denom = r0 + disc.sqrt();
            if denom > 0.0 {
                2.0 * delta / denom
            } else {
                0.0
            }
        };
        // Rounding may overshoot the piece by an ulp; the next piece starts here anyway.
        (self.start_ns + s).min(self.end_ns)
    }
}

/// A rate in requests per second as requests per nanosecond, clamped to `[0, MAX_RATE_PER_S]`.
fn rate_per_ns(rate_per_s: f64) -> f64 {
    if rate_per_s.is_nan() {
        return 0.0;
    }
    rate_per_s.clamp(0.0, MAX_RATE_PER_S) / NANOS_PER_SEC as f64
}

/// The shape of the rate function from the latest schedule point on.
#[derive(Clone, Copy)]
enum Shape {
    Constant(f64),
    /// From `t0_ns` at `r0` linearly to `r1` at `t1_ns`, then constant `r1`.
    Ramp {
        t0_ns: f64,
        r0: f64,
        t1_ns: f64,
        r1: f64,
    },
}

impl Shape {
    fn rate_at(self, t_ns: f64) -> f64 {
        match self {
            Shape::Constant(r) => r,
            Shape::Ramp {
                t0_ns,
                r0,
                t1_ns,
                r1,
            } => {
                if t_ns >= t1_ns {
                    r1
                } else {
                    let w = ((t_ns - t0_ns) / (t1_ns - t0_ns)).clamp(0.0, 1.0);
                    // A convex combination stays within [min(r0, r1), max(r0, r1)].
                    (1.0 - w) * r0 + w * r1
                }
            }
        }
    }

    /// Appends the linear stretches `(t0, r0, t1, r1)` of this shape over `[from, to)`.
    fn emit(self, from_ns: f64, to_ns: f64, out: &mut Vec<(f64, f64, f64, f64)>) {
        // Times come from integers or ±∞, never NaN.
        if to_ns <= from_ns {
            return;
        }
        match self {
            Shape::Constant(r) => out.push((from_ns, r, to_ns, r)),
            Shape::Ramp { t1_ns, r1, .. } => {
                let mid_ns = t1_ns.min(to_ns);
                if mid_ns > from_ns {
                    out.push((from_ns, self.rate_at(from_ns), mid_ns, self.rate_at(mid_ns)));
                }
                if to_ns > t1_ns {
                    out.push((t1_ns.max(from_ns), r1, to_ns, r1));
                }
            }
        }
    }
}

/// The pieces of a schedule over `[0, ∞)`. Points are applied in time order (stable, so points
/// at the same instant apply in list order and the last wins); a point cuts short whatever ramp
/// is in progress, and a ramp starts from the rate in force at its `at`. Points before 0 shape
/// the rate at 0 as if time had started earlier.
fn schedule_pieces(points: &[RatePoint]) -> Vec<Piece> {
    let mut sorted: Vec<&RatePoint> = points.iter().collect();
    sorted.sort_by_key(|p| match p {
        RatePoint::Step { at, .. } | RatePoint::Ramp { at, .. } => *at,
    });
    let mut stretches: Vec<(f64, f64, f64, f64)> = Vec::with_capacity(2 * sorted.len() + 1);
    let mut from_ns = f64::NEG_INFINITY;
    let mut shape = Shape::Constant(0.0);
    for point in sorted {
        let (at, next) = match *point {
            RatePoint::Step { at, rate_per_s } => (at, Shape::Constant(rate_per_ns(rate_per_s))),
            RatePoint::Ramp {
                at,
                to_rate_per_s,
                over,
            } => {
                let at_ns = at.as_nanos() as f64;
                let to = rate_per_ns(to_rate_per_s);
                let over_ns = over.as_nanos().max(0) as f64;
                let next = if over_ns > 0.0 {
                    Shape::Ramp {
                        t0_ns: at_ns,
                        r0: shape.rate_at(at_ns),
                        t1_ns: at_ns + over_ns,
                        r1: to,
                    }
                } else {
                    Shape::Constant(to)
                };
                (at, next)
            }
        };
        let at_ns = at.as_nanos() as f64;
        shape.emit(from_ns, at_ns, &mut stretches);
        shape = next;
        from_ns = at_ns;
    }
    shape.emit(from_ns, f64::INFINITY, &mut stretches);

    let mut pieces = Vec::with_capacity(stretches.len());
    let mut lambda = 0.0;
    for (t0, r0, t1, r1) in stretches {
        if t1 <= 0.0 {
            continue;
        }
        let (t0, r0) = if t0 < 0.0 {
            let r_at_0 = if r0 == r1 || !t0.is_finite() {
                r0
            } else {
                let w = (-t0 / (t1 - t0)).clamp(0.0, 1.0);
                (1.0 - w) * r0 + w * r1
            };
            (0.0, r_at_0)
        } else {
            (t0, r0)
        };
        if t1 <= t0 {
            continue;
        }
        let piece = Piece::new(t0, t1, r0, r1, lambda);
        lambda = piece.lambda_end;
        pieces.push(piece);
    }
    pieces
}

impl ArrivalGen {
    /// A generator of the arrivals of `spec` with `at < end`.
    ///
    /// Accepts any spec without panicking. Beyond what validation guarantees: rates are clamped
    /// (see `MAX_RATE_PER_S`); negative or NaN shares count as 0 and bands past a cumulative
    /// share of 1 are never chosen; `clients: Some(0)` gives every request client 0; schedule
    /// points and trace rows out of order are sorted (stably); trace rows before 0 are replayed
    /// at 0; a ramp with a negative `over` is a step; bursts whose phases are always empty or
    /// whose rates are both 0 produce nothing.
    pub fn new(spec: &ArrivalSpec, end: SimTime) -> ArrivalGen {
        let mut tags = TagTable::default();
        let mut bands: Vec<Band> = Vec::new();
        let mut upper = 0.0f64;
        let shares = spec
            .tag_shares
            .iter()
            .map(|(tag, share)| (tag, *share, true))
            .chain(
                spec.header_shares
                    .iter()
                    .map(|(tag, share)| (tag, *share, false)),
            );
        for (tag, share, host) in shares {
            let Some(index) = tags.index_of(tag) else {
                continue;
            };
            // `max` turns NaN into 0.
            upper = (upper + share.max(0.0)).min(1.0);
            let address = if host {
                Address::Host(index)
            } else {
                Address::Header(index)
            };
            bands.push(Band { upper, address });
        }

        let end_ns = end.as_nanos();
        let empty_pieces = || vec![Piece::new(0.0, f64::INFINITY, 0.0, 0.0, 0.0)];
        let constant = |rate_per_s: f64| {
            let rate = rate_per_ns(rate_per_s);
            vec![Piece::new(0.0, f64::INFINITY, rate, rate, 0.0)]
        };
        let (source, poisson) = match &spec.process {
            ArrivalProcessSpec::Poisson { rate_per_s } => (
                Source::Pieces {
                    pieces: constant(*rate_per_s),
                    idx: 0,
                },
                true,
            ),
            ArrivalProcessSpec::Constant { rate_per_s } => (
                Source::Pieces {
                    pieces: constant(*rate_per_s),
                    idx: 0,
                },
                false,
            ),
            ArrivalProcessSpec::Schedule { points, poisson } => (
                Source::Pieces {
                    pieces: schedule_pieces(points),
                    idx: 0,
                },
                *poisson,
            ),
            ArrivalProcessSpec::Bursts {
                on_rate_per_s,
                off_rate_per_s,
                on,
                off,
            } => {
                let on_rate_per_ns = rate_per_ns(*on_rate_per_s);
                let off_rate_per_ns = rate_per_ns(*off_rate_per_s);
                // Expected arrivals per period. Dist lengths are never negative, so a mean of 0
                // means every phase is empty: without this check `next` would cross empty phases
                // until the phase cap.
                let per_period =
                    on_rate_per_ns * on.mean_secs() + off_rate_per_ns * off.mean_secs();
                if per_period > 0.0 {
                    (
                        Source::Bursts {
                            // An empty "off" phase at 0, so the first phase generated is "on".
                            piece: Piece::new(0.0, 0.0, 0.0, 0.0, 0.0),
                            on: false,
                            on_rate_per_ns,
                            off_rate_per_ns,
                            on_len: on.clone(),
                            off_len: off.clone(),
                        },
                        true,
                    )
                } else {
                    (
                        Source::Pieces {
                            pieces: empty_pieces(),
                            idx: 0,
                        },
                        true,
                    )
                }
            }
            ArrivalProcessSpec::Trace { rows } => {
                let mut entries: Vec<TraceEntry> = rows
                    .iter()
                    .map(|row| TraceEntry {
                        at_ns: row.at.as_nanos().max(0),
                        tag: row
                            .tag
                            .as_ref()
                            .and_then(|tag| tags.index_of(tag))
                            .unwrap_or(NO_TAG),
                        client: row.client,
                    })
                    .collect();
                entries.sort_by_key(|e| e.at_ns);
                (
                    Source::Trace {
                        rows: entries,
                        idx: 0,
                    },
                    false,
                )
            }
        };

        ArrivalGen {
            tags: tags.names,
            bands,
            clients: spec.clients,
            end_ns,
            source,
            poisson,
            unit: 0.0,
            seq: 0,
            phase: 0.0,
            last_ns: 0.0,
            phase_rng: Pcg64Mcg::seed_from_u64(0),
            gap_rng: Pcg64Mcg::seed_from_u64(0),
            started: false,
            done: end_ns <= 0,
        }
    }

    /// Shifts a process that is not Poisson by `phase` (in `[0, 1)`) of an arrival: arrival `k`
    /// comes when the cumulative rate reaches `k + phase` instead of `k`. Shard `i` of `n` of a
    /// sharded load run, sending 1/n of the rate, takes phase `i / n`: its arrivals come when
    /// the whole run's cumulative rate reaches `k n + i`, so the shards' streams interleave into
    /// exactly the unsharded run's instead of all sending at the same instants (n requests at
    /// once, n times as far apart). Poisson streams are independent; they take no phase.
    pub fn with_phase(mut self, phase: f64) -> ArrivalGen {
        debug_assert!((0.0..1.0).contains(&phase), "phase {phase} outside [0, 1)");
        self.phase = phase;
        self
    }

    /// The tag names that `Address::Host` and `Address::Header` index: those of `tag_shares`,
    /// then new ones of `header_shares`, then new ones of the trace, each in first-seen order.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The next arrival, or `None` once the process has no more arrivals before `end`.
    #[inline(always)]
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Arrival> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            let seed = rng.next_u64();
            self.phase_rng = Pcg64Mcg::seed_from_u64(seed);
            self.gap_rng = Pcg64Mcg::seed_from_u64(seed ^ GAP_RNG_SALT);
        }
        // Always three words, in this order, used or not (common random numbers).
        let gap_word = rng.next_u64();
        let address_word = rng.next_u64();
        let client_word = rng.next_u64();

        let (at_ns, trace_tag, trace_client) = match &mut self.source {
            Source::Trace { rows, idx } => match rows.get(*idx) {
                Some(row) if row.at_ns < self.end_ns => {
                    *idx += 1;
                    (row.at_ns, row.tag, row.client)
                }
                _ => return self.finish(),
            },
            source => {
                let target = if self.poisson {
                    // E ~ Exp(1) by the ziggurat (no logarithm in ~99 % of draws).
                    self.unit += <Exp1 as Distribution<f64>>::sample(
                        &Exp1,
                        &mut GapWords {
                            first: Some(gap_word),
                            rest: &mut self.gap_rng,
                        },
                    );
                    self.unit
                } else {
                    self.seq as f64 + self.phase
                };
                let Some(t_ns) = locate(source, target, self.end_ns, &mut self.phase_rng) else {
                    return self.finish();
                };
                let t_ns = t_ns.max(self.last_ns);
                self.last_ns = t_ns;
                // t_ns >= 0; `as` saturates, so a far-off time becomes i64::MAX, not a wrap.
                let at_ns = (t_ns + 0.5) as i64;
                if at_ns >= self.end_ns {
                    return self.finish();
                }
                (at_ns, NO_TAG, None)
            }
        };

        let address = if trace_tag != NO_TAG {
            Address::Host(trace_tag)
        } else {
            self.address(address_word)
        };
        let client = match (trace_client, self.clients) {
            (Some(client), _) => client,
            // Lemire's multiply-high: one word, no rejection loop (bias below n / 2⁶⁴).
            (None, Some(n)) => ((u128::from(client_word) * u128::from(n)) >> 64) as u64,
            (None, None) => self.seq,
        };
        self.seq += 1;
        Some(Arrival {
            at: SimTime(at_ns),
            address,
            client,
        })
    }

    #[inline]
    fn address(&self, word: u64) -> Address {
        let u = (word >> 11) as f64 * UNIT_F64;
        for band in &self.bands {
            if u < band.upper {
                return band.address;
            }
        }
        Address::Main
    }

    #[cold]
    fn finish(&mut self) -> Option<Arrival> {
        self.done = true;
        None
    }
}

/// The tag table built by `ArrivalGen::new`: names in first-seen order, with a map so a long
/// trace costs one lookup per row.
#[derive(Default)]
struct TagTable {
    names: Vec<String>,
    index: HashMap<String, u16>,
}

impl TagTable {
    /// The index of `tag`, appending it when new; `None` when the table is full (`NO_TAG`).
    fn index_of(&mut self, tag: &str) -> Option<u16> {
        if let Some(&i) = self.index.get(tag) {
            return Some(i);
        }
        let i = u16::try_from(self.names.len())
            .ok()
            .filter(|&i| i != NO_TAG)?;
        self.names.push(tag.to_string());
        self.index.insert(tag.to_string(), i);
        Some(i)
    }
}

/// The time at which `Λ` first exceeds `target`, moving the source's piece forward; `None` when
/// that is at or after `end_ns` (or never).
#[inline]
fn locate(source: &mut Source, target: f64, end_ns: i64, phase_rng: &mut Pcg64Mcg) -> Option<f64> {
    let end_ns = end_ns as f64;
    match source {
        Source::Pieces { pieces, idx } => loop {
            let piece = pieces.get(*idx)?;
            if piece.lambda_end > target {
                return Some(piece.invert(target));
            }
            // Later pieces start at or after this one's end.
            if piece.end_ns >= end_ns {
                return None;
            }
            *idx += 1;
        },
        Source::Bursts {
            piece,
            on,
            on_rate_per_ns,
            off_rate_per_ns,
            on_len,
            off_len,
        } => {
            let mut phases = 0u32;
            while piece.lambda_end <= target {
                if piece.end_ns >= end_ns || phases == MAX_PHASES_PER_ARRIVAL {
                    return None;
                }
                phases += 1;
                *on = !*on;
                let (len, rate) = if *on {
                    (on_len.sample(phase_rng), *on_rate_per_ns)
                } else {
                    (off_len.sample(phase_rng), *off_rate_per_ns)
                };
                let start_ns = piece.end_ns;
                let len_ns = len.as_nanos().max(0) as f64;
                *piece = Piece::new(start_ns, start_ns + len_ns, rate, rate, piece.lambda_end);
            }
            Some(piece.invert(target))
        }
        // Traces are handled by the caller.
        Source::Trace { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::ops::RangeInclusive;

    use super::*;
    use crate::model::time::SimDuration;
    use crate::scenario::spec::TraceRow;
    use proptest::prelude::*;

    fn secs(s: f64) -> SimTime {
        SimTime::from_secs_f64(s)
    }

    fn dur(s: f64) -> SimDuration {
        SimDuration::from_secs_f64(s)
    }

    fn step(at_s: f64, rate_per_s: f64) -> RatePoint {
        RatePoint::Step {
            at: secs(at_s),
            rate_per_s,
        }
    }

    fn ramp(at_s: f64, to_rate_per_s: f64, over_s: f64) -> RatePoint {
        RatePoint::Ramp {
            at: secs(at_s),
            to_rate_per_s,
            over: dur(over_s),
        }
    }

    fn spec(process: ArrivalProcessSpec) -> ArrivalSpec {
        ArrivalSpec {
            process,
            tag_shares: vec![],
            header_shares: vec![],
            clients: None,
        }
    }

    fn poisson(rate_per_s: f64) -> ArrivalSpec {
        spec(ArrivalProcessSpec::Poisson { rate_per_s })
    }

    fn schedule(points: Vec<RatePoint>, poisson: bool) -> ArrivalSpec {
        spec(ArrivalProcessSpec::Schedule { points, poisson })
    }

    /// Every arrival before `end`, checking the invariants all tests rely on: times are
    /// non-decreasing and in `[0, end)`, the stream stays finished, and it is not runaway.
    fn collect(spec: &ArrivalSpec, end: SimTime, seed: u64) -> Vec<Arrival> {
        let mut gen = ArrivalGen::new(spec, end);
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut out = Vec::new();
        let mut prev = SimTime::ZERO;
        while let Some(a) = gen.next(&mut rng) {
            assert!(a.at >= prev, "{:?} went back from {prev:?}", a.at);
            assert!(a.at < end, "{:?} is not before end {end:?}", a.at);
            prev = a.at;
            out.push(a);
            assert!(out.len() <= 20_000_000, "runaway stream");
        }
        assert_eq!(gen.next(&mut rng), None, "a finished stream stays finished");
        out
    }

    fn count_in(arrivals: &[Arrival], from: SimTime, to: SimTime) -> usize {
        arrivals
            .iter()
            .filter(|a| a.at >= from && a.at < to)
            .count()
    }

    #[test]
    fn poisson_counts_gaps_and_dispersion() {
        // (rate per s, horizon s, window s for the dispersion index)
        let cases = [
            // a typical load: 1e6 arrivals, 1,000 windows of mean 1,000
            (1000.0, 1000.0, 1.0),
            // a slow trickle with 400 ms gaps: 1e5 arrivals, 1,000 windows of mean 100
            (2.5, 40_000.0, 40.0),
        ];
        for (rate, horizon_s, window_s) in cases {
            let arrivals = collect(&poisson(rate), secs(horizon_s), 7);
            let n = arrivals.len() as f64;
            let expected = rate * horizon_s;
            assert!(
                (n - expected).abs() <= 5.0 * expected.sqrt(),
                "rate {rate}: {n} arrivals, expected {expected}"
            );

            // Gaps are Exp(rate): mean 1/rate and coefficient of variation 1. For exponential
            // data the sample CV has standard error 1/sqrt(n) (delta method: CV²·(CV² +
            // (kurtosis − 1)/4 − skewness·CV)/n with kurtosis 9, skewness 2).
            let gaps: Vec<f64> = arrivals
                .windows(2)
                .map(|w| (w[1].at - w[0].at).as_secs_f64())
                .collect();
            let m = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / m;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (m - 1.0);
            let cv = var.sqrt() / mean;
            assert!(
                (mean * rate - 1.0).abs() <= 5.0 / m.sqrt(),
                "rate {rate}: mean gap {mean}"
            );
            assert!((cv - 1.0).abs() <= 5.0 / m.sqrt(), "rate {rate}: cv {cv}");

            // The whole shape, not only two moments: Kolmogorov-Smirnov against Exp(rate)
            // (sqrt(m)·D above 1.95 has probability 0.001), and the ziggurat's tail beyond
            // 7.697 mean gaps, where a draw reads further words from `GapWords::rest`: its
            // share is e^−7.697, about 4.5e-4 (binomial, 5 standard errors).
            let mut unit: Vec<f64> = gaps.iter().map(|g| g * rate).collect();
            unit.sort_by(f64::total_cmp);
            let d = unit
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let cdf = 1.0 - (-x).exp();
                    (cdf - i as f64 / m).max((i + 1) as f64 / m - cdf)
                })
                .fold(0.0, f64::max);
            assert!(
                d * m.sqrt() <= 1.95,
                "rate {rate}: KS sqrt(m)·D {}",
                d * m.sqrt()
            );
            let tail = unit.iter().filter(|&&x| x > 7.697).count() as f64;
            let p = (-7.697f64).exp();
            assert!(
                (tail - m * p).abs() <= 5.0 * (m * p * (1.0 - p)).sqrt(),
                "rate {rate}: {tail} gaps past 7.697 means, expected {}",
                m * p
            );

            // Counts in disjoint windows are independent Poisson: variance / mean ≈ 1, with
            // standard error sqrt(2 / (windows − 1)).
            let windows = (horizon_s / window_s) as usize;
            let mut counts = vec![0f64; windows];
            for a in &arrivals {
                counts[(a.at.as_secs_f64() / window_s) as usize] += 1.0;
            }
            let w = windows as f64;
            let c_mean = counts.iter().sum::<f64>() / w;
            let c_var = counts.iter().map(|c| (c - c_mean).powi(2)).sum::<f64>() / (w - 1.0);
            let dispersion = c_var / c_mean;
            assert!(
                (dispersion - 1.0).abs() <= 5.0 * (2.0 / (w - 1.0)).sqrt(),
                "rate {rate}: dispersion index {dispersion}"
            );
        }
    }

    /// Sharded load: shard `i` of `n` at 1/n of the rate with phase `i / n` sends exactly the
    /// unsharded stream's arrivals `i, i + n, i + 2n, ...` (to the nanosecond of rounding),
    /// for a constant rate and for a deterministic schedule with a ramp.
    #[test]
    fn phased_shards_interleave_into_the_unsharded_stream() {
        let end = secs(3.0);
        let whole_constant = |rate: f64| spec(ArrivalProcessSpec::Constant { rate_per_s: rate });
        let whole_schedule = |scale: f64| {
            schedule(
                vec![step(0.0, 300.0 * scale), ramp(1.0, 900.0 * scale, 1.5)],
                false,
            )
        };
        for n in [1usize, 2, 3, 7] {
            for (name, whole, part) in [
                (
                    "constant",
                    whole_constant(1000.0),
                    whole_constant(1000.0 / n as f64),
                ),
                (
                    "schedule",
                    whole_schedule(1.0),
                    whole_schedule(1.0 / n as f64),
                ),
            ] {
                let unsharded: Vec<i64> = collect(&whole, end, 1).iter().map(|a| a.at.0).collect();
                let mut merged = Vec::new();
                for i in 0..n {
                    let mut gen = ArrivalGen::new(&part, end).with_phase(i as f64 / n as f64);
                    let mut rng = Pcg64Mcg::seed_from_u64(i as u64);
                    let mut times = Vec::new();
                    while let Some(a) = gen.next(&mut rng) {
                        times.push(a.at.0);
                    }
                    // Shard i's arrival k is the whole stream's arrival k n + i.
                    for (k, t) in times.iter().enumerate() {
                        let j = k * n + i;
                        assert!(
                            j < unsharded.len() && (t - unsharded[j]).abs() <= 1,
                            "{name} n={n} shard {i} arrival {k} at {t} ns: the whole stream's \
                             arrival {j} is at {:?}",
                            unsharded.get(j)
                        );
                    }
                    merged.extend(times);
                }
                assert_eq!(
                    merged.len(),
                    unsharded.len(),
                    "{name} n={n}: the shards send the whole run's arrivals, no more, no fewer"
                );
            }
        }
    }

    #[test]
    fn unphased_shards_would_send_together() {
        // What the phase prevents: without it, two shards at half the rate send at the same
        // instants, pairs of requests twice as far apart.
        let part = spec(ArrivalProcessSpec::Constant { rate_per_s: 500.0 });
        let a = collect(&part, secs(1.0), 1);
        let b = collect(&part, secs(1.0), 2);
        assert_eq!(a, b);
        let mut gen = ArrivalGen::new(&part, secs(1.0)).with_phase(0.5);
        let mut rng = Pcg64Mcg::seed_from_u64(2);
        let first = gen.next(&mut rng).expect("an arrival").at;
        assert_eq!(first, SimTime(1_000_000), "half of a 2 ms gap");
    }

    #[test]
    fn constant_is_evenly_spaced_from_zero() {
        // (rate per s, end, expected count, expected first times in ns)
        let cases: [(f64, SimTime, usize, &[i64]); 8] = [
            // a rate dividing 1e9: exact quarters
            (
                4.0,
                secs(1.0),
                4,
                &[0, 250_000_000, 500_000_000, 750_000_000],
            ),
            // a third of a second does not divide: each time is rounded, never drifting
            (3.0, secs(1.0), 3, &[0, 333_333_333, 666_666_667]),
            // ceil(rate · end): the arrival due exactly at `end` is not before it
            (1.0, secs(10.0), 10, &[0, 1_000_000_000]),
            // a non-integral product: ceil(2.5 · 1.1) = 3
            (2.5, secs(1.1), 3, &[0, 400_000_000, 800_000_000]),
            // 1,000 per second: exactly 1 ms apart
            (1000.0, secs(1.0), 1000, &[0, 1_000_000, 2_000_000]),
            // an end of 1 ns still holds the arrival at 0
            (2.0, SimTime(1), 1, &[0]),
            // a rate above the cap runs at one per nanosecond
            (1e12, SimTime(1_000), 1000, &[0, 1, 2, 3]),
            // rate 0: nothing
            (0.0, secs(10.0), 0, &[]),
        ];
        for (rate, end, count, first) in cases {
            let arrivals = collect(
                &spec(ArrivalProcessSpec::Constant { rate_per_s: rate }),
                end,
                1,
            );
            assert_eq!(arrivals.len(), count, "rate {rate}");
            let times: Vec<i64> = arrivals.iter().map(|a| a.at.as_nanos()).collect();
            assert_eq!(&times[..first.len()], first, "rate {rate}");
            let capped = rate.min(MAX_RATE_PER_S);
            for (k, t) in times.iter().enumerate() {
                assert_eq!(
                    *t,
                    (k as f64 * 1e9 / capped).round() as i64,
                    "rate {rate}, k {k}"
                );
            }
        }
    }

    /// A schedule, its horizon, windows `(from s, to s, ∫λ over the window)`, and windows
    /// `[from ns, to ns)` that must hold no arrival.
    struct ScheduleCase {
        points: Vec<RatePoint>,
        end_s: f64,
        windows: Vec<(f64, f64, f64)>,
        empty: Vec<(i64, i64)>,
    }

    fn schedule_cases() -> Vec<ScheduleCase> {
        vec![
            // steps, a ramp down to zero, a zero-rate gap, a final step
            ScheduleCase {
                points: vec![
                    step(0.0, 100.0),
                    step(10.0, 300.0),
                    ramp(20.0, 0.0, 10.0),
                    step(40.0, 50.0),
                ],
                end_s: 50.0,
                windows: vec![
                    (0.0, 10.0, 1000.0),
                    (10.0, 20.0, 3000.0),
                    (20.0, 25.0, 1125.0),
                    (25.0, 30.0, 375.0),
                    (30.0, 40.0, 0.0),
                    (40.0, 50.0, 500.0),
                ],
                // The ramp ends at exactly Λ = 5500, so the evenly spaced arrival k = 5500 may
                // land on 30 s itself when rounding puts Λ(30 s) a hair above 5500.
                empty: vec![(30_000_000_001, 40_000_000_000)],
            },
            // rate 0 before the first point; a ramp from 0, then its target held
            ScheduleCase {
                points: vec![ramp(5.0, 200.0, 10.0)],
                end_s: 25.0,
                windows: vec![
                    (0.0, 5.0, 0.0),
                    (5.0, 10.0, 250.0),
                    (10.0, 15.0, 750.0),
                    (15.0, 25.0, 2000.0),
                ],
                empty: vec![(0, 5_000_000_000)],
            },
            // a step cuts a ramp short
            ScheduleCase {
                points: vec![ramp(0.0, 1000.0, 100.0), step(10.0, 10.0)],
                end_s: 30.0,
                windows: vec![(0.0, 10.0, 500.0), (10.0, 30.0, 200.0)],
                empty: vec![],
            },
            // a ramp that starts mid-ramp starts from the rate reached there
            ScheduleCase {
                points: vec![ramp(0.0, 100.0, 10.0), ramp(5.0, 0.0, 5.0)],
                end_s: 20.0,
                windows: vec![(0.0, 5.0, 125.0), (5.0, 10.0, 125.0), (10.0, 20.0, 0.0)],
                empty: vec![(10_000_000_001, 20_000_000_000)],
            },
            // points out of order and before 0: the ramp from -10 s is at 50/s at 0
            ScheduleCase {
                points: vec![step(10.0, 20.0), ramp(-10.0, 100.0, 20.0)],
                end_s: 20.0,
                windows: vec![(0.0, 10.0, 750.0), (10.0, 20.0, 200.0)],
                empty: vec![],
            },
            // two points at one instant: the later in the list wins
            ScheduleCase {
                points: vec![step(0.0, 100.0), step(0.0, 7.0)],
                end_s: 100.0,
                windows: vec![(0.0, 100.0, 700.0)],
                empty: vec![],
            },
        ]
    }

    #[test]
    fn schedule_counts_match_the_integrated_rate() {
        for (i, case) in schedule_cases().into_iter().enumerate() {
            for poisson in [true, false] {
                for seed in [1, 2, 3] {
                    let arrivals = collect(
                        &schedule(case.points.clone(), poisson),
                        secs(case.end_s),
                        seed,
                    );
                    for &(from, to, expected) in &case.windows {
                        let n = count_in(&arrivals, secs(from), secs(to)) as f64;
                        // Poisson: 5 standard errors; evenly spaced: within one arrival.
                        let tolerance = if poisson { 5.0 * expected.sqrt() } else { 1.0 };
                        assert!(
                            (n - expected).abs() <= tolerance,
                            "case {i}, poisson {poisson}, seed {seed}: [{from}, {to}) holds {n}, expected {expected}"
                        );
                    }
                    for &(from, to) in &case.empty {
                        assert_eq!(
                            count_in(&arrivals, SimTime(from), SimTime(to)),
                            0,
                            "case {i}, poisson {poisson}: arrivals in a zero-rate stretch"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn schedule_runs_up_to_end_and_evenly_spaced_is_exact() {
        let points = vec![
            step(0.0, 100.0),
            step(10.0, 300.0),
            ramp(20.0, 0.0, 10.0),
            step(40.0, 50.0),
        ];
        for poisson in [true, false] {
            let arrivals = collect(&schedule(points.clone(), poisson), secs(50.0), 5);
            // At 50/s, a Poisson stream is silent for the last second with probability e^-50.
            let last = arrivals.last().expect("arrivals").at;
            assert!(last >= secs(49.0), "poisson {poisson}: last arrival {last}");
        }
        // Evenly spaced: the k-th arrival is where Λ first exceeds k, so k = 0 is at 0 and
        // the 1,000th (k = 1000, Λ = 1000 at 10 s) opens the 300/s step.
        let arrivals = collect(&schedule(points, false), secs(50.0), 5);
        // ∫λ over [0, 50 s) = 1000 + 3000 + 1500 + 0 + 500.
        assert_eq!(arrivals.len(), 6000);
        assert_eq!(arrivals[0].at, SimTime::ZERO);
        assert_eq!(arrivals[1].at, SimTime(10_000_000));
        assert_eq!(arrivals[1000].at, secs(10.0));
        // 1/300 s rounded to the nanosecond.
        assert_eq!(
            arrivals[1001].at - arrivals[1000].at,
            SimDuration(3_333_333)
        );
        // On the ramp Λ(20 s + s) = 4000 + 300·s − 15·s², so Λ = 5125 at s = 5.
        assert_eq!(arrivals[5125].at, secs(25.0));
        // Λ = 5500 from 30 s to 40 s: arrival 5500 is at 40 s in exact arithmetic (30 s if
        // rounding lifts Λ(30 s) above 5500); the next one is 1/50 s into the last step.
        assert!([secs(30.0), secs(40.0)].contains(&arrivals[5500].at));
        assert_eq!(arrivals[5501].at, secs(40.02));
    }

    #[test]
    fn a_constant_schedule_is_the_plain_process() {
        // (schedule step rate, the plain process it must reproduce arrival for arrival)
        let cases = [
            (true, poisson(250.0)),
            (
                false,
                spec(ArrivalProcessSpec::Constant { rate_per_s: 250.0 }),
            ),
        ];
        for (poisson, plain) in cases {
            let scheduled = collect(&schedule(vec![step(0.0, 250.0)], poisson), secs(20.0), 9);
            assert_eq!(
                scheduled,
                collect(&plain, secs(20.0), 9),
                "poisson {poisson}"
            );
        }
    }

    #[test]
    fn bursts_long_run_rate() {
        let ms = |v: i64| SimDuration::from_millis(v);
        // (on rate, off rate, on, off, Var(on) s², Var(off) s²)
        let cases = [
            // exponential phases of mean 1 s on and 2 s off: 40/s in the long run
            (
                100.0,
                10.0,
                Dist::exponential(ms(1000)).expect("valid"),
                Dist::exponential(ms(2000)).expect("valid"),
                1.0,
                4.0,
            ),
            // fixed phases with a silent off phase: 50/s
            (
                200.0,
                0.0,
                Dist::constant(ms(500)).expect("valid"),
                Dist::constant(ms(1500)).expect("valid"),
                0.0,
                0.0,
            ),
            // uniform on phases, exponential off phases: 35/s
            (
                50.0,
                5.0,
                Dist::uniform(ms(200), ms(1800)).expect("valid"),
                Dist::exponential(ms(500)).expect("valid"),
                1.6f64.powi(2) / 12.0,
                0.25,
            ),
        ];
        let horizon_s = 20_000.0;
        for (on_rate, off_rate, on, off, var_on, var_off) in cases {
            let (mean_on, mean_off) = (on.mean_secs(), off.mean_secs());
            let period = mean_on + mean_off;
            let rate = (on_rate * mean_on + off_rate * mean_off) / period;
            let process = ArrivalProcessSpec::Bursts {
                on_rate_per_s: on_rate,
                off_rate_per_s: off_rate,
                on,
                off,
            };
            let n = collect(&spec(process), secs(horizon_s), 3).len() as f64;
            // Renewal-reward: per period, count − rate·length has variance
            // (on_rate − rate)²·Var(on) + (off_rate − rate)²·Var(off) + E[count] (Poisson noise).
            let var_per_period = (on_rate - rate).powi(2) * var_on
                + (off_rate - rate).powi(2) * var_off
                + rate * period;
            let sd = (horizon_s / period * var_per_period).sqrt();
            let expected = rate * horizon_s;
            assert!(
                (n - expected).abs() <= 5.0 * sd,
                "on {on_rate}/off {off_rate}: {n} arrivals, expected {expected} ± {sd}"
            );
        }
    }

    #[test]
    fn bursts_start_on_and_are_silent_when_off_rate_is_zero() {
        let process = ArrivalProcessSpec::Bursts {
            on_rate_per_s: 100.0,
            off_rate_per_s: 0.0,
            on: Dist::constant(SimDuration::from_secs(1)).expect("valid"),
            off: Dist::constant(SimDuration::from_secs(1)).expect("valid"),
        };
        let arrivals = collect(&spec(process), secs(1000.0), 4);
        assert!(
            arrivals[0].at < secs(0.2),
            "starts on: first at {}",
            arrivals[0].at
        );
        // On phases are [2k, 2k + 1) s; the closed end allows rounding to the nanosecond.
        for a in &arrivals {
            assert!(
                a.at.as_nanos() % 2_000_000_000 <= 1_000_000_000,
                "{} is in an off phase",
                a.at
            );
        }
    }

    #[test]
    fn trace_replays_rows_with_tags_and_clients() {
        let row = |at_ms: i64, tag: Option<&str>, client: Option<u64>| TraceRow {
            at: SimTime(at_ms * 1_000_000),
            tag: tag.map(str::to_string),
            client,
        };
        let mut arrival_spec = spec(ArrivalProcessSpec::Trace {
            rows: vec![
                row(0, None, None),
                row(5, Some("b"), Some(77)),
                // out of order: replayed in time order
                row(2, Some("a"), None),
                row(5, None, Some(3)),
                // at `end`: not replayed
                row(10, Some("c"), None),
            ],
        });
        // A zero share: "a" is known before the trace's tags, and untagged rows stay on Main.
        arrival_spec.tag_shares = vec![("a".to_string(), 0.0)];
        let end = SimTime(10_000_000);
        let gen = ArrivalGen::new(&arrival_spec, end);
        assert_eq!(gen.tags(), ["a", "b", "c"]);
        let at = |ms: i64| SimTime(ms * 1_000_000);
        // Rows without a client take the clients rule: here (None) the sequence number.
        let expected = vec![
            Arrival {
                at: at(0),
                address: Address::Main,
                client: 0,
            },
            Arrival {
                at: at(2),
                address: Address::Host(0),
                client: 1,
            },
            Arrival {
                at: at(5),
                address: Address::Host(1),
                client: 77,
            },
            Arrival {
                at: at(5),
                address: Address::Main,
                client: 3,
            },
        ];
        assert_eq!(collect(&arrival_spec, end, 1), expected);

        // With a client population, rows without a client draw one in range.
        arrival_spec.clients = Some(4);
        let arrivals = collect(&arrival_spec, end, 1);
        assert_eq!(arrivals[2].client, 77);
        assert!(arrivals.iter().all(|a| a.client < 4 || a.client == 77));
    }

    #[test]
    fn address_shares_and_clients() {
        let mut arrival_spec = poisson(10_000.0);
        arrival_spec.tag_shares = vec![("a".to_string(), 0.2), ("b".to_string(), 0.1)];
        arrival_spec.header_shares = vec![("a".to_string(), 0.05), ("c".to_string(), 0.15)];
        arrival_spec.clients = Some(7);
        let end = secs(20.0);
        assert_eq!(ArrivalGen::new(&arrival_spec, end).tags(), ["a", "b", "c"]);
        let arrivals = collect(&arrival_spec, end, 11);
        let n = arrivals.len() as f64;
        // (address, share)
        let cases = [
            (Address::Host(0), 0.2),
            (Address::Host(1), 0.1),
            (Address::Header(0), 0.05),
            (Address::Header(2), 0.15),
            (Address::Main, 0.5),
        ];
        for (address, share) in cases {
            let k = arrivals.iter().filter(|a| a.address == address).count() as f64;
            let sd = (n * share * (1.0 - share)).sqrt();
            assert!((k - n * share).abs() <= 5.0 * sd, "{address:?}: {k} of {n}");
        }
        for client in 0..7 {
            let k = arrivals.iter().filter(|a| a.client == client).count() as f64;
            let p = 1.0 / 7.0;
            assert!(
                (k - n * p).abs() <= 5.0 * (n * p * (1.0 - p)).sqrt(),
                "client {client}: {k}"
            );
        }
        assert!(arrivals.iter().all(|a| a.client < 7));

        // Without a population every request is its own client: the sequence number.
        arrival_spec.clients = None;
        let arrivals = collect(&arrival_spec, end, 11);
        assert!(arrivals
            .iter()
            .enumerate()
            .all(|(i, a)| a.client == i as u64));
    }

    #[test]
    fn same_seed_same_sequence_and_common_random_numbers() {
        let bursts = ArrivalProcessSpec::Bursts {
            on_rate_per_s: 500.0,
            off_rate_per_s: 20.0,
            on: Dist::exponential(SimDuration::from_millis(300)).expect("valid"),
            off: Dist::lognormal(SimDuration::from_millis(500), SimDuration::from_secs(2))
                .expect("valid"),
        };
        let mut shared = poisson(300.0);
        shared.tag_shares = vec![("canary".to_string(), 0.3)];
        shared.clients = Some(1000);
        // (process, whether another seed must give other times)
        let cases = [
            (shared.clone(), true),
            (
                spec(ArrivalProcessSpec::Constant { rate_per_s: 300.0 }),
                false,
            ),
            (schedule(vec![ramp(0.0, 600.0, 10.0)], true), true),
            (schedule(vec![ramp(0.0, 600.0, 10.0)], false), false),
            (spec(bursts.clone()), true),
        ];
        for (arrival_spec, random_times) in cases {
            let a = collect(&arrival_spec, secs(10.0), 42);
            assert!(!a.is_empty());
            assert_eq!(
                a,
                collect(&arrival_spec, secs(10.0), 42),
                "{arrival_spec:?}"
            );
            let times = |v: &[Arrival]| v.iter().map(|a| a.at).collect::<Vec<_>>();
            let other = collect(&arrival_spec, secs(10.0), 43);
            assert_eq!(times(&a) != times(&other), random_times, "{arrival_spec:?}");
        }

        // Shares and clients do not move arrival times: the words are drawn whatever they are.
        let plain = collect(&poisson(300.0), secs(10.0), 42);
        let shaped = collect(&shared, secs(10.0), 42);
        assert_eq!(
            plain.iter().map(|a| a.at).collect::<Vec<_>>(),
            shaped.iter().map(|a| a.at).collect::<Vec<_>>()
        );
        // Doubling a Poisson rate halves every time: the same unit-rate points, rescaled.
        let doubled = collect(&poisson(600.0), secs(5.0), 42);
        assert!(doubled.len().abs_diff(plain.len()) <= 1);
        for (slow, fast) in plain.iter().zip(&doubled) {
            assert!((slow.at.as_nanos() - 2 * fast.at.as_nanos()).abs() <= 2);
        }
        // A constant process lines up its address and client draws with Poisson's.
        let mut constant = shared.clone();
        constant.process = ArrivalProcessSpec::Constant { rate_per_s: 300.0 };
        let constant = collect(&constant, secs(10.0), 42);
        for (p, c) in shaped.iter().zip(&constant) {
            assert_eq!((p.address, p.client), (c.address, c.client));
        }
        // Changing a burst's rates keeps its phases (they have their own stream). With the
        // off rate 0, a 2,000/s process marks its on phases as dense clusters (a 20 ms gap
        // inside one has probability e^-40); every arrival of a 50/s process with the same
        // seed must fall inside one of those clusters, give or take the 20 ms edge.
        let with_on_rate = |on_rate_per_s: f64| {
            let mut process = bursts.clone();
            if let ArrivalProcessSpec::Bursts {
                on_rate_per_s: on,
                off_rate_per_s: off,
                ..
            } = &mut process
            {
                (*on, *off) = (on_rate_per_s, 0.0);
            }
            collect(&spec(process), secs(60.0), 42)
        };
        let dense = with_on_rate(2000.0);
        let edge = SimDuration::from_millis(20);
        let mut clusters: Vec<(SimTime, SimTime)> = Vec::new();
        for a in &dense {
            match clusters.last_mut() {
                Some((_, last)) if a.at - *last <= edge => *last = a.at,
                _ => clusters.push((a.at, a.at)),
            }
        }
        assert!(clusters.len() > 20, "{} clusters", clusters.len());
        let sparse = with_on_rate(50.0);
        assert!(sparse.len() > 500);
        for a in &sparse {
            assert!(
                clusters
                    .iter()
                    .any(|(from, to)| a.at + edge >= *from && a.at <= *to + edge),
                "{} lies outside every on phase",
                a.at
            );
        }
    }

    #[test]
    fn odd_inputs_neither_panic_nor_hang() {
        let zero = Dist::constant(SimDuration::ZERO).expect("valid");
        let one_ns = Dist::uniform(SimDuration(0), SimDuration(2)).expect("valid");
        let mut shares = poisson(100.0);
        shares.tag_shares = vec![("a".to_string(), 0.7), ("b".to_string(), f64::NAN)];
        shares.header_shares = vec![("a".to_string(), 0.7), ("c".to_string(), -1.0)];
        shares.clients = Some(0);
        // (spec, end, allowed number of arrivals)
        let cases: Vec<(ArrivalSpec, SimTime, RangeInclusive<usize>)> = vec![
            // a NaN rate counts as 0
            (poisson(f64::NAN), secs(10.0), 0..=0),
            // a negative rate counts as 0
            (
                spec(ArrivalProcessSpec::Constant { rate_per_s: -5.0 }),
                secs(10.0),
                0..=0,
            ),
            // an infinite rate is capped at one per nanosecond: about 10,000 in 10 µs
            (poisson(f64::INFINITY), SimTime(10_000), 9_000..=11_000),
            // a zero-rate schedule with an end that never comes
            (schedule(vec![step(0.0, 0.0)], true), SimTime::MAX, 0..=0),
            // no points at all
            (schedule(vec![], false), SimTime::MAX, 0..=0),
            // a ramp with a negative length is a step (50 in its second); then silence for ever
            (
                schedule(
                    vec![
                        RatePoint::Ramp {
                            at: secs(1.0),
                            to_rate_per_s: 50.0,
                            over: SimDuration(-5),
                        },
                        step(2.0, 0.0),
                    ],
                    true,
                ),
                SimTime::MAX,
                20..=90,
            ),
            // bursts whose phases are always empty
            (
                spec(ArrivalProcessSpec::Bursts {
                    on_rate_per_s: 100.0,
                    off_rate_per_s: 100.0,
                    on: zero.clone(),
                    off: zero.clone(),
                }),
                SimTime::MAX,
                0..=0,
            ),
            // bursts with both rates 0
            (
                spec(ArrivalProcessSpec::Bursts {
                    on_rate_per_s: 0.0,
                    off_rate_per_s: 0.0,
                    on: Dist::constant(SimDuration::from_secs(1)).expect("valid"),
                    off: zero.clone(),
                }),
                SimTime::MAX,
                0..=0,
            ),
            // phases of 0 to 2 ns, half of them on at one per nanosecond
            (
                spec(ArrivalProcessSpec::Bursts {
                    on_rate_per_s: 1e9,
                    off_rate_per_s: 0.0,
                    on: one_ns.clone(),
                    off: one_ns,
                }),
                SimTime(100_000),
                40_000..=60_000,
            ),
            // shares summing past 1, NaN and negative shares, a client population of 0
            (shares, secs(1.0), 50..=150),
            // an empty trace, and an end before the start
            (
                spec(ArrivalProcessSpec::Trace { rows: vec![] }),
                secs(1.0),
                0..=0,
            ),
            (poisson(100.0), SimTime(-5), 0..=0),
            (poisson(100.0), SimTime::ZERO, 0..=0),
        ];
        for (arrival_spec, end, allowed) in cases {
            let arrivals = collect(&arrival_spec, end, 3);
            assert!(
                allowed.contains(&arrivals.len()),
                "{arrival_spec:?}: {} arrivals",
                arrivals.len()
            );
            assert!(arrivals
                .iter()
                .all(|a| a.client == 0 || arrival_spec.clients.is_none()));
        }
    }

    #[test]
    fn shares_past_one_are_cut_at_one() {
        let mut arrival_spec = poisson(1000.0);
        arrival_spec.tag_shares = vec![("a".to_string(), 0.7), ("b".to_string(), f64::NAN)];
        arrival_spec.header_shares = vec![("a".to_string(), 0.7)];
        let arrivals = collect(&arrival_spec, secs(10.0), 8);
        let n = arrivals.len() as f64;
        let host = arrivals
            .iter()
            .filter(|a| a.address == Address::Host(0))
            .count() as f64;
        let header = arrivals
            .iter()
            .filter(|a| a.address == Address::Header(0))
            .count() as f64;
        assert!((host - 0.7 * n).abs() <= 5.0 * (n * 0.21).sqrt());
        assert!((header - 0.3 * n).abs() <= 5.0 * (n * 0.21).sqrt());
        assert!(arrivals
            .iter()
            .all(|a| a.address != Address::Main && a.address != Address::Host(1)));
    }

    fn rate_point() -> impl Strategy<Value = RatePoint> {
        prop_oneof![
            (-5_000i64..60_000, 0.0f64..200.0).prop_map(|(at_ms, rate)| RatePoint::Step {
                at: SimTime(at_ms * 1_000_000),
                rate_per_s: rate,
            }),
            (-5_000i64..60_000, 0.0f64..200.0, -1_000i64..30_000).prop_map(
                |(at_ms, rate, over_ms)| {
                    RatePoint::Ramp {
                        at: SimTime(at_ms * 1_000_000),
                        to_rate_per_s: rate,
                        over: SimDuration(over_ms * 1_000_000),
                    }
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any schedule, in or out of order, terminates with non-decreasing times before `end`
        /// (`collect` checks both), and never yields more than the peak rate allows by far.
        #[test]
        fn schedules_terminate_in_order_before_end(
            points in proptest::collection::vec(rate_point(), 0..8),
            poisson in any::<bool>(),
            end_ms in 0i64..60_000,
            seed in any::<u64>(),
        ) {
            let arrivals = collect(&schedule(points, poisson), SimTime(end_ms * 1_000_000), seed);
            // The rate never exceeds 200/s: at most 200·60 = 12,000 expected.
            prop_assert!(arrivals.len() <= 13_000);
        }
    }
}
