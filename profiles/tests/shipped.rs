//! Every shipped profile, checked frame by frame with independent parsers: etherparse
//! for Ethernet/IPv4/UDP (checksums recomputed by etherparse) and hickory-proto for DNS.

use std::collections::HashSet;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use profiles::profile::{Field, SHIPPED};
use profiles::wire::{dns, probe, udp};
use profiles::{Profile, Template, TemplateOptions};

fn load(name: &str) -> Profile {
    Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What etherparse reads out of a frame, both checksums verified by etherparse's own
/// computation.
#[derive(Debug)]
struct Parsed {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    vlan_ids: Vec<u16>,
    /// TCP: flags byte, sequence number, options.
    tcp: Option<(u8, u32, Vec<u8>)>,
    /// IPv4 total length.
    ip_len: usize,
}

fn parse_frame(f: &[u8]) -> Parsed {
    let p = SlicedPacket::from_ethernet(f).expect("etherparse reads the frame");
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let vlan_ids = p.vlan_ids().iter().map(|v| v.value()).collect();
    let ip_len = usize::from(h.total_len);
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            let want = uh
                .calc_checksum_ipv4(&h, u.payload())
                .expect("udp checksum");
            assert_eq!(uh.checksum, want, "UDP checksum");
            Parsed {
                src: h.source,
                dst: h.destination,
                sport: uh.source_port,
                dport: uh.destination_port,
                payload: u.payload().to_vec(),
                vlan_ids,
                tcp: None,
                ip_len,
            }
        }
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            let want = th
                .calc_checksum_ipv4(&h, t.payload())
                .expect("tcp checksum");
            assert_eq!(th.checksum, want, "TCP checksum");
            let flags = t.slice()[13];
            Parsed {
                src: h.source,
                dst: h.destination,
                sport: th.source_port,
                dport: th.destination_port,
                payload: t.payload().to_vec(),
                vlan_ids,
                tcp: Some((flags, th.sequence_number, t.options().to_vec())),
                ip_len,
            }
        }
        _ => panic!("neither UDP nor TCP"),
    }
}

/// Parses with etherparse and checks both checksums against etherparse's own
/// computation. Returns (src ip, dst ip, src port, dst port, payload).
fn check_frame(f: &[u8]) -> ([u8; 4], [u8; 4], u16, u16, Vec<u8>) {
    let p = parse_frame(f);
    (p.src, p.dst, p.sport, p.dport, p.payload)
}

#[test]
fn every_file_in_the_profiles_folder_loads_and_is_shipped() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = 0;
    for e in std::fs::read_dir(dir).expect("read profiles dir") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml")
            && path.file_name() != Some("Cargo.toml".as_ref())
        {
            files += 1;
            let by_path = Profile::load(path.to_str().expect("utf-8 path")).expect("loads by path");
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("stem");
            let shipped = load(stem);
            assert_eq!(by_path.name, shipped.name);
            assert_eq!(by_path.frame_size, shipped.frame_size);
            assert_eq!(by_path.vary, shipped.vary);
            assert_eq!(by_path.dns, shipped.dns);
        }
    }
    assert_eq!(
        files,
        SHIPPED.len(),
        "each TOML file is embedded as a shipped profile"
    );
}

