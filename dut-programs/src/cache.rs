//! The dns-cache map: keys (the question name in wire format, zero padded to
//! `DNS_KEY_LEN`), values (the 16-byte compressed A record from
//! `profiles::NameSet::record`, then the 28-byte AAAA record from
//! `NameSet::record6`: [`value`]), filling it from a name set with batch updates,
//! and the update benchmark (the paper's Fig. 6).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use profiles::NameSet;

use crate::error::{Error, Result, bpf};
use crate::skel::{DNS_KEY_LEN, DNS_RECORD_LEN, DNS_VALUE_LEN};

/// The key of a wire-format name, or `None` if it is longer than the key.
pub fn key(wire_name: &[u8]) -> Option<[u8; DNS_KEY_LEN]> {
    if wire_name.len() > DNS_KEY_LEN {
        return None;
    }
    let mut k = [0u8; DNS_KEY_LEN];
    k[..wire_name.len()].copy_from_slice(wire_name);
    Some(k)
}

/// The cache value of name `i`: its A record, then its AAAA record (`struct dns_value`).
pub fn value(names: &NameSet, i: u64) -> [u8; DNS_VALUE_LEN] {
    let mut v = [0u8; DNS_VALUE_LEN];
    v[..DNS_RECORD_LEN].copy_from_slice(&names.record(i));
    v[DNS_RECORD_LEN..].copy_from_slice(&names.record6(i));
    v
}

/// All keys and values of a name set, flat (for batch updates).
#[derive(Debug, Clone)]
pub struct Entries {
    pub keys: Vec<u8>,
    pub values: Vec<u8>,
    pub count: usize,
}

impl Entries {
    /// Builds the entries of every name in `names`.
    pub fn of(names: &NameSet) -> Result<Entries> {
        if names.wire_len() > DNS_KEY_LEN {
            return Err(Error::Invalid(format!(
                "the profile's names are {} bytes in wire format; the cache key holds {DNS_KEY_LEN}",
                names.wire_len()
            )));
        }
        let count = names.count() as usize;
        let mut keys = Vec::with_capacity(count * DNS_KEY_LEN);
        let mut values = Vec::with_capacity(count * DNS_VALUE_LEN);
        for i in 0..count as u64 {
            let k = key(&names.wire_name(i)).unwrap_or([0; DNS_KEY_LEN]);
            keys.extend_from_slice(&k);
            values.extend_from_slice(&value(names, i));
        }
        Ok(Entries {
            keys,
            values,
            count,
        })
    }

    /// The same entries as the user-space execution point's cache (the shim's).
    pub fn to_shim_cache(&self) -> crate::shim::Cache {
        let mut c = crate::shim::Cache::with_capacity(self.count);
        for i in 0..self.count {
            let mut k = [0u8; DNS_KEY_LEN];
            let mut v = [0u8; DNS_VALUE_LEN];
            k.copy_from_slice(self.key(i));
            v.copy_from_slice(self.value(i));
            c.insert(k, v);
        }
        c
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.keys[i * DNS_KEY_LEN..(i + 1) * DNS_KEY_LEN]
    }
    fn value(&self, i: usize) -> &[u8] {
        &self.values[i * DNS_VALUE_LEN..(i + 1) * DNS_VALUE_LEN]
    }
}

/// Writes every entry with `BPF_MAP_UPDATE_BATCH`, `batch` at a time.
pub fn fill_batch(map: &MapHandle, e: &Entries, batch: usize) -> Result<()> {
    let batch = batch.max(1);
    let mut i = 0;
    while i < e.count {
        let n = batch.min(e.count - i);
        map.update_batch(
            &e.keys[i * DNS_KEY_LEN..(i + n) * DNS_KEY_LEN],
            &e.values[i * DNS_VALUE_LEN..(i + n) * DNS_VALUE_LEN],
            n as u32,
            MapFlags::ANY,
            MapFlags::ANY,
        )
        .map_err(bpf(format!(
            "batch update of the cache map (entries {i}..{})",
            i + n
        )))?;
        i += n;
    }
    Ok(())
}

