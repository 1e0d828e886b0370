//! A measurement session: the matcher, cumulative and per-interval response-time
//! statistics, RCODE counts, and the interval clock.
//!
//! Intervals run on the capture clock: the first interval starts at `start_ns` (the
//! first packet's timestamp offline, the start of capture live) and every interval is
//! exactly `interval_ns` long; `tick(now)` closes the intervals that ended before `now`
//! even when no packet arrives. Interval records carry deltas; the final record carries
//! totals. Emitting an interval hands the interval's histogram to the caller (for the
//! HDR interval log) before it is reset.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use profiles::wire::dns::Rcode;

use crate::matcher::{Counters, MatchMode, Matcher};
use crate::stats::RttStats;

pub use records::tstamp::{Final as FinalRecord, Skipped};

/// One interval record and where it lies (for the HDR log).
#[derive(Debug, Clone)]
pub struct IntervalRecord {
    /// What is written.
    pub record: records::tstamp::Interval,
    /// Start of the interval, ns since the start.
    pub start_offset_ns: u64,
    /// Its length, ns.
    pub length_ns: u64,
}

impl std::ops::Deref for IntervalRecord {
    type Target = records::tstamp::Interval;
    fn deref(&self) -> &Self::Target {
        &self.record
    }
}

/// Session parameters.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub mode: MatchMode,
    pub timeout_ns: u64,
    pub max_pending: usize,
    pub interval_ns: u64,
    /// How long answered requests are remembered to recognise duplicate responses.
    pub dup_window_ns: u64,
}

/// Percentiles of one interval, kept for the timeline plot.
#[derive(Debug, Clone, Copy)]
pub struct TimelinePoint {
    pub t: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

pub struct Session {
    opts: SessionOptions,
    matcher: Matcher,
    pub total: RttStats,
    interval: RttStats,
    rcodes_total: [u64; 16],
    /// Probe streams as their responses came back (seq mode).
    streams: sink::streams::Streams,
    rcodes_iv: [u64; 16],
    start_ns: Option<u64>,
    next_boundary: u64,
    last_ns: u64,
    last_counters: Counters,
    capture_drops: u64,
    last_drops: u64,
    pub timeline: Vec<TimelinePoint>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("matcher", &self.matcher)
            .finish()
    }
}

fn rcode_map(c: &[u64; 16]) -> BTreeMap<String, u64> {
    c.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (Rcode(i as u8).name(), *n))
        .collect()
}

impl Session {
    /// `start_ns`: the interval origin if known (live: now); otherwise the first packet.
    pub fn new(opts: SessionOptions, start_ns: Option<u64>) -> Self {
        let matcher = Matcher::with_dup_window(
            opts.mode,
            opts.timeout_ns,
            opts.max_pending,
            opts.dup_window_ns,
        );
        let mut s = Session {
            matcher,
            total: RttStats::new(),
            interval: RttStats::new(),
            rcodes_total: [0; 16],
            streams: sink::streams::Streams::default(),
            rcodes_iv: [0; 16],
            start_ns: None,
            next_boundary: 0,
            last_ns: 0,
            last_counters: Counters::default(),
            capture_drops: 0,
            last_drops: 0,
            timeline: Vec::new(),
            opts,
        };
        if let Some(t) = start_ns {
            s.set_start(t);
        }
        s
    }

    fn set_start(&mut self, t: u64) {
        self.start_ns = Some(t);
        self.next_boundary = t.saturating_add(self.opts.interval_ns.max(1));
        self.last_ns = t;
    }

    pub fn counters(&self) -> &Counters {
        self.matcher.counters()
    }

    /// Cumulative capture drops (kernel + ring), reported by the live capture.
    pub fn set_capture_drops(&mut self, total: u64) {
        self.capture_drops = total;
    }

    /// Feeds one frame.
    #[inline]
    pub fn on_frame(
        &mut self,
        ts_ns: u64,
        frame: &[u8],
        emit: &mut dyn FnMut(&IntervalRecord, &Histogram<u64>),
    ) {
        match self.start_ns {
            None => self.set_start(ts_ns),
            // A live clock far from the packets' (an unsynchronised NIC clock): rebase.
            Some(s)
                if self.timeline.is_empty()
                    && self.counters().frames == 0
                    && ts_ns.abs_diff(s) > 60_000_000_000 =>
            {
                self.set_start(ts_ns)
            }
            _ => {}
        }
        if ts_ns >= self.next_boundary {
            self.tick(ts_ns, emit);
        }
        if ts_ns > self.last_ns {
            self.last_ns = ts_ns;
        }
        let matched = self.matcher.on_frame(ts_ns, frame);
        if let Some((stream, counter)) = self.matcher.take_seq_response() {
            // Jitter of the response time over matched responses; a duplicate
            // counts in its stream's order only.
            self.streams
                .on(stream, counter, matched.map(|m| i128::from(m.rtt_ns)));
        }
        if let Some(m) = matched {
            self.total.record(m.rtt_ns);
            self.interval.record(m.rtt_ns);
            if let Some(rc) = m.rcode {
                self.rcodes_total[usize::from(rc & 15)] += 1;
                self.rcodes_iv[usize::from(rc & 15)] += 1;
            }
        }
    }

