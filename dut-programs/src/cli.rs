//! The `dut` commands: `list`, `install`, `status`, `remove`, `update-bench`.
//!
//! Invariants: programs are found through the kernel (netlink XDP query ->
//! program id -> info -> maps), never through pins; a program counts as
//! ours when its BPF name is one of [`Program::bpf_name`], as a placeholder
//! when it is `xdp_pass`. `install` attaches through `xdplayer`'s guard, which
//! writes the ownership record (`xdplayer::owner`: persistent for `install`,
//! process-scoped for `--foreground`) naming the program and the placeholder's
//! mode under it, trusted only while it names the attached program, so
//! `remove` can put the placeholder back. `remove` also removes orphans: any
//! tool's process-scoped program whose owner is gone. Run-time counters of the
//! user-space point go to state files under `/run/dut/` keyed by
//! network-namespace cookie and ifindex. Bad input fails before anything is
//! attached.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::cache::{self, Entries, Method};
use crate::counters::Counters;
use crate::kernel::{self, XdpMode};
use crate::skel::{self, Config, LoadOptions, Program};
use xdplayer::attach::{AttachOptions, XdpGuard, xdp_detach};
use xdplayer::owner::{self, Claim, Scope};

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
    /// Output format (`json` = the subcommands' `--json`), as every tool takes it.
    #[arg(long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The programs, what each does, its knobs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Load a program and attach it to an interface.
    Install(InstallArgs),
    /// What is attached where, counters, rates and per-packet cost.
    Status {
        #[arg(long, value_name = "IF")]
        iface: Option<String>,
        #[arg(long)]
        json: bool,
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
        #[arg(long)]
        json: bool,
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
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// drop | checksum | dns-ping | dns-cache
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
    /// Only process IPv4 traffic to this prefix; pass (and count) the rest.
    #[arg(long, value_name = "CIDR")]
    pub only_dst: Option<String>,
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

/// Runs one `dut` command.
pub fn run(args: Args) -> Result<()> {
    // libbpf's own messages (several lines per failure) only on request; our
    // errors carry the reason in one line.
    if std::env::var_os("DUT_LIBBPF_DEBUG").is_none() {
        libbpf_rs::set_print(None);
    }
    if let Some(ns) = &args.netns {
        kernel::enter_netns(ns)?;
    }
    let j = args.output == Some(OutputFormat::Json);
    match args.cmd {
        Cmd::List { json } => list(json || j),
        Cmd::Install(a) => install(&a),
        Cmd::Status {
            iface,
            json,
            window,
        } => status(iface.as_deref(), json, window),
        Cmd::Remove { iface } => remove(&iface),
        Cmd::UpdateBench {
            profile,
            batch,
            duration,
            json,
        } => update_bench(&profile, batch, duration, json || j),
    }
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "`dut {what}` must run as root (it uses the bpf() system call and XDP netlink); try sudo"
        );
    }
    Ok(())
}

