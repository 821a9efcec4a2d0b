//! The poller: one thread that polls the target on a schedule, maps its document, and publishes
//! an immutable [`Snapshot`] for the server to serve.
//!
//! Owns [`Poller`]: the schedule (a random start offset, a fixed rate, a capped back-off while
//! the target fails), the state between polls (counters, the last result) and the log lines of
//! its transitions, and the mapping and credentials in use, brought up to date from their files
//! before each poll. [`run`] is the poll loop; a reload that changes the mapping or the
//! credentials (SIGHUP, `POST /-/reload`) wakes it for a poll at once. The request is `client.rs`'s, the files'
//! formats and reload messages `files.rs`'s, the rendering of the counters `own_metrics.rs`'s.
//! A scrape never waits on a poll: the server only clones the `Arc` of the latest snapshot.
//! Knows nothing about HTTP serving or how the target is reached.

use std::collections::{HashMap, VecDeque};
use std::mem::take;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{self, Failure, Reason};
use crate::config::{PollSettings, RequestSettings};
use crate::exposition::Family;
use crate::files::Files;
use crate::log;
use crate::mapping::{self, ApplyError, Mapping, MetricKind};
use crate::own_metrics::{self, Figures};
use crate::snapshot::{self, Poll, Rendition, Shared, Snapshot, Status, HISTORY};

/// Failed polls in a row after which the poller waits longer between polls.
const BACKOFF_AFTER: u64 = 3;
/// The longest time between polls while backing off, in intervals.
const BACKOFF_MAX: u32 = 4;

/// Time from the start of one poll to the start of the next after `failed` polls in a row have
/// failed: the interval, doubled from the `BACKOFF_AFTER`th failure on, at most `BACKOFF_MAX`
/// intervals.
fn poll_delay(interval: Duration, failed: u64) -> Duration {
    let doublings = failed.saturating_sub(BACKOFF_AFTER - 1).min(16) as u32;
    interval * (1u32 << doublings).min(BACKOFF_MAX)
}

/// Delay before the first poll: `fraction` (in [0, 1)) of a tenth of the interval, at most 1 s.
fn start_offset(interval: Duration, fraction: f64) -> Duration {
    (interval / 10)
        .min(Duration::from_secs(1))
        .mul_f64(fraction.clamp(0.0, 1.0))
}

/// A number in [0, 1) that differs between processes and runs: std's randomly keyed hasher
/// over the time and the process id. Not for cryptography; enough to spread start times.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything the poller keeps between polls.
pub struct Poller {
    /// What each poll asks of the target.
    request: RequestSettings,
    /// The configured time between polls.
    interval: Duration,
    /// Keep large snapshots gzip-compressed too.
    gzip: bool,
    /// The files read at run time: the mapping file (its last good mapping) and the
    /// credentials, when there are any.
    files: Arc<Files>,
    mapping: Mapping,
    /// The most series one poll may give (MAX_SERIES).
    max_series: usize,
    /// What the last poll's document gave; its memory is used again by the next.
    applied: mapping::Applied,
    /// The last document, with its memory, for the next poll to read into.
    body: Vec<u8>,
    polls: u64,
    /// Failed polls, indexed by `Reason as usize`.
    failures: [u64; Reason::ALL.len()],
    /// Samples skipped per mapped metric name, in mapping order.
    mapping_errors: Vec<(String, u64)>,
    /// Which mapped metrics skipped samples in the last successful poll.
    mapping_failing: Vec<bool>,
    /// The last poll's result: None before the first poll.
    last: Option<Result<(), Reason>>,
    last_duration: f64,
    last_success: Option<SystemTime>,
    /// Since when the target fails, and how many polls failed since.
    outage: Option<(Instant, u64)>,
    /// The last polls, oldest first, at most [`HISTORY`], for the status page.
    history: VecDeque<Poll>,
    /// The last poll's failure, as logged, while the target fails.
    failing: Option<String>,
}

