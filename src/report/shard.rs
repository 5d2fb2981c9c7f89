//! The shard file (issue 18, docs/scale-out.md): what one shard of a sweep (or of a load run)
//! writes, and the reader `splitlab merge` checks a set of shards with.
//!
//! A shard is JSON Lines: line 1 the [`Header`], then one line per work item the shard ran,
//! `{"i": <global index>, "r": <the command's kept result>}`. Shard `I` of `N` runs the
//! indices `i` with `i % N == I` ([`indices`]).
//!
//! Owns: the format, its writer, and every refusal of a shard set (a bad header, shards of
//! different grids or versions, a shard index twice or missing, an item outside the grid, twice
//! or missing, a truncated line), each naming the file and line.
//! Must not: know what a command keeps of a run (`R` is the command's), run anything, or
//! read the scenario the header embeds.
//!
//! Invariants: f64 values round-trip exactly (serde_json's `float_roundtrip`), so outputs rebuilt
//! from shards are the bytes a single process writes (kept results hold finite floats only:
//! JSON has no NaN or infinity); [`read_items`] returns every item of `0..total` exactly once,
//! in index order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The `format` of line 1.
pub const FORMAT: &str = "splitlab-shard/1";

/// The file shard `I` writes into its output directory.
pub fn file_name(shard: usize) -> String {
    format!("shard-{shard}.jsonl")
}

/// Line 1 of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// The subcommand that ran the shard (`compare`, `plan`, `advise`, `load`).
    pub command: String,
    /// The splitlab version that wrote it (CARGO_PKG_VERSION).
    pub version: String,
    /// The command's arguments, normalized, without the scenario and without
    /// `--shard`/`--shards`/`--out`/`--emit`/`--jobs`: parsing them again gives the same grid.
    pub args: Vec<String>,
    /// The scenario as given and its full text, so merging needs no files.
    pub scenario: EmbeddedScenario,
    /// This shard's index, 0-based.
    pub shard: usize,
    /// How many shards the grid is split into.
    pub shards: usize,
    /// Work items in the whole grid (runs for a sweep; `shards` for load).
    pub total: usize,
}

/// The scenario a shard ran, embedded in its header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedScenario {
    /// As given on the command line.
    pub path: String,
    /// The file's full text.
    pub text: String,
}

/// Which part of a grid a process runs: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

/// Parses `I/N` (`--shard`): `I` below `N`, `N` at least 1.
pub fn parse_spec(text: &str) -> Result<ShardSpec, String> {
    let allowed = "allowed: I/N with 0 <= I < N (I is 0-based, as JOB_COMPLETION_INDEX)";
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("invalid --shard {text:?}: no \"/\"; {allowed}"))?;
    let num = |s: &str| s.trim().parse::<usize>().ok();
    match (num(i), num(n)) {
        (Some(index), Some(count)) if count >= 1 && index < count => Ok(ShardSpec { index, count }),
        _ => Err(format!("invalid --shard {text:?}: {allowed}")),
    }
}

/// The indices shard `spec` runs of a grid of `total` items, ascending: `i % N == I`
/// (round-robin, so every shard gets a share of every cell).
pub fn indices(spec: ShardSpec, total: usize) -> impl Iterator<Item = usize> {
    (spec.index..total).step_by(spec.count.max(1))
}

/// Why a set of shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: io::Error },
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Mismatch { file: String, message: String },
    #[error("{0}")]
    Set(String),
}

fn at(file: &Path, line: usize, message: impl Into<String>) -> ShardError {
    ShardError::At {
        file: file.display().to_string(),
        line,
        message: message.into(),
    }
}

/// One item line, as written.
#[derive(Serialize)]
struct ItemOut<'a, R> {
    i: usize,
    r: &'a R,
}

/// One item line, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn<R> {
    i: usize,
    r: R,
}

/// Writes a shard: the header line, then one line per item.
pub struct ShardWriter<W: Write> {
    out: W,
}

impl<W: Write> ShardWriter<W> {
    /// Starts a shard on `out` with its header line.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(ShardWriter { out })
    }

    /// Writes item `i`'s kept result.
    pub fn item<R: Serialize>(&mut self, i: usize, r: &R) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &ItemOut { i, r })?;
        self.out.write_all(b"\n")
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads one line with its newline; `None` at the end of the file. A last line without its
/// newline is a shard cut short (a killed pod, a truncated copy).
fn read_line(
    reader: &mut impl BufRead,
    file: &Path,
    line: usize,
    buf: &mut String,
) -> Result<Option<()>, ShardError> {
    buf.clear();
    let n = reader.read_line(buf).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => at(file, line, "invalid UTF-8; a shard is UTF-8 JSON Lines"),
        _ => ShardError::Read {
            file: file.display().to_string(),
            source: e,
        },
    })?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with('\n') {
        return Err(at(
            file,
            line,
            "truncated: the last line has no newline (the shard was cut short); run this shard again",
        ));
    }
    Ok(Some(()))
}

