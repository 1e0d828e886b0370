//! AF_PACKET capture with a TPACKET_V3 ring: the portable back end.
//!
//! Set-up order: socket(AF_PACKET, SOCK_RAW, 0) (receives nothing until bound), timestamp
//! source (SIOCSHWTSTAMP + PACKET_TIMESTAMP=RAW_HARDWARE for hw; SO_TIMESTAMPING
//! RX_SOFTWARE|SOFTWARE for sw), PACKET_VERSION=TPACKET_V3, PACKET_RX_RING with
//! tp_retire_blk_tov, mmap, PACKET_IGNORE_OUTGOING, bind to the interface with
//! ETH_P_ALL, PACKET_ADD_MEMBERSHIP PACKET_MR_PROMISC. Then poll() and walk the blocks:
//! a block belongs to us while its status has TP_STATUS_USER; we read its packets and
//! hand it back by storing TP_STATUS_KERNEL (release ordering).
//!
//! Drops: PACKET_STATISTICS (tpacket_stats_v3, reset by each read, accumulated here)
//! and the interface's rx_dropped from /proc/self/net/dev (the reading thread's netns).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::capture::{Capture, CaptureError, CaptureOptions, Clock, ClockMode, Drops, Frame};
use crate::hwts::{HwStamping, ts_kind};

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_TIMESTAMP: libc::c_int = 17;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TPACKET_V3: libc::c_int = 2;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const ETH_P_ALL: u16 = 0x0003;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

// Offsets in struct tpacket_block_desc (version, offset_to_priv, then tpacket_hdr_v1).
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
// Offsets in struct tpacket3_hdr.
const H_NEXT: usize = 0;
const H_SEC: usize = 4;
const H_NSEC: usize = 8;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, opt: libc::c_int, v: &T) -> std::io::Result<()> {
    // SAFETY: v points at a live T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Index of `iface` in the current network namespace.
pub fn ifindex(iface: &str) -> Result<u32, CaptureError> {
    xdplayer::ifindex(iface).map_err(|_| CaptureError::NoInterface(iface.to_string()))
}

/// rx_dropped of `iface` from /proc/self/net/dev (the calling thread's namespace).
pub fn iface_rx_dropped(iface: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/net/dev")
        .or_else(|_| std::fs::read_to_string("/proc/self/net/dev"))
        .ok()?;
    for line in s.lines().skip(2) {
        let (name, rest) = line.split_once(':')?;
        if name.trim() == iface {
            // Receive: bytes packets errs drop fifo frame compressed multicast.
            return rest.split_whitespace().nth(3)?.parse().ok();
        }
    }
    None
}

/// A TPACKET_V3 capture.
pub struct AfPacket {
    // Field order matters for Drop: the hw guard uses the socket.
    hw: Option<HwStamping>,
    fd: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    block_size: usize,
    block_nr: usize,
    cur: usize,
    iface: String,
    clock: Clock,
    ring_drops: u64,
    freezes: u64,
    rx_dropped_base: u64,
    rx_dropped_last: u64,
}

impl std::fmt::Debug for AfPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacket")
            .field("iface", &self.iface)
            .field("clock", &self.clock)
            .finish()
    }
}

// SAFETY: the ring mapping is owned by this value and only touched through &mut self.
unsafe impl Send for AfPacket {}

