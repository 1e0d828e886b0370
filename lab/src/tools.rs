//! Locating and driving the workspace's tools (`gen`, `dut`, `tstamp`,
//! `sink`) and the peers (`trafgen`, `dnsperf`) through their command lines,
//! as a user would.
//!
//! A workspace binary is looked up next to the running executable first, then
//! on `PATH` (`testbed::binaries::locate`). A missing tool is one line naming it and
//! how to get it.
//!
//! Children are tracked in a process-wide registry: the Ctrl-C handler
//! ([`install_ctrlc`]) sets [`stop_requested`] and sends SIGINT to every
//! registered child, so the tools print their final records and exit, and the
//! caller unwinds normally (dropping its `Testbed`, which tears the lab down).
//! A [`Child`] dropped while still running is interrupted, then killed.
//! Children run in their own process group, so signals they send to their
//! group never reach the runner.
//!
//! Children die with the runner ([`spawn_tied`]): each is started with
//! `PR_SET_PDEATHSIG` = SIGKILL from one long-lived spawner thread (the
//! kernel sends the signal when the thread that forked exits, so a caller's
//! short-lived thread must not be the parent), and checks right after the
//! `prctl` that its parent is still there, closing the race with a parent
//! killed during the fork. A SIGKILLed `lab run` so leaves no tool running;
//! whatever those tools forked is killed with the stale lab's namespaces
//! (see [`crate::registry`]).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// Workspace binaries the runner drives.
pub const WORKSPACE_TOOLS: &[&str] = &["gen", "dut", "tstamp", "sink"];

static STOP: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static CTRLC: Once = Once::new();
static COMMANDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Every command line started through [`Child::spawn`] since the last call, in
/// order (for run.json).
pub fn take_commands() -> Vec<String> {
    COMMANDS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// Whether Ctrl-C (or SIGTERM) was received.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Installs the Ctrl-C / SIGTERM handler (once per process): it sets the stop
/// flag and interrupts every registered child.
pub fn install_ctrlc() -> Result<()> {
    let mut res = Ok(());
    CTRLC.call_once(|| {
        res = ctrlc::set_handler(|| {
            STOP.store(true, Ordering::SeqCst);
            interrupt_all();
        })
        .context("install the Ctrl-C handler");
    });
    res
}

fn interrupt_all() {
    let pids = CHILDREN.lock().map(|v| v.clone()).unwrap_or_default();
    for pid in pids {
        interrupt_pid(pid);
    }
}

/// The standard input of each remote run (`ssh`), by pid: closed to stop the
/// tool (`--stop-on-stdin-eof`), since signals do not cross ssh; `None` once
/// closed.
static REMOTE_STDIN: Mutex<Vec<(u32, Option<std::process::ChildStdin>)>> = Mutex::new(Vec::new());

/// Asks child `pid` to stop as on Ctrl-C: SIGINT to a local tool's group; for a
/// remote run, closing its standard input (once: ssh then carries the tool's
/// final record back; a signal would end ssh and lose it).
fn interrupt_pid(pid: u32) {
    let remote = REMOTE_STDIN.lock().ok().and_then(|mut v| {
        v.iter_mut()
            .find(|(p, _)| *p == pid)
            .map(|(_, stdin)| drop(stdin.take()))
    });
    if remote.is_none() {
        signal(pid, nix::sys::signal::Signal::SIGINT);
    }
}

/// Signals a child's whole process group (each child leads its own), so
/// tools that fork workers (trafgen) stop entirely and release our pipes.
fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), sig);
    }
}

/// Finds a peer program (a Debian package's binary) on PATH, or says which
/// package to install.
pub fn locate_peer(program: &str, package: &str) -> Result<PathBuf> {
    testbed::binaries::on_path(program).ok_or_else(|| {
        anyhow!("peer `{program}` is not installed; install the Debian package `{package}` (`apt-get install {package}`, or run .ci/setup, which installs it)")
    })
}

use testbed::cmd::display;

/// What a finished tool run left: its stdout lines and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line.
    pub command: String,
    /// Exit status (None: killed by a signal).
    pub status: Option<i32>,
    /// stdout, line by line.
    pub lines: Vec<String>,
    /// stderr.
    pub stderr: String,
}

