//! The programs, their skeletons (built from `src/bpf/*.bpf.c` into `OUT_DIR`)
//! and loading them: open, write the configuration into rodata, size the
//! cache map, load. The result keeps only file descriptors (program and
//! maps), so the skeleton's storage can go away and the kernel objects live as
//! long as the fds or an attachment hold them.

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::MapHandle;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use profiles::units;

use crate::error::{Error, Result, bpf};

macro_rules! skel_mod {
    ($m:ident, $file:literal) => {
        #[allow(
            clippy::all,
            clippy::unwrap_used,
            missing_docs,
            unsafe_op_in_unsafe_fn,
            dead_code
        )]
        mod $m {
            include!(concat!(env!("OUT_DIR"), "/", $file));
        }
    };
}
skel_mod!(drop_skel, "drop.skel.rs");
skel_mod!(checksum_skel, "checksum.skel.rs");
skel_mod!(dns_ping_skel, "dns_ping.skel.rs");
skel_mod!(dns_cache_skel, "dns_cache.skel.rs");
skel_mod!(syn_filter_skel, "syn_filter.skel.rs");

/// The shared C structs (`wire.h`), from the dns-cache skeleton's BTF.
pub use dns_cache_skel::types;

/// Length of the cache key (`DNS_KEY_LEN`).
pub const DNS_KEY_LEN: usize = 32;
/// Length of the A record in a cache value (`DNS_RECORD_LEN`).
pub const DNS_RECORD_LEN: usize = 16;
/// Length of the AAAA record in a cache value (`DNS_RECORD6_LEN`).
pub const DNS_RECORD6_LEN: usize = 28;
/// Length of the cache value (`struct dns_value`): the A record, then the AAAA record.
pub const DNS_VALUE_LEN: usize = DNS_RECORD_LEN + DNS_RECORD6_LEN;
/// Default capacity of the cache: the large set (`DNS_CACHE_ENTRIES`).
pub const DNS_CACHE_ENTRIES: u32 = 1_679_616;
/// Most checksum rounds (`DUT_MAX_CHECKSUMS`).
pub const MAX_CHECKSUMS: u32 = 1_000_000;
/// Capacity of the syn-filter allow-list (`SYN_ALLOW_ENTRIES`).
pub const SYN_ALLOW_ENTRIES: u32 = 65_536;
/// The BPF name of the placeholder program.
pub const PLACEHOLDER_NAME: &str = xdplayer::PLACEHOLDER_PROG;

const _: () = assert!(size_of::<types::dns_key>() == DNS_KEY_LEN);
const _: () = assert!(size_of::<types::dns_value>() == DNS_VALUE_LEN);

/// The DUT programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Program {
    Drop,
    Checksum,
    DnsPing,
    DnsCache,
    SynFilter,
}

impl Program {
    /// All programs, in `dut list` order.
    pub const ALL: [Program; 5] = [
        Program::Drop,
        Program::Checksum,
        Program::DnsPing,
        Program::DnsCache,
        Program::SynFilter,
    ];