impl AfPacket {
    pub fn open(o: &CaptureOptions) -> Result<AfPacket, CaptureError> {
        let iface = o.iface.as_str();
        let idx = ifindex(iface)?;
        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(CaptureError::sys(
                iface,
                "opening an AF_PACKET socket",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // Timestamps.
        let (hw, clock) = match o.clock {
            ClockMode::Sw => (None, Clock::Sw),
            ClockMode::Hw => (Some(HwStamping::enable(fd.as_fd(), iface)?), Clock::Hw),
            ClockMode::Auto => match HwStamping::enable(fd.as_fd(), iface) {
                Ok(g) => (Some(g), Clock::Hw),
                Err(_) => (None, Clock::Sw),
            },
        };
        let sof = match clock {
            Clock::Hw => libc::SOF_TIMESTAMPING_RAW_HARDWARE | libc::SOF_TIMESTAMPING_RX_HARDWARE,
            Clock::Sw => libc::SOF_TIMESTAMPING_SOFTWARE | libc::SOF_TIMESTAMPING_RX_SOFTWARE,
        } as libc::c_int;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, &sof)
            .map_err(|e| CaptureError::sys(iface, "setting SO_TIMESTAMPING", e))?;
        if clock == Clock::Hw {
            let v = libc::SOF_TIMESTAMPING_RAW_HARDWARE as libc::c_int;
            setsockopt(&fd, SOL_PACKET, PACKET_TIMESTAMP, &v)
                .map_err(|e| CaptureError::sys(iface, "setting PACKET_TIMESTAMP", e))?;
        }

        setsockopt(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| CaptureError::sys(iface, "selecting TPACKET_V3", e))?;
        let page = 4096u32;
        let block_size = o.block_size.max(page).next_power_of_two();
        let block_nr = o.block_count.max(2);
        let frame_size = 2048u32;
        let req = TpacketReq3 {
            block_size,
            block_nr,
            frame_size,
            frame_nr: block_size / frame_size * block_nr,
            retire_blk_tov: o.retire_ms.max(1),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(&fd, SOL_PACKET, PACKET_RX_RING, &req)
            .map_err(|e| CaptureError::sys(iface, "setting up the PACKET_RX_RING", e))?;
        let ring_len = block_size as usize * block_nr as usize;
        // SAFETY: mapping the ring the kernel just created for this socket.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let ring = if ring == libc::MAP_FAILED {
            // MAP_LOCKED can fail under RLIMIT_MEMLOCK; retry without it.
            // SAFETY: as above.
            let r = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    ring_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if r == libc::MAP_FAILED {
                return Err(CaptureError::sys(
                    iface,
                    "mapping the TPACKET_V3 ring",
                    std::io::Error::last_os_error(),
                ));
            }
            r
        } else {
            ring
        };
        let mut cap = AfPacket {
            hw,
            fd,
            ring: ring.cast(),
            ring_len,
            block_size: block_size as usize,
            block_nr: block_nr as usize,
            cur: 0,
            iface: iface.to_string(),
            clock,
            ring_drops: 0,
            freezes: 0,
            rx_dropped_base: 0,
            rx_dropped_last: 0,
        };
        let one: libc::c_int = 1;
        // Only frames arriving at the port count; ignore failure on old kernels.
        let _ = setsockopt(&cap.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one);

        // SAFETY: zeroed sockaddr_ll is a valid starting value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: sll is a valid sockaddr_ll.
        let r = unsafe {
            libc::bind(
                cap.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(CaptureError::sys(
                iface,
                "binding the AF_PACKET socket",
                std::io::Error::last_os_error(),
            ));
        }
        if o.promisc {
            let m = PacketMreq {
                ifindex: idx as i32,
                mr_type: PACKET_MR_PROMISC,
                alen: 0,
                address: [0; 8],
            };
            setsockopt(&cap.fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &m)
                .map_err(|e| CaptureError::sys(iface, "enabling promiscuous mode", e))?;
        }
        // Reset the kernel counters (reading resets them) and take the rx_dropped base.
        let _ = cap.read_stats();
        cap.ring_drops = 0;
        cap.freezes = 0;
        cap.rx_dropped_base = iface_rx_dropped(iface).unwrap_or(0);
        cap.rx_dropped_last = cap.rx_dropped_base;
        Ok(cap)
    }

    fn read_stats(&mut self) -> std::io::Result<()> {
        let mut st = TpacketStatsV3::default();
        let mut len = size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: st is a writable buffer of len bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.ring_drops += u64::from(st.drops);
        self.freezes += u64::from(st.freeze_q_cnt);
        Ok(())
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_nr, so the offset stays inside the mapping.
        unsafe { self.ring.add(i * self.block_size) }
    }

    fn block_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is an aligned u32 inside the mapping, shared with the kernel.
        unsafe { &*(self.block(i).add(BD_STATUS) as *const AtomicU32) }
    }
}

#[inline]
fn rd32(p: *const u8, off: usize) -> u32 {
    // SAFETY: callers pass offsets inside a block the kernel handed to us.
    unsafe { std::ptr::read_unaligned(p.add(off) as *const u32) }
}

impl Capture for AfPacket {
    fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        if self.block_status(self.cur).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    return Ok(0);
                }
                return Err(CaptureError::sys(&self.iface, "poll", e));
            }
        }
        let mut n = 0usize;
        // Drain every block that is ours, at most one lap.
        for _ in 0..self.block_nr {
            let st = self.block_status(self.cur);
            if st.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            let b = self.block(self.cur);
            let num = rd32(b, BD_NUM_PKTS) as usize;
            let mut off = rd32(b, BD_FIRST) as usize;
            for _ in 0..num {
                if off + H_MAC + 2 > self.block_size {
                    break;
                }
                // SAFETY: off is inside the block (checked above).
                let h = unsafe { b.add(off) };
                let status = rd32(h, H_STATUS);
                let snap = rd32(h, H_SNAPLEN) as usize;
                // SAFETY: as above.
                let mac =
                    usize::from(unsafe { std::ptr::read_unaligned(h.add(H_MAC) as *const u16) });
                if off + mac + snap <= self.block_size {
                    // SAFETY: the frame lies inside the block (checked).
                    let data = unsafe { std::slice::from_raw_parts(h.add(mac), snap) };
                    let ts_ns =
                        u64::from(rd32(h, H_SEC)) * 1_000_000_000 + u64::from(rd32(h, H_NSEC));
                    f(&Frame {
                        data,
                        wire_len: rd32(h, H_LEN),
                        ts_ns,
                        ts_kind: ts_kind(status),
                    });
                    n += 1;
                }
                let next = rd32(h, H_NEXT) as usize;
                if next == 0 {
                    break;
                }
                off += next;
            }
            st.store(TP_STATUS_KERNEL, Ordering::Release);
            self.cur = (self.cur + 1) % self.block_nr;
        }
        Ok(n)
    }

    fn drops(&mut self) -> Drops {
        let _ = self.read_stats();
        if let Some(d) = iface_rx_dropped(&self.iface) {
            self.rx_dropped_last = d;
        }
        Drops {
            kernel: self.rx_dropped_last.saturating_sub(self.rx_dropped_base),
            ring: self.ring_drops,
            freezes: self.freezes,
        }
    }

    fn clock(&self) -> Clock {
        self.clock
    }

    fn backend(&self) -> &'static str {
        "af-packet"
    }

    fn iface(&self) -> &str {
        &self.iface
    }
}

impl Drop for AfPacket {
    fn drop(&mut self) {
        self.hw = None;
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}
