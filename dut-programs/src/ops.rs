//! The operations behind `dut`'s commands, as a library: [`install`] (and
//! [`run_userspace`] for the user-space execution point), [`status`],
//! [`remove`], [`update_bench`]. Typed inputs (`*Options`) and typed outputs
//! (the `records::dut` types, which `dut --output json` prints and `lab`
//! reads back); nothing here parses arguments or prints to stdout.
//!
//! Invariants: programs are found through the kernel (netlink XDP query ->
//! program id -> info -> maps), never through pins; a program counts as
//! ours when its BPF name is one of [`Program::bpf_name`], as a placeholder
//! when it is `xdp_pass`. [`install`] attaches through `xdplayer`'s guard,
//! which writes the ownership record (`xdplayer::owner`: persistent, or
//! process-scoped for a foreground run or an `owner_pid`) naming the program
//! and the placeholder's mode under it, trusted only while it names the
//! attached program, so [`remove`] can put the placeholder back. [`remove`]
//! also removes orphans: any tool's process-scoped program whose owner is gone.
//! Run-time counters of the user-space point go to state files under
//! `/run/dut/` keyed by network-namespace cookie and ifindex. Bad input fails
//! before anything is attached.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::allow::AllowList;
use crate::cache::{self, Entries, Method};
use crate::counters::Counters;
use crate::kernel::{self, XdpMode};
use crate::skel::{self, Config, LoadOptions, Loaded, Program};
use records::dut::{self as rec, Mode};
use xdplayer::attach::{AttachOptions, XdpGuard, xdp_detach};
use xdplayer::owner::{self, Claim, Scope};

/// Fails unless running as root (`what`: the command, for the message).
pub fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "`dut {what}` must run as root (it uses the bpf() system call and XDP netlink); try sudo"
        );
    }
    Ok(())
}

/// The program named `name` (`drop`, `checksum`, `dns-ping`, `dns-cache`, `syn-filter`).
pub fn program(name: &str) -> Result<Program> {
    Program::from_name(name).ok_or_else(|| {
        anyhow!(
            "unknown program '{name}': use drop, checksum, dns-ping, dns-cache or syn-filter (see `dut list`)"
        )
    })
}

// ---- state files ----

fn state_dir() -> PathBuf {
    PathBuf::from("/run/dut")
}

fn state_path(kind: &str, ifindex: u32) -> Result<PathBuf> {
    Ok(state_dir().join(format!("{kind}-{}-{ifindex}.json", kernel::netns_cookie()?)))
}

fn write_state<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    std::fs::create_dir_all(state_dir()).context("create /run/dut")?;
    let text = serde_json::to_string(v).context("serialise a state file")?;
    xdplayer::atomic_file::write(path, text.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// A state file, if there is one of this shape (one of another build or a
/// half-written one only loses a rate, so it counts as none).
fn read_state<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// What the user-space point leaves for `dut status` while it runs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserspaceState {
    pid: u32,
    iface: String,
    program: String,
    t: f64,
    counters: rec::Counters,
    run_time_ns: u64,
    run_cnt: u64,
    config: rec::ProgConfig,
}

/// What `dut status` leaves for its next run (rates since then).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusState {
    prog_id: u32,
    t: f64,
    counters: rec::Counters,
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn prog_config(c: &Config) -> rec::ProgConfig {
    rec::ProgConfig {
        checksums: c.checksums,
        only_dst: c.tenant.map(|(a, l)| format!("{a}/{l}")),
    }
}

fn xdp_mode(m: XdpMode) -> Mode {
    match m {
        XdpMode::Native => Mode::Native,
        XdpMode::Generic => Mode::Generic,
        XdpMode::Offload => Mode::Offload,
    }
}

fn ns_per_packet(run_cnt: u64, run_time_ns: u64) -> Option<f64> {
    (run_cnt > 0).then(|| run_time_ns as f64 / run_cnt as f64)
}

// ---- install ----

