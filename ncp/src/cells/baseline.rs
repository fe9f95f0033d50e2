//! The baselines an NCP is compared against, built from the same config and trained by the same
//! code: a GRU (torch `GRUCell`), and a feed-forward MLP with no memory. (The LSTM baseline is
//! [`super::LstmCell`] run on its own.) Each maps an input and a state to the next state; the
//! network's `fc` projection turns that state into the outputs.

use tch::{nn, Tensor};

use crate::interchange::{uniform, NamedTensors};

/// torch `GRUCell(input_size, hidden_size)`: keys `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`
/// with torch's `U(−1/√H, 1/√H)` init, gates in torch's order `r, z, n`.
pub struct GruCell {
    /// `(3H, in)`.
    pub weight_ih: Tensor,
    /// `(3H, H)`.
    pub weight_hh: Tensor,
    /// `(3H)`.
    pub bias_ih: Tensor,
    /// `(3H)`.
    pub bias_hh: Tensor,
}

impl GruCell {
    /// Registers the four tensors under `path` (ncps-style keys `prefix` + name).
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        input_size: usize,
        hidden: usize,
        named: &mut NamedTensors,
    ) -> Self {
        let (i, h) = (input_size as i64, hidden as i64);
        let k = 1.0 / (hidden as f64).sqrt();
        let mut var =
            |name: &str, shape: &[i64]| named.var(path, prefix, name, uniform(shape, -k, k));
        Self {
            weight_ih: var("weight_ih", &[3 * h, i]),
            weight_hh: var("weight_hh", &[3 * h, h]),
            bias_ih: var("bias_ih", &[3 * h]),
            bias_hh: var("bias_hh", &[3 * h]),
        }
    }

    /// `(x, h) → h'`: `h' = (1 − z)·n + z·h` with `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`.
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Tensor {
        x.gru_cell(
            h,
            &self.weight_ih,
            &self.weight_hh,
            Some(&self.bias_ih),
            Some(&self.bias_hh),
        )
    }
}

/// A tanh MLP `in → units → … → units` (torch `Linear` init) whose last hidden layer is the
/// "state": it is recomputed from the input alone at every step, so the policy has no memory.
pub struct MlpCell {
    layers: Vec<(Tensor, Tensor)>,
}

impl MlpCell {
    /// Registers `layers` linear layers `l{i}.weight`/`l{i}.bias` under `path`.
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        input_size: usize,
        units: usize,
        layers: usize,
        named: &mut NamedTensors,
    ) -> Self {
        let mut fan_in = input_size as i64;
        let layers = (0..layers)
            .map(|i| {
                let sub = path.sub(format!("l{i}"));
                let p = format!("{prefix}l{i}.");
                let k = 1.0 / (fan_in as f64).sqrt();
                let w = named.var(&sub, &p, "weight", uniform(&[units as i64, fan_in], -k, k));
                let b = named.var(&sub, &p, "bias", uniform(&[units as i64], -k, k));
                fan_in = units as i64;
                (w, b)
            })
            .collect();
        Self { layers }
    }

    /// The last hidden layer's activations for input `x`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (w, b) in &self.layers {
            h = h.linear(w, Some(b)).tanh();
        }
        h
    }
}
