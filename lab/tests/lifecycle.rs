//! Building and removing labs, with the library and with the `lab` binary:
//! nothing left behind, status read back from the system, bad input refused.
//! Real kernel, needs root; every test uses its own lab name.

mod common;

use std::process::{Command, Output};

use testbed::{Testbed, Topology, UpOptions, unique_name};

fn lab_cmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .expect("run lab binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn all_ports(bed: &Testbed) -> Vec<(String, &'static str)> {
    let mut v = vec![
        (bed.r#gen().netns.clone(), testbed::GEN_IFACE),
        (bed.dut().netns.clone(), testbed::DUT_IFACE),
    ];
    if let Some(sw) = bed.switch_netns() {
        v.push((sw.to_owned(), testbed::SW_GEN_IFACE));
        v.push((sw.to_owned(), testbed::SW_DUT_IFACE));
        v.push((sw.to_owned(), testbed::SW_MON_IFACE));
    }
    if let Some(mon) = bed.mon() {
        v.push((mon.netns.clone(), testbed::MON_IFACE));
    }
    if let Some((g1, d1)) = bed.second_port() {
        v.push((g1.netns.clone(), testbed::GEN1_IFACE));
        v.push((d1.netns.clone(), testbed::DUT1_IFACE));
    }
    for (i, t) in bed.tenants().iter().enumerate() {
        v.push((t.netns.clone(), testbed::TENANT_IFACE));
        let vif: &'static str = if i == 0 { "vif1" } else { "vif2" };
        assert_eq!(vif, testbed::tenant_vif(i as u8 + 1));
        v.push((bed.dut().netns.clone(), vif));
    }
    v
}

#[test]
fn up_down_repeatedly_leaves_root_namespace_unchanged() {
    let (ns_before, links_before) = common::root_snapshot();
    for round in 0..3 {
        for topology in [Topology::Switched, Topology::Direct, Topology::Tenants] {
            let name = unique_name("ud");
            let queues = 1 + round;
            let bed = Testbed::up(&UpOptions {
                name: name.clone(),
                topology,
                queues,
            })
            .expect("lab up");
            assert_eq!(bed.topology(), topology);
            let expected_ns = match topology {
                Topology::Switched => 4,
                Topology::Direct => 2,
                Topology::Tenants => 4 + usize::from(testbed::TENANTS),
            };
            let (ns_now, _) = common::root_snapshot();
            assert_eq!(
                common::lab_namespaces(&ns_now, &name).len(),
                expected_ns,
                "{ns_now:?}"
            );

            // Every veth end carries an XDP program.
            for (ns, iface) in all_ports(&bed) {
                let id = testbed::xdp_prog_id(&ns, iface).expect("query xdp");
                assert!(id.is_some(), "no XDP program on {iface} in {ns}");
            }

            // What the system says matches what was built.
            let found = Testbed::attach(&name).expect("attach");
            assert!(!found.tears_down_on_drop());
            assert_eq!(found.status(), bed.status());
            assert_eq!(found.queues(), queues);
            assert_eq!(found.r#gen().ip, Some(testbed::GEN_IP));
            assert_eq!(found.dut().mac, Some(testbed::DUT_MAC));
            drop(found);
            assert!(Testbed::attach(&name).is_ok(), "attach's drop tore down");

            if round % 2 == 0 {
                bed.down().expect("lab down");
            } else {
                drop(bed); // Drop tears down too.
            }
            let (ns_after, _) = common::root_snapshot();
            assert!(common::lab_namespaces(&ns_after, &name).is_empty());
        }
    }
    let (ns_after, links_after) = common::root_snapshot();
    // Other tests (here or in other crates) may be making labs of their own
    // meanwhile: compare what is not one of those.
    assert_eq!(
        common::without_test_labs(&ns_before),
        common::without_test_labs(&ns_after),
        "namespaces differ"
    );
    assert_eq!(links_before, links_after, "root links differ");
}

#[test]
fn settings_inside_the_lab() {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("set"),
        topology: Topology::Switched,
        queues: 4,
    })
    .expect("lab up");
    let gen_ns = bed.r#gen().netns.clone();

    // Queues on gen0 as asked.
    let out = bed
        .r#gen()
        .command("ip")
        .args(["-d", "link", "show", "gen0"])
        .output()
        .expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("numtxqueues 4 numrxqueues 4"), "{text}");

    // Permanent neighbour entry for the DUT.
    let out = Command::new("ip")
        .args(["-n", &gen_ns, "neigh", "show", "198.18.0.2"])
        .output()
        .expect("ip neigh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("02:00:00:00:00:02") && text.contains("PERMANENT"),
        "{text}"
    );

    // IPv6 off, checked from a thread inside the namespace.
    let v6 = bed
        .dut()
        .run_in(|| std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6"))
        .expect("run_in");
    if let Ok(v) = v6 {
        assert_eq!(v.trim(), "1");
    }

    // TX checksum offload off on gen0.
    let out = bed
        .r#gen()
        .command("ethtool")
        .args(["-k", "gen0"])
        .output()
        .expect("ethtool");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tx-checksumming: off"), "{text}");

    // mon0 promiscuous.
    let mon = bed.mon().expect("switched has mon");
    let out = mon
        .command("ip")
        .args(["link", "show", "mon0"])
        .output()
        .expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PROMISC") && text.contains("UP"), "{text}");

    // attach_pass puts the program back after a detach.
    testbed::detach_xdp(&gen_ns, "gen0").expect("detach");
    assert_eq!(testbed::xdp_prog_id(&gen_ns, "gen0").expect("query"), None);
    testbed::attach_pass(&gen_ns, "gen0").expect("attach_pass");
    assert!(
        testbed::xdp_prog_id(&gen_ns, "gen0")
            .expect("query")
            .is_some()
    );
    bed.down().expect("down");
}

