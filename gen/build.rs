//! Compiles gen's BPF programs (`src/bpf/*.bpf.c`: the xdp-live sender, the reply
//! counter, the transmit counter) into libbpf-rs skeletons in `OUT_DIR` (see the
//! `bpf-build` crate).

fn main() -> bpf_build::Result<()> {
    bpf_build::skeletons_in("src/bpf")?;
    Ok(())
}
