//! IPv6 profiles: frames read back with etherparse, the UDP checksum recomputed here
//! (independently of the template's incremental code) over the IPv6 pseudo-header
//! (RFC 8200 section 8.1), the minimum frame size, and `[[vary]]` over IPv6 addresses.

use std::net::Ipv6Addr;

use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use profiles::{Profile, Template, TemplateOptions};

/// RFC 8200's UDP checksum: pseudo-header (source, destination, 32-bit upper-layer
/// length, 3 zero bytes, next header 17) and the segment with its checksum field zero.
fn udp6_checksum(src: [u8; 16], dst: [u8; 16], seg: &[u8]) -> u16 {
    let mut words: Vec<u8> = Vec::new();
    words.extend_from_slice(&src);
    words.extend_from_slice(&dst);
    words.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    words.extend_from_slice(&[0, 0, 0, 17]);
    let mut s = seg.to_vec();
    s[6] = 0;
    s[7] = 0;
    words.extend_from_slice(&s);
    if words.len() % 2 == 1 {
        words.push(0);
    }
    let mut sum: u32 = 0;
    for w in words.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    if c == 0 { 0xffff } else { c }
}

/// Frame n parsed: (source, destination, UDP source port, VLAN IDs), with every check.
fn check_frame(p: &Profile, f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u16, Vec<u16>) {
    let h = PacketHeaders::from_ethernet_slice(f).expect("etherparse reads the frame");
    let ids: Vec<u16> = h
        .link_exts
        .iter()
        .filter_map(|e| match e {
            etherparse::LinkExtHeader::Vlan(v) => Some(v.vlan_id.value()),
            _ => None,
        })
        .collect();
    let Some(NetHeaders::Ipv6(ip, ext)) = &h.net else {
        panic!("not IPv6: {:?}", h.net);
    };
    assert!(ext.is_empty(), "no extension headers");
    let v6 = p.ipv6.expect("IPv6 profile");
    assert_eq!(ip.hop_limit, v6.hop_limit);
    assert_eq!(ip.traffic_class, v6.traffic_class);
    assert_eq!(ip.flow_label.value(), v6.flow_label);
    assert_eq!(
        usize::from(ip.payload_length),
        f.len() - p.layout().l4_at,
        "payload length covers the rest of the frame"
    );
    let Some(TransportHeader::Udp(u)) = &h.transport else {
        panic!("not UDP");
    };
    let seg = &f[p.layout().l4_at..];
    assert_eq!(usize::from(u.length), seg.len());
    let want = udp6_checksum(ip.source, ip.destination, seg);
    assert_ne!(u.checksum, 0, "IPv6 UDP checksum is mandatory");
    assert_eq!(u.checksum, want, "UDP checksum");
    // And etherparse's own computation agrees.
    assert_eq!(
        u.calc_checksum_ipv6(ip, &seg[8..]).expect("checksum"),
        u.checksum
    );
    (
        Ipv6Addr::from(ip.source),
        Ipv6Addr::from(ip.destination),
        u.source_port,
        ids,
    )
}

#[test]
fn min_multi_flow_v6_frames_parse_back_with_correct_checksums() {
    let p = Profile::load("min-multi-flow-v6").expect("profile");
    assert_eq!(p.frame_size, 66);
    assert_eq!(p.min_frame_size(), 66);
    assert_eq!(p.flows(), 256);
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    assert_eq!(t.len(), 62);
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, 0));
    for n in [0u64, 1, 2, 77, 255, 256, 1000, 65535, 1 << 40] {
        let f = t.frame_for(n, None);
        assert_eq!(f.len(), 62);
        let (src, dst, sp, ids) = check_frame(&p, &f);
        assert_eq!(u128::from(src), base + u128::from(n % 256), "frame {n}");
        assert_eq!(dst, "2001:db8::2".parse::<Ipv6Addr>().expect("addr"));
        assert_eq!(sp, 1024 + (n % 256) as u16);
        assert!(ids.is_empty());
    }
    // A reused buffer holding another frame becomes frame n exactly.
    let mut buf = vec![0u8; t.len()];
    t.fill(&mut buf);
    for n in [5u64, 9, 300] {
        t.write(&mut buf, n, None);
        assert_eq!(buf, t.frame_for(n, None), "frame {n}");
    }
}

