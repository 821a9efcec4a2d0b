use super::*;
use std::net::SocketAddr;
use std::panic;

/// No client call in these tests waits longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

fn test_limits() -> Limits {
    Limits {
        max_connections: 16,
        max_connections_per_address: 16,
        max_head_bytes: 1024,
        header_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(3),
        max_body_bytes: 100,
    }
}

/// A server on a fresh loopback port, serving [`echo`] on a background thread.
fn start(limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    thread::spawn(move || serve(listener, limits, Control::default(), echo));
    addr
}

/// Answers "METHOD /path", plus the `X-Echo` header if sent; a few paths test edge cases.
fn echo(request: &Request) -> Response {
    let plain = |status: u16, headers: Vec<(&'static str, String)>, body: &[u8]| Response {
        status,
        headers,
        body: body.to_vec().into(),
    };
    match request.path {
        "/huge" => plain(200, vec![], &vec![b'x'; 16 << 20]),
        "/framing" => plain(
            200,
            vec![
                ("Content-Length", "999".to_string()),
                ("connection", "keep-alive".to_string()),
                ("X-Split", "a\r\nInjected: yes".to_string()),
                ("Bad Name", "dropped".to_string()),
            ],
            b"ok",
        ),
        "/no-content" => plain(204, vec![], b"dropped"),
        "/status-42" => plain(42, vec![], b"ok"),
        _ => {
            let mut body = format!("{} {}", request.method, request.path);
            if let Some(value) = request.header("x-echo") {
                body = format!("{body} x-echo={value}");
            }
            plain(
                200,
                vec![("Content-Type", "text/plain".to_string())],
                body.as_bytes(),
            )
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the test server");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("set a read timeout");
    stream
        .set_write_timeout(Some(CLIENT_TIMEOUT))
        .expect("set a write timeout");
    stream
}

/// Everything the server sends until it closes, as text: CRLF shown as LF, the date as
/// `<date>`, and a marker if the connection was reset or not closed in time.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break "",
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break "<not closed in time>"
            }
            Err(_) => break "<reset>",
        }
    };
    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>"
            } else {
                l
            }
        })
        .collect();
    lines.join("\n") + end
}

/// Sends `request` on a new connection and returns the transcript until the server closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    read_to_close(&mut stream)
}

