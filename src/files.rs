//! The files read again at run time: the target's credentials file, the users file of
//! `WEB_BASIC_AUTH_FILE`, and the mapping file.
//!
//! Owns each file's format and its one reader ([`read_credentials`], [`read_web_users`],
//! [`read_mapping`]), used alike by the settings' check at start-up, by `--check-config`, and
//! by the reloads; [`Auth`], where the target's credentials are kept; [`FileError`]; and, for
//! each file, the reload and its log lines ([`Credentials`], [`WebUsers`], [`MappingFile`]; when
//! a file is read again is `watch.rs`'s). No secret reaches a message. Knows nothing about the
//! request, the schedule of polls or HTTP.
//!
//! Every one of them is read by [`read_file`]: only a regular file, opened without waiting (a
//! FIFO would block the open until a writer came), and never more than its limit
//! ([`MAX_SECRET_BYTES`], [`MAX_USERS_BYTES`], [`MAX_MAPPING_BYTES`]), so that a FIFO, a device
//! such as `/dev/zero` or a huge file put in its place is refused, at start-up and at a reload
//! alike, instead of hanging the reader or filling the memory.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::log;
use crate::mapping::{self, Mapping};
use crate::watch::{Refresh, Watched};

/// Credentials for the target, kept in files so that they stay out of `ps`, the environment and
/// the logs. Printed (`Display`) redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer TOKEN`; TOKEN is the file's content without surrounding whitespace.
    Bearer { token_file: PathBuf },
    /// `Authorization: Basic base64(USER:PASSWORD)`; PASSWORD is the file's content without its
    /// final line break.
    Basic {
        user: String,
        password_file: PathBuf,
    },
}

impl Auth {
    /// The file holding the secret.
    pub fn file(&self) -> &Path {
        match self {
            Auth::Bearer { token_file } => token_file,
            Auth::Basic { password_file, .. } => password_file,
        }
    }

    /// The variable that names the file, for messages.
    pub fn setting(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "TARGET_BEARER_TOKEN_FILE",
            Auth::Basic { .. } => "TARGET_BASIC_AUTH_PASSWORD_FILE",
        }
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Bearer { token_file } => {
                write!(f, "bearer token from {} (redacted)", token_file.display())
            }
            Auth::Basic {
                user,
                password_file,
            } => write!(
                f,
                "basic auth as {user:?}, password from {} (redacted)",
                password_file.display()
            ),
        }
    }
}

/// The largest credentials file read: a bearer token or a password, with room for long tokens.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The largest users file read: thousands of `user:password` lines.
pub const MAX_USERS_BYTES: u64 = 1024 * 1024;
/// The largest mapping file read: a 100,000-metric mapping takes about 10 MiB.
pub const MAX_MAPPING_BYTES: u64 = 32 * 1024 * 1024;

/// `O_NONBLOCK`, so that opening a FIFO returns at once (its value on the architectures Linux
/// shares it on; elsewhere the checks before and after the open still refuse a FIFO, but an
/// open racing with a swap could wait for a writer).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "powerpc64",
    target_arch = "s390x",
    target_arch = "loongarch64"
))]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "powerpc64",
    target_arch = "s390x",
    target_arch = "loongarch64"
)))]
const O_NONBLOCK: i32 = 0;

/// Reads the regular file at `path`, of at most `limit` bytes. The error is a sentence for a
/// message: what is wrong and what to put there instead.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let check = |meta: std::fs::Metadata| -> Result<(), String> {
        let kind = meta.file_type();
        let what = if kind.is_file() {
            return if meta.len() > limit {
                Err(format!(
                    "it is {} bytes, more than the {limit} bytes allowed",
                    meta.len()
                ))
            } else {
                Ok(())
            };
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        Err(format!("it is {what}, not a regular file"))
    };
    check(std::fs::metadata(path).map_err(|e| e.to_string())?)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    // The file may have been replaced between the two looks: check what was opened.
    check(file.metadata().map_err(|e| e.to_string())?)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("it is more than the {limit} bytes allowed"));
    }
    Ok(bytes)
}

