//! Frames and panels as coloured triangles, in Bevy's 2D world coordinates (1 unit = 1 pixel,
//! origin at the picture's centre, y up). Pure CPU code: the tests check it without a GPU, and
//! the Bevy app only uploads what it returns.

use super::view::{Inset, LabelSide, PanelLayout, PanelState};
use crate::frame::{Frame, Geometry, Rgba};

/// Height of the caption bar at the top of the picture, in pixels.
pub const CAPTION_HEIGHT: f32 = 22.0;
const SCENE_BACKGROUND: Rgba = Rgba::rgb(250, 250, 247);
const PANEL_BACKGROUND: Rgba = Rgba::rgb(32, 36, 44);
/// Pixels kept free left of the panel's nodes for input labels.
pub const LABEL_MARGIN_LEFT: f32 = 104.0;
/// Pixels kept free right of the panel's nodes for output labels.
pub const LABEL_MARGIN_RIGHT: f32 = 84.0;
const EXCITATORY: [u8; 3] = [0x2c, 0xc0, 0x2c];
const INHIBITORY: [u8; 3] = [0xf0, 0x40, 0x40];
const GAP: [u8; 3] = [0xa0, 0xa0, 0xa0];

/// An axis-aligned rectangle in picture pixels (origin top left, y down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    /// Left.
    pub x0: f32,
    /// Top.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Bottom.
    pub y1: f32,
}

impl Area {
    fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    /// Whether a picture pixel lies inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// Where the caption, the scene and the panel go in a picture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regions {
    /// Picture width.
    pub width: f32,
    /// Picture height.
    pub height: f32,
    /// The env's scene.
    pub scene: Area,
    /// The neuron panel, if there is one.
    pub panel: Option<Area>,
}

impl Regions {
    /// The scene gets the left 55 % below the caption bar, the panel the rest.
    pub fn new(width: u32, height: u32, with_panel: bool) -> Regions {
        let (w, h) = (width as f32, height as f32);
        let split = if with_panel { (w * 0.55).round() } else { w };
        Regions {
            width: w,
            height: h,
            scene: Area {
                x0: 0.0,
                y0: CAPTION_HEIGHT,
                x1: split,
                y1: h,
            },
            panel: with_panel.then_some(Area {
                x0: split,
                y0: CAPTION_HEIGHT,
                x1: w,
                y1: h,
            }),
        }
    }

    /// Picture pixel → Bevy world coordinates.
    pub fn to_world(&self, x: f32, y: f32) -> [f32; 2] {
        [x - self.width / 2.0, self.height / 2.0 - y]
    }
}

/// Triangles with one linear-RGBA colour per vertex, ready for a Bevy `Mesh`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshData {
    /// Vertex positions (z = 0).
    pub positions: Vec<[f32; 3]>,
    /// Vertex colours, linear RGBA.
    pub colors: Vec<[f32; 4]>,
    /// Triangle list.
    pub indices: Vec<u32>,
}

