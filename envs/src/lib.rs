//! wormnet-envs: the environments wormnet ships, kept apart from the trainer so that a user's
//! own environment crate needs only `wormnet-sim`.
//!
//! [`registry()`] maps names to constructors taking a TOML options table. It registers every
//! env here, one module each:
//! - [`cartpole`] (`cartpole`): Gymnasium's CartPole-v1 to the bit, with `no_velocity` and
//!   `continuous` (force) options, the quick benchmark for recurrent policies.
//! - [`pendulum`] (`pendulum`): Gymnasium's Pendulum-v1, a continuous action, with a
//!   `no_velocity` option.
//! - [`mountaincar`] (`mountaincar`): Gymnasium's MountainCarContinuous-v0, a goal task that
//!   reports success when the car reaches its flag.
//! - [`ball_slope`] (`ball_slope`): the smallest Bevy + Rapier env, the test of headless
//!   stepping.
//! - [`worm`] (`worm`): a swimming capsule chain, the planar C. elegans (MuJoCo's Swimmer).
//! - [`vehicle`] (`vehicle`): lane keeping on procedural tracks with range sensors or a camera,
//!   the NCP paper's task in 2D.

pub mod ball_slope;
pub mod cartpole;
pub mod mountaincar;
pub mod pendulum;
pub mod vehicle;
pub mod worm;

use wormnet_sim::{Env, EnvError, Registry};

type Constructor = fn(&toml::Table) -> Result<Box<dyn Env>, EnvError>;

/// Every env this crate provides, by name; the trainer and the CLI look envs up here. The Bevy
/// envs are registered by their plugins, so several can share one `App` (`env.envs_per_app`).
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    let plain: [(&str, &str, Constructor); 3] = [
        (
            cartpole::NAME,
            "Gymnasium CartPole-v1 (options: no_velocity, continuous, force)",
            |o| Ok(Box::new(cartpole::CartPole::from_options(o)?)),
        ),
        (
            pendulum::NAME,
            "Gymnasium Pendulum-v1 (options: no_velocity)",
            |o| Ok(Box::new(pendulum::Pendulum::from_options(o)?)),
        ),
        (
            mountaincar::NAME,
            "Gymnasium MountainCarContinuous-v0, success at the flag",
            |o| Ok(Box::new(mountaincar::MountainCar::from_options(o)?)),
        ),
    ];
    let mut results = Vec::new();
    for (name, summary, constructor) in plain {
        results.push(registry.register(name, summary, constructor));
    }
    results.push(registry.register_bevy(
        ball_slope::NAME,
        "Bevy + Rapier ball on a slope, pushed sideways (options: slope, push_force, substeps)",
        ball_slope::plugin,
    ));
    results.push(registry.register_bevy(
        worm::NAME,
        "Bevy + Rapier swimming worm: capsule chain, motorised joints, resistive-force drag",
        worm::plugin,
    ));
    results.push(registry.register_bevy(
        vehicle::NAME,
        "Bevy + Rapier lane keeping: a car with range sensors laps seeded procedural tracks",
        vehicle::plugin,
    ));
    for result in results {
        if let Err(e) = result {
            // Only reachable if two entries above share a name: a bug in this crate.
            panic!("wormnet-envs registry: {e}");
        }
    }
    registry
}
