//! Kill tests: every tool that attaches through `xdplayer` (gen's afxdp engine,
//! `dut install --mode userspace --foreground`, `tstamp --backend af-xdp`, `sink`
//! with both back ends) is SIGKILLed at seeded random moments and SIGINTed, and
//! aborted at the fixed points of the test hook (`XDP_MEASURE_TEST_HOOK`). After
//! each: no process of this test's tree remains, the next ordinary run works
//! without `--force` and leaves the placeholder on the interface. Tools writing
//! output files (`tstamp --hdrh/--hist-csv/--plot`, `sink --write`) are aborted
//! between the written data and its name: nothing appears at the path, nothing is
//! left beside it, and the next run writes the files.
//!
//! The binaries are the workspace's release (or debug) builds beside this test
//! (`cargo build --release --workspace` first, as `.ci/test` does). Each test
//! makes its own uniquely named direct lab, torn down on drop even when an
//! assertion fails; every child is killed on drop.
//!
//! `XDP_MEASURE_KILL_SEED=N` replays a run (the seed is printed, and named in
//! every failure); `XDP_MEASURE_KILL_ROUNDS=N` (default 2) sets the random kills
//! per tool.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testbed::Testbed;

mod common;
use common::{prog_on, up};

fn bin(name: &str) -> PathBuf {
    testbed::binaries::locate(name)
        .unwrap_or_else(|e| panic!("{e:#} (run `cargo build --release --workspace` first)"))
}

/// Pids of the children this test process runs right now (tests run in
/// parallel threads; each checks that nothing *else* of ours is left).
static LIVE: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child in its own process group, SIGKILLed (group) on drop.
struct Proc {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Proc {
    fn spawn(argv: &[String], env: Option<(&str, &str)>, what: &str) -> Proc {
        use std::os::unix::process::CommandExt;
        // Unique per child: parallel tests run the same tools.
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!(
            "kill-test-{}-{n}-{}.log",
            std::process::id(),
            what.replace(' ', "_")
        ));
        let err = std::fs::File::create(&log).expect("log file");
        let out = std::fs::File::create(log.with_extension("out")).expect("stdout file");
        let mut c = Command::new(bin(&argv[0]));
        c.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let mut reg = live();
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        reg.push(child.id());
        drop(reg);
        Proc {
            child,
            what: what.into(),
            log,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("out")).unwrap_or_default()
    }

    fn remove_logs(&self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.log.with_extension("out"));
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's process group (pgid = its pid).
        unsafe { libc::kill(-self.pid(), sig) };
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait(self, limit: Duration) -> (ExitStatus, String) {
        let (st, _, err) = self.wait_out(limit);
        (st, err)
    }

    /// Waits for the end; (status, stdout, stderr).
    fn wait_out(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let pgid = self.pid();
                let (out, err) = (self.stdout(), self.stderr());
                self.remove_logs();
                live().retain(|&p| p != pgid as u32);
                std::mem::forget(self);
                assert_group_gone(pgid);
                return (st, out, err);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}: {}",
                self.what,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.remove_logs();
        live().retain(|&p| p != self.child.id());
    }
}

/// Processes of group `pgid` that still run: `/proc/PID/stat` lines whose
/// process group (field 5) is `pgid` and whose state (field 3) is not a zombie.
/// A zombie is dead: e.g. the `ip` that gen runs for its neighbour lookup,
/// killed with the group and reparented to init, which reaps it in its own time.
fn running_members(pgid: i32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().take(3).collect();
            matches!(f.as_slice(), [state, _ppid, pgrp]
                if !matches!(*state, "Z" | "X") && pgrp.parse::<i32>().ok() == Some(pgid))
        })
        .collect()
}

/// No process is left running in group `pgid` (within 2 s: SIGKILLed members
/// may still be on their way out), and this test process runs no tool but
/// those other tests run right now (other children, such as the `ip` commands
/// of a lab being built by a parallel test, are not ours to judge).
fn assert_group_gone(pgid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut left = running_members(pgid);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = running_members(pgid);
    }
    assert!(
        left.is_empty(),
        "process group {pgid} still has members: {left:?}"
    );
    let me = std::process::id();
    let reg = live();
    let children: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(me)
        })
        .filter(|s| TOOLS.iter().any(|t| s.contains(&format!("({t})"))))
        .filter(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_none_or(|p| !reg.contains(&p))
        })
        .collect();
    drop(reg);
    assert!(children.is_empty(), "children left: {children:?}");
}

