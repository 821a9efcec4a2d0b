//! The files read again at run time: the target's credentials file, the users file of
//! `WEB_BASIC_AUTH_FILE`, and the mapping file.
//!
//! Owns each file's format and its one reader ([`read_credentials`], [`read_web_users`],
//! [`read_mapping`]), used alike by the settings' check at start-up, by `--check-config`, and
//! by the reloads; [`Auth`], where the target's credentials are kept; [`FileError`]; for each
//! file, the reload and its log lines ([`Credentials`], [`WebUsers`], [`MappingFile`]; when a
//! file is read again by itself is `watch.rs`'s); and [`Files`], all of them together, shared
//! by the poller, the server and the reloads that an operator asks for ([`Files::reload`]:
//! SIGHUP and `POST /-/reload`). The users' check is here too ([`WebUsers::check`]: the
//! passwords' format is `password.rs`'s), with its cache of successful checks, dropped whenever
//! the file changes. No secret reaches a message. Knows nothing about the request, the schedule
//! of polls or HTTP.
//!
//! Every one of them is read by [`read_file`]: only a regular file, opened without waiting (a
//! FIFO would block the open until a writer came), and never more than its limit
//! ([`MAX_SECRET_BYTES`], [`MAX_USERS_BYTES`], [`MAX_MAPPING_BYTES`]), so that a FIFO, a device
//! such as `/dev/zero` or a huge file put in its place is refused, at start-up and at a reload
//! alike, instead of hanging the reader or filling the memory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::log;
use crate::mapping::{self, Mapping};
use crate::password::{self, Hash, Stored};
use crate::probe::{self, Modules};
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
        // Non-blocking, so that opening a FIFO returns at once.
        .custom_flags(libc::O_NONBLOCK)
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
        problem: String,
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
    let invalid = |problem: &str| FileError::Invalid {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        line: None,
        problem: problem.to_string(),
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

/// The users of `WEB_BASIC_AUTH_FILE`, as its lines give them. No `Debug`: it holds
/// passwords and their hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct Users {
    /// Each user's name and stored password, in file order. A user may be listed more than
    /// once, so that a new password can be added before the old one is removed.
    pub list: Vec<(Vec<u8>, Stored)>,
    /// The lines (from 1) that hold a password in plain text rather than a bcrypt hash.
    pub plain_lines: Vec<usize>,
}

impl Users {
    /// The highest cost of the bcrypt hashes, None if every password is in plain text.
    fn bcrypt_cost(&self) -> Option<u32> {
        self.list
            .iter()
            .filter_map(|(_, stored)| match stored {
                Stored::Bcrypt(hash) => Some(hash.cost),
                Stored::Plain(_) => None,
            })
            .max()
    }

    /// How the users are stored, for the log and `--check-config`: `2 users (1 bcrypt, 1 plain
    /// text: line 3)`.
    pub fn describe(&self) -> String {
        let count = self.list.len();
        let noun = if count == 1 { "user" } else { "users" };
        let plain = self.plain_lines.len();
        if plain == 0 {
            return format!("{count} {noun}, bcrypt");
        }
        let lines = lines(&self.plain_lines);
        if plain == count {
            return format!("{count} {noun}, plain text: {lines}");
        }
        format!(
            "{count} {noun}, {} bcrypt, {plain} plain text: {lines}",
            count - plain
        )
    }
}

/// `line 3`, `lines 1, 3`, or the first ten and how many more.
fn lines(numbers: &[usize]) -> String {
    const SHOWN: usize = 10;
    let list: Vec<String> = numbers.iter().take(SHOWN).map(usize::to_string).collect();
    let noun = if numbers.len() == 1 { "line" } else { "lines" };
    let more = match numbers.len().saturating_sub(SHOWN) {
        0 => String::new(),
        more => format!(" and {more} more"),
    };
    format!("{noun} {}{more}", list.join(", "))
}

