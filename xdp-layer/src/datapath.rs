//! The AF_XDP datapath: one [`XskQueue`] per socket, movable to its own thread,
//! with allocation-free send and receive batches.
//!
//! Frame ownership invariants (per queue): every UMEM frame is, at any moment, in
//! exactly one place: the TX free list (ours), the TX ring or completion ring
//! (kernel's, returns via [`XskQueue::complete`]), or the fill ring / RX ring
//! (RX frames: handed back to the fill ring right after the `recv_batch` callback
//! returns). With `rx` and `tx` both on, the first half of the frames serves RX and
//! the second half TX. A TX frame keeps its contents between uses, so callers can
//! pre-fill every frame once ([`XskQueue::prefill`]) and rewrite only the varying
//! fields per packet. The hot path ([`XskQueue::send_batch`],
//! [`XskQueue::complete`], [`XskQueue::recv_batch`]) never allocates and never
//! builds an error: failed wake-ups are counted.
//!
//! Timestamps: [`RxMeta::sw_ns`] is CLOCK_REALTIME read once per received batch.
//! With hardware timestamps asked for, the device-bound redirect program (see
//! [`crate::redirect`]) puts `{rx_ts u64, err i32, magic u32}` into the frame's
//! metadata area, which the kernel copies into the UMEM right before the frame
//! (copy and zero-copy mode alike); `recv_batch` reads it back into
//! [`RxMeta::hw_ns`]. Where the driver has no timestamp (veth: `-ENODATA` for every
//! frame) or no metadata support (`-EOPNOTSUPP`), `hw_ns` is `None`,
//! [`XskStats::hw_ts_missing`] counts the frames and [`XskStats::hw_ts_last_err`] /
//! [`hw_ts_error_text`] say why.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

/// Per-frame metadata handed to [`XskQueue::recv_batch`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// CLOCK_REALTIME (ns) when the batch was taken off the RX ring.
    pub sw_ns: u64,
    /// NIC hardware timestamp (XDP RX metadata), where the driver gives one (see the module docs).
    pub hw_ns: Option<u64>,
}

/// Socket statistics: the kernel's XDP_STATISTICS plus our counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for reasons other than invalid descriptors (kernel).
    pub rx_dropped: u64,
    /// Invalid RX descriptors (kernel).
    pub rx_invalid_descs: u64,
    /// Invalid TX descriptors (kernel).
    pub tx_invalid_descs: u64,
    /// RX ring full (kernel).
    pub rx_ring_full: u64,
    /// Fill ring empty when a frame arrived (kernel).
    pub rx_fill_ring_empty_descs: u64,
    /// TX ring empty when the kernel looked (kernel).
    pub tx_ring_empty_descs: u64,
    /// Frames we put on the TX ring.
    pub tx_packets: u64,
    /// Bytes we put on the TX ring.
    pub tx_bytes: u64,
    /// Frames the kernel completed.
    pub tx_completed: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// TX wake-ups (sendto) that failed with an unexpected error.
    pub wakeup_errors: u64,
    /// Frames the kernel completed without sending them: sendto returned EBUSY
    /// (the driver dropped the frame, e.g. veth's peer backlog full); one per error.
    pub tx_dropped: u64,
    /// send_batch calls that found every TX frame in flight (completions late).
    pub tx_stall_no_frames: u64,
    /// send_batch calls that found the TX ring full.
    pub tx_stall_ring_full: u64,
    /// Frames with a NIC RX timestamp (hardware timestamps asked for).
    pub hw_ts_ok: u64,
    /// Frames without one.
    pub hw_ts_missing: u64,
    /// The kfunc's last error (negative errno; 0: none, or no metadata seen);
    /// see [`hw_ts_error_text`].
    pub hw_ts_last_err: i32,
}

/// One AF_XDP socket with its own UMEM. Movable to another thread.
pub struct XskQueue {
    pub(crate) queue: u32,
    pub(crate) umem: Umem,
    pub(crate) tx: TxQueue,
    pub(crate) rx: RxQueue,
    pub(crate) fq: FillQueue,
    pub(crate) cq: CompQueue,
    pub(crate) tx_free: Vec<FrameDesc>,
    pub(crate) tx_total: usize,
    pub(crate) rx_scratch: Vec<FrameDesc>,
    pub(crate) cq_scratch: Vec<FrameDesc>,
    pub(crate) stats: XskStats,
    pub(crate) hw_ts: bool,
}

/// Metadata the device-bound redirect program puts before each frame.
const META_LEN: usize = 16;
const META_MAGIC: u32 = 0x7873_746d;

