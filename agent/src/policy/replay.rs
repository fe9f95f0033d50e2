//! The replay of a rollout in the PPO update, in two halves: the actor's (log-probabilities
//! and entropies, or a categorical policy's logits, through the NCP) and the critic's
//! (values). The halves share no parameter, so each backpropagates its own part of the loss.
//! Several threads replay a minibatch by shards of its envs, each on a replica of the
//! policy (`ppo::update`).
//!
//! Two backward passes give the gradients of one, to the bit: each parameter receives the
//! same terms from the same operations (the loss's `+` passes its gradient through
//! unchanged), and where both halves reach one tensor (an encoder's output) there are two
//! terms, whose sum does not depend on their order.

use std::time::Instant;

use tch::{Kind, Tensor};
use wormnet_ncp::Tape;

use super::{ActionKind, Critic, Policy, PolicyState};

/// The minibatch a replay runs on.
pub struct ReplayBatch<'a> {
    /// Observations `(B, T, O)`, normalised as during the rollout.
    pub obs: &'a Tensor,
    /// The actions taken, `(B, T, A)`.
    pub actions: &'a Tensor,
    /// Where an episode starts, `(B, T)`: the state is reset there, as in the rollout.
    pub starts: &'a Tensor,
    /// The state at the rollout's start.
    pub state0: &'a PolicyState,
    /// The actor's neuron states recorded in the rollout, `(B, T, S)`: the MLP critic reads
    /// them instead of a replay.
    pub actor_h: &'a Tensor,
}

/// The actor's half of a replay, differentiable: the distribution's log-probabilities and
/// entropies, or for a categorical policy its logits, from which a loss on the host takes both
/// (see `ppo::categorical`).
pub enum Evaluation {
    /// Log-probabilities of the taken actions and entropies of the distributions, `(B, T)`.
    Tensors {
        /// Log-probabilities of the taken actions.
        logp: Tensor,
        /// Entropies of the action distributions.
        entropy: Tensor,
    },
    /// A categorical policy's logits `(B, T, n)` and the taken actions' indices (as floats,
    /// `(B, T, 1)`).
    Logits {
        /// The network's output: one logit per action.
        logits: Tensor,
        /// The actions taken in the rollout.
        actions: Tensor,
    },
}

impl Evaluation {
    /// The log-probabilities and entropies `(B, T)` as differentiable tensors (for logits:
    /// log-softmax, the taken actions' entries, `−Σ p log p`).
    pub fn tensors(&self) -> (Tensor, Tensor) {
        match self {
            Evaluation::Tensors { logp, entropy } => {
                (logp.shallow_clone(), entropy.shallow_clone())
            }
            Evaluation::Logits { logits, actions } => {
                let log_softmax = logits.log_softmax(-1, Kind::Float);
                let index = actions.to_kind(Kind::Int64);
                let logp = log_softmax.gather(2, &index, false).squeeze_dim(2);
                let entropy =
                    -(log_softmax.exp() * &log_softmax).sum_dim_intlist(-1, false, Kind::Float);
                (logp, entropy)
            }
        }
    }
}

/// What the two halves of [`Policy::replay`] returned, and their times.
pub struct Replayed<A, C> {
    /// The actor's half's result.
    pub actor: A,
    /// The critic's half's result.
    pub critic: C,
    /// Seconds of the actor's forward (and the encoder's), up to its [`Evaluation`].
    pub actor_seconds: f64,
    /// Seconds of the critic's whole half: its values, then what `critic_side` did with them.
    pub critic_seconds: f64,
}

