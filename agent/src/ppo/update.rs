//! The PPO update, as CleanRL writes it: advantages by GAE, then `epochs` passes over
//! minibatches of whole environments, each replayed through the recurrent policy from the
//! rollout's start state with the same episode-start resets, and the whole loss — clipped
//! surrogate, (clipped) value loss, entropy bonus — in [`update`]. A categorical policy on the
//! CPU takes the actor's half of that loss, and its gradient in the logits, from the host loops
//! of [`super::categorical`], which compute the same formulas.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::adam::{host_f32, host_slice, Adam};
use super::categorical::{self, categorical_loss, LossSettings};
use super::config::PpoConfig;
use super::gae::{gae, GaeInput};
use super::rollout::Rollout;
use super::sums;
use crate::policy::{Evaluation, Policy, ReplayBatch};

/// Statistics of one PPO update, logged under CleanRL's names.
#[derive(Clone, Debug, Default)]
pub struct UpdateStats {
    /// Clipped surrogate loss (mean over minibatches).
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// `−log ratio` KL estimate.
    pub old_approx_kl: f64,
    /// `(ratio − 1) − log ratio` KL estimate.
    pub approx_kl: f64,
    /// Fraction of ratios outside the clip range.
    pub clipfrac: f64,
    /// 1 − Var(returns − values) / Var(returns).
    pub explained_variance: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// max |ratio − 1| on the first minibatch of the first epoch: 0 up to float rounding when
    /// the replay reproduces the rollout exactly.
    pub first_ratio_deviation: f64,
    /// Wall time spent collecting the rollout.
    pub rollout_seconds: f64,
    /// Wall time spent in GAE and the PPO epochs.
    pub update_seconds: f64,
    /// Of the update: GAE, stacking the rollout's tensors, and selecting each minibatch's rows.
    pub batching_seconds: f64,
    /// Of the update: replaying the actor over the minibatches (its forward pass, then, for a
    /// continuous policy, the log-probabilities and entropies of the taken actions).
    pub actor_seconds: f64,
    /// The critic's half of the replay: its values, the value loss and their backward. With
    /// `critic_beside` it ran on a second thread, beside the actor's half, and is no part of
    /// the update's sum; `critic_wait_seconds` is.
    pub critic_seconds: f64,
    /// Whether the critic's half ran beside the actor's (an MLP critic without an encoder).
    pub critic_beside: bool,
    /// Of the update: the actor's thread waiting for the critic's half to finish.
    pub critic_wait_seconds: f64,
    /// Of the update: ratios, the policy loss and their statistics (for a categorical policy
    /// also its log-probabilities, entropies and the loss's gradient in the logits).
    pub loss_seconds: f64,
    /// Of the update: the actor's backpropagation (autograd and the kernels' backward).
    pub backward_seconds: f64,
    /// Of the update: zeroing gradients, clipping their norm, Adam and weight constraints.
    pub optimizer_seconds: f64,
}