/// One response on a kept-alive connection, framed by its `Content-Length`: (head, body).
fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().expect("a numeric Content-Length"));
            if bytes.len() >= end + 4 + length {
                assert_eq!(bytes.len(), end + 4 + length, "bytes after the response");
                return (head, bytes[end + 4..].to_vec());
            }
        }
        let n = stream
            .read(&mut chunk)
            .expect("a response before the timeout");
        assert!(
            n > 0,
            "closed mid-response after {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Polls until a new connection is served 200 (slots free up when a connection thread
/// notices its client left); panics after CLIENT_TIMEOUT.
fn wait_until_served(addr: SocketAddr) {
    let start = Instant::now();
    loop {
        let transcript = exchange(addr, b"GET /again HTTP/1.1\r\nConnection: close\r\n\r\n");
        if transcript.starts_with("HTTP/1.1 200 OK") {
            return;
        }
        assert!(
            start.elapsed() < CLIENT_TIMEOUT,
            "still refused: {transcript}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The whole transcript of `request` sent on its own connection.
fn check(request: &str, expected: &str) {
    let addr = start(test_limits());
    assert_eq!(
        exchange(addr, request.as_bytes()),
        expected,
        "request {request:?}"
    );
}

/// The status line of a request the server refuses, and that it closes afterwards.
fn check_refused(request: &[u8], status: &str) {
    let addr = start(test_limits());
    let transcript = exchange(addr, request);
    let first = transcript.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!("HTTP/1.1 {status}"),
        "request {:?}",
        String::from_utf8_lossy(request)
    );
    assert!(transcript.contains("\nConnection: close\n"), "{transcript}");
    assert!(
        !transcript.ends_with('>'),
        "not closed cleanly: {transcript}"
    );
}

#[test]
fn get() {
    check(
        "GET /metrics?name=x HTTP/1.1\r\nHost: localhost\r\nX-Echo:  hi  \r\n\
             Connection: close\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 22
Connection: close

GET /metrics x-echo=hi",
    );
    // Header names match whatever their case; empty lines before a request are skipped.
    check(
        "\r\nGET / HTTP/1.1\r\nx-ECHO: 1\r\nconnection: Close\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 14
Connection: close

GET / x-echo=1",
    );
    // Absolute-form is reduced to its path.
    check(
        "GET http://example.com:9100/metrics?x HTTP/1.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 12
Connection: close

GET /metrics",
    );
}

#[test]
fn response_head_uses_crlf_and_a_valid_date() {
    let addr = start(test_limits());
    let mut stream = connect(addr);
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut stream);
    assert!(!head.replace("\r\n", "").contains(['\r', '\n']), "{head:?}");
    let date = head
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("a Date header");
    assert!(date.len() == 29 && date.ends_with(" GMT"), "{date:?}");
    assert_eq!(body, b"GET /");
}

#[test]
fn head() {
    check(
        "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 13
Connection: close

",
    );
}

#[test]
fn server_owns_framing_headers() {
    check(
        "GET /framing HTTP/1.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
X-Split: a  Injected: yes
Content-Length: 2
Connection: close

ok",
    );
    check(
        "GET /no-content HTTP/1.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 204 No Content
Date: <date>
Connection: close

",
    );
    check(
        "GET /status-42 HTTP/1.1\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error
Date: <date>
Content-Length: 2
Connection: close

ok",
    );
}

/// Linux delays an ACK by at least 40 ms (`TCP_DELACK_MIN`). A response written as two
/// segments (head, then body) waits for it on every kept-alive round trip but the first few.
const DELAYED_ACK: Duration = Duration::from_millis(40);

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn a_response_is_its_head_and_its_shared_body() {
    let shared = Arc::new(b"the body".to_vec());
    let response = Response {
        status: 200,
        headers: vec![("Content-Type", "text/plain".into())],
        body: Body(vec![Arc::clone(&shared), Arc::new(b", then more".to_vec())]),
    };
    let (head, body) = render(&response, false, None);
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("Content-Length: 19\r\n\r\n"), "{head}");
    // The shared part is the very buffer, not a copy.
    assert!(Arc::ptr_eq(&body.0[0], &shared));
    assert_eq!(
        body.0
            .iter()
            .flat_map(|p| p.iter().copied())
            .collect::<Vec<u8>>(),
        b"the body, then more"
    );
}

#[test]
fn keep_alive_round_trips_never_wait_for_a_delayed_ack() {
    let addr = start(test_limits());
    let mut stream = connect(addr);
    let mut times = Vec::new();
    for i in 0..21 {
        let started = Instant::now();
        stream
            .write_all(format!("GET /{i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .unwrap();
        let (head, body) = read_response(&mut stream);
        times.push(started.elapsed());
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && !head.contains("Connection"),
            "{head}"
        );
        assert_eq!(body, format!("GET /{i}").as_bytes());
    }
    // Split responses would make nearly every round trip wait for a delayed ACK; on a busy
    // machine some round trips are slow for other reasons, so the median is compared.
    let median = median(times.clone());
    assert!(median < DELAYED_ACK, "median {median:?} of {times:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    check(
        "GET /a HTTP/1.1\r\n\r\n\
             HEAD /b HTTP/1.1\r\n\r\n\
             POST /c HTTP/1.1\r\nContent-Length: 14\r\n\r\nGET /not-this!\
             GET /d HTTP/1.1\r\nConnection: close\r\n\r\n\
             GET /after-close HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6

GET /aHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 7

HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 7

POST /cHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: close

GET /d",
    );
}

#[test]
fn body_arriving_later_is_read_and_discarded() {
    let addr = start(test_limits());
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234")
        .unwrap();
    thread::sleep(Duration::from_millis(20)); // the body arrives in two parts
    stream
        .write_all(b"56789GET /q HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let transcript = read_to_close(&mut stream);
    assert!(
        transcript.contains("\n\nPOST /pHTTP/1.1 200 OK\n") && transcript.ends_with("\n\nGET /q"),
        "{transcript}"
    );
}

#[test]
fn expect_100_continue() {
    let addr = start(test_limits());
    let mut stream = connect(addr);
    stream
        .write_all(b"POST /e HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    assert_eq!(read_response(&mut stream).1, b"POST /e");
}

#[test]
fn http_1_0() {
    check(
        "GET /old HTTP/1.0\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 8
Connection: close

GET /old",
    );
    check(
        "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
        "HTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: keep-alive

GET /aHTTP/1.1 200 OK
Date: <date>
Content-Type: text/plain
Content-Length: 6
Connection: close

GET /b",
    );
}

#[test]
fn malformed_requests_get_400_and_close() {
    check_refused(b"garbage\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1 extra\r\n\r\n", "400 Bad Request");
    check_refused(b"GET  / HTTP/1.1\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/2.0\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / FTP/1.1\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", "400 Bad Request");
    check_refused(b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", "400 Bad Request");
    check_refused(
        "GET / HTTP/1.1\r\nX: grüße\r\n\r\n".as_bytes(),
        "400 Bad Request",
    );
    check_refused(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", "400 Bad Request");
    check_refused("GET /grüße HTTP/1.1\r\n\r\n".as_bytes(), "400 Bad Request");
    check_refused(b"OPTIONS * HTTP/1.1\r\n\r\n", "400 Bad Request");
    check_refused(
        b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "400 Bad Request",
    );
    check_refused(
        b"GET ftp://example.com/ HTTP/1.1\r\n\r\n",
        "400 Bad Request",
    );
    check_refused(
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "400 Bad Request",
    );
    check_refused(
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "400 Bad Request",
    );
    check_refused(
        b"GET / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
        "400 Bad Request",
    );
    check_refused(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "400 Bad Request",
    ); // TLS
}

#[test]
fn http_0_9_gets_400() {
    check_refused(b"GET /\r\n", "400 Bad Request");
    check_refused(b"GET /\r\n\r\n", "400 Bad Request");
}

#[test]
fn bodies_we_do_not_take() {
    check_refused(
        b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
        "413 Content Too Large",
    );
    check_refused(
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "413 Content Too Large",
    );
    check_refused(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "411 Length Required",
    );
    check_refused(
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "411 Length Required",
    );
}

#[test]
fn heads_over_the_limit() {
    let many_headers = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "A: b\r\n".repeat(MAX_HEADERS + 1)
    );
    check_refused(
        many_headers.as_bytes(),
        "431 Request Header Fields Too Large",
    );
    check_refused(
        format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(1024)).as_bytes(),
        "431 Request Header Fields Too Large",
    );
    check_refused(
        format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(1024)).as_bytes(),
        "414 URI Too Long",
    );
}

#[test]
fn endless_header_line_gets_431_and_memory_stays_flat() {
    let addr = start(test_limits());
    let rss_before = vm_rss_kib();
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        // Up to 256 MiB or 5 s: a server that buffers the line would grow by that much.
        let started = Instant::now();
        let chunk = [b'X'; 64 * 1024];
        let mut sent = 0usize;
        if writer.write_all(b"GET / HTTP/1.1\r\nX-Endless: ").is_err() {
            return sent;
        }
        while sent < 256 << 20 && started.elapsed() < CLIENT_TIMEOUT {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let transcript = read_to_close(&mut stream);
    assert!(
        transcript.starts_with("HTTP/1.1 431 Request Header Fields Too Large\n"),
        "{transcript}"
    );
    let sent = sender.join().unwrap();
    assert!(
        sent < 256 << 20,
        "the server kept reading: {sent} bytes went in"
    );
    if let (Some(before), Some(after)) = (rss_before, vm_rss_kib()) {
        // Other tests run alongside, so only a gross growth is a failure.
        assert!(
            after < before + 48 * 1024,
            "RSS grew from {before} KiB to {after} KiB"
        );
    }
}

/// Whether `transcript` ends with the server closing the connection (not the client's read
/// timeout, nor a reset).
fn closed_by_the_server(transcript: &str) -> bool {
    !transcript.ends_with('>')
}

#[test]
fn header_timeout() {
    let timeout = Duration::from_millis(300);
    let addr = start(Limits {
        header_timeout: timeout,
        ..test_limits()
    });

    // A head that stops halfway gets 408 once the time is up, never before.
    let started = Instant::now();
    let transcript = exchange(addr, b"GET / HTTP/1.1\r\nHost: lo");
    let took = started.elapsed();
    assert!(
        transcript.starts_with("HTTP/1.1 408 Request Timeout\n")
            && closed_by_the_server(&transcript),
        "{transcript}"
    );
    assert!(took >= timeout, "answered after {took:?}");

    // Dripping a byte every 50 ms does not push the deadline back: the server closes the
    // connection while the client still has most of its 200 bytes (10 s) to send.
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let dripper = thread::spawn(move || {
        let head = b"GET / HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'x'; 176].iter());
        let mut sent = 0;
        for &b in head {
            if writer.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            thread::sleep(Duration::from_millis(50));
        }
        sent
    });
    let transcript = read_to_close(&mut stream);
    assert!(
        transcript.starts_with("HTTP/1.1 408 Request Timeout\n")
            && closed_by_the_server(&transcript),
        "{transcript}"
    );
    drop(stream);
    let sent = dripper.join().unwrap();
    assert!(sent < 200, "the server waited for all {sent} bytes");

    // A connection that never sends anything is closed silently, not before the time.
    let started = Instant::now();
    let mut stream = connect(addr);
    assert_eq!(read_to_close(&mut stream), "");
    assert!(started.elapsed() >= timeout);
}

#[test]
fn idle_timeout() {
    let timeout = Duration::from_millis(300);
    let addr = start(Limits {
        idle_timeout: timeout,
        ..test_limits()
    });
    let mut stream = connect(addr);
    // The idle time starts after the response, so after this.
    let started = Instant::now();
    stream.write_all(b"GET /1 HTTP/1.1\r\n\r\n").unwrap();
    read_response(&mut stream);
    // Closed silently by the server (the client's own timeout would show as a marker).
    assert_eq!(read_to_close(&mut stream), "");
    let took = started.elapsed();
    assert!(took >= timeout, "{took:?}");
}

const REFUSED: &str = "HTTP/1.1 503 Service Unavailable
Content-Type: text/plain; charset=utf-8
Content-Length: 24
Connection: close

503 Service Unavailable
";

/// Time for a connection thread to act on what it has already read or written, on a loaded
/// machine: nothing tells from outside when it has.
const SETTLE: Duration = Duration::from_millis(500);

/// A connection that sent a request and read its answer: kept alive, waiting for the next one
/// (once the server's thread has gone back to waiting after writing the answer).
fn kept_alive(addr: SocketAddr, name: &str) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(format!("GET /{name} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let (head, _) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    thread::sleep(SETTLE);
    stream
}

#[test]
fn at_the_cap_the_connection_waiting_longest_makes_room() {
    let addr = start(Limits {
        max_connections: 2,
        ..test_limits()
    });
    let mut oldest = kept_alive(addr, "oldest");
    let mut newer = kept_alive(addr, "newer");
    // A third connection is served: the one waiting longest is closed without a word.
    let transcript = exchange(addr, b"GET /third HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(transcript.ends_with("\n\nGET /third"), "{transcript}");
    assert_eq!(read_to_close(&mut oldest), "");
    newer.write_all(b"GET /again HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut newer).1, b"GET /again");
}

#[test]
fn at_the_cap_connections_in_the_middle_of_a_request_are_kept_and_new_ones_refused() {
    let addr = start(Limits {
        max_connections: 2,
        ..test_limits()
    });
    let mut held = Vec::new();
    for i in 0..2 {
        let mut stream = connect(addr);
        stream
            .write_all(format!("GET /held{i} HTTP/1.1\r\n").as_bytes())
            .unwrap();
        held.push(stream);
    }
    // Both slots are busy once the server has read the first bytes of each request.
    thread::sleep(SETTLE);
    assert_eq!(exchange(addr, b"GET /third HTTP/1.1\r\n\r\n"), REFUSED);
    // The requests they started are still answered.
    for (i, stream) in held.iter_mut().enumerate() {
        stream.write_all(b"\r\n").unwrap();
        assert_eq!(read_response(stream).1, format!("GET /held{i}").as_bytes());
    }
    drop(held);
    wait_until_served(addr);
}

#[test]
fn address_groups() {
    fn check(ip: &str, expected: &str) {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(
            address_group(ip),
            expected.parse::<IpAddr>().unwrap(),
            "{ip}"
        );
    }
    check("127.0.0.2", "127.0.0.2");
    check("::ffff:192.0.2.7", "192.0.2.7");
    check("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::");
    check("::1", "::");
}

#[test]
fn client_that_does_not_read_is_dropped() {
    let addr = start(Limits {
        max_connections: 1,
        write_timeout: Duration::from_millis(300),
        ..test_limits()
    });
    let mut stream = connect(addr);
    stream.write_all(b"GET /huge HTTP/1.1\r\n\r\n").unwrap();
    // Never read: the server gives up writing and frees the only slot.
    wait_until_served(addr);
    drop(stream);
}

/// Panics seen on connection threads (named `http`) from the moment [`watch_panics`] is first
/// called, by any test in this binary (in the release build, any would end the process).
static UNEXPECTED_PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Installs (once) a panic hook that records unexpected panics of connection threads, then
/// hands every panic to the hook that was there before.
fn watch_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if thread::current().name() == Some("http") {
                let location = info.location().map(|l| l.to_string()).unwrap_or_default();
                if let Ok(mut panics) = UNEXPECTED_PANICS.lock() {
                    panics.push(format!("{message} at {location}"));
                }
            }
            previous(info);
        }));
    });
}

/// A request built from pieces that reach every path of the server: methods, targets in
/// every form, versions, framing and connection headers, bodies, pipelining.
fn random_requests(rng: &mut crate::rng::Rng) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let method = rng.pick(&[
            "GET", "HEAD", "POST", "PUT", "OPTIONS", "CONNECT", "get", "X",
        ]);
        let target = rng.pick(&[
            "/",
            "/a",
            "/x?y=%41",
            "/%zz",
            "/%",
            "/?/",
            "//",
            "http://h:1/p?q",
            "HTTPS://h",
            "*",
            "h:443",
            "/a b",
        ]);
        let version = rng.pick(&[
            " HTTP/1.1",
            " HTTP/1.1",
            " HTTP/1.1",
            " HTTP/1.0",
            " HTTP/2",
            "",
        ]);
        bytes.extend_from_slice(format!("{method} {target}{version}\r\n").as_bytes());
        let mut body = 0;
        for _ in 0..rng.below(5) {
            let header = rng.pick(&[
                "Host: x",
                "Connection: close",
                "Connection: keep-alive, Close",
                "Content-Length: 3",
                "Content-Length: 0",
                "Content-Length: 99999999999999999999",
                "Content-Length: -1",
                "Transfer-Encoding: chunked",
                "Expect: 100-continue",
                "X-Echo: v",
                "X-Empty:",
                "Accept: */*",
            ]);
            if header == "Content-Length: 3" {
                body = 3;
            }
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        for _ in 0..body {
            bytes.push(rng.pick(b"ab\r\n"));
        }
    }
    bytes
}

