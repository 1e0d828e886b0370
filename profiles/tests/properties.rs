//! Property tests: the parsers never panic on any input, and every frame a template
//! makes, for any packet number, is valid.

use profiles::wire::{dns, probe, udp};
use profiles::{Profile, Template, TemplateOptions};
use proptest::prelude::*;

fn template(name: &str, stamp: bool) -> Template {
    let p = Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    Template::new(&p, TemplateOptions { stamp }).unwrap_or_else(|e| panic!("{name}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = udp::parse(&bytes);
        if let Ok(p) = dns::Packet::new_checked(&bytes[..]) {
            let _ = p.question();
            let _ = dns::QueryRepr::parse(&p);
        }
        let _ = dns::wire_to_string(&bytes);
        let _ = probe::Packet::new_checked(&bytes[..]).map(|p| probe::Repr::parse(&p));
    }

    #[test]
    fn mutated_dns_frames_never_panic(n in any::<u64>(), at in 0usize..80, val in any::<u8>(), cut in 0usize..80) {
        let t = template("dns-small", false);
        let mut f = t.frame_for(n, None);
        let i = at % f.len();
        f[i] = val;
        f.truncate(cut.max(1).min(f.len()));
        if let Ok(u) = udp::parse(&f) {
            let _ = u.udp_checksum_ok();
            if let Ok(p) = dns::Packet::new_checked(u.payload) {
                let _ = p.question().map(|q| dns::wire_to_string(q.name));
            }
        }
    }

    #[test]
    fn any_frame_number_gives_valid_checksums(n in any::<u64>(), which in 0usize..8) {
        let name = ["min-multi-flow", "min-single-flow", "dns-ping", "dns-small", "dns-large", "min-multi-flow-vlan", "min-multi-flow-qinq", "imix"][which];
        let t = template(name, false);
        let f = t.frame_for(n, None);
        let u = udp::parse(&f).expect("parses");
        prop_assert!(u.udp_checksum_ok(), "{} frame {}", name, n);
        let ip_at = Profile::load(name).expect("profile").layout().ip_at;
        prop_assert_eq!(f.len(), t.len_of(n));
        prop_assert_eq!(profiles::wire::checksum::ipv4_header(&f[ip_at..ip_at + 20]), 0);
        if let Some(d) = t.dns() {
            let q = dns::Packet::new_checked(u.payload).expect("dns");
            let question = q.question().expect("question");
            prop_assert_eq!(question.name.to_vec(), d.names.wire_name(d.name_index(n)));
            prop_assert_eq!(q.id(), n as u16);
        }
    }

    #[test]
    fn syn_flood_frames_have_valid_checksums(n in any::<u64>()) {
        let t = template("syn-flood", false);
        let f = t.frame_for(n, None);
        prop_assert_eq!(f.len(), 74);
        prop_assert_eq!(profiles::wire::checksum::ipv4_header(&f[14..34]), 0);
        let mut seg = f[34..].to_vec();
        let sent = u16::from_be_bytes([seg[16], seg[17]]);
        seg[16..18].fill(0);
        let src = [f[26], f[27], f[28], f[29]];
        let dst = [f[30], f[31], f[32], f[33]];
        prop_assert_eq!(profiles::wire::checksum::tcp4(src, dst, &seg), sent);
    }

    #[test]
    fn stamped_frames_round_trip(n in any::<u64>(), stream in any::<u8>(), counter in 0u64..(1 << 56), tx in any::<u64>()) {
        let t = template("min-multi-flow", true);
        let pr = probe::Repr { stream, counter, tx_ns: tx };
        let f = t.frame_for(n, Some(pr));
        let u = udp::parse(&f).expect("parses");
        prop_assert!(u.udp_checksum_ok());
        let got = probe::Repr::parse(&probe::Packet::new_checked(u.payload).expect("probe")).expect("repr");
        prop_assert_eq!(got, pr);
    }
}
