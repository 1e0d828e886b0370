//! Command-line units: rates, durations, MACs and IPv4/IPv6 addresses come from
//! `profiles::units` (one parser set for every tool and for the experiment files,
//! re-exported here); core lists (`0,2-3`) are gen's own. Pure functions.

pub use profiles::units::{
    Rate, WIRE_OVERHEAD, format_mac, parse_duration, parse_ip, parse_ipv4, parse_mac, parse_rate,
};

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

    #[test]
    fn cores() {
        assert_eq!(parse_cores("0,2-3"), Ok(vec![0, 2, 3]));
        assert_eq!(
            parse_cores("1,1"),
            Err("core list `1,1` repeats a core".into())
        );
        assert_eq!(
            parse_cores("3-1"),
            Err("core list `3-1`: expected e.g. 0,2-3".into())
        );
        assert_eq!(parse_cores(","), Err("core list `,` is empty".into()));
    }
}
