//! Judging a policy: whole episodes on fresh envs with the normaliser frozen, as mean ± std
//! return and success rate — what `wormnet eval` prints and what picks a run's `best`.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;
use wormnet_sim::noise::standard_normal;
use wormnet_sim::{EnvFactory, VecEnv, VecEnvConfig};

use crate::config::TrainConfig;
use crate::policy::Policy;
use crate::seeds::{derive_seed, EVAL_STREAM, NOISE_STREAM};

/// Mean ± std return and success rate over evaluation episodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Mean undiscounted return.
    pub mean_return: f64,
    /// Standard deviation of the return over episodes.
    pub std_return: f64,
    /// Fraction of episodes that succeeded, for envs that define success: a goal task's own
    /// judgement ([`Env::success`], the mountain car at its flag) or survival to the time limit
    /// ([`EnvSpec::survival_is_success`]); None elsewhere.
    ///
    /// [`EnvSpec::survival_is_success`]: wormnet_sim::EnvSpec::survival_is_success
    /// [`Env::success`]: wormnet_sim::Env::success
    pub success_rate: Option<f64>,
    /// Mean episode length in steps.
    pub mean_length: f64,
    /// Episodes run.
    pub episodes: usize,
}

/// How to run evaluation episodes.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Episodes to run in all.
    pub episodes: usize,
    /// Act with the distribution's mode instead of sampling.
    pub deterministic: bool,
    /// Standard deviation of Gaussian noise added to raw observations (robustness).
    pub obs_noise: f32,
    /// Seed of the envs (and, derived from it, of the noise).
    pub seed: u64,
    /// Envs stepped side by side.
    pub num_envs: usize,
}

impl EvalOptions {
    /// The evaluations a run makes as it trains (or clones): `run.eval_episodes` on the eval
    /// envs from the run's evaluation seed, so every evaluation of a run sees the same episodes.
    pub fn during_training(config: &TrainConfig) -> EvalOptions {
        let run = &config.run;
        EvalOptions {
            episodes: run.eval_episodes,
            deterministic: run.eval_deterministic,
            obs_noise: 0.0,
            seed: derive_seed(run.seed, EVAL_STREAM),
            num_envs: config.env.num_envs,
        }
    }
}

/// Runs `options.episodes` whole episodes with the policy's normaliser frozen and returns their
/// summary. Episodes are spread evenly over the envs so short episodes are not over-represented.
pub fn evaluate(
    policy: &Policy,
    factory: EnvFactory,
    options: &EvalOptions,
) -> Result<EvalSummary> {
    let n = options.num_envs.clamp(1, options.episodes.max(1));
    let mut venv = VecEnv::new(factory, VecEnvConfig::new(n, 1))?;
    let mut defines_success = venv.spec().survival_is_success;
    let obs_dim = venv.obs_dim();
    let mut quota: Vec<usize> = (0..n)
        .map(|i| options.episodes / n + usize::from(i < options.episodes % n))
        .collect();
    let mut noise_rng = ChaCha8Rng::seed_from_u64(derive_seed(options.seed, NOISE_STREAM));
    let mut obs = venv.reset(Some(options.seed))?.to_vec();
    let mut state = policy.initial_state(n as i64);
    let mut returns = Vec::new();
    let mut lengths = Vec::new();
    let mut successes = 0usize;
    let mut actions = vec![0.0f32; n * policy.action_dim()];
    let device = policy.device();
    while quota.iter().any(|&q| q > 0) {
        if options.obs_noise > 0.0 {
            for x in obs.iter_mut() {
                *x += standard_normal(&mut noise_rng) as f32 * options.obs_noise;
            }
        }
        let mut input = obs.clone();
        policy.normalize(&mut input);
        let x = Tensor::from_slice(&input)
            .reshape([n as i64, obs_dim as i64])
            .to_device(device);
        let act = policy.act(&x, &state, options.deterministic);
        policy.env_actions(&act.action, &mut actions);
        let view = venv.step(&actions)?;
        for ep in view.episodes {
            if quota[ep.env_index] > 0 {
                quota[ep.env_index] -= 1;
                returns.push(ep.episode_return);
                lengths.push(f64::from(ep.length));
                defines_success |= ep.success.is_some();
                successes += usize::from(ep.success == Some(true));
            }
        }
        let done: Vec<bool> = (0..n).map(|i| view.done(i)).collect();
        obs.copy_from_slice(view.obs);
        state = act
            .state
            .reset(&Tensor::from_slice(&done).to_device(device));
    }
    let count = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / count;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / count;
    Ok(EvalSummary {
        mean_return: mean,
        std_return: var.sqrt(),
        success_rate: defines_success.then(|| successes as f64 / count),
        mean_length: lengths.iter().sum::<f64>() / count,
        episodes: returns.len(),
    })
}
