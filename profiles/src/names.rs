//! DNS name sets: name `i` is a label of `label_len` characters from `charset` (the
//! base-`charset.len()` digits of `i`, most significant first) under a fixed suffix, and
//! maps to a fixed IPv4 address, `base + i` (its A record), and a fixed IPv6 address,
//! [`AAAA_PREFIX`] + `i` (2001:db8:64::/96, documentation space; its AAAA record).
//! `gen` asks exactly these names and `dut` fills its cache with exactly these
//! records, so a hit rate of 100 % is a real check.
//!
//! `label_len = 0` is the single name `suffix` (the dns-ping workload).

use crate::wire::dns;

/// The /96 that every name set's AAAA addresses are in: name i has
/// `2001:db8:64::` + i (its low 32 bits are i; 2001:db8::/32 is documentation space).
pub const AAAA_PREFIX: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 0);

/// A deterministic set of query names and their A and AAAA records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSet {
    label_len: usize,
    charset: Vec<u8>,
    suffix: String,
    suffix_wire: Vec<u8>,
    count: u64,
    base: u32,
    ttl: u32,
}

/// Why a name set is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameSetError {
    #[error("charset is empty")]
    EmptyCharset,
    #[error("charset has '{0}', which is not a printable ASCII character other than '.' and '\\'")]
    BadChar(char),
    #[error("charset repeats '{0}'")]
    Repeated(char),
    #[error("label_len {0} is out of range (0 to 63)")]
    LabelLen(usize),
    #[error("the set has more than 2^32 names")]
    TooMany,
    #[error("suffix '{0}' is not a valid DNS name (labels 1-63 bytes, name at most 255)")]
    BadSuffix(String),
    #[error("base address plus the set size runs past 255.255.255.255")]
    AddressOverflow,
}

/// Expands a charset spec: ranges like `a-z0-9`, otherwise literal characters.
pub fn expand_charset(spec: &str) -> Result<Vec<u8>, NameSetError> {
    let b = spec.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if i + 2 < b.len() && b[i + 1] == b'-' && b[i] <= b[i + 2] {
            out.extend(b[i]..=b[i + 2]);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        return Err(NameSetError::EmptyCharset);
    }
    for (k, &c) in out.iter().enumerate() {
        if !c.is_ascii_graphic() || c == b'.' || c == b'\\' {
            return Err(NameSetError::BadChar(c as char));
        }
        if out[..k].contains(&c) {
            return Err(NameSetError::Repeated(c as char));
        }
    }
    Ok(out)
}

impl NameSet {
    /// A set of `charset.len() ^ label_len` names under `suffix`.
    pub fn new(
        label_len: usize,
        charset: &str,
        suffix: &str,
        base: [u8; 4],
        ttl: u32,
    ) -> Result<Self, NameSetError> {
        let charset = expand_charset(charset)?;
        if label_len > dns::MAX_LABEL_LEN {
            return Err(NameSetError::LabelLen(label_len));
        }
        let count = (charset.len() as u64)
            .checked_pow(label_len as u32)
            .filter(|&c| c <= 1 << 32)
            .ok_or(NameSetError::TooMany)?;
        let suffix_wire =
            dns::name_to_wire(suffix).map_err(|_| NameSetError::BadSuffix(suffix.into()))?;
        let extra = if label_len == 0 { 0 } else { 1 + label_len };
        if suffix_wire.len() + extra > dns::MAX_NAME_LEN {
            return Err(NameSetError::BadSuffix(suffix.into()));
        }
        let base_u = u32::from_be_bytes(base);
        if u64::from(base_u) + count - 1 > u64::from(u32::MAX) {
            return Err(NameSetError::AddressOverflow);
        }
        Ok(NameSet {
            label_len,
            charset,
            suffix: suffix.trim_end_matches('.').to_string(),
            suffix_wire,
            count,
            base: base_u,
            ttl,
        })
    }

    /// A set holding the one name `name`.
    pub fn single(name: &str, addr: [u8; 4], ttl: u32) -> Result<Self, NameSetError> {
        Self::new(0, "a", name, addr, ttl)
    }

    /// Number of names.
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn label_len(&self) -> usize {
        self.label_len
    }
    pub fn ttl(&self) -> u32 {
        self.ttl
    }
    pub fn suffix(&self) -> &str {
        &self.suffix
    }
    /// Length of every name in wire format (they all have the same length).
    pub fn wire_len(&self) -> usize {
        self.suffix_wire.len()
            + if self.label_len == 0 {
                0
            } else {
                1 + self.label_len
            }
    }

    /// Writes the varying label of name `i` (`label_len` bytes) into `out`.
    #[inline]
    pub fn write_label(&self, i: u64, out: &mut [u8]) {
        let radix = self.charset.len() as u64;
        let mut v = i % self.count;
        for slot in out[..self.label_len].iter_mut().rev() {
            *slot = self.charset[(v % radix) as usize];
            v /= radix;
        }
    }

