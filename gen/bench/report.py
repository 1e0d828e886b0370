#!/usr/bin/env python3
"""report.py RAW CMDS RUNS SECS TRAFGEN_OPTS DNSPERF_OPTS: run.sh's tables.

RAW has one line per measurement: section, config, run, metric, value (tab
separated). Medians are over runs; a ratio is the median of the per-run ratios
(the two tools ran back to back within each run), with its range."""
import collections
import json
import os
import statistics
import sys

raw, cmds, runs, secs, trafgen_opts, dnsperf_opts = sys.argv[1:7]
V = collections.defaultdict(dict)  # (section, config, metric) -> {run: value}
for line in open(raw):
    s, c, r, m, v = line.rstrip("\n").split("\t")
    V[(s, c, m)][r] = v


def vals(s, c, m):
    return {r: float(v) for r, v in V.get((s, c, m), {}).items() if v not in ("", "null")}


def med(s, c, m):
    v = list(vals(s, c, m).values())
    return statistics.median(v) if v else float("nan")


def ratio(s, a, b, m="pps", s2=None):
    """Median (min, max) over runs of a/b, a and b from the same run."""
    x, y = vals(s, a, m), vals(s2 or s, b, m)
    rs = [x[r] / y[r] for r in x if r in y and y[r]]
    if not rs:
        return "n/a"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def per_cpu(s, c, m="pps"):
    """Median over runs of rate / (cpu seconds / duration): per consumed core."""
    x, cpu = vals(s, c, m), vals(s, c, "cpu")
    rs = [x[r] / (cpu[r] / float(secs)) for r in x if r in cpu and cpu[r] > 0]
    return statistics.median(rs) if rs else float("nan")


def ratio_per_cpu(s, a, b, m="pps"):
    xa, ca, xb, cb = vals(s, a, m), vals(s, a, "cpu"), vals(s, b, m), vals(s, b, "cpu")
    rs = [(xa[r] / ca[r]) / (xb[r] / cb[r]) for r in xa if r in xb and ca.get(r) and cb.get(r) and xb[r]]
    if not rs:
        return "n/a"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def runs_of(s, c, m="pps", unit=1e6):
    v = vals(s, c, m)
    return " ".join(f"{v[r] / unit:.2f}" for r in sorted(v, key=int))


M = lambda x: f"{x / 1e6:.3f} M"
sections = {k[0] for k in V}
print(f"RUNS={runs} SECS={secs}; every tool under the same priority (nice -n {os.environ.get('NICE', '0')}); "
      f"ratios: median of per-run ratios (range)")

if "ref" in sections:
    ident = V.get(("ref", "frames", "identical"), {}).get("0", "?")
    print("\n## gen xdp-live vs the reference live-frames sender (min-multi-flow, 1 thread on CPU 0, "
          "batch 64, dut0 drop; receiver pps)\n")
    print(f"First 1024 frames of every reference variant and of live_gen byte-identical to gen's: {ident}.\n")
    print("| sender | median pps | runs (Mpps) | pps per consumed CPU-s | gen / this | gen / this, per CPU-s |")
    print("|---|---|---|---|---|---|")
    rows = [("gen-live", "gen xdp-live"), ("gen-prog", "gen's XDP program in the reference's loop (live_gen)")]
    if vals("ref", "gen-prog-alt", "pps"):
        rows.append(("gen-prog-alt", "same, GEN_LIVE_ALT_REV's program"))
    rows += [("ref-fast", "ref: fields + checksums"), ("ref-trim", "ref + trim 1 byte"),
             ("ref-correct", "ref + trim + restore (gen's correctness)")]
    for c, label in rows:
        g = "-" if c == "gen-live" else ratio("ref", "gen-live", c)
        gc = "-" if c == "gen-live" else ratio_per_cpu("ref", "gen-live", c)
        print(f"| {label} | {M(med('ref', c, 'pps'))}pps | {runs_of('ref', c)} | {M(per_cpu('ref', c))}pps | {g} | {gc} |")
    print(f"\ngen's program in the reference loop / ref correct: {ratio('ref', 'gen-prog', 'ref-correct')}; "
          f"gen / its own program in the reference loop: {ratio('ref', 'gen-live', 'gen-prog')}.")
    print(f"Cost of correctness (ref correct / ref fast): {ratio('ref', 'ref-correct', 'ref-fast')}; "
          f"trim alone: {ratio('ref', 'ref-trim', 'ref-fast')}.")

