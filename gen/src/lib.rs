//! `xgen`: the library behind `gen`, a MoonGen-like packet generator without DPDK.
//!
//! [`run`] validates everything first ([`prepare`]: root, interface, profile,
//! addresses, destination MAC, queues, cores), so bad input fails with one line and
//! nothing attached; then starts one thread per queue with one of two engines:
//!
//! * [`afxdp`]: AF_XDP TX sockets;
//! * [`live`]: `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`: an XDP program
//!   restores the template in each (recycled) frame, rewrites its varying fields
//!   and returns XDP_TX out of the interface.
//!
//! Counted means sent: `tx_packets` is what the kernel reports transmitted
//! (afxdp: completions less frames completed unsent; xdp-live: the driver's
//! accepted frames from the `xdp_devmap_xmit` tracepoint, [`txcount`]), checked at
//! the end against the interface's own counter ([`ifstats`]). Replies are counted
//! by an XDP program at line rate ([`rxcount`]), which replaces the lab's
//! placeholder and restores it at the end.
//!
//! Pacing ([`pace`]) is per queue (rate / Q each) against CLOCK_MONOTONIC with
//! busy-waiting; the reporter prints interval records and exactly one final record,
//! also when `stop` is raised (Ctrl-C). Invariant: every thread stops at the
//! deadline, at its share of `--count`, or when `stop` is set; the AF_XDP port (and
//! with it the XDP guard) is dropped only after every thread has joined.

pub mod afxdp;
pub mod cli;
pub mod ifstats;
pub mod live;
pub mod net;
pub mod pace;
pub mod replay;
pub mod report;
pub mod rxcount;
pub mod txcount;
pub mod units;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use profiles::{Profile, Template, TemplateOptions};
use xdplayer::{self as af_xdp, XskConfig, XskMode, XskPort, XskQueue};

pub use pace::Pattern;
pub use report::{Final, Output};
pub use units::Rate;

pub use records::generator::Engine;

/// Everything the command line says.
#[derive(Debug, Clone)]
pub struct Options {
    /// Interface to send on.
    pub iface: String,
    /// Profile name or path.
    pub profile: String,
    /// Engine.
    pub engine: Engine,
    /// Rate (None: as fast as possible).
    pub rate: Option<Rate>,
    /// Inter-departure pattern.
    pub pattern: Pattern,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Every frame this size on the wire (FCS included) instead of the profile's.
    pub frame_size: Option<usize>,
    /// Number of queues (0..N), one thread each.
    pub queues: Option<u32>,
    /// Cores to pin the threads to (queue i on cores[i]); implies queues = len.
    pub cores: Option<Vec<usize>>,
    /// Probe payload with stream id, counter, TX timestamp.
    pub stamp: bool,
    /// `--stream-base`: queue position i's probes carry stream id `stream_base + i`.
    pub stream_base: u32,
    /// Destination MAC (otherwise from the neighbour table).
    pub dst_mac: Option<[u8; 6]>,
    /// Source address (of the profile's IP version).
    pub src_ip: Option<IpAddr>,
    /// Destination address (IPv6: an IPv6 profile, or `--pcap`'s IPv6 frames).
    pub dst_ip: Option<IpAddr>,
    /// Reporting interval.
    pub interval: Duration,
    /// Output format.
    pub output: Output,
    /// Do not receive (no redirect program).
    pub no_rx: bool,
    /// Replace a foreign XDP program.
    pub force: bool,
    /// AF_XDP bind mode.
    pub xsk_mode: XskMode,
    /// Replay this capture instead of the profile (afxdp only).
    pub pcap: Option<std::path::PathBuf>,
    /// `--pcap`: passes over the file.
    pub loops: u64,
    /// `--pcap`: recorded timing divided by this.
    pub speed: f64,
    /// `--start-at`: start sending when CLOCK_REALTIME reaches this (ns since the
    /// epoch), after everything is set up and the ready record is written.
    pub start_at_ns: Option<u64>,
}

