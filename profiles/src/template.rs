//! Frame templates: a profile turned into the bytes of its first frame, plus the short
//! list of patches that make frame `n` from it. The hot path never allocates: buffers
//! (UMEM frames) are filled once with [`Template::fill`], and [`Template::write`] then
//! rewrites only the varying bytes and the two checksums.
//!
//! Checksums are recomputed, not patched word by word: at build time each checksum's
//! coverage is split into the bytes that never change (summed once into `base`) and the
//! even-aligned windows around patched bytes (summed per packet). A 64-byte frame costs
//! a few dozen additions; the result is always exact, whatever the previous contents of
//! the buffer were.
//!
//! Frame `n` is numbered over the whole run: with Q queues, queue q sends n = q, q+Q,
//! q+2Q, ... so every field is a pure function of n and runs are reproducible.

use crate::names::NameSet;
use crate::profile::{Field, Order, Profile, VaryKind};
use crate::wire::{checksum, dns, probe, udp4};

/// Options that change the frames beyond the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// Carry a [`probe`] payload (sequence number and TX timestamp) at the start of the
    /// UDP payload. Not for DNS profiles.
    pub stamp: bool,
}

/// Why a template cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("--stamp needs a non-DNS profile (a DNS query has no room for the probe payload)")]
    StampOnDns,
    #[error(
        "--stamp needs at least {need} bytes of UDP payload; frame_size {frame_size} leaves {have}"
    )]
    StampTooSmall {
        frame_size: usize,
        have: usize,
        need: usize,
    },
}

/// One varying header field: offset and width in the frame, and how it varies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub field: Field,
    pub offset: usize,
    pub width: usize,
    pub kind: VaryKind,
}

/// How DNS queries vary: ID and source port from `n`, and the name's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPatch {
    /// Offset of the DNS ID in the frame.
    pub id_at: usize,
    /// Offset of the UDP source port.
    pub port_at: usize,
    pub first_port: u16,
    pub ports: u32,
    /// Offset of the varying label's first character (unused for a single name).
    pub label_at: usize,
    pub names: NameSet,
    pub order: Order,
    pub seed: u64,
}

impl DnsPatch {
    /// The name index frame `n` asks for.
    #[inline]
    pub fn name_index(&self, n: u64) -> u64 {
        match self.order {
            Order::Sequential => n % self.names.count(),
            Order::Random => splitmix64(n ^ self.seed) % self.names.count(),
        }
    }
    /// DNS ID of frame `n`.
    #[inline]
    pub fn id(n: u64) -> u16 {
        n as u16
    }
    /// UDP source port of frame `n`.
    #[inline]
    pub fn port(&self, n: u64) -> u16 {
        self.first_port + ((n >> 16) % u64::from(self.ports)) as u16
    }
}

#[derive(Debug, Clone)]
struct Csum {
    /// Offset of the checksum field.
    at: usize,
    /// Sum of everything that never changes (constant pseudo-header words included).
    base: u64,
    /// Even-aligned windows summed per packet.
    windows: Vec<(usize, usize)>,
    /// UDP: a computed zero is sent as 0xffff.
    udp: bool,
}

impl Csum {
    fn new(
        frame: &[u8],
        at: usize,
        coverage: &[(usize, usize)],
        constant: u64,
        patched: &[(usize, usize)],
        udp: bool,
    ) -> Csum {
        // Windows: patched ranges widened to even offsets, clipped to the coverage.
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for &(cs, ce) in coverage {
            let mut ws: Vec<(usize, usize)> = patched
                .iter()
                .map(|&(s, e)| (s & !1, (e + 1) & !1))
                .map(|(s, e)| (s.max(cs), e.min(ce)))
                .filter(|(s, e)| s < e)
                .collect();
            ws.sort_unstable();
            // Merge overlaps within this coverage range only, so each window lies inside
            // one range (the base loop below relies on it).
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for w in ws {
                match merged.last_mut() {
                    Some((_, le)) if *le >= w.0 => *le = (*le).max(w.1),
                    _ => merged.push(w),
                }
            }
            windows.extend(merged);
        }
        let mut base = constant;
        for &(cs, ce) in coverage {
            let mut pos = cs;
            for &(ws, we) in windows.iter().filter(|(s, e)| *s >= cs && *e <= ce) {
                base = checksum::add(base, &frame[pos..ws]);
                pos = we;
            }
            base = checksum::add(base, &frame[pos..ce]);
        }
        Csum {
            at,
            base,
            windows,
            udp,
        }
    }

