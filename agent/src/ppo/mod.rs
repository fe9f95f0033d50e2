//! Proximal Policy Optimisation for recurrent NCP policies: every implementation detail the
//! reference checklist names, each visible in one place.
//!
//! - [`config`]: every knob, with CleanRL's defaults.
//! - [`rollout`]: acting in the envs and keeping what the update needs.
//! - [`gae`]: advantages, with terminated and truncated episodes told apart.
//! - [`update`]: the epochs and the whole loss in one function.
//! - [`categorical`]: a categorical policy's loss and its gradient from host loops.
//! - [`adam`]: Adam with checkpointable moments, and the global grad-norm clip.
//! - [`sums`]: float sums in libtorch's order from host loops (the norm, the loss's statistics).

pub mod adam;
pub(crate) mod categorical;
pub mod config;
pub mod gae;
pub mod rollout;
pub(crate) mod sums;
pub mod update;
