//! Reading UDP over IPv4 or IPv6 out of an Ethernet frame (optionally one 802.1Q tag or
//! two, QinQ), with etherparse's header views. Zero-copy: the result borrows the frame,
//! and the addresses come back as [`IpAddr`] whichever version carried them.
//!
//! This is the one frame parser the receive side (sink, tstamp) uses. It rejects
//! fragments (a UDP header is only in the first one, and DNS matching needs all of it),
//! packets whose IPv4 total length or IPv6 payload length runs past the buffer, and UDP
//! lengths that disagree with the IP header. IPv6 extension headers (hop-by-hop,
//! routing, destination options, AH, ESP, ...) are not walked: such a packet is
//! [`WireError::Ipv6Extension`], "not parsed", never a guess; an IPv6 fragment header is
//! [`WireError::Fragment`] as for IPv4. Ethernet padding after the IP packet is ignored.

use std::net::IpAddr;

use etherparse::{
    EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, UdpHeaderSlice,
};

use super::WireError;

/// Ethernet header length without a VLAN tag.
pub const ETH_LEN: usize = 14;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_LEN: usize = 40;
/// UDP header length.
pub const UDP_LEN: usize = 8;
/// Offset of the UDP payload in an untagged IPv4 frame without IP options.
pub const PAYLOAD_OFFSET: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// Smallest Ethernet frame in a buffer (64 on the wire less the 4-byte FCS).
pub const MIN_FRAME: usize = 60;
/// Per-frame overhead on the wire beyond the buffer: FCS 4, preamble+SFD 8, gap 12.
pub const WIRE_OVERHEAD: usize = 4 + 8 + 12;

/// A UDP datagram inside an IPv4 or IPv6 packet inside an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP header length in bytes (20 for IPv4 without options, 40 for IPv6).
    pub ip_header_len: usize,
    /// UDP checksum as sent (0 = none; not allowed over IPv6).
    pub udp_checksum: u16,
    /// The UDP payload, exactly as long as the UDP length field says.
    pub payload: &'a [u8],
    /// The whole UDP segment (header and payload), for checksum verification.
    pub segment: &'a [u8],
}

impl Udp<'_> {
    /// True when the UDP checksum is correct, or absent (zero) over IPv4. Over IPv6 a
    /// zero checksum is not allowed (RFC 8200 8.1) and counts as wrong.
    pub fn udp_checksum_ok(&self) -> bool {
        if self.udp_checksum == 0 {
            return self.src_ip.is_ipv4();
        }
        // The pseudo-header sums the same way for both versions: addresses, then the
        // protocol and the segment length as numbers.
        let mut acc = match (self.src_ip, self.dst_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                super::checksum::add(super::checksum::add(0, &s.octets()), &d.octets())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                super::checksum::add(super::checksum::add(0, &s.octets()), &d.octets())
            }
            _ => return false,
        };
        acc += 17 + self.segment.len() as u64;
        acc = super::checksum::add(acc, self.segment);
        super::checksum::fold(acc) == 0xffff
    }
}

/// The network layer of a frame: where it starts past the tags, and its EtherType.
fn past_tags(frame: &[u8]) -> Result<(Ethernet2HeaderSlice<'_>, EtherType, &[u8]), WireError> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| WireError::Truncated)?;
    let mut ether_type = eth.ether_type();
    let mut rest = &frame[ETH_LEN..];
    // Up to two tags: 802.1Q, or QinQ (outer 0x88a8 or 0x9100).
    for _ in 0..2 {
        if !matches!(
            ether_type,
            EtherType::VLAN_TAGGED_FRAME
                | EtherType::PROVIDER_BRIDGING
                | EtherType::VLAN_DOUBLE_TAGGED_FRAME
        ) {
            break;
        }
        if rest.len() < 4 {
            return Err(WireError::Truncated);
        }
        ether_type = EtherType(u16::from_be_bytes([rest[2], rest[3]]));
        rest = &rest[4..];
    }
    Ok((eth, ether_type, rest))
}

