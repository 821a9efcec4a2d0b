//! Real-world targets through the real binary: request headers, credentials from files and
//! their rotation, secrets kept out of every output, redirects that must not carry credentials
//! to another host, the back-off seen in the target's request log, and the error for an
//! https:// target in a build without HTTPS (HTTPS itself is tested in `tests/external/tls.rs`:
//! it needs the openssl CLI).

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{
    app_part, command, temp_dir, value, write_atomically, Exporter, Reply, Seen, Target,
    TUTORIAL_DOC, TUTORIAL_TEXT,
};

const AGENT: &str = concat!("status-exporter/", env!("CARGO_PKG_VERSION"));

/// Waits (scraping the exporter meanwhile, at most 10 s) until the target has seen a request
/// for which `check` holds, and returns it.
fn wait_for_request(
    exporter: &Exporter,
    target: &Target,
    what: &str,
    check: impl Fn(&Seen) -> bool,
) -> Seen {
    exporter.wait_for(what, |_| target.seen().iter().any(&check));
    target.seen().into_iter().find(check).unwrap()
}

fn authorization(seen: &Seen) -> Option<&str> {
    seen.headers.get("authorization").map(String::as_str)
}

#[test]
fn configured_headers_reach_the_target() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let url = target.url("/status");
    // Flags, repeated; the variable is ignored when a flag is given.
    let exporter = Exporter::start(
        &[
            "--target-url",
            &url,
            "--target-header",
            "X-Api-Key: key-1",
            "--target-header=accept: application/vnd.app+json; q=1",
        ],
        &[("TARGET_HEADERS", "X-Ignored: yes")],
    );
    exporter.wait_for_line("status_exporter_up 1");
    let seen = &target.seen()[0];
    assert_eq!(seen.headers["x-api-key"], "key-1");
    assert_eq!(seen.headers["accept"], "application/vnd.app+json; q=1");
    assert_eq!(seen.headers["user-agent"], AGENT);
    assert!(!seen.headers.contains_key("x-ignored"), "{seen:?}");
    assert!(!seen.headers.contains_key("authorization"), "{seen:?}");
    drop(exporter);

    // The variable: one header per line; the defaults stay where not replaced.
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &target.url("/status")),
            ("TARGET_HEADERS", "X-Tenant: blue\r\nUser-Agent: probe/2\n"),
        ],
    );
    exporter.wait_for_line("status_exporter_up 1");
    let seen = &target.seen()[0];
    assert_eq!(seen.headers["x-tenant"], "blue");
    assert_eq!(seen.headers["user-agent"], "probe/2");
    assert_eq!(seen.headers["accept"], "application/json");
    let startup = exporter.log_lines("listening on");
    assert!(
        startup[0].contains("headers: X-Tenant, User-Agent (values not shown)"),
        "{startup:?}"
    );
}

#[test]
fn bearer_token_rotates_without_restart() {
    let dir = temp_dir("bearer_token_rotates_without_restart");
    let token = dir.join("token");
    fs::write(&token, "first-token\n").unwrap();
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &["--target-url", &target.url("/status")],
        &[("TARGET_BEARER_TOKEN_FILE", token.to_str().unwrap())],
    );
    exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(authorization(&target.seen()[0]), Some("Bearer first-token"));

    // Rotation: a new token, of another length.
    write_atomically(&token, "second-token-rotated\n");
    wait_for_request(&exporter, &target, "the rotated token", |s| {
        authorization(s) == Some("Bearer second-token-rotated")
    });
    assert_eq!(exporter.log_lines("credentials reloaded from").len(), 1);

    // Rotation by renaming a new file over the old one, as secret stores do.
    let next = dir.join("token.new");
    fs::write(&next, "third-token\n").unwrap();
    fs::rename(&next, &token).unwrap();
    wait_for_request(&exporter, &target, "the renamed token", |s| {
        authorization(s) == Some("Bearer third-token")
    });

    // The file goes away: the last good token stays in use, logged once, and the gauge says so.
    fs::remove_file(&token).unwrap();
    exporter.wait_for_line("status_exporter_credentials_last_reload_successful 0");
    let before = target.seen().len();
    exporter.wait_polls(3);
    assert!(target.seen()[before..]
        .iter()
        .all(|s| authorization(s) == Some("Bearer third-token")));
    let warnings = exporter.log_lines("cannot read it");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("the previous credentials stay in use"),
        "{warnings:?}"
    );
    assert_eq!(
        exporter.value("status_exporter_up"),
        Some(1.0),
        "the target still accepts the last good token"
    );
    // An empty file is not used either, and is reported with its own error.
    write_atomically(&token, "");
    let empty = "is empty; write the token into it; the previous credentials stay in use";
    exporter.wait_for(empty, |_| exporter.log_lines(empty).len() == 1);
    assert_eq!(
        exporter.value("status_exporter_credentials_last_reload_successful"),
        Some(0.0)
    );
    write_atomically(&token, "fourth-token");
    exporter.wait_for_line("status_exporter_credentials_last_reload_successful 1");
    wait_for_request(&exporter, &target, "the restored token", |s| {
        authorization(s) == Some("Bearer fourth-token")
    });
    assert_eq!(exporter.log_lines("cannot read it").len(), 1);
}

