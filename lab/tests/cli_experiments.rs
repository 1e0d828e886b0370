//! `lab run` / `lab experiments` from the command line, on what needs no
//! tool binaries: bad experiment files are refused with one `FILE:LINE: KEY:`
//! line before anything starts (no namespace created), and every shipped
//! experiment is listed.

#![allow(clippy::unwrap_used)]

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

fn netns() -> String {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            let mut v: Vec<String> = d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v.join(",")
        })
        .unwrap_or_default()
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
            "bad-profile.toml",
            GOOD.replace("min-multi-flow", "no-such-profile"),
            ":4: profile:",
        ),
    ];
    for (file, text, want) in cases {
        let p = tmp(file, &text);
        let before = netns();
        let out = lab().args(["run"]).arg(&p).output().unwrap();
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
        assert_eq!(before, netns(), "{file}: nothing created");
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