/// sRGB (as stored in frames) → linear RGBA (what vertex colours are).
pub fn linear(c: Rgba) -> [f32; 4] {
    let f = |v: u8| {
        let v = f32::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    [f(c.0[0]), f(c.0[1]), f(c.0[2]), f32::from(c.0[3]) / 255.0]
}

impl MeshData {
    fn vertex(&mut self, p: [f32; 2], color: [f32; 4]) -> u32 {
        self.positions.push([p[0], p[1], 0.0]);
        self.colors.push(color);
        (self.positions.len() - 1) as u32
    }

    /// A filled convex polygon (a fan from the first vertex; concave outlines may overdraw).
    pub fn polygon(&mut self, points: &[[f32; 2]], color: [f32; 4]) {
        if points.len() < 3 {
            return;
        }
        let first = self.vertex(points[0], color);
        let mut prev = self.vertex(points[1], color);
        for &p in &points[2..] {
            let next = self.vertex(p, color);
            self.indices.extend([first, prev, next]);
            prev = next;
        }
    }

    /// A filled rectangle given by two opposite corners.
    pub fn rect(&mut self, a: [f32; 2], b: [f32; 2], color: [f32; 4]) {
        self.polygon(&[a, [b[0], a[1]], b, [a[0], b[1]]], color);
    }

    /// A filled disc.
    pub fn disc(&mut self, centre: [f32; 2], radius: f32, color: [f32; 4]) {
        let n = ((radius * 1.5) as usize).clamp(10, 48);
        let points: Vec<[f32; 2]> = (0..n)
            .map(|i| {
                let a = i as f32 / n as f32 * std::f32::consts::TAU;
                [centre[0] + radius * a.cos(), centre[1] + radius * a.sin()]
            })
            .collect();
        self.polygon(&points, color);
    }

    /// A straight stroke `width` wide from `a` to `b`.
    pub fn segment(&mut self, a: [f32; 2], b: [f32; 2], width: f32, color: [f32; 4]) {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-6 {
            return;
        }
        let (nx, ny) = (-dy / len * width / 2.0, dx / len * width / 2.0);
        self.polygon(
            &[
                [a[0] + nx, a[1] + ny],
                [b[0] + nx, b[1] + ny],
                [b[0] - nx, b[1] - ny],
                [a[0] - nx, a[1] - ny],
            ],
            color,
        );
    }

    /// A polyline with round joins (joins only for opaque strokes, where overlap is invisible).
    pub fn polyline(&mut self, points: &[[f32; 2]], closed: bool, width: f32, color: [f32; 4]) {
        let n = points.len();
        if n < 2 {
            return;
        }
        let segments = if closed { n } else { n - 1 };
        for i in 0..segments {
            self.segment(points[i], points[(i + 1) % n], width, color);
        }
        if width >= 3.0 && color[3] >= 1.0 {
            let joins = if closed { 0..n } else { 1..n - 1 };
            for i in joins {
                self.disc(points[i], width / 2.0, color);
            }
        }
    }
}

/// The region of the world a frame shows: its own `view`, else the bounds of everything in it
/// with a 10 % margin, else a 2 m square around the origin.
pub fn view_box(frame: &Frame) -> [f32; 4] {
    if let Some(v) = frame.view {
        if v[2] > v[0] && v[3] > v[1] && v.iter().all(|x| x.is_finite()) {
            return v;
        }
    }
    let mut b = [
        f32::INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut add = |x: f32, y: f32, r: f32| {
        if x.is_finite() && y.is_finite() {
            b = [
                b[0].min(x - r),
                b[1].min(y - r),
                b[2].max(x + r),
                b[3].max(y + r),
            ];
        }
    };
    for s in &frame.shapes {
        let r = match &s.geometry {
            Geometry::Rect {
                half_width,
                half_height,
            } => half_width.hypot(*half_height),
            Geometry::Circle { radius } => *radius,
            Geometry::Capsule {
                half_height,
                radius,
            } => half_height + radius,
            Geometry::Polygon { points } => {
                points.iter().map(|p| p[0].hypot(p[1])).fold(0.0, f32::max)
            }
        };
        add(s.pose.x, s.pose.y, r);
    }
    for l in &frame.polylines {
        for p in &l.points {
            add(p[0], p[1], l.width / 2.0);
        }
    }
    if !(b[2] > b[0] && b[3] > b[1]) {
        return [-1.0, -1.0, 1.0, 1.0];
    }
    let m = 0.1 * (b[2] - b[0]).max(b[3] - b[1]);
    [b[0] - m, b[1] - m, b[2] + m, b[3] + m]
}

/// World metres → Bevy coordinates inside the scene area, aspect ratio kept, centred.
#[derive(Clone, Copy, Debug)]
pub struct SceneTransform {
    scale: f32,
    origin: [f32; 2],
}

impl SceneTransform {
    /// Fits `view` (`[min_x, min_y, max_x, max_y]`) into `area` with an 8-pixel border.
    pub fn fit(view: [f32; 4], area: Area, regions: &Regions) -> SceneTransform {
        let pad = 8.0;
        let (w, h) = (
            (area.width() - 2.0 * pad).max(1.0),
            (area.height() - 2.0 * pad).max(1.0),
        );
        let (vw, vh) = ((view[2] - view[0]).max(1e-6), (view[3] - view[1]).max(1e-6));
        let scale = (w / vw).min(h / vh);
        // Picture pixel of the view's centre = the area's centre.
        let cx = (area.x0 + area.x1) / 2.0;
        let cy = (area.y0 + area.y1) / 2.0;
        let c = regions.to_world(cx, cy);
        let mid = [(view[0] + view[2]) / 2.0, (view[1] + view[3]) / 2.0];
        SceneTransform {
            scale,
            origin: [c[0] - mid[0] * scale, c[1] - mid[1] * scale],
        }
    }

    /// A world point in Bevy coordinates.
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.origin[0] + p[0] * self.scale,
            self.origin[1] + p[1] * self.scale,
        ]
    }

    /// Pixels per metre.
    pub fn scale(&self) -> f32 {
        self.scale
    }
}

