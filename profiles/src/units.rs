//! The units every tool's command line shares, parsed in one place: rates (`750k`,
//! `2M` packets/s; `5Gbit`, `100Mbit` bits/s on the wire with 24 bytes of framing per
//! frame), durations (`30s`, `500ms`, `2m`, `1h`, `250us`, `10ns`, a bare number =
//! seconds), MAC addresses, IPv4 addresses and IPv4 and IPv6 prefixes (`198.18.0.0/24`,
//! `2001:db8::/32`).
//! Every tool's command line (as clap `value_parser`s), the profiles and the
//! experiment files take these, so the same words mean the same everywhere.
//! Pure functions; errors are one readable line saying what was expected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Framing bytes per frame on the wire beyond the buffer: FCS 4, preamble 8, gap 12.
pub const WIRE_OVERHEAD: u64 = 24;

/// A requested rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Packets per second.
    Pps(f64),
    /// Bits per second on the wire (framing included).
    Bits(f64),
}

impl Rate {
    /// Packets per second for frames of `len` bytes (buffer length, no FCS).
    pub fn pps(self, len: usize) -> f64 {
        self.pps_mean(len as f64)
    }

    /// Packets per second for frames of `mean_len` bytes on average (buffer length,
    /// no FCS): a size mix's bit rate over its mean size.
    pub fn pps_mean(self, mean_len: f64) -> f64 {
        match self {
            Rate::Pps(p) => p,
            Rate::Bits(b) => b / ((mean_len + WIRE_OVERHEAD as f64) * 8.0),
        }
    }
}

fn split_suffix(s: &str) -> (&str, &str) {
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..i], &s[i..])
}

/// Parses a rate. Errors say what is accepted.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let t = s.trim();
    let (num, suf) = split_suffix(t);
    let v: f64 = num.parse().map_err(|_| {
        format!("rate `{s}`: expected e.g. 750k, 2M, 1.5M (packets/s) or 5Gbit, 100Mbit (bits/s)")
    })?;
    let suf_l = suf.to_ascii_lowercase();
    let (mult, bits) = match suf_l.as_str() {
        "" | "pps" => (1.0, false),
        "k" | "kpps" => (1e3, false),
        "m" | "mpps" => (1e6, false),
        "g" | "gpps" => (1e9, false),
        "bit" | "bps" => (1.0, true),
        "kbit" => (1e3, true),
        "mbit" => (1e6, true),
        "gbit" => (1e9, true),
        _ => {
            return Err(format!(
                "rate `{s}`: unknown unit `{suf}` (use k, M, G for packets/s or kbit, Mbit, Gbit)"
            ));
        }
    };
    let v = v * mult;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!(
            "rate `{s}` must be greater than 0 (omit --rate for as fast as possible)"
        ));
    }
    Ok(if bits { Rate::Bits(v) } else { Rate::Pps(v) })
}

impl std::fmt::Display for Rate {
    /// The canonical spelling, which [`parse_rate`] reads back to the same value:
    /// `750000` (packets/s) or `5000000000bit` (bits/s).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Pps(p) => write!(f, "{p}"),
            Rate::Bits(b) => write!(f, "{b}bit"),
        }
    }
}

/// Parses a positive duration: `30s`, `500ms`, `2m`, `1h`, `250us`, `10ns`, `1.5` (s).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected e.g. 30s, 500ms, 2m or a number of seconds")
    })?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "ns" => v / 1e9,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        u => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {u:?} (use ns, us, ms, s, m, h)"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!(
            "invalid duration {s:?}: must be greater than 0 (and at most 1e9 s)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 address"))
}

/// Parses an IPv6 address.
pub fn parse_ipv6(s: &str) -> Result<Ipv6Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv6 address"))
}

/// The network mask of an IPv4 prefix of `len` bits (0 = none; 32 and more = all).
pub fn mask4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The network mask of an IPv6 prefix of `len` bits (0 = none; 128 and more = all).
pub fn mask6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// 16 bytes in network order as the four native-endian words of a C `__u32[4]`
/// holding them (how BPF rodata keeps an IPv6 address or mask).
pub fn ne_words(b: [u8; 16]) -> [u32; 4] {
    std::array::from_fn(|w| {
        u32::from_ne_bytes([b[4 * w], b[4 * w + 1], b[4 * w + 2], b[4 * w + 3]])
    })
}

