//! Every shipped profile, checked frame by frame with independent parsers: etherparse
//! for Ethernet/IPv4/UDP (checksums recomputed by etherparse) and hickory-proto for DNS.

use std::collections::HashSet;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use profiles::profile::SHIPPED;
use profiles::wire::{dns, probe, udp4};
use profiles::{Profile, Template, TemplateOptions};

fn load(name: &str) -> Profile {
    Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parses with etherparse and checks both checksums against etherparse's own
/// computation. Returns (src ip, dst ip, src port, dst port, payload).
fn check_frame(f: &[u8]) -> ([u8; 4], [u8; 4], u16, u16, Vec<u8>) {
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
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("not UDP")
    };
    let uh = u.to_header();
    let want = uh
        .calc_checksum_ipv4(&h, u.payload())
        .expect("udp checksum");
    assert_eq!(uh.checksum, want, "UDP checksum");
    (
        h.source,
        h.destination,
        uh.source_port,
        uh.destination_port,
        u.payload().to_vec(),
    )
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
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        assert_eq!(
            t.len() + 4,
            p.frame_size,
            "{name}: buffer is frame_size less FCS"
        );
        assert!(t.len() >= 60);
        let mut buf = vec![0u8; t.len()];
        t.fill(&mut buf);
        for n in [0u64, 1, 2, 255, 256, 65535, 65536, 1 << 20, 123_456_789] {
            t.write(&mut buf, n, None);
            assert_eq!(
                buf,
                t.frame_for(n, None),
                "{name}: patching any frame gives frame n"
            );
            let (src, dst, _, dport, _) = check_frame(&buf);
            if !p
                .vary
                .iter()
                .any(|v| v.field == profiles::profile::Field::Ipv4Src)
            {
                assert_eq!(src, p.ip_src.octets(), "{name}");
            }
            assert_eq!(dst, p.ip_dst.octets());
            assert_eq!(dport, p.udp_dst);
            // Our own parser agrees with etherparse.
            assert!(udp4::parse(&buf).expect("own parser").udp_checksum_ok());
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
    let a = udp4::parse(&t.frame_for(5, None))
        .map(|u| (u.src_port, u.payload[..2].to_vec()))
        .expect("a");
    let b = udp4::parse(&t.frame_for(5 + 65536, None))
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
    let u = udp4::parse(f).expect("parse");
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
