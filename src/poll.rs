//! The poller: one thread that fetches the target's status document, maps it, and publishes an
//! immutable [`Snapshot`] for the server to serve.
//!
//! Owns the fetch (minreq, bounded in time and size, redirects handled here so they stay on
//! the same host), the exporter's own `status_exporter_*` metrics, poll state transitions and
//! their log lines, and the reload of the mapping file. A scrape never waits on the target:
//! the server only clones the `Arc` of the latest snapshot. Knows nothing about HTTP serving.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::{self, Config, Target, VERSION};
use crate::exposition::{self, Family, Format, Kind};
use crate::log;
use crate::mapping::{self, Mapping};

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

/// The latest snapshot, swapped by the poller. The lock is held only to clone or swap the Arc.
pub type Shared = Arc<Mutex<Arc<Snapshot>>>;

/// The latest snapshot. A poisoned lock still holds a complete snapshot, so it is used.
pub fn latest(shared: &Shared) -> Arc<Snapshot> {
    Arc::clone(&shared.lock().unwrap_or_else(PoisonError::into_inner))
}

fn publish(shared: &Shared, snapshot: Snapshot) {
    *shared.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
}

/// Why a poll failed. Each variant is one value of the `reason` label.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The host name does not resolve.
    Resolve(String),
    /// No TCP connection (refused, unreachable, reset).
    Connect(String),
    /// No complete answer within TARGET_TIMEOUT_SECONDS.
    Timeout,
    /// An HTTP status other than 2xx.
    HttpStatus(u16),
    /// A redirect that is not followed: to another host or scheme, or too many.
    Redirect(String),
    /// The body, headers or status line exceed their limit.
    TooLarge(String),
    /// Not a well-formed HTTP response (bad chunking, truncated body).
    InvalidResponse(String),
    /// The body is not a JSON document.
    InvalidJson(String),
}

/// Every `reason` label value, in output order; all are exposed from the start.
pub const REASONS: [&str; 8] = [
    "resolve",
    "connect",
    "timeout",
    "http_status",
    "redirect",
    "too_large",
    "invalid_response",
    "invalid_json",
];

impl Failure {
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Resolve(_) => "resolve",
            Failure::Connect(_) => "connect",
            Failure::Timeout => "timeout",
            Failure::HttpStatus(_) => "http_status",
            Failure::Redirect(_) => "redirect",
            Failure::TooLarge(_) => "too_large",
            Failure::InvalidResponse(_) => "invalid_response",
            Failure::InvalidJson(_) => "invalid_json",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Resolve(e) => write!(f, "cannot resolve the host: {e}"),
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Timeout => f.write_str("no complete answer within TARGET_TIMEOUT_SECONDS"),
            Failure::HttpStatus(code) => write!(f, "HTTP status {code}"),
            Failure::Redirect(e) => write!(f, "redirect not followed: {e}"),
            Failure::TooLarge(e) => write!(f, "response too large: {e}"),
            Failure::InvalidResponse(e) => write!(f, "invalid HTTP response: {e}"),
            Failure::InvalidJson(e) => write!(f, "not a JSON document: {e}"),
        }
    }
}

