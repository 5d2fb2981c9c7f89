//! `FieldError`: Knative's validation error, a port of knative.dev/pkg `apis/field_error.go`.
//!
//! Owns: the error value every Knative validation rule returns, the path bookkeeping
//! (`via_field`, `via_index`, ...), combination (`also`) and the exact text of Go's `Error()`
//! (our `Display`), which users compare byte for byte with `kubectl` output.
//!
//! Must not: know any Knative rule (those live in `validation`), panic, or do I/O.
//!
//! Go's `*FieldError` is `nil` when there is no error. Here that is `Option<FieldError>`, and the
//! [`FieldErrorExt`] trait gives `Option<FieldError>` the same nil-tolerant methods Go has
//! (`errs = errs.also(x.via_index(i))`). One deliberate difference: Go can hold a non-nil but
//! empty error (`&FieldError{}`); the `Option` methods turn such a value into `None`, so `Some`
//! always means "at least one diagnostic".
//!
//! Invariants mirrored from upstream:
//! - `Display` flattens the tree, merges diagnostics with the same (level, message, details) key,
//!   sorts each merged path list, and sorts the diagnostics by message, then details, then level
//!   (byte order) (`field_error.go` `Error`, `merge`).
//! - Path flattening glues index parts onto the part before them: `traffic` + `[0]` + `tag`
//!   becomes `traffic[0].tag` (`flatten`).

use std::collections::BTreeMap;
use std::fmt;

/// `apis.CurrentField`: the path to pass when the problem is with the current field itself.
pub const CURRENT_FIELD: &str = "";

/// `apis.DiagnosticLevel`: blocking error or non-blocking warning. `Error` sorts first, as Go's
/// iota values do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `apis.ErrorLevel` (the zero value, so the default).
    #[default]
    Error,
    /// `apis.WarningLevel`.
    Warning,
}

impl fmt::Display for Level {
    // DiagnosticLevel.String(); used in the merge key, so the spelling matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::Error => f.write_str("Error"),
            Level::Warning => f.write_str("Warning"),
        }
    }
}

/// One validation diagnostic, possibly carrying further diagnostics collected with `also`.
///
/// Methods never mutate: like Go's, each returns a new value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldError {
    /// The main diagnostic message. An error whose message is empty prints nothing itself
    /// (Go's `Normalized` skips it) but still carries its nested errors.
    pub message: String,
    /// The paths this diagnostic is about, relative to where it was created.
    pub paths: Vec<String>,
    /// Severity.
    pub level: Level,
    /// Optional longer payload, printed on the line(s) after the message.
    pub details: String,
    /// Diagnostics gathered by `also`, in the order they were added.
    errors: Vec<FieldError>,
}