/// Runs the PPO epochs on `rollout`: `params` are the policy's trainable tensors in Adam's
/// order, `shuffle_seed` seeds the minibatch order.
pub fn update(
    policy: &Policy,
    params: &[Tensor],
    adam: &mut Adam,
    rollout: &Rollout,
    cfg: &PpoConfig,
    shuffle_seed: u64,
) -> Result<UpdateStats> {
    let batching_started = Instant::now();
    let device = policy.device();
    let n = rollout.last_values.len();
    let t_len = rollout.obs.len();
    // ---- advantages ------------------------------------------------------------------
    let values_tn = Tensor::stack(&rollout.values, 0); // (T, N)
    let values_flat = Vec::<f32>::try_from(values_tn.to_device(Device::Cpu).reshape([-1]))?;
    let (adv, ret) = gae(&GaeInput {
        envs: n,
        rewards: &rollout.rewards,
        values: &values_flat,
        terminated: &rollout.terminated,
        truncated: &rollout.truncated,
        final_values: &rollout.final_values,
        last_values: &rollout.last_values,
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
    let obs = Tensor::stack(&rollout.obs, 1); // (N, T, O)
    let acts = Tensor::stack(&rollout.actions, 1); // (N, T, A)
    let starts = Tensor::stack(&rollout.starts, 1); // (N, T)
    let actor_h = Tensor::stack(&rollout.actor_h, 1); // (N, T, S)
    let old_logp = Tensor::stack(&rollout.logp, 1);
    let old_values = values_tn.transpose(0, 1).contiguous();

    // ---- PPO epochs over minibatches of whole envs ---------------------------------
    let mut rng = ChaCha8Rng::seed_from_u64(shuffle_seed);
    let per_mb = n / cfg.minibatches;
    let mut stats = UpdateStats {
        batching_seconds: batching_started.elapsed().as_secs_f64(),
        ..UpdateStats::default()
    };
    let mut env_order: Vec<i64> = (0..n as i64).collect();
    let mut count = 0.0;
    let settings = LossSettings {
        clip_coef: cfg.clip_coef,
        ent_coef: cfg.ent_coef,
        norm_adv: cfg.norm_adv,
    };
    'epochs: for epoch in 0..cfg.epochs {
        env_order.shuffle(&mut rng);
        let mut epoch_kl = 0.0;
        let mut epoch_mbs = 0.0;
        for mb in 0..cfg.minibatches {
            let optimizer_started = Instant::now();
            adam.zero_grad(params);
            stats.optimizer_seconds += optimizer_started.elapsed().as_secs_f64();
            let batching_started = Instant::now();
            let idx =
                Tensor::from_slice(&env_order[mb * per_mb..(mb + 1) * per_mb]).to_device(device);
            let mb_ret = returns.index_select(0, &idx);
            let mb_old_v = old_values.index_select(0, &idx);
            let mb_old_logp = old_logp.index_select(0, &idx);
            let mb_adv = advantages.index_select(0, &idx);
            let batch = ReplayBatch {
                obs: &obs.index_select(0, &idx),
                actions: &acts.index_select(0, &idx),
                starts: &starts.index_select(0, &idx),
                state0: &rollout.state0.select(&idx),
                actor_h: &actor_h.index_select(0, &idx),
            };
            stats.batching_seconds += batching_started.elapsed().as_secs_f64();
            // The loss is `pg_loss − ent_coef · entropy + vf_coef · v_loss`; each half of the
            // replay backpropagates its own terms (see `Policy::replay`).
            let (clip_vloss, clip_coef, vf_coef) = (cfg.clip_vloss, cfg.clip_coef, cfg.vf_coef);
            let replayed = policy.replay(
                &batch,
                move |value, tape| {
                    let v_loss = if clip_vloss {
                        let unclipped = (&value - &mb_ret).pow_tensor_scalar(2);
                        let clipped = &mb_old_v + (&value - &mb_old_v).clamp(-clip_coef, clip_coef);
                        let clipped = (clipped - &mb_ret).pow_tensor_scalar(2);
                        unclipped.max_other(&clipped).mean(Kind::Float) * 0.5
                    } else {
                        (&value - &mb_ret).pow_tensor_scalar(2).mean(Kind::Float) * 0.5
                    };
                    tape.backward(&(&v_loss * vf_coef));
                    v_loss
                },
                |ev, tape| {
                    let loss_started = Instant::now();
                    // A categorical policy on the CPU takes its loss and the loss's gradient
                    // in the logits from host loops (`categorical`): the same loss to float
                    // rounding, ~40 libtorch operations fewer. Else the loss as CleanRL
                    // writes it.
                    let host = match &ev {
                        Evaluation::Logits { logits, actions } => {
                            categorical_loss(logits, actions, &mb_old_logp, &mb_adv, settings)
                                .map(|loss| (loss, logits))
                        }
                        Evaluation::Tensors { .. } => None,
                    };
                    if let Some((loss, logits)) = host {
                        if epoch == 0 && mb == 0 {
                            stats.first_ratio_deviation = loss.max_ratio_deviation;
                        }
                        stats.loss_seconds += loss_started.elapsed().as_secs_f64();
                        let backward_started = Instant::now();
                        tape.backward(&categorical::surrogate(logits, &loss.grad));
                        stats.backward_seconds += backward_started.elapsed().as_secs_f64();
                        let diagnostics = [loss.old_approx_kl, loss.approx_kl, loss.clipfrac];
                        return (loss.actor_loss, loss.pg_loss, loss.entropy, diagnostics);
                    }
                    let (logp, entropy) = ev.tensors();
                    let logratio = &logp - &mb_old_logp;
                    let ratio = logratio.exp();
                    let [old_kl, kl, clipfrac] = ratio_stats(&logratio, &ratio, cfg.clip_coef);
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
                    let entropy = entropy.mean(Kind::Float);
                    let actor_loss = &pg_loss - &entropy * cfg.ent_coef;
                    stats.loss_seconds += loss_started.elapsed().as_secs_f64();
                    let backward_started = Instant::now();
                    tape.backward(&actor_loss);
                    stats.backward_seconds += backward_started.elapsed().as_secs_f64();
                    let value = |t: &Tensor| t.double_value(&[]);
                    let (pg_loss, entropy) = (value(&pg_loss), value(&entropy));
                    (value(&actor_loss), pg_loss, entropy, [old_kl, kl, clipfrac])
                },
            )?;
            let (actor_loss, pg_loss, entropy, [old_kl, kl, clipfrac]) = replayed.actor;
            let v_loss = replayed.critic.double_value(&[]);
            stats.actor_seconds += replayed.actor_seconds;
            stats.critic_seconds += replayed.critic_seconds;
            stats.critic_wait_seconds += replayed.wait_seconds;
            stats.critic_beside = replayed.critic_beside;
            // Checked in f32, as the losses are: beyond f32's range the run has diverged.
            let loss_value = (actor_loss + v_loss * cfg.vf_coef) as f32;
            if !loss_value.is_finite() {
                bail!(
                    "the PPO loss became {loss_value} (policy {pg_loss}, value {v_loss}): the \
                     run diverged; lower ppo.learning_rate or check the env's rewards"
                );
            }
            let optimizer_started = Instant::now();
            let norm = adam.clip_and_step(params, cfg.max_grad_norm);
            policy.apply_weight_constraints();
            stats.optimizer_seconds += optimizer_started.elapsed().as_secs_f64();

            stats.policy_loss += pg_loss;
            stats.value_loss += v_loss;
            stats.entropy += entropy;
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
    let var_ret = returns.var(true).double_value(&[]);
    stats.explained_variance = if var_ret == 0.0 {
        f64::NAN
    } else {
        1.0 - (&returns - &old_values).var(true).double_value(&[]) / var_ret
    };
    Ok(stats)
}

/// The ratio's diagnostics, as CleanRL logs them: `old_approx_kl` (the mean of `-logratio`),
/// `approx_kl` (the mean of `(ratio - 1) - logratio`) and `clipfrac` (the share of samples with
/// `|ratio - 1| > clip_coef`). On the CPU they come from host loops with libtorch's bits
/// ([`host_ratio_stats`]): a dozen operations and three reads fewer per minibatch.
fn ratio_stats(logratio: &Tensor, ratio: &Tensor, clip_coef: f64) -> [f64; 3] {
    host_ratio_stats(logratio, ratio, clip_coef)
        .unwrap_or_else(|| tensor_ratio_stats(logratio, ratio, clip_coef))
}

/// [`ratio_stats`] as libtorch operations.
fn tensor_ratio_stats(logratio: &Tensor, ratio: &Tensor, clip_coef: f64) -> [f64; 3] {
    tch::no_grad(|| {
        [
            (-logratio).mean(Kind::Float).double_value(&[]),
            ((ratio - 1.0) - logratio)
                .mean(Kind::Float)
                .double_value(&[]),
            (ratio - 1.0)
                .abs()
                .gt(clip_coef)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]),
        ]
    })
}

/// [`ratio_stats`] from host loops: the same f32 operations per sample, and each mean as
/// libtorch takes it (its sum, [`sums::sum`], divided by the count); `None` where that does not
/// apply (off the CPU, not contiguous f32, too long for one thread's order, or not exactly one
/// vector width found).
fn host_ratio_stats(logratio: &Tensor, ratio: &Tensor, clip_coef: f64) -> Option<[f64; 3]> {
    let n = logratio.numel();
    if n >= sums::MAX_LEN || !host_f32(logratio, n) || !host_f32(ratio, n) {
        return None;
    }
    let lanes = sums::lanes()?;
    // SAFETY: both passed `host_f32`, and nothing writes to them while these slices live.
    let (logratio, ratio) = unsafe { (host_slice(logratio), host_slice(ratio)) };
    let mean = |item: &dyn Fn(usize) -> f32| f64::from(sums::sum(n, lanes, item) / n as f32);
    let clip = clip_coef as f32;
    Some([
        mean(&|i| -logratio[i]),
        mean(&|i| (ratio[i] - 1.0) - logratio[i]),
        mean(&|i| {
            if (ratio[i] - 1.0).abs() > clip {
                1.0
            } else {
                0.0
            }
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ratio_stats_have_libtorchs_bits() {
        for n in [1i64, 7, 64, 256, 1_000, 4_096] {
            // Log-ratios of a few percent, as after a few epochs, and some past the clip range.
            let logratio = Tensor::linspace(-0.3, 0.25, n, (Kind::Float, Device::Cpu)).sin() * 0.9;
            let ratio = logratio.exp();
            let host = host_ratio_stats(&logratio, &ratio, 0.2).expect("host loops apply");
            let theirs = tensor_ratio_stats(&logratio, &ratio, 0.2);
            let bits = |v: [f64; 3]| v.map(f64::to_bits);
            assert_eq!(bits(host), bits(theirs), "n {n}: {host:?} vs {theirs:?}");
        }
    }
}
