#!/bin/sh
# Figures for dut-programs (root): per-packet cost of every program (kernel,
# BPF_PROG_TEST_RUN live frames, vs the drop program and XDP_PASS; and the
# same logic in user space; drop on VLAN-tagged frames, syn-filter on a
# dropped and an allowed SYN), the same programs installed natively, generic
# and in user space under AF_XDP load, then map updates per second for the small and
# large sets, single-element vs batch (the paper's Fig. 6). Several runs; the
# bench prints medians. PARTS selects what runs (default: all three), e.g.
# PARTS=programs dut-programs/bench/run.sh for the per-packet costs only.
set -eu
cd "$(dirname "$0")/../.."
PARTS=${PARTS:-"programs exec_points updates"}
cargo build --release -p dut-programs --bin dut
echo "== kernel $(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
case " $PARTS " in *" programs "*)
    echo "== per-packet cost (cargo bench -p dut-programs --bench programs)"
    cargo bench -p dut-programs --bench programs 2>/dev/null | grep -v '^$'
esac
case " $PARTS " in *" exec_points "*)
    echo "== execution points (cargo bench -p dut-programs --bench exec_points)"
    cargo bench -p dut-programs --bench exec_points 2>/dev/null | grep -v '^$'
esac
case " $PARTS " in *" updates "*)
    DUR=${DUR:-3s}
    for p in dns-small dns-large; do
        echo "== map updates, $p (dut update-bench --profile $p --duration $DUR), 3 runs"
        for run in 1 2 3; do
            target/release/dut update-bench --profile "$p" --duration "$DUR" --batch "${BATCH:-4096}"
        done
    done
esac
