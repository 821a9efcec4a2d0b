#!/usr/bin/env bash
# Install status-exporter as a systemd service.
#
#   scripts/install.sh [BINARY]
#
# BINARY defaults to the static build of scripts/build-static.sh,
# target/x86_64-unknown-linux-musl/release/status-exporter (under $CARGO_TARGET_DIR if set).
# Installs:
#   PREFIX/bin/status-exporter                          (PREFIX defaults to /usr/local)
#   UNITDIR/status-exporter.service and status-exporter@.service
#                                                       (UNITDIR defaults to /etc/systemd/system)
#   SYSCONFDIR/status-exporter/status-exporter.env      (SYSCONFDIR defaults to /etc), an example
#                                                       that is never written over once it exists
#   PREFIX/share/status-exporter/mappings/NAME/         the example mappings of scripts/mappings
#                                                       (mapping.json and a sample document.json),
#                                                       readable by all: CONFIG_FILE can name one
# Every path is prefixed with DESTDIR (empty by default), so DESTDIR=/tmp/root installs into a
# scratch tree. Safe to run again: files that are already up to date are left alone. Prints one
# line per file, then what to run next. Enables and starts nothing by itself.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")
binary=${1:-${CARGO_TARGET_DIR:-$root/target}/x86_64-unknown-linux-musl/release/status-exporter}
destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
sysconfdir=${SYSCONFDIR:-/etc}
unitdir=${UNITDIR:-/etc/systemd/system}

if [[ ! -f $binary || ! -x $binary ]]; then
    echo "install: no executable at $binary: build it with scripts/build-static.sh," \
        "or name a binary: scripts/install.sh PATH" >&2
    exit 2
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

say() { printf '%-10s %s\n' "$1" "$2"; }

# place SOURCE DEST MODE: install SOURCE as DEST unless DEST already has that content and mode.
place() {
    local source=$1 dest=$destdir$2 mode=$3
    if [[ -f $dest ]] && cmp -s "$source" "$dest" && [[ $(stat -c %a "$dest") == "$mode" ]]; then
        say unchanged "$dest"
        return
    fi
    local verb=installed
    [[ -e $dest ]] && verb=updated
    install -D -m "$mode" "$source" "$dest"
    say "$verb" "$dest"
}

# The units name /usr/local/bin/status-exporter and /etc/status-exporter: follow PREFIX and
# SYSCONFDIR (not DESTDIR, which is only where the files are put, not where they will run).
for unit in status-exporter.service status-exporter@.service; do
    sed -e "s|/usr/local/bin/status-exporter|$prefix/bin/status-exporter|" \
        -e "s|/etc/status-exporter/|$sysconfdir/status-exporter/|" \
        "$scripts/$unit" > "$staging/$unit"
done

place "$binary" "$prefix/bin/status-exporter" 755
place "$staging/status-exporter.service" "$unitdir/status-exporter.service" 644
place "$staging/status-exporter@.service" "$unitdir/status-exporter@.service" 644

mappings=$prefix/share/status-exporter/mappings
place "$scripts/mappings/README.md" "$mappings/README.md" 644
for example in "$scripts"/mappings/*/mapping.json; do
    name=$(basename "$(dirname "$example")")
    place "$example" "$mappings/$name/mapping.json" 644
    place "$scripts/mappings/$name/document.json" "$mappings/$name/document.json" 644
done

env_file=$destdir$sysconfdir/status-exporter/status-exporter.env
if [[ -e $env_file ]]; then
    say kept "$env_file (existing settings are never written over)"
else
    install -D -m 640 "$scripts/status-exporter.env" "$env_file"
    say installed "$env_file (an example: every setting in it is commented out)"
fi

if [[ -z $destdir && -d /run/systemd/system ]]; then
    systemctl daemon-reload
    say reloaded "systemd (systemctl daemon-reload)"
fi

cat <<EOF

Next:
  edit $sysconfdir/status-exporter/status-exporter.env
    (CONFIG_FILE can name one of the example mappings in $mappings)
  systemctl enable --now status-exporter
  curl -s http://localhost:9877/metrics
For more exporters on one host: put each one's settings in $sysconfdir/status-exporter/NAME.env
(with its own EXPORTER_PORT) and run systemctl enable --now status-exporter@NAME
EOF
