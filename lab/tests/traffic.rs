//! Traffic through the lab: ordinary UDP sockets across the switch (and the
//! direct pair), and the key case: an AF_XDP transmit from gen0 and the
//! DUT's XDP_TX answer both seen on the monitor port. Real kernel, root.

mod common;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::{Capture, is_udp_with, src_mac, udp_checksum_ok};
use testbed::{DUT_IP, DUT_MAC, GEN_IP, GEN_MAC, Testbed, Topology, UpOptions, unique_name};

fn up(prefix: &str, topology: Topology) -> Testbed {
    Testbed::up(&UpOptions {
        name: unique_name(prefix),
        topology,
        queues: 1,
    })
    .expect("lab up")
}

/// Sends `count` UDP requests gen -> dut with ordinary sockets, answers each
/// from the DUT, and returns (requests received at dut, replies at gen).
/// Timeouts and deadlines here are generous: they end as soon as what is awaited
/// arrives and only matter on a loaded machine.
fn udp_ping_pong(bed: &Testbed, req: &[u8], rsp: &[u8], count: usize) -> (usize, usize) {
    let dut = bed
        .dut()
        .run_in(|| UdpSocket::bind((DUT_IP, 7777)))
        .expect("run_in dut")
        .expect("bind on dut");
    let client = bed
        .r#gen()
        .run_in(|| UdpSocket::bind((GEN_IP, 0)))
        .expect("run_in gen")
        .expect("bind on gen");
    let timeout = Some(Duration::from_secs(10));
    dut.set_read_timeout(timeout).expect("timeout");
    client.set_read_timeout(timeout).expect("timeout");
    let (mut at_dut, mut at_gen) = (0, 0);
    let mut buf = [0u8; 2048];
    for _ in 0..count {
        client
            .send_to(req, SocketAddr::from((DUT_IP, 7777)))
            .expect("send request");
        if let Ok((n, from)) = dut.recv_from(&mut buf) {
            if buf[..n] == *req {
                at_dut += 1;
            }
            dut.send_to(rsp, from).expect("send reply");
            if let Ok(n) = client.recv(&mut buf)
                && buf[..n] == *rsp
            {
                at_gen += 1;
            }
        }
    }
    (at_dut, at_gen)
}

#[test]
fn udp_through_the_switch_is_mirrored_both_ways() {
    let bed = up("udp", Topology::Switched);
    let mon = bed.mon().expect("switched lab has a monitor");
    let cap = Capture::open(mon).expect("capture on mon0");
    let req = format!("LABREQ-{}", bed.name()).into_bytes();
    let rsp = format!("LABRSP-{}", bed.name()).into_bytes();
    const N: usize = 5;

    let (at_dut, at_gen) = udp_ping_pong(&bed, &req, &rsp, N);
    assert_eq!((at_dut, at_gen), (N, N), "UDP did not cross the switch");

    let frames = cap.collect(2 * N, Duration::from_secs(20), |f| {
        is_udp_with(f, &req) || is_udp_with(f, &rsp)
    });
    let reqs: Vec<_> = frames.iter().filter(|f| is_udp_with(f, &req)).collect();
    let rsps: Vec<_> = frames.iter().filter(|f| is_udp_with(f, &rsp)).collect();
    assert_eq!(reqs.len(), N, "requests mirrored to mon0");
    assert_eq!(rsps.len(), N, "replies mirrored to mon0");
    for f in &reqs {
        assert_eq!(src_mac(f), GEN_MAC);
        assert_eq!(&f[0..6], &DUT_MAC);
        // TX checksum offload is off: the wire carries real checksums.
        assert!(udp_checksum_ok(f), "bad UDP checksum in request {f:02x?}");
    }
    for f in &rsps {
        assert_eq!(src_mac(f), DUT_MAC);
        assert!(udp_checksum_ok(f), "bad UDP checksum in reply {f:02x?}");
    }
    bed.down().expect("down");
}

