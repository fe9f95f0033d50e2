//! Undulatory swimming: a chain of capsule segments joined by motorised revolute joints in a
//! viscous medium, the planar counterpart of C. elegans swimming and MuJoCo's `Swimmer`.
//!
//! Why it swims: every segment feels resistive-force-theory drag, much stronger across its axis
//! (`drag_normal`) than along it (`drag_tangential`). A wave of bends travelling from head to
//! tail then pushes the water backwards and the body forwards; the same wave travelling the
//! other way swims backwards, and a body at rest stays put. No gravity (top-down view).
//!
//! Drag is applied as an `ExternalForce` computed once per env step. So that strong drag never
//! makes the explicit force unstable, each coefficient is replaced by the one whose impulse over
//! `dt` removes exactly the fraction `1 − exp(−c·dt/m)` of the velocity component, which tends
//! to the plain RFT force `c·v` for small `c·dt/m` and never overshoots for large ones.

use bevy::app::{App, PostUpdate, Startup, Update};
use bevy::ecs::prelude::*;
use bevy::math::{Quat, Vec2};
use bevy::transform::components::Transform;
use bevy_rapier2d::prelude::{
    Collider, ColliderMassProperties, CollisionGroups, ExternalForce, Group, ImpulseJoint,
    RevoluteJointBuilder, RigidBody, Sleeping, TypedJoint, Velocity,
};
use rand::Rng;
use serde::Deserialize;
use wormnet_sim::bevy_env::{
    collider_frame, BevyEnvPlugin, EnvAction, EnvOutput, EnvSystems, EpisodeRng, PhysicsConfig,
};
use wormnet_sim::frame::{world_grid, Geometry, Overlay, Pose, Rgba, Shape};
use wormnet_sim::planar::{wrap_angle, yaw};
use wormnet_sim::{parse_options, EnvError, EnvSpec, Frame, Space};

/// Registry name.
pub const NAME: &str = "worm";

/// What the joint actions command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actuation {
    /// Action × `max_torque` is a torque between the two segments (as MuJoCo's Swimmer). At
    /// `dt` = 0.04 the joints swing far within one step and can overrun their limits, and an
    /// open-loop gait wanders off course: raise `substeps` and `solver_iterations` for accuracy.
    Torque,
    /// Action × `joint_limit` is the joint's target angle, reached by a position motor whose
    /// torque is capped at `max_torque` (muscles setting the body's curvature). The default:
    /// well resolved at `dt` = 0.04 and holds a heading.
    TargetAngle,
}

/// Options accepted in the env's TOML table; `configs/worm.toml` documents each one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WormOptions {
    /// Number of body segments (joints = segments − 1).
    pub segments: usize,
    /// Length of one segment, tip to tip, in metres.
    pub segment_length: f32,
    /// Radius of a segment's capsule in metres.
    pub segment_radius: f32,
    /// Mass of one segment in kg.
    pub segment_mass: f32,
    /// Drag per metre of body against sideways motion, N·s/m² (RFT normal coefficient).
    pub drag_normal: f32,
    /// Drag per metre of body against lengthwise motion, N·s/m² (RFT tangential coefficient).
    pub drag_tangential: f32,
    /// What the actions command: `torque` or `target_angle`.
    pub actuation: Actuation,
    /// Joint torque in N·m at |action| = 1 (torque mode) or the motor's torque cap (target angle).
    pub max_torque: f32,
    /// Joint limit in radians, symmetric; also the target angle at |action| = 1.
    pub joint_limit: f32,
    /// Target-angle motor stiffness (acceleration-based, 1/s²).
    pub motor_stiffness: f32,
    /// Target-angle motor damping (acceleration-based, 1/s).
    pub motor_damping: f32,
    /// Simulated seconds per env step (Swimmer-v5 acts every 0.04 s).
    pub dt: f32,
    /// Rapier steps per env step.
    pub substeps: usize,
    /// Rapier solver iterations per step.
    pub solver_iterations: usize,
    /// Time limit in env steps.
    pub max_episode_steps: u32,
    /// Weight of the forward speed (m/s) in the reward.
    pub forward_reward_weight: f32,
    /// Weight of the squared actions subtracted from the reward.
    pub ctrl_cost_weight: f32,
    /// Half-width of the uniform noise on the initial joint angles, radians.
    pub reset_noise: f32,
    /// Distance to a goal in metres; 0 swims along the initial heading instead (no goal).
    pub goal_distance: f32,
    /// Goals are placed within ± this bearing (radians) of the initial heading.
    pub goal_bearing: f32,
    /// The episode ends (task solved) when the head is this close to the goal, metres.
    pub goal_radius: f32,
    /// Reward added when the goal is reached.
    pub goal_bonus: f32,
    /// Whether the observation ends with the unit direction to the goal (or forward) in the head frame.
    pub observe_target_direction: bool,
}

