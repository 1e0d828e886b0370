//! Replies counted at XDP speed: `gen_rx.bpf.c` on gen's interface counts every
//! IPv4/UDP frame that arrives (DNS responses by RCODE, gen's probes apart) in
//! per-CPU counters and drops it; the rest goes to the kernel. No AF_XDP socket,
//! no copy to user space: the count does not cap the rate (see gen/README.md for
//! the measured ceiling). The program replaces the interface's placeholder through
//! the AF_XDP layer's guard, which puts the placeholder back on drop.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use sink::af_xdp::{BorrowedProg, XdpGuard};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/gen_rx.skel.rs"));
}

/// Mirror of `struct rxcount` in gen_rx.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxTotals {
    /// IPv4/UDP frames counted (and dropped).
    pub packets: u64,
    /// Their bytes (no FCS).
    pub bytes: u64,
    /// Other frames, passed to the kernel.
    pub passed: u64,
    /// gen probes among the counted frames.
    pub probes: u64,
    /// DNS responses by RCODE.
    pub rcodes: [u64; 16],
}

/// The loaded, attached reply counter.
#[derive(Debug)]
pub struct RxCounter {
    map: OwnedFd,
    _prog: OwnedFd,
    guard: XdpGuard,
    ncpus: usize,
}

impl RxCounter {
    /// Loads the counter and attaches it to `iface` (a foreign program there is
    /// refused unless `force`).
    pub fn attach(iface: &str, force: bool) -> Result<RxCounter> {
        let mut obj = MaybeUninit::uninit();
        let open = skel::GenRxSkelBuilder::default()
            .open(&mut obj)
            .context("opening the reply counter (gen_rx)")?;
        let skel = open.load().context("loading the reply counter (gen_rx)")?;
        let prog = skel
            .progs
            .gen_rx
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating a BPF fd")?;
        let map = skel
            .maps
            .rxcount
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating a BPF fd")?;
        let guard = XdpGuard::attach(iface, BorrowedProg(prog.as_fd()), force)
            .with_context(|| format!("attaching the reply counter to {iface}"))?;
        // SAFETY: plain libbpf call.
        let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
        let ncpus = usize::try_from(n).context("counting the possible CPUs")?;
        Ok(RxCounter {
            map,
            _prog: prog,
            guard,
            ncpus,
        })
    }

    /// Where the program runs (`native`/`generic`).
    pub fn attach_mode(&self) -> &'static str {
        self.guard.attach_mode()
    }

    /// The counters summed over the CPUs.
    pub fn read(&self) -> RxTotals {
        let mut buf = vec![RxTotals::default(); self.ncpus.max(1)];
        let key = 0u32;
        // SAFETY: a per-CPU array's value is one 8-byte aligned RxTotals per
        // possible CPU; buf holds exactly that many.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.map.as_raw_fd(),
                (&key as *const u32).cast(),
                buf.as_mut_ptr().cast(),
            )
        };
        let mut t = RxTotals::default();
        if rc != 0 {
            return t;
        }
        for c in &buf {
            t.packets += c.packets;
            t.bytes += c.bytes;
            t.passed += c.passed;
            t.probes += c.probes;
            for (a, b) in t.rcodes.iter_mut().zip(&c.rcodes) {
                *a += b;
            }
        }
        t
    }

    /// Detaches now and restores what was there (drop does it too).
    pub fn close(mut self) -> Result<()> {
        self.guard.restore().context("restoring the interface's XDP program")
    }
}
