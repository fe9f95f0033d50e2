//! Proximal Policy Optimisation for recurrent NCP policies: every implementation detail the
//! reference checklist names, each visible in one place.
//!
//! - [`config`]: every knob, with CleanRL's defaults.
//! - [`rollout`]: acting in the envs and keeping what the update needs.
//! - [`gae`]: advantages, with terminated and truncated episodes told apart.
//! - [`update`]: the epochs and the whole loss, as CleanRL writes it.
//! - [`adam`]: Adam with checkpointable moments, and the global grad-norm clip.
//! - [`host`]: the norm, the ratio statistics and a categorical policy's loss as host loops,
//!   the same as libtorch's operations to float rounding (`ppo.host_loops = false`: off).

pub mod adam;
pub mod config;
pub mod gae;
pub(crate) mod host;
pub mod rollout;
pub mod update;
