#!/usr/bin/env bash
# Builds the reference live-frames sender (live_ref.c + live_ref.bpf.c) and
# live_gen (gen's XDP program, $GEN_LIVE_SRC, default gen/src/bpf/gen_live.bpf.c,
# in the same loop) into $1 (default: a temporary directory); prints live_ref's path.
#
# libbpf: the headers and static archive that libbpf-sys builds under
# target/release/build/libbpf-sys-*/out (present after `cargo build --release`),
# else the system's libbpf-dev (pkg-config libbpf). Needs clang, bpftool (skeleton),
# libelf and zlib (the ones gen links).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"

LIBBPF_INC= LIBBPF_LIB=
for d in $(ls -dt "$ROOT"/target/release/build/libbpf-sys-*/out 2>/dev/null); do
    if [ -f "$d/include/bpf/libbpf.h" ] && [ -f "$d/libbpf.a" ]; then
        LIBBPF_INC=$d/include LIBBPF_LIB=$d/libbpf.a
        break
    fi
done
if [ -z "$LIBBPF_INC" ]; then
    if pkg-config --exists libbpf 2>/dev/null; then
        LIBBPF_INC=$(pkg-config --variable=includedir libbpf) LIBBPF_LIB=$(pkg-config --libs libbpf)
    else
        echo "error: no libbpf: run 'cargo build --release' first (libbpf-sys vendors one), or 'apt-get install libbpf-dev'" >&2
        exit 1
    fi
fi
for t in clang bpftool cc; do
    command -v $t >/dev/null || { echo "error: $t not installed (apt-get install clang bpftool gcc)" >&2; exit 1; }
done

clang -O2 -g -target bpf -I"$LIBBPF_INC" -I/usr/include/x86_64-linux-gnu \
    -c "$HERE/live_ref.bpf.c" -o "$OUT/live_ref.bpf.o"
bpftool gen skeleton "$OUT/live_ref.bpf.o" name live_ref_bpf > "$OUT/live_ref.skel.h"
cc -O2 -Wall -I"$OUT" -I"$LIBBPF_INC" "$HERE/live_ref.c" -o "$OUT/live_ref" $LIBBPF_LIB -lelf -lz
GEN_LIVE_SRC=${GEN_LIVE_SRC:-$ROOT/gen/src/bpf/gen_live.bpf.c}
clang -O2 -g -target bpf -I"$LIBBPF_INC" -I/usr/include/x86_64-linux-gnu \
    -c "$GEN_LIVE_SRC" -o "$OUT/gen_live.bpf.o"
bpftool gen skeleton "$OUT/gen_live.bpf.o" name gen_live_bpf > "$OUT/gen_live.skel.h"
# A program with its per-run constants in rodata (patch flags, checksum bases)
# needs live_gen to fill them as gen/src/live.rs does.
BASES=
grep -q 'ip_base' "$GEN_LIVE_SRC" && BASES=-DGEN_LIVE_BASES
# A program with the header offsets in rodata (VLAN tags, TCP) takes the
# transport length there instead of udp_len.
grep -q 'l4_len' "$GEN_LIVE_SRC" && BASES="$BASES -DGEN_LIVE_OFFSETS"
# Programs since the paced count runs' end time keep last_ns in their queue state.
grep -q 'last_ns' "$GEN_LIVE_SRC" && BASES="$BASES -DGEN_LIVE_LAST_NS"
cc -O2 -Wall $BASES -I"$OUT" -I"$LIBBPF_INC" "$HERE/live_gen.c" -o "$OUT/live_gen" $LIBBPF_LIB -lelf -lz
echo "$OUT/live_ref"