    #[inline]
    fn apply(&self, buf: &mut [u8]) {
        buf[self.at..self.at + 2].fill(0);
        let mut acc = self.base;
        for &(s, e) in &self.windows {
            acc = checksum::add(acc, &buf[s..e]);
        }
        let mut c = !checksum::fold(acc);
        if self.udp && c == 0 {
            c = 0xffff;
        }
        buf[self.at..self.at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// A profile's frames.
#[derive(Debug, Clone)]
pub struct Template {
    frame: Vec<u8>,
    patches: Vec<Patch>,
    dns: Option<DnsPatch>,
    stamp_at: Option<usize>,
    ip_csum: Csum,
    udp_csum: Csum,
    varies: bool,
}

impl Template {
    /// Builds the template of `profile`.
    pub fn new(profile: &Profile, opts: TemplateOptions) -> Result<Template, TemplateError> {
        let len = profile.buffer_len();
        let mut f = vec![0u8; len];
        let ip_at = udp4::ETH_LEN;
        let udp_at = ip_at + udp4::IPV4_LEN;
        let pay_at = udp_at + udp4::UDP_LEN;

        // UDP payload: a DNS query, or zeros (a probe is written per packet).
        let payload_len = match &profile.dns {
            Some(d) => {
                if opts.stamp {
                    return Err(TemplateError::StampOnDns);
                }
                let name = d.names.wire_name(0);
                let q = dns::QueryRepr {
                    id: 0,
                    rd: d.rd,
                    name: &name,
                    qtype: d.qtype,
                    qclass: dns::CLASS_IN,
                };
                q.emit(&mut dns::Packet::new_unchecked(
                    &mut f[pay_at..pay_at + q.buffer_len()],
                ));
                q.buffer_len()
            }
            None => len - pay_at,
        };
        if opts.stamp && payload_len < probe::LEN {
            return Err(TemplateError::StampTooSmall {
                frame_size: profile.frame_size,
                have: payload_len,
                need: probe::LEN,
            });
        }
        let udp_len = udp4::UDP_LEN + payload_len;
        let ip_total = udp4::IPV4_LEN + udp_len;

        f[0..6].copy_from_slice(&profile.eth_dst);
        f[6..12].copy_from_slice(&profile.eth_src);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[ip_at..udp_at];
        ip[0] = 0x45;
        ip[1] = profile.tos;
        ip[2..4].copy_from_slice(&(ip_total as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, ID 0
        ip[8] = profile.ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&profile.ip_src.octets());
        ip[16..20].copy_from_slice(&profile.ip_dst.octets());
        let udp = &mut f[udp_at..pay_at];
        udp[0..2].copy_from_slice(&profile.udp_src.to_be_bytes());
        udp[2..4].copy_from_slice(&profile.udp_dst.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());

        let patches: Vec<Patch> = profile
            .vary
            .iter()
            .map(|v| Patch {
                field: v.field,
                offset: v.field.offset(),
                width: v.field.width(),
                kind: v.kind.clone(),
            })
            .collect();
        let dns_patch = profile.dns.as_ref().map(|d| DnsPatch {
            id_at: pay_at,
            port_at: udp_at,
            first_port: profile.udp_src,
            ports: d.src_ports,
            label_at: pay_at + dns::HEADER_LEN + 1,
            names: d.names.clone(),
            order: d.order,
            seed: 0x00d1_5eed,
        });
        let stamp_at = opts.stamp.then_some(pay_at);

        let mut patched: Vec<(usize, usize)> = patches
            .iter()
            .map(|p| (p.offset, p.offset + p.width))
            .collect();
        if let Some(d) = &dns_patch {
            patched.push((d.id_at, d.id_at + 2));
            patched.push((d.port_at, d.port_at + 2));
            if d.names.label_len() > 0 {
                patched.push((d.label_at, d.label_at + d.names.label_len()));
            }
        }
        if let Some(s) = stamp_at {
            patched.push((s, s + probe::LEN));
        }
        let ip_csum = Csum::new(&f, ip_at + 10, &[(ip_at, udp_at)], 0, &patched, false);
        let udp_csum = Csum::new(
            &f,
            udp_at + 6,
            &[(ip_at + 12, udp_at), (udp_at, udp_at + udp_len)],
            17 + udp_len as u64,
            &patched,
            true,
        );
        let varies = !patched.is_empty();
        let mut t = Template {
            frame: f,
            patches,
            dns: dns_patch,
            stamp_at,
            ip_csum,
            udp_csum,
            varies,
        };
        let mut first = t.frame.clone();
        t.write(&mut first, 0, None);
        // write() skips identical frames entirely, so frame 0 gets its checksums here.
        t.ip_csum.apply(&mut first);
        t.udp_csum.apply(&mut first);
        t.frame = first;
        Ok(t)
    }

    /// Buffer length of every frame (no FCS).
    pub fn len(&self) -> usize {
        self.frame.len()
    }
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
    /// Frame 0.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
    /// The varying header fields.
    pub fn patches(&self) -> &[Patch] {
        &self.patches
    }
    /// How DNS queries vary, for DNS profiles.
    pub fn dns(&self) -> Option<&DnsPatch> {
        self.dns.as_ref()
    }
    /// Offset of the probe payload when stamping.
    pub fn stamp_at(&self) -> Option<usize> {
        self.stamp_at
    }
    /// False when every frame is identical (then [`Template::write`] only needs the fill).
    pub fn varies(&self) -> bool {
        self.varies
    }

    /// Copies frame 0 into `buf` (at least [`Template::len`] bytes); do this once per
    /// reused buffer.
    pub fn fill(&self, buf: &mut [u8]) {
        buf[..self.frame.len()].copy_from_slice(&self.frame);
    }

    /// Turns a buffer holding any frame of this template into frame `n`, with `probe`
    /// written when stamping. No allocation.
    #[inline]
    pub fn write(&self, buf: &mut [u8], n: u64, probe: Option<probe::Repr>) {
        if !self.varies {
            return;
        }
        for p in &self.patches {
            let v = match &p.kind {
                VaryKind::Increment { min, max, step } => {
                    let span = max - min + 1;
                    min + ((n as u128 * u128::from(*step)) % u128::from(span)) as u64
                }
                VaryKind::Random { min, max, seed } => {
                    let span = max - min + 1;
                    min + ((u128::from(splitmix64(n ^ seed)) * u128::from(span)) >> 64) as u64
                }
                VaryKind::List(vals) => vals[(n % vals.len() as u64) as usize],
            };
            let bytes = v.to_be_bytes();
            buf[p.offset..p.offset + p.width].copy_from_slice(&bytes[8 - p.width..]);
        }
        if let Some(d) = &self.dns {
            buf[d.id_at..d.id_at + 2].copy_from_slice(&DnsPatch::id(n).to_be_bytes());
            buf[d.port_at..d.port_at + 2].copy_from_slice(&d.port(n).to_be_bytes());
            let ll = d.names.label_len();
            if ll > 0 {
                d.names
                    .write_label(d.name_index(n), &mut buf[d.label_at..d.label_at + ll]);
            }
        }
        if let (Some(at), Some(pr)) = (self.stamp_at, probe) {
            pr.emit(&mut probe::Packet::new_unchecked(
                &mut buf[at..at + probe::LEN],
            ));
        }
        self.ip_csum.apply(buf);
        self.udp_csum.apply(buf);
    }

    /// Frame `n` as a new vector (tests, tools; not the hot path).
    pub fn frame_for(&self, n: u64, probe: Option<probe::Repr>) -> Vec<u8> {
        let mut b = self.frame.clone();
        self.write(&mut b, n, probe);
        b
    }
}

/// SplitMix64: a fast, well-mixed hash of a 64-bit counter.
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
