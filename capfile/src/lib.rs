//! `capfile`: offline captures for tstamp and gen (`--pcap`): classic pcap (microsecond and nanosecond magic, either byte order)
//! and pcapng (per-interface `if_tsresol`, decimal or binary, and `if_tsoffset`), read
//! with the pcap-file crate. Every packet reaches the callback as (timestamp in ns since
//! the epoch, bytes). A file cut short ends the read with `truncated = true` (what came
//! before it is kept); a file that is not a capture is an error.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::Block;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;

/// What reading a capture found besides the packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub packets: u64,
    /// Packets skipped: not on an Ethernet interface, or without a timestamp.
    pub skipped: u64,
    /// The file ended in the middle of a record (or had a corrupt record after the start).
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {path}: {err}")]
    Open { path: String, err: std::io::Error },
    #[error("{path} is not a pcap or pcapng capture (unknown magic {magic:#010x})")]
    NotACapture { path: String, magic: u32 },
    #[error("{path}: {what}")]
    Bad { path: String, what: String },
}

/// Capture format from the first four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

pub fn sniff(magic: [u8; 4]) -> Option<Format> {
    match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => Some(Format::Pcap),
        0x0a0d_0d0a => Some(Format::PcapNg),
        _ => None,
    }
}

/// Converts a raw pcapng timestamp to ns using `if_tsresol` (default 6 = µs) and
/// `if_tsoffset` (seconds).
pub fn pcapng_ts_ns(raw: u64, tsresol: u8, offset_s: u64) -> u64 {
    let raw = u128::from(raw);
    let ns: u128 = if tsresol & 0x80 == 0 {
        let k = u32::from(tsresol);
        if k <= 9 {
            raw * 10u128.pow(9 - k)
        } else {
            raw / 10u128.pow((k - 9).min(38))
        }
    } else {
        let k = u32::from(tsresol & 0x7f).min(127);
        (raw * 1_000_000_000) >> k
    };
    (ns + u128::from(offset_s) * 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// Reads `path`, calling `f(ts_ns, frame)` for every Ethernet packet until the end or
/// until `f` returns false.
pub fn read(path: &Path, mut f: impl FnMut(u64, &[u8]) -> bool) -> Result<ReadStats, ReadError> {
    let p = path.display().to_string();
    let mut file = File::open(path).map_err(|err| ReadError::Open {
        path: p.clone(),
        err,
    })?;
    let mut magic = [0u8; 4];
    if let Err(e) = file.read_exact(&mut magic) {
        return Err(ReadError::Bad {
            path: p,
            what: format!("not a pcap or pcapng capture (too short: {e})"),
        });
    }
    let format = sniff(magic).ok_or_else(|| ReadError::NotACapture {
        path: p.clone(),
        magic: u32::from_be_bytes(magic),
    })?;
    let file = File::open(path).map_err(|err| ReadError::Open {
        path: p.clone(),
        err,
    })?;
    let mut st = ReadStats::default();
    match format {
        Format::Pcap => {
            let mut r = PcapReader::new(file).map_err(|e| ReadError::Bad {
                path: p.clone(),
                what: format!("bad pcap header: {e}"),
            })?;
            if r.header().datalink != DataLink::ETHERNET {
                return Err(ReadError::Bad {
                    path: p,
                    what: format!(
                        "link type {:?} is not supported (Ethernet captures only)",
                        r.header().datalink
                    ),
                });
            }
            while let Some(pkt) = r.next_packet() {
                match pkt {
                    Ok(pkt) => {
                        st.packets += 1;
                        let ts = u64::try_from(pkt.timestamp.as_nanos()).unwrap_or(u64::MAX);
                        if !f(ts, &pkt.data) {
                            break;
                        }
                    }
                    Err(_) => {
                        st.truncated = true;
                        break;
                    }
                }
            }
        }
        Format::PcapNg => {
            let mut r = PcapNgReader::new(file).map_err(|e| ReadError::Bad {
                path: p.clone(),
                what: format!("bad pcapng section header: {e}"),
            })?;
            // Per interface: (is Ethernet, tsresol, tsoffset).
            let mut ifaces: Vec<(bool, u8, u64)> = Vec::new();
            while let Some(block) = r.next_block() {
                match block {
                    Ok(Block::InterfaceDescription(idb)) => {
                        let mut res = 6u8;
                        let mut off = 0u64;
                        for o in &idb.options {
                            match o {
                                InterfaceDescriptionOption::IfTsResol(v) => res = *v,
                                InterfaceDescriptionOption::IfTsOffset(v) => off = *v,
                                _ => {}
                            }
                        }
                        ifaces.push((idb.linktype == DataLink::ETHERNET, res, off));
                    }
                    Ok(Block::SectionHeader(_)) => ifaces.clear(),
                    Ok(Block::EnhancedPacket(epb)) => {
                        st.packets += 1;
                        let Some(&(eth, res, off)) = ifaces.get(epb.interface_id as usize) else {
                            st.skipped += 1;
                            continue;
                        };
                        if !eth {
                            st.skipped += 1;
                            continue;
                        }
                        // pcap-file hands the raw 64-bit timestamp over as nanoseconds.
                        let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                        if !f(pcapng_ts_ns(raw, res, off), &epb.data) {
                            break;
                        }
                    }
                    Ok(Block::SimplePacket(_)) | Ok(Block::Packet(_)) => {
                        st.packets += 1;
                        st.skipped += 1;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        st.truncated = true;
                        break;
                    }
                }
            }
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_conversions() {
        assert_eq!(pcapng_ts_ns(1_500_000, 6, 0), 1_500_000_000);
        assert_eq!(pcapng_ts_ns(123, 9, 0), 123);
        assert_eq!(pcapng_ts_ns(123_000, 12, 0), 123);
        assert_eq!(pcapng_ts_ns(3, 0x80 | 1, 0), 1_500_000_000);
        assert_eq!(pcapng_ts_ns(1, 9, 2), 2_000_000_001);
    }

    #[test]
    fn sniffs_magics() {
        assert_eq!(sniff([0xd4, 0xc3, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(sniff([0x4d, 0x3c, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(sniff([0x0a, 0x0d, 0x0d, 0x0a]), Some(Format::PcapNg));
        assert_eq!(sniff(*b"GET "), None);
    }
}
