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

#[test]
fn every_reason_has_one_label_at_its_own_index() {
    let labels: Vec<&str> = Reason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        [
            "resolve",
            "connect",
            "tls",
            "timeout",
            "http_status",
            "redirect",
            "too_large",
            "invalid_response",
            "invalid_json",
            "too_many_series",
        ]
    );
    for (index, reason) in Reason::ALL.iter().enumerate() {
        assert_eq!(*reason as usize, index, "{reason:?}");
    }
}
