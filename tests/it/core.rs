//! The core exporter through the real binary: the tutorial drop-in, endpoints, settings,
//! start-up errors, and every way a target can fail.

use std::process::Stdio;

use crate::harness::{
    self, app_part, command, get, value, Exporter, Reply, Target, TUTORIAL_DOC, TUTORIAL_TEXT,
};

fn tutorial() -> (Target, Exporter) {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for_line("status_exporter_up 1");
    (target, exporter)
}

#[test]
fn drop_in_for_the_tutorial_exporter() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let port = target.addr.port().to_string();
    // Configured exactly as the Python exporter: TARGET_HOST, TARGET_PORT, TARGET_METRICS.
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_HOST", "127.0.0.1"),
            ("TARGET_PORT", &port),
            ("TARGET_METRICS", "status"),
        ],
    );
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
    let seen = target.seen();
    assert_eq!(seen[0].path, "/status");
    assert_eq!(seen[0].headers["accept"], "application/json");
    assert_eq!(
        seen[0].headers["user-agent"],
        concat!("status-exporter/", env!("CARGO_PKG_VERSION"))
    );
    for line in [
        "# TYPE status_exporter_polls_total counter",
        "status_exporter_poll_failures_total{reason=\"connect\"} 0",
        "status_exporter_poll_failures_total{reason=\"invalid_json\"} 0",
        "status_exporter_mapping_errors_total{metric=\"app_health\"} 0",
        &format!(
            "status_exporter_build_info{{commit=\"{}\",features=\"{}\",version=\"{}\"}} 1",
            status_exporter::config::COMMIT,
            status_exporter::config::FEATURES,
            env!("CARGO_PKG_VERSION"),
        ),
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    let last_success = value(&body, "status_exporter_last_success_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last_success).abs() < 60.0, "{last_success} vs {now}");
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(&body, name).is_some_and(|v| v > 0.0),
            "{name} in\n{body}"
        );
    }
    // One start-up line with version, settings and address; one line for the first poll.
    let startup = exporter.log_lines("listening on");
    assert_eq!(startup.len(), 1);
    assert!(
        startup[0].contains(env!("CARGO_PKG_VERSION")) && startup[0].contains("every 200ms"),
        "{}",
        startup[0]
    );
    assert_eq!(exporter.log_lines("first poll").len(), 1);
}

#[test]
fn endpoints_methods_and_headers() {
    let (_target, exporter) = tutorial();
    for path in ["/metrics", "/", "/metrics?name[]=x", "/?debug=1"] {
        let r = get(exporter.addr, "GET", path, &[]);
        assert_eq!(
            (r.status, r.headers["content-type"].as_str()),
            (200, "text/plain; version=0.0.4; charset=utf-8"),
            "{path}"
        );
        assert_eq!(app_part(&r.body), TUTORIAL_TEXT, "{path}");
    }
    let head = get(exporter.addr, "HEAD", "/metrics", &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert!(head.headers["content-length"].parse::<usize>().unwrap() > TUTORIAL_TEXT.len());
    assert_eq!(get(exporter.addr, "GET", "/-/healthy", &[]).status, 200);
    assert_eq!(get(exporter.addr, "GET", "/-/ready", &[]).status, 200);
    assert_eq!(get(exporter.addr, "GET", "/nope", &[]).status, 404);
    assert_eq!(get(exporter.addr, "GET", "/metrics/", &[]).status, 404);
    for method in ["POST", "PUT", "DELETE"] {
        let r = get(
            exporter.addr,
            method,
            "/metrics",
            &[("Content-Length", "0")],
        );
        assert_eq!(
            (r.status, r.headers.get("allow").map(String::as_str)),
            (405, Some("GET, HEAD")),
            "{method}"
        );
    }
}

#[test]
fn not_ready_and_no_app_metrics_until_a_poll_succeeds() {
    let target = Target::start(Reply::Status(503, "text/plain", "starting".into()));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    let body = exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"http_status\"}",
        1.0,
    );
    assert_eq!(app_part(&body), "");
    assert_eq!(value(&body, "status_exporter_up"), Some(0.0));
    assert_eq!(
        value(&body, "status_exporter_last_success_timestamp_seconds"),
        Some(0.0)
    );
    assert_eq!(get(exporter.addr, "GET", "/-/ready", &[]).status, 503);
    assert_eq!(get(exporter.addr, "GET", "/-/healthy", &[]).status, 200);
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
    assert_eq!(get(exporter.addr, "GET", "/-/ready", &[]).status, 200);
}

