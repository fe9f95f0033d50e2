//! The data-parallel update: each minibatch's envs (whole sequences) are split into shards,
//! one per update thread. The trainer's thread runs the first shard on the policy itself;
//! each other shard runs on a thread kept for the run's lifetime, on a replica of the policy
//! that copies the policy's parameters before every minibatch. Each shard backpropagates its
//! share of the loss into its own gradients (its own kernel workspaces), and the replicas'
//! gradients are then added into the policy's in shard order — a fixed order, so the same
//! seed and thread count give the same bits — before the one Adam step.

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use tch::Tensor;
use wormnet_ncp::kernels::LANES;
use wormnet_sim::vec_env::recv_spinning;

use super::batch::Minibatch;
use super::loss::{shard_backward, Half, ShardLoss};
use crate::policy::Policy;
use crate::ppo::config::PpoConfig;

/// How long a shard thread, and the trainer's thread waiting for it, poll before sleeping:
/// longer than the gap between two minibatches (the Adam step and the next minibatch's
/// selection, ~100 µs on cartpole), so no minibatch pays a wake-up; far shorter than a
/// rollout, so a shard thread sleeps while the envs step.
const POLL: Duration = Duration::from_micros(300);

/// A job for a shard thread: runs on its replica and that replica's parameters.
type Job = Box<dyn FnOnce(&Policy, &[Tensor]) + Send>;

/// The update's threads beyond the trainer's own, each with its replica of the policy.
#[derive(Default)]
pub struct Shards {
    workers: Vec<Sender<Job>>,
}

/// What a shard thread sends back: its losses and its replica's gradients.
type ShardResult = thread::Result<(ShardLoss, Vec<Tensor>)>;

impl Shards {
    /// No thread beyond the trainer's: every minibatch runs whole on it.
    pub fn none() -> Self {
        Self::default()
    }

    /// One thread per replica (each built like the policy, e.g. `Policy::new` with the same
    /// spec and config; their weights are overwritten before every use).
    pub fn spawn(replicas: Vec<Policy>) -> Result<Self> {
        let mut workers = Vec::with_capacity(replicas.len());
        for (k, replica) in replicas.into_iter().enumerate() {
            let (jobs, queue) = unbounded::<Job>();
            thread::Builder::new()
                .name(format!("wormnet-shard-{}", k + 1))
                .spawn(move || {
                    tch::set_num_threads(1);
                    let params: Vec<Tensor> =
                        replica.parameters().into_iter().map(|(_, t)| t).collect();
                    while let Ok(job) = recv_spinning(&queue, POLL) {
                        job(&replica, &params);
                    }
                })
                .context("could not start an update shard's thread")?;
            workers.push(jobs);
        }
        Ok(Shards { workers })
    }

    /// Threads a minibatch is split over (the trainer's included).
    pub fn count(&self) -> usize {
        self.workers.len() + 1
    }

    /// How a minibatch of `envs` envs is laid out on the threads: `(env shards, halves
    /// apart)`. Under [`LANES`] envs the kernels run sample by sample, their cost in
    /// proportion to the envs: every thread takes a shard of them. From `LANES` envs up they
    /// run `LANES` samples at once, and a smaller shard saves far less than its share (16
    /// cartpole envs on 2 threads: 1.2× by envs, 1.5× by halves); there, where the policy's
    /// halves need nothing of each other (`apart`), each shard takes two threads, the actor's
    /// half on one and the critic's on the other.
    pub(super) fn layout(&self, envs: usize, apart: bool) -> (usize, bool) {
        let threads = self.count();
        if threads >= 2 && apart && envs >= LANES {
            ((threads / 2).min(envs / LANES).max(1), true)
        } else {
            (threads.min(envs).max(1), false)
        }
    }

    /// Runs the tasks `parts` (each a minibatch of some envs, its share of the samples and the
    /// half of the loss to run): the first on `policy` here, the others on the shard threads;
    /// then adds the replicas' gradients into `params`' (the policy's, in
    /// `Policy::parameters` order) in task order. Returns each task's losses and the seconds
    /// this thread waited for the others.
    pub(super) fn backward(
        &self,
        policy: &Policy,
        params: &[Tensor],
        parts: Vec<(Minibatch, f64, Half)>,
        cfg: &PpoConfig,
        first: bool,
    ) -> Result<(Vec<ShardLoss>, f64)> {
        let mut parts = parts.into_iter();
        let Some((own, own_weight, own_half)) = parts.next() else {
            return Ok((Vec::new(), 0.0));
        };
        let running: Vec<Receiver<ShardResult>> = parts
            .zip(&self.workers)
            .map(|((mb, weight, half), jobs)| {
                let from: Vec<Tensor> = params.iter().map(Tensor::shallow_clone).collect();
                start(jobs, mb, (weight, half), from, cfg.clone(), first)
            })
            .collect();
        let own = shard_backward(policy, &own, cfg, (own_weight, own_half), first);
        let mut losses = vec![own];
        let waited = Instant::now();
        let mut results = Vec::with_capacity(running.len());
        for reply in running {
            results.push(recv_spinning(&reply, POLL));
        }
        let wait = waited.elapsed().as_secs_f64();
        for result in results {
            match result {
                Ok(Ok((loss, grads))) => {
                    add_gradients(params, &grads);
                    losses.push(loss);
                }
                Ok(Err(panic)) => panic::resume_unwind(panic),
                Err(_) => return Err(anyhow!("an update shard's thread stopped")),
            }
        }
        Ok((losses, wait))
    }
}

/// Sends one shard to a shard thread: it copies `from` (the policy's parameters) into its
/// replica, zeroes the replica's gradients, runs the shard and sends back its losses and
/// gradients.
fn start(
    jobs: &Sender<Job>,
    mb: Minibatch,
    task: (f64, Half),
    from: Vec<Tensor>,
    cfg: PpoConfig,
    first: bool,
) -> Receiver<ShardResult> {
    let (done, reply) = bounded(1);
    let job: Job = Box::new(move |replica, params| {
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            tch::no_grad(|| {
                for (p, v) in params.iter().zip(&from) {
                    p.shallow_clone().copy_(v);
                    p.shallow_clone().zero_grad();
                }
            });
            let loss = shard_backward(replica, &mb, &cfg, task, first);
            (loss, params.iter().map(Tensor::grad).collect())
        }));
        let _ = done.send(result);
    });
    // A thread that has stopped drops the job and with it `done`: the caller sees the reply
    // channel disconnected.
    let _ = jobs.send(job);
    reply
}

/// Adds each replica gradient into its parameter's `.grad` (in place where one exists, which
/// keeps the optimizer's flat gradient buffer bound).
fn add_gradients(params: &[Tensor], grads: &[Tensor]) {
    for (p, g) in params.iter().zip(grads) {
        if !g.defined() {
            continue;
        }
        let mut existing = p.grad();
        if existing.defined() {
            tch::no_grad(|| {
                let _ = existing.g_add_(g);
            });
        } else {
            // `Σ p · g` has exactly `g` as its gradient: it creates the `.grad`.
            (p * g.detach()).sum(tch::Kind::Float).backward();
        }
    }
}
