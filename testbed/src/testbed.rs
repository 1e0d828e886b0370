//! Building, finding and tearing down a testbed.
//!
//! [`Testbed::up`] creates the namespaces, veth pairs, addresses, neighbour
//! entries, XDP_PASS programs and the switch's tc filters with `ip`, `tc`,
//! `ethtool` and `sysctl`, exactly as a user would. It rolls back on failure
//! by deleting the namespaces it created: every interface of a lab lives in
//! one of its namespaces (links are created inside them, never in the root
//! namespace), so deleting the namespaces removes everything and touches
//! nothing else. [`Testbed::attach`] rebuilds the description of an existing
//! lab from the system. The only file is the lab's owner record (see
//! [`crate::owner`]): written before the first namespace, removed after the
//! last, so that a lab whose builder was killed is found and reaped.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use crate::cmd::{self, ip};
use crate::error::{Error, Result};
use crate::host::{Host, NETNS_RUN_DIR, format_mac, parse_mac};
use crate::owner::{Owner, Scope};
use crate::status::Status;
use crate::*;

/// How the hosts are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// gen, switch, dut and mon namespaces; the switch mirrors both
    /// directions to mon.
    #[default]
    Switched,
    /// gen and dut joined by one veth pair.
    Direct,
    /// switched, with the dut namespace as a virtualisation host: tenant
    /// namespaces behind a bridge, and a second direct port gen1 <-> dut1.
    Tenants,
}

impl Topology {
    /// Whether the switch and the monitor are part of it.
    pub fn switched(self) -> bool {
        matches!(self, Topology::Switched | Topology::Tenants)
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::Switched => "switched",
            Topology::Direct => "direct",
            Topology::Tenants => "tenants",
        })
    }
}

/// What [`Testbed::up`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpOptions {
    /// Lab name; namespaces are `{name}-gen` etc.
    pub name: String,
    /// Topology.
    pub topology: Topology,
    /// TX and RX queues on the gen and dut veths (1..=64).
    pub queues: u32,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            name: DEFAULT_NAME.to_owned(),
            topology: Topology::Switched,
            queues: 1,
        }
    }
}

/// A running testbed.
///
/// One made by [`Testbed::up`] is torn down when dropped (so a failing test
/// still cleans up) unless [`Testbed::keep`] was called; one found by
/// [`Testbed::attach`] is left alone when dropped. [`Testbed::down`] always
/// tears down.
#[derive(Debug)]
pub struct Testbed {
    name: String,
    topology: Topology,
    queues: u32,
    r#gen: Host,
    dut: Host,
    mon: Option<Host>,
    switch: Option<String>,
    /// Tenants topology: the host's second port (`dut1`) and the
    /// generator's (`gen1`).
    second: Option<(Host, Host)>,
    /// Tenants topology: tenant 1, 2, ... (`ten0` in `{name}-tN`).
    tenants: Vec<Host>,
    owned: bool,
}

/// The namespaces lab `name` could have, in creation order.
fn all_namespaces(name: &str) -> Vec<String> {
    let mut v = vec![
        gen_netns(name),
        sw_netns(name),
        dut_netns(name),
        mon_netns(name),
    ];
    v.extend((1..=TENANTS).map(|i| tenant_netns(name, i)));
    // The SSH lab's second generator host (`crate::ssh`).
    v.push(crate::ssh::gen2_netns(name));
    v
}

/// The topology of lab `name` judged by its `existing` namespaces.
pub fn topology_of(name: &str, existing: &[String]) -> Topology {
    let has = |ns: String| existing.contains(&ns);
    if (1..=TENANTS).any(|i| has(tenant_netns(name, i))) {
        Topology::Tenants
    } else if has(sw_netns(name)) || has(mon_netns(name)) {
        Topology::Switched
    } else {
        Topology::Direct
    }
}

fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_RUN_DIR).join(ns).exists()
}

/// The namespaces of lab `name` that exist now.
pub fn existing_namespaces(name: &str) -> Vec<String> {
    all_namespaces(name)
        .into_iter()
        .filter(|ns| netns_exists(ns))
        .collect()
}

/// Removes every namespace of lab `name` (and with them all its
/// interfaces), also of a half-built lab, whoever owns it, and its owner
/// record. Returns the namespaces removed; [`Error::NotFound`] if there were
/// none (a leftover record is removed all the same).
pub fn down(name: &str) -> Result<Vec<String>> {
    check_name(name)?;
    check_root()?;
    let existing = existing_namespaces(name);
    if existing.is_empty() {
        crate::ssh::remove_dir(name)?;
        crate::owner::remove(name)?;
        return Err(Error::NotFound(name.to_owned()));
    }
    crate::ssh::remove(name, &existing)?;
    delete_namespaces(&existing)?;
    crate::owner::remove(name)?;
    Ok(existing)
}

