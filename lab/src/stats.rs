//! Summary statistics of repeated measurements: mean, sample standard
//! deviation and the two-sided 99 % confidence interval of the mean with
//! Student's t distribution (the paper's error bars).
//!
//! Invariants: `n == 0` gives no summary; `n == 1` gives a degenerate interval
//! (low == high == mean) because one sample says nothing about spread.

/// Two-sided 99 % quantiles t(0.995, df) for df = 1..=30.
const T995: [f64; 30] = [
    63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169, 3.106, 3.055, 3.012,
    2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845, 2.831, 2.819, 2.807, 2.797, 2.787, 2.779,
    2.771, 2.763, 2.756, 2.750,
];
/// (df, t(0.995, df)) beyond the table, up to the normal limit.
const T995_TAIL: [(f64, f64); 4] = [(30.0, 2.750), (40.0, 2.704), (60.0, 2.660), (120.0, 2.617)];
/// The normal distribution's 0.995 quantile (df -> infinity).
const Z995: f64 = 2.5758;

/// Student's t quantile for a two-sided 99 % interval with `df` degrees of
/// freedom (df >= 1). Exact to the table's three decimals up to 30, then
/// interpolated linearly in 1/df (the usual table interpolation).
pub fn t_99(df: u64) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T995[(df - 1) as usize],
        _ => {
            let inv = 1.0 / df as f64;
            for w in T995_TAIL.windows(2) {
                let (d0, t0) = w[0];
                let (d1, t1) = w[1];
                if (df as f64) <= d1 {
                    let f = (1.0 / d0 - inv) / (1.0 / d0 - 1.0 / d1);
                    return t0 + f * (t1 - t0);
                }
            }
            let (d0, t0) = T995_TAIL[T995_TAIL.len() - 1];
            let f = (1.0 / d0 - inv) / (1.0 / d0);
            t0 + f * (Z995 - t0)
        }
    }
}

/// Mean and 99 % confidence interval of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); 0 for n = 1.
    pub stddev: f64,
    /// Lower end of the 99 % CI of the mean; NaN for n = 1 (one sample gives no
    /// interval, and a zero-width one would claim certainty).
    pub ci99_low: f64,
    /// Upper end of the 99 % CI of the mean; NaN for n = 1.
    pub ci99_high: f64,
}

impl Summary {
    /// Summarises `samples` (non-finite values are ignored); `None` if none is left.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return None;
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Summary {
                n,
                mean,
                stddev: 0.0,
                ci99_low: f64::NAN,
                ci99_high: f64::NAN,
            });
        }
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let stddev = var.sqrt();
        let half = t_99((n - 1) as u64) * stddev / (n as f64).sqrt();
        Some(Summary {
            n,
            mean,
            stddev,
            ci99_low: mean - half,
            ci99_high: mean + half,
        })
    }

    /// Whether there is an interval (two samples or more).
    pub fn has_interval(&self) -> bool {
        self.ci99_low.is_finite() && self.ci99_high.is_finite()
    }

    /// Half-width of the interval (NaN without one).
    pub fn half_width(&self) -> f64 {
        (self.ci99_high - self.ci99_low) / 2.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_match_the_table_and_approach_the_normal() {
        assert!(close(t_99(1), 63.657, 1e-9));
        assert!(close(t_99(9), 3.250, 1e-9));
        assert!(close(t_99(30), 2.750, 1e-9));
        // Published value for df = 50 is 2.678; interpolation in 1/df is good to 1e-3.
        assert!(close(t_99(50), 2.678, 2e-3), "{}", t_99(50));
        assert!(close(t_99(1_000_000), Z995, 1e-3));
        // Monotone decreasing.
        let mut last = f64::INFINITY;
        for df in 1..500 {
            let t = t_99(df);
            assert!(t <= last, "df {df}");
            last = t;
        }
    }

    #[test]
    fn ci_against_a_hand_computed_example() {
        // 10 samples 1..=10: mean 5.5, s = 3.02765, t(0.995, 9) = 3.250,
        // half width = 3.250 * 3.02765 / sqrt(10) = 3.11164.
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&xs).unwrap();
        assert_eq!(s.n, 10);
        assert!(close(s.mean, 5.5, 1e-12));
        assert!(close(s.stddev, 3.027_650_354, 1e-6));
        assert!(close(s.ci99_low, 5.5 - 3.111_64, 1e-4), "{s:?}");
        assert!(close(s.ci99_high, 5.5 + 3.111_64, 1e-4), "{s:?}");
    }

    #[test]
    fn two_samples_use_df_one() {
        // mean 11, s = sqrt(2), half = 63.657 * sqrt(2) / sqrt(2) = 63.657
        let s = Summary::of(&[10.0, 12.0]).unwrap();
        assert!(close(s.half_width(), 63.657, 1e-9));
    }

    #[test]
    fn degenerate_inputs() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN]).is_none());
        let one = Summary::of(&[7.0, f64::NAN]).unwrap();
        assert_eq!((one.n, one.mean), (1, 7.0));
        assert!(!one.has_interval() && one.ci99_low.is_nan() && one.ci99_high.is_nan());
        let same = Summary::of(&[3.0; 5]).unwrap();
        assert_eq!((same.ci99_low, same.ci99_high), (3.0, 3.0));
        assert!(same.has_interval());
    }
}