fn open(file: &Path) -> Result<BufReader<File>, ShardError> {
    File::open(file)
        .map(BufReader::new)
        .map_err(|source| ShardError::Read {
            file: file.display().to_string(),
            source,
        })
}

/// Reads and checks line 1 of `file`.
pub fn read_header(file: &Path) -> Result<Header, ShardError> {
    let mut reader = open(file)?;
    let mut buf = String::new();
    if read_line(&mut reader, file, 1, &mut buf)?.is_none() {
        return Err(at(
            file,
            1,
            "empty file; a shard starts with its header line",
        ));
    }
    parse_header(file, &buf)
}

/// Parses a header line.
fn parse_header(file: &Path, line: &str) -> Result<Header, ShardError> {
    // The format first, so a file of another kind is named as such, not by a missing field.
    let format = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(String::from));
    match format.as_deref() {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(at(
                file,
                1,
                format!("unknown shard format {other:?}; allowed: {FORMAT:?} (a shard written by another splitlab version?)"),
            ))
        }
        None => {
            return Err(at(
                file,
                1,
                format!("not a splitlab shard: line 1 is not a header with \"format\":{FORMAT:?}"),
            ))
        }
    }
    let header: Header = serde_json::from_str(line)
        .map_err(|e| at(file, 1, format!("invalid shard header: {e}")))?;
    if header.shards == 0 || header.shard >= header.shards {
        return Err(at(
            file,
            1,
            format!(
                "invalid shard header: shard {} of {}; allowed: 0 <= shard < shards",
                header.shard, header.shards
            ),
        ));
    }
    Ok(header)
}

/// Checks that `shards` (file, header) are the whole of one grid: the same command, version,
/// args, scenario, shard count and total, each shard index once, none missing. Returns the
/// grid's header (the first file's, with its shard index).
pub fn check_set(shards: &[(PathBuf, Header)]) -> Result<Header, ShardError> {
    let Some((first_file, first)) = shards.first() else {
        return Err(ShardError::Set("no shard given".to_string()));
    };
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for (file, h) in shards {
        let differs = |what: &str, this: &dyn std::fmt::Debug, theirs: &dyn std::fmt::Debug| {
            ShardError::Mismatch {
                file: file.display().to_string(),
                message: format!(
                    "{what} {this:?} differs from {}'s {theirs:?}; merge only the shards of one run",
                    first_file.display()
                ),
            }
        };
        if h.command != first.command {
            return Err(differs("command", &h.command, &first.command));
        }
        if h.version != first.version {
            return Err(differs("splitlab version", &h.version, &first.version));
        }
        if h.args != first.args {
            return Err(differs("args", &h.args, &first.args));
        }
        if h.scenario.path != first.scenario.path {
            return Err(differs("scenario", &h.scenario.path, &first.scenario.path));
        }
        if h.scenario.text != first.scenario.text {
            return Err(ShardError::Mismatch {
                file: file.display().to_string(),
                message: format!(
                    "the text of scenario {:?} differs from {}'s (the file changed between shards); merge only the shards of one run",
                    h.scenario.path,
                    first_file.display()
                ),
            });
        }
        if h.shards != first.shards {
            return Err(differs("shard count", &h.shards, &first.shards));
        }
        if h.total != first.total {
            return Err(differs("total", &h.total, &first.total));
        }
        if let Some(other) = seen.insert(h.shard, file) {
            return Err(ShardError::Set(format!(
                "{} and {} are both shard {} of {}; give each shard once",
                other.display(),
                file.display(),
                h.shard,
                h.shards
            )));
        }
    }
    let missing: Vec<String> = (0..first.shards)
        .filter(|i| !seen.contains_key(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Set(format!(
            "shard{} {} of {} missing (given: {}); merge needs every shard",
            if missing.len() == 1 { "" } else { "s" },
            list(&missing),
            first.shards,
            list(&seen.keys().map(|k| k.to_string()).collect::<Vec<_>>())
        )));
    }
    Ok(first.clone())
}