impl Options {
    /// Defaults for `iface` and `profile`: afxdp, unpaced, 1 queue, 1 s interval.
    pub fn new(iface: &str, profile: &str) -> Options {
        Options {
            iface: iface.into(),
            profile: profile.into(),
            engine: Engine::Afxdp,
            rate: None,
            pattern: Pattern::Cbr,
            duration: None,
            count: None,
            frame_size: None,
            queues: None,
            cores: None,
            stamp: false,
            stream_base: 0,
            dst_mac: None,
            src_ip: None,
            dst_ip: None,
            interval: Duration::from_secs(1),
            output: Output::Text,
            no_rx: false,
            force: false,
            xsk_mode: XskMode::Auto,
            pcap: None,
            loops: 1,
            speed: 1.0,
            start_at_ns: None,
        }
    }
}

/// What gen sends: a profile's frames or a capture's.
#[derive(Debug, Clone)]
pub enum Frames {
    /// The profile's template.
    Template(Arc<Template>),
    /// `--pcap`.
    Capture(Arc<replay::Replay>),
}

impl Frames {
    /// Mean frame length (bytes, no FCS).
    pub fn mean_len(&self) -> f64 {
        match self {
            Frames::Template(t) => t.mean_len(),
            Frames::Capture(r) => r.mean_len(),
        }
    }

    /// The bytes of queue position `q` of `nq`'s first frames, each with its size.
    pub fn size_cycle(&self, q: u64, nq: u64) -> profiles::template::SizeCycle {
        match self {
            Frames::Template(t) => t.size_cycle(q, nq),
            Frames::Capture(r) => r.size_cycle(q, nq),
        }
    }
}

/// What [`prepare`] worked out.
#[derive(Debug)]
pub struct Plan {
    /// The profile after overrides (None with `--pcap`).
    pub profile: Option<Profile>,
    /// Its frames, or the capture's.
    pub frames: Frames,
    /// Queue ids, one thread each.
    pub queue_ids: Vec<u32>,
    /// Core per thread (None: not pinned).
    pub cores: Vec<Option<usize>>,
    /// Total requested rate in frames/s.
    pub rate_pps: Option<f64>,
}

/// Checks the options against the system and builds the template. Touches nothing.
pub fn prepare(o: &Options) -> Result<Plan> {
    if !net::is_root() {
        bail!("gen needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW): run it with sudo");
    }
    af_xdp::ifindex(&o.iface).with_context(|| "checking --iface")?;
    if o.count == Some(0) {
        bail!("--count must be greater than 0");
    }
    if let Some(at) = o.start_at_ns {
        check_start_at(at, realtime_ns())?;
    }
    if o.pcap.is_some() {
        return prepare_replay(o);
    }
    if o.loops != 1 || o.speed != 1.0 {
        bail!("--loop and --speed replay a capture: give --pcap FILE (or leave them out)");
    }
    let mut profile =
        Profile::load(&o.profile).with_context(|| format!("loading profile `{}`", o.profile))?;
    if let Some(size) = o.frame_size {
        profile
            .set_frame_size(size)
            .map_err(|e| anyhow::anyhow!("--frame-size: {e}"))?;
    }
    override_address(
        &mut profile,
        "--src-ip",
        o.src_ip,
        |p| &mut p.ip_src,
        |v6| &mut v6.src,
    )?;
    override_address(
        &mut profile,
        "--dst-ip",
        o.dst_ip,
        |p| &mut p.ip_dst,
        |v6| &mut v6.dst,
    )?;
    profile.eth_src = af_xdp::iface::mac(&o.iface)?;
    let dst_ip = match &profile.ipv6 {
        Some(v6) => std::net::IpAddr::V6(v6.dst),
        None => std::net::IpAddr::V4(profile.ip_dst),
    };
    profile.eth_dst = match o.dst_mac {
        Some(m) => m,
        None => net::resolve_dst_mac(&o.iface, dst_ip)?,
    };
    if o.stamp && o.engine == Engine::XdpLive {
        bail!("--stamp needs --engine afxdp (an XDP program cannot read CLOCK_REALTIME)");
    }
    let template = Template::new(&profile, TemplateOptions { stamp: o.stamp })
        .with_context(|| format!("building frames of profile `{}`", profile.name))?;
    if o.engine == Engine::XdpLive {
        live::check(&template)?;
    }
    let (queue_ids, cores) = plan_queues(o)?;
    // Bits per second convert with the mean size on the wire of the profile's mix.
    let rate_pps = rate_pps(o, template.mean_len())?;
    Ok(Plan {
        profile: Some(profile),
        frames: Frames::Template(Arc::new(template)),
        queue_ids,
        cores,
        rate_pps,
    })
}

