//! Pictures of a wiring: neurons in columns by layer (sensory, inter, command, motor), synapses
//! as arrows coloured by polarity (excitatory green, inhibitory red, ncps's colours), gap
//! junctions as dashed grey lines. SVG is
//! written as text (with optional labels); PNG is rasterised with tiny-skia from the same
//! layout (shapes only: no font is needed, so it works on any machine).

use std::path::Path;

use thiserror::Error;
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Stroke, StrokeDash, Transform};

use super::config::NeuronType;
use super::graph::Wiring;

/// Why a picture could not be written.
#[derive(Debug, Error)]
pub enum PictureError {
    /// Writing the file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The output file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The extension is neither `.svg` nor `.png`.
    #[error("{0}: the picture must end in .svg or .png")]
    Format(std::path::PathBuf),
}

/// Drawing options.
#[derive(Clone, Debug, Default)]
pub struct PictureOptions {
    /// Write neuron names next to the neurons (SVG only).
    pub labels: bool,
    /// Names of the sensory inputs (e.g. the env's observation names); default `s0, s1, …`.
    pub sensory_names: Vec<String>,
    /// Names of the motor neurons (e.g. the env's action names); default `motor_0, …`.
    pub motor_names: Vec<String>,
    /// A title drawn at the top (SVG only).
    pub title: Option<String>,
}

/// A neuron's place in the picture.
#[derive(Clone, Debug)]
pub struct Node {
    /// Centre x.
    pub x: f32,
    /// Centre y.
    pub y: f32,
    /// Role (decides the column and colour).
    pub kind: NeuronType,
    /// Display name.
    pub label: String,
}

/// A synapse in the picture: node indices into [`Layout::nodes`].
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    /// Presynaptic node.
    pub from: usize,
    /// Postsynaptic node.
    pub to: usize,
    /// +1 excitatory, −1 inhibitory.
    pub polarity: i8,
}

/// Positions of all neurons (sensory first) and the synapses between them.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Picture width in pixels.
    pub width: f32,
    /// Picture height in pixels.
    pub height: f32,
    /// Sensory nodes, then one node per neuron id.
    pub nodes: Vec<Node>,
    /// Sensory and internal synapses.
    pub edges: Vec<Edge>,
    /// Gap junctions as node index pairs (drawn dashed, without arrowheads).
    pub gaps: Vec<(usize, usize)>,
}

const RADIUS: f32 = 9.0;
const COLUMN_GAP: f32 = 190.0;
const ROW_GAP: f32 = 30.0;
const MARGIN: f32 = 60.0;
const EXCITATORY: (u8, u8, u8) = (0x2c, 0xa0, 0x2c);
const INHIBITORY: (u8, u8, u8) = (0xd6, 0x27, 0x28);
const GAP: (u8, u8, u8) = (0x55, 0x55, 0x55);

