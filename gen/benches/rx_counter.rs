//! The reply-counting ceiling: gen_rx's cost per frame in the kernel
//! (BPF_PROG_TEST_RUN, `repeat` runs, the kernel's own mean), for a DNS response,
//! a probe-less UDP frame and ARP (passed), medians of 5 runs. One core counts
//! 1e9 / ns frames per second before the XDP program itself is the limit.
//!
//!     sudo cargo bench -p gen --bench rx_counter

use profiles::{Profile, Template, TemplateOptions};
use xgen::rxcount::RxProgram;

fn median(mut v: Vec<u32>) -> u32 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    if !xgen::net::is_root() {
        anyhow::bail!("run as root (BPF_PROG_TEST_RUN)");
    }
    let p = Profile::load("dns-small")?;
    let mut dns = Template::new(&p, TemplateOptions::default())?
        .frame()
        .to_vec();
    dns[34..36].copy_from_slice(&53u16.to_be_bytes());
    dns[44] |= 0x80;
    dns[45] |= 3;
    let udp = Template::new(
        &Profile::load("min-multi-flow")?,
        TemplateOptions::default(),
    )?
    .frame()
    .to_vec();
    let mut arp = udp.clone();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let prog = RxProgram::load()?;
    println!("frame                     ns/frame (median of 5 x 5M)   ceiling per core");
    for (name, f) in [
        ("DNS response (by RCODE)", &dns),
        ("UDP (counted)", &udp),
        ("ARP (passed)", &arp),
    ] {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(prog.test_run(f, 5_000_000)?.1);
        }
        let ns = median(v);
        println!(
            "{name:<26}{ns:>8}                      {:>8.1} Mpps",
            if ns > 0 {
                1e3 / f64::from(ns)
            } else {
                f64::INFINITY
            }
        );
    }
    Ok(())
}
