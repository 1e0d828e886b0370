//! The units every tool's command line shares, parsed in one place: rates (`750k`,
//! `2M` packets/s; `5Gbit`, `100Mbit` bits/s on the wire with 24 bytes of framing per
//! frame), durations (`30s`, `500ms`, `2m`, `1h`, `250us`, `10ns`, a bare number =
//! seconds) and MAC addresses.
//! Pure functions; errors are one readable line saying what was expected.

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
        match self {
            Rate::Pps(p) => p,
            Rate::Bits(b) => b / ((len as f64 + WIRE_OVERHEAD as f64) * 8.0),
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
    fn rates_parse_and_print_back() {
        for s in ["750k", "2M", "1.5M", "5Gbit", "100Mbit", "123", "0.5", "7bit"] {
            let r = parse_rate(s).expect(s);
            assert_eq!(parse_rate(&r.to_string()), Ok(r), "{s} -> {r}");
        }
        assert_eq!(parse_rate("2M"), Ok(Rate::Pps(2e6)));
        assert_eq!(parse_rate("5Gbit"), Ok(Rate::Bits(5e9)));
        assert!((Rate::Bits(672e6).pps(60) - 1e6).abs() < 1e-6);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("lots").unwrap_err().contains("750k"));
        assert!(parse_rate("5Gb").unwrap_err().contains("unknown unit"));
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
        for bad in ["", "x", "5 parsecs", "-1s", "0", "0s", "1e99"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
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
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
