//! Kill test: `lab run checksum --quick` (the built binary with the real
//! gen/dut/tstamp beside it) is SIGKILLed at seeded random moments and
//! interrupted with SIGINT once, and must leave nothing behind:
//!
//! * after SIGKILL, within seconds no process runs whose command line names
//!   one of its labs (the tools die with `lab`: `PR_SET_PDEATHSIG`);
//!   `lab status --json` lists its labs as stale; `lab down --stale` removes
//!   them and no namespace of the run remains;
//! * after SIGINT it exits 1, keeps the points measured so far in
//!   points.csv and leaves no lab;
//! * the next `lab run` removes a stale lab left by a killed run, saying so
//!   on stderr.
//!
//! Rounds are bounded (2 by default; `LAB_KILL_ROUNDS=N` for more) and seeded
//! (`LAB_KILL_SEED=S` to replay; the seed is printed and is in every failure
//! message). The tests share the machine's measurement resources and a run's
//! start reaps every stale lab, so they run one at a time (a process-wide
//! lock). Waits poll with generous deadlines and end as soon as the
//! condition holds.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{lab_bin, netns, require_tools};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// splitmix64: a small, seedable generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi) milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

fn seed() -> u64 {
    std::env::var("LAB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

fn rounds() -> u32 {
    std::env::var("LAB_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lab-kill-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `lab run checksum --quick --out DIR/out`, stderr to DIR/stderr. The run
/// dies with this test process (so a failing test leaks no run either).
fn start_run(dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut c = Command::new(lab_bin());
    c.args(["run", "checksum", "--quick", "--out"])
        .arg(dir.join("out"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: the closure runs in the forked child before exec and makes one
    // async-signal-safe system call.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.spawn().unwrap()
}

fn stderr_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
}

/// `lab status --json`: every lab on the machine.
fn labs() -> Vec<Value> {
    let out = Command::new(lab_bin())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lab status --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["labs"].as_array().cloned().unwrap_or_default()
}

/// The labs whose owner is process `pid`.
fn labs_of(pid: u32) -> Vec<Value> {
    labs()
        .into_iter()
        .filter(|l| l["owner"]["pid"] == pid)
        .collect()
}

fn name(l: &Value) -> String {
    l["name"].as_str().unwrap_or_default().to_owned()
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose command line names one of `labs` (`--netns NAME-gen`, ...).
fn processes_naming(labs: &[String]) -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.to_owned();
            if pid == me || pid.parse::<u32>().is_err() {
                return None;
            }
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            labs.iter()
                .any(|l| cmd.contains(&format!("{l}-")))
                .then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

/// Namespaces of the labs named in `labs`.
fn namespaces_of(labs: &[String]) -> Vec<String> {
    netns()
        .into_iter()
        .filter(|ns| labs.iter().any(|l| ns.starts_with(&format!("{l}-"))))
        .collect()
}

/// Starts a run and waits until it has built its first lab.
fn run_with_a_lab(dir: &Path, ctx: &str) -> (Child, u32) {
    let child = start_run(dir);
    let pid = child.id();
    let built = poll(Duration::from_secs(120), || {
        labs_of(pid)
            .iter()
            .any(|l| !l["namespaces"].as_array().unwrap().is_empty())
    });
    assert!(
        built,
        "{ctx}: no lab of lab run (pid {pid}) within 120 s; stderr:\n{}",
        stderr_of(dir)
    );
    (child, pid)
}

/// SIGKILLs `child` and collects it; returns the names of its labs then.
fn kill(mut child: Child, pid: u32) -> Vec<String> {
    child.kill().unwrap();
    child.wait().unwrap();
    labs_of(pid).iter().map(name).collect()
}

/// SIGINTs `child` and waits up to 90 s for its exit status (`None`: it did
/// not stop, and was killed so that nothing leaks).
fn interrupt(child: &mut Child) -> Option<std::process::ExitStatus> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut status = None;
    poll(Duration::from_secs(90), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

#[test]
fn sigkill_leaves_no_process_and_a_stale_lab_that_down_stale_removes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let seed = seed();
    eprintln!("kill test: LAB_KILL_SEED={seed}, {} round(s)", rounds());
    let mut rng = Rng(seed);
    for round in 1..=rounds() {
        let ctx = format!("LAB_KILL_SEED={seed} round {round}");
        let dir = tmpdir(&format!("r{round}"));
        let (child, pid) = run_with_a_lab(&dir, &ctx);
        // Somewhere in building, installing or measuring (a point is ~3-5 s;
        // the user-space series, with its `dut --foreground`, starts after six).
        let at = rng.millis(0, 20_000);
        std::thread::sleep(at);
        let mine = kill(child, pid);
        let ctx = format!("{ctx} (SIGKILL {at:?} after the first lab; labs {mine:?})");
        eprintln!("{ctx}");
        // Between two points there is a moment without a lab: nothing to check then.
        if mine.is_empty() {
            assert!(
                processes_naming(&[format!("run{pid:x}")]).is_empty(),
                "{ctx}"
            );
            continue;
        }

        let mut left = Vec::new();
        let gone = poll(Duration::from_secs(15), || {
            left = processes_naming(&mine);
            left.is_empty()
        });
        assert!(gone, "{ctx}: still running 15 s after the kill: {left:#?}");

        let listed = labs_of(pid);
        assert_eq!(listed.len(), mine.len(), "{ctx}: {listed:#?}");
        for l in &listed {
            assert_eq!(l["stale"], true, "{ctx}: {l:#}");
            assert_eq!(l["owner"]["scope"], "process", "{ctx}: {l:#}");
        }

        let down = Command::new(lab_bin())
            .args(["down", "--stale"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&down.stdout);
        assert!(
            down.status.success(),
            "{ctx}: lab down --stale: {stdout}{}",
            String::from_utf8_lossy(&down.stderr)
        );
        for n in &mine {
            assert!(
                stdout.contains(&format!("removed stale lab {n} ")),
                "{ctx}: {stdout}"
            );
        }
        assert_eq!(namespaces_of(&mine), Vec::<String>::new(), "{ctx}");
        assert!(labs_of(pid).is_empty(), "{ctx}: still listed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn sigint_stops_cleanly_keeping_the_points_measured() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let dir = tmpdir("int");
    let mut child = start_run(&dir);
    let pid = child.id();
    let points = dir.join("out").join("points.csv");
    let measured =
        || std::fs::read_to_string(&points).map_or(0, |t| t.lines().count().saturating_sub(1));
    assert!(
        poll(Duration::from_secs(120), || measured() > 0),
        "no point within 120 s: {}",
        stderr_of(&dir)
    );
    let mine: Vec<String> = labs_of(pid).iter().map(name).collect();
    let status = interrupt(&mut child);
    let stderr = stderr_of(&dir);
    assert!(
        status.is_some(),
        "lab run did not stop within 90 s of SIGINT: {stderr}"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(measured() > 0, "points.csv lost its points: {stderr}");
    assert!(labs_of(pid).is_empty(), "labs left: {:#?}", labs_of(pid));
    let prefix = format!("run{pid:x}");
    let mut all = mine;
    all.push(prefix);
    assert_eq!(namespaces_of(&all), Vec::<String>::new(), "{stderr}");
    assert!(
        processes_naming(&all).is_empty(),
        "{:#?}",
        processes_naming(&all)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_next_run_removes_a_stale_lab_at_start() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_tools();
    let dir_a = tmpdir("stale-a");
    let (child, pid) = run_with_a_lab(&dir_a, "first run");
    let stale = kill(child, pid);
    assert!(
        !stale.is_empty(),
        "the first run's lab vanished when it was killed"
    );

    let dir_b = tmpdir("stale-b");
    let mut next = start_run(&dir_b);
    let said = poll(Duration::from_secs(120), || {
        let e = stderr_of(&dir_b);
        stale
            .iter()
            .all(|n| e.contains(&format!("lab run: removed stale lab {n} ")))
    });
    // Stop the second run before asserting, so a failure leaks nothing.
    let stopped = interrupt(&mut next).is_some();
    let stderr = stderr_of(&dir_b);
    assert!(
        said,
        "the next run did not report removing {stale:?}: {stderr}"
    );
    assert_eq!(namespaces_of(&stale), Vec::<String>::new(), "{stderr}");
    assert!(labs_of(pid).is_empty(), "{:#?}", labs_of(pid));
    assert!(stopped, "the second run did not stop within 90 s of SIGINT");
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
}
