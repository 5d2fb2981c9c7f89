//! How a run's output files reach disk: atomic writes, CSV quoting, the fixed number formats
//! every file uses, and the spool `requests.csv` streams into while a run is going.
//!
//! Owns: the temp-file-and-rename dance, the staging directory a run's files are written into
//! and moved out of together, the spool file's lifetime, `WriteError`.
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
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    #[error("request log spool {} failed during the run ({message}): requests.csv is not written", path.display())]
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
        // Nothing useful can be done about a failure here; the file is in a staging directory
        // that is removed as a whole at the end anyway.
        let _ = fs::remove_file(&self.0);
    }
}

/// The request log while a run is going: rows are appended to a file in the output
/// directory's staging area (see [`StagedDir`]), so the memory used does not grow with the
/// number of requests and the file never lands in the system temp directory. The first I/O
/// error is kept (the recorder's hot-path methods cannot return errors); the log is then
/// abandoned at once, its file removed to give the space back, and the run goes on.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    /// The spool's path, also when it could not be created (for the message).
    path: PathBuf,
    temp: Option<TempPath>,
    out: Option<BufWriter<File>>,
    error: Option<String>,
}

impl SpoolWriter {
    /// Creates the spool in `dir` and writes `header` (a full line).
    pub(crate) fn create(dir: &Path, header: &str) -> Self {
        let mut path = dir.join(temp_name(".requests.", ".spool"));
        let mut last_error = None;
        // A stale file from a crashed process may hold a name; try a few more.
        for _ in 0..16 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut spool = SpoolWriter {
                        path: path.clone(),
                        temp: Some(TempPath(path)),
                        out: Some(BufWriter::new(file)),
                        error: None,
                    };
                    spool.append(|w| w.write_all(header.as_bytes()));
                    return spool;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(e);
                    path = dir.join(temp_name(".requests.", ".spool"));
                }
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        SpoolWriter {
            path,
            temp: None,
            out: None,
            error: Some(format!(
                "cannot create it: {}",
                last_error.map_or_else(|| "unknown error".to_owned(), |e| e.to_string())
            )),
        }
    }

    /// Where the spool is (or was to be).
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends with `write`, unless an earlier write failed (the log is then already dropped).
    pub(crate) fn append(&mut self, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = write(out) {
                self.error = Some(e.to_string());
                self.out = None;
                // An incomplete log is of no use: give its space back now (a full disk is the
                // usual cause), so the run's other files can still be written.
                self.temp = None;
            }
        }
    }

    /// Flushes and closes the spool.
    pub(crate) fn close(mut self) -> SpoolFile {
        if let Some(out) = self.out.take() {
            if let Err(e) = out.into_inner().map_err(|e| e.into_error()) {
                self.error = Some(e.to_string());
                self.temp = None;
            }
        }
        SpoolFile {
            path: std::mem::take(&mut self.path),
            _temp: self.temp.take(),
            error: self.error.take(),
        }
    }
}

/// The closed request log of a finished run; removed from disk when dropped.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    path: PathBuf,
    /// Held for its `Drop`, which removes the file.
    _temp: Option<TempPath>,
    error: Option<String>,
}

