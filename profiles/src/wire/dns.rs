//! DNS messages (RFC 1035), as much as the workloads and the matchers need: the fixed
//! header, the first question, and the 16-byte compressed A record the DNS cache answers
//! with. Names in questions are uncompressed label sequences (a compression pointer in a
//! question is rejected, as the XDP responders do).
//!
//! `Packet<T>` is a view over a DNS message (the UDP payload); `QueryRepr` is a query as
//! a value, parsed from and emitted into a buffer.

use super::WireError;

mod field {
    use core::ops::Range;
    pub const ID: Range<usize> = 0..2;
    pub const FLAGS: Range<usize> = 2..4;
    pub const QDCOUNT: Range<usize> = 4..6;
    pub const ANCOUNT: Range<usize> = 6..8;
    pub const NSCOUNT: Range<usize> = 8..10;
    pub const ARCOUNT: Range<usize> = 10..12;
}

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = field::ARCOUNT.end;
/// Longest name in wire format (RFC 1035 2.3.4), terminating zero included.
pub const MAX_NAME_LEN: usize = 255;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// Length of the compressed A record the cache answers with: pointer 2, type 2, class 2,
/// TTL 4, RDLENGTH 2, address 4.
pub const COMPRESSED_A_LEN: usize = 16;
/// Length of a compressed AAAA record (pointer 2, type 2, class 2, TTL 4, RDLENGTH 2,
/// address 16).
pub const COMPRESSED_AAAA_LEN: usize = 28;

/// Flag bits of the second header word.
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const OPCODE_MASK: u16 = 0x7800;
    pub const RCODE_MASK: u16 = 0x000f;
}

/// Response codes; any 4-bit value converts, unknown ones keep their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rcode(pub u8);

impl Rcode {
    pub const NOERROR: Rcode = Rcode(0);
    pub const FORMERR: Rcode = Rcode(1);
    pub const SERVFAIL: Rcode = Rcode(2);
    pub const NXDOMAIN: Rcode = Rcode(3);
    pub const NOTIMP: Rcode = Rcode(4);
    pub const REFUSED: Rcode = Rcode(5);

    /// The mnemonic (as dig prints it), or `RCODE<n>`.
    pub fn name(self) -> String {
        match self.0 {
            0 => "NOERROR".into(),
            1 => "FORMERR".into(),
            2 => "SERVFAIL".into(),
            3 => "NXDOMAIN".into(),
            4 => "NOTIMP".into(),
            5 => "REFUSED".into(),
            n => format!("RCODE{n}"),
        }
    }
}

/// Record types by mnemonic, for profiles (`qtype = "A"`); numbers pass through.
pub fn qtype_from_str(s: &str) -> Option<u16> {
    Some(match s.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        other => return other.strip_prefix("TYPE").unwrap_or(other).parse().ok(),
    })
}

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Type A.
pub const TYPE_A: u16 = 1;
/// Type AAAA (RFC 3596).
pub const TYPE_AAAA: u16 = 28;

/// A read-only or read-write view of a DNS message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The first question of a message, borrowing the name in wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Question<'a> {
    /// Labels in wire format, terminating zero included.
    pub name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    /// Offset just past the question in the message.
    pub end: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Getters may panic if it is shorter than
    /// [`HEADER_LEN`]; use for buffers we sized ourselves.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`]; use for anything from the wire.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header fits, so every header getter is safe to call.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word(&self, r: core::ops::Range<usize>) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }

    pub fn id(&self) -> u16 {
        self.word(field::ID)
    }
    pub fn flags(&self) -> u16 {
        self.word(field::FLAGS)
    }
    pub fn is_response(&self) -> bool {
        self.flags() & flags::QR != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags() & flags::OPCODE_MASK) >> 11) as u8
    }
    pub fn rcode(&self) -> Rcode {
        Rcode((self.flags() & flags::RCODE_MASK) as u8)
    }
    pub fn qdcount(&self) -> u16 {
        self.word(field::QDCOUNT)
    }
    pub fn ancount(&self) -> u16 {
        self.word(field::ANCOUNT)
    }
    pub fn nscount(&self) -> u16 {
        self.word(field::NSCOUNT)
    }
    pub fn arcount(&self) -> u16 {
        self.word(field::ARCOUNT)
    }

    /// Parses the first question (QDCOUNT must be at least 1). Rejects compression
    /// pointers, labels over 63 bytes, names over 255 bytes and truncation.
    pub fn question(&self) -> Result<Question<'_>, WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.qdcount() == 0 {
            return Err(WireError::Malformed);
        }
        let name_len = name_len(&b[HEADER_LEN..])?;
        let name_end = HEADER_LEN + name_len;
        let end = name_end + 4;
        if b.len() < end {
            return Err(WireError::Truncated);
        }
        Ok(Question {
            name: &b[HEADER_LEN..name_end],
            qtype: u16::from_be_bytes([b[name_end], b[name_end + 1]]),
            qclass: u16::from_be_bytes([b[name_end + 2], b[name_end + 3]]),
            end,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_word(&mut self, r: core::ops::Range<usize>, v: u16) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_id(&mut self, v: u16) {
        self.set_word(field::ID, v)
    }
    pub fn set_flags(&mut self, v: u16) {
        self.set_word(field::FLAGS, v)
    }
    pub fn set_qdcount(&mut self, v: u16) {
        self.set_word(field::QDCOUNT, v)
    }
    pub fn set_ancount(&mut self, v: u16) {
        self.set_word(field::ANCOUNT, v)
    }
    pub fn set_nscount(&mut self, v: u16) {
        self.set_word(field::NSCOUNT, v)
    }
    pub fn set_arcount(&mut self, v: u16) {
        self.set_word(field::ARCOUNT, v)
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// Length in bytes of the uncompressed wire-format name at the start of `b`
/// (terminating zero included).
pub fn name_len(b: &[u8]) -> Result<usize, WireError> {
    let mut i = 0;
    loop {
        let Some(&len) = b.get(i) else {
            return Err(WireError::Truncated);
        };
        if len == 0 {
            return Ok(i + 1);
        }
        if len & 0xc0 != 0 {
            return Err(WireError::BadName);
        }
        i += 1 + usize::from(len);
        if i + 1 > MAX_NAME_LEN {
            return Err(WireError::BadName);
        }
    }
}

/// Wire length of a dotted name (`"a.b.example"` -> 13: labels with length bytes and the
/// terminating zero). A trailing dot is allowed; `""` and `"."` are the root (1 byte).
pub fn wire_len(name: &str) -> Result<usize, WireError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Ok(1);
    }
    let mut len = 1;
    for label in name.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(WireError::BadName);
        }
        len += 1 + label.len();
    }
    if len > MAX_NAME_LEN {
        return Err(WireError::BadName);
    }
    Ok(len)
}

