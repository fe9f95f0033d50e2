//! Lane keeping on a road that bends: a car (a Rapier rigid body pushed by bicycle-model tyre
//! forces) drives laps of procedurally generated closed tracks, seeing the road only through a
//! fan of range sensors or a camera image of the road ahead, its speed and steering angle, and
//! (unless `privileged = false`) its heading relative to the road and its offset from the
//! centre. The NCP paper's lane-keeping task, in 2D.
//!
//! - [`track`]: seeded tracks, disjoint seed ranges for training and held-out evaluation.
//! - [`car`]: the tyre model and the steering actuator.
//! - [`camera`]: the forward view of the road, rendered in software from the track.
//! - [`expert`]: pure pursuit of the centre line, the teacher for imitation learning.
//!
//! Reward per step: progress along the centre line (1 per step at the reference speed) minus a
//! penalty growing with the squared distance from the centre. Leaving the road, stalling (no new
//! progress for `stall_seconds`) or running out of time without a lap ends the episode as
//! `terminated` (a failure); completing one lap ends it as `truncated` (the car could drive on),
//! so a finished episode succeeded exactly when it was not terminated — see [`lap_completed`].

pub mod camera;
pub mod car;
pub mod expert;
pub mod track;

use bevy::app::{App, PostUpdate, Startup, Update};
use bevy::ecs::prelude::*;
use bevy::math::{Quat, Vec2};
use bevy::transform::components::Transform;
use bevy_rapier2d::prelude::{
    Collider, ColliderMassProperties, CollisionGroups, ExternalForce, Group, QueryFilter,
    ReadRapierContext, RigidBody, Sleeping, Velocity,
};
use rand::Rng;
use wormnet_sim::bevy_env::{
    BevyEnvPlugin, EnvAction, EnvOutput, EnvSystems, EpisodeRng, PhysicsConfig,
};
use wormnet_sim::frame::{Geometry, Overlay, Polyline, Pose, Rgba, Shape};
use wormnet_sim::noise::standard_normal;
use wormnet_sim::planar::{wrap_angle, yaw};
use wormnet_sim::{parse_options, EnvError, EnvSpec, EpisodeStats, Frame, ImageShape, Space};

mod options;
mod world;

use camera::Camera;
use car::{steer_towards, tyre_forces, BodyMotion, SPEED_GAIN};
pub use options::{Observation, TrackSet, VehicleOptions, NAME};
use track::{Projection, Track};
use world::Border;
use world::Config;
pub use world::{Car, Drive, Outcome, Road};

/// Centre segments searched either side of the previous one when projecting the car.
const PROJECTION_WINDOW: usize = 12;

/// The env's plugin from a TOML options table (unknown or invalid options are an error); the
/// registry wraps it in a `BevyEnv`, several to an `App` when `env.envs_per_app` asks.
pub fn plugin(options: &toml::Table) -> Result<Vehicle, EnvError> {
    Vehicle::new(parse_options(NAME, options)?)
}

/// Whether a finished vehicle episode completed its lap: it did exactly when it was not
/// terminated (leaving the road, stalling and timing out all terminate).
pub fn lap_completed(stats: &EpisodeStats) -> bool {
    !stats.terminated
}

/// The lane-keeping plugin: draws a track, spawns the car, applies steering (and throttle),
/// observes the range sensors and rewards progress.
pub struct Vehicle {
    options: VehicleOptions,
}

impl Vehicle {
    /// The plugin with checked options.
    pub fn new(options: VehicleOptions) -> Result<Self, EnvError> {
        options.validate()?;
        Ok(Vehicle { options })
    }

    /// The options this vehicle env was built with.
    pub fn options(&self) -> &VehicleOptions {
        &self.options
    }
}

