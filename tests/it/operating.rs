//! Operating the exporter (issue 15): signals (SIGHUP reads the files again, SIGTERM and SIGINT
//! stop gracefully), `POST /-/reload`, the status page a browser gets at `/`, and bcrypt hashes
//! in `WEB_BASIC_AUTH_FILE`. The same with `htpasswd`'s own hashes is in
//! `tests/external/operating.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    self, get, temp_dir, write_atomically, Exporter, Reply, Target, PROMETHEUS_ACCEPT, TUTORIAL_DOC,
};

/// `htpasswd -nbB -C 4 prometheus s3cret` and `htpasswd -nbB -C 4 other pw`.
const PROMETHEUS_HASH: &str = "$2y$04$ZTFqrCsxTsuiNrGzgxVuK.WkoKsZ4vpcPy4DO4ipK3.3Y6KnlZKBO";
const OTHER_HASH: &str = "$2y$04$.qdtjaQACWedPZsRCwKXGurG3e50Fq11GlQiSrdCYTWq3Kk2aNs8S";
/// `Basic` credentials: prometheus:s3cret, prometheus:wrong, nobody:s3cret, other:pw.
const PROMETHEUS: &str = "Basic cHJvbWV0aGV1czpzM2NyZXQ=";
const WRONG: &str = "Basic cHJvbWV0aGV1czp3cm9uZw==";
const NOBODY: &str = "Basic bm9ib2R5OnMzY3JldA==";
const OTHER: &str = "Basic b3RoZXI6cHc=";

/// The tutorial mapping with `app_requests_current` renamed to `name`.
fn mapping(name: &str) -> String {
    std::fs::read_to_string(harness::repo().join("scripts/mappings/tutorial/mapping.json"))
        .unwrap()
        .replace("app_requests_current", name)
}

