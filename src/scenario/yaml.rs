//! YAML loading with precise errors: multi-document splitting that keeps line numbers absolute,
//! field paths (serde_path_to_error) and locations (serde-saphyr).
//!
//! Must not: open files. Callers pass the text and the name to show.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A 1-based position in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourcePos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A string-valued field (annotations, ConfigMap data). The API server stores only strings, but
/// a hand-written file often has `min-scale: 2` unquoted; any scalar is read as its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ScalarString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A file could not be read as the expected YAML shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub file: String,
    pub pos: Option<SourcePos>,
    /// The field path (`spec.traffic[0].percent`), empty at the document root.
    pub path: String,
    pub message: String,
    /// A rendered source excerpt pointing at the problem, when one is available.
    pub snippet: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{pos}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for YamlError {}

/// At most this many documents in one file. Manifests and `kubectl get -o yaml` output hold a
/// handful of objects (a List is one document); a file of thousands of documents is a mistake
/// or an attack, and each document costs a parse.
pub const MAX_DOCUMENTS: usize = 1_000;

/// At most this many YAML nodes (scalars, lists, maps) in one document: far above any scenario,
/// manifest or ConfigMap (a 10,000-row traffic table is ~50,000 nodes), and low enough that a
/// document is read in bounded memory.
pub const MAX_NODES: usize = 250_000;

/// One YAML document of a multi-document file: its own lines only, and how many lines of the
/// file come before them, so that locations the parser reports become positions in the file
/// (add [`Document::line_offset`]) without copying anything that comes before the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// 0-based index among the non-empty documents of the file.
    pub index: usize,
    /// The 1-based line where the document's content starts.
    pub first_line: u32,
    /// Lines of the file before `text` starts.
    line_offset: u32,
    text: String,
}

impl Document {
    /// A document made of `text`, whose first line is line `line_offset + 1` of the file it came
    /// from and whose columns are the file's (e.g. one item of a `kind: List`).
    pub fn from_lines(index: usize, first_line: u32, line_offset: u32, text: String) -> Self {
        Document {
            index,
            first_line,
            line_offset,
            text,
        }
    }

    /// The document's own text; its columns are the file's, its lines start at
    /// `line_offset() + 1`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Lines of the file before the document's text.
    pub fn line_offset(&self) -> u32 {
        self.line_offset
    }

    /// A location the parser reported in this document, as a position in the file.
    pub fn pos(&self, loc: serde_saphyr::Location) -> SourcePos {
        SourcePos::of_location(loc, self.line_offset)
    }
}