/// IPv6 next-header values that are extension headers (RFC 8200 4, RFC 7045): hop-by-hop
/// 0, routing 43, destination options 60, AH 51, ESP 50, mobility 135, HIP 139, shim6
/// 140, experimental 253/254. Fragment 44 is handled apart.
const IPV6_EXTENSIONS: [u8; 10] = [0, 43, 60, 51, 50, 135, 139, 140, 253, 254];
/// IPv6 fragment header.
const IPV6_FRAGMENT: u8 = 44;

/// The IP header of a UDP packet: addresses, header length and the bytes the IP
/// header says it carries (header excluded, padding cut off).
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    header_len: usize,
    payload: &'a [u8],
}

fn ipv4(rest: &[u8]) -> Result<Ip<'_>, WireError> {
    let ip = Ipv4HeaderSlice::from_slice(rest).map_err(|e| match e {
        etherparse::err::ipv4::HeaderSliceError::Len(_) => WireError::Truncated,
        etherparse::err::ipv4::HeaderSliceError::Content(_) => WireError::Malformed,
    })?;
    if ip.protocol() != IpNumber::UDP {
        return Err(WireError::NotUdp);
    }
    if ip.is_fragmenting_payload() {
        return Err(WireError::Fragment);
    }
    let ihl = usize::from(ip.ihl()) * 4;
    let total = usize::from(ip.total_len());
    if total < ihl {
        return Err(WireError::Malformed);
    }
    if total > rest.len() {
        return Err(WireError::Truncated);
    }
    Ok(Ip {
        src: IpAddr::V4(ip.source_addr()),
        dst: IpAddr::V4(ip.destination_addr()),
        header_len: ihl,
        payload: &rest[ihl..total],
    })
}

fn ipv6(rest: &[u8]) -> Result<Ip<'_>, WireError> {
    let ip = Ipv6HeaderSlice::from_slice(rest).map_err(|e| match e {
        etherparse::err::ipv6::HeaderSliceError::Len(_) => WireError::Truncated,
        etherparse::err::ipv6::HeaderSliceError::Content(_) => WireError::Malformed,
    })?;
    match ip.next_header().0 {
        17 => {}
        IPV6_FRAGMENT => return Err(WireError::Fragment),
        n if IPV6_EXTENSIONS.contains(&n) => return Err(WireError::Ipv6Extension),
        _ => return Err(WireError::NotUdp),
    }
    let len = usize::from(ip.payload_length());
    // Zero would be a jumbogram, which needs a hop-by-hop header: not a UDP packet here.
    if len == 0 {
        return Err(WireError::Malformed);
    }
    if IPV6_LEN + len > rest.len() {
        return Err(WireError::Truncated);
    }
    Ok(Ip {
        src: IpAddr::V6(ip.source_addr()),
        dst: IpAddr::V6(ip.destination_addr()),
        header_len: IPV6_LEN,
        payload: &rest[IPV6_LEN..IPV6_LEN + len],
    })
}

