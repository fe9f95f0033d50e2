//! ncps's `WiredCfCCell`: a CfC per wiring layer (inter → command → motor), each layer's
//! inputs masked by the wiring's synapses, so a CfC follows the same sparse circuit as an LTC.

use tch::{nn, Tensor};

use super::cfc::{Activation, CfcCell, CfcHeads, CfcMode, CfcOptions};
use crate::interchange::NamedTensors;
use crate::wiring::Wiring;

/// ncps `WiredCfCCell`: one masked CfC per wiring layer, state in layer order
/// `[layer 0 | layer 1 | …]` (inter | command | motor for NCP).
pub struct WiredCfcCell {
    /// One cell per layer, keys `layer_{l}.*`.
    pub layers: Vec<CfcCell>,
    /// Neurons per layer.
    pub layer_sizes: Vec<usize>,
    /// Outputs: the first `M` neurons of the last layer (ncps returns the whole last layer,
    /// which differs only for single-layer wirings with `output_dim < units`).
    pub output_dim: usize,
    wiring: Wiring,
}

impl WiredCfcCell {
    /// Builds the layers from a built wiring: input mask from the sensory (layer 0) or
    /// previous-layer adjacency, all-ones recurrent block, polarity discarded (as ncps).
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        wiring: &Wiring,
        mode: CfcMode,
        named: &mut NamedTensors,
    ) -> Self {
        let n = wiring.units();
        let s = wiring.input_dim().unwrap_or(0);
        let mut layers = Vec::new();
        let mut layer_sizes = Vec::new();
        let mut prev: Option<&Vec<usize>> = None;
        let mut in_features = s;
        for (l, ids) in wiring.layers().iter().enumerate() {
            let nl = ids.len();
            let mut mask = vec![0f32; (in_features + nl) * nl];
            for (r, src) in (0..in_features).enumerate() {
                for (c, &dst) in ids.iter().enumerate() {
                    let p = match prev {
                        None => wiring.sensory_adjacency()[src * n + dst],
                        Some(p_ids) => wiring.adjacency()[p_ids[src] * n + dst],
                    };
                    mask[r * nl + c] = (p as f32).abs();
                }
            }
            for v in mask[in_features * nl..].iter_mut() {
                *v = 1.0;
            }
            let mask = Tensor::from_slice(&mask).view([(in_features + nl) as i64, nl as i64]);
            let options = CfcOptions {
                mode,
                activation: Activation::LecunTanh,
                backbone_units: 0,
                backbone_layers: 0,
                backbone_dropout: 0.0,
            };
            let sub = path.sub(format!("layer_{l}"));
            let sub_prefix = format!("{prefix}layer_{l}.");
            layers.push(CfcCell::new(
                &sub,
                &sub_prefix,
                in_features,
                nl,
                options,
                Some(mask),
                named,
            ));
            layer_sizes.push(nl);
            in_features = nl;
            prev = Some(ids);
        }
        Self {
            layers,
            layer_sizes,
            output_dim: wiring.output_dim(),
            wiring: wiring.clone(),
        }
    }

    /// The wiring.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// Neuron id of each state column (layer order → wiring ids), for labelling states.
    pub fn state_neuron_ids(&self) -> Vec<usize> {
        self.wiring.layers().iter().flatten().copied().collect()
    }

    /// Every layer's prepared heads (see [`CfcCell::heads`]).
    pub fn heads(&self) -> Vec<CfcHeads> {
        self.layers.iter().map(CfcCell::heads).collect()
    }

    /// One step → `(outputs (B, M'), new state (B, N))`.
    pub fn step(&self, input: &Tensor, hx: &Tensor, ts: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.step_with(&self.heads(), input, hx, ts, train)
    }

    /// One step with heads prepared by [`Self::heads`].
    pub fn step_with(
        &self,
        heads: &[CfcHeads],
        input: &Tensor,
        hx: &Tensor,
        ts: &Tensor,
        train: bool,
    ) -> (Tensor, Tensor) {
        let sizes: Vec<i64> = self.layer_sizes.iter().map(|&s| s as i64).collect();
        let parts = hx.split_with_sizes(sizes.as_slice(), 1);
        let mut inp = input.shallow_clone();
        let mut new = Vec::with_capacity(parts.len());
        for ((cell, h), hd) in self.layers.iter().zip(parts.iter()).zip(heads) {
            let h_new = cell.step_with(hd, &inp, h, ts, train);
            inp = h_new.shallow_clone();
            new.push(h_new);
        }
        let last = *self.layer_sizes.last().unwrap_or(&0);
        let out = if self.output_dim < last {
            inp.narrow(1, 0, self.output_dim as i64)
        } else {
            inp
        };
        (out, Tensor::cat(&new, 1))
    }
}
