//! The workloads people bring, end to end on veth (direct topology, unique names,
//! torn down on drop): every shipped profile sent by gen, captured on the peer by
//! tcpdump and read back by tshark with every checksum check on (no malformed frame,
//! no warning or error from tshark's expert, the fields what the profile says, DNS
//! question type and name included), and
//! an IMIX run whose packets and bytes gen reports agree with both interfaces'
//! counters (`ip -s link`: the kernel's, not gen's).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;

use profiles::profile::{Field, SHIPPED, VaryKind};
use profiles::wire::tcp;
use profiles::{Profile, Template, TemplateOptions};

mod common;
use common::{
    ETH_PULLED, Tcpdump, final_of, link_stats, prog_name, run_gen, scratch, stats_settled, up,
    up_with,
};

const FIELDS: [&str; 25] = [
    "frame.len",
    "ieee8021ad.id",
    "vlan.id",
    "vlan.etype",
    "ip.src",
    "ip.dst",
    "ip.len",
    "ip.checksum.status",
    "udp.srcport",
    "udp.dstport",
    "udp.checksum.status",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.checksum.status",
    "tcp.options.mss_val",
    "tcp.options.wscale.shift",
    "_ws.malformed",
    "_ws.expert.severity",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.plen",
    "ipv6.hlim",
    "dns.qry.name",
    "dns.qry.type",
];

/// tshark's options for `p`'s frames: the payload of a UDP profile without DNS is
/// zeros by design, so it is decoded as data (else a source port such as 1153 makes
/// tshark read the zeros as ANSI C12.22 and call them malformed).
fn decode_as(p: &Profile) -> Vec<String> {
    if p.dns.is_none() && p.tcp.is_none() {
        vec!["-d".into(), format!("udp.port=={},data", p.udp_dst)]
    } else {
        Vec::new()
    }
}

/// tshark's reading of `file`, every checksum check on: one map per frame.
fn tshark(file: &Path, extra: &[String]) -> Vec<BTreeMap<&'static str, String>> {
    let mut c = Command::new("tshark");
    c.arg("-r").arg(file).args(extra);
    for o in [
        "udp.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "ip.check_checksum:TRUE",
    ] {
        c.args(["-o", o]);
    }
    c.args([
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in FIELDS {
        c.args(["-e", f]);
    }
    let out = c.output().expect("tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            FIELDS
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(k, v)| (*k, v.to_owned()))
                .collect()
        })
        .collect()
}

/// tshark's expert summary (`-z expert`) of `file`: the lines of warnings and errors.
fn expert_problems(file: &Path, extra: &[String]) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(extra)
        .args([
            "-q",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(["-o", "ip.check_checksum:TRUE", "-z", "expert,warn"])
        .output()
        .expect("tshark -z expert");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Errors") || l.starts_with("Warns") || l.contains("Malformed")
        })
        .map(str::to_owned)
        .collect()
}

/// The values field `f` may take in `p` (varying or fixed).
fn allowed(p: &Profile, f: Field, fixed: u64) -> Box<dyn Fn(u64) -> bool> {
    match p.vary.iter().find(|v| v.field == f).map(|v| v.kind.clone()) {
        None => Box::new(move |x| x == fixed),
        Some(VaryKind::Increment { min, max, .. } | VaryKind::Random { min, max, .. }) => {
            Box::new(move |x| (min..=max).contains(&x))
        }
        Some(VaryKind::List(vals)) => Box::new(move |x| vals.contains(&x)),
    }
}

fn num(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap_or_else(|_| panic!("hex {s}")),
        None => s.parse().unwrap_or_else(|_| panic!("number '{s}'")),
    }
}

fn ip_num(s: &str) -> u64 {
    u64::from(u32::from(
        s.parse::<std::net::Ipv4Addr>()
            .unwrap_or_else(|_| panic!("address '{s}'")),
    ))
}

