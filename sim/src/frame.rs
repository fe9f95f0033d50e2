//! What a 2D renderer needs to draw one moment of an env, as plain serde data.

use serde::{Deserialize, Serialize};

/// Position and orientation of a shape in world coordinates (metres, radians).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// World x.
    pub x: f32,
    /// World y (up).
    pub y: f32,
    /// Counter-clockwise rotation in radians.
    pub angle: f32,
}

/// sRGB colour with alpha, so a recording carries its own palette.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rgba(pub [u8; 4]);

impl Rgba {
    /// Opaque colour from components.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Rgba {
        Rgba([r, g, b, 255])
    }
}

/// A shape's geometry in its own frame (centred on its pose).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Geometry {
    /// Axis-aligned rectangle before rotation.
    Rect {
        /// Half width.
        half_width: f32,
        /// Half height.
        half_height: f32,
    },
    /// Disc.
    Circle {
        /// Radius.
        radius: f32,
    },
    /// Stadium along the local y axis.
    Capsule {
        /// Half length of the straight segment.
        half_height: f32,
        /// Radius of the caps.
        radius: f32,
    },
    /// Closed convex or concave polygon.
    Polygon {
        /// Vertices in local coordinates.
        points: Vec<[f32; 2]>,
    },
}

/// A filled body: geometry placed at a pose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// What to draw.
    pub geometry: Geometry,
    /// Where.
    pub pose: Pose,
    /// Fill colour.
    pub color: Rgba,
}

/// An open or closed line in world coordinates (tracks, ground, sensor rays).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polyline {
    /// Points in world coordinates.
    pub points: Vec<[f32; 2]>,
    /// Whether the last point joins the first.
    pub closed: bool,
    /// Stroke colour.
    pub color: Rgba,
    /// Stroke width in metres.
    pub width: f32,
}

/// Env-specific information drawn over the scene (a force arrow's label, a target marker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    /// Short label, e.g. `torque`.
    pub label: String,
    /// Its value, shown as text or a gauge.
    pub value: f32,
    /// Optional world position to anchor the label to.
    pub at: Option<[f32; 2]>,
}

/// One moment of an env as a renderer sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Simulated time of this frame in seconds since the episode started.
    pub time: f32,
    /// Suggested visible region `[min_x, min_y, max_x, max_y]`.
    pub view: Option<[f32; 4]>,
    /// Bodies.
    pub shapes: Vec<Shape>,
    /// Lines.
    pub polylines: Vec<Polyline>,
    /// Labels and values.
    pub overlays: Vec<Overlay>,
}

/// Thin lines every `spacing` metres of the world across `view` (`[min_x, min_y, max_x,
/// max_y]`), on the world's lattice rather than the view's: drawn under a body the view
/// follows, they show it move through its surroundings.
pub fn world_grid(view: [f32; 4], spacing: f32, color: Rgba) -> Vec<Polyline> {
    let line = |points| Polyline {
        points,
        closed: false,
        color,
        width: 0.03 * spacing,
    };
    let mut lines = Vec::new();
    if spacing.is_nan() || spacing <= 0.0 || view.iter().any(|v| !v.is_finite()) {
        return lines;
    }
    let mut x = (view[0] / spacing).ceil() * spacing;
    while x <= view[2] && lines.len() < 1000 {
        lines.push(line(vec![[x, view[1]], [x, view[3]]]));
        x += spacing;
    }
    let mut y = (view[1] / spacing).ceil() * spacing;
    while y <= view[3] && lines.len() < 2000 {
        lines.push(line(vec![[view[0], y], [view[2], y]]));
        y += spacing;
    }
    lines
}
