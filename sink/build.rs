//! Compiles every `src/bpf/*.bpf.c` into a libbpf-rs skeleton `OUT_DIR/<name>.skel.rs`
//! (see the `bpf-build` crate); none if `src/bpf` does not exist.

fn main() -> bpf_build::Result<()> {
    bpf_build::skeletons_in("src/bpf")?;
    Ok(())
}
