//! SSH labs (`lab up --topology ssh`) and remote runs over them: sshd in every
//! host namespace, reached with the lab's own ssh_config and keys, host keys
//! checked, and nothing (sshd, management interfaces, keys) left after
//! `lab down`. Each test removes its lab on every way out (a guard runs
//! `lab down --name`), and they run one at a time.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use common::{lab_bin, require_tools};

static SERIAL: Mutex<()> = Mutex::new(());

/// `lab down --name NAME` when dropped (the test's lab goes even if it fails).
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        if !testbed::existing_namespaces(&self.0).is_empty() || testbed::ssh::is_ssh(&self.0) {
            let _ = Command::new(lab_bin())
                .args(["down", "--name", &self.0])
                .output();
        }
    }
}

/// A test's start: the SSH tests run one at a time (each builds labs and
/// measures), the tools are built, and its scratch directory `TAG-PID` is
/// empty (returned; removed by the test at its end).
fn begin(tag: &str) -> (std::sync::MutexGuard<'static, ()>, PathBuf) {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let tmp = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    (g, tmp)
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(lab_bin()).args(args).output().unwrap()
}

/// Brings up SSH lab `name`; returns the guard and the testbed file's path.
fn ssh_lab(name: &str) -> (Down, PathBuf) {
    ssh_lab_with(name, &[])
}