/// Writes every entry one `BPF_MAP_UPDATE_ELEM` at a time.
pub fn fill_single(map: &MapHandle, e: &Entries) -> Result<()> {
    for i in 0..e.count {
        map.update(e.key(i), e.value(i), MapFlags::ANY)
            .map_err(bpf(format!("update of cache entry {i}")))?;
    }
    Ok(())
}

/// A hash map with the program's cache definition (key 32, value 44, no
/// prealloc), for the update benchmark.
pub fn create_map(entries: u32) -> Result<MapHandle> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_NO_PREALLOC,
        ..Default::default()
    };
    MapHandle::create(
        MapType::Hash,
        Some("dns_cache"),
        DNS_KEY_LEN as u32,
        DNS_VALUE_LEN as u32,
        entries.max(1),
        &opts,
    )
    .map_err(bpf("create a dns_cache map"))
}

/// How the update benchmark writes the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Single,
    Batch(usize),
}

/// One update-benchmark result.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    pub method: Method,
    pub entries: usize,
    pub updates: u64,
    pub seconds: f64,
}

impl BenchResult {
    pub fn updates_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.updates as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Rewrites the whole set into `map` again and again for `duration` (at
/// least one full pass), or until `stop` is set.
pub fn update_bench(
    map: &MapHandle,
    e: &Entries,
    method: Method,
    duration: Duration,
    stop: &AtomicBool,
) -> Result<BenchResult> {
    let start = Instant::now();
    let mut updates = 0u64;
    loop {
        match method {
            Method::Single => {
                // Check the clock every 4096 updates so a large set does not overrun much.
                let mut i = 0;
                while i < e.count {
                    let end = (i + 4096).min(e.count);
                    for j in i..end {
                        map.update(e.key(j), e.value(j), MapFlags::ANY)
                            .map_err(bpf(format!("update of cache entry {j}")))?;
                    }
                    updates += (end - i) as u64;
                    i = end;
                    if start.elapsed() >= duration || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
            Method::Batch(b) => {
                let b = b.max(1);
                let mut i = 0;
                while i < e.count {
                    let n = b.min(e.count - i);
                    map.update_batch(
                        &e.keys[i * DNS_KEY_LEN..(i + n) * DNS_KEY_LEN],
                        &e.values[i * DNS_VALUE_LEN..(i + n) * DNS_VALUE_LEN],
                        n as u32,
                        MapFlags::ANY,
                        MapFlags::ANY,
                    )
                    .map_err(bpf("batch update of the cache map"))?;
                    updates += n as u64;
                    i += n;
                    if start.elapsed() >= duration || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            }
        }
        if start.elapsed() >= duration || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(BenchResult {
        method,
        entries: e.count,
        updates,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_wire_names() {
        let k = key(&[2, b'a', b'b', 0]).expect("fits");
        assert_eq!(&k[..4], &[2, b'a', b'b', 0]);
        assert!(k[4..].iter().all(|&b| b == 0));
        assert!(key(&[0u8; DNS_KEY_LEN + 1]).is_none());
        let names = NameSet::new(2, "a-z0-9", "lab.test", [100, 64, 0, 0], 300).expect("set");
        let e = Entries::of(&names).expect("entries");
        assert_eq!(e.count, 1296);
        assert_eq!(e.key(37)[..names.wire_len()], names.wire_name(37)[..]);
        assert_eq!(&e.value(37)[..16], &names.record(37));
        assert_eq!(&e.value(37)[16..], &names.record6(37));
        let c = e.to_shim_cache();
        assert_eq!(c.len(), 1296);
        assert_eq!(
            c[&key(&names.wire_name(37)).expect("key")],
            value(&names, 37)
        );
    }
}