impl SourcePos {
    /// A parser location in a document whose text starts after `line_offset` lines of the
    /// file (see [`Document::line_offset`]), as a position in the file.
    pub fn of_location(loc: serde_saphyr::Location, line_offset: u32) -> SourcePos {
        let line = u32::try_from(loc.line()).unwrap_or(u32::MAX);
        SourcePos {
            // line 0 means "no location"; keep it so callers can tell
            line: if line == 0 {
                0
            } else {
                line.saturating_add(line_offset)
            },
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

/// Splits a file at `---` document markers (and drops `...` end markers). Documents that hold
/// only blank lines and comments are skipped. Each document keeps only its own lines (markers
/// and directives blanked, so every character keeps its column) and the count of lines before
/// it; memory is the size of the file. A file of more than [`MAX_DOCUMENTS`] documents is
/// refused.
pub fn split_documents(file: &str, text: &str) -> Result<Vec<Document>, YamlError> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1u32;
    let mut line_offset = 0u32;
    let mut has_content = false;
    let mut flush = |current: &mut String,
                     first_line: u32,
                     line_offset: u32,
                     has_content: bool|
     -> Result<(), YamlError> {
        let text = std::mem::take(current);
        if !has_content {
            return Ok(());
        }
        if docs.len() == MAX_DOCUMENTS {
            return Err(YamlError {
                file: file.to_string(),
                pos: Some(SourcePos {
                    line: first_line,
                    column: 1,
                }),
                path: String::new(),
                message: format!(
                    "the file holds more than {MAX_DOCUMENTS} YAML documents; allowed: at most {MAX_DOCUMENTS} (split it into several files)"
                ),
                snippet: String::new(),
            });
        }
        docs.push(Document {
            index: docs.len(),
            first_line,
            line_offset,
            text,
        });
        Ok(())
    };
    let mut line_no = 0u32;
    for line in text.split_inclusive('\n') {
        line_no = line_no.saturating_add(1);
        let body = line.trim_end_matches(['\n', '\r']);
        let is_start = body == "---" || body.starts_with("--- ") || body.starts_with("---\t");
        let is_end = body == "..." || body.starts_with("... ");
        if is_start || is_end {
            flush(&mut current, first_line, line_offset, has_content)?;
            has_content = false;
            first_line = line_no + 1;
            line_offset = line_no;
            if is_start
                && body.len() > 3
                && !body[3..].trim().is_empty()
                && !body[3..].trim().starts_with('#')
            {
                // `--- value`: content starts on the marker line; blank the marker, keep columns.
                current.push_str("   ");
                current.push_str(&line[3..]);
                has_content = true;
                first_line = line_no;
                line_offset = line_no - 1;
            }
            continue;
        }
        let trimmed = body.trim_start();
        if !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%') {
            if !has_content {
                first_line = line_no;
            }
            has_content = true;
        }
        if trimmed.starts_with('%') {
            // Directives (`%YAML 1.2`) only make sense before a marker; keep the line count.
            current.push('\n');
        } else {
            current.push_str(line);
        }
    }
    flush(&mut current, first_line, line_offset, has_content)?;
    Ok(docs)
}

/// The parser's options: the default budget with [`MAX_NODES`] (and a document count that
/// [`split_documents`] already bounds).
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    let mut budget = options.budget.clone().unwrap_or_default();
    budget.max_nodes = MAX_NODES;
    options.budget = Some(budget);
    options
}

/// Deserialises one document into `T`, with the field path and location of any error.
pub fn from_document<T: DeserializeOwned>(file: &str, doc: &Document) -> Result<T, YamlError> {
    let mut path = String::new();
    let result =
        serde_saphyr::with_deserializer_from_str_with_options(&doc.text, options(), |de| {
            serde_path_to_error::deserialize(de).map_err(|err| {
                path = err.path().to_string();
                err.into_inner()
            })
        });
    result.map_err(|err| convert_error(file, &path, &err, doc))
}

/// Deserialises a single-document file.
pub fn from_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, YamlError> {
    let docs = split_documents(file, text)?;
    match docs.as_slice() {
        [doc] => from_document(file, doc),
        [] => Err(YamlError {
            file: file.to_string(),
            pos: None,
            path: String::new(),
            message: "the file holds no YAML document".to_string(),
            snippet: String::new(),
        }),
        [_, second, ..] => Err(YamlError {
            file: file.to_string(),
            pos: Some(SourcePos {
                line: second.first_line,
                column: 1,
            }),
            path: String::new(),
            message: "expected one YAML document, found several".to_string(),
            snippet: String::new(),
        }),
    }
}

/// What a breached parser budget means, with the limit (serde-saphyr says only
/// `budget breached: Nodes { nodes: 250001 }`).
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::budget::Budget::default();
    match breach {
        B::Nodes { .. } => format!(
            "the document has more than {MAX_NODES} YAML nodes; allowed: at most {MAX_NODES} (values, lists and maps) per document"
        ),
        B::Depth { .. } => format!(
            "the document nests deeper than {} levels; allowed: at most {}",
            limits.max_depth, limits.max_depth
        ),
        B::Aliases { .. } => format!(
            "the document uses more than {} aliases (`*name`); allowed: at most {}",
            limits.max_aliases, limits.max_aliases
        ),
        B::Anchors { .. } => format!(
            "the document defines more than {} anchors (`&name`); allowed: at most {}",
            limits.max_anchors, limits.max_anchors
        ),
        B::Events { .. } => format!(
            "the document is too large to read (more than {} parser events); allowed: at most {}",
            limits.max_events, limits.max_events
        ),
        B::ScalarBytes { .. } => format!(
            "the document's values add up to more than {} bytes; allowed: at most {}",
            limits.max_total_scalar_bytes, limits.max_total_scalar_bytes
        ),
        other => format!("the document is too large to read ({other:?})"),
    }
}

