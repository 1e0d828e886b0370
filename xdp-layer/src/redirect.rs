//! Our AF_XDP redirect program (`src/bpf/xsk_redirect.bpf.c`) and its [`Filter`].
//!
//! An XSKMAP keyed by `rx_queue_index`; `bpf_redirect_map(&xsks, rx_queue_index,
//! XDP_PASS)` for frames matching the filter (configured in rodata before load),
//! `XDP_PASS` for the rest, so ARP and other traffic still reach the kernel.
//! Per-CPU counters: redirected, passed, no room for metadata.
//!
//! With an ifindex for RX timestamps the program is loaded device-bound
//! (`xsk_redirect_meta`): it calls the XDP RX-metadata kfunc
//! `bpf_xdp_metadata_rx_timestamp()` and writes `{rx_ts u64, err i32, magic u32}`
//! into the frame's metadata area, which [`crate::datapath`] reads back.
//!
//! Invariant: only fds are kept (program, XSKMAP, counters), so the skeleton's
//! storage can go; attaching is [`crate::attach::XdpGuard`]'s job, not this module's.

use std::io;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::error::{Result, bpf_err, io_err};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/xsk_redirect.skel.rs"));
}

/// BPF name of our redirect program.
pub const REDIRECT_PROG: &str = "xsk_redirect";

/// Which frames the redirect program hands to the sockets (the rest: XDP_PASS).
/// All fields `None` = every frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// IPv4 protocol number (17 = UDP). Set with any other field, non-IPv4 frames pass;
    /// IPv4 behind up to two VLAN tags (0x8100, 0x88a8, 0x9100) is matched.
    pub proto: Option<u8>,
    /// IPv4 source address.
    pub src_ip: Option<Ipv4Addr>,
    /// IPv4 destination address.
    pub dst_ip: Option<Ipv4Addr>,
    /// UDP/TCP source port.
    pub src_port: Option<u16>,
    /// UDP/TCP destination port.
    pub dst_port: Option<u16>,
}

impl Filter {
    /// Every frame.
    pub fn all() -> Filter {
        Filter::default()
    }
    /// Every IPv4 UDP datagram.
    pub fn udp() -> Filter {
        Filter {
            proto: Some(17),
            ..Filter::default()
        }
    }
    pub(crate) fn is_all(&self) -> bool {
        *self == Filter::default()
    }
}

/// Our loaded redirect program: fds of the program, its XSKMAP and counters.
#[derive(Debug)]
pub(crate) struct Redirect {
    pub(crate) prog: OwnedFd,
    xsks: OwnedFd,
    counters: OwnedFd,
}

