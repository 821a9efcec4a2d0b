use super::*;
#[cfg(feature = "https")]
use crate::testing::{self, CA_PEM};

#[cfg(feature = "https")]
fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn what_the_start_up_line_says() {
    fn check(source: Source, certificates: usize, expected: Option<&str>) {
        let mut trust = Trust::unused();
        (trust.source, trust.certificates) = (source, certificates);
        assert_eq!(trust.describe().as_deref(), expected);
    }
    check(Source::Unused, 0, None);
    check(
        Source::File("/etc/app/ca.pem".into()),
        1,
        Some("/etc/app/ca.pem (1 certificate, instead of the system's)"),
    );
    check(
        Source::System("/etc/ssl/cert.pem".into()),
        140,
        Some("the system's, /etc/ssl/cert.pem (140 certificates)"),
    );
    check(
        Source::Environment("SSL_CERT_DIR /certs".into()),
        2,
        Some("SSL_CERT_DIR /certs (2 certificates)"),
    );
    check(
        Source::Builtin { asked: true },
        150,
        Some("the built-in Mozilla roots (150 certificates)"),
    );
    check(
        Source::Builtin { asked: false },
        150,
        Some("the built-in Mozilla roots (150 certificates): the system has no CA bundle"),
    );
    let mut missing = Trust::unused();
    missing.source = Source::Missing;
    let text = missing.describe().unwrap();
    assert!(
        text.starts_with("none: the system has no CA bundle (/etc/ssl/certs/ca-certificates.crt")
            && text.contains("set TARGET_CA_FILE")
            && text.contains("--features https-builtin-roots"),
        "{text}"
    );
}

#[cfg(feature = "https")]
#[test]
fn ca_files_load_or_say_why_not() {
    let ca = testing::file("tls-ca", CA_PEM.as_bytes());
    let trust = load(&CaSetting::File(ca.clone()), &no_env).unwrap();
    assert_eq!((trust.source, trust.certificates), (Source::File(ca), 1));

    let two = testing::file("tls-two", format!("junk\n{CA_PEM}\n{CA_PEM}").as_bytes());
    assert_eq!(
        load(&CaSetting::File(two), &no_env).unwrap().certificates,
        2
    );

    let check_error = |content: &[u8], name: &str, expected: &str| {
        let path = testing::file(name, content);
        let got = load(&CaSetting::File(path.clone()), &no_env).unwrap_err();
        assert_eq!(got.variable(), None);
        let path = path.display().to_string();
        assert_eq!(got.to_string(), expected.replace("PATH", &path), "{name}");
    };
    check_error(
        b"\x30\x82\x01\x0a",
        "tls-der",
        "PATH has no PEM certificate (-----BEGIN CERTIFICATE-----) in it; \
         convert a DER file with `openssl x509 -inform der -in FILE`",
    );
    check_error(
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "tls-bad-der",
        "PATH has no certificate that can be used as a CA: invalid peer certificate: BadEncoding",
    );
    let missing = load(&CaSetting::File("/nonexistent/ca.pem".into()), &no_env).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "cannot read /nonexistent/ca.pem: No such file or directory (os error 2)"
    );
    let dir = testing::dir("tls-a-dir");
    let not_a_file = load(&CaSetting::File(dir.clone()), &no_env).unwrap_err();
    assert_eq!(
        not_a_file.to_string(),
        format!(
            "cannot read {}: it is a directory, not a regular file",
            dir.display()
        )
    );
}

#[cfg(feature = "https")]
#[test]
fn ssl_cert_file_and_dir_replace_the_system_bundle() {
    let file = testing::file("tls-env-file", CA_PEM.as_bytes());
    let dir = testing::dir("tls-env-dir");
    std::fs::write(dir.join("a.pem"), CA_PEM).unwrap();
    std::fs::write(dir.join("README"), "not a certificate").unwrap();
    let (file, dir) = (file.to_str().unwrap(), dir.to_str().unwrap());
    let with = |vars: &[(&'static str, String)]| {
        let vars = vars.to_vec();
        load(&CaSetting::System, &move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    };
    let trust = with(&[("SSL_CERT_FILE", file.into())]).unwrap();
    assert_eq!(
        (trust.source, trust.certificates),
        (Source::Environment(format!("SSL_CERT_FILE {file}")), 1)
    );
    let dirs = format!("/nonexistent-dir:{dir}");
    let trust = with(&[("SSL_CERT_DIR", dir.into())]).unwrap();
    assert_eq!(
        (trust.source, trust.certificates),
        (Source::Environment(format!("SSL_CERT_DIR {dir}")), 1)
    );
    let trust = with(&[
        ("SSL_CERT_FILE", file.into()),
        ("SSL_CERT_DIR", dirs.clone()),
    ])
    .unwrap();
    assert_eq!(
        (trust.source, trust.certificates),
        (
            Source::Environment(format!("SSL_CERT_FILE {file}, SSL_CERT_DIR {dirs}")),
            2
        )
    );
    let error = with(&[("SSL_CERT_DIR", file.into())]).unwrap_err();
    assert_eq!(error.variable(), Some("SSL_CERT_DIR"), "{error}");
    let error = with(&[("SSL_CERT_FILE", "/nonexistent/bundle.pem".into())]).unwrap_err();
    assert_eq!(
        (error.variable(), error.to_string().as_str()),
        (
            Some("SSL_CERT_FILE"),
            "cannot read /nonexistent/bundle.pem: No such file or directory (os error 2)"
        )
    );
}

#[cfg(feature = "https")]
#[test]
fn builtin_roots_only_in_the_build_that_has_them() {
    let got = load(&CaSetting::Builtin, &no_env);
    if cfg!(feature = "https-builtin-roots") {
        let trust = got.unwrap();
        assert_eq!(trust.source, Source::Builtin { asked: true });
        assert!(trust.certificates > 100, "{trust:?}");
    } else {
        assert_eq!(got.unwrap_err(), TrustError::NoBuiltin);
        assert_eq!(
            TrustError::NoBuiltin.to_string(),
            "this build has no built-in CA roots; build with --features https-builtin-roots, \
             or give a PEM file"
        );
    }
}
