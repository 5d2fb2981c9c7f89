//! `report.html`: one self-contained page per run or comparison, with the scenario as YAML,
//! summary tables, any sentences, and every chart as inline SVG.
//!
//! Owns: the page layout (`render_page`, a pure function: strings in, a string out), HTML
//! escaping, and turning a run's `summary.json` into tables (`summary_tables`).
//!
//! Must not: read or write files, or reference anything outside the page: no scripts, no
//! stylesheets, no images by URL. The charts are the SVG text itself, so the page needs no
//! network access and no sibling files.
//!
//! Invariants: every text that comes from outside (names, YAML, table cells) is escaped
//! (`&`, `<`, `>`, `"`, `'`); chart SVG is inserted as markup (it is our own plotters output),
//! without any XML declaration. The same inputs give the same bytes.

use std::fmt::Write as _;

use super::record::END_KEYS;

/// The file a run or a comparison writes.
pub const REPORT_FILE: &str = "report.html";

/// A table: a caption, a header row and rows of cells (already formatted text).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A chart to inline: its name and its SVG text.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub name: String,
    pub svg: String,
}

/// Everything on a page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub title: String,
    /// What happened, in sentences, shown first (a run's verdict: `report::verdict`); the first
    /// is the headline.
    pub verdict: Vec<String>,
    /// The scenario file as run; `None` when it is not available (a note says so).
    pub scenario_yaml: Option<String>,
    /// Sentences shown as a list before the tables (a comparison's findings). A sentence with
    /// several lines shows its first line as text and the rest preformatted (a YAML snippet).
    pub sentences: Vec<String>,
    pub tables: Vec<Table>,
    /// Tables shown folded (every figure, for whoever needs more than the key ones).
    pub details: Vec<Table>,
    pub charts: Vec<Chart>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The SVG element of a chart file: anything before `<svg` (an XML declaration) is dropped.
