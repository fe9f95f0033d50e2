//! Procedural closed roads: a seed gives one track (centre line, borders, width), so training
//! and held-out evaluation can use disjoint, reproducible sets of tracks.
//!
//! A track is a star-shaped loop `r(θ) = 1 + Σ aₖ cos(kθ + φₖ)` scaled to the drawn length.
//! Its amplitudes shrink until the sharpest bend is within `max_curvature` and no two distant
//! parts of the road come closer than 1.5 road widths, so the borders never cross and every
//! generated track can be driven at the configured speed.

use bevy::math::Vec2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How tracks are drawn; every range is `[min, max]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackParams {
    /// Centre-line length range in metres.
    pub length: [f32; 2],
    /// Road width range in metres.
    pub width: [f32; 2],
    /// Sharpest allowed bend, 1/m (the inverse of the tightest radius).
    pub max_curvature: f32,
    /// Number of harmonics shaping the loop (more: more bends per lap).
    pub harmonics: usize,
    /// Amplitude of the harmonics before they are shrunk to meet the curvature bound.
    pub roughness: f32,
}

/// One closed road, its points in driving order (counter-clockwise or clockwise).
#[derive(Clone, Debug)]
pub struct Track {
    /// The seed that drew it.
    pub seed: u64,
    /// Centre line, about one metre between points; the last point joins the first.
    pub centre: Vec<Vec2>,
    /// Left border (seen in the driving direction).
    pub left: Vec<Vec2>,
    /// Right border.
    pub right: Vec<Vec2>,
    /// Road width in metres.
    pub width: f32,
    /// Centre-line length in metres (one lap).
    pub length: f32,
    /// Arc length at each centre point.
    arc: Vec<f32>,
    /// Unit direction of each centre segment `i → i+1`.
    tangent: Vec<Vec2>,
    /// Length of each centre segment.
    segment: Vec<f32>,
}

/// Where a point lies relative to the road.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    /// The centre segment nearest to the point (a hint for the next projection).
    pub index: usize,
    /// Arc length of the nearest centre point, in `[0, length)`.
    pub s: f32,
    /// Signed distance from the centre line, positive to the left of the driving direction.
    pub lateral: f32,
    /// Unit road direction at the nearest point.
    pub tangent: Vec2,
}

/// Points on the dense loop used before resampling to uniform spacing.
const DENSE: usize = 1440;

impl Track {
    /// Draws the track of `seed`. Deterministic: the same seed and params give the same track.
    pub fn generate(seed: u64, params: &TrackParams) -> Track {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let length = uniform(&mut rng, params.length);
        let width = uniform(&mut rng, params.width);
        let harmonics: Vec<(f32, f32, f32)> = (0..params.harmonics)
            .map(|i| {
                let k = (i + 2) as f32;
                let amplitude = rng.random_range(0.0..=1.0f32) * params.roughness / k;
                let phase = rng.random_range(0.0..std::f32::consts::TAU);
                (k, amplitude, phase)
            })
            .collect();
        let clockwise = rng.random_bool(0.5);
        // Keep r(θ) ≥ 0.4 whatever the phases.
        let total: f32 = harmonics.iter().map(|h| h.1).sum();
        let mut shrink = if total > 0.6 { 0.6 / total } else { 1.0 };
        let mut dense = Vec::with_capacity(DENSE);
        for _ in 0..60 {
            dense.clear();
            for j in 0..DENSE {
                let theta = std::f32::consts::TAU * j as f32 / DENSE as f32;
                let r = 1.0
                    + harmonics
                        .iter()
                        .map(|&(k, a, phi)| shrink * a * (k * theta + phi).cos())
                        .sum::<f32>();
                dense.push(r * Vec2::from_angle(theta));
            }
            let perimeter = closed_length(&dense);
            let scale = length / perimeter;
            for p in dense.iter_mut() {
                *p *= scale;
            }
            if max_curvature(&dense) <= params.max_curvature
                && narrowest_gap(&dense, width, 1.5 * width) >= 1.5 * width
            {
                break;
            }
            shrink *= 0.8;
        }
        if clockwise {
            dense.reverse();
        }
        let count = ((length / 1.0).round() as usize).max(16);
        let centre = resample(&dense, count);
        Track::from_centre(seed, centre, width)
    }

    /// A track from a closed centre line (points in driving order) and a width.
    pub fn from_centre(seed: u64, centre: Vec<Vec2>, width: f32) -> Track {
        let n = centre.len();
        let mut tangent = Vec::with_capacity(n);
        let mut segment = Vec::with_capacity(n);
        let mut arc = Vec::with_capacity(n);
        let mut s = 0.0;
        for i in 0..n {
            let d = centre[(i + 1) % n] - centre[i];
            arc.push(s);
            s += d.length();
            segment.push(d.length());
            tangent.push(d.normalize_or_zero());
        }
        let mut left = Vec::with_capacity(n);
        let mut right = Vec::with_capacity(n);
        for i in 0..n {
            // Vertex normal: the mean of the two adjacent segment directions, turned left.
            let dir = (tangent[(i + n - 1) % n] + tangent[i]).normalize_or_zero();
            let normal = dir.perp();
            left.push(centre[i] + 0.5 * width * normal);
            right.push(centre[i] - 0.5 * width * normal);
        }
        Track {
            seed,
            centre,
            left,
            right,
            width,
            length: s,
            arc,
            tangent,
            segment,
        }
    }

    /// Number of centre points (= segments, the loop is closed).
    pub fn len(&self) -> usize {
        self.centre.len()
    }

    /// Whether the track has no points (never true for a generated track).
    pub fn is_empty(&self) -> bool {
        self.centre.is_empty()
    }

    /// Unit road direction of centre segment `i`.
    pub fn tangent(&self, i: usize) -> Vec2 {
        self.tangent[i % self.len()]
    }

    /// Sharpest bend of the centre line, 1/m.
    pub fn max_curvature(&self) -> f32 {
        max_curvature(&self.centre)
    }

    /// Projects `p` onto the centre line, searching the `window` segments either side of
    /// `hint` (the previous projection's index), or the whole loop when `window` covers it.
    pub fn project(&self, p: Vec2, hint: usize, window: usize) -> Projection {
        let n = self.len();
        let mut best = (f32::INFINITY, 0usize, 0.0f32);
        let span = (2 * window + 1).min(n);
        let start = if span == n { 0 } else { hint + n - window };
        for k in 0..span {
            let i = (start + k) % n;
            let a = self.centre[i];
            let t = ((p - a).dot(self.tangent[i])).clamp(0.0, self.segment[i]);
            let q = a + t * self.tangent[i];
            let d2 = (p - q).length_squared();
            if d2 < best.0 {
                best = (d2, i, t);
            }
        }
        let (_, i, t) = best;
        let a = self.centre[i];
        let tangent = self.tangent[i];
        let lateral = tangent.perp_dot(p - a);
        let s = (self.arc[i] + t).rem_euclid(self.length);
        Projection {
            index: i,
            s,
            lateral,
            tangent,
        }
    }

    /// Projects `p` onto the centre line near `hint`: walks from `hint` to the locally nearest
    /// centre point, then projects within two segments of it. For points reached by small
    /// moves from the previous one (the pixels of a camera row, say) this costs a few steps
    /// where [`Self::project`] would need a wide window.
    pub fn project_near(&self, p: Vec2, hint: usize) -> Projection {
        let n = self.len();
        let d2 = |i: usize| (p - self.centre[i % n]).length_squared();
        let mut i = hint % n;
        for _ in 0..n {
            if d2(i + 1) < d2(i) {
                i = (i + 1) % n;
            } else if d2(i + n - 1) < d2(i) {
                i = (i + n - 1) % n;
            } else {
                break;
            }
        }
        self.project(p, i, 2)
    }

    /// The centre-line point at arc length `s` (wrapping around the loop).
    pub fn point_at(&self, s: f32) -> Vec2 {
        let s = s.rem_euclid(self.length);
        let i = match self.arc.binary_search_by(|a| a.total_cmp(&s)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        self.centre[i] + (s - self.arc[i]) * self.tangent[i]
    }

    /// Signed arc-length difference `to − from`, unwrapped into `(−length/2, length/2]`.
    pub fn arc_delta(&self, from: f32, to: f32) -> f32 {
        let d = (to - from).rem_euclid(self.length);
        if d > 0.5 * self.length {
            d - self.length
        } else {
            d
        }
    }

    /// Axis-aligned bounds `[min_x, min_y, max_x, max_y]` of the outer borders.
    pub fn bounds(&self) -> [f32; 4] {
        let mut b = [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ];
        for p in self.left.iter().chain(&self.right) {
            b = [b[0].min(p.x), b[1].min(p.y), b[2].max(p.x), b[3].max(p.y)];
        }
        b
    }
}

fn uniform(rng: &mut ChaCha8Rng, range: [f32; 2]) -> f32 {
    if range[1] > range[0] {
        rng.random_range(range[0]..=range[1])
    } else {
        range[0]
    }
}

fn closed_length(points: &[Vec2]) -> f32 {
    let n = points.len();
    (0..n)
        .map(|i| points[i].distance(points[(i + 1) % n]))
        .sum()
}

/// The largest turning angle per metre of a closed polyline.
fn max_curvature(points: &[Vec2]) -> f32 {
    let n = points.len();
    let mut worst = 0.0f32;
    for i in 0..n {
        let a = points[(i + n - 1) % n];
        let b = points[i];
        let c = points[(i + 1) % n];
        let (u, v) = (b - a, c - b);
        let turn = u.perp_dot(v).atan2(u.dot(v)).abs();
        let ds = 0.5 * (u.length() + v.length());
        if ds > 0.0 {
            worst = worst.max(turn / ds);
        }
    }
    worst
}

/// The smallest distance between two points of the loop that are more than `2·width` apart
/// along it (the road coming back close to itself), sampled about every metre; stops early
/// once it is below `enough`.
fn narrowest_gap(points: &[Vec2], width: f32, enough: f32) -> f32 {
    let n = points.len();
    let total = closed_length(points);
    let ds = total / n as f32;
    let stride = ((1.0 / ds).floor() as usize).max(1);
    let skip = ((2.0 * width / ds).ceil() as usize).max(1);
    let mut gap = f32::INFINITY;
    for i in (0..n).step_by(stride) {
        for j in (i + skip..n).step_by(stride) {
            let along = (j - i).min(n - (j - i));
            if along < skip {
                continue;
            }
            gap = gap.min(points[i].distance(points[j]));
        }
        if gap < enough {
            break;
        }
    }
    gap
}

/// `count` points evenly spaced by arc length along a closed polyline.
fn resample(points: &[Vec2], count: usize) -> Vec<Vec2> {
    let n = points.len();
    let total = closed_length(points);
    let step = total / count as f32;
    let mut out = Vec::with_capacity(count);
    let mut i = 0;
    let mut walked = 0.0; // arc length at points[i]
    for k in 0..count {
        let target = k as f32 * step;
        loop {
            let seg = points[i].distance(points[(i + 1) % n]);
            if walked + seg >= target || i + 1 >= n {
                let t = if seg > 0.0 {
                    ((target - walked) / seg).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                out.push(points[i].lerp(points[(i + 1) % n], t));
                break;
            }
            walked += seg;
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TrackParams {
        TrackParams {
            length: [200.0, 350.0],
            width: [8.0, 10.0],
            max_curvature: 0.08,
            harmonics: 4,
            roughness: 0.6,
        }
    }

    #[test]
    fn tracks_are_reproducible_and_differ_by_seed() {
        let a = Track::generate(5, &params());
        let b = Track::generate(5, &params());
        assert_eq!(a.centre, b.centre);
        let c = Track::generate(6, &params());
        assert_ne!(a.centre, c.centre);
    }

    #[test]
    fn tracks_respect_length_width_curvature_and_never_pinch() {
        let p = params();
        for seed in 0..40 {
            let t = Track::generate(seed, &p);
            assert!(
                (t.length - 200.0) > -2.0 && t.length < 352.0,
                "{seed}: {}",
                t.length
            );
            assert!((8.0..=10.0).contains(&t.width));
            // Resampling may sharpen the dense bound slightly.
            assert!(
                t.max_curvature() < 1.15 * p.max_curvature,
                "{seed}: {}",
                t.max_curvature()
            );
            assert!(
                narrowest_gap(&t.centre, t.width, 0.0) >= 1.4 * t.width,
                "{seed}"
            );
        }
    }

    #[test]
    fn projection_finds_arc_length_and_side() {
        let t = Track::generate(1, &params());
        let i = t.len() / 3;
        let left_of = t.centre[i] + 0.5 * t.tangent(i) + 2.0 * t.tangent(i).perp();
        let p = t.project(left_of, i, 5);
        assert_eq!(p.index, i);
        assert!((p.lateral - 2.0).abs() < 1e-3, "{p:?}");
        let global = t.project(left_of, 0, t.len());
        assert_eq!(global.index, i);
        assert!((t.arc_delta(t.length - 1.0, 1.0) - 2.0).abs() < 1e-3);
        assert!((t.point_at(p.s) - (t.centre[i] + 0.5 * t.tangent(i))).length() < 1e-2);
    }
}
