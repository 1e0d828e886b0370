#!/usr/bin/env bash
# What gen's xdp-live program costs, part by part (not a test; root).
#
#   sudo gen/bench/ablate.sh                 # ABLATE_REV=9b05832 RUNS=7 N=4000000
#   PREV_REV=6275212 sudo -E gen/bench/ablate.sh   # + that revision's program (before/after)
#
# Builds variants of gen_live.bpf.c as of $ABLATE_REV (the program before the
# division/checksum change) with one part cut out each (the frames of a cut
# variant are wrong: these only price the part), and the tree's current program.
# Two measurements, RUNS times interleaved, min and median reported (on shared
# cores the minimum is the better estimate of the intrinsic cost):
#   prog   the program alone: plain BPF_PROG_TEST_RUN (-P) of $N runs on one
#          buffer, ns per run by the kernel's test-run timer (time spent
#          rescheduled excluded). The pad-byte trim is cut out of every variant
#          (it would accumulate on the one buffer); the reference runs with -R
#          (restore) or bare.
#   live   the whole path in live mode (program + redirect + veth xmit + the DUT's
#          drop), same timer, for the unmodified programs (trim included):
#          $ABLATE_REV's, the tree's, live_ref fast and correct (-R -T).
# With PREV_REV=<git rev>, that revision's program is measured the same way (prog
# and live), interleaved with the others: before/after in one run.
# In the reference's loop (live_gen / live_ref), min-multi-flow, one thread on
# CPU 0, a direct lab's dut0 behind dut's drop program.
set -euo pipefail

RUNS=${RUNS:-7}
N=${N:-4000000}
ABLATE_REV=${ABLATE_REV:-9b05832}
PREV_REV=${PREV_REV:-}
NAME=${NAME:-ga$$}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GEN=$ROOT/target/release/gen
LAB=$ROOT/target/release/lab
DUT=$ROOT/target/release/dut
TMP=$(mktemp -d)

cleanup() {
    "$LAB" down --name "$NAME" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] || { echo "error: run as root" >&2; exit 1; }

(cd "$ROOT" && cargo build --release -q -p gen -p lab -p dut-programs --bins)
git -C "$ROOT" show "$ABLATE_REV:gen/src/bpf/gen_live.bpf.c" >"$TMP/base.bpf.c"
python3 - "$TMP" "$ROOT/gen/src/bpf/gen_live.bpf.c" <<'PY'
import sys
d, cur = sys.argv[1], sys.argv[2]
s = open(f"{d}/base.bpf.c").read()
inc = """			v = patches[i].min +
			    ((n % patches[i].span) * (patches[i].arg % patches[i].span)) % patches[i].span;"""
assert inc in s, "the increment line changed: update ablate.sh"
cut_csum = lambda t: t[:t.index("	/* IPv4 header checksum. */")] + t[t.rindex("	return XDP_TX;"):]
restore = "	for (i = 0; i < MAX_FRAME / 8; i++) {\n		__u64 *w = data + i * 8;"
assert restore in s
trim = "	if (bpf_xdp_adjust_tail(ctx, -1))\n		return XDP_ABORTED;\n"
assert trim in s
c = open(cur).read()
# The tree's program trims the pad byte and, for a smaller size of a mix, the rest.
trim_mix = "	if (bpf_xdp_adjust_tail(ctx, -(int)(1 + tmpl_len - len)))\n		return XDP_ABORTED;\n"
assert trim in c or trim_mix in c
open(f"{d}/live_base.bpf.c", "w").write(s)
open(f"{d}/live_current.bpf.c", "w").write(c)
s = s.replace(trim, "")
v = {
    "base": s,
    "onediv": s.replace(inc, "			v = patches[i].min + n % patches[i].span;"),
    "nodiv": s.replace(inc, "			v = patches[i].min + (n & 255);"),
    "nocsum": cut_csum(s),
    "nodiv_nocsum": cut_csum(s.replace(inc, "			v = patches[i].min + (n & 255);")),
    "norestore": s.replace(restore, restore.replace("i < MAX_FRAME / 8", "i < 0")),
    "current": c.replace(trim, "").replace(trim_mix, ""),
}
for k, t in v.items():
    open(f"{d}/{k}.bpf.c", "w").write(t)
PY
PREV=
if [ -n "$PREV_REV" ]; then
    git -C "$ROOT" show "$PREV_REV:gen/src/bpf/gen_live.bpf.c" >"$TMP/live_prev.bpf.c"
    python3 - "$TMP" <<'PY'
import sys
d = sys.argv[1]
c = open(f"{d}/live_prev.bpf.c").read()
trim = "	if (bpf_xdp_adjust_tail(ctx, -1))\n		return XDP_ABORTED;\n"
assert trim in c
open(f"{d}/prev.bpf.c", "w").write(c.replace(trim, ""))
PY
    PREV=prev
fi
for v in base onediv nodiv nocsum nodiv_nocsum norestore current live_base live_current ${PREV:+prev live_prev}; do
    GEN_LIVE_SRC=$TMP/$v.bpf.c "$HERE/build-ref.sh" "$TMP/$v" >/dev/null