#[test]
fn basic_auth_from_a_password_file() {
    let dir = temp_dir("basic_auth_from_a_password_file");
    let password = dir.join("password");
    fs::write(&password, "open sesame\n").unwrap();
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--target-basic-auth-user",
            "Aladdin",
            "--target-basic-auth-password-file",
            password.to_str().unwrap(),
        ],
        &[],
    );
    exporter.wait_for_line("status_exporter_up 1");
    // RFC 7617's own example.
    assert_eq!(
        authorization(&target.seen()[0]),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
    write_atomically(&password, "new password");
    // base64("Aladdin:new password")
    wait_for_request(&exporter, &target, "the new password", |s| {
        authorization(s) == Some("Basic QWxhZGRpbjpuZXcgcGFzc3dvcmQ=")
    });
}

/// No secret appears in the start-up line, the poll log, `--check-config`, or an error about
/// a malformed header.
#[test]
fn secrets_stay_out_of_every_output() {
    let dir = temp_dir("secrets_stay_out_of_every_output");
    let token = dir.join("token");
    fs::write(&token, "TOKEN-s3cr3t\n").unwrap();
    let token = token.to_str().unwrap();
    let secrets = ["TOKEN-s3cr3t", "KEY-s3cr3t", "TOKEN-r0tated"];
    let assert_clean = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    };

    let output = command(
        &["--check-config", "--target-header", "X-Api-Key: KEY-s3cr3t"],
        &[("TARGET_BEARER_TOKEN_FILE", token)],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let summary = String::from_utf8(output.stdout).unwrap();
    assert_clean("--check-config", &summary);
    assert!(
        summary.contains(&format!(
            "  credentials:   bearer token from {token} (redacted)\n"
        )),
        "{summary}"
    );
    assert!(
        summary.contains("  headers:       X-Api-Key (values not shown)\n"),
        "{summary}"
    );

    // The target refuses, the token rotates, the file breaks: every line is logged, no secret.
    let target = Target::start(Reply::Status(401, "text/plain", "who are you".into()));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--target-header",
            "X-Api-Key: KEY-s3cr3t",
        ],
        &[("TARGET_BEARER_TOKEN_FILE", token)],
    );
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"http_status\"}",
        1.0,
    );
    write_atomically(Path::new(token), "TOKEN-r0tated");
    wait_for_request(&exporter, &target, "the rotated token", |s| {
        authorization(s) == Some("Bearer TOKEN-r0tated")
    });
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    exporter.wait_for_line("status_exporter_up 1");
    write_atomically(Path::new(token), "two words\n");
    exporter.wait_for_line("status_exporter_credentials_last_reload_successful 0");
    let stderr = exporter.stderr().join("\n");
    assert_clean("the log", &stderr);
    assert!(stderr.contains("(redacted)"), "{stderr}");
    assert_clean("a scrape", &exporter.scrape());

    // Bad settings name the header, never its value.
    for (args, env) in [
        (vec!["--target-header", "X-Api-Key KEY-s3cr3t"], vec![]),
        (
            vec!["--target-header", "X-Api-Key: KEY-s3cr3t\u{7}"],
            vec![],
        ),
        (vec![], vec![("TARGET_HEADERS", "X-A: 1\nKEY-s3cr3t")]),
        (
            vec!["--target-header", "Authorization: Bearer TOKEN-s3cr3t"],
            vec![("TARGET_BEARER_TOKEN_FILE", token)],
        ),
    ] {
        let output = command(&args, &env).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_clean("an error", &stderr);
    }
}