impl BevyEnvPlugin for Vehicle {
    fn spec(&self) -> EnvSpec {
        let o = &self.options;
        let (mut names, image): (Vec<String>, _) = match o.observation {
            Observation::Rays => (
                o.ray_angles()
                    .iter()
                    .map(|a| format!("range_{:+.0}deg", a.to_degrees()))
                    .collect(),
                None,
            ),
            Observation::Camera => (
                (0..o.camera_height)
                    .flat_map(|r| (0..o.camera_width).map(move |c| format!("pixel_r{r}_c{c}")))
                    .collect(),
                Some(ImageShape {
                    channels: 1,
                    height: o.camera_height,
                    width: o.camera_width,
                }),
            ),
        };
        let sensors = names.len();
        let state: &[&str] = if o.privileged {
            &["speed", "heading_error", "lateral_offset", "steering"]
        } else {
            &["speed", "steering"]
        };
        names.extend(state.iter().map(|s| s.to_string()));
        let mut low = vec![0.0; sensors];
        let mut high = vec![1.0; sensors];
        low.extend(vec![f32::NEG_INFINITY; state.len()]);
        high.extend(vec![f32::INFINITY; state.len()]);
        let mut actions = vec!["steering".to_string()];
        if o.throttle {
            actions.push("throttle".to_string());
        }
        EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box { low, high },
            action_space: Space::Box {
                low: vec![-1.0; actions.len()],
                high: vec![1.0; actions.len()],
            },
            dt: o.dt,
            max_episode_steps: Some(o.max_episode_steps),
            observation_names: names,
            action_names: actions,
            clip_actions: false,
            survival_is_success: true,
            image,
        }
    }

    fn physics(&self) -> PhysicsConfig {
        PhysicsConfig {
            substeps: 1,
            gravity: Vec2::ZERO,
            solver_iterations: 4,
        }
    }

    /// `spawn` sets the track and the whole driving state; `Config` never changes.
    fn respawns_in_place(&self) -> bool {
        true
    }

    fn build(&self, app: &mut App) {
        app.insert_resource(Config {
            options: self.options.clone(),
            car: self.options.car(),
            ray_angles: self.options.ray_angles(),
            camera: (self.options.observation == Observation::Camera)
                .then(|| Camera::new(&self.options.camera())),
        })
        .insert_resource(Drive::default())
        .add_systems(Startup, spawn)
        .add_systems(Update, drive.in_set(EnvSystems::Act))
        .add_systems(PostUpdate, observe.in_set(EnvSystems::Observe));
    }

    fn expert_action(&self, world: &World, action: &mut [f32]) -> bool {
        expert::expert_action(world, action)
    }

    fn frame(&self, world: &World) -> Frame {
        let mut frame = Frame::default();
        let (Some(road), Some(state)) =
            (world.get_resource::<Road>(), world.get_resource::<Drive>())
        else {
            return frame;
        };
        let track = &road.0;
        let points = |p: &[Vec2]| p.iter().map(|v| [v.x, v.y]).collect::<Vec<_>>();
        let grey = Rgba::rgb(90, 90, 90);
        frame.view = Some(track.bounds());
        // Order is part of the frame's meaning: centre line, left border, right border, rays.
        frame.polylines.push(Polyline {
            points: points(&track.centre),
            closed: true,
            color: Rgba::rgb(200, 200, 200),
            width: 0.15,
        });
        for border in [&track.left, &track.right] {
            frame.polylines.push(Polyline {
                points: points(border),
                closed: true,
                color: grey,
                width: 0.3,
            });
        }
        let car = world
            .try_query_filtered::<&Transform, With<Car>>()
            .and_then(|mut q| q.iter(world).next().copied());
        if let Some(transform) = car {
            let p = transform.translation.truncate();
            for end in &state.ray_ends {
                frame.polylines.push(Polyline {
                    points: vec![[p.x, p.y], [end.x, end.y]],
                    closed: false,
                    color: Rgba([240, 200, 40, 160]),
                    width: 0.05,
                });
            }
            let r = self.options.follow;
            if r > 0.0 {
                // A 4:3 window around the car, so the road moves past it.
                frame.view = Some([p.x - 4.0 / 3.0 * r, p.y - r, p.x + 4.0 / 3.0 * r, p.y + r]);
            }
            frame.shapes.push(Shape {
                geometry: Geometry::Rect {
                    half_width: 0.5 * self.options.car_length,
                    half_height: 0.5 * self.options.car_width,
                },
                pose: Pose {
                    x: p.x,
                    y: p.y,
                    angle: yaw(&transform),
                },
                color: Rgba::rgb(200, 40, 40),
            });
        }
        let overlays = [
            ("steering_angle", state.steer),
            ("lap_fraction", state.progress / track.length),
            (
                "lap_completed",
                f32::from(u8::from(state.outcome == Outcome::LapCompleted)),
            ),
            (
                "off_road",
                f32::from(u8::from(state.outcome == Outcome::OffRoad)),
            ),
            ("track_seed", track.seed as f32),
        ];
        frame
            .overlays
            .extend(overlays.into_iter().map(|(label, value)| Overlay {
                label: label.to_string(),
                value,
                at: None,
            }));
        frame
    }
}