/// Each way a target fails: the reason counted, `up` 0, the app's metrics gone (never stale),
/// one log line when it starts failing and one when it recovers, whatever the number of polls.
#[test]
fn every_target_failure_is_a_status_not_a_crash() {
    let truncated =
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"current_requests\": 1".to_vec();
    let bad_chunks =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec();
    let cases: Vec<(Reply, &str, &str)> = vec![
        (
            Reply::Status(500, "text/plain", "boom".into()),
            "http_status",
            "HTTP status 500",
        ),
        (
            Reply::Status(404, "text/html", "<h1>no</h1>".into()),
            "http_status",
            "HTTP status 404",
        ),
        (
            Reply::Status(200, "text/html", "<html>login</html>".into()),
            "invalid_json",
            "not a JSON document",
        ),
        (
            Reply::Json(r#"{"current_requests": 4"#.into()),
            "invalid_json",
            "not a JSON document: EOF",
        ),
        (
            Reply::Json("".into()),
            "invalid_json",
            "not a JSON document",
        ),
        (
            Reply::Raw(truncated),
            "invalid_response",
            "body truncated: 22 of 100 bytes",
        ),
        (
            Reply::Raw(bad_chunks),
            "invalid_response",
            "invalid HTTP response",
        ),
        (
            Reply::Raw(b"garbage\r\n\r\n".to_vec()),
            "invalid_response",
            "invalid HTTP response",
        ),
        (
            Reply::Raw(Vec::new()),
            "invalid_response",
            "invalid HTTP response",
        ),
        (
            Reply::Endless,
            "too_large",
            "more than TARGET_MAX_BYTES (65536 bytes)",
        ),
        (
            Reply::Status(200, "application/json", "1".repeat(70_000)),
            "too_large",
            "70000 bytes, more than TARGET_MAX_BYTES",
        ),
        (
            Reply::EndlessHeader,
            "too_large",
            "headers over 65536 bytes",
        ),
        (
            Reply::Raw([b"HTTP/1.1 200 ".as_slice(), &[b'x'; 100_000]].concat()),
            "too_large",
            "status line over 65536 bytes",
        ),
        (
            Reply::Hang,
            "timeout",
            "no complete answer within TARGET_TIMEOUT_SECONDS",
        ),
        (
            Reply::Raw(
                [
                    b"HTTP/1.1 200 OK\r\n".as_slice(),
                    &b"X: y\r\n".repeat(101),
                    b"\r\n{}",
                ]
                .concat(),
            ),
            "too_large",
            "more than 100 headers",
        ),
        (
            Reply::Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n".to_vec()),
            "too_large",
            "more than TARGET_MAX_BYTES (65536 bytes)",
        ),
        (
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            ),
            "invalid_response",
            "Content-Length is not one number",
        ),
    ];
    for (reply, reason, message) in cases {
        let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
        let env = [
            ("TARGET_TIMEOUT_SECONDS", "0.5"),
            ("TARGET_MAX_BYTES", "65536"),
        ];
        let exporter = Exporter::start(&["--target-url", &target.url("/status")], &env);
        exporter.wait_for_line("status_exporter_up 1");
        target.set(reply.clone());
        let failed = format!("status_exporter_poll_failures_total{{reason=\"{reason}\"}}");
        let body = exporter.wait_for(reason, |b| value(b, &failed).is_some_and(|v| v >= 3.0));
        assert_eq!(app_part(&body), "", "{reason}: no stale app metrics");
        assert_eq!(value(&body, "status_exporter_up"), Some(0.0), "{reason}");
        let failing = exporter.log_lines("failing");
        assert_eq!(
            failing.len(),
            1,
            "{reason}: one line however many polls fail: {failing:?}"
        );
        assert!(
            failing[0].contains(message),
            "{reason}: {:?} should say {message:?}",
            failing[0]
        );
        target.set(Reply::Json(TUTORIAL_DOC.into()));
        let body = exporter.wait_for_line("status_exporter_up 1");
        assert_eq!(app_part(&body), TUTORIAL_TEXT, "{reason}: recovered");
        let recovered = exporter.log_lines("recovered after");
        assert_eq!(recovered.len(), 1, "{reason}: {recovered:?}");
        assert!(recovered[0].contains("failed polls"), "{}", recovered[0]);
    }
}

