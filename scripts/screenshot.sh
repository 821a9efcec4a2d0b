#!/usr/bin/env bash
# Makes docs/landing-page.png, the picture of the status page in the README: starts
# `status-exporter --demo` on a free loopback port, waits for some polls, and has Debian's
# headless Chromium (`apt-get install chromium`) take a screenshot of what a browser gets at /.
#
#   scripts/screenshot.sh                 # builds the release binary if needed
#   scripts/screenshot.sh OUT.png         # somewhere else
#   STATUS_EXPORTER=path/to/binary scripts/screenshot.sh
#
# Needs nothing but bash, the binary and chromium: the exporter is asked with bash's /dev/tcp.
# Everything it starts is stopped on exit, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-docs/landing-page.png}
case $out in /*) ;; *) out=$PWD/$out ;; esac # chromium needs an absolute path
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "screenshot.sh: chromium is not installed: apt-get install chromium" >&2
  exit 1
fi
binary=${STATUS_EXPORTER:-}
if [ -z "$binary" ]; then
  cargo build --release --quiet
  binary=target/release/status-exporter
fi

work=$(mktemp -d)
exporter=""
cleanup() {
  if [ -n "$exporter" ]; then
    kill "$exporter" 2>/dev/null || true
    wait "$exporter" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The log exists before the exporter starts (its redirection is made in the background).
: >"$work/log"
"$binary" --demo --exporter-port 0 --listen-address 127.0.0.1 \
  --polling-interval-seconds 0.25 2>"$work/log" &
exporter=$!

# The port, from the start-up line.
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$work/log")
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "screenshot.sh: the exporter did not start:" >&2
  cat "$work/log" >&2
  exit 1
fi

# The value of status_exporter_polls_total now.
polls() {
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
  sed -n 's/^status_exporter_polls_total \([0-9]*\)\r\{0,1\}$/\1/p' <&3
  exec 3<&-
}

# Enough polls for the picture of the recent polls to have bars.
for _ in $(seq 200); do
  n=$(polls)
  [ "${n:-0}" -ge 40 ] && break
  sleep 0.1
done

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --force-device-scale-factor=1 --user-data-dir="$work/chromium" \
  --window-size=820,1000 --screenshot="$out" "http://127.0.0.1:$port/" \
  >"$work/chromium.log" 2>&1 || {
  echo "screenshot.sh: chromium failed:" >&2
  cat "$work/chromium.log" >&2
  exit 1
}
if [ ! -s "$out" ]; then
  echo "screenshot.sh: chromium wrote no $out:" >&2
  cat "$work/chromium.log" >&2
  exit 1
fi
echo "screenshot.sh: wrote $out ($(stat -c %s "$out") bytes)"
