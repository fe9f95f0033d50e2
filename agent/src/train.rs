//! `wormnet train`: the PPO loop for recurrent NCP policies, with run directories that survive
//! anything — metrics flushed every update, checkpoints written atomically, Ctrl-C saving.
//!
//! Reproducibility rule: every random stream (libtorch sampling, minibatch shuffling, env
//! seeds) is derived from `(run.seed, update index)`, and envs are re-seeded at every checkpoint
//! boundary. A run resumed from a periodic checkpoint therefore continues exactly as the
//! uninterrupted run would have. The price: episodes in flight at a checkpoint boundary are cut
//! there and bootstrapped like a time-limit truncation.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};
use wormnet_sim::{EnvFactory, EnvSpec, Registry, VecEnv, VecEnvConfig};

use crate::checkpoint::{self, CheckpointError};
use crate::config::TrainConfig;
use crate::metrics::{MetricsWriter, Scalars};
use crate::normalize::{ObsNormalizer, RewardScaler};
use crate::policy::{Policy, PolicyState};
use crate::ppo::adam::{clip_grad_norm, Adam};
use crate::ppo::gae::{gae, GaeInput};

/// Every metric a run logs, in CSV column order (CleanRL's names where CleanRL has one).
pub const METRICS: &[&str] = &[
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/SPS",
    "charts/learning_rate",
    "eval/mean_return",
    "eval/success_rate",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/old_approx_kl",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "losses/grad_norm",
    "perf/rollout_seconds",
    "perf/update_seconds",
];

/// Set by the Ctrl-C handler; checked between updates.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Version of the checkpoint sidecar layout.
const FORMAT: u32 = 1;

/// A well-mixed 64-bit value from a seed and a stream index (splitmix64), so each update gets
/// independent random streams that do not depend on what ran before it.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const ENV_STREAM: u64 = 1 << 40;
const SHUFFLE_STREAM: u64 = 2 << 40;
const EVAL_STREAM: u64 = 3 << 40;

/// Parses `cpu`, `cuda`, `cuda:N`, failing clearly when CUDA is asked for but absent.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    let cuda = |index: usize| -> Result<Device> {
        let _ = crate::runtime::load_cuda_backend();
        if !tch::Cuda::is_available() {
            bail!(
                "device `{name}` requested, but libtorch sees no CUDA device on this machine \
                 (`wormnet info` shows why); use --device cpu"
            );
        }
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            bail!("device `{name}` requested, but only {count} CUDA device(s) exist");
        }
        Ok(Device::Cuda(index))
    };
    match name.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("unknown device `{name}`: use cpu, cuda or cuda:N"),
        },
    }
}

/// What a checkpoint's JSON sidecar records besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: u32,
    /// The safetensors file (in the same directory) holding policy and optimizer tensors.
    pub tensors: String,
    /// Updates completed.
    pub update: usize,
    /// Environment steps completed.
    pub global_step: u64,
    /// Best evaluation mean return so far.
    pub best_eval: Option<f64>,
    /// Adam's step counter (the moments are in the tensors file).
    pub adam_step: i64,
    pub obs_norm: Option<ObsNormalizer>,
    pub reward_scaler: Option<RewardScaler>,
    /// The evaluation that made this checkpoint `best`, if any.
    pub eval: Option<EvalSummary>,
    /// The resolved config of the run.
    pub config: TrainConfig,
    /// The env the policy was trained on (names label neurons when auditing).
    pub env_spec: EnvSpec,
}

/// Mean ± std return and success rate over evaluation episodes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub mean_return: f64,
    pub std_return: f64,
    /// Fraction of episodes that succeeded: ended by the time limit rather than by failure
    /// (or by the env's own success signal where it has one).
    pub success_rate: f64,
    pub mean_length: f64,
    pub episodes: usize,
}

/// How to run evaluation episodes.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub episodes: usize,
    pub deterministic: bool,
    /// Standard deviation of Gaussian noise added to raw observations (robustness).
    pub obs_noise: f32,
    pub seed: u64,
    pub num_envs: usize,
}

