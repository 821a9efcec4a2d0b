//! The target's URL: where the status document is (scheme, host, port, path), parsed from a
//! setting and printed back.
//!
//! Owns [`Target`], its parsing ([`Target::parse`], [`path`], [`host`]) and its `Display`, which
//! hides secrets ([`redact`]: the values of query parameters named like a secret, the password
//! of `user:password@`), and the one parser of an authority (`host[:port]`, `[v6][:port]`), used
//! both for the URL setting and for checking that a redirect stays on the target's origin
//! ([`Target::has_authority`]). Knows nothing about setting names, requests or sockets.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

/// Where the status document is: `http://{host}:{port}{path}`, or `https://` with `https`.
/// `Display` prints it with the secrets of its query hidden ([`redact`]): the request sent to
/// the target is built from the fields, never from `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// TLS (`https://`); only possible in a build with the `https` feature.
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why a URL or a path cannot be a target. `Display` is the fix, to follow the setting's name
/// and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Neither `http://` nor `https://`.
    Scheme,
    /// `https://` in a build without the `https` feature.
    NoHttps,
    /// `user:password@` (or `user@`) in the authority.
    Credentials,
    /// A `[` without its `]`, or something other than `:port` after it.
    Ipv6,
    /// An empty host, or one with spaces or a colon.
    Host,
    /// A port that is not a number from 1 to 65535.
    Port,
    /// This path has spaces, control characters or `#` in it.
    Path(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => {
                "must start with http:// or https:// (e.g. http://localhost:8000/status)"
            }
            UrlError::NoHttps => {
                "is an https:// URL, and this build has no HTTPS support; build with --features https"
            }
            UrlError::Credentials => "has credentials in it (user:password@); remove them",
            UrlError::Ipv6 => "has a malformed [IPv6] host",
            UrlError::Host => "has no valid host (e.g. http://localhost:8000/status)",
            UrlError::Port => "has an invalid port (1-65535)",
            UrlError::Path(_) => "is not a URL path (no spaces or #; percent-encode them)",
        })
    }
}

impl Target {
    /// Parses a full `http://` or `https://` URL. The port defaults to the scheme's, the path
    /// to `/`.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            if !cfg!(feature = "https") {
                return Err(UrlError::NoHttps);
            }
            (true, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        // A URL that does not parse with an `@` before its query may hold a password with a `/`
        // in it: it is reported as credentials, whose error never prints the URL.
        let before_query = rest.split(['?', '#']).next().unwrap_or(rest);
        Target::parse_rest(https, rest).map_err(|e| match e {
            UrlError::Path(_) | UrlError::Host | UrlError::Port | UrlError::Ipv6
                if before_query.contains('@') =>
            {
                UrlError::Credentials
            }
            e => e,
        })
    }

    /// Parses what follows `scheme://`.
    fn parse_rest(https: bool, rest: &str) -> Result<Target, UrlError> {
        let (authority, path) = split_authority(rest);
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let (host, port) = host_and_port(authority).ok_or(UrlError::Ipv6)?;
        let bracketed = authority.starts_with('[');
        if host.is_empty()
            || host
                .contains(|c: char| c.is_whitespace() || c.is_control() || c == ':' && !bracketed)
            || bracketed && host.parse::<Ipv6Addr>().is_err()
        {
            return Err(if bracketed {
                UrlError::Ipv6
            } else {
                UrlError::Host
            });
        }
        let port = match port {
            Some(port) => match port.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(UrlError::Port),
            },
            None => default_port(https),
        };
        Ok(Target {
            https,
            host: host.to_string(),
            port,
            path: self::path(if path.is_empty() { "/" } else { path })?,
        })
    }

    /// `http://` or `https://`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https://"
        } else {
            "http://"
        }
    }

    /// Whether a URL's authority (`host[:port]`, IPv6 in brackets) is this target's host and
    /// port, the port being the scheme's default when it is left out or empty. User info
    /// (`user@`) never matches.
    pub fn has_authority(&self, authority: &str) -> bool {
        let Some((host, port)) = host_and_port(authority) else {
            return false;
        };
        let port = match port {
            None | Some("") => default_port(self.https),
            Some(port) => match port.parse::<u16>() {
                Ok(port) => port,
                Err(_) => return false,
            },
        };
        host.eq_ignore_ascii_case(&self.host) && port == self.port
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, path) = (self.scheme(), redact(&self.path));
        if self.host.contains(':') {
            write!(f, "{scheme}[{}]:{}{path}", self.host, self.port)
        } else {
            write!(f, "{scheme}{}:{}{path}", self.host, self.port)
        }
    }
}

