//! The testbed's XDP programs and how they are attached, on the shared XDP layer
//! (`xdplayer`): the placeholder is `xdplayer::placeholder`'s one `xdp_pass`, and
//! every attach, detach and query goes through `xdplayer::attach`.
//!
//! Every veth end of a lab carries the XDP_PASS placeholder in native (driver)
//! mode: veth silently drops XDP_TX'd or redirected frames unless the receiving
//! end has an XDP program, and the program also makes the receiving veth run in
//! NAPI mode so that frames become skbs the switch's tc filters see. Attachment
//! goes through netlink, so it outlives this process for as long as the interface
//! exists (the placeholder is persistent by nature and needs no ownership record:
//! every tool may replace it); a tool that installs its own program puts the
//! placeholder back, and a tool killed before it could is recognised as an orphan
//! by the next run (see `xdplayer::owner`).
//!
//! [`attach_reflect`] is a test fixture: a DUT that swaps the Ethernet
//! addresses of every frame and sends it back with XDP_TX. It carries no
//! ownership record, so to every tool it is a live foreign program.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use xdplayer::attach::{Replace, XdpMode, xdp_attach, xdp_detach, xdp_query};

use crate::error::{Error, Result};
use crate::host::run_in_netns;

mod reflect_skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/reflect.skel.rs"));
}

use reflect_skel::ReflectSkelBuilder;

fn bpf_err(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
    let what = what.into();
    move |source| Error::Bpf { what, source }
}

fn layer_err(what: impl Into<String>) -> impl FnOnce(xdplayer::Error) -> Error {
    let what = what.into();
    move |source| Error::Layer { what, source }
}

/// Attaches the program `prog` in native (driver) mode to `iface` in
/// namespace `netns`, replacing whatever XDP program is there. The
/// attachment stays after `prog`'s fd is closed.
pub fn attach_xdp_fd(netns: &str, iface: &str, prog: BorrowedFd<'_>) -> Result<()> {
    let ifindex = crate::host::ifindex_in(netns, iface)?;
    run_in_netns(netns, || {
        xdp_attach(ifindex, prog, XdpMode::Native, Replace::Any)
    })?
    .map_err(|source| Error::Io {
        what: format!("attach XDP program (driver mode) on {iface} in namespace {netns}"),
        source,
    })
}

/// Removes the native-mode XDP program from `iface` in `netns`
/// (`ip link set dev IFACE xdpdrv off`).
pub fn detach_xdp(netns: &str, iface: &str) -> Result<()> {
    let ifindex = crate::host::ifindex_in(netns, iface)?;
    run_in_netns(netns, || xdp_detach(ifindex, XdpMode::Native, None))?.map_err(|source| {
        Error::Io {
            what: format!("detach the XDP program (driver mode) from {iface} in namespace {netns}"),
            source,
        }
    })
}

/// Loads the XDP_PASS placeholder and attaches it to `iface` in `netns`
/// (native mode), replacing any XDP program there. Use it to restore a lab
/// port after a tool has installed its own program.
pub fn attach_pass(netns: &str, iface: &str) -> Result<()> {
    attach_pass_many(&[(netns, iface)])
}

/// [`attach_pass`] for several interfaces with one program load.
pub fn attach_pass_many(ports: &[(&str, &str)]) -> Result<()> {
    let fd = xdplayer::placeholder::load().map_err(layer_err("load the XDP_PASS placeholder"))?;
    for (netns, iface) in ports {
        attach_xdp_fd(netns, iface, fd.as_fd())?;
    }
    Ok(())
}

/// Test fixture: loads the reflector (swap Ethernet source and destination,
/// return XDP_TX) and attaches it to `iface` in `netns` in place of the
/// XDP_PASS program. Put XDP_PASS back with [`attach_pass`].
pub fn attach_reflect(netns: &str, iface: &str) -> Result<()> {
    let mut obj = MaybeUninit::uninit();
    let open = ReflectSkelBuilder::default()
        .open(&mut obj)
        .map_err(bpf_err("open reflect program"))?;
    let skel = open.load().map_err(bpf_err("load reflect program"))?;
    attach_xdp_fd(netns, iface, skel.progs.xdp_reflect.as_fd())
}

/// The id of the native-mode XDP program on `iface` in `netns`, if any.
pub fn xdp_prog_id(netns: &str, iface: &str) -> Result<Option<u32>> {
    let ifindex = crate::host::ifindex_in(netns, iface)?;
    let attached = run_in_netns(netns, || xdp_query(ifindex))?.map_err(layer_err(format!(
        "query XDP programs on {iface} in namespace {netns}"
    )))?;
    Ok(Some(attached.native).filter(|&id| id != 0))
}