fn list(json: bool) -> Result<()> {
    let out = std::io::stdout();
    let mut out = out.lock();
    for p in Program::ALL {
        if json {
            let v = json!({"program": p.name(), "bpf_name": p.bpf_name(), "description": p.description(),
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

// ---- state files ----

fn state_dir() -> PathBuf {
    PathBuf::from("/run/dut")
}

fn state_path(kind: &str, ifindex: u32) -> Result<PathBuf> {
    Ok(state_dir().join(format!("{kind}-{}-{ifindex}.json", kernel::netns_cookie()?)))
}

fn write_state(path: &std::path::Path, v: &Value) -> Result<()> {
    std::fs::create_dir_all(state_dir()).context("create /run/dut")?;
    xdplayer::atomic_file::write(path, v.to_string().as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

fn read_state(path: &PathBuf) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---- install ----

fn install(a: &InstallArgs) -> Result<()> {
    let program = Program::from_name(&a.program).ok_or_else(|| {
        anyhow!(
            "unknown program '{}': use drop, checksum, dns-ping or dns-cache (see `dut list`)",
            a.program
        )
    })?;
    let checksums = match (a.checksums, program) {
        (Some(n), Program::Checksum) if n <= u64::from(skel::MAX_CHECKSUMS) => n as u32,
        (Some(n), Program::Checksum) => {
            bail!(
                "--checksums {n} is out of range: use 0 to {}",
                skel::MAX_CHECKSUMS
            )
        }
        (Some(_), _) => {
            eprintln!("dut: note: --checksums only applies to the checksum program; ignored");
            1
        }
        (None, _) => 1,
    };
    let tenant = a
        .only_dst
        .as_deref()
        .map(profiles::units::parse_cidr)
        .transpose()
        .map_err(|e| anyhow!("--only-dst: {e}"))?;
    let entries = match (&a.profile, program) {
        (Some(p), Program::DnsCache) => {
            let prof = profiles::Profile::load(p).with_context(|| format!("load profile '{p}'"))?;
            let dns = prof.dns.as_ref().ok_or_else(|| {
                anyhow!("profile '{p}' has no DNS name set; dns-cache needs one (e.g. --profile dns-small)")
            })?;
            Some(Entries::of(&dns.names).with_context(|| format!("profile '{p}'"))?)
        }
        (Some(_), _) => {
            // Accepted so that an experiment can pass its profile to every program.
            eprintln!(
                "dut: note: --profile only fills the dns-cache map; ignored for {}",
                program.name()
            );
            None
        }
        (None, _) => None,
    };
    let config = Config { tenant, checksums };
    if let Some(pid) = a.owner_pid {
        xdplayer::owner::Owner::of(pid).with_context(|| format!("--owner-pid {pid}"))?;
    }
    require_root("install")?;
    let ifindex = kernel::ifindex(&a.iface)?;
    if a.mode == Mode::Userspace {
        return install_userspace(a, program, config, entries.as_ref(), ifindex);
    }
    let mode = match a.mode {
        Mode::Native => XdpMode::Native,
        Mode::Generic => XdpMode::Generic,
        Mode::Offload => XdpMode::Offload,
        Mode::Userspace => unreachable!("handled above"),
    };

    // What is there now: placeholder, orphan (left by a dead process-scoped
    // owner), ours, or foreign.
    for (m, id) in kernel::xdp_query(ifindex)?.iter() {
        let info = kernel::prog_info(id)?;
        let claim = owner::classify(ifindex, id, &info.name);
        if !claim.replaceable() && !a.force {
            let whose = if Program::from_bpf_name(&info.name).is_some() {
                "dut's"
            } else {
                "a foreign"
            };
            bail!(
                "{} already has {whose} XDP program '{}' (id {id}, {} mode){}: run `dut remove --iface {}` first, or pass --force",
                a.iface,
                info.name,
                m.as_str(),
                claim.describe(),
                a.iface
            );
        }
    }

    let cache_entries = entries
        .as_ref()
        .map(|e| e.count as u32)
        .unwrap_or(65_536)
        .max(1);
    let opts = LoadOptions {
        config,
        cache_entries,
        offload_ifindex: (mode == XdpMode::Offload).then_some(ifindex),
    };
    let loaded = match skel::load(program, &opts) {
        Ok(l) => l,
        Err(e) if mode == XdpMode::Offload => {
            bail!(
                "XDP offload (hardware mode) is not supported on {}: loading the device-bound program failed ({e}); nothing attached",
                a.iface
            )
        }
        Err(e) => return Err(e).context(format!("load {}", program.name())),
    };
    if let (Some(e), Some(map)) = (&entries, &loaded.cache) {
        cache::fill_batch(map, e, 8192).context("fill the dns-cache map from the profile")?;
    }

    // Attach through the shared layer: the ownership record (persistent, or
    // process-scoped with --foreground) first, then an atomic replacement in the
    // requested mode; what was there goes back when a --foreground run ends.
    let scope = if a.foreground || a.owner_pid.is_some() {
        Scope::Process
    } else {
        Scope::Persistent
    };
    let guard = XdpGuard::attach(
        &a.iface,
        loaded.prog.as_fd(),
        &AttachOptions {
            owner_pid: a.owner_pid,
            force: a.force,
            scope,
            mode: Some(mode),
        },
    );
    let guard = match guard {
        Ok(g) => g,
        Err(e) if mode == XdpMode::Offload => bail!(
            "XDP offload (hardware mode) is not supported on {}: {e}; nothing attached",
            a.iface
        ),
        Err(e) => return Err(e).context(format!("attach {} on {}", program.name(), a.iface)),
    };
    eprintln!(
        "dut: {} attached to {} ({} mode, prog id {}{})",
        program.name(),
        a.iface,
        mode.as_str(),
        loaded.prog_id,
        entries
            .as_ref()
            .map(|e| format!(", {} cache entries", e.count))
            .unwrap_or_default()
    );
    if !a.foreground {
        guard.keep();
        return Ok(());
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install Ctrl-C handler")?;
    }
    println!(
        "{}",
        json!({"schema_version": records::SCHEMA_VERSION, "type": "ready", "iface": a.iface, "program": program.name(), "mode": mode.as_str(), "prog_id": loaded.prog_id})
    );
    let start = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            if let Ok(c) = Counters::read(&loaded.stats) {
                eprintln!(
                    "t={:.0}s packets={} pass={} drop={} tx={} parse_errors={}",
                    start.elapsed().as_secs_f64(),
                    c.get("packets"),
                    c.get("pass"),
                    c.get("drop"),
                    c.get("tx"),
                    c.get("parse_errors")
                );
            }
        }
    }
    let c = Counters::read(&loaded.stats)?;
    println!(
        "{}",
        json!({"schema_version": records::SCHEMA_VERSION, "type": "final", "iface": a.iface, "program": program.name(), "counters": c.to_json()})
    );
    let back = guard.replaced().map(String::from);
    drop(guard);
    eprintln!(
        "dut: removed {} from {}{}",
        program.name(),
        a.iface,
        back.map(|b| format!("; {b} put back")).unwrap_or_default()
    );
    Ok(())
}

/// `--mode userspace`: AF_XDP sockets on every queue, the program's logic in
/// this process until Ctrl-C; counters every second to stderr and to a state
/// file `dut status` reads; a final JSON line on stdout.
fn install_userspace(
    a: &InstallArgs,
    program: Program,
    config: Config,
    entries: Option<&Entries>,
    ifindex: u32,
) -> Result<()> {
    let cache = entries.map(|e| {
        let mut c = crate::shim::Cache::with_capacity(e.count);
        for (k, v) in e
            .keys
            .chunks_exact(skel::DNS_KEY_LEN)
            .zip(e.values.chunks_exact(skel::DNS_RECORD_LEN))
        {
            let mut kk = [0u8; skel::DNS_KEY_LEN];
            let mut vv = [0u8; skel::DNS_RECORD_LEN];
            kk.copy_from_slice(k);
            vv.copy_from_slice(v);
            c.insert(kk, vv);
        }
        Arc::new(c)
    });
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install Ctrl-C handler")?;
    }
    let path = state_path("userspace", ifindex)?;
    let start = Instant::now();
    let opts = crate::userspace::Options {
        iface: a.iface.clone(),
        program,
        config,
        cache,
        force: a.force,
    };
    let iface = a.iface.clone();
    let write = |c: &Counters, ns: u64, n: u64| {
        let _ = write_state(
            &path,
            &json!({"pid": std::process::id(), "iface": iface, "program": program.name(), "mode": "userspace",
                "t": now_s(), "counters": c.to_json(), "run_time_ns": ns, "run_cnt": n,
                "config": {"checksums": config.checksums, "only_dst": config.tenant.map(|(x, l)| format!("{x}/{l}"))}}),
        );
    };
    eprintln!(
        "dut: {} in user space on {} (AF_XDP, every queue); Ctrl-C to stop",
        program.name(),
        a.iface
    );
    let last_line = std::sync::Mutex::new(std::time::Instant::now());
    let report = crate::userspace::run(
        &opts,
        stop,
        |r| {
            println!(
                "{}",
                json!({"schema_version": records::SCHEMA_VERSION, "type": "ready", "iface": a.iface, "program": program.name(), "mode": "userspace",
                    "xsk_mode": r.xsk_mode, "redirect_mode": r.attach_mode, "queues": r.queues})
            );
        },
        |c, ns, n| {
            write(&c, ns, n);
            // The state file follows every publication; the log line once a second.
            let Ok(mut last) = last_line.lock() else {
                return;
            };
            if last.elapsed() < std::time::Duration::from_secs(1) {
                return;
            }
            *last = std::time::Instant::now();
            eprintln!(
                "t={:.0}s packets={} tx={} pass={} drop={} parse_errors={}",
                start.elapsed().as_secs_f64(),
                c.get("packets"),
                c.get("tx"),
                c.get("pass"),
                c.get("drop"),
                c.get("parse_errors")
            );
        },
    );
    let _ = std::fs::remove_file(&path);
    let report = report.with_context(|| format!("user-space {} on {}", program.name(), a.iface))?;
    println!(
        "{}",
        json!({"schema_version": records::SCHEMA_VERSION, "type": "final", "iface": a.iface, "program": program.name(), "mode": "userspace",
            "xsk_mode": report.xsk_mode, "redirect_mode": report.attach_mode, "queues": report.queues,
            "duration_s": start.elapsed().as_secs_f64(), "rx_packets": report.rx_packets,
            "tx_packets": report.tx_packets, "tx_full": report.tx_full, "counters": report.counters.to_json(),
            "run_cnt": report.run_cnt, "run_time_ns": report.run_time_ns,
            "ns_per_packet": if report.run_cnt > 0 { json!(report.run_time_ns as f64 / report.run_cnt as f64) } else { Value::Null }})
    );
    Ok(())
}

// ---- remove ----

fn remove(iface: &str) -> Result<()> {
    require_root("remove")?;
    let ifindex = kernel::ifindex(iface)?;
    let mut removed = Vec::new();
    let mut others = Vec::new();
    let mut placeholder_mode = None;
    for (m, id) in kernel::xdp_query(ifindex)?.iter() {
        let info = kernel::prog_info(id)?;
        let claim = owner::classify(ifindex, id, &info.name);
        let orphan = matches!(claim, Claim::Orphan(_));
        if Program::from_bpf_name(&info.name).is_none() && !orphan {
            others.push(m);
            continue;
        }
        let fd = kernel::prog_fd(id)?;
        xdp_detach(ifindex, m, Some(fd.as_fd()))
            .with_context(|| format!("detach {} from {iface}", info.name))?;
        removed.push(format!(
            "{}{} ({} mode, id {id})",
            if orphan { "orphaned " } else { "" },
            info.name,
            m.as_str()
        ));
        // A record counts only while it names the program just removed.
        if let Claim::Orphan(r) | Claim::Live(r) | Claim::Persistent(r) = &claim {
            placeholder_mode = placeholder_mode.or(r.placeholder_mode);
            owner::remove_if_names(&owner::record_path(ifindex)?, id);
        }
    }
    let mut restored = false;
    if let Some(pm) = placeholder_mode {
        // Native and generic programs exclude each other: only if the slot is free.
        if others.is_empty() {
            let fd = skel::load_placeholder()?;
            xdplayer::placeholder::attach(ifindex, &fd, pm)
                .with_context(|| format!("restore the XDP_PASS placeholder on {iface}"))?;
            restored = true;
        }
    }
    let _ = std::fs::remove_file(state_path("status", ifindex)?);
    if removed.is_empty() {
        eprintln!("dut: no dut program on {iface}; nothing removed");
    } else {
        eprintln!(
            "dut: removed {} from {iface}{}",
            removed.join(", "),
            if restored {
                "; XDP_PASS placeholder restored"
            } else {
                ""
            }
        );
    }
    Ok(())
}

// ---- status ----

struct Snapshot {
    iface: String,
    ifindex: u32,
    mode: &'static str,
    info: kernel::ProgInfo,
    program: Option<Program>,
    config: Option<Config>,
    counters: Option<Counters>,
}

fn snapshot(ifaces: &[(u32, String)]) -> Result<Vec<Snapshot>> {
    let mut out = Vec::new();
    for (ifindex, iface) in ifaces {
        for (mode, id) in kernel::xdp_query(*ifindex)?.iter() {
            let mut info = kernel::prog_info(id)?;
            let program = Program::from_bpf_name(&info.name);
            let (mut counters, mut config) = (None, None);
            if program.is_some() {
                for mid in &info.map_ids {
                    use libbpf_rs::MapCore;
                    let Ok(map) = kernel::map_by_id(*mid) else {
                        continue;
                    };
                    let name = map.name().to_string_lossy().into_owned();
                    if name == "dut_stats" {
                        counters = Some(Counters::read(&map)?);
                    } else if name.ends_with(".rodata")
                        && let Ok(Some(v)) =
                            map.lookup(&0u32.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
                    {
                        config = Config::from_rodata(&v);
                    }
                }
            }
            let mut mode_s = mode.as_str();
            let mut program = program;
            if info.name == xdplayer::REDIRECT_PROG
                && let Some(st) = read_state(&state_path("userspace", *ifindex)?)
                && st["pid"]
                    .as_u64()
                    .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            {
                program = st["program"].as_str().and_then(Program::from_name);
                counters = Some(Counters::from_json(&st["counters"]));
                config = Some(Config {
                    checksums: st["config"]["checksums"].as_u64().unwrap_or(0) as u32,
                    tenant: st["config"]["only_dst"]
                        .as_str()
                        .and_then(|c| profiles::units::parse_cidr(c).ok()),
                });
                mode_s = "userspace";
                info.run_time_ns = st["run_time_ns"].as_u64().unwrap_or(0);
                info.run_cnt = st["run_cnt"].as_u64().unwrap_or(0);
            }
            out.push(Snapshot {
                iface: iface.clone(),
                ifindex: *ifindex,
                mode: mode_s,
                info,
                program,
                config,
                counters,
            });
        }
    }
    Ok(out)
}

fn rates(now: &Counters, before: &Counters, secs: f64) -> Value {
    let d = now.since(before);
    let r = |n: &str| {
        if secs > 0.0 {
            d.get(n) as f64 / secs
        } else {
            0.0
        }
    };
    json!({
        "interval_s": secs,
        "packets_pps": r("packets"),
        "mbps": r("bytes") * 8.0 / 1e6,
        "pass_pps": r("pass"),
        "drop_pps": r("drop"),
        "tx_pps": r("tx"),
        "parse_errors_pps": r("parse_errors"),
    })
}

fn status(iface: Option<&str>, json_out: bool, window: Option<Duration>) -> Result<()> {
    require_root("status")?;
    let ifaces = match iface {
        Some(n) => vec![(kernel::ifindex(n)?, n.to_string())],
        None => kernel::interfaces()?,
    };
    let mut records = Vec::new();
    match window {
        Some(w) => {
            let _stats = kernel::enable_stats()?;
            let before = snapshot(&ifaces)?;
            let t0 = Instant::now();
            std::thread::sleep(w);
            let after = snapshot(&ifaces)?;
            let secs = t0.elapsed().as_secs_f64();
            for s in &after {
                let b = before
                    .iter()
                    .find(|b| b.ifindex == s.ifindex && b.info.id == s.info.id);
                let rate = match (s.counters, b.and_then(|b| b.counters)) {
                    (Some(now), Some(then)) => rates(&now, &then, secs),
                    _ => Value::Null,
                };
                let (cnt, ns) = match b {
                    Some(b) => (
                        s.info.run_cnt.saturating_sub(b.info.run_cnt),
                        s.info.run_time_ns.saturating_sub(b.info.run_time_ns),
                    ),
                    None => (0, 0),
                };
                records.push(record(s, rate, cnt, ns));
            }
        }
        None => {
            for s in snapshot(&ifaces)? {
                let path = state_path("status", s.ifindex)?;
                let t = now_s();
                let rate = match (s.counters, read_state(&path)) {
                    (Some(now), Some(prev))
                        if prev["prog_id"].as_u64() == Some(u64::from(s.info.id)) =>
                    {
                        let then = Counters::from_json(&prev["counters"]);
                        rates(&now, &then, t - prev["t"].as_f64().unwrap_or(t))
                    }
                    _ => Value::Null,
                };
                if let Some(c) = s.counters {
                    let _ = write_state(
                        &path,
                        &json!({"prog_id": s.info.id, "t": t, "counters": c.to_json()}),
                    );
                }
                records.push(record(&s, rate, s.info.run_cnt, s.info.run_time_ns));
            }
        }
    }
    if json_out {
        println!(
            "{}",
            json!({"schema_version": records::SCHEMA_VERSION, "interfaces": records})
        );
    } else {
        if records.is_empty() {
            println!("no XDP program attached");
        }
        for r in &records {
            println!(
                "{} ({}): {} prog id {}{}",
                r["iface"].as_str().unwrap_or("?"),
                r["mode"].as_str().unwrap_or("?"),
                r["program"].as_str().unwrap_or("?"),
                r["prog_id"],
                r["ns_per_packet"]
                    .as_f64()
                    .map(|n| format!(", {n:.1} ns/packet"))
                    .unwrap_or_default()
            );
            if let Some(o) = r["owner"]["pid"].as_u64() {
                println!(
                    "  owner: {} (pid {o}, {}){}",
                    r["owner"]["comm"].as_str().unwrap_or("?"),
                    r["owner"]["scope"].as_str().unwrap_or("?"),
                    if r["owner"]["claim"] == "orphan" {
                        ": gone, an orphan (any tool takes it over; `dut remove` removes it)"
                    } else {
                        ""
                    }
                );
            }
            if let Some(c) = r["counters"].as_object() {
                let line: Vec<String> = c
                    .iter()
                    .filter(|(_, v)| v.as_u64() != Some(0))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("  counters: {}", line.join(" "));
            }
            if let Some(rt) = r["rates"].as_object() {
                println!(
                    "  rates over {:.2}s: {:.0} packets/s, {:.0} tx/s, {:.0} drop/s, {:.0} pass/s",
                    rt["interval_s"].as_f64().unwrap_or(0.0),
                    rt["packets_pps"].as_f64().unwrap_or(0.0),
                    rt["tx_pps"].as_f64().unwrap_or(0.0),
                    rt["drop_pps"].as_f64().unwrap_or(0.0),
                    rt["pass_pps"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}

fn record(s: &Snapshot, rates: Value, run_cnt: u64, run_time_ns: u64) -> Value {
    json!({
        "iface": s.iface,
        "ifindex": s.ifindex,
        "program": s.program.map(|p| p.name().to_string()).unwrap_or_else(|| s.info.name.clone()),
        "bpf_name": s.info.name,
        "ours": s.program.is_some(),
        "mode": s.mode,
        "prog_id": s.info.id,
        "config": s.config.map(|c| json!({
            "checksums": c.checksums,
            "only_dst": c.tenant.map(|(a, l)| format!("{a}/{l}")),
        })),
        "counters": s.counters.map(|c| Value::Object(c.to_json())),
        "rates": rates,
        "run_cnt": run_cnt,
        "run_time_ns": run_time_ns,
        "ns_per_packet": if run_cnt > 0 { json!(run_time_ns as f64 / run_cnt as f64) } else { Value::Null },
        "owner": owner_json(s.ifindex, s.info.id, &s.info.name),
    })
}

/// Who holds the program, from its ownership record (`xdplayer::owner`):
/// `{"claim": placeholder|orphan|live|persistent|unrecorded, "scope", "pid", "comm"}`.
fn owner_json(ifindex: u32, id: u32, name: &str) -> Value {
    let claim = owner::classify(ifindex, id, name);
    match claim.record() {
        Some(r) => {
            json!({"claim": claim.kind(), "scope": r.scope, "pid": r.owner.pid, "comm": r.owner.comm})
        }
        None => json!({"claim": claim.kind()}),
    }
}

// ---- update-bench ----

fn update_bench(profile: &str, batch: usize, duration: Duration, json_out: bool) -> Result<()> {
    if batch == 0 {
        bail!("--batch 0: use a batch size of at least 1");
    }
    let prof =
        profiles::Profile::load(profile).with_context(|| format!("load profile '{profile}'"))?;
    let dns = prof.dns.as_ref().ok_or_else(|| {
        anyhow!("profile '{profile}' has no DNS name set (e.g. use dns-small or dns-large)")
    })?;
    let entries = Entries::of(&dns.names).with_context(|| format!("profile '{profile}'"))?;
    require_root("update-bench")?;
    let map = cache::create_map(entries.count as u32)?;
    // Fill once first: both methods then measure rewriting a full map, as the
    // paper's continuous updates do, not the first inserts.
    cache::fill_batch(&map, &entries, 8192).context("fill the map before measuring")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("install Ctrl-C handler")?;
    }
    for method in [Method::Single, Method::Batch(batch)] {
        let r = cache::update_bench(&map, &entries, method, duration, &stop)?;
        let (mname, b) = match method {
            Method::Single => ("single", Value::Null),
            Method::Batch(b) => ("batch", json!(b)),
        };
        if json_out {
            println!(
                "{}",
                json!({"schema_version": records::SCHEMA_VERSION, "type": "final", "profile": prof.name, "entries": r.entries, "method": mname,
                    "batch": b, "updates": r.updates, "seconds": r.seconds, "updates_per_s": r.updates_per_s()})
            );
        } else {
            println!(
                "{:<8} {} entries, {} updates in {:.2}s: {:.0} updates/s{}",
                mname,
                r.entries,
                r.updates,
                r.seconds,
                r.updates_per_s(),
                if let Method::Batch(b) = method {
                    format!(" (batch {b})")
                } else {
                    String::new()
                }
            );
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
