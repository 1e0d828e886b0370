//! The interface's own transmit counters, which gen's figures are checked against:
//! driver statistics (`ethtool -S`, through the ETHTOOL_GSTATS ioctl) and the
//! kernel's per-interface totals (`/proc/thread-self/net/dev`, the calling thread's
//! network namespace). Read before the run and after the queues settle.
//!
//! Which counter: XDP transmits (xdp-live) are counted by drivers in per-queue
//! statistics whose names end in `xdp_xmit` (veth: `tx_queue_N_xdp_xmit`); where
//! the driver has none, and for AF_XDP (an skb through the driver in copy mode, a
//! descriptor in zero-copy mode), the interface's `tx_packets`.

use anyhow::{Context, Result};

pub use records::generator::TxCheck;

/// The driver's statistics of `iface` (`ethtool -S`), name and value (the AF_XDP
/// layer's reader, with the interface named in errors).
pub fn ethtool_stats(iface: &str) -> Result<Vec<(String, u64)>> {
    xdplayer::ethtool_stats(iface)
        .with_context(|| format!("reading the driver statistics of {iface} (SIOCETHTOOL)"))
}

pub use xdplayer::iface::DevStats;

/// `iface`'s kernel totals (the calling thread's namespace).
pub fn dev_stats(iface: &str) -> Result<DevStats> {
    xdplayer::iface::dev_stats(iface)
        .with_context(|| format!("reading {iface}'s line of /proc/thread-self/net/dev"))
}

/// Which interface counter counts gen's departures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxCounter {
    /// The sum of the driver's `*xdp_xmit` statistics (per queue).
    XdpXmit,
    /// The interface's tx_packets.
    TxPackets,
}

/// A reading of the chosen counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReading {
    /// Which counter.
    pub counter: TxCounter,
    /// Its value.
    pub value: u64,
    /// The interface's tx_dropped (kernel totals).
    pub tx_dropped: u64,
}

fn xdp_xmit_sum(stats: &[(String, u64)]) -> Option<u64> {
    let mut found = false;
    let mut sum = 0u64;
    for (k, v) in stats {
        if k.ends_with("xdp_xmit") {
            found = true;
            sum += v;
        }
    }
    found.then_some(sum)
}

/// Reads the counter that counts departures of `engine_xdp` (XDP transmits) or
/// AF_XDP frames on `iface`.
pub fn read_tx(iface: &str, engine_xdp: bool) -> Result<TxReading> {
    let dev = dev_stats(iface)?;
    if engine_xdp && let Some(v) = xdp_xmit_sum(&ethtool_stats(iface).unwrap_or_default()) {
        return Ok(TxReading {
            counter: TxCounter::XdpXmit,
            value: v,
            tx_dropped: dev.tx_dropped,
        });
    }
    Ok(TxReading {
        counter: TxCounter::TxPackets,
        value: dev.tx_packets,
        tx_dropped: dev.tx_dropped,
    })
}

/// Reads until two readings 50 ms apart agree (the queues have settled), for at
/// most `max`; returns the last reading.
pub fn read_tx_settled(
    iface: &str,
    engine_xdp: bool,
    max: std::time::Duration,
) -> Result<TxReading> {
    let until = std::time::Instant::now() + max;
    let mut last = read_tx(iface, engine_xdp)?;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let cur = read_tx(iface, engine_xdp)?;
        if cur == last || std::time::Instant::now() >= until {
            return Ok(cur);
        }
        last = cur;
    }
}

/// gen's count `gen_tx` checked against the counter's increase from `before` to
/// `after`, as the final record carries it.
pub fn tx_check(iface: &str, before: TxReading, after: TxReading, gen_tx: u64) -> TxCheck {
    let interface_tx = after.value.saturating_sub(before.value);
    let difference = gen_tx as i64 - interface_tx as i64;
    let pct = if interface_tx > 0 {
        difference.unsigned_abs() as f64 * 100.0 / interface_tx as f64
    } else if gen_tx > 0 {
        100.0
    } else {
        0.0
    };
    TxCheck {
        counter: match after.counter {
            TxCounter::XdpXmit => format!("{iface} ethtool *xdp_xmit (sum over queues)"),
            TxCounter::TxPackets => format!("{iface} tx_packets (/proc/net/dev)"),
        },
        interface_tx,
        gen_tx,
        difference,
        difference_percent: (pct * 1000.0).round() / 1000.0,
        interface_tx_dropped: after.tx_dropped.saturating_sub(before.tx_dropped),
        agrees: pct <= 0.1 || difference.unsigned_abs() <= 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_xmit_summed_without_errors() {
        let st = vec![
            ("tx_queue_0_xdp_xmit".to_string(), 5),
            ("tx_queue_0_xdp_xmit_errors".to_string(), 9),
            ("tx_queue_1_xdp_xmit".to_string(), 7),
        ];
        assert_eq!(xdp_xmit_sum(&st), Some(12));
        assert_eq!(xdp_xmit_sum(&[]), None);
    }

    #[test]
    fn check_flags_a_difference_over_a_thousandth() {
        let r = |v| TxReading {
            counter: TxCounter::XdpXmit,
            value: v,
            tx_dropped: 0,
        };
        let ok = tx_check("gen0", r(100), r(100_100), 100_050);
        assert!(ok.agrees, "{ok:?}");
        let bad = tx_check("gen0", r(0), r(64), 200_000);
        assert!(!bad.agrees);
        assert!(bad.warning().expect("warning").contains("64"));
    }

    #[test]
    fn loopback_statistics_readable() {
        // Every namespace has lo; its line parses.
        assert!(dev_stats("lo").is_ok());
    }
}