/// Parses an IPv4 prefix `A.B.C.D/LEN` (a bare address is `/32`); host bits are
/// cleared (`198.18.0.77/24` is `198.18.0.0/24`).
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("'{s}' is not an IPv4 prefix: use A.B.C.D/LEN, e.g. 198.18.0.0/24");
    let t = s.trim();
    let (a, l) = t.split_once('/').unwrap_or((t, "32"));
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok((Ipv4Addr::from(u32::from(addr) & mask4(len)), len))
}

/// An IPv6 prefix `ADDR/LEN` (`2001:db8::/32`; a bare address is a /128),
/// returned with its host bits cleared (`2001:db8::1/64` is `2001:db8::/64`).
pub fn parse_cidr6(s: &str) -> Result<(Ipv6Addr, u8), String> {
    let bad = || format!("'{s}' is not an IPv6 prefix: use ADDR/LEN, e.g. 2001:db8::/32");
    let t = s.trim();
    let (a, l) = t.split_once('/').unwrap_or((t, "128"));
    let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > 128 {
        return Err(bad());
    }
    Ok((Ipv6Addr::from(u128::from(addr) & mask6(len)), len))
}

/// An IPv4 or IPv6 prefix (or bare address): [`parse_cidr6`] when `s` contains a
/// `:`, else [`parse_cidr`], with that parser's message on error.
pub fn parse_cidr_any(s: &str) -> Result<(IpAddr, u8), String> {
    if s.contains(':') {
        parse_cidr6(s).map(|(a, l)| (IpAddr::V6(a), l))
    } else {
        parse_cidr(s).map(|(a, l)| (IpAddr::V4(a), l))
    }
}

