//! The tests that need tools from outside Rust: the real Prometheus server and promtool
//! (`prometheus.rs`; `probe.rs`: 50 targets over two exporters through `/probe`), the OpenMetrics parser of the Python client (`formats.rs`), `htpasswd` and
//! headless Chromium (`operating.rs`), the static musl builds, qemu, chroot and systemd-analyze
//! (`ship.rs`), BusyBox, shellcheck and OpenRC for the init scripts of hosts without systemd
//! (`init.rs`), a Docker daemon and Compose (`container.rs`), and, in the build with the
//! `https` feature, the openssl CLI (`tls.rs`). A plain `cargo test` does not run them;
//! `scripts/test.sh` installs the tools and runs them with `cargo test --test external`. A
//! missing tool fails its test with the command that installs it: nothing here skips.

#[path = "../harness/mod.rs"]
mod harness;

mod container;
mod formats;
mod init;
mod operating;
mod probe;
mod prometheus;
mod ship;
#[cfg(feature = "https")]
mod tls;
