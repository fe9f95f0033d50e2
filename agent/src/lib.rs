//! wormnet-agent: training and auditing NCP policies on any environment registry — the
//! policy, PPO for recurrent policies, run directories (checkpoints and metrics), evaluation
//! and the tools that look inside a policy.
//!
//! It exists between the model library and the command line: [`wormnet_ncp`] knows nothing
//! of environments or RL, the `wormnet` command knows nothing of tensors. Nothing here names
//! a concrete environment: every entry point takes a [`wormnet_sim::Registry`] or an
//! [`wormnet_sim::EnvFactory`], so envs from any crate train without touching this one.
//!
//! - [`config`]: the experiment file (`[env]`, `[policy]`, `[ppo]`, `[run]`).
//! - [`policy`]: actor NCP + critic, with the observation normaliser inside.
//! - [`ppo`]: rollout, GAE, the update (the whole loss in one function), Adam.
//! - [`train`]: the schedule of a run; [`seeds`]: where its random streams come from.
//! - [`checkpoint`], [`metrics`], [`rundir`]: what a run directory holds, written so a crash
//!   loses nothing, and locked so two runs never share one.
//! - [`imitation`]: behavioural cloning of an env's expert, the start before PPO.
//! - [`search`]: adaptive random search over a circuit's parameters, the worm papers' optimiser.
//! - [`eval`]: judging a policy; [`compare`]: judging many runs against each other.
//! - [`inspect`]: the audit log, the neuron panel, plots, recording and the live window.
//! - [`interrupt`]: the Ctrl-C/SIGTERM stop request that every long loop checks.

pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod eval;
pub mod imitation;
pub mod inspect;
pub mod interrupt;
pub mod metrics;
pub mod policy;
pub mod ppo;
pub mod rundir;
pub mod search;
pub mod seeds;
pub mod threads;
pub mod train;