/// Runs `options.episodes` whole episodes with a frozen normaliser and returns their summary.
/// Episodes are spread evenly over the envs so short episodes are not over-represented.
pub fn evaluate(
    policy: &Policy,
    obs_norm: Option<&ObsNormalizer>,
    factory: EnvFactory,
    options: &EvalOptions,
) -> Result<EvalSummary> {
    let n = options.num_envs.clamp(1, options.episodes.max(1));
    let mut venv = VecEnv::new(factory, VecEnvConfig::new(n, 1))?;
    let obs_dim = venv.obs_dim();
    let mut quota: Vec<usize> = (0..n)
        .map(|i| options.episodes / n + usize::from(i < options.episodes % n))
        .collect();
    let mut noise_rng = ChaCha8Rng::seed_from_u64(derive_seed(options.seed, 1));
    let normal = rand_distr_normal(options.obs_noise);
    let mut obs = venv.reset(Some(options.seed))?.to_vec();
    let mut state = policy.initial_state(n as i64);
    let mut returns = Vec::new();
    let mut lengths = Vec::new();
    let mut successes = 0usize;
    let mut actions = vec![0.0f32; n * policy.action_dim()];
    let device = policy.device();
    while quota.iter().any(|&q| q > 0) {
        if let Some(normal) = &normal {
            for x in obs.iter_mut() {
                *x += normal.sample(&mut noise_rng);
            }
        }
        let mut input = obs.clone();
        if let Some(norm) = obs_norm {
            norm.apply(&mut input);
        }
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
                successes += usize::from(!ep.terminated);
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
        success_rate: successes as f64 / count,
        mean_length: lengths.iter().sum::<f64>() / count,
        episodes: returns.len(),
    })
}

/// A Gaussian sampler for observation noise, or None when σ = 0.
fn rand_distr_normal(sigma: f32) -> Option<GaussianNoise> {
    (sigma > 0.0).then_some(GaussianNoise { sigma })
}

/// Box–Muller Gaussian noise (one sample per call), to keep the dependency list short.
struct GaussianNoise {
    sigma: f32,
}

impl GaussianNoise {
    fn sample(&self, rng: &mut ChaCha8Rng) -> f32 {
        use rand::Rng;
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32 * self.sigma
    }
}

/// Statistics of one PPO update, logged under CleanRL's names.
#[derive(Clone, Debug, Default)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub old_approx_kl: f64,
    pub approx_kl: f64,
    pub clipfrac: f64,
    pub explained_variance: f64,
    pub grad_norm: f64,
    /// max |ratio − 1| on the first minibatch of the first epoch: 0 up to float rounding when
    /// the replay reproduces the rollout exactly.
    pub first_ratio_deviation: f64,
    /// Wall time spent collecting the rollout and in the PPO epochs.
    pub rollout_seconds: f64,
    pub update_seconds: f64,
}

/// One rollout's storage; tensors are `(N, T, …)` once stacked.
struct RolloutBuffer {
    obs: Vec<Tensor>,
    starts: Vec<Tensor>,
    actions: Vec<Tensor>,
    /// The actor's neuron states after each step: the MLP critic's second input.
    actor_h: Vec<Tensor>,
    logp: Vec<Tensor>,
    values: Vec<Tensor>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_values: Vec<f32>,
}

impl RolloutBuffer {
    fn new(steps: usize, envs: usize) -> Self {
        RolloutBuffer {
            obs: Vec::with_capacity(steps),
            starts: Vec::with_capacity(steps),
            actions: Vec::with_capacity(steps),
            actor_h: Vec::with_capacity(steps),
            logp: Vec::with_capacity(steps),
            values: Vec::with_capacity(steps),
            rewards: Vec::with_capacity(steps * envs),
            terminated: Vec::with_capacity(steps * envs),
            truncated: Vec::with_capacity(steps * envs),
            final_values: Vec::with_capacity(steps * envs),
        }
    }
}

/// A training run in progress.
pub struct Trainer {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    pub policy: Policy,
    params: Vec<(String, Tensor)>,
    adam: Adam,
    obs_norm: Option<ObsNormalizer>,
    reward_scaler: Option<RewardScaler>,
    venv: VecEnv,
    eval_factory: EnvFactory,
    spec: EnvSpec,
    /// Updates completed.
    pub update: usize,
    /// Environment steps completed.
    pub global_step: u64,
    best_eval: Option<f64>,
    metrics: MetricsWriter,
    recent: VecDeque<(f64, u32)>,
    // Carried across updates inside a checkpoint segment.
    obs: Vec<f32>,
    state: PolicyState,
    starts: Vec<bool>,
    /// Whether the envs hold a segment in progress (false until the first `run`).
    in_segment: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All `total_steps` done.
    Finished,
    /// Ctrl-C: the latest checkpoint was saved.
    Interrupted,
    /// Stopped after `max_updates` (tests, benchmarks).
    UpdateLimit,
}

