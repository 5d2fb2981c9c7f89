//! CSV files a scenario refers to: a request trace (`arrivals.trace.file`) and observed
//! latencies (`empirical` distributions), both with a header row; and the rate schedule of
//! `splitlab load --schedule`, whose header is optional. `#` starts a comment line.
//!
//! Must not: open files (the caller passes the text) or know the scenario's field names beyond
//! the columns read here. Errors carry the line and column of the offending cell.

use std::collections::BTreeSet;

use csv::{ReaderBuilder, StringRecord};

use crate::model::time::{SimDuration, SimTime};
use crate::scenario::spec::{RatePoint, TraceRow};
use crate::scenario::yaml::SourcePos;

/// A problem in a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableError {
    pub pos: Option<SourcePos>,
    /// The column concerned, empty for file-level problems.
    pub column: String,
    pub message: String,
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(text.as_bytes())
}

fn csv_error(err: &csv::Error) -> TableError {
    let pos = err.position().map(|p| SourcePos {
        line: u32::try_from(p.line()).unwrap_or(u32::MAX),
        column: 1,
    });
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} field(s), the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        _ => err.to_string(),
    };
    TableError {
        pos,
        column: String::new(),
        message,
    }
}

/// The position of field `i` of a record: its line, and the column counted from the field
/// lengths (exact for unquoted fields, which is what traces and latency exports hold).
fn field_pos(record: &StringRecord, i: usize) -> Option<SourcePos> {
    let line = record.position()?.line();
    let before: usize = record.iter().take(i).map(|f| f.len() + 1).sum();
    Some(SourcePos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(before + 1).unwrap_or(u32::MAX),
    })
}

/// The header row and the index of each wanted column (`None` when absent).
fn header(
    rdr: &mut csv::Reader<&[u8]>,
    wanted: &[&str],
) -> Result<(StringRecord, Vec<Option<usize>>), TableError> {
    let headers = rdr.headers().map_err(|e| csv_error(&e))?.clone();
    let indices = wanted
        .iter()
        .map(|w| headers.iter().position(|h| h.trim() == *w))
        .collect();
    Ok((headers, indices))
}

fn missing_column(headers: &StringRecord, column: &str) -> TableError {
    let have: Vec<&str> = headers.iter().map(str::trim).collect();
    TableError {
        pos: Some(SourcePos {
            line: headers
                .position()
                .and_then(|p| u32::try_from(p.line()).ok())
                .unwrap_or(1),
            column: 1,
        }),
        column: column.to_string(),
        message: format!(
            "the header has no column {column:?}; it has: {}",
            have.join(", ")
        ),
    }
}

/// Observed durations in milliseconds from one column; every row must hold a finite number
/// `>= 0`.
pub(crate) fn read_samples_ms(text: &str, column: &str) -> Result<Vec<SimDuration>, TableError> {
    let mut rdr = reader(text);
    let (headers, idx) = header(&mut rdr, &[column])?;
    let Some(idx) = idx[0] else {
        return Err(missing_column(&headers, column));
    };
    let mut samples = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(|e| csv_error(&e))?;
        let cell = record.get(idx).unwrap_or("").trim();
        match cell.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => {
                samples.push(SimDuration::from_secs_f64(ms / 1000.0))
            }
            _ => {
                return Err(TableError {
                    pos: field_pos(&record, idx),
                    column: column.to_string(),
                    message: format!(
                        "{cell:?} is not a latency; allowed: a number of milliseconds >= 0"
                    ),
                })
            }
        }
    }
    Ok(samples)
}

