//! `lab up --ipv6`: a dual-stack lab whose kernel sends nothing on its own (no DAD,
//! router or neighbour solicitation, MLD report or link-local traffic: every interface
//! counter of the lab stays still), whose status says it is dual stack, and which
//! carries an IPv6 profile's traffic to the DUT's own address. Real kernel, root; each
//! test has its own lab name and removes its lab also when it fails.

mod common;

use std::net::UdpSocket;
use std::process::{Command, Output};
use std::time::Duration;

use testbed::{Testbed, unique_name};

fn lab_cmd(args: &[&str]) -> Output {
    Command::new(common::lab_bin())
        .args(args)
        .output()
        .expect("run lab binary")
}

/// `lab down --name NAME` when dropped.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let o = lab_cmd(&["down", "--name", &self.0]);
        if !o.status.success() {
            eprintln!(
                "lab down {}: {}",
                self.0,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// (rx packets, tx packets) of every port of the lab, in a fixed order.
fn counters(ports: &[(String, String)]) -> Vec<(String, u64, u64)> {
    ports
        .iter()
        .map(|(ns, iface)| {
            let out = Command::new("ip")
                .args(["-n", ns, "-s", "-j", "link", "show", "dev", iface])
                .output()
                .expect("ip -s link");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
            let s = &v[0]["stats64"];
            let n = |dir: &str| s[dir]["packets"].as_u64().expect("packets");
            (format!("{ns}/{iface}"), n("rx"), n("tx"))
        })
        .collect()
}

fn ports(bed: &Testbed) -> Vec<(String, String)> {
    let mut v = vec![
        (bed.r#gen().netns.clone(), testbed::GEN_IFACE.to_owned()),
        (bed.dut().netns.clone(), testbed::DUT_IFACE.to_owned()),
    ];
    if let Some(sw) = bed.switch_netns() {
        for p in [
            testbed::SW_GEN_IFACE,
            testbed::SW_DUT_IFACE,
            testbed::SW_MON_IFACE,
        ] {
            v.push((sw.to_owned(), p.to_owned()));
        }
    }
    if let Some(mon) = bed.mon() {
        v.push((mon.netns.clone(), testbed::MON_IFACE.to_owned()));
    }
    if let Some((g1, d1)) = bed.second_port() {
        v.push((g1.netns.clone(), testbed::GEN1_IFACE.to_owned()));
        v.push((d1.netns.clone(), testbed::DUT1_IFACE.to_owned()));
    }
    for (i, t) in bed.tenants().iter().enumerate() {
        v.push((t.netns.clone(), testbed::TENANT_IFACE.to_owned()));
        v.push((bed.dut().netns.clone(), testbed::tenant_vif(i as u8 + 1)));
    }
    v
}

#[test]
fn switched_dual_stack_lab() {
    dual_stack("switched");
}

#[test]
fn tenants_dual_stack_lab() {
    dual_stack("tenants");
}

fn dual_stack(topology: &str) {
    common::require_tools();
    let name = unique_name("v6");
    let up = lab_cmd(&["up", "--name", &name, "--topology", topology, "--ipv6"]);
    let _down = Down(name.clone());
    assert!(
        up.status.success(),
        "lab up --ipv6: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let bed = Testbed::attach(&name).expect("attach");
    assert!(bed.ipv6());
    assert_eq!(bed.r#gen().ip6, Some(testbed::GEN_IP6));
    assert_eq!(bed.dut().ip6, Some(testbed::DUT_IP6));
    for (i, t) in bed.tenants().iter().enumerate() {
        assert_eq!(t.ip6, Some(testbed::tenant_ip6(i as u8 + 1)));
    }

    // lab status --json says so.
    let st = lab_cmd(&["status", "--name", &name, "--json"]);
    assert!(st.status.success());
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("status JSON");
    assert_eq!(v["ipv6"], true, "{v}");
    assert_eq!(v["hosts"]["gen"]["ip6"], "2001:db8::1", "{v}");
    assert_eq!(v["hosts"]["dut"]["ip6"], "2001:db8::2", "{v}");

    // No link-local address, the global one usable at once (no DAD, not tentative).
    let addrs = Command::new("ip")
        .args([
            "-n",
            &bed.r#gen().netns,
            "-6",
            "addr",
            "show",
            "dev",
            "gen0",
        ])
        .output()
        .expect("ip addr");
    let addrs = String::from_utf8_lossy(&addrs.stdout);
    assert!(!addrs.contains("fe80"), "{addrs}");
    assert!(!addrs.contains("tentative"), "{addrs}");

    // Nothing sent by the kernel on its own: every counter of the lab stays still.
    let p = ports(&bed);
    let before = counters(&p);
    std::thread::sleep(Duration::from_secs(4));
    let after = counters(&p);
    assert_eq!(before, after, "a lab interface counter moved while idle");
    assert!(
        after.iter().all(|(_, _, tx)| *tx == 0),
        "the kernel sent frames on its own since lab up: {after:?}"
    );

    // An IPv6 profile from the generator reaches the DUT's own address: the DUT's
    // kernel delivers every datagram to a socket on [2001:db8::2]:9, and dut0 counted
    // exactly those frames.
    const FRAMES: u64 = 500;
    let sock = bed
        .dut()
        .run_in(|| UdpSocket::bind((testbed::DUT_IP6, 9)))
        .expect("netns")
        .expect("bind on the DUT's IPv6 address");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Read while gen sends, so the socket buffer never overflows.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        (0..FRAMES)
            .take_while(|_| sock.recv(&mut buf).is_ok())
            .count() as u64
    });
    let gen_bin = testbed::binaries::locate("gen").expect("gen");
    let g = Command::new(gen_bin)
        .args([
            "--netns",
            &bed.r#gen().netns,
            "--iface",
            "gen0",
            "--profile",
            "min-multi-flow-v6",
            "--count",
            &FRAMES.to_string(),
            "--rate",
            "10000",
            "--output",
            "json",
        ])
        .output()
        .expect("run gen");
    assert!(
        g.status.success(),
        "gen (its neighbour lookup of 2001:db8::2 uses the lab's static entry): {}",
        String::from_utf8_lossy(&g.stderr)
    );
    let delivered = reader.join().expect("reader");
    assert_eq!(delivered, FRAMES, "datagrams the DUT's kernel delivered");
    let end = counters(&p);
    let dut0 = |c: &[(String, u64, u64)]| {
        c.iter()
            .find(|(n, _, _)| n.ends_with("-dut/dut0"))
            .map(|(_, rx, _)| *rx)
            .expect("dut0")
    };
    assert_eq!(dut0(&end) - dut0(&after), FRAMES, "{end:?}");
    let gen_tx = end
        .iter()
        .find(|(n, _, _)| n.ends_with("-gen/gen0"))
        .map(|(_, _, tx)| *tx)
        .expect("gen0");
    assert_eq!(
        gen_tx, FRAMES,
        "gen0 sent the profile's frames and nothing else"
    );
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `lab run` of an IPv6 profile (`min-multi-flow-v6` against the drop program): the
/// point's lab is made dual stack, gen finds the DUT through its static IPv6
/// neighbour entry, and the ledger accounts for every frame at every stage (gen,
/// the switch, dut0, the DUT program, the mirror) with nothing lost.
#[test]
fn lab_run_of_an_ipv6_profile() {
    common::require_tools();
    let dir = TempDir(std::env::temp_dir().join(unique_name("lab-v6run")));
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    let file = dir.0.join("v6.toml");
    std::fs::write(
        &file,
        r#"name = "v6drop"
title = "drop over IPv6"
topology = "switched"
measure = "dut-rate"
program = "drop"
profile = "min-multi-flow-v6"
duration = "1s"
repetitions = 1

[[series]]
name = "native"
mode = "native"
engine = "afxdp"
rate = "50k"
"#,
    )
    .expect("write experiment");
    let out = dir.0.join("out");
    let res = Command::new(common::lab_bin())
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("lab run");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    let ledger = lab::store::read_ledger(&out);
    let request: Vec<_> = ledger.iter().filter(|l| l.chain == "request").collect();
    assert!(request.len() >= 5, "{ledger:?}");
    let sent = request[0].packets;
    assert!(sent > 10_000, "a second at 50k: {ledger:?}");
    for l in &ledger {
        assert_eq!((l.packets, l.lost), (sent, 0), "{l:?}");
    }
    assert!(
        request.iter().any(|l| l.stage == "DUT program saw"),
        "{ledger:?}"
    );
}
