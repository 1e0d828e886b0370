//! A minimal streaming pcapng writer: one section, one Ethernet interface with
//! `if_tsresol = 9` (nanoseconds), Enhanced Packet Blocks. Little-endian host order
//! (the byte-order magic tells readers). Used behind an [`AtomicFile`] so the file only
//! appears complete.
//!
//! [`AtomicFile`]: xdplayer::atomic_file::AtomicFile

use std::io::{self, Write};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const LINKTYPE_ETHERNET: u16 = 1;
const OPT_END: u16 = 0;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const SHB_USERAPPL: u16 = 4;

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.extend(std::iter::repeat_n(0u8, pad4(value.len())));
}

fn block(w: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&total.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&total.to_le_bytes())
}

/// Writes pcapng to `W`.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: W,
    pub packets: u64,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header and the interface description for `iface`.
    pub fn new(mut w: W, iface: &str, snaplen: u32) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        option(&mut shb, SHB_USERAPPL, b"sink");
        option(&mut shb, OPT_END, &[]);
        block(&mut w, SHB, &shb)?;
        let mut idb = Vec::new();
        idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut idb, IF_NAME, iface.as_bytes());
        option(&mut idb, IF_TSRESOL, &[9]);
        option(&mut idb, OPT_END, &[]);
        block(&mut w, IDB, &idb)?;
        Ok(PcapNgWriter { w, packets: 0 })
    }

    /// One Enhanced Packet Block; `ts_ns` in nanoseconds.
    #[inline]
    pub fn write(&mut self, ts_ns: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let pad = pad4(data.len());
        let total = (32 + data.len() + pad) as u32;
        let mut hdr = [0u8; 28];
        hdr[0..4].copy_from_slice(&EPB.to_le_bytes());
        hdr[4..8].copy_from_slice(&total.to_le_bytes());
        // interface 0
        hdr[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        hdr[16..20].copy_from_slice(&(ts_ns as u32).to_le_bytes());
        hdr[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        hdr[24..28].copy_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.w.write_all(&hdr)?;
        self.w.write_all(data)?;
        self.w.write_all(&[0u8; 3][..pad])?;
        self.w.write_all(&total.to_le_bytes())?;
        self.packets += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_lengths_match() {
        let mut w = PcapNgWriter::new(Vec::new(), "eth0", 0).expect("new");
        w.write(1_700_000_000_123_456_789, &[1, 2, 3, 4, 5], 60)
            .expect("write");
        let b = w.into_inner();
        assert_eq!(b.len() % 4, 0);
        // Walk blocks: each total length appears at both ends.
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < b.len() {
            let kind = u32::from_le_bytes(b[off..off + 4].try_into().expect("4"));
            let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().expect("4")) as usize;
            assert_eq!(&b[off + len - 4..off + len], &b[off + 4..off + 8]);
            kinds.push(kind);
            off += len;
        }
        assert_eq!(kinds, vec![SHB, IDB, EPB]);
    }
}
