//! `gen --pcap`: a capture written here (frames of different sizes, known timing)
//! replayed on a veth pair and captured by tcpdump on the peer: byte-identical frames
//! in file order over every `--loop` pass, gen's packets and bytes against both
//! interfaces' counters and the capture, the recorded timing scaled by `--speed`,
//! `--rate` instead, `--dst-mac`/`--dst-ip` rewrites (IPv4 and IPv6, each version
//! touching only its own frames of a mixed capture), and bad input refused in one line
//! with nothing attached. Also the IPv6 rewrite itself on crafted frames (no
//! namespaces): UDP/TCP/ICMPv6, tagged, extension headers, the version refusal.

use std::path::{Path, PathBuf};
use std::process::Command;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use profiles::wire::checksum;
use xgen::replay::{Replay, set_ipv4_dst, set_ipv6_dst};

mod common;
use common::{
    ETH_PULLED, GEN, Tcpdump, final_of, link_stats, prog_name, run_gen, scratch, stats_settled,
    up_with,
};

/// An Ethernet/IPv4/UDP frame of `len` bytes (no FCS) from `src` to `dst`; the
/// payload carries `tag` so that every frame of the file differs.
fn frame(src: [u8; 6], dst: [u8; 6], len: usize, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, tag, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    let c = checksum::ipv4_header(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut udp = vec![0x30, 0x39, 0x27, 0x0f];
    udp.extend_from_slice(&(ip_len - 20).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend((0..len - 42).map(|i| tag.wrapping_add(i as u8)));
    let c = checksum::udp4([198, 18, 0, 1], [198, 18, 0, 2], &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&udp);
    f
}

/// Writes `frames` (with their ns offsets from an arbitrary start) as a
/// nanosecond pcap.
fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create pcap");
    let hdr = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(file, hdr).expect("pcap writer");
    let base = 1_764_000_000_000_000_000u64;
    for (t, f) in frames {
        let ts = std::time::Duration::from_nanos(base + t);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .expect("write packet");
    }
}

/// Every frame of a capture file with its timestamp (ns).
fn read_capture(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    let st = capfile::read(path, |ts, d| {
        v.push((ts, d.to_vec()));
        true
    })
    .expect("read capture");
    assert!(!st.truncated, "capture truncated");
    v
}

fn macs(bed: &testbed::Testbed) -> ([u8; 6], [u8; 6]) {
    (
        bed.generator().mac.expect("gen mac"),
        bed.dut().mac.expect("dut mac"),
    )
}

/// Six frames of different sizes (60 .. 1514 bytes) over 200 ms.
fn sample(src: [u8; 6], dst: [u8; 6]) -> Vec<(u64, Vec<u8>)> {
    [
        (0u64, 60usize),
        (20, 142),
        (50, 600),
        (90, 1514),
        (140, 75),
        (200, 1000),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(ms, len))| (ms * 1_000_000, frame(src, dst, len, i as u8 * 16)))
    .collect()
}

/// Runs gen with `args` while tcpdump captures on the peer; the final record and
/// the captured frames.
fn replay_captured(
    bed: &testbed::Testbed,
    dir: &Path,
    tag: &str,
    args: &[&str],
) -> (serde_json::Value, Vec<(u64, Vec<u8>)>) {
    let cap = dir.join(format!("{tag}.pcap"));
    let td = Tcpdump::start(bed, &cap);
    let out = run_gen(bed, &[args, &["--output", "json"]].concat());
    let fin = final_of(&out);
    td.finish();
    (fin, read_capture(&cap))
}