fn svg_element(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..]).trim_end()
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1250px}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}\
th:first-child,td:first-child{text-align:left}\
caption{text-align:left;font-weight:bold;padding:4px 0}\
pre{background:#f6f6f6;padding:1em;overflow:auto}\
figure{margin:1em 0}\
figcaption{color:#444;max-width:1100px}\
.verdict{font-size:1.05em;line-height:1.45;max-width:1100px}\
.verdict p:first-child{font-weight:bold}\
details{margin:1em 0}\
summary{cursor:pointer;font-weight:bold}\
svg{max-width:100%;height:auto}";

/// The page as one HTML document.
pub fn render_page(page: &Page) -> String {
    let mut out = String::new();
    let title = escape(&page.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    if !page.verdict.is_empty() {
        out.push_str("<section class=\"verdict\">\n");
        for s in &page.verdict {
            let _ = writeln!(out, "<p>{}</p>", escape(s));
        }
        out.push_str("</section>\n");
    }
    if !page.sentences.is_empty() {
        out.push_str("<h2>Findings</h2>\n<ul>\n");
        for s in &page.sentences {
            match s.split_once('\n') {
                // A block of several lines (a YAML snippet): its first line, then the rest
                // preformatted.
                Some((head, rest)) => {
                    let _ = writeln!(out, "<li>{}<pre>{}</pre></li>", escape(head), escape(rest));
                }
                None => {
                    let _ = writeln!(out, "<li>{}</li>", escape(s));
                }
            }
        }
        out.push_str("</ul>\n");
    }
    for table in &page.tables {
        render_table(&mut out, table);
    }
    if !page.details.is_empty() {
        out.push_str("<details>\n<summary>All figures</summary>\n");
        for table in &page.details {
            render_table(&mut out, table);
        }
        out.push_str("</details>\n");
    }
    if !page.charts.is_empty() {
        out.push_str("<h2>Charts</h2>\n");
        for chart in &page.charts {
            let name = escape(&chart.name);
            let caption = match super::chart::caption(&chart.name) {
                Some(what) => format!("<b>{name}</b>: {}", escape(what)),
                None => name.clone(),
            };
            let _ = write!(
                out,
                "<figure id=\"{name}\">\n{}\n<figcaption>{caption}</figcaption>\n</figure>\n",
                svg_element(&chart.svg)
            );
        }
    }
    out.push_str("<h2>Scenario</h2>\n");
    match &page.scenario_yaml {
        Some(yaml) => {
            let _ = writeln!(
                out,
                "<details>\n<summary>The scenario as run (YAML)</summary>\n<pre>{}</pre>\n</details>",
                escape(yaml)
            );
        }
        None => out.push_str("<p>The scenario is not available.</p>\n"),
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn render_table(out: &mut String, table: &Table) {
    let _ = writeln!(
        out,
        "<table>\n<caption>{}</caption>",
        escape(&table.caption)
    );
    out.push_str("<tr>");
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Flattens a JSON object into `(dotted key, scalar text)` pairs, in the file's key order.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The tables of a run's `summary.json`: the request totals, one row per revision (every field,
/// nested ones by dotted name), and everything else (split, rollouts, engine) as key/value rows.
pub fn summary_tables(summary_json: &str) -> Result<Vec<Table>, String> {
    let value: serde_json::Value =
        serde_json::from_str(summary_json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let mut tables = Vec::new();
    // Both request tables run down the page, one row per field: they gain a row, not a column,
    // with each new outcome, so they stay readable at any width. Counts come in the order of
    // the summary's accounting (`arrived`, then every outcome, then in flight).
    let order = |k: &str| match k {
        "arrived" => 0,
        _ => END_KEYS
            .iter()
            .position(|e| *e == k)
            .map_or(END_KEYS.len() + 1, |i| i + 1),
    };
    if let Some(requests) = obj.get("requests") {
        let mut pairs = Vec::new();
        flatten("", requests, &mut pairs);
        pairs.sort_by_key(|(k, _)| order(k));
        tables.push(Table {
            caption: "requests (all revisions)".to_string(),
            header: vec!["outcome".to_string(), "requests".to_string()],
            rows: pairs.into_iter().map(|(k, v)| vec![k, v]).collect(),
        });
    }
    if let Some(serde_json::Value::Object(revisions)) = obj.get("revisions") {
        let flat: Vec<(String, Vec<(String, String)>)> = revisions
            .iter()
            .map(|(name, rev)| {
                let mut pairs = Vec::new();
                flatten("", rev, &mut pairs);
                (name.clone(), pairs)
            })
            .collect();
        let mut fields: Vec<String> = Vec::new();
        for (_, pairs) in &flat {
            for (k, _) in pairs {
                if !fields.contains(k) {
                    fields.push(k.clone());
                }
            }
        }
        // A stable sort keeps serde_json's (sorted) order among the fields that are not counts.
        fields.sort_by_key(|k| order(k));
        let mut header = vec!["field".to_string()];
        header.extend(flat.iter().map(|(name, _)| name.clone()));
        let rows = fields
            .into_iter()
            .map(|field| {
                let mut row = vec![field.clone()];
                row.extend(flat.iter().map(|(_, pairs)| {
                    pairs
                        .iter()
                        .find(|(k, _)| *k == field)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                }));
                row
            })
            .collect();
        tables.push(Table {
            caption: "per revision".to_string(),
            header,
            rows,
        });
    }
    let mut rest = Vec::new();
    for (k, v) in obj {
        if k != "requests" && k != "revisions" {
            flatten(k, v, &mut rest);
        }
    }
    if !rest.is_empty() {
        tables.push(Table {
            caption: "run".to_string(),
            header: vec!["field".to_string(), "value".to_string()],
            rows: rest.into_iter().map(|(k, v)| vec![k, v]).collect(),
        });
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        // (input, escaped)
        let cases = [
            ("plain", "plain"),
            ("a & b", "a &amp; b"),
            ("<script>", "&lt;script&gt;"),
            (r#"say "hi" it's"#, "say &quot;hi&quot; it&#39;s"),
            ("&amp;", "&amp;amp;"), // already-escaped text is escaped again: it is text
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input}");
        }
    }

    #[test]
    fn page_inlines_charts_and_escapes_text() {
        let page = Page {
            title: "run <x> & y".to_string(),
            verdict: vec!["All <3> served.".to_string(), "v2 & more".to_string()],
            scenario_yaml: Some("name: a<b\n".to_string()),
            sentences: vec![
                "b vs a: \"less\"".to_string(),
                "apply:\nkey: \"240s\"\n".to_string(),
            ],
            tables: vec![Table {
                caption: "t".to_string(),
                header: vec!["k".to_string()],
                rows: vec![vec!["1 < 2".to_string()]],
            }],
            details: vec![Table {
                caption: "all".to_string(),
                header: vec!["field".to_string()],
                rows: vec![vec!["x".to_string()]],
            }],
            charts: vec![Chart {
                name: "queues".to_string(),
                svg: "<?xml version=\"1.0\"?>\n<svg width=\"1\"><text>q</text></svg>\n".to_string(),
            }],
        };
        let html = render_page(&page);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>run &lt;x&gt; &amp; y</title>"));
        assert!(html.contains("<pre>name: a&lt;b\n</pre>"));
        // a known chart's caption says what to look at
        assert!(html.contains("<figcaption><b>queues</b>: requests waiting"));
        // the verdict leads, escaped, before any table; the details are folded
        let verdict = html
            .find("<section class=\"verdict\">\n<p>All &lt;3&gt; served.</p>\n<p>v2 &amp; more</p>")
            .expect("verdict");
        assert!(verdict < html.find("<table>").expect("table"));
        assert!(html.contains(
            "<details>\n<summary>All figures</summary>\n<table>\n<caption>all</caption>"
        ));
        assert!(html.contains("<li>b vs a: &quot;less&quot;</li>"));
        // a sentence of several lines: the first as text, the rest preformatted
        assert!(html.contains("<li>apply:<pre>key: &quot;240s&quot;\n</pre></li>"));
        assert!(html.contains("<td>1 &lt; 2</td>"));
        assert!(html.contains("<svg width=\"1\"><text>q</text></svg>"));
        assert!(!html.contains("<?xml"), "no XML declaration inside HTML");
        assert_eq!(html.matches("<svg").count(), 1);
    }

    #[test]
    fn missing_scenario_is_said() {
        let html = render_page(&Page::default());
        assert!(html.contains("The scenario is not available."));
    }

    #[test]
    fn summary_becomes_tables() {
        let json = r#"{"scenario": "s", "seed": 1,
            "requests": {"in_flight_at_end": 0, "errors": 1, "arrived": 10, "served": 9},
            "revisions": {"a": {"routed": 6, "arrived": 6, "latency_ms": {"p99": 2.5}},
                          "b": {"routed": 4, "arrived": 4, "latency_ms": null}},
            "engine": {"events": 7}}"#;
        let tables = summary_tables(json).expect("valid");
        assert_eq!(tables[0].header, ["outcome", "requests"]);
        // the accounting's order, not serde_json's: arrived, the outcomes, then in flight
        assert_eq!(
            tables[0].rows,
            [
                ["arrived", "10"],
                ["served", "9"],
                ["errors", "1"],
                ["in_flight_at_end", "0"]
            ]
        );
        // one column per revision; the counts first, then the other keys in serde_json's
        // (sorted) order
        assert_eq!(tables[1].header, ["field", "a", "b"]);
        assert_eq!(
            tables[1].rows,
            [
                ["arrived", "6", "4"],
                ["latency_ms.p99", "2.5", ""],
                ["routed", "6", "4"],
                ["latency_ms", "", ""]
            ]
        );
        assert_eq!(
            tables[2].rows,
            [["engine.events", "7"], ["scenario", "s"], ["seed", "1"]]
        );
        assert!(summary_tables("[1]").is_err());
        assert!(summary_tables("{").is_err());
    }
}
