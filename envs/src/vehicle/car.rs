//! The car's driving forces: a single-track (bicycle) model with linear tyres saturating at the
//! friction limit, a steering actuator with a rate limit, and a speed controller or throttle.
//!
//! Rapier integrates the rigid body; this module only says which force and torque the road puts
//! on it for one env step. Pure functions, so the tyre model is testable without an `App`.

use bevy::math::Vec2;

/// Gain of the speed controller, 1/s: the speed error is corrected with a time constant of
/// 0.5 s (the car's cruise control, and the expert's throttle).
pub const SPEED_GAIN: f32 = 2.0;

/// Physical parameters of the car.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CarParams {
    /// Mass in kg.
    pub mass: f32,
    /// Body length in metres (also sets the yaw inertia of the box).
    pub length: f32,
    /// Body width in metres.
    pub width: f32,
    /// Distance from the centre of mass to the front axle, metres.
    pub front: f32,
    /// Distance from the centre of mass to the rear axle, metres.
    pub rear: f32,
    /// Lateral tyre force per radian of slip, per newton of axle load (1/rad).
    pub cornering_stiffness: f32,
    /// Tyre–road friction coefficient (caps every tyre force at `friction × load`).
    pub friction: f32,
}

impl CarParams {
    /// Yaw moment of inertia of a uniform box, the same value Rapier computes from the collider.
    pub fn inertia(&self) -> f32 {
        self.mass * (self.length * self.length + self.width * self.width) / 12.0
    }

    /// Static axle loads (front, rear) in newtons.
    fn loads(&self) -> (f32, f32) {
        let weight = self.mass * 9.81;
        let base = self.front + self.rear;
        (weight * self.rear / base, weight * self.front / base)
    }
}

/// The car's motion in its own frame (x forward, y left).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BodyMotion {
    /// Velocity of the centre of mass in the body frame, m/s.
    pub velocity: Vec2,
    /// Yaw rate, rad/s (counter-clockwise positive).
    pub yaw_rate: f32,
}

/// Force (body frame) and yaw torque the tyres put on the car for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TyreForces {
    /// Net force in the body frame, N.
    pub force: Vec2,
    /// Yaw torque about the centre of mass, N·m.
    pub torque: f32,
}

/// Below this speed the slip angles are computed as if the car moved this fast, so that a
/// car at rest gets no infinite slip.
const MIN_SLIP_SPEED: f32 = 1.0;
/// Fraction of an axle's sideways momentum its tyres may cancel within one step: keeps the
/// explicit tyre force from overshooting at low speed or with large `dt`.
const MAX_SLIP_CANCEL: f32 = 0.5;

/// Tyre forces of the bicycle model: the front wheel steered by `steer` radians, the drive
/// force `drive` (N, forward) on the rear axle, for a step of `dt` seconds.
pub fn tyre_forces(
    car: &CarParams,
    motion: BodyMotion,
    steer: f32,
    drive: f32,
    dt: f32,
) -> TyreForces {
    let (load_front, load_rear) = car.loads();
    let inertia = car.inertia();
    let v = motion.velocity;
    let w = motion.yaw_rate;
    // Velocity of each axle in the body frame, then the front one in the wheel's frame.
    let front = Vec2::new(v.x, v.y + car.front * w);
    let rear = Vec2::new(v.x, v.y - car.rear * w);
    let (sin, cos) = steer.sin_cos();
    let wheel = Vec2::new(
        front.x * cos + front.y * sin,
        -front.x * sin + front.y * cos,
    );
    let lateral_force = |lateral: f32, rolling: f32, load: f32, arm: f32| {
        let slip = lateral.atan2(rolling.abs().max(MIN_SLIP_SPEED));
        let linear = -car.cornering_stiffness * load * slip;
        // Effective mass of the body seen sideways at the axle.
        let effective_mass = 1.0 / (1.0 / car.mass + arm * arm / inertia);
        let cap = (car.friction * load).min(MAX_SLIP_CANCEL * effective_mass * lateral.abs() / dt);
        linear.clamp(-cap, cap)
    };
    let front_lateral = lateral_force(wheel.y, wheel.x, load_front, car.front);
    let mut rear_lateral = lateral_force(rear.y, rear.x, load_rear, car.rear);
    // The rear tyres share their grip between driving and cornering (friction circle).
    let grip = car.friction * load_rear;
    let drive = drive.clamp(-grip, grip);
    let rear_total = (drive * drive + rear_lateral * rear_lateral).sqrt();
    if rear_total > grip {
        rear_lateral *= grip / rear_total;
    }
    let front_force = Vec2::new(-sin * front_lateral, cos * front_lateral);
    TyreForces {
        force: front_force + Vec2::new(drive, rear_lateral),
        torque: car.front * front_force.y - car.rear * rear_lateral,
    }
}

/// Moves the steering angle towards `command` by at most `rate × dt` (a steering actuator).
pub fn steer_towards(current: f32, command: f32, rate: f32, dt: f32) -> f32 {
    let max_change = rate * dt;
    current + (command - current).clamp(-max_change, max_change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car() -> CarParams {
        CarParams {
            mass: 1200.0,
            length: 4.2,
            width: 1.8,
            front: 1.2,
            rear: 1.4,
            cornering_stiffness: 12.0,
            friction: 0.9,
        }
    }

    #[test]
    fn straight_rolling_has_no_side_force() {
        let f = tyre_forces(
            &car(),
            BodyMotion {
                velocity: Vec2::new(8.0, 0.0),
                yaw_rate: 0.0,
            },
            0.0,
            0.0,
            0.05,
        );
        assert_eq!(f, TyreForces::default());
    }

    #[test]
    fn steering_left_pushes_left_and_turns_left() {
        // Once the car slides slightly, the steered front wheel pulls it left and yaws it CCW.
        let f = tyre_forces(
            &car(),
            BodyMotion {
                velocity: Vec2::new(8.0, -0.05),
                yaw_rate: 0.0,
            },
            0.2,
            0.0,
            0.05,
        );
        assert!(f.force.y > 0.0 && f.torque > 0.0, "{f:?}");
    }

    #[test]
    fn sliding_is_capped_by_friction() {
        let c = car();
        let f = tyre_forces(
            &c,
            BodyMotion {
                velocity: Vec2::new(8.0, 8.0),
                yaw_rate: 0.0,
            },
            0.0,
            0.0,
            0.05,
        );
        assert!(
            f.force.length() <= c.friction * c.mass * 9.81 * 1.0001,
            "{f:?}"
        );
        assert!(f.force.y < 0.0);
    }

    #[test]
    fn steering_is_rate_limited() {
        assert_eq!(steer_towards(0.0, 0.5, 2.0, 0.05), 0.1);
        assert_eq!(steer_towards(0.0, -0.05, 2.0, 0.05), -0.05);
    }
}