/// Names of query parameters whose values are secret, lowercase. A name that is one of them or
/// ends with one (`x_api_key`, `accessToken`) is hidden; a few harmless names (`monkey`) are
/// hidden too, which costs nothing.
const SECRET_NAMES: [&str; 14] = [
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "key",
    "apikey",
    "api_key",
    "secret",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "signature",
];

/// Whether a query parameter named `name` (percent-encoded as in the URL) holds a secret.
fn is_secret_name(name: &str) -> bool {
    let mut decoded = String::with_capacity(name.len());
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push(char::from((hi * 16 + lo) as u8));
                i += 3;
            }
            (b, ..) => {
                decoded.push(char::from(b));
                i += 1;
            }
        }
    }
    let name = decoded.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|secret| name.ends_with(secret))
}

/// A URL or a path and query as it may be printed: the value of each query parameter named like
/// a secret (`password`, `token`, `key`, `secret`, `auth`, ..., also as a suffix: `x_api_key`)
/// becomes `***`, and so does the password of `scheme://user:password@`. Borrows when there is
/// nothing to hide.
pub fn redact(url: &str) -> Cow<'_, str> {
    // User info runs to the last `@` before the query, so that a password with a `/` in it,
    // which makes the URL invalid, is hidden too; a value without a scheme (`user:pw@host`, a
    // mistake) is taken as an authority unless it starts with `/`, as a path does.
    let password = {
        let start = url.find("://").map_or(0, |i| i + 3);
        let end = url.find(['?', '#']).unwrap_or(url.len()).max(start);
        let at = url[start..end].rfind('@').map(|i| start + i);
        let colon = at.and_then(|at| url[start..at].find(':').map(|i| start + i));
        match (at, colon) {
            (Some(at), Some(colon)) if start > 0 || !url.starts_with('/') => Some((colon + 1, at)),
            _ => None,
        }
    };
    let query = url
        .find('?')
        .map(|i| {
            let end = url[i..].find('#').map_or(url.len(), |j| i + j);
            (i + 1, end)
        })
        .filter(|&(from, to)| {
            url[from..to]
                .split('&')
                .any(|pair| secret_value(pair).is_some())
        });
    if password.is_none() && query.is_none() {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    if let Some((from, to)) = password {
        out.push_str(&url[..from]);
        out.push_str("***");
        copied = to;
    }
    if let Some((from, to)) = query {
        out.push_str(&url[copied..from]);
        for (i, pair) in url[from..to].split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match secret_value(pair) {
                Some(name) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                None => out.push_str(pair),
            }
        }
        copied = to;
    }
    out.push_str(&url[copied..]);
    Cow::Owned(out)
}

/// The name of a `name=value` query pair whose value is secret and not empty.
fn secret_value(pair: &str) -> Option<&str> {
    let (name, value) = pair.split_once('=')?;
    (!value.is_empty() && is_secret_name(name)).then_some(name)
}

/// Why a `TARGET_HOST` value is not a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// `http://...`: a whole URL.
    Url,
    /// `host:port` or `[v6]:port`.
    Port,
    /// `host/path`.
    Path,
    /// Empty, spaces, `@`, unbalanced brackets, a bracketed value that is not an IPv6 address.
    Invalid,
}

