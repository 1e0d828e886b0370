//! XDP attachment: query, attach, replace and detach through netlink
//! (`bpf_xdp_query`/`bpf_xdp_attach`), program info by fd or id, and
//! [`XdpGuard`], the one way a tool takes an interface over and gives it back.
//!
//! Why netlink and not a `bpf_link`: a link cannot replace a program attached
//! through netlink (the lab's placeholder, `ip link set xdp`, another tool's
//! program), and a netlink attachment outlives its loader, which is what the
//! placeholder and `dut install` need. The price is that the kernel does not
//! detach a crashed tool's program; [`crate::owner`] records make that leftover
//! recognisable, and [`XdpGuard::attach`] takes it over without `--force`.
//!
//! [`XdpGuard`] invariants:
//! * Before anything is attached, whatever is on the interface is classified
//!   ([`crate::owner::Claim`]): the placeholder and orphans are replaced silently,
//!   a live foreign program or a persistent installation only with `force`.
//! * The ownership record naming our program id is written *before* the attach,
//!   so there is no instant at which our program is attached without a record.
//! * Replacement is atomic (`XDP_FLAGS_REPLACE` with the fd of the program seen),
//!   so a program attached by someone else in between is never clobbered.
//! * On restore (drop, [`XdpGuard::restore`], unwinding panics) the program to put
//!   back replaces ours atomically; if there was none, ours is detached. An orphan
//!   is never given back: the program that was under it is, when it can still be
//!   had by id, otherwise a freshly loaded placeholder (veth drops XDP_TX frames
//!   towards an interface without an XDP program, so "nothing" is never the
//!   answer when something was there).
//! * Restoring happens in the network namespace the guard was made in, whatever
//!   thread drops it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result, io_err, neg_err};
use crate::owner::{self, Claim, Owner, PrevProg, Record, Scope};
use crate::{hook, iface, netns, placeholder};

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
    /// Native and generic share one slot (they exclude each other); offload has its own.
    fn slot(self) -> u8 {
        u8::from(self == XdpMode::Offload)
    }
}

/// The XDP programs attached to one interface, by mode (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpAttached {
    /// Driver-mode program id.
    pub native: u32,
    /// Generic-mode program id.
    pub generic: u32,
    /// Offloaded program id.
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
    /// The program in the host slot (driver, else generic), if any.
    pub fn host(&self) -> Option<(XdpMode, u32)> {
        self.iter().find(|(m, _)| *m != XdpMode::Offload)
    }
}

/// The XDP programs on `ifindex` (netlink query, calling thread's namespace).
pub fn xdp_query(ifindex: u32) -> Result<XdpAttached> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
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

/// What an attach may replace.
#[derive(Debug, Clone, Copy)]
pub enum Replace<'a> {
    /// Whatever is attached in this mode (or nothing).
    Any,
    /// Only an empty slot (`XDP_FLAGS_UPDATE_IF_NOEXIST`).
    Nothing,
    /// Exactly this program (`XDP_FLAGS_REPLACE`): fails if another is attached.
    Exactly(BorrowedFd<'a>),
}

/// Attaches `prog` to `ifindex` in `mode` (netlink; outlives `prog`'s fd).
pub fn xdp_attach(
    ifindex: u32,
    prog: BorrowedFd<'_>,
    mode: XdpMode,
    replace: Replace<'_>,
) -> io::Result<()> {
    let mut opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _,
        ..Default::default()
    };
    let mut flags = mode.flag();
    match replace {
        Replace::Any => {}
        Replace::Nothing => flags |= libbpf_sys::XDP_FLAGS_UPDATE_IF_NOEXIST,
        Replace::Exactly(old) => {
            flags |= libbpf_sys::XDP_FLAGS_REPLACE;
            opts.old_prog_fd = old.as_raw_fd();
        }
    }
    // SAFETY: plain syscall wrapper with a valid fd and a sized opts struct.
    let ret = unsafe { libbpf_sys::bpf_xdp_attach(ifindex as i32, prog.as_raw_fd(), flags, &opts) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}

/// Detaches the program in `mode` on `ifindex`: with `expected`, only if it is
/// that program.
pub fn xdp_detach(ifindex: u32, mode: XdpMode, expected: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_attach_opts>() as _,
        ..Default::default()
    };
    let mut flags = mode.flag();
    if let Some(fd) = expected {
        flags |= libbpf_sys::XDP_FLAGS_REPLACE;
        opts.old_prog_fd = fd.as_raw_fd();
    }
    // SAFETY: plain syscall wrapper with a sized opts struct.
    let ret = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flags, &opts) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret));
    }
    Ok(())
}

/// A new fd for program `id`.
pub fn prog_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return Err(neg_err(format!("open BPF program id {id}"), fd));
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the tools need to know about a loaded program.
#[derive(Debug, Clone, Default)]
pub struct ProgInfo {
    /// Program id.
    pub id: u32,
    /// BPF name (at most 15 bytes).
    pub name: String,
    /// Ids of its maps.
    pub map_ids: Vec<u32>,
    /// Kernel run-time statistics (with `BPF_ENABLE_STATS`).
    pub run_time_ns: u64,
    /// Runs counted by the kernel (with `BPF_ENABLE_STATS`).
    pub run_cnt: u64,
    /// Device a device-bound program is bound to (0: none).
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
    prog_info_fd(fd.as_fd())
}

