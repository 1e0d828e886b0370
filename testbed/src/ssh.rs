//! An SSH lab: the switched lab whose hosts (generator, DUT, monitor) are reached
//! only over SSH, as real machines would be (`lab up --topology ssh`).
//!
//! The lab has two generator hosts: the switched lab's `{name}-gen` and a second
//! one, `{name}-gen2` (its port `gen0`, 198.18.0.3, 02:00:00:00:00:06, on the
//! switch's port `sw-gen2`); the switch sends what the DUT addresses to the
//! second host's MAC there, everything else from the DUT to `sw-gen`, and
//! mirrors all of it to the monitor.
//!
//! Built on the tenants lab (`lab up --topology ssh-tenants`), the hosts are
//! the tenants lab's own: the generator `{name}-gen` (its two ports `gen0`,
//! switched and mirrored, and `gen1`, cabled to the host's second port
//! `dut1`: the second "generator" is that port, no `{name}-gen2`), the DUT host
//! `{name}-dut`, the monitor, and each tenant `{name}-tN`, which gets its own
//! `mgmt0` and sshd like a VM reached over the network.
//!
//! Each host namespace gets a management interface `mgmt0`, one end of a veth
//! pair whose other end (`xm<hash><role>`) is in the root namespace, each pair
//! with its own /30 from `10.254.0.0/16` (root side `.1`, host side `.2`): the
//! control network, apart from the data path, as on a real testbed (and what
//! pre-flight compares the data interface with). OpenSSH's `sshd` runs inside
//! each host namespace, listening on `mgmt0` only, with a host key made for
//! this lab; a client key made for this lab is the only authorised one. The
//! lab writes an `ssh_config` (host aliases `NAME-gen`, `NAME-dut`,
//! `NAME-mon`, `BatchMode yes`, `StrictHostKeyChecking yes` against the
//! `known_hosts` it wrote from the host keys) into its directory
//! `/run/xdp-measure/labs/NAME.ssh/`.
//!
//! Removal: every process inside the lab's namespaces (the sshd listeners and
//! their sessions) is SIGKILLed before the namespaces are deleted (a process
//! would keep its namespace, and so `mgmt0`, alive), then the directory is
//! removed; [`crate::Testbed`]'s tear-down, [`crate::down`] and the reaping of
//! stale labs all do it, so no sshd outlives `lab down`, a failing test's lab,
//! or (once reaped) a killed `lab`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cmd::{self, ip};
use crate::error::{Error, Result};
use crate::{Testbed, owner};

/// The management interface in each host namespace.
pub const MGMT_IFACE: &str = "mgmt0";
/// The user the lab's ssh_config logs in as.
pub const USER: &str = "root";
/// The management network: a /30 per host.
const MGMT_NET: [u8; 2] = [10, 254];

/// Suffix of the second generator host's namespace: `{name}-gen2`.
pub const GEN2_NS_SUFFIX: &str = "-gen2";
/// The second generator host's data port (in `{name}-gen2`); the same name as
/// the first one's, as on two machines.
pub const GEN2_IFACE: &str = crate::GEN_IFACE;
/// The switch port facing the second generator host (in `{name}-sw`).
pub const SW_GEN2_IFACE: &str = "sw-gen2";
/// The second generator host's MAC.
pub const GEN2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x06];

/// Namespace of the second generator host of lab `name` (SSH labs only).
pub fn gen2_netns(name: &str) -> String {
    format!("{name}{GEN2_NS_SUFFIX}")
}

/// The second generator host's IPv4 address: 198.18.0.3.
pub fn gen2_ip() -> Ipv4Addr {
    let o = crate::GEN_IP.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 3)
}

/// Directory of lab `name`'s keys, sshd configurations, ssh_config and
/// known_hosts (and the testbed file `lab` writes).
pub fn dir(name: &str) -> PathBuf {
    Path::new(owner::RECORD_DIR).join(format!("{name}.ssh"))
}

/// Whether lab `name` is an SSH lab (its directory exists).
pub fn is_ssh(name: &str) -> bool {
    dir(name).is_dir()
}

/// One host of an SSH lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    /// The host alias in the lab's ssh_config (its namespace's name).
    pub alias: String,
    /// Its namespace.
    pub netns: String,
    /// `mgmt0`'s address (where sshd listens).
    pub mgmt_ip: Ipv4Addr,
    /// The root namespace's end of the management pair.
    pub root_iface: String,
    /// The root end's address.
    pub root_ip: Ipv4Addr,
}

