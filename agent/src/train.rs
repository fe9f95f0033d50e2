//! The schedule of a training run: when to re-seed the envs, roll out, update, log, evaluate
//! and checkpoint — and nothing else. The rollout and the loss live in [`crate::ppo`], the
//! checkpoint format in [`crate::checkpoint`], evaluation in [`crate::eval`], the random
//! streams in [`crate::seeds`].
//!
//! Reproducibility rule: every random stream (libtorch sampling, minibatch shuffling, env
//! seeds) is derived from `(run.seed, update index)`, and envs are re-seeded at every checkpoint
//! boundary. A run resumed from a periodic checkpoint therefore continues exactly as the
//! uninterrupted run would have. The price: episodes in flight at a checkpoint boundary are cut
//! there and bootstrapped like a time-limit truncation.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::Tensor;
use wormnet_ncp::parse_device;
use wormnet_sim::{EnvFactory, EnvSpec, Registry, VecEnv, VecEnvConfig};

use crate::checkpoint::{self, CheckpointParts, Sidecar};
use crate::config::TrainConfig;
use crate::eval::{evaluate, EvalOptions, EvalSummary};
use crate::imitation;
use crate::metrics::{names, MetricsWriter, Scalars, COLUMNS};
use crate::policy::{ObsNormalizer, Policy, RewardScaler};
use crate::ppo::adam::Adam;
use crate::ppo::rollout::{self, Carry};
use crate::ppo::update::{update, Shards, UpdateStats};
use crate::rundir::{self, RunLock};
use crate::seeds::{derive_seed, ENV_STREAM, SHUFFLE_STREAM, TORCH_STREAM};
use crate::threads::{available_cores, ThreadBudget};

pub use crate::interrupt::STOP;

/// The update's threads beside the trainer's, each with a replica of the policy (whose weights
/// are the policy's, copied in at every use). A GPU runs every shard in one stream anyway:
/// there the update is one shard.
fn update_shards(
    threads: &ThreadBudget,
    spec: &EnvSpec,
    config: &TrainConfig,
    device: tch::Device,
) -> Result<Shards> {
    if device != tch::Device::Cpu {
        return Ok(Shards::none());
    }
    let replicas = (1..threads.update_shards)
        .map(|_| Policy::new(spec, &config.policy, device))
        .collect::<Result<Vec<_>, _>>()?;
    Shards::spawn(replicas)
}

/// A training run in progress.
pub struct Trainer {
    /// The run's resolved config.
    pub config: TrainConfig,
    /// Where metrics and checkpoints go.
    pub run_dir: PathBuf,
    /// The policy being trained.
    pub policy: Policy,
    /// How the run's threads are split between env workers and update shards.
    pub threads: ThreadBudget,
    /// The update's threads beside the trainer's, each with a replica of the policy.
    shards: Shards,
    params: Vec<(String, Tensor)>,
    adam: Adam,
    reward_scaler: Option<RewardScaler>,
    venv: VecEnv,
    eval_factory: EnvFactory,
    spec: EnvSpec,
    /// Updates completed.
    pub update: usize,
    /// Environment steps completed.
    pub global_step: u64,
    best_eval: Option<f64>,
    /// Wall-clock seconds of earlier sessions (up to the checkpoint resumed from).
    wall_before: f64,
    /// When this session started.
    session_start: std::time::Instant,
    metrics: MetricsWriter,
    recent: VecDeque<(f64, u32)>,
    /// Carried across updates inside a checkpoint segment (None until the first `run`).
    carry: Option<Carry>,
    /// This process's hold on the run directory.
    _lock: RunLock,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All `total_steps` done.
    Finished,
    /// Ctrl-C (or [`STOP`]): stopped at the next checkpoint boundary, `latest` saved there.
    Interrupted,
    /// Stopped after `max_updates` (tests, benchmarks).
    UpdateLimit,
}