/// The tools this test runs.
const TOOLS: &[&str] = &["gen", "dut", "sink", "tstamp", "tstamp-synth"];

/// Runs a tool to its end (registered like every child); (status, stderr).
fn run(argv: &[&str], what: &str) -> (ExitStatus, String) {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    Proc::spawn(&argv, None, what).wait(Duration::from_secs(60))
}

/// One tool and how to run it.
struct Case {
    what: &'static str,
    netns: String,
    iface: &'static str,
    argv: Vec<String>,
    /// Attaches an XDP program (false: AF_PACKET, nothing attached).
    attaches: bool,
    /// The program it attaches: gen's reply counter, or the AF_XDP redirect program.
    prog: &'static str,
}

/// One row of [`cases`]' table: (what, namespace, interface, program attached or
/// None, the tool's arguments after `--netns NS`).
type CaseRow<'a> = (
    &'static str,
    &'a String,
    &'static str,
    Option<&'static str>,
    &'a [&'a str],
);

fn cases(bed: &Testbed) -> Vec<Case> {
    let g = bed.generator().netns.clone();
    let d = bed.dut().netns.clone();
    // The interface of each row is the one named in its arguments.
    let table: [CaseRow; 5] = [
        (
            "gen afxdp",
            &g,
            "gen0",
            Some("gen_rx"),
            &[
                "--iface",
                "gen0",
                "--profile",
                "min-single-flow",
                "--engine",
                "afxdp",
                "--rate",
                "20k",
                "--duration",
                "300s",
                "--output",
                "json",
            ],
        ),
        (
            "dut userspace",
            &d,
            "dut0",
            Some(xdplayer::REDIRECT_PROG),
            &[
                "install",
                "drop",
                "--iface",
                "dut0",
                "--mode",
                "userspace",
                "--foreground",
            ],
        ),
        (
            "tstamp af-xdp",
            &d,
            "dut0",
            Some(xdplayer::REDIRECT_PROG),
            &["--iface", "dut0", "--backend", "af-xdp"],
        ),
        (
            "sink af-xdp",
            &d,
            "dut0",
            Some(xdplayer::REDIRECT_PROG),
            &["--iface", "dut0", "--backend", "af-xdp"],
        ),
        (
            "sink af-packet",
            &d,
            "dut0",
            None,
            &["--iface", "dut0", "--backend", "af-packet"],
        ),
    ];
    table
        .into_iter()
        .map(|(what, ns, iface, prog, args)| {
            let tool = what.split(' ').next().unwrap_or(what);
            let mut argv = vec![tool.to_string(), "--netns".into(), ns.clone()];
            argv.extend(args.iter().map(|a| a.to_string()));
            Case {
                what,
                netns: ns.clone(),
                iface,
                argv,
                attaches: prog.is_some(),
                prog: prog.unwrap_or(xdplayer::PLACEHOLDER_PROG),
            }
        })
        .collect()
}