impl Policy {
    /// Replays `batch` exactly as the rollout ran it and hands each half its differentiable
    /// result: `critic_side` gets the values `(B, T)`, `actor_side` an [`Evaluation`], each
    /// with the [`Tape`] to backpropagate its loss with (`Tape::backward` also runs the
    /// kernels' backward passes). The critic's half runs first.
    pub fn replay<A, C>(
        &self,
        batch: &ReplayBatch,
        critic_side: impl FnOnce(Tensor, Tape) -> C,
        actor_side: impl FnOnce(Evaluation, Tape) -> A,
    ) -> Replayed<A, C> {
        let ts = self.timespans(&batch.obs.size()[..2]);
        let encoder_started = Instant::now();
        let encoded = self.encode_detached(batch.obs);
        let encoder_seconds = encoder_started.elapsed().as_secs_f64();
        let critic_started = Instant::now();
        let obs = encoded.as_ref().map_or(batch.obs, |(leaf, _)| leaf);
        let (value, tape) = match &self.critic {
            Critic::Mlp(mlp) => (mlp.value(obs, batch.actor_h), Tape::default()),
            Critic::Ncp(net) => {
                let cs = batch
                    .state0
                    .critic
                    .as_ref()
                    .expect("NCP critic without critic state");
                let (v, _, tape) =
                    net.forward_sequence_train(obs, Some(cs), Some(&ts), Some(batch.starts));
                (v.select(-1, 0), tape)
            }
        };
        let critic = critic_side(value, tape);
        let critic_seconds = critic_started.elapsed().as_secs_f64();
        let (actor, actor_seconds) = self.actor_half(batch, &ts, encoded.as_ref(), actor_side);
        Replayed {
            actor,
            critic,
            actor_seconds: encoder_seconds + actor_seconds,
            critic_seconds,
        }
    }

    /// Whether the two halves of a replay need nothing of each other, so that they may run on
    /// two threads ([`Policy::replay_critic`], [`Policy::replay_actor`]): an MLP critic reads
    /// the observations and the actor states the rollout recorded; an encoder would feed both.
    pub fn halves_apart(&self) -> bool {
        matches!((&self.critic, &self.encoder), (Critic::Mlp(_), None))
    }

    /// The critic's half of [`Policy::replay`] alone, and its seconds; `None` unless
    /// [`Policy::halves_apart`].
    pub fn replay_critic<C>(
        &self,
        batch: &ReplayBatch,
        critic_side: impl FnOnce(Tensor, Tape) -> C,
    ) -> Option<(C, f64)> {
        let (Critic::Mlp(mlp), None) = (&self.critic, &self.encoder) else {
            return None;
        };
        let started = Instant::now();
        let critic = critic_side(mlp.value(batch.obs, batch.actor_h), Tape::default());
        Some((critic, started.elapsed().as_secs_f64()))
    }

    /// The actor's half of [`Policy::replay`] alone, and its seconds; `None` unless
    /// [`Policy::halves_apart`].
    pub fn replay_actor<A>(
        &self,
        batch: &ReplayBatch,
        actor_side: impl FnOnce(Evaluation, Tape) -> A,
    ) -> Option<(A, f64)> {
        if !self.halves_apart() {
            return None;
        }
        let ts = self.timespans(&batch.obs.size()[..2]);
        Some(self.actor_half(batch, &ts, None, actor_side))
    }

    /// The actor's replay from `encoded` (the encoder's detached leaf and its features) or the
    /// observations, handed to `actor_side`; also the seconds of the forward (a continuous
    /// policy's log-probabilities and entropies included).
    fn actor_half<A>(
        &self,
        batch: &ReplayBatch,
        ts: &Tensor,
        encoded: Option<&(Tensor, Tensor)>,
        actor_side: impl FnOnce(Evaluation, Tape) -> A,
    ) -> (A, f64) {
        let started = Instant::now();
        let obs = encoded.map_or(batch.obs, |(leaf, _)| leaf);
        let state0 = Some(&batch.state0.actor);
        let (out, _, mut tape) =
            self.actor
                .forward_sequence_train(obs, state0, Some(ts), Some(batch.starts));
        if let Some((leaf, features)) = encoded {
            tape = tape.with_upstream(leaf, features);
        }
        let evaluation = match &self.action {
            ActionKind::Continuous { .. } => {
                let logp = self.gaussian_logp(&out, batch.actions);
                let per_dim = 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + self.log_std();
                let entropy = per_dim.sum(Kind::Float).expand_as(&logp);
                Evaluation::Tensors { logp, entropy }
            }
            ActionKind::Discrete { .. } => Evaluation::Logits {
                logits: out,
                actions: batch.actions.shallow_clone(),
            },
        };
        let seconds = started.elapsed().as_secs_f64();
        (actor_side(evaluation, tape), seconds)
    }
}
