//! Shared helpers for the lab's integration tests: an AF_PACKET capture
//! socket opened inside a namespace, hand-built Ethernet/IPv4/UDP frames,
//! checksum checks, and a snapshot of the root namespace.

#![allow(dead_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::Host;

/// A raw AF_PACKET socket bound to one interface, receiving every frame.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Opens a capture on `host.iface` inside `host.netns`.
    pub fn open(host: &Host) -> io::Result<Capture> {
        let ifindex = host.ifindex().map_err(io::Error::other)?;
        host.run_in(|| {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call; the fd is owned below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh, valid descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sockaddr_ll is plain old data; zeroed is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: sll is a valid sockaddr_ll of the given length.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            // SAFETY: tv is a valid timeval of the given length.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Capture { fd })
        })
        .map_err(io::Error::other)?
    }

    /// Collects frames for which `keep` holds until `want` of them arrived
    /// or `timeout` passed.
    pub fn collect(
        &self,
        want: usize,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        while frames.len() < want && Instant::now() < deadline {
            // SAFETY: buf is valid for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                let frame = &buf[..n as usize];
                if keep(frame) {
                    frames.push(frame.to_vec());
                }
            }
        }
        frames
    }
}

pub const ETH_HDR: usize = 14;
pub const IP_HDR: usize = 20;
pub const UDP_HDR: usize = 8;
pub const PAYLOAD_OFF: usize = ETH_HDR + IP_HDR + UDP_HDR;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An Ethernet/IPv4/UDP frame with correct checksums.
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = (UDP_HDR + payload.len()) as u16;
    let ip_len = IP_HDR as u16 + udp_len;
    let mut f = Vec::with_capacity(PAYLOAD_OFF + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; IP_HDR];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = fold(sum16(&ip, 0));
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut udp = Vec::with_capacity(udp_len as usize);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let csum = match udp_checksum(&src.octets(), &dst.octets(), &udp) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

/// The UDP checksum over the pseudo header and `udp` (checksum field as
/// given: 0 to compute, the stored value to verify, which then yields 0).
pub fn udp_checksum(src: &[u8; 4], dst: &[u8; 4], udp: &[u8]) -> u16 {
    let mut acc = sum16(src, 0);
    acc = sum16(dst, acc);
    acc += 17;
    acc += udp.len() as u32;
    fold(sum16(udp, acc))
}

/// Whether `frame` is IPv4/UDP with its UDP payload starting with `marker`.
pub fn is_udp_with(frame: &[u8], marker: &[u8]) -> bool {
    frame.len() >= PAYLOAD_OFF + marker.len()
        && frame[12..14] == [0x08, 0x00]
        && frame[ETH_HDR] == 0x45
        && frame[ETH_HDR + 9] == 17
        && &frame[PAYLOAD_OFF..PAYLOAD_OFF + marker.len()] == marker
}

/// Source MAC of a frame.
pub fn src_mac(frame: &[u8]) -> [u8; 6] {
    let mut m = [0u8; 6];
    m.copy_from_slice(&frame[6..12]);
    m
}

/// Whether an IPv4/UDP frame's UDP checksum is present and correct.
pub fn udp_checksum_ok(frame: &[u8]) -> bool {
    let ip = &frame[ETH_HDR..ETH_HDR + IP_HDR];
    let mut src = [0u8; 4];
    let mut dst = [0u8; 4];
    src.copy_from_slice(&ip[12..16]);
    dst.copy_from_slice(&ip[16..20]);
    let udp_len = u16::from_be_bytes([frame[ETH_HDR + IP_HDR + 4], frame[ETH_HDR + IP_HDR + 5]]);
    let udp = &frame[ETH_HDR + IP_HDR..ETH_HDR + IP_HDR + udp_len as usize];
    udp[6..8] != [0, 0] && udp_checksum(&src, &dst, udp) == 0
}

/// `ip netns list` and `ip -o link` in the root namespace.
pub fn root_snapshot() -> (Vec<String>, String) {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    let mut ns: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    ns.sort();
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("run ip -o link");
    (ns, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces of `snapshot` belonging to lab `name`.
pub fn lab_namespaces(snapshot: &[String], name: &str) -> Vec<String> {
    snapshot
        .iter()
        .filter(|ns| {
            ns.strip_prefix(name)
                .is_some_and(|rest| ["-gen", "-sw", "-dut", "-mon", "-t1", "-t2"].contains(&rest))
        })
        .cloned()
        .collect()
}

/// `namespaces` less those of labs named by `testbed::unique_name` (which
/// parallel tests create and remove at any time).
pub fn without_test_labs(namespaces: &[String]) -> Vec<String> {
    namespaces
        .iter()
        .filter(|ns| {
            let Some((lab, role)) = ns.rsplit_once('-') else {
                return true;
            };
            let role_ok = ["gen", "sw", "dut", "mon", "t1", "t2"].contains(&role);
            let looks_unique = lab.rsplit_once('-').is_some_and(|(head, counter)| {
                !counter.is_empty()
                    && counter.chars().all(|c| c.is_ascii_hexdigit())
                    && head.chars().last().is_some_and(|c| c.is_ascii_hexdigit())
            });
            !(role_ok && looks_unique)
        })
        .cloned()
        .collect()
}

/// Every namespace in /run/netns, sorted.
pub fn netns() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The `lab` binary under test (target/<profile>/lab).
pub fn lab_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_lab"))
}

/// The workspace binaries `lab run` drives must be beside `lab`; a clear
/// failure otherwise (these tests never skip).
pub fn require_tools() {
    let dir = lab_bin().parent().expect("bin dir").to_path_buf();
    let missing: Vec<&str> = lab::tools::WORKSPACE_TOOLS
        .iter()
        .copied()
        .filter(|t| *t != "sink" && !dir.join(t).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "these tests need {} in {}: build them first with `cargo build --workspace` (same profile as the tests)",
        missing.join(", "),
        dir.display()
    );
}