/// Deletes `namespaces`, trying all of them; the first error is returned.
pub fn delete_namespaces(namespaces: &[String]) -> Result<()> {
    let mut first = None;
    for ns in namespaces.iter().rev() {
        if let Err(e) = ip(&["netns", "delete", ns]) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// A lab name unique to this process and call, at most 12 characters:
/// `prefix` (shortened as needed), the pid in hex, `-`, a counter in hex.
/// For tests, which may run in parallel with other crates' tests.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tail = format!("{:x}-{n:x}", std::process::id());
    let keep = 12usize.saturating_sub(tail.len());
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(keep)
        .collect();
    format!("{prefix}{tail}")
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

fn check_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}

/// Mounts bpffs on /sys/fs/bpf unless something is mounted there.
fn ensure_bpffs() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(|source| Error::Io {
        what: "read /proc/self/mounts".into(),
        source,
    })?;
    let mounted = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"));
    if !mounted {
        cmd::run_args("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"])?;
    }
    Ok(())
}

/// Runs `cmd` (built by [`Host::command`] or similar).
pub(crate) fn exec(mut cmd: Command) -> Result<()> {
    cmd::run(&mut cmd).map(|_| ())
}

pub(crate) fn netns_exec(ns: &str, program: &str, args: &[&str]) -> Result<()> {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]).args(args);
    exec(c)
}