/// What to install where.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallOptions {
    /// The program.
    pub program: Program,
    /// Interface.
    pub iface: String,
    /// Execution point.
    pub mode: Mode,
    /// Checksum rounds per frame (checksum program; 0..=[`skel::MAX_CHECKSUMS`]).
    pub checksums: Option<u64>,
    /// Fill the dns-cache map with this profile's name set.
    pub profile: Option<String>,
    /// Only process IPv4 traffic to this prefix (`a.b.c.d/len`).
    pub only_dst: Option<String>,
    /// syn-filter: sources whose SYNs pass (`a.b.c.d/len` each).
    pub allow: Vec<String>,
    /// syn-filter: a file of such prefixes, one per line, `#` comments.
    pub allow_file: Option<PathBuf>,
    /// Process-scoped (detached when the caller drops the [`Installed`]) instead of persistent.
    pub foreground: bool,
    /// Replace a foreign XDP program.
    pub force: bool,
    /// Attach on behalf of process PID: process-scoped.
    pub owner_pid: Option<u32>,
}

/// Options checked and resolved: what [`install`] and [`run_userspace`] take.
#[derive(Debug)]
pub struct Plan {
    /// The options.
    pub options: InstallOptions,
    /// The program's configuration.
    pub config: Config,
    /// Cache entries from the profile (dns-cache with a profile).
    pub entries: Option<Entries>,
    /// The allow-list (syn-filter; empty when none was given: every SYN dropped).
    pub allow: Option<AllowList>,
    /// Options that were given but do not apply (for the user).
    pub notes: Vec<String>,
}

impl InstallOptions {
    /// Checks the options and loads the profile; nothing is attached yet.
    pub fn plan(self) -> Result<Plan> {
        let program = self.program;
        let mut notes = Vec::new();
        let checksums = match (self.checksums, program) {
            (Some(n), Program::Checksum) => u32::try_from(n)
                .ok()
                .filter(|n| *n <= skel::MAX_CHECKSUMS)
                .ok_or_else(|| {
                    anyhow!(
                        "--checksums {n} is out of range: use 0 to {}",
                        skel::MAX_CHECKSUMS
                    )
                })?,
            (Some(_), _) => {
                notes.push("--checksums only applies to the checksum program; ignored".into());
                1
            }
            (None, _) => 1,
        };
        let tenant = self
            .only_dst
            .as_deref()
            .map(profiles::units::parse_cidr_any)
            .transpose()
            .map_err(|e| anyhow!("--only-dst: {e}"))?;
        let entries = match (&self.profile, program) {
            (Some(p), Program::DnsCache) => {
                let prof =
                    profiles::Profile::load(p).with_context(|| format!("load profile '{p}'"))?;
                let dns = prof.dns.as_ref().ok_or_else(|| {
                    anyhow!("profile '{p}' has no DNS name set; dns-cache needs one (e.g. --profile dns-small)")
                })?;
                Some(Entries::of(&dns.names).with_context(|| format!("profile '{p}'"))?)
            }
            (Some(_), _) => {
                // Accepted so that an experiment can pass its profile to every program.
                notes.push(format!(
                    "--profile only fills the dns-cache map; ignored for {}",
                    program.name()
                ));
                None
            }
            (None, _) => None,
        };
        let allow = if program == Program::SynFilter {
            let mut list = AllowList::new();
            list.add_args(&self.allow)?;
            if let Some(f) = &self.allow_file {
                list.add_file(f)?;
            }
            Some(list)
        } else {
            if !self.allow.is_empty() || self.allow_file.is_some() {
                notes.push(format!(
                    "--allow and --allow-file only apply to syn-filter; ignored for {}",
                    program.name()
                ));
            }
            None
        };
        if let Some(pid) = self.owner_pid {
            xdplayer::owner::Owner::of(pid).with_context(|| format!("--owner-pid {pid}"))?;
        }
        Ok(Plan {
            options: self,
            config: Config { tenant, checksums },
            entries,
            allow,
            notes,
        })
    }
}

