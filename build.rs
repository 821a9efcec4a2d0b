//! Gives the binary the commit it is built from, as `STATUS_EXPORTER_COMMIT` (`--version` and
//! `status_exporter_build_info` show it): `git rev-parse --short HEAD` when the crate is the top
//! of a git checkout, `unknown` otherwise (a crates.io download, a tarball, no git installed).
//! No crate: it runs git and reads nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = commit(&dir).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=STATUS_EXPORTER_COMMIT={commit}");
}

/// The short commit of HEAD, if `dir` is the top of a git work tree; also tells cargo which
/// files to watch so that a new commit or a checkout of another branch builds again.
fn commit(dir: &Path) -> Option<String> {
    // Only this repository's commit: not that of a repository the crate is vendored into.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    // HEAD names the branch; the branch's ref (a file, or a line of packed-refs) the commit.
    // Only files that exist are named: a missing one would make cargo run this every build.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(dir, &["rev-parse", "--short", "HEAD"])
}

/// The trimmed output of `git ARGS` run in `dir`, if it succeeded and printed something.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
