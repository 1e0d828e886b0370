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

impl Final {
    /// What several gens (one per generator host, run together) did as one:
    /// counts and rates summed, the longest duration, the worst pacing and the
    /// largest shortfall of any of them, replies per request and the achieved
    /// ratio recomputed from the sums. `iface` lists every interface. `None`
    /// for no record.
    pub fn total(finals: &[Final]) -> Option<Final> {
        let first = finals.first()?;
        let sum_u = |f: fn(&Final) -> u64| finals.iter().map(f).sum::<u64>();
        let sum_f = |f: fn(&Final) -> f64| finals.iter().map(f).sum::<f64>();
        let tx_packets = sum_u(|f| f.tx_packets);
        let rx_packets = sum_u(|f| f.rx_packets);
        let tx_pps = sum_f(|f| f.tx_pps);
        let requested_pps = finals.iter().map(|f| f.requested_pps).sum::<Option<f64>>();
        let mut rx_rcodes = BTreeMap::new();
        for f in finals {
            for (k, n) in &f.rx_rcodes {
                *rx_rcodes.entry(k.clone()).or_insert(0) += n;
            }
        }
        let xsk_stats = finals
            .iter()
            .filter_map(|f| f.xsk_stats)
            .reduce(|a, b| XskKernelStats {
                rx_dropped: a.rx_dropped + b.rx_dropped,
                rx_ring_full: a.rx_ring_full + b.rx_ring_full,
                rx_fill_ring_empty_descs: a.rx_fill_ring_empty_descs + b.rx_fill_ring_empty_descs,
                tx_invalid_descs: a.tx_invalid_descs + b.tx_invalid_descs,
                rx_invalid_descs: a.rx_invalid_descs + b.rx_invalid_descs,
            });
        let tx_check = finals
            .iter()
            .map(|f| f.tx_check.clone())
            .collect::<Option<Vec<TxCheck>>>()
            .map(|c| {
                let interface_tx: u64 = c.iter().map(|c| c.interface_tx).sum();
                let gen_tx: u64 = c.iter().map(|c| c.gen_tx).sum();
                let difference = gen_tx as i64 - interface_tx as i64;
                TxCheck {
                    counter: c
                        .iter()
                        .map(|c| c.counter.as_str())
                        .collect::<Vec<_>>()
                        .join(" + "),
                    interface_tx,
                    gen_tx,
                    difference,
                    difference_percent: 100.0 * difference.unsigned_abs() as f64
                        / interface_tx.max(1) as f64,
                    interface_tx_dropped: c.iter().map(|c| c.interface_tx_dropped).sum(),
                    agrees: c.iter().all(|c| c.agrees),
                }
            });
        let worst = |f: fn(&Deviation) -> u64| {
            finals
                .iter()
                .map(|x| f(&x.pacing_deviation_ns))
                .max()
                .unwrap_or(0)
        };
        Some(Final {
            kind: Kind::Final,
            schema_version: first.schema_version,
            engine: first.engine,
            xsk_mode: first.xsk_mode.clone(),
            iface: finals
                .iter()
                .map(|f| f.iface.as_str())
                .collect::<Vec<_>>()
                .join(","),
            profile: first.profile.clone(),
            profile_seed: first.profile_seed,
            frame_len: first.frame_len,
            queues: finals.iter().map(|f| f.queues).sum(),
            duration_s: finals.iter().map(|f| f.duration_s).fold(0.0, f64::max),
            tx_packets,
            tx_bytes: sum_u(|f| f.tx_bytes),
            tx_pps,
            tx_mbps: sum_f(|f| f.tx_mbps),
            tx_mbps_wire: sum_f(|f| f.tx_mbps_wire),
            requested_pps,
            achieved_ratio: requested_pps.filter(|r| *r > 0.0).map(|r| tx_pps / r),
            interval_pps_mean: sum_f(|f| f.interval_pps_mean),
            // Independent hosts: their variances add.
            interval_pps_stddev: sum_f(|f| f.interval_pps_stddev.powi(2)).sqrt(),
            pacing_deviation_ns: Deviation {
                p50: worst(|d| d.p50),
                p90: worst(|d| d.p90),
                p99: worst(|d| d.p99),
                max: worst(|d| d.max),
            },
            rx_packets,
            rx_pps: sum_f(|f| f.rx_pps),
            rx_rcodes,
            replies_per_request: if tx_packets > 0 {
                rx_packets as f64 / tx_packets as f64
            } else {
                0.0
            },
            interrupted: finals.iter().any(|f| f.interrupted),
            xsk_stats,
            tx_verdicts: sum_u(|f| f.tx_verdicts),
            tx_dropped: sum_u(|f| f.tx_dropped),
            tx_check,
            rx_probes: sum_u(|f| f.rx_probes),
            rx_counter: finals
                .iter()
                .map(|f| f.rx_counter.clone())
                .collect::<Option<Vec<_>>>()
                .and(first.rx_counter.clone()),
            rate_shortfall: finals
                .iter()
                .filter_map(|f| f.rate_shortfall.clone())
                .max_by(|a, b| a.short_percent.total_cmp(&b.short_percent)),
            start_at_ns: first.start_at_ns,
            first_tx_ns: finals.iter().filter_map(|f| f.first_tx_ns).min(),
        })
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn host(iface: &str, tx: u64, rx: u64, requested: f64, short: Option<f64>) -> Final {
        let json = serde_json::json!({
            "type": "final", "schema_version": crate::SCHEMA_VERSION, "engine": "afxdp",
            "xsk_mode": "copy", "iface": iface, "profile": "dns-small", "frame_len": 78,
            "queues": 1, "duration_s": 2.0, "tx_packets": tx, "tx_bytes": tx * 78,
            "tx_pps": tx as f64 / 2.0, "tx_mbps": 1.0, "tx_mbps_wire": 1.5,
            "requested_pps": requested, "achieved_ratio": null,
            "interval_pps_mean": tx as f64 / 2.0, "interval_pps_stddev": 3.0,
            "pacing_deviation_ns": {"p50": 10, "p90": 20, "p99": 30 + tx, "max": 40},
            "rx_packets": rx, "rx_pps": rx as f64 / 2.0,
            "rx_rcodes": {"NOERROR": rx}, "replies_per_request": 1.0,
            "interrupted": false, "xsk_stats": null, "tx_verdicts": tx,
            "tx_dropped": 1, "rx_probes": 0, "rx_counter": "xdp",
            "tx_check": {"counter": format!("{iface} tx_packets"), "interface_tx": tx,
                "gen_tx": tx, "difference": 0, "difference_percent": 0.0,
                "interface_tx_dropped": 0, "agrees": true},
            "rate_shortfall": short.map(|s| serde_json::json!({
                "requested_pps": requested, "achieved_pps": requested * (1.0 - s / 100.0),
                "short_percent": s, "behind": "send_loop"})),
            "start_at_ns": 5, "first_tx_ns": 100 + tx
        });
        serde_json::from_value(json).expect("a valid gen final record")
    }

    #[test]
    fn the_total_of_several_hosts_sums_counts_and_keeps_the_worst() {
        assert!(Final::total(&[]).is_none());
        let a = host("gen0", 1000, 900, 600.0, None);
        let b = host("gen0", 3000, 2000, 1600.0, Some(6.25));
        let t = Final::total(&[a.clone(), b]).unwrap();
        assert_eq!(
            (t.tx_packets, t.rx_packets, t.tx_verdicts),
            (4000, 2900, 4000)
        );
        assert_eq!((t.tx_pps, t.rx_pps, t.tx_dropped), (2000.0, 1450.0, 2));
        assert_eq!(t.requested_pps, Some(2200.0));
        assert_eq!(t.achieved_ratio, Some(2000.0 / 2200.0));
        assert_eq!(t.replies_per_request, 2900.0 / 4000.0);
        assert_eq!(t.rx_rcodes.get("NOERROR"), Some(&2900));
        assert_eq!(t.queues, 2);
        assert_eq!(t.pacing_deviation_ns.p99, 3030);
        assert_eq!(t.interval_pps_stddev, 18f64.sqrt());
        assert_eq!(t.rate_shortfall.map(|s| s.short_percent), Some(6.25));
        assert_eq!(t.first_tx_ns, Some(1100));
        let c = t.tx_check.unwrap();
        assert_eq!((c.interface_tx, c.gen_tx, c.agrees), (4000, 4000, true));
        assert_eq!(t.rx_counter.as_deref(), Some("xdp"));
        // One host without a request: no total request.
        let mut d = a.clone();
        d.requested_pps = None;
        d.tx_check = None;
        let t = Final::total(&[a, d]).unwrap();
        assert_eq!((t.requested_pps, t.achieved_ratio), (None, None));
        assert!(t.tx_check.is_none());
    }
}