if "peak" in sections:
    print(f"\n## Peak rate (64-byte min-multi-flow, receiver pps; trafgen {trafgen_opts} -P N)\n")
    print("| queues/CPUs | gen afxdp (copy) | trafgen | gen xdp-live | afxdp/trafgen | afxdp/trafgen per CPU-s | xdp-live/trafgen | xdp-live/afxdp |")
    print("|---|---|---|---|---|---|---|---|")
    for q in (1, 2):
        a, t, l = (med("peak", f"{x}-{q}", "pps") for x in ("afxdp", "trafgen", "live"))
        print(f"| {q} | {M(a)}pps | {M(t)}pps | {M(l)}pps | {ratio('peak', f'afxdp-{q}', f'trafgen-{q}')} | "
              f"{ratio_per_cpu('peak', f'afxdp-{q}', f'trafgen-{q}')} | {ratio('peak', f'live-{q}', f'trafgen-{q}')} | "
              f"{ratio('peak', f'live-{q}', f'afxdp-{q}')} |")
    print("\nPer run (Mpps): " + "; ".join(
        f"{x}-{q}: {runs_of('peak', f'{x}-{q}')}" for q in (1, 2) for x in ("afxdp", "trafgen", "live")))

if "pacing" in sections:
    print("\n## Pacing, 1 queue (requested vs delivered at the receiver; deviation = actual - scheduled, gen's own)\n")
    print("| engine | requested | delivered | error | deviation p50 | p99 |\n|---|---|---|---|---|---|")
    fmt = lambda ns: f"{ns:.0f} ns" if ns < 1000 else f"{ns / 1e3:.1f} us"
    for e in ("afxdp", "xdp-live"):
        for rate in ("10k", "100k", "500k", "max"):
            c = f"{e}-{rate}"
            d = med("pacing", c, "pps")
            req = {"10k": 1e4, "100k": 1e5, "500k": 5e5}.get(rate)
            err = f"{(d / req - 1) * 100:+.2f} %" if req else "-"
            p50 = fmt(med("pacing", c, "p50")) if req else "-"
            p99 = fmt(med("pacing", c, "p99")) if req else "-"
            print(f"| {e} | {rate} | {d / 1e3:.1f} kpps | {err} | {p50} | {p99} |")

if "dns" in sections:
    print(f"\n## DNS answered per second (dns-small against dut dns-cache on dut0, 2-queue direct lab; "
          f"dnsperf {dnsperf_opts})\n")
    print("| sender | answers/s (DUT) | queries/s at DUT | tool's own count/s (rx / tx) | cores consumed by the tool | "
          "answers per consumed core | vs dnsperf | vs dnsperf per core |")
    print("|---|---|---|---|---|---|---|---|")
    for c, label in [("dns-afxdp-2", "gen afxdp, 2 queues"), ("dns-live-1", "gen xdp-live, 1 queue"),
                     ("dns-live-2", "gen xdp-live, 2 queues"), ("dnsperf", "dnsperf")]:
        cores = med("dns", c, "cpu") / float(secs)
        vs = "-" if c == "dnsperf" else ratio("dns", c, "dnsperf", "answers")
        vsc = "-" if c == "dnsperf" else ratio_per_cpu("dns", c, "dnsperf", "answers")
        print(f"| {label} | {M(med('dns', c, 'answers'))} | {M(med('dns', c, 'queries'))} | "
              f"{M(med('dns', c, 'tool_rx'))} / {M(med('dns', c, 'tool_tx'))} | {cores:.2f} | "
              f"{M(per_cpu('dns', c, 'answers'))} | {vs} | {vsc} |")

if "rate" in sections:
    print("\n## gen --profile dns-small --rate 2M (direct lab, DUT dns-cache)\n")
    print("| lab queues | engine | queries/s at DUT | of 2M | answers/s (DUT) | replies/s (gen) | gen achieved_ratio | "
          "runs: DUT of 2M | runs gen reported short (> 0.5 %) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for q in (1, 2):
        for e in ("afxdp", "xdp-live"):
            c = f"{e}-{q}"
            qd = med("rate", c, "queries")
            sf = [v for v in V.get(("rate", c, "shortfall"), {}).values() if v not in ("", "null")]
            note = f"{len(sf)} of {len(vals('rate', c, 'queries'))} runs"
            if sf:
                try:
                    js = [json.loads(x) for x in sf]
                    note += f" ({', '.join(sorted({j['behind'] for j in js}))}, " \
                            f"{min(j['short_percent'] for j in js):.1f}-{max(j['short_percent'] for j in js):.1f} % short)"
                except Exception:
                    pass
            print(f"| {q} | {e} | {M(qd)} | {qd / 2e6 * 100:.1f} % | {M(med('rate', c, 'answers'))} | "
                  f"{M(med('rate', c, 'tool_rx'))} | {med('rate', c, 'achieved'):.3f} | "
                  f"{runs_of('rate', c, 'queries', 2e4)} % | {note} |")

print("\n## Commands\n")
for line in open(cmds) if cmds != "-" else []:
    if line.startswith("#"):
        continue
    k, v = line.rstrip("\n").split("\t", 1)
    print(f"- {k}: `{v}`")
