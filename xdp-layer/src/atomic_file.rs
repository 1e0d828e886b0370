//! Output files that appear whole or not at all. The data goes into an unnamed file
//! (`O_TMPFILE`) in the destination's directory; [`AtomicFile::commit`] syncs it and
//! only then gives it its name (`linkat` through `/proc/self/fd`). A writer that fails,
//! exits early or is killed at any moment before that leaves no name at all: the kernel
//! frees the unnamed file with its last descriptor. Used for the tools' outputs (pcapng,
//! HDR logs, CSV, SVG) and for [`crate::owner`] records.
//!
//! Replacing an existing file takes one more step: the data is linked under a temporary
//! name `.NAME.tmp-PID-START-PIDNS-N` beside it and renamed over it (a rename is
//! atomic; a link cannot replace). On file systems without `O_TMPFILE` the data is
//! written under that temporary name from the start. A process killed while such a
//! name exists leaves it behind, so [`AtomicFile::create`] removes the temporaries of
//! the same destination whose writer is provably gone: same pid namespace, and no
//! live process with that pid and start time.
//!
//! The test hook point [`HOOK_POINT`] lies between the synced data and the name.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{hook, owner};

/// The test hook point ([`crate::hook`]) in [`AtomicFile::commit`]: the data is
/// written and synced, the file has no name yet.
pub const HOOK_POINT: &str = "output-before-visible";

/// A file that gets its name only on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    file: Option<BufWriter<File>>,
    /// The temporary name of the data when the file system has no `O_TMPFILE`
    /// (removed on drop); `None`: the data has no name.
    named: Option<PathBuf>,
}

impl AtomicFile {
    /// Creates the (unnamed) file now, so an unwritable destination fails before any
    /// work; removes the temporaries that dead writers of `dest` left.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        AtomicFile::create_with(dest, true)
    }

    fn create_with(dest: &Path, unnamed: bool) -> io::Result<AtomicFile> {
        let (dir, name) = split(dest)?;
        remove_stale(&dir, &name);
        let tmpfile = if unnamed {
            OpenOptions::new()
                .write(true)
                .mode(0o666)
                .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
                .open(&dir)
        } else {
            Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        };
        let (file, named) = match tmpfile {
            Ok(f) => (f, None),
            // No O_TMPFILE on this file system (EOPNOTSUPP) or kernel (EISDIR, EINVAL).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                let tmp = dir.join(temp_name(&name));
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o666)
                    .open(&tmp)?;
                (f, Some(tmp))
            }
            Err(e) => return Err(e),
        };
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            file: Some(BufWriter::new(file)),
            named,
        })
    }

    /// The writer (panics after [`AtomicFile::commit`], which consumes `self`, so never).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// Flushes, syncs and gives the file its name, replacing what had it.
    pub fn commit(mut self) -> io::Result<()> {
        let w = self.file.take().expect("AtomicFile committed twice");
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        hook::point(HOOK_POINT);
        match self.named.take() {
            Some(tmp) => rename_or_remove(&tmp, &self.dest),
            None => link_into_place(&f, &self.dest),
        }
    }
}

/// Writes `bytes` to `dest` through an [`AtomicFile`].
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut a = AtomicFile::create(dest)?;
    a.writer().write_all(bytes)?;
    a.commit()
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.named {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The destination's directory (`.` for a bare name) and file name.
fn split(dest: &Path) -> io::Result<(PathBuf, String)> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", dest.display()),
            )
        })?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// `.NAME.tmp-PID-START-PIDNS-N`: this process (pid, start time, pid namespace, so a
/// later run can tell whether it is gone) and a sequence number within it.
fn temp_name(name: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let start = owner::start_time_of_live(pid).unwrap_or(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.tmp-{pid}-{start}-{}-{n}", owner::pid_namespace())
}

/// Removes `dir/.NAME.tmp-*` files whose writer is provably dead: recorded in this
/// pid namespace, and no live process has that pid with that start time. Best effort:
/// what cannot be read or proven is left alone.
fn remove_stale(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let ns = owner::pid_namespace();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(id) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let fields: Vec<u64> = id.split('-').filter_map(|x| x.parse().ok()).collect();
        let &[pid, start, pidns, _seq] = fields.as_slice() else {
            continue;
        };
        let Ok(pid) = u32::try_from(pid) else {
            continue;
        };
        if ns == 0 || pidns != ns || owner::start_time_of_live(pid) == Some(start) {
            continue;
        }
        let _ = std::fs::remove_file(e.path());
    }
}

