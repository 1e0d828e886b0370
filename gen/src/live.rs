//! The `xdp-live` engine: `BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` (what
//! xdp-trafficgen does). The kernel runs `gen_live.bpf.c` on copies of the profile's
//! frame 0; the program turns each into frame n (the variation of the template's
//! `patches()`/`dns()` passed in rodata, list values in a map) and returns XDP_TX,
//! which transmits it out of the interface given as `ingress_ifindex`, queue
//! `rx_queue_index`. One thread per queue, each calling BPF_PROG_RUN with `repeat`
//! = the number of frames due (paced) or a fixed batch (unpaced). Replies are
//! counted on AF_XDP RX sockets (opened by the caller), polled between runs.
//!
//! Invariant: the program's frame n equals `Template::write(frame, n)` byte for
//! byte; the unit test checks it with plain BPF_PROG_TEST_RUN for every shipped
//! profile.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use profiles::Template;
use profiles::profile::VaryKind;

use sink::af_xdp::XskQueue;

use crate::pace::{Pacer, Pending};
use crate::{Ctx, Plan, net};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/gen_live.skel.rs"));
}

const MAX_PATCHES: usize = 6;
const MAX_LIST: usize = 256;
const MAX_LABEL: usize = 16;
const MAX_UDP: usize = 512;
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// Frames per BPF_PROG_RUN when unpaced.
pub const UNPACED_REPEAT: u32 = 1024;
/// Largest paced batch.
pub const PACED_BATCH: usize = 64;

/// The loaded program and the frame it starts from.
#[derive(Debug)]
pub struct LiveProgram {
    prog: OwnedFd,
    seq: OwnedFd,
    ifindex: u32,
    frame: Vec<u8>,
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

impl LiveProgram {
    /// Loads the program configured for `plan`'s template, to send on `iface`.
    pub fn load(iface: &str, plan: &Plan) -> Result<LiveProgram> {
        let ifindex = sink::af_xdp::ifindex(iface)?;
        Self::load_for(&plan.template, plan.queue_ids.len(), ifindex)
    }

