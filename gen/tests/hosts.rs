//! Several generator hosts in one run (issue 12, item 3): `--stream-base` keeps
//! the probe sequences of two hosts apart, judged by `tstamp --match seq` on the
//! monitor port of an SSH lab (two generator hosts on one switch, the DUT
//! reflecting every frame with the lab's reflect fixture, the switch mirroring both
//! directions). Equal bases must show the collision, or the check could not fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testbed::{Testbed, Topology, UpOptions};

mod common;
use common::{GEN, final_of};

/// How long a step may take on a shared, loaded machine.
const GENEROUS: Duration = Duration::from_secs(60);

/// Probes per generator host (two queues: half each).
const N: u64 = 1000;

/// tstamp on the monitor port; killed on drop if still running.
struct Tstamp {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Tstamp {
    fn start(mon: &testbed::Host) -> Tstamp {
        let bin = testbed::binaries::locate("tstamp")
            .unwrap_or_else(|e| panic!("{e:#} (cargo build --release -p tstamp first)"));
        let mut child = Command::new(bin)
            .args(["--netns", &mon.netns, "--iface", &mon.iface])
            // Answered probes are remembered for the whole run: a second host's
            // probe with the same sequence number, however late, is then a
            // duplicate rather than a fresh request.
            .args(["--match", "seq", "--timeout", "10s", "--dup-window", "10s"])
            .args(["--interval", "200ms", "--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tstamp");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(GENEROUS).expect("tstamp's ready line");
        assert!(ready.contains("\"ready\""), "{ready}");
        Tstamp { child, lines }
    }

    /// Waits until tstamp's interval records account for `sightings` probe frames
    /// (requests + responses), then stops it (SIGINT) and returns its final record.
    fn finish(mut self, sightings: u64) -> records::tstamp::Final {
        let deadline = Instant::now() + GENEROUS;
        let mut seen = 0;
        let mut last = String::new();
        while seen < sightings && Instant::now() < deadline {
            let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) else {
                continue;
            };
            if l.contains("\"interval\"") {
                let v: records::tstamp::Interval = serde_json::from_str(&l).expect("interval");
                seen += v.requests + v.responses;
            }
            last = l;
        }
        assert_eq!(seen, sightings, "tstamp's intervals (last: {last})");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait tstamp");
        assert!(status.success(), "tstamp: {status}");
        let fin = std::iter::from_fn(|| self.lines.recv_timeout(GENEROUS).ok())
            .find(|l| l.contains("\"final\""))
            .expect("tstamp's final record");
        serde_json::from_str(&fin).expect("final record")
    }
}

impl Drop for Tstamp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// gen with probes on `host` (two queues, `N` frames at 2k frames/s) from
/// `stream_base`, starting at `at_ns`.
fn spawn_gen(host: &testbed::Host, dst_mac: [u8; 6], stream_base: u32, at_ns: u64) -> Child {
    Command::new(GEN)
        .args(["--netns", &host.netns, "--iface", &host.iface])
        .args(["--profile", "min-multi-flow", "--stamp", "--queues", "2"])
        .args(["--stream-base", &stream_base.to_string()])
        .args(["--rate", "2k", "--count", &N.to_string()])
        .args(["--src-ip", &host.ip.expect("address").to_string()])
        .args(["--dst-mac", &profiles::units::format_mac(dst_mac)])
        .args(["--start-at", &profiles::units::format_wall_time(at_ns)])
        .args(["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gen")
}

fn now_ns() -> u64 {
    xdplayer::clock::realtime_ns()
}

#[test]
fn stream_bases_keep_two_hosts_probes_apart_at_the_monitor() {
    let bed = Testbed::up(&UpOptions {
        name: testbed::unique_name("gsb"),
        topology: Topology::Switched,
        queues: 2,
    })
    .expect("lab up");
    // The SSH lab's second generator host on the same switch (sshd is not used).
    let ssh = testbed::ssh::up(&bed).expect("second generator host");
    assert_eq!(ssh.gens.len(), 2);
    let mon = bed.mon().expect("monitor").clone();
    let dut = bed.dut().clone();
    testbed::attach_reflect(&dut.netns, &dut.iface).expect("reflect on dut0");
    let dst_mac = dut.mac.expect("dut mac");

    for (bases, distinct) in [([0u32, 2], true), ([0, 0], false)] {
        let ts = Tstamp::start(&mon);
        // Both hosts start together, as `lab run --testbed` starts them.
        let at = now_ns() + 3_000_000_000;
        let children: Vec<Child> = ssh
            .gens
            .iter()
            .zip(bases)
            .map(|(h, b)| spawn_gen(h, dst_mac, b, at))
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("gen output"))
            .collect();
        for (o, h) in outs.iter().zip(&ssh.gens) {
            let fin = final_of(o);
            assert_eq!(fin["tx_packets"].as_u64(), Some(N), "{}", h.netns);
            // gen's reply counter saw each of its probes come back from the
            // reflector (the switch sends each host its own).
            assert_eq!(fin["rx_probes"].as_u64(), Some(N), "{}: {fin}", h.netns);
        }
        // Every probe crosses the monitor port twice: to the DUT and back.
        let fin = ts.finish(4 * N);
        let ctx = format!("bases {bases:?}: {fin:?}");
        let streams: Vec<u8> = fin.streams.iter().map(|s| s.stream).collect();
        if distinct {
            assert_eq!(streams, vec![0, 1, 2, 3], "{ctx}");
            assert_eq!(
                (fin.requests, fin.responses, fin.matched),
                (2 * N, 2 * N, 2 * N),
                "{ctx}"
            );
            assert_eq!(
                (fin.lost, fin.duplicates, fin.unmatched_responses),
                (0, 0, 0),
                "{ctx}"
            );
            for s in &fin.streams {
                assert_eq!((s.received, s.lost, s.duplicates), (N / 2, 0, 0), "{ctx}");
            }
        } else {
            // The second host's probes read as answers and repeats of the first's.
            assert_eq!(streams, vec![0, 1], "{ctx}");
            assert_eq!(fin.requests, N, "{ctx}");
            assert!(fin.duplicates > 0, "{ctx}");
            assert_eq!(fin.duplicates, 2 * N, "{ctx}");
        }
    }
}
