//! Compiles every `src/bpf/*.bpf.c` into a libbpf-rs skeleton `OUT_DIR/<name>.skel.rs` (see
//! the `bpf-build` crate), and the host shim (`src/shim/shim.c`, the same `logic.h`) into a
//! static library with `cc`.

fn main() -> bpf_build::Result<()> {
    bpf_build::skeletons_in("src/bpf")?;
    println!("cargo:rerun-if-changed=src/shim");
    println!("cargo:rerun-if-changed=src/shim/shim.c");
    let mut shim = cc::Build::new();
    shim.compiler("clang")
        .file("src/shim/shim.c")
        .include("src/bpf")
        .opt_level(2)
        .warnings(true);
    if let Some(inc) = bpf_build::multiarch_include()? {
        shim.include(inc);
    }
    shim.try_compile("dut_shim")?;
    Ok(())
}