    /// Loads the program for `t` with `nq` queues (ifindex 0: test runs only).
    pub fn load_for(t: &Template, nq: usize, ifindex: u32) -> Result<LiveProgram> {
        if t.len() > 14 + 20 + MAX_UDP {
            bail!("xdp-live handles frames up to {} bytes; this profile's are {}", 14 + 20 + MAX_UDP + 4, t.len() + 4);
        }
        if t.patches().len() > MAX_PATCHES {
            bail!("xdp-live handles up to {MAX_PATCHES} varying fields; this profile has {}", t.patches().len());
        }
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::GenLiveSkelBuilder::default()
            .open(&mut obj)
            .context("opening the xdp-live program")?;
        let mut lists: Vec<(u32, u64)> = Vec::new();
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .context("xdp-live program has no rodata")?;
            ro.nqueues = nq as u32;
            ro.npatches = t.patches().len() as u32;
            ro.varies = u32::from(t.varies());
            for (i, p) in t.patches().iter().enumerate() {
                let s = &mut ro.patches[i];
                s.offset = p.offset as u32;
                s.width = p.width as u32;
                match &p.kind {
                    VaryKind::Increment { min, max, step } => {
                        let span = max - min + 1;
                        if span > u64::from(u32::MAX) {
                            bail!("xdp-live: field {} spans more than 2^32 values", p.field.key());
                        }
                        s.kind = 0;
                        s.min = *min;
                        s.span = span;
                        s.arg = *step;
                    }
                    VaryKind::Random { min, max, seed } => {
                        s.kind = 1;
                        s.min = *min;
                        s.span = max - min + 1;
                        s.arg = *seed;
                    }
                    VaryKind::List(vals) => {
                        if vals.len() > MAX_LIST {
                            bail!("xdp-live: field {} lists more than {MAX_LIST} values", p.field.key());
                        }
                        s.kind = 2;
                        s.nvals = vals.len() as u32;
                        for (j, v) in vals.iter().enumerate() {
                            lists.push(((i * MAX_LIST + j) as u32, *v));
                        }
                    }
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
                if d.names.label_len() > MAX_LABEL {
                    bail!("xdp-live handles DNS labels up to {MAX_LABEL} characters");
                }
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
        let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().context("duplicating a BPF fd");
        let prog = dup(skel.progs.gen_live.as_fd())?;
        let seq = dup(skel.maps.seq.as_fd())?;
        let lmap = dup(skel.maps.lists.as_fd())?;
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
        Ok(LiveProgram { prog, seq, ifindex, frame: t.frame().to_vec() })
    }

    /// Sends `repeat` frames from queue `qid` (live mode). Returns the kernel error.
    #[inline]
    pub fn send(&self, qid: u32, repeat: u32) -> std::io::Result<()> {
        let mut md = libbpf_sys::xdp_md { ingress_ifindex: self.ifindex, rx_queue_index: qid, ..Default::default() };
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
        if rc != 0 { Err(std::io::Error::from_raw_os_error(-rc)) } else { Ok(()) }
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

    /// The per-queue counter k (frames the program has made for queue `qid`).
    pub fn seq(&self, qid: u32) -> u64 {
        let mut v = 0u64;
        // SAFETY: 4-byte key, 8-byte value.
        unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.seq.as_raw_fd(),
                (&qid as *const u32).cast(),
                (&mut v as *mut u64).cast(),
            )
        };
        v
    }
}

/// Runs queue `qid` (position `i`) until the run ends; returns the pacing histogram.
#[allow(clippy::too_many_arguments)]
pub fn queue_thread(
    l: &LiveProgram,
    mut rxq: Option<XskQueue>,
    qid: u32,
    i: usize,
    core: Option<usize>,
    ctx: Arc<Ctx>,
    mut hist: Histogram<u64>,
) -> Histogram<u64> {
    if let Some(c) = core
        && let Err(e) = net::pin_to(c)
    {
        eprintln!("warning: queue {qid}: {e:#}");
    }
    let counters = &ctx.counters[i];
    let len = l.frame.len() as u64;
    let total = ctx.count_for(i);
    let mut k: u64 = 0;
    let mut pacer = ctx.rate_per_queue.map(|r| Pacer::new(ctx.pattern, r, i as u64 + 1));
    let mut pend = Pending::default();
    let deadline_ns = ctx.duration.map_or(f64::INFINITY, |d| d.as_nanos() as f64);
    let mut errors = 0u64;
    let end_ns;
    loop {
        let now_ns = ctx.t0.elapsed().as_nanos() as f64;
        if ctx.stop.load(Relaxed) {
            end_ns = now_ns.min(deadline_ns);
            break;
        }
        if now_ns >= deadline_ns {
            end_ns = deadline_ns;
            break;
        }
        if k >= total {
            end_ns = pacer.as_ref().map_or(now_ns, |p| p.next_ns().max(now_ns));
            break;
        }
        if let Some(q) = rxq.as_mut() {
            q.recv_batch(64, |f, _| counters.count_rx(f));
        }
        let want = match &mut pacer {
            Some(p) => pend.refill(p, now_ns.min(deadline_ns), PACED_BATCH, total - k),
            None => (u64::from(UNPACED_REPEAT)).min(total - k) as usize,
        };
        if want == 0 {
            if let Some(p) = &pacer {
                let wait = p.next_ns() - now_ns;
                if wait > 300_000.0 {
                    std::thread::sleep(Duration::from_nanos(((wait - 150_000.0) as u64).min(1_000_000)));
                } else {
                    std::hint::spin_loop();
                }
            }
            continue;
        }
        if l.send(qid, want as u32).is_err() {
            errors += 1;
            if errors > 1000 {
                eprintln!("error: queue {qid}: BPF_PROG_RUN keeps failing; stopping this queue");
                end_ns = now_ns;
                break;
            }
            continue;
        }
        if pacer.is_some() {
            for j in 0..want {
                let _ = hist.record((now_ns - pend.time(j)).max(0.0) as u64);
            }
            pend.consume(want);
        }
        k += want as u64;
        counters.tx_packets.fetch_add(want as u64, Relaxed);
        counters.tx_bytes.fetch_add(want as u64 * len, Relaxed);
    }
    ctx.end_ns[i].store(end_ns as u64, Relaxed);
    if let Some(q) = rxq.as_mut() {
        let until = Instant::now() + Duration::from_millis(250);
        while Instant::now() < until {
            if q.recv_batch(64, |f, _| counters.count_rx(f)) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    hist
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiles::{Profile, TemplateOptions};

    #[test]
    fn program_frames_equal_template_frames() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        for name in ["min-multi-flow", "min-single-flow", "dns-small", "dns-large", "dns-ping"] {
            let p = Profile::load(name).expect("profile");
            let t = Template::new(&p, TemplateOptions::default()).expect("template");
            let nq = 3;
            let l = LiveProgram::load_for(&t, nq, 0).expect("load");
            // Spread over the 16-bit ID wrap so DNS source ports change too.
            for k in (0..70_000u64).step_by(997).chain(0..5) {
                if t.varies() {
                    // Jump the per-queue counter to k.
                    let q = 0u32;
                    // SAFETY: 4-byte key, 8-byte value.
                    unsafe {
                        libbpf_sys::bpf_map_update_elem(
                            l.seq.as_raw_fd(),
                            (&q as *const u32).cast(),
                            (&k as *const u64).cast(),
                            0,
                        )
                    };
                }
                let (ret, f) = l.test_frame().expect("test run");
                assert_eq!(ret, 3, "XDP_TX");
                let want = t.frame_for(if t.varies() { k * nq as u64 } else { 0 }, None);
                assert_eq!(f, want, "{name}: frame {}", k * nq as u64);
            }
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
        let mut l = LiveProgram::load_for(&t, 1, 0).expect("load");
        l.frame.truncate(20);
        let (ret, _) = l.test_frame().expect("test run");
        assert_eq!(ret, 0, "XDP_ABORTED on a frame too short for its patches");
    }
}
