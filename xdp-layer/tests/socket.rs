//! The AF_XDP sockets of `xdplayer` on real veth pairs (a direct lab per test, unique names,
//! torn down on drop): TX counted by an ordinary UDP socket on the peer, RX through
//! our redirect program, the lab's placeholder restored, foreign programs refused.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use profiles::{Profile, Template, TemplateOptions};
use xdplayer::{self as af_xdp, BoundMode, Filter, XskConfig, XskError, XskMode, XskPort};

mod common;
use common::up;

fn prog_on(host: &testbed::Host) -> Option<String> {
    common::prog_on(&host.netns, &host.iface).map(|(_, n)| n)
}

#[test]
fn tx_frames_reach_an_ordinary_socket() {
    let bed = up("xtx");
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let sock = d
        .run_in(|| UdpSocket::bind("198.18.0.2:9").expect("bind"))
        .expect("run_in");
    // Waits end as soon as every frame is in; long only for a loaded machine.
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let tpl = Template::new(
        &Profile::load("min-single-flow").expect("profile"),
        TemplateOptions::default(),
    )
    .expect("template");
    let n = 2000usize;
    let iface = g.iface.clone();
    let mut port = g
        .run_in(move || {
            let mut c = XskConfig::new(iface);
            c.rx = false;
            c.redirect = None;
            c.frame_count = 256;
            c.mode = XskMode::Auto;
            XskPort::open(&c)
        })
        .expect("run_in")
        .expect("open TX port");
    assert_eq!(
        port.bound_mode(),
        BoundMode::Copy,
        "veth binds in copy mode"
    );
    assert_eq!(
        prog_on(&g).as_deref(),
        Some("xdp_pass"),
        "TX-only leaves the placeholder"
    );
    let mut q = port.take_queues().pop().expect("one queue");
    q.prefill(|buf| {
        tpl.fill(buf);
        tpl.len()
    });
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while sent < n && Instant::now() < deadline {
        sent += q.send_batch((n - sent).min(32), |_, _| tpl.len());
        // Drain as we go so the socket buffer never overflows.
        sock.set_nonblocking(true).expect("nonblocking");
        while sock.recv(&mut buf).is_ok() {
            got += 1;
        }
    }
    assert_eq!(sent, n);
    while q.tx_in_flight() > 0 && Instant::now() < deadline {
        q.complete();
        q.kick();
    }
    sock.set_nonblocking(false).expect("blocking");
    while got < n
        && let Ok(len) = sock.recv(&mut buf)
    {
        assert_eq!(len, tpl.len() - 42, "UDP payload of the template");
        got += 1;
    }
    // Nothing beyond the n frames.
    sock.set_nonblocking(true).expect("nonblocking");
    while sock.recv(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, n, "every AF_XDP frame reached the peer's UDP socket");
    let st = q.stats().expect("stats");
    assert_eq!(st.tx_packets, n as u64);
    assert_eq!(st.tx_completed, n as u64);
    assert_eq!(st.tx_invalid_descs, 0);
}

