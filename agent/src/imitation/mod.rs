//! Behavioural cloning, as the NCP paper trained its lane keeper: the env's expert (the
//! vehicle's pure pursuit) labels episodes, the recurrent policy learns to reproduce its
//! actions over whole sequences, and DAgger rounds let the policy drive while the expert keeps
//! labelling, so the data holds the states the policy gets itself into. The result is an
//! ordinary run directory: `eval`, `record` and `train --init-from` (PPO fine-tuning) read it.
//!
//! Every random stream derives from `run.seed` (weights, episode seeds, noise, batch order),
//! so the same config gives the same cloned policy, bit for bit.

pub mod demos;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};
use wormnet_ncp::parse_device;
use wormnet_sim::{EnvFactory, EnvSpec, EpisodeDriver, Registry, Space};

use demos::Demo;

use crate::checkpoint::{self, CheckpointParts};
use crate::config::{ImitationConfig, TrainConfig};
use crate::eval::{evaluate, EvalOptions, EvalSummary};
use crate::interrupt::STOP;
use crate::policy::{ObsNormalizer, Policy};
use crate::ppo::adam::Adam;
use crate::rundir;
use crate::seeds::{derive_seed, ENV_STREAM, SHUFFLE_STREAM, TORCH_STREAM};

/// The per-round log of an imitation run, beside its checkpoints.
pub const LOG: &str = "imitation.csv";

/// How an imitation run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Every round done.
    Finished,
    /// Stopped by Ctrl-C ([`STOP`]) after an epoch, `latest` saved.
    Interrupted,
}

/// What one round did: the line of [`LOG`] and of the progress output.
#[derive(Clone, Debug)]
pub struct RoundReport {
    /// Round index (0: the expert drove).
    pub round: usize,
    /// Episodes gathered this round that failed (left the road) while being driven.
    pub failed_episodes: usize,
    /// Labelled steps gathered so far, all rounds.
    pub samples: usize,
    /// Mean cloning loss of the round's last epoch.
    pub loss: f64,
    /// The policy's evaluation after the round (held-out envs, `[env] eval_options`).
    pub eval: EvalSummary,
    /// Wall-clock seconds since the run started.
    pub wall_seconds: f64,
}

/// [`LOG`], written a line per round.
struct RoundLog {
    path: std::path::PathBuf,
}

impl RoundLog {
    /// The log of a new run in `run_dir`, with its header.
    fn create(run_dir: &Path) -> Result<Self> {
        let log = RoundLog {
            path: run_dir.join(LOG),
        };
        log.line(
            "round,driver,failed_episodes,samples,loss,eval_return,eval_success,wall_seconds",
        )?;
        Ok(log)
    }

    /// Appends a round's line.
    fn append(&self, report: &RoundReport) -> Result<()> {
        self.line(&report.csv_line())
    }

    fn line(&self, line: &str) -> Result<()> {
        checkpoint::append_line(&self.path, line)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl RoundReport {
    /// The round's line of [`LOG`].
    fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{:.3}",
            self.round,
            if self.round == 0 { "expert" } else { "policy" },
            self.failed_episodes,
            self.samples,
            self.loss,
            self.eval.mean_return,
            self.eval
                .success_rate
                .map_or(String::new(), |s| s.to_string()),
            self.wall_seconds
        )
    }
}

/// The policy a cloning run starts from: the run's seeded initial weights and, with
/// `ppo.norm_obs`, a fresh observation normaliser.
fn initial_policy(config: &TrainConfig, spec: &EnvSpec, device: tch::Device) -> Result<Policy> {
    // One libtorch thread, as in PPO (`crate::threads`): the NCP's tensors are too small for
    // more to pay.
    tch::set_num_threads(1);
    tch::manual_seed(derive_seed(config.run.seed, TORCH_STREAM) as i64);
    let mut policy = Policy::new(spec, &config.policy, device)?;
    if config.ppo.norm_obs {
        policy.set_obs_normalizer(Some(ObsNormalizer::new(
            spec.obs_dim(),
            config.ppo.obs_clip,
        )));
    }
    Ok(policy)
}

