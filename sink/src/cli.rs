//! The `sink` command: capture on an interface, count per interval and per flow, measure
//! probe loss/reordering/latency, optionally write pcapng; text, JSON lines or CSV.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::capture::{self, Backend, CaptureOptions, ClockMode, Drops, TsKind};
use crate::counters::Counters;
use crate::pcapng::PcapNgWriter;
use crate::stop::Stop;
use profiles::units::parse_duration;
use xdplayer::atomic_file::AtomicFile;
use xdplayer::clock::realtime_ns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    Text,
    Json,
    Csv,
}

/// Count what arrives at a port: rates, flows, probe loss and latency; write pcapng.
#[derive(Debug, Parser)]
#[command(name = "sink", version = buildinfo::VERSION)]
pub struct Args {
    /// Interface to capture on (root).
    #[arg(long)]
    pub iface: String,
    #[arg(long, value_enum, default_value = "af-packet")]
    pub backend: Backend,
    /// Timestamp clock: NIC hardware, kernel software, or hw when the NIC has it.
    #[arg(long, value_enum, default_value = "auto")]
    pub clock: ClockMode,
    /// Stop after this long (30s, 500ms, 2m, or seconds); default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub interval: Duration,
    /// Write every frame to this pcapng file (nanosecond timestamps).
    #[arg(long)]
    pub write: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputArg,
    /// af-packet: TPACKET_V3 ring size in 1 MiB blocks (at least 2).
    #[arg(long, default_value_t = 64)]
    pub ring_blocks: u32,
    /// AF_XDP: replace a foreign XDP program on the interface (restored on exit).
    #[arg(long)]
    pub force: bool,
    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Enter this network namespace (/run/netns/NAME) first.
    #[arg(long)]
    pub netns: Option<String>,
}

/// One line to stdout; a closed pipe (`| head`) is not an error worth dying for.
fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn drops_json(d: &Drops) -> serde_json::Value {
    json!({"kernel": d.kernel, "ring": d.ring, "freezes": d.freezes})
}

