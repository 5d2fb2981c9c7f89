//! A YAML document as a plain tree that remembers where every node came from: the file (with
//! its line and column) or one `--set` override. `load` uses it for three things serde cannot
//! do: applying `--set PATH=VALUE` before the typed parse, writing the overridden document back
//! out as YAML, and finding the source of a field path named in an error.
//!
//! Built from the event stream of the parser serde-saphyr itself uses (`granit_parser`), so
//! scalars keep their text and quoting: a re-emitted document means to serde exactly what the
//! original meant.
//!
//! Must not: interpret values (that is the typed mirror's job) or open files.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};

use crate::scenario::yaml::SourcePos;

/// Where a node came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The scenario file; the node's `pos` is meaningful.
    File,
    /// The `--set` override with this index.
    Set(usize),
}

/// One YAML node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub pos: SourcePos,
    pub origin: Origin,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A scalar's text after YAML escape processing. `quoted` scalars are always strings; plain
    /// ones are typed by their text (`5`, `true`, `~`).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: SourcePos,
    pub value: Node,
}

/// The text could not be read as one YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TreeError {
    pub pos: Option<SourcePos>,
    pub message: String,
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A mapping key, or a list index written as a dotted segment (`revisions.0`): which one
    /// it is depends on the node it is applied to.
    Name(String),
    /// `[i]`: a list index.
    Index(usize),
}

/// Alias expansion copies nodes; a document that would grow past this many nodes (a "billion
/// laughs" file) is refused rather than expanded.
const MAX_NODES: usize = 1_000_000;

fn pos_of(span: &Span) -> SourcePos {
    SourcePos {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
        column: u32::try_from(span.start.col().saturating_add(1)).unwrap_or(u32::MAX),
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|e| count_nodes(&e.value)).sum(),
    }
}

/// A collection being built.
enum Frame {
    Seq {
        pos: SourcePos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: SourcePos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<(String, SourcePos)>,
    },
}

/// Reads the first (and only) YAML document of `text`. Every node gets `origin`; positions are
/// positions in `text`.
pub(crate) fn parse(text: &str, origin: Origin) -> Result<Node, TreeError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: std::collections::BTreeMap<usize, Node> = Default::default();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    let mut documents = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| TreeError {
            pos: Some(SourcePos {
                line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                column: u32::try_from(e.marker().col().saturating_add(1)).unwrap_or(u32::MAX),
            }),
            message: e.info().to_string(),
        })?;
        let pos = pos_of(&span);
        let done: Option<(Node, usize)> = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(TreeError {
                        pos: Some(pos),
                        message: "expected one YAML document, found several".to_string(),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != ScalarStyle::Plain
                    || tag
                        .as_deref()
                        .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                Some((
                    Node {
                        pos,
                        origin,
                        kind: Kind::Scalar {
                            text: text.into_owned(),
                            quoted,
                        },
                    },
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(TreeError {
                        pos: Some(pos),
                        message: "alias to an unknown anchor".to_string(),
                    });
                };
                let mut copy = target.clone();
                copy.pos = pos;
                Some((copy, 0))
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => Some((
                    Node {
                        pos,
                        origin,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                )),
                Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        pos,
                        origin,
                        kind: Kind::Map(entries),
                    },
                    anchor,
                )),
                None => {
                    return Err(TreeError {
                        pos: Some(pos),
                        message: "unbalanced YAML collection".to_string(),
                    })
                }
            },
            _ => None,
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        nodes = nodes.saturating_add(count_nodes(&node));
        if nodes > MAX_NODES {
            return Err(TreeError {
                pos: Some(pos),
                message: format!("the document expands to more than {MAX_NODES} nodes"),
            });
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some((key, key_pos)) => entries.push(Entry {
                    key,
                    key_pos,
                    value: node,
                }),
                None => match node.kind {
                    Kind::Scalar { text, .. } => *key = Some((text, node.pos)),
                    _ => {
                        return Err(TreeError {
                            pos: Some(node.pos),
                            message: "a mapping key must be a scalar".to_string(),
                        })
                    }
                },
            },
        }
    }
    root.ok_or(TreeError {
        pos: None,
        message: "the text holds no YAML document".to_string(),
    })
}

