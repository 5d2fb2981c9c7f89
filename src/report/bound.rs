//! Bound expressions: `PATH OP NUMBER`, the one grammar for a service-level objective on a run
//! (`advise --slo`, `compare --slo`; `load --check` takes the same syntax through `parse_parts`
//! and looks its subjects up in `report::check`), and their evaluation against a run's
//! measurements.
//!
//! Owns: parsing an expression (`p99_shift_ms<=800`, `expired==0`, `requests.rejected_qp<=10`)
//! with errors that name the expression, the column and what is allowed; looking its subject up
//! in a run (a `compare` metric by name, or any number in `summary.json` by its dotted path);
//! and deciding whether the bound held.
//!
//! Grammar (whitespace around the parts is ignored):
//! ```text
//! bound   = subject op number
//!         | subject                 (a bare subject, where the command allows one: load's `split`)
//! subject = metric | path          metric: a name of report::compare::Metric (no dot)
//! path    = key ("." key)+         key: letters, digits, '_' and '-' (revision names)
//! op      = "<" | "<=" | ">" | ">=" | "==" | "!="
//! number  = a decimal number as Rust's f64 parses it, finite (800, 0.5, -3, 1e3)
//! ```
//!
//! Must not: run anything or read files; a bound is evaluated against values it is given.
//!
//! Invariants: a subject with no value in a run (an undefined metric, a `null` in
//! `summary.json`) fails the bound: an objective that cannot be checked is not met. A path that
//! is not in `summary.json` at all is an error, never a silent failure.

use std::fmt;

use super::compare::{Metric, MetricValues};

/// The top-level objects of `summary.json` a dotted path may start with.
pub const SUMMARY_SECTIONS: [&str; 8] = [
    "requests",
    "latency_ms",
    "revisions",
    "cost",
    "split",
    "rollout",
    "engine",
    "analysis",
];

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Every operator, two-character ones first (the order they are matched in).
    const ALL: [Op; 6] = [Op::Le, Op::Ge, Op::Eq, Op::Ne, Op::Lt, Op::Gt];

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// The operator that holds exactly when this one does not (`<=` → `>`).
    pub fn negation(self) -> Op {
        match self {
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
            Op::Gt => Op::Le,
            Op::Ge => Op::Lt,
            Op::Eq => Op::Ne,
            Op::Ne => Op::Eq,
        }
    }

    /// Whether `observed OP bound` holds.
    pub fn holds(self, observed: f64, bound: f64) -> bool {
        match self {
            Op::Lt => observed < bound,
            Op::Le => observed <= bound,
            Op::Gt => observed > bound,
            Op::Ge => observed >= bound,
            Op::Eq => observed == bound,
            Op::Ne => observed != bound,
        }
    }
}

/// What a bound is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    /// One of `compare`'s metrics.
    Metric(Metric),
    /// A number in `summary.json`, by its keys.
    Path(Vec<String>),
}

/// A parsed bound expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub subject: Subject,
    pub op: Op,
    pub value: f64,
    /// The number as written (`800`, not `800.0`), for messages.
    value_text: String,
}

/// A bad expression, or a subject the run does not have.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BoundError {
    #[error("invalid bound {expr:?} at column {column}: {message}")]
    Syntax {
        expr: String,
        /// 1-based, in characters.
        column: usize,
        message: String,
    },
    #[error(
        "invalid bound {expr:?}: unknown metric {name:?}; allowed: {}, or a dotted summary.json path such as requests.rejected_qp",
        metric_names().join(", ")
    )]
    UnknownMetric { expr: String, name: String },
    #[error(
        "invalid bound {expr:?}: summary.json has no section {section:?}; a path starts with one of {}",
        SUMMARY_SECTIONS.join(", ")
    )]
    UnknownSection { expr: String, section: String },
    /// The path is not in this run's `summary.json`.
    #[error("bound {expr:?}: summary.json has no {path}; {}", available_text(.parent, .available))]
    UnknownPath {
        expr: String,
        /// The path up to and including the missing key.
        path: String,
        /// The path of the object the key was looked up in (empty: the top level).
        parent: String,
        /// The keys that object has.
        available: Vec<String>,
    },
    #[error("bound {expr:?}: summary.json {path} is {found}, with no key {key:?} inside")]
    NotAnObject {
        expr: String,
        path: String,
        found: &'static str,
        key: String,
    },
    #[error("bound {expr:?}: summary.json {path} is {found}, not a number")]
    NotANumber {
        expr: String,
        path: String,
        found: &'static str,
    },
}

fn available_text(parent: &str, available: &[String]) -> String {
    let at = if parent.is_empty() {
        "the top level".to_string()
    } else {
        parent.to_string()
    };
    if available.is_empty() {
        format!("{at} is empty")
    } else {
        format!("{at} has {}", available.join(", "))
    }
}

