//! Interface ioctls in the calling thread's namespace: how many queues an interface
//! has (`SIOCETHTOOL`/`ETHTOOL_GCHANNELS`), so AF_XDP users open one socket per
//! queue and refuse queues that do not exist; and the NIC's hardware receive
//! timestamping (`SIOCSHWTSTAMP`), switched on by [`HwStamping`] and put back as it
//! was when that drops; and the driver's statistics (`ethtool -S`, [`stats`]), the
//! counters a tool's own figures are checked against.
//!
//! veth and most virtual devices answer `SIOCSHWTSTAMP` with EOPNOTSUPP.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// An all-zero `ifreq` naming `iface`; None for a name too long.
pub(crate) fn ifreq_named(iface: &str) -> Option<libc::ifreq> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        return None;
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    Some(ifr)
}

/// An `ifreq` naming `iface` whose data pointer is `data`; None for a name too long.
fn ifreq(iface: &str, data: *mut libc::c_void) -> Option<libc::ifreq> {
    let mut ifr = ifreq_named(iface)?;
    ifr.ifr_ifru.ifru_data = data.cast();
    Some(ifr)
}

/// `ioctl(fd, req, ifr)`: the kernel reads and writes `ifr` as `req` says.
pub(crate) fn ioctl_ifreq(
    fd: BorrowedFd<'_>,
    req: libc::c_ulong,
    ifr: &mut libc::ifreq,
) -> std::io::Result<()> {
    // SAFETY: ifr is a valid ifreq; a data pointer in it is the caller's live
    // buffer of the type `req` expects.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, ifr as *mut libc::ifreq) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ioctl(fd, req, ifreq{iface, data})`.
fn ifreq_ioctl(
    fd: BorrowedFd<'_>,
    req: libc::c_ulong,
    iface: &str,
    data: *mut libc::c_void,
) -> std::io::Result<()> {
    let mut ifr =
        ifreq(iface, data).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    ioctl_ifreq(fd, req, &mut ifr)
}

/// A datagram socket for interface ioctls.
pub(crate) fn ioctl_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The driver's statistics of `iface` (`ethtool -S`: ETHTOOL_GSSET_INFO for the
/// count, ETHTOOL_GSTRINGS for the names, ETHTOOL_GSTATS for the values), name and
/// value, in the calling thread's namespace. Empty when the driver has none.
pub fn stats(iface: &str) -> std::io::Result<Vec<(String, u64)>> {
    const ETHTOOL_GSTRINGS: u32 = 0x1b;
    const ETHTOOL_GSTATS: u32 = 0x1d;
    const ETHTOOL_GSSET_INFO: u32 = 0x37;
    const ETH_SS_STATS: u32 = 1;
    const ETH_GSTRING_LEN: usize = 32;
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let fd = ioctl_socket()?;
    // struct ethtool_sset_info { cmd, reserved, u64 sset_mask, u32 data[1] }
    let mut info = [0u8; 8 + 8 + 4];
    info[0..4].copy_from_slice(&ETHTOOL_GSSET_INFO.to_ne_bytes());
    info[8..16].copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
    ifreq_ioctl(fd.as_fd(), SIOCETHTOOL, iface, info.as_mut_ptr().cast())?;
    let mut m = [0u8; 8];
    m.copy_from_slice(&info[8..16]);
    let mask = u64::from_ne_bytes(m);
    let n = u32_at(&info, 16) as usize;
    if mask & (1 << ETH_SS_STATS) == 0 || n == 0 {
        return Ok(Vec::new());
    }
    // struct ethtool_gstrings { cmd, string_set, len, u8 data[] }
    let mut strings = vec![0u8; 12 + n * ETH_GSTRING_LEN];
    strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    strings[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
    ifreq_ioctl(fd.as_fd(), SIOCETHTOOL, iface, strings.as_mut_ptr().cast())?;
    // struct ethtool_stats { cmd, n_stats, u64 data[] }
    let mut values = vec![0u8; 8 + n * 8];
    values[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
    values[4..8].copy_from_slice(&(n as u32).to_ne_bytes());
    ifreq_ioctl(fd.as_fd(), SIOCETHTOOL, iface, values.as_mut_ptr().cast())?;
    let got = (u32_at(&values, 4) as usize).min(n);
    Ok((0..got)
        .map(|i| {
            let s = &strings[12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN];
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            let mut v = [0u8; 8];
            v.copy_from_slice(&values[8 + i * 8..16 + i * 8]);
            (
                String::from_utf8_lossy(&s[..end]).into_owned(),
                u64::from_ne_bytes(v),
            )
        })
        .collect())
}

/// Number of RX/combined queues of `iface` (from /sys/class/net/IF/queues, counting
/// `rx-*` entries; falls back to 1). Note: `ip netns exec` remounts /sys for the
/// namespace; under `setns` alone /sys may show the host's view, so callers in
/// another namespace should prefer [`queue_count_ethtool`].
pub fn queue_count(iface: &str) -> u32 {
    queue_count_ethtool(iface).unwrap_or_else(|| {
        std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
            .map(|d| {
                d.filter_map(std::result::Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count() as u32
            })
            .unwrap_or(1)
            .max(1)
    })
}

/// Channel count through the ETHTOOL_GCHANNELS ioctl in the calling thread's
/// namespace: max(rx, combined) currently set. None when the driver does not say.
pub fn queue_count_ethtool(iface: &str) -> Option<u32> {
    #[repr(C)]
    #[derive(Default)]
    struct EthtoolChannels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let fd = ioctl_socket().ok()?;
    ifreq_ioctl(
        std::os::fd::AsFd::as_fd(&fd),
        SIOCETHTOOL,
        iface,
        (&mut ch as *mut EthtoolChannels).cast(),
    )
    .ok()?;
    let n = ch.rx_count.max(ch.combined_count);
    (n > 0).then_some(n)
}

/// The NIC's receive stamping, on while this lives (restored on drop).
#[derive(Debug)]
pub struct HwStamping {
    fd: libc::c_int,
    iface: String,
    previous: Option<libc::hwtstamp_config>,
}

impl HwStamping {
    /// Turns on stamping of every received frame on `iface` (`HWTSTAMP_FILTER_ALL`,
    /// TX off) through socket `fd`, which must outlive the guard. The error is the
    /// driver's (EOPNOTSUPP on veth).
    pub fn enable(fd: BorrowedFd<'_>, iface: &str) -> std::io::Result<HwStamping> {
        let mut old = libc::hwtstamp_config {
            flags: 0,
            tx_type: 0,
            rx_filter: 0,
        };
        let previous = ifreq_ioctl(
            fd,
            libc::SIOCGHWTSTAMP,
            iface,
            (&mut old as *mut libc::hwtstamp_config).cast(),
        )
        .ok()
        .map(|_| old);
        let mut cfg = libc::hwtstamp_config {
            flags: 0,
            tx_type: libc::HWTSTAMP_TX_OFF as libc::c_int,
            rx_filter: libc::HWTSTAMP_FILTER_ALL as libc::c_int,
        };
        ifreq_ioctl(
            fd,
            libc::SIOCSHWTSTAMP,
            iface,
            (&mut cfg as *mut libc::hwtstamp_config).cast(),
        )?;
        // Drivers may widen the filter but must not narrow it below what we asked.
        if cfg.rx_filter == libc::HWTSTAMP_FILTER_NONE as libc::c_int {
            return Err(std::io::Error::other("driver refused HWTSTAMP_FILTER_ALL"));
        }
        Ok(HwStamping {
            fd: fd.as_raw_fd(),
            iface: iface.to_string(),
            previous,
        })
    }

    /// [`HwStamping::enable`] through a socket of its own, just to ask the driver
    /// (the setting is the interface's, not the socket's).
    pub fn probe(iface: &str) -> std::io::Result<()> {
        let fd = ioctl_socket()?;
        let guard = HwStamping::enable(std::os::fd::AsFd::as_fd(&fd), iface)?;
        drop(guard);
        Ok(())
    }
}

impl Drop for HwStamping {
    fn drop(&mut self) {
        if let Some(mut old) = self.previous {
            // SAFETY: the socket outlives the guard (its users drop the guard first).
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            let _ = ifreq_ioctl(
                fd,
                libc::SIOCSHWTSTAMP,
                &self.iface,
                (&mut old as *mut libc::hwtstamp_config).cast(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_has_a_queue_and_no_hardware_stamps() {
        assert!(super::queue_count("lo") >= 1);
        assert!(
            super::HwStamping::probe(&"x".repeat(40)).is_err(),
            "name too long"
        );
    }
}