impl SshHost {
    /// The SSH destination (`root@ALIAS`).
    pub fn destination(&self) -> String {
        format!("{USER}@{}", self.alias)
    }
}

/// The SSH side of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLab {
    /// The lab's directory ([`dir`]).
    pub dir: PathBuf,
    /// The `ssh_config` to pass with `ssh -F`.
    pub ssh_config: PathBuf,
    /// The hosts: generator, second generator, DUT, monitor.
    pub hosts: Vec<SshHost>,
    /// The data ports of the generator hosts, in order (`{name}-gen`'s `gen0`,
    /// `{name}-gen2`'s `gen0`; on the tenants lab `{name}-gen`'s `gen0` and
    /// `gen1`).
    pub gens: Vec<crate::Host>,
}

impl SshLab {
    /// The host whose namespace is `netns`.
    pub fn host(&self, netns: &str) -> Option<&SshHost> {
        self.hosts.iter().find(|h| h.netns == netns)
    }
}

/// FNV-1a, for short root-side interface names that differ between labs.
fn short_hash(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The root namespace's end of host `ns`'s management pair in lab `name`:
/// `xm<hash of name><role letter>`, the letter being the role's first (`g`,
/// `d`, `m`) or, for a numbered role (`gen2`), its number; a tenant's (`t1`)
/// is the whole role.
fn root_iface_name(name: &str, ns: &str) -> String {
    let role = ns.rsplit('-').next().unwrap_or("h");
    let tenant =
        role.len() > 1 && role.starts_with('t') && role[1..].chars().all(|c| c.is_ascii_digit());
    let letter = match role.chars().last() {
        _ if tenant => role.to_owned(),
        Some(c) if c.is_ascii_digit() => c.to_string(),
        _ => role.chars().next().unwrap_or('h').to_string(),
    };
    format!("xm{:08x}{letter}", short_hash(name))
}

/// Adds the second generator host to the switched lab `bed`: namespace
/// `{name}-gen2` with its port `gen0` (198.18.0.3, [`GEN2_MAC`]) on the
/// switch's new port `sw-gen2`. The switch forwards its frames to the DUT and,
/// by destination MAC, the DUT's frames to it (everything else still to
/// `sw-gen`), mirroring both to the monitor like the first host's.
fn add_second_generator(bed: &Testbed) -> Result<crate::Host> {
    use crate::testbed::{
        End, exec, neigh_permanent, netns_exec, new_netns, switch_filter, tc, veth_pair,
    };
    let name = bed.name();
    let sw = bed
        .switch_netns()
        .ok_or_else(|| ssh_err("add a second generator host", "the lab has no switch"))?
        .to_owned();
    let ns = gen2_netns(name);
    let q = bed.queues();
    // Torn down with the lab's other namespaces (`existing_namespaces`).
    new_netns(
        &ns,
        Path::new("/proc/sys/net/ipv6").exists(),
        &mut Vec::new(),
    )?;
    veth_pair(
        &End {
            netns: &ns,
            iface: GEN2_IFACE,
            mac: Some(GEN2_MAC),
            queues: q,
        },
        &End {
            netns: &sw,
            iface: SW_GEN2_IFACE,
            mac: None,
            queues: q,
        },
    )?;
    let ip2 = gen2_ip();
    ip(&[
        "-n",
        &ns,
        "addr",
        "add",
        &format!("{ip2}/{}", crate::PREFIX_LEN),
        "dev",
        GEN2_IFACE,
    ])?;
    neigh_permanent(&ns, GEN2_IFACE, crate::DUT_IP.into(), &crate::DUT_MAC)?;
    let dut = bed.dut();
    neigh_permanent(&dut.netns, &dut.iface, ip2.into(), &GEN2_MAC)?;
    netns_exec(&ns, "ethtool", &["-K", GEN2_IFACE, "tx", "off"])?;
    // Forwarding: sw-gen2 -> sw-dut; sw-dut -> sw-gen2 for its MAC (pref 1),
    // everything else -> sw-gen as before (now pref 2).
    exec(tc(&sw, &["qdisc", "add", "dev", SW_GEN2_IFACE, "clsact"]))?;
    switch_filter(
        &sw,
        SW_GEN2_IFACE,
        1,
        &["match", "u32", "0", "0"],
        crate::SW_DUT_IFACE,
    )?;
    let mac = crate::format_mac(&GEN2_MAC);
    switch_filter(
        &sw,
        crate::SW_DUT_IFACE,
        2,
        &["match", "u32", "0", "0"],
        crate::SW_GEN_IFACE,
    )?;
    exec(tc(
        &sw,
        &[
            "filter",
            "del",
            "dev",
            crate::SW_DUT_IFACE,
            "ingress",
            "pref",
            "1",
        ],
    ))?;
    switch_filter(
        &sw,
        crate::SW_DUT_IFACE,
        1,
        &["match", "ether", "dst", &mac],
        SW_GEN2_IFACE,
    )?;
    let ports = [(ns.as_str(), GEN2_IFACE), (sw.as_str(), SW_GEN2_IFACE)];
    crate::xdp::attach_pass_many(&ports)?;
    for (n, i) in &ports {
        ip(&["-n", n, "link", "set", "dev", i, "up"])?;
    }
    crate::testbed::wait_operstate_up(&ports)?;
    Ok(crate::Host {
        netns: ns,
        iface: GEN2_IFACE.to_owned(),
        ip: Some(ip2),
        mac: Some(GEN2_MAC),
        ip6: None,
    })
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn ssh_err(what: impl Into<String>, detail: impl Into<String>) -> Error {
    Error::Ssh {
        what: what.into(),
        detail: detail.into(),
    }
}

/// The IPv4 addresses on the root namespace's interfaces.
fn root_addresses() -> Result<Vec<Ipv4Addr>> {
    let out = ip(&["-4", "-j", "addr", "show"])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
        what: "`ip -4 -j addr show`".into(),
        detail: e.to_string(),
    })?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().into_iter().flatten())
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect())
}