impl SpoolFile {
    /// Whether the whole log reached the spool.
    pub(crate) fn check(&self) -> Result<(), WriteError> {
        match &self.error {
            None => Ok(()),
            Some(message) => Err(WriteError::Spool {
                path: self.path.clone(),
                message: message.clone(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn copy_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut file = File::open(&self.path)?;
        io::copy(&mut file, out)?;
        Ok(())
    }
}

/// Staging directories of this process that are not yet committed. The lock is also held
/// while one is committed, so an interrupt ([`abandon_staged`]) either comes before a commit
/// (and the output directory keeps its previous files) or after it (and it has all the new
/// ones), never in between.
static STAGED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn staged() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic elsewhere while holding the lock leaves a valid list.
    STAGED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh directory inside an output directory where a run's files are written, then moved
/// into the output directory together by [`StagedDir::commit`]. So an interrupted or failed
/// run never leaves its new files beside an older run's files: until the commit the output
/// directory is untouched, and the staging directory (with every temp file and the request
/// log spool in it) is removed when this value is dropped or by [`abandon_staged`] on a
/// signal.
#[derive(Debug)]
pub struct StagedDir {
    out: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Creates `out` (if missing) and a fresh `out/.staging-<pid>-<n>` in it.
    pub fn create(out: &Path) -> Result<StagedDir, WriteError> {
        let create_err = |path: &Path, source| WriteError::CreateDir {
            path: path.to_path_buf(),
            source,
        };
        fs::create_dir_all(out).map_err(|e| create_err(out, e))?;
        let mut list = staged();
        let mut last = None;
        for _ in 0..16 {
            let dir = out.join(temp_name(".staging-", ""));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    list.push(dir.clone());
                    return Ok(StagedDir {
                        out: out.to_path_buf(),
                        dir,
                        committed: false,
                    });
                }
                // A directory left by a killed process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((dir, e)),
                Err(e) => return Err(create_err(&dir, e)),
            }
        }
        let (dir, e) = last.expect("the loop ran and every attempt found a name taken");
        Err(create_err(&dir, e))
    }

    /// Where to write the run's files.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The output directory the files are moved into.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Moves every staged file into the output directory (each by an atomic rename over the
    /// old one), removes each of `stale` (names an earlier run may have written and this one
    /// did not) from it, and removes the staging directory. Signals wait until this is done.
    pub fn commit(mut self, stale: &[&str]) -> Result<(), WriteError> {
        let mut list = staged();
        if !list.contains(&self.dir) {
            // Abandoned by an interrupt between the last write and this commit.
            return Err(WriteError::File {
                path: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::Interrupted, "interrupted"),
            });
        }
        let file_err = |path: PathBuf, source| WriteError::File { path, source };
        let mut names = fs::read_dir(&self.dir)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(|e| file_err(self.dir.clone(), e))?;
        // Temp files of writes that failed are removed by `write_atomic`; the spool by its
        // owner. Anything else hidden is not an output.
        names.retain(|n| !n.to_string_lossy().starts_with('.'));
        names.sort();
        for name in &names {
            let from = self.dir.join(name);
            let to = self.out.join(name);
            fs::rename(&from, &to).map_err(|e| file_err(to, e))?;
        }
        for name in stale {
            if !names.iter().any(|n| n == name) {
                remove_if_present(&self.out, name)?;
            }
        }
        list.retain(|d| d != &self.dir);
        self.committed = true;
        remove_dir_all_retrying(&self.dir);
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let mut list = staged();
            list.retain(|d| d != &self.dir);
            remove_dir_all_retrying(&self.dir);
        }
    }
}

/// Removes every uncommitted staging directory of this process, for a signal handler that is
/// about to exit, and says how many there were. Returns the lock: hold it until the process
/// exits, so no commit starts.
pub fn abandon_staged() -> (MutexGuard<'static, Vec<PathBuf>>, usize) {
    let mut list = staged();
    let n = list.len();
    for dir in list.drain(..) {
        remove_dir_all_retrying(&dir);
    }
    (list, n)
}

/// `remove_dir_all`, tried again when another thread adds a file meanwhile; best effort.
fn remove_dir_all_retrying(dir: &Path) {
    for _ in 0..20 {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => continue,
            _ => return,
        }
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
        let dir = std::env::temp_dir();
        let mut spool = SpoolWriter::create(&dir, "h\n");
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

    #[test]
    fn a_staged_run_reaches_the_output_directory_only_when_committed() {
        let out = std::env::temp_dir().join(format!("splitlab-staged-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).expect("mkdir");
        // An earlier run: a file this run replaces, one it does not write (stale), a user's.
        for (name, text) in [("a.csv", "old a"), ("stale.csv", "old"), ("notes", "mine")] {
            fs::write(out.join(name), text).expect("old file");
        }
        let entries = |dir: &Path| {
            let mut v: Vec<String> = fs::read_dir(dir)
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        // Dropped without a commit: nothing changes, the staging directory is gone.
        let staged = StagedDir::create(&out).expect("stage");
        write_atomic(staged.path(), "a.csv", |w| w.write_all(b"new a")).expect("write");
        drop(staged);
        assert_eq!(entries(&out), ["a.csv", "notes", "stale.csv"]);
        assert_eq!(fs::read_to_string(out.join("a.csv")).expect("a"), "old a");
        // Committed: new files in, the stale one out, the user's file kept.
        let staged = StagedDir::create(&out).expect("stage");
        write_atomic(staged.path(), "a.csv", |w| w.write_all(b"new a")).expect("write");
        write_atomic(staged.path(), "b.csv", |w| w.write_all(b"new b")).expect("write");
        let spool = SpoolWriter::create(staged.path(), "h\n");
        staged.commit(&["stale.csv", "b.csv"]).expect("commit");
        assert_eq!(entries(&out), ["a.csv", "b.csv", "notes"]);
        assert_eq!(fs::read_to_string(out.join("a.csv")).expect("a"), "new a");
        drop(spool);
        fs::remove_dir_all(&out).expect("cleanup");
    }

    #[test]
    fn a_spool_that_cannot_be_created_names_its_path() {
        let dir = std::env::temp_dir().join(format!("splitlab-no-such-dir-{}", std::process::id()));
        let spool = SpoolWriter::create(&dir, "h\n");
        let path = spool.path().to_path_buf();
        assert_eq!(path.parent(), Some(dir.as_path()));
        let err = spool.close().check().expect_err("no directory");
        assert_eq!(
            err.to_string(),
            format!(
                "request log spool {} failed during the run (cannot create it: No such file or \
                 directory (os error 2)): requests.csv is not written",
                path.display()
            )
        );
    }
}