#[test]
fn every_shipped_profile_builds_valid_frames() {
    for (name, _) in SHIPPED {
        let p = load(name);
        if p.ipv6.is_some() {
            continue; // IPv6 profiles: tests/ipv6.rs
        }
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        assert_eq!(
            t.len() + 4,
            p.frame_size,
            "{name}: buffer is frame_size less FCS (the largest size of a mix)"
        );
        assert!(t.len() >= 60);
        assert!(p.frame_size >= p.min_frame_size(), "{name}");
        let mut buf = vec![0u8; t.len()];
        t.fill(&mut buf);
        for n in [
            0u64,
            1,
            2,
            3,
            11,
            12,
            255,
            256,
            65535,
            65536,
            1 << 20,
            123_456_789,
        ] {
            let len = t.write(&mut buf, n, None);
            assert_eq!(len, t.len_of(n), "{name}");
            assert_eq!(
                &buf[..len],
                &t.frame_for(n, None)[..],
                "{name}: patching any frame gives frame n"
            );
            let f = parse_frame(&buf[..len]);
            if !p.vary.iter().any(|v| v.field == Field::Ipv4Src) {
                assert_eq!(f.src, p.ip_src.octets(), "{name}");
            }
            assert_eq!(f.dst, p.ip_dst.octets());
            let tags: Vec<u16> = p.vlans.iter().map(|v| v.id).collect();
            if !p
                .vary
                .iter()
                .any(|v| matches!(v.field, Field::VlanId | Field::InnerVlanId))
            {
                assert_eq!(f.vlan_ids, tags, "{name}");
            }
            assert_eq!(f.vlan_ids.len(), p.vlans.len(), "{name}");
            match &p.tcp {
                Some(tcp) => {
                    assert_eq!(f.dport, tcp.dst_port);
                    let (flags, _, opts) = f.tcp.as_ref().expect("tcp");
                    assert_eq!(*flags, tcp.flags);
                    assert_eq!(opts, &tcp.options);
                }
                None => {
                    assert_eq!(f.dport, p.udp_dst);
                    // Our own parser agrees with etherparse.
                    assert!(
                        udp::parse(&buf[..len])
                            .expect("own parser")
                            .udp_checksum_ok()
                    );
                }
            }
            if p.dns.is_none() {
                // No Ethernet padding: IPv4 covers the frame after the L2 header.
                assert_eq!(f.ip_len, len - p.layout().ip_at, "{name}");
            }
        }
    }
}

#[test]
fn min_multi_flow_spreads_over_256_flows_and_single_flow_is_identical() {
    let multi = Template::new(&load("min-multi-flow"), TemplateOptions::default()).expect("t");
    let flows: HashSet<_> = (0..10_000u64)
        .map(|n| {
            let (s, d, sp, dp, _) = check_frame(&multi.frame_for(n, None));
            (s, d, sp, dp)
        })
        .collect();
    assert_eq!(flows.len(), 256);
    assert_eq!(load("min-multi-flow").flows(), 256);
    assert_eq!(multi.len(), 60);

    let single_p = load("min-single-flow");
    assert_eq!(single_p.flows(), 1);
    let single = Template::new(&single_p, TemplateOptions::default()).expect("t");
    assert!(!single.varies());
    let f0 = single.frame_for(0, None);
    assert!((1..1000).all(|n| single.frame_for(n, None) == f0));
    check_frame(&f0);
}

#[test]
fn dns_profiles_ask_their_whole_name_set_with_unique_port_and_id() {
    for (name, count) in [
        ("dns-ping", 1u64),
        ("dns-small", 1296),
        ("dns-large", 1_679_616),
    ] {
        let p = load(name);
        let d = p.dns.as_ref().expect("dns");
        assert_eq!(d.names.count(), count, "{name}");
        let t = Template::new(&p, TemplateOptions::default()).expect("t");
        let mut seen_names = HashSet::new();
        let mut seen_keys = HashSet::new();
        let n_frames = 3000u64;
        for n in 0..n_frames {
            let f = t.frame_for(n, None);
            let (_, _, sport, dport, payload) = check_frame(&f);
            assert_eq!(dport, 53);
            let m =
                hickory_proto::op::Message::from_vec(&payload).expect("hickory parses the query");
            assert_eq!(m.message_type(), hickory_proto::op::MessageType::Query);
            assert_eq!(m.queries().len(), 1);
            let q = &m.queries()[0];
            assert_eq!(u16::from(q.query_type()), 1);
            let qname = q.name().to_ascii();
            // Frame n asks name n (sequential order).
            let dotted = match qname.trim_end_matches('.') {
                "" => ".",
                other => other,
            };
            assert_eq!(dotted, d.names.name(n % count), "{name} frame {n}");
            seen_names.insert(qname);
            assert!(
                seen_keys.insert((sport, m.id())),
                "{name}: (port, id) repeats at {n}"
            );
        }
        assert_eq!(seen_names.len() as u64, count.min(n_frames), "{name}");
    }
    // (port, id) stays unique across the 16-bit ID wrap: frame n and n + 65536 differ in port.
    let t = Template::new(&load("dns-ping"), TemplateOptions::default()).expect("t");
    let a = udp::parse(&t.frame_for(5, None))
        .map(|u| (u.src_port, u.payload[..2].to_vec()))
        .expect("a");
    let b = udp::parse(&t.frame_for(5 + 65536, None))
        .map(|u| (u.src_port, u.payload[..2].to_vec()))
        .expect("b");
    assert_eq!(a.1, b.1);
    assert_ne!(a.0, b.0);
}