impl Output {
    /// The JSON objects among the stdout lines.
    pub fn records(&self) -> Vec<Value> {
        self.lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    /// The last record with `"type": "final"`.
    pub fn final_record(&self) -> Result<Value> {
        self.records()
            .into_iter()
            .rev()
            .find(|v| v["type"] == "final")
            .ok_or_else(|| {
                anyhow!(
                    "`{}` printed no final JSON record (exit {:?}): {}",
                    self.command,
                    self.status,
                    last_line(&self.stderr)
                )
            })
    }
    /// The last final record as its typed record (`what` names it in errors):
    /// schema version, field names and types checked.
    pub fn final_as<T: serde::de::DeserializeOwned>(&self, what: &'static str) -> Result<T> {
        records::typed(self.final_record()?, what)
            .with_context(|| format!("reading the final record of `{}`", self.command))
    }
    /// Every record of kind `kind` as its type `T` (`what` names it in
    /// errors): schema version, field names and types checked; a JSON line
    /// that is not a record is an error too.
    pub fn all_of<T: serde::de::DeserializeOwned>(
        &self,
        kind: records::Kind,
        what: &'static str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for line in self
            .lines
            .iter()
            .filter(|l| l.trim_start().starts_with('{'))
        {
            let (k, v) = records::kind_of(line)
                .with_context(|| format!("reading the output of `{}`", self.command))?;
            if k == kind {
                out.push(
                    records::from_value(v, what)
                        .with_context(|| format!("reading the output of `{}`", self.command))?,
                );
            }
        }
        Ok(out)
    }
    /// stdout as one string.
    pub fn stdout(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
    /// An error unless the command exited 0.
    pub fn check(&self) -> Result<&Output> {
        if self.status == Some(0) {
            Ok(self)
        } else {
            bail!(
                "`{}` failed (exit {:?}): {}",
                self.command,
                self.status,
                last_line(&self.stderr)
            )
        }
    }
}

/// The last non-empty line of `s` (a tool's error), trimmed.
pub(crate) fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no error output)")
        .trim()
        .to_owned()
}

/// Runs `cmd` to completion (registered, so Ctrl-C interrupts it).
pub fn run(cmd: Command) -> Result<Output> {
    let child = Child::spawn(cmd)?;
    child.wait()
}

