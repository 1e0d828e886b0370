//! The Internet checksum (RFC 1071) over big-endian 16-bit words, and the pieces that
//! let the frame templates update a checksum after patching a few bytes.

/// Adds `data` to a running 32-bit one's-complement accumulator. `data` is taken as if
/// it started at an even offset; an odd trailing byte is padded with zero.
#[inline]
pub fn add(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds an accumulator to 16 bits (not yet complemented).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum of `data` (complemented fold).
pub fn of(data: &[u8]) -> u16 {
    !fold(add(0, data))
}

/// IPv4 header checksum of `header` (the checksum field must be zero or is treated as
/// part of the data: the result over a header with a correct checksum is 0).
pub fn ipv4_header(header: &[u8]) -> u16 {
    of(header)
}

/// UDP checksum over the IPv4 pseudo-header and the UDP segment `udp` (header and
/// payload; its checksum field must be zero). Zero is sent as 0xffff (RFC 768).
pub fn udp4(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> u16 {
    match l4(src, dst, 17, udp) {
        0 => 0xffff,
        c => c,
    }
}

/// TCP checksum over the IPv4 pseudo-header and the segment `tcp` (its checksum
/// field must be zero).
pub fn tcp4(src: [u8; 4], dst: [u8; 4], tcp: &[u8]) -> u16 {
    l4(src, dst, 6, tcp)
}

/// The checksum of an IPv4 transport segment with protocol `proto`.
fn l4(src: [u8; 4], dst: [u8; 4], proto: u8, seg: &[u8]) -> u16 {
    let mut acc = add(0, &src);
    acc = add(acc, &dst);
    acc += u64::from(proto) + seg.len() as u64;
    acc = add(acc, seg);
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(of(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(add(0, &[0x12])), 0x1200);
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn header_with_its_checksum_sums_to_zero() {
        let mut h = [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        let c = ipv4_header(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ipv4_header(&h), 0);
    }
}
