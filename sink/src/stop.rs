//! The stop flag: Ctrl-C / SIGTERM set it (ctrlc with the termination feature), loops
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
    /// A flag set by Ctrl-C and SIGTERM. Only one handler per process can exist; a second
    /// call returns a flag that only the program sets.
    pub fn on_signals() -> Self {
        let s = Self::new();
        let c = s.clone();
        let _ = ctrlc::set_handler(move || c.set());
        s
    }
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
