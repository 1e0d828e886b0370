//! Capture back ends behind one interface: frames with a timestamp and its kind,
//! cumulative drop counters, and the clock in use. [`open`] picks the back end.
//!
//! Invariant: every frame the kernel accepted for us is either delivered to the
//! callback or counted in [`Drops`]; drops are cumulative since `open`.

use std::time::Duration;

use crate::afpacket::AfPacket;

/// Which capture back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// AF_PACKET with a TPACKET_V3 mmap'd block ring (portable).
    AfPacket,
    /// AF_XDP (fast path).
    AfXdp,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::AfPacket => "af-packet",
            Backend::AfXdp => "af-xdp",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClockMode {
    /// NIC hardware timestamps; an error where the NIC has none.
    Hw,
    /// Kernel software receive timestamps (CLOCK_REALTIME).
    Sw,
    /// Hardware where the NIC can, software otherwise.
    #[default]
    Auto,
}

/// The clock a capture uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Hw,
    Sw,
}

impl Clock {
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Hw => "hw",
            Clock::Sw => "sw",
        }
    }
}

/// Where one frame's timestamp came from (from TPACKET's `tp_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsKind {
    /// Raw NIC hardware clock.
    Hardware,
    /// Kernel software stamp taken at receive (CLOCK_REALTIME).
    Software,
    /// No stamp on the skb: the kernel read CLOCK_REALTIME when copying into the ring.
    Copy,
}

/// One received frame, valid only during the callback.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Captured bytes (Ethernet header first; no FCS).
    pub data: &'a [u8],
    /// Length on the wire less FCS (>= data.len()).
    pub wire_len: u32,
    /// Timestamp, ns (since the epoch for software stamps; the NIC's clock for hardware).
    pub ts_ns: u64,
    pub ts_kind: TsKind,
}

/// Cumulative drop counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Drops {
    /// Frames the interface/kernel dropped before any socket saw them (rx_dropped of the
    /// interface, from /proc/net/dev; for AF_XDP the socket's rx_dropped).
    pub kernel: u64,
    /// Frames lost because our ring was full (TPACKET tp_drops; AF_XDP rx_ring_full +
    /// fill ring empty).
    pub ring: u64,
    /// Times the TPACKET_V3 block queue froze because user space was behind.
    pub freezes: u64,
}

impl Drops {
    /// Frames lost in total.
    pub fn total(&self) -> u64 {
        self.kernel + self.ring
    }
}

/// Errors of the capture layer.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("interface {0:?} not found in this network namespace")]
    NoInterface(String),
    #[error(
        "{iface}: the NIC cannot timestamp in hardware (SIOCSHWTSTAMP: {err}); use --clock sw or auto"
    )]
    NoHwTimestamps { iface: String, err: std::io::Error },
    #[error("{what} on {iface}: {err}{hint}")]
    Sys {
        iface: String,
        what: &'static str,
        err: std::io::Error,
        hint: &'static str,
    },
    #[error("{0}")]
    Unsupported(String),
}

impl CaptureError {
    pub(crate) fn sys(iface: &str, what: &'static str, err: std::io::Error) -> Self {
        let hint = if matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
            " (live capture needs root or CAP_NET_RAW)"
        } else {
            ""
        };
        CaptureError::Sys {
            iface: iface.to_string(),
            what,
            err,
            hint,
        }
    }
}

/// Capture parameters.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    pub iface: String,
    pub clock: ClockMode,
    pub promisc: bool,
    /// TPACKET_V3 block size (power of two, multiple of the page size).
    pub block_size: u32,
    pub block_count: u32,
    /// Hand a block to user space after this long even when it is not full.
    pub retire_ms: u32,
    /// AF_XDP: replace a foreign (non-placeholder) XDP program; it is restored on exit.
    pub force: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            iface: String::new(),
            clock: ClockMode::Auto,
            promisc: true,
            block_size: 1 << 20,
            block_count: 64,
            retire_ms: 10,
            force: false,
        }
    }
}

/// A live capture.
pub trait Capture {
    /// Waits up to `timeout` for frames and hands each one to `f`; returns how many.
    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError>;
    /// Cumulative drops since open.
    fn drops(&mut self) -> Drops;
    fn clock(&self) -> Clock;
    fn backend(&self) -> &'static str;
    fn iface(&self) -> &str;
}

/// Opens a capture with the chosen back end.
pub fn open(backend: Backend, opts: &CaptureOptions) -> Result<Box<dyn Capture>, CaptureError> {
    match backend {
        Backend::AfPacket => Ok(Box::new(AfPacket::open(opts)?)),
        Backend::AfXdp => Ok(Box::new(crate::afxdp::AfXdp::open(opts)?)),
    }
}
