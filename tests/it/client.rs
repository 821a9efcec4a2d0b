//! The client against hostile and unusual targets, through the real binary: a head that tries
//! to slip past the header limit (watched through `/proc/PID`), redirects whose `Location` would
//! split a request line or a log line, deadlines in fractions of a second that hold against a
//! target that trickles, IPv6 literal targets, and the request itself (`Host`,
//! `Accept-Encoding: identity`, `Connection: close`, a chunked answer). The failures every
//! target can cause, one reason each, are in `core.rs`
//! (`every_target_failure_is_a_status_not_a_crash`).

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::harness::{
    app_part, command, value, Exporter, Reply, Target, TUTORIAL_DOC, TUTORIAL_TEXT,
};

/// The resident memory the exporter must stay under (a debug build idles at about 4 MiB).
const RSS_LIMIT_KIB: u64 = 16 * 1024;

/// A target that answers each request with `head`, then `repeat` over and over until
/// `limit` bytes are out or the exporter stops reading; counts the bytes the kernel took.
fn flooding_target(head: Vec<u8>, repeat: Vec<u8>, limit: u64) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (head, repeat, counter) = (head.clone(), repeat.clone(), Arc::clone(&counter));
            thread::spawn(move || {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(20)));
                read_request(&stream);
                let mut out = &stream;
                let mut written = head.len() as u64;
                if out.write_all(&head).is_err() {
                    return;
                }
                while written < limit && out.write_all(&repeat).is_ok() {
                    written += repeat.len() as u64;
                }
                counter.fetch_max(written, Ordering::Relaxed);
                let _ = stream.shutdown(Shutdown::Both);
            });
        }
    });
    (url, sent)
}

/// Reads a request head (up to its empty line).
fn read_request(stream: &TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// minreq 3.0.0 subtracted `line + 2` from its header budget: a first header line of 65,535
/// bytes ended by a bare LF wrapped the counter, every header after it was kept (256 MiB raised
/// the resident memory by 501 MiB) and the poll succeeded. Our count is of bytes, whatever
/// ends the lines.
#[test]
fn the_header_limit_cannot_be_bypassed() {
    let mut head = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    head.resize(17 + 65_535, b'a');
    head.push(b'\n');
    let filler = [b"X-Filler: ".as_slice(), &[b'f'; 1000], b"\r\n"].concat();
    let (url, sent) = flooding_target(head, filler, 256 << 20);
    let exporter = Exporter::start(
        &["--target-url", &url],
        &[
            ("POLLING_INTERVAL_SECONDS", "0.5"),
            ("TARGET_TIMEOUT_SECONDS", "5"),
        ],
    );
    let body = exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"too_large\"}",
        2.0,
    );
    assert_eq!(value(&body, "status_exporter_up"), Some(0.0));
    assert!(
        exporter.log_lines("failing")[0].contains("response too large: headers over 65536 bytes"),
        "{:?}",
        exporter.stderr()
    );
    let peak = peak_rss_kib(exporter.pid());
    let sent = sent.load(Ordering::Relaxed);
    println!("peak RSS {peak} KiB; the target got at most {sent} bytes out per poll");
    assert!(peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    // The exporter stopped reading at 64 KiB: what the target got out is what the kernel's
    // buffers took, far less than the 256 MiB it meant to send.
    assert!(sent < 32 << 20, "the target sent {sent} bytes");
}

/// A `Location` with a control character is not followed (`redirect`): a bare CR would split
/// the next request line. What the log shows of it is escaped, so no terminal escape sequence
/// and no line break of the target's reaches the log.
#[test]
fn a_location_with_a_control_character_is_refused_and_escaped() {
    let redirect = |location: &[u8]| {
        Reply::Raw(
            [
                b"HTTP/1.1 302 Found\r\nLocation: ".as_slice(),
                location,
                b"\r\nContent-Length: 0\r\n\r\n",
            ]
            .concat(),
        )
    };
    for (location, shown) in [
        (&b"/next\rX-Injected: 1"[..], r"/next\rX-Injected: 1"),
        (&b"/\x1b[2J\x1b[31mred"[..], r"/\u{1b}[2J\u{1b}[31mred"),
        (&b"/tab\there"[..], r"/tab\there"),
    ] {
        let target = Target::start(redirect(location));
        let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
        exporter.wait_for_at_least(
            "status_exporter_poll_failures_total{reason=\"redirect\"}",
            2.0,
        );
        let failing = exporter.log_lines("failing");
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert!(
            failing[0].ends_with(&format!(
                "redirect not followed: a Location with a control character in it ({shown})"
            )),
            "{failing:?}"
        );
        for line in exporter.stderr() {
            assert!(
                !line.contains(['\r', '\x1b', '\t']),
                "raw control character: {line:?}"
            );
        }
        assert!(
            target.seen().iter().all(|s| s.path == "/status"),
            "{:?}",
            target.seen()
        );
    }

    // A line break ends the header: what follows is another header, never a log line.
    let forged = b"http://elsewhere/\r\ninfo: poll recovered after 1.0s (1 failed polls of x)";
    let target = Target::start(redirect(forged));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"redirect\"}",
        2.0,
    );
    assert!(
        exporter.log_lines("failing")[0].contains("to another host (http://elsewhere/)"),
        "{:?}",
        exporter.stderr()
    );
    let forged: Vec<String> = exporter
        .stderr()
        .into_iter()
        .filter(|l| l.starts_with("info: poll recovered"))
        .collect();
    assert!(forged.is_empty(), "{forged:?}");
}

