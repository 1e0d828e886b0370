//! Property tests: random bytes and mutated real frames fed to the matcher (both modes)
//! and random bytes as capture files never panic, and the counters stay consistent.

use proptest::prelude::*;
use tstamp::synth::dns_frame;
use tstamp::{MatchMode, Matcher};

fn check(m: &Matcher) {
    let c = m.counters();
    assert_eq!(
        c.frames,
        c.requests + c.responses + c.malformed + c.not_ip + c.not_udp + c.not_matched_proto,
        "{c:?}"
    );
    assert!(c.matched <= c.responses && c.matched <= c.requests);
}

proptest! {
    #[test]
    fn random_frames_never_panic(frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..50),
                                 ts in prop::collection::vec(any::<u64>(), 50)) {
        for mode in [MatchMode::Dns, MatchMode::Seq] {
            let mut m = Matcher::new(mode, 1_000_000, 8);
            for (i, f) in frames.iter().enumerate() {
                m.on_frame(ts[i % ts.len()], f);
            }
            m.finish();
            check(&m);
        }
    }

    #[test]
    fn mutated_dns_frames_never_panic(id in any::<u16>(), resp in any::<bool>(), flips in prop::collection::vec((0usize..80, any::<u8>()), 0..8), cut in 0usize..100) {
        let mut f = dns_frame(id, resp, "x.example", 1234, 3);
        for (pos, v) in flips {
            if let Some(b) = f.get_mut(pos) { *b ^= v; }
        }
        f.truncate(cut.max(1));
        let mut m = Matcher::new(MatchMode::Dns, 1_000, 4);
        m.on_frame(1, &f);
        m.on_frame(2, &f);
        m.finish();
        check(&m);
    }

    #[test]
    fn random_capture_files_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..600), magic in 0usize..3) {
        let magics: [[u8; 4]; 3] = [[0xd4, 0xc3, 0xb2, 0xa1], [0x4d, 0x3c, 0xb2, 0xa1], [0x0a, 0x0d, 0x0d, 0x0a]];
        if bytes.len() >= 4 { bytes[..4].copy_from_slice(&magics[magic]); }
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("r.cap");
        std::fs::write(&p, &bytes).expect("write");
        let mut m = Matcher::new(MatchMode::Dns, 1_000, 4);
        let _ = tstamp::reader::read(&p, |ts, d| { m.on_frame(ts, d); true });
        check(&m);
    }
}
