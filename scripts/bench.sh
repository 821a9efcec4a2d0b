#!/usr/bin/env bash
# Measures status-exporter against its performance budgets, on loopback, in bounded time
# (about a minute), and prints one line per figure:
#
#   binary size       release build (glibc) and the static musl build if scripts/build-static.sh ran
#   memory idle       VmRSS of a running exporter (--demo) after start-up
#   cpu idle          CPU time used over 10 s with nothing to do (polling interval 60 s)
#   scrapes           wrk on /metrics, 1 and 16 connections, 5 s each: requests/s and p99 latency
#   memory under load VmHWM (peak RSS) after 64 concurrent scraping connections for 5 s
#   1 MiB document    poll duration (fetch + parse + map, as status_exporter_poll_duration_seconds
#                     reports it) for a 1 MiB document with a 300-metric mapping
#
# STATUS_EXPORTER=path benchmarks that binary (e.g. the static one from scripts/build-static.sh)
# instead of a fresh `cargo build --release`.
#
# Needs: cargo, wrk, curl and python3 (Debian: wrk, curl, python3). Starts only its own processes
# and ends them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "bench.sh: wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ -n "${STATUS_EXPORTER:-}" ]; then
  bin=$STATUS_EXPORTER
else
  cargo build --release --quiet
  bin=target/release/status-exporter
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the exporter with the given arguments on a free port; sets $pid and $port.
start() {
  "$bin" --exporter-port 0 --listen-address 127.0.0.1 "$@" 2>"$work/stderr" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\);.*/\1/p' "$work/stderr")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "bench.sh: the exporter did not start:" >&2; cat "$work/stderr" >&2; exit 1; }
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && return
    sleep 0.05
  done
  echo "bench.sh: the exporter never got ready:" >&2; cat "$work/stderr" >&2; exit 1
}
status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.2f MiB", kb / 1024 }'; }

size=$(stat -c %s "$bin")
echo "binary size:       $size bytes ($(mib $((size / 1024)))): $bin (benchmarked below)"
for static in target/*-unknown-linux-musl*/release/status-exporter; do
  [ -f "$static" ] && echo "binary size:       $(stat -c %s "$static") bytes, static, $(echo "$static" | cut -d/ -f2)"
done

start --demo --polling-interval-seconds 60
sleep 2
echo "memory idle:       $(mib "$(status "$pid" VmRSS)") resident"
before=$(cpu_ticks "$pid")
sleep 10
after=$(cpu_ticks "$pid")
echo "cpu idle:          $((after - before)) ticks (1/$(getconf CLK_TCK) s) in 10 s between polls"

for connections in 1 16; do
  out=$(wrk -t 1 -c "$connections" -d 5s --latency "http://127.0.0.1:$port/metrics")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
  echo "scrapes:           $connections connection(s): $rps requests/s, p99 $p99${errors:+ ($errors)}"
done
wrk -t 2 -c 64 -d 5s "http://127.0.0.1:$port/metrics" >/dev/null
echo "memory under load: $(mib "$(status "$pid" VmHWM)") peak resident with 64 connections; $(status "$pid" Threads) threads after"
kill "$pid"

# A 1 MiB document, mapped twice: by 300 gauges at fixed places (the budget: a few hundred
# metrics), and by those plus `each` over an array of 9,000 objects (27,300 series: linear, not
# quadratic).
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
doc = {"items": [{"name": f"item{i}", "value": i * 1.5, "state": "ok" if i % 3 else "degraded",
                  "nested": {"a": i, "b": [1, 2, 3]}} for i in range(9000)],
       "stats": {f"s{i}": i for i in range(300)}}
with open(f"{work}/status", "w") as f:
    json.dump(doc, f)
metrics = [{"name": f"stat_{i}", "help": "A stat", "path": f"/stats/s{i}"} for i in range(300)]
with open(f"{work}/few.json", "w") as f:
    json.dump({"metrics": metrics}, f)
metrics.append({"name": "item_value", "help": "Item value", "each": "/items", "labels": {"item": "/name"}, "path": "/value"})
metrics.append({"name": "item_state", "help": "Item state", "type": "enum", "each": "/items", "labels": {"item": "/name"}, "path": "/state", "states": ["ok", "degraded"]})
with open(f"{work}/many.json", "w") as f:
    json.dump({"metrics": metrics}, f)
EOF
python3 -m http.server --bind 127.0.0.1 0 --directory "$work" >"$work/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  http_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/http.log" | head -1)
  [ -n "$http_port" ] && break
  sleep 0.05
done
for mapping in few many; do
  start --target-url "http://127.0.0.1:$http_port/status" --config-file "$work/$mapping.json" \
    --polling-interval-seconds 0.5 --target-max-bytes 4000000
  durations=()
  for _ in $(seq 10); do
    sleep 0.5
    durations+=("$(curl -s "http://127.0.0.1:$port/metrics" |
      awk '$1 == "status_exporter_poll_duration_seconds" { printf "%.1f", $2 * 1000 }')")
  done
  series=$(curl -s "http://127.0.0.1:$port/metrics" | grep -c '^item_\|^stat_')
  echo "1 MiB document:    $(stat -c %s "$work/status") bytes, $series series; poll ms, 10 polls sorted: $(printf '%s\n' "${durations[@]}" | sort -n | tr '\n' ' ')"
  echo "memory with it:    $(mib "$(status "$pid" VmHWM)") peak resident"
  kill "$pid"
done
echo "(poll time includes the fetch from python3's http.server on loopback)"
