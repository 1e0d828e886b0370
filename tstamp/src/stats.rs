//! Response-time statistics: an HDR histogram (3 significant digits, auto-resizing, ns)
//! for percentiles, plus exact integer accumulators for count, min, max, mean and
//! standard deviation (u128 sums of ns and ns², so an hour at full rate loses nothing).

use hdrhistogram::Histogram;

/// Response-time accumulator.
#[derive(Debug, Clone)]
pub struct RttStats {
    pub hist: Histogram<u64>,
    count: u64,
    sum: u128,
    sum_sq: u128,
    min: u64,
    max: u64,
}

pub use records::tstamp::Summary;

impl Default for RttStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RttStats {
    pub fn new() -> Self {
        let mut hist = Histogram::new(3).expect("3 significant digits is a valid precision");
        hist.auto(true);
        RttStats {
            hist,
            count: 0,
            sum: 0,
            sum_sq: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        // Auto-resize makes recording infallible for u64 values up to the histogram's
        // own ceiling (i64::MAX); clamp beyond that.
        let _ = self.hist.record(ns.min(i64::MAX as u64 / 2));
        self.count += 1;
        self.sum += u128::from(ns);
        self.sum_sq += u128::from(ns) * u128::from(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn reset(&mut self) {
        self.hist.reset();
        self.count = 0;
        self.sum = 0;
        self.sum_sq = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    /// Quantile `q` in [0, 1] from the histogram (HDR: within 0.1 %).
    pub fn quantile(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    pub fn summary(&self) -> Summary {
        if self.count == 0 {
            return Summary::default();
        }
        let n = self.count as f64;
        let mean = self.sum as f64 / n;
        // Variance from exact integer sums: (n·Σx² − (Σx)²) / n², computed in u128.
        let n128 = u128::from(self.count);
        let var_num = (n128 * self.sum_sq).saturating_sub(self.sum * self.sum);
        let stddev = (var_num as f64).sqrt() / n;
        Summary {
            count: self.count,
            min: Some(self.min),
            mean: Some(mean),
            stddev: Some(stddev),
            p50: Some(self.quantile(0.50)),
            p90: Some(self.quantile(0.90)),
            p99: Some(self.quantile(0.99)),
            p99_9: Some(self.quantile(0.999)),
            p99_99: Some(self.quantile(0.9999)),
            max: Some(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_moments_and_percentiles() {
        let mut s = RttStats::new();
        for v in 1..=1000u64 {
            s.record(v * 1000);
        }
        let m = s.summary();
        assert_eq!(m.count, 1000);
        assert_eq!(m.min, Some(1000));
        assert_eq!(m.max, Some(1_000_000));
        assert_eq!(m.mean, Some(500_500.0));
        // Population stddev of 1000..=1_000_000 step 1000.
        let sd = m.stddev.expect("stddev");
        assert!((sd - 288_674.990_5).abs() < 1.0, "{sd}");
        let p50 = m.p50.expect("p50") as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.002, "{p50}");
        s.reset();
        assert_eq!(s.summary(), Summary::default());
    }

    #[test]
    fn no_precision_loss_at_scale() {
        // 10^10 samples of ~1 ms would overflow nothing: check the arithmetic directly.
        let mut s = RttStats::new();
        s.count = 10_000_000_000;
        s.sum = 10_000_000_000u128 * 1_000_000;
        s.sum_sq = 10_000_000_000u128 * 1_000_000 * 1_000_000;
        s.min = 1_000_000;
        s.max = 1_000_000;
        let _ = s.hist.record(1_000_000);
        let m = s.summary();
        assert_eq!(m.mean, Some(1_000_000.0));
        assert_eq!(m.stddev, Some(0.0));
    }
}
