//! wormnet-sim: what every environment plugs into and what the trainer talks to.
//!
//! It exists so that environments and the trainer never depend on each other: both depend on
//! this contract, and nothing here links libtorch.
//!
//! - [`space`], [`env`], [`frame`]: the contract ([`Space`], [`EnvSpec`], [`Env`], [`Frame`]).
//! - [`registry`]: name → constructor taking a TOML options table ([`Registry`], [`EnvFactory`]).
//! - [`episode`]: one env under the contract's rules (action checks, time limit, NaN and
//!   panic isolation, episode statistics).
//! - [`vec_env`]: N envs on W worker threads with SAME_STEP auto-reset ([`VecEnv`]).
//! - [`bevy_env`]: a Bevy plugin stepped headless by a fixed `dt` as an [`Env`].
//! - [`noise`], [`planar`]: Gaussian draws and plane angles that envs and the evaluator share.
//! - [`rollout`]: recorded episodes for the watch/record/audit tools.
//! - [`bench`]: env steps per second with random actions.
//! - [`render`]: what the watch/record views draw (scene + neuron panel) and, with the
//!   `render` feature, the Bevy window and offscreen renderer (wgpu; never compiled into
//!   training builds).

pub mod bench;
pub mod bevy_env;
pub mod env;
pub mod episode;
pub mod frame;
pub mod noise;
pub mod planar;
pub mod registry;
pub mod render;
pub mod rollout;
pub mod space;
pub mod vec_env;

pub use env::{parse_options, Env, EnvError, EnvSpec, ImageShape, Step};
pub use episode::{EpisodeDriver, EpisodeStats, Fault, FaultKind};
pub use frame::Frame;
pub use registry::{EnvFactory, Registry, RegistryError};
pub use space::Space;
pub use vec_env::{StepView, VecEnv, VecEnvConfig, VecEnvError};

/// Re-exported so env crates use exactly the Bevy and Rapier versions this crate steps.
pub use bevy;
/// Re-exported alongside [`bevy`].
pub use bevy_rapier2d;
/// Re-exported so env crates draw with the `rand` version [`Space::sample`] takes.
pub use rand;
/// Re-exported for env RNGs seeded the same way as [`bevy_env::EpisodeRng`].
pub use rand_chacha;
/// Re-exported so env crates derive `Deserialize` for their options (with
/// `#[serde(crate = "…::serde")]`) against the serde [`parse_options`] uses.
pub use serde;
/// Re-exported so env crates read their options as the `toml::Table` the registry passes.
pub use toml;
