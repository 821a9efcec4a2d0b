#!/usr/bin/env bash
# Measures status-exporter against its performance budgets (docs/performance.md), on loopback,
# in bounded time (about a minute), prints one line per figure, and writes them all to one
# generated file, docs/measurements.md, with the machine, the date and the commit. The docs link
# to that file instead of typing figures into prose; commit it with the change that moved them.
#
#   binary size       the benchmarked binary, and the static builds of scripts/build-static.sh
#                     that exist under target/ (with the time each was built)
#   memory idle       VmRSS of a running exporter (--demo) after start-up
#   cpu idle          CPU time used over 10 s with nothing to do (polling interval 60 s)
#   scrapes           wrk on /metrics, 1 connection (wrk -t1 -c1) and 16 (wrk -t2 -c16), 5 s
#                     each, requests/s and p99 latency, side by side with scripts/bench/same_bytes.rs
#                     (a minimal std-only server that sends the same bytes from memory, built here
#                     with rustc) and the ratio of the two; the servers pinned to CPU 0, wrk to
#                     CPU 1 (taskset)
#   memory under load VmHWM (peak RSS) after 64 concurrent scraping connections for 5 s
#   probes            /probe of a local target through a module (the tutorial mapping): with 1
#                     connection, probes/s and p99 beside the target's own p99 measured alone in
#                     the same run (and the difference); with 16 connections over 128 target
#                     URLs, probes/s (wrk, 5 s each)
#   1 MiB document    poll duration (fetch + parse + map, as status_exporter_poll_duration_seconds
#                     reports it; the document served from memory by same_bytes) for a 1 MiB
#                     document with a 300-metric mapping, and with those
#                     plus `each` over 9,000 objects (27,300 series); peak RSS for each; for the
#                     27,300 series, the bytes of a scrape on the wire with and without gzip, and
#                     what compressing the snapshot costs each poll (scripts/bench/gzip_cost.rs);
#                     and what mapping the 27,300 series alone costs, in a loop in the same run
#                     (scripts/bench/map_cost.rs, built for the benchmarked binary's target)
#   scale curve       documents giving 300, 3,000, 30,000 and 300,000 series, each polled: the
#                     poll duration (fetch, parse, map), the CPU time per poll of the whole process
#                     (everything a poll costs: fetch, parse, map, render both formats, compress),
#                     the peak RSS and the exposition's size; the cost should grow linearly
#
# Settings, from the environment:
#   STATUS_EXPORTER   the binary to benchmark (e.g. the static one from scripts/build-static.sh);
#                     default: target/release/status-exporter after `cargo build --release`
#   MEASUREMENTS      the file to write; default: docs/measurements.md
#   BENCH_NOTE        a sentence about the machine's load during the run, for the file's header
#
# Needs: cargo, rustc, wrk, curl, taskset and python3 (Debian: apt-get install wrk curl
# util-linux python3). Starts only its own processes and ends them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in wrk curl python3 taskset rustc; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is missing: apt-get install $tool" >&2; exit 1; }
done
out_file=${MEASUREMENTS:-docs/measurements.md}
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

