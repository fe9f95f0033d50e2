//! Why a VecEnv could not be built or stepped.

use crate::env::EnvError;
use crate::episode::Fault;

/// Why a VecEnv could not be built or stepped. Every variant names the env, and where one env
/// is to blame, its index.
#[derive(Debug, thiserror::Error)]
pub enum VecEnvError {
    /// Zero envs or zero workers.
    #[error("env `{env}`: a VecEnv needs at least one env and one worker (got {num_envs} envs, {workers} workers)")]
    Config {
        /// Env name.
        env: String,
        /// Requested envs.
        num_envs: usize,
        /// Requested workers.
        workers: usize,
    },
    /// An env's constructor failed (bad options, bad spec).
    #[error("env `{env}` #{index} could not be built: {cause}")]
    Build {
        /// Env name.
        env: String,
        /// Index in the batch.
        index: usize,
        /// Constructor error (in the message, not repeated as a source).
        cause: EnvError,
    },
    /// An env's constructor panicked.
    #[error("env `{env}` #{index}: constructor panicked: {message}")]
    BuildPanicked {
        /// Env name.
        env: String,
        /// Index in the batch.
        index: usize,
        /// The panic message.
        message: String,
    },
    /// Envs built from one factory reported different specs.
    #[error("env `{env}` #{index}: spec differs from env #0's")]
    SpecMismatch {
        /// Env name.
        env: String,
        /// The first differing env.
        index: usize,
    },
    /// The flat action buffer has the wrong length.
    #[error("env `{env}` #{index}: action buffer has {got} values, expected {expected} ({num_envs} envs × {action_dim}); env #{index} is the first without a complete action")]
    ActionBuffer {
        /// Env name.
        env: String,
        /// First env whose action is missing or partial.
        index: usize,
        /// Values given.
        got: usize,
        /// Values expected.
        expected: usize,
        /// N.
        num_envs: usize,
        /// Action dimension.
        action_dim: usize,
    },
    /// `step` was called before `reset`.
    #[error("env `{env}`: step called before reset")]
    NotReset {
        /// Env name.
        env: String,
    },
    /// One or more envs faulted this step; the other envs' outputs are valid.
    #[error("{}{}", .0[0], if .0.len() > 1 { format!(" (and {} more faulted envs)", .0.len() - 1) } else { String::new() })]
    Faults(Vec<Fault>),
    /// A worker did not answer within [`VecEnvConfig::step_timeout`]; its thread is abandoned
    /// (an env is stuck) and the VecEnv is unusable.
    #[error("env `{env}`: worker thread {worker} (envs #{first}..#{last}) did not answer within {seconds} s; an env is stuck in reset or step")]
    WorkerTimeout {
        /// Env name.
        env: String,
        /// Worker number.
        worker: usize,
        /// Its first env.
        first: usize,
        /// Its last env.
        last: usize,
        /// The timeout.
        seconds: f64,
    },
    /// A worker thread is gone (it panicked outside any env call).
    #[error("env `{env}`: worker thread {worker} (envs #{first}..#{last}) died")]
    WorkerDied {
        /// Env name.
        env: String,
        /// Worker number.
        worker: usize,
        /// Its first env.
        first: usize,
        /// Its last env.
        last: usize,
    },
}
