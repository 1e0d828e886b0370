//! Test-only abort points for the kill tests (`XDP_MEASURE_TEST_HOOK`).
//!
//! **Not for users.** With `XDP_MEASURE_TEST_HOOK=<point>` in its environment, a
//! tool calls `abort()` (no destructors, no restore: as good as SIGKILL at that
//! exact instant) when it reaches `<point>`:
//!
//! * `after-record-before-attach`: the ownership record is written, our program is
//!   not attached yet (the record names a program that never gets attached, so it
//!   must be ignored).
//! * `after-attach`: our program is attached and recorded, nothing else done.
//! * `mid-restore`: the previous program is back on the interface, the record not
//!   yet removed (a record naming a program no longer attached must be ignored).
//! * `output-before-visible` ([`crate::atomic_file::HOOK_POINT`]): an output file
//!   (or an ownership record) is written and synced but has no name yet, so nothing
//!   may appear at its path nor be left beside it.
//!
//! There is no point "between attach and record" because the record is written
//! *before* the attach (see [`crate::owner`]): that window does not exist.
//! The variable is read once per process; any other value is ignored.

use std::sync::OnceLock;

/// The environment variable.
pub const ENV: &str = "XDP_MEASURE_TEST_HOOK";

/// The abort points.
pub const POINTS: &[&str] = &[
    "after-record-before-attach",
    "after-attach",
    "mid-restore",
    crate::atomic_file::HOOK_POINT,
];

/// Aborts the process if `XDP_MEASURE_TEST_HOOK` names `point`.
pub fn point(point: &'static str) {
    static WANT: OnceLock<Option<String>> = OnceLock::new();
    let want = WANT.get_or_init(|| std::env::var(ENV).ok());
    if want.as_deref() == Some(point) {
        eprintln!("{ENV}={point}: aborting here (test hook)");
        std::process::abort();
    }
}
