//! Thin wrappers over the kernel's BPF and XDP interfaces that `dut` needs and
//! libbpf-rs does not expose by fd/id: the netlink XDP query and attach/detach
//! (`bpf_xdp_query`/`bpf_xdp_attach`), program info by id (name, map ids,
//! run-time statistics), `BPF_PROG_TEST_RUN` on a bare program fd, and
//! `BPF_ENABLE_STATS`.
//!
//! Invariant: everything is found through the kernel (interface -> attached
//! program id -> info -> map ids), never through pins, so it works the same
//! under `ip netns exec` (fresh /sys, no bpffs) and with `--netns`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use libbpf_rs::MapHandle;

use crate::error::{Error, Result};

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// On the skb path (`XDP_FLAGS_SKB_MODE`).
    Generic,
    /// On the NIC (`XDP_FLAGS_HW_MODE`, device-bound program).
    Offload,
}

impl XdpMode {
    /// The attach flag for this mode.
    pub fn flag(self) -> u32 {
        match self {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
            XdpMode::Offload => libbpf_sys::XDP_FLAGS_HW_MODE,
        }
    }
    /// `native`, `generic` or `offload`.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Offload => "offload",
        }
    }
}

/// The XDP programs attached to one interface, by mode (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpAttached {
    pub native: u32,
    pub generic: u32,
    pub offload: u32,
}

impl XdpAttached {
    /// Every attached (mode, program id).
    pub fn iter(&self) -> impl Iterator<Item = (XdpMode, u32)> {
        [
            (XdpMode::Native, self.native),
            (XdpMode::Generic, self.generic),
            (XdpMode::Offload, self.offload),
        ]
        .into_iter()
        .filter(|(_, id)| *id != 0)
    }
    /// Nothing attached.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

fn last_err(what: impl Into<String>) -> Error {
    Error::Kernel {
        what: what.into(),
        source: io::Error::last_os_error(),
    }
}

fn neg_err(what: impl Into<String>, ret: i32) -> Error {
    Error::Kernel {
        what: what.into(),
        source: io::Error::from_raw_os_error(-ret),
    }
}

/// The index of interface `name` in the current network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|_| Error::NoInterface(name.to_string()))
}

/// Every interface of the current network namespace, as (index, name).
pub fn interfaces() -> Result<Vec<(u32, String)>> {
    let list = nix::net::if_::if_nameindex().map_err(|e| Error::Kernel {
        what: "list interfaces".into(),
        source: e.into(),
    })?;
    Ok(list
        .iter()
        .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
        .collect())
}

/// The XDP programs on `ifindex` (netlink query).
pub fn xdp_query(ifindex: u32) -> Result<XdpAttached> {
    // SAFETY: zeroed is a valid bpf_xdp_query_opts; sz set as libbpf requires.
    let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    opts.sz = size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
    // SAFETY: opts is a valid, writable, correctly sized struct.
    let ret = unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) };
    if ret < 0 {
        return Err(neg_err(
            format!("query XDP programs on ifindex {ifindex}"),
            ret,
        ));
    }
    Ok(XdpAttached {
        native: opts.drv_prog_id,
        generic: opts.skb_prog_id,
        offload: opts.hw_prog_id,
    })
}

/// Attaches `prog` to `ifindex` in `mode`. With `old`, atomically replaces that
/// program (it must be the one attached in this mode).
pub fn xdp_attach(
    ifindex: u32,
    prog: BorrowedFd<'_>,
    mode: XdpMode,
    old: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _,
        old_prog_fd: old.map(|f| f.as_raw_fd()).unwrap_or(0),
        ..Default::default()
    };
    let mut flags = mode.flag();
    if old.is_some() {
        flags |= libbpf_sys::XDP_FLAGS_REPLACE;
    } else {
        opts.old_prog_fd = 0;
    }
    // SAFETY: plain syscall wrapper with a valid fd and opts.
    let ret = unsafe { libbpf_sys::bpf_xdp_attach(ifindex as i32, prog.as_raw_fd(), flags, &opts) };
    if ret < 0 {
        return Err(neg_err(
            format!(
                "attach XDP program ({} mode) on ifindex {ifindex}",
                mode.as_str()
            ),
            ret,
        ));
    }
    Ok(())
}

/// Detaches whatever program is attached in `mode` on `ifindex`.
pub fn xdp_detach(ifindex: u32, mode: XdpMode) -> Result<()> {
    // SAFETY: plain syscall wrapper.
    let ret = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, mode.flag(), std::ptr::null()) };
    if ret < 0 {
        return Err(neg_err(
            format!(
                "detach XDP program ({} mode) on ifindex {ifindex}",
                mode.as_str()
            ),
            ret,
        ));
    }
    Ok(())
}

/// A new fd for program `id`.
pub fn prog_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return Err(last_err(format!("open BPF program id {id}")));
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What `dut` needs to know about a loaded program.
#[derive(Debug, Clone, Default)]
pub struct ProgInfo {
    pub id: u32,
    pub name: String,
    pub map_ids: Vec<u32>,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub ifindex: u32,
}