/// A running tool: stdout lines arrive on a channel, stderr is collected.
#[derive(Debug)]
pub struct Child {
    command: String,
    child: Option<std::process::Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Child {
    /// Starts `cmd` with piped stdout/stderr and registers it.
    pub fn spawn(cmd: Command) -> Result<Child> {
        Child::spawn_with(cmd, false)
    }

    /// Starts a remote run (`ssh ... TOOL --stop-on-stdin-eof ...`): its standard
    /// input is a pipe that [`Child::interrupt`] and the Ctrl-C handler close to
    /// stop it, and that closes by itself when this process dies.
    pub fn spawn_remote(cmd: Command) -> Result<Child> {
        Child::spawn_with(cmd, true)
    }

    fn spawn_with(mut cmd: Command, remote: bool) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        let command = display(&cmd);
        if let Ok(mut v) = COMMANDS.lock() {
            v.push(command.clone());
        }
        // Own process group: a tool that signals its group (trafgen does on
        // exit) does not hit us, and a terminal's Ctrl-C reaches the tools
        // only through our handler, in order.
        cmd.process_group(0)
            .stdin(if remote {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_tied(cmd).with_context(|| format!("start `{command}`"))?;
        if remote && let Ok(mut v) = REMOTE_STDIN.lock() {
            v.push((child.id(), child.stdin.take()));
        }
        if let Ok(mut v) = CHILDREN.lock() {
            v.push(child.id());
        }
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().context("child stdout")?;
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().context("child stderr")?;
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(Child {
            command,
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
            reader: Some(reader),
        })
    }

    /// Process id, while running.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The command line.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Waits until a stdout line is a JSON object with `"type": ty`, up to
    /// `timeout`; fails if the tool exits first, times out or Ctrl-C arrives.
    pub fn wait_for_type(&mut self, ty: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if stop_requested() {
                bail!("interrupted");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "`{}` did not print a \"{ty}\" record within {:?}",
                    self.command,
                    timeout
                );
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    let v: Option<Value> = serde_json::from_str(&line).ok();
                    self.seen.push(line);
                    if let Some(v) = v.filter(|v| v["type"] == ty) {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let out = self.finish()?;
                    bail!(
                        "`{}` exited (status {:?}) before printing a \"{ty}\" record: {}",
                        out.command,
                        out.status,
                        last_line(&out.stderr)
                    );
                }
            }
        }
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Sends SIGINT, or closes a remote run's standard input (the tools then print
    /// their final record and exit).
    pub fn interrupt(&self) {
        if let Some(c) = &self.child {
            interrupt_pid(c.id());
        }
    }

    /// Waits for exit, collecting all output.
    pub fn wait(mut self) -> Result<Output> {
        self.finish()
    }

    /// Interrupts, waits up to `grace`, then kills; returns the output.
    pub fn stop(mut self, grace: Duration) -> Result<Output> {
        self.interrupt();
        let deadline = Instant::now() + grace;
        while !self.exited() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if !self.exited()
            && let Some(c) = self.child.as_ref()
        {
            signal(c.id(), nix::sys::signal::Signal::SIGKILL);
        }
        self.finish()
    }

    fn finish(&mut self) -> Result<Output> {
        let Some(mut child) = self.child.take() else {
            bail!("`{}` already collected", self.command);
        };
        let status = child
            .wait()
            .with_context(|| format!("wait for `{}`", self.command))?;
        unregister(child.id());
        // Workers it forked may still hold stdout: give them a moment, then
        // end the whole group so the readers see end-of-file.
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if self.reader.as_ref().is_some_and(|r| !r.is_finished()) {
            signal(child.id(), nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.seen.extend(self.lines.try_iter());
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok(Output {
            command: self.command.clone(),
            status: status.code(),
            lines: std::mem::take(&mut self.seen),
            stderr,
        })
    }
}

fn unregister(pid: u32) {
    if let Ok(mut v) = CHILDREN.lock() {
        v.retain(|p| *p != pid);
    }
    if let Ok(mut v) = REMOTE_STDIN.lock() {
        v.retain(|(p, _)| *p != pid);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            interrupt_pid(c.id());
            let deadline = Instant::now() + Duration::from_secs(3);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            signal(c.id(), nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
            unregister(c.id());
        }
    }
}

/// CPU time (user + system, all threads) a process has used so far, in ns.
pub fn cpu_time_ns(pid: u32) -> Option<f64> {
    cpu_time_ns_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A process's user and system CPU time in ns from its `/proc/PID/stat` text
/// (this machine's, or a testbed host's read over ssh).
pub fn cpu_time_ns_of(stat: &str) -> Option<f64> {
    let (_, f) = xdplayer::owner::parse_stat(stat)?;
    // utime and stime are fields 14 and 15.
    let ticks: f64 = f.get(14 - 3)?.parse::<f64>().ok()? + f.get(15 - 3)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks * 1e9 / hz as f64)
}

/// CPU time the whole machine spent in interrupt and softirq context (all
/// CPUs) since boot, from `/proc/stat`: where the kernel's packet processing
/// runs (veth hand-off, bridge, XDP in NAPI, AF_XDP copies). Without
/// CONFIG_IRQ_TIME_ACCOUNTING the kernel samples it per tick, which over a
/// window of seconds is still a fair estimate.
pub fn machine_softirq_ns() -> Option<f64> {
    softirq_ns_of(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The interrupt and softirq time in ns of a `/proc/stat` text (this
/// machine's, or a testbed host's read over ssh).
pub fn softirq_ns_of(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse::<f64>().ok())
        .collect::<Option<Vec<_>>>()?;
    // user nice system idle iowait irq softirq steal ...
    let ticks = f.get(5)? + f.get(6)?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks * 1e9 / hz as f64)
}

/// A request to the spawner thread: the command, and where to send the child.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<std::process::Child>>);

/// Starts `cmd` so that the child is SIGKILLed when this process ends, however
/// it ends (`PR_SET_PDEATHSIG`). The fork happens on one spawner thread that
/// lives as long as the process, since the kernel signals the child when the
/// *thread* that forked it exits; the child checks after the `prctl` that its
/// parent is still this process (if the parent died before, the signal would
/// never come) and exits otherwise. The death signal survives `execve` (of a
/// program that changes no credentials), so it holds for `ip netns exec`.
pub fn spawn_tied(cmd: Command) -> std::io::Result<std::process::Child> {
    use std::sync::OnceLock;
    static SPAWNER: OnceLock<std::io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("lab-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_death_signal(&mut cmd));
                }
            })
            .map(|_| tx)
    });
    let spawner = spawner
        .as_ref()
        .map_err(|e| std::io::Error::new(e.kind(), format!("start the spawner thread: {e}")))?;
    let (reply, answer) = mpsc::channel();
    let gone = || std::io::Error::other("the spawner thread is gone");
    spawner.send((cmd, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

fn spawn_with_death_signal(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls (prctl, getppid); it allocates nothing
    // and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died between fork and prctl: no signal will come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    cmd.spawn()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_is_one_line_saying_how_to_install_it() {
        let e = locate_peer("no-such-peer-xyz", "some-pkg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("some-pkg") && e.contains(".ci/setup"), "{e}");
    }

    #[test]
    fn cpu_time_of_a_busy_process_grows() {
        // Spin until 100 ms of CPU time show up, not for 300 ms of wall time: on a
        // shared, loaded machine this thread may get a small share of a core.
        let me = std::process::id();
        let a = cpu_time_ns(me).unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        let mut b = a;
        while b - a < 1e8 && t.elapsed() < Duration::from_secs(60) {
            for _ in 0..1_000_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            b = cpu_time_ns(me).unwrap();
        }
        assert!(b - a >= 1e8, "{a} -> {b} ({x})");
        assert!(cpu_time_ns(u32::MAX).is_none());
    }

    #[test]
    fn children_report_lines_and_final_records() {
        let mut c = Command::new("sh");
        c.args(["-c", r#"echo '{"type":"ready"}'; sleep 0.2; echo '{"type":"final","x":{"y":3}}'; echo oops >&2"#]);
        let mut child = Child::spawn(c).unwrap();
        let ready = child
            .wait_for_type("ready", Duration::from_secs(30))
            .unwrap();
        assert_eq!(ready["type"], "ready");
        let out = child.wait().unwrap();
        let fin = out.final_record().unwrap();
        assert_eq!(fin["x"]["y"], 3);
        assert_eq!(out.lines.len(), 2);
        assert!(out.stderr.contains("oops"));
        out.check().unwrap();
    }

    #[test]
    fn records_are_read_as_their_types_and_a_stray_field_is_an_error() {
        let v = records::SCHEMA_VERSION;
        let rec = |batch: &str| {
            format!(
                r#"{{"type":"final","schema_version":{v},"profile":"dns-small","entries":10,"method":"{batch}","batch":null,"updates":5,"seconds":1.0,"updates_per_s":5.0}}"#
            )
        };
        let out = Output {
            command: "dut update-bench".into(),
            status: Some(0),
            lines: vec![rec("single"), "single   10 entries".into(), rec("batch")],
            stderr: String::new(),
        };
        let all: Vec<records::dut::UpdateBench> = out
            .all_of(records::Kind::Final, "dut update-bench")
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].method, records::dut::Method::Batch);
        let mut bad = out.clone();
        bad.lines[2] = rec("batch").replace(r#""updates":5"#, r#""updates":5,"extra":1"#);
        let e = bad
            .all_of::<records::dut::UpdateBench>(records::Kind::Final, "dut update-bench")
            .unwrap_err();
        assert!(format!("{e:#}").contains("extra"), "{e:#}");
        bad.lines[2] = rec("bulk");
        assert!(
            bad.all_of::<records::dut::UpdateBench>(records::Kind::Final, "dut update-bench")
                .is_err()
        );
    }

    #[test]
    fn a_tool_that_exits_early_is_an_error_naming_it() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo broken >&2; exit 3"]);
        let mut child = Child::spawn(c).unwrap();
        let e = child
            .wait_for_type("ready", Duration::from_secs(30))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exited") && e.contains("broken"), "{e}");
    }

    #[test]
    fn stop_ends_forked_workers_too() {
        // A worker that ignores nothing and outlives its parent's exit,
        // holding stdout: stop() must still return, and the worker must die.
        let mut c = Command::new("sh");
        c.args(["-c", r#"sleep 30 & echo $! ; echo '{"type":"ready"}'; trap 'exit 0' INT; while true; do sleep 0.05; done"#]);
        let mut child = Child::spawn(c).unwrap();
        child
            .wait_for_type("ready", Duration::from_secs(30))
            .unwrap();
        let t = Instant::now();
        let out = child.stop(Duration::from_secs(2)).unwrap();
        // 2 s grace + 3 s for the readers, then the group is killed: far below the
        // worker's 30 s, with room for a loaded machine.
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        let worker: i32 = out.lines[0].trim().parse().unwrap();
        // SIGKILL takes effect when the worker next runs: poll rather than sleep.
        let alive = || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker), None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{worker}/stat"))
                    .unwrap_or_default()
                    .contains(") Z")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "worker {worker} survived");
    }

    #[test]
    fn a_tied_child_outlives_the_thread_that_asked_for_it() {
        // The death signal follows the forking thread: a tied child asked for
        // by a short-lived thread must survive that thread (the spawner
        // thread forks). That it dies with the process is tests/kill.rs.
        let pid = thread::spawn(|| {
            let mut c = Command::new("sleep");
            c.arg("30");
            spawn_tied(c).unwrap()
        })
        .join()
        .unwrap();
        let id = pid.id();
        // The signal would be sent as the thread exits; give it a moment.
        thread::sleep(Duration::from_millis(200));
        let state = xdplayer::owner::stat_fields(id).unwrap();
        assert_ne!(state[0], "Z", "the child died with the caller's thread");
        let mut child = pid;
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn stop_interrupts_a_running_tool() {
        let mut c = Command::new("sh");
        c.args(["-c", r#"trap 'echo "{\"type\":\"final\"}"; exit 0' INT; echo '{"type":"ready"}'; while true; do sleep 0.05; done"#]);
        let mut child = Child::spawn(c).unwrap();
        child
            .wait_for_type("ready", Duration::from_secs(30))
            .unwrap();
        let t = Instant::now();
        // Ended by SIGINT (final record printed), well before the kill after the grace.
        let out = child.stop(Duration::from_secs(30)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
        out.final_record().unwrap();
    }
}
