//! Live on the lab (root): UDP frames and probe frames sent from the generator namespace
//! are counted by `sink` on the monitor port; the pcapng it writes (on Ctrl-C) is read by
//! tshark with the same count and nanosecond timestamps; probe loss and latency are
//! measured; bad input is one clear line.

use std::io::{BufRead, BufReader, Lines};
use std::net::UdpSocket;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use profiles::wire::probe;
use records::Kind;
use records::sink::{Final, Interval};
use testbed::{Testbed, UpOptions, unique_name};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sink")
}

/// How long sink may take to catch up with what was sent. Generous: on a shared,
/// loaded machine sink may not be scheduled for a long time; on success the wait
/// ends as soon as the interval record shows everything.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Reads sink's JSON lines until an interval record satisfies `done` (sink stops only
/// on SIGINT and does not drain its ring then, so the test waits until sink has seen
/// everything instead of sleeping a fixed time). Panics with the last record after
/// `CATCH_UP`.
fn wait_for_interval(lines: &mut Lines<BufReader<ChildStdout>>, done: impl Fn(&Interval) -> bool) {
    let deadline = Instant::now() + CATCH_UP;
    let mut last = String::new();
    while Instant::now() < deadline {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("sink ended early; last line: {last}"))
            .expect("utf8");
        let (kind, v) = records::kind_of(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if kind == Kind::Interval {
            let i: Interval =
                records::from_value(v, "sink interval").unwrap_or_else(|e| panic!("{e}: {line}"));
            if done(&i) {
                return;
            }
        }
        last = line;
    }
    panic!("sink did not catch up within {CATCH_UP:?}; last record: {last}");
}

/// sink's final record: the last line, read as its type.
fn final_record(lines: &[String]) -> Final {
    let last = lines.last().expect("a final line");
    records::last_of(last, Kind::Final, "sink final")
        .unwrap_or_else(|e| panic!("{e}: {last}"))
        .unwrap_or_else(|| panic!("not a final record: {last}"))
}

