//! `gen`'s records (keys documented in gen/README.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Kind;

/// gen's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// AF_XDP sockets.
    #[default]
    Afxdp,
    /// BPF_PROG_RUN live frames.
    XdpLive,
}

impl Engine {
    /// Name as on the command line and in the records.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Afxdp => "afxdp",
            Engine::XdpLive => "xdp-live",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    /// `afxdp` or `xdp-live`, as on the command line.
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "afxdp" => Ok(Engine::Afxdp),
            "xdp-live" => Ok(Engine::XdpLive),
            _ => Err(format!("unknown engine `{s}` (afxdp, xdp-live)")),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An interval record.
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
    /// Interface.
    pub iface: String,
    /// Cumulative frames sent (kernel-confirmed).
    pub tx_packets: u64,
    /// Cumulative bytes sent.
    pub tx_bytes: u64,
    /// Frames/s over the interval.
    pub tx_pps: f64,
    /// Mbit/s over the interval (frame bytes without FCS).
    pub tx_mbps: f64,
    /// Mbit/s on the wire (+24 bytes per frame: FCS, preamble, gap).
    pub tx_mbps_wire: f64,
    /// Cumulative frames received.
    pub rx_packets: u64,
    /// Received frames/s over the interval.
    pub rx_pps: f64,
    /// Received Mbit/s over the interval.
    pub rx_mbps: f64,
    /// Received Mbit/s on the wire.
    pub rx_mbps_wire: f64,
    /// Cumulative DNS responses by RCODE name.
    pub rx_rcodes: BTreeMap<String, u64>,
}

/// Pacing deviation percentiles (actual - scheduled send time), ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

/// Kernel AF_XDP socket statistics summed over the queues (XDP_STATISTICS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XskKernelStats {
    /// Frames dropped by the kernel (e.g. socket gone, frame too big).
    pub rx_dropped: u64,
    /// RX ring full.
    pub rx_ring_full: u64,
    /// Fill ring empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Invalid TX descriptors.
    pub tx_invalid_descs: u64,
    /// Invalid RX descriptors.
    pub rx_invalid_descs: u64,
}

/// gen's count checked against the interface's own counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxCheck {
    /// The interface counter compared against, e.g. `gen0 ethtool *xdp_xmit (sum over queues)`.
    pub counter: String,
    /// Its increase over the run (read after the queues settled).
    pub interface_tx: u64,
    /// gen's tx_packets.
    pub gen_tx: u64,
    /// gen_tx - interface_tx.
    pub difference: i64,
    /// |difference| / interface_tx, percent.
    pub difference_percent: f64,
    /// The interface's tx_dropped over the run.
    pub interface_tx_dropped: u64,
    /// |difference| <= 0.1 % (or at most one frame).
    pub agrees: bool,
}

impl TxCheck {
    /// The one line for stderr when they disagree.
    pub fn warning(&self) -> Option<String> {
        (!self.agrees).then(|| {
            format!(
                "warning: gen counted {} frames sent but {} counted {} ({:+}, {:.3} %): gen's TX figure is not confirmed by the interface",
                self.gen_tx, self.counter, self.interface_tx, self.difference, self.difference_percent
            )
        })
    }
}

/// Which side held a requested rate back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behind {
    /// The sender could not issue frames in time.
    SendLoop,
    /// The TX ring was full.
    TxRingFull,
    /// Every TX frame was in flight (completions late).
    CompletionsLate,
    /// Frames were handed over but the kernel refused them.
    KernelDropped,
}

impl Behind {
    /// Words for people.
    pub fn words(self) -> &'static str {
        match self {
            Behind::SendLoop => "send loop",
            Behind::TxRingFull => "TX ring full",
            Behind::CompletionsLate => "completions late",
            Behind::KernelDropped => "kernel dropped",
        }
    }
}

/// A requested rate that was not reached, and which side was behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shortfall {
    /// Requested frames/s.
    pub requested_pps: f64,
    /// Achieved frames/s (kernel-confirmed departures).
    pub achieved_pps: f64,
    /// How far below, percent of the request.
    pub short_percent: f64,
    /// Which side was behind.
    pub behind: Behind,
}

