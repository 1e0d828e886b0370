//! `gen`: command line over the `xgen` library (see `gen/README.md`).

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, ValueEnum};
use xgen::{Engine, Options, Output, Pattern, units};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineArg {
    Afxdp,
    XdpLive,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PatternArg {
    Cbr,
    Poisson,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputArg {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Auto,
    Copy,
    Zerocopy,
}

/// MoonGen-like packet generator on AF_XDP / XDP live frames.
#[derive(Debug, Parser)]
#[command(name = "gen", version)]
struct Args {
    /// Interface to send on.
    #[arg(long)]
    iface: String,
    /// Profile name (min-multi-flow, min-single-flow, dns-small, dns-large, dns-ping) or TOML path.
    #[arg(long)]
    profile: String,
    /// Engine.
    #[arg(long, value_enum, default_value = "afxdp")]
    engine: EngineArg,
    /// Rate: packets/s (750k, 2M) or bits/s on the wire (5Gbit, 100Mbit); omitted = as fast as possible.
    #[arg(long, value_parser = units::parse_rate)]
    rate: Option<units::Rate>,
    /// Inter-departure pattern.
    #[arg(long, value_enum, default_value = "cbr")]
    pattern: PatternArg,
    /// Stop after this long (30s, 500ms, 2m).
    #[arg(long, value_parser = units::parse_duration, conflicts_with = "count")]
    duration: Option<std::time::Duration>,
    /// Stop after this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// Number of queues (0..N), one thread each.
    #[arg(long, conflicts_with = "cores")]
    queues: Option<u32>,
    /// Cores to pin one thread each to (queue i on the i-th core): 0,2-3.
    #[arg(long, value_parser = units::parse_cores)]
    cores: Option<Vec<usize>>,
    /// Probe payload: stream id, counter, CLOCK_REALTIME TX time.
    #[arg(long)]
    stamp: bool,
    /// Destination MAC (default: from the neighbour table).
    #[arg(long, value_parser = units::parse_mac)]
    dst_mac: Option<[u8; 6]>,
    /// Source IPv4 address.
    #[arg(long)]
    src_ip: Option<Ipv4Addr>,
    /// Destination IPv4 address.
    #[arg(long)]
    dst_ip: Option<Ipv4Addr>,
    /// Reporting interval.
    #[arg(long, value_parser = units::parse_duration, default_value = "1s")]
    interval: std::time::Duration,
    /// Output format (json: one object per line on stdout).
    #[arg(long, value_enum, default_value = "text")]
    output: OutputArg,
    /// Do not count replies (no redirect program on the interface).
    #[arg(long)]
    no_rx: bool,
    /// Replace a foreign XDP program on the interface (restored on exit).
    #[arg(long)]
    force: bool,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value = "auto")]
    xsk_mode: ModeArg,
    /// Network namespace to run in (/run/netns/NAME).
    #[arg(long)]
    netns: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main(a: Args) -> anyhow::Result<()> {
    if let Some(ns) = &a.netns {
        xgen::net::enter_netns(ns)?;
    }
    xgen::net::ensure_bpffs();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    }
    let o = Options {
        iface: a.iface,
        profile: a.profile,
        engine: match a.engine {
            EngineArg::Afxdp => Engine::Afxdp,
            EngineArg::XdpLive => Engine::XdpLive,
        },
        rate: a.rate,
        pattern: match a.pattern {
            PatternArg::Cbr => Pattern::Cbr,
            PatternArg::Poisson => Pattern::Poisson,
        },
        duration: a.duration,
        count: a.count,
        queues: a.queues,
        cores: a.cores,
        stamp: a.stamp,
        dst_mac: a.dst_mac,
        src_ip: a.src_ip,
        dst_ip: a.dst_ip,
        interval: a.interval,
        output: match a.output {
            OutputArg::Text => Output::Text,
            OutputArg::Json => Output::Json,
            OutputArg::Csv => Output::Csv,
        },
        no_rx: a.no_rx,
        force: a.force,
        xsk_mode: match a.xsk_mode {
            ModeArg::Auto => xdplayer::XskMode::Auto,
            ModeArg::Copy => xdplayer::XskMode::Copy,
            ModeArg::Zerocopy => xdplayer::XskMode::ZeroCopy,
        },
    };
    xgen::run(&o, stop, std::io::stdout().lock())?;
    Ok(())
}