/// A free block of `hosts` /30s in the management network, starting the search
/// at a place that depends on the lab's name.
fn mgmt_block(name: &str, hosts: usize) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>> {
    let used = root_addresses()?;
    let per_block = 32u32; // addresses: up to eight /30s
    let blocks = 65536 / per_block;
    let start = short_hash(name) % blocks;
    for i in 0..blocks {
        let b = (start + i) % blocks;
        let pairs: Vec<(Ipv4Addr, Ipv4Addr)> = (0..hosts as u32)
            .map(|j| {
                let off = b * per_block + 4 * j;
                let at = |k: u32| {
                    let o = off + k;
                    Ipv4Addr::new(MGMT_NET[0], MGMT_NET[1], (o >> 8) as u8, (o & 0xff) as u8)
                };
                (at(1), at(2))
            })
            .collect();
        if pairs
            .iter()
            .all(|(r, h)| !used.contains(r) && !used.contains(h))
        {
            return Ok(pairs);
        }
    }
    Err(ssh_err(
        "allocate management addresses",
        "10.254.0.0/16 is full",
    ))
}

fn program(name: &str) -> Result<PathBuf> {
    crate::binaries::on_path(name)
        .or_else(|| {
            let p = Path::new("/usr/sbin").join(name);
            p.exists().then_some(p)
        })
        .ok_or_else(|| {
            ssh_err(
                format!("find `{name}`"),
                "not installed: install openssh-server and openssh-client (.ci/setup does)",
            )
        })
}

