//! The syn-filter allow-list: IPv4 and IPv6 prefixes whose TCP SYNs pass, from
//! `--allow CIDR` (repeatable) and `--allow-file FILE` (one CIDR per line,
//! `#` comments, blank lines ignored), each read by `profiles::units::parse_cidr`
//! or, when it contains a `:`, `profiles::units::parse_cidr6` (the project's
//! CIDR parsers). The kernel holds it in the program's `syn_allow` (IPv4) and
//! `syn_allow6` (IPv6) LPM tries ([`AllowList::fill`]); the user-space execution point's
//! shim asks [`AllowList::contains`], which answers as the trie does (longest
//! match; any match allows).
//!
//! Invariant: every prefix is stored with its host bits cleared (as
//! `parse_cidr` returns it), so the trie and [`AllowList::contains`] agree.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use libbpf_rs::{MapCore, MapFlags};

use crate::error::{Error, Result, bpf};
use crate::skel::{AllowMaps, SYN_ALLOW_ENTRIES};

/// A set of IPv4 and IPv6 prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// In the order given, duplicates removed.
    prefixes: Vec<(Ipv4Addr, u8)>,
    /// Networks by prefix length (index = length), for [`AllowList::contains`].
    by_len: Vec<HashSet<u32>>,
    /// The IPv6 prefixes, in the order given, duplicates removed.
    prefixes6: Vec<(Ipv6Addr, u8)>,
    /// IPv6 networks by prefix length (index = length, 0..=128).
    by_len6: Vec<HashSet<u128>>,
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// One `--allow` value or allow-file line: IPv6 if it contains a `:`.
fn parse(s: &str) -> std::result::Result<Prefix, String> {
    profiles::units::parse_cidr_any(s).map(|(a, l)| match a {
        std::net::IpAddr::V4(a) => Prefix::V4(a, l),
        std::net::IpAddr::V6(a) => Prefix::V6(a, l),
    })
}

/// A parsed prefix of either family.
enum Prefix {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

impl AllowList {
    /// An empty list (every SYN is dropped).
    pub fn new() -> AllowList {
        AllowList {
            prefixes: Vec::new(),
            by_len: vec![HashSet::new(); 33],
            prefixes6: Vec::new(),
            by_len6: vec![HashSet::new(); 129],
        }
    }

    /// Adds one IPv6 prefix (host bits cleared).
    pub fn push6(&mut self, addr: Ipv6Addr, len: u8) {
        let len = len.min(128);
        let net = u128::from(addr) & mask6(len);
        if self.by_len6.len() < 129 {
            self.by_len6 = vec![HashSet::new(); 129];
        }
        if self.by_len6[usize::from(len)].insert(net) {
            self.prefixes6.push((Ipv6Addr::from(net), len));
        }
    }

    /// The IPv6 prefixes, in the order given.
    pub fn prefixes6(&self) -> &[(Ipv6Addr, u8)] {
        &self.prefixes6
    }

    fn push_parsed(&mut self, p: Prefix) {
        match p {
            Prefix::V4(a, l) => self.push(a, l),
            Prefix::V6(a, l) => self.push6(a, l),
        }
    }

    /// Adds one prefix (host bits cleared).
    pub fn push(&mut self, addr: Ipv4Addr, len: u8) {
        let len = len.min(32);
        let net = u32::from(addr) & mask(len);
        if self.by_len.len() < 33 {
            self.by_len = vec![HashSet::new(); 33];
        }
        if self.by_len[usize::from(len)].insert(net) {
            self.prefixes.push((Ipv4Addr::from(net), len));
        }
    }

    /// The prefixes, in the order given.
    pub fn prefixes(&self) -> &[(Ipv4Addr, u8)] {
        &self.prefixes
    }

    /// How many prefixes (both families).
    pub fn len(&self) -> usize {
        self.prefixes.len() + self.prefixes6.len()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds each `--allow` value; the error names the option and the value.
    pub fn add_args(&mut self, values: &[String]) -> Result<()> {
        for v in values {
            let p = parse(v).map_err(|e| Error::Invalid(format!("--allow: {e}")))?;
            self.push_parsed(p);
        }
        Ok(())
    }

    /// Adds every prefix of `text`, read from `file` (for messages): one CIDR
    /// per line, `#` to the end of a line is a comment, blank lines are
    /// skipped. The first bad line fails as `FILE:LINE: problem`.
    pub fn add_text(&mut self, file: &str, text: &str) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let p = parse(content).map_err(|e| Error::Invalid(format!("{file}:{}: {e}", i + 1)))?;
            self.push_parsed(p);
        }
        Ok(())
    }

