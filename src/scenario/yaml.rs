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

impl From<serde_saphyr::Location> for SourcePos {
    fn from(loc: serde_saphyr::Location) -> Self {
        SourcePos {
            line: loc.line() as u32,
            column: loc.column() as u32,
        }
    }
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

/// One YAML document of a multi-document file, padded with blank lines so that locations the
/// parser reports are positions in the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// 0-based index among the non-empty documents of the file.
    pub index: usize,
    /// The 1-based line where the document's content starts.
    pub first_line: u32,
    padded: String,
}

impl Document {
    /// A document made of `padded`: text whose lines and columns are those of the file it came
    /// from (everything else blanked), e.g. one item of a `kind: List`.
    pub fn from_padded(index: usize, first_line: u32, padded: String) -> Self {
        Document {
            index,
            first_line,
            padded,
        }
    }

    /// The document's text, padded so that positions are the file's.
    pub fn padded(&self) -> &str {
        &self.padded
    }
}

/// Splits a file at `---` document markers (and drops `...` end markers). Documents that hold
/// only blank lines and comments are skipped. Markers are blanked rather than removed, so every
/// remaining character keeps its line and column.
pub fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1u32;
    let mut has_content = false;
    let flush =
        |current: &mut String, first_line: u32, has_content: bool, docs: &mut Vec<Document>| {
            if has_content {
                docs.push(Document {
                    index: docs.len(),
                    first_line,
                    padded: std::mem::take(current),
                });
            }
        };
    let mut line_no = 0u32;
    for line in text.split_inclusive('\n') {
        line_no += 1;
        let body = line.trim_end_matches(['\n', '\r']);
        let is_start = body == "---" || body.starts_with("--- ") || body.starts_with("---\t");
        let is_end = body == "..." || body.starts_with("... ");
        if is_start || is_end {
            flush(&mut current, first_line, has_content, &mut docs);
            // Keep the line count: pad everything before the new document with newlines.
            current = "\n".repeat(line_no as usize - 1);
            has_content = false;
            first_line = line_no + 1;
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
            } else {
                current.push('\n');
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
    flush(&mut current, first_line, has_content, &mut docs);
    docs
}

/// Deserialises one document into `T`, with the field path and location of any error.
pub fn from_document<T: DeserializeOwned>(file: &str, doc: &Document) -> Result<T, YamlError> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str(&doc.padded, |de| {
        serde_path_to_error::deserialize(de).map_err(|err| {
            path = err.path().to_string();
            err.into_inner()
        })
    });
    result.map_err(|err| convert_error(file, &path, &err))
}

/// Deserialises a single-document file.
pub fn from_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, YamlError> {
    let docs = split_documents(text);
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

fn convert_error(file: &str, path: &str, err: &serde_saphyr::Error) -> YamlError {
    let pos = err.location().map(SourcePos::from).filter(|p| p.line > 0);
    let bare = err.without_snippet().to_string();
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
        let docs = split_documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].index, docs[0].first_line), (0, 3));
        assert_eq!((docs[1].index, docs[1].first_line), (1, 7));
        // padding keeps line numbers: b is on line 7 of the file
        assert_eq!(docs[1].padded.lines().nth(6), Some("b: 2"));
    }

    #[test]
    fn errors_carry_path_and_absolute_position() {
        let text =
            "name: x\nitems:\n- percent: 1\n---\nname: y\nitems:\n- percent: 1\n- percnt: 2\n";
        let docs = split_documents(text);
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
}
