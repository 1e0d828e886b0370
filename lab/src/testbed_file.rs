//! Testbed files: where the experiment's hosts are when they are real machines
//! reached over SSH (`lab demo --testbed FILE`), and what `lab up --topology ssh`
//! writes for its own lab.
//!
//! ```toml
//! ssh_config = "ssh_config"        # optional: `ssh -F` for every host (relative: to this file)
//!
//! [[gen]]                          # one or more generator hosts
//! ssh = "root@192.0.2.10"          # the SSH destination: user@host or host (an ssh_config alias)
//! port = 22                        # optional
//! iface = "ens1f0"                 # the data interface
//! netns = "gen"                    # optional: a network namespace on that host
//! tools = "/opt/xdpm/bin"          # directory of gen, dut, tstamp on that host
//! ip = "198.18.0.1"                # optional: the interface's address, where not discoverable
//! mac = "02:00:00:00:00:01"        # optional: its MAC
//!
//! [dut]                            # the device under test (same keys, and:)
//! second_iface = "ens1f1"          # optional: the port the second [[gen]]'s traffic enters by
//!                                  # (tenants: the neighbour's flood; default: iface)
//! [mon]                            # the monitor on the mirror port (same keys; optional)
//!
//! [[tenant]]                       # tenant 1, 2, ... in file order (optional): a VM on the
//! ssh = "root@vm1"                 # DUT host, reached over ssh; the same keys as a role,
//! iface = "eth0"                   # iface its virtual NIC inside it, and ip and mac needed
//! tools = "/opt/xdpm/bin"          # (gen addresses a tenant by MAC through the host's bridge)
//! ip = "198.18.0.11"
//! mac = "02:00:00:00:01:01"
//! ```
//!
//! An experiment with `topology = "tenants"` needs `[[tenant]]` entries: its
//! measured traffic comes from the first `[[gen]]` and enters the DUT host by
//! `iface`, a busy neighbour's flood comes from the second `[[gen]]` and enters
//! by `second_iface`.
//!
//! Read with `profiles::toml_lines` like experiment files: every problem is one line
//! `FILE:LINE: KEY: what is wrong`; addresses and MACs through `profiles::units`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use profiles::toml_lines::{Invalid, Spanned, TomlFile};
use serde::Deserialize;

/// A testbed file, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestbedFile {
    /// Where it was read from (for messages).
    pub origin: String,
    /// `ssh -F` for every host (made absolute against the file's directory).
    pub ssh_config: Option<PathBuf>,
    /// The generator hosts (at least one).
    pub gens: Vec<Endpoint>,
    /// The DUT.
    pub dut: Endpoint,
    /// The monitor, if the testbed has a mirror port.
    pub mon: Option<Endpoint>,
    /// The tenants (VMs) on the DUT host, tenant 1 first; `ip` and `mac` are
    /// always given. Empty: the testbed has none.
    pub tenants: Vec<Endpoint>,
    /// The DUT host's second port, where the second generator host's traffic
    /// enters (`None`: by the DUT's `iface` too).
    pub dut_second_iface: Option<String>,
}

/// One role's host and interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The role and index, for messages: `gen[0]`, `dut`, `mon`, `tenant[1]`
    /// (tenants count from 1, as an experiment's `dst_tenant` does).
    pub role: String,
    /// The SSH destination as written (`user@host` or `host`).
    pub ssh: String,
    /// SSH port, if not the default (or ssh_config's).
    pub port: Option<u16>,
    /// The data interface.
    pub iface: String,
    /// A network namespace on that host the tools enter (`--netns`).
    pub netns: Option<String>,
    /// Directory of the tools on that host.
    pub tools: PathBuf,
    /// The data interface's IPv4 address, if given.
    pub ip: Option<Ipv4Addr>,
    /// Its MAC, if given.
    pub mac: Option<[u8; 6]>,
}

