//! Integration tests: the real binary against real HTTP targets on 127.0.0.1, property tests
//! of the library, and the documentation checked against the program (`docs.rs`). Nothing here
//! needs a tool from outside Rust, root or the network beyond loopback: a plain `cargo test`
//! runs them. The tests that need Prometheus, promtool, the Python client, openssl, qemu, chroot
//! or the static builds are in `tests/external`. See `tests/harness` for how the parts are
//! started.

#[path = "../harness/mod.rs"]
mod harness;

mod client;
mod core;
// The documentation shows the plain build (its answer to an https:// URL, for one).
#[cfg(not(feature = "https"))]
mod docs;
mod hardening;
mod mapping;
mod operating;
mod probe;
mod properties;
mod serving;
mod ship;
mod target;
