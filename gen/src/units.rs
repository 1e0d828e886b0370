//! Command-line units: rates (`750k`, `2M`, `1.5M` packets/s; `5Gbit`, `100Mbit`
//! bits/s on the wire counting 24 bytes of framing per frame), durations (`30s`,
//! `500ms`, `2m`, bare number = seconds), core lists (`0,2-3`). Pure functions.

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

pub use profiles::units::{format_mac, parse_duration, parse_mac};

/// Parses a core list: `0,2-3,5`.
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("core list `{s}`: expected e.g. 0,2-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(format!("core list `{s}` is empty"));
    }
    let mut d = out.clone();
    d.sort_unstable();
    d.dedup();
    if d.len() != out.len() {
        return Err(format!("core list `{s}` repeats a core"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("750k"), Ok(Rate::Pps(750e3)));
        assert_eq!(parse_rate("2M"), Ok(Rate::Pps(2e6)));
        assert_eq!(parse_rate("1.5M"), Ok(Rate::Pps(1.5e6)));
        assert_eq!(parse_rate("5Gbit"), Ok(Rate::Bits(5e9)));
        assert_eq!(parse_rate("100Mbit"), Ok(Rate::Bits(100e6)));
        assert_eq!(parse_rate("1000"), Ok(Rate::Pps(1000.0)));
        // 64-byte frames: 60-byte buffers + 24 = 84 bytes = 672 bits.
        let r = Rate::Bits(10e9).pps(60);
        assert!((r - 14_880_952.38).abs() < 1.0, "{r}");
        for bad in ["0", "0k", "abc", "5X", "-3", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn cores_and_macs() {
        assert_eq!(parse_cores("0,2-3"), Ok(vec![0, 2, 3]));
        assert!(parse_cores("1,1").is_err());
        assert!(parse_cores("3-1").is_err());
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Ok([2, 0, 0, 0, 0, 10]));
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert_eq!(format_mac([2, 0, 0, 0, 0, 10]), "02:00:00:00:00:0a");
    }
}