/// A neuron role's colour (ncps's palette), shared with the live neuron panel.
pub fn colour(kind: NeuronType) -> (u8, u8, u8) {
    match kind {
        NeuronType::Sensory => (0xbc, 0xbd, 0x22),
        NeuronType::Inter => (0x1f, 0x77, 0xb4),
        NeuronType::Command => (0x94, 0x67, 0xbd),
        NeuronType::Motor => (0xff, 0x7f, 0x0e),
    }
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The picture's nodes, unplaced: the inputs (named by `options`), then one per neuron id.
fn nodes(wiring: &Wiring, options: &PictureOptions) -> Vec<Node> {
    let s = wiring.input_dim().unwrap_or(0);
    let node = |kind, label| Node {
        x: 0.0,
        y: 0.0,
        kind,
        label,
    };
    let inputs = (0..s).map(|i| {
        let name = options.sensory_names.get(i).cloned();
        node(NeuronType::Sensory, name.unwrap_or_else(|| format!("s{i}")))
    });
    let neurons = wiring
        .neuron_names()
        .into_iter()
        .enumerate()
        .map(|(id, name)| {
            let kind = wiring.neuron_type(id);
            let label = match options.motor_names.get(id) {
                // A circuit's own names (`FWD`) stand; generated ones give way to the actions'.
                Some(motor) if kind == NeuronType::Motor && !wiring.has_own_names() => {
                    motor.clone()
                }
                _ => name,
            };
            node(kind, label)
        });
    inputs.chain(neurons).collect()
}

/// Places the neurons: the inputs in the first column, then one column per type present, in
/// the order sensory (a circuit's sensory neurons), inter, command, motor; neurons of a
/// column evenly spaced and vertically centred.
pub fn layout(wiring: &Wiring, options: &PictureOptions) -> Layout {
    let s = wiring.input_dim().unwrap_or(0);
    let order = [
        NeuronType::Sensory,
        NeuronType::Inter,
        NeuronType::Command,
        NeuronType::Motor,
    ];
    let mut nodes = nodes(wiring, options);
    // Node indices per column.
    let mut columns: Vec<Vec<usize>> = vec![(0..s).collect()];
    for kind in order {
        columns.push(
            (s..nodes.len())
                .filter(|&k| nodes[k].kind == kind)
                .collect(),
        );
    }
    columns.retain(|c| !c.is_empty());
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1) as f32;
    let height = 2.0 * MARGIN + (tallest - 1.0).max(0.0) * ROW_GAP + 40.0;
    let width = 2.0 * MARGIN + (columns.len().max(1) - 1) as f32 * COLUMN_GAP + 80.0;
    for (c, members) in columns.iter().enumerate() {
        let span = (members.len() as f32 - 1.0) * ROW_GAP;
        let top = (height - span) / 2.0 + 10.0;
        for (r, &k) in members.iter().enumerate() {
            nodes[k].x = MARGIN + 40.0 + c as f32 * COLUMN_GAP;
            nodes[k].y = top + r as f32 * ROW_GAP;
        }
    }
    let mut edges = Vec::new();
    for (src, dst, p) in wiring.sensory_synapses() {
        edges.push(Edge {
            from: src,
            to: s + dst,
            polarity: p,
        });
    }
    for (src, dst, p) in wiring.synapses() {
        edges.push(Edge {
            from: s + src,
            to: s + dst,
            polarity: p,
        });
    }
    let gaps = (wiring.gap_junctions().iter())
        .map(|&(a, b)| (s + a, s + b))
        .collect();
    Layout {
        width,
        height,
        nodes,
        edges,
        gaps,
    }
}

/// A quadratic curve: `(start, control, end)`.
type Curve = ((f32, f32), (f32, f32), (f32, f32));

/// The drawable path of an edge: a straight line between columns, an arc within a column,
/// a small loop for a self-synapse. Returns `(start, control, end)` of a quadratic curve.
fn edge_curve(l: &Layout, e: &Edge) -> Curve {
    let a = &l.nodes[e.from];
    let b = &l.nodes[e.to];
    if e.from == e.to {
        let p0 = (a.x + RADIUS * 0.7, a.y - RADIUS * 0.7);
        let p2 = (a.x + RADIUS * 0.7, a.y + RADIUS * 0.7);
        return (p0, (a.x + 4.0 * RADIUS, a.y), p2);
    }
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1e-3);
    if (a.x - b.x).abs() < 1.0 {
        // Same column: bulge to the right, proportional to the distance.
        let bulge = 0.35 * len + 15.0;
        let ctrl = ((a.x + b.x) / 2.0 + bulge, (a.y + b.y) / 2.0);
        let shrink = |p: (f32, f32), c: (f32, f32)| {
            let (vx, vy) = (c.0 - p.0, c.1 - p.1);
            let n = (vx * vx + vy * vy).sqrt().max(1e-3);
            (p.0 + vx / n * RADIUS, p.1 + vy / n * RADIUS)
        };
        return (shrink((a.x, a.y), ctrl), ctrl, shrink((b.x, b.y), ctrl));
    }
    let (ux, uy) = (dx / len, dy / len);
    let p0 = (a.x + ux * RADIUS, a.y + uy * RADIUS);
    let p2 = (b.x - ux * (RADIUS + 2.0), b.y - uy * (RADIUS + 2.0));
    (p0, ((p0.0 + p2.0) / 2.0, (p0.1 + p2.1) / 2.0), p2)
}

/// The curves of the gap junctions (as [`edge_curve`] draws a synapse, without its head).
fn gap_curves(l: &Layout) -> Vec<Curve> {
    (l.gaps.iter())
        .map(|&(from, to)| {
            let e = Edge {
                from,
                to,
                polarity: 0,
            };
            edge_curve(l, &e)
        })
        .collect()
}

/// The arrowhead triangle at the end of a curve.
fn arrow_head(c: (f32, f32), end: (f32, f32)) -> [(f32, f32); 3] {
    let (dx, dy) = (end.0 - c.0, end.1 - c.1);
    let n = (dx * dx + dy * dy).sqrt().max(1e-3);
    let (ux, uy) = (dx / n, dy / n);
    let (px, py) = (-uy, ux);
    let back = (end.0 - ux * 7.0, end.1 - uy * 7.0);
    [
        end,
        (back.0 + px * 3.5, back.1 + py * 3.5),
        (back.0 - px * 3.5, back.1 - py * 3.5),
    ]
}

