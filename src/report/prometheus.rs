//! A small Prometheus registry and its text exposition format (version 0.0.4, what
//! `client_golang`'s `promhttp` answers without OpenMetrics negotiation).
//!
//! Owns: metric families declared up front (counter, gauge, histogram with fixed upper
//! bounds), their series keyed by label set, and the text encoding. No sockets: `live::metrics`
//! serves what `encode` writes.
//!
//! Invariants, as `client_golang` writes them (`expfmt/text_create.go`): families in the order
//! they were declared; series in label order; labels sorted by name within a series (constant
//! and variable labels merged, as `prometheus.NewDesc` sorts them), `le` last on a bucket; a
//! histogram's buckets are cumulative and end with `le="+Inf"` equal to `_count`; label values
//! escape `\`, `"` and newline, help texts `\` and newline. A counter keeps the name it was
//! given: the OpenCensus exporter Knative v1.18 uses adds no `_total`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// A family's id in its registry (the order of declaration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyId(usize);

/// Label names and values of one series. Sorted by name, as the exposition writes them.
pub type Labels = BTreeMap<String, String>;

/// Builds a label set from pairs.
pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    /// Upper bounds, ascending, without `+Inf`.
    Histogram(Vec<f64>),
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Scalar(f64),
    /// Per bound (not cumulative; `encode` accumulates), then the sum and the count.
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    series: BTreeMap<Labels, Value>,
}

/// Metric families and their series, shared between the code that records and the server
/// that encodes them.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<Vec<Family>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Family>> {
        self.families
            .lock()
            .expect("registry lock is never poisoned: no code panics while holding it")
    }

    fn declare(&self, name: &str, help: &str, kind: Kind) -> FamilyId {
        let mut families = self.lock();
        families.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
        });
        FamilyId(families.len() - 1)
    }

    pub fn counter(&self, name: &str, help: &str) -> FamilyId {
        self.declare(name, help, Kind::Counter)
    }

    pub fn gauge(&self, name: &str, help: &str) -> FamilyId {
        self.declare(name, help, Kind::Gauge)
    }

    /// A histogram with these upper bounds (ascending; `+Inf` is implied).
    pub fn histogram(&self, name: &str, help: &str, bounds: &[f64]) -> FamilyId {
        self.declare(name, help, Kind::Histogram(bounds.to_vec()))
    }

    /// Adds 1 to a counter's series (created at 0).
    pub fn inc(&self, id: FamilyId, labels: &Labels) {
        inc_in(&mut self.lock()[id.0], labels);
    }

    /// Sets a gauge's series.
    pub fn set(&self, id: FamilyId, labels: &Labels, value: f64) {
        let mut families = self.lock();
        let f = &mut families[id.0];
        debug_assert_eq!(f.kind, Kind::Gauge, "{} is not a gauge", f.name);
        *series(f, labels) = Value::Scalar(value);
    }

    /// Observes a value in a histogram's series: it counts in the first bucket whose upper
    /// bound is at least the value (`le` is inclusive), or only in `+Inf`.
    pub fn observe(&self, id: FamilyId, labels: &Labels, value: f64) {
        observe_in(&mut self.lock()[id.0], labels, value);
    }

    /// `inc(counter, labels)` and `observe(histogram, labels, value)` under one lock: a
    /// request's count and latency, recorded together.
    pub fn count_and_observe(
        &self,
        counter: FamilyId,
        histogram: FamilyId,
        labels: &Labels,
        value: f64,
    ) {
        let mut families = self.lock();
        inc_in(&mut families[counter.0], labels);
        observe_in(&mut families[histogram.0], labels, value);
    }
    /// The text exposition of every family that has a series.
    pub fn encode(&self) -> String {
        let families = self.lock();
        let mut out = String::new();
        for f in families.iter().filter(|f| !f.series.is_empty()) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.series {
                match (value, &f.kind) {
                    (Value::Scalar(v), _) => {
                        let _ = writeln!(out, "{}{} {}", f.name, label_text(labels, None), num(*v));
                    }
                    (
                        Value::Histogram {
                            buckets,
                            sum,
                            count,
                        },
                        Kind::Histogram(bounds),
                    ) => {
                        let mut cumulative = 0;
                        for (bound, n) in bounds.iter().zip(buckets) {
                            cumulative += n;
                            let le = label_text(labels, Some(&num(*bound)));
                            let _ = writeln!(out, "{}_bucket{le} {cumulative}", f.name);
                        }
                        let le = label_text(labels, Some("+Inf"));
                        let _ = writeln!(out, "{}_bucket{le} {count}", f.name);
                        let plain = label_text(labels, None);
                        let _ = writeln!(out, "{}_sum{plain} {}", f.name, num(*sum));
                        let _ = writeln!(out, "{}_count{plain} {count}", f.name);
                    }
                    (Value::Histogram { .. }, _) => {
                        unreachable!("only a histogram family holds histogram series")
                    }
                }
            }
        }
        out
    }
}

