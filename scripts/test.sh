#!/usr/bin/env bash
# Runs every test of status-exporter: installs what the tests need when it is missing (Debian
# packages, Rust targets), then `cargo test`. Safe to run again; needs root (or sudo) only when
# something is missing. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run: promtool and the Prometheus server (prometheus).
packages=(prometheus)
commands=(promtool)
missing=()
for i in "${!packages[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done
if ((${#missing[@]})); then
  echo "test.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo test --locked "$@"
