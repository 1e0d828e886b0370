//! Crash-safe ownership of XDP attachments: who attached what, for how long, and
//! how a dead run's leftover (an *orphan*) is told from a live foreign program.
//!
//! # The mechanism, and why
//!
//! Every attachment a tool makes through [`crate::attach::XdpGuard`] (and every
//! `dut install`) has a record, one small JSON file per interface:
//! `/run/xdp-measure/owners/<netns cookie>-<ifindex>.json`, holding the owner
//! (pid, the process's start time from `/proc/PID/stat` field 22, the boot id from
//! `/proc/sys/kernel/random/boot_id`, its `comm`), the [`Scope`], the attached
//! program's id, name and mode, and what goes back when it is removed.
//!
//! * **Process-scoped** (gen, sink, tstamp, `dut --foreground` and the user-space
//!   point, `lab run`/`demo` children, tests): the attachment lives as long as the
//!   process. If the owner is gone (no such pid, a zombie, a pid reused by a process
//!   with another start time, or another boot) and the program the record names is the
//!   one attached, it is an orphan: any tool takes it over without `--force`, and
//!   `dut remove` removes it, putting back the placeholder.
//! * **Persistent** (`dut install`, the lab's placeholders): meant to outlive the
//!   process, never reaped; replaced only with `--force`.
//!
//! Why files under /run keyed by netns cookie, rather than the alternatives:
//! * *bpf_link ownership* (the kernel detaches when the last fd closes) would make
//!   orphans impossible, but a link cannot replace a netlink-attached program (the
//!   lab's placeholder, `ip link set xdp`, `dut install`), and a link going away
//!   leaves the interface with *no* program: veth then drops XDP_TX frames from its
//!   peer. We need "put the placeholder back", which only a survivor can do.
//! * *Pins in bpffs* are invisible under `ip netns exec` (fresh /sys, no bpffs).
//!   /run is the host's and the tools enter namespaces with `setns`, so every tool
//!   sees the same directory whatever namespace it works in.
//! * *Metadata in the program* (a map naming the owner) would need our own program
//!   on every attachment; records work for any program, foreign ones included.
//! * The netns *cookie* (`SO_NETNS_COOKIE`) is never reused within a boot (unlike
//!   the namespace inode), and /run is a tmpfs that a reboot empties; the boot id
//!   guards against a /run that is not.
//!
//! Invariants:
//! * A record is trusted only while the program attached on its interface has the
//!   record's program id (ids are not reused within a boot). A record left by a
//!   run killed before its attach, or after its restore, names a program that is
//!   not attached, and is ignored.
//! * The record is written (temp file + rename, so never half-written) *before*
//!   the attach: there is no instant where our program is attached without it.
//! * Unknown programs (no trusted record) are foreign: refused without `--force`.
//! * An owner recorded in another pid namespace (a container sharing /run) cannot
//!   be checked and counts as alive: nothing is reaped by mistake.
//!
//! Limits: a record whose namespace was deleted while its program was attached
//! (a killed run, a `dut install` in a lab that was torn down) stays until reboot;
//! it is a few hundred bytes of tmpfs and, its program id never being attached
//! again, never trusted.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attach::{XdpMode, prog_fd, prog_info_fd};
use crate::error::{Result, io_err};
use crate::placeholder::PLACEHOLDER_PROG;

/// The directory of the records (root-owned; the tools run as root).
pub const OWNER_DIR: &str = "/run/xdp-measure/owners";

/// How long an attachment is meant to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// As long as the owning process; an orphan once it is gone.
    Process,
    /// Until removed (`dut remove`); never reaped.
    Persistent,
}

/// A process, identified so that a reused pid does not pass for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The process's name (`comm`), for messages (empty in records that predate
    /// it, such as the lab's older owner records).
    #[serde(default)]
    pub comm: String,
    /// Inode of the pid namespace the pid is meaningful in (the recording
    /// process's `/proc/self/ns/pid`; 0 in records that predate it).
    #[serde(default)]
    pub pid_ns: u64,
}

/// What `/proc/PID/stat` says of a process.
struct Stat {
    comm: String,
    /// Field 3: R, S, D, Z (zombie: dead, not yet collected), X, ...
    state: char,
    /// Field 22.
    start_time: u64,
}

