//! `sink`'s records (keys documented in sink/README.md).

use serde::{Deserialize, Serialize};

use crate::Kind;

/// Capture drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    /// Frames the interface or kernel dropped before the socket saw them.
    pub kernel: u64,
    /// Frames lost because sink's ring was full.
    pub ring: u64,
    /// Times the TPACKET_V3 block queue froze (user space behind).
    pub freezes: u64,
}

/// The `ready` record: capturing has begun.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// Always [`Kind::Ready`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Interface captured on.
    pub iface: String,
    /// `af-packet` or `af-xdp`.
    pub backend: String,
    /// `hw` or `sw`.
    pub clock: String,
}

/// An interval record (counters cumulative, rates over the interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Always [`Kind::Interval`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Seconds since the start.
    pub t: f64,
    /// Frames so far.
    pub packets: u64,
    /// Bytes so far.
    pub bytes: u64,
    /// Frames/s over the interval.
    pub pps: f64,
    /// Mbit/s over the interval.
    pub mbps: f64,
    /// Mbit/s on the wire (+24 bytes per frame).
    pub mbps_wire: f64,
    /// Drops so far.
    pub drops: Drops,
    /// gen probes received so far.
    pub probe_received: u64,
    /// gen probes lost so far.
    pub probe_lost: u64,
}

/// One of the busiest flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Source address (IPv4 or IPv6).
    pub src: std::net::IpAddr,
    /// Destination address (IPv4 or IPv6).
    pub dst: std::net::IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Frames.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Frames by timestamp source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamps {
    /// NIC hardware.
    pub hw: u64,
    /// Kernel software.
    pub sw: u64,
    /// Taken on copy to user space.
    pub copy: u64,
}

/// One-way latency of gen's probes, ns (all `None` when none was taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Probes with a latency.
    pub count: u64,
    /// Minimum.
    pub min: Option<u64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Maximum.
    pub max: Option<u64>,
}

/// One probe stream's quality at the receiver (`sink::streams` defines each figure:
/// loss, duplicates, RFC 4737 reordering and its extent, RFC 3550 jitter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamStats {
    /// Stream id (gen's TX queue).
    pub stream: u8,
    /// Probes received, duplicates included.
    pub received: u64,
    /// Distinct sequence numbers.
    pub unique: u64,
    /// Highest minus lowest sequence number seen, plus one.
    pub expected: u64,
    /// `expected - unique`.
    pub lost: u64,
    /// Sequence numbers seen again.
    pub duplicates: u64,
    /// Arrivals below the next expected sequence number (RFC 4737).
    pub reordered: u64,
    /// Largest RFC 4737 reordering extent, in arrivals (saturates at 1024).
    pub reorder_extent_max: u64,
    /// RFC 3550 interarrival jitter, ns; null without timestamps.
    pub jitter_ns: Option<f64>,
}

/// gen's probes: loss, order, latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Probes received.
    pub received: u64,
    /// Streams (gen queues) seen.
    pub streams: u64,
    /// Sequence numbers missing.
    pub lost: u64,
    /// Probes out of order.
    pub reordered: u64,
    /// Probes seen twice.
    pub duplicates: u64,
    /// One-way latency.
    pub latency_ns: Latency,
    /// Each stream's quality.
    #[serde(default)]
    pub per_stream: Vec<StreamStats>,
}

/// The final record (totals), also on Ctrl-C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Final {
    /// Always [`Kind::Final`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Interface.
    pub iface: String,
    /// `af-packet` or `af-xdp`.
    pub backend: String,
    /// `hw` or `sw`.
    pub clock: String,
    /// Seconds captured.
    pub duration_s: f64,
    /// Frames.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Mean frames/s.
    pub pps: f64,
    /// Mean Mbit/s.
    pub mbps: f64,
    /// Mean Mbit/s on the wire.
    pub mbps_wire: f64,
    /// Drops.
    pub drops: Drops,
    /// UDP flows seen (over IPv4 or IPv6).
    pub flows: usize,
    /// Frames of flows beyond the flow table.
    pub flows_overflow: u64,
    /// Frames that were not UDP over IPv4 or IPv6 (or not parsed: IPv6 extension
    /// headers, fragments, malformed).
    pub non_ip_udp: u64,
    /// The ten busiest flows.
    pub top_flows: Vec<Flow>,
    /// Frames by timestamp source.
    pub timestamps: Timestamps,
    /// gen's probes.
    pub probe: Probe,
    /// Frames written to `--write` (null without it).
    pub written: Option<u64>,
    /// CLOCK_REALTIME of the start, ns.
    pub start_realtime_ns: u64,
}