done

"$LAB" up --name "$NAME" --topology direct --queues 2 >/dev/null
ip netns exec "$NAME-dut" timeout 20 tcpdump -i dut0 -w "$TMP/gen.pcap" -c 1 udp >/dev/null 2>&1 &
sleep 1.5
"$GEN" --netns "$NAME-gen" --iface gen0 --profile min-multi-flow --engine xdp-live --count 16 --rate 1k --no-rx \
    --output json >/dev/null 2>&1
wait
HEX=$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); cl=struct.unpack("<I",d[32:36])[0]; print(d[40:40+cl].hex())' "$TMP/gen.pcap")
VARY="-v 26:4:198.18.1.0:256 -v 34:2:1024:256" # profiles/min-multi-flow.toml
"$DUT" --netns "$NAME-dut" install drop --iface dut0 >/dev/null

ns() { python3 -c 'import json,sys; print(json.load(sys.stdin)["kernel_ns_per_run"])'; }
for run in $(seq "$RUNS"); do
    for v in base onediv nodiv nocsum nodiv_nocsum norestore current $PREV; do
        # shellcheck disable=SC2086
        echo "prog $v $(ip netns exec "$NAME-gen" nice -n -20 "$TMP/$v/live_gen" -i gen0 -x "$HEX" $VARY -n "$N" -c 0 -P | ns)"
    done
    for o in "" "-R"; do
        # shellcheck disable=SC2086
        echo "prog ref$o $(ip netns exec "$NAME-gen" nice -n -20 "$TMP/base/live_ref" -i gen0 -x "$HEX" $VARY -n "$N" -c 0 -P $o | ns)"
    done
    for v in live_base live_current ${PREV:+live_prev}; do
        # shellcheck disable=SC2086
        echo "live $v $(ip netns exec "$NAME-gen" nice -n -20 "$TMP/$v/live_gen" -i gen0 -x "$HEX" $VARY -n "$N" -c 0 | ns)"
    done
    for o in "" "-R -T"; do
        # shellcheck disable=SC2086
        echo "live ref${o// /} $(ip netns exec "$NAME-gen" nice -n -20 "$TMP/base/live_ref" -i gen0 -x "$HEX" $VARY -n "$N" -c 0 $o | ns)"
    done
done >"$TMP/res"
python3 - "$TMP/res" "$ABLATE_REV" "$PREV_REV" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kind, k, v = line.split()
    d[(kind, k)].append(float(v))
rev, prev = sys.argv[2], sys.argv[3]
st = lambda key: f"{min(d[key]):.0f} | {statistics.median(d[key]):.0f}"
print(f"Program alone (plain test runs, trim cut out; ns per frame):\n")
print("| program | min | median |\n|---|---|---|")
for k, label in [("base", f"gen_live.bpf.c as of {rev}"),
                 ("onediv", "  increment as min + n % span (1 division per field, not 3)"),
                 ("nodiv", "  increment without division (n & 255: min-multi-flow's spans)"),
                 ("nocsum", "  no IPv4/UDP checksum pass"),
                 ("nodiv_nocsum", "  neither division nor checksum pass"),
                 ("norestore", "  no template restore (8-byte words; the byte-loop tail stays)"),
                 ("prev", f"gen_live.bpf.c as of {prev}"),
                 ("current", "gen_live.bpf.c in the tree"),
                 ("ref", "live_ref: fields + precomputed checksum sums"),
                 ("ref-R", "live_ref + restore")]:
    if ("prog", k) in d:
        print(f"| {label} | {st(('prog', k))} |")
for k in ["prev", "current"]:
    if ("prog", k) in d and ("prog", "ref-R") in d:
        print(f"\nref + restore / {k}: {min(d[('prog', 'ref-R')]) / min(d[('prog', k)]):.2f} (mins), "
              f"{statistics.median(d[('prog', 'ref-R')]) / statistics.median(d[('prog', k)]):.2f} (medians)")
print(f"\nWhole live path (program + redirect + veth xmit + DUT drop; ns per frame):\n")
print("| sender | min | median | ref correct / this (mins) | (medians) |\n|---|---|---|---|---|")
rc = statistics.median(d[("live", "ref-R-T")])
rcm = min(d[("live", "ref-R-T")])
for k, label in [("live_base", f"gen's program as of {rev}"), ("live_prev", f"gen's program as of {prev}"),
                 ("live_current", "gen's program in the tree"),
                 ("ref", "live_ref fast"), ("ref-R-T", "live_ref correct (-R -T)")]:
    if ("live", k) not in d:
        continue
    print(f"| {label} | {st(('live', k))} | {rcm / min(d[('live', k)]):.2f} | {rc / statistics.median(d[('live', k)]):.2f} |")
PY
printf '\n(%s, kernel %s, RUNS=%s N=%s, load average %s)\n' "$(date -u +%FT%TZ)" "$(uname -r)" "$RUNS" "$N" "$(cut -d' ' -f1-3 /proc/loadavg)"
