//! Compiles the lab's test-fixture XDP program (`src/bpf/reflect.bpf.c`) into a
//! libbpf-rs skeleton in `OUT_DIR` (the placeholder lives in `xdp-layer`).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// Programs to build: `src/bpf/<name>.bpf.c` -> `$OUT_DIR/<name>.skel.rs`.
const PROGRAMS: &[&str] = &["reflect"];

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
