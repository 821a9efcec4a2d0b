//! What a scrape serves: the [`Snapshot`] that the poller renders once per poll and publishes,
//! and that the server reads.
//!
//! Owns the snapshot (both formats, each as shared bytes and, when large enough, one gzip
//! member of them; and the [`Status`] the status page is rendered from, with the last
//! [`HISTORY`] polls), the slot that holds the latest one ([`Shared`]), [`publish`] and
//! [`current`], and the age rule: a snapshot older than its [`Snapshot::fresh_for`] is stale,
//! and then only its stale rendition is served (the exporter's own metrics with
//! `status_exporter_up 0`, without the target's). The lock is held only to swap or clone an
//! `Arc`, so a scrape never waits on a poll. Knows nothing about the target, the mapping or
//! HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::exposition::{self, Family, Format};
use crate::gzip;
use crate::log;

/// A body at least this large is also kept gzip-compressed (when compression is on): below it a
/// response fits in a few segments, and gzip would save little.
pub const GZIP_MIN_BYTES: usize = 4096;

/// One format's rendered text, shared by every scrape that serves it, and its gzip member.
#[derive(Clone, Debug)]
pub struct Body {
    pub text: Arc<Vec<u8>>,
    /// `text` as one gzip member; None when compression is off or `text` is small.
    pub gzip: Option<Arc<Vec<u8>>>,
}

/// The same families in both formats.
#[derive(Clone, Debug)]
pub struct Rendition {
    /// Text format 0.0.4.
    pub text: Body,
    /// OpenMetrics, without the closing `# EOF` (the process metrics come after it).
    pub openmetrics: Body,
}

impl Rendition {
    /// Renders `parts` (lists of families, in this order) in both formats, and compresses each
    /// that is large enough if `gzip`.
    pub fn render(parts: &[&[Family]], gzip: bool) -> Rendition {
        let body = |format| {
            // Sized once: a large exposition is not copied as it grows.
            let size = parts.iter().map(|f| exposition::rendered_len(f, format));
            let mut out = String::with_capacity(size.sum());
            for families in parts {
                exposition::render(families, format, &mut out);
            }
            let compressed = (gzip && out.len() >= GZIP_MIN_BYTES)
                .then(|| Arc::new(gzip::member(out.as_bytes())));
            Body {
                // Moved, not copied: a large exposition is a few MiB.
                text: Arc::new(out.into_bytes()),
                gzip: compressed,
            }
        };
        Rendition {
            text: body(Format::Text),
            openmetrics: body(Format::OpenMetrics),
        }
    }

    /// The body of `format`.
    pub fn body(&self, format: Format) -> &Body {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }
}

/// How many polls the status page shows (and each snapshot carries): a few minutes at the
/// default interval, about 1.5 KiB.
pub const HISTORY: usize = 60;

/// One poll, as the status page shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poll {
    /// When it ended.
    pub ended: SystemTime,
    /// How long it took (fetch, parse and map), in seconds.
    pub seconds: f64,
    /// None if it succeeded, the failure reason's label otherwise.
    pub failure: Option<&'static str>,
}

/// What the status page shows, as the poller had it when it made the snapshot: figures and
/// text only, so that rendering the page does no I/O. Text from the target, the settings and
/// the mapping is kept as it is: the page escapes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The target, as the start-up line prints it (secrets left out).
    pub target: String,
    /// Where the mapping comes from: `built-in` or the file's path.
    pub mapping_source: String,
    /// The mapped metrics' names and kinds (`gauge`, `counter`, `enum`, `info`), in order.
    pub metrics: Vec<(String, &'static str)>,
    /// The configured time between polls.
    pub interval: Duration,
    /// The time between polls now (longer while backing off).
    pub delay: Duration,
    /// Polls of the target since start-up.
    pub polls: u64,
    /// When the last successful poll ended.
    pub last_success: Option<SystemTime>,
    /// The last failed poll's message, if the last poll failed.
    pub failing: Option<String>,
    /// Failed polls by reason label, every reason, in their fixed order.
    pub failures: Vec<(&'static str, u64)>,
    /// The last polls, oldest first, at most [`HISTORY`].
    pub history: Vec<Poll>,
}

/// What a scrape serves, rendered once per poll. Process metrics are added at scrape time.
#[derive(Debug)]
pub struct Snapshot {
    /// A poll has succeeded since start-up.
    pub ready: bool,
    /// When the poller made it.
    pub made: Instant,
    /// How long it stays fresh: by then the poller should have published the next one. Past
    /// it, the poller is taken to be stuck, and `stale` is served.
    pub fresh_for: Duration,
    /// The target's families (when the poll succeeded) and the exporter's own.
    pub fresh: Rendition,
    /// The exporter's own families with `status_exporter_up 0`: what is served once stale.
    pub stale: Rendition,
    /// What the status page shows.
    pub status: Status,
}

impl Snapshot {
    /// Whether it is still fresh at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.made) <= self.fresh_for
    }

    /// What to serve at `now`: `fresh` while it is, `stale` after.
    pub fn rendition(&self, now: Instant) -> &Rendition {
        if self.is_fresh(now) {
            &self.fresh
        } else {
            &self.stale
        }
    }
}

