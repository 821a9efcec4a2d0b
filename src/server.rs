//! What the exporter answers over HTTP: routing, methods, headers, content negotiation and
//! basic authentication.
//!
//! Owns the endpoints (`/metrics` and `/`, `/-/healthy`, `/-/ready`, `/-/reload` when enabled),
//! the choice between text format 0.0.4 and OpenMetrics from the `Accept` header, of the status
//! page for a browser at `/` ([`wants_page`]; the page itself is `page.rs`'s), and of gzip from
//! `Accept-Encoding`, the scrape body, and the `Authorization` header, whose credentials the
//! users of `WEB_BASIC_AUTH_FILE` check (`files::WebUsers::check`). A scrape reads the latest
//! snapshot (an `Arc` clone, whose bytes are sent as they are) and the process metrics (read at
//! most once a second: [`ProcessPart`]), never the target. The HTTP/1.1 machinery itself is in
//! `http.rs`; this file knows nothing about JSON, the target or its client.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crate::config::ServeSettings;
use crate::exposition::{self, Format};
use crate::files::Files;
use crate::gzip;
use crate::http::{self, Body, Control, Limits, Request, Response};
use crate::page;
use crate::probe::{self, Modules, Probes};
use crate::process;
use crate::snapshot::{self, Shared};

/// Serves on `listener` until `control` stops it, as `settings` say: OpenMetrics when the
/// scraper prefers it (unless turned off), the metrics only to the users of
/// `WEB_BASIC_AUTH_FILE` (when set, in `files`), `POST /-/reload` when enabled.
pub fn serve(
    listener: TcpListener,
    shared: Shared,
    files: Arc<Files>,
    probes: Probes,
    settings: &ServeSettings,
    control: Control,
) -> ! {
    let state = State {
        shared,
        process: Mutex::new(None),
        modules: Mutex::default(),
        files,
        probes,
        settings: settings.clone(),
    };
    state.modules();
    http::serve(listener, Limits::default(), control, move |request| {
        respond(request, &state)
    })
}

/// What every response is made from.
struct State {
    shared: Shared,
    process: Mutex<Option<Arc<ProcessPart>>>,
    /// The modules of `/probe` last seen in the mapping file.
    modules: Mutex<Arc<Modules>>,
    files: Arc<Files>,
    probes: Probes,
    settings: ServeSettings,
}

