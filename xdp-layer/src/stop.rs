//! How every tool stops: Ctrl-C and SIGTERM set one flag (the `ctrlc` crate with
//! its termination feature), and so, with `--stop-on-stdin-eof`
//! (`records::cli::StopOpt`), does the end of standard input. Signals do not
//! cross ssh: a tool run on a remote host over `ssh` stops when its controlling
//! connection goes, because sshd then closes the tool's standard input. The loops
//! check the flag and finish as on Ctrl-C (final record printed, programs
//! removed, files completed).
//!
//! One flag per process: [`flag`] installs the handler once and returns the same
//! flag to every later caller.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static STDIN_EOF: AtomicBool = AtomicBool::new(false);
static FLAG: OnceLock<Result<Arc<AtomicBool>, String>> = OnceLock::new();

/// Whether the end of standard input stops the tool (`--stop-on-stdin-eof`); set it
/// before the first [`flag`].
pub fn stop_on_stdin_eof(on: bool) {
    STDIN_EOF.store(on, Ordering::SeqCst);
}

/// The process's stop flag: set by Ctrl-C and SIGTERM, and by the end of standard
/// input when [`stop_on_stdin_eof`] was set. The first call installs the handler
/// (and starts the thread that reads standard input to its end); later calls
/// return the same flag.
pub fn flag() -> std::io::Result<Arc<AtomicBool>> {
    FLAG.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        ctrlc::set_handler(move || s.store(true, Ordering::SeqCst))
            .map_err(|e| format!("install the Ctrl-C handler: {e}"))?;
        if STDIN_EOF.load(Ordering::SeqCst) {
            let s = stop.clone();
            std::thread::Builder::new()
                .name("stdin-eof".into())
                .spawn(move || {
                    watch(std::io::stdin().lock());
                    s.store(true, Ordering::SeqCst);
                })
                .map_err(|e| format!("start the standard input watcher: {e}"))?;
        }
        Ok(stop)
    })
    .clone()
    .map_err(std::io::Error::other)
}

/// Reads `r` until its end (or an error), discarding what comes.
fn watch(mut r: impl Read) {
    let mut buf = [0u8; 256];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watcher_returns_at_end_of_input_only() {
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let t = std::thread::spawn(move || watch(rx));
        std::io::Write::write_all(&mut tx, b"keep going\n").expect("write");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!t.is_finished(), "stopped before the end of input");
        drop(tx);
        t.join().expect("watcher");
    }
}
