//! AF_XDP socket set-up: [`XskPort::open`] opens one socket per requested queue of
//! one interface, each with its own UMEM (no sharing, so each [`XskQueue`] can move
//! to its own thread), loads our redirect program when asked and takes the
//! interface over through [`XdpGuard`] (ownership record, orphan take-over,
//! restore on drop).
//!
//! * Binding tries `XDP_ZEROCOPY` first under [`XskMode::Auto`] and falls back to
//!   `XDP_COPY` (veth: copy only); [`XskPort::bound_mode`] says which. libxdp's own
//!   program load is always inhibited.
//! * With `redirect: Some(filter)` the port loads [`crate::redirect`]'s program;
//!   TX-only users pass `None` and nothing is attached.
//! * A foreign program is refused before anything is created; the placeholder and
//!   orphans (see [`crate::owner`]) are replaced without `force`.
//! * Invariant: nothing stays attached when `open` fails, and the sockets are
//!   closed before the guard restores the previous program.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd};

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

use crate::attach::{AttachOptions, XdpGuard, check_replaceable, xdp_query};
use crate::datapath::{XskQueue, XskStats};
use crate::error::{Error, Result, io_err};
use crate::ethtool::queue_count;
use crate::iface::ifindex;
use crate::owner::Scope;
use crate::redirect::{Filter, Redirect};

/// How to bind the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XskMode {
    /// Zero-copy where the driver can, copy otherwise.
    #[default]
    Auto,
    /// Copy mode only.
    Copy,
    /// Zero-copy only (error where the driver cannot).
    ZeroCopy,
}

/// How the sockets were bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundMode {
    /// `XDP_COPY`.
    Copy,
    /// `XDP_ZEROCOPY`.
    ZeroCopy,
}

impl BoundMode {
    /// `"copy"` or `"zerocopy"` (the JSON contract's `xsk_mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            BoundMode::Copy => "copy",
            BoundMode::ZeroCopy => "zerocopy",
        }
    }
}

/// What [`XskPort::open`] opens.
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// Interface name (in the calling thread's network namespace).
    pub iface: String,
    /// Queues, one socket each.
    pub queues: Vec<u32>,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Frames per socket (power of two, at least 64); halved between RX and TX when both.
    pub frame_count: u32,
    /// Receive (fill ring pre-filled).
    pub rx: bool,
    /// Transmit.
    pub tx: bool,
    /// Copy / zero-copy.
    pub mode: XskMode,
    /// Load our redirect program with this filter (None: no program; TX-only users,
    /// or users inserting [`XskQueue::raw_fd`] into their own XSKMAP).
    pub redirect: Option<Filter>,
    /// Replace a live foreign XDP program (it is restored on drop); the placeholder
    /// and orphans are replaced without it.
    pub force: bool,
    /// Ask the driver for NIC RX timestamps (XDP RX-metadata kfunc in a
    /// device-bound redirect program); needs `redirect`. Frames then carry
    /// [`RxMeta::hw_ns`] where the NIC gives one (veth: never, see
    /// [`XskStats::hw_ts_last_err`]).
    pub hw_timestamps: bool,
}

impl XskConfig {
    /// Defaults: queue 0, 2048-byte frames, 4096 frames, RX and TX, auto mode,
    /// redirect every frame, no force.
    pub fn new(iface: impl Into<String>) -> XskConfig {
        XskConfig {
            iface: iface.into(),
            queues: vec![0],
            frame_size: 2048,
            frame_count: 4096,
            rx: true,
            tx: true,
            mode: XskMode::Auto,
            redirect: Some(Filter::all()),
            force: false,
            hw_timestamps: false,
        }
    }
}

/// AF_XDP sockets on the queues of one interface, plus our redirect program (if
/// asked for) and the guard that restores the interface's previous program.
#[derive(Debug)]
pub struct XskPort {
    iface: String,
    ifindex: u32,
    mode: BoundMode,
    queues: Vec<XskQueue>,
    redirect: Option<Redirect>,
    /// Declared last: dropped after the sockets.
    guard: Option<XdpGuard>,
}

fn pow2_at_least(n: u32) -> u32 {
    n.max(64).next_power_of_two()
}

/// A bound socket with its UMEM, frames and four rings.
type OpenedSocket = (Umem, Vec<FrameDesc>, TxQueue, RxQueue, FillQueue, CompQueue);

