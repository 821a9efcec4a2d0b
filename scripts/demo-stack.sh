#!/usr/bin/env bash
# The whole stack on this machine, without Docker: the exporter with its embedded demo target
# (`status-exporter --demo`) and a Prometheus server that scrapes it with scripts/prometheus.yml
# and evaluates scripts/alerts.yml. Ctrl-C stops both and removes Prometheus's data.
#
#   scripts/demo-stack.sh            then open the graph URL it prints
#
# The links it prints are the pages this Prometheus answers: Debian's 2.42 serves only the
# classic UI, under /classic/ (/classic/graph, /classic/targets, ...); upstream 2.x serves the
# same pages at /graph, /targets, ...; 3.x has /query for the graph.
#
# The demo target reports itself unhealthy during every minute whose number ends in 9 (UTC), so
# that app_health changes. The demo's copy of alerts.yml waits 2 minutes instead of 1 before
# AppUnhealthy fires (`for: 2m`): the alert shows as pending during that minute, and never fires
# in the demo.
#
# Prometheus comes from PATH (Debian/Ubuntu: apt-get install prometheus). Both listen on
# 127.0.0.1 only. Settings, from the environment:
#   EXPORTER_PORT      the exporter's port, default 9877
#   PROMETHEUS_PORT    Prometheus's port, default 9090
#   STATUS_EXPORTER    the exporter binary to run; default: target/release/status-exporter,
#                      built first with `cargo build --release` (quick when it is up to date)
#   PROMETHEUS         the Prometheus binary; default: `prometheus` from PATH
# The exporter also reads its own variables, e.g. POLLING_INTERVAL_SECONDS.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export EXPORTER_PORT=${EXPORTER_PORT:-9877}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
# How long each program may take to start, in tenths of a second.
patience=300

fail() {
    echo "demo-stack: $*" >&2
    exit 1
}

for setting in EXPORTER_PORT PROMETHEUS_PORT; do
    case ${!setting} in
        '' | *[!0-9]*) fail "$setting: \"${!setting}\" is not a port number (1-65535)" ;;
    esac
    ((${!setting} >= 1 && ${!setting} <= 65535)) ||
        fail "$setting: \"${!setting}\" is not a port number (1-65535)"
done

prometheus=${PROMETHEUS:-$(command -v prometheus || true)}
if [[ -z $prometheus || ! -x $prometheus ]]; then
    fail "Prometheus is not installed${PROMETHEUS:+ at $PROMETHEUS}.
  On Debian or Ubuntu:  sudo apt-get install prometheus
    (the package also starts a Prometheus service on port 9090: stop it with
    'sudo systemctl disable --now prometheus', or run this script with PROMETHEUS_PORT=9091)
  Elsewhere: download it from https://prometheus.io/download/ and run this script with
    PROMETHEUS=/path/to/prometheus"
fi

exporter=${STATUS_EXPORTER:-}
if [[ -z $exporter ]]; then
    exporter=${CARGO_TARGET_DIR:-$root/target}/release/status-exporter
    if command -v cargo >/dev/null; then
        echo "demo-stack: cargo build --release" >&2
        cargo build --release --quiet --manifest-path "$root/Cargo.toml" ||
            fail "cargo build --release failed"
    elif [[ ! -x $exporter ]]; then
        fail "$exporter does not exist and cargo is not installed: install Rust (https://rustup.rs) or set STATUS_EXPORTER to a status-exporter binary"
    fi
fi
[[ -x $exporter ]] || fail "STATUS_EXPORTER: $exporter is not an executable file"

work=$(mktemp -d "${TMPDIR:-/tmp}/status-exporter-demo.XXXXXX")
pids=()

# Stops the programs this script started (by PID), waits for them and removes the data.
# shellcheck disable=SC2317 # run by the traps
stop() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap 'echo "demo-stack: stopping" >&2; stop; exit 0' INT TERM
trap 'stop' EXIT

# True when GET http://127.0.0.1:$1$2 answers 200 (bash's /dev/tcp: no curl needed).
answers() {
    local status=''
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    IFS= read -r -t 5 status <&3 || true
    exec 3<&- 3>&-
    [[ $status == "HTTP/1."[01]" 200"* ]]
}

