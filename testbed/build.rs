//! Compiles the lab's XDP programs (`src/bpf/*.bpf.c`) into libbpf-rs
//! skeletons in `OUT_DIR` (see the `bpf-build` crate).

fn main() -> bpf_build::Result<()> {
    bpf_build::skeletons_in("src/bpf")?;
    Ok(())
}