/// Writes a dotted name in wire format into `out` (at least [`wire_len`] bytes) and
/// returns the bytes written.
pub fn write_name(name: &str, out: &mut [u8]) -> Result<usize, WireError> {
    let len = wire_len(name)?;
    if out.len() < len {
        return Err(WireError::Truncated);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut i = 0;
    if !name.is_empty() {
        for label in name.split('.') {
            out[i] = label.len() as u8;
            out[i + 1..i + 1 + label.len()].copy_from_slice(label.as_bytes());
            i += 1 + label.len();
        }
    }
    out[i] = 0;
    Ok(i + 1)
}

/// A dotted name in wire format as a new vector.
pub fn name_to_wire(name: &str) -> Result<Vec<u8>, WireError> {
    let mut v = vec![0; wire_len(name)?];
    write_name(name, &mut v)?;
    Ok(v)
}

/// A wire-format name as dotted text (no trailing dot; the root is "."). Bytes outside
/// printable ASCII and dots inside labels are escaped as `\DDD`.
pub fn wire_to_string(wire: &[u8]) -> Result<String, WireError> {
    let len = name_len(wire)?;
    let mut s = String::new();
    let mut i = 0;
    while i + 1 < len {
        let l = usize::from(wire[i]);
        if !s.is_empty() {
            s.push('.');
        }
        for &c in &wire[i + 1..i + 1 + l] {
            if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                s.push(c as char);
            } else {
                s.push_str(&format!("\\{c:03}"));
            }
        }
        i += 1 + l;
    }
    if s.is_empty() {
        s.push('.');
    }
    Ok(s)
}

/// The 16-byte compressed A record: a pointer to the question name (offset 12), type A,
/// class IN, TTL, RDLENGTH 4 and the address.
pub fn compressed_a_record(ttl: u32, addr: [u8; 4]) -> [u8; COMPRESSED_A_LEN] {
    let mut r = [0u8; COMPRESSED_A_LEN];
    write_compressed_record(&mut r, TYPE_A, ttl, &addr);
    r
}

/// The 28-byte compressed AAAA record: a pointer to the question name (offset 12),
/// type AAAA, class IN, TTL, RDLENGTH 16 and the address.
pub fn compressed_aaaa_record(ttl: u32, addr: [u8; 16]) -> [u8; COMPRESSED_AAAA_LEN] {
    let mut r = [0u8; COMPRESSED_AAAA_LEN];
    write_compressed_record(&mut r, TYPE_AAAA, ttl, &addr);
    r
}

/// A record whose owner is a pointer to the question name; `out` is exactly
/// 12 + `rdata.len()` bytes.
fn write_compressed_record(out: &mut [u8], rtype: u16, ttl: u32, rdata: &[u8]) {
    out[0..2].copy_from_slice(&(0xc000u16 | HEADER_LEN as u16).to_be_bytes());
    out[2..4].copy_from_slice(&rtype.to_be_bytes());
    out[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
    out[6..10].copy_from_slice(&ttl.to_be_bytes());
    out[10..12].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
    out[12..].copy_from_slice(rdata);
}

/// A standard query with one question, as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRepr<'a> {
    pub id: u16,
    /// Recursion desired.
    pub rd: bool,
    /// The question name in wire format.
    pub name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
}

