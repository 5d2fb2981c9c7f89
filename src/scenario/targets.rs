//! `load --targets FILE`: several endpoints driven together in one run, with weights, in
//! vegeta's spirit (method, URL, headers, body per target), written as YAML:
//!
//! ```yaml
//! targets:
//!   - name: main                      # the label in load.json, --results and --check (v2.p99_ms)
//!     url: http://127.0.0.1:8080/     # http[s]://HOST[:PORT][/PATH]
//!     weight: 3                       # share of the requests: weight / sum of weights (default 1)
//!     headers: {Host: hello.default.example.com}
//!   - name: v2
//!     url: http://127.0.0.1:8080/
//!     method: POST                    # default GET
//!     headers: {Host: hello.default.example.com, Knative-Serving-Tag: v2}
//!     body: '{"a": 1}'                # or body_file: payload.json (relative to this file)
//! ```
//!
//! Owns: the serde mirror (`deny_unknown_fields`) and its validation into `TargetSpec`s, with
//! errors that name the file, line and column, the field path and what is allowed.
//!
//! Must not: open files or resolve addresses (the caller reads `body_file` and resolves URLs).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::yaml::{self, SourcePos, YamlError};

/// The most targets a file may hold, and the most their weights may add up to.
pub const MAX_TARGETS: usize = 1000;
pub const MAX_TOTAL_WEIGHT: u32 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMirror {
    targets: Vec<Spanned<TargetMirror>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetMirror {
    name: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    weight: Option<Spanned<u32>>,
    #[serde(default)]
    method: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_file: Option<String>,
}

/// Where a target's body comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodySource {
    Text(String),
    /// A path as written (relative paths are relative to the targets file).
    File(String),
}

/// One validated target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    pub name: String,
    pub url: String,
    pub weight: u32,
    /// Upper case, a token; `None`: the command line's `--method` (default GET).
    pub method: Option<String>,
    /// Names as written, values as written (visible ASCII and spaces).
    pub headers: Vec<(String, String)>,
    pub body: Option<BodySource>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads a targets file (`file` is the name shown in messages).
