//! `dut`'s command line: the clap definitions (which `clidocs` turns into man
//! pages) and [`run`], which only parses, calls the library ([`crate::ops`]) and
//! prints: text for people, or with `--output json` (`--json`) the
//! `records::dut` records.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::ops::{self, InstallOptions, StatusOptions, UpdateBenchOptions};
use crate::skel::Program;
use records::cli::OutputOpt;
use records::dut::{Claim, Mode as RecMode, Status};

/// Command line of `dut`.
#[derive(Debug, Parser)]
#[command(
    name = "dut",
    version = buildinfo::VERSION,
    about = "Install the DUT's XDP programs at an execution point, read their counters and per-packet cost, update their maps"
)]
pub struct Args {
    /// Run in network namespace NAME (/run/netns/NAME), keeping the host's bpffs.
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(flatten)]
    pub output: OutputOpt<OutputFormat>,
    #[command(flatten)]
    pub stop: records::cli::StopOpt,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `--output`.
pub use records::cli::TextJson as OutputFormat;

/// The subcommands.
#[derive(Debug, PartialEq, Subcommand)]
pub enum Cmd {
    /// The programs, what each does, its knobs.
    List,
    /// Load a program and attach it to an interface.
    Install(InstallArgs),
    /// What is attached where, counters, rates and per-packet cost.
    Status {
        #[arg(long, value_name = "IF")]
        iface: Option<String>,
        /// Measure rates and ns/packet over this window (enables BPF run-time stats meanwhile).
        #[arg(long, value_name = "D", value_parser = parse_duration)]
        window: Option<Duration>,
    },
    /// Detach what dut installed on an interface, restore the placeholder.
    Remove {
        #[arg(long, value_name = "IF")]
        iface: String,
    },
    /// Rewrite a profile's whole name set into a dns-cache map continuously; updates per second.
    UpdateBench {
        #[arg(long, value_name = "NAME|PATH")]
        profile: String,
        /// Batch size of the batch method.
        #[arg(long, value_name = "SIZE", default_value_t = 4096)]
        batch: usize,
        /// Duration of each method.
        #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "3s")]
        duration: Duration,
    },
}

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// In the driver (XDP native).
    Native,
    /// On the skb path (XDP generic).
    Generic,
    /// On the NIC (XDP hardware offload).
    Offload,
    /// In user space behind AF_XDP.
    Userspace,
}

/// `dut install`.
#[derive(Debug, PartialEq, clap::Args)]
pub struct InstallArgs {
    /// drop | checksum | dns-ping | dns-cache | syn-filter
    pub program: String,
    #[arg(long, value_name = "IF")]
    pub iface: String,
    #[arg(long, value_enum, default_value = "native")]
    pub mode: Mode,
    /// Checksum rounds per frame (checksum program).
    #[arg(long, value_name = "N")]
    pub checksums: Option<u64>,
    /// Fill the dns-cache map with this profile's name set.
    #[arg(long, value_name = "NAME|PATH")]
    pub profile: Option<String>,
    /// Only process traffic to this prefix (IPv4 A.B.C.D/LEN or IPv6 ADDR/LEN; frames of the other IP version are outside it); pass (and count) the rest.
    #[arg(long, value_name = "CIDR")]
    pub only_dst: Option<String>,
    /// syn-filter: let TCP SYNs from this source prefix pass (IPv4 or IPv6, e.g. 2001:db8::/32; repeatable).
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// syn-filter: a file of source prefixes (IPv4 or IPv6) whose SYNs pass, one CIDR per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub allow_file: Option<std::path::PathBuf>,
    /// Stay in the foreground; detach on exit or Ctrl-C.
    #[arg(long)]
    pub foreground: bool,
    /// Replace a foreign XDP program.
    #[arg(long)]
    pub force: bool,
    /// Attach on behalf of process PID (e.g. `lab run`): process-scoped instead
    /// of persistent, so once PID is gone the program is an orphan that any tool
    /// takes over and `dut remove` removes.
    #[arg(long, value_name = "PID")]
    pub owner_pid: Option<u32>,
}

pub use profiles::units::parse_duration;