/// [`open_socket_once`], retried for up to 2 s while the kernel answers EBUSY: a
/// socket of a process that just died (SIGKILL, a crash) is released by the
/// kernel after the process is reaped, and until then its queue is still taken.
/// Every attempt starts from a fresh UMEM.
fn open_socket(
    cfg: &XskConfig,
    if_name: &Interface,
    queue: u32,
    zerocopy: bool,
) -> Result<OpenedSocket, Error> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match open_socket_once(cfg, if_name, queue, zerocopy) {
            Err(Error::Socket { ref detail, .. })
                if detail.contains("os error 16") && std::time::Instant::now() < until =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn open_socket_once(
    cfg: &XskConfig,
    if_name: &Interface,
    queue: u32,
    zerocopy: bool,
) -> Result<OpenedSocket, Error> {
    let sock_err = |what: &'static str, detail: String| Error::Socket {
        iface: cfg.iface.clone(),
        queue,
        what,
        detail,
    };
    let (rx_frames, tx_frames) = match (cfg.rx, cfg.tx) {
        (true, true) => (cfg.frame_count / 2, cfg.frame_count / 2),
        (true, false) => (cfg.frame_count, 0),
        _ => (0, cfg.frame_count),
    };
    let qs =
        |n: u32| QueueSize::new(pow2_at_least(n)).map_err(|e| sock_err("ring size", e.to_string()));
    let umem_cfg = UmemConfig::builder()
        .frame_size(
            FrameSize::new(cfg.frame_size).map_err(|e| sock_err("frame size", e.to_string()))?,
        )
        .fill_queue_size(qs(rx_frames)?)
        .comp_queue_size(qs(tx_frames)?)
        .build()
        .map_err(|e| sock_err("UMEM config", e.to_string()))?;
    let count =
        NonZeroU32::new(cfg.frame_count).ok_or_else(|| sock_err("frame count", "0".into()))?;
    let (umem, descs) = Umem::new(umem_cfg, count, false).map_err(|e| {
        sock_err(
            "create UMEM",
            format!(
                "{e}: {:?}",
                std::error::Error::source(&e).map(|s| s.to_string())
            ),
        )
    })?;
    let bind = if zerocopy {
        BindFlags::XDP_ZEROCOPY | BindFlags::XDP_USE_NEED_WAKEUP
    } else {
        BindFlags::XDP_COPY | BindFlags::XDP_USE_NEED_WAKEUP
    };
    let sock_cfg = SocketConfig::builder()
        .rx_queue_size(qs(rx_frames)?)
        .tx_queue_size(qs(tx_frames)?)
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(bind)
        .build();
    // SAFETY: the UMEM is fresh and not shared with any other socket.
    let (tx, rx, rings) =
        unsafe { xsk_rs::Socket::new(sock_cfg, &umem, if_name, queue) }.map_err(|e| {
            let src = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .map(|s| io::Error::from_raw_os_error(s.raw_os_error().unwrap_or(0)));
            match (zerocopy, src) {
                (true, Some(s)) => Error::ZeroCopyUnsupported {
                    iface: cfg.iface.clone(),
                    queue,
                    source: s,
                },
                (_, Some(s)) => sock_err("create socket", s.to_string()),
                (_, None) => sock_err("create socket", e.to_string()),
            }
        })?;
    let (fq, cq) =
        rings.ok_or_else(|| sock_err("create socket", "no fill/completion rings".into()))?;
    Ok((umem, descs, tx, rx, fq, cq))
}

