#!/usr/bin/env bash
# Runs every test of status-exporter, on any machine with cargo and rustup: first installs what
# the tests use when it is missing (Debian packages with apt-get, Rust targets with rustup; root
# or sudo is needed only then), then runs each step below. A failed step does not stop the
# others: the script ends with a summary of every step and exits non-zero if any failed, so one
# run shows every failure. Safe to run again. Extra arguments go to every `cargo test` (a test
# name filter, for example).
#
# Steps:
#   install         the Debian packages and Rust targets below
#   unit+it         `cargo test`: unit tests and tests/it (what a contributor runs, no tools)
#   external        `cargo test --test external`: Prometheus, promtool, the Python client, the
#                   static musl builds, qemu, chroot, systemd-analyze (needs root for chroot),
#                   htpasswd, headless Chromium
#   https unit+it   the `https` build: unit tests, and the core and target tests of tests/it
#   https external  the `https` build: the HTTPS targets of tests/external (openssl)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

# Debian packages the tests use, each with a command it provides (checked to see whether the
# package is there):
#   prometheus                 promtool and the Prometheus server (tests/external/prometheus.rs)
#   qemu-user-static           runs the aarch64 binary (tests/external/ship.rs)
#   systemd                    systemd-analyze verify of the units (tests/external/ship.rs)
#   openssl                    a private CA and a TLS target (tests/external/tls.rs)
#   musl-tools                 x86_64-linux-musl-gcc: aws-lc's C code in the static HTTPS build
#   python3-prometheus-client  the Python client's OpenMetrics parser (tests/external/formats.rs)
#   coreutils                  chroot and env (tests/external)
#   apache2-utils              htpasswd -B: bcrypt users files (tests/external/operating.rs)
#   chromium                   headless screenshots of the status page (scripts/screenshot.sh)
packages=(prometheus qemu-user-static systemd openssl musl-tools python3-prometheus-client coreutils
  apache2-utils chromium)
checks=(
  "command -v promtool && command -v prometheus"
  "command -v qemu-aarch64-static"
  "command -v systemd-analyze"
  "command -v openssl"
  "command -v x86_64-linux-musl-gcc"
  "/usr/bin/python3 -c 'import prometheus_client'"
  "PATH=\$PATH:/usr/sbin:/sbin command -v chroot"
  "command -v htpasswd"
  "command -v chromium"
)
# Rust standard libraries for the static builds (tests/external/ship.rs).
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

declare -a step_names=() step_results=()
failed=0

# Runs one step: its name, then the command. Records ok or FAILED with the time it took.
step() {
  local name=$1
  shift
  echo
  echo "=== test.sh: $name: $*" >&2
  local started=$SECONDS status
  "$@"
  status=$?
  local took=$((SECONDS - started))
  step_names+=("$name")
  if ((status == 0)); then
    step_results+=("ok        ${took}s")
  else
    step_results+=("FAILED    ${took}s (exit $status)")
    failed=1
  fi
}

install() {
  local missing=() i
  for i in "${!packages[@]}"; do
    bash -c "${checks[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
  done
  if ((${#missing[@]})); then
    echo "test.sh: installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || return 1
  fi
  local installed target
  installed=$(rustup target list --installed) || return 1
  for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target" || return 1
  done
}

# `cargo test` with these arguments, failing also when no test ran at all (a filter that
# matches nothing, a module left out of a build), unless the caller gave a filter of its own.
tests() {
  local log status
  log=$(mktemp)
  cargo test --locked "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  if ((status == 0 && ${#extra[@]} == 0)); then
    local passed
    passed=$(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$log")
    if ((passed == 0)); then
      echo "test.sh: no test ran: cargo test $*" >&2
      status=1
    fi
  fi
  rm -f "$log"
  return "$status"
}

extra=("$@")

# The HTTPS build has its own target directory, so that the two builds do not replace each
# other's binary.
https_unit_it() {
  CARGO_TARGET_DIR=target/https tests --features https --lib --bins "${extra[@]}" &&
    CARGO_TARGET_DIR=target/https tests --features https --test it -- core:: target:: "${extra[@]}"
}
https_external() {
  CARGO_TARGET_DIR=target/https tests --features https --test external -- tls:: "${extra[@]}"
}

step install install
step "unit+it" tests "${extra[@]}"
step external tests --test external "${extra[@]}"
step "https unit+it" https_unit_it
step "https external" https_external

echo
echo "test.sh: summary"
for i in "${!step_names[@]}"; do
  printf '  %-16s %s\n' "${step_names[$i]}" "${step_results[$i]}"
done
if ((failed)); then
  echo "test.sh: FAILED" >&2
  exit 1
fi
echo "test.sh: all steps passed"