#[test]
fn dns_ping_is_minimum_size() {
    let p = load("dns-ping");
    assert_eq!(p.frame_size, 64);
    let t = Template::new(&p, TemplateOptions::default()).expect("t");
    let f = t.frame();
    let u = udp::parse(f).expect("parse");
    let q = dns::Packet::new_checked(u.payload).expect("dns");
    assert_eq!(
        q.question().expect("question").end,
        u.payload.len(),
        "no trailing bytes in the DNS message"
    );
    assert_eq!(
        f.len(),
        60,
        "the smallest DNS query (for the root) fills a 60-byte buffer"
    );
}

#[test]
fn stamped_frames_carry_the_probe_and_valid_checksums() {
    let p = load("min-multi-flow");
    let t = Template::new(&p, TemplateOptions { stamp: true }).expect("t");
    for n in 0..100u64 {
        let pr = probe::Repr {
            stream: (n % 3) as u8,
            counter: n,
            tx_ns: 1_700_000_000_000_000_000 + n,
        };
        let f = t.frame_for(n, Some(pr));
        let (_, _, _, _, payload) = check_frame(&f);
        let got = probe::Repr::parse(&probe::Packet::new_checked(&payload[..]).expect("probe"))
            .expect("parse");
        assert_eq!(got, pr);
    }
    assert!(Template::new(&load("dns-small"), TemplateOptions { stamp: true }).is_err());
}

