//! Who owns a lab, and whether that owner is still there.
//!
//! Every lab built through [`crate::Testbed::up`] has an owner record, a small
//! JSON file `/run/xdp-measure/labs/NAME.json` written atomically (temporary
//! name, then rename) *before* the first namespace is created and removed
//! after the last one is deleted. A record names the owning process by pid,
//! process start time (field 22 of `/proc/PID/stat`, clock ticks since boot)
//! and boot id (`/proc/sys/kernel/random/boot_id`), so a reused pid or a
//! reboot never passes for the owner, and by its pid namespace, so a reader
//! in another one (a container) never takes a live owner for a dead one.
//!
//! Scopes ([`Scope`]): a lab built by `lab run`, `lab demo` or a test is
//! *process-scoped* and is stale once its owner is gone (killed, crashed);
//! `lab up` turns its lab *persistent* ([`crate::Testbed::persist`]), and a
//! persistent lab is never stale. Why a file in `/run` and not a marker in
//! the namespaces: it exists before any namespace does (a kill half-way
//! through `up` still leaves an owned lab), listing every lab reads a
//! directory instead of running a command per namespace, `ip netns exec`
//! (which remounts `/sys` and hides bpffs) leaves `/run` visible, and `/run`
//! is a tmpfs that is emptied at boot together with `/run/netns`.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Topology;
use crate::error::{Error, Result};

/// Directory of the owner records, one `NAME.json` per lab.
pub const RECORD_DIR: &str = "/run/xdp-measure/labs";

/// How long a lab is meant to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// As long as its owning process: stale, and removed by the next
    /// `lab run`, `lab demo` or `lab down --stale`, once the owner is gone.
    Process,
    /// Until `lab down --name NAME` (`lab up`): never reaped.
    Persistent,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Process => "process",
            Scope::Persistent => "persistent",
        })
    }
}

/// A process, identified so that a reused pid does not match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// The boot it ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// Inode of its pid namespace (`/proc/self/ns/pid`): its pid means
    /// something only to readers in the same one.
    #[serde(default)]
    pub pid_ns: u64,
}

impl Process {
    /// This process.
    pub fn current() -> Result<Process> {
        let pid = std::process::id();
        let (_, start_time) = state_and_start(pid).ok_or_else(|| Error::Parse {
            what: format!("/proc/{pid}/stat"),
            detail: "no start time (field 22)".into(),
        })?;
        Ok(Process {
            pid,
            start_time,
            boot_id: boot_id()?,
            pid_ns: pid_namespace()?,
        })
    }

    /// Whether this process still runs: same boot, a process with this pid
    /// and start time exists and it is not a zombie (a killed process that
    /// its parent has not collected yet is gone as far as its labs go). From
    /// another pid namespace (a container sharing the network namespaces)
    /// the pid cannot be checked, and the owner counts as alive.
    pub fn alive(&self) -> bool {
        if boot_id().ok().as_deref() != Some(self.boot_id.as_str()) {
            return false;
        }
        if pid_namespace().ok() != Some(self.pid_ns) {
            return true;
        }
        state_and_start(self.pid)
            .is_some_and(|(state, start)| start == self.start_time && !matches!(state, 'Z' | 'X'))
    }
}

/// The fields of `/proc/PID/stat` after the parenthesised command name:
/// field N (1-based, as in proc(5)) is at index N - 3.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// (state, start time) of process `pid`: fields 3 and 22 of its stat.
fn state_and_start(pid: u32) -> Option<(char, u64)> {
    let f = stat_fields(pid)?;
    let state = f.first()?.chars().next()?;
    let start = f.get(22 - 3)?.parse().ok()?;
    Some((state, start))
}

fn pid_namespace() -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = "/proc/self/ns/pid";
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|source| Error::Io {
            what: format!("stat {path}"),
            source,
        })
}

fn boot_id() -> Result<String> {
    let path = "/proc/sys/kernel/random/boot_id";
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| Error::Io {
            what: format!("read {path}"),
            source,
        })
}

/// The owner of a lab: who built it, and for how long the lab is meant to live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process-scoped or persistent.
    pub scope: Scope,
    /// The process that built it (for a persistent lab: informative only).
    #[serde(flatten)]
    pub process: Process,
    /// Its command line, for people reading `lab status`.
    pub command: String,
}

