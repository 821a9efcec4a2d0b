//! Helpers that the unit tests of several modules share (test builds only): temporary
//! directories and files. The integration tests have their own harness, `tests/harness/`.

use std::fs;
use std::path::PathBuf;

/// A fresh, empty directory for one test under the system's temporary directory. `name` must
/// be unique among the crate's unit tests, which run in parallel: start it with the module's.
pub fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("status-exporter-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// A file holding `content` in a fresh directory [`dir`]`(name)`; returns its path.
pub fn file(name: &str, content: &[u8]) -> PathBuf {
    let path = dir(name).join("file");
    fs::write(&path, content).expect("write a temporary file");
    path
}
