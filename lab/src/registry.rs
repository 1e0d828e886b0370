//! Every lab on the machine, its owner, and the removal of stale ones.
//!
//! A lab is found by its namespaces in `/run/netns` (`NAME-gen` or
//! `NAME-dut`) or by its owner record (see [`testbed::owner`]). A lab is
//! *stale* when its record is process-scoped and its owner is gone; a lab
//! without a record (built by an older `lab`) or a persistent one is never
//! stale. [`reap_stale`] removes stale labs: it kills every process still
//! running inside one of their namespaces (a tool the dead owner started,
//! and whatever that forked), deletes the namespaces and then the record.
//! `lab run` and `lab demo` call it at start; `lab down --stale` on demand.

use serde::Serialize;

use testbed::Result;
use testbed::host::NETNS_RUN_DIR;
use testbed::owner::{self, Owner};
use testbed::{DUT_NS_SUFFIX, GEN_NS_SUFFIX, Topology};

/// One lab in `lab status --json` (without `--name`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LabEntry {
    /// Lab name.
    pub name: String,
    /// Its topology, from its namespaces (or its record while it has none).
    pub topology: Topology,
    /// Its namespaces that exist.
    pub namespaces: Vec<String>,
    /// Its owner; `None` for a lab without a record (never reaped).
    pub owner: Option<Owner>,
    /// A process-scoped lab whose owner is gone.
    pub stale: bool,
    /// Why its record could not be read (the lab is then treated as
    /// unowned: listed, never reaped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_error: Option<String>,
    /// An SSH lab's testbed file (`lab up --topology ssh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub testbed: Option<String>,
}

/// Every lab on the machine, by name.
pub fn list() -> Result<Vec<LabEntry>> {
    let mut names = owner::recorded_names()?;
    if let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) {
        for entry in dir.flatten() {
            let ns = entry.file_name().to_string_lossy().into_owned();
            let lab = ns
                .strip_suffix(GEN_NS_SUFFIX)
                .or_else(|| ns.strip_suffix(DUT_NS_SUFFIX));
            if let Some(lab) = lab.filter(|l| !l.is_empty()) {
                names.push(lab.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut labs = Vec::with_capacity(names.len());
    for name in names {
        let namespaces = testbed::existing_namespaces(&name);
        let (record, record_error) = match owner::read(&name) {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let topology = match (&record, namespaces.is_empty()) {
            (Some(r), true) => r.topology,
            _ => testbed::topology_of(&name, &namespaces),
        };
        let owner = record.map(|r| r.owner);
        let stale = owner.as_ref().is_some_and(Owner::stale);
        let testbed = crate::sshlab::testbed_file_of(&name).map(|p| p.display().to_string());
        labs.push(LabEntry {
            name,
            topology,
            namespaces,
            owner,
            stale,
            record_error,
            testbed,
        });
    }
    Ok(labs)
}

/// Removes every stale lab; returns each one found with the outcome of its
/// removal. A lab whose owner is alive, a persistent lab and a lab without
/// a record are left alone.
pub fn reap_stale() -> Result<Vec<(LabEntry, Result<()>)>> {
    let stale: Vec<LabEntry> = list()?.into_iter().filter(|l| l.stale).collect();
    Ok(stale
        .into_iter()
        .map(|lab| {
            let res = remove(&lab);
            (lab, res)
        })
        .collect())
}

fn remove(lab: &LabEntry) -> Result<()> {
    // Look again right before: the owner cannot come back, but a concurrent
    // reaper may have removed the lab already.
    let namespaces = testbed::existing_namespaces(&lab.name);
    testbed::procs::kill_inside(&namespaces);
    if let Err(e) = testbed::delete_namespaces(&testbed::existing_namespaces(&lab.name)) {
        // Another reaper may have deleted them meanwhile: only what is left counts.
        if !testbed::existing_namespaces(&lab.name).is_empty() {
            return Err(e);
        }
    }
    testbed::ssh::remove_dir(&lab.name)?;
    owner::remove(&lab.name)
}

/// [`reap_stale`] for `lab run` and `lab demo`: one stderr line per stale
/// lab (removed, or why not), prefixed with `who`; never fails the caller.
pub fn reap_and_report(who: &str) {
    match reap_stale() {
        Ok(reaped) => {
            for (lab, res) in reaped {
                match res {
                    Ok(()) => eprintln!("{who}: removed {}", describe(&lab)),
                    Err(e) => eprintln!("{who}: cannot remove {}: {e}", describe(&lab)),
                }
            }
        }
        Err(e) => eprintln!("{who}: cannot look for stale labs: {e}"),
    }
}

/// A table of `labs` for `lab status` without `--name`.
pub fn table(labs: &[LabEntry]) -> String {
    let mut s = format!(
        "{:<16} {:<9} {:<10} {:>8}  {:<5}  namespaces\n",
        "name", "topology", "scope", "owner", "stale"
    );
    for l in labs {
        let (scope, pid) = l
            .owner
            .as_ref()
            .map_or(("-".to_owned(), "-".to_owned()), |o| {
                (o.scope.to_string(), o.process.pid.to_string())
            });
        s.push_str(&format!(
            "{:<16} {:<9} {:<10} {:>8}  {:<5}  {}\n",
            l.name,
            l.topology.to_string(),
            scope,
            pid,
            if l.stale { "yes" } else { "no" },
            l.namespaces.join(" ")
        ));
    }
    s
}

/// One line for a removed (or not removable) stale lab.
pub fn describe(lab: &LabEntry) -> String {
    let owner = lab.owner.as_ref().map_or_else(String::new, |o| {
        format!("; owner pid {} is gone: {}", o.process.pid, o.command)
    });
    let what = if lab.namespaces.is_empty() {
        "no namespace left".to_owned()
    } else {
        lab.namespaces.join(", ")
    };
    format!("stale lab {} ({what}{owner})", lab.name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_record_is_listed_and_not_stale() {
        let name = testbed::unique_name("badrec");
        std::fs::create_dir_all(owner::RECORD_DIR).unwrap();
        std::fs::write(owner::record_path(&name), b"{ not json").unwrap();
        let entry = list().unwrap().into_iter().find(|l| l.name == name);
        owner::remove(&name).unwrap();
        // Not stale, so reap_stale (which takes only stale labs) leaves it.
        let entry = entry.unwrap();
        assert!(entry.record_error.is_some() && entry.owner.is_none() && !entry.stale);
    }
}
