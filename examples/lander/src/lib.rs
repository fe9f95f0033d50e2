//! A 2D lander, written as an environment crate outside wormnet would write one: a Bevy plugin
//! with Rapier bodies, registered under a name, trained, evaluated and recorded by the whole
//! `wormnet` command (`src/main.rs`). Copy this crate to start your own env.
//!
//! The lander starts above the pad with a random offset, drift and tilt. Actions (both in
//! [−1, 1]): main engine (−1 off … 1 full, along the body's up axis) and side thrusters
//! (torque). Observations: `[x, y, vx, vy, angle, angular_velocity]`. Reward: progress towards
//! a slow, upright hover over the pad (potential shaping), +10 for a soft landing, −10 for a
//! crash or leaving the area; touching the ground ends the episode.

#![warn(missing_docs)]

use bevy::app::{App, PostUpdate, Startup, Update};
use bevy::ecs::prelude::*;
use bevy::math::{Quat, Vec2};
use bevy::rapier2d::prelude::{
    Collider, ColliderMassProperties, ExternalForce, RigidBody, Sleeping, Velocity,
};
use bevy::transform::components::Transform;
use wormnet_cli::sim::bevy_env::{
    BevyEnv, BevyEnvPlugin, EnvAction, EnvOutput, EnvSystems, EpisodeRng, PhysicsConfig,
};
use wormnet_cli::sim::planar::yaw;
use wormnet_cli::sim::rand::Rng;
use wormnet_cli::sim::serde::Deserialize;
use wormnet_cli::sim::{parse_options, EnvError, EnvSpec, Registry, Space};

/// Registry name.
pub const NAME: &str = "lander";

/// Half width and half height of the lander body (m).
pub const HALF_SIZE: Vec2 = Vec2::new(0.5, 0.25);
/// Mass of the lander (kg).
pub const MASS: f32 = 0.5;
/// Height of the lander's centre when it starts (m).
pub const START_HEIGHT: f32 = 6.0;

/// Options accepted in the env's TOML table (`[env] options = { … }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(crate = "wormnet_cli::sim::serde", deny_unknown_fields, default)]
pub struct LanderOptions {
    /// Main engine force at full throttle (N); the weight is 4.9 N.
    pub main_thrust: f32,
    /// Side thrusters' torque at full deflection (N·m).
    pub side_torque: f32,
    /// Largest random horizontal start offset (m).
    pub start_offset: f32,
    /// Largest random horizontal start speed (m/s).
    pub start_drift: f32,
}

impl Default for LanderOptions {
    fn default() -> Self {
        LanderOptions {
            main_thrust: 10.0,
            side_torque: 1.0,
            start_offset: 2.0,
            start_drift: 1.0,
        }
    }
}

/// Registers the lander in `registry` under [`NAME`].
pub fn register(registry: &mut Registry) {
    registry
        .register_bevy(
            NAME,
            "2D lander: land softly on the pad (template env crate)",
            plugin,
        )
        .expect("the name `lander` is free in the built-in registry");
}

/// Builds the env from its TOML options; unknown or non-positive values are errors naming them.
pub fn from_options(options: &wormnet_cli::sim::toml::Table) -> Result<BevyEnv<Lander>, EnvError> {
    plugin(options).map(BevyEnv::new)
}

/// The plugin from its TOML options: what the registry builds, several envs to a Bevy `App`
/// when `env.envs_per_app` asks.
pub fn plugin(options: &wormnet_cli::sim::toml::Table) -> Result<Lander, EnvError> {
    let options: LanderOptions = parse_options(NAME, options)?;
    for (name, value) in [
        ("main_thrust", options.main_thrust),
        ("side_torque", options.side_torque),
        ("start_offset", options.start_offset),
        ("start_drift", options.start_drift),
    ] {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(EnvError::Options {
                env: NAME.to_string(),
                message: format!("{name} must be finite and ≥ 0, got {value}"),
            });
        }
    }
    Ok(Lander { options })
}

/// The lander plugin.
pub struct Lander {
    options: LanderOptions,
}

/// Marks the lander body.
#[derive(Component)]
struct Body;