impl Trainer {
    /// Starts a new run in `run_dir` (created if needed; it must be empty) on the envs of
    /// `registry`, holding the directory's lock for the life of the trainer.
    pub fn create(config: TrainConfig, run_dir: &Path, registry: &Registry) -> Result<Self> {
        // Everything that can be wrong with the config fails here, before a directory exists.
        parse_device(&config.run.device)?;
        let mut spec = None;
        for (what, options) in [
            ("[env] options", config.env.options.clone()),
            ("[env] eval_options", config.eval_env_options()),
        ] {
            let env = registry
                .make(&config.env.name, &options)
                .with_context(|| format!("config {what}"))?;
            spec.get_or_insert_with(|| env.spec().clone());
        }
        if let Some(spec) = &spec {
            Policy::new(spec, &config.policy, tch::Device::Cpu)?;
        }
        if config.imitation.before_ppo {
            if config.run.init_from.is_some() {
                bail!(
                    "imitation.before_ppo and run.init_from both choose the starting policy; \
                     keep one"
                );
            }
            imitation::check_env(&config, registry).context("imitation.before_ppo")?;
        }
        let lock = rundir::claim_new(run_dir, Some("wormnet train --resume"))?;
        let mut guard = rundir::NewRunGuard::new(run_dir, lock);
        let lock = guard.take_lock().context("the run directory's lock")?;
        let trainer = Self::start_new(config, run_dir, lock, registry)?;
        guard.keep();
        Ok(trainer)
    }

    /// The part of [`Self::create`] after the directory is claimed (a failure here leaves the
    /// directory as it was found, through the caller's guard).
    fn start_new(
        mut config: TrainConfig,
        run_dir: &Path,
        lock: RunLock,
        registry: &Registry,
    ) -> Result<Self> {
        // The run's config says how many threads made its bits (absent: all the cores).
        config.run.threads = Some(config.run.threads.unwrap_or_else(available_cores));
        config.policy.embed_circuits()?;
        checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
        let mut init_from = config.run.init_from.clone();
        let mut imitation_seconds = 0.0;
        if config.imitation.before_ppo {
            let dir = run_dir.join("imitation");
            let started = Instant::now();
            let outcome = imitation::imitate(config.clone(), &dir, registry, |r| {
                tracing::info!(
                    "imitation round {}: {} samples, loss {:.4}, eval return {:.1}",
                    r.round,
                    r.samples,
                    r.loss,
                    r.eval.mean_return
                );
            })
            .context("imitation.before_ppo")?;
            if outcome == imitation::Completion::Interrupted {
                bail!(
                    "interrupted while imitating, before PPO began: the policy cloned so far \
                     is in {}; fine-tune it with --init-from {0} (and imitation.before_ppo = \
                     false), or start again in another --run-dir",
                    dir.display()
                );
            }
            imitation_seconds = started.elapsed().as_secs_f64();
            init_from = Some(dir);
        }
        let mut trainer = Self::build(config, run_dir, None, registry, lock)?;
        if let Some(source) = init_from {
            trainer
                .start_from(&source)
                .with_context(|| format!("run.init_from {}", source.display()))?;
        }
        trainer.wall_before = imitation_seconds;
        Ok(trainer)
    }

    /// Takes the policy weights and observation normaliser of another run's checkpoint (its
    /// `best`, else `latest`, or a given sidecar), before the first update.
    fn start_from(&mut self, source: &Path) -> Result<()> {
        let sidecar_path = checkpoint::sidecar_path(source);
        let sidecar = checkpoint::load_sidecar(&sidecar_path)?;
        if sidecar.env_spec.obs_dim() != self.spec.obs_dim()
            || sidecar.env_spec.action_dim() != self.spec.action_dim()
        {
            bail!(
                "it was trained on observations of {} and actions of {}, this run's env has {} and {}",
                sidecar.env_spec.obs_dim(),
                sidecar.env_spec.action_dim(),
                self.spec.obs_dim(),
                self.spec.action_dim()
            );
        }
        let dir = sidecar_path.parent().unwrap_or(Path::new("."));
        checkpoint::load_policy_tensors(&self.policy, dir, &sidecar)?;
        if self.policy.obs_normalizer().is_some() {
            self.policy.set_obs_normalizer(sidecar.obs_norm.clone());
        }
        Ok(())
    }