/// Checks a host given on its own (`TARGET_HOST`): a name, an IPv4 address, or an IPv6 address
/// bare (`::1`) or in brackets (`[::1]`); returns it without brackets, as [`Target::host`] holds
/// it. A port, a scheme or a path is refused, each with its own error.
pub fn host(value: &str) -> Result<String, HostError> {
    let value = value.trim();
    if value.contains("://") {
        return Err(HostError::Url);
    }
    if let Some(v6) = value.strip_prefix('[') {
        let (inside, rest) = v6.split_once(']').ok_or(HostError::Invalid)?;
        if rest.starts_with(':') {
            return Err(HostError::Port);
        }
        if rest.starts_with(['/', '?']) {
            return Err(HostError::Path);
        }
        if !rest.is_empty() || inside.parse::<Ipv6Addr>().is_err() {
            return Err(HostError::Invalid);
        }
        return Ok(inside.to_string());
    }
    if value.parse::<Ipv6Addr>().is_ok() {
        return Ok(value.to_string());
    }
    let (authority, path) = split_authority(value);
    if !path.is_empty() {
        return Err(if authority.is_empty() {
            HostError::Invalid
        } else {
            HostError::Path
        });
    }
    if let Some((name, port)) = authority.split_once(':') {
        let valid_name = !name.is_empty() && !name.contains(':');
        return Err(if valid_name && port.bytes().all(|b| b.is_ascii_digit()) {
            HostError::Port
        } else {
            HostError::Invalid
        });
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || "#@[]\\%".contains(c);
    if authority.is_empty() || authority.contains(bad) {
        return Err(HostError::Invalid);
    }
    Ok(authority.to_string())
}

/// A path and query as the target's path: trimmed, starting with `/` (`status` and `/status`
/// both give `/status`); no spaces, control characters or `#`.
pub fn path(path: &str) -> Result<String, UrlError> {
    let trimmed = path.trim();
    if trimmed.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#') {
        return Err(UrlError::Path(path.to_string()));
    }
    Ok(if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    })
}

/// Splits what follows `scheme://` into the authority and the rest, the path and query
/// (empty when there is neither).
pub fn split_authority(rest: &str) -> (&str, &str) {
    rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()))
}

/// The port a scheme implies: 443 for https://, 80 for http://.
pub fn default_port(https: bool) -> u16 {
    if https {
        443
    } else {
        80
    }
}