/// Sets the profile's address that `flag` overrides (`v4` of an IPv4 profile, `v6`
/// of an IPv6 one); an address of the other IP version is one line naming both.
fn override_address(
    profile: &mut Profile,
    flag: &str,
    addr: Option<IpAddr>,
    v4: impl FnOnce(&mut Profile) -> &mut Ipv4Addr,
    v6: impl FnOnce(&mut profiles::profile::Ipv6Spec) -> &mut std::net::Ipv6Addr,
) -> Result<()> {
    let name = profile.name.clone();
    match (addr, profile.ipv6.as_mut()) {
        (None, _) => {}
        (Some(IpAddr::V4(a)), None) => *v4(profile) = a,
        (Some(IpAddr::V6(a)), Some(spec)) => *v6(spec) = a,
        (Some(IpAddr::V4(a)), Some(_)) => bail!(
            "{flag} {a} is IPv4 but profile `{name}` is IPv6: give an IPv6 address or an IPv4 profile"
        ),
        (Some(IpAddr::V6(a)), None) => bail!(
            "{flag} {a} is IPv6 but profile `{name}` is IPv4: give an IPv4 address or an IPv6 profile"
        ),
    }
    Ok(())
}

/// `--pcap`: the capture read, checked against the UMEM frame and the MTU, and
/// rewritten where asked.
fn prepare_replay(o: &Options) -> Result<Plan> {
    let Some(path) = &o.pcap else {
        bail!("internal: no --pcap");
    };
    if !(o.speed.is_finite() && o.speed > 0.0) {
        bail!("--speed must be a positive number (2 = twice as fast as recorded)");
    }
    if o.loops == 0 {
        bail!("--loop must be at least 1");
    }
    let (frames, offsets_ns) = replay::read(path)?;
    let (queue_ids, cores) = plan_queues(o)?;
    let mut rp = replay::Replay {
        path: path.display().to_string(),
        frames,
        offsets_ns,
        loops: o.loops,
        speed: o.speed,
        rate_pps: None,
    };
    rp.check_sizes(UMEM_DATA, "what gen's UMEM frame holds")?;
    if o.engine == Engine::XdpLive {
        live::check_replay(&rp)?;
    }
    let mtu = net::mtu(&o.iface)?;
    rp.check_sizes(mtu + 14, &format!("{}'s MTU {mtu} + 14", o.iface))?;
    rp.rewrite(o.dst_mac, o.dst_ip)?;
    let rate_pps = rate_pps(o, rp.mean_len())?;
    rp.rate_pps = rate_pps;
    Ok(Plan {
        profile: None,
        frames: Frames::Capture(Arc::new(rp)),
        queue_ids,
        cores,
        rate_pps,
    })
}

/// How far in the past a `--start-at` time may lie (the time it takes to reach
/// the check after the caller chose it); anything older is refused.
pub const START_AT_TOLERANCE: Duration = Duration::from_millis(500);

/// Refuses a `--start-at` time more than [`START_AT_TOLERANCE`] before `now_ns`.
pub fn check_start_at(at_ns: u64, now_ns: u64) -> Result<()> {
    let late = now_ns.saturating_sub(at_ns);
    if late > START_AT_TOLERANCE.as_nanos() as u64 {
        bail!(
            "--start-at {} is {:.3} s in the past (now {}): give a time in the future",
            profiles::units::format_wall_time(at_ns),
            late as f64 / 1e9,
            profiles::units::format_wall_time(now_ns)
        );
    }
    Ok(())
}