impl Shortfall {
    /// The one line for stderr and the text summary.
    pub fn line(&self) -> String {
        format!(
            "requested rate not reached: {:.0} of {:.0} frames/s ({:.1} % short); behind: {}",
            self.achieved_pps,
            self.requested_pps,
            self.short_percent,
            self.behind.words()
        )
    }
}

/// The final record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Final {
    /// Always [`Kind::Final`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The engine.
    pub engine: Engine,
    /// AF_XDP bind mode (`copy`, `zerocopy`), null for xdp-live.
    pub xsk_mode: Option<String>,
    /// Interface.
    pub iface: String,
    /// Profile name.
    pub profile: String,
    /// The profile's seed (`seed = N`), which its random fields draw from: the same
    /// seed sends the same frames. Null when the profile has none (absent in older
    /// records).
    #[serde(default)]
    pub profile_seed: Option<u64>,
    /// Frame length (buffer bytes, no FCS); for an IMIX profile the mix's mean,
    /// rounded.
    pub frame_len: usize,
    /// Number of queues (threads).
    pub queues: usize,
    /// Seconds from the start to the last packet.
    pub duration_s: f64,
    /// Frames the kernel reports transmitted.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Mean frames/s.
    pub tx_pps: f64,
    /// Mean Mbit/s.
    pub tx_mbps: f64,
    /// Mean Mbit/s on the wire.
    pub tx_mbps_wire: f64,
    /// Requested rate in frames/s (null: as fast as possible).
    pub requested_pps: Option<f64>,
    /// tx_pps / requested_pps.
    pub achieved_ratio: Option<f64>,
    /// Mean of the interval rates (full intervals only).
    pub interval_pps_mean: f64,
    /// Standard deviation of the interval rates.
    pub interval_pps_stddev: f64,
    /// Pacing deviation (only when paced; zeros otherwise).
    pub pacing_deviation_ns: Deviation,
    /// Frames received.
    pub rx_packets: u64,
    /// Mean received frames/s.
    pub rx_pps: f64,
    /// DNS responses by RCODE.
    pub rx_rcodes: BTreeMap<String, u64>,
    /// rx_packets / tx_packets.
    pub replies_per_request: f64,
    /// True when stopped by a signal.
    pub interrupted: bool,
    /// AF_XDP sockets' kernel statistics (null when no socket was open).
    pub xsk_stats: Option<XskKernelStats>,
    /// Frames handed over: afxdp ring submissions, xdp-live XDP_TX verdicts.
    pub tx_verdicts: u64,
    /// Frames the kernel refused.
    pub tx_dropped: u64,
    /// tx_packets checked against the interface's own counter (null when it
    /// could not be read).
    pub tx_check: Option<TxCheck>,
    /// gen probes among the replies.
    pub rx_probes: u64,
    /// How replies were counted: "xdp", or null with --no-rx.
    pub rx_counter: Option<String>,
    /// Set when a requested rate was not reached (by more than 0.5 %).
    pub rate_shortfall: Option<Shortfall>,
    /// `--start-at`: the requested start, CLOCK_REALTIME ns since the epoch (null
    /// without `--start-at`; absent in older records).
    #[serde(default)]
    pub start_at_ns: Option<u64>,
    /// CLOCK_REALTIME (ns since the epoch) read right after the first frame was
    /// handed to the kernel (null when nothing was sent; absent in older records).
    #[serde(default)]
    pub first_tx_ns: Option<u64>,
}

/// The ready record (only with `--start-at`): everything is set up (sockets,
/// programs, frames) and gen waits for the start time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// Always [`Kind::Ready`].
    #[serde(rename = "type")]
    pub kind: Kind,
    /// [`crate::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Interface.
    pub iface: String,
    /// The start gen waits for, CLOCK_REALTIME ns since the epoch.
    pub start_at_ns: u64,
    /// CLOCK_REALTIME when this record was written (ns since the epoch).
    pub now_ns: u64,
}
