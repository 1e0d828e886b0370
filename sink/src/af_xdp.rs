//! The AF_XDP layer shared by `gen`, `sink` and `dut`: per-queue AF_XDP sockets
//! (xsk-rs over libxdp), their UMEMs and rings, our own redirect program and the
//! XDP coexistence guard.
//!
//! * [`XskPort::open`] opens one socket per requested queue of one interface, each
//!   with its own UMEM (no sharing, so each [`XskQueue`] can move to its own
//!   thread). Binding tries `XDP_ZEROCOPY` first under [`XskMode::Auto`] and falls
//!   back to `XDP_COPY` (veth: copy only); [`XskPort::bound_mode`] says which.
//!   libxdp's own program load is always inhibited.
//! * With `redirect: Some(filter)` the port loads `xsk_redirect.bpf.c`: an XSKMAP
//!   keyed by `rx_queue_index`, `bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS)`
//!   for frames matching the filter (configured in rodata), `XDP_PASS` for the rest,
//!   so ARP and other traffic still reach the kernel. TX-only users pass `None`.
//! * [`XdpGuard`] (held by the port) takes an fd of whatever XDP program was
//!   attached before replacing it and re-attaches it on drop (normal exit, error
//!   paths, Ctrl-C handled by the caller's loop ending, panics that unwind). A
//!   program named `xdp_pass` (the lab's placeholder) is replaced silently; any
//!   other program is refused unless `force`. Restoring happens in the network
//!   namespace the port was opened in, whatever thread drops it.
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
//! With [`XskConfig::hw_timestamps`] the redirect program is loaded device-bound
//! (`xsk_redirect_meta`): it calls the XDP RX-metadata kfunc
//! `bpf_xdp_metadata_rx_timestamp()`, and writes `{rx_ts u64, err i32, magic u32}`
//! into the frame's metadata area (`bpf_xdp_adjust_meta`), which the kernel copies
//! into the UMEM right before the frame (copy and zero-copy mode alike);
//! `recv_batch` reads it back into [`RxMeta::hw_ns`]. Where the driver has no
//! timestamp (veth: `-ENODATA` for every frame) or no metadata support
//! (`-EOPNOTSUPP`), `hw_ns` is `None`, [`XskStats::hw_ts_missing`] counts the
//! frames and [`XskStats::hw_ts_last_err`] / [`hw_ts_error_text`] say why.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/xsk_redirect.skel.rs"));
}

/// Name of the lab's placeholder program, replaced without `force`.
pub const PLACEHOLDER_PROG: &str = "xdp_pass";
/// Name of our redirect program.
pub const REDIRECT_PROG: &str = "xsk_redirect";

const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;
const XDP_FLAGS_REPLACE: u32 = 16;

/// Errors of the AF_XDP layer.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The interface does not exist (in this network namespace).
    #[error(
        "no interface named {iface} (in this network namespace): check the name or pass --netns"
    )]
    NoSuchInterface {
        /// Interface name.
        iface: String,
    },
    /// Bad configuration.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(String),
    /// The interface has fewer queues than requested.
    #[error("{iface} has {available} queue(s); queue {queue} requested (see `ethtool -l {iface}`)")]
    NoSuchQueue {
        /// Interface name.
        iface: String,
        /// Requested queue.
        queue: u32,
        /// Queues the interface has.
        available: u32,
    },
    /// A foreign XDP program is attached.
    #[error(
        "{iface} carries XDP program `{name}` (id {id}), not ours: pass --force to replace it (it is put back on exit)"
    )]
    Foreign {
        /// Interface name.
        iface: String,
        /// Program name.
        name: String,
        /// Program id.
        id: u32,
    },
    /// Zero-copy was required and the driver refused it.
    #[error(
        "{iface} queue {queue}: zero-copy AF_XDP not supported by the driver ({source}); use copy mode"
    )]
    ZeroCopyUnsupported {
        /// Interface name.
        iface: String,
        /// Queue.
        queue: u32,
        /// Kernel error.
        source: io::Error,
    },
    /// Creating the UMEM or the socket failed.
    #[error("AF_XDP socket on {iface} queue {queue}: {what}: {detail}")]
    Socket {
        /// Interface name.
        iface: String,
        /// Queue.
        queue: u32,
        /// Step.
        what: &'static str,
        /// Detail (kernel error).
        detail: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// Kernel error.
        source: io::Error,
    },
    /// libbpf failed.
    #[error("{what}: {source}")]
    Bpf {
        /// What we were doing.
        what: String,
        /// libbpf error.
        source: libbpf_rs::Error,
    },
}