/// A file only its owner can read (the exporter warns about others).
fn private(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    write_atomically(path, content);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn status(exporter: &Exporter, method: &str, path: &str, authorization: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    get(exporter.addr, method, path, &headers).status
}

#[test]
fn sighup_reads_every_file_at_once_and_the_exporter_lives_on() {
    let dir = temp_dir("operating-sighup");
    let (map, token, users) = (dir.join("m.json"), dir.join("token"), dir.join("users"));
    write_atomically(&map, mapping("app_requests_current"));
    private(&token, "one\n");
    private(&users, &format!("prometheus:{PROMETHEUS_HASH}\n"));
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let path = |p: &Path| p.display().to_string();
    // Polls an hour apart: after the first, only a reload brings one forward.
    let mut exporter = Exporter::start(
        &[],
        &[
            ("POLLING_INTERVAL_SECONDS", "3600"),
            ("TARGET_URL", &target.url("/status")),
            ("CONFIG_FILE", &path(&map)),
            ("TARGET_BEARER_TOKEN_FILE", &path(&token)),
            ("WEB_BASIC_AUTH_FILE", &path(&users)),
        ],
    );
    exporter.wait_ready(Duration::from_secs(10));
    let scrape = |exporter: &Exporter| {
        get(
            exporter.addr,
            "GET",
            "/metrics",
            &[("Authorization", PROMETHEUS)],
        )
        .body
    };
    assert!(scrape(&exporter).contains("\napp_requests_current 4\n"));

    // Written a moment ago (a changed file is otherwise read once it has settled for 1 s, at
    // the next poll, an hour away): SIGHUP reads them now, and the poll comes at once.
    write_atomically(&map, mapping("app_current_requests"));
    private(&token, "two\n");
    exporter.signal(libc::SIGHUP);
    exporter.wait_for_log("SIGHUP: users", Duration::from_secs(10));
    let lines = exporter.log_lines("SIGHUP: ");
    let expected = [
        format!(
            "info: SIGHUP: mapping reloaded from {}: 4 metrics",
            path(&map)
        ),
        format!("info: SIGHUP: credentials reloaded from {}", path(&token)),
        format!(
            "info: SIGHUP: users unchanged in {} (1 user, bcrypt)",
            path(&users)
        ),
    ];
    assert_eq!(lines, expected);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !scrape(&exporter).contains("\napp_current_requests 4\n") {
        assert!(Instant::now() < deadline, "{}", scrape(&exporter));
        thread::sleep(Duration::from_millis(20));
    }
    let seen = target.seen();
    assert_eq!(seen.len(), 2, "one poll at start, one after the reload");
    assert_eq!(seen[1].headers["authorization"], "Bearer two");
    assert!(exporter.running());
    assert_eq!(status(&exporter, "GET", "/-/healthy", None), 200);

    // A broken mapping: its error in the log, the last good mapping kept, and the metrics say
    // the reload failed. The users file removed: the last good users are still let in.
    write_atomically(&map, "{\"metrics\": [");
    std::fs::remove_file(&users).unwrap();
    exporter.signal(libc::SIGHUP);
    let failed = exporter.wait_for_log("SIGHUP: mapping not reloaded", Duration::from_secs(10));
    assert!(
        failed.starts_with("warn: SIGHUP: mapping not reloaded, the previous one stays in use: ")
            && failed.contains("not valid JSON"),
        "{failed}"
    );
    exporter.wait_for_log("SIGHUP: WEB_BASIC_AUTH_FILE", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(&exporter);
        if body.contains("\nstatus_exporter_config_last_reload_successful 0\n") {
            assert!(body.contains("\napp_current_requests 4\n"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        exporter.log_lines("SIGHUP: ").len(),
        6,
        "{:?}",
        exporter.stderr()
    );
    assert!(exporter.running());
}

#[test]
fn sighup_without_files_says_so() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let mut exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.signal(libc::SIGHUP);
    exporter.wait_for_log("SIGHUP: no file to reload", Duration::from_secs(10));
    assert!(exporter.running());
}

#[test]
fn post_reload_only_when_enabled_and_with_credentials() {
    let dir = temp_dir("operating-post-reload");
    let (map, users) = (dir.join("m.json"), dir.join("users"));
    write_atomically(&map, mapping("app_requests_current"));
    private(&users, &format!("prometheus:{PROMETHEUS_HASH}\n"));
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let env = |enable: &'static str| {
        vec![
            ("POLLING_INTERVAL_SECONDS", "3600".to_string()),
            ("TARGET_URL", target.url("/status")),
            ("CONFIG_FILE", map.display().to_string()),
            ("WEB_BASIC_AUTH_FILE", users.display().to_string()),
            ("WEB_ENABLE_RELOAD", enable.to_string()),
        ]
    };
    let start = |env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Exporter::start(&[], &env)
    };

    // Off (the default): 404 for every method, saying how to turn it on; nothing reloaded.
    let off = start(&env("false"));
    for method in ["POST", "GET", "PUT"] {
        let response = get(
            off.addr,
            method,
            "/-/reload",
            &[("Authorization", PROMETHEUS)],
        );
        assert_eq!(response.status, 404, "{method}");
        assert!(
            response.body.contains("--web-enable-reload"),
            "{response:?}"
        );
    }
    assert!(
        off.log_lines("POST /-/reload").is_empty(),
        "{:?}",
        off.stderr()
    );
    drop(off);

    let on = start(&env("true"));
    assert!(on.log_lines("; POST /-/reload: on").len() == 1);
    on.wait_ready(Duration::from_secs(10));
    // Credentials, as for the metrics; then POST (or PUT, as Prometheus takes) only.
    for authorization in [None, Some(WRONG), Some(NOBODY)] {
        assert_eq!(status(&on, "POST", "/-/reload", authorization), 401);
    }
    let response = get(
        on.addr,
        "GET",
        "/-/reload",
        &[("Authorization", PROMETHEUS)],
    );
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "POST, PUT");
    assert!(on.log_lines(": POST /-/reload: ").is_empty());

    write_atomically(&map, mapping("app_current_requests"));
    let response = get(
        on.addr,
        "POST",
        "/-/reload",
        &[("Authorization", PROMETHEUS)],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.body,
        format!(
            "mapping reloaded from {}: 4 metrics\nusers unchanged in {} (1 user, bcrypt)\n",
            map.display(),
            users.display()
        )
    );
    assert_eq!(on.log_lines("info: POST /-/reload: ").len(), 2);
    on.wait_for_with(
        "the new mapping",
        |body| body.contains("\napp_current_requests 4\n"),
        PROMETHEUS,
    );

    // A bad file: 500 with its error; the previous mapping stays.
    write_atomically(&map, r#"{"metrics": [{"name": "bad name"}]}"#);
    let response = get(
        on.addr,
        "PUT",
        "/-/reload",
        &[("Authorization", PROMETHEUS)],
    );
    assert_eq!(response.status, 500, "{response:?}");
    assert!(
        response
            .body
            .starts_with("mapping not reloaded, the previous one stays in use: "),
        "{response:?}"
    );
    assert_eq!(
        on.log_lines("warn: POST /-/reload: mapping not reloaded")
            .len(),
        1
    );
    on.wait_for_with(
        "the failed reload",
        |body| body.contains("\nstatus_exporter_config_last_reload_successful 0\n"),
        PROMETHEUS,
    );
    let body = get(on.addr, "GET", "/metrics", &[("Authorization", PROMETHEUS)]).body;
    assert!(body.contains("\napp_current_requests 4\n"), "{body}");

    // A user removed from the file: refused at once after the reload, though let in before.
    private(&users, &format!("other:{OTHER_HASH}\n"));
    let response = get(
        on.addr,
        "POST",
        "/-/reload",
        &[("Authorization", PROMETHEUS)],
    );
    assert_eq!(
        response.status, 500,
        "the mapping is still broken: {response:?}"
    );
    assert!(
        response.body.contains("users reloaded from"),
        "{response:?}"
    );
    assert_eq!(status(&on, "GET", "/metrics", Some(PROMETHEUS)), 401);
    assert_eq!(status(&on, "GET", "/metrics", Some(OTHER)), 200);
}

impl Exporter {
    /// Scrapes with `authorization` until `ready` holds (at most 10 s).
    fn wait_for_with(&self, what: &str, ready: impl Fn(&str) -> bool, authorization: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = get(
                self.addr,
                "GET",
                "/metrics",
                &[("Authorization", authorization)],
            )
            .body;
            if ready(&body) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("{what}: not within 10 s; last scrape:\n{body}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn hashed_and_plain_passwords_unknown_users_and_a_warning_once() {
    let dir = temp_dir("operating-bcrypt");
    let users = dir.join("users");
    private(
        &users,
        &format!(
            "# htpasswd -B\nprometheus:{PROMETHEUS_HASH}\nplain:pl4in-s3cret\nother:{OTHER_HASH}\n"
        ),
    );
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--web-basic-auth-file",
            users.to_str().unwrap(),
        ],
        &[],
    );
    exporter.wait_ready(Duration::from_secs(10));
    let plain = "Basic cGxhaW46cGw0aW4tczNjcmV0"; // plain:pl4in-s3cret
    for _ in 0..3 {
        assert_eq!(status(&exporter, "GET", "/metrics", Some(PROMETHEUS)), 200);
        assert_eq!(status(&exporter, "GET", "/metrics", Some(OTHER)), 200);
        assert_eq!(status(&exporter, "GET", "/metrics", Some(plain)), 200);
        for refused in [WRONG, NOBODY, "Basic b3RoZXI6cHcg", "Basic !!"] {
            assert_eq!(status(&exporter, "GET", "/metrics", Some(refused)), 401);
        }
    }
    // One warning, at load, naming the line, never the password.
    let warnings = exporter.log_lines("plain text");
    assert_eq!(
        warnings,
        [format!(
            "warn: WEB_BASIC_AUTH_FILE: {}: line 3 holds a password in plain text; store bcrypt \
             hashes instead (htpasswd -B)",
            users.display()
        )]
    );
    assert!(!exporter.stderr().join("\n").contains("pl4in-s3cret"));
    assert!(!exporter.stderr().join("\n").contains("$2y$"));

    // A hash of a cost too high to check: refused at start with the fix.
    let costly = dir.join("costly");
    private(
        &costly,
        &format!("a:{}", PROMETHEUS_HASH.replace("$04$", "$14$")),
    );
    let out = harness::run(&mut harness::command(
        &[
            "--web-basic-auth-file",
            costly.to_str().unwrap(),
            "--check-config",
        ],
        &[],
    ));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: --web-basic-auth-file: {}: line 1: bcrypt cost 14 is more than 12: each check \
             would take 4x as long as at cost 12; hash the password again with htpasswd -B -C 12 \
             (or less)\n",
            costly.display()
        )
    );
}