    /// The CLI name: `drop`, `checksum`, `dns-ping`, `dns-cache`, `syn-filter`.
    pub fn name(self) -> &'static str {
        match self {
            Program::Drop => "drop",
            Program::Checksum => "checksum",
            Program::DnsPing => "dns-ping",
            Program::DnsCache => "dns-cache",
            Program::SynFilter => "syn-filter",
        }
    }

    /// The BPF program name the kernel reports (`bpftool prog`).
    pub fn bpf_name(self) -> &'static str {
        match self {
            Program::Drop => "dut_drop",
            Program::Checksum => "dut_checksum",
            Program::DnsPing => "dut_dns_ping",
            Program::DnsCache => "dut_dns_cache",
            Program::SynFilter => "dut_syn_filter",
        }
    }

    /// Program number in the host shim (`shim.c`).
    pub fn shim_id(self) -> i32 {
        match self {
            Program::Drop => 0,
            Program::Checksum => 1,
            Program::DnsPing => 2,
            Program::DnsCache => 3,
            Program::SynFilter => 4,
        }
    }

    /// One line on what it does.
    pub fn description(self) -> &'static str {
        match self {
            Program::Drop => "count every frame, then XDP_DROP (the paper's drop baseline, Fig. 2)",
            Program::Checksum => {
                "compute the IPv4 header checksum N times (bpf_loop; IPv6: the same sum over its first 20 bytes), then XDP_DROP (Fig. 3)"
            }
            Program::DnsPing => {
                "answer every DNS query (UDP port 53, over IPv4 or IPv6) with NXDOMAIN via XDP_TX; pass the rest (Fig. 4)"
            }
            Program::DnsCache => {
                "answer DNS queries (IPv4 or IPv6) from a BPF hash map: a 16-byte A or 28-byte AAAA record on a hit, NXDOMAIN on a miss (Fig. 5)"
            }
            Program::SynFilter => {
                "drop TCP SYNs (SYN set, ACK clear) whose IPv4 or IPv6 source is not in the allow-list (LPM tries); pass the rest"
            }
        }
    }

    /// Its knobs, as `dut list` shows them.
    pub fn knobs(self) -> &'static [&'static str] {
        match self {
            Program::Drop => &["--only-dst CIDR"],
            Program::Checksum => &["--checksums N (0..=1000000, default 1)", "--only-dst CIDR"],
            Program::DnsPing => &["--only-dst CIDR"],
            Program::DnsCache => &[
                "--profile NAME|PATH (fills the cache with its DNS name set)",
                "--only-dst CIDR",
            ],
            Program::SynFilter => &[
                "--allow CIDR (repeatable, IPv4 or IPv6; sources whose SYNs pass)",
                "--allow-file FILE (one CIDR per line, # comments)",
                "--only-dst CIDR",
            ],
        }
    }

    /// Program-specific counters (besides the common ones).
    pub fn counters(self) -> &'static [&'static str] {
        match self {
            Program::Drop => &[],
            Program::Checksum => &["checksums", "checksum_bad"],
            Program::DnsPing => &["answers"],
            Program::DnsCache => &["answers", "hits", "misses", "too_long"],
            Program::SynFilter => &[],
        }
    }

    /// By CLI name.
    pub fn from_name(s: &str) -> Option<Program> {
        Program::ALL.into_iter().find(|p| p.name() == s)
    }

    /// By the BPF name the kernel reports.
    pub fn from_bpf_name(s: &str) -> Option<Program> {
        Program::ALL.into_iter().find(|p| p.bpf_name() == s)
    }
}

/// Install-time configuration (`struct dut_config`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// The tenant guard (`--only-dst`, read by `profiles::units::parse_cidr_any`):
    /// only frames of this prefix's IP version to this prefix are processed;
    /// the rest (the other version included) are passed untouched.
    pub tenant: Option<(IpAddr, u8)>,
    /// Checksum rounds per frame.
    pub checksums: u32,
}

/// `struct dut_config` as the C code holds it (rodata of every program, and
/// the shim's configuration): addresses and masks in network byte order in
/// native-endian words, addresses already masked.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawConfig {
    pub flags: u32,
    pub tenant_addr: u32,
    pub tenant_mask: u32,
    pub checksums: u32,
    pub tenant6_addr: [u32; 4],
    pub tenant6_mask: [u32; 4],
}

/// `DUT_CFG_TENANT` / `DUT_CFG_TENANT6` (wire.h).
const CFG_TENANT: u32 = 1;
const CFG_TENANT6: u32 = 2;

impl Config {
    /// The C struct of this configuration.
    pub(crate) fn raw(&self) -> RawConfig {
        let mut r = RawConfig {
            checksums: self.checksums,
            ..RawConfig::default()
        };
        match self.tenant {
            Some((IpAddr::V4(a), l)) => {
                let mask = units::mask4(l);
                r.flags = CFG_TENANT;
                r.tenant_addr = (u32::from(a) & mask).to_be();
                r.tenant_mask = mask.to_be();
            }
            Some((IpAddr::V6(a), l)) => {
                let mask = units::mask6(l);
                r.flags = CFG_TENANT6;
                r.tenant6_addr = units::ne_words((u128::from(a) & mask).to_be_bytes());
                r.tenant6_mask = units::ne_words(mask.to_be_bytes());
            }
            None => {}
        }
        r
    }