/// The names of `compare`'s metrics, in `Metric::ALL` order.
pub fn metric_names() -> Vec<&'static str> {
    Metric::ALL.iter().map(|m| m.name()).collect()
}

impl fmt::Display for Bound {
    /// The expression without spaces: `p99_shift_ms<=800`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.subject_name(),
            self.op.symbol(),
            self.value_text
        )
    }
}

impl std::str::FromStr for Bound {
    type Err = BoundError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A comparison: `OP NUMBER`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub op: Op,
    pub value: f64,
    /// The number as written (`800`, not `800.0`), for messages.
    pub value_text: String,
}

impl Comparison {
    /// Whether `observed OP value` holds; no value fails it.
    pub fn holds(&self, observed: Option<f64>) -> bool {
        observed.is_some_and(|v| self.op.holds(v, self.value))
    }
}

/// An expression's syntax before its subject is looked up: the dotted keys and, unless the
/// expression is a bare subject (`split`, where the command allows one), the comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Parts {
    pub keys: Vec<String>,
    pub comparison: Option<Comparison>,
}

/// Splits `KEY(.KEY)* OP NUMBER` (or, with `bare_allowed`, a lone `KEY(.KEY)*`) into its parts;
/// the one syntax of every command's bounds. Subjects are looked up by the caller.
pub fn parse_parts(expr: &str, bare_allowed: bool) -> Result<Parts, BoundError> {
    let chars: Vec<char> = expr.chars().collect();
    let syntax = |column: usize, message: String| BoundError::Syntax {
        expr: expr.to_string(),
        column,
        message,
    };
    let op_start = chars
        .iter()
        .position(|c| matches!(c, '<' | '>' | '=' | '!'));
    if op_start.is_none() && !bare_allowed {
        return Err(syntax(
            chars.len() + 1,
            "no operator; allowed: <, <=, >, >=, ==, != (e.g. p99_shift_ms<=800)".to_string(),
        ));
    }
    let op_start = op_start.unwrap_or(chars.len());
    let subject_text: String = chars[..op_start].iter().collect();
    let lead = subject_text.len() - subject_text.trim_start().len();
    let subject_text = subject_text.trim();
    if subject_text.is_empty() {
        return Err(syntax(
            op_start + 1,
            "no metric before the operator; allowed: a metric name or a dotted summary.json path"
                .to_string(),
        ));
    }
    let keys: Vec<&str> = subject_text.split('.').collect();
    let mut column = lead + 1;
    for key in &keys {
        if key.is_empty() {
            return Err(syntax(column, "empty key in the path".to_string()));
        }
        if let Some((i, c)) = key
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return Err(syntax(
                column + i,
                format!(
                    "{c:?} cannot be in a path; allowed: letters, digits, _, - and . between keys"
                ),
            ));
        }
        column += key.chars().count() + 1;
    }
    let keys = keys.iter().map(|k| k.to_string()).collect();
    if op_start == chars.len() {
        return Ok(Parts {
            keys,
            comparison: None,
        });
    }
    let rest: String = chars[op_start..].iter().collect();
    let op = Op::ALL
        .into_iter()
        .find(|op| rest.starts_with(op.symbol()))
        .ok_or_else(|| {
            syntax(
                op_start + 1,
                format!(
                    "{:?} is not an operator; allowed: <, <=, >, >=, ==, !=",
                    rest.chars().take(2).collect::<String>()
                ),
            )
        })?;
    let number_start = op_start + op.symbol().len();
    let number_text: String = chars[number_start..].iter().collect();
    let number_lead = number_text.len() - number_text.trim_start().len();
    let number_text = number_text.trim();
    let number_column = number_start + number_lead + 1;
    if number_text.is_empty() {
        return Err(syntax(
            number_column,
            format!("expected a number after {}", op.symbol()),
        ));
    }
    let value = number_text
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            syntax(
                number_column,
                format!(
                    "{number_text:?} is not a number; allowed: a plain number in the metric's unit (800, 0.5, 1e3)"
                ),
            )
        })?;
    Ok(Parts {
        keys,
        comparison: Some(Comparison {
            op,
            value,
            value_text: number_text.to_string(),
        }),
    })
}

/// Parses `PATH OP NUMBER`.
pub fn parse(expr: &str) -> Result<Bound, BoundError> {
    let Parts { keys, comparison } = parse_parts(expr, false)?;
    let Comparison {
        op,
        value,
        value_text,
    } = comparison.expect("parse_parts without bare subjects always has a comparison");
    let subject = if keys.len() == 1 {
        let metric = Metric::ALL
            .into_iter()
            .find(|m| m.name() == keys[0])
            .ok_or_else(|| BoundError::UnknownMetric {
                expr: expr.to_string(),
                name: keys[0].clone(),
            })?;
        Subject::Metric(metric)
    } else {
        if !SUMMARY_SECTIONS.contains(&keys[0].as_str()) {
            return Err(BoundError::UnknownSection {
                expr: expr.to_string(),
                section: keys[0].clone(),
            });
        }
        Subject::Path(keys)
    };
    Ok(Bound {
        subject,
        op,
        value,
        value_text,
    })
}

