//! Prometheus' HTTP API responses (`GET /api/v1/query_range`) as series.
//!
//! Owns: reading the JSON body Prometheus returns (`{"status": "success", "data":
//! {"resultType": "matrix", "result": [{"metric": {...}, "values": [[t, "v"], ...]}]}}`,
//! prometheus `web/api/v1/api.go` and docs/querying/api.md "Range queries"), with errors naming
//! the source and the JSON path of the bad value.
//!
//! Must not: do I/O or interpret what a series means (that is `derive`).
//!
//! Values are strings in the API; `"NaN"`, `"+Inf"` and `"-Inf"` are read as the floats they
//! name and are kept (the caller decides what a non-finite value means). A native-histogram
//! series (`"histograms"` instead of `"values"`) is skipped: splitlab reads classic buckets.

use std::collections::BTreeMap;

use serde_json::Value;

/// One series of a range query's result: its labels and its `(unix seconds, value)` samples
/// in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The value of `label`, `""` when the series has none (as PromQL treats a missing label).
    pub fn label(&self, label: &str) -> &str {
        self.labels.get(label).map_or("", String::as_str)
    }
}

/// A body that is not a range query's result: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {path}: {message}")]
pub struct PromJsonError {
    /// The file or URL the body came from.
    pub source_name: String,
    /// The JSON path (`data.result[2].values[5][1]`), `$` for the whole body.
    pub path: String,
    pub message: String,
}

/// Reads a `query_range` response body into its series. `source_name` names the body in errors.
pub fn parse_matrix(source_name: &str, body: &str) -> Result<Vec<Series>, PromJsonError> {
    let err = |path: &str, message: String| PromJsonError {
        source_name: source_name.to_string(),
        path: path.to_string(),
        message,
    };
    let root: Value = serde_json::from_str(body).map_err(|e| {
        err(
            "$",
            format!(
                "not JSON ({e}); expected the body of GET /api/v1/query_range: {}",
                snippet(body)
            ),
        )
    })?;
    let status = root.get("status").and_then(Value::as_str).ok_or_else(|| {
        err(
            "status",
            "missing; expected \"success\" or \"error\"".into(),
        )
    })?;
    if status != "success" {
        let kind = root.get("errorType").and_then(Value::as_str).unwrap_or("");
        let message = root.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(err(
            "status",
            format!("Prometheus answered {status:?}: {kind}: {message}"),
        ));
    }
    let data = root
        .get("data")
        .ok_or_else(|| err("data", "missing".into()))?;
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or_else(|| err("data.resultType", "missing".into()))?;
    if result_type != "matrix" {
        return Err(err(
            "data.resultType",
            format!("{result_type:?}; expected \"matrix\" (the answer of /api/v1/query_range, not /api/v1/query)"),
        ));
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| err("data.result", "missing or not a list".into()))?;
    let mut series = Vec::with_capacity(result.len());
    for (i, item) in result.iter().enumerate() {
        let at = format!("data.result[{i}]");
        let metric = item
            .get("metric")
            .and_then(Value::as_object)
            .ok_or_else(|| err(&format!("{at}.metric"), "missing or not an object".into()))?;
        let mut labels = BTreeMap::new();
        for (k, v) in metric {
            let v = v
                .as_str()
                .ok_or_else(|| err(&format!("{at}.metric.{k}"), format!("{v} is not a string")))?;
            labels.insert(k.clone(), v.to_string());
        }
        let Some(values) = item.get("values") else {
            if item.get("histograms").is_some() {
                continue;
            }
            return Err(err(&format!("{at}.values"), "missing".into()));
        };
        let values = values
            .as_array()
            .ok_or_else(|| err(&format!("{at}.values"), "not a list".into()))?;
        let mut points = Vec::with_capacity(values.len());
        for (j, pair) in values.iter().enumerate() {
            let here = format!("{at}.values[{j}]");
            let pair = pair
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| err(&here, format!("{pair} is not a [time, \"value\"] pair")))?;
            let t = pair[0].as_f64().ok_or_else(|| {
                err(
                    &format!("{here}[0]"),
                    format!("{} is not a unix time in seconds", pair[0]),
                )
            })?;
            let v = pair[1]
                .as_str()
                .and_then(parse_sample_value)
                .ok_or_else(|| {
                    err(
                        &format!("{here}[1]"),
                        format!(
                            "{} is not a sample value; allowed: a number as a string, \"NaN\", \"+Inf\", \"-Inf\"",
                            pair[1]
                        ),
                    )
                })?;
            if points.last().is_some_and(|(prev, _)| *prev >= t) {
                return Err(err(
                    &format!("{here}[0]"),
                    format!("time {t} is not after the previous sample's"),
                ));
            }
            points.push((t, v));
        }
        series.push(Series { labels, points });
    }
    Ok(series)
}

