//! The same program at different execution points, side by side (root;
//! throwaway direct lab): `dut install P --mode native|generic|userspace` on
//! dut0 while gen0 offers traffic as fast as one AF_XDP copy-mode queue can.
//! (Not `BPF_PROG_TEST_RUN` live frames: on veth, XDP_TX'd frames reach the
//! peer by reference, so a DUT program that rewrites a frame in place (an
//! answer) rewrites the sender's recycled page: after the first round every
//! "query" arrives as the previous answer. And generic XDP on the peer sees
//! no XDP_TX'd frames at all.)
//! Reports offered frames/s, frames/s the program saw and answers (or drops)
//! per second, from dut's own counters. Median of 3 runs of 2 s each.
//! `cargo bench -p dut-programs --bench exec_points`.
//!
//! Both CPUs are shared by the sender and the DUT here, so the numbers
//! compare execution points on this machine, not line rates.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use profiles::{Profile, Template, TemplateOptions};
use records::dut::Counters;
use testbed::{Testbed, Topology, UpOptions};
use xdplayer::{XskConfig, XskPort};

const DUT: &str = env!("CARGO_BIN_EXE_dut");
const RUN: Duration = Duration::from_secs(2);

/// The counters of dut's program on dut0 (`dut status --json`, typed).
fn counters(ns: &str) -> Option<Counters> {
    let out = Command::new(DUT)
        .args(["--netns", ns, "status", "--iface", "dut0", "--json"])
        .output()
        .ok()?;
    let st = records::dut::Status::parse(&String::from_utf8_lossy(&out.stdout)).ok()?;
    st.on("dut0")?.counters
}

/// Counter `name` of `c`.
fn get(c: &Counters, name: &str) -> u64 {
    c.pairs().find(|(n, _)| *n == name).map_or(0, |(_, v)| v)
}

/// Offers `frame` from gen0 for RUN through an AF_XDP socket (copy mode:
/// every frame is a fresh skb, so both native and generic XDP on dut0 see
/// it); returns frames offered.
fn offer(gen_ns: &str, frame: &[u8]) -> u64 {
    let frame = frame.to_vec();
    testbed::run_in_netns(gen_ns, move || {
        let mut cfg = XskConfig::new("gen0");
        cfg.rx = false;
        cfg.redirect = None;
        let mut port = XskPort::open(&cfg).expect("AF_XDP on gen0");
        let mut q = port.take_queues().remove(0);
        let len = frame.len();
        q.prefill(|buf| {
            buf[..len].copy_from_slice(&frame);
            len
        });
        let t = Instant::now();
        let mut sent = 0u64;
        while t.elapsed() < RUN {
            sent += q.send_batch(64, |_, _| len) as u64;
        }
        sent
    })
    .expect("gen netns")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench needs root (BPF programs and a lab); skipped");
        return;
    }
    let bed = Testbed::up(&UpOptions {
        name: testbed::unique_name("dxp"),
        topology: Topology::Direct,
        queues: 1,
    })
    .expect("lab up");
    let ns = bed.dut().netns.clone();
    let gen_ns = bed.r#gen().netns.clone();
    let frame = |p: &str| {
        Template::new(
            &Profile::load(p).expect("profile"),
            TemplateOptions::default(),
        )
        .expect("t")
        .frame_for(3, None)
    };
    let cases = [
        ("drop", "min-single-flow", "drop"),
        ("dns-ping", "dns-ping", "tx"),
        ("dns-cache", "dns-small", "tx"),
    ];
    println!(
        "{:<10} {:<10} {:>12} {:>12} {:>12} {:>8}",
        "program", "mode", "offered/s", "seen/s", "verdict/s", "verdict"
    );
    for (program, profile, verdict) in cases {
        let f = frame(profile);
        for mode in ["native", "generic", "userspace"] {
            let mut args = vec![
                "--netns",
                ns.as_str(),
                "install",
                program,
                "--iface",
                "dut0",
                "--mode",
                mode,
                "--json",
            ];
            if program == "dns-cache" {
                args.extend(["--profile", "dns-small"]);
            }
            let mut rows = Vec::new();
            for _ in 0..3 {
                let child = if mode == "userspace" {
                    let c = Command::new(DUT)
                        .args(&args)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("dut");
                    let t = Instant::now();
                    while counters(&ns).is_none() && t.elapsed() < Duration::from_secs(10) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Some(c)
                } else {
                    let out = Command::new(DUT).args(&args).output().expect("dut install");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    None
                };
                let before = if child.is_none() { counters(&ns) } else { None };
                let t = Instant::now();
                let offered = offer(&gen_ns, &f);
                let secs = t.elapsed().as_secs_f64();
                let (seen, done) = match child {
                    Some(c) => {
                        // SAFETY: signalling our own child.
                        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
                        let out = c.wait_with_output().expect("wait");
                        let last = String::from_utf8_lossy(&out.stdout)
                            .lines()
                            .last()
                            .unwrap_or("")
                            .to_string();
                        let fin: records::dut::InstallFinal = serde_json::from_str::<
                            serde_json::Value,
                        >(&last)
                        .map_err(|e| e.to_string())
                        .and_then(|v| records::typed(v, "dut final").map_err(|e| e.to_string()))
                        .unwrap_or_else(|e| panic!("dut's final record: {e}: {last}"));
                        (fin.counters.packets, get(&fin.counters, verdict))
                    }
                    None => {
                        let after = counters(&ns).unwrap_or_default();
                        let b = before.unwrap_or_default();
                        let d = |k: &str| get(&after, k).saturating_sub(get(&b, k));
                        let r = (d("packets"), d(verdict));
                        let _ = Command::new(DUT)
                            .args(["--netns", &ns, "remove", "--iface", "dut0"])
                            .output();
                        r
                    }
                };
                rows.push((
                    offered as f64 / secs,
                    seen as f64 / secs,
                    done as f64 / secs,
                ));
            }
            println!(
                "{program:<10} {mode:<10} {:>12.0} {:>12.0} {:>12.0} {verdict:>8}",
                median(rows.iter().map(|r| r.0).collect()),
                median(rows.iter().map(|r| r.1).collect()),
                median(rows.iter().map(|r| r.2).collect())
            );
        }
    }
}