/// Why a file cannot be used. Each message names the setting (or the file) and the fix, and
/// never shows what the file holds.
#[derive(Clone, Debug, PartialEq)]
pub enum FileError {
    /// A credentials or users file cannot be read.
    Unreadable {
        setting: String,
        path: PathBuf,
        error: String,
    },
    /// What a credentials or users file holds cannot be used: `problem` says why and the fix;
    /// `line` is where, in the users file.
    Invalid {
        setting: String,
        path: PathBuf,
        line: Option<usize>,
        problem: &'static str,
    },
    /// The mapping file cannot be read.
    MappingUnreadable { path: PathBuf, error: String },
    /// The mapping file is not a valid mapping: the mapping's own error.
    Mapping { path: PathBuf, error: String },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Unreadable {
                setting,
                path,
                error,
            } => write!(f, "{setting}: {}: cannot read it: {error}", path.display()),
            FileError::Invalid {
                setting,
                path,
                line: None,
                problem,
            } => write!(f, "{setting}: {} {problem}", path.display()),
            FileError::Invalid {
                setting,
                path,
                line: Some(line),
                problem,
            } => write!(f, "{setting}: {}: line {line}: {problem}", path.display()),
            FileError::MappingUnreadable { path, error } => {
                write!(f, "CONFIG_FILE: cannot read {}: {error}", path.display())
            }
            FileError::Mapping { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

/// Reads the credentials file of `auth` and returns the value of the `Authorization` header.
/// `setting` names the file's setting in messages, which never show the file's content.
pub fn read_credentials(auth: &Auth, setting: &str) -> Result<String, FileError> {
    let path = auth.file();
    let invalid = |problem| FileError::Invalid {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        line: None,
        problem,
    };
    let bytes = read_file(path, MAX_SECRET_BYTES).map_err(|error| FileError::Unreadable {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        error,
    })?;
    let end = bytes
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    let secret = &bytes[..end];
    match auth {
        Auth::Bearer { .. } => {
            let start = secret
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let end = secret.len()
                - secret
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
            let token = &secret[start.min(end)..end];
            if token.is_empty() {
                return Err(invalid("is empty; write the token into it"));
            }
            if !token.iter().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "has more than a token in it (spaces, line breaks or non-ASCII characters); \
                     write the token alone",
                ));
            }
            let token = std::str::from_utf8(token).expect("ASCII is UTF-8");
            Ok(format!("Bearer {token}"))
        }
        Auth::Basic { user, .. } => {
            if secret.is_empty() {
                return Err(invalid("is empty; write the password into it"));
            }
            let mut pair = Vec::with_capacity(user.len() + 1 + secret.len());
            pair.extend_from_slice(user.as_bytes());
            pair.push(b':');
            pair.extend_from_slice(secret);
            Ok(format!("Basic {}", base64(&pair)))
        }
    }
}

/// Reads the users of `WEB_BASIC_AUTH_FILE` and returns, for each, the credentials a client
/// sends for it: base64 of `user:password` (RFC 7617), in file order. One user per line, split
/// at the first colon: the password is the rest of the line (colons and spaces included, a
/// final `\r` not). Empty lines and lines starting with `#` are skipped; a user may be listed
/// more than once, so that a new password can be added before the old one is removed.
/// `setting` names the file's setting in messages, which never show a password.
pub fn read_web_users(path: &Path, setting: &str) -> Result<Vec<String>, FileError> {
    let invalid = |line, problem| FileError::Invalid {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        line,
        problem,
    };
    let bytes = read_file(path, MAX_USERS_BYTES).map_err(|error| FileError::Unreadable {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        error,
    })?;
    let mut users = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
            continue;
        }
        let at = |problem| invalid(Some(index + 1), problem);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(at("no colon; write user:password"));
        };
        let (user, password) = (&line[..colon], &line[colon + 1..]);
        if user.is_empty() || password.is_empty() {
            return Err(at("the user or the password is empty; write user:password"));
        }
        if line.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
            return Err(at("a control character; write user:password on one line"));
        }
        users.push(base64(line));
    }
    if users.is_empty() {
        return Err(invalid(None, "has no user; add a line user:password"));
    }
    Ok(users)
}

/// Reads and validates a mapping file (its format is `mapping.rs`'s).
pub fn read_mapping(path: &Path) -> Result<Mapping, FileError> {
    let unreadable = |error| FileError::MappingUnreadable {
        path: path.to_path_buf(),
        error,
    };
    let bytes = read_file(path, MAX_MAPPING_BYTES).map_err(unreadable)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| unreadable("it is not UTF-8 text; write the mapping as JSON".into()))?;
    mapping::parse(&text).map_err(|error| FileError::Mapping {
        path: path.to_path_buf(),
        error,
    })
}

/// Standard base64 with padding (RFC 4648, section 4), for basic auth.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The target's credentials: the `Authorization` value their file gives, re-read when it
/// changes. No `Debug`: it holds the secret.
pub struct Credentials {
    auth: Auth,
    /// The `Authorization` value, None until a read succeeds.
    file: Watched<Option<String>>,
}

