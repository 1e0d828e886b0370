//! `testbed`: a virtual testbed of network namespaces and veth pairs on one
//! Linux machine, standing in for the paper's generator / switch with mirror
//! port / DUT set-up. The tools' tests build on it alone; `lab` (the
//! experiment runner and its CLI) builds its labs with it.
//!
//! Two topologies ([`Topology`]):
//!
//! * **switched** (default): four namespaces `{name}-gen`, `{name}-sw`,
//!   `{name}-dut`, `{name}-mon`. The generator's `gen0`, the DUT's `dut0` and
//!   the monitor's `mon0` are veth peers of the switch ports `sw-gen`,
//!   `sw-dut` and `sw-mon`. On the switch, a tc `u32` match-all filter on the
//!   ingress of `sw-gen` and `sw-dut` mirrors every frame to `sw-mon` and
//!   redirects it to the other port, so the monitor sees both directions,
//!   including AF_XDP transmits and XDP_TX answers that no tap on the sending
//!   interface could see.
//! * **direct**: `{name}-gen` and `{name}-dut` joined by one veth pair
//!   (`gen0` <-> `dut0`), for peak-rate runs.
//! * **tenants**: the switched lab whose DUT namespace is a virtualisation
//!   host. Tenant namespaces `{name}-t1` and `{name}-t2` (the "VMs", port
//!   `ten0`, 198.18.0.11 and .12) sit behind a bridge `br0` in the host
//!   namespace, each on a veth (`vif1`, `vif2`: the virtual NICs). The
//!   bridge also joins the host's two "NIC ports": `dut0` (through the
//!   mirrored switch) and `dut1`, a direct veth from the generator's second
//!   port `gen1`, like two interfaces of one NIC. The host's own address
//!   moves to `br0`. Bridge ports do not learn; static forwarding entries
//!   send the generator's MAC to `dut0`, `gen1`'s to `dut1` and each
//!   tenant's to its `vif`.
//!
//! Every veth end carries an XDP_PASS program in native mode (see [`xdp`]),
//! IPv6 is off in every namespace, gen and dut have permanent neighbour
//! entries for each other and no TX checksum offload, `mon0` is promiscuous.
//!
//! **Dual stack** ([`Testbed::enable_ipv6`], `lab up --ipv6`): the address-bearing
//! ports (gen0, the DUT's port or bridge, the tenants' ten0) get IPv6 on, and an
//! address from 2001:db8::/64 ([`GEN_IP6`], [`DUT_IP6`], [`tenant_ip6`]), with the
//! kernel kept quiet so every counter of the lab still adds up exactly: no
//! link-local address (`addr_gen_mode` 1), no duplicate address detection
//! (`accept_dad` 0, `dad_transmits` 0, `nodad`), no router solicitations or
//! advertisements accepted (`router_solicitations` 0, `accept_ra` 0), no
//! solicited-node group and so no MLD report (the port is `arp off`, IFF_NOARP,
//! which is what keeps the kernel from joining it), and permanent neighbour entries
//! so no neighbour solicitation is ever sent. The switch and the monitor keep IPv6
//! off.
//! Names, addresses and MACs are fixed (the constants below) so that other
//! crates' tests can rely on them.
//!
//! ```no_run
//! use testbed::{Testbed, UpOptions};
//! let bed = Testbed::up(&UpOptions { name: testbed::unique_name("t"), ..Default::default() })?;
//! let out = bed.r#gen().command("ip").args(["addr", "show"]).output();
//! bed.down()?; // or let it drop: Drop tears the lab down too
//! # Ok::<(), testbed::Error>(())
//! ```

#![warn(missing_docs)]

pub mod binaries;
pub mod cmd;
pub mod error;
pub mod host;
pub mod owner;
pub mod procs;
pub mod ssh;
pub mod status;
pub mod testbed;
pub mod xdp;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use error::{Error, Result};
pub use host::{Host, format_mac, ifindex_in, parse_mac, run_in_netns};
pub use status::{HostStatus, Status};
pub use testbed::{
    Testbed, Topology, UpOptions, delete_namespaces, down, existing_namespaces, topology_of,
    unique_name,
};
pub use xdp::{attach_pass, attach_reflect, attach_xdp_fd, detach_xdp, xdp_prog_id};

/// Default lab name.
pub const DEFAULT_NAME: &str = "lab";
/// Longest accepted lab name.
pub const MAX_NAME_LEN: usize = 32;
/// Most queues `--queues` accepts.
pub const MAX_QUEUES: u32 = 64;

/// Suffix of the generator host's namespace: `{name}-gen`.
pub const GEN_NS_SUFFIX: &str = "-gen";
/// Suffix of the switch's namespace: `{name}-sw`.
pub const SW_NS_SUFFIX: &str = "-sw";
/// Suffix of the DUT host's namespace: `{name}-dut`.
pub const DUT_NS_SUFFIX: &str = "-dut";
/// Suffix of the monitor host's namespace: `{name}-mon`.
pub const MON_NS_SUFFIX: &str = "-mon";