/// The scene area's background and every shape and polyline of `frame`; polylines first (the
/// track under the car), strokes at least one pixel wide.
pub fn scene_mesh(frame: &Frame, regions: &Regions) -> MeshData {
    let mut mesh = MeshData::default();
    let area = regions.scene;
    mesh.rect(
        regions.to_world(area.x0, area.y0),
        regions.to_world(area.x1, area.y1),
        linear(SCENE_BACKGROUND),
    );
    let t = SceneTransform::fit(view_box(frame), area, regions);
    for line in &frame.polylines {
        let points: Vec<[f32; 2]> = line.points.iter().map(|&p| t.apply(p)).collect();
        let width = (line.width * t.scale()).max(1.0);
        mesh.polyline(&points, line.closed, width, linear(line.color));
    }
    for shape in &frame.shapes {
        let (sin, cos) = shape.pose.angle.sin_cos();
        let place = |p: [f32; 2]| {
            t.apply([
                shape.pose.x + cos * p[0] - sin * p[1],
                shape.pose.y + sin * p[0] + cos * p[1],
            ])
        };
        let color = linear(shape.color);
        match &shape.geometry {
            Geometry::Rect {
                half_width: w,
                half_height: h,
            } => {
                let corners = [[-w, -h], [*w, -h], [*w, *h], [-w, *h]].map(place);
                mesh.polygon(&corners, color);
            }
            Geometry::Circle { radius } => {
                mesh.disc(place([0.0, 0.0]), (radius * t.scale()).max(1.0), color);
            }
            Geometry::Capsule {
                half_height,
                radius,
            } => {
                let n = 12;
                let mut outline = Vec::with_capacity(2 * n + 2);
                for i in 0..=n {
                    let a = std::f32::consts::PI * i as f32 / n as f32;
                    outline.push(place([radius * a.cos(), half_height + radius * a.sin()]));
                }
                for i in 0..=n {
                    let a = std::f32::consts::PI * (1.0 + i as f32 / n as f32);
                    outline.push(place([radius * a.cos(), -half_height + radius * a.sin()]));
                }
                mesh.polygon(&outline, color);
            }
            Geometry::Polygon { points } => {
                let outline: Vec<[f32; 2]> = points.iter().map(|&p| place(p)).collect();
                mesh.polygon(&outline, color);
            }
        }
    }
    mesh
}

/// Where an inset goes: the scene's top-left corner, 45 % of the scene's width (at most 60 %
/// of its height), keeping the picture's aspect ratio; None for an empty inset.
pub fn inset_area(inset: &Inset, regions: &Regions) -> Option<Area> {
    if inset.width == 0 || inset.height == 0 || inset.pixels.len() != inset.width * inset.height {
        return None;
    }
    let scene = regions.scene;
    let aspect = inset.height as f32 / inset.width as f32;
    let width = (0.45 * scene.width()).min(0.6 * scene.height() / aspect);
    let (x0, y0) = (scene.x0 + 6.0, scene.y0 + 6.0);
    Some(Area {
        x0,
        y0,
        x1: x0 + width,
        y1: y0 + width * aspect,
    })
}