/// Clones the expert of `config`'s env into a new run directory `run_dir`; `progress` hears
/// of every finished round. Ctrl-C ([`STOP`]) ends it after the current epoch with `latest`
/// saved.
pub fn imitate(
    mut config: TrainConfig,
    run_dir: &Path,
    registry: &Registry,
    mut progress: impl FnMut(&RoundReport),
) -> Result<Completion> {
    let started = Instant::now();
    let device = parse_device(&config.run.device)?;
    let cfg = config.imitation.clone();
    let spec = check_env(&config, registry)?;
    let factory = registry
        .factory(&config.env.name, config.env.options.clone())
        .context("config [env] options")?;
    let eval_factory = registry
        .factory(&config.env.name, config.eval_env_options())
        .context("config [env] eval_options")?;
    let mut policy = initial_policy(&config, &spec, device)?;
    // A failure before the first checkpoint leaves the directory as it was found; the guard
    // holds the directory's lock for the whole run.
    let guard = rundir::NewRunGuard::new(run_dir, rundir::claim_new(run_dir, None)?);
    config.policy.embed_circuits()?;
    checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
    let log = RoundLog::create(run_dir)?;
    let params = policy.parameters();
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut adam = Adam::new(&tensors, cfg.learning_rate, config.ppo.adam_eps);
    let mut data = Demonstrations::default();
    let mut best: Option<f64> = None;
    let seed = config.run.seed;
    let save = |policy: &Policy, adam: &Adam, tag: &str, best, eval| {
        let parts = CheckpointParts {
            policy,
            params: &params,
            adam,
            reward_scaler: None,
            update: 0,
            global_step: 0,
            best_eval: best,
            wall_seconds: started.elapsed().as_secs_f64(),
            config: &config,
            spec: &spec,
        };
        checkpoint::save(run_dir, tag, &parts, eval)
    };
    for round in 0..cfg.rounds {
        let episodes_seed = derive_seed(seed, ENV_STREAM + round as u64);
        let failed_episodes = gather(&mut policy, &factory, &cfg, episodes_seed, &mut data)?;
        let shuffle_seeds =
            |epoch: usize| derive_seed(seed, SHUFFLE_STREAM + (round * cfg.epochs + epoch) as u64);
        let loss = clone_round(&policy, (&mut adam, &tensors), &cfg, &data, shuffle_seeds)?;
        let Some(loss) = loss else {
            save(&policy, &adam, "latest", best, None)?;
            guard.keep();
            return Ok(Completion::Interrupted);
        };
        let options = EvalOptions::during_training(&config);
        let eval = evaluate(&policy, eval_factory.clone(), &options)?;
        let improved = best.is_none_or(|b| eval.mean_return > b);
        best = best.filter(|_| !improved).or(Some(eval.mean_return));
        save(&policy, &adam, "latest", best, None)?;
        if improved {
            save(&policy, &adam, "best", best, Some(eval.clone()))?;
        }
        let report = RoundReport {
            round,
            failed_episodes,
            samples: data.demos.iter().map(|d| d.len).sum(),
            loss,
            eval,
            wall_seconds: started.elapsed().as_secs_f64(),
        };
        log.append(&report)?;
        progress(&report);
    }
    guard.keep();
    Ok(Completion::Finished)
}

/// Every round's demonstrations so far, with the expert's actions in the actor's own units
/// (`targets[i]` for `demos[i]`).
#[derive(Default)]
struct Demonstrations {
    demos: Vec<Demo>,
    targets: Vec<Vec<f32>>,
}

/// One round's episodes (the expert drives round 0, the policy the later ones, the expert
/// labelling every step), added to `data`; the observation normaliser sees them. Returns how
/// many of them failed while being driven.
fn gather(
    policy: &mut Policy,
    factory: &EnvFactory,
    cfg: &ImitationConfig,
    episodes_seed: u64,
    data: &mut Demonstrations,
) -> Result<usize> {
    let driver = (!data.demos.is_empty()).then_some(&*policy);
    let demos = demos::collect(factory, driver, cfg, episodes_seed)?;
    let failed = demos.iter().filter(|d| d.failed).count();
    for demo in &demos {
        data.targets.push(
            policy
                .action
                .output_targets(&demo.labels)
                .unwrap_or_default(),
        );
        if policy.obs_normalizer().is_some() {
            policy.observe(&mut demo.observations.clone());
        }
    }
    data.demos.extend(demos);
    Ok(failed)
}

/// A round's cloning epochs over all of `data` (epoch `e` shuffled by `shuffle_seeds(e)`):
/// the last epoch's loss, or `None` when Ctrl-C stopped them after an epoch.
fn clone_round(
    policy: &Policy,
    (adam, params): (&mut Adam, &[Tensor]),
    cfg: &ImitationConfig,
    data: &Demonstrations,
    shuffle_seeds: impl Fn(usize) -> u64,
) -> Result<Option<f64>> {
    // The network reads observations through the normaliser, whose statistics moved with
    // this round's data: every episode is normalised anew (raw data is read as it is).
    let normalized: Option<Vec<Vec<f32>>> = policy.obs_normalizer().map(|_| {
        data.demos
            .iter()
            .map(|d| {
                let mut x = d.observations.clone();
                policy.normalize(&mut x);
                x
            })
            .collect()
    });
    let inputs: Vec<&[f32]> = match &normalized {
        Some(n) => n.iter().map(Vec::as_slice).collect(),
        None => data
            .demos
            .iter()
            .map(|d| d.observations.as_slice())
            .collect(),
    };
    let windows = windows(&data.demos, cfg);
    let mut loss = f64::NAN;
    for epoch in 0..cfg.epochs {
        let sequences = Sequences {
            inputs: &inputs,
            targets: &data.targets,
            windows: &windows,
        };
        loss = clone_epoch(policy, adam, params, cfg, &sequences, shuffle_seeds(epoch))?;
        if STOP.load(Ordering::SeqCst) {
            return Ok(None);
        }
    }
    Ok(Some(loss))
}