/// A target whose document maps to about `bytes` of metrics: long label values, few series.
fn large_target(bytes: usize) -> (Target, std::path::PathBuf) {
    let series = 64;
    let label = "x".repeat(bytes / series);
    let items: Vec<String> = (0..series)
        .map(|i| format!(r#"{{"name": "{label}{i}", "value": {i}}}"#))
        .collect();
    let target = Target::start(Reply::Json(format!(
        r#"{{"items": [{}]}}"#,
        items.join(",")
    )));
    let dir = temp_dir(&format!("operating-large-{bytes}"));
    let mapping = dir.join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"metrics": [{"name": "item_value", "help": "Item value", "each": "/items",
                         "labels": {"item": "/name"}, "path": "/value"}]}"#,
    )
    .unwrap();
    (target, mapping)
}

#[test]
fn sigterm_finishes_a_slow_scrape_and_exits_0() {
    // Larger than what the kernel buffers between the two sockets (4 MiB of send buffer at
    // most, and a small receive buffer): the exporter is still writing when SIGTERM comes.
    let size = 12 << 20;
    let (target, mapping) = large_target(size);
    let mut exporter = Exporter::start(
        &[],
        &[
            ("POLLING_INTERVAL_SECONDS", "3600"),
            ("TARGET_URL", &target.url("/status")),
            ("TARGET_MAX_BYTES", "33554432"),
            ("CONFIG_FILE", mapping.to_str().unwrap()),
        ],
    );
    exporter.wait_ready(Duration::from_secs(30));
    let mut stream = TcpStream::connect(exporter.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        .unwrap();
    // Read a little, slowly, so that the response is in flight; then SIGTERM.
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    for _ in 0..10 {
        let n = stream.read(&mut chunk).unwrap();
        received.extend_from_slice(&chunk[..n]);
        thread::sleep(Duration::from_millis(20));
    }
    exporter.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(200));
    assert!(
        exporter.running(),
        "the exporter did not wait for the response"
    );
    // Now read the rest at once: the whole response arrives, then the end of the connection.
    let reader = thread::spawn(move || {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).map(|_| rest)
    });
    // The grace period is 1 s (signals::GRACE); a loaded machine gets room on top.
    let (exit, took) = exporter.wait_exit(Duration::from_secs(6));
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    received.extend(
        reader
            .join()
            .unwrap()
            .expect("read the response to its end"),
    );
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .parse()
        .unwrap();
    assert!(length > size, "{length}");
    assert_eq!(body.len(), length, "the whole body");
    assert!(body.ends_with("process_max_fds") || body.contains("\nprocess_max_fds "));
    assert_eq!(
        exporter.log_lines("SIGTERM: stopping").len(),
        1,
        "{:?}",
        exporter.stderr()
    );
    assert!(exporter.log_lines("still in flight").is_empty());
}

