//! N envs stepped in parallel by W worker threads, writing into preallocated batch buffers:
//! the trainer's view of the world.
//!
//! Each worker thread *builds* its share of envs from an [`EnvFactory`] (so `!Send` Bevy apps
//! work), then serves commands over a crossbeam channel. A command carries the worker's chunk
//! of buffers (moved, never reallocated) and comes back filled; the main thread copies the
//! chunks into contiguous `[N, obs_dim]` buffers.
//!
//! A worker owns its share as one [`EpisodeDriver`](crate::episode::EpisodeDriver) per env. A
//! Bevy env's envs share `App`s, [`VecEnvConfig::envs_per_app`] to an `App` (one world each);
//! nothing else in the `VecEnv` depends on it, and neither do the episodes.

mod error;
mod worker;

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::env::{EnvError, EnvSpec};
use crate::episode::EpisodeStats;
use crate::registry::EnvFactory;
pub use error::VecEnvError;
pub(crate) use worker::build_drivers;
pub use worker::recv_spinning;
use worker::{recv_within, worker_main, Chunk, Command, Reply};

/// How many envs, on how many threads, and how workers wait.
#[derive(Clone, Debug)]
pub struct VecEnvConfig {
    /// Number of envs N.
    pub num_envs: usize,
    /// Number of worker threads W (capped at N); envs are split into contiguous shares.
    pub workers: usize,
    /// Envs per Bevy `App` K within a worker's share (one world each, see
    /// [`BevyEnv::group`](crate::bevy_env::BevyEnv::group)); 1 gives every env an `App` of its
    /// own (so does 0). Episodes are the same bit for bit whatever K is; envs that are not Bevy
    /// envs ignore it.
    pub envs_per_app: usize,
    /// How long a waiting thread polls its channel (yielding its core) before sleeping: polls
    /// avoid the wake-up latency that dominates small envs; zero always sleeps at once. The
    /// default, 500 µs, outlasts a policy step (120–180 µs for the vehicle's 8 envs), so during a
    /// rollout neither side falls asleep between steps.
    pub spin: Duration,
    /// Longest wait for a worker's answer to `reset`/`step` before the VecEnv gives up with
    /// [`VecEnvError::WorkerTimeout`] instead of hanging on an env stuck in a loop. `None`
    /// waits forever.
    pub step_timeout: Option<Duration>,
}

impl VecEnvConfig {
    /// `num_envs` envs on `workers` threads with the default spin.
    pub fn new(num_envs: usize, workers: usize) -> Self {
        VecEnvConfig {
            num_envs,
            workers,
            envs_per_app: 1,
            spin: Duration::from_micros(500),
            step_timeout: Some(Duration::from_secs(60)),
        }
    }
}

struct Worker {
    commands: Option<Sender<Command>>,
    replies: Receiver<Reply>,
    handle: Option<JoinHandle<()>>,
    first: usize,
    len: usize,
    chunk: Option<Box<Chunk>>,
}

/// N envs behind one batched `reset`/`step`, with SAME_STEP auto-reset and episode statistics.
///
/// ```text
/// let mut envs = VecEnv::new(registry.factory("cartpole", options)?, VecEnvConfig::new(16, 2))?;
/// envs.reset(Some(seed))?;                 // obs in envs.observations(), [N * obs_dim]
/// loop {
///     let out = envs.step(&actions)?;      // actions: [N * action_dim]
///     out.obs; out.rewards; out.terminated; out.truncated;
///     out.final_observation(i);            // Some(obs before the reset) where env i finished
///     out.episodes;                        // return/length of episodes that ended this step
/// }
/// ```
pub struct VecEnv {
    spec: EnvSpec,
    num_envs: usize,
    spin: Duration,
    step_timeout: Option<Duration>,
    workers: Vec<Worker>,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    episodes: Vec<EpisodeStats>,
    is_reset: bool,
    envs_per_app: usize,
}