#[test]
fn ipv6_with_qinq_tags_stamp_class_and_flow_label() {
    let p = Profile::from_toml(
        "parent = \"min-multi-flow-v6\"\nframe_size = 128\n[ipv6]\ntraffic_class = 0xb8\nflow_label = 0xabcde\nhop_limit = 7\n[[vlan]]\nid = 10\n[[vlan]]\nid = 20\n",
        "qinq6.toml",
    )
    .expect("QinQ IPv6");
    assert_eq!(p.min_frame_size(), 74);
    let t = Template::new(&p, TemplateOptions { stamp: true }).expect("template");
    for n in [0u64, 3, 255] {
        let f = t.frame_for(n, None);
        assert_eq!(f.len(), 124);
        let (_, _, _, ids) = check_frame(&p, &f);
        assert_eq!(ids, [10, 20]);
    }
}

#[test]
fn random_and_list_vary_over_ipv6_fields() {
    let p = Profile::from_toml(
        "frame_size = 66\n[ipv6]\nsrc = \"2001:db8:1::5\"\n[[vary]]\nfield = \"ipv6.src\"\nmode = \"random\"\nmin = \"::1\"\nmax = \"::ffff:ffff:ffff\"\n[[vary]]\nfield = \"ipv6.dst\"\nmode = \"list\"\nvalues = [\"::a\", \"2001:db8::b\"]\n",
        "r6.toml",
    )
    .expect("profile");
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    let mut seen = std::collections::HashSet::new();
    for n in 0..64u64 {
        let (src, dst, _, _) = check_frame(&p, &t.frame_for(n, None));
        let s = u128::from(src);
        // The high 64 bits are the profile's address's; the low 64 vary.
        assert_eq!(
            s >> 64,
            u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)) >> 64
        );
        let low = s as u64;
        assert!((1..=0xffff_ffff_ffff).contains(&low), "{low:x}");
        seen.insert(low);
        let d = u128::from(dst) as u64;
        assert_eq!(d, if n % 2 == 0 { 0xa } else { 0xb }, "frame {n}");
        assert_eq!(u128::from(dst) >> 64, 0x2001_0db8_0000_0000, "frame {n}");
    }
    assert!(seen.len() > 60, "random sources: {}", seen.len());
}

#[test]
fn every_shipped_ipv6_profile_builds_valid_frames() {
    let v6: Vec<Profile> = profiles::profile::SHIPPED
        .iter()
        .map(|(n, _)| Profile::load(n).expect("profile"))
        .filter(|p| p.ipv6.is_some())
        .collect();
    assert!(!v6.is_empty());
    for p in &v6 {
        let t = Template::new(p, TemplateOptions::default()).expect("template");
        assert_eq!(t.len() + 4, p.frame_size, "{}", p.name);
        let mut buf = vec![0u8; t.len()];
        t.fill(&mut buf);
        for n in [0u64, 1, 255, 256, 65536, 123_456_789] {
            let len = t.write(&mut buf, n, None);
            assert_eq!(&buf[..len], &t.frame_for(n, None)[..], "{}", p.name);
            check_frame(p, &buf[..len]);
        }
    }
}

#[test]
fn dns_small_v6_asks_aaaa_for_every_name_over_ipv6() {
    let p = Profile::load("dns-small-v6").expect("profile");
    let d = p.dns.as_ref().expect("dns");
    assert_eq!(d.qtype, 28);
    assert_eq!(d.names.count(), 1296);
    // Ethernet 14 + IPv6 40 + UDP 8 + DNS (12 + 13 + 4) + FCS 4.
    assert_eq!(p.min_frame_size(), 95);
    assert_eq!(p.frame_size, 95);
    let mut small = p.clone();
    assert!(small.set_frame_size(94).is_err());
    assert_eq!(p.flows(), 1024);
    let t = Template::new(&p, TemplateOptions::default()).expect("template");
    assert_eq!(t.len(), 91);
    let mut keys = std::collections::HashSet::new();
    let mut buf = vec![0u8; t.len()];
    t.fill(&mut buf);
    for n in 0..3000u64 {
        let len = t.write(&mut buf, n, None);
        assert_eq!(&buf[..len], &t.frame_for(n, None)[..], "frame {n}");
        let f = &buf[..len];
        let (src, dst, sport, _) = check_frame(&p, f);
        assert_eq!(src, "2001:db8::1".parse::<Ipv6Addr>().expect("addr"));
        assert_eq!(dst, "2001:db8::2".parse::<Ipv6Addr>().expect("addr"));
        assert_eq!(u16::from_be_bytes([f[56], f[57]]), 53);
        let m = hickory_proto::op::Message::from_vec(&f[62..]).expect("hickory parses the query");
        assert_eq!(m.message_type(), hickory_proto::op::MessageType::Query);
        assert_eq!(m.queries().len(), 1);
        let q = &m.queries()[0];
        assert_eq!(q.query_type(), hickory_proto::rr::RecordType::AAAA);
        assert_eq!(q.query_class(), hickory_proto::rr::DNSClass::IN);
        assert_eq!(
            q.name().to_ascii().trim_end_matches('.'),
            d.names.name(n % 1296),
            "frame {n}"
        );
        assert!(keys.insert((sport, m.id())), "(port, id) repeats at {n}");
    }
    // Every name has an AAAA record in 2001:db8:64::/96.
    assert_eq!(
        Ipv6Addr::from(d.names.address6(1295)),
        "2001:db8:64::50f".parse::<Ipv6Addr>().expect("addr")
    );
}

