//! The searched parameters as one flat vector: every parameter the actions depend on (the
//! circuit's and its input/output maps', an encoder's), not the critic's and not the
//! Gaussian's `log_std` — search acts with the mode. A try perturbs a few scalars of it.

use rand::seq::index;
use rand::Rng;
use tch::{Device, Tensor};
use wormnet_sim::noise::standard_normal;

use crate::policy::Policy;

/// Below this, a tensor's initial mean magnitude is taken as this, so a tensor that starts
/// at zero still moves.
const SCALE_FLOOR: f32 = 1e-2;

/// Where each searched tensor lies in the flat vector, and how far its scalars step.
#[derive(Clone, Debug)]
pub struct SearchSpace {
    /// `(name, shape, start)`: the tensor's scalars are `start..start + numel`.
    tensors: Vec<(String, Vec<i64>, usize)>,
    /// Per scalar: its tensor's initial mean magnitude (at least [`SCALE_FLOOR`]).
    scale: Vec<f32>,
}

/// Whether the parameter `name` is searched: not the critic's, not `log_std`.
fn searched(name: &str) -> bool {
    !name.starts_with("critic.") && name != "log_std"
}

impl SearchSpace {
    /// The searched parameters of `policy`, scaled by their values now (the initial ones).
    pub fn of(policy: &Policy) -> Self {
        let mut tensors = Vec::new();
        let mut scale = Vec::new();
        for (name, t) in policy.parameters() {
            if !searched(&name) {
                continue;
            }
            let values = flat(&t);
            let mean = values.iter().map(|v| v.abs()).sum::<f32>() / values.len().max(1) as f32;
            tensors.push((name, t.size(), scale.len()));
            scale.extend(std::iter::repeat_n(mean.max(SCALE_FLOOR), values.len()));
        }
        SearchSpace { tensors, scale }
    }

    /// Scalars searched.
    pub fn len(&self) -> usize {
        self.scale.len()
    }

    /// Whether nothing is searched (a policy without actor parameters).
    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// The searched values of `policy`, flat.
    pub fn read(&self, policy: &Policy) -> Vec<f32> {
        let params: std::collections::BTreeMap<String, Tensor> =
            policy.parameters().into_iter().collect();
        let mut out = Vec::with_capacity(self.len());
        for (name, _, _) in &self.tensors {
            out.extend(params.get(name).map(flat).unwrap_or_default());
        }
        out
    }

    /// Writes `values` into `policy`'s searched parameters.
    pub fn write(&self, policy: &Policy, values: &[f32]) {
        let params: std::collections::BTreeMap<String, Tensor> =
            policy.parameters().into_iter().collect();
        let device = policy.device();
        tch::no_grad(|| {
            for (i, (name, shape, start)) in self.tensors.iter().enumerate() {
                let end = self.tensors.get(i + 1).map_or(values.len(), |t| t.2);
                if let Some(p) = params.get(name) {
                    let v = Tensor::from_slice(&values[*start..end])
                        .reshape(shape.as_slice())
                        .to_device(device);
                    p.shallow_clone().copy_(&v);
                }
            }
        });
    }

    /// Adds Gaussian noise to `width` distinct scalars of `values` drawn from `rng`: σ = `step`
    /// × max(|value|, its tensor's initial mean magnitude), so a weight near zero and a
    /// capacitance near one both move by their kind's size at `step` = 1.
    pub fn perturb(&self, values: &mut [f32], width: usize, step: f64, rng: &mut impl Rng) {
        let n = self.len().min(values.len());
        for i in index::sample(rng, n, width.clamp(1, n.max(1)).min(n)) {
            let sigma = step * f64::from(values[i].abs().max(self.scale[i]));
            values[i] += (standard_normal(rng) * sigma) as f32;
        }
    }
}

/// A tensor's values, flat, on the CPU.
fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().to_device(Device::Cpu).reshape([-1])).unwrap_or_default()
}