/// A redirect to another host (or another port, or another name for the same address) is not
/// followed, so neither the credentials nor the headers reach it; within the target's own
/// host they follow the redirect.
#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let dir = temp_dir("credentials_never_follow_a_redirect_to_another_host");
    let token = dir.join("token");
    fs::write(&token, "redirect-token\n").unwrap();
    let other = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let redirect = |location: &str| {
        Reply::Raw(
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes(),
        )
    };
    target.set(redirect(&other.url("/status")));
    let exporter = Exporter::start(
        &[
            "--target-url",
            &target.url("/status"),
            "--target-header",
            "X-Api-Key: redirect-key",
        ],
        &[("TARGET_BEARER_TOKEN_FILE", token.to_str().unwrap())],
    );
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"redirect\"}",
        2.0,
    );
    let first = &target.seen()[0];
    assert_eq!(authorization(first), Some("Bearer redirect-token"));
    assert_eq!(first.headers["x-api-key"], "redirect-key");
    assert!(other.seen().is_empty(), "{:?}", other.seen());
    let failing = exporter.log_lines("failing");
    assert!(
        failing[0].contains("redirect not followed: to another host"),
        "{failing:?}"
    );

    // The same port under another name is another host too.
    let by_name = format!("http://localhost:{}/status", target.addr.port());
    target.set(redirect(&by_name));
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"redirect\"}",
        4.0,
    );
    assert!(target.seen().iter().all(|s| s.path == "/status"));

    // Within the host, the redirect is followed with the credentials.
    target.set(redirect(&target.url("/moved")));
    let moved = wait_for_request(&exporter, &target, "the redirect followed", |s| {
        s.path == "/moved"
    });
    assert_eq!(authorization(&moved), Some("Bearer redirect-token"));
    assert_eq!(moved.headers["x-api-key"], "redirect-key");
    assert!(other.seen().is_empty());
}

/// After 3 failed polls in a row the time between polls doubles, then doubles again and stays
/// at 4 intervals; a success brings the interval back. `up` is 0 throughout the outage.
///
/// The exact delays are the unit test of `poll_delay`; here the exporter reports the delay it
/// uses after each poll (`status_exporter_poll_interval_seconds`, checked against the number of
/// polls in the same scrape), and the target's request times are held to bounds that only a
/// wrong schedule can break: a sleep ends late, never early, so request k comes at least its
/// scheduled time after the first, less what the first request spent on its way (bounded by one
/// interval); and without the cap on the back-off the 7th request would come 6.4 s after the
/// first, not 3.2 s.
#[test]
fn back_off_after_repeated_failures() {
    let target = Target::start(Reply::Status(503, "text/plain", "overloaded".into()));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    // The delay after the nth failed poll in a row (interval 0.2 s), and the time request k is
    // scheduled after the first.
    let delay = |failed: f64| {
        if failed < 3.0 {
            0.2
        } else {
            0.2 * 2f64.powf((failed - 2.0).min(2.0))
        }
    };
    let scheduled = [0.0, 0.2, 0.4, 0.8, 1.6, 2.4, 3.2];
    exporter.wait_for("7 requests", |body| {
        assert_eq!(value(body, "status_exporter_up"), Some(0.0), "{body}");
        let polls = value(body, "status_exporter_polls_total").unwrap();
        let interval = value(body, "status_exporter_poll_interval_seconds").unwrap();
        if polls > 0.0 {
            assert!(
                (interval - delay(polls)).abs() < 1e-9,
                "after {polls} failed polls the delay is {interval}, not {}",
                delay(polls)
            );
        }
        target.seen().len() >= scheduled.len()
    });
    let seen = target.seen();
    let times: Vec<f64> = seen
        .iter()
        .map(|s| s.at.duration_since(seen[0].at).as_secs_f64())
        .collect();
    for (k, at) in scheduled.iter().enumerate() {
        assert!(
            times[k] >= at - 0.2,
            "request {k} at {:.3}s, scheduled {at}s after the first: {times:.3?}",
            times[k]
        );
    }
    assert!(
        times[6] < 6.4 - 0.2,
        "the back-off is not capped at 4 intervals: {times:.3?}"
    );
    let lines = exporter.log_lines("failed in a row");
    assert_eq!(lines.len(), 1, "{:?}", exporter.stderr());
    assert!(
        lines[0].contains("3 polls of") && lines[0].contains("up to every 800ms"),
        "{lines:?}"
    );

    // Recovery: the interval is the configured one again.
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
    assert_eq!(
        value(&body, "status_exporter_poll_interval_seconds"),
        Some(0.2)
    );
    // And the polls come at that rate: 10 more take about 2 s, far less than the 8 s they
    // would take at the backed-off rate.
    let recovered = target.seen().len();
    exporter.wait_for("10 more requests", |_| {
        target.seen().len() >= recovered + 10
    });
    let seen = target.seen();
    let took = seen[recovered + 9]
        .at
        .duration_since(seen[recovered - 1].at)
        .as_secs_f64();
    assert!(took < 6.0, "10 polls took {took:.3}s after recovery");
}