#[test]
fn syn_flood_sends_linux_syns_from_a_seeded_prng() {
    let p = load("syn-flood");
    assert_eq!(p.seed, Some(20_261_201));
    assert_eq!(p.frame_size, 78);
    assert_eq!(p.min_frame_size(), 78, "74 bytes of headers + FCS");
    let t = Template::new(&p, TemplateOptions::default()).expect("t");
    assert_eq!(t.len(), 74);
    // MSS 1460, SACK permitted, timestamps (1, 0), NOP, window scale 7.
    let linux = [
        2u8, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let mut flows = HashSet::new();
    let mut seqs = HashSet::new();
    for n in 0..5000u64 {
        let f = t.frame_for(n, None);
        let parsed = parse_frame(&f);
        let (flags, seq, opts) = parsed.tcp.clone().expect("tcp");
        assert_eq!(flags, profiles::wire::tcp::SYN);
        assert_eq!(opts, linux);
        assert_eq!(u16::from_be_bytes([f[48], f[49]]), 64240, "window");
        assert_eq!(f[46] >> 4, 10, "data offset: 40 bytes of header");
        assert!(parsed.payload.is_empty());
        assert_eq!(&parsed.src[..2], &[198, 18]);
        assert!(
            parsed.src[2] >= 128,
            "source in 198.18.128.0/17: {:?}",
            parsed.src
        );
        assert!(parsed.sport >= 1024);
        assert_eq!(parsed.dport, 80);
        // Our own TCP checksum agrees with etherparse's.
        let mut seg = f[34..].to_vec();
        let sent = u16::from_be_bytes([seg[16], seg[17]]);
        seg[16..18].fill(0);
        assert_eq!(
            profiles::wire::checksum::tcp4(parsed.src, parsed.dst, &seg),
            sent
        );
        flows.insert((parsed.src, parsed.sport));
        seqs.insert(seq);
    }
    assert!(
        flows.len() > 4990,
        "random sources: {} distinct",
        flows.len()
    );
    assert!(seqs.len() > 4990, "random sequence numbers");
    // Reproducible: another template of the same profile sends the same frames...
    let again = Template::new(&load("syn-flood"), TemplateOptions::default()).expect("t");
    for n in [0u64, 7, 99_999, 1 << 40] {
        assert_eq!(t.frame_for(n, None), again.frame_for(n, None));
    }
    // ...and another seed other ones.
    let other =
        Profile::from_toml("parent = \"syn-flood\"\nseed = 1\n", "other.toml").expect("child");
    let o = Template::new(&other, TemplateOptions::default()).expect("t");
    assert_ne!(t.frame_for(3, None), o.frame_for(3, None));
    parse_frame(&o.frame_for(3, None));
}

#[test]
fn imix_interleaves_its_sizes_over_each_weight_period() {
    let p = load("imix");
    let t = Template::new(&p, TemplateOptions::default()).expect("t");
    assert!(t.sizes_vary());
    assert_eq!(t.len(), 1514, "the buffer holds the largest frame");
    // Smooth weighted round-robin of 7:4:1 (nginx's, worked by hand): a b a a b a c
    // a b a b a over each period of 12, never a block of the same size.
    let want = [60usize, 590, 60, 60, 590, 60, 1514, 60, 590, 60, 590, 60];
    for period in [0u64, 1, 1000] {
        let got: Vec<usize> = (0..12).map(|i| t.len_of(period * 12 + i)).collect();
        assert_eq!(got, want);
    }
    let mut counts = std::collections::HashMap::new();
    let mut buf = vec![0u8; t.len()];
    t.fill(&mut buf);
    // One reused buffer through every size: lengths, IPv4/UDP lengths and checksums
    // follow frame n's size.
    for n in (0..120u64).chain([12345, 99_999_999]) {
        let len = t.write(&mut buf, n, None);
        *counts.entry(len).or_insert(0) += u64::from(n < 120);
        assert_eq!(&buf[..len], &t.frame_for(n, None)[..]);
        let f = parse_frame(&buf[..len]);
        assert_eq!(f.ip_len, len - 14);
        assert_eq!(f.payload.len(), len - 42);
    }
    assert_eq!(counts[&60], 70);
    assert_eq!(counts[&590], 40);
    assert_eq!(counts[&1514], 10);
    assert!((t.mean_len() - (7.0 * 60.0 + 4.0 * 590.0 + 1514.0) / 12.0).abs() < 1e-9);
    // A queue's bytes from its cycle equal the sum of its frames' lengths.
    for (q, nq) in [(0u64, 1u64), (1, 2), (2, 3), (3, 8), (4, 5)] {
        let c = t.size_cycle(q, nq);
        let mut sum = 0u64;
        for m in 0..200u64 {
            assert_eq!(c.bytes(m), sum, "queue {q} of {nq}, {m} frames");
            sum += t.len_of(q + m * nq) as u64;
        }
    }
    // Stamped IMIX frames carry the probe in every size.
    let st = Template::new(&p, TemplateOptions { stamp: true }).expect("stamp");
    for n in 0..24u64 {
        let pr = probe::Repr {
            stream: 1,
            counter: n,
            tx_ns: 5 + n,
        };
        let f = parse_frame(&st.frame_for(n, Some(pr)));
        let got = probe::Repr::parse(&probe::Packet::new_checked(&f.payload[..]).expect("probe"))
            .expect("parse");
        assert_eq!(got, pr);
    }
}

#[test]
fn vlan_and_qinq_tags_move_the_headers() {
    let base = Template::new(&load("min-multi-flow"), TemplateOptions::default()).expect("t");
    let p = load("min-multi-flow-vlan");
    assert_eq!(p.layout().ip_at, 18);
    let t = Template::new(&p, TemplateOptions::default()).expect("t");
    assert_eq!(t.len(), 60);
    for n in [0u64, 1, 255, 256, 1000] {
        let f = t.frame_for(n, None);
        let b = base.frame_for(n, None);
        assert_eq!(&f[..12], &b[..12]);
        assert_eq!(&f[12..18], &[0x81, 0x00, 0x00, 100, 0x08, 0x00]);
        // Same addresses and ports, 4 bytes less UDP payload.
        assert_eq!(&f[18 + 12..18 + 24], &b[14 + 12..14 + 24]);
        let pf = parse_frame(&f);
        assert_eq!(pf.vlan_ids, [100]);
        assert_eq!(pf.payload.len(), 14);
        assert!(udp::parse(&f).expect("own parser").udp_checksum_ok());
    }

    let q = load("min-multi-flow-qinq");
    let lay = q.layout();
    assert_eq!(
        (lay.tags, lay.ip_at, lay.l4_at, lay.payload_at),
        (2, 22, 42, 50)
    );
    let t = Template::new(&q, TemplateOptions::default()).expect("t");
    let mut inner = HashSet::new();
    for n in 0..64u64 {
        let f = t.frame_for(n, None);
        // S-tag 0x88a8, PCP 3, VLAN 200; C-tag 0x8100, VLAN 100 + n % 16; IPv4.
        assert_eq!(&f[12..16], &[0x88, 0xa8, 0x60, 200]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        let id = u16::from_be_bytes([f[18], f[19]]);
        assert_eq!(id, 100 + (n % 16) as u16, "frame {n}");
        assert_eq!(&f[20..22], &[0x08, 0x00]);
        assert_eq!(f[22], 0x45);
        assert_eq!(u16::from_be_bytes([f[42], f[43]]), 1024 + (n % 256) as u16);
        let pf = parse_frame(&f);
        assert_eq!(pf.vlan_ids, [200, id]);
        assert!(udp::parse(&f).expect("own parser").udp_checksum_ok());
        inner.insert(id);
    }
    assert_eq!(inner.len(), 16);
}

#[test]
fn children_inherit_and_replace_vlan_tags() {
    let c = Profile::from_toml(
        "parent = \"min-multi-flow-vlan\"\nframe_size = 128\n",
        "child.toml",
    )
    .expect("child");
    assert_eq!(c.vlans.len(), 1);
    assert_eq!(c.vlans[0].id, 100);
    assert_eq!(c.vlans[0].tpid, 0x8100);
    let t = Template::new(&c, TemplateOptions::default()).expect("t");
    assert_eq!(parse_frame(&t.frame_for(3, None)).vlan_ids, [100]);
    let untagged = Profile::from_toml(
        "parent = \"min-multi-flow-qinq\"\nvlan = []\nvary = []\n",
        "u.toml",
    )
    .expect("untagged");
    assert!(untagged.vlans.is_empty());
    let t = Template::new(&untagged, TemplateOptions::default()).expect("t");
    let base = Template::new(&load("min-single-flow"), TemplateOptions::default()).expect("t");
    assert_eq!(
        t.frame(),
        base.frame(),
        "tags removed: min-single-flow's frame"
    );
    // A child of QinQ that varies the outer ID instead.
    let v = Profile::from_toml(
        "parent = \"min-multi-flow-qinq\"\n[[vary]]\nfield = \"vlan.id\"\nmode = \"list\"\nvalues = [7, 4094]\n",
        "v.toml",
    )
    .expect("outer");
    let t = Template::new(&v, TemplateOptions::default()).expect("t");
    assert_eq!(parse_frame(&t.frame_for(1, None)).vlan_ids, [4094, 100]);
    assert_eq!(
        &t.frame_for(1, None)[14..16],
        &[0x6f, 0xfe],
        "PCP 3 kept above the ID"
    );
}