/// The XDP program on `iface` (driver or generic mode), if any: (id, name).
pub fn attached_prog(iface: &str) -> Result<Option<(u32, String)>> {
    let idx = iface::ifindex(iface)?;
    let Some((_, id)) = xdp_query(idx)?.host() else {
        return Ok(None);
    };
    Ok(Some((
        id,
        prog_info(id).map(|i| i.name).unwrap_or_else(|_| "?".into()),
    )))
}

/// Whether the program `(id, name)` on `ifindex` may be replaced without
/// `--force`: the placeholder or an orphan. Returns the claim either way; with
/// `force` false, a claim that is not replaceable is an [`Error::Foreign`].
pub fn check_replaceable(
    iface: &str,
    ifindex: u32,
    id: u32,
    name: &str,
    force: bool,
) -> Result<Claim> {
    let claim = owner::classify(ifindex, id, name);
    if !force && !claim.replaceable() {
        return Err(Error::Foreign {
            iface: iface.into(),
            name: name.into(),
            id,
            holder: claim.describe(),
        });
    }
    Ok(claim)
}

/// How [`XdpGuard::attach`] attaches.
#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    /// The owner's pid in the record (None: this process). For a process-scoped
    /// attachment made on behalf of a longer-lived parent (`dut install
    /// --owner-pid`, used by `lab run`), which then stays until that parent is gone.
    pub owner_pid: Option<u32>,
    /// Replace a live foreign program or a persistent installation (put back on restore).
    pub force: bool,
    /// Process-scoped (restored when the guard drops, reaped as an orphan when the
    /// process dies without restoring) or persistent ([`XdpGuard::keep`]).
    pub scope: Scope,
    /// Mode to attach in; None: the mode of the program replaced, else native,
    /// falling back to generic where the driver has no XDP.
    pub mode: Option<XdpMode>,
}

impl Default for AttachOptions {
    fn default() -> AttachOptions {
        AttachOptions {
            owner_pid: None,
            force: false,
            scope: Scope::Process,
            mode: None,
        }
    }
}

/// Holds an interface taken over by [`XdpGuard::attach`]; puts back what was
/// there on drop (see the module docs for the invariants).
#[derive(Debug)]
pub struct XdpGuard {
    iface: String,
    ifindex: u32,
    netns: Option<OwnedFd>,
    ours: OwnedFd,
    ours_id: u32,
    ours_mode: XdpMode,
    /// What goes back on restore: fd, mode, name.
    back: Option<(OwnedFd, XdpMode, String)>,
    record: Option<std::path::PathBuf>,
    done: bool,
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned()
        .map_err(|e| io_err("duplicate program fd", e))
}

impl XdpGuard {
    /// Attaches `prog` to `iface` (calling thread's namespace) after classifying
    /// what is there; writes the ownership record first.
    pub fn attach(iface: &str, prog: BorrowedFd<'_>, opts: &AttachOptions) -> Result<XdpGuard> {
        let idx = iface::ifindex(iface)?;
        let attached = xdp_query(idx)?;
        let want_slot = opts.mode.map_or(0, XdpMode::slot);
        let old = attached.iter().find(|(m, _)| m.slot() == want_slot);
        let ours = dup(prog)?;
        let ours_info = prog_info_fd(ours.as_fd())?;
        // What is replaced (for XDP_FLAGS_REPLACE) and what goes back on restore.
        let mut replaced: Option<(OwnedFd, XdpMode)> = None;
        let mut back: Option<(OwnedFd, XdpMode, String)> = None;
        let mut placeholder_mode = None;
        if let Some((old_mode, old_id)) = old {
            let fd = prog_fd(old_id).map_err(|e| match e {
                Error::Io { source, .. } => io_err(
                    format!("take the XDP program (id {old_id}) on {iface}"),
                    source,
                ),
                e => e,
            })?;
            let name = prog_info_fd(fd.as_fd())?.name;
            match check_replaceable(iface, idx, old_id, &name, opts.force)? {
                Claim::Placeholder => {
                    placeholder_mode = Some(old_mode);
                    back = Some((dup(fd.as_fd())?, old_mode, name));
                }
                Claim::Orphan(rec) => {
                    eprintln!(
                        "note: {iface}: taking over `{name}` (id {old_id}) left by {} (pid {}, exited without restoring)",
                        rec.owner.comm, rec.owner.pid
                    );
                    placeholder_mode = rec.placeholder_mode;
                    back = match rec.previous.as_ref().and_then(PrevProg::obtain) {
                        Some((pfd, p)) => Some((pfd, p.mode, p.name.clone())),
                        None => Some((
                            placeholder::load()?,
                            rec.placeholder_mode.unwrap_or(old_mode),
                            placeholder::PLACEHOLDER_PROG.into(),
                        )),
                    };
                }
                Claim::Live(rec) | Claim::Persistent(rec) => {
                    placeholder_mode = rec.placeholder_mode;
                    back = Some((dup(fd.as_fd())?, old_mode, name));
                }
                Claim::Unrecorded => back = Some((dup(fd.as_fd())?, old_mode, name)),
            }
            replaced = Some((fd, old_mode));
        }
        let owner = match opts.owner_pid {
            Some(pid) => Owner::of(pid)?,
            None => Owner::current()?,
        };
        let record = Record::new(
            owner,
            opts.scope,
            idx,
            iface,
            ours_info.id,
            &ours_info.name,
            opts.mode.or(old.map(|(m, _)| m)).unwrap_or(XdpMode::Native),
            back.as_ref().map(|(fd, mode, name)| PrevProg {
                id: prog_info_fd(fd.as_fd()).map(|i| i.id).unwrap_or(0),
                name: name.clone(),
                mode: *mode,
            }),
            placeholder_mode,
        )?;
        let path = record.write()?;
        hook::point("after-record-before-attach");
        let result = Self::attach_now(iface, idx, ours.as_fd(), opts.mode, replaced.as_ref());
        let ours_mode = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        if ours_mode != record.mode {
            // Generic fallback: say so in the record (the id is what is trusted).
            let mut r = record;
            r.mode = ours_mode;
            r.write()?;
        }
        hook::point("after-attach");
        Ok(XdpGuard {
            iface: iface.into(),
            ifindex: idx,
            netns: netns::current(),
            ours,
            ours_id: ours_info.id,
            ours_mode,
            back,
            record: Some(path),
            done: false,
        })
    }

