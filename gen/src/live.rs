//! The `xdp-live` engine: `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` (what
//! xdp-trafficgen does). The kernel runs `gen_live.bpf.c` on copies of the profile's
//! frame 0; the program turns each into frame n (the variation of the template's
//! `patches()`/`dns()` passed in rodata, list values in a map) and returns XDP_TX,
//! which transmits it out of the interface given as `ingress_ifindex`.
//!
//! One program instance per queue (its queue id in rodata: live frames always
//! arrive with rx_queue_index 0) and one thread per queue. A BPF_PROG_RUN call
//! costs milliseconds of set-up, so pacing is not a call per packet: each thread
//! issues one long call (up to 2^31 runs) and the program sends only when the
//! queue's next departure is due (XDP_DROP otherwise), stopping by itself at the
//! queue's limit and deadline. The reporter reads the counters from the program's
//! `qstate` map and ends the call with SIGUSR1 ([`wake_thread`]; the kernel's run
//! loop returns EINTR on a pending signal). `qstate` counts verdicts; what left
//! the interface is counted by [`crate::txcount`], replies by [`crate::rxcount`].
//!
//! Invariant: the program's frame n equals `Template::write(frame, n)` byte for
//! byte; the unit test checks it with plain BPF_PROG_TEST_RUN for every shipped
//! profile.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
#[cfg(test)]
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use profiles::Template;
use profiles::profile::VaryKind;

use crate::replay::Replay;
use crate::{Ctx, Plan, net};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/gen_live.skel.rs"));
}

const MAX_PATCHES: usize = 6;
const MAX_LIST: usize = 256;
const MAX_LABEL: usize = 16;
/// Largest frame in the program's rodata (bytes, no FCS): 1518 on the wire and two
/// VLAN tags.
const MAX_FRAME: usize = 1522;
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// Patch flags (PF_* in gen_live.bpf.c).
const PF_BYTES: u32 = 1;
const PF_IP: u32 = 2;
const PF_UDP: u32 = 4;

/// `a % b` as BPF computes it (`a % 0 = a`).
fn bpf_mod(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { a % b }
}

/// One's complement sum (mod 0xffff) of the frame's bytes in `r`: a byte at an
/// even offset is its word's high byte.
fn sum_of(f: &[u8], r: std::ops::Range<usize>) -> u64 {
    r.map(|i| {
        let b = u64::from(f.get(i).copied().unwrap_or(0));
        if i & 1 == 0 { b << 8 } else { b }
    })
    .sum::<u64>()
        % 0xffff
}

/// Minus a sum mod 0xffff, in [1, 0xffff] (added to the bases: never 0).
fn neg(c: u64) -> u64 {
    0xffff - c % 0xffff
}

/// The checksum field at `at` of `f` as a number.
fn csum_at(f: &[u8], at: usize) -> u64 {
    u64::from(u16::from_be_bytes([
        f.get(at).copied().unwrap_or(0),
        f.get(at + 1).copied().unwrap_or(0),
    ]))
}

/// Where the IP version puts what the program patches per size and per frame.
#[derive(Debug, Clone, Copy)]
struct IpLayout {
    ip_at: usize,
    l4_at: usize,
    ipv6: bool,
}

impl IpLayout {
    /// The IP length field: IPv4's total length, IPv6's payload length.
    fn len_at(&self) -> usize {
        self.ip_at + if self.ipv6 { 4 } else { 2 }
    }
    /// The IP length field's value for a frame of `len` bytes.
    fn len_value(&self, len: usize) -> usize {
        len - if self.ipv6 { self.l4_at } else { self.ip_at }
    }
    /// Where the pseudo-header's addresses start (they end at the transport header).
    fn pseudo_at(&self) -> usize {
        self.ip_at + if self.ipv6 { 8 } else { 12 }
    }
}

/// `f` (a frame of the largest size) cut to `len` bytes, with the IP and UDP
/// lengths and the checksums of that size (IPv6: the transport checksum only): what
/// the program makes of tmpl for one size of a mix, before the patches.
fn sized_frame(f: &[u8], len: usize, lay: IpLayout, tcp: bool) -> Vec<u8> {
    use profiles::wire::checksum;
    let (ip_at, l4_at) = (lay.ip_at, lay.l4_at);
    let mut r = f[..len].to_vec();
    let at = lay.len_at();
    r[at..at + 2].copy_from_slice(&(lay.len_value(len) as u16).to_be_bytes());
    if !lay.ipv6 {
        r[ip_at + 10..ip_at + 12].fill(0);
        let c = checksum::ipv4_header(&r[ip_at..l4_at]);
        r[ip_at + 10..ip_at + 12].copy_from_slice(&c.to_be_bytes());
    }
    let at = l4_at + if tcp { 16 } else { 6 };
    if !tcp {
        r[l4_at + 4..l4_at + 6].copy_from_slice(&((len - l4_at) as u16).to_be_bytes());
    }
    r[at..at + 2].fill(0);
    // Pseudo-header: the addresses, the protocol and the transport length.
    let mut acc = checksum::add(0, &r[lay.pseudo_at()..l4_at]);
    acc += u64::from(if tcp { 6u8 } else { 17 }) + (len - l4_at) as u64;
    let mut c = !checksum::fold(checksum::add(acc, &r[l4_at..]));
    if c == 0 && !tcp {
        c = 0xffff;
    }
    r[at..at + 2].copy_from_slice(&c.to_be_bytes());
    r
}

/// The loaded program and the frame it starts from.
#[derive(Debug)]
pub struct LiveProgram {
    prog: OwnedFd,
    qstate: OwnedFd,
    devhist: OwnedFd,
    /// `--pcap`: the capture's frames (one map, shared by every queue's instance).
    replay: Option<OwnedFd>,
    /// `--pcap` without `--rate`: frames leave at their recorded times.
    timed: bool,
    ifindex: u32,
    frame: Vec<u8>,
}

/// Most frames of a capture xdp-live replays: they sit in a BPF array map of
/// [`REPLAY_MAX`]-byte slots (65536 x 1808 bytes = 113 MiB at most, shared by the
/// queues).
pub const REPLAY_FRAMES: usize = 65536;
/// Longest replayed frame (REPLAY_MAX in gen_live.bpf.c): the afxdp engine's limit.
pub const REPLAY_MAX: usize = 1792;
const _: () = assert!(REPLAY_MAX == crate::UMEM_DATA);