impl Bound {
    /// The metric name or the dotted path.
    pub fn subject_name(&self) -> String {
        match &self.subject {
            Subject::Metric(m) => m.name().to_string(),
            Subject::Path(keys) => keys.join("."),
        }
    }

    /// The bound as written when it is broken: `p99_shift_ms>800` for `p99_shift_ms<=800`.
    pub fn violation(&self) -> String {
        format!(
            "{}{}{}",
            self.subject_name(),
            self.op.negation().symbol(),
            self.value_text
        )
    }

    /// The subject's value in one run: its `compare` metrics and its `summary.json` value.
    /// `Ok(None)` when the run has no value for it (an undefined metric, a `null`).
    pub fn observe(
        &self,
        metrics: &MetricValues,
        summary: &serde_json::Value,
    ) -> Result<Option<f64>, BoundError> {
        let keys = match &self.subject {
            Subject::Metric(m) => {
                let i = Metric::ALL
                    .iter()
                    .position(|x| x == m)
                    .expect("every metric is in Metric::ALL");
                return Ok(metrics[i]);
            }
            Subject::Path(keys) => keys,
        };
        let mut node = summary;
        for (depth, key) in keys.iter().enumerate() {
            let parent = keys[..depth].join(".");
            let next = match node {
                serde_json::Value::Object(map) => map.get(key).ok_or_else(|| {
                    let available = map.keys().cloned().collect();
                    BoundError::UnknownPath {
                        expr: self.to_string(),
                        path: keys[..=depth].join("."),
                        parent: parent.clone(),
                        available,
                    }
                })?,
                other => {
                    return Err(BoundError::NotAnObject {
                        expr: self.to_string(),
                        path: parent,
                        found: kind(other),
                        key: key.clone(),
                    })
                }
            };
            node = next;
        }
        match node {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Number(n) => Ok(n.as_f64()),
            other => Err(BoundError::NotANumber {
                expr: self.to_string(),
                path: keys.join("."),
                found: kind(other),
            }),
        }
    }

