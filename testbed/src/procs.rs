//! The processes inside a lab's namespaces, and ending them: what is left of a
//! stale lab's tools, and the sshd of an SSH lab (`crate::ssh`), before its
//! namespaces are deleted (a process keeps a deleted namespace alive).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::host::NETNS_RUN_DIR;

/// SIGKILLs every process whose network namespace is one of `namespaces`
/// (compared by device and inode) and waits (up to 10 s) until none is left.
pub fn kill_inside(namespaces: &[String]) {
    let ids: Vec<(u64, u64)> = namespaces
        .iter()
        .filter_map(|ns| std::fs::metadata(Path::new(NETNS_RUN_DIR).join(ns)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if ids.is_empty() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let inside = processes_in(&ids);
        if inside.is_empty() || Instant::now() > deadline {
            return;
        }
        sigkill(&inside);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose network namespace (device, inode) is one of `ids`. A
/// zombie has no namespace links left, so it is not listed.
pub fn processes_in(ids: &[(u64, u64)]) -> Vec<u32> {
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
        })
        .collect()
}

/// The processes inside namespace `netns` whose command name (`comm`) is `comm`.
pub fn named_in(netns: &str, comm: &str) -> Vec<u32> {
    let Ok(m) = std::fs::metadata(Path::new(NETNS_RUN_DIR).join(netns)) else {
        return Vec::new();
    };
    processes_in(&[(m.dev(), m.ino())])
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// SIGKILLs the processes inside namespace `netns` named `comm` (all of them:
/// an sshd's listener and its sessions, say).
pub fn kill_inside_named(netns: &str, comm: &str) {
    sigkill(&named_in(netns, comm));
}

fn sigkill(pids: &[u32]) {
    for &pid in pids {
        if let Ok(p) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_in_its_own_namespace() {
        let m = std::fs::metadata("/proc/self/ns/net").unwrap();
        let me = std::process::id();
        assert!(processes_in(&[(m.dev(), m.ino())]).contains(&me));
        assert!(processes_in(&[(0, 0)]).is_empty());
    }
}
