//! The picture of one episode a person reads first: every neuron's activity as a heatmap
//! (neurons × time), rows named and grouped by layer — sensory inputs, inter, command, motor —
//! with the observations and the actions drawn under it on the same time axis; for an LTC, what
//! pushed each motor neuron at each step, as a heatmap of its own; and each neuron's
//! correlation with each observation and action as a table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use wormnet_ncp::kernels::ltc::StepAttribution;
use wormnet_sim::rollout::Rollout;

use super::audit::{acted_observations, neuron_role};
use super::plot::{register_font, save_rgb, PALETTE};

/// Width of the row labels, in pixels; the trace charts use the same left edge.
const LABEL_WIDTH: u32 = 190;
const RIGHT: u32 = 20;
const WIDTH: u32 = 1200;
/// Height of a trace chart: room for its legend, one line per series.
fn traces_height(series: usize) -> u32 {
    (16 * series as u32 + 50).max(180)
}

/// Group names up to this long sit left of their first row; longer ones get a line above it.
const GROUP_IN_MARGIN: usize = 9;
/// Height of that line.
const GROUP_LINE: i32 = 15;

/// One row of the heatmap: its name, its layer and a value per step.
struct Row {
    name: String,
    /// The group the row is drawn in (a layer, or the neuron whose inputs these are).
    layer: String,
    values: Vec<f32>,
}

/// The layer of neuron `k` (see [`neuron_role`]).
fn layer_of(roles: Option<&[String]>, k: usize, name: &str) -> &'static str {
    neuron_role(roles, k, name).as_str()
}

/// Each observation component over the episode, by name (what the policy acted on; an
/// image's pixels left out).
fn observation_series(rollout: &Rollout) -> Vec<(String, Vec<f32>)> {
    let observations = acted_observations(rollout);
    let flat = rollout.spec.flat_observations();
    rollout
        .spec
        .observation_names
        .iter()
        .enumerate()
        .skip(flat.start)
        .map(|(k, name)| {
            let values = observations
                .iter()
                .map(|o| o.get(k).copied().unwrap_or(0.0))
                .collect();
            (name.clone(), values)
        })
        .collect()
}

/// Each action component over the episode, by name.
fn action_series(rollout: &Rollout) -> Vec<(String, Vec<f32>)> {
    rollout
        .spec
        .action_names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let values = rollout
                .steps
                .iter()
                .map(|s| s.action.get(k).copied().unwrap_or(0.0))
                .collect();
            (name.clone(), values)
        })
        .collect()
}

/// The rows in reading order: sensory inputs (each scaled by its largest magnitude), then
/// inter, command and motor neurons (potentials, squashed by tanh as the panel shows them).
fn rows(rollout: &Rollout) -> Vec<Row> {
    let mut rows: Vec<Row> = observation_series(rollout)
        .into_iter()
        .map(|(name, raw)| {
            let scale = raw
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()))
                .max(1e-6);
            Row {
                name,
                layer: "sensory".to_string(),
                values: raw.iter().map(|v| v / scale).collect(),
            }
        })
        .collect();
    let names = rollout.internal_names.clone().unwrap_or_default();
    let roles = rollout.internal_roles.as_deref();
    // A circuit's sensory neurons are drawn with the inputs that feed them.
    for layer in ["sensory", "inter", "command", "motor"] {
        for (k, name) in names.iter().enumerate() {
            if layer_of(roles, k, name) != layer {
                continue;
            }
            let values = rollout
                .steps
                .iter()
                .map(|s| {
                    s.internals
                        .as_ref()
                        .and_then(|v| v.get(k))
                        .map_or(0.0, |v| v.tanh())
                })
                .collect();
            rows.push(Row {
                name: name.clone(),
                layer: layer.to_string(),
                values,
            });
        }
    }
    rows
}

/// Blue (−1) through white (0) to red (+1); grey where not finite.
fn diverging(v: f32) -> RGBColor {
    if !v.is_finite() {
        return RGBColor(160, 160, 160);
    }
    let v = v.clamp(-1.0, 1.0);
    let fade = |c: u8, t: f32| (255.0 + (f32::from(c) - 255.0) * t) as u8;
    if v >= 0.0 {
        RGBColor(fade(200, v), fade(30, v), fade(40, v))
    } else {
        RGBColor(fade(30, -v), fade(80, -v), fade(200, -v))
    }
}

