//! `tstamp`'s records (keys documented in tstamp/README.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Kind;

/// Response-time summary, ns (`rtt_ns`). All `None` when empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Matched pairs.
    pub count: u64,
    /// Minimum.
    pub min: Option<u64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Standard deviation.
    pub stddev: Option<f64>,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// 99.9th percentile.
    pub p99_9: Option<u64>,
    /// 99.99th percentile.
    pub p99_99: Option<u64>,
    /// Maximum.
    pub max: Option<u64>,
}

/// Frames that were not requests or responses, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skipped {
    /// Unparsable.
    pub malformed: u64,
    /// Neither IPv4 nor IPv6.
    pub not_ip: u64,
    /// Not UDP, an IP fragment, or behind an IPv6 extension header (not parsed).
    pub not_udp: u64,
    /// Neither DNS nor gen's probe.
    pub not_dns_or_probe: u64,
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
    pub iface: Option<String>,
    /// `af-packet` or `af-xdp`.
    pub backend: String,
    /// `hw` or `sw`.
    pub clock: String,
    /// `dns` or `seq`.
    #[serde(rename = "match")]
    pub match_mode: String,
}

/// One interval record (deltas over the interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Always [`Kind::Interval`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// End of the interval, seconds since the start.
    pub t: f64,
    /// Requests seen.
    pub requests: u64,
    /// Responses seen.
    pub responses: u64,
    /// Pairs matched.
    pub matched: u64,
    /// Requests given up as lost.
    pub lost: u64,
    /// Responses without a request.
    pub unmatched_responses: u64,
    /// Repeated responses.
    pub duplicates: u64,
    /// Requests evicted (too many pending).
    pub evicted: u64,
    /// Frames the capture dropped.
    pub capture_drops: u64,
    /// Response times of the interval.
    pub rtt_ns: Summary,
    /// Responses by RCODE name.
    pub rcodes: BTreeMap<String, u64>,
}

/// An interface's receive counters over a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCounters {
    /// Frames the interface received.
    pub rx_packets: u64,
    /// Frames it dropped on receive.
    pub rx_dropped: u64,
}

/// The final record (totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Final {
    /// Always [`Kind::Final`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// "hw" | "sw" live; "file" offline (the capture's own timestamps).
    pub clock: String,
    /// `dns` or `seq`.
    #[serde(rename = "match")]
    pub match_mode: String,
    /// Interface or file.
    pub source: String,
    /// Capture time covered.
    pub duration_s: f64,
    /// Frames read.
    pub frames: u64,
    /// Requests seen.
    pub requests: u64,
    /// Responses seen.
    pub responses: u64,
    /// Pairs matched.
    pub matched: u64,
    /// Requests without a response.
    pub lost: u64,
    /// Responses without a request.
    pub unmatched_responses: u64,
    /// Repeated responses.
    pub duplicates: u64,
    /// Requests evicted (too many pending).
    pub evicted: u64,
    /// Frames the capture dropped.
    pub capture_drops: u64,
    /// The capture port's own counters over the capture (`/proc/net/dev`), to set
    /// against `frames` and `capture_drops`; null when reading a file.
    pub port: Option<PortCounters>,
    /// Responses timestamped before their request.
    pub negative_rtt: u64,
    /// Frames skipped, by reason.
    pub skipped: Skipped,
    /// The capture file ended mid-frame.
    pub capture_truncated: bool,
    /// Response times.
    pub rtt_ns: Summary,
    /// Responses by RCODE name.
    pub rcodes: BTreeMap<String, u64>,
    /// `--match seq`: each probe stream's quality as its responses came back
    /// (loss, duplicates, RFC 4737 reordering, RFC 3550 jitter of the response
    /// time); empty in dns mode.
    #[serde(default)]
    pub streams: Vec<crate::sink::StreamStats>,
}