    /// Whether the bound held for an observed value; no value fails it.
    pub fn holds(&self, observed: Option<f64>) -> bool {
        observed.is_some_and(|v| self.op.holds(v, self.value))
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::METRICS;
    use serde_json::json;

    #[test]
    fn expressions_parse_into_subject_op_and_number() {
        // (expression, normalised form, its violation)
        let cases = [
            ("p99_shift_ms<=800", "p99_shift_ms<=800", "p99_shift_ms>800"), // the headline SLO
            ("expired==0", "expired==0", "expired!=0"),                     // equality
            (
                " peak_activator_queue < 100 ",
                "peak_activator_queue<100",
                "peak_activator_queue>=100",
            ), // spaces
            (
                "requests.rejected_qp<=10",
                "requests.rejected_qp<=10",
                "requests.rejected_qp>10",
            ), // a summary path
            (
                "analysis.failed_checks!=1",
                "analysis.failed_checks!=1",
                "analysis.failed_checks==1",
            ), // !=
            (
                "revisions.hello-00002.peak_qp_queue>=0.5",
                "revisions.hello-00002.peak_qp_queue>=0.5",
                "revisions.hello-00002.peak_qp_queue<0.5",
            ), // '-' in a key, a fraction
            ("pod_seconds>1e3", "pod_seconds>1e3", "pod_seconds<=1e3"),     // an exponent
            ("p99_ms > -3", "p99_ms>-3", "p99_ms<=-3"),                     // a negative number
        ];
        for (expr, shown, violation) in cases {
            let b = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(b.to_string(), shown, "{expr}");
            assert_eq!(b.violation(), violation, "{expr}");
        }
        let b = parse("requests.rejected_qp<=10").expect("valid");
        assert_eq!(
            (b.subject, b.op, b.value),
            (
                Subject::Path(vec!["requests".into(), "rejected_qp".into()]),
                Op::Le,
                10.0
            )
        );
        assert_eq!(
            parse("expired==0").expect("valid").subject,
            Subject::Metric(Metric::Expired)
        );
    }

    #[test]
    fn bad_expressions_name_the_column_and_what_is_allowed() {
        // (expression, fragment of the message)
        let cases = [
            (
                "p99_shift_ms",
                "at column 13: no operator; allowed: <, <=, >, >=, ==, !=",
            ), // no op
            (
                "p99_shift_ms=800",
                "at column 13: \"=8\" is not an operator",
            ), // single =
            (
                "p99_shift_ms=<800",
                "at column 13: \"=<\" is not an operator",
            ), // reversed
            ("<=800", "at column 1: no metric before the operator"), // no subject
            ("p99_shift_ms<=", "at column 15: expected a number after <="), // no number
            (
                "p99_shift_ms<= 800ms",
                "at column 16: \"800ms\" is not a number",
            ), // a unit
            (
                "p99_shift_ms<=<800",
                "at column 15: \"<800\" is not a number",
            ), // two ops
            ("p99_shift_ms<=inf", "\"inf\" is not a number"),        // not finite
            ("requests..served<1", "at column 10: empty key in the path"), // empty key
            ("p99 ms<1", "at column 4: ' ' cannot be in a path"),    // a space inside
            (
                "p99<1",
                "unknown metric \"p99\"; allowed: rejected_qp, expired, p99_ms",
            ), // unknown metric
            (
                "request.served<1",
                "no section \"request\"; a path starts with one of requests, latency_ms, revisions",
            ), // typo
        ];
        for (expr, fragment) in cases {
            let err = parse(expr).expect_err(expr).to_string();
            assert!(err.contains(fragment), "{expr}: {err}");
            assert!(
                err.contains(&format!("{expr:?}")),
                "names the expression: {err}"
            );
        }
    }

    fn metrics() -> MetricValues {
        let mut m: MetricValues = [None; METRICS];
        m[0] = Some(12.0); // rejected_qp
        m[1] = Some(0.0); // expired
        m
    }

    fn summary() -> serde_json::Value {
        json!({
            // 7, not the metric's 12: a bare name reads the metric, a dotted path the summary
            "requests": {"rejected_qp": 7, "served": 900},
            "latency_ms": {"p50": 12.5, "p99": 250.5},
            "revisions": {"a": {"latency_ms": null, "peak_qp_queue": 3}},
            "analysis": {"phase": "Succeeded", "failed_checks": 0},
            "rollout": {}
        })
    }

    #[test]
    fn bounds_are_checked_against_a_runs_metrics_and_summary() {
        // (expression, observed value, held)
        let cases = [
            ("rejected_qp<=12", Some(12.0), true),        // on the bound
            ("rejected_qp<12", Some(12.0), false),        // strict
            ("requests.rejected_qp<=7", Some(7.0), true), // the summary's, not the metric's
            ("expired==0", Some(0.0), true),              // equality
            ("p99_ms<800", None, false),                  // undefined metric fails
            ("requests.served>=900", Some(900.0), true),  // a summary number
            ("requests.served!=900", Some(900.0), false), // !=
            ("revisions.a.peak_qp_queue>2", Some(3.0), true), // nested
            ("revisions.a.latency_ms<1", None, false),    // null fails
            ("analysis.failed_checks==0", Some(0.0), true), // the analysis section
            ("latency_ms.p99<300", Some(250.5), true),    // the pooled latency
            ("latency_ms.p99<250", Some(250.5), false),
        ];
        for (expr, want, held) in cases {
            let b = parse(expr).expect(expr);
            let got = b.observe(&metrics(), &summary()).expect(expr);
            assert_eq!(got, want, "{expr}");
            assert_eq!(b.holds(got), held, "{expr}");
        }
    }

    #[test]
    fn a_path_the_run_lacks_is_an_error_listing_what_is_there() {
        // (expression, fragment of the message)
        let cases = [
            (
                "requests.rejected<1",
                "summary.json has no requests.rejected; requests has rejected_qp, served",
            ), // typo in a key
            (
                "revisions.b.served<1",
                "has no revisions.b; revisions has a",
            ), // an unknown revision
            (
                "rollout.hello.finished_s<1",
                "has no rollout.hello; rollout is empty",
            ), // no rollout happened
            (
                "cost.pod_seconds<1",
                "has no cost; the top level has analysis, latency_ms, requests, revisions, rollout",
            ), // missing section
            (
                "analysis.phase==1",
                "summary.json analysis.phase is a string, not a number",
            ), // not a number
            (
                "requests.served.x<1",
                "summary.json requests.served is a number, with no key \"x\" inside",
            ), // too deep
            (
                "revisions.a<1",
                "summary.json revisions.a is an object, not a number",
            ), // too shallow
        ];
        for (expr, fragment) in cases {
            let b = parse(expr).expect(expr);
            let err = b
                .observe(&metrics(), &summary())
                .expect_err(expr)
                .to_string();
            assert!(err.contains(fragment), "{expr}: {err}");
        }
    }

    #[test]
    fn negation_is_the_complement() {
        for op in Op::ALL {
            for (a, b) in [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)] {
                assert_ne!(op.holds(a, b), op.negation().holds(a, b), "{op:?} {a} {b}");
            }
        }
    }
}
