use super::*;
use crate::testing;

fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
    let args = args.iter().map(OsString::from).collect();
    parse(args, |name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
    match run(args, env) {
        Ok(Command::Serve(config)) => config,
        other => panic!("expected a config, got {other:?}"),
    }
}

/// Checks the one-line error for bad settings.
fn check_error(args: &[&str], env: &[(&str, &str)], expected: &str) {
    match run(args, env) {
        Err(e) => assert_eq!(e.to_string(), expected),
        Ok(c) => panic!("expected an error, got {c:?}"),
    }
}

#[test]
fn defaults_match_the_tutorial() {
    let c = config(&[], &[]);
    assert_eq!(c.poll.interval, Duration::from_secs(5));
    assert_eq!(c.poll.request.timeout, Duration::from_secs(4));
    assert_eq!(
        c.poll.request.target.to_string(),
        "http://localhost:8000/status"
    );
    assert_eq!(c.serve.port, 9877);
    assert_eq!(c.serve.listen_address, None);
    assert_eq!(c.poll.mapping, mapping::builtin());
    assert!(c.serve.openmetrics && !c.demo);
    assert_eq!(c.poll.request.max_body_bytes, 8 << 20);
}

#[test]
fn environment_and_flags() {
    let env = [
        ("POLLING_INTERVAL_SECONDS", "0.5"),
        ("EXPORTER_PORT", "9100"),
        ("TARGET_HOST", "10.0.0.7"),
        ("TARGET_PORT", "8080"),
        ("TARGET_METRICS", "api/health?full=1"),
        ("LISTEN_ADDRESS", "::1"),
        ("OPENMETRICS", "false"),
    ];
    let c = config(&[], &env);
    assert_eq!(c.poll.interval, Duration::from_millis(500));
    assert_eq!(c.poll.request.timeout, Duration::from_millis(400));
    assert_eq!(c.serve.port, 9100);
    assert_eq!(
        c.poll.request.target.to_string(),
        "http://10.0.0.7:8080/api/health?full=1"
    );
    assert_eq!(c.serve.listen_address, Some("::1".parse().unwrap()));
    assert!(!c.serve.openmetrics);
    let c = config(
        &[
            "--exporter-port",
            "9200",
            "--target-metrics=/status",
            "--polling-interval-seconds",
            "60",
        ],
        &env,
    );
    assert_eq!(
        (c.serve.port, c.poll.request.target.path.as_str()),
        (9200, "/status")
    );
    assert_eq!(
        c.poll.request.timeout,
        Duration::from_secs(10),
        "default timeout is capped at 10 s"
    );
    let c = config(
        &["--target-url", "http://[::1]:81/s"],
        &[("TARGET_HOST", "ignored"), ("EXPORTER_PORT", "")],
    );
    assert_eq!(
        (
            c.poll.request.target.host.as_str(),
            c.poll.request.target.port,
            c.poll.request.target.path.as_str(),
            c.serve.port
        ),
        ("::1", 81, "/s", 9877)
    );
    assert_eq!(c.poll.request.target.to_string(), "http://[::1]:81/s");
    let c = config(
        &["--target-timeout-seconds", "2.5"],
        &[("TARGET_URL", "http://example.org")],
    );
    assert_eq!(
        (c.poll.request.timeout, c.poll.request.target.to_string()),
        (
            Duration::from_millis(2500),
            "http://example.org:80/".to_string()
        )
    );
    assert!(
        !config(&["--no-openmetrics"], &[("OPENMETRICS", "true")])
            .serve
            .openmetrics
    );
}

#[test]
fn commands() {
    assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
    assert_eq!(
        run(&["-V"], &[("EXPORTER_PORT", "bad")]),
        Ok(Command::Version)
    );
    assert!(matches!(
        run(&["--check-config"], &[]),
        Ok(Command::CheckConfig(_))
    ));
    assert!(matches!(run(&["--render", "-"], &[]), Ok(Command::Render(_, f)) if f == "-"));
    assert!(matches!(run(&["--demo"], &[]), Ok(Command::Serve(c)) if c.demo));
}

