//! Integration tests: the real binary against real HTTP targets on 127.0.0.1, checked with
//! real Prometheus tools. See `harness.rs` for how the parts are started.

mod core;
mod hardening;
mod harness;
mod mapping;
mod prometheus;
mod ship;
mod target;