/// Reads the users of `WEB_BASIC_AUTH_FILE`. One user per line, `user:password` or
/// `user:HASH` as `htpasswd -B` writes it (`$2y$`, `$2b$` or `$2a$`, cost at most
/// [`password::MAX_COST`]), split at the first colon: the password is the rest of the line
/// (colons and spaces included, a final `\r` not). Empty lines and lines starting with `#` are
/// skipped. Hashes of other kinds (`htpasswd`'s MD5 and SHA-1, crypt's `$5$` and `$6$`) are
/// refused rather than taken for plain-text passwords. `setting` names the file's setting in
/// messages, which never show a password or a hash.
pub fn read_web_users(path: &Path, setting: &str) -> Result<Users, FileError> {
    let invalid = |line, problem: String| FileError::Invalid {
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
    let mut users = Users {
        list: Vec::new(),
        plain_lines: Vec::new(),
    };
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.starts_with(b"#") {
            continue;
        }
        let at = |problem: &str| invalid(Some(index + 1), problem.to_string());
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
        let other_hash = ["$apr1$", "$1$", "$5$", "$6$", "{SHA}"]
            .iter()
            .any(|prefix| password.starts_with(prefix.as_bytes()));
        if other_hash {
            return Err(at(
                "a password hash of a kind not supported (MD5, SHA); hash it with htpasswd -B \
                 (bcrypt)",
            ));
        }
        let stored = if Hash::looks_like(password) {
            Stored::Bcrypt(
                Hash::parse(password).map_err(|e| invalid(Some(index + 1), e.to_string()))?,
            )
        } else {
            users.plain_lines.push(index + 1);
            Stored::Plain(password.to_vec())
        };
        users.list.push((user.to_vec(), stored));
    }
    if users.list.is_empty() {
        return Err(invalid(
            None,
            "has no user; add a line user:password".into(),
        ));
    }
    Ok(users)
}

/// What the mapping file (CONFIG_FILE) holds: the metrics of `/metrics` and the modules of
/// `/probe`.
pub type Loaded = (Mapping, Arc<Modules>);

/// Reads and validates a mapping file: its metrics (the format is `mapping.rs`'s) and its
/// modules (`probe/module.rs`'s), with the files the modules name.
pub fn read_mapping(path: &Path) -> Result<Loaded, FileError> {
    let unreadable = |error| FileError::MappingUnreadable {
        path: path.to_path_buf(),
        error,
    };
    let bytes = read_file(path, MAX_MAPPING_BYTES).map_err(unreadable)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| unreadable("it is not UTF-8 text; write the mapping as JSON".into()))?;
    let invalid = |error| FileError::Mapping {
        path: path.to_path_buf(),
        error,
    };
    // Parsed once, for the metrics and the modules: a large mapping's JSON takes seconds.
    let root = serde_json::from_str(&text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let mapping = mapping::parse_value(&root).map_err(invalid)?;
    let modules = probe::parse(&root, path.parent().unwrap_or(Path::new("."))).map_err(invalid)?;
    Ok((mapping, modules))
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

/// Decodes standard base64 with padding (RFC 4648, section 4), as clients send basic auth;
/// None for anything else (another alphabet, missing padding, bits left over).
fn unbase64(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let chunks = text.len() / 4;
    for (i, chunk) in text.chunks(4).enumerate() {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * padding as u32;
        let bytes = n.to_be_bytes();
        let len = 3 - padding;
        // The bits past the last byte must be zero: one spelling per value.
        if bytes[1 + len..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..1 + len]);
    }
    Some(out)
}

