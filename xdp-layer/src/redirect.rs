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
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use profiles::units;

use crate::error::{Error, Result, bpf_err, io_err};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/xsk_redirect.skel.rs"));
}

/// BPF name of our redirect program.
pub const REDIRECT_PROG: &str = "xsk_redirect";

/// Which frames the redirect program hands to the sockets (the rest: XDP_PASS).
/// All fields `None` = every frame.
///
/// With any field set only IP frames can match: IPv4 or IPv6, behind up to two VLAN
/// tags (0x8100, 0x88a8, 0x9100). An address makes the filter one version's (an IPv6
/// address matches only IPv6 frames); without one both versions are matched. IPv6
/// extension headers are not walked: a datagram behind one matches on addresses
/// alone, never on `proto` UDP/TCP or ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// IPv4 protocol number / IPv6 next header (17 = UDP, 6 = TCP).
    pub proto: Option<u8>,
    /// Source address (IPv4 or IPv6).
    pub src_ip: Option<IpAddr>,
    /// Destination address (IPv4 or IPv6, the version of `src_ip` when both are set).
    pub dst_ip: Option<IpAddr>,
    /// Prefix length of `dst_ip` (a tenant's network); `None` = the whole address.
    pub dst_prefix_len: Option<u8>,
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

    /// The rodata the program reads, or why this filter cannot be matched.
    fn raw(&self) -> Result<RawFilter> {
        let mut r = RawFilter::default();
        let version = |a: IpAddr| if a.is_ipv4() { 4u8 } else { 6 };
        match (self.src_ip, self.dst_ip) {
            (Some(s), Some(d)) if s.is_ipv4() != d.is_ipv4() => {
                return Err(Error::Config(format!(
                    "redirect filter: source {s} and destination {d} are of different IP versions; no frame matches both"
                )));
            }
            (Some(a), _) | (None, Some(a)) => r.version = version(a),
            (None, None) => {}
        }
        if self.dst_prefix_len.is_some() && self.dst_ip.is_none() {
            return Err(Error::Config(
                "redirect filter: a destination prefix length without a destination address".into(),
            ));
        }
        if let Some(a) = self.src_ip {
            r.set(a, None, Side::Src)?;
        }
        if let Some(a) = self.dst_ip {
            r.set(a, self.dst_prefix_len, Side::Dst)?;
        }
        Ok(r)
    }
}

#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// Addresses and masks as the program's rodata holds them: network byte order in
/// native-endian words, addresses already masked (mask 0: any).
#[derive(Debug, Default, PartialEq, Eq)]
struct RawFilter {
    version: u8,
    ip4: [(u32, u32); 2],
    ip6: [([u32; 4], [u32; 4]); 2],
}