/// A program attached in the kernel. Dropping it detaches a process-scoped
/// installation and puts back what was there; [`Installed::keep`] leaves it.
#[derive(Debug)]
pub struct Installed {
    /// The program.
    pub program: Program,
    /// Interface.
    pub iface: String,
    /// Execution point.
    pub mode: Mode,
    /// Kernel program id.
    pub prog_id: u32,
    /// Entries filled into the dns-cache map.
    pub cache_entries: Option<usize>,
    /// Prefixes in the syn-filter allow-list.
    pub allow_prefixes: Option<usize>,
    loaded: Loaded,
    guard: XdpGuard,
}

/// What [`Installed::remove`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Uninstalled {
    /// The final record (counters at the end).
    pub record: rec::InstallFinal,
    /// What was put back, if anything.
    pub put_back: Option<String>,
}

impl Installed {
    /// The `ready` record of a foreground run.
    pub fn ready(&self) -> rec::InstallReady {
        rec::InstallReady {
            kind: records::Kind::Ready,
            schema_version: records::SCHEMA_VERSION,
            iface: self.iface.clone(),
            program: self.program.name().into(),
            mode: self.mode,
            prog_id: Some(self.prog_id),
            xsk_mode: None,
            redirect_mode: None,
            queues: None,
        }
    }

    /// The program's counters now.
    pub fn counters(&self) -> Result<Counters> {
        Counters::read(&self.loaded.stats).context("read the program's counters")
    }

    /// Leaves the program attached (a persistent installation).
    pub fn keep(self) {
        self.guard.keep();
    }

    /// Detaches the program, putting back what was there; the final record.
    pub fn remove(self) -> Result<Uninstalled> {
        let c = self.counters()?;
        let put_back = self.guard.replaced().map(String::from);
        let record = rec::InstallFinal {
            kind: records::Kind::Final,
            schema_version: records::SCHEMA_VERSION,
            iface: self.iface.clone(),
            program: self.program.name().into(),
            mode: self.mode,
            counters: c.to_record(),
            userspace: None,
        };
        drop(self.guard);
        Ok(Uninstalled { record, put_back })
    }
}

