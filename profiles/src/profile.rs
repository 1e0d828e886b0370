//! Profiles: what goes on the wire, read from TOML in two stages (as ripgrep does with
//! its flags). Each file is parsed into raw values with their spans and checked on its
//! own, so every error names the file, the line and the key; then a child is laid over
//! its `parent` (key by key; a child's `vary` list replaces the parent's) and the
//! result is resolved into a [`Profile`], the plan the tools use.
//!
//! Shipped profiles are embedded (see [`SHIPPED`]); a path works wherever a name does.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::toml_lines::{Invalid, Spanned, TomlFile};
use crate::units::{parse_ipv4, parse_ipv6};

use crate::names::NameSet;
use crate::wire::{dns, tcp, udp};

/// Shipped profiles: name and TOML text.
pub const SHIPPED: &[(&str, &str)] = &[
    ("min-multi-flow", include_str!("../min-multi-flow.toml")),
    ("min-single-flow", include_str!("../min-single-flow.toml")),
    ("dns-ping", include_str!("../dns-ping.toml")),
    ("dns-small", include_str!("../dns-small.toml")),
    ("dns-large", include_str!("../dns-large.toml")),
    (
        "min-multi-flow-vlan",
        include_str!("../min-multi-flow-vlan.toml"),
    ),
    (
        "min-multi-flow-qinq",
        include_str!("../min-multi-flow-qinq.toml"),
    ),
    ("syn-flood", include_str!("../syn-flood.toml")),
    ("imix", include_str!("../imix.toml")),
    (
        "min-multi-flow-v6",
        include_str!("../min-multi-flow-v6.toml"),
    ),
    ("dns-small-v6", include_str!("../dns-small-v6.toml")),
];

/// Addresses a profile gets when it names none: the lab's generator and DUT hosts
/// (RFC 2544 benchmarking range, locally administered MACs).
pub mod defaults {
    pub const GEN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    pub const DUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    pub const GEN_IP: [u8; 4] = [198, 18, 0, 1];
    pub const DUT_IP: [u8; 4] = [198, 18, 0, 2];
    pub const UDP_SRC_PORT: u16 = 1024;
    pub const UDP_DST_PORT: u16 = 9;
    pub const TTL: u8 = 64;
    /// IPv6 addresses of the generator and DUT hosts (2001:db8::/32, documentation).
    pub const GEN_IP6: std::net::Ipv6Addr =
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    pub const DUT_IP6: std::net::Ipv6Addr =
        std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    pub const HOP_LIMIT: u8 = 64;
    /// First address of the DNS answers (RFC 6598 shared space: 2^22 addresses).
    pub const DNS_ANSWER_BASE: [u8; 4] = [100, 64, 0, 0];
    pub const DNS_TTL: u32 = 300;
    pub const DNS_SRC_PORTS: u32 = 1024;
    pub const DNS_SRC_PORT: u16 = 10000;
    pub const TCP_DST_PORT: u16 = 80;
    /// Linux's initial receive window for a 1460-byte MSS.
    pub const TCP_WINDOW: u16 = 64240;
}

/// Smallest frame on the wire, FCS included.
pub const MIN_FRAME_SIZE: usize = 64;
/// Largest frame on the wire, FCS included (untagged standard Ethernet).
pub const MAX_FRAME_SIZE: usize = 1518;
/// FCS length: on the wire, not in the buffers we build.
pub const FCS_LEN: usize = 4;

/// A profile that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("{origin}:{line}: {key}: {msg}")]
    Invalid {
        origin: String,
        line: usize,
        key: String,
        msg: String,
    },
    #[error("{origin}: {key}: {msg}")]
    Resolve {
        origin: String,
        key: String,
        msg: String,
    },
    #[error("unknown profile '{name}': not a shipped profile ({shipped}) nor a readable file")]
    Unknown { name: String, shipped: String },
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

impl From<Invalid> for ProfileError {
    fn from(e: Invalid) -> ProfileError {
        ProfileError::Invalid {
            origin: e.origin,
            line: e.line,
            key: e.key,
            msg: e.msg,
        }
    }
}

/// A header field that can vary per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    EthSrc,
    EthDst,
    Ipv4Src,
    Ipv4Dst,
    /// The low 64 bits (interface identifier) of the IPv6 source address.
    Ipv6Src,
    /// The low 64 bits of the IPv6 destination address.
    Ipv6Dst,
    UdpSrcPort,
    UdpDstPort,
    /// The VLAN ID of the first (outer) `[[vlan]]` tag.
    VlanId,
    /// The VLAN ID of the second (inner) tag of a QinQ profile.
    InnerVlanId,
    TcpSrcPort,
    TcpDstPort,
    TcpSeq,
}

/// Where the headers of a profile's frames start: after the Ethernet header and its
/// VLAN tags come IPv4 (without options) or IPv6 (without extension headers), then UDP
/// or TCP, then the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of VLAN tags (0-2).
    pub tags: usize,
    /// Offset of the IPv4 or IPv6 header.
    pub ip_at: usize,
    /// True when the network header is IPv6.
    pub ipv6: bool,
    /// Offset of the UDP or TCP header.
    pub l4_at: usize,
    /// Offset of the payload (after the TCP options).
    pub payload_at: usize,
}

impl Field {
    const ALL: [Field; 13] = [
        Field::EthSrc,
        Field::EthDst,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::UdpSrcPort,
        Field::UdpDstPort,
        Field::VlanId,
        Field::InnerVlanId,
        Field::TcpSrcPort,
        Field::TcpDstPort,
        Field::TcpSeq,
        // Last, so the seed streams of the fields above stay what they were.
        Field::Ipv6Src,
        Field::Ipv6Dst,
    ];
    fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == s)
    }
    /// The key as written in profiles.
    pub fn key(self) -> &'static str {
        match self {
            Field::EthSrc => "ethernet.src",
            Field::EthDst => "ethernet.dst",
            Field::Ipv4Src => "ipv4.src",
            Field::Ipv4Dst => "ipv4.dst",
            Field::Ipv6Src => "ipv6.src",
            Field::Ipv6Dst => "ipv6.dst",
            Field::UdpSrcPort => "udp.src_port",
            Field::UdpDstPort => "udp.dst_port",
            Field::VlanId => "vlan.id",
            Field::InnerVlanId => "vlan.inner_id",
            Field::TcpSrcPort => "tcp.src_port",
            Field::TcpDstPort => "tcp.dst_port",
            Field::TcpSeq => "tcp.seq",
        }
    }
    /// Byte offset in a frame laid out as `l`. A VLAN ID's offset is its tag's TCI
    /// (2 bytes: priority and DEI bits above the 12-bit ID).
    pub fn offset(self, l: &Layout) -> usize {
        match self {
            Field::EthDst => 0,
            Field::EthSrc => 6,
            Field::VlanId => 12 + 2,
            Field::InnerVlanId => 12 + VLAN_TAG_LEN + 2,
            Field::Ipv4Src => l.ip_at + 12,
            Field::Ipv4Dst => l.ip_at + 16,
            Field::Ipv6Src => l.ip_at + 8 + 8,
            Field::Ipv6Dst => l.ip_at + 24 + 8,
            Field::UdpSrcPort | Field::TcpSrcPort => l.l4_at,
            Field::UdpDstPort | Field::TcpDstPort => l.l4_at + 2,
            Field::TcpSeq => l.l4_at + 4,
        }
    }
    /// Width in bytes.
    pub fn width(self) -> usize {
        match self {
            Field::EthSrc | Field::EthDst => 6,
            Field::Ipv6Src | Field::Ipv6Dst => 8,
            Field::Ipv4Src | Field::Ipv4Dst | Field::TcpSeq => 4,
            _ => 2,
        }
    }
    fn max_value(self) -> u64 {
        match self {
            Field::VlanId | Field::InnerVlanId => MAX_VLAN_ID.into(),
            _ => u64::MAX >> (64 - 8 * self.width()),
        }
    }
    fn parse_value(self, v: &toml::Value) -> Result<u64, String> {
        match (self, v) {
            (Field::EthSrc | Field::EthDst, toml::Value::String(s)) => parse_mac(s).map(mac_to_u64),
            (Field::Ipv4Src | Field::Ipv4Dst, toml::Value::String(s)) => {
                parse_ipv4(s).map(|a| u64::from(u32::from(a)))
            }
            // The low 64 bits; the high 64 are the profile's own address's.
            (Field::Ipv6Src | Field::Ipv6Dst, toml::Value::String(s)) => {
                parse_ipv6(s).map(|a| u128::from(a) as u64)
            }
            (Field::Ipv6Src | Field::Ipv6Dst, _) => Err("expected an IPv6 address string".into()),
            (Field::EthSrc | Field::EthDst, _) => Err("expected a MAC address string".into()),
            (Field::Ipv4Src | Field::Ipv4Dst, _) => Err("expected an IPv4 address string".into()),
            (_, toml::Value::Integer(i)) => u64::try_from(*i)
                .ok()
                .filter(|&x| x <= self.max_value())
                .ok_or_else(|| {
                    format!(
                        "{i} is out of range for {} (0 to {})",
                        self.key(),
                        self.max_value()
                    )
                }),
            _ => Err(format!("expected an integer for {}", self.key())),
        }
    }
}

