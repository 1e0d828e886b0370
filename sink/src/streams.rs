//! Per-stream quality of gen's probe streams (`gen --stamp`), as a receiver sees them:
//! loss, duplicates, reordering in the sense of RFC 4737 and interarrival jitter in the
//! sense of RFC 3550. `sink` feeds it the probes it receives; `tstamp --match seq` the
//! responses it sees on the mirror port.
//!
//! Definitions, per stream (a stream is one gen TX queue: the top 8 bits of `seq`):
//! - `received`: probes counted (duplicates included); `unique`: distinct counters.
//! - `expected = max - min + 1` over the counters seen; `lost = expected - unique`.
//! - `duplicates`: a counter seen again within [`WINDOW`] of the highest (older
//!   arrivals cannot be told from late ones and count as reordered only).
//! - `reordered` (RFC 4737 section 3.3): an arrival whose counter is below the next
//!   expected one (the highest seen + 1), not a duplicate.
//! - `reorder_extent_max` (RFC 4737 section 4.2): for a reordered arrival i with
//!   counter s, i - j where j is the earliest arrival with a counter above s; looked
//!   up among the last [`HISTORY`] arrivals, so it saturates at [`HISTORY`].
//! - `jitter_ns` (RFC 3550 section 6.4.1): J += (|D| - J) / 16 over consecutive
//!   arrivals, D the change of transit time (receive minus send timestamp, or the
//!   response time for tstamp). A constant clock offset between sender and receiver
//!   cancels in D, so it needs no common clock; `None` without timestamps.

use records::sink::StreamStats;

/// Duplicate-detection window per stream (counters).
pub const WINDOW: u64 = 1 << 16;
/// Arrivals remembered for the reordering extent.
pub const HISTORY: usize = 1024;

/// One stream's state.
#[derive(Debug, Clone)]
pub struct Stream {
    min: u64,
    max: u64,
    received: u64,
    unique: u64,
    reordered: u64,
    duplicates: u64,
    extent_max: u64,
    /// Bitmap of counters seen in (max - WINDOW, max].
    seen: Vec<u64>,
    /// The last HISTORY arrivals' counters, a ring; `arrivals` is the total.
    history: Vec<u64>,
    arrivals: u64,
    last_transit: Option<i128>,
    jitter: Option<f64>,
}

impl Stream {
    /// A stream whose first arrival has counter `c`.
    pub fn new(c: u64, transit_ns: Option<i128>) -> Self {
        let mut s = Stream {
            min: c,
            max: c,
            received: 0,
            unique: 1,
            reordered: 0,
            duplicates: 0,
            extent_max: 0,
            seen: vec![0; (WINDOW / 64) as usize],
            history: Vec::with_capacity(HISTORY),
            arrivals: 0,
            last_transit: None,
            jitter: None,
        };
        s.set(c);
        s.arrived(c, transit_ns, false);
        s
    }

    fn bit(c: u64) -> (usize, u64) {
        let i = c % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn set(&mut self, c: u64) {
        let (w, m) = Self::bit(c);
        self.seen[w] |= m;
    }

    /// Bookkeeping of every arrival: count, history (duplicates left out, as RFC
    /// 4737 considers only the first copy), jitter.
    fn arrived(&mut self, c: u64, transit_ns: Option<i128>, duplicate: bool) {
        self.received += 1;
        if !duplicate {
            if self.history.len() < HISTORY {
                self.history.push(c);
            } else {
                self.history[(self.arrivals % HISTORY as u64) as usize] = c;
            }
            self.arrivals += 1;
        }
        if let Some(t) = transit_ns {
            if let Some(prev) = self.last_transit {
                let d = (t - prev).unsigned_abs() as f64;
                let j = self.jitter.unwrap_or(0.0);
                self.jitter = Some(j + (d - j) / 16.0);
            } else {
                self.jitter.get_or_insert(0.0);
            }
            self.last_transit = Some(t);
        }
    }

    /// RFC 4737 extent of a reordered counter `c` arriving now (before `arrived`):
    /// arrivals since the earliest remembered one with a counter above `c`.
    fn extent(&self, c: u64) -> u64 {
        let n = self.history.len() as u64;
        // Oldest remembered arrival has index arrivals - n.
        for k in 0..n {
            let idx = self.arrivals - n + k;
            if self.history[(idx % HISTORY as u64) as usize] > c {
                return self.arrivals - idx;
            }
        }
        HISTORY as u64
    }

    /// One arrival of counter `c`; `transit_ns` its transit (or response) time.
    pub fn on(&mut self, c: u64, transit_ns: Option<i128>) {
        let mut duplicate = false;
        if c > self.max {
            if c - self.max >= WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for k in self.max + 1..=c {
                    let (w, m) = Self::bit(k);
                    self.seen[w] &= !m;
                }
            }
            self.max = c;
            self.set(c);
            self.unique += 1;
        } else if self.max - c >= WINDOW {
            self.reordered += 1;
            self.unique += 1;
            self.min = self.min.min(c);
            self.extent_max = self.extent_max.max(self.extent(c));
        } else {
            let (w, m) = Self::bit(c);
            if self.seen[w] & m != 0 {
                self.duplicates += 1;
                duplicate = true;
            } else {
                self.seen[w] |= m;
                self.unique += 1;
                self.reordered += 1;
                self.min = self.min.min(c);
                self.extent_max = self.extent_max.max(self.extent(c));
            }
        }
        self.arrived(c, transit_ns, duplicate);
    }

