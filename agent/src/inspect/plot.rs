//! PNG plots: learning curves of a run (`wormnet plot`) and neuron-activity traces of an
//! audited episode (`wormnet record`). Drawn by plotters into an RGB buffer and encoded by
//! tiny-skia; text uses an embedded DejaVu Sans, so no system font library is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use wormnet_ncp::NeuronType;
use wormnet_sim::rollout::Rollout;

use crate::inspect::audit::{acted_observations, neuron_role};
use crate::metrics::names;

/// DejaVu Sans (Bitstream Vera licence, see assets/DejaVuSans-LICENSE).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Makes the embedded font the "sans-serif" of every plot (once per process).
pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is valid; should it ever fail, plots just lose their text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One titled chart: named series of (x, y) points.
struct Chart {
    title: String,
    x_label: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

/// The series colours (matplotlib's tab10).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn bounds(series: &[(String, Vec<(f64, f64)>)]) -> Option<((f64, f64), (f64, f64))> {
    let mut b = (
        (f64::INFINITY, f64::NEG_INFINITY),
        (f64::INFINITY, f64::NEG_INFINITY),
    );
    for (_, points) in series {
        for &(x, y) in points {
            if x.is_finite() && y.is_finite() {
                b.0 = (b.0 .0.min(x), b.0 .1.max(x));
                b.1 = (b.1 .0.min(y), b.1 .1.max(y));
            }
        }
    }
    if !b.0 .0.is_finite() {
        return None;
    }
    let widen = |(lo, hi): (f64, f64)| {
        if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            let m = 0.05 * (hi - lo);
            (lo - m, hi + m)
        }
    };
    Some((widen(b.0), widen(b.1)))
}

/// Draws charts in a grid of `cols` columns and writes a PNG.
fn draw_grid(charts: &[Chart], cols: usize, size: (u32, u32), path: &Path) -> Result<()> {
    register_font();
    let (w, h) = size;
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let rows = charts.len().div_ceil(cols.max(1)).max(1);
        let areas = root.split_evenly((rows, cols.max(1)));
        for (chart, area) in charts.iter().zip(areas) {
            draw_chart(chart, &area).map_err(|e| anyhow!("drawing {}: {e}", chart.title))?;
        }
        root.present()
            .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    }
    save_rgb(&buffer, (w, h), path)
}

/// Writes an RGB buffer of `size` as a PNG (creating the directory).
pub(crate) fn save_rgb(buffer: &[u8], (w, h): (u32, u32), path: &Path) -> Result<()> {
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| anyhow!("plot size {w}x{h} is invalid"))?;
    for (dst, src) in pixmap
        .data_mut()
        .chunks_exact_mut(4)
        .zip(buffer.chunks_exact(3))
    {
        dst[..3].copy_from_slice(src);
        dst[3] = 255;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    pixmap
        .save_png(path)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

fn draw_chart<DB: DrawingBackend>(
    chart: &Chart,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let Some(((x0, x1), (y0, y1))) = bounds(&chart.series) else {
        area.draw(&Text::new(
            format!("{}: no data", chart.title),
            (20, 20),
            ("sans-serif", 14),
        ))
        .map_err(err)?;
        return Ok(());
    };
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_labels(5)
        .y_labels(5)
        .x_desc(chart.x_label.as_str())
        .label_style(("sans-serif", 11))
        .axis_desc_style(("sans-serif", 11))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let labelled = chart.series.len() > 1 && chart.series.len() <= 8;
    for (i, (name, points)) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let finite = points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        // A lone point (e.g. a single evaluation) has no line: mark it.
        let lone = points.len() == 1;
        let drawn = ctx
            .draw_series(
                LineSeries::new(finite, color.stroke_width(2)).point_size(if lone { 4 } else { 0 }),
            )
            .map_err(err)?;
        if labelled {
            drawn.label(name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
        }
    }
    if labelled {
        ctx.configure_series_labels()
            .label_font(("sans-serif", 10))
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A metrics file: its header and rows of optional values (sparse columns are empty).
pub(crate) type MetricsTable = (Vec<String>, Vec<Vec<Option<f64>>>);

/// `metrics.csv` of a run as columns: (header, rows of optional values).
pub(crate) fn read_metrics(path: &Path) -> Result<MetricsTable> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (is this a run directory?)", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = match lines.next() {
        Some(h) if !h.trim().is_empty() => h.split(',').map(|s| s.trim().to_string()).collect(),
        _ => bail!(
            "{}: empty metrics file (no update logged yet)",
            path.display()
        ),
    };
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut row = Vec::with_capacity(header.len());
        for cell in line.split(',') {
            let cell = cell.trim();
            row.push(if cell.is_empty() {
                None
            } else {
                Some(cell.parse::<f64>().with_context(|| {
                    format!(
                        "{}: line {}: {cell:?} is not a number",
                        path.display(),
                        i + 2
                    )
                })?)
            });
        }
        rows.push(row);
    }
    Ok((header, rows))
}