/// Receives `n` datagrams on `sock` (a sinkhole on the DUT), so the sender never
/// runs far ahead of the path through the switch and its mirror to mon0.
fn drain(sock: &UdpSocket, n: usize) {
    let mut buf = [0u8; 64];
    for i in 0..n {
        sock.recv(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of {n} did not reach the DUT: {e}"));
    }
}

#[test]
fn counts_frames_and_writes_pcapng_that_tshark_reads() {
    count_and_write("af-packet");
}

#[test]
fn af_xdp_backend_counts_and_writes_too() {
    count_and_write("af-xdp");
}

fn count_and_write(backend: &str) {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("skl"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("monitor").netns.clone();
    // Bound sockets on the DUT so no ICMP port-unreachable comes back; the test reads
    // them to pace its sending by what arrived.
    let sinkhole = bed
        .dut()
        .run_in(|| UdpSocket::bind("198.18.0.2:9000"))
        .expect("netns")
        .expect("bind");
    let probe_hole = bed
        .dut()
        .run_in(|| UdpSocket::bind("198.18.0.2:9001"))
        .expect("netns")
        .expect("bind");
    for s in [&sinkhole, &probe_hole] {
        s.set_read_timeout(Some(CATCH_UP)).expect("timeout");
    }
    let client = bed
        .r#gen()
        .run_in(|| UdpSocket::bind("198.18.0.1:7000"))
        .expect("netns")
        .expect("bind");

    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("cap.pcapng");
    let mut child = Command::new(bin())
        .args([
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--backend",
            backend,
            "--output",
            "json",
            "--interval",
            "200ms",
        ])
        .arg("--write")
        .arg(&pcap)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sink");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("line").expect("utf8");
    assert!(ready.contains("\"ready\""), "{ready}");

    // 300 plain datagrams, then 200 probes of stream 7 with counters 0..210 minus 10.
    for i in 0..300u32 {
        client
            .send_to(&i.to_be_bytes(), "198.18.0.2:9000")
            .expect("send");
        if i % 50 == 49 {
            drain(&sinkhole, 50);
        }
    }
    let send_probe = |stream: u8, counter: u64| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        let mut pl = [0u8; probe::LEN];
        probe::Repr {
            stream,
            counter,
            tx_ns: now,
        }
        .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
        client.send_to(&pl, "198.18.0.2:9001").expect("send probe");
    };
    let mut sent_probes = 0;
    for c in 0..210u64 {
        if c % 21 == 5 {
            continue; // "lost"
        }
        send_probe(7, c);
        sent_probes += 1;
        if sent_probes % 50 == 0 {
            drain(&probe_hole, 50);
        }
    }
    // Stream 8: 25 blocks of four counters sent as b, b+2, b+1, b+3 (one late
    // arrival each, RFC 4737 extent 1) and every tenth counter sent twice.
    for b in (0..100u64).step_by(4) {
        for c in [b, b + 2, b + 1, b + 3] {
            send_probe(8, c);
            sent_probes += 1;
            if c % 10 == 0 {
                send_probe(8, c);
                sent_probes += 1;
            }
            if sent_probes % 50 == 0 {
                drain(&probe_hole, 50);
            }
        }
    }
    drain(&probe_hole, sent_probes as usize % 50);
    // Everything reached the DUT; SIGINT once sink has taken it all off its ring.
    wait_for_interval(&mut lines, |v| {
        v.packets >= 300 + sent_probes && v.probe_received == sent_probes
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("wait").success());
    drop((sinkhole, probe_hole));
    let fin = final_record(&rest);
    assert_eq!(fin.kind, Kind::Final);
    assert_eq!(fin.clock, "sw");
    let packets = fin.packets;
    assert!(packets >= 300 + sent_probes, "{fin:?}");
    assert_eq!(fin.drops.ring, 0);
    let plain = fin
        .top_flows
        .iter()
        .find(|f| f.dport == 9000)
        .expect("the plain flow");
    assert_eq!(plain.packets, 300);
    assert_eq!(plain.src, std::net::IpAddr::from([198, 18, 0, 1]));
    assert_eq!(fin.probe.received, sent_probes);
    assert_eq!(fin.probe.lost, 10, "{fin:?}");
    assert_eq!(fin.probe.reordered, 25);
    assert_eq!(fin.probe.duplicates, 10);
    // Per stream: what was sent, arrival order kept by the path.
    let streams: Vec<_> = fin
        .probe
        .per_stream
        .iter()
        .map(|s| {
            (
                s.stream,
                s.received,
                s.expected,
                s.lost,
                s.duplicates,
                s.reordered,
                s.reorder_extent_max,
            )
        })
        .collect();
    assert_eq!(
        streams,
        vec![(7, 200, 210, 10, 0, 0, 0), (8, 110, 100, 0, 10, 25, 1)],
        "{fin:?}"
    );
    for s in &fin.probe.per_stream {
        let j = s.jitter_ns.expect("jitter from software stamps");
        assert!(j > 0.0 && j < 1e9, "{s:?}");
    }
    let lmin = fin.probe.latency_ns.min.expect("latency");
    let lmax = fin.probe.latency_ns.max.expect("latency");
    assert!(lmin > 0 && lmax < 1_000_000_000, "{fin:?}");
    assert_eq!(fin.written, Some(packets));
    let stamped = if backend == "af-packet" {
        fin.timestamps.sw
    } else {
        fin.timestamps.copy
    };
    assert_eq!(stamped, packets, "every frame carries a software stamp");
    assert_eq!(fin.backend, backend);

    // tshark reads the file: same count, nanosecond timestamps.
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len() as u64, packets);
    assert_eq!(rows.iter().filter(|r| r.ends_with("\t9000")).count(), 300);
    let frac = rows[0]
        .split('\t')
        .next()
        .and_then(|t| t.split('.').nth(1))
        .expect("fraction");
    assert_eq!(frac.len(), 9, "nanosecond resolution: {}", rows[0]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let t0: f64 = rows[0]
        .split('\t')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("time");
    assert!(
        (now - t0).abs() < 60.0,
        "software stamps are CLOCK_REALTIME"
    );
    assert!(
        std::fs::read_dir(dir.path()).expect("ls").count() == 1,
        "no temporary file left"
    );
    let prog = Command::new("ip")
        .args(["-n", &mon, "-d", "link", "show", "mon0"])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&prog.stdout).contains("name xdp_pass"),
        "placeholder XDP program in place"
    );
}