#[test]
fn healthcheck_asks_where_the_exporter_listens() {
    let check = |args: &[&str], env: &[(&str, &str)], expected: &str| {
        let mut full = vec!["--healthcheck"];
        full.extend_from_slice(args);
        assert_eq!(
            run(&full, env),
            Ok(Command::Healthcheck(expected.parse().unwrap())),
            "{args:?} {env:?}"
        );
    };
    check(&[], &[], "127.0.0.1:9877");
    check(&[], &[("EXPORTER_PORT", "9100")], "127.0.0.1:9100");
    check(
        &["--exporter-port", "9101"],
        &[("EXPORTER_PORT", "9100")],
        "127.0.0.1:9101",
    );
    check(&[], &[("LISTEN_ADDRESS", "0.0.0.0")], "127.0.0.1:9877");
    check(&[], &[("LISTEN_ADDRESS", "::")], "[::1]:9877");
    check(&[], &[("LISTEN_ADDRESS", "[::]")], "[::1]:9877");
    check(&[], &[("LISTEN_ADDRESS", "192.0.2.7")], "192.0.2.7:9877");
    check(&[], &[("LISTEN_ADDRESS", "fd00::7")], "[fd00::7]:9877");
    // The other settings are the exporter's business, not the health check's.
    check(
        &["--demo"],
        &[("CONFIG_FILE", "/nonexistent"), ("TARGET_PORT", "x")],
        "127.0.0.1:9877",
    );
    check_error(
        &["--healthcheck"],
        &[("LISTEN_ADDRESS", "localhost")],
        "LISTEN_ADDRESS: \"localhost\" is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)",
    );
    check_error(
        &["--healthcheck", "--exporter-port", "0"],
        &[],
        "--exporter-port: \"0\" is not a port number (1-65535); --healthcheck needs the port the exporter listens on",
    );
}

