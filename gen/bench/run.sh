#!/usr/bin/env bash
# gen benchmark (not a test): side by side in one run, medians of $RUNS runs.
#
#   sudo gen/bench/run.sh            # RUNS=3 SECS=5 by default
#   RUNS=5 SECS=10 sudo -E gen/bench/run.sh
#
# Topology: a direct lab (gen0 <-> dut0, 2 queues) with a DROP program on dut0
# (gen/bench/drop.bpf.c, until dut-programs lands). Every rate is measured at the
# receiver: dut0's rx packet counter (veth counts frames its XDP program dropped).
#
#  1. Peak rate, 64-byte min-multi-flow, per engine and queue count:
#     gen afxdp (copy mode here), trafgen (netsniff-ng, PF_PACKET TX ring),
#     gen xdp-live (BPF_PROG_RUN live frames); 1 and 2 queues/CPUs.
#  2. Pacing: requested vs delivered at 10k, 100k, 500k pps and max, per engine,
#     with gen's own pacing deviation percentiles.
#  3. (later) DNS: dnsperf vs gen against dut's dns-cache -- see the marked section.
set -euo pipefail

RUNS=${RUNS:-3}
SECS=${SECS:-5}
NAME=${NAME:-genbench$$}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GEN=$ROOT/target/release/gen
LAB=$ROOT/target/release/lab
GNS=$NAME-gen
DNS_=$NAME-dut
TMP=$(mktemp -d)

cleanup() {
    "$LAB" down --name "$NAME" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "error: run as root (namespaces, XDP)" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "error: trafgen (netsniff-ng) not installed" >&2; exit 1; }

echo "building (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p gen -p lab)
clang -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$ROOT/gen/bench/drop.bpf.c" -o "$TMP/drop.o"

"$LAB" up --name "$NAME" --topology direct --queues 2 >/dev/null
ip -force -n "$DNS_" link set dev dut0 xdpdrv obj "$TMP/drop.o" sec xdp

rx() { ip -n "$DNS_" -j -s link show dev dut0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# trafgen config equivalent to min-multi-flow: 60-byte frames (64 on the wire),
# 256 flows (source port incrementing; trafgen cannot dinc() an address).
cat > "$TMP/mmf.cfg" <<CFG
{
  eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01),
  ipv4(sa=198.18.0.1, da=198.18.0.2, ttl=64, df),
  udp(sp=dinc(1024, 1279), dp=9),
  fill(0x00, 18)
}
CFG

# One measurement: prints delivered pps at the receiver.
measure() { # label cmd...
    local a b t0 t1
    a=$(rx); t0=$(date +%s.%N)
    "$@" >"$TMP/out" 2>"$TMP/err" || true
    t1=$(date +%s.%N); b=$(rx)
    python3 -c "print(round(($b-$a)/$SECS))"
}

gen_run() { # engine queues [rate]
    local extra=()
    [ -n "${3:-}" ] && extra=(--rate "$3")
    "$GEN" --netns "$GNS" --iface gen0 --profile min-multi-flow --engine "$1" --queues "$2" \
        --duration "${SECS}s" --no-rx --output json "${extra[@]}" >"$TMP/gen.json" 2>"$TMP/gen.err"
}
trafgen_run() { # cpus
    local cpus=$1
    ip netns exec "$GNS" timeout -s INT "$SECS" trafgen --dev gen0 --cpus "$cpus" --conf "$TMP/mmf.cfg" \
        --no-sock-mem >/dev/null 2>&1 || true
}

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(int(statistics.median(v)))' "$@"; }

declare -A R
echo "peak rate, 64-byte min-multi-flow, ${SECS}s x ${RUNS} runs (receiver pps)..." >&2
for run in $(seq "$RUNS"); do
    for q in 1 2; do
        R[afxdp,$q]+=" $(measure gen_run afxdp "$q")"
        R[trafgen,$q]+=" $(measure trafgen_run "$q")"
        R[live,$q]+=" $(measure gen_run xdp-live "$q")"
    done
done

printf '\n## Peak rate (64-byte min-multi-flow, receiver counts, median of %s x %ss)\n\n' "$RUNS" "$SECS"
printf '| queues/CPUs | gen afxdp (copy) | trafgen | gen xdp-live | afxdp/trafgen | xdp-live/trafgen | xdp-live/afxdp |\n|---|---|---|---|---|---|---|\n'
for q in 1 2; do
    a=$(median ${R[afxdp,$q]}); t=$(median ${R[trafgen,$q]}); l=$(median ${R[live,$q]})
    python3 - "$q" "$a" "$t" "$l" <<'PY'
import sys
q, a, t, l = sys.argv[1], *map(float, sys.argv[2:])
r = lambda x, y: f"{x / y:.2f}x" if y else "n/a"
print(f"| {q} | {a/1e6:.3f} Mpps | {t/1e6:.3f} Mpps | {l/1e6:.3f} Mpps | {r(a, t)} | {r(l, t)} | {r(l, a)} |")
PY
done

echo "pacing (1 queue)..." >&2
printf '\n## Pacing, 1 queue (requested vs delivered at the receiver, median of %s x %ss; deviation = actual - scheduled send time, gen'"'"'s own)\n\n' "$RUNS" "$SECS"
printf '| engine | requested | delivered | error | deviation p50 | p99 |\n|---|---|---|---|---|---|\n'
for engine in afxdp xdp-live; do
    for rate in 10k 100k 500k max; do
        ds=(); p50s=(); p99s=()
        for run in $(seq "$RUNS"); do
            if [ "$rate" = max ]; then d=$(measure gen_run "$engine" 1); else d=$(measure gen_run "$engine" 1 "$rate"); fi
            ds+=("$d")
            p50s+=("$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print([x for x in r if x["type"]=="final"][0]["pacing_deviation_ns"]["p50"])' "$TMP/gen.json")")
            p99s+=("$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print([x for x in r if x["type"]=="final"][0]["pacing_deviation_ns"]["p99"])' "$TMP/gen.json")")
        done
        python3 - "$engine" "$rate" "$(median "${ds[@]}")" "$(median "${p50s[@]}")" "$(median "${p99s[@]}")" <<'PY'
import sys
eng, rate, d, p50, p99 = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
req = {"10k": 1e4, "100k": 1e5, "500k": 5e5}.get(rate)
err = f"{(d / req - 1) * 100:+.2f} %" if req else "-"
fmt = lambda ns: f"{ns} ns" if ns < 1000 else f"{ns/1e3:.1f} us"
print(f"| {eng} | {rate} | {d/1e3:.1f} kpps | {err} | {fmt(p50) if req else '-'} | {fmt(p99) if req else '-'} |")
PY
    done
done

# ---------------------------------------------------------------------------
# DNS (TODO when dut lands): dnsperf vs gen against dut's dns-cache.
#   dut install dns-cache --iface dut0 --profile dns-small  (in $DNS_)
#   dnsperf -s 198.18.0.2 -d <names from profiles::NameSet> -l $SECS   (in $GNS)
#   gen --profile dns-small --rate R  -> replies_per_request, rx_rcodes
# Not run yet: the DUT programs are not on main.
# ---------------------------------------------------------------------------
printf '\n(%s, kernel %s, %s CPUs, load average %s)\n' "$(date -u +%FT%TZ)" "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "done" >&2
