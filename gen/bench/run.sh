#!/usr/bin/env bash
# gen benchmark (not a test): every tool side by side in one run, medians of
# $RUNS runs of $SECS s, rates counted at the receiver (dut0's counters / the DUT
# program's counters), ratios taken per run (peers run back to back) and their
# median reported.
#
#   sudo gen/bench/run.sh                       # RUNS=3 SECS=5, all sections
#   RUNS=5 SECS=10 SECTIONS="ref dns" sudo -E gen/bench/run.sh
#
# Sections (SECTIONS, default all):
#   ref     gen xdp-live vs the reference live-frames sender (live_ref.c +
#           live_ref.bpf.c, C + libbpf: BPF_PROG_RUN live frames, batch 64, one
#           thread on CPU 0, no pacing) sending the same frames (frame 0 captured
#           from gen, min-multi-flow's varying fields; both captures compared byte
#           for byte first): fast (varying fields + checksums only), +trim (one pad
#           byte trimmed per frame), correct (+ whole template restored: what gen
#           does since issue 9). 1 thread, min-multi-flow, dut's drop program.
#           Also gen's XDP program alone in the reference's loop (live_gen), and, with
#           GEN_LIVE_ALT_REV=<git rev>, that revision's program the same way.
#   peak    gen afxdp / trafgen / gen xdp-live, 1 and 2 queues/CPUs, min-multi-flow,
#           against dut's drop program.
#   pacing  requested vs delivered at 10k, 100k, 500k pps and max, 1 queue.
#   dns     DNS answered per second against `dut install dns-cache --profile
#           dns-small` (2-queue lab): gen afxdp (2 queues), gen xdp-live (1 and 2),
#           dnsperf at its tuned settings ($DNSPERF_OPTS); answers from the DUT's
#           counters, the tools' own counts beside them.
#   rate    gen --profile dns-small --rate 2M on a 1-queue and a 2-queue lab, both
#           engines: delivered at the DUT vs requested, answers counted by the DUT
#           and by gen.
# Besides pps, each run records the CPU time the tool consumed (rusage.py: user +
# system of the tool and its children): pps per consumed CPU-second holds up
# better than wall pps when other jobs share the cores.
#
# Tool settings (tuned on this machine, see the dated results file):
#   TRAFGEN_OPTS   trafgen options besides --dev/--conf/-P (default: --no-sock-mem;
#                  -H is left out: it makes trafgen SCHED_FIFO 99, which no other
#                  tool here gets and which starves the other jobs on shared cores)
#   DNSPERF_OPTS   dnsperf -c/-q/-T (default: -T 2 -c 2 -q 300)
#   NICE           every tool runs under `nice -n $NICE` (default -20), the same for all
set -euo pipefail

RUNS=${RUNS:-3}
SECS=${SECS:-5}
SECTIONS=${SECTIONS:-ref peak pacing dns rate}
TRAFGEN_OPTS=${TRAFGEN_OPTS:---no-sock-mem}
DNSPERF_OPTS=${DNSPERF_OPTS:--T 2 -c 2 -q 300}
NICE=${NICE:--20}
NAME=${NAME:-gb$$}
NAME1=${NAME}q1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GEN=$ROOT/target/release/gen
LAB=$ROOT/target/release/lab
DUT=$ROOT/target/release/dut
GNS=$NAME-gen
DNS_=$NAME-dut
TMP=$(mktemp -d)
RAW=${RAW:-$TMP/raw.tsv}
: >"$RAW"

