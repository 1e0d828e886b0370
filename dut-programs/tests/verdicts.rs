//! The verdict table of the README ("Verdicts"), checked row by row: every
//! program on every frame kind through BPF_PROG_TEST_RUN, and the same frame
//! through the host shim (the user-space execution point's code). The README
//! table is the one source of truth: this test reads it, builds each row's
//! frame, and checks each cell's verdict and counters (the counters a cell
//! names go up by exactly one, the other per-frame counters stay), answers
//! with `check_answer` (tags kept, addresses swapped, checksums right), and
//! that passed/dropped frames are unchanged. A README row without a frame
//! here, or a frame here without a README row, fails the test.

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsFd;

use common::*;
use dut_programs::allow::AllowList;
use dut_programs::kernel;
use dut_programs::shim::Shim;
use dut_programs::{Config, Counters, LoadOptions, Loaded, Program, cache, load};
use profiles::{Profile, Template, TemplateOptions};

/// The counters a cell may name; the others (packets, bytes, verdicts,
/// checksums) follow from the verdict.
const CATEGORY: [&str; 7] = [
    "parse_errors",
    "not_handled",
    "answers",
    "hits",
    "misses",
    "too_long",
    "checksum_bad",
];

/// The allow-list syn-filter runs with in the table.
const ALLOW: &str = "198.18.0.0/24";
/// A source outside it.
const OTHER: [u8; 4] = [203, 0, 113, 9];
/// The IPv6 allow-list (GEN_IP6 is inside it).
const ALLOW6: &str = "2001:db8:0:1::/64";
/// An IPv6 source outside it (2001:db8:ffff::9).
const OTHER6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
];

fn profile_frame(name: &str, n: u64) -> Vec<u8> {
    let p = Profile::load(name).unwrap_or_else(|e| panic!("profile {name}: {e}"));
    Template::new(&p, TemplateOptions::default())
        .unwrap_or_else(|e| panic!("template {name}: {e}"))
        .frame_for(n, None)
}

/// Checks a profile frame's length (FCS not included) and passes it on.
fn sized(frame: Vec<u8>, len: usize) -> Vec<u8> {
    assert_eq!(frame.len(), len, "frame length");
    frame
}