/// Creates namespace `ns` (pushed onto `created` at once, for roll-back) with
/// IPv6 off (when the kernel has it) and `lo` up.
pub(crate) fn new_netns(ns: &str, ipv6: bool, created: &mut Vec<String>) -> Result<()> {
    ip(&["netns", "add", ns])?;
    created.push(ns.to_owned());
    if ipv6 {
        // Before any link exists: `default` covers links created later.
        netns_exec(
            ns,
            "sysctl",
            &[
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
    }
    ip(&["-n", ns, "link", "set", "dev", "lo", "up"]).map(|_| ())
}

/// One end of a veth pair to create.
pub(crate) struct End<'a> {
    pub(crate) netns: &'a str,
    pub(crate) iface: &'a str,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) queues: u32,
}

/// Creates a veth pair with `a` created inside `a.netns` and its peer
/// moved straight into `b.netns`, so no name ever appears in the root
/// namespace.
pub(crate) fn veth_pair(a: &End<'_>, b: &End<'_>) -> Result<()> {
    let qa = a.queues.to_string();
    let qb = b.queues.to_string();
    let mac_a = a.mac.map(|m| format_mac(&m));
    let mac_b = b.mac.map(|m| format_mac(&m));
    let mut args = vec!["-n", a.netns, "link", "add", a.iface];
    if let Some(m) = &mac_a {
        args.extend(["address", m]);
    }
    args.extend(["numtxqueues", &qa, "numrxqueues", &qa]);
    args.extend(["type", "veth", "peer", "name", b.iface, "netns", b.netns]);
    if let Some(m) = &mac_b {
        args.extend(["address", m]);
    }
    args.extend(["numtxqueues", &qb, "numrxqueues", &qb]);
    ip(&args).map(|_| ())
}

impl Testbed {
    /// Builds a lab. Fails with [`Error::Exists`] without touching anything
    /// if any of its namespaces exists; on any other failure removes what it
    /// created and returns the error.
    pub fn up(opts: &UpOptions) -> Result<Testbed> {
        check_name(&opts.name)?;
        if opts.queues == 0 || opts.queues > MAX_QUEUES {
            return Err(Error::InvalidQueues(opts.queues));
        }
        check_root()?;
        let existing = existing_namespaces(&opts.name);
        if !existing.is_empty() {
            return Err(Error::Exists {
                name: opts.name.clone(),
                existing,
            });
        }
        // A record left without namespaces: someone is building or tearing
        // down this lab right now, unless its owner is gone.
        if let Some(r) = crate::owner::read(&opts.name)?
            && !r.owner.stale()
        {
            return Err(Error::Claimed {
                name: opts.name.clone(),
                pid: r.owner.process.pid,
            });
        }
        ensure_bpffs()?;
        // The record first: a kill from here on leaves a lab that is found
        // (and, once this process is gone, reaped).
        crate::owner::write(&crate::owner::Record {
            name: opts.name.clone(),
            topology: opts.topology,
            owner: Owner::current(Scope::Process)?,
        })?;
        let mut created = Vec::new();
        match build(opts, &mut created) {
            Ok(bed) => Ok(bed),
            Err(e) => {
                match delete_namespaces(&created) {
                    Ok(()) => {
                        if let Err(cleanup) = crate::owner::remove(&opts.name) {
                            eprintln!("lab: rolling back {}: {cleanup}", opts.name);
                        }
                    }
                    Err(cleanup) => eprintln!("lab: rolling back {}: {cleanup}", opts.name),
                }
                Err(e)
            }
        }
    }

    /// Describes the existing lab `name`, read from the system. The returned
    /// value does not tear the lab down when dropped (call [`Testbed::down`]
    /// for that).
    pub fn attach(name: &str) -> Result<Testbed> {
        check_name(name)?;
        let existing = existing_namespaces(name);
        if existing.is_empty() {
            return Err(Error::NotFound(name.to_owned()));
        }
        let has = |ns: String| existing.contains(&ns);
        let topology = topology_of(name, &existing);
        let wanted: Vec<String> = match topology {
            Topology::Tenants => all_namespaces(name)[..4 + usize::from(TENANTS)].to_vec(),
            Topology::Switched => all_namespaces(name)[..4].to_vec(),
            Topology::Direct => vec![gen_netns(name), dut_netns(name)],
        };
        let missing: Vec<String> = wanted.into_iter().filter(|ns| !has(ns.clone())).collect();
        if !missing.is_empty() {
            return Err(Error::Incomplete {
                name: name.to_owned(),
                detail: format!("missing namespaces {}", missing.join(", ")),
            });
        }
        let incomplete = |e: Error| Error::Incomplete {
            name: name.to_owned(),
            detail: e.to_string(),
        };
        let (r#gen, queues) = read_host(&gen_netns(name), GEN_IFACE).map_err(incomplete)?;
        let tenants = topology == Topology::Tenants;
        // A host's address sits on its bridge, not on the bridge's port.
        let (mut dut, _) = read_host(&dut_netns(name), DUT_IFACE).map_err(incomplete)?;
        if tenants {
            let br = read_host(&dut_netns(name), BRIDGE_IFACE)
                .map_err(incomplete)?
                .0;
            (dut.ip, dut.ip6) = (br.ip, br.ip6);
        }
        let (mon, switch) = if topology.switched() {
            let (mon, _) = read_host(&mon_netns(name), MON_IFACE).map_err(incomplete)?;
            (Some(mon), Some(sw_netns(name)))
        } else {
            (None, None)
        };
        let second = if tenants {
            Some((
                read_host(&gen_netns(name), GEN1_IFACE)
                    .map_err(incomplete)?
                    .0,
                read_host(&dut_netns(name), DUT1_IFACE)
                    .map_err(incomplete)?
                    .0,
            ))
        } else {
            None
        };
        let tenant_hosts = if tenants {
            (1..=TENANTS)
                .map(|i| read_host(&tenant_netns(name, i), TENANT_IFACE).map(|h| h.0))
                .collect::<Result<Vec<_>>>()
                .map_err(incomplete)?
        } else {
            Vec::new()
        };
        Ok(Testbed {
            name: name.to_owned(),
            topology,
            queues,
            r#gen,
            dut,
            mon,
            switch,
            second,
            tenants: tenant_hosts,
            owned: false,
        })
    }

    /// Lab name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Topology.
    pub fn topology(&self) -> Topology {
        self.topology
    }
    /// Queues on gen0/dut0.
    pub fn queues(&self) -> u32 {
        self.queues
    }
    /// The generator host (`{name}-gen`, `gen0`, 198.18.0.1).
    pub fn r#gen(&self) -> &Host {
        &self.r#gen
    }
    /// Same as [`Testbed::gen`], without the raw identifier.
    pub fn generator(&self) -> &Host {
        &self.r#gen
    }
    /// The DUT host (`{name}-dut`, `dut0`, 198.18.0.2).
    pub fn dut(&self) -> &Host {
        &self.dut
    }
    /// The monitor host (`{name}-mon`, `mon0`); `None` for direct.
    pub fn mon(&self) -> Option<&Host> {
        self.mon.as_ref()
    }
    /// The switch's namespace (`{name}-sw`); `None` for direct.
    pub fn switch_netns(&self) -> Option<&str> {
        self.switch.as_deref()
    }
    /// Tenants topology: the generator's second port `gen1` and the host's
    /// `dut1` it is joined to; `None` otherwise.
    pub fn second_port(&self) -> Option<(&Host, &Host)> {
        self.second.as_ref().map(|(g, d)| (g, d))
    }
    /// Tenants topology: the tenants (`ten0` in `{name}-t1`, ...), in
    /// order; empty otherwise.
    pub fn tenants(&self) -> &[Host] {
        &self.tenants
    }
    /// Tenant `i` (1-based), if the lab has it.
    pub fn tenant(&self, i: u8) -> Option<&Host> {
        self.tenants.get(usize::from(i).checked_sub(1)?)
    }
    /// All namespaces of this lab.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.r#gen.netns.clone()];
        v.extend(self.switch.clone());
        v.push(self.dut.netns.clone());
        v.extend(self.mon.as_ref().map(|m| m.netns.clone()));
        v.extend(self.tenants.iter().map(|t| t.netns.clone()));
        v
    }
    /// Whether the lab is dual stack (its generator port has an IPv6 address).
    pub fn ipv6(&self) -> bool {
        self.r#gen.ip6.is_some()
    }

    /// Makes the lab dual stack (`lab up --ipv6`): the generator's port, the DUT's
    /// address-bearing port (its bridge with tenants) and each tenant's port get IPv6
    /// and an address from 2001:db8::/64, with static neighbour entries both ways, and
    /// the kernel kept from sending anything on its own (see the crate docs: no
    /// link-local address, no DAD, no router solicitation, no MLD report, no
    /// neighbour solicitation). Ports become IFF_NOARP, which is what keeps the
    /// kernel out of the solicited-node groups; the IPv4 neighbour entries are put
    /// back after that. The switch and the monitor keep IPv6 off.
    pub fn enable_ipv6(&mut self) -> Result<()> {
        if self.ipv6() {
            return Ok(());
        }
        let dut_iface = if self.topology == Topology::Tenants {
            BRIDGE_IFACE
        } else {
            DUT_IFACE
        };
        let both =
            |a: Ipv4Addr, b: Ipv6Addr, mac: [u8; 6]| [(IpAddr::V4(a), mac), (IpAddr::V6(b), mac)];
        // (namespace, port, its IPv6 address, permanent neighbours).
        type Plan<'a> = (String, &'a str, Ipv6Addr, Vec<(IpAddr, [u8; 6])>);
        let mut plan: Vec<Plan<'_>> = vec![
            (
                self.r#gen.netns.clone(),
                GEN_IFACE,
                GEN_IP6,
                both(DUT_IP, DUT_IP6, DUT_MAC).to_vec(),
            ),
            (
                self.dut.netns.clone(),
                dut_iface,
                DUT_IP6,
                both(GEN_IP, GEN_IP6, GEN_MAC).to_vec(),
            ),
        ];
        for (k, t) in self.tenants.iter().enumerate() {
            let i = k as u8 + 1;
            plan[0]
                .3
                .extend(both(tenant_ip(i), tenant_ip6(i), tenant_mac(i)));
            plan.push((
                t.netns.clone(),
                TENANT_IFACE,
                tenant_ip6(i),
                both(GEN_IP, GEN_IP6, GEN_MAC).to_vec(),
            ));
        }
        for (ns, iface, addr, peers) in &plan {
            quiet_ipv6(ns, iface)?;
            let a = format!("{addr}/{PREFIX6_LEN}");
            ip(&["-n", ns, "addr", "add", &a, "dev", iface, "nodad"])?;
            for (peer, mac) in peers {
                neigh_permanent(ns, iface, *peer, mac)?;
            }
        }
        self.r#gen.ip6 = Some(GEN_IP6);
        self.dut.ip6 = Some(DUT_IP6);
        for (k, t) in self.tenants.iter_mut().enumerate() {
            t.ip6 = Some(tenant_ip6(k as u8 + 1));
        }
        Ok(())
    }

    /// `lab status` for this lab.
    pub fn status(&self) -> Status {
        Status::of(self)
    }
    /// Leaves the lab in place when this value is dropped. It stays
    /// process-scoped: once this process is gone the lab is stale and the
    /// next `lab run`, `lab demo` or `lab down --stale` removes it (see
    /// [`Testbed::persist`] for a lab that outlives its builder).
    pub fn keep(&mut self) {
        self.owned = false;
    }
    /// Leaves the lab in place when this value is dropped and makes it
    /// persistent (as `lab up` does): never reaped, removed only by
    /// `lab down --name NAME`.
    pub fn persist(&mut self) -> Result<()> {
        crate::owner::write(&crate::owner::Record {
            name: self.name.clone(),
            topology: self.topology,
            owner: Owner::current(Scope::Persistent)?,
        })?;
        self.owned = false;
        Ok(())
    }
    /// Whether dropping this value tears the lab down.
    pub fn tears_down_on_drop(&self) -> bool {
        self.owned
    }
    /// Tears the lab down: deletes its namespaces and with them every
    /// interface it made.
    pub fn down(mut self) -> Result<()> {
        self.owned = false;
        self.tear_down()
    }

    /// Deletes the namespaces, then (only if that worked) the owner record.
    fn tear_down(&self) -> Result<()> {
        // Also what was added to the lab after it was built (an SSH lab's
        // second generator host).
        let mut existing: Vec<String> = self
            .namespaces()
            .into_iter()
            .filter(|ns| netns_exists(ns))
            .collect();
        for ns in existing_namespaces(&self.name) {
            if !existing.contains(&ns) {
                existing.push(ns);
            }
        }
        crate::ssh::remove(&self.name, &existing)?;
        delete_namespaces(&existing)?;
        crate::owner::remove(&self.name)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.tear_down()
        {
            eprintln!("lab: tearing down {}: {e}", self.name);
        }
    }
}

