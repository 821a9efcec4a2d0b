//! Files read again when they change on disk: the mapping file, the target's credential file and
//! the web users file.
//!
//! Owns when a file is read again ([`Watched::refresh`]: its inode, modification time or size
//! changed, or the last read failed) and what a failed read leaves (the last good value, and one
//! report until a read succeeds). Callers say how to read the file and what to log; this module
//! knows nothing about what the files hold.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What identifies a version of a file: inode (a file replaced by a rename, as editors, config
/// tools and Kubernetes secrets do), modification time and size.
type Stamp = (u64, SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.modified().ok()?, meta.len()))
}

/// A file's last good value and the state of the file.
#[derive(Debug)]
pub struct Watched<T> {
    pub path: PathBuf,
    /// The value of the last good read.
    pub value: T,
    /// The version last read; None to read the file at the next refresh.
    stamp: Option<Stamp>,
    /// The last read failed.
    pub failing: bool,
}

/// What a refresh did.
#[derive(Debug, PartialEq)]
pub enum Refresh<E> {
    /// Nothing new: the file did not change, or it still cannot be read (already reported).
    Unchanged,
    /// The file was read: `changed` if the value differs from the one before, `recovered` if the
    /// read before had failed.
    Read { changed: bool, recovered: bool },
    /// The first failed read since the last good one; the last good value stays.
    Failed(E),
}

impl<T: PartialEq> Watched<T> {
    /// A file whose current version was just read into `value`.
    pub fn new(path: PathBuf, value: T) -> Watched<T> {
        let stamp = stamp(&path);
        Watched {
            path,
            value,
            stamp,
            failing: false,
        }
    }

    /// A file not read yet: `value` stands in until the first refresh reads it.
    pub fn unread(path: PathBuf, value: T) -> Watched<T> {
        Watched {
            path,
            value,
            stamp: None,
            failing: false,
        }
    }

    /// Reads the file with `read` if it changed since the last good read, or if that read
    /// failed.
    pub fn refresh<E>(&mut self, read: impl FnOnce(&Path) -> Result<T, E>) -> Refresh<E> {
        let now = stamp(&self.path);
        if now.is_some() && now == self.stamp {
            return Refresh::Unchanged;
        }
        match read(&self.path) {
            Ok(value) => {
                let changed = value != self.value;
                let recovered = self.failing;
                self.value = value;
                self.stamp = now;
                self.failing = false;
                Refresh::Read { changed, recovered }
            }
            Err(_) if self.failing => Refresh::Unchanged,
            Err(e) => {
                self.stamp = None;
                self.failing = true;
                Refresh::Failed(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.starts_with("bad") {
                    Err(format!("bad: {s}"))
                } else {
                    Ok(s)
                }
            })
    }

    #[test]
    fn reads_again_only_when_the_file_changes_or_failed() {
        let dir =
            std::env::temp_dir().join(format!("status-exporter-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        std::fs::write(&path, "one").unwrap();
        let mut watched = Watched::new(path.clone(), "one".to_string());
        let mut check = |expected: Refresh<String>, value: &str, failing: bool| {
            assert_eq!(watched.refresh(read), expected);
            assert_eq!((watched.value.as_str(), watched.failing), (value, failing));
        };
        check(Refresh::Unchanged, "one", false);
        std::fs::write(&path, "two!").unwrap();
        check(
            Refresh::Read {
                changed: true,
                recovered: false,
            },
            "two!",
            false,
        );
        check(Refresh::Unchanged, "two!", false);
        std::fs::write(&path, "bad file").unwrap();
        check(Refresh::Failed("bad: bad file".into()), "two!", true);
        check(Refresh::Unchanged, "two!", true);
        std::fs::remove_file(&path).unwrap();
        check(Refresh::Unchanged, "two!", true);
        // Replaced by a rename: a new inode, even with the same size and time.
        let other = dir.join("other");
        std::fs::write(&other, "two!").unwrap();
        std::fs::rename(&other, &path).unwrap();
        check(
            Refresh::Read {
                changed: false,
                recovered: true,
            },
            "two!",
            false,
        );
        check(Refresh::Unchanged, "two!", false);
        std::fs::remove_dir_all(&dir).unwrap();

        let mut unread = Watched::unread(dir.join("missing"), String::new());
        assert!(matches!(unread.refresh(read), Refresh::Failed(_)));
        assert!(unread.failing);
    }
}