    /// Continues the run in `run_dir` from its `latest` checkpoint. `config` overrides the
    /// saved one (e.g. a longer `total_steps`); the policy and env must stay the same.
    pub fn resume(
        run_dir: &Path,
        config: Option<TrainConfig>,
        registry: &Registry,
    ) -> Result<Self> {
        let lock = RunLock::acquire(run_dir)?;
        rundir::remove_stale_temporaries(run_dir);
        if run_dir.join(imitation::LOG).exists() {
            bail!(
                "{0} holds a cloned policy (wormnet imitate), not a PPO run; fine-tune it in a \
                 new run with --init-from {0}",
                run_dir.display()
            );
        }
        let sidecar_path = run_dir.join("latest.json");
        let sidecar = checkpoint::load_sidecar(&sidecar_path)
            .with_context(|| format!("cannot resume {}", run_dir.display()))?;
        let config = config.unwrap_or_else(|| sidecar.config.clone());
        if config.policy != sidecar.config.policy || config.env != sidecar.config.env {
            bail!(
                "{}: the [env] and [policy] sections must match the run being resumed",
                sidecar_path.display()
            );
        }
        Self::build(config, run_dir, Some(sidecar), registry, lock)
    }

    fn build(
        config: TrainConfig,
        run_dir: &Path,
        resume_from: Option<Sidecar>,
        registry: &Registry,
        lock: RunLock,
    ) -> Result<Self> {
        let threads = ThreadBudget::plan(
            config.run.threads,
            available_cores(),
            config.env.num_envs,
            config.env.num_envs / config.ppo.minibatches.max(1),
            config.env.workers,
        );
        tch::set_num_threads(threads.torch_threads as i32);
        let device = parse_device(&config.run.device)?;
        let factory = registry
            .factory(&config.env.name, config.env.options.clone())
            .with_context(|| "config [env]".to_string())?;
        let eval_factory = registry
            .factory(&config.env.name, config.eval_env_options())
            .with_context(|| "config [env] eval_options".to_string())?;
        let mut venv_config = VecEnvConfig::new(config.env.num_envs, threads.env_workers);
        venv_config.envs_per_app = config.env.envs_per_app;
        let venv = VecEnv::new(factory, venv_config)?;
        let spec = venv.spec().clone();
        // Before the seed: building the replicas must not move the policy's random stream.
        let shards = update_shards(&threads, &spec, &config, device)?;
        tch::manual_seed(derive_seed(config.run.seed, TORCH_STREAM) as i64);
        let mut policy = Policy::new(&spec, &config.policy, device)?;
        policy.set_obs_normalizer(
            config
                .ppo
                .norm_obs
                .then(|| ObsNormalizer::new(spec.obs_dim(), config.ppo.obs_clip)),
        );
        let params = policy.parameters();
        let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let adam = Adam::new(&tensors, config.ppo.learning_rate, config.ppo.adam_eps);
        let reward_scaler = config.ppo.norm_reward.then(|| {
            RewardScaler::new(
                config.env.num_envs,
                f64::from(config.ppo.gamma),
                config.ppo.reward_clip,
            )
        });
        let resume_at = resume_from.as_ref().map(|s| s.global_step);
        let metrics = MetricsWriter::open(run_dir, resume_at, COLUMNS)?;
        let mut trainer = Trainer {
            config,
            run_dir: run_dir.to_path_buf(),
            policy,
            threads,
            shards,
            params,
            adam,
            reward_scaler,
            venv,
            eval_factory,
            spec,
            update: 0,
            global_step: 0,
            best_eval: None,
            wall_before: 0.0,
            session_start: std::time::Instant::now(),
            metrics,
            recent: VecDeque::new(),
            carry: None,
            _lock: lock,
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
            if self.carry.is_none() || self.update.is_multiple_of(self.config.run.checkpoint_every)
            {
                self.begin_segment()?;
            }
            let (stats, episodes) = self.train_one_update().with_context(|| {
                let dir = self.run_dir.display();
                let saved = if self.run_dir.join("latest.json").exists() {
                    format!("the checkpoints in {dir} are intact")
                } else {
                    format!("no checkpoint had been written yet in {dir}")
                };
                format!(
                    "training stopped at update {} (step {}); {saved}",
                    self.update + 1,
                    self.global_step,
                )
            })?;
            self.update += 1;
            // Training speed: rollout + update time only (evaluation and checkpoints excluded).
            train_seconds += stats.rollout_seconds + stats.update_seconds;
            let sps = (self.global_step - start_step) as f64 / train_seconds;
            let mut scalars = update_scalars(&stats, sps, self.adam.lr, &episodes);
            let eval_due = self.update == total
                || (self.config.run.eval_every > 0
                    && self.update.is_multiple_of(self.config.run.eval_every));
            let mut new_best = None;
            if eval_due {
                let summary = self.evaluate_now()?;
                scalars.insert(names::EVAL_MEAN_RETURN.into(), summary.mean_return);
                if let Some(rate) = summary.success_rate {
                    scalars.insert(names::EVAL_SUCCESS_RATE.into(), rate);
                }
                if self.best_eval.is_none_or(|b| summary.mean_return > b) {
                    self.best_eval = Some(summary.mean_return);
                    new_best = Some(summary);
                }
            }
            scalars.insert(names::WALL_SECONDS.into(), self.wall_seconds());
            self.metrics.log(self.global_step, &scalars)?;
            if let Some(summary) = new_best {
                self.save("best", Some(summary))?;
            }
            if self.update.is_multiple_of(self.config.run.checkpoint_every) || self.update == total
            {
                self.save("latest", None)?;
            }
            progress(self, &stats);
            // Stop at a checkpoint boundary (where `latest` was just saved and the envs are
            // re-seeded): a resumed run then continues exactly as an uninterrupted one.
            if STOP.load(Ordering::SeqCst)
                && self.update.is_multiple_of(self.config.run.checkpoint_every)
            {
                return Ok(Outcome::Interrupted);
            }
        }
        Ok(Outcome::Finished)
    }

