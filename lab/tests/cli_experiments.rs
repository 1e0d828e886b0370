//! `lab run` / `lab experiments` from the command line, on what needs no
//! tool binaries: bad experiment files are refused with one `FILE:LINE: KEY:`
//! line before anything starts (no namespace created), and every shipped
//! experiment is listed.

#![allow(clippy::unwrap_used)]

mod common;

use common::netns;

use std::path::PathBuf;
use std::process::Command;

fn lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lab"))
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lab-cli-exp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Namespaces that `lab run` with process id `pid` creates or created: its labs
/// are named `run<pid in hex>-<n>` (testbed::unique_name), other processes' labs
/// (tests of other crates, another user's `lab up`) come and go meanwhile.
fn of_run(v: &[String], pid: u32) -> Vec<String> {
    let prefix = format!("run{pid:x}-");
    v.iter()
        .filter(|n| n.starts_with(&prefix))
        .cloned()
        .collect()
}

const GOOD: &str = "name = \"t\"\nmeasure = \"dut-rate\"\nprogram = \"drop\"\nprofile = \"min-multi-flow\"\nduration = \"2s\"\nrepetitions = 3\n[[series]]\nname = \"a\"\n";

#[test]
fn bad_files_give_one_line_with_file_line_and_key() {
    let cases = [
        (
            "unknown-key.toml",
            GOOD.replace("repetitions = 3\n", "repetitions = 3\nwarmup = \"1s\"\n"),
            ":7: warmup:",
        ),
        (
            "bad-program.toml",
            GOOD.replace("\"drop\"", "\"dropp\""),
            ":3: program: unknown program 'dropp'",
        ),
        (
            "bad-sweep.toml",
            format!("{GOOD}[sweep]\nparameter = \"queues\"\nvalues = [0]\n"),
            ":11: sweep.values: 0 queues is impossible",
        ),
        (
            "small-frames.toml",
            format!(
                "{}[sweep]\nparameter = \"frame_size\"\nvalues = [64, 128]\n",
                GOOD.replace("min-multi-flow", "syn-flood")
            ),
            ":11: sweep.values: 64 bytes does not fit profile syn-flood: its frames take 78 to 1518 bytes",
        ),
        (
            "allow-without-syn-filter.toml",
            GOOD.replace(
                "repetitions = 3\n",
                "repetitions = 3\nallow = [\"198.18.0.0/24\"]\n",
            ),
            ":7: allow: only the syn-filter program takes an allow-list",
        ),
        (
            "bad-profile.toml",
            GOOD.replace("min-multi-flow", "no-such-profile"),
            ":4: profile:",
        ),
    ];
    for (file, text, want) in cases {
        let p = tmp(file, &text);
        let before = netns();
        let child = lab()
            .args(["run"])
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{file}: one line: {stderr}"
        );
        assert!(
            stderr.starts_with(&format!("error: {}", p.display())),
            "{file}: names the file: {stderr}"
        );
        assert!(stderr.contains(want), "{file}: wanted {want:?} in {stderr}");
        // Other processes' test labs may come and go meanwhile; nothing else may.
        let after = netns();
        let new: Vec<String> = after
            .iter()
            .filter(|n| !before.contains(n))
            .cloned()
            .collect();
        assert!(
            of_run(&after, pid).is_empty() && common::without_test_labs(&new).is_empty(),
            "{file}: nothing created: {new:?}"
        );
        let gone: Vec<String> = before
            .iter()
            .filter(|n| !after.contains(n))
            .cloned()
            .collect();
        assert!(
            common::without_test_labs(&gone).is_empty(),
            "{file}: nothing removed: {gone:?}"
        );
    }
}

#[test]
fn an_unknown_experiment_lists_the_shipped_ones() {
    let out = lab().args(["run", "no-such-experiment"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("no-such-experiment") && stderr.contains("drop-rate"),
        "{stderr}"
    );
}

#[test]
fn every_shipped_experiment_is_listed() {
    let out = lab().arg("experiments").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, _) in lab::experiment::SHIPPED {
        assert!(stdout.contains(name), "{name} missing in {stdout}");
    }
    assert_eq!(stdout.lines().count(), lab::experiment::SHIPPED.len());
}