fn keygen(path: &Path, comment: &str) -> Result<String> {
    cmd::run(
        Command::new(program("ssh-keygen")?)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    )?;
    let pub_path = path.with_extension("pub");
    let text =
        std::fs::read_to_string(&pub_path).map_err(io(format!("read {}", pub_path.display())))?;
    // "ssh-ed25519 AAAA... comment": type and key.
    let mut f = text.split_whitespace();
    match (f.next(), f.next()) {
        (Some(t), Some(k)) => Ok(format!("{t} {k}")),
        _ => Err(Error::Parse {
            what: pub_path.display().to_string(),
            detail: "not an OpenSSH public key".into(),
        }),
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(io(format!("write {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
}

/// Gives the lab `bed` (switched, or tenants) its management network and an
/// sshd in each host namespace (tenants included), and waits until each
/// answers over SSH. On failure the caller's tear-down removes it all (see the
/// module's documentation).
pub fn up(bed: &Testbed) -> Result<SshLab> {
    use std::os::unix::fs::PermissionsExt;
    let sshd = program("sshd")?;
    let name = bed.name();
    let d = dir(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(io(format!("remove {}", d.display())))?;
    }
    std::fs::create_dir_all(&d).map_err(io(format!("create {}", d.display())))?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", d.display())))?;
    // sshd's privilege separation directory.
    std::fs::create_dir_all("/run/sshd").map_err(io("create /run/sshd".into()))?;

    let client_key = d.join("id_ed25519");
    let client_pub = keygen(&client_key, &format!("lab {name}"))?;
    write(
        &d.join("authorized_keys"),
        &format!("{client_pub}\n"),
        0o600,
    )?;

    // The second generator: a host of its own on the switch, or on the tenants
    // lab the generator's port cabled to the host's second port.
    let (gen2, mut namespaces) = match bed.second_port() {
        Some((gen1, _)) => (gen1.clone(), vec![bed.generator().netns.clone()]),
        None => {
            let gen2 = add_second_generator(bed)?;
            let ns = vec![bed.generator().netns.clone(), gen2.netns.clone()];
            (gen2, ns)
        }
    };
    namespaces.push(bed.dut().netns.clone());
    namespaces.extend(bed.mon().map(|m| m.netns.clone()));
    namespaces.extend(bed.tenants().iter().map(|t| t.netns.clone()));
    let block = mgmt_block(name, namespaces.len())?;
    let mut hosts = Vec::new();
    let mut known_hosts = String::new();
    let mut config = format!(
        "# ssh_config of SSH lab {name} (written by lab up --topology ssh; removed by lab down)\n"
    );
    for (ns, (root_ip, mgmt_ip)) in namespaces.iter().zip(block) {
        let role = ns.rsplit('-').next().unwrap_or("h");
        let root_iface = root_iface_name(name, ns);
        ip(&[
            "link",
            "add",
            &root_iface,
            "type",
            "veth",
            "peer",
            "name",
            MGMT_IFACE,
            "netns",
            ns,
        ])?;
        ip(&["addr", "add", &format!("{root_ip}/30"), "dev", &root_iface])?;
        ip(&["link", "set", &root_iface, "up"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{mgmt_ip}/30"),
            "dev",
            MGMT_IFACE,
        ])?;
        ip(&["-n", ns, "link", "set", MGMT_IFACE, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;

        let hd = d.join(role);
        std::fs::create_dir_all(&hd).map_err(io(format!("create {}", hd.display())))?;
        let host_key = hd.join("ssh_host_ed25519_key");
        let host_pub = keygen(&host_key, &format!("lab {name} {ns}"))?;
        let _ = writeln_str(&mut known_hosts, &format!("{ns} {host_pub}"));
        let sshd_config = hd.join("sshd_config");
        write(
            &sshd_config,
            &format!(
                "# sshd of {ns} (lab {name})\n\
                 ListenAddress {mgmt_ip}:22\n\
                 HostKey {}\n\
                 PidFile {}\n\
                 AuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PrintMotd no\n\
                 MaxStartups 100\n\
                 MaxSessions 100\n\
                 LogLevel ERROR\n",
                host_key.display(),
                hd.join("sshd.pid").display(),
                d.join("authorized_keys").display(),
            ),
            0o600,
        )?;
        // Started from a thread inside the namespace (`xdplayer::netns`), not by
        // `ip netns exec`: sshd and the tools it runs then share the machine's
        // mount namespace (its /sys/fs/bpf, where dut pins). sshd daemonises: it
        // lives in the namespace until the lab goes.
        let mut c = Command::new(&sshd);
        c.arg("-f")
            .arg(&sshd_config)
            .arg("-E")
            .arg(hd.join("sshd.log"));
        crate::run_in_netns(ns, || cmd::run(&mut c))??;
        let _ = writeln_str(
            &mut config,
            &format!(
                "\nHost {ns}\n  HostName {mgmt_ip}\n  Port 22\n  User {USER}\n  HostKeyAlias {ns}\n"
            ),
        );
        hosts.push(SshHost {
            alias: ns.clone(),
            netns: ns.clone(),
            mgmt_ip,
            root_iface,
            root_ip,
        });
    }
    let known = d.join("known_hosts");
    write(&known, &known_hosts, 0o600)?;
    let _ = writeln_str(
        &mut config,
        &format!(
            "\nHost *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  \
             ConnectTimeout 5\n  ServerAliveInterval 1\n  ServerAliveCountMax 3\n",
            client_key.display(),
            known.display()
        ),
    );
    let ssh_config = d.join("ssh_config");
    write(&ssh_config, &config, 0o600)?;
    let lab = SshLab {
        dir: d,
        ssh_config,
        hosts,
        gens: vec![bed.generator().clone(), gen2],
    };
    for h in &lab.hosts {
        wait_ready(&lab, h)?;
    }
    Ok(lab)
}

fn writeln_str(s: &mut String, line: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(s, "{line}")
}

/// Waits (up to 10 s) until `ssh -F CONFIG root@HOST true` works.
fn wait_ready(lab: &SshLab, h: &SshHost) -> Result<()> {
    let ssh = program("ssh")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Command::new(&ssh);
        c.arg("-F")
            .arg(&lab.ssh_config)
            .args([&h.destination(), "true"]);
        match cmd::run(&mut c) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(ssh_err(
                    format!("reach sshd in {} over SSH", h.netns),
                    e.to_string(),
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Lab `name`'s SSH side read back from its directory (`None`: not an SSH lab).
pub fn attach(name: &str) -> Option<SshLab> {
    let d = dir(name);
    let ssh_config = d.join("ssh_config");
    let text = std::fs::read_to_string(&ssh_config).ok()?;
    let mut hosts = Vec::new();
    let mut alias = None;
    for line in text.lines().map(str::trim) {
        if let Some(a) = line.strip_prefix("Host ").filter(|a| *a != "*") {
            alias = Some(a.to_owned());
        } else if let (Some(a), Some(ipv4)) = (&alias, line.strip_prefix("HostName ")) {
            let mgmt_ip: Ipv4Addr = ipv4.parse().ok()?;
            let o = mgmt_ip.octets();
            hosts.push(SshHost {
                alias: a.clone(),
                netns: a.clone(),
                mgmt_ip,
                root_iface: root_iface_name(name, a),
                root_ip: Ipv4Addr::new(o[0], o[1], o[2], o[3] - 1),
            });
        }
    }
    // The generators' data ports as the lab builds them.
    let gens = hosts
        .iter()
        .filter_map(|h| {
            if h.netns == crate::gen_netns(name) {
                Some(crate::Host {
                    netns: h.netns.clone(),
                    iface: crate::GEN_IFACE.to_owned(),
                    ip: Some(crate::GEN_IP),
                    mac: Some(crate::GEN_MAC),
                    ip6: None,
                })
            } else if h.netns == crate::tenant_netns(name, 1) {
                Some(crate::Host {
                    netns: crate::gen_netns(name),
                    iface: crate::GEN1_IFACE.to_owned(),
                    ip: None,
                    mac: Some(crate::GEN1_MAC),
                    ip6: None,
                })
            } else if h.netns == gen2_netns(name) {
                Some(crate::Host {
                    netns: h.netns.clone(),
                    iface: GEN2_IFACE.to_owned(),
                    ip: Some(gen2_ip()),
                    mac: Some(GEN2_MAC),
                    ip6: None,
                })
            } else {
                None
            }
        })
        .collect();
    Some(SshLab {
        dir: d,
        ssh_config,
        hosts,
        gens,
    })
}

/// Removes lab `name`'s SSH side, if it has one: SIGKILLs every process inside
/// `namespaces` (sshd and its sessions), then removes the directory. Call it
/// before deleting the namespaces.
pub fn remove(name: &str, namespaces: &[String]) -> Result<()> {
    if !dir(name).exists() {
        return Ok(());
    }
    crate::procs::kill_inside(namespaces);
    remove_dir(name)
}

/// Removes lab `name`'s directory (its processes already killed).
pub fn remove_dir(name: &str) -> Result<()> {
    let d = dir(name);
    match std::fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            what: format!("remove {}", d.display()),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_root_ends_fit_an_interface_name_and_differ_between_labs_and_hosts() {
        let a = root_iface_name("lab-a", "lab-a-gen");
        let b = root_iface_name("lab-b", "lab-b-gen");
        assert!(a.len() <= 15 && a != b, "{a} {b}");
        let all: Vec<String> = ["gen", "gen2", "dut", "mon", "t1", "t2", "t12"]
            .iter()
            .map(|r| root_iface_name("lab-a", &format!("lab-a-{r}")))
            .collect();
        for (i, x) in all.iter().enumerate() {
            assert!(x.len() <= 15, "{x}");
            assert!(!all[i + 1..].contains(x), "{x} twice in {all:?}");
        }
    }
}
