//! HTTPS targets (builds with the `https` feature): a certificate from a private CA made with
//! the openssl CLI, trusted through TARGET_CA_FILE or the usual SSL_CERT_FILE and SSL_CERT_DIR,
//! and refused with the `tls` reason otherwise; a plain HTTP server on an https:// URL.

use std::fs;
use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::thread;

use crate::harness::{
    app_part, private_ca, temp_dir, value, Exporter, TlsTarget, TUTORIAL_DOC, TUTORIAL_TEXT,
};

/// A target with a certificate from a private CA: trusted with TARGET_CA_FILE, refused
/// (reason `tls`, with a hint) without it.
#[test]
fn private_ca_via_target_ca_file() {
    let dir = temp_dir("private_ca_via_target_ca_file");
    let pki = private_ca(&dir);
    let root = dir.join("www");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("status"), TUTORIAL_DOC).unwrap();
    let tls = TlsTarget::start(&pki, &root);
    let url = tls.url("/status");
    let ca = pki.ca.to_str().unwrap();

    let exporter = Exporter::start(&[], &[("TARGET_URL", &url), ("TARGET_CA_FILE", ca)]);
    let body = exporter.wait_for_line("status_exporter_up 1");
    assert_eq!(app_part(&body), TUTORIAL_TEXT);
    let startup = exporter.log_lines("listening on");
    assert!(
        startup[0].contains(&format!("polling {url}"))
            && startup[0].contains(&format!(
                "CA: {ca} (1 certificate, instead of the system's)"
            )),
        "{startup:?}"
    );
    drop(exporter);

    // The system's CA certificates do not know the private CA.
    let exporter = Exporter::start(&[], &[("TARGET_URL", &url)]);
    let body =
        exporter.wait_for_at_least("status_exporter_poll_failures_total{reason=\"tls\"}", 2.0);
    assert_eq!(value(&body, "status_exporter_up"), Some(0.0));
    let failing = exporter.log_lines("failing");
    assert!(
        failing[0].contains("TLS failed: invalid peer certificate: UnknownIssuer")
            && failing[0].contains("set TARGET_CA_FILE"),
        "{failing:?}"
    );
    drop(exporter);

    // Another CA: trusted instead of the system's (and of SSL_CERT_DIR, which would have
    // the right one), so the target is not trusted.
    let other = temp_dir("private_ca_via_target_ca_file_other");
    let other = private_ca(&other);
    let cert_dir = dir.join("certs");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(&pki.ca, cert_dir.join("ca.pem")).unwrap();
    let exporter = Exporter::start(
        &["--target-ca-file", other.ca.to_str().unwrap()],
        &[
            ("TARGET_URL", &url),
            ("SSL_CERT_DIR", cert_dir.to_str().unwrap()),
        ],
    );
    exporter.wait_for_at_least("status_exporter_poll_failures_total{reason=\"tls\"}", 1.0);
    drop(exporter);

    // Without TARGET_CA_FILE, the usual SSL_CERT_FILE and SSL_CERT_DIR replace the system's.
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &url),
            ("SSL_CERT_DIR", cert_dir.to_str().unwrap()),
        ],
    );
    exporter.wait_for_line("status_exporter_up 1");
}

/// An https:// URL to a server that speaks plain HTTP fails with the `tls` reason: one that
/// answers the handshake with an HTTP error, and one that closes without a word.
#[test]
fn plain_http_server_on_an_https_url() {
    for answer in [
        &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
        b"",
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/status", listener.local_addr().unwrap());
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(answer);
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
        let exporter = Exporter::start(&[], &[("TARGET_URL", &url)]);
        let body =
            exporter.wait_for_at_least("status_exporter_poll_failures_total{reason=\"tls\"}", 1.0);
        assert_eq!(app_part(&body), "");
        assert!(
            exporter.log_lines("failing")[0].contains("TLS failed"),
            "{:?}",
            exporter.stderr()
        );
    }
}

/// The deadline covers the handshake: a server that accepts and never answers the hello is a
/// `timeout`, within TARGET_TIMEOUT_SECONDS.
#[test]
fn a_silent_server_times_out_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/status", listener.local_addr().unwrap());
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten().take(20) {
            held.push(stream);
        }
    });
    let exporter = Exporter::start(
        &[],
        &[
            ("TARGET_URL", &url),
            ("TARGET_TIMEOUT_SECONDS", "0.3"),
            ("POLLING_INTERVAL_SECONDS", "2"),
        ],
    );
    let body = exporter.wait_for_at_least(
        "status_exporter_poll_failures_total{reason=\"timeout\"}",
        1.0,
    );
    let took = value(&body, "status_exporter_poll_duration_seconds").unwrap();
    assert!((0.3..1.0).contains(&took), "the poll took {took} s");
    assert!(
        exporter.log_lines("failing")[0].contains("(during the TLS handshake)"),
        "{:?}",
        exporter.stderr()
    );
}
