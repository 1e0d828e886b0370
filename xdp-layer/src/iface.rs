//! Interface lookup in the calling thread's network namespace (so after `--netns`,
//! or inside a thread that entered another namespace, names resolve there): index,
//! MAC address (`SIOCGIFHWADDR`, through the one ifreq path of [`crate::ethtool`]),
//! and the index of an interface in a named namespace.

use std::os::fd::AsFd;

use crate::error::{Error, Result, io_err};

/// Index of `iface` in the calling thread's namespace.
pub fn ifindex(iface: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(iface).map_err(|_| Error::NoSuchInterface {
        iface: iface.into(),
    })
}

/// Index of `iface` in namespace `netns` (as [`crate::netns::enter`] names it),
/// looked up from a thread that entered it; the caller's thread stays where it is.
pub fn ifindex_in(netns: &str, iface: &str) -> Result<u32> {
    crate::netns::run_in_named(netns, || ifindex(iface))?
}

/// MAC address of `iface` in the calling thread's namespace (`SIOCGIFHWADDR`).
pub fn mac(iface: &str) -> Result<[u8; 6]> {
    let what = || format!("reading the MAC address of {iface}");
    let mut ifr = crate::ethtool::ifreq_named(iface).ok_or_else(|| {
        io_err(
            format!("interface name `{iface}` too long"),
            std::io::Error::from_raw_os_error(libc::ENAMETOOLONG),
        )
    })?;
    let fd = crate::ethtool::ioctl_socket().map_err(|e| io_err("socket for SIOCGIFHWADDR", e))?;
    crate::ethtool::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFHWADDR as libc::c_ulong, &mut ifr)
        .map_err(|e| io_err(what(), e))?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled ifru_hwaddr.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut m = [0u8; 6];
    for (o, b) in m.iter_mut().zip(sa.sa_data.iter()) {
        *o = *b as u8;
    }
    Ok(m)
}

/// Every interface of the calling thread's namespace, as (index, name).
pub fn interfaces() -> Result<Vec<(u32, String)>> {
    let list = nix::net::if_::if_nameindex()
        .map_err(|e| io_err("list interfaces", std::io::Error::from(e)))?;
    Ok(list
        .iter()
        .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
        .collect())
}

/// An interface's kernel totals (`/proc/net/dev`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames dropped on receive.
    pub rx_dropped: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Frames dropped on transmit.
    pub tx_dropped: u64,
}

impl DevStats {
    /// The increase of every counter since `before` (0 where one went back).
    pub fn since(self, before: DevStats) -> DevStats {
        DevStats {
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
        }
    }
}

/// Every interface's line of a `/proc/net/dev` text.
pub fn parse_proc_net_dev(text: &str) -> std::collections::BTreeMap<String, DevStats> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.trim().to_owned(),
            DevStats {
                rx_packets: v[1],
                rx_dropped: v[3],
                tx_packets: v[9],
                tx_dropped: v[11],
            },
        );
    }
    out
}

/// Every interface's totals in the calling thread's namespace.
pub fn all_dev_stats() -> Result<std::collections::BTreeMap<String, DevStats>> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev")
        .map_err(|e| io_err("read /proc/thread-self/net/dev", e))?;
    Ok(parse_proc_net_dev(&text))
}

/// `iface`'s totals in the calling thread's namespace.
pub fn dev_stats(iface: &str) -> Result<DevStats> {
    all_dev_stats()?
        .remove(iface)
        .ok_or_else(|| Error::NoSuchInterface {
            iface: iface.into(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_net_dev_is_parsed() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n  gen0:       0       5    0    2    0     0          0         0 563585280 9393088    0    7    0     0       0          0\n";
        let m = super::parse_proc_net_dev(text);
        assert_eq!(
            m["gen0"],
            super::DevStats {
                rx_packets: 5,
                rx_dropped: 2,
                tx_packets: 9393088,
                tx_dropped: 7
            }
        );
        assert_eq!(m.len(), 2);
        assert!(super::dev_stats("lo").is_ok());
        assert!(super::dev_stats("no-such-if0").is_err());
    }

    #[test]
    fn loopback_resolves_and_nonsense_does_not() {
        assert!(super::ifindex("lo").is_ok());
        assert!(matches!(
            super::ifindex("no-such-if0"),
            Err(crate::Error::NoSuchInterface { .. })
        ));
        assert!(
            super::interfaces()
                .expect("list")
                .iter()
                .any(|(_, n)| n == "lo")
        );
    }

    #[test]
    fn loopback_has_the_all_zero_mac_and_nonsense_has_none() {
        assert_eq!(super::mac("lo").expect("mac of lo"), [0; 6]);
        let e = super::mac("no-such-if0").expect_err("no such interface");
        assert!(e.to_string().contains("no-such-if0"), "{e}");
        assert!(super::mac(&"x".repeat(40)).is_err());
    }

    #[test]
    fn lookup_in_a_named_namespace() {
        // The calling thread's own namespace, named by path.
        assert_eq!(
            super::ifindex_in("/proc/self/ns/net", "lo").expect("lo"),
            super::ifindex("lo").expect("lo")
        );
        assert!(super::ifindex_in("no-such-ns-xyz", "lo").is_err());
    }
}