    fn attach_now(
        iface: &str,
        idx: u32,
        ours: BorrowedFd<'_>,
        mode: Option<XdpMode>,
        replaced: Option<&(OwnedFd, XdpMode)>,
    ) -> Result<XdpMode> {
        let what = |m: XdpMode| format!("attach XDP program on {iface} ({} mode)", m.as_str());
        match (replaced, mode) {
            (Some((ofd, om)), m) if m.is_none_or(|m| m == *om) => {
                xdp_attach(idx, ours, *om, Replace::Exactly(ofd.as_fd()))
                    .map_err(|e| io_err(what(*om), e))?;
                Ok(*om)
            }
            (Some((ofd, om)), Some(m)) => {
                // Native and generic exclude each other: take the old one off first,
                // and put it back if ours cannot go on.
                xdp_detach(idx, *om, Some(ofd.as_fd())).map_err(|e| {
                    io_err(format!("detach the {} program on {iface}", om.as_str()), e)
                })?;
                if let Err(e) = xdp_attach(idx, ours, m, Replace::Nothing) {
                    let _ = xdp_attach(idx, ofd.as_fd(), *om, Replace::Nothing);
                    return Err(io_err(what(m), e));
                }
                Ok(m)
            }
            (None, Some(m)) => {
                xdp_attach(idx, ours, m, Replace::Nothing).map_err(|e| io_err(what(m), e))?;
                Ok(m)
            }
            (_, None) => match xdp_attach(idx, ours, XdpMode::Native, Replace::Nothing) {
                Ok(()) => Ok(XdpMode::Native),
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    xdp_attach(idx, ours, XdpMode::Generic, Replace::Nothing)
                        .map_err(|e| io_err(what(XdpMode::Generic), e))?;
                    Ok(XdpMode::Generic)
                }
                Err(e) => Err(io_err(what(XdpMode::Native), e)),
            },
        }
    }

    /// `"native"` or `"generic"` (or `"offload"`): where our program runs.
    pub fn attach_mode(&self) -> &'static str {
        self.ours_mode.as_str()
    }

    /// Where our program runs.
    pub fn mode(&self) -> XdpMode {
        self.ours_mode
    }

    /// Id of our program.
    pub fn prog_id(&self) -> u32 {
        self.ours_id
    }

    /// Name of the program put back on restore, if any.
    pub fn replaced(&self) -> Option<&str> {
        self.back.as_ref().map(|(_, _, n)| n.as_str())
    }

    /// Leaves our program attached for good (a persistent installation: its
    /// record stays, `dut remove` takes it off). Nothing is restored.
    pub fn keep(mut self) {
        self.done = true;
    }

    fn restore_here(&self) -> io::Result<()> {
        let idx = self.ifindex;
        match &self.back {
            Some((bfd, bm, _)) if *bm == self.ours_mode => {
                xdp_attach(idx, bfd.as_fd(), *bm, Replace::Exactly(self.ours.as_fd()))?
            }
            Some((bfd, bm, _)) => {
                xdp_detach(idx, self.ours_mode, Some(self.ours.as_fd()))?;
                xdp_attach(idx, bfd.as_fd(), *bm, Replace::Nothing)?
            }
            None => xdp_detach(idx, self.ours_mode, Some(self.ours.as_fd()))?,
        }
        hook::point("mid-restore");
        if let Some(p) = &self.record {
            owner::remove_if_names(p, self.ours_id);
        }
        Ok(())
    }

    /// Puts back what was there now (also done by drop).
    pub fn restore(&mut self) -> Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        netns::run_in(self.netns.as_ref(), || self.restore_here()).map_err(|e| {
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
