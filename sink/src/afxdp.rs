//! AF_XDP capture: the fast back end, on the `xdplayer` crate (one socket per RX queue,
//! its redirect program sending every frame to them, and its guard that puts the
//! interface's previous XDP program back on exit and leaves an ownership record, so a
//! killed `sink` leaves an orphan the next run takes over).
//!
//! Timestamps: software only in this back end. [`xdplayer::RxMeta::sw_ns`] is
//! CLOCK_REALTIME read once per batch taken off the RX ring (so frames of one batch
//! share a stamp: coarser than AF_PACKET's per-skb stamps; reported as
//! [`TsKind::Copy`]). `--clock hw` first asks the NIC (SIOCSHWTSTAMP, so a NIC without
//! it fails exactly as with AF_PACKET) and then refuses: `xdplayer` can read NIC
//! stamps through XDP RX metadata (`XskConfig::hw_timestamps`), but this back end does
//! not use them yet (no NIC here to check them against); use `--backend af-packet`.
//!
//! Drops: one lost frame shows up in several kernel counters (a frame that finds the
//! fill ring empty counts in the socket's `rx_dropped` and `rx_fill_ring_empty_descs`,
//! and veth counts the failed redirect in its rx_dropped too), so they are combined,
//! not added: ring = `rx_ring_full + rx_fill_ring_empty_descs`; kernel = the socket's
//! other drops (`rx_dropped - rx_fill_ring_empty_descs`) plus whatever the interface's
//! rx_dropped grew beyond the ring drops. (A driver that does not count failed
//! redirects makes that last term 0 rather than double-counting.)

use std::time::Duration;

use crate::afpacket::iface_rx_dropped;
use crate::capture::{
    Capture, CaptureError, CaptureOptions, Clock, ClockMode, Drops, Frame, TsKind,
};
use xdplayer::{Filter, XskConfig, XskMode, XskPort, queue_count};

/// Frames taken off an RX ring per call.
const BATCH: usize = 256;
/// UMEM frames per socket (all RX): 32 MiB of 2 KiB frames, about 0.3 s at 50 kpps
/// before a stalled reader loses anything.
const FRAMES: u32 = 16384;

/// An AF_XDP capture on every RX queue of one interface.
pub struct AfXdp {
    port: XskPort,
    iface: String,
    rx_dropped_base: u64,
    last: Drops,
}

impl std::fmt::Debug for AfXdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdp").field("iface", &self.iface).finish()
    }
}

impl AfXdp {
    pub fn open(o: &CaptureOptions) -> Result<AfXdp, CaptureError> {
        let iface = o.iface.as_str();
        crate::afpacket::ifindex(iface)?;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            // Say it before libbpf tries (and prints its own complaints).
            return Err(CaptureError::sys(
                iface,
                "loading the AF_XDP redirect program",
                std::io::Error::from_raw_os_error(libc::EPERM),
            ));
        }
        if o.clock == ClockMode::Hw {
            xdplayer::ethtool::HwStamping::probe(iface).map_err(|err| {
                CaptureError::NoHwTimestamps {
                    iface: iface.to_string(),
                    err,
                }
            })?;
            return Err(CaptureError::Unsupported(format!(
                "{iface}: hardware timestamps through AF_XDP (XDP RX metadata) are not used by this back end yet; use --backend af-packet --clock hw"
            )));
        }
        let mut cfg = XskConfig::new(iface);
        cfg.queues = (0..queue_count(iface)).collect();
        cfg.tx = false;
        cfg.frame_count = FRAMES;
        cfg.rx = true;
        cfg.mode = XskMode::Auto;
        cfg.redirect = Some(Filter::all());
        cfg.force = o.force;
        let port = XskPort::open(&cfg).map_err(|e| {
            let source = std::io::Error::other(format!("{e}"));
            let msg = format!("{e}");
            if msg.contains("Operation not permitted") || msg.contains("EPERM") {
                CaptureError::sys(
                    iface,
                    "opening AF_XDP sockets",
                    std::io::Error::from_raw_os_error(libc::EPERM),
                )
            } else {
                CaptureError::Sys {
                    iface: iface.to_string(),
                    what: "opening AF_XDP sockets",
                    err: source,
                    hint: "",
                }
            }
        })?;
        Ok(AfXdp {
            port,
            iface: iface.to_string(),
            rx_dropped_base: iface_rx_dropped(iface).unwrap_or(0),
            last: Drops::default(),
        })
    }
}

impl Capture for AfXdp {
    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        let mut n = 0;
        for q in self.port.queues_mut() {
            // Drain up to a few batches per queue before returning to the caller.
            for _ in 0..16 {
                let k = q.recv_batch(BATCH, |data, meta| {
                    f(&Frame {
                        data,
                        wire_len: data.len() as u32,
                        ts_ns: meta.sw_ns,
                        ts_kind: TsKind::Copy,
                    })
                });
                n += k;
                if k < BATCH {
                    break;
                }
            }
        }
        if n > 0 {
            return Ok(n);
        }
        let mut fds: Vec<libc::pollfd> = self
            .port
            .queues_mut()
            .iter()
            .map(|q| libc::pollfd {
                fd: q.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: fds is a valid array of pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(CaptureError::sys(&self.iface, "poll", e));
        }
        for q in self.port.queues_mut() {
            n += q.recv_batch(BATCH, |data, meta| {
                f(&Frame {
                    data,
                    wire_len: data.len() as u32,
                    ts_ns: meta.sw_ns,
                    ts_kind: TsKind::Copy,
                })
            });
        }
        Ok(n)
    }

    fn drops(&mut self) -> Drops {
        let mut d = Drops::default();
        for q in self.port.queues_mut() {
            if let Ok(s) = q.stats() {
                d.kernel += s.rx_dropped.saturating_sub(s.rx_fill_ring_empty_descs);
                d.ring += s.rx_ring_full + s.rx_fill_ring_empty_descs;
            }
        }
        if let Some(x) = iface_rx_dropped(&self.iface) {
            d.kernel += x
                .saturating_sub(self.rx_dropped_base)
                .saturating_sub(d.ring);
        }
        // Counters are cumulative; never report less than before (a failed read).
        d.kernel = d.kernel.max(self.last.kernel);
        d.ring = d.ring.max(self.last.ring);
        self.last = d;
        d
    }

    fn clock(&self) -> Clock {
        Clock::Sw
    }

    fn backend(&self) -> &'static str {
        "af-xdp"
    }

    fn iface(&self) -> &str {
        &self.iface
    }
}