/// IPv6 header length (no extension headers).
pub use crate::wire::udp::IPV6_LEN;

/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Largest VLAN ID (4095 is reserved).
pub const MAX_VLAN_ID: u16 = 4094;
/// At most this many tags (QinQ).
pub const MAX_VLAN_TAGS: usize = 2;

/// One 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// TPID: 0x8100 (C-tag), 0x88a8 (S-tag, the outer tag of QinQ by default).
    pub tpid: u16,
    /// Priority code point (0-7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN ID (0-4094).
    pub id: u16,
}

impl VlanTag {
    /// The tag's TCI without the ID: priority and DEI bits.
    pub fn tci_high(&self) -> u16 {
        (u16::from(self.pcp) << 13) | (u16::from(self.dei) << 12)
    }
}

/// The TCP header of a TCP profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    pub src_port: u16,
    pub dst_port: u16,
    /// Flag bits (FIN 0x01 ... CWR 0x80, see [`crate::wire::tcp`]).
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    /// The encoded options block (a multiple of 4 bytes, at most 40).
    pub options: Vec<u8>,
}

/// The IPv6 header of an IPv6 profile (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Spec {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
}

/// Largest IPv6 flow label (20 bits).
pub const MAX_FLOW_LABEL: u32 = 0xf_ffff;

/// A weighted mix of frame sizes (IMIX): frame n's size is picked by smooth weighted
/// round-robin (nginx's algorithm) over a period of `sum(weights)` frames, so the
/// sizes interleave instead of coming in blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imix {
    /// Sizes on the wire, FCS included.
    pub sizes: Vec<usize>,
    pub weights: Vec<u32>,
}

/// Largest sum of IMIX weights (the schedule's period).
pub const MAX_IMIX_PERIOD: u64 = 1 << 16;

impl Imix {
    /// The classic simple IMIX: 64, 594 and 1518 bytes, 7:4:1.
    pub fn classic() -> Imix {
        Imix {
            sizes: vec![64, 594, 1518],
            weights: vec![7, 4, 1],
        }
    }
    /// Number of frames in one period.
    pub fn period(&self) -> usize {
        self.weights.iter().map(|&w| w as usize).sum()
    }
    /// Index into `sizes` of frame i of a period (smooth weighted round-robin: every
    /// step adds each weight to its entry's current value, picks the largest, first
    /// on ties, and takes the total off the one picked).
    pub fn schedule(&self) -> Vec<usize> {
        let total: i64 = self.weights.iter().map(|&w| i64::from(w)).sum();
        let mut cur = vec![0i64; self.weights.len()];
        let mut out = Vec::with_capacity(self.period());
        for _ in 0..self.period() {
            let mut best = 0;
            for (i, &w) in self.weights.iter().enumerate() {
                cur[i] += i64::from(w);
                if cur[i] > cur[best] {
                    best = i;
                }
            }
            cur[best] -= total;
            out.push(best);
        }
        out
    }
    /// Mean size on the wire, FCS included.
    pub fn mean_size(&self) -> f64 {
        let sum: f64 = self
            .sizes
            .iter()
            .zip(&self.weights)
            .map(|(&s, &w)| s as f64 * f64::from(w))
            .sum();
        sum / self.period() as f64
    }
}

/// How a field changes from packet to packet; packet `n` (numbered over the whole run,
/// all queues) always gets the same value, so runs are reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaryKind {
    /// `min + (n * step) mod (max - min + 1)`.
    Increment { min: u64, max: u64, step: u64 },
    /// Uniform in `min..=max`, from a hash of `seed` and `n`.
    Random { min: u64, max: u64, seed: u64 },
    /// `values[n mod len]`.
    List(Vec<u64>),
}

/// One varying field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vary {
    pub field: Field,
    pub kind: VaryKind,
}

impl Vary {
    /// Number of distinct values.
    pub fn span(&self) -> u64 {
        match &self.kind {
            VaryKind::Increment { min, max, step } => {
                let span = max - min + 1;
                span / gcd(*step % span, span).max(1)
            }
            VaryKind::Random { min, max, .. } => max - min + 1,
            VaryKind::List(v) => v.iter().collect::<std::collections::HashSet<_>>().len() as u64,
        }
    }
}

/// Order in which a DNS workload walks its name set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Sequential,
    Random,
}

/// The DNS part of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsWorkload {
    pub names: NameSet,
    pub qtype: u16,
    /// Recursion desired bit.
    pub rd: bool,
    /// Source ports used, from `udp.src_port` up: with the 16-bit ID, the pair is unique
    /// for `65536 * src_ports` queries.
    pub src_ports: u32,
    pub order: Order,
}

/// A resolved profile: everything needed to build frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where it came from (a shipped name or a path).
    pub origin: String,
    /// Frame size on the wire, FCS included (buffers are 4 bytes shorter).
    pub frame_size: usize,
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub ip_src: Ipv4Addr,
    pub ip_dst: Ipv4Addr,
    pub ttl: u8,
    pub tos: u8,
    pub udp_src: u16,
    pub udp_dst: u16,
    pub vary: Vec<Vary>,
    pub dns: Option<DnsWorkload>,
    /// 802.1Q tags, outermost first (at most two).
    pub vlans: Vec<VlanTag>,
    /// TCP segments instead of UDP datagrams (`udp_src`/`udp_dst` are then unused).
    pub tcp: Option<TcpSpec>,
    /// A weighted mix of sizes; `frame_size` is then the largest of them.
    pub imix: Option<Imix>,
    /// IPv6 instead of IPv4 (`ip_src`, `ip_dst`, `ttl`, `tos` are then unused).
    pub ipv6: Option<Ipv6Spec>,
    /// The profile's seed (`seed = N`): random fields without their own seed draw
    /// from it (each field from its own stream). None: each field's own or 0x5eed.
    pub seed: Option<u64>,
}

impl Profile {
    /// Bytes of a frame in memory (no FCS); the largest of an IMIX profile's.
    pub fn buffer_len(&self) -> usize {
        self.frame_size - FCS_LEN
    }

    /// Where the headers start in this profile's frames.
    pub fn layout(&self) -> Layout {
        let tags = self.vlans.len();
        let ip_at = udp::ETH_LEN + VLAN_TAG_LEN * tags;
        let ip_len = if self.ipv6.is_some() {
            IPV6_LEN
        } else {
            udp::IPV4_LEN
        };
        let l4_at = ip_at + ip_len;
        let l4_len = match &self.tcp {
            Some(t) => tcp::HEADER_LEN + t.options.len(),
            None => udp::UDP_LEN,
        };
        Layout {
            tags,
            ip_at,
            ipv6: self.ipv6.is_some(),
            l4_at,
            payload_at: l4_at + l4_len,
        }
    }