/// Reads a host's port from the system: (host, number of TX queues).
fn read_host(netns: &str, iface: &str) -> Result<(Host, u32)> {
    let parse_err = |detail: String| Error::Parse {
        what: format!("`ip -j -d addr show dev {iface}` in {netns}"),
        detail,
    };
    let out = ip(&["-n", netns, "-j", "-d", "addr", "show", "dev", iface])?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| parse_err(e.to_string()))?;
    let link = &v[0];
    let queues = link["num_tx_queues"]
        .as_u64()
        .and_then(|q| u32::try_from(q).ok())
        .ok_or_else(|| parse_err("no num_tx_queues".into()))?;
    let mac = link["address"].as_str().and_then(parse_mac);
    let ip = link["addr_info"].as_array().and_then(|a| {
        a.iter()
            .filter(|ai| ai["family"] == "inet")
            .find_map(|ai| ai["local"].as_str()?.parse().ok())
    });
    let ip6 = link["addr_info"].as_array().and_then(|a| {
        a.iter()
            .filter(|ai| ai["family"] == "inet6" && ai["scope"] == "global")
            .find_map(|ai| ai["local"].as_str()?.parse().ok())
    });
    Ok((
        Host {
            netns: netns.to_owned(),
            iface: iface.to_owned(),
            ip,
            ip6,
            mac,
        },
        queues,
    ))
}