/// Adds 1 to the counter family `f`'s series of `labels`.
fn inc_in(f: &mut Family, labels: &Labels) {
    debug_assert_eq!(f.kind, Kind::Counter, "{} is not a counter", f.name);
    match series(f, labels) {
        Value::Scalar(v) => *v += 1.0,
        Value::Histogram { .. } => unreachable!("a counter's series is a scalar"),
    }
}

/// Counts `value` in the histogram family `f`'s series of `labels` (see `Registry::observe`).
fn observe_in(f: &mut Family, labels: &Labels, value: f64) {
    let Kind::Histogram(bounds) = &f.kind else {
        unreachable!("{} is not a histogram", f.name)
    };
    let slot = bounds.iter().position(|b| value <= *b);
    match series(f, labels) {
        Value::Histogram {
            buckets,
            sum,
            count,
        } => {
            if let Some(i) = slot {
                buckets[i] += 1;
            }
            *sum += value;
            *count += 1;
        }
        Value::Scalar(_) => unreachable!("a histogram's series is a histogram"),
    }
}

/// The series of `labels` in `f`, created empty.
fn series<'a>(f: &'a mut Family, labels: &Labels) -> &'a mut Value {
    if !f.series.contains_key(labels) {
        let empty = match &f.kind {
            Kind::Histogram(bounds) => Value::Histogram {
                buckets: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            },
            _ => Value::Scalar(0.0),
        };
        f.series.insert(labels.clone(), empty);
    }
    f.series.get_mut(labels).expect("inserted above")
}

/// `{a="x",b="y"}` (with `le` last when given), or nothing for no labels.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    let pairs = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(le.map(|le| ("le", le)));
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out.push('}');
    out
}

/// A label value: backslash, double quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A help text: backslash and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

