//! The vehicle's expert driver, the teacher of imitation learning: pure pursuit of the centre
//! line with full knowledge of the track and the car's pose, holding the cruise speed.

use bevy::ecs::prelude::*;
use bevy::math::Vec2;
use bevy::transform::components::Transform;
use bevy_rapier2d::prelude::Velocity;
use wormnet_sim::planar::yaw;

use super::car::SPEED_GAIN;
use super::track::Track;
use super::world::{Car, Config, Drive, Road};

/// Metres ahead along the centre line the expert steers towards (at least; more when fast).
const LOOKAHEAD: f32 = 7.0;
/// Seconds of driving the lookahead covers at high speed.
const LOOKAHEAD_SECONDS: f32 = 0.9;

/// The steering command in [-1, 1] that points the front wheels at the centre-line point
/// `lookahead` metres ahead of the car's projection (`hint`: the segment it was nearest last).
pub fn pure_pursuit(
    track: &Track,
    position: Vec2,
    heading: f32,
    hint: usize,
    lookahead: f32,
    wheelbase: f32,
    max_steer: f32,
) -> f32 {
    let projection = track.project_near(position, hint);
    let target = track.point_at(projection.s + lookahead);
    let local = Vec2::from_angle(-heading).rotate(target - position);
    let distance = local.length().max(1e-3);
    let alpha = local.y.atan2(local.x);
    let steer = (2.0 * wheelbase * alpha.sin() / distance).atan();
    (steer / max_steer).clamp(-1.0, 1.0)
}

/// Writes the expert's action (steering; throttle too when the env has it) for the world's
/// car. False before the car exists.
pub(super) fn expert_action(world: &World, action: &mut [f32]) -> bool {
    let (Some(road), Some(drive), Some(config)) = (
        world.get_resource::<Road>(),
        world.get_resource::<Drive>(),
        world.get_resource::<Config>(),
    ) else {
        return false;
    };
    let Some((transform, velocity)) = world
        .try_query_filtered::<(&Transform, &Velocity), With<Car>>()
        .and_then(|mut q| q.iter(world).next().map(|(t, v)| (*t, *v)))
    else {
        return false;
    };
    let o = &config.options;
    let heading = yaw(&transform);
    let forward = Vec2::from_angle(heading).dot(velocity.linear);
    let lookahead = LOOKAHEAD.max(LOOKAHEAD_SECONDS * forward);
    action[0] = pure_pursuit(
        &road.0,
        transform.translation.truncate(),
        heading,
        drive.hint,
        lookahead,
        o.front_axle + o.rear_axle,
        o.max_steer,
    );
    if o.throttle {
        // The same proportional speed law the car uses without throttle control.
        let accel = SPEED_GAIN * (o.speed - forward);
        action[1] = if accel >= 0.0 {
            (accel / o.max_accel).min(1.0)
        } else {
            (accel / o.max_brake).max(-1.0)
        };
    }
    true
}
