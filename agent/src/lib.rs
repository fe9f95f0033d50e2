//! wormnet-agent: everything that needs libtorch — NCP wirings and cells, policies, PPO,
//! checkpoints — kept in one crate so that `sim` and `envs` build and test without it.

pub mod checkpoint;
pub mod metrics;
pub mod normalize;
pub mod ppo;
pub mod runtime;