/// Info of the program behind `fd`.
pub fn prog_info_fd(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info is a valid, zeroed, correctly sized struct.
    let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    if ret < 0 {
        return Err(neg_err("read BPF program info", ret));
    }
    let n = info.nr_map_ids as usize;
    let mut map_ids = vec![0u32; n];
    if n > 0 {
        let mut info2 = libbpf_sys::bpf_prog_info {
            nr_map_ids: n as u32,
            map_ids: map_ids.as_mut_ptr() as u64,
            ..Default::default()
        };
        let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: map_ids points at n writable u32s, as nr_map_ids says.
        let ret =
            unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info2, &mut len) };
        if ret < 0 {
            return Err(neg_err("read BPF program map ids", ret));
        }
        map_ids.truncate(info2.nr_map_ids.min(n as u32) as usize);
    }
    // SAFETY: the kernel NUL-terminates name within its 16 bytes.
    let name = unsafe { CStr::from_ptr(info.name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok(ProgInfo {
        id: info.id,
        name,
        map_ids,
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
        ifindex: info.ifindex,
    })
}

/// Info of program `id`.
pub fn prog_info(id: u32) -> Result<ProgInfo> {
    let fd = prog_fd(id)?;
    prog_info_fd(std::os::fd::AsFd::as_fd(&fd))
}

/// The map `id`, opened.
pub fn map_by_id(id: u32) -> Result<MapHandle> {
    MapHandle::from_map_id(id).map_err(|e| Error::Bpf {
        what: format!("open BPF map id {id}"),
        source: e,
    })
}

/// Result of one `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The verdict.
    pub retval: u32,
    /// The frame after the program (its new length).
    pub data: Vec<u8>,
    /// Mean duration per repetition.
    pub duration: Duration,
}

/// Runs the XDP program `fd` on `frame` `repeat` times (0 = once) with
/// `BPF_PROG_TEST_RUN`; the output buffer leaves room for growth.
pub fn test_run(fd: BorrowedFd<'_>, frame: &[u8], repeat: u32) -> Result<TestRun> {
    let mut out = vec![0u8; frame.len() + 4096];
    // SAFETY: zeroed is valid for bpf_test_run_opts.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.data_out = out.as_mut_ptr().cast();
    opts.data_size_out = out.len() as u32;
    opts.repeat = i32::try_from(repeat).unwrap_or(i32::MAX);
    // SAFETY: in/out buffers live through the call with the sizes given.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(neg_err("BPF_PROG_TEST_RUN", ret));
    }
    out.truncate(opts.data_size_out as usize);
    Ok(TestRun {
        retval: opts.retval,
        data: out,
        duration: Duration::from_nanos(u64::from(opts.duration)),
    })
}

/// Turns on the kernel's BPF run-time statistics for as long as the returned
/// fd is open (`BPF_ENABLE_STATS`, restores itself when closed).
pub fn enable_stats() -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        return Err(neg_err(
            "enable BPF run-time statistics (BPF_ENABLE_STATS)",
            fd,
        ));
    }
    // SAFETY: fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Cookie of the current network namespace (keys the state files). Unlike
/// the namespace's inode, which the kernel hands to a new namespace once the
/// old one is gone, the cookie is never reused within a boot, so a state file
/// left by a deleted namespace can never be taken for this one's.
pub fn netns_cookie() -> Result<u64> {
    // SO_NETNS_COOKIE (Linux 5.14) on the generic socket-option table.
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let kernel = |what: &str, source: std::io::Error| Error::Kernel {
        what: what.into(),
        source,
    };
    // SAFETY: plain syscalls on a socket this function owns; the option value
    // is written into a local u64 whose size is passed.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(kernel("socket(AF_UNIX)", std::io::Error::last_os_error()));
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        );
        if rc != 0 {
            return Err(kernel(
                "getsockopt(SO_NETNS_COOKIE) (needs Linux 5.14)",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(cookie)
    }
}

/// Enters network namespace `name` (/run/netns/NAME) for this thread (call it
/// first thing in main, before any thread, socket or BPF object exists).
pub fn enter_netns(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path).map_err(|_| Error::NoNetns(name.to_string()))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Kernel {
        what: format!("enter network namespace {name}"),
        source: e.into(),
    })
}

/// Runs the XDP program `fd` `repeat` times on fresh copies of `frame` in
/// live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`): as if received on
/// `ifindex` (an interface of the calling thread's network namespace), with
/// XDP_TX really transmitting there. Returns the mean time per frame, the
/// kernel's own measure (program plus the verdict's action).
pub fn test_run_live(
    fd: BorrowedFd<'_>,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
) -> Result<Duration> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    let mut ctx = [0u32; 6];
    ctx[1] = frame.len() as u32; // data_end must be the frame length
    ctx[3] = ifindex;
    // SAFETY: zeroed is valid for bpf_test_run_opts.
    let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = size_of::<libbpf_sys::bpf_test_run_opts>() as _;
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.ctx_in = ctx.as_ptr().cast();
    opts.ctx_size_in = size_of_val(&ctx) as u32;
    opts.repeat = i32::try_from(repeat).unwrap_or(i32::MAX);
    opts.flags = libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES;
    // SAFETY: buffers live through the call with the sizes given.
    let ret = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), &mut opts) };
    if ret < 0 {
        return Err(neg_err("BPF_PROG_TEST_RUN (live frames)", ret));
    }
    Ok(Duration::from_nanos(u64::from(opts.duration)))
}