/// Locks `mutex`, whose value stays whole even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
        let auth = &self.auth;
        match self
            .file
            .refresh(|_| read_credentials(auth, auth.setting()).map(Some))
        {
            Refresh::Read { changed, recovered } if changed || recovered => {
                log::info!("{}", self.line(&Ok(true)))
            }
            Refresh::Failed(e) => log::warn!("{}", self.line(&Err(e))),
            Refresh::Read { .. } | Refresh::Unchanged => {}
        }
    }

    /// Reads the file now, whatever its age; a failed read keeps the last good value.
    pub fn reload(&mut self) -> Reloaded {
        let had = self.file.value.is_some();
        let auth = &self.auth;
        let outcome = self
            .file
            .reload(|_| read_credentials(auth, auth.setting()).map(Some));
        Reloaded {
            line: self.line_after(&outcome, had),
            failed: outcome.is_err(),
            changed: matches!(outcome, Ok(true)),
        }
    }

    /// What a read's `outcome` is told as: the file reloaded or unchanged, or the error and what
    /// stays in use.
    fn line(&self, outcome: &Result<bool, FileError>) -> String {
        self.line_after(outcome, self.file.value.is_some())
    }

    fn line_after(&self, outcome: &Result<bool, FileError>, had: bool) -> String {
        let path = self.file.path.display();
        match outcome {
            Ok(true) => format!("credentials reloaded from {path}"),
            Ok(false) => format!("credentials unchanged in {path}"),
            Err(e) if had => {
                format!("{e}; the previous credentials stay in use until the file can be read")
            }
            Err(e) => format!("{e}; requests go without credentials until the file can be read"),
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

/// The most successful checks remembered ([`WebUsers::check`]): a few scrapers, each with its
/// own credentials, and a person with a browser.
const MAX_PASSED: usize = 16;

/// The users of `WEB_BASIC_AUTH_FILE`, re-read when the file changes, and the check of a
/// client's credentials against them. No `Debug`: it holds passwords and their hashes.
pub struct WebUsers {
    state: Mutex<UsersState>,
}

struct UsersState {
    /// The users; none (nobody is let in) until the file is readable.
    file: Watched<Users>,
    /// The credentials (base64 of `user:password`, as sent) of recent successful checks, at
    /// most [`MAX_PASSED`], oldest first: a scrape that sends them again is let in without
    /// running bcrypt again. Emptied whenever the users change.
    passed: Vec<String>,
    /// Counts the changes of the users, so that a check that ran while they changed is not
    /// remembered.
    version: u64,
}

impl WebUsers {
    /// Reads the file now, warns if every user of the host may read it, and names the lines
    /// that hold a password in plain text.
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
            Ok(users) => {
                warn_plain(&path, &users);
                Watched::new(path, users)
            }
            Err(_) => Watched::unread(
                path,
                Users {
                    list: Vec::new(),
                    plain_lines: Vec::new(),
                },
            ),
        };
        WebUsers {
            state: Mutex::new(UsersState {
                file,
                passed: Vec::new(),
                version: 0,
            }),
        }
    }

    /// Re-reads the file if it changed (or the last read failed), and logs the outcome; a
    /// failed read keeps the users of the last good one.
    pub fn refresh(&self) {
        let mut state = lock(&self.state);
        let had = !state.file.value.list.is_empty();
        let outcome = match state
            .file
            .refresh(|path| read_web_users(path, "WEB_BASIC_AUTH_FILE"))
        {
            Refresh::Read { changed, recovered } if changed || recovered => Ok(true),
            Refresh::Failed(e) => Err(e),
            Refresh::Read { .. } | Refresh::Unchanged => return,
        };
        state.after_read(&outcome);
        let line = state.line(&outcome, had);
        match outcome {
            Ok(_) => log::info!("{line}"),
            Err(_) => log::warn!("{line}"),
        }
    }

    /// Reads the file now, whatever its age; a failed read keeps the users of the last good one.
    pub fn reload(&self) -> Reloaded {
        let mut state = lock(&self.state);
        let had = !state.file.value.list.is_empty();
        let outcome = state
            .file
            .reload(|path| read_web_users(path, "WEB_BASIC_AUTH_FILE"));
        state.after_read(&outcome);
        Reloaded {
            line: state.line(&outcome, had),
            failed: outcome.is_err(),
            changed: matches!(outcome, Ok(true)),
        }
    }

    /// Whether `credentials` (what a client sends after `Basic `: base64 of `user:password`)
    /// name a user of the file with the right password. The file is brought up to date first.
    ///
    /// Every check that is not remembered costs the same, whoever asks: one bcrypt of the
    /// user's cost for a user with a hash (right or wrong password), and one of the file's
    /// highest cost for a user who does not exist or whose password is in plain text (when the
    /// file holds any hash at all; a file of plain-text passwords needs no bcrypt). bcrypt runs
    /// without holding the users, so that the remembered scrapes are not kept waiting.
    pub fn check(&self, credentials: &str) -> bool {
        let (candidates, version) = {
            self.refresh();
            let state = lock(&self.state);
            let mut remembered = false;
            for passed in &state.passed {
                remembered |= password::equal(credentials.as_bytes(), passed.as_bytes());
            }
            if remembered {
                return true;
            }
            let Some(pair) = unbase64(credentials.as_bytes()) else {
                return false;
            };
            let Some(colon) = pair.iter().position(|&b| b == b':') else {
                return false;
            };
            let (user, given) = (&pair[..colon], &pair[colon + 1..]);
            // Every entry is looked at, whichever matches.
            let mut candidates: Vec<Stored> = Vec::new();
            for (name, stored) in &state.file.value.list {
                if password::equal(user, name) {
                    candidates.push(stored.clone());
                }
            }
            let hashed = candidates.iter().any(|c| matches!(c, Stored::Bcrypt(_)));
            if let (false, Some(cost)) = (hashed, state.file.value.bcrypt_cost()) {
                candidates.push(Stored::Bcrypt(Hash::dummy(cost)));
            }
            ((candidates, given.to_vec()), state.version)
        };
        let (candidates, given) = candidates;
        let mut ok = false;
        for stored in &candidates {
            ok |= stored.matches(&given);
        }
        if ok {
            let mut state = lock(&self.state);
            if state.version == version {
                if state.passed.len() >= MAX_PASSED {
                    state.passed.remove(0);
                }
                state.passed.push(credentials.to_string());
            }
        }
        ok
    }

    /// How many users there are; 0 until the file can be read.
    pub fn count(&self) -> usize {
        lock(&self.state).file.value.list.len()
    }
}