/// Refuses a capture the replay program cannot hold, with one line. `prepare` calls
/// it before anything is attached; `load_replay` again.
pub fn check_replay(rp: &Replay) -> Result<()> {
    if rp.len() > REPLAY_FRAMES {
        bail!(
            "--pcap on xdp-live: {} holds {} frames, more than the {REPLAY_FRAMES} its replay map takes: cut it (editcap -r FILE OUT 1-{REPLAY_FRAMES}) or use --engine afxdp",
            rp.path,
            rp.len()
        );
    }
    if let Some(i) = rp.frames.iter().position(Vec::is_empty) {
        bail!(
            "--pcap on xdp-live: frame {} of {} is empty: drop it (editcap) or use --engine afxdp",
            i + 1,
            rp.path
        );
    }
    rp.check_sizes(REPLAY_MAX, "what xdp-live's replay map holds")
}

fn dup_fd(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().context("duplicating a BPF fd")
}

/// Sets queue `qid`'s state to "nothing sent, no limit" (test runs start from it).
fn init_state(qstate: &OwnedFd, qid: u32) -> Result<()> {
    map_update(
        qstate,
        &qid,
        &QState {
            limit: u64::MAX,
            ..QState::default()
        },
    )
    .context("initialising queue state")
}

/// Mirror of `struct qstate` in gen_live.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QState {
    /// Frames sent.
    pub k: u64,
    /// Send no more than this.
    pub limit: u64,
    /// Schedule origin, CLOCK_MONOTONIC ns.
    pub t0_ns: u64,
    /// Mean gap in ns << 16 (0: unpaced).
    pub gap_fp: u64,
    /// Poisson: next departure (ns << 16 after t0); 0 for CBR.
    pub next_fp: u64,
    /// Poisson RNG state.
    pub rng: u64,
    /// Stop sending at this CLOCK_MONOTONIC ns (0: none).
    pub deadline_ns: u64,
    /// Runs that sent nothing (not due yet).
    pub idle: u64,
    /// Paced: CLOCK_MONOTONIC ns when the last frame was sent.
    pub last_ns: u64,
}

const DEV_BUCKETS: u32 = 1184;
const EXP_TABLE: u32 = 4096;

/// Lowest value of deviation bucket `b` (see dev_bucket in the BPF program).
fn bucket_low(b: u32) -> u64 {
    if b < 64 {
        return u64::from(b);
    }
    let e = 6 + (b - 64) / 32;
    let m = u64::from((b - 64) % 32);
    (32 + m) << (e - 5)
}

fn map_update<K, V>(fd: &OwnedFd, k: &K, v: &V) -> std::io::Result<()> {
    // SAFETY: K and V have the map's key and value sizes (checked by the kernel).
    let rc = unsafe {
        libbpf_sys::bpf_map_update_elem(
            fd.as_raw_fd(),
            (k as *const K).cast(),
            (v as *const V).cast(),
            0,
        )
    };
    if rc != 0 {
        Err(std::io::Error::from_raw_os_error(-rc))
    } else {
        Ok(())
    }
}

fn map_lookup<K, V: Default>(fd: &OwnedFd, k: &K) -> V {
    let mut v = V::default();
    // SAFETY: as in map_update.
    unsafe {
        libbpf_sys::bpf_map_lookup_elem(
            fd.as_raw_fd(),
            (k as *const K).cast(),
            (&mut v as *mut V).cast(),
        )
    };
    v
}

/// CLOCK_MONOTONIC in ns (bpf_ktime_get_ns's clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn charset_of(t: &Template) -> Vec<u8> {
    // The label's last character of name j (j < radix) is charset[j].
    let Some(d) = t.dns() else { return Vec::new() };
    let ll = d.names.label_len();
    if ll == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; ll];
    let mut j = 0u64;
    while j < d.names.count() && out.len() < 64 {
        d.names.write_label(j, &mut buf);
        let c = buf[ll - 1];
        if out.contains(&c) {
            break;
        }
        out.push(c);
        j += 1;
    }
    out
}

/// Most sizes in a mix (MAX_SIZES in gen_live.bpf.c).
const MAX_SIZES: usize = 8;
/// Longest size schedule, the sum of a mix's weights (MAX_SCHED).
const MAX_SCHED: usize = 4096;

/// Refuses what the xdp-live program cannot send, with one line naming the engine to
/// use instead. `prepare` calls it before anything is attached; `load_for` again.
pub fn check(t: &Template) -> Result<()> {
    const USE: &str = "use --engine afxdp";
    if t.len() > MAX_FRAME {
        bail!(
            "xdp-live handles frames up to {} bytes; this profile's are {}: {USE}",
            MAX_FRAME + 4,
            t.len() + 4
        );
    }
    if t.patches().len() > MAX_PATCHES {
        bail!(
            "xdp-live handles up to {MAX_PATCHES} varying fields; this profile has {}: {USE}",
            t.patches().len()
        );
    }
    for p in t.patches() {
        match &p.kind {
            VaryKind::Increment { min, max, .. } if max - min >= u64::from(u32::MAX) => bail!(
                "xdp-live: field {} spans more than 2^32 values: {USE}",
                p.field.key()
            ),
            VaryKind::List(vals) if vals.len() > MAX_LIST => bail!(
                "xdp-live: field {} lists more than {MAX_LIST} values: {USE}",
                p.field.key()
            ),
            _ => {}
        }
    }
    if let Some(d) = t.dns()
        && d.names.label_len() > MAX_LABEL
    {
        bail!("xdp-live handles DNS labels up to {MAX_LABEL} characters: {USE}");
    }
    if t.sizes_vary() && (t.sizes().len() > MAX_SIZES || t.schedule().len() > MAX_SCHED) {
        bail!(
            "xdp-live sends mixes of up to {MAX_SIZES} sizes whose weights add up to at most {MAX_SCHED}; this profile has {} sizes, weights adding up to {}: {USE}",
            t.sizes().len(),
            t.schedule().len()
        );
    }
    Ok(())
}