impl Owner {
    /// This process, with `scope`.
    pub fn current(scope: Scope) -> Result<Owner> {
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Ok(Owner {
            scope,
            process: Process::current()?,
            command: args.join(" "),
        })
    }

    /// A process-scoped lab whose owner is gone.
    pub fn stale(&self) -> bool {
        self.scope == Scope::Process && !self.process.alive()
    }
}

/// The owner record of one lab (`RECORD_DIR/NAME.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Lab name.
    pub name: String,
    /// The topology it was built with.
    pub topology: Topology,
    /// Its owner.
    pub owner: Owner,
}

/// Where lab `name`'s record is.
pub fn record_path(name: &str) -> PathBuf {
    Path::new(RECORD_DIR).join(format!("{name}.json"))
}

/// Writes `r` atomically (a reader sees the old record or the new one).
pub fn write(r: &Record) -> Result<()> {
    let io_err = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(RECORD_DIR).map_err(io_err(format!("create {RECORD_DIR}")))?;
    let path = record_path(&r.name);
    let json = serde_json::to_vec_pretty(r).map_err(|e| Error::Parse {
        what: format!("owner record of lab {}", r.name),
        detail: e.to_string(),
    })?;
    crate::store::write_atomic(&path, &json).map_err(|e| Error::Io {
        what: format!("write the owner record of lab {}", r.name),
        source: io::Error::other(format!("{e:#}")),
    })
}

/// Lab `name`'s record, if it has one.
pub fn read(name: &str) -> Result<Option<Record>> {
    let path = record_path(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                what: format!("read {}", path.display()),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Parse {
            what: path.display().to_string(),
            detail: e.to_string(),
        })
}

/// Removes lab `name`'s record (none there is fine).
pub fn remove(name: &str) -> Result<()> {
    let path = record_path(name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            what: format!("remove {}", path.display()),
            source,
        }),
    }
}

/// The names of all labs that have a record.
pub fn recorded_names() -> Result<Vec<String>> {
    let dir = match std::fs::read_dir(RECORD_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                what: format!("list {RECORD_DIR}"),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|source| Error::Io {
            what: format!("list {RECORD_DIR}"),
            source,
        })?;
        let file = entry.file_name();
        // Temporary files of an unfinished write end in `.tmp~`: not records.
        if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_identity_is_not() {
        let me = Process::current().unwrap();
        assert!(me.alive());
        let reused = Process {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(!reused.alive(), "same pid, other start time");
        let rebooted = Process {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..me.clone()
        };
        assert!(!rebooted.alive(), "other boot");
        let elsewhere = Process {
            pid: u32::MAX,
            pid_ns: me.pid_ns + 1,
            ..me.clone()
        };
        assert!(
            elsewhere.alive(),
            "another pid namespace: cannot tell, so alive"
        );
        let gone = Process {
            pid: u32::MAX,
            ..me
        };
        assert!(!gone.alive());
    }

    #[test]
    fn a_zombie_owner_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not collected: it stays a zombie until wait().
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while state_and_start(pid).is_some_and(|(s, _)| s != 'Z') {
            assert!(std::time::Instant::now() < deadline, "true did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (_, start_time) = state_and_start(pid).unwrap();
        let p = Process {
            pid,
            start_time,
            boot_id: boot_id().unwrap(),
            pid_ns: pid_namespace().unwrap(),
        };
        assert!(!p.alive());
        child.wait().unwrap();
    }

    #[test]
    fn persistent_labs_are_never_stale() {
        let mut o = Owner::current(Scope::Persistent).unwrap();
        o.process.pid = u32::MAX;
        assert!(!o.stale());
        o.scope = Scope::Process;
        assert!(o.stale());
    }

    #[test]
    fn records_round_trip_as_json() {
        let r = Record {
            name: "x".into(),
            topology: Topology::Tenants,
            owner: Owner::current(Scope::Process).unwrap(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["owner"]["scope"], "process");
        assert_eq!(v["owner"]["pid"], std::process::id());
        assert_eq!(v["topology"], "tenants");
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
