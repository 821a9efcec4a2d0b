#!/usr/bin/env bash
# Build fully static, stripped, size-optimised release binaries of status-exporter.
#
#   scripts/build-static.sh [TARGET...]
#
# Without arguments it builds x86_64-unknown-linux-musl and aarch64-unknown-linux-musl, plus
# armv7-unknown-linux-musleabihf when that target's standard library is installed. Each binary
# lands in $CARGO_TARGET_DIR/TARGET/release/status-exporter and is also copied to
# $CARGO_TARGET_DIR/static/ARCH/status-exporter (ARCH as Docker names it: amd64, arm64, arm),
# which is the whole build context that scripts/Dockerfile needs.
#
# The musl targets link self-contained: rustc brings musl's crt objects and libc.a, so no C
# cross-compiler is needed. x86_64 links with the host's cc; the ARM targets link with the
# rust-lld that ships with the toolchain (override with CARGO_TARGET_<TRIPLE>_LINKER).
#
# Each target is built plain (no HTTPS: the size budget, under 1 MiB) and, for the targets in
# HTTPS_TARGETS (default: x86_64-unknown-linux-musl), also with the `https` feature, copied to
# static/ARCH/status-exporter-https, and with `https-builtin-roots` (the Mozilla CA roots built
# in, for hosts without a CA bundle), copied to static/ARCH/status-exporter-https-roots (both
# under 3 MiB). The HTTPS builds compile ring's C code for the target: x86_64 uses
# x86_64-linux-musl-gcc (musl-tools) or, without it, the host's gcc, which ring's C needs no more
# than; for aarch64 set CC_aarch64_unknown_linux_musl to a C cross compiler for it and add the
# target to HTTPS_TARGETS.
#
# Needs: rustup targets (`rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl`)
# and gcc (already on the machine). Honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS.
set -euo pipefail

https_targets=${HTTPS_TARGETS-x86_64-unknown-linux-musl}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
sysroot=$("${RUSTC:-rustc}" --print sysroot)

installed() { [[ -d $sysroot/lib/rustlib/$1/lib ]]; }

if (($# == 0)); then
    set -- x86_64-unknown-linux-musl aarch64-unknown-linux-musl
    if installed armv7-unknown-linux-musleabihf; then
        set -- "$@" armv7-unknown-linux-musleabihf
    else
        echo "build-static: skipping armv7-unknown-linux-musleabihf (not installed:" \
            "rustup target add armv7-unknown-linux-musleabihf)" >&2
    fi
fi

for target in "$@"; do
    if ! installed "$target"; then
        echo "build-static: the standard library for $target is missing:" \
            "rustup target add $target" >&2
        exit 1
    fi
done

for target in "$@"; do
    case $target in
        x86_64-*) arch=amd64 ;;
        aarch64-*) arch=arm64 ;;
        armv7-*) arch=arm ;;
        *) arch=$target ;;
    esac
    linker_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
    if [[ $target != x86_64-* && -z ${!linker_var:-} ]]; then
        export "$linker_var=rust-lld"
    fi
    echo "build-static: building $target" >&2
    "${CARGO:-cargo}" build --manifest-path "$root/Cargo.toml" --locked --release --target "$target"
    bin=$target_dir/$target/release/status-exporter
    mkdir -p "$target_dir/static/$arch"
    cp "$bin" "$target_dir/static/$arch/status-exporter"
    if [[ " $https_targets " == *" $target "* ]]; then
        # The HTTPS builds (rustls with ring, which compiles C for the target) go to target
        # directories of their own, so that the builds do not replace each other's binary.
        cc_var=CC_${target//-/_}
        if [[ $target == x86_64-* && -z ${!cc_var:-} ]] && ! command -v x86_64-linux-musl-gcc >/dev/null; then
            export "$cc_var=gcc"
        fi
        for variant in https:status-exporter-https https-builtin-roots:status-exporter-https-roots; do
            features=${variant%%:*}
            echo "build-static: building $target with $features" >&2
            "${CARGO:-cargo}" build --manifest-path "$root/Cargo.toml" --locked --release --target "$target" \
                --features "$features" --target-dir "$target_dir/$features"
            cp "$target_dir/$features/$target/release/status-exporter" "$target_dir/static/$arch/${variant#*:}"
        done
    fi
done

echo
printf '%-34s %10s  %s\n' target bytes binary
for target in "$@"; do
    for bin in "$target_dir/$target/release/status-exporter" "$target_dir/https/$target/release/status-exporter" \
        "$target_dir/https-builtin-roots/$target/release/status-exporter"; do
        [[ $bin == */https*/* && " $https_targets " != *" $target "* ]] && continue
        printf '%-34s %10s  %s\n' "$target" "$(stat -c %s "$bin")" "$bin"
    done
done