impl Endpoint {
    /// The host part of the destination (after `user@`).
    pub fn host(&self) -> &str {
        self.ssh.rsplit('@').next().unwrap_or(&self.ssh)
    }
    /// `ssh` and the port, for messages: `root@h` or `root@h:2222`.
    pub fn display(&self) -> String {
        match self.port {
            Some(p) => format!("{} ({}:{p})", self.role, self.ssh),
            None => format!("{} ({})", self.role, self.ssh),
        }
    }
    /// The tool `name` on that host.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.tools.join(name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    ssh_config: Option<Spanned<String>>,
    #[serde(rename = "gen")]
    gens: Spanned<Vec<RawEndpoint>>,
    dut: Spanned<RawEndpoint>,
    mon: Option<Spanned<RawEndpoint>>,
    #[serde(rename = "tenant")]
    tenants: Option<Vec<Spanned<RawEndpoint>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    ssh: Spanned<String>,
    port: Option<Spanned<i64>>,
    iface: Spanned<String>,
    netns: Option<Spanned<String>>,
    tools: Spanned<String>,
    ip: Option<Spanned<String>>,
    mac: Option<Spanned<String>>,
    second_iface: Option<Spanned<String>>,
}

impl TestbedFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<TestbedFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the testbed file {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(TestbedFile::from_toml(
            &text,
            &path.display().to_string(),
            dir,
        )?)
    }

    /// Parses and checks a testbed file; `origin` names it in errors, `dir` is where a
    /// relative `ssh_config` is.
    pub fn from_toml(text: &str, origin: &str, dir: &Path) -> Result<TestbedFile, Invalid> {
        let cx = TomlFile::new(text, origin);
        let raw: RawFile = cx.parse()?;
        if raw.gens.get_ref().is_empty() {
            return cx.err(
                raw.gens.span(),
                "gen",
                "no generator host: give at least one [[gen]]",
            );
        }
        let ssh_config = match &raw.ssh_config {
            Some(s) if s.get_ref().is_empty() => {
                return cx.err(s.span(), "ssh_config", "empty path");
            }
            Some(s) => Some(dir.join(s.get_ref())),
            None => None,
        };
        let mut gens = Vec::new();
        for (i, g) in raw.gens.get_ref().iter().enumerate() {
            gens.push(endpoint(&cx, g, &format!("gen[{i}]"), "gen")?);
        }
        let dut = endpoint(&cx, raw.dut.get_ref(), "dut", "dut")?;
        let dut_second_iface = match &raw.dut.get_ref().second_iface {
            Some(v) => Some(cx.value(v, "dut.second_iface", iface_name)?),
            None => None,
        };
        let mon = match &raw.mon {
            Some(m) => Some(endpoint(&cx, m.get_ref(), "mon", "mon")?),
            None => None,
        };
        let raw_tenants = raw.tenants.as_deref().unwrap_or_default();
        let mut tenants = Vec::new();
        for (i, t) in raw_tenants.iter().enumerate() {
            let e = endpoint(&cx, t.get_ref(), &format!("tenant[{}]", i + 1), "tenant")?;
            // gen addresses a tenant by address and MAC (through the host's bridge).
            for (key, missing) in [("ip", e.ip.is_none()), ("mac", e.mac.is_none())] {
                if missing {
                    return cx.err(
                        t.span(),
                        &format!("tenant.{key}"),
                        format!(
                            "tenant {} has no `{key}`: gen addresses a tenant by its address and MAC",
                            i + 1
                        ),
                    );
                }
            }
            tenants.push(e);
        }
        // Two roles on one host's interface would send and capture on the same port.
        let mut seen: Vec<(&Endpoint, &RawEndpoint)> = Vec::new();
        let raws = raw
            .gens
            .get_ref()
            .iter()
            .chain(std::iter::once(raw.dut.get_ref()))
            .chain(raw.mon.as_ref().map(Spanned::get_ref))
            .chain(raw_tenants.iter().map(Spanned::get_ref));
        for (r, table) in raw
            .gens
            .get_ref()
            .iter()
            .map(|g| (g, "gen"))
            .chain(raw.mon.as_ref().map(|m| (m.get_ref(), "mon")))
            .chain(raw_tenants.iter().map(|t| (t.get_ref(), "tenant")))
        {
            if let Some(v) = &r.second_iface {
                return cx.err(
                    v.span(),
                    &format!("{table}.second_iface"),
                    "only [dut] has a second port",
                );
            }
        }
        let all = gens
            .iter()
            .chain(std::iter::once(&dut))
            .chain(mon.as_ref())
            .chain(&tenants);
        for (e, r) in all.zip(raws) {
            if let Some((other, _)) = seen.iter().find(|(o, _)| {
                o.ssh == e.ssh && o.port == e.port && o.netns == e.netns && o.iface == e.iface
            }) {
                return cx.err(
                    r.iface.span(),
                    &format!("{}.iface", key_of(&e.role)),
                    format!(
                        "{} on {} is also {}'s interface: each role needs its own",
                        e.iface, e.ssh, other.role
                    ),
                );
            }
            seen.push((e, r));
        }
        Ok(TestbedFile {
            origin: origin.to_owned(),
            ssh_config,
            gens,
            dut,
            mon,
            tenants,
            dut_second_iface,
        })
    }

    /// Every endpoint: the generators, the DUT, the monitor, the tenants.
    pub fn endpoints(&self) -> Vec<&Endpoint> {
        let mut v: Vec<&Endpoint> = self.gens.iter().collect();
        v.push(&self.dut);
        v.extend(self.mon.as_ref());
        v.extend(&self.tenants);
        v
    }

    /// The file's text (what `lab up --topology ssh` writes; reads back equal).
    pub fn to_toml(&self) -> String {
        let mut s = String::from("# testbed file (lab/README.md, \"Testbed files\")\n");
        if let Some(c) = &self.ssh_config {
            let _ = writeln!(s, "ssh_config = {}", quote(&c.display().to_string()));
        }
        let one = |s: &mut String, header: &str, e: &Endpoint| {
            let _ = writeln!(s, "\n{header}");
            let _ = writeln!(s, "ssh = {}", quote(&e.ssh));
            if let Some(p) = e.port {
                let _ = writeln!(s, "port = {p}");
            }
            let _ = writeln!(s, "iface = {}", quote(&e.iface));
            if let Some(n) = &e.netns {
                let _ = writeln!(s, "netns = {}", quote(n));
            }
            let _ = writeln!(s, "tools = {}", quote(&e.tools.display().to_string()));
            if let Some(ip) = e.ip {
                let _ = writeln!(s, "ip = \"{ip}\"");
            }
            if let Some(m) = e.mac {
                let _ = writeln!(s, "mac = \"{}\"", profiles::units::format_mac(m));
            }
        };
        for g in &self.gens {
            one(&mut s, "[[gen]]", g);
        }
        one(&mut s, "[dut]", &self.dut);
        if let Some(i) = &self.dut_second_iface {
            let _ = writeln!(s, "second_iface = {}", quote(i));
        }
        if let Some(m) = &self.mon {
            one(&mut s, "[mon]", m);
        }
        for t in &self.tenants {
            one(&mut s, "[[tenant]]", t);
        }
        s
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// `gen[1]` -> `gen` (the table a key stands in).
fn key_of(role: &str) -> &str {
    role.split('[').next().unwrap_or(role)
}

/// A word the shell and ssh take as one argument and never as an option.
fn plain_word(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if s.starts_with('-') {
        return Err(format!("'{s}' starts with '-' (ssh would read an option)"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "@._-:%+".contains(*c)))
    {
        return Err(format!(
            "'{s}' contains {c:?}: use letters, digits and @ . _ - : % +"
        ));
    }
    Ok(())
}

/// An interface name: a plain word of at most 15 characters.
fn iface_name(s: &str) -> Result<String, String> {
    plain_word(s)?;
    if s.len() > 15 {
        return Err(format!(
            "'{s}' is longer than an interface name can be (15)"
        ));
    }
    Ok(s.to_owned())
}

fn endpoint(
    cx: &TomlFile<'_>,
    r: &RawEndpoint,
    role: &str,
    table: &str,
) -> Result<Endpoint, Invalid> {
    let k = |key: &str| format!("{table}.{key}");
    cx.value(&r.ssh, &k("ssh"), |s| {
        plain_word(s)?;
        match s.split_once('@') {
            Some((u, h)) if u.is_empty() || h.is_empty() || h.contains('@') => {
                Err(format!("'{s}' is not user@host or host"))
            }
            _ => Ok(()),
        }
    })?;
    let port = match &r.port {
        Some(p) => Some(cx.int::<u16>(p, &k("port"), 1, 65535)?),
        None => None,
    };
    cx.value(&r.iface, &k("iface"), iface_name)?;
    if let Some(n) = &r.netns {
        cx.value(n, &k("netns"), plain_word)?;
    }
    let tools = cx.value(&r.tools, &k("tools"), |s| {
        if !s.starts_with('/') {
            return Err(format!(
                "'{s}' is not an absolute path (the directory of gen, dut and tstamp on that host)"
            ));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || "'\"$`\\;&|<>*?".contains(c))
        {
            return Err(format!(
                "'{s}' contains a character the remote shell would interpret"
            ));
        }
        Ok(PathBuf::from(s))
    })?;
    let ip = match &r.ip {
        Some(v) => Some(cx.value(v, &k("ip"), profiles::units::parse_ipv4)?),
        None => None,
    };
    let mac = match &r.mac {
        Some(v) => Some(cx.value(v, &k("mac"), profiles::units::parse_mac)?),
        None => None,
    };
    Ok(Endpoint {
        role: role.to_owned(),
        ssh: r.ssh.get_ref().clone(),
        port,
        iface: r.iface.get_ref().clone(),
        netns: r.netns.as_ref().map(|n| n.get_ref().clone()),
        tools,
        ip,
        mac,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"ssh_config = "cfg"

[[gen]]
ssh = "root@10.0.0.1"
port = 2222
iface = "gen0"
netns = "x-gen"
tools = "/opt/xdpm/bin"
ip = "198.18.0.1"
mac = "02:00:00:00:00:01"

[[gen]]
ssh = "gen2"
iface = "ens1"
tools = "/opt/xdpm/bin"

[dut]
ssh = "root@dut"
iface = "dut0"
tools = "/usr/local/bin"

[mon]
ssh = "root@mon"
iface = "mon0"
tools = "/usr/local/bin"

[[tenant]]
ssh = "root@vm1"
iface = "eth0"
tools = "/opt/xdpm/bin"
ip = "198.18.0.11"
mac = "02:00:00:00:01:01"

[[tenant]]
ssh = "root@vm2"
iface = "eth0"
tools = "/opt/xdpm/bin"
ip = "198.18.0.12"
mac = "02:00:00:00:01:02"
"#;

    fn parse(text: &str) -> Result<TestbedFile, String> {
        TestbedFile::from_toml(text, "t.toml", Path::new("/etc/lab")).map_err(|e| e.to_string())
    }

    fn err(text: &str) -> String {
        parse(text)
            .map(|f| format!("accepted: {f:?}"))
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn a_full_file_reads_and_writes_back_equal() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.gens.len(), 2);
        assert_eq!(f.ssh_config.as_deref(), Some(Path::new("/etc/lab/cfg")));
        assert_eq!(f.gens[0].port, Some(2222));
        assert_eq!(f.gens[0].host(), "10.0.0.1");
        assert_eq!(f.gens[0].ip, Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(f.gens[0].mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.gens[1].host(), "gen2");
        assert_eq!(f.gens[1].netns, None);
        assert_eq!(f.dut.tool("dut"), Path::new("/usr/local/bin/dut"));
        assert_eq!(f.endpoints().len(), 6);
        assert_eq!(f.tenants[1].role, "tenant[2]");
        assert_eq!(f.tenants[1].ip, Some(Ipv4Addr::new(198, 18, 0, 12)));
        assert_eq!(f.tenants[0].mac, Some([2, 0, 0, 0, 1, 1]));
        assert_eq!(f.dut_second_iface, None);
        let back = parse(&f.to_toml()).unwrap();
        assert_eq!(back, f);
        let second = GOOD.replace(
            "tools = \"/usr/local/bin\"\n\n[mon]",
            "tools = \"/usr/local/bin\"\nsecond_iface = \"dut1\"\n\n[mon]",
        );
        let f = parse(&second).unwrap();
        assert_eq!(f.dut_second_iface.as_deref(), Some("dut1"));
        assert_eq!(parse(&f.to_toml()).unwrap(), f);
    }

    /// Each (text, start of its error): one line, as wanted.
    fn each_one_line(cases: &[(String, &str)]) {
        for (text, want) in cases {
            let e = err(text);
            assert!(e.starts_with(want), "want {want:?}, got {e:?}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn tenants_are_optional_and_need_an_address_and_a_mac() {
        let no_tenants = GOOD.split("[[tenant]]").next().unwrap();
        assert!(parse(no_tenants).unwrap().tenants.is_empty());
        let cases = [
            (
                GOOD.replace("ip = \"198.18.0.12\"\n", ""),
                "t.toml:34: tenant.ip: tenant 2 has no `ip`",
            ),
            (
                GOOD.replace("mac = \"02:00:00:00:01:01\"\n", ""),
                "t.toml:27: tenant.mac: tenant 1 has no `mac`",
            ),
            (
                GOOD.replace("02:00:00:00:01:02", "02:00:00:00:01"),
                "t.toml:39: tenant.mac:",
            ),
            (
                GOOD.replace("ssh = \"root@vm2\"", "ssh = \"root@vm1\""),
                "t.toml:36: tenant.iface: eth0 on root@vm1 is also tenant[1]'s interface",
            ),
            (
                GOOD.replace("iface = \"mon0\"", "iface = \"mon0\"\nsecond_iface = \"x\""),
                "t.toml:25: mon.second_iface: only [dut] has a second port",
            ),
            (
                GOOD.replace(
                    "tools = \"/usr/local/bin\"\n\n[mon]",
                    "tools = \"/usr/local/bin\"\nsecond_iface = \"-x\"\n\n[mon]",
                ),
                "t.toml:21: dut.second_iface: '-x' starts with '-'",
            ),
        ];
        each_one_line(&cases);
    }

    #[test]
    fn the_monitor_is_optional_a_generator_is_not() {
        let no_mon = GOOD.split("[mon]").next().unwrap();
        assert_eq!(parse(no_mon).unwrap().mon, None);
        let e = err("gen = []\n[dut]\nssh = \"d\"\niface = \"x\"\ntools = \"/t\"\n");
        assert!(e.starts_with("t.toml:1: gen: no generator host"), "{e}");
        let e = err("[dut]\nssh = \"d\"\niface = \"x\"\ntools = \"/t\"\n");
        assert!(e.contains("gen: missing"), "{e}");
    }

    #[test]
    fn every_problem_is_one_line_naming_file_line_and_key() {
        let cases = [
            (
                GOOD.replace("port = 2222", "port = 0"),
                "t.toml:5: gen.port: 0 is out of range",
            ),
            (
                GOOD.replace("ip = \"198.18.0.1\"", "ip = \"198.18.0\""),
                "t.toml:9: gen.ip:",
            ),
            (
                GOOD.replace("02:00:00:00:00:01", "02:00:00"),
                "t.toml:10: gen.mac:",
            ),
            (
                GOOD.replace("/opt/xdpm/bin\"\nip", "opt/bin\"\nip"),
                "t.toml:8: gen.tools: 'opt/bin' is not an absolute path",
            ),
            (
                GOOD.replace("root@dut", "-oProxyCommand=x"),
                "t.toml:18: dut.ssh: '-oProxyCommand=x' starts with '-'",
            ),
            (
                GOOD.replace("root@dut", "root@"),
                "t.toml:18: dut.ssh: 'root@' is not user@host or host",
            ),
            (
                GOOD.replace("root@mon", "root@m on"),
                "t.toml:23: mon.ssh: 'root@m on' contains ' '",
            ),
            (
                GOOD.replace("iface = \"dut0\"", "iface = \"a-very-long-interface\""),
                "t.toml:19: dut.iface: 'a-very-long-interface' is longer",
            ),
            (
                GOOD.replace(
                    "tools = \"/usr/local/bin\"\n\n[mon]",
                    "tools = \"/usr/$(x)\"\n\n[mon]",
                ),
                "t.toml:20: dut.tools: '/usr/$(x)' contains a character",
            ),
            (
                GOOD.replace("port = 2222", "prot = 2222"),
                "t.toml:5: prot: unknown key in [gen] (allowed: ssh, port, iface, netns, tools, ip, mac, second_iface)",
            ),
            (
                GOOD.replace("iface = \"mon0\"", "iface = 3"),
                "t.toml:24: mon.iface: invalid type",
            ),
            (
                GOOD.replace("ssh_config = \"cfg\"", "ssh_config = \"\""),
                "t.toml:1: ssh_config: empty path",
            ),
            (
                GOOD.replace(
                    "ssh = \"root@mon\"\niface = \"mon0\"",
                    "ssh = \"root@dut\"\niface = \"dut0\"",
                ),
                "t.toml:24: mon.iface: dut0 on root@dut is also dut's interface",
            ),
            (
                GOOD.replace("[dut]\nssh", "[dut]\nsh"),
                "t.toml:18: sh: unknown key in [dut]",
            ),
        ];
        each_one_line(&cases);
    }

    #[test]
    fn a_file_on_disk_is_read_and_a_missing_one_named() {
        let dir = std::env::temp_dir().join(format!("tbfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.toml");
        std::fs::write(&p, GOOD).unwrap();
        let f = TestbedFile::load(&p).unwrap();
        assert_eq!(f.ssh_config, Some(dir.join("cfg")));
        std::fs::remove_dir_all(&dir).unwrap();
        let e = format!("{:#}", TestbedFile::load(&p).unwrap_err());
        assert!(
            e.contains("read the testbed file") && e.contains("t.toml"),
            "{e}"
        );
    }
}