impl Redirect {
    /// Loads the plain program, or with `meta_ifindex` the device-bound one that
    /// asks that device's driver for RX timestamps.
    pub(crate) fn load(
        filter: &Filter,
        max_queue: u32,
        meta_ifindex: Option<u32>,
    ) -> Result<Redirect> {
        const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::XskRedirectSkelBuilder::default()
            .open(&mut obj)
            .map_err(bpf_err("open the AF_XDP redirect program"))?;
        match meta_ifindex {
            Some(idx) => {
                open.progs.xsk_redirect.set_autoload(false);
                open.progs.xsk_redirect_meta.set_ifindex(idx);
                open.progs
                    .xsk_redirect_meta
                    .set_flags(BPF_F_XDP_DEV_BOUND_ONLY);
            }
            None => open.progs.xsk_redirect_meta.set_autoload(false),
        }
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.match_all = u8::from(filter.is_all());
            ro.match_proto = filter.proto.unwrap_or(0);
            ro.match_src_ip = filter.src_ip.map_or(0, |a| u32::from_ne_bytes(a.octets()));
            ro.match_dst_ip = filter.dst_ip.map_or(0, |a| u32::from_ne_bytes(a.octets()));
            ro.match_src_port = filter.src_port.unwrap_or(0);
            ro.match_dst_port = filter.dst_port.unwrap_or(0);
        }
        open.maps
            .xsks
            .set_max_entries(max_queue + 1)
            .map_err(bpf_err("size the XSKMAP"))?;
        let skel = open.load().map_err(bpf_err(if meta_ifindex.is_some() {
            "load the device-bound AF_XDP redirect program (RX timestamps; the driver may not support XDP RX metadata)"
        } else {
            "load the AF_XDP redirect program"
        }))?;
        let prog = if meta_ifindex.is_some() {
            skel.progs.xsk_redirect_meta.as_fd()
        } else {
            skel.progs.xsk_redirect.as_fd()
        };
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|e| io_err("duplicate BPF fd", e))
        };
        Ok(Redirect {
            prog: dup(prog)?,
            xsks: dup(skel.maps.xsks.as_fd())?,
            counters: dup(skel.maps.counters.as_fd())?,
        })
    }

    pub(crate) fn insert(&self, queue: u32, sock: RawFd) -> io::Result<()> {
        let key = queue;
        let val = sock as u32;
        // SAFETY: key/value point at 4-byte values matching the map's sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.xsks.as_raw_fd(),
                (&key as *const u32).cast(),
                (&val as *const u32).cast(),
                0,
            )
        };
        if rc != 0 {
            Err(io::Error::from_raw_os_error(-rc))
        } else {
            Ok(())
        }
    }

    /// (redirected, passed, no room for metadata) summed over CPUs.
    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        // SAFETY: plain libbpf call.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
        let cpus = usize::try_from(cpus).unwrap_or(1).max(1);
        let mut out = [0u64; 3];
        let mut vals = vec![0u64; cpus];
        for (k, o) in out.iter_mut().enumerate() {
            let key = k as u32;
            // SAFETY: vals holds one u64 per possible CPU, as the per-CPU map needs.
            let rc = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.counters.as_raw_fd(),
                    (&key as *const u32).cast(),
                    vals.as_mut_ptr().cast(),
                )
            };
            if rc == 0 {
                *o = vals.iter().sum();
            }
        }
        (out[0], out[1], out[2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_program_loads_and_filters() {
        // BPF_PROG_TEST_RUN on crafted frames: UDP to port 53 redirected (the
        // XSKMAP is empty so bpf_redirect_map falls back to XDP_PASS, but the
        // counters say which branch ran), ARP and short frames passed.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let f = Filter {
            proto: Some(17),
            dst_port: Some(53),
            ..Filter::default()
        };
        let r = Redirect::load(&f, 3, None).expect("load");
        let mut udp = vec![0u8; 60];
        udp[12] = 0x08;
        udp[14] = 0x45;
        udp[23] = 17;
        udp[36] = 0;
        udp[37] = 53;
        let mut other_port = udp.clone();
        other_port[37] = 54;
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        let short = vec![0u8; 20];
        // The same datagram behind an 802.1Q tag and behind QinQ (0x88a8 outer):
        // matched; behind three tags, or with the frame ending inside a tag: passed.
        let tag = |inner: &[u8], tpid: [u8; 2]| -> Vec<u8> {
            let mut f = inner[..12].to_vec();
            f.extend_from_slice(&tpid);
            f.extend_from_slice(&[0x00, 0x64]);
            f.extend_from_slice(&inner[12..]);
            f
        };
        let dot1q = tag(&udp, [0x81, 0x00]);
        let qinq = tag(&dot1q, [0x88, 0xa8]);
        let three = tag(&qinq, [0x91, 0x00]);
        let cut_tag = dot1q[..16].to_vec();
        let run = |frame: &[u8]| -> u32 {
            let mut opts = libbpf_sys::bpf_test_run_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
                data_in: frame.as_ptr().cast(),
                data_size_in: frame.len() as u32,
                ..Default::default()
            };
            // SAFETY: opts points at live buffers.
            let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(r.prog.as_raw_fd(), &mut opts) };
            assert_eq!(rc, 0, "test run");
            opts.retval
        };
        for fr in [
            &udp[..],
            &other_port,
            &arp,
            &short,
            &dot1q,
            &qinq,
            &three,
            &cut_tag,
        ] {
            assert_eq!(run(fr), 2, "XDP_PASS (empty XSKMAP or no match)");
        }
        let (redirected, passed, _) = r.counters();
        assert_eq!(
            (redirected, passed),
            (3, 5),
            "untagged, 802.1Q and QinQ matched"
        );
    }
}
