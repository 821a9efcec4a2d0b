//! The client of the target: the only code that talks to it.
//!
//! Owns [`fetch`] (minreq, bounded in time and bytes; redirects handled here so that they stay
//! on the target's scheme, host and port, and the headers and credentials never leave it), the
//! headers of a request, the classification of every error into a [`Failure`] with one
//! [`Reason`], and the process-wide trust of `TARGET_CA_FILE` ([`trust_ca_file`]). The name
//! `minreq` appears nowhere else. Knows nothing about the schedule of polls, the document's
//! JSON, files or serving.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::time::Instant;

use crate::config::RequestSettings;
use crate::target::{split_authority, Target};

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

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.detail;
        match self.reason {
            Reason::Resolve => write!(f, "cannot resolve the host: {e}"),
            Reason::Connect => write!(f, "cannot connect: {e}"),
            Reason::Tls if e.contains("UnknownIssuer") => write!(
                f,
                "TLS failed: {e}; set TARGET_CA_FILE to the CA that signed the target's certificate"
            ),
            Reason::Tls if e.contains("No CA certificates") => write!(
                f,
                "TLS failed: {e}; install the system's CA certificates (e.g. \
                 /etc/ssl/certs/ca-certificates.crt) or set TARGET_CA_FILE"
            ),
            Reason::Tls => write!(f, "TLS failed: {e}"),
            Reason::Timeout => f.write_str("no complete answer within TARGET_TIMEOUT_SECONDS"),
            Reason::HttpStatus => write!(f, "HTTP status {e}"),
            Reason::Redirect => write!(f, "redirect not followed: {e}"),
            Reason::TooLarge => write!(f, "response too large: {e}"),
            Reason::InvalidResponse => write!(f, "invalid HTTP response: {e}"),
            Reason::InvalidJson => write!(f, "not a JSON document: {e}"),
            Reason::TooManySeries => f.write_str(e),
        }
    }
}

/// Makes the TLS library trust the CA certificates of `ca_file` instead of the system's, for
/// the whole process: minreq's rustls verifier reads them from `SSL_CERT_FILE` (`SSL_CERT_DIR`
/// would add to them, so it goes), once, at the first https request. It changes the process's
/// environment, so call it before any other thread starts.
pub fn trust_ca_file(ca_file: &Path) {
    std::env::set_var("SSL_CERT_FILE", ca_file);
    std::env::remove_var("SSL_CERT_DIR");
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

/// Fetches the document that `request` describes, with `authorization` (the value of the
/// `Authorization` header from the credentials, if any), following redirects on the same
/// scheme, host and port only: the headers, credentials among them, go nowhere else.
pub fn fetch(request: &RequestSettings, authorization: Option<&str>) -> Result<Vec<u8>, Failure> {
    let target = &request.target;
    let max_body_bytes = request.max_body_bytes;
    let headers = request_headers(&request.headers, authorization);
    let deadline = Instant::now() + request.timeout;
    let mut path = target.path.clone();
    for _ in 0..=MAX_REDIRECTS {
        let url = Target {
            path: path.clone(),
            ..target.clone()
        }
        .to_string();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::new(Reason::Timeout, ""));
        }
        // minreq counts whole seconds: a fractional timeout is rounded up.
        let get = minreq::get(url)
            .with_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with_timeout(remaining.as_secs_f64().ceil() as u64)
            .with_follow_redirects(false)
            .with_max_headers_size(MAX_HEAD_BYTES)
            .with_max_status_line_length(MAX_HEAD_BYTES);
        let response = get.send_lazy().map_err(|e| classify(e, target.https))?;
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
            return Err(Failure::new(Reason::InvalidResponse, "no HTTP status line"));
        }
        match response.status_code {
            200..=299 => {}
            301 | 302 | 303 | 307 | 308 => {
                let location = header("location").ok_or_else(|| {
                    Failure::new(Reason::Redirect, "a redirect without a Location header")
                })?;
                path = redirect_path(target, &path, &location)?;
                continue;
            }
            code => return Err(Failure::new(Reason::HttpStatus, code.to_string())),
        }
        let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = length.filter(|&l| l > max_body_bytes as u64) {
            return Err(Failure::new(
                Reason::TooLarge,
                format!("{length} bytes, more than TARGET_MAX_BYTES ({max_body_bytes})"),
            ));
        }
        let mut body = Vec::with_capacity(length.map_or(8192, |l| l as usize));
        response
            .take(max_body_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| classify_body(&e))?;
        if body.len() > max_body_bytes {
            return Err(Failure::new(
                Reason::TooLarge,
                format!("more than TARGET_MAX_BYTES ({max_body_bytes} bytes)"),
            ));
        }
        if let Some(length) = length.filter(|&l| l != body.len() as u64) {
            return Err(Failure::new(
                Reason::InvalidResponse,
                format!("body truncated: {} of {length} bytes", body.len()),
            ));
        }
        // A complete answer counts even if it ends after the deadline: minreq's own timeout,
        // rounded up to whole seconds, has bounded the wait.
        return Ok(body);
    }
    Err(Failure::new(
        Reason::Redirect,
        format!("more than {MAX_REDIRECTS} redirects"),
    ))
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
            return Err(Failure::new(
                Reason::Redirect,
                format!("to another host ({location})"),
            ));
        }
        return Ok(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    if location.starts_with("//") || location.contains("://") {
        return Err(Failure::new(
            Reason::Redirect,
            format!("to another host or scheme ({location})"),
        ));
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
            Failure::new(
                Reason::Tls,
                "the server closed the connection during the handshake (does it speak TLS on \
                 this port?)",
            )
        }
        minreq::Error::IoError(e) => classify_tls(&e).unwrap_or_else(|| classify_io(&e)),
        #[cfg(feature = "https")]
        minreq::Error::RustlsCreateConnection(e) => Failure::new(Reason::Tls, e.to_string()),
        minreq::Error::AddressNotFound => Failure::new(Reason::Resolve, "no address for the host"),
        minreq::Error::HeadersOverflow => Failure::new(
            Reason::TooLarge,
            format!("headers over {MAX_HEAD_BYTES} bytes"),
        ),
        minreq::Error::StatusLineOverflow => Failure::new(
            Reason::TooLarge,
            format!("status line over {MAX_HEAD_BYTES} bytes"),
        ),
        other => Failure::new(Reason::InvalidResponse, other.to_string()),
    }
}

/// A TLS error (rustls wraps its own in the `io::Error`s of the stream): a failed handshake or
/// certificate check, or a peer that does not speak TLS.
#[cfg(feature = "https")]
fn classify_tls(error: &io::Error) -> Option<Failure> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(Failure::new(Reason::Tls, tls.to_string()))
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
        TimedOut | WouldBlock => Failure::new(Reason::Timeout, ""),
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | HostUnreachable | NetworkUnreachable => {
            Failure::new(Reason::Connect, text)
        }
        _ if text.contains("lookup address") || text.contains("resolve") => {
            Failure::new(Reason::Resolve, text)
        }
        _ => Failure::new(Reason::InvalidResponse, text),
    }
}

fn classify_body(error: &io::Error) -> Failure {
    match classify_io(error) {
        timeout @ Failure {
            reason: Reason::Timeout,
            ..
        } => timeout,
        _ => Failure::new(
            Reason::InvalidResponse,
            format!("while reading the body: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests;
