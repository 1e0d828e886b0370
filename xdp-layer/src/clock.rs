//! Clocks: CLOCK_REALTIME in nanoseconds, the one wall clock every tool stamps
//! records and received frames with (so `sink`, `tstamp` and `gen` agree).

/// CLOCK_REALTIME in ns since the epoch (0 if the clock cannot be read, which
/// Linux never does for CLOCK_REALTIME).
#[inline]
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn realtime_agrees_with_system_time() {
        let a = super::realtime_ns();
        let b = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        assert!(b.abs_diff(a) < 1_000_000_000, "{a} vs {b}");
    }
}