/// Result of this module.
pub type Result<T, E = XskError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>, source: io::Error) -> XskError {
    XskError::Io {
        what: what.into(),
        source,
    }
}

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

/// Which frames the redirect program hands to the sockets (the rest: XDP_PASS).
/// All fields `None` = every frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// IPv4 protocol number (17 = UDP). Set with any other field, non-IPv4 frames pass.
    pub proto: Option<u8>,
    /// IPv4 source address.
    pub src_ip: Option<Ipv4Addr>,
    /// IPv4 destination address.
    pub dst_ip: Option<Ipv4Addr>,
    /// UDP/TCP source port.
    pub src_port: Option<u16>,
    /// UDP/TCP destination port.
    pub dst_port: Option<u16>,
}

impl Filter {
    /// Every frame.
    pub fn all() -> Filter {
        Filter::default()
    }
    /// Every IPv4 UDP datagram.
    pub fn udp() -> Filter {
        Filter {
            proto: Some(17),
            ..Filter::default()
        }
    }
    fn is_all(&self) -> bool {
        *self == Filter::default()
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
    /// Replace a foreign XDP program (it is restored on drop).
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

/// Interface index of `iface` in the calling thread's namespace.
pub fn ifindex(iface: &str) -> Result<u32> {
    let c = CString::new(iface).map_err(|_| XskError::NoSuchInterface {
        iface: iface.into(),
    })?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(XskError::NoSuchInterface {
            iface: iface.into(),
        });
    }
    Ok(idx)
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

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------
// The coexistence guard.

/// Puts back the XDP program that was on an interface before ours. Drop restores.
#[derive(Debug)]
pub struct XdpGuard {
    iface: String,
    ifindex: i32,
    netns: Option<OwnedFd>,
    /// Our program (attached).
    ours: OwnedFd,
    ours_mode: u32,
    /// The program that was there, and its mode flag.
    old: Option<(OwnedFd, u32, String)>,
    restored: bool,
}

fn prog_name(fd: RawFd) -> String {
    // SAFETY: bpf_prog_info is plain data.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info/len are valid for the call.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if rc != 0 {
        return String::from("?");
    }
    // SAFETY: the kernel NUL-terminates the 16-byte name.
    let name = unsafe { CStr::from_ptr(info.name.as_ptr()) };
    name.to_string_lossy().into_owned()
}

/// Ids of the XDP programs attached to `ifindex`: (driver, generic, offload).
pub fn xdp_query(ifindex: u32) -> Result<(u32, u32, u32)> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: opts is a valid, sized struct.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if rc != 0 {
        return Err(io_err(
            format!("query XDP programs of ifindex {ifindex}"),
            io::Error::from_raw_os_error(-rc),
        ));
    }
    Ok((opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id))
}

/// Name of the XDP program on `iface` (driver or generic mode), if any.
pub fn attached_prog(iface: &str) -> Result<Option<(u32, String)>> {
    let idx = ifindex(iface)?;
    let (drv, skb, _) = xdp_query(idx)?;
    let id = if drv != 0 { drv } else { skb };
    if id == 0 {
        return Ok(None);
    }
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return Ok(Some((id, String::from("?"))));
    }
    // SAFETY: fd was just returned to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Some((id, prog_name(fd.as_raw_fd()))))
}

fn xdp_attach(ifindex: i32, prog: RawFd, flags: u32, old: Option<RawFd>) -> io::Result<()> {
    let opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _,
        old_prog_fd: old.unwrap_or(0),
        ..Default::default()
    };
    let flags = if old.is_some() {
        flags | XDP_FLAGS_REPLACE
    } else {
        flags
    };
    // SAFETY: opts is valid for the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_attach(ifindex, prog, flags, &opts) };
    if rc != 0 {
        Err(io::Error::from_raw_os_error(-rc))
    } else {
        Ok(())
    }
}

fn xdp_detach(ifindex: i32, flags: u32, expected: Option<RawFd>) -> io::Result<()> {
    let opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _,
        old_prog_fd: expected.unwrap_or(0),
        ..Default::default()
    };
    let flags = if expected.is_some() {
        flags | XDP_FLAGS_REPLACE
    } else {
        flags
    };
    // SAFETY: opts is valid for the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_detach(ifindex, flags, &opts) };
    if rc != 0 {
        Err(io::Error::from_raw_os_error(-rc))
    } else {
        Ok(())
    }
}

