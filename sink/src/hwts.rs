//! Hardware timestamping for the capture back ends: the NIC's receive stamping
//! (`SIOCSHWTSTAMP`, in `xdplayer::ethtool`) with the capture's error, and reading
//! per-frame TPACKET `tp_status` flags into a [`TsKind`].
//!
//! veth and most virtual devices answer SIOCSHWTSTAMP with EOPNOTSUPP: with `--clock hw`
//! that is an error naming the interface; with `auto` the capture falls back to
//! software stamps.

use std::os::fd::BorrowedFd;

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

/// The NIC's receive stamping, on while this lives: `xdplayer`'s guard, with the
/// capture's error.
#[derive(Debug)]
pub struct HwStamping(#[allow(dead_code)] xdplayer::ethtool::HwStamping);

impl HwStamping {
    /// Turns on stamping of every received frame on `iface` through socket `fd` (which
    /// must outlive the guard).
    pub fn enable(fd: BorrowedFd<'_>, iface: &str) -> Result<HwStamping, CaptureError> {
        xdplayer::ethtool::HwStamping::enable(fd, iface)
            .map(HwStamping)
            .map_err(|err| CaptureError::NoHwTimestamps {
                iface: iface.to_string(),
                err,
            })
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