/// The frame of each row, by the row's name in the README.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let small = profile_frame("dns-small", 5);
    let syn_other = tcp_frame(OTHER, SYN, &MSS_OPTION);
    let syn6_other = tcp6_frame(OTHER6, SYN);
    let query = small[14 + 20 + 8..].to_vec();
    let mut v = vec![
        ("IPv6/UDP DNS query (dns-small's)", udp6_frame(53, &query)),
        (
            "IPv6/UDP DNS query, 802.1Q tag",
            tagged(&udp6_frame(53, &query), &[(TPID_8021Q, 100)]),
        ),
        (
            "IPv6/UDP DNS query, hop-by-hop header",
            with_hop_by_hop(&udp6_frame(53, &query)),
        ),
        ("malformed: IPv6/UDP DNS query, zero UDP checksum", {
            let mut f = udp6_frame(53, &query);
            f[14 + 40 + 6..14 + 40 + 8].fill(0);
            f
        }),
        (
            "malformed: IPv6/UDP DNS query, payload length past the frame",
            {
                let mut f = udp6_frame(53, &query);
                let plen = u16::from_be_bytes([f[18], f[19]]) + 1;
                f[18..20].copy_from_slice(&plen.to_be_bytes());
                f
            },
        ),
        ("IPv6 TCP SYN, allowed source", tcp6_frame(GEN_IP6, SYN)),
        (
            "IPv6 TCP SYN, allowed source, QinQ",
            tagged(
                &tcp6_frame(GEN_IP6, SYN),
                &[(TPID_8021AD, 3), (TPID_8021Q, 7)],
            ),
        ),
        ("IPv6 TCP SYN, other source", syn6_other.clone()),
        (
            "IPv6 TCP SYN, other source, 802.1Q tag",
            tagged(&syn6_other, &[(TPID_8021Q, 7)]),
        ),
        (
            "IPv6 TCP SYN, other source, QinQ",
            tagged(&syn6_other, &[(TPID_8021AD, 3), (TPID_8021Q, 7)]),
        ),
        (
            "IPv6 TCP SYN, other source, hop-by-hop header",
            with_hop_by_hop(&syn6_other),
        ),
        (
            "IPv6 TCP SYN-ACK, other source",
            tcp6_frame(OTHER6, SYN | ACK),
        ),
        ("IPv6 TCP RST, other source", tcp6_frame(OTHER6, RST)),
        ("malformed: IPv6 header cut", syn6_other[..14 + 39].to_vec()),
        (
            "malformed: IPv6 header cut, QinQ",
            tagged(&syn6_other, &[(TPID_8021AD, 3), (TPID_8021Q, 7)])[..22 + 20].to_vec(),
        ),
        (
            "malformed: IPv6 TCP header cut",
            syn6_other[..14 + 40 + 10].to_vec(),
        ),
        ("malformed: IPv6 version field 4", {
            let mut f = syn6_other.clone();
            f[14] = 0x40 | (f[14] & 0x0f);
            f
        }),
        ("min-multi-flow", profile_frame("min-multi-flow", 3)),
        ("min-single-flow", profile_frame("min-single-flow", 0)),
        ("dns-ping", profile_frame("dns-ping", 0)),
        ("dns-small", small.clone()),
        ("dns-large", profile_frame("dns-large", 0)),
        (
            "min-multi-flow-vlan",
            profile_frame("min-multi-flow-vlan", 3),
        ),
        (
            "min-multi-flow-qinq",
            profile_frame("min-multi-flow-qinq", 3),
        ),
        ("syn-flood", profile_frame("syn-flood", 7)),
        ("min-multi-flow-v6", profile_frame("min-multi-flow-v6", 3)),
        ("dns-small-v6", sized(profile_frame("dns-small-v6", 5), 91)),
        (
            "dns-small-v6, QinQ 0x88a8 + 0x8100",
            tagged(
                &profile_frame("dns-small-v6", 5),
                &[(TPID_8021AD, 3), (TPID_8021Q, 7)],
            ),
        ),
        (
            "imix, frame 0 (64 bytes)",
            sized(profile_frame("imix", 0), 60),
        ),
        (
            "imix, frame 1 (594 bytes)",
            sized(profile_frame("imix", 1), 590),
        ),
        (
            "imix, frame 6 (1518 bytes)",
            sized(profile_frame("imix", 6), 1514),
        ),
        (
            "dns-small, 802.1Q tag",
            tagged(&small, &[(TPID_8021Q, 100)]),
        ),
        (
            "dns-small, QinQ 0x88a8 + 0x8100",
            tagged(&small, &[(TPID_8021AD, 10), (TPID_8021Q, 100)]),
        ),
        (
            "dns-small, QinQ 0x9100 + 0x8100",
            tagged(&small, &[(TPID_QINQ, 10), (TPID_8021Q, 100)]),
        ),
        (
            "TCP SYN, allowed source",
            tcp_frame(GEN_IP, SYN, &MSS_OPTION),
        ),
        ("TCP SYN, other source", syn_other.clone()),
        (
            "TCP SYN, other source, 802.1Q tag",
            tagged(&syn_other, &[(TPID_8021Q, 7)]),
        ),
        (
            "TCP SYN, other source, QinQ",
            tagged(&syn_other, &[(TPID_8021AD, 3), (TPID_8021Q, 7)]),
        ),
        (
            "TCP SYN, allowed source, QinQ",
            tagged(
                &tcp_frame(GEN_IP, SYN, &[]),
                &[(TPID_8021AD, 3), (TPID_8021Q, 7)],
            ),
        ),
        (
            "TCP SYN, other source, IP options",
            with_ip_option(&syn_other),
        ),
        (
            "TCP SYN, other source, first fragment",
            tcp_frame_frag(OTHER, SYN, &MSS_OPTION, 0x2000),
        ),
        (
            "TCP SYN, other source, non-first fragment",
            tcp_frame_frag(OTHER, SYN, &MSS_OPTION, 185),
        ),
        (
            "TCP SYN-ACK, other source",
            tcp_frame(OTHER, SYN | ACK, &[]),
        ),
        ("TCP ACK, other source", tcp_frame(OTHER, ACK, &[])),
        ("TCP RST, other source", tcp_frame(OTHER, RST, &[])),
        ("TCP FIN, other source", tcp_frame(OTHER, FIN | ACK, &[])),
        (
            "three VLAN tags",
            tagged(
                &small,
                &[(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)],
            ),
        ),
        ("802.1Q tag + ARP", {
            let mut f = tagged(&small, &[(TPID_8021Q, 100)]);
            f[16..18].copy_from_slice(&[0x08, 0x06]);
            f
        }),
        (
            "0x9100 as the inner tag",
            tagged(&small, &[(TPID_8021Q, 1), (TPID_QINQ, 2)]),
        ),
        (
            "malformed: ends inside a VLAN tag",
            tagged(&small, &[(TPID_8021Q, 100)])[..16].to_vec(),
        ),
        (
            "malformed: ends right after a VLAN tag",
            tagged(&small, &[(TPID_8021Q, 100)])[..18].to_vec(),
        ),
        (
            "malformed: ends right after the QinQ tags",
            tagged(&syn_other, &[(TPID_8021AD, 3), (TPID_8021Q, 7)])[..22].to_vec(),
        ),
        ("malformed: IPv4 header cut", small[..24].to_vec()),
        ("malformed: bad IPv4 checksum", {
            let mut f = small.clone();
            f[24] ^= 0x5a;
            f
        }),
        (
            "malformed: TCP header cut",
            syn_other[..14 + 20 + 10].to_vec(),
        ),
        ("malformed: TCP data offset < 5", {
            let mut f = tcp_frame(OTHER, SYN, &[]);
            f[14 + 20 + 12] = 4 << 4;
            f
        }),
        ("malformed: TCP options cut", {
            let f = tcp_frame(OTHER, SYN, &[2, 4, 5, 0xb4, 1, 1, 4, 2]);
            f[..f.len() - 4].to_vec()
        }),
    ];
    v.sort_by_key(|(n, _)| *n);
    v
}

