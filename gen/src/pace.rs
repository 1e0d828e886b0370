//! Pacing: the departure schedule of one queue's packets and the pending-batch logic.
//!
//! Packet k of a queue is scheduled at `t0 + s_k`: CBR `s_k = k / rate`, Poisson
//! `s_k = s_{k-1} + Exp(rate)`. A sender asks [`Pending::refill`] which packets are
//! due at `now` (scheduled time <= now, at most `max`), sends them, and records
//! `now - s_k` per packet as the pacing deviation. At low rates one packet is due at a
//! time (batches of 1); when the sender falls behind, batches grow up to `max`, so the
//! mean rate stays exact as long as the sender can keep up: the schedule never
//! drifts, lateness is caught up. Packets are never sent early.

/// Inter-departure pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pattern {
    /// Constant bit rate: equal gaps.
    #[default]
    Cbr,
    /// Exponential gaps (Poisson arrivals) with the same mean.
    Poisson,
}

/// One queue's departure schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    pattern: Pattern,
    gap_ns: f64,
    k: u64,
    next_ns: f64,
    rng: u64,
}

impl Pacer {
    /// A schedule at `rate_pps` (> 0) starting at 0 ns.
    pub fn new(pattern: Pattern, rate_pps: f64, seed: u64) -> Pacer {
        let mut p = Pacer {
            pattern,
            gap_ns: 1e9 / rate_pps,
            k: 0,
            next_ns: 0.0,
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        };
        if pattern == Pattern::Poisson {
            p.next_ns = p.sample_gap();
        }
        p
    }

    fn sample_gap(&mut self) -> f64 {
        // xorshift64*, uniform in (0, 1].
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        -u.ln() * self.gap_ns
    }

    /// Scheduled time of the next unsent packet (ns since the start).
    #[inline]
    pub fn next_ns(&self) -> f64 {
        self.next_ns
    }

    /// Moves to the following packet.
    #[inline]
    pub fn advance(&mut self) {
        self.k += 1;
        self.next_ns = match self.pattern {
            // Computed from k, not accumulated, so rounding never drifts.
            Pattern::Cbr => self.k as f64 * self.gap_ns,
            Pattern::Poisson => self.next_ns + self.sample_gap(),
        };
    }
}

/// Capacity of [`Pending`].
pub const MAX_BATCH: usize = 64;

/// Scheduled times of packets that are due but not sent yet.
#[derive(Debug, Clone)]
pub struct Pending {
    times: [f64; MAX_BATCH],
    len: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            times: [0.0; MAX_BATCH],
            len: 0,
        }
    }
}

impl Pending {
    /// Adds packets due at `now_ns` until `max` are pending (at most [`MAX_BATCH`]),
    /// or `remaining` allows no more. Returns how many are pending.
    #[inline]
    pub fn refill(&mut self, pacer: &mut Pacer, now_ns: f64, max: usize, remaining: u64) -> usize {
        let max = max
            .min(MAX_BATCH)
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        while self.len < max && pacer.next_ns() <= now_ns {
            self.times[self.len] = pacer.next_ns();
            self.len += 1;
            pacer.advance();
        }
        self.len
    }

    /// Pending packets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Scheduled time of pending packet `i`.
    #[inline]
    pub fn time(&self, i: usize) -> f64 {
        self.times[i]
    }

    /// Drops the first `n` (sent) packets.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.times.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbr_schedule_is_exact() {
        let mut p = Pacer::new(Pattern::Cbr, 1000.0, 1);
        for k in 0..10_000u64 {
            assert!((p.next_ns() - k as f64 * 1e6).abs() < 1e-3);
            p.advance();
        }
    }

    #[test]
    fn poisson_mean_and_spread() {
        let mut p = Pacer::new(Pattern::Poisson, 1e6, 7);
        let n = 200_000;
        let mut prev = 0.0;
        let mut gaps = Vec::with_capacity(n);
        for _ in 0..n {
            gaps.push(p.next_ns() - prev);
            prev = p.next_ns();
            p.advance();
        }
        let mean = gaps.iter().sum::<f64>() / n as f64;
        assert!((mean - 1000.0).abs() < 15.0, "mean gap {mean}");
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        // Exponential: stddev == mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.03,
            "cv {}",
            var.sqrt() / mean
        );
        assert!(gaps.iter().all(|g| *g > 0.0));
    }

    #[test]
    fn batches_grow_when_behind_and_respect_limits() {
        let mut p = Pacer::new(Pattern::Cbr, 1e6, 1);
        let mut q = Pending::default();
        assert_eq!(q.refill(&mut p, 0.0, 32, u64::MAX), 1, "packet 0 due at 0");
        q.consume(1);
        assert_eq!(
            q.refill(&mut p, 500.0, 32, u64::MAX),
            0,
            "packet 1 not due yet"
        );
        assert_eq!(q.refill(&mut p, 10_000.0, 32, u64::MAX), 10, "1..=10 due");
        assert_eq!(q.time(0), 1000.0);
        q.consume(4);
        assert_eq!(q.time(0), 5000.0);
        assert_eq!(q.refill(&mut p, 1e9, 8, u64::MAX), 8);
        q.consume(8);
        assert_eq!(q.refill(&mut p, 1e9, 32, 3), 3, "count limit");
    }
}
