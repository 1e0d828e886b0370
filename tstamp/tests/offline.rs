//! Offline: captures built here with known timestamps give exactly the expected response
//! times, losses and duplicates in every format; the JSON, CSV and HDR log outputs agree;
//! malformed and cut captures are counted, never a panic; bad input is one clear line.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use tstamp::cli::{Args, run};
use tstamp::synth::{Workload, dns_frame, dns_frame_between, write_pcap, write_pcapng};

fn workload() -> Workload {
    Workload {
        pairs: 5000,
        t0_ns: 1_700_000_000_000_000_000,
        gap_ns: 2_000,
        lose_every: 10,
    }
}

/// Expected (matched, lost, min, max, mean) straight from the workload's definition.
fn expected(w: &Workload) -> (u64, u64, u64, u64, f64) {
    let rtts: Vec<u64> = (0..w.pairs)
        .filter(|&i| w.answered(i))
        .map(|i| w.rtt_ns(i))
        .collect();
    let sum: u64 = rtts.iter().sum();
    (
        rtts.len() as u64,
        w.pairs - rtts.len() as u64,
        *rtts.iter().min().unwrap_or(&0),
        *rtts.iter().max().unwrap_or(&0),
        sum as f64 / rtts.len() as f64,
    )
}

fn args(list: &[&str]) -> Args {
    let mut v = vec!["tstamp"];
    v.extend_from_slice(list);
    Args::try_parse_from(v).expect("arguments parse")
}

fn write_file(path: &Path, kind: &str, w: &Workload) {
    let f = BufWriter::new(std::fs::File::create(path).expect("create"));
    match kind {
        "pcap-ns" => write_pcap(f, true, |g| w.for_each(g)).expect("pcap"),
        "pcap-us" => write_pcap(f, false, |g| w.for_each(g)).expect("pcap"),
        "pcapng-ns" => write_pcapng(f, |g| w.for_each(g)).expect("pcapng"),
        "pcapng-us" => {
            // pcap-file's writer, IDB without if_tsresol: the default 6 (µs) applies.
            let mut pw = PcapNgWriter::new(f).expect("pcapng");
            pw.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![],
            })
            .expect("idb");
            w.for_each(|ts, data| {
                pw.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: std::time::Duration::from_nanos(ts / 1000),
                    original_len: data.len() as u32,
                    data: data.to_vec().into(),
                    options: vec![],
                })
                .expect("epb");
            });
        }
        _ => unreachable!(),
    }
}

