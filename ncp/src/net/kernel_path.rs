//! How a network runs on the hand-written CPU kernels: reading a cell's tensors into a
//! kernel's parameter form (cached until a parameter changes), and listing the tensors in the
//! order the kernel's gradients come back in. The only place that knows both cells and
//! kernels.

use std::sync::Arc;

use tch::Tensor;

use crate::cells::{CfcCell, CfcMode, LtcCell, WiredCfcCell};
use crate::kernels::cfc::{CfcForm, CfcKernel, CfcSpec, HeadSpec, LayerSpec};
use crate::kernels::ltc::{param, LtcKernel, LtcSpec};
use crate::kernels::{self, values, Kernel, ParamCache};

/// The kernel forms of a network's cell, each rebuilt only when a parameter changed.
#[derive(Default)]
pub struct KernelCaches {
    ltc: ParamCache<LtcKernel>,
    cfc: ParamCache<CfcKernel>,
}

/// A cell the kernels can run.
pub enum KernelCell<'a> {
    /// An LTC.
    Ltc(&'a LtcCell),
    /// A wired CfC.
    Wired(&'a WiredCfcCell),
}

impl KernelCaches {
    /// No-grad forward over a sequence; see [`kernels::forward_sequence`].
    pub fn forward_sequence(
        &self,
        cell: KernelCell<'_>,
        x: &Tensor,
        h0: &Tensor,
        ts: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        match cell {
            KernelCell::Ltc(c) => kernels::forward_sequence(&*self.ltc_kernel(c), x, h0, ts),
            KernelCell::Wired(c) => kernels::forward_sequence(&*self.cfc_kernel(c), x, h0, ts),
        }
    }

    /// One streaming step; see [`kernels::step`].
    pub fn step(
        &self,
        cell: KernelCell<'_>,
        x: &Tensor,
        h: &Tensor,
        dt: &Tensor,
    ) -> (Tensor, Tensor) {
        match cell {
            KernelCell::Ltc(c) => kernels::step(&*self.ltc_kernel(c), x, h, dt),
            KernelCell::Wired(c) => kernels::step(&*self.cfc_kernel(c), x, h, dt),
        }
    }

    /// Training forward; see [`kernels::forward_sequence_train`].
    pub fn forward_sequence_train(
        &self,
        cell: KernelCell<'_>,
        x: &Tensor,
        h0: &Tensor,
        ts: Option<&Tensor>,
        starts: Option<&Tensor>,
    ) -> (Tensor, Tensor, kernels::Tape) {
        fn train<K: Kernel>(
            k: Arc<K>,
            params: Vec<Option<&Tensor>>,
            x: &Tensor,
            h0: &Tensor,
            ts: Option<&Tensor>,
            starts: Option<&Tensor>,
        ) -> (Tensor, Tensor, kernels::Tape) {
            let params = params
                .into_iter()
                .map(|t| t.map(Tensor::shallow_clone))
                .collect();
            kernels::forward_sequence_train(k, params, x, h0, ts, starts)
        }
        match cell {
            KernelCell::Ltc(c) => train(self.ltc_kernel(c), ltc_tensors(c), x, h0, ts, starts),
            KernelCell::Wired(c) => train(self.cfc_kernel(c), cfc_tensors(c), x, h0, ts, starts),
        }
    }

    /// The LTC's kernel form (what the audit reads synapse activity from).
    pub fn ltc_kernel(&self, cell: &LtcCell) -> Arc<LtcKernel> {
        let tensors: Vec<&Tensor> = ltc_tensors(cell).into_iter().flatten().collect();
        self.ltc.get(&tensors, || ltc_kernel(cell))
    }

    fn cfc_kernel(&self, cell: &WiredCfcCell) -> Arc<CfcKernel> {
        let tensors: Vec<&Tensor> = cfc_tensors(cell).into_iter().flatten().collect();
        self.cfc.get(&tensors, || cfc_kernel(cell))
    }
}

/// The LTC's tensors indexed by [`param`] (None for a mapping the cell lacks).
fn ltc_tensors(cell: &LtcCell) -> Vec<Option<&Tensor>> {
    let mut v: Vec<Option<&Tensor>> = vec![None; param::COUNT];
    for (k, t) in [
        (param::GLEAK, &cell.gleak),
        (param::VLEAK, &cell.vleak),
        (param::CM, &cell.cm),
        (param::SIGMA, &cell.sigma),
        (param::MU, &cell.mu),
        (param::W, &cell.w),
        (param::EREV, &cell.erev),
        (param::SENSORY_SIGMA, &cell.sensory_sigma),
        (param::SENSORY_MU, &cell.sensory_mu),
        (param::SENSORY_W, &cell.sensory_w),
        (param::SENSORY_EREV, &cell.sensory_erev),
    ] {
        v[k] = Some(t);
    }
    v[param::INPUT_W] = cell.input_w.as_ref();
    v[param::INPUT_B] = cell.input_b.as_ref();
    v[param::OUTPUT_W] = cell.output_w.as_ref();
    v[param::OUTPUT_B] = cell.output_b.as_ref();
    v[param::GAP_W] = cell.gap_w.as_ref();
    v
}

fn ltc_kernel(cell: &LtcCell) -> LtcKernel {
    let wiring = cell.wiring();
    let tensors = ltc_tensors(cell);
    LtcKernel::new(LtcSpec {
        n: wiring.units(),
        s: wiring.input_dim().unwrap_or(0),
        m: wiring.output_dim(),
        unfolds: cell.options.ode_unfolds,
        eps: cell.options.epsilon as f32,
        implicit: cell.options.implicit_constraints,
        synapses: wiring.synapses(),
        sensory_synapses: wiring.sensory_synapses(),
        gap_junctions: wiring.gap_junctions().to_vec(),
        values: std::array::from_fn(|k| tensors[k].map(values)),
    })
}

/// A wired CfC's layer tensors in kernel order: per layer each head's weight and bias, then
/// `w_tau` and `A` in pure mode.
fn cfc_tensors(cell: &WiredCfcCell) -> Vec<Option<&Tensor>> {
    let mut v = Vec::new();
    for l in &cell.layers {
        for d in heads(l) {
            v.push(Some(&d.weight));
            v.push(d.bias.as_ref());
        }
        if l.options.mode == CfcMode::Pure {
            v.push(l.w_tau.as_ref());
            v.push(l.a.as_ref());
        }
    }
    v
}

fn heads(l: &CfcCell) -> Vec<&crate::cells::Dense> {
    match (&l.ff2, &l.time_a, &l.time_b) {
        (Some(ff2), Some(ta), Some(tb)) => vec![&l.ff1, ff2, ta, tb],
        _ => vec![&l.ff1],
    }
}

fn cfc_kernel(cell: &WiredCfcCell) -> CfcKernel {
    let mode = cell
        .layers
        .first()
        .map(|l| l.options.mode)
        .unwrap_or_default();
    let layers = cell
        .layers
        .iter()
        .map(|l| {
            let n_heads = heads(l).len();
            LayerSpec {
                hidden: l.hidden,
                heads: heads(l)
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| HeadSpec {
                        weight: values(&d.weight),
                        bias: d.bias.as_ref().map(values),
                        // ff1 and ff2 follow the wiring; the time heads are dense.
                        masked: i == 0 || (n_heads == 4 && i == 1),
                    })
                    .collect(),
                mask: l.sparsity_mask.as_ref().map(values),
                w_tau: l.w_tau.as_ref().map(values),
                a: l.a.as_ref().map(values),
            }
        })
        .collect();
    CfcKernel::new(CfcSpec {
        layers,
        form: match mode {
            CfcMode::Default => CfcForm::Default,
            CfcMode::NoGate => CfcForm::NoGate,
            CfcMode::Pure => CfcForm::Pure,
        },
        out: cell.output_dim.min(*cell.layer_sizes.last().unwrap_or(&0)),
    })
}