/// Loads the program, fills its map and attaches it in the kernel
/// (`Mode::Userspace` is [`run_userspace`]'s).
pub fn install(plan: &Plan) -> Result<Installed> {
    let a = &plan.options;
    let program = a.program;
    let mode = match a.mode {
        Mode::Native => XdpMode::Native,
        Mode::Generic => XdpMode::Generic,
        Mode::Offload => XdpMode::Offload,
        Mode::Userspace => {
            bail!("the user-space execution point runs in the foreground: use run_userspace")
        }
    };
    require_root("install")?;
    let ifindex = kernel::ifindex(&a.iface)?;

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

    let cache_entries = plan
        .entries
        .as_ref()
        .map(|e| u32::try_from(e.count).unwrap_or(u32::MAX))
        .unwrap_or(65_536)
        .max(1);
    let opts = LoadOptions {
        config: plan.config,
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
    if let (Some(e), Some(map)) = (&plan.entries, &loaded.cache) {
        cache::fill_batch(map, e, 8192).context("fill the dns-cache map from the profile")?;
    }
    if let (Some(list), Some(maps)) = (&plan.allow, &loaded.allow) {
        list.fill(maps).context("fill the syn-filter allow-list")?;
    }

    // Attach through the shared layer: the ownership record (persistent, or
    // process-scoped) first, then an atomic replacement in the requested mode;
    // what was there goes back when a process-scoped installation is dropped.
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
    Ok(Installed {
        program,
        iface: a.iface.clone(),
        mode: a.mode,
        prog_id: loaded.prog_id,
        cache_entries: plan.entries.as_ref().map(|e| e.count),
        allow_prefixes: plan.allow.as_ref().map(AllowList::len),
        loaded,
        guard,
    })
}

/// The user-space execution point: AF_XDP sockets on every queue, the
/// program's logic in this process until `stop`; `ready` once the sockets are
/// bound, `tick` with the counters every [`crate::userspace::PUBLISH_EVERY`] (also written to the
/// state file `dut status` reads). Returns the final record.
pub fn run_userspace(
    plan: &Plan,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(&rec::InstallReady),
    tick: impl Fn(&Counters) + Send + Sync,
) -> Result<rec::InstallFinal> {
    let a = &plan.options;
    let program = a.program;
    if a.mode != Mode::Userspace {
        bail!(
            "run_userspace is for the user-space execution point, not {}",
            a.mode
        );
    }
    require_root("install")?;
    let ifindex = kernel::ifindex(&a.iface)?;
    let cache = plan.entries.as_ref().map(|e| Arc::new(e.to_shim_cache()));
    let path = state_path("userspace", ifindex)?;
    let start = Instant::now();
    let config = plan.config;
    let opts = crate::userspace::Options {
        iface: a.iface.clone(),
        program,
        config,
        cache,
        allow: plan.allow.clone().map(Arc::new),
        force: a.force,
    };
    let report = crate::userspace::run(
        &opts,
        stop,
        |r| {
            ready(&rec::InstallReady {
                kind: records::Kind::Ready,
                schema_version: records::SCHEMA_VERSION,
                iface: a.iface.clone(),
                program: program.name().into(),
                mode: Mode::Userspace,
                prog_id: None,
                xsk_mode: Some(r.xsk_mode.into()),
                redirect_mode: r.attach_mode.map(String::from),
                queues: Some(r.queues),
            });
        },
        |c, ns, n| {
            // Best effort: without the file `dut status` only misses this point's counters.
            let _ = write_state(
                &path,
                &UserspaceState {
                    pid: std::process::id(),
                    iface: a.iface.clone(),
                    program: program.name().into(),
                    t: now_s(),
                    counters: c.to_record(),
                    run_time_ns: ns,
                    run_cnt: n,
                    config: prog_config(&config),
                },
            );
            tick(&c);
        },
    );
    let _ = std::fs::remove_file(&path);
    let report = report.with_context(|| format!("user-space {} on {}", program.name(), a.iface))?;
    Ok(rec::InstallFinal {
        kind: records::Kind::Final,
        schema_version: records::SCHEMA_VERSION,
        iface: a.iface.clone(),
        program: program.name().into(),
        mode: Mode::Userspace,
        counters: report.counters.to_record(),
        userspace: Some(rec::UserspaceFinal {
            xsk_mode: report.xsk_mode.into(),
            redirect_mode: report.attach_mode.map(String::from),
            queues: report.queues,
            duration_s: start.elapsed().as_secs_f64(),
            rx_packets: report.rx_packets,
            tx_packets: report.tx_packets,
            tx_full: report.tx_full,
            run_cnt: report.run_cnt,
            run_time_ns: report.run_time_ns,
            ns_per_packet: ns_per_packet(report.run_cnt, report.run_time_ns),
        }),
    })
}

// ---- remove ----

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removed {
    /// Each program removed, e.g. `dut_drop (native mode, id 42)`.
    pub programs: Vec<String>,
    /// The XDP_PASS placeholder was put back.
    pub placeholder_restored: bool,
}

/// Detaches dut's programs and orphans from `iface`, puts the placeholder back
/// where one was.
pub fn remove(iface: &str) -> Result<Removed> {
    require_root("remove")?;
    let ifindex = kernel::ifindex(iface)?;
    let mut removed = Removed::default();
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
        removed.programs.push(format!(
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
    if let Some(pm) = placeholder_mode {
        // Native and generic programs exclude each other: only if the slot is free.
        if others.is_empty() {
            let fd = skel::load_placeholder()?;
            xdplayer::placeholder::attach(ifindex, &fd, pm)
                .with_context(|| format!("restore the XDP_PASS placeholder on {iface}"))?;
            removed.placeholder_restored = true;
        }
    }
    let _ = std::fs::remove_file(state_path("status", ifindex)?);
    Ok(removed)
}

// ---- status ----

/// What [`status`] looks at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusOptions {
    /// One interface (every interface when `None`).
    pub iface: Option<String>,
    /// Measure rates and ns/packet over this window (BPF run-time statistics
    /// are enabled meanwhile); without it, rates since the previous `status`.
    pub window: Option<Duration>,
}

struct Snapshot {
    iface: String,
    ifindex: u32,
    mode: Mode,
    info: kernel::ProgInfo,
    program: Option<Program>,
    config: Option<rec::ProgConfig>,
    counters: Option<Counters>,
}

fn snapshot(ifaces: &[(u32, String)]) -> Result<Vec<Snapshot>> {
    let mut out = Vec::new();
    for (ifindex, iface) in ifaces {
        for (mode, id) in kernel::xdp_query(*ifindex)?.iter() {
            let mut info = kernel::prog_info(id)?;
            let mut program = Program::from_bpf_name(&info.name);
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
                        config = Config::from_rodata(&v).map(|c| prog_config(&c));
                    }
                }
            }
            let mut mode = xdp_mode(mode);
            if info.name == xdplayer::REDIRECT_PROG
                && let Some(st) = read_state::<UserspaceState>(&state_path("userspace", *ifindex)?)
                && Path::new(&format!("/proc/{}", st.pid)).exists()
            {
                program = Program::from_name(&st.program);
                counters = Some(Counters::from(st.counters));
                config = Some(st.config);
                mode = Mode::Userspace;
                info.run_time_ns = st.run_time_ns;
                info.run_cnt = st.run_cnt;
            }
            out.push(Snapshot {
                iface: iface.clone(),
                ifindex: *ifindex,
                mode,
                info,
                program,
                config,
                counters,
            });
        }
    }
    Ok(out)
}