/// Waits until CLOCK_REALTIME reaches `at_ns` (absolute `clock_nanosleep`, in
/// steps of at most 100 ms so that `stop` ends the wait); returns whether the
/// time was reached (false: stopped).
pub fn sleep_until_realtime(at_ns: u64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Relaxed) {
            return false;
        }
        let now = realtime_ns();
        if now >= at_ns {
            return true;
        }
        let step = (at_ns - now).min(100_000_000);
        let until = now + step;
        let ts = libc::timespec {
            tv_sec: (until / 1_000_000_000) as libc::time_t,
            tv_nsec: (until % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: ts is a valid timespec; the remainder pointer may be null with
        // TIMER_ABSTIME. An EINTR just loops (the stop flag is checked first).
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_REALTIME,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            );
        }
    }
}

/// `--rate` in frames/s (bits per second convert with the mean size on the wire).
fn rate_pps(o: &Options, mean_len: f64) -> Result<Option<f64>> {
    let rate_pps = o.rate.map(|r| r.pps_mean(mean_len));
    if let Some(r) = rate_pps
        && r < 1.0
    {
        bail!(
            "--rate works out at {r:.3} frames/s for {:.1}-byte frames: use at least 1",
            mean_len + 4.0
        );
    }
    Ok(rate_pps)
}

/// Queue ids and the core of each from `--queues` / `--cores`.
fn plan_queues(o: &Options) -> Result<(Vec<u32>, Vec<Option<usize>>)> {
    let available = af_xdp::queue_count(&o.iface);
    let (n, cores): (u32, Vec<Option<usize>>) = match (&o.cores, o.queues) {
        (Some(_), Some(_)) => bail!("give --queues or --cores, not both"),
        (Some(c), None) => {
            let cpus = net::cpu_count();
            if let Some(bad) = c.iter().find(|&&x| x >= cpus) {
                bail!(
                    "--cores: core {bad} does not exist (this machine has {cpus}: 0-{})",
                    cpus - 1
                );
            }
            (c.len() as u32, c.iter().map(|&x| Some(x)).collect())
        }
        (None, q) => {
            let n = q.unwrap_or(1);
            if n == 0 {
                bail!("--queues must be at least 1");
            }
            let cpus = net::cpu_count();
            (n, (0..n as usize).map(|i| Some(i % cpus)).collect())
        }
    };
    if n > available {
        bail!(
            "{} has {available} queue(s), {n} requested: use --queues {available} or fewer (see `ethtool -l {}`)",
            o.iface,
            o.iface
        );
    }
    check_stream_base(o.stream_base, n)?;
    Ok(((0..n).collect(), cores))
}

/// The probe's stream ids are 8 bits: `--stream-base` plus the number of queues
/// must stay within 256 (queue i's stream is base + i).
pub fn check_stream_base(base: u32, queues: u32) -> Result<()> {
    if u64::from(base) + u64::from(queues) > 256 {
        let fit = 256u32.saturating_sub(queues);
        bail!(
            "--stream-base {base} with {queues} queue(s) needs probe stream ids up to {}, but they are 8 bits (0-255): give --stream-base {fit} or less, or fewer queues",
            u64::from(base) + u64::from(queues) - 1
        );
    }
    Ok(())
}

/// State shared by the engine threads.
#[derive(Debug)]
pub struct Ctx {
    /// Raised by Ctrl-C (or the caller).
    pub stop: Arc<AtomicBool>,
    /// Common start.
    pub t0: Instant,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Total frames.
    pub count: Option<u64>,
    /// Number of queues.
    pub nq: usize,
    /// Rate per queue.
    pub rate_per_queue: Option<f64>,
    /// Pattern.
    pub pattern: Pattern,
    /// Probe payload.
    pub stamp: bool,
    /// Stream id of queue position 0's probes (checked: base + queues <= 256).
    pub stream_base: u8,
    /// Frames.
    pub frames: Frames,
    /// Per queue counters.
    pub counters: Vec<report::QueueCounters>,
    /// Per queue: ns since t0 when it stopped sending.
    pub end_ns: Vec<AtomicU64>,
    /// xdp-live: raised by the reporter to end the TX threads.
    pub halt: AtomicBool,
    /// xdp-live: pthread ids of the TX threads (for SIGUSR1).
    pub pthreads: Vec<AtomicU64>,
    /// xdp-live: kernel thread ids of the TX threads (keys of [`txcount`]).
    pub tids: Vec<AtomicU64>,
    /// CLOCK_REALTIME (ns) when the first queue handed its first frame to the
    /// kernel (0: none yet).
    pub first_tx_ns: AtomicU64,
}