# Waits until program $1 (PID $2) answers 200 on port $3, path $4, or fails with $5 (a hint).
wait_until_up() {
    local tries=0
    until answers "$3" "$4" 2>/dev/null; do
        if ! kill -0 "$2" 2>/dev/null; then
            fail "$1 stopped during start-up${5:+; $5}"
        fi
        ((++tries <= patience)) || fail "$1 did not answer on 127.0.0.1:$3$4 within $((patience / 10)) s${5:+; $5}"
        sleep 0.1
    done
}

# The exporter, on loopback only: a demo is not for the network.
LISTEN_ADDRESS=127.0.0.1 "$exporter" --demo &
pids+=($!)
wait_until_up "the exporter" "$!" "$EXPORTER_PORT" /-/ready ""

# scripts/prometheus.yml, moved to this run's ports, with the alerting rules beside it.
config=$root/scripts/prometheus.yml
[[ -f $config ]] || fail "$config is missing"
sed -e "s/localhost:9877/127.0.0.1:$EXPORTER_PORT/g" \
    -e "s/localhost:9090/127.0.0.1:$PROMETHEUS_PORT/g" "$config" >"$work/prometheus.yml"
grep -q "127.0.0.1:$EXPORTER_PORT" "$work/prometheus.yml" ||
    fail "$config does not scrape localhost:9877, so the demo cannot use it"
grep -q '^  - alerts.yml$' "$work/prometheus.yml" ||
    fail "$config does not load alerts.yml (rule_files), so the demo cannot use it"
# AppUnhealthy waits 2 minutes here: longer than the demo's unhealthy minute (see above).
awk '/- alert: / { app = ($3 == "AppUnhealthy") }
     app && /^ *for: 1m$/ { sub(/1m/, "2m"); changed = 1 }
     { print }
     END { exit !changed }' "$root/scripts/alerts.yml" >"$work/alerts.yml" ||
    fail "$root/scripts/alerts.yml has no AppUnhealthy rule with for: 1m"

"$prometheus" \
    --config.file="$work/prometheus.yml" \
    --storage.tsdb.path="$work/data" \
    --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    2>"$work/prometheus.log" &
pids+=($!)
if ! (wait_until_up "Prometheus" "$!" "$PROMETHEUS_PORT" /-/ready \
    "is port $PROMETHEUS_PORT in use? Debian's prometheus package runs a service on 9090: 'sudo systemctl stop prometheus', or set PROMETHEUS_PORT=9091"); then
    echo "demo-stack: the end of Prometheus's log:" >&2
    tail -n 5 "$work/prometheus.log" >&2
    exit 1
fi

# The first of the paths ($2...) that Prometheus answers with 200, or $2 if none does.
page() {
    local candidate
    for candidate in "${@:2}"; do
        if answers "$1" "$candidate" 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "$2"
}
query='g0.expr=app_requests_current&g0.tab=0&g0.range_input=15m'
graph=$(page "$PROMETHEUS_PORT" "/graph?$query" "/classic/graph?$query" "/query?$query")
targets=$(page "$PROMETHEUS_PORT" /targets /classic/targets)
alerts=$(page "$PROMETHEUS_PORT" /alerts /classic/alerts)

cat <<EOF

The demo stack is running (Ctrl-C stops it):
  exporter metrics:   http://127.0.0.1:$EXPORTER_PORT/metrics
  Prometheus graph:   http://127.0.0.1:$PROMETHEUS_PORT$graph
  scrape targets:     http://127.0.0.1:$PROMETHEUS_PORT$targets
  alerts:             http://127.0.0.1:$PROMETHEUS_PORT$alerts
Prometheus scrapes every 5 s, so the first values appear within about 10 s.
The demo reports itself unhealthy during every minute whose number ends in 9 (UTC): app_health
shows it, and the AppUnhealthy alert is pending then. It does not fire: here it waits 2 minutes
(for: 2m), not the 1 minute of scripts/alerts.yml.

EOF

# Runs until Ctrl-C (the trap above), or until one of the two stops by itself.
status=0
wait -n "${pids[@]}" || status=$?
echo "demo-stack: a program stopped by itself (exit status $status); stopping the other" >&2
tail -n 5 "$work/prometheus.log" >&2
exit 1
