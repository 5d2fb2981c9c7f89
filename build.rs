//! Build script: embeds the shipped scenarios (everything under `scenarios/`) so the binary runs
//! them from any directory (`splitlab run canary-rollout`, `splitlab scenarios`), and records
//! the commit the binary was built from for `--version`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));

    println!("cargo:rerun-if-changed=scenarios");
    let mut files = Vec::new();
    collect(&root.join("scenarios"), Path::new(""), &mut files);
    files.sort();
    let mut code = String::from(
        "/// Every file under `scenarios/`, by its path relative to that folder (`/` separated), \
         sorted.\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for rel in &files {
        let abs = root.join("scenarios").join(rel);
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            abs.to_str().expect("scenario paths are UTF-8")
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    std::fs::write(out.join("shipped_scenarios.rs"), code).expect("OUT_DIR is writable");

    // `--version`: the package version, and the commit when built from a git checkout.
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    let version = match git(&root, &["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => format!("{version} (commit {commit})"),
        None => version,
    };
    println!("cargo:rustc-env=SPLITLAB_VERSION={version}");
    // Rebuild when HEAD moves: HEAD itself and the branch it names (in the common git dir, so
    // worktrees work too). Only files that exist are named: a missing one would rerun always.
    if let (Some(git_dir), Some(common)) = (
        git(&root, &["rev-parse", "--git-dir"]),
        git(&root, &["rev-parse", "--git-common-dir"]),
    ) {
        let head = root.join(git_dir).join("HEAD");
        let mut watch = vec![head, root.join(&common).join("packed-refs")];
        if let Some(branch) = git(&root, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(root.join(&common).join(branch));
        }
        for p in watch.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

/// Files under `dir` (recursively), as paths relative to the scenarios folder.
fn collect(dir: &Path, rel: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let path = entry.path();
        let rel = rel.join(&name);
        if path.is_dir() {
            collect(&path, &rel, files);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "csv")
        ) {
            let parts: Vec<_> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            files.push(parts.join("/"));
        }
    }
}

/// A git command's trimmed output, if git is there and the source is a repository.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