    /// Re-seeds the envs and clears recurrent state and discounted returns: the start of a
    /// checkpoint segment.
    fn begin_segment(&mut self) -> Result<()> {
        let seed = derive_seed(self.config.run.seed, ENV_STREAM + self.update as u64);
        let obs = self.venv.reset(Some(seed))?.to_vec();
        let n = self.config.env.num_envs;
        self.carry = Some(Carry {
            obs,
            state: self.policy.initial_state(n as i64),
            starts: vec![true; n],
        });
        if let Some(r) = &mut self.reward_scaler {
            r.returns.iter_mut().for_each(|x| *x = 0.0);
        }
        Ok(())
    }

    /// One rollout and one PPO update; returns the update's statistics and the episodes that
    /// finished during the rollout (raw return, length).
    fn train_one_update(&mut self) -> Result<(UpdateStats, Vec<(f64, u32)>)> {
        let cfg = &self.config.ppo;
        let seed = self.config.run.seed;
        tch::manual_seed(derive_seed(seed, TORCH_STREAM + self.update as u64 + 1) as i64);
        if cfg.anneal_lr {
            let frac = 1.0 - self.update as f64 / self.num_updates() as f64;
            self.adam.lr = frac * cfg.learning_rate;
        }
        let rollout_started = Instant::now();
        let carry = self
            .carry
            .as_mut()
            .context("no segment in progress (internal: begin_segment was skipped)")?;
        let rollout = rollout::collect(
            &mut self.policy,
            &mut self.venv,
            carry,
            self.reward_scaler.as_mut(),
            cfg.steps_per_rollout,
            cfg.bootstrap_truncated,
        )?;
        self.global_step += (carry.starts.len() * cfg.steps_per_rollout) as u64;
        for &episode in &rollout.episodes {
            self.recent.push_back(episode);
            if self.recent.len() > 100 {
                self.recent.pop_front();
            }
        }
        let rollout_seconds = rollout_started.elapsed().as_secs_f64();
        let update_started = Instant::now();
        let tensors: Vec<Tensor> = self.params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let shuffle_seed = derive_seed(seed, SHUFFLE_STREAM + self.update as u64);
        let mut stats = update(
            &self.policy,
            &tensors,
            &mut self.adam,
            &rollout,
            cfg,
            shuffle_seed,
            &self.shards,
        )?;
        stats.rollout_seconds = rollout_seconds;
        stats.update_seconds = update_started.elapsed().as_secs_f64();
        Ok((stats, rollout.episodes))
    }

    /// Evaluates the current policy on fresh eval envs (fixed seeds, frozen normaliser).
    pub fn evaluate_now(&self) -> Result<EvalSummary> {
        evaluate(
            &self.policy,
            self.eval_factory.clone(),
            &EvalOptions::during_training(&self.config),
        )
    }