/// `/proc/PID/stat` of `pid` split into the command name and the fields after it;
/// None if there is no such process.
fn read_stat(pid: u32) -> Option<(String, Vec<String>)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// (command name, the fields after it) of a `/proc/PID/stat` text (this
/// machine's, or another host's read over ssh).
pub fn parse_stat(s: &str) -> Option<(String, Vec<String>)> {
    // "PID (COMM) STATE ..." where COMM may hold spaces and parentheses: split at
    // the last ')'; the fields after it start with field 3 (state).
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let fields = s
        .get(close + 1..)?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Some((comm, fields))
}

/// The fields of `/proc/PID/stat` after the parenthesised command name: field N
/// (1-based, as in proc(5)) is at index N - 3. None if there is no such process.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    read_stat(pid).map(|(_, fields)| fields)
}

/// `/proc/PID/stat` of `pid`; None if there is no such process.
fn stat_of(pid: u32) -> Option<Stat> {
    let (comm, fields) = read_stat(pid)?;
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat {
        comm,
        state,
        start_time,
    })
}

/// Start time (`/proc/PID/stat` field 22) of a running process `pid`; None if there is
/// none or it is a zombie (dead, not yet collected). With the pid namespace, what
/// identifies a process across pid reuse (as [`Owner::alive`] does).
pub(crate) fn start_time_of_live(pid: u32) -> Option<u64> {
    stat_of(pid)
        .filter(|st| !matches!(st.state, 'Z' | 'X'))
        .map(|st| st.start_time)
}

/// Inode of this process's pid namespace (`/proc/self/ns/pid`; 0 if unreadable).
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Owner {
    /// This process.
    pub fn current() -> Result<Owner> {
        Owner::of(std::process::id())
    }

    /// Process `pid` (e.g. `lab run`, on whose behalf `dut install --owner-pid`
    /// attaches), identified by its start time now.
    pub fn of(pid: u32) -> Result<Owner> {
        let st = stat_of(pid).ok_or_else(|| {
            io_err(
                format!("read /proc/{pid}/stat (no such process?)"),
                io::Error::from(io::ErrorKind::NotFound),
            )
        })?;
        Ok(Owner {
            pid,
            start_time: st.start_time,
            boot_id: boot_id(),
            comm: st.comm,
            pid_ns: pid_namespace(),
        })
    }

    /// Whether this process still runs: same boot, and a process with this pid
    /// and start time exists that is not a zombie (killed, not yet collected by
    /// its parent: gone as far as its attachments go). From another pid namespace
    /// (a container sharing /run) the pid cannot be checked: the owner counts as
    /// alive, so nothing is reaped by mistake.
    pub fn alive(&self) -> bool {
        if self.boot_id != boot_id() {
            return false;
        }
        if self.pid_ns != 0 && self.pid_ns != pid_namespace() {
            return true;
        }
        start_time_of_live(self.pid) == Some(self.start_time)
    }
}

/// A program to put back, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrevProg {
    /// Its id when it was replaced.
    pub id: u32,
    /// Its BPF name.
    pub name: String,
    /// The mode it was attached in.
    pub mode: XdpMode,
}

impl PrevProg {
    /// A new fd of this program if it still exists (something else holds it) and
    /// still has its name.
    pub fn obtain(&self) -> Option<(std::os::fd::OwnedFd, &PrevProg)> {
        if self.id == 0 {
            return None;
        }
        let fd = prog_fd(self.id).ok()?;
        let info = prog_info_fd(std::os::fd::AsFd::as_fd(&fd)).ok()?;
        (info.name == self.name).then_some((fd, self))
    }
}

/// One interface's ownership record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Format version.
    pub version: u32,
    /// Who attached.
    pub owner: Owner,
    /// For how long.
    pub scope: Scope,
    /// `SO_NETNS_COOKIE` of the interface's namespace.
    pub netns_cookie: u64,
    /// Interface index.
    pub ifindex: u32,
    /// Interface name (for messages).
    pub iface: String,
    /// The attached program: the record is trusted only while this id is attached.
    pub prog_id: u32,
    /// Its BPF name.
    pub prog_name: String,
    /// Its mode.
    pub mode: XdpMode,
    /// What the owner puts back on a clean exit.
    pub previous: Option<PrevProg>,
    /// The mode of the placeholder under the stack of replacements, if there was one
    /// (what `dut remove` and orphan take-overs put back).
    pub placeholder_mode: Option<XdpMode>,
}

