//! Logging: one line per event on stderr, no timestamps (journald and container runtimes add
//! them). A level word starts each line so that `journalctl | grep` works. Knows nothing else.
//!
//! What is logged, and what is not: start-up (version, effective settings, listen address),
//! poll state transitions, mapping changes and fatal errors; never one line per scrape or per
//! failed poll.
//!
//! Logging never fails and never panics: each line is formatted first, then handed to stderr
//! in one `write_all` whose error is ignored. `eprintln!` panics when stderr is a pipe whose
//! reader has gone (a log collector that exited, a closed terminal), which would kill whatever
//! thread logged; a line that cannot be written is lost instead.
//!
//! Text that comes from outside (the target's `Location`, a certificate's names, a document's
//! object keys) goes through [`escape`] before it reaches a line, so that it can neither move the
//! terminal nor start a line of its own.
//!
//! The macros are exported at the crate root under hidden names so that the binary can use
//! them too; call them as `log::info!`, `log::warn!` and `log::error!`.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

/// Writes `level: message` and a line break to stderr as one write, ignoring any error.
pub fn write(level: &str, message: fmt::Arguments) {
    let line = format!("{level}: {message}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs an event worth an operator's attention in normal operation.
#[doc(hidden)]
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log::write("info", format_args!($($arg)*)) };
}

/// Logs a problem the exporter survives (the target failing, a broken mapping file).
#[doc(hidden)]
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::log::write("warn", format_args!($($arg)*)) };
}

/// Logs the error that ends the process.
#[doc(hidden)]
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log::write("error", format_args!($($arg)*)) };
}

pub use crate::{log_error as error, log_info as info, log_warn as warn};

/// `text` made safe for one log line: control characters (C0, DEL, C1: line breaks, terminal
/// escape sequences) and the Unicode marks that reorder text on screen become Rust-style
/// escapes (`\n`, `\r`, `\t`, `\u{1b}`), and a backslash becomes `\\`, so that the line
/// reads back unambiguously. Borrows when there is nothing to escape, which is almost always.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // Bidirectional marks, embeddings, overrides and isolates: U+200E, U+200F, U+202A-U+202E,
    // U+2066-U+2069.
    let reorders =
        matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    c == '\\' || c.is_control() || reorders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_text_on_one_inert_line() {
        fn check(input: &str, expected: &str) {
            let got = escape(input);
            assert_eq!(got, expected, "{input:?}");
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                input == expected,
                "{input:?}"
            );
        }
        check("", "");
        check("http://app:8000/status?x=1", "http://app:8000/status?x=1");
        check("grüße, 指标", "grüße, 指标");
        check("/a\nwarn: forged", "/a\\nwarn: forged");
        check("/a\r\nb\tc", "/a\\r\\nb\\tc");
        check("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m");
        check("nul\0 del\u{7f} c1\u{9b}", "nul\\u{0} del\\u{7f} c1\\u{9b}");
        check("a\\nb", "a\\\\nb");
        check("abc\u{202e}fed", "abc\\u{202e}fed");
    }
}