# Starts the exporter with the given arguments on a free port, on CPU 0 (wrk runs on CPU 1);
# sets $pid and $port.
start() {
  # Emptied first: the redirection below is made in the background, and the last exporter's
  # start-up line must not be read for this one's.
  : >"$work/stderr"
  port=""
  taskset -c 0 "$bin" --exporter-port 0 --listen-address 127.0.0.1 "$@" 2>"$work/stderr" &
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
# 1234567 -> 1,234,567
grouped() { echo "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }

# The rows of the generated file's tables, collected as the figures come.
size_rows=()
budget_rows=()
scrape_rows=()
document_rows=()
wire_rows=()
# The scale curve (issue 16, item 2) is measured by scale_curve below, which fills these rows
# (one per document).
scale_rows=()
# /probe (issue 13, item 7), filled by probe_bench below.
probe_rows=()

# The scale curve: documents whose `each` gives 300 to 300,000 series (a third of them
# `item_value`, two thirds the states of `item_state`), each polled by its own exporter. Per
# document: the poll duration as status_exporter_poll_duration_seconds reports it (fetch, parse,
# map; shortest and longest of the polls seen), the CPU time of the whole process per poll (all
# threads, from /proc/PID/task/*/schedstat: fetch, parse, map, render both formats, compress;
# the scrapes that read the figures are in it too), the peak resident memory, and the size of
# the text exposition. Fills scale_rows.
scale_curve() {
  local dir=$work/scale series interval polls0 polls1 cpu0 cpu1 durations sorted peak bytes doc
  mkdir -p "$dir"
  python3 - "$dir" <<'EOF'
import json, sys
work = sys.argv[1]
for series in (300, 3000, 30000, 300000):
    items = [{"name": f"item{i}", "value": i * 1.5, "state": "ok" if i % 3 else "degraded",
              "nested": {"a": i, "b": [1, 2, 3]}} for i in range(series // 3)]
    with open(f"{work}/doc{series}", "w") as f:
        json.dump({"items": items}, f)
metrics = [{"name": "item_value", "help": "Item value", "each": "/items", "labels": {"item": "/name"}, "path": "/value"},
           {"name": "item_state", "help": "Item state", "type": "enum", "each": "/items", "labels": {"item": "/name"}, "path": "/state", "states": ["ok", "degraded"]}]
with open(f"{work}/mapping.json", "w") as f:
    json.dump({"metrics": metrics}, f)
EOF
  cpu_ns() { local sum=0 ns _; for t in /proc/"$1"/task/*/schedstat; do read -r ns _ <"$t"; sum=$((sum + ns)); done; echo "$sum"; }
  figure() { curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
  for series in 300 3000 30000 300000; do
    interval=0.5
    ((series >= 300000)) && interval=2
    serve_file "$dir/doc$series"
    start --target-url "http://127.0.0.1:$served/doc$series" --config-file "$dir/mapping.json" \
      --polling-interval-seconds "$interval" --target-max-bytes 20000000 --max-series 1000000
    for _ in $(seq 200); do
      [ "$(figure status_exporter_up)" = 1 ] && break
      sleep 0.1
    done
    polls0=$(figure status_exporter_polls_total)
    cpu0=$(cpu_ns "$pid")
    durations=()
    for _ in $(seq 8); do
      sleep "$interval"
      durations+=("$(figure status_exporter_poll_duration_seconds | awk '{ printf "%.1f", $1 * 1000 }')")
    done
    polls1=$(figure status_exporter_polls_total)
    cpu1=$(cpu_ns "$pid")
    sorted=$(printf '%s\n' "${durations[@]}" | sort -n | tr '\n' ' ')
    read -r -a ms <<<"$sorted"
    peak=$(mib "$(status "$pid" VmHWM)")
    bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port/metrics")
    doc=$(stat -c %s "$dir/doc$series")
    local cpu
    cpu=$(awk -v c=$((cpu1 - cpu0)) -v p=$((polls1 - polls0)) 'BEGIN { if (p > 0) printf "%.1f ms", c / p / 1e6; else print "no poll" }')
    echo "scale curve:       $series series, document $doc bytes, exposition $bytes bytes: poll ${ms[0]}–${ms[${#ms[@]} - 1]} ms, $cpu CPU per poll, $peak peak resident"
    scale_rows+=("| $(grouped "$series") | $(grouped "$doc") | $(grouped "$bytes") | ${ms[0]}–${ms[${#ms[@]} - 1]} ms | ${ms[${#ms[@]} / 2]} ms | $cpu | $peak |")
    kill "$pid" "$served_pid"
  done
}

# /probe (issue 13, item 7): the tutorial document served from memory by
# scripts/bench/same_bytes.rs (the target), probed through a module with the tutorial mapping.
# First the target alone, then /probe of it, with one connection each (wrk -t1 -c1, 5 s): every
# probe is one fetch, and the probe's p99 over the target's own p99 is what the exporter adds
# (connection to the target, request, mapping, rendering). Then 16 connections (wrk -t2 -c16,
# 5 s) over 128 target URLs (the same server, a path per URL, as a Lua script of wrk asks), so
# that concurrent probes are of different targets and each one fetches; the probes that shared
# a fetch anyway are counted (status_exporter_probes_total{result="cached"}). The target and the
# exporter on CPU 0, wrk on CPU 1. Fills probe_rows.
probe_bench() {
  local dir=$work/probe target before after cached
  mkdir -p "$dir"
  : >"$dir/target.port"
  target=""
  taskset -c 0 "$work/same_bytes" scripts/mappings/tutorial/document.json application/json >"$dir/target.port" &
  pids+=($!)
  for _ in $(seq 100); do
    target=$(head -1 "$dir/target.port" 2>/dev/null || true)
    [ -n "$target" ] && break
    sleep 0.05
  done
  [ -n "$target" ] || { echo "bench.sh: the probe target did not start" >&2; exit 1; }
  cat >"$dir/config.json" <<EOF
{"modules": {"tutorial": {"mapping": "$PWD/scripts/mappings/tutorial/mapping.json", "path": "/status", "allow": ["127.0.0.1/32"]}}}
EOF
  # A file of modules alone: nothing is polled in the background.
  start --config-file "$dir/config.json"
  local probe="http://127.0.0.1:$port/probe?module=tutorial&target=127.0.0.1:$target"
  curl -s "$probe" >"$dir/first.prom"
  grep -qx 'status_exporter_probe_success 1' "$dir/first.prom" ||
    { echo "bench.sh: /probe does not succeed:" >&2; cat "$dir/first.prom" "$work/stderr" >&2; exit 1; }
  measure 1 1 "http://127.0.0.1:$target/status"
  local target_rps=$rps target_p50=$p50 target_p99=$p99
  measure 1 1 "$probe"
  local probe_rps=$rps probe_p50=$p50 probe_p99=$p99 probe_errors=$errors
  local over50 over99
  difference() { awk -v a="$(micros "$1")" -v b="$(micros "$2")" 'BEGIN { printf "%.0f", a - b }'; }
  over50=$(difference "$probe_p50" "$target_p50")
  over99=$(difference "$probe_p99" "$target_p99")
  echo "probes:            1 connection (wrk -t1 -c1): the target alone $target_rps requests/s, p50 $target_p50, p99 $target_p99; /probe of it $probe_rps probes/s, p50 $probe_p50, p99 $probe_p99${probe_errors:+ ($probe_errors)}: p99 ${over99} µs over the target's (p50 ${over50} µs)"
  probe_rows+=("| 1 (\`wrk -t1 -c1\`), one target | $(grouped "${probe_rps%.*}") probes/s${probe_errors:+; $probe_errors} | $probe_p50, $probe_p99 | $target_p50, $target_p99 ($(grouped "${target_rps%.*}") requests/s) | $over50 µs, $over99 µs |")
  cat >"$dir/targets.lua" <<EOF
-- Each thread asks for its own 64 target URLs in turn (the same server, a path per URL).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", "/probe?module=tutorial&target=http%3A%2F%2F127.0.0.1%3A$target%2F" .. id .. "%2F" .. (n % 64))
end
EOF
  shared() {
    curl -s "http://127.0.0.1:$port/metrics" >"$dir/own.prom"
    awk -v k='status_exporter_probes_total{module="tutorial",result="cached"}' '$1 == k { print $2 }' "$dir/own.prom"
  }
  before=$(shared)
  measure 2 16 "http://127.0.0.1:$port/" -s "$dir/targets.lua"
  after=$(shared)
  if [ -n "$before" ] && [ -n "$after" ]; then
    cached=$(grouped "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.0f", a - b }')")
  else
    cached="an unknown number (no status_exporter_probes_total{result=\"cached\"} on /metrics)"
  fi
  echo "probes:            16 connections (wrk -t2 -c16) over 128 targets: $rps probes/s, p50 $p50, p99 $p99${errors:+ ($errors)}; $cached of them shared another probe's fetch"
  probe_rows+=("| 16 (\`wrk -t2 -c16\`), 128 targets | $(grouped "${rps%.*}") probes/s${errors:+; $errors}; $cached shared a fetch | $p50, $p99 | | |")
  kill "$pid" "${pids[-1]}"
}

describe() {
  case $(file -b "$1" 2>/dev/null || true) in
    *"statically linked"* | *"static-pie linked"*) echo "static" ;;
    *"dynamically linked"*) echo "dynamic" ;;
    *) echo "" ;;
  esac
}

size=$(stat -c %s "$bin")
echo "binary size:       $size bytes ($(mib $((size / 1024)))): $bin (benchmarked below)"
size_rows+=("| \`$bin\` (benchmarked below) | $(grouped "$size") |")
for static in target/*-unknown-linux-musl*/release/status-exporter target/https/*-unknown-linux-musl*/release/status-exporter \
  target/https-builtin-roots/*-unknown-linux-musl*/release/status-exporter; do
  [ -f "$static" ] || continue
  [ "$static" -ef "$bin" ] && continue
  built=$(date -u -r "$static" '+%Y-%m-%d %H:%M UTC')
  kind=$(echo "$static" | sed -n 's#^target/\(https[a-z-]*/\)\{0,1\}\([^/]*\)/.*#\2#p')
  [[ $static == target/https/* ]] && kind="$kind, --features https"
  [[ $static == target/https-builtin-roots/* ]] && kind="$kind, --features https-builtin-roots"
  echo "binary size:       $(stat -c %s "$static") bytes, static, $kind (built $built)"
  size_rows+=("| \`$static\` ($kind; built $built) | $(grouped "$(stat -c %s "$static")") |")
done
static_x86=target/x86_64-unknown-linux-musl/release/status-exporter
if [ -f "$static_x86" ]; then
  budget_rows+=("| binary size, static x86-64 | ≤ 1 MiB | $(grouped "$(stat -c %s "$static_x86")") bytes |")
else
  budget_rows+=("| binary size, static x86-64 | ≤ 1 MiB | not built (scripts/build-static.sh) |")
fi

start --demo --polling-interval-seconds 60
sleep 2
idle=$(mib "$(status "$pid" VmRSS)")
echo "memory idle:       $idle resident"
budget_rows+=("| resident memory, idle (\`--demo\`) | ≤ 3 MiB | $idle |")
before=$(cpu_ticks "$pid")
sleep 10
after=$(cpu_ticks "$pid")
ticks=$((after - before))
echo "cpu idle:          $ticks ticks (1/$(getconf CLK_TCK) s) in 10 s between polls"
budget_rows+=("| CPU between polls (10 s, interval 60 s) | none measurable | $ticks ticks of 1/$(getconf CLK_TCK) s |")

# /metrics against a minimal server that sends the same bytes (the demo's scrape, as wrk asks
# for it), each pinned to CPU 0 with wrk on CPU 1, in the same run.
rustc -O --edition 2021 -o "$work/same_bytes" scripts/bench/same_bytes.rs
curl -s "http://127.0.0.1:$port/metrics" >"$work/scrape.prom"
: >"$work/same_bytes.port"
taskset -c 0 "$work/same_bytes" "$work/scrape.prom" "text/plain; version=0.0.4; charset=utf-8" >"$work/same_bytes.port" &
pids+=($!)
for _ in $(seq 100); do
  same_port=$(head -1 "$work/same_bytes.port" 2>/dev/null || true)
  [ -n "$same_port" ] && break
  sleep 0.05
done
# Serves FILE as the target's document from another same_bytes on CPU 1 (the exporter is on
# CPU 0): it answers from memory at once, so that a poll's duration is the exporter's own work
# (fetch over loopback, parse, map), not a slow test server's; sets $served (its port) and
# $served_pid.
serve_file() {
  : >"$1.port"
  served=""
  taskset -c 1 "$work/same_bytes" "$1" "application/json" >"$1.port" &
  served_pid=$!
  pids+=("$served_pid")
  for _ in $(seq 100); do
    served=$(head -1 "$1.port" 2>/dev/null || true)
    [ -n "$served" ] && break
    sleep 0.05
  done
}
# wrk's figures for one URL (THREADS CONNECTIONS URL [more wrk options]): sets $rps, $p50, $p99
# and $errors.
measure() {
  local out
  out=$(taskset -c 1 wrk -t "$1" -c "$2" -d 5s --latency "${@:4}" "$3")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
}
# wrk's latency (1.23ms, 456.00us) in microseconds.
micros() { awk -v t="$1" 'BEGIN { n = t + 0; if (t ~ /ms$/) n *= 1000; else if (t ~ /[0-9]s$/) n *= 1000000; printf "%.0f", n }'; }
scrape_bytes=$(stat -c %s "$work/scrape.prom")
for connections in 1 16; do
  threads=$((connections == 1 ? 1 : 2))
  measure "$threads" "$connections" "http://127.0.0.1:$port/metrics"
  ours_rps=$rps ours_p99=$p99 ours_errors=$errors
  measure "$threads" "$connections" "http://127.0.0.1:$same_port/metrics"
  same_rps=$rps same_p99=$p99
  ratio=$(awk -v a="$ours_rps" -v b="$same_rps" 'BEGIN { printf "%.0f", 100 * a / b }')
  p99_ratio=$(awk -v a="$(micros "$ours_p99")" -v b="$(micros "$same_p99")" 'BEGIN { printf "%.1f", a / b }')
  echo "scrapes:           $connections connection(s) (wrk -t$threads -c$connections): /metrics $ours_rps requests/s, p99 $ours_p99${ours_errors:+ ($ours_errors)}; same bytes from std: $same_rps requests/s, p99 $same_p99; /metrics at $ratio % of it, p99 ${p99_ratio}x"
  scrape_rows+=("| $connections (\`wrk -t$threads -c$connections\`) | $(grouped "${ours_rps%.*}") requests/s, p99 $ours_p99${ours_errors:+; $ours_errors} | $(grouped "${same_rps%.*}") requests/s, p99 $same_p99 | $ratio % | ${p99_ratio}× |")
  if ((connections == 1)); then what="1 connection" budget="< 1 ms"; else what="$connections connections" budget=""; fi
  budget_rows+=("| scrape p99, $what (wrk, 5 s) | $budget | $ours_p99 ($(grouped "${ours_rps%.*}") requests/s)${ours_errors:+; $ours_errors} |")
  if ((connections == 16)); then
    budget_rows+=("| scrapes/s at 16 connections, against a std server sending the same bytes | ≥ 50 % | $ratio % |")
  else
    budget_rows+=("| scrape p99 at 1 connection, against a std server sending the same bytes | ≤ 2× | ${p99_ratio}× |")
  fi
done
kill "${pids[-1]}"
wrk -t 2 -c 64 -d 5s "http://127.0.0.1:$port/metrics" >/dev/null
peak=$(mib "$(status "$pid" VmHWM)")
threads=$(status "$pid" Threads)
echo "memory under load: $peak peak resident with 64 connections; $threads threads after"
budget_rows+=("| resident memory, peak, 64 scraping connections (wrk, 5 s) | ≤ 8 MiB | $peak |")
kill "$pid"

# /probe: probes per second, and the probe's p99 over the target's own.
probe_bench

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
serve_file "$work/status"
document_size=$(stat -c %s "$work/status")
for mapping in few many; do
  start --target-url "http://127.0.0.1:$served/status" --config-file "$work/$mapping.json" \
    --polling-interval-seconds 0.5 --target-max-bytes 4000000
  durations=()
  for _ in $(seq 10); do
    sleep 0.5
    durations+=("$(curl -s "http://127.0.0.1:$port/metrics" |
      awk '$1 == "status_exporter_poll_duration_seconds" { printf "%.1f", $2 * 1000 }')")
  done
  series=$(curl -s "http://127.0.0.1:$port/metrics" | grep -c '^item_\|^stat_')
  sorted=$(printf '%s\n' "${durations[@]}" | sort -n | tr '\n' ' ')
  peak=$(mib "$(status "$pid" VmHWM)")
  echo "1 MiB document:    $document_size bytes, $series series; poll ms, 10 polls sorted: $sorted"
  echo "memory with it:    $peak peak resident"
  read -r -a ms <<<"$sorted"
  document_rows+=("| $(grouped "$series") | ${ms[0]}–${ms[${#ms[@]} - 1]} ms | ${ms[${#ms[@]} / 2]} ms | $peak |")
  if [ "$mapping" = many ]; then
    # Bytes on the wire for one scrape: as curl asks (text), and as Prometheus asks (OpenMetrics,
    # gzip); and what compressing the snapshot costs each poll.
    openmetrics='Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
    for how in "text format 0.0.4|" "text format 0.0.4, gzip|Accept-Encoding: gzip" \
      "OpenMetrics|$openmetrics" "OpenMetrics, gzip (as Prometheus asks)|$openmetrics|Accept-Encoding: gzip"; do
      IFS='|' read -r what h1 h2 <<<"$how"
      bytes=$(curl -s -o /dev/null -w '%{size_download}' ${h1:+-H "$h1"} ${h2:+-H "$h2"} "http://127.0.0.1:$port/metrics")
      echo "scrape on the wire: $series series, $what: $bytes bytes"
      wire_rows+=("| $what | $(grouped "$bytes") |")
    done
    curl -s "http://127.0.0.1:$port/metrics" >"$work/many.prom"
    curl -s -H "$openmetrics" "http://127.0.0.1:$port/metrics" >"$work/many.om"
  fi
  kill "$pid"
done
cargo build --release --quiet --example gzip_cost
gzip_ms=0
while read -r file plain packed ms; do
  echo "gzip cost:         ${file##*/}: $plain -> $packed bytes in $ms ms"
  gzip_ms=$(awk -v a="$gzip_ms" -v b="$ms" 'BEGIN { print a + b }')
done < <(target/release/examples/gzip_cost "$work/many.prom" "$work/many.om")
echo "gzip cost:         $gzip_ms ms per poll (both formats, in the poller, after rendering)"
echo "(poll time includes the fetch over loopback from same_bytes, which answers from memory)"
# The mapping alone, in a loop: built like the benchmarked binary (static: musl's allocator and
# memcpy, which the glibc build does not have), so that its figures compare with the polls'.
map_cost=target/release/examples/map_cost
map_target=()
if [ "$(describe "$bin")" = static ] && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  map_target=(--target x86_64-unknown-linux-musl)
  map_cost=target/x86_64-unknown-linux-musl/release/examples/map_cost
fi
cargo build --release --quiet "${map_target[@]}" --example map_cost
read -r map_min map_median < <("$map_cost" "$work/status" "$work/many.json")
echo "mapping alone:     27,300 series, parse and map in a loop of 30: shortest $map_min ms, median $map_median ms"

# The scale curve (the mapping's part: issue 16, item 2).
scale_curve

# The generated file: written whole to a temporary file, then moved into place.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || commit="$commit with uncommitted changes to the code"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
machine="$(nproc) cores${cpu:+ ($cpu)}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) of memory, $(uname -sr) $(uname -m)"
kind=$(describe "$bin")
{
  echo "# Measurements"
  echo
  echo "<!-- Generated by scripts/bench.sh; do not edit by hand: run the script again. -->"
  echo
  echo "Generated by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), at commit $commit,"
  echo "benchmarking \`$bin\`${kind:+ ($kind)}, on a machine with $machine."
  if [ -n "${BENCH_NOTE:-}" ]; then
    echo
    echo "$BENCH_NOTE"
  fi
  echo
  echo "These are the figures of one run: timings vary from run to run, and more on a machine"
  echo "shared with other work. What each figure measures, and its budget, is in"
  echo "[performance.md](performance.md)."
  echo
  echo "## Binary sizes"
  echo
  echo "| binary | bytes |"
  echo "|---|---|"
  printf '%s\n' "${size_rows[@]}"
  echo
  echo "The static builds are those found under \`target/\`, built by \`scripts/build-static.sh\` at the"
  echo "time shown (possibly from another commit than the one above). Every static binary and variant,"
  echo "against its budget: [sizes.md](sizes.md), written by \`scripts/build-static.sh\`."
  echo
  echo "## Budgets"
  echo
  echo "| figure | budget | measured |"
  echo "|---|---|---|"
  printf '%s\n' "${budget_rows[@]}"
  echo
  echo "## Scrapes against a server that sends the same bytes"
  echo
  echo "\`/metrics\` of \`--demo\` ($(grouped "$scrape_bytes") bytes) against \`scripts/bench/same_bytes.rs\`, a minimal"
  echo "std-only HTTP server that answers every request with the same bytes from memory, in the same"
  echo "run: each server pinned to CPU 0, wrk to CPU 1, 5 s each."
  echo
  echo "| connections | /metrics | same bytes, std | /metrics / std | p99 /metrics / std |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${scrape_rows[@]}"
  echo
  echo "## Probes"
  echo
  echo "\`/probe\` of a target that serves the tutorial document from memory (\`scripts/bench/same_bytes.rs\`),"
  echo "through a module with the tutorial mapping; the target's own latency measured alone in the"
  echo "same run. The target and the exporter pinned to CPU 0, wrk to CPU 1, 5 s each. With 16"
  echo "connections the probes go to 128 target URLs (a path each, on the same server), so that"
  echo "concurrent probes fetch rather than share a fetch. What the figures mean:"
  echo "[performance.md](performance.md#reading-the-figures)."
  echo
  echo "| connections | /probe | probe p50, p99 | target alone, p50, p99 | probe over the target, p50, p99 |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${probe_rows[@]}"
  echo
  echo "## A 1 MiB document"
  echo
  echo "A document of $(grouped "$document_size") bytes, served on loopback from memory by"
  echo "\`scripts/bench/same_bytes.rs\` (so that the figures are the exporter's own work, not a test"
  echo "server's), polled every 0.5 s: the shortest and the longest poll duration (fetch, parse, map)"
  echo "of 10 polls, their median (the sixth shortest), and the peak resident memory of the exporter."
  echo
  echo "| series | poll duration | median | peak resident memory |"
  echo "|---|---|---|---|"
  printf '%s\n' "${document_rows[@]}"
  echo
  echo "One scrape of the 27,300 series, in bytes on the wire (the body, without the head):"
  echo
  echo "| asked for | bytes |"
  echo "|---|---|"
  printf '%s\n' "${wire_rows[@]}"
  echo
  echo "The mapping alone, the same document and mapping applied 30 times in a loop in the same run"
  echo "(\`scripts/bench/map_cost.rs\`, built like the benchmarked binary): shortest $map_min ms, median"
  echo "$map_median ms. A poll adds the fetch over loopback and a thread waking from sleep; a machine"
  echo "whose other work slows the exporter down slows this loop down as much."
  echo
  echo "Compressing the snapshot (both formats, once per poll, in the poller after rendering,"
  echo "\`scripts/bench/gzip_cost.rs\`): $gzip_ms ms per poll."
  if ((${#scale_rows[@]})); then
    echo
    echo "## The scale curve"
    echo
    echo "Documents whose \`each\` gives 300 to 300,000 series, each polled every 0.5 s (2 s for the"
    echo "largest): the poll duration (fetch, parse, map) of 8 polls, shortest–longest and median (the"
    echo "fifth shortest), the CPU time of the whole process"
    echo "per poll (everything a poll costs: fetch, parse, map, render both formats, compress), the"
    echo "peak resident memory, and the size of the text exposition."
    echo
    echo "| series | document bytes | exposition bytes | poll duration | median | CPU per poll | peak resident memory |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${scale_rows[@]}"
  fi
} >"$work/measurements.md"
mv "$work/measurements.md" "$out_file"
echo "bench.sh: wrote $out_file"