/// Writes the heatmap of `rollout` (neurons × steps, grouped by layer) with its observations
/// and actions underneath, sharing the time axis, as a PNG.
pub fn neuron_heatmap(rollout: &Rollout, out: &Path) -> Result<()> {
    register_font();
    let rows = rows(rollout);
    let steps = rollout.steps.len().max(1);
    let row_h = (700 / rows.len().max(1) as u32).clamp(6, 18);
    let groups = 4;
    let top = 40;
    let map_h = row_h * rows.len() as u32 + 6 * groups;
    let spec = &rollout.spec;
    let (obs_h, act_h) = (
        traces_height(spec.flat_observations().len()),
        traces_height(spec.action_names.len()),
    );
    let height = top + map_h + obs_h + act_h + 20;
    let mut buffer = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, height)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", out.display());
        let title = format!(
            "{}: neuron activity over {} steps (inputs scaled per row; neurons tanh(v))",
            rollout.spec.name,
            rollout.steps.len()
        );
        draw_titled_rows(&root, (&title, 16), &rows, (top, row_h), steps, out)?;
        let traces_top = top + map_h + 10;
        let (_, below) = root.split_vertically(traces_top);
        let (obs_area, act_area) = below.split_vertically(obs_h);
        let (obs, actions) = (observation_series(rollout), action_series(rollout));
        for (area, title, series) in [
            (&obs_area, "observations", &obs),
            (&act_area, "actions", &actions),
        ] {
            traces(area, title, series, steps).map_err(|e| anyhow!("drawing {title}: {e}"))?;
        }
        root.present().map_err(err)?;
    }
    save_rgb(&buffer, (WIDTH, height), out)
}

/// Draws labelled rows of cells from `top` down, a gap and a group name where the group
/// changes; cells span `steps` columns right of the labels.
/// A title (text, font size) over the labelled rows starting at `top` (`row_h` apart):
/// the frame both heatmaps share.
fn draw_titled_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    (title, font): (&str, u32),
    rows: &[Row],
    (top, row_h): (u32, u32),
    steps: usize,
    out: &Path,
) -> Result<()> {
    let at = || format!("drawing {}", out.display());
    root.draw_text(
        title,
        &("sans-serif", font).into_font().color(&BLACK),
        (10, 12),
    )
    .map_err(|e| anyhow!("{}: {e}", at()))?;
    draw_rows(root, rows, top as i32, steps, row_h).map_err(|e| anyhow!("{}: {e}", at()))
}

fn draw_rows<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
    top: i32,
    steps: usize,
    row_h: u32,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let cell_w = f64::from(WIDTH - LABEL_WIDTH - RIGHT) / steps as f64;
    let mut y = top;
    let mut group = "";
    for row in rows {
        if row.layer != group {
            if !group.is_empty() {
                y += 6;
            }
            group = &row.layer;
            root.draw_text(
                group,
                &("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90)),
                (4, y),
            )
            .map_err(err)?;
            if group.len() > GROUP_IN_MARGIN {
                y += GROUP_LINE;
            }
        }
        root.draw_text(
            &row.name,
            &("sans-serif", (row_h as i32 - 2).clamp(7, 13))
                .into_font()
                .color(&BLACK),
            (70, y),
        )
        .map_err(err)?;
        for (t, &v) in row.values.iter().enumerate() {
            let x0 = LABEL_WIDTH as i32 + (t as f64 * cell_w) as i32;
            let x1 = LABEL_WIDTH as i32 + ((t + 1) as f64 * cell_w).ceil() as i32;
            root.draw(&Rectangle::new(
                [(x0, y), (x1, y + row_h as i32)],
                diverging(v).filled(),
            ))
            .map_err(err)?;
        }
        y += row_h as i32;
    }
    Ok(())
}