impl Credentials {
    /// Reads the file now; one that cannot be read is read again at the next refresh, and until
    /// then requests go without credentials.
    pub fn open(auth: Auth) -> Credentials {
        let path = auth.file().to_path_buf();
        let file = match read_credentials(&auth, auth.setting()) {
            Ok(value) => Watched::new(path, Some(value)),
            Err(_) => Watched::unread(path, None),
        };
        Credentials { auth, file }
    }

    /// Re-reads the file if it changed (or the last read failed), and logs the outcome; a
    /// failed read keeps the last good value.
    pub fn refresh(&mut self) {
        let had = self.file.value.is_some();
        let auth = &self.auth;
        match self
            .file
            .refresh(|_| read_credentials(auth, auth.setting()).map(Some))
        {
            Refresh::Read { changed, recovered } if changed || recovered => {
                log::info!("credentials reloaded from {}", self.file.path.display())
            }
            Refresh::Failed(e) => {
                let kept = if had {
                    "the previous credentials stay in use"
                } else {
                    "requests go without credentials"
                };
                log::warn!("{e}; {kept} until the file can be read");
            }
            Refresh::Read { .. } | Refresh::Unchanged => {}
        }
    }

    /// The value of the `Authorization` header; None until a read succeeds.
    pub fn authorization(&self) -> Option<&str> {
        self.file.value.as_deref()
    }

    /// The last read failed.
    pub fn failing(&self) -> bool {
        self.file.failing
    }
}

/// The users of `WEB_BASIC_AUTH_FILE`, re-read when the file changes. No `Debug`: it holds
/// what clients send as their password.
pub struct WebUsers {
    /// What a client sends for each user, base64 of `user:password`; empty (nobody is let in)
    /// until the file is readable.
    file: Watched<Vec<String>>,
}

impl WebUsers {
    /// Reads the file now, and warns if every user of the host may read it.
    pub fn open(path: PathBuf) -> WebUsers {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
        if mode & 0o004 != 0 {
            log::warn!(
                "WEB_BASIC_AUTH_FILE: {} is readable by every user of this host; chmod o-r it",
                path.display()
            );
        }
        let file = match read_web_users(&path, "WEB_BASIC_AUTH_FILE") {
            Ok(users) => Watched::new(path, users),
            Err(_) => Watched::unread(path, Vec::new()),
        };
        WebUsers { file }
    }

    /// Re-reads the file if it changed (or the last read failed), and logs the outcome; a
    /// failed read keeps the users of the last good one.
    pub fn refresh(&mut self) {
        let had = !self.file.value.is_empty();
        match self
            .file
            .refresh(|path| read_web_users(path, "WEB_BASIC_AUTH_FILE"))
        {
            Refresh::Read { changed, recovered } if changed || recovered => {
                let count = self.file.value.len();
                log::info!(
                    "users reloaded from {} ({count} {})",
                    self.file.path.display(),
                    if count == 1 { "user" } else { "users" }
                );
            }
            Refresh::Failed(e) => {
                let kept = if had {
                    "the previous users stay in use"
                } else {
                    "no one is let in"
                };
                log::warn!("{e}; {kept} until the file can be read");
            }
            Refresh::Read { .. } | Refresh::Unchanged => {}
        }
    }

    /// What a client sends for each user: base64 of `user:password`.
    pub fn credentials(&self) -> &[String] {
        &self.file.value
    }
}

/// The mapping file: its last good mapping, re-read when it changes.
pub struct MappingFile {
    file: Watched<Mapping>,
}

impl MappingFile {
    /// The file at `path`, whose current version was read into `mapping` at start-up.
    pub fn new(path: PathBuf, mapping: Mapping) -> MappingFile {
        MappingFile {
            file: Watched::new(path, mapping),
        }
    }

    /// Re-reads the file if it changed (or the last read failed), and logs the outcome; returns
    /// the new mapping if it differs from the last. A broken file keeps the last good mapping.
    pub fn refresh(&mut self) -> Option<Mapping> {
        match self.file.refresh(read_mapping) {
            Refresh::Read { changed: true, .. } => {
                log::info!(
                    "mapping reloaded from {}: {} metrics",
                    self.file.path.display(),
                    self.file.value.metrics.len()
                );
                Some(self.file.value.clone())
            }
            Refresh::Failed(e) => {
                log::warn!("mapping not reloaded, the previous one stays in use: {e}");
                None
            }
            Refresh::Read { .. } | Refresh::Unchanged => None,
        }
    }

    /// The last read failed.
    pub fn failing(&self) -> bool {
        self.file.failing
    }
}

#[cfg(test)]
mod tests;