impl Trainer {
    /// Starts a new run in `run_dir` (created; must not hold a run already) on wormnet's envs.
    pub fn create(config: TrainConfig, run_dir: &Path) -> Result<Self> {
        Self::create_with_registry(config, run_dir, &wormnet_envs::registry())
    }

    /// Like [`Trainer::create`], with envs from `registry`: how a crate with its own envs
    /// trains them without touching the trainer.
    pub fn create_with_registry(
        config: TrainConfig,
        run_dir: &Path,
        registry: &Registry,
    ) -> Result<Self> {
        if run_dir.join("latest.json").exists() {
            bail!(
                "{} already holds a run; resume it with --resume {0} or choose another name",
                run_dir.display()
            );
        }
        // Everything that can be wrong with the config fails here, before a directory exists.
        parse_device(&config.run.device)?;
        for (what, options) in [
            ("[env] options", config.env.options.clone()),
            ("[env] eval_options", config.eval_env_options()),
        ] {
            registry
                .make(&config.env.name, &options)
                .with_context(|| format!("config {what}"))?;
        }
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        Self::build(config, run_dir, None, registry)
    }

    /// Continues the run in `run_dir` from its `latest` checkpoint. `config` overrides the
    /// saved one (e.g. a longer `total_steps`); the policy and env must stay the same.
    pub fn resume(run_dir: &Path, config: Option<TrainConfig>) -> Result<Self> {
        Self::resume_with_registry(run_dir, config, &wormnet_envs::registry())
    }

    /// Like [`Trainer::resume`], with envs from `registry`.
    pub fn resume_with_registry(
        run_dir: &Path,
        config: Option<TrainConfig>,
        registry: &Registry,
    ) -> Result<Self> {
        let sidecar_path = run_dir.join("latest.json");
        let sidecar: Sidecar = checkpoint::load_json(&sidecar_path)
            .with_context(|| format!("cannot resume {}", run_dir.display()))?;
        if sidecar.format != FORMAT {
            bail!(
                "{}: checkpoint format {} is not the supported {FORMAT}",
                sidecar_path.display(),
                sidecar.format
            );
        }
        let config = config.unwrap_or_else(|| sidecar.config.clone());
        if config.policy != sidecar.config.policy || config.env != sidecar.config.env {
            bail!(
                "{}: the [env] and [policy] sections must match the run being resumed",
                sidecar_path.display()
            );
        }
        Self::build(config, run_dir, Some(sidecar), registry)
    }

    fn build(
        config: TrainConfig,
        run_dir: &Path,
        resume_from: Option<Sidecar>,
        registry: &Registry,
    ) -> Result<Self> {
        tch::set_num_threads(config.run.threads as i32);
        let device = parse_device(&config.run.device)?;
        let factory = registry
            .factory(&config.env.name, config.env.options.clone())
            .with_context(|| "config [env]".to_string())?;
        let eval_factory = registry
            .factory(&config.env.name, config.eval_env_options())
            .with_context(|| "config [env] eval_options".to_string())?;
        let venv = VecEnv::new(
            factory,
            VecEnvConfig::new(config.env.num_envs, config.env.workers),
        )?;
        let spec = venv.spec().clone();
        tch::manual_seed(derive_seed(config.run.seed, 0) as i64);
        let policy = Policy::new(&spec, &config.policy, device)?;
        let params = policy.parameters();
        let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let adam = Adam::new(&tensors, config.ppo.learning_rate, config.ppo.adam_eps);
        let obs_norm = config
            .ppo
            .norm_obs
            .then(|| ObsNormalizer::new(spec.obs_dim(), config.ppo.obs_clip));
        let reward_scaler = config.ppo.norm_reward.then(|| {
            RewardScaler::new(
                config.env.num_envs,
                f64::from(config.ppo.gamma),
                config.ppo.reward_clip,
            )
        });
        let resume = resume_from.is_some();
        let metrics = MetricsWriter::open(run_dir, resume, METRICS)?;
        let n = config.env.num_envs;
        let state = policy.initial_state(n as i64);
        let mut trainer = Trainer {
            config,
            run_dir: run_dir.to_path_buf(),
            policy,
            params,
            adam,
            obs_norm,
            reward_scaler,
            venv,
            eval_factory,
            spec,
            update: 0,
            global_step: 0,
            best_eval: None,
            metrics,
            recent: VecDeque::new(),
            obs: Vec::new(),
            state,
            starts: vec![true; n],
            in_segment: false,
        };
        if let Some(sidecar) = resume_from {
            trainer.restore(&sidecar)?;
        }
        Ok(trainer)
    }

