//! End to end on the lab (root): `dut install` each program on dut0 in native
//! and generic mode (direct and switched topologies), real queries from the
//! generator namespace (a plain UDP socket, and kdig), answers checked with
//! hickory-proto, counters and `status --json` against what was sent, and
//! `dut remove` leaving nothing behind. Plus the bad-input paths of the CLI.

mod common;

use std::net::UdpSocket;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use profiles::Profile;
use records::Kind;
use records::dut::{Attached, InstallFinal, InstallReady, Mode, Status};
use serde_json::Value;
use testbed::{Testbed, Topology, UpOptions};

fn dut(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dut"))
        .args(args)
        .output()
        .expect("run dut")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lab(topology: Topology) -> Testbed {
    Testbed::up(&UpOptions {
        name: testbed::unique_name("dut"),
        topology,
        queues: 1,
    })
    .expect("lab up")
}

/// How long to wait for an answer that must come: XDP answers in microseconds,
/// but the user-space execution point is a process that a loaded machine may not
/// run for a while, and a late answer would also be taken for the next query's.
const ANSWER: Duration = Duration::from_secs(10);
/// How long to wait where no answer may come (a late one only makes that check
/// stricter).
const NO_ANSWER: Duration = Duration::from_millis(500);

/// Sends each query from the generator host, returns the answers (None when none
/// came within `wait`).
fn ask(bed: &Testbed, queries: &[(String, RecordType)], wait: Duration) -> Vec<Option<Message>> {
    let queries = queries.to_vec();
    bed.r#gen()
        .run_in(move || {
            let s = UdpSocket::bind("198.18.0.1:0").expect("bind");
            s.set_read_timeout(Some(wait)).expect("timeout");
            s.connect("198.18.0.2:53").expect("connect");
            let mut out = Vec::new();
            for (i, (name, t)) in queries.iter().enumerate() {
                let q = common::query(1000 + i as u16, name, *t, i % 2 == 1);
                s.send(&q).expect("send");
                let mut buf = [0u8; 1500];
                out.push(match s.recv(&mut buf) {
                    Ok(n) => {
                        let m = Message::from_vec(&buf[..n]).expect("answer parses (hickory)");
                        assert_eq!(m.id(), 1000 + i as u16);
                        Some(m)
                    }
                    Err(_) => None,
                });
            }
            out
        })
        .expect("run in gen")
}

/// `dut status --iface dut0 --json`, read as its record type.
fn status(bed: &Testbed) -> Status {
    let out = dut(&[
        "--netns",
        &bed.dut().netns,
        "status",
        "--iface",
        "dut0",
        "--json",
    ]);
    Status::parse(&ok(&out, "status")).expect("status record")
}

/// One JSON line as record type `T` (schema version checked, unknown fields refused).
fn read<T: serde::de::DeserializeOwned>(line: &str, what: &'static str) -> T {
    let v: Value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {line}"));
    records::typed(v, what).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// The one program on dut0.
fn on_dut0(st: &Status) -> &Attached {
    assert_eq!(st.interfaces.len(), 1, "{st:?}");
    st.on("dut0").expect("dut0")
}

fn attached_name(bed: &Testbed) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "-n",
            &bed.dut().netns,
            "-j",
            "-d",
            "link",
            "show",
            "dev",
            "dut0",
        ])
        .output()
        .expect("ip");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip json");
    let x = &v[0]["xdp"];
    x["prog"]["name"]
        .as_str()
        .or_else(|| x["attached"][0]["prog"]["name"].as_str())
        .map(String::from)
}

/// Starts `dut ARGS` (a user-space install) with piped output and waits until its
/// redirect program is attached to dut0.
fn spawn_userspace(bed: &Testbed, args: &[&str]) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_dut"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dut");
    let t = std::time::Instant::now();
    while attached_name(bed).as_deref() != Some("xsk_redirect") {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "redirect program never attached"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn prog_exists(id: u64) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .output()
        .expect("bpftool")
        .status
        .success()
}