/// Borrowed results of one [`VecEnv::step`].
#[derive(Clone, Copy, Debug)]
pub struct StepView<'a> {
    /// Observations after the step, `[N * obs_dim]`; for a finished env, the new episode's first.
    pub obs: &'a [f32],
    /// Rewards, `[N]`.
    pub rewards: &'a [f32],
    /// Terminated flags, `[N]` (no bootstrap).
    pub terminated: &'a [bool],
    /// Truncated flags, `[N]` (bootstrap from the final observation). As with Gymnasium's
    /// `TimeLimit`, both flags are set when the limit falls on a terminal step: terminated wins.
    pub truncated: &'a [bool],
    /// `[N * obs_dim]`; rows of finished envs hold their episode's last observation, other rows
    /// are stale.
    pub final_obs: &'a [f32],
    /// Episodes that ended this step.
    pub episodes: &'a [EpisodeStats],
}

impl<'a> StepView<'a> {
    /// Whether env `i` finished an episode this step.
    pub fn done(&self, i: usize) -> bool {
        self.terminated[i] || self.truncated[i]
    }

    /// Env `i`'s last observation before its auto-reset, if it finished this step.
    pub fn final_observation(&self, i: usize) -> Option<&'a [f32]> {
        if self.done(i) {
            let d = self.final_obs.len() / self.rewards.len();
            Some(&self.final_obs[i * d..(i + 1) * d])
        } else {
            None
        }
    }
}

impl VecEnv {
    /// Starts the workers, each building its envs on its own thread, and waits until all are
    /// built. Fails with the first env that could not be built.
    pub fn new(factory: EnvFactory, config: VecEnvConfig) -> Result<VecEnv, VecEnvError> {
        let name = factory.name().to_string();
        let shares_apps = factory.shares_apps();
        if config.num_envs == 0 || config.workers == 0 {
            return Err(VecEnvError::Config {
                env: name,
                num_envs: config.num_envs,
                workers: config.workers,
            });
        }
        let n = config.num_envs;
        let w = config.workers.min(n);
        let mut workers = Vec::with_capacity(w);
        for k in 0..w {
            // Contiguous shares whose sizes differ by at most one.
            let first = k * n / w;
            let len = (k + 1) * n / w - first;
            workers.push(Worker::spawn(k, first..first + len, &factory, &config)?);
        }
        let (spec, error) = agreed_spec(&mut workers, &name, config.step_timeout);
        let spec = match spec {
            Some(spec) if error.is_none() => spec,
            _ => {
                shutdown(&mut workers);
                return Err(error.unwrap_or(VecEnvError::WorkerDied {
                    env: name,
                    worker: 0,
                    first: 0,
                    last: n - 1,
                }));
            }
        };
        let (od, ad) = (spec.obs_dim(), spec.action_dim());
        for worker in &mut workers {
            worker.chunk = Some(Chunk::new(worker.len, od, ad));
        }
        let largest_share = workers.iter().map(|w| w.len).max().unwrap_or(1);
        let envs_per_app = if shares_apps {
            config.envs_per_app.clamp(1, largest_share)
        } else {
            1
        };
        let envs = VecEnv {
            spec,
            num_envs: n,
            spin: config.spin,
            step_timeout: config.step_timeout,
            workers,
            obs: vec![0.0; n * od],
            final_obs: vec![0.0; n * od],
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            episodes: Vec::with_capacity(n),
            is_reset: false,
            envs_per_app,
        };
        Ok(envs)
    }

    /// The envs' shared spec.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// N.
    pub fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Number of worker threads actually started.
    pub fn num_workers(&self) -> usize {
        self.workers.len()
    }

    /// The most envs sharing one Bevy `App`: K, at most a worker's share; 1 for an env that is
    /// not a Bevy env.
    pub fn envs_per_app(&self) -> usize {
        self.envs_per_app
    }

    /// Length of one observation row.
    pub fn obs_dim(&self) -> usize {
        self.spec.obs_dim()
    }

    /// Length of one action row.
    pub fn action_dim(&self) -> usize {
        self.spec.action_dim()
    }

    /// Current observations, `[N * obs_dim]`.
    pub fn observations(&self) -> &[f32] {
        &self.obs
    }