    /// Reads a configuration back from a `.rodata` map value.
    pub fn from_rodata(bytes: &[u8]) -> Option<Config> {
        let w = |i: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(
                bytes.get(i * 4..i * 4 + 4)?.try_into().ok()?,
            ))
        };
        let (flags, addr, mask, checksums) = (w(0)?, w(1)?, w(2)?, w(3)?);
        let tenant = if flags & CFG_TENANT != 0 {
            let mask = u32::from_be(mask);
            Some((
                IpAddr::V4(Ipv4Addr::from(u32::from_be(addr))),
                mask.count_ones() as u8,
            ))
        } else if flags & CFG_TENANT6 != 0 {
            let bytes16 = |at: usize| -> Option<u128> {
                Some(u128::from_be_bytes(
                    bytes.get(at..at + 16)?.try_into().ok()?,
                ))
            };
            let (a, m) = (bytes16(16)?, bytes16(32)?);
            Some((IpAddr::V6(Ipv6Addr::from(a)), m.count_ones() as u8))
        } else {
            None
        };
        Some(Config { tenant, checksums })
    }
}

/// How to load a program.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    pub config: Config,
    /// Capacity of the dns-cache map (0 = [`DNS_CACHE_ENTRIES`]).
    pub cache_entries: u32,
    /// Load device-bound for XDP offload on this interface.
    pub offload_ifindex: Option<u32>,
}

/// A loaded program: file descriptors only.
#[derive(Debug)]
pub struct Loaded {
    pub program: Program,
    pub prog: OwnedFd,
    pub prog_id: u32,
    pub stats: MapHandle,
    pub cache: Option<MapHandle>,
    /// The syn-filter allow-lists (`syn_allow` for IPv4, `syn_allow6` for
    /// IPv6; LPM tries).
    pub allow: Option<AllowMaps>,
}

/// syn-filter's two allow-list maps (LPM tries).
#[derive(Debug)]
pub struct AllowMaps {
    /// `syn_allow`: IPv4 prefixes (`struct syn_allow_key`).
    pub v4: MapHandle,
    /// `syn_allow6`: IPv6 prefixes (`struct syn_allow6_key`).
    pub v6: MapHandle,
}

macro_rules! load_with {
    ($builder:path, $prog:ident, $program:expr, $opts:expr, $cache:tt) => {{
        let opts: &LoadOptions = $opts;
        let program: Program = $program;
        let mut storage = MaybeUninit::uninit();
        let mut open = <$builder>::default()
            .open(&mut storage)
            .map_err(bpf(format!("open BPF program {}", program.name())))?;
        let raw = opts.config.raw();
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.dut_cfg.flags = raw.flags;
            ro.dut_cfg.tenant_addr = raw.tenant_addr;
            ro.dut_cfg.tenant_mask = raw.tenant_mask;
            ro.dut_cfg.checksums = raw.checksums;
            ro.dut_cfg.tenant6_addr = raw.tenant6_addr;
            ro.dut_cfg.tenant6_mask = raw.tenant6_mask;
        } else {
            return Err(Error::Invalid(format!("{}: no rodata section to configure", program.name())));
        }
        load_with!(@cache $cache, open, opts);
        if let Some(ifx) = opts.offload_ifindex {
            open.progs.$prog.set_ifindex(ifx);
            open.maps.dut_stats.set_map_ifindex(ifx);
            open.maps.rodata.set_map_ifindex(ifx);
        }
        let skel = open.load().map_err(bpf(format!("load BPF program {} (verifier)", program.name())))?;
        let prog = skel
            .progs
            .$prog
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::Kernel { what: "duplicate program fd".into(), source: e })?;
        let prog_id = crate::kernel::prog_info_fd(prog.as_fd())?.id;
        let stats = MapHandle::try_from(&skel.maps.dut_stats).map_err(bpf("open counters map"))?;
        let cache = load_with!(@handle $cache, skel);
        let allow = load_with!(@allow $cache, skel);
        Ok(Loaded { program, prog, prog_id, stats, cache, allow })
    }};
    (@cache nocache, $open:ident, $opts:ident) => {};
    (@cache allow, $open:ident, $opts:ident) => {
        if let Some(ifx) = $opts.offload_ifindex {
            $open.maps.syn_allow.set_map_ifindex(ifx);
            $open.maps.syn_allow6.set_map_ifindex(ifx);
        }
    };
    (@cache cache, $open:ident, $opts:ident) => {
        let entries = if $opts.cache_entries == 0 { DNS_CACHE_ENTRIES } else { $opts.cache_entries };
        $open.maps.dns_cache.set_max_entries(entries).map_err(bpf("size the dns_cache map"))?;
        if let Some(ifx) = $opts.offload_ifindex {
            $open.maps.dns_cache.set_map_ifindex(ifx);
        }
    };
    (@handle nocache, $skel:ident) => { None };
    (@handle allow, $skel:ident) => { None };
    (@allow allow, $skel:ident) => {
        Some(AllowMaps {
            v4: MapHandle::try_from(&$skel.maps.syn_allow).map_err(bpf("open syn_allow map"))?,
            v6: MapHandle::try_from(&$skel.maps.syn_allow6).map_err(bpf("open syn_allow6 map"))?,
        })
    };
    (@allow $other:tt, $skel:ident) => { None };
    (@handle cache, $skel:ident) => {
        Some(MapHandle::try_from(&$skel.maps.dns_cache).map_err(bpf("open dns_cache map"))?)
    };
}

