//! Which neurons matter: knock each neuron out (and each layer as a group) and measure what
//! the policy loses — its return and success rate — and how far its actions move from the
//! intact policy's on the same observations.
//!
//! A knocked-out LTC neuron is held at rest (its potential stays at the 0 every episode starts
//! from: its capacitance is made huge and its incoming synapses silent) and its outgoing
//! synapses are silenced (their conductance is 0), on the autograd and the kernel paths alike.

use anyhow::{bail, Result};
use serde::Serialize;
use tch::Tensor;
use wormnet_sim::EnvFactory;

use super::audit::Auditor;
use crate::eval::{evaluate, EvalOptions};
use crate::policy::Policy;

/// One knockout: a neuron, or a whole layer.
#[derive(Clone, Debug)]
pub struct Knockout {
    /// The neuron's label, or the layer's name.
    pub name: String,
    /// The layer (`sensory` for a circuit's sensory neurons, `inter`, `command`, `motor`), or
    /// `layer` for a whole-layer knockout.
    pub layer: String,
    /// Neuron ids knocked out.
    pub neurons: Vec<usize>,
}

/// What one knockout did, as `wormnet ablate` reports it (one JSON line each).
#[derive(Clone, Debug, Serialize)]
pub struct AblationRow {
    /// The neuron's label (or the layer's name).
    pub neuron: String,
    /// Its layer (`layer` for a whole-layer knockout).
    pub layer: String,
    /// Mean return with the knockout.
    pub return_mean: f64,
    /// Intact mean return minus `return_mean`.
    pub return_drop: f64,
    /// Success rate with the knockout, where the env defines success.
    pub success_rate: Option<f64>,
    /// Mean |action − intact action| over the intact policy's recorded observations.
    pub action_change: f64,
}

/// Every neuron of an LTC actor, then every layer, as knockouts.
pub fn knockouts(policy: &Policy) -> Result<Vec<Knockout>> {
    if policy.actor.ltc().is_none() || policy.actor.config().mixed_memory {
        bail!(
            "ablation needs an LTC actor without mixed memory (this one is {:?}); other cells \
             are not supported yet",
            policy.actor.config().cell
        );
    }
    let labels = policy.neuron_labels();
    // By role, not by label: a circuit's neurons are named `AVA`, `FWD`, ….
    let roles = policy.actor.state_neuron_types();
    let layer = |id: usize| roles.get(id).map_or("inter", |r| r.as_str());
    let mut out: Vec<Knockout> = labels
        .iter()
        .enumerate()
        .map(|(id, name)| Knockout {
            name: name.clone(),
            layer: layer(id).to_string(),
            neurons: vec![id],
        })
        .collect();
    for group in ["sensory", "inter", "command", "motor"] {
        let neurons: Vec<usize> = (0..labels.len()).filter(|&id| layer(id) == group).collect();
        if !neurons.is_empty() {
            out.push(Knockout {
                name: group.to_string(),
                layer: "layer".to_string(),
                neurons,
            });
        }
    }
    Ok(out)
}

/// Knocks `neurons` out of the policy's LTC actor in place (see the module doc).
pub fn knock_out(policy: &Policy, neurons: &[usize]) -> Result<()> {
    let Some(cell) = policy.actor.ltc() else {
        bail!("ablation needs an LTC actor");
    };
    // With implicit constraints parameters pass through softplus: a very negative raw value
    // is a conductance of exactly 0 in f32.
    let off = if cell.options.implicit_constraints {
        -1e4
    } else {
        0.0
    };
    tch::no_grad(|| {
        for &j in neurons {
            let j = j as i64;
            let fill = |t: &Tensor, dim: i64, value: f64| {
                let _ = t.narrow(dim, j, 1).fill_(value);
            };
            fill(&cell.w, 0, off); // outgoing synapses
            fill(&cell.w, 1, off); // incoming synapses
            fill(&cell.sensory_w, 1, off); // incoming sensory synapses
            fill(&cell.cm, 0, 1e6); // a capacitance that holds it at rest
        }
    });
    Ok(())
}

/// Runs every knockout: `load` builds a fresh copy of the intact policy each time, `probes`
/// are the observations of episodes the intact policy played, `options` the evaluation.
pub fn ablate(
    load: &dyn Fn() -> Result<Policy>,
    factory: &EnvFactory,
    options: &EvalOptions,
    probes: &[Vec<Vec<f32>>],
    mut progress: impl FnMut(&Knockout),
) -> Result<Vec<AblationRow>> {
    let intact = load()?;
    let base = evaluate(&intact, factory.clone(), options)?;
    let actions = |policy: Policy| -> Vec<Vec<f32>> {
        let mut auditor = Auditor::new(std::rc::Rc::new(policy), true);
        let mut out = Vec::new();
        for episode in probes {
            auditor.reset();
            for obs in episode {
                out.push(auditor.act(obs).action);
            }
        }
        out
    };
    let reference = actions(intact);
    let mut rows = Vec::new();
    for knockout in knockouts(&load()?)? {
        progress(&knockout);
        let policy = load()?;
        knock_out(&policy, &knockout.neurons)?;
        let summary = evaluate(&policy, factory.clone(), options)?;
        let moved = actions(policy);
        let (mut sum, mut count) = (0.0f64, 0usize);
        for (a, b) in moved.iter().zip(&reference) {
            for (x, y) in a.iter().zip(b) {
                sum += f64::from((x - y).abs());
                count += 1;
            }
        }
        rows.push(AblationRow {
            neuron: knockout.name,
            layer: knockout.layer,
            return_mean: summary.mean_return,
            return_drop: base.mean_return - summary.mean_return,
            success_rate: summary.success_rate,
            action_change: if count == 0 { 0.0 } else { sum / count as f64 },
        });
    }
    rows.sort_by(|a, b| b.return_drop.total_cmp(&a.return_drop));
    Ok(rows)
}

/// The knockouts' return drops as a horizontal bar chart, largest effect first.
pub fn ablation_chart(rows: &[AblationRow], title: &str, out: &std::path::Path) -> Result<()> {
    use plotters::prelude::*;
    super::plot::register_font();
    let (w, h) = (1000u32, 60 + 22 * rows.len().max(1) as u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing {}: {e}", out.display());
        let (lo, hi) = rows.iter().fold((0f64, 0f64), |(a, b), r| {
            (a.min(r.return_drop), b.max(r.return_drop))
        });
        let pad = 0.05 * (hi - lo).max(1e-9);
        let n = rows.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{title}: return lost when a neuron (or layer) is knocked out"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(170)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0f64..n as f64)
            .map_err(err)?;
        let names: Vec<String> = rows
            .iter()
            .map(|r| {
                if r.layer == "layer" {
                    format!("[{} layer]", r.neuron)
                } else {
                    r.neuron.clone()
                }
            })
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("return drop (intact − knocked out)")
            .draw()
            .map_err(err)?;
        for (i, name) in names.iter().enumerate() {
            let y = (n - 1 - i) as f64 + 0.5;
            let (_, py) = chart.backend_coord(&(lo - pad, y));
            root.draw_text(
                name,
                &("sans-serif", 13).into_font().color(&BLACK),
                (12, py - 7),
            )
            .map_err(err)?;
        }
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let y = (n - 1 - i) as f64;
                let color = if r.layer == "layer" {
                    RGBColor(120, 120, 120)
                } else {
                    RGBColor(214, 39, 40)
                };
                Rectangle::new([(0.0, y + 0.15), (r.return_drop, y + 0.85)], color.filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    super::plot::save_rgb(&buffer, (w, h), out)
}
