//! The TLS side of the client (builds with the `https` feature): which CA certificates an
//! https:// target's certificate is checked against, loaded once at start-up into a [`Trust`],
//! and the TLS session over a connection ([`handshake`]), with rustls and its `ring` provider.
//!
//! Where the certificates come from, first match wins: `TARGET_CA_FILE` (a PEM file, or
//! `builtin`); else `SSL_CERT_FILE` and `SSL_CERT_DIR` when either is set (the convention of
//! OpenSSL and most TLS clients); else the system's bundle at the usual paths ([`SYSTEM_BUNDLES`]);
//! else, in a build with the `https-builtin-roots` feature, the Mozilla roots compiled in
//! (`webpki-roots`). Nothing sets or changes the environment: the settings are read, the files
//! loaded, and the result is a value handed to the client. The names `rustls` and `webpki_roots`
//! appear nowhere else. Knows nothing about HTTP, polls or settings other than the TLS ones.

use std::fmt;
#[cfg(feature = "https")]
use std::path::Path;
use std::path::PathBuf;

/// The system CA bundles, in the order they are looked for (Go's `crypto/x509` list): Debian,
/// Ubuntu, Arch, Gentoo and Alpine; Fedora and RHEL; OpenSUSE; OpenELEC; CentOS and RHEL 7;
/// OpenWrt, Alpine and the BSDs.
pub const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Largest CA file read (a system bundle is about 200 KiB): a larger one is refused, and so is
/// anything that is not a regular file (`files::read_file`).
#[cfg(feature = "https")]
const MAX_FILE_BYTES: u64 = 4 << 20;
/// Files read from one `SSL_CERT_DIR` directory at most.
#[cfg(feature = "https")]
const MAX_DIR_FILES: usize = 4096;

/// Which CA certificates a setting asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSetting {
    /// The system's: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the bundle at the usual
    /// paths, else the built-in roots (in a build that has them).
    System,
    /// The CA certificates of this PEM file, instead of the system's.
    File(PathBuf),
    /// The built-in Mozilla roots (`TARGET_CA_FILE=builtin`), even where the system has a
    /// bundle.
    Builtin,
}

/// Where the trusted certificates came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Nothing was loaded: the target is not https://.
    Unused,
    /// A PEM file named by a setting.
    File(PathBuf),
    /// `SSL_CERT_FILE` and/or `SSL_CERT_DIR`, as described here.
    Environment(String),
    /// The system's bundle at this path.
    System(PathBuf),
    /// The built-in Mozilla roots; `asked` when the setting asked for them, otherwise because
    /// the system has no bundle.
    Builtin { asked: bool },
    /// No CA certificate anywhere: every https:// poll fails with the reason `tls`.
    Missing,
}

/// The CA certificates trusted for https:// targets, loaded once ([`load`]); cheap to clone and
/// shared by every request, from any thread.
#[derive(Clone)]
pub struct Trust {
    pub source: Source,
    /// How many CA certificates are trusted.
    pub certificates: usize,
    #[cfg(feature = "https")]
    config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        (&self.source, self.certificates) == (&other.source, other.certificates)
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Trust({:?}, {} certificates)",
            self.source, self.certificates
        )
    }
}

impl Trust {
    /// The trust of a target that is not https://: nothing.
    pub fn unused() -> Trust {
        Trust {
            source: Source::Unused,
            certificates: 0,
            #[cfg(feature = "https")]
            config: None,
        }
    }

    /// What the start-up line and `--check-config` say about it; None when unused.
    pub fn describe(&self) -> Option<String> {
        let n = self.certificates;
        let certificates = if n == 1 {
            "1 certificate".to_string()
        } else {
            format!("{n} certificates")
        };
        Some(match &self.source {
            Source::Unused => return None,
            Source::File(path) => {
                format!(
                    "{} ({certificates}, instead of the system's)",
                    path.display()
                )
            }
            Source::Environment(what) => format!("{what} ({certificates})"),
            Source::System(path) => format!("the system's, {} ({certificates})", path.display()),
            Source::Builtin { asked: true } => {
                format!("the built-in Mozilla roots ({certificates})")
            }
            Source::Builtin { asked: false } => {
                format!("the built-in Mozilla roots ({certificates}): the system has no CA bundle")
            }
            Source::Missing => format!("none: {}", missing()),
        })
    }
}