/// [`ssh_lab`] with more `lab up` arguments.
fn ssh_lab_with(name: &str, extra: &[&str]) -> (Down, PathBuf) {
    let guard = Down(name.to_owned());
    let mut args = vec!["up", "--name", name, "--topology", "ssh"];
    args.extend(extra);
    let up = lab(&args);
    assert!(
        up.status.success(),
        "lab up --topology ssh: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let st = lab(&["status", "--name", name, "--json"]);
    assert!(st.status.success());
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let file = PathBuf::from(
        v["testbed"]
            .as_str()
            .expect("status names the testbed file"),
    );
    assert!(file.exists());
    (guard, file)
}

fn sshd_in(netns: &str) -> Vec<u32> {
    testbed::procs::named_in(netns, "sshd")
}

fn ssh(config: &Path, dest: &str, cmd: &str) -> std::process::Output {
    Command::new("ssh")
        .arg("-F")
        .arg(config)
        .args([dest, cmd])
        .output()
        .unwrap()
}

#[test]
fn an_ssh_lab_answers_over_ssh_only_with_its_keys_and_leaves_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("ssh");
    let (guard, file) = ssh_lab(&name);
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    let cfg = tf.ssh_config.clone().unwrap();
    assert_eq!(tf.gens.len(), 2, "two generator hosts");
    assert_ne!(tf.gens[0].ssh, tf.gens[1].ssh);
    assert_ne!(tf.gens[0].ip, tf.gens[1].ip);
    assert_ne!(tf.gens[0].mac, tf.gens[1].mac);
    // Every host: sshd runs in its namespace, and a command over SSH runs there
    // (it sees the host's data interface).
    for e in tf.endpoints() {
        let ns = e.host().to_owned();
        assert!(!sshd_in(&ns).is_empty(), "no sshd in {ns}");
        let out = ssh(&cfg, &e.ssh, &format!("ip -br link show dev {}", e.iface));
        assert!(
            out.status.success(),
            "{}: {}",
            e.ssh,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&e.iface));
    }
    // The data path from each generator host: a TCP connection to a closed port
    // of the DUT is refused by its kernel (a RST comes back: the switch forwards
    // the host's frames to the DUT and the answer back to it by MAC; without the
    // answer it would time out), and the monitor's port sees SYN and RST.
    let mon_rx = || -> u64 {
        let mon = tf.mon.as_ref().unwrap();
        let out = ssh(
            &cfg,
            &mon.ssh,
            // /proc/net/dev is the namespace's (sysfs is the root's here).
            &format!(
                "awk '$1 == \"{}:\" {{ print $3 }}' /proc/net/dev",
                mon.iface
            ),
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    for g in &tf.gens {
        let before = mon_rx();
        let out = ssh(
            &cfg,
            &g.ssh,
            &format!("timeout 5 bash -c ': </dev/tcp/{}/9'", tf.dut.ip.unwrap()),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Connection refused"),
            "{}: no answer from the DUT (status {:?}): {err}",
            g.ssh,
            out.status.code()
        );
        let seen = mon_rx() - before;
        assert!(seen >= 2, "{}: the monitor saw {seen} of 2 frames", g.ssh);
    }
    // Host keys are checked: with a known_hosts that does not hold the key, the
    // connection is refused (BatchMode: no prompt).
    let dir = testbed::ssh::dir(&name);
    let other = dir.join("known_hosts.other");
    std::fs::write(&other, "").unwrap();
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", other.display()))
        .args([&tf.dut.ssh, "true"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown host key was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // lab status lists it with its testbed file.
    let all: serde_json::Value =
        serde_json::from_slice(&lab(&["status", "--json"]).stdout).unwrap();
    let entry = all["labs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["testbed"].as_str(), Some(file.to_str().unwrap()));
    let ssh_lab = testbed::ssh::attach(&name).unwrap();
    assert_eq!(ssh_lab.hosts.len(), 4);
    assert_eq!(ssh_lab.gens.len(), 2);
    let pids: Vec<u32> = ssh_lab
        .hosts
        .iter()
        .flat_map(|h| sshd_in(&h.netns))
        .collect();
    // lab down: no sshd, no management interface, no key left.
    let down = lab(&["down", "--name", &name]);
    assert!(down.status.success());
    drop(guard);
    assert!(!dir.exists(), "{} left", dir.display());
    let gone = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let root_ifaces = || -> Vec<String> {
        let out = Command::new("ip").args(["-br", "link"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        ssh_lab
            .hosts
            .iter()
            .filter(|h| text.contains(&h.root_iface))
            .map(|h| h.root_iface.clone())
            .collect()
    };
    while (!pids.iter().all(gone) || !root_ifaces().is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(pids.iter().all(gone), "sshd outlived lab down: {pids:?}");
    assert!(
        root_ifaces().is_empty(),
        "management interfaces left: {:?}",
        root_ifaces()
    );
}

/// A demo's records: (gen final, tstamp final, dut status) as JSON.
fn demo_records(out: &Path) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let fin = |f: &str| final_in(&out.join(f));
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dut-status.json")).unwrap())
            .unwrap();
    (fin("gen.json"), fin("tstamp.json"), status)
}

fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{} missing in {v}", path.join(".")))
}

/// What a demo measured, checked on its own: answers = queries (within 1 %), the
/// DUT program counted what gen sent, tstamp matched responses on the mirror.
fn check_demo(what: &str, out: &Path) -> f64 {
    let (g, t, d) = demo_records(out);
    let sent = num(&g, &["tx_packets"]);
    let answered = num(&g, &["rx_packets"]);
    let dut = num(&d, &["counters", "packets"]);
    assert!(sent > 100_000.0, "{what}: 50k/s for 5 s, gen sent {sent}");
    assert!(
        answered >= sent * 0.99,
        "{what}: {answered} answers to {sent} queries"
    );
    assert!(
        dut >= sent * 0.99,
        "{what}: the DUT counted {dut} of {sent}"
    );
    assert!(
        num(&t, &["matched"]) > 0.0,
        "{what}: tstamp matched nothing: {t}"
    );
    sent
}

fn processes_of_tools(lab: &str) -> Vec<(String, u32)> {
    let mut v = Vec::new();
    for ns in testbed::existing_namespaces(lab) {
        for t in ["gen", "dut", "tstamp"] {
            v.extend(
                testbed::procs::named_in(&ns, t)
                    .into_iter()
                    .map(|p| (t.to_owned(), p)),
            );
        }
    }
    v
}

/// The XDP program on the DUT's dut0 (the lab's placeholder once the demo's is gone).
fn dut0_program(lab: &str) -> String {
    let out = Command::new("ip")
        .args([
            "-n",
            &testbed::dut_netns(lab),
            "-d",
            "link",
            "show",
            "dev",
            "dut0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "name")
        .nth(1)
        .unwrap_or("")
        .to_owned()
}

#[test]
fn the_demo_over_ssh_measures_what_the_local_demo_does() {
    let (_g, tmp) = begin("lab-ssh-demo");
    // The local demo.
    let local_name = testbed::unique_name("dloc");
    let _local_guard = Down(local_name.clone());
    let local = Command::new(lab_bin())
        .args(["demo", "--name", &local_name, "--out"])
        .arg(tmp.join("local"))
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "local demo: {}",
        String::from_utf8_lossy(&local.stderr)
    );
    // The same over ssh, on an SSH lab.
    let name = testbed::unique_name("dssh");
    let (_guard, file) = ssh_lab(&name);
    let placeholder = dut0_program(&name);
    let remote = Command::new(lab_bin())
        .args(["demo", "--testbed"])
        .arg(&file)
        .arg("--out")
        .arg(tmp.join("ssh"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(remote.status.success(), "demo over ssh: {stderr}");
    assert!(stderr.contains("pre-flight of 4 host(s)"), "{stderr}");
    let a = check_demo("local", &tmp.join("local"));
    let b = check_demo("ssh", &tmp.join("ssh"));
    // Over ssh both generator hosts sent (their total is gen.json), and
    // tstamp's files came back from the monitor host.
    assert!(stderr.contains("from 2 generator hosts"), "{stderr}");
    let hosts: f64 = (0..2)
        .map(|i| {
            num(
                &final_in(&tmp.join("ssh").join(format!("gen{i}.json"))),
                &["tx_packets"],
            )
        })
        .inspect(|n| assert!(*n > 0.0, "a generator host sent nothing"))
        .sum();
    assert_eq!(hosts, b, "the hosts' tx_packets and their total");
    for f in ["rtt.hdr", "rtt-histogram.csv", "rtt.svg"] {
        let len = std::fs::metadata(tmp.join("ssh").join(f)).map_or(0, |m| m.len());
        assert!(len > 0, "{f} not fetched from the monitor host");
    }
    // Same rate and duration: the same number of queries, within 5 %.
    assert!((a - b).abs() <= 0.05 * a, "local sent {a}, over ssh {b}");
    // The remote DUT ran in the foreground and removed its program when its
    // connection closed; no tool is left on any host.
    assert_eq!(dut0_program(&name), placeholder, "the DUT program stayed");
    assert!(
        processes_of_tools(&name).is_empty(),
        "{:?}",
        processes_of_tools(&name)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_host_whose_tools_are_another_build_is_refused_by_name() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("dver");
    let (_guard, file) = ssh_lab(&name);
    // The monitor's tool directory: a tstamp that says it is another build.
    let tmp = std::env::temp_dir().join(format!("lab-ssh-ver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let fake = tmp.join("tstamp");
    std::fs::write(&fake, "#!/bin/sh\necho 'tstamp 0.0.1 (git 000000000000)'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    tf.mon.as_mut().unwrap().tools = tmp.clone();
    let other = tmp.join("testbed.toml");
    std::fs::write(&other, tf.to_toml()).unwrap();
    let placeholder = dut0_program(&name);
    let res = Command::new(lab_bin())
        .args(["demo", "--testbed"])
        .arg(&other)
        .arg("--out")
        .arg(tmp.join("out"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0];
    let mon = tf.mon.as_ref().unwrap();
    assert!(line.contains(&format!("mon ({})", mon.ssh)), "{line}");
    assert!(
        line.contains("is version `0.0.1 (git 000000000000)`")
            && line.contains(buildinfo_version()),
        "{line}"
    );
    // Refused before anything ran: no DUT program, no tool.
    assert_eq!(dut0_program(&name), placeholder);
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// This build's version as `lab --version` prints it (after the name).
fn buildinfo_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let out = Command::new(lab_bin()).arg("--version").output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("lab ")
            .to_owned()
    })
}

#[test]
fn remote_tools_stop_when_lab_is_killed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("dkil");
    let (_guard, file) = ssh_lab(&name);
    let placeholder = dut0_program(&name);
    let tmp = std::env::temp_dir().join(format!("lab-ssh-kill-{}", std::process::id()));
    let mut lab_run = Command::new(lab_bin())
        .args(["demo", "--duration", "60s", "--testbed"])
        .arg(&file)
        .arg("--out")
        .arg(&tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the DUT program is installed and gen runs on the generator host
    // (after pre-flight, whose `gen --version` is a gen process too).
    let deadline = Instant::now() + Duration::from_secs(60);
    while dut0_program(&name) == placeholder
        || testbed::procs::named_in(&testbed::gen_netns(&name), "gen").is_empty()
    {
        assert!(Instant::now() < deadline, "the demo never got to traffic");
        assert!(
            lab_run.try_wait().unwrap().is_none(),
            "lab demo ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(!processes_of_tools(&name).is_empty());
    lab_run.kill().unwrap();
    lab_run.wait().unwrap();
    // Signals do not cross ssh: the tools stop because their connections went.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_of_tools(&name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processes_of_tools(&name).is_empty(),
        "tools outlived lab: {:?}",
        processes_of_tools(&name)
    );
    // The foreground DUT removed its program as on Ctrl-C.
    assert_eq!(dut0_program(&name), placeholder, "the DUT program stayed");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A dut-rate experiment for the SSH lab: the drop program, gen at 100k frames/s.
const SSH_DROP: &str = r#"name = "ssh-drop"
title = "Drop rate over ssh"
description = "drop program on the DUT host, gen on the generator host"
topology = "switched"
measure = "dut-rate"
program = "drop"
duration = "2s"
repetitions = REPS

[quick]
duration = "1s"
repetitions = 1

[[series]]
name = "native"
mode = "native"
profile = "min-multi-flow"
rate = "100k"
"#;

fn drop_rates(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("points.csv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(",drop_pps,"))
        .map(|l| l.split(',').nth(5).unwrap().parse().unwrap())
        .collect()
}

/// The values of `metric` in points.csv, in order.
fn values_of(out: &Path, metric: &str) -> Vec<f64> {
    std::fs::read_to_string(out.join("points.csv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(',').nth(2) == Some(metric))
        .map(|l| l.split(',').nth(5).unwrap().parse().unwrap())
        .collect()
}

/// An interface's RX packet counter in a namespace (/proc/net/dev).
fn rx_packets_in(netns: &str, iface: &str) -> u64 {
    rx_in(netns, iface).1
}

#[test]
fn lab_run_over_ssh_with_two_generator_hosts_shares_the_rate_and_starts_them_together() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("rssh");
    let (_guard, file) = ssh_lab(&name);
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    assert_eq!(tf.gens.len(), 2);
    let tmp = std::env::temp_dir().join(format!("lab-ssh-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let exp = tmp.join("ssh-drop.toml");
    std::fs::write(&exp, SSH_DROP.replace("REPS", "2")).unwrap();
    let dut_ns = testbed::dut_netns(&name);
    let dut_rx0 = rx_packets_in(&dut_ns, testbed::DUT_IFACE);
    let res = Command::new(lab_bin())
        .arg("run")
        .arg(&exp)
        .arg("--testbed")
        .arg(&file)
        .arg("--out")
        .arg(tmp.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{stderr}");
    let dut_rx = rx_packets_in(&dut_ns, testbed::DUT_IFACE) - dut_rx0;
    let out = tmp.join("out");
    // The DUT program's drop rate is what the two hosts offered together (paced at
    // 100k in all, 50k each, within 2 %), and the point's offered rate is the sum.
    let rates = drop_rates(&out);
    assert_eq!(rates.len(), 2, "{rates:?}");
    for r in &rates {
        assert!((r - 100_000.0).abs() <= 2_000.0, "drop rate {r}: {stderr}");
    }
    let offered = values_of(&out, "offered_pps");
    let per_host = [
        values_of(&out, "gen0_offered_pps"),
        values_of(&out, "gen1_offered_pps"),
    ];
    for rep in 0..2 {
        let sum: f64 = per_host.iter().map(|h| h[rep]).sum();
        assert!(
            (offered[rep] - sum).abs() < 1.0,
            "{offered:?} vs {per_host:?}"
        );
        for h in &per_host {
            assert!(
                (h[rep] - 50_000.0).abs() <= 1_000.0,
                "a host's share: {per_host:?}"
            );
        }
    }
    // Both hosts sent, and what they sent together is what the DUT's port
    // received (its own counter; nothing else uses the data path).
    let mut sent = [0u64; 2];
    for entry in std::fs::read_dir(out.join("raw")).unwrap() {
        let path = entry.unwrap().path();
        let fname = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, s) in sent.iter_mut().enumerate() {
            if fname.ends_with(&format!("_gen{i}.json")) {
                let text = std::fs::read_to_string(&path).unwrap();
                let fin: records::generator::Final = serde_json::from_str(
                    text.lines()
                        .find(|l| l.contains(r#""type":"final""#))
                        .unwrap(),
                )
                .unwrap();
                assert!(fin.start_at_ns.is_some(), "{fname}: no --start-at");
                *s += fin.tx_packets;
            }
        }
    }
    assert!(sent[0] > 0 && sent[1] > 0, "each host sent: {sent:?}");
    assert_eq!(
        sent[0] + sent[1],
        dut_rx,
        "the hosts' TX {sent:?} against the DUT port's RX"
    );
    // The start error of each host, measured at the monitor: its first frame came
    // after the common start (ignoring --start-at would make it seconds early)
    // and soon after.
    for i in 0..2 {
        let errs = values_of(&out, &format!("gen{i}_start_error_ms"));
        assert_eq!(errs.len(), 2, "gen{i}: {errs:?}");
        for e in errs {
            assert!((0.0..1000.0).contains(&e), "gen{i} start error {e} ms");
        }
    }
    assert!(stderr.contains("at the monitor"), "{stderr}");
    // run.json records each host's clock synchronisation state.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let clocks = run["runs"][0]["clocks"].as_array().unwrap();
    let roles: Vec<&str> = clocks.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["gen[0]", "gen[1]", "dut", "mon"]);
    for c in clocks {
        assert!(
            ["chronyc", "pmc", "timedatectl", "unknown"].contains(&c["source"].as_str().unwrap()),
            "{c}"
        );
    }
    assert!(processes_of_tools(&name).is_empty());
    // What a testbed cannot do is one line before anything runs, naming the
    // experiment file's line and key that need it: the tenants topology, a
    // neighbour sweep, a response-time measure without a [mon] host.
    let refused = |exp: &str, file: &Path| {
        let res = Command::new(lab_bin())
            .args(["run", exp, "--testbed"])
            .arg(file)
            .arg("--out")
            .arg(tmp.join("out2"))
            .output()
            .unwrap();
        assert!(!res.status.success());
        assert!(!tmp.join("out2").exists(), "{exp}: refused after it began");
        let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        stderr
    };
    let shipped = |exp: &str, key: &str| -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../profiles/experiments")
            .join(format!("{exp}.toml"));
        let text = std::fs::read_to_string(path).unwrap();
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + 1;
        format!("{exp}.toml:{line}: {key}: lab run --testbed")
    };
    let stderr = refused("tenants", &file);
    assert!(
        stderr.contains(&shipped("tenants", "topology")) && stderr.contains("no [[tenant]]"),
        "{stderr}"
    );
    let mut tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    tf.mon = None;
    let no_mon = tmp.join("no-mon.toml");
    std::fs::write(&no_mon, tf.to_toml()).unwrap();
    let stderr = refused("dns-ping-latency", &no_mon);
    assert!(
        stderr.contains(&shipped("dns-ping-latency", "measure")) && stderr.contains("[mon]"),
        "{stderr}"
    );
    // A queue sweep sets the hosts' channels with ethtool -L: the SSH lab's
    // veths have one queue each, so drop-rate's sweep to 2 is refused after
    // pre-flight, naming the host, its interface and its maximum.
    let res = Command::new(lab_bin())
        .args(["run", "drop-rate", "--quick", "--rate", "max", "--testbed"])
        .arg(&file)
        .arg("--out")
        .arg(tmp.join("out3"))
        .output()
        .unwrap();
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    let want = format!(
        "{}: dut ({}): dut0 has at most 1 queue(s) (`ethtool -l`), the sweep goes to 2",
        shipped("drop-rate", "parameter"),
        tf.dut.ssh
    );
    assert!(errors[0].contains(&want), "{stderr}\nwanted: {want}");
    assert!(!tmp.join("out3").exists());
    // Unpaced series onto real hosts only with --rate max: checksum's series
    // have no rate.
    let stderr = refused("checksum", &file);
    assert!(
        stderr.contains("checksum.toml:")
            && stderr.contains(": rate: lab run --testbed")
            && stderr.contains("pass --rate max"),
        "{stderr}"
    );
    // Pre-flight checks the DUT's MAC and, without one in the file, each
    // generator host's neighbour entry for the DUT: nothing is sent to
    // another machine.
    let preflight_error = |f: &Path| -> String {
        let res = Command::new(lab_bin())
            .args(["run", "checksum", "--quick", "--rate", "max", "--testbed"])
            .arg(f)
            .arg("--out")
            .arg(tmp.join("out4"))
            .output()
            .unwrap();
        assert!(!res.status.success());
        assert!(!tmp.join("out4").exists());
        let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        errors[0].to_owned()
    };
    let mut tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    tf.dut.mac = Some([2, 0, 0, 0, 0, 0x99]);
    let wrong_mac = tmp.join("wrong-mac.toml");
    std::fs::write(&wrong_mac, tf.to_toml()).unwrap();
    let e = preflight_error(&wrong_mac);
    assert!(
        e.contains("has MAC 02:00:00:00:00:02, the testbed file says 02:00:00:00:00:99"),
        "{e}"
    );
    tf.dut.mac = None;
    let no_mac = tmp.join("no-mac.toml");
    std::fs::write(&no_mac, tf.to_toml()).unwrap();
    let gen_ns = testbed::gen_netns(&name);
    let neigh = |mac: &str| {
        let st = Command::new("ip")
            .args([
                "-n",
                &gen_ns,
                "neigh",
                "replace",
                &testbed::DUT_IP.to_string(),
            ])
            .args(["lladdr", mac, "dev", testbed::GEN_IFACE, "nud", "permanent"])
            .status()
            .unwrap();
        assert!(st.success());
    };
    neigh("02:00:00:00:00:99");
    let e = preflight_error(&no_mac);
    neigh("02:00:00:00:00:02");
    assert!(
        e.contains("neighbour entry for 198.18.0.2 on gen0 is 02:00:00:00:00:99")
            && e.contains("refusing to send to another machine"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_host_whose_sshd_dies_mid_run_stops_its_tools_and_the_run_keeps_its_points() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("kssh");
    let (_guard, file) = ssh_lab(&name);
    let placeholder = dut0_program(&name);
    let tmp = std::env::temp_dir().join(format!("lab-ssh-kssh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let exp = tmp.join("ssh-drop.toml");
    std::fs::write(&exp, SSH_DROP.replace("REPS", "20")).unwrap();
    let out = tmp.join("out");
    let mut run = Command::new(lab_bin())
        .arg("run")
        .arg(&exp)
        .arg("--testbed")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Two measurements in, kill every sshd of the DUT host (listener and sessions).
    let deadline = Instant::now() + Duration::from_secs(120);
    while drop_rates(&out).len() < 2 {
        assert!(Instant::now() < deadline, "no two points measured");
        assert!(run.try_wait().unwrap().is_none(), "lab run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dut_ns = testbed::dut_netns(&name);
    let killed = testbed::procs::named_in(&dut_ns, "sshd");
    assert!(!killed.is_empty());
    testbed::procs::kill_inside_named(&dut_ns, "sshd");
    // The DUT's foreground dut loses its connection: it stops and removes its
    // program; lab's next dut commands fail; gen is stopped by lab.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "lab run did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_of_tools(&name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processes_of_tools(&name).is_empty(),
        "tools outlived their connection: {:?}",
        processes_of_tools(&name)
    );
    assert_eq!(dut0_program(&name), placeholder, "the DUT program stayed");
    // The points measured before are kept (and in the report).
    let kept = drop_rates(&out);
    assert!(kept.len() >= 2 && kept.len() < 20, "{kept:?}");
    assert!(out.join("report.md").exists());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The values of `metric` in a run's points.csv, per (series, x).
/// The SSH lab's testbed file with its first generator host only (the NDR
/// search's single-host path), written into `dir`.
fn one_gen(file: &Path, dir: &Path) -> PathBuf {
    let mut tf = lab::testbed_file::TestbedFile::load(file).unwrap();
    tf.gens.truncate(1);
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("one-gen.toml");
    std::fs::write(&p, tf.to_toml()).unwrap();
    p
}

fn points(out: &Path, metric: &str) -> std::collections::BTreeMap<(String, String), f64> {
    std::fs::read_to_string(out.join("points.csv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > 5 && f[2] == metric)
        .map(|f| ((f[1].to_owned(), f[3].to_owned()), f[5].parse().unwrap()))
        .collect()
}

/// A run's ledger.csv rows: (series, x, chain, stage, packets, lost).
fn ledger_rows(out: &Path) -> Vec<(String, String, String, String, u64, u64)> {
    std::fs::read_to_string(out.join("ledger.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[1].to_owned(),
                f[2].to_owned(),
                f[4].to_owned(),
                f[5].to_owned(),
                f[7].parse().unwrap(),
                f[8].parse().unwrap(),
            )
        })
        .collect()
}

/// The final record among the JSON lines of file `f`.
fn final_in(f: &Path) -> serde_json::Value {
    std::fs::read_to_string(f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "final")
        .unwrap_or_else(|| panic!("no final record in {}", f.display()))
}

/// tstamp's final record of one measurement in `out/raw`.
fn tstamp_final(out: &Path, series: &str, x: &str) -> serde_json::Value {
    final_in(
        &out.join("raw")
            .join(format!("{series}_x{x}_r1_tstamp.json")),
    )
}

#[test]
fn a_response_time_experiment_over_ssh_measures_what_the_local_lab_does_and_its_ledger_balances() {
    let (_g, tmp) = begin("lab-ssh-rt");
    let run = |extra: &[&std::ffi::OsStr], out: &Path| {
        let res = Command::new(lab_bin())
            .args(["run", "dns-ping-latency", "--quick", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
    };
    let (local, remote) = (tmp.join("local"), tmp.join("ssh"));
    run(&[], &local);
    // Over ssh from both generator hosts of the SSH lab: each sends half the
    // rate from its own address, and tstamp tells their queries apart.
    let name = testbed::unique_name("rtss");
    let (_guard, file) = ssh_lab(&name);
    run(&["--testbed".as_ref(), file.as_os_str()], &remote);
    // Both runs have every point (2 series x 2 rates), and over ssh the
    // response times are of the same order as on the local lab (the same
    // kernel paths, one more ssh session per tool). The user-space series is
    // in milliseconds and moves with the machine's load: only its presence is
    // compared.
    let (a, b) = (points(&local, "rtt_p50_us"), points(&remote, "rtt_p50_us"));
    assert_eq!(a.len(), 4, "local: {a:?}");
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "local {a:?}, ssh {b:?}"
    );
    for (k, l) in a.iter().filter(|(k, _)| k.0 == "native") {
        let r = b[k];
        assert!(
            *l > 0.0 && r > 0.0 && r < 10.0 * l && l < &(10.0 * r),
            "{k:?}: p50 {l} us on the local lab, {r} us over ssh"
        );
    }
    // tstamp's answers on the mirror are the DUT program's answers (its
    // counters read over the DUT's ssh connection), and tstamp's HDR log was
    // fetched back.
    let rows = ledger_rows(&remote);
    for x in ["20000", "50000"] {
        let t = tstamp_final(&remote, "native", x);
        let answered = rows
            .iter()
            .find(|r| r.0 == "native" && r.1 == x && r.3 == "DUT answered")
            .map(|r| r.4)
            .unwrap_or_else(|| panic!("no DUT answered stage: {rows:?}"));
        let seen = num(&t, &["responses"]) as u64;
        assert!(answered > 0, "native {x}: the DUT answered nothing");
        assert!(
            seen.abs_diff(answered) <= (answered / 10_000).max(10),
            "native {x}: tstamp saw {seen} answers, the DUT program counted {answered}"
        );
        // Both hosts sent half the queries and got their answers: their sum
        // is the point's answered rate, and what tstamp matched is what both
        // hosts' gens counted as answered (the raw final records).
        let key = ("native".to_owned(), x.to_owned());
        let per_host: Vec<f64> = (0..2)
            .map(|i| points(&remote, &format!("gen{i}_answered_pps"))[&key])
            .collect();
        let total = points(&remote, "answered_pps")[&key];
        assert!(
            (per_host[0] + per_host[1] - total).abs() < 1.0,
            "native {x}: per host {per_host:?}, in all {total}"
        );
        let rate: f64 = x.parse().unwrap();
        for (i, h) in per_host.iter().enumerate() {
            assert!(
                (h - rate / 2.0).abs() <= 0.05 * rate,
                "native {x}: host {i} answered {h}/s of its half"
            );
        }
        let gen_rx: u64 = (0..2)
            .map(|i| {
                let f = final_in(
                    &remote
                        .join("raw")
                        .join(format!("native_x{x}_r1_gen{i}.json")),
                );
                assert!(f["start_at_ns"].is_u64(), "host {i}: no --start-at");
                num(&f, &["rx_packets"]) as u64
            })
            .sum();
        let matched = num(&t, &["matched"]) as u64;
        assert!(
            matched.abs_diff(gen_rx) <= (gen_rx / 10_000).max(10),
            "native {x}: tstamp matched {matched}, the hosts' gens counted {gen_rx} answers"
        );
        let hdr = remote
            .join("raw")
            .join(format!("native_x{x}_r1_tstamp.hdr"));
        let text = std::fs::read_to_string(&hdr).unwrap();
        assert!(text.starts_with("#"), "{}: {text:.80}", hdr.display());
    }
    // The ledger over ssh balances: each host's interface counters (over ssh),
    // gen's and the DUT's counts and tstamp's, chain by chain, with the unseen
    // switch named.
    let native: Vec<_> = rows.iter().filter(|r| r.0 == "native").collect();
    for chain in ["request", "answer", "mirror"] {
        let stages: Vec<_> = native.iter().filter(|r| r.2 == chain).collect();
        assert!(stages.len() >= 3, "{chain}: {stages:?}");
        for r in &stages {
            assert!(r.4 > 0, "{chain}: nothing counted at {}", r.3);
            assert!(r.5 <= (r.4 / 10_000).max(10), "{chain}: lost at {r:?}");
        }
    }
    for s in [
        "gen0 (2 generator hosts) -> dut0 (sent; the testbed's switch between them is not observed)",
        "dut0 received",
        "gen0 (2 generator hosts) received",
        "mon0 received",
        "tstamp captured",
    ] {
        assert!(
            native.iter().any(|r| r.3 == s),
            "no stage `{s}`: {native:?}"
        );
    }
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn an_ndr_search_over_ssh_finds_a_rate_from_the_hosts_counters_and_tstamp() {
    let (_g, tmp) = begin("lab-ssh-ndr");
    let name = testbed::unique_name("ndrs");
    let (_guard, file) = ssh_lab(&name);
    let file = one_gen(
        &file,
        &std::env::temp_dir().join(format!("lab-ssh-ndr1-{}", std::process::id())),
    );
    let res = Command::new(lab_bin())
        .args(["run", "dns-ndr", "--quick", "--testbed"])
        .arg(&file)
        .arg("--out")
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // Each series has its point, and each of its trials was judged from the
    // ledger over ssh and tstamp's p99 on the monitor host. dns-ping passes
    // the search's floor; dns-cache's p99 bound can fail even there on a
    // busy machine (a measured 9.4k packets/s on an idle one).
    let found = points(&tmp, "ndr_pps");
    assert_eq!(found.len(), 2, "{found:?}");
    let ping = found
        .iter()
        .find(|((s, _), _)| s == "dns-ping native")
        .map(|(_, r)| *r);
    assert!(ping.is_some_and(|r| r >= 5_000.0), "{found:?}");
    let trials = std::fs::read_to_string(tmp.join("trials.csv")).unwrap();
    for ((series, _), rate) in &found {
        if *rate == 0.0 {
            continue;
        }
        let rows: Vec<Vec<&str>> = trials
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[1] == series.as_str())
            .collect();
        assert!(rows.len() >= 2, "{series}: {trials}");
        // A passed trial sent frames, lost none and has a p99 under the bound.
        let passed: Vec<_> = rows.iter().filter(|f| f[12] == "true").collect();
        assert!(!passed.is_empty(), "{series}: {trials}");
        for f in passed {
            let (sent, lost): (u64, u64) = (f[8].parse().unwrap(), f[9].parse().unwrap());
            let p99: f64 = f[11].parse().unwrap();
            assert!(sent > 0 && lost == 0 && p99 <= 200.0, "{f:?}");
        }
    }
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_program_left_by_a_run_that_died_is_removed_by_the_next_preflight() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let name = testbed::unique_name("dead");
    let (_guard, file) = ssh_lab(&name);
    let placeholder = dut0_program(&name);
    // A run's DUT process on the DUT host, killed with SIGKILL: its program
    // stays on dut0 with an owner record naming a process that is gone.
    let mut dut = Command::new(testbed::binaries::locate("dut").unwrap())
        .args(["--netns", &testbed::dut_netns(&name), "install", "drop"])
        .args([
            "--iface",
            testbed::DUT_IFACE,
            "--mode",
            "native",
            "--foreground",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dut0_program(&name) == placeholder {
        assert!(Instant::now() < deadline, "dut never attached its program");
        std::thread::sleep(Duration::from_millis(100));
    }
    dut.kill().unwrap();
    dut.wait().unwrap();
    let left = dut0_program(&name);
    assert_ne!(left, placeholder, "SIGKILL left nothing behind to clean");
    // The next run's pre-flight removes it (and says so), then runs.
    let tmp = std::env::temp_dir().join(format!("lab-ssh-dead-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let res = Command::new(lab_bin())
        .args(["demo", "--duration", "1s", "--testbed"])
        .arg(&file)
        .arg("--out")
        .arg(&tmp)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        stderr.contains("removed drop from dut0, left by a run that died"),
        "{stderr}"
    );
    assert_eq!(dut0_program(&name), placeholder, "{stderr}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Brings up SSH tenants lab `name` (`lab up --topology ssh-tenants`); returns
/// the guard and the testbed file's path.
fn ssh_tenants_lab(name: &str) -> (Down, PathBuf) {
    let guard = Down(name.to_owned());
    let up = lab(&["up", "--name", name, "--topology", "ssh-tenants"]);
    assert!(
        up.status.success(),
        "lab up --topology ssh-tenants: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let st = lab(&["status", "--name", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let file = PathBuf::from(
        v["testbed"]
            .as_str()
            .expect("status names the testbed file"),
    );
    (guard, file)
}

/// The text of the raw file of `series` ending in `suffix` (one point).
fn raw_of(out: &Path, series: &str, suffix: &str) -> String {
    let slug: String = series
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = out.join("raw");
    let f = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!("{slug}_x")) && n.ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no {slug}_x*{suffix} in {}", dir.display()));
    std::fs::read_to_string(f).unwrap()
}

/// `lab run ARGS`, which must succeed.
fn run_ok(args: &[&std::ffi::OsStr]) {
    let res = Command::new(lab_bin())
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "lab run {args:?}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The line (1-based) of `key = ` in shipped experiment `name`.
fn line_of(name: &str, key: &str) -> usize {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles/experiments")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(p).unwrap();
    1 + text
        .lines()
        .position(|l| l.trim_start().starts_with(&format!("{key} =")))
        .unwrap()
}

#[test]
fn the_tenants_experiments_are_refused_up_front_by_a_testbed_without_what_they_need() {
    require_tools();
    let tmp = std::env::temp_dir().join(format!("lab-ssh-tref-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let host = |role: &str, iface: &str| {
        format!(
            "{role}\nssh = \"root@192.0.2.1\"\niface = \"{iface}\"\ntools = \"/opt/x\"\nip = \"198.18.0.9\"\nmac = \"02:00:00:00:00:09\"\n"
        )
    };
    let base = format!("{}\n{}", host("[[gen]]", "g0"), host("[dut]", "d0"));
    let tenants = format!(
        "{base}\n{}\n{}",
        host("[[tenant]]", "t1"),
        host("[[tenant]]", "t2")
    );
    let refused = |exp: &str, text: &str| -> String {
        let f = tmp.join("t.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(lab_bin())
            .args(["run", exp, "--quick", "--rate", "max", "--testbed"])
            .arg(&f)
            .arg("--out")
            .arg(tmp.join("out"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{exp} ran on {text}");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    // No [[tenant]]: the experiment's topology line, and what is missing.
    for exp in ["tenants", "tenant-neighbour"] {
        let e = refused(exp, &base);
        let want = format!("{exp}.toml:{}: topology: ", line_of(exp, "topology"));
        assert!(e.contains(&want) && e.contains("has no [[tenant]]"), "{e}");
    }
    // Tenants but one [[gen]]: the neighbour's flood has no generator host.
    let e = refused("tenant-neighbour", &tenants);
    assert!(
        e.contains("tenant-neighbour.toml:")
            && e.contains(": neighbour_rate: ")
            && e.contains("has one [[gen]]"),
        "{e}"
    );
    // The stand-in neighbour of a non-tenants experiment stays refused, with
    // its reason.
    let exp = tmp.join("nb.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/experiments/tenant-neighbour.toml"),
    )
    .unwrap()
    .replace("topology = \"tenants\"", "topology = \"switched\"")
    .replace("neighbour_at = \"tenant\"\n", "")
    .replace("neighbour_at = \"host\"\n", "")
    .replace("at = \"tenant\"\n", "")
    .replace("neighbour_rate = \"200k\"\n", "");
    std::fs::write(&exp, text).unwrap();
    let e = refused(exp.to_str().unwrap(), &tenants);
    assert!(e.contains(": parameter: ") && e.contains("stand-in"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn tenants_over_an_ssh_tenants_lab_keep_tenant_2_isolated_as_the_local_lab_does() {
    let (_g, tmp) = begin("lab-ssh-ten");
    let (local, remote) = (tmp.join("local"), tmp.join("ssh"));
    run_ok(&[
        "tenants".as_ref(),
        "--quick".as_ref(),
        "--out".as_ref(),
        local.as_os_str(),
    ]);
    let name = testbed::unique_name("tnss");
    let (_guard, file) = ssh_tenants_lab(&name);
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    assert_eq!(tf.tenants.len(), 2, "{tf:?}");
    assert_eq!(tf.dut_second_iface.as_deref(), Some("dut1"));
    // Every tenant answers over ssh in its own namespace.
    for t in &tf.tenants {
        assert!(!sshd_in(t.host()).is_empty(), "no sshd in {}", t.host());
    }
    run_ok(&[
        "tenants".as_ref(),
        "--quick".as_ref(),
        "--rate".as_ref(),
        "max".as_ref(),
        "--testbed".as_ref(),
        file.as_os_str(),
        "--out".as_ref(),
        remote.as_os_str(),
    ]);
    let iso = "host driver guarded tenant 2 traffic";
    for out in [&local, &remote] {
        let drop = points(out, "drop_pps");
        let pass = points(out, "pass_pps");
        assert_eq!(drop.len(), 4, "{}: {drop:?}", out.display());
        for ((series, x), d) in &drop {
            if series == iso {
                // Isolation: the guard lets tenant 2's traffic through untouched.
                assert_eq!(*d, 0.0, "{}: {series} dropped {d}/s", out.display());
                let p = pass[&(series.clone(), x.clone())];
                assert!(p > 0.0, "{}: {series} passed nothing", out.display());
            } else {
                assert!(*d > 0.0, "{}: {series} dropped nothing", out.display());
            }
        }
        // CPU accounting: the host's share (over ssh: the DUT host's
        // /proc/stat) for every series.
        let host = points(out, "cpu_host_ns_per_packet");
        assert_eq!(host.len(), 4, "{}: {host:?}", out.display());
        // The tenant is charged its user-space DUT process (over ssh: its CPU
        // time read on the tenant's host) on top of the redirect program: more
        // than its program alone in its driver.
        let tenant = points(out, "cpu_tenant_ns_per_packet");
        let of = |s: &str| tenant[&(s.to_owned(), "0".to_owned())];
        assert!(
            of("tenant user space") > of("tenant driver"),
            "{}: {tenant:?}",
            out.display()
        );
    }
    // The program ran where each series says: in tenant 1's host (its ten0)
    // or on the DUT host's port, and the guard names the file's tenant 1.
    for (series, dest, iface) in [
        ("tenant user space", &tf.tenants[0].ssh, "ten0"),
        ("tenant driver", &tf.tenants[0].ssh, "ten0"),
        ("host driver guarded", &tf.dut.ssh, "dut0"),
        (iso, &tf.dut.ssh, "dut0"),
    ] {
        let log = raw_of(&remote, series, "_dut-install.txt");
        assert!(
            log.contains(dest.as_str()) && log.contains(&format!("--iface {iface}")),
            "{series}: {log}"
        );
        if series.starts_with("host") {
            assert!(log.contains("--only-dst 198.18.0.11/32"), "{series}: {log}");
        }
    }
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn tenant_neighbour_over_an_ssh_tenants_lab_gives_response_times_next_to_the_flood() {
    let (_g, tmp) = begin("lab-ssh-tnb");
    let name = testbed::unique_name("tnbs");
    let (_guard, file) = ssh_tenants_lab(&name);
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    let out = tmp.join("ssh");
    run_ok(&[
        "tenant-neighbour".as_ref(),
        "--quick".as_ref(),
        "--testbed".as_ref(),
        file.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    // Two series x two checksum counts, each with a response time.
    let p50 = points(&out, "rtt_p50_us");
    assert_eq!(p50.len(), 4, "{p50:?}");
    assert!(p50.values().all(|v| *v > 0.0), "{p50:?}");
    // The neighbour's program: tenant 2's own driver, or the DUT host's
    // second port guarded to tenant 2; its flood came from the second
    // generator port and reached it.
    for (series, dest, iface) in [
        (
            "neighbour program in its driver",
            &tf.tenants[1].ssh,
            "ten0",
        ),
        ("neighbour program in the host driver", &tf.dut.ssh, "dut1"),
    ] {
        let log = raw_of(&out, series, "_neighbour-dut-install.txt");
        assert!(
            log.contains(dest.as_str()) && log.contains(&format!("--iface {iface}")),
            "{series}: {log}"
        );
        let flood = raw_of(&out, series, "_neighbour-gen.json");
        let status = flood
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["program"] == "checksum")
            .unwrap_or_else(|| panic!("{series}: no neighbour status in {flood}"));
        assert!(
            status["counters"]["packets"].as_u64().unwrap_or(0) > 0,
            "{series}: the neighbour's program saw nothing: {status}"
        );
    }
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// An interface's (RX bytes, RX packets) in a namespace (/proc/net/dev).
fn rx_in(netns: &str, iface: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat", "/proc/net/dev"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{iface}:")))
        .unwrap_or_else(|| panic!("no {iface} in {netns}: {text}"));
    let (_, rest) = line.split_once(':').unwrap();
    let f: Vec<u64> = rest
        .split_whitespace()
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0], f[1])
}

/// `lab run EXPERIMENT --testbed FILE --out OUT` (and `extra`); its stderr, after
/// asserting it succeeded.
fn run_on(exp: &Path, file: &Path, out: &Path, extra: &[&str]) -> String {
    let res = Command::new(lab_bin())
        .arg("run")
        .arg(exp)
        .arg("--testbed")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "{stderr}");
    stderr
}

/// A test's temporary directory `lab-ssh-TAG-PID` (empty), an SSH lab named
/// `PREFIX...` (`lab up` with `extra`) and its testbed file with one
/// generator host: (directory, guard, lab name, testbed file).
fn one_gen_lab(tag: &str, prefix: &str, extra: &[&str]) -> (PathBuf, Down, String, PathBuf) {
    let tmp = std::env::temp_dir().join(format!("lab-ssh-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let name = testbed::unique_name(prefix);
    let (guard, file) = ssh_lab_with(&name, extra);
    let file = one_gen(&file, &tmp);
    (tmp, guard, name, file)
}

const SSH_SIZES: &str = r#"name = "ssh-sizes"
topology = "direct"
measure = "dut-rate"
program = "drop"
profile = "min-multi-flow"
duration = "1s"
repetitions = 1

[sweep]
parameter = "frame_size"
values = [64, 512]

[[series]]
name = "native"
mode = "native"
rate = "50k"
"#;

#[test]
fn a_frame_size_sweep_over_ssh_sends_each_size_and_the_dut_receives_what_gen_sent() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let (tmp, _guard, name, file) = one_gen_lab("sizes", "szss", &[]);
    let exp = tmp.join("sizes.toml");
    std::fs::write(&exp, SSH_SIZES).unwrap();
    let dut_ns = testbed::dut_netns(&name);
    let (b0, p0) = rx_in(&dut_ns, testbed::DUT_IFACE);
    let out = tmp.join("out");
    run_on(&exp, &file, &out, &[]);
    let (b1, p1) = rx_in(&dut_ns, testbed::DUT_IFACE);
    // A drop rate per size, the paced rate.
    let rates = points(&out, "drop_pps");
    assert_eq!(rates.len(), 2, "{rates:?}");
    let rows = ledger_rows(&out);
    let (mut sent, mut sent_bytes) = (0, 0);
    for x in ["64", "512"] {
        let r = rates[&("native".to_owned(), x.to_owned())];
        assert!((r - 50_000.0).abs() <= 2_500.0, "x {x}: drop rate {r}");
        // gen built frames of the size (less the FCS) ...
        let g = final_in(&out.join("raw").join(format!("native_x{x}_r1_gen.json")));
        let size: u64 = x.parse().unwrap();
        assert_eq!(num(&g, &["frame_len"]) as u64, size - 4, "{g}");
        // ... and the DUT host's interface received what gen says it sent
        // (the ledger's stage, from the host's /proc/net/dev over ssh).
        let tx = num(&g, &["tx_packets"]) as u64;
        let received = rows
            .iter()
            .find(|r| r.0 == "native" && r.1 == x && r.3 == "dut0 received")
            .map(|r| r.4)
            .unwrap_or_else(|| panic!("no `dut0 received` stage: {rows:?}"));
        assert!(
            received.abs_diff(tx) <= 10,
            "x {x}: gen sent {tx}, dut0 received {received}"
        );
        sent += tx;
        // A veth's RX bytes leave out the Ethernet header (and there is no FCS).
        sent_bytes += tx * (size - 4 - 14);
    }
    // Counted by this test in the DUT's namespace: the bytes are gen's frames
    // at each point's size (46 and 494 bytes past the Ethernet header), not
    // the profile's 46.
    let (bytes, pkts) = (b1 - b0, p1 - p0);
    assert!(
        pkts >= sent && pkts <= sent + 100,
        "dut0 got {pkts}, gen sent {sent}"
    );
    assert!(
        bytes >= sent_bytes && bytes <= sent_bytes + 100 * 100,
        "dut0: {bytes} bytes in {pkts} frames, gen sent {sent_bytes} in {sent}"
    );
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Every command line `lab run` recorded in `out/run.json`.
fn commands_of(out: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["commands"].as_array().unwrap().clone())
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn update_rate_over_ssh_runs_dut_update_bench_on_the_dut_host() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let (tmp, _guard, name, file) = one_gen_lab("upd", "upss", &[]);
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    let out = tmp.join("out");
    run_on(Path::new("update-rate"), &file, &out, &["--quick"]);
    // Both name sets have their update rate.
    let batch = points(&out, "updates_batch_per_s");
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert!(batch.values().all(|r| *r > 0.0), "{batch:?}");
    // Each update-bench ran over ssh on the DUT host, and its records are the
    // ones in the raw files.
    let benches: Vec<String> = commands_of(&out)
        .into_iter()
        .filter(|c| c.contains("update-bench"))
        .collect();
    assert_eq!(benches.len(), 2, "{benches:?}");
    for c in &benches {
        assert!(
            c.starts_with("ssh ") && c.contains(&tf.dut.ssh) && c.contains("--stop-on-stdin-eof"),
            "not on the DUT host: {c}"
        );
    }
    let raw = std::fs::read_to_string(
        out.join("raw")
            .join("small-set_x256_r1_dut-update-bench.json"),
    )
    .unwrap();
    assert!(raw.contains("\"batch\""), "{raw}");
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// trafgen's `N packets outgoing` in its raw output.
fn trafgen_packets(f: &Path) -> u64 {
    let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    lab::runner::parse_trafgen_packets(&text)
        .unwrap_or_else(|| panic!("{}: no packet count: {text}", f.display()))
}

/// The one file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn file_like(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .collect();
    assert_eq!(v.len(), 1, "{prefix}*{suffix} in {}: {v:?}", dir.display());
    v[0].clone()
}

#[test]
fn peers_over_ssh_run_trafgen_and_dnsperf_on_the_generator_host_like_the_local_lab() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    for p in ["trafgen", "dnsperf"] {
        if testbed::binaries::on_path(p).is_none() {
            panic!("{p} is not installed (.ci/setup installs it)");
        }
    }
    let tmp = std::env::temp_dir().join(format!("lab-ssh-peers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let local = tmp.join("local");
    let res = Command::new(lab_bin())
        .args(["run", "peers", "--quick", "--out"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let name = testbed::unique_name("prss");
    let (_guard, file) = ssh_lab(&name);
    let file = one_gen(&file, &tmp);
    let remote = tmp.join("ssh");
    run_on(
        Path::new("peers"),
        &file,
        &remote,
        &["--quick", "--rate", "max"],
    );
    // The same metrics, every one measured (> 0), on both.
    for metric in ["drop_pps", "answered_pps"] {
        let (a, b) = (points(&local, metric), points(&remote, metric));
        assert_eq!(a.len(), 3, "local {metric}: {a:?}");
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{metric}: local {a:?}, ssh {b:?}"
        );
        assert!(
            a.values().chain(b.values()).all(|v| *v > 0.0),
            "{metric}: local {a:?}, ssh {b:?}"
        );
    }
    // trafgen's own count is what the generator host's interface sent (its
    // /proc/net/dev over ssh, in the ledger).
    let sent = trafgen_packets(&file_like(&remote.join("raw"), "trafgen_", "_trafgen.json"));
    let rows = ledger_rows(&remote);
    let tx = rows
        .iter()
        .find(|r| r.0 == "trafgen" && r.3.starts_with("gen0 -> dut0 (sent"))
        .map(|r| r.4)
        .unwrap_or_else(|| panic!("no gen0 stage for trafgen: {rows:?}"));
    assert!(sent > 0, "trafgen sent nothing");
    assert!(
        tx.abs_diff(sent) <= 10,
        "trafgen says {sent}, gen0's counter {tx}"
    );
    // Nothing left on the host: no peer, no configuration or query file.
    let tf = lab::testbed_file::TestbedFile::load(&file).unwrap();
    let ns = tf.gens[0].host().to_owned();
    for p in ["trafgen", "dnsperf"] {
        assert!(
            testbed::procs::named_in(&ns, p).is_empty(),
            "{p} left running in {ns}"
        );
    }
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lab-") && (n.contains("-trafgen-") || n.contains("-dnsperf-")))
        .collect();
    assert!(left.is_empty(), "left in /tmp: {left:?}");
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

const SSH_QUEUES: &str = r#"name = "ssh-queues"
topology = "direct"
measure = "dut-rate"
program = "drop"
profile = "min-multi-flow"
duration = "2s"
repetitions = 1

[[series]]
name = "two"
mode = "native"
queues = 2
rate = "50k"
"#;

/// (RX, TX) queues `ethtool -l` shows on `iface` in `netns` now.
fn channels_in(netns: &str, iface: &str) -> (Option<u32>, Option<u32>) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "ethtool", "-l", iface])
        .output()
        .unwrap();
    let (_, cur) = lab::remote_measure::parse_channels(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| {
            panic!(
                "ethtool -l {iface}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (cur.rx, cur.tx)
}

#[test]
fn a_series_with_fixed_queues_over_ssh_sets_them_with_ethtool_and_restores_them() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let (tmp, _guard, name, file) = one_gen_lab("queues", "qss", &["--queues", "4"]);
    let exp = tmp.join("queues.toml");
    std::fs::write(&exp, SSH_QUEUES).unwrap();
    let (dut_ns, gen_ns) = (testbed::dut_netns(&name), testbed::gen_netns(&name));
    let before = (
        channels_in(&dut_ns, testbed::DUT_IFACE),
        channels_in(&gen_ns, testbed::GEN_IFACE),
    );
    assert_eq!(
        before.0,
        (Some(4), Some(4)),
        "the lab's veths have 4 queues"
    );
    // The switch is the testbed's, not lab's to set: as its operator, give its
    // ports towards gen and the DUT 2 TX queues. A veth with an XDP program
    // (every lab port has one) refuses fewer RX queues than its peer has TX
    // queues (EINVAL): dut0 and gen0 can then go down to 2 and back to 4.
    let sw = testbed::sw_netns(&name);
    for i in [testbed::SW_GEN_IFACE, testbed::SW_DUT_IFACE] {
        let out = Command::new("ip")
            .args(["netns", "exec", &sw, "ethtool", "-L", i, "tx", "2"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Watch the DUT's and gen's channels while the run goes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, dut_ns, gen_ns) = (stop.clone(), dut_ns.clone(), gen_ns.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seen.insert((
                    channels_in(&dut_ns, testbed::DUT_IFACE),
                    channels_in(&gen_ns, testbed::GEN_IFACE),
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        })
    };
    let out = tmp.join("out");
    run_on(&exp, &file, &out, &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let two = ((Some(2), Some(2)), (Some(2), Some(2)));
    assert!(
        seen.contains(&two),
        "never 2 queues on dut0 and gen0: {seen:?}"
    );
    // Put back as they were, and the point measured with them.
    assert_eq!(
        (
            channels_in(&dut_ns, testbed::DUT_IFACE),
            channels_in(&gen_ns, testbed::GEN_IFACE)
        ),
        before
    );
    let rates = points(&out, "drop_pps");
    assert_eq!(rates.len(), 1, "{rates:?}");
    assert!(
        rates.values().all(|r| (r - 50_000.0).abs() <= 2_500.0),
        "{rates:?}"
    );
    let g = final_in(&file_like(&out.join("raw"), "two_", "_gen.json"));
    assert_eq!(num(&g, &["queues"]), 2.0, "{g}");
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}

const SSH_CPU: &str = r#"name = "ssh-cpu"
topology = "direct"
measure = "dut-rate"
program = "drop"
profile = "min-multi-flow"
duration = "2s"
repetitions = 1
rate = "20k"

[[series]]
name = "native"
mode = "native"

[[series]]
name = "userspace"
mode = "userspace"
"#;

#[test]
fn a_userspace_dut_over_ssh_has_its_process_cpu_time_per_packet() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let (tmp, _guard, name, file) = one_gen_lab("cpu", "cpss", &[]);
    let exp = tmp.join("cpu.toml");
    std::fs::write(&exp, SSH_CPU).unwrap();
    let out = tmp.join("out");
    run_on(&exp, &file, &out, &[]);
    // The user-space point's CPU (its process on the DUT host, read over ssh)
    // per packet is on top of its redirect program's run time: more than the
    // native program's run time alone.
    let ns = points(&out, "ns_per_packet");
    let at = |s: &str| {
        ns.iter()
            .find(|((series, _), _)| series == s)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no ns_per_packet for {s}: {ns:?}"))
    };
    let (native, user) = (at("native"), at("userspace"));
    assert!(
        native > 0.0 && user > native,
        "native {native} ns, userspace {user} ns"
    );
    // The kernel part alone (dut status's window) is below the total.
    let w: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(file_like(
            &out.join("raw"),
            "userspace_",
            "_dut-status-window.json",
        ))
        .unwrap()
        .trim(),
    )
    .unwrap();
    let kernel = w["ns_per_packet"].as_f64().unwrap_or(0.0);
    assert!(
        user > kernel,
        "userspace {user} ns, its redirect program {kernel} ns"
    );
    assert!(processes_of_tools(&name).is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}
