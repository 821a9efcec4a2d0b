//! `/probe` (issue 13): modules in the config file, loaded, reloaded and refused; the query's
//! 400s; the allowlist (a name, a range, what a name resolves to) with its 403s; a failed target
//! as a 200 with success 0; one fetch shared by concurrent probes; the min-interval cache; the
//! deadline of Prometheus's scrape timeout header; the cap on fetches in flight; and the
//! exporter's own counters. The end-to-end test with Prometheus is `tests/external/probe.rs`.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::prometheus::wait_within;
use crate::harness::{
    self, app_part, command, get, run, temp_dir, value, write_atomically, Exporter, Reply,
    Response, Target, TUTORIAL_DOC, TUTORIAL_TEXT,
};

/// The shipped tutorial mapping, as a module's `mapping` names it.
fn tutorial() -> String {
    harness::repo()
        .join("scripts/mappings/tutorial/mapping.json")
        .display()
        .to_string()
}

/// A config file in a fresh directory named after the test, declaring `modules` (JSON text of
/// the object of modules) and `extra` top-level fields.
fn config(test: &str, modules: &str, extra: &str) -> PathBuf {
    let path = temp_dir(test).join("config.json");
    write_atomically(&path, format!(r#"{{"modules": {modules}{extra}}}"#));
    path
}

/// A module of the tutorial mapping at /status allowing `allow` (JSON list), with `more` fields.
fn module(allow: &str, more: &str) -> String {
    format!(
        r#"{{"mapping": "{}", "path": "/status", "allow": {allow}{more}}}"#,
        tutorial()
    )
}

fn start(config: &Path, env: &[(&str, &str)]) -> Exporter {
    let path = config.display().to_string();
    let mut all = vec![("CONFIG_FILE", path.as_str())];
    all.extend_from_slice(env);
    Exporter::start(&[], &all)
}

fn probe(exporter: &Exporter, query: &str) -> Response {
    get(exporter.addr, "GET", &format!("/probe?{query}"), &[])
}

/// A probe that must answer 200; returns the body.
fn probe_ok(exporter: &Exporter, query: &str) -> String {
    let response = probe(exporter, query);
    if response.status != 200 {
        exporter.fail(&format!("/probe?{query}: {response:?}"));
    }
    response.body
}

/// The `status_exporter_probe_failure` series that is 1, by its reason.
fn reason(body: &str) -> Option<String> {
    body.lines()
        .filter(|l| l.starts_with("status_exporter_probe_failure{") && l.ends_with(" 1"))
        .find_map(|l| Some(l.split('"').nth(1)?.to_string()))
}

fn counter(exporter: &Exporter, module: &str, result: &str) -> f64 {
    let series = format!("status_exporter_probes_total{{module=\"{module}\",result=\"{result}\"}}");
    value(&exporter.scrape(), &series).unwrap_or_else(|| exporter.fail(&format!("no {series}")))
}

#[test]
fn a_module_probes_a_target_with_its_mapping() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-module",
        &format!(r#"{{"tutorial": {}}}"#, module(r#"["127.0.0.1/32"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let port = target.addr.port();
    let body = probe_ok(
        &exporter,
        &format!("target=127.0.0.1:{port}&module=tutorial"),
    );
    assert_eq!(app_part(&body), TUTORIAL_TEXT, "{body}");
    assert_eq!(value(&body, "status_exporter_probe_success"), Some(1.0));
    assert_eq!(value(&body, "status_exporter_probe_age_seconds"), Some(0.0));
    assert_eq!(reason(&body), None, "{body}");
    // The only module may be left out; a URL's path replaces the module's.
    let body = probe_ok(&exporter, &format!("target=127.0.0.1:{port}"));
    assert_eq!(value(&body, "status_exporter_probe_success"), Some(1.0));
    let url = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fother%3Fx%3D1");
    probe_ok(&exporter, &format!("target={url}"));
    let paths: Vec<String> = target.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths[paths.len() - 3..],
        ["/status", "/status", "/other?x=1"]
    );
    // Negotiated like /metrics: OpenMetrics ends with # EOF after the age.
    let om = get(
        exporter.addr,
        "GET",
        &format!("/probe?target=127.0.0.1:{port}"),
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert!(om.headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(
        om.body
            .ends_with("status_exporter_probe_age_seconds 0\n# EOF\n"),
        "{}",
        om.body
    );
    // --check-config: one line per module.
    let output = run(&mut command(
        &["--check-config"],
        &[("CONFIG_FILE", &file.display().to_string())],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = format!(
        "  module tutorial: mapping {} (4 metrics), path /status, allow 1 entries, timeout 10s, at most 8388608 bytes\n",
        tutorial()
    );
    assert!(stdout.contains(&line), "{stdout}");
}

#[test]
fn probe_is_off_without_modules_and_behind_basic_auth_with_them() {
    let exporter = Exporter::start(&[], &[]);
    assert_eq!(probe(&exporter, "target=127.0.0.1:1").status, 404);
    let file = config(
        "probe-auth",
        &format!(r#"{{"m": {}}}"#, module(r#"["127.0.0.1"]"#, "")),
        "",
    );
    // prometheus:s3cret, in plain text.
    let users = file.with_file_name("users");
    write_atomically(&users, "prometheus:s3cret\n");
    let users = users.display().to_string();
    let exporter = start(&file, &[("WEB_BASIC_AUTH_FILE", &users)]);
    assert_eq!(probe(&exporter, "target=127.0.0.1:1").status, 401);
    let authorized = get(
        exporter.addr,
        "GET",
        "/probe?target=127.0.0.1:1",
        &[("Authorization", "Basic cHJvbWV0aGV1czpzM2NyZXQ=")],
    );
    assert_eq!(authorized.status, 200, "{authorized:?}");
}

#[test]
fn modules_reload_with_the_mapping_file_and_a_bad_version_keeps_the_last() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-reload",
        &format!(r#"{{"a": {}}}"#, module(r#"["127.0.0.1"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let query = |m: &str| format!("target={}&module={m}", target.addr);
    assert_eq!(probe(&exporter, &query("a")).status, 200);
    assert_eq!(probe(&exporter, &query("b")).status, 400);
    write_atomically(
        &file,
        format!(
            r#"{{"modules": {{"b": {}}}}}"#,
            module(r#"["127.0.0.1"]"#, "")
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(&exporter, &query("b")).status != 200 {
        if Instant::now() > deadline {
            exporter.fail("module b never loaded");
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(probe(&exporter, &query("a")).status, 400);
    // A broken version: one line naming the module and the field; module b stays.
    write_atomically(
        &file,
        format!(r#"{{"modules": {{"c": {}}}}}"#, module(r#"["no pe"]"#, "")),
    );
    let line = exporter.wait_for_log("mapping not reloaded", Duration::from_secs(10));
    assert!(
        line.contains(r#"module "c": "allow": "no pe" is not a host name"#),
        "{line}"
    );
    assert_eq!(probe(&exporter, &query("b")).status, 200);
}

#[test]
fn an_invalid_module_is_one_line_and_exit_2() {
    let dir = temp_dir("probe-invalid");
    let check = |modules: &str, extra: &str, expected: &str| {
        let file = dir.join("config.json");
        write_atomically(&file, format!(r#"{{"modules": {modules}{extra}}}"#));
        let output = run(&mut command(
            &["--check-config"],
            &[("CONFIG_FILE", &file.display().to_string())],
        ));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{modules}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{modules}: {stderr}");
    };
    let m = tutorial();
    check(
        "{}",
        "",
        r#""modules" must be an object of modules by name"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}"}}}}"#),
        "",
        r#"module "m": "allow" must be a list"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": []}}}}"#),
        "",
        r#"module "m": "allow": is empty"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": ["10.0.0.0/33"]}}}}"#),
        "",
        r#""10.0.0.0/33" is not a host name, host:port, IP address or CIDR range"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": ["a"], "timeout": 1}}}}"#),
        "",
        r#"module "m": unknown field "timeout""#,
    );
    check(
        r#"{"m": {"mapping": "nowhere.json", "allow": ["a"]}}"#,
        "",
        r#"module "m": "mapping": cannot read"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": ["a"], "headers": {{"Host": "x"}}}}}}"#),
        "",
        r#""headers": "Host" is set by the exporter"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": ["a"], "bearer_token_file": "none"}}}}"#),
        "",
        r#"module "m": credentials:"#,
    );
    check(
        &format!(r#"{{"m": {{"mapping": "{m}", "allow": ["a"], "min_interval_seconds": -1}}}}"#),
        "",
        r#""min_interval_seconds" must be a number from 0 to 86400"#,
    );
    check(
        &format!(r#"{{"m": {}}}"#, module(r#"["a"]"#, "")),
        r#", "probe": {"max_in_flight": 0}"#,
        r#""probe" must be {"max_in_flight": N}"#,
    );
}

#[test]
fn bad_parameters_are_400_naming_them() {
    let both = format!(
        r#"{{"a": {}, "b": {}}}"#,
        module(r#"["127.0.0.1"]"#, ""),
        module(r#"["127.0.0.1"]"#, "")
    );
    let exporter = start(&config("probe-400", &both, ""), &[]);
    let check = |query: &str, headers: &[(&str, &str)], expected: &str| {
        let response = get(exporter.addr, "GET", &format!("/probe?{query}"), headers);
        assert_eq!(response.status, 400, "{query}: {response:?}");
        assert!(
            response.body.contains(expected),
            "{query}: {}",
            response.body
        );
    };
    check("module=a", &[], r#"parameter "target" is missing"#);
    check("target=&module=a", &[], r#"parameter "target" is missing"#);
    check(
        "target=127.0.0.1:1",
        &[],
        r#"parameter "module" is missing: name one of the modules (a, b)"#,
    );
    check(
        "target=127.0.0.1:1&module=c",
        &[],
        r#"parameter "module": no module "c"; the modules are: a, b"#,
    );
    check(
        "target=127.0.0.1:1&module=a&x=1",
        &[],
        r#"unknown parameter "x""#,
    );
    check(
        "target=127.0.0.1:1&target=127.0.0.1:2&module=a",
        &[],
        r#"parameter "target" is given twice"#,
    );
    check(
        "target=127.0.0.1:1/x&module=a",
        &[],
        r#"parameter "target": "127.0.0.1:1/x" is not host"#,
    );
    check(
        "target=127.0.0.1:99999&module=a",
        &[],
        r#"parameter "target""#,
    );
    check(
        "target=ftp%3A%2F%2Fh&module=a",
        &[],
        r#"parameter "target""#,
    );
    check(
        "target=%ZZ&module=a",
        &[],
        r#"parameter "target" is not percent-encoded UTF-8"#,
    );
    for bad in ["0", "-1", "abc", "NaN", "inf"] {
        check(
            "target=127.0.0.1:1&module=a",
            &[("X-Prometheus-Scrape-Timeout-Seconds", bad)],
            "header X-Prometheus-Scrape-Timeout-Seconds",
        );
    }
}

#[test]
fn a_name_allowed_does_not_allow_loopback_addresses() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-loopback",
        &format!(r#"{{"m": {}}}"#, module(r#"["localhost"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let query = format!("target=localhost:{}", target.addr.port());
    for _ in 0..2 {
        let response = probe(&exporter, &query);
        assert_eq!(response.status, 403, "{response:?}");
        assert!(response.body.contains("resolves to"), "{}", response.body);
    }
    // An IP address is not a name: 127.0.0.1 is refused before any lookup.
    let response = probe(&exporter, &format!("target={}", target.addr));
    assert_eq!(response.status, 403, "{response:?}");
    assert!(
        response.body.contains("not in its allow list"),
        "{}",
        response.body
    );
    assert!(target.seen().is_empty(), "the refused target was contacted");
    // Logged once per target; counted every time.
    assert_eq!(
        exporter.log_lines("probe: target").len(),
        2,
        "{:?}",
        exporter.stderr()
    );
    assert_eq!(counter(&exporter, "m", "refused"), 3.0);
}

/// A refused target is logged and answered as logs print URLs: a secret in its query hidden.
#[test]
fn a_refused_target_keeps_its_secrets() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-refused-secret",
        &format!(r#"{{"m": {}}}"#, module(r#"["10.0.0.0/8"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let query = format!(
        "target=http%3A%2F%2F127.0.0.1%3A{}%2Fstatus%3Ftoken%3Ds3cret",
        target.addr.port()
    );
    let response = probe(&exporter, &query);
    assert_eq!(response.status, 403, "{response:?}");
    assert!(response.body.contains("token=***"), "{}", response.body);
    let line = exporter.wait_for_log("probe: target", std::time::Duration::from_secs(10));
    assert!(line.contains("token=***"), "{line}");
    assert!(!response.body.contains("s3cret") && !line.contains("s3cret"));
    assert!(target.seen().is_empty(), "the refused target was contacted");
}

#[test]
fn a_range_allows_its_addresses_and_a_port_entry_its_port_only() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let port = target.addr.port();
    let allow = format!(
        r#"["10.0.0.0/8", "127.0.0.0/8", "::1/128", "192.0.2.1:{port}", "localhost:{port}"]"#
    );
    let narrow = r#"["10.0.0.0/8", "127.0.0.1:1"]"#;
    let file = config(
        "probe-range",
        &format!(
            r#"{{"wide": {}, "narrow": {}}}"#,
            module(&allow, ""),
            module(narrow, "")
        ),
        "",
    );
    let exporter = start(&file, &[]);
    let body = probe_ok(&exporter, &format!("target=127.0.0.1:{port}&module=wide"));
    assert_eq!(value(&body, "status_exporter_probe_success"), Some(1.0));
    // localhost: allowed by name on this port, and its addresses by the ranges.
    let body = probe_ok(&exporter, &format!("target=localhost:{port}&module=wide"));
    assert_eq!(
        value(&body, "status_exporter_probe_success"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        probe(
            &exporter,
            &format!("target=localhost:{}&module=wide", port ^ 1)
        )
        .status,
        403
    );
    assert_eq!(
        probe(&exporter, &format!("target=127.0.0.1:{port}&module=narrow")).status,
        403
    );
    assert_eq!(
        probe(&exporter, "target=11.0.0.1&module=narrow").status,
        403
    );
}

#[test]
fn credentials_and_headers_go_only_to_allowed_targets() {
    let allowed = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let other = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let dir = temp_dir("probe-credentials-token");
    let token = dir.join("token");
    write_atomically(&token, "s3cret\n");
    let more = format!(
        r#", "headers": {{"X-Api-Key": "k1"}}, "bearer_token_file": "{}""#,
        token.display()
    );
    let file = config(
        "probe-credentials",
        &format!(
            r#"{{"m": {}}}"#,
            module(&format!(r#"["127.0.0.1:{}"]"#, allowed.addr.port()), &more)
        ),
        "",
    );
    let exporter = start(&file, &[]);
    probe_ok(&exporter, &format!("target={}", allowed.addr));
    assert_eq!(
        probe(&exporter, &format!("target={}", other.addr)).status,
        403
    );
    let seen = allowed.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], "Bearer s3cret");
    assert_eq!(seen[0].headers["x-api-key"], "k1");
    assert!(other.seen().is_empty(), "the other target got a request");
    // Rotated: the new token goes with the next probe.
    write_atomically(&token, "n3w\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        probe_ok(&exporter, &format!("target={}", allowed.addr));
        if allowed.seen().last().unwrap().headers["authorization"] == "Bearer n3w" {
            break;
        }
        assert!(Instant::now() < deadline, "the new token was never sent");
        thread::sleep(Duration::from_millis(200));
    }
    assert!(!exporter.stderr().join("\n").contains("s3cret"));
}

#[test]
fn a_failed_target_is_200_with_success_0_and_the_reason() {
    let target = Target::start(Reply::Status(500, "text/plain", "oops".into()));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let file = config(
        "probe-failed",
        &format!(r#"{{"m": {}}}"#, module(r#"["127.0.0.1"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let body = probe_ok(&exporter, &format!("target={}", target.addr));
    assert_eq!(
        app_part(&body),
        "",
        "no metrics of the module after a failure"
    );
    assert_eq!(value(&body, "status_exporter_probe_success"), Some(0.0));
    assert_eq!(reason(&body).as_deref(), Some("http_status"));
    let body = probe_ok(&exporter, &format!("target={closed}"));
    assert_eq!(reason(&body).as_deref(), Some("connect"));
    target.set(Reply::Json("not json".into()));
    let body = probe_ok(&exporter, &format!("target={}", target.addr));
    assert_eq!(reason(&body).as_deref(), Some("invalid_json"));
    assert_eq!(counter(&exporter, "m", "failure"), 3.0);
    assert_eq!(counter(&exporter, "m", "success"), 0.0);
}

/// Probes `query` on a thread of its own.
fn probe_in_background(exporter: &Exporter, query: &str) -> thread::JoinHandle<Response> {
    let (addr, path) = (exporter.addr, format!("/probe?{query}"));
    thread::spawn(move || get(addr, "GET", &path, &[]))
}

/// Waits (at most 10 s) until `target` has received `count` requests.
fn wait_seen(target: &Target, count: usize) {
    let seen = || match target.seen().len() {
        n if n >= count => Ok(()),
        n => Err(format!("{n} requests")),
    };
    wait_within(
        Duration::from_secs(10),
        &format!("request {count} at the target"),
        seen,
        String::new,
    );
}

#[test]
fn concurrent_probes_of_a_target_share_one_fetch() {
    let target = Target::start(Reply::Slow(
        Duration::from_millis(1500),
        TUTORIAL_DOC.into(),
    ));
    let file = config(
        "probe-single-flight",
        &format!(r#"{{"m": {}}}"#, module(r#"["127.0.0.1"]"#, "")),
        "",
    );
    let exporter = start(&file, &[]);
    let query = format!("target={}", target.addr);
    let first = probe_in_background(&exporter, &query);
    wait_seen(&target, 1);
    // The fetch is at the target: a second probe joins it.
    let second = probe(&exporter, &query);
    let first = first.join().unwrap();
    for response in [&first, &second] {
        assert_eq!(response.status, 200);
        assert_eq!(
            value(&response.body, "status_exporter_probe_success"),
            Some(1.0)
        );
    }
    assert_eq!(
        target.seen().len(),
        1,
        "two fetches for two concurrent probes"
    );
    assert_eq!(
        value(&first.body, "status_exporter_probe_age_seconds"),
        Some(0.0)
    );
    let age = value(&second.body, "status_exporter_probe_age_seconds").unwrap();
    assert!(age > 0.0, "{}", second.body);
    assert_eq!(counter(&exporter, "m", "success"), 1.0);
    assert_eq!(counter(&exporter, "m", "cached"), 1.0);
    // Without a min interval, the next probe fetches again.
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    probe_ok(&exporter, &query);
    assert_eq!(target.seen().len(), 2);
}

#[test]
fn min_interval_serves_the_last_result_with_its_age() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-min-interval",
        &format!(
            r#"{{"m": {}}}"#,
            module(r#"["127.0.0.1"]"#, r#", "min_interval_seconds": 3600"#)
        ),
        "",
    );
    let exporter = start(&file, &[]);
    let query = format!("target={}", target.addr);
    let first = probe_ok(&exporter, &query);
    thread::sleep(Duration::from_millis(50));
    let second = probe_ok(&exporter, &query);
    assert_eq!(target.seen().len(), 1, "the second probe fetched");
    assert_eq!(app_part(&first), app_part(&second));
    assert_eq!(
        value(&first, "status_exporter_probe_age_seconds"),
        Some(0.0)
    );
    let age = value(&second, "status_exporter_probe_age_seconds").unwrap();
    assert!(age >= 0.05, "{second}");
    assert_eq!(counter(&exporter, "m", "cached"), 1.0);
}

#[test]
fn the_scrape_timeout_header_bounds_the_probe() {
    let target = Target::start(Reply::Hang);
    let file = config(
        "probe-deadline",
        &format!(
            r#"{{"m": {}}}"#,
            module(r#"["127.0.0.1"]"#, r#", "timeout_seconds": 60"#)
        ),
        "",
    );
    let exporter = start(&file, &[]);
    let started = Instant::now();
    let response = get(
        exporter.addr,
        "GET",
        &format!("/probe?target={}", target.addr),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "5")],
    );
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    assert_eq!(
        reason(&response.body).as_deref(),
        Some("timeout"),
        "{}",
        response.body
    );
    // The deadline is 5 s - 0.5 s: not before it, and far from the module's own 60 s (within
    // twice the header's 5 s, room for a loaded machine).
    assert!(took >= Duration::from_millis(4500), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn fetches_in_flight_are_capped() {
    let slow = Target::start(Reply::Hang);
    let other = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let file = config(
        "probe-cap",
        &format!(
            r#"{{"m": {}}}"#,
            module(r#"["127.0.0.1"]"#, r#", "timeout_seconds": 5"#)
        ),
        r#", "probe": {"max_in_flight": 1}"#,
    );
    let exporter = start(&file, &[]);
    let hanging = probe_in_background(&exporter, &format!("target={}", slow.addr));
    wait_seen(&slow, 1);
    assert_eq!(
        value(
            &exporter.scrape(),
            "status_exporter_probe_fetches_in_flight"
        ),
        Some(1.0)
    );
    let body = probe_ok(&exporter, &format!("target={}", other.addr));
    assert_eq!(reason(&body).as_deref(), Some("busy"), "{body}");
    assert!(other.seen().is_empty(), "fetched over the cap");
    let hanging = hanging.join().unwrap();
    assert_eq!(reason(&hanging.body).as_deref(), Some("timeout"));
    // The slot is free again.
    let body = probe_ok(&exporter, &format!("target={}", other.addr));
    assert_eq!(value(&body, "status_exporter_probe_success"), Some(1.0));
    assert_eq!(
        value(
            &exporter.scrape(),
            "status_exporter_probe_fetches_in_flight"
        ),
        Some(0.0)
    );
    assert_eq!(counter(&exporter, "m", "failure"), 2.0);
}

#[test]
fn a_file_of_modules_alone_polls_nothing() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    // The module's mapping written in the file itself.
    let inline = r#"{"m": {"mapping": {"metrics": [{"name": "current", "help": "h", "path": "/current_requests"}]}, "path": "/status", "allow": ["127.0.0.1"]}}"#;
    let file = config("probe-alone", inline, "");
    let exporter = start(&file, &[("TARGET_URL", &target.url("/status"))]);
    exporter.wait_ready(Duration::from_secs(10));
    let body = exporter.scrape();
    assert_eq!(
        value(&body, "status_exporter_polls_total"),
        Some(0.0),
        "{body}"
    );
    let probed = probe_ok(&exporter, &format!("target={}", target.addr));
    assert!(app_part(&probed).ends_with("\ncurrent 4\n"), "{probed}");
    thread::sleep(Duration::from_millis(500)); // two intervals of the poller
    assert_eq!(target.seen().len(), 1, "the target was polled");
    assert!(
        exporter.log_lines("poll of").is_empty(),
        "{:?}",
        exporter.stderr()
    );
}

/// Issue 13's memory budget: 64 probes at once, each of a 1 MiB document, keep the resident
/// memory within 8 MiB plus the documents in flight.
#[test]
fn sixty_four_probes_of_1_mib_documents_stay_within_the_budget() {
    const PROBES: usize = 64;
    let pad = "x".repeat(1 << 20);
    let document = TUTORIAL_DOC.replacen('{', &format!(r#"{{"pad": "{pad}","#), 1);
    let target = Target::start(Reply::Slow(Duration::from_millis(500), document));
    let file = config(
        "probe-memory",
        &format!(
            r#"{{"m": {}}}"#,
            module(r#"["127.0.0.1"]"#, r#", "timeout_seconds": 30"#)
        ),
        &format!(r#", "probe": {{"max_in_flight": {PROBES}}}"#),
    );
    let exporter = start(&file, &[]);
    // A different query each, so that no two probes share a fetch.
    let probes: Vec<_> = (0..PROBES)
        .map(|i| {
            let url = format!("http%3A%2F%2F{}%2Fstatus%3Fn%3D{i}", target.addr);
            probe_in_background(&exporter, &format!("target={url}"))
        })
        .collect();
    for probe in probes {
        let response = probe.join().unwrap();
        assert_eq!(
            value(&response.body, "status_exporter_probe_success"),
            Some(1.0)
        );
    }
    assert_eq!(target.seen().len(), PROBES);
    let peak = exporter.peak_rss_kib();
    let budget = 8 * 1024 + PROBES as u64 * 1024;
    println!("peak RSS {peak} KiB for {PROBES} probes of 1 MiB documents (budget {budget} KiB)");
    assert!(peak < budget, "peak RSS {peak} KiB, budget {budget} KiB");
    assert_eq!(counter(&exporter, "m", "success"), PROBES as f64);
}
