//! Serving and the poller's life (issues 12 and 16): logging to a closed stderr, files that are
//! not regular files or are far too large, gzip answers, and how old the process metrics of a
//! scrape may be. The limits on clients are in `hardening.rs`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{self, Exporter, Reply, Target, TUTORIAL_DOC};

/// A child process killed when dropped, so that a failed test leaves nothing running.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running until taken")
    }

    fn take(mut self) -> Child {
        self.0.take().expect("running until taken")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` to its end, or kills it after `within` and panics: a read that hangs must
/// fail the test, not hang it.
fn run_within(command: &mut Command, within: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Running(Some(command.spawn().expect("start the exporter")));
    let deadline = Instant::now() + within;
    while child
        .child()
        .try_wait()
        .expect("wait for the exporter")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "{command:?} still running after {within:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    child.take().wait_with_output().expect("collect the output")
}

/// Starts the exporter with `env`, polling every 0.2 s, on a free port, with stderr a pipe
/// that this function closes as soon as it has read the start-up line: from then on, every
/// line the exporter logs fails to be written (EPIPE).
fn exporter_with_closed_stderr(env: &[(&str, &str)]) -> (Running, SocketAddr) {
    let mut full = vec![
        ("POLLING_INTERVAL_SECONDS", "0.2"),
        ("EXPORTER_PORT", "0"),
        ("LISTEN_ADDRESS", "127.0.0.1"),
    ];
    full.extend_from_slice(env);
    let mut child = harness::command(&[], &full)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let child = Running(Some(child));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        let read = stderr.read_line(&mut line).expect("read stderr");
        assert!(read > 0, "the exporter ended before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(';').next().unwrap().parse().unwrap();
        }
    };
    drop(stderr);
    (child, addr)
}

fn scrape(addr: SocketAddr) -> String {
    harness::get(addr, "GET", "/metrics", &[]).body
}

/// Waits at most `within` for a scrape for which `ready` holds.
fn wait_for(
    child: &mut Running,
    addr: SocketAddr,
    what: &str,
    within: Duration,
    ready: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let exited = child.child().try_wait().expect("look at the exporter");
        assert!(exited.is_none(), "the exporter exited: {exited:?}");
        let body = scrape(addr);
        if ready(&body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; last scrape:\n{body}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_closed_stderr_neither_stops_the_poller_nor_freezes_its_state() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let (mut child, addr) = exporter_with_closed_stderr(&[("TARGET_URL", &target.url("/status"))]);
    let up =
        |value: f64| move |body: &str| harness::value(body, "status_exporter_up") == Some(value);
    // Each change of state logs a line to the closed pipe; the poller goes on and the scrapes
    // follow the target, through failure and recovery, twice.
    let patience = Duration::from_secs(10);
    for _ in 0..2 {
        wait_for(&mut child, addr, "up 1", patience, up(1.0));
        target.set(Reply::Status(500, "text/plain", "down".into()));
        wait_for(
            &mut child,
            addr,
            "up 0 once the target fails",
            patience,
            up(0.0),
        );
        target.set(Reply::Json(TUTORIAL_DOC.into()));
    }
    wait_for(&mut child, addr, "up 1 once it recovers", patience, up(1.0));
}

/// The directory of a test, with a tutorial mapping and a users file in it.
fn files(name: &str) -> std::path::PathBuf {
    let dir = harness::temp_dir(name);
    let mapping = harness::repo().join("scripts/mappings/tutorial/mapping.json");
    std::fs::copy(mapping, dir.join("mapping.json")).unwrap();
    std::fs::write(dir.join("users"), "prometheus:secret\n").unwrap();
    harness::mkfifo(&dir.join("fifo"));
    // 100 MB that take no room on disk.
    let huge = std::fs::File::create(dir.join("huge")).unwrap();
    huge.set_len(100_000_000).unwrap();
    dir
}

#[test]
fn a_fifo_a_device_or_a_huge_file_is_refused_at_start() {
    let dir = files("special_files_at_start");
    let path = |name: &str| dir.join(name).display().to_string();
    let check = |setting: &str, file: &str, args: &[&str], expected: &str| {
        let output = run_within(
            &mut harness::command(args, &[(setting, file)]),
            Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{setting}={file}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{setting}={file}: {stderr}"
        );
    };
    let fifo = path("fifo");
    let huge = path("huge");
    for args in [&[][..], &["--check-config"][..]] {
        check(
            "CONFIG_FILE",
            &fifo,
            args,
            "it is a FIFO, not a regular file",
        );
        check(
            "CONFIG_FILE",
            "/dev/zero",
            args,
            "it is a device, not a regular file",
        );
        check(
            "CONFIG_FILE",
            &huge,
            args,
            "it is 100000000 bytes, more than the 33554432 bytes allowed",
        );
        check(
            "CONFIG_FILE",
            &dir.display().to_string(),
            args,
            "it is a directory",
        );
        check(
            "WEB_BASIC_AUTH_FILE",
            &fifo,
            args,
            "it is a FIFO, not a regular file",
        );
        check("WEB_BASIC_AUTH_FILE", "/dev/zero", args, "it is a device");
        check(
            "WEB_BASIC_AUTH_FILE",
            &huge,
            args,
            "more than the 1048576 bytes allowed",
        );
        check("TARGET_BEARER_TOKEN_FILE", &fifo, args, "it is a FIFO");
        check(
            "TARGET_BEARER_TOKEN_FILE",
            &huge,
            args,
            "more than the 65536 bytes allowed",
        );
    }
}

#[test]
fn a_fifo_swapped_in_at_run_time_is_reported_once_and_the_last_good_file_stays() {
    let dir = files("special_files_at_run_time");
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            (
                "CONFIG_FILE",
                &dir.join("mapping.json").display().to_string(),
            ),
            (
                "WEB_BASIC_AUTH_FILE",
                &dir.join("users").display().to_string(),
            ),
        ],
    );
    let authorization = ("Authorization", "Basic cHJvbWV0aGV1czpzZWNyZXQ=");
    let scrape = || {
        let response = harness::get(exporter.addr, "GET", "/metrics", &[authorization]);
        assert_eq!(response.status, 200, "{response:?}");
        response.body
    };
    // A FIFO renamed over each file, as a mistaken deployment could.
    for name in ["users", "mapping.json"] {
        harness::mkfifo(&dir.join("new-fifo"));
        std::fs::rename(dir.join("new-fifo"), dir.join(name)).unwrap();
    }
    // The users file is read again at scrapes, the mapping at polls, each once it has settled.
    let patience = Duration::from_secs(10);
    let deadline = Instant::now() + patience;
    while exporter.log_lines("it is a FIFO").len() < 2 {
        scrape();
        assert!(
            Instant::now() < deadline,
            "not both reported within {patience:?}: {:?}",
            exporter.stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
    exporter.wait_for_log("users: cannot read it: it is a FIFO", patience);
    exporter.wait_for_log("mapping not reloaded", patience);
    let polls = harness::value(&scrape(), "status_exporter_polls_total").unwrap();
    // Polling goes on with the last good mapping, the last good users are let in.
    let deadline = Instant::now() + patience;
    let body = loop {
        let body = scrape();
        if harness::value(&body, "status_exporter_polls_total").unwrap() >= polls + 5.0 {
            break body;
        }
        assert!(Instant::now() < deadline, "polling stopped:\n{body}");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains("app_requests_current 4"), "{body}");
    assert_eq!(
        harness::value(&body, "status_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    // Each file reported once, though read again at every poll and every scrape.
    assert_eq!(
        exporter.log_lines("it is a FIFO").len(),
        2,
        "{:?}",
        exporter.stderr()
    );
}

/// A target whose document gives about `series` series, for a body above the gzip threshold.
fn many_series(series: usize) -> (Target, std::path::PathBuf) {
    let items: Vec<String> = (0..series)
        .map(|i| format!(r#"{{"name": "item{i}", "value": {i}}}"#))
        .collect();
    let target = Target::start(Reply::Json(format!(
        r#"{{"items": [{}]}}"#,
        items.join(",")
    )));
    let dir = harness::temp_dir(&format!("many_series_{series}"));
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
fn large_scrapes_are_gzip_when_the_scraper_accepts_it() {
    let (target, mapping) = many_series(2000);
    let env = [
        ("TARGET_URL", target.url("/status")),
        ("CONFIG_FILE", mapping.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let exporter = Exporter::start(&[], &env);
    exporter.wait_for_line("item_value{item=\"item1999\"} 1999");
    let openmetrics = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    for (accept, last) in [("*/*", "process_max_fds"), (openmetrics, "# EOF")] {
        let plain = harness::get_bytes(exporter.addr, "/metrics", &[("Accept", accept)]);
        let gzip = harness::get_bytes(
            exporter.addr,
            "/metrics",
            &[("Accept", accept), ("Accept-Encoding", "gzip")],
        );
        assert_eq!((plain.0, gzip.0), (200, 200));
        assert_eq!(plain.1.get("content-encoding"), None);
        assert_eq!(gzip.1["content-encoding"], "gzip");
        assert_eq!(gzip.1["vary"], "Accept, Accept-Encoding");
        assert_eq!(gzip.1["content-length"], gzip.2.len().to_string());
        assert!(
            gzip.2.len() * 5 < plain.2.len(),
            "{} of {}",
            gzip.2.len(),
            plain.2.len()
        );
        // Two members: the snapshot, then the process metrics; together the same text.
        let text = String::from_utf8(harness::gunzip(&gzip.2)).unwrap();
        let plain = String::from_utf8(plain.2).unwrap();
        assert_eq!(harness::app_part(&text), harness::app_part(&plain));
        let lines = |body: &str| -> Vec<String> {
            body.lines()
                .map(|l| {
                    l.rsplit_once(' ')
                        .map_or(l, |(series, _)| series)
                        .to_string()
                })
                .collect()
        };
        assert_eq!(lines(&text), lines(&plain));
        assert!(text.lines().last().unwrap().starts_with(last), "{accept}");
    }
    // Not compressed: without Accept-Encoding, with gzip refused, for a small body.
    for encoding in ["identity", "gzip;q=0", "br"] {
        let (_, headers, _) =
            harness::get_bytes(exporter.addr, "/metrics", &[("Accept-Encoding", encoding)]);
        assert_eq!(headers.get("content-encoding"), None, "{encoding}");
    }
    let (_, small) = harness::serve_example(&harness::repo().join("scripts/mappings/tutorial"));
    let (_, headers, _) =
        harness::get_bytes(small.addr, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(headers.get("content-encoding"), None);
}

#[test]
fn gzip_can_be_turned_off() {
    let (target, mapping) = many_series(2000);
    for (args, env) in [
        (&["--no-gzip"][..], None),
        (&[][..], Some(("GZIP", "false"))),
    ] {
        let mut full = vec![
            ("TARGET_URL", target.url("/status")),
            ("CONFIG_FILE", mapping.display().to_string()),
        ];
        full.extend(env.map(|(k, v)| (k, v.to_string())));
        let full: Vec<(&str, &str)> = full.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let exporter = Exporter::start(args, &full);
        exporter.wait_for_line("item_value{item=\"item1999\"} 1999");
        let (_, headers, _) =
            harness::get_bytes(exporter.addr, "/metrics", &[("Accept-Encoding", "gzip")]);
        assert_eq!(headers.get("content-encoding"), None, "{args:?} {env:?}");
    }
}

#[test]
fn process_metrics_are_at_most_a_second_old() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(&[], &[("TARGET_URL", &target.url("/status"))]);
    exporter.wait_for_line("app_requests_current 4");
    let open_fds = || harness::value(&exporter.scrape(), "process_open_fds").unwrap();
    let before = open_fds();
    // Ten more connections are ten more descriptors in the exporter. (Two of those counted
    // before may have been passing: the poller's connection to the target, a scrape's own.)
    let held: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(exporter.addr).unwrap())
        .collect();
    let opened = Instant::now();
    loop {
        let now = open_fds();
        if now >= before + 8.0 {
            break;
        }
        // A second for the cached value, and room for a loaded machine.
        assert!(
            opened.elapsed() < Duration::from_secs(3),
            "process_open_fds {now}, {before} before ten more connections"
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    // Every scrape has all of them.
    for _ in 0..20 {
        let body = exporter.scrape();
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(harness::value(&body, name).is_some(), "{name}:\n{body}");
        }
    }
}