    /// Updates in the whole run.
    pub fn num_updates(&self) -> usize {
        let batch = (self.config.env.num_envs * self.config.ppo.steps_per_rollout) as u64;
        self.config.run.total_steps.div_ceil(batch) as usize
    }

    /// The env the policy acts in.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The observation normaliser (None when disabled).
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer> {
        self.obs_norm.as_ref()
    }

    /// Trains until done, interrupted or `max_updates` more updates have run. `progress` is
    /// called after every update (the CLI draws its progress bar from it).
    pub fn run(
        &mut self,
        max_updates: Option<usize>,
        mut progress: impl FnMut(&Trainer, &UpdateStats),
    ) -> Result<Outcome> {
        let total = self.num_updates();
        let start_update = self.update;
        let start_step = self.global_step;
        let mut train_seconds = 0.0;
        while self.update < total {
            if max_updates.is_some_and(|m| self.update - start_update >= m) {
                return Ok(Outcome::UpdateLimit);
            }
            if !self.in_segment || self.update.is_multiple_of(self.config.run.checkpoint_every) {
                self.begin_segment()?;
            }
            let (stats, episodes) = self.train_one_update().with_context(|| {
                format!(
                    "training stopped at update {} (step {}); the checkpoints in {} are intact",
                    self.update + 1,
                    self.global_step,
                    self.run_dir.display()
                )
            })?;
            self.update += 1;
            let mut scalars = Scalars::new();
            // Training speed: rollout + update time only (evaluation and checkpoints excluded).
            train_seconds += stats.rollout_seconds + stats.update_seconds;
            let sps = (self.global_step - start_step) as f64 / train_seconds;
            scalars.insert("charts/SPS".into(), sps);
            scalars.insert("charts/learning_rate".into(), self.adam.lr);
            if !episodes.is_empty() {
                let n = episodes.len() as f64;
                let ret = episodes.iter().map(|e| e.0).sum::<f64>() / n;
                let len = episodes.iter().map(|e| f64::from(e.1)).sum::<f64>() / n;
                scalars.insert("charts/episodic_return".into(), ret);
                scalars.insert("charts/episodic_length".into(), len);
            }
            for (k, v) in [
                ("losses/policy_loss", stats.policy_loss),
                ("losses/value_loss", stats.value_loss),
                ("losses/entropy", stats.entropy),
                ("losses/old_approx_kl", stats.old_approx_kl),
                ("losses/approx_kl", stats.approx_kl),
                ("losses/clipfrac", stats.clipfrac),
                ("losses/explained_variance", stats.explained_variance),
                ("losses/grad_norm", stats.grad_norm),
                ("perf/rollout_seconds", stats.rollout_seconds),
                ("perf/update_seconds", stats.update_seconds),
            ] {
                scalars.insert(k.into(), v);
            }
            let eval_due = self.update == total
                || (self.config.run.eval_every > 0
                    && self.update.is_multiple_of(self.config.run.eval_every));
            let mut new_best = None;
            if eval_due {
                let summary = self.evaluate_now()?;
                scalars.insert("eval/mean_return".into(), summary.mean_return);
                scalars.insert("eval/success_rate".into(), summary.success_rate);
                if self.best_eval.is_none_or(|b| summary.mean_return > b) {
                    self.best_eval = Some(summary.mean_return);
                    new_best = Some(summary);
                }
            }
            self.metrics.log(self.global_step, &scalars)?;
            if let Some(summary) = new_best {
                self.save("best", Some(summary))?;
            }
            if self.update.is_multiple_of(self.config.run.checkpoint_every) || self.update == total
            {
                self.save("latest", None)?;
            }
            progress(self, &stats);
            if STOP.load(Ordering::SeqCst) {
                self.save("latest", None)?;
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }

    /// Re-seeds the envs and clears recurrent state and discounted returns: the start of a
    /// checkpoint segment.
    fn begin_segment(&mut self) -> Result<()> {
        let seed = derive_seed(self.config.run.seed, ENV_STREAM + self.update as u64);
        self.obs = self.venv.reset(Some(seed))?.to_vec();
        let n = self.config.env.num_envs;
        self.state = self.policy.initial_state(n as i64);
        self.starts = vec![true; n];
        self.in_segment = true;
        if let Some(r) = &mut self.reward_scaler {
            r.returns.iter_mut().for_each(|x| *x = 0.0);
        }
        Ok(())
    }

    /// One rollout and one PPO update; returns the update's statistics and the episodes that
    /// finished during the rollout (raw return, length).
    fn train_one_update(&mut self) -> Result<(UpdateStats, Vec<(f64, u32)>)> {
        let cfg = self.config.ppo.clone();
        let n = self.config.env.num_envs;
        let t_len = cfg.steps_per_rollout;
        let obs_dim = self.spec.obs_dim();
        let device = self.policy.device();
        tch::manual_seed(derive_seed(self.config.run.seed, self.update as u64 + 1) as i64);
        if cfg.anneal_lr {
            let frac = 1.0 - self.update as f64 / self.num_updates() as f64;
            self.adam.lr = frac * cfg.learning_rate;
        }

        // ---- rollout -------------------------------------------------------------------
        let rollout_started = Instant::now();
        let state0 = self.state.detach();
        let mut buf = RolloutBuffer::new(t_len, n);
        let mut actions = vec![0.0f32; n * self.policy.action_dim()];
        let mut episodes = Vec::new();
        let to_tensor = |v: &[f32]| {
            Tensor::from_slice(v)
                .reshape([n as i64, obs_dim as i64])
                .to_device(device)
        };
        // Reused every step: the normalised copy of the observations the policy sees.
        let mut input = self.obs.clone();
        for _ in 0..t_len {
            input.copy_from_slice(&self.obs);
            if let Some(norm) = &mut self.obs_norm {
                norm.normalize(&mut input);
            }
            let x = to_tensor(&input);
            let starts = Tensor::from_slice(&self.starts).to_device(device);
            let act = self.policy.act(&x, &self.state, false);
            self.policy.env_actions(&act.action, &mut actions);
            let view = self.venv.step(&actions)?;
            let mut rewards = view.rewards.to_vec();
            let done: Vec<bool> = (0..n).map(|i| view.done(i)).collect();
            // V(final observation) for truncated episodes, with the pre-reset state.
            let mut final_values = vec![0.0f32; n];
            if cfg.bootstrap_truncated && view.truncated.iter().any(|&t| t) {
                let mut fin = view.final_obs.to_vec();
                if let Some(norm) = &self.obs_norm {
                    norm.apply(&mut fin);
                }
                let v = self.policy.value(&to_tensor(&fin), &act.state);
                let v = Vec::<f32>::try_from(v.to_device(Device::Cpu))?;
                for i in 0..n {
                    if view.truncated[i] && !view.terminated[i] {
                        final_values[i] = v[i];
                    }
                }
            }
            if let Some(scaler) = &mut self.reward_scaler {
                scaler.scale(&mut rewards, &done);
            }
            for ep in view.episodes {
                episodes.push((ep.episode_return, ep.length));
                self.recent.push_back((ep.episode_return, ep.length));
                if self.recent.len() > 100 {
                    self.recent.pop_front();
                }
            }
            buf.obs.push(x);
            buf.starts.push(starts);
            buf.actions.push(act.action.reshape([n as i64, -1]));
            buf.actor_h.push(act.state.actor.h.detach());
            buf.logp.push(act.logp);
            buf.values.push(act.value);
            buf.rewards.extend_from_slice(&rewards);
            buf.terminated.extend_from_slice(view.terminated);
            if cfg.bootstrap_truncated {
                buf.truncated.extend_from_slice(view.truncated);
            } else {
                // CleanRL's convention: a time limit ends the episode like a failure.
                let at = buf.terminated.len() - n;
                for (t, &u) in buf.terminated[at..].iter_mut().zip(view.truncated) {
                    *t |= u;
                }
                buf.truncated.extend(std::iter::repeat_n(false, n));
            }
            buf.final_values.extend_from_slice(&final_values);
            self.obs.copy_from_slice(view.obs);
            self.state = act
                .state
                .reset(&Tensor::from_slice(&done).to_device(device));
            self.starts = done;
            self.global_step += n as u64;
        }
        // Values of the observations after the rollout, to bootstrap its last step.
        input.copy_from_slice(&self.obs);
        if let Some(norm) = &self.obs_norm {
            norm.apply(&mut input);
        }
        let last_values = self.policy.value(&to_tensor(&input), &self.state);
        let last_values = Vec::<f32>::try_from(last_values.to_device(Device::Cpu))?;

        let rollout_seconds = rollout_started.elapsed().as_secs_f64();
        let update_started = Instant::now();
        // ---- advantages ------------------------------------------------------------------
        let values_tn = Tensor::stack(&buf.values, 0); // (T, N)
        let values_flat = Vec::<f32>::try_from(values_tn.to_device(Device::Cpu).reshape([-1]))?;
        let (adv, ret) = gae(&GaeInput {
            envs: n,
            rewards: &buf.rewards,
            values: &values_flat,
            terminated: &buf.terminated,
            truncated: &buf.truncated,
            final_values: &buf.final_values,
            last_values: &last_values,
            gamma: cfg.gamma,
            lambda: cfg.gae_lambda,
        });
        let tn = |v: &[f32]| {
            Tensor::from_slice(v)
                .reshape([t_len as i64, n as i64])
                .transpose(0, 1)
                .contiguous()
                .to_device(device)
        };
        let advantages = tn(&adv);
        let returns = tn(&ret);
        let obs = Tensor::stack(&buf.obs, 1); // (N, T, O)
        let acts = Tensor::stack(&buf.actions, 1); // (N, T, A)
        let starts = Tensor::stack(&buf.starts, 1); // (N, T)
        let actor_h = Tensor::stack(&buf.actor_h, 1); // (N, T, S)
        let old_logp = Tensor::stack(&buf.logp, 1);
        let old_values = values_tn.transpose(0, 1).contiguous();

        // ---- PPO epochs over minibatches of whole envs ---------------------------------
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
            self.config.run.seed,
            SHUFFLE_STREAM + self.update as u64,
        ));
        let per_mb = n / cfg.minibatches;
        let mut stats = UpdateStats::default();
        let mut env_order: Vec<i64> = (0..n as i64).collect();
        let tensors: Vec<Tensor> = self.params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let mut count = 0.0;
        'epochs: for epoch in 0..cfg.epochs {
            env_order.shuffle(&mut rng);
            let mut epoch_kl = 0.0;
            let mut epoch_mbs = 0.0;
            for mb in 0..cfg.minibatches {
                let idx = Tensor::from_slice(&env_order[mb * per_mb..(mb + 1) * per_mb])
                    .to_device(device);
                let (ev, tapes) = self.policy.evaluate(
                    &obs.index_select(0, &idx),
                    &acts.index_select(0, &idx),
                    &starts.index_select(0, &idx),
                    &state0.select(&idx),
                    &actor_h.index_select(0, &idx),
                );
                let mb_old_logp = old_logp.index_select(0, &idx);
                let mb_adv = advantages.index_select(0, &idx);
                let mb_ret = returns.index_select(0, &idx);
                let mb_old_v = old_values.index_select(0, &idx);
                let logratio = &ev.logp - &mb_old_logp;
                let ratio = logratio.exp();
                let (old_kl, kl, clipfrac) = tch::no_grad(|| {
                    (
                        (-&logratio).mean(Kind::Float).double_value(&[]),
                        ((&ratio - 1.0) - &logratio)
                            .mean(Kind::Float)
                            .double_value(&[]),
                        (&ratio - 1.0)
                            .abs()
                            .gt(cfg.clip_coef)
                            .to_kind(Kind::Float)
                            .mean(Kind::Float)
                            .double_value(&[]),
                    )
                });
                if epoch == 0 && mb == 0 {
                    stats.first_ratio_deviation =
                        tch::no_grad(|| (&ratio - 1.0).abs().max().double_value(&[]));
                }
                let mb_adv = if cfg.norm_adv {
                    (&mb_adv - mb_adv.mean(Kind::Float)) / (mb_adv.std(true) + 1e-8)
                } else {
                    mb_adv
                };
                let pg1 = -&mb_adv * &ratio;
                let pg2 = -&mb_adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
                let pg_loss = pg1.max_other(&pg2).mean(Kind::Float);
                let v_loss = if cfg.clip_vloss {
                    let unclipped = (&ev.value - &mb_ret).pow_tensor_scalar(2);
                    let clipped =
                        &mb_old_v + (&ev.value - &mb_old_v).clamp(-cfg.clip_coef, cfg.clip_coef);
                    let clipped = (clipped - &mb_ret).pow_tensor_scalar(2);
                    unclipped.max_other(&clipped).mean(Kind::Float) * 0.5
                } else {
                    (&ev.value - &mb_ret).pow_tensor_scalar(2).mean(Kind::Float) * 0.5
                };
                let entropy = ev.entropy.mean(Kind::Float);
                let loss = &pg_loss - &entropy * cfg.ent_coef + &v_loss * cfg.vf_coef;
                let loss_value = loss.double_value(&[]);
                if !loss_value.is_finite() {
                    bail!(
                        "the PPO loss became {loss_value} (policy {}, value {}): the run \
                         diverged; lower ppo.learning_rate or check the env's rewards",
                        pg_loss.double_value(&[]),
                        v_loss.double_value(&[])
                    );
                }
                for t in &tensors {
                    let mut t = t.shallow_clone();
                    t.zero_grad();
                }
                loss.backward();
                for tape in tapes {
                    tape.backward();
                }
                let norm = clip_grad_norm(&tensors, cfg.max_grad_norm);
                self.adam.step(&tensors);
                self.policy.apply_weight_constraints();

                stats.policy_loss += pg_loss.double_value(&[]);
                stats.value_loss += v_loss.double_value(&[]);
                stats.entropy += entropy.double_value(&[]);
                stats.old_approx_kl += old_kl;
                stats.approx_kl += kl;
                stats.clipfrac += clipfrac;
                stats.grad_norm += norm;
                count += 1.0;
                epoch_kl += kl;
                epoch_mbs += 1.0;
            }
            if let Some(target) = cfg.target_kl {
                if epoch_kl / epoch_mbs > target {
                    break 'epochs;
                }
            }
        }
        for v in [
            &mut stats.policy_loss,
            &mut stats.value_loss,
            &mut stats.entropy,
            &mut stats.old_approx_kl,
            &mut stats.approx_kl,
            &mut stats.clipfrac,
            &mut stats.grad_norm,
        ] {
            *v /= count;
        }
        stats.rollout_seconds = rollout_seconds;
        stats.update_seconds = update_started.elapsed().as_secs_f64();
        let var_ret = returns.var(true).double_value(&[]);
        stats.explained_variance = if var_ret == 0.0 {
            f64::NAN
        } else {
            1.0 - (&returns - &old_values).var(true).double_value(&[]) / var_ret
        };
        Ok((stats, episodes))
    }

    /// Evaluates the current policy on fresh eval envs (fixed seeds, frozen normaliser).
    pub fn evaluate_now(&self) -> Result<EvalSummary> {
        let run = &self.config.run;
        evaluate(
            &self.policy,
            self.obs_norm.as_ref(),
            self.eval_factory.clone(),
            &EvalOptions {
                episodes: run.eval_episodes,
                deterministic: run.eval_deterministic,
                obs_noise: 0.0,
                seed: derive_seed(run.seed, EVAL_STREAM),
                num_envs: self.config.env.num_envs,
            },
        )
    }

    /// Mean return of the last 100 finished training episodes.
    pub fn recent_return(&self) -> Option<f64> {
        (!self.recent.is_empty())
            .then(|| self.recent.iter().map(|e| e.0).sum::<f64>() / self.recent.len() as f64)
    }

    /// Writes checkpoint `tag` (`latest` or `best`): tensors to a new file, then the sidecar
    /// that names it (the commit point), then removes tensor files no sidecar names.
    pub fn save(&self, tag: &str, eval: Option<EvalSummary>) -> Result<()> {
        let tensors_name = format!("{tag}-{:06}.safetensors", self.update);
        let mut tensors = Vec::new();
        for (name, t) in self.policy.vs.variables() {
            tensors.push((format!("policy/{name}"), t.detach().to_device(Device::Cpu)));
        }
        for (i, (name, _)) in self.params.iter().enumerate() {
            tensors.push((
                format!("adam/exp_avg/{name}"),
                self.adam.exp_avg[i].to_device(Device::Cpu),
            ));
            tensors.push((
                format!("adam/exp_avg_sq/{name}"),
                self.adam.exp_avg_sq[i].to_device(Device::Cpu),
            ));
        }
        checkpoint::save_tensors(&self.run_dir.join(&tensors_name), &tensors)?;
        let sidecar = Sidecar {
            format: FORMAT,
            tensors: tensors_name,
            update: self.update,
            global_step: self.global_step,
            best_eval: self.best_eval,
            adam_step: self.adam.step,
            obs_norm: self.obs_norm.clone(),
            reward_scaler: self.reward_scaler.clone(),
            eval,
            config: self.config.clone(),
            env_spec: self.spec.clone(),
        };
        checkpoint::save_json(&self.run_dir.join(format!("{tag}.json")), &sidecar)?;
        remove_unreferenced_tensors(&self.run_dir);
        Ok(())
    }

    fn restore(&mut self, sidecar: &Sidecar) -> Result<()> {
        let dir = self.run_dir.clone();
        let tensors = load_policy_tensors(&self.policy, &dir, sidecar)?;
        for (i, (name, _)) in self.params.iter().enumerate() {
            for (prefix, slot) in [
                ("exp_avg", &mut self.adam.exp_avg[i]),
                ("exp_avg_sq", &mut self.adam.exp_avg_sq[i]),
            ] {
                let key = format!("adam/{prefix}/{name}");
                let t = tensors.iter().find(|(k, _)| *k == key).ok_or_else(|| {
                    CheckpointError::Mismatch {
                        path: dir.join(&sidecar.tensors),
                        reason: format!("optimizer tensor {key} is missing"),
                    }
                })?;
                *slot = t.1.to_device(self.policy.device());
            }
        }
        self.adam.step = sidecar.adam_step;
        self.obs_norm = sidecar.obs_norm.clone();
        self.reward_scaler = sidecar.reward_scaler.clone();
        self.update = sidecar.update;
        self.global_step = sidecar.global_step;
        self.best_eval = sidecar.best_eval;
        Ok(())
    }
}