impl State {
    /// The modules of `/probe` in use (the poller brings the mapping file up to date before
    /// each poll); none without a mapping file. While the file is being read (a large one takes
    /// seconds), the modules last seen: a scrape never waits for it.
    fn modules(&self) -> Option<Arc<Modules>> {
        let current = match self.files.mapping.as_ref()?.try_lock() {
            Ok(file) => Some(file.modules()),
            Err(TryLockError::Poisoned(file)) => Some(file.into_inner().modules()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut seen = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = current {
            *seen = current;
        }
        Some(Arc::clone(&seen)).filter(|m| !m.list.is_empty())
    }
}

fn respond(request: &Request, state: &State) -> Response {
    let State {
        shared,
        process,
        files,
        probes,
        settings,
        ..
    } = state;
    let reload = request.path == "/-/reload";
    let modules = (request.path == "/probe")
        .then(|| state.modules())
        .flatten();
    let known =
        matches!(request.path, "/" | "/metrics" | "/-/healthy" | "/-/ready") || modules.is_some();
    if reload && !settings.enable_reload {
        return plain(
            404,
            "not found: /-/reload is off; start the exporter with --web-enable-reload \
             (WEB_ENABLE_RELOAD=true) to turn it on, or send it SIGHUP\n",
        );
    }
    if !known && !reload {
        return plain(404, "not found: the metrics are at /metrics\n");
    }
    // The health endpoints stay open: orchestrators and load balancers probe them without
    // credentials, and they tell nothing but "up" and "ready".
    let protected = matches!(request.path, "/" | "/metrics" | "/probe") || reload;
    if let (true, Some(users)) = (protected, &files.users) {
        let credentials = basic_credentials(request.header("authorization"));
        if !credentials.is_some_and(|c| users.check(c)) {
            let mut response = plain(401, "unauthorized: this path needs basic authentication\n");
            response.headers.push((
                "WWW-Authenticate",
                r#"Basic realm="status-exporter", charset="UTF-8""#.into(),
            ));
            return response;
        }
    }
    if reload {
        if request.method != "POST" && request.method != "PUT" {
            let mut response = plain(405, "method not allowed: use POST\n");
            response.headers.push(("Allow", "POST, PUT".into()));
            return response;
        }
        return reload_files(files);
    }
    if request.method != "GET" && request.method != "HEAD" {
        let mut response = plain(405, "method not allowed: use GET or HEAD\n");
        response.headers.push(("Allow", "GET, HEAD".into()));
        return response;
    }
    match request.path {
        "/-/healthy" => plain(200, "OK\n"),
        "/-/ready" => match snapshot::current(shared) {
            (snapshot, true) if snapshot.ready => plain(200, "OK\n"),
            (_, true) => plain(503, "not ready: no successful poll of the target yet\n"),
            (_, false) => plain(
                503,
                "not ready: the poller has stopped publishing (see the log)\n",
            ),
        },
        "/" if wants_page(request.header("accept")) => {
            let (snapshot, fresh) = snapshot::current(shared);
            Response {
                status: 200,
                headers: vec![
                    ("Content-Type", "text/html; charset=utf-8".into()),
                    ("Vary", "Accept, Accept-Encoding".into()),
                    ("Cache-Control", "no-store".into()),
                ],
                body: page::render(&snapshot, fresh).into_bytes().into(),
            }
        }
        _ => {
            let format = if settings.openmetrics {
                negotiate(request.header("accept"))
            } else {
                Format::Text
            };
            let compress = accepts_gzip(request.header("accept-encoding"));
            let mut headers = vec![("Content-Type", format.content_type().into())];
            let Some(modules) = modules else {
                // The probes' counters, when there are modules, before the process metrics.
                let probing = state.modules().map(|m| {
                    let mut out = String::new();
                    exposition::render(&probes.families(&m), format, &mut out);
                    out.into_bytes()
                });
                let body = metrics(shared, process, format, compress, probing, &mut headers);
                return Response {
                    status: 200,
                    headers,
                    body,
                };
            };
            // `/probe`: the result, then its age.
            let timeout = request.header("x-prometheus-scrape-timeout-seconds");
            let served = match probes.probe(&modules, request.query, timeout) {
                Ok(served) => served,
                Err((status, text)) => return plain(status, &text),
            };
            let mut tail = String::new();
            exposition::render(&probe::age(served.age), format, &mut tail);
            if format == Format::OpenMetrics {
                tail.push_str(exposition::EOF);
            }
            let body = served.result.rendition.body(format);
            headers.push(("Vary", "Accept, Accept-Encoding".into()));
            let body = match (&body.gzip, compress) {
                (Some(gzipped), true) => {
                    headers.push(("Content-Encoding", "gzip".into()));
                    Body(vec![
                        Arc::clone(gzipped),
                        gzip::stored(tail.as_bytes()).into(),
                    ])
                }
                _ => Body(vec![Arc::clone(&body.text), tail.into_bytes().into()]),
            };
            Response {
                status: 200,
                headers,
                body,
            }
        }
    }
}

/// `POST /-/reload`: reads every file again, as SIGHUP does; 200 with one line per file, or 500
/// with them when one could not be read or is invalid (its previous version stays in use), as
/// Prometheus answers its own `/-/reload`. The files are read on a thread of the default stack
/// size: a deeply nested mapping file needs more than a connection thread has.
fn reload_files(files: &Arc<Files>) -> Response {
    let for_reload = Arc::clone(files);
    let done = std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || for_reload.reload("POST /-/reload"))
        .map(|thread| thread.join());
    let Ok(Ok(done)) = done else {
        return plain(500, "the files could not be read again: see the log\n");
    };
    let failed = done.iter().any(|r| r.failed);
    let mut body: String = done.iter().map(|r| format!("{}\n", r.line)).collect();
    if done.is_empty() {
        body =
            "no file to reload (no CONFIG_FILE, credentials file or WEB_BASIC_AUTH_FILE)\n".into();
    }
    plain(if failed { 500 } else { 200 }, &body)
}

fn plain(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec().into(),
    }
}