#[test]
fn sigint_closes_idle_connections_and_exits_0() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let mut exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_ready(Duration::from_secs(10));
    // A kept-alive connection, idle after its scrape.
    let mut idle = TcpStream::connect(exporter.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    exporter.signal(libc::SIGINT);
    let (exit, _) = exporter.wait_exit(Duration::from_secs(6));
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    // The idle connection was closed, not left to the idle timeout (75 s).
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
    assert_eq!(exporter.log_lines("SIGINT: stopping").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The status page.

/// The browsers' `Accept` header (Firefox).
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[test]
fn every_client_but_a_browser_gets_the_metrics_at_the_root_byte_for_byte() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &["--target-url", &target.url("/status")],
        &[("POLLING_INTERVAL_SECONDS", "3600")],
    );
    exporter.wait_ready(Duration::from_secs(10));
    let accepts: [Option<&str>; 4] = [
        Some(PROMETHEUS_ACCEPT),
        Some("*/*"),
        None,
        Some("text/plain"),
    ];
    for accept in accepts {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        // The process metrics change once a second: compare when /metrics was the same
        // before and after.
        let mut compared = false;
        for _ in 0..50 {
            let before = get(exporter.addr, "GET", "/metrics", &headers);
            let root = get(exporter.addr, "GET", "/", &headers);
            let after = get(exporter.addr, "GET", "/metrics", &headers);
            if before.body == after.body {
                assert_eq!(root.status, 200);
                assert_eq!(root.body, before.body, "{accept:?}");
                assert_eq!(root.headers["content-type"], before.headers["content-type"]);
                compared = true;
                break;
            }
        }
        assert!(compared, "/metrics changed at every try");
    }
    // /metrics is the metrics even for a browser.
    let metrics = get(exporter.addr, "GET", "/metrics", &[("Accept", BROWSER)]);
    assert!(metrics.body.starts_with("# HELP app_requests_current"));
}