#[test]
fn every_shipped_profile_passes_tsharks_checks_on_the_wire() {
    let bed = up("gw");
    let dir = scratch("tshark");
    let n = 240u64; // 20 IMIX periods
    let dut_mac = profiles::units::format_mac(bed.dut().mac.expect("dut mac"));
    for (name, _) in SHIPPED {
        let p = Profile::load(name).expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let count = n.to_string();
        let mut args = vec![
            "--profile",
            name,
            "--rate",
            "20k",
            "--count",
            &count,
            "--no-rx",
            "--output",
            "json",
        ];
        if p.ipv6.is_some() {
            // The lab's namespaces have IPv6 off, so no IPv6 neighbour entry: gen
            // asks for --dst-mac in one line.
            let out = run_gen(&bed, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name}: needs --dst-mac");
            assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
            assert!(
                err.contains("no neighbour entry for 2001:db8::2 on gen0: pass --dst-mac"),
                "{name}: {err}"
            );
            args.extend(["--dst-mac", &dut_mac]);
        }
        for engine in ["afxdp", "xdp-live"] {
            let file = dir.join(format!("{name}-{engine}.pcap"));
            let cap = Tcpdump::start(&bed, &file);
            let out = run_gen(&bed, &[&args[..], &["--engine", engine]].concat());
            let fin = final_of(&out);
            assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{engine} {name}");
            // The seed of the random fields is recorded with the run.
            assert_eq!(fin["profile_seed"].as_u64(), p.seed, "{engine} {name}");
            cap.finish();
            let what = format!("{engine} {name}");
            let frames = tshark(&file, &decode_as(&p));
            assert_eq!(frames.len() as u64, n, "{what}: every frame captured");
            let problems = expert_problems(&file, &decode_as(&p));
            assert!(
                problems.is_empty(),
                "{what}: tshark's expert says {problems:?}"
            );
            let ids: Vec<u64> = p.vlans.iter().map(|v| u64::from(v.id)).collect();
            let outer_ok = allowed(&p, Field::VlanId, ids.first().copied().unwrap_or(0));
            let inner_ok = allowed(&p, Field::InnerVlanId, ids.get(1).copied().unwrap_or(0));
            let src_ok = allowed(&p, Field::Ipv4Src, ip_num(&p.ip_src.to_string()));
            let mut sizes = BTreeMap::new();
            let mut sources = HashSet::new();
            for (i, f) in frames.iter().enumerate() {
                let at = format!("{what} frame {i}");
                assert!(f["_ws.malformed"].is_empty(), "{at}: malformed {f:?}");
                // Chat (SYN) and notes are fine; warnings (0x600000) and errors are not.
                for s in f["_ws.expert.severity"]
                    .split(',')
                    .filter(|s| !s.is_empty())
                {
                    assert!(num(s) < 0x0060_0000, "{at}: expert severity {s}: {f:?}");
                }
                if p.ipv6.is_none() {
                    assert_eq!(f["ip.checksum.status"], "1", "{at}: IPv4 checksum good");
                }
                // On the wire: the frame n the template makes, with its size.
                let len = num(&f["frame.len"]) as usize;
                assert_eq!(len, t.len_of(i as u64), "{at}: size");
                *sizes.entry(len).or_insert(0u64) += 1;
                // An S-tag (0x88a8) is tshark's ieee8021ad, a C-tag its vlan.
                let vl: Vec<u64> = [f["ieee8021ad.id"].as_str(), f["vlan.id"].as_str()]
                    .join(",")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(num)
                    .collect();
                assert_eq!(vl.len(), ids.len(), "{at}: VLAN tags {f:?}");
                if let Some(&o) = vl.first() {
                    assert!(outer_ok(o), "{at}: outer VLAN {o}");
                }
                if let Some(&inn) = vl.get(1) {
                    assert!(inner_ok(inn), "{at}: inner VLAN {inn}");
                }
                match &p.ipv6 {
                    Some(v6) => {
                        // Only the low 64 bits vary; the high 64 are the profile's.
                        let a: std::net::Ipv6Addr = f["ipv6.src"].parse().expect("ipv6.src");
                        let own = u128::from(v6.src);
                        assert_eq!(u128::from(a) >> 64, own >> 64, "{at}");
                        let src_ok = allowed(&p, Field::Ipv6Src, own as u64);
                        assert!(src_ok(u128::from(a) as u64), "{at}: source {a}");
                        sources.insert(u128::from(a) as u64);
                        assert_eq!(f["ipv6.dst"], v6.dst.to_string(), "{at}");
                        assert_eq!(num(&f["ipv6.hlim"]), u64::from(v6.hop_limit), "{at}");
                        let plen = len - p.layout().l4_at;
                        assert_eq!(num(&f["ipv6.plen"]) as usize, plen, "{at}");
                        assert!(f["ip.src"].is_empty(), "{at}: no IPv4 header");
                    }
                    None => {
                        let src = ip_num(&f["ip.src"]);
                        assert!(src_ok(src), "{at}: source {}", f["ip.src"]);
                        sources.insert(src);
                        assert_eq!(f["ip.dst"], p.ip_dst.to_string(), "{at}");
                    }
                }
                match &p.tcp {
                    Some(tc) => {
                        assert_eq!(f["tcp.checksum.status"], "1", "{at}: TCP checksum good");
                        assert_eq!(num(&f["tcp.flags"]) as u8, tc.flags, "{at}");
                        assert_eq!(num(&f["tcp.dstport"]), u64::from(tc.dst_port), "{at}");
                        let sp_ok = allowed(&p, Field::TcpSrcPort, u64::from(tc.src_port));
                        assert!(sp_ok(num(&f["tcp.srcport"])), "{at}: source port");
                        if *name == "syn-flood" {
                            assert_eq!(tc.flags, tcp::SYN);
                            assert_eq!(f["tcp.options.mss_val"], "1460", "{at}");
                            assert_eq!(f["tcp.options.wscale.shift"], "7", "{at}");
                        }
                    }
                    None => {
                        assert_eq!(f["udp.checksum.status"], "1", "{at}: UDP checksum good");
                        assert_eq!(num(&f["udp.dstport"]), u64::from(p.udp_dst), "{at}");
                        let sp = num(&f["udp.srcport"]);
                        match &p.dns {
                            None => {
                                assert!(allowed(&p, Field::UdpSrcPort, u64::from(p.udp_src))(sp))
                            }
                            Some(d) => {
                                // tshark's DNS dissector reads frame n's question.
                                assert_eq!(num(&f["dns.qry.type"]), u64::from(d.qtype), "{at}");
                                let got = match f["dns.qry.name"].as_str() {
                                    "<Root>" | "" => ".",
                                    other => other,
                                };
                                if d.order == profiles::profile::Order::Sequential {
                                    let want = d.names.name(i as u64 % d.names.count());
                                    assert_eq!(got, want, "{at}: question name");
                                }
                            }
                        }
                    }
                }
            }
            match &p.imix {
                Some(m) => {
                    // 20 periods: each size weight x 20 times.
                    for (s, w) in m.sizes.iter().zip(&m.weights) {
                        assert_eq!(sizes.get(&(s - 4)), Some(&(u64::from(*w) * 20)), "{what}");
                    }
                }
                None => assert_eq!(sizes.len(), 1, "{what}: one size"),
            }
            if p.vary
                .iter()
                .any(|v| matches!(v.field, Field::Ipv4Src | Field::Ipv6Src))
            {
                assert!(sources.len() > 1, "{what}: sources vary");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_packets_and_bytes_agree_with_both_interfaces() {
    let bed = up("g6");
    let d = bed.dut().clone();
    let p = Profile::load("min-multi-flow-v6").expect("profile");
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    assert_eq!(t.len(), 62, "66 bytes on the wire less the FCS");
    let n = 20_000u64;
    let want_bytes = n * t.len() as u64;
    let dut_mac = profiles::units::format_mac(d.mac.expect("dut mac"));
    for engine in ["afxdp", "xdp-live"] {
        let (fin, tx, rx) = counted_run(
            &bed,
            n,
            &[
                "--profile",
                "min-multi-flow-v6",
                "--engine",
                engine,
                "--dst-mac",
                &dut_mac,
            ],
        );
        assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{engine}");
        assert_eq!(fin["tx_bytes"].as_u64(), Some(want_bytes), "{engine}");
        assert_eq!(fin["frame_len"].as_u64(), Some(62), "{engine}");
        assert_eq!(
            fin["tx_check"]["interface_tx"].as_u64(),
            Some(n),
            "{engine}"
        );
        assert_eq!(fin["tx_check"]["agrees"], true, "{engine}");
        // As for IMIX: veth counts AF_XDP frames without their 14-byte Ethernet
        // header, XDP frames (xdp-live) whole.
        let pulled = if engine == "afxdp" { ETH_PULLED } else { 0 };
        assert_kernel_counts(engine, tx, rx, n, want_bytes - pulled * n);
    }
}

/// The frames of `file` (tcpdump's capture), in order.
fn captured(file: &Path) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    capfile::read(file, |_, f| {
        v.push(f.to_vec());
        true
    })
    .expect("read capture");
    v
}

#[test]
fn ipv6_frames_on_the_wire_are_the_templates_byte_for_byte() {
    // Tagged IPv6 in an IMIX with both addresses varying, on two queues: every frame
    // the peer receives is the template's frame n, checksums included (tshark checks
    // them too in the shipped-profile test above).
    let bed = up_with("g6b", 2);
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let dir = scratch("v6bytes");
    let toml = dir.join("v6mix.toml");
    std::fs::write(
        &toml,
        "parent = \"min-multi-flow-v6\"\nname = \"v6mix\"\n[[vlan]]\nid = 7\n[imix]\nsizes = [70, 71, 594, 1522]\nweights = [3, 1, 2, 1]\n[[vary]]\nfield = \"ipv6.dst\"\nmode = \"random\"\nmin = \"::1\"\nmax = \"::ffff:ffff\"\n",
    )
    .expect("write profile");
    let path = toml.to_str().expect("utf-8 path");
    let mut p = Profile::load(path).expect("profile");
    p.eth_src = g.mac.expect("gen mac");
    p.eth_dst = d.mac.expect("dut mac");
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    let dut_mac = profiles::units::format_mac(d.mac.expect("dut mac"));
    let n = 700u64;
    for (engine, queues) in [("xdp-live", "1"), ("xdp-live", "2"), ("afxdp", "1")] {
        let file = dir.join(format!("{engine}-{queues}.pcap"));
        let (fin, mut got) = captured_run(
            &bed,
            &file,
            n,
            &[
                "--profile",
                path,
                "--engine",
                engine,
                "--queues",
                queues,
                "--dst-mac",
                &dut_mac,
            ],
        );
        let what = format!("{engine}, {queues} queue(s)");
        assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{what}");
        assert_eq!(fin["tx_check"]["interface_tx"].as_u64(), Some(n), "{what}");
        assert_eq!(got.len() as u64, n, "{what}: every frame captured");
        let mut want: Vec<Vec<u8>> = (0..n).map(|i| t.frame_for(i, None)).collect();
        if queues != "1" {
            // Two queues interleave in no fixed order: compare as sets.
            got.sort();
            want.sort();
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{what}: frame {i}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Frames per engine in [`ipv6_override_sends_the_templates_frames`].
const V6_FRAMES: u64 = 300;

/// `flag ADDR` (an IPv6 address) on `min-multi-flow-v6` at 20k frames/s, both
/// engines, captured at the peer: every frame is the template's for the profile
/// with the address put where `field` says, and its bytes `at` are the address's
/// first `at.len()` bytes. Returns the profile and each engine's capture file.
fn ipv6_override_sends_the_templates_frames(
    bed: &testbed::Testbed,
    dir: &Path,
    flag: &str,
    addr: std::net::Ipv6Addr,
    field: fn(&mut profiles::profile::Ipv6Spec) -> &mut std::net::Ipv6Addr,
    at: std::ops::Range<usize>,
) -> (Profile, Vec<(&'static str, std::path::PathBuf)>) {
    let (g, d) = (bed.generator(), bed.dut());
    let mut p = Profile::load("min-multi-flow-v6").expect("profile");
    p.eth_src = g.mac.expect("gen mac");
    p.eth_dst = d.mac.expect("dut mac");
    *field(p.ipv6.as_mut().expect("an IPv6 profile")) = addr;
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    let dut_mac = profiles::units::format_mac(d.mac.expect("dut mac"));
    let a = addr.to_string();
    let n = V6_FRAMES;
    let mut files = Vec::new();
    for engine in ["afxdp", "xdp-live"] {
        let file = dir.join(format!("{engine}.pcap"));
        let (fin, got) = captured_run(
            bed,
            &file,
            n,
            &[
                "--profile",
                "min-multi-flow-v6",
                "--engine",
                engine,
                "--dst-mac",
                &dut_mac,
                flag,
                &a,
            ],
        );
        assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{engine}");
        assert_eq!(got.len() as u64, n, "{engine}: every frame captured");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(
                &f[at.clone()],
                &addr.octets()[..at.len()],
                "{engine}: frame {i}: {flag}"
            );
            assert_eq!(f, &t.frame_for(i as u64, None), "{engine}: frame {i}");
        }
        files.push((engine, file));
    }
    (p, files)
}

#[test]
fn ipv6_dst_ip_replaces_the_profiles_destination() {
    // `--dst-ip` with an IPv6 address on an IPv6 profile: every frame the peer gets
    // is the template's for the profile with that destination (UDP checksum
    // included), on both engines.
    let bed = up("g6d");
    let dir = scratch("v6dst");
    let new: std::net::Ipv6Addr = "fd00:beef::7:9".parse().expect("v6");
    ipv6_override_sends_the_templates_frames(&bed, &dir, "--dst-ip", new, |v6| &mut v6.dst, 38..54);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ipv6_src_ip_replaces_the_profiles_source_and_the_wrong_version_is_one_line() {
    // `--src-ip` with an IPv6 address on an IPv6 profile (a generator host of its
    // own): every frame the peer gets carries it (the profile varies the low 64
    // bits, so the high 64 are the new address's), is the template's for the
    // profile with that source, and passes tshark's UDP checksum check; both engines.
    let bed = up("g6s");
    let g = bed.generator().clone();
    let dir = scratch("v6src");
    let new: std::net::Ipv6Addr = "fd00:cafe:0:3::1".parse().expect("v6");
    let (p, files) = ipv6_override_sends_the_templates_frames(
        &bed,
        &dir,
        "--src-ip",
        new,
        |v6| &mut v6.src,
        22..30,
    );
    let dut_mac = profiles::units::format_mac(bed.dut().mac.expect("dut mac"));
    for (engine, file) in files {
        let frames = tshark(&file, &decode_as(&p));
        assert_eq!(
            frames.len() as u64,
            V6_FRAMES,
            "{engine}: tshark read every frame"
        );
        for (i, f) in frames.iter().enumerate() {
            let a: std::net::Ipv6Addr = f["ipv6.src"].parse().expect("ipv6.src");
            assert_eq!(
                u128::from(a) >> 64,
                u128::from(new) >> 64,
                "{engine}: frame {i}: {f:?}"
            );
            assert_eq!(f["udp.checksum.status"], "1", "{engine}: frame {i}: {f:?}");
        }
        let problems = expert_problems(&file, &decode_as(&p));
        assert!(
            problems.is_empty(),
            "{engine}: tshark's expert says {problems:?}"
        );
    }
    // The other IP version: one line, nothing attached, nothing sent.
    for (profile, addr, says) in [
        (
            "min-multi-flow-v6",
            "198.18.0.9",
            "--src-ip 198.18.0.9 is IPv4 but profile `min-multi-flow-v6` is IPv6",
        ),
        (
            "min-multi-flow",
            "fd00::9",
            "--src-ip fd00::9 is IPv6 but profile `min-multi-flow` is IPv4",
        ),
    ] {
        let out = run_gen(
            &bed,
            &[
                "--profile",
                profile,
                "--dst-mac",
                &dut_mac,
                "--src-ip",
                addr,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{profile} {addr}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{profile} {addr}: {err}");
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            prog_name(&g).as_deref(),
            Some("xdp_pass"),
            "nothing attached"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// gen at 20k frames/s for `n` frames with `args` (no reply counter, JSON) while
/// tcpdump captures at dut0 into `file`: its final record and the frames captured.
fn captured_run(
    bed: &testbed::Testbed,
    file: &Path,
    n: u64,
    args: &[&str],
) -> (serde_json::Value, Vec<Vec<u8>>) {
    let cap = Tcpdump::start(bed, file);
    let count = n.to_string();
    let common = [
        "--rate", "20k", "--count", &count, "--no-rx", "--output", "json",
    ];
    let fin = final_of(&run_gen(bed, &[args, &common[..]].concat()));
    cap.finish();
    (fin, captured(file))
}

/// gen at 40k frames/s for `n` frames with `args` (no reply counter, JSON): its
/// final record and the increase of gen0's transmit and dut0's receive counters
/// (packets, bytes) once `n` frames are counted.
fn counted_run(
    bed: &testbed::Testbed,
    n: u64,
    args: &[&str],
) -> (serde_json::Value, (u64, u64), (u64, u64)) {
    let (g, d) = (bed.generator(), bed.dut());
    let tx0 = link_stats(g, "tx");
    let rx0 = link_stats(d, "rx");
    let count = n.to_string();
    let common = [
        "--rate", "40k", "--count", &count, "--no-rx", "--output", "json",
    ];
    let fin = final_of(&run_gen(bed, &[args, &common[..]].concat()));
    let tx = stats_settled(g, "tx", tx0, n);
    let rx = stats_settled(d, "rx", rx0, n);
    (fin, tx, rx)
}

/// gen0's transmit and dut0's receive counters against `n` frames of `bytes` in
/// all; other traffic (neighbour discovery) may add a frame or two.
fn assert_kernel_counts(what: &str, tx: (u64, u64), rx: (u64, u64), n: u64, bytes: u64) {
    assert!(tx.0 >= n && tx.0 <= n + 4, "{what}: gen0 tx packets {tx:?}");
    assert!(
        tx.1 >= bytes && tx.1 <= bytes + 4 * 128,
        "{what}: gen0 tx bytes {tx:?}"
    );
    assert!(rx.0 >= n && rx.0 <= n + 4, "{what}: dut0 rx packets {rx:?}");
    assert!(
        rx.1 >= bytes && rx.1 <= bytes + 4 * 128,
        "{what}: dut0 rx bytes {rx:?}"
    );
}

#[test]
fn imix_packets_and_bytes_agree_with_both_interfaces() {
    // Two queues: queue q sends n = q, q + 2, ..., each frame with its own size.
    let bed = up_with("gi", 2);
    let p = Profile::load("imix").expect("imix");
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    let n = 12_000u64;
    let want_bytes: u64 = (0..n).map(|i| t.len_of(i) as u64).sum();
    assert_eq!(want_bytes, 1000 * (7 * 60 + 4 * 590 + 1514));
    for (engine, queues) in [
        ("afxdp", "1"),
        ("xdp-live", "1"),
        ("afxdp", "2"),
        ("xdp-live", "2"),
    ] {
        let (fin, tx, rx) = counted_run(
            &bed,
            n,
            &["--profile", "imix", "--engine", engine, "--queues", queues],
        );
        let pk = fin["tx_packets"].as_u64().expect("tx_packets");
        let by = fin["tx_bytes"].as_u64().expect("tx_bytes");
        let what = format!("{engine}, {queues} queue(s)");
        assert_eq!(pk, n, "{what}");
        assert_eq!(
            by, want_bytes,
            "{what}: gen's bytes are each frame's own size"
        );
        // veth counts an skb's bytes after its Ethernet header was pulled when the
        // peer runs XDP (the lab's placeholder): 14 bytes less per AF_XDP frame;
        // XDP frames (xdp-live) whole.
        let pulled = if engine == "afxdp" { ETH_PULLED } else { 0 };
        assert_kernel_counts(&what, tx, rx, n, want_bytes - pulled * n);
        // Wire rate: the bytes plus 24 per frame (FCS, preamble, gap) over the run.
        let dur = fin["duration_s"].as_f64().expect("duration");
        let wire = fin["tx_mbps_wire"].as_f64().expect("wire");
        let want_wire = (want_bytes + 24 * n) as f64 * 8.0 / dur / 1e6;
        assert!(
            (wire - want_wire).abs() < want_wire * 1e-6 + 1e-3,
            "{wire} vs {want_wire}"
        );
        assert_eq!(
            fin["frame_len"].as_u64(),
            Some(358),
            "the mix's mean buffer length"
        );
    }
    // A bit rate converts with the mix's mean size on the wire (361.83 + 20 bytes).
    let out = run_gen(
        &bed,
        &[
            "--profile",
            "imix",
            "--rate",
            "100Mbit",
            "--count",
            "24000",
            "--no-rx",
            "--output",
            "json",
        ],
    );
    let fin = final_of(&out);
    let mean_wire = (7.0 * 84.0 + 4.0 * 614.0 + 1538.0) / 12.0;
    let want_pps = 100e6 / (mean_wire * 8.0);
    let req = fin["requested_pps"].as_f64().expect("requested");
    assert!(
        (req - want_pps).abs() < 1e-6 * want_pps,
        "{req} vs {want_pps}"
    );
    // What went out matches (generously: a shared machine's sender falls behind at
    // times, and then says so in rate_shortfall).
    let mbps = fin["tx_mbps_wire"].as_f64().expect("wire");
    let pps = fin["tx_pps"].as_f64().expect("pps");
    assert!(
        (mbps - pps * mean_wire * 8.0 / 1e6).abs() < 0.01 * mbps,
        "{mbps} Mbit/s at {pps} frames/s"
    );
    assert!(
        mbps > 75.0 && mbps < 101.0,
        "achieved {mbps} Mbit/s on the wire of 100"
    );
}

#[test]
fn frame_size_overrides_the_profile_and_is_checked() {
    let bed = up("gf");
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    for (engine, size) in [
        ("afxdp", 1518usize),
        ("xdp-live", 1518),
        ("afxdp", 200),
        ("xdp-live", 200),
    ] {
        let tx0 = link_stats(&g, "tx");
        let rx0 = link_stats(&d, "rx");
        let s = size.to_string();
        let out = run_gen(
            &bed,
            &[
                "--profile",
                "min-multi-flow",
                "--engine",
                engine,
                "--frame-size",
                &s,
                "--rate",
                "20k",
                "--count",
                "1000",
                "--no-rx",
                "--output",
                "json",
            ],
        );
        let fin = final_of(&out);
        assert_eq!(fin["tx_packets"].as_u64(), Some(1000), "{engine} {size}");
        assert_eq!(fin["frame_len"].as_u64(), Some(size as u64 - 4));
        assert_eq!(fin["tx_bytes"].as_u64(), Some(1000 * (size as u64 - 4)));
        let tx = stats_settled(&g, "tx", tx0, 1000);
        let rx = stats_settled(&d, "rx", rx0, 1000);
        // veth: AF_XDP's skbs counted without the Ethernet header, XDP frames whole.
        let per = size as u64 - 4 - if engine == "afxdp" { ETH_PULLED } else { 0 };
        for (what, c) in [("gen0 tx", tx), ("dut0 rx", rx)] {
            assert!(
                c.1 >= 1000 * per && c.1 < 1000 * per + 512,
                "{engine} {size}: {what} {c:?}"
            );
        }
    }
    // A mix longer than xdp-live's schedule: one line naming the engine to use, and
    // nothing attached (the lab's placeholder still on gen0).
    let dir = scratch("long");
    let long = dir.join("long.toml");
    std::fs::write(&long, "[imix]\nsizes = [64, 128]\nweights = [4000, 1000]\n").expect("write");
    let out = run_gen(
        &bed,
        &[
            "--profile",
            long.to_str().expect("utf-8"),
            "--engine",
            "xdp-live",
            "--count",
            "1",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.trim_end().ends_with("use --engine afxdp"), "{err}");
    let iface = g.iface.clone();
    let prog = g
        .run_in(move || {
            xdplayer::attached_prog(&iface)
                .expect("query")
                .map(|(_, n)| n)
        })
        .expect("run_in");
    assert_eq!(
        prog.as_deref(),
        Some("xdp_pass"),
        "nothing of gen's left attached"
    );
    // Smaller than the SYN's headers: one line naming the option and the range.
    let out = run_gen(
        &bed,
        &[
            "--profile",
            "syn-flood",
            "--frame-size",
            "64",
            "--count",
            "1",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--frame-size") && err.contains("78 to 1518"),
        "{err}"
    );
}