#[test]
fn unreachable_targets() {
    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let exporter = Exporter::start(&["--target-url", &format!("http://{closed}/status")], &[]);
    let body = exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"connect\"}",
        2.0,
    );
    assert_eq!(
        (app_part(&body), value(&body, "status_exporter_up")),
        ("", Some(0.0))
    );
    assert_eq!(exporter.log_lines("failing").len(), 1);
    assert!(exporter.log_lines("failing")[0].contains("cannot connect"));

    let exporter = Exporter::start(&[], &[("TARGET_HOST", "no-such-host.invalid")]);
    let body = exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"resolve\"}",
        2.0,
    );
    assert_eq!(value(&body, "status_exporter_up"), Some(0.0));
    assert!(
        exporter.log_lines("failing")[0].contains("cannot resolve"),
        "{:?}",
        exporter.stderr()
    );
}

#[test]
fn redirects_stay_on_the_same_host() {
    let other = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let target = Target::start(Reply::Status(302, "text/plain", String::new()));
    let location = |url: String| {
        format!("HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\n\r\n").into_bytes()
    };
    // Same host: followed. The target answers everything with a redirect to /real, so the
    // second request loops: capped, then counted as a redirect failure.
    target.set(Reply::Raw(location(target.url("/real"))));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"redirect\"}",
        1.0,
    );
    assert!(
        exporter.log_lines("failing")[0].contains("more than 5 redirects"),
        "{:?}",
        exporter.stderr()
    );
    assert!(target
        .seen()
        .iter()
        .skip(1)
        .take(5)
        .all(|s| s.path == "/real"));
    // Another host: not followed, nothing sent there.
    target.set(Reply::Raw(location(other.url("/status"))));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"redirect\"}",
        3.0,
    );
    let failing = exporter.log_lines("failing");
    assert!(
        failing[0].contains("redirect not followed: to another host (http://127.0.0.1:"),
        "{failing:?}"
    );
    assert!(other.seen().is_empty());
}

#[test]
fn redirect_within_the_host_is_followed() {
    let target = Target::start(Reply::Raw(
        b"HTTP/1.1 301 Moved\r\nLocation: /moved\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for("a redirect followed", |_| {
        target.seen().iter().any(|s| s.path == "/moved")
    });
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
}