/// The scrape body: the latest snapshot's bytes (its stale rendition once it is too old), then
/// the probes' counters (`probing`, small, when there are modules), then the process metrics;
/// as gzip (a member each, adding `Content-Encoding`) when the scraper accepts it and the
/// snapshot has a compressed copy. Nothing large is copied or compressed here.
fn metrics(
    shared: &Shared,
    process: &Mutex<Option<Arc<ProcessPart>>>,
    format: Format,
    compress: bool,
    probing: Option<Vec<u8>>,
    headers: &mut Vec<(&'static str, String)>,
) -> Body {
    let (snapshot, _) = snapshot::current(shared);
    let body = snapshot.rendition(Instant::now()).body(format);
    let process = ProcessPart::current(process);
    let process = process.body(format);
    headers.push(("Vary", "Accept, Accept-Encoding".into()));
    let gzipped = body.gzip.as_ref().filter(|_| compress);
    let mut parts = vec![Arc::clone(gzipped.unwrap_or(&body.text))];
    if let Some(probing) = probing {
        parts.push(match gzipped {
            Some(_) => gzip::stored(&probing).into(),
            None => probing.into(),
        });
    }
    parts.push(Arc::clone(match gzipped {
        Some(_) => &process.gzip,
        None => &process.text,
    }));
    if gzipped.is_some() {
        headers.push(("Content-Encoding", "gzip".into()));
    }
    Body(parts)
}

/// The process metrics as a scrape appends them, in both formats (OpenMetrics with the closing
/// `# EOF`), each also as one gzip member (stored, not compressed: `gzip::stored`). Read from `/proc` at most once per [`PROCESS_MAX_AGE`]
/// and shared by the scrapes in between: reading `/proc/self` for every scrape cost more than
/// the rest of the scrape together.
struct ProcessPart {
    read: Instant,
    text: ProcessBody,
    openmetrics: ProcessBody,
}

struct ProcessBody {
    text: Arc<Vec<u8>>,
    gzip: Arc<Vec<u8>>,
}

/// How old the process metrics of a scrape may be.
const PROCESS_MAX_AGE: Duration = Duration::from_secs(1);

impl ProcessPart {
    /// The process metrics, read again if the last read is [`PROCESS_MAX_AGE`] old. The lock is
    /// held during a read (about 50 µs), so that scrapes at the same moment read once.
    fn current(cache: &Mutex<Option<Arc<ProcessPart>>>) -> Arc<ProcessPart> {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cache {
            Some(part) if part.read.elapsed() < PROCESS_MAX_AGE => Arc::clone(part),
            _ => {
                let part = Arc::new(ProcessPart::read());
                *cache = Some(Arc::clone(&part));
                part
            }
        }
    }

    fn read() -> ProcessPart {
        let families = process::read();
        let body = |format| {
            let mut out = String::with_capacity(1024);
            exposition::render(&families, format, &mut out);
            if format == Format::OpenMetrics {
                out.push_str(exposition::EOF);
            }
            ProcessBody {
                gzip: Arc::new(gzip::stored(out.as_bytes())),
                text: Arc::new(out.into_bytes()),
            }
        };
        ProcessPart {
            read: Instant::now(),
            text: body(Format::Text),
            openmetrics: body(Format::OpenMetrics),
        }
    }

    fn body(&self, format: Format) -> &ProcessBody {
        match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        }
    }
}

/// Whether an `Accept-Encoding` header (RFC 9110, section 12.5.3) accepts gzip: `gzip` (or its
/// alias `x-gzip`) with a quality above zero, or `*` above zero when gzip is not named. A
/// missing header accepts only the identity.
pub fn accepts_gzip(header: Option<&str>) -> bool {
    let (mut gzip, mut any) = (None, None);
    for coding in header.unwrap_or("").split(',') {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("q") {
                    q = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0);
                }
            }
        }
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(gzip.map_or(q, |g: f32| g.max(q))),
            "*" => any = Some(q),
            _ => {}
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// The credentials of an `Authorization: Basic ...` header (RFC 7617): what follows the
/// scheme, which is case-insensitive. None for a missing header or another scheme.
fn basic_credentials(header: Option<&str>) -> Option<&str> {
    let (scheme, credentials) = header?.trim().split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("basic") && !credentials.is_empty()).then_some(credentials)
}

/// The media ranges of an `Accept` header (RFC 9110, section 12.5.1): each type in lower case,
/// its quality (0 when unparseable or out of range) and its `version` parameter, if any.
fn media_ranges(accept: Option<&str>) -> impl Iterator<Item = (String, f32, Option<String>)> + '_ {
    accept.unwrap_or("").split(',').map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f32, None);
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "version" => version = Some(value.trim().trim_matches('"').to_string()),
                _ => {}
            }
        }
        (media, q, version)
    })
}

