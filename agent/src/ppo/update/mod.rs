//! The PPO update, as CleanRL writes it: advantages by GAE, then `epochs` passes over
//! minibatches of whole environments, each replayed through the recurrent policy from the
//! rollout's start state with the same episode-start resets ([`batch`]). Each minibatch is
//! split into shards of its envs, one per update thread ([`shards`]); each shard's loss —
//! clipped surrogate, entropy bonus, (clipped) value loss — is in [`loss`], and the shards'
//! gradients are added in a fixed order before one clipped Adam step ([`Step::run`]). The
//! phases' wall times are added up by [`timed`], out of the loss's way.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::adam::Adam;
use super::config::PpoConfig;
use super::rollout::Rollout;
use crate::policy::Policy;

mod batch;
mod loss;
mod shards;

use batch::Batch;
use loss::{ActorTerms, Half, ShardLoss};
pub use shards::Shards;

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
    /// Of the update: replaying the actor over the trainer's shard of each minibatch (its
    /// forward pass, then, for a continuous policy, the log-probabilities and entropies of the
    /// taken actions).
    pub actor_seconds: f64,
    /// Of the update: the critic's half of the trainer's shard (values, value loss, backward).
    pub critic_seconds: f64,
    /// Threads each minibatch was split over.
    pub shards: usize,
    /// Of the update: the trainer's thread waiting for the other shards to finish.
    pub shard_wait_seconds: f64,
    /// Of the update: ratios, the policy loss and their statistics (for a categorical policy
    /// also its log-probabilities, entropies and the loss's gradient in the logits), on the
    /// trainer's shard.
    pub loss_seconds: f64,
    /// Of the update: the actor's backpropagation (autograd and the kernels' backward) on
    /// the trainer's shard.
    pub backward_seconds: f64,
    /// Of the update: zeroing gradients, adding the shards' gradients, clipping their norm,
    /// Adam and weight constraints.
    pub optimizer_seconds: f64,
}

/// Runs the PPO epochs on `rollout`: `params` are the policy's trainable tensors in Adam's
/// (`Policy::parameters`) order, `shuffle_seed` seeds the minibatch order, and `shards` are
/// the threads each minibatch is split over beside this one.
pub fn update(
    policy: &Policy,
    params: &[Tensor],
    adam: &mut Adam,
    rollout: &Rollout,
    cfg: &PpoConfig,
    shuffle_seed: u64,
    shards: &Shards,
) -> Result<UpdateStats> {
    let mut stats = UpdateStats {
        shards: shards.count(),
        ..UpdateStats::default()
    };
    adam.host_loops = cfg.host_loops;
    let data = timed(&mut stats.batching_seconds, || {
        Batch::new(rollout, cfg, policy.device())
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(shuffle_seed);
    let mut env_order: Vec<i64> = (0..data.envs as i64).collect();
    let per_mb = data.envs / cfg.minibatches;
    let mut count = 0usize;
    for _ in 0..cfg.epochs {
        env_order.shuffle(&mut rng);
        let mut epoch_kl = 0.0;
        for mb in 0..cfg.minibatches {
            let envs = &env_order[mb * per_mb..(mb + 1) * per_mb];
            let step = Step {
                policy,
                params,
                cfg,
                shards,
                first: count == 0,
            };
            let losses = step.run(adam, &data, envs, &mut stats)?;
            if let Some(d) = losses.actor.max_ratio_deviation {
                stats.first_ratio_deviation = d;
            }
            stats.add(&losses);
            epoch_kl += losses.actor.approx_kl;
            count += 1;
        }
        if cfg
            .target_kl
            .is_some_and(|target| epoch_kl / cfg.minibatches as f64 > target)
        {
            break;
        }
    }
    stats.average(count as f64);
    stats.explained_variance = data.explained_variance();
    Ok(stats)
}

/// One minibatch's results.
struct Losses {
    /// The actor's terms and the ratio's statistics.
    actor: ActorTerms,
    /// The value loss (before `vf_coef`).
    value_loss: f64,
    /// The gradients' norm before clipping.
    grad_norm: f64,
}

/// What a gradient step on one minibatch reads.
struct Step<'a> {
    policy: &'a Policy,
    params: &'a [Tensor],
    cfg: &'a PpoConfig,
    shards: &'a Shards,
    /// Whether this is the update's first minibatch (its ratios are 1 up to rounding).
    first: bool,
}

impl Step<'_> {
    /// One gradient step on the minibatch of the envs `envs`: its shards' backward passes
    /// (their gradients added in shard order), then the clipped Adam step.
    fn run(
        &self,
        adam: &mut Adam,
        data: &Batch,
        envs: &[i64],
        stats: &mut UpdateStats,
    ) -> Result<Losses> {
        let cfg = self.cfg;
        timed(&mut stats.optimizer_seconds, || adam.zero_grad(self.params));
        let apart = self.policy.halves_apart() && self.policy.device() == tch::Device::Cpu;
        let (count, halves) = self.shards.layout(envs.len(), apart);
        let parts = timed(&mut stats.batching_seconds, || {
            let shards = data.shards(envs, count, cfg.norm_adv).into_iter();
            if !halves {
                return shards.map(|(mb, w)| (mb, w, Half::Both)).collect();
            }
            let pairs =
                shards.map(|(mb, w)| [(mb.shallow_clone(), w, Half::Actor), (mb, w, Half::Critic)]);
            pairs.flatten().collect::<Vec<_>>()
        });
        let (shards, wait) = timed(&mut stats.optimizer_seconds, || {
            self.shards
                .backward(self.policy, self.params, parts, cfg, self.first)
        })?;
        stats.shard_wait_seconds += wait;
        stats.optimizer_seconds -= wait;
        if let Some(own) = shards.first() {
            stats.actor_seconds += own.times.actor;
            stats.critic_seconds += own.times.critic;
            stats.loss_seconds += own.times.loss;
            stats.backward_seconds += own.times.backward;
            let own_work = own.times.actor + own.times.critic + own.times.loss;
            stats.optimizer_seconds -= own_work + own.times.backward;
        }
        let (actor, value_loss) = combine(&shards, self.first);
        // Checked in f32, as the losses are: beyond f32's range the run has diverged.
        let loss = (actor.loss + value_loss * cfg.vf_coef) as f32;
        if !loss.is_finite() {
            bail!(
                "the PPO loss became {loss} (policy {}, value {value_loss}): the run diverged; \
                 lower ppo.learning_rate or check the env's rewards",
                actor.pg_loss
            );
        }
        let grad_norm = timed(&mut stats.optimizer_seconds, || {
            let norm = adam.clip_and_step(self.params, cfg.max_grad_norm);
            self.policy.apply_weight_constraints();
            norm
        });
        Ok(Losses {
            actor,
            value_loss,
            grad_norm,
        })
    }
}