/// A sample value as the API writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with
/// `NaN`, `+Inf`, `-Inf`).
pub fn parse_sample_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

/// The start of a body, for an error message.
fn snippet(body: &str) -> String {
    let s: String = body.chars().take(80).collect();
    if s.len() < body.len() {
        format!("{s:?}...")
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_parse() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"revision_name":"a","le":"+Inf"},"values":[[1700000000,"1.5"],[1700000015.5,"NaN"],[1700000030,"+Inf"]]},
            {"metric":{},"values":[]},
            {"metric":{"x":"y"},"histograms":[[1700000000,{"count":"1"}]]}
        ]}}"#;
        let s = parse_matrix("f.json", body).expect("valid");
        assert_eq!(s.len(), 2, "the native histogram is skipped");
        assert_eq!(s[0].label("revision_name"), "a");
        assert_eq!(s[0].label("le"), "+Inf");
        assert_eq!(s[0].label("route_tag"), "", "a missing label is empty");
        assert_eq!(s[0].points[0], (1_700_000_000.0, 1.5));
        assert!(s[0].points[1].1.is_nan());
        assert_eq!(s[0].points[1].0, 1_700_000_015.5);
        assert_eq!(s[0].points[2].1, f64::INFINITY);
        assert!(s[1].points.is_empty());
        // no series at all is a valid answer
        let empty = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(parse_matrix("e.json", empty).expect("valid"), vec![]);
    }

    #[test]
    fn sample_values() {
        // (API string, expected; None: refused)
        let cases = [
            // Go's 'f' formatting
            ("0.25", Some(0.25)),
            ("12", Some(12.0)),
            // exponent form, which some exporters' values reach
            ("1e-05", Some(1e-5)),
            ("+Inf", Some(f64::INFINITY)),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("", None),
            ("one", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_sample_value(s), want, "{s:?}");
        }
        assert!(parse_sample_value("NaN").expect("NaN").is_nan());
    }

    #[test]
    fn bad_bodies_name_the_json_path() {
        // (body, expected error)
        let cases = [
            // not JSON at all (an HTML error page)
            ("<html>", "d.json: $: not JSON"),
            // Prometheus' own error answer
            (
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
                "d.json: status: Prometheus answered \"error\": bad_data: parse error",
            ),
            // an instant query's answer
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                "d.json: data.resultType: \"vector\"; expected \"matrix\"",
            ),
            // a value that is a number, not a string
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"],[2,3]]}]}}"#,
                "d.json: data.result[0].values[1][1]: 3 is not a sample value",
            ),
            // a time that is a string
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","2"]]}]}}"#,
                "d.json: data.result[0].values[0][0]: \"1\" is not a unix time",
            ),
            // samples out of order
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[2,"1"],[1,"1"]]}]}}"#,
                "d.json: data.result[0].values[1][0]: time 1 is not after",
            ),
            // a label value that is not a string
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"le":5},"values":[]}]}}"#,
                "d.json: data.result[0].metric.le: 5 is not a string",
            ),
            // a pair of three
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2",3]]}]}}"#,
                "d.json: data.result[0].values[0]: [1,\"2\",3] is not a [time, \"value\"] pair",
            ),
            // no data
            (r#"{"status":"success"}"#, "d.json: data: missing"),
        ];
        for (body, want) in cases {
            let e = parse_matrix("d.json", body).expect_err(body).to_string();
            assert!(e.starts_with(want), "{e}\nwant: {want}");
        }
    }
}