/// Waits until `iface` carries xsk_redirect with an id other than `not` (the
/// previous run's); returns its id.
fn wait_attached(c: &Case, p: &mut Proc, not: Option<u32>, ctx: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((id, name)) = prog_on(&c.netns, c.iface)
            && name == c.prog
            && Some(id) != not
        {
            return id;
        }
        assert!(
            p.running(),
            "{ctx}: {} exited before attaching: {}",
            c.what,
            p.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "{ctx}: {} did not attach in time: {}",
            c.what,
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_placeholder(c: &Case, ctx: &str) {
    assert_eq!(
        prog_on(&c.netns, c.iface).map(|(_, n)| n).as_deref(),
        Some(xdplayer::PLACEHOLDER_PROG),
        "{ctx}: {}: the placeholder is back on {}",
        c.what,
        c.iface
    );
}

/// An ordinary run (no --force): starts, attaches, ends cleanly on SIGINT, and
/// leaves the placeholder.
fn ordinary_run(c: &Case, ctx: &str) {
    let before = prog_on(&c.netns, c.iface).map(|(id, _)| id);
    let mut p = Proc::spawn(&c.argv, None, c.what);
    if c.attaches {
        wait_attached(c, &mut p, before, ctx);
    } else {
        std::thread::sleep(Duration::from_millis(500));
        assert!(p.running(), "{ctx}: {} ended early: {}", c.what, p.stderr());
    }
    p.signal(libc::SIGINT);
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(st.success(), "{ctx}: {} after SIGINT: {st}: {err}", c.what);
    assert_placeholder(c, ctx);
}

fn seed() -> u64 {
    std::env::var("XDP_MEASURE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| xdplayer::clock::realtime_ns() % 1_000_000)
}

#[test]
fn sigkill_at_random_moments_then_the_next_run_works_without_force() {
    let seed = seed();
    eprintln!("kill test seed: {seed} (XDP_MEASURE_KILL_SEED={seed} replays it)");
    let rounds: usize = std::env::var("XDP_MEASURE_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut rng = StdRng::seed_from_u64(seed);
    let bed = up("kil");
    for c in cases(&bed) {
        for round in 0..rounds {
            // Half the kills early (start-up, often before the attach), half later.
            let ms = if rng.gen_bool(0.5) {
                rng.gen_range(0..200)
            } else {
                rng.gen_range(200..1500)
            };
            let delay = Duration::from_millis(ms);
            let ctx = format!("seed {seed}, round {round}, SIGKILL after {delay:?}");
            let mut p = Proc::spawn(&c.argv, None, c.what);
            let t = Instant::now();
            while t.elapsed() < delay && p.running() {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(p.running(), "{ctx}: {} ended early: {}", c.what, p.stderr());
            p.signal(libc::SIGKILL);
            let (st, _) = p.wait(Duration::from_secs(10));
            assert!(!st.success());
            // Left behind: the placeholder, or the dead run's program (an orphan).
            let left = prog_on(&c.netns, c.iface).map(|(_, n)| n);
            assert!(
                matches!(
                    left.as_deref(),
                    Some(p) if p == xdplayer::PLACEHOLDER_PROG || p == c.prog
                ),
                "{ctx}: {}: left {left:?}",
                c.what
            );
            eprintln!("{ctx}: {}: left {left:?}", c.what);
            ordinary_run(&c, &ctx);
        }
        // And SIGINT: a clean end, then again.
        let ctx = format!("seed {seed}, SIGINT");
        ordinary_run(&c, &ctx);
    }
}

#[test]
fn test_hook_aborts_at_fixed_points_and_the_next_run_recovers() {
    let bed = up("khk");
    let all = cases(&bed);
    // Every tool that attaches, at every point.
    for c in all.iter().filter(|c| c.attaches) {
        for point in ["after-record-before-attach", "after-attach"] {
            let ctx = format!("{}={point}", xdplayer::hook::ENV);
            let p = Proc::spawn(&c.argv, Some((xdplayer::hook::ENV, point)), c.what);
            let (st, err) = p.wait(Duration::from_secs(60));
            assert!(!st.success(), "{ctx}: {} must abort: {err}", c.what);
            assert!(err.contains(point), "{ctx}: {err}");
            let left = prog_on(&c.netns, c.iface).map(|(_, n)| n);
            let want = if point == "after-attach" {
                c.prog
            } else {
                xdplayer::PLACEHOLDER_PROG
            };
            assert_eq!(left.as_deref(), Some(want), "{ctx}");
            ordinary_run(c, &ctx);
        }
        // Mid-restore: the placeholder is back, the record (naming a program no
        // longer attached) stays and must be ignored.
        let ctx = format!("{}=mid-restore", xdplayer::hook::ENV);
        let mut p = Proc::spawn(&c.argv, Some((xdplayer::hook::ENV, "mid-restore")), c.what);
        wait_attached(c, &mut p, None, &ctx);
        p.signal(libc::SIGINT);
        let (st, err) = p.wait(Duration::from_secs(60));
        assert!(!st.success(), "{ctx}: {} must abort: {err}", c.what);
        assert!(err.contains("mid-restore"), "{ctx}: {err}");
        assert_placeholder(c, &ctx);
        ordinary_run(c, &ctx);
    }
}

#[test]
fn orphans_are_removed_by_dut_remove_and_live_foreign_programs_still_refused() {
    let bed = up("kor");
    let all = cases(&bed);
    let gen_case = all
        .iter()
        .find(|c| c.what == "gen afxdp")
        .expect("gen case");
    let sink = all
        .iter()
        .find(|c| c.what == "sink af-xdp")
        .expect("sink case");

    // An orphan of gen on gen0: `dut remove` removes it and puts the placeholder back.
    let mut p = Proc::spawn(&gen_case.argv, None, gen_case.what);
    wait_attached(gen_case, &mut p, None, "orphan for dut remove");
    p.signal(libc::SIGKILL);
    p.wait(Duration::from_secs(10));
    // `dut status` names it an orphan, with its dead owner.
    let argv: Vec<String> = [
        "dut",
        "--netns",
        &gen_case.netns,
        "status",
        "--iface",
        "gen0",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (st, out, err) = Proc::spawn(&argv, None, "dut status").wait_out(Duration::from_secs(60));
    assert!(st.success(), "dut status: {err}");
    assert!(
        out.contains(r#""claim":"orphan""#) && out.contains(r#""comm":"gen""#),
        "dut status: {out}"
    );
    let (st, err) = run(
        &[
            "dut",
            "--netns",
            &gen_case.netns,
            "remove",
            "--iface",
            "gen0",
        ],
        "dut remove",
    );
    assert!(st.success(), "dut remove: {err}");
    assert!(
        err.contains(&format!("orphaned {}", gen_case.prog)),
        "{err}"
    );
    assert_placeholder(gen_case, "after dut remove");

    // A process-scoped dut program (`--foreground`, native) whose dut was killed:
    // the next sink takes it over without --force.
    let fg: Vec<String> = [
        "dut",
        "--netns",
        &sink.netns,
        "install",
        "drop",
        "--iface",
        "dut0",
        "--foreground",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = Proc::spawn(&fg, None, "dut foreground");
    let deadline = Instant::now() + Duration::from_secs(60);
    while prog_on(&sink.netns, "dut0").map(|(_, n)| n).as_deref() != Some("dut_drop") {
        assert!(
            p.running() && Instant::now() < deadline,
            "dut install: {}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p.signal(libc::SIGKILL);
    p.wait(Duration::from_secs(10));
    ordinary_run(sink, "over a killed dut --foreground");

    // An install on behalf of another process (`--owner-pid`, as `lab run` does)
    // becomes an orphan when that process is gone.
    let sleeper: Vec<String> = ["sleep", "60"].iter().map(|s| s.to_string()).collect();
    let owner = Proc::spawn(&sleeper, None, "owner");
    let (st, err) = run(
        &[
            "dut",
            "--netns",
            &sink.netns,
            "install",
            "drop",
            "--iface",
            "dut0",
            "--owner-pid",
            &owner.pid().to_string(),
        ],
        "dut install --owner-pid",
    );
    assert!(st.success(), "{err}");
    let p = Proc::spawn(&sink.argv, None, "sink over a live owner's install");
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(!st.success() && err.contains("still running"), "{err}");
    owner.signal(libc::SIGKILL);
    owner.wait(Duration::from_secs(10));
    ordinary_run(sink, "over an install whose --owner-pid is gone");

    // A persistent install is not an orphan once its dut has exited: refused.
    let (st, err) = run(
        &[
            "dut",
            "--netns",
            &sink.netns,
            "install",
            "drop",
            "--iface",
            "dut0",
        ],
        "dut install",
    );
    assert!(st.success(), "{err}");
    let p = Proc::spawn(&sink.argv, None, "sink over a persistent install");
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(
        !st.success() && err.contains("--force") && err.contains("persistent"),
        "{err}"
    );
    let (st, err) = run(
        &["dut", "--netns", &sink.netns, "remove", "--iface", "dut0"],
        "dut remove",
    );
    assert!(st.success(), "{err}");
    assert_placeholder(sink, "after removing the persistent install");

    // A live foreign program (no record): refused without --force.
    testbed::attach_reflect(&sink.netns, "dut0").expect("reflect");
    let p = Proc::spawn(&sink.argv, None, "sink over a foreign program");
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(!st.success() && err.contains("--force"), "{err}");
    assert_eq!(
        prog_on(&sink.netns, "dut0").map(|(_, n)| n).as_deref(),
        Some("xdp_reflect")
    );
}

/// Names in `dir`, sorted.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn killed_mid_write_of_an_output_file_leaves_no_name_and_the_next_run_works() {
    let point = xdplayer::atomic_file::HOOK_POINT;
    let ctx = format!("{}={point}", xdplayer::hook::ENV);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let cap = d.join("in.pcapng");
    let (st, err) = run(
        &["tstamp-synth", &s(&cap), "--pairs", "2000"],
        "tstamp-synth",
    );
    assert!(st.success(), "tstamp-synth: {err}");
    let outs = ["rtt.hdr", "rtt.csv", "rtt.svg"];
    let argv: Vec<String> = [
        "tstamp",
        "--read",
        &s(&cap),
        "--hdrh",
        &s(&d.join(outs[0])),
        "--hist-csv",
        &s(&d.join(outs[1])),
        "--plot",
        &s(&d.join(outs[2])),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let hooked = |what: &str| {
        let p = Proc::spawn(&argv, Some((xdplayer::hook::ENV, point)), what);
        let (st, err) = p.wait(Duration::from_secs(60));
        assert!(!st.success(), "{ctx}: {what} must abort: {err}");
        assert!(err.contains(point), "{ctx}: {what}: {err}");
    };

    // No output yet: a kill between the written data and its name leaves no name at
    // all, neither the output's nor a temporary one.
    hooked("tstamp offline, fresh outputs");
    assert_eq!(names_in(d), ["in.pcapng"], "{ctx}: nothing but the input");

    // The next run works and writes every output.
    let (st, err) = Proc::spawn(&argv, None, "tstamp offline").wait(Duration::from_secs(60));
    assert!(st.success(), "after {ctx}: {err}");
    let mut want: Vec<&str> = outs.iter().copied().chain(["in.pcapng"]).collect();
    want.sort_unstable();
    assert_eq!(names_in(d), want, "after {ctx}");
    let before: Vec<Vec<u8>> = outs
        .iter()
        .map(|o| std::fs::read(d.join(o)).expect("output"))
        .collect();
    assert!(before.iter().all(|b| !b.is_empty()), "outputs have data");
    assert!(
        String::from_utf8_lossy(&before[1]).starts_with("value,count\n"),
        "the CSV is whole"
    );

    // Outputs that exist: killed before the replacement's name, the old files stay
    // as they were and nothing is left beside them.
    for o in outs {
        std::fs::write(d.join(o), format!("old {o}\n")).expect("plant old output");
    }
    hooked("tstamp offline, replacing outputs");
    assert_eq!(names_in(d), want, "{ctx}: nothing beside the outputs");
    for o in outs {
        assert_eq!(
            std::fs::read_to_string(d.join(o)).expect("old output"),
            format!("old {o}\n"),
            "{ctx}: {o} untouched"
        );
    }

    // A temporary that a writer killed between naming and renaming would leave (its
    // process is gone): the next run removes it, and replaces every output.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait for true");
    let ns = std::fs::metadata("/proc/self/ns/pid")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("pid namespace");
    let stale = format!(".rtt.csv.tmp-{dead}-1-{ns}-0");
    std::fs::write(d.join(&stale), "half").expect("plant stale temporary");
    let (st, err) = Proc::spawn(&argv, None, "tstamp offline").wait(Duration::from_secs(60));
    assert!(st.success(), "after {ctx} (replacing): {err}");
    assert_eq!(names_in(d), want, "stale temporary {stale} removed");
    for (o, b) in outs.iter().zip(&before) {
        let now = std::fs::read(d.join(o)).expect("output");
        assert!(!now.starts_with(b"old "), "{o} replaced");
        if *o == "rtt.csv" {
            assert_eq!(&now, b, "same input, same histogram");
        }
    }
}

#[test]
fn sink_killed_mid_write_of_its_capture_leaves_no_file_and_the_next_run_works() {
    let bed = up("kwr");
    let ns = bed.dut().netns.clone();
    let point = xdplayer::atomic_file::HOOK_POINT;
    let ctx = format!("{}={point}", xdplayer::hook::ENV);
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("cap.pcapng");
    let argv: Vec<String> = [
        "sink",
        "--netns",
        &ns,
        "--iface",
        "dut0",
        "--backend",
        "af-packet",
        "--write",
        &pcap.to_string_lossy(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    // sink writes its capture on the way out: SIGINT, then the hook aborts it there.
    let mut p = Proc::spawn(&argv, Some((xdplayer::hook::ENV, point)), "sink --write");
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.running(), "{ctx}: sink ended early: {}", p.stderr());
    p.signal(libc::SIGINT);
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(!st.success(), "{ctx}: sink must abort: {err}");
    assert!(err.contains(point), "{ctx}: {err}");
    assert_eq!(
        names_in(dir.path()),
        Vec::<String>::new(),
        "{ctx}: no file at all"
    );

    let mut p = Proc::spawn(&argv, None, "sink --write");
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.running(), "after {ctx}: sink ended early: {}", p.stderr());
    p.signal(libc::SIGINT);
    let (st, err) = p.wait(Duration::from_secs(60));
    assert!(st.success(), "after {ctx}: {err}");
    assert_eq!(names_in(dir.path()), ["cap.pcapng"], "after {ctx}");
    let bytes = std::fs::read(&pcap).expect("capture");
    assert_eq!(
        bytes.get(..4),
        Some(&[0x0a, 0x0d, 0x0d, 0x0a][..]),
        "a pcapng section header"
    );
}
