//! The statistics a comparison of seeds rests on: the mean with a percentile-bootstrap 95 %
//! confidence interval, and the interquartile mean (rliable's IQM, scipy's `trim_mean(x, 0.25)`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples behind every interval.
pub const RESAMPLES: usize = 10_000;

/// A mean over seeds with its 95 % bootstrap confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The sample mean.
    pub mean: f64,
    /// 2.5th percentile of the bootstrap means.
    pub lo: f64,
    /// 97.5th percentile of the bootstrap means.
    pub hi: f64,
}

/// The mean of `values` with a percentile-bootstrap 95 % interval from [`RESAMPLES`]
/// resamples drawn with a fixed seed (the same inputs give the same interval); None when empty.
pub fn bootstrap_mean(values: &[f64]) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some(Estimate {
        mean,
        lo: percentile(&means, 2.5),
        hi: percentile(&means, 97.5),
    })
}

/// The `p`-th percentile of sorted values, interpolated linearly between ranks (numpy's
/// default).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (below, frac) = (rank.floor() as usize, rank.fract());
    match sorted.get(below + 1) {
        Some(next) => sorted[below] + frac * (next - sorted[below]),
        None => sorted[below],
    }
}

/// The interquartile mean: the mean after cutting `⌊n/4⌋` values from each end of the sorted
/// values (scipy's `trim_mean(x, 0.25)`, rliable's IQM); None when empty.
pub fn iqm(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    let middle = &v[cut..v.len() - cut];
    Some(middle.iter().sum::<f64>() / middle.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_cuts_a_quarter_from_each_end() {
        // 8 values: drop 2 from each end → mean of 3, 4, 5, 100.
        let v = [1000.0, 1.0, 2.0, 3.0, 4.0, 5.0, 100.0, -50.0];
        assert_eq!(iqm(&v), Some((2.0 + 3.0 + 4.0 + 5.0) / 4.0));
        // 5 values: drop 1 from each end.
        assert_eq!(iqm(&[9.0, 1.0, 2.0, 3.0, 0.0]), Some(2.0));
        // 3 values: ⌊3/4⌋ = 0, the plain mean.
        assert_eq!(iqm(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(iqm(&[]), None);
    }

    #[test]
    fn bootstrap_interval_by_hand() {
        // One value: every resample is that value.
        let e = bootstrap_mean(&[7.5]).unwrap();
        assert_eq!((e.mean, e.lo, e.hi), (7.5, 7.5, 7.5));
        // Two values a < b: resample means are a (p 1/4), (a+b)/2 (1/2), b (1/4), so the
        // 2.5th and 97.5th percentiles are a and b.
        let e = bootstrap_mean(&[10.0, 20.0]).unwrap();
        assert_eq!((e.mean, e.lo, e.hi), (15.0, 10.0, 20.0));
        // Three 1s and a 9: a resample with k nines has mean 1 + 2k, k ~ Binomial(4, 1/4).
        // P(k = 0) = 0.32 > 2.5 %, so lo = 1; P(k ≥ 3) = 5.1 % > 2.5 % > P(k = 4) = 0.4 %, so
        // hi = 1 + 2·3 = 7.
        let v = [1.0, 1.0, 1.0, 9.0];
        let e = bootstrap_mean(&v).unwrap();
        assert_eq!((e.mean, e.lo, e.hi), (3.0, 1.0, 7.0));
        assert_eq!(bootstrap_mean(&v), Some(e));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 2.5) - 1.075).abs() < 1e-12);
    }
}
