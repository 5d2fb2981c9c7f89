//! kn-style traffic edits: `kn service update --traffic/--tag/--untag` and
//! `kn service create --tag`, ported from knative/client `pkg/traffic/compute.go` (\[C] below)
//! at commit `e411e884` (knative-v1.23.0). The spec followed is
//! `docs/knative/kn-traffic.md`; section numbers (§) and quirk ids (Q1..Q8) refer to it.
//!
//! Owns: splitting raw flag occurrences the way pflag's `StringSlice` does (one CSV record per
//! occurrence, §2.2), kn's input checks and remainder rule (§3 phase A, §4), applying untag,
//! tag and percentages to a Service's `spec.traffic` (§3 phase B), and kn's error texts, byte
//! for byte (§6).
//!
//! Must not: validate the result the way the server does (sum == 100, unique DNS-1035 tags,
//! `revisionName` vs `latestRevision`); that is `validation`'s job, run by the caller
//! afterwards. kn's output is what we reproduce, including results the server will reject
//! (quirks Q1, Q5, Q7, e2e `TagMisspelledLatestAsCurrent`). No I/O, no clock, no RNG.
//!
//! Invariants: [`compute`] never panics and never mutates its inputs. It reads spec targets
//! as kn sees them after server defaulting (§11: a nil `percent` is 0, a nil `latestRevision`
//! is `revisionName == ""`), so every target it returns has both fields set.

use std::collections::BTreeSet;
use std::fmt;

use crate::routing::field_error::go_quote;
use crate::routing::TrafficTarget;

/// kn's name for "the latest ready revision" on the left of `=` (\[C] L30).
const LATEST_REF: &str = "@latest";

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

/// The three traffic flags after pflag parsing: each `Vec` is every occurrence's CSV fields,
/// concatenated in command-line order (\[F] L21-25, §2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficFlags {
    /// `--traffic REF=PCT` entries (`RevisionsPercentages`).
    pub traffic: Vec<String>,
    /// `--tag REF=TAG` entries (`RevisionsTags`).
    pub tags: Vec<String>,
    /// `--untag TAG` entries (`UntagRevisions`).
    pub untags: Vec<String>,
    /// `cmd.Flags().Changed("traffic")`: true when `--traffic` appeared at all, even with an
    /// empty value that added no entries (quirk Q5).
    pub traffic_changed: bool,
}

impl TrafficFlags {
    /// Builds the flags from raw occurrences: each element is the value of ONE appearance of
    /// the flag on the command line, parsed as one CSV record as pflag's `StringSlice.Set`
    /// does (\[PF] `readAsCSV`, `Set`).
    ///
    /// The relative order of different flags on a command line is not an input here, so when
    /// several occurrences are malformed the first bad `--traffic` occurrence is reported,
    /// then `--tag`, then `--untag` (pflag would report whichever came first in argv).
    pub fn from_occurrences(
        traffic: &[String],
        tags: &[String],
        untags: &[String],
    ) -> Result<Self, KnError> {
        Ok(TrafficFlags {
            traffic: parse_occurrences("--traffic", traffic)?,
            tags: parse_occurrences("--tag", tags)?,
            untags: parse_occurrences("--untag", untags)?,
            traffic_changed: !traffic.is_empty(),
        })
    }
}

/// \[PF] `stringSliceValue.Set`: append each occurrence's fields; wrap a CSV error the way
/// pflag's `FlagSet.set` does (`invalid argument %q for %q flag: %v`).
fn parse_occurrences(flag: &'static str, occurrences: &[String]) -> Result<Vec<String>, KnError> {
    let mut entries = Vec::new();
    for value in occurrences {
        let fields = read_csv_record(value).map_err(|cause| KnError::FlagValue {
            flag,
            value: value.clone(),
            cause,
        })?;
        entries.extend(fields);
    }
    Ok(entries)
}

/// Why Go's `encoding/csv` refused a flag value. Display is Go's text (`ParseError.Error`,
/// `ErrBareQuote`, `ErrQuote`, `io.EOF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsvError {
    /// The value held only line breaks, so `csv.Reader.Read` found no record (`io.EOF`).
    NoRecord,
    /// A syntax error; lines and columns are 1-based, columns count bytes (Go >= 1.17).
    Parse {
        start_line: usize,
        line: usize,
        column: usize,
        kind: CsvErrorKind,
    },
}

/// The two syntax errors reachable with Go's default reader options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvErrorKind {
    /// `ErrBareQuote`: a `"` inside an unquoted field.
    BareQuote,
    /// `ErrQuote`: a quoted field not closed, or its closing `"` followed by other text.
    Quote,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::NoRecord => f.write_str("EOF"),
            CsvError::Parse {
                start_line,
                line,
                column,
                kind,
            } => {
                let what = match kind {
                    CsvErrorKind::BareQuote => "bare \" in non-quoted-field",
                    CsvErrorKind::Quote => "extraneous or missing \" in quoted-field",
                };
                if start_line != line {
                    write!(
                        f,
                        "record on line {start_line}; parse error on line {line}, column {column}: {what}"
                    )
                } else {
                    write!(f, "parse error on line {line}, column {column}: {what}")
                }
            }
        }
    }
}

/// Go `csv.Reader.readLine` over an in-memory value: lines keep their `\n`, `\r\n` becomes
/// `\n`, and a final `\r` without `\n` is dropped. `line_count` counts every call, EOF
/// included, as Go's `numLine` does.
struct LineReader<'a> {
    input: &'a [u8],
    line_count: usize,
}

impl LineReader<'_> {
    /// `None` is Go's `io.EOF` with nothing read.
    fn read_line(&mut self) -> Option<Vec<u8>> {
        self.line_count += 1;
        if self.input.is_empty() {
            return None;
        }
        let mut line = match self.input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (line, rest) = self.input.split_at(i + 1);
                self.input = rest;
                line.to_vec()
            }
            None => {
                let mut line = self.input.to_vec();
                self.input = &[];
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                line
            }
        };
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            line.push(b'\n');
        }
        Some(line)
    }
}

/// `lengthNL(line) == len(line)`: the line is empty or a lone `\n`.
fn is_blank_line(line: &[u8]) -> bool {
    line.is_empty() || line == b"\n"
}

/// The line without its trailing `\n`, if any (`field[:len(field)-lengthNL(field)]`).
fn strip_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// The fields only ever split at ASCII bytes of valid UTF-8, so this is lossless; the lossy
/// conversion just avoids a panic path.
fn field_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// pflag `readAsCSV` (\[PF]): `""` gives no fields; anything else is the FIRST record of Go's
/// `encoding/csv` reader with default options (comma `,`, quote `"`, no trimming, no lazy
/// quotes). Blank lines before the record are skipped and text after it is ignored, as
/// `Reader.Read` does. Written by hand after Go's `readRecord` (Go 1.17+ positions).
fn read_csv_record(value: &str) -> Result<Vec<String>, CsvError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = LineReader {
        input: value.as_bytes(),
        line_count: 0,
    };
    // Skip blank lines; a value of only line breaks has no record at all.
    let mut line = loop {
        match reader.read_line() {
            None => return Err(CsvError::NoRecord),
            Some(line) if is_blank_line(&line) => continue,
            Some(line) => break line,
        }
    };
    let record_line = reader.line_count;
    let mut fields = Vec::new();
    let mut at = 0usize; // byte offset into `line`
    let mut column = 1usize; // Go's pos.col
    let mut pos_line = record_line; // Go's pos.line
    'field: loop {
        let rest = line.get(at..).unwrap_or_default();
        if rest.first() != Some(&b'"') {
            // Unquoted field: runs to the next comma or the end of the line.
            let comma = rest.iter().position(|&b| b == b',');
            let field = match comma {
                Some(i) => rest.get(..i).unwrap_or_default(),
                None => strip_newline(rest),
            };
            if let Some(j) = field.iter().position(|&b| b == b'"') {
                return Err(CsvError::Parse {
                    start_line: record_line,
                    line: reader.line_count,
                    column: column + j,
                    kind: CsvErrorKind::BareQuote,
                });
            }
            fields.push(field_string(field));
            match comma {
                Some(i) => {
                    at += i + 1;
                    column += i + 1;
                    continue 'field;
                }
                None => break 'field,
            }
        }
        // Quoted field: `""` is a literal quote; it may span lines.
        at += 1;
        column += 1;
        let mut buf = Vec::new();
        loop {
            let rest = line.get(at..).unwrap_or_default();
            if let Some(i) = rest.iter().position(|&b| b == b'"') {
                buf.extend_from_slice(rest.get(..i).unwrap_or_default());
                at += i + 1;
                column += i + 1;
                let after = line.get(at..).unwrap_or_default();
                match after.first() {
                    Some(b'"') => {
                        buf.push(b'"');
                        at += 1;
                        column += 1;
                    }
                    Some(b',') => {
                        at += 1;
                        column += 1;
                        fields.push(field_string(&buf));
                        continue 'field;
                    }
                    _ if is_blank_line(after) => {
                        fields.push(field_string(&buf));
                        break 'field;
                    }
                    _ => {
                        return Err(CsvError::Parse {
                            start_line: record_line,
                            line: reader.line_count,
                            column: column - 1,
                            kind: CsvErrorKind::Quote,
                        })
                    }
                }
            } else if !rest.is_empty() {
                // The field continues on the next line (the `\n` is part of it).
                buf.extend_from_slice(rest);
                column += rest.len();
                line = reader.read_line().unwrap_or_default();
                at = 0;
                if !line.is_empty() {
                    pos_line += 1;
                    column = 1;
                }
            } else {
                // The input ended inside a quoted field.
                return Err(CsvError::Parse {
                    start_line: record_line,
                    line: pos_line,
                    column,
                    kind: CsvErrorKind::Quote,
                });
            }
        }
    }
    Ok(fields)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Every error kn itself raises for traffic flags (§6), with kn's exact text and no `Error: `
