//! Thin wrappers over the kernel's BPF interfaces that `dut` needs beyond the
//! shared XDP layer: maps by id, `BPF_PROG_TEST_RUN` on a bare program fd (plain
//! and live frames), and `BPF_ENABLE_STATS`. Attachment, program info, interface
//! lookup and namespaces come from `xdplayer` and are re-exported here.
//!
//! Invariant: everything is found through the kernel (interface -> attached
//! program id -> info -> map ids), never through pins, so it works the same
//! under `ip netns exec` (fresh /sys, no bpffs) and with `--netns`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use libbpf_rs::MapHandle;

pub use xdplayer::attach::{
    ProgInfo, XdpAttached, XdpMode, prog_fd, prog_info, prog_info_fd, xdp_query,
};
pub use xdplayer::iface::{ifindex, interfaces};
pub use xdplayer::netns::{cookie as netns_cookie, enter as enter_netns};

use crate::error::{Error, Result};

fn neg_err(what: impl Into<String>, ret: i32) -> Error {
    Error::Kernel {
        what: what.into(),
        source: io::Error::from_raw_os_error(-ret),
    }
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
