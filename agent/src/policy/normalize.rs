//! Running observation normalisation and reward scaling (PPO details 7 and 8 of the checklist).
//!
//! Their statistics are part of the policy: a checkpoint saves them, `--resume` restores them and
//! evaluation freezes them, so a policy sees the same inputs it was trained on.

use serde::{Deserialize, Serialize};

/// Mean and variance over everything seen so far, merged batch by batch (Chan et al.), as
/// Gymnasium's `RunningMeanStd`; kept in f64 so millions of updates do not drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Mean per component.
    pub mean: Vec<f64>,
    /// Variance per component.
    pub var: Vec<f64>,
    /// Samples merged (plus a tiny pseudo-count).
    pub count: f64,
}

impl RunningMeanStd {
    /// Starts like Gymnasium: mean 0, variance 1, a tiny pseudo-count so the first batch dominates.
    pub fn new(dim: usize) -> Self {
        RunningMeanStd {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }

    /// Number of components tracked.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Merges a batch of `rows` (each `dim` long, row-major) into the statistics.
    pub fn update(&mut self, batch: &[f32]) {
        let dim = self.dim();
        if dim == 0 || batch.is_empty() {
            return;
        }
        debug_assert_eq!(batch.len() % dim, 0, "batch is not a whole number of rows");
        let n = (batch.len() / dim) as f64;
        for j in 0..dim {
            let column = batch.iter().skip(j).step_by(dim).map(|&x| f64::from(x));
            let batch_mean = column.clone().sum::<f64>() / n;
            let batch_var = column.map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
            let delta = batch_mean - self.mean[j];
            let total = self.count + n;
            self.mean[j] += delta * n / total;
            let m2 =
                self.var[j] * self.count + batch_var * n + delta * delta * self.count * n / total;
            self.var[j] = m2 / total;
        }
        self.count += n;
    }
}

/// Normalises observations to zero mean and unit variance, then clips (default ±10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsNormalizer {
    /// Running statistics of raw observations.
    pub stats: RunningMeanStd,
    /// Normalised values are clipped to ±clip.
    pub clip: f32,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

impl ObsNormalizer {
    /// A fresh normaliser for `dim`-component observations.
    pub fn new(dim: usize, clip: f32) -> Self {
        ObsNormalizer {
            stats: RunningMeanStd::new(dim),
            clip,
            epsilon: 1e-8,
        }
    }

    /// Updates the statistics with `batch` and normalises it in place.
    pub fn normalize(&mut self, batch: &mut [f32]) {
        self.stats.update(batch);
        self.apply(batch);
    }

    /// Normalises in place with the current statistics, never changing them.
    pub fn apply(&self, batch: &mut [f32]) {
        let dim = self.stats.dim();
        if dim == 0 {
            return;
        }
        let scale: Vec<f64> = self
            .stats
            .var
            .iter()
            .map(|v| 1.0 / (v + self.epsilon).sqrt())
            .collect();
        for row in batch.chunks_mut(dim) {
            for ((x, m), s) in row.iter_mut().zip(&self.stats.mean).zip(&scale) {
                *x = (((f64::from(*x) - m) * s) as f32).clamp(-self.clip, self.clip);
            }
        }
    }
}

/// Scales rewards by the standard deviation of the discounted return, per environment, as
/// Gymnasium's `NormalizeReward` (the return itself is reset where an episode ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    /// Running statistics of the discounted return.
    pub stats: RunningMeanStd,
    /// Discounted return so far, per env.
    pub returns: Vec<f64>,
    /// Discount of the return.
    pub gamma: f64,
    /// Scaled rewards are clipped to ±clip.
    pub clip: f32,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

impl RewardScaler {
    /// One discounted-return accumulator per environment.
    pub fn new(num_envs: usize, gamma: f64, clip: f32) -> Self {
        RewardScaler {
            stats: RunningMeanStd::new(1),
            returns: vec![0.0; num_envs],
            gamma,
            clip,
            epsilon: 1e-8,
        }
    }

    /// Scales one step's rewards in place; `done[i]` resets env i's return after this step.
    pub fn scale(&mut self, rewards: &mut [f32], done: &[bool]) {
        debug_assert_eq!(rewards.len(), self.returns.len());
        for (ret, &r) in self.returns.iter_mut().zip(rewards.iter()) {
            *ret = *ret * self.gamma + f64::from(r);
        }
        let batch: Vec<f32> = self.returns.iter().map(|&r| r as f32).collect();
        self.stats.update(&batch);
        let std = (self.stats.var[0] + self.epsilon).sqrt();
        for r in rewards.iter_mut() {
            *r = ((f64::from(*r) / std) as f32).clamp(-self.clip, self.clip);
        }
        for (ret, &d) in self.returns.iter_mut().zip(done) {
            if d {
                *ret = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batched_updates_equal_one_big_update(
            rows in prop::collection::vec(prop::collection::vec(-100.0f32..100.0, 3), 2..60),
            split in 1usize..59,
        ) {
            let flat: Vec<f32> = rows.iter().flatten().copied().collect();
            let split = split.min(rows.len() - 1) * 3;
            let mut whole = RunningMeanStd::new(3);
            whole.update(&flat);
            let mut parts = RunningMeanStd::new(3);
            parts.update(&flat[..split]);
            parts.update(&flat[split..]);
            for j in 0..3 {
                prop_assert!((whole.mean[j] - parts.mean[j]).abs() < 1e-6 * (1.0 + whole.mean[j].abs()));
                prop_assert!((whole.var[j] - parts.var[j]).abs() < 1e-6 * (1.0 + whole.var[j]));
            }
        }
    }

    #[test]
    fn matches_the_sample_moments() {
        let data = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let mut s = RunningMeanStd::new(2);
        s.update(&data);
        // The 1e-4 pseudo-count pulls the mean towards 0 by a relative 2.5e-5.
        assert!((s.mean[0] - 2.5).abs() < 1e-3 && (s.mean[1] - 25.0).abs() < 1e-2);
        assert!((s.var[0] - 1.25).abs() < 1e-3 && (s.var[1] - 125.0).abs() < 1e-1);
    }

    #[test]
    fn applying_keeps_the_statistics_and_clips() {
        let mut n = ObsNormalizer::new(1, 5.0);
        let mut batch = vec![0.0, 2.0, 4.0];
        n.normalize(&mut batch);
        let before = n.stats.clone();
        let mut outlier = vec![1e6];
        n.apply(&mut outlier);
        assert_eq!(n.stats, before);
        assert_eq!(outlier, vec![5.0]);
    }

    #[test]
    fn reward_return_resets_at_episode_end() {
        let mut r = RewardScaler::new(2, 0.9, 10.0);
        r.scale(&mut [1.0, 1.0], &[true, false]);
        assert_eq!(r.returns, vec![0.0, 1.0]);
        r.scale(&mut [1.0, 1.0], &[false, false]);
        assert_eq!(r.returns, vec![1.0, 1.9]);
    }
}
