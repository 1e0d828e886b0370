//! Per-packet cost of each DUT program, side by side with the lab's empty
//! XDP_PASS program as a peer, ratios against the drop program (root; builds a
//! throwaway direct lab). XDP_PASS in live mode includes building an skb and
//! the stack's receive path, so it is the cost a frame pays without XDP.
//! `cargo bench -p dut-programs --bench programs`.
//!
//! kernel: `BPF_PROG_TEST_RUN` in live-frames mode on the lab's dut0 (a fresh
//! copy of the frame per run, XDP_TX really transmitted), the kernel's mean ns
//! per frame; median of 7 runs of 200k frames. shim: the same logic.h compiled
//! for user space (`dut_programs::shim`), frame copy included; median of 7
//! runs of 1M frames.
//!
//! Also the drop program on 802.1Q- and QinQ-tagged frames (tags inserted into
//! the 64-byte frame), and syn-filter on a SYN it drops (source outside the
//! allow-list 198.18.0.0/24) and one it passes (from 198.18.0.1; in live mode
//! a passed frame also pays for the skb and the stack, as xdp_pass does), plus
//! syn-filter's own run time without live frames (`BPF_PROG_TEST_RUN` repeat,
//! the frame handed to nobody), the same for IPv6 SYNs (dropped: source
//! outside 2001:db8:0:1::/64; passed: from inside it), and checksum at N = 1
//! and 150 on an IPv4 and an IPv6 frame without live frames; DNS over IPv6:
//! dns-ping and dns-cache (small set, AAAA hit) on a dns-small-v6 query.

#[allow(unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::os::fd::AsFd;
use std::time::Instant;

use dut_programs::allow::AllowList;
use dut_programs::shim::Shim;
use dut_programs::{Config, LoadOptions, Program, cache, kernel, load, skel};
use profiles::{Profile, Template, TemplateOptions};
use testbed::{Testbed, Topology, UpOptions};

const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn frame(profile: &str, n: u64) -> Vec<u8> {
    let p = Profile::load(profile).expect("profile");
    Template::new(&p, TemplateOptions::default())
        .expect("template")
        .frame_for(n, None)
}