/// Redirects followed within one poll.
const MAX_REDIRECTS: usize = 5;
/// Limit for the response's status line and headers together, bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Fetches the document at `target`, following redirects on the same host and scheme only.
pub fn fetch(
    target: &Target,
    timeout: Duration,
    max_body_bytes: usize,
) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + timeout;
    let mut path = target.path.clone();
    for _ in 0..=MAX_REDIRECTS {
        let url = Target {
            path: path.clone(),
            ..target.clone()
        }
        .to_string();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::Timeout);
        }
        // minreq counts whole seconds; the deadline check after reading keeps fractions honest.
        let request = minreq::get(url)
            .with_header(
                "User-Agent",
                concat!("status-exporter/", env!("CARGO_PKG_VERSION")),
            )
            .with_header("Accept", "application/json")
            .with_timeout(remaining.as_secs_f64().ceil() as u64)
            .with_follow_redirects(false)
            .with_max_headers_size(MAX_HEAD_BYTES)
            .with_max_status_line_length(MAX_HEAD_BYTES);
        let response = request.send_lazy().map_err(classify)?;
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        // minreq reports a missing or unparseable status line as this made-up 503.
        if response.status_code == 503
            && response.reason_phrase == "Server did not provide a status line"
        {
            return Err(Failure::InvalidResponse("no HTTP status line".into()));
        }
        match response.status_code {
            200..=299 => {}
            301 | 302 | 303 | 307 | 308 => {
                let location = header("location").ok_or_else(|| {
                    Failure::Redirect("a redirect without a Location header".into())
                })?;
                path = redirect_path(target, &path, &location)?;
                continue;
            }
            code => return Err(Failure::HttpStatus(code)),
        }
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = length.filter(|&l| l > max_body_bytes as u64) {
            return Err(Failure::TooLarge(format!(
                "{length} bytes, more than TARGET_MAX_BYTES ({max_body_bytes})"
            )));
        }
        let mut body = Vec::with_capacity(length.map_or(8192, |l| l as usize));
        response
            .take(max_body_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| classify_body(&e))?;
        if body.len() > max_body_bytes {
            return Err(Failure::TooLarge(format!(
                "more than TARGET_MAX_BYTES ({max_body_bytes} bytes)"
            )));
        }
        if let Some(length) = length.filter(|&l| l != body.len() as u64) {
            return Err(Failure::InvalidResponse(format!(
                "body truncated: {} of {length} bytes",
                body.len()
            )));
        }
        if Instant::now() > deadline {
            return Err(Failure::Timeout);
        }
        return Ok(body);
    }
    Err(Failure::Redirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// The path a redirect leads to, if it stays on the target's scheme, host and port.
fn redirect_path(target: &Target, current: &str, location: &str) -> Result<String, Failure> {
    let location = location.trim();
    if let Some(rest) = location.strip_prefix("http://") {
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let origin = Target {
            path: String::new(),
            ..target.clone()
        }
        .to_string();
        let plain = origin
            .trim_end_matches(&format!(":{}", target.port))
            .to_string();
        let wanted = format!("http://{authority}");
        if wanted != origin && !(target.port == 80 && wanted == plain) {
            return Err(Failure::Redirect(format!("to another host ({location})")));
        }
        return Ok(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    if location.starts_with("//") || location.contains("://") {
        return Err(Failure::Redirect(format!(
            "to another host or scheme ({location})"
        )));
    }
    if location.starts_with('/') {
        return Ok(location.to_string());
    }
    // Relative to the current path's directory.
    let base = current.split('?').next().unwrap_or("/");
    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{dir}{location}"))
}

fn classify(error: minreq::Error) -> Failure {
    match error {
        minreq::Error::IoError(e) => classify_io(&e),
        minreq::Error::AddressNotFound => Failure::Resolve("no address for the host".into()),
        minreq::Error::HeadersOverflow => {
            Failure::TooLarge(format!("headers over {MAX_HEAD_BYTES} bytes"))
        }
        minreq::Error::StatusLineOverflow => {
            Failure::TooLarge(format!("status line over {MAX_HEAD_BYTES} bytes"))
        }
        other => Failure::InvalidResponse(other.to_string()),
    }
}

/// Classifies an I/O error of the request. Errors while reading the body are never
/// connection failures: the connection was made, the response is broken.
fn classify_io(error: &io::Error) -> Failure {
    use io::ErrorKind::*;
    let text = error.to_string();
    match error.kind() {
        TimedOut | WouldBlock => Failure::Timeout,
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable => Failure::Connect(text),
        _ if text.contains("lookup address") || text.contains("resolve") => Failure::Resolve(text),
        _ => Failure::InvalidResponse(text),
    }
}

fn classify_body(error: &io::Error) -> Failure {
    match classify_io(error) {
        Failure::Timeout => Failure::Timeout,
        _ => Failure::InvalidResponse(format!("while reading the body: {error}")),
    }
}

/// Everything the poller keeps between polls.
pub struct Poller {
    target: Target,
    timeout: Duration,
    max_body_bytes: usize,
    mapping: Mapping,
    mapping_file: Option<PathBuf>,
    /// Modification time and size of the mapping file when last read; None if unreadable.
    mapping_stamp: Option<(SystemTime, u64)>,
    reload_ok: bool,
    polls: u64,
    failures: [u64; REASONS.len()],
    /// Samples skipped per mapped metric name, in mapping order.
    mapping_errors: Vec<(String, u64)>,
    /// Which mapped metrics skipped samples in the last successful poll.
    mapping_failing: Vec<bool>,
    /// The last poll's result: None before the first poll.
    last: Option<Result<Vec<Family>, Failure>>,
    last_duration: f64,
    last_success: Option<SystemTime>,
    /// Since when the target fails, and how many polls failed since.
    outage: Option<(Instant, u64)>,
}

impl Poller {
    pub fn new(config: &Config) -> Poller {
        let mapping_stamp = config.mapping_file.as_deref().and_then(stamp);
        let mut poller = Poller {
            target: config.target.clone(),
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
            mapping: Mapping {
                metrics: Vec::new(),
            },
            mapping_file: config.mapping_file.clone(),
            mapping_stamp,
            reload_ok: true,
            polls: 0,
            failures: [0; REASONS.len()],
            mapping_errors: Vec::new(),
            mapping_failing: Vec::new(),
            last: None,
            last_duration: 0.0,
            last_success: None,
            outage: None,
        };
        poller.set_mapping(config.mapping.clone());
        poller
    }

    fn set_mapping(&mut self, mapping: Mapping) {
        let old = std::mem::take(&mut self.mapping_errors);
        self.mapping_errors = mapping
            .metrics
            .iter()
            .map(|m| {
                let count = old
                    .iter()
                    .find(|(name, _)| *name == m.name)
                    .map_or(0, |&(_, n)| n);
                (m.name.clone(), count)
            })
            .collect();
        self.mapping_failing = vec![false; mapping.metrics.len()];
        self.mapping = mapping;
    }

    /// Re-reads the mapping file if it changed on disk. A broken file keeps the previous one.
    fn reload_if_changed(&mut self) {
        let Some(path) = self.mapping_file.clone() else {
            return;
        };
        let now = stamp(&path);
        if now == self.mapping_stamp {
            return;
        }
        self.mapping_stamp = now;
        match config::load_mapping(&path) {
            Ok(mapping) if mapping == self.mapping => self.reload_ok = true,
            Ok(mapping) => {
                log::info!(
                    "mapping reloaded from {}: {} metrics",
                    path.display(),
                    mapping.metrics.len()
                );
                self.reload_ok = true;
                self.set_mapping(mapping);
            }
            Err(e) => {
                log::warn!("mapping not reloaded, the previous one stays in use: {e}");
                self.reload_ok = false;
            }
        }
    }

    /// Polls the target once and returns the snapshot to publish.
    pub fn poll(&mut self) -> Snapshot {
        self.reload_if_changed();
        let started = Instant::now();
        let result = fetch(&self.target, self.timeout, self.max_body_bytes).and_then(|body| {
            let doc: Value =
                serde_json::from_slice(&body).map_err(|e| Failure::InvalidJson(e.to_string()))?;
            let applied = mapping::apply(&self.mapping, &doc);
            self.note_mapping_errors(&applied.errors);
            Ok(applied.families)
        });
        self.last_duration = started.elapsed().as_secs_f64();
        self.polls += 1;
        self.note_result(&result);
        self.last = Some(result);
        self.snapshot()
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
    fn note_result(&mut self, result: &Result<Vec<Family>, Failure>) {
        let previous = self
            .last
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(Failure::reason));
        match result {
            Ok(families) => {
                self.last_success = Some(SystemTime::now());
                match (previous, self.outage.take()) {
                    (Some(Err(_)), Some((since, failed))) => log::info!(
                        "poll recovered after {:.1}s ({failed} failed polls of {})",
                        since.elapsed().as_secs_f64(),
                        self.target
                    ),
                    (None, _) => {
                        let samples: usize = families.iter().map(|f| f.samples.len()).sum();
                        log::info!("first poll of {} succeeded: {samples} samples", self.target);
                    }
                    _ => {}
                }
            }
            Err(failure) => {
                let index = REASONS
                    .iter()
                    .position(|r| *r == failure.reason())
                    .expect("every reason is listed");
                self.failures[index] += 1;
                match previous {
                    Some(Err(reason)) if reason == failure.reason() => {}
                    Some(Err(_)) => {
                        log::warn!("poll of {} still failing, now: {failure}", self.target)
                    }
                    _ => log::warn!("poll of {} failing: {failure}", self.target),
                }
                let (since, failed) = self.outage.unwrap_or((Instant::now(), 0));
                self.outage = Some((since, failed + 1));
            }
        }
    }

    /// Renders the current state: the target's families if the last poll succeeded, then ours.
    pub fn snapshot(&self) -> Snapshot {
        let mut families = match &self.last {
            Some(Ok(families)) => families.clone(),
            _ => Vec::new(),
        };
        families.extend(self.own_families());
        let mut text = String::with_capacity(4096);
        exposition::render(&families, Format::Text, &mut text);
        let mut openmetrics = String::with_capacity(text.len() + 256);
        exposition::render(&families, Format::OpenMetrics, &mut openmetrics);
        Snapshot {
            ready: self.last_success.is_some(),
            text,
            openmetrics,
        }
    }

    fn own_families(&self) -> Vec<Family> {
        let up = matches!(self.last, Some(Ok(_)));
        let unix = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let mut failures = Family::new(
            "status_exporter_poll_failures_total",
            "Polls of the target that failed, by reason.",
            Kind::Counter,
        );
        for (reason, count) in REASONS.iter().zip(self.failures) {
            failures.push(&[("reason", reason)], count as f64);
        }
        let mut mapping_errors = Family::new(
            "status_exporter_mapping_errors_total",
            "Samples skipped because the document had no usable value for them, by mapped metric.",
            Kind::Counter,
        );
        for (name, count) in &self.mapping_errors {
            mapping_errors.push(&[("metric", name)], *count as f64);
        }
        let mut build = Family::new(
            "status_exporter_build_info",
            "Version of status-exporter.",
            Kind::Info,
        );
        build.push(&[("version", VERSION)], 1.0);
        vec![
            Family::single(
                "status_exporter_up",
                "1 if the last poll fetched and parsed the target's status document, 0 otherwise.",
                Kind::Gauge,
                f64::from(u8::from(up)),
            ),
            Family::single(
                "status_exporter_last_success_timestamp_seconds",
                "Unix time of the last successful poll, 0 before the first.",
                Kind::Gauge,
                self.last_success.map_or(0.0, unix),
            ),
            Family::single(
                "status_exporter_poll_duration_seconds",
                "Duration of the last poll (fetch, parse and map), 0 before the first.",
                Kind::Gauge,
                self.last_duration,
            ),
            Family::single("status_exporter_polls_total", "Polls of the target.", Kind::Counter, self.polls as f64),
            failures,
            mapping_errors,
            Family::single(
                "status_exporter_config_last_reload_successful",
                "1 if the last load of the mapping file succeeded (always 1 with the built-in mapping).",
                Kind::Gauge,
                f64::from(u8::from(self.reload_ok)),
            ),
            build,
        ]
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Polls every `interval` for ever, publishing each snapshot into `shared`. Polls start at a
/// fixed rate; a poll that overruns the interval is followed by the next one at once.
pub fn run(mut poller: Poller, interval: Duration, shared: Shared) -> ! {
    let mut next = Instant::now();
    loop {
        publish(&shared, poller.poll());
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        std::thread::sleep(next - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_host() {
        fn check(location: &str, expected: Result<&str, &str>) {
            let target = Target {
                host: "app".into(),
                port: 8000,
                path: "/api/status?x=1".into(),
            };
            let got = redirect_path(&target, &target.path, location).map_err(|f| f.to_string());
            assert_eq!(
                got,
                expected.map(String::from).map_err(String::from),
                "{location}"
            );
        }
        check("/v2/status", Ok("/v2/status"));
        check("status2", Ok("/api/status2"));
        check("http://app:8000/other", Ok("/other"));
        check("http://app:8000", Ok("/"));
        check(
            "http://evil:8000/status",
            Err("redirect not followed: to another host (http://evil:8000/status)"),
        );
        check(
            "http://app:9000/status",
            Err("redirect not followed: to another host (http://app:9000/status)"),
        );
        check(
            "https://app:8000/status",
            Err("redirect not followed: to another host or scheme (https://app:8000/status)"),
        );
        check(
            "//evil/status",
            Err("redirect not followed: to another host or scheme (//evil/status)"),
        );
        let port80 = Target {
            host: "app".into(),
            port: 80,
            path: "/".into(),
        };
        assert_eq!(
            redirect_path(&port80, "/", "http://app/x").ok().as_deref(),
            Some("/x")
        );
    }
}