impl Ctx {
    /// Notes the wall-clock time of the run's first transmission (the first
    /// call wins; later calls cost one load).
    #[inline]
    pub fn note_first_tx(&self) {
        if self.first_tx_ns.load(Relaxed) == 0 {
            let _ = self
                .first_tx_ns
                .compare_exchange(0, realtime_ns().max(1), Relaxed, Relaxed);
        }
    }

    /// Frames queue position `i` sends (u64::MAX: unlimited).
    pub fn count_for(&self, i: usize) -> u64 {
        match self.count {
            None => u64::MAX,
            Some(n) => {
                let q = self.nq as u64;
                n / q + u64::from((i as u64) < n % q)
            }
        }
    }
}

/// How far ahead of spawning the threads the common start lies.
pub const START_DELAY: Duration = Duration::from_millis(50);

/// Sleeps (then spins) until `t`.
pub fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// CLOCK_REALTIME in ns (the AF_XDP layer's clock).
pub use xdplayer::clock::realtime_ns;

fn new_hist() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).context("allocating a histogram")
}

/// Bytes per UMEM frame.
pub const UMEM_FRAME: u32 = 2048;

/// The longest frame a UMEM frame holds: the frame less the kernel's XDP headroom
/// (xsk-rs lays the frame out that way).
pub const UMEM_DATA: usize = (UMEM_FRAME - libbpf_sys::XDP_PACKET_HEADROOM) as usize;

/// Opens the AF_XDP TX sockets (afxdp engine; replies are counted in XDP).
fn open_port(o: &Options, plan: &Plan) -> Result<XskPort> {
    let cfg = XskConfig {
        iface: o.iface.clone(),
        queues: plan.queue_ids.clone(),
        frame_size: UMEM_FRAME,
        frame_count: 4096,
        rx: false,
        tx: true,
        mode: o.xsk_mode,
        redirect: None,
        force: o.force,
        hw_timestamps: false,
    };
    XskPort::open(&cfg).with_context(|| format!("opening AF_XDP sockets on {}", o.iface))
}

/// Which side held a rate back, from the counters.
fn shortfall(
    requested: Option<f64>,
    achieved: f64,
    engine: Engine,
    q: &[report::QueueCounters],
) -> Option<report::Shortfall> {
    let req = requested?;
    if req <= 0.0 || achieved >= req * 0.995 {
        return None;
    }
    let sum = |f: fn(&report::QueueCounters) -> &AtomicU64| -> u64 {
        q.iter().map(|c| f(c).load(Relaxed)).sum()
    };
    let dropped = sum(|c| &c.tx_dropped);
    let verdicts = sum(|c| &c.tx_verdicts);
    let no_frames = sum(|c| &c.tx_stall_no_frames);
    let ring_full = sum(|c| &c.tx_stall_ring_full);
    let behind = if dropped > 0 && dropped * 1000 >= verdicts {
        report::Behind::KernelDropped
    } else if engine == Engine::Afxdp && no_frames > 0 && no_frames >= ring_full {
        report::Behind::CompletionsLate
    } else if engine == Engine::Afxdp && ring_full > 0 {
        report::Behind::TxRingFull
    } else {
        report::Behind::SendLoop
    };
    Some(report::Shortfall {
        requested_pps: req,
        achieved_pps: (achieved * 1000.0).round() / 1000.0,
        short_percent: ((1.0 - achieved / req) * 100_000.0).round() / 1000.0,
        behind,
    })
}