#[test]
fn rx_through_redirect_passes_the_rest_and_restores_placeholder() {
    let bed = up("xrx");
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let iface = d.iface.clone();
    let mut port = d
        .run_in(move || {
            let mut c = XskConfig::new(iface);
            c.tx = false;
            c.redirect = Some(Filter {
                proto: Some(17),
                dst_port: Some(7777),
                ..Filter::default()
            });
            XskPort::open(&c)
        })
        .expect("run_in")
        .expect("open RX port");
    assert_eq!(prog_on(&d).as_deref(), Some(af_xdp::REDIRECT_PROG));
    let mut q = port.take_queues().pop().expect("one queue");
    let n = 500usize;
    let sender = g
        .run_in(|| UdpSocket::bind("198.18.0.1:0").expect("bind"))
        .expect("run_in");
    for i in 0..n {
        let msg = format!("xsk-{i:05}");
        sender
            .send_to(msg.as_bytes(), "198.18.0.2:7777")
            .expect("send");
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Not for us: port 7778 goes to the kernel (a socket there gets it).
    let other = d
        .run_in(|| UdpSocket::bind("198.18.0.2:7778").expect("bind"))
        .expect("run_in");
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    sender.send_to(b"kernel", "198.18.0.2:7778").expect("send");
    let mut buf = [0u8; 64];
    assert_eq!(
        other
            .recv(&mut buf)
            .expect("the kernel got the non-matching datagram"),
        6
    );

    let mut got = 0;
    let mut ts_ok = true;
    let deadline = Instant::now() + Duration::from_secs(30);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    while got < n && Instant::now() < deadline {
        if !q.poll_rx(100) {
            continue;
        }
        got += q.recv_batch(64, |frame, meta| {
            assert!(frame.len() >= 42 + 9);
            assert_eq!(&frame[42..46], b"xsk-");
            ts_ok &= meta.sw_ns + 10_000_000_000 > now_ns && meta.hw_ns.is_none();
        });
    }
    assert_eq!(
        got, n,
        "every matching datagram arrived on the AF_XDP socket"
    );
    assert!(ts_ok, "software timestamps are current");
    let (redirected, _passed) = port.redirect_counters().expect("counters");
    assert!(redirected >= n as u64);
    let st = q.stats().expect("stats");
    assert_eq!(st.rx_packets, n as u64);
    drop(q);
    drop(port);
    assert_eq!(
        prog_on(&d).as_deref(),
        Some("xdp_pass"),
        "placeholder restored after drop"
    );
}

#[test]
fn foreign_program_refused_without_force_and_restored_with_it() {
    let bed = up("xfo");
    let d = bed.dut().clone();
    testbed::attach_reflect(&d.netns, &d.iface).expect("attach reflector");
    let foreign = prog_on(&d).expect("a program");
    assert_ne!(foreign, "xdp_pass");
    let open = |force: bool| {
        let iface = d.iface.clone();
        d.run_in(move || {
            let mut c = XskConfig::new(iface);
            c.force = force;
            XskPort::open(&c)
        })
        .expect("run_in")
    };
    match open(false) {
        Err(e @ XskError::Foreign { .. }) => assert!(e.to_string().contains("--force"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        prog_on(&d).as_deref(),
        Some(foreign.as_str()),
        "untouched after refusal"
    );
    let port = open(true).expect("open with force");
    assert_eq!(prog_on(&d).as_deref(), Some(af_xdp::REDIRECT_PROG));
    port.close().expect("close");
    assert_eq!(
        prog_on(&d).as_deref(),
        Some(foreign.as_str()),
        "foreign program put back"
    );
}

#[test]
fn more_queues_than_the_nic_has_is_one_clear_error() {
    let bed = up("xq");
    let d = bed.dut().clone();
    let iface = d.iface.clone();
    let r = d
        .run_in(move || {
            let mut c = XskConfig::new(iface);
            c.queues = vec![0, 5];
            XskPort::open(&c)
        })
        .expect("run_in");
    match r {
        Err(e @ XskError::NoSuchQueue { .. }) => assert!(e.to_string().contains("queue 5"), "{e}"),
        other => panic!("expected NoSuchQueue, got {other:?}"),
    }
    assert_eq!(prog_on(&d).as_deref(), Some("xdp_pass"));
}

#[test]
fn zero_copy_on_veth_is_one_clear_error_and_auto_falls_back_to_copy() {
    let bed = up("xzc");
    let d = bed.dut().clone();
    let open = |mode: XskMode| {
        let iface = d.iface.clone();
        d.run_in(move || {
            let mut c = XskConfig::new(iface);
            c.mode = mode;
            XskPort::open(&c)
        })
        .expect("run_in")
    };
    match open(XskMode::ZeroCopy) {
        Err(e @ XskError::ZeroCopyUnsupported { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("zero-copy") && msg.contains("copy mode"),
                "{msg}"
            );
        }
        other => panic!("veth cannot do zero-copy, got {other:?}"),
    }
    assert_eq!(
        prog_on(&d).as_deref(),
        Some("xdp_pass"),
        "nothing left attached"
    );
    let port = open(XskMode::Auto).expect("auto");
    assert_eq!(port.bound_mode(), BoundMode::Copy);
    assert_eq!(port.attach_mode(), Some("native"));
    drop(port);
    assert_eq!(prog_on(&d).as_deref(), Some("xdp_pass"));
}

#[test]
fn hw_timestamps_on_veth_report_why_they_are_missing() {
    let bed = up("xhw");
    let (g, d) = (bed.generator().clone(), bed.dut().clone());
    let iface = d.iface.clone();
    let mut port = d
        .run_in(move || {
            let mut c = XskConfig::new(iface);
            c.tx = false;
            c.hw_timestamps = true;
            c.redirect = Some(Filter {
                proto: Some(17),
                dst_port: Some(7777),
                ..Filter::default()
            });
            XskPort::open(&c)
        })
        .expect("run_in")
        .expect("device-bound redirect program loads on veth");
    let mut q = port.take_queues().pop().expect("queue");
    let sender = g
        .run_in(|| UdpSocket::bind("198.18.0.1:0").expect("bind"))
        .expect("run_in");
    for i in 0..20u8 {
        sender
            .send_to(&[b'h', b'w', i], "198.18.0.2:7777")
            .expect("send");
    }
    let mut got = 0;
    let mut hw = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 20 && Instant::now() < deadline {
        if q.poll_rx(100) {
            got += q.recv_batch(64, |frame, meta| {
                assert_eq!(
                    &frame[42..44],
                    b"hw",
                    "the frame itself is intact after the metadata"
                );
                hw += usize::from(meta.hw_ns.is_some());
            });
        }
    }
    assert_eq!(got, 20);
    assert_eq!(hw, 0, "veth has no NIC timestamps");
    let st = q.stats().expect("stats");
    assert_eq!(st.hw_ts_missing, 20);
    assert!(
        st.hw_ts_last_err < 0,
        "the metadata arrived and carries the kfunc's error"
    );
    let why = af_xdp::hw_ts_error_text(st.hw_ts_last_err);
    assert!(
        why.contains("ENODATA") || why.contains("EOPNOTSUPP"),
        "{why}"
    );
    drop(q);
    drop(port);
    assert_eq!(prog_on(&d).as_deref(), Some("xdp_pass"));
}
