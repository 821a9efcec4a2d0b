//! Logging: one line per event on stderr, no timestamps (journald and container runtimes add
//! them). A level word starts each line so that `journalctl | grep` works. Knows nothing else.
//!
//! What is logged, and what is not: start-up (version, effective settings, listen address),
//! poll state transitions, mapping changes and fatal errors; never one line per scrape or per
//! failed poll.
//!
//! The macros are exported at the crate root under hidden names so that the binary can use
//! them too; call them as `log::info!`, `log::warn!` and `log::error!`.

/// Logs an event worth an operator's attention in normal operation.
#[doc(hidden)]
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { eprintln!("info: {}", format_args!($($arg)*)) };
}

/// Logs a problem the exporter survives (the target failing, a broken mapping file).
#[doc(hidden)]
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { eprintln!("warn: {}", format_args!($($arg)*)) };
}

/// Logs the error that ends the process.
#[doc(hidden)]
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { eprintln!("error: {}", format_args!($($arg)*)) };
}

pub use crate::{log_error as error, log_info as info, log_warn as warn};