    /// Closes every interval that ended at or before `now_ns`.
    pub fn tick(&mut self, now_ns: u64, emit: &mut dyn FnMut(&IntervalRecord, &Histogram<u64>)) {
        let Some(start) = self.start_ns else { return };
        self.matcher.advance(now_ns);
        while now_ns >= self.next_boundary {
            let end = self.next_boundary;
            let len = self.opts.interval_ns.max(1);
            let rec = self.interval_record(end - start, len);
            emit(&rec, &self.interval.hist);
            self.interval.reset();
            self.rcodes_iv = [0; 16];
            self.next_boundary += len;
        }
    }

    fn interval_record(&mut self, end_offset: u64, len: u64) -> IntervalRecord {
        let now = *self.matcher.counters();
        let d = now.since(&self.last_counters);
        self.last_counters = now;
        let drops = self.capture_drops - self.last_drops.min(self.capture_drops);
        self.last_drops = self.capture_drops;
        let rtt = self.interval.summary();
        let t = end_offset as f64 / 1e9;
        if let (Some(p50), Some(p90), Some(p99), Some(p99_9), Some(max)) =
            (rtt.p50, rtt.p90, rtt.p99, rtt.p99_9, rtt.max)
        {
            self.timeline.push(TimelinePoint {
                t,
                p50,
                p90,
                p99,
                p99_9,
                max,
            });
        }
        IntervalRecord {
            start_offset_ns: end_offset - len,
            length_ns: len,
            record: records::tstamp::Interval {
                kind: records::Kind::Interval,
                schema_version: records::SCHEMA_VERSION,
                t,
                requests: d.requests,
                responses: d.responses,
                matched: d.matched,
                lost: d.lost,
                unmatched_responses: d.unmatched_responses,
                duplicates: d.duplicates,
                evicted: d.evicted,
                capture_drops: drops,
                rtt_ns: rtt,
                rcodes: rcode_map(&self.rcodes_iv),
            },
        }
    }

    /// Ends the session: the partial last interval is emitted when it holds anything,
    /// every request still pending becomes lost, and the final record is built.
    pub fn finish(
        &mut self,
        clock: &str,
        source: &str,
        end_ns: Option<u64>,
        truncated: bool,
        emit: &mut dyn FnMut(&IntervalRecord, &Histogram<u64>),
    ) -> FinalRecord {
        let end = end_ns.unwrap_or(self.last_ns).max(self.last_ns);
        let start = self.start_ns.unwrap_or(end);
        self.matcher.finish();
        let pending = self.matcher.counters().since(&self.last_counters);
        if self.interval.count() > 0
            || pending != Counters::default()
            || self.capture_drops > self.last_drops
        {
            let begin = self
                .next_boundary
                .saturating_sub(self.opts.interval_ns.max(1));
            let stop = end.max(begin + 1);
            let rec = self.interval_record(stop - start, stop - begin);
            emit(&rec, &self.interval.hist);
            self.interval.reset();
        }
        let c = *self.matcher.counters();
        FinalRecord {
            kind: records::Kind::Final,
            schema_version: records::SCHEMA_VERSION,
            clock: clock.to_string(),
            match_mode: self.opts.mode.name().to_owned(),
            source: source.to_string(),
            duration_s: end.saturating_sub(start) as f64 / 1e9,
            frames: c.frames,
            requests: c.requests,
            responses: c.responses,
            matched: c.matched,
            lost: c.lost,
            unmatched_responses: c.unmatched_responses,
            duplicates: c.duplicates,
            evicted: c.evicted,
            capture_drops: self.capture_drops,
            port: None,
            negative_rtt: c.negative_rtt,
            skipped: Skipped {
                malformed: c.malformed,
                not_ip: c.not_ip,
                not_udp: c.not_udp,
                not_dns_or_probe: c.not_matched_proto,
            },
            capture_truncated: truncated,
            rtt_ns: self.total.summary(),
            rcodes: rcode_map(&self.rcodes_total),
            streams: self.streams.stats(),
        }
    }
}
