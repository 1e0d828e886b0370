//! Command-line units: rates, durations and MACs come from `profiles::units` (one
//! parser set for every tool and for the experiment files); core lists (`0,2-3`)
//! are gen's own. Pure functions.

pub use profiles::units::{Rate, WIRE_OVERHEAD, format_mac, parse_duration, parse_mac, parse_rate};

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
