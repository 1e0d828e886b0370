//! Counters shared between the engine threads and the reporter, and the records
//! printed every interval and at the end (text for people, JSON lines and CSV for
//! `lab run`; keys are a contract, see README.md).
//!
//! Engine threads publish their queue's [`QueueCounters`] (relaxed atomics, one
//! writer each); the reporter only reads. Replies come from the XDP reply counter
//! ([`crate::rxcount`]), which classifies DNS responses by RCODE in the kernel.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use profiles::wire::dns;

use crate::units::WIRE_OVERHEAD;
use records::Kind;
pub use records::generator::{
    Behind, Deviation, Final, Interval, Ready, Shortfall, TxCheck, XskKernelStats,
};

/// One queue's counters (one writer: its engine thread).
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Frames the kernel reports as transmitted (afxdp: completions less the
    /// frames completed unsent; xdp-live: frames the driver accepted).
    pub tx_packets: AtomicU64,
    /// Frames handed over (afxdp: put on the TX ring; xdp-live: XDP_TX verdicts).
    pub tx_verdicts: AtomicU64,
    /// Frames the kernel refused (afxdp: sendto EBUSY; xdp-live: driver drops and
    /// failed redirects).
    pub tx_dropped: AtomicU64,
    /// afxdp: sends that found every TX frame in flight (completions late).
    pub tx_stall_no_frames: AtomicU64,
    /// afxdp: sends that found the TX ring full.
    pub tx_stall_ring_full: AtomicU64,
    /// Their bytes (no FCS).
    pub tx_bytes: AtomicU64,
    /// The socket's XDP_STATISTICS at the end: rx_dropped, rx_ring_full,
    /// rx_fill_ring_empty_descs, tx_invalid_descs, rx_invalid_descs.
    pub xsk: [AtomicU64; 5],
}

impl QueueCounters {
    /// Stores a socket's kernel statistics (at the end of the run).
    pub fn store_xsk(&self, q: &xdplayer::XskQueue) {
        if let Ok(st) = q.stats() {
            let v = [
                st.rx_dropped,
                st.rx_ring_full,
                st.rx_fill_ring_empty_descs,
                st.tx_invalid_descs,
                st.rx_invalid_descs,
            ];
            for (a, b) in self.xsk.iter().zip(v) {
                a.store(b, Relaxed);
            }
        }
    }
}

/// Kernel AF_XDP socket statistics summed over the queues.
pub fn xsk_totals(queues: &[QueueCounters]) -> XskKernelStats {
    let mut s = [0u64; 5];
    for q in queues {
        for (a, b) in s.iter_mut().zip(&q.xsk) {
            *a += b.load(Relaxed);
        }
    }
    XskKernelStats {
        rx_dropped: s[0],
        rx_ring_full: s[1],
        rx_fill_ring_empty_descs: s[2],
        tx_invalid_descs: s[3],
        rx_invalid_descs: s[4],
    }
}

/// Totals over all queues at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames handed over (verdicts / ring submissions).
    pub tx_verdicts: u64,
    /// Frames the kernel refused.
    pub tx_dropped: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// DNS responses by RCODE.
    pub rcodes: [u64; 16],
    /// gen probes received.
    pub rx_probes: u64,
    /// Non-UDP frames passed to the kernel.
    pub rx_passed: u64,
}

impl Snapshot {
    /// Sums the queues' TX counters and takes the replies from the XDP reply
    /// counter (`rx`; none with --no-rx).
    pub fn take(queues: &[QueueCounters], rx: Option<&crate::rxcount::RxTotals>) -> Snapshot {
        let mut s = Snapshot::default();
        for q in queues {
            s.tx_packets += q.tx_packets.load(Relaxed);
            s.tx_bytes += q.tx_bytes.load(Relaxed);
            s.tx_verdicts += q.tx_verdicts.load(Relaxed);
            s.tx_dropped += q.tx_dropped.load(Relaxed);
        }
        if let Some(r) = rx {
            s.rx_packets += r.packets;
            s.rx_bytes += r.bytes;
            s.rx_probes += r.probes;
            s.rx_passed += r.passed;
            for (a, b) in s.rcodes.iter_mut().zip(&r.rcodes) {
                *a += b;
            }
        }
        s
    }