impl Node {
    fn empty_map(origin: Origin) -> Node {
        Node {
            pos: SourcePos::default(),
            origin,
            kind: Kind::Map(Vec::new()),
        }
    }

    /// A plain scalar meaning null (`~`, `null`, or nothing at all).
    fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, quoted: false }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Sets every node's origin.
    pub(crate) fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
        match &mut self.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.set_origin(origin)),
            Kind::Map(entries) => entries.iter_mut().for_each(|e| e.value.set_origin(origin)),
        }
    }
}

/// Parses a field path: `revisions.0.pods`, `revisions[0].pods` and `arrivals.tags.canary` are
/// all accepted.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    for piece in path.split('.') {
        let (name, mut rest) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("empty segment in path {path:?}"));
        }
        if !name.is_empty() {
            segs.push(Seg::Name(name.to_string()));
        }
        while !rest.is_empty() {
            let index = rest
                .strip_prefix('[')
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, after)| i.parse::<usize>().ok().map(|i| (i, after)));
            match index {
                Some((i, after)) => {
                    segs.push(Seg::Index(i));
                    rest = after;
                }
                None => return Err(format!("bad list index in path {path:?}")),
            }
        }
    }
    Ok(segs)
}

fn render_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Name(n) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(n);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether two paths name the same node, taking `revisions.0` and `revisions[0]` as equal.
pub(crate) fn same_path(a: &[Seg], b: &[Seg]) -> bool {
    let index = |s: &Seg| match s {
        Seg::Index(i) => Some(*i),
        Seg::Name(n) => n.parse::<usize>().ok(),
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (index(x), index(y)) {
            (Some(i), Some(j)) => i == j,
            _ => x == y,
        })
}

/// Replaces (or creates) the node at `path` with `value`. Missing mapping keys are created, as
/// are the mappings leading to them (a null value counts as an empty mapping); a path through
/// a scalar or past the end of a list is an error naming the path walked so far.
pub(crate) fn apply_set(root: &mut Node, path: &[Seg], value: Node) -> Result<(), String> {
    let origin = value.origin;
    let mut node = root;
    for (depth, seg) in path.iter().enumerate() {
        let walked = render_path(&path[..depth]);
        let here = if walked.is_empty() {
            "the document".to_string()
        } else {
            walked.clone()
        };
        if node.is_null() {
            let pos = node.pos;
            *node = Node::empty_map(origin);
            node.pos = pos;
        }
        node = match &mut node.kind {
            Kind::Map(entries) => {
                let key = match seg {
                    Seg::Name(n) => n.clone(),
                    Seg::Index(i) => {
                        return Err(format!(
                            "{here} is a mapping, not a list; [{i}] cannot index it"
                        ))
                    }
                };
                let index = match entries.iter().rposition(|e| e.key == key) {
                    Some(i) => i,
                    None => {
                        entries.push(Entry {
                            key,
                            key_pos: SourcePos::default(),
                            value: Node::empty_map(origin),
                        });
                        entries.len() - 1
                    }
                };
                &mut entries[index].value
            }
            Kind::Seq(items) => {
                let len = items.len();
                let index = match seg {
                    Seg::Index(i) => Some(*i),
                    Seg::Name(n) => n.parse::<usize>().ok(),
                };
                match index {
                    Some(i) if i < len => &mut items[i],
                    Some(i) => {
                        return Err(format!(
                            "index {i} is out of range: {here} has {len} item(s)"
                        ))
                    }
                    None => {
                        return Err(format!(
                            "{here} is a list; {} is not an index",
                            render_path(std::slice::from_ref(seg))
                        ))
                    }
                }
            }
            Kind::Scalar { text, .. } => {
                return Err(format!(
                    "{here} is a scalar ({text:?}) and has no field {}",
                    render_path(std::slice::from_ref(seg))
                ))
            }
        };
    }
    *node = value;
    Ok(())
}

/// What `locate` found for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Located {
    /// Where the deepest node on the path that exists came from.
    pub origin: Origin,
    /// That node's position.
    pub pos: SourcePos,
    /// The position of its key, when it is a mapping value.
    pub key_pos: Option<SourcePos>,
}

