//! `--pcap FILE`: the frames of a capture instead of a profile's (both engines: the
//! afxdp engine copies frame n into its UMEM frame, xdp-live's `gen_replay` program
//! reads it from a map that [`crate::live`] fills from here).
//!
//! The capture is read once with the shared reader ([`capfile`], also tstamp's) into
//! memory; frames keep their bytes unless `--dst-mac` / `--dst-ip` rewrite them here,
//! once, before anything is attached (an IPv4 `--dst-ip` only the IPv4 frames, an
//! IPv6 one only the IPv6 frames). Frame n of the run (n over all `--loop` passes)
//! is the file's frame n mod F; with Q queues queue q sends n = q, q+Q, ... It is due
//! at its recorded time since the file's first frame divided by `--speed` (pass l
//! starts one mean gap of the file after pass l-1's last frame, so that no two
//! passes overlap), or at n / rate with `--rate`.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Result, bail};
use profiles::wire::checksum;

/// A capture ready to send, with its schedule.
#[derive(Debug)]
pub struct Replay {
    /// The file, as given.
    pub path: String,
    /// Frames in file order (rewritten where asked).
    pub frames: Vec<Vec<u8>>,
    /// Per frame: ns since the first frame (never decreasing).
    pub offsets_ns: Vec<u64>,
    /// Passes over the file.
    pub loops: u64,
    /// Recorded timing divided by this.
    pub speed: f64,
    /// Constant total rate instead of the recorded timing (frames/s).
    pub rate_pps: Option<f64>,
}

/// Reads `path`: every Ethernet frame with its timestamp. A missing, foreign, empty
/// or truncated file is an error (one line).
pub fn read(path: &Path) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let mut frames = Vec::new();
    let mut offsets = Vec::new();
    let mut first: Option<u64> = None;
    let mut last = 0u64;
    let st = capfile::read(path, |ts, data| {
        let t0 = *first.get_or_insert(ts);
        last = last.max(ts.saturating_sub(t0));
        offsets.push(last);
        frames.push(data.to_vec());
        true
    })
    .map_err(|e| anyhow::anyhow!("--pcap: {e}"))?;
    if st.truncated {
        bail!(
            "--pcap: {} is truncated or corrupt after {} frame(s): repair or re-capture it (e.g. `editcap` drops the broken tail)",
            path.display(),
            st.packets
        );
    }
    if frames.is_empty() {
        bail!(
            "--pcap: {} holds no Ethernet frames ({} packet(s), {} skipped): nothing to send",
            path.display(),
            st.packets,
            st.skipped
        );
    }
    Ok((frames, offsets))
}

impl Replay {
    /// Frames in the file.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Never true (an empty capture is refused).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames of the whole run (all passes).
    pub fn total(&self) -> u64 {
        (self.len() as u64).saturating_mul(self.loops)
    }

    /// The file's frame that frame n of the run sends.
    #[inline]
    pub fn frame(&self, n: u64) -> &[u8] {
        &self.frames[(n % self.len() as u64) as usize]
    }

    /// ns after the start at which frame n of the run is due.
    #[inline]
    pub fn due_ns(&self, n: u64) -> f64 {
        match self.rate_pps {
            Some(r) => n as f64 * 1e9 / r,
            None => {
                let f = self.len() as u64;
                let pass = (n / f) as f64;
                pass * self.pass_ns() + self.offset_ns((n % f) as usize)
            }
        }
    }

    /// Recorded timing: how long a pass lasts (its span plus one mean gap), divided
    /// by `--speed`.
    pub fn pass_ns(&self) -> f64 {
        let f = self.len() as u64;
        let span = *self.offsets_ns.last().unwrap_or(&0) as f64;
        let period = if f > 1 {
            span * f as f64 / (f - 1) as f64
        } else {
            0.0
        };
        period / self.speed
    }

    /// Recorded timing: the file's frame `i` is due this long after its pass starts.
    pub fn offset_ns(&self, i: usize) -> f64 {
        self.offsets_ns[i] as f64 / self.speed
    }

    /// The bytes of queue position `q` of `nq`'s first frames (frame n of the run
    /// is the file's frame n mod F).
    pub fn size_cycle(&self, q: u64, nq: u64) -> profiles::template::SizeCycle {
        profiles::template::SizeCycle::of(q, nq, self.len() as u64, |n| self.frame(n).len())
    }

    /// Mean frame length (bytes, no FCS).
    pub fn mean_len(&self) -> f64 {
        self.frames.iter().map(Vec::len).sum::<usize>() as f64 / self.len() as f64
    }