fn err(text: &str) -> String {
    match Profile::from_toml(text, "user.toml") {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn ipv6_errors_name_file_line_and_key() {
    assert_eq!(
        err("frame_size = 64\n[ipv6]\nsrc = \"2001:db8::1\"\n"),
        "user.toml:1: frame_size: 64 bytes is too small for the headers: at least 66"
    );
    assert_eq!(
        err("[ipv4]\nsrc = \"198.18.0.1\"\n[ipv6]\nsrc = \"2001:db8::1\"\n"),
        "user.toml:4: ipv6: a profile is IPv4 or IPv6: this chain has both [ipv4] and [ipv6]; drop one"
    );
    // A child of an IPv4 profile that says [ipv6] is refused at its [ipv6].
    let e = err("parent = \"min-multi-flow\"\n\n[ipv6]\nsrc = \"2001:db8::1\"\n");
    assert!(
        e.starts_with("user.toml:4: ipv6: a profile is IPv4 or IPv6"),
        "{e}"
    );
    assert_eq!(
        err("[ipv6]\nsrc = \"198.18.0.1\"\n"),
        "user.toml:2: ipv6.src: '198.18.0.1' is not an IPv6 address"
    );
    let e = err("[ipv6]\nflow_label = 1048576\n");
    assert!(
        e.starts_with("user.toml:2: ipv6.flow_label: 1048576 is out of range"),
        "{e}"
    );
    assert_eq!(
        err(
            "[ipv6]\nhop_limit = 9\n[[vary]]\nfield = \"ipv4.src\"\nmin = \"198.18.0.1\"\ncount = 2\n"
        ),
        "user.toml:4: vary.field: ipv4.src is not in an IPv6 profile (vary ipv6.src or ipv6.dst)"
    );
    assert_eq!(
        err("[[vary]]\nfield = \"ipv6.src\"\nmin = \"::1\"\ncount = 2\n"),
        "user.toml:2: vary.field: ipv6.src needs an [ipv6] section"
    );
    // DNS over IPv6: the query counts in the minimum (14 + 40 + 8 + 12 + 8 + 4 + 4).
    assert_eq!(
        err("frame_size = 89\n[ipv6]\nsrc = \"2001:db8::1\"\n[dns]\nname = \"a.test\"\n"),
        "user.toml:1: frame_size: 89 bytes is too small for the headers and query: at least 90"
    );
    assert_eq!(
        err("[ipv6]\n[dns]\nname = \"a.test\"\nqtype = \"AAAAA\"\n"),
        "user.toml:4: dns.qtype: unknown record type 'AAAAA'"
    );
    let e = err("[ipv6]\nsrc = \"::1\"\n[imix]\nsizes = [64, 128]\nweights = [1, 1]\n");
    assert!(
        e.starts_with("user.toml:4: imix.sizes: 64 bytes is too small"),
        "{e}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Any frame number of an IPv6 profile with random fields over both addresses
    /// and a size of its own: etherparse reads it and the checksum is right.
    #[test]
    fn any_frame_number_and_size_gives_a_valid_ipv6_frame(
        n in proptest::prelude::any::<u64>(),
        size in 66usize..1518,
        seed in 0u64..1000,
    ) {
        let p = Profile::from_toml(
            &format!(
                "frame_size = {size}\nseed = {seed}\n[ipv6]\nsrc = \"2001:db8::1\"\n[[vary]]\nfield = \"ipv6.src\"\nmode = \"random\"\nmin = \"::0\"\nmax = \"::ffff:ffff:ffff:ffff\"\n[[vary]]\nfield = \"ipv6.dst\"\nmode = \"random\"\nmin = \"::1\"\nmax = \"::ffff\"\n[[vary]]\nfield = \"udp.dst_port\"\nmode = \"random\"\nmin = 0\nmax = 65535\n"
            ),
            "prop.toml",
        )
        .expect("profile");
        let t = Template::new(&p, TemplateOptions::default()).expect("template");
        let f = t.frame_for(n, None);
        proptest::prop_assert_eq!(f.len(), size - 4);
        check_frame(&p, &f);
    }
}
