//! Argument builders: the command lines `lab` (or any driver) gives the tools,
//! built from typed values instead of strings assembled by hand. Each tool's tests
//! round-trip its builder: builder -> argv -> the tool's own clap parser -> the
//! same values, so a renamed flag fails a test instead of a run.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use profiles::units::{Rate, format_mac, format_wall_time};

use crate::dut::Mode as DutMode;
use crate::generator::Engine;

/// An argument vector being built: flags with and without values.
#[derive(Debug, Default)]
struct Argv(Vec<String>);

impl Argv {
    fn kv(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.to_owned());
        self.0.push(value.to_string());
    }
    fn opt(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.kv(flag, v);
        }
    }
    fn flag(&mut self, flag: &str, on: bool) {
        if on {
            self.0.push(flag.to_owned());
        }
    }
}

/// A duration as every tool parses it back exactly (`profiles::units::parse_duration`).
pub fn duration_arg(d: Duration) -> String {
    format!("{}ns", d.as_nanos())
}

/// `gen`'s command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gen {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--iface`.
    pub iface: String,
    /// `--profile`.
    pub profile: String,
    /// `--engine` (gen's default when `None`).
    pub engine: Option<Engine>,
    /// `--rate` (`None`: as fast as possible).
    pub rate: Option<Rate>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--count`.
    pub count: Option<u64>,
    /// `--frame-size` (bytes on the wire, FCS included; the profile's size otherwise).
    pub frame_size: Option<usize>,
    /// `--queues`.
    pub queues: Option<u32>,
    /// `--stamp` (probe payload).
    pub stamp: bool,
    /// `--stream-base` (needs `stamp`): queue i's probes carry stream id N+i;
    /// generator hosts sharing a run take disjoint ranges.
    pub stream_base: Option<u32>,
    /// `--src-ip` (IPv4, or IPv6 for an IPv6 profile).
    pub src_ip: Option<IpAddr>,
    /// `--dst-ip`.
    pub dst_ip: Option<Ipv4Addr>,
    /// `--dst-mac`.
    pub dst_mac: Option<[u8; 6]>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--no-rx`.
    pub no_rx: bool,
    /// `--force`.
    pub force: bool,
    /// `--output json` (text otherwise).
    pub json: bool,
    /// `--start-at` (CLOCK_REALTIME ns since the epoch; written as RFC 3339 UTC).
    pub start_at_ns: Option<u64>,
}

impl Gen {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.kv("--iface", &self.iface);
        a.kv("--profile", &self.profile);
        a.opt("--engine", self.engine.map(Engine::as_str));
        a.opt("--rate", self.rate);
        a.opt("--duration", self.duration.map(duration_arg));
        a.opt("--count", self.count);
        a.opt("--frame-size", self.frame_size);
        a.opt("--queues", self.queues);
        a.flag("--stamp", self.stamp);
        a.opt("--stream-base", self.stream_base);
        a.opt("--src-ip", self.src_ip);
        a.opt("--dst-ip", self.dst_ip);
        a.opt("--dst-mac", self.dst_mac.map(format_mac));
        a.opt("--interval", self.interval.map(duration_arg));
        a.opt("--output", self.json.then_some("json"));
        a.flag("--no-rx", self.no_rx);
        a.flag("--force", self.force);
        a.opt("--start-at", self.start_at_ns.map(format_wall_time));
        a.0
    }
}

/// How tstamp matches requests and responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TstampMatch {
    /// DNS (source/destination port, ID).
    #[default]
    Dns,
    /// gen's probe sequence numbers.
    Seq,
}

/// `tstamp`'s command line (live capture).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tstamp {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--iface`.
    pub iface: String,
    /// `--match`.
    pub match_mode: TstampMatch,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--hdrh FILE`.
    pub hdrh: Option<PathBuf>,
    /// `--hist-csv FILE`.
    pub hist_csv: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
    /// `--output json` (text otherwise).
    pub json: bool,
}

impl Tstamp {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.kv("--iface", &self.iface);
        a.kv(
            "--match",
            match self.match_mode {
                TstampMatch::Dns => "dns",
                TstampMatch::Seq => "seq",
            },
        );
        a.opt("--duration", self.duration.map(duration_arg));
        a.opt("--hdrh", self.hdrh.as_ref().map(|p| p.display()));
        a.opt("--hist-csv", self.hist_csv.as_ref().map(|p| p.display()));
        a.opt("--plot", self.plot.as_ref().map(|p| p.display()));
        a.opt("--output", self.json.then_some("json"));
        a.0
    }
}

/// `dut install`'s arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DutInstall {
    /// The program (`drop`, `checksum`, `dns-ping`, `dns-cache`, `syn-filter`).
    pub program: String,
    /// `--iface`.
    pub iface: String,
    /// `--mode` (dut's default, native, when `None`).
    pub mode: Option<DutMode>,
    /// `--checksums`.
    pub checksums: Option<u64>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--only-dst` (`a.b.c.d/len`).
    pub only_dst: Option<String>,
    /// `--allow` (syn-filter; one option per prefix).
    pub allow: Vec<String>,
    /// `--allow-file` (syn-filter).
    pub allow_file: Option<PathBuf>,
    /// `--foreground`.
    pub foreground: bool,
    /// `--force`.
    pub force: bool,
    /// `--owner-pid`.
    pub owner_pid: Option<u32>,
}

