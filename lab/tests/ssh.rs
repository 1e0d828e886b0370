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

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(lab_bin()).args(args).output().unwrap()
}

/// Brings up SSH lab `name`; returns the guard and the testbed file's path.
fn ssh_lab(name: &str) -> (Down, PathBuf) {
    let guard = Down(name.to_owned());
    let up = lab(&["up", "--name", name, "--topology", "ssh"]);
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
    assert_eq!(tf.gens.len(), 1);
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
    assert_eq!(ssh_lab.hosts.len(), 3);
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
