//! The poller: one thread that fetches the target's status document, maps it, and publishes an
//! immutable [`Snapshot`] for the server to serve.
//!
//! Owns the fetch (minreq, bounded in time and size, redirects handled here so they stay on
//! the same scheme, host and port, and so the headers and credentials never leave it), the
//! request headers and credentials (re-read when their file changes), the schedule (a random
//! start offset, a capped back-off while the target fails), the exporter's own
//! `status_exporter_*` metrics, poll state transitions and their log lines, and the reload of
//! the mapping file. A scrape never waits on the target: the server only clones the `Arc` of
//! the latest snapshot. Knows nothing about HTTP serving.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::{self, Auth, PollSettings, VERSION};
use crate::exposition::{self, Family, Format, Kind};
use crate::log;
use crate::mapping::{self, Mapping};
use crate::target::{split_authority, Target};
use crate::watch::{Refresh, Watched};

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
    /// No TLS session: the certificate is not trusted or not for this host, the handshake failed.
    #[cfg_attr(not(feature = "https"), allow(dead_code))]
    Tls(String),
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
pub const REASONS: [&str; 9] = [
    "resolve",
    "connect",
    "tls",
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
            Failure::Tls(_) => "tls",
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
            Failure::Tls(e) if e.contains("UnknownIssuer") => write!(
                f,
                "TLS failed: {e}; set TARGET_CA_FILE to the CA that signed the target's certificate"
            ),
            Failure::Tls(e) if e.contains("No CA certificates") => write!(
                f,
                "TLS failed: {e}; install the system's CA certificates (e.g. \
                 /etc/ssl/certs/ca-certificates.crt) or set TARGET_CA_FILE"
            ),
            Failure::Tls(e) => write!(f, "TLS failed: {e}"),
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

/// The header values sent when the configuration does not set them.
const DEFAULT_HEADERS: [(&str, &str); 2] = [
    (
        "User-Agent",
        concat!("status-exporter/", env!("CARGO_PKG_VERSION")),
    ),
    ("Accept", "application/json"),
];

/// The headers of a request: the defaults that `configured` does not replace, the configured
/// ones, then `Authorization` from the credentials.
fn request_headers(
    configured: &[(String, String)],
    authorization: Option<&str>,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = DEFAULT_HEADERS
        .iter()
        .filter(|(name, _)| !configured.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        .map(|&(name, value)| (name.to_string(), value.to_string()))
        .collect();
    headers.extend_from_slice(configured);
    if let Some(value) = authorization {
        headers.push(("Authorization".to_string(), value.to_string()));
    }
    headers
}

/// Fetches the document at `target` with these request headers, following redirects on the
/// same scheme, host and port only: the headers, credentials among them, go nowhere else.
pub fn fetch(
    target: &Target,
    headers: &[(String, String)],
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
        // minreq counts whole seconds: a fractional timeout is rounded up.
        let request = minreq::get(url)
            .with_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with_timeout(remaining.as_secs_f64().ceil() as u64)
            .with_follow_redirects(false)
            .with_max_headers_size(MAX_HEAD_BYTES)
            .with_max_status_line_length(MAX_HEAD_BYTES);
        let response = request.send_lazy().map_err(|e| classify(e, target.https))?;
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
        // A complete answer counts even if it ends after the deadline: minreq's own timeout,
        // rounded up to whole seconds, has bounded the wait.
        return Ok(body);
    }
    Err(Failure::Redirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// The path a redirect leads to, if it stays on the target's scheme, host and port.
fn redirect_path(target: &Target, current: &str, location: &str) -> Result<String, Failure> {
    let location = location.trim();
    let scheme = target.scheme();
    let absolute = location
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &location[scheme.len()..]);
    if let Some(rest) = absolute {
        let (authority, path) = split_authority(rest);
        if !target.has_authority(authority) {
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

/// Classifies an error of the request, up to the response's head.
fn classify(error: minreq::Error, https: bool) -> Failure {
    match error {
        // rustls reports a connection closed during the handshake as a bare end of file.
        minreq::Error::IoError(e)
            if https && e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_none() =>
        {
            Failure::Tls(
                "the server closed the connection during the handshake (does it speak TLS on \
                 this port?)"
                    .into(),
            )
        }
        minreq::Error::IoError(e) => classify_tls(&e).unwrap_or_else(|| classify_io(&e)),
        #[cfg(feature = "https")]
        minreq::Error::RustlsCreateConnection(e) => Failure::Tls(e.to_string()),
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

/// A TLS error (rustls wraps its own in the `io::Error`s of the stream): a failed handshake or
/// certificate check, or a peer that does not speak TLS.
#[cfg(feature = "https")]
fn classify_tls(error: &io::Error) -> Option<Failure> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(Failure::Tls(tls.to_string()))
}

#[cfg(not(feature = "https"))]
fn classify_tls(_: &io::Error) -> Option<Failure> {
    None
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
    target: Target,
    /// The configured time between polls.
    interval: Duration,
    timeout: Duration,
    max_body_bytes: usize,
    /// The configured request headers.
    headers: Vec<(String, String)>,
    /// The credentials (their `Authorization` value, None until a read succeeds) and their file.
    credentials: Option<(Auth, Watched<Option<String>>)>,
    mapping: Mapping,
    /// The mapping file (its last good mapping), when there is one.
    mapping_file: Option<Watched<Mapping>>,
    polls: u64,
    failures: [u64; REASONS.len()],
    /// Samples skipped per mapped metric name, in mapping order.
    mapping_errors: Vec<(String, u64)>,
    /// Which mapped metrics skipped samples in the last successful poll.
    mapping_failing: Vec<bool>,
    /// The last poll's result: None before the first poll.
    last: Option<Result<(), Failure>>,
    last_duration: f64,
    last_success: Option<SystemTime>,
    /// Since when the target fails, and how many polls failed since.
    outage: Option<(Instant, u64)>,
}

impl Poller {
    /// Sets up polling: reads the credentials and, with TARGET_CA_FILE, points the TLS library
    /// at it through the environment. Call it before starting the other threads.
    pub fn new(settings: &PollSettings) -> Poller {
        let request = &settings.request;
        if let (Some(ca), true) = (&request.ca_file, request.target.https) {
            // minreq's rustls verifier takes its CA certificates from SSL_CERT_FILE (or
            // SSL_CERT_DIR, which would add to them), read once, at the first https request.
            std::env::set_var("SSL_CERT_FILE", ca);
            std::env::remove_var("SSL_CERT_DIR");
        }
        let mut poller = Poller {
            target: request.target.clone(),
            interval: settings.interval,
            timeout: request.timeout,
            max_body_bytes: request.max_body_bytes,
            headers: request.headers.clone(),
            credentials: request.auth.clone().map(|auth| {
                let path = auth.file().to_path_buf();
                let watched = match config::read_credentials(&auth, auth.setting()) {
                    Ok(value) => Watched::new(path, Some(value)),
                    Err(_) => Watched::unread(path, None),
                };
                (auth, watched)
            }),
            mapping: Mapping {
                metrics: Vec::new(),
            },
            mapping_file: settings
                .mapping_file
                .clone()
                .map(|path| Watched::new(path, settings.mapping.clone())),
            polls: 0,
            failures: [0; REASONS.len()],
            mapping_errors: Vec::new(),
            mapping_failing: Vec::new(),
            last: None,
            last_duration: 0.0,
            last_success: None,
            outage: None,
        };
        poller.set_mapping(settings.mapping.clone());
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

    /// Re-reads the mapping file and the credentials if they changed on disk. A file that
    /// cannot be read or is broken keeps its last good value, and is reported once.
    fn reload_if_changed(&mut self) {
        if let Some(file) = &mut self.mapping_file {
            match file.refresh(config::load_mapping) {
                Refresh::Read { changed: true, .. } => {
                    let mapping = file.value.clone();
                    log::info!(
                        "mapping reloaded from {}: {} metrics",
                        file.path.display(),
                        mapping.metrics.len()
                    );
                    self.set_mapping(mapping);
                }
                Refresh::Failed(e) => {
                    log::warn!("mapping not reloaded, the previous one stays in use: {e}")
                }
                Refresh::Read { .. } | Refresh::Unchanged => {}
            }
        }
        if let Some((auth, file)) = &mut self.credentials {
            let had = file.value.is_some();
            match file.refresh(|_| config::read_credentials(auth, auth.setting()).map(Some)) {
                Refresh::Read { changed, recovered } if changed || recovered => {
                    log::info!("credentials reloaded from {}", file.path.display())
                }
                Refresh::Failed(e) => {
                    let kept = if had {
                        "the previous credentials stay in use"
                    } else {
                        "requests go without credentials"
                    };
                    log::warn!("{e}; {kept} until the file can be read");
                }
                Refresh::Read { .. } | Refresh::Unchanged => {}
            }
        }
    }

    /// Polls the target once and returns the snapshot to publish.
    pub fn poll(&mut self) -> Snapshot {
        self.reload_if_changed();
        let authorization = self
            .credentials
            .as_ref()
            .and_then(|(_, file)| file.value.as_deref());
        let headers = request_headers(&self.headers, authorization);
        let started = Instant::now();
        let fetched = fetch(&self.target, &headers, self.timeout, self.max_body_bytes);
        let result = fetched.and_then(|body| {
            let doc: Value = mapping::parse_document(&self.mapping, &body)
                .map_err(|e| Failure::InvalidJson(e.to_string()))?;
            let applied = mapping::apply(&self.mapping, &doc);
            self.note_mapping_errors(&applied.errors);
            Ok(applied.families)
        });
        self.last_duration = started.elapsed().as_secs_f64();
        self.polls += 1;
        self.note_result(&result);
        let (outcome, app) = match result {
            Ok(families) => (Ok(()), families),
            Err(failure) => (Err(failure), Vec::new()),
        };
        self.last = Some(outcome);
        self.snapshot(&app)
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
            .map(|r| r.as_ref().map_err(Failure::reason));
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
                if failed + 1 == BACKOFF_AFTER {
                    log::warn!(
                        "{BACKOFF_AFTER} polls of {} failed in a row; polling less often, up to \
                         every {:?}, until one succeeds",
                        self.target,
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

    /// Renders the current state: the target's families if the last poll succeeded, then ours.
    /// Renders the state after a poll: the target's families `app` (empty unless the poll
    /// succeeded), then the exporter's own.
    pub fn snapshot(&self, app: &[Family]) -> Snapshot {
        let own = self.own_families();
        let render = |format| {
            let mut out = String::with_capacity(4096);
            exposition::render(app, format, &mut out);
            exposition::render(&own, format, &mut out);
            out
        };
        Snapshot {
            ready: self.last_success.is_some(),
            text: render(Format::Text),
            openmetrics: render(Format::OpenMetrics),
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
            Family::single(
                "status_exporter_poll_interval_seconds",
                "Time from the start of one poll to the start of the next: POLLING_INTERVAL_SECONDS, up to 4 times longer while backing off after 3 failed polls in a row.",
                Kind::Gauge,
                self.delay().as_secs_f64(),
            ),
            Family::single("status_exporter_polls_total", "Polls of the target.", Kind::Counter, self.polls as f64),
            failures,
            mapping_errors,
            Family::single(
                "status_exporter_config_last_reload_successful",
                "1 if the last load of the mapping file succeeded (always 1 with the built-in mapping).",
                Kind::Gauge,
                f64::from(u8::from(!self.mapping_file.as_ref().is_some_and(|f| f.failing))),
            ),
            Family::single(
                "status_exporter_credentials_last_reload_successful",
                "1 if the last read of the credentials file succeeded (always 1 without credentials).",
                Kind::Gauge,
                f64::from(u8::from(!self.credentials.as_ref().is_some_and(|(_, f)| f.failing))),
            ),
            build,
        ]
    }
}

/// Polls for ever, publishing each snapshot into `shared`. The first poll waits a random
/// [`start_offset`]; then polls start at a fixed rate, [`Poller::delay`] apart; a poll that
/// overruns it is followed by the next one at once.
pub fn run(mut poller: Poller, shared: Shared) -> ! {
    std::thread::sleep(start_offset(poller.interval, random_fraction()));
    let mut next = Instant::now();
    loop {
        publish(&shared, poller.poll());
        next += poller.delay();
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

    fn target(https: bool, port: u16) -> Target {
        Target {
            https,
            host: "app".into(),
            port,
            path: "/api/status?x=1".into(),
        }
    }

    #[test]
    fn redirects_stay_on_the_scheme_host_and_port() {
        fn check(target: &Target, location: &str, expected: Result<&str, &str>) {
            let got = redirect_path(target, &target.path, location).map_err(|f| f.to_string());
            assert_eq!(
                got,
                expected.map(String::from).map_err(String::from),
                "{target} -> {location}"
            );
        }
        let http = &target(false, 8000);
        check(http, "/v2/status", Ok("/v2/status"));
        check(http, "status2", Ok("/api/status2"));
        check(http, "http://app:8000/other", Ok("/other"));
        check(http, "HTTP://APP:8000/other", Ok("/other"));
        check(http, "http://app:8000", Ok("/"));
        check(http, "http://app:8000?q", Ok("?q"));
        check(
            http,
            "http://evil:8000/status",
            Err("redirect not followed: to another host (http://evil:8000/status)"),
        );
        check(
            http,
            "http://app:9000/status",
            Err("redirect not followed: to another host (http://app:9000/status)"),
        );
        check(
            http,
            "http://user@app:8000/status",
            Err("redirect not followed: to another host (http://user@app:8000/status)"),
        );
        check(
            http,
            "http://app:8000@evil/status",
            Err("redirect not followed: to another host (http://app:8000@evil/status)"),
        );
        check(
            http,
            "https://app:8000/status",
            Err("redirect not followed: to another host or scheme (https://app:8000/status)"),
        );
        check(
            http,
            "//evil/status",
            Err("redirect not followed: to another host or scheme (//evil/status)"),
        );
        let port80 = &target(false, 80);
        check(port80, "http://app/x", Ok("/x"));
        check(port80, "http://app:80/x", Ok("/x"));
        check(
            port80,
            "http://app:443/x",
            Err("redirect not followed: to another host (http://app:443/x)"),
        );
        let https = &target(true, 443);
        check(https, "https://app/x", Ok("/x"));
        check(https, "https://app:443/x", Ok("/x"));
        check(https, "/x", Ok("/x"));
        check(
            https,
            "http://app/x",
            Err("redirect not followed: to another host or scheme (http://app/x)"),
        );
        check(
            https,
            "https://app:8443/x",
            Err("redirect not followed: to another host (https://app:8443/x)"),
        );
        let v6 = &Target {
            host: "::1".into(),
            ..target(true, 8443)
        };
        check(v6, "https://[::1]:8443/x", Ok("/x"));
        check(
            v6,
            "https://[::2]:8443/x",
            Err("redirect not followed: to another host (https://[::2]:8443/x)"),
        );
    }

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

    #[test]
    fn configured_headers_replace_the_defaults() {
        fn check(configured: &[(&str, &str)], auth: Option<&str>, expected: &[(&str, &str)]) {
            let configured: Vec<(String, String)> = configured
                .iter()
                .map(|&(n, v)| (n.into(), v.into()))
                .collect();
            let got = request_headers(&configured, auth);
            let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (&**n, &**v)).collect();
            assert_eq!(got, expected);
        }
        let agent = concat!("status-exporter/", env!("CARGO_PKG_VERSION"));
        check(
            &[],
            None,
            &[("User-Agent", agent), ("Accept", "application/json")],
        );
        check(
            &[("accept", "application/vnd.app+json"), ("X-Api-Key", "k")],
            Some("Bearer t"),
            &[
                ("User-Agent", agent),
                ("accept", "application/vnd.app+json"),
                ("X-Api-Key", "k"),
                ("Authorization", "Bearer t"),
            ],
        );
        check(
            &[("User-Agent", "probe/1")],
            None,
            &[("Accept", "application/json"), ("User-Agent", "probe/1")],
        );
    }
}
