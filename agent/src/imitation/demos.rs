//! Demonstrations: episodes driven by the expert or by the policy (DAgger), with correlated
//! noise on what the env receives, every step labelled with the env's expert action.

use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use wormnet_sim::noise::standard_normal;
use wormnet_sim::{EnvFactory, EpisodeDriver};

use crate::config::ImitationConfig;
use crate::policy::Policy;

/// One labelled episode: what the env showed and what the expert would have done.
#[derive(Clone, Debug, Default)]
pub struct Demo {
    /// Raw observations, one row of `obs_dim` per step.
    pub observations: Vec<f32>,
    /// The expert's env action for each observation, one row of `action_dim` per step.
    pub labels: Vec<f32>,
    /// Steps.
    pub len: usize,
    /// Whether the episode ended in failure (`terminated`).
    pub failed: bool,
}

/// Runs `config.episodes` episodes side by side on envs of `factory`, seeded from `seed`.
/// `driver` None: the expert drives; Some: the policy drives (deterministically). Either way
/// the env receives the driver's action plus the round's noise, clipped to the action space.
/// The env must have continuous actions and an expert ([`super::check_env`]).
pub fn collect(
    factory: &EnvFactory,
    driver: Option<&Policy>,
    config: &ImitationConfig,
    seed: u64,
) -> Result<Vec<Demo>> {
    let n = config.episodes;
    let mut envs = Vec::with_capacity(n);
    for i in 0..n {
        envs.push(EpisodeDriver::new(factory.build()?, i));
    }
    let spec = envs[0].spec().clone();
    let (obs_dim, action_dim) = (spec.obs_dim(), spec.action_dim());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut obs = vec![0.0f32; n * obs_dim];
    for (i, env) in envs.iter_mut().enumerate() {
        env.reset(
            Some(seed.wrapping_add(i as u64)),
            &mut obs[i * obs_dim..(i + 1) * obs_dim],
        )?;
    }
    let mut demos = vec![Demo::default(); n];
    let mut running = vec![true; n];
    let mut noise = vec![0.0f32; n * action_dim];
    let mut driven = vec![0.0f32; n * action_dim];
    let mut label = vec![0.0f32; action_dim];
    let mut state = driver.map(|p| p.initial_state(n as i64));
    let keep = config.noise_correlation;
    let fresh = (1.0 - keep * keep).sqrt() * config.action_noise;
    while running.iter().any(|&r| r) {
        if let (Some(policy), Some(s)) = (driver, state.as_mut()) {
            let mut input = obs.clone();
            policy.normalize(&mut input);
            let x = Tensor::from_slice(&input)
                .reshape([n as i64, obs_dim as i64])
                .to_device(policy.device());
            let act = policy.act(&x, s, true);
            policy.env_actions(&act.action, &mut driven);
            *s = act.state;
        }
        for (i, env) in envs.iter_mut().enumerate() {
            if !running[i] {
                continue;
            }
            if !env.env().expert_action(&mut label) {
                bail!("env `{}` gave no expert action mid-episode", spec.name);
            }
            let row = i * action_dim..(i + 1) * action_dim;
            if driver.is_none() {
                driven[row.clone()].copy_from_slice(&label);
            }
            for j in row.clone() {
                noise[j] = keep * noise[j] + fresh * standard_normal(&mut rng) as f32;
                driven[j] += noise[j];
            }
            spec.action_space.clip(&mut driven[row.clone()]);
            let demo = &mut demos[i];
            let o = &mut obs[i * obs_dim..(i + 1) * obs_dim];
            demo.observations.extend_from_slice(o);
            demo.labels.extend_from_slice(&label);
            demo.len += 1;
            let transition = env.step(&driven[row], o)?;
            if transition.step.done() {
                running[i] = false;
                demo.failed = transition.step.terminated;
            }
        }
    }
    Ok(demos)
}
