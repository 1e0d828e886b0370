//! Compiles the lab's XDP programs (`src/bpf/*.bpf.c`) into libbpf-rs
//! skeletons in `OUT_DIR`.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// Programs to build: `src/bpf/<name>.bpf.c` -> `$OUT_DIR/<name>.skel.rs`.
const PROGRAMS: &[&str] = &["pass", "reflect"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Wall", "-O2"])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
}