/// The whole poll ends by TARGET_TIMEOUT_SECONDS, fractions included (the old client rounded
/// it up to whole seconds), however the target spends it: never answering, or sending a byte
/// at a time so that no single read waits long.
#[test]
fn the_deadline_holds_to_a_fraction_of_a_second() {
    let trickle = |stream: TcpStream| {
        read_request(&stream);
        let mut out = &stream;
        let head = b"HTTP/1.1 200 OK\r\nX-Slow: ";
        for &byte in head.iter().chain(std::iter::repeat_n(&b'x', 200)) {
            if out.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let trickling = format!("http://{}/status", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || trickle(stream));
        }
    });
    let hanging = Target::start(Reply::Hang);
    for (url, what) in [
        (trickling, "a trickle"),
        (hanging.url("/status"), "no answer"),
    ] {
        let exporter = Exporter::start(
            &["--target-url", &url],
            &[
                ("POLLING_INTERVAL_SECONDS", "2"),
                ("TARGET_TIMEOUT_SECONDS", "0.25"),
            ],
        );
        let body = exporter.wait_for_at_least(
            "status_exporter_poll_failures_total{reason=\"timeout\"}",
            1.0,
        );
        let took = value(&body, "status_exporter_poll_duration_seconds").unwrap();
        // Rounded up, the poll would take 1 s at least; 0.7 s of room for a loaded machine.
        assert!(
            (0.25..0.95).contains(&took),
            "{what}: the poll took {took} s with a 0.25 s timeout"
        );
        assert!(
            exporter.log_lines("failing")[0].contains(
                "no complete answer within TARGET_TIMEOUT_SECONDS (while reading the headers)"
            ),
            "{what}: {:?}",
            exporter.stderr()
        );
    }
}

/// An IPv6 literal is polled, whether given in a URL or as TARGET_HOST (bare or in brackets).
/// The test needs the IPv6 loopback address: without it, it fails and says so.
#[test]
fn ipv6_literal_targets_are_polled() {
    let listener = TcpListener::bind("[::1]:0").unwrap_or_else(|e| {
        panic!(
            "this host has no IPv6 loopback address (::1): {e}; the IPv6 target test needs it \
             (enable IPv6 on lo: sysctl net.ipv6.conf.lo.disable_ipv6=0)"
        )
    });
    let target = Target::start_on(listener, Reply::Json(TUTORIAL_DOC.into()));
    let url = target.url("/status");
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let port = target.addr.port().to_string();
    for (args, env) in [
        (vec!["--target-url", url.as_str()], vec![]),
        (
            vec![],
            vec![("TARGET_HOST", "::1"), ("TARGET_PORT", port.as_str())],
        ),
        (
            vec![],
            vec![("TARGET_HOST", "[::1]"), ("TARGET_PORT", port.as_str())],
        ),
    ] {
        let exporter = Exporter::start(&args, &env);
        let body = exporter.wait_for_line("status_exporter_up 1");
        assert_eq!(app_part(&body), TUTORIAL_TEXT);
        let startup = exporter.log_lines("listening on");
        assert!(
            startup[0].contains(&format!("polling {url}")),
            "{startup:?}"
        );
    }
    let seen = target.seen();
    assert!(
        seen.iter()
            .all(|s| s.headers["host"] == format!("[::1]:{port}")),
        "{seen:?}"
    );
}

/// What every request carries: `Host` with the port, `Accept-Encoding: identity` (the client
/// decodes no compression), `Connection: close`; a chunked answer is decoded.
#[test]
fn requests_are_plain_and_chunked_answers_are_read() {
    let doc = TUTORIAL_DOC.as_bytes();
    let (first, rest) = doc.split_at(doc.len() / 2);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in [first, rest] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let target = Target::start(Reply::Raw(chunked));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
    let seen = &target.seen()[0];
    assert_eq!(seen.headers["host"], target.addr.to_string());
    assert_eq!(seen.headers["accept-encoding"], "identity");
    assert_eq!(seen.headers["connection"], "close");

    // A compressed answer, which was not asked for, is refused with the reason.
    target.set(Reply::Raw(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
    ));
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"invalid_response\"}",
        1.0,
    );
    assert!(
        exporter.log_lines("failing")[0].contains("the body is compressed (gzip) although the request asked for none (Accept-Encoding: identity)"),
        "{:?}",
        exporter.stderr()
    );
}

/// The binary with a bad TARGET_HOST: exit 2, one line, the fix.
#[test]
fn target_host_is_a_host_alone() {
    for (host, expected) in [
        (
            "localhost:8000",
            r#"error: TARGET_HOST: "localhost:8000" has a port in it; put the port in TARGET_PORT"#,
        ),
        (
            "http://app:8000/status",
            r#"error: TARGET_HOST: "http://app:8000/status" is a URL, not a host; use TARGET_URL for a whole URL"#,
        ),
        (
            "app/status",
            r#"error: TARGET_HOST: "app/status" has a path in it; put the path in TARGET_METRICS, or use TARGET_URL for a whole URL"#,
        ),
        (
            "[app]",
            r#"error: TARGET_HOST: "[app]" is not a host name or IP address (an IPv6 address goes bare or in brackets: ::1 or [::1])"#,
        ),
    ] {
        for args in [&["--check-config"][..], &[]] {
            let output = command(args, &[("TARGET_HOST", host)])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{host} {args:?}");
            assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), expected);
        }
    }
}
