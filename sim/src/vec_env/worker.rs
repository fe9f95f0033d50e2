//! A worker thread's side of the VecEnv: it builds its share of envs on its own thread (so
//! `!Send` Bevy apps work) and serves reset/step commands on the chunk of buffers it is sent.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, Sender, TryRecvError};

use super::error::VecEnvError;
use crate::env::EnvSpec;
use crate::episode::{panic_message, EpisodeDriver, EpisodeStats, Fault};
use crate::registry::EnvFactory;

/// One worker's share of every buffer; moved to the worker and back each step.
pub(super) struct Chunk {
    pub(super) actions: Vec<f32>,
    pub(super) obs: Vec<f32>,
    pub(super) final_obs: Vec<f32>,
    pub(super) rewards: Vec<f32>,
    pub(super) terminated: Vec<bool>,
    pub(super) truncated: Vec<bool>,
    pub(super) episodes: Vec<EpisodeStats>,
    pub(super) faults: Vec<Fault>,
}

impl Chunk {
    pub(super) fn new(len: usize, obs_dim: usize, action_dim: usize) -> Box<Chunk> {
        Box::new(Chunk {
            actions: vec![0.0; len * action_dim],
            obs: vec![0.0; len * obs_dim],
            final_obs: vec![0.0; len * obs_dim],
            rewards: vec![0.0; len],
            terminated: vec![false; len],
            truncated: vec![false; len],
            episodes: Vec::with_capacity(len),
            faults: Vec::new(),
        })
    }
}

pub(super) enum Command {
    Reset(Box<Chunk>, Option<u64>),
    Step(Box<Chunk>),
}

pub(super) enum Reply {
    Ready(Result<Box<EnvSpec>, VecEnvError>),
    Done(Box<Chunk>),
}

/// Receives with a short yielding poll before blocking: a thread that sleeps on the channel
/// costs a wake-up of tens of µs, a thread that polls for longer than the sender's usual gap
/// costs none. Yielding on every empty poll matters on small machines: with more runnable
/// threads than cores (main + W workers), the thread we wait for may be the one that needs
/// our core; measured on 2 cores, polling 64 times between yields halved cartpole throughput.
pub fn recv_spinning<T>(rx: &Receiver<T>, spin: Duration) -> Result<T, RecvError> {
    match recv_within(rx, spin, None) {
        Ok(v) => Ok(v),
        Err(_) => Err(RecvError),
    }
}

/// [`recv_spinning`] that gives up after `timeout` (counted from the call).
pub(super) fn recv_within<T>(
    rx: &Receiver<T>,
    spin: Duration,
    timeout: Option<Duration>,
) -> Result<T, RecvTimeoutError> {
    let start = Instant::now();
    if !spin.is_zero() {
        loop {
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if start.elapsed() >= spin {
                break;
            }
            std::thread::yield_now();
        }
    }
    match timeout {
        Some(t) => rx.recv_timeout(t.saturating_sub(start.elapsed())),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    }
}

/// Builds envs `indices` on the calling thread, each under its [`EpisodeDriver`], in groups of
/// up to `envs_per_app` that share one Bevy `App` where the env allows it
/// ([`EnvFactory::build_group`]); a failed or panicking constructor is named with the index of
/// the first env of its group.
pub(crate) fn build_drivers(
    factory: &EnvFactory,
    indices: std::ops::Range<usize>,
    envs_per_app: usize,
) -> Result<Vec<EpisodeDriver>, VecEnvError> {
    let mut drivers = Vec::with_capacity(indices.len());
    let group = envs_per_app.max(1);
    let mut first = indices.start;
    while first < indices.end {
        let k = group.min(indices.end - first);
        let envs = catch_unwind(AssertUnwindSafe(|| factory.build_group(k)))
            .map_err(|payload| VecEnvError::BuildPanicked {
                env: factory.name().to_string(),
                index: first,
                message: panic_message(payload.as_ref()),
            })?
            .map_err(|cause| VecEnvError::Build {
                env: factory.name().to_string(),
                index: first,
                cause,
            })?;
        for (j, env) in envs.into_iter().enumerate() {
            drivers.push(EpisodeDriver::new(env, first + j));
        }
        first += k;
    }
    Ok(drivers)
}

/// A worker thread: builds its envs, reports the spec, then serves commands until the
/// channel closes.
pub(super) fn worker_main(
    factory: EnvFactory,
    first: usize,
    len: usize,
    envs_per_app: usize,
    spin: Duration,
    commands: Receiver<Command>,
    replies: Sender<Reply>,
) {
    let name = factory.name().to_string();
    let mut drivers = match build_drivers(&factory, first..first + len, envs_per_app) {
        Ok(drivers) => drivers,
        Err(e) => {
            let _ = replies.send(Reply::Ready(Err(e)));
            return;
        }
    };
    let spec = drivers[0].spec().clone();
    if let Some(bad) = drivers.iter().position(|d| d.spec() != &spec) {
        let _ = replies.send(Reply::Ready(Err(VecEnvError::SpecMismatch {
            env: name,
            index: first + bad,
        })));
        return;
    }
    let (od, ad) = (spec.obs_dim(), spec.action_dim());
    if replies.send(Reply::Ready(Ok(Box::new(spec)))).is_err() {
        return;
    }
    while let Ok(command) = recv_spinning(&commands, spin) {
        let chunk = match command {
            Command::Reset(mut chunk, seed) => {
                let c = &mut *chunk;
                c.episodes.clear();
                for (j, driver) in drivers.iter_mut().enumerate() {
                    let s = seed.map(|s| s.wrapping_add((first + j) as u64));
                    c.rewards[j] = 0.0;
                    c.terminated[j] = false;
                    c.truncated[j] = false;
                    if let Err(f) = driver.reset(s, &mut c.obs[j * od..(j + 1) * od]) {
                        c.faults.push(f);
                    }
                }
                chunk
            }
            Command::Step(mut chunk) => {
                let c = &mut *chunk;
                c.episodes.clear();
                for (j, driver) in drivers.iter_mut().enumerate() {
                    let result = driver.step_autoreset(
                        &c.actions[j * ad..(j + 1) * ad],
                        &mut c.obs[j * od..(j + 1) * od],
                        &mut c.final_obs[j * od..(j + 1) * od],
                    );
                    match result {
                        Ok(t) => {
                            c.rewards[j] = t.step.reward;
                            c.terminated[j] = t.step.terminated;
                            c.truncated[j] = t.step.truncated;
                            if let Some(e) = t.episode {
                                c.episodes.push(e);
                            }
                        }
                        Err(f) => {
                            c.rewards[j] = 0.0;
                            c.terminated[j] = false;
                            c.truncated[j] = false;
                            c.faults.push(f);
                        }
                    }
                }
                chunk
            }
        };
        if replies.send(Reply::Done(chunk)).is_err() {
            return;
        }
    }
}