fn shim_ns(s: &mut Shim, f: &[u8]) -> f64 {
    let mut buf = vec![0u8; f.len() + 256];
    let frames = 1_000_000;
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..frames {
                    buf[..f.len()].copy_from_slice(f);
                    black_box(s.run(black_box(&mut buf), f.len()));
                }
                t.elapsed().as_nanos() as f64 / frames as f64
            })
            .collect(),
    )
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench needs root (BPF programs and a lab); skipped");
        return;
    }
    let bed = Testbed::up(&UpOptions {
        name: testbed::unique_name("dbench"),
        topology: Topology::Direct,
        queues: 1,
    })
    .expect("lab up");
    let ns = bed.dut().netns.clone();
    let min = frame("min-single-flow", 0);
    let ping = frame("dns-ping", 0);
    let small_hit = frame("dns-small", 5);
    // The same name asked as AAAA over IPv6 (the answer's UDP checksum is computed).
    let small_hit6 = frame("dns-small-v6", 5);
    let large_hit = frame("dns-large", 123_456);
    let mut miss = small_hit.clone();
    let label_at = Template::new(
        &Profile::load("dns-small").expect("p"),
        TemplateOptions::default(),
    )
    .expect("t")
    .dns()
    .expect("dns")
    .label_at;
    miss[label_at] = b'-'; // not in the set

    let small = Profile::load("dns-small")
        .expect("p")
        .dns
        .expect("dns")
        .names;
    let large = Profile::load("dns-large")
        .expect("p")
        .dns
        .expect("dns")
        .names;

    let rows = testbed::run_in_netns(&ns, move || {
        let ifindex = kernel::ifindex("dut0").expect("dut0");
        let live = |fd: std::os::fd::BorrowedFd<'_>, f: &[u8]| {
            median(
                (0..RUNS)
                    .map(|_| {
                        kernel::test_run_live(fd, f, ifindex, 200_000)
                            .expect("live run")
                            .as_nanos() as f64
                    })
                    .collect(),
            )
        };
        let mut rows: Vec<(String, f64, Option<f64>)> = Vec::new();
        let pass = skel::load_placeholder().expect("xdp_pass");
        rows.push((
            "xdp_pass (peer), 64 B".into(),
            live(pass.as_fd(), &min),
            None,
        ));
        let plain = |p: Program, checksums: u32| {
            load(
                p,
                &LoadOptions {
                    config: Config {
                        checksums,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .expect("load")
        };
        let l = plain(Program::Drop, 0);
        let mut s = Shim::new(Program::Drop, &Config::default());
        rows.push((
            "drop, 64 B".into(),
            live(l.prog.as_fd(), &min),
            Some(shim_ns(&mut s, &min)),
        ));
        for (label, tags) in [
            ("drop, 64 B + 802.1Q tag", vec![(common::TPID_8021Q, 100)]),
            (
                "drop, 64 B + QinQ tags",
                vec![(common::TPID_8021AD, 10), (common::TPID_8021Q, 100)],
            ),
        ] {
            let f = common::tagged(&min, &tags);
            rows.push((
                label.into(),
                live(l.prog.as_fd(), &f),
                Some(shim_ns(&mut s, &f)),
            ));
        }
        let l = plain(Program::SynFilter, 0);
        let mut list = AllowList::new();
        list.add_args(&["198.18.0.0/24".into(), "2001:db8:0:1::/64".into()])
            .expect("allow");
        list.fill(l.allow.as_ref().expect("allow map"))
            .expect("fill");
        let mut s = Shim::new(Program::SynFilter, &Config::default());
        s.set_allow(std::sync::Arc::new(list));
        let syn_drop = common::tcp_frame([203, 0, 113, 9], common::SYN, &common::MSS_OPTION);
        let syn_pass = common::tcp_frame(common::GEN_IP, common::SYN, &common::MSS_OPTION);
        let syn_drop_qinq = common::tagged(
            &syn_drop,
            &[(common::TPID_8021AD, 10), (common::TPID_8021Q, 100)],
        );
        for (label, f) in [
            ("syn-filter, SYN dropped", &syn_drop),
            ("syn-filter, SYN dropped, QinQ", &syn_drop_qinq),
            ("syn-filter, allowed SYN passed", &syn_pass),
        ] {
            rows.push((
                label.into(),
                live(l.prog.as_fd(), f),
                Some(shim_ns(&mut s, f)),
            ));
        }
        let syn6_drop = common::tcp6_frame(
            [
                0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
            ],
            common::SYN,
        );
        let syn6_pass = common::tcp6_frame(common::GEN_IP6, common::SYN);
        for (label, f) in [
            ("syn-filter, SYN dropped (no live)", &syn_drop),
            ("syn-filter, allowed SYN (no live)", &syn_pass),
            ("syn-filter, IPv6 SYN dropped (no live)", &syn6_drop),
            ("syn-filter, allowed IPv6 SYN (no live)", &syn6_pass),
        ] {
            let ns = median(
                (0..RUNS)
                    .map(|_| {
                        kernel::test_run(l.prog.as_fd(), f, 200_000)
                            .expect("run")
                            .duration
                            .as_nanos() as f64
                    })
                    .collect(),
            );
            rows.push((label.into(), ns, None));
        }
        // checksum over IPv4's 20 header bytes and IPv6's first 20, the program alone.
        let udp6 = common::udp6_frame(9, &[0; 18]);
        for n in [1u32, 150] {
            let l = plain(Program::Checksum, n);
            for (fam, f) in [("IPv4", &min), ("IPv6", &udp6)] {
                let ns = median(
                    (0..RUNS)
                        .map(|_| {
                            kernel::test_run(l.prog.as_fd(), f, 200_000)
                                .expect("run")
                                .duration
                                .as_nanos() as f64
                        })
                        .collect(),
                );
                rows.push((format!("checksum N={n}, {fam} (no live)"), ns, None));
            }
        }
        let l = plain(Program::Drop, 0);
        rows.push((
            "drop, 64 B (no live)".into(),
            median(
                (0..RUNS)
                    .map(|_| {
                        kernel::test_run(l.prog.as_fd(), &min, 200_000)
                            .expect("run")
                            .duration
                            .as_nanos() as f64
                    })
                    .collect(),
            ),
            None,
        ));
        for n in [0u32, 1, 10, 100, 150, 1000] {
            let l = plain(Program::Checksum, n);
            let cfg = Config {
                checksums: n,
                ..Default::default()
            };
            let mut s = Shim::new(Program::Checksum, &cfg);
            let shim = if n <= 150 {
                Some(shim_ns(&mut s, &min))
            } else {
                None
            };
            rows.push((
                format!("checksum N={n}, 64 B"),
                live(l.prog.as_fd(), &min),
                shim,
            ));
        }
        let l = plain(Program::DnsPing, 0);
        let mut s = Shim::new(Program::DnsPing, &Config::default());
        rows.push((
            "dns-ping (NXDOMAIN, XDP_TX)".into(),
            live(l.prog.as_fd(), &ping),
            Some(shim_ns(&mut s, &ping)),
        ));
        rows.push((
            "dns-ping, dns-small-v6 query (IPv6)".into(),
            live(l.prog.as_fd(), &small_hit6),
            Some(shim_ns(&mut s, &small_hit6)),
        ));
        for (label, names, f) in [("small", &small, &small_hit), ("large", &large, &large_hit)] {
            let l = load(
                Program::DnsCache,
                &LoadOptions {
                    cache_entries: names.count() as u32,
                    ..Default::default()
                },
            )
            .expect("load cache");
            let e = cache::Entries::of(names).expect("entries");
            cache::fill_batch(l.cache.as_ref().expect("map"), &e, 8192).expect("fill");
            let mut s = Shim::new(Program::DnsCache, &Config::default());
            *s.cache_mut() = e.to_shim_cache();
            rows.push((
                format!("dns-cache {label} set, hit"),
                live(l.prog.as_fd(), f),
                Some(shim_ns(&mut s, f)),
            ));
            if label == "small" {
                rows.push((
                    "dns-cache small set, miss".into(),
                    live(l.prog.as_fd(), &miss),
                    Some(shim_ns(&mut s, &miss)),
                ));
                rows.push((
                    "dns-cache small set, AAAA hit, IPv6".into(),
                    live(l.prog.as_fd(), &small_hit6),
                    Some(shim_ns(&mut s, &small_hit6)),
                ));
            }
        }
        rows
    })
    .expect("run in dut netns");

    let peer = rows[1].1;
    println!(
        "{:<40} {:>14} {:>10} {:>14}",
        "program", "kernel ns/pkt", "x drop", "shim ns/pkt"
    );
    for (name, k, s) in rows {
        let s = s.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        println!("{name:<40} {k:>14.1} {:>10.2} {s:>14}", k / peer);
    }
}
