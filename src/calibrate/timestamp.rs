//! `--from`/`--to` instants: RFC 3339 (`2026-12-02T10:00:00Z`, `2026-12-02T11:00:00.5+01:00`)
//! or unix seconds (`1796205600`, `1796205600.25`), as Prometheus' API itself accepts them
//! (docs/querying/api.md "Formats": `<rfc3339> | <unix_timestamp>`), and the RFC 3339 text the
//! scenario's comments show.
//!
//! Must not: read the clock.

/// An instant that is neither RFC 3339 nor unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time; allowed: RFC 3339 (2026-12-02T10:00:00Z, with an optional fraction and a Z or ±hh:mm offset) or unix seconds (1796205600)")]
pub struct TimestampError(pub String);

/// Parses an instant into unix seconds.
pub fn parse_instant(text: &str) -> Result<f64, TimestampError> {
    let bad = || TimestampError(text.to_string());
    let s = text.trim();
    if let Ok(v) = s.parse::<f64>() {
        return if v.is_finite() { Ok(v) } else { Err(bad()) };
    }
    let b = s.as_bytes();
    // YYYY-MM-DDTHH:MM:SS at least.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        fraction = format!("0.{}", &after_dot[..digits])
            .parse::<f64>()
            .map_err(|_| bad())?;
        rest = &after_dot[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                return Err(bad());
            }
            let hh = rest[1..3].parse::<i64>().map_err(|_| bad())?;
            let mm = rest[4..6].parse::<i64>().map_err(|_| bad())?;
            if hh > 23 || mm > 59 {
                return Err(bad());
            }
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (hh * 3600 + mm * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Ok(secs as f64 + fraction)
}

/// Unix seconds as RFC 3339 in UTC (`2026-12-02T10:00:00Z`, milliseconds when not whole).
pub fn format_instant(unix_s: f64) -> String {
    let ms_total = (unix_s * 1000.0).round() as i64;
    let secs = ms_total.div_euclid(1000);
    let ms = ms_total.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    if ms == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{ms:03}Z")
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse() {
        // (text, unix seconds)
        let cases = [
            // unix seconds, whole and fractional
            ("1796205600", 1_796_205_600.0),
            ("1796205600.25", 1_796_205_600.25),
            // RFC 3339 in UTC (`date -u +%s -d 2026-12-02T10:00:00Z` = 1796205600)
            ("2026-12-02T10:00:00Z", 1_796_205_600.0),
            // with a fraction
            ("2026-12-02T10:00:00.5Z", 1_796_205_600.5),
            // with an offset: 11:00 at +01:00 is 10:00 UTC
            ("2026-12-02T11:00:00+01:00", 1_796_205_600.0),
            ("2026-12-02T09:30:00-00:30", 1_796_205_600.0),
            // the epoch, and a leap day
            ("1970-01-01T00:00:00Z", 0.0),
            ("2024-02-29T00:00:00Z", 1_709_164_800.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_instant(text), Ok(want), "{text}");
        }
        // (text) refused
        let bad = [
            "",
            "yesterday",
            "2026-12-02",
            "2026-13-02T10:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-02T10:00:00",
            "2026-12-02T10:00:00+1:00",
            "NaN",
            "inf",
        ];
        for text in bad {
            let e = parse_instant(text).expect_err(text);
            assert!(e.to_string().contains("allowed: RFC 3339"), "{e}");
        }
    }

    #[test]
    fn instants_format_back() {
        for (unix, text) in [
            (1_796_205_600.0, "2026-12-02T10:00:00Z"),
            (1_796_205_600.25, "2026-12-02T10:00:00.250Z"),
            (0.0, "1970-01-01T00:00:00Z"),
            (1_709_164_800.0, "2024-02-29T00:00:00Z"),
        ] {
            assert_eq!(format_instant(unix), text);
            assert_eq!(parse_instant(text), Ok(unix));
        }
    }
}
