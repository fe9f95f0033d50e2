//! Environment throughput with random actions: the `wormnet bench env` figure, kept here so
//! any tool (CLI, tests, a criterion bench) measures the same loop.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::registry::EnvFactory;
use crate::vec_env::{VecEnv, VecEnvConfig, VecEnvError};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Envs and workers (and spin) of the VecEnv under test.
    pub vec_env: VecEnvConfig,
    /// How long to measure (after a short warm-up).
    pub duration: Duration,
    /// Seed for the envs and the random actions.
    pub seed: u64,
}

/// The measured figure, printed as JSON by `wormnet bench env --json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Env name.
    pub env: String,
    /// N.
    pub envs: usize,
    /// W.
    pub workers: usize,
    /// Simulated seconds per env step, so envs that act at different rates compare fairly.
    pub dt: f32,
    /// Env steps (N per VecEnv step) per wall-clock second.
    pub steps_per_sec: f64,
    /// Env steps measured.
    pub steps: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Episodes that finished while measuring.
    pub episodes: u64,
}

/// Steps a VecEnv with uniformly random actions for `config.duration` and reports env steps/s.
pub fn bench_env(factory: EnvFactory, config: &BenchConfig) -> Result<BenchReport, VecEnvError> {
    let mut envs = VecEnv::new(factory, config.vec_env.clone())?;
    let n = envs.num_envs();
    let ad = envs.action_dim();
    let space = envs.spec().action_space.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut actions = vec![0.0f32; n * ad];
    envs.reset(Some(config.seed))?;
    let sample = |actions: &mut [f32], rng: &mut ChaCha8Rng| {
        for row in actions.chunks_mut(ad.max(1)) {
            space.sample(rng, row);
        }
    };
    for _ in 0..200 {
        sample(&mut actions, &mut rng);
        envs.step(&actions)?;
    }
    let mut vec_steps = 0u64;
    let mut episodes = 0u64;
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            sample(&mut actions, &mut rng);
            episodes += envs.step(&actions)?.episodes.len() as u64;
        }
        vec_steps += 64;
        if start.elapsed() >= config.duration {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let steps = vec_steps * n as u64;
    Ok(BenchReport {
        env: envs.spec().name.clone(),
        envs: n,
        workers: envs.num_workers(),
        dt: envs.spec().dt,
        steps_per_sec: steps as f64 / seconds,
        steps,
        seconds,
        episodes,
    })
}