#[test]
fn udp_across_the_direct_pair() {
    let bed = up("dirudp", Topology::Direct);
    assert!(bed.mon().is_none());
    let (at_dut, at_gen) = udp_ping_pong(&bed, b"LABREQ-direct", b"LABRSP-direct", 3);
    assert_eq!((at_dut, at_gen), (3, 3));
}

/// Sends `frames` from an AF_XDP socket (copy mode, TX only, libxdp's
/// program inhibited) bound to queue 0 of the host's port; returns how many
/// the kernel completed.
fn af_xdp_send(host: &testbed::Host, frames: &[Vec<u8>]) -> usize {
    use xsk_rs::config::{BindFlags, LibxdpFlags, SocketConfig, UmemConfig};
    use xsk_rs::{Socket, Umem};

    let iface = host.iface.clone();
    host.run_in(move || {
        let count = NonZeroU32::new(64).expect("nonzero");
        let (umem, mut descs) =
            Umem::new(UmemConfig::default(), count, false).expect("create UMEM");
        let config = SocketConfig::builder()
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(BindFlags::XDP_COPY)
            .build();
        let if_name = iface.parse().expect("interface name");
        // SAFETY: the UMEM is not shared with any other socket.
        let (mut tx, _rx, rings) =
            unsafe { Socket::new(config, &umem, &if_name, 0) }.expect("create AF_XDP socket");
        let (_fq, mut cq) = rings.expect("fill and completion rings");

        for (desc, frame) in descs.iter_mut().zip(frames) {
            // SAFETY: the frame belongs to us (not handed to the kernel yet).
            unsafe { umem.data_mut(desc) }
                .cursor()
                .write_all(frame)
                .expect("write frame");
        }
        let n = frames.len();
        // SAFETY: the descriptors point at frames of this UMEM, written above.
        let queued = unsafe { tx.produce(&descs[..n]) };
        assert_eq!(queued, n, "TX ring full");

        let mut done = 0;
        let mut spare = descs.clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        while done < n && Instant::now() < deadline {
            // Copy mode transmits on sendto(); kick until all completed.
            let _ = tx.wakeup();
            // SAFETY: completed descriptors are written into our own slice.
            done += unsafe { cq.consume(&mut spare[..]) };
            std::thread::sleep(Duration::from_millis(5));
        }
        done
    })
    .expect("run_in gen")
}

#[test]
fn af_xdp_request_and_xdp_tx_answer_both_reach_the_monitor() {
    let bed = up("xsk", Topology::Switched);
    let dut = bed.dut();
    testbed::attach_reflect(&dut.netns, &dut.iface).expect("attach reflector on dut0");
    let mon = bed.mon().expect("switched lab has a monitor");
    let cap_mon = Capture::open(mon).expect("capture on mon0");
    let cap_gen = Capture::open(bed.r#gen()).expect("capture on gen0");

    let marker = format!("LABXSK-{}", bed.name()).into_bytes();
    const N: usize = 16;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut payload = marker.clone();
            payload.extend_from_slice(&(i as u32).to_be_bytes());
            common::udp_frame(GEN_MAC, DUT_MAC, GEN_IP, DUT_IP, 40000, 9, &payload)
        })
        .collect();

    let sent = af_xdp_send(bed.r#gen(), &frames);
    assert_eq!(sent, N, "AF_XDP completions");

    let seen = cap_mon.collect(2 * N, Duration::from_secs(20), |f| is_udp_with(f, &marker));
    let requests = seen.iter().filter(|f| src_mac(f) == GEN_MAC).count();
    let answers = seen.iter().filter(|f| src_mac(f) == DUT_MAC).count();
    assert_eq!(requests, N, "AF_XDP requests on mon0");
    assert_eq!(answers, N, "XDP_TX answers on mon0");

    // And the answers made it all the way back to the generator's port.
    let back = cap_gen.collect(N, Duration::from_secs(20), |f| {
        is_udp_with(f, &marker) && src_mac(f) == DUT_MAC
    });
    assert_eq!(back.len(), N, "XDP_TX answers at gen0");

    // Restoring XDP_PASS on dut0 works (what tools do after their runs).
    testbed::attach_pass(&dut.netns, &dut.iface).expect("restore XDP_PASS");
    bed.down().expect("down");
}