#[test]
fn a_browser_gets_a_page_with_the_live_figures() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &["--target-url", &target.url("/status?token=<x>&b=\"y\"")],
        &[],
    );
    exporter.wait_ready(Duration::from_secs(10));
    target.set(Reply::Status(503, "text/plain", "down".into()));
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"http_status\"}",
        2.0,
    );
    let response = get(exporter.addr, "GET", "/", &[("Accept", BROWSER)]);
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers["vary"], "Accept, Accept-Encoding");
    let page = response.body;
    if let Err(e) = well_formed(&page) {
        panic!("{e}\n{page}");
    }
    let polls = exporter.value("status_exporter_polls_total").unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let figures = [
        format!("version {version}"),
        // The target as the start-up line prints it, escaped.
        format!(
            "<code>{}</code>",
            target
                .url("/status?token=<x>&b=\"y\"")
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        ),
        "failed</span>: http_status".to_string(),
        "<code>app_requests_current</code></td><td style=".to_string(),
        "<code>app_health</code>".to_string(),
        "<svg ".to_string(),
    ];
    for figure in &figures {
        assert!(page.contains(figure.as_str()), "{figure} not in\n{page}");
    }
    // The poll count of the page is at most the one scraped after it, and not far behind.
    let shown: f64 = page
        .split(" so far.")
        .next()
        .and_then(|p| p.rsplit("; ").next())
        .and_then(|p| p.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no poll count in\n{page}"));
    assert!(shown >= 2.0 && shown <= polls, "{shown} {polls}");
    let http_status_failures = page
        .split("<code>http_status</code></td><td style=\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no http_status count in\n{page}"));
    assert!(http_status_failures >= 2, "{http_status_failures}");
    // Self-contained: no script, no stylesheet, no image, no link outside the exporter.
    for outside in [
        "<script",
        "<link",
        "<style",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "src=",
        "url(",
        "@import",
        "javascript:",
    ] {
        assert!(!page.contains(outside), "{outside} in\n{page}");
    }
    for href in page.split("href=\"").skip(1) {
        assert!(href.starts_with('/'), "a link outside: {href}");
    }
    // HEAD: the same head, no body.
    let head = get(exporter.addr, "HEAD", "/", &[("Accept", BROWSER)]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

/// Checks that `html` is well-formed: a doctype, then elements that nest and close (void
/// elements never closed, `/>` only inside `<svg>`), attribute values in double quotes, only
/// known character references, and no `<` or `>` in text.
fn well_formed(html: &str) -> Result<(), String> {
    const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];
    let rest = html
        .strip_prefix("<!DOCTYPE html>\n")
        .ok_or("no doctype first")?;
    let mut open: Vec<String> = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let check_text = |text: &str| -> Result<(), String> {
        if text.contains('>') {
            return Err(format!("a > in text: {text:?}"));
        }
        let mut parts = text.split('&');
        parts.next();
        for part in parts {
            let reference = part.split(';').next().unwrap_or("");
            let known = matches!(reference, "amp" | "lt" | "gt" | "quot" | "#39")
                || reference
                    .strip_prefix('#')
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if !known || !part.contains(';') {
                return Err(format!("a bad character reference: &{part:.10}"));
            }
        }
        Ok(())
    };
    let mut text_start = 0;
    while let Some((i, c)) = chars.next() {
        if c != '<' {
            continue;
        }
        check_text(&rest[text_start..i])?;
        let end = rest[i..].find('>').ok_or("a tag without >")? + i;
        let tag = &rest[i + 1..end];
        text_start = end + 1;
        while chars.peek().is_some_and(|&(j, _)| j <= end) {
            chars.next();
        }
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name => continue,
                top => return Err(format!("</{name}> closes {top:?}")),
            }
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("a bad tag name: <{tag}>"));
        }
        while !attributes.trim().is_empty() {
            let (key, value) = attributes
                .trim_start()
                .split_once("=\"")
                .ok_or_else(|| format!("an attribute without a quoted value in <{tag}>"))?;
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("a bad attribute name {key:?} in <{tag}>"));
            }
            let (value, after) = value
                .split_once('"')
                .ok_or_else(|| format!("an unclosed attribute value in <{tag}>"))?;
            if value.contains('<') {
                return Err(format!("a < in an attribute value in <{tag}>"));
            }
            check_text(value)?;
            attributes = after;
        }
        let in_svg = open.iter().any(|t| t == "svg");
        if self_closing && !in_svg {
            return Err(format!("/> outside svg: <{tag}/>"));
        }
        if VOID.contains(&name) || self_closing {
            continue;
        }
        open.push(name.to_string());
    }
    check_text(&rest[text_start..])?;
    if !rest[text_start..].trim().is_empty() {
        return Err("text after </html>".into());
    }
    match open.as_slice() {
        [] => Ok(()),
        open => Err(format!("not closed: {open:?}")),
    }
}

