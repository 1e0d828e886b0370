//! Compiles every `src/bpf/*.bpf.c` (the placeholder `pass` and the AF_XDP redirect
//! program) into a libbpf-rs skeleton `OUT_DIR/<name>.skel.rs`.
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    println!("cargo:rerun-if-changed=src/bpf");
    // src/bpf may not exist yet on a branch without BPF programs: nothing to build then.
    let mut entries: Vec<_> = std::fs::read_dir("src/bpf")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        println!("cargo:rerun-if-changed={}", path.display());
        let Some(name) = file.strip_suffix(".bpf.c") else {
            continue;
        };
        SkeletonBuilder::new()
            .source(&path)
            .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Isrc/bpf", "-O2", "-g"])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building BPF program {}: {e:#}", path.display()));
    }
}