/// The minibatch's losses from its shards': each mean weighted by the shard's share of the
/// samples; the largest ratio deviation where asked for (`first`).
fn combine(shards: &[ShardLoss], first: bool) -> (ActorTerms, f64) {
    let mut actor = ActorTerms::default();
    let mut value_loss = 0.0;
    for s in shards {
        let w = s.weight;
        value_loss += w * s.value_loss.unwrap_or(0.0);
        let Some(a) = &s.actor else {
            continue;
        };
        actor.loss += w * a.loss;
        actor.pg_loss += w * a.pg_loss;
        actor.entropy += w * a.entropy;
        actor.old_approx_kl += w * a.old_approx_kl;
        actor.approx_kl += w * a.approx_kl;
        actor.clipfrac += w * a.clipfrac;
        if let Some(d) = a.max_ratio_deviation.filter(|_| first) {
            actor.max_ratio_deviation = Some(actor.max_ratio_deviation.unwrap_or(0.0).max(d));
        }
    }
    (actor, value_loss)
}

impl UpdateStats {
    /// Adds one minibatch's losses and statistics.
    fn add(&mut self, l: &Losses) {
        self.policy_loss += l.actor.pg_loss;
        self.value_loss += l.value_loss;
        self.entropy += l.actor.entropy;
        self.old_approx_kl += l.actor.old_approx_kl;
        self.approx_kl += l.actor.approx_kl;
        self.clipfrac += l.actor.clipfrac;
        self.grad_norm += l.grad_norm;
    }

    /// Turns the sums of [`UpdateStats::add`] over `count` minibatches into means.
    fn average(&mut self, count: f64) {
        for v in [
            &mut self.policy_loss,
            &mut self.value_loss,
            &mut self.entropy,
            &mut self.old_approx_kl,
            &mut self.approx_kl,
            &mut self.clipfrac,
            &mut self.grad_norm,
        ] {
            *v /= count;
        }
    }
}

/// Runs `f`, adding its wall time to `seconds`.
fn timed<R>(seconds: &mut f64, f: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let result = f();
    *seconds += started.elapsed().as_secs_f64();
    result
}

#[cfg(test)]
mod tests;