impl XdpGuard {
    /// Attaches `prog` to `iface` (driver mode, generic mode where the driver has no
    /// XDP), after taking an fd of the program already there. A program not named
    /// [`PLACEHOLDER_PROG`] is refused unless `force`.
    pub fn attach(iface: &str, prog: BorrowedProg<'_>, force: bool) -> Result<XdpGuard> {
        let idx = ifindex(iface)?;
        let (drv, skb, _hw) = xdp_query(idx)?;
        let (old_id, old_mode) = if drv != 0 {
            (drv, XDP_FLAGS_DRV_MODE)
        } else if skb != 0 {
            (skb, XDP_FLAGS_SKB_MODE)
        } else {
            (0, 0)
        };
        let old = if old_id != 0 {
            // SAFETY: plain syscall wrapper.
            let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(old_id) };
            if fd < 0 {
                return Err(io_err(
                    format!("take the XDP program (id {old_id}) on {iface}"),
                    io::Error::from_raw_os_error(-fd),
                ));
            }
            // SAFETY: fd was just returned to us.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let name = prog_name(fd.as_raw_fd());
            if name != PLACEHOLDER_PROG && !force {
                return Err(XskError::Foreign {
                    iface: iface.into(),
                    name,
                    id: old_id,
                });
            }
            Some((fd, old_mode, name))
        } else {
            None
        };
        let netns = std::fs::File::open("/proc/thread-self/ns/net")
            .ok()
            .map(OwnedFd::from);
        let ours = prog
            .0
            .try_clone_to_owned()
            .map_err(|e| io_err("duplicate program fd", e))?;
        let idx_i = idx as i32;
        let ours_mode = match &old {
            Some((ofd, XDP_FLAGS_DRV_MODE, _)) => {
                xdp_attach(
                    idx_i,
                    ours.as_raw_fd(),
                    XDP_FLAGS_DRV_MODE,
                    Some(ofd.as_raw_fd()),
                )
                .map_err(|e| {
                    io_err(
                        format!("attach {REDIRECT_PROG} on {iface} (driver mode)"),
                        e,
                    )
                })?;
                XDP_FLAGS_DRV_MODE
            }
            Some((ofd, _, _)) => {
                // Generic-mode program there: driver and generic cannot coexist, so
                // replace it in generic mode.
                xdp_attach(
                    idx_i,
                    ours.as_raw_fd(),
                    XDP_FLAGS_SKB_MODE,
                    Some(ofd.as_raw_fd()),
                )
                .map_err(|e| {
                    io_err(
                        format!("attach {REDIRECT_PROG} on {iface} (generic mode)"),
                        e,
                    )
                })?;
                XDP_FLAGS_SKB_MODE
            }
            None => {
                match xdp_attach(
                    idx_i,
                    ours.as_raw_fd(),
                    XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST,
                    None,
                ) {
                    Ok(()) => XDP_FLAGS_DRV_MODE,
                    Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                        xdp_attach(
                            idx_i,
                            ours.as_raw_fd(),
                            XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST,
                            None,
                        )
                        .map_err(|e| {
                            io_err(
                                format!("attach {REDIRECT_PROG} on {iface} (generic mode)"),
                                e,
                            )
                        })?;
                        XDP_FLAGS_SKB_MODE
                    }
                    Err(e) => {
                        return Err(io_err(
                            format!("attach {REDIRECT_PROG} on {iface} (driver mode)"),
                            e,
                        ));
                    }
                }
            }
        };
        Ok(XdpGuard {
            iface: iface.into(),
            ifindex: idx_i,
            netns,
            ours,
            ours_mode,
            old,
            restored: false,
        })
    }

    /// `"native"` or `"generic"`: where our program runs.
    pub fn attach_mode(&self) -> &'static str {
        if self.ours_mode == XDP_FLAGS_DRV_MODE {
            "native"
        } else {
            "generic"
        }
    }

    /// Name of the program we replaced (restored on drop), if any.
    pub fn replaced(&self) -> Option<&str> {
        self.old.as_ref().map(|(_, _, n)| n.as_str())
    }

    fn restore_here(&self) -> io::Result<()> {
        match &self.old {
            Some((ofd, mode, _)) => xdp_attach(
                self.ifindex,
                ofd.as_raw_fd(),
                *mode,
                Some(self.ours.as_raw_fd()),
            ),
            None => xdp_detach(self.ifindex, self.ours_mode, Some(self.ours.as_raw_fd())),
        }
    }

    /// Restores the previous program now (also done by drop).
    pub fn restore(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let r = match &self.netns {
            Some(ns) => std::thread::scope(|s| {
                s.spawn(|| {
                    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                    self.restore_here()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("restore thread panicked")))
            }),
            None => self.restore_here(),
        };
        r.map_err(|e| {
            io_err(
                format!("restore the previous XDP program on {}", self.iface),
                e,
            )
        })
    }
}