    /// The smallest frame on the wire (FCS included) that holds this profile's
    /// headers (and DNS query): at least 64 bytes.
    pub fn min_frame_size(&self) -> usize {
        let mut need = self.layout().payload_at;
        if let Some(d) = &self.dns {
            need += dns::HEADER_LEN + d.names.wire_len() + 4;
        }
        need.max(udp::MIN_FRAME) + FCS_LEN
    }

    /// The largest frame on the wire: 1518 bytes untagged, 4 more per VLAN tag.
    pub fn max_frame_size(&self) -> usize {
        MAX_FRAME_SIZE + VLAN_TAG_LEN * self.vlans.len()
    }

    /// Sends every frame with `size` bytes on the wire (FCS included) instead of the
    /// profile's size or mix (gen's `--frame-size`); checked against the profile's
    /// smallest and largest frame.
    pub fn set_frame_size(&mut self, size: usize) -> Result<(), String> {
        let (lo, hi) = (self.min_frame_size(), self.max_frame_size());
        if size < lo || size > hi {
            return Err(format!(
                "{size} bytes does not fit profile {}: its frames take {lo} to {hi} bytes (FCS included)",
                self.name
            ));
        }
        self.frame_size = size;
        self.imix = None;
        Ok(())
    }

    /// Number of distinct flows (5-tuples) the profile sends.
    pub fn flows(&self) -> u64 {
        if let Some(d) = &self.dns {
            return u64::from(d.src_ports);
        }
        self.vary
            .iter()
            .filter(|v| {
                matches!(
                    v.field,
                    Field::Ipv4Src
                        | Field::Ipv4Dst
                        | Field::Ipv6Src
                        | Field::Ipv6Dst
                        | Field::UdpSrcPort
                        | Field::UdpDstPort
                        | Field::TcpSrcPort
                        | Field::TcpDstPort
                )
            })
            .fold(1u64, |acc, v| match v.kind {
                VaryKind::Random { .. } => acc.saturating_mul(v.span()),
                _ => lcm(acc, v.span()),
            })
    }

    /// The profile by shipped name or path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        let (origin, text, dir) = read_source(name_or_path, None)?;
        let first = Partial::parse(&text, &origin)?;
        resolve(load_parents(first, dir)?)
    }

    /// A profile from TOML text; its `parent`, if any, is looked up like
    /// [`Profile::load`] does (paths relative to the current directory).
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        resolve(load_parents(Partial::parse(text, origin)?, None)?)
    }
}

/// The chain `first`, its parent, its parent's parent... (at most 16 deep, no loops).
fn load_parents(first: Partial, mut dir: Option<PathBuf>) -> Result<Vec<Partial>, ProfileError> {
    let mut chain = vec![first];
    while let Some(parent) = chain.last().and_then(|p| p.parent.clone()) {
        let (origin, text, d) = read_source(&parent, dir.as_deref())?;
        if chain.iter().any(|p| p.origin == origin) || chain.len() >= 16 {
            return Err(ProfileError::Resolve {
                origin: chain[0].origin.clone(),
                key: "parent".into(),
                msg: format!("parent chain loops back to {origin}"),
            });
        }
        chain.push(Partial::parse(&text, &origin)?);
        dir = d;
    }
    Ok(chain)
}

