//! What a scrape serves: the [`Snapshot`] that the poller renders once per poll and publishes,
//! and that the server reads.
//!
//! Owns the snapshot, the slot that holds the latest one ([`Shared`]), [`publish`] and
//! [`latest`]; the lock is held only to swap or clone an `Arc`, so a scrape never waits on a
//! poll. Knows nothing about the target, the mapping or HTTP.

use std::sync::{Arc, Mutex, PoisonError};

use crate::exposition::{self, Family, Format};

/// What a scrape serves, rendered once per poll. Process metrics are added at scrape time.
#[derive(Debug)]
pub struct Snapshot {
    /// A poll has succeeded since start-up.
    pub ready: bool,
    /// The target's and the exporter's own families in text format 0.0.4.
    pub text: String,
    /// The same families in OpenMetrics, without the closing `# EOF`.
    pub openmetrics: String,
}

impl Snapshot {
    /// Renders `parts` (lists of families, in this order) in both formats.
    pub fn render(ready: bool, parts: &[&[Family]]) -> Snapshot {
        let render = |format| {
            let mut out = String::with_capacity(4096);
            for families in parts {
                exposition::render(families, format, &mut out);
            }
            out
        };
        Snapshot {
            ready,
            text: render(Format::Text),
            openmetrics: render(Format::OpenMetrics),
        }
    }
}

/// The latest snapshot, swapped by the poller. The lock is held only to clone or swap the Arc.
pub type Shared = Arc<Mutex<Arc<Snapshot>>>;

/// A slot holding `first` until the first publish.
pub fn share(first: Snapshot) -> Shared {
    Arc::new(Mutex::new(Arc::new(first)))
}

/// The latest snapshot. A poisoned lock still holds a complete snapshot, so it is used.
pub fn latest(shared: &Shared) -> Arc<Snapshot> {
    Arc::clone(&shared.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Makes `snapshot` the latest.
pub fn publish(shared: &Shared, snapshot: Snapshot) {
    *shared.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
}