cleanup() {
    "$LAB" down --name "$NAME" >/dev/null 2>&1 || true
    "$LAB" down --name "$NAME1" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

has() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

[ "$(id -u)" = 0 ] || { echo "error: run as root (namespaces, XDP)" >&2; exit 1; }
if has peak; then command -v trafgen >/dev/null || { echo "error: trafgen not installed (apt-get install netsniff-ng)" >&2; exit 1; }; fi
if has dns; then command -v dnsperf >/dev/null || { echo "error: dnsperf not installed (apt-get install dnsperf)" >&2; exit 1; }; fi
if has ref; then command -v tcpdump >/dev/null || { echo "error: tcpdump not installed (apt-get install tcpdump)" >&2; exit 1; }; fi

echo "building (release)..." >&2
(cd "$ROOT" && cargo build --release -q -p gen -p lab -p dut-programs --bins)
if has ref; then
    REF=$("$HERE/build-ref.sh" "$TMP/ref")
    LGEN=$TMP/ref/live_gen
    if [ -n "${GEN_LIVE_ALT_REV:-}" ]; then
        # gen's XDP program as of another revision, in the same loop: before/after.
        git -C "$ROOT" show "$GEN_LIVE_ALT_REV:gen/src/bpf/gen_live.bpf.c" >"$TMP/gen_live_alt.bpf.c"
        GEN_LIVE_SRC=$TMP/gen_live_alt.bpf.c "$HERE/build-ref.sh" "$TMP/alt" >/dev/null
    fi
fi

"$LAB" up --name "$NAME" --topology direct --queues 2 >/dev/null

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; } # section config run metric value
rx_pkts() { ip -n "$1" -j -s link show dev dut0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
dut_ctr() { # netns -> "answers packets"
    "$DUT" --netns "$1" status --json | python3 -c '
import json,sys
c=[i for i in json.load(sys.stdin)["interfaces"] if i["iface"]=="dut0"][0]["counters"]
print(c["answers"], c["packets"])'
}
final() { # key [file]: a field of gen's final record
    python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
f=[x for x in r if x["type"]=="final"]
v=f[0].get(sys.argv[1]) if f else None
print("null" if v is None else json.dumps(v))' "$1" "${2:-$TMP/out}"
}
# One measurement at dut0's receive counter: records pps and cpu.
run_rx() { # section config run cmd...
    local s=$1 c=$2 r=$3 a b wc
    shift 3
    a=$(rx_pkts "$DNS_")
    wc=$(python3 "$HERE/rusage.py" "$TMP/out" "$TMP/err" nice -n "$NICE" "$@")
    b=$(rx_pkts "$DNS_")
    rec "$s" "$c" "$r" pps "$(((b - a) / SECS))"
    rec "$s" "$c" "$r" cpu "${wc#* }"
}
gen_mmf() { # engine queues [rate]
    local extra=()
    [ -n "${3:-}" ] && extra=(--rate "$3")
    echo "$GEN" --netns "$GNS" --iface gen0 --profile min-multi-flow --engine "$1" --queues "$2" \
        --duration "${SECS}s" --no-rx --output json "${extra[@]}"
}
trafgen_cmd() { # cpus
    echo ip netns exec "$GNS" timeout -s INT "$SECS" trafgen --dev gen0 --conf "$TMP/mmf.cfg" -P "$1" $TRAFGEN_OPTS
}
declare -A CMDS # config -> command line, printed at the end
note() { CMDS[$1]="$2"; }

# trafgen config equivalent to min-multi-flow: 60-byte frames (64 on the wire),
# 256 flows (source port incrementing; trafgen cannot dinc() an address).
cat >"$TMP/mmf.cfg" <<CFG
{
  eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01),
  ipv4(sa=198.18.0.1, da=198.18.0.2, ttl=64, df),
  udp(sp=dinc(1024, 1279), dp=9),
  fill(0x00, 18)
}
CFG