/// Runs the generator until the duration, the count or `stop`; writes interval
/// records and the final record to `out` and returns the final record.
pub fn run<W: Write>(o: &Options, stop: Arc<AtomicBool>, out: W) -> Result<Final> {
    let plan = prepare(o)?;
    let nq = plan.queue_ids.len();
    let engine_xdp = o.engine == Engine::XdpLive;
    let before = ifstats::read_tx(&o.iface, engine_xdp)
        .with_context(|| format!("reading the transmit counters of {}", o.iface))?;
    let mut port = match o.engine {
        Engine::Afxdp => Some(open_port(o, &plan)?),
        Engine::XdpLive => None,
    };
    let xsk_mode = port.as_ref().map(|p| p.bound_mode().as_str());
    let mut queues: Vec<Option<XskQueue>> = match port.as_mut() {
        Some(p) => p.take_queues().into_iter().map(Some).collect(),
        None => (0..nq).map(|_| None).collect(),
    };
    let rxc = if o.no_rx {
        None
    } else {
        Some(rxcount::RxCounter::attach(&o.iface, o.force)?)
    };
    let (live, txc) = match o.engine {
        Engine::XdpLive => {
            let mut v: Vec<Arc<live::LiveProgram>> = Vec::with_capacity(nq);
            for &qid in &plan.queue_ids {
                let first = v.first().map(|l| &**l);
                v.push(Arc::new(live::LiveProgram::load(
                    &o.iface, &plan, qid, first,
                )?));
            }
            let idx = af_xdp::ifindex(&o.iface)?;
            (Some(v), Some(txcount::TxCounter::attach(idx)?))
        }
        Engine::Afxdp => (None, None),
    };
    let mut hists = Vec::with_capacity(nq);
    for _ in 0..nq {
        hists.push(new_hist()?);
    }
    let mut rep = report::Reporter::new(out, o.output);
    let t0 = match o.start_at_ns {
        None => Instant::now() + START_DELAY,
        Some(at) => {
            // Set up: say so, then sleep on the wall clock until shortly before the
            // start and map the rest onto CLOCK_MONOTONIC, which the threads pace on.
            rep.ready(&report::Ready {
                kind: records::Kind::Ready,
                schema_version: records::SCHEMA_VERSION,
                iface: o.iface.clone(),
                start_at_ns: at,
                now_ns: realtime_ns(),
            });
            let wake = at.saturating_sub(START_DELAY.as_nanos() as u64);
            if sleep_until_realtime(wake, &stop) {
                let (mono, rt) = (Instant::now(), realtime_ns());
                mono + Duration::from_nanos(at.saturating_sub(rt))
            } else {
                // Stopped while waiting: the threads start and end at once.
                Instant::now()
            }
        }
    };
    let ctx = Arc::new(Ctx {
        stop: stop.clone(),
        // A common start shortly ahead, so that every thread is set up (pinned,
        // frames pre-filled) before its first departure is due (or --start-at).
        t0,
        duration: o.duration,
        count: match &plan.frames {
            Frames::Capture(r) => Some(o.count.map_or(r.total(), |c| c.min(r.total()))),
            Frames::Template(_) => o.count,
        },
        nq,
        rate_per_queue: plan.rate_pps.map(|r| r / nq as f64),
        pattern: o.pattern,
        stamp: o.stamp,
        stream_base: u8::try_from(o.stream_base)
            .context("--stream-base: internal: unchecked value")?,
        frames: plan.frames.clone(),
        counters: (0..nq).map(|_| report::QueueCounters::default()).collect(),
        end_ns: (0..nq).map(|_| AtomicU64::new(0)).collect(),
        halt: AtomicBool::new(false),
        pthreads: (0..nq).map(|_| AtomicU64::new(0)).collect(),
        tids: (0..nq).map(|_| AtomicU64::new(0)).collect(),
        first_tx_ns: AtomicU64::new(0),
    });
    if live.is_some() {
        live::install_wake_handler().context("installing the SIGUSR1 handler")?;
    }
    // xdp-live: the bytes of a queue's first k frames, each with its own size.
    let cycles: Vec<profiles::template::SizeCycle> = (0..nq)
        .map(|i| plan.frames.size_cycle(i as u64, nq as u64))
        .collect();
    let replaying = matches!(plan.frames, Frames::Capture(_));
    let mut handles = Vec::with_capacity(nq);
    for (i, (q, h)) in queues.iter_mut().zip(hists).enumerate() {
        let c = ctx.clone();
        let core = plan.cores[i];
        let q = q.take();
        let name = format!("gen-q{}", plan.queue_ids[i]);
        let handle = match (&live, q) {
            (None, Some(q)) if replaying => std::thread::Builder::new()
                .name(name)
                .spawn(move || afxdp::replay_thread(q, i, core, c, h)),
            (None, Some(q)) => std::thread::Builder::new()
                .name(name)
                .spawn(move || afxdp::queue_thread(q, i, core, c, h)),
            (Some(l), _) => {
                let l = l[i].clone();
                let qid = plan.queue_ids[i];
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || live::queue_thread(&l, qid, i, core, c, h))
            }
            (None, None) => bail!("internal: no socket for queue {i}"),
        };
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Relaxed);
                ctx.halt.store(true, Relaxed);
                return Err(e).context("starting a queue thread");
            }
        }
    }

    let mut prev = report::Snapshot::default();
    let mut t_prev = 0.0;
    let mut rates = Vec::new();
    let mut next_tick = o.interval;
    let mut warned = false;
    let live_sync = |ctx: &Ctx| {
        // xdp-live threads sit in the kernel: read their verdicts from the map and
        // their departures from the tracepoint counter, and end them when the run
        // is over.
        if let (Some(progs), Some(txc)) = (&live, &txc) {
            let mut done = true;
            for (i, (&qid, l)) in plan.queue_ids.iter().zip(progs).enumerate() {
                let k = l.state(qid).k;
                let out = txc.of(ctx.tids[i].load(Relaxed) as u32);
                ctx.counters[i].tx_verdicts.store(k, Relaxed);
                ctx.counters[i].tx_packets.store(out.sent, Relaxed);
                ctx.counters[i]
                    .tx_bytes
                    .store(cycles[i].bytes(out.sent), Relaxed);
                ctx.counters[i]
                    .tx_dropped
                    .store(out.drops + out.redirect_errors, Relaxed);
                done &= k >= ctx.count_for(i);
            }
            let over = ctx.duration.is_some_and(|d| ctx.t0.elapsed() >= d);
            if done || over || ctx.stop.load(Relaxed) {
                ctx.halt.store(true, Relaxed);
                for p in &ctx.pthreads {
                    live::wake_thread(p.load(Relaxed));
                }
            }
        }
    };
    let rx_now = || rxc.as_ref().map(rxcount::RxCounter::read);
    loop {
        live_sync(&ctx);
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        let el = ctx.t0.elapsed();
        if el >= next_tick {
            let rx = rx_now();
            let cur = report::Snapshot::take(&ctx.counters, rx.as_ref());
            let t = el.as_secs_f64();
            let r = report::interval(&o.iface, t, t_prev, &prev, &cur);
            rep.interval(&r);
            rates.push(r.tx_pps);
            // Say once, while running, that the rate is out of reach.
            if !warned
                && t_prev > 0.0
                && let Some(req) = plan.rate_pps
                && r.tx_pps < req * 0.99
            {
                if let Some(sf) = shortfall(Some(req), r.tx_pps, o.engine, &ctx.counters) {
                    eprintln!("warning: {} (interval ending at {t:.1} s)", sf.line());
                }
                warned = true;
            }
            prev = cur;
            t_prev = t;
            // A reporter that was not scheduled for more than an interval writes one
            // longer interval, not a burst of near-empty ones whose rates (a frame
            // or two over microseconds) would be noise in the records and the spread.
            while next_tick <= el {
                next_tick += o.interval;
            }
        } else {
            std::thread::sleep(
                (next_tick - el).min(Duration::from_millis(if live.is_some() { 5 } else { 20 })),
            );
        }
    }
    live_sync(&ctx);
    let mut all = new_hist()?;
    let mut panicked = false;
    for h in handles {
        match h.join() {
            Ok(hist) => {
                let _ = all.add(&hist);
            }
            Err(_) => panicked = true,
        }
    }
    // Replies still in flight, and the interface's counters settled.
    let after = ifstats::read_tx_settled(&o.iface, engine_xdp, Duration::from_secs(2));
    if rxc.is_some() {
        std::thread::sleep(Duration::from_millis(250));
    }
    live_sync(&ctx);
    let rx_final = rx_now();
    let rx_counter = rxc.as_ref().map(|_| "xdp");
    if let Some(r) = rxc
        && let Err(e) = r.close()
    {
        eprintln!("warning: {e:#}");
    }
    let had_port = port.is_some();
    drop(port); // closes the sockets
    drop(live);
    drop(txc);
    if panicked {
        bail!("a queue thread panicked");
    }
    let cur = report::Snapshot::take(&ctx.counters, rx_final.as_ref());
    let end = ctx
        .end_ns
        .iter()
        .map(|e| e.load(Relaxed))
        .max()
        .unwrap_or(0);
    let dur = (end as f64 / 1e9).max(1e-9);
    let (mean, sd) = report::mean_stddev(&rates);
    let tx_pps = cur.tx_packets as f64 / dur;
    let tx_check = match after {
        Ok(a) => Some(ifstats::tx_check(&o.iface, before, a, cur.tx_packets)),
        Err(e) => {
            eprintln!("warning: {e:#}");
            None
        }
    };
    if let Some(w) = tx_check.as_ref().and_then(report::TxCheck::warning) {
        eprintln!("{w}");
    }
    let rate_shortfall = if o.count.is_some() && stop.load(Relaxed) {
        None
    } else {
        shortfall(plan.rate_pps, tx_pps, o.engine, &ctx.counters)
    };
    if let Some(sf) = &rate_shortfall
        && o.output != Output::Text
    {
        eprintln!("warning: {}", sf.line());
    }
    let fin = Final {
        kind: records::Kind::Final,
        schema_version: records::SCHEMA_VERSION,
        engine: o.engine,
        xsk_mode: xsk_mode.map(str::to_owned),
        iface: o.iface.clone(),
        profile: match (&plan.profile, &plan.frames) {
            (Some(p), _) => p.name.clone(),
            (None, Frames::Capture(r)) => format!("pcap:{}", r.path),
            (None, Frames::Template(_)) => String::new(),
        },
        profile_seed: plan.profile.as_ref().and_then(|p| p.seed),
        frame_len: plan.frames.mean_len().round() as usize,
        queues: nq,
        duration_s: (dur * 1e6).round() / 1e6,
        tx_packets: cur.tx_packets,
        tx_bytes: cur.tx_bytes,
        tx_pps: (tx_pps * 1000.0).round() / 1000.0,
        tx_mbps: cur.tx_bytes as f64 * 8.0 / dur / 1e6,
        tx_mbps_wire: (cur.tx_bytes + cur.tx_packets * units::WIRE_OVERHEAD) as f64 * 8.0
            / dur
            / 1e6,
        requested_pps: plan.rate_pps,
        achieved_ratio: plan.rate_pps.map(|r| tx_pps / r),
        interval_pps_mean: mean,
        interval_pps_stddev: sd,
        pacing_deviation_ns: report::deviation_of(&all),
        rx_packets: cur.rx_packets,
        rx_pps: cur.rx_packets as f64 / dur,
        rx_rcodes: cur.rcode_map(),
        replies_per_request: if cur.tx_packets > 0 {
            cur.rx_packets as f64 / cur.tx_packets as f64
        } else {
            0.0
        },
        interrupted: stop.load(Relaxed),
        xsk_stats: had_port.then(|| report::xsk_totals(&ctx.counters)),
        tx_verdicts: cur.tx_verdicts,
        tx_dropped: cur.tx_dropped,
        tx_check,
        rx_probes: cur.rx_probes,
        rx_counter: rx_counter.map(str::to_owned),
        rate_shortfall,
        start_at_ns: o.start_at_ns,
        first_tx_ns: Some(ctx.first_tx_ns.load(Relaxed)).filter(|&t| t > 0),
    };
    rep.final_record(&fin);
    Ok(fin)
}