/// Field-level problems skip the sample, count a mapping error, and keep `up` at 1.
#[test]
fn bad_fields_skip_samples_and_count_errors() {
    let doc = r#"{"current_requests": "12", "pending_requests": null, "total_uptime": {"s": 1}, "health": "degraded"}"#;
    let target = Target::start(Reply::Json(doc.into()));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    let body =
        exporter.wait_for_line("status_exporter_mapping_errors_total{metric=\"app_health\"} 2");
    assert_eq!(
        app_part(&body),
        r#"# HELP app_requests_current Current requests
# TYPE app_requests_current gauge
app_requests_current 12
# HELP app_health Health
# TYPE app_health gauge
app_health{app_health="healthy"} 0
app_health{app_health="unhealthy"} 0
"#
    );
    assert_eq!(value(&body, "status_exporter_up"), Some(1.0));
    assert!(
        value(
            &body,
            "status_exporter_mapping_errors_total{metric=\"app_uptime\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        value(
            &body,
            "status_exporter_mapping_errors_total{metric=\"app_requests_current\"}"
        ),
        Some(0.0)
    );
    // Logged once per metric when it starts, not per poll.
    exporter.wait_polls(3);
    let lines = exporter.log_lines("sample(s) skipped");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(r#"app_health: 1 sample(s) skipped, first: /health: "degraded" is not one of the states (healthy, unhealthy)"#)), "{lines:?}");
    assert!(
        lines.iter().any(|l| l
            .contains("app_requests_pending: 1 sample(s) skipped, first: /pending_requests: null")),
        "{lines:?}"
    );
    // Booleans and out-of-range numbers.
    target.set(Reply::Json(r#"{"current_requests": true, "pending_requests": 1e400, "total_uptime": -1e400, "health": "unhealthy"}"#.into()));
    let body = exporter.wait_for_line("app_requests_current 1");
    assert!(
        body.contains("app_requests_pending +Inf\n") && body.contains("app_uptime -Inf\n"),
        "{body}"
    );
    assert!(body.contains("app_health{app_health=\"unhealthy\"} 1\n"));
    assert_eq!(
        exporter.log_lines("every sample mapped again").len(),
        3,
        "{:?}",
        exporter.stderr()
    );
}

#[test]
fn bad_settings_exit_2_with_one_line() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &[],
            &[("EXPORTER_PORT", "abc")],
            r#"EXPORTER_PORT: "abc" is not a port number (0-65535)"#,
        ),
        (
            &[],
            &[("POLLING_INTERVAL_SECONDS", "0")],
            "POLLING_INTERVAL_SECONDS: \"0\" is not a number of seconds",
        ),
        (
            &[],
            &[("POLLING_INTERVAL_SECONDS", "-5")],
            "POLLING_INTERVAL_SECONDS: \"-5\"",
        ),
        (
            &[],
            &[("TARGET_URL", "ftp://x/status")],
            "TARGET_URL: \"ftp://x/status\" must start with http://",
        ),
        (&["--no-such-flag"], &[], "unknown flag \"--no-such-flag\""),
        (&["--exporter-port"], &[], "--exporter-port needs a value"),
        (
            &["--config-file", "/nonexistent.json"],
            &[],
            "CONFIG_FILE: cannot read /nonexistent.json",
        ),
    ];
    for (args, env, expected) in cases {
        let output = command(args, env).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{stderr:?} should contain {expected:?}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = command(
        &["--listen-address", "127.0.0.1", "--exporter-port", &port],
        &[],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim(), format!("error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop the other process or set EXPORTER_PORT"));
}

#[test]
fn help_and_version() {
    let output = command(&["--help"], &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, variable) in [
        ("--polling-interval-seconds", "POLLING_INTERVAL_SECONDS"),
        ("--exporter-port", "EXPORTER_PORT"),
        ("--target-host", "TARGET_HOST"),
        ("--target-port", "TARGET_PORT"),
        ("--target-metrics", "TARGET_METRICS"),
        ("--target-url", "TARGET_URL"),
        ("--listen-address", "LISTEN_ADDRESS"),
        ("--target-timeout-seconds", "TARGET_TIMEOUT_SECONDS"),
        ("--target-max-bytes", "TARGET_MAX_BYTES"),
        ("--config-file", "CONFIG_FILE"),
        ("--no-openmetrics", "OPENMETRICS"),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} not in --help"));
        assert!(line.contains(variable), "{line}");
    }
    for text in [
        "--demo",
        "--check-config",
        "--render",
        "default: 9877",
        "default: 5",
        "/-/ready",
    ] {
        assert!(help.contains(text), "{text} not in --help");
    }
    let output = command(&["--version"], &[]).output().unwrap();
    let features = if cfg!(feature = "https") {
        "https"
    } else {
        "none"
    };
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "status-exporter {} (commit {}, features: {features})\n",
            env!("CARGO_PKG_VERSION"),
            status_exporter::config::COMMIT
        )
    );
}

#[test]
fn demo_mode_needs_nothing_else() {
    let exporter = Exporter::start(&["--demo"], &[]);
    let body = exporter.wait_for_line("status_exporter_up 1");
    for name in ["app_requests_current", "app_requests_pending", "app_uptime"] {
        assert!(value(&body, name).is_some(), "{name} in\n{body}");
    }
    let states: f64 = ["healthy", "unhealthy"]
        .iter()
        .map(|s| value(&body, &format!("app_health{{app_health=\"{s}\"}}")).unwrap())
        .sum();
    assert_eq!(states, 1.0);
    assert!(exporter.log_lines("(demo target)").len() == 1);
}

/// A scrape on a kept-alive connection is one segment: it never waits for the client's delayed
/// ACK (at least 40 ms on Linux), which a response written in two parts would on nearly every
/// round trip. The median of 21 scrapes is compared, as a busy machine slows a few.
#[test]
fn keep_alive_scrapes_never_wait_for_a_delayed_ack() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (_target, exporter) = tutorial();
    let mut stream = std::net::TcpStream::connect(exporter.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let response = harness::parse_response(&[head.as_slice(), b"x"].concat());
        let mut body = vec![0u8; response.headers["content-length"].parse().unwrap()];
        stream.read_exact(&mut body).unwrap();
        times.push(started.elapsed());
        assert!(String::from_utf8(body)
            .unwrap()
            .starts_with("# HELP app_requests_current"));
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(40),
        "median {median:?} of {times:?}"
    );
}