# ---------------------------------------------------------------------------
# ref: gen xdp-live vs the reference sender, same frames.
if has ref; then
    echo "ref: capturing gen's frames..." >&2
    capture() { # pcap cmd...: the first 1024 UDP frames dut0 receives (XDP_PASS placeholder)
        local pcap=$1
        shift
        ip netns exec "$DNS_" timeout 20 tcpdump -i dut0 -B 16384 -w "$pcap" -c 1024 udp >/dev/null 2>&1 &
        local td=$!
        sleep 1.5
        "$@" >/dev/null 2>&1 || true
        wait $td || true
    }
    capture "$TMP/gen.pcap" "$GEN" --netns "$GNS" --iface gen0 --profile min-multi-flow --engine xdp-live \
        --count 1024 --rate 20k --no-rx --output json
    read -r HEX VARY < <(python3 - "$TMP/gen.pcap" "$ROOT/profiles/min-multi-flow.toml" <<'PY'
import ipaddress, struct, sys, tomllib
d = open(sys.argv[1], "rb").read()
cl = struct.unpack("<I", d[24 + 8:24 + 12])[0]
f0 = d[24 + 16:24 + 16 + cl]
# Field -> (offset, width) in an Ethernet/IPv4/UDP frame.
at = {"ipv4.src": (26, 4), "ipv4.dst": (30, 4), "udp.src_port": (34, 2), "udp.dst_port": (36, 2)}
vs = []
for v in tomllib.load(open(sys.argv[2], "rb")).get("vary", []):
    assert v["mode"] == "increment" and v.get("step", 1) == 1, v
    o, w = at[v["field"]]
    m = v["min"]
    m = int(ipaddress.ip_address(m)) if isinstance(m, str) else int(m)
    vs.append(f"-v {o}:{w}:{m}:{v['count']}")
print(f0.hex(), " ".join(vs))
PY
)
    REFARGS="-i gen0 -x $HEX $VARY -c 0"
    same=yes
    for v in "" "-T" "-R -T" gen; do
        # shellcheck disable=SC2086
        if [ "$v" = gen ]; then
            capture "$TMP/ref.pcap" ip netns exec "$GNS" "$LGEN" $REFARGS -n 1024
        else
            capture "$TMP/ref.pcap" ip netns exec "$GNS" "$REF" $REFARGS -n 1024 $v
        fi
        python3 - "$TMP/gen.pcap" "$TMP/ref.pcap" <<'PY' || same=no
import struct, sys
def frames(p):
    d = open(p, "rb").read(); off = 24; out = []
    while off < len(d):
        cl = struct.unpack("<I", d[off + 8:off + 12])[0]; out.append(d[off + 16:off + 16 + cl]); off += 16 + cl
    return out
a, b = frames(sys.argv[1]), frames(sys.argv[2])
sys.exit(0 if len(a) == 1024 and a == b else 1)
PY
    done
    rec ref frames 0 identical "$same"
    [ "$same" = yes ] || echo "warning: the reference's first 1024 frames differ from gen's" >&2
fi

"$DUT" --netns "$DNS_" install drop --iface dut0 >/dev/null

if has ref; then
    echo "ref: gen xdp-live vs live_ref, ${SECS}s x ${RUNS} runs..." >&2
    note gen-live "$(gen_mmf xdp-live 1)"
    note ref-fast "ip netns exec $GNS live_ref $REFARGS -d $SECS"
    note ref-trim "ip netns exec $GNS live_ref $REFARGS -d $SECS -T"
    note ref-correct "ip netns exec $GNS live_ref $REFARGS -d $SECS -R -T"
    note gen-prog "ip netns exec $GNS live_gen $REFARGS -d $SECS"
    [ -n "${GEN_LIVE_ALT_REV:-}" ] && note gen-prog-alt "ip netns exec $GNS live_gen $REFARGS -d $SECS  (live_gen built from $GEN_LIVE_ALT_REV:gen/src/bpf/gen_live.bpf.c)"
    for run in $(seq "$RUNS"); do
        # shellcheck disable=SC2046
        run_rx ref gen-live "$run" $(gen_mmf xdp-live 1)
        # shellcheck disable=SC2086
        run_rx ref ref-fast "$run" ip netns exec "$GNS" "$REF" $REFARGS -d "$SECS"
        # shellcheck disable=SC2086
        run_rx ref ref-trim "$run" ip netns exec "$GNS" "$REF" $REFARGS -d "$SECS" -T
        # shellcheck disable=SC2086
        run_rx ref ref-correct "$run" ip netns exec "$GNS" "$REF" $REFARGS -d "$SECS" -R -T
        # shellcheck disable=SC2086
        run_rx ref gen-prog "$run" ip netns exec "$GNS" "$LGEN" $REFARGS -d "$SECS"
        if [ -n "${GEN_LIVE_ALT_REV:-}" ]; then
            # shellcheck disable=SC2086
            run_rx ref gen-prog-alt "$run" ip netns exec "$GNS" "$TMP/alt/live_gen" $REFARGS -d "$SECS"
        fi
    done