/// The generator's port (in `{name}-gen`).
pub const GEN_IFACE: &str = "gen0";
/// The DUT's port (in `{name}-dut`).
pub const DUT_IFACE: &str = "dut0";
/// The monitor's port (in `{name}-mon`), fed by the switch's mirror.
pub const MON_IFACE: &str = "mon0";
/// Switch port facing the generator (in `{name}-sw`).
pub const SW_GEN_IFACE: &str = "sw-gen";
/// Switch port facing the DUT (in `{name}-sw`).
pub const SW_DUT_IFACE: &str = "sw-dut";
/// Switch port facing the monitor, the mirror destination (in `{name}-sw`).
pub const SW_MON_IFACE: &str = "sw-mon";

/// The generator's IPv4 address (RFC 2544 benchmarking range).
pub const GEN_IP: Ipv4Addr = ipv4(profiles::profile::defaults::GEN_IP);
/// The DUT's IPv4 address.
pub const DUT_IP: Ipv4Addr = ipv4(profiles::profile::defaults::DUT_IP);
/// Prefix length of the lab subnet 198.18.0.0/24.
pub const PREFIX_LEN: u8 = 24;
/// The generator's IPv6 address on a dual-stack lab (`lab up --ipv6`; 2001:db8::/32 is
/// the documentation prefix, RFC 3849), the IPv6 profiles' default source.
pub const GEN_IP6: Ipv6Addr = profiles::profile::defaults::GEN_IP6;
/// The DUT's IPv6 address on a dual-stack lab, the IPv6 profiles' default destination.
pub const DUT_IP6: Ipv6Addr = profiles::profile::defaults::DUT_IP6;
/// Prefix length of the lab's IPv6 subnet 2001:db8::/64.
pub const PREFIX6_LEN: u8 = 64;

/// The generator's MAC address.
pub const GEN_MAC: [u8; 6] = profiles::profile::defaults::GEN_MAC;
/// The DUT's MAC address.
pub const DUT_MAC: [u8; 6] = profiles::profile::defaults::DUT_MAC;
/// The monitor's MAC address.
pub const MON_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];

/// The profiles' default addresses are the lab's: a profile that names none talks to the
/// lab's DUT from the lab's generator host.
const fn ipv4(o: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::new(o[0], o[1], o[2], o[3])
}

/// The generator's second port (in `{name}-gen`, tenants topology), a direct
/// veth to the host's second port `dut1`.
pub const GEN1_IFACE: &str = "gen1";
/// The host's second port (in `{name}-dut`, tenants topology).
pub const DUT1_IFACE: &str = "dut1";
/// MAC of `gen1`.
pub const GEN1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];
/// MAC of `dut1`.
pub const DUT1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
/// The host's bridge (in `{name}-dut`, tenants topology).
pub const BRIDGE_IFACE: &str = "br0";
/// A tenant's port (in `{name}-tN`), its "virtual NIC" seen from inside.
pub const TENANT_IFACE: &str = "ten0";
/// Number of tenants in the tenants topology.
pub const TENANTS: u8 = 2;

/// Namespace of tenant `i` (1-based) of lab `name`.
pub fn tenant_netns(name: &str, i: u8) -> String {
    format!("{name}-t{i}")
}
/// The host side (in `{name}-dut`) of tenant `i`'s virtual NIC.
pub fn tenant_vif(i: u8) -> String {
    format!("vif{i}")
}
/// Tenant `i`'s IPv4 address: 198.18.0.(10 + i).
pub fn tenant_ip(i: u8) -> Ipv4Addr {
    let o = profiles::profile::defaults::DUT_IP;
    Ipv4Addr::new(o[0], o[1], o[2], 10 + i)
}
/// Tenant `i`'s IPv6 address on a dual-stack lab: 2001:db8::(0x10 + i), like the
/// IPv4 one's last byte.
pub fn tenant_ip6(i: u8) -> Ipv6Addr {
    let s = DUT_IP6.segments();
    Ipv6Addr::new(
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        s[6],
        0x10 + u16::from(i),
    )
}
/// Tenant `i`'s MAC address: 02:00:00:00:01:0i.
pub fn tenant_mac(i: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, i]
}

/// Namespace of the generator host of lab `name`.
pub fn gen_netns(name: &str) -> String {
    format!("{name}{GEN_NS_SUFFIX}")
}
/// Namespace of the switch of lab `name`.
pub fn sw_netns(name: &str) -> String {
    format!("{name}{SW_NS_SUFFIX}")
}
/// Namespace of the DUT host of lab `name`.
pub fn dut_netns(name: &str) -> String {
    format!("{name}{DUT_NS_SUFFIX}")
}
/// Namespace of the monitor host of lab `name`.
pub fn mon_netns(name: &str) -> String {
    format!("{name}{MON_NS_SUFFIX}")
}