/// prefix (the CLI adds it), plus pflag's CSV error and cobra's unknown-flag error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KnError {
    /// E1, \[C] L49-51: an entry with two or more `=`, or an empty side.
    #[error("expecting the value format in value1=value2, given {entry}")]
    BadFormat { entry: String },
    /// E2, \[C] L214-222 via L345-348: `@latest` twice in `--traffic`.
    #[error("repetition of identifier @latest is not allowed, use only once with --traffic flag")]
    LatestRepeatedInTraffic,
    /// E3, \[C] L214-222 via L345-348: the same revision or tag reference twice in `--traffic`.
    #[error(
        "repetition of revision reference {reference} is not allowed, use only once with --traffic flag"
    )]
    ReferenceRepeatedInTraffic { reference: String },
    /// E4, \[C] L381-383: `@latest` twice in `--tag` (the `=`-less form counts).
    #[error("repetition of identifier @latest is not allowed, use only once with --tag flag")]
    LatestRepeatedInTag,
    /// E5, \[C] L369-371: the percent is not a Go `strconv.Atoi` integer.
    #[error("error converting given {value} to integer value for traffic distribution")]
    NotAnInteger { value: String },
    /// E6, \[C] L359-361.
    #[error("invalid value for traffic percent {percent}, expected 0 <= percent <= 100")]
    PercentOutOfRange { percent: i64 },
    /// E9, \[C] L235-237.
    #[error("given traffic percents sum to {sum}, want <=100")]
    SumOver100 { sum: i64 },
    /// E10, \[C] L224-233: the remainder rule got the wrong number of entries (§4).
    #[error(
        "unable to allocate the remaining traffic: {remaining}%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"
    )]
    WrongRevisionCount { remaining: i64 },
    /// E11, \[C] L224-233: no status target can take the remainder (§4 step 4).
    #[error(
        "unable to allocate the remaining traffic: {remaining}%. Reason: cannot determine the missing revision"
    )]
    MissingRevisionUndetermined { remaining: i64 },
    /// E12, \[C] L423-426: `--untag` tags that no target had, in the order given.
    #[error(
        "tag(s) {} not present for any revisions of service {service}",
        .tags.join(", ")
    )]
    TagsNotPresent { tags: Vec<String>, service: String },
    /// E13, \[C] L209-212: the tag already sits on a different target.
    #[error("refusing to overwrite existing tag in service, add flag '--untag {tag}' in command to untag it")]
    TagInUse { tag: String },
    /// E14, \[C] L203-207: `--tag @latest=NEW` while the latest target is tagged OLD.
    #[error(
        "tag '{existing}' exists on latest ready revision of service, refusing to overwrite existing tag with '{requested}', add flag '--untag {existing}' in command to untag it"
    )]
    LatestAlreadyTagged { existing: String, requested: String },
    /// pflag `FlagSet.set`: a flag value that is not one valid CSV record (§2.2).
    #[error("invalid argument {} for \"{flag}\" flag: {cause}", go_quote(.value))]
    FlagValue {
        flag: &'static str,
        value: String,
        cause: CsvError,
    },
    /// cobra's message for a flag the command does not have: `create` registers only `--tag`
    /// (\[CR] L171, §9).
    #[error("unknown flag: {flag}")]
    UnknownFlag { flag: &'static str },
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Which kn command is running (`cmd.Name()` in \[C] L468).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `kn service update`: `--traffic`, `--tag`, `--untag`.
    Update,
    /// `kn service create`: `--tag` only.
    Create,
}

/// The parts of a Service that `Compute` reads (§1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// `metadata.name`, used only in the untag error.
    pub name: String,
    /// `spec.traffic`: the list that is edited.
    pub spec_traffic: Vec<TrafficTarget>,
    /// `status.traffic`: only its length and order matter, for the remainder rule (§4). In a
    /// real cluster its latest target carries the revision name too.
    pub status_traffic: Vec<TrafficTarget>,
    /// `status.latestReadyRevisionName`, used only in the remainder rule.
    pub latest_ready_revision: String,
}

/// One revision of the Service as `kn service update` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionInfo {
    pub name: String,
    /// The `client.knative.dev/tags` annotation, `""` when absent. Plain API objects never
    /// carry it (only `kn revision list` fills it in memory), so for a faithful `update` this
    /// is `""` (quirk Q1).
    pub tags_annotation: String,
}

// ---------------------------------------------------------------------------------------------
// Phase A: verifyInput
// ---------------------------------------------------------------------------------------------

/// \[C] L44-53 `splitByEqualSign`: no `=` means `@latest=<whole entry>` (no `%` removal);
/// exactly one `=` with both sides non-empty gives (left, right minus ONE trailing `%`).
fn split_by_equal_sign(entry: &str) -> Result<(String, String), KnError> {
    let parts: Vec<&str> = entry.split('=').collect();
    match parts.as_slice() {
        [whole] => Ok((LATEST_REF.to_string(), (*whole).to_string())),
        [left, right] if !left.is_empty() && !right.is_empty() => Ok((
            (*left).to_string(),
            right.strip_suffix('%').unwrap_or(right).to_string(),
        )),
        _ => Err(KnError::BadFormat {
            entry: entry.to_string(),
        }),
    }
}

/// Go `strconv.Atoi` on a 64-bit platform: optional sign, ASCII digits, no spaces or
/// underscores, in `i64` range. Rust's `i64::from_str` accepts exactly that language.
fn go_atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

/// \[C] L373-390 `verifyLatestTag`: every `--tag` entry well formed, `@latest` at most once.
fn verify_latest_tag(tags: &[String]) -> Result<(), KnError> {
    let mut seen_latest = false;
    for entry in tags {
        let (reference, _) = split_by_equal_sign(entry)?;
        if reference == LATEST_REF {
            if seen_latest {
                return Err(KnError::LatestRepeatedInTag);
            }
            seen_latest = true;
        }
    }
    Ok(())
}

/// \[C] L335-367 `verifyRevisionSumAndReferences`: per entry, in order: format, duplicate
/// reference, integer, range. Returns the references (`revisionRefMap` keys) and the sum.
fn verify_revision_sum_and_references(
    traffic: &[String],
) -> Result<(BTreeSet<String>, i64), KnError> {
    let mut references = BTreeSet::new();
    let mut sum: i64 = 0;
    for entry in traffic {
        let (reference, percent) = split_by_equal_sign(entry)?;
        if references.contains(&reference) {
            return Err(if reference == LATEST_REF {
                KnError::LatestRepeatedInTraffic
            } else {
                KnError::ReferenceRepeatedInTraffic { reference }
            });
        }
        references.insert(reference);
        let value = go_atoi(&percent).ok_or(KnError::NotAnInteger { value: percent })?;
        if !(0..=100).contains(&value) {
            return Err(KnError::PercentOutOfRange { percent: value });
        }
        // Each value is at most 100, so only an absurd number of entries could overflow;
        // saturating keeps that case an E9 instead of a panic.
        sum = sum.saturating_add(value);
    }
    Ok((references, sum))
}

/// \[C] L245-322 `verifyInput`. Returns the `--traffic` entries to apply: the given ones, plus
/// the remainder entry `<name>=<100-sum>` or `@latest=<100-sum>` when §4 assigns one. kn
/// appends that entry to the flag slice itself (quirk Q6); we return a copy instead, so a
/// caller that retries on conflict recomputes from the original flags.
fn verify_input(
    traffic: &[String],
    tags: &[String],
    service: &ServiceState,
    revisions: &[RevisionInfo],
    mutation: bool,
) -> Result<Vec<String>, KnError> {
    verify_latest_tag(tags)?;
    let (mut references, sum) = verify_revision_sum_and_references(traffic)?;
    let mut entries = traffic.to_vec();

    // [C] L262-268: a full split needs no count rule.
    if sum == 100 {
        return Ok(entries);
    }
    if sum > 100 {
        return Err(KnError::SumOver100 { sum });
    }
    // [C] L278-281: `--traffic` absent or empty: nothing to route.
    if traffic.is_empty() {
        return Ok(entries);
    }

    // N counts status TARGETS, not revisions (quirk Q4); K counts every entry incl. @latest.
    let remaining = 100 - sum;
    let wrong_count = KnError::WrongRevisionCount { remaining };
    let k = traffic.len();
    let n = service.status_traffic.len();
    // [C] L283-286: K < N-1, written without underflow.
    if k + 1 < n {
        return Err(wrong_count);
    }
    let latest_named = references.contains(LATEST_REF);
    if mutation {
        // [C] L288-298: the new revision becomes @latest, so all N current targets must be
        // named; if @latest itself is not, it takes the remainder.
        if k != n {
            return Err(wrong_count);
        }
        if !latest_named {
            entries.push(format!("{LATEST_REF}={remaining}"));
            return Ok(entries);
        }
    } else {
        // [C] L299-307: exactly one current target may be left out; naming @latest covers
        // the latest ready revision. If that name is "" (status not filled in yet), "" becomes
        // a reference, and every revision without a tags annotation then counts as named
        // (derived from L304-306 with checkRevisionPresent L392-396).
        if k + 1 != n {
            return Err(wrong_count);
        }
        if latest_named {
            references.insert(service.latest_ready_revision.clone());
        }
    }

    // [C] L309-321: the first status target whose revision is known and not named takes the
    // remainder. A target whose revision is not in the list ends the search (quirk Q3).
    for target in &service.status_traffic {
        let Some(revision) = revisions
            .iter()
            .find(|revision| revision.name == target.revision_name)
        else {
            break;
        };
        // [C] L392-396 `checkRevisionPresent`.
        let named =
            references.contains(&revision.name) || references.contains(&revision.tags_annotation);
        if !named {
            entries.push(format!("{}={remaining}", revision.name));
            return Ok(entries);
        }
    }
    Err(KnError::MissingRevisionUndetermined { remaining })
}

// ---------------------------------------------------------------------------------------------
// Phase B: the ServiceTraffic helpers, then Compute
// ---------------------------------------------------------------------------------------------

/// \[C] L55-66 `newTarget`: `@latest` targets get `latestRevision: true` and no revision name;
/// named ones `latestRevision: false`.
fn new_target(tag: &str, revision: &str, percent: i64, latest: bool) -> TrafficTarget {
    if latest {
        TrafficTarget::latest(percent).with_tag(tag)
    } else {
        TrafficTarget::revision(revision, percent).with_tag(tag)
    }
}

/// \[C] L86-93 `isTagPresent`. `""` matches any untagged target (quirk Q7).
fn is_tag_present(traffic: &[TrafficTarget], tag: &str) -> bool {
    traffic.iter().any(|t| t.tag == tag)
}

