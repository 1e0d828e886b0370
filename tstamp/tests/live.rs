//! Live on the lab (root): DNS queries from the generator namespace over an ordinary UDP
//! socket to a small user-space NXDOMAIN responder in the DUT namespace; `tstamp` on the
//! monitor port (`--netns`) matches every request, loses none, reports positive and
//! plausible response times and the counts that were sent; Ctrl-C (SIGINT) still writes
//! every output. Also: `--clock hw` on veth fails with one line naming the interface.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testbed::{Testbed, UpOptions, unique_name};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tstamp")
}

/// How long a step may take on a shared, loaded machine (a stalled responder thread, a
/// tstamp that is not scheduled). Waits end as soon as the step is done.
const GENEROUS: Duration = Duration::from_secs(30);

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = vec![0u8; 12];
    m[0..2].copy_from_slice(&id.to_be_bytes());
    m[2..4].copy_from_slice(&0x0100u16.to_be_bytes());
    m[4..6].copy_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&profiles::wire::dns::name_to_wire(name).expect("name"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

/// Answers every query with NXDOMAIN (QR, RA, RCODE 3, the question echoed) until `stop`.
fn responder(sock: UdpSocket, stop: Arc<AtomicBool>) -> u64 {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if len < 12 {
            continue;
        }
        let mut r = buf[..len].to_vec();
        let flags = u16::from_be_bytes([r[2], r[3]]) | 0x8000 | 0x0080 | 3;
        r[2..4].copy_from_slice(&flags.to_be_bytes());
        if sock.send_to(&r, from).is_ok() {
            n += 1;
        }
    }
    n
}

#[test]
fn matches_every_dns_query_on_the_mirror_port() {
    dns_on_the_mirror_port("af-packet");
}

#[test]
fn matches_every_dns_query_with_the_af_xdp_backend() {
    dns_on_the_mirror_port("af-xdp");
}