/// Path of the record of `ifindex` in the calling thread's namespace.
pub fn record_path(ifindex: u32) -> Result<PathBuf> {
    Ok(Path::new(OWNER_DIR).join(format!("{}-{ifindex}.json", crate::netns::cookie()?)))
}

impl Record {
    /// A record owned by `owner`, for `ifindex` of the calling thread's namespace.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        owner: Owner,
        scope: Scope,
        ifindex: u32,
        iface: &str,
        prog_id: u32,
        prog_name: &str,
        mode: XdpMode,
        previous: Option<PrevProg>,
        placeholder_mode: Option<XdpMode>,
    ) -> Result<Record> {
        Ok(Record {
            version: 1,
            owner,
            scope,
            netns_cookie: crate::netns::cookie()?,
            ifindex,
            iface: iface.into(),
            prog_id,
            prog_name: prog_name.into(),
            mode,
            previous,
            placeholder_mode,
        })
    }

    /// Writes the record (temp file + rename); returns its path.
    pub fn write(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(OWNER_DIR)
            .map_err(|e| io_err(format!("create {OWNER_DIR} (are you root?)"), e))?;
        let path =
            Path::new(OWNER_DIR).join(format!("{}-{}.json", self.netns_cookie, self.ifindex));
        let text = serde_json::to_string(self)
            .map_err(|e| io_err("encode the ownership record", io::Error::other(e)))?;
        crate::atomic_file::write(&path, text.as_bytes())
            .map_err(|e| io_err(format!("write the ownership record {}", path.display()), e))?;
        Ok(path)
    }

    /// The record of `ifindex` (calling thread's namespace), if any and readable.
    pub fn read(ifindex: u32) -> Option<Record> {
        let path = record_path(ifindex).ok()?;
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Process-scoped and its owner gone.
    pub fn orphaned(&self) -> bool {
        self.scope == Scope::Process && !self.owner.alive()
    }
}

/// Removes the record at `path` if it still names program `prog_id` (someone who
/// took the interface over since has written their own).
pub fn remove_if_names(path: &Path, prog_id: u32) {
    let names_it = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<Record>(&s).ok())
        .is_some_and(|r| r.prog_id == prog_id);
    if names_it {
        let _ = std::fs::remove_file(path);
    }
}

/// What holds an attached program, by its record.
#[derive(Debug, Clone)]
pub enum Claim {
    /// The placeholder (`xdp_pass`): anyone may replace it.
    Placeholder,
    /// Left by a process-scoped owner that is gone: anyone may take it over.
    Orphan(Record),
    /// Held by a live process.
    Live(Record),
    /// A persistent installation.
    Persistent(Record),
    /// No record names it: someone else's.
    Unrecorded,
}

impl Claim {
    /// Replaceable without `--force`.
    pub fn replaceable(&self) -> bool {
        matches!(self, Claim::Placeholder | Claim::Orphan(_))
    }

    /// `placeholder`, `orphan`, `live`, `persistent` or `unrecorded`.
    pub fn kind(&self) -> &'static str {
        match self {
            Claim::Placeholder => "placeholder",
            Claim::Orphan(_) => "orphan",
            Claim::Live(_) => "live",
            Claim::Persistent(_) => "persistent",
            Claim::Unrecorded => "unrecorded",
        }
    }

    /// The trusted record behind the claim, if any.
    pub fn record(&self) -> Option<&Record> {
        match self {
            Claim::Orphan(r) | Claim::Live(r) | Claim::Persistent(r) => Some(r),
            Claim::Placeholder | Claim::Unrecorded => None,
        }
    }

    /// For messages: `" (held by gen, pid 12, still running)"` and the like.
    pub fn describe(&self) -> String {
        match self {
            Claim::Placeholder => " (the placeholder)".into(),
            Claim::Orphan(r) => format!(
                " (left by {}, pid {}, which is gone)",
                r.owner.comm, r.owner.pid
            ),
            Claim::Live(r) => format!(
                " (held by {}, pid {}, still running)",
                r.owner.comm, r.owner.pid
            ),
            Claim::Persistent(r) => format!(" (installed by {}, persistent)", r.owner.comm),
            Claim::Unrecorded => String::new(),
        }
    }
}

