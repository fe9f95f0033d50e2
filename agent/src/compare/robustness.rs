//! The robustness figure of the NCP paper, for our tasks: each run's best policy evaluated
//! under growing Gaussian observation noise.

use std::path::Path;

use anyhow::{Context, Result};
use tch::Device;
use wormnet_sim::Registry;

use crate::checkpoint::load_checkpoint;
use crate::eval::{evaluate, EvalOptions};
use crate::seeds::{derive_seed, ACTION_STREAM};

/// Seed of the evaluation envs (and the noise drawn from it): the same for every run and σ,
/// so every policy faces the same episodes and the same noise (as `wormnet eval`'s default).
pub const EVAL_SEED: u64 = 12345;

/// Success rate (where the env defines success, else mean return) of the run's best policy
/// under each observation-noise σ, over `episodes` evaluation episodes (None: the run's
/// `eval_episodes`), acting as the run evaluates (`eval_deterministic`). The flag says
/// whether the values are success rates.
pub fn noise_sweep(
    run_dir: &Path,
    sigmas: &[f32],
    episodes: Option<usize>,
    registry: &Registry,
) -> Result<(bool, Vec<(f32, f64)>)> {
    let loaded = load_checkpoint(run_dir, Device::Cpu)?;
    let config = &loaded.sidecar.config;
    let mut success = loaded.sidecar.env_spec.survival_is_success;
    let mut out = Vec::with_capacity(sigmas.len());
    for &sigma in sigmas {
        let factory = registry
            .factory(&config.env.name, config.eval_env_options())
            .with_context(|| format!("{}: its [env] section", loaded.path.display()))?;
        tch::manual_seed(derive_seed(EVAL_SEED, ACTION_STREAM) as i64);
        let summary = evaluate(
            &loaded.policy,
            factory,
            &EvalOptions {
                episodes: episodes.unwrap_or(config.run.eval_episodes),
                deterministic: config.run.eval_deterministic,
                obs_noise: sigma,
                seed: EVAL_SEED,
                num_envs: config.env.num_envs,
            },
        )?;
        success |= summary.success_rate.is_some();
        out.push((sigma, summary.success_rate.unwrap_or(summary.mean_return)));
    }
    Ok((success, out))
}
