//! What `sink` counts: packets and bytes, per-flow counts (bounded table; overflow is
//! counted), and for probe frames (`gen --stamp`) loss, reordering, duplicates and
//! one-way latency per stream.
//!
//! Probe streams (loss, duplicates, reordering, jitter) are tracked by
//! [`crate::streams`], the definitions shared with `tstamp --match seq`.

use std::collections::HashMap;
use std::net::IpAddr;

use hdrhistogram::Histogram;
use profiles::wire::{probe, udp};

pub use crate::streams::WINDOW;
/// Flow table limit; frames of flows beyond it are counted in `flows_overflow`.
pub const MAX_FLOWS: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FlowCount {
    pub packets: u64,
    pub bytes: u64,
}

/// One-way probe latency, ns.
pub use records::sink::Latency;
/// Probe summary (`probe` in JSON).
/// Probe loss, order and latency: the `probe` object of sink's final record.
pub use records::sink::Probe as ProbeSummary;

/// All of sink's counters.
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub flows: HashMap<FlowKey, FlowCount>,
    pub flows_overflow: u64,
    /// Frames that were not UDP over IPv4 or IPv6 (see [`udp::parse`]).
    pub non_ip_udp: u64,
    probe_received: u64,
    streams: crate::streams::Streams,
    latency: Histogram<u64>,
    lat_sum: u128,
    /// Probes whose latency could not be taken (hardware clock, or rx before tx).
    pub latency_skipped: u64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("packets", &self.packets)
            .finish()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    pub fn new() -> Self {
        let mut latency = Histogram::new(3).expect("valid precision");
        latency.auto(true);
        Counters {
            packets: 0,
            bytes: 0,
            flows: HashMap::new(),
            flows_overflow: 0,
            non_ip_udp: 0,
            probe_received: 0,
            streams: crate::streams::Streams::default(),
            latency,
            lat_sum: 0,
            latency_skipped: 0,
        }
    }

    /// Counts one frame; `rx_ns` on CLOCK_REALTIME when `same_clock` (software stamps).
    #[inline]
    pub fn on_frame(&mut self, data: &[u8], wire_len: u32, rx_ns: u64, same_clock: bool) {
        self.packets += 1;
        self.bytes += u64::from(wire_len.max(data.len() as u32));
        let Ok(u) = udp::parse(data) else {
            self.non_ip_udp += 1;
            return;
        };
        let key = FlowKey {
            src: u.src_ip,
            dst: u.dst_ip,
            sport: u.src_port,
            dport: u.dst_port,
        };
        let len = self.flows.len();
        match self.flows.get_mut(&key) {
            Some(c) => {
                c.packets += 1;
                c.bytes += u64::from(wire_len);
            }
            None if len < MAX_FLOWS => {
                self.flows.insert(
                    key,
                    FlowCount {
                        packets: 1,
                        bytes: u64::from(wire_len),
                    },
                );
            }
            None => self.flows_overflow += 1,
        }
        if let Ok(p) = probe::Packet::new_checked(u.payload)
            && let Ok(r) = probe::Repr::parse(&p)
        {
            self.probe_received += 1;
            // Transit time for the jitter: a constant offset between the clocks
            // cancels there, so hardware stamps count too.
            let transit = i128::from(rx_ns) - i128::from(r.tx_ns);
            self.streams.on(r.stream, r.counter, Some(transit));
            match rx_ns.checked_sub(r.tx_ns) {
                Some(l) if same_clock => {
                    let _ = self.latency.record(l.min(i64::MAX as u64 / 2));
                    self.lat_sum += u128::from(l);
                }
                _ => self.latency_skipped += 1,
            }
        }
    }

    pub fn probe(&self) -> ProbeSummary {
        let mut s = ProbeSummary {
            received: self.probe_received,
            streams: self.streams.len() as u64,
            ..Default::default()
        };
        s.per_stream = self.streams.stats();
        for st in &s.per_stream {
            s.lost += st.lost;
            s.reordered += st.reordered;
            s.duplicates += st.duplicates;
        }
        let h = &self.latency;
        if !h.is_empty() {
            s.latency_ns = Latency {
                count: h.len(),
                min: Some(h.min()),
                mean: Some(self.lat_sum as f64 / h.len() as f64),
                p50: Some(h.value_at_quantile(0.5)),
                p99: Some(h.value_at_quantile(0.99)),
                max: Some(h.max()),
            };
        }
        s
    }

    /// The `n` largest flows by packets.
    pub fn top_flows(&self, n: usize) -> Vec<(FlowKey, FlowCount)> {
        let mut v: Vec<_> = self.flows.iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_frame(stream: u8, counter: u64, tx_ns: u64) -> Vec<u8> {
        let mut pl = [0u8; probe::LEN];
        probe::Repr {
            stream,
            counter,
            tx_ns,
        }
        .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000);
        let mut out = Vec::new();
        b.write(&mut out, &pl).expect("write");
        out
    }

    #[test]
    fn loss_reorder_duplicates_latency() {
        let mut c = Counters::new();
        // stream 0: 0 1 3 2 2 5  -> lost 1 (4), reordered 1 (2 after 3), duplicate 1.
        for (k, ctr) in [0u64, 1, 3, 2, 2, 5].into_iter().enumerate() {
            let f = probe_frame(0, ctr, 1000);
            c.on_frame(&f, f.len() as u32, 1000 + 100 * (k as u64 + 1), true);
        }
        // stream 1: 10 11 (no loss)
        for ctr in [10u64, 11] {
            let f = probe_frame(1, ctr, 0);
            c.on_frame(&f, f.len() as u32, 50, true);
        }
        let p = c.probe();
        assert_eq!(
            (p.received, p.streams, p.lost, p.reordered, p.duplicates),
            (8, 2, 1, 1, 1)
        );
        assert_eq!(p.latency_ns.min, Some(50));
        assert_eq!(p.latency_ns.max, Some(600));
        assert_eq!(c.flows.len(), 1);
        assert_eq!(c.packets, 8);
    }

    #[test]
    fn probes_over_ipv6_count_in_streams_and_flows() {
        let src: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut c = Counters::new();
        for ctr in [0u64, 1, 3] {
            let mut pl = [0u8; probe::LEN];
            probe::Repr {
                stream: 2,
                counter: ctr,
                tx_ns: 10,
            }
            .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
            let mut f = Vec::new();
            etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6(src, dst, 64)
                .udp(1000, 2000)
                .write(&mut f, &pl)
                .expect("write");
            c.on_frame(&f, f.len() as u32, 20, true);
        }
        let p = c.probe();
        assert_eq!((p.received, p.streams, p.lost), (3, 1, 1));
        assert_eq!(c.non_ip_udp, 0);
        let (k, v) = c.top_flows(1)[0];
        assert_eq!((k.src, k.dst), (IpAddr::from(src), IpAddr::from(dst)));
        assert_eq!(v.packets, 3);
    }

    #[test]
    fn big_jump_clears_the_window() {
        let mut c = Counters::new();
        for ctr in [0u64, WINDOW * 3, 1] {
            let f = probe_frame(0, ctr, 0);
            c.on_frame(&f, 60, 0, false);
        }
        let p = c.probe();
        assert_eq!(p.duplicates, 0);
        assert_eq!(p.reordered, 1);
        assert_eq!(p.latency_ns.count, 0);
    }

    #[test]
    fn garbage_is_counted_not_parsed() {
        let mut c = Counters::new();
        let f = probe_frame(0, 1, 0);
        for cut in 0..f.len() {
            c.on_frame(&f[..cut], cut as u32, 0, true);
        }
        assert_eq!(c.packets, f.len() as u64);
        assert_eq!(c.probe().received, 0);
    }
}
