#!/usr/bin/env bash
# tstamp live benchmark (not a test): the highest DNS request rate whose requests AND
# responses the lab's mirror port carries into tstamp with zero capture drops, per
# capture back end, with response times. gen (afxdp engine, profile dns-ping) on gen0
# sends queries at a paced rate; the DUT answers NXDOMAIN with `dut install dns-ping`
# (native XDP, XDP_TX); tstamp on mon0 (--backend B) matches them. tstamp is stopped
# with SIGINT one second after gen finishes.
#
#   tstamp/bench/live.sh                           # rates 25k..200k, 5 s, 3 runs each
#   RATES="50k 100k" SECS=5 RUNS=3 tstamp/bench/live.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-"25k 50k 100k 150k 200k"}
SECS=${SECS:-5}
RUNS=${RUNS:-3}
cargo build --release -q -p tstamp -p gen -p dut-programs -p lab
B=$PWD/target/release
NAME=tsbench$$
cleanup() { $B/lab down --name "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
$B/lab up --name "$NAME" >/dev/null
$B/dut install dns-ping --netns "$NAME-dut" --iface dut0 --mode native >/dev/null 2>&1 \
  || ip netns exec "$NAME-dut" $B/dut install dns-ping --iface dut0 --mode native >/dev/null
echo "host: $(uname -r), $(nproc) cores"
printf "%-10s %-6s %3s %9s %9s %9s %9s %6s %6s %7s %9s %9s  %s\n" \
  backend rate run gen_tx_pps requests responses matched lost dup drops p50_us p99_us verdict
for backend in af-packet af-xdp; do
  for rate in $RATES; do
    for run in $(seq "$RUNS"); do
      ts=$(mktemp); g=$(mktemp)
      $B/tstamp --netns "$NAME-mon" --iface mon0 --backend "$backend" --output json --timeout 200ms > "$ts" 2>/dev/null &
      tpid=$!
      for _ in $(seq 200); do grep -q '"ready"' "$ts" 2>/dev/null && break; sleep 0.05; done
      $B/gen --netns "$NAME-gen" --iface gen0 --profile dns-ping --rate "$rate" --duration "$SECS" --output json > "$g" 2>/dev/null || true
      sleep 1
      kill -INT "$tpid"; wait "$tpid" || true
      python3 - "$ts" "$g" "$backend" "$rate" "$run" <<'PY'
import json, sys
fin = [json.loads(l) for l in open(sys.argv[1]) if '"final"' in l]
gen = [json.loads(l) for l in open(sys.argv[2]) if '"final"' in l]
if not fin or not gen:
    print(sys.argv[3], sys.argv[4], sys.argv[5], "no final record (tstamp or gen failed)"); sys.exit(0)
t, g = fin[-1], gen[-1]
r = t["rtt_ns"]
us = lambda v: "-" if v is None else f"{v/1e3:.1f}"
verdict = "ok" if t["capture_drops"] == 0 else "CAPTURE-DROPS"
if t["requests"] < g["tx_packets"]:
    verdict += " (requests<sent: lost before mon0)"
print(f'{sys.argv[3]:<10} {sys.argv[4]:<6} {sys.argv[5]:>3} {g["tx_pps"]:>9.0f} {t["requests"]:>9} {t["responses"]:>9} '
      f'{t["matched"]:>9} {t["lost"]:>6} {t["duplicates"]:>6} {t["capture_drops"]:>7} {us(r["p50"]):>9} {us(r["p99"]):>9}  {verdict}')
PY
      rm -f "$ts" "$g"
    done
  done
done
