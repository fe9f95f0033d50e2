//! PPO hyper-parameters as one struct, CleanRL-style: every implementation detail is a switch
//! with the reference default, so a config file shows exactly what a run did.

use serde::{Deserialize, Serialize};

/// Every PPO knob. Defaults follow CleanRL's `ppo.py` / the "37 details" reference, except where
/// the recurrent setting needs otherwise (noted per field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Environment steps per env per rollout (M); a rollout holds `num_envs × steps_per_rollout`.
    pub steps_per_rollout: usize,
    /// Optimisation epochs over each rollout (K).
    pub epochs: usize,
    /// Minibatches per epoch; each is a set of whole environments (recurrent replay), so
    /// `num_envs` must be divisible by it.
    pub minibatches: usize,
    /// Adam learning rate at the start.
    pub learning_rate: f64,
    /// Decay the learning rate linearly to 0 over the run (detail C4).
    pub anneal_lr: bool,
    /// Adam epsilon (detail C3: 1e-5, not PyTorch's 1e-8).
    pub adam_eps: f64,
    /// Discount factor γ.
    pub gamma: f32,
    /// GAE λ.
    pub gae_lambda: f32,
    /// Normalise advantages per minibatch (detail C7).
    pub norm_adv: bool,
    /// Surrogate clipping ε (detail C8).
    pub clip_coef: f64,
    /// Clip the value loss around the old values with ε (detail C9).
    pub clip_vloss: bool,
    /// Entropy bonus coefficient (detail C10).
    pub ent_coef: f64,
    /// Value loss coefficient (detail C10).
    pub vf_coef: f64,
    /// Global gradient-norm clip (detail C11).
    pub max_grad_norm: f64,
    /// Stop an update's epochs early once approx-KL exceeds this (off when absent).
    pub target_kl: Option<f64>,
    /// Running observation normalisation (detail R6), clipped to ±`obs_clip` (R7).
    pub norm_obs: bool,
    /// Normalised observations are clipped to ±this.
    pub obs_clip: f32,
    /// Reward scaling by the discounted return's std (R8), clipped to ±`reward_clip` (R9).
    pub norm_reward: bool,
    /// Scaled rewards are clipped to ±this.
    pub reward_clip: f32,
    /// Bootstrap time-limit truncations from V(final observation) (not CleanRL's default, which
    /// treats truncation as termination; Gymnasium and SB3 recommend bootstrapping).
    pub bootstrap_truncated: bool,
    /// Retired: never read, the initial log-std of Box actions is `policy.log_std_init`. Kept
    /// only to say so; a run recorded by an older wormnet has it (`TrainConfig::forget_retired`).
    #[serde(skip_serializing)]
    pub log_std_init: Option<toml::Value>,
    /// On the CPU, compute the grad norm, the ratio statistics, a categorical policy's loss
    /// and Adam's step as host loops (fast; the same to float rounding, see `ppo::host`).
    /// `false` computes every loss, statistic and norm with libtorch's operations: the plain
    /// path, for bisecting a suspected difference.
    pub host_loops: bool,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            steps_per_rollout: 128,
            epochs: 4,
            minibatches: 4,
            learning_rate: 2.5e-4,
            anneal_lr: true,
            adam_eps: 1e-5,
            gamma: 0.99,
            gae_lambda: 0.95,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            norm_obs: true,
            obs_clip: 10.0,
            norm_reward: true,
            reward_clip: 10.0,
            bootstrap_truncated: true,
            log_std_init: None,
            host_loops: true,
        }
    }
}

/// A config value that cannot work, named by its TOML path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("ppo.{field}: {message}")]
pub struct PpoConfigError {
    /// The field under `ppo.`.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl PpoConfig {
    /// Checks the values against each other and against the number of envs.
    pub fn validate(&self, num_envs: usize) -> Result<(), PpoConfigError> {
        let err = |field, message: String| Err(PpoConfigError { field, message });
        if self.steps_per_rollout == 0 {
            return err("steps_per_rollout", "must be at least 1".into());
        }
        if self.epochs == 0 {
            return err("epochs", "must be at least 1".into());
        }
        if self.minibatches == 0 || !num_envs.is_multiple_of(self.minibatches) {
            return err(
                "minibatches",
                format!(
                    "must divide env.num_envs = {num_envs} (minibatches are whole environments), got {}",
                    self.minibatches
                ),
            );
        }
        if !positive(self.learning_rate) {
            return err(
                "learning_rate",
                format!("must be > 0, got {}", self.learning_rate),
            );
        }
        for (field, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return err(field, format!("must lie in [0, 1], got {v}"));
            }
        }
        if !positive(self.clip_coef) {
            return err("clip_coef", format!("must be > 0, got {}", self.clip_coef));
        }
        for (field, v) in [
            ("max_grad_norm", self.max_grad_norm),
            ("adam_eps", self.adam_eps),
            ("obs_clip", f64::from(self.obs_clip)),
            ("reward_clip", f64::from(self.reward_clip)),
        ] {
            if !positive(v) {
                return err(field, format!("must be > 0 and finite, got {v}"));
            }
        }
        for (field, v) in [("ent_coef", self.ent_coef), ("vf_coef", self.vf_coef)] {
            if !(v >= 0.0 && v.is_finite()) {
                return err(field, format!("must be >= 0 and finite, got {v}"));
            }
        }
        if let Some(kl) = self.target_kl.filter(|&kl| !positive(kl)) {
            return err("target_kl", format!("must be > 0 and finite, got {kl}"));
        }
        if self.log_std_init.is_some() {
            return err(
                "log_std_init",
                "is not read: the initial log-std of Box actions is policy.log_std_init; move \
                 it there"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A finite value above zero (NaN is not).
fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_ill_typed_fields_are_named() {
        let e = toml::from_str::<PpoConfig>("epochz = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochz"), "{e}");
        let e = toml::from_str::<PpoConfig>("epochs = \"four\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochs"), "{e}");
    }

    #[test]
    fn minibatches_must_split_whole_envs() {
        let c = PpoConfig {
            minibatches: 3,
            ..PpoConfig::default()
        };
        let e = c.validate(8).unwrap_err();
        assert_eq!(e.field, "minibatches");
        assert!(c.validate(9).is_ok());
    }
}