/// The host and the port as written in an authority: `host`, `host:port`, `[v6]`, `[v6]:port`,
/// the host without its brackets. None for a malformed `[v6]`.
fn host_and_port(authority: &str) -> Option<(&str, Option<&str>)> {
    match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']')? {
            (host, "") => Some((host, None)),
            (host, rest) => Some((host, Some(rest.strip_prefix(':')?))),
        },
        None => Some(match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_back() {
        fn check(url: &str, expected: Result<&str, UrlError>) {
            let got = Target::parse(url).map(|t| t.to_string());
            assert_eq!(got, expected.map(String::from), "{url}");
        }
        check("http://app", Ok("http://app:80/"));
        check(
            "http://app:8000/status?x=1",
            Ok("http://app:8000/status?x=1"),
        );
        check("http://app?x", Ok("http://app:80/?x"));
        check("http://[::1]:81/s", Ok("http://[::1]:81/s"));
        check("http://[::1]/s", Ok("http://[::1]:80/s"));
        check("http://[::1/s", Err(UrlError::Ipv6));
        check("http://[::1]x/s", Err(UrlError::Ipv6));
        check("http://::1/s", Err(UrlError::Host));
        check("http://h:/", Err(UrlError::Port));
        check("http://h:0/", Err(UrlError::Port));
        check("http://u@h/", Err(UrlError::Credentials));
        check("http://u:p@h:8000/s", Err(UrlError::Credentials));
        check("http://u:p/w@h/s", Err(UrlError::Credentials));
        check("http://h/users/@me", Ok("http://h:80/users/@me"));
        check("http://[::1:81/", Err(UrlError::Ipv6));
        check("http://[localhost]:81/", Err(UrlError::Ipv6));
        check(
            "http://[::1]:81/s?token=abc&x=1",
            Ok("http://[::1]:81/s?token=***&x=1"),
        );
        check("ftp://h/", Err(UrlError::Scheme));
        check("http://h/a b", Err(UrlError::Path("/a b".into())));
    }

    #[test]
    fn secrets_in_urls_are_hidden() {
        fn check(url: &str, expected: &str) {
            let got = redact(url);
            assert_eq!(got, expected, "{url}");
            assert_eq!(matches!(got, Cow::Borrowed(_)), url == expected, "{url}");
        }
        check("/status", "/status");
        check("/status?json&full", "/status?json&full");
        check(
            "/cm?user=admin&password=SECRET&cmnd=Status",
            "/cm?user=admin&password=***&cmnd=Status",
        );
        check(
            "/s?PASSWORD=a&Pwd=b&passwd=c&pass=d",
            "/s?PASSWORD=***&Pwd=***&passwd=***&pass=***",
        );
        check(
            "/s?token=a&access_token=b&accessToken=c",
            "/s?token=***&access_token=***&accessToken=***",
        );
        check(
            "/s?key=a&apikey=b&api_key=c&x_api_key=d&X-Api-Key=e",
            "/s?key=***&apikey=***&api_key=***&x_api_key=***&X-Api-Key=***",
        );
        check(
            "/s?secret=a&client_secret=b&auth=c&authorization=d",
            "/s?secret=***&client_secret=***&auth=***&authorization=***",
        );
        check(
            "/s?credential=a&credentials=b&sig=c&signature=d",
            "/s?credential=***&credentials=***&sig=c&signature=***",
        );
        check("/s?api%5Fkey=a&%74oken=b", "/s?api%5Fkey=***&%74oken=***");
        check("/s?token=&token", "/s?token=&token");
        check("/s?token=a#frag?token=b", "/s?token=***#frag?token=b");
        check("/s?user=admin&limit=5", "/s?user=admin&limit=5");
        check("/a:b@c", "/a:b@c");
        check("http://user:pw@app:8000/s", "http://user:***@app:8000/s");
        check("http://user@app/s", "http://user@app/s");
        check("http://u:p/w@app/s?token=t", "http://u:***@app/s?token=***");
        check("u:pw@app:8000/status", "u:***@app:8000/status");
        check("https://app/s?key=1", "https://app/s?key=***");
    }

    #[test]
    fn a_host_alone_has_no_port_scheme_or_path() {
        fn check(value: &str, expected: Result<&str, HostError>) {
            assert_eq!(host(value), expected.map(String::from), "{value}");
        }
        check("localhost", Ok("localhost"));
        check("app.example.org", Ok("app.example.org"));
        check("10.0.0.7", Ok("10.0.0.7"));
        check(" app ", Ok("app"));
        check("::1", Ok("::1"));
        check("[::1]", Ok("::1"));
        check("fe80::1:2", Ok("fe80::1:2"));
        check("[2001:db8::7]", Ok("2001:db8::7"));
        check("localhost:8000", Err(HostError::Port));
        check("10.0.0.7:80", Err(HostError::Port));
        check("[::1]:8000", Err(HostError::Port));
        check("http://app:8000/status", Err(HostError::Url));
        check("app/status", Err(HostError::Path));
        check("app:8000/status", Err(HostError::Path));
        check("app?x", Err(HostError::Path));
        check("[::1]/status", Err(HostError::Path));
        check("", Err(HostError::Invalid));
        check("a b", Err(HostError::Invalid));
        check("user@app", Err(HostError::Invalid));
        check("[::1", Err(HostError::Invalid));
        check("[app]", Err(HostError::Invalid));
        check("a:b:c", Err(HostError::Invalid));
        check("app:x", Err(HostError::Invalid));
        check("/status", Err(HostError::Invalid));
    }

    #[test]
    fn an_authority_names_the_host_and_port() {
        fn check(target: &str, authority: &str, expected: bool) {
            let target = Target::parse(target).expect("a valid test target");
            assert_eq!(
                target.has_authority(authority),
                expected,
                "{target} {authority}"
            );
        }
        check("http://app/", "app", true);
        check("http://app/", "APP:80", true);
        check("http://app/", "app:", true);
        check("http://app/", "app:8000", false);
        check("http://app/", "app:x", false);
        check("http://app/", "user@app", false);
        check("http://[::1]:8000/", "[::1]:8000", true);
        check("http://[::1]/", "[::1]", true);
        check("http://[::1]/", "[::1]:", true);
        check("http://[::1]/", "[::1", false);
        check("http://[::1]/", "[::1]80", false);
    }
}