/// Line traces over steps `0..steps`, their plotting area starting where the heatmap's cells do.
fn traces<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[(String, Vec<f32>)],
    steps: usize,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi - lo > 1e-9 {
        (f64::from(lo), f64::from(hi))
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin_right(RIGHT)
        .x_label_area_size(22)
        .y_label_area_size(LABEL_WIDTH)
        .build_cartesian_2d(0f64..steps as f64, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("step")
        .draw()
        .map_err(err)?;
    for (i, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, &v)| (t as f64 + 0.5, f64::from(v))),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

/// What pushed the motor neurons, step by step: for each motor neuron, one row per input
/// (presynaptic neuron, sensory input, gap junction, its leak) with the change of potential it
/// caused, all rows on one colour scale (the largest contribution of the episode is full
/// colour). `names` and `roles` are the neurons' by id, `inputs` the observation names.
pub fn attribution_heatmap(
    attributions: &[StepAttribution],
    (names, roles): (&[String], &[String]),
    inputs: &[String],
    title: &str,
    out: &Path,
) -> Result<()> {
    register_font();
    let steps = attributions.len().max(1);
    let name = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_else(|| i.to_string());
    let mut rows: Vec<Row> = Vec::new();
    let is_motor = |j: usize| layer_of(Some(roles), j, &names[j]) == "motor";
    for (j, target) in names.iter().enumerate() {
        if !is_motor(j) {
            continue;
        }
        let series = |pick: &dyn Fn(&StepAttribution) -> f32| -> Vec<f32> {
            attributions.iter().map(pick).collect()
        };
        let Some(first) = attributions.first() else {
            break;
        };
        type Pick = for<'a> fn(&'a StepAttribution) -> &'a [(usize, usize, f32)];
        let kinds: [(Pick, &dyn Fn(usize) -> String); 3] = [
            (|a: &StepAttribution| &a.synapses[..], &|src| {
                name(names, src)
            }),
            (|a: &StepAttribution| &a.sensory[..], &|src| {
                format!("obs {}", name(inputs, src))
            }),
            (|a: &StepAttribution| &a.gaps[..], &|src| {
                format!("gap {}", name(names, src))
            }),
        ];
        for (pick, label) in kinds {
            for (k, &(src, dst, _)) in pick(first).iter().enumerate() {
                if dst == j {
                    rows.push(Row {
                        name: label(src),
                        layer: target.clone(),
                        values: series(&|a| pick(a)[k].2),
                    });
                }
            }
        }
        rows.push(Row {
            name: "leak".into(),
            layer: target.clone(),
            values: series(&|a| a.leak[j]),
        });
    }
    let scale = rows
        .iter()
        .flat_map(|r| r.values.iter())
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-9);
    for row in &mut rows {
        row.values.iter_mut().for_each(|v| *v /= scale);
    }
    let row_h = (700 / rows.len().max(1) as u32).clamp(8, 18);
    let top = 40;
    let groups = (0..names.len()).filter(|&j| is_motor(j)).count() as u32;
    let height = top + row_h * rows.len() as u32 + groups * (6 + GROUP_LINE as u32) + 20;
    let mut buffer = vec![255u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, height)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", out.display());
        let caption = format!(
            "{title}: change of each motor neuron's potential caused by each input, per step \
             (red pushes up, blue down; full colour {scale:.3})"
        );
        draw_titled_rows(&root, (&caption, 15), &rows, (top, row_h), steps, out)?;
        root.present().map_err(err)?;
    }
    save_rgb(&buffer, (WIDTH, height), out)
}

/// Pearson correlation of two equally long series; None when either does not vary.
pub fn correlation(a: &[f32], b: &[f32]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 2 {
        return None;
    }
    let mean = |v: &[f32]| v[..n].iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    (saa > 1e-12 && sbb > 1e-12).then(|| sab / (saa * sbb).sqrt())
}

/// Each neuron's correlation with each observation and action over the episode, as CSV:
/// `neuron,obs/<name>…,action/<name>…` (empty where a series does not vary).
pub fn correlation_table(rollout: &Rollout, out: &Path) -> Result<()> {
    let names = rollout.internal_names.clone().unwrap_or_default();
    let columns: Vec<(String, Vec<f32>)> = observation_series(rollout)
        .into_iter()
        .map(|(n, v)| (format!("obs/{n}"), v))
        .chain(
            action_series(rollout)
                .into_iter()
                .map(|(n, v)| (format!("action/{n}"), v)),
        )
        .collect();
    let mut text = String::from("neuron");
    for (c, _) in &columns {
        let _ = write!(text, ",{}", c.replace(',', "_"));
    }
    text.push('\n');
    for (k, name) in names.iter().enumerate() {
        let neuron: Vec<f32> = rollout
            .steps
            .iter()
            .map(|s| {
                s.internals
                    .as_ref()
                    .and_then(|v| v.get(k))
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect();
        text.push_str(&name.replace(',', "_"));
        for (_, column) in &columns {
            text.push(',');
            if let Some(r) = correlation(&neuron, column) {
                let _ = write!(text, "{r:.4}");
            }
        }
        text.push('\n');
    }
    crate::checkpoint::write_atomic(out, text.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_is_pearsons_and_none_without_variation() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((correlation(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((correlation(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(correlation(&a, &[5.0; 4]).is_none());
        let r = correlation(&a, &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
    }

    #[test]
    fn layers_come_from_the_labels() {
        assert_eq!(layer_of(None, 0, "motor_steering"), "motor");
        assert_eq!(layer_of(None, 0, "command_3"), "command");
        assert_eq!(layer_of(None, 0, "inter_0"), "inter");
        // A circuit's names say nothing of the roles: the recorded roles decide.
        let roles = ["motor", "sensory", "command"].map(String::from);
        assert_eq!(layer_of(Some(&roles), 0, "FWD"), "motor");
        assert_eq!(layer_of(Some(&roles), 1, "PLM"), "sensory");
        assert_eq!(layer_of(Some(&roles), 2, "AVA"), "command");
        assert_eq!(diverging(1.0), RGBColor(200, 30, 40));
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
    }
}
