//! What `lab status` reports: a serialisable snapshot of a testbed, read from
//! the system (see [`crate::Testbed::attach`]), and its human-readable form.

use std::fmt;

use serde::Serialize;

use crate::{DUT_IP, Host, PREFIX_LEN, PREFIX6_LEN, Testbed, Topology};

/// One host in a [`Status`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HostStatus {
    /// Namespace name.
    pub netns: String,
    /// The host's port.
    pub iface: String,
    /// IPv4 address of the port, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Global IPv6 address of the port, if any (dual-stack labs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
    /// MAC address of the port, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl From<&Host> for HostStatus {
    fn from(h: &Host) -> Self {
        HostStatus {
            netns: h.netns.clone(),
            iface: h.iface.clone(),
            ip: h.ip.map(|ip| ip.to_string()),
            ip6: h.ip6.map(|ip| ip.to_string()),
            mac: h.mac_string(),
        }
    }
}

/// The hosts of a [`Status`]; `mon` only in the switched topology.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hosts {
    /// The generator host.
    pub r#gen: HostStatus,
    /// The DUT host.
    pub dut: HostStatus,
    /// The monitor host (switched and tenants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mon: Option<HostStatus>,
    /// Tenants topology: the generator's second port `gen1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen1: Option<HostStatus>,
    /// Tenants topology: the host's second port `dut1` (a bridge port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dut1: Option<HostStatus>,
    /// Tenants topology: the tenants behind the host's bridge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<HostStatus>,
}

/// The switch of a [`Status`] (switched only).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SwitchStatus {
    /// Namespace name.
    pub netns: String,
    /// Its ports: towards gen, towards dut, towards mon.
    pub ports: Vec<String>,
}

/// `lab status --json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Lab name.
    pub name: String,
    /// `"switched"` or `"direct"`.
    pub topology: Topology,
    /// TX/RX queues on gen0 and dut0.
    pub queues: u32,
    /// Whether the lab is dual stack (`lab up --ipv6`).
    pub ipv6: bool,
    /// The hosts.
    pub hosts: Hosts,
    /// The switch, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchStatus>,
}

impl Status {
    /// Snapshot of `bed`.
    pub fn of(bed: &Testbed) -> Status {
        Status {
            name: bed.name().to_owned(),
            topology: bed.topology(),
            queues: bed.queues(),
            ipv6: bed.ipv6(),
            hosts: Hosts {
                r#gen: bed.r#gen().into(),
                dut: bed.dut().into(),
                mon: bed.mon().map(Into::into),
                gen1: bed.second_port().map(|(g, _)| g.into()),
                dut1: bed.second_port().map(|(_, d)| d.into()),
                tenants: bed.tenants().iter().map(Into::into).collect(),
            },
            switch: bed.switch_netns().map(|ns| SwitchStatus {
                netns: ns.to_owned(),
                ports: [
                    crate::SW_GEN_IFACE,
                    crate::SW_DUT_IFACE,
                    crate::SW_MON_IFACE,
                ]
                .map(String::from)
                .to_vec(),
            }),
        }
    }
}

fn host_line(f: &mut fmt::Formatter<'_>, role: &str, h: &HostStatus) -> fmt::Result {
    write!(f, "  {role:<6} netns {:<14} iface {:<6}", h.netns, h.iface)?;
    if let Some(ip) = &h.ip {
        write!(f, " {ip}/{PREFIX_LEN}")?;
    }
    if let Some(ip6) = &h.ip6 {
        write!(f, " {ip6}/{PREFIX6_LEN}")?;
    }
    if let Some(mac) = &h.mac {
        write!(f, " {mac}")?;
    }
    writeln!(f)
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lab {:?}: {} topology, {} queue{} on gen0/dut0{}",
            self.name,
            self.topology,
            self.queues,
            if self.queues == 1 { "" } else { "s" },
            if self.ipv6 { ", dual stack (IPv6)" } else { "" }
        )?;
        host_line(f, "gen", &self.hosts.r#gen)?;
        host_line(f, "dut", &self.hosts.dut)?;
        if let Some(mon) = &self.hosts.mon {
            host_line(f, "mon", mon)?;
        }
        if let (Some(g1), Some(d1)) = (&self.hosts.gen1, &self.hosts.dut1) {
            host_line(f, "gen", g1)?;
            host_line(f, "dut", d1)?;
        }
        for (i, t) in self.hosts.tenants.iter().enumerate() {
            host_line(f, &format!("t{}", i + 1), t)?;
        }
        if !self.hosts.tenants.is_empty() {
            writeln!(
                f,
                "  bridge {} in {}: {} {} {} (the host; static forwarding, no learning)",
                crate::BRIDGE_IFACE,
                self.hosts.dut.netns,
                crate::DUT_IFACE,
                crate::DUT1_IFACE,
                (1..=self.hosts.tenants.len() as u8)
                    .map(crate::tenant_vif)
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
        if let Some(sw) = &self.switch {
            writeln!(
                f,
                "  switch netns {:<14} ports {} (tc mirred: forward gen<->dut, mirror both to {})",
                sw.netns,
                sw.ports.join(" "),
                crate::SW_MON_IFACE
            )?;
        }
        writeln!(f, "examples:")?;
        let g = &self.hosts.r#gen;
        writeln!(f, "  ip netns exec {} ping -c 3 {DUT_IP}", g.netns)?;
        if let Some(mon) = &self.hosts.mon {
            writeln!(
                f,
                "  ip netns exec {} tcpdump -eni {} -c 10",
                mon.netns, mon.iface
            )?;
        }
        let d = &self.hosts.dut;
        writeln!(f, "  ip netns exec {} ip -d link show {}", d.netns, d.iface)?;
        write!(f, "  lab down --name {}", self.name)
    }
}