#[test]
fn the_checker_of_the_page_refuses_what_is_not_well_formed() {
    let ok = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body><p>a &amp; b</p>\
              <svg><rect x=\"1\"/></svg></body></html>\n";
    assert_eq!(well_formed(ok), Ok(()));
    for bad in [
        "<html></html>",
        "<!DOCTYPE html>\n<html><p></html>",
        "<!DOCTYPE html>\n<html><p></b></p></html>",
        "<!DOCTYPE html>\n<html><p>a & b</p></html>",
        "<!DOCTYPE html>\n<html><p>a &nbsp b</p></html>",
        "<!DOCTYPE html>\n<html><p>a > b</p></html>",
        "<!DOCTYPE html>\n<html><p class=x>b</p></html>",
        "<!DOCTYPE html>\n<html><p class=\"x>b</p></html>",
        "<!DOCTYPE html>\n<html><br/></html>",
        "<!DOCTYPE html>\n<html><p>a</p>",
        "<!DOCTYPE html>\n<html></html>trailing",
    ] {
        assert!(well_formed(bad).is_err(), "{bad}");
    }
}

#[test]
fn systemctl_reload_sends_sighup() {
    for unit in ["status-exporter.service", "status-exporter@.service"] {
        let text = std::fs::read_to_string(harness::repo().join("scripts").join(unit)).unwrap();
        let reloads: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ExecReload="))
            .collect();
        assert_eq!(reloads, ["ExecReload=/bin/kill -HUP $MAINPID"], "{unit}");
    }
}