/// Parses `frame` as Ethernet (up to two VLAN tags) / IPv4 or IPv6 / UDP.
pub fn parse(frame: &[u8]) -> Result<Udp<'_>, WireError> {
    let (eth, ether_type, rest) = past_tags(frame)?;
    let ip = match ether_type {
        EtherType::IPV4 => ipv4(rest)?,
        EtherType::IPV6 => ipv6(rest)?,
        _ => return Err(WireError::NotIp),
    };
    let segment_all = ip.payload;
    let udp = UdpHeaderSlice::from_slice(segment_all).map_err(|_| WireError::Truncated)?;
    let udp_len = usize::from(udp.length());
    if udp_len < UDP_LEN || udp_len > segment_all.len() {
        return Err(WireError::Malformed);
    }
    let segment = &segment_all[..udp_len];
    Ok(Udp {
        src_mac: eth.source(),
        dst_mac: eth.destination(),
        src_ip: ip.src,
        dst_ip: ip.dst,
        src_port: udp.source_port(),
        dst_port: udp.destination_port(),
        ip_header_len: ip.header_len,
        udp_checksum: udp.checksum(),
        payload: &segment[UDP_LEN..],
        segment,
    })
}
/// For tests that craft input: `frame` (untagged Ethernet/IPv6) with an 8-byte
/// hop-by-hop options header (PadN only) inserted before its upper-layer header,
/// the next-header chain and the payload length fixed up, as a real packet with
/// that extension carries it. `None` when `frame` is not an untagged IPv6 packet.
pub fn with_hop_by_hop(frame: &[u8]) -> Option<Vec<u8>> {
    let ip = ETH_LEN;
    if frame.len() < ip + IPV6_LEN || frame[12..14] != [0x86, 0xdd] {
        return None;
    }
    let next = frame[ip + 6];
    let mut out = frame[..ip + IPV6_LEN].to_vec();
    out.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&frame[ip + IPV6_LEN..]);
    out[ip + 6] = 0;
    let plen = u16::from_be_bytes([out[ip + 4], out[ip + 5]]).checked_add(8)?;
    out[ip + 4..ip + 6].copy_from_slice(&plen.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
            .udp(1234, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("write to Vec");
        out
    }

    #[test]
    fn parses_what_etherparse_builds() {
        let f = frame(b"hello");
        let u = parse(&f).expect("parse");
        assert_eq!(u.src_ip, IpAddr::from([198, 18, 0, 1]));
        assert_eq!(u.dst_port, 53);
        assert_eq!(u.payload, b"hello");
        assert!(u.udp_checksum_ok());
    }

    #[test]
    fn detects_corrupt_udp_checksum() {
        let mut f = frame(b"hello");
        let last = f.len() - 1;
        f[last] ^= 0x40;
        assert!(!parse(&f).expect("parse").udp_checksum_ok());
    }

    #[test]
    fn ignores_ethernet_padding() {
        let mut f = frame(b"x");
        f.resize(60, 0xee);
        assert_eq!(parse(&f).expect("parse").payload, b"x");
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_not_a_panic() {
        let f = frame(b"0123456789");
        for cut in 0..f.len() {
            assert!(parse(&f[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_fragments_and_other_protocols() {
        let mut f = frame(b"abc");
        f[ETH_LEN + 6] = 0x20; // more fragments
        // Fix the header checksum so only the fragment flag is wrong.
        f[ETH_LEN + 10..ETH_LEN + 12].fill(0);
        let c = super::super::checksum::ipv4_header(&f[ETH_LEN..ETH_LEN + 20]);
        f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&f), Err(WireError::Fragment));
        let mut g = frame(&[0u8; 40]);
        g[12] = 0x86;
        g[13] = 0xdd;
        // An IPv4 header under the IPv6 EtherType: the version nibble disagrees.
        assert_eq!(parse(&g), Err(WireError::Malformed));
        let mut arp = frame(b"abc");
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(parse(&arp), Err(WireError::NotIp));
    }

    const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn frame6(payload: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(SRC6, DST6, 64)
            .udp(5353, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("write to Vec");
        out
    }

    /// Puts `tags` (4 bytes each: TPID, TCI) after the MAC addresses.
    fn tagged(f: &[u8], tags: &[u8]) -> Vec<u8> {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(tags);
        t.extend_from_slice(&f[12..]);
        t
    }

    #[test]
    fn parses_udp_over_ipv6() {
        let f = frame6(b"hello6");
        let u = parse(&f).expect("parse");
        assert_eq!(u.src_ip, IpAddr::from(SRC6));
        assert_eq!(u.dst_ip, IpAddr::from(DST6));
        assert_eq!((u.src_port, u.dst_port), (5353, 53));
        assert_eq!(u.ip_header_len, IPV6_LEN);
        assert_eq!(u.payload, b"hello6");
        assert!(u.udp_checksum_ok());
        let mut bad = f.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!parse(&bad).expect("parse").udp_checksum_ok());
        // A zero UDP checksum is "none" over IPv4 but not allowed over IPv6.
        let mut zero = f.clone();
        zero[ETH_LEN + IPV6_LEN + 6..ETH_LEN + IPV6_LEN + 8].fill(0);
        assert!(!parse(&zero).expect("parse").udp_checksum_ok());
        let mut padded = frame6(b"");
        padded.resize(80, 0xee);
        assert_eq!(parse(&padded).expect("padding").payload, b"");
    }

    #[test]
    fn ipv6_through_vlan_and_qinq_tags() {
        let f = frame6(b"tagged6");
        let one = tagged(&f, &[0x81, 0x00, 0x00, 0x07]);
        let u = parse(&one).expect("802.1Q");
        assert_eq!((u.dst_ip, u.payload), (IpAddr::from(DST6), &b"tagged6"[..]));
        let two = tagged(&f, &[0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x00, 0x64]);
        assert_eq!(parse(&two).expect("QinQ").payload, b"tagged6");
        for cut in 0..two.len() {
            assert!(parse(&two[..cut]).is_err(), "QinQ IPv6 cut at {cut}");
        }
    }

    #[test]
    fn ipv6_truncation_at_every_offset_is_an_error_not_a_panic() {
        let f = frame6(b"0123456789");
        for cut in 0..f.len() {
            assert!(parse(&f[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_ipv6_is_an_error() {
        let ip = ETH_LEN;
        // Version 4 in an IPv6 header.
        let mut v = frame6(b"abc");
        v[ip] = 0x40 | (v[ip] & 0x0f);
        assert_eq!(parse(&v), Err(WireError::Malformed));
        // Payload length past the buffer.
        let mut long = frame6(b"abc");
        long[ip + 4..ip + 6].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse(&long), Err(WireError::Truncated));
        // Payload length zero (a jumbogram without its hop-by-hop header).
        let mut zero = frame6(b"abc");
        zero[ip + 4..ip + 6].fill(0);
        assert_eq!(parse(&zero), Err(WireError::Malformed));
        // UDP length larger than the IPv6 payload, and smaller than a UDP header.
        let mut ulen = frame6(b"abc");
        ulen[ip + IPV6_LEN + 4..ip + IPV6_LEN + 6].copy_from_slice(&99u16.to_be_bytes());
        assert_eq!(parse(&ulen), Err(WireError::Malformed));
        ulen[ip + IPV6_LEN + 4..ip + IPV6_LEN + 6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(parse(&ulen), Err(WireError::Malformed));
        // Payload length shorter than a UDP header.
        let mut short = frame6(b"abc");
        short[ip + 4..ip + 6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse(&short), Err(WireError::Truncated));
    }

    #[test]
    fn ipv6_extension_headers_are_not_parsed_and_fragments_rejected() {
        let ip = ETH_LEN;
        // Hop-by-hop options (next header 0), as a real packet carries it: an 8-byte
        // header (next header UDP, length 0, PadN) before the UDP header.
        let f = frame6(b"ext");
        let hbh = with_hop_by_hop(&f).expect("IPv6 frame");
        assert_eq!(hbh.len(), f.len() + 8);
        assert_eq!(hbh[ip + IPV6_LEN], 17, "the extension's next header is UDP");
        assert_eq!(parse(&hbh), Err(WireError::Ipv6Extension));
        assert_eq!(with_hop_by_hop(&frame(b"v4")), None);
        for nh in [43u8, 60, 51, 50, 135] {
            let mut e = hbh.clone();
            e[ip + 6] = nh;
            assert_eq!(parse(&e), Err(WireError::Ipv6Extension), "next header {nh}");
        }
        let mut frag = hbh.clone();
        frag[ip + 6] = 44;
        assert_eq!(parse(&frag), Err(WireError::Fragment));
        // TCP and ICMPv6 are IPv6 but not UDP.
        for nh in [6u8, 58, 59] {
            let mut e = f.clone();
            e[ip + 6] = nh;
            assert_eq!(parse(&e), Err(WireError::NotUdp), "next header {nh}");
        }
    }

    #[test]
    fn reads_through_one_vlan_tag() {
        let f = frame(b"tagged");
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        t.extend_from_slice(&f[12..]);
        assert_eq!(parse(&t).expect("parse").payload, b"tagged");
        let mut qq = f[..12].to_vec();
        qq.extend_from_slice(&[0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x00, 0x64]);
        qq.extend_from_slice(&f[12..]);
        assert_eq!(parse(&qq).expect("QinQ").payload, b"tagged");
    }
}