/// The qualities an `Accept` header gives OpenMetrics 1.0.0 and text format 0.0.4 (through
/// `text/plain`, `text/*` or `*/*`).
fn metrics_qualities(accept: Option<&str>) -> (f32, f32) {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for (media, q, version) in media_ranges(accept) {
        match media.as_str() {
            "application/openmetrics-text"
                if matches!(version.as_deref(), None | Some("1.0.0" | "0.0.1")) =>
            {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" if matches!(version.as_deref(), None | Some("0.0.4")) => {
                text = text.max(q)
            }
            "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    (openmetrics, text)
}

/// Whether an `Accept` header asks for the status page rather than the metrics: it names
/// `text/html` (or `application/xhtml+xml`) with a quality above that of every metrics format,
/// as browsers do. Wildcards alone (`*/*`, curl's) and Prometheus's header get the metrics.
pub fn wants_page(accept: Option<&str>) -> bool {
    let html = media_ranges(accept)
        .filter(|(media, _, _)| media == "text/html" || media == "application/xhtml+xml")
        .map(|(_, q, _)| q)
        .fold(0.0f32, f32::max);
    let (openmetrics, text) = metrics_qualities(accept);
    html > 0.0 && html > openmetrics && html > text
}

/// Chooses the format from an `Accept` header: OpenMetrics 1.0.0 when the header gives it a
/// quality above zero and at least that of text 0.0.4 (`text/plain`, `text/*`, `*/*`); text
/// 0.0.4 otherwise, including for a missing or unparseable header.
pub fn negotiate(accept: Option<&str>) -> Format {
    let (openmetrics, text) = metrics_qualities(accept);
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_from_the_header() {
        fn check(header: Option<&str>, expected: Option<&str>) {
            assert_eq!(basic_credentials(header), expected, "{header:?}");
        }
        check(
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Some("QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        );
        check(Some("basic   cHJvbWV0aGV1cw== "), Some("cHJvbWV0aGV1cw=="));
        check(Some("BASIC cHJvbWV0aGV1cw=="), Some("cHJvbWV0aGV1cw=="));
        check(None, None);
        check(Some(""), None);
        check(Some("Basic"), None);
        check(Some("Basic "), None);
        check(Some("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), None);
    }

    #[test]
    fn the_page_only_for_browsers() {
        fn check(accept: Option<&str>, expected: bool) {
            assert_eq!(wants_page(accept), expected, "{accept:?}");
        }
        // Firefox, Chromium, Safari.
        check(
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            true,
        );
        check(Some("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"), true);
        check(
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            true,
        );
        check(Some("TEXT/HTML"), true);
        // Prometheus 2.x and 3.x, curl, wget, Python's requests, no header.
        check(Some(PROMETHEUS_2), false);
        check(Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"), false);
        check(Some("*/*"), false);
        check(None, false);
        check(Some(""), false);
        check(Some("text/*"), false);
        // As much as the metrics is not more.
        check(Some("text/html, text/plain"), false);
        check(Some("text/html;q=0.5, */*;q=0.5"), false);
        check(Some("text/html;q=0.6, */*;q=0.5"), true);
        check(Some("text/html;q=0"), false);
        check(Some("text/html;q=abc, */*;q=0.1"), false);
    }

    const PROMETHEUS_2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn gzip_negotiation() {
        fn check(header: Option<&str>, expected: bool) {
            assert_eq!(accepts_gzip(header), expected, "{header:?}");
        }
        check(None, false);
        check(Some(""), false);
        check(Some("identity"), false);
        check(Some("gzip"), true);
        check(Some("GZip"), true);
        check(Some("x-gzip"), true);
        check(Some("deflate, gzip;q=0.5"), true);
        check(Some("gzip;q=0"), false);
        check(Some("gzip; q=0.000"), false);
        check(Some("gzip;q=abc"), false);
        check(Some("*"), true);
        check(Some("*;q=0"), false);
        check(Some("gzip;q=0, *"), false);
        check(Some("br, deflate"), false);
        // Prometheus.
        check(Some("gzip"), true);
        // curl --compressed.
        check(Some("deflate, gzip, br, zstd"), true);
    }

    #[test]
    fn content_negotiation() {
        fn check(accept: Option<&str>, expected: Format) {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
        use Format::{OpenMetrics, Text};
        check(None, Text);
        check(Some(""), Text);
        check(Some("*/*"), Text);
        check(Some("garbage;;;=,,"), Text);
        check(Some("text/plain"), Text);
        // Prometheus 2.x and 3.x.
        check(Some(PROMETHEUS_2), OpenMetrics);
        check(Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"), OpenMetrics);
        check(Some("application/openmetrics-text"), OpenMetrics);
        check(
            Some("Application/OpenMetrics-Text; Version=1.0.0"),
            OpenMetrics,
        );
        check(
            Some("application/openmetrics-text;version=0.0.1"),
            OpenMetrics,
        );
        check(Some("application/openmetrics-text;version=2.0.0"), Text);
        check(Some("application/openmetrics-text;q=0"), Text);
        check(
            Some("application/openmetrics-text;q=0.4,text/plain;q=0.5"),
            Text,
        );
        check(
            Some("text/plain;q=0.5, application/openmetrics-text;q=0.5"),
            OpenMetrics,
        );
        check(Some("application/openmetrics-text;q=abc"), Text);
        check(Some("application/json"), Text);
    }
}