/// The body of [`Testbed::up`]; pushes every namespace it creates onto
/// `created` so the caller can roll back.
fn build(opts: &UpOptions, created: &mut Vec<String>) -> Result<Testbed> {
    let name = &opts.name;
    let q = opts.queues;
    let switched = opts.topology.switched();
    let tenants = opts.topology == Topology::Tenants;
    let gen_ns = gen_netns(name);
    let dut_ns = dut_netns(name);
    let sw_ns = sw_netns(name);
    let mon_ns = mon_netns(name);
    let tenant_ids: Vec<u8> = if tenants {
        (1..=TENANTS).collect()
    } else {
        Vec::new()
    };
    let tenant_ns: Vec<String> = tenant_ids.iter().map(|&i| tenant_netns(name, i)).collect();
    let vifs: Vec<String> = tenant_ids.iter().map(|&i| tenant_vif(i)).collect();
    let mut namespaces: Vec<&str> = if switched {
        vec![&gen_ns, &sw_ns, &dut_ns, &mon_ns]
    } else {
        vec![&gen_ns, &dut_ns]
    };
    namespaces.extend(tenant_ns.iter().map(String::as_str));
    let ipv6 = Path::new("/proc/sys/net/ipv6").exists();
    for ns in &namespaces {
        new_netns(ns, ipv6, created)?;
    }

    let gen_end = End {
        netns: &gen_ns,
        iface: GEN_IFACE,
        mac: Some(GEN_MAC),
        queues: q,
    };
    let dut_end = End {
        netns: &dut_ns,
        iface: DUT_IFACE,
        mac: Some(DUT_MAC),
        queues: q,
    };
    // (namespace, interface) of every veth end, for XDP and link up.
    let mut ports: Vec<(&str, &str)> = vec![(&gen_ns, GEN_IFACE), (&dut_ns, DUT_IFACE)];
    if switched {
        let sw = |iface, queues| End {
            netns: &sw_ns,
            iface,
            mac: None,
            queues,
        };
        veth_pair(&gen_end, &sw(SW_GEN_IFACE, q))?;
        veth_pair(&dut_end, &sw(SW_DUT_IFACE, q))?;
        let mon_end = End {
            netns: &mon_ns,
            iface: MON_IFACE,
            mac: Some(MON_MAC),
            queues: 1,
        };
        veth_pair(&mon_end, &sw(SW_MON_IFACE, 1))?;
        ports.extend([
            (sw_ns.as_str(), SW_GEN_IFACE),
            (sw_ns.as_str(), SW_DUT_IFACE),
            (sw_ns.as_str(), SW_MON_IFACE),
            (mon_ns.as_str(), MON_IFACE),
        ]);
    } else {
        veth_pair(&gen_end, &dut_end)?;
    }
    if tenants {
        // The host's second NIC port, straight from the generator's second port.
        veth_pair(
            &End {
                netns: &gen_ns,
                iface: GEN1_IFACE,
                mac: Some(GEN1_MAC),
                queues: q,
            },
            &End {
                netns: &dut_ns,
                iface: DUT1_IFACE,
                mac: Some(DUT1_MAC),
                queues: q,
            },
        )?;
        ports.extend([(gen_ns.as_str(), GEN1_IFACE), (dut_ns.as_str(), DUT1_IFACE)]);
        // Each tenant's virtual NIC: ten0 inside, vifN on the host.
        for ((&i, ns), vif) in tenant_ids.iter().zip(&tenant_ns).zip(&vifs) {
            veth_pair(
                &End {
                    netns: ns,
                    iface: TENANT_IFACE,
                    mac: Some(tenant_mac(i)),
                    queues: q,
                },
                &End {
                    netns: &dut_ns,
                    iface: vif,
                    mac: None,
                    queues: q,
                },
            )?;
            ports.extend([(ns.as_str(), TENANT_IFACE), (dut_ns.as_str(), vif.as_str())]);
        }
    }

    if tenants {
        build_bridge(&dut_ns, &tenant_ids)?;
    }

    // Addresses, static neighbours, real checksums on the wire. A host
    // with tenants has its address on its bridge.
    let prefix = |a: std::net::Ipv4Addr| format!("{a}/{PREFIX_LEN}");
    let dut_addr_iface = if tenants { BRIDGE_IFACE } else { DUT_IFACE };
    // (namespace, port, address, permanent neighbours (address, MAC)).
    type HostPlan<'a> = (&'a str, &'a str, Ipv4Addr, Vec<(Ipv4Addr, [u8; 6])>);
    let mut hosts: Vec<HostPlan<'_>> = vec![
        (&gen_ns, GEN_IFACE, GEN_IP, vec![(DUT_IP, DUT_MAC)]),
        (&dut_ns, dut_addr_iface, DUT_IP, vec![(GEN_IP, GEN_MAC)]),
    ];
    for (&i, ns) in tenant_ids.iter().zip(&tenant_ns) {
        hosts[0].3.push((tenant_ip(i), tenant_mac(i)));
        hosts.push((ns, TENANT_IFACE, tenant_ip(i), vec![(GEN_IP, GEN_MAC)]));
    }
    for (ns, iface, addr, peers) in &hosts {
        ip(&["-n", ns, "addr", "add", &prefix(*addr), "dev", iface])?;
        for (peer, peer_mac) in peers {
            neigh_permanent(ns, iface, (*peer).into(), peer_mac)?;
        }
        if *iface != BRIDGE_IFACE {
            netns_exec(ns, "ethtool", &["-K", iface, "tx", "off"])?;
        }
    }
    if tenants {
        // gen1 has no address (the kernel's own traffic leaves by gen0) but
        // knows the tenants, for gen's neighbour lookup.
        for &i in &tenant_ids {
            neigh_permanent(&gen_ns, GEN1_IFACE, tenant_ip(i).into(), &tenant_mac(i))?;
        }
        netns_exec(&gen_ns, "ethtool", &["-K", GEN1_IFACE, "tx", "off"])?;
    }

    if switched {
        // The switch gets skbs (the XDP_PASS programs below make veth hand
        // XDP_TX'd and AF_XDP frames over as skbs) and forwards + mirrors on
        // tc ingress, where every frame is visible.
        // u32 with an empty key matches every frame (cls_matchall and
        // act_gact are often not built; cls_u32 and act_mirred are). The
        // switch namespace has no addresses and no forwarding, so whatever
        // the monitor host might send ends there.
        for (from, to) in [(SW_GEN_IFACE, SW_DUT_IFACE), (SW_DUT_IFACE, SW_GEN_IFACE)] {
            exec(tc(&sw_ns, &["qdisc", "add", "dev", from, "clsact"]))?;
            switch_filter(&sw_ns, from, 1, &["match", "u32", "0", "0"], to)?;
        }
    }

    crate::xdp::attach_pass_many(&ports)?;

    for (ns, iface) in &ports {
        ip(&["-n", ns, "link", "set", "dev", iface, "up"])?;
    }
    wait_operstate_up(&ports)?;
    if tenants {
        ip(&["-n", &dut_ns, "link", "set", "dev", BRIDGE_IFACE, "up"])?;
        wait_forwarding(&dut_ns)?;
    }
    if switched {
        ip(&[
            "-n", &mon_ns, "link", "set", "dev", MON_IFACE, "promisc", "on",
        ])?;
    }

    Ok(Testbed {
        name: name.clone(),
        topology: opts.topology,
        queues: q,
        r#gen: Host {
            netns: gen_ns.clone(),
            iface: GEN_IFACE.to_owned(),
            ip: Some(GEN_IP),
            ip6: None,
            mac: Some(GEN_MAC),
        },
        dut: Host {
            netns: dut_ns.clone(),
            iface: DUT_IFACE.to_owned(),
            ip: Some(DUT_IP),
            ip6: None,
            mac: Some(DUT_MAC),
        },
        mon: switched.then(|| Host {
            netns: mon_ns.clone(),
            iface: MON_IFACE.to_owned(),
            ip: None,
            ip6: None,
            mac: Some(MON_MAC),
        }),
        switch: switched.then(|| sw_ns.clone()),
        second: tenants.then(|| {
            (
                Host {
                    netns: gen_ns.clone(),
                    iface: GEN1_IFACE.to_owned(),
                    ip: None,
                    ip6: None,
                    mac: Some(GEN1_MAC),
                },
                Host {
                    netns: dut_ns.clone(),
                    iface: DUT1_IFACE.to_owned(),
                    ip: None,
                    ip6: None,
                    mac: Some(DUT1_MAC),
                },
            )
        }),
        tenants: tenant_ids
            .iter()
            .zip(&tenant_ns)
            .map(|(&i, ns)| Host {
                netns: ns.clone(),
                iface: TENANT_IFACE.to_owned(),
                ip: Some(tenant_ip(i)),
                ip6: None,
                mac: Some(tenant_mac(i)),
            })
            .collect(),
        owned: true,
    })
}

