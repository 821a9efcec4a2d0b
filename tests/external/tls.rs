//! HTTPS targets (builds with the `https` feature): a certificate from a private CA made with
//! the openssl CLI, trusted through TARGET_CA_FILE or the usual SSL_CERT_FILE and SSL_CERT_DIR,
//! and refused with the `tls` reason otherwise; a plain HTTP server on an https:// URL.

use std::fs;

use crate::harness::{
    app_part, private_ca, temp_dir, value, Exporter, Reply, Target, TlsTarget, TUTORIAL_DOC,
    TUTORIAL_TEXT,
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
            && startup[0].contains(&format!("CA file: {ca} (instead of the system's)")),
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

/// An https:// URL to a server that speaks plain HTTP fails with the `tls` reason.
#[test]
fn plain_http_server_on_an_https_url() {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let url = format!("https://{}/status", target.addr);
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