fn dns_on_the_mirror_port(backend: &str) {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("tsl"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("switched lab has a monitor").netns.clone();
    let server = bed
        .dut()
        .run_in(|| UdpSocket::bind("198.18.0.2:53"))
        .expect("netns")
        .expect("bind :53");
    let client = bed
        .r#gen()
        .run_in(|| UdpSocket::bind("198.18.0.1:0"))
        .expect("netns")
        .expect("bind client");
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let resp = std::thread::spawn(move || responder(server, st));

    let dir = tempfile::tempdir().expect("tempdir");
    let hlog = dir.path().join("live.hlog");
    let csv = dir.path().join("live.csv");
    let svg = dir.path().join("live.svg");
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
            // A request is lost only if unanswered this long: the responder is a user-space
            // thread that a loaded machine may not run for a while.
            "--timeout",
            "10s",
        ])
        .arg("--hdrh")
        .arg(&hlog)
        .arg("--hist-csv")
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tstamp");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("a line").expect("utf8");
    assert!(
        ready.contains("\"type\":\"ready\"") && ready.contains("\"clock\":\"sw\""),
        "{ready}"
    );

    const N: u16 = 400;
    client.set_read_timeout(Some(GENEROUS)).expect("timeout");
    let mut answered = 0;
    let mut buf = [0u8; 1500];
    for id in 0..N {
        client
            .send_to(&query(id, &format!("q{id}.lab.example")), "198.18.0.2:53")
            .expect("send");
        if let Ok((len, _)) = client.recv_from(&mut buf) {
            assert_eq!(&buf[0..2], &id.to_be_bytes());
            assert_eq!(buf[3] & 15, 3, "NXDOMAIN");
            assert!(len >= 12);
            answered += 1;
        }
    }
    assert_eq!(answered, N, "the responder answered every query");
    // Ctrl-C once tstamp has matched everything (its interval records say so): it
    // does not drain its capture ring on SIGINT, and a loaded machine may run it late.
    let mut rest: Vec<String> = Vec::new();
    let mut seen = 0;
    let deadline = Instant::now() + GENEROUS;
    while seen < u64::from(N) {
        assert!(
            Instant::now() < deadline,
            "tstamp matched {seen} of {N} within {GENEROUS:?}: {rest:?}"
        );
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("tstamp ended early: {rest:?}"))
            .expect("utf8");
        if line.contains("\"interval\"") {
            let v: serde_json::Value = serde_json::from_str(&line).expect("json");
            seen += v["matched"].as_u64().expect("matched");
        }
        rest.push(line);
    }
    // Ctrl-C: the final record and every file must still appear.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    rest.extend(lines.map_while(Result::ok));
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(resp.join().expect("responder"), u64::from(N));
    assert!(status.success(), "{status:?}: {err}");
    let fin: serde_json::Value =
        serde_json::from_str(rest.last().expect("final line")).expect("json");
    assert_eq!(fin["type"], "final");
    assert_eq!(fin["clock"], "sw");
    let n = u64::from(N);
    for k in ["requests", "responses", "matched"] {
        assert_eq!(fin[k], n, "{k}: {fin}");
    }
    for k in [
        "lost",
        "duplicates",
        "unmatched_responses",
        "evicted",
        "capture_drops",
    ] {
        assert_eq!(fin[k], 0, "{k}: {fin}");
    }
    assert_eq!(fin["rcodes"]["NXDOMAIN"], n);
    let min = fin["rtt_ns"]["min"].as_u64().expect("min");
    let max = fin["rtt_ns"]["max"].as_u64().expect("max");
    // Plausible: below the matching timeout (10 s), so not a unit or clock mix-up.
    assert!(max < 10_000_000_000 && min <= max, "{fin}");
    // AF_XDP stamps in user space per RX batch: a request and its answer taken off the
    // ring together read 0, so only AF_PACKET's per-skb stamps must be positive.
    if backend == "af-packet" {
        assert!(min > 0, "{fin}");
    }
    // Interval records add up to the totals.
    let ivs: Vec<serde_json::Value> = rest
        .iter()
        .filter(|l| l.contains("\"interval\""))
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(!ivs.is_empty());
    let sum: u64 = ivs
        .iter()
        .map(|v| v["matched"].as_u64().expect("matched"))
        .sum();
    assert_eq!(sum, n);
    let csv_total: u64 = std::fs::read_to_string(&csv)
        .expect("csv written on Ctrl-C")
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|c| c.parse::<u64>().ok())
                .expect("count")
        })
        .sum();
    assert_eq!(csv_total, n);
    assert!(
        std::fs::read_to_string(&hlog)
            .expect("hlog")
            .contains("HISTF")
    );
    assert!(svg.exists());
    // The lab's placeholder XDP program is back on mon0 after an AF_XDP run.
    let prog = Command::new("ip")
        .args(["-n", &mon, "-d", "link", "show", "mon0"])
        .output()
        .expect("ip");
    assert!(
        String::from_utf8_lossy(&prog.stdout).contains("name xdp_pass"),
        "placeholder restored"
    );
    drop(bed);
}

#[test]
fn hw_clock_on_veth_is_one_clear_line() {
    let bed = Testbed::up(&UpOptions {
        name: unique_name("tsh"),
        ..Default::default()
    })
    .expect("lab up");
    let mon = bed.mon().expect("monitor").netns.clone();
    let out = Command::new(bin())
        .args([
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--clock",
            "hw",
            "--duration",
            "1",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("mon0") && err.contains("hardware"),
        "{err}"
    );
    // auto falls back to software and says so.
    let out = Command::new(bin())
        .args([
            "--netns",
            &mon,
            "--iface",
            "mon0",
            "--clock",
            "auto",
            "--duration",
            "300ms",
            "--output",
            "json",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"clock\":\"sw\""));
    // Not root: one line.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "--iface",
            "lo",
            "--duration",
            "1",
        ])
        .output()
        .expect("run setpriv");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("root or CAP_NET_RAW"), "{err}");
}
