//! The one BPF build step of the workspace, for every crate's `build.rs`.
//!
//! [`skeletons_in`] compiles every `*.bpf.c` of a directory (and [`skeletons`]
//! a given list) into libbpf-rs skeletons `$OUT_DIR/<name>.skel.rs`, with
//! `-O2 -g -Wall`, the source's own directory on the include path (for
//! shared headers such as `wire.h`) and the target's multiarch include
//! directory (`/usr/include/<arch>-<os>-<env>`, where Debian keeps
//! `asm/types.h`), taken from cargo's target configuration rather than
//! assumed to be x86_64. It prints `cargo:rerun-if-changed` for each source,
//! each header beside it and the directory (so a new program is picked up).
//!
//! ```no_run
//! // build.rs
//! fn main() -> bpf_build::Result<()> {
//!     bpf_build::skeletons_in("src/bpf")?;
//!     Ok(())
//! }
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use libbpf_cargo::SkeletonBuilder;

/// What a `build.rs` using this crate returns.
pub type Result<T> = anyhow::Result<T>;

/// Compiles every `*.bpf.c` in `dir` (sorted; none if `dir` does not exist)
/// into `$OUT_DIR/<name>.skel.rs`; returns the skeletons written.
pub fn skeletons_in(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut sources = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let path = e.with_context(|| format!("list {}", dir.display()))?.path();
                if path.to_str().is_some_and(|p| p.ends_with(".bpf.c")) {
                    sources.push(path);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    }
    sources.sort();
    skeletons(&sources)
}

/// Compiles each `<name>.bpf.c` in `sources` into `$OUT_DIR/<name>.skel.rs`;
/// returns the skeletons written.
pub fn skeletons(sources: &[impl AsRef<Path>]) -> Result<Vec<PathBuf>> {
    let out = PathBuf::from(
        std::env::var_os("OUT_DIR").context("OUT_DIR is not set: run from a build script")?,
    );
    let include = multiarch_include()?;
    let mut written = Vec::with_capacity(sources.len());
    for src in sources {
        let src = src.as_ref();
        let Some(name) = src
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".bpf.c"))
        else {
            bail!("{}: not a `<name>.bpf.c` file", src.display());
        };
        let dir = src.parent().unwrap_or(Path::new("."));
        rerun_on_headers(dir)?;
        println!("cargo:rerun-if-changed={}", src.display());
        let mut args = vec![format!("-I{}", dir.display())];
        if let Some(inc) = &include {
            args.push(format!("-I{}", inc.display()));
        }
        args.extend(["-O2", "-g", "-Wall"].map(String::from));
        let skel = out.join(format!("{name}.skel.rs"));
        SkeletonBuilder::new()
            .source(src)
            .clang_args(&args)
            .build_and_generate(&skel)
            .with_context(|| format!("building BPF program {}", src.display()))?;
        written.push(skel);
    }
    Ok(written)
}

/// `cargo:rerun-if-changed` for every `*.h` in `dir`.
fn rerun_on_headers(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))?;
    for e in entries {
        let path = e.with_context(|| format!("list {}", dir.display()))?.path();
        if path.extension().is_some_and(|x| x == "h") {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}

/// The target's multiarch include directory (`/usr/include/x86_64-linux-gnu`,
/// `/usr/include/aarch64-linux-gnu`, ...) from cargo's `CARGO_CFG_TARGET_*`
/// variables, if it exists; a `cargo:warning` when it does not (clang then
/// reports the header it misses, usually `asm/types.h` from `linux-libc-dev`).
pub fn multiarch_include() -> Result<Option<PathBuf>> {
    let var = |k: &str| {
        println!("cargo:rerun-if-env-changed={k}");
        std::env::var(k).with_context(|| format!("{k} is not set: run from a build script"))
    };
    let tuple = multiarch_tuple(
        &var("CARGO_CFG_TARGET_ARCH")?,
        &var("CARGO_CFG_TARGET_OS")?,
        &var("CARGO_CFG_TARGET_ENV")?,
        &std::env::var("CARGO_CFG_TARGET_ABI").unwrap_or_default(),
        &var("CARGO_CFG_TARGET_ENDIAN")?,
    );
    let dir = Path::new("/usr/include").join(&tuple);
    if dir.is_dir() {
        Ok(Some(dir))
    } else {
        println!(
            "cargo:warning={} does not exist: BPF programs may miss asm/types.h (install linux-libc-dev for {tuple})",
            dir.display()
        );
        Ok(None)
    }
}

/// Debian's multiarch tuple for a cargo target: `x86_64-linux-gnu`,
/// `aarch64-linux-gnu`, `i386-linux-gnu`, `arm-linux-gnueabihf`,
/// `powerpc64le-linux-gnu`, `x86_64-linux-musl`, ...
pub fn multiarch_tuple(arch: &str, os: &str, env: &str, abi: &str, endian: &str) -> String {
    let arch = match (arch, endian) {
        ("x86", _) => "i386",
        ("powerpc64", "little") => "powerpc64le",
        (a, _) => a,
    };
    let env = if env.is_empty() { "gnu" } else { env };
    format!("{arch}-{os}-{env}{abi}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_follow_debian_multiarch() {
        let t = |a, e, abi, end| multiarch_tuple(a, "linux", e, abi, end);
        assert_eq!(t("x86_64", "gnu", "", "little"), "x86_64-linux-gnu");
        assert_eq!(t("aarch64", "gnu", "", "little"), "aarch64-linux-gnu");
        assert_eq!(t("x86", "gnu", "", "little"), "i386-linux-gnu");
        assert_eq!(t("arm", "gnu", "eabihf", "little"), "arm-linux-gnueabihf");
        assert_eq!(t("powerpc64", "gnu", "", "little"), "powerpc64le-linux-gnu");
        assert_eq!(t("powerpc64", "gnu", "", "big"), "powerpc64-linux-gnu");
        assert_eq!(t("riscv64", "gnu", "", "little"), "riscv64-linux-gnu");
        assert_eq!(t("x86_64", "musl", "", "little"), "x86_64-linux-musl");
    }
}
