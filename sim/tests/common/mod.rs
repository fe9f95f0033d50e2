//! A small plain-Rust env with seeded episode lengths and switchable faults, shared by the
//! VecEnv tests.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use wormnet_sim::{parse_options, Env, EnvFactory, EnvSpec, Frame, Space, Step};

pub const BASE_SEED: u64 = 1000;

/// What goes wrong, and in which env: the env whose reset seed is `BASE_SEED + fault_env`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalkOptions {
    pub time_limit: Option<u32>,
    pub max_length: u32,
    pub clip: bool,
    pub fault_env: Option<u64>,
    pub panic_at: Option<u32>,
    pub nan_obs_at: Option<u32>,
    pub nan_reward_at: Option<u32>,
    pub hang_at: Option<u32>,
}

/// obs = [position, steps in episode, episode number, last applied action];
/// terminates after a seeded random number of steps in 1..=max_length.
pub struct Walk {
    spec: EnvSpec,
    options: WalkOptions,
    rng: ChaCha8Rng,
    seed: Option<u64>,
    position: f32,
    steps: u32,
    episode: u32,
    length: u32,
    last_action: f32,
    live: Option<Arc<AtomicUsize>>,
}

impl Drop for Walk {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Walk {
    pub fn new(options: WalkOptions, live: Option<Arc<AtomicUsize>>) -> Walk {
        if let Some(live) = &live {
            live.fetch_add(1, Ordering::SeqCst);
        }
        let spec = EnvSpec {
            name: "walk".into(),
            observation_space: Space::Box {
                low: vec![f32::NEG_INFINITY; 4],
                high: vec![f32::INFINITY; 4],
            },
            action_space: Space::uniform(1, -1.0, 1.0).unwrap(),
            dt: 0.1,
            max_episode_steps: options.time_limit,
            observation_names: ["position", "steps", "episode", "applied"]
                .into_iter()
                .map(String::from)
                .collect(),
            action_names: vec!["velocity".into()],
            clip_actions: options.clip,
            survival_is_success: false,
            image: None,
        };
        Walk {
            spec,
            options,
            rng: ChaCha8Rng::seed_from_u64(0),
            seed: None,
            position: 0.0,
            steps: 0,
            episode: 0,
            length: 1,
            last_action: 0.0,
            live,
        }
    }

    fn faulty(&self) -> bool {
        self.options
            .fault_env
            .is_some_and(|i| self.seed == Some(BASE_SEED + i))
    }

    fn observe(&self, obs: &mut [f32]) {
        obs.copy_from_slice(&[
            self.position,
            self.steps as f32,
            self.episode as f32,
            self.last_action,
        ]);
    }
}

impl Env for Walk {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
            self.seed = Some(seed);
            self.episode = 0;
        } else {
            self.episode += 1;
        }
        self.position = self.rng.random_range(-1.0..1.0);
        self.length = self.rng.random_range(1..=self.options.max_length.max(1));
        self.steps = 0;
        self.last_action = 0.0;
        self.observe(obs);
    }

    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step {
        self.steps += 1;
        self.position += action[0];
        self.last_action = action[0];
        let faulty = self.faulty();
        if faulty && self.options.hang_at == Some(self.steps) {
            // Stuck for good (the test process exits long before).
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        if faulty && self.options.panic_at == Some(self.steps) {
            panic!("walk exploded at step {}", self.steps);
        }
        self.observe(obs);
        if faulty && self.options.nan_obs_at == Some(self.steps) {
            obs[0] = f32::NAN;
        }
        let mut reward = action[0] + 0.5 * self.position;
        if faulty && self.options.nan_reward_at == Some(self.steps) {
            reward = f32::INFINITY;
        }
        Step {
            reward,
            terminated: self.steps >= self.length,
            truncated: false,
        }
    }

    fn frame(&self) -> Frame {
        Frame::default()
    }
}

pub fn factory(options_toml: &str) -> EnvFactory {
    let options: toml::Table = toml::from_str(options_toml).unwrap();
    EnvFactory::new("walk", options, |o| {
        Ok(Box::new(Walk::new(parse_options("walk", o)?, None)))
    })
}

pub fn counted_factory(options_toml: &str, live: Arc<AtomicUsize>) -> EnvFactory {
    let options: toml::Table = toml::from_str(options_toml).unwrap();
    EnvFactory::new("walk", options, move |o| {
        Ok(Box::new(Walk::new(
            parse_options("walk", o)?,
            Some(live.clone()),
        )))
    })
}

/// Runs `f` on another thread and fails the test if it takes longer than `secs`: proves "no hang".
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("operation hung (no answer within the timeout)")
}
