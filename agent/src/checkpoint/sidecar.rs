//! The JSON sidecar of a checkpoint: what it records besides the tensors.

use serde::{Deserialize, Serialize};
use wormnet_sim::EnvSpec;

use crate::config::TrainConfig;
use crate::eval::EvalSummary;
use crate::policy::{ObsNormalizer, RewardScaler};

/// Version of the sidecar layout.
pub const FORMAT: u32 = 1;

/// What a checkpoint's JSON sidecar records besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// The safetensors file (in the same directory) holding policy and optimizer tensors.
    pub tensors: String,
    /// CRC-32C of that file, checked on load (absent in checkpoints from before it existed).
    #[serde(default)]
    pub tensors_crc32c: Option<u32>,
    /// Updates completed.
    pub update: usize,
    /// Environment steps completed.
    pub global_step: u64,
    /// Best evaluation mean return so far.
    pub best_eval: Option<f64>,
    /// Wall-clock seconds the run had spent up to this checkpoint, over all its sessions
    /// (0 in checkpoints from before it was recorded).
    #[serde(default)]
    pub wall_seconds: f64,
    /// Adam's step counter (the moments are in the tensors file).
    pub adam_step: i64,
    /// The policy's observation normaliser.
    pub obs_norm: Option<ObsNormalizer>,
    /// The trainer's reward scaler.
    pub reward_scaler: Option<RewardScaler>,
    /// The evaluation that made this checkpoint `best`, if any.
    pub eval: Option<EvalSummary>,
    /// The resolved config of the run.
    pub config: TrainConfig,
    /// The env the policy was trained on: rebuilds the policy without building the env, and
    /// names its sensory and motor neurons.
    pub env_spec: EnvSpec,
}
