//! `gen`'s command line (clap), kept in the library so that tools which drive gen
//! (`lab`) and the man-page generator see the same definition as the binary.

use clap::{CommandFactory, Parser, ValueEnum};

use crate::{Engine, Options, Output, Pattern, units};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EngineArg {
    /// AF_XDP sockets.
    Afxdp,
    /// BPF_PROG_RUN live frames.
    XdpLive,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PatternArg {
    /// Constant bit rate.
    Cbr,
    /// Exponential gaps.
    Poisson,
}

/// `--output`.
pub use records::cli::TextJsonCsv as OutputArg;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Zero-copy where the driver can, copy otherwise.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy mode (fails where the driver cannot).
    Zerocopy,
}

/// MoonGen-like packet generator on AF_XDP / XDP live frames.
#[derive(Debug, Parser)]
#[command(name = "gen", version = buildinfo::VERSION)]
pub struct Args {
    /// Interface to send on.
    #[arg(long)]
    pub iface: String,
    /// Profile name (min-multi-flow, min-single-flow, min-multi-flow-vlan, min-multi-flow-qinq, syn-flood, imix, dns-small, dns-large, dns-ping) or TOML path.
    #[arg(long, required_unless_present = "pcap", conflicts_with = "pcap")]
    pub profile: Option<String>,
    /// Send the frames of this pcap/pcapng capture instead of a profile's (both
    /// engines): in file order, unchanged unless --dst-mac/--dst-ip, at the recorded
    /// timing (scaled by --speed) or at --rate.
    #[arg(long, conflicts_with_all = ["frame_size", "stamp", "stream_base", "src_ip", "pattern"])]
    pub pcap: Option<std::path::PathBuf>,
    /// --pcap: passes over the file in all (as tcpreplay counts; default 1).
    #[arg(long = "loop", value_name = "N", requires = "pcap")]
    pub loops: Option<u64>,
    /// --pcap: the recorded timing divided by this (default 1; 2 = twice as fast).
    #[arg(long, requires = "pcap", conflicts_with = "rate")]
    pub speed: Option<f64>,
    /// Engine.
    #[arg(long, value_enum, default_value = "afxdp")]
    pub engine: EngineArg,
    /// Rate: packets/s (750k, 2M) or bits/s on the wire (5Gbit, 100Mbit); omitted = as fast as possible.
    #[arg(long, value_parser = units::parse_rate)]
    pub rate: Option<units::Rate>,
    /// Inter-departure pattern (cbr when not given).
    #[arg(long, value_enum)]
    pub pattern: Option<PatternArg>,
    /// Stop after this long (30s, 500ms, 2m).
    #[arg(long, value_parser = units::parse_duration, conflicts_with = "count")]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many frames.
    #[arg(long)]
    pub count: Option<u64>,
    /// Every frame this many bytes on the wire (FCS included) instead of the profile's
    /// size or size mix; checked against the profile's smallest and largest frame.
    #[arg(long)]
    pub frame_size: Option<usize>,
    /// Number of queues (0..N), one thread each.
    #[arg(long, conflicts_with = "cores")]
    pub queues: Option<u32>,
    /// Cores to pin one thread each to (queue i on the i-th core): 0,2-3.
    #[arg(long, value_parser = units::parse_cores)]
    pub cores: Option<Vec<usize>>,
    /// Probe payload: stream id, counter, CLOCK_REALTIME TX time.
    #[arg(long)]
    pub stamp: bool,
    /// First probe stream id: queue i's probes carry stream N+i (8 bits: N plus the
    /// number of queues at most 256). Generator hosts sharing a run take disjoint
    /// ranges so that tstamp --match seq tells their probes apart.
    #[arg(long, value_name = "N", requires = "stamp")]
    pub stream_base: Option<u32>,
    /// Destination MAC (default: from the neighbour table).
    #[arg(long, value_parser = units::parse_mac)]
    pub dst_mac: Option<[u8; 6]>,
    /// Source address: IPv4 for an IPv4 profile, IPv6 for an IPv6 one.
    #[arg(long, value_parser = units::parse_ip)]
    pub src_ip: Option<std::net::IpAddr>,
    /// Destination address: IPv4, or IPv6 (an IPv6 profile, or --pcap: rewrites
    /// the capture's frames of that version only).
    #[arg(long, value_parser = units::parse_ip)]
    pub dst_ip: Option<std::net::IpAddr>,
    /// Reporting interval.
    #[arg(long, value_parser = units::parse_duration, default_value = "1s")]
    pub interval: std::time::Duration,
    /// Output format (json: one object per line on stdout; --json is the same).
    #[command(flatten)]
    pub output: records::cli::OutputOpt<OutputArg>,
    #[command(flatten)]
    pub stop: records::cli::StopOpt,
    /// Do not count replies (no reply counter on the interface).
    #[arg(long)]
    pub no_rx: bool,
    /// Replace a foreign XDP program on the interface (restored on exit).
    #[arg(long)]
    pub force: bool,
    /// AF_XDP bind mode.
    #[arg(long, value_enum, default_value = "auto")]
    pub xsk_mode: ModeArg,
    /// Network namespace to run in (/run/netns/NAME).
    #[arg(long)]
    pub netns: Option<String>,
    /// Set everything up, print the ready record, then start sending when the wall
    /// clock (CLOCK_REALTIME) reaches TIME: RFC 3339 UTC (2026-12-02T00:10:05.250Z)
    /// or Unix seconds (1796170205.25). A TIME already past is refused.
    #[arg(long, value_name = "TIME", value_parser = profiles::units::parse_wall_time)]
    pub start_at: Option<u64>,
}