impl Node {
    /// The node at exactly `path`, if the document has one.
    pub(crate) fn get(&self, path: &[Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (&node.kind, seg) {
                (Kind::Map(entries), Seg::Name(n)) => {
                    &entries.iter().rev().find(|e| &e.key == n)?.value
                }
                (Kind::Seq(items), Seg::Index(i)) => items.get(*i)?,
                (Kind::Seq(items), Seg::Name(n)) => items.get(n.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Follows a field path as far as the document goes and reports the deepest node reached.
    pub(crate) fn locate(&self, path: &[Seg]) -> Located {
        let mut node = self;
        let mut key_pos = None;
        for seg in path {
            let next = match (&node.kind, seg) {
                (Kind::Map(entries), Seg::Name(n)) => {
                    entries.iter().rev().find(|e| &e.key == n).map(|e| {
                        (
                            &e.value,
                            Some(e.key_pos).filter(|_| e.value.origin == Origin::File),
                        )
                    })
                }
                (Kind::Seq(items), Seg::Index(i)) => items.get(*i).map(|n| (n, None)),
                (Kind::Seq(items), Seg::Name(n)) => n
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|n| (n, None)),
                _ => None,
            };
            match next {
                Some((n, k)) => {
                    node = n;
                    key_pos = k;
                }
                None => break,
            }
        }
        Located {
            origin: node.origin,
            pos: node.pos,
            key_pos,
        }
    }
}

/// Writes the tree back out as block YAML. Quoted scalars are written double-quoted and plain
/// ones as they were, so each value keeps its YAML type.
pub(crate) fn to_yaml(root: &Node) -> String {
    let mut out = String::new();
    if is_inline(root) {
        out.push_str(&inline(root));
        out.push('\n');
    } else {
        emit_block(root, 0, &mut out);
    }
    out
}

fn is_inline(node: &Node) -> bool {
    match &node.kind {
        Kind::Scalar { .. } => true,
        Kind::Seq(items) => items.is_empty(),
        Kind::Map(entries) => entries.is_empty(),
    }
}

fn quote(text: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar with the same value.
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

fn inline(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar { text, quoted } => {
            let plain_safe = !text.contains('\n')
                && text.trim() == text
                && !text.contains(": ")
                && !text.contains(" #");
            if *quoted || !plain_safe {
                quote(text)
            } else {
                text.clone()
            }
        }
        Kind::Seq(_) => "[]".to_string(),
        Kind::Map(_) => "{}".to_string(),
    }
}

fn key_text(key: &str) -> String {
    let plain = key == "<<"
        || (!key.is_empty()
            && key.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')));
    if plain {
        key.to_string()
    } else {
        quote(key)
    }
}

fn emit_block(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match &node.kind {
        Kind::Map(entries) => {
            for e in entries {
                out.push_str(&pad);
                out.push_str(&key_text(&e.key));
                out.push(':');
                emit_value(&e.value, indent, false, out);
            }
        }
        Kind::Seq(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                emit_value(item, indent, true, out);
            }
        }
        Kind::Scalar { .. } => {
            out.push_str(&pad);
            out.push_str(&inline(node));
            out.push('\n');
        }
    }
}

/// Writes what follows `key:` or `-`.
fn emit_value(node: &Node, indent: usize, in_seq: bool, out: &mut String) {
    if is_inline(node) {
        let text = inline(node);
        if !text.is_empty() {
            out.push(' ');
            out.push_str(&text);
        }
        out.push('\n');
        return;
    }
    let mut block = String::new();
    emit_block(node, indent + 2, &mut block);
    if in_seq {
        // `- first: line` then the rest indented under it: the first line's indentation is
        // replaced by the dash already written.
        out.push(' ');
        out.push_str(block.get(indent + 2..).unwrap_or(&block));
    } else {
        out.push('\n');
        out.push_str(&block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, column: u32) -> SourcePos {
        SourcePos { line, column }
    }

    const DOC: &str = "\
name: x   # a comment
service:
  rollout_duration: 120s
revisions:
  - name: a
    pods: 3
  - {name: b, pods: 4}
quoted: \"5\"
empty:
anchor: &d {mean: 1s}
alias: *d
";

    #[test]
    fn positions_of_paths() {
        let tree = parse(DOC, Origin::File).expect("valid");
        // (path, expected node position, expected key position)
        let cases = [
            // a scalar mapping value
            ("service.rollout_duration", p(3, 21), Some(p(3, 3))),
            // a list item by index, both spellings
            ("revisions[1].pods", p(7, 21), Some(p(7, 15))),
            ("revisions.0.pods", p(6, 11), Some(p(6, 5))),
            // a list item itself: the mapping's first key
            ("revisions[0]", p(5, 5), None),
            // a path past the document stops at the deepest node that exists
            ("revisions[0].service_time.lognormal", p(5, 5), None),
            ("revisions[9]", p(5, 3), Some(p(4, 1))),
            // an alias takes the alias's position
            ("alias", p(11, 8), Some(p(11, 1))),
        ];
        for (path, pos, key_pos) in cases {
            let found = tree.locate(&parse_path(path).expect("path"));
            assert_eq!((found.pos, found.key_pos), (pos, key_pos), "{path}");
            assert_eq!(found.origin, Origin::File);
        }
    }

    #[test]
    fn sets_replace_create_and_refuse() {
        // (path, value, expected error fragment or None)
        let cases = [
            // replace a scalar
            ("service.rollout_duration", "380s", None),
            // a list item by index
            ("revisions.1.pods", "20", None),
            // a new key, and the mappings leading to it
            ("client.timeout", "30s", None),
            // a null value counts as an empty mapping
            ("empty.x", "1", None),
            // through a scalar
            (
                "name.first",
                "1",
                Some("name is a scalar (\"x\") and has no field first"),
            ),
            // past the end of a list
            (
                "revisions.2.pods",
                "1",
                Some("index 2 is out of range: revisions has 2 item(s)"),
            ),
            // a name on a list
            (
                "revisions.first",
                "1",
                Some("revisions is a list; first is not an index"),
            ),
        ];
        for (path, value, want) in cases {
            let mut tree = parse(DOC, Origin::File).expect("valid");
            let value = parse(value, Origin::Set(0)).expect("value");
            let got = apply_set(&mut tree, &parse_path(path).expect("path"), value);
            match want {
                None => {
                    got.expect(path);
                    let found = tree.locate(&parse_path(path).expect("path"));
                    assert_eq!(found.origin, Origin::Set(0), "{path}");
                }
                Some(fragment) => {
                    let err = got.expect_err(path);
                    assert!(err.contains(fragment), "{path}: {err}");
                }
            }
        }
    }

    #[test]
    fn emitted_yaml_round_trips() {
        let tree = parse(DOC, Origin::File).expect("valid");
        let text = to_yaml(&tree);
        let again = parse(&text, Origin::File).expect("re-parse");
        fn strip(n: &Node) -> Node {
            let mut n = n.clone();
            n.pos = SourcePos::default();
            n.kind = match n.kind {
                Kind::Seq(items) => Kind::Seq(items.iter().map(strip).collect()),
                Kind::Map(entries) => Kind::Map(
                    entries
                        .iter()
                        .map(|e| Entry {
                            key: e.key.clone(),
                            key_pos: SourcePos::default(),
                            value: strip(&e.value),
                        })
                        .collect(),
                ),
                k => k,
            };
            n
        }
        assert_eq!(strip(&again), strip(&tree), "{text}");
        assert!(text.contains("quoted: \"5\"\n"), "{text}");
        assert!(text.contains("- name: a\n    pods: 3\n"), "{text}");
    }

    #[test]
    fn bad_documents_are_errors() {
        for text in [
            "a: [1\n",
            "a: 1\n---\nb: 2\n",
            "",
            "a: *nope\n",
            "? [a]\n: 1\n",
        ] {
            assert!(parse(text, Origin::File).is_err(), "{text:?}");
        }
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("a.b[2].c.3").expect("valid"),
            vec![
                Seg::Name("a".into()),
                Seg::Name("b".into()),
                Seg::Index(2),
                Seg::Name("c".into()),
                Seg::Name("3".into())
            ]
        );
        for bad in ["", "a..b", "a[x]", "a[1", ".a"] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }
}
