//! `[imitation]`: how `wormnet imitate` gathers demonstrations and clones them.

use serde::{Deserialize, Serialize};

/// The knobs of behavioural cloning with DAgger-style data rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImitationConfig {
    /// `wormnet train` first clones the expert into `RUN/imitation` (a run directory of its
    /// own) and starts PPO from that policy; the run's wall time includes the cloning.
    pub before_ppo: bool,
    /// Data rounds. The expert drives the first; the policy cloned so far drives the rest
    /// (DAgger), so the data covers the states the policy itself gets into. The expert labels
    /// every step of every round.
    pub rounds: usize,
    /// Episodes per round, on the training tracks, run side by side.
    pub episodes: usize,
    /// Std of the noise added to whatever drives (expert or policy) before the env sees it, so
    /// the data shows recoveries from drifting off the line. Labels stay the expert's.
    pub action_noise: f32,
    /// Per-step correlation of that noise (an Ornstein–Uhlenbeck process: 0 is white noise;
    /// near 1 it pushes the same way for many steps, as a real drift does).
    pub noise_correlation: f32,
    /// Passes over all data gathered so far, after each round.
    pub epochs: usize,
    /// Steps per training sequence (backpropagation through time from the zero state).
    pub sequence_length: usize,
    /// First steps of a sequence that only warm the state up (not scored), except for
    /// sequences that start at an episode's start, where the zero state is the true one.
    pub burn_in: usize,
    /// Sequences per gradient step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Gradients are scaled to at most this global norm.
    pub max_grad_norm: f64,
}

impl Default for ImitationConfig {
    fn default() -> Self {
        ImitationConfig {
            before_ppo: false,
            rounds: 4,
            episodes: 16,
            action_noise: 0.3,
            noise_correlation: 0.9,
            epochs: 8,
            sequence_length: 32,
            burn_in: 8,
            batch_size: 16,
            learning_rate: 1e-3,
            max_grad_norm: 1.0,
        }
    }
}

impl ImitationConfig {
    /// The first field that cannot work, as `(field, why)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let at_least_one = [
            ("rounds", self.rounds),
            ("episodes", self.episodes),
            ("epochs", self.epochs),
            ("sequence_length", self.sequence_length),
            ("batch_size", self.batch_size),
        ];
        if let Some((field, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err((field, "must be at least 1".into()));
        }
        if self.burn_in >= self.sequence_length {
            return Err((
                "burn_in",
                format!(
                    "must be below sequence_length ({}), got {}",
                    self.sequence_length, self.burn_in
                ),
            ));
        }
        if !(self.action_noise >= 0.0 && self.action_noise.is_finite()) {
            return Err((
                "action_noise",
                format!("must be >= 0, got {}", self.action_noise),
            ));
        }
        if !(0.0..1.0).contains(&self.noise_correlation) {
            return Err((
                "noise_correlation",
                format!("must be in [0, 1), got {}", self.noise_correlation),
            ));
        }
        for (field, v) in [
            ("learning_rate", self.learning_rate),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err((field, format!("must be positive, got {v}")));
            }
        }
        Ok(())
    }
}
