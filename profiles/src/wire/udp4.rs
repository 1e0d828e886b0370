//! Reading UDP/IPv4 out of an Ethernet frame (optionally one 802.1Q tag or two, QinQ), with
//! etherparse's header views. Zero-copy: the result borrows the frame.
//!
//! This is the one frame parser the receive side (sink, tstamp) uses; it rejects
//! fragments (a UDP header is only in the first one, and DNS matching needs all of it),
//! frames whose IPv4 total length runs past the buffer, and UDP lengths that disagree
//! with IPv4. Ethernet padding after the IPv4 packet is ignored.

use etherparse::{EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, UdpHeaderSlice};

use super::WireError;

/// Ethernet header length without a VLAN tag.
pub const ETH_LEN: usize = 14;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// UDP header length.
pub const UDP_LEN: usize = 8;
/// Offset of the UDP payload in an untagged frame without IP options.
pub const PAYLOAD_OFFSET: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
/// Smallest Ethernet frame in a buffer (64 on the wire less the 4-byte FCS).
pub const MIN_FRAME: usize = 60;
/// Per-frame overhead on the wire beyond the buffer: FCS 4, preamble+SFD 8, gap 12.
pub const WIRE_OVERHEAD: usize = 4 + 8 + 12;

/// A UDP datagram inside an IPv4 packet inside an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp4<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 header length in bytes (20 without options).
    pub ip_header_len: usize,
    /// UDP checksum as sent (0 = none).
    pub udp_checksum: u16,
    /// The UDP payload, exactly as long as the UDP length field says.
    pub payload: &'a [u8],
    /// The whole UDP segment (header and payload), for checksum verification.
    pub segment: &'a [u8],
}

impl Udp4<'_> {
    /// True when the UDP checksum is absent (zero) or correct.
    pub fn udp_checksum_ok(&self) -> bool {
        if self.udp_checksum == 0 {
            return true;
        }
        let mut acc = super::checksum::add(0, &self.src_ip);
        acc = super::checksum::add(acc, &self.dst_ip);
        acc += 17 + self.segment.len() as u64;
        acc = super::checksum::add(acc, self.segment);
        super::checksum::fold(acc) == 0xffff
    }
}

/// Parses `frame` as Ethernet (optionally one VLAN tag) / IPv4 / UDP.
pub fn parse(frame: &[u8]) -> Result<Udp4<'_>, WireError> {
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
    if ether_type != EtherType::IPV4 {
        return Err(WireError::NotIpv4);
    }
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
    if total < ihl + UDP_LEN {
        return Err(WireError::Malformed);
    }
    if total > rest.len() {
        return Err(WireError::Truncated);
    }
    let segment_all = &rest[ihl..total];
    let udp = UdpHeaderSlice::from_slice(segment_all).map_err(|_| WireError::Truncated)?;
    let udp_len = usize::from(udp.length());
    if udp_len < UDP_LEN || udp_len > segment_all.len() {
        return Err(WireError::Malformed);
    }
    let segment = &segment_all[..udp_len];
    Ok(Udp4 {
        src_mac: eth.source(),
        dst_mac: eth.destination(),
        src_ip: ip.source(),
        dst_ip: ip.destination(),
        src_port: udp.source_port(),
        dst_port: udp.destination_port(),
        ip_header_len: ihl,
        udp_checksum: udp.checksum(),
        payload: &segment[UDP_LEN..],
        segment,
    })
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
        assert_eq!(u.src_ip, [198, 18, 0, 1]);
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
        let mut g = frame(b"abc");
        g[12] = 0x86;
        g[13] = 0xdd;
        assert_eq!(parse(&g), Err(WireError::NotIpv4));
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
