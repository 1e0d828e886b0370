//! Where a tool runs: the one place that turns a tool's argument list (built by
//! `records::args`) into a process, either on this machine (inside a lab's
//! namespace: the builder's `--netns`) or on a testbed host over `ssh`
//! ([`Site`]). The same records come back either way: the remote tool's stdout
//! is ssh's stdout.
//!
//! Over ssh, each host has one control master (`ControlMaster auto`,
//! `ControlPath` in a directory this process owns (`/run/xdp-measure/ssh/PID`,
//! removed at the end, or by the next `lab` once this one is gone), `ControlPersist` 10 s, started
//! by [`preflight`]), so every tool run is a session on an open connection. A
//! remote tool gets `--stop-on-stdin-eof` (`records::cli::StopOpt`, implemented
//! once in `xdplayer::stop`): signals do not cross ssh, so lab stops a remote
//! tool by closing ssh's standard input ([`crate::tools::Child::spawn_remote`]),
//! and a tool whose connection goes (lab killed, the host's sshd killed) stops
//! as on Ctrl-C.
//!
//! [`preflight`] checks every host before any traffic: reachable over ssh as
//! root, its tools there with this `lab`'s `--version` (git commit), its data
//! interface up, and not the interface that carries the control connection.
//! Each problem is one line naming the host.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};

use crate::testbed_file::{Endpoint, TestbedFile};
use crate::tools::{Child, Output, last_line};

/// Where each `lab` process keeps its control sockets (`PID/`).
const CONTROL_ROOT: &str = "/run/xdp-measure/ssh";

