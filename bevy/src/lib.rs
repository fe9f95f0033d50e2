//! wormnet-bevy: Bevy, and Rapier as [`rapier2d`], exactly as wormnet builds them.
//!
//! It exists for environment crates outside this repository. Bevy's derives
//! (`#[derive(Component)]`, `#[derive(Resource)]`, …) look in the crate's `Cargo.toml` for a
//! dependency named `bevy` and expand to paths under it, so re-exports from another crate do
//! not satisfy them; adding bevy itself means matching wormnet's version and features by hand.
//! Depend on this crate under that name instead and the derives, the version and the headless
//! feature set all come right:
//!
//! ```toml
//! [dependencies]
//! bevy = { package = "wormnet-bevy", path = "…/bevy" }
//! ```

pub use bevy::*;
/// Rapier's Bevy plugin and its types, as wormnet's envs step them.
pub use bevy_rapier2d as rapier2d;