/// A request trace: column `t_s` (seconds since the start, non-decreasing), optional `tag`
/// (a tag URL to address; must be in `known_tags`) and `client` (an unsigned integer). Other
/// columns are ignored, so exports with extra data can be replayed as they are. Rows after
/// `duration` are not replayed (arrivals are generated only for the scenario's duration).
pub(crate) fn read_trace(
    text: &str,
    duration: SimDuration,
    known_tags: &BTreeSet<String>,
) -> Result<Vec<TraceRow>, TableError> {
    let mut rdr = reader(text);
    let (headers, idx) = header(&mut rdr, &["t_s", "tag", "client"])?;
    let Some(t_idx) = idx[0] else {
        return Err(missing_column(&headers, "t_s"));
    };
    let (tag_idx, client_idx) = (idx[1], idx[2]);
    let end = duration.as_secs_f64();
    let mut previous = 0.0f64;
    let mut rows = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(|e| csv_error(&e))?;
        let bad = |i: usize, column: &str, message: String| TableError {
            pos: field_pos(&record, i),
            column: column.to_string(),
            message,
        };
        let cell = record.get(t_idx).unwrap_or("").trim();
        let t = match cell.parse::<f64>() {
            Ok(t) if t.is_finite() && t >= 0.0 => t,
            _ => {
                return Err(bad(
                    t_idx,
                    "t_s",
                    format!("{cell:?} is not a time; allowed: seconds since the start, >= 0"),
                ))
            }
        };
        if t < previous {
            return Err(bad(
                t_idx,
                "t_s",
                format!(
                    "{cell} is before the previous row's {previous}; rows must be in time order"
                ),
            ));
        }
        previous = t;
        if t > end {
            break;
        }
        let tag = match tag_idx.map(|i| (i, record.get(i).unwrap_or("").trim())) {
            Some((_, "")) | None => None,
            Some((i, tag)) => {
                if !known_tags.contains(tag) {
                    let known: Vec<&str> = known_tags.iter().map(String::as_str).collect();
                    return Err(bad(
                        i,
                        "tag",
                        format!(
                            "tag {tag:?} is not in any traffic block; allowed: {}",
                            if known.is_empty() {
                                "none (no traffic block has a tag)".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                Some(tag.to_string())
            }
        };
        let client = match client_idx.map(|i| (i, record.get(i).unwrap_or("").trim())) {
            Some((_, "")) | None => None,
            Some((i, cell)) => match cell.parse::<u64>() {
                Ok(c) => Some(c),
                Err(_) => {
                    return Err(bad(
                        i,
                        "client",
                        format!("{cell:?} is not a client id; allowed: an integer >= 0"),
                    ))
                }
            },
        };
        rows.push(TraceRow {
            at: SimTime::from_secs_f64(t),
            tag,
            client,
        });
    }
    Ok(rows)
}

/// A rate schedule: rows `at_s,rate_per_s[,ramp_s]` (seconds, requests per second, seconds),
/// `at_s` non-decreasing; a row with `ramp_s > 0` ramps to its rate over that long, the others
/// step to it. A first row whose first cell starts with `at` is a header.
pub(crate) fn read_rate_schedule(text: &str) -> Result<Vec<RatePoint>, TableError> {
    const COLUMNS: [&str; 3] = ["at_s", "rate_per_s", "ramp_s"];
    let mut rdr = ReaderBuilder::new()
        .comment(Some(b'#'))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut points = Vec::new();
    let mut last_at = SimTime::ZERO;
    for (i, record) in rdr.records().enumerate() {
        let record = record.map_err(|e| csv_error(&e))?;
        if i == 0 && record.get(0).is_some_and(|c| c.trim().starts_with("at")) {
            continue;
        }
        if !(2..=3).contains(&record.len()) {
            return Err(TableError {
                pos: field_pos(&record, 0),
                column: String::new(),
                message: format!(
                    "the row has {} field(s); allowed: at_s,rate_per_s[,ramp_s]",
                    record.len()
                ),
            });
        }
        let num = |col: usize| {
            let cell = record.get(col).unwrap_or("").trim();
            cell.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| TableError {
                    pos: field_pos(&record, col),
                    column: COLUMNS[col].to_string(),
                    message: format!("{cell:?} is not allowed; allowed: a number >= 0"),
                })
        };
        let at = SimTime::from_secs_f64(num(0)?);
        let rate = num(1)?;
        let ramp_s = if record.len() == 3 { num(2)? } else { 0.0 };
        if at < last_at {
            return Err(TableError {
                pos: field_pos(&record, 0),
                column: COLUMNS[0].to_string(),
                message: format!(
                    "{at} is before the previous row's {last_at}; rows must be in time order"
                ),
            });
        }
        last_at = at;
        points.push(if ramp_s > 0.0 {
            RatePoint::Ramp {
                at,
                to_rate_per_s: rate,
                over: SimDuration::from_secs_f64(ramp_s),
            }
        } else {
            RatePoint::Step {
                at,
                rate_per_s: rate,
            }
        });
    }
    if points.is_empty() {
        return Err(TableError {
            pos: None,
            column: String::new(),
            message: "no schedule rows; expected at_s,rate_per_s[,ramp_s]".to_string(),
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_schedules_and_bad_rows() {
        let ok = "at_s,rate_per_s,ramp_s\n0,100\n# a comment\n10, 500, 5\n20,50,0\n";
        let points = read_rate_schedule(ok).expect("valid");
        assert_eq!(
            points,
            [
                RatePoint::Step {
                    at: SimTime::ZERO,
                    rate_per_s: 100.0
                },
                RatePoint::Ramp {
                    at: SimTime(10_000_000_000),
                    to_rate_per_s: 500.0,
                    over: SimDuration::from_secs(5)
                },
                RatePoint::Step {
                    at: SimTime(20_000_000_000),
                    rate_per_s: 50.0
                },
            ]
        );
        // without a header
        assert_eq!(read_rate_schedule("0,7\n").expect("valid").len(), 1);

        // (text, expected position, column, message fragment)
        let cases = [
            // not a number, in the second column
            ("0,abc\n", p(1, 3), "rate_per_s", "\"abc\" is not allowed"),
            // negative ramp
            (
                "at_s,rate_per_s,ramp_s\n0,1,-2\n",
                p(2, 5),
                "ramp_s",
                "\"-2\" is not allowed",
            ),
            // out of order
            (
                "5,1\n2,1\n",
                p(2, 1),
                "at_s",
                "2 is before the previous row's 5;",
            ),
            // one field
            ("0\n", p(1, 1), "", "the row has 1 field(s)"),
            // four fields
            ("0,1,2,3\n", p(1, 1), "", "the row has 4 field(s)"),
            // nothing but a header
            ("at_s,rate_per_s\n", None, "", "no schedule rows"),
        ];
        for (text, pos, column, fragment) in cases {
            let e = read_rate_schedule(text).expect_err(text);
            assert_eq!(e.pos, pos, "{text:?}");
            assert_eq!(e.column, column, "{text:?}");
            assert!(e.message.contains(fragment), "{text:?}: {}", e.message);
        }
    }

    fn p(line: u32, column: u32) -> Option<SourcePos> {
        Some(SourcePos { line, column })
    }

    #[test]
    fn trace_rows_and_bad_rows() {
        let tags: BTreeSet<String> = ["canary".to_string()].into();
        let ok = "t_s,tag,client,extra\n0,,7,x\n0.5,canary,,y\n# a comment\n2,,,z\n99,,,late\n";
        let rows = read_trace(ok, SimDuration::from_secs(10), &tags).expect("valid");
        assert_eq!(rows.len(), 3, "the row after the duration is not replayed");
        assert_eq!(rows[0].client, Some(7));
        assert_eq!(rows[1].tag.as_deref(), Some("canary"));
        assert_eq!(rows[2].at, SimTime(2_000_000_000));

        // (text, expected position, column, message fragment)
        let cases = [
            // not a number
            ("t_s\n1\nabc\n", p(3, 1), "t_s", "\"abc\" is not a time"),
            // negative
            ("t_s\n-1\n", p(2, 1), "t_s", "is not a time"),
            // out of order
            ("t_s\n2\n1\n", p(3, 1), "t_s", "before the previous row's 2"),
            // a tag no traffic block has, in the second column
            (
                "t_s,tag\n1,blue\n",
                p(2, 3),
                "tag",
                "tag \"blue\" is not in any traffic block; allowed: canary",
            ),
            // a bad client id
            ("t_s,client\n1,x\n", p(2, 3), "client", "not a client id"),
            // no t_s column
            (
                "time\n1\n",
                p(1, 1),
                "t_s",
                "no column \"t_s\"; it has: time",
            ),
            // a short row
            (
                "t_s,tag\n1,canary\n2\n",
                p(3, 1),
                "",
                "the row has 1 field(s), the header has 2",
            ),
        ];
        for (text, pos, column, fragment) in cases {
            let err = read_trace(text, SimDuration::from_secs(10), &tags).expect_err(text);
            assert_eq!(
                (err.pos, err.column.as_str()),
                (pos, column),
                "{text:?}: {err:?}"
            );
            assert!(err.message.contains(fragment), "{text:?}: {}", err.message);
        }
    }

    #[test]
    fn latency_samples_and_bad_rows() {
        let samples = read_samples_ms("id,latency_ms\na,10\nb,2.5\n", "latency_ms").expect("ok");
        assert_eq!(
            samples,
            vec![SimDuration::from_millis(10), SimDuration(2_500_000)]
        );
        let err = read_samples_ms("id,latency_ms\na,10\nbb,-3\n", "latency_ms").expect_err("neg");
        assert_eq!(err.pos, p(3, 4));
        assert!(
            err.message.contains("\"-3\" is not a latency"),
            "{}",
            err.message
        );
        let err = read_samples_ms("id,ms\n", "latency_ms").expect_err("no column");
        assert!(err.message.contains("it has: id, ms"), "{}", err.message);
    }
}
