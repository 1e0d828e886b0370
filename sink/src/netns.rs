//! `--netns NAME`: move the calling thread (and so, called first thing in `main`, the
//! whole process) into the network namespace `/run/netns/NAME`, network namespace
//! only, so that the host's bpffs and /sys stay visible (see TEAM.md's pitfall).

use std::fs::File;

use nix::sched::{CloneFlags, setns};

/// Enters `/run/netns/{name}` (or `name` itself when it is a path).
pub fn enter(name: &str) -> Result<(), String> {
    let path = if name.contains('/') {
        name.to_string()
    } else {
        format!("/run/netns/{name}")
    };
    let f = File::open(&path).map_err(|e| format!("network namespace {name:?} ({path}): {e}"))?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("entering network namespace {name:?}: {e} (are you root?)"))
}
