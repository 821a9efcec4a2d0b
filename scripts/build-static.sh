#!/usr/bin/env bash
# Build fully static, stripped, size-optimised release binaries of status-exporter, check them
# against the size budgets, and write their sizes to docs/sizes.md.
#
#   scripts/build-static.sh [TARGET...]
#
# Without arguments it builds x86_64-unknown-linux-musl, aarch64-unknown-linux-musl and
# i686-unknown-linux-musl, plus armv7-unknown-linux-musleabihf when that target's standard
# library is installed, and writes docs/sizes.md. Each target is built in every variant:
#   plain                no HTTPS          TARGET_DIR/TARGET/release/status-exporter
#   https                --features https   TARGET_DIR/https/TARGET/release/status-exporter
#   https-builtin-roots  with the CA roots built in (when Cargo.toml has that feature)
#                                          TARGET_DIR/https-builtin-roots/TARGET/release/...
# (HTTPS only for the targets in HTTPS_TARGETS; default: the three above). Each binary is also
# copied to TARGET_DIR/static/ARCH/status-exporter, status-exporter-https and
# status-exporter-https-roots, ARCH as Docker names it (amd64, arm64, 386, arm), and the
# binaries of this machine's architecture to TARGET_DIR/static/native/ too (for Docker's classic
# builder, which does not say which architecture it builds for): that folder is the whole build
# context scripts/Dockerfile needs.
#
# Linking: the musl targets link self-contained (rustc brings musl's crt objects and libc.a).
# x86_64 links with the host's cc, the others with the rust-lld that ships with the toolchain
# (override with CARGO_TARGET_<TRIPLE>_LINKER).
#
# The HTTPS build compiles C code (the TLS library's cryptography) for the target. x86_64 uses
# the host's x86_64-linux-musl-gcc (Debian: musl-tools). The other targets use zig as the cross
# C compiler (`python3 -m pip install ziglang==0.17.1`) through scripts/zig/cc and scripts/zig/ar,
# unless CC_<target> is set. ZIG may name the zig binary (found in the ziglang package by
# default).
#
# Budgets: plain <= 1 MiB, HTTPS <= 3 MiB. A binary over its budget is reported loudly, and the
# script then exits 1 (after building and copying everything).
#
# Environment:
#   HTTPS_TARGETS     targets that also get the HTTPS variants (space-separated; empty: none)
#   SIZES             file to write the size table to; default docs/sizes.md when run without
#                     arguments, none when targets are named (set it to write one anyway)
#   CARGO_TARGET_DIR, CARGO_BUILD_JOBS, CARGO, RUSTC   as for cargo
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
https_targets=${HTTPS_TARGETS-x86_64-unknown-linux-musl aarch64-unknown-linux-musl i686-unknown-linux-musl}
sizes_file=${SIZES:-}
sysroot=$("${RUSTC:-rustc}" --print sysroot)
cargo=${CARGO:-cargo}

# The variants: name (also the name of its target directory), cargo features, the suffix of the
# copy in static/ARCH/, size budget in bytes. `plain` is built for every target, the others for
# the targets in HTTPS_TARGETS; https-builtin-roots (the Mozilla CA roots built in, for hosts
# without a CA bundle) when Cargo.toml has that feature.
variants=(plain https)
declare -A features=([plain]="" [https]="https" [https-builtin-roots]="https-builtin-roots")
declare -A suffix=([plain]="" [https]="-https" [https-builtin-roots]="-https-roots")
declare -A budget=([plain]=$((1 << 20)) [https]=$((3 << 20)) [https-builtin-roots]=$((3 << 20)))
if grep -q '^https-builtin-roots = ' "$root/Cargo.toml"; then
    variants+=(https-builtin-roots)
fi

fail() {
    echo "build-static: $*" >&2
    exit 1
}

installed() { [[ -d $sysroot/lib/rustlib/$1/lib ]]; }

if (($# == 0)); then
    set -- x86_64-unknown-linux-musl aarch64-unknown-linux-musl i686-unknown-linux-musl
    if installed armv7-unknown-linux-musleabihf; then
        set -- "$@" armv7-unknown-linux-musleabihf
    else
        echo "build-static: skipping armv7-unknown-linux-musleabihf (not installed:" \
            "rustup target add armv7-unknown-linux-musleabihf)" >&2
    fi
    sizes_file=${SIZES:-$root/docs/sizes.md}
fi

for target in "$@"; do
    installed "$target" ||
        fail "the standard library for $target is missing: rustup target add $target"
done

# Docker's name for the architecture (TARGETARCH).
arch_of() {
    case $1 in
        x86_64-*) echo amd64 ;;
        aarch64-*) echo arm64 ;;
        i?86-*) echo 386 ;;
        arm*) echo arm ;;
        riscv64*) echo riscv64 ;;
        *) echo "$1" ;;
    esac
}

# This machine's architecture, in Docker's naming.
native_arch=$(arch_of "$(uname -m)-")

