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
    check(http, "http://app:8000?q", Ok("/?q"));
    check(http, "?page=2", Ok("/api/status?page=2"));
    check(http, "/v2/status#part", Ok("/v2/status"));
    check(http, "../x", Ok("/api/../x"));
    check(
        http,
        "http://evil:8000/?token=abc",
        Err("redirect not followed: to another host (http://evil:8000/?token=***)"),
    );
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
        Err("redirect not followed: to another host (http://app:***@evil/status)"),
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
        &[
            ("User-Agent", agent),
            ("Accept", "application/json"),
            ("Accept-Encoding", "identity"),
        ],
    );
    check(
        &[("accept", "application/vnd.app+json"), ("X-Api-Key", "k")],
        Some("Bearer t"),
        &[
            ("User-Agent", agent),
            ("Accept-Encoding", "identity"),
            ("accept", "application/vnd.app+json"),
            ("X-Api-Key", "k"),
            ("Authorization", "Bearer t"),
        ],
    );
    check(
        &[("User-Agent", "probe/1")],
        None,
        &[
            ("Accept", "application/json"),
            ("Accept-Encoding", "identity"),
            ("User-Agent", "probe/1"),
        ],
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

#[test]
fn a_request_is_one_get_with_host_first_and_close_last() {
    let headers = request_headers(&[("X-Api-Key".into(), "k".into())], Some("Bearer t"));
    let check = |target: Target, expected: &str| {
        let bytes = request_bytes(&target, &target.path, &headers);
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    };
    let agent = concat!("status-exporter/", env!("CARGO_PKG_VERSION"));
    check(
        target(false, 8000),
        &format!(
            "GET /api/status?x=1 HTTP/1.1\r\nHost: app:8000\r\nUser-Agent: {agent}\r\n\
             Accept: application/json\r\nAccept-Encoding: identity\r\nX-Api-Key: k\r\n\
             Authorization: Bearer t\r\nConnection: close\r\n\r\n"
        ),
    );
    let head = |target: Target| {
        let bytes = request_bytes(&target, "/", &[]);
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(head(target(false, 80)), "Host: app");
    assert_eq!(head(target(true, 443)), "Host: app");
    assert_eq!(head(target(true, 80)), "Host: app:80");
    let v6 = Target {
        host: "::1".into(),
        ..target(false, 8000)
    };
    assert_eq!(head(v6), "Host: [::1]:8000");
}

#[test]
fn locations_with_control_characters_are_refused() {
    fn check(location: &[u8], expected: Result<&str, &str>) {
        let got = location_text(location).map_err(|f| f.to_string());
        assert_eq!(
            got,
            expected.map(String::from).map_err(String::from),
            "{location:?}"
        );
    }
    check(b"/v2/status", Ok("/v2/status"));
    check(b"/a b", Ok("/a%20b"));
    check("/stätus".as_bytes(), Ok("/st%C3%A4tus"));
    check(b"/x\xff", Ok("/x%FF"));
    check(
        b"/a\rX-Injected: 1",
        Err(
            "redirect not followed: a Location with a control character in it (/a\\rX-Injected: 1)",
        ),
    );
    check(
        b"/\x1b[2Jx",
        Err("redirect not followed: a Location with a control character in it (/\\u{1b}[2Jx)"),
    );
    check(
        b"/a\tb",
        Err("redirect not followed: a Location with a control character in it (/a\\tb)"),
    );
}

/// A reader that hands out its bytes `step` at a time, as a slow network does.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.bytes.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// Reads a whole response from `bytes` (its body only for 2xx), `max` bytes of body at most; the
/// same whether the bytes come at once, one by one, or seven at a time.
fn read(bytes: &[u8], max: usize) -> Result<(u16, String), String> {
    let results: Vec<Result<(u16, String), String>> = [usize::MAX, 1, 7]
        .iter()
        .map(|&step| {
            let mut reader = response::Reader::new(Trickle { bytes, step });
            let head = response::read_head(&mut reader).map_err(|f| f.to_string())?;
            if !(200..300).contains(&head.status) {
                return Ok((head.status, String::new()));
            }
            let body = response::read_body(&mut reader, &head, max, Vec::new())
                .map_err(|f| f.to_string())?;
            Ok((head.status, String::from_utf8_lossy(&body).into_owned()))
        })
        .collect();
    assert!(
        results.iter().all(|r| *r == results[0]),
        "{results:?} for {bytes:?}"
    );
    results.into_iter().next().unwrap()
}

#[test]
fn heads_are_bounded_by_our_own_count() {
    fn check(bytes: &[u8], expected: Result<(u16, &str), &str>) {
        let got = read(bytes, 1024);
        let expected = expected
            .map(|(s, b)| (s, b.to_string()))
            .map_err(String::from);
        assert_eq!(
            got,
            expected,
            "{:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(100)])
        );
    }
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        Ok((200, "{}")),
    );
    check(b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", Ok((200, "{}")));
    check(b"HTTP/1.0 200 OK\n\n{}", Ok((200, "{}")));
    check(b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}", Ok((200, "{}")));
    check(b"HTTP/1.1 200\r\n\r\n{}", Ok((200, "{}")));
    check(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n[]",
        Ok((200, "[]")),
    );
    check(
        b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy",
        Ok((503, "")),
    );
    check(b"HTTP/1.1 204 No Content\r\n\r\n", Ok((204, "")));
    check(
        b"",
        Err("invalid HTTP response: no HTTP status line: the connection closed without an answer"),
    );
    check(
        b"HTTP/1.1 200 OK\r\nX: y",
        Err("invalid HTTP response: the connection closed before the end of the headers"),
    );
    check(
        b"garbage\r\n\r\n",
        Err("invalid HTTP response: no HTTP status line: the answer starts with \"garbage\""),
    );
    check(
        b"HTTP/2 200\r\n\r\n",
        Err("invalid HTTP response: no HTTP status line: the answer starts with \"HTTP/2 200\""),
    );
    check(
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x1bb\r\n\r\n",
        Err("invalid HTTP response: the X-Bad header has a control character in it"),
    );
    check(
        b"HTTP/1.1 302 Found\r\nLocation: /a\rX: 1\r\n\r\n",
        Err("redirect not followed: a Location with a control character in it (/a\\rX: 1)"),
    );
    let many: String = (0..101).map(|i| format!("X-{i}: {i}\r\n")).collect();
    check(
        format!("HTTP/1.1 200 OK\r\n{many}\r\n{{}}").as_bytes(),
        Err("response too large: more than 100 headers"),
    );
    // Exactly the limit fits; one byte more does not, whatever the line ends.
    let status = b"HTTP/1.1 200 OK\n";
    let fill = MAX_HEAD_BYTES - status.len() - "X: \n\n".len();
    let exact = [&status[..], b"X: ", &vec![b'x'; fill], b"\n\n{}"].concat();
    assert_eq!(read(&exact, 1024), Ok((200, "{}".to_string())));
    let over = [&status[..], b"X: ", &vec![b'x'; fill + 1], b"\n\n{}"].concat();
    assert_eq!(
        read(&over, 1024),
        Err("response too large: headers over 65536 bytes".to_string())
    );
    // The bypass of minreq 3.0.0: a 65,535-byte line ended by a bare LF, then more headers.
    let bypass = [
        &b"HTTP/1.1 200 OK\r\n"[..],
        &vec![b'a'; 65_534],
        b"\n",
        &b"X: y\r\n".repeat(10_000),
        b"\r\n{}",
    ]
    .concat();
    assert_eq!(
        read(&bypass, 1024),
        Err("response too large: headers over 65536 bytes".to_string())
    );
    let long_status = [&b"HTTP/1.1 200 "[..], &vec![b'x'; 100_000]].concat();
    assert_eq!(
        read(&long_status, 1024),
        Err("response too large: status line over 65536 bytes".to_string())
    );
}

#[test]
fn bodies_are_framed_and_bounded() {
    fn check(head_and_body: &str, max: usize, expected: Result<&str, &str>) {
        let bytes = format!("HTTP/1.1 200 OK\r\n{head_and_body}");
        let got = read(bytes.as_bytes(), max).map(|(_, body)| body);
        assert_eq!(
            got,
            expected.map(String::from).map_err(String::from),
            "{head_and_body:?}"
        );
    }
    check("Content-Length: 5\r\n\r\nhello, and more", 16, Ok("hello"));
    check(
        "Content-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
        16,
        Ok("hello"),
    );
    check(
        "Content-Length: 16\r\n\r\n0123456789abcdef",
        16,
        Ok("0123456789abcdef"),
    );
    check(
        "Content-Length: 17\r\n\r\n0123456789abcdefg",
        16,
        Err("response too large: 17 bytes, more than TARGET_MAX_BYTES (16)"),
    );
    check(
        "Content-Length: 99999999999999999999999\r\n\r\n",
        16,
        Err("response too large: 18446744073709551615 bytes, more than TARGET_MAX_BYTES (16)"),
    );
    check(
        "Content-Length: 10\r\n\r\nhello",
        16,
        Err("invalid HTTP response: body truncated: 5 of 10 bytes"),
    );
    check(
        "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        16,
        Err("invalid HTTP response: Content-Length is not one number"),
    );
    check(
        "Content-Length: -1\r\n\r\nhello",
        16,
        Err("invalid HTTP response: Content-Length is not one number"),
    );
    check("\r\nuntil the end", 16, Ok("until the end"));
    check("\r\n0123456789abcdef", 16, Ok("0123456789abcdef"));
    check(
        "\r\n0123456789abcdefg",
        16,
        Err("response too large: more than TARGET_MAX_BYTES (16 bytes)"),
    );
    let chunked = "Transfer-Encoding: chunked\r\n\r\n";
    check(
        &format!("{chunked}5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n"),
        16,
        Ok("hello!"),
    );
    check(
        &format!("{chunked}5\nhello\nA\n0123456789\n0\nT: x\n\n"),
        16,
        Ok("hello0123456789"),
    );
    check(
        "Transfer-Encoding: gzip, Chunked\r\n\r\n",
        16,
        Err("invalid HTTP response: Transfer-Encoding \"gzip, chunked\" is not supported (only chunked)"),
    );
    check(
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        16,
        Ok("ok"),
    );
    check(
        &format!("{chunked}zz\r\n{{}}\r\n0\r\n\r\n"),
        16,
        Err("invalid HTTP response: bad chunking: \"zz\" is not a chunk size"),
    );
    check(
        &format!("{chunked}\r\n"),
        16,
        Err("invalid HTTP response: bad chunking: \"\" is not a chunk size"),
    );
    check(
        &format!("{chunked}2\r\nokay\r\n0\r\n\r\n"),
        16,
        Err("invalid HTTP response: bad chunking: a chunk longer than its size"),
    );
    check(
        &format!("{chunked}5\r\nhel"),
        16,
        Err("invalid HTTP response: bad chunking: the body ends before its last chunk"),
    );
    check(
        &format!("{chunked}5\r\nhello\r\n"),
        16,
        Err("invalid HTTP response: bad chunking: the body ends before its last chunk"),
    );
    check(
        &format!("{chunked}10\r\n0123456789abcdef\r\n1\r\n!\r\n0\r\n\r\n"),
        16,
        Err("response too large: more than TARGET_MAX_BYTES (16 bytes)"),
    );
    check(
        &format!("{chunked}ffffffffffffffffffff\r\n"),
        16,
        Err("invalid HTTP response: bad chunking: \"ffffffffffffffffffff\" is not a chunk size"),
    );
    check(
        &format!("{chunked}1;{}\r\n", "x".repeat(5000)),
        16,
        Err("invalid HTTP response: bad chunking: a chunk-size line over 4096 bytes"),
    );
    check(
        "Content-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}",
        16,
        Ok("{}"),
    );
}