/// A `dut` subcommand and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum DutCmd {
    /// `dut install`.
    Install(DutInstall),
    /// `dut status [--iface IF] [--window D]`.
    Status {
        /// `--iface` (every interface when `None`).
        iface: Option<String>,
        /// `--window`.
        window: Option<Duration>,
    },
    /// `dut remove --iface IF`.
    Remove {
        /// `--iface`.
        iface: String,
    },
    /// `dut update-bench --profile P [--batch N] [--duration D]`.
    UpdateBench {
        /// `--profile`.
        profile: String,
        /// `--batch`.
        batch: Option<usize>,
        /// `--duration`.
        duration: Option<Duration>,
    },
}

/// `dut`'s command line: the global options, then the subcommand.
#[derive(Debug, Clone, PartialEq)]
pub struct Dut {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--output json` (text otherwise).
    pub json: bool,
    /// The subcommand.
    pub cmd: DutCmd,
}

impl Dut {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.opt("--output", self.json.then_some("json"));
        match &self.cmd {
            DutCmd::Install(i) => {
                a.0.push("install".into());
                a.0.push(i.program.clone());
                a.kv("--iface", &i.iface);
                a.opt("--mode", i.mode.map(DutMode::as_str));
                a.opt("--checksums", i.checksums);
                a.opt("--profile", i.profile.as_ref());
                a.opt("--only-dst", i.only_dst.as_ref());
                for c in &i.allow {
                    a.kv("--allow", c);
                }
                a.opt("--allow-file", i.allow_file.as_ref().map(|p| p.display()));
                a.opt("--owner-pid", i.owner_pid);
                a.flag("--foreground", i.foreground);
                a.flag("--force", i.force);
            }
            DutCmd::Status { iface, window } => {
                a.0.push("status".into());
                a.opt("--iface", iface.as_ref());
                a.opt("--window", window.map(duration_arg));
            }
            DutCmd::Remove { iface } => {
                a.0.push("remove".into());
                a.kv("--iface", iface);
            }
            DutCmd::UpdateBench {
                profile,
                batch,
                duration,
            } => {
                a.0.push("update-bench".into());
                a.kv("--profile", profile);
                a.opt("--batch", *batch);
                a.opt("--duration", duration.map(duration_arg));
            }
        }
        a.0
    }
}

/// sink's capture back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkBackend {
    /// AF_PACKET TPACKET_V3.
    #[default]
    AfPacket,
    /// AF_XDP.
    AfXdp,
}

impl SinkBackend {
    /// Name as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkBackend::AfPacket => "af-packet",
            SinkBackend::AfXdp => "af-xdp",
        }
    }
}

/// `sink`'s command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sink {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--iface`.
    pub iface: String,
    /// `--backend` (sink's default when `None`).
    pub backend: Option<SinkBackend>,
    /// `--duration` (until Ctrl-C when `None`).
    pub duration: Option<Duration>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--write FILE.pcapng`.
    pub write: Option<PathBuf>,
    /// `--ring-blocks`.
    pub ring_blocks: Option<u32>,
    /// `--force`.
    pub force: bool,
    /// `--no-promisc`.
    pub no_promisc: bool,
    /// `--output json` (text otherwise).
    pub json: bool,
}

impl Sink {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.kv("--iface", &self.iface);
        a.opt("--backend", self.backend.map(SinkBackend::as_str));
        a.opt("--duration", self.duration.map(duration_arg));
        a.opt("--interval", self.interval.map(duration_arg));
        a.opt("--write", self.write.as_ref().map(|p| p.display()));
        a.opt("--ring-blocks", self.ring_blocks);
        a.opt("--output", self.json.then_some("json"));
        a.flag("--force", self.force);
        a.flag("--no-promisc", self.no_promisc);
        a.0
    }
}

/// netsniff-ng's `trafgen` (a peer, not ours): the flags `trafgen --help`
/// documents (netsniff-ng 0.6). It has no namespace option: run it under
/// `ip netns exec NS trafgen ...` ([`Trafgen::netns_exec`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trafgen {
    /// `--dev`: the interface.
    pub dev: String,
    /// `--conf`: the packet configuration file.
    pub conf: PathBuf,
    /// `--cpus`: number of sending processes.
    pub cpus: Option<u32>,
    /// `--num`: packets until exit (until Ctrl-C when `None`).
    pub num: Option<u64>,
    /// `--no-sock-mem`: leave the core socket memory settings alone.
    pub no_sock_mem: bool,
    /// `--notouch-irq`: leave the NIC's IRQ affinity alone.
    pub notouch_irq: bool,
}

impl Trafgen {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.kv("--dev", &self.dev);
        a.kv("--conf", self.conf.display());
        a.opt("--cpus", self.cpus);
        a.opt("--num", self.num);
        a.flag("--no-sock-mem", self.no_sock_mem);
        a.flag("--notouch-irq", self.notouch_irq);
        a.0
    }

    /// `ip`'s arguments to run trafgen in network namespace `netns`:
    /// `netns exec NETNS trafgen ARGS`.
    pub fn netns_exec(&self, netns: &str) -> Vec<String> {
        let mut v = vec![
            "netns".into(),
            "exec".into(),
            netns.into(),
            "trafgen".into(),
        ];
        v.extend(self.argv());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_back_exactly() {
        for d in [
            Duration::from_millis(2500),
            Duration::from_nanos(1),
            Duration::from_secs(30),
        ] {
            assert_eq!(profiles::units::parse_duration(&duration_arg(d)), Ok(d));
        }
    }

    /// The long options `trafgen --help` lists (netsniff-ng 0.6.8) that the
    /// builder uses, each with whether it takes a value.
    const TRAFGEN_DOCUMENTED: [(&str, bool); 6] = [
        ("--dev", true),
        ("--conf", true),
        ("--cpus", true),
        ("--num", true),
        ("--no-sock-mem", false),
        ("--notouch-irq", false),
    ];

    #[test]
    fn trafgens_argv_is_what_trafgen_documents() {
        let t = Trafgen {
            dev: "gen0".into(),
            conf: PathBuf::from("/tmp/t.cfg"),
            cpus: Some(2),
            num: Some(1000),
            no_sock_mem: true,
            notouch_irq: true,
        };
        let argv = t.argv();
        assert_eq!(
            argv,
            [
                "--dev",
                "gen0",
                "--conf",
                "/tmp/t.cfg",
                "--cpus",
                "2",
                "--num",
                "1000",
                "--no-sock-mem",
                "--notouch-irq"
            ]
        );
        // Every flag is a documented one, with a value exactly when it takes one.
        let mut i = 0;
        while i < argv.len() {
            let (_, takes) = TRAFGEN_DOCUMENTED
                .iter()
                .find(|(f, _)| *f == argv[i])
                .unwrap_or_else(|| panic!("{} is not a documented trafgen option", argv[i]));
            i += if *takes { 2 } else { 1 };
        }
        let min = Trafgen {
            dev: "gen0".into(),
            conf: PathBuf::from("c.cfg"),
            ..Trafgen::default()
        };
        assert_eq!(min.argv(), ["--dev", "gen0", "--conf", "c.cfg"]);
        assert_eq!(
            min.netns_exec("lab-gen")[..4],
            ["netns", "exec", "lab-gen", "trafgen"]
        );
        // Where trafgen is installed, its own help lists every one of them.
        if let Ok(out) = std::process::Command::new("trafgen").arg("--help").output() {
            let help = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for (flag, _) in TRAFGEN_DOCUMENTED {
                assert!(
                    help.contains(flag),
                    "trafgen --help does not list {flag}:\n{help}"
                );
            }
        }
    }

    #[test]
    fn dut_global_options_go_before_the_subcommand() {
        let d = Dut {
            netns: Some("lab-dut".into()),
            json: true,
            cmd: DutCmd::Remove {
                iface: "dut0".into(),
            },
        };
        assert_eq!(
            d.argv(),
            [
                "--netns", "lab-dut", "--output", "json", "remove", "--iface", "dut0"
            ]
        );
    }
}
