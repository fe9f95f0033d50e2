//! The PPO update, as CleanRL writes it: advantages by GAE, then `epochs` passes over
//! minibatches of whole environments, each replayed through the recurrent policy from the
//! rollout's start state with the same episode-start resets ([`batch`]), and the loss —
//! clipped surrogate, entropy bonus, (clipped) value loss — in [`Step::run`]. A
//! categorical policy on the CPU takes the actor's half of that loss, and its gradient in the
//! logits, from the host loops of [`crate::ppo::host`], which compute the same formulas
//! (`ppo.host_loops = false`: libtorch's operations throughout). The phases' wall times are
//! added up by [`timed`], out of the loss's way.

use std::time::Instant;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};
use wormnet_ncp::Tape;

use super::adam::Adam;
use super::config::PpoConfig;
use super::host::{self, categorical};
use super::rollout::Rollout;
use crate::policy::{Evaluation, Policy};

mod batch;

use batch::{Batch, Minibatch};

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
    let mut stats = UpdateStats::default();
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
                first: count == 0,
            };
            let losses = step.run(adam, &data, envs, &mut stats)?;
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

/// The actor's half of the loss on one minibatch, and the ratio's statistics.
struct ActorTerms {
    /// `pg_loss − ent_coef · entropy`.
    loss: f64,
    pg_loss: f64,
    entropy: f64,
    old_approx_kl: f64,
    approx_kl: f64,
    clipfrac: f64,
    /// `max |ratio − 1|`, where asked for (the first minibatch).
    max_ratio_deviation: Option<f64>,
}

/// What a gradient step on one minibatch reads.
struct Step<'a> {
    policy: &'a Policy,
    params: &'a [Tensor],
    cfg: &'a PpoConfig,
    /// Whether this is the update's first minibatch (its ratios are 1 up to rounding).
    first: bool,
}

impl Step<'_> {
    /// One gradient step on the minibatch of the envs `envs`: the loss
    /// `pg_loss − ent_coef · entropy + vf_coef · v_loss`, its backward pass (each half of the
    /// replay backpropagates its own terms, see `Policy::replay`), the clipped Adam step.
    fn run(
        &self,
        adam: &mut Adam,
        data: &Batch,
        envs: &[i64],
        stats: &mut UpdateStats,
    ) -> Result<Losses> {
        let cfg = self.cfg;
        timed(&mut stats.optimizer_seconds, || adam.zero_grad(self.params));
        let mb = timed(&mut stats.batching_seconds, || data.minibatch(envs));
        let value_side = value_loss(&mb, cfg);
        let replayed = self.policy.replay(&mb.replay(), value_side, |ev, tape| {
            self.actor_loss(ev, tape, &mb, stats)
        })?;
        stats.actor_seconds += replayed.actor_seconds;
        stats.critic_seconds += replayed.critic_seconds;
        stats.critic_wait_seconds += replayed.wait_seconds;
        stats.critic_beside = replayed.critic_beside;
        let (actor, value_loss) = (replayed.actor, replayed.critic.double_value(&[]));
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

    /// The actor's terms — clipped surrogate and entropy bonus — and their backward pass:
    /// from the host loops for a categorical policy on the CPU, else as libtorch operations.
    fn actor_loss(
        &self,
        ev: Evaluation,
        tape: Tape,
        mb: &Minibatch,
        stats: &mut UpdateStats,
    ) -> ActorTerms {
        let started = Instant::now();
        let (terms, loss) = match self.host_categorical(&ev, mb) {
            Some(host) => host,
            None => tensor_actor_loss(&ev, mb, self.cfg, self.first),
        };
        stats.loss_seconds += started.elapsed().as_secs_f64();
        timed(&mut stats.backward_seconds, || tape.backward(&loss));
        if let Some(deviation) = terms.max_ratio_deviation.filter(|_| self.first) {
            stats.first_ratio_deviation = deviation;
        }
        terms
    }

    /// A categorical policy's actor terms from the host loops ([`categorical`]; ~40 libtorch
    /// operations fewer), and the surrogate `Σ logits · ∂loss/∂logits` to backpropagate;
    /// `None` where they do not apply or are turned off.
    fn host_categorical(&self, ev: &Evaluation, mb: &Minibatch) -> Option<(ActorTerms, Tensor)> {
        let Evaluation::Logits { logits, actions } = ev else {
            return None;
        };
        if !self.cfg.host_loops {
            return None;
        }
        let settings = categorical::LossSettings {
            clip_coef: self.cfg.clip_coef,
            ent_coef: self.cfg.ent_coef,
            norm_adv: self.cfg.norm_adv,
        };
        let loss =
            categorical::categorical_loss(logits, actions, &mb.old_logp, &mb.advantages, settings)?;
        let terms = ActorTerms {
            loss: loss.actor_loss,
            pg_loss: loss.pg_loss,
            entropy: loss.entropy,
            old_approx_kl: loss.old_approx_kl,
            approx_kl: loss.approx_kl,
            clipfrac: loss.clipfrac,
            max_ratio_deviation: Some(loss.max_ratio_deviation),
        };
        Some((terms, categorical::surrogate(logits, &loss.grad)))
    }
}