fn rates(now: &Counters, before: &Counters, secs: f64) -> rec::Rates {
    let d = now.since(before);
    let r = |n: u64| {
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    };
    let d = d.to_record();
    rec::Rates {
        interval_s: secs,
        packets_pps: r(d.packets),
        mbps: r(d.bytes) * 8.0 / 1e6,
        pass_pps: r(d.pass),
        drop_pps: r(d.drop),
        tx_pps: r(d.tx),
        parse_errors_pps: r(d.parse_errors),
    }
}

/// What is attached where: counters, rates and per-packet cost.
pub fn status(o: &StatusOptions) -> Result<rec::Status> {
    require_root("status")?;
    let ifaces = match &o.iface {
        Some(n) => vec![(kernel::ifindex(n)?, n.clone())],
        None => kernel::interfaces()?,
    };
    let mut out = Vec::new();
    match o.window {
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
                let rate = match (&s.counters, b.and_then(|b| b.counters.as_ref())) {
                    (Some(now), Some(then)) => Some(rates(now, then, secs)),
                    _ => None,
                };
                let (cnt, ns) = match b {
                    Some(b) => (
                        s.info.run_cnt.saturating_sub(b.info.run_cnt),
                        s.info.run_time_ns.saturating_sub(b.info.run_time_ns),
                    ),
                    None => (0, 0),
                };
                out.push(attached(s, rate, cnt, ns));
            }
        }
        None => {
            for s in snapshot(&ifaces)? {
                let path = state_path("status", s.ifindex)?;
                let t = now_s();
                let rate = match (&s.counters, read_state::<StatusState>(&path)) {
                    (Some(now), Some(prev)) if prev.prog_id == s.info.id => {
                        Some(rates(now, &Counters::from(prev.counters), t - prev.t))
                    }
                    _ => None,
                };
                if let Some(c) = &s.counters {
                    // Best effort: without it the next status has no rates.
                    let _ = write_state(
                        &path,
                        &StatusState {
                            prog_id: s.info.id,
                            t,
                            counters: c.to_record(),
                        },
                    );
                }
                out.push(attached(&s, rate, s.info.run_cnt, s.info.run_time_ns));
            }
        }
    }
    Ok(rec::Status {
        schema_version: records::SCHEMA_VERSION,
        interfaces: out,
    })
}