/// Adds `inset` to `mesh` (a frame, then one rectangle per pixel) at [`inset_area`].
pub fn inset_mesh(mesh: &mut MeshData, inset: &Inset, regions: &Regions) {
    let Some(area) = inset_area(inset, regions) else {
        return;
    };
    mesh.rect(
        regions.to_world(area.x0 - 2.0, area.y0 - 2.0),
        regions.to_world(area.x1 + 2.0, area.y1 + 2.0),
        linear(Rgba::rgb(40, 40, 40)),
    );
    let (w, h) = (inset.width as f32, inset.height as f32);
    for (k, &color) in inset.pixels.iter().enumerate() {
        let (col, row) = ((k % inset.width) as f32, (k / inset.width) as f32);
        let x = |c: f32| area.x0 + c / w * area.width();
        let y = |r: f32| area.y0 + r / h * area.height();
        mesh.rect(
            regions.to_world(x(col), y(row)),
            regions.to_world(x(col + 1.0), y(row + 1.0)),
            linear(color),
        );
    }
}

/// Node centres of `layout` in Bevy coordinates, and the node radius in pixels: the layout's
/// bounding box is fitted into the panel area, leaving room for labels on both sides.
pub fn panel_positions(layout: &PanelLayout, regions: &Regions) -> (Vec<[f32; 2]>, f32) {
    let Some(area) = regions.panel else {
        return (Vec::new(), 0.0);
    };
    let inner = Area {
        x0: area.x0 + LABEL_MARGIN_LEFT,
        y0: area.y0 + 36.0,
        x1: (area.x1 - LABEL_MARGIN_RIGHT).max(area.x0 + LABEL_MARGIN_LEFT + 1.0),
        y1: area.y1 - 14.0,
    };
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for n in &layout.nodes {
        for k in 0..2 {
            lo[k] = lo[k].min(n.position[k]);
            hi[k] = hi[k].max(n.position[k]);
        }
    }
    let span = |k: usize| (hi[k] - lo[k]).max(1e-6);
    let place = |p: [f32; 2]| {
        let fx = if hi[0] > lo[0] {
            (p[0] - lo[0]) / span(0)
        } else {
            0.5
        };
        let fy = if hi[1] > lo[1] {
            (p[1] - lo[1]) / span(1)
        } else {
            0.5
        };
        regions.to_world(
            inner.x0 + fx * inner.width(),
            inner.y0 + fy * inner.height(),
        )
    };
    let positions: Vec<[f32; 2]> = layout.nodes.iter().map(|n| place(n.position)).collect();
    let mut closest = f32::INFINITY;
    for (i, a) in positions.iter().enumerate() {
        for b in &positions[i + 1..] {
            closest = closest.min((a[0] - b[0]).hypot(a[1] - b[1]));
        }
    }
    let radius = if closest.is_finite() {
        (0.42 * closest).clamp(2.5, 10.0)
    } else {
        10.0
    };
    (positions, radius)
}