pub fn parse(file: &str, text: &str) -> Result<Vec<TargetSpec>, YamlError> {
    let mirror: FileMirror = yaml::from_str(file, text)?;
    // The one document's first line in the file (comment-only documents before it are skipped).
    let offset = yaml::split_documents(file, text)?
        .first()
        .map_or(0, yaml::Document::line_offset);
    let err = |pos: SourcePos, path: String, message: String| YamlError {
        file: file.to_string(),
        pos: Some(pos),
        path,
        message,
        snippet: String::new(),
    };
    if mirror.targets.is_empty() || mirror.targets.len() > MAX_TARGETS {
        return Err(YamlError {
            file: file.to_string(),
            pos: None,
            path: "targets".into(),
            message: format!(
                "{} targets; allowed: 1 to {MAX_TARGETS}",
                mirror.targets.len()
            ),
            snippet: String::new(),
        });
    }
    let mut out: Vec<TargetSpec> = Vec::with_capacity(mirror.targets.len());
    let mut total: u64 = 0;
    for (i, t) in mirror.targets.iter().enumerate() {
        let at = |field: &str| format!("targets[{i}].{field}");
        let t_pos: SourcePos = SourcePos::of_location(t.referenced, offset);
        let t = &t.value;
        let name = &t.name.value;
        if !is_label(name) {
            return Err(err(
                SourcePos::of_location(t.name.referenced, offset),
                at("name"),
                format!("{name:?}: allowed: letters, digits, _ and - (it names the target in --check v2.p99_ms)"),
            ));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(err(
                SourcePos::of_location(t.name.referenced, offset),
                at("name"),
                format!("{name:?} names two targets; each target needs its own name"),
            ));
        }
        let url = &t.url.value;
        match url.parse::<hyper::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            _ => {
                return Err(err(
                    SourcePos::of_location(t.url.referenced, offset),
                    at("url"),
                    format!("{url:?}: allowed: http[s]://HOST[:PORT][/PATH]"),
                ))
            }
        }
        let weight = match &t.weight {
            None => 1,
            Some(w) if w.value >= 1 && w.value <= MAX_TOTAL_WEIGHT => w.value,
            Some(w) => {
                return Err(err(
                    SourcePos::of_location(w.referenced, offset),
                    at("weight"),
                    format!(
                        "{}: allowed: an integer from 1 to {MAX_TOTAL_WEIGHT}",
                        w.value
                    ),
                ))
            }
        };
        total += u64::from(weight);
        if total > u64::from(MAX_TOTAL_WEIGHT) {
            return Err(err(
                t_pos,
                at("weight"),
                format!("the weights add up to more than {MAX_TOTAL_WEIGHT}; use smaller weights in the same ratio"),
            ));
        }
        let method = match &t.method {
            None => None,
            Some(m) if is_token(&m.value) => Some(m.value.to_ascii_uppercase()),
            Some(m) => {
                return Err(err(
                    SourcePos::of_location(m.referenced, offset),
                    at("method"),
                    format!("{:?} is not an HTTP method (GET, POST, ...)", m.value),
                ))
            }
        };
        let mut headers = Vec::new();
        for (hname, value) in &t.headers {
            if !is_token(hname) {
                return Err(err(
                    SourcePos::of_location(value.referenced, offset),
                    at(&format!("headers.{hname}")),
                    format!("{hname:?} is not a header name"),
                ));
            }
            if !is_header_value(&value.value) {
                return Err(err(
                    SourcePos::of_location(value.referenced, offset),
                    at(&format!("headers.{hname}")),
                    "a header value holds visible ASCII, spaces and tabs only".to_string(),
                ));
            }
            headers.push((hname.clone(), value.value.clone()));
        }
        let body = match (&t.body, &t.body_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    t_pos,
                    at("body"),
                    "body and body_file are both given; give one".to_string(),
                ))
            }
            (Some(b), None) => Some(BodySource::Text(b.clone())),
            (None, Some(f)) => Some(BodySource::File(f.clone())),
            (None, None) => None,
        };
        out.push(TargetSpec {
            name: name.clone(),
            url: url.clone(),
            weight,
            method,
            headers,
            body,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_file_reads_into_weighted_targets() {
        let text = "targets:\n\
                    \x20 - name: main\n    url: http://127.0.0.1:8080/\n    weight: 3\n    headers: {Host: hello.default.example.com}\n\
                    \x20 - name: v2\n    url: http://127.0.0.1:8080/x?y=1\n    method: post\n    headers: {Knative-Serving-Tag: v2}\n    body: 'hi'\n";
        let t = parse("t.yaml", text).expect("valid");
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].name.as_str(), t[0].weight, t[0].method.as_deref()),
            ("main", 3, None)
        );
        assert_eq!(
            t[0].headers,
            vec![("Host".into(), "hello.default.example.com".into())]
        );
        assert_eq!((t[1].weight, t[1].method.as_deref()), (1, Some("POST")));
        assert_eq!(t[1].body, Some(BodySource::Text("hi".into())));
    }

    #[test]
    fn bad_targets_are_named_by_line_column_and_field() {
        let head = "targets:\n  - name: a\n    url: http://127.0.0.1:1/\n";
        // (the second target's lines, fragment of the message)
        let cases = [
            (
                "  - name: b\n    url: ftp://x/\n",
                "t.yaml:5:10: targets[1].url: \"ftp://x/\": allowed: http[s]://HOST[:PORT][/PATH]",
            ), // a scheme load cannot speak
            (
                "  - name: b\n    url: http://x/\n    weight: 0\n",
                "t.yaml:6:13: targets[1].weight: 0: allowed: an integer from 1",
            ), // a zero weight
            (
                "  - name: a\n    url: http://x/\n",
                "t.yaml:4:11: targets[1].name: \"a\" names two targets",
            ), // a duplicate name
            (
                "  - name: b c\n    url: http://x/\n",
                "t.yaml:4:11: targets[1].name: \"b c\": allowed: letters",
            ), // a label the check grammar cannot name
            (
                "  - name: b\n    url: http://x/\n    headers: {\"Bad Name\": v}\n",
                "targets[1].headers.Bad Name: \"Bad Name\" is not a header name",
            ), // a header name with a space
            (
                "  - name: b\n    url: http://x/\n    method: \"G T\"\n",
                "t.yaml:6:13: targets[1].method: \"G T\" is not an HTTP method",
            ), // a method with a space
            (
                "  - name: b\n    url: http://x/\n    body: a\n    body_file: f\n",
                "t.yaml:4:5: targets[1].body: body and body_file are both given",
            ), // two bodies
            (
                "  - name: b\n    url: http://x/\n    wieght: 2\n",
                "unknown field `wieght`",
            ), // a typo
        ];
        for (second, fragment) in cases {
            let err = parse("t.yaml", &format!("{head}{second}"))
                .expect_err(second)
                .to_string();
            assert!(err.contains(fragment), "{second}: {err}");
        }
    }
}