/// \[C] L68-75 `isTagPresentOnRevision`.
fn is_tag_present_on_revision(traffic: &[TrafficTarget], tag: &str, revision: &str) -> bool {
    traffic
        .iter()
        .any(|t| t.tag == tag && t.revision_name == revision)
}

/// \[C] L77-84 `tagOfLatestReadyRevision`: the tag of the FIRST latest target (quirk Q8).
fn tag_of_latest(traffic: &[TrafficTarget]) -> &str {
    traffic
        .iter()
        .find(|t| t.is_latest())
        .map_or("", |t| t.tag.as_str())
}

/// \[C] L95-104 `untagRevision`: clears the FIRST target carrying `tag`.
fn untag_revision(traffic: &mut [TrafficTarget], tag: &str) -> bool {
    match traffic.iter_mut().find(|t| t.tag == tag) {
        Some(target) => {
            target.tag.clear();
            true
        }
        None => false,
    }
}

/// \[C] L125-140 `TagRevision`: tag the first target of `revision` if it is untagged;
/// otherwise (tagged already, or absent) append a new 0% target, so one revision can hold
/// several tags. A `latestRevision: true` target has no spec revision name, so it never
/// matches here even when it points at `revision` (e2e `TagReplace`).
fn tag_revision(traffic: &mut Vec<TrafficTarget>, tag: &str, revision: &str) {
    if let Some(target) = traffic.iter_mut().find(|t| t.revision_name == revision) {
        if target.tag.is_empty() {
            target.tag = tag.to_string();
            return;
        }
    }
    traffic.push(new_target(tag, revision, 0, false));
}

/// \[C] L143-152 `TagLatestRevision`: tag the first latest target, or append a 0% one.
fn tag_latest_revision(traffic: &mut Vec<TrafficTarget>, tag: &str) {
    match traffic.iter_mut().find(|t| t.is_latest()) {
        Some(target) => target.tag = tag.to_string(),
        None => traffic.push(new_target(tag, "", 0, true)),
    }
}

/// \[C] L155-182 `SetTrafficByRevision` / `SetTrafficByTag` / `SetTrafficByLatestRevision`:
/// set the percent of the FIRST target that matches; report whether one did.
fn set_first_percent(
    traffic: &mut [TrafficTarget],
    percent: i64,
    matches: impl Fn(&TrafficTarget) -> bool,
) -> bool {
    match traffic.iter_mut().find(|t| matches(t)) {
        Some(target) => {
            target.percent = Some(percent);
            true
        }
        None => false,
    }
}

/// \[C] L191-201 `RemoveNullTargets`: drop untagged 0% targets, keeping order.
fn remove_null_targets(traffic: Vec<TrafficTarget>) -> Vec<TrafficTarget> {
    traffic
        .into_iter()
        .filter(|t| !t.tag.is_empty() || t.percent_or_zero() != 0)
        .collect()
}