fn exercise(bed: &Testbed, mode: &str) {
    let ns = bed.dut().netns.clone();
    let names = Profile::load("dns-small")
        .expect("profile")
        .dns
        .expect("dns")
        .names;
    for program in ["dns-ping", "dns-cache", "drop", "checksum"] {
        assert_eq!(
            attached_name(bed).as_deref(),
            Some("xdp_pass"),
            "placeholder before {program}"
        );
        let mut args = vec![
            "--netns", &ns, "install", program, "--iface", "dut0", "--mode", mode,
        ];
        if program == "dns-cache" {
            args.extend(["--profile", "dns-small"]);
        }
        if program == "checksum" {
            args.extend(["--checksums", "200"]);
        }
        ok(&dut(&args), &format!("install {program} {mode}"));
        let mut queries: Vec<(String, RecordType)> = (0..10)
            .map(|i| (format!("{}.", names.name(i * 100)), RecordType::A))
            .collect();
        queries.extend((0..5).map(|i| (format!("miss{i}.lab.test."), RecordType::A)));
        let wait = match program {
            "dns-ping" | "dns-cache" => ANSWER,
            _ => NO_ANSWER,
        };
        let answers = ask(bed, &queries, wait);
        let st = status(bed);
        let rec = on_dut0(&st);
        assert_eq!(rec.program, program);
        assert_eq!(rec.mode.as_str(), mode);
        let c = rec.counters.expect("counters");
        let n = |k: &str| {
            c.pairs()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v)
                .expect(k)
        };
        assert!(n("packets") >= 15, "{program}/{mode}: {c:?}");
        match program {
            "dns-ping" => {
                for a in &answers {
                    let a = a.as_ref().expect("dns-ping answers every query");
                    assert_eq!(a.response_code(), ResponseCode::NXDomain);
                }
                assert_eq!(n("tx"), 15);
                assert_eq!(n("answers"), 15);
            }
            "dns-cache" => {
                for (i, a) in answers.iter().enumerate() {
                    let a = a.as_ref().expect("dns-cache answers every query");
                    if i < 10 {
                        assert_eq!(a.response_code(), ResponseCode::NoError);
                        match a.answers()[0].data() {
                            RData::A(addr) => {
                                assert_eq!(addr.0.octets(), names.address(i as u64 * 100))
                            }
                            other => panic!("{other:?}"),
                        }
                    } else {
                        assert_eq!(a.response_code(), ResponseCode::NXDomain);
                    }
                }
                assert_eq!((n("hits"), n("misses"), n("tx")), (10, 5, 15));
                // An ordinary resolver client agrees.
                let out = bed
                    .r#gen()
                    .command("kdig")
                    .args([
                        "+retry=0",
                        "+timeout=10",
                        "+short",
                        "@198.18.0.2",
                        &names.name(7),
                        "A",
                    ])
                    .output()
                    .expect("kdig");
                let ip = names.address(7);
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout).trim(),
                    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
                );
            }
            "drop" | "checksum" => {
                assert!(answers.iter().all(Option::is_none), "{program} answered");
                assert_eq!(n("drop"), n("packets"));
                if program == "checksum" {
                    assert_eq!(n("checksums"), 200 * n("packets"));
                    assert_eq!(n("checksum_bad"), 0);
                }
            }
            _ => unreachable!(),
        }
        let id = u64::from(rec.prog_id);
        assert!(prog_exists(id));
        ok(
            &dut(&["--netns", &ns, "remove", "--iface", "dut0"]),
            "remove",
        );
        assert!(
            !prog_exists(id),
            "{program}/{mode}: program {id} still loaded after remove"
        );
        assert_eq!(
            attached_name(bed).as_deref(),
            Some("xdp_pass"),
            "placeholder restored after {program}"
        );
    }
}

#[test]
fn every_program_native_and_generic_direct() {
    let bed = lab(Topology::Direct);
    exercise(&bed, "native");
    exercise(&bed, "generic");
}

/// Switched: native only. Generic (skb) XDP never sees these frames: the
/// switch forwards with tc mirred, and the kernel's generic XDP skips skbs
/// that a tc action redirected (`skb_is_redirected`), so the DUT's stack gets
/// them instead. Measured here: 0 packets counted in generic mode.
#[test]
fn every_program_native_switched() {
    let bed = lab(Topology::Switched);
    exercise(&bed, "native");
}

