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
use wormnet_sim::{EnvSpec, EpisodeDriver, Registry, Space};

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

/// Clones the expert of `config`'s env into a new run directory `run_dir`; `progress` hears
/// of every finished round. Ctrl-C ([`STOP`]) ends it after the current epoch with `latest`
/// saved.
pub fn imitate(
    config: TrainConfig,
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
    tch::set_num_threads(config.run.threads as i32);
    tch::manual_seed(derive_seed(config.run.seed, TORCH_STREAM) as i64);
    let mut policy = Policy::new(&spec, &config.policy, device)?;
    if config.ppo.norm_obs {
        policy.set_obs_normalizer(Some(ObsNormalizer::new(
            spec.obs_dim(),
            config.ppo.obs_clip,
        )));
    }
    let lock = rundir::claim_new(run_dir, None)?;
    // A failure before the first checkpoint leaves the directory as it was found.
    let guard = rundir::NewRunGuard::new(run_dir, &lock);
    checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
    let log_path = run_dir.join(LOG);
    let log = |line: &str| {
        checkpoint::append_line(&log_path, line)
            .with_context(|| format!("cannot write {}", log_path.display()))
    };
    log("round,driver,failed_episodes,samples,loss,eval_return,eval_success,wall_seconds")?;
    let params = policy.parameters();
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut adam = Adam::new(&tensors, cfg.learning_rate, config.ppo.adam_eps);
    let mut data: Vec<Demo> = Vec::new();
    // The expert's actions in the actor's own units, per episode of `data`.
    let mut targets: Vec<Vec<f32>> = Vec::new();
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
        let driver = (round > 0).then_some(&policy);
        let demos = demos::collect(
            &factory,
            driver,
            &cfg,
            derive_seed(seed, ENV_STREAM + round as u64),
        )?;
        let failed_episodes = demos.iter().filter(|d| d.failed).count();
        for demo in &demos {
            targets.push(
                policy
                    .action
                    .output_targets(&demo.labels)
                    .unwrap_or_default(),
            );
            if policy.obs_normalizer().is_some() {
                policy.observe(&mut demo.observations.clone());
            }
        }
        data.extend(demos);
        // The network reads observations through the normaliser, whose statistics moved with
        // this round's data: every episode is normalised anew (raw data is read as it is).
        let normalized: Option<Vec<Vec<f32>>> = policy.obs_normalizer().map(|_| {
            data.iter()
                .map(|d| {
                    let mut x = d.observations.clone();
                    policy.normalize(&mut x);
                    x
                })
                .collect()
        });
        let inputs: Vec<&[f32]> = match &normalized {
            Some(n) => n.iter().map(Vec::as_slice).collect(),
            None => data.iter().map(|d| d.observations.as_slice()).collect(),
        };
        let windows = windows(&data, &cfg);
        let mut loss = f64::NAN;
        for epoch in 0..cfg.epochs {
            let shuffle = derive_seed(seed, SHUFFLE_STREAM + (round * cfg.epochs + epoch) as u64);
            let sequences = Sequences {
                inputs: &inputs,
                targets: &targets,
                windows: &windows,
            };
            loss = clone_epoch(&policy, &mut adam, &tensors, &cfg, &sequences, shuffle)?;
            if STOP.load(Ordering::SeqCst) {
                save(&policy, &adam, "latest", best, None)?;
                guard.keep();
                return Ok(Completion::Interrupted);
            }
        }
        let eval = evaluate(
            &policy,
            eval_factory.clone(),
            &EvalOptions::during_training(&config),
        )?;
        let improved = best.is_none_or(|b| eval.mean_return > b);
        if improved {
            best = Some(eval.mean_return);
        }
        save(&policy, &adam, "latest", best, None)?;
        if improved {
            save(&policy, &adam, "best", best, Some(eval.clone()))?;
        }
        let report = RoundReport {
            round,
            failed_episodes,
            samples: data.iter().map(|d| d.len).sum(),
            loss,
            eval,
            wall_seconds: started.elapsed().as_secs_f64(),
        };
        log(&format!(
            "{round},{},{failed_episodes},{},{loss},{},{},{:.3}",
            if round == 0 { "expert" } else { "policy" },
            report.samples,
            report.eval.mean_return,
            report
                .eval
                .success_rate
                .map_or(String::new(), |s| s.to_string()),
            report.wall_seconds
        ))?;
        progress(&report);
    }
    guard.keep();
    drop(lock);
    Ok(Completion::Finished)
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
