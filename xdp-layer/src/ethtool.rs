//! Ethtool queries over `SIOCETHTOOL` in the calling thread's namespace: how many
//! queues an interface has, so AF_XDP users open one socket per queue and refuse
//! queues that do not exist.

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
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: ifreq is plain data; zeroed is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        return None;
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is ours, ifr points at a live EthtoolChannels.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &mut ifr) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return None;
    }
    let n = ch.rx_count.max(ch.combined_count);
    (n > 0).then_some(n)
}
