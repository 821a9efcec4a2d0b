//! The target's URL: where the status document is (scheme, host, port, path), parsed from a
//! setting and printed back.
//!
//! Owns [`Target`], its parsing ([`Target::parse`], [`path`]) and its `Display`, and the one
//! parser of an authority (`host[:port]`, `[v6][:port]`), used both for the URL setting and for
//! checking that a redirect stays on the target's origin ([`Target::has_authority`]). Knows
//! nothing about setting names, requests or sockets.

use std::fmt;

/// Where the status document is: `http://{host}:{port}{path}`, or `https://` with `https`.
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
    /// `user:password@` in the authority.
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
            UrlError::Credentials => {
                "has credentials in it, which are not supported; remove user:password@"
            }
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
        let (authority, path) = split_authority(rest);
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let (host, port) = host_and_port(authority).ok_or(UrlError::Ipv6)?;
        if host.is_empty()
            || host.contains(|c: char| c.is_whitespace() || c == ':' && !authority.starts_with('['))
        {
            return Err(UrlError::Host);
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
        let scheme = self.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}{}:{}{}", self.host, self.port, self.path)
        }
    }
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

fn default_port(https: bool) -> u16 {
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
        check("ftp://h/", Err(UrlError::Scheme));
        check("http://h/a b", Err(UrlError::Path("/a b".into())));
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