fi

# ---------------------------------------------------------------------------
if has peak; then
    echo "peak: 64-byte min-multi-flow, ${SECS}s x ${RUNS} runs..." >&2
    for q in 1 2; do
        note "afxdp-$q" "$(gen_mmf afxdp $q)"
        note "trafgen-$q" "$(trafgen_cmd $q)  (mmf.cfg: see run.sh)"
        note "live-$q" "$(gen_mmf xdp-live $q)"
    done
    for run in $(seq "$RUNS"); do
        for q in 1 2; do
            # shellcheck disable=SC2046
            run_rx peak "afxdp-$q" "$run" $(gen_mmf afxdp "$q")
            # shellcheck disable=SC2046
            run_rx peak "trafgen-$q" "$run" $(trafgen_cmd "$q")
            # shellcheck disable=SC2046
            run_rx peak "live-$q" "$run" $(gen_mmf xdp-live "$q")
        done
    done
fi

# ---------------------------------------------------------------------------
if has pacing; then
    echo "pacing (1 queue)..." >&2
    for engine in afxdp xdp-live; do
        for rate in 10k 100k 500k max; do
            for run in $(seq "$RUNS"); do
                if [ "$rate" = max ]; then
                    # shellcheck disable=SC2046
                    run_rx pacing "$engine-$rate" "$run" $(gen_mmf "$engine" 1)
                else
                    # shellcheck disable=SC2046
                    run_rx pacing "$engine-$rate" "$run" $(gen_mmf "$engine" 1 "$rate")
                fi
                dev=$(final pacing_deviation_ns)
                rec pacing "$engine-$rate" "$run" p50 "$(echo "$dev" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p50"])')"
                rec pacing "$engine-$rate" "$run" p99 "$(echo "$dev" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99"])')"
            done
        done
    done
fi

# ---------------------------------------------------------------------------
# DNS: answers counted by the DUT's program and by the tools.
dns_install() { # netns
    "$DUT" --netns "$1" remove --iface dut0 >/dev/null 2>&1 || true
    "$DUT" --netns "$1" install dns-cache --iface dut0 --profile dns-small >/dev/null
}
# One DNS measurement: DUT answers and packets per second, the tool's count, cpu.
run_dut() { # section config run netns cmd...
    local s=$1 c=$2 r=$3 ns=$4 a b wc
    shift 4
    read -r a0 p0 < <(dut_ctr "$ns")
    wc=$(python3 "$HERE/rusage.py" "$TMP/out" "$TMP/err" nice -n "$NICE" "$@")
    read -r a1 p1 < <(dut_ctr "$ns")
    rec "$s" "$c" "$r" answers "$(((a1 - a0) / SECS))"
    rec "$s" "$c" "$r" queries "$(((p1 - p0) / SECS))"
    rec "$s" "$c" "$r" cpu "${wc#* }"
}
gen_dns() { # engine queues [rate]: gen counting replies
    local extra=()
    [ -n "${3:-}" ] && extra=(--rate "$3")
    echo "$GEN" --netns "${NS_GEN:-$GNS}" --iface gen0 --profile dns-small --engine "$1" --queues "$2" \
        --duration "${SECS}s" --output json "${extra[@]}"
}
gen_own() { # section config run: gen's own figures from its final record
    rec "$1" "$2" "$3" tool_rx "$(python3 -c "print(int($(final rx_packets) / $SECS))")"
    rec "$1" "$2" "$3" tool_tx "$(python3 -c "print(int($(final tx_packets) / $SECS))")"
}

