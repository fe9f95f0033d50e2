//! The PPO loss on one shard of a minibatch, as CleanRL writes it: the clipped surrogate, the
//! entropy bonus and the (clipped) value loss, each the mean over the shard's samples and
//! backpropagated times the shard's share of the minibatch, so that the shards' gradients add
//! up to the minibatch's. The advantages arrive normalised over the whole minibatch. A
//! categorical policy on the CPU takes the actor's half, and its gradient in the logits, from
//! the host loops of [`crate::ppo::host`], which compute the same formulas
//! (`ppo.host_loops = false`: libtorch's operations throughout).

use std::time::Instant;

use tch::{Kind, Tensor};
use wormnet_ncp::Tape;

use super::batch::Minibatch;
use crate::policy::{Evaluation, Policy};
use crate::ppo::config::PpoConfig;
use crate::ppo::host::{self, categorical};

/// The actor's half of the loss on one shard, and the ratio's statistics (means over it).
#[derive(Clone, Debug, Default)]
pub(super) struct ActorTerms {
    /// `pg_loss − ent_coef · entropy`.
    pub loss: f64,
    pub pg_loss: f64,
    pub entropy: f64,
    pub old_approx_kl: f64,
    pub approx_kl: f64,
    pub clipfrac: f64,
    /// `max |ratio − 1|`, where asked for (the update's first minibatch).
    pub max_ratio_deviation: Option<f64>,
}

/// Where one shard's time went, in seconds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ShardTimes {
    /// The actor's forward (and the encoder's).
    pub actor: f64,
    /// The critic's values, the value loss and its backward.
    pub critic: f64,
    /// The actor's loss and statistics.
    pub loss: f64,
    /// The actor's backward (autograd and the kernels').
    pub backward: f64,
}

/// Which half of the loss a shard's thread runs: both, or one where a minibatch's actor and
/// critic run on two threads ([`Policy::halves_apart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Half {
    /// The actor's and the critic's.
    Both,
    /// The actor's alone.
    Actor,
    /// The critic's alone.
    Critic,
}

/// What one shard's replay left in its policy's gradients, and its losses.
pub(super) struct ShardLoss {
    /// The actor's terms, where it ran the actor's half.
    pub actor: Option<ActorTerms>,
    /// The value loss (before `vf_coef`), where it ran the critic's half.
    pub value_loss: Option<f64>,
    /// The shard's share of the minibatch's samples.
    pub weight: f64,
    /// Where its time went.
    pub times: ShardTimes,
}

/// Replays the shard `mb` on `policy` and backpropagates `weight` times its loss
/// `pg_loss − ent_coef · entropy + vf_coef · v_loss` (or `half` of it) into the policy's
/// gradients, each half of the replay its own terms (see `Policy::replay`). `first`: the
/// update's first minibatch, whose ratios are 1 up to rounding.
pub(super) fn shard_backward(
    policy: &Policy,
    mb: &Minibatch,
    cfg: &PpoConfig,
    (weight, half): (f64, Half),
    first: bool,
) -> ShardLoss {
    let mut times = ShardTimes::default();
    let batch = mb.replay();
    let critic_side = value_loss(mb, cfg, weight);
    let mut actor_side =
        |ev: Evaluation, tape: Tape| actor_loss(ev, tape, mb, cfg, (weight, first), &mut times);
    let (actor, value_loss) = match half {
        Half::Both => {
            let r = policy.replay(&batch, critic_side, &mut actor_side);
            (times.actor, times.critic) = (r.actor_seconds, r.critic_seconds);
            (Some(r.actor), Some(r.critic))
        }
        Half::Actor => {
            let r = policy.replay_actor(&batch, &mut actor_side);
            let (actor, seconds) = r.expect("the actor's half runs alone only where it may");
            times.actor = seconds;
            (Some(actor), None)
        }
        Half::Critic => {
            let r = policy.replay_critic(&batch, critic_side);
            let (value, seconds) = r.expect("the critic's half runs alone only where it may");
            times.critic = seconds;
            (None, Some(value))
        }
    };
    ShardLoss {
        actor,
        value_loss,
        weight,
        times,
    }
}

/// The actor's terms — clipped surrogate and entropy bonus — and their backward pass, times
/// `weight`: from the host loops for a categorical policy on the CPU, else as libtorch
/// operations.
fn actor_loss(
    ev: Evaluation,
    tape: Tape,
    mb: &Minibatch,
    cfg: &PpoConfig,
    (weight, first): (f64, bool),
    times: &mut ShardTimes,
) -> ActorTerms {
    let started = Instant::now();
    let (terms, loss) = match host_categorical(&ev, mb, cfg) {
        Some(host) => host,
        None => tensor_actor_loss(&ev, mb, cfg, first),
    };
    times.loss += started.elapsed().as_secs_f64();
    let loss = if weight == 1.0 { loss } else { loss * weight };
    let started = Instant::now();
    tape.backward(&loss);
    times.backward += started.elapsed().as_secs_f64();
    terms
}

/// A categorical policy's actor terms from the host loops ([`categorical`]; ~40 libtorch
/// operations fewer), and the surrogate `Σ logits · ∂loss/∂logits` to backpropagate; `None`
/// where they do not apply or are turned off.
fn host_categorical(
    ev: &Evaluation,
    mb: &Minibatch,
    cfg: &PpoConfig,
) -> Option<(ActorTerms, Tensor)> {
    let Evaluation::Logits { logits, actions } = ev else {
        return None;
    };
    if !cfg.host_loops {
        return None;
    }
    let settings = categorical::LossSettings {
        clip_coef: cfg.clip_coef,
        ent_coef: cfg.ent_coef,
        // Normalised over the whole minibatch already.
        norm_adv: false,
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
    let pg_loss1 = -adv * &ratio;
    let pg_loss2 = -adv * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef);
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
/// `weight · vf_coef · v_loss` and returns `v_loss`.
fn value_loss<'a>(
    mb: &'a Minibatch,
    cfg: &PpoConfig,
    weight: f64,
) -> impl FnOnce(Tensor, Tape) -> f64 + 'a {
    let (returns, old_values) = (&mb.returns, &mb.old_values);
    let (clip_vloss, clip_coef, vf_coef) = (cfg.clip_vloss, cfg.clip_coef, cfg.vf_coef);
    move |value, tape| {
        let v_loss = if clip_vloss {
            let unclipped = (&value - returns).pow_tensor_scalar(2);
            let clipped = old_values + (&value - old_values).clamp(-clip_coef, clip_coef);
            let clipped = (clipped - returns).pow_tensor_scalar(2);
            unclipped.max_other(&clipped).mean(Kind::Float) * 0.5
        } else {
            (&value - returns).pow_tensor_scalar(2).mean(Kind::Float) * 0.5
        };
        tape.backward(&(&v_loss * (vf_coef * weight)));
        v_loss.double_value(&[])
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
