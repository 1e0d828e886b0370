//! The stop flag: Ctrl-C / SIGTERM set it (`xdplayer::stop`; also the end of standard
//! input with `--stop-on-stdin-eof`), loops
//! check it between batches and finish cleanly, writing everything they have.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cloneable flag set once on Ctrl-C, SIGTERM or by the program itself.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not yet connected to signals.
    pub fn new() -> Self {
        Self::default()
    }
    /// The process's flag set by Ctrl-C and SIGTERM, and with `--stop-on-stdin-eof` by
    /// the end of standard input (`xdplayer::stop`, the one handler of every tool).
    /// Without a handler (it could not be installed) a flag that only the program sets.
    pub fn on_signals() -> Self {
        xdplayer::stop::flag().map(Stop).unwrap_or_default()
    }
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
