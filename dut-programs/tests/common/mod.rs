//! Helpers for the integration tests: frames built by hand (Ethernet/IPv4/UDP
//! with a given DNS payload, Ethernet/IPv4/TCP segments, VLAN tags inserted
//! into either), DNS queries, and an independent check of an answer
//! (etherparse for the headers, tags and checksums, hickory-proto for DNS).
//! The profiles crate builds untagged UDP frames only; tagged and TCP frames
//! are made here until it builds them too.
#![allow(dead_code)]

use dut_programs::shim::Shim;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};

pub const GEN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const DUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const GEN_IP: [u8; 4] = [198, 18, 0, 1];
pub const DUT_IP: [u8; 4] = [198, 18, 0, 2];

/// Internet checksum of `b` (folded, inverted).
pub fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 (20 bytes) + UDP around `payload`, IP checksum right, UDP
/// checksum 0.
pub fn udp_frame(dst_ip: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DUT_MAC);
    f.extend_from_slice(&GEN_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&GEN_IP);
    ip.extend_from_slice(&dst_ip);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// TCP flag bits (byte 13 of the header).
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// 802.1Q, 802.1ad and the pre-standard QinQ TPID.
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
pub const TPID_QINQ: u16 = 0x9100;

/// Ethernet + IPv4 (20 bytes, `frag_off` as given) + TCP (`flags`, `options`
/// padded to 4 bytes) from `src` to DUT_IP port 80, both checksums right.
pub fn tcp_frame_frag(src: [u8; 4], flags: u8, options: &[u8], frag_off: u16) -> Vec<u8> {
    let mut opts = options.to_vec();
    while !opts.len().is_multiple_of(4) {
        opts.push(0);
    }
    let tcp_len = 20 + opts.len();
    let mut f = Vec::new();
    f.extend_from_slice(&DUT_MAC);
    f.extend_from_slice(&GEN_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 0, 0x56, 0x78, 0, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&frag_off.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&DUT_IP);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&41000u16.to_be_bytes());
    tcp.extend_from_slice(&80u16.to_be_bytes());
    tcp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    let ack_no: u32 = if flags & ACK != 0 { 0x0bad_cafe } else { 0 };
    tcp.extend_from_slice(&ack_no.to_be_bytes());
    tcp.push(((tcp_len / 4) as u8) << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&64240u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(&opts);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&DUT_IP);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&tcp);
    let c = csum(&pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

/// An unfragmented TCP segment (see [`tcp_frame_frag`]).
pub fn tcp_frame(src: [u8; 4], flags: u8, options: &[u8]) -> Vec<u8> {
    tcp_frame_frag(src, flags, options, 0x4000)
}

/// The MSS option of a real SYN (4 bytes).
pub const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

/// `f` with VLAN tags `(TPID, VLAN id)` inserted after the MAC addresses,
/// outer first (each tag's TPID replaces the EtherType before it).
pub fn tagged(f: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut out = f[..12].to_vec();
    for (tpid, vid) in tags {
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    out.extend_from_slice(&f[12..]);
    out
}

/// Where the IPv4 header of `f` starts: after the MACs and up to two VLAN
/// tags (any of the three TPIDs).
pub fn l3_offset(f: &[u8]) -> usize {
    let mut at = 12;
    for _ in 0..2 {
        match f.get(at..at + 2) {
            Some([0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00]) => at += 4,
            _ => break,
        }
    }
    at + 2
}

/// Recomputes the IPv4 header checksum of a frame (IHL from the header; the
/// header after any VLAN tags); frames that are not IPv4 are left alone.
pub fn fix_ip_checksum(f: &mut [u8]) {
    let l3 = l3_offset(f);
    if f.len() < l3 + 20 || f[l3 - 2..l3] != [0x08, 0x00] {
        return;
    }
    let ihl = usize::from(f[l3] & 0x0f) * 4;
    if ihl < 20 || f.len() < l3 + ihl {
        return;
    }
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let c = csum(&f[l3..l3 + ihl]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// A DNS query message (hickory-built), optionally with an EDNS OPT record.
pub fn query(id: u16, name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if edns {
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().expect("emit query")
}

/// What an answer holds, after checking it is a well-formed reply to `request`.
#[derive(Debug)]
pub struct Answer {
    pub msg: Message,
}

/// Checks `resp` is a well-formed UDP answer to frame `req` over the same IP
/// version: the same VLAN tags, addresses and ports swapped, lengths
/// consistent; IPv4: header checksum right, UDP checksum right or zero;
/// IPv6: hop limit 64, traffic class and flow label 0, UDP checksum not zero
/// and right over the IPv6 pseudo-header (etherparse's computation); DNS with
/// the same ID and question, QR set, no additional records.
pub fn check_answer(req: &[u8], resp: &[u8]) -> Answer {
    let rq = SlicedPacket::from_ethernet(req).expect("request parses");
    let rs = SlicedPacket::from_ethernet(resp).expect("answer parses");
    // The tags, as etherparse reads them, and their bytes: the same VLANs back.
    assert_eq!(rs.link_exts.len(), rq.link_exts.len(), "as many VLAN tags");
    let l3 = 14 + 4 * rq.link_exts.len();
    assert_eq!(&resp[12..l3], &req[12..l3], "VLAN tags kept");
    let (Some(etherparse::LinkSlice::Ethernet2(qe)), Some(etherparse::LinkSlice::Ethernet2(se))) =
        (&rq.link, &rs.link)
    else {
        panic!("not Ethernet II")
    };
    assert_eq!(se.source(), qe.destination());
    assert_eq!(se.destination(), qe.source());
    let (Some(TransportSlice::Udp(qu)), Some(TransportSlice::Udp(su))) =
        (&rq.transport, &rs.transport)
    else {
        panic!("not UDP")
    };
    match (&rq.net, &rs.net) {
        (Some(NetSlice::Ipv4(qi)), Some(NetSlice::Ipv4(si))) => {
            assert_eq!(si.header().source(), qi.header().destination());
            assert_eq!(si.header().destination(), qi.header().source());
            let h = si.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            assert_eq!(
                usize::from(h.total_len),
                resp.len() - l3,
                "IPv4 total length is the frame"
            );
            if su.checksum() != 0 {
                let c = su
                    .to_header()
                    .calc_checksum_ipv4(&h, su.payload())
                    .expect("udp csum");
                assert_eq!(su.checksum(), c, "UDP checksum");
            }
        }
        (Some(NetSlice::Ipv6(qi)), Some(NetSlice::Ipv6(si))) => {
            assert!(si.extensions().is_empty(), "no extension headers");
            let h = si.header().to_header();
            let hq = qi.header().to_header();
            assert_eq!(h.source, hq.destination);
            assert_eq!(h.destination, hq.source);
            assert_eq!(h.hop_limit, 64);
            assert_eq!((h.traffic_class, h.flow_label.value()), (0, 0));
            assert_eq!(
                usize::from(h.payload_length),
                resp.len() - l3 - 40,
                "IPv6 payload length is the rest of the frame"
            );
            assert_ne!(su.checksum(), 0, "the IPv6 UDP checksum is mandatory");
            let c = su
                .to_header()
                .calc_checksum_ipv6(&h, su.payload())
                .expect("udp csum");
            assert_eq!(su.checksum(), c, "UDP checksum over the IPv6 pseudo-header");
        }
        other => panic!("not the request's IP version: {other:?}"),
    }
    assert_eq!(su.source_port(), qu.destination_port());
    assert_eq!(su.destination_port(), qu.source_port());
    assert_eq!(usize::from(su.length()), 8 + su.payload().len());
    // The request's header + question only (what an answer repeats; trailing
    // records of the request are not ours to judge).
    let qp = qu.payload();
    let q = profiles::wire::dns::Packet::new_checked(qp).expect("dns header");
    let end = q.question().expect("question").end;
    let mut trimmed = qp[..end].to_vec();
    trimmed[6..12].fill(0);
    let qm = Message::from_vec(&trimmed).expect("request DNS parses");
    let sm = Message::from_vec(su.payload()).expect("answer DNS parses (hickory)");
    assert_eq!(sm.id(), qm.id());
    assert_eq!(sm.message_type(), MessageType::Response);
    assert_eq!(sm.recursion_desired(), qm.recursion_desired());
    assert_eq!(sm.queries(), qm.queries(), "same question");
    assert!(
        sm.additionals().is_empty() && sm.extensions().is_none(),
        "no additional records"
    );
    Answer { msg: sm }
}

/// Runs the shim on `frame` with the same tailroom as an XDP buffer.
pub fn shim_run(s: &mut Shim, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut buf = frame.to_vec();
    buf.resize(frame.len() + 256, 0);
    let (v, len) = s.run(&mut buf, frame.len());
    buf.truncate(len);
    (v, buf)
}

/// The generator's and the DUT's IPv6 addresses in the crafted IPv6 frames
/// (2001:db8:0:1::1 and 2001:db8:0:1::2).
pub const GEN_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DUT_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2];

/// Ethernet + IPv6 (no extension headers) + TCP (`flags` of SYN, ACK, RST,
/// FIN; no options) from `src` to DUT_IP6 port 80, built by etherparse
/// (checksum right).
pub fn tcp6_frame(src: [u8; 16], flags: u8) -> Vec<u8> {
    let mut b = etherparse::PacketBuilder::ethernet2(GEN_MAC, DUT_MAC)
        .ipv6(src, DUT_IP6, 64)
        .tcp(41000, 80, 0x1234_5678, 64240);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(0x0bad_cafe);
    }
    if flags & RST != 0 {
        b = b.rst();
    }
    if flags & FIN != 0 {
        b = b.fin();
    }
    let mut f = Vec::with_capacity(b.size(0));
    b.write(&mut f, &[]).expect("build an IPv6/TCP frame");
    f
}

/// Ethernet + IPv6 (no extension headers) + UDP from GEN_IP6:40000 to
/// DUT_IP6:`dport` around `payload`, built by etherparse (checksum right).
pub fn udp6_frame(dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(GEN_MAC, DUT_MAC)
        .ipv6(GEN_IP6, DUT_IP6, 64)
        .udp(40000, dport);
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, payload).expect("build an IPv6/UDP frame");
    f
}

/// `f` (untagged Ethernet + IPv6) with an 8-byte hop-by-hop options header
/// (a PadN option) between the fixed header and the payload.
pub fn with_hop_by_hop(f: &[u8]) -> Vec<u8> {
    let next = f[14 + 6];
    let mut out = f[..54].to_vec();
    out[14 + 6] = 0; // hop-by-hop options
    let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
    out[18..20].copy_from_slice(&plen.to_be_bytes());
    out.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&f[54..]);
    out
}