fn attached(
    s: &Snapshot,
    rates: Option<rec::Rates>,
    run_cnt: u64,
    run_time_ns: u64,
) -> rec::Attached {
    rec::Attached {
        iface: s.iface.clone(),
        ifindex: s.ifindex,
        program: s
            .program
            .map(|p| p.name().to_string())
            .unwrap_or_else(|| s.info.name.clone()),
        bpf_name: s.info.name.clone(),
        ours: s.program.is_some(),
        mode: s.mode,
        prog_id: s.info.id,
        config: s.config.clone(),
        counters: s.counters.map(|c| c.to_record()),
        rates,
        run_cnt,
        run_time_ns,
        ns_per_packet: ns_per_packet(run_cnt, run_time_ns),
        owner: owner_of(s.ifindex, s.info.id, &s.info.name),
    }
}

/// Who holds the program, from its ownership record (`xdplayer::owner`).
fn owner_of(ifindex: u32, id: u32, name: &str) -> rec::Owner {
    let claim = owner::classify(ifindex, id, name);
    let kind = match claim {
        Claim::Placeholder => rec::Claim::Placeholder,
        Claim::Orphan(_) => rec::Claim::Orphan,
        Claim::Live(_) => rec::Claim::Live,
        Claim::Persistent(_) => rec::Claim::Persistent,
        Claim::Unrecorded => rec::Claim::Unrecorded,
    };
    let r = claim.record();
    rec::Owner {
        claim: kind,
        scope: r.map(|r| match r.scope {
            Scope::Process => rec::Scope::Process,
            Scope::Persistent => rec::Scope::Persistent,
        }),
        pid: r.map(|r| r.owner.pid),
        comm: r.map(|r| r.owner.comm.clone()),
    }
}

// ---- update-bench ----

/// What [`update_bench`] measures.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateBenchOptions {
    /// Profile whose name set is written (needs DNS names).
    pub profile: String,
    /// Batch size of the batch method (at least 1).
    pub batch: usize,
    /// Duration of each method.
    pub duration: Duration,
}

/// Rewrites a profile's whole name set into a dns-cache map continuously, one
/// method after the other (single, then batch), until `duration` each or
/// `stop`; `each` gets every method's record as it is done.
pub fn update_bench(
    o: &UpdateBenchOptions,
    stop: &AtomicBool,
    mut each: impl FnMut(&rec::UpdateBench),
) -> Result<Vec<rec::UpdateBench>> {
    if o.batch == 0 {
        bail!("--batch 0: use a batch size of at least 1");
    }
    let profile = &o.profile;
    let prof =
        profiles::Profile::load(profile).with_context(|| format!("load profile '{profile}'"))?;
    let dns = prof.dns.as_ref().ok_or_else(|| {
        anyhow!("profile '{profile}' has no DNS name set (e.g. use dns-small or dns-large)")
    })?;
    let entries = Entries::of(&dns.names).with_context(|| format!("profile '{profile}'"))?;
    require_root("update-bench")?;
    let size = u32::try_from(entries.count).map_err(|_| {
        anyhow!(
            "profile '{profile}': {} names do not fit a BPF map",
            entries.count
        )
    })?;
    let map = cache::create_map(size)?;
    // Fill once first: both methods then measure rewriting a full map, as the
    // paper's continuous updates do, not the first inserts.
    cache::fill_batch(&map, &entries, 8192).context("fill the map before measuring")?;
    let mut out = Vec::new();
    for method in [Method::Single, Method::Batch(o.batch)] {
        let r = cache::update_bench(&map, &entries, method, o.duration, stop)?;
        let (method, batch) = match method {
            Method::Single => (rec::Method::Single, None),
            Method::Batch(b) => (rec::Method::Batch, Some(b)),
        };
        let rec = rec::UpdateBench {
            kind: records::Kind::Final,
            schema_version: records::SCHEMA_VERSION,
            profile: prof.name.clone(),
            entries: r.entries as u64,
            method,
            batch,
            updates: r.updates,
            seconds: r.seconds,
            updates_per_s: r.updates_per_s(),
        };
        each(&rec);
        out.push(rec);
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    Ok(out)
}
