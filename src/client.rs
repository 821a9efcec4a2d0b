//! The client of the target: the only code that talks to it.
//!
//! Owns [`fetch`]: one GET described by a [`Request`], over our own small HTTP/1.1 client on
//! `std::net` (and rustls for https://, `tls.rs`), bounded in time by one deadline for the whole
//! fetch (lookup, connect, handshake, head, body, every redirect) and in bytes (head, body);
//! redirects are followed here, only on the target's scheme, host and port, so that the headers
//! and credentials never leave it; every resolved address is put to the caller's policy before
//! any connection. Also owns the headers of a request and the classification of every error into
//! a [`Failure`] with one [`Reason`]. Reaching the target is `client/connection.rs`, reading its
//! answer `client/response.rs`. Knows nothing about the schedule of polls, the document's JSON,
//! files or serving, and keeps no state between fetches: it can run on any thread.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use crate::log;
use crate::target::{self, split_authority, Target};
use crate::tls::Trust;

mod connection;
mod response;

#[cfg(test)]
use response::MAX_HEAD_BYTES;

/// Declares [`Reason`] from one list of variants with their labels, so that the variants,
/// [`Reason::ALL`] and [`Reason::label`] cannot fall out of step.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)*) => {
        /// Why a poll failed: each variant is one value of the `reason` label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
        }

        impl Reason {
            /// Every reason in declaration order, which is the output order (all are exposed
            /// from the start): `reason as usize` is its index here.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The value of the `reason` label.
            pub fn label(self) -> &'static str {
                match self {
                    $(Reason::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    /// The host name does not resolve.
    Resolve => "resolve",
    /// No TCP connection (refused, unreachable, reset).
    Connect => "connect",
    /// No TLS session: the certificate is not trusted or not for this host, the handshake
    /// failed.
    Tls => "tls",
    /// No complete answer within TARGET_TIMEOUT_SECONDS.
    Timeout => "timeout",
    /// An HTTP status other than 2xx.
    HttpStatus => "http_status",
    /// A redirect that is not followed: to another host or scheme, or too many.
    Redirect => "redirect",
    /// The body, headers or status line exceed their limit.
    TooLarge => "too_large",
    /// Not a well-formed HTTP response (bad chunking, truncated body).
    InvalidResponse => "invalid_response",
    /// The body is not a JSON document (found by the caller, which parses it).
    InvalidJson => "invalid_json",
    /// The document gives more series than MAX_SERIES (found by the caller, which maps it).
    TooManySeries => "too_many_series",
}

/// A failed poll: its reason and what went wrong, for the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    /// The error's own words (the status code for `HttpStatus`, empty for `Timeout`).
    pub detail: String,
}

impl Failure {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Failure {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

/// The text of a failure, for the log: the detail may hold the target's own words (a
/// `Location`, a certificate's names), so it is escaped ([`log::escape`]).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &log::escape(&self.detail);
        match self.reason {
            Reason::Resolve => write!(f, "cannot resolve the host: {e}"),
            Reason::Connect => write!(f, "cannot connect: {e}"),
            Reason::Tls if e.contains("UnknownIssuer") => write!(
                f,
                "TLS failed: {e}; set TARGET_CA_FILE to the CA that signed the target's certificate"
            ),
            Reason::Tls if e.contains("not valid for name") => write!(
                f,
                "TLS failed: {e}; poll the target by a name its certificate has"
            ),
            Reason::Tls => write!(f, "TLS failed: {e}"),
            Reason::Timeout if e.is_empty() => {
                f.write_str("no complete answer within TARGET_TIMEOUT_SECONDS")
            }
            Reason::Timeout => write!(f, "no complete answer within TARGET_TIMEOUT_SECONDS ({e})"),
            Reason::HttpStatus => write!(f, "HTTP status {e}"),
            Reason::Redirect => write!(f, "redirect not followed: {e}"),
            Reason::TooLarge => write!(f, "response too large: {e}"),
            Reason::InvalidResponse => write!(f, "invalid HTTP response: {e}"),
            Reason::InvalidJson => write!(f, "not a JSON document: {e}"),
            Reason::TooManySeries => f.write_str(e),
        }
    }
}

/// One GET of a target, as [`fetch`] needs it; borrowed, so that the poller and the probes
/// build it per fetch from what they hold.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub target: &'a Target,
    /// Headers to send, in order; one with the name of a default replaces it.
    pub headers: &'a [(String, String)],
    /// The value of the `Authorization` header from the credentials, if any.
    pub authorization: Option<&'a str>,
    /// The CA certificates for an https:// target.
    pub trust: &'a Trust,
    /// Largest body accepted, bytes.
    pub max_body_bytes: usize,
    /// When the whole fetch must be over: lookup, connection, handshake, request, answer, and
    /// every redirect.
    pub deadline: Instant,
}