/// Draws the episode's track, spawns its borders and the car at the start line.
fn spawn(mut commands: Commands, mut rng: ResMut<EpisodeRng>, config: Res<Config>) {
    let o = &config.options;
    let seed = match o.track_seed {
        Some(seed) => seed,
        None => {
            let [first, end] = match o.tracks {
                TrackSet::Train => o.train_seeds,
                TrackSet::Eval => o.eval_seeds,
            };
            rng.0.random_range(first..end)
        }
    };
    let track = Track::generate(seed, &o.track_params());
    for border in [&track.left, &track.right] {
        let mut vertices = border.clone();
        vertices.push(border[0]);
        commands.spawn((
            Border,
            RigidBody::Fixed,
            Collider::polyline(vertices, None),
            Transform::default(),
        ));
    }
    let offset = if o.start_offset > 0.0 {
        rng.0.random_range(-o.start_offset..=o.start_offset)
    } else {
        0.0
    };
    let heading_noise = if o.start_heading > 0.0 {
        rng.0.random_range(-o.start_heading..=o.start_heading)
    } else {
        0.0
    };
    let tangent = track.tangent(0);
    let start = track.centre[0] + offset * tangent.perp();
    let heading = tangent.to_angle() + heading_noise;
    commands.spawn((
        Car,
        RigidBody::Dynamic,
        Collider::cuboid(0.5 * o.car_length, 0.5 * o.car_width),
        ColliderMassProperties::Mass(o.mass),
        // The car touches nothing: the road is a friction field, the borders are for the sensors.
        CollisionGroups::new(Group::GROUP_2, Group::NONE),
        Velocity::linear(o.speed * Vec2::from_angle(heading)),
        ExternalForce::default(),
        Sleeping::disabled(),
        Transform::from_xyz(start.x, start.y, 0.0).with_rotation(Quat::from_rotation_z(heading)),
    ));
    commands.insert_resource(Road(track));
    // A new episode's driving state (also when the scene respawns in the same App).
    commands.insert_resource(Drive::default());
}

/// Applies the steering command through the rate-limited actuator and the tyre and drive forces.
fn drive(
    action: Res<EnvAction>,
    config: Res<Config>,
    mut state: ResMut<Drive>,
    mut cars: Query<(&Transform, &Velocity, &mut ExternalForce), With<Car>>,
) {
    let o = &config.options;
    let command = action.0[0].clamp(-1.0, 1.0) * o.max_steer;
    state.steer = steer_towards(state.steer, command, o.steer_rate, o.dt);
    for (transform, velocity, mut force) in &mut cars {
        let heading = yaw(transform);
        let to_world = Vec2::from_angle(heading);
        let v = Vec2::from_angle(-heading).rotate(velocity.linear);
        let m = o.mass;
        let drive_force = if o.throttle {
            let u = action.0[1].clamp(-1.0, 1.0);
            if u >= 0.0 {
                (u * m * o.max_accel).min(m * SPEED_GAIN * (o.max_speed - v.x))
            } else {
                // Brakes slow the car to a stop and never drive it backwards.
                u * m * o.max_brake * (v.x / 0.5).clamp(0.0, 1.0)
            }
        } else {
            m * (SPEED_GAIN * (o.speed - v.x)).clamp(-o.max_brake, o.max_accel)
        };
        let tyres = tyre_forces(
            &config.car,
            BodyMotion {
                velocity: v,
                yaw_rate: velocity.angular,
            },
            state.steer,
            drive_force,
            o.dt,
        );
        force.force = to_world.rotate(tyres.force);
        force.torque = tyres.torque;
    }
}

/// The fan of range sensors: writes the normalised distances (with `sensor_noise`) and where
/// each ray ended. Before the first physics step Rapier's broad phase is still empty, so the
/// reset observation casts against the two border shapes directly (same geometry).
#[allow(clippy::too_many_arguments)]
fn sense_ranges(
    config: &Config,
    rapier: &ReadRapierContext,
    borders: &Query<(&Collider, &Transform), With<Border>>,
    position: Vec2,
    heading: f32,
    state: &mut Drive,
    rng: &mut EpisodeRng,
    out: &mut EnvOutput,
) {
    let o = &config.options;
    let origins = config
        .ray_angles
        .iter()
        .map(|a| Vec2::from_angle(heading + a));
    state.ray_ends.clear();
    let mut distances = [0.0f32; 64];
    if state.started {
        if let Ok(context) = rapier.single() {
            context.with_query_pipeline(QueryFilter::only_fixed(), |pipeline| {
                for (k, dir) in origins.enumerate() {
                    distances[k] = pipeline
                        .cast_ray(position, dir, o.ray_range, true)
                        .map_or(o.ray_range, |(_, toi)| toi);
                }
            });
        }
    } else {
        for (k, dir) in origins.enumerate() {
            distances[k] = borders
                .iter()
                .filter_map(|(c, t)| {
                    c.cast_ray(
                        t.translation.truncate(),
                        yaw(t),
                        position,
                        dir,
                        o.ray_range,
                        true,
                    )
                })
                .fold(o.ray_range, f32::min);
        }
    }
    let noise = o.sensor_noise;
    let mut noisy = |x: f32| {
        if noise > 0.0 {
            x + noise * standard_normal(&mut rng.0) as f32
        } else {
            x
        }
    };
    for (k, angle) in config.ray_angles.iter().enumerate() {
        state
            .ray_ends
            .push(position + distances[k] * Vec2::from_angle(heading + angle));
        out.observation[k] = noisy(distances[k] / o.ray_range).clamp(0.0, 1.0);
    }
}

