//! The one placeholder XDP program, `xdp_pass` (`src/bpf/pass.bpf.c`): passes every
//! frame. The lab attaches it to every veth end (veth drops XDP_TX'd and
//! redirected frames unless the receiving end has an XDP program); tools put it
//! back when they leave, and replace it without `--force`. Any program with this
//! BPF name counts as a placeholder, whoever loaded it.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::attach::{Replace, XdpMode, xdp_attach};
use crate::error::{Result, bpf_err, io_err};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/pass.skel.rs"));
}

/// BPF name of the placeholder.
pub const PLACEHOLDER_PROG: &str = "xdp_pass";

/// Loads the placeholder; the kernel keeps it while the fd or an attachment holds it.
pub fn load() -> Result<OwnedFd> {
    let mut obj = MaybeUninit::uninit();
    let open = skel::PassSkelBuilder::default()
        .open(&mut obj)
        .map_err(bpf_err("open the XDP_PASS placeholder"))?;
    let skel = open
        .load()
        .map_err(bpf_err("load the XDP_PASS placeholder"))?;
    skel.progs
        .xdp_pass
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| io_err("duplicate program fd", e))
}

/// Attaches the placeholder `prog` (from [`load`]) to `ifindex` of the calling
/// thread's namespace in `mode`, replacing whatever is in that slot. The
/// placeholder needs no ownership record: it is replaceable by definition.
pub fn attach(ifindex: u32, prog: &OwnedFd, mode: XdpMode) -> Result<()> {
    xdp_attach(ifindex, prog.as_fd(), mode, Replace::Any).map_err(|e| {
        io_err(
            format!(
                "attach the XDP_PASS placeholder on ifindex {ifindex} ({} mode)",
                mode.as_str()
            ),
            e,
        )
    })
}