impl<'a> QueryRepr<'a> {
    /// Reads a query (QR clear, opcode QUERY, exactly one question).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &'a Packet<&'a T>) -> Result<Self, WireError> {
        if packet.is_response() || packet.opcode() != 0 || packet.qdcount() != 1 {
            return Err(WireError::Malformed);
        }
        let q = packet.question()?;
        Ok(QueryRepr {
            id: packet.id(),
            rd: packet.flags() & flags::RD != 0,
            name: q.name,
            qtype: q.qtype,
            qclass: q.qclass,
        })
    }

    /// Bytes [`QueryRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.name.len() + 4
    }

    /// Writes the query into `packet`, which must be at least [`QueryRepr::buffer_len`]
    /// bytes long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_id(self.id);
        packet.set_flags(if self.rd { flags::RD } else { 0 });
        packet.set_qdcount(1);
        packet.set_ancount(0);
        packet.set_nscount(0);
        packet.set_arcount(0);
        let p = packet.payload_mut();
        let n = self.name.len();
        p[..n].copy_from_slice(self.name);
        p[n..n + 2].copy_from_slice(&self.qtype.to_be_bytes());
        p[n + 2..n + 4].copy_from_slice(&self.qclass.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // dig +norec -t A www.example.com, ID 0x1234.
    const QUERY: [u8; 33] = [
        0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 3, b'w', b'w',
        b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0, 0x00, 0x01,
        0x00, 0x01,
    ];

    #[test]
    fn parses_fixture() {
        let p = Packet::new_checked(&QUERY[..]).expect("header");
        assert_eq!(p.id(), 0x1234);
        assert!(!p.is_response());
        let q = QueryRepr::parse(&p).expect("query");
        assert_eq!(q.qtype, TYPE_A);
        assert_eq!(wire_to_string(q.name).expect("name"), "www.example.com");
        assert_eq!(p.question().expect("q").end, QUERY.len());
    }

    #[test]
    fn emit_parse_round_trip() {
        let name = name_to_wire("ab.small.lab.test").expect("name");
        let repr = QueryRepr {
            id: 7,
            rd: true,
            name: &name,
            qtype: 28,
            qclass: CLASS_IN,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        let p = Packet::new_checked(&buf[..]).expect("header");
        assert_eq!(QueryRepr::parse(&p).expect("parse"), repr);
        // And an independent parser agrees.
        let m = hickory_proto::op::Message::from_vec(&buf).expect("hickory");
        assert_eq!(m.id(), 7);
        assert_eq!(m.queries()[0].name().to_ascii(), "ab.small.lab.test.");
        assert_eq!(u16::from(m.queries()[0].query_type()), 28);
    }

    #[test]
    fn truncated_at_every_offset() {
        for cut in 0..QUERY.len() {
            let r = Packet::new_checked(&QUERY[..cut]).and_then(|p| p.question().map(|q| q.end));
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_compression_and_long_labels() {
        let mut q = QUERY;
        q[12] = 0xc0;
        assert_eq!(
            Packet::new_unchecked(&q[..]).question(),
            Err(WireError::BadName)
        );
        assert_eq!(wire_len(&"x".repeat(64)), Err(WireError::BadName));
        let long = ["abcdefghij"; 26].join(".");
        assert_eq!(wire_len(&long), Err(WireError::BadName));
    }

    #[test]
    fn record_is_what_hickory_reads() {
        // A response: the query plus QR|AA, ANCOUNT 1 and our record.
        let mut m = QUERY.to_vec();
        m[2] = 0x84;
        m[7] = 1;
        m.extend_from_slice(&compressed_a_record(300, [100, 64, 1, 2]));
        let msg = hickory_proto::op::Message::from_vec(&m).expect("hickory");
        let a = &msg.answers()[0];
        assert_eq!(a.name().to_ascii(), "www.example.com.");
        assert_eq!(a.ttl(), 300);
        assert_eq!(a.data().to_string(), "100.64.1.2");
    }

    #[test]
    fn aaaa_record_is_what_hickory_reads() {
        let mut m = QUERY.to_vec();
        m[2] = 0x84;
        m[7] = 1;
        let addr: std::net::Ipv6Addr = "2001:db8:64::5".parse().expect("addr");
        m.extend_from_slice(&compressed_aaaa_record(60, addr.octets()));
        let msg = hickory_proto::op::Message::from_vec(&m).expect("hickory");
        let a = &msg.answers()[0];
        assert_eq!(a.name().to_ascii(), "www.example.com.");
        assert_eq!(a.ttl(), 60);
        assert_eq!(u16::from(a.record_type()), TYPE_AAAA);
        assert_eq!(a.data().to_string(), "2001:db8:64::5");
    }

    #[test]
    fn rcode_and_qtype_names() {
        assert_eq!(Rcode::NXDOMAIN.name(), "NXDOMAIN");
        assert_eq!(Rcode(9).name(), "RCODE9");
        assert_eq!(qtype_from_str("aaaa"), Some(28));
        assert_eq!(qtype_from_str("TYPE65"), Some(65));
        assert_eq!(qtype_from_str("bogus"), None);
    }

    #[test]
    fn root_name() {
        assert_eq!(name_to_wire(".").expect("root"), vec![0]);
        assert_eq!(wire_to_string(&[0]).expect("root"), ".");
    }
}
