//! Hardware timestamping: switching the NIC's receive stamping on with SIOCSHWTSTAMP
//! (HWTSTAMP_FILTER_ALL, HWTSTAMP_TX_OFF), restoring the previous configuration on drop,
//! and reading per-frame `tp_status` flags into a [`TsKind`].
//!
//! veth and most virtual devices answer SIOCSHWTSTAMP with EOPNOTSUPP: with `--clock hw`
//! that is an error naming the interface; with `auto` the capture falls back to
//! software stamps.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::capture::{CaptureError, TsKind};

/// TP_STATUS_TS_SOFTWARE (linux/if_packet.h).
pub const TP_STATUS_TS_SOFTWARE: u32 = 1 << 29;
/// TP_STATUS_TS_RAW_HARDWARE.
pub const TP_STATUS_TS_RAW_HARDWARE: u32 = 1 << 31;

/// Which stamp a frame carries, from its TPACKET status word.
pub fn ts_kind(tp_status: u32) -> TsKind {
    if tp_status & TP_STATUS_TS_RAW_HARDWARE != 0 {
        TsKind::Hardware
    } else if tp_status & TP_STATUS_TS_SOFTWARE != 0 {
        TsKind::Software
    } else {
        TsKind::Copy
    }
}

#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

fn ifreq(iface: &str, cfg: &mut libc::hwtstamp_config) -> IfreqData {
    let mut name = [0u8; libc::IFNAMSIZ];
    let n = iface.len().min(libc::IFNAMSIZ - 1);
    name[..n].copy_from_slice(&iface.as_bytes()[..n]);
    IfreqData {
        name,
        data: (cfg as *mut libc::hwtstamp_config).cast(),
        _pad: [0; 16],
    }
}

fn ioctl(
    fd: BorrowedFd<'_>,
    req: libc::c_ulong,
    iface: &str,
    cfg: &mut libc::hwtstamp_config,
) -> std::io::Result<()> {
    let mut ifr = ifreq(iface, cfg);
    // SAFETY: ifr is a valid ifreq whose data points at a live hwtstamp_config.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut ifr as *mut IfreqData) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The NIC's receive stamping, on while this lives.
#[derive(Debug)]
pub struct HwStamping {
    fd: libc::c_int,
    iface: String,
    previous: Option<libc::hwtstamp_config>,
}

impl HwStamping {
    /// Turns on stamping of every received frame on `iface` through socket `fd` (which
    /// must outlive the guard).
    pub fn enable(fd: BorrowedFd<'_>, iface: &str) -> Result<HwStamping, CaptureError> {
        let mut old = libc::hwtstamp_config {
            flags: 0,
            tx_type: 0,
            rx_filter: 0,
        };
        let previous = ioctl(fd, libc::SIOCGHWTSTAMP, iface, &mut old)
            .ok()
            .map(|_| old);
        let mut cfg = libc::hwtstamp_config {
            flags: 0,
            tx_type: libc::HWTSTAMP_TX_OFF as libc::c_int,
            rx_filter: libc::HWTSTAMP_FILTER_ALL as libc::c_int,
        };
        ioctl(fd, libc::SIOCSHWTSTAMP, iface, &mut cfg).map_err(|err| {
            CaptureError::NoHwTimestamps {
                iface: iface.to_string(),
                err,
            }
        })?;
        // Drivers may widen the filter but must not narrow it below what we asked.
        if cfg.rx_filter == libc::HWTSTAMP_FILTER_NONE as libc::c_int {
            return Err(CaptureError::NoHwTimestamps {
                iface: iface.to_string(),
                err: std::io::Error::other("driver refused HWTSTAMP_FILTER_ALL"),
            });
        }
        Ok(HwStamping {
            fd: fd.as_raw_fd(),
            iface: iface.to_string(),
            previous,
        })
    }
}

impl Drop for HwStamping {
    fn drop(&mut self) {
        if let Some(mut old) = self.previous {
            // SAFETY: the socket outlives the guard (the capture drops the guard first).
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            let _ = ioctl(fd, libc::SIOCSHWTSTAMP, &self.iface, &mut old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_flags() {
        assert_eq!(ts_kind(1 | TP_STATUS_TS_RAW_HARDWARE), TsKind::Hardware);
        assert_eq!(
            ts_kind(1 | TP_STATUS_TS_RAW_HARDWARE | TP_STATUS_TS_SOFTWARE),
            TsKind::Hardware
        );
        assert_eq!(ts_kind(1 | TP_STATUS_TS_SOFTWARE), TsKind::Software);
        assert_eq!(ts_kind(1 | (1 << 4)), TsKind::Copy);
        assert_eq!(libc::TP_STATUS_TS_RAW_HARDWARE, TP_STATUS_TS_RAW_HARDWARE);
    }
}
