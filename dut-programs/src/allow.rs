//! The syn-filter allow-list: IPv4 prefixes whose TCP SYNs pass, from
//! `--allow CIDR` (repeatable) and `--allow-file FILE` (one CIDR per line,
//! `#` comments, blank lines ignored), each read by `profiles::units::parse_cidr`
//! (the project's one CIDR parser). The kernel holds it in the program's
//! `syn_allow` LPM trie ([`AllowList::fill`]); the user-space execution point's
//! shim asks [`AllowList::contains`], which answers as the trie does (longest
//! match; any match allows).
//!
//! Invariant: every prefix is stored with its host bits cleared (as
//! `parse_cidr` returns it), so the trie and [`AllowList::contains`] agree.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::error::{Error, Result, bpf};
use crate::skel::SYN_ALLOW_ENTRIES;

/// A set of IPv4 prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// In the order given, duplicates removed.
    prefixes: Vec<(Ipv4Addr, u8)>,
    /// Networks by prefix length (index = length), for [`AllowList::contains`].
    by_len: Vec<HashSet<u32>>,
}

fn mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

impl AllowList {
    /// An empty list (every SYN is dropped).
    pub fn new() -> AllowList {
        AllowList {
            prefixes: Vec::new(),
            by_len: vec![HashSet::new(); 33],
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

    /// How many prefixes.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// No prefix at all.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// Adds each `--allow` value; the error names the option and the value.
    pub fn add_args(&mut self, values: &[String]) -> Result<()> {
        for v in values {
            let (a, l) = profiles::units::parse_cidr(v)
                .map_err(|e| Error::Invalid(format!("--allow: {e}")))?;
            self.push(a, l);
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
            let (a, l) = profiles::units::parse_cidr(content)
                .map_err(|e| Error::Invalid(format!("{file}:{}: {e}", i + 1)))?;
            self.push(a, l);
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

    /// The LPM trie key of a prefix (`struct syn_allow_key`: length in host
    /// order, address in network order).
    pub fn key(addr: Ipv4Addr, len: u8) -> [u8; 8] {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&u32::from(len).to_ne_bytes());
        k[4..].copy_from_slice(&addr.octets());
        k
    }

    /// Writes every prefix into the program's `syn_allow` map.
    pub fn fill(&self, map: &MapHandle) -> Result<()> {
        if self.prefixes.len() > SYN_ALLOW_ENTRIES as usize {
            return Err(Error::Invalid(format!(
                "the allow-list has {} prefixes; the map holds {SYN_ALLOW_ENTRIES}",
                self.prefixes.len()
            )));
        }
        for (a, l) in &self.prefixes {
            map.update(&Self::key(*a, *l), &[1u8], MapFlags::ANY)
                .map_err(bpf(format!("add {a}/{l} to the syn_allow map")))?;
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
}