/// `a, b, c`, or the first 10 and how many more.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// Reads the items of every shard in `files` (checked by [`check_set`] against `grid`), in
/// index order: each of `0..grid.total` exactly once, each from the shard that runs it.
pub fn read_items<R: DeserializeOwned>(
    files: &[PathBuf],
    grid: &Header,
) -> Result<Vec<R>, ShardError> {
    let mut items: Vec<Option<R>> = Vec::new();
    items.resize_with(grid.total, || None);
    let mut buf = String::new();
    for file in files {
        let mut reader = open(file)?;
        if read_line(&mut reader, file, 1, &mut buf)?.is_none() {
            return Err(at(
                file,
                1,
                "empty file; a shard starts with its header line",
            ));
        }
        let shard = parse_header(file, &buf)?.shard;
        let mut line = 1;
        loop {
            line += 1;
            if read_line(&mut reader, file, line, &mut buf)?.is_none() {
                break;
            }
            let item: ItemIn<R> = serde_json::from_str(&buf)
                .map_err(|e| at(file, line, format!("invalid item: {e}")))?;
            let i = item.i;
            if i >= grid.total {
                return Err(at(
                    file,
                    line,
                    format!("item {i} is outside the grid's 0..{}", grid.total),
                ));
            }
            if i % grid.shards != shard {
                return Err(at(
                    file,
                    line,
                    format!(
                        "item {i} belongs to shard {} of {}, not to this shard {shard}",
                        i % grid.shards,
                        grid.shards
                    ),
                ));
            }
            if items[i].is_some() {
                return Err(at(file, line, format!("item {i} is given twice")));
            }
            items[i] = Some(item.r);
        }
    }
    let missing: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Set(format!(
            "{} of {} items missing: {} (a shard cut short between lines?); run the shards that hold them again",
            missing.len(),
            grid.total,
            list(&missing)
        )));
    }
    Ok(items.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(shard: usize, shards: usize, total: usize) -> Header {
        Header {
            format: FORMAT.to_string(),
            command: "compare".to_string(),
            version: "0.1.0".to_string(),
            args: vec!["--seeds=2".to_string()],
            scenario: EmbeddedScenario {
                path: "s.yaml".to_string(),
                text: "name: s\n".to_string(),
            },
            shard,
            shards,
            total,
        }
    }

    /// Writes shard `h` with items `(i, r)` into `dir`, returning its path.
    fn write(dir: &Path, name: &str, h: &Header, items: &[(usize, f64)]) -> PathBuf {
        let mut w = ShardWriter::new(Vec::new(), h).expect("vec");
        for (i, r) in items {
            w.item(*i, r).expect("vec");
        }
        let path = dir.join(name);
        std::fs::write(&path, w.finish().expect("vec")).expect("write");
        path
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("splitlab-shard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn shard_specs_parse_and_split_round_robin() {
        // (text, the spec or a fragment of the error)
        type Want = Result<(usize, usize), &'static str>;
        let cases: [(&str, Want); 6] = [
            ("0/1", Ok((0, 1))),        // the whole grid
            ("2/3", Ok((2, 3))),        // the last of three
            ("3/3", Err("0 <= I < N")), // I is 0-based
            ("0/0", Err("0 <= I < N")), // no shard at all
            ("1", Err("no \"/\"")),     // the count is needed
            ("a/b", Err("0 <= I < N")), // not numbers
        ];
        for (text, want) in cases {
            match (parse_spec(text), want) {
                (Ok(s), Ok((i, n))) => assert_eq!((s.index, s.count), (i, n), "{text}"),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, wanted {want:?}"),
            }
        }
        // Every index of a 10-item grid in exactly one of 3 shards.
        let mut all: Vec<usize> = (0..3)
            .flat_map(|index| indices(ShardSpec { index, count: 3 }, 10))
            .collect();
        assert_eq!(
            indices(ShardSpec { index: 1, count: 3 }, 10).collect::<Vec<_>>(),
            [1, 4, 7]
        );
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shards_round_trip_exactly_in_index_order() {
        let dir = temp("roundtrip");
        // values whose shortest decimal form needs all 17 digits
        let values = [
            0.1 + 0.2,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            2.0f64.sqrt() * 1e300,
            -0.0,
        ];
        let files: Vec<PathBuf> = (0..2)
            .map(|s| {
                let items: Vec<(usize, f64)> = indices(ShardSpec { index: s, count: 2 }, 5)
                    .map(|i| (i, values[i]))
                    .collect();
                write(&dir, &file_name(s), &header(s, 2, 5), &items)
            })
            .rev()
            .collect();
        let headers: Vec<(PathBuf, Header)> = files
            .iter()
            .map(|f| (f.clone(), read_header(f).expect("header")))
            .collect();
        let grid = check_set(&headers).expect("one grid");
        let got: Vec<f64> = read_items(&files, &grid).expect("items");
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_shard_sets_are_refused_with_the_file_and_the_reason() {
        let dir = temp("refusals");
        let ok0 = write(&dir, "a0", &header(0, 2, 4), &[(0, 1.0), (2, 2.0)]);
        let ok1 = write(&dir, "a1", &header(1, 2, 4), &[(1, 1.0), (3, 2.0)]);
        let mut other_args = header(1, 2, 4);
        other_args.args = vec!["--seeds=3".to_string()];
        let args1 = write(&dir, "b1", &other_args, &[(1, 1.0), (3, 2.0)]);
        let mut other_version = header(1, 2, 4);
        other_version.version = "9.9.9".to_string();
        let version1 = write(&dir, "v1", &other_version, &[(1, 1.0), (3, 2.0)]);
        let mut other_text = header(1, 2, 4);
        other_text.scenario.text = "name: t\n".to_string();
        let text1 = write(&dir, "t1", &other_text, &[(1, 1.0), (3, 2.0)]);
        let dup = write(&dir, "d1", &header(1, 2, 4), &[(1, 1.0), (1, 2.0)]);
        let short = write(&dir, "s1", &header(1, 2, 4), &[(1, 1.0)]);
        let outside = write(&dir, "o1", &header(1, 2, 4), &[(1, 1.0), (5, 2.0)]);
        let foreign = write(&dir, "f1", &header(1, 2, 4), &[(1, 1.0), (2, 2.0)]);
        let cut = dir.join("c1");
        let text = std::fs::read_to_string(&ok1).expect("read");
        std::fs::write(&cut, &text[..text.len() - 3]).expect("write");
        let not_shard = dir.join("n1");
        std::fs::write(&not_shard, "t_s,revision\n").expect("write");
        let d = |p: &PathBuf| p.display().to_string();
        // (files, the error)
        let cases: Vec<(Vec<&PathBuf>, String)> = vec![
            // a shard of another grid
            (vec![&ok0, &args1], format!("{}: args [\"--seeds=3\"] differs from {}'s [\"--seeds=2\"]; merge only the shards of one run", d(&args1), d(&ok0))),
            // another version
            (vec![&ok0, &version1], format!("{}: splitlab version \"9.9.9\" differs from {}'s \"0.1.0\"; merge only the shards of one run", d(&version1), d(&ok0))),
            // the scenario file changed between shards
            (vec![&ok0, &text1], format!("{}: the text of scenario \"s.yaml\" differs from {}'s (the file changed between shards); merge only the shards of one run", d(&text1), d(&ok0))),
            // the same shard twice
            (vec![&ok0, &ok0], format!("{} and {} are both shard 0 of 2; give each shard once", d(&ok0), d(&ok0))),
            // a shard missing
            (vec![&ok1], "shard 0 of 2 missing (given: 1); merge needs every shard".to_string()),
            // an item twice
            (vec![&ok0, &dup], format!("{}:3: item 1 is given twice", d(&dup))),
            // an item missing (a shard cut between lines)
            (vec![&ok0, &short], "1 of 4 items missing: 3 (a shard cut short between lines?); run the shards that hold them again".to_string()),
            // an item outside the grid
            (vec![&ok0, &outside], format!("{}:3: item 5 is outside the grid's 0..4", d(&outside))),
            // an item of another shard
            (vec![&ok0, &foreign], format!("{}:3: item 2 belongs to shard 0 of 2, not to this shard 1", d(&foreign))),
            // a truncated last line
            (vec![&ok0, &cut], format!("{}:3: truncated: the last line has no newline (the shard was cut short); run this shard again", d(&cut))),
            // not a shard at all
            (vec![&not_shard], format!("{}:1: not a splitlab shard: line 1 is not a header with \"format\":\"splitlab-shard/1\"", d(&not_shard))),
        ];
        for (files, want) in cases {
            let result = (|| {
                let headers = files
                    .iter()
                    .map(|f| Ok(((*f).clone(), read_header(f)?)))
                    .collect::<Result<Vec<_>, ShardError>>()?;
                let grid = check_set(&headers)?;
                let files: Vec<PathBuf> = files.iter().map(|f| (*f).clone()).collect();
                read_items::<f64>(&files, &grid)
            })();
            match result {
                Err(e) => assert_eq!(e.to_string(), want),
                Ok(items) => panic!("merged {items:?}, wanted: {want}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