/// Why there is nothing to trust, and the fix.
pub fn missing() -> String {
    format!(
        "the system has no CA bundle ({} and the other usual paths do not exist); \
         install the system's CA certificates (the ca-certificates package), set \
         TARGET_CA_FILE, or use the build with built-in roots (--features https-builtin-roots)",
        SYSTEM_BUNDLES[0]
    )
}

/// Why the CA certificates cannot be loaded (exit 2 at start-up).
#[derive(Debug, PartialEq)]
pub enum TrustError {
    /// A file or directory cannot be read (or is not a regular file, or is too large).
    /// `variable` is the environment variable that named it, None for the setting's own file.
    Read {
        variable: Option<&'static str>,
        path: PathBuf,
        error: String,
    },
    /// A file holds no PEM certificate.
    NoCertificate {
        variable: Option<&'static str>,
        path: PathBuf,
    },
    /// A file holds PEM certificates, none of which can be used as a CA.
    Unusable {
        variable: Option<&'static str>,
        path: PathBuf,
        error: String,
    },
    /// `builtin` asked for in a build without the built-in roots.
    NoBuiltin,
}

impl TrustError {
    /// The environment variable at fault, if it is not the setting's own file.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            TrustError::Read { variable, .. }
            | TrustError::NoCertificate { variable, .. }
            | TrustError::Unusable { variable, .. } => *variable,
            TrustError::NoBuiltin => None,
        }
    }
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::Read { path, error, .. } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            TrustError::NoCertificate { path, .. } => write!(
                f,
                "{} has no PEM certificate (-----BEGIN CERTIFICATE-----) in it; \
                 convert a DER file with `openssl x509 -inform der -in FILE`",
                path.display()
            ),
            TrustError::Unusable { path, error, .. } => write!(
                f,
                "{} has no certificate that can be used as a CA: {error}",
                path.display()
            ),
            TrustError::NoBuiltin => f.write_str(
                "this build has no built-in CA roots; build with --features \
                 https-builtin-roots, or give a PEM file",
            ),
        }
    }
}

/// Loads the CA certificates that `setting` asks for; `env` looks up `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`. Called once, at start-up, for an https:// target only.
#[cfg(feature = "https")]
pub fn load(
    setting: &CaSetting,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Trust, TrustError> {
    let mut roots = rustls::RootCertStore::empty();
    let source = match setting {
        CaSetting::File(path) => {
            add_file(&mut roots, path, None, true)?;
            Source::File(path.clone())
        }
        CaSetting::Builtin => {
            if !add_builtin(&mut roots) {
                return Err(TrustError::NoBuiltin);
            }
            Source::Builtin { asked: true }
        }
        CaSetting::System => system(&mut roots, env)?,
    };
    let certificates = roots.len();
    let config = (certificates > 0).then(|| {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(config)
    });
    Ok(Trust {
        source,
        certificates,
        config,
    })
}

/// In a build without HTTPS there is no https:// target (its URL is refused), so nothing to
/// load.
#[cfg(not(feature = "https"))]
pub fn load(
    _setting: &CaSetting,
    _env: &dyn Fn(&str) -> Option<String>,
) -> Result<Trust, TrustError> {
    Ok(Trust::unused())
}

/// The system's CA certificates: `SSL_CERT_FILE`/`SSL_CERT_DIR`, the bundle, or the built-in
/// roots.
#[cfg(feature = "https")]
fn system(
    roots: &mut rustls::RootCertStore,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Source, TrustError> {
    let file = env("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let dirs = env("SSL_CERT_DIR").filter(|v| !v.is_empty());
    if file.is_some() || dirs.is_some() {
        let mut what = Vec::new();
        if let Some(file) = &file {
            add_file(roots, Path::new(file), Some("SSL_CERT_FILE"), true)?;
            what.push(format!("SSL_CERT_FILE {file}"));
        }
        if let Some(dirs) = &dirs {
            // Like OpenSSL: a list of directories separated by colons.
            for dir in dirs.split(':').filter(|d| !d.is_empty()) {
                add_dir(roots, Path::new(dir))?;
            }
            what.push(format!("SSL_CERT_DIR {dirs}"));
        }
        return Ok(Source::Environment(what.join(", ")));
    }
    for bundle in SYSTEM_BUNDLES {
        let path = Path::new(bundle);
        if path.exists() {
            add_file(roots, path, None, false)?;
            return Ok(Source::System(path.to_path_buf()));
        }
    }
    if add_builtin(roots) {
        return Ok(Source::Builtin { asked: false });
    }
    Ok(Source::Missing)
}

/// Adds the built-in Mozilla roots; false in a build without them.
#[cfg(feature = "https")]
fn add_builtin(roots: &mut rustls::RootCertStore) -> bool {
    #[cfg(feature = "https-builtin-roots")]
    {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        true
    }
    #[cfg(not(feature = "https-builtin-roots"))]
    {
        let _ = roots;
        false
    }
}

/// Adds the CA certificates of a PEM file. `strict`: a file without a usable certificate is an
/// error (a file named on purpose); otherwise it adds nothing (one file among many).
#[cfg(feature = "https")]
fn add_file(
    roots: &mut rustls::RootCertStore,
    path: &Path,
    variable: Option<&'static str>,
    strict: bool,
) -> Result<(), TrustError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let bytes =
        crate::files::read_file(path, MAX_FILE_BYTES).map_err(|error| TrustError::Read {
            variable,
            path: path.to_path_buf(),
            error,
        })?;
    // A malformed section is skipped; the count bounds the loop whatever the parser does.
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .take(100_000)
        .filter_map(Result::ok)
        .collect();
    if certificates.is_empty() {
        return match strict {
            true => Err(TrustError::NoCertificate {
                variable,
                path: path.to_path_buf(),
            }),
            false => Ok(()),
        };
    }
    let first_error = certificates
        .iter()
        .find_map(|c| rustls::RootCertStore::empty().add(c.clone()).err());
    let (added, _) = roots.add_parsable_certificates(certificates);
    if added == 0 && strict {
        return Err(TrustError::Unusable {
            variable,
            path: path.to_path_buf(),
            error: first_error.map_or_else(String::new, |e| e.to_string()),
        });
    }
    Ok(())
}

/// Adds the CA certificates of every regular file in a directory (OpenSSL's hashed names, or
/// any other): files without a certificate are skipped, and so is a directory that does not
/// exist, as OpenSSL does.
#[cfg(feature = "https")]
fn add_dir(roots: &mut rustls::RootCertStore, dir: &Path) -> Result<(), TrustError> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(|e| TrustError::Read {
            variable: Some("SSL_CERT_DIR"),
            path: dir.to_path_buf(),
            error: e.to_string(),
        })?,
    };
    let mut files: Vec<PathBuf> = entries
        .take(MAX_DIR_FILES)
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    for path in files {
        add_file(roots, &path, Some("SSL_CERT_DIR"), false)?;
    }
    Ok(())
}