#[test]
fn replay_is_byte_identical_in_file_order_and_counted_by_both_interfaces() {
    let bed = up_with("gp", 2);
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let (src, dst) = macs(&bed);
    let dir = scratch("replay");
    let file = dir.join("sample.pcap");
    let frames = sample(src, dst);
    write_pcap(&file, &frames);
    let loops = 3u64;
    let n = frames.len() as u64 * loops;
    let want: Vec<&Vec<u8>> = (0..n as usize)
        .map(|i| &frames[i % frames.len()].1)
        .collect();
    let want_bytes: u64 = want.iter().map(|f| f.len() as u64).sum();
    let f = file.to_str().expect("utf-8 path");
    for (engine, queues) in [
        ("afxdp", "1"),
        ("afxdp", "2"),
        ("xdp-live", "1"),
        ("xdp-live", "2"),
    ] {
        let tx0 = link_stats(&g, "tx");
        let rx0 = link_stats(&d, "rx");
        let (fin, got) = replay_captured(
            &bed,
            &dir,
            &format!("{engine}-q{queues}"),
            &[
                "--pcap", f, "--loop", "3", "--speed", "4", "--queues", queues, "--engine", engine,
            ],
        );
        let what = format!("{engine}, {queues} queue(s)");
        assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{what}: {fin}");
        assert_eq!(fin["tx_bytes"].as_u64(), Some(want_bytes), "{what}: {fin}");
        assert_eq!(fin["tx_check"]["agrees"], true, "{what}: {fin}");
        assert_eq!(
            fin["tx_check"]["interface_tx"].as_u64(),
            Some(n),
            "{what}: the interface's own counter: {fin}"
        );
        assert_eq!(
            fin["rx_packets"].as_u64(),
            Some(0),
            "{what}: no replies: {fin}"
        );
        assert!(
            fin["profile"]
                .as_str()
                .is_some_and(|p| p.starts_with("pcap:")),
            "{fin}"
        );
        // The capture: every frame, byte for byte, in file order, each pass. With
        // two queues, each queue's frames (n = q, q + 2, ...): the queues' threads
        // share this loaded 2-core machine with other work, and one preempted for
        // milliseconds sends its frame after the other queue's next one (seen with
        // both engines: frame 0 14 ms late, after frame 1).
        assert_eq!(got.len() as u64, n, "{what}: frames captured");
        let nq: usize = queues.parse().expect("queues");
        for q in 0..nq {
            let w_q = want.iter().skip(q).step_by(nq);
            let g_q: Vec<&Vec<u8>> = got
                .iter()
                .map(|(_, c)| c)
                .filter(|c| {
                    want.iter()
                        .position(|w| w == c)
                        .is_some_and(|i| i % nq == q)
                })
                .collect();
            assert_eq!(g_q.len(), w_q.len(), "{what}: queue {q}'s frames");
            for (i, (w, c)) in w_q.zip(g_q).enumerate() {
                assert_eq!(
                    c,
                    *w,
                    "{what}: queue {q}'s captured frame {i} differs from file frame {}",
                    (i * nq + q) % frames.len()
                );
            }
        }
        let cap_bytes: u64 = got.iter().map(|(_, c)| c.len() as u64).sum();
        assert_eq!(cap_bytes, want_bytes, "{what}: captured bytes");
        // The kernel's counters (veth counts AF_XDP skbs after the Ethernet
        // header was pulled when the peer runs XDP, XDP frames whole, see
        // tests/workloads.rs).
        let pulled = if engine == "afxdp" { ETH_PULLED } else { 0 };
        let kernel_bytes = want_bytes - pulled * n;
        let tx = stats_settled(&g, "tx", tx0, n);
        let rx = stats_settled(&d, "rx", rx0, n);
        assert!(tx.0 >= n && tx.0 <= n + 4, "{what}: gen0 tx packets {tx:?}");
        assert!(
            tx.1 >= kernel_bytes && tx.1 <= kernel_bytes + 4 * 128,
            "{what}: gen0 tx bytes {tx:?} vs {kernel_bytes}"
        );
        assert!(rx.0 >= n && rx.0 <= n + 4, "{what}: dut0 rx packets {rx:?}");
        assert!(
            rx.1 >= kernel_bytes && rx.1 <= kernel_bytes + 4 * 128,
            "{what}: dut0 rx bytes {rx:?} vs {kernel_bytes}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xdp_live_replay_stays_the_files_while_a_dut_bounces_it_in_our_pages() {
    // A DUT that answers with XDP_TX answers in gen's live-frame pages (here the
    // reflect fixture: MACs swapped in place) and the pages come back to gen's pool:
    // every frame must still be the file's. The answers come back to gen0: counted
    // by gen's reply counter in one run, captured there (--no-rx: the lab's
    // placeholder passes them to the stack) in another, where each is the file's
    // frame with its MACs swapped.
    let bed = up_with("gb", 1);
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let (src, dst) = macs(&bed);
    let dir = scratch("bounce");
    let file = dir.join("sample.pcap");
    let frames = sample(src, dst);
    write_pcap(&file, &frames);
    let f = file.to_str().expect("utf-8 path");
    testbed::xdp::attach_reflect(&d.netns, &d.iface).expect("attach reflect");
    let loops = 50u64;
    let n = frames.len() as u64 * loops;
    let args = [
        "--pcap", f, "--loop", "50", "--rate", "2k", "--engine", "xdp-live",
    ];
    let fin = final_of(&run_gen(&bed, &[&args[..], &["--output", "json"]].concat()));
    assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{fin}");
    assert_eq!(fin["tx_check"]["interface_tx"].as_u64(), Some(n), "{fin}");
    assert_eq!(
        fin["rx_packets"].as_u64(),
        Some(n),
        "every answer counted: {fin}"
    );
    let cap = dir.join("answers.pcap");
    let td = Tcpdump::start_on(&g, &d, &cap);
    let fin = final_of(&run_gen(
        &bed,
        &[&args[..], &["--no-rx", "--output", "json"]].concat(),
    ));
    td.finish();
    assert_eq!(fin["tx_packets"].as_u64(), Some(n), "{fin}");
    let got = read_capture(&cap);
    assert_eq!(got.len() as u64, n, "answers captured");
    for (i, (_, c)) in got.iter().enumerate() {
        let mut w = frames[i % frames.len()].1.clone();
        w[..6].copy_from_slice(&src);
        w[6..12].copy_from_slice(&dst);
        assert_eq!(
            c,
            &w,
            "answer {i}: file frame {} with MACs swapped",
            i % frames.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn speed_scales_the_recorded_timing_and_rate_replaces_it() {
    let bed = up_with("gs", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("speed");
    let file = dir.join("span.pcap");
    // Recorded span 1 s.
    let frames: Vec<(u64, Vec<u8>)> = [0u64, 250, 500, 1000]
        .iter()
        .enumerate()
        .map(|(i, &ms)| (ms * 1_000_000, frame(src, dst, 100, i as u8)))
        .collect();
    write_pcap(&file, &frames);
    let f = file.to_str().expect("utf-8 path");
    let span_s = |got: &[(u64, Vec<u8>)]| (got[got.len() - 1].0 - got[0].0) as f64 / 1e9;
    for engine in ["afxdp", "xdp-live"] {
        let e = ["--engine", engine];
        let tag = |t: &str| format!("{engine}-{t}");
        // --speed 2: 0.5 s; bounds wide enough for a loaded 2-core machine (sending
        // can only be late, so the lower bound is firm).
        let (fin, got) = replay_captured(
            &bed,
            &dir,
            &tag("speed2"),
            &[&["--pcap", f, "--speed", "2"], &e[..]].concat(),
        );
        assert_eq!(got.len(), 4, "{engine}");
        let dur = fin["duration_s"].as_f64().expect("duration");
        assert!(
            (0.4..1.5).contains(&dur),
            "{engine} --speed 2: duration {dur} s"
        );
        let s = span_s(&got);
        assert!(
            (0.4..1.5).contains(&s),
            "{engine} --speed 2: captured span {s} s"
        );
        // Each gap scaled: 125, 125, 250 ms.
        for (i, want) in [(1usize, 0.125), (2, 0.125), (3, 0.25)] {
            let gap = (got[i].0 - got[i - 1].0) as f64 / 1e9;
            assert!(
                gap > want * 0.8 && gap < want + 0.3,
                "{engine} --speed 2: gap {i} {gap} s, recorded/2 {want} s"
            );
        }
        // At --speed 4, 2 passes take 0.5 s (the second pass starts one mean gap
        // after the first ended).
        let (_, got) = replay_captured(
            &bed,
            &dir,
            &tag("loop2"),
            &[&["--pcap", f, "--speed", "4", "--loop", "2"], &e[..]].concat(),
        );
        assert_eq!(got.len(), 8, "{engine}");
        let s = span_s(&got);
        assert!(
            (0.45..1.5).contains(&s),
            "{engine} --speed 4 --loop 2: captured span {s} s"
        );
        // --rate 10 replaces the timing: 8 frames 100 ms apart, 0.7 s first to last.
        let (fin, got) = replay_captured(
            &bed,
            &dir,
            &tag("rate"),
            &[&["--pcap", f, "--rate", "10", "--loop", "2"], &e[..]].concat(),
        );
        assert_eq!(got.len(), 8, "{engine}");
        assert_eq!(fin["requested_pps"].as_f64(), Some(10.0), "{engine}: {fin}");
        let s = span_s(&got);
        assert!(
            (0.6..1.8).contains(&s),
            "{engine} --rate 10: captured span {s} s"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dst_mac_and_dst_ip_rewrite_is_in_the_capture() {
    let bed = up_with("gm", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("rewrite");
    let file = dir.join("sample.pcap");
    let frames = sample(src, dst);
    write_pcap(&file, &frames);
    let f = file.to_str().expect("utf-8 path");
    for engine in ["afxdp", "xdp-live"] {
        let (fin, got) = replay_captured(
            &bed,
            &dir,
            &format!("rw-{engine}"),
            &[
                "--pcap",
                f,
                "--speed",
                "4",
                "--dst-mac",
                "02:aa:bb:cc:dd:ee",
                "--dst-ip",
                "203.0.113.9",
                "--engine",
                engine,
            ],
        );
        assert_eq!(
            fin["tx_packets"].as_u64(),
            Some(frames.len() as u64),
            "{engine}"
        );
        assert_eq!(got.len(), frames.len(), "{engine}");
        for (i, ((_, w), (_, c))) in frames.iter().zip(&got).enumerate() {
            assert_eq!(
                &c[..6],
                &[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
                "frame {i}: dst MAC"
            );
            assert_eq!(
                &c[6..24],
                &w[6..24],
                "frame {i}: src MAC .. protocol unchanged"
            );
            assert_eq!(&c[26..30], &w[26..30], "frame {i}: src IP unchanged");
            assert_eq!(&c[30..34], &[203, 0, 113, 9], "frame {i}: dst IP");
            assert_eq!(
                checksum::of(&c[14..34]),
                0,
                "frame {i}: IPv4 header checksum"
            );
            let mut udp = c[34..].to_vec();
            let sum = u16::from_be_bytes([udp[6], udp[7]]);
            udp[6] = 0;
            udp[7] = 0;
            assert_eq!(
                sum,
                checksum::udp4([198, 18, 0, 1], [203, 0, 113, 9], &udp),
                "frame {i}: UDP checksum"
            );
            assert_eq!(&c[42..], &w[42..], "frame {i}: payload unchanged");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const V6_OLD: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const V6_NEW: &str = "fd00:beef::7:9";

/// An IPv6 frame from `src` to `dst` built by etherparse (its own checksums): UDP,
/// TCP or ICMPv6 echo (`l4` 17, 6, 58), optionally behind VLAN tag 7, to `ip`.
fn v6_frame(src: [u8; 6], dst: [u8; 6], ip: [u8; 16], l4: u8, vlan: bool, len: usize) -> Vec<u8> {
    use etherparse::{PacketBuilder, VlanId};
    let eth = PacketBuilder::ethernet2(src, dst);
    let from = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7)).collect();
    let mut f = Vec::new();
    macro_rules! finish {
        ($ip:expr) => {
            match l4 {
                17 => $ip.udp(5353, 53).write(&mut f, &payload),
                6 => $ip.tcp(40000, 80, 7, 4096).write(&mut f, &payload),
                _ => $ip.icmpv6_echo_request(9, 3).write(&mut f, &payload),
            }
            .expect("etherparse builds the frame")
        };
    }
    if vlan {
        let vid = VlanId::try_new(7).expect("vlan id");
        finish!(eth.single_vlan(vid).ipv6(from, ip, 64));
    } else {
        finish!(eth.ipv6(from, ip, 64));
    }
    f
}

/// IPv4 and IPv6 frames interleaved (one IPv6 frame behind a VLAN tag), 10 ms
/// apart; with `ip`, the IPv6 frames go there.
fn mixed(src: [u8; 6], dst: [u8; 6], ip: [u8; 16]) -> Vec<(u64, Vec<u8>)> {
    [
        frame(src, dst, 200, 1),
        v6_frame(src, dst, ip, 17, false, 100),
        frame(src, dst, 600, 2),
        v6_frame(src, dst, ip, 6, false, 700),
        v6_frame(src, dst, ip, 58, false, 56),
        v6_frame(src, dst, ip, 17, true, 1200),
        frame(src, dst, 1000, 3),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, f)| (i as u64 * 10_000_000, f))
    .collect()
}

/// IPv6 neighbour discovery and MLD the sender's kernel may emit on its own.
fn kernel_chatter(f: &[u8]) -> bool {
    f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && (133..=143).contains(&f[54])
}

#[test]
fn dst_ip_v6_rewrites_only_the_ipv6_frames() {
    let bed = up_with("g6", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("rewrite6");
    let file = dir.join("mixed.pcap");
    let frames = mixed(src, dst, V6_OLD);
    let new: std::net::Ipv6Addr = V6_NEW.parse().expect("v6");
    let want = mixed(src, dst, new.octets());
    write_pcap(&file, &frames);
    let f = file.to_str().expect("utf-8 path");
    for engine in ["afxdp", "xdp-live"] {
        let (fin, got) = replay_captured(
            &bed,
            &dir,
            &format!("rw6-{engine}"),
            &[
                "--pcap", f, "--speed", "4", "--dst-ip", V6_NEW, "--engine", engine,
            ],
        );
        let got: Vec<_> = got
            .into_iter()
            .filter(|(_, c)| !kernel_chatter(c))
            .collect();
        assert_eq!(
            fin["tx_packets"].as_u64(),
            Some(frames.len() as u64),
            "{engine}"
        );
        assert_eq!(got.len(), frames.len(), "{engine}: frames captured");
        for (i, ((_, w), (_, c))) in want.iter().zip(&got).enumerate() {
            // IPv4 frames: the file's bytes; IPv6 ones: what etherparse builds (with
            // its own checksums) for the new address.
            assert_eq!(c, w, "{engine} frame {i}");
            let p = etherparse::SlicedPacket::from_ethernet(c).expect("parses");
            match p.net {
                Some(etherparse::NetSlice::Ipv6(v6)) => {
                    assert_eq!(v6.header().destination_addr(), new, "{engine} frame {i}");
                }
                Some(etherparse::NetSlice::Ipv4(_)) => {
                    assert_eq!(c, &frames[i].1, "{engine} IPv4 frame {i} unchanged");
                }
                _ => panic!("{engine} frame {i}: neither IPv4 nor IPv6"),
            }
        }
        // tshark, its checksum checks on, verifies the transport checksum of every
        // frame to the new address as good.
        let cap = dir.join(format!("rw6-{engine}.pcap"));
        let out = Command::new("tshark")
            .args(["-r", cap.to_str().expect("utf-8"), "-n", "-T", "fields"])
            .args([
                "-o",
                "udp.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
            ])
            .args(["-Y", &format!("ipv6.dst == {V6_NEW}")])
            .args(["-e", "udp.checksum.status", "-e", "tcp.checksum.status"])
            .args(["-e", "icmpv6.checksum.status"])
            .output()
            .expect("tshark");
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let statuses: Vec<String> = text
            .lines()
            .map(|l| {
                l.split('\t')
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        // Status 1 is "Good" (0 bad, 2 unverified).
        assert_eq!(
            statuses,
            ["1", "1", "1", "1"],
            "{engine}: tshark's checksum verdicts"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dst_ip_of_a_version_the_capture_lacks_is_refused() {
    let bed = up_with("gv", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("version");
    let v4 = dir.join("v4.pcap");
    write_pcap(&v4, &sample(src, dst));
    let v6 = dir.join("v6.pcap");
    write_pcap(&v6, &[(0, v6_frame(src, dst, V6_OLD, 17, false, 80))]);
    let p = |x: &Path| x.to_str().expect("utf-8").to_owned();
    for (file, addr, needle) in [
        (p(&v4), V6_NEW, "is IPv6 but"),
        (p(&v6), "203.0.113.9", "is IPv4 but"),
    ] {
        for engine in ["afxdp", "xdp-live"] {
            let out = Command::new(GEN)
                .args(["--netns", &bed.generator().netns, "--iface", "gen0"])
                .args(["--pcap", &file, "--dst-ip", addr, "--engine", engine])
                .output()
                .expect("run gen");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{file} {addr}: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.contains(needle) && err.contains("frame"), "{err}");
            assert!(out.stdout.is_empty());
            assert_eq!(
                prog_name(bed.generator()).as_deref(),
                Some("xdp_pass"),
                "{err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// The IPv6 `--dst-ip` rewrite itself (no namespaces needed): against frames
// etherparse builds for the new address, with its own checksums.

const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn v6_new() -> [u8; 16] {
    V6_NEW.parse::<std::net::Ipv6Addr>().expect("v6").octets()
}

#[test]
fn ipv6_dst_rewrite_matches_a_frame_built_for_the_new_address() {
    for l4 in [17, 6, 58] {
        for vlan in [false, true] {
            let mut f = v6_frame(M1, M2, V6_OLD, l4, vlan, 24);
            assert!(set_ipv6_dst(&mut f, v6_new()));
            assert_eq!(
                f,
                v6_frame(M1, M2, v6_new(), l4, vlan, 24),
                "proto {l4} vlan {vlan}"
            );
        }
    }
}

#[test]
fn each_version_leaves_the_other_alone() {
    let v6 = v6_frame(M1, M2, V6_OLD, 17, true, 24);
    let mut f = v6.clone();
    assert!(!set_ipv4_dst(&mut f, [1, 2, 3, 4]));
    assert_eq!(f, v6);
    let mut v4 = frame(M1, M2, 100, 5);
    v4.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    let mut f = v4.clone();
    assert!(!set_ipv6_dst(&mut f, v6_new()));
    assert_eq!(f, v4);
    let mut short = v6[..50].to_vec();
    assert!(
        !set_ipv6_dst(&mut short, v6_new()),
        "shorter than the IPv6 header"
    );
}

/// `f` (Ethernet + IPv6, no VLAN) with an 8-byte extension header `ext` (its
/// next-header byte set here) put in front of the transport header.
fn with_ext(f: &[u8], kind: u8, mut ext: [u8; 8]) -> Vec<u8> {
    let mut g = f[..54].to_vec();
    ext[0] = g[20];
    g[20] = kind;
    let plen = u16::from_be_bytes([g[18], g[19]]) + 8;
    g[18..20].copy_from_slice(&plen.to_be_bytes());
    g.extend_from_slice(&ext);
    g.extend_from_slice(&f[54..]);
    g
}

#[test]
fn ipv6_extension_headers_are_walked_to_the_checksum() {
    let old = v6_frame(M1, M2, V6_OLD, 17, false, 24);
    let want = v6_frame(M1, M2, v6_new(), 17, false, 24);
    // Hop-by-hop with PadN, and a first fragment: the UDP checksum follows.
    for (kind, ext) in [
        (0, [0, 0, 1, 4, 0, 0, 0, 0]),
        (44, [0, 0, 0, 1, 0, 0, 0, 42]),
    ] {
        let mut f = with_ext(&old, kind, ext);
        assert!(set_ipv6_dst(&mut f, v6_new()));
        assert_eq!(&f[38..54], &v6_new());
        assert_eq!(&f[62..], &want[54..], "ext {kind}: UDP header and payload");
    }
    // A later fragment (offset 8 x 8 bytes), or a routing header with segments
    // left: the address changes, the bytes after the IPv6 header do not.
    for (kind, ext) in [
        (44, [0, 0, 0, 64, 0, 0, 0, 42]),
        (43, [0, 0, 4, 1, 0, 0, 0, 0]),
    ] {
        let mut f = with_ext(&old, kind, ext);
        let before = f.clone();
        assert!(set_ipv6_dst(&mut f, v6_new()));
        assert_eq!(&f[38..54], &v6_new());
        assert_eq!(&f[54..], &before[54..], "ext {kind}: rest unchanged");
    }
}

#[test]
fn an_address_of_a_version_no_frame_has_is_refused() {
    let mut r = Replay {
        path: "v4.pcap".into(),
        frames: vec![frame(M1, M2, 100, 1), frame(M1, M2, 300, 2)],
        offsets_ns: vec![0, 1],
        loops: 1,
        speed: 1.0,
        rate_pps: None,
    };
    let before = r.frames.clone();
    let e = r
        .rewrite(Some([2, 0, 0, 0, 0, 9]), Some(V6_NEW.parse().expect("v6")))
        .expect_err("no IPv6 frame");
    assert_eq!(
        e.to_string(),
        "--dst-ip fd00:beef::7:9 is IPv6 but v4.pcap holds no IPv6 frame (2 IPv4, 0 IPv6, 0 other): give an IPv4 address or leave --dst-ip out"
    );
    assert_eq!(r.frames, before, "nothing rewritten");
    r.frames.push(v6_frame(M1, M2, V6_OLD, 6, false, 24));
    r.rewrite(None, Some(V6_NEW.parse().expect("v6")))
        .expect("one IPv6 frame");
    assert_eq!(&r.frames[..2], &before[..], "IPv4 frames unchanged");
    assert_eq!(r.frames[2], v6_frame(M1, M2, v6_new(), 6, false, 24));
}

fn tmp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn bad_captures_are_one_line_and_nothing_attached() {
    let bed = up_with("gx", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("bad");
    let good = dir.join("good.pcap");
    write_pcap(&good, &sample(src, dst));
    let bytes = std::fs::read(&good).expect("read");
    let truncated = tmp_file(&dir, "cut.pcap", &bytes[..bytes.len() - 100]);
    let garbage = tmp_file(&dir, "garbage.pcap", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[]);
    let big = dir.join("big.pcap");
    write_pcap(
        &big,
        &[
            (0, frame(src, dst, 100, 0)),
            (1000, frame(src, dst, 1600, 1)),
        ],
    );
    let p = |x: &Path| x.to_str().expect("utf-8").to_owned();
    let missing = p(&dir.join("nosuch.pcap"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--pcap".into(), missing.clone()], "cannot open"),
        (vec!["--pcap".into(), p(&garbage)], "not a pcap or pcapng"),
        (vec!["--pcap".into(), p(&truncated)], "truncated"),
        (vec!["--pcap".into(), p(&empty)], "no Ethernet frames"),
        (vec!["--pcap".into(), p(&big)], "frame 2 of"),
        (
            vec![
                "--pcap".into(),
                p(&big),
                "--engine".into(),
                "xdp-live".into(),
            ],
            "frame 2 of",
        ),
        (
            vec![
                "--pcap".into(),
                p(&truncated),
                "--engine".into(),
                "xdp-live".into(),
            ],
            "truncated",
        ),
        (
            vec!["--pcap".into(), p(&good), "--speed".into(), "0".into()],
            "--speed",
        ),
    ];
    for (args, needle) in &cases {
        let out = Command::new(GEN)
            .args(["--netns", &bed.generator().netns, "--iface", "gen0"])
            .args(args)
            .output()
            .expect("run gen");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(
            err.starts_with("error:") && err.contains(needle),
            "{args:?}: `{err}` should say {needle}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert_eq!(
            prog_name(bed.generator()).as_deref(),
            Some("xdp_pass"),
            "{args:?}: nothing attached"
        );
    }
    // The oversize frame's line names its number and length.
    let out = Command::new(GEN)
        .args([
            "--netns",
            &bed.generator().netns,
            "--iface",
            "gen0",
            "--pcap",
            &p(&big),
        ])
        .output()
        .expect("run gen");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("frame 2 of") && err.contains("1600 bytes"),
        "{err}"
    );
    // With a larger MTU the UMEM frame is the limit: 2048 less the kernel's 256
    // bytes of XDP headroom.
    let jumbo = dir.join("jumbo.pcap");
    write_pcap(&jumbo, &[(0, frame(src, dst, 1793, 0))]);
    let ip = |mtu: &str| {
        let st = Command::new("ip")
            .args([
                "-n",
                &bed.generator().netns,
                "link",
                "set",
                "gen0",
                "mtu",
                mtu,
            ])
            .status()
            .expect("ip");
        assert!(st.success(), "mtu {mtu}");
    };
    ip("3000");
    let out = Command::new(GEN)
        .args([
            "--netns",
            &bed.generator().netns,
            "--iface",
            "gen0",
            "--pcap",
            &p(&jumbo),
        ])
        .output()
        .expect("run gen");
    ip("1500");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines().count() == 1
            && err.contains("frame 1 of")
            && err.contains("1793 bytes")
            && err.contains("longer than 1792"),
        "{err}"
    );
    assert_eq!(
        prog_name(bed.generator()).as_deref(),
        Some("xdp_pass"),
        "jumbo: nothing attached"
    );
    // Usage errors (clap, exit 2): --pcap with --profile, --loop without --pcap.
    for args in [
        vec!["--pcap", "x.pcap", "--profile", "min-multi-flow"],
        vec!["--pcap", "x.pcap", "--speed", "2", "--rate", "10"],
    ] {
        let out = Command::new(GEN)
            .args(["--iface", "gen0"])
            .args(&args)
            .output()
            .expect("run gen");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // --loop / --speed without --pcap: clap's usage error too (exit 2), its first
    // line saying what to do.
    for flag in ["--loop", "--speed"] {
        let out = Command::new(GEN)
            .args(["--netns", &bed.generator().netns, "--iface", "gen0"])
            .args(["--profile", "min-multi-flow", flag, "2"])
            .output()
            .expect("run gen");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!(
                "error: {flag} replays a capture: give --pcap FILE, or leave {flag} out"
            )),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcapng_replays_with_its_interface_resolution() {
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let bed = up_with("gn", 1);
    let (src, dst) = macs(&bed);
    let dir = scratch("pcapng");
    let file = dir.join("sample.pcapng");
    let frames = sample(src, dst);
    {
        let f = std::fs::File::create(&file).expect("create");
        let mut w = PcapNgWriter::new(f).expect("pcapng writer");
        // No if_tsresol: microseconds (pcap-file hands the raw value over as ns).
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .expect("idb");
        for (t, data) in &frames {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: std::time::Duration::from_nanos(1_764_000_000_000_000 + t / 1000),
                original_len: data.len() as u32,
                data: data.clone().into(),
                options: vec![],
            })
            .expect("epb");
        }
    }
    let f = file.to_str().expect("utf-8 path");
    let (fin, got) = replay_captured(&bed, &dir, "ng", &["--pcap", f, "--loop", "2"]);
    assert_eq!(
        fin["tx_packets"].as_u64(),
        Some(2 * frames.len() as u64),
        "{fin}"
    );
    assert_eq!(got.len(), 2 * frames.len());
    for (i, (_, c)) in got.iter().enumerate() {
        assert_eq!(c, &frames[i % frames.len()].1, "captured frame {i}");
    }
    // Recorded 200 ms per pass plus a 40 ms mean gap: 440 ms first to last at
    // speed 1 (microsecond timestamps read as microseconds, not ns or ms).
    let span = (got[got.len() - 1].0 - got[0].0) as f64 / 1e9;
    assert!((0.35..1.5).contains(&span), "pcapng span {span} s");
    let _ = std::fs::remove_dir_all(&dir);
}
