//! Angles of the plane that 2D Bevy environments share: a body's heading from its transform
//! and angles wrapped into one turn.

use bevy::prelude::Transform;

/// Planar rotation angle (about z) of a transform, in (−π, π].
pub fn yaw(transform: &Transform) -> f32 {
    let q = transform.rotation;
    2.0 * q.z.atan2(q.w)
}

/// Wraps an angle into (−π, π].
pub fn wrap_angle(angle: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    let a = angle.rem_euclid(tau);
    if a > std::f32::consts::PI {
        a - tau
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use bevy::prelude::{Quat, Transform};

    #[test]
    fn yaw_reads_back_a_rotation_and_wrap_stays_in_one_turn() {
        let t = Transform::from_rotation(Quat::from_rotation_z(1.25));
        assert!((super::yaw(&t) - 1.25).abs() < 1e-6);
        assert!(
            (super::wrap_angle(3.0 * std::f32::consts::PI) - std::f32::consts::PI).abs() < 1e-5
        );
        assert!((super::wrap_angle(-0.5) + 0.5).abs() < 1e-6);
    }
}