#[test]
fn every_format_gives_the_exact_answer_and_outputs_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workload();
    let (matched, lost, min, max, mean) = expected(&w);
    for kind in ["pcap-ns", "pcap-us", "pcapng-ns", "pcapng-us"] {
        let cap = dir.path().join(format!("c-{kind}"));
        write_file(&cap, kind, &w);
        let hlog = dir.path().join(format!("{kind}.hlog"));
        let csv = dir.path().join(format!("{kind}.csv"));
        let svg = dir.path().join(format!("{kind}.svg"));
        let fin = run(&args(&[
            "--read",
            cap.to_str().expect("utf8"),
            "--output",
            "json",
            "--interval",
            "2ms",
            "--hdrh",
            hlog.to_str().expect("utf8"),
            "--hist-csv",
            csv.to_str().expect("utf8"),
            "--plot",
            svg.to_str().expect("utf8"),
        ]))
        .expect("run");
        assert_eq!(fin.requests, w.pairs, "{kind}");
        assert_eq!(fin.responses, matched, "{kind}");
        assert_eq!(
            (
                fin.matched,
                fin.lost,
                fin.duplicates,
                fin.unmatched_responses,
                fin.evicted
            ),
            (matched, lost, 0, 0, 0),
            "{kind}"
        );
        assert_eq!(fin.rtt_ns.min, Some(min), "{kind}");
        assert_eq!(fin.rtt_ns.max, Some(max), "{kind}");
        assert!(
            (fin.rtt_ns.mean.expect("mean") - mean).abs() < 1e-6,
            "{kind}"
        );
        assert_eq!(fin.rcodes.get("NXDOMAIN"), Some(&matched));
        assert_eq!(fin.clock, "file");

        // CSV: counts add up to matched; values within the histogram's precision.
        let text = std::fs::read_to_string(&csv).expect("csv");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("value,count"));
        let mut total = 0u64;
        let mut from_csv = Histogram::<u64>::new(3).expect("h");
        for l in lines {
            let (v, c) = l.split_once(',').expect("two columns");
            let (v, c): (u64, u64) = (v.parse().expect("value"), c.parse().expect("count"));
            assert!(v >= min * 999 / 1000 && v <= max, "{v}");
            from_csv.record_n(v, c).expect("record");
            total += c;
        }
        assert_eq!(total, matched);

        // HDR log: the interval histograms add up to the same distribution.
        let log = std::fs::read(&hlog).expect("hlog");
        let mut merged = Histogram::<u64>::new(3).expect("h");
        let mut intervals = 0;
        let mut d = Deserializer::new();
        for e in IntervalLogIterator::new(&log) {
            if let Ok(LogEntry::Interval(ih)) = e {
                let raw = base64_decode(ih.encoded_histogram());
                let h: Histogram<u64> = d
                    .deserialize(&mut raw.as_slice())
                    .expect("V2 deflate histogram");
                merged.add(&h).expect("add");
                intervals += 1;
            }
        }
        assert!(intervals >= 5, "{kind}: {intervals} intervals");
        assert_eq!(merged.len(), matched);
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(
                merged.highest_equivalent(merged.value_at_quantile(q)),
                merged.highest_equivalent(from_csv.value_at_quantile(q)),
                "{kind} q{q}"
            );
        }
        assert_eq!(Some(merged.value_at_quantile(0.99)), fin.rtt_ns.p99);
        let svg_text = std::fs::read_to_string(&svg).expect("svg");
        assert!(svg_text.starts_with("<svg") && svg_text.contains("by percentile"));
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for ch in bytes.chunks(4) {
        let mut v = 0u32;
        for (i, &c) in ch.iter().enumerate() {
            v |= table(c) << (18 - 6 * i);
        }
        let n = ch.len() * 6 / 8;
        for i in 0..n {
            out.push((v >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Writes `frames` (timestamp ns, bytes), in that order, as nanosecond pcap to `path`.
fn write_frames_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    write_pcap(
        BufWriter::new(std::fs::File::create(path).expect("create")),
        true,
        |f| {
            for (ts, d) in frames {
                f(*ts, d);
            }
        },
    )
    .expect("write");
}

#[test]
fn duplicates_unmatched_and_timeouts_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.pcap");
    let t = 1_000_000_000u64;
    let frames: Vec<(u64, Vec<u8>)> = vec![
        (t, dns_frame(1, false, "a.example", 1000, 0)),
        (t + 10, dns_frame(1, false, "a.example", 1000, 0)), // retransmission: duplicate
        (t + 500, dns_frame(1, true, "a.example", 1000, 0)), // rtt 500 from the first
        (t + 600, dns_frame(1, true, "a.example", 1000, 0)), // second answer: duplicate
        (t + 700, dns_frame(2, true, "b.example", 1000, 2)), // no request: unmatched
        (t + 800, dns_frame(3, false, "c.example", 1000, 0)),
        (t + 900, dns_frame(4, false, "d.example", 1000, 0)),
        (
            t + 800 + 2_000_000,
            dns_frame(4, true, "d.example", 1000, 0),
        ), // after c timed out
        (
            t + 900 + 1_500_000,
            dns_frame(3, true, "c.example", 1000, 0),
        ), // too late: unmatched
        (
            t + 900 + 3_000_000,
            dns_frame(5, false, "e.example", 1000, 0),
        ), // never answered
    ];
    write_frames_pcap(&path, &frames);
    // Timeout 1 ms: request 3 (t+800) has timed out when its answer comes at t+1.5009 ms.
    // Request 4 is answered after 2 ms - 100 ns... also > 1 ms: it has timed out too.
    let fin = run(&args(&[
        "--read",
        path.to_str().expect("utf8"),
        "--timeout",
        "1ms",
        "--output",
        "json",
    ]))
    .expect("run");
    assert_eq!(fin.requests, 5);
    assert_eq!(fin.responses, 5);
    assert_eq!(fin.matched, 1);
    assert_eq!(fin.duplicates, 2);
    assert_eq!(fin.unmatched_responses, 3);
    assert_eq!(fin.lost, 3); // 3, 4 timed out; 5 unanswered at the end
    assert_eq!(fin.rtt_ns.min, Some(500));
    assert_eq!(fin.rtt_ns.max, Some(500));
    assert_eq!(fin.rcodes.get("NOERROR"), Some(&1));
    // With a longer timeout, 3 and 4 match.
    let fin = run(&args(&[
        "--read",
        path.to_str().expect("utf8"),
        "--timeout",
        "5ms",
        "--output",
        "json",
    ]))
    .expect("run");
    assert_eq!((fin.matched, fin.lost, fin.unmatched_responses), (3, 1, 1));
    assert_eq!(fin.rtt_ns.max, Some(2_000_000 - 100));
    // A tiny pending table evicts (counted), never drops silently.
    let fin = run(&args(&[
        "--read",
        path.to_str().expect("utf8"),
        "--timeout",
        "5ms",
        "--max-pending",
        "1",
        "--output",
        "json",
    ]))
    .expect("run");
    assert!(fin.evicted >= 1);
    // Every request but the one retransmission ends exactly one way.
    assert_eq!(fin.matched + fin.lost + fin.evicted, fin.requests - 1);
}

#[test]
fn dns_over_ipv6_matches_and_never_pairs_across_versions() {
    use std::net::{IpAddr, Ipv6Addr};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v6.pcap");
    let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let server = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3));
    let v6 = |id: u16, resp: bool, name: &str| {
        dns_frame_between(client, server, id, resp, name, 4000, 0)
    };
    let t = 1_000_000_000u64;
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    // Queries 1..=6 over IPv6, 10 µs apart; i answered after i µs, except 4 (lost);
    // 2 answered twice (a duplicate).
    for i in 1..=6u16 {
        let name = format!("q{i}.v6.example");
        let ts = t + u64::from(i) * 10_000;
        frames.push((ts, v6(i, false, &name)));
        if i != 4 {
            frames.push((ts + u64::from(i) * 1_000, v6(i, true, &name)));
        }
        if i == 2 {
            frames.push((ts + 2_500, v6(i, true, &name)));
        }
    }
    // Same ID, name and port over IPv4 and over IPv6: the IPv6 answer does not answer
    // the IPv4 query (lost; unmatched), nor does an answer from another server.
    frames.push((t + 100_000, dns_frame(9, false, "x.example", 4000, 0)));
    frames.push((t + 101_000, v6(9, true, "x.example")));
    frames.push((t + 102_000, v6(8, false, "y.example")));
    frames.push((
        t + 103_000,
        dns_frame_between(client, other, 8, true, "y.example", 4000, 0),
    ));
    // A query behind a hop-by-hop header: not parsed, skipped as not UDP.
    let hbh = profiles::wire::udp::with_hop_by_hop(&v6(7, false, "h.example")).expect("IPv6");
    frames.push((t + 104_000, hbh));
    frames.sort_by_key(|f| f.0);
    write_frames_pcap(&path, &frames);
    let fin = run(&args(&[
        "--read",
        path.to_str().expect("utf8"),
        "--output",
        "json",
    ]))
    .expect("run");
    assert_eq!(fin.frames, frames.len() as u64);
    assert_eq!((fin.requests, fin.responses), (8, 8));
    assert_eq!(
        (
            fin.matched,
            fin.lost,
            fin.duplicates,
            fin.unmatched_responses
        ),
        (5, 3, 1, 2)
    );
    assert_eq!((fin.rtt_ns.min, fin.rtt_ns.max), (Some(1_000), Some(6_000)));
    assert_eq!(fin.rtt_ns.mean, Some(17_000.0 / 5.0));
    assert_eq!(fin.skipped.not_udp, 1);
    assert_eq!(fin.skipped.not_ip + fin.skipped.malformed, 0);
}