impl From<Mode> for RecMode {
    fn from(m: Mode) -> RecMode {
        match m {
            Mode::Native => RecMode::Native,
            Mode::Generic => RecMode::Generic,
            Mode::Offload => RecMode::Offload,
            Mode::Userspace => RecMode::Userspace,
        }
    }
}

impl InstallArgs {
    /// The library's options.
    pub fn options(&self) -> Result<InstallOptions> {
        Ok(InstallOptions {
            program: ops::program(&self.program)?,
            iface: self.iface.clone(),
            mode: self.mode.into(),
            checksums: self.checksums,
            profile: self.profile.clone(),
            only_dst: self.only_dst.clone(),
            allow: self.allow.clone(),
            allow_file: self.allow_file.clone(),
            foreground: self.foreground,
            force: self.force,
            owner_pid: self.owner_pid,
        })
    }
}

/// One line of JSON on stdout.
fn json_line<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string(v).context("serialise the record")?;
    writeln!(std::io::stdout().lock(), "{s}").context("write to stdout")
}

/// Runs one `dut` command.
pub fn run(args: Args) -> Result<()> {
    xdplayer::stop::stop_on_stdin_eof(args.stop.stop_on_stdin_eof);
    // libbpf's own messages (several lines per failure) only on request; our
    // errors carry the reason in one line.
    if std::env::var_os("DUT_LIBBPF_DEBUG").is_none() {
        libbpf_rs::set_print(None);
    }
    if let Some(ns) = &args.netns {
        crate::kernel::enter_netns(ns)?;
    }
    let json = args.output.format == OutputFormat::Json;
    match args.cmd {
        Cmd::List => list(json),
        Cmd::Install(a) => install(&a, json),
        Cmd::Status { iface, window } => {
            let st = ops::status(&StatusOptions { iface, window })?;
            if json {
                json_line(&st)
            } else {
                print!("{}", status_text(&st));
                Ok(())
            }
        }
        Cmd::Remove { iface } => {
            let r = ops::remove(&iface)?;
            if r.programs.is_empty() {
                eprintln!("dut: no dut program on {iface}; nothing removed");
            } else {
                eprintln!(
                    "dut: removed {} from {iface}{}",
                    r.programs.join(", "),
                    if r.placeholder_restored {
                        "; XDP_PASS placeholder restored"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        Cmd::UpdateBench {
            profile,
            batch,
            duration,
        } => {
            let stop = ctrlc_flag()?;
            let mut printed = Ok(());
            ops::update_bench(
                &UpdateBenchOptions {
                    profile,
                    batch,
                    duration,
                },
                &stop,
                |r| {
                    let p = if json {
                        json_line(r)
                    } else {
                        writeln!(
                            std::io::stdout().lock(),
                            "{:<8} {} entries, {} updates in {:.2}s: {:.0} updates/s{}",
                            match r.method {
                                records::dut::Method::Single => "single",
                                records::dut::Method::Batch => "batch",
                            },
                            r.entries,
                            r.updates,
                            r.seconds,
                            r.updates_per_s,
                            r.batch.map(|b| format!(" (batch {b})")).unwrap_or_default()
                        )
                        .context("write to stdout")
                    };
                    if printed.is_ok() {
                        printed = p;
                    }
                },
            )?;
            printed
        }
    }
}

/// The flag that Ctrl-C (SIGINT, SIGTERM), and with `--stop-on-stdin-eof` the end
/// of standard input, sets (`xdplayer::stop`).
fn ctrlc_flag() -> Result<Arc<AtomicBool>> {
    Ok(xdplayer::stop::flag()?)
}

fn list(json: bool) -> Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    for p in Program::ALL {
        if json {
            let v = serde_json::json!({"program": p.name(), "bpf_name": p.bpf_name(), "description": p.description(),
                "knobs": p.knobs(), "counters": p.counters()});
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{:<10} {}", p.name(), p.description())?;
            for k in p.knobs() {
                writeln!(out, "{:<10}   {k}", "")?;
            }
        }
    }
    if !json {
        writeln!(
            out,
            "modes: native (driver XDP), generic (skb XDP), offload (NIC XDP), userspace (AF_XDP)"
        )?;
    }
    Ok(())
}

fn counters_line(c: &crate::Counters) -> String {
    format!(
        "packets={} pass={} drop={} tx={} parse_errors={}",
        c.get("packets"),
        c.get("pass"),
        c.get("drop"),
        c.get("tx"),
        c.get("parse_errors")
    )
}

fn install(a: &InstallArgs, json: bool) -> Result<()> {
    let plan = a.options()?.plan()?;
    for n in &plan.notes {
        eprintln!("dut: note: {n}");
    }
    if a.mode == Mode::Userspace {
        let stop = ctrlc_flag()?;
        eprintln!(
            "dut: {} in user space on {} (AF_XDP, every queue); Ctrl-C to stop",
            plan.options.program.name(),
            a.iface
        );
        let start = Instant::now();
        let last_line = std::sync::Mutex::new(Instant::now());
        let fin = ops::run_userspace(
            &plan,
            stop,
            |r| {
                let shown = if json {
                    json_line(r)
                } else {
                    writeln!(
                        std::io::stdout().lock(),
                        "dut: {} in user space on {}: {} queue(s), {} sockets",
                        r.program,
                        r.iface,
                        r.queues.unwrap_or(0),
                        r.xsk_mode.as_deref().unwrap_or("?")
                    )
                    .context("write to stdout")
                };
                if let Err(e) = shown {
                    eprintln!("dut: {e:#}");
                }
            },
            |c| {
                // The state file follows every publication (ops); the log line once a second.
                let Ok(mut last) = last_line.lock() else {
                    return;
                };
                if last.elapsed() < Duration::from_secs(1) {
                    return;
                }
                *last = Instant::now();
                eprintln!(
                    "t={:.0}s {}",
                    start.elapsed().as_secs_f64(),
                    counters_line(c)
                )
            },
        )?;
        if json {
            return json_line(&fin);
        }
        let c = crate::Counters::from(fin.counters);
        println!(
            "dut: {} on {}: {}",
            fin.program,
            fin.iface,
            counters_line(&c)
        );
        if let Some(u) = &fin.userspace {
            println!(
                "  {:.1} s, rx {} tx {} (tx ring full {}){}",
                u.duration_s,
                u.rx_packets,
                u.tx_packets,
                u.tx_full,
                u.ns_per_packet
                    .map(|n| format!(", {n:.1} ns/packet"))
                    .unwrap_or_default()
            );
        }
        return Ok(());
    }
    let inst = ops::install(&plan)?;
    eprintln!(
        "dut: {} attached to {} ({} mode, prog id {}{}{})",
        inst.program.name(),
        inst.iface,
        inst.mode,
        inst.prog_id,
        inst.cache_entries
            .map(|n| format!(", {n} cache entries"))
            .unwrap_or_default(),
        inst.allow_prefixes
            .map(|n| format!(", {n} allowed prefixes"))
            .unwrap_or_default()
    );
    if !a.foreground {
        inst.keep();
        return Ok(());
    }
    let stop = ctrlc_flag()?;
    if json {
        json_line(&inst.ready())?;
    } else {
        println!(
            "dut: {} on {}; Ctrl-C to remove it",
            inst.program.name(),
            inst.iface
        );
    }
    let start = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            if let Ok(c) = inst.counters() {
                eprintln!(
                    "t={:.0}s {}",
                    start.elapsed().as_secs_f64(),
                    counters_line(&c)
                );
            }
        }
    }
    let (program, iface) = (inst.program, inst.iface.clone());
    let done = inst.remove()?;
    if json {
        json_line(&done.record)?;
    } else {
        let c = crate::Counters::from(done.record.counters);
        println!("dut: {} on {iface}: {}", program.name(), counters_line(&c));
    }
    eprintln!(
        "dut: removed {} from {iface}{}",
        program.name(),
        done.put_back
            .map(|b| format!("; {b} put back"))
            .unwrap_or_default()
    );
    Ok(())
}

/// `dut status` for people.
pub fn status_text(st: &Status) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if st.interfaces.is_empty() {
        s.push_str("no XDP program attached\n");
    }
    for r in &st.interfaces {
        let _ = writeln!(
            s,
            "{} ({}): {} prog id {}{}",
            r.iface,
            r.mode,
            r.program,
            r.prog_id,
            r.ns_per_packet
                .map(|n| format!(", {n:.1} ns/packet"))
                .unwrap_or_default()
        );
        if let (Some(pid), Some(scope)) = (r.owner.pid, r.owner.scope) {
            let _ = writeln!(
                s,
                "  owner: {} (pid {pid}, {}){}",
                r.owner.comm.as_deref().unwrap_or("?"),
                match scope {
                    records::dut::Scope::Process => "process",
                    records::dut::Scope::Persistent => "persistent",
                },
                if r.owner.claim == Claim::Orphan {
                    ": gone, an orphan (any tool takes it over; `dut remove` removes it)"
                } else {
                    ""
                }
            );
        }
        if let Some(c) = &r.counters {
            let line: Vec<String> = c
                .pairs()
                .filter(|(_, v)| *v != 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(s, "  counters: {}", line.join(" "));
        }
        if let Some(rt) = &r.rates {
            let _ = writeln!(
                s,
                "  rates over {:.2}s: {:.0} packets/s, {:.0} tx/s, {:.0} drop/s, {:.0} pass/s",
                rt.interval_s, rt.packets_pps, rt.tx_pps, rt.drop_pps, rt.pass_pps
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    use records::args::{Dut, DutCmd, DutInstall};

    fn parse(argv: &[String]) -> Args {
        Args::try_parse_from(std::iter::once("dut".to_owned()).chain(argv.iter().cloned()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    fn dut(cmd: DutCmd) -> Dut {
        Dut {
            netns: Some("lab-dut".into()),
            json: true,
            cmd,
        }
    }

    #[test]
    fn the_builder_round_trips_through_duts_own_parser() {
        let i = DutInstall {
            program: "checksum".into(),
            iface: "dut0".into(),
            mode: Some(RecMode::Generic),
            checksums: Some(7),
            profile: Some("dns-small".into()),
            only_dst: Some("198.18.0.0/24".into()),
            allow: vec!["10.0.0.0/8".into(), "192.0.2.1".into()],
            allow_file: Some("/etc/allow.txt".into()),
            foreground: true,
            force: true,
            owner_pid: Some(4242),
        };
        let a = parse(&dut(DutCmd::Install(i.clone())).argv());
        assert_eq!(a.netns.as_deref(), Some("lab-dut"));
        assert_eq!(a.output.format, OutputFormat::Json);
        let Cmd::Install(ia) = a.cmd else {
            panic!("not install: {:?}", a.cmd)
        };
        let o = ia.options().expect("options");
        assert_eq!(o.program, Program::Checksum);
        assert_eq!((o.iface.as_str(), Some(o.mode)), (i.iface.as_str(), i.mode));
        assert_eq!(
            (o.checksums, o.profile, o.only_dst),
            (i.checksums, i.profile, i.only_dst)
        );
        assert_eq!((o.allow, o.allow_file), (i.allow, i.allow_file));
        assert_eq!(
            (o.foreground, o.force, o.owner_pid),
            (true, true, Some(4242))
        );
        // Defaults stay dut's.
        let d = DutInstall {
            program: "drop".into(),
            iface: "eth1".into(),
            ..DutInstall::default()
        };
        let a = parse(
            &Dut {
                netns: None,
                json: false,
                cmd: DutCmd::Install(d),
            }
            .argv(),
        );
        assert!(a.netns.is_none() && a.output.format == OutputFormat::Text);
        let Cmd::Install(ia) = a.cmd else {
            panic!("not install")
        };
        let o = ia.options().expect("options");
        assert_eq!(
            (o.program, o.mode, o.foreground, o.owner_pid),
            (Program::Drop, RecMode::Native, false, None)
        );

        let a = parse(
            &dut(DutCmd::Status {
                iface: Some("dut0".into()),
                window: Some(Duration::from_millis(800)),
            })
            .argv(),
        );
        assert_eq!(
            a.cmd,
            Cmd::Status {
                iface: Some("dut0".into()),
                window: Some(Duration::from_millis(800))
            }
        );
        assert_eq!(a.output.format, OutputFormat::Json);
        let a = parse(
            &dut(DutCmd::Status {
                iface: None,
                window: None,
            })
            .argv(),
        );
        assert_eq!(
            a.cmd,
            Cmd::Status {
                iface: None,
                window: None
            }
        );
        let a = parse(
            &dut(DutCmd::Remove {
                iface: "dut1".into(),
            })
            .argv(),
        );
        assert_eq!(
            a.cmd,
            Cmd::Remove {
                iface: "dut1".into()
            }
        );
        let a = parse(
            &dut(DutCmd::UpdateBench {
                profile: "dns-large".into(),
                batch: Some(256),
                duration: Some(Duration::from_millis(1500)),
            })
            .argv(),
        );
        assert_eq!(
            a.cmd,
            Cmd::UpdateBench {
                profile: "dns-large".into(),
                batch: 256,
                duration: Duration::from_millis(1500)
            }
        );
        let a = parse(
            &dut(DutCmd::UpdateBench {
                profile: "dns-small".into(),
                batch: None,
                duration: None,
            })
            .argv(),
        );
        assert_eq!(
            a.cmd,
            Cmd::UpdateBench {
                profile: "dns-small".into(),
                batch: 4096,
                duration: Duration::from_secs(3)
            }
        );
    }

    #[test]
    fn json_is_output_json_before_and_after_the_subcommand() {
        let p = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        for argv in [
            &["status", "--json"][..],
            &["--json", "status"],
            &["status", "--output", "json"],
            &["--output", "json", "status"],
        ] {
            assert_eq!(p(argv).output.format, OutputFormat::Json, "{argv:?}");
        }
        assert_eq!(
            p(&["update-bench", "--profile", "dns-small", "--json"])
                .output
                .format,
            OutputFormat::Json
        );
        assert_eq!(p(&["list", "--json"]).output.format, OutputFormat::Json);
        assert_eq!(p(&["status"]).output.format, OutputFormat::Text);
        assert!(Args::try_parse_from(["dut", "status", "--json", "--output", "text"]).is_err());
        assert!(Args::try_parse_from(["dut", "status", "--output", "csv"]).is_err());
    }

    #[test]
    fn an_unknown_program_is_refused_before_anything_happens() {
        let a = parse(&[
            "install".into(),
            "nope".into(),
            "--iface".into(),
            "lo".into(),
        ]);
        let Cmd::Install(ia) = a.cmd else {
            panic!("not install")
        };
        let e = ia.options().expect_err("unknown program").to_string();
        assert!(e.contains("unknown program 'nope'"), "{e}");
    }

    #[test]
    fn status_text_shows_owner_counters_and_rates() {
        let c = records::dut::Counters {
            packets: 10,
            drop: 10,
            ..Default::default()
        };
        let st = Status {
            schema_version: records::SCHEMA_VERSION,
            interfaces: vec![records::dut::Attached {
                iface: "dut0".into(),
                ifindex: 3,
                program: "drop".into(),
                bpf_name: "dut_drop".into(),
                ours: true,
                mode: RecMode::Native,
                prog_id: 12,
                config: None,
                counters: Some(c),
                rates: Some(records::dut::Rates {
                    interval_s: 1.0,
                    packets_pps: 10.0,
                    mbps: 0.0,
                    pass_pps: 0.0,
                    drop_pps: 10.0,
                    tx_pps: 0.0,
                    parse_errors_pps: 0.0,
                }),
                run_cnt: 10,
                run_time_ns: 250,
                ns_per_packet: Some(25.0),
                owner: records::dut::Owner {
                    claim: Claim::Orphan,
                    scope: Some(records::dut::Scope::Process),
                    pid: Some(99),
                    comm: Some("lab".into()),
                },
            }],
        };
        let t = status_text(&st);
        assert!(
            t.starts_with("dut0 (native): drop prog id 12, 25.0 ns/packet\n"),
            "{t}"
        );
        assert!(
            t.contains("owner: lab (pid 99, process): gone, an orphan"),
            "{t}"
        );
        assert!(t.contains("counters: packets=10 drop=10\n"), "{t}");
        assert!(t.contains("10 drop/s"), "{t}");
        let none = Status {
            schema_version: records::SCHEMA_VERSION,
            interfaces: vec![],
        };
        assert_eq!(status_text(&none), "no XDP program attached\n");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
