//! A module's allowlist: which targets `/probe` may reach with it.
//!
//! Owns [`Allow`]: its entries (host names, `host:port`, IP addresses, CIDR ranges of IPv4 and
//! IPv6), their parsing, and the two checks: the target's name ([`Allow::name`]) before any
//! lookup, and every address the name resolves to ([`Allow::address`]), which the client asks
//! at every connection (`client::fetch`'s policy). A name entry cannot say which addresses its
//! name may resolve to, so it allows any address except loopback, link-local and unspecified
//! ones, which need a range of their own: a DNS name pointing at `127.0.0.1` or
//! `169.254.169.254` is refused unless that range is listed. Knows nothing about HTTP or the
//! config file.

use std::net::{IpAddr, SocketAddr};

/// The entries of a module's `allow`.
#[derive(Clone, Debug, PartialEq)]
pub struct Allow(Vec<Entry>);

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    /// A host name, lowercase, without a final dot; the only port it allows, if given.
    Name(String, Option<u16>),
    /// A range: its address, its prefix length; the only port, for an address with a port.
    Net(IpAddr, u32, Option<u16>),
}

impl Allow {
    /// Parses the entries; the error names the entry and the forms it may take.
    pub fn parse(entries: &[&str]) -> Result<Allow, String> {
        let parsed: Option<Vec<Entry>> = entries.iter().map(|e| entry(e.trim())).collect();
        let bad = entries.iter().find(|e| entry(e.trim()).is_none());
        match (parsed, bad) {
            (Some(list), _) if !list.is_empty() => Ok(Allow(list)),
            (_, Some(bad)) => Err(format!(
                "{bad:?} is not a host name, host:port, IP address or CIDR range (10.0.0.0/8, \
                 fd00::/8)"
            )),
            _ => Err("is empty: list the targets this module may probe".into()),
        }
    }

    /// Whether the target `host` (a name, or an IP address without brackets) on `port` is
    /// allowed by name: a name entry equal to it, or for an IP address, a range holding it.
    pub fn name(&self, host: &str, port: u16) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.in_range(ip, port),
            Err(_) => self.named(host, port),
        }
    }

    /// Whether a connection to `address` is allowed for the target `host`: a range holds it, or
    /// a name entry allows `host` and the address is none of loopback, link-local or
    /// unspecified.
    pub fn address(&self, host: &str, address: SocketAddr) -> bool {
        let (ip, port) = (address.ip().to_canonical(), address.port());
        self.in_range(ip, port) || (self.named(host, port) && !special(ip))
    }

    fn named(&self, host: &str, port: u16) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.0.iter().any(|e| match e {
            Entry::Name(name, only) => name.eq_ignore_ascii_case(host) && port_ok(*only, port),
            Entry::Net(..) => false,
        })
    }

    fn in_range(&self, ip: IpAddr, port: u16) -> bool {
        self.0.iter().any(|e| match *e {
            Entry::Net(net, prefix, only) => contains(net, prefix, ip) && port_ok(only, port),
            Entry::Name(..) => false,
        })
    }

    /// How many entries, for `--check-config`.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn port_ok(only: Option<u16>, port: u16) -> bool {
    only.is_none_or(|p| p == port)
}

/// One entry: `10.0.0.0/8`, `fd00::/8`, `10.0.0.5`, `10.0.0.5:8080`, `::1`, `[::1]:8080`,
/// `plug.lan`, `plug.lan:80`.
fn entry(text: &str) -> Option<Entry> {
    if let Some((ip, prefix)) = text.split_once('/') {
        let ip: IpAddr = ip.parse().ok()?;
        let prefix: u32 = prefix.parse().ok()?;
        return (prefix <= bits(ip)).then_some(Entry::Net(ip, prefix, None));
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(v6) => match v6.split_once("]")? {
            (ip, "") => (ip, None),
            (ip, port) => (ip, Some(port.strip_prefix(':')?)),
        },
        None if text.parse::<IpAddr>().is_ok() => (text, None),
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0)?),
        None => None,
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Entry::Net(ip, bits(ip), port));
    }
    // A host name: letters, digits, `-`, `_` and dots (IDNs in their `xn--` form).
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    (!name.is_empty() && name.bytes().all(valid) && !text.starts_with('['))
        .then(|| Entry::Name(name.to_ascii_lowercase(), port))
}

fn bits(ip: IpAddr) -> u32 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Whether the range `net/prefix` holds `ip` (an IPv4 address mapped into IPv6 counts as the
/// IPv4 address).
fn contains(net: IpAddr, prefix: u32, ip: IpAddr) -> bool {
    let wide = |ip: IpAddr| match ip.to_canonical() {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let ((a, width), (b, other)) = (wide(net), wide(ip));
    let shift = width - prefix.min(width);
    width == other && (shift == width || a >> shift == b >> shift)
}

/// Loopback, link-local (169.254.0.0/16, fe80::/10) and unspecified addresses: what a name entry
/// never allows.
fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unspecified() || v6.segments()[0] & 0xffc0 == 0xfe80
        }
    }
}
