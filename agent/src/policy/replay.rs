//! The replay of a rollout in the PPO update, in two halves: the actor's (log-probabilities
//! and entropies, or a categorical policy's logits, through the NCP) and the critic's
//! (values). The halves share no parameter, so each backpropagates its own part of the loss.
//! When the critic is an MLP on the raw
//! observation, the policy runs on the CPU and may use two threads (`run.update_threads`),
//! the critic's half runs on a second thread beside the actor's: the update uses both cores
//! while the env workers sleep.
//!
//! Two backward passes give the gradients of one, to the bit: each parameter receives the
//! same terms from the same operations (the loss's `+` passes its gradient through
//! unchanged), and where both halves reach one tensor (an encoder's output) there are two
//! terms, whose sum does not depend on their order.

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use tch::{Kind, Tensor};
use wormnet_ncp::Tape;
use wormnet_sim::vec_env::recv_spinning;

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
    /// Whether the critic's half ran on its own thread, beside the actor's.
    pub critic_beside: bool,
    /// Seconds the actor's thread then waited for the critic's half.
    pub wait_seconds: f64,
}

impl Policy {
    /// Replays `batch` exactly as the rollout ran it and hands each half its differentiable
    /// result: `critic_side` gets the values `(B, T)`, `actor_side` an [`Evaluation`], each
    /// with the [`Tape`] to backpropagate its loss with (`Tape::backward` also runs the
    /// kernels' backward passes). With an MLP critic, no encoder and the CPU
    /// (a GPU queues both halves' work in one stream anyway) the critic's half runs on the
    /// policy's critic thread (with [`Policy::set_update_threads`] at 2); else it runs first,
    /// on this one. Fails only when the system refuses that thread.
    pub fn replay<A, C: Send + 'static>(
        &self,
        batch: &ReplayBatch,
        critic_side: impl FnOnce(Tensor, Tape) -> C + Send + 'static,
        actor_side: impl FnOnce(Evaluation, Tape) -> A,
    ) -> Result<Replayed<A, C>> {
        let ts = self.timespans(&batch.obs.size()[..2]);
        let beside = self.critic_beside && self.device() == tch::Device::Cpu;
        if let (Critic::Mlp(mlp), None, true) = (&self.critic, &self.encoder, beside) {
            let mlp = mlp.shallow_clone();
            let (obs, actor_h) = (batch.obs.shallow_clone(), batch.actor_h.shallow_clone());
            let critic = self.critic_thread()?.start(move || {
                let started = Instant::now();
                let value = mlp.value(&obs, &actor_h);
                let result = critic_side(value, Tape::default());
                (result, started.elapsed().as_secs_f64())
            });
            let (actor, actor_seconds) = self.actor_half(batch, &ts, None, actor_side);
            let waited = Instant::now();
            let (critic, critic_seconds) = critic.finish();
            return Ok(Replayed {
                actor,
                critic,
                actor_seconds,
                critic_seconds,
                critic_beside: true,
                wait_seconds: waited.elapsed().as_secs_f64(),
            });
        }
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
        Ok(Replayed {
            actor,
            critic,
            actor_seconds: encoder_seconds + actor_seconds,
            critic_seconds,
            critic_beside: false,
            wait_seconds: 0.0,
        })
    }

    /// Threads a replay may use: at 2 an MLP critic's half runs on a thread of its own. A new
    /// policy uses 1; a training sets `run.update_threads` (2 unless configured). Results are
    /// the same to the bit either way.
    pub fn set_update_threads(&mut self, threads: usize) {
        self.critic_beside = threads >= 2;
    }

    /// The policy's critic thread, started on first use.
    fn critic_thread(&self) -> Result<&CriticThread> {
        if let Some(t) = self.critic_thread.get() {
            return Ok(t);
        }
        let t = CriticThread::spawn()?;
        Ok(self.critic_thread.get_or_init(|| t))
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

/// A job for the critic thread.
type Job = Box<dyn FnOnce() + Send>;

/// How long the critic thread, and the actor's thread waiting for its result, poll before
/// they sleep: longer than the gap between two minibatches' critic halves (~150 µs on
/// cartpole: the optimizer step and the next minibatch's selection), so neither pays a
/// wake-up in an update.
const POLL: Duration = Duration::from_micros(500);

/// A thread kept for the policy's lifetime that runs the critic's half of each replay. A
/// thread per replay would cost its start (and libtorch's per-thread set-up) every minibatch.
pub(super) struct CriticThread {
    jobs: Sender<Job>,
}

impl CriticThread {
    /// Starts the thread; it ends when the policy (the sender) is dropped. It runs libtorch
    /// with the caller's intra-op thread count (libtorch keeps part of that setting per thread).
    fn spawn() -> Result<Self> {
        let (jobs, queue) = unbounded::<Job>();
        let threads = tch::get_num_threads();
        thread::Builder::new()
            .name("wormnet-critic".into())
            .spawn(move || {
                tch::set_num_threads(threads);
                while let Ok(job) = recv_spinning(&queue, POLL) {
                    job();
                }
            })
            .context("could not start the critic's thread")?;
        Ok(CriticThread { jobs })
    }

    /// Runs `job` on the thread; [`Running::finish`] waits for its result.
    fn start<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> Running<R> {
        let (done, result) = bounded(1);
        let job = move || {
            // A panic goes back to the caller's thread, which resumes it there.
            let _ = done.send(panic::catch_unwind(AssertUnwindSafe(job)));
        };
        // The thread lives as long as `self`, so it is there to receive.
        let _ = self.jobs.send(Box::new(job));
        Running {
            result: Some(result),
        }
    }
}

/// A job running on the critic thread. Dropped unfinished (the actor's half panicked), it
/// still waits for the job, which writes into the gradients.
struct Running<R> {
    result: Option<Receiver<thread::Result<R>>>,
}

impl<R> Running<R> {
    /// Waits for the job and returns its result, or resumes its panic on this thread.
    fn finish(mut self) -> R {
        let result = self.result.take().map(|r| recv_spinning(&r, POLL));
        match result {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(panic))) => panic::resume_unwind(panic),
            _ => unreachable!("the critic thread runs every job it receives to the end"),
        }
    }
}

impl<R> Drop for Running<R> {
    fn drop(&mut self) {
        if let Some(result) = self.result.take() {
            let _ = recv_spinning(&result, POLL);
        }
    }
}