/// Runs `sink`; returns the final JSON record (also printed).
pub fn run(args: &Args) -> Result<serde_json::Value> {
    if let Some(ns) = &args.netns {
        xdplayer::netns::enter(ns)?;
    }
    if args.interval.is_zero() {
        bail!("--interval must be positive");
    }
    let stop = Stop::on_signals();
    let mut out_file = match &args.write {
        Some(p) => Some(
            AtomicFile::create(p)
                .with_context(|| format!("cannot write capture file {}", p.display()))?,
        ),
        None => None,
    };
    let mut cap = capture::open(
        args.backend,
        &CaptureOptions {
            iface: args.iface.clone(),
            clock: args.clock,
            promisc: !args.no_promisc,
            force: args.force,
            block_count: args.ring_blocks,
            ..Default::default()
        },
    )
    .with_context(|| format!("live capture on {}", args.iface))?;
    let clock = cap.clock();
    let mut writer = match out_file.as_mut() {
        Some(a) => Some(
            PcapNgWriter::new(a.writer(), &args.iface, 0).context("writing the pcapng header")?,
        ),
        None => None,
    };
    let mut write_err: Option<std::io::Error> = None;
    let mut c = Counters::new();
    let mut kinds = [0u64; 3];
    let stdout = std::io::stdout();
    match args.output {
        OutputArg::Json => out(&json!({"schema_version": records::SCHEMA_VERSION, "type":"ready","iface":args.iface,"backend":cap.backend(),"clock":clock.as_str()}).to_string()),
        OutputArg::Csv => out("t,packets,bytes,pps,mbps,mbps_wire,drops_kernel,drops_ring,probe_received,probe_lost"),
        OutputArg::Text => eprintln!("sink: capturing on {} ({}, {} clock); Ctrl-C to stop", args.iface, cap.backend(), clock.as_str()),
    }
    let t0 = Instant::now();
    let mut next = args.interval;
    let (mut last_p, mut last_b) = (0u64, 0u64);
    let mut last_t = Duration::ZERO;
    loop {
        let el = t0.elapsed();
        let done = stop.is_set() || args.duration.is_some_and(|d| el >= d);
        if el >= next || done {
            let d = cap.drops();
            let dt = (el - last_t).as_secs_f64().max(1e-9);
            let (dp, db) = (c.packets - last_p, c.bytes - last_b);
            let pps = dp as f64 / dt;
            let mbps = db as f64 * 8.0 / dt / 1e6;
            let mbps_wire = (db + dp * 24) as f64 * 8.0 / dt / 1e6;
            let pr = c.probe();
            let t = el.as_secs_f64();
            if !done {
                let mut o = stdout.lock();
                let _ = match args.output {
                    OutputArg::Json => writeln!(
                        o,
                        "{}",
                        json!({"schema_version": records::SCHEMA_VERSION, "type":"interval","t":t,"packets":c.packets,"bytes":c.bytes,"pps":pps,"mbps":mbps,"mbps_wire":mbps_wire,
                            "drops":drops_json(&d),"probe_received":pr.received,"probe_lost":pr.lost})
                    ),
                    OutputArg::Csv => writeln!(
                        o,
                        "{t:.3},{},{},{pps:.1},{mbps:.3},{mbps_wire:.3},{},{},{},{}",
                        c.packets, c.bytes, d.kernel, d.ring, pr.received, pr.lost
                    ),
                    OutputArg::Text => writeln!(
                        o,
                        "t={t:7.2}s {:>10.0} pps {:>9.2} Mbit/s  packets {} drops kernel {} ring {}  probes {} lost {}",
                        pps, mbps, c.packets, d.kernel, d.ring, pr.received, pr.lost
                    ),
                };
            }
            last_p = c.packets;
            last_b = c.bytes;
            last_t = el;
            while next <= el {
                next += args.interval;
            }
            if done {
                break;
            }
        }
        let wait = next
            .saturating_sub(t0.elapsed())
            .min(Duration::from_millis(100));
        let res = cap.poll(wait, &mut |fr| {
            let same_clock = fr.ts_kind != TsKind::Hardware;
            kinds[match fr.ts_kind {
                TsKind::Hardware => 0,
                TsKind::Software => 1,
                TsKind::Copy => 2,
            }] += 1;
            c.on_frame(fr.data, fr.wire_len, fr.ts_ns, same_clock);
            if let Some(w) = writer.as_mut()
                && write_err.is_none()
                && let Err(e) = w.write(fr.ts_ns, fr.data, fr.wire_len)
            {
                write_err = Some(e);
            }
        });
        if let Err(e) = res {
            eprintln!("error: {e}");
            break;
        }
    }
    let el = t0.elapsed().as_secs_f64().max(1e-9);
    let d = cap.drops();
    drop(cap);
    let written = writer.as_ref().map(|w| w.packets);
    if let Some(mut w) = writer
        && let Err(e) = w.flush()
        && write_err.is_none()
    {
        write_err = Some(e);
    }
    let pr = c.probe();
    let top: Vec<_> = c
        .top_flows(10)
        .into_iter()
        .map(|(k, v)| {
            json!({"src": std::net::Ipv4Addr::from(k.src).to_string(), "dst": std::net::Ipv4Addr::from(k.dst).to_string(),
                "sport": k.sport, "dport": k.dport, "packets": v.packets, "bytes": v.bytes})
        })
        .collect();
    let fin = json!({
        "schema_version": records::SCHEMA_VERSION, "type": "final", "iface": args.iface, "backend": args.backend.as_str(), "clock": clock.as_str(),
        "duration_s": el, "packets": c.packets, "bytes": c.bytes,
        "pps": c.packets as f64 / el, "mbps": c.bytes as f64 * 8.0 / el / 1e6,
        "mbps_wire": (c.bytes + 24 * c.packets) as f64 * 8.0 / el / 1e6,
        "drops": drops_json(&d), "flows": c.flows.len(), "flows_overflow": c.flows_overflow,
        "non_ipv4_udp": c.non_ipv4_udp, "top_flows": top,
        "timestamps": {"hw": kinds[0], "sw": kinds[1], "copy": kinds[2]},
        "probe": pr, "written": written,
        "start_realtime_ns": realtime_ns().saturating_sub((el * 1e9) as u64),
    });
    let fin_ok = match (write_err, out_file) {
        (Some(e), _) => Err(anyhow::anyhow!(
            "writing {}: {e}",
            args.write.clone().unwrap_or_default().display()
        )),
        (None, Some(a)) => a.commit().with_context(|| {
            format!(
                "writing {}",
                args.write.clone().unwrap_or_default().display()
            )
        }),
        (None, None) => Ok(()),
    };
    match args.output {
        OutputArg::Json => out(&fin.to_string()),
        OutputArg::Csv => {}
        OutputArg::Text => {
            out(&format!(
                "{}: {} packets, {} bytes in {:.2} s ({:.0} pps, {:.2} Mbit/s, {} clock); drops kernel {} ring {} (ring froze {} times); {} flows",
                args.iface,
                c.packets,
                c.bytes,
                el,
                c.packets as f64 / el,
                c.bytes as f64 * 8.0 / el / 1e6,
                clock.as_str(),
                d.kernel,
                d.ring,
                d.freezes,
                c.flows.len()
            ));
            if pr.received > 0 {
                out(&format!(
                    "probes: {} received in {} streams, {} lost, {} reordered, {} duplicates; one-way latency µs min {} p50 {} p99 {} max {}",
                    pr.received,
                    pr.streams,
                    pr.lost,
                    pr.reordered,
                    pr.duplicates,
                    fmt_us(pr.latency_ns.min),
                    fmt_us(pr.latency_ns.p50),
                    fmt_us(pr.latency_ns.p99),
                    fmt_us(pr.latency_ns.max)
                ));
            }
            for (k, v) in c.top_flows(5) {
                out(&format!(
                    "  {}:{} -> {}:{}  {} packets",
                    std::net::Ipv4Addr::from(k.src),
                    k.sport,
                    std::net::Ipv4Addr::from(k.dst),
                    k.dport,
                    v.packets
                ));
            }
            if let (Some(p), Some(n)) = (&args.write, written) {
                out(&format!("wrote {n} frames to {}", p.display()));
            }
        }
    }
    fin_ok?;
    Ok(fin)
}

fn fmt_us(v: Option<u64>) -> String {
    v.map(|v| format!("{:.1}", v as f64 / 1e3))
        .unwrap_or_else(|| "-".into())
}
