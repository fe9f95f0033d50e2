//! The ECS resources and components the vehicle's systems (and its expert) share: the car,
//! the borders, the options, the episode's track and the driving state.

use bevy::ecs::prelude::*;
use bevy::math::Vec2;

use super::camera::Camera;
use super::car::CarParams;
use super::options::VehicleOptions;
use super::track::Track;

/// Marks the car body.
#[derive(Component)]
pub struct Car;

/// Marks the two border colliders the range sensors see.
#[derive(Component)]
pub(super) struct Border;

/// Options and derived constants, for the systems.
#[derive(Resource, Clone)]
pub(super) struct Config {
    pub(super) options: VehicleOptions,
    pub(super) car: CarParams,
    pub(super) ray_angles: Vec<f32>,
    /// The camera, when the car observes through one.
    pub(super) camera: Option<Camera>,
}

/// The episode's track, readable by tools and tests through the env's `App`.
#[derive(Resource, Clone, Debug)]
pub struct Road(pub Track);

/// How the episode stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Still on the road, lap not complete.
    #[default]
    Driving,
    /// One full lap along the centre line: success.
    LapCompleted,
    /// The car's centre left the road.
    OffRoad,
    /// No new progress for `stall_seconds`.
    Stalled,
    /// The time limit came before the lap.
    TimedOut,
}

/// Driving state carried between steps.
#[derive(Resource, Clone, Debug, Default)]
pub struct Drive {
    /// Front-wheel angle now, radians.
    pub steer: f32,
    /// Metres driven along the centre line since the start (negative: backwards).
    pub progress: f32,
    /// How the episode stands.
    pub outcome: Outcome,
    /// Where each range sensor hit (or ended), world coordinates, for renderers.
    pub ray_ends: Vec<Vec2>,
    pub(super) best_progress: f32,
    pub(super) steps_since_best: u32,
    pub(super) steps: u32,
    pub(super) hint: usize,
    pub(super) last_s: f32,
    pub(super) started: bool,
    /// This episode's camera brightness offset.
    pub(super) brightness: f32,
    /// The camera's per-column road search hints (scratch kept between steps).
    pub(super) camera_hints: Vec<usize>,
}
