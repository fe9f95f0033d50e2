//! A ball rolling on a slope, pushed sideways: the smallest Bevy + Rapier env, proving the
//! headless stepping path (fixed `dt`, substeps, determinism) end to end.

use bevy::app::{App, PostUpdate, Startup, Update};
use bevy::ecs::prelude::*;
use bevy::math::{Quat, Vec2};
use bevy::transform::components::Transform;
use bevy_rapier2d::prelude::{Collider, ExternalForce, Friction, RigidBody, Sleeping, Velocity};
use rand::Rng;
use serde::Deserialize;
use wormnet_sim::bevy_env::{
    BevyEnvPlugin, EnvAction, EnvOutput, EnvReset, EnvSystems, EpisodeRng, PhysicsConfig,
};
use wormnet_sim::{parse_options, EnvError, EnvSpec, Space};

/// Registry name.
pub const NAME: &str = "ball_slope";

const BALL_RADIUS: f32 = 0.2;
const SLOPE_HALF_LENGTH: f32 = 5.0;
const SLOPE_HALF_THICKNESS: f32 = 0.1;
const FALL_Y: f32 = -4.0;

/// Options accepted in the env's TOML table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BallSlopeOptions {
    /// Slope angle in radians (positive: downhill to the right).
    pub slope: f32,
    /// Horizontal force in newtons at action 1.
    pub push_force: f32,
    /// Rapier substeps per env step.
    pub substeps: usize,
    /// Start new episodes by teleporting the ball instead of rebuilding the `App`.
    pub in_place_reset: bool,
}

impl Default for BallSlopeOptions {
    fn default() -> Self {
        BallSlopeOptions {
            slope: 0.3,
            push_force: 5.0,
            substeps: 1,
            in_place_reset: false,
        }
    }
}

/// Marks the ball.
#[derive(Component)]
struct Ball;

/// The options, as a resource for the env's systems.
#[derive(Resource, Clone)]
struct Config(BallSlopeOptions);

/// The ball-on-a-slope plugin: spawn, push, observe `[x, y, vx, vy, ω]`, reward = Δx.
pub struct BallSlope {
    options: BallSlopeOptions,
}

impl BallSlope {
    /// Plugin with the given options.
    pub fn new(options: BallSlopeOptions) -> Self {
        BallSlope { options }
    }
}

/// The env's plugin from a TOML options table (unknown or invalid options are an error); the
/// registry wraps it in a `BevyEnv`, several to an `App` when `env.envs_per_app` asks.
pub fn plugin(options: &toml::Table) -> Result<BallSlope, EnvError> {
    let options: BallSlopeOptions = parse_options(NAME, options)?;
    if !(1..=1_000).contains(&options.substeps) {
        return Err(EnvError::Options {
            env: NAME.to_string(),
            message: format!(
                "substeps must be between 1 and 1000, got {}",
                options.substeps
            ),
        });
    }
    wormnet_sim::env::check_option_ranges(
        NAME,
        &[],
        &[
            ("slope", options.slope.abs()),
            ("push_force", options.push_force.abs()),
        ],
    )?;
    Ok(BallSlope::new(options))
}

impl BevyEnvPlugin for BallSlope {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box {
                low: vec![f32::NEG_INFINITY; 5],
                high: vec![f32::INFINITY; 5],
            },
            action_space: Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            dt: 1.0 / 60.0,
            max_episode_steps: Some(300),
            observation_names: ["x", "y", "vx", "vy", "angular_velocity"]
                .into_iter()
                .map(String::from)
                .collect(),
            action_names: vec!["push".to_string()],
            clip_actions: false,
            survival_is_success: false,
            image: None,
        }
    }

    fn physics(&self) -> PhysicsConfig {
        PhysicsConfig {
            substeps: self.options.substeps,
            ..PhysicsConfig::default()
        }
    }

    fn resets_in_place(&self) -> bool {
        self.options.in_place_reset
    }

    fn build(&self, app: &mut App) {
        app.insert_resource(Config(self.options.clone()))
            .add_systems(Startup, spawn)
            .add_systems(EnvReset, restart)
            .add_systems(Update, push.in_set(EnvSystems::Act))
            .add_systems(PostUpdate, observe.in_set(EnvSystems::Observe));
    }
}

fn spawn(mut commands: Commands, mut rng: ResMut<EpisodeRng>, config: Res<Config>) {
    let slope = config.0.slope;
    commands.spawn((
        RigidBody::Fixed,
        Collider::cuboid(SLOPE_HALF_LENGTH, SLOPE_HALF_THICKNESS),
        Friction::coefficient(0.8),
        Transform::from_rotation(Quat::from_rotation_z(-slope)),
    ));
    commands.spawn((
        Ball,
        RigidBody::Dynamic,
        Collider::ball(BALL_RADIUS),
        Friction::coefficient(0.8),
        Velocity::zero(),
        ExternalForce::default(),
        Sleeping::disabled(),
        start(&mut rng.0, slope),
    ));
}

/// Uphill, just above the surface, at a random spot.
fn start(rng: &mut impl Rng, slope: f32) -> Transform {
    let x = -3.0 + rng.random_range(-0.5..0.5);
    let surface = -x * slope.tan() + SLOPE_HALF_THICKNESS / slope.cos();
    Transform::from_xyz(x, surface + BALL_RADIUS + 0.01, 0.0)
}

/// In-place reset: teleport the ball to a new start and stop it.
fn restart(
    mut rng: ResMut<EpisodeRng>,
    config: Res<Config>,
    mut balls: Query<(&mut Transform, &mut Velocity, &mut ExternalForce), With<Ball>>,
) {
    for (mut transform, mut velocity, mut force) in &mut balls {
        *transform = start(&mut rng.0, config.0.slope);
        *velocity = Velocity::zero();
        *force = ExternalForce::default();
    }
}

fn push(
    action: Res<EnvAction>,
    config: Res<Config>,
    mut balls: Query<&mut ExternalForce, With<Ball>>,
) {
    for mut force in &mut balls {
        force.force = Vec2::new(config.0.push_force * action.0[0], 0.0);
    }
}

fn observe(
    balls: Query<(&Transform, &Velocity), With<Ball>>,
    config: Res<Config>,
    mut out: ResMut<EnvOutput>,
) {
    for (transform, velocity) in &balls {
        let p = transform.translation;
        // Reward = progress since the previous observation (the reset observation at step 1).
        let old_x = out.observation[0];
        out.observation.copy_from_slice(&[
            p.x,
            p.y,
            velocity.linear.x,
            velocity.linear.y,
            velocity.angular,
        ]);
        out.reward = p.x - old_x;
        out.terminated = p.y < FALL_Y || p.x > SLOPE_HALF_LENGTH * config.0.slope.cos() + 1.0;
    }
}