/// `f` (untagged IPv4) with a 4-byte NOP option in its IPv4 header.
fn with_ip_option(f: &[u8]) -> Vec<u8> {
    let mut out = f[..34].to_vec();
    out.extend_from_slice(&[1, 1, 1, 0]);
    out.extend_from_slice(&f[34..]);
    out[14] = 0x46;
    let tot = (out.len() - 14) as u16;
    out[16..18].copy_from_slice(&tot.to_be_bytes());
    fix_ip_checksum(&mut out);
    out
}

/// One program in the kernel and in the shim, configured as the table says.
struct Subject {
    program: Program,
    kernel: Loaded,
    shim: Shim,
}

fn subject(program: Program) -> Subject {
    let config = Config {
        checksums: 1,
        ..Default::default()
    };
    let prof = Profile::load("dns-small").expect("dns-small");
    let names = &prof.dns.as_ref().expect("dns").names;
    let kernel = load(
        program,
        &LoadOptions {
            config,
            cache_entries: names.count() as u32,
            offload_ifindex: None,
        },
    )
    .unwrap_or_else(|e| panic!("load {} (verifier): {e}", program.name()));
    let mut shim = Shim::new(program, &config);
    if let Some(map) = &kernel.cache {
        let e = cache::Entries::of(names).expect("entries");
        cache::fill_batch(map, &e, 500).expect("fill");
        *shim.cache_mut() = cache::Entries::of(names).expect("entries").to_shim_cache();
    }
    if let Some(map) = &kernel.allow {
        let mut list = AllowList::new();
        list.add_args(&[ALLOW.to_string(), ALLOW6.to_string()])
            .expect("allow");
        list.fill(map).expect("fill allow-list");
        shim.set_allow(std::sync::Arc::new(list));
    }
    Subject {
        program,
        kernel,
        shim,
    }
}

/// A cell: `DROP`, `PASS (not_handled)`, `TX (answers, hits)`.
#[derive(Debug)]
struct Cell {
    verdict: u32,
    counters: Vec<String>,
}