impl XskPort {
    /// Opens the sockets (and the redirect program) described by `cfg` in the
    /// calling thread's network namespace. Nothing stays attached on error.
    pub fn open(cfg: &XskConfig) -> Result<XskPort> {
        if cfg.queues.is_empty() {
            return Err(Error::Config("no queues given".into()));
        }
        if cfg.hw_timestamps && cfg.redirect.is_none() {
            return Err(Error::Config(
                "hardware RX timestamps need our redirect program (redirect: Some(filter))".into(),
            ));
        }
        if !cfg.rx && !cfg.tx {
            return Err(Error::Config("neither rx nor tx asked for".into()));
        }
        if cfg.frame_size != 2048 && cfg.frame_size != 4096 {
            return Err(Error::Config(format!(
                "frame size {} (use 2048 or 4096)",
                cfg.frame_size
            )));
        }
        if cfg.frame_count < 64 || !cfg.frame_count.is_power_of_two() {
            return Err(Error::Config(format!(
                "frame count {} (use a power of two, at least 64)",
                cfg.frame_count
            )));
        }
        let idx = ifindex(&cfg.iface)?;
        let available = queue_count(&cfg.iface);
        if let Some(&q) = cfg.queues.iter().find(|&&q| q >= available) {
            return Err(Error::NoSuchQueue {
                iface: cfg.iface.clone(),
                queue: q,
                available,
            });
        }
        let mut sorted = cfg.queues.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != cfg.queues.len() {
            return Err(Error::Config("a queue is listed twice".into()));
        }
        // Refuse a live foreign program before creating anything (the placeholder
        // and orphans pass; XdpGuard::attach decides again, atomically).
        if cfg.redirect.is_some()
            && let Some((_, id)) = xdp_query(idx)?.host()
        {
            let name = crate::attach::prog_info(id)
                .map(|i| i.name)
                .unwrap_or_default();
            check_replaceable(&cfg.iface, idx, id, &name, cfg.force)?;
        }
        let redirect = match &cfg.redirect {
            Some(filter) => Some(Redirect::load(
                filter,
                sorted[sorted.len() - 1],
                cfg.hw_timestamps.then_some(idx),
            )?),
            None => None,
        };
        let if_name: Interface = cfg.iface.parse().map_err(|_| Error::NoSuchInterface {
            iface: cfg.iface.clone(),
        })?;
        let mut mode = None;
        let mut queues = Vec::with_capacity(cfg.queues.len());
        for &q in &cfg.queues {
            let opened = match (cfg.mode, mode) {
                (XskMode::Copy, _) | (XskMode::Auto, Some(BoundMode::Copy)) => {
                    open_socket(cfg, &if_name, q, false).map(|s| (s, BoundMode::Copy))
                }
                (XskMode::ZeroCopy, _) | (XskMode::Auto, Some(BoundMode::ZeroCopy)) => {
                    open_socket(cfg, &if_name, q, true).map(|s| (s, BoundMode::ZeroCopy))
                }
                (XskMode::Auto, None) => match open_socket(cfg, &if_name, q, true) {
                    Ok(s) => Ok((s, BoundMode::ZeroCopy)),
                    Err(_) => open_socket(cfg, &if_name, q, false).map(|s| (s, BoundMode::Copy)),
                },
            };
            let ((umem, mut descs, tx, rx, mut fq, cq), m) = opened?;
            mode = Some(m);
            let (rx_n, tx_n) = match (cfg.rx, cfg.tx) {
                (true, true) => (descs.len() / 2, descs.len() - descs.len() / 2),
                (true, false) => (descs.len(), 0),
                _ => (0, descs.len()),
            };
            let tx_free = descs.split_off(rx_n);
            debug_assert_eq!(tx_free.len(), tx_n);
            if rx_n > 0 {
                // SAFETY: fresh frames of this UMEM; the fill ring holds them all.
                let put = unsafe { fq.produce(&descs) };
                if put != descs.len() {
                    return Err(Error::Socket {
                        iface: cfg.iface.clone(),
                        queue: q,
                        what: "fill ring",
                        detail: format!("took {put} of {} frames", descs.len()),
                    });
                }
            }
            if let Some(r) = &redirect {
                r.insert(q, tx.fd().as_raw_fd())
                    .map_err(|e| io_err(format!("insert queue {q}'s socket into the XSKMAP"), e))?;
            }
            queues.push(XskQueue {
                queue: q,
                umem,
                tx,
                rx,
                fq,
                cq,
                tx_total: tx_free.len(),
                tx_free,
                rx_scratch: vec![FrameDesc::default(); 256],
                cq_scratch: vec![FrameDesc::default(); 256],
                stats: XskStats::default(),
                hw_ts: cfg.hw_timestamps,
            });
        }
        let guard = match &redirect {
            Some(r) => Some(XdpGuard::attach(
                &cfg.iface,
                r.prog.as_fd(),
                &AttachOptions {
                    owner_pid: None,
                    force: cfg.force,
                    scope: Scope::Process,
                    mode: None,
                },
            )?),
            None => None,
        };
        Ok(XskPort {
            iface: cfg.iface.clone(),
            ifindex: idx,
            mode: mode.unwrap_or(BoundMode::Copy),
            queues,
            redirect,
            guard,
        })
    }

    /// Interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// How the sockets were bound.
    pub fn bound_mode(&self) -> BoundMode {
        self.mode
    }

    /// The sockets, to move to their threads. The port keeps the program and the
    /// guard: keep it alive until the threads are done, then drop it.
    pub fn take_queues(&mut self) -> Vec<XskQueue> {
        std::mem::take(&mut self.queues)
    }

    /// The sockets still held by the port.
    pub fn queues_mut(&mut self) -> &mut [XskQueue] {
        &mut self.queues
    }

    /// Our redirect program's (redirected, passed) counters, if loaded.
    pub fn redirect_counters(&self) -> Option<(u64, u64)> {
        self.redirect.as_ref().map(|r| {
            let (a, b, _) = r.counters();
            (a, b)
        })
    }

    /// Where our program runs (`"native"`/`"generic"`), if attached.
    pub fn attach_mode(&self) -> Option<&'static str> {
        self.guard.as_ref().map(XdpGuard::attach_mode)
    }

    /// Restores the interface's previous XDP program now (drop does it too).
    pub fn close(mut self) -> Result<()> {
        self.queues.clear();
        match self.guard.as_mut() {
            Some(g) => g.restore(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_send() {
        fn is_send<T: Send>() {}
        is_send::<XskQueue>();
        is_send::<XskPort>();
    }

    #[test]
    fn filter_all_is_default() {
        assert!(Filter::all().is_all());
        assert!(!Filter::udp().is_all());
    }

    #[test]
    fn bad_config_is_refused() {
        let mut c = XskConfig::new("lo");
        c.frame_count = 100;
        assert!(matches!(XskPort::open(&c), Err(Error::Config(_))));
        let mut c = XskConfig::new("no-such-if0");
        c.redirect = None;
        assert!(matches!(
            XskPort::open(&c),
            Err(Error::NoSuchInterface { .. })
        ));
    }
}
