//! Locating the workspace's binaries (`gen`, `dut`, `tstamp`, `sink`, `lab`)
//! and other programs, for the tests that run them and for `lab`'s runner.
//!
//! A workspace binary is looked up next to the running executable first (so
//! `target/<profile>/lab` uses `target/<profile>/gen`; a test executable in
//! `target/<profile>/deps/` looks one directory up), then on `PATH`. A missing
//! binary is one line naming it and how to build it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where a workspace binary is: next to the current executable (or one
/// directory up from `deps/`), else on PATH.
pub fn locate(name: &str) -> Result<PathBuf> {
    if let Some(p) = beside_exe(name) {
        return Ok(p);
    }
    if let Some(p) = on_path(name) {
        return Ok(p);
    }
    let here = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .map_or_else(
            || "this executable's directory".to_owned(),
            |d| d.display().to_string(),
        );
    Err(Error::NoBinary {
        name: name.to_owned(),
        dir: here,
    })
}

/// A binary in the current executable's directory (or its parent when that
/// is `deps/`, as for test executables).
pub fn beside_exe(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir.file_name().is_some_and(|d| d == "deps") {
        dir = dir.parent()?.to_path_buf();
    }
    let p = dir.join(name);
    is_executable(&p).then_some(p)
}

/// A program on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_one_line_saying_how_to_build_it() {
        let e = locate("no-such-tool-xyz")
            .expect_err("no such binary")
            .to_string();
        assert!(e.contains("`no-such-tool-xyz` not found"), "{e}");
        assert!(e.contains("cargo build --release --workspace"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn programs_on_path_are_found() {
        assert!(on_path("sh").is_some());
        assert!(locate("sh").is_ok());
    }
}