if has dns || has rate; then
    python3 -c '
cs = "abcdefghijklmnopqrstuvwxyz0123456789"
for i in range(36 * 36): print(cs[i // 36] + cs[i % 36] + ".lab.test A")' >"$TMP/names.txt"
    dns_install "$DNS_"
fi

if has dns; then
    echo "dns: answers/s against dns-cache, ${SECS}s x ${RUNS} runs..." >&2
    note dns-afxdp-2 "$(gen_dns afxdp 2)"
    note dns-live-1 "$(gen_dns xdp-live 1)"
    note dns-live-2 "$(gen_dns xdp-live 2)"
    note dnsperf "ip netns exec $GNS dnsperf -s 198.18.0.2 -d names.txt -l $SECS $DNSPERF_OPTS  (names.txt: the 1296 dns-small names, 'aa.lab.test A' ...)"
    for run in $(seq "$RUNS"); do
        for cfg in afxdp-2 live-1 live-2; do
            e=${cfg%-*}
            [ "$e" = live ] && e=xdp-live
            # shellcheck disable=SC2046
            run_dut dns "dns-$cfg" "$run" "$DNS_" $(gen_dns "$e" "${cfg#*-}")
            gen_own dns "dns-$cfg" "$run"
        done
        # shellcheck disable=SC2086
        run_dut dns dnsperf "$run" "$DNS_" ip netns exec "$GNS" dnsperf -s 198.18.0.2 -d "$TMP/names.txt" -l "$SECS" $DNSPERF_OPTS
        rec dns dnsperf "$run" tool_rx "$(awk -v s="$SECS" '/Queries completed:/ {print int($3 / s)}' "$TMP/out")"
        rec dns dnsperf "$run" tool_tx "$(awk -v s="$SECS" '/Queries sent:/ {print int($3 / s)}' "$TMP/out")"
    done
fi

# ---------------------------------------------------------------------------
if has rate; then
    echo "rate: dns-small at 2M, 1- and 2-queue labs, ${SECS}s x ${RUNS} runs..." >&2
    "$LAB" up --name "$NAME1" --topology direct --queues 1 >/dev/null
    dns_install "$NAME1-dut"
    for q in 1 2; do
        for e in afxdp xdp-live; do
            if [ $q = 1 ]; then ns=$NAME1; else ns=$NAME; fi
            NS_GEN=$ns-gen note "rate-$e-$q" "$(NS_GEN=$ns-gen gen_dns $e $q 2M)"
        done
    done
    for run in $(seq "$RUNS"); do
        for q in 1 2; do
            if [ $q = 1 ]; then ns=$NAME1; else ns=$NAME; fi
            for e in afxdp xdp-live; do
                # shellcheck disable=SC2046
                run_dut rate "$e-$q" "$run" "$ns-dut" $(NS_GEN=$ns-gen gen_dns $e $q 2M)
                gen_own rate "$e-$q" "$run"
                rec rate "$e-$q" "$run" achieved "$(final achieved_ratio)"
                rec rate "$e-$q" "$run" shortfall "$(final rate_shortfall | tr -d '\t')"
            done
        done
    done
fi

# ---------------------------------------------------------------------------
{
    echo "# commands"
    for k in $(printf '%s\n' "${!CMDS[@]}" | sort); do printf '%s\t%s\n' "$k" "${CMDS[$k]}"; done
} >"$TMP/cmds"
NICE=$NICE python3 "$HERE/report.py" "$RAW" "$TMP/cmds" "$RUNS" "$SECS" "$TRAFGEN_OPTS" "$DNSPERF_OPTS"
printf '\n(%s, kernel %s, %s CPUs, load average %s)\n' "$(date -u +%FT%TZ)" "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "${KEEP_RAW:-}" ] && cp "$RAW" "$KEEP_RAW"
echo "done" >&2