    /// The last step's outputs (valid after a successful `step`, or partially after a fault).
    pub fn last_step(&self) -> StepView<'_> {
        StepView {
            obs: &self.obs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_obs: &self.final_obs,
            episodes: &self.episodes,
        }
    }

    /// Resets every env. `Some(seed)` seeds env `i` with `seed + i` (wrapping), so a run is
    /// reproducible whatever the number of workers; `None` continues each env's RNG.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[f32], VecEnvError> {
        self.is_reset = false;
        self.round(|chunk| Command::Reset(chunk, seed))?;
        self.is_reset = true;
        Ok(&self.obs)
    }

    /// Steps every env with its row of `actions` (`[N * action_dim]`, kept unmodified);
    /// finished envs are reset in the same step (their last observation is in `final_obs`).
    ///
    /// On a fault, the error names each faulted env; the other envs' rows are still valid
    /// and the faulted envs stay unusable until the VecEnv is rebuilt.
    pub fn step(&mut self, actions: &[f32]) -> Result<StepView<'_>, VecEnvError> {
        if !self.is_reset {
            return Err(VecEnvError::NotReset {
                env: self.spec.name.clone(),
            });
        }
        let ad = self.spec.action_dim();
        let expected = self.num_envs * ad;
        if actions.len() != expected {
            return Err(VecEnvError::ActionBuffer {
                env: self.spec.name.clone(),
                index: (actions.len() / ad.max(1)).min(self.num_envs - 1),
                got: actions.len(),
                expected,
                num_envs: self.num_envs,
                action_dim: ad,
            });
        }
        for worker in &mut self.workers {
            if let Some(chunk) = worker.chunk.as_mut() {
                chunk
                    .actions
                    .copy_from_slice(&actions[worker.first * ad..(worker.first + worker.len) * ad]);
            }
        }
        self.round(Command::Step)?;
        Ok(self.last_step())
    }

    /// Sends every worker its chunk with one command, then gathers all chunks back.
    fn round(&mut self, command: impl Fn(Box<Chunk>) -> Command) -> Result<(), VecEnvError> {
        let od = self.spec.obs_dim();
        let mut died: Option<VecEnvError> = None;
        let mut sent = vec![false; self.workers.len()];
        for (k, worker) in self.workers.iter_mut().enumerate() {
            let (Some(chunk), Some(tx)) = (worker.chunk.take(), worker.commands.as_ref()) else {
                died.get_or_insert(worker_died(&self.spec.name, k, worker));
                continue;
            };
            match tx.send(command(chunk)) {
                Ok(()) => sent[k] = true,
                Err(_) => {
                    died.get_or_insert(worker_died(&self.spec.name, k, worker));
                }
            }
        }
        self.episodes.clear();
        let mut faults = Vec::new();
        for (k, worker) in self.workers.iter_mut().enumerate() {
            if !sent[k] {
                continue;
            }
            match recv_within(&worker.replies, self.spin, self.step_timeout) {
                Ok(Reply::Done(mut chunk)) => {
                    let (a, b) = (worker.first, worker.first + worker.len);
                    self.obs[a * od..b * od].copy_from_slice(&chunk.obs);
                    self.final_obs[a * od..b * od].copy_from_slice(&chunk.final_obs);
                    self.rewards[a..b].copy_from_slice(&chunk.rewards);
                    self.terminated[a..b].copy_from_slice(&chunk.terminated);
                    self.truncated[a..b].copy_from_slice(&chunk.truncated);
                    self.episodes.extend_from_slice(&chunk.episodes);
                    faults.append(&mut chunk.faults);
                    worker.chunk = Some(chunk);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Abandon the stuck thread: never join it (that would hang too).
                    worker.commands = None;
                    worker.handle = None;
                    died.get_or_insert(VecEnvError::WorkerTimeout {
                        env: self.spec.name.clone(),
                        worker: k,
                        first: worker.first,
                        last: worker.first + worker.len - 1,
                        seconds: self.step_timeout.unwrap_or_default().as_secs_f64(),
                    });
                }
                Ok(Reply::Ready(_)) | Err(RecvTimeoutError::Disconnected) => {
                    worker.commands = None;
                    died.get_or_insert(worker_died(&self.spec.name, k, worker));
                }
            }
        }
        if let Some(e) = died {
            return Err(e);
        }
        if !faults.is_empty() {
            faults.sort_by_key(|f| f.index);
            return Err(VecEnvError::Faults(faults));
        }
        Ok(())
    }
}

