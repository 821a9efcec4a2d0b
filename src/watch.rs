//! Files read again when they change on disk: the mapping file, the target's credential file and
//! the web users file.
//!
//! Owns when a file is read again ([`Watched::refresh`]), what a failed read leaves (the last
//! good value) and when a failure is worth a report. Callers (`files.rs`) say how to read the
//! file and what to log; this module knows nothing about what the files hold.
//!
//! Three rules, for files that people and tools write in every way there is:
//! - **A version is read once it has settled.** A shell redirect or a truncating editor empties
//!   the file, then writes it; a reader in between sees an empty or half-written file, which
//!   would be reported as broken (or, for a secret, used cut short). So a changed file is read
//!   only when its modification time is at least [`SETTLE`] in the past, or when it has stayed
//!   the same (inode, time and size) for [`SETTLE`] since this reader first saw it (which also
//!   covers a clock that puts the time in the future). Until then the last good value stays.
//! - **Each failed version is reported once, with its own error.** A broken file is reported
//!   when it is first read; a later version that is broken too is reported again with its own
//!   message (a typo fixed into another typo), and so is a new error for the same version (a
//!   file that becomes unreadable). Reading the same broken version again says nothing.
//! - **A failing file is read again at every refresh**, even if it looks unchanged: a fix of
//!   its permissions changes neither its time nor its size.
//!
//! [`Watched::reload`] reads the file at once, whatever its age, and reports every failure:
//! an operator asked for it (SIGHUP, `POST /-/reload`) after writing the file.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long a changed file must stay unchanged before it is read: far longer than any writer
/// takes between emptying a file and finishing it, and short next to a polling interval.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What identifies a version of a file: inode (a file replaced by a rename, as editors, config
/// tools and Kubernetes secrets do), modification time and size. None: the file is missing or
/// its metadata cannot be read.
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.modified().ok()?, meta.len()))
}

/// A file's last good value and the state of the file.
#[derive(Debug)]
pub struct Watched<T> {
    pub path: PathBuf,
    /// The value of the last good read.
    pub value: T,
    /// The version of the last good read; None to read the file at the next refresh.
    read: Option<Stamp>,
    /// The newest version seen, and when this reader first saw it: how long it has settled.
    seen: Option<(Stamp, Instant)>,
    /// The failure last reported: the version and the error's message.
    reported: Option<(Stamp, String)>,
    /// The last read failed.
    pub failing: bool,
}

/// What a refresh did.
#[derive(Debug, PartialEq)]
pub enum Refresh<E> {
    /// Nothing new: the file did not change, it is still settling, or it still fails with the
    /// error already reported.
    Unchanged,
    /// The file was read: `changed` if the value differs from the one before, `recovered` if the
    /// read before had failed.
    Read { changed: bool, recovered: bool },
    /// A read failed with an error not reported before for this version; the last good value
    /// stays.
    Failed(E),
}

impl<T: PartialEq> Watched<T> {
    /// A file whose current version was just read into `value`.
    pub fn new(path: PathBuf, value: T) -> Watched<T> {
        let read = Some(stamp(&path));
        Watched {
            path,
            value,
            read,
            seen: None,
            reported: None,
            failing: false,
        }
    }

    /// A file not read yet: `value` stands in until the first refresh reads it.
    pub fn unread(path: PathBuf, value: T) -> Watched<T> {
        Watched {
            path,
            value,
            read: None,
            seen: None,
            reported: None,
            failing: false,
        }
    }

    /// Reads the file with `read` if a new version has settled, or if the last read failed.
    pub fn refresh<E: fmt::Display>(
        &mut self,
        read: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Refresh<E> {
        self.refresh_at(read, Instant::now())
    }

    /// [`Watched::refresh`] at the time `at` (tests look ahead by giving a later one).
    fn refresh_at<E: fmt::Display>(
        &mut self,
        read: impl FnOnce(&Path) -> Result<T, E>,
        at: Instant,
    ) -> Refresh<E> {
        let now = stamp(&self.path);
        if self.read == Some(now) {
            return Refresh::Unchanged;
        }
        if !self.settled(now, at) {
            return Refresh::Unchanged;
        }
        match read(&self.path) {
            Ok(value) => {
                let changed = value != self.value;
                let recovered = self.failing;
                self.value = value;
                self.read = Some(now);
                self.reported = None;
                self.failing = false;
                Refresh::Read { changed, recovered }
            }
            Err(e) => {
                self.read = None;
                self.failing = true;
                let report = (now, e.to_string());
                if self.reported.as_ref() == Some(&report) {
                    return Refresh::Unchanged;
                }
                self.reported = Some(report);
                Refresh::Failed(e)
            }
        }
    }

    /// Reads the file with `read` now, settled or not, and returns whether the value changed
    /// (or the read before had failed); a failure keeps the last good value, and is returned
    /// even if it was reported before.
    pub fn reload<E: fmt::Display>(
        &mut self,
        read: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<bool, E> {
        let now = stamp(&self.path);
        match read(&self.path) {
            Ok(value) => {
                let changed = value != self.value || self.failing;
                self.value = value;
                self.read = Some(now);
                self.reported = None;
                self.failing = false;
                Ok(changed)
            }
            Err(e) => {
                self.read = None;
                self.failing = true;
                self.reported = Some((now, e.to_string()));
                Err(e)
            }
        }
    }

    /// Whether version `now` of the file has settled at the time `at` (see the module's
    /// documentation), noting when it was first seen.
    fn settled(&mut self, now: Stamp, at: Instant) -> bool {
        let first_seen = match self.seen {
            Some((version, since)) if version == now => since,
            _ => {
                self.seen = Some((now, at));
                at
            }
        };
        let written_long_ago = now.is_some_and(|(_, modified, _)| {
            SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age >= SETTLE)
        });
        written_long_ago || at.saturating_duration_since(first_seen) >= SETTLE
    }
}

#[cfg(test)]
mod tests;