/// Turns IPv6 on for `iface` in `ns` with everything the kernel would send on its
/// own turned off first: link-local autoconfiguration, DAD, router solicitations,
/// router advertisements, and (IFF_NOARP) the solicited-node groups whose MLD
/// reports would otherwise go out. Neighbour entries on the port are flushed by the
/// flag change: add them afterwards.
fn quiet_ipv6(ns: &str, iface: &str) -> Result<()> {
    ip(&["-n", ns, "link", "set", "dev", iface, "arp", "off"])?;
    let k = |key: &str, v: u8| format!("net.ipv6.conf.{iface}.{key}={v}");
    let settings = [
        k("addr_gen_mode", 1),
        k("accept_dad", 0),
        k("dad_transmits", 0),
        k("router_solicitations", 0),
        k("accept_ra", 0),
        k("disable_ipv6", 0),
    ];
    let mut args = vec!["-q", "-w"];
    args.extend(settings.iter().map(String::as_str));
    netns_exec(ns, "sysctl", &args)
}

/// On the switch: frames entering `from` that `matches` (u32 selectors; an
/// empty key, `match u32 0 0`, matches every frame) are mirrored to the monitor
/// port and redirected to `to`, at priority `pref` (lower first).
pub(crate) fn switch_filter(
    sw_ns: &str,
    from: &str,
    pref: u32,
    matches: &[&str],
    to: &str,
) -> Result<()> {
    let pref = pref.to_string();
    let mut args = vec![
        "filter", "add", "dev", from, "ingress", "pref", &pref, "protocol", "all", "u32",
    ];
    args.extend(matches);
    args.extend([
        "action",
        "mirred",
        "egress",
        "mirror",
        "dev",
        SW_MON_IFACE,
        "action",
        "mirred",
        "egress",
        "redirect",
        "dev",
        to,
    ]);
    exec(tc(sw_ns, &args))
}

