//! Replies counted at XDP speed: `gen_rx.bpf.c` on gen's interface counts every
//! IPv4/UDP or IPv6/UDP frame that arrives, past up to two VLAN tags (DNS
//! responses by RCODE, gen's probes apart) in
//! per-CPU counters and drops it; the rest goes to the kernel. No AF_XDP socket,
//! no copy to user space: the count does not cap the rate (see gen/README.md for
//! the measured ceiling). The program replaces the interface's placeholder through
//! the XDP layer's guard (`xdplayer`), which records it as process-scoped (a killed
//! gen leaves an orphan the next run takes over) and puts the placeholder back on drop.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use xdplayer::attach::{AttachOptions, XdpGuard};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/gen_rx.skel.rs"));
}

/// Mirror of `struct rxcount` in gen_rx.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxTotals {
    /// IPv4/UDP and IPv6/UDP frames counted (and dropped).
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

/// The loaded reply counter, not attached (test runs, benchmarks).
#[derive(Debug)]
pub struct RxProgram {
    prog: OwnedFd,
    map: OwnedFd,
    ncpus: usize,
}

impl RxProgram {
    /// Loads gen_rx.
    pub fn load() -> Result<RxProgram> {
        let mut obj = MaybeUninit::uninit();
        let open = skel::GenRxSkelBuilder::default()
            .open(&mut obj)
            .context("opening the reply counter (gen_rx)")?;
        let skel = open.load().context("loading the reply counter (gen_rx)")?;
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned().context("duplicating a BPF fd")
        };
        // SAFETY: plain libbpf call.
        let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
        Ok(RxProgram {
            prog: dup(skel.progs.gen_rx.as_fd())?,
            map: dup(skel.maps.rxcount.as_fd())?,
            ncpus: usize::try_from(n).context("counting the possible CPUs")?,
        })
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

    /// Runs the program `repeat` times on `frame` (BPF_PROG_TEST_RUN); returns the
    /// verdict and the kernel's mean time per run in ns.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> std::io::Result<(u32, u32)> {
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: frame.as_ptr().cast(),
            data_size_in: frame.len() as u32,
            repeat: repeat.min(i32::MAX as u32) as i32,
            ..Default::default()
        };
        // SAFETY: opts points at a live buffer for the duration of the call.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog.as_raw_fd(), &mut opts) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok((opts.retval, opts.duration))
    }
}

/// The loaded, attached reply counter.
#[derive(Debug)]
pub struct RxCounter {
    prog: RxProgram,
    guard: XdpGuard,
}

impl RxCounter {
    /// Loads the counter and attaches it to `iface` (a foreign program there is
    /// refused unless `force`).
    pub fn attach(iface: &str, force: bool) -> Result<RxCounter> {
        let prog = RxProgram::load()?;
        let guard = XdpGuard::attach(
            iface,
            prog.prog.as_fd(),
            &AttachOptions {
                force,
                ..AttachOptions::default()
            },
        )
        .with_context(|| format!("attaching the reply counter to {iface}"))?;
        Ok(RxCounter { prog, guard })
    }

