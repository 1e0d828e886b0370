//! Compiles every `src/bpf/*.bpf.c` (the placeholder `pass` and the AF_XDP redirect
//! program) into a libbpf-rs skeleton `OUT_DIR/<name>.skel.rs` (see the `bpf-build` crate).

fn main() -> bpf_build::Result<()> {
    bpf_build::skeletons_in("src/bpf")?;
    Ok(())
}
