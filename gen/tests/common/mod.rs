//! What gen's end-to-end tests share: a direct lab, running gen in it, its JSON
//! records, and the kernel's own interface counters (`ip -s link`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Bytes veth leaves out of its byte counters per skb (measured here): with XDP on
/// the peer, an skb is counted after `eth_type_trans` pulled its Ethernet header;
/// XDP frames (xdp-live) are counted whole.
pub const ETH_PULLED: u64 = 14;

/// The counter pair once `want` packets more than `before` are counted (or 30 s).
pub fn stats_settled(host: &testbed::Host, dir: &str, before: (u64, u64), want: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = link_stats(host, dir);
        let d = (now.0 - before.0, now.1 - before.1);
        if d.0 >= want || Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gen-test-{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// tcpdump on the DUT's port writing what the generator sends (inbound, from its
/// MAC) to `file`; killed (by its own pid) when dropped.
pub struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    pub fn start(bed: &Testbed, file: &Path) -> Tcpdump {
        Tcpdump::start_on(bed.dut(), bed.generator(), file)
    }

    /// tcpdump on `on`'s port writing what arrives there from `from`'s MAC.
    pub fn start_on(on: &testbed::Host, from: &testbed::Host, file: &Path) -> Tcpdump {
        let d = on;
        let mac = profiles::units::format_mac(from.mac.expect("sender mac"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &d.netns, "tcpdump", "-i", &d.iface])
            .args(["-Q", "in", "--immediate-mode", "-U", "-s", "2048", "-w"])
            .arg(file)
            .args(["ether", "src", &mac])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // Ready once it says it listens.
        let mut err = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 512];
            let mut seen = String::new();
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if seen.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("tcpdump listening");
        Tcpdump { child }
    }

    /// Stops the capture (SIGINT: tcpdump flushes the file) and waits for it.
    pub fn finish(mut self) {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The name of the XDP program on the host's port (None: nothing attached).
pub fn prog_name(host: &testbed::Host) -> Option<String> {
    let iface = host.iface.clone();
    host.run_in(move || {
        xdplayer::attached_prog(&iface)
            .expect("query")
            .map(|(_, n)| n)
    })
    .expect("run_in")
}
