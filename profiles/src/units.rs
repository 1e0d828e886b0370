//! The units every tool's command line shares, parsed in one place: durations (`30s`,
//! `500ms`, `2m`, `1h`, `250us`, `10ns`, a bare number = seconds) and MAC addresses.
//! Pure functions; errors are one readable line saying what was expected.

use std::time::Duration;

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