    /// The stream's figures, as `stream` in the records.
    pub fn stats(&self, stream: u8) -> StreamStats {
        let expected = self.max - self.min + 1;
        StreamStats {
            stream,
            received: self.received,
            unique: self.unique,
            expected,
            lost: expected.saturating_sub(self.unique),
            duplicates: self.duplicates,
            reordered: self.reordered,
            reorder_extent_max: self.extent_max,
            jitter_ns: self.jitter,
        }
    }
}

/// Every stream of a capture, by stream id.
#[derive(Debug, Clone, Default)]
pub struct Streams {
    streams: std::collections::BTreeMap<u8, Stream>,
}

impl Streams {
    /// One arrival of `counter` in `stream`.
    #[inline]
    pub fn on(&mut self, stream: u8, counter: u64, transit_ns: Option<i128>) {
        match self.streams.get_mut(&stream) {
            Some(s) => s.on(counter, transit_ns),
            None => {
                self.streams
                    .insert(stream, Stream::new(counter, transit_ns));
            }
        }
    }

    /// Streams seen.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// No stream seen.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Each stream's figures, by stream id.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.streams.iter().map(|(id, s)| s.stats(*id)).collect()
    }
}

/// One line per stream for the text outputs of sink and tstamp.
pub fn text_lines(stats: &[StreamStats]) -> Vec<String> {
    stats
        .iter()
        .map(|s| {
            format!(
                "stream {:>3}: {} received, {} lost of {} ({:.3} %), {} duplicates, {} reordered (extent max {}), jitter {}",
                s.stream,
                s.received,
                s.lost,
                s.expected,
                if s.expected > 0 {
                    100.0 * s.lost as f64 / s.expected as f64
                } else {
                    0.0
                },
                s.duplicates,
                s.reordered,
                s.reorder_extent_max,
                s.jitter_ns
                    .map_or_else(|| "-".to_owned(), |j| format!("{:.1} us", j / 1e3))
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(counters: &[u64]) -> StreamStats {
        let mut s = Streams::default();
        for &c in counters {
            s.on(0, c, None);
        }
        s.stats()[0]
    }

    #[test]
    fn in_order_stream_is_clean() {
        let st = run(&[0, 1, 2, 3, 4]);
        assert_eq!(
            (
                st.received,
                st.lost,
                st.reordered,
                st.duplicates,
                st.reorder_extent_max
            ),
            (5, 0, 0, 0, 0)
        );
        assert_eq!(st.jitter_ns, None);
    }

    #[test]
    fn rfc4737_examples() {
        // RFC 4737 section 4.2.2 style: 1 2 3 5 6 4 7: 4 is reordered, extent 2
        // (the earliest arrival above 4 is 5, two arrivals earlier).
        let st = run(&[1, 2, 3, 5, 6, 4, 7]);
        assert_eq!((st.reordered, st.reorder_extent_max, st.lost), (1, 2, 0));
        // 1 3 4 2 5: 2 reordered with extent 2; 1 2 4 3: extent 1.
        assert_eq!(run(&[1, 3, 4, 2, 5]).reorder_extent_max, 2);
        assert_eq!(run(&[1, 2, 4, 3]).reorder_extent_max, 1);
        // Two late ones: 1 4 5 2 3 6: 2 has extent 2 (4 came 2 arrivals earlier),
        // 3 has extent 3.
        let st = run(&[1, 4, 5, 2, 3, 6]);
        assert_eq!((st.reordered, st.reorder_extent_max), (2, 3));
        // A duplicate is not an arrival for the extent: 8 10 10 9 has extent 1.
        let st = run(&[8, 10, 10, 9]);
        assert_eq!(
            (st.duplicates, st.reordered, st.reorder_extent_max),
            (1, 1, 1)
        );
    }

    #[test]
    fn loss_and_duplicates() {
        // 0 1 3 2 2 5: 4 lost, 2 late once and then duplicated.
        let st = run(&[0, 1, 3, 2, 2, 5]);
        assert_eq!(
            (
                st.received,
                st.unique,
                st.expected,
                st.lost,
                st.duplicates,
                st.reordered
            ),
            (6, 5, 6, 1, 1, 1)
        );
    }

    #[test]
    fn extent_saturates_at_history() {
        let mut v: Vec<u64> = (1..=(HISTORY as u64 + 10)).collect();
        v.push(0);
        let st = run(&v);
        assert_eq!((st.reordered, st.reorder_extent_max), (1, HISTORY as u64));
    }

    #[test]
    fn rfc3550_jitter() {
        // Transit times 100, 110, 100, 100: |D| = 10, 10, 0.
        // J1 = 10/16 = 0.625; J2 = 0.625 + (10 - 0.625)/16 = 1.2109375;
        // J3 = 1.2109375 - 1.2109375/16 = 1.13525390625.
        let mut s = Streams::default();
        for (c, t) in [(0u64, 100i128), (1, 110), (2, 100), (3, 100)] {
            s.on(7, c, Some(t + 1_000_000_000)); // a constant clock offset cancels
        }
        let st = s.stats()[0];
        assert_eq!(st.stream, 7);
        let j = st.jitter_ns.expect("jitter");
        assert!((j - 1.135_253_906_25).abs() < 1e-9, "{j}");
    }

    #[test]
    fn streams_are_separate() {
        let mut s = Streams::default();
        for c in [0u64, 1, 2] {
            s.on(0, c, None);
            s.on(1, 10 + 2 * c, None); // stream 1 loses every other
        }
        let st = s.stats();
        assert_eq!(st.len(), 2);
        assert_eq!((st[0].lost, st[1].lost, st[1].expected), (0, 2, 5));
    }
}
