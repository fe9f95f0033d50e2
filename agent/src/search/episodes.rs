//! Scoring a circuit on all cores: the episodes of a scoring are split into contiguous shares,
//! one per thread; each thread keeps, for the whole run, a replica of the policy and its own
//! envs (built on that thread), writes the values it is sent into its replica and runs its
//! share side by side, dropping finished episodes from the batch. The trainer's thread runs the
//! first share itself. An episode's return depends only on the values and its seed, and the
//! shares are fixed by the thread count, so the same seed and threads give the same bits.

use std::sync::Arc;
use std::thread;

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use tch::Tensor;
use wormnet_ncp::State;
use wormnet_sim::{EnvFactory, EpisodeDriver};

use super::space::SearchSpace;
use crate::policy::Policy;

/// One finished episode: its return, length and success (where the env defines it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode {
    /// Undiscounted return.
    pub ret: f64,
    /// Steps.
    pub length: u32,
    /// The env's verdict, if it judges success.
    pub success: Option<bool>,
}

/// A scoring job: the values to act with and the seeds of this thread's episodes.
type Job = (Arc<Vec<f32>>, Vec<u64>);
/// What a thread sends back: its episodes in seed order, or why it could not run them.
type Reply = Result<Vec<Episode>, String>;

/// A thread's replica, envs and the space it writes values into.
struct Worker {
    policy: Policy,
    space: SearchSpace,
    factory: EnvFactory,
    envs: Vec<EpisodeDriver>,
}

impl Worker {
    /// Runs one deterministic episode per seed with `values`, side by side.
    fn run(&mut self, values: &[f32], seeds: &[u64]) -> Result<Vec<Episode>> {
        self.space.write(&self.policy, values);
        while self.envs.len() < seeds.len() {
            let env = self.factory.build().context("building a search env")?;
            self.envs.push(EpisodeDriver::new(env, self.envs.len()));
        }
        let (obs_dim, act_dim) = (self.policy.obs_dim(), self.policy.action_dim());
        let mut obs = vec![0.0f32; seeds.len() * obs_dim];
        for (i, &seed) in seeds.iter().enumerate() {
            self.envs[i].reset(Some(seed), &mut obs[i * obs_dim..(i + 1) * obs_dim])?;
        }
        let mut done: Vec<Option<Episode>> = vec![None; seeds.len()];
        let mut active: Vec<usize> = (0..seeds.len()).collect();
        let device = self.policy.device();
        let mut state = self.policy.actor.initial_state(seeds.len() as i64, device);
        let mut actions = vec![0.0f32; seeds.len() * act_dim];
        while !active.is_empty() {
            let mut input: Vec<f32> = active
                .iter()
                .flat_map(|&i| obs[i * obs_dim..(i + 1) * obs_dim].iter().copied())
                .collect();
            self.policy.normalize(&mut input);
            let x = Tensor::from_slice(&input)
                .reshape([active.len() as i64, obs_dim as i64])
                .to_device(device);
            let (action, next) = self.policy.act_mode(&x, &state);
            let actions = &mut actions[..active.len() * act_dim];
            self.policy.env_actions(&action, actions);
            let mut keep = Vec::with_capacity(active.len());
            for (row, &i) in active.iter().enumerate() {
                let out = &mut obs[i * obs_dim..(i + 1) * obs_dim];
                let t = self.envs[i].step(&actions[row * act_dim..(row + 1) * act_dim], out)?;
                match t.episode {
                    Some(ep) => {
                        done[i] = Some(Episode {
                            ret: ep.episode_return,
                            length: ep.length,
                            success: ep.success,
                        })
                    }
                    None => keep.push(row as i64),
                }
            }
            state = if keep.len() == active.len() {
                next
            } else {
                select(&next, &Tensor::from_slice(&keep).to_device(device))
            };
            active = keep.iter().map(|&r| active[r as usize]).collect();
        }
        Ok(done.into_iter().flatten().collect())
    }
}