/// The spec of `config`'s env, checked for what cloning needs — continuous actions and an
/// expert action (probed after a reset) — so a config that cannot be cloned fails before any
/// run directory is made.
pub fn check_env(config: &TrainConfig, registry: &Registry) -> Result<EnvSpec> {
    let env = registry
        .make(&config.env.name, &config.env.options)
        .context("config [env] options")?;
    let spec = env.spec().clone();
    if !matches!(spec.action_space, Space::Box { .. }) {
        bail!(
            "env `{}` has a discrete action space; imitation clones continuous actions",
            spec.name
        );
    }
    let mut driver = EpisodeDriver::new(env, 0);
    driver.reset(Some(0), &mut vec![0.0; spec.obs_dim()])?;
    if !driver
        .env()
        .expert_action(&mut vec![0.0; spec.action_dim()])
    {
        bail!(
            "env `{}` offers no expert action to imitate (Env::expert_action; the vehicle has one)",
            spec.name
        );
    }
    Ok(spec)
}

/// The training sequences of `data` as (episode, first step): windows of `sequence_length`
/// that overlap by the burn-in, so every step is scored once (the first window of an episode
/// from its true zero state, the others after warming up).
fn windows(data: &[Demo], cfg: &ImitationConfig) -> Vec<(usize, usize)> {
    let len = cfg.sequence_length;
    let mut windows = Vec::new();
    for (d, demo) in data.iter().enumerate() {
        let mut start = 0;
        while start < demo.len {
            windows.push((d, start));
            if start + len >= demo.len {
                break;
            }
            start += len - cfg.burn_in;
        }
    }
    windows
}

/// What an epoch of cloning reads: per episode the network's inputs and the targets, and the
/// windows of them to train on.
struct Sequences<'a> {
    inputs: &'a [&'a [f32]],
    targets: &'a [Vec<f32>],
    windows: &'a [(usize, usize)],
}

/// One pass over every training sequence in a seeded order: the actor's outputs from the zero
/// state against the expert's, mean squared error over the scored steps. Returns the mean loss.
fn clone_epoch(
    policy: &Policy,
    adam: &mut Adam,
    params: &[Tensor],
    cfg: &ImitationConfig,
    data: &Sequences<'_>,
    shuffle_seed: u64,
) -> Result<f64> {
    let (obs_dim, act_dim) = (policy.obs_dim(), policy.action_dim());
    let len = cfg.sequence_length;
    let (inputs, targets) = (data.inputs, data.targets);
    let mut windows = data.windows.to_vec();
    windows.shuffle(&mut ChaCha8Rng::seed_from_u64(shuffle_seed));
    let device = policy.device();
    let (mut total, mut batches) = (0.0, 0usize);
    for batch in windows.chunks(cfg.batch_size) {
        let b = batch.len();
        let mut obs = vec![0.0f32; b * len * obs_dim];
        let mut target = vec![0.0f32; b * len * act_dim];
        let mut mask = vec![0.0f32; b * len];
        for (i, &(d, start)) in batch.iter().enumerate() {
            let steps = inputs[d].len() / obs_dim;
            let scored_from = if start == 0 { 0 } else { cfg.burn_in };
            for t in 0..len {
                // Past the episode's end: repeat its last step, unscored.
                let s = (start + t).min(steps - 1);
                let row = i * len + t;
                obs[row * obs_dim..(row + 1) * obs_dim]
                    .copy_from_slice(&inputs[d][s * obs_dim..(s + 1) * obs_dim]);
                target[row * act_dim..(row + 1) * act_dim]
                    .copy_from_slice(&targets[d][s * act_dim..(s + 1) * act_dim]);
                mask[row] = f32::from(u8::from(t >= scored_from && start + t < steps));
            }
        }
        let shape = |w: usize| [b as i64, len as i64, w as i64];
        let obs = Tensor::from_slice(&obs)
            .reshape(shape(obs_dim))
            .to_device(device);
        let target = Tensor::from_slice(&target)
            .reshape(shape(act_dim))
            .to_device(device);
        let mask = Tensor::from_slice(&mask)
            .reshape(shape(1))
            .to_device(device);
        let (out, tape) = policy.actor_sequence(&obs);
        let scored = mask.sum(Kind::Float).clamp_min(1.0) * act_dim as f64;
        let loss = ((out - target).pow_tensor_scalar(2) * &mask).sum(Kind::Float) / scored;
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "the cloning loss became {value}: lower imitation.learning_rate or check the \
                 env's observations"
            );
        }
        adam.zero_grad(params);
        tape.backward(&loss);
        adam.clip_and_step(params, cfg.max_grad_norm);
        policy.apply_weight_constraints();
        total += value;
        batches += 1;
    }
    Ok(total / batches.max(1) as f64)
}