impl Drop for XdpGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("warning: {e}");
        }
    }
}

/// A borrowed BPF program fd (for [`XdpGuard::attach`]).
#[derive(Debug, Clone, Copy)]
pub struct BorrowedProg<'a>(pub std::os::fd::BorrowedFd<'a>);

// ---------------------------------------------------------------------------
// The redirect program.

/// Our loaded redirect program: fds of the program, its XSKMAP and counters.
#[derive(Debug)]
struct Redirect {
    prog: OwnedFd,
    xsks: OwnedFd,
    counters: OwnedFd,
}

fn bpf_err(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> XskError {
    let what = what.into();
    move |source| XskError::Bpf { what, source }
}

impl Redirect {
    /// Loads the plain program, or with `meta_ifindex` the device-bound one that
    /// asks that device's driver for RX timestamps.
    fn load(filter: &Filter, max_queue: u32, meta_ifindex: Option<u32>) -> Result<Redirect> {
        const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::XskRedirectSkelBuilder::default()
            .open(&mut obj)
            .map_err(bpf_err("open the AF_XDP redirect program"))?;
        match meta_ifindex {
            Some(idx) => {
                open.progs.xsk_redirect.set_autoload(false);
                open.progs.xsk_redirect_meta.set_ifindex(idx);
                open.progs
                    .xsk_redirect_meta
                    .set_flags(BPF_F_XDP_DEV_BOUND_ONLY);
            }
            None => open.progs.xsk_redirect_meta.set_autoload(false),
        }
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.match_all = u8::from(filter.is_all());
            ro.match_proto = filter.proto.unwrap_or(0);
            ro.match_src_ip = filter.src_ip.map_or(0, |a| u32::from_ne_bytes(a.octets()));
            ro.match_dst_ip = filter.dst_ip.map_or(0, |a| u32::from_ne_bytes(a.octets()));
            ro.match_src_port = filter.src_port.unwrap_or(0);
            ro.match_dst_port = filter.dst_port.unwrap_or(0);
        }
        open.maps
            .xsks
            .set_max_entries(max_queue + 1)
            .map_err(bpf_err("size the XSKMAP"))?;
        let skel = open.load().map_err(bpf_err(if meta_ifindex.is_some() {
            "load the device-bound AF_XDP redirect program (RX timestamps; the driver may not support XDP RX metadata)"
        } else {
            "load the AF_XDP redirect program"
        }))?;
        let prog = if meta_ifindex.is_some() {
            skel.progs.xsk_redirect_meta.as_fd()
        } else {
            skel.progs.xsk_redirect.as_fd()
        };
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|e| io_err("duplicate BPF fd", e))
        };
        Ok(Redirect {
            prog: dup(prog)?,
            xsks: dup(skel.maps.xsks.as_fd())?,
            counters: dup(skel.maps.counters.as_fd())?,
        })
    }

    fn insert(&self, queue: u32, sock: RawFd) -> io::Result<()> {
        let key = queue;
        let val = sock as u32;
        // SAFETY: key/value point at 4-byte values matching the map's sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.xsks.as_raw_fd(),
                (&key as *const u32).cast(),
                (&val as *const u32).cast(),
                0,
            )
        };
        if rc != 0 {
            Err(io::Error::from_raw_os_error(-rc))
        } else {
            Ok(())
        }
    }

    /// (redirected, passed, no room for metadata) summed over CPUs.
    fn counters(&self) -> (u64, u64, u64) {
        // SAFETY: plain libbpf call.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
        let cpus = usize::try_from(cpus).unwrap_or(1).max(1);
        let mut out = [0u64; 3];
        let mut vals = vec![0u64; cpus];
        for (k, o) in out.iter_mut().enumerate() {
            let key = k as u32;
            // SAFETY: vals holds one u64 per possible CPU, as the per-CPU map needs.
            let rc = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.counters.as_raw_fd(),
                    (&key as *const u32).cast(),
                    vals.as_mut_ptr().cast(),
                )
            };
            if rc == 0 {
                *o = vals.iter().sum();
            }
        }
        (out[0], out[1], out[2])
    }
}

// ---------------------------------------------------------------------------
// Sockets.