/// What the source text at `loc` holds, for an error where a single value was expected: the
/// parser reports only "expected string scalar".
fn found_at(text: &str, loc: serde_saphyr::Location) -> &'static str {
    let line = text
        .lines()
        .nth(loc.line().saturating_sub(1) as usize)
        .unwrap_or("");
    let mut rest: String = line
        .chars()
        .skip(loc.column().saturating_sub(1) as usize)
        .collect();
    // An anchor or a tag comes before the value it names.
    while rest.starts_with(['&', '!']) {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or(String::new(), |(_, r)| r.trim_start().to_string());
    }
    if rest.is_empty() {
        // The value starts on a later line (block style): look at its first token.
        let next = text
            .lines()
            .skip(loc.line() as usize)
            .map(str::trim_start)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        rest = next.to_string();
    }
    if rest.starts_with('[') || rest == "-" || rest.starts_with("- ") {
        "a list"
    } else if rest.starts_with('{') || rest.contains(": ") || rest.ends_with(':') {
        "a map"
    } else if rest.starts_with('*') {
        "an alias to a list or map"
    } else {
        "a list or map"
    }
}

fn convert_error(file: &str, path: &str, err: &serde_saphyr::Error, doc: &Document) -> YamlError {
    let line_offset = doc.line_offset;
    let pos = err
        .location()
        .map(|loc| SourcePos::of_location(loc, line_offset))
        .filter(|p| p.line > 0);
    let bare = match err.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        // Said where a list or map stands for a number, a string or a bool: the parser names
        // neither what the field takes nor what it found.
        serde_saphyr::Error::Unexpected {
            expected: "string scalar",
            location,
        } => format!(
            "expected a single value (a number, a string or true/false), found {}",
            found_at(&doc.text, *location)
        ),
        other => other.to_string(),
    };
    // serde-saphyr prefixes "error: line L column C: "; the location is shown separately.
    let message = match bare.split_once(": ") {
        Some((head, rest)) if head.starts_with("error") => match rest.split_once(": ") {
            Some((loc, msg)) if loc.starts_with("line ") => msg.to_string(),
            _ => rest.to_string(),
        },
        _ => bare,
    };
    let mut options = serde_saphyr::RenderOptions::default();
    options.source_name = Some(file);
    options.line_offset = u64::from(line_offset);
    let rendered = err.render_with_options(options);
    let snippet = rendered
        .split_once('\n')
        .map(|(_, s)| s.to_string())
        .unwrap_or_default();
    // `Spanned<T>` shows up as a `value` segment; our mirrors have no field of that name.
    let path = path.replace(".value", "");
    let path = path.strip_prefix("value").map_or(path.clone(), |rest| {
        rest.trim_start_matches('.').to_string()
    });
    let path = if path == "." { String::new() } else { path };
    // Some messages repeat the location at their end.
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => message[..i].to_string(),
        _ => message,
    };
    YamlError {
        file: file.to_string(),
        pos,
        path,
        message,
        snippet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        percent: i64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    #[test]
    fn splits_documents_and_keeps_lines() {
        let text = "# leading comment\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n";
        let docs = split_documents("f.yaml", text).expect("two documents");
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].index, docs[0].first_line), (0, 3));
        assert_eq!((docs[1].index, docs[1].first_line), (1, 7));
        // the offset keeps line numbers: b is on line 7 of the file
        assert_eq!(docs[1].line_offset(), 6);
        assert_eq!(docs[1].text().lines().next(), Some("b: 2"));
    }

    #[test]
    fn errors_carry_path_and_absolute_position() {
        let text =
            "name: x\nitems:\n- percent: 1\n---\nname: y\nitems:\n- percent: 1\n- percnt: 2\n";
        let docs = split_documents("f.yaml", text).expect("two documents");
        assert!(from_document::<Outer>("f.yaml", &docs[0]).is_ok());
        let err = from_document::<Outer>("f.yaml", &docs[1]).expect_err("unknown field");
        assert_eq!(err.pos, Some(SourcePos { line: 8, column: 3 }));
        assert_eq!(err.path, "items[1].percnt");
        assert!(
            err.message.contains("unknown field `percnt`"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("expected one of percent")
                || err.message.contains("expected `percent`"),
            "{}",
            err.message
        );
        assert!(
            err.to_string()
                .starts_with("f.yaml:8:3: items[1].percnt: unknown field"),
            "{err}"
        );
        assert!(err.snippet.contains("f.yaml:8:3"), "{}", err.snippet);
    }

    #[test]
    fn bad_value_names_the_field() {
        let err = from_str::<Outer>("g.yaml", "name: x\nitems:\n- percent: five\n")
            .expect_err("not a number");
        assert_eq!(err.path, "items[0].percent");
        assert_eq!(
            err.pos,
            Some(SourcePos {
                line: 3,
                column: 12
            })
        );
    }

    #[test]
    fn documents_hold_only_their_own_text() {
        // 1,000 tiny documents: each keeps its own lines, not a copy of everything before it
        // (a padded copy made 40,000 of them take 1.7 GB), so all of them together are no
        // bigger than the file.
        let text = "---\na: 1\n".repeat(1_000);
        let docs = split_documents("f.yaml", &text).expect("at the limit");
        assert_eq!(docs.len(), 1_000);
        let held: usize = docs.iter().map(|d| d.text().len()).sum();
        assert!(held <= text.len(), "{held} bytes held for {}", text.len());
    }

    #[test]
    fn errors_in_a_later_document_point_into_the_file() {
        // the error is in document 900 of 1,000, on line 2 * 900 of the file (marker, body)
        let mut text = "---\nname: x\nitems: []\n".repeat(899);
        text.push_str("---\nname: y\nitems:\n- percnt: 2\n");
        text.push_str(&"---\nname: z\nitems: []\n".repeat(100));
        let docs = split_documents("f.yaml", &text).expect("at the limit");
        assert_eq!(docs.len(), 1_000);
        assert_eq!(docs[899].first_line, 899 * 3 + 2);
        let err = from_document::<Outer>("f.yaml", &docs[899]).expect_err("unknown field");
        let line = 899 * 3 + 4;
        assert_eq!(err.pos, Some(SourcePos { line, column: 3 }));
        assert_eq!(err.path, "items[0].percnt");
        // the excerpt names the file's line too
        assert!(
            err.snippet.contains(&format!("f.yaml:{line}:3")),
            "{}",
            err.snippet
        );
        assert!(
            err.snippet.contains(&format!("{line} | - percnt: 2")),
            "{}",
            err.snippet
        );
    }

    #[test]
    fn too_many_nodes_is_refused_with_the_limit() {
        // a list of 300,000 numbers: more nodes than any scenario or manifest needs
        let text = format!("name: x\nitems: [{}]\n", vec!["1"; 300_000].join(","));
        let err = from_str::<IgnoredAny>("big.yaml", &text).expect_err("over the node limit");
        assert!(
            err.message.contains("more than 250000 YAML nodes"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("budget breached"), "{}", err.message);
    }

    #[test]
    fn malformed_yaml_is_an_error_not_a_panic() {
        for text in [
            "name: [x\n",
            "name: x\n  items: : :\n",
            "\t- a\n",
            "name: x\nname: y\nitems: []\n",
        ] {
            assert!(from_str::<Outer>("h.yaml", text).is_err(), "{text:?}");
        }
        assert!(from_str::<Outer>("h.yaml", "# nothing\n").is_err());
    }

    #[test]
    fn a_list_or_map_for_a_single_value_says_what_it_found() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Seeded {
            seed: u64,
        }
        // (document, position, what was found)
        let cases = [
            ("seed: [1, 2]\n", (1, 7), "a list"),  // flow list
            ("seed: {a: 1}\n", (1, 7), "a map"),   // flow map
            ("seed:\n  - 1\n", (2, 3), "a list"),  // block list
            ("seed:\n  a: 1\n", (2, 3), "a map"),  // block map
            ("seed: &x [1]\n", (1, 10), "a list"), // anchored list
        ];
        for (text, (line, column), found) in cases {
            let err = from_str::<Seeded>("f.yaml", text).expect_err(text);
            assert_eq!(err.pos, Some(SourcePos { line, column }), "{text}");
            assert_eq!(err.path, "seed", "{text}");
            assert_eq!(
                err.message,
                format!(
                    "expected a single value (a number, a string or true/false), found {found}"
                ),
                "{text}"
            );
        }
    }
}