/// The picture as SVG text.
pub fn svg(wiring: &Wiring, options: &PictureOptions) -> String {
    let l = layout(wiring, options);
    let mut out = String::new();
    let legend_h = 24.0;
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        w = l.width + if options.labels { 60.0 } else { 0.0 },
        h = l.height + legend_h
    ));
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    if let Some(title) = &options.title {
        out.push_str(&format!(
            "<text x=\"10\" y=\"18\" font-size=\"14\">{}</text>\n",
            escape(title)
        ));
    }
    out.push_str(
        "<g id=\"synapses\" fill=\"none\" stroke-width=\"1.2\" stroke-opacity=\"0.75\">\n",
    );
    for e in &l.edges {
        let (p0, c, p2) = edge_curve(&l, e);
        let (col, kind) = if e.polarity >= 0 {
            (hex(EXCITATORY), "excitatory")
        } else {
            (hex(INHIBITORY), "inhibitory")
        };
        let head = arrow_head(c, p2);
        out.push_str(&format!(
            "<g class=\"{kind}\"><path d=\"M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}\" stroke=\"{col}\"/><polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{col}\" stroke=\"none\"/></g>\n",
            p0.0, p0.1, c.0, c.1, p2.0, p2.1,
            head[0].0, head[0].1, head[1].0, head[1].1, head[2].0, head[2].1
        ));
    }
    if !l.gaps.is_empty() {
        out.push_str(&format!(
            "</g>\n<g id=\"gap-junctions\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" stroke-dasharray=\"4 3\">\n",
            hex(GAP)
        ));
    }
    for (p0, c, p2) in gap_curves(&l) {
        out.push_str(&format!(
            "<path class=\"gap\" d=\"M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}\"/>\n",
            p0.0, p0.1, c.0, c.1, p2.0, p2.1
        ));
    }
    out.push_str("</g>\n<g id=\"neurons\" stroke=\"#333\" stroke-width=\"1\">\n");
    for n in &l.nodes {
        out.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{RADIUS}\" fill=\"{}\" class=\"{}\"><title>{}</title></circle>\n",
            n.x,
            n.y,
            hex(colour(n.kind)),
            n.kind.as_str(),
            escape(&n.label)
        ));
        if options.labels {
            let (x, anchor) = if n.kind == NeuronType::Sensory {
                (n.x - RADIUS - 4.0, "end")
            } else {
                (n.x + RADIUS + 4.0, "start")
            };
            out.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" stroke=\"none\" fill=\"#222\">{}</text>\n",
                n.y - RADIUS - 2.0,
                escape(&n.label)
            ));
        }
    }
    legend(&mut out, &l);
    out.push_str("</g>\n</svg>\n");
    out
}

