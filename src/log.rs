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
//! The macros are exported at the crate root under hidden names so that the binary can use
//! them too; call them as `log::info!`, `log::warn!` and `log::error!`.

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
