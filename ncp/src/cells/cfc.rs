//! Closed-form continuous-time (CfC) cells: the LTC's behaviour approximated in closed form,
//! so one step is a few dense layers instead of an ODE solve. [`CfcCell`] is ncps's `CfCCell`
//! (optional backbone MLP, modes default / pure / no_gate); the wired variant
//! (`wired_cfc`) runs one masked `CfCCell` per wiring layer.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::interchange::{default_bias, xavier, NamedTensors};

/// CfC solution form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CfcMode {
    /// `ff1·(1 − σ) + σ·ff2` with the time gate `σ = σ(t_a·Δt + t_b)`.
    #[default]
    Default,
    /// `−A·exp(−Δt(|w_tau| + |ff1|))·ff1 + A` (direct closed-form solution).
    Pure,
    /// `ff1 + σ·ff2`.
    NoGate,
}

/// Backbone activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `1.7159·tanh(0.666·x)` (ncps default).
    #[default]
    LecunTanh,
    /// SiLU.
    Silu,
    /// ReLU.
    Relu,
    /// tanh.
    Tanh,
    /// exact (erf) GELU.
    Gelu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::LecunTanh => (x * 0.666).tanh() * 1.7159,
            Activation::Silu => x.silu(),
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu("none"),
        }
    }
}

/// A dense layer `y = x·Wᵀ + b`, optionally with a constant mask on `W`.
pub struct Dense {
    /// Weight `(out, in)`.
    pub weight: Tensor,
    /// Bias `(out)`.
    pub bias: Option<Tensor>,
}

impl Dense {
    /// Registers `name.weight`/`name.bias` with xavier weights and torch-default biases
    /// (ncps's CfC init); `xavier = false` keeps torch's default weight init.
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        name: &str,
        fan_in: i64,
        fan_out: i64,
        xavier_init: bool,
        named: &mut NamedTensors,
    ) -> Self {
        let sub = path.sub(name);
        let prefix = format!("{prefix}{name}.");
        let w = if xavier_init {
            xavier(&[fan_out, fan_in])
        } else {
            let bound = 1.0 / (fan_in as f64).sqrt();
            crate::interchange::uniform(&[fan_out, fan_in], -bound, bound)
        };
        let weight = named.var(&sub, &prefix, "weight", w);
        let bias = Some(named.var(&sub, &prefix, "bias", default_bias(fan_out, fan_in)));
        Self { weight, bias }
    }

    /// `x·Wᵀ + b`, with `W ⊙ mask` when a mask is given.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
        match mask {
            Some(m) => x.linear(&(&self.weight * m), self.bias.as_ref()),
            None => x.linear(&self.weight, self.bias.as_ref()),
        }
    }
}

/// Shape of a CfC cell (ncps `CfCCell` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CfcOptions {
    /// Solution form.
    pub mode: CfcMode,
    /// Backbone activation.
    pub activation: Activation,
    /// Backbone width.
    pub backbone_units: usize,
    /// Backbone depth (0 = none).
    pub backbone_layers: usize,
    /// Dropout after backbone layers 2.. (training only; ncps never drops after the first).
    pub backbone_dropout: f64,
}

/// ncps `CfCCell`: keys `backbone.{0,2,…}`, `ff1`, `ff2`, `time_a`, `time_b`, `w_tau`, `A`,
/// `sparsity_mask`.
pub struct CfcCell {
    /// Backbone layers with their ncps Sequential indices.
    pub backbone: Vec<Dense>,
    /// First head.
    pub ff1: Dense,
    /// Second head (not in pure mode).
    pub ff2: Option<Dense>,
    /// Time-gate slope head (not in pure mode).
    pub time_a: Option<Dense>,
    /// Time-gate bias head (not in pure mode).
    pub time_b: Option<Dense>,
    /// Pure mode time constant `(1, H)`.
    pub w_tau: Option<Tensor>,
    /// Pure mode amplitude `(1, H)`.
    pub a: Option<Tensor>,
    /// Constant mask `(H, in + H)` on ff1/ff2 (wired cells).
    pub sparsity_mask: Option<Tensor>,
    /// Options.
    pub options: CfcOptions,
    /// Hidden size.
    pub hidden: usize,
}

