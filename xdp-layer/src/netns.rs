//! Network namespaces: `--netns NAME` entry, the namespace cookie that keys
//! ownership and state records, and running a closure in a saved or named
//! namespace ([`run_in`], [`run_in_named`]).
//!
//! Every tool takes `--netns NAME` and calls [`enter`] first thing in `main`: it
//! moves the calling thread (and so, before any other thread exists, the whole
//! process) into `/run/netns/NAME`, the network namespace only. `ip netns exec`
//! would also remount /sys and hide the host's bpffs; `setns` keeps both.
//!
//! [`cookie`] is `SO_NETNS_COOKIE`: unlike the namespace's inode number, which the
//! kernel hands to a new namespace once the old one is gone, a cookie is never
//! reused within a boot, so a record keyed by it can never be taken for another
//! namespace's.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result, io_err};

/// The path of namespace `name`: `/run/netns/{name}`, or `name` itself when it is a
/// path.
fn path_of(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("/run/netns/{name}")
    }
}

/// An fd of namespace `name` (`/run/netns/{name}`, or `name` itself when it is a
/// path), to enter it later ([`run_in`], [`run_in_named`]).
pub fn open(name: &str) -> Result<OwnedFd> {
    let path = path_of(name);
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(|_| Error::NoSuchNetns {
            name: name.into(),
            path,
        })
}

/// Enters `/run/netns/{name}` (or `name` itself when it is a path) for the calling
/// thread.
pub fn enter(name: &str) -> Result<()> {
    let f = open(name)?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| {
        io_err(
            format!("entering network namespace {name:?} (are you root?)"),
            io::Error::from(e),
        )
    })
}

/// Runs `f` on a new scoped thread that has entered namespace `name` (as
/// [`enter`] names it), so the caller's thread stays where it is, and returns
/// its result; a panic in `f` is propagated to the caller. Only the network
/// namespace changes: the thread shares the process's memory, files and mount
/// namespace (so `/sys/class/net` still shows the caller's namespace; look
/// interfaces up with [`crate::iface`]). A socket opened in `f` keeps its
/// namespace after the thread ends.
pub fn run_in_named<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let ns = open(name)?;
    let joined = std::thread::scope(|s| {
        s.spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                io_err(
                    format!("entering network namespace {name:?} (are you root?)"),
                    io::Error::from(e),
                )
            })?;
            Ok(f())
        })
        .join()
    });
    match joined {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// An fd of the calling thread's network namespace, to come back to it from
/// another thread ([`run_in`]); None where /proc is not mounted.
pub fn current() -> Option<OwnedFd> {
    File::open("/proc/thread-self/ns/net")
        .ok()
        .map(OwnedFd::from)
}

/// Runs `f` on a scoped thread that first enters namespace `ns` (so the caller's
/// thread stays where it is), or on this thread when `ns` is None.
pub fn run_in<T: Send>(
    ns: Option<&OwnedFd>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    match ns {
        None => f(),
        Some(ns) => std::thread::scope(|s| {
            s.spawn(|| {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
        }),
    }
}

/// Cookie of the calling thread's network namespace (`SO_NETNS_COOKIE`, Linux 5.14).
pub fn cookie() -> Result<u64> {
    // SO_NETNS_COOKIE on the generic socket-option table.
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: plain socket(2); the fd is owned right below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_err("socket(AF_UNIX)", io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the option value is written into a local u64 whose size is passed.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io_err(
            "getsockopt(SO_NETNS_COOKIE) (needs Linux 5.14)",
            io::Error::last_os_error(),
        ));
    }
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cookie_is_stable_and_missing_namespaces_are_named() {
        let a = super::cookie().expect("cookie");
        assert_eq!(a, super::cookie().expect("cookie"));
        let e = super::enter("no-such-ns-xyz").expect_err("missing");
        assert!(e.to_string().contains("no-such-ns-xyz"), "{e}");
        let e = super::run_in_named("no-such-ns-xyz", || ()).expect_err("missing");
        assert!(e.to_string().contains("no-such-ns-xyz"), "{e}");
    }

    #[test]
    fn a_closure_runs_in_the_named_namespace_and_its_panic_comes_back() {
        let here = super::cookie().expect("cookie");
        // The calling thread's own namespace, named by path.
        let there = super::run_in_named("/proc/self/ns/net", super::cookie)
            .expect("enter")
            .expect("cookie");
        assert_eq!(here, there);
        let panicked = std::panic::catch_unwind(|| {
            super::run_in_named("/proc/self/ns/net", || panic!("inside"))
        });
        assert!(panicked.is_err(), "the panic is propagated");
    }
}