    /// Where the program runs (`native`/`generic`).
    pub fn attach_mode(&self) -> &'static str {
        self.guard.attach_mode()
    }

    /// The counters summed over the CPUs.
    pub fn read(&self) -> RxTotals {
        self.prog.read()
    }

    /// Detaches now and restores what was there (drop does it too).
    pub fn close(mut self) -> Result<()> {
        self.guard
            .restore()
            .context("restoring the interface's XDP program")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiles::{Profile, Template, TemplateOptions};

    fn reply(rcode: u8) -> Vec<u8> {
        // dns-small's query turned into a response: source port 53, QR set.
        let p = Profile::load("dns-small").expect("profile");
        let mut f = Template::new(&p, TemplateOptions::default())
            .expect("template")
            .frame()
            .to_vec();
        f[34..36].copy_from_slice(&53u16.to_be_bytes());
        f[42 + 2] |= 0x80;
        f[42 + 3] = (f[42 + 3] & 0xf0) | rcode;
        f
    }

    #[test]
    fn replies_counted_by_rcode_and_dropped_the_rest_passed() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let p = RxProgram::load().expect("load");
        assert_eq!(p.test_run(&reply(3), 5).expect("run").0, 1, "XDP_DROP");
        assert_eq!(p.test_run(&reply(0), 2).expect("run").0, 1);
        // A query (QR clear) is a UDP frame too: counted, no RCODE.
        let mut q = reply(0);
        q[44] &= 0x7f;
        assert_eq!(p.test_run(&q, 1).expect("run").0, 1);
        // ARP goes to the kernel.
        let mut arp = reply(0);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(p.test_run(&arp, 4).expect("run").0, 2, "XDP_PASS");
        // Malformed: cut inside the IPv4 header, cut inside the DNS header,
        // a bogus IHL, a truncated VLAN tag.
        let r = reply(0);
        assert_eq!(p.test_run(&r[..20], 1).expect("run").0, 2);
        assert_eq!(
            p.test_run(&r[..44], 1).expect("run").0,
            1,
            "UDP counted, no RCODE"
        );
        let mut bad_ihl = reply(0);
        bad_ihl[14] = 0x41;
        assert_eq!(p.test_run(&bad_ihl, 1).expect("run").0, 2);
        let mut vlan = reply(0)[..14].to_vec();
        vlan[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        vlan.extend_from_slice(&[0, 1]);
        assert_eq!(p.test_run(&vlan, 1).expect("run").0, 2);
        let t = p.read();
        assert_eq!(t.rcodes[3], 5);
        assert_eq!(t.rcodes[0], 2);
        assert_eq!(t.packets, 5 + 2 + 1 + 1);
        assert_eq!(t.passed, 4 + 1 + 1 + 1);
        assert_eq!(t.bytes, (5 + 2 + 1) * r.len() as u64 + 44);
    }

    /// A dns-small-v6 query turned into a response with `rcode`: source port
    /// 53, QR set (the UDP checksum is not the counter's business).
    fn reply6(rcode: u8) -> Vec<u8> {
        let mut f = profiles::Template::new(
            &profiles::Profile::load("dns-small-v6").expect("profile"),
            profiles::TemplateOptions::default(),
        )
        .expect("template")
        .frame()
        .to_vec();
        let udp = 14 + 40;
        f[udp..udp + 2].copy_from_slice(&53u16.to_be_bytes());
        f[udp + 8 + 2] |= 0x80;
        f[udp + 8 + 3] = (f[udp + 8 + 3] & 0xf0) | rcode;
        f
    }

    fn tag(f: &[u8], tpid: u16) -> Vec<u8> {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&[0, 100]);
        t.extend_from_slice(&f[12..]);
        t
    }

    #[test]
    fn ipv6_replies_counted_by_rcode_past_vlan_tags() {
        if !crate::net::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let p = RxProgram::load().expect("load");
        let r0 = reply6(0);
        assert_eq!(p.test_run(&r0, 3).expect("run").0, 1, "XDP_DROP");
        assert_eq!(p.test_run(&reply6(3), 2).expect("run").0, 1);
        let qinq = tag(&tag(&reply6(2), 0x8100), 0x88a8);
        assert_eq!(p.test_run(&qinq, 1).expect("run").0, 1);
        // A query (QR clear): counted, no RCODE.
        let mut q = reply6(0);
        q[14 + 40 + 10] &= 0x7f;
        assert_eq!(p.test_run(&q, 1).expect("run").0, 1);
        // Passed: ICMPv6 (neighbour discovery), a hop-by-hop header before UDP,
        // a cut fixed header, a cut UDP header.
        let mut icmp6 = reply6(0);
        icmp6[14 + 6] = 58;
        assert_eq!(p.test_run(&icmp6, 1).expect("run").0, 2, "XDP_PASS");
        let mut hbh = reply6(0);
        hbh[14 + 6] = 0;
        assert_eq!(p.test_run(&hbh, 1).expect("run").0, 2);
        assert_eq!(p.test_run(&r0[..14 + 39], 1).expect("run").0, 2);
        assert_eq!(p.test_run(&r0[..14 + 40 + 7], 1).expect("run").0, 2);
        // Cut inside the DNS header: a UDP frame, no RCODE.
        assert_eq!(p.test_run(&r0[..14 + 40 + 8 + 3], 1).expect("run").0, 1);
        let t = p.read();
        assert_eq!((t.rcodes[0], t.rcodes[3], t.rcodes[2]), (3, 2, 1));
        assert_eq!(t.rcodes.iter().sum::<u64>(), 6);
        assert_eq!(t.packets, 3 + 2 + 1 + 1 + 1);
        assert_eq!(t.passed, 4);
        assert_eq!(
            t.bytes,
            6 * r0.len() as u64 + qinq.len() as u64 + (14 + 40 + 8 + 3)
        );
    }
}