/// Removes the control directories of `lab` processes that are gone (killed
/// before they could remove their own; their masters ended with
/// `ControlPersist`).
fn remove_dead_control_dirs() {
    let Ok(dir) = std::fs::read_dir(CONTROL_ROOT) else {
        return;
    };
    for e in dir.flatten() {
        let pid = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// How long a host's control master stays after its last session.
pub const CONTROL_PERSIST: &str = "10s";

/// The ssh side of one testbed session: the ssh_config and the control sockets'
/// directory (removed, masters stopped, when dropped).
#[derive(Debug)]
pub struct Ssh {
    config: Option<PathBuf>,
    control_dir: PathBuf,
    masters: Mutex<Vec<Endpoint>>,
}

impl Ssh {
    /// A session for testbed file `file` (its ssh_config); the control sockets go
    /// into `/run/xdp-measure/ssh/PID`.
    pub fn new(file: &TestbedFile) -> Result<Arc<Ssh>> {
        use std::os::unix::fs::PermissionsExt;
        remove_dead_control_dirs();
        let control_dir = PathBuf::from(format!("{CONTROL_ROOT}/{}", std::process::id()));
        std::fs::create_dir_all(&control_dir)
            .with_context(|| format!("create {}", control_dir.display()))?;
        std::fs::set_permissions(&control_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", control_dir.display()))?;
        Ok(Arc::new(Ssh {
            config: file.ssh_config.clone(),
            control_dir,
            masters: Mutex::new(Vec::new()),
        }))
    }

    /// `ssh` with the options every connection to `e` takes.
    fn command(&self, e: &Endpoint) -> Command {
        let mut c = Command::new("ssh");
        if let Some(cfg) = &self.config {
            c.arg("-F").arg(cfg);
        }
        let mut path = OsString::from("ControlPath=");
        path.push(self.control_dir.join("%C"));
        c.args(["-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o"])
            .arg(path);
        if let Some(p) = e.port {
            c.args(["-p", &p.to_string()]);
        }
        c
    }

    /// Opens `e`'s control master (in the background, for [`CONTROL_PERSIST`]
    /// after its last session).
    fn open_master(&self, e: &Endpoint) -> Result<()> {
        let mut c = self.command(e);
        // Its stdio is /dev/null: the master outlives this command and must not hold
        // a pipe of ours.
        c.args([
            "-o",
            &format!("ControlPersist={CONTROL_PERSIST}"),
            "-f",
            "-N",
        ])
        .arg(&e.ssh)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let out = c.output().context("run ssh")?;
        if !out.status.success() {
            bail!(
                "{}: not reachable over ssh: {}",
                e.display(),
                last_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
        if let Ok(mut m) = self.masters.lock() {
            m.push(e.clone());
        }
        Ok(())
    }

    /// `ssh ... DEST COMMAND` for `e`, sessions on its master (none left behind:
    /// `ControlPersist no` for a session that has to open the connection itself).
    fn session(&self, e: &Endpoint, remote_command: &str) -> Command {
        let mut c = self.command(e);
        c.args(["-o", "ControlPersist=no", "--"])
            .arg(&e.ssh)
            .arg(remote_command);
        c
    }
}

impl Drop for Ssh {
    fn drop(&mut self) {
        let masters = self.masters.lock().map(|m| m.clone()).unwrap_or_default();
        for e in masters {
            let mut c = self.command(&e);
            let _ = c
                .args(["-O", "exit"])
                .arg(&e.ssh)
                .stdin(Stdio::null())
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

/// A testbed host reached over ssh.
#[derive(Debug, Clone)]
pub struct RemoteHost {
    /// Its entry in the testbed file.
    pub endpoint: Endpoint,
    /// The session's ssh.
    pub ssh: Arc<Ssh>,
}

impl RemoteHost {
    /// Runs the shell command line `script` on the host (a session on its
    /// control master, stdin closed) and returns its stdout; an error naming
    /// the host unless it exits 0. The caller quotes (see [`shell_quote`]).
    pub fn shell(&self, script: &str) -> Result<String> {
        let out = self
            .ssh
            .session(&self.endpoint, script)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{}: run `{script}` over ssh", self.endpoint.display()))?;
        if !out.status.success() {
            bail!(
                "{}: `{script}` failed ({}): {}",
                self.endpoint.display(),
                out.status,
                last_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The text of file `path` on the host, which is removed there (a file a
    /// tool wrote for us, see [`tmp_file`]).
    pub fn fetch(&self, path: &str) -> Result<String> {
        let q = shell_quote(path);
        self.shell(&format!("cat {q} && rm -f {q}"))
            .with_context(|| format!("fetch {path} from {}", self.endpoint.display()))
    }

    /// Writes `data` to `path` on the host over its ssh connection (`cat >
    /// PATH`, the data on ssh's standard input): the one way lab puts a file
    /// on a host (a peer's configuration, its query list).
    pub fn put_file(&self, path: &str, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let line = format!("cat > {}", shell_quote(path));
        let what = || format!("{}: write {path} over ssh", self.endpoint.display());
        let mut child = self
            .ssh
            .session(&self.endpoint, &line)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(what)?;
        let written = child
            .stdin
            .take()
            .context("ssh's standard input")
            .and_then(|mut w| w.write_all(data).context("send the data"));
        let out = child.wait_with_output().with_context(what)?;
        written.with_context(what)?;
        if !out.status.success() {
            bail!(
                "{}: `{line}` failed ({}): {}",
                self.endpoint.display(),
                out.status,
                last_line(&String::from_utf8_lossy(&out.stderr))
            );
        }
        Ok(())
    }

    /// Starts `argv` (a program without `--stop-on-stdin-eof` of its own: the
    /// peers trafgen and dnsperf) on the host, in its entry's namespace, and
    /// stops it as our tools stop: a bash wrapper gives it its own process
    /// group and sends that group SIGINT when the session's standard input
    /// ends ([`Child::stop`], lab gone, the connection gone), and ends when
    /// it does, with its status. The files in `remove` (put there with
    /// [`RemoteHost::put_file`]) are removed when it ends.
    pub fn spawn_peer(&self, argv: &[String], remove: &[&str]) -> Result<Child> {
        let mut prog = String::from("setsid ");
        if let Some(ns) = &self.endpoint.netns {
            prog.push_str(&format!("ip netns exec {} ", shell_quote(ns)));
        }
        prog.push_str(
            &argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let rm = remove
            .iter()
            .map(|f| shell_quote(f))
            .collect::<Vec<_>>()
            .join(" ");
        // fd 3 keeps the session's stdin for `cat`: a background job's own
        // stdin is /dev/null. `wait -n`: whichever ends first.
        let script = format!(
            "trap '' HUP; exec 3<&0; {prog} </dev/null & p=$!; cat <&3 >/dev/null 2>&1 & c=$!; exec 3<&-; \
             wait -n $p $c; kill -INT -- -$p 2>/dev/null; kill $c 2>/dev/null; wait $p; s=$?; {}exit $s",
            if rm.is_empty() {
                String::new()
            } else {
                format!("rm -f {rm}; ")
            }
        );
        let line = format!("exec bash -c {}", shell_quote(&script));
        Child::spawn_remote(self.ssh.session(&self.endpoint, &line))
    }

    /// The MAC of the host's data interface (`ip -o link`, in its namespace).
    pub fn mac(&self) -> Result<[u8; 6]> {
        let e = &self.endpoint;
        let text =
            self.shell(&self.in_netns(&format!("ip -o link show dev {}", shell_quote(&e.iface))))?;
        dut_identity(&text)
            .map(|(m, _)| m)
            .with_context(|| format!("{}: read {}'s MAC", e.display(), e.iface))
    }

    /// Whether `program` is on the host's PATH (`command -v`).
    pub fn has_program(&self, program: &str) -> Result<bool> {
        let out = self.shell(&format!("command -v {} || true", shell_quote(program)))?;
        Ok(!out.trim().is_empty())
    }

    /// `script` as the host runs it inside its entry's network namespace (if any).
    pub fn in_netns(&self, script: &str) -> String {
        match &self.endpoint.netns {
            Some(ns) => format!(
                "ip netns exec {} sh -c {}",
                shell_quote(ns),
                shell_quote(script)
            ),
            None => script.to_owned(),
        }
    }
}

/// Where a tool runs.
#[derive(Debug, Clone)]
pub enum Site {
    /// This machine, inside a namespace (the tool's `--netns`).
    Local {
        /// The namespace.
        netns: String,
    },
    /// A testbed host over ssh (`--netns` of its entry, if any).
    Remote(Arc<RemoteHost>),
}

impl PartialEq for Site {
    fn eq(&self, other: &Site) -> bool {
        match (self, other) {
            (Site::Local { netns: a }, Site::Local { netns: b }) => a == b,
            (Site::Remote(a), Site::Remote(b)) => a.endpoint == b.endpoint,
            _ => false,
        }
    }
}

impl Eq for Site {}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Local { netns } => f.write_str(netns),
            Site::Remote(h) => f.write_str(&h.endpoint.display()),
        }
    }
}

/// `s` quoted for a POSIX shell (the remote side of ssh runs its command line
/// through the user's shell).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Site {
    /// A namespace on this machine.
    pub fn local(netns: impl Into<String>) -> Site {
        Site::Local {
            netns: netns.into(),
        }
    }

    /// The `--netns` the tool's builder gets.
    pub fn netns(&self) -> Option<String> {
        match self {
            Site::Local { netns } => Some(netns.clone()),
            Site::Remote(h) => h.endpoint.netns.clone(),
        }
    }

    /// Whether the tool runs over ssh.
    pub fn is_remote(&self) -> bool {
        matches!(self, Site::Remote(_))
    }

    /// The command that runs `tool` with `argv` (a builder's `argv()`) here.
    pub fn command(&self, tool: &str, argv: &[String]) -> Result<Command> {
        match self {
            Site::Local { .. } => {
                let mut c = Command::new(testbed::binaries::locate(tool)?);
                c.args(argv);
                Ok(c)
            }
            Site::Remote(h) => {
                let mut line = format!(
                    "exec {} {}",
                    shell_quote(&h.endpoint.tool(tool).display().to_string()),
                    records::cli::StopOpt::FLAG
                );
                for a in argv {
                    line.push(' ');
                    line.push_str(&shell_quote(a));
                }
                Ok(h.ssh.session(&h.endpoint, &line))
            }
        }
    }

    /// Starts `tool` here ([`Child::spawn`], or [`Child::spawn_remote`] over ssh).
    pub fn spawn(&self, tool: &str, argv: &[String]) -> Result<Child> {
        let c = self.command(tool, argv)?;
        if self.is_remote() {
            Child::spawn_remote(c)
        } else {
            Child::spawn(c)
        }
    }

    /// Runs `tool` here to completion.
    pub fn run(&self, tool: &str, argv: &[String]) -> Result<Output> {
        self.spawn(tool, argv)?.wait()
    }
}

impl RemoteHost {
    /// A shell command line run on the host (in its entry's namespace, if any)
    /// as a session on its control master, to spawn (see [`RemoteHost::shell`]
    /// to run one to completion).
    pub fn shell_command(&self, line: &str) -> Command {
        self.ssh.session(&self.endpoint, &self.in_netns(line))
    }

    /// The user and system CPU time of process `pid` on the host (its
    /// /proc/PID/stat over ssh; see [`crate::tools::cpu_time_ns_of`]).
    pub fn cpu_time_ns(&self, pid: u32) -> Option<f64> {
        let text = self.shell(&format!("cat /proc/{pid}/stat")).ok()?;
        crate::tools::cpu_time_ns_of(&text)
    }

    /// The host's clock synchronisation state, read over ssh: chrony
    /// (`chronyc -c tracking`), else a PTP daemon's (`pmc -u -b 0 'GET
    /// TIME_STATUS_NP'`), else systemd's view (`timedatectl show`), else
    /// `unknown`. Never fails: a host that cannot say is `unknown`.
    pub fn clock_state(&self) -> ClockState {
        let script = "if command -v chronyc >/dev/null && chronyc -c tracking 2>/dev/null | grep -q ,; then echo chronyc; chronyc -c tracking; \
             elif command -v pmc >/dev/null && pmc -u -b 0 'GET TIME_STATUS_NP' 2>/dev/null | grep -q master_offset; then echo pmc; pmc -u -b 0 'GET TIME_STATUS_NP'; \
             elif command -v timedatectl >/dev/null && timedatectl show 2>/dev/null | grep -q NTP; then echo timedatectl; timedatectl show; \
             else echo unknown; fi";
        let out = self
            .ssh
            .session(&self.endpoint, script)
            .stdin(Stdio::null())
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        ClockState::parse(&self.endpoint.role, &self.endpoint.ssh, &text)
    }
}

/// A host's clock synchronisation state (recorded in run.json: response times
/// are taken on the monitor's one clock, but a common start is only as good as
/// the generator hosts' clocks).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockState {
    /// The testbed file's role (`gen[0]`, `dut`, `mon`).
    pub role: String,
    /// Its ssh destination.
    pub ssh: String,
    /// Where the state came from: `chronyc`, `pmc`, `timedatectl` or `unknown`.
    pub source: String,
    /// Whether the source says the clock is synchronised (null: unknown).
    pub synchronised: Option<bool>,
    /// The clock's offset from its reference, seconds, where the source gives it.
    pub offset_s: Option<f64>,
    /// The source's output, as read.
    pub detail: String,
}

impl ClockState {
    /// From the clock probe's output: its first line names the source.
    pub fn parse(role: &str, ssh: &str, text: &str) -> ClockState {
        let mut lines = text.lines();
        let source = lines.next().unwrap_or("unknown").trim().to_owned();
        let detail: String = lines.collect::<Vec<_>>().join("\n");
        let (synchronised, offset_s) = match source.as_str() {
            // CSV: ref id, ref name, stratum, ref time, system time offset (s),
            // last offset, ..., leap status (last): "Normal" when synchronised.
            "chronyc" => {
                let f: Vec<&str> = detail.trim().split(',').collect();
                let leap = f.last().map(|l| l.trim());
                (
                    Some(leap == Some("Normal") && f.get(2).is_some_and(|s| *s != "0")),
                    f.get(4).and_then(|x| x.trim().parse().ok()),
                )
            }
            "pmc" => {
                let off = detail.lines().find_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("master_offset"))
                        .then(|| w.next()?.parse::<f64>().ok())
                        .flatten()
                });
                (off.map(|_| true), off.map(|ns| ns / 1e9))
            }
            "timedatectl" => {
                let synced = detail
                    .lines()
                    .find_map(|l| l.strip_prefix("NTPSynchronized="))
                    .map(|v| v.trim() == "yes");
                (synced, None)
            }
            _ => (None, None),
        };
        let source = if ["chronyc", "pmc", "timedatectl"].contains(&source.as_str()) {
            source
        } else {
            "unknown".to_owned()
        };
        ClockState {
            role: role.to_owned(),
            ssh: ssh.to_owned(),
            source,
            synchronised,
            offset_s,
            detail,
        }
    }
}

/// The tools a role runs.
fn tools_of(role: &str) -> &'static [&'static str] {
    if role.starts_with("gen") {
        &["gen"]
    } else if role == "dut" || role.starts_with("tenant") {
        &["dut"]
    } else {
        &["tstamp"]
    }
}

/// What the probe found on a host: one line per problem.
fn judge(e: &Endpoint, probe: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let field = |key: &str| -> Vec<&str> {
        probe
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .collect()
    };
    match field("uid").first() {
        Some(&"0") => {}
        Some(u) => problems.push(format!("not root (uid {u}): the tools need root")),
        None => problems.push("no answer from the probe".to_owned()),
    }
    let want = buildinfo::VERSION;
    for t in tools_of(&e.role) {
        let path = e.tool(t);
        if field("missing").contains(t) {
            problems.push(format!("{} is missing (or not executable)", path.display()));
            continue;
        }
        let said = field("version")
            .into_iter()
            .find_map(|l| l.strip_prefix(t)?.strip_prefix(' '))
            .unwrap_or("")
            .trim();
        let version = said.strip_prefix(t).map(str::trim).unwrap_or(said);
        if version != want {
            problems.push(format!(
                "{} is version `{version}`, this lab is `{want}`: install the same build there",
                path.display()
            ));
        }
    }
    let link = field("link").first().copied().unwrap_or("");
    let flags = link
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or("", |(f, _)| f);
    if !link.contains(&format!(" {}", e.iface)) || flags.is_empty() {
        problems.push(format!("no interface {} ({})", e.iface, link.trim()));
    } else if !flags.split(',').any(|f| f == "UP") || !flags.split(',').any(|f| f == "LOWER_UP") {
        problems.push(format!("interface {} is not up (<{flags}>)", e.iface));
    }
    // The control connection's interface on the host (the route back to the ssh
    // client), in the host's own namespace: only a data interface there can be it.
    let ctl = field("ctl").first().copied().unwrap_or("");
    let ctl_dev = ctl
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or("");
    if e.netns.is_none() && ctl_dev == e.iface {
        problems.push(format!(
            "{} carries the ssh connection ({}): refusing to send or capture on the control interface",
            e.iface,
            ctl.trim()
        ));
    }
    problems
}

/// The probe run on each host: who we are, the tools' versions, the data
/// interface, the route back to the ssh client.
fn probe_script(e: &Endpoint) -> String {
    let mut s = String::from("echo uid $(id -u); ");
    for t in tools_of(&e.role) {
        let p = shell_quote(&e.tool(t).display().to_string());
        s.push_str(&format!(
            "if [ -x {p} ]; then echo version {t} $({p} --version 2>&1 | head -n 1); else echo missing {t}; fi; "
        ));
    }
    let ns = e
        .netns
        .as_ref()
        .map(|n| format!("-n {} ", shell_quote(n)))
        .unwrap_or_default();
    s.push_str(&format!(
        "echo link $(ip {ns}-o link show dev {} 2>&1); ",
        shell_quote(&e.iface)
    ));
    s.push_str("set -- $SSH_CONNECTION; echo ctl $(ip -o route get \"$1\" 2>&1)");
    s
}

/// Pre-flight of every host of `file` before any traffic: opens each host's
/// control master and checks it (see the module's documentation). The first
/// host with a problem is one error line naming it and every problem found.
pub fn preflight(ssh: &Arc<Ssh>, file: &TestbedFile) -> Result<Vec<Arc<RemoteHost>>> {
    let mut hosts = Vec::new();
    for e in file.endpoints() {
        ssh.open_master(e)?;
        let out = ssh
            .session(e, &probe_script(e))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{}: run the pre-flight probe", e.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let problems = judge(e, &text);
        if !problems.is_empty() {
            bail!("{}: {}", e.display(), problems.join("; "));
        }
        hosts.push(Arc::new(RemoteHost {
            endpoint: e.clone(),
            ssh: ssh.clone(),
        }));
    }
    check_dut(&hosts)?;
    clean_dut(host(&hosts, "dut")?)?;
    Ok(hosts)
}

/// A host that died mid-run (its `dut` killed with no chance to clean up, the
/// machine cut off) can leave a program on the DUT's data interface whose
/// owning process is gone: an orphan in `dut status`. Pre-flight removes it
/// (`dut remove`, which puts the placeholder back) and says so in one line;
/// a program whose owner still runs is another run's, and is refused.
fn clean_dut(dut: &Arc<RemoteHost>) -> Result<()> {
    use records::dut::Claim;
    let e = &dut.endpoint;
    let site = Site::Remote(dut.clone());
    let status = records::args::Dut {
        netns: e.netns.clone(),
        json: true,
        cmd: records::args::DutCmd::Status {
            iface: Some(e.iface.clone()),
            window: None,
        },
    };
    let out = site.run("dut", &status.argv())?;
    out.check()?;
    let st = records::dut::Status::parse(&out.lines.join("\n"))
        .with_context(|| format!("{}: reading `{}`", e.display(), out.command))?;
    let Some(a) = st.on(&e.iface) else {
        return Ok(());
    };
    let who = || match (&a.owner.comm, a.owner.pid) {
        (Some(c), Some(p)) => format!("{c}, pid {p}"),
        (_, Some(p)) => format!("pid {p}"),
        _ => "no record".to_owned(),
    };
    match a.owner.claim {
        Claim::Orphan => {
            let remove = records::args::Dut {
                netns: e.netns.clone(),
                json: false,
                cmd: records::args::DutCmd::Remove {
                    iface: e.iface.clone(),
                },
            };
            site.run("dut", &remove.argv())?.check()?;
            eprintln!(
                "pre-flight: {}: removed {} from {}, left by a run that died ({}, gone)",
                e.display(),
                a.program,
                e.iface,
                who()
            );
            Ok(())
        }
        Claim::Live => bail!(
            "{}: {} on {} belongs to a running process ({}): another run is using this DUT; wait for it or stop it",
            e.display(),
            a.program,
            e.iface,
            who()
        ),
        Claim::Placeholder | Claim::Persistent | Claim::Unrecorded => Ok(()),
    }
}

/// Before any traffic: the DUT's data interface has the file's address and
/// MAC, and every generator host's neighbour entry for that address (what gen
/// sends to when the file gives no `mac`) is the DUT interface's MAC, so no
/// frame goes to another machine. One line naming the host otherwise.
fn check_dut(hosts: &[Arc<RemoteHost>]) -> Result<()> {
    let dut = host(hosts, "dut")?;
    let e = &dut.endpoint;
    let q = shell_quote(&e.iface);
    let text = dut.shell(&dut.in_netns(&format!(
        "ip -o link show dev {q}; ip -o -4 addr show dev {q}"
    )))?;
    let (mac, addrs) = dut_identity(&text)
        .with_context(|| format!("{}: read {}'s MAC and addresses", e.display(), e.iface))?;
    if let Some(want) = e.mac
        && want != mac
    {
        bail!(
            "{}: {} has MAC {}, the testbed file says {}: fix [dut] mac",
            e.display(),
            e.iface,
            profiles::units::format_mac(mac),
            profiles::units::format_mac(want)
        );
    }
    let Some(ip) = e.ip else {
        return Ok(());
    };
    // An interface with no IPv4 address at all is an XDP-only DUT (its
    // programs answer for the address): only a different address is wrong.
    if !addrs.is_empty() && !addrs.contains(&ip) {
        bail!(
            "{}: {} does not have {ip} (its IPv4 addresses: {}): fix [dut] ip",
            e.display(),
            e.iface,
            addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if e.mac.is_some() {
        // gen is given the MAC (`--dst-mac`): no neighbour lookup on its hosts.
        return Ok(());
    }
    for g in hosts.iter().filter(|h| h.endpoint.role.starts_with("gen")) {
        let ge = &g.endpoint;
        let text = g.shell(&g.in_netns(&format!(
            "ip neigh show to {ip} dev {}",
            shell_quote(&ge.iface)
        )))?;
        match neighbour_mac(&text) {
            Some(m) if m == mac => {}
            Some(m) => bail!(
                "{}: its neighbour entry for {ip} on {} is {}, but the DUT's {} is {}: refusing to send to another machine (fix the entry or give [dut] mac)",
                ge.display(),
                ge.iface,
                profiles::units::format_mac(m),
                e.iface,
                profiles::units::format_mac(mac)
            ),
            None => bail!(
                "{}: no neighbour entry for the DUT's {ip} on {}: give [dut] mac, or resolve it on that host (`ping -c 1 {ip}`)",
                ge.display(),
                ge.iface
            ),
        }
    }
    Ok(())
}

/// The MAC (`link/ether` of the `ip -o link` line, first) and IPv4 addresses
/// (`ip -o -4 addr` lines) the DUT probe printed.
fn dut_identity(text: &str) -> Option<([u8; 6], Vec<std::net::Ipv4Addr>)> {
    let mut lines = text.lines();
    let link: Vec<&str> = lines.next()?.split_whitespace().collect();
    let i = link.iter().position(|w| *w == "link/ether")?;
    let mac = profiles::units::parse_mac(link.get(i + 1)?).ok()?;
    let addrs = lines
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "inet")?;
            w.get(i + 1)?.split('/').next()?.parse().ok()
        })
        .collect();
    Some((mac, addrs))
}

/// The link-layer address of an `ip neigh show` line, if it has one (not
/// FAILED or INCOMPLETE).
fn neighbour_mac(text: &str) -> Option<[u8; 6]> {
    text.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "lladdr")?;
        profiles::units::parse_mac(w.get(i + 1)?).ok()
    })
}

