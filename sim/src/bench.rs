//! Environment throughput with random actions: the `wormnet bench env` figure, kept here so
//! any tool (CLI, tests, a criterion bench) measures the same loop.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::env::EnvSpec;
use crate::registry::EnvFactory;
use crate::vec_env::{build_drivers, VecEnv, VecEnvConfig, VecEnvError};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Envs and workers (and spin) of the VecEnv under test; 0 workers: no VecEnv, the envs
    /// step on the calling thread.
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
    /// W (0: stepped on the calling thread).
    pub workers: usize,
    /// The most envs sharing one Bevy `App`: K, at most a worker's share (always 1 for envs
    /// that are not Bevy envs).
    pub envs_per_app: usize,
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
/// With 0 workers the envs are stepped on the calling thread instead ([`bench_inline`]).
pub fn bench_env(factory: EnvFactory, config: &BenchConfig) -> Result<BenchReport, VecEnvError> {
    if config.vec_env.workers == 0 {
        return bench_inline(factory, config);
    }
    let mut envs = VecEnv::new(factory, config.vec_env.clone())?;
    let n = envs.num_envs();
    let ad = envs.action_dim();
    let space = envs.spec().action_space.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut actions = vec![0.0f32; n * ad];
    envs.reset(Some(config.seed))?;
    let measured = measure(config.duration, || {
        for row in actions.chunks_mut(ad.max(1)) {
            space.sample(&mut rng, row);
        }
        Ok(envs.step(&actions)?.episodes.len() as u64)
    })?;
    Ok(BenchReport::new(
        envs.spec(),
        (n, envs.num_workers(), envs.envs_per_app()),
        measured,
    ))
}

/// Steps `num_envs` envs one after another on the calling thread, with no VecEnv and no other
/// thread: env steps per second of one core, as a Gym env's step loop measures them. (Through
/// a VecEnv the caller's thread polls for the workers' replies on a core of its own.)
pub fn bench_inline(factory: EnvFactory, config: &BenchConfig) -> Result<BenchReport, VecEnvError> {
    let n = config.vec_env.num_envs;
    if n == 0 {
        return Err(VecEnvError::Config {
            env: factory.name().to_string(),
            num_envs: 0,
            workers: 0,
        });
    }
    // All N on this thread: groups of K, at most N.
    let per_app = if factory.shares_apps() {
        config.vec_env.envs_per_app.clamp(1, n)
    } else {
        1
    };
    let mut drivers = build_drivers(&factory, 0..n, per_app)?;
    let spec = drivers[0].spec().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (mut obs, mut final_obs) = (vec![0.0f32; spec.obs_dim()], vec![0.0f32; spec.obs_dim()]);
    let mut action = vec![0.0f32; spec.action_dim()];
    let fault = |f| VecEnvError::Faults(vec![f]);
    for (i, driver) in drivers.iter_mut().enumerate() {
        driver
            .reset(Some(config.seed.wrapping_add(i as u64)), &mut obs)
            .map_err(fault)?;
    }
    let measured = measure(config.duration, || {
        let mut episodes = 0;
        for driver in &mut drivers {
            spec.action_space.sample(&mut rng, &mut action);
            let t = driver
                .step_autoreset(&action, &mut obs, &mut final_obs)
                .map_err(fault)?;
            episodes += u64::from(t.episode.is_some());
        }
        Ok(episodes)
    })?;
    Ok(BenchReport::new(&spec, (n, 0, per_app), measured))
}

impl BenchReport {
    /// The report of `envs` envs of `spec` on `workers` workers, `envs_per_app` to a Bevy `App`,
    /// from what [`measure`] counted.
    fn new(
        spec: &EnvSpec,
        (envs, workers, envs_per_app): (usize, usize, usize),
        (rounds, episodes, seconds): Measured,
    ) -> Self {
        let steps = rounds * envs as u64;
        BenchReport {
            env: spec.name.clone(),
            envs,
            workers,
            envs_per_app,
            dt: spec.dt,
            steps_per_sec: steps as f64 / seconds,
            steps,
            seconds,
            episodes,
        }
    }
}

/// (rounds, episodes, seconds) measured.
type Measured = (u64, u64, f64);

/// Runs `round` (one step of every env, returning the episodes it finished) 200 times to warm
/// up, then in blocks of 64 until `duration` has passed: (rounds, episodes, seconds) measured.
fn measure(
    duration: Duration,
    mut round: impl FnMut() -> Result<u64, VecEnvError>,
) -> Result<Measured, VecEnvError> {
    for _ in 0..200 {
        round()?;
    }
    let (mut rounds, mut episodes) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            episodes += round()?;
        }
        rounds += 64;
        if start.elapsed() >= duration {
            break;
        }
    }
    Ok((rounds, episodes, start.elapsed().as_secs_f64()))
}
