//! A host of the testbed: one network namespace and its port.
//!
//! [`Host::command`] runs a program inside the namespace (`ip netns exec`);
//! [`Host::run_in`] runs a closure on a fresh thread that has entered the
//! namespace with `setns(2)`, which is how tests open sockets (UDP, AF_PACKET,
//! AF_XDP) that live in the namespace. A socket keeps its namespace after the
//! thread ends, so it can be returned from the closure and used anywhere.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::error::{Error, Result};

/// Directory where `ip netns` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// One host of the testbed: a network namespace and the interface that
/// connects it to the rest of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Network namespace name (as in `ip netns list`).
    pub netns: String,
    /// The host's port in that namespace.
    pub iface: String,
    /// IPv4 address on `iface`, if it has one.
    pub ip: Option<Ipv4Addr>,
    /// Global IPv6 address on `iface`, if it has one (dual-stack labs).
    pub ip6: Option<std::net::Ipv6Addr>,
    /// MAC address of `iface`, if known.
    pub mac: Option<[u8; 6]>,
}

impl Host {
    /// A `Command` that runs `program` inside the host's namespace
    /// (`ip netns exec NETNS program`); add arguments as usual.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, program]);
        cmd
    }

    /// Runs `f` on a new thread that has entered the host's network
    /// namespace, and returns its result. A panic in `f` is propagated.
    ///
    /// Only the network namespace changes; the thread shares the process's
    /// memory, files and mount namespace (so `/sys/class/net` still shows the
    /// root namespace: use `xdplayer::iface` or netlink instead).
    pub fn run_in<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        run_in_netns(&self.netns, f)
    }

    /// The interface index of `iface` inside the namespace.
    pub fn ifindex(&self) -> Result<u32> {
        ifindex_in(&self.netns, &self.iface)
    }

    /// The MAC address formatted as `aa:bb:cc:dd:ee:ff`, if known.
    pub fn mac_string(&self) -> Option<String> {
        self.mac.map(|m| format_mac(&m))
    }
}

/// Runs `f` on a new thread inside network namespace `netns` (see
/// [`Host::run_in`]; `xdplayer::netns::run_in_named`).
pub fn run_in_netns<F, R>(netns: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    xdplayer::netns::run_in_named(netns, f).map_err(|source| Error::Layer {
        what: format!("run in network namespace {netns}"),
        source,
    })
}

/// Interface index of `iface` in namespace `netns` (`xdplayer::iface::ifindex_in`).
pub fn ifindex_in(netns: &str, iface: &str) -> Result<u32> {
    xdplayer::iface::ifindex_in(netns, iface).map_err(|source| Error::Layer {
        what: format!("interface {iface} in namespace {netns}"),
        source,
    })
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    profiles::units::format_mac(*mac)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    profiles::units::parse_mac(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let mac = [0x02, 0, 0, 0, 0, 0xab];
        assert_eq!(format_mac(&mac), "02:00:00:00:00:ab");
        assert_eq!(parse_mac("02:00:00:00:00:ab"), Some(mac));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:ab:cd"), None);
        assert_eq!(parse_mac("zz:00:00:00:00:ab"), None);
    }

    #[test]
    fn command_wraps_ip_netns_exec() {
        let h = Host {
            netns: "x-gen".into(),
            iface: "gen0".into(),
            ip: None,
            ip6: None,
            mac: None,
        };
        let mut c = h.command("ping");
        c.arg("-c1");
        assert_eq!(crate::cmd::display(&c), "ip netns exec x-gen ping -c1");
    }
}