impl FieldError {
    /// A diagnostic with a message and paths (a literal `&apis.FieldError{...}` upstream).
    pub fn new(message: impl Into<String>, paths: &[&str]) -> Self {
        FieldError {
            message: message.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Builder: sets the details (`FieldError.Details`).
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// `isEmpty`: no message, no details, no paths and nothing nested.
    pub fn is_empty(&self) -> bool {
        self.message.is_empty()
            && self.details.is_empty()
            && self.errors.is_empty()
            && self.paths.is_empty()
    }

    /// `ViaField(prefix...)` with one prefix: every path, nested ones included, is now reached
    /// through `field`.
    pub fn via_field(&self, field: &str) -> FieldError {
        self.via_fields(&[field])
    }

    /// `ViaField(prefix...)` with several prefix parts, outermost first
    /// (`via_fields(&["baz", "ugh"])` turns `foo` into `baz.ugh.foo`).
    pub fn via_fields(&self, prefix: &[&str]) -> FieldError {
        // field_error.go ViaField: copy message, level and details; rewrite paths; nested
        // errors follow through Also, so they keep their own identity.
        let mut new_err = FieldError {
            message: self.message.clone(),
            level: self.level,
            details: self.details.clone(),
            paths: self
                .paths
                .iter()
                .map(|old| {
                    let mut parts: Vec<&str> = prefix.to_vec();
                    parts.push(old);
                    flatten(&parts)
                })
                .collect(),
            errors: Vec::new(),
        };
        for e in &self.errors {
            new_err = new_err.also(e.via_fields(prefix));
        }
        new_err
    }

    /// `ViaIndex(i)`: attaches `[i]`, which the next `via_field` glues onto its field.
    pub fn via_index(&self, index: usize) -> FieldError {
        self.via_field(&as_index(index))
    }

    /// `ViaFieldIndex(field, i)`: short for `.via_index(i).via_field(field)`.
    pub fn via_field_index(&self, field: &str, index: usize) -> FieldError {
        self.via_index(index).via_field(field)
    }

    /// `ViaKey(key)`: attaches `[key]`, which the next `via_field` glues onto its field.
    pub fn via_key(&self, key: &str) -> FieldError {
        self.via_field(&as_key(key))
    }

    /// `ViaFieldKey(field, key)`: short for `.via_key(key).via_field(field)`.
    pub fn via_field_key(&self, field: &str, key: &str) -> FieldError {
        self.via_key(key).via_field(field)
    }

    /// `At(level)`: the same diagnostics, all at `level`.
    pub fn at(&self, level: Level) -> FieldError {
        let mut new_err = FieldError {
            message: self.message.clone(),
            level,
            details: self.details.clone(),
            paths: self.paths.clone(),
            errors: Vec::new(),
        };
        for e in &self.errors {
            new_err = new_err.also(e.at(level));
        }
        new_err
    }

    /// `Filter(level)`: only the diagnostics at `level`, or `None` when there are none.
    pub fn filter(&self, level: Level) -> Option<FieldError> {
        let mut new_err: Option<FieldError> = (self.level == level).then(|| FieldError {
            message: self.message.clone(),
            level: self.level,
            details: self.details.clone(),
            paths: self.paths.clone(),
            errors: Vec::new(),
        });
        for e in &self.errors {
            new_err = new_err.also(e.filter(level));
        }
        new_err.filter(|e| !e.is_empty())
    }

    /// `Also(errs...)` with one argument: `self` plus `other` as a nested diagnostic. An empty or
    /// absent `other` returns `self` unchanged, as upstream does.
    pub fn also(self, other: impl Into<Option<FieldError>>) -> FieldError {
        match other.into() {
            Some(other) if !other.is_empty() => {
                // Go deep-copies a non-empty receiver and nests the argument under it; an
                // empty receiver is replaced by a fresh container.
                let mut new_err = if self.is_empty() {
                    FieldError::default()
                } else {
                    self
                };
                new_err.errors.push(other);
                new_err
            }
            _ => self,
        }
    }

    /// The diagnostics exactly as `Error()` prints them: merged on (level, message, details)
    /// with de-duplicated, sorted paths, sorted by message. Each leaf's `Display` is one entry
    /// of the joined `Error()` text, so callers can attach a source position to each.
    pub fn merged(&self) -> Vec<FieldError> {
        merge(self.normalized())
    }

    /// `Normalized()`: every diagnostic with a message, depth first, as flat leaves.
    pub fn normalized(&self) -> Vec<FieldError> {
        let mut out = Vec::with_capacity(self.errors.len() + 1);
        self.collect_normalized(&mut out);
        out
    }

    fn collect_normalized(&self, out: &mut Vec<FieldError>) {
        if !self.message.is_empty() {
            out.push(FieldError {
                message: self.message.clone(),
                level: self.level,
                paths: self.paths.clone(),
                details: self.details.clone(),
                errors: Vec::new(),
            });
        }
        for e in &self.errors {
            e.collect_normalized(out);
        }
    }
}

/// `Error()`: the merged, sorted diagnostics, one `"<message>: <paths>"` (plus `"\n<details>"`)
/// per diagnostic, joined with `"\n"`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in merge(self.normalized()).iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {}", e.message, e.paths.join(", "))?;
            if !e.details.is_empty() {
                write!(f, "\n{}", e.details)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// Go's nil-receiver methods, for `Option<FieldError>` (`None` is Go's `nil`).
///
/// All results are `None` when nothing is left to report.
pub trait FieldErrorExt {
    /// `(*FieldError)(nil).Also(other)`: collects `other` into `self`.
    fn also(self, other: impl Into<Option<FieldError>>) -> Option<FieldError>;
    /// `ViaField(field)`.
    fn via_field(self, field: &str) -> Option<FieldError>;
    /// `ViaField(prefix...)`.
    fn via_fields(self, prefix: &[&str]) -> Option<FieldError>;
    /// `ViaIndex(i)`.
    fn via_index(self, index: usize) -> Option<FieldError>;
    /// `ViaFieldIndex(field, i)`.
    fn via_field_index(self, field: &str, index: usize) -> Option<FieldError>;
    /// `ViaKey(key)`.
    fn via_key(self, key: &str) -> Option<FieldError>;
    /// `ViaFieldKey(field, key)`.
    fn via_field_key(self, field: &str, key: &str) -> Option<FieldError>;
    /// `Error()`, which is `""` for nil.
    fn error_string(&self) -> String;
}

impl FieldErrorExt for Option<FieldError> {
    fn also(self, other: impl Into<Option<FieldError>>) -> Option<FieldError> {
        let other = other.into().filter(|o| !o.is_empty());
        let combined = match (self, other) {
            (Some(this), other) => this.also(other),
            (None, Some(other)) => FieldError::default().also(other),
            (None, None) => return None,
        };
        (!combined.is_empty()).then_some(combined)
    }

    fn via_field(self, field: &str) -> Option<FieldError> {
        self.map(|e| e.via_field(field)).filter(|e| !e.is_empty())
    }

    fn via_fields(self, prefix: &[&str]) -> Option<FieldError> {
        self.map(|e| e.via_fields(prefix)).filter(|e| !e.is_empty())
    }

    fn via_index(self, index: usize) -> Option<FieldError> {
        self.map(|e| e.via_index(index)).filter(|e| !e.is_empty())
    }

    fn via_field_index(self, field: &str, index: usize) -> Option<FieldError> {
        self.map(|e| e.via_field_index(field, index))
            .filter(|e| !e.is_empty())
    }

    fn via_key(self, key: &str) -> Option<FieldError> {
        self.map(|e| e.via_key(key)).filter(|e| !e.is_empty())
    }

    fn via_field_key(self, field: &str, key: &str) -> Option<FieldError> {
        self.map(|e| e.via_field_key(field, key))
            .filter(|e| !e.is_empty())
    }

    fn error_string(&self) -> String {
        self.as_ref().map(|e| e.to_string()).unwrap_or_default()
    }
}

// --- constructors (field_error.go "Public helpers") ---

/// `ErrMissingField(paths...)`: `missing field(s)`.
pub fn err_missing_field(paths: &[&str]) -> FieldError {
    FieldError::new("missing field(s)", paths)
}

/// `ErrDisallowedFields(paths...)`: `must not set the field(s)`.
pub fn err_disallowed_fields(paths: &[&str]) -> FieldError {
    FieldError::new("must not set the field(s)", paths)
}

/// `ErrDisallowedUpdateDeprecatedFields(paths...)`.
pub fn err_disallowed_update_deprecated_fields(paths: &[&str]) -> FieldError {
    FieldError::new("must not update deprecated field(s)", paths)
}

/// `ErrInvalidArrayValue(value, field, index)`: `invalid value: <value>` at `field[index]`.
pub fn err_invalid_array_value(value: impl fmt::Display, field: &str, index: usize) -> FieldError {
    err_invalid_value(value, CURRENT_FIELD, &[]).via_field_index(field, index)
}

/// `ErrInvalidValue(value, path, details...)`: `invalid value: <value>`; details are joined
/// with `", "`. `value` is printed as Go's `fmt.Sprint` would for strings and integers.
pub fn err_invalid_value(value: impl fmt::Display, path: &str, details: &[&str]) -> FieldError {
    FieldError::new(format!("invalid value: {value}"), &[path]).with_details(details.join(", "))
}

/// `ErrGeneric(diagnostic, paths...)`: a free-form message.
pub fn err_generic(diagnostic: impl Into<String>, paths: &[&str]) -> FieldError {
    FieldError::new(diagnostic, paths)
}

/// `ErrMissingOneOf(paths...)`: `expected exactly one, got neither`.
pub fn err_missing_one_of(paths: &[&str]) -> FieldError {
    FieldError::new("expected exactly one, got neither", paths)
}

/// `ErrMultipleOneOf(paths...)`: `expected exactly one, got both`.
pub fn err_multiple_one_of(paths: &[&str]) -> FieldError {
    FieldError::new("expected exactly one, got both", paths)
}

/// `ErrInvalidKeyName(key, path, details...)`: `invalid key name "<key>"` (Go `%q`), details
/// joined with `", "`.
pub fn err_invalid_key_name(key: &str, path: &str, details: &[&str]) -> FieldError {
    FieldError::new(format!("invalid key name {}", go_quote(key)), &[path])
        .with_details(details.join(", "))
}

/// `ErrOutOfBoundsValue(value, lower, upper, path)`: `expected <lower> <= <value> <= <upper>`.
pub fn err_out_of_bounds_value(
    value: impl fmt::Display,
    lower: impl fmt::Display,
    upper: impl fmt::Display,
    path: &str,
) -> FieldError {
    FieldError::new(format!("expected {lower} <= {value} <= {upper}"), &[path])
}

// --- helpers ---

fn as_index(index: usize) -> String {
    format!("[{index}]")
}

fn as_key(key: &str) -> String {
    format!("[{key}]")
}

fn is_index(part: &str) -> bool {
    part.starts_with('[') && part.ends_with(']')
}

/// `flatten`: joins path parts with `.`, splitting each part on `.` first, dropping empty parts
/// (`CurrentField`) and gluing `[..]` parts onto the part before them.
pub fn flatten(path: &[&str]) -> String {
    let mut new_path: Vec<String> = Vec::new();
    for part in path {
        for p in part.split('.') {
            if p == CURRENT_FIELD {
                continue;
            }
            match new_path.last_mut() {
                Some(last) if is_index(p) => last.push_str(p),
                _ => new_path.push(p.to_string()),
            }
        }
    }
    new_path.join(".")
}

/// `mergePaths`: `a` as it is (its own duplicates stay, as upstream), then each path of `b` not
/// already present.
fn merge_paths(a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = a.to_vec();
    for p in b {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// `merge`: diagnostics with the same key have their paths merged; each path list is sorted;
/// the diagnostics are sorted by message, details, level.
fn merge(errs: Vec<FieldError>) -> Vec<FieldError> {
    // Upstream keys a Go map by `fmt.Sprintf("%s-%s-%s", level, message, details)`. The key
    // string is reproduced exactly, dash ambiguity included (message "a-b" with details "c"
    // collides with message "a" and details "b-c"); the first error seen keeps its text.
    let mut by_key: BTreeMap<String, FieldError> = BTreeMap::new();
    for e in errs {
        let key = format!("{}-{}-{}", e.level, e.message, e.details);
        match by_key.get_mut(&key) {
            Some(existing) => existing.paths = merge_paths(&existing.paths, &e.paths),
            None => {
                by_key.insert(key, e);
            }
        }
    }
    let mut out: Vec<FieldError> = by_key
        .into_values()
        .map(|mut e| {
            e.paths.sort();
            e
        })
        .collect();
    out.sort_by(|a, b| {
        a.message
            .cmp(&b.message)
            .then_with(|| a.details.cmp(&b.details))
            .then_with(|| a.level.cmp(&b.level))
    });
    out
}

/// Go's `strconv.Quote` (what `%q` prints for a string): double quotes, `\"` and `\\`, the C
/// escapes `\a \b \f \n \r \t \v`, `\xNN` for other ASCII control bytes, `\uNNNN` /
/// `\UNNNNNNNN` for non-printable non-ASCII characters. Shared by validation messages and kn's
/// flag errors.
///
/// Go decides "printable" from Unicode tables (`unicode.IsPrint`), which std Rust lacks. This is
/// exact for ASCII, line separators, Unicode spaces and the common format characters; other
/// non-printable code points (private use, unassigned) are printed as they are, where Go would
/// escape them. No Knative name can contain them (names are ASCII by validation).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c != ' '
                && (c.is_control()
                    || c.is_whitespace()
                    || matches!(
                        c,
                        '\u{ad}'
                            | '\u{200b}'..='\u{200f}'
                            | '\u{202a}'..='\u{202e}'
                            | '\u{2060}'..='\u{2064}'
                            | '\u{feff}'
                    )) =>
            {
                if (c as u32) < 0x1_0000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (subtest, error, prefix groups, want Error(); "" = nil).
    type PrefixRow<'a> = (&'a str, Option<FieldError>, Vec<Vec<&'a str>>, &'a str);
    /// (subtest, error, errors to add with `also`, prefix groups, want Error()).
    type AlsoRow<'a, E> = (&'a str, E, Vec<FieldError>, Vec<Vec<&'a str>>, &'a str);

    fn fe(message: &str, paths: &[&str]) -> FieldError {
        FieldError::new(message, paths)
    }

    /// Applies one prefix step of the upstream test harness: plain names go through
    /// `ViaField`, `INDEX:n`, `KEY:k`, `FIELDINDEX:f,n`, `FIELDKEY:f,k` through the helpers.
    fn apply(err: Option<FieldError>, step: &str) -> Option<FieldError> {
        if let Some(i) = step.strip_prefix("INDEX:") {
            err.via_index(i.parse().expect("test index"))
        } else if let Some(fi) = step.strip_prefix("FIELDINDEX:") {
            let (f, i) = fi.split_once(',').expect("test field,index");
            err.via_field_index(f, i.parse().expect("test index"))
        } else if let Some(k) = step.strip_prefix("KEY:") {
            err.via_key(k)
        } else if let Some(fk) = step.strip_prefix("FIELDKEY:") {
            let (f, k) = fk.split_once(',').expect("test field,key");
            err.via_field_key(f, k)
        } else {
            err.via_field(step)
        }
    }

    #[test]
    fn test_field_error() {
        // TestFieldError (field_error_test.go): (name, error, ViaField prefix groups, want).
        // The CheckDisallowedFields rows need kmp reflection and are not ported.
        let cases: Vec<PrefixRow> = vec![
            (
                "simple single no propagation",
                Some(fe("hear me roar", &["foo.bar"])),
                vec![],
                "hear me roar: foo.bar",
            ),
            (
                "simple single propagation",
                Some(fe(r#"invalid value "blah""#, &["foo"])),
                vec![vec!["bar"], vec!["baz", "ugh"], vec!["hoola"]],
                r#"invalid value "blah": hoola.baz.ugh.bar.foo"#,
            ),
            (
                "simple multiple propagation",
                Some(fe("invalid field(s)", &["foo", "bar"])),
                vec![vec!["baz", "ugh"]],
                "invalid field(s): baz.ugh.bar, baz.ugh.foo",
            ),
            (
                "multiple propagation with details",
                Some(
                    fe("invalid field(s)", &["foo", "bar"])
                        .with_details("I am a long\nlong\nloooong\nBody."),
                ),
                vec![vec!["baz", "ugh"]],
                "invalid field(s): baz.ugh.bar, baz.ugh.foo\nI am a long\nlong\nloooong\nBody.",
            ),
            (
                "single propagation, empty start",
                Some(fe("invalid field(s)", &[CURRENT_FIELD])),
                vec![vec!["baz", "ugh"]],
                "invalid field(s): baz.ugh",
            ),
            (
                "single propagation, no paths",
                Some(fe("invalid field(s)", &[])),
                vec![vec!["baz", "ugh"]],
                "invalid field(s): ",
            ),
            ("nil propagation", None, vec![vec!["baz", "ugh"]], ""),
            (
                "missing field propagation",
                Some(err_missing_field(&["foo", "bar"])),
                vec![vec!["baz"]],
                "missing field(s): baz.bar, baz.foo",
            ),
            (
                "missing disallowed propagation",
                Some(err_disallowed_fields(&["foo", "bar"])),
                vec![vec!["baz"]],
                "must not set the field(s): baz.bar, baz.foo",
            ),
            (
                "invalid value propagation",
                Some(err_invalid_value("foo", "bar", &[])),
                vec![vec!["baz"]],
                "invalid value: foo: baz.bar",
            ),
            (
                "invalid value propagation (int)",
                Some(err_invalid_value(5, "bar", &[])),
                vec![vec!["baz"]],
                "invalid value: 5: baz.bar",
            ),
            (
                "missing mutually exclusive fields",
                Some(err_missing_one_of(&["foo", "bar"])),
                vec![vec!["baz"]],
                "expected exactly one, got neither: baz.bar, baz.foo",
            ),
            (
                "multiple mutually exclusive fields",
                Some(err_multiple_one_of(&["foo", "bar"])),
                vec![vec!["baz"]],
                "expected exactly one, got both: baz.bar, baz.foo",
            ),
            (
                "invalid key name",
                Some(err_invalid_key_name(
                    "b@r",
                    "foo[0].name",
                    &["can not use @", "do not try"],
                )),
                vec![vec!["baz"]],
                "invalid key name \"b@r\": baz.foo[0].name\ncan not use @, do not try",
            ),
            (
                "out of bound value",
                Some(err_out_of_bounds_value("a", "b", "c", "string")),
                vec![vec!["spec"]],
                "expected b <= a <= c: spec.string",
            ),
            (
                "out of bound value (int)",
                Some(err_out_of_bounds_value(-1, 0, 5, "timeout")),
                vec![vec!["spec"]],
                "expected 0 <= -1 <= 5: spec.timeout",
            ),
        ];
        for (name, err, prefixes, want) in cases {
            let mut got = err;
            for prefix in &prefixes {
                got = got.via_fields(prefix);
            }
            if want.is_empty() {
                assert_eq!(got, None, "{name}");
            } else {
                assert_eq!(got.error_string(), want, "{name}");
            }
        }
    }

    #[test]
    fn test_field_error_built_by_hand() {
        // TestFieldError rows whose error is built with Also/ViaField chains.
        // "very complex to simple"
        let mut e = fe("First", &["A", "B", "C"]);
        for _ in 0..4 {
            e = e.clone().also(e);
        }
        e = e.also(fe("Second", &["Z", "X", "Y"]));
        for _ in 0..4 {
            e = e.clone().also(e);
        }
        assert_eq!(e.to_string(), "First: A, B, C\nSecond: X, Y, Z");

        // "exponentially grows"
        let mut e = fe("Top", &["A", "B", "C"]);
        for p in ["3", "2", "1"] {
            for _ in 0..3 {
                e = e.clone().also(e);
            }
            e = e.via_field(p);
        }
        assert_eq!(e.to_string(), "Top: 1.2.3.A, 1.2.3.B, 1.2.3.C");

        // "path grows but details are different"
        let mut e = fe("Top", &["A", "B", "C"]);
        for p in ["3", "2", "1"] {
            let mut via = e.via_field(p);
            via.details = format!("here at {p}");
            for _ in 0..3 {
                e = e.also(via.clone());
            }
        }
        assert_eq!(
            e.to_string(),
            "Top: A, B, C\n\
             Top: 1.A, 1.B, 1.C\nhere at 1\n\
             Top: 1.2.A, 1.2.B, 1.2.C, 2.A, 2.B, 2.C\nhere at 2\n\
             Top: 1.2.3.A, 1.2.3.B, 1.2.3.C, 1.3.A, 1.3.B, 1.3.C, 2.3.A, 2.3.B, 2.3.C, 3.A, 3.B, 3.C\nhere at 3"
        );

        // "very complex to complex"
        let first = fe("First", &["A", "B", "C"]);
        let e = first
            .via_field("one")
            .also(first.clone())
            .via_field("two")
            .also(first.clone())
            .via_field("three")
            .also(first.clone())
            .also(fe("Second", &["Z", "X", "Y"]));
        assert_eq!(
            e.to_string(),
            "First: A, B, C, three.A, three.B, three.C, three.two.A, three.two.B, three.two.C, \
             three.two.one.A, three.two.one.B, three.two.one.C\nSecond: X, Y, Z"
        );
    }

    #[test]
    fn test_via_index_or_key_field_error() {
        // TestViaIndexOrKeyFieldError: (name, error, prefix groups, want).
        let cases: Vec<PrefixRow> = vec![
            ("nil", None, vec![], ""),
            (
                "nil with prefix",
                None,
                vec![
                    vec!["INDEX:2"],
                    vec!["KEY:B"],
                    vec!["FIELDINDEX:AAA,6"],
                    vec!["FIELDKEY:bee,AAA"],
                ],
                "",
            ),
            (
                "simple single no propagation",
                Some(fe("hear me roar", &["bar"])),
                vec![vec!["INDEX:3", "INDEX:2", "INDEX:1", "foo"]],
                "hear me roar: foo[1][2][3].bar",
            ),
            (
                "simple key",
                Some(fe("hear me roar", &["bar"])),
                vec![vec!["KEY:C", "KEY:B", "KEY:A", "foo"]],
                "hear me roar: foo[A][B][C].bar",
            ),
            (
                "missing field propagation",
                Some(err_missing_field(&["foo", "bar"])),
                vec![vec!["[2]", "baz"]],
                "missing field(s): baz[2].bar, baz[2].foo",
            ),
            (
                "invalid key name",
                Some(err_invalid_key_name(
                    "b@r",
                    "name",
                    &["can not use @", "do not try"],
                )),
                vec![vec!["baz", "INDEX:0", "foo"]],
                "invalid key name \"b@r\": foo[0].baz.name\ncan not use @, do not try",
            ),
            (
                "invalid key name with keys",
                Some(err_invalid_key_name(
                    "b@r",
                    "name",
                    &["can not use @", "do not try"],
                )),
                vec![vec!["baz", "INDEX:0", "foo"], vec!["bar", "KEY:A", "boo"]],
                "invalid key name \"b@r\": boo[A].bar.foo[0].baz.name\ncan not use @, do not try",
            ),
            (
                "multi prefixes provided",
                Some(fe("invalid field(s)", &["foo"])),
                vec![
                    vec!["INDEX:2"],
                    vec!["bee"],
                    vec!["INDEX:0"],
                    vec!["baa", "baz", "ugh"],
                ],
                "invalid field(s): ugh.baz.baa[0].bee[2].foo",
            ),
            (
                "use helper viaFieldIndex",
                Some(fe("invalid field(s)", &["foo"])),
                vec![
                    vec!["FIELDINDEX:bee,2"],
                    vec!["FIELDINDEX:baa,0"],
                    vec!["baz", "ugh"],
                ],
                "invalid field(s): ugh.baz.baa[0].bee[2].foo",
            ),
            (
                "use helper viaFieldKey",
                Some(fe("invalid field(s)", &["foo"])),
                vec![
                    vec!["FIELDKEY:bee,AAA"],
                    vec!["FIELDKEY:baa,BBB"],
                    vec!["baz", "ugh"],
                ],
                "invalid field(s): ugh.baz.baa[BBB].bee[AAA].foo",
            ),
            (
                "bypass helpers",
                Some(fe("invalid field(s)", &["foo"])),
                vec![vec!["[2]"], vec!["[1]"], vec!["bar"]],
                "invalid field(s): bar[1][2].foo",
            ),
            (
                "multi paths provided",
                Some(fe("invalid field(s)", &["foo", "bar"])),
                vec![vec!["INDEX:0"], vec!["index"], vec!["KEY:A"], vec!["map"]],
                "invalid field(s): map[A].index[0].bar, map[A].index[0].foo",
            ),
            (
                "leaf field error with index",
                Some(err_invalid_array_value("kapot", "indexed", 5)),
                vec![],
                "invalid value: kapot: indexed[5]",
            ),
            (
                "leaf field error with index (int)",
                Some(err_invalid_array_value(42, "indexed", 5)),
                vec![],
                "invalid value: 42: indexed[5]",
            ),
            (
                "nil propagation",
                None,
                vec![vec!["baz", "ugh", "INDEX:0", "KEY:A"]],
                "",
            ),
        ];
        for (name, err, prefixes, want) in cases {
            let mut got = err;
            for group in &prefixes {
                for step in group {
                    got = apply(got, step);
                }
            }
            if want.is_empty() {
                assert_eq!(got, None, "{name}");
            } else {
                assert_eq!(got.error_string(), want, "{name}");
            }
        }
    }

    #[test]
    fn test_via_index_manual_chains() {
        // TestViaIndexOrKeyFieldError "manual index"
        let e = fe("invalid field(s)", &["foo"])
            .via_index(0)
            .via_field("bar")
            .via_index(2)
            .via_index(1)
            .via_field("baz")
            .via_index(3)
            .via_index(4)
            .via_field("boof");
        assert_eq!(
            e.to_string(),
            "invalid field(s): boof[4][3].baz[1][2].bar[0].foo"
        );
        // "manual multiple index"
        let e = fe("invalid field(s)", &["foo"])
            .via_fields(&["bear", "[1]", "[2]", "[3]", "baz", "]xxx["])
            .via_field("bar");
        assert_eq!(
            e.to_string(),
            "invalid field(s): bar.bear[1][2][3].baz.]xxx[.foo"
        );
        // "manual keys"
        let e = fe("invalid field(s)", &["foo"])
            .via_key("A")
            .via_field("bar")
            .via_key("CCC")
            .via_key("BB")
            .via_field("baz")
            .via_key("E")
            .via_key("F")
            .via_field("jar");
        assert_eq!(
            e.to_string(),
            "invalid field(s): jar[F][E].baz[BB][CCC].bar[A].foo"
        );
        // "manual index and keys"
        let e = fe("invalid field(s)", &["foo", "faa"])
            .via_key("A")
            .via_field("bar")
            .via_index(1)
            .via_field("baz")
            .via_key("E")
            .via_index(0)
            .via_field("jar");
        assert_eq!(
            e.to_string(),
            "invalid field(s): jar[0][E].baz[1].bar[A].faa, jar[0][E].baz[1].bar[A].foo"
        );
    }

    #[test]
    fn test_nil_error() {
        // TestNilError: nil prints as "".
        let none: Option<FieldError> = None;
        assert_eq!(none.error_string(), "");
    }

    #[test]
    fn test_also() {
        // TestAlso: (name, error, also list, prefix groups, want).
        let cases: Vec<AlsoRow<Option<FieldError>>> = vec![
            (
                "nil",
                None,
                vec![fe("also this", &["woo"])],
                vec![vec!["foo"]],
                "also this: foo.woo",
            ),
            (
                "nil all the way",
                None,
                vec![FieldError::default()],
                vec![],
                "",
            ),
            (
                "simple",
                Some(fe("hear me roar", &["bar"])),
                vec![fe("also this", &["woo"])],
                vec![vec!["foo", "[A]", "[B]", "[C]"]],
                "also this: foo[A][B][C].woo\nhear me roar: foo[A][B][C].bar",
            ),
            (
                "lots of also",
                Some(fe("knock knock", &["foo"])),
                vec![
                    fe("also this", &["A"]),
                    fe("and this", &["B"]),
                    fe("not without this", &["C"]),
                ],
                vec![vec!["bar"]],
                "also this: bar.A\nand this: bar.B\nknock knock: bar.foo\nnot without this: bar.C",
            ),
        ];
        for (name, err, also, prefixes, want) in cases {
            let mut got = err;
            for a in also {
                got = got.also(a);
            }
            for prefix in &prefixes {
                got = got.via_fields(prefix);
            }
            if want.is_empty() {
                assert_eq!(got, None, "{name}");
            } else {
                assert_eq!(got.error_string(), want, "{name}");
            }
        }
    }

    #[test]
    fn test_merge_field_errors() {
        // TestMergeFieldErrors: (name, error, also list, prefix groups, want).
        let cases: Vec<AlsoRow<FieldError>> = vec![
            (
                "simple",
                fe("A simple error message", &["bar"]),
                vec![fe("A simple error message", &["foo"])],
                vec![],
                "A simple error message: bar, foo",
            ),
            (
                "conflict",
                fe("A simple error message", &["bar", "foo"]),
                vec![fe("A simple error message", &["foo"])],
                vec![],
                "A simple error message: bar, foo",
            ),
            (
                "lots of also",
                fe("this error", &["bar", "foo"])
                    .also(fe("another", &["right", "left"]))
                    .via_field("head"),
                vec![
                    fe("An alpha error message", &["A"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["B"]),
                    fe("An alpha error message", &["C"]),
                    fe("An alpha error message", &["D"]),
                    fe("this error", &["foo"]).with_details("devil is in the details"),
                    fe("this error", &["foo"]).with_details("more details"),
                ],
                vec![vec!["this"]],
                "An alpha error message: this.A, this.B, this.C, this.D\n\
                 another: this.head.left, this.head.right\n\
                 this error: this.head.bar, this.head.foo\n\
                 this error: this.foo\ndevil is in the details\n\
                 this error: this.foo\nmore details",
            ),
        ];
        for (name, err, also, prefixes, want) in cases {
            let mut got = Some(err);
            for a in also {
                got = got.also(a);
            }
            for prefix in &prefixes {
                got = got.via_fields(prefix);
            }
            assert_eq!(got.error_string(), want, "{name}");
        }
    }

    #[test]
    fn test_also_stays_nil() {
        // TestAlsoStaysNil
        let err: Option<FieldError> = None;
        let err = err.also(None);
        assert_eq!(err, None);
        let err = err.via_field("nil").also(None);
        assert_eq!(err, None);
        let err = err.also(FieldError::default());
        assert_eq!(err, None);
    }

    #[test]
    fn test_flatten() {
        // TestFlatten: (name, parts, want).
        let cases: [(&str, Vec<&str>, &str); 7] = [
            ("simple", "foo.[1]".split('.').collect(), "foo[1]"),
            ("no brackets", "foo.bar".split('.').collect(), "foo.bar"),
            (
                "err([0]).ViaField(bar).ViaField(foo)",
                "foo.bar.[0]".split('.').collect(),
                "foo.bar[0]",
            ),
            (
                "err(bar).ViaIndex(0).ViaField(foo)",
                "foo.[0].bar".split('.').collect(),
                "foo[0].bar",
            ),
            (
                "err(bar).ViaField(foo).ViaIndex(0)",
                "[0].foo.bar".split('.').collect(),
                "[0].foo.bar",
            ),
            (
                "err(bar).ViaIndex(0).ViaIndex[1].ViaField(foo)",
                "foo.[1].[0].bar".split('.').collect(),
                "foo[1][0].bar",
            ),
            (
                "err(foo).ViaField(bar).ViaIndex[0].ViaField(baz)",
                vec!["foo", "bar.[0].baz"],
                "foo.bar[0].baz",
            ),
        ];
        for (name, parts, want) in cases {
            assert_eq!(flatten(&parts), want, "{name}");
        }
    }

    #[test]
    fn knative_traffic_paths_flatten_as_documented() {
        // routing.md A14: traffic + [0] + tag gives traffic[0].tag.
        let e = err_missing_field(&["tag"])
            .via_index(0)
            .via_field("traffic");
        assert_eq!(e.to_string(), "missing field(s): traffic[0].tag");
        // ErrInvalidArrayValue gives tag[0]; ViaField("traffic") makes it traffic.tag[0].
        let e = err_invalid_array_value("x", "tag", 0).via_field("traffic");
        assert_eq!(e.to_string(), "invalid value: x: traffic.tag[0]");
        // A CurrentField path takes the name of whatever it is reached through.
        let e = err_generic("Traffic targets sum to 0, want 100", &[CURRENT_FIELD])
            .via_field("traffic")
            .via_field("spec");
        assert_eq!(
            e.to_string(),
            "Traffic targets sum to 0, want 100: spec.traffic"
        );
    }

    #[test]
    fn merge_keeps_first_error_duplicates_and_drops_later_ones() {
        // mergePaths copies the first path list as it is, so its own duplicates survive;
        // paths of later errors are added only when new.
        let e = err_missing_field(&["b", "a", "b"]).also(err_missing_field(&["a", "c"]));
        assert_eq!(e.to_string(), "missing field(s): a, b, b, c");
        // Two identical messages from different rules print once (TestTrafficTargetValidation
        // "disallowed url set").
        let e = err_disallowed_fields(&["url"]).also(err_disallowed_fields(&["url"]));
        assert_eq!(e.to_string(), "must not set the field(s): url");
    }

    #[test]
    fn merge_key_reproduces_upstream_dash_ambiguity() {
        // Upstream keys on "<level>-<message>-<details>", so these two collide and the first
        // one's text wins.
        let e = fe("a-b", &["x"])
            .with_details("c")
            .also(fe("a", &["y"]).with_details("b-c"));
        assert_eq!(e.to_string(), "a-b: x, y\nc");
    }

    #[test]
    fn levels_sort_after_details_and_filter() {
        let warn = fe("same", &["w"]).at(Level::Warning);
        let err = fe("same", &["e"]);
        let both = warn.clone().also(err.clone());
        // Same message and details, different level: two lines, Error first.
        assert_eq!(both.to_string(), "same: e\nsame: w");
        assert_eq!(both.filter(Level::Warning), Some(warn.clone().also(None)));
        assert_eq!(
            both.filter(Level::Warning).error_string(),
            "same: w".to_string()
        );
        assert_eq!(both.filter(Level::Error).error_string(), "same: e");
        assert_eq!(err.filter(Level::Warning), None);
    }

    #[test]
    fn empty_message_errors_print_nothing_but_are_not_nil() {
        // Normalized skips a message-less leaf, as upstream.
        let e = Some(FieldError {
            paths: vec!["x".into()],
            ..Default::default()
        });
        assert!(e.is_some());
        assert_eq!(e.error_string(), "");
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        // (input, strconv.Quote output)
        let cases = [
            ("b ar", r#""b ar""#),
            ("", r#""""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\t\r\u{7}\u{8}\u{c}\u{b}", r#""\n\t\r\a\b\f\v""#),
            ("\u{0}\u{1f}\u{7f}", r#""\x00\x1f\x7f""#),
            ("héllo", "\"héllo\""),
            ("\u{85}\u{a0}", r#""\u0085\u00a0""#),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
    }

    proptest! {
        /// Display of merged errors does not depend on the order the errors were added.
        #[test]
        fn display_is_independent_of_insertion_order(
            (errs, shuffled) in proptest::collection::vec(
                (0usize..3, 0usize..4, 0usize..2, 0usize..3, proptest::option::of(0usize..3)),
                1..8,
            )
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            const MESSAGES: [&str; 3] = ["missing field(s)", "Traffic targets sum to 90, want 100", "b"];
            const PATHS: [&str; 4] = ["tag", "[0].tag", "", "percent"];
            const DETAILS: [&str; 2] = ["", "some details"];
            const VIA: [&str; 3] = ["traffic", "spec", "[1]"];
            let build = |list: &[(usize, usize, usize, usize, Option<usize>)]| {
                let mut acc: Option<FieldError> = None;
                for &(m, p, d, v, i) in list {
                    let mut e = FieldError::new(MESSAGES[m], &[PATHS[p]]).with_details(DETAILS[d]);
                    if let Some(i) = i {
                        e = e.via_index(i);
                    }
                    acc = acc.also(e.via_field(VIA[v]));
                }
                acc.error_string()
            };
            prop_assert_eq!(build(&errs), build(&shuffled));
        }

        /// Flattening never panics and never leaves empty segments or a leading dot.
        #[test]
        fn flatten_is_total(parts in proptest::collection::vec("[a-z\\[\\]0-9.]{0,6}", 0..5)) {
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let out = flatten(&refs);
            prop_assert!(!out.starts_with('.'));
            prop_assert!(!out.contains(".."));
        }
    }
}