impl Poller {
    /// Sets up polling with the mapping in use at start-up; `files` holds the mapping file and
    /// the credentials, if the settings name them.
    pub fn new(settings: &PollSettings, files: Arc<Files>) -> Poller {
        let request = &settings.request;
        let mut poller = Poller {
            request: request.clone(),
            interval: settings.interval,
            gzip: settings.gzip,
            files,
            mapping: Mapping::default(),
            max_series: settings.max_series,
            applied: mapping::Applied::default(),
            body: Vec::new(),
            polls: 0,
            failures: [0; Reason::ALL.len()],
            mapping_errors: Vec::new(),
            mapping_failing: Vec::new(),
            last: None,
            last_duration: 0.0,
            last_success: None,
            outage: None,
            history: VecDeque::with_capacity(HISTORY),
            failing: None,
        };
        poller.set_mapping(settings.mapping.clone());
        poller
    }

    fn set_mapping(&mut self, mapping: Mapping) {
        // Counts carry over by name; looked up in a map, so that a large mapping reloads in
        // linear time.
        let old = std::mem::take(&mut self.mapping_errors);
        let index: HashMap<String, usize> = old
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        self.mapping_errors = mapping
            .metrics
            .iter()
            .map(|m| (m.name.clone(), index.get(&m.name).map_or(0, |&i| old[i].1)))
            .collect();
        self.mapping_failing = vec![false; mapping.metrics.len()];
        self.mapping = mapping;
    }

    /// Re-reads the mapping file and the credentials if they changed on disk. A file that
    /// cannot be read or is broken keeps its last good value, and is reported once.
    /// A mapping reloaded at an operator's request is taken here too.
    fn reload_if_changed(&mut self) {
        let files = Arc::clone(&self.files);
        if let Some(file) = &files.mapping {
            let new = {
                let mut file = lock(file);
                file.refresh();
                file.take_new()
            };
            if let Some(mapping) = new {
                self.set_mapping(mapping);
            }
        }
        if let Some(credentials) = &files.credentials {
            lock(credentials).refresh();
        }
    }