/// The actor's terms as CleanRL writes them, and the loss to backpropagate.
fn tensor_actor_loss(
    ev: &Evaluation,
    mb: &Minibatch,
    cfg: &PpoConfig,
    first: bool,
) -> (ActorTerms, Tensor) {
    let (logp, entropy) = ev.tensors();
    let logratio = &logp - &mb.old_logp;
    let ratio = logratio.exp();
    let [old_approx_kl, approx_kl, clipfrac] = ratio_stats(&logratio, &ratio, cfg);
    let max_ratio_deviation =
        first.then(|| tch::no_grad(|| (&ratio - 1.0).abs().max().double_value(&[])));
    let adv = &mb.advantages;
    let adv = if cfg.norm_adv {
        (adv - adv.mean(Kind::Float)) / (adv.std(true) + 1e-8)
    } else {
        adv.shallow_clone()
    };
    let pg_loss1 = -&adv * &ratio;
    let pg_loss2 = -&adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
    let pg_loss = pg_loss1.max_other(&pg_loss2).mean(Kind::Float);
    let entropy = entropy.mean(Kind::Float);
    let loss = &pg_loss - &entropy * cfg.ent_coef;
    let value = |t: &Tensor| t.double_value(&[]);
    let terms = ActorTerms {
        loss: value(&loss),
        pg_loss: value(&pg_loss),
        entropy: value(&entropy),
        old_approx_kl,
        approx_kl,
        clipfrac,
        max_ratio_deviation,
    };
    (terms, loss)
}

/// The critic's half: CleanRL's value loss `½ mean (V − R)²`, with `clip_vloss` the larger of
/// it and the loss of `V` clipped to `old_V ± clip_coef`; it backpropagates
/// `vf_coef · v_loss` and returns `v_loss`. It may run on the critic's thread.
fn value_loss(
    mb: &Minibatch,
    cfg: &PpoConfig,
) -> impl FnOnce(Tensor, Tape) -> Tensor + Send + 'static {
    let (returns, old_values) = (mb.returns.shallow_clone(), mb.old_values.shallow_clone());
    let (clip_vloss, clip_coef, vf_coef) = (cfg.clip_vloss, cfg.clip_coef, cfg.vf_coef);
    move |value, tape| {
        let v_loss = if clip_vloss {
            let unclipped = (&value - &returns).pow_tensor_scalar(2);
            let clipped = &old_values + (&value - &old_values).clamp(-clip_coef, clip_coef);
            let clipped = (clipped - &returns).pow_tensor_scalar(2);
            unclipped.max_other(&clipped).mean(Kind::Float) * 0.5
        } else {
            (&value - &returns).pow_tensor_scalar(2).mean(Kind::Float) * 0.5
        };
        tape.backward(&(&v_loss * vf_coef));
        v_loss
    }
}

/// The ratio's diagnostics, as CleanRL logs them: `old_approx_kl` (the mean of `-logratio`),
/// `approx_kl` (the mean of `(ratio - 1) - logratio`) and `clipfrac` (the share of samples with
/// `|ratio - 1| > clip_coef`). On the CPU they come from host loops
/// ([`host::ratio_stats`]): a dozen operations and three reads fewer per minibatch.
fn ratio_stats(logratio: &Tensor, ratio: &Tensor, cfg: &PpoConfig) -> [f64; 3] {
    cfg.host_loops
        .then(|| host::ratio_stats(logratio, ratio, cfg.clip_coef))
        .flatten()
        .unwrap_or_else(|| tensor_ratio_stats(logratio, ratio, cfg.clip_coef))
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