/// A sample value or bound: the shortest text that reads back as the same number (`5`,
/// `0.25`), `+Inf`, `-Inf`, `NaN`.
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One sample of a scraped exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Why a line of an exposition could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {reason}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Reads the samples of a text exposition (comments skipped), the inverse of `encode`: for
/// tests and tools that scrape a live run.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |reason| ParseError {
            line: i + 1,
            reason,
            text: line.to_string(),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(at) => line.split_at(at),
            None => return Err(err("no value")),
        };
        let mut labels = Labels::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            loop {
                // name
                let start = match chars.peek() {
                    Some((_, '}')) => {
                        end = chars.next().map(|(at, _)| at);
                        break;
                    }
                    Some((at, _)) => *at,
                    None => break,
                };
                let mut eq = None;
                for (at, c) in chars.by_ref() {
                    if c == '=' {
                        eq = Some(at);
                        break;
                    }
                }
                let eq = eq.ok_or_else(|| err("label without ="))?;
                let key = body[start..eq].trim_start_matches(',').trim().to_string();
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => return Err(err("dangling escape")),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err(err("unterminated label value"));
                }
                labels.insert(key, value);
                if let Some((_, ',')) = chars.peek() {
                    chars.next();
                }
            }
            let end = end.ok_or_else(|| err("unterminated label set"))?;
            rest = &body[end + 1..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| err("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| err("value is not a number"))?,
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_texts_are_escaped() {
        // (raw value, as written in the exposition)
        let cases = [
            ("plain", "plain"),
            (r"a\b", r"a\\b"),               // backslash doubled
            ("say \"hi\"", r#"say \"hi\""#), // quote escaped
            ("two\nlines", r"two\nlines"),   // newline as \n
            (r#"\"\n"#, r#"\\\"\\n"#),       // all three, in order, no double escaping
            ("", ""),                        // empty value stays empty
        ];
        for (raw, written) in cases {
            let r = Registry::new();
            let c = r.counter("c", "help");
            r.inc(c, &labels([("v", raw)]));
            let text = r.encode();
            assert!(
                text.contains(&format!("c{{v=\"{written}\"}} 1\n")),
                "{raw:?}: {text}"
            );
            // And it reads back as the raw value.
            let samples = parse(&text).expect("parses");
            assert_eq!(samples[0].labels["v"], raw, "{raw:?}");
        }
        let r = Registry::new();
        let g = r.gauge("g", "a \\ b\nc");
        r.set(g, &Labels::new(), 1.0);
        assert!(r
            .encode()
            .starts_with("# HELP g a \\\\ b\\nc\n# TYPE g gauge\ng 1\n"));
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_inf_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram("lat", "latency", &[5.0, 10.0, 100000.0]);
        let l = labels([("pod_name", "p"), ("code", "200")]);
        // (observed value): 5 is in le=5 (inclusive), 6 and 10 in le=10, 2e5 only in +Inf.
        for v in [0.0, 5.0, 6.0, 10.0, 200000.0] {
            r.observe(h, &l, v);
        }
        let text = r.encode();
        let expected = "\
# HELP lat latency
# TYPE lat histogram
lat_bucket{code=\"200\",pod_name=\"p\",le=\"5\"} 2
lat_bucket{code=\"200\",pod_name=\"p\",le=\"10\"} 4
lat_bucket{code=\"200\",pod_name=\"p\",le=\"100000\"} 4
lat_bucket{code=\"200\",pod_name=\"p\",le=\"+Inf\"} 5
lat_sum{code=\"200\",pod_name=\"p\"} 200021
lat_count{code=\"200\",pod_name=\"p\"} 5
";
        assert_eq!(text, expected);
    }

    #[test]
    fn families_keep_their_order_series_their_label_order_and_empty_ones_are_left_out() {
        let r = Registry::new();
        let c = r.counter("b_count", "requests");
        let unused = r.gauge("unused", "never set");
        let g = r.gauge("a_gauge", "depth");
        r.inc(c, &labels([("x", "2")]));
        r.inc(c, &labels([("x", "1")]));
        r.inc(c, &labels([("x", "1")]));
        r.set(g, &Labels::new(), 0.5);
        let _ = unused;
        let text = r.encode();
        let expected = "\
# HELP b_count requests
# TYPE b_count counter
b_count{x=\"1\"} 2
b_count{x=\"2\"} 1
# HELP a_gauge depth
# TYPE a_gauge gauge
a_gauge 0.5
";
        assert_eq!(text, expected);
    }

    #[test]
    fn parse_reads_what_encode_writes_and_rejects_broken_lines() {
        let r = Registry::new();
        let h = r.histogram("h", "x", &[1.0]);
        r.observe(h, &labels([("a", "1,2}")]), 3.0);
        let samples = parse(&r.encode()).expect("parses");
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["h_bucket", "h_bucket", "h_sum", "h_count"]);
        assert_eq!(samples[1].labels["le"], "+Inf");
        assert_eq!(samples[1].labels["a"], "1,2}");
        assert_eq!(samples[1].value, 1.0);
        // (line, why it is rejected)
        let bad = [
            ("x", "no value"),                       // a name alone
            ("x{a=\"1\"", "unterminated label set"), // missing }
            ("x{a=1} 2", "label value not quoted"),  // bare value
            ("x 1.2.3", "value is not a number"),    // not a float
        ];
        for (line, reason) in bad {
            assert_eq!(parse(line).expect_err(line).reason, reason, "{line}");
        }
    }
}