#[test]
fn bad_input_is_one_line_nonzero_and_attaches_nothing() {
    let bed = lab(Topology::Direct);
    let ns = bed.dut().netns.clone();
    let one_line = |out: &Output, needle: &str| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "'{needle}' in: {err}");
    };
    for (args, needle) in [
        (
            vec!["install", "nope", "--iface", "dut0"],
            "unknown program",
        ),
        (vec!["install", "drop", "--iface", "nope0"], "no interface"),
        (
            vec![
                "install",
                "checksum",
                "--iface",
                "dut0",
                "--checksums",
                "1000001",
            ],
            "out of range",
        ),
        (
            vec![
                "install",
                "dns-cache",
                "--iface",
                "dut0",
                "--profile",
                "min-multi-flow",
            ],
            "no DNS name set",
        ),
        (
            vec!["install", "drop", "--iface", "dut0", "--mode", "offload"],
            "offload",
        ),
        (
            vec![
                "install",
                "drop",
                "--iface",
                "dut0",
                "--only-dst",
                "1.2.3/8",
            ],
            "IPv4 prefix",
        ),
        (
            vec![
                "install",
                "drop",
                "--iface",
                "dut0",
                "--only-dst",
                "2001:db8::/129",
            ],
            "is not an IPv6 prefix",
        ),
    ] {
        let mut a = vec!["--netns", ns.as_str()];
        a.extend(args);
        one_line(&dut(&a), needle);
        assert_eq!(attached_name(&bed).as_deref(), Some("xdp_pass"));
    }
    let out = dut(&[
        "--netns", &ns, "install", "drop", "--iface", "dut0", "--mode", "bogus",
    ]);
    assert_eq!(out.status.code(), Some(2));

    // A stale record: dut installs over the placeholder (and records that),
    // then a foreign program replaces dut's behind its back. The record no
    // longer describes what is attached and must not be trusted later.
    ok(
        &dut(&["--netns", &ns, "install", "drop", "--iface", "dut0"]),
        "install over the placeholder",
    );
    assert_eq!(attached_name(&bed).as_deref(), Some("dut_drop"));

    // A foreign program: refused without --force, replaced with it.
    testbed::attach_reflect(&ns, "dut0").expect("reflect");
    one_line(
        &dut(&["--netns", &ns, "install", "drop", "--iface", "dut0"]),
        "--force",
    );
    assert_eq!(attached_name(&bed).as_deref(), Some("xdp_reflect"));
    ok(
        &dut(&[
            "--netns", &ns, "install", "drop", "--iface", "dut0", "--force",
        ]),
        "install --force",
    );
    assert_eq!(attached_name(&bed).as_deref(), Some("dut_drop"));
    ok(
        &dut(&["--netns", &ns, "remove", "--iface", "dut0"]),
        "remove",
    );
    assert_eq!(
        attached_name(&bed),
        None,
        "the placeholder record was stale (a foreign program had replaced dut's): nothing restored"
    );

    // Not root.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_dut"),
            "install",
            "drop",
            "--iface",
            "lo",
        ])
        .output()
        .expect("setpriv");
    if out.status.code() != Some(127)
        && !String::from_utf8_lossy(&out.stderr).contains("Permission denied")
    {
        one_line(&out, "root");
    }
}