    /// Polls the target once and returns the snapshot to publish.
    pub fn poll(&mut self) -> Snapshot {
        self.reload_if_changed();
        if self.mapping.metrics.is_empty() {
            // A mapping file that only declares the modules of `/probe`: nothing to poll
            // (`status_exporter_up` stays 0), and the exporter is ready.
            return self.snapshot(&[]);
        }
        let authorization = self
            .files
            .credentials
            .as_ref()
            .and_then(|c| lock(c).authorization().map(str::to_owned));
        let started = Instant::now();
        let request = client::Request {
            target: &self.request.target,
            headers: &self.request.headers,
            authorization: authorization.as_deref(),
            trust: &self.request.trust,
            max_body_bytes: self.request.max_body_bytes,
            deadline: started + self.request.timeout,
        };
        let fetched = client::fetch(&request, &client::any_address, take(&mut self.body));
        let result = fetched.and_then(|body| {
            let applied =
                mapping::apply_into(&self.mapping, &body, self.max_series, &mut self.applied);
            // Kept, with its memory, for the next poll to read into; not the memory of a much
            // larger document than this one.
            self.body = body;
            if self.body.capacity() > 2 * self.body.len() + 65536 {
                self.body.shrink_to_fit();
            }
            applied.map_err(|e| match e {
                ApplyError::InvalidJson(e) => Failure::new(Reason::InvalidJson, e),
                too_many => Failure::new(Reason::TooManySeries, too_many.to_string()),
            })
        });
        self.last_duration = started.elapsed().as_secs_f64();
        self.polls += 1;
        if result.is_ok() {
            let errors = std::mem::take(&mut self.applied.errors);
            self.note_mapping_errors(&errors);
            self.applied.errors = errors;
        }
        self.note_result(&result);
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.failing = Some(failure.to_string());
                Err(failure.reason)
            }
        };
        if outcome.is_ok() {
            self.failing = None;
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Poll {
            ended: SystemTime::now(),
            seconds: self.last_duration,
            failure: outcome.err().map(Reason::label),
        });
        self.last = Some(outcome);
        // The families are kept, with their memory, for the next poll to write into.
        let app = match outcome {
            Ok(()) => &self.applied.families[..],
            Err(_) => &[],
        };
        self.snapshot(app)
    }

    fn note_mapping_errors(&mut self, errors: &[mapping::Skipped]) {
        for (i, skipped) in errors.iter().enumerate() {
            self.mapping_errors[i].1 += skipped.count;
            let name = &self.mapping_errors[i].0;
            let failing = skipped.count > 0;
            if failing && !self.mapping_failing[i] {
                let first = skipped.first.as_deref().unwrap_or("");
                log::warn!(
                    "mapping: {name}: {} sample(s) skipped, first: {first}",
                    skipped.count
                );
            } else if !failing && self.mapping_failing[i] {
                log::info!("mapping: {name}: every sample mapped again");
            }
            self.mapping_failing[i] = failing;
        }
    }

    /// Counts the poll and logs a line when the state changes.
    fn note_result(&mut self, result: &Result<(), Failure>) {
        let previous = self.last;
        match result {
            Ok(()) => {
                self.last_success = Some(SystemTime::now());
                match (previous, self.outage.take()) {
                    (Some(Err(_)), Some((since, failed))) => log::info!(
                        "poll recovered after {:.1}s ({failed} failed polls of {})",
                        since.elapsed().as_secs_f64(),
                        self.request.target
                    ),
                    (None, _) => {
                        let samples: usize = self.applied.families.iter().map(Family::len).sum();
                        log::info!(
                            "first poll of {} succeeded: {samples} samples",
                            self.request.target
                        );
                    }
                    _ => {}
                }
            }
            Err(failure) => {
                self.failures[failure.reason as usize] += 1;
                match previous {
                    Some(Err(reason)) if reason == failure.reason => {}
                    Some(Err(_)) => {
                        log::warn!(
                            "poll of {} still failing, now: {failure}",
                            self.request.target
                        )
                    }
                    _ => log::warn!("poll of {} failing: {failure}", self.request.target),
                }
                let (since, failed) = self.outage.unwrap_or((Instant::now(), 0));
                self.outage = Some((since, failed + 1));
                if failed + 1 == BACKOFF_AFTER {
                    log::warn!(
                        "{BACKOFF_AFTER} polls of {} failed in a row; polling less often, up to \
                         every {:?}, until one succeeds",
                        self.request.target,
                        self.interval * BACKOFF_MAX
                    );
                }
            }
        }
    }

    /// Time from the start of the last poll to the start of the next: the interval, longer
    /// while backing off.
    pub fn delay(&self) -> Duration {
        poll_delay(self.interval, self.outage.map_or(0, |(_, failed)| failed))
    }

    /// How long a snapshot made now stays fresh: three times the time to the next poll (longer
    /// while backing off) plus the target's timeout, which bounds a whole poll. By then the
    /// next poll has ended, or the poller is stuck.
    pub fn fresh_for(&self) -> Duration {
        self.delay() * 3 + self.request.timeout
    }

    /// Renders the state after a poll: the target's families `app` (empty unless the poll
    /// succeeded), then the exporter's own; and, for when it has grown stale, the exporter's
    /// own alone with `status_exporter_up 0`.
    pub fn snapshot(&self, app: &[Family]) -> Snapshot {
        let figures = |up| Figures {
            up,
            last_success: self.last_success,
            last_duration: self.last_duration,
            delay: self.delay(),
            polls: self.polls,
            failures: &self.failures,
            mapping_errors: &self.mapping_errors,
            mapping_loaded: !self
                .files
                .mapping
                .as_ref()
                .is_some_and(|f| lock(f).failing()),
            credentials_read: !self
                .files
                .credentials
                .as_ref()
                .is_some_and(|c| lock(c).failing()),
        };
        let own = own_metrics::families(&figures(matches!(self.last, Some(Ok(())))));
        let own_stale = own_metrics::families(&figures(false));
        let fresh = Rendition::render(&[app, &own], self.gzip);
        let stale = Rendition::render(&[&own_stale], self.gzip);
        Snapshot {
            ready: self.last_success.is_some() || self.mapping.metrics.is_empty(),
            // Once rendered (a large exposition takes a while on a busy host), so that its age
            // counts from when it can be served.
            made: Instant::now(),
            fresh_for: self.fresh_for(),
            fresh,
            stale,
            status: self.status(),
        }
    }

    /// What the status page shows now.
    fn status(&self) -> Status {
        let mapping_source = match &self.files.mapping {
            Some(file) => lock(file).path().display().to_string(),
            None => "built-in".to_string(),
        };
        Status {
            target: self.request.target.to_string(),
            mapping_source,
            metrics: self
                .mapping
                .metrics
                .iter()
                .map(|m| (m.name.clone(), kind_name(&m.kind)))
                .collect(),
            interval: self.interval,
            delay: self.delay(),
            polls: self.polls,
            last_success: self.last_success,
            failing: self.failing.clone(),
            failures: Reason::ALL
                .iter()
                .map(|r| (r.label(), self.failures[*r as usize]))
                .collect(),
            history: self.history.iter().copied().collect(),
        }
    }
}

