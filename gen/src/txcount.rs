//! Departures, not verdicts, for the xdp-live engine: `gen_txcount.bpf.c` on the
//! `xdp_devmap_xmit` and `xdp_redirect_err` raw tracepoints counts, per queue
//! thread, the frames the driver accepted (`sent`) and refused (`drops`) in each
//! bulk flush, and redirects that failed before any flush. Only our process's
//! flushes to our device (ifindex and network-namespace cookie) are counted.

use std::collections::HashMap;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/gen_txcount.skel.rs"));
}

/// Mirror of `struct txout` in gen_txcount.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOut {
    /// Frames the driver accepted.
    pub sent: u64,
    /// Frames the driver refused.
    pub drops: u64,
    /// Bulk flushes.
    pub flushes: u64,
    /// Redirects that failed before a flush.
    pub redirect_errors: u64,
}

/// The loaded, attached tracepoint programs.
#[derive(Debug)]
pub struct TxCounter {
    map: OwnedFd,
    _links: Vec<OwnedFd>,
    _progs: Vec<OwnedFd>,
}

/// Cookie of the calling thread's network namespace (the AF_XDP layer's).
pub fn netns_cookie() -> Result<u64> {
    xdplayer::netns::cookie().context("reading the network namespace cookie")
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: plain syscall.
    unsafe { libc::gettid() as u32 }
}

impl TxCounter {
    /// Loads and attaches the counters for transmits of this process on `ifindex`
    /// (in the current network namespace).
    pub fn attach(ifindex: u32) -> Result<TxCounter> {
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::GenTxcountSkelBuilder::default()
            .open(&mut obj)
            .context("opening the transmit counter (gen_txcount)")?;
        {
            let ro = open
                .maps
                .rodata_data
                .as_deref_mut()
                .context("gen_txcount has no rodata")?;
            ro.target_tgid = std::process::id();
            ro.target_ifindex = ifindex as i32;
            ro.target_netns_cookie = netns_cookie()?;
        }
        let skel = open
            .load()
            .context("loading the transmit counter (gen_txcount; needs kernel BTF for CO-RE)")?;
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned().context("duplicating a BPF fd")
        };
        let map = dup(skel.maps.txout.as_fd())?;
        let progs = vec![
            dup(skel.progs.gen_devmap_xmit.as_fd())?,
            dup(skel.progs.gen_redirect_err.as_fd())?,
        ];
        let mut links = Vec::new();
        for (tp, prog) in ["xdp_devmap_xmit", "xdp_redirect_err"].iter().zip(&progs) {
            let name = CString::new(*tp).context("tracepoint name")?;
            // SAFETY: valid NUL-terminated name and program fd.
            let fd =
                unsafe { libbpf_sys::bpf_raw_tracepoint_open(name.as_ptr(), prog.as_raw_fd()) };
            if fd < 0 {
                bail!(
                    "attaching to the raw tracepoint xdp:{tp}: {}",
                    std::io::Error::from_raw_os_error(-fd)
                );
            }
            // SAFETY: fresh descriptor we own.
            links.push(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(TxCounter {
            map,
            _links: links,
            _progs: progs,
        })
    }

    /// What the kernel did with thread `tid`'s frames so far.
    pub fn of(&self, tid: u32) -> TxOut {
        let mut v = TxOut::default();
        // SAFETY: 4-byte key and a value of the map's value size.
        unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.map.as_raw_fd(),
                (&tid as *const u32).cast(),
                (&mut v as *mut TxOut).cast(),
            )
        };
        v
    }

    /// Every thread's counts.
    pub fn all(&self) -> HashMap<u32, TxOut> {
        let mut out = HashMap::new();
        let mut key: u32 = 0;
        let mut next: u32 = 0;
        let mut first = true;
        loop {
            // SAFETY: 4-byte keys as the map declares.
            let rc = unsafe {
                libbpf_sys::bpf_map_get_next_key(
                    self.map.as_raw_fd(),
                    if first {
                        std::ptr::null()
                    } else {
                        (&key as *const u32).cast()
                    },
                    (&mut next as *mut u32).cast(),
                )
            };
            if rc != 0 {
                break;
            }
            first = false;
            key = next;
            out.insert(key, self.of(key));
        }
        out
    }
}