/// Names of the shipped profiles, comma-separated.
pub fn shipped_names() -> String {
    SHIPPED
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_source(
    name: &str,
    rel: Option<&Path>,
) -> Result<(String, String, Option<PathBuf>), ProfileError> {
    if let Some((n, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
        return Ok((format!("profile {n}"), (*text).to_string(), None));
    }
    let mut path = PathBuf::from(name);
    if let (Some(dir), true) = (rel, path.is_relative()) {
        path = dir.join(path);
    }
    if !path.exists() {
        return Err(ProfileError::Unknown {
            name: name.into(),
            shipped: shipped_names(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| ProfileError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let dir = path.parent().map(Path::to_path_buf);
    Ok((path.display().to_string(), text, dir))
}

// ---------------------------------------------------------------------------------------
// Stage 1: one file, raw values with spans, checked on their own.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    description: Option<String>,
    parent: Option<Spanned<String>>,
    frame_size: Option<Spanned<i64>>,
    ethernet: Option<RawEthernet>,
    ipv4: Option<RawIpv4>,
    ipv6: Option<RawIpv6>,
    udp: Option<RawUdp>,
    vary: Option<Vec<RawVary>>,
    dns: Option<RawDns>,
    seed: Option<Spanned<i64>>,
    vlan: Option<Vec<RawVlan>>,
    tcp: Option<RawTcp>,
    imix: Option<RawImix>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVlan {
    id: Spanned<i64>,
    pcp: Option<Spanned<i64>>,
    dei: Option<bool>,
    tpid: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    src_port: Option<Spanned<i64>>,
    dst_port: Option<Spanned<i64>>,
    flags: Option<Spanned<String>>,
    seq: Option<Spanned<i64>>,
    ack: Option<Spanned<i64>>,
    window: Option<Spanned<i64>>,
    options: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImix {
    preset: Option<Spanned<String>>,
    sizes: Option<Spanned<Vec<i64>>>,
    weights: Option<Spanned<Vec<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEthernet {
    src: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpv4 {
    src: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
    ttl: Option<Spanned<i64>>,
    tos: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpv6 {
    src: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
    hop_limit: Option<Spanned<i64>>,
    traffic_class: Option<Spanned<i64>>,
    flow_label: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUdp {
    src_port: Option<Spanned<i64>>,
    dst_port: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVary {
    field: Spanned<String>,
    mode: Option<Spanned<String>>,
    min: Option<Spanned<toml::Value>>,
    max: Option<Spanned<toml::Value>>,
    count: Option<Spanned<i64>>,
    step: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
    values: Option<Spanned<Vec<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    name: Option<Spanned<String>>,
    names: Option<RawNames>,
    qtype: Option<Spanned<String>>,
    rd: Option<bool>,
    src_ports: Option<Spanned<i64>>,
    order: Option<Spanned<String>>,
    answer_base: Option<Spanned<String>>,
    ttl: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNames {
    label_len: Spanned<i64>,
    charset: Option<Spanned<String>>,
    suffix: Spanned<String>,
}

/// A value with the line it came from.
#[derive(Debug, Clone)]
struct At<T> {
    v: T,
    origin: String,
    line: usize,
}

/// What one file says, checked; absent keys are `None`.
#[derive(Debug, Clone, Default)]
struct Partial {
    origin: String,
    name: Option<String>,
    description: Option<String>,
    parent: Option<String>,
    frame_size: Option<At<usize>>,
    eth_src: Option<[u8; 6]>,
    eth_dst: Option<[u8; 6]>,
    ip_src: Option<Ipv4Addr>,
    ip_dst: Option<Ipv4Addr>,
    ttl: Option<u8>,
    tos: Option<u8>,
    udp_src: Option<At<u16>>,
    udp_dst: Option<u16>,
    /// Each varying field, and whether it gave its own seed.
    vary: Option<Vec<At<(Vary, bool)>>>,
    dns: Option<PartialDns>,
    seed: Option<u64>,
    vlans: Option<At<Vec<VlanTag>>>,
    tcp: Option<At<PartialTcp>>,
    /// Line of the [udp] section, for the "UDP or TCP" error.
    udp_at: Option<At<()>>,
    imix: Option<At<Imix>>,
    /// Line of the [ipv4] section, for the "IPv4 or IPv6" error.
    ipv4_at: Option<At<()>>,
    ipv6: Option<At<PartialIpv6>>,
}

#[derive(Debug, Clone, Default)]
struct PartialIpv6 {
    src: Option<Ipv6Addr>,
    dst: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
    traffic_class: Option<u8>,
    flow_label: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct PartialTcp {
    src_port: Option<u16>,
    dst_port: Option<u16>,
    flags: Option<u8>,
    seq: Option<u32>,
    ack: Option<u32>,
    window: Option<u16>,
    options: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
struct PartialDns {
    names: Option<At<(usize, String, String)>>, // label_len, charset, suffix
    qtype: Option<u16>,
    rd: Option<bool>,
    src_ports: Option<At<u32>>,
    order: Option<Order>,
    answer_base: Option<[u8; 4]>,
    ttl: Option<u32>,
}

/// A value with the line it came from, as stage 2 needs it for its errors.
fn at<T>(cx: &TomlFile<'_>, span: core::ops::Range<usize>, v: T) -> At<T> {
    At {
        v,
        origin: cx.origin.into(),
        line: cx.line(span),
    }
}

impl Partial {
    fn parse(text: &str, origin: &str) -> Result<Partial, Invalid> {
        let cx = &TomlFile::new(text, origin);
        let raw: RawFile = cx.parse()?;
        let mut p = Partial {
            origin: origin.into(),
            description: raw.description,
            ..Default::default()
        };
        if let Some(n) = raw.name {
            if n.get_ref().trim().is_empty() {
                return cx.err(n.span(), "name", "must not be empty");
            }
            p.name = Some(n.into_inner());
        }
        if let Some(par) = raw.parent {
            p.parent = Some(par.into_inner());
        }
        let max_any = (MAX_FRAME_SIZE + VLAN_TAG_LEN * MAX_VLAN_TAGS) as i64;
        if let Some(fs) = &raw.frame_size {
            let v = cx.int(fs, "frame_size", MIN_FRAME_SIZE as i64, max_any)?;
            p.frame_size = Some(at(cx, fs.span(), v));
        }
        if let Some(sd) = &raw.seed {
            p.seed = Some(cx.int(sd, "seed", 0, i64::MAX)?);
        }
        if let Some(vs) = &raw.vlan {
            p.vlans = Some(parse_vlans(cx, vs)?);
        }
        if let Some(t) = &raw.tcp {
            p.tcp = Some(parse_tcp(cx, t)?);
        }
        if let Some(im) = &raw.imix {
            p.imix = Some(parse_imix(cx, im, max_any)?);
        }
        if let (Some(fs), Some(_)) = (&raw.frame_size, &raw.imix) {
            return cx.err(
                fs.span(),
                "frame_size",
                "give frame_size or [imix], not both",
            );
        }
        if let Some(e) = &raw.ethernet {
            p.eth_src = e
                .src
                .as_ref()
                .map(|s| cx.value(s, "ethernet.src", parse_mac))
                .transpose()?;
            p.eth_dst = e
                .dst
                .as_ref()
                .map(|s| cx.value(s, "ethernet.dst", parse_mac))
                .transpose()?;
        }
        if let Some(ip) = &raw.ipv4 {
            let first = [&ip.src, &ip.dst]
                .into_iter()
                .flatten()
                .map(|x| x.span())
                .next()
                .or(ip.ttl.as_ref().map(|x| x.span()))
                .or(ip.tos.as_ref().map(|x| x.span()))
                .unwrap_or(0..0);
            p.ipv4_at = Some(at(cx, first, ()));
            p.ip_src = ip
                .src
                .as_ref()
                .map(|s| cx.value(s, "ipv4.src", parse_ipv4))
                .transpose()?;
            p.ip_dst = ip
                .dst
                .as_ref()
                .map(|s| cx.value(s, "ipv4.dst", parse_ipv4))
                .transpose()?;
            p.ttl = ip
                .ttl
                .as_ref()
                .map(|s| cx.int(s, "ipv4.ttl", 1, 255))
                .transpose()?;
            p.tos = ip
                .tos
                .as_ref()
                .map(|s| cx.int(s, "ipv4.tos", 0, 255))
                .transpose()?;
        }
        if let Some(ip) = &raw.ipv6 {
            p.ipv6 = Some(parse_ipv6_section(cx, ip)?);
        }
        if let Some(u) = &raw.udp {
            let first = u.src_port.as_ref().or(u.dst_port.as_ref());
            p.udp_at = Some(at(cx, first.map_or(0..0, |x| x.span()), ()));
            if let Some(s) = &u.src_port {
                p.udp_src = Some(at(cx, s.span(), cx.int(s, "udp.src_port", 0, 65535)?));
            }
            p.udp_dst = u
                .dst_port
                .as_ref()
                .map(|s| cx.int(s, "udp.dst_port", 0, 65535))
                .transpose()?;
        }
        if let Some(vs) = &raw.vary {
            let mut out = Vec::new();
            for v in vs {
                out.push(at(cx, v.field.span(), parse_vary(cx, v)?));
            }
            p.vary = Some(out);
        }
        if let Some(d) = &raw.dns {
            p.dns = Some(parse_dns(cx, d)?);
        }
        Ok(p)
    }
}

fn parse_vlans(cx: &TomlFile<'_>, vs: &[RawVlan]) -> Result<At<Vec<VlanTag>>, Invalid> {
    if let Some(third) = vs.get(MAX_VLAN_TAGS) {
        return cx.err(
            third.id.span(),
            "vlan",
            format!("at most {MAX_VLAN_TAGS} tags (802.1Q, or QinQ with two); this is the third"),
        );
    }
    let mut out = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        let id = cx
            .int(&v.id, "vlan.id", 0, i64::from(MAX_VLAN_ID))
            .map_err(|mut e| {
                e.msg.push_str(" (4095 is reserved)");
                e
            })?;
        let pcp = v
            .pcp
            .as_ref()
            .map(|x| cx.int(x, "vlan.pcp", 0, 7))
            .transpose()?
            .unwrap_or(0);
        // One tag is a C-tag; QinQ's outer tag an S-tag.
        let default_tpid = if vs.len() == 2 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        let tpid = v
            .tpid
            .as_ref()
            .map(|x| cx.int(x, "vlan.tpid", 0x0600, 0xffff))
            .transpose()?
            .unwrap_or(default_tpid);
        out.push(VlanTag {
            tpid,
            pcp,
            dei: v.dei.unwrap_or(false),
            id,
        });
    }
    let span = vs.first().map_or(0..0, |v| v.id.span());
    Ok(at(cx, span, out))
}

fn parse_ipv6_section(cx: &TomlFile<'_>, ip: &RawIpv6) -> Result<At<PartialIpv6>, Invalid> {
    let addr = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<Ipv6Addr>, Invalid> {
        v.as_ref().map(|s| cx.value(s, key, parse_ipv6)).transpose()
    };
    let out = PartialIpv6 {
        src: addr(&ip.src, "ipv6.src")?,
        dst: addr(&ip.dst, "ipv6.dst")?,
        hop_limit: ip
            .hop_limit
            .as_ref()
            .map(|s| cx.int(s, "ipv6.hop_limit", 1, 255))
            .transpose()?,
        traffic_class: ip
            .traffic_class
            .as_ref()
            .map(|s| cx.int(s, "ipv6.traffic_class", 0, 255))
            .transpose()?,
        flow_label: ip
            .flow_label
            .as_ref()
            .map(|s| cx.int(s, "ipv6.flow_label", 0, i64::from(MAX_FLOW_LABEL)))
            .transpose()?,
    };
    let spans = [&ip.src, &ip.dst].into_iter().flatten().map(|x| x.span());
    let ints = [&ip.hop_limit, &ip.traffic_class, &ip.flow_label]
        .into_iter()
        .flatten()
        .map(|x| x.span());
    let first = spans.chain(ints).min_by_key(|r| r.start).unwrap_or(0..0);
    Ok(at(cx, first, out))
}

fn parse_tcp(cx: &TomlFile<'_>, t: &RawTcp) -> Result<At<PartialTcp>, Invalid> {
    let port = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u16>, Invalid> {
        v.as_ref().map(|x| cx.int(x, key, 0, 65535)).transpose()
    };
    let u32_of = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u32>, Invalid> {
        v.as_ref()
            .map(|x| cx.int(x, key, 0, i64::from(u32::MAX)))
            .transpose()
    };
    let mut out = PartialTcp {
        src_port: port(&t.src_port, "tcp.src_port")?,
        dst_port: port(&t.dst_port, "tcp.dst_port")?,
        seq: u32_of(&t.seq, "tcp.seq")?,
        ack: u32_of(&t.ack, "tcp.ack")?,
        window: port(&t.window, "tcp.window")?,
        ..PartialTcp::default()
    };
    if let Some(f) = &t.flags {
        out.flags = Some(cx.value(f, "tcp.flags", tcp::parse_flags)?);
    }
    if let Some(o) = &t.options {
        let opts: Result<Vec<tcp::TcpOption>, String> = o
            .get_ref()
            .iter()
            .map(|x| tcp::TcpOption::parse(x))
            .collect();
        let bytes = opts
            .and_then(|v| tcp::encode_options(&v))
            .or_else(|m| cx.err(o.span(), "tcp.options", m))?;
        out.options = Some(bytes);
    }
    let first = [&t.src_port, &t.dst_port, &t.seq, &t.ack, &t.window]
        .into_iter()
        .flatten()
        .map(|x| x.span())
        .next()
        .or(t.flags.as_ref().map(|x| x.span()))
        .or(t.options.as_ref().map(|x| x.span()))
        .unwrap_or(0..0);
    Ok(at(cx, first, out))
}

fn parse_imix(cx: &TomlFile<'_>, im: &RawImix, max_any: i64) -> Result<At<Imix>, Invalid> {
    match (&im.preset, &im.sizes, &im.weights) {
        (Some(p), None, None) => {
            let mix = cx.one_of(
                p,
                "imix.preset",
                |w| (w == "classic").then(Imix::classic),
                "classic",
            )?;
            Ok(at(cx, p.span(), mix))
        }
        (None, Some(sz), Some(w)) => {
            let (sizes, weights) = (sz.get_ref(), w.get_ref());
            if sizes.is_empty() {
                return cx.err(sz.span(), "imix.sizes", "must not be empty");
            }
            if sizes.len() != weights.len() {
                return cx.err(
                    w.span(),
                    "imix.weights",
                    format!(
                        "{} weights for {} sizes: give one weight per size",
                        weights.len(),
                        sizes.len()
                    ),
                );
            }
            let mut mix = Imix {
                sizes: Vec::new(),
                weights: Vec::new(),
            };
            for &x in sizes {
                if x < MIN_FRAME_SIZE as i64 || x > max_any {
                    return cx.err(
                        sz.span(),
                        "imix.sizes",
                        format!("{x} is out of range ({MIN_FRAME_SIZE} to {max_any})"),
                    );
                }
                mix.sizes.push(x as usize);
            }
            for &x in weights {
                if x < 1 || x > MAX_IMIX_PERIOD as i64 {
                    return cx.err(
                        w.span(),
                        "imix.weights",
                        format!("{x} is out of range (1 to {MAX_IMIX_PERIOD})"),
                    );
                }
                mix.weights.push(x as u32);
            }
            if mix.period() as u64 > MAX_IMIX_PERIOD {
                return cx.err(
                    w.span(),
                    "imix.weights",
                    format!("the weights add up to more than {MAX_IMIX_PERIOD}"),
                );
            }
            Ok(at(cx, sz.span(), mix))
        }
        (Some(p), _, _) => cx.err(
            p.span(),
            "imix.preset",
            "give preset or sizes and weights, not both",
        ),
        (None, Some(sz), None) => cx.err(
            sz.span(),
            "imix.weights",
            "sizes need weights = [...] (one per size)",
        ),
        (None, None, Some(w)) => cx.err(w.span(), "imix.sizes", "weights need sizes = [...]"),
        (None, None, None) => cx.err(
            0..0,
            "imix",
            "give preset = \"classic\" or sizes = [...] and weights = [...]",
        ),
    }
}

fn parse_vary(cx: &TomlFile<'_>, v: &RawVary) -> Result<(Vary, bool), Invalid> {
    let fspan = v.field.span();
    let Some(field) = Field::parse(v.field.get_ref()) else {
        let known: Vec<&str> = Field::ALL.iter().map(|f| f.key()).collect();
        return cx.err(
            fspan,
            "vary.field",
            format!(
                "unknown field '{}' (one of {})",
                v.field.get_ref(),
                known.join(", ")
            ),
        );
    };
    let mode = v
        .mode
        .as_ref()
        .map(|m| m.get_ref().as_str())
        .unwrap_or("increment");
    let val = |s: &Spanned<toml::Value>, key: &str| -> Result<u64, Invalid> {
        field
            .parse_value(s.get_ref())
            .or_else(|m| cx.err(s.span(), key, m))
    };
    let range = || -> Result<(u64, u64), Invalid> {
        let Some(min_s) = &v.min else {
            return cx.err(
                fspan.clone(),
                "vary.min",
                format!("{} needs min (and max or count)", mode),
            );
        };
        let min = val(min_s, "vary.min")?;
        let max = match (&v.max, &v.count) {
            (Some(m), None) => val(m, "vary.max")?,
            (None, Some(c)) => {
                let c: u64 = cx.int(c, "vary.count", 1, i64::MAX)?;
                min.checked_add(c - 1)
                    .filter(|&m| m <= field.max_value())
                    .map_or_else(
                        || {
                            cx.err(
                                v.count.as_ref().map_or(fspan.clone(), |c| c.span()),
                                "vary.count",
                                "min + count runs past the field's largest value",
                            )
                        },
                        Ok,
                    )?
            }
            (Some(m), Some(_)) => {
                return cx.err(m.span(), "vary.max", "give max or count, not both");
            }
            (None, None) => return cx.err(fspan.clone(), "vary.max", "needs max or count"),
        };
        if max < min {
            let span = v.max.as_ref().map_or(fspan.clone(), |m| m.span());
            return cx.err(span, "vary.max", "max is below min");
        }
        Ok((min, max))
    };
    let kind = match mode {
        "increment" => {
            let (min, max) = range()?;
            let step = v
                .step
                .as_ref()
                .map(|s| cx.int(s, "vary.step", 1, i64::MAX))
                .transpose()?
                .unwrap_or(1);
            VaryKind::Increment { min, max, step }
        }
        "random" => {
            let (min, max) = range()?;
            let seed = v
                .seed
                .as_ref()
                .map(|s| *s.get_ref() as u64)
                .unwrap_or(0x5eed);
            VaryKind::Random { min, max, seed }
        }
        "list" => {
            let Some(vals) = &v.values else {
                return cx.err(fspan, "vary.values", "list needs values = [...]");
            };
            if vals.get_ref().is_empty() {
                return cx.err(vals.span(), "vary.values", "must not be empty");
            }
            let parsed: Result<Vec<u64>, String> = vals
                .get_ref()
                .iter()
                .map(|x| field.parse_value(x))
                .collect();
            VaryKind::List(parsed.or_else(|m| cx.err(vals.span(), "vary.values", m))?)
        }
        other => {
            let span = v.mode.as_ref().map_or(fspan, |m| m.span());
            return cx.err(
                span,
                "vary.mode",
                format!("unknown mode '{other}' (increment, random or list)"),
            );
        }
    };
    Ok((Vary { field, kind }, v.seed.is_some()))
}

fn parse_dns(cx: &TomlFile<'_>, d: &RawDns) -> Result<PartialDns, Invalid> {
    let mut out = PartialDns::default();
    match (&d.name, &d.names) {
        (Some(n), None) => {
            dns::wire_len(n.get_ref()).ok().map_or_else(
                || {
                    cx.err(
                        n.span(),
                        "dns.name",
                        format!("'{}' is not a valid DNS name", n.get_ref()),
                    )
                },
                Ok,
            )?;
            out.names = Some(at(cx, n.span(), (0, "a".into(), n.get_ref().clone())));
        }
        (None, Some(ns)) => {
            let ll: usize = cx.int(&ns.label_len, "dns.names.label_len", 1, 63)?;
            let cs = ns
                .charset
                .as_ref()
                .map(|c| c.get_ref().clone())
                .unwrap_or_else(|| "a-z0-9".into());
            // Check now, so the error points at this file.
            NameSet::new(ll, &cs, ns.suffix.get_ref(), defaults::DNS_ANSWER_BASE, 1)
                .or_else(|e| cx.err(ns.label_len.span(), "dns.names", e.to_string()))?;
            out.names = Some(at(
                cx,
                ns.label_len.span(),
                (ll, cs, ns.suffix.get_ref().clone()),
            ));
        }
        (Some(n), Some(_)) => {
            return cx.err(
                n.span(),
                "dns.name",
                "give dns.name or [dns.names], not both",
            );
        }
        (None, None) => {}
    }
    if let Some(q) = &d.qtype {
        out.qtype = Some(dns::qtype_from_str(q.get_ref()).map_or_else(
            || {
                cx.err(
                    q.span(),
                    "dns.qtype",
                    format!("unknown record type '{}'", q.get_ref()),
                )
            },
            Ok,
        )?);
    }
    out.rd = d.rd;
    if let Some(s) = &d.src_ports {
        out.src_ports = Some(at(cx, s.span(), cx.int(s, "dns.src_ports", 1, 65535)?));
    }
    if let Some(o) = &d.order {
        out.order = Some(match o.get_ref().as_str() {
            "sequential" => Order::Sequential,
            "random" => Order::Random,
            other => {
                return cx.err(
                    o.span(),
                    "dns.order",
                    format!("unknown order '{other}' (sequential or random)"),
                );
            }
        });
    }
    out.answer_base = d
        .answer_base
        .as_ref()
        .map(|s| {
            cx.value(s, "dns.answer_base", parse_ipv4)
                .map(|a| a.octets())
        })
        .transpose()?;
    out.ttl = d
        .ttl
        .as_ref()
        .map(|s| cx.int(s, "dns.ttl", 0, i64::from(i32::MAX)))
        .transpose()?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Stage 2: lay the chain (child first) over each other and resolve.

/// The section (`sec`) nearest the child for which `has` holds (it sets the key
/// wanted), or an empty one: sections are laid over each other key by key.
fn nearest<T: Clone + Default>(
    chain: &[Partial],
    sec: impl Fn(&Partial) -> Option<&At<T>>,
    has: &dyn Fn(&T) -> bool,
) -> T {
    chain
        .iter()
        .filter_map(sec)
        .find(|t| has(&t.v))
        .map(|t| t.v.clone())
        .unwrap_or_default()
}

fn resolve(chain: Vec<Partial>) -> Result<Profile, ProfileError> {
    let origin = chain[0].origin.clone();
    macro_rules! pick {
        ($f:ident) => {
            chain.iter().find_map(|p| p.$f.clone())
        };
    }
    let pick_dns = |f: &dyn Fn(&PartialDns) -> bool| {
        chain
            .iter()
            .filter_map(|p| p.dns.as_ref())
            .find(|d| f(d))
            .cloned()
    };
    // Name and description belong to the file itself; everything else is inherited.
    let name = chain[0].name.clone().unwrap_or_else(|| {
        Path::new(&origin)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| origin.clone())
    });
    let udp_src = pick!(udp_src);
    let vary: Vec<At<(Vary, bool)>> = pick!(vary).unwrap_or_default();

    let dns = if chain.iter().any(|p| p.dns.is_some()) {
        let names = pick_dns(&|d| d.names.is_some()).and_then(|d| d.names);
        let Some(names) = names else {
            return Err(ProfileError::Resolve {
                origin,
                key: "dns".into(),
                msg: "a [dns] section needs dns.name or [dns.names]".into(),
            });
        };
        let base = pick_dns(&|d| d.answer_base.is_some())
            .and_then(|d| d.answer_base)
            .unwrap_or(defaults::DNS_ANSWER_BASE);
        let ttl = pick_dns(&|d| d.ttl.is_some())
            .and_then(|d| d.ttl)
            .unwrap_or(defaults::DNS_TTL);
        let (ll, cs, suffix) = &names.v;
        let set = NameSet::new(*ll, cs, suffix, base, ttl).map_err(|e| ProfileError::Invalid {
            origin: names.origin.clone(),
            line: names.line,
            key: "dns".into(),
            msg: e.to_string(),
        })?;
        let src_ports = pick_dns(&|d| d.src_ports.is_some()).and_then(|d| d.src_ports);
        let first_port = udp_src.as_ref().map_or(defaults::DNS_SRC_PORT, |u| u.v);
        let ports = src_ports.as_ref().map_or(defaults::DNS_SRC_PORTS, |s| s.v);
        if u32::from(first_port) + ports - 1 > 65535 {
            let (o, l) = src_ports
                .as_ref()
                .map_or((origin.clone(), 1), |s| (s.origin.clone(), s.line));
            return Err(ProfileError::Invalid {
                origin: o,
                line: l,
                key: "dns.src_ports".into(),
                msg: format!("udp.src_port {first_port} + {ports} ports runs past 65535"),
            });
        }
        if let Some(v) = vary.iter().find(|v| v.v.0.field == Field::UdpSrcPort) {
            return Err(ProfileError::Invalid {
                origin: v.origin.clone(),
                line: v.line,
                key: "vary.field".into(),
                msg: "DNS profiles derive udp.src_port from the query number (unique port and ID); set dns.src_ports instead".into(),
            });
        }
        Some(DnsWorkload {
            names: set,
            qtype: pick_dns(&|d| d.qtype.is_some())
                .and_then(|d| d.qtype)
                .unwrap_or(dns::TYPE_A),
            rd: pick_dns(&|d| d.rd.is_some())
                .and_then(|d| d.rd)
                .unwrap_or(false),
            src_ports: ports,
            order: pick_dns(&|d| d.order.is_some())
                .and_then(|d| d.order)
                .unwrap_or(Order::Sequential),
        })
    } else {
        None
    };

    let invalid = |a_origin: &str, line: usize, key: &str, msg: String| ProfileError::Invalid {
        origin: a_origin.into(),
        line,
        key: key.into(),
        msg,
    };
    let vlans = pick!(vlans).map(|a| a.v).unwrap_or_default();
    // UDP or TCP: a chain that says both is refused at the TCP section.
    let tcp_at = chain.iter().find_map(|p| p.tcp.clone());
    if let (Some(t), Some(_)) = (&tcp_at, pick!(udp_at)) {
        return Err(invalid(
            &t.origin,
            t.line,
            "tcp",
            "a profile sends UDP or TCP: this chain has both [udp] and [tcp]".into(),
        ));
    }
    if let (Some(t), Some(_)) = (&tcp_at, &dns) {
        return Err(invalid(
            &t.origin,
            t.line,
            "tcp",
            "DNS profiles send UDP: drop [tcp]".into(),
        ));
    }
    let tcp = tcp_at.is_some().then(|| {
        let pt = |f: &dyn Fn(&PartialTcp) -> bool| nearest(&chain, |p| p.tcp.as_ref(), f);
        TcpSpec {
            src_port: pt(&|t| t.src_port.is_some())
                .src_port
                .unwrap_or(defaults::UDP_SRC_PORT),
            dst_port: pt(&|t| t.dst_port.is_some())
                .dst_port
                .unwrap_or(defaults::TCP_DST_PORT),
            flags: pt(&|t| t.flags.is_some()).flags.unwrap_or(tcp::SYN),
            seq: pt(&|t| t.seq.is_some()).seq.unwrap_or(0),
            ack: pt(&|t| t.ack.is_some()).ack.unwrap_or(0),
            window: pt(&|t| t.window.is_some())
                .window
                .unwrap_or(defaults::TCP_WINDOW),
            options: pt(&|t| t.options.is_some()).options.unwrap_or_default(),
        }
    });
    // IPv4 or IPv6: a chain that says both is refused at the later of the two sections.
    let v4_at = chain.iter().find_map(|p| p.ipv4_at.clone());
    let v6_at = chain.iter().find_map(|p| p.ipv6.clone());
    if let (Some(a), Some(b)) = (&v4_at, &v6_at) {
        let (o, l) = if a.origin == b.origin && a.line > b.line {
            (&a.origin, a.line)
        } else {
            (&b.origin, b.line)
        };
        return Err(invalid(
            o,
            l,
            "ipv6",
            "a profile is IPv4 or IPv6: this chain has both [ipv4] and [ipv6]; drop one".into(),
        ));
    }
    let ipv6 = match v6_at {
        Some(_) => {
            let pv = |f: &dyn Fn(&PartialIpv6) -> bool| nearest(&chain, |p| p.ipv6.as_ref(), f);
            Some(Ipv6Spec {
                src: pv(&|t| t.src.is_some()).src.unwrap_or(defaults::GEN_IP6),
                dst: pv(&|t| t.dst.is_some()).dst.unwrap_or(defaults::DUT_IP6),
                hop_limit: pv(&|t| t.hop_limit.is_some())
                    .hop_limit
                    .unwrap_or(defaults::HOP_LIMIT),
                traffic_class: pv(&|t| t.traffic_class.is_some())
                    .traffic_class
                    .unwrap_or(0),
                flow_label: pv(&|t| t.flow_label.is_some()).flow_label.unwrap_or(0),
            })
        }
        None => None,
    };
    // Each varying field must exist in these frames.
    for a in &vary {
        let f = a.v.0.field;
        let missing = match f {
            Field::VlanId if vlans.is_empty() => Some("needs a [[vlan]] tag"),
            Field::InnerVlanId if vlans.len() < 2 => Some("needs two [[vlan]] tags (QinQ)"),
            Field::UdpSrcPort | Field::UdpDstPort if tcp.is_some() => {
                Some("is not in a TCP profile (vary tcp.src_port or tcp.dst_port)")
            }
            Field::TcpSrcPort | Field::TcpDstPort | Field::TcpSeq if tcp.is_none() => {
                Some("needs a [tcp] section")
            }
            Field::Ipv4Src | Field::Ipv4Dst if ipv6.is_some() => {
                Some("is not in an IPv6 profile (vary ipv6.src or ipv6.dst)")
            }
            Field::Ipv6Src | Field::Ipv6Dst if ipv6.is_none() => Some("needs an [ipv6] section"),
            _ => None,
        };
        if let Some(m) = missing {
            return Err(invalid(
                &a.origin,
                a.line,
                "vary.field",
                format!("{} {m}", f.key()),
            ));
        }
    }
    let seed = pick!(seed);
    let vary: Vec<Vary> = vary
        .into_iter()
        .map(|a| {
            let (mut v, own_seed) = a.v;
            if let (Some(s), false, VaryKind::Random { seed: fs, .. }) =
                (seed, own_seed, &mut v.kind)
            {
                // Each field its own stream of the profile's seed.
                let code = Field::ALL.iter().position(|&x| x == v.field).unwrap_or(0) as u64;
                *fs = crate::template::splitmix64(s ^ code.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            }
            v
        })
        .collect();

    // The size (or mix) nearest the child wins.
    let size_from = chain
        .iter()
        .find(|p| p.frame_size.is_some() || p.imix.is_some())
        .map(|p| (p.frame_size.clone(), p.imix.clone()));
    let default_src = if dns.is_some() {
        defaults::DNS_SRC_PORT
    } else {
        defaults::UDP_SRC_PORT
    };
    let mut p = Profile {
        name,
        description: chain[0]
            .description
            .clone()
            .unwrap_or_else(|| match &chain[0].parent {
                Some(p) => format!("derived from {p}"),
                None => String::new(),
            }),
        origin,
        frame_size: 0,
        eth_src: pick!(eth_src).unwrap_or(defaults::GEN_MAC),
        eth_dst: pick!(eth_dst).unwrap_or(defaults::DUT_MAC),
        ip_src: pick!(ip_src).unwrap_or(Ipv4Addr::from(defaults::GEN_IP)),
        ip_dst: pick!(ip_dst).unwrap_or(Ipv4Addr::from(defaults::DUT_IP)),
        ttl: pick!(ttl).unwrap_or(defaults::TTL),
        tos: pick!(tos).unwrap_or(0),
        udp_src: udp_src.map_or(default_src, |u| u.v),
        udp_dst: pick!(udp_dst).unwrap_or(if dns.is_some() {
            53
        } else {
            defaults::UDP_DST_PORT
        }),
        vary,
        dns,
        vlans,
        tcp,
        imix: None,
        seed,
        ipv6,
    };
    let (lo, hi) = (p.min_frame_size(), p.max_frame_size());
    let what = if p.dns.is_some() {
        "the headers and query"
    } else {
        "the headers"
    };
    let check = |size: usize, o: &str, line: usize, key: &str| -> Result<(), ProfileError> {
        if size < lo {
            return Err(invalid(
                o,
                line,
                key,
                format!("{size} bytes is too small for {what}: at least {lo}"),
            ));
        }
        if size > hi {
            return Err(invalid(
                o,
                line,
                key,
                format!(
                    "{size} bytes is more than the largest frame with {} VLAN tag(s): {hi}",
                    p.vlans.len()
                ),
            ));
        }
        Ok(())
    };
    match size_from {
        Some((Some(fs), _)) => {
            check(fs.v, &fs.origin, fs.line, "frame_size")?;
            p.frame_size = fs.v;
        }
        Some((None, Some(im))) => {
            if p.dns.is_some() {
                return Err(invalid(
                    &im.origin,
                    im.line,
                    "imix",
                    "DNS profiles have one size (their query's)".into(),
                ));
            }
            for &sz in &im.v.sizes {
                check(sz, &im.origin, im.line, "imix.sizes")?;
            }
            p.frame_size = im.v.sizes.iter().copied().max().unwrap_or(lo);
            p.imix = Some(im.v);
        }
        _ => p.frame_size = lo,
    }
    Ok(p)
}

pub use crate::units::{format_mac, parse_mac};

fn mac_to_u64(m: [u8; 6]) -> u64 {
    m.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    if a == 0 || b == 0 {
        0
    } else {
        (a / gcd(a, b)).saturating_mul(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Profile::from_toml(text, "user.toml") {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err("frame_size = 64\n\n[ipv4]\nsrc = \"198.18.0.1\"\nsource = \"x\"\n");
        assert!(e.starts_with("user.toml:5: source:"), "{e}");
    }

    #[test]
    fn unknown_keys_list_the_allowed_ones_and_type_errors_name_their_key() {
        let e = err("[udp]\nsrc_port = 1\nsport = 2\n");
        assert_eq!(
            e,
            "user.toml:3: sport: unknown key in [udp] (allowed: src_port, dst_port)"
        );
        let e = err("frame_size = 64\n[ipv4]\nttl = \"high\"\n");
        assert!(e.starts_with("user.toml:3: ipv4.ttl: invalid type"), "{e}");
        let e = err("[[vary]]\nfield = \"ipv4.src\"\nstep = \"x\"\n");
        assert!(e.starts_with("user.toml:3: vary.step: invalid type"), "{e}");
    }

    #[test]
    fn bad_address() {
        let e = err("[ipv4]\nsrc = \"198.18.0.300\"\n");
        assert_eq!(
            e,
            "user.toml:2: ipv4.src: '198.18.0.300' is not an IPv4 address"
        );
        let e = err("[ethernet]\ndst = \"02:00:00:00:00\"\n");
        assert!(e.starts_with("user.toml:2: ethernet.dst:"), "{e}");
    }

    #[test]
    fn frame_too_small_for_headers() {
        let e = err("frame_size = 60\n");
        assert!(
            e.starts_with("user.toml:1: frame_size: 60 is out of range"),
            "{e}"
        );
        let e = err(
            "frame_size = 64\n[dns.names]\nlabel_len = 40\ncharset = \"a\"\nsuffix = \"lab.test\"\n",
        );
        assert!(
            e.starts_with("user.toml:1: frame_size: 64 bytes is too small"),
            "{e}"
        );
    }

    #[test]
    fn empty_or_bad_sets() {
        let e = err("[dns.names]\nlabel_len = 2\ncharset = \"\"\nsuffix = \"x.test\"\n");
        assert!(e.contains("dns.names: charset is empty"), "{e}");
        let e = err("[[vary]]\nfield = \"ipv4.src\"\nmode = \"list\"\nvalues = []\n");
        assert!(
            e.starts_with("user.toml:4: vary.values: must not be empty"),
            "{e}"
        );
        let e = err("[dns]\nqtype = \"A\"\n");
        assert!(e.contains("needs dns.name or [dns.names]"), "{e}");
    }

    #[test]
    fn vary_errors() {
        let e = err("[[vary]]\nfield = \"ipv4.ttl\"\n");
        assert!(
            e.starts_with("user.toml:2: vary.field: unknown field 'ipv4.ttl'"),
            "{e}"
        );
        let e = err("[[vary]]\nfield = \"udp.src_port\"\nmin = 10\nmax = 5\n");
        assert!(
            e.starts_with("user.toml:4: vary.max: max is below min"),
            "{e}"
        );
        let e = err("[[vary]]\nfield = \"udp.src_port\"\nmin = 65000\ncount = 1000\n");
        assert!(e.contains("vary.count"), "{e}");
        let e =
            err("parent = \"dns-small\"\n[[vary]]\nfield = \"udp.src_port\"\nmin = 1\nmax = 2\n");
        assert!(e.contains("set dns.src_ports instead"), "{e}");
    }

    #[test]
    fn parent_is_overridden_key_by_key() {
        let p = Profile::from_toml(
            "parent = \"min-multi-flow\"\nframe_size = 128\n[udp]\ndst_port = 7\n",
            "user.toml",
        )
        .expect("child");
        assert_eq!(p.frame_size, 128);
        assert_eq!(p.udp_dst, 7);
        assert_eq!(p.udp_src, 1024);
        assert_eq!(p.flows(), 256);
        assert_eq!(p.name, "user");
        let e = err("parent = \"no-such-profile\"\n");
        assert!(e.starts_with("unknown profile 'no-such-profile'"), "{e}");
    }

    #[test]
    fn parent_loop_is_an_error() {
        let dir = std::env::temp_dir().join(format!("profiles-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.toml"), "parent = \"b.toml\"\n").expect("a");
        std::fs::write(dir.join("b.toml"), "parent = \"a.toml\"\n").expect("b");
        let e = Profile::load(dir.join("a.toml").to_str().expect("utf8"))
            .map(|_| ())
            .expect_err("loop");
        std::fs::remove_dir_all(&dir).ok();
        assert!(e.to_string().contains("loops back"), "{e}");
    }

    #[test]
    fn vlan_tcp_and_imix_errors_name_file_line_and_key() {
        let e = err("[[vlan]]\nid = 4095\n");
        assert_eq!(
            e,
            "user.toml:2: vlan.id: 4095 is out of range (0 to 4094) (4095 is reserved)"
        );
        let e = err("[[vlan]]\nid = 1\n[[vlan]]\nid = 2\n[[vlan]]\nid = 3\n");
        assert!(e.starts_with("user.toml:6: vlan: at most 2 tags"), "{e}");
        let e = err("[[vlan]]\nid = 1\npcp = 8\n");
        assert!(e.starts_with("user.toml:3: vlan.pcp:"), "{e}");
        // The SYN's 40 bytes of TCP header need 78-byte frames.
        let e = err(
            "frame_size = 64\n[tcp]\noptions = [\"mss=1460\", \"sack_perm\", \"ts\", \"nop\", \"wscale=7\"]\n",
        );
        assert_eq!(
            e,
            "user.toml:1: frame_size: 64 bytes is too small for the headers: at least 78"
        );
        let e = err("parent = \"syn-flood\"\n[[vlan]]\nid = 5\n[[vlan]]\nid = 6\n");
        assert!(
            e.ends_with("frame_size: 78 bytes is too small for the headers: at least 86"),
            "{e}"
        );
        let e = err("[imix]\nsizes = [64, 2000]\nweights = [1, 1]\n");
        assert!(
            e.starts_with("user.toml:2: imix.sizes: 2000 is out of range"),
            "{e}"
        );
        let e = err(
            "[tcp]\noptions = [\"mss=1460\", \"ts\"]\n[imix]\nsizes = [64, 128]\nweights = [1, 1]\n",
        );
        assert_eq!(
            e,
            "user.toml:4: imix.sizes: 64 bytes is too small for the headers: at least 74"
        );
        let e = err("[imix]\nsizes = [64, 128]\nweights = [1]\n");
        assert!(
            e.starts_with("user.toml:3: imix.weights: 1 weights for 2 sizes"),
            "{e}"
        );
        let e = err("frame_size = 64\n[imix]\npreset = \"classic\"\n");
        assert!(
            e.starts_with("user.toml:1: frame_size: give frame_size or [imix]"),
            "{e}"
        );
        let e = err("[[vary]]\nfield = \"vlan.id\"\nmin = 1\ncount = 2\n");
        assert_eq!(e, "user.toml:2: vary.field: vlan.id needs a [[vlan]] tag");
        let e =
            err("[[vlan]]\nid = 4000\n[[vary]]\nfield = \"vlan.id\"\nmin = 4000\ncount = 100\n");
        assert!(e.starts_with("user.toml:6: vary.count:"), "{e}");
        let e = err("[udp]\ndst_port = 9\n[tcp]\ndst_port = 80\n");
        assert!(
            e.starts_with("user.toml:4: tcp: a profile sends UDP or TCP"),
            "{e}"
        );
        let e = err("[tcp]\nflags = \"syn|nope\"\n");
        assert!(
            e.starts_with("user.toml:2: tcp.flags: unknown TCP flag 'nope'"),
            "{e}"
        );
        let e = err("parent = \"min-multi-flow\"\n[tcp]\ndst_port = 80\n");
        assert!(e.contains("tcp: a profile sends UDP or TCP"), "{e}");
    }

    #[test]
    fn smooth_weighted_round_robin_is_nginxs() {
        // nginx's own example (ngx_http_upstream_round_robin.c, weights 5, 1, 1):
        // a a b a c a a, not a block of five a's.
        let m = Imix {
            sizes: vec![64, 128, 256],
            weights: vec![5, 1, 1],
        };
        assert_eq!(m.schedule(), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(m.period(), 7);
        assert!((m.mean_size() - (5.0 * 64.0 + 128.0 + 256.0) / 7.0).abs() < 1e-9);
        let c = Imix::classic();
        let s = c.schedule();
        for (i, w) in c.weights.iter().enumerate() {
            assert_eq!(s.iter().filter(|&&x| x == i).count(), *w as usize);
        }
    }

    #[test]
    fn frame_size_override_is_checked_against_the_profile() {
        let mut p = Profile::load("syn-flood").expect("syn-flood");
        let e = p.set_frame_size(64).expect_err("too small");
        assert!(e.contains("78 to 1518"), "{e}");
        p.set_frame_size(1518).expect("largest");
        assert_eq!(p.frame_size, 1518);
        let mut q = Profile::load("imix").expect("imix");
        assert!(q.imix.is_some());
        q.set_frame_size(256).expect("one size");
        assert!(q.imix.is_none());
        let mut v = Profile::load("min-multi-flow-qinq").expect("qinq");
        assert_eq!(v.max_frame_size(), 1526);
        v.set_frame_size(1526).expect("QinQ's largest");
    }

    #[test]
    fn defaults_are_the_lab_addresses() {
        let p = Profile::from_toml("", "empty.toml").expect("empty profile");
        assert_eq!(p.frame_size, 64);
        assert_eq!(p.ip_dst.octets(), defaults::DUT_IP);
        assert_eq!(p.eth_dst, defaults::DUT_MAC);
        assert!(p.dns.is_none());
    }
}
