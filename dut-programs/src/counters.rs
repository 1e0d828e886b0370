//! The per-CPU counters every program keeps (`struct dut_counters` in
//! `src/bpf/wire.h`): read from the `dut_stats` per-CPU array and summed over
//! CPUs. The order of [`NAMES`] is the order of the C struct.

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::error::{Error, Result};
use crate::skel::types;

/// Counter names, in struct order; also the JSON keys under `"counters"`
/// (the fields of `records::dut::Counters`).
pub const NAMES: [&str; 16] = records::dut::Counters::NAMES;

const _: () = assert!(size_of::<types::dut_counters>() == 128);
const _: () = assert!(NAMES.len() * 8 == 128);

/// Counters summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters(pub [u64; 16]);

impl Counters {
    /// Value of counter `name` (0 for an unknown name).
    pub fn get(&self, name: &str) -> u64 {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.0[i])
            .unwrap_or(0)
    }

    /// Sums the per-CPU values of one `struct dut_counters` each.
    pub fn from_percpu(values: &[Vec<u8>]) -> Counters {
        let mut c = [0u64; 16];
        for v in values {
            for (i, slot) in c.iter_mut().enumerate() {
                if let Some(b) = v.get(i * 8..i * 8 + 8) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(b);
                    *slot = slot.wrapping_add(u64::from_ne_bytes(w));
                }
            }
        }
        Counters(c)
    }

    /// Reads the `dut_stats` map.
    pub fn read(map: &MapHandle) -> Result<Counters> {
        let v = map
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| Error::Bpf {
                what: "read counters".into(),
                source: e,
            })?
            .unwrap_or_default();
        Ok(Counters::from_percpu(&v))
    }

    /// Per-counter difference `self - earlier` (saturating).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut c = [0u64; 16];
        for (i, slot) in c.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        Counters(c)
    }

    /// As the record `dut status` and `dut install --foreground` print.
    pub fn to_record(&self) -> records::dut::Counters {
        records::dut::Counters::from_array(self.0)
    }
}

impl From<records::dut::Counters> for Counters {
    fn from(c: records::dut::Counters) -> Counters {
        Counters(c.to_array())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_cpus_in_struct_order() {
        let mut a = vec![0u8; 128];
        let mut b = vec![0u8; 128];
        a[0..8].copy_from_slice(&5u64.to_ne_bytes());
        b[0..8].copy_from_slice(&7u64.to_ne_bytes());
        b[15 * 8..].copy_from_slice(&1u64.to_ne_bytes());
        let c = Counters::from_percpu(&[a, b]);
        assert_eq!(c.get("packets"), 12);
        assert_eq!(c.get("checksum_bad"), 1);
        assert_eq!(c.get("nope"), 0);
        let back = Counters::from(c.to_record());
        assert_eq!(back, c);
        assert_eq!(c.to_record().packets, 12);
        assert_eq!(c.to_record().checksum_bad, 1);
        assert_eq!(c.since(&back), Counters::default());
    }
}