impl Default for WormOptions {
    fn default() -> Self {
        WormOptions {
            segments: 6,
            segment_length: 0.2,
            segment_radius: 0.035,
            segment_mass: 0.1,
            drag_normal: 4.0,
            drag_tangential: 0.2,
            actuation: Actuation::TargetAngle,
            max_torque: 0.25,
            joint_limit: 1.2,
            motor_stiffness: 400.0,
            motor_damping: 40.0,
            dt: 0.04,
            substeps: 1,
            solver_iterations: 4,
            max_episode_steps: 1000,
            forward_reward_weight: 1.0,
            ctrl_cost_weight: 1e-4,
            reset_noise: 0.1,
            goal_distance: 0.0,
            goal_bearing: 1.0,
            goal_radius: 0.2,
            goal_bonus: 10.0,
            observe_target_direction: true,
        }
    }
}

impl WormOptions {
    /// Total body length in metres (tip to tip when straight).
    pub fn body_length(&self) -> f32 {
        self.segments as f32 * self.segment_length
    }

    fn validate(&self) -> Result<(), EnvError> {
        let bad = |message: String| {
            Err(EnvError::Options {
                env: NAME.to_string(),
                message,
            })
        };
        let positive = [
            ("segment_length", self.segment_length),
            ("segment_radius", self.segment_radius),
            ("segment_mass", self.segment_mass),
            ("max_torque", self.max_torque),
            ("joint_limit", self.joint_limit),
            ("dt", self.dt),
        ];
        let non_negative = [
            ("drag_normal", self.drag_normal),
            ("drag_tangential", self.drag_tangential),
            ("motor_stiffness", self.motor_stiffness),
            ("motor_damping", self.motor_damping),
            ("forward_reward_weight", self.forward_reward_weight),
            ("ctrl_cost_weight", self.ctrl_cost_weight),
            ("reset_noise", self.reset_noise),
            ("goal_distance", self.goal_distance),
            ("goal_bearing", self.goal_bearing),
            ("goal_radius", self.goal_radius),
            ("goal_bonus", self.goal_bonus),
        ];
        wormnet_sim::env::check_option_ranges(NAME, &positive, &non_negative)?;
        if self.dt > 1.0 {
            return bad(format!("dt must be at most 1 s, got {}", self.dt));
        }
        if self.segments < 2 || self.segments > 64 {
            return bad(format!("segments must be in 2..=64, got {}", self.segments));
        }
        if self.segment_radius * 2.0 >= self.segment_length {
            return bad(format!(
                "segment_radius ({}) must be less than half of segment_length ({})",
                self.segment_radius, self.segment_length
            ));
        }
        if self.joint_limit >= std::f32::consts::PI {
            return bad(format!(
                "joint_limit must be below π, got {}",
                self.joint_limit
            ));
        }
        if self.substeps == 0 || self.solver_iterations == 0 {
            return bad("substeps and solver_iterations must be at least 1".to_string());
        }
        if self.max_episode_steps == 0 {
            return bad("max_episode_steps must be at least 1".to_string());
        }
        Ok(())
    }
}

/// The env's plugin from a TOML options table (unknown or invalid options are an error); the
/// registry wraps it in a `BevyEnv`, several to an `App` when `env.envs_per_app` asks.
pub fn plugin(options: &toml::Table) -> Result<Worm, EnvError> {
    Worm::new(parse_options(NAME, options)?)
}

/// The swimming-worm plugin: spawns the chain, applies drag and joint actions, observes the
/// body, rewards forward (or goal-ward) speed of the centre of mass.
pub struct Worm {
    options: WormOptions,
}

impl Worm {
    /// The plugin with checked options.
    pub fn new(options: WormOptions) -> Result<Self, EnvError> {
        options.validate()?;
        Ok(Worm { options })
    }

    /// The options this worm was built with.
    pub fn options(&self) -> &WormOptions {
        &self.options
    }
}

/// A body segment and its place in the chain (0 = head).
#[derive(Component, Clone, Copy, Debug)]
pub struct Segment(pub usize);

/// The joint on a segment's entity, linking it to segment `index` (its parent, nearer the head).
#[derive(Component, Clone, Copy, Debug)]
struct JointOf(usize);

