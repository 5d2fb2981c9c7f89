//! How a run's output files reach disk: atomic writes, CSV quoting, the fixed number formats
//! every file uses, and the spool `requests.csv` streams into while a run is going.
//!
//! Owns: the temp-file-and-rename dance, the spool file's lifetime, `WriteError`.
//!
//! Must not: compute measurements (that is `run`) or choose what goes into a file.
//!
//! Invariants: a target file is either left as it was or replaced by a complete new one, never
//! half written (the bytes go to a temp file in the same directory, are synced, then renamed
//! over the target, and the temp file is removed on any failure). Every formatter here is a pure
//! function of its input with a fixed number of decimals, so the same input gives the same bytes.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writing a run's files failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create output directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("cannot remove stale {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    /// The request log could not be spooled during the run, so `requests.csv` would be incomplete.
    #[error("request log spool {} failed during the run: {message}", path.display())]
    Spool { path: PathBuf, message: String },
    #[error("cannot encode summary.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Distinguishes temp files of concurrent writers in one process (the pid separates processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(prefix: &str, suffix: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}{suffix}", std::process::id())
}

/// Writes `dir/name` atomically: `fill` writes into a temp file in `dir` (same file system, so
/// the rename is atomic), which is synced and renamed over the target. On any failure the temp
/// file is removed and the target is untouched.
pub(crate) fn write_atomic(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), WriteError> {
    let target = dir.join(name);
    let temp = dir.join(temp_name(&format!(".{name}."), ".tmp"));
    let result = (|| {
        // create_new: never truncate someone else's file that happens to have this name.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let mut out = BufWriter::new(file);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        // Sync before the rename so a crash cannot leave a renamed but empty file.
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    if let Err(source) = result {
        // Best effort: the error worth reporting is the one that made the write fail.
        let _ = fs::remove_file(&temp);
        return Err(WriteError::File {
            path: target,
            source,
        });
    }
    Ok(())
}

/// A file that is removed when this value is dropped.
#[derive(Debug)]
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        // Nothing useful can be done about a failure here; the file is in the temp directory.
        let _ = fs::remove_file(&self.0);
    }
}

/// The request log while a run is going: rows are appended to a temp file so the memory used
/// does not grow with the number of requests. The first I/O error is kept and reported by
/// `RunReport::write`, because the recorder's hot-path methods cannot return errors.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    temp: Option<TempPath>,
    out: Option<BufWriter<File>>,
    error: Option<String>,
}

impl SpoolWriter {
    /// Creates the spool in the system temp directory and writes `header` (a full line).
    pub(crate) fn create(header: &str) -> Self {
        let dir = std::env::temp_dir();
        let mut last_error = None;
        // A stale file from a crashed process may hold a name; try a few more.
        for _ in 0..16 {
            let path = dir.join(temp_name("splitlab-requests-", ".csv"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut spool = SpoolWriter {
                        temp: Some(TempPath(path)),
                        out: Some(BufWriter::new(file)),
                        error: None,
                    };
                    spool.append(|w| w.write_all(header.as_bytes()));
                    return spool;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        SpoolWriter {
            temp: None,
            out: None,
            error: Some(format!(
                "cannot create a spool file in {}: {}",
                dir.display(),
                last_error.map_or_else(|| "unknown error".to_owned(), |e| e.to_string())
            )),
        }
    }

    /// Appends with `write`, unless an earlier write failed (the log is then already unusable).
    pub(crate) fn append(&mut self, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = write(out) {
                self.error = Some(e.to_string());
                self.out = None;
            }
        }
    }

    /// Flushes and closes the spool.
    pub(crate) fn close(mut self) -> SpoolFile {
        if let Some(out) = self.out.take() {
            if let Err(e) = out.into_inner().map_err(|e| e.into_error()) {
                self.error = Some(e.to_string());
            }
        }
        SpoolFile {
            temp: self.temp.take(),
            error: self.error.take(),
        }
    }
}

/// The closed request log of a finished run; removed from disk when dropped.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    temp: Option<TempPath>,
    error: Option<String>,
}

impl SpoolFile {
    /// Whether the whole log reached the spool.
    pub(crate) fn check(&self) -> Result<(), WriteError> {
        match &self.error {
            None => Ok(()),
            Some(message) => Err(WriteError::Spool {
                path: self.path().to_path_buf(),
                message: message.clone(),
            }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.temp.as_ref().map_or(Path::new(""), |t| t.0.as_path())
    }

    pub(crate) fn copy_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut file = File::open(self.path())?;
        io::copy(&mut file, out)?;
        Ok(())
    }
}

/// Removes `dir/name` if it exists.
pub(crate) fn remove_if_present(dir: &Path, name: &str) -> Result<(), WriteError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WriteError::RemoveStale { path, source }),
    }
}

/// A CSV field, quoted (RFC 4180) only when it holds a comma, quote or line break.
pub(crate) fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Microseconds shown as milliseconds with exactly 3 decimals, by integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ms(pub u64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// A float with exactly 3 decimals; negative zero prints as `0.000`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Fixed3(pub f64);

impl fmt::Display for Fixed3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:.3}` of a tiny negative value would print "-0.000".
        let x = if self.0.abs() < 0.0005 { 0.0 } else { self.0 };
        write!(f, "{x:.3}")
    }
}

/// `x` rounded to 3 decimals, for JSON (serde_json then prints the shortest exact form).
pub(crate) fn round3(x: f64) -> f64 {
    let r = (x * 1000.0).round() / 1000.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Nanoseconds as seconds rounded to whole milliseconds, for JSON.
pub(crate) fn secs3(ns: i64) -> f64 {
    let ms = (i128::from(ns) + 500_000).div_euclid(1_000_000);
    ms as f64 / 1000.0
}

/// Microseconds as milliseconds, for JSON (exact to the microsecond).
pub(crate) fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_fixed() {
        // (value, text)
        let ms = [
            (0, "0.000"),            // zero
            (1, "0.001"),            // one microsecond
            (1_234_567, "1234.567"), // over a second
        ];
        for (us, text) in ms {
            assert_eq!(Ms(us).to_string(), text);
        }
        let fixed = [
            (0.0, "0.000"),
            (-0.0001, "0.000"), // no negative zero
            (33.333_333, "33.333"),
            (12.5, "12.500"),
            (-2.25, "-2.250"),
        ];
        for (x, text) in fixed {
            assert_eq!(Fixed3(x).to_string(), text);
        }
        assert_eq!(round3(1.234_56), 1.235);
        assert_eq!(secs3(1_234_499_999), 1.234);
        assert_eq!(secs3(1_234_500_000), 1.235);
        assert_eq!(us_to_ms(1_500), 1.5);
        assert_eq!(csv_field("plain-name"), "plain-name");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn spool_is_removed_when_dropped() {
        let mut spool = SpoolWriter::create("h\n");
        spool.append(|w| w.write_all(b"row\n"));
        let file = spool.close();
        file.check().expect("spool healthy");
        let path = file.path().to_path_buf();
        let mut copy = Vec::new();
        file.copy_to(&mut copy).expect("copy");
        assert_eq!(copy, b"h\nrow\n");
        drop(file);
        assert!(!path.exists());
    }
}