impl Args {
    /// The library's options from the command line (the network namespace aside).
    pub fn options(self) -> Options {
        let a = self;
        Options {
            iface: a.iface,
            profile: a.profile.unwrap_or_default(),
            engine: match a.engine {
                EngineArg::Afxdp => Engine::Afxdp,
                EngineArg::XdpLive => Engine::XdpLive,
            },
            rate: a.rate,
            pattern: match a.pattern {
                None | Some(PatternArg::Cbr) => Pattern::Cbr,
                Some(PatternArg::Poisson) => Pattern::Poisson,
            },
            duration: a.duration,
            count: a.count,
            frame_size: a.frame_size,
            queues: a.queues,
            cores: a.cores,
            stamp: a.stamp,
            stream_base: a.stream_base.unwrap_or(0),
            dst_mac: a.dst_mac,
            src_ip: a.src_ip,
            dst_ip: a.dst_ip,
            interval: a.interval,
            output: match a.output.format {
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
            pcap: a.pcap,
            loops: a.loops.unwrap_or(1),
            speed: a.speed.unwrap_or(1.0),
            start_at_ns: a.start_at,
        }
    }
}

impl Args {
    /// Parses the command line like [`Parser::parse`], then exits with clap's usage
    /// error (exit 2) for what [`Args::check`] refuses.
    pub fn parse_checked() -> Args {
        let a = Args::parse();
        if let Err(e) = a.check() {
            e.exit();
        }
        a
    }

