//! Helpers for the integration tests: frames built by hand (Ethernet/IPv4/UDP
//! with a given DNS payload), DNS queries, and an independent check of an
//! answer (etherparse for the headers and checksums, hickory-proto for DNS).
#![allow(dead_code)]

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

/// Recomputes the IPv4 header checksum of a frame (IHL from the header).
pub fn fix_ip_checksum(f: &mut [u8]) {
    if f.len() < 34 {
        return;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    f[24] = 0;
    f[25] = 0;
    let c = csum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
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

/// Checks `resp` is a well-formed UDP/IPv4 answer to frame `req`: addresses and
/// ports swapped, IP checksum right, lengths consistent, UDP checksum right or
/// zero, DNS with the same ID and question, QR set, no additional records.
pub fn check_answer(req: &[u8], resp: &[u8]) -> Answer {
    let rq = SlicedPacket::from_ethernet(req).expect("request parses");
    let rs = SlicedPacket::from_ethernet(resp).expect("answer parses");
    let (Some(etherparse::LinkSlice::Ethernet2(qe)), Some(etherparse::LinkSlice::Ethernet2(se))) =
        (&rq.link, &rs.link)
    else {
        panic!("not Ethernet II")
    };
    assert_eq!(se.source(), qe.destination());
    assert_eq!(se.destination(), qe.source());
    let (Some(NetSlice::Ipv4(qi)), Some(NetSlice::Ipv4(si))) = (&rq.net, &rs.net) else {
        panic!("not IPv4")
    };
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
        resp.len() - 14,
        "IPv4 total length is the frame"
    );
    let (Some(TransportSlice::Udp(qu)), Some(TransportSlice::Udp(su))) =
        (&rq.transport, &rs.transport)
    else {
        panic!("not UDP")
    };
    assert_eq!(su.source_port(), qu.destination_port());
    assert_eq!(su.destination_port(), qu.source_port());
    assert_eq!(usize::from(su.length()), 8 + su.payload().len());
    if su.checksum() != 0 {
        let c = su
            .to_header()
            .calc_checksum_ipv4(&h, su.payload())
            .expect("udp csum");
        assert_eq!(su.checksum(), c, "UDP checksum");
    }
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