#[test]
fn new_settings_are_in_help() {
    let output = command(&["--help"], &[]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for (flag, variable) in [
        ("--target-header", "TARGET_HEADERS"),
        ("--target-bearer-token-file", "TARGET_BEARER_TOKEN_FILE"),
        ("--target-basic-auth-user", "TARGET_BASIC_AUTH_USER"),
        (
            "--target-basic-auth-password-file",
            "TARGET_BASIC_AUTH_PASSWORD_FILE",
        ),
        ("--target-ca-file", "TARGET_CA_FILE"),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} not in --help"));
        assert!(line.contains(variable), "{line}");
    }
}

#[cfg(not(feature = "https"))]
#[test]
fn https_needs_the_https_feature() {
    for (args, expected) in [
        (
            ["--target-url", "https://127.0.0.1/status"],
            r#"error: --target-url: "https://127.0.0.1/status" is an https:// URL, and this build has no HTTPS support; build with --features https"#,
        ),
        (
            ["--target-ca-file", "/etc/hostname"],
            "error: --target-ca-file: this build has no HTTPS support; build with --features https",
        ),
    ] {
        let output = command(&args, &[]).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), expected);
    }
    // The reason exists in every build, so that dashboards see the same series.
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(&["--target-url", &target.url("/status")], &[]);
    exporter.wait_for_line("status_exporter_poll_failures_total{reason=\"tls\"} 0");
}

/// Query parameters named like a secret (the Tasmota notes put the password there) reach the
/// target and no output: the start-up line, the log, `--check-config`, a redirect's message.
/// A URL with `user:password@` is refused without printing the password, with the settings to
/// use instead.
#[test]
fn secrets_in_the_url_are_hidden() {
    let target = Target::start(Reply::Status(500, "text/plain", "boom".into()));
    let url = target.url("/cm?user=admin&password=PW-s3cr3t&cmnd=Status");
    let shown = url.replace("PW-s3cr3t", "***");
    let exporter = Exporter::start(&["--target-url", &url], &[]);
    exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"http_status\"}",
        1.0,
    );
    assert_eq!(
        target.seen()[0].path,
        "/cm?user=admin&password=PW-s3cr3t&cmnd=Status"
    );
    let startup = exporter.log_lines("listening on");
    assert!(
        startup[0].contains(&format!("polling {shown} ")),
        "{startup:?}"
    );
    let failing = exporter.log_lines("failing");
    assert!(
        failing[0].contains(&format!("poll of {shown} failing")),
        "{failing:?}"
    );
    target.set(Reply::Raw(
        b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/?api_key=KEY-s3cr3t\r\n\r\n".to_vec(),
    ));
    let line = exporter.wait_for_log("now: redirect", Duration::from_secs(10));
    assert!(
        line.ends_with("to another host (http://elsewhere/?api_key=***)"),
        "{line}"
    );
    let stderr = exporter.stderr().join("\n");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");

    let output = command(&["--check-config", "--target-url", &url], &[])
        .output()
        .unwrap();
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(
        summary.contains(&format!("  target:        {shown}\n")),
        "{summary}"
    );
    assert!(!summary.contains("s3cr3t"), "{summary}");

    for url in [
        "http://admin:PW-s3cr3t@app:8000/status",
        "https://admin:PW/s3cr3t@app/status",
    ] {
        let output = command(&[], &[("TARGET_URL", url)])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
        let expected = if url.starts_with("https") && !cfg!(feature = "https") {
            r#"error: TARGET_URL: "https://admin:***@app/status" is an https:// URL, and this build has no HTTPS support; build with --features https"#
        } else {
            "error: TARGET_URL: the URL has a user name or password in it (user:password@), \
             which is not sent; give the user with --target-basic-auth-user \
             (TARGET_BASIC_AUTH_USER) and the password in the file named by \
             --target-basic-auth-password-file (TARGET_BASIC_AUTH_PASSWORD_FILE)"
        };
        assert_eq!(stderr.trim(), expected);
    }
}