    /// What clap's own rules miss: `--loop`/`--speed` without `--pcap` next to
    /// `--profile` (clap counts a `requires` as met when the required argument
    /// conflicts with one that is present).
    pub fn check(&self) -> Result<(), clap::Error> {
        let flag = match (self.loops, self.speed) {
            (Some(_), _) => "--loop",
            (None, Some(_)) => "--speed",
            (None, None) => return Ok(()),
        };
        if self.pcap.is_none() {
            return Err(Args::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{flag} replays a capture: give --pcap FILE, or leave {flag} out"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::args::Gen;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn stop_on_stdin_eof_is_taken_anywhere() {
        let a = Args::try_parse_from(["gen", "--iface", "x", "--profile", "p"]).expect("parses");
        assert!(!a.stop.stop_on_stdin_eof);
        let a = Args::try_parse_from([
            "gen",
            records::cli::StopOpt::FLAG,
            "--iface",
            "x",
            "--profile",
            "p",
        ])
        .expect("parses");
        assert!(a.stop.stop_on_stdin_eof);
    }

    fn parse(b: &Gen) -> Args {
        let mut argv = vec!["gen".to_owned()];
        argv.extend(b.argv());
        Args::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    #[test]
    fn the_builder_round_trips_through_gens_own_parser() {
        let b = Gen {
            netns: Some("lab-gen".into()),
            iface: "gen0".into(),
            profile: "dns-small".into(),
            engine: Some(Engine::XdpLive),
            rate: Some(units::Rate::Bits(5e9)),
            duration: Some(Duration::from_millis(2500)),
            count: None,
            frame_size: Some(594),
            queues: Some(2),
            src_ip: Some(Ipv4Addr::new(198, 18, 0, 7).into()),
            dst_ip: Some(Ipv4Addr::new(198, 18, 0, 12)),
            dst_mac: Some([2, 0, 0, 0, 0, 2]),
            interval: Some(Duration::from_millis(100)),
            no_rx: true,
            force: true,
            json: true,
            start_at_ns: Some(1_796_170_205_250_000_001),
            stamp: true,
            stream_base: Some(2),
        };
        let a = parse(&b);
        assert_eq!(a.netns.as_deref(), Some("lab-gen"));
        let o = a.options();
        assert_eq!(o.iface, b.iface);
        assert_eq!(o.profile, b.profile);
        assert!(o.pcap.is_none() && o.loops == 1 && o.speed == 1.0);
        assert_eq!(Some(o.engine), b.engine);
        assert_eq!(o.rate, b.rate);
        assert_eq!(o.duration, b.duration);
        assert_eq!(o.queues, b.queues);
        assert_eq!(o.src_ip, b.src_ip);
        assert_eq!(o.frame_size, b.frame_size);
        assert_eq!(o.dst_ip, b.dst_ip.map(std::net::IpAddr::V4));
        assert_eq!(o.dst_mac, b.dst_mac);
        assert_eq!(Some(o.interval), b.interval);
        assert_eq!((o.no_rx, o.force), (true, true));
        assert_eq!(o.output, Output::Json);
        assert_eq!(o.start_at_ns, b.start_at_ns);
        assert!(o.stamp);
        assert_eq!(Some(o.stream_base), b.stream_base);
        // The other half: defaults stay gen's, a count instead of a duration.
        let b2 = Gen {
            iface: "eth1".into(),
            profile: "min-multi-flow".into(),
            count: Some(1000),
            rate: Some(units::Rate::Pps(750_000.0)),
            ..Gen::default()
        };
        let o2 = parse(&b2).options();
        assert_eq!(o2.count, Some(1000));
        assert_eq!(o2.rate, Some(units::Rate::Pps(750_000.0)));
        assert_eq!(o2.engine, Engine::Afxdp);
        assert_eq!(o2.output, Output::Text);
        assert!(!o2.no_rx && o2.duration.is_none());
        assert!(!o2.stamp && o2.stream_base == 0);
    }

    #[test]
    fn loop_and_speed_without_pcap_are_usage_errors() {
        let p = |v: &[&str]| Args::try_parse_from(["gen", "--iface", "gen0"].iter().chain(v));
        for (args, flag) in [
            (&["--profile", "imix", "--loop", "2"][..], "--loop"),
            (&["--profile", "imix", "--speed", "2"][..], "--speed"),
            (
                &["--profile", "imix", "--loop", "2", "--speed", "3"][..],
                "--loop",
            ),
        ] {
            let e = p(args).expect("clap alone lets it through").check();
            let e = e.expect_err("check refuses it");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!(
                    "error: {flag} replays a capture: give --pcap FILE, or leave {flag} out"
                )),
                "{args:?}: {msg}"
            );
        }
        // With --pcap they are fine; --pcap with --profile stays clap's own error.
        let a = p(&["--pcap", "x.pcap", "--loop", "2", "--speed", "3"]).expect("parses");
        assert!(a.check().is_ok());
        let e = p(&["--pcap", "x.pcap", "--profile", "imix"]).expect_err("conflict");
        assert_eq!(e.exit_code(), 2);
        // Neither: clap's own "required" error.
        assert_eq!(p(&["--loop", "2"]).expect_err("no source").exit_code(), 2);
    }

    #[test]
    fn stream_base_needs_stamp_and_fits_eight_bits_with_the_queues() {
        let p = |v: &[&str]| {
            Args::try_parse_from(
                ["gen", "--iface", "gen0", "--profile", "imix"]
                    .iter()
                    .chain(v),
            )
        };
        let e = p(&["--stream-base", "2"]).expect_err("needs --stamp");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--stamp"), "{e}");
        let a = p(&["--stamp", "--stream-base", "254"]).expect("parses");
        assert_eq!(a.options().stream_base, 254);
        let e = Args::try_parse_from([
            "gen",
            "--iface",
            "gen0",
            "--pcap",
            "x.pcap",
            "--stamp",
            "--stream-base",
            "1",
        ])
        .expect_err("not with --pcap");
        assert_eq!(e.exit_code(), 2);
        // 254 + 2 queues = streams 254 and 255: fits; 255 + 2 does not.
        assert!(crate::check_stream_base(254, 2).is_ok());
        assert!(crate::check_stream_base(0, 256).is_ok());
        let e = crate::check_stream_base(255, 2).expect_err("over 8 bits");
        assert_eq!(
            e.to_string(),
            "--stream-base 255 with 2 queue(s) needs probe stream ids up to 256, but they are 8 bits (0-255): give --stream-base 254 or less, or fewer queues"
        );
        assert!(crate::check_stream_base(0, 257).is_err());
    }

    #[test]
    fn json_is_output_json() {
        let p = |v: &[&str]| {
            Args::try_parse_from(
                ["gen", "--iface", "gen0", "--profile", "dns-small"]
                    .iter()
                    .chain(v),
            )
            .map(|a| a.options().output)
        };
        assert_eq!(p(&["--json"]).expect("--json"), Output::Json);
        assert_eq!(
            p(&["--output", "json"]).expect("--output json"),
            Output::Json
        );
        assert_eq!(p(&["--output", "csv"]).expect("csv"), Output::Csv);
        assert_eq!(p(&[]).expect("default"), Output::Text);
        assert!(p(&["--json", "--output", "csv"]).is_err());
    }
}