fn one_line(args: &[&str], needle: &str) {
    let out = Command::new(bin()).args(args).output().expect("run sink");
    assert!(!out.status.success(), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
}

#[test]
fn bad_input_is_one_clear_line() {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("skb"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("monitor").netns.clone();
    one_line(
        &["--netns", &mon, "--iface", "nosuch0"],
        "interface \"nosuch0\" not found",
    );
    one_line(
        &["--netns", &mon, "--iface", "mon0", "--clock", "hw"],
        "mon0: the NIC cannot timestamp in hardware",
    );
    one_line(
        &[
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--write",
            "/nonexistent/dir/x.pcapng",
        ],
        "cannot write capture file",
    );
    one_line(
        &["--netns", "no-such-netns-xyz", "--iface", "mon0"],
        "no-such-netns-xyz",
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "--iface",
            "lo",
        ])
        .output()
        .expect("setpriv");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root or CAP_NET_RAW"));
}

/// Frames that mon0 received, from /proc/net/dev in the monitor namespace.
fn mon0_rx_packets(netns: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat", "/proc/net/dev"])
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("mon0:")
                .map(|r| r.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .flatten()
        .expect("mon0 in /proc/net/dev")
}

#[test]
fn a_stalled_af_xdp_reader_loses_nothing_silently() {
    stalled_reader("af-xdp");
}

#[test]
fn a_stalled_af_packet_reader_loses_nothing_silently() {
    stalled_reader("af-packet");
}

/// sink is stopped with SIGSTOP while 40,000 datagrams arrive, more than its buffer
/// holds (af-xdp: 16384 UMEM frames; af-packet: a 2 MiB ring): the frames it could not
/// take must all be counted as drops, so received + drops equals what mon0 received.
fn stalled_reader(backend: &str) {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("sks"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("monitor").netns.clone();
    let sinkhole = bed
        .dut()
        .run_in(|| UdpSocket::bind("198.18.0.2:9000"))
        .expect("netns")
        .expect("bind");
    let client = bed
        .r#gen()
        .run_in(|| UdpSocket::bind("198.18.0.1:7001"))
        .expect("netns")
        .expect("bind");
    let before = mon0_rx_packets(&mon);
    let mut child = Command::new(bin())
        .args([
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--backend",
            backend,
            "--ring-blocks",
            "2",
            "--output",
            "json",
            "--interval",
            "100ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sink");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(
        lines
            .next()
            .expect("line")
            .expect("utf8")
            .contains("\"ready\"")
    );
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let payload = [0u8; 18];
    let mut sent = 0u64;
    for _ in 0..40_000 {
        if client.send_to(&payload, "198.18.0.2:9000").is_ok() {
            sent += 1;
        }
    }
    // Every datagram on the wire has reached mon0 once its counter stops moving
    // (the path is drained in softirq context, possibly late on a loaded machine).
    let mut arrived = mon0_rx_packets(&mon) - before;
    let deadline = Instant::now() + CATCH_UP;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = mon0_rx_packets(&mon) - before;
        if now == arrived && arrived >= sent || Instant::now() > deadline {
            break;
        }
        arrived = now;
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // sink does not drain its ring on SIGINT: wait until it has accounted for every
    // frame (taken or counted as a drop), however long a loaded machine makes that.
    wait_for_interval(&mut lines, |v| {
        v.packets + v.drops.kernel + v.drops.ring >= arrived
    });
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("wait").success());
    drop(sinkhole);
    let arrived = mon0_rx_packets(&mon) - before;
    let fin = final_record(&rest);
    let packets = fin.packets;
    let drops = fin.drops.kernel + fin.drops.ring;
    assert!(arrived >= sent, "mon0 saw {arrived} of {sent}");
    assert!(drops > 0, "the stall overflowed the UMEM: {fin:?}");
    assert_eq!(
        packets + drops,
        arrived,
        "every frame mon0 received is either counted or a counted drop: {fin:?}"
    );
}

/// Kills sink (SIGKILL) if the test fails before it was waited for, so a failed test
/// leaves no process holding the test's output pipe.
struct Reap(Option<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: signalling our own child, not yet waited for.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// `gen --stamp` sending `min-multi-flow-v6` (afxdp engine) from the generator: sink on
/// the monitor port counts every frame as UDP over IPv6 in 256 flows and one probe
/// stream without loss, and its packet count is what mon0's own counter and gen's
/// transmit count say.
#[test]
fn counts_gen_probe_streams_over_ipv6() {
    const FRAMES: u64 = 3000;
    let bed = Testbed::up(&UpOptions {
        name: unique_name("sk6"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("monitor").netns.clone();
    let gen_bin = testbed::binaries::locate("gen").expect("gen beside the test binary");
    let mut child = Command::new(bin())
        .args([
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--output",
            "json",
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sink");
    let mut reap = Reap(Some(child.id()));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("line").expect("utf8");
    assert!(ready.contains("\"ready\""), "{ready}");
    let before = mon0_rx_packets(&mon);
    let dut_mac = testbed::format_mac(&testbed::DUT_MAC);
    // 128 bytes: room for the probe payload after the IPv6/UDP headers.
    let out = Command::new(&gen_bin)
        .args([
            "--netns",
            &bed.r#gen().netns,
            "--iface",
            "gen0",
            "--profile",
            "min-multi-flow-v6",
            "--engine",
            "afxdp",
            "--stamp",
            "--dst-mac",
            &dut_mac,
            "--frame-size",
            "128",
            "--count",
            &FRAMES.to_string(),
            "--rate",
            "20000",
            "--output",
            "json",
        ])
        .output()
        .expect("run gen");
    assert!(
        out.status.success(),
        "gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gen_out = String::from_utf8_lossy(&out.stdout);
    let gen_fin: records::generator::Final = records::last_of(&gen_out, Kind::Final, "gen final")
        .expect("gen final record")
        .expect("a final record");
    assert_eq!(gen_fin.tx_packets, FRAMES, "{gen_out}");
    wait_for_interval(&mut lines, |v| v.packets >= FRAMES);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().expect("wait").success());
    reap.0 = None;
    let fin = final_record(&rest);
    let arrived = mon0_rx_packets(&mon) - before;
    assert_eq!(
        arrived, FRAMES,
        "mon0's counter: every frame gen sent, nothing else"
    );
    assert_eq!(fin.packets, arrived, "{fin:?}");
    assert_eq!(fin.drops.ring + fin.drops.kernel, 0);
    assert_eq!(fin.non_ip_udp, 0, "{fin:?}");
    assert_eq!(fin.flows, 256, "{fin:?}");
    assert_eq!(fin.top_flows.len(), 10);
    for f in &fin.top_flows {
        // Round robin over 256 flows: the busiest have one frame more than the rest.
        assert_eq!(f.packets, FRAMES.div_ceil(256), "{f:?}");
        let std::net::IpAddr::V6(src) = f.src else {
            panic!("IPv6 source expected: {f:?}");
        };
        assert_eq!(src.segments()[..2], [0x2001, 0xdb8], "{f:?}");
        assert_eq!(
            f.dst,
            "2001:db8::2".parse::<std::net::IpAddr>().expect("addr")
        );
    }
    assert_eq!(fin.probe.received, FRAMES, "{fin:?}");
    assert_eq!(fin.probe.streams, 1);
    assert_eq!(
        (fin.probe.lost, fin.probe.duplicates, fin.probe.reordered),
        (0, 0, 0)
    );
    assert_eq!(fin.probe.per_stream[0].expected, FRAMES);
    assert_eq!(fin.probe.latency_ns.count, FRAMES);
}