/// Blue (−1) → white (0) → red (+1), as sRGB.
pub fn activity_color(a: f32) -> Rgba {
    let a = if a.is_finite() {
        a.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (target, t) = if a < 0.0 {
        ([33.0, 102.0, 217.0], -a)
    } else {
        ([214.0, 39.0, 40.0], a)
    };
    let mix = |k: usize| (255.0 + (target[k] - 255.0) * t).round() as u8;
    Rgba::rgb(mix(0), mix(1), mix(2))
}

/// The panel's background, its synapses (polarity colour, opacity and width by activity) and
/// its neurons (role-coloured ring, fill by activity).
pub fn panel_mesh(layout: &PanelLayout, state: Option<&PanelState>, regions: &Regions) -> MeshData {
    let mut mesh = MeshData::default();
    let Some(area) = regions.panel else {
        return mesh;
    };
    mesh.rect(
        regions.to_world(area.x0, area.y0),
        regions.to_world(area.x1, area.y1),
        linear(PANEL_BACKGROUND),
    );
    let (positions, radius) = panel_positions(layout, regions);
    for (i, e) in layout.edges.iter().enumerate() {
        let (Some(&a), Some(&b)) = (positions.get(e.from), positions.get(e.to)) else {
            continue;
        };
        let activity = state
            .and_then(|s| s.edge_activity.get(i).copied())
            .filter(|v| v.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 1.0);
        let rgb = match e.polarity {
            0 => GAP,
            p if p < 0 => INHIBITORY,
            _ => EXCITATORY,
        };
        let alpha = (0.10 + 0.85 * activity) * 255.0;
        let color = linear(Rgba([rgb[0], rgb[1], rgb[2], alpha.round() as u8]));
        let width = 1.0 + 2.0 * activity;
        match edge_path(a, b, radius) {
            EdgePath::Straight => mesh.segment(a, b, width, color),
            EdgePath::Curve(points) => mesh.polyline(&points, false, width, color),
        }
    }
    for (i, (node, &p)) in layout.nodes.iter().zip(&positions).enumerate() {
        let activity = state
            .and_then(|s| s.node_activity.get(i).copied())
            .unwrap_or(0.0);
        mesh.disc(p, radius + 2.0, linear(node.role_color));
        mesh.disc(p, radius, linear(activity_color(activity)));
    }
    mesh
}

/// How a synapse is drawn: straight between columns; within a column (recurrent synapses) an
/// arc bulging to the right, and a small loop for a self-synapse, as `wormnet wiring` draws them.
enum EdgePath {
    Straight,
    Curve(Vec<[f32; 2]>),
}

fn edge_path(a: [f32; 2], b: [f32; 2], radius: f32) -> EdgePath {
    let bezier = |p0: [f32; 2], c: [f32; 2], p2: [f32; 2]| -> Vec<[f32; 2]> {
        (0..=12)
            .map(|i| {
                let t = i as f32 / 12.0;
                let u = 1.0 - t;
                [
                    u * u * p0[0] + 2.0 * u * t * c[0] + t * t * p2[0],
                    u * u * p0[1] + 2.0 * u * t * c[1] + t * t * p2[1],
                ]
            })
            .collect()
    };
    if (a[0] - b[0]).abs() >= 1.0 {
        return EdgePath::Straight;
    }
    let gap = (a[1] - b[1]).abs();
    if gap < 1e-3 {
        let r = radius.max(3.0);
        return EdgePath::Curve(bezier(
            [a[0] + 0.7 * r, a[1] + 0.7 * r],
            [a[0] + 4.0 * r, a[1]],
            [a[0] + 0.7 * r, a[1] - 0.7 * r],
        ));
    }
    let bulge = 0.35 * gap + 1.5 * radius;
    let c = [(a[0] + b[0]) / 2.0 + bulge, (a[1] + b[1]) / 2.0];
    EdgePath::Curve(bezier(a, c, b))
}

/// Where each panel label is anchored (Bevy coordinates) and on which side of it the text goes.
pub fn label_anchors(layout: &PanelLayout, regions: &Regions) -> Vec<([f32; 2], LabelSide)> {
    let (positions, radius) = panel_positions(layout, regions);
    layout
        .nodes
        .iter()
        .zip(positions)
        .map(|(n, p)| {
            let dx = radius + 5.0;
            match n.label_side {
                LabelSide::Left => ([p[0] - dx, p[1]], LabelSide::Left),
                LabelSide::Right => ([p[0] + dx, p[1]], LabelSide::Right),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "geometry_tests.rs"]
mod tests;