/// Warns, once per version of the users file read, about the lines that hold a password in plain
/// text (never the passwords).
fn warn_plain(path: &Path, users: &Users) {
    if !users.plain_lines.is_empty() {
        log::warn!(
            "WEB_BASIC_AUTH_FILE: {}: {} {} a password in plain text; store bcrypt hashes \
             instead (htpasswd -B)",
            path.display(),
            lines(&users.plain_lines),
            if users.plain_lines.len() == 1 {
                "holds"
            } else {
                "hold"
            }
        );
    }
}

impl UsersState {
    /// After a read: a new version of the users forgets the remembered checks, and its
    /// plain-text passwords are named.
    fn after_read(&mut self, outcome: &Result<bool, FileError>) {
        if let Ok(true) = outcome {
            self.passed.clear();
            self.version += 1;
            warn_plain(&self.file.path, &self.file.value);
        }
    }

    fn line(&self, outcome: &Result<bool, FileError>, had: bool) -> String {
        let path = self.file.path.display();
        match outcome {
            Ok(true) => format!(
                "users reloaded from {path} ({})",
                self.file.value.describe()
            ),
            Ok(false) => format!("users unchanged in {path} ({})", self.file.value.describe()),
            Err(e) if had => {
                format!("{e}; the previous users stay in use until the file can be read")
            }
            Err(e) => format!("{e}; no one is let in until the file can be read"),
        }
    }
}

/// The mapping file: its last good mapping and modules, re-read when it changes.
pub struct MappingFile {
    file: Watched<Loaded>,
    /// The mapping changed since the poller last took it ([`MappingFile::take_new`]).
    new: bool,
}

impl MappingFile {
    /// The file at `path`, whose current version was read into `mapping` at start-up.
    pub fn new(path: PathBuf, mapping: Loaded) -> MappingFile {
        MappingFile {
            file: Watched::new(path, mapping),
            new: false,
        }
    }

    /// Re-reads the file if it changed (or the last read failed), and logs the outcome. A broken
    /// file keeps the last good mapping.
    pub fn refresh(&mut self) {
        match self.file.refresh(read_mapping) {
            Refresh::Read { changed: true, .. } => {
                self.new = true;
                log::info!("{}", self.line(&Ok(true)));
            }
            Refresh::Failed(e) => log::warn!("{}", self.line(&Err(e))),
            Refresh::Read { .. } | Refresh::Unchanged => {}
        }
    }

    /// Reads the file now, whatever its age. A broken file keeps the last good mapping.
    pub fn reload(&mut self) -> Reloaded {
        let outcome = self.file.reload(read_mapping);
        self.new |= matches!(outcome, Ok(true));
        Reloaded {
            line: self.line(&outcome),
            failed: outcome.is_err(),
            changed: matches!(outcome, Ok(true)),
        }
    }