#[test]
fn cli_up_status_down() {
    let name = unique_name("cli");
    let up = lab_cmd(&["up", "--name", &name, "--queues", "2"]);
    assert!(up.status.success(), "{}", stderr(&up));
    // From here on, make sure it goes away even if an assertion fails.
    let _guard = Guard(name.clone());

    let st = lab_cmd(&["status", "--name", &name, "--json"]);
    assert!(st.status.success(), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["topology"], "switched");
    assert_eq!(v["queues"], 2);
    assert_eq!(v["hosts"]["gen"]["netns"], format!("{name}-gen"));
    assert_eq!(v["hosts"]["gen"]["iface"], "gen0");
    assert_eq!(v["hosts"]["gen"]["ip"], "198.18.0.1");
    assert_eq!(v["hosts"]["gen"]["mac"], "02:00:00:00:00:01");
    assert_eq!(v["hosts"]["dut"]["ip"], "198.18.0.2");
    assert_eq!(v["hosts"]["dut"]["mac"], "02:00:00:00:00:02");
    assert_eq!(v["hosts"]["mon"]["netns"], format!("{name}-mon"));
    assert_eq!(v["hosts"]["mon"]["iface"], "mon0");

    let text = lab_cmd(&["status", "--name", &name]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("ip netns exec {name}-gen")),
        "{text}"
    );

    // up twice: refused, lab intact.
    let again = lab_cmd(&["up", "--name", &name]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert!(stderr(&again).starts_with("error: "));
    let st2 = lab_cmd(&["status", "--name", &name, "--json"]);
    assert_eq!(st2.stdout, st.stdout, "second up changed the lab");

    let down = lab_cmd(&["down", "--name", &name]);
    assert!(down.status.success(), "{}", stderr(&down));
    let (ns, _) = common::root_snapshot();
    assert!(common::lab_namespaces(&ns, &name).is_empty());

    let gone = lab_cmd(&["status", "--name", &name]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("no lab named"), "{}", stderr(&gone));
}