/// The remote host of `role` among `hosts` (from [`preflight`]).
pub fn host<'a>(hosts: &'a [Arc<RemoteHost>], role: &str) -> Result<&'a Arc<RemoteHost>> {
    hosts
        .iter()
        .find(|h| h.endpoint.role == role)
        .ok_or_else(|| anyhow!("the testbed file has no {role} host"))
}

/// A path on a host for a file a tool writes there for us to [`RemoteHost::fetch`]:
/// `NAME` in /tmp, made unique by this process's id.
pub fn tmp_file(name: &str) -> String {
    format!("/tmp/lab-{}-{name}", std::process::id())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_dut_probe_and_neighbour_entries_parse() {
        let text = "5: dut0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 02:00:00:00:00:02 brd ff:ff:ff:ff:ff:ff link-netns lab-sw\n5: dut0    inet 198.18.0.2/24 scope global dut0\\       valid_lft forever preferred_lft forever\n";
        let (mac, addrs) = dut_identity(text).unwrap();
        assert_eq!(mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(addrs, vec![std::net::Ipv4Addr::new(198, 18, 0, 2)]);
        assert_eq!(dut_identity("no such device\n"), None);
        assert_eq!(
            neighbour_mac("198.18.0.2 lladdr 02:00:00:00:00:02 PERMANENT\n"),
            Some([2, 0, 0, 0, 0, 2])
        );
        assert_eq!(neighbour_mac("198.18.0.2 FAILED\n"), None);
        assert_eq!(neighbour_mac(""), None);
    }

    fn ep(role: &str, netns: Option<&str>) -> Endpoint {
        Endpoint {
            role: role.into(),
            ssh: "root@h".into(),
            port: None,
            iface: "gen0".into(),
            netns: netns.map(Into::into),
            tools: "/opt/x".into(),
            ip: None,
            mac: None,
        }
    }

    #[test]
    fn clock_states_are_read_from_each_source_or_unknown() {
        let c = ClockState::parse(
            "gen[0]",
            "root@g",
            "chronyc\nC0A80001,ntp.example,3,1764633005.1,-0.000012345,0.000001,0.00002,-3.1,0.001,0.02,0.01,0.001,64.5,Normal\n",
        );
        assert_eq!(c.source, "chronyc");
        assert_eq!(c.synchronised, Some(true));
        assert_eq!(c.offset_s, Some(-0.000012345));
        let c = ClockState::parse(
            "gen[1]",
            "root@g",
            "timedatectl\nTimezone=UTC\nNTPSynchronized=no\n",
        );
        assert_eq!(
            (c.source.as_str(), c.synchronised),
            ("timedatectl", Some(false))
        );
        let c = ClockState::parse(
            "mon",
            "root@m",
            "pmc\nsending: GET TIME_STATUS_NP\n\tmaster_offset              -37\n",
        );
        assert_eq!((c.synchronised, c.offset_s), (Some(true), Some(-37e-9)));
        for text in ["unknown\n", "", "garbage"] {
            let c = ClockState::parse("dut", "root@d", text);
            assert_eq!(
                (c.source.as_str(), c.synchronised),
                ("unknown", None),
                "{text:?}"
            );
        }
    }

    fn probe(version: &str, flags: &str, ctl: &str) -> String {
        format!(
            "uid 0\nversion gen gen {version}\nlink 5: gen0@if3: <{flags}> mtu 1500 state UP\nctl {ctl}\n"
        )
    }

    #[test]
    fn a_healthy_host_passes() {
        let p = probe(
            buildinfo::VERSION,
            "BROADCAST,UP,LOWER_UP",
            "10.0.0.1 dev mgmt0 src 10.0.0.2",
        );
        assert_eq!(judge(&ep("gen[0]", None), &p), Vec::<String>::new());
    }

    #[test]
    fn each_problem_is_named() {
        let e = ep("gen[0]", None);
        let p = probe(
            "0.0.9 (git 0123456789ab)",
            "BROADCAST,UP,LOWER_UP",
            "x dev mgmt0",
        );
        let v = judge(&e, &p);
        assert!(
            v.len() == 1
                && v[0].contains("/opt/x/gen is version `0.0.9 (git 0123456789ab)`")
                && v[0].contains("this lab is"),
            "{v:?}"
        );
        let p = probe(buildinfo::VERSION, "BROADCAST", "x dev mgmt0");
        assert!(judge(&e, &p)[0].contains("gen0 is not up"));
        let p = probe(
            buildinfo::VERSION,
            "BROADCAST,UP,LOWER_UP",
            "10.0.0.1 dev gen0 src 10.0.0.2",
        );
        assert!(judge(&e, &p)[0].contains("carries the ssh connection"));
        // In a namespace of its own the data interface cannot carry the control connection.
        assert!(judge(&ep("gen[0]", Some("ns")), &p).is_empty());
        let v = judge(
            &e,
            "uid 1000\nmissing gen\nlink Device \"gen0\" does not exist.\nctl x\n",
        );
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(
            v[0].contains("not root")
                && v[1].contains("missing")
                && v[2].contains("no interface gen0")
        );
    }

    #[test]
    fn remote_command_lines_quote_every_argument() {
        assert_eq!(shell_quote("--rate"), "--rate");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