impl RawFilter {
    fn set(&mut self, addr: IpAddr, prefix: Option<u8>, side: Side) -> Result<()> {
        let i = match side {
            Side::Src => 0,
            Side::Dst => 1,
        };
        let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
        let len8 = prefix.unwrap_or(bits as u8);
        let len = u32::from(len8);
        if len > bits {
            return Err(Error::Config(format!(
                "redirect filter: prefix length /{len} is longer than an address of {addr}'s version ({bits} bits)"
            )));
        }
        match addr {
            IpAddr::V4(a) => {
                let (m, v) = (units::mask4(len8).to_be(), a.to_bits().to_be());
                self.ip4[i] = (v & m, m);
            }
            IpAddr::V6(a) => {
                let mask = units::mask6(len8);
                let (m, v) = (mask.to_be_bytes(), (a.to_bits() & mask).to_be_bytes());
                self.ip6[i] = (units::ne_words(v), units::ne_words(m));
            }
        }
        Ok(())
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
        let raw = filter.raw()?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.match_all = u8::from(filter.is_all());
            ro.match_version = raw.version;
            ro.match_proto = filter.proto.unwrap_or(0);
            (ro.match_src_ip, ro.match_src_mask) = raw.ip4[0];
            (ro.match_dst_ip, ro.match_dst_mask) = raw.ip4[1];
            (ro.match_src_ip6, ro.match_src_mask6) = raw.ip6[0];
            (ro.match_dst_ip6, ro.match_dst_mask6) = raw.ip6[1];
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

    /// BPF_PROG_TEST_RUN of `r`'s program on `frame`: the XDP verdict.
    fn test_run(r: &Redirect, frame: &[u8]) -> u32 {
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
    }

    /// An Ethernet/IP/UDP frame from `src` to `dst` (one IP version) to port `dport`.
    fn udp_frame(src: &str, dst: &str, dport: u16) -> Vec<u8> {
        let eth = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let ip = match (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) {
            (Ok(IpAddr::V4(s)), Ok(IpAddr::V4(d))) => eth.ipv4(s.octets(), d.octets(), 64),
            (Ok(IpAddr::V6(s)), Ok(IpAddr::V6(d))) => eth.ipv6(s.octets(), d.octets(), 64),
            other => panic!("test addresses: {other:?}"),
        };
        let mut out = Vec::new();
        ip.udp(4000, dport)
            .write(&mut out, &[0u8; 20])
            .expect("frame");
        out
    }

    /// `f` with tags (TPID, TCI) inserted after the MAC addresses.
    fn tagged(f: &[u8], tags: &[u8]) -> Vec<u8> {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(tags);
        t.extend_from_slice(&f[12..]);
        t
    }

    fn root() -> bool {
        let r = nix::unistd::geteuid().is_root();
        if !r {
            eprintln!("skipped: needs root");
        }
        r
    }

    #[test]
    fn ipv6_destination_prefix_port_and_tags() {
        if !root() {
            return;
        }
        let f = Filter {
            proto: Some(17),
            dst_ip: Some("2001:db8:1::".parse().expect("addr")),
            dst_prefix_len: Some(48),
            dst_port: Some(53),
            ..Filter::default()
        };
        let r = Redirect::load(&f, 0, None).expect("load");
        let hit = udp_frame("2001:db8::1", "2001:db8:1:ff::5", 53);
        let dot1q = tagged(&hit, &[0x81, 0x00, 0x00, 0x64]);
        let qinq = tagged(&hit, &[0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x00, 0x64]);
        // A hop-by-hop header before the UDP header: not walked, so not UDP here.
        let ip = 14;
        let hbh = profiles::wire::udp::with_hop_by_hop(&hit).expect("IPv6 frame");
        let misses = [
            udp_frame("2001:db8::1", "2001:db8:2::5", 53), // outside the /48
            udp_frame("2001:db8::1", "2001:db8:1::5", 54), // other port
            udp_frame("198.18.0.1", "198.18.0.2", 53),     // IPv4: an IPv6 filter
            hbh,
            hit[..ip + 30].to_vec(),     // cut inside the IPv6 header
            hit[..ip + 40 + 2].to_vec(), // cut before the destination port
            dot1q[..16].to_vec(),        // cut inside the tag
            tagged(&qinq, &[0x91, 0x00, 0x00, 0x01]), // three tags
        ];
        for fr in [&hit, &dot1q, &qinq] {
            assert_eq!(test_run(&r, fr), 2, "XDP_PASS (empty XSKMAP)");
        }
        assert_eq!(r.counters().0, 3, "untagged, 802.1Q and QinQ IPv6 matched");
        for (i, fr) in misses.iter().enumerate() {
            assert_eq!(test_run(&r, fr), 2);
            assert_eq!(r.counters().0, 3, "miss {i} was redirected");
        }
        assert_eq!(r.counters().1, misses.len() as u64);
    }

    #[test]
    fn ipv4_prefix_and_version_free_filters() {
        if !root() {
            return;
        }
        let v4 = Redirect::load(
            &Filter {
                dst_ip: Some("198.18.0.0".parse().expect("addr")),
                dst_prefix_len: Some(24),
                ..Filter::default()
            },
            0,
            None,
        )
        .expect("load");
        for fr in [
            udp_frame("198.18.1.1", "198.18.0.7", 9),
            udp_frame("198.18.1.1", "198.18.1.7", 9),
            udp_frame("2001:db8::1", "2001:db8::2", 9),
        ] {
            test_run(&v4, &fr);
        }
        assert_eq!(
            v4.counters(),
            (1, 2, 0),
            "only 198.18.0.7 is in 198.18.0.0/24"
        );
        // No address: UDP to port 53 of either version.
        let any = Redirect::load(
            &Filter {
                proto: Some(17),
                dst_port: Some(53),
                ..Filter::default()
            },
            0,
            None,
        )
        .expect("load");
        for fr in [
            udp_frame("198.18.1.1", "198.18.0.7", 53),
            udp_frame("2001:db8::1", "2001:db8::2", 53),
            udp_frame("2001:db8::1", "2001:db8::2", 54),
        ] {
            test_run(&any, &fr);
        }
        assert_eq!(any.counters(), (2, 1, 0));
    }

    #[test]
    fn filters_that_cannot_match_are_config_errors() {
        let mixed = Filter {
            src_ip: Some("198.18.0.1".parse().expect("addr")),
            dst_ip: Some("2001:db8::2".parse().expect("addr")),
            ..Filter::default()
        };
        assert!(
            matches!(mixed.raw(), Err(Error::Config(m)) if m.contains("different IP versions"))
        );
        let long = Filter {
            dst_ip: Some("198.18.0.1".parse().expect("addr")),
            dst_prefix_len: Some(33),
            ..Filter::default()
        };
        assert!(matches!(long.raw(), Err(Error::Config(m)) if m.contains("/33")));
        let bare = Filter {
            dst_prefix_len: Some(8),
            ..Filter::default()
        };
        assert!(bare.raw().is_err());
        // Masks in the program's byte order: 198.18.0.0/23 and 2001:db8::/33.
        let r = Filter {
            src_ip: Some("2001:db8:ffff::1".parse().expect("addr")),
            dst_ip: Some("2001:db8:ffff::".parse().expect("addr")),
            dst_prefix_len: Some(33),
            ..Filter::default()
        }
        .raw()
        .expect("raw");
        assert_eq!(r.version, 6);
        let be = |w: u32| u32::from_ne_bytes(w.to_be_bytes());
        assert_eq!(r.ip6[1].1, [be(0xffff_ffff), be(0x8000_0000), 0, 0]);
        assert_eq!(r.ip6[1].0, [be(0x2001_0db8), be(0x8000_0000), 0, 0]);
        assert_eq!(r.ip6[0].1, [u32::MAX; 4]);
        let r4 = Filter {
            dst_ip: Some("198.18.1.9".parse().expect("addr")),
            dst_prefix_len: Some(23),
            ..Filter::default()
        }
        .raw()
        .expect("raw");
        assert_eq!(r4.ip4[1], (be(0xc612_0000), be(0xffff_fe00)));
        assert_eq!(r4.ip4[0], (0, 0));
    }

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
        let run = |frame: &[u8]| test_run(&r, frame);
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