fn rename_or_remove(tmp: &Path, dest: &Path) -> io::Result<()> {
    std::fs::rename(tmp, dest).inspect_err(|_| {
        let _ = std::fs::remove_file(tmp);
    })
}

/// Names the unnamed file `f` `dest`: a link if `dest` does not exist, else a link
/// under a temporary name renamed over it.
fn link_into_place(f: &File, dest: &Path) -> io::Result<()> {
    match link(f, dest) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let (dir, name) = split(dest)?;
            let tmp = dir.join(temp_name(&name));
            link(f, &tmp)?;
            rename_or_remove(&tmp, dest)
        }
        r => r,
    }
}

/// `linkat` of an `O_TMPFILE` file to `to`, through `/proc/self/fd` (any user), or
/// with `AT_EMPTY_PATH` (needs CAP_DAC_READ_SEARCH) where /proc is not mounted.
fn link(f: &File, to: &Path) -> io::Result<()> {
    let to_c = CString::new(to.as_os_str().as_bytes())?;
    let fd_path = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    // SAFETY: both paths are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            fd_path.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOENT) || Path::new("/proc/self/fd").exists() {
        return Err(e);
    }
    // SAFETY: `f` is an open descriptor, the empty path and `to_c` are valid strings.
    let rc = unsafe {
        libc::linkat(
            f.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_file_appears_only_on_commit_and_has_no_name_before() {
        for unnamed in [true, false] {
            let d = tempfile::tempdir().expect("tempdir");
            let dest = d.path().join("x.csv");
            {
                let mut a = AtomicFile::create_with(&dest, unnamed).expect("create");
                writeln!(a.writer(), "half").expect("write");
                a.writer().flush().expect("flush");
                // O_TMPFILE: nothing in the directory at all while writing.
                assert_eq!(names(d.path()).is_empty(), unnamed, "{unnamed}");
            }
            assert!(!dest.exists());
            assert_eq!(names(d.path()), Vec::<String>::new(), "nothing left");
            let mut a = AtomicFile::create_with(&dest, unnamed).expect("create");
            writeln!(a.writer(), "whole").expect("write");
            a.commit().expect("commit");
            assert_eq!(std::fs::read_to_string(&dest).expect("read"), "whole\n");
            assert_eq!(names(d.path()), ["x.csv"]);
        }
    }

    #[test]
    fn an_existing_file_is_replaced_whole() {
        for unnamed in [true, false] {
            let d = tempfile::tempdir().expect("tempdir");
            let dest = d.path().join("x.csv");
            std::fs::write(&dest, "old\n").expect("old");
            let mut a = AtomicFile::create_with(&dest, unnamed).expect("create");
            writeln!(a.writer(), "new").expect("write");
            assert_eq!(std::fs::read_to_string(&dest).expect("read"), "old\n");
            a.commit().expect("commit");
            assert_eq!(std::fs::read_to_string(&dest).expect("read"), "new\n");
            assert_eq!(names(d.path()), ["x.csv"]);
        }
        // A bare name is in the current directory; a directory is no file.
        let e = AtomicFile::create(Path::new("/")).expect_err("no file name");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_others_kept() {
        let d = tempfile::tempdir().expect("tempdir");
        let dest = d.path().join("out.svg");
        let me = std::process::id();
        let start = owner::start_time_of_live(me).expect("my start time");
        let ns = owner::pid_namespace();
        // A child that has exited and been collected: provably gone.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        let dead_start = start + 1;
        let stale = [
            format!(".out.svg.tmp-{dead}-{dead_start}-{ns}-0"),
            // This pid, another start time: an earlier process with the same pid.
            format!(".out.svg.tmp-{me}-{}-{ns}-3", start + 1),
        ];
        let kept = [
            // This very process: alive.
            format!(".out.svg.tmp-{me}-{start}-{ns}-7"),
            // Another pid namespace: cannot be proven dead.
            format!(".out.svg.tmp-{dead}-{dead_start}-{}-0", ns + 1),
            // Another destination's, and not a temporary at all.
            format!(".other.svg.tmp-{dead}-{dead_start}-{ns}-0"),
            ".out.svg.tmp-garbage".to_owned(),
            "out.svg.bak".to_owned(),
        ];
        for n in stale.iter().chain(&kept) {
            std::fs::write(d.path().join(n), "x").expect("plant");
        }
        let a = AtomicFile::create(&dest).expect("create");
        let mut want: Vec<String> = kept.to_vec();
        want.sort();
        assert_eq!(names(d.path()), want);
        drop(a);
    }
}