/// Senses the road, pays the reward and decides whether the episode ends.
#[allow(clippy::too_many_arguments)]
fn observe(
    config: Res<Config>,
    road: Res<Road>,
    rapier: ReadRapierContext,
    borders: Query<(&Collider, &Transform), With<Border>>,
    cars: Query<(&Transform, &Velocity), With<Car>>,
    mut rng: ResMut<EpisodeRng>,
    mut state: ResMut<Drive>,
    mut out: ResMut<EnvOutput>,
) {
    let o = &config.options;
    let track = &road.0;
    let Some((transform, velocity)) = cars.iter().next() else {
        return;
    };
    let position = transform.translation.truncate();
    let heading = yaw(transform);
    let state = &mut *state;
    let window = if state.started {
        PROJECTION_WINDOW
    } else {
        track.len()
    };
    let projection = track.project(position, state.hint, window);
    state.hint = projection.index;

    state.ray_ends.clear();
    let sensors = match &config.camera {
        Some(camera) => {
            if !state.started && o.camera_brightness > 0.0 {
                let b = o.camera_brightness;
                state.brightness = rng.0.random_range(-b..=b);
            }
            let image = &mut out.observation[..camera.pixels()];
            let pose = (position, heading);
            camera.render(track, pose, state.hint, &mut state.camera_hints, image);
            camera::augment(image, state.brightness, o.camera_noise, &mut rng.0);
            image.len()
        }
        None => {
            sense_ranges(
                &config, &rapier, &borders, position, heading, state, &mut rng, &mut out,
            );
            o.rays
        }
    };
    let noise = o.sensor_noise;
    let mut noisy = |x: f32| {
        if noise > 0.0 {
            x + noise * standard_normal(&mut rng.0) as f32
        } else {
            x
        }
    };
    let forward_speed = Vec2::from_angle(heading).dot(velocity.linear);
    let heading_error = wrap_angle(heading - projection.tangent.to_angle());
    let half_width = 0.5 * track.width;
    let n = sensors;
    out.observation[n] = noisy(forward_speed / o.max_speed);
    if o.privileged {
        out.observation[n + 1] = noisy(heading_error);
        out.observation[n + 2] = noisy(projection.lateral / half_width);
    }
    let last = out.observation.len() - 1;
    out.observation[last] = noisy(state.steer / o.max_steer);

    if !state.started {
        state.started = true;
        state.last_s = projection.s;
        return;
    }
    reward_and_outcome(o, track, &projection, state, &mut out);
}

/// The step's reward (progress along the centre line, minus the off-centre penalty) and how
/// the episode stands: off the road, stalled, lap completed, timed out or driving on.
fn reward_and_outcome(
    o: &VehicleOptions,
    track: &Track,
    projection: &Projection,
    state: &mut Drive,
    out: &mut EnvOutput,
) {
    let half_width = 0.5 * track.width;
    let ds = track.arc_delta(state.last_s, projection.s);
    state.last_s = projection.s;
    state.progress += ds;
    state.steps += 1;
    if state.progress > state.best_progress + 1e-3 {
        state.best_progress = state.progress;
        state.steps_since_best = 0;
    } else {
        state.steps_since_best += 1;
    }
    let off_centre = projection.lateral / half_width;
    out.reward =
        o.progress_weight * ds / (o.speed * o.dt) - o.centre_penalty * off_centre * off_centre;
    let stall_steps = (o.stall_seconds / o.dt).ceil() as u32;
    state.outcome = if projection.lateral.abs() > half_width {
        Outcome::OffRoad
    } else if state.steps_since_best >= stall_steps {
        Outcome::Stalled
    } else if state.progress >= track.length {
        Outcome::LapCompleted
    } else if state.steps >= o.max_episode_steps {
        Outcome::TimedOut
    } else {
        Outcome::Driving
    };
    match state.outcome {
        Outcome::Driving => {}
        Outcome::LapCompleted => out.truncated = true,
        Outcome::OffRoad | Outcome::Stalled => {
            out.reward -= o.crash_penalty;
            out.terminated = true;
        }
        Outcome::TimedOut => out.terminated = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_rays_fan_symmetrically() {
        let o = VehicleOptions::default();
        assert!(o.validate().is_ok());
        let a = o.ray_angles();
        assert_eq!(a.len(), 11);
        assert!((a[0] + a[10]).abs() < 1e-6 && a[5].abs() < 1e-6);
    }

    #[test]
    fn overlapping_seed_ranges_are_rejected() {
        let o = VehicleOptions {
            eval_seeds: [10, 20],
            ..VehicleOptions::default()
        };
        let err = o
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("vehicle") && err.contains("overlap"), "{err}");
    }
}
