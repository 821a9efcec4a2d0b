use std::net::SocketAddr;

use super::*;

#[test]
fn allow_entries_parse_or_name_the_bad_one() {
    fn check(entries: &[&str], expected: Result<usize, &str>) {
        let got = Allow::parse(entries).map(|a| a.len());
        assert_eq!(got, expected.map_err(String::from), "{entries:?}");
    }
    check(
        &[
            "10.0.0.0/8",
            "fd00::/8",
            "::1",
            "[::1]:80",
            "a.lan",
            "A.lan:8080",
        ],
        Ok(6),
    );
    check(&["192.168.0.1:9100", "0.0.0.0/0", "::/0", "host."], Ok(4));
    check(&[], Err("is empty: list the targets this module may probe"));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "a b",
        "a:0",
        "a:x",
        "[a]:80",
        "[::1",
        "http://a",
        "a/b",
        "",
    ] {
        let got = Allow::parse(&["ok", bad]).unwrap_err();
        assert!(
            got.starts_with(&format!("{bad:?} is not a host name")),
            "{got}"
        );
    }
}

#[test]
fn names_and_addresses_against_the_allowlist() {
    let allow = Allow::parse(&[
        "10.0.0.0/8",
        "fd00::/8",
        "192.168.1.5:9100",
        "plug.lan",
        "dev.lan:8080",
        "127.0.0.1",
    ])
    .unwrap();
    let name = |host: &str, port: u16| allow.name(host, port);
    assert!(name("10.1.2.3", 80));
    assert!(name("fd12::1", 80));
    assert!(name("192.168.1.5", 9100));
    assert!(!name("192.168.1.5", 80));
    assert!(name("PLUG.lan", 1));
    assert!(name("plug.lan.", 1));
    assert!(name("dev.lan", 8080));
    assert!(!name("dev.lan", 80));
    assert!(!name("other.lan", 80));
    assert!(!name("11.0.0.1", 80));
    assert!(name("127.0.0.1", 80));
    let address = |host: &str, addr: &str| allow.address(host, addr.parse::<SocketAddr>().unwrap());
    // A name entry allows any address but loopback, link-local and unspecified ones.
    assert!(address("plug.lan", "192.0.2.7:80"));
    assert!(address("plug.lan", "[2001:db8::1]:80"));
    assert!(!address("plug.lan", "127.0.0.2:80"));
    assert!(!address("plug.lan", "169.254.169.254:80"));
    assert!(!address("plug.lan", "[fe80::1]:80"));
    assert!(!address("plug.lan", "[::1]:80"));
    assert!(!address("plug.lan", "0.0.0.0:80"));
    assert!(!address("plug.lan", "[::ffff:127.0.0.2]:80"));
    // ...unless a range holds them; a name not in the list gets only the ranges.
    assert!(address("plug.lan", "127.0.0.1:80"));
    assert!(address("other.lan", "10.9.9.9:80"));
    assert!(address("other.lan", "[::ffff:10.9.9.9]:80"));
    assert!(!address("other.lan", "192.0.2.7:80"));
    assert!(!address("dev.lan", "192.0.2.7:80"));
    assert!(address("dev.lan", "192.0.2.7:8080"));
}

#[test]
fn query_values_are_percent_decoded() {
    fn check(text: &str, expected: Option<&str>) {
        assert_eq!(decode(text).as_deref(), expected, "{text}");
    }
    check("a", Some("a"));
    check("http%3A%2F%2Fh%3A1%2Fs", Some("http://h:1/s"));
    check("a+b", Some("a b"));
    check("%5B%3A%3A1%5D", Some("[::1]"));
    check("%", None);
    check("%4", None);
    check("%zz", None);
    check("%ff", None);
}

#[test]
fn targets_of_a_query() {
    fn check(target: &str, expected: Option<&str>) {
        let got = parse_target(target, "/status").map(|t| t.to_string());
        assert_eq!(got.as_deref(), expected, "{target}");
    }
    check("plug.lan", Some("http://plug.lan:80/status"));
    check("10.0.0.5:8080", Some("http://10.0.0.5:8080/status"));
    check("[::1]:9", Some("http://[::1]:9/status"));
    check("http://h:1/other?x=1", Some("http://h:1/other?x=1"));
    check("h/x", None);
    check("u@h", None);
    check("h?x", None);
    check("::1", None);
    check("h:0", None);
    check("ftp://h/", None);
}