/// The learning curves of a run directory (return, length, losses, SPS) as one PNG.
pub fn learning_curves(run_dir: &Path, out: &Path) -> Result<()> {
    let metrics = run_dir.join("metrics.csv");
    let (header, rows) = read_metrics(&metrics)?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let Some(step_col) = col("global_step") else {
        bail!("{}: no global_step column", metrics.display());
    };
    let series = |name: &str| -> Option<(String, Vec<(f64, f64)>)> {
        let c = col(name)?;
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.get(step_col).copied()??, r.get(c).copied()??)))
            .collect();
        (!points.is_empty()).then(|| (name.to_string(), points))
    };
    let groups: [(&str, &[&str]); 6] = [
        (
            "episodic return",
            &[names::EPISODIC_RETURN, names::EVAL_MEAN_RETURN],
        ),
        ("episode length", &[names::EPISODIC_LENGTH]),
        ("policy loss", &[names::POLICY_LOSS]),
        ("value loss", &[names::VALUE_LOSS]),
        ("entropy and KL", &[names::ENTROPY, names::APPROX_KL]),
        ("steps per second", &[names::SPS]),
    ];
    let charts: Vec<Chart> = groups
        .iter()
        .map(|(title, names)| Chart {
            title: title.to_string(),
            x_label: "env steps".into(),
            series: names.iter().filter_map(|n| series(n)).collect(),
        })
        .collect();
    if charts.iter().all(|c| c.series.is_empty()) {
        bail!(
            "{}: none of the plotted metrics has a value yet",
            metrics.display()
        );
    }
    draw_grid(&charts, 3, (1500, 860), out)
}

/// Neuron potentials, actions, observations and rewards of one recorded episode, stacked.
pub fn activity_traces(rollout: &Rollout, out: &Path) -> Result<()> {
    let steps = &rollout.steps;
    let x = |t: usize| t as f64;
    let by_index = |names: &[String], get: &dyn Fn(usize, usize) -> Option<f32>| {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let points = (0..steps.len())
                    .filter_map(|t| Some((x(t), f64::from(get(t, k)?))))
                    .collect();
                (n.clone(), points)
            })
            .collect::<Vec<_>>()
    };
    let names = rollout.internal_names.clone().unwrap_or_default();
    let neurons = by_index(&names, &|t, k| steps[t].internals.as_ref()?.get(k).copied());
    // Motor neurons by role (the names of a circuit's neurons say nothing of it), in order.
    let roles = rollout.internal_roles.as_deref();
    let mut is_motor =
        (0..names.len()).map(|k| neuron_role(roles, k, &names[k]) == NeuronType::Motor);
    let (motor, other): (Vec<_>, Vec<_>) =
        (neurons.into_iter()).partition(|_| is_motor.next() == Some(true));
    let observations = acted_observations(rollout);
    let spec = &rollout.spec;
    let actions = by_index(&spec.action_names, &|t, k| steps[t].action.get(k).copied());
    // An image's pixels are left out: the flat components are named, the pixels are not.
    let flat = spec.flat_observations();
    let obs = by_index(&spec.observation_names[flat.clone()], &|t, k| {
        observations
            .get(t)
            .and_then(|o| o.get(flat.start + k))
            .copied()
    });
    let reward = vec![(
        "reward".to_string(),
        steps
            .iter()
            .enumerate()
            .map(|(t, s)| (x(t), f64::from(s.reward)))
            .collect(),
    )];
    let charts = vec![
        Chart {
            title: "motor neurons".into(),
            x_label: "step".into(),
            series: motor,
        },
        Chart {
            title: "inter and command neurons".into(),
            x_label: "step".into(),
            series: other,
        },
        Chart {
            title: "actions".into(),
            x_label: "step".into(),
            series: actions,
        },
        Chart {
            title: "observations".into(),
            x_label: "step".into(),
            series: obs,
        },
        Chart {
            title: "reward".into(),
            x_label: "step".into(),
            series: reward,
        },
    ];
    draw_grid(&charts, 1, (1100, 1400), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_curves_are_drawn_from_sparse_metrics() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("metrics.csv"),
            "global_step,charts/episodic_return,charts/SPS,eval/mean_return\n\
             100,10,500,\n200,,510,12\n300,30,520,\n",
        )
        .expect("write");
        let out = dir.path().join("curves.png");
        learning_curves(dir.path(), &out).expect("plot");
        let png = tiny_skia::Pixmap::load_png(&out).expect("png");
        assert_eq!((png.width(), png.height()), (1500, 860));
        // Not a blank page: the curves and text put many non-white pixels in.
        let ink = png
            .data()
            .chunks_exact(4)
            .filter(|p| p[0] < 200 || p[1] < 200 || p[2] < 200)
            .count();
        assert!(ink > 2000, "only {ink} drawn pixels");
    }

    #[test]
    fn missing_or_empty_metrics_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = learning_curves(dir.path(), &dir.path().join("c.png")).unwrap_err();
        assert!(format!("{e:#}").contains("metrics.csv"));
        std::fs::write(
            dir.path().join("metrics.csv"),
            "global_step,charts/SPS\n1,x\n",
        )
        .expect("write");
        let e = learning_curves(dir.path(), &dir.path().join("c.png")).unwrap_err();
        assert!(format!("{e:#}").contains("line 2"));
    }
}