wants_https() { [[ " $https_targets " == *" $1 "* ]]; }

# The C compiler of the HTTPS builds: zig for every target but x86_64, unless CC_<target> says.
zig_used=""
for target in "$@"; do
    wants_https "$target" || continue
    [[ $target == x86_64-* ]] && continue
    cc_var=CC_${target//-/_}
    [[ -n ${!cc_var:-} ]] && continue
    if [[ -z ${ZIG:-} ]]; then
        ZIG=$(python3 -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))' 2>/dev/null) ||
            fail "the HTTPS build for $target needs zig as its C compiler: python3 -m pip install ziglang==0.17.1
  (or set $cc_var to a C compiler for $target, or leave $target out of HTTPS_TARGETS)"
        export ZIG
    fi
    export "$cc_var=$root/scripts/zig/cc" "AR_${target//-/_}=$root/scripts/zig/ar"
    zig_used=$("$ZIG" version)
done

# build TARGET VARIANT: builds one binary and copies it into static/ARCH/.
build() {
    local target=$1 variant=$2 dir=$target_dir
    local args=(build --manifest-path "$root/Cargo.toml" --locked --release --target "$target")
    if [[ $variant != plain ]]; then
        # Each variant in a target directory of its own, so that the builds do not replace
        # each other's binary.
        dir=$target_dir/$variant
        args+=(--features "${features[$variant]}" --target-dir "$dir")
    fi
    echo "build-static: building $target ($variant)" >&2
    "$cargo" "${args[@]}"
    local arch name=status-exporter${suffix[$variant]}
    arch=$(arch_of "$target")
    mkdir -p "$target_dir/static/$arch"
    cp "$dir/$target/release/status-exporter" "$target_dir/static/$arch/$name"
    if [[ $arch == "$native_arch" ]]; then
        mkdir -p "$target_dir/static/native"
        cp "$dir/$target/release/status-exporter" "$target_dir/static/native/$name"
    fi
}

# The binaries built, as "TARGET VARIANT PATH".
built=()
for target in "$@"; do
    linker_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_LINKER
    if [[ $target != x86_64-* && -z ${!linker_var:-} ]]; then
        export "$linker_var=rust-lld"
    fi
    for variant in "${variants[@]}"; do
        [[ $variant != plain ]] && ! wants_https "$target" && continue
        build "$target" "$variant"
        dir=$target_dir
        [[ $variant != plain ]] && dir=$target_dir/$variant
        built+=("$target $variant $dir/$target/release/status-exporter")
    done
done

# 1234567 -> 1,234,567
grouped() { echo "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }

echo
printf '%-34s %-19s %10s %10s  %s\n' target variant bytes budget binary
over=()
for line in "${built[@]}"; do
    read -r target variant bin <<<"$line"
    size=$(stat -c %s "$bin")
    printf '%-34s %-19s %10s %10s  %s\n' "$target" "$variant" "$size" "${budget[$variant]}" "$bin"
    if ((size > budget[$variant])); then
        over+=("$target ($variant): $(grouped "$size") bytes, over its budget of $(grouped "${budget[$variant]}")")
    fi
done

if [[ -n $sizes_file ]]; then
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs 2>/dev/null ||
        commit="$commit with uncommitted changes to the code"
    header="| target | Docker arch |"
    rule="|---|---|"
    for variant in "${variants[@]}"; do
        header+=" $variant |"
        rule+="---:|"
    done
    {
        echo "# Binary sizes"
        echo
        echo "<!-- Generated by scripts/build-static.sh; do not edit by hand: run the script again. -->"
        echo
        echo "Generated by \`scripts/build-static.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), at commit $commit,"
        echo "with $("${RUSTC:-rustc}" --version)${zig_used:+ and zig $zig_used (the C compiler of the HTTPS builds for every target but x86-64)}."
        echo
        echo "Bytes of each static, stripped binary (\`status-exporter --version\` names the variant's"
        echo "features). Budgets: plain ≤ 1 MiB ($(grouped "${budget[plain]}") bytes), HTTPS ≤ 3 MiB"
        echo "($(grouped "${budget[https]}") bytes). How they are built, and the targets not built here:"
        echo "[deployment.md](deployment.md#static-binaries)."
        echo
        echo "$header"
        echo "$rule"
        for target in "$@"; do
            row="| \`$target\` | \`$(arch_of "$target")\` |"
            for variant in "${variants[@]}"; do
                cell="not built"
                for line in "${built[@]}"; do
                    read -r t v bin <<<"$line"
                    [[ $t == "$target" && $v == "$variant" ]] && cell=$(grouped "$(stat -c %s "$bin")")
                done
                row+=" $cell |"
            done
            echo "$row"
        done
    } >"$sizes_file.new"
    mv "$sizes_file.new" "$sizes_file"
    echo "build-static: wrote $sizes_file"
fi

if ((${#over[@]})); then
    echo >&2
    for line in "${over[@]}"; do
        echo "build-static: OVER BUDGET: $line" >&2
    done
    exit 1
fi
