//! wormnet-agent: everything that needs libtorch — NCP wirings and cells, policies, PPO,
//! checkpoints — kept in one crate so that `sim` and `envs` build and test without it.

pub mod audit;
pub mod cfc;
pub mod cfc_cpu;
pub mod checkpoint;
pub mod config;
pub mod interchange;
pub mod lstm;
pub mod ltc;
pub mod ltc_cpu;
pub mod metrics;
pub mod ncp_bench;
pub mod normalize;
pub mod plot;
pub mod policy;
pub mod ppo;
#[cfg(feature = "render")]
pub mod record;
pub mod runtime;
pub mod sequence;
pub mod train;
#[cfg(feature = "render")]
pub mod watch;
pub mod wiring;
pub mod wiring_picture;