#[test]
fn tenants_sit_behind_the_host_bridge() {
    let bed = up("ten", Topology::Tenants);
    let (t1, t2) = (
        bed.tenant(1).expect("tenant 1"),
        bed.tenant(2).expect("tenant 2"),
    );
    assert_eq!(t1.ip, Some(testbed::tenant_ip(1)));
    let mon = bed.mon().expect("tenants lab has a monitor");
    let cap_mon = Capture::open(mon).expect("capture on mon0");
    let cap_t1 = Capture::open(t1).expect("capture on t1");
    let cap_t2 = Capture::open(t2).expect("capture on t2");

    // Ordinary sockets: gen -> switch -> host bridge -> each tenant, and
    // back; both directions on the mirror.
    for (i, t) in [(1u8, t1), (2, t2)] {
        let ip = testbed::tenant_ip(i);
        let server = t
            .run_in(|| UdpSocket::bind((ip, 7777)))
            .expect("run_in tenant")
            .expect("bind in tenant");
        let client = bed
            .r#gen()
            .run_in(|| UdpSocket::bind((GEN_IP, 0)))
            .expect("run_in gen")
            .expect("bind on gen");
        let timeout = Some(Duration::from_secs(3));
        server.set_read_timeout(timeout).expect("timeout");
        client.set_read_timeout(timeout).expect("timeout");
        let req = format!("TENREQ{i}-{}", bed.name()).into_bytes();
        let rsp = format!("TENRSP{i}-{}", bed.name()).into_bytes();
        client
            .send_to(&req, SocketAddr::from((ip, 7777)))
            .expect("send");
        let mut buf = [0u8; 2048];
        let (n, from) = server.recv_from(&mut buf).expect("request at the tenant");
        assert_eq!(&buf[..n], &req[..]);
        server.send_to(&rsp, from).expect("reply");
        let n = client.recv(&mut buf).expect("reply at gen");
        assert_eq!(&buf[..n], &rsp[..]);
        let seen = cap_mon.collect(2, Duration::from_secs(3), |f| {
            is_udp_with(f, &req) || is_udp_with(f, &rsp)
        });
        assert_eq!(seen.len(), 2, "tenant {i}: request and reply mirrored");
        assert!(seen.iter().any(|f| src_mac(f) == testbed::tenant_mac(i)));
    }

    // The second port: frames out of gen1 for tenant 2 reach tenant 2 only,
    // without crossing the switch.
    let (gen1, _) = bed.second_port().expect("second port");
    let marker = format!("TENXSK-{}", bed.name()).into_bytes();
    const N: usize = 8;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|_| {
            common::udp_frame(
                testbed::GEN1_MAC,
                testbed::tenant_mac(2),
                GEN_IP,
                testbed::tenant_ip(2),
                40000,
                9,
                &marker,
            )
        })
        .collect();
    assert_eq!(af_xdp_send(gen1, &frames), N, "AF_XDP completions on gen1");
    let at_t2 = cap_t2.collect(N, Duration::from_secs(3), |f| is_udp_with(f, &marker));
    assert_eq!(at_t2.len(), N, "gen1 -> tenant 2");
    let quiet = Duration::from_millis(300);
    assert!(
        cap_t1
            .collect(1, quiet, |f| is_udp_with(f, &marker))
            .is_empty(),
        "tenant 1 saw tenant 2's frames"
    );
    assert!(
        cap_mon
            .collect(1, quiet, |f| is_udp_with(f, &marker))
            .is_empty(),
        "gen1's frames crossed the switch"
    );
    bed.down().expect("down");
}