impl CfcCell {
    /// Registers the cell under `path` with ncps's init (xavier on every 2-D weight, including
    /// pure mode's `w_tau` and `A`). `mask` is `[src, dst]` of shape `(in + H, H)` as in ncps.
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        input_size: usize,
        hidden: usize,
        options: CfcOptions,
        mask: Option<Tensor>,
        named: &mut NamedTensors,
    ) -> Self {
        let (i, h) = (input_size as i64, hidden as i64);
        let sparsity_mask =
            mask.map(|m| named.constant(path, prefix, "sparsity_mask", m.abs().tr().contiguous()));
        let pure = options.mode == CfcMode::Pure;
        let (w_tau, a) = if pure {
            (
                Some(named.var(path, prefix, "w_tau", xavier(&[1, h]))),
                Some(named.var(path, prefix, "A", xavier(&[1, h]))),
            )
        } else {
            (None, None)
        };
        let mut backbone = Vec::new();
        let bb_path = path.sub("backbone");
        let bb_prefix = format!("{prefix}backbone.");
        let units = options.backbone_units as i64;
        for l in 0..options.backbone_layers {
            let index = backbone_index(l, options.backbone_dropout);
            let fan_in = if l == 0 { i + h } else { units };
            backbone.push(Dense::new(
                &bb_path,
                &bb_prefix,
                &index.to_string(),
                fan_in,
                units,
                true,
                named,
            ));
        }
        let cat = if options.backbone_layers == 0 {
            i + h
        } else {
            units
        };
        let mut dense = |name: &str| Dense::new(path, prefix, name, cat, h, true, named);
        let ff1 = dense("ff1");
        let (ff2, time_a, time_b) = if pure {
            (None, None, None)
        } else {
            (
                Some(dense("ff2")),
                Some(dense("time_a")),
                Some(dense("time_b")),
            )
        };
        Self {
            backbone,
            ff1,
            ff2,
            time_a,
            time_b,
            w_tau,
            a,
            sparsity_mask,
            options,
            hidden,
        }
    }

    /// The head weights for a run of steps: masks applied once, and in default/no_gate mode
    /// the four heads stacked into one matrix so a step does one matmul instead of four.
    pub fn heads(&self) -> CfcHeads {
        let mask = self.sparsity_mask.as_ref();
        let masked = |d: &Dense, m: Option<&Tensor>| match m {
            Some(m) => &d.weight * m,
            None => d.weight.shallow_clone(),
        };
        let bias = |d: &Dense| match &d.bias {
            Some(b) => b.shallow_clone(),
            None => d
                .weight
                .new_zeros([d.weight.size()[0]], (d.weight.kind(), d.weight.device())),
        };
        match (&self.ff2, &self.time_a, &self.time_b) {
            (Some(ff2), Some(ta), Some(tb)) => CfcHeads {
                weight: Tensor::cat(
                    &[
                        masked(&self.ff1, mask),
                        masked(ff2, mask),
                        ta.weight.shallow_clone(),
                        tb.weight.shallow_clone(),
                    ],
                    0,
                ),
                bias: Tensor::cat(&[bias(&self.ff1), bias(ff2), bias(ta), bias(tb)], 0),
            },
            _ => CfcHeads {
                weight: masked(&self.ff1, mask),
                bias: bias(&self.ff1),
            },
        }
    }

    /// One step: `(B, in)`, `(B, H)`, time (scalar tensor or `(B, 1)`) → new hidden `(B, H)`.
    pub fn step(&self, input: &Tensor, hx: &Tensor, ts: &Tensor, train: bool) -> Tensor {
        self.step_with(&self.heads(), input, hx, ts, train)
    }

    /// One step with heads prepared by [`Self::heads`] (reuse them over a sequence).
    pub fn step_with(
        &self,
        heads: &CfcHeads,
        input: &Tensor,
        hx: &Tensor,
        ts: &Tensor,
        train: bool,
    ) -> Tensor {
        let mut x = Tensor::cat(&[input, hx], 1);
        for (l, layer) in self.backbone.iter().enumerate() {
            x = self.options.activation.apply(&layer.forward(&x, None));
            if l > 0 && self.options.backbone_dropout > 0.0 {
                x = x.dropout(self.options.backbone_dropout, train);
            }
        }
        let out = x.linear(&heads.weight, Some(&heads.bias));
        if let (Some(a), Some(w_tau)) = (&self.a, &self.w_tau) {
            let ff1 = out;
            let decay = (-(ts * (w_tau.abs() + ff1.abs()))).exp();
            return -a * decay * ff1 + a;
        }
        let h = self.hidden as i64;
        let ff = out.narrow(1, 0, 2 * h).tanh();
        let (ff1, ff2) = (ff.narrow(1, 0, h), ff.narrow(1, h, h));
        // σ(t_a·Δt + t_b)
        let t_interp = out
            .narrow(1, 3 * h, h)
            .addcmul(&out.narrow(1, 2 * h, h), ts)
            .sigmoid();
        if self.options.mode == CfcMode::NoGate {
            ff1.addcmul(&t_interp, &ff2)
        } else {
            // ff1·(1 − σ) + σ·ff2
            ff1.lerp_tensor(&ff2, &t_interp)
        }
    }
}

/// A CfC cell's head weights prepared for a run of steps (see [`CfcCell::heads`]).
pub struct CfcHeads {
    weight: Tensor,
    bias: Tensor,
}

/// Index of backbone layer `l` in ncps's `nn.Sequential` (activations and dropouts in between).
fn backbone_index(l: usize, dropout: f64) -> usize {
    if l == 0 {
        0
    } else {
        2 + (l - 1) * if dropout > 0.0 { 3 } else { 2 }
    }
}