/// Any bytes from a client: never a panic, only well-formed responses or a plain close,
/// and the server goes on serving. 2,000 cases, each on its own connection that we close
/// after sending (so that each ends at once): random bytes (HTTP words and all 256 byte
/// values), and random requests, pipelined or not, with random changes.
#[test]
fn any_bytes_from_a_client_never_panic_the_server() {
    use crate::rng::Rng;
    watch_panics();
    let addr = start(test_limits());
    const WORDS: &[&str] = &[
        "GET ",
        "HEAD ",
        "/",
        " HTTP/1.1",
        "\r\n",
        "\r\n\r\n",
        "\n",
        "Content-Length: ",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "Expect: 100-continue",
        ":",
        " ",
        "\t",
        "7",
        "99999999999999999999",
        "%",
        "?",
        "*",
        "http://",
        "\0",
        "\u{7f}",
        "ü",
    ];
    let mut rng = Rng::new(42);
    let mut answered = 0;
    for case in 0..2000 {
        let mut bytes: Vec<u8> = Vec::new();
        if case % 3 == 0 {
            for _ in 0..rng.below(40) {
                if rng.chance(70) {
                    bytes.extend_from_slice(rng.pick(WORDS).as_bytes());
                } else {
                    bytes.push(rng.next() as u8);
                }
            }
        } else {
            bytes = random_requests(&mut rng);
            for _ in 0..rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(4) {
                    0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    1 => bytes.insert(at, rng.pick(b"\r\n: \0%\xff\t")),
                    2 => bytes.truncate(at),
                    _ => {
                        let word = rng.pick(WORDS).as_bytes();
                        bytes.splice(at..at, word.iter().copied());
                    }
                }
            }
        }
        let mut stream = connect(addr);
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(Shutdown::Write);
        let transcript = read_to_close(&mut stream);
        let shown = || {
            format!(
                "case {case}: {:?} got {transcript:?}",
                String::from_utf8_lossy(&bytes)
            )
        };
        assert!(!transcript.ends_with("<not closed in time>"), "{}", shown());
        let transcript = transcript.strip_suffix("<reset>").unwrap_or(&transcript);
        assert!(
            transcript.is_empty() || transcript.starts_with("HTTP/1.1 "),
            "{}",
            shown()
        );
        // Every status line is one this server writes.
        for line in transcript.lines().filter(|l| l.starts_with("HTTP/1.1 ")) {
            let status: u16 = line[9..].get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
            let known = status == 100
                || ((200..600).contains(&status) && line[12..] == format!(" {}", reason(status)));
            assert!(known, "{line:?} in {}", shown());
            answered += usize::from(status == 200);
        }
    }
    wait_until_served(addr);
    let panics = UNEXPECTED_PANICS.lock().unwrap().clone();
    assert!(panics.is_empty(), "connection threads panicked: {panics:?}");
    // The generator reaches the handler, not only the parser's refusals.
    assert!(answered > 150, "only {answered} requests answered 200");
}