    /// Name `i` in wire format.
    pub fn wire_name(&self, i: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_len());
        if self.label_len > 0 {
            v.push(self.label_len as u8);
            v.resize(1 + self.label_len, 0);
            self.write_label(i, &mut v[1..]);
        }
        v.extend_from_slice(&self.suffix_wire);
        v
    }

    /// Name `i` as dotted text.
    pub fn name(&self, i: u64) -> String {
        if self.label_len == 0 {
            return if self.suffix.is_empty() {
                ".".into()
            } else {
                self.suffix.clone()
            };
        }
        let mut label = vec![0; self.label_len];
        self.write_label(i, &mut label);
        format!("{}.{}", String::from_utf8_lossy(&label), self.suffix)
    }

    /// The A record address of name `i`: `base + i`.
    pub fn address(&self, i: u64) -> [u8; 4] {
        (self.base + (i % self.count) as u32).to_be_bytes()
    }

    /// The 16-byte compressed A record answering name `i`.
    pub fn record(&self, i: u64) -> [u8; dns::COMPRESSED_A_LEN] {
        dns::compressed_a_record(self.ttl, self.address(i))
    }

    /// The AAAA record address of name `i`: [`AAAA_PREFIX`] + `i` (a set has at
    /// most 2^32 names, so only the low 32 bits vary).
    pub fn address6(&self, i: u64) -> [u8; 16] {
        (u128::from(AAAA_PREFIX) + u128::from(i % self.count)).to_be_bytes()
    }

    /// The 28-byte compressed AAAA record answering name `i`.
    pub fn record6(&self, i: u64) -> [u8; dns::COMPRESSED_AAAA_LEN] {
        dns::compressed_aaaa_record(self.ttl, self.address6(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NameSet {
        NameSet::new(2, "a-z0-9", "small.lab.test", [100, 64, 0, 0], 300).expect("set")
    }

    #[test]
    fn sizes_match_the_paper() {
        assert_eq!(small().count(), 1296);
        let large = NameSet::new(4, "a-z0-9", "large.lab.test", [100, 64, 0, 0], 300).expect("set");
        assert_eq!(large.count(), 1_679_616);
        // 16-byte records: 20 KiB and 26 MiB of answers.
        assert_eq!(small().count() * 16 / 1024, 20);
        assert_eq!(large.count() * 16 / (1024 * 1024), 25); // 25.6 MiB
    }

    #[test]
    fn names_are_distinct_and_deterministic() {
        let s = small();
        assert_eq!(s.name(0), "aa.small.lab.test");
        assert_eq!(s.name(1), "ab.small.lab.test");
        assert_eq!(s.name(36), "ba.small.lab.test");
        assert_eq!(s.name(1295), "99.small.lab.test");
        let all: std::collections::HashSet<_> = (0..s.count()).map(|i| s.wire_name(i)).collect();
        assert_eq!(all.len(), 1296);
        assert_eq!(s.address(0), [100, 64, 0, 0]);
        assert_eq!(s.address(300), [100, 64, 1, 44]);
        let v6 = |a: [u8; 16]| std::net::Ipv6Addr::from(a).to_string();
        assert_eq!(v6(s.address6(0)), "2001:db8:64::");
        assert_eq!(v6(s.address6(300)), "2001:db8:64::12c");
        assert_eq!(v6(s.address6(1296 + 1)), "2001:db8:64::1");
        let r = s.record6(300);
        assert_eq!(&r[..12], &[0xc0, 12, 0, 28, 0, 1, 0, 0, 1, 44, 0, 16]);
        assert_eq!(r[12..], s.address6(300));
    }

    #[test]
    fn wire_name_matches_text() {
        let s = small();
        for i in [0, 17, 1295] {
            let w = s.wire_name(i);
            assert_eq!(w.len(), s.wire_len());
            assert_eq!(dns::wire_to_string(&w).expect("wire"), s.name(i));
        }
    }

    #[test]
    fn root_is_a_single_name() {
        let s = NameSet::single(".", [192, 0, 2, 1], 60).expect("root");
        assert_eq!(s.wire_name(0), vec![0]);
        assert_eq!(s.name(0), ".");
    }

    #[test]
    fn single_name() {
        let s = NameSet::single("ping.lab.test", [192, 0, 2, 1], 60).expect("single");
        assert_eq!(s.count(), 1);
        assert_eq!(s.name(5), "ping.lab.test");
        assert_eq!(
            s.wire_name(0),
            dns::name_to_wire("ping.lab.test").expect("wire")
        );
    }

    #[test]
    fn bad_sets() {
        assert_eq!(expand_charset(""), Err(NameSetError::EmptyCharset));
        assert_eq!(expand_charset("a.b"), Err(NameSetError::BadChar('.')));
        assert_eq!(expand_charset("aa"), Err(NameSetError::Repeated('a')));
        assert!(NameSet::new(7, "a-z0-9", "x.test", [0; 4], 1).is_err()); // 36^7 > 2^32
        assert!(NameSet::new(2, "a-z", "x.test", [255, 255, 255, 0], 1).is_err());
        assert!(NameSet::single("a..b", [0; 4], 1).is_err());
    }
}