/// The policy that allows every address: the poller's, which polls the one target its
/// operator configured.
pub fn any_address(_: SocketAddr) -> Result<(), Failure> {
    Ok(())
}

/// Headers that the client or the connection sets, lowercase: configuring them would send two
/// `Host` headers, or describe a body or a connection that the request does not have.
pub const MANAGED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// Redirects followed within one fetch.
const MAX_REDIRECTS: usize = 5;

/// The header values sent when the configuration does not set them. `identity`: the client
/// decodes no compression, so the target must not compress.
const DEFAULT_HEADERS: [(&str, &str); 3] = [
    (
        "User-Agent",
        concat!("status-exporter/", env!("CARGO_PKG_VERSION")),
    ),
    ("Accept", "application/json"),
    ("Accept-Encoding", "identity"),
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

/// The bytes of a GET of `path` on `target` with `headers`: `Host` first, `Connection: close`
/// last (one request per connection). The path, header names and values come checked (no
/// control characters: `target::path` and the settings), so nothing here can split a line.
fn request_bytes(target: &Target, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let mut out = format!("GET {path} HTTP/1.1\r\nHost: {host}");
    if target.port != target::default_port(target.https) {
        out += &format!(":{}", target.port);
    }
    out += "\r\n";
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += "Connection: close\r\n\r\n";
    out.into_bytes()
}

/// Fetches the document that `request` describes, following redirects on the same scheme,
/// host and port only: the headers, credentials among them, go nowhere else. `allow` is asked
/// about every address the host resolves to, at every connection (each redirect makes a new
/// one), before connecting to any: an `Err` ends the fetch with that failure. The body is read
/// into `reuse`, emptied first (an earlier body, whose memory is used again, or a new `Vec`).
pub fn fetch(
    request: &Request,
    allow: &dyn Fn(SocketAddr) -> Result<(), Failure>,
    mut reuse: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let target = request.target;
    let headers = request_headers(request.headers, request.authorization);
    let mut path = target.path.clone();
    for _ in 0..=MAX_REDIRECTS {
        match exchange(request, &path, &headers, allow, reuse)? {
            Answer::Body(body) => return Ok(body),
            Answer::Redirect(location, unused) => {
                path = redirect_path(target, &path, &location)?;
                reuse = unused;
            }
        }
    }
    Err(Failure::new(
        Reason::Redirect,
        format!("more than {MAX_REDIRECTS} redirects"),
    ))
}

/// What one request brought.
enum Answer {
    Body(Vec<u8>),
    /// A redirect to this `Location`, escaped to a string (see [`location_text`]), and the
    /// buffer for the body, unused.
    Redirect(String, Vec<u8>),
}

/// One request on a new connection, and its answer.
fn exchange(
    request: &Request,
    path: &str,
    headers: &[(String, String)],
    allow: &dyn Fn(SocketAddr) -> Result<(), Failure>,
    reuse: Vec<u8>,
) -> Result<Answer, Failure> {
    let target = request.target;
    let mut connection = connection::connect(
        &target.host,
        target.port,
        target.https,
        request.trust,
        request.deadline,
        allow,
    )?;
    connection
        .write_all(&request_bytes(target, path, headers))
        .and_then(|()| connection.flush())
        .map_err(|e| match io_failure(&e, "while sending the request") {
            Failure {
                reason: Reason::InvalidResponse,
                ..
            } => Failure::new(
                Reason::Connect,
                format!("the connection failed while sending the request: {e}"),
            ),
            other => other,
        })?;
    let mut reader = response::Reader::new(connection);
    let head = response::read_head(&mut reader)?;
    match head.status {
        200..=299 => {}
        301 | 302 | 303 | 307 | 308 => {
            let location = head.location.as_deref().ok_or_else(|| {
                Failure::new(Reason::Redirect, "a redirect without a Location header")
            })?;
            return Ok(Answer::Redirect(location_text(location)?, reuse));
        }
        code => return Err(Failure::new(Reason::HttpStatus, code.to_string())),
    }
    if let Some(coding) = &head.content_encoding {
        if !coding.eq_ignore_ascii_case("identity") {
            return Err(Failure::new(
                Reason::InvalidResponse,
                format!(
                    "the body is compressed ({coding}) although the request asked for none \
                     (Accept-Encoding: identity)"
                ),
            ));
        }
    }
    response::read_body(&mut reader, &head, request.max_body_bytes, reuse).map(Answer::Body)
}

/// A `Location` as text that can go into a request line: bytes outside ASCII and spaces
/// percent-encoded (as browsers do); a control character refuses the redirect, since it could
/// split the request.
fn location_text(location: &[u8]) -> Result<String, Failure> {
    let mut out = String::with_capacity(location.len());
    for &b in location {
        match b {
            b' ' | 0x80..=0xff => out += &format!("%{b:02X}"),
            b if b.is_ascii_control() => {
                return Err(Failure::new(
                    Reason::Redirect,
                    format!(
                        "a Location with a control character in it ({})",
                        String::from_utf8_lossy(location)
                    ),
                ))
            }
            b => out.push(char::from(b)),
        }
    }
    Ok(out)
}

/// The path a redirect leads to, if it stays on the target's scheme, host and port. A
/// fragment (`#...`) is not sent. The messages show the `Location` with its secrets hidden
/// (`target::redact`).
fn redirect_path(target: &Target, current: &str, location: &str) -> Result<String, Failure> {
    let location = location.trim();
    let shown = target::redact(location);
    let location = location.split('#').next().unwrap_or(location);
    let scheme = target.scheme();
    let absolute = location
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &location[scheme.len()..]);
    let path = if let Some(rest) = absolute {
        let (authority, path) = split_authority(rest);
        if !target.has_authority(authority) {
            return Err(Failure::new(
                Reason::Redirect,
                format!("to another host ({shown})"),
            ));
        }
        if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        }
    } else if location.starts_with("//") || location.contains("://") {
        return Err(Failure::new(
            Reason::Redirect,
            format!("to another host or scheme ({shown})"),
        ));
    } else if location.starts_with('/') {
        location.to_string()
    } else if let Some(query) = location.strip_prefix('?') {
        // Same path, another query.
        let base = current.split('?').next().unwrap_or("/");
        format!("{base}?{query}")
    } else {
        // Relative to the current path's directory.
        let base = current.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    target::path(&path).map_err(|_| {
        Failure::new(
            Reason::Redirect,
            format!("to a path that cannot be requested ({shown})"),
        )
    })
}

/// Classifies an I/O error after the connection was made (`during` says when): a timeout, a
/// TLS error, or a broken answer.
fn io_failure(error: &io::Error, during: &str) -> Failure {
    if connection::is_timeout(error) {
        return Failure::new(Reason::Timeout, during);
    }
    #[cfg(feature = "https")]
    if let Some(tls) = crate::tls::error_text(error) {
        return Failure::new(Reason::Tls, tls);
    }
    Failure::new(Reason::InvalidResponse, format!("{during}: {error}"))
}

#[cfg(test)]
mod tests;
