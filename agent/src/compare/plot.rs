//! The report's figures: one line per group (the mean across seeds) inside its 95 % bootstrap
//! band — learning curves over env steps, and the robustness curve over noise σ.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::runs::Group;
use super::stats::bootstrap_mean;
use crate::inspect::plot::{register_font, save_rgb, PALETTE};

/// A group's curve: (x, mean, lo, hi) per point.
pub type Band = (String, Vec<(f64, f64, f64, f64)>);

/// Each group's evaluation return over env steps: at every step the first run evaluated at,
/// each run's latest evaluation up to that step, averaged with a bootstrap band.
pub fn learning_bands(groups: &[Group]) -> Vec<Band> {
    groups
        .iter()
        .filter_map(|g| {
            let steps: Vec<f64> = g.runs.first()?.evals.iter().map(|e| e.0).collect();
            let points = steps
                .iter()
                .filter_map(|&step| {
                    let values: Vec<f64> = g
                        .runs
                        .iter()
                        .filter_map(|r| r.evals.iter().rev().find(|e| e.0 <= step).map(|e| e.1))
                        .collect();
                    let e = bootstrap_mean(&values)?;
                    Some((step, e.mean, e.lo, e.hi))
                })
                .collect();
            Some((g.label.clone(), points))
        })
        .collect()
}

/// Draws bands into a PNG: `title`, axis labels, one coloured line and shaded band per group.
pub fn draw_bands(
    bands: &[Band],
    title: &str,
    x_label: &str,
    y_label: &str,
    path: &Path,
) -> Result<()> {
    register_font();
    let (w, h) = (900u32, 560u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing {}: {e}", path.display());
        let ((x0, x1), (y0, y1)) = padded_extent(bands, path)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (i, (name, points)) in bands.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut outline: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.3)).collect();
            outline.extend(points.iter().rev().map(|p| (p.0, p.2)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(
                    LineSeries::new(points.iter().map(|p| (p.0, p.1)), color.stroke_width(2))
                        .point_size(if points.len() < 12 { 3 } else { 0 }),
                )
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    save_rgb(&buffer, (w, h), path)
}

/// The x and y ranges holding every point and band, padded by 4 % (a flat range by ±0.5);
/// an error when there is nothing to plot.
fn padded_extent(bands: &[Band], path: &Path) -> Result<((f64, f64), (f64, f64))> {
    let all = bands.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, _, lo, hi) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(lo), y1.max(hi));
    }
    if !x0.is_finite() {
        return Err(anyhow!("{}: nothing to plot", path.display()));
    }
    let pad = |a: f64, b: f64| {
        if b - a < 1e-9 {
            (a - 0.5, b + 0.5)
        } else {
            (a - 0.04 * (b - a), b + 0.04 * (b - a))
        }
    };
    Ok((pad(x0, x1), pad(y0, y1)))
}
