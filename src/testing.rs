//! Helpers that the unit tests of several modules share (test builds only): temporary
//! directories and files, and a CA certificate. The integration tests have their own harness, `tests/harness/`.

use std::fs;
use std::path::PathBuf;

/// A fresh, empty directory for one test under the system's temporary directory. `name` must
/// be unique among the crate's unit tests, which run in parallel: start it with the module's.
pub fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("status-exporter-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// A file holding `content` in a fresh directory [`dir`]`(name)`; returns its path.
pub fn file(name: &str, content: &[u8]) -> PathBuf {
    let path = dir(name).join("file");
    fs::write(&path, content).expect("write a temporary file");
    path
}

/// A self-signed CA certificate (EC P-256, valid until 2126), made with the openssl CLI.
#[cfg(feature = "https")]
pub const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIIBtjCCAVugAwIBAgIUVztqwAyeTX/d+ahcZnAGh4HI59IwCgYIKoZIzj0EAwIw
JzElMCMGA1UEAwwcc3RhdHVzLWV4cG9ydGVyIHVuaXQtdGVzdCBDQTAgFw0yNjEx
MzAxNzExMDJaGA8yMTI2MTEwNjE3MTEwMlowJzElMCMGA1UEAwwcc3RhdHVzLWV4
cG9ydGVyIHVuaXQtdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIor
5/K97zMGSoFmEK5FS79sp27x1LVD35F8jRBot3purc3WB/RvY7EejjiPMk1JCeI8
nbAOLq8CGAZc3INrnY+jYzBhMB0GA1UdDgQWBBSKkfC88AcQ50Ae1ug+3Sp3h4fS
QjAfBgNVHSMEGDAWgBSKkfC88AcQ50Ae1ug+3Sp3h4fSQjAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwICBDAKBggqhkjOPQQDAgNJADBGAiEA5gEwY4fHrlNr
k3iSg8FDw2hzVG5FwtGjIx5G103jbQQCIQDvYAHdiDxUnSQQeYml8f3uIGx0bBTq
9Z6f8ZpgBlWbow==
-----END CERTIFICATE-----
";