/// Options plus the drag coefficients derived from them, for the systems.
#[derive(Resource, Clone)]
struct Config {
    options: WormOptions,
    /// Effective (impulse-exact) drag coefficients: tangential, normal (N·s/m), rotational (N·m·s).
    drag_t: f32,
    drag_n: f32,
    drag_r: f32,
}

/// The exactly-decaying equivalent of a linear drag `c` on inertia `m` over `dt`.
fn effective_drag(c: f32, m: f32, dt: f32) -> f32 {
    if c <= 0.0 {
        return 0.0;
    }
    m / dt * (1.0 - (-c * dt / m).exp())
}

impl Config {
    fn new(options: WormOptions) -> Config {
        let l = options.segment_length;
        let m = options.segment_mass;
        let dt = options.dt;
        // A rod of length l rotating about its centre: RFT torque c_n·l³/12·ω, inertia m·l²/12.
        let inertia = m * l * l / 12.0;
        Config {
            drag_t: effective_drag(options.drag_tangential * l, m, dt),
            drag_n: effective_drag(options.drag_normal * l, m, dt),
            drag_r: effective_drag(options.drag_normal * l * l * l / 12.0, inertia, dt),
            options,
        }
    }
}

/// Episode state the reward needs between steps, plus scratch buffers (no per-step allocation).
#[derive(Resource, Default)]
pub struct Swim {
    /// Centre of mass at the previous observation.
    pub previous_com: Vec2,
    /// The goal, when `goal_distance > 0`.
    pub goal: Option<Vec2>,
    /// The direction that counts as forward (the initial heading).
    pub forward: Vec2,
    started: bool,
    angle: Vec<f32>,
    omega: Vec<f32>,
    position: Vec<Vec2>,
    torque: Vec<f32>,
}

impl BevyEnvPlugin for Worm {
    fn spec(&self) -> EnvSpec {
        let o = &self.options;
        let joints = o.segments - 1;
        let mut names: Vec<String> = (0..joints).map(|i| format!("joint{i}_angle")).collect();
        names.extend((0..joints).map(|i| format!("joint{i}_velocity")));
        names.extend(
            [
                "head_velocity_forward",
                "head_velocity_lateral",
                "head_angular_velocity",
            ]
            .map(String::from),
        );
        if o.observe_target_direction {
            names
                .extend(["target_direction_forward", "target_direction_lateral"].map(String::from));
        }
        let action = match o.actuation {
            Actuation::Torque => "torque",
            Actuation::TargetAngle => "target",
        };
        EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box {
                low: vec![f32::NEG_INFINITY; names.len()],
                high: vec![f32::INFINITY; names.len()],
            },
            action_space: Space::Box {
                low: vec![-1.0; joints],
                high: vec![1.0; joints],
            },
            dt: o.dt,
            max_episode_steps: Some(o.max_episode_steps),
            observation_names: names,
            action_names: (0..joints).map(|i| format!("joint{i}_{action}")).collect(),
            clip_actions: false,
            survival_is_success: false,
            image: None,
        }
    }

    fn physics(&self) -> PhysicsConfig {
        PhysicsConfig {
            substeps: self.options.substeps,
            gravity: Vec2::ZERO,
            solver_iterations: self.options.solver_iterations,
        }
    }

    /// `spawn` sets every field of `Swim`, and `Config` never changes.
    fn respawns_in_place(&self) -> bool {
        true
    }

    fn build(&self, app: &mut App) {
        app.insert_resource(Config::new(self.options.clone()))
            .insert_resource(Swim::default())
            .add_systems(Startup, spawn)
            .add_systems(Update, actuate.in_set(EnvSystems::Act))
            .add_systems(PostUpdate, observe.in_set(EnvSystems::Observe));
    }

    fn frame(&self, world: &World) -> Frame {
        let mut frame = collider_frame(world);
        let Some(swim) = world.get_resource::<Swim>() else {
            return frame;
        };
        let c = swim.previous_com;
        let half = self.options.body_length().max(1.0);
        let view = [c.x - 1.5 * half, c.y - half, c.x + 1.5 * half, c.y + half];
        frame.view = Some(view);
        // A grid fixed in the medium: the view follows the worm, so the grid shows it swim.
        frame
            .polylines
            .extend(world_grid(view, GRID_SPACING, Rgba([120, 140, 170, 90])));
        frame.overlays.push(Overlay {
            label: "centre_of_mass_x".to_string(),
            value: c.x,
            at: Some([c.x, c.y]),
        });
        if let Some(goal) = swim.goal {
            frame.shapes.push(Shape {
                geometry: Geometry::Circle {
                    radius: self.options.goal_radius,
                },
                pose: Pose {
                    x: goal.x,
                    y: goal.y,
                    angle: 0.0,
                },
                color: Rgba::rgb(220, 160, 40),
            });
        }
        frame
    }
}