/// Loads a checkpoint's policy tensors into `policy`, checking names, shapes and the fixed
/// wiring masks; returns every tensor of the file (optimizer state included).
pub fn load_policy_tensors(
    policy: &Policy,
    dir: &Path,
    sidecar: &Sidecar,
) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let path = dir.join(&sidecar.tensors);
    let tensors = checkpoint::load_tensors(&path)?;
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: path.clone(),
        reason,
    };
    let vars = policy.vs.variables();
    let stored = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("policy/"))
        .count();
    if stored != vars.len() {
        return Err(mismatch(format!(
            "it holds {stored} policy tensors, this policy has {} (another wiring or cell?)",
            vars.len()
        )));
    }
    tch::no_grad(|| {
        for (name, var) in &vars {
            let key = format!("policy/{name}");
            let (_, t) = tensors.iter().find(|(k, _)| *k == key).ok_or_else(|| {
                mismatch(format!(
                    "tensor {name} is missing (another wiring or cell?)"
                ))
            })?;
            if t.size() != var.size() {
                return Err(mismatch(format!(
                    "tensor {name} has shape {:?}, this policy needs {:?} (another wiring?)",
                    t.size(),
                    var.size()
                )));
            }
            let t = t.to_device(var.device()).to_kind(var.kind());
            if !var.requires_grad() && !t.equal(var) {
                return Err(mismatch(format!(
                    "fixed tensor {name} differs: the checkpoint was trained with another wiring"
                )));
            }
            let mut var = var.shallow_clone();
            var.copy_(&t);
        }
        Ok(())
    })?;
    Ok(tensors)
}