pub(crate) fn neigh_permanent(ns: &str, iface: &str, peer: IpAddr, mac: &[u8; 6]) -> Result<()> {
    ip(&[
        "-n",
        ns,
        "neigh",
        "replace",
        &peer.to_string(),
        "lladdr",
        &format_mac(mac),
        "dev",
        iface,
        "nud",
        "permanent",
    ])
    .map(|_| ())
}

/// The host's bridge `br0` (with the host's MAC) over dut0, dut1 and the
/// tenants' vifs. Ports do not learn, so a frame whose source MAC belongs
/// elsewhere (gen sending from gen1 with gen0's address, say) cannot move
/// an entry; static entries say where every lab MAC lives; STP is off and
/// ports forward at once. Multicast snooping is off: with it the bridge joins the
/// multicast-router-discovery groups (224.0.0.106, ff02::6a) and sends IGMP/MLD
/// reports out of every port on its own, which would move the lab's counters.
fn build_bridge(dut_ns: &str, tenant_ids: &[u8]) -> Result<()> {
    let host_mac = format_mac(&DUT_MAC);
    ip(&[
        "-n",
        dut_ns,
        "link",
        "add",
        BRIDGE_IFACE,
        "address",
        &host_mac,
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
        "mcast_snooping",
        "0",
    ])?;
    let mut entries = vec![
        (DUT_IFACE.to_owned(), GEN_MAC),
        (DUT1_IFACE.to_owned(), GEN1_MAC),
    ];
    entries.extend(tenant_ids.iter().map(|&i| (tenant_vif(i), tenant_mac(i))));
    for (port, mac) in &entries {
        ip(&[
            "-n",
            dut_ns,
            "link",
            "set",
            "dev",
            port,
            "master",
            BRIDGE_IFACE,
        ])?;
        exec(bridge_cmd(
            dut_ns,
            &["link", "set", "dev", port, "learning", "off"],
        ))?;
        exec(bridge_cmd(
            dut_ns,
            &[
                "fdb",
                "replace",
                &format_mac(mac),
                "dev",
                port,
                "master",
                "static",
            ],
        ))?;
    }
    Ok(())
}