/// Spacing of the drawn medium grid, m.
const GRID_SPACING: f32 = 0.25;

/// Lays the chain out from the head (at the origin, facing +x) towards −x, with seeded noise on
/// the joint angles, and places the goal if there is one.
fn spawn(
    mut commands: Commands,
    mut rng: ResMut<EpisodeRng>,
    config: Res<Config>,
    mut swim: ResMut<Swim>,
) {
    let o = &config.options;
    let l = o.segment_length;
    let n = o.segments;
    // Worm segments never collide (with each other or anything else): swimming in open water.
    let no_contacts = CollisionGroups::new(Group::GROUP_1, Group::NONE);
    let mut heading = 0.0f32;
    let mut centre = Vec2::ZERO;
    let mut parent: Option<Entity> = None;
    let mut com = Vec2::ZERO;
    for i in 0..n {
        if i > 0 {
            let joint_angle = if o.reset_noise > 0.0 {
                rng.0.random_range(-o.reset_noise..=o.reset_noise)
            } else {
                0.0
            };
            // The joint sits at the parent's tail; the child hangs behind it.
            let tail = centre - 0.5 * l * Vec2::from_angle(heading);
            heading += joint_angle;
            centre = tail - 0.5 * l * Vec2::from_angle(heading);
        }
        com += centre / n as f32;
        let mut entity = commands.spawn((
            Segment(i),
            RigidBody::Dynamic,
            Collider::capsule_x(0.5 * l - o.segment_radius, o.segment_radius),
            ColliderMassProperties::Mass(o.segment_mass),
            no_contacts,
            Velocity::zero(),
            ExternalForce::default(),
            Sleeping::disabled(),
            Transform::from_xyz(centre.x, centre.y, 0.0)
                .with_rotation(Quat::from_rotation_z(heading)),
        ));
        if let Some(parent) = parent {
            let mut builder = RevoluteJointBuilder::new()
                .local_anchor1(Vec2::new(-0.5 * l, 0.0))
                .local_anchor2(Vec2::new(0.5 * l, 0.0))
                .limits([-o.joint_limit, o.joint_limit]);
            if o.actuation == Actuation::TargetAngle {
                builder = builder
                    .motor_position(0.0, o.motor_stiffness, o.motor_damping)
                    .motor_max_force(o.max_torque);
            }
            let mut joint = builder.build();
            joint.set_contacts_enabled(false);
            entity.insert((ImpulseJoint::new(parent, joint), JointOf(i - 1)));
        }
        parent = Some(entity.id());
    }
    swim.forward = Vec2::X;
    swim.goal = (o.goal_distance > 0.0).then(|| {
        let bearing = if o.goal_bearing > 0.0 {
            rng.0.random_range(-o.goal_bearing..=o.goal_bearing)
        } else {
            0.0
        };
        o.goal_distance * Vec2::from_angle(bearing)
    });
    swim.previous_com = com;
    swim.started = false;
    swim.angle = vec![0.0; n];
    swim.omega = vec![0.0; n];
    swim.position = vec![Vec2::ZERO; n];
    swim.torque = vec![0.0; n];
}

/// Applies the joint actions (torques or motor targets) and the resistive-force drag.
fn actuate(
    action: Res<EnvAction>,
    config: Res<Config>,
    mut swim: ResMut<Swim>,
    mut segments: Query<(&Segment, &Transform, &Velocity, &mut ExternalForce)>,
    mut joints: Query<(&JointOf, &mut ImpulseJoint)>,
) {
    let o = &config.options;
    let torque = &mut swim.torque;
    torque.fill(0.0);
    match o.actuation {
        Actuation::Torque => {
            // Joint j pushes its child (j + 1) one way and its parent (j) the other.
            for (j, a) in action.0.iter().enumerate() {
                let tau = a * o.max_torque;
                torque[j + 1] += tau;
                torque[j] -= tau;
            }
        }
        Actuation::TargetAngle => {
            for (joint_of, mut joint) in &mut joints {
                if let TypedJoint::RevoluteJoint(revolute) = &mut joint.data {
                    let target = action.0[joint_of.0] * o.joint_limit;
                    revolute.set_motor_position(target, o.motor_stiffness, o.motor_damping);
                }
            }
        }
    }
    for (segment, transform, velocity, mut force) in &mut segments {
        let axis = Vec2::from_angle(yaw(transform));
        let normal = axis.perp();
        let v = velocity.linear;
        let drag = -config.drag_t * v.dot(axis) * axis - config.drag_n * v.dot(normal) * normal;
        force.force = drag;
        force.torque = torque[segment.0] - config.drag_r * velocity.angular;
    }
}

