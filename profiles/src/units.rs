//! The units every tool's command line shares, parsed in one place: rates (`750k`,
//! `2M` packets/s; `5Gbit`, `100Mbit` bits/s on the wire with 24 bytes of framing per
//! frame), durations (`30s`, `500ms`, `2m`, `1h`, `250us`, `10ns`, a bare number =
//! seconds), MAC addresses, IPv4 addresses and IPv4 and IPv6 prefixes (`198.18.0.0/24`,
//! `2001:db8::/32`) and wall-clock times (RFC 3339 UTC or Unix seconds: `gen --start-at`).
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

/// Parses an IPv4 or an IPv6 address.
pub fn parse_ip(s: &str) -> Result<std::net::IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address"))
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

/// A wall-clock time (CLOCK_REALTIME) in ns since the Unix epoch, from RFC 3339 in
/// UTC (`2026-12-02T00:10:05.250Z`, `T` or a space, `Z` or `+00:00`, up to 9
/// fraction digits) or Unix seconds with an optional fraction (`1796170205.25`).
pub fn parse_wall_time(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = |why: &str| {
        format!(
            "invalid time {s:?}: {why} (expected RFC 3339 UTC like 2026-12-02T00:10:05.250Z, or Unix seconds like 1796170205.25)"
        )
    };
    // Seconds and an optional fraction of up to 9 digits, as ns.
    let secs_frac = |whole: &str, frac: Option<&str>| -> Result<(u64, u64), String> {
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not a number of seconds"));
        }
        let w: u64 = whole.parse().map_err(|_| bad("too large"))?;
        let ns = match frac {
            None => 0,
            Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                f.parse::<u64>().map_err(|_| bad("bad fraction"))? * 10u64.pow(9 - f.len() as u32)
            }
            Some(_) => return Err(bad("the fraction takes 1 to 9 digits")),
        };
        Ok((w, ns))
    };
    let ns = if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let mut it = t.splitn(2, '.');
        let (w, f) = secs_frac(it.next().unwrap_or(""), it.next())?;
        w.checked_mul(1_000_000_000)
            .and_then(|x| x.checked_add(f))
            .ok_or_else(|| bad("too large"))?
    } else {
        let rest = t
            .strip_suffix('Z')
            .or_else(|| t.strip_suffix('z'))
            .or_else(|| t.strip_suffix("+00:00"))
            .ok_or_else(|| bad("give the time in UTC, ending in Z"))?;
        let (date, time) = rest
            .split_once(['T', 't', ' '])
            .ok_or_else(|| bad("no `T` between date and time"))?;
        let num = |x: &str, what: &str| -> Result<u64, String> {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("bad {what}")));
            }
            x.parse().map_err(|_| bad(&format!("bad {what}")))
        };
        let d: Vec<&str> = date.split('-').collect();
        let [y, mo, da] = d.as_slice() else {
            return Err(bad("the date is YYYY-MM-DD"));
        };
        let (y, mo, da) = (num(y, "year")?, num(mo, "month")?, num(da, "day")?);
        let tm: Vec<&str> = time.split(':').collect();
        let [h, mi, sec] = tm.as_slice() else {
            return Err(bad("the time is HH:MM:SS[.fraction]"));
        };
        let (h, mi) = (num(h, "hour")?, num(mi, "minute")?);
        let mut it = sec.splitn(2, '.');
        let (sec, frac) = secs_frac(it.next().unwrap_or(""), it.next())?;
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let days_in = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1970..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || da < 1
            || da > days_in[(mo - 1) as usize]
            || h > 23
            || mi > 59
            || sec > 59
        {
            return Err(bad("a field is out of range"));
        }
        let days = days_from_civil(y, mo, da);
        ((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000_000) + frac
    };
    Ok(ns)
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; year >= 1970).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    // H. Hinnant's algorithm, for years from 1970 on (no negative eras).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A wall-clock time (ns since the Unix epoch) as RFC 3339 UTC with nanoseconds,
/// which [`parse_wall_time`] reads back exactly.
pub fn format_wall_time(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_parse_and_format_round_trip() {
        // 2026-12-02T00:10:05.25Z, checked against `date -u -d @1796170205.25`.
        let ns = 1_796_170_205_250_000_000;
        assert_eq!(parse_wall_time("2026-12-02T00:10:05.250Z"), Ok(ns));
        assert_eq!(parse_wall_time("2026-12-02 00:10:05.25+00:00"), Ok(ns));
        assert_eq!(parse_wall_time("1796170205.25"), Ok(ns));
        assert_eq!(parse_wall_time("1796170205"), Ok(ns - 250_000_000));
        assert_eq!(parse_wall_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_wall_time("2000-02-29T23:59:59.000000001Z"),
            Ok(951_868_799_000_000_001)
        );
        assert_eq!(format_wall_time(ns), "2026-12-02T00:10:05.250000000Z");
        for t in [0, 951_868_799_000_000_001, ns, 4_102_444_800_123_456_789] {
            assert_eq!(parse_wall_time(&format_wall_time(t)), Ok(t), "{t}");
        }
        for bad in [
            "",
            "soon",
            "2026-12-02T00:10:05",
            "2026-12-02T00:10:05+01:00",
            "2026-02-30T00:00:00Z",
            "2026-12-02T24:00:00Z",
            "1.2345678901",
            "-5",
            "1e9",
        ] {
            let e = parse_wall_time(bad).expect_err(bad);
            assert!(e.contains("RFC 3339"), "{e}");
        }
    }

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