fn parse_cell(text: &str) -> Cell {
    let t = text.trim();
    let (v, rest) = t.split_once(' ').unwrap_or((t, ""));
    let verdict = match v.trim_matches('`') {
        "DROP" => 1,
        "PASS" => 2,
        "TX" => 3,
        other => panic!("README verdict table: '{other}' is not DROP, PASS or TX (cell '{t}')"),
    };
    let rest = rest.trim();
    let counters: Vec<String> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("README verdict table: counters in parentheses: '{t}'"))
            .split(',')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect()
    };
    for c in &counters {
        assert!(
            CATEGORY.contains(&c.as_str()),
            "README verdict table: '{c}' is not one of {CATEGORY:?}"
        );
    }
    Cell { verdict, counters }
}

/// The table between the markers in README.md: programs (columns) and rows
/// `(frame name, cells)`.
fn readme_table() -> (Vec<Program>, Vec<(String, Vec<Cell>)>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let text = std::fs::read_to_string(path).expect("read README.md");
    let start = text
        .find("<!-- verdict-table -->")
        .expect("README.md has <!-- verdict-table -->");
    let end = text
        .find("<!-- /verdict-table -->")
        .expect("README.md has <!-- /verdict-table -->");
    let mut lines = text[start..end]
        .lines()
        .filter(|l| l.trim_start().starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines.next().expect("header row"));
    let programs: Vec<Program> = header[1..]
        .iter()
        .map(|h| {
            Program::from_name(h.trim_matches('`'))
                .unwrap_or_else(|| panic!("README verdict table: unknown program column '{h}'"))
        })
        .collect();
    let mut rows = Vec::new();
    for l in lines.skip(1) {
        let c = cells(l);
        assert_eq!(
            c.len(),
            programs.len() + 1,
            "README row has a cell per program: {l}"
        );
        rows.push((
            c[0].trim_matches('`').to_string(),
            c[1..].iter().map(|x| parse_cell(x)).collect(),
        ));
    }
    (programs, rows)
}

#[test]
fn every_row_of_the_readme_verdict_table_holds() {
    let (programs, rows) = readme_table();
    let all: BTreeSet<&str> = Program::ALL.iter().map(|p| p.name()).collect();
    let cols: BTreeSet<&str> = programs.iter().map(|p| p.name()).collect();
    assert_eq!(cols, all, "the table has a column per program");
    let frames = frames();
    let named: BTreeSet<&str> = frames.iter().map(|(n, _)| *n).collect();
    let in_readme: BTreeSet<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        in_readme, named,
        "README rows and the test's frames are the same set"
    );
    let mut subjects: Vec<Subject> = programs.iter().map(|p| subject(*p)).collect();
    let mut checked = 0;
    for (row, cells) in &rows {
        let frame = &frames.iter().find(|(n, _)| n == row).expect("frame").1;
        for (s, cell) in subjects.iter_mut().zip(cells) {
            let what = format!("{} on '{row}'", s.program.name());
            let before = Counters::read(&s.kernel.stats).expect("counters");
            let sbefore = s.shim.counters();
            let out = kernel::test_run(s.kernel.prog.as_fd(), frame, 0).expect("test_run");
            assert_eq!(out.retval, cell.verdict, "{what}: verdict");
            let d = Counters::read(&s.kernel.stats)
                .expect("counters")
                .since(&before);
            assert_eq!(d.get("packets"), 1, "{what}");
            let verdict_counter = ["", "drop", "pass", "tx"][cell.verdict as usize];
            assert_eq!(d.get(verdict_counter), 1, "{what}: {verdict_counter}");
            for c in CATEGORY {
                let want = u64::from(cell.counters.iter().any(|x| x == c));
                assert_eq!(d.get(c), want, "{what}: {c}");
            }
            if cell.verdict == 3 {
                check_answer(frame, &out.data);
            } else {
                assert_eq!(&out.data, frame, "{what}: frame unchanged");
            }
            // The user-space execution point: the same verdict, bytes and counters.
            let (v, data) = shim_run(&mut s.shim, frame);
            assert_eq!((v, &data), (out.retval, &out.data), "{what}: shim");
            assert_eq!(
                s.shim.counters().since(&sbefore),
                d,
                "{what}: shim counters"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, rows.len() * Program::ALL.len());
}
