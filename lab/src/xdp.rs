//! The lab's XDP programs and how they are attached.
//!
//! Every veth end of a lab carries [`attach_pass`]'s XDP_PASS program in
//! native (driver) mode: veth silently drops XDP_TX'd or redirected frames
//! unless the receiving end has an XDP program, and the program also makes
//! the receiving veth run in NAPI mode so that frames become skbs the
//! switch's tc filters see. Attachment goes through netlink
//! (`bpf_xdp_attach`), so it outlives this process for as long as the
//! interface exists; a tool that installs its own program can put the
//! XDP_PASS program back with [`attach_pass`].
//!
//! [`attach_reflect`] is a test fixture: a DUT that swaps the Ethernet
//! addresses of every frame and sends it back with XDP_TX.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Xdp, XdpFlags};

use crate::error::{Error, Result};
use crate::host::run_in_netns;

mod pass_skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/pass.skel.rs"));
}
mod reflect_skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/reflect.skel.rs"));
}

use pass_skel::PassSkelBuilder;
use reflect_skel::ReflectSkelBuilder;

fn bpf_err(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
    let what = what.into();
    move |source| Error::Bpf { what, source }
}

/// Attaches the program `prog` in native (driver) mode to `iface` in
/// namespace `netns`, replacing whatever XDP program is there. The
/// attachment stays after `prog`'s fd is closed.
pub fn attach_xdp_fd(netns: &str, iface: &str, prog: BorrowedFd<'_>) -> Result<()> {
    let ifindex = crate::host::ifindex_in(netns, iface)?;
    let ifindex = i32::try_from(ifindex).map_err(|_| Error::Parse {
        what: format!("ifindex of {iface}"),
        detail: format!("{ifindex} out of range"),
    })?;
    run_in_netns(netns, || Xdp::new(prog).attach(ifindex, XdpFlags::DRV_MODE))?.map_err(bpf_err(
        format!("attach XDP program (driver mode) on {iface} in namespace {netns}"),
    ))
}

/// Removes the native-mode XDP program from `iface` in `netns`
/// (`ip link set dev IFACE xdpdrv off`).
pub fn detach_xdp(netns: &str, iface: &str) -> Result<()> {
    crate::cmd::ip(&["-n", netns, "link", "set", "dev", iface, "xdpdrv", "off"]).map(|_| ())
}

/// Loads the lab's XDP_PASS program and attaches it to `iface` in `netns`
/// (native mode), replacing any XDP program there. Use it to restore a lab
/// port after a tool has installed its own program.
pub fn attach_pass(netns: &str, iface: &str) -> Result<()> {
    attach_pass_many(&[(netns, iface)])
}

/// [`attach_pass`] for several interfaces with one program load.
pub fn attach_pass_many(ports: &[(&str, &str)]) -> Result<()> {
    let mut obj = MaybeUninit::uninit();
    let open = PassSkelBuilder::default()
        .open(&mut obj)
        .map_err(bpf_err("open XDP_PASS program"))?;
    let skel = open.load().map_err(bpf_err("load XDP_PASS program"))?;
    let fd = skel.progs.xdp_pass.as_fd();
    for (netns, iface) in ports {
        attach_xdp_fd(netns, iface, fd)?;
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
    let out = crate::cmd::ip(&["-n", netns, "-j", "-d", "link", "show", "dev", iface])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
        what: format!("`ip -j -d link show dev {iface}` in {netns}"),
        detail: e.to_string(),
    })?;
    let xdp = &v[0]["xdp"];
    Ok(xdp["prog"]["id"]
        .as_u64()
        .or_else(|| xdp["attached"][0]["prog"]["id"].as_u64())
        .and_then(|id| u32::try_from(id).ok()))
}