/// Per-frame metadata handed to [`XskQueue::recv_batch`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// CLOCK_REALTIME (ns) when the batch was taken off the RX ring.
    pub sw_ns: u64,
    /// NIC hardware timestamp (XDP RX metadata); None here (see the module docs).
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
    queue: u32,
    umem: Umem,
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    tx_free: Vec<FrameDesc>,
    tx_total: usize,
    rx_scratch: Vec<FrameDesc>,
    cq_scratch: Vec<FrameDesc>,
    stats: XskStats,
    hw_ts: bool,
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
        self.stats.tx_completed.saturating_sub(self.stats.tx_dropped)
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
        let sw_ns = realtime_ns();
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
        // SAFETY: the frames are of this UMEM and no longer read; the fill ring
        // is sized to hold every RX frame, so there is room.
        let mut put = 0;
        while put < n {
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

fn open_socket(
    cfg: &XskConfig,
    if_name: &Interface,
    queue: u32,
    zerocopy: bool,
) -> Result<OpenedSocket, XskError> {
    let sock_err = |what: &'static str, detail: String| XskError::Socket {
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
                (true, Some(s)) => XskError::ZeroCopyUnsupported {
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
            return Err(XskError::Config("no queues given".into()));
        }
        if cfg.hw_timestamps && cfg.redirect.is_none() {
            return Err(XskError::Config(
                "hardware RX timestamps need our redirect program (redirect: Some(filter))".into(),
            ));
        }
        if !cfg.rx && !cfg.tx {
            return Err(XskError::Config("neither rx nor tx asked for".into()));
        }
        if cfg.frame_size != 2048 && cfg.frame_size != 4096 {
            return Err(XskError::Config(format!(
                "frame size {} (use 2048 or 4096)",
                cfg.frame_size
            )));
        }
        if cfg.frame_count < 64 || !cfg.frame_count.is_power_of_two() {
            return Err(XskError::Config(format!(
                "frame count {} (use a power of two, at least 64)",
                cfg.frame_count
            )));
        }
        let idx = ifindex(&cfg.iface)?;
        let available = queue_count(&cfg.iface);
        if let Some(&q) = cfg.queues.iter().find(|&&q| q >= available) {
            return Err(XskError::NoSuchQueue {
                iface: cfg.iface.clone(),
                queue: q,
                available,
            });
        }
        let mut sorted = cfg.queues.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != cfg.queues.len() {
            return Err(XskError::Config("a queue is listed twice".into()));
        }
        // Refuse a foreign program before creating anything.
        if cfg.redirect.is_some()
            && !cfg.force
            && let Some((id, name)) = attached_prog(&cfg.iface)?
            && name != PLACEHOLDER_PROG
        {
            return Err(XskError::Foreign {
                iface: cfg.iface.clone(),
                name,
                id,
            });
        }
        let redirect = match &cfg.redirect {
            Some(filter) => Some(Redirect::load(
                filter,
                sorted[sorted.len() - 1],
                cfg.hw_timestamps.then_some(idx),
            )?),
            None => None,
        };
        let if_name: Interface = cfg.iface.parse().map_err(|_| XskError::NoSuchInterface {
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
                    return Err(XskError::Socket {
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
                BorrowedProg(r.prog.as_fd()),
                cfg.force,
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
        assert!(matches!(XskPort::open(&c), Err(XskError::Config(_))));
        let mut c = XskConfig::new("no-such-if0");
        c.redirect = None;
        assert!(matches!(
            XskPort::open(&c),
            Err(XskError::NoSuchInterface { .. })
        ));
    }

    #[test]
    fn redirect_program_loads_and_filters() {
        // BPF_PROG_TEST_RUN on crafted frames: UDP to port 53 redirected (the
        // XSKMAP is empty so bpf_redirect_map falls back to XDP_PASS, but the
        // counters say which branch ran), ARP and short frames passed.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let f = Filter {
            proto: Some(17),
            dst_port: Some(53),
            ..Filter::default()
        };
        let r = Redirect::load(&f, 3, None).expect("load");
        let mut udp = vec![0u8; 60];
        udp[12] = 0x08;
        udp[14] = 0x45;
        udp[23] = 17;
        udp[36] = 0;
        udp[37] = 53;
        let mut other_port = udp.clone();
        other_port[37] = 54;
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        let short = vec![0u8; 20];
        let run = |frame: &[u8]| -> u32 {
            let mut opts = libbpf_sys::bpf_test_run_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
                data_in: frame.as_ptr().cast(),
                data_size_in: frame.len() as u32,
                ..Default::default()
            };
            // SAFETY: opts points at live buffers.
            let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(r.prog.as_raw_fd(), &mut opts) };
            assert_eq!(rc, 0, "test run");
            opts.retval
        };
        for fr in [&udp[..], &other_port, &arp, &short] {
            assert_eq!(run(fr), 2, "XDP_PASS (empty XSKMAP or no match)");
        }
        let (redirected, passed, _) = r.counters();
        assert_eq!((redirected, passed), (1, 3));
    }
}