impl LiveProgram {
    /// Loads queue `qid`'s program instance for `plan`'s template or capture, to
    /// send on `iface`. A capture's frames are loaded into a map once: `first` (the
    /// first queue's instance) shares its map with the others.
    pub fn load(
        iface: &str,
        plan: &Plan,
        qid: u32,
        first: Option<&LiveProgram>,
    ) -> Result<LiveProgram> {
        let ifindex = xdplayer::ifindex(iface)?;
        let nq = plan.queue_ids.len();
        match &plan.frames {
            crate::Frames::Template(t) => Self::load_for(t, nq, qid, ifindex),
            crate::Frames::Capture(rp) => {
                let shared = first.and_then(|l| l.replay.as_ref());
                Self::load_replay(rp, nq, qid, ifindex, shared)
            }
        }
    }

    /// Loads the replay program for `rp`, queue `qid` of `nq` (ifindex 0: test runs
    /// only), with the frames in `shared` (another queue's map) or in a new map.
    pub fn load_replay(
        rp: &Replay,
        nq: usize,
        qid: u32,
        ifindex: u32,
        shared: Option<&OwnedFd>,
    ) -> Result<LiveProgram> {
        check_replay(rp)?;
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::GenLiveSkelBuilder::default()
            .open(&mut obj)
            .context("opening the xdp-live program")?;
        open.progs.gen_live.set_autoload(false);
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .context("xdp-live program has no rodata")?;
            ro.nqueues = nq as u32;
            ro.queue_id = qid;
            ro.replay_count = rp.len() as u64;
            ro.replay_timed = u32::from(rp.rate_pps.is_none());
            ro.replay_pass_ns = rp.pass_ns().round() as u64;
        }
        match shared {
            Some(fd) => open
                .maps
                .replay
                .reuse_fd(fd.as_fd())
                .context("sharing the replay map")?,
            None => open
                .maps
                .replay
                .set_max_entries(rp.len() as u32)
                .context("sizing the replay map")?,
        }
        let skel = open.load().context("loading the xdp-live replay program")?;
        let prog = dup_fd(skel.progs.gen_replay.as_fd())?;
        let qstate = dup_fd(skel.maps.qstate.as_fd())?;
        let devhist = dup_fd(skel.maps.devhist.as_fd())?;
        let replay = dup_fd(skel.maps.replay.as_fd())?;
        if shared.is_none() {
            let mut v = skel::types::replay_frame {
                due_ns: 0,
                len: 0,
                pad: 0,
                data: [0; REPLAY_MAX],
            };
            for (i, f) in rp.frames.iter().enumerate() {
                v.due_ns = rp.offset_ns(i).round() as u64;
                v.len = f.len() as u32;
                v.data[..f.len()].copy_from_slice(f);
                v.data[f.len()..].fill(0);
                map_update(&replay, &(i as u32), &v)
                    .with_context(|| format!("filling the replay map (frame {})", i + 1))?;
            }
        }
        init_state(&qstate, qid)?;
        // The longest frame plus the pad byte: the program sets each frame's length
        // from the context's, which then always differs from the run's original.
        let longest = rp.frames.iter().map(Vec::len).max().unwrap_or(0);
        let mut frame = rp
            .frames
            .iter()
            .find(|f| f.len() == longest)
            .cloned()
            .unwrap_or_default();
        frame.push(0);
        Ok(LiveProgram {
            prog,
            qstate,
            devhist,
            replay: Some(replay),
            timed: rp.rate_pps.is_none(),
            ifindex,
            frame,
        })
    }

    /// Loads the program for `t`, queue `qid` of `nq` (ifindex 0: test runs only).
    pub fn load_for(t: &Template, nq: usize, qid: u32, ifindex: u32) -> Result<LiveProgram> {
        check(t)?;
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::GenLiveSkelBuilder::default()
            .open(&mut obj)
            .context("opening the xdp-live program")?;
        open.progs.gen_replay.set_autoload(false);
        let mut lists: Vec<(u32, u64)> = Vec::new();
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .context("xdp-live program has no rodata")?;
            // A frame of the largest size (frame 0 for a single size).
            let f = t.fill_frame();
            if f.len() > ro.tmpl.len() * 8 {
                bail!(
                    "xdp-live handles frames up to {} bytes; this profile's are {}",
                    ro.tmpl.len() * 8 + 4,
                    f.len() + 4
                );
            }
            for (i, w) in ro.tmpl.iter_mut().enumerate() {
                let mut b = [0u8; 8];
                for (j, x) in b.iter_mut().enumerate() {
                    *x = f.get(i * 8 + j).copied().unwrap_or(0);
                }
                *w = u64::from_le_bytes(b);
            }
            ro.tmpl_len = f.len() as u32;
            let lay = t.layout();
            let (ip_at, l4_at) = (lay.ip_at, lay.l4_at);
            let ipl = IpLayout {
                ip_at,
                l4_at,
                ipv6: lay.ipv6,
            };
            // The transport checksum covers the IP packet after its header: IPv4's
            // total length less its header, IPv6's payload length.
            let ip_len = f
                .get(ipl.len_at()..ipl.len_at() + 2)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            ro.ip_at = ip_at as u32;
            ro.l4_at = l4_at as u32;
            ro.l4_len = if lay.ipv6 {
                ip_len as u32
            } else {
                ip_len.saturating_sub(l4_at - ip_at) as u32
            };
            ro.ip_csum_on = u32::from(!lay.ipv6);
            ro.ip_len_at = ipl.len_at() as u32;
            ro.pseudo_at = ipl.pseudo_at() as u32;
            ro.l4_csum_off = if t.is_tcp() { 16 } else { 6 };
            ro.l4_zero_ffff = u32::from(!t.is_tcp());
            ro.nqueues = nq as u32;
            ro.queue_id = qid;
            ro.npatches = t.patches().len() as u32;
            ro.varies = u32::from(t.varies());
            for (i, p) in t.patches().iter().enumerate() {
                let s = &mut ro.patches[i];
                s.offset = p.offset as u32;
                s.width = p.width as u32;
                match &p.kind {
                    VaryKind::Increment { min, max, step } => {
                        let span = max - min + 1;
                        s.kind = 0;
                        // A VLAN tag's priority bits sit above its ID (<= 4094):
                        // adding them is ORing them.
                        s.min = *min + p.or_bits;
                        s.span = span;
                        s.arg = *step;
                    }
                    VaryKind::Random { min, max, seed } => {
                        s.kind = 1;
                        s.min = *min + p.or_bits;
                        s.span = max - min + 1;
                        s.arg = *seed;
                    }
                    VaryKind::List(vals) => {
                        s.kind = 2;
                        s.nvals = vals.len() as u32;
                        for (j, v) in vals.iter().enumerate() {
                            lists.push(((i * MAX_LIST + j) as u32, *v | p.or_bits));
                        }
                    }
                }
            }
            // Per-run constants of the per-frame path: which patches go byte by
            // byte, which checksums cover each, and the template's checksums minus
            // the fields' template sums (gen_live.bpf.c adds the new values' sums).
            let ul = l4_at + ro.l4_len as usize;
            let ranges: Vec<(usize, usize)> = t
                .patches()
                .iter()
                .map(|p| (p.offset, p.offset + p.width))
                .collect();
            let disjoint = |a: (usize, usize), b: (usize, usize)| a.1 <= b.0 || b.1 <= a.0;
            let overlap = ranges
                .iter()
                .enumerate()
                .any(|(i, &a)| ranges[..i].iter().any(|&b| !disjoint(a, b)));
            // IPv6 has no header checksum: its base is never used.
            let mut ip_base = if lay.ipv6 {
                0
            } else {
                0xffff - csum_at(f, ip_at + 10)
            };
            let mut udp_base = 0xffff - csum_at(f, l4_at + ro.l4_csum_off as usize);
            for (i, &(lo, hi)) in ranges.iter().enumerate() {
                let s = &mut ro.patches[i];
                let straddles = [ip_at, ipl.pseudo_at(), l4_at, ul]
                    .iter()
                    .any(|&e| lo < e && hi > e);
                s.shift = if hi & 1 == 1 { 8 } else { 0 };
                s.flags = if overlap || straddles || (hi - lo > 7 && s.shift == 8) {
                    PF_BYTES
                } else if lo >= ip_at && hi <= ul {
                    let mut fl = 0;
                    if hi <= l4_at && !lay.ipv6 {
                        fl |= PF_IP;
                        ip_base += neg(sum_of(f, lo..hi));
                    }
                    if lo >= ipl.pseudo_at() {
                        fl |= PF_UDP;
                        udp_base += neg(sum_of(f, lo..hi));
                    }
                    fl
                } else {
                    0
                };
                let (step, span) = match s.kind {
                    0 => (s.arg, s.span),
                    2 => (1, u64::from(s.nvals)),
                    _ => (0, 1),
                };
                s.rstep = bpf_mod(
                    bpf_mod(nq as u64, span).wrapping_mul(bpf_mod(step, span)),
                    span,
                );
            }
            if let Some(d) = t.dns() {
                let ll = d.names.label_len();
                let fields = [
                    (d.id_at, d.id_at + 2),
                    (d.port_at, d.port_at + 2),
                    (d.label_at, d.label_at + ll),
                ];
                let fields = &fields[..if ll > 0 { 3 } else { 2 }];
                let fast = fields.iter().enumerate().all(|(i, &a)| {
                    a.0 >= l4_at
                        && a.1 <= ul
                        && a.1 <= f.len()
                        && fields[..i].iter().all(|&b| disjoint(a, b))
                        && ranges.iter().all(|&b| disjoint(a, b))
                });
                if fast {
                    ro.dns_fast = 1;
                    for &(lo, hi) in fields {
                        udp_base += neg(sum_of(f, lo..hi));
                    }
                }
                ro.dns_id_shift = if d.id_at & 1 == 1 { 8 } else { 0 };
                ro.dns_port_shift = if d.port_at & 1 == 1 { 8 } else { 0 };
                ro.dns_rstep = bpf_mod(nq as u64, d.names.count());
            }
            ro.ip_base = ip_base;
            ro.udp_base = udp_base;
            if t.sizes_vary() {
                // Each size: tmpl's bytes cut to that size with its lengths, and the
                // checksum bases for them (the same flags; the patches' sums of
                // these bytes taken off, as for ip_base/udp_base above).
                let sched = t.schedule();
                ro.nsizes = t.sizes().len() as u32;
                ro.sched_len = sched.len() as u64;
                ro.sched_rstep = nq as u64 % sched.len() as u64;
                for (o, &v) in ro.sched.iter_mut().zip(sched) {
                    *o = v as u8;
                }
                for (v, &len) in t.sizes().iter().enumerate() {
                    let r = sized_frame(f, len, ipl, t.is_tcp());
                    let mut ipb = if lay.ipv6 {
                        0
                    } else {
                        0xffff - csum_at(&r, ip_at + 10)
                    };
                    let mut ub = 0xffff - csum_at(&r, l4_at + ro.l4_csum_off as usize);
                    for (i, p) in t.patches().iter().enumerate() {
                        let range = p.offset..p.offset + p.width;
                        if ro.patches[i].flags & PF_IP != 0 {
                            ipb += neg(sum_of(&r, range.clone()));
                        }
                        if ro.patches[i].flags & PF_UDP != 0 {
                            ub += neg(sum_of(&r, range));
                        }
                    }
                    ro.size_len[v] = len as u32;
                    ro.size_ip_total[v] = ipl.len_value(len) as u32;
                    ro.size_udp_len[v] = if t.is_tcp() { 0 } else { (len - l4_at) as u32 };
                    ro.size_ip_base[v] = ipb;
                    ro.size_udp_base[v] = ub;
                }
            }
            if let Some(d) = t.dns() {
                ro.dns_on = 1;
                ro.dns_id_at = d.id_at as u32;
                ro.dns_port_at = d.port_at as u32;
                ro.dns_first_port = u32::from(d.first_port);
                ro.dns_ports = d.ports;
                ro.dns_label_at = d.label_at as u32;
                ro.dns_label_len = d.names.label_len() as u32;
                ro.dns_random = u32::from(matches!(d.order, profiles::profile::Order::Random));
                ro.dns_count = d.names.count();
                ro.dns_seed = d.seed;
                let cs = charset_of(t);
                ro.radix = cs.len().max(1) as u32;
                for (o, c) in ro.charset.iter_mut().zip(&cs) {
                    *o = *c;
                }
            }
        }
        let skel = open.load().context("loading the xdp-live program")?;
        let prog = dup_fd(skel.progs.gen_live.as_fd())?;
        let qstate = dup_fd(skel.maps.qstate.as_fd())?;
        let devhist = dup_fd(skel.maps.devhist.as_fd())?;
        let lmap = dup_fd(skel.maps.lists.as_fd())?;
        let exptab = dup_fd(skel.maps.exptab.as_fd())?;
        // Exponential quantiles, scaled so the table's mean is exactly 1 << 16.
        let raw: Vec<f64> = (0..EXP_TABLE)
            .map(|i| -((f64::from(i) + 0.5) / f64::from(EXP_TABLE)).ln())
            .collect();
        let mean = raw.iter().sum::<f64>() / raw.len() as f64;
        for (i, x) in raw.iter().enumerate() {
            map_update(&exptab, &(i as u32), &((x / mean * 65536.0).round() as u64))
                .context("filling the exponential table")?;
        }
        init_state(&qstate, qid)?;
        for (k, v) in lists {
            // SAFETY: 4-byte key, 8-byte value as the map declares.
            let rc = unsafe {
                libbpf_sys::bpf_map_update_elem(
                    lmap.as_raw_fd(),
                    (&k as *const u32).cast(),
                    (&v as *const u64).cast(),
                    0,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(-rc)).context("filling the list map");
            }
        }
        // One pad byte, trimmed by the program on every frame it sends (see
        // gen_live.bpf.c: it makes the kernel rebuild the recycled frame's length).
        let mut frame = t.fill_frame().to_vec();
        frame.push(0);
        Ok(LiveProgram {
            prog,
            qstate,
            devhist,
            replay: None,
            timed: false,
            ifindex,
            frame,
        })
    }

    /// Sends `repeat` frames from queue `qid` (live mode). Returns the kernel error.
    #[inline]
    pub fn send(&self, qid: u32, repeat: u32) -> std::io::Result<()> {
        let mut md = libbpf_sys::xdp_md {
            data_end: self.frame.len() as u32,
            ingress_ifindex: self.ifindex,
            rx_queue_index: qid,
            ..Default::default()
        };
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: self.frame.as_ptr().cast(),
            data_size_in: self.frame.len() as u32,
            ctx_in: (&mut md as *mut libbpf_sys::xdp_md).cast(),
            ctx_size_in: std::mem::size_of::<libbpf_sys::xdp_md>() as u32,
            repeat: repeat.min(i32::MAX as u32) as i32,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: 64,
            ..Default::default()
        };
        // SAFETY: opts points at live buffers for the duration of the call.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if rc != 0 {
            Err(std::io::Error::from_raw_os_error(-rc))
        } else {
            Ok(())
        }
    }

    /// Plain (not live) test run on frame 0 as queue 0: the frame the program makes.
    pub fn test_frame(&self) -> std::io::Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; self.frame.len() + 256];
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: self.frame.as_ptr().cast(),
            data_size_in: self.frame.len() as u32,
            data_out: out.as_mut_ptr().cast(),
            data_size_out: out.len() as u32,
            repeat: 1,
            ..Default::default()
        };
        // SAFETY: opts points at live buffers.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        out.truncate(opts.data_size_out as usize);
        Ok((opts.retval, out))
    }

    /// Queue `qid`'s state.
    pub fn state(&self, qid: u32) -> QState {
        map_lookup(&self.qstate, &qid)
    }

    /// Sets queue `qid`'s state.
    pub fn set_state(&self, qid: u32, st: &QState) -> std::io::Result<()> {
        map_update(&self.qstate, &qid, st)
    }

    /// Adds queue `qid`'s pacing deviations to `h`.
    pub fn deviations(&self, qid: u32, h: &mut Histogram<u64>) {
        for b in 0..DEV_BUCKETS {
            let key = (qid & 255) * DEV_BUCKETS + b;
            let n: u64 = map_lookup(&self.devhist, &key);
            if n > 0 {
                let _ = h.record_n(bucket_low(b), n);
            }
        }
    }
}