/// A TLS session over a connection: what the client reads and writes for an https:// target.
#[cfg(feature = "https")]
pub type Stream<S> = rustls::StreamOwned<rustls::ClientConnection, S>;

/// Why a handshake failed.
#[cfg(feature = "https")]
#[derive(Debug)]
pub enum HandshakeError {
    /// The socket gave this error: a timeout, a reset, or the end of the stream (the peer does
    /// not speak TLS, or gave up).
    Io(std::io::Error),
    /// TLS itself failed: the certificate, the protocol, an alert from the server.
    Tls(String),
}

/// Starts a TLS session with `host` over `socket` and completes the handshake, checking the
/// server's certificate against `trust`. The socket bounds the time of each read and write.
#[cfg(feature = "https")]
pub fn handshake<S: std::io::Read + std::io::Write>(
    trust: &Trust,
    host: &str,
    mut socket: S,
) -> Result<Stream<S>, HandshakeError> {
    let Some(config) = &trust.config else {
        let why = match trust.source {
            Source::Missing => missing(),
            _ => trust.describe().unwrap_or_default(),
        };
        return Err(HandshakeError::Tls(format!(
            "no CA certificates to check it against: {why}"
        )));
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| {
        HandshakeError::Tls(format!("{host:?} is not a host name that TLS can check"))
    })?;
    let mut session = rustls::ClientConnection::new(std::sync::Arc::clone(config), name)
        .map_err(|e| HandshakeError::Tls(e.to_string()))?;
    while session.is_handshaking() {
        if let Err(e) = session.complete_io(&mut socket) {
            return Err(
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => HandshakeError::Tls(tls.to_string()),
                    None => HandshakeError::Io(e),
                },
            );
        }
        // A peer that closes before the handshake ends leaves complete_io with nothing to do.
        if session.is_handshaking() && !session.wants_write() && !session.wants_read() {
            return Err(HandshakeError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(rustls::StreamOwned::new(session, socket))
}

/// The TLS error inside an I/O error of a [`Stream`], as text; None for any other error.
#[cfg(feature = "https")]
pub fn error_text(error: &std::io::Error) -> Option<String> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(tls.to_string())
}

#[cfg(test)]
mod tests;