/// Opens, configures and loads `program`.
pub fn load(program: Program, opts: &LoadOptions) -> Result<Loaded> {
    if opts.config.checksums > MAX_CHECKSUMS {
        return Err(Error::Invalid(format!(
            "--checksums {} is out of range: use 0 to {MAX_CHECKSUMS}",
            opts.config.checksums
        )));
    }
    match program {
        Program::Drop => load_with!(drop_skel::DropSkelBuilder, dut_drop, program, opts, nocache),
        Program::Checksum => load_with!(
            checksum_skel::ChecksumSkelBuilder,
            dut_checksum,
            program,
            opts,
            nocache
        ),
        Program::DnsPing => load_with!(
            dns_ping_skel::DnsPingSkelBuilder,
            dut_dns_ping,
            program,
            opts,
            nocache
        ),
        Program::DnsCache => load_with!(
            dns_cache_skel::DnsCacheSkelBuilder,
            dut_dns_cache,
            program,
            opts,
            cache
        ),
        Program::SynFilter => load_with!(
            syn_filter_skel::SynFilterSkelBuilder,
            dut_syn_filter,
            program,
            opts,
            allow
        ),
    }
}

/// Loads the placeholder XDP_PASS program (the one in `xdplayer`); returns its fd.
pub fn load_placeholder() -> Result<OwnedFd> {
    Ok(xdplayer::placeholder::load()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_bytes(r: &RawConfig) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [r.flags, r.tenant_addr, r.tenant_mask, r.checksums]
            .into_iter()
            .chain(r.tenant6_addr)
            .chain(r.tenant6_mask)
        {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b
    }

    #[test]
    fn cidr_and_rodata_round_trip() {
        let (a, l) = profiles::units::parse_cidr_any("198.18.0.77/24").expect("cidr");
        assert_eq!((a, l), (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)), 24));
        let c = Config {
            tenant: Some((a, l)),
            checksums: 7,
        };
        let r = c.raw();
        let bytes = as_bytes(&r);
        // Network order in memory: 198.18.0.0 and 255.255.255.0.
        assert_eq!(&bytes[4..8], &[198, 18, 0, 0]);
        assert_eq!(&bytes[8..12], &[255, 255, 255, 0]);
        assert_eq!(Config::from_rodata(&bytes), Some(c));
        // An IPv6 guard: the address masked to /36, the mask's bytes in order.
        let (a, l) = profiles::units::parse_cidr_any("2001:db8:abcd::1/36").expect("cidr6");
        let c6 = Config {
            tenant: Some((a, l)),
            checksums: 1,
        };
        let bytes = as_bytes(&c6.raw());
        assert_eq!(&bytes[0..4], &2u32.to_ne_bytes());
        assert_eq!(&bytes[16..24], &[0x20, 0x01, 0x0d, 0xb8, 0xa0, 0, 0, 0]);
        assert_eq!(&bytes[32..40], &[0xff, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0]);
        assert_eq!(
            Config::from_rodata(&bytes),
            Some(Config {
                tenant: Some(("2001:db8:a000::".parse().expect("addr"), 36)),
                checksums: 1
            })
        );
        // /0 is no guard on the address: every IPv6 destination matches.
        let any6 = Config {
            tenant: Some(("::".parse().expect("::"), 0)),
            checksums: 1,
        }
        .raw();
        assert_eq!((any6.flags, any6.tenant6_mask), (2, [0; 4]));
        assert_eq!(Program::from_name("dns-cache"), Some(Program::DnsCache));
        assert_eq!(Program::from_bpf_name("dut_drop"), Some(Program::Drop));
    }
}