    fn line(&self, outcome: &Result<bool, FileError>) -> String {
        let path = self.file.path.display();
        let mut count = format!("{} metrics", self.file.value.0.metrics.len());
        let modules = self.file.value.1.list.len();
        if modules > 0 {
            count += &format!(", {modules} modules");
        }
        match outcome {
            Ok(true) => format!("mapping reloaded from {path}: {count}"),
            Ok(false) => format!("mapping unchanged in {path}: {count}"),
            Err(e) => format!("mapping not reloaded, the previous one stays in use: {e}"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The mapping, if it changed since the last call.
    pub fn take_new(&mut self) -> Option<Mapping> {
        std::mem::take(&mut self.new).then(|| self.file.value.0.clone())
    }

    /// The modules of `/probe` in use.
    pub fn modules(&self) -> Arc<Modules> {
        Arc::clone(&self.file.value.1)
    }

    /// The last read failed.
    pub fn failing(&self) -> bool {
        self.file.failing
    }
}

/// What reading one file at an operator's request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// The log line: reloaded (with what it holds now), unchanged, or the error.
    pub line: String,
    /// The file could not be read or is invalid: the previous version stays in use.
    pub failed: bool,
    /// The file now holds something else than before.
    pub changed: bool,
}

/// Every file read at run time, shared by the poller (the mapping and the credentials), the
/// server (the users) and the reloads an operator asks for. Each file has its own lock, held
/// while it is read and while its value is looked at, never during a poll or a bcrypt check.
pub struct Files {
    pub mapping: Option<Mutex<MappingFile>>,
    pub credentials: Option<Mutex<Credentials>>,
    pub users: Option<WebUsers>,
    /// Set by a reload that changed what the poller uses, until the poller wakes.
    changed: Mutex<bool>,
    wake: Condvar,
}

impl Files {
    /// The files the settings name: the mapping file with the mapping read from it at start-up,
    /// the target's credentials and the users of `WEB_BASIC_AUTH_FILE` (both read now).
    pub fn open(
        mapping: Option<(PathBuf, Loaded)>,
        credentials: Option<Auth>,
        users: Option<PathBuf>,
    ) -> Files {
        Files {
            mapping: mapping.map(|(path, mapping)| Mutex::new(MappingFile::new(path, mapping))),
            credentials: credentials.map(|auth| Mutex::new(Credentials::open(auth))),
            users: users.map(WebUsers::open),
            changed: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Reads every file now, whatever its age, as `trigger` (SIGHUP, ...) asks; logs one line per
    /// file, `trigger: ...`, and returns them. A file that cannot be read, or is invalid, keeps
    /// its previous version. A mapping or credentials file that changed, or failed, wakes the
    /// poller ([`Files::sleep_until`]), so that the next scrape shows the change.
    pub fn reload(&self, trigger: &str) -> Vec<Reloaded> {
        let mut done = Vec::new();
        if let Some(mapping) = &self.mapping {
            done.push(lock(mapping).reload());
        }
        if let Some(credentials) = &self.credentials {
            done.push(lock(credentials).reload());
        }
        // Changed, or now failing: the next poll shows it (in the metrics, the status page).
        let for_poller = done.iter().any(|r| r.changed || r.failed);
        if let Some(users) = &self.users {
            done.push(users.reload());
        }
        for reloaded in &done {
            if reloaded.failed {
                log::warn!("{trigger}: {}", reloaded.line);
            } else {
                log::info!("{trigger}: {}", reloaded.line);
            }
        }
        if done.is_empty() {
            log::info!("{trigger}: no file to reload (no CONFIG_FILE, credentials file or WEB_BASIC_AUTH_FILE)");
        }
        if for_poller {
            *lock(&self.changed) = true;
            self.wake.notify_all();
        }
        done
    }

    /// Sleeps until `deadline`, or less if a reload changes what the poller uses; returns true
    /// in that case.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        let mut changed = lock(&self.changed);
        loop {
            if std::mem::take(&mut *changed) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            changed = self
                .wake
                .wait_timeout(changed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests;