extern "C" fn wake(_: libc::c_int) {}

/// Installs the no-op SIGUSR1 handler (without SA_RESTART) that interrupts a live
/// BPF_PROG_RUN call: the kernel's run loop checks for pending signals and returns
/// EINTR. Idempotent.
pub fn install_wake_handler() -> std::io::Result<()> {
    // SAFETY: sigaction with a valid handler; SIGUSR1 is not otherwise used.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = wake as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Interrupts the live call of a thread (by its pthread id).
pub fn wake_thread(pthread: u64) {
    if pthread != 0 {
        // SAFETY: the id was stored by a live thread that has not been joined yet.
        unsafe { libc::pthread_kill(pthread as libc::pthread_t, libc::SIGUSR1) };
    }
}

/// Runs queue `qid` (position `i`): sets its schedule in `qstate`, then issues
/// BPF_PROG_RUN calls of up to 2^31 runs until `ctx.halt` is raised (the caller
/// raises it at the deadline, when every queue reached its limit, or on Ctrl-C, and
/// interrupts the call with [`wake_thread`]). The caller reads the counters from
/// `qstate` meanwhile ([`LiveProgram::state`]). Returns the pacing histogram.
pub fn queue_thread(
    l: &LiveProgram,
    qid: u32,
    i: usize,
    core: Option<usize>,
    ctx: Arc<Ctx>,
    mut hist: Histogram<u64>,
) -> Histogram<u64> {
    ctx.pthreads[i].store(
        // SAFETY: plain pthread_self.
        unsafe { libc::pthread_self() } as u64,
        Relaxed,
    );
    ctx.tids[i].store(u64::from(crate::txcount::gettid()), Relaxed);
    if let Some(c) = core
        && let Err(e) = net::pin_to(c)
    {
        eprintln!("warning: queue {qid}: {e:#}");
    }
    let total = ctx.count_for(i);
    let gap_fp = ctx
        .rate_per_queue
        .map_or(0, |r| ((1e9 / r) * 65536.0).round().max(1.0) as u64);
    // Instant and bpf_ktime_get_ns share CLOCK_MONOTONIC. A paced queue's state is
    // set and its call issued before t0: the program holds every frame back
    // (XDP_DROP) until its departure, so the call's set-up (milliseconds: the page
    // pool) is not added to the first departures (two queues replaying a capture
    // swapped frames 0 and 1 otherwise). An unpaced one starts at t0.
    if gap_fp == 0 && !l.timed {
        crate::wait_until(ctx.t0);
    }
    let (now, now_mono) = (std::time::Instant::now(), monotonic_ns());
    let t0_mono = if ctx.t0 >= now {
        now_mono + (ctx.t0 - now).as_nanos() as u64
    } else {
        now_mono.saturating_sub((now - ctx.t0).as_nanos() as u64)
    };
    let mut st = QState {
        limit: total,
        t0_ns: t0_mono,
        gap_fp,
        rng: (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        deadline_ns: ctx.duration.map_or(0, |d| t0_mono + d.as_nanos() as u64),
        ..QState::default()
    };
    if ctx.pattern == crate::Pattern::Poisson && gap_fp > 0 {
        let p = crate::pace::Pacer::new(
            crate::Pattern::Poisson,
            1e9 / (gap_fp as f64 / 65536.0),
            i as u64 + 7,
        );
        st.next_fp = ((p.next_ns() * 65536.0) as u64).max(1);
    }
    if let Err(e) = l.set_state(qid, &st) {
        eprintln!("error: queue {qid}: setting the xdp-live queue state: {e}");
        ctx.end_ns[i].store(0, Relaxed);
        ctx.pthreads[i].store(0, Relaxed);
        return hist;
    }
    let mut errors = 0u64;
    // The program sends from its first run on: the closest wall-clock reading.
    ctx.note_first_tx();
    while !ctx.halt.load(Relaxed) {
        match l.send(qid, i32::MAX as u32) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => {
                errors += 1;
                if errors > 100 {
                    eprintln!(
                        "error: queue {qid}: BPF_PROG_RUN (live frames) keeps failing: {e}; stopping this queue"
                    );
                    break;
                }
            }
        }
    }
    let now_ns = ctx.t0.elapsed().as_nanos() as f64;
    let fin = l.state(qid);
    let k = fin.k;
    let gap_ns = gap_fp as f64 / 65536.0;
    let end_ns = match ctx.duration {
        Some(d) if now_ns >= d.as_nanos() as f64 => d.as_nanos() as f64,
        // Every frame sent: the run ends one gap after the last departure, which is
        // the schedule's end when gen kept up and later when it fell behind (a
        // count run catches up instead of stopping at a deadline, and its rate must
        // say so).
        _ if k >= total && gap_fp > 0 && st.next_fp == 0 => {
            let last = fin.last_ns.saturating_sub(t0_mono) as f64 + gap_ns;
            (k as f64 * gap_ns).max(last).min(now_ns)
        }
        _ => now_ns,
    };
    ctx.end_ns[i].store(end_ns as u64, Relaxed);
    l.deviations(qid, &mut hist);
    // No more signals to this thread once it is about to exit.
    ctx.pthreads[i].store(0, Relaxed);
    hist
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiles::{Profile, TemplateOptions};

    /// The frame `l` sends when queue `qid` has sent `k` (unpaced), checked to be
    /// sent (XDP_TX).
    fn frame_at(l: &LiveProgram, qid: u32, k: u64) -> Vec<u8> {
        let st = QState {
            k,
            limit: u64::MAX,
            ..QState::default()
        };
        l.set_state(qid, &st).expect("state");
        let (ret, f) = l.test_frame().expect("test run");
        assert_eq!(ret, 3, "XDP_TX");
        f
    }

    /// Loads queue `qid` of `nq` for `t` and checks, for each count k of `ks` (the
    /// queue's counter jumped there, unpaced), that the program's frame is the
    /// template's frame n = k * nq + qid, size included.
    fn assert_program_frames(
        t: &Template,
        nq: usize,
        qid: u32,
        ks: impl Iterator<Item = u64>,
        what: &str,
    ) {
        let l = LiveProgram::load_for(t, nq, qid, 0).expect("load");
        for k in ks {
            let f = frame_at(&l, qid, k);
            let n = k * nq as u64 + u64::from(qid);
            assert_eq!(f.len(), t.len_of(n), "{what}: frame {n}'s size");
            assert_eq!(f, t.frame_for(n, None), "{what}: frame {n}");
        }
    }

    #[test]
    fn program_frames_equal_template_frames() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        for name in [
            "min-multi-flow",
            "min-single-flow",
            "dns-small",
            "dns-large",
            "dns-ping",
            "min-multi-flow-vlan",
            "min-multi-flow-qinq",
            "syn-flood",
            "min-multi-flow-v6",
        ] {
            let p = Profile::load(name).expect("profile");
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            // Queue 1 of 3: frames n = 1, 4, 7, ..., spread over the 16-bit ID wrap
            // so DNS source ports change too.
            assert_program_frames(&t, 3, 1, (0..70_000u64).step_by(997).chain(0..5), name);
        }
    }

    #[test]
    fn program_frames_equal_template_frames_every_field_and_mode() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // Every field that can vary, in every mode (the flags and checksum bases
        // load_for computes: outside both checksums, under both, under UDP only).
        let toml = r#"
name = "all-fields"
frame_size = 64
[ethernet]
src = "02:00:00:00:00:01"
dst = "02:00:00:00:00:02"
[ipv4]
src = "198.18.0.1"
dst = "198.18.0.2"
[udp]
src_port = 1024
dst_port = 9
[[vary]]
field = "ethernet.src"
mode = "list"
values = ["02:00:00:00:00:0a", "02:ff:00:00:00:0b", "0e:00:00:00:00:0c"]
[[vary]]
field = "ethernet.dst"
mode = "random"
min = "02:00:00:00:00:00"
max = "02:00:00:ff:ff:ff"
[[vary]]
field = "ipv4.src"
mode = "increment"
min = "10.0.0.1"
count = 100000
step = 3
[[vary]]
field = "ipv4.dst"
mode = "random"
min = "198.18.0.0"
max = "198.19.255.255"
seed = 7
[[vary]]
field = "udp.src_port"
mode = "list"
values = [1, 65535, 4000, 0]
[[vary]]
field = "udp.dst_port"
mode = "increment"
min = 9
count = 1000
step = 7
"#;
        let p = Profile::from_toml(toml, "test").expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        for (nq, qid) in [(1usize, 0u32), (3, 2)] {
            let ks = (0..200_000u64).step_by(4999).chain(0..40);
            assert_program_frames(&t, nq, qid, ks, "all-fields");
        }
    }

    #[test]
    fn program_frames_equal_template_frames_up_to_the_largest_size() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // 1518 bytes untagged, 1522 with a tag, 1526 with QinQ (outer ID varying
        // too), and a large SYN: the restore covers the whole frame, the checksums
        // cover every size.
        let outer = "parent = \"min-multi-flow-qinq\"\n[[vary]]\nfield = \"vlan.id\"\nmode = \"random\"\nmin = 1\nmax = 4094\n[[vary]]\nfield = \"vlan.inner_id\"\nmode = \"list\"\nvalues = [5, 4094, 7]\n";
        let cases = [
            (Profile::load("min-multi-flow").expect("p"), 1518usize),
            (Profile::load("min-multi-flow-vlan").expect("p"), 1522),
            (Profile::from_toml(outer, "outer.toml").expect("p"), 1526),
            (Profile::load("syn-flood").expect("p"), 1001),
            (Profile::load("min-single-flow").expect("p"), 999),
        ];
        for (mut p, size) in cases {
            p.set_frame_size(size).expect("size");
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            assert_eq!(t.len() + 4, size);
            let what = format!("{} {size}", p.name);
            assert_program_frames(&t, 2, 1, (0..100_000u64).step_by(7919).chain(0..4), &what);
        }
        // A mix longer than the program's schedule is refused with the engine to use.
        let p = Profile::from_toml(
            "[imix]\nsizes = [64, 128]\nweights = [4000, 1000]\n",
            "long.toml",
        )
        .expect("p");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let e = check(&t).expect_err("long mix");
        assert!(e.to_string().ends_with("use --engine afxdp"), "{e}");
    }

    /// IPv6 profiles: tagged, QinQ, TCP, an IMIX, every size up to the largest, both
    /// addresses varying in every mode (no IPv4 header checksum; the transport
    /// checksum over the IPv6 pseudo-header).
    #[test]
    fn ipv6_frames_equal_template_frames() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let both = "[[vary]]\nfield = \"ipv6.dst\"\nmode = \"random\"\nmin = \"::1\"\nmax = \"::ffff:ffff:ffff\"\nseed = 3\n";
        let cases = [
            "parent = \"min-multi-flow-v6\"\nframe_size = 71\n[[vlan]]\nid = 7\n".to_string(),
            format!(
                "parent = \"min-multi-flow-v6\"\nframe_size = 74\n[[vlan]]\nid = 7\n[[vlan]]\nid = 9\n{both}"
            ),
            format!(
                "parent = \"min-multi-flow-v6\"\n[imix]\nsizes = [66, 67, 594, 1518]\nweights = [5, 1, 3, 1]\n{both}"
            ),
            "parent = \"min-multi-flow-v6\"\n[[vlan]]\nid = 3\n[imix]\nsizes = [70, 1001, 1522]\nweights = [2, 1, 1]\n[[vary]]\nfield = \"ipv6.dst\"\nmode = \"list\"\nvalues = [\"::5\", \"::ffff:0:0:1\", \"::9\"]\n".to_string(),
            "name = \"syn6\"\nframe_size = 86\n[ethernet]\nsrc = \"02:00:00:00:00:01\"\ndst = \"02:00:00:00:00:02\"\n[ipv6]\nsrc = \"2001:db8::1\"\ndst = \"2001:db8::2\"\n[tcp]\nsrc_port = 1024\ndst_port = 80\nflags = \"syn\"\n[[vary]]\nfield = \"ipv6.src\"\nmode = \"increment\"\nmin = \"::1\"\ncount = 100000\nstep = 7\n[[vary]]\nfield = \"tcp.seq\"\nmode = \"random\"\nmin = 0\nmax = 4294967295\n".to_string(),
        ];
        for (i, toml) in cases.iter().enumerate() {
            let p = Profile::from_toml(toml, &format!("v6-{i}.toml")).expect("profile");
            assert!(p.ipv6.is_some());
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            for (nq, qid) in [(1usize, 0u32), (3, 2)] {
                let ks = (0..100_000u64).step_by(6007).chain(0..30);
                assert_program_frames(&t, nq, qid, ks, &format!("v6 case {i}"));
            }
        }
        // The largest sizes the afxdp engine takes: 1518 untagged, 1526 with QinQ.
        for (toml, size) in [
            ("parent = \"min-multi-flow-v6\"\n", 1518usize),
            (
                "parent = \"min-multi-flow-v6\"\nframe_size = 74\n[[vlan]]\nid = 7\n[[vlan]]\nid = 9\n",
                1526,
            ),
        ] {
            let mut p = Profile::from_toml(toml, "big6.toml").expect("profile");
            p.set_frame_size(size).expect("size");
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            assert_eq!(t.len() + 4, size);
            let ks = (0..100_000u64).step_by(7919).chain(0..4);
            assert_program_frames(&t, 2, 1, ks, &format!("v6 {size}"));
        }
    }

    #[test]
    fn imix_frames_equal_template_frames_each_trimmed_to_its_size() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // The shipped IMIX, a tagged TCP mix and a QinQ mix with odd-length sizes.
        let tcp_mix = "parent = \"syn-flood\"\n[[vlan]]\nid = 9\n[imix]\nsizes = [82, 1001, 1522]\nweights = [3, 2, 1]\n";
        let p2 = Profile::from_toml(tcp_mix, "t.toml").expect("p");
        let p3 = Profile::from_toml(
            "parent = \"min-multi-flow-qinq\"\n[imix]\nsizes = [64, 65, 1001, 1526]\nweights = [1, 2, 3, 4]\n",
            "q.toml",
        )
        .expect("p");
        for p in [Profile::load("imix").expect("imix"), p2, p3] {
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            assert!(t.sizes_vary());
            for (nq, qid) in [(1usize, 0u32), (3, 2)] {
                let ks = (0..50_000u64).step_by(4001).chain(0..30);
                assert_program_frames(&t, nq, qid, ks, &p.name);
            }
        }
    }

    #[test]
    fn paced_runs_hold_back_until_due_and_stop_at_the_limit() {
        if !crate::net::is_root() {
            return;
        }
        let p = Profile::load("min-single-flow").expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let l = LiveProgram::load_for(&t, 1, 0, 0).expect("load");
        // 1000 pps from now: frame 0 due at once, frame 1 after 1 ms.
        let now = monotonic_ns();
        let st = QState {
            limit: 3,
            t0_ns: now,
            gap_fp: 1_000_000 << 16,
            ..QState::default()
        };
        l.set_state(0, &st).expect("state");
        assert_eq!(l.test_frame().expect("run").0, 3, "frame 0 due: XDP_TX");
        assert_eq!(
            l.test_frame().expect("run").0,
            1,
            "frame 1 not due: XDP_DROP"
        );
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(l.test_frame().expect("run").0, 3);
        assert_eq!(l.test_frame().expect("run").0, 3);
        assert_eq!(l.test_frame().expect("run").0, 1, "limit reached");
        let s = l.state(0);
        assert_eq!(s.k, 3);
        assert!(s.idle >= 1);
        let mut h = Histogram::<u64>::new(3).expect("hist");
        l.deviations(0, &mut h);
        assert_eq!(h.len(), 3, "one deviation per frame sent");
        // Frames 1 and 2 went out ~2 and ~1 ms late.
        assert!(h.max() >= 1_000_000, "max {}", h.max());
    }

    fn crafted_replay(rate_pps: Option<f64>) -> Replay {
        // Mixed sizes, odd and even, up to the longest the map holds.
        Replay {
            path: "crafted.pcap".into(),
            frames: vec![
                vec![0x11; 60],
                (0..1514u32).map(|i| (i * 7) as u8).collect(),
                vec![0x33; 61],
                (0..REPLAY_MAX as u32).map(|i| (i ^ 0x5a) as u8).collect(),
                vec![0x55; 14],
            ],
            // 0, 1, 2, 3, 4 s after the first; a pass lasts 5 s (span 4 s + one
            // mean gap), at --speed 2 2.5 s.
            offsets_ns: (0..5).map(|i| i * 1_000_000_000).collect(),
            loops: 3,
            speed: 2.0,
            rate_pps,
        }
    }

    #[test]
    fn replay_program_sends_the_files_frames_in_order_over_passes() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let rp = crafted_replay(Some(1000.0));
        for (nq, qid) in [(1usize, 0u32), (3, 2)] {
            let first = LiveProgram::load_replay(&rp, nq, 0, 0, None).expect("load");
            // Queue qid shares the first instance's map.
            let l = LiveProgram::load_replay(&rp, nq, qid, 0, first.replay.as_ref())
                .expect("load shared");
            // Plain test runs start from the longest frame and its pad byte; the
            // program sets each length from the context's, down and back up.
            for k in (0..23u64).chain([1_000, 70_001]) {
                let f = frame_at(&l, qid, k);
                let n = k * nq as u64 + u64::from(qid);
                assert_eq!(f, rp.frame(n), "nq {nq} qid {qid}: frame {n}");
            }
        }
    }

    #[test]
    fn replay_program_keeps_the_recorded_timing() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let rp = crafted_replay(None);
        let l = LiveProgram::load_replay(&rp, 1, 0, 0, None).expect("load");
        let now = monotonic_ns();
        // Frame k of the run is due at due_ns(k) after t0: a t0 that puts frame k
        // 0.2 s in the past sends it, one that puts it 0.2 s ahead holds it back.
        for k in [0u64, 1, 4, 5, 6, 14] {
            let due = rp.due_ns(k) as u64;
            for (ahead, want) in [(false, 3u32), (true, 1)] {
                let t0 = if ahead {
                    now + 200_000_000 - due
                } else {
                    (now + 200_000_000 - 400_000_000) - due
                };
                let st = QState {
                    k,
                    limit: u64::MAX,
                    t0_ns: t0,
                    ..QState::default()
                };
                l.set_state(0, &st).expect("state");
                let (ret, f) = l.test_frame().expect("test run");
                assert_eq!(ret, want, "frame {k} (due {due} ns), ahead {ahead}");
                if want == 3 {
                    assert_eq!(f, rp.frame(k));
                }
            }
        }
        // A pass lasts 2.5 s at --speed 2: frame 5 (pass 1's first) is due then.
        assert_eq!(rp.due_ns(5), 2.5e9);
        // The limit stops it.
        let st = QState {
            k: 15,
            limit: 15,
            ..QState::default()
        };
        l.set_state(0, &st).expect("state");
        assert_eq!(l.test_frame().expect("run").0, 1, "limit: XDP_DROP");
    }

    #[test]
    fn replay_refuses_what_its_map_cannot_hold() {
        let mut rp = crafted_replay(None);
        rp.frames[2] = vec![0; REPLAY_MAX + 1];
        let e = check_replay(&rp).expect_err("too long").to_string();
        assert!(e.contains("frame 3 of crafted.pcap is 1793 bytes"), "{e}");
        rp.frames[2] = Vec::new();
        let e = check_replay(&rp).expect_err("empty").to_string();
        assert!(e.contains("frame 3 of crafted.pcap is empty"), "{e}");
        rp.frames = vec![vec![0; 60]; REPLAY_FRAMES + 1];
        let e = check_replay(&rp).expect_err("too many").to_string();
        assert!(e.contains("holds 65537 frames, more than the 65536"), "{e}");
    }

    #[test]
    fn buckets_round_trip() {
        for v in [0u64, 1, 63, 64, 65, 1000, 123_456, 10_000_000_000] {
            // Lowest value of v's bucket is within 1/32 below v.
            let b = if v < 64 {
                v as u32
            } else {
                let e = 63 - v.leading_zeros();
                64 + (e - 6) * 32 + ((v >> (e - 5)) & 31) as u32
            };
            let lo = bucket_low(b);
            assert!(lo <= v && (v - lo) as f64 <= v as f64 / 32.0, "{v} -> {lo}");
        }
    }

    #[test]
    fn charset_recovered() {
        let p = Profile::load("dns-small").expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let cs = charset_of(&t);
        assert_eq!(cs.len(), 36);
        assert_eq!(&cs[..3], b"abc");
    }

    #[test]
    fn malformed_short_frame_is_aborted_not_overrun() {
        if !crate::net::is_root() {
            return;
        }
        let p = Profile::load("min-multi-flow").expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let mut l = LiveProgram::load_for(&t, 1, 0, 0).expect("load");
        l.frame.truncate(20);
        let (ret, _) = l.test_frame().expect("test run");
        assert_eq!(ret, 0, "XDP_ABORTED on a frame too short for its patches");
    }
}
