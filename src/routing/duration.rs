//! Go `time.Duration` text: a port of `time.ParseDuration`, `Duration.String`, `Duration.Round`
//! and `Duration.Seconds` (Go `src/time/format.go`, `src/time/time.go`).
//!
//! Owns: turning the `serving.knative.dev/rollout-duration` annotation text into signed 64-bit
//! nanoseconds exactly as Knative's Go code does, including its error texts, and printing
//! durations the way Go does (`6m20s`, `1.5s`, `0s`).
//!
//! Must not: read a clock, panic on any input, or accept anything Go rejects. A duration is a
//! plain `i64` of nanoseconds, as Go's `time.Duration` is.

use thiserror::Error;

/// One nanosecond.
pub const NANOSECOND: i64 = 1;
/// One microsecond in nanoseconds.
pub const MICROSECOND: i64 = 1_000 * NANOSECOND;
/// One millisecond in nanoseconds.
pub const MILLISECOND: i64 = 1_000 * MICROSECOND;
/// One second in nanoseconds.
pub const SECOND: i64 = 1_000 * MILLISECOND;
/// One minute in nanoseconds.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour in nanoseconds.
pub const HOUR: i64 = 60 * MINUTE;

/// Why `time.ParseDuration` rejected its input. `Display` is Go's error text byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ParseDurationError {
    /// Empty input, no digits, a bad character or an overflow.
    #[error("time: invalid duration {}", time_quote(.input))]
    Invalid {
        /// The whole input.
        input: String,
    },
    /// A number without a unit, e.g. `"3"` or `"120000000000"`.
    #[error("time: missing unit in duration {}", time_quote(.input))]
    MissingUnit {
        /// The whole input.
        input: String,
    },
    /// A unit other than ns, us, µs, μs, ms, s, m, h.
    #[error("time: unknown unit {} in duration {}", time_quote(.unit), time_quote(.input))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
}

/// Go's `unitMap`, in nanoseconds. Both micro signs are accepted: U+00B5 and U+03BC.
fn unit_ns(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const ONE_SHL_63: u64 = 1 << 63;

/// `time.ParseDuration`: a possibly signed sequence of decimal numbers, each with an optional
/// fraction and a unit suffix, such as `"300ms"`, `"-1.5h"` or `"2h45m"`. Returns nanoseconds.
///
/// Mirrors Go exactly, including: `"0"` (and `"+0"`, `"-0"`) needs no unit; fractions are
/// applied through float64 (`v += uint64(float64(f) * (float64(unit) / scale))`); the
/// magnitude may reach 2^63 only for a negative result.
pub fn parse_duration(s: &str) -> Result<i64, ParseDurationError> {
    let invalid = || ParseDurationError::Invalid {
        input: s.to_string(),
    };
    let mut rest = s.as_bytes();
    let mut d: u64 = 0;
    let mut neg = false;

    // Consume [-+]?
    if let Some(&c) = rest.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            rest = &rest[1..];
        }
    }
    // Special case: if all that is left is "0", this is zero.
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    while let Some(&first) = rest.first() {
        // The next character must be [0-9.]
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // Consume [0-9]*
        let before = rest.len();
        let (mut v, after_int) = leading_int(rest).ok_or_else(invalid)?;
        rest = after_int;
        let pre = before != rest.len();

        // Consume (\.[0-9]*)?
        let mut post = false;
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            let before = rest.len();
            let (frac, frac_scale, after_frac) = leading_fraction(rest);
            f = frac;
            scale = frac_scale;
            rest = after_frac;
            post = before != rest.len();
        }
        if !pre && !post {
            // no digits (e.g. ".s" or "-.s")
            return Err(invalid());
        }

        // Consume unit: everything up to the next '.' or digit.
        let unit_len = rest
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(ParseDurationError::MissingUnit {
                input: s.to_string(),
            });
        }
        let (unit_bytes, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        // The unit ends at an ASCII byte or at the end, so it is whole UTF-8; the lossy
        // conversion never substitutes anything.
        let unit_text = String::from_utf8_lossy(unit_bytes);
        let unit = unit_ns(&unit_text).ok_or_else(|| ParseDurationError::UnknownUnit {
            unit: unit_text.to_string(),
            input: s.to_string(),
        })?;
        if v > ONE_SHL_63 / unit {
            return Err(invalid()); // overflow
        }
        v *= unit;
        if f > 0 {
            // float64 is needed to be nanosecond accurate for fractions of hours.
            // v >= 0 && (f*unit/scale) <= 3.6e+12 (ns/h, h is the largest unit)
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > ONE_SHL_63 {
                return Err(invalid()); // overflow
            }
        }
        // Go adds in uint64 and wraps: two terms of exactly 2^63 each sum to 0 and pass the
        // check below, so Go accepts "9223372036854775808ns9223372036854775808ns" as 0.
        // wrapping_add reproduces that instead of panicking.
        d = d.wrapping_add(v);
        if d > ONE_SHL_63 {
            return Err(invalid());
        }
    }
    if neg {
        // d <= 2^63 here; -(2^63) is i64::MIN, which Go's `-Duration(d)` also yields.
        return Ok((d as i64).wrapping_neg());
    }
    if d > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// `leadingInt`: the leading `[0-9]*` of `s` as a number, or `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if x > ONE_SHL_63 / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > ONE_SHL_63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// `leadingFraction`: the leading `[0-9]*` of `s` as (value, 10^digits kept, rest). Digits past