    /// Mean return of the last 100 finished training episodes.
    pub fn recent_return(&self) -> Option<f64> {
        (!self.recent.is_empty())
            .then(|| self.recent.iter().map(|e| e.0).sum::<f64>() / self.recent.len() as f64)
    }

    /// Wall-clock seconds the run has spent: earlier sessions plus this one.
    pub fn wall_seconds(&self) -> f64 {
        self.wall_before + self.session_start.elapsed().as_secs_f64()
    }

    /// Writes checkpoint `tag` (`latest` or `best`); see [`checkpoint::save`].
    pub fn save(&self, tag: &str, eval: Option<EvalSummary>) -> Result<()> {
        let parts = CheckpointParts {
            policy: &self.policy,
            params: &self.params,
            adam: &self.adam,
            reward_scaler: self.reward_scaler.as_ref(),
            update: self.update,
            global_step: self.global_step,
            best_eval: self.best_eval,
            wall_seconds: self.wall_seconds(),
            config: &self.config,
            spec: &self.spec,
        };
        checkpoint::save(&self.run_dir, tag, &parts, eval)
    }

    fn restore(&mut self, sidecar: &Sidecar) -> Result<()> {
        let tensors = checkpoint::load_policy_tensors(&self.policy, &self.run_dir, sidecar)?;
        checkpoint::restore_adam(
            &mut self.adam,
            &self.params,
            &tensors,
            sidecar,
            &self.run_dir,
            self.policy.device(),
        )?;
        self.policy.set_obs_normalizer(sidecar.obs_norm.clone());
        self.reward_scaler = sidecar.reward_scaler.clone();
        self.update = sidecar.update;
        self.global_step = sidecar.global_step;
        self.wall_before = sidecar.wall_seconds;
        // `best` may be ahead of `latest` (the process died between the two saves): the score
        // to beat is the one `best` holds, never a lower one that would overwrite it.
        let best_saved = checkpoint::load_sidecar(&self.run_dir.join("best.json"))
            .ok()
            .and_then(|b| b.eval.map(|e| e.mean_return));
        self.best_eval = match (sidecar.best_eval, best_saved) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(())
    }
}

/// The scalars logged after every update.
fn update_scalars(stats: &UpdateStats, sps: f64, lr: f64, episodes: &[(f64, u32)]) -> Scalars {
    let mut scalars = Scalars::new();
    scalars.insert(names::SPS.into(), sps);
    scalars.insert(names::LEARNING_RATE.into(), lr);
    if !episodes.is_empty() {
        let n = episodes.len() as f64;
        let ret = episodes.iter().map(|e| e.0).sum::<f64>() / n;
        let len = episodes.iter().map(|e| f64::from(e.1)).sum::<f64>() / n;
        scalars.insert(names::EPISODIC_RETURN.into(), ret);
        scalars.insert(names::EPISODIC_LENGTH.into(), len);
    }
    for (k, v) in [
        (names::POLICY_LOSS, stats.policy_loss),
        (names::VALUE_LOSS, stats.value_loss),
        (names::ENTROPY, stats.entropy),
        (names::OLD_APPROX_KL, stats.old_approx_kl),
        (names::APPROX_KL, stats.approx_kl),
        (names::CLIPFRAC, stats.clipfrac),
        (names::EXPLAINED_VARIANCE, stats.explained_variance),
        (names::GRAD_NORM, stats.grad_norm),
        (names::ROLLOUT_SECONDS, stats.rollout_seconds),
        (names::UPDATE_SECONDS, stats.update_seconds),
        (names::BATCHING_SECONDS, stats.batching_seconds),
        (names::ACTOR_SECONDS, stats.actor_seconds),
        (names::CRITIC_SECONDS, stats.critic_seconds),
        (names::SHARD_WAIT_SECONDS, stats.shard_wait_seconds),
        (names::LOSS_SECONDS, stats.loss_seconds),
        (names::BACKWARD_SECONDS, stats.backward_seconds),
        (names::OPTIMIZER_SECONDS, stats.optimizer_seconds),
    ] {
        scalars.insert(k.into(), v);
    }
    scalars
}