    /// Refuses the first frame longer than `max` (the UMEM frame, the MTU + 14).
    pub fn check_sizes(&self, max: usize, why: &str) -> Result<()> {
        if let Some((i, f)) = self.frames.iter().enumerate().find(|(_, f)| f.len() > max) {
            bail!(
                "--pcap: frame {} of {} is {} bytes, longer than {max} ({why}): cut the capture (editcap -s) or raise the MTU",
                i + 1,
                self.path,
                f.len()
            );
        }
        Ok(())
    }

    /// Rewrites every frame's destination MAC and/or IP destination: an IPv4
    /// address goes into the IPv4 frames (fixing the header checksum and the UDP/TCP
    /// checksum), an IPv6 one into the IPv6 frames (fixing the UDP/TCP/ICMPv6
    /// checksum over the new pseudo-header); frames of the other version keep their
    /// bytes. An address whose version no frame has is refused (one line).
    pub fn rewrite(&mut self, dst_mac: Option<[u8; 6]>, dst_ip: Option<IpAddr>) -> Result<()> {
        if let Some(a) = dst_ip {
            let want = if a.is_ipv4() { 4 } else { 6 };
            let of_version = |v| {
                self.frames
                    .iter()
                    .filter(|f| ip_version(f) == Some(v))
                    .count()
            };
            if of_version(want) == 0 {
                let (n4, n6) = (of_version(4), of_version(6));
                bail!(
                    "--dst-ip {a} is IPv{want} but {} holds no IPv{want} frame ({n4} IPv4, {n6} IPv6, {} other): give an IPv{} address or leave --dst-ip out",
                    self.path,
                    self.len() - n4 - n6,
                    if want == 4 { 6 } else { 4 }
                );
            }
        }
        for f in &mut self.frames {
            if let Some(m) = dst_mac
                && f.len() >= 6
            {
                f[..6].copy_from_slice(&m);
            }
            match dst_ip {
                Some(IpAddr::V4(a)) => {
                    set_ipv4_dst(f, a.octets());
                }
                Some(IpAddr::V6(a)) => {
                    set_ipv6_dst(f, a.octets());
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Where an Ethernet frame's IP header starts (VLAN tags skipped) and its version
/// (4 or 6; the EtherType and the header's version field agree). None for anything
/// else, and for a frame too short to hold the fixed header.
fn ip_header(f: &[u8]) -> Option<(usize, u8)> {
    let mut off = 12;
    while f.len() >= off + 2 && matches!(u16::from_be_bytes([f[off], f[off + 1]]), 0x8100 | 0x88a8)
    {
        off += 4;
    }
    if f.len() < off + 2 {
        return None;
    }
    let ip = off + 2;
    let (version, fixed) = match u16::from_be_bytes([f[off], f[off + 1]]) {
        0x0800 => (4, 20),
        0x86dd => (6, 40),
        _ => return None,
    };
    (f.len() >= ip + fixed && f[ip] >> 4 == version).then_some((ip, version))
}

/// The IP version of an Ethernet frame (4, 6, or None: not IP or too short).
pub fn ip_version(f: &[u8]) -> Option<u8> {
    ip_header(f).map(|(_, v)| v)
}

/// Updates the transport checksum at `at` for a pseudo-header address changed from
/// `old` to `new` (RFC 1624: HC' = ~(~HC + ~m + m') over the address words). `udp`:
/// a zero checksum (none, over IPv4) stays zero and a result of zero is sent as
/// 0xffff.
fn update_l4_sum(f: &mut [u8], at: usize, udp: bool, old: &[u8], new: &[u8]) {
    if f.len() < at + 2 {
        return;
    }
    let cur = u16::from_be_bytes([f[at], f[at + 1]]);
    if udp && cur == 0 {
        return;
    }
    let mut acc = u64::from(!cur);
    for w in old.chunks_exact(2) {
        acc += u64::from(!u16::from_be_bytes([w[0], w[1]]));
    }
    acc = checksum::add(acc, new);
    let mut sum = !checksum::fold(acc);
    if udp && sum == 0 {
        sum = 0xffff;
    }
    f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Sets the IPv4 destination of an Ethernet frame (VLAN tags skipped), recomputing
/// the header checksum and updating the UDP/TCP checksum for the new address. Frames
/// that are not IPv4 (or too short to hold the header) are left alone; true if the
/// address was set.
pub fn set_ipv4_dst(f: &mut [u8], dst: [u8; 4]) -> bool {
    let Some((ip, 4)) = ip_header(f) else {
        return false;
    };
    let ihl = usize::from(f[ip] & 0x0f) * 4;
    if ihl < 20 || f.len() < ip + ihl {
        return false;
    }
    let old: [u8; 4] = [f[ip + 16], f[ip + 17], f[ip + 18], f[ip + 19]];
    f[ip + 16..ip + 20].copy_from_slice(&dst);
    f[ip + 10] = 0;
    f[ip + 11] = 0;
    let c = checksum::ipv4_header(&f[ip..ip + ihl]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    // Transport checksum: only the first fragment carries the header.
    let frag_off = u16::from_be_bytes([f[ip + 6], f[ip + 7]]) & 0x1fff;
    if frag_off != 0 {
        return true;
    }
    let l4 = ip + ihl;
    match f[ip + 9] {
        17 => update_l4_sum(f, l4 + 6, true, &old, &dst),
        6 => update_l4_sum(f, l4 + 16, false, &old, &dst),
        _ => {}
    }
    true
}

/// Sets the IPv6 destination of an Ethernet frame (VLAN tags skipped) and updates
/// the UDP/TCP/ICMPv6 checksum for the new pseudo-header. Extension headers
/// (hop-by-hop, destination options, routing, fragment) are walked to the transport
/// header; a non-first fragment carries none, and behind a routing header with
/// segments left the pseudo-header holds the final destination, not this one, so
/// neither checksum changes. Frames that are not IPv6 are left alone; true if the
/// address was set.
pub fn set_ipv6_dst(f: &mut [u8], dst: [u8; 16]) -> bool {
    let Some((ip, 6)) = ip_header(f) else {
        return false;
    };
    let mut old = [0u8; 16];
    old.copy_from_slice(&f[ip + 24..ip + 40]);
    f[ip + 24..ip + 40].copy_from_slice(&dst);
    let mut next = f[ip + 6];
    let mut l4 = ip + 40;
    loop {
        if f.len() < l4 + 8 {
            return true;
        }
        match next {
            // Hop-by-hop, destination options: 8 * (1 + length) bytes.
            0 | 60 => {}
            // Routing: with segments left, the pseudo-header's is the final address.
            43 if f[l4 + 3] != 0 => return true,
            43 => {}
            // Fragment: 8 bytes; only the first fragment holds the transport header.
            44 => {
                if u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]) >> 3 != 0 {
                    return true;
                }
                next = f[l4];
                l4 += 8;
                continue;
            }
            _ => break,
        }
        next = f[l4];
        l4 += 8 * (1 + usize::from(f[l4 + 1]));
    }
    match next {
        17 => update_l4_sum(f, l4 + 6, true, &old, &dst),
        6 => update_l4_sum(f, l4 + 16, false, &old, &dst),
        58 => update_l4_sum(f, l4 + 2, false, &old, &dst),
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp_frame(vlan: bool) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let payload = b"hello replay";
        let udp_len = 8 + payload.len();
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        let c = checksum::ipv4_header(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut udp = vec![0x30, 0x39, 0x00, 0x35];
        udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let c = checksum::udp4([10, 0, 0, 1], [10, 0, 0, 2], &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&udp);
        f
    }

    #[test]
    fn dst_ip_rewrite_keeps_both_checksums_right() {
        for vlan in [false, true] {
            let mut f = udp_frame(vlan);
            set_ipv4_dst(&mut f, [198, 18, 7, 9]);
            let ip = if vlan { 18 } else { 14 };
            assert_eq!(&f[ip + 16..ip + 20], &[198, 18, 7, 9]);
            assert_eq!(checksum::of(&f[ip..ip + 20]), 0, "IPv4 header checksum");
            let mut udp = f[ip + 20..].to_vec();
            let got = u16::from_be_bytes([udp[6], udp[7]]);
            udp[6] = 0;
            udp[7] = 0;
            assert_eq!(got, checksum::udp4([10, 0, 0, 1], [198, 18, 7, 9], &udp));
        }
    }

    #[test]
    fn non_ipv4_and_short_frames_are_left_alone() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let before = arp.clone();
        set_ipv4_dst(&mut arp, [1, 2, 3, 4]);
        assert_eq!(arp, before);
        let mut short = udp_frame(false)[..20].to_vec();
        let before = short.clone();
        set_ipv4_dst(&mut short, [1, 2, 3, 4]);
        assert_eq!(short, before);
    }

    #[test]
    fn schedule_scales_and_loops() {
        let r = Replay {
            path: "x".into(),
            frames: vec![vec![0; 60], vec![0; 100], vec![0; 200]],
            offsets_ns: vec![0, 400_000_000, 1_000_000_000],
            loops: 2,
            // A pass: 1 s span + 0.5 s mean gap; at speed 2, 0.75 s.
            speed: 2.0,
            rate_pps: None,
        };
        assert_eq!(r.total(), 6);
        assert_eq!(r.due_ns(1), 200_000_000.0);
        assert_eq!(r.due_ns(2), 500_000_000.0);
        assert_eq!(r.due_ns(3), 750_000_000.0);
        assert_eq!(r.due_ns(5), 1_250_000_000.0);
        assert_eq!(r.frame(4).len(), 100);
        let c = Replay {
            rate_pps: Some(1000.0),
            ..r
        };
        assert_eq!(c.due_ns(5), 5_000_000.0);
    }
}