fn worker_died(env: &str, k: usize, worker: &Worker) -> VecEnvError {
    VecEnvError::WorkerDied {
        env: env.to_string(),
        worker: k,
        first: worker.first,
        last: worker.first + worker.len - 1,
    }
}

impl Drop for VecEnv {
    /// Closes every command channel (workers exit their loop and drop their envs on their own
    /// thread), then joins the threads.
    fn drop(&mut self) {
        shutdown(&mut self.workers);
    }
}

fn shutdown(workers: &mut [Worker]) {
    for worker in workers.iter_mut() {
        worker.commands = None;
    }
    for worker in workers.iter_mut() {
        if let Some(handle) = worker.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Worker {
    /// Starts worker `k` building and then stepping the envs `envs` on a thread of its own.
    fn spawn(
        k: usize,
        envs: std::ops::Range<usize>,
        factory: &EnvFactory,
        config: &VecEnvConfig,
    ) -> Result<Worker, VecEnvError> {
        let (first, len) = (envs.start, envs.len());
        let (cmd_tx, cmd_rx) = bounded::<Command>(1);
        let (rep_tx, rep_rx) = bounded::<Reply>(1);
        let factory = factory.clone();
        let name = factory.name().to_string();
        let (spin, per_app) = (config.spin, config.envs_per_app);
        let handle = std::thread::Builder::new()
            .name(format!("wormnet-env-{k}"))
            .spawn(move || worker_main(factory, first, len, per_app, spin, cmd_rx, rep_tx))
            .map_err(|e| VecEnvError::Build {
                env: name.clone(),
                index: first,
                cause: EnvError::Build {
                    env: name,
                    message: format!("could not start worker thread: {e}"),
                },
            })?;
        Ok(Worker {
            commands: Some(cmd_tx),
            replies: rep_rx,
            handle: Some(handle),
            first,
            len,
            chunk: None,
        })
    }
}

/// Every worker's answer to its build, collected before deciding so all threads are accounted
/// for: the spec they agree on, and the first error (a failed build, a worker that died or
/// timed out, or specs that differ).
fn agreed_spec(
    workers: &mut [Worker],
    name: &str,
    step_timeout: Option<Duration>,
) -> (Option<EnvSpec>, Option<VecEnvError>) {
    let mut spec: Option<EnvSpec> = None;
    let mut error: Option<VecEnvError> = None;
    for (k, worker) in workers.iter_mut().enumerate() {
        let answer = match recv_within(&worker.replies, Duration::ZERO, step_timeout) {
            Ok(Reply::Ready(answer)) => answer.map(|spec| *spec),
            Err(RecvTimeoutError::Timeout) => {
                worker.handle = None; // abandon the stuck constructor's thread
                Err(VecEnvError::WorkerTimeout {
                    env: name.to_string(),
                    worker: k,
                    first: worker.first,
                    last: worker.first + worker.len - 1,
                    seconds: step_timeout.unwrap_or_default().as_secs_f64(),
                })
            }
            Ok(Reply::Done(_)) | Err(RecvTimeoutError::Disconnected) => {
                Err(VecEnvError::WorkerDied {
                    env: name.to_string(),
                    worker: k,
                    first: worker.first,
                    last: worker.first + worker.len - 1,
                })
            }
        };
        match (answer, &spec) {
            (Err(e), _) => {
                error.get_or_insert(e);
            }
            (Ok(s), None) => spec = Some(s),
            (Ok(s), Some(s0)) => {
                if &s != s0 {
                    error.get_or_insert(VecEnvError::SpecMismatch {
                        env: name.to_string(),
                        index: worker.first,
                    });
                }
            }
        }
    }
    (spec, error)
}
