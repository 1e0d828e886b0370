//! Who owns a lab, and whether that owner is still there.
//!
//! Every lab built through [`crate::Testbed::up`] has an owner record, a small
//! JSON file `/run/xdp-measure/labs/NAME.json` written atomically
//! (`xdplayer::atomic_file`: temporary name, then rename) *before* the first
//! namespace is created and removed after the last one is deleted. A record
//! names the owning process as the XDP layer's ownership records do
//! ([`xdplayer::owner::Owner`]): by pid, process start time (field 22 of
//! `/proc/PID/stat`, clock ticks since boot) and boot id
//! (`/proc/sys/kernel/random/boot_id`), so a reused pid or a reboot never
//! passes for the owner, and by its pid namespace, so a reader in another one
//! (a container) never takes a live owner for a dead one.
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

/// The owner of a lab: who built it, and for how long the lab is meant to live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process-scoped or persistent.
    pub scope: Scope,
    /// The process that built it (for a persistent lab: informative only).
    #[serde(flatten)]
    pub process: xdplayer::owner::Owner,
    /// Its command line, for people reading `lab status`.
    pub command: String,
}

impl Owner {
    /// This process, with `scope`.
    pub fn current(scope: Scope) -> Result<Owner> {
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let process = xdplayer::owner::Owner::current().map_err(|source| Error::Layer {
            what: "identify this process for the lab's owner record".into(),
            source,
        })?;
        Ok(Owner {
            scope,
            process,
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
    xdplayer::atomic_file::write(&path, &json).map_err(|source| Error::Io {
        what: format!(
            "write the owner record of lab {} ({})",
            r.name,
            path.display()
        ),
        source,
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
        // Temporary files of an unfinished write (`.NAME.json.tmp-PID`) do not
        // end in `.json`: not records.
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