#[test]
fn seq_mode_over_ipv6() {
    use profiles::wire::probe;
    let frame = |counter: u64, hop: u8| {
        let mut pl = [0u8; probe::LEN];
        probe::Repr {
            stream: 4,
            counter,
            tx_ns: 0,
        }
        .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
        let mut src = [0u8; 16];
        src[..2].copy_from_slice(&[0xfd, 0x00]);
        src[15] = 1;
        let mut dst = src;
        dst[15] = 2;
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, hop], [2, 0, 0, 0, 0, 9])
            .ipv6(src, dst, 64 - hop)
            .udp(4000, 5000)
            .write(&mut out, &pl)
            .expect("frame");
        out
    };
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    for c in 0..6u64 {
        let t = 1_000_000 + c * 10_000;
        frames.push((t, frame(c, 1)));
        if c != 2 {
            frames.push((t + 4_000, frame(c, 2)));
        }
    }
    let fin = seq_mode_on(frames);
    assert_eq!((fin.requests, fin.matched, fin.lost), (6, 5, 1));
    assert_eq!((fin.rtt_ns.min, fin.rtt_ns.max), (Some(4_000), Some(4_000)));
    assert_eq!(fin.streams.len(), 1);
    assert_eq!((fin.streams[0].stream, fin.streams[0].lost), (4, 1));
}

