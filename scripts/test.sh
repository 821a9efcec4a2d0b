#!/usr/bin/env bash
# Runs every test of status-exporter: installs what the tests need when it is missing (Debian
# packages, Rust targets), then `cargo test`. Safe to run again; needs root (or sudo) only when
# something is missing. The shipping tests (chroot) need root themselves. Extra arguments go to
# `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run, each with a command it provides: promtool and the Prometheus
# server (prometheus), qemu for the ARM binary (qemu-user-static), systemd-analyze (systemd),
# the openssl CLI for the HTTPS tests' private CA and TLS target (openssl).
packages=(prometheus qemu-user-static systemd openssl)
commands=(promtool qemu-aarch64-static systemd-analyze openssl)
missing=()
for i in "${!packages[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
# The OpenMetrics parser of the official Python client, which the property tests' format
# checker is validated against (src/properties.rs); Debian's system Python has it.
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
if ((${#missing[@]})); then
  echo "test.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The static builds (tests/it/ship.rs) link against the toolchain's own musl: no C toolchain
# for the targets is needed, only the Rust standard library for each.
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
installed=$(rustup target list --installed)
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$installed" || rustup target add "$target"
done

cargo test --locked "$@"

# The HTTPS build (a cargo feature): its own target directory, so the two builds do not replace
# each other's binary. Unit tests, the target's requests (TLS with a private CA) and the core
# behaviour; the rest does not depend on the feature.
CARGO_TARGET_DIR=target/https cargo test --locked --features https --bin status-exporter "$@"
CARGO_TARGET_DIR=target/https cargo test --locked --features https --test it -- target:: core:: "$@"