#[test]
fn absurd_timeouts_do_not_panic() {
    let forever = Duration::MAX;
    let limits = Limits {
        header_timeout: forever,
        idle_timeout: forever,
        write_timeout: forever,
        ..test_limits()
    };
    let transcript = exchange(
        start(limits),
        b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(transcript.ends_with("\n\nGET /x"), "{transcript}");
}

#[test]
fn paths() {
    fn check(target: &str, expected: Option<(&str, &str)>) {
        assert_eq!(path_of(target), expected, "{target:?}");
    }
    check("/", Some(("/", "")));
    check("/metrics?name[]=a&b", Some(("/metrics", "name[]=a&b")));
    check("/a?b?c", Some(("/a", "b?c")));
    check("/%2e%2e/x", Some(("/%2e%2e/x", "")));
    check("http://example.com/metrics?x", Some(("/metrics", "x")));
    check("HTTPS://example.com:9100", Some(("/", "")));
    check("http://example.com?x=/y", Some(("/", "x=/y")));
    check("*", None);
    check("example.com:443", None);
    check("ftp://example.com/", None);
}

#[test]
fn dates() {
    fn check(secs: u64, expected: &str) {
        assert_eq!(http_date(secs), expected, "{secs}");
    }
    check(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    check(784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT");
    check(951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT");
    check(951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT");
    check(4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT");
    check(253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT");
}