/// What a kfunc error code means, for users.
pub fn hw_ts_error_text(err: i32) -> &'static str {
    match -err {
        0 => "ok",
        libc::ENODATA => {
            "the driver has no RX timestamp for these frames (ENODATA; veth never has one)"
        }
        libc::EOPNOTSUPP => "the driver does not implement XDP RX-metadata timestamps (EOPNOTSUPP)",
        _ => "the XDP RX-metadata timestamp kfunc failed",
    }
}

impl std::fmt::Debug for XskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskQueue")
            .field("queue", &self.queue)
            .field("tx_free", &self.tx_free.len())
            .field("tx_total", &self.tx_total)
            .finish()
    }
}

impl XskQueue {
    /// The queue this socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue
    }

    /// The socket's fd (e.g. for a caller's own XSKMAP).
    pub fn raw_fd(&self) -> RawFd {
        self.tx.fd().as_raw_fd()
    }

    /// TX frames owned by this socket.
    pub fn tx_capacity(&self) -> usize {
        self.tx_total
    }

    /// TX frames free right now (call [`XskQueue::complete`] to reclaim).
    pub fn tx_free(&self) -> usize {
        self.tx_free.len()
    }

    /// TX frames handed to the kernel and not completed yet.
    pub fn tx_in_flight(&self) -> usize {
        self.tx_total - self.tx_free.len()
    }

    /// Calls `f(buf)` on every TX frame (full capacity) once; `f` returns the frame
    /// length. Use it to pre-fill templates before sending. Only frames currently
    /// free are touched (call before the first send).
    pub fn prefill(&mut self, mut f: impl FnMut(&mut [u8]) -> usize) {
        for desc in self.tx_free.iter_mut() {
            // SAFETY: free TX frames are ours; the desc comes from this UMEM.
            let mut data = unsafe { self.umem.data_mut(desc) };
            data.cursor().set_pos(usize::MAX);
            let len = f(data.contents_mut());
            data.cursor().set_pos(len);
        }
    }

    /// Reclaims completed TX frames; returns how many.
    #[inline]
    pub fn complete(&mut self) -> usize {
        let mut done = 0;
        loop {
            // SAFETY: the completion ring returns frames of this UMEM.
            let n = unsafe { self.cq.consume(&mut self.cq_scratch) };
            if n == 0 {
                break;
            }
            self.tx_free.extend_from_slice(&self.cq_scratch[..n]);
            done += n;
            if n < self.cq_scratch.len() {
                break;
            }
        }
        self.stats.tx_completed += done as u64;
        done
    }

    /// Queues up to `max` frames: for the i-th, `f(i, buf)` gets the frame (full
    /// capacity, holding what it held last time) and returns its length. Reclaims
    /// completions first and kicks the kernel (sendto) when the ring asks for it.
    /// Returns how many frames were queued (less than `max` when frames or ring
    /// slots run out). No allocation.
    #[inline]
    pub fn send_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(usize, &mut [u8]) -> usize,
    ) -> usize {
        if self.tx_free.len() < max {
            self.complete();
        }
        let want = max.min(self.tx_free.len());
        if want == 0 {
            self.stats.tx_stall_no_frames += 1;
            self.kick();
            return 0;
        }
        let n = (self.tx.nb_free(want as u32) as usize).min(want);
        if n == 0 {
            self.stats.tx_stall_ring_full += 1;
            self.kick();
            return 0;
        }
        let start = self.tx_free.len() - n;
        let mut bytes = 0u64;
        for (i, desc) in self.tx_free[start..].iter_mut().enumerate() {
            // SAFETY: free TX frames are ours; the desc comes from this UMEM.
            let mut data = unsafe { self.umem.data_mut(desc) };
            data.cursor().set_pos(usize::MAX);
            let len = f(i, data.contents_mut());
            data.cursor().set_pos(len);
            bytes += len as u64;
        }
        // SAFETY: descs point at frames of this UMEM, written above; nb_free said
        // there is room for n.
        let queued = unsafe { self.tx.produce(&self.tx_free[start..]) };
        if queued == 0 {
            return 0;
        }
        self.tx_free.truncate(start);
        self.stats.tx_packets += n as u64;
        self.stats.tx_bytes += bytes;
        self.kick();
        n
    }

    /// Wakes the kernel up for TX if the ring wants it (copy mode always does).
    #[inline]
    pub fn kick(&mut self) {
        if !self.tx.needs_wakeup() {
            return;
        }
        // Our own sendto rather than xsk-rs's wakeup(), which hides EBUSY: in copy
        // mode EBUSY means the driver dropped the frame at the head of the ring
        // (NET_XMIT_DROP; the kernel completes it unsent), so it must not be
        // counted as sent.
        // SAFETY: zero-length non-blocking sendto on our own socket.
        let rc = unsafe {
            libc::sendto(
                self.raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EBUSY) => self.stats.tx_dropped += 1,
                Some(libc::ENOBUFS | libc::EAGAIN | libc::ENETDOWN) => {}
                _ => self.stats.wakeup_errors += 1,
            }
        }
    }

    /// Frames the kernel reports as transmitted: completions less those it
    /// completed unsent ([`XskStats::tx_dropped`]).
    #[inline]
    pub fn tx_confirmed(&self) -> u64 {
        self.stats
            .tx_completed
            .saturating_sub(self.stats.tx_dropped)
    }

    /// Takes up to `max` (at most the RX scratch size) received frames, calls
    /// `f(frame, meta)` for each, and hands the frames back to the fill ring.
    /// Returns how many. No allocation.
    #[inline]
    pub fn recv_batch(&mut self, max: usize, mut f: impl FnMut(&[u8], RxMeta)) -> usize {
        let max = max.min(self.rx_scratch.len());
        // SAFETY: the RX ring returns frames of this UMEM.
        let n = unsafe { self.rx.consume(&mut self.rx_scratch[..max]) };
        if n == 0 {
            if self.fq.needs_wakeup() {
                // SAFETY: non-blocking zero-length recvfrom on our socket.
                unsafe {
                    libc::recvfrom(
                        self.raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
            }
            return 0;
        }
        let sw_ns = crate::clock::realtime_ns();
        let mut bytes = 0u64;
        for desc in &self.rx_scratch[..n] {
            // SAFETY: the kernel handed this frame to us; it is ours until refilled.
            let data = unsafe { self.umem.data(desc) };
            let frame = data.contents();
            bytes += frame.len() as u64;
            let hw_ns = if self.hw_ts {
                // SAFETY: the kernel reserves XDP_PACKET_HEADROOM (256 bytes) of the
                // UMEM chunk before every RX frame; the metadata lies in it, right
                // before the data, so these 16 bytes are inside our mapping.
                let m = unsafe {
                    std::ptr::read_unaligned(frame.as_ptr().sub(META_LEN).cast::<[u8; META_LEN]>())
                };
                let ts = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]);
                let err = i32::from_ne_bytes([m[8], m[9], m[10], m[11]]);
                let magic = u32::from_ne_bytes([m[12], m[13], m[14], m[15]]);
                if magic == META_MAGIC && err == 0 && ts != 0 {
                    self.stats.hw_ts_ok += 1;
                    Some(ts)
                } else {
                    self.stats.hw_ts_missing += 1;
                    if magic == META_MAGIC {
                        self.stats.hw_ts_last_err = if err == 0 { -libc::ENODATA } else { err };
                    }
                    None
                }
            } else {
                None
            };
            f(frame, RxMeta { sw_ns, hw_ns });
        }
        let mut put = 0;
        while put < n {
            // SAFETY: the frames are of this UMEM and no longer read; the fill ring
            // is sized to hold every RX frame, so there is room.
            put += unsafe { self.fq.produce(&self.rx_scratch[put..n]) };
            if put < n {
                // Cannot happen with a fill ring as large as the RX frame set.
                std::hint::spin_loop();
            }
        }
        self.stats.rx_packets += n as u64;
        self.stats.rx_bytes += bytes;
        n
    }

    /// Waits up to `timeout_ms` for RX frames (poll); true when some are ready.
    pub fn poll_rx(&mut self, timeout_ms: i32) -> bool {
        self.rx.poll(timeout_ms).unwrap_or(false)
    }

    /// Kernel XDP_STATISTICS plus our counters.
    pub fn stats(&self) -> io::Result<XskStats> {
        let k = self.tx.fd().xdp_statistics()?;
        Ok(XskStats {
            rx_dropped: k.rx_dropped(),
            rx_invalid_descs: k.rx_invalid_descs(),
            tx_invalid_descs: k.tx_invalid_descs(),
            rx_ring_full: k.rx_ring_full(),
            rx_fill_ring_empty_descs: k.rx_fill_ring_empty_descs(),
            tx_ring_empty_descs: k.tx_ring_empty_descs(),
            ..self.stats
        })
    }

    /// Our counters only (no system call).
    pub fn counters(&self) -> XskStats {
        self.stats
    }
}
