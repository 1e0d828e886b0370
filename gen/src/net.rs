//! System plumbing: entering a network namespace, the destination MAC from the neighbour table (`ip -j route get` / `ip -j neigh`,
//! run in the current network namespace), CPU pinning, bpffs.

use std::net::IpAddr;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Enters network namespace `name` (/run/netns/NAME) for the whole process: call
/// first thing in main, before any thread, socket or BPF object exists.
pub fn enter_netns(name: &str) -> Result<()> {
    xdplayer::netns::enter(name).with_context(|| format!("entering network namespace `{name}`"))
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn ip_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running `ip {}`", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Array(vec![]));
    }
    serde_json::from_str(&text).with_context(|| format!("parsing `ip {}`", args.join(" ")))
}

/// The interface's MTU (`ip -j link show dev IF`, in the current network namespace).
pub fn mtu(iface: &str) -> Result<usize> {
    let v = ip_json(&["-j", "link", "show", "dev", iface])?;
    v[0]["mtu"]
        .as_u64()
        .map(|m| m as usize)
        .with_context(|| format!("no MTU in `ip -j link show dev {iface}`"))
}

/// The MAC address to send to for `dst` out of `iface`: the neighbour entry of `dst`
/// (or of its gateway), IPv4 (ARP) or IPv6 (neighbour discovery): `ip` picks the
/// table from the address. Only reachable / permanent / stale entries count.
pub fn resolve_dst_mac(iface: &str, dst: IpAddr) -> Result<[u8; 6]> {
    let d = dst.to_string();
    let route = ip_json(&["-j", "route", "get", &d, "oif", iface]).ok();
    let hop = route
        .as_ref()
        .and_then(|r| r[0]["gateway"].as_str())
        .and_then(|g| g.parse::<IpAddr>().ok())
        .unwrap_or(dst);
    let h = hop.to_string();
    let neigh = ip_json(&["-j", "neigh", "show", "to", &h, "dev", iface])?;
    let entry = neigh.as_array().and_then(|a| {
        a.iter().find(|e| {
            e["lladdr"].is_string()
                && !e["state"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "FAILED" || x == "INCOMPLETE"))
        })
    });
    let Some(mac) = entry.and_then(|e| e["lladdr"].as_str()) else {
        bail!(
            "no neighbour entry for {h} on {iface}: pass --dst-mac, or add one (`ip neigh replace {h} lladdr MAC dev {iface}`)"
        );
    };
    crate::units::parse_mac(mac).map_err(anyhow::Error::msg)
}

/// Number of online CPUs.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Pins the calling thread to `core`.
pub fn pin_to(core: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(core)
        .with_context(|| format!("core {core} out of range"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to core {core}"))?;
    Ok(())
}

/// Mounts bpffs on /sys/fs/bpf if missing (as under `ip netns exec`). Best effort.
pub fn ensure_bpffs() {
    let p = std::path::Path::new("/sys/fs/bpf");
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
        })
        .unwrap_or(true);
    if !mounted && p.is_dir() {
        let _ = nix::mount::mount(
            Some("bpf"),
            p,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
}