#[test]
fn tenant_guard_and_status_window_on_the_lab() {
    let bed = lab(Topology::Direct);
    let ns = bed.dut().netns.clone();
    ok(
        &dut(&[
            "--netns",
            &ns,
            "install",
            "dns-ping",
            "--iface",
            "dut0",
            "--only-dst",
            "198.18.1.0/24",
        ]),
        "install with --only-dst",
    );
    // Our queries go to 198.18.0.2, outside the tenant's prefix: passed to the stack,
    // which has no DNS server (ICMP port unreachable): no answer.
    let answers = ask(
        &bed,
        &[
            (".".to_string(), RecordType::A),
            ("x.test.".to_string(), RecordType::A),
        ],
        NO_ANSWER,
    );
    assert!(answers.iter().all(Option::is_none));
    let st = status(&bed);
    let rec = on_dut0(&st);
    let only_dst = rec.config.as_ref().and_then(|c| c.only_dst.as_deref());
    assert_eq!(only_dst, Some("198.18.1.0/24"));
    let c = rec.counters.expect("counters");
    assert!(c.not_tenant >= 2, "{c:?}");
    assert_eq!(c.tx, 0);
    // --window: rates and ns/packet measured while traffic flows. The sender runs
    // until status has returned (not for a fixed time that a slowly starting status
    // process could miss), with a bound in case the test fails meanwhile.
    let sending = Arc::new(AtomicBool::new(true));
    let sender = {
        let ns_gen = bed.r#gen().netns.clone();
        let sending = sending.clone();
        std::thread::spawn(move || {
            testbed::run_in_netns(&ns_gen, || {
                let s = UdpSocket::bind("198.18.0.1:0").expect("bind");
                let q = common::query(1, ".", RecordType::A, false);
                let t = std::time::Instant::now();
                while sending.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(120) {
                    let _ = s.send_to(&q, "198.18.0.2:53");
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
            .expect("gen")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let out = dut(&[
        "--netns", &ns, "status", "--iface", "dut0", "--json", "--window", "800ms",
    ]);
    sending.store(false, Ordering::Relaxed);
    sender.join().expect("sender");
    let st = Status::parse(&ok(&out, "status --window")).expect("status record");
    let rec = on_dut0(&st);
    assert!(
        rec.rates.expect("rates over the window").packets_pps > 100.0,
        "{rec:?}"
    );
    assert!(rec.run_cnt > 0, "{rec:?}");
    assert!(rec.ns_per_packet.expect("ns/packet") > 0.0, "{rec:?}");
    ok(
        &dut(&["--netns", &ns, "remove", "--iface", "dut0"]),
        "remove",
    );
    // An IPv6 guard (host bits cleared): read back from the loaded program's
    // rodata by status; our IPv4 queries are outside it, so never answered.
    ok(
        &dut(&[
            "--netns",
            &ns,
            "install",
            "dns-ping",
            "--iface",
            "dut0",
            "--only-dst",
            "2001:db8:0:1::7/64",
        ]),
        "install with an IPv6 --only-dst",
    );
    let answers = ask(&bed, &[(".".to_string(), RecordType::A)], NO_ANSWER);
    assert!(answers.iter().all(Option::is_none));
    let st = status(&bed);
    let rec = on_dut0(&st);
    let only_dst = rec.config.as_ref().and_then(|c| c.only_dst.as_deref());
    assert_eq!(only_dst, Some("2001:db8:0:1::/64"));
    let c = rec.counters.expect("counters");
    assert!(c.not_tenant >= 1 && c.tx == 0, "{c:?}");
    ok(
        &dut(&["--netns", &ns, "remove", "--iface", "dut0"]),
        "remove",
    );
}

/// The user-space execution point: AF_XDP sockets and the shim answer real
/// queries; Ctrl-C (SIGINT) prints the final JSON and restores the placeholder.
#[test]
fn userspace_mode_answers_and_restores_on_ctrl_c() {
    let bed = lab(Topology::Direct);
    let ns = bed.dut().netns.clone();
    let names = Profile::load("dns-small")
        .expect("profile")
        .dns
        .expect("dns")
        .names;
    for program in ["dns-cache", "dns-ping"] {
        let mut args = vec![
            "--netns",
            &ns,
            "install",
            program,
            "--iface",
            "dut0",
            "--mode",
            "userspace",
            "--output",
            "json",
        ];
        if program == "dns-cache" {
            args.extend(["--profile", "dns-small"]);
        }
        let child = spawn_userspace(&bed, &args);
        let mut queries: Vec<(String, RecordType)> = (0..8)
            .map(|i| (format!("{}.", names.name(i * 7)), RecordType::A))
            .collect();
        queries.push(("nothere.lab.test.".into(), RecordType::A));
        let answers = ask(&bed, &queries, ANSWER);
        for (i, a) in answers.iter().enumerate() {
            let a = a
                .as_ref()
                .unwrap_or_else(|| panic!("{program}: query {i} unanswered"));
            if program == "dns-cache" && i < 8 {
                assert_eq!(a.response_code(), ResponseCode::NoError);
                match a.answers()[0].data() {
                    RData::A(addr) => assert_eq!(addr.0.octets(), names.address(i as u64 * 7)),
                    other => panic!("{other:?}"),
                }
            } else {
                assert_eq!(a.response_code(), ResponseCode::NXDomain);
            }
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().expect("wait");
        let stdout = ok(&out, "userspace run");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "ready + final: {stdout}");
        let ready: InstallReady = read(lines[0], "ready");
        assert_eq!((ready.kind, ready.mode), (Kind::Ready, Mode::Userspace));
        let fin: InstallFinal = read(lines[1], "final");
        assert_eq!((fin.kind, fin.mode), (Kind::Final, Mode::Userspace));
        let u = fin.userspace.as_ref().expect("user-space figures");
        assert_eq!(u.xsk_mode, "copy");
        assert_eq!(fin.counters.tx, 9);
        assert_eq!(u.tx_packets, 9);
        assert!(u.run_cnt >= 9, "{u:?}");
        assert!(u.ns_per_packet.expect("ns_per_packet") > 0.0);
        if program == "dns-cache" {
            assert_eq!((fin.counters.hits, fin.counters.misses), (8, 1));
        }
        assert_eq!(
            attached_name(&bed).as_deref(),
            Some("xdp_pass"),
            "placeholder back after Ctrl-C"
        );
    }
}

/// gen next to our `dut` binary (`cargo build --release -p gen` first).
fn gen_bin() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_BIN_EXE_dut")).with_file_name("gen");
    assert!(
        p.exists(),
        "{} missing: build it first (cargo build --release -p gen)",
        p.display()
    );
    p
}

/// One user-space dns-cache run (dns-small-v6's names, `--only-dst` if given)
/// while gen (afxdp) sends `n` of dns-small-v6's queries at 1k/s; returns gen's
/// final record and the point's final record (after SIGINT).
fn userspace_v6_run(bed: &Testbed, n: u64, only_dst: Option<&str>) -> (Value, InstallFinal) {
    let ns = bed.dut().netns.clone();
    let mut args = vec![
        "--netns",
        &ns,
        "install",
        "dns-cache",
        "--iface",
        "dut0",
        "--mode",
        "userspace",
        "--profile",
        "dns-small-v6",
        "--output",
        "json",
    ];
    if let Some(d) = only_dst {
        args.extend(["--only-dst", d]);
    }
    let child = spawn_userspace(bed, &args);
    let dut_mac = profiles::units::format_mac(bed.dut().mac.expect("dut mac"));
    let count = n.to_string();
    let out = Command::new(gen_bin())
        .args(["--netns", &bed.r#gen().netns, "--iface", "gen0"])
        .args([
            "--profile",
            "dns-small-v6",
            "--engine",
            "afxdp",
            "--dst-mac",
            &dut_mac,
            "--rate",
            "1k",
            "--count",
            &count,
            "--output",
            "json",
        ])
        .output()
        .expect("run gen");
    let gen_out = ok(&out, "gen");
    let fin_gen: Value = gen_out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "final")
        .unwrap_or_else(|| panic!("no final record from gen: {gen_out}"));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    let stdout = ok(&out, "userspace dns-cache");
    let fin: InstallFinal = read(stdout.lines().last().expect("final line"), "final");
    assert_eq!(
        attached_name(bed).as_deref(),
        Some("xdp_pass"),
        "placeholder back after Ctrl-C"
    );
    assert_eq!(fin_gen["tx_packets"].as_u64(), Some(n), "gen's TX");
    (fin_gen, fin)
}

/// DNS over IPv6 at the user-space execution point: gen (afxdp) sends
/// dns-small-v6's AAAA queries (to 2001:db8::2) to dns-cache running in user
/// space (filled from the same profile). The redirect filter hands IPv6 UDP/53
/// to the sockets, and every query is answered: the point's counters (packets,
/// answers, hits), its sockets' RX/TX and gen's NOERROR replies all equal gen's
/// TX; so with an IPv6 tenant guard (`--only-dst`) that covers the destination.
/// With one that does not, or with an IPv4 guard, the redirect filter keeps the
/// queries in the kernel: the sockets receive none, gen gets no reply. The
/// lab's namespaces have IPv6 off, so the DUT's MAC is given (`--dst-mac`).
#[test]
fn userspace_dns_cache_answers_dns_small_v6_from_gen() {
    let bed = lab(Topology::Direct);
    for (only_dst, n) in [(None, 1000u64), (Some("2001:db8::/64"), 300)] {
        let (fin_gen, fin) = userspace_v6_run(&bed, n, only_dst);
        let u = fin.userspace.as_ref().expect("user-space figures");
        let c = fin.counters;
        assert_eq!(c.packets, n, "{only_dst:?}: the point saw gen's TX: {c:?}");
        assert_eq!((c.answers, c.hits, c.tx), (n, n, n), "{c:?}");
        assert_eq!(
            (c.parse_errors, c.not_handled, c.pass, c.not_tenant),
            (0, 0, 0, 0),
            "{c:?}"
        );
        assert_eq!((u.rx_packets, u.tx_packets, u.tx_full), (n, n, 0), "{u:?}");
        let rc = |k: &str| fin_gen["rx_rcodes"][k].as_u64().unwrap_or(0);
        assert_eq!(rc("NOERROR"), c.answers, "{}", fin_gen["rx_rcodes"]);
        assert_eq!(fin_gen["rx_packets"].as_u64(), Some(n), "gen's reply count");
    }
    for only_dst in ["2001:db8:1::/64", "198.18.0.0/24"] {
        let (fin_gen, fin) = userspace_v6_run(&bed, 300, Some(only_dst));
        let u = fin.userspace.as_ref().expect("user-space figures");
        assert_eq!(fin.counters.packets, 0, "{only_dst}: {:?}", fin.counters);
        assert_eq!((u.rx_packets, u.tx_packets), (0, 0), "{only_dst}: {u:?}");
        assert_eq!(
            fin_gen["rx_packets"].as_u64(),
            Some(0),
            "{only_dst}: no reply"
        );
    }
}

/// `install --foreground`: a ready line once attached, counters in the final
/// line after SIGINT, and the program gone with the placeholder back.
#[test]
fn foreground_install_detaches_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let bed = lab(Topology::Direct);
    let ns = bed.dut().netns.clone();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dut"))
        .args([
            "--netns",
            &ns,
            "install",
            "dns-ping",
            "--iface",
            "dut0",
            "--foreground",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn dut");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    let ready: InstallReady = read(&line, "ready");
    assert_eq!((ready.kind, ready.mode), (Kind::Ready, Mode::Native));
    assert_eq!(attached_name(&bed).as_deref(), Some("dut_dns_ping"));
    let answers = ask(
        &bed,
        &[(".".into(), RecordType::A), ("a.b.".into(), RecordType::NS)],
        ANSWER,
    );
    assert!(answers.iter().all(|a| {
        a.as_ref()
            .is_some_and(|m| m.response_code() == ResponseCode::NXDomain)
    }));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    line.clear();
    out.read_line(&mut line).expect("final line");
    let fin: InstallFinal = read(&line, "final");
    assert_eq!(fin.kind, Kind::Final);
    assert_eq!(fin.counters.tx, 2);
    assert!(fin.userspace.is_none());
    assert!(child.wait().expect("wait").success());
    let id = u64::from(ready.prog_id.expect("id"));
    assert!(!prog_exists(id));
    assert_eq!(attached_name(&bed).as_deref(), Some("xdp_pass"));
}

/// Under `ip netns exec` (fresh /sys, no bpffs) dut works the same: nothing
/// relies on pins; status finds the program through the kernel.
#[test]
fn works_under_ip_netns_exec() {
    let bed = lab(Topology::Direct);
    let run = |args: &[&str]| {
        bed.dut()
            .command(env!("CARGO_BIN_EXE_dut"))
            .args(args)
            .output()
            .expect("ip netns exec dut")
    };
    ok(&run(&["install", "dns-ping", "--iface", "dut0"]), "install");
    let answers = ask(&bed, &[(".".into(), RecordType::A)], ANSWER);
    assert!(answers[0].is_some());
    let st = Status::parse(&ok(&run(&["status", "--json"]), "status")).expect("status record");
    let rec = st.on("dut0").expect("dut0");
    assert_eq!(rec.program, "dns-ping");
    assert_eq!(rec.counters.map(|c| c.tx), Some(1));
    ok(&run(&["remove", "--iface", "dut0"]), "remove");
    assert_eq!(attached_name(&bed).as_deref(), Some("xdp_pass"));
}

/// Sends every frame out of `iface` through an AF_PACKET socket (in the
/// calling thread's namespace), pausing after every burst so the veth ring
/// never overflows; returns how many the kernel took.
fn send_raw(iface: &str, frames: &[Vec<u8>]) -> usize {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let ifx = dut_programs::kernel::ifindex(iface).expect("ifindex");
    // SAFETY: plain socket(2); the fd is owned below.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(
        raw >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: raw is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifx as i32;
    sll.sll_halen = 6;
    let mut sent = 0;
    for (i, f) in frames.iter().enumerate() {
        sll.sll_addr[..6].copy_from_slice(&f[..6]);
        // SAFETY: f and sll outlive the call; lengths are theirs.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r == f.len() as isize {
            sent += 1;
        }
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sent
}

/// `/proc/net/dev` of `iface` in namespace `ns`.
fn dev(ns: &str, iface: &str) -> xdplayer::iface::DevStats {
    let iface = iface.to_owned();
    testbed::run_in_netns(ns, move || xdplayer::iface::dev_stats(&iface))
        .expect("enter netns")
        .expect("dev stats")
}

/// The flood: SYNs from spoofed sources outside the allow-list (untagged and,
/// where `tagged`, 802.1Q-tagged), SYNs from an allowed prefix, SYN-ACKs and
/// UDP; then 600 spoofed IPv6 SYNs (a third tagged) from 2001:db8:ffff::/48
/// and 200 IPv6 SYNs from the allowed 2001:db8:0:1::/64. Returns the frames
/// and how many of them syn-filter must drop: IPv4, IPv6.
fn syn_flood(tagged: bool) -> (Vec<Vec<u8>>, u64, u64) {
    let mut frames = Vec::new();
    let mut drops = 0;
    let mut drops6 = 0;
    for i in 0..3000u32 {
        let src = [10, (i >> 8) as u8, i as u8, 1];
        let f = common::tcp_frame(src, common::SYN, &common::MSS_OPTION);
        frames.push(if tagged && i % 3 == 0 {
            common::tagged(&f, &[(common::TPID_8021Q, 42)])
        } else {
            f
        });
        drops += 1;
    }
    for i in 0..500u32 {
        frames.push(common::tcp_frame(
            [203, 0, 113, (i % 250 + 1) as u8],
            common::SYN,
            &common::MSS_OPTION,
        ));
        frames.push(common::tcp_frame(
            [10, 9, (i >> 8) as u8, i as u8],
            common::SYN | common::ACK,
            &[],
        ));
    }
    for i in 0..300u32 {
        frames.push(common::udp_frame(common::DUT_IP, 9, &[i as u8; 18]));
    }
    for i in 0..600u16 {
        let mut src = [
            0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        src[14..].copy_from_slice(&(i + 1).to_be_bytes());
        let f = common::tcp6_frame(src, common::SYN);
        frames.push(if tagged && i % 3 == 0 {
            common::tagged(&f, &[(common::TPID_8021Q, 42)])
        } else {
            f
        });
        drops6 += 1;
    }
    for i in 0..200u16 {
        let mut src = common::GEN_IP6;
        src[14..].copy_from_slice(&(i + 10).to_be_bytes());
        frames.push(common::tcp6_frame(src, common::SYN));
    }
    (frames, drops, drops6)
}

/// syn-filter on a veth pair in its own namespaces: bad allow-lists refused
/// (one `FILE:LINE` line, non-zero exit, nothing attached); installed in
/// native and generic mode with `--allow` and `--allow-file`, a real TCP
/// connect() from the allowed generator completes, and a crafted SYN flood
/// from spoofed sources is dropped: `dut status` counters equal the frames
/// sent by kind and the interfaces' own counters; then the user-space point
/// does the same.
#[test]
fn syn_filter_drops_a_syn_flood_and_lets_allowed_clients_connect() {
    let bed = lab(Topology::Direct);
    let ns = bed.dut().netns.clone();
    let gen_ns = bed.r#gen().netns.clone();
    let dir = std::env::temp_dir().join(testbed::unique_name("dut-allow"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = Cleanup(dir.clone());
    let good = dir.join("allow.txt");
    std::fs::write(&good, "# the generator\n198.18.0.1/32   # gen0\n\n").expect("write");
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "198.18.0.1/32\n# fine so far\n10.0.0.0/8x\n").expect("write");

    // Bad input: one line naming the file and line, non-zero exit, nothing attached.
    let bad_s = bad.display().to_string();
    for args in [
        vec!["--allow-file", bad_s.as_str()],
        vec!["--allow", "10.0.0.0/33"],
        vec!["--allow-file", "/nonexistent/allow.txt"],
        vec!["--mode", "offload"],
    ] {
        let mut a = vec!["--netns", &ns, "install", "syn-filter", "--iface", "dut0"];
        a.extend(args.iter().copied());
        let out = dut(&a);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        if args[0] == "--allow-file" && args[1] == bad_s {
            assert!(err.contains(&format!("{bad_s}:3: '10.0.0.0/8x'")), "{err}");
        } else {
            assert!(err.contains(args[1]), "{err}");
        }
        assert_eq!(attached_name(&bed).as_deref(), Some("xdp_pass"), "{args:?}");
    }

    let listener = bed
        .dut()
        .run_in(|| std::net::TcpListener::bind("198.18.0.2:8080"))
        .expect("netns")
        .expect("listen in the DUT namespace");
    let good_s = good.display().to_string();
    for mode in ["native", "generic", "userspace"] {
        let userspace = mode == "userspace";
        let args = [
            "--netns",
            &ns,
            "install",
            "syn-filter",
            "--iface",
            "dut0",
            "--mode",
            mode,
            "--allow",
            "203.0.113.0/24",
            "--allow",
            "2001:db8:0:1::/64",
            "--allow-file",
            &good_s,
            "--output",
            "json",
        ];
        let child = if userspace {
            let c = spawn_userspace(&bed, &args);
            Some(c)
        } else {
            ok(&dut(&args), &format!("install syn-filter {mode}"));
            assert_eq!(attached_name(&bed).as_deref(), Some("dut_syn_filter"));
            None
        };
        // A real client from the allowed generator: its SYN passes, the stack answers.
        if !userspace {
            let conn = bed
                .r#gen()
                .run_in(|| {
                    std::net::TcpStream::connect_timeout(
                        &"198.18.0.2:8080".parse().expect("addr"),
                        Duration::from_secs(5),
                    )
                })
                .expect("netns");
            assert!(conn.is_ok(), "{mode}: allowed connect() failed: {conn:?}");
            let (_peer, from) = listener.accept().expect("accept");
            assert_eq!(from.ip().to_string(), "198.18.0.1");
        }
        std::thread::sleep(Duration::from_millis(300));
        let before = if userspace {
            None
        } else {
            Some(on_dut0(&status(&bed)).counters.expect("counters"))
        };
        let (d0, g0) = (dev(&ns, "dut0"), dev(&gen_ns, "gen0"));
        // The user-space point sees what the redirect program sends it: TCP,
        // tagged or not (xdp-layer's filter reads past VLAN tags).
        let (frames, drops, drops6) = syn_flood(true);
        let sent = bed
            .r#gen()
            .run_in(move || send_raw("gen0", &frames))
            .expect("netns");
        assert_eq!(
            sent,
            3000 + 1000 + 300 + 800,
            "{mode}: AF_PACKET took every frame"
        );
        std::thread::sleep(Duration::from_millis(500));
        let (d1, g1) = (dev(&ns, "dut0"), dev(&gen_ns, "gen0"));
        let c = if let Some(ch) = child {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(ch.id() as i32, libc::SIGINT) };
            let out = ch.wait_with_output().expect("wait");
            let stdout = ok(&out, "userspace syn-filter");
            let fin: InstallFinal = read(stdout.lines().last().expect("final line"), "final");
            fin.counters
        } else {
            let st = status(&bed);
            let r = on_dut0(&st);
            assert_eq!((r.program.as_str(), r.mode.as_str()), ("syn-filter", mode));
            let now = r.counters.expect("counters");
            let b = before.expect("before");
            dut_programs::Counters::from(now)
                .since(&dut_programs::Counters::from(b))
                .to_record()
        };
        assert_eq!(
            g1.tx_dropped, g0.tx_dropped,
            "{mode}: the veth ring overflowed"
        );
        assert_eq!(
            g1.tx_packets - g0.tx_packets,
            sent as u64,
            "{mode}: gen0 sent"
        );
        assert_eq!(
            d1.rx_packets - d0.rx_packets,
            sent as u64,
            "{mode}: dut0 received"
        );
        assert_eq!(c.parse_errors, 0, "{mode}: {c:?}");
        if userspace {
            // TCP of both IP versions reaches the sockets (3000 + 500 SYNs,
            // 500 SYN-ACKs, 600 + 200 IPv6 SYNs); the 300 UDP stay in the kernel.
            assert_eq!(
                c.drop,
                drops + drops6,
                "userspace: every spoofed SYN, IPv4 and IPv6, dropped: {c:?}"
            );
            assert_eq!(c.packets, sent as u64 - 300, "{c:?}");
            assert_eq!((c.pass, c.not_handled), (1200, 500), "{c:?}");
        } else {
            assert_eq!(
                c.drop,
                drops + drops6,
                "{mode}: every spoofed SYN, IPv4 and IPv6, dropped: {c:?}"
            );
            assert_eq!(
                c.packets, sent as u64,
                "{mode}: the program saw every frame"
            );
            // Passed: 500 allowed SYNs, 500 SYN-ACKs, 300 UDP, 200 allowed IPv6 SYNs.
            assert_eq!((c.pass, c.not_handled), (1500, 800), "{mode}: {c:?}");
            ok(
                &dut(&["--netns", &ns, "remove", "--iface", "dut0"]),
                "remove",
            );
        }
        assert_eq!(
            attached_name(&bed).as_deref(),
            Some("xdp_pass"),
            "{mode}: placeholder back"
        );
    }
}

/// Removes a directory when dropped.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