#[test]
fn bad_settings_name_the_setting_and_the_fix() {
    check_error(
        &[],
        &[("EXPORTER_PORT", "abc")],
        r#"EXPORTER_PORT: "abc" is not a port number (0-65535)"#,
    );
    check_error(
        &["--exporter-port", "70000"],
        &[],
        r#"--exporter-port: "70000" is not a port number (0-65535)"#,
    );
    check_error(
        &[],
        &[("TARGET_PORT", "0")],
        r#"TARGET_PORT: "0" is not a port number (1-65535)"#,
    );
    let interval = "is not a number of seconds between 0.1 and 86400 (e.g. 5 or 0.5)";
    check_error(
        &[],
        &[("POLLING_INTERVAL_SECONDS", "0")],
        &format!(r#"POLLING_INTERVAL_SECONDS: "0" {interval}"#),
    );
    check_error(
        &[],
        &[("POLLING_INTERVAL_SECONDS", "-1")],
        &format!(r#"POLLING_INTERVAL_SECONDS: "-1" {interval}"#),
    );
    check_error(
        &[],
        &[("POLLING_INTERVAL_SECONDS", "NaN")],
        &format!(r#"POLLING_INTERVAL_SECONDS: "NaN" {interval}"#),
    );
    check_error(
        &[],
        &[("POLLING_INTERVAL_SECONDS", "5s")],
        &format!(r#"POLLING_INTERVAL_SECONDS: "5s" {interval}"#),
    );
    check_error(
        &[],
        &[("TARGET_URL", "localhost:8000/status")],
        r#"TARGET_URL: "localhost:8000/status" must start with http:// or https:// (e.g. http://localhost:8000/status)"#,
    );
    check_error(
        &[],
        &[("TARGET_URL", "http://:80/")],
        r#"TARGET_URL: "http://:80/" has no valid host (e.g. http://localhost:8000/status)"#,
    );
    check_error(
        &[],
        &[("TARGET_URL", "http://h:x/")],
        r#"TARGET_URL: "http://h:x/" has an invalid port (1-65535)"#,
    );
    check_error(
        &[],
        &[("TARGET_HOST", "a b")],
        r#"TARGET_HOST: "a b" is not a host name or IP address (an IPv6 address goes bare or in brackets: ::1 or [::1])"#,
    );
    check_error(
        &[],
        &[("LISTEN_ADDRESS", "localhost")],
        r#"LISTEN_ADDRESS: "localhost" is not an IP address (e.g. 127.0.0.1, 0.0.0.0, ::)"#,
    );
    check_error(
        &[],
        &[("OPENMETRICS", "maybe")],
        r#"OPENMETRICS: "maybe" is not true or false"#,
    );
    check_error(
        &[],
        &[("TARGET_MAX_BYTES", "10")],
        r#"TARGET_MAX_BYTES: "10" is not a byte count of at least 1024"#,
    );
    check_error(
        &["--bogus"],
        &[],
        r#"unknown flag "--bogus", or a flag given twice (see --help)"#,
    );
    check_error(
        &["--exporter-port"],
        &[],
        "--exporter-port needs a value (see --help)",
    );
    check_error(
        &["extra"],
        &[],
        r#"unexpected argument "extra" (see --help)"#,
    );
    check_error(
        &["--config-file", "/nonexistent/m.json"],
        &[],
        "CONFIG_FILE: cannot read /nonexistent/m.json: No such file or directory (os error 2)",
    );
}

#[test]
fn request_headers() {
    fn check(args: &[&str], env: &[(&str, &str)], expected: &[(&str, &str)]) {
        let got = config(args, env).poll.request.headers;
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (&**n, &**v)).collect();
        assert_eq!(got, expected, "{args:?} {env:?}");
    }
    check(&[], &[], &[]);
    check(
        &["--target-header=X-Api-Key: abc"],
        &[],
        &[("X-Api-Key", "abc")],
    );
    check(
        &[
            "--target-header",
            "Accept:text/json",
            "--target-header",
            "X-A:  a; b=c  ",
        ],
        &[("TARGET_HEADERS", "X-Ignored: 1")],
        &[("Accept", "text/json"), ("X-A", "a; b=c")],
    );
    check(
        &[],
        &[("TARGET_HEADERS", "X-A: 1\r\n\n  \nX-B: two: 2\nX-Empty:")],
        &[("X-A", "1"), ("X-B", "two: 2"), ("X-Empty", "")],
    );
    check(
        &[],
        &[("TARGET_HEADERS", "X-Tab: a\tb")],
        &[("X-Tab", "a\tb")],
    );

    let header = |h: &str| -> String {
        match run(&["--target-header", h], &[]) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{h:?} accepted: {c:?}"),
        }
    };
    assert_eq!(
        header("X-Api-Key secret"),
        r#"--target-header: header 1 has no colon; write NAME: VALUE (e.g. "X-Api-Key: abc")"#
    );
    assert_eq!(
        header("X Api: secret"),
        r#"--target-header: "X Api" is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)"#
    );
    assert_eq!(
        header(": secret"),
        r#"--target-header: "" is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)"#
    );
    assert_eq!(
        header("X-Key: sec\u{0}ret"),
        r#"--target-header: the value of "X-Key" has a line break or another control character; a value is one line"#
    );
    assert_eq!(
        header("X-Key: sec\rret"),
        r#"--target-header: the value of "X-Key" has a line break or another control character; a value is one line"#
    );
    for managed in ["Host", "content-length", "Transfer-Encoding", "Connection"] {
        assert_eq!(
            header(&format!("{managed}: x")),
            format!("--target-header: {managed:?} is set by the exporter; remove it")
        );
    }
    check_error(
        &[],
        &[("TARGET_HEADERS", "X-A: 1\nx-a: 2")],
        r#"TARGET_HEADERS: "x-a" is given twice; give it once, with the values separated by commas"#,
    );
    check_error(
        &[],
        &[("TARGET_HEADERS", "X-A: 1\nsecret")],
        r#"TARGET_HEADERS: header 2 has no colon; write NAME: VALUE (e.g. "X-Api-Key: abc")"#,
    );
}

#[test]
fn credential_settings() {
    let token = testing::file("config-settings-token", b"tok\n");
    let token = token.to_str().unwrap();
    let c = config(&[], &[("TARGET_BEARER_TOKEN_FILE", token)]);
    assert_eq!(
        c.poll.request.auth,
        Some(Auth::Bearer {
            token_file: token.into()
        })
    );
    assert_eq!(
        c.poll.request.auth.unwrap().to_string(),
        format!("bearer token from {token} (redacted)")
    );
    let c = config(
        &[
            "--target-basic-auth-user",
            "bob",
            "--target-basic-auth-password-file",
            token,
        ],
        &[("TARGET_HEADERS", "X-Api-Key: k")],
    );
    assert_eq!(
        request_settings(&c.poll.request),
        [
            ("headers", "X-Api-Key (values not shown)".to_string()),
            (
                "credentials",
                format!(r#"basic auth as "bob", password from {token} (redacted)"#)
            ),
        ]
    );
    check_error(
            &["--target-bearer-token-file", token],
            &[("TARGET_BASIC_AUTH_USER", "bob")],
            "--target-bearer-token-file and TARGET_BASIC_AUTH_USER are both set; use one kind of credentials",
        );
    check_error(
            &[],
            &[("TARGET_BASIC_AUTH_USER", "bob")],
            "TARGET_BASIC_AUTH_USER needs TARGET_BASIC_AUTH_PASSWORD_FILE (or --target-basic-auth-password-file): the file that holds the password",
        );
    check_error(
            &[],
            &[("TARGET_BASIC_AUTH_PASSWORD_FILE", token)],
            "TARGET_BASIC_AUTH_PASSWORD_FILE needs TARGET_BASIC_AUTH_USER (or --target-basic-auth-user): the user name",
        );
    check_error(
        &[],
        &[
            ("TARGET_BASIC_AUTH_USER", "a:b"),
            ("TARGET_BASIC_AUTH_PASSWORD_FILE", token),
        ],
        r#"TARGET_BASIC_AUTH_USER: "a:b" has a colon, which basic auth does not allow in a user name"#,
    );
    check_error(
        &["--target-header", "authorization: Bearer x"],
        &[("TARGET_BEARER_TOKEN_FILE", token)],
        r#"--target-header: "authorization" conflicts with the credentials from TARGET_BEARER_TOKEN_FILE; remove one of them"#,
    );
    check_error(
            &[],
            &[("TARGET_BEARER_TOKEN_FILE", "/nonexistent/token")],
            "TARGET_BEARER_TOKEN_FILE: /nonexistent/token: cannot read it: No such file or directory (os error 2)",
        );
    // An Authorization header alone is allowed (its value is not shown either).
    let c = config(&["--target-header", "Authorization: Token t"], &[]);
    assert_eq!(
        c.poll.request.headers,
        [("Authorization".into(), "Token t".into())]
    );
}

#[test]
fn https_targets() {
    let junk = testing::file(
        "config-ca",
        b"junk\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let junk = junk.to_str().unwrap();
    let url = ("TARGET_URL", "https://app.internal/status");
    #[cfg(feature = "https")]
    {
        let ca = testing::file("config-ca-good", testing::CA_PEM.as_bytes());
        let ca = ca.to_str().unwrap();
        let c = config(&["--target-ca-file", ca], &[url]);
        assert_eq!(
            c.poll.request.target.to_string(),
            "https://app.internal:443/status"
        );
        assert_eq!(c.poll.request.trust.source, tls::Source::File(ca.into()));
        assert_eq!(
            request_settings(&c.poll.request),
            [(
                "CA",
                format!("{ca} (1 certificate, instead of the system's)")
            )]
        );
        let c = config(&[], &[("TARGET_URL", "https://[::1]:8443")]);
        assert_eq!(c.poll.request.target.to_string(), "https://[::1]:8443/");
        assert_ne!(c.poll.request.trust.source, tls::Source::Unused);
        let c = config(&[], &[url, ("SSL_CERT_FILE", ca)]);
        assert_eq!(
            c.poll.request.trust.source,
            tls::Source::Environment(format!("SSL_CERT_FILE {ca}"))
        );
        let not_pem = testing::file("config-not-pem", b"\x30\x82\x01\x0a");
        check_error(
            &["--target-ca-file", not_pem.to_str().unwrap()],
            &[url],
            &format!(
                "--target-ca-file: {} has no PEM certificate (-----BEGIN CERTIFICATE-----) in it; \
                     convert a DER file with `openssl x509 -inform der -in FILE`",
                not_pem.display()
            ),
        );
        check_error(
            &["--target-ca-file", junk],
            &[url],
            &format!(
                "--target-ca-file: {junk} has no certificate that can be used as a CA: \
                 invalid peer certificate: BadEncoding"
            ),
        );
        check_error(
                &[],
                &[("TARGET_CA_FILE", "/nonexistent/ca.pem"), url],
                "TARGET_CA_FILE: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
            );
        check_error(
            &[],
            &[url, ("SSL_CERT_FILE", "/nonexistent/bundle.pem")],
            "SSL_CERT_FILE: cannot read /nonexistent/bundle.pem: No such file or directory (os error 2)",
        );
        check_error(
            &[],
            &[("TARGET_CA_FILE", ca)],
            "TARGET_CA_FILE: only used for an https:// target, and the target is \
                 http://localhost:8000/status; use an https:// TARGET_URL or remove TARGET_CA_FILE",
        );
        if cfg!(feature = "https-builtin-roots") {
            let c = config(&[], &[url, ("TARGET_CA_FILE", "builtin")]);
            assert_eq!(
                c.poll.request.trust.source,
                tls::Source::Builtin { asked: true }
            );
        } else {
            check_error(
                &[],
                &[url, ("TARGET_CA_FILE", "builtin")],
                "TARGET_CA_FILE: this build has no built-in CA roots; build with --features \
                 https-builtin-roots, or give a PEM file",
            );
        }
    }
    #[cfg(not(feature = "https"))]
    {
        check_error(
            &[],
            &[url],
            r#"TARGET_URL: "https://app.internal/status" is an https:// URL, and this build has no HTTPS support; build with --features https"#,
        );
        check_error(
            &[],
            &[("TARGET_CA_FILE", junk)],
            "TARGET_CA_FILE: this build has no HTTPS support; build with --features https",
        );
        // An http:// target loads no CA certificates, even where SSL_CERT_FILE is broken.
        let c = config(&[], &[("SSL_CERT_FILE", "/nonexistent/bundle.pem")]);
        assert_eq!(c.poll.request.trust, Trust::unused());
    }
}

#[test]
fn target_host_is_a_host_alone() {
    let host = |value: &str| config(&[], &[("TARGET_HOST", value)]).poll.request.target;
    assert_eq!(host("::1").to_string(), "http://[::1]:8000/status");
    assert_eq!(host("[::1]").to_string(), "http://[::1]:8000/status");
    assert_eq!(host("[::1]").host, "::1");
    assert_eq!(host("10.0.0.7").to_string(), "http://10.0.0.7:8000/status");
    check_error(
        &[],
        &[("TARGET_HOST", "localhost:8000")],
        r#"TARGET_HOST: "localhost:8000" has a port in it; put the port in TARGET_PORT"#,
    );
    check_error(
        &["--target-host", "[::1]:8000"],
        &[],
        r#"--target-host: "[::1]:8000" has a port in it; put the port in TARGET_PORT"#,
    );
    check_error(
        &[],
        &[("TARGET_HOST", "http://app:8000/status")],
        r#"TARGET_HOST: "http://app:8000/status" is a URL, not a host; use TARGET_URL for a whole URL"#,
    );
    check_error(
        &[],
        &[("TARGET_HOST", "app/status")],
        r#"TARGET_HOST: "app/status" has a path in it; put the path in TARGET_METRICS, or use TARGET_URL for a whole URL"#,
    );
    check_error(
        &[],
        &[("TARGET_HOST", "[app]")],
        r#"TARGET_HOST: "[app]" is not a host name or IP address (an IPv6 address goes bare or in brackets: ::1 or [::1])"#,
    );
    check_error(
        &[],
        &[("TARGET_HOST", "http://admin:s3cret@app/")],
        r#"TARGET_HOST: "http://admin:***@app/" is a URL, not a host; use TARGET_URL for a whole URL"#,
    );
}

#[test]
fn urls_in_errors_keep_their_secrets() {
    let credentials = "TARGET_URL: the URL has a user name or password in it (user:password@), \
        which is not sent; give the user with --target-basic-auth-user (TARGET_BASIC_AUTH_USER) \
        and the password in the file named by --target-basic-auth-password-file \
        (TARGET_BASIC_AUTH_PASSWORD_FILE)";
    check_error(
        &[],
        &[("TARGET_URL", "http://admin:s3cret@app/")],
        credentials,
    );
    check_error(
        &[],
        &[("TARGET_URL", "http://admin:s3/cret@app/")],
        credentials,
    );
    check_error(&[], &[("TARGET_URL", "http://admin@app/")], credentials);
    check_error(
        &[],
        &[("TARGET_URL", "app/cm?user=admin&password=s3cret")],
        r#"TARGET_URL: "app/cm?user=admin&password=***" must start with http:// or https:// (e.g. http://localhost:8000/status)"#,
    );
    check_error(
        &[],
        &[("TARGET_METRICS", "cm?password=s3cret&x=a b")],
        r#"TARGET_METRICS: "cm?password=***&x=a b" is not a URL path (no spaces or #; percent-encode them)"#,
    );
    let c = config(
        &[],
        &[("TARGET_URL", "http://plug/cm?user=admin&password=s3cret")],
    );
    assert_eq!(
        c.poll.request.target.to_string(),
        "http://plug:80/cm?user=admin&password=***"
    );
    assert_eq!(c.poll.request.target.path, "/cm?user=admin&password=s3cret");
}

#[test]
fn web_basic_auth_file() {
    let path = testing::file("config-web-users-setting", b"prometheus:s3cret\n");
    let path = path.to_str().unwrap();
    let c = config(&[], &[("WEB_BASIC_AUTH_FILE", path)]);
    assert_eq!(c.serve.web_auth_file, Some(PathBuf::from(path)));
    let c = config(&["--web-basic-auth-file", path], &[]);
    assert_eq!(c.serve.web_auth_file, Some(PathBuf::from(path)));
    assert_eq!(config(&[], &[]).serve.web_auth_file, None);
    check_error(
            &["--web-basic-auth-file=/nonexistent/users"],
            &[],
            "--web-basic-auth-file: /nonexistent/users: cannot read it: No such file or directory (os error 2)",
        );
}

#[test]
fn reload_endpoint_is_off_unless_enabled() {
    let on = |args: &[&str], env: &[(&str, &str)]| config(args, env).serve.enable_reload;
    assert!(!on(&[], &[]));
    assert!(on(&["--web-enable-reload"], &[]));
    assert!(on(&[], &[("WEB_ENABLE_RELOAD", "true")]));
    assert!(!on(&[], &[("WEB_ENABLE_RELOAD", "false")]));
    assert!(on(
        &["--web-enable-reload"],
        &[("WEB_ENABLE_RELOAD", "false")]
    ));
    assert!(!on(
        &["--web-enable-reload=false"],
        &[("WEB_ENABLE_RELOAD", "true")]
    ));
    check_error(
        &[],
        &[("WEB_ENABLE_RELOAD", "maybe")],
        "WEB_ENABLE_RELOAD: \"maybe\" is not true or false",
    );
}
