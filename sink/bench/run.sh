#!/usr/bin/env bash
# sink benchmark (not a test): the highest rate the lab's mirror port carries into sink
# with zero capture drops, per back end (af-packet, af-xdp), side by side in one run.
#
# Load: trafgen (netsniff-ng) in the generator namespace sends 60-byte UDP frames to the
# DUT through the lab's switch at a fixed rate; the switch mirrors them to mon0, where
# `sink --backend B` counts. A rate passes when sink reports zero kernel and ring drops
# and received at least as many frames as trafgen sent. Frames lost before mon0 (the
# generator's veth, the switch's mirror port) are shown separately from sink's own
# capture drops: `gen0_tx` is what left the generator, `sw_drop` the switch ports' drops
# (sw-gen rx + sw-mon tx), so a run with `upstream` loss is the lab's limit, not sink's. (`gen` will replace trafgen
# once it lands on main: see the TODO below.)
#
#   sink/bench/run.sh                       # rates 50k..800k pps, 4 s each, 3 runs each
#   RATES="100000 200000" SECS=5 RUNS=5 sink/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-"50000 100000 200000 300000 400000 600000 800000"}
SECS=${SECS:-4}
RUNS=${RUNS:-3}
cargo build --release -q -p sink -p lab
SINK=$PWD/target/release/sink
LAB=$PWD/target/release/lab
NAME=sinkbench$$
CONF=$(mktemp --suffix=.cfg)
cleanup() { $LAB down --name "$NAME" >/dev/null 2>&1 || true; rm -f "$CONF"; }
trap cleanup EXIT
$LAB up --name "$NAME" >/dev/null
cat > "$CONF" <<'CFG'
{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01), ipv4(saddr=198.18.0.1, daddr=198.18.0.2, ttl=64), udp(sp=1000, dp=9), fill(0x00, 18) }
CFG
echo "host: $(uname -r), $(nproc) cores; $(trafgen --version 2>&1 | head -1)"
# /proc/net/dev column of an interface in a namespace: rx drop = 4, tx packets = 10, tx drop = 12.
devstat() { ip netns exec "$1" cat /proc/net/dev | awk -v i="$2:" -v c="$3" '$1 == i {print $c}'; }
swdrops() { echo $(( $(devstat "$NAME-sw" sw-gen 5) + $(devstat "$NAME-sw" sw-mon 13) )); }
printf "%-10s %-8s %4s %9s %9s %9s %8s %7s %7s  %s\n" backend rate_pps run sent gen0_tx received sw_drop kernel ring verdict
declare -A best
for backend in af-packet af-xdp; do
  best[$backend]=0
  for rate in $RATES; do
    ok_all=1
    for run in $(seq "$RUNS"); do
      n=$((rate * SECS))
      out=$(mktemp)
      $SINK --netns "$NAME-mon" --iface mon0 --backend "$backend" --output json --duration $((SECS + 2)) > "$out" 2>/dev/null &
      spid=$!
      for _ in $(seq 100); do grep -q '"ready"' "$out" 2>/dev/null && break; sleep 0.05; done
      tx0=$(devstat "$NAME-gen" gen0 11); sw0=$(swdrops)
      ip netns exec "$NAME-gen" trafgen -o gen0 -i "$CONF" -b "${rate}pps" -n "$n" -P 1 -q -C >/dev/null 2>&1 || true
      wait "$spid" || true
      txd=$(( $(devstat "$NAME-gen" gen0 11) - tx0 )); swd=$(( $(swdrops) - sw0 ))
      read -r recv kern ring < <(python3 -c '
import json,sys
f=[json.loads(l) for l in open(sys.argv[1]) if "\"final\"" in l][-1]
print(f["packets"], f["drops"]["kernel"], f["drops"]["ring"])' "$out")
      rm -f "$out"
      verdict=ok
      if [ "$kern" -ne 0 ] || [ "$ring" -ne 0 ]; then verdict=CAPTURE-DROPS; ok_all=0
      elif [ "$recv" -lt "$n" ]; then verdict=upstream-loss; ok_all=0; fi
      printf "%-10s %-8s %4s %9s %9s %9s %8s %7s %7s  %s\n" "$backend" "$rate" "$run" "$n" "$txd" "$recv" "$swd" "$kern" "$ring" "$verdict"
    done
    if [ $ok_all -eq 1 ]; then best[$backend]=$rate; else break; fi
  done
done
echo
for backend in af-packet af-xdp; do
  echo "highest rate with zero loss (capture or upstream) in all $RUNS runs, $backend: ${best[$backend]} pps"
done
# TODO (gen on main): replace trafgen with `gen --iface gen0 --profile dns-small --rate R`,
# answer with the DUT's XDP NXDOMAIN responder, and run tstamp on mon0 instead of sink to
# give the same figure for request/response matching (tstamp's capture is sink's).
