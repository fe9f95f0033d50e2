//! The car's camera: an egocentric, forward-looking pinhole view of the ground, rendered in
//! software from the track geometry — deterministic, no GPU. Each pixel's ray is intersected
//! with the ground once (in the car's frame); a frame then only moves those ground points with
//! the car and asks the road what lies there: road, lane markings, verge, or sky beyond range.

use bevy::math::Vec2;
use rand::Rng;
use wormnet_sim::noise::standard_normal;

use super::track::Track;

/// Grey levels in [0, 1] of what the camera can see.
pub mod shade {
    /// Above the horizon or beyond the camera's range.
    pub const SKY: f32 = 0.8;
    /// Off the road.
    pub const VERGE: f32 = 0.15;
    /// Asphalt.
    pub const ROAD: f32 = 0.4;
    /// The edge lines and the dashed centre line.
    pub const MARKING: f32 = 0.95;
}

/// Width of the painted lines, m.
const LINE: f32 = 0.25;
/// Period and painted length of the centre dashes, m.
const DASH: (f32, f32) = (3.0, 1.5);

/// How the camera is mounted and what it resolves.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraParams {
    /// Image width, pixels.
    pub width: usize,
    /// Image height, pixels.
    pub height: usize,
    /// Horizontal field of view, radians.
    pub fov: f32,
    /// Height of the lens above the ground, m.
    pub mount_height: f32,
    /// Downward tilt of the optical axis, radians.
    pub pitch: f32,
    /// Farthest ground point drawn, m; beyond is sky.
    pub range: f32,
}

/// A camera with each pixel's ground point precomputed.
#[derive(Clone, Debug)]
pub struct Camera {
    /// Pixels per row.
    width: usize,
    /// Per pixel, row-major from the top-left: the ground point (forward, left) in metres in
    /// the car's frame, or None for sky.
    ground: Vec<Option<Vec2>>,
}

impl Camera {
    /// Intersects every pixel's ray with the ground.
    pub fn new(p: &CameraParams) -> Camera {
        let tan_h = (0.5 * p.fov).tan();
        let tan_v = tan_h * p.height as f32 / p.width as f32;
        let (sin_p, cos_p) = p.pitch.sin_cos();
        let mut ground = Vec::with_capacity(p.width * p.height);
        for row in 0..p.height {
            // +1 at the top edge, −1 at the bottom.
            let up = (1.0 - 2.0 * (row as f32 + 0.5) / p.height as f32) * tan_v;
            for col in 0..p.width {
                let left = (1.0 - 2.0 * (col as f32 + 0.5) / p.width as f32) * tan_h;
                // The ray (1, left, up) in the camera, tilted down by the pitch.
                let forward = cos_p + up * sin_p;
                let rise = up * cos_p - sin_p;
                ground.push(
                    (rise < 0.0)
                        .then(|| {
                            let t = p.mount_height / -rise;
                            Vec2::new(t * forward, t * left)
                        })
                        .filter(|g| g.length() <= p.range),
                );
            }
        }
        Camera {
            width: p.width,
            ground,
        }
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.ground.len()
    }

    /// Renders the view of a car at `position` heading `heading` (radians) into `out` (one
    /// grey level per pixel, row-major from the top-left), starting the road search at centre
    /// segment `hint` (the car's). Rows are walked from the bottom (near) up, each pixel's
    /// search starting where the pixel below it found the road; `hints` is the caller's
    /// scratch for that (one entry per column), kept between frames so no step allocates.
    pub fn render(
        &self,
        track: &Track,
        (position, heading): (Vec2, f32),
        hint: usize,
        hints: &mut Vec<usize>,
        out: &mut [f32],
    ) {
        let (sin_h, cos_h) = heading.sin_cos();
        let half = 0.5 * track.width;
        let width = self.width;
        hints.clear();
        hints.resize(width, hint);
        for row in (0..self.ground.len() / width).rev() {
            for (col, column_hint) in hints.iter_mut().enumerate() {
                let k = row * width + col;
                let Some(g) = self.ground[k] else {
                    out[k] = shade::SKY;
                    continue;
                };
                let world =
                    position + Vec2::new(cos_h * g.x - sin_h * g.y, sin_h * g.x + cos_h * g.y);
                let projection = track.project_near(world, *column_hint);
                *column_hint = projection.index;
                let lateral = projection.lateral.abs();
                out[k] = if lateral > half {
                    shade::VERGE
                } else if lateral > half - LINE
                    || (lateral < 0.5 * LINE && projection.s.rem_euclid(DASH.0) < DASH.1)
                {
                    shade::MARKING
                } else {
                    shade::ROAD
                };
            }
        }
    }
}

/// Training augmentation: adds `brightness` and Gaussian noise of std `noise` to every pixel,
/// clamped to [0, 1]; draws nothing when both are 0.
pub fn augment<R: Rng + ?Sized>(image: &mut [f32], brightness: f32, noise: f32, rng: &mut R) {
    if noise == 0.0 && brightness == 0.0 {
        return;
    }
    for px in image.iter_mut() {
        let n = if noise > 0.0 {
            noise * standard_normal(rng) as f32
        } else {
            0.0
        };
        *px = (*px + brightness + n).clamp(0.0, 1.0);
    }
}
