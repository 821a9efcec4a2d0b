use std::fs::{self, File};

use super::*;
use crate::testing;

/// Reads a file as text; content starting with "bad" is an error that quotes it.
fn read(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    match text.strip_prefix("bad") {
        Some(_) => Err(format!("bad: {text}")),
        None => Ok(text),
    }
}

/// Writes `content` to `path` in place (truncate, then write), with the modification time
/// `age` in the past: settled at once if `age` >= SETTLE.
fn write(path: &Path, content: &str, age: Duration) {
    fs::write(path, content).unwrap();
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

const OLD: Duration = Duration::from_secs(60);
const FRESH: Duration = Duration::ZERO;

/// `watched`'s value, whether it is failing, and the outcome of a refresh `after` from now.
fn check(
    watched: &mut Watched<String>,
    after: Duration,
    expected: Refresh<String>,
    value: &str,
    failing: bool,
) {
    let got = watched.refresh_at(read, Instant::now() + after);
    assert_eq!(got, expected, "value {:?}", watched.value);
    assert_eq!((watched.value.as_str(), watched.failing), (value, failing));
}

const CHANGED: Refresh<String> = Refresh::Read {
    changed: true,
    recovered: false,
};

#[test]
fn reads_a_settled_version_once() {
    let dir = testing::dir("watch-settled");
    let path = dir.join("file");
    write(&path, "one", OLD);
    let mut watched = Watched::new(path.clone(), "one".to_string());
    check(&mut watched, FRESH, Refresh::Unchanged, "one", false);
    // Changed long ago (as the poller sees most changes): read at once, then not again.
    write(&path, "two!", OLD);
    check(&mut watched, FRESH, CHANGED, "two!", false);
    check(&mut watched, FRESH, Refresh::Unchanged, "two!", false);
    // Replaced by a rename: a new inode, even with the same content, size and time.
    let other = dir.join("other");
    write(&other, "two!", OLD);
    fs::rename(&other, &path).unwrap();
    let same = Refresh::Read {
        changed: false,
        recovered: false,
    };
    check(&mut watched, FRESH, same, "two!", false);
}

#[test]
fn a_version_just_written_is_read_once_it_has_settled() {
    let dir = testing::dir("watch-fresh");
    let path = dir.join("file");
    write(&path, "one", OLD);
    let mut watched = Watched::new(path.clone(), "one".to_string());
    write(&path, "two", FRESH);
    check(&mut watched, FRESH, Refresh::Unchanged, "one", false);
    check(&mut watched, SETTLE / 2, Refresh::Unchanged, "one", false);
    // Unchanged for SETTLE since it was first seen: read.
    check(&mut watched, SETTLE, CHANGED, "two", false);
}

#[test]
fn a_file_caught_half_written_is_never_reported() {
    let dir = testing::dir("watch-half");
    let path = dir.join("file");
    write(&path, "complete", OLD);
    let mut watched = Watched::new(path.clone(), "complete".to_string());
    // Emptied, then caught while being written: neither version has settled.
    write(&path, "", FRESH);
    check(&mut watched, FRESH, Refresh::Unchanged, "complete", false);
    write(&path, "bad, for now", FRESH);
    check(
        &mut watched,
        SETTLE / 2,
        Refresh::Unchanged,
        "complete",
        false,
    );
    write(&path, "complete again", FRESH);
    check(
        &mut watched,
        SETTLE / 2,
        Refresh::Unchanged,
        "complete",
        false,
    );
    check(&mut watched, SETTLE * 2, CHANGED, "complete again", false);
}

#[test]
fn each_failed_version_is_reported_once_with_its_own_error() {
    let dir = testing::dir("watch-failed");
    let path = dir.join("file");
    write(&path, "good", OLD);
    let mut watched = Watched::new(path.clone(), "good".to_string());
    write(&path, "bad typo", OLD);
    let failed = |e: &str| Refresh::Failed(e.to_string());
    check(&mut watched, FRESH, failed("bad: bad typo"), "good", true);
    check(&mut watched, FRESH, Refresh::Unchanged, "good", true);
    // Another broken version: its own report, though the file never worked in between.
    write(&path, "bad other typo", OLD);
    check(
        &mut watched,
        FRESH,
        failed("bad: bad other typo"),
        "good",
        true,
    );
    check(&mut watched, FRESH, Refresh::Unchanged, "good", true);
    // Gone: reported once it has settled (a file replaced by delete and create is briefly
    // missing), then not again.
    fs::remove_file(&path).unwrap();
    check(&mut watched, FRESH, Refresh::Unchanged, "good", true);
    let missing = "No such file or directory (os error 2)";
    check(&mut watched, SETTLE, failed(missing), "good", true);
    check(&mut watched, SETTLE * 2, Refresh::Unchanged, "good", true);
    // Back with the content it had: recovered, the value unchanged.
    write(&path, "good", OLD);
    let recovered = Refresh::Read {
        changed: false,
        recovered: true,
    };
    check(&mut watched, FRESH, recovered, "good", false);
}

#[test]
fn a_failing_file_is_read_again_even_unchanged() {
    // A read that fails once for a reason the file's stamp does not show (its permissions),
    // then succeeds.
    let dir = testing::dir("watch-permissions");
    let path = dir.join("file");
    write(&path, "one", OLD);
    let mut watched = Watched::new(path.clone(), "one".to_string());
    write(&path, "two", OLD);
    let denied = |_: &Path| Err::<String, _>("permission denied".to_string());
    assert_eq!(
        watched.refresh_at(denied, Instant::now()),
        Refresh::Failed("permission denied".into())
    );
    assert_eq!(
        watched.refresh_at(denied, Instant::now()),
        Refresh::Unchanged
    );
    let recovered = Refresh::Read {
        changed: true,
        recovered: true,
    };
    check(&mut watched, FRESH, recovered, "two", false);
}

#[test]
fn an_unread_file_is_read_at_the_first_refresh() {
    let dir = testing::dir("watch-unread");
    let mut missing = Watched::unread(dir.join("missing"), String::new());
    let start = Instant::now();
    assert_eq!(missing.refresh_at(read, start), Refresh::Unchanged);
    assert_eq!(
        missing.refresh_at(read, start + SETTLE),
        Refresh::Failed("No such file or directory (os error 2)".into())
    );
    assert!(missing.failing);
    let path = dir.join("file");
    write(&path, "one", OLD);
    let mut unread = Watched::unread(path, String::new());
    check(&mut unread, FRESH, CHANGED, "one", false);
}

#[test]
fn a_reload_reads_at_once_and_reports_every_failure() {
    let dir = testing::dir("watch-reload");
    let path = dir.join("file");
    write(&path, "one", OLD);
    let mut watched = Watched::new(path.clone(), "one".to_string());
    assert_eq!(watched.reload(read), Ok(false));
    // Written a moment ago: a refresh waits for it to settle, a reload reads it now.
    write(&path, "two", FRESH);
    check(&mut watched, FRESH, Refresh::Unchanged, "one", false);
    assert_eq!(watched.reload(read), Ok(true));
    assert_eq!(watched.value, "two");
    // Read now, so a refresh has nothing new to read once it settles.
    check(&mut watched, OLD, Refresh::Unchanged, "two", false);
    // A broken version: reported by each reload, once by the refreshes, the last good value
    // kept.
    write(&path, "bad three", FRESH);
    assert_eq!(watched.reload(read), Err("bad: bad three".into()));
    assert_eq!(watched.reload(read), Err("bad: bad three".into()));
    check(&mut watched, OLD, Refresh::Unchanged, "two", true);
    // Fixed to the same value as before the failure: a recovery, so "changed".
    write(&path, "two", FRESH);
    assert_eq!(watched.reload(read), Ok(true));
    assert!(!watched.failing);
}