/// what fits are consumed but no longer add precision.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale: f64 = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
        if overflow {
            continue;
        }
        if x > (ONE_SHL_63 - 1) / 10 {
            // It's possible for overflow to give a positive number, so take care.
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > ONE_SHL_63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Go `time`'s private `quote`: double quotes, `\"` and `\\` escaped, and every byte of a
/// non-ASCII or control (< 0x20) character written as `\xNN`.
fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `Duration.String()`: `72h3m0.5s`, `1.5s`, `2.2ms`, `1.1µs`, `1ns`, `0s`. The hour is the
/// largest unit, leading zero units are omitted, and fractions have no trailing zeros.
pub fn format_duration(d: i64) -> String {
    // Go writes right to left into a 32-byte buffer; build the pieces the same way and
    // reverse at the end.
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut rev: Vec<u8> = Vec::with_capacity(32);

    if u < SECOND as u64 {
        // Special case: if duration is smaller than a second, use smaller units, like 1.2ms.
        rev.push(b's');
        let prec;
        if u == 0 {
            return "0s".to_string();
        } else if u < MICROSECOND as u64 {
            prec = 0;
            rev.push(b'n');
        } else if u < MILLISECOND as u64 {
            prec = 3;
            // U+00B5 'µ' micro sign, bytes C2 B5, pushed reversed.
            rev.push(0xB5);
            rev.push(0xC2);
        } else {
            prec = 6;
            rev.push(b'm');
        }
        u = fmt_frac(&mut rev, u, prec);
        fmt_int(&mut rev, u);
    } else {
        rev.push(b's');
        u = fmt_frac(&mut rev, u, 9);
        // u is now integer seconds
        fmt_int(&mut rev, u % 60);
        u /= 60;
        // u is now integer minutes
        if u > 0 {
            rev.push(b'm');
            fmt_int(&mut rev, u % 60);
            u /= 60;
            // u is now integer hours; stop at hours because days can be different lengths.
            if u > 0 {
                rev.push(b'h');
                fmt_int(&mut rev, u);
            }
        }
    }
    if neg {
        rev.push(b'-');
    }
    rev.reverse();
    // Only ASCII and a whole 'µ' were written, so this is valid UTF-8.
    String::from_utf8_lossy(&rev).into_owned()
}

/// `fmtFrac`: the fraction v/10^prec without trailing zeros (and without the point when it is
/// zero), appended reversed; returns v/10^prec.
fn fmt_frac(rev: &mut Vec<u8>, mut v: u64, prec: u32) -> u64 {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            rev.push(b'0' + digit);
        }
        v /= 10;
    }
    if print {
        rev.push(b'.');
    }
    v
}