/// The latest snapshot, swapped by the poller, and whether its staleness was logged.
#[derive(Debug)]
pub struct Slot {
    latest: Mutex<Arc<Snapshot>>,
    stale_logged: AtomicBool,
}

/// The slot shared by the poller and the server. The lock is held only to clone or swap the
/// Arc.
pub type Shared = Arc<Slot>;

/// A slot holding `first` until the first publish.
pub fn share(first: Snapshot) -> Shared {
    Arc::new(Slot {
        latest: Mutex::new(Arc::new(first)),
        stale_logged: AtomicBool::new(false),
    })
}

/// The latest snapshot. A poisoned lock still holds a complete snapshot, so it is used.
pub fn latest(shared: &Shared) -> Arc<Snapshot> {
    Arc::clone(&shared.latest.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The latest snapshot and whether it is fresh now; logs once when the snapshots become stale
/// (the poller has stopped publishing) and once when they are fresh again.
pub fn current(shared: &Shared) -> (Arc<Snapshot>, bool) {
    let snapshot = latest(shared);
    let fresh = snapshot.is_fresh(Instant::now());
    if shared.stale_logged.swap(!fresh, Ordering::AcqRel) == fresh {
        if fresh {
            log::info!("the poller publishes again: serving its snapshots");
        } else {
            log::warn!(
                "the poller has published nothing for {:.1}s (more than {:.1}s): serving \
                 status_exporter_up 0, without the target's metrics, until it does",
                snapshot.made.elapsed().as_secs_f64(),
                snapshot.fresh_for.as_secs_f64()
            );
        }
    }
    (snapshot, fresh)
}

/// Makes `snapshot` the latest. The one it replaces is dropped after the lock is released:
/// freeing a large one takes a while, and scrapes wait for the lock.
pub fn publish(shared: &Shared, snapshot: Snapshot) {
    let mut latest = shared.latest.lock().unwrap_or_else(PoisonError::into_inner);
    let old = std::mem::replace(&mut *latest, Arc::new(snapshot));
    drop(latest);
    drop(old);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Kind;

    fn snapshot(age: Duration, fresh_for: Duration) -> Snapshot {
        let up = |value| [Family::single("up", "Up.", Kind::Gauge, value)];
        Snapshot {
            ready: true,
            made: Instant::now() - age,
            fresh_for,
            fresh: Rendition::render(&[&up(1.0)], true),
            stale: Rendition::render(&[&up(0.0)], true),
            status: Status::default(),
        }
    }

    #[test]
    fn a_snapshot_older_than_its_freshness_serves_its_stale_rendition() {
        fn check(age: u64, fresh_for: u64, expected: &str) {
            let snapshot = snapshot(Duration::from_secs(age), Duration::from_secs(fresh_for));
            let text = &snapshot.rendition(Instant::now()).text.text;
            assert!(
                std::str::from_utf8(text).unwrap().contains(expected),
                "{age} {fresh_for}"
            );
        }
        check(0, 19, "up 1");
        check(18, 19, "up 1");
        check(20, 19, "up 0");
        check(3600, 19, "up 0");
    }

    #[test]
    fn staleness_is_logged_on_its_transitions_only() {
        let shared = share(snapshot(Duration::from_secs(60), Duration::from_secs(1)));
        assert!(!current(&shared).1);
        assert!(shared.stale_logged.load(Ordering::Acquire));
        assert!(!current(&shared).1);
        publish(&shared, snapshot(Duration::ZERO, Duration::from_secs(60)));
        assert!(current(&shared).1);
        assert!(!shared.stale_logged.load(Ordering::Acquire));
    }

    #[test]
    fn small_bodies_are_not_compressed() {
        let small = snapshot(Duration::ZERO, Duration::from_secs(1));
        assert!(small.fresh.text.gzip.is_none());
        let many: Vec<Family> = (0..500)
            .map(|i| Family::single(&format!("m{i}"), "A metric.", Kind::Gauge, 1.0))
            .collect();
        let large = Rendition::render(&[&many], true);
        let gz = large
            .openmetrics
            .gzip
            .as_deref()
            .expect("a large body is compressed");
        assert!(gz.len() < large.openmetrics.text.len() / 4);
        assert!(Rendition::render(&[&many], false).text.gzip.is_none());
    }
}
