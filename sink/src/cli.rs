//! The `sink` command: capture on an interface, count per interval and per flow, measure
//! probe loss/reordering/latency, optionally write pcapng; text, JSON lines or CSV.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use records::Kind;
use records::cli::OutputOpt;
use records::sink::{Final, Flow, Interval, Ready, Timestamps};

use crate::capture::{self, Backend, CaptureOptions, ClockMode, Drops, TsKind};
use crate::counters::Counters;
use crate::pcapng::PcapNgWriter;
use crate::stop::Stop;
use profiles::units::parse_duration;
use xdplayer::atomic_file::AtomicFile;
use xdplayer::clock::realtime_ns;

/// `--output`.
pub use records::cli::TextJsonCsv as OutputArg;

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
    #[command(flatten)]
    pub output: OutputOpt<OutputArg>,
    #[command(flatten)]
    pub stop_opt: records::cli::StopOpt,
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

fn drops(d: &Drops) -> records::sink::Drops {
    records::sink::Drops {
        kernel: d.kernel,
        ring: d.ring,
        freezes: d.freezes,
    }
}

/// A record as one JSON line.
fn json_line<T: serde::Serialize>(r: &T) -> String {
    // These records are plain structs of numbers and strings: serialising cannot fail.
    serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Runs `sink`; returns the final record (also printed).
pub fn run(args: &Args) -> Result<Final> {
    if let Some(ns) = &args.netns {
        xdplayer::netns::enter(ns)?;
    }
    if args.interval.is_zero() {
        bail!("--interval must be positive");
    }
    xdplayer::stop::stop_on_stdin_eof(args.stop_opt.stop_on_stdin_eof);
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
    let output = args.output.format;
    match output {
        OutputArg::Json => out(&json_line(&Ready {
            kind: Kind::Ready,
            schema_version: records::SCHEMA_VERSION,
            iface: args.iface.clone(),
            backend: cap.backend().to_owned(),
            clock: clock.as_str().to_owned(),
        })),
        OutputArg::Csv => out(
            "t,packets,bytes,pps,mbps,mbps_wire,drops_kernel,drops_ring,probe_received,probe_lost",
        ),
        OutputArg::Text => eprintln!(
            "sink: capturing on {} ({}, {} clock); Ctrl-C to stop",
            args.iface,
            cap.backend(),
            clock.as_str()
        ),
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
                let _ = match output {
                    OutputArg::Json => writeln!(
                        o,
                        "{}",
                        json_line(&Interval {
                            kind: Kind::Interval,
                            schema_version: records::SCHEMA_VERSION,
                            t,
                            packets: c.packets,
                            bytes: c.bytes,
                            pps,
                            mbps,
                            mbps_wire,
                            drops: drops(&d),
                            probe_received: pr.received,
                            probe_lost: pr.lost,
                        })
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
    let top_flows = c
        .top_flows(10)
        .into_iter()
        .map(|(k, v)| Flow {
            src: k.src,
            dst: k.dst,
            sport: k.sport,
            dport: k.dport,
            packets: v.packets,
            bytes: v.bytes,
        })
        .collect();
    let fin = Final {
        kind: Kind::Final,
        schema_version: records::SCHEMA_VERSION,
        iface: args.iface.clone(),
        backend: args.backend.as_str().to_owned(),
        clock: clock.as_str().to_owned(),
        duration_s: el,
        packets: c.packets,
        bytes: c.bytes,
        pps: c.packets as f64 / el,
        mbps: c.bytes as f64 * 8.0 / el / 1e6,
        mbps_wire: (c.bytes + 24 * c.packets) as f64 * 8.0 / el / 1e6,
        drops: drops(&d),
        flows: c.flows.len(),
        flows_overflow: c.flows_overflow,
        non_ip_udp: c.non_ip_udp,
        top_flows,
        timestamps: Timestamps {
            hw: kinds[0],
            sw: kinds[1],
            copy: kinds[2],
        },
        probe: pr.clone(),
        written,
        start_realtime_ns: realtime_ns().saturating_sub((el * 1e9) as u64),
    };
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
    match output {
        OutputArg::Json => out(&json_line(&fin)),
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
                for line in crate::streams::text_lines(&pr.per_stream) {
                    out(&format!("  {line}"));
                }
            }
            for (k, v) in c.top_flows(5) {
                out(&format!(
                    "  {} -> {}  {} packets",
                    std::net::SocketAddr::new(k.src, k.sport),
                    std::net::SocketAddr::new(k.dst, k.dport),
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

#[cfg(test)]
mod tests {
    use super::*;
    use records::args::{Sink, SinkBackend};

    fn parse(argv: &[String]) -> Args {
        Args::try_parse_from(std::iter::once("sink".to_owned()).chain(argv.iter().cloned()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    #[test]
    fn the_builder_round_trips_through_sinks_own_parser() {
        let b = Sink {
            netns: Some("lab-mon".into()),
            iface: "mon0".into(),
            backend: Some(SinkBackend::AfXdp),
            duration: Some(Duration::from_millis(2500)),
            interval: Some(Duration::from_millis(100)),
            write: Some(PathBuf::from("/tmp/x.pcapng")),
            ring_blocks: Some(8),
            force: true,
            no_promisc: true,
            json: true,
        };
        let a = parse(&b.argv());
        assert_eq!(a.netns, b.netns);
        assert_eq!(a.iface, b.iface);
        assert_eq!(a.backend, Backend::AfXdp);
        assert_eq!(a.duration, b.duration);
        assert_eq!(Some(a.interval), b.interval);
        assert_eq!(a.write, b.write);
        assert_eq!(a.ring_blocks, 8);
        assert!(a.force && a.no_promisc);
        assert_eq!(a.output.format, OutputArg::Json);
        // Defaults stay sink's.
        let a = parse(
            &Sink {
                iface: "eth1".into(),
                ..Sink::default()
            }
            .argv(),
        );
        assert_eq!(
            (a.backend, a.interval, a.ring_blocks),
            (Backend::AfPacket, Duration::from_secs(1), 64)
        );
        assert!(a.duration.is_none() && a.write.is_none() && !a.force && !a.no_promisc);
        assert_eq!(a.output.format, OutputArg::Text);
        assert_eq!(SinkBackend::AfPacket.as_str(), Backend::AfPacket.as_str());
    }

    #[test]
    fn json_is_output_json() {
        let p = |v: &[&str]| {
            Args::try_parse_from(["sink", "--iface", "mon0"].iter().chain(v))
                .map(|a| a.output.format)
        };
        assert_eq!(p(&["--json"]).expect("--json"), OutputArg::Json);
        assert_eq!(
            p(&["--output", "json"]).expect("--output json"),
            OutputArg::Json
        );
        assert_eq!(p(&["--output", "csv"]).expect("csv"), OutputArg::Csv);
        assert_eq!(p(&[]).expect("default"), OutputArg::Text);
        assert!(p(&["--json", "--output", "csv"]).is_err());
    }
}
