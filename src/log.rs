//! Logging: one line per event on stderr, no timestamps (journald and container runtimes add
//! them). A level word starts each line so that `journalctl | grep` works. Knows nothing else.
//!
//! What is logged, and what is not: start-up (version, effective settings, listen address),
//! poll state transitions, mapping changes and fatal errors; never one line per scrape or per
//! failed poll.

/// Logs an event worth an operator's attention in normal operation.
macro_rules! info {
    ($($arg:tt)*) => { eprintln!("info: {}", format_args!($($arg)*)) };
}

/// Logs a problem the exporter survives (the target failing, a broken mapping file).
macro_rules! warning {
    ($($arg:tt)*) => { eprintln!("warn: {}", format_args!($($arg)*)) };
}

/// Logs the error that ends the process.
macro_rules! error {
    ($($arg:tt)*) => { eprintln!("error: {}", format_args!($($arg)*)) };
}

pub(crate) use {error, info, warning as warn};