/// Deletes `*.safetensors` files in `dir` that neither `latest.json` nor `best.json` names.
fn remove_unreferenced_tensors(dir: &Path) {
    let referenced: Vec<String> = ["latest.json", "best.json"]
        .iter()
        .filter_map(|f| checkpoint::load_json::<Sidecar>(&dir.join(f)).ok())
        .map(|s| s.tensors)
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = (name.starts_with("latest-") || name.starts_with("best-"))
            && name.ends_with(".safetensors");
        if ours && !referenced.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A loaded checkpoint, ready to act: for `wormnet eval`, `watch` and `record`.
pub struct LoadedPolicy {
    pub policy: Policy,
    pub sidecar: Sidecar,
    pub path: PathBuf,
}

/// Loads `best` (else `latest`) from a run directory, or a given `*.json` sidecar.
pub fn load_checkpoint(target: &Path, device: Device) -> Result<LoadedPolicy> {
    let path = if target.is_dir() {
        let best = target.join("best.json");
        if best.exists() {
            best
        } else {
            target.join("latest.json")
        }
    } else {
        target.to_path_buf()
    };
    let sidecar: Sidecar = checkpoint::load_json(&path)?;
    if sidecar.format != FORMAT {
        bail!(
            "{}: checkpoint format {} is not the supported {FORMAT}",
            path.display(),
            sidecar.format
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy = Policy::new(&sidecar.env_spec, &sidecar.config.policy, device)
        .with_context(|| format!("{}: rebuilding its policy", path.display()))?;
    load_policy_tensors(&policy, dir, &sidecar)?;
    Ok(LoadedPolicy {
        policy,
        sidecar,
        path,
    })
}
