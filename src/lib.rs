//! status-exporter: polls a JSON status page and serves its values as Prometheus metrics.
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that the integration tests
//! and the property tests under `tests/` can call the same functions the binary runs. The
//! modules, what each owns and what each must not know, are listed in ARCHITECTURE.md.

pub mod client;
pub mod commands;
pub mod config;
pub mod demo;
pub mod exposition;
pub mod files;
pub mod gzip;
pub mod http;
pub mod log;
pub mod mapping;
pub mod own_metrics;
pub mod page;
pub mod password;
pub mod poll;
pub mod probe;
pub mod process;
pub mod rng;
pub mod server;
pub mod signals;
pub mod snapshot;
pub mod target;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod watch;