/// Polls for ever, publishing each snapshot into `shared`. The first poll waits a random
/// [`start_offset`]; then polls start at a fixed rate, [`Poller::delay`] apart; a poll that
/// overruns it is followed by the next one at once. A reload that changes the mapping or the
/// credentials brings the next poll forward to now, and the rate goes on from there.
///
/// A panic here (a bug: no input reaches one) ends the process in the release build (`panic =
/// "abort"`), so that the service manager starts a fresh one; in any build, a poller that stops
/// publishing leaves the snapshots to go stale, and a stale snapshot is served as
/// `status_exporter_up 0` (see [`snapshot::current`]).
pub fn run(mut poller: Poller, shared: Shared) -> ! {
    std::thread::sleep(start_offset(poller.interval, random_fraction()));
    let mut next = Instant::now();
    loop {
        snapshot::publish(&shared, poller.poll());
        next += poller.delay();
        let now = Instant::now();
        if next < now {
            next = now;
        }
        if poller.files.sleep_until(next) {
            next = Instant::now();
        }
    }
}

/// The kind of a mapped metric, as the status page names it.
fn kind_name(kind: &MetricKind) -> &'static str {
    match kind {
        MetricKind::Gauge => "gauge",
        MetricKind::Counter => "counter",
        MetricKind::Enum { .. } => "enum",
        MetricKind::Info => "info",
    }
}

/// Locks `mutex`, whose value stays whole even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_after_three_failures_up_to_four_intervals() {
        let interval = Duration::from_millis(500);
        let delays: Vec<u128> = (0..8)
            .map(|failed| poll_delay(interval, failed).as_millis())
            .collect();
        assert_eq!(delays, [500, 500, 500, 1000, 2000, 2000, 2000, 2000]);
        assert_eq!(poll_delay(interval, u64::MAX), Duration::from_secs(2));
    }

    #[test]
    fn start_offset_is_a_tenth_of_the_interval_at_most_1s() {
        let check = |interval: f64, fraction: f64, expected: f64| {
            let got = start_offset(Duration::from_secs_f64(interval), fraction);
            assert_eq!(
                got,
                Duration::from_secs_f64(expected),
                "{interval} {fraction}"
            );
        };
        check(5.0, 0.0, 0.0);
        check(5.0, 0.5, 0.25);
        check(0.2, 0.999, 0.01998);
        check(60.0, 0.5, 0.5);
        check(60.0, 1.5, 1.0);
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&random_fraction()));
        }
        assert_ne!(random_fraction(), random_fraction());
    }
}
