//! Synthetic captures with known answers, for tests and the benchmark: DNS queries from
//! 198.18.0.1 to 198.18.0.2:53 and NXDOMAIN responses with chosen response times, some
//! requests left unanswered, written as pcap (µs or ns) or pcapng. Not used at run time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::net::IpAddr;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};
use profiles::wire::dns;

/// Client and server of [`dns_frame`].
pub const CLIENT4: [u8; 4] = [198, 18, 0, 1];
/// Server of [`dns_frame`].
pub const SERVER4: [u8; 4] = [198, 18, 0, 2];

/// A DNS query or response frame (Ethernet/IPv4/UDP), client 198.18.0.1:`port`,
/// server 198.18.0.2:53, question `name` A IN; responses carry `rcode`.
pub fn dns_frame(id: u16, response: bool, name: &str, port: u16, rcode: u8) -> Vec<u8> {
    dns_frame_between(
        CLIENT4.into(),
        SERVER4.into(),
        id,
        response,
        name,
        port,
        rcode,
    )
}

/// As [`dns_frame`] between any `client` and `server` of one IP version (IPv4 or
/// IPv6; mixed versions fall back to IPv4's 0.0.0.0).
pub fn dns_frame_between(
    client: IpAddr,
    server: IpAddr,
    id: u16,
    response: bool,
    name: &str,
    port: u16,
    rcode: u8,
) -> Vec<u8> {
    let mut msg = vec![0u8; 12];
    msg[0..2].copy_from_slice(&id.to_be_bytes());
    let flags: u16 = if response {
        0x8180 | u16::from(rcode & 15)
    } else {
        0x0100
    };
    msg[2..4].copy_from_slice(&flags.to_be_bytes());
    msg[4..6].copy_from_slice(&1u16.to_be_bytes());
    msg.extend_from_slice(&dns::name_to_wire(name).unwrap_or_else(|_| vec![0]));
    msg.extend_from_slice(&[0, 1, 0, 1]);
    let (src, dst, sp, dp, smac, dmac) = if response {
        (
            server,
            client,
            53,
            port,
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 1],
        )
    } else {
        (
            client,
            server,
            port,
            53,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
        )
    };
    let eth = etherparse::PacketBuilder::ethernet2(smac, dmac);
    let b = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        _ => eth.ipv4([0; 4], [0; 4], 64),
    }
    .udp(sp, dp);
    let mut out = Vec::with_capacity(64 + msg.len());
    let _ = b.write(&mut out, &msg);
    if out.len() < 60 {
        out.resize(60, 0);
    }
    out
}

/// The workload: `pairs` queries `gap_ns` apart starting at `t0_ns`; query i is answered
/// after `rtt_ns(i)` unless `i % lose_every == lose_every - 1` (when `lose_every` > 0).
#[derive(Debug, Clone)]
pub struct Workload {
    pub pairs: u64,
    pub t0_ns: u64,
    pub gap_ns: u64,
    pub lose_every: u64,
}

impl Workload {
    pub fn rtt_ns(&self, i: u64) -> u64 {
        10_000 + (i % 100) * 1_000
    }
    pub fn answered(&self, i: u64) -> bool {
        self.lose_every == 0 || i % self.lose_every != self.lose_every - 1
    }
    /// Frames in time order: (ts_ns, frame).
    pub fn for_each(&self, mut f: impl FnMut(u64, &[u8])) {
        let mut due: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
        let name = |i: u64| format!("n{}.bench.example", i % 1296);
        let port = |i: u64| 1024 + ((i >> 16) % 60000) as u16;
        let resp = |ts: u64, i: u64, f: &mut dyn FnMut(u64, &[u8])| {
            let fr = dns_frame(i as u16, true, &name(i), port(i), 3);
            f(ts, &fr);
        };
        for i in 0..self.pairs {
            let ts = self.t0_ns + i * self.gap_ns;
            while let Some(Reverse((t, j))) = due.peek().copied() {
                if t > ts {
                    break;
                }
                due.pop();
                resp(t, j, &mut f);
            }
            let q = dns_frame(i as u16, false, &name(i), port(i), 0);
            f(ts, &q);
            if self.answered(i) {
                due.push(Reverse((ts + self.rtt_ns(i), i)));
            }
        }
        while let Some(Reverse((t, j))) = due.pop() {
            resp(t, j, &mut f);
        }
    }
}

/// Writes classic pcap with microsecond or nanosecond timestamps.
pub fn write_pcap<W: Write>(
    w: W,
    nanos: bool,
    frames: impl FnOnce(&mut dyn FnMut(u64, &[u8])),
) -> std::io::Result<()> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 65535,
        datalink: DataLink::ETHERNET,
        ts_resolution: if nanos {
            TsResolution::NanoSecond
        } else {
            TsResolution::MicroSecond
        },
        endianness: Endianness::native(),
    };
    let mut pw = PcapWriter::with_header(w, header).map_err(std::io::Error::other)?;
    let mut err = None;
    frames(&mut |ts, data| {
        if err.is_none()
            && let Err(e) = pw.write_packet(&PcapPacket::new(
                std::time::Duration::from_nanos(ts),
                data.len() as u32,
                data,
            ))
        {
            err = Some(e);
        }
    });
    match err {
        Some(e) => Err(std::io::Error::other(e)),
        None => Ok(()),
    }
}

/// Writes pcapng with nanosecond timestamps (sink's writer).
pub fn write_pcapng<W: Write>(
    w: W,
    frames: impl FnOnce(&mut dyn FnMut(u64, &[u8])),
) -> std::io::Result<()> {
    let mut pw = sink::pcapng::PcapNgWriter::new(w, "synth0", 0)?;
    let mut err = None;
    frames(&mut |ts, data| {
        if err.is_none()
            && let Err(e) = pw.write(ts, data, data.len() as u32)
        {
            err = Some(e);
        }
    });
    pw.flush()?;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