/// A MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_rodata_words() {
        assert_eq!(
            (mask4(0), mask4(24), mask4(32), mask4(40)),
            (0, 0xffff_ff00, u32::MAX, u32::MAX)
        );
        assert_eq!(
            (mask6(0), mask6(128), mask6(200)),
            (0, u128::MAX, u128::MAX)
        );
        assert_eq!(mask6(36), u128::MAX << 92);
        let w = ne_words(mask6(36).to_be_bytes());
        let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_ne_bytes()).collect();
        assert_eq!(&bytes[..6], &[0xff, 0xff, 0xff, 0xff, 0xf0, 0]);
        assert_eq!(&bytes[6..], &[0; 10]);
    }

    #[test]
    fn ipv6_prefixes_parse_with_host_bits_cleared() {
        let a = |t: &str| t.parse::<Ipv6Addr>().expect(t);
        assert_eq!(parse_cidr6("2001:db8::1/32"), Ok((a("2001:db8::"), 32)));
        assert_eq!(parse_cidr6(" 2001:db8::7 "), Ok((a("2001:db8::7"), 128)));
        assert_eq!(
            parse_cidr6("2001:db8::ff/121"),
            Ok((a("2001:db8::80"), 121))
        );
        assert_eq!(parse_cidr6("fe80::1/0"), Ok((Ipv6Addr::UNSPECIFIED, 0)));
        assert_eq!(parse_cidr6("::/128"), Ok((Ipv6Addr::UNSPECIFIED, 128)));
        for bad in [
            "2001:db8::/129",
            "2001:db8::/x",
            "198.18.0.0/24",
            "2001:db8:::1",
            "",
            "::/",
        ] {
            let e = parse_cidr6(bad).expect_err(bad);
            assert!(
                e.starts_with(&format!("'{bad}' is not an IPv6 prefix")),
                "{e}"
            );
        }
    }

    #[test]
    fn rates_parse_and_print_back() {
        for s in [
            "750k", "2M", "1.5M", "5Gbit", "100Mbit", "123", "0.5", "7bit",
        ] {
            let r = parse_rate(s).expect(s);
            assert_eq!(parse_rate(&r.to_string()), Ok(r), "{s} -> {r}");
        }
        assert_eq!(parse_rate("2M"), Ok(Rate::Pps(2e6)));
        assert_eq!(parse_rate("5Gbit"), Ok(Rate::Bits(5e9)));
        assert!((Rate::Bits(672e6).pps(60) - 1e6).abs() < 1e-6);
        assert_eq!(parse_rate("1000"), Ok(Rate::Pps(1000.0)));
        // 64-byte frames: 60-byte buffers + 24 = 84 bytes = 672 bits.
        let r = Rate::Bits(10e9).pps(60);
        assert!((r - 14_880_952.38).abs() < 1.0, "{r}");
        assert_eq!(
            parse_rate("lots"),
            Err(
                "rate `lots`: expected e.g. 750k, 2M, 1.5M (packets/s) or 5Gbit, 100Mbit (bits/s)"
                    .into()
            )
        );
        assert_eq!(
            parse_rate("5Gb"),
            Err(
                "rate `5Gb`: unknown unit `Gb` (use k, M, G for packets/s or kbit, Mbit, Gbit)"
                    .into()
            )
        );
        assert_eq!(
            parse_rate("0"),
            Err("rate `0` must be greater than 0 (omit --rate for as fast as possible)".into())
        );
        for bad in ["0k", "abc", "5X", "-3", "", "1.2.3M"] {
            let e = parse_rate(bad).expect_err(bad);
            assert!(
                e.starts_with(&format!("rate `{bad}`")) && !e.contains('\n'),
                "{e}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 7 "), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("fast"),
            Err(
                "invalid duration \"fast\": expected e.g. 30s, 500ms, 2m or a number of seconds"
                    .into()
            )
        );
        assert_eq!(
            parse_duration("5 parsecs"),
            Err("invalid duration \"5 parsecs\": unknown unit \"parsecs\" (use ns, us, ms, s, m, h)".into())
        );
        assert_eq!(
            parse_duration("0s"),
            Err("invalid duration \"0s\": must be greater than 0 (and at most 1e9 s)".into())
        );
        for bad in ["", "x", "-1s", "0", "1e99", "2000000000s"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.starts_with("invalid duration") && !e.contains('\n'),
                "{e}"
            );
        }
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:00:00:ab"), Ok([2, 0, 0, 0, 0, 0xab]));
        assert_eq!(parse_mac("02-00-00-00-00-AB"), Ok([2, 0, 0, 0, 0, 0xab]));
        assert_eq!(format_mac([2, 0, 0, 0, 0, 0xab]), "02:00:00:00:00:ab");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:0:0:0:0:1",
            "zz:00:00:00:00:00",
        ] {
            assert_eq!(
                parse_mac(bad),
                Err(format!("'{bad}' is not a MAC address (aa:bb:cc:dd:ee:ff)"))
            );
        }
    }

    #[test]
    fn ipv4_addresses_and_prefixes() {
        assert_eq!(parse_ipv4("198.18.0.1"), Ok(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(
            parse_ipv4("198.18.0.300"),
            Err("'198.18.0.300' is not an IPv4 address".into())
        );
        assert_eq!(
            parse_cidr("198.18.0.77/24"),
            Ok((Ipv4Addr::new(198, 18, 0, 0), 24))
        );
        assert_eq!(parse_cidr("10.0.0.1"), Ok((Ipv4Addr::new(10, 0, 0, 1), 32)));
        assert_eq!(parse_cidr("10.0.0.1/0"), Ok((Ipv4Addr::UNSPECIFIED, 0)));
        for bad in [
            "10.0.0.1/33",
            "nope/8",
            "10.0.0/8",
            "10.0.0.1/",
            "10.0.0.1/-1",
            "",
        ] {
            assert_eq!(
                parse_cidr(bad),
                Err(format!(
                    "'{bad}' is not an IPv4 prefix: use A.B.C.D/LEN, e.g. 198.18.0.0/24"
                ))
            );
        }
    }
}