/// Fills the observation and the reward: forward (or goal-ward) speed of the centre of mass
/// minus the control cost; ends the episode when the goal is reached.
fn observe(
    action: Res<EnvAction>,
    config: Res<Config>,
    mut swim: ResMut<Swim>,
    segments: Query<(&Segment, &Transform, &Velocity)>,
    mut out: ResMut<EnvOutput>,
) {
    let o = &config.options;
    let n = o.segments;
    let swim = &mut *swim;
    for (segment, transform, velocity) in &segments {
        let i = segment.0;
        swim.angle[i] = yaw(transform);
        swim.omega[i] = velocity.angular;
        swim.position[i] = transform.translation.truncate();
        if i == 0 {
            let axis = Vec2::from_angle(swim.angle[0]);
            let v = velocity.linear;
            out.observation[2 * (n - 1)] = v.dot(axis);
            out.observation[2 * (n - 1) + 1] = v.dot(axis.perp());
            out.observation[2 * (n - 1) + 2] = velocity.angular;
        }
    }
    for j in 0..n - 1 {
        out.observation[j] = wrap_angle(swim.angle[j + 1] - swim.angle[j]);
        out.observation[n - 1 + j] = swim.omega[j + 1] - swim.omega[j];
    }
    let com = swim.position.iter().copied().sum::<Vec2>() / n as f32;
    let head = swim.position[0];
    let target = match swim.goal {
        Some(goal) => (goal - head).normalize_or_zero(),
        None => swim.forward,
    };
    if o.observe_target_direction {
        // The target direction in the head's frame: (forward, left) components.
        let local = Vec2::from_angle(-swim.angle[0]).rotate(target);
        let k = 2 * (n - 1) + 3;
        out.observation[k] = local.x;
        out.observation[k + 1] = local.y;
    }
    if !swim.started {
        // The reset observation: nothing has moved yet.
        swim.started = true;
        swim.previous_com = com;
        return;
    }
    let progress = match swim.goal {
        Some(goal) => (goal - swim.previous_com).length() - (goal - com).length(),
        None => (com - swim.previous_com).dot(swim.forward),
    };
    swim.previous_com = com;
    let ctrl: f32 = action.0.iter().map(|a| a * a).sum();
    out.reward = o.forward_reward_weight * progress / o.dt - o.ctrl_cost_weight * ctrl;
    if let Some(goal) = swim.goal {
        if (goal - head).length() <= o.goal_radius {
            out.reward += o.goal_bonus;
            out.terminated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_drag_matches_rft_for_weak_drag_and_never_overshoots() {
        let c = effective_drag(0.01, 1.0, 0.04);
        assert!((c - 0.01).abs() < 1e-5, "{c}");
        // Very strong drag: the impulse over dt removes at most the whole momentum.
        let strong = effective_drag(1e6, 1.0, 0.04);
        assert!(strong * 0.04 <= 1.0 + 1e-6, "{strong}");
        assert_eq!(effective_drag(0.0, 1.0, 0.04), 0.0);
    }

    #[test]
    fn wrap_stays_in_range() {
        for a in [-7.0f32, -3.2, -1.0, 0.0, 1.0, 3.2, 7.0] {
            let w = wrap_angle(a);
            assert!(w > -std::f32::consts::PI - 1e-6 && w <= std::f32::consts::PI + 1e-6);
            let turns = (w - a) / std::f32::consts::TAU;
            assert!((turns - turns.round()).abs() < 1e-4, "{a} -> {w}");
        }
    }

    #[test]
    fn bad_options_name_the_option() {
        let options = WormOptions {
            segments: 1,
            ..WormOptions::default()
        };
        let err = Worm::new(options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("worm") && err.contains("segments"), "{err}");
        let options = WormOptions {
            segment_radius: 0.2,
            ..WormOptions::default()
        };
        let err = Worm::new(options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("segment_radius"), "{err}");
    }
}
