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
//!
//! VLAN tags move everything after the Ethernet addresses ([`Profile::layout`]); TCP
//! profiles carry a TCP header with options instead of UDP. An IMIX profile has one
//! variant per size (its own lengths and checksum bases): [`Template::fill`] writes the
//! largest, and [`Template::write`] restores the headers of frame n's size, so a
//! reused buffer can hold frames of any size in turn; it returns frame n's length.

use crate::names::NameSet;
use crate::profile::{FCS_LEN, Field, Layout, MAX_FLOW_LABEL, Order, Profile, VaryKind};
use crate::wire::{checksum, dns, probe, tcp};

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
    /// Bits ORed into every value: a VLAN tag's priority and DEI above its 12-bit ID
    /// (the value is at most 4094, so OR and addition agree).
    pub or_bits: u64,
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
    zero_as_ffff: bool,
}

impl Csum {
    fn new(
        frame: &[u8],
        at: usize,
        coverage: &[(usize, usize)],
        constant: u64,
        patched: &[(usize, usize)],
        zero_as_ffff: bool,
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
            zero_as_ffff,
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
        if self.zero_as_ffff && c == 0 {
            c = 0xffff;
        }
        buf[self.at..self.at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// One frame size of a template: frame bytes with this size's lengths, and the
/// checksums' constant parts for it.
#[derive(Debug, Clone)]
struct Variant {
    frame: Vec<u8>,
    /// The IPv4 header checksum; IPv6 has none.
    ip_csum: Option<Csum>,
    l4_csum: Csum,
}

/// A profile's frames.
#[derive(Debug, Clone)]
pub struct Template {
    /// Frame 0.
    frame: Vec<u8>,
    /// What [`Template::fill`] writes: frame 0, or for a mix a frame of the largest size.
    fill: Vec<u8>,
    /// One per size (one for a single size).
    variants: Vec<Variant>,
    /// IMIX: the variant of frame n is `schedule[n % len]`; empty for a single size.
    schedule: Vec<u16>,
    /// Bytes restored from frame n's variant when sizes vary (the headers).
    header_len: usize,
    patches: Vec<Patch>,
    dns: Option<DnsPatch>,
    stamp_at: Option<usize>,
    varies: bool,
    layout: Layout,
    tcp: bool,
}

/// The bytes a queue's frames add up to, from the size of each (queue position q of
/// nq sends frames n = q, q + nq, ...). Built once per queue; [`SizeCycle::bytes`]
/// is O(1).
#[derive(Debug, Clone)]
pub struct SizeCycle {
    /// prefix[c]: bytes of the queue's first c frames of a cycle (no FCS).
    prefix: Vec<u64>,
}

impl SizeCycle {
    /// The cycle of queue position `q` of `nq` over frames whose sizes repeat every
    /// `period` frames (`len_of(n)`: frame n's buffer length, no FCS). A template's
    /// period is its IMIX schedule, a replayed capture's its frame count.
    pub fn of(q: u64, nq: u64, period: u64, len_of: impl Fn(u64) -> usize) -> SizeCycle {
        let p = period.max(1);
        let nq = nq.max(1);
        let l = p / gcd(p, nq);
        let mut prefix = Vec::with_capacity(l as usize + 1);
        prefix.push(0u64);
        let mut acc = 0u64;
        for c in 0..l {
            acc += len_of(q + c * nq) as u64;
            prefix.push(acc);
        }
        SizeCycle { prefix }
    }

    /// Bytes (no FCS) of the queue's first `m` frames.
    pub fn bytes(&self, m: u64) -> u64 {
        let l = (self.prefix.len() - 1) as u64;
        let total = self.prefix[self.prefix.len() - 1];
        (m / l) * total + self.prefix[(m % l) as usize]
    }
}

impl Template {
    /// Builds the template of `profile`.
    pub fn new(profile: &Profile, opts: TemplateOptions) -> Result<Template, TemplateError> {
        let lay = profile.layout();
        let ip_at = lay.ip_at;
        let l4_at = lay.l4_at;
        let pay_at = lay.payload_at;
        let sizes: Vec<usize> = match &profile.imix {
            Some(m) => m.sizes.clone(),
            None => vec![profile.frame_size],
        };
        if opts.stamp && profile.dns.is_some() {
            return Err(TemplateError::StampOnDns);
        }
        if let Some(&smallest) = sizes.iter().min()
            && opts.stamp
            && smallest - FCS_LEN < pay_at + probe::LEN
        {
            return Err(TemplateError::StampTooSmall {
                frame_size: smallest,
                have: (smallest - FCS_LEN).saturating_sub(pay_at),
                need: probe::LEN,
            });
        }

        let patches: Vec<Patch> = profile
            .vary
            .iter()
            .map(|v| Patch {
                field: v.field,
                offset: v.field.offset(&lay),
                width: v.field.width(),
                kind: v.kind.clone(),
                or_bits: match v.field {
                    Field::VlanId => u64::from(profile.vlans[0].tci_high()),
                    Field::InnerVlanId => u64::from(profile.vlans[1].tci_high()),
                    _ => 0,
                },
            })
            .collect();
        let dns_patch = profile.dns.as_ref().map(|d| DnsPatch {
            id_at: pay_at,
            port_at: l4_at,
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

        let variants: Vec<Variant> = sizes
            .iter()
            .map(|&size| {
                let f = build_frame(profile, size - FCS_LEN);
                let proto: u8 = if profile.tcp.is_some() { 6 } else { 17 };
                let csum_at = if profile.tcp.is_some() { 16 } else { 6 };
                // The pseudo-header's addresses: IPv4's at 12..20, IPv6's at 8..40; its
                // length and protocol are constant. IPv6 has no header checksum, and its
                // UDP checksum is mandatory (a computed zero is sent as 0xffff too).
                let (l4_len, ip_csum, addrs_at) = if lay.ipv6 {
                    let l4_len = u16::from_be_bytes([f[ip_at + 4], f[ip_at + 5]]) as usize;
                    (l4_len, None, ip_at + 8)
                } else {
                    let ip_total = u16::from_be_bytes([f[ip_at + 2], f[ip_at + 3]]) as usize;
                    let ip_csum = Csum::new(&f, ip_at + 10, &[(ip_at, l4_at)], 0, &patched, false);
                    (ip_total - (l4_at - ip_at), Some(ip_csum), ip_at + 12)
                };
                let l4_csum = Csum::new(
                    &f,
                    l4_at + csum_at,
                    &[(addrs_at, l4_at), (l4_at, l4_at + l4_len)],
                    u64::from(proto) + l4_len as u64,
                    &patched,
                    profile.tcp.is_none(),
                );
                Variant {
                    frame: f,
                    ip_csum,
                    l4_csum,
                }
            })
            .collect();
        let schedule: Vec<u16> = match &profile.imix {
            Some(m) => m.schedule().into_iter().map(|i| i as u16).collect(),
            None => Vec::new(),
        };
        let varies = !patched.is_empty() || !schedule.is_empty();
        let largest = (0..variants.len())
            .max_by_key(|&i| (variants[i].frame.len(), usize::MAX - i))
            .unwrap_or(0);
        let mut t = Template {
            frame: Vec::new(),
            fill: variants[largest].frame.clone(),
            variants,
            schedule,
            header_len: pay_at,
            patches,
            dns: dns_patch,
            stamp_at,
            varies,
            layout: lay,
            tcp: profile.tcp.is_some(),
        };
        // write() skips identical frames entirely, so these get their checksums here.
        let v0 = &t.variants[t.variant_of(0)];
        let mut first = v0.frame.clone();
        t.write(&mut first, 0, None);
        if let Some(c) = &v0.ip_csum {
            c.apply(&mut first);
        }
        v0.l4_csum.apply(&mut first);
        if t.schedule.is_empty() {
            t.fill = first.clone();
        } else {
            let mut big = t.fill.clone();
            let n = t
                .schedule
                .iter()
                .position(|&v| usize::from(v) == largest)
                .unwrap_or(0);
            t.write(&mut big, n as u64, None);
            t.fill = big;
        }
        t.frame = first;
        Ok(t)
    }

    #[inline]
    fn variant_of(&self, n: u64) -> usize {
        if self.schedule.is_empty() {
            0
        } else {
            usize::from(self.schedule[(n % self.schedule.len() as u64) as usize])
        }
    }

    /// Buffer length (no FCS) a frame needs: every frame's, or the largest of a mix.
    pub fn len(&self) -> usize {
        self.fill.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fill.is_empty()
    }
    /// Buffer length (no FCS) of frame `n`.
    #[inline]
    pub fn len_of(&self, n: u64) -> usize {
        self.variants[self.variant_of(n)].frame.len()
    }
    /// True when frames have different sizes (IMIX).
    pub fn sizes_vary(&self) -> bool {
        !self.schedule.is_empty()
    }
    /// Buffer length (no FCS) of each size of the profile, in its order (one for a
    /// single size).
    pub fn sizes(&self) -> Vec<usize> {
        self.variants.iter().map(|v| v.frame.len()).collect()
    }
    /// IMIX: frame n has size `sizes()[schedule()[n % schedule().len()]]`; empty for
    /// a single size.
    pub fn schedule(&self) -> &[u16] {
        &self.schedule
    }
    /// What [`Template::fill`] copies: frame 0, or a frame of the largest size.
    pub fn fill_frame(&self) -> &[u8] {
        &self.fill
    }
    /// Mean buffer length (no FCS) over the size schedule.
    pub fn mean_len(&self) -> f64 {
        if self.schedule.is_empty() {
            return self.fill.len() as f64;
        }
        let sum: usize = (0..self.schedule.len() as u64)
            .map(|n| self.len_of(n))
            .sum();
        sum as f64 / self.schedule.len() as f64
    }
    /// The size cycle of queue position `q` of `nq` (see [`SizeCycle`]).
    pub fn size_cycle(&self, q: u64, nq: u64) -> SizeCycle {
        SizeCycle::of(q, nq, self.schedule.len() as u64, |n| self.len_of(n))
    }
    /// Where the headers start (after the VLAN tags).
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// True for TCP segments (the transport checksum at offset 16, zero sent as is);
    /// false for UDP (offset 6, a computed zero sent as 0xffff).
    pub fn is_tcp(&self) -> bool {
        self.tcp
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

    /// Copies a frame of the largest size into `buf` (at least [`Template::len`]
    /// bytes); do this once per reused buffer. For a single size this is frame 0.
    pub fn fill(&self, buf: &mut [u8]) {
        buf[..self.fill.len()].copy_from_slice(&self.fill);
    }

    /// Turns a buffer holding any frame of this template into frame `n`, with `probe`
    /// written when stamping, and returns frame n's length (no FCS). No allocation.
    #[inline]
    pub fn write(&self, buf: &mut [u8], n: u64, probe: Option<probe::Repr>) -> usize {
        let var = &self.variants[self.variant_of(n)];
        if !self.varies {
            return var.frame.len();
        }
        if !self.schedule.is_empty() {
            buf[..self.header_len].copy_from_slice(&var.frame[..self.header_len]);
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
            } | p.or_bits;
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
        if let Some(c) = &var.ip_csum {
            c.apply(buf);
        }
        var.l4_csum.apply(buf);
        var.frame.len()
    }

    /// Frame `n` as a new vector (tests, tools; not the hot path).
    pub fn frame_for(&self, n: u64, probe: Option<probe::Repr>) -> Vec<u8> {
        let mut b = self.fill.clone();
        let len = self.write(&mut b, n, probe);
        b.truncate(len);
        b
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The frame of `profile` with `len` bytes (no FCS), checksums zero: Ethernet (and
/// VLAN tags), IPv4 or IPv6, UDP or TCP, then a DNS query or zeros. The IPv4 and UDP lengths
/// cover the whole buffer, except for DNS (the query's length; zero padding after).
fn build_frame(profile: &Profile, len: usize) -> Vec<u8> {
    let lay = profile.layout();
    let (ip_at, l4_at, pay_at) = (lay.ip_at, lay.l4_at, lay.payload_at);
    let mut f = vec![0u8; len];
    let payload_len = match &profile.dns {
        Some(d) => {
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
    let l4_len = pay_at - l4_at + payload_len;
    let ip_total = (l4_at - ip_at) + l4_len;

    f[0..6].copy_from_slice(&profile.eth_dst);
    f[6..12].copy_from_slice(&profile.eth_src);
    let mut at = 12;
    for tag in &profile.vlans {
        f[at..at + 2].copy_from_slice(&tag.tpid.to_be_bytes());
        f[at + 2..at + 4].copy_from_slice(&(tag.tci_high() | tag.id).to_be_bytes());
        at += 4;
    }
    let ether_type: u16 = if profile.ipv6.is_some() {
        0x86dd
    } else {
        0x0800
    };
    f[at..at + 2].copy_from_slice(&ether_type.to_be_bytes());
    let proto: u8 = if profile.tcp.is_some() { 6 } else { 17 };
    let ip = &mut f[ip_at..l4_at];
    match &profile.ipv6 {
        Some(v6) => {
            let word = (6u32 << 28)
                | (u32::from(v6.traffic_class) << 20)
                | (v6.flow_label & MAX_FLOW_LABEL);
            ip[0..4].copy_from_slice(&word.to_be_bytes());
            ip[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            ip[6] = proto;
            ip[7] = v6.hop_limit;
            ip[8..24].copy_from_slice(&v6.src.octets());
            ip[24..40].copy_from_slice(&v6.dst.octets());
        }
        None => {
            ip[0] = 0x45;
            ip[1] = profile.tos;
            ip[2..4].copy_from_slice(&(ip_total as u16).to_be_bytes());
            ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF, ID 0
            ip[8] = profile.ttl;
            ip[9] = proto;
            ip[12..16].copy_from_slice(&profile.ip_src.octets());
            ip[16..20].copy_from_slice(&profile.ip_dst.octets());
        }
    }
    let l4 = &mut f[l4_at..pay_at];
    match &profile.tcp {
        Some(t) => {
            l4[0..2].copy_from_slice(&t.src_port.to_be_bytes());
            l4[2..4].copy_from_slice(&t.dst_port.to_be_bytes());
            l4[4..8].copy_from_slice(&t.seq.to_be_bytes());
            l4[8..12].copy_from_slice(&t.ack.to_be_bytes());
            l4[12] = (((tcp::HEADER_LEN + t.options.len()) / 4) as u8) << 4;
            l4[13] = t.flags;
            l4[14..16].copy_from_slice(&t.window.to_be_bytes());
            l4[tcp::HEADER_LEN..].copy_from_slice(&t.options);
        }
        None => {
            l4[0..2].copy_from_slice(&profile.udp_src.to_be_bytes());
            l4[2..4].copy_from_slice(&profile.udp_dst.to_be_bytes());
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
    }
    f
}

/// SplitMix64: a fast, well-mixed hash of a 64-bit counter.
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
