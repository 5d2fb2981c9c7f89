//! What `kubectl get ... -o yaml` prints, cut into objects: a file of one or several `---`
//! documents, any of which may be a `kind: List` (`apiVersion: v1`) whose `items` are objects.
//!
//! Owns: finding each object and giving it to the caller as its own [`Document`] whose lines and
//! columns are still those of the file, so every later error points into the file as written.
//!
//! Must not: interpret objects (callers deserialise each into their own mirror) or open files.
//!
//! A List's items are cut out of the text by line: an item runs from the line its node starts
//! on to the line before the next item starts, and stops early at the first line indented less
//! than the item (the List's own `kind:`, `metadata:` after `items`). kubectl prints block
//! style; items written in flow style on one line (`items: [{...}, {...}]`) are refused with a
//! message saying so.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::yaml::{from_document, split_documents, Document, SourcePos, YamlError};

/// One Kubernetes object of a file.
#[derive(Clone, Debug)]
pub struct KubeObject {
    /// The object alone, with the file's positions.
    pub doc: Document,
    pub api_version: String,
    pub kind: String,
    /// `metadata.name` (empty when absent).
    pub name: String,
    /// Where the object starts.
    pub pos: SourcePos,
    /// Where its `kind` value is (its start when absent).
    pub kind_pos: SourcePos,
    /// Where its `apiVersion` value is (its start when absent).
    pub api_version_pos: SourcePos,
}

/// Just enough of any object to tell what it is.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    api_version: Option<Spanned<String>>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    metadata: Option<ProbeMeta>,
    #[serde(default)]
    items: Option<Vec<Spanned<IgnoredAny>>>,
}

#[derive(Debug, Deserialize)]
struct ProbeMeta {
    #[serde(default)]
    name: Option<String>,
}

fn error(file: &str, pos: SourcePos, path: &str, message: String) -> YamlError {
    YamlError {
        file: file.to_string(),
        pos: Some(pos),
        path: path.to_string(),
        message,
        snippet: String::new(),
    }
}

/// Every object of `text` (the file `file`): documents in order, a List's items in its order.
pub fn read_objects(file: &str, text: &str) -> Result<Vec<KubeObject>, YamlError> {
    let docs = split_documents(file, text)?;
    if docs.is_empty() {
        return Err(YamlError {
            file: file.to_string(),
            pos: None,
            path: String::new(),
            message: "the file holds no YAML document".to_string(),
            snippet: String::new(),
        });
    }
    let mut out = Vec::new();
    for doc in docs {
        let start = SourcePos {
            line: doc.first_line,
            column: 1,
        };
        let probe: Probe = from_document(file, &doc)?;
        let is_list = probe.kind.as_ref().is_some_and(|k| k.value == "List");
        if !is_list {
            out.push(object(doc, probe, start));
            continue;
        }
        let api = probe.api_version.as_ref();
        if api.map(|a| a.value.as_str()) != Some("v1") {
            let (pos, got) = api.map_or((start, String::new()), |a| {
                (doc.pos(a.referenced), a.value.clone())
            });
            return Err(error(
                file,
                pos,
                "apiVersion",
                format!("unsupported apiVersion {got:?} for a List; allowed: \"v1\""),
            ));
        }
        let items = probe.items.unwrap_or_default();
        let starts: Vec<SourcePos> = items.iter().map(|i| doc.pos(i.referenced)).collect();
        for (i, pos) in starts.iter().enumerate() {
            if i > 0 && starts[i - 1].line == pos.line {
                return Err(error(
                    file,
                    *pos,
                    &format!("items[{i}]"),
                    "List items on one line are not supported; allowed: items in block style, as kubectl prints them".to_string(),
                ));
            }
            let end = starts.get(i + 1).map(|p| p.line);
            let item = cut_item(&doc, *pos, end, out.len());
            let item_probe: Probe = from_document(file, &item)?;
            if item_probe.items.is_some()
                && item_probe.kind.as_ref().is_some_and(|k| k.value == "List")
            {
                return Err(error(
                    file,
                    *pos,
                    &format!("items[{i}]"),
                    "a List inside a List; allowed: Kubernetes objects".to_string(),
                ));
            }
            out.push(object(item, item_probe, *pos));
        }
    }
    Ok(out)
}

fn object(doc: Document, probe: Probe, start: SourcePos) -> KubeObject {
    let (api_version, api_version_pos) = probe
        .api_version
        .map_or((String::new(), start), |a| (a.value, doc.pos(a.referenced)));
    let (kind, kind_pos) = probe
        .kind
        .map_or((String::new(), start), |k| (k.value, doc.pos(k.referenced)));
    KubeObject {
        doc,
        api_version,
        kind,
        name: probe.metadata.and_then(|m| m.name).unwrap_or_default(),
        pos: start,
        kind_pos,
        api_version_pos,
    }
}