/// The options, for the systems.
#[derive(Resource, Clone)]
struct Config(LanderOptions);

/// The shaping potential of the previous step (reward = its increase).
#[derive(Resource, Default)]
struct Potential(Option<f32>);

impl BevyEnvPlugin for Lander {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box {
                low: vec![f32::NEG_INFINITY; 6],
                high: vec![f32::INFINITY; 6],
            },
            action_space: Space::Box {
                low: vec![-1.0; 2],
                high: vec![1.0; 2],
            },
            dt: 0.05,
            max_episode_steps: Some(200),
            observation_names: ["x", "y", "vx", "vy", "angle", "angular_velocity"]
                .map(String::from)
                .to_vec(),
            action_names: vec!["main_engine".into(), "side_thrusters".into()],
            clip_actions: true,
            survival_is_success: false,
            image: None,
        }
    }

    fn physics(&self) -> PhysicsConfig {
        PhysicsConfig {
            substeps: 2,
            ..PhysicsConfig::default()
        }
    }

    fn build(&self, app: &mut App) {
        app.insert_resource(Config(self.options.clone()))
            .init_resource::<Potential>()
            .add_systems(Startup, spawn)
            .add_systems(Update, fire.in_set(EnvSystems::Act))
            .add_systems(PostUpdate, observe.in_set(EnvSystems::Observe));
    }
}

fn spawn(mut commands: Commands, mut rng: ResMut<EpisodeRng>, config: Res<Config>) {
    let o = &config.0;
    let x = rng.0.random_range(-1.0..=1.0) * o.start_offset;
    let vx = rng.0.random_range(-1.0..=1.0) * o.start_drift;
    let tilt = rng.0.random_range(-0.2..=0.2);
    // The ground: a wide slab whose top is y = 0.
    commands.spawn((
        RigidBody::Fixed,
        Collider::cuboid(50.0, 0.5),
        Transform::from_xyz(0.0, -0.5, 0.0),
    ));
    commands.spawn((
        Body,
        RigidBody::Dynamic,
        Collider::cuboid(HALF_SIZE.x, HALF_SIZE.y),
        ColliderMassProperties::Mass(MASS),
        Velocity::linear(Vec2::new(vx, 0.0)),
        ExternalForce::default(),
        Sleeping::disabled(),
        Transform::from_xyz(x, START_HEIGHT, 0.0).with_rotation(Quat::from_rotation_z(tilt)),
    ));
}

/// Engine forces in the body frame: main engine along its up axis, side thrusters as torque.
fn fire(
    action: Res<EnvAction>,
    config: Res<Config>,
    mut bodies: Query<(&Transform, &mut ExternalForce), With<Body>>,
) {
    for (transform, mut force) in &mut bodies {
        let throttle = 0.5 * (action.0[0] + 1.0);
        let up = Vec2::from_angle(yaw(transform)).rotate(Vec2::Y);
        force.force = up * throttle * config.0.main_thrust;
        force.torque = action.0[1] * config.0.side_torque;
    }
}

fn observe(
    bodies: Query<(&Transform, &Velocity), With<Body>>,
    mut potential: ResMut<Potential>,
    mut out: ResMut<EnvOutput>,
) {
    for (transform, velocity) in &bodies {
        let p = transform.translation;
        let angle = yaw(transform);
        let v = velocity.linear;
        out.observation
            .copy_from_slice(&[p.x, p.y, v.x, v.y, angle, velocity.angular]);
        let now = -(p.x.abs() + 0.5 * v.length() + angle.abs());
        out.reward = potential.0.map_or(0.0, |before| now - before);
        potential.0 = Some(now);
        // The lowest corner of the body, to tell when it touches the ground.
        let reach = HALF_SIZE.x * angle.sin().abs() + HALF_SIZE.y * angle.cos().abs();
        if p.y - reach <= 0.02 {
            let soft = v.y.abs() < 1.5 && angle.abs() < 0.3 && p.x.abs() < 2.0;
            out.reward += if soft { 10.0 } else { -10.0 };
            out.terminated = true;
        } else if p.x.abs() > 10.0 || p.y > 15.0 {
            out.reward -= 10.0;
            out.terminated = true;
        }
    }
}
