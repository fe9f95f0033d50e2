//! The mixed-memory augmentation: an LSTM cell run on (input, h) before each LTC/CfC step whose
//! output replaces the cell's hidden state, giving the continuous-time cell a gated long-term
//! memory (ncps's torch `LSTMCell`, keys `lstm.input_map.*`, `lstm.recurrent_map.weight`).

use tch::{nn, Tensor};

use crate::interchange::{uniform, xavier, NamedTensors};

/// ncps `LSTMCell(input_size, hidden_size)` with the constant forget-gate bias +1.
pub struct LstmCell {
    /// `(4H, in)`, xavier.
    pub input_w: Tensor,
    /// `(4H)`, `U(−0.1, 0.1)`.
    pub input_b: Tensor,
    /// `(4H, H)`, orthogonal.
    pub recurrent_w: Tensor,
}

impl LstmCell {
    /// Registers `input_map.weight`, `input_map.bias`, `recurrent_map.weight` under `path`.
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        input_size: usize,
        hidden: usize,
        named: &mut NamedTensors,
    ) -> Self {
        let (i, h) = (input_size as i64, hidden as i64);
        let im = path.sub("input_map");
        let rm = path.sub("recurrent_map");
        let p_im = format!("{prefix}input_map.");
        let p_rm = format!("{prefix}recurrent_map.");
        let input_w = named.var(&im, &p_im, "weight", xavier(&[4 * h, i]));
        let input_b = named.var(&im, &p_im, "bias", uniform(&[4 * h], -0.1, 0.1));
        let recurrent_w = named.var(&rm, &p_rm, "weight", orthogonal(4 * h, h));
        Self {
            input_w,
            input_b,
            recurrent_w,
        }
    }

    /// `(x, (h, c)) → (h', c')` with gates in ncps's chunk order `i, ig, fg, og`.
    pub fn step(&self, x: &Tensor, h: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
        let z = x.linear(&self.input_w, Some(&self.input_b))
            + h.linear::<Tensor>(&self.recurrent_w, None);
        let g = z.chunk(4, 1);
        let c_new = c * (&g[2] + 1.0).sigmoid() + g[0].tanh() * g[1].sigmoid();
        let h_new = c_new.tanh() * g[3].sigmoid();
        (h_new, c_new)
    }
}

/// A `(rows, cols)` matrix with orthonormal columns (or rows), like `torch.nn.init.orthogonal_`.
fn orthogonal(rows: i64, cols: i64) -> Tensor {
    let flat = Tensor::randn(
        [rows.max(cols), rows.min(cols)],
        (tch::Kind::Float, tch::Device::Cpu),
    );
    let (q, r) = Tensor::linalg_qr(&flat, "reduced");
    let d = r.diagonal(0, 0, 1).sign();
    let q = q * d.unsqueeze(0);
    // Contiguous either way: safetensors saves only contiguous tensors.
    if rows < cols {
        q.tr().contiguous()
    } else {
        q.contiguous()
    }
}