#[test]
fn cut_and_garbage_captures_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = Workload {
        pairs: 20,
        t0_ns: 5_000_000_000,
        gap_ns: 1000,
        lose_every: 0,
    };
    for kind in ["pcap-ns", "pcapng-ns"] {
        let full = dir.path().join(format!("full-{kind}"));
        write_file(&full, kind, &w);
        let bytes = std::fs::read(&full).expect("read");
        let cut = dir.path().join("cut");
        let mut truncated = 0;
        for n in (0..bytes.len()).step_by(7) {
            std::fs::write(&cut, &bytes[..n]).expect("write");
            match run(&args(&[
                "--read",
                cut.to_str().expect("utf8"),
                "--output",
                "json",
            ])) {
                Ok(fin) => {
                    assert!(fin.matched <= 20 && fin.frames <= 40, "{kind} at {n}");
                    assert_eq!(fin.matched + fin.lost, fin.requests, "{kind} at {n}");
                    truncated += u32::from(fin.capture_truncated);
                }
                Err(e) => assert!(n < 64, "{kind} at {n}: {e:#}"),
            }
        }
        assert!(truncated > 10, "{kind}: cuts inside records are reported");
        // Garbage after a valid header: skipped or truncated, no panic.
        let mut g = bytes[..bytes.len().min(120)].to_vec();
        g.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        std::fs::write(&cut, &g).expect("write");
        let _ = run(&args(&[
            "--read",
            cut.to_str().expect("utf8"),
            "--output",
            "json",
        ]));
    }
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tstamp"))
}

fn one_line_error(args: &[&str], needle: &str) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("spawn tstamp");
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{args:?}: {err}"
    );
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "this is not a capture\n").expect("write");
    one_line_error(
        &["--read", txt.to_str().expect("utf8")],
        "not a pcap or pcapng capture",
    );
    one_line_error(
        &["--read", "/nonexistent/x.pcap"],
        "cannot open /nonexistent/x.pcap",
    );
    let cap = dir.path().join("ok.pcap");
    write_file(
        &cap,
        "pcap-ns",
        &Workload {
            pairs: 3,
            t0_ns: 1,
            gap_ns: 1,
            lose_every: 0,
        },
    );
    one_line_error(
        &[
            "--read",
            cap.to_str().expect("utf8"),
            "--hist-csv",
            "/nonexistent/dir/h.csv",
        ],
        "cannot write histogram CSV",
    );
    one_line_error(&["--iface", "nosuchif0"], "nosuchif0");
    assert!(std::fs::read_dir(dir.path()).expect("ls").all(|e| {
        !e.expect("entry")
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")
    }));
}

