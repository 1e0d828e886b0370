//! What gen's end-to-end tests share: a direct lab, running gen in it, its JSON
//! records, and the kernel's own interface counters (`ip -s link`).

#![allow(dead_code)]

use std::process::{Command, Output};

use testbed::{Testbed, Topology, UpOptions};

pub const GEN: &str = env!("CARGO_BIN_EXE_gen");

/// A direct lab with `queues` queues per port, torn down on drop.
pub fn up_with(prefix: &str, queues: u32) -> Testbed {
    Testbed::up(&UpOptions {
        name: testbed::unique_name(prefix),
        topology: Topology::Direct,
        queues,
    })
    .expect("lab up")
}

/// A direct lab with one queue per port.
pub fn up(prefix: &str) -> Testbed {
    up_with(prefix, 1)
}

/// gen on the lab's generator port with `args`.
pub fn gen_cmd(bed: &Testbed, args: &[&str]) -> Command {
    let mut c = Command::new(GEN);
    c.args(["--netns", &bed.generator().netns, "--iface", "gen0"])
        .args(args);
    c
}

pub fn run_gen(bed: &Testbed, args: &[&str]) -> Output {
    gen_cmd(bed, args).output().expect("run gen")
}

pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The one final record of a successful run.
pub fn final_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "gen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = json_lines(out);
    let finals: Vec<_> = recs.iter().filter(|r| r["type"] == "final").collect();
    assert_eq!(finals.len(), 1, "exactly one final record");
    finals[0].clone()
}

/// (packets, bytes) of `dir` ("rx" or "tx") on the host's port, from `ip -s link`.
pub fn link_stats(host: &testbed::Host, dir: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args([
            "-n",
            &host.netns,
            "-j",
            "-s",
            "link",
            "show",
            "dev",
            &host.iface,
        ])
        .output()
        .expect("ip");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip json");
    let s = &v[0]["stats64"][dir];
    (
        s["packets"].as_u64().expect("packets"),
        s["bytes"].as_u64().expect("bytes"),
    )
}