/// Rows `index` of an actor state.
fn select(state: &State, index: &Tensor) -> State {
    State {
        h: state.h.index_select(0, index),
        c: state.c.as_ref().map(|c| c.index_select(0, index)),
    }
}

/// The trainer's worker and the other threads' job queues.
pub struct Scorer {
    own: Worker,
    others: Vec<(Sender<Job>, Receiver<Reply>)>,
}

impl Scorer {
    /// A scorer over `replicas.len() + 1` threads: the trainer's (acting with `policy`) and one
    /// per replica (each built like the policy; its values are overwritten before every use).
    pub fn new(
        policy: Policy,
        replicas: Vec<Policy>,
        space: &SearchSpace,
        factory: &EnvFactory,
    ) -> Result<Self> {
        let mut others = Vec::with_capacity(replicas.len());
        for (k, policy) in replicas.into_iter().enumerate() {
            let (jobs, queue) = bounded::<Job>(1);
            let (reply, replies) = bounded::<Reply>(1);
            let (space, factory) = (space.clone(), factory.clone());
            thread::Builder::new()
                .name(format!("wormnet-search-{}", k + 1))
                .spawn(move || {
                    tch::set_num_threads(1);
                    let mut worker = Worker {
                        policy,
                        space,
                        factory,
                        envs: Vec::new(),
                    };
                    while let Ok((values, seeds)) = queue.recv() {
                        let result = worker.run(&values, &seeds).map_err(|e| format!("{e:#}"));
                        if reply.send(result).is_err() {
                            break;
                        }
                    }
                })
                .context("could not start a search thread")?;
            others.push((jobs, replies));
        }
        let own = Worker {
            policy,
            space: space.clone(),
            factory: factory.clone(),
            envs: Vec::new(),
        };
        Ok(Scorer { own, others })
    }

    /// Threads scoring (the trainer's included).
    pub fn threads(&self) -> usize {
        self.others.len() + 1
    }

    /// One deterministic episode per seed with `values`, in seed order.
    pub fn run(&mut self, values: &[f32], seeds: &[u64]) -> Result<Vec<Episode>> {
        let shares = shares(seeds.len(), self.threads());
        let shared = Arc::new(values.to_vec());
        for ((jobs, _), range) in self.others.iter().zip(&shares[1..]) {
            jobs.send((shared.clone(), seeds[range.clone()].to_vec()))
                .map_err(|_| anyhow!("a search thread stopped"))?;
        }
        let mut episodes = self.own.run(values, &seeds[shares[0].clone()])?;
        for (_, replies) in &self.others[..shares.len() - 1] {
            let reply = replies
                .recv()
                .map_err(|_| anyhow!("a search thread stopped"))?;
            episodes.extend(reply.map_err(|e| anyhow!(e))?);
        }
        Ok(episodes)
    }

    /// The policy the trainer's thread acts with.
    pub fn policy(&self) -> &Policy {
        &self.own.policy
    }
}

/// `n` episodes as contiguous shares over at most `threads` threads (none empty, the first
/// ones a larger by one where it does not divide).
fn shares(n: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let t = threads.clamp(1, n.max(1));
    let mut start = 0;
    (0..t)
        .map(|i| {
            let len = n / t + usize::from(i < n % t);
            start += len;
            start - len..start
        })
        .collect()
}

/// The mean of the `worst` lowest returns (all of them when there are fewer).
pub fn worst_mean(returns: &[f64], worst: usize) -> f64 {
    let mut sorted = returns.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = worst.clamp(1, sorted.len().max(1)).min(sorted.len());
    if k == 0 {
        return f64::NAN;
    }
    sorted[..k].iter().sum::<f64>() / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_mean_of_the_worst_returns() {
        assert_eq!(worst_mean(&[5.0, 1.0, 3.0, 10.0], 2), 2.0);
        assert_eq!(worst_mean(&[5.0, 1.0], 8), 3.0);
        assert!(worst_mean(&[], 2).is_nan());
    }
}