/// Waits until every one of `ports` reports operstate UP. The kernel
/// attaches a device's queueing discipline in the same deferred work
/// (linkwatch) that sets its operstate, up to a second after `link set up`
/// on a loaded machine; until then the device drops what it is given, so
/// the first frames of a test could vanish.
pub(crate) fn wait_operstate_up(ports: &[(&str, &str)]) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut namespaces: Vec<&str> = ports.iter().map(|(ns, _)| *ns).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    loop {
        let mut waiting = Vec::new();
        for ns in &namespaces {
            let out = ip(&["-n", ns, "-j", "link", "show"])?;
            let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
                what: format!("`ip -j link show` in {ns}"),
                detail: e.to_string(),
            })?;
            let links = v.as_array().map(Vec::as_slice).unwrap_or_default();
            for (_, iface) in ports.iter().filter(|(n, _)| n == ns) {
                let up = links
                    .iter()
                    .any(|l| l["ifname"] == *iface && l["operstate"] == "UP");
                if !up {
                    waiting.push(format!("{iface} in {ns}"));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Incomplete {
                name: namespaces.join(", "),
                detail: format!("not up after 10 s: {}", waiting.join(", ")),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until every port of the host's bridge forwards. A bridge port
/// follows its carrier, and the kernel reports carrier changes through
/// linkwatch, up to a second late: frames sent before that are dropped.
fn wait_forwarding(dut_ns: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut c = bridge_cmd(dut_ns, &["-j", "link", "show"]);
        let out = cmd::run(&mut c)?;
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Parse {
            what: format!("`bridge -j link show` in {dut_ns}"),
            detail: e.to_string(),
        })?;
        let ports = v.as_array().map(Vec::as_slice).unwrap_or_default();
        let waiting: Vec<&str> = ports
            .iter()
            .filter(|p| p["master"] == BRIDGE_IFACE && p["state"] != "forwarding")
            .filter_map(|p| p["ifname"].as_str())
            .collect();
        if !ports.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Incomplete {
                name: dut_ns.to_owned(),
                detail: format!(
                    "bridge ports not forwarding after 10 s: {}",
                    waiting.join(", ")
                ),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn bridge_cmd(netns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("bridge");
    c.args(["-n", netns]).args(args);
    c
}

pub(crate) fn tc(netns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("tc");
    c.args(["-n", netns]).args(args);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_short_and_distinct() {
        let a = unique_name("lab-test");
        let b = unique_name("lab-test");
        assert_ne!(a, b);
        assert!(a.len() <= 12, "{a}");
        assert!(check_name(&a).is_ok());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("lab").is_ok());
        assert!(check_name("a_b-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn queues_are_checked_before_anything_else() {
        for queues in [0, MAX_QUEUES + 1] {
            let opts = UpOptions {
                name: unique_name("q"),
                queues,
                ..Default::default()
            };
            assert!(matches!(Testbed::up(&opts), Err(Error::InvalidQueues(q)) if q == queues));
        }
    }
}