/// kn's `traffic.Compute` (\[C] L401-516): the new `spec.traffic` for `service` after the
/// traffic flags, or kn's error.
///
/// Order: verify (`--tag` format and `@latest` repetition; `--traffic` format, duplicates,
/// integers, range; sum; count and remainder, §4), then untag (all missing tags in one error),
/// then tag, then (only if `--traffic` was given, or for `create` with tags) reset every
/// percent to 0 and apply each entry (`@latest`; else tag before revision name; else append),
/// then drop untagged 0% targets. Existing targets keep their positions; new ones are appended
/// in creation order.
///
/// For [`Command::Create`] (§9, \[CR] L137-145) the traffic entries become `["@latest=100"]`
/// when there are tags; `--traffic`/`--untag` do not exist on `create`, so passing them gives
/// cobra's `unknown flag` error.
///
/// `revisions` is the service's revision list; `mutation` is true when the same command
/// creates a new revision (image, env, `--revision-name`, ...).
pub fn compute(
    service: &ServiceState,
    flags: &TrafficFlags,
    revisions: &[RevisionInfo],
    mutation: bool,
    command: Command,
) -> Result<Vec<TrafficTarget>, KnError> {
    let (given_traffic, apply_percentages) = match command {
        Command::Update => (flags.traffic.clone(), flags.traffic_changed),
        Command::Create => {
            if flags.traffic_changed || !flags.traffic.is_empty() {
                return Err(KnError::UnknownFlag { flag: "--traffic" });
            }
            if !flags.untags.is_empty() {
                return Err(KnError::UnknownFlag { flag: "--untag" });
            }
            if flags.tags.is_empty() {
                (Vec::new(), false)
            } else {
                (vec![format!("{LATEST_REF}=100")], true)
            }
        }
    };

    let traffic_entries = verify_input(&given_traffic, &flags.tags, service, revisions, mutation)?;

    // kn works on the object the API server returned, which is always defaulted (§11).
    let mut traffic = service.spec_traffic.clone();
    for target in &mut traffic {
        target.set_defaults();
    }

    // [C] L414-426, first precedence: untag. Every missing tag is reported together.
    let missing: Vec<String> = flags
        .untags
        .iter()
        .filter(|tag| !untag_revision(&mut traffic, tag))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(KnError::TagsNotPresent {
            tags: missing,
            service: service.name.clone(),
        });
    }

    for entry in &flags.tags {
        // verify_latest_tag has accepted every entry; Go ignores this error and would use
        // its zero values, which is what unwrap_or_default gives.
        let (reference, tag) = split_by_equal_sign(entry).unwrap_or_default();
        if reference == LATEST_REF {
            // [C] L431-452, second precedence: tag the latest revision.
            let existing = tag_of_latest(&traffic);
            if existing == tag {
                continue;
            }
            if is_tag_present(&traffic, &tag) {
                return Err(KnError::TagInUse { tag });
            }
            if !existing.is_empty() {
                return Err(KnError::LatestAlreadyTagged {
                    existing: existing.to_string(),
                    requested: tag,
                });
            }
            tag_latest_revision(&mut traffic, &tag);
            continue;
        }
        // [C] L454-465, third precedence: tag a named revision.
        if is_tag_present_on_revision(&traffic, &tag, &reference) {
            continue;
        }
        if is_tag_present(&traffic, &tag) {
            return Err(KnError::TagInUse { tag });
        }
        tag_revision(&mut traffic, &tag, &reference);
    }

    // [C] L468-513: what is on the command line is the whole desired split.
    if apply_percentages {
        for target in &mut traffic {
            target.percent = Some(0);
        }
        for entry in &traffic_entries {
            // Re-split the strings as kn does, with Go's zero values on error: only a
            // remainder entry built from a revision name containing `=` can fail here, and kn
            // then applies ("", 0).
            let (reference, percent) = split_by_equal_sign(entry).unwrap_or_default();
            let percent = go_atoi(&percent).unwrap_or(0);
            if reference == LATEST_REF {
                // [C] L477-486, fourth precedence.
                if !set_first_percent(&mut traffic, percent, TrafficTarget::is_latest) {
                    traffic.push(new_target("", "", percent, true));
                }
                continue;
            }
            // [C] L488-511, fifth precedence: a tag wins over a revision name; an unknown
            // reference becomes a new revision target (kn does not check it exists).
            if set_first_percent(&mut traffic, percent, |t| t.tag == reference) {
                continue;
            }
            if set_first_percent(&mut traffic, percent, |t| t.revision_name == reference) {
                continue;
            }
            traffic.push(new_target("", &reference, percent, false));
        }
    }

    // [C] L514-515: always, even for a tag-only edit.
    Ok(remove_null_targets(traffic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec's notation (§8): `[@latest #tag 10, rev 90]`. `@latest` is
    /// `{latestRevision: true, revisionName: ""}`; the status form `@latest(rev2)` also carries
    /// the revision name, as a real cluster's status does. Anything else is a named revision
    /// with `latestRevision: false`.
    fn targets(list: &str) -> Vec<TrafficTarget> {
        let inner = list.trim().trim_start_matches('[').trim_end_matches(']');
        if inner.trim().is_empty() {
            return Vec::new();
        }
        inner.split(", ").map(target).collect()
    }

    fn target(text: &str) -> TrafficTarget {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (reference, rest) = words.split_first().expect("a reference");
        let (percent, middle) = rest.split_last().expect("a percent");
        let percent: i64 = percent.parse().expect("a numeric percent");
        let tag = middle.first().map_or("", |t| t.trim_start_matches('#'));
        let target = match reference.strip_prefix("@latest") {
            Some(revision) => TrafficTarget {
                revision_name: revision
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .to_string(),
                ..TrafficTarget::latest(percent)
            },
            None => TrafficTarget::revision(reference, percent),
        };
        target.with_tag(tag)
    }

    /// Raw occurrences of one flag.
    type Occurrences = &'static [&'static str];

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    /// One row: a service, raw flag occurrences, and kn's result (targets) or error text.
    #[derive(Clone, Copy)]
    struct Case {
        name: &'static str,
        service: &'static str,
        /// spec.traffic before the command.
        existing: &'static str,
        /// status.traffic; `None` is the unit-test harness of §7 (status == spec).
        status: Option<&'static str>,
        lrr: &'static str,
        /// (revision name, `client.knative.dev/tags` annotation).
        revs: &'static [(&'static str, &'static str)],
        traffic: &'static [&'static str],
        tags: &'static [&'static str],
        untags: &'static [&'static str],
        mutation: bool,
        command: Command,
        want: Result<&'static str, &'static str>,
    }

    const BASE: Case = Case {
        name: "",
        service: "serviceName",
        existing: "",
        status: None,
        lrr: "",
        revs: &[],
        traffic: &[],
        tags: &[],
        untags: &[],
        mutation: false,
        command: Command::Update,
        want: Ok(""),
    };

    fn run(case: &Case) {
        let spec = targets(case.existing);
        let status = case.status.map_or_else(|| spec.clone(), targets);
        let service = ServiceState {
            name: case.service.to_string(),
            spec_traffic: spec,
            status_traffic: status,
            latest_ready_revision: case.lrr.to_string(),
        };
        let flags = TrafficFlags::from_occurrences(
            &strings(case.traffic),
            &strings(case.tags),
            &strings(case.untags),
        )
        .expect("well-formed flag values");
        let revisions: Vec<RevisionInfo> = case
            .revs
            .iter()
            .map(|(name, tags)| RevisionInfo {
                name: name.to_string(),
                tags_annotation: tags.to_string(),
            })
            .collect();
        let got = compute(&service, &flags, &revisions, case.mutation, case.command)
            .map_err(|e| e.to_string());
        let want = case.want.map(targets).map_err(str::to_string);
        // Full equality, length included (stricter than upstream's harness, §7).
        assert_eq!(got, want, "case: {}", case.name);
    }

    const REVS_3: &[(&str, &str)] = &[("rev-00001", ""), ("rev-00002", ""), ("rev-00003", "")];

    /// \[CT] `TestCompute` L89-380: all 21 success cases (§8.1), through the unit harness.
    #[test]
    fn upstream_test_compute() {
        let cases = [
            // C1 [CT] L92 "assign 'latest' tag to @latest revision"
            Case {
                name: "C1",
                existing: "[@latest 100]",
                tags: &["@latest=latest"],
                want: Ok("[@latest #latest 100]"),
                ..BASE
            },
            // C2 [CT] L100 "... without specifying key"
            Case {
                name: "C2",
                existing: "[@latest 100]",
                tags: &["latest"],
                want: Ok("[@latest #latest 100]"),
                ..BASE
            },
            // C3 [CT] L108 "assign tag to revision"
            Case {
                name: "C3",
                existing: "[echo-v1 100]",
                tags: &["echo-v1=stable"],
                want: Ok("[echo-v1 #stable 100]"),
                ..BASE
            },
            // C4 [CT] L116 "re-assign same tag to same revision (unchanged)"
            Case {
                name: "C4",
                existing: "[@latest #current 100]",
                tags: &["@latest=current"],
                want: Ok("[@latest #current 100]"),
                ..BASE
            },
            // C5 [CT] L124 "split traffic to tags"
            Case {
                name: "C5",
                existing: "[@latest 100, rev-v1 0]",
                traffic: &["@latest=10,rev-v1=90"],
                want: Ok("[@latest 10, rev-v1 90]"),
                ..BASE
            },
            // C6 [CT] L132 "split traffic to tags with '%' suffix"
            Case {
                name: "C6",
                existing: "[@latest 100, rev-v1 0]",
                traffic: &["@latest=10%,rev-v1=90%"],
                want: Ok("[@latest 10, rev-v1 90]"),
                ..BASE
            },
            // C7 [CT] L140 "add 2 more tagged revisions without giving them traffic portions"
            Case {
                name: "C7",
                existing: "[@latest #latest 100]",
                tags: &["echo-v0=stale,echo-v1=old"],
                want: Ok("[@latest #latest 100, echo-v0 #stale 0, echo-v1 #old 0]"),
                ..BASE
            },
            // C8 [CT] L148 "re-assign same tag to 'echo-v1' revision"
            Case {
                name: "C8",
                existing: "[echo-v1 #latest 100]",
                tags: &["echo-v1=latest"],
                want: Ok("[echo-v1 #latest 100]"),
                ..BASE
            },
            // C9 [CT] L156 "set 2% traffic to latest revision by appending it in traffic block"
            Case {
                name: "C9",
                existing: "[echo-v1 #latest 100]",
                traffic: &["@latest=2,echo-v1=98"],
                want: Ok("[echo-v1 #latest 98, @latest 2]"),
                ..BASE
            },
            // C10 [CT] L164 "set 2% to @latest with tag (append it in traffic block)"
            Case {
                name: "C10",
                existing: "[echo-v1 #latest 100]",
                traffic: &["@latest=2,echo-v1=98"],
                tags: &["@latest=testing"],
                want: Ok("[echo-v1 #latest 98, @latest #testing 2]"),
                ..BASE
            },
            // C11 [CT] L172 "change traffic percent of an existing revision in traffic block,
            // add new revision with traffic share"
            Case {
                name: "C11",
                existing: "[echo-v1 #v1 100]",
                tags: &["echo-v2=v2"],
                traffic: &["v1=10,v2=90"],
                want: Ok("[echo-v1 #v1 10, echo-v2 #v2 90]"),
                ..BASE
            },
            // C12 [CT] L180 "untag 'latest' tag from 'echo-v1' revision"
            Case {
                name: "C12",
                existing: "[echo-v1 #latest 100]",
                untags: &["latest"],
                want: Ok("[echo-v1 100]"),
                ..BASE
            },
            // C13 [CT] L188 "replace revision pointing to 'latest' tag from 'echo-v1' to
            // 'echo-v2' revision"
            Case {
                name: "C13",
                existing: "[echo-v1 #latest 50, echo-v2 50]",
                untags: &["latest"],
                tags: &["echo-v1=old,echo-v2=latest"],
                want: Ok("[echo-v1 #old 50, echo-v2 #latest 50]"),
                ..BASE
            },
            // C14 [CT] L196 "have multiple tags for a revision, revision present in traffic block"
            Case {
                name: "C14",
                existing: "[echo-v1 #latest 50, echo-v2 50]",
                tags: &["echo-v1=latest,echo-v1=current"],
                want: Ok("[echo-v1 #latest 50, echo-v2 50, echo-v1 #current 0]"),
                ..BASE
            },
            // C15 [CT] L205 "have multiple tags for a revision, revision absent in traffic block"
            Case {
                name: "C15",
                existing: "[echo-v2 100]",
                tags: &["echo-v1=latest,echo-v1=current"],
                want: Ok("[echo-v2 100, echo-v1 #latest 0, echo-v1 #current 0]"),
                ..BASE
            },
            // C16 [CT] L213 "re-assign same tag 'current' to @latest"
            Case {
                name: "C16",
                existing: "[@latest #current 100]",
                tags: &["@latest=current"],
                want: Ok("[@latest #current 100]"),
                ..BASE
            },
            // C17 [CT] L221 "assign echo-v1 10% traffic adjusting rest to @latest, echo-v1
            // isn't present in existing traffic block"
            Case {
                name: "C17",
                existing: "[@latest 100]",
                traffic: &["echo-v1=10,@latest=90"],
                want: Ok("[@latest 90, echo-v1 10]"),
                ..BASE
            },
            // C18 [CT] L229 "traffic split with sum < 100 should work for n-1 revisions"
            Case {
                name: "C18",
                existing: "[rev-00001 0, rev-00002 0, rev-00003 100]",
                traffic: &["rev-00001=10,rev-00002=10"],
                revs: REVS_3,
                want: Ok("[rev-00001 10, rev-00002 10, rev-00003 80]"),
                ..BASE
            },
            // C19 [CT] L259 "traffic split sum < 100 with @latest which mutates service should
            // specify N revs"
            Case {
                name: "C19",
                existing: "[rev-00001 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00001=10,rev-00003=40,@latest=20"],
                mutation: true,
                lrr: "rev-00003",
                revs: REVS_3,
                want: Ok("[rev-00001 10, rev-00002 30, @latest 20, rev-00003 40]"),
                ..BASE
            },
            // C20 [CT] L291 "traffic split sum < 100 with @latest and does not mutate the service
            // should specify N-1 revs"
            Case {
                name: "C20",
                existing: "[rev-00001 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00001=10,@latest=20"],
                lrr: "rev-00003",
                revs: REVS_3,
                want: Ok("[rev-00001 10, rev-00002 70, @latest 20]"),
                ..BASE
            },
            // C21 [CT] L323 "traffic split sum < 100 without which mutates service should
            // specify N revs. Remaining should go to @latest"
            Case {
                name: "C21",
                existing: "[rev-00001 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00001=10,rev-00003=40,rev-00002=30"],
                mutation: true,
                lrr: "rev-00003",
                revs: REVS_3,
                want: Ok("[rev-00001 10, rev-00002 30, @latest 20, rev-00003 40]"),
                ..BASE
            },
        ];
        assert_eq!(cases.len(), 21);
        for case in &cases {
            run(case);
        }
    }

    /// \[CT] `TestComputeErrMsg` L382-588: all 18 error cases (§8.2), full-text equality.
    #[test]
    fn upstream_test_compute_err_msg() {
        let cases = [
            // X1 [CT] L385 "invalid format for --traffic option"
            Case {
                name: "X1",
                existing: "[@latest 100]",
                traffic: &["@latest=100=latest"],
                want: Err("expecting the value format in value1=value2, given @latest=100=latest"),
                ..BASE
            },
            // X2 [CT] L391 "invalid format for --tag option"
            Case {
                name: "X2",
                existing: "[@latest 100]",
                tags: &["@latest="],
                want: Err("expecting the value format in value1=value2, given @latest="),
                ..BASE
            },
            // X3 [CT] L397 "repeatedly splitting traffic to @latest revision"
            Case {
                name: "X3",
                existing: "[@latest 100]",
                traffic: &["@latest=90,@latest=10"],
                want: Err("repetition of identifier @latest is not allowed, use only once with --traffic flag"),
                ..BASE
            },
            // X4 [CT] L403 "repeatedly tagging to @latest revision not allowed"
            Case {
                name: "X4",
                existing: "[@latest 100]",
                tags: &["@latest=latest,@latest=2"],
                want: Err("repetition of identifier @latest is not allowed, use only once with --tag flag"),
                ..BASE
            },
            // X5 [CT] L409 "repeatedly tagging to @latest revision not allowed, without key"
            Case {
                name: "X5",
                existing: "[@latest 100]",
                tags: &["latest,current"],
                want: Err("repetition of identifier @latest is not allowed, use only once with --tag flag"),
                ..BASE
            },
            // X6 [CT] L415 "overwriting tag not allowed, to @latest from other revision"
            Case {
                name: "X6",
                existing: "[@latest #latest 2, echo-v2 #stable 98]",
                tags: &["@latest=stable"],
                want: Err("refusing to overwrite existing tag in service, add flag '--untag stable' in command to untag it"),
                ..BASE
            },
            // X7 [CT] L421 "overwriting tag not allowed, to a revision from other revision"
            Case {
                name: "X7",
                existing: "[@latest #latest 2, echo-v2 #stable 98]",
                tags: &["echo-v2=latest"],
                want: Err("refusing to overwrite existing tag in service, add flag '--untag latest' in command to untag it"),
                ..BASE
            },
            // X8 [CT] L427 "overwriting tag of @latest not allowed, existing != requested"
            Case {
                name: "X8",
                existing: "[@latest #candidate 100]",
                tags: &["@latest=current"],
                want: Err("tag 'candidate' exists on latest ready revision of service, refusing to overwrite existing tag with 'current', add flag '--untag candidate' in command to untag it"),
                ..BASE
            },
            // X9 [CT] L433 "verify error for non integer values given to percent"
            Case {
                name: "X9",
                existing: "[@latest 100]",
                traffic: &["@latest=100p"],
                want: Err("error converting given 100p to integer value for traffic distribution"),
                ..BASE
            },
            // X10 [CT] L439 "verify error for traffic sum not equal to 100"
            Case {
                name: "X10",
                existing: "[@latest 100]",
                traffic: &["@latest=40,echo-v1=70"],
                want: Err("given traffic percents sum to 110, want <=100"),
                ..BASE
            },
            // X11 [CT] L445 "verify error for values out of range given to percent"
            Case {
                name: "X11",
                existing: "[@latest 100]",
                traffic: &["@latest=-100"],
                want: Err("invalid value for traffic percent -100, expected 0 <= percent <= 100"),
                ..BASE
            },
            // X12 [CT] L451 "repeatedly splitting traffic to the same revision" (two occurrences)
            Case {
                name: "X12",
                existing: "[@latest 100]",
                traffic: &["echo-v1=40", "echo-v1=60"],
                want: Err("repetition of revision reference echo-v1 is not allowed, use only once with --traffic flag"),
                ..BASE
            },
            // X13 [CT] L457 "untag single tag that does not exist"
            Case {
                name: "X13",
                existing: "[echo-v1 #latest 100]",
                untags: &["foo"],
                want: Err("tag(s) foo not present for any revisions of service serviceName"),
                ..BASE
            },
            // X14 [CT] L463 "untag multiple tags that do not exist"
            Case {
                name: "X14",
                existing: "[echo-v1 #latest 100]",
                untags: &["foo", "bar"],
                want: Err("tag(s) foo, bar not present for any revisions of service serviceName"),
                ..BASE
            },
            // X15 [CT] L469 "traffic split sum < 100 should have N-1 revisions specified"
            Case {
                name: "X15",
                existing: "[rev-00001 0, rev-00002 0, rev-00003 100]",
                traffic: &["rev-00001=10"],
                revs: REVS_3,
                want: Err("unable to allocate the remaining traffic: 90%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // X16 [CT] L497 "traffic split sum < 100 with @latest which mutates service should
            // specify N revs" (K=2 != N=3)
            Case {
                name: "X16",
                existing: "[rev-00001 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00001=10,@latest=20"],
                mutation: true,
                revs: REVS_3,
                want: Err("unable to allocate the remaining traffic: 70%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // X17 [CT] L526 "traffic split sum < 100 with @latest and mutates the service should
            // specify N revs" (the test passes mutation=false; K=3 != N-1=2)
            Case {
                name: "X17",
                existing: "[rev-00001 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00001=10,rev-00002=10,@latest=20"],
                revs: REVS_3,
                want: Err("unable to allocate the remaining traffic: 60%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // X18 [CT] L555 "traffic split sum < 100 error when remaining revision not found"
            // (rev-00001 is named through its hand-set tags annotation; rev-00002 is not listed,
            // which ends the search, quirk Q3)
            Case {
                name: "X18",
                existing: "[rev-00001 #rev-00003 0, rev-00002 0, @latest 100]",
                traffic: &["rev-00003=10,rev-00001=20"],
                revs: &[("rev-00001", "rev-00003"), ("rev-00003", "")],
                want: Err("unable to allocate the remaining traffic: 70%. Reason: cannot determine the missing revision"),
                ..BASE
            },
        ];
        assert_eq!(cases.len(), 18);
        for case in &cases {
            run(case);
        }
    }

    const E2E_REVS_12: &[(&str, &str)] = &[("rev1", ""), ("rev2", "")];
    const E2E_REVS_123: &[(&str, &str)] = &[("rev1", ""), ("rev2", ""), ("rev3", "")];

    /// \[E2E] `TestTrafficSplit` L77-606 (§8.3): kn's spec for each step, with status carrying
    /// real revision names and the LRR of the cluster at that point.
    #[test]
    fn upstream_e2e_traffic_split() {
        let cases = [
            // E2E1 [E2E] L86 "50:50"
            Case {
                name: "E2E1",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                tags: &["rev1=v1,rev2=v2"],
                traffic: &["v1=50,v2=50"],
                want: Ok("[rev1 #v1 50, rev2 #v2 50]"),
                ..BASE
            },
            // E2E2 [E2E] L111 "20:80"
            Case {
                name: "E2E2",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                traffic: &["rev1=20,rev2=80"],
                want: Ok("[rev1 20, rev2 80]"),
                ..BASE
            },
            // E2E3 [E2E] L140 "45:55 automatic traffic split", step 1: env + `--traffic 80`
            Case {
                name: "E2E3",
                existing: "[@latest 100]",
                status: Some("[@latest(00001) 100]"),
                lrr: "00001",
                revs: &[("00001", "")],
                traffic: &["80"],
                mutation: true,
                want: Ok("[@latest 80, 00001 20]"),
                ..BASE
            },
            // E2E4 [E2E] L145 same subtest, step 2: remainder 55 to 00002, the first status target
            Case {
                name: "E2E4",
                existing: "[@latest 80, 00001 20]",
                status: Some("[@latest(00002) 80, 00001 20]"),
                lrr: "00002",
                revs: &[("00001", ""), ("00002", "")],
                traffic: &["00001=45"],
                want: Ok("[00001 45, 00002 55]"),
                ..BASE
            },
            // E2E5 [E2E] L150 "45:55 automatic traffic split to new @latest and previous revision
            // after mutation"
            Case {
                name: "E2E5",
                existing: "[@latest 100]",
                status: Some("[@latest(00001) 100]"),
                lrr: "00001",
                revs: &[("00001", "")],
                traffic: &["@latest=45"],
                mutation: true,
                want: Ok("[@latest 45, 00001 55]"),
                ..BASE
            },
            // E2E6 [E2E] L168 "45:55 automatic traffic split to @latest after mutation"
            Case {
                name: "E2E6",
                existing: "[@latest 100]",
                status: Some("[@latest(00001) 100]"),
                lrr: "00001",
                revs: &[("00001", "")],
                traffic: &["00001=45"],
                mutation: true,
                want: Ok("[@latest 55, 00001 45]"),
                ..BASE
            },
            // E2E7 [E2E] L185 "automatic traffic split failure" (K=1 < N-1=2)
            Case {
                name: "E2E7",
                existing: "[@latest 70, 00001 10, 00002 20]",
                status: Some("[@latest(00003) 70, 00001 10, 00002 20]"),
                lrr: "00003",
                revs: &[("00001", ""), ("00002", ""), ("00003", "")],
                traffic: &["00001=50"],
                want: Err("unable to allocate the remaining traffic: 50%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // E2E8 [E2E] L203 "automatic traffic split failure with @latest" (mut; K=1 != N=2)
            Case {
                name: "E2E8",
                existing: "[@latest 20, 00001 80]",
                status: Some("[@latest(00002) 20, 00001 80]"),
                lrr: "00002",
                revs: &[("00001", ""), ("00002", "")],
                traffic: &["@latest=50"],
                mutation: true,
                want: Err("unable to allocate the remaining traffic: 50%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // E2E9 [E2E] L217 "TagCandidate"
            Case {
                name: "E2E9",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                tags: &["rev1=candidate"],
                want: Ok("[@latest 100, rev1 #candidate 0]"),
                ..BASE
            },
            // E2E10 [E2E] L238 "TagCandidate:2:98"
            Case {
                name: "E2E10",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                tags: &["rev1=candidate"],
                traffic: &["candidate=2%,@latest=98%"],
                want: Ok("[@latest 98, rev1 #candidate 2]"),
                ..BASE
            },
            // E2E11 [E2E] L261 "TagCurrent": rev1, untagged at 0%, is dropped
            Case {
                name: "E2E11",
                existing: "[@latest 100, rev1 #current 0, rev2 #candidate 0]",
                status: Some("[@latest(rev3) 100, rev1 #current 0, rev2 #candidate 0]"),
                lrr: "rev3",
                revs: E2E_REVS_123,
                untags: &["current,candidate"],
                tags: &["rev2=current"],
                want: Ok("[@latest 100, rev2 #current 0]"),
                ..BASE
            },
            // E2E12 [E2E] L294 "TagStagingLatest"
            Case {
                name: "E2E12",
                existing: "[@latest #testing 100]",
                status: Some("[@latest(rev1) #testing 100]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                untags: &["testing"],
                tags: &["@latest=staging"],
                want: Ok("[@latest #staging 100]"),
                ..BASE
            },
            // E2E13 [E2E] L315 "TagStagingNonLatest"
            Case {
                name: "E2E13",
                existing: "[@latest 100, rev1 #testing 0]",
                status: Some("[@latest(rev2) 100, rev1 #testing 0]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                untags: &["testing"],
                tags: &["rev1=staging"],
                want: Ok("[@latest 100, rev1 #staging 0]"),
                ..BASE
            },
            // E2E14 [E2E] L341 "RemoveTag"
            Case {
                name: "E2E14",
                existing: "[@latest 98, rev1 #old 2]",
                status: Some("[@latest(rev2) 98, rev1 #old 2]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                untags: &["old"],
                traffic: &["@latest=100"],
                want: Ok("[@latest 100]"),
                ..BASE
            },
            // E2E15 [E2E] L367 "TagStable:50:50"
            Case {
                name: "E2E15",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                tags: &["rev1=stable,rev1=current"],
                traffic: &["stable=50%,current=50%"],
                want: Ok("[rev1 #stable 50, rev1 #current 50]"),
                ..BASE
            },
            // E2E16 [E2E] L390 "RevertToLatest": no latest target existed, so one is appended
            Case {
                name: "E2E16",
                existing: "[rev1 100]",
                status: Some("[rev1 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                traffic: &["@latest=100"],
                want: Ok("[@latest 100]"),
                ..BASE
            },
            // E2E17 [E2E] L414 "TagLatestAsCurrent"
            Case {
                name: "E2E17",
                existing: "[@latest 100]",
                status: Some("[@latest(rev1) 100]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                tags: &["@latest=current"],
                want: Ok("[@latest #current 100]"),
                ..BASE
            },
            // E2E18 [E2E] L433 "TagLatestAsCurrentWithoutKey"
            Case {
                name: "E2E18",
                existing: "[@latest 100]",
                status: Some("[@latest(rev1) 100]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                tags: &["current"],
                want: Ok("[@latest #current 100]"),
                ..BASE
            },
            // E2E19 [E2E] L452 "TagMisspelledLatestAsCurrent": kn's spec uses `@ltest` as a
            // revision name; the server then rejects it (not our job here)
            Case {
                name: "E2E19",
                existing: "[@latest 100]",
                status: Some("[@latest(rev1) 100]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                tags: &["@ltest=current"],
                want: Ok("[@latest 100, @ltest #current 0]"),
                ..BASE
            },
            // E2E20 setup [E2E] L471-490 "UpdateTag:100:0", the command that builds its prior spec
            Case {
                name: "E2E20 setup",
                existing: "[@latest 100]",
                status: Some("[@latest(rev2) 100]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                tags: &["@latest=current,rev1=candidate"],
                traffic: &["current=90,candidate=10"],
                want: Ok("[@latest #current 90, rev1 #candidate 10]"),
                ..BASE
            },
            // E2E20 [E2E] L471 "UpdateTag:100:0": tagged `current` stays at 0%
            Case {
                name: "E2E20",
                existing: "[@latest #current 90, rev1 #candidate 10]",
                status: Some("[@latest(rev2) #current 90, rev1 #candidate 10]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                untags: &["candidate"],
                tags: &["rev1=testing"],
                traffic: &["testing=100"],
                want: Ok("[@latest #current 0, rev1 #testing 100]"),
                ..BASE
            },
            // E2E21 [E2E] L501 "TagReplace": a new target for rev2 although it is @latest
            Case {
                name: "E2E21",
                existing: "[@latest 100, rev1 #latest 0]",
                status: Some("[@latest(rev2) 100, rev1 #latest 0]"),
                lrr: "rev2",
                revs: E2E_REVS_12,
                untags: &["latest"],
                tags: &["rev1=old,rev2=latest"],
                want: Ok("[@latest 100, rev1 #old 0, rev2 #latest 0]"),
                ..BASE
            },
            // E2E22 [E2E] L533 "CreateWithTag": `service create --tag foo --revision-name rev1`
            Case {
                name: "E2E22",
                service: "svc",
                tags: &["foo"],
                mutation: true,
                command: Command::Create,
                want: Ok("[@latest #foo 100]"),
                ..BASE
            },
            // E2E23 [E2E] L551 "UntagNonExistentTag"
            Case {
                name: "E2E23",
                service: "svc",
                existing: "[@latest 100, rev1 #latest 0]",
                status: Some("[@latest(rev1) 100, rev1 #latest 0]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                untags: &["foo"],
                want: Err("tag(s) foo not present for any revisions of service svc"),
                ..BASE
            },
            // E2E24 [E2E] L578 "UntagNonExistentTagAndValidTag": only the missing tag is named
            Case {
                name: "E2E24",
                service: "svc",
                existing: "[@latest 100, rev1 #latest 0]",
                status: Some("[@latest(rev1) 100, rev1 #latest 0]"),
                lrr: "rev1",
                revs: &[("rev1", "")],
                untags: &["latest", "foo"],
                want: Err("tag(s) foo not present for any revisions of service svc"),
                ..BASE
            },
        ];
        for case in &cases {
            run(case);
        }
    }

    /// Other command-level and e2e vectors (§8.3, O1-O8). O4 (a revision-list error passed
    /// through) and O9 (flag registration) concern the caller, not `compute`.
    #[test]
    fn upstream_command_and_export_vectors() {
        let cases = [
            // O1 [CRT] L1088 TestServiceCreateTag: exactly one target, tagged foo
            Case {
                name: "O1",
                service: "foo",
                tags: &["foo"],
                command: Command::Create,
                want: Ok("[@latest #foo 100]"),
                ..BASE
            },
            // O2 [CRT] L1097 TestServiceCreateTagWithError: exact text
            Case {
                name: "O2",
                service: "foo",
                tags: &["foo,bar"],
                command: Command::Create,
                want: Err("repetition of identifier @latest is not allowed, use only once with --tag flag"),
                ..BASE
            },
            // O3 [UT] L1039 TestServiceUpdateTagDoesNotExist: empty service foo, `--untag foo`
            Case {
                name: "O3",
                service: "foo",
                untags: &["foo"],
                want: Err("tag(s) foo not present for any revisions of service foo"),
                ..BASE
            },
            // O5 e2e service_test.go L168-175: `service update untag --untag foo`
            Case {
                name: "O5",
                service: "untag",
                existing: "[@latest 100]",
                status: Some("[@latest(untag-00001) 100]"),
                lrr: "untag-00001",
                revs: &[("untag-00001", "")],
                untags: &["foo"],
                want: Err("tag(s) foo not present for any revisions of service untag"),
                ..BASE
            },
            // O6 [EXP] L94
            Case {
                name: "O6",
                existing: "[@latest 100]",
                status: Some("[@latest(hello-rev2) 100]"),
                lrr: "hello-rev2",
                revs: &[("hello-rev1", ""), ("hello-rev2", "")],
                tags: &["hello-rev1=candidate"],
                traffic: &["candidate=2%,@latest=98%"],
                want: Ok("[@latest 98, hello-rev1 #candidate 2]"),
                ..BASE
            },
            // O7 [EXP] L139: `--untag candidate`
            Case {
                name: "O7 untag",
                existing: "[@latest 98, hello-rev1 #candidate 2]",
                status: Some("[@latest(hello-rev2) 98, hello-rev1 #candidate 2]"),
                lrr: "hello-rev2",
                revs: &[("hello-rev1", ""), ("hello-rev2", "")],
                untags: &["candidate"],
                want: Ok("[@latest 98, hello-rev1 2]"),
                ..BASE
            },
            // O7 [EXP] L140: env + `--revision-name hello-rev3 --traffic ...` (sum 100, no
            // remainder rule; @latest reset to 0 and dropped)
            Case {
                name: "O7 split",
                existing: "[@latest 98, hello-rev1 2]",
                status: Some("[@latest(hello-rev2) 98, hello-rev1 2]"),
                lrr: "hello-rev2",
                revs: &[("hello-rev1", ""), ("hello-rev2", "")],
                traffic: &["hello-rev1=30,hello-rev2=30,hello-rev3=40"],
                mutation: true,
                want: Ok("[hello-rev1 30, hello-rev2 30, hello-rev3 40]"),
                ..BASE
            },
            // O8 [EXP] L198
            Case {
                name: "O8",
                existing: "[hello-rev1 30, hello-rev2 30, hello-rev3 40]",
                status: Some("[hello-rev1 30, hello-rev2 30, hello-rev3 40]"),
                lrr: "hello-rev3",
                revs: &[("hello-rev1", ""), ("hello-rev2", ""), ("hello-rev3", "")],
                traffic: &["hello-rev2=100"],
                want: Ok("[hello-rev2 100]"),
                ..BASE
            },
        ];
        for case in &cases {
            run(case);
        }
    }

    const D_REVS: &[(&str, &str)] = &[("rev-1", ""), ("rev-2", "")];

    /// §8.4 D1-D13 (derived from \[C], not in kn's tests), then further derived rows for the
    /// quirks and corners of §2-§5, each naming the lines of \[C] it follows from.
    #[test]
    fn derived_vectors() {
        let cases = [
            // D1 quirk Q1: the tag reference does not cover rev-1 in the remainder rule
            Case {
                name: "D1",
                existing: "[rev-1 #stable 50, rev-2 50]",
                lrr: "rev-2",
                revs: D_REVS,
                traffic: &["stable=60"],
                want: Ok("[rev-1 #stable 40]"),
                ..BASE
            },
            // D2 quirk Q2: the one-part form keeps its `%`
            Case {
                name: "D2",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["80%"],
                want: Err("error converting given 80% to integer value for traffic distribution"),
                ..BASE
            },
            // D3 Atoi accepts a leading `+`
            Case {
                name: "D3",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["@latest=+100"],
                want: Ok("[@latest 100]"),
                ..BASE
            },
            // D4 range check after parsing
            Case {
                name: "D4",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["@latest=101"],
                want: Err("invalid value for traffic percent 101, expected 0 <= percent <= 100"),
                ..BASE
            },
            // D5 no mutation: K=1 != N-1=0
            Case {
                name: "D5",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["@latest=50"],
                want: Err("unable to allocate the remaining traffic: 50%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // D6 mutation: the current latest (rev-1) takes the remainder as a named target
            Case {
                name: "D6",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["@latest=50"],
                mutation: true,
                want: Ok("[@latest 50, rev-1 50]"),
                ..BASE
            },
            // D7 one tag for two revisions in one `--tag` list
            Case {
                name: "D7",
                existing: "[rev-1 #stable 50, rev-2 50]",
                tags: &["rev-1=x,rev-2=x"],
                want: Err("refusing to overwrite existing tag in service, add flag '--untag x' in command to untag it"),
                ..BASE
            },
            // D8 the same tag twice in `--untag`
            Case {
                name: "D8",
                existing: "[rev-1 #stable 50, rev-2 50]",
                untags: &["stable,stable"],
                want: Err("tag(s) stable not present for any revisions of service serviceName"),
                ..BASE
            },
            // D9 §3.2: `--traffic` errors win over untag errors
            Case {
                name: "D9",
                existing: "[rev-1 #stable 50, rev-2 50]",
                untags: &["nope"],
                traffic: &["rev-1=abc"],
                want: Err("error converting given abc to integer value for traffic distribution"),
                ..BASE
            },
            // D10 untagged 0% targets are dropped even without `--traffic`
            Case {
                name: "D10",
                existing: "[@latest 100, rev-1 0]",
                status: Some("[@latest(rev-2) 100, rev-1 0]"),
                lrr: "rev-2",
                revs: D_REVS,
                tags: &["@latest=cur"],
                want: Ok("[@latest #cur 100]"),
                ..BASE
            },
            // D11 the remainder goes to rev-1, found through its revisionName
            Case {
                name: "D11",
                existing: "[rev-1 #stable 50, rev-2 50]",
                lrr: "rev-2",
                revs: D_REVS,
                traffic: &["rev-2=30"],
                want: Ok("[rev-1 #stable 70, rev-2 30]"),
                ..BASE
            },
            // D12 a typo of a tag becomes a new revision name (issue #445)
            Case {
                name: "D12",
                existing: "[@latest 100]",
                status: Some("[@latest(rev-1) 100]"),
                lrr: "rev-1",
                revs: &[("rev-1", "")],
                traffic: &["latest=10,@latest=90"],
                want: Ok("[@latest 90, latest 10]"),
                ..BASE
            },
            // D13 quirk Q5: `--traffic ""` resets everything; only tagged targets survive
            Case {
                name: "D13",
                existing: "[rev-1 #stable 50, rev-2 50]",
                revs: D_REVS,
                traffic: &[""],
                want: Ok("[rev-1 #stable 0]"),
                ..BASE
            },
            // Q7 [C] L86-93, L461-463: `--tag r=%` is the empty tag, "present" on any untagged target
            Case {
                name: "Q7 empty tag",
                existing: "[echo-v1 100]",
                tags: &["echo-v2=%"],
                want: Err("refusing to overwrite existing tag in service, add flag '--untag ' in command to untag it"),
                ..BASE
            },
            // §2.3 [C] L52: one trailing `%` is removed from a tag name too
            Case {
                name: "tag percent suffix",
                existing: "[@latest 100]",
                tags: &["rev-1=foo%"],
                want: Ok("[@latest 100, rev-1 #foo 0]"),
                ..BASE
            },
            // §2.3 [C] L52: only ONE `%` is removed, so `10%%` fails to parse as `10%`
            Case {
                name: "double percent",
                existing: "[@latest 100]",
                traffic: &["@latest=10%%"],
                want: Err("error converting given 10% to integer value for traffic distribution"),
                ..BASE
            },
            // §2.3 [C] L49-51: an empty left side
            Case {
                name: "empty left side",
                existing: "[@latest 100]",
                traffic: &["=5"],
                want: Err("expecting the value format in value1=value2, given =5"),
                ..BASE
            },
            // §2.3 [C] L49-51: an empty right side in `--traffic`
            Case {
                name: "empty right side",
                existing: "[@latest 100]",
                traffic: &["a="],
                want: Err("expecting the value format in value1=value2, given a="),
                ..BASE
            },
            // §2.4 [C] L353: leading zeros and `+` are fine
            Case {
                name: "atoi leading zero and plus",
                existing: "[@latest 100]",
                traffic: &["@latest=090,rev-1=+10"],
                want: Ok("[@latest 90, rev-1 10]"),
                ..BASE
            },
            // §2.2, §2.4 [C] L353: CSV does not trim, and Atoi rejects the space in `" 90"`
            Case {
                name: "atoi rejects a space",
                existing: "[@latest 100]",
                traffic: &["@latest=10,rev-1= 90"],
                want: Err("error converting given  90 to integer value for traffic distribution"),
                ..BASE
            },
            // §2.6 [C] L345-348: a one-part entry is `@latest` too, so it collides with `@latest=`
            Case {
                name: "bare percent is @latest",
                existing: "[@latest 100]",
                traffic: &["80,@latest=20"],
                want: Err("repetition of identifier @latest is not allowed, use only once with --traffic flag"),
                ..BASE
            },
            // §2.6 [C] L345-348: a tag reference repeated
            Case {
                name: "tag reference repeated",
                existing: "[rev-1 #stable 50, rev-2 50]",
                traffic: &["stable=10,stable=90"],
                want: Err("repetition of revision reference stable is not allowed, use only once with --traffic flag"),
                ..BASE
            },
            // §2.6 [C] L456-458: the same REV=TAG pair twice: the second does nothing
            Case {
                name: "same pair twice",
                existing: "[rev-1 #stable 50, rev-2 50]",
                tags: &["rev-2=x,rev-2=x"],
                want: Ok("[rev-1 #stable 50, rev-2 #x 50]"),
                ..BASE
            },
            // §3.2 [C] L414-426 before L428-466: untag errors win over tag conflicts
            Case {
                name: "untag before tag",
                existing: "[rev-1 #stable 50, rev-2 50]",
                untags: &["nope"],
                tags: &["rev-2=stable"],
                want: Err("tag(s) nope not present for any revisions of service serviceName"),
                ..BASE
            },
            // §3.1 [C] L414-426: untag runs first, so a tag can move in one command
            Case {
                name: "move a tag",
                existing: "[rev-1 #stable 50, rev-2 50]",
                untags: &["stable"],
                tags: &["rev-2=stable"],
                want: Ok("[rev-1 50, rev-2 #stable 50]"),
                ..BASE
            },
            // §2.5 [C] L494-497: a tag wins over a revision of the same name
            Case {
                name: "tag wins over revision name",
                existing: "[rev-1 #rev-2 50, rev-2 50]",
                traffic: &["rev-2=100"],
                want: Ok("[rev-1 #rev-2 100]"),
                ..BASE
            },
            // [C] L304-306 with L392-396: when status has no latest ready revision yet, naming
            // @latest makes "" a reference, and every revision without a tags annotation
            // then counts as named, so no one can take the remainder
            Case {
                name: "LRR empty with @latest",
                existing: "[@latest 60, rev-1 40]",
                status: Some("[@latest(rev-2) 60, rev-1 40]"),
                lrr: "",
                revs: D_REVS,
                traffic: &["@latest=70"],
                want: Err("unable to allocate the remaining traffic: 30%. Reason: cannot determine the missing revision"),
                ..BASE
            },
            // ... and the same command once status names rev-2: rev-1 takes the remainder
            Case {
                name: "LRR set with @latest",
                existing: "[@latest 60, rev-1 40]",
                status: Some("[@latest(rev-2) 60, rev-1 40]"),
                lrr: "rev-2",
                revs: D_REVS,
                traffic: &["@latest=70"],
                want: Ok("[@latest 70, rev-1 30]"),
                ..BASE
            },
            // quirk Q3 [C] L312-314: a status target whose revision is unknown stops the search
            // even though rev-2, further on, could take the remainder
            Case {
                name: "Q3 search stops",
                existing: "[gone 50, rev-2 40, rev-1 10]",
                revs: D_REVS,
                traffic: &["rev-1=10,rev-3=10"],
                want: Err("unable to allocate the remaining traffic: 80%. Reason: cannot determine the missing revision"),
                ..BASE
            },
            // quirk Q4 [C] L250, L284: N counts status targets, so a second tag on one
            // revision makes one more entry necessary
            Case {
                name: "Q4 targets not revisions",
                existing: "[rev-1 #a 50, rev-1 #b 0, rev-2 50]",
                revs: D_REVS,
                traffic: &["rev-2=30"],
                want: Err("unable to allocate the remaining traffic: 70%. Reason: incorrect number of revisions specified. Only 1 revision should be missing"),
                ..BASE
            },
            // [C] L474-475 ignore split errors: a remainder entry for a revision whose name
            // holds `=` re-splits to ("", 0), which lands on the first untagged target
            Case {
                name: "remainder name with =",
                existing: "[a=b 50, rev-2 50]",
                revs: &[("a=b", ""), ("rev-2", "")],
                traffic: &["rev-2=30"],
                want: Ok("[rev-2 30]"),
                ..BASE
            },
            // §9 (derived): create with a tag on a named revision
            Case {
                name: "create rev tag",
                tags: &["r1=foo"],
                command: Command::Create,
                want: Ok("[r1 #foo 0, @latest 100]"),
                ..BASE
            },
            // §9: create without tags sets no traffic (the server defaults it)
            Case {
                name: "create no tags",
                command: Command::Create,
                want: Ok("[]"),
                ..BASE
            },
            // §9 [CR] L171: create has no `--untag`; cobra rejects it
            Case {
                name: "create untag",
                tags: &["foo"],
                untags: &["bar"],
                command: Command::Create,
                want: Err("unknown flag: --untag"),
                ..BASE
            },
            // §9 [CR] L171: nor `--traffic`, even with an empty value
            Case {
                name: "create traffic",
                traffic: &[""],
                command: Command::Create,
                want: Err("unknown flag: --traffic"),
                ..BASE
            },
        ];
        for case in &cases {
            run(case);
        }
    }

    /// §11: spec targets without `percent`/`latestRevision` are read as the server defaults
    /// them, and come back with both fields set.
    #[test]
    fn nil_fields_read_as_defaulted() {
        let service = ServiceState {
            name: "svc".into(),
            spec_traffic: vec![
                TrafficTarget {
                    percent: Some(100),
                    ..Default::default()
                },
                TrafficTarget {
                    revision_name: "rev-1".into(),
                    tag: "old".into(),
                    ..Default::default()
                },
                TrafficTarget {
                    revision_name: "rev-0".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let flags = TrafficFlags::from_occurrences(&[], &strings(&["cur"]), &[]).expect("flags");
        let got = compute(&service, &flags, &[], false, Command::Update).expect("computes");
        assert_eq!(
            got,
            vec![
                TrafficTarget::latest(100).with_tag("cur"),
                TrafficTarget::revision("rev-1", 0).with_tag("old"),
            ]
        );
    }

    /// Configuration names and URLs of existing targets pass through untouched.
    #[test]
    fn other_fields_pass_through() {
        let existing = TrafficTarget {
            configuration_name: "cfg".into(),
            url: Some("http://stable-svc.ns.example.com".into()),
            ..TrafficTarget::revision("rev-1", 100).with_tag("stable")
        };
        let service = ServiceState {
            name: "svc".into(),
            spec_traffic: vec![existing.clone()],
            status_traffic: vec![existing.clone()],
            ..Default::default()
        };
        let flags =
            TrafficFlags::from_occurrences(&strings(&["stable=100"]), &[], &[]).expect("flags");
        let got = compute(&service, &flags, &[], false, Command::Update).expect("computes");
        assert_eq!(got, vec![existing]);
    }

    // --- CSV flag parsing (§2.2) -------------------------------------------------------------

    #[test]
    fn csv_record_fields() {
        // (value, fields)
        let cases: &[(&str, &[&str])] = &[
            // two fields
            ("a=x,b=y", &["a=x", "b=y"]),
            // pflag: "" adds nothing
            ("", &[]),
            // no trimming: the space stays
            ("a=10, b=90", &["a=10", " b=90"]),
            // a quoted field may hold a comma
            ("\"a,b\",c", &["a,b", "c"]),
            // `""` inside quotes is one quote
            ("\"say \"\"hi\"\"\"", &["say \"hi\""]),
            // empty fields are kept
            ("a,,b", &["a", "", "b"]),
            ("a,", &["a", ""]),
            (",", &["", ""]),
            ("\"\"", &[""]),
            // a quoted field may span lines; \r\n becomes \n
            ("\"x\r\ny\",z", &["x\ny", "z"]),
            // only the first record counts
            ("a\nb", &["a"]),
            // blank lines before it are skipped
            ("\n\r\na,b", &["a", "b"]),
            // line ends are not part of the field
            ("a\r\n", &["a"]),
            ("a\r", &["a"]),
            // a lone \r inside a line is data
            ("a\rb", &["a\rb"]),
            // non-ASCII passes through
            ("rév=10,ß", &["rév=10", "ß"]),
        ];
        for (value, want) in cases {
            let got = read_csv_record(value);
            assert_eq!(got, Ok(strings(want)), "value {value:?}");
        }
    }

    #[test]
    fn csv_record_errors_match_go() {
        // (value, Go's error text)
        let cases = [
            // a bare quote in an unquoted field; column is 1-based bytes
            ("a\"b", "parse error on line 1, column 2: bare \" in non-quoted-field"),
            ("x,a\"b", "parse error on line 1, column 4: bare \" in non-quoted-field"),
            // text after a closing quote
            ("\"a\"b", "parse error on line 1, column 3: extraneous or missing \" in quoted-field"),
            // an unclosed quote
            ("\"abc", "parse error on line 1, column 5: extraneous or missing \" in quoted-field"),
            // an unclosed quote over two lines
            (
                "\"a\nb",
                "record on line 1; parse error on line 2, column 2: extraneous or missing \" in quoted-field",
            ),
            // only line breaks: no record at all
            ("\n", "EOF"),
            ("\r\n\r", "EOF"),
        ];
        for (value, want) in cases {
            let got = read_csv_record(value).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "value {value:?}");
        }
    }

    #[test]
    fn flag_occurrences_concatenate() {
        let joined = TrafficFlags::from_occurrences(&[], &strings(&["a=x,b=y"]), &[]);
        let repeated = TrafficFlags::from_occurrences(&[], &strings(&["a=x", "b=y"]), &[]);
        assert_eq!(joined, repeated);
        assert_eq!(
            joined.map(|f| f.tags),
            Ok(strings(&["a=x", "b=y"])),
            "both forms give two entries"
        );

        let flags = TrafficFlags::from_occurrences(
            &strings(&["\"a=10\",\" b=90\"", "c=0"]),
            &[],
            &strings(&["u1,u2", "u3"]),
        )
        .expect("valid");
        assert_eq!(flags.traffic, strings(&["a=10", " b=90", "c=0"]));
        assert_eq!(flags.untags, strings(&["u1", "u2", "u3"]));
        assert!(flags.traffic_changed);
    }

    #[test]
    fn empty_traffic_value_counts_as_changed() {
        let given = TrafficFlags::from_occurrences(&strings(&[""]), &[], &[]).expect("valid");
        assert_eq!(given.traffic, Vec::<String>::new());
        assert!(given.traffic_changed);
        let absent = TrafficFlags::from_occurrences(&[], &strings(&["t"]), &[]).expect("valid");
        assert!(!absent.traffic_changed);
    }

    #[test]
    fn flag_parse_errors_read_like_pflag() {
        // (traffic, tags, untags) occurrences, then the message
        type Row = (Occurrences, Occurrences, Occurrences, &'static str);
        let cases: [Row; 4] = [
            (
                &["a\"b=10"],
                &[],
                &[],
                "invalid argument \"a\\\"b=10\" for \"--traffic\" flag: parse error on line 1, column 2: bare \" in non-quoted-field",
            ),
            (
                &[],
                &["ok", "\"x"],
                &[],
                "invalid argument \"\\\"x\" for \"--tag\" flag: parse error on line 1, column 3: extraneous or missing \" in quoted-field",
            ),
            (&[], &[], &["\n"], "invalid argument \"\\n\" for \"--untag\" flag: EOF"),
            // the first bad `--traffic` occurrence is reported before any `--tag` one
            (
                &["ok=1", "b\""],
                &["\"x"],
                &[],
                "invalid argument \"b\\\"\" for \"--traffic\" flag: parse error on line 1, column 2: bare \" in non-quoted-field",
            ),
        ];
        for (traffic, tags, untags, want) in cases {
            let got =
                TrafficFlags::from_occurrences(&strings(traffic), &strings(tags), &strings(untags))
                    .map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()));
        }
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        let cases = [
            ("plain", "\"plain\""),
            ("a\"b\\c", "\"a\\\"b\\\\c\""),
            ("\t\r\n\u{7}\u{0}\u{7f}", "\"\\t\\r\\n\\a\\x00\\x7f\""),
            ("é ß", "\"é ß\""),
            ("\u{a0}\u{200b}", "\"\\u00a0\\u200b\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "input {input:?}");
        }
    }

    // --- Properties --------------------------------------------------------------------------

    /// A spec target for the property: a named revision from `rev-0..rev-7` (or a nameless
    /// latest target), tagged from `t0..t3` or not. Tags never equal revision names, so every
    /// `--traffic` reference below resolves by name.
    fn arb_spec_target() -> impl Strategy<Value = TrafficTarget> {
        (
            prop::option::of(0usize..8),
            prop::option::of(0usize..4),
            0i64..=100,
        )
            .prop_map(|(revision, tag, percent)| {
                let target = match revision {
                    Some(r) => TrafficTarget::revision(&format!("rev-{r}"), percent),
                    None => TrafficTarget::latest(percent),
                };
                target.with_tag(&tag.map_or(String::new(), |t| format!("t{t}")))
            })
    }

    /// Distinct revision names with percents summing to exactly 100.
    fn arb_full_split() -> impl Strategy<Value = Vec<(String, i64)>> {
        prop::collection::vec(0i64..=100, 0..6)
            .prop_flat_map(|mut cuts| {
                cuts.sort_unstable();
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(100);
                let percents: Vec<i64> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
                let names: Vec<String> = (0..10).map(|i| format!("rev-{i}")).collect();
                let count = percents.len();
                (
                    Just(percents),
                    prop::sample::subsequence(names, count).prop_shuffle(),
                )
            })
            .prop_map(|(percents, names)| names.into_iter().zip(percents).collect())
    }

    proptest! {
        /// A full split over distinct revision names is applied as given: the result sums to
        /// 100, every named share is there, and no untagged 0% target remains.
        #[test]
        fn full_split_sums_to_100_without_null_targets(
            spec in prop::collection::vec(arb_spec_target(), 0..6),
            split in arb_full_split(),
            mutation in any::<bool>(),
            one_occurrence in any::<bool>(),
        ) {
            let entries: Vec<String> =
                split.iter().map(|(name, pct)| format!("{name}={pct}")).collect();
            let occurrences = if one_occurrence { vec![entries.join(",")] } else { entries };
            let flags = TrafficFlags::from_occurrences(&occurrences, &[], &[]).expect("valid CSV");
            let service = ServiceState {
                name: "svc".into(),
                spec_traffic: spec.clone(),
                status_traffic: spec,
                latest_ready_revision: "rev-0".into(),
            };
            let got = compute(&service, &flags, &[], mutation, Command::Update).expect("sum is 100");
            prop_assert_eq!(got.iter().map(TrafficTarget::percent_or_zero).sum::<i64>(), 100);
            prop_assert!(got.iter().all(|t| !t.tag.is_empty() || t.percent_or_zero() != 0));
            for (name, pct) in split.iter().filter(|(_, pct)| *pct > 0) {
                prop_assert!(
                    got.iter().any(|t| &t.revision_name == name && t.percent == Some(*pct)),
                    "{} should carry {}", name, pct
                );
            }
        }

        /// No input makes flag parsing or `compute` panic.
        #[test]
        fn never_panics(
            traffic in prop::collection::vec("[a-c@=%,\" \n0-9+-]{0,10}", 0..4),
            tags in prop::collection::vec("[a-c@=%,\"0-9]{0,8}", 0..3),
            untags in prop::collection::vec("[a-c,]{0,4}", 0..3),
            spec in prop::collection::vec(arb_spec_target(), 0..5),
            revs in prop::collection::vec("rev-[0-9]|t[0-3]|", 0..4),
            mutation in any::<bool>(),
            create in any::<bool>(),
        ) {
            if let Ok(flags) = TrafficFlags::from_occurrences(&traffic, &tags, &untags) {
                let service = ServiceState {
                    name: "svc".into(),
                    spec_traffic: spec.clone(),
                    status_traffic: spec,
                    latest_ready_revision: String::new(),
                };
                let revisions: Vec<RevisionInfo> = revs
                    .iter()
                    .map(|name| RevisionInfo { name: name.clone(), tags_annotation: String::new() })
                    .collect();
                let command = if create { Command::Create } else { Command::Update };
                let _ = compute(&service, &flags, &revisions, mutation, command);
            }
        }

        /// Quoting each field as Go's csv writer would, then parsing, gives the fields back.
        #[test]
        fn csv_quoted_round_trip(fields in prop::collection::vec("[a-c=%, \"\n]{0,5}", 1..5)) {
            let value: Vec<String> =
                fields.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
            prop_assert_eq!(read_csv_record(&value.join(",")), Ok(fields));
        }

        /// Plain fields (no quote, comma or line break) joined by commas split back apart.
        #[test]
        fn csv_plain_round_trip(fields in prop::collection::vec("[a-c=% @0-9]{0,5}", 1..5)) {
            let value = fields.join(",");
            prop_assume!(!value.is_empty());
            prop_assert_eq!(read_csv_record(&value), Ok(fields));
        }
    }
}