/// `fmtInt`: decimal digits of v, appended reversed.
fn fmt_int(rev: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        rev.push(b'0');
        return;
    }
    while v > 0 {
        rev.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

/// `Duration.Round(m)`: `d` rounded to the nearest multiple of `m`, halves away from zero,
/// saturating at the i64 bounds instead of overflowing (so `i64::MAX.round(1s)` is itself).
/// `m <= 0` returns `d` unchanged.
pub fn round_duration(d: i64, m: i64) -> i64 {
    if m <= 0 {
        return d;
    }
    let mut r = d % m;
    if d < 0 {
        r = -r;
        if less_than_half(r, m) {
            return d + r;
        }
        // Go computes d - m + r with wrap-around and calls a wrapped result an overflow; the
        // exact sum in i128 says the same without relying on wrapping.
        let d1 = i128::from(d) - i128::from(m) + i128::from(r);
        return i64::try_from(d1).unwrap_or(i64::MIN);
    }
    if less_than_half(r, m) {
        return d - r;
    }
    let d1 = i128::from(d) + i128::from(m) - i128::from(r);
    i64::try_from(d1).unwrap_or(i64::MAX)
}

/// `lessThanHalf(x, y)`: x+x < y computed in uint64, as upstream, so it cannot overflow.
fn less_than_half(x: i64, y: i64) -> bool {
    (x as u64).wrapping_add(x as u64) < y as u64
}

/// `Duration.Seconds()`: whole seconds plus the nanosecond remainder / 1e9, in float64.
pub fn duration_seconds(d: i64) -> f64 {
    let sec = d / SECOND;
    let nsec = d % SECOND;
    sec as f64 + nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_duration_tests() {
        // Go time_test.go parseDurationTests: (input, want ns).
        let cases: &[(&str, i64)] = &[
            // simple
            ("0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            // sign
            ("-5s", -5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0", 0),
            ("+0", 0),
            // decimal
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600 * MILLISECOND),
            ("5.s", 5 * SECOND),
            (".5s", 500 * MILLISECOND),
            ("1.0s", SECOND),
            ("1.00s", SECOND),
            ("1.004s", SECOND + 4 * MILLISECOND),
            ("1.0040s", SECOND + 4 * MILLISECOND),
            ("100.00100s", 100 * SECOND + MILLISECOND),
            // different units
            ("10ns", 10 * NANOSECOND),
            ("11us", 11 * MICROSECOND),
            ("12\u{b5}s", 12 * MICROSECOND),  // U+00B5
            ("12\u{3bc}s", 12 * MICROSECOND), // U+03BC
            ("13ms", 13 * MILLISECOND),
            ("14s", 14 * SECOND),
            ("15m", 15 * MINUTE),
            ("16h", 16 * HOUR),
            // composite durations
            ("3h30m", 3 * HOUR + 30 * MINUTE),
            ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
            ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND)),
            (
                "1h2m3s4ms5us6ns",
                HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6,
            ),
            (
                "39h9m14.425s",
                39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND,
            ),
            // large value
            ("52763797000ns", 52763797000),
            // more than 9 digits after decimal point, see https://golang.org/issue/6617
            ("0.3333333333333333333h", 20 * MINUTE),
            // 9007199254740993 = 1<<53+1 cannot be stored precisely in a float64
            ("9007199254740993ns", (1 << 53) + 1),
            // largest duration that can be represented by int64 in nanoseconds
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            // largest negative round trip value, see https://golang.org/issue/48629
            ("-2562047h47m16.854775808s", i64::MIN),
            // huge string; issue 15011.
            ("0.100000000000000000000h", 6 * MINUTE),
            // This value tests the first overflow check in leadingFraction.
            (
                "0.830103483285477580700h",
                49 * MINUTE + 48 * SECOND + 372539827,
            ),
            // Knative vectors (routing.md C9): TestRolloutDuration and
            // TestValidateRolloutDurationAnnotation inputs.
            ("2m1982s", 2102 * SECOND),
            ("3h15m21s", 3 * HOUR + 15 * MINUTE + 21 * SECOND),
            ("-211s", -211 * SECOND),
            ("211s44ms", 211 * SECOND + 44 * MILLISECOND),
            ("120s", 120 * SECOND),
            // Go's uint64 sum wraps here (2^63 + 2^63 = 0) and the result is accepted as 0.
            ("9223372036854775808ns9223372036854775808ns", 0),
            ("-9223372036854775808ns9223372036854775808ns", 0),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_duration(input), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn parse_duration_error_tests() {
        // Go time_test.go parseDurationErrorTests (the quoted input must appear in the
        // message), with the full message asserted here. The invalid-UTF-8 rows ("\x85\x85",
        // "\xffff") cannot be a Rust &str and are not ported.
        let cases: &[(&str, &str)] = &[
            // invalid
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("-", r#"time: invalid duration "-""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("\u{FFFD}", r#"time: invalid duration "\xef\xbf\xbd""#), // utf8.RuneError
            (
                "\u{FFFD} hello \u{FFFD} world",
                r#"time: invalid duration "\xef\xbf\xbd hello \xef\xbf\xbd world""#,
            ),
            // overflow
            (
                "9223372036854775810ns",
                r#"time: invalid duration "9223372036854775810ns""#,
            ),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            (
                "9223372036854776us",
                r#"time: invalid duration "9223372036854776us""#,
            ),
            ("3000000h", r#"time: invalid duration "3000000h""#),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"time: invalid duration "9223372036854ms775us808ns""#,
            ),
            // Knative vectors (routing.md C9) and unit edge cases.
            (
                "120000000000",
                r#"time: missing unit in duration "120000000000""#,
            ),
            (
                "three hours and seventeen seconds",
                r#"time: invalid duration "three hours and seventeen seconds""#,
            ),
            ("CLXXXIIIs", r#"time: invalid duration "CLXXXIIIs""#),
            (
                "5 minutes",
                r#"time: unknown unit " minutes" in duration "5 minutes""#,
            ),
            (
                "1µ",
                r#"time: unknown unit "\xc2\xb5" in duration "1\xc2\xb5""#,
            ),
            ("1S", r#"time: unknown unit "S" in duration "1S""#),
            ("1s\"", r#"time: unknown unit "s\"" in duration "1s\"""#),
            ("1s\n", r#"time: unknown unit "s\x0a" in duration "1s\x0a""#),
            ("--1s", r#"time: invalid duration "--1s""#),
            (" 1s", r#"time: invalid duration " 1s""#),
        ];
        for &(input, want) in cases {
            let err = parse_duration(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn format_duration_tests() {
        // Go time_test.go durationTests: (want, duration).
        let cases: &[(&str, i64)] = &[
            ("0s", 0),
            ("1ns", NANOSECOND),
            ("1.1\u{b5}s", 1100 * NANOSECOND),
            ("2.2ms", 2200 * MICROSECOND),
            ("3.3s", 3300 * MILLISECOND),
            ("4m5s", 4 * MINUTE + 5 * SECOND),
            ("4m5.001s", 4 * MINUTE + 5001 * MILLISECOND),
            ("5h6m7.001s", 5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND),
            ("8m0.000000001s", 8 * MINUTE + NANOSECOND),
            ("2562047h47m16.854775807s", i64::MAX),
            ("-2562047h47m16.854775808s", i64::MIN),
            // printing examples used by splitlab
            ("6m20s", 380 * SECOND),
            ("1.5s", 1500 * MILLISECOND),
            ("1h0m0s", HOUR),
            ("-1.5s", -1500 * MILLISECOND),
        ];
        for &(want, d) in cases {
            assert_eq!(format_duration(d), want, "{d}");
        }
    }

    #[test]
    fn round_duration_tests() {
        // Go time_test.go durationRoundTests: (d, m, want).
        let cases: &[(i64, i64, i64)] = &[
            (0, SECOND, 0),
            (MINUTE, -11 * SECOND, MINUTE),
            (MINUTE, 0, MINUTE),
            (MINUTE, 1, MINUTE),
            (2 * MINUTE, MINUTE, 2 * MINUTE),
            (2 * MINUTE + 10 * SECOND, MINUTE, 2 * MINUTE),
            (2 * MINUTE + 30 * SECOND, MINUTE, 3 * MINUTE),
            (2 * MINUTE + 50 * SECOND, MINUTE, 3 * MINUTE),
            (-MINUTE, 1, -MINUTE),
            (-2 * MINUTE, MINUTE, -2 * MINUTE),
            (-2 * MINUTE - 10 * SECOND, MINUTE, -2 * MINUTE),
            (-2 * MINUTE - 30 * SECOND, MINUTE, -3 * MINUTE),
            (-2 * MINUTE - 50 * SECOND, MINUTE, -3 * MINUTE),
            (8e18 as i64, 3e18 as i64, 9e18 as i64),
            (9e18 as i64, 5e18 as i64, i64::MAX),
            (-8e18 as i64, 3e18 as i64, -9e18 as i64),
            (-9e18 as i64, 5e18 as i64, i64::MIN),
            (3 << 61, 3 << 61, 3 << 61),
            // the extremes are "whole seconds" because rounding saturates onto themselves
            (i64::MAX, SECOND, i64::MAX),
            (i64::MIN, SECOND, i64::MIN),
            (211 * SECOND + 44 * MILLISECOND, SECOND, 211 * SECOND),
        ];
        for &(d, m, want) in cases {
            assert_eq!(round_duration(d, m), want, "{d} round {m}");
        }
    }

    #[test]
    fn seconds_is_go_float_arithmetic() {
        // (duration, Duration.Seconds())
        let cases: &[(i64, f64)] = &[
            (0, 0.0),
            (1500 * MILLISECOND, 1.5),
            (-1500 * MILLISECOND, -1.5),
            (2102 * SECOND, 2102.0),
            // float64 addition rounds up to the next whole second here, as in Go
            (i64::MAX, 9223372036.854776),
        ];
        for &(d, want) in cases {
            assert_eq!(duration_seconds(d), want, "{d}");
        }
    }

    proptest! {
        /// Go's String output always parses back to the same duration.
        #[test]
        fn format_then_parse_round_trips(d in any::<i64>()) {
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        /// Long digit runs in every unit (the overflow paths) never panic.
        #[test]
        fn parse_never_panics_near_overflow(
            s in "[+-]?([0-9]{0,21}(\\.[0-9]{0,25})?(ns|us|\u{b5}s|ms|s|m|h)){1,3}"
        ) {
            let _ = parse_duration(&s);
        }

        /// Anything built from the grammar with small numbers parses to the obvious sum.
        #[test]
        fn composite_parses_to_sum(parts in proptest::collection::vec((0u32..10_000, 0usize..6), 1..5)) {
            const UNITS: [(&str, i64); 6] = [("ns", 1), ("us", MICROSECOND), ("ms", MILLISECOND), ("s", SECOND), ("m", MINUTE), ("h", HOUR)];
            let text: String = parts.iter().map(|&(n, u)| format!("{n}{}", UNITS[u].0)).collect();
            let want: i64 = parts.iter().map(|&(n, u)| i64::from(n) * UNITS[u].1).sum();
            prop_assert_eq!(parse_duration(&text), Ok(want));
        }
    }
}