/// The legend under the picture: the kinds of neuron present, then the synapses' colours.
fn legend(out: &mut String, l: &Layout) {
    out.push_str("</g>\n<g id=\"legend\" font-size=\"11\">\n");
    let mut x = 10.0;
    let y = l.height + 8.0;
    let mut item = |label: &str, fill: String, circle: bool| {
        if circle {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"{fill}\" stroke=\"#333\"/>",
                x + 6.0
            ));
        } else {
            out.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{fill}\" stroke-width=\"2\"/>",
                x + 14.0
            ));
        }
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>\n",
            x + 18.0,
            y + 4.0
        ));
        x += 18.0 + 7.0 * label.len() as f32 + 14.0;
    };
    for kind in [
        NeuronType::Sensory,
        NeuronType::Inter,
        NeuronType::Command,
        NeuronType::Motor,
    ] {
        if l.nodes.iter().any(|n| n.kind == kind) {
            item(
                &format!("{} neurons", kind.as_str()),
                hex(colour(kind)),
                true,
            );
        }
    }
    item("excitatory", hex(EXCITATORY), false);
    item("inhibitory", hex(INHIBITORY), false);
    if !l.gaps.is_empty() {
        item("gap junction (dashed)", hex(GAP), false);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn paint((r, g, b): (u8, u8, u8), alpha: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color(Color::from_rgba8(r, g, b, alpha));
    p.anti_alias = true;
    p
}

/// The picture as PNG bytes (same layout as the SVG, shapes only, 2× scale).
pub fn png(wiring: &Wiring, options: &PictureOptions) -> Result<Vec<u8>, String> {
    let l = layout(wiring, options);
    let scale = 2.0;
    let mut pixmap = Pixmap::new((l.width * scale) as u32, (l.height * scale) as u32)
        .ok_or("picture too large")?;
    pixmap.fill(Color::WHITE);
    let t = Transform::from_scale(scale, scale);
    let stroke = Stroke {
        width: 1.2,
        ..Stroke::default()
    };
    for e in &l.edges {
        let (p0, c, p2) = edge_curve(&l, e);
        let col = if e.polarity >= 0 {
            EXCITATORY
        } else {
            INHIBITORY
        };
        let mut pb = PathBuilder::new();
        pb.move_to(p0.0, p0.1);
        pb.quad_to(c.0, c.1, p2.0, p2.1);
        if let Some(path) = pb.finish() {
            pixmap.stroke_path(&path, &paint(col, 190), &stroke, t, None);
        }
        let head = arrow_head(c, p2);
        let mut pb = PathBuilder::new();
        pb.move_to(head[0].0, head[0].1);
        pb.line_to(head[1].0, head[1].1);
        pb.line_to(head[2].0, head[2].1);
        pb.close();
        if let Some(path) = pb.finish() {
            pixmap.fill_path(&path, &paint(col, 220), FillRule::Winding, t, None);
        }
    }
    let dashed = Stroke {
        width: 1.6,
        dash: StrokeDash::new(vec![4.0, 3.0], 0.0),
        ..Stroke::default()
    };
    for (p0, c, p2) in gap_curves(&l) {
        let mut pb = PathBuilder::new();
        pb.move_to(p0.0, p0.1);
        pb.quad_to(c.0, c.1, p2.0, p2.1);
        if let Some(path) = pb.finish() {
            pixmap.stroke_path(&path, &paint(GAP, 220), &dashed, t, None);
        }
    }
    for n in &l.nodes {
        if let Some(circle) = PathBuilder::from_circle(n.x, n.y, RADIUS) {
            pixmap.fill_path(
                &circle,
                &paint(colour(n.kind), 255),
                FillRule::Winding,
                t,
                None,
            );
            pixmap.stroke_path(
                &circle,
                &paint((0x33, 0x33, 0x33), 255),
                &Stroke::default(),
                t,
                None,
            );
        }
    }
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// Writes the picture to `path`, SVG or PNG by extension.
pub fn write(wiring: &Wiring, options: &PictureOptions, path: &Path) -> Result<(), PictureError> {
    let err = |message: String| PictureError::Write {
        path: path.to_path_buf(),
        message,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => svg(wiring, options).into_bytes(),
        Some("png") => png(wiring, options).map_err(err)?,
        _ => return Err(PictureError::Format(path.to_path_buf())),
    };
    std::fs::write(path, bytes).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiring() -> Wiring {
        Wiring::auto_ncp(19, 4, 0.5, 22222)
            .unwrap()
            .built(8)
            .unwrap()
    }

    #[test]
    fn svg_has_every_neuron_and_synapse_in_two_colours() {
        let w = wiring();
        let text = svg(
            &w,
            &PictureOptions {
                labels: true,
                ..Default::default()
            },
        );
        assert_eq!(text.matches("<circle cx").count() - 4, 8 + 19); // minus 4 legend items
        let exc = w
            .synapses()
            .iter()
            .chain(w.sensory_synapses().iter())
            .filter(|e| e.2 > 0)
            .count();
        let inh = w.synapses().len() + w.sensory_synapses().len() - exc;
        assert_eq!(text.matches("class=\"excitatory\"").count(), exc);
        assert_eq!(text.matches("class=\"inhibitory\"").count(), inh);
        assert!(text.contains("command_5") && text.contains(">s7<"));
    }

    #[test]
    fn columns_follow_the_layers() {
        let l = layout(&wiring(), &PictureOptions::default());
        let x_of = |k: NeuronType| l.nodes.iter().find(|n| n.kind == k).map(|n| n.x).unwrap();
        assert!(x_of(NeuronType::Sensory) < x_of(NeuronType::Inter));
        assert!(x_of(NeuronType::Inter) < x_of(NeuronType::Command));
        assert!(x_of(NeuronType::Command) < x_of(NeuronType::Motor));
    }

    #[test]
    fn png_is_a_png() {
        let bytes = png(&wiring(), &PictureOptions::default()).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