    /// Adds every prefix of the file at `path` (see [`AllowList::add_text`]).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Kernel {
            what: format!("--allow-file {}: cannot read it", path.display()),
            source: e,
        })?;
        self.add_text(&path.display().to_string(), &text)
    }

    /// True if `addr` is inside one of the prefixes.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let a = u32::from(addr);
        self.by_len
            .iter()
            .enumerate()
            .any(|(len, set)| !set.is_empty() && set.contains(&(a & mask(len as u8))))
    }

    /// True if `addr` is inside one of the IPv6 prefixes.
    pub fn contains6(&self, addr: Ipv6Addr) -> bool {
        let a = u128::from(addr);
        self.by_len6
            .iter()
            .enumerate()
            .any(|(len, set)| !set.is_empty() && set.contains(&(a & mask6(len as u8))))
    }

    /// The IPv6 LPM trie key of a prefix (`struct syn_allow6_key`: length
    /// in host order, the 16 address bytes in network order).
    pub fn key6(addr: Ipv6Addr, len: u8) -> [u8; 20] {
        let mut k = [0u8; 20];
        k[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
        k[4..].copy_from_slice(&addr.octets());
        k
    }

    /// The LPM trie key of a prefix (`struct syn_allow_key`: length in host
    /// order, address in network order).
    pub fn key(addr: Ipv4Addr, len: u8) -> [u8; 8] {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
        k[4..].copy_from_slice(&addr.octets());
        k
    }

    /// Writes every IPv4 prefix into the program's `syn_allow` map and
    /// every IPv6 prefix into its `syn_allow6` map.
    pub fn fill(&self, maps: &AllowMaps) -> Result<()> {
        for (family, n) in [
            ("IPv4", self.prefixes.len()),
            ("IPv6", self.prefixes6.len()),
        ] {
            if n > SYN_ALLOW_ENTRIES as usize {
                return Err(Error::Invalid(format!(
                    "the allow-list has {n} {family} prefixes; the map holds {SYN_ALLOW_ENTRIES}"
                )));
            }
        }
        for (a, l) in &self.prefixes {
            maps.v4
                .update(&Self::key(*a, *l), &[1u8], MapFlags::ANY)
                .map_err(bpf(format!("add {a}/{l} to the syn_allow map")))?;
        }
        for (a, l) in &self.prefixes6 {
            maps.v6
                .update(&Self::key6(*a, *l), &[1u8], MapFlags::ANY)
                .map_err(bpf(format!("add {a}/{l} to the syn_allow6 map")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_comments_and_errors() {
        let mut a = AllowList::new();
        a.add_text(
            "allow.txt",
            "# trusted\n198.18.0.0/24\n\n  10.1.2.3  # one host\n10.9.9.9/8\n198.18.0.7/24\n",
        )
        .expect("good file");
        assert_eq!(
            a.prefixes(),
            &[
                (Ipv4Addr::new(198, 18, 0, 0), 24),
                (Ipv4Addr::new(10, 1, 2, 3), 32),
                (Ipv4Addr::new(10, 0, 0, 0), 8),
            ]
        );
        assert!(a.contains(Ipv4Addr::new(198, 18, 0, 200)));
        assert!(a.contains(Ipv4Addr::new(10, 200, 0, 1)));
        assert!(!a.contains(Ipv4Addr::new(198, 18, 1, 1)));
        assert!(!a.contains(Ipv4Addr::new(11, 0, 0, 1)));
        let e = AllowList::new()
            .add_text("allow.txt", "10.0.0.0/8\n# x\n10.0.0.0/33\n")
            .expect_err("bad prefix length");
        let msg = e.to_string();
        assert!(msg.starts_with("allow.txt:3: '10.0.0.0/33'"), "{msg}");
        let e = AllowList::new()
            .add_args(&["nope".into()])
            .expect_err("bad --allow");
        assert!(e.to_string().starts_with("--allow: 'nope'"), "{e}");
        let mut all = AllowList::new();
        all.push(Ipv4Addr::new(1, 2, 3, 4), 0);
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(
            AllowList::key(Ipv4Addr::new(198, 18, 0, 0), 24)[4..],
            [198, 18, 0, 0]
        );
    }

    #[test]
    fn ipv6_prefixes_from_args_and_files() {
        let v6 = |t: &str| t.parse::<Ipv6Addr>().expect(t);
        let mut a = AllowList::new();
        a.add_args(&["2001:db8:1::5/48".into(), "198.18.0.0/24".into()])
            .expect("mixed --allow");
        a.add_text(
            "allow.txt",
            "# v6
2001:db8:ff::1  # one host
2001:db8:1::/48
",
        )
        .expect("v6 file");
        assert_eq!(a.prefixes(), &[(Ipv4Addr::new(198, 18, 0, 0), 24)]);
        assert_eq!(
            a.prefixes6(),
            &[(v6("2001:db8:1::"), 48), (v6("2001:db8:ff::1"), 128)]
        );
        assert_eq!(a.len(), 3);
        assert!(a.contains6(v6("2001:db8:1:ffff::9")));
        assert!(a.contains6(v6("2001:db8:ff::1")));
        assert!(!a.contains6(v6("2001:db8:ff::2")));
        assert!(!a.contains6(v6("2001:db8:2::1")));
        // IPv4 prefixes do not cover IPv6 sources and the reverse.
        assert!(!a.contains(Ipv4Addr::new(32, 1, 13, 184)));
        let e = AllowList::new()
            .add_text(
                "allow.txt",
                "2001:db8::/32
2001:db8::/129
",
            )
            .expect_err("bad v6 length");
        assert!(
            e.to_string()
                .starts_with("allow.txt:2: '2001:db8::/129' is not an IPv6 prefix"),
            "{e}"
        );
        let mut all = AllowList::new();
        all.push6(v6("2001:db8::1"), 0);
        assert!(all.contains6(v6("fe80::1")));
        let k = AllowList::key6(v6("2001:db8::"), 32);
        assert_eq!(k[..4], 32u32.to_ne_bytes());
        assert_eq!(k[4..8], [0x20, 0x01, 0x0d, 0xb8]);
    }
}
