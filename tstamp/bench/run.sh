#!/usr/bin/env bash
# tstamp benchmark (not a test): offline matching speed in packets/s on one core, side by
# side with tshark's `dns.time` on the same file in the same run, and a comparison of the
# response-time values both report. Medians of several runs.
#
#   tstamp/bench/run.sh            # defaults: 2.5M pairs (5M frames) big file, 300k pairs vs tshark
#   PAIRS_BIG=5000000 PAIRS_PEER=200000 RUNS=5 tstamp/bench/run.sh
#
# Live section (mirror rate with zero capture drops per back end): needs `gen`, see the
# end of this file.
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS_BIG=${PAIRS_BIG:-2500000}
PAIRS_PEER=${PAIRS_PEER:-300000}
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-/tmp/tstamp-bench}
mkdir -p "$DIR"
cargo build --release -q -p tstamp
T=target/release/tstamp
S=target/release/tstamp-synth
[ -f "$DIR/big-$PAIRS_BIG.pcap" ] || $S "$DIR/big-$PAIRS_BIG.pcap" --pairs "$PAIRS_BIG" --gap-ns 1000 --lose-every 1000
[ -f "$DIR/peer-$PAIRS_PEER.pcap" ] || $S "$DIR/peer-$PAIRS_PEER.pcap" --pairs "$PAIRS_PEER" --gap-ns 1000 --lose-every 1000

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Time one command RUNS times; print "median-wall-seconds median-cpu-seconds" (cpu = user +
# sys: both tools are single-threaded, so frames / cpu is packets per second per core and
# is less disturbed by other load on a shared machine than the wall clock).
timeit() {
  local runs=$1; shift
  local f; f=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$f" -a "$@" >/dev/null 2>/dev/null
  done
  local w c
  w=$(awk '{print $1}' "$f" | median); c=$(awk '{print $2 + $3}' "$f" | median)
  rm -f "$f"; echo "$w $c"
}
rate() { echo "$1 / $2" | bc; }

echo "host: $(uname -r), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "tshark: $(tshark --version 2>/dev/null | head -1)"
cat "$DIR/big-$PAIRS_BIG.pcap" "$DIR/peer-$PAIRS_PEER.pcap" > /dev/null  # page cache

frames_big=$((2 * PAIRS_BIG - PAIRS_BIG / 1000))
read -r w c < <(timeit "$RUNS" $T --read "$DIR/big-$PAIRS_BIG.pcap" --output json)
echo "tstamp --read big ($frames_big frames): median wall ${w}s ($(rate $frames_big $w) pps), cpu ${c}s ($(rate $frames_big $c) pps per core)"

frames_peer=$((2 * PAIRS_PEER - PAIRS_PEER / 1000))
read -r tw tc < <(timeit "$RUNS" $T --read "$DIR/peer-$PAIRS_PEER.pcap" --output json)
read -r sw sc < <(timeit 3 tshark -r "$DIR/peer-$PAIRS_PEER.pcap" -T fields -e dns.time)
echo "same file ($frames_peer frames), medians:"
echo "  tstamp --read:                  wall ${tw}s ($(rate $frames_peer $tw) pps)  cpu ${tc}s ($(rate $frames_peer $tc) pps/core)"
echo "  tshark -T fields -e dns.time:   wall ${sw}s ($(rate $frames_peer $sw) pps)  cpu ${sc}s ($(rate $frames_peer $sc) pps/core)"
echo "  tstamp/tshark speed ratio: wall $(echo "$sw / $tw" | bc)x, cpu $(echo "$sc / $tc" | bc)x"

# Same numbers? tshark's dns.time for every response vs tstamp's summary.
$T --read "$DIR/peer-$PAIRS_PEER.pcap" --output json --hist-csv "$DIR/peer.csv" | tail -1 > "$DIR/tstamp.json"
tshark -r "$DIR/peer-$PAIRS_PEER.pcap" -T fields -e dns.time -Y 'dns.flags.response == 1' > "$DIR/tshark.txt" 2>/dev/null
python3 - "$DIR/tstamp.json" "$DIR/tshark.txt" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
v = sorted(round(float(x) * 1e9) for x in open(sys.argv[2]) if x.strip())
n = len(v)
def rank(q): return v[max(0, min(n - 1, int(-(-q * n // 1)) - 1))]
r = t["rtt_ns"]
rows = [("count", t["matched"], n), ("min", r["min"], v[0]), ("max", r["max"], v[-1]),
        ("mean", round(r["mean"], 1), round(sum(v) / n, 1)),
        ("p50", r["p50"], rank(0.5)), ("p99", r["p99"], rank(0.99)), ("p99.9", r["p99_9"], rank(0.999))]
print(f"{'':8}{'tstamp':>12}{'tshark':>12}  (ns; tstamp percentiles are HDR, 3 significant digits)")
ok = True
for k, a, b in rows:
    exact = k in ("count", "min", "max", "mean")
    good = (a == b) if exact else abs(a - b) <= 0.002 * b
    ok &= good
    print(f"{k:8}{a:>12}{b:>12}  {'ok' if good else 'DIFFERS'}")
print("lost (tstamp):", t["lost"], " unanswered in the file by construction:", "1 in 1000")
sys.exit(0 if ok else 1)
PY

# --- Live (needs gen on main; TODO once gen lands) -------------------------------------
# For each back end (af-packet now, af-xdp once sink's AF_XDP backend is built):
#   lab up; dut answers NXDOMAIN; gen --iface gen0 --profile dns-small --rate R on lab-gen;
#   tstamp --netns lab-mon --iface mon0 --backend B --output json --duration 10s
#   and raise R until capture_drops > 0; report the highest R with zero drops.