    /// Non-zero RCODE counts by name.
    pub fn rcode_map(&self) -> BTreeMap<String, u64> {
        self.rcodes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (dns::Rcode(i as u8).name(), *n))
            .collect()
    }
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs / 1e6
    } else {
        0.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The record for the interval from `prev` (at `t_prev`) to `cur` (at `t`).
pub fn interval(iface: &str, t: f64, t_prev: f64, prev: &Snapshot, cur: &Snapshot) -> Interval {
    let dt = t - t_prev;
    let dtx = cur.tx_packets - prev.tx_packets;
    let dtb = cur.tx_bytes - prev.tx_bytes;
    let drx = cur.rx_packets - prev.rx_packets;
    let drb = cur.rx_bytes - prev.rx_bytes;
    let rate = |n: u64| if dt > 0.0 { round3(n as f64 / dt) } else { 0.0 };
    Interval {
        kind: Kind::Interval,
        schema_version: records::SCHEMA_VERSION,
        t: round3(t),
        iface: iface.to_owned(),
        tx_packets: cur.tx_packets,
        tx_bytes: cur.tx_bytes,
        tx_pps: rate(dtx),
        tx_mbps: round3(mbps(dtb, dt)),
        tx_mbps_wire: round3(mbps(dtb + dtx * WIRE_OVERHEAD, dt)),
        rx_packets: cur.rx_packets,
        rx_pps: rate(drx),
        rx_mbps: round3(mbps(drb, dt)),
        rx_mbps_wire: round3(mbps(drb + drx * WIRE_OVERHEAD, dt)),
        rx_rcodes: cur.rcode_map(),
    }
}

/// Pacing deviation percentiles from a histogram of per-packet deviations.
pub fn deviation_of(h: &Histogram<u64>) -> Deviation {
    if h.is_empty() {
        return Deviation::default();
    }
    Deviation {
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Human lines (MoonGen's columns).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// CSV with a header.
    Csv,
}

const CSV_HEADER: &str =
    "type,t,tx_packets,tx_pps,tx_mbps,tx_mbps_wire,rx_packets,rx_pps,rx_mbps,rx_mbps_wire";

/// Writes records in the chosen format. Write errors (closed pipe) are ignored.
#[derive(Debug)]
pub struct Reporter<W: Write> {
    out: W,
    format: Output,
    header_done: bool,
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out`.
    pub fn new(out: W, format: Output) -> Reporter<W> {
        Reporter {
            out,
            format,
            header_done: false,
        }
    }

    fn csv_header(&mut self) {
        if !self.header_done {
            let _ = writeln!(self.out, "{CSV_HEADER}");
            self.header_done = true;
        }
    }

    /// Writes the ready record (`--start-at`): JSON, or one line of text
    /// (nothing in CSV, whose rows are intervals and the final).
    pub fn ready(&mut self, r: &Ready) {
        match self.format {
            Output::Json => {
                let _ = writeln!(self.out, "{}", serde_json::to_string(r).unwrap_or_default());
            }
            Output::Csv => {}
            Output::Text => {
                let _ = writeln!(
                    self.out,
                    "[{}] ready: sending at {} (in {:.3} s)",
                    r.iface,
                    profiles::units::format_wall_time(r.start_at_ns),
                    r.start_at_ns.saturating_sub(r.now_ns) as f64 / 1e9
                );
            }
        }
        let _ = self.out.flush();
    }

    /// Writes an interval record.
    pub fn interval(&mut self, r: &Interval) {
        match self.format {
            Output::Json => {
                let _ = writeln!(self.out, "{}", serde_json::to_string(r).unwrap_or_default());
            }
            Output::Csv => {
                self.csv_header();
                let _ = writeln!(
                    self.out,
                    "interval,{},{},{},{},{},{},{},{},{}",
                    r.t,
                    r.tx_packets,
                    r.tx_pps,
                    r.tx_mbps,
                    r.tx_mbps_wire,
                    r.rx_packets,
                    r.rx_pps,
                    r.rx_mbps,
                    r.rx_mbps_wire
                );
            }
            Output::Text => {
                let mut line = format!(
                    "[{}] {:7.3}s TX: {:.4} Mpps, {:.0} Mbit/s ({:.0} Mbit/s with framing), total {} packets | RX: {:.4} Mpps, {:.0} Mbit/s, total {} packets",
                    r.iface,
                    r.t,
                    r.tx_pps / 1e6,
                    r.tx_mbps,
                    r.tx_mbps_wire,
                    r.tx_packets,
                    r.rx_pps / 1e6,
                    r.rx_mbps,
                    r.rx_packets
                );
                line.push_str(&rcodes_suffix(&r.rx_rcodes));
                let _ = writeln!(self.out, "{line}");
            }
        }
        let _ = self.out.flush();
    }

    /// Writes the final record.
    pub fn final_record(&mut self, r: &Final) {
        match self.format {
            Output::Json => {
                let _ = writeln!(self.out, "{}", serde_json::to_string(r).unwrap_or_default());
            }
            Output::Csv => {
                self.csv_header();
                let _ = writeln!(
                    self.out,
                    "final,{},{},{},{},{},{},{},,",
                    r.duration_s,
                    r.tx_packets,
                    r.tx_pps,
                    r.tx_mbps,
                    r.tx_mbps_wire,
                    r.rx_packets,
                    r.rx_pps
                );
            }
            Output::Text => {
                let _ = writeln!(
                    self.out,
                    "[{}] total: {} packets ({} bytes) in {:.3}s over {} queue(s), engine {}{}",
                    r.iface,
                    r.tx_packets,
                    r.tx_bytes,
                    r.duration_s,
                    r.queues,
                    r.engine,
                    r.xsk_mode
                        .as_ref()
                        .map(|m| format!(" ({m} mode)"))
                        .unwrap_or_default()
                );
                if let Some(seed) = r.profile_seed {
                    let _ = writeln!(
                        self.out,
                        "[{}] profile {}: random fields from seed {seed}",
                        r.iface, r.profile
                    );
                }
                let _ = writeln!(
                    self.out,
                    "[{}] TX: {:.4} Mpps, {:.1} Mbit/s ({:.1} Mbit/s with framing); interval rates {:.0} +/- {:.0} pps",
                    r.iface,
                    r.tx_pps / 1e6,
                    r.tx_mbps,
                    r.tx_mbps_wire,
                    r.interval_pps_mean,
                    r.interval_pps_stddev
                );
                if let (Some(req), Some(ratio)) = (r.requested_pps, r.achieved_ratio) {
                    let d = r.pacing_deviation_ns;
                    let _ = writeln!(
                        self.out,
                        "[{}] requested {:.0} pps, achieved {:.0} pps ({:+.3}%); pacing deviation p50 {} ns, p90 {} ns, p99 {} ns, max {} ns",
                        r.iface,
                        req,
                        r.tx_pps,
                        (ratio - 1.0) * 100.0,
                        d.p50,
                        d.p90,
                        d.p99,
                        d.max
                    );
                }
                let mut line = format!(
                    "[{}] RX: {} packets, {:.4} Mpps, {:.4} replies per request",
                    r.iface,
                    r.rx_packets,
                    r.rx_pps / 1e6,
                    r.replies_per_request
                );
                line.push_str(&rcodes_suffix(&r.rx_rcodes));
                let _ = writeln!(self.out, "{line}");
                if let Some(c) = &r.tx_check {
                    let _ = writeln!(
                        self.out,
                        "[{}] TX check: {} counted {} ({}; gen {}, {:+}); {} handed over, {} refused by the kernel",
                        r.iface,
                        c.counter,
                        c.interface_tx,
                        if c.agrees { "agrees" } else { "DISAGREES" },
                        c.gen_tx,
                        c.difference,
                        r.tx_verdicts,
                        r.tx_dropped
                    );
                }
                if let Some(sf) = &r.rate_shortfall {
                    let _ = writeln!(self.out, "[{}] {}", r.iface, sf.line());
                }
            }
        }
        let _ = self.out.flush();
    }
}

/// Mean and population standard deviation.
pub fn mean_stddev(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
    (m, v.sqrt())
}

/// ` (NXDOMAIN 5, NOERROR 2)` for the text lines, or nothing when no replies were parsed.
fn rcodes_suffix(rcodes: &BTreeMap<String, u64>) -> String {
    if rcodes.is_empty() {
        return String::new();
    }
    let rc: Vec<String> = rcodes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(" ({})", rc.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_rates_and_json_keys() {
        let prev = Snapshot {
            tx_packets: 100,
            tx_bytes: 6000,
            ..Default::default()
        };
        let mut cur = Snapshot {
            tx_packets: 1100,
            tx_bytes: 66_000,
            rx_packets: 10,
            rx_bytes: 600,
            ..Default::default()
        };
        cur.rcodes[3] = 7;
        let r = interval("gen0", 2.0, 1.0, &prev, &cur);
        assert_eq!(r.tx_pps, 1000.0);
        assert_eq!(r.tx_mbps, 0.48);
        assert_eq!(r.tx_mbps_wire, round3((60_000.0 + 24_000.0) * 8.0 / 1e6));
        let v: serde_json::Value = serde_json::to_value(&r).expect("json");
        for k in [
            "type",
            "t",
            "tx_packets",
            "tx_pps",
            "tx_mbps",
            "tx_mbps_wire",
            "rx_packets",
            "rx_pps",
            "rx_rcodes",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["rx_rcodes"]["NXDOMAIN"], 7);
        assert_eq!(v["type"], "interval");
    }

    #[test]
    fn stats_helpers() {
        assert_eq!(mean_stddev(&[1.0, 3.0]), (2.0, 1.0));
        let mut h = Histogram::<u64>::new(3).expect("hist");
        for v in 1..=100 {
            h.record(v).expect("record");
        }
        let d = deviation_of(&h);
        assert_eq!((d.p50, d.max), (50, 100));
    }
}
