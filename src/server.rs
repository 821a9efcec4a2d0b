//! What the exporter answers over HTTP: routing, methods, headers, content negotiation and
//! basic authentication.
//!
//! Owns the endpoints (`/metrics` and `/`, `/-/healthy`, `/-/ready`), the choice between
//! text format 0.0.4 and OpenMetrics from the `Accept` header and of gzip from
//! `Accept-Encoding`, the scrape body, and the check of the `Authorization` header against the
//! users of `WEB_BASIC_AUTH_FILE` (compared in constant time; the file is read, and re-read
//! when it changes, by `files.rs`). A scrape reads the latest snapshot (an `Arc` clone, whose
//! bytes are sent as they are) and the process metrics (read at most once a second:
//! [`ProcessPart`]), never the target. The HTTP/1.1 machinery itself is in `http.rs`; this file
//! knows nothing about JSON, the target or its client.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::ServeSettings;
use crate::exposition::{self, Format};
use crate::files::WebUsers;
use crate::gzip;
use crate::http::{self, Body, Limits, Request, Response};
use crate::process;
use crate::snapshot::{self, Shared};

/// Serves on `listener` for ever, as `settings` say: OpenMetrics when the scraper prefers it
/// (unless turned off), the metrics only to the users of `WEB_BASIC_AUTH_FILE` (when set).
pub fn serve(listener: TcpListener, shared: Shared, settings: &ServeSettings) -> ! {
    let openmetrics = settings.openmetrics;
    let users = settings
        .web_auth_file
        .clone()
        .map(|path| Mutex::new(WebUsers::open(path)));
    let process = Mutex::new(None);
    http::serve(listener, Limits::default(), move |request| {
        respond(request, &shared, &process, openmetrics, users.as_ref())
    })
}

fn respond(
    request: &Request,
    shared: &Shared,
    process: &Mutex<Option<Arc<ProcessPart>>>,
    openmetrics: bool,
    users: Option<&Mutex<WebUsers>>,
) -> Response {
    let known = matches!(request.path, "/" | "/metrics" | "/-/healthy" | "/-/ready");
    if !known {
        return plain(404, "not found: the metrics are at /metrics\n");
    }
    // The health endpoints stay open: orchestrators and load balancers probe them without
    // credentials, and they tell nothing but "up" and "ready".
    let protected = matches!(request.path, "/" | "/metrics");
    if let (true, Some(users)) = (protected, users) {
        let mut users = users.lock().unwrap_or_else(PoisonError::into_inner);
        users.refresh();
        if !authorized(request.header("authorization"), users.credentials()) {
            let mut response = plain(401, "unauthorized: the metrics need basic authentication\n");
            response.headers.push((
                "WWW-Authenticate",
                r#"Basic realm="status-exporter", charset="UTF-8""#.into(),
            ));
            return response;
        }
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
        _ => {
            let format = if openmetrics {
                negotiate(request.header("accept"))
            } else {
                Format::Text
            };
            let compress = accepts_gzip(request.header("accept-encoding"));
            let mut headers = vec![("Content-Type", format.content_type().into())];
            let body = metrics(shared, process, format, compress, &mut headers);
            Response {
                status: 200,
                headers,
                body,
            }
        }
    }
}

fn plain(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec().into(),
    }
}

/// The scrape body: the latest snapshot's bytes (its stale rendition once it is too old), then
/// the process metrics; as gzip (two members, adding `Content-Encoding`) when the scraper
/// accepts it and the snapshot has a compressed copy. Nothing is copied or compressed here.
fn metrics(
    shared: &Shared,
    process: &Mutex<Option<Arc<ProcessPart>>>,
    format: Format,
    compress: bool,
    headers: &mut Vec<(&'static str, String)>,
) -> Body {
    let (snapshot, _) = snapshot::current(shared);
    let body = snapshot.rendition(Instant::now()).body(format);
    let process = ProcessPart::current(process);
    let process = process.body(format);
    headers.push(("Vary", "Accept-Encoding".into()));
    match (&body.gzip, compress) {
        (Some(gzipped), true) => {
            headers.push(("Content-Encoding", "gzip".into()));
            Body(vec![Arc::clone(gzipped), Arc::clone(&process.gzip)])
        }
        _ => Body(vec![Arc::clone(&body.text), Arc::clone(&process.text)]),
    }
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
    text: Arc<[u8]>,
    gzip: Arc<[u8]>,
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
                gzip: gzip::stored(out.as_bytes()).into(),
                text: Arc::from(out.into_bytes()),
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

/// Whether an `Authorization` header carries basic credentials equal to one of `credentials`
/// (each base64 of `user:password`). The scheme is case-insensitive (RFC 7617).
fn authorized(header: Option<&str>, credentials: &[String]) -> bool {
    let Some((scheme, token)) = header.and_then(|h| h.trim().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic") && matches_any(token.trim().as_bytes(), credentials)
}

/// Whether `given` equals one of `expected`, in a time that depends only on the length of
/// `given` and the number of entries: every byte is compared against every entry, with no
/// early exit, so the time tells an attacker nothing about how close a guess came or which
/// user it matched.
fn matches_any(given: &[u8], expected: &[String]) -> bool {
    let mut matched = 0u8;
    for candidate in expected.iter().map(String::as_bytes) {
        if candidate.is_empty() {
            continue; // never the case: base64 of a non-empty `user:password`
        }
        let mut diff = u8::from(given.len() != candidate.len());
        for (i, byte) in given.iter().enumerate() {
            diff |= byte ^ candidate[i % candidate.len()];
        }
        matched |= u8::from(std::hint::black_box(diff) == 0);
    }
    matched != 0
}

/// Chooses the format from an `Accept` header: OpenMetrics 1.0.0 when the header gives it a
/// quality above zero and at least that of text 0.0.4 (`text/plain`, `text/*`, `*/*`); text
/// 0.0.4 otherwise, including for a missing or unparseable header.
pub fn negotiate(accept: Option<&str>) -> Format {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.unwrap_or("").split(',') {
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
    fn basic_credentials() {
        // Aladdin:open sesame and prometheus:s3cret:x
        let users = [
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string(),
            "cHJvbWV0aGV1czpzM2NyZXQ6eA==".to_string(),
        ];
        fn check(header: Option<&str>, users: &[String], expected: bool) {
            assert_eq!(authorized(header, users), expected, "{header:?}");
        }
        check(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), &users, true);
        check(Some("basic   cHJvbWV0aGV1czpzM2NyZXQ6eA== "), &users, true);
        check(Some("BASIC cHJvbWV0aGV1czpzM2NyZXQ6eA=="), &users, true);
        check(None, &users, false);
        check(Some(""), &users, false);
        check(Some("Basic"), &users, false);
        check(Some("Basic "), &users, false);
        check(Some("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), &users, false);
        check(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ="), &users, false);
        check(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==="), &users, false);
        check(Some("Basic qWxhZGRpbjpvcGVuIHNlc2FtZQ=="), &users, false);
        check(
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            &users,
            false,
        );
        check(Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), &[], false);
        // The repetition of a short guess is not a match (the comparison wraps around inside).
        check(Some("Basic QQ=="), &["QQ==QQ==".to_string()], false);
    }

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
        check(Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), OpenMetrics);
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