#[test]
fn cli_direct_json_has_no_mon() {
    let name = unique_name("dir");
    let up = lab_cmd(&["up", "--name", &name, "--topology", "direct"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let _guard = Guard(name.clone());
    let st = lab_cmd(&["status", "--name", &name, "--json"]);
    assert!(st.status.success(), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    assert_eq!(v["topology"], "direct");
    assert_eq!(v["queues"], 1);
    assert!(v["hosts"].get("mon").is_none(), "{v}");
    assert_eq!(v["hosts"]["dut"]["netns"], format!("{name}-dut"));
}

/// The entry of lab `name` in `lab status --json` (every lab on the machine).
fn listed(name: &str) -> Option<serde_json::Value> {
    let o = lab_cmd(&["status", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .find(|l| l["name"] == name)
        .cloned()
}

#[test]
fn the_listing_shows_owners_and_down_stale_spares_live_persistent_and_unowned_labs() {
    // Persistent: `lab up`.
    let kept = unique_name("per");
    let up = lab_cmd(&["up", "--name", &kept, "--topology", "direct"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let _g1 = Guard(kept.clone());
    // Process-scoped, owner alive: this test process.
    let bed = Testbed::up(&UpOptions {
        name: unique_name("own"),
        topology: Topology::Direct,
        queues: 1,
    })
    .expect("up");
    // No record (as built by an older lab): only a namespace.
    let bare = unique_name("bare");
    let st = Command::new("ip")
        .args(["netns", "add", &testbed::gen_netns(&bare)])
        .status()
        .expect("ip netns add");
    assert!(st.success());
    let _g2 = Guard(bare.clone());

    let p = listed(&kept).expect("the persistent lab is listed");
    assert_eq!(p["owner"]["scope"], "persistent", "{p:#}");
    assert_eq!(p["topology"], "direct", "{p:#}");
    assert_eq!(p["stale"], false, "{p:#}");
    let o = listed(bed.name()).expect("the process-scoped lab is listed");
    assert_eq!(o["owner"]["scope"], "process", "{o:#}");
    assert_eq!(o["owner"]["pid"], std::process::id(), "{o:#}");
    assert_eq!(o["stale"], false, "{o:#}");
    assert_eq!(o["namespaces"].as_array().map(Vec::len), Some(2), "{o:#}");
    let b = listed(&bare).expect("the unowned lab is listed");
    assert!(b["owner"].is_null(), "{b:#}");
    assert_eq!(b["stale"], false, "{b:#}");

    let down = lab_cmd(&["down", "--stale"]);
    assert!(down.status.success(), "{}", stderr(&down));
    let text = lab_cmd(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    for n in [kept.as_str(), bed.name(), bare.as_str()] {
        assert!(listed(n).is_some(), "lab down --stale removed {n}");
        assert!(text.contains(n), "{text}");
    }
    let name = bed.name().to_owned();
    bed.down().expect("down");
    assert!(listed(&name).is_none(), "its record outlived the lab");
}

#[test]
fn bad_input_is_refused() {
    let name = unique_name("bad");
    for q in ["0", "65"] {
        let o = lab_cmd(&["up", "--name", &name, "--queues", q]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("queue"), "{}", stderr(&o));
    }
    let (ns, _) = common::root_snapshot();
    assert!(common::lab_namespaces(&ns, &name).is_empty());

    let o = lab_cmd(&["down", "--name", &name]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no lab named"), "{}", stderr(&o));

    let o = lab_cmd(&["up", "--name", "bad/name"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid lab name"), "{}", stderr(&o));
}

#[test]
fn down_removes_a_half_built_lab() {
    let name = unique_name("half");
    let gen_ns = testbed::gen_netns(&name);
    let st = Command::new("ip")
        .args(["netns", "add", &gen_ns])
        .status()
        .expect("ip netns add");
    assert!(st.success());
    let _guard = Guard(name.clone());

    let o = lab_cmd(&["status", "--name", &name]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("incomplete"), "{}", stderr(&o));

    let o = lab_cmd(&["up", "--name", &name]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let removed = testbed::down(&name).expect("down");
    assert_eq!(removed, vec![gen_ns]);
}

/// Removes lab `.0` on drop, whatever state it is in.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = testbed::down(&self.0);
    }
}