/// Classifies program `(id, name)` attached on `ifindex` (calling thread's namespace).
pub fn classify(ifindex: u32, id: u32, name: &str) -> Claim {
    if name == PLACEHOLDER_PROG {
        return Claim::Placeholder;
    }
    match Record::read(ifindex).filter(|r| r.prog_id == id) {
        None => Claim::Unrecorded,
        Some(r) if r.scope == Scope::Persistent => Claim::Persistent(r),
        Some(r) if r.orphaned() => Claim::Orphan(r),
        Some(r) => Claim::Live(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Owner::current().expect("owner");
        assert!(me.alive());
        let reused = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(!reused.alive(), "a reused pid does not pass for the owner");
        let other_boot = Owner {
            boot_id: "x".into(),
            ..me.clone()
        };
        assert!(!other_boot.alive());
        let elsewhere = Owner {
            pid: u32::MAX,
            pid_ns: me.pid_ns + 1,
            ..me.clone()
        };
        assert!(
            elsewhere.alive(),
            "another pid namespace: cannot tell, so alive"
        );
        let gone = Owner {
            pid: u32::MAX,
            ..me
        };
        assert!(!gone.alive());
    }

    #[test]
    fn a_zombie_owner_is_gone() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        // Not collected: it stays a zombie until wait().
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while stat_of(pid).is_some_and(|st| st.state != 'Z') {
            assert!(std::time::Instant::now() < deadline, "true did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let owner = Owner::of(pid).expect("the zombie's stat");
        assert!(!owner.alive());
        child.wait().expect("collect true");
    }

    #[test]
    fn records_without_comm_still_parse() {
        let me = Owner::current().expect("owner");
        let mut v = serde_json::to_value(&me).expect("to json");
        v.as_object_mut().expect("object").remove("comm");
        let back: Owner = serde_json::from_value(v).expect("from json");
        assert_eq!(back.comm, "");
        assert_eq!(back.pid, me.pid);
        assert_eq!(
            stat_fields(me.pid).expect("fields")[22 - 3],
            me.start_time.to_string()
        );
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        // Field 22 of a real process: positive for anything but the idle task.
        let st = stat_of(std::process::id()).expect("stat");
        assert!(!st.comm.is_empty());
        assert!(st.start_time > 0);
        assert!(matches!(st.state, 'R' | 'S'), "{}", st.state);
        assert!(stat_of(u32::MAX).is_none());
    }

    #[test]
    fn records_are_trusted_only_for_their_program_and_classified_by_owner() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: writes under {OWNER_DIR}, needs root");
            return;
        }
        // An ifindex no interface has here, so no tool's record is touched.
        let idx = 0x7fff_0000 + (std::process::id() & 0xffff);
        let mut r = Record::new(
            Owner::current().expect("owner"),
            Scope::Process,
            idx,
            "none0",
            4242,
            "xsk_redirect",
            XdpMode::Native,
            None,
            Some(XdpMode::Native),
        )
        .expect("record");
        let path = r.write().expect("write");
        assert!(matches!(
            classify(idx, 4242, "xsk_redirect"),
            Claim::Live(_)
        ));
        assert!(
            matches!(classify(idx, 4243, "xsk_redirect"), Claim::Unrecorded),
            "another program: not trusted"
        );
        assert!(matches!(
            classify(idx, 4242, PLACEHOLDER_PROG),
            Claim::Placeholder
        ));
        r.owner.start_time += 1;
        r.write().expect("write");
        let Claim::Orphan(o) = classify(idx, 4242, "xsk_redirect") else {
            panic!("a process-scoped record of a gone owner is an orphan")
        };
        assert_eq!(o.placeholder_mode, Some(XdpMode::Native));
        r.scope = Scope::Persistent;
        r.write().expect("write");
        assert!(
            matches!(classify(idx, 4242, "xsk_redirect"), Claim::Persistent(_)),
            "never reaped"
        );
        remove_if_names(&path, 4243);
        assert!(path.exists(), "a record naming another program stays");
        remove_if_names(&path, 4242);
        assert!(!path.exists());
    }

    #[test]
    fn a_dead_child_is_an_orphan_owner() {
        let mut c = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let o = Owner::of(c.id()).expect("owner");
        assert!(o.alive());
        c.kill().expect("kill");
        // Killed but not collected: a zombie, gone as far as ownership goes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while o.alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!o.alive(), "a zombie is not an owner");
        c.wait().expect("wait");
        assert!(!o.alive());
        let elsewhere = Owner {
            pid_ns: o.pid_ns + 1,
            ..o.clone()
        };
        assert!(
            elsewhere.alive(),
            "from another pid namespace, never reaped"
        );
    }
}