#[test]
fn seq_mode_pairs_first_and_second_sightings() {
    // A forwarding DUT: each probe seen on its way in and again on its way out, 3 µs later;
    // probe 3 never comes back, probe 5 comes back twice.
    let frame = |counter: u64, hop: u8| probe_frame(2, counter, hop);
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    for c in 0..10u64 {
        let t = 1_000_000 + c * 10_000;
        frames.push((t, frame(c, 1)));
        if c != 3 {
            frames.push((t + 3_000, frame(c, 2)));
        }
        if c == 5 {
            frames.push((t + 4_000, frame(c, 2)));
        }
    }
    let fin = seq_mode_on(frames);
    assert_eq!(
        (fin.requests, fin.matched, fin.lost, fin.duplicates),
        (10, 9, 1, 1)
    );
    assert_eq!(
        (fin.rtt_ns.min, fin.rtt_ns.max, fin.rtt_ns.mean),
        (Some(3_000), Some(3_000), Some(3_000.0))
    );
    assert!(fin.rcodes.is_empty());
}

#[test]
fn seq_mode_reports_each_stream_as_it_came_back() {
    let frame = probe_frame;
    // Stream 1: requests every 10 µs; the response of 2 overtakes that of 1 (1 takes
    // 15 µs, the others 2 µs), 4 never comes back, 6 comes back twice.
    // Stream 3: in order, every response 5 µs.
    let mut frames: Vec<(u64, Vec<u8>)> = Vec::new();
    for c in 0..8u64 {
        let t = 1_000_000 + c * 10_000;
        frames.push((t, frame(1, c, 1)));
        frames.push((t + 1, frame(3, c, 1)));
        let rtt = if c == 1 { 15_000 } else { 2_000 };
        if c != 4 {
            frames.push((t + rtt, frame(1, c, 2)));
        }
        if c == 6 {
            frames.push((t + rtt + 100, frame(1, c, 2)));
        }
        frames.push((t + 1 + 5_000, frame(3, c, 2)));
    }
    let fin = seq_mode_on(frames);
    assert_eq!(
        (fin.requests, fin.matched, fin.lost, fin.duplicates),
        (16, 15, 1, 1)
    );
    let got: Vec<_> = fin
        .streams
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
    // Stream 1 came back as 0 2 1 3 5 6 6 7: 1 late (extent 1), 4 missing, 6 twice.
    assert_eq!(
        got,
        vec![(1, 8, 8, 1, 1, 1, 1), (3, 8, 8, 0, 0, 0, 0)],
        "{:?}",
        fin.streams
    );
    // RFC 3550 over the response times 2, 2, 15, 2, 2, 2, 2 µs (arrival order 0 2 1 3
    // 5 6 7): |D| = 0, 13000, 13000, 0, 0, 0.
    let mut j = 0.0f64;
    for d in [0.0, 13_000.0, 13_000.0, 0.0, 0.0, 0.0] {
        j += (d - j) / 16.0;
    }
    let got_j = fin.streams[0].jitter_ns.expect("jitter");
    assert!((got_j - j).abs() < 1e-6, "{got_j} vs {j}");
    assert_eq!(fin.streams[1].jitter_ns, Some(0.0));
}

/// A probe frame of `stream`/`counter`; `hop` 1 on the way in, 2 on the way out.
fn probe_frame(stream: u8, counter: u64, hop: u8) -> Vec<u8> {
    use profiles::wire::probe;
    let mut pl = [0u8; probe::LEN];
    probe::Repr {
        stream,
        counter,
        tx_ns: 0,
    }
    .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, hop], [2, 0, 0, 0, 0, 9])
        .ipv4([198, 18, 0, 1], [198, 18, 1, 1], 64 - hop)
        .udp(4000, 5000);
    let mut out = Vec::new();
    b.write(&mut out, &pl).expect("frame");
    out
}

/// tstamp --match seq over a pcapng of `frames` (timestamp ns, bytes), in time order.
fn seq_mode_on(mut frames: Vec<(u64, Vec<u8>)>) -> tstamp::FinalRecord {
    frames.sort_by_key(|f| f.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seq.pcapng");
    write_pcapng(
        BufWriter::new(std::fs::File::create(&path).expect("create")),
        |f| {
            for (ts, d) in &frames {
                f(*ts, d);
            }
        },
    )
    .expect("write");
    run(&args(&[
        "--read",
        path.to_str().expect("utf8"),
        "--match",
        "seq",
        "--output",
        "json",
    ]))
    .expect("run")
}