/// The item starting at `start` (its node's first character), up to the line before `end`: its
/// own lines only (the `- ` blanked), with the lines of the file before it as the offset.
fn cut_item(doc: &Document, start: SourcePos, end: Option<u32>, index: usize) -> Document {
    let indent = start.column.saturating_sub(1) as usize;
    let mut text = String::new();
    for (i, line) in doc.text().split_inclusive('\n').enumerate() {
        let no = doc
            .line_offset()
            .saturating_add(u32::try_from(i).unwrap_or(u32::MAX))
            .saturating_add(1);
        if no < start.line {
            continue;
        }
        if end.is_some_and(|e| no >= e) {
            break;
        }
        let newline = if line.ends_with('\n') { "\n" } else { "" };
        let body = line.trim_end_matches(['\n', '\r']);
        if no > start.line {
            let trimmed = body.trim_start();
            let lead = body.len() - trimmed.len();
            if !trimmed.is_empty() && !trimmed.starts_with('#') && lead < indent {
                break;
            }
            text.push_str(body);
            text.push_str(newline);
        } else {
            // Blank the `- ` (and the indentation) before the item, keeping columns.
            let cut = body
                .char_indices()
                .nth(indent)
                .map_or(body.len(), |(b, _)| b);
            text.push_str(&" ".repeat(body[..cut].chars().count()));
            text.push_str(&body[cut..]);
            text.push_str(newline);
        }
    }
    Document::from_lines(index, start.line, start.line.saturating_sub(1), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_documents_are_refused_with_the_limit() {
        // 40,000 tiny documents (360 KB) took 1.7 GB and 30 s before being read; a file of
        // more than 1,000 documents is refused at once, saying the limit
        let text = "---\na: 1\n".repeat(40_000);
        let Err(err) = read_objects("many.yaml", &text) else {
            panic!("40,000 documents were accepted");
        };
        assert_eq!(
            err.to_string(),
            "many.yaml:2002:1: the file holds more than 1000 YAML documents; allowed: at most 1000 (split it into several files)"
        );
    }

    const LIST: &str = "\
apiVersion: v1
items:
- apiVersion: serving.knative.dev/v1
  kind: Service
  metadata:
    name: a
  spec:
    template:
      metadata:
        annotations:
          autoscaling.knative.dev/min-scale: \"2\"
- apiVersion: serving.knative.dev/v1
  kind: Revision
  metadata:
    name: a-00001
kind: List
metadata:
  resourceVersion: \"\"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
data:
  min-scale: \"1\"
";

    #[test]
    fn cuts_lists_and_documents_into_objects_keeping_positions() {
        let objs = read_objects("l.yaml", LIST).expect("valid");
        let got: Vec<(&str, &str, u32)> = objs
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.pos.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Service", "a", 3),
                ("Revision", "a-00001", 12),
                ("ConfigMap", "config-autoscaler", 20)
            ]
        );
        assert_eq!(
            objs[1].kind_pos,
            SourcePos {
                line: 13,
                column: 9
            }
        );
        // The item's text starts at its own line (3) and keeps the file's lines: min-scale's
        // value is on line 11 of the file.
        assert_eq!(objs[0].doc.line_offset(), 2);
        assert_eq!(
            objs[0].doc.text().lines().nth(10 - 2),
            Some("          autoscaling.knative.dev/min-scale: \"2\"")
        );
        // The List's own keys after the items are not part of the last item.
        assert!(!objs[1].doc.text().contains("resourceVersion"));
    }

    #[test]
    fn refuses_what_it_cannot_cut() {
        // (text, line, message fragment)
        let table = [
            // a List of another API version
            (
                "apiVersion: v2\nkind: List\nitems: []\n",
                1,
                "allowed: \"v1\"",
            ),
            // items in flow style on one line
            (
                "apiVersion: v1\nkind: List\nitems: [{kind: A}, {kind: B}]\n",
                3,
                "block style",
            ),
            // a List inside a List
            (
                "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n",
                4,
                "inside a List",
            ),
        ];
        for (text, line, fragment) in table {
            let err = read_objects("x.yaml", text).expect_err(text);
            assert_eq!(err.pos.map(|p| p.line), Some(line), "{err}");
            assert!(err.message.contains(fragment), "{err}");
        }
    }
}
