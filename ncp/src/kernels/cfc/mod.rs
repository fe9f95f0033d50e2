//! Hand-written CPU kernels for the wired CfC (ncps `WiredCfCCell`): forward, streaming step and
//! backward through time as plain f32 loops.
//!
//! Per layer and step, with `z = [input, h]` and the fused heads `o = (W ⊙ mask)·z + b`:
//! default `h' = f1 + σ(t_a·Δt + t_b)·(f2 − f1)`, no_gate `h' = f1 + σ(…)·f2` with
//! `f1, f2 = tanh(o)`, pure `h' = A − A·exp(−Δt(|w_tau| + |o|))·o`. Everything is laid out
//! `[row][B]` so the inner loops run over the batch and vectorise. Gradients reach libtorch
//! through the shared [`super::Tape`] (checked against autograd in the crate's tests).

// Numerical kernels over parallel arrays read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::plumbing::{Gradients, Kernel, Run};

mod layer;

pub use layer::CfcForm;
use layer::Layer;

/// A wired CfC's parameters in kernel form: each layer's heads fused into one matrix.
pub struct CfcKernel {
    layers: Vec<Layer>,
    mode: CfcForm,
    n: usize,
    out: usize,
}

/// One dense head of a layer: `weight (H, in + H)`, `bias (H)`.
pub struct HeadSpec {
    /// Row-major weights.
    pub weight: Vec<f32>,
    /// Bias (zeros when the head has none).
    pub bias: Option<Vec<f32>>,
    /// Whether the layer's sparsity mask applies (ff1, ff2) or not (time heads).
    pub masked: bool,
}

/// One wiring layer as the kernel is built from it.
pub struct LayerSpec {
    /// Neurons in the layer.
    pub hidden: usize,
    /// `ff1` (and `ff2`, `time_a`, `time_b` unless pure), in that order.
    pub heads: Vec<HeadSpec>,
    /// `(in + H, H)` sparsity mask, row-major as its weights' transpose; None = dense.
    pub mask: Option<Vec<f32>>,
    /// Pure mode's `w_tau (H)`.
    pub w_tau: Option<Vec<f32>>,
    /// Pure mode's `A (H)`.
    pub a: Option<Vec<f32>>,
}

/// What a wired-CfC kernel is built from.
pub struct CfcSpec {
    /// The layers in processing order.
    pub layers: Vec<LayerSpec>,
    /// The solution form (the same for every layer).
    pub form: CfcForm,
    /// Outputs: the first `out` neurons of the last layer.
    pub out: usize,
}

impl CfcKernel {
    /// Fuses each layer's heads into one masked matrix. The order of [`Gradients::params`] is,
    /// per layer, each head's weight then bias, then `w_tau` and `A` in pure mode.
    pub fn new(spec: CfcSpec) -> Self {
        let n = spec.layers.iter().map(|l| l.hidden).sum();
        let layers = spec
            .layers
            .into_iter()
            .map(|l| {
                let h = l.hidden;
                let cols = l.heads.first().map_or(0, |d| d.weight.len()) / h.max(1);
                let inputs = cols - h;
                let mask = l.mask.unwrap_or_else(|| vec![1.0; h * cols]);
                let mut w = Vec::new();
                let mut full_mask = Vec::new();
                let mut b = Vec::new();
                for d in &l.heads {
                    for (k, &x) in d.weight.iter().enumerate() {
                        let m = if d.masked { mask[k] } else { 1.0 };
                        w.push(x * m);
                        full_mask.push(m);
                    }
                    b.extend(d.bias.clone().unwrap_or_else(|| vec![0.0; h]));
                }
                let rows = b.len();
                let wt = (0..cols * rows)
                    .map(|k| w[(k % rows) * cols + k / rows])
                    .collect();
                Layer {
                    inputs,
                    hidden: h,
                    rows,
                    w,
                    wt,
                    mask: full_mask,
                    b,
                    w_tau: l.w_tau.unwrap_or_default(),
                    a: l.a.unwrap_or_default(),
                }
            })
            .collect();
        Self {
            layers,
            mode: spec.form,
            n,
            out: spec.out,
        }
    }
}

impl Kernel for CfcKernel {
    type Trace = Trace;

    fn state_size(&self) -> usize {
        self.n
    }

    fn output_size(&self) -> usize {
        self.out
    }

    fn forward(&self, r: &Run, trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
        if (2..PER_SAMPLE_BELOW).contains(&r.b) {
            return forward_per_sample(self, r, trace);
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { forward_avx2(self, r, trace) };
        }
        forward(self, r, trace)
    }

    fn backward(&self, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Gradients {
        // Not compiled for AVX2 like the forward pass: measured slower at batch 32 and no
        // faster at 256 (`wormnet bench ncp`).
        let acc = if trace.samples.is_empty() {
            accumulate(self, r, trace, gy, gh)
        } else {
            accumulate_per_sample(self, r, trace, gy, gh)
        };
        finish(self, acc, r.b)
    }
}

/// Batches smaller than this run one sample at a time: with a sample's rows and columns
/// contiguous the weight loops vectorise, where loops over 2–7 samples do not.
const PER_SAMPLE_BELOW: usize = 8;

/// The forward pass of each sample alone (batch 1); outputs, states and traces side by side.
fn forward_per_sample(p: &CfcKernel, r: &Run, trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
    let (mut y, mut hf) = (Vec::new(), Vec::new());
    let mut samples = Vec::with_capacity(r.b);
    for bi in 0..r.b {
        let mut sample_trace = Trace::default();
        let run = r.sample(bi);
        let (ys, hs) = p.forward(&run, trace.is_some().then_some(&mut sample_trace));
        y.extend(ys);
        hf.extend(hs);
        samples.push(sample_trace);
    }
    if let Some(trace) = trace {
        trace.samples = samples;
    }
    (y, hf)
}

/// [`accumulate`] for each sample alone, its per-sample sums laid out `[param][B]` as the
/// batch pass lays them out, so [`finish`] adds the samples in the same order.
fn accumulate_per_sample(
    p: &CfcKernel,
    r: &Run,
    trace: &Trace,
    gy: &[f32],
    gh: &[f32],
) -> Accumulators {
    let (bn, out, n) = (r.b, p.out, p.n);
    let per: Vec<Accumulators> = (0..bn)
        .map(|bi| {
            let gy = &gy[bi * r.l * out..(bi + 1) * r.l * out];
            let gh = &gh[bi * n..(bi + 1) * n];
            accumulate(p, &r.sample(bi), &trace.samples[bi], gy, gh)
        })
        .collect();
    let interleave = |pick: &dyn Fn(&Accumulators) -> &Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        (0..p.layers.len())
            .map(|li| {
                let len = pick(&per[0])[li].len();
                (0..len * bn)
                    .map(|k| pick(&per[k % bn])[li][k / bn])
                    .collect()
            })
            .collect()
    };
    Accumulators {
        w: interleave(&|a| &a.w),
        b: interleave(&|a| &a.b),
        tau: interleave(&|a| &a.tau),
        a: interleave(&|a| &a.a),
        x: per.iter().flat_map(|a| a.x.iter().copied()).collect(),
        carry: (0..n * bn).map(|k| per[k % bn].carry[k / bn]).collect(),
    }
}

/// [`forward`] compiled for AVX2: the batch loops take 8 samples per instruction instead of 4,
/// with the same operations per sample (no FMA), so results are bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(p: &CfcKernel, r: &Run, trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
    forward(p, r, trace)
}

/// Per step and layer: `z` (`[in+H][B]`) and `o` (`[rows][B]`), kept for the backward pass.
#[derive(Default)]
pub struct Trace {
    z: Vec<Vec<f32>>,
    o: Vec<Vec<f32>>,
    /// One trace per sample when the batch ran one sample at a time.
    samples: Vec<Trace>,
}

/// Forward over the run; state `h` is `[N][B]` in layer order. Returns outputs `[b][t][M]`
/// and the final state `[b][N]`.
#[inline(always)]
fn forward(p: &CfcKernel, r: &Run, mut trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
    let bn = r.b;
    let mut h = vec![0f32; p.n * bn];
    for bi in 0..bn {
        for j in 0..p.n {
            h[j * bn + bi] = r.h0[bi * p.n + j];
        }
    }
    let mut y = vec![0f32; bn * r.l * p.out];
    let mut inp = vec![0f32; r.s * bn];
    let mut ts = vec![0f32; bn];
    for t in 0..r.l {
        if let Some(starts) = &r.starts {
            for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                for j in 0..p.n {
                    h[j * bn + bi] = 0.0;
                }
            }
        }
        inp.resize(r.s * bn, 0.0);
        for bi in 0..bn {
            for i in 0..r.s {
                inp[i * bn + bi] = r.x[(bi * r.l + t) * r.s + i];
            }
            ts[bi] = r.ts[bi * r.l + t];
        }
        let mut offset = 0;
        for layer in &p.layers {
            let (ni, nh) = (layer.inputs, layer.hidden);
            let mut z = vec![0f32; (ni + nh) * bn];
            z[..ni * bn].copy_from_slice(&inp[..ni * bn]);
            z[ni * bn..].copy_from_slice(&h[offset * bn..(offset + nh) * bn]);
            let o = layer.affine(&z, bn);
            let hn = &mut h[offset * bn..(offset + nh) * bn];
            layer.cell_update(p.mode, &o, &ts, hn);
            inp.clear();
            inp.extend_from_slice(hn);
            if let Some(tr) = trace.as_deref_mut() {
                tr.z.push(z);
                tr.o.push(o);
            }
            offset += nh;
        }
        for bi in 0..bn {
            for j in 0..p.out {
                y[(bi * r.l + t) * p.out + j] = inp[j * bn + bi];
            }
        }
    }
    let mut hf = vec![0f32; bn * p.n];
    for bi in 0..bn {
        for j in 0..p.n {
            hf[bi * p.n + j] = h[j * bn + bi];
        }
    }
    (y, hf)
}

/// What backpropagation through time leaves: per-sample parameter sums `[param][B]` per
/// layer (weights, biases, pure mode's `w_tau` and `A`), input gradients `[b][t][S]` and the
/// gradient reaching the initial state, `[N][B]`.
struct Accumulators {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
    tau: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    x: Vec<f32>,
    carry: Vec<f32>,
}

/// Backpropagates the gradients of the outputs `gy [b][t][out]` and of the final state
/// `gh [b][N]` through time, exactly as autograd through the cell would.
fn accumulate(p: &CfcKernel, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Accumulators {
    let bn = r.b;
    let mut acc = Accumulators::zeros(p, r, gh);
    let n_layers = p.layers.len();
    let offsets: Vec<usize> = p
        .layers
        .iter()
        .scan(0, |acc, l| {
            let o = *acc;
            *acc += l.hidden;
            Some(o)
        })
        .collect();
    for t in (0..r.l).rev() {
        let ts: Vec<f32> = (0..bn).map(|bi| r.ts[bi * r.l + t]).collect();
        // Gradient arriving at the last layer's outputs from y.
        let mut g_in_from_above: Vec<f32> = Vec::new();
        let mut new_carry = vec![0f32; p.n * bn];
        for li in (0..n_layers).rev() {
            let layer = &p.layers[li];
            let (ni, nh) = (layer.inputs, layer.hidden);
            let off = offsets[li];
            let z = &trace.z[t * n_layers + li];
            let o = &trace.o[t * n_layers + li];
            // dL/dh' for this layer.
            let mut g = acc.carry[off * bn..(off + nh) * bn].to_vec();
            if li + 1 < n_layers {
                for (gv, &a) in g.iter_mut().zip(&g_in_from_above) {
                    *gv += a;
                }
            } else {
                for bi in 0..bn {
                    for j in 0..p.out {
                        g[j * bn + bi] += gy[(bi * r.l + t) * p.out + j];
                    }
                }
            }
            let g_o = match p.mode {
                CfcForm::Pure => layer.pure_backward(&g, o, &ts, &mut acc.a[li], &mut acc.tau[li]),
                mode => layer.gated_backward(mode, &g, o, &ts),
            };
            let g_z = layer.affine_backward(&g_o, z, bn, &mut acc.w[li], &mut acc.b[li]);
            new_carry[off * bn..(off + nh) * bn].copy_from_slice(&g_z[ni * bn..]);
            if li == 0 {
                for bi in 0..bn {
                    for i in 0..ni {
                        acc.x[(bi * r.l + t) * r.s + i] = g_z[i * bn + bi];
                    }
                }
            } else {
                g_in_from_above = g_z[..ni * bn].to_vec();
            }
        }
        acc.carry = new_carry;
        if let Some(starts) = &r.starts {
            for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                for j in 0..p.n {
                    acc.carry[j * bn + bi] = 0.0;
                }
            }
        }
    }
    acc
}

impl Accumulators {
    /// Zeroed sums for `r`'s batch, with the final state's gradient `gh [b][N]` as the carry.
    fn zeros(p: &CfcKernel, r: &Run, gh: &[f32]) -> Self {
        let bn = r.b;
        let mut carry = vec![0f32; p.n * bn];
        for bi in 0..bn {
            for j in 0..p.n {
                carry[j * bn + bi] = gh[bi * p.n + j];
            }
        }
        let per_layer = |len: &dyn Fn(&Layer) -> usize| -> Vec<Vec<f32>> {
            p.layers.iter().map(|l| vec![0f32; len(l) * bn]).collect()
        };
        Accumulators {
            w: per_layer(&|l| l.rows * (l.inputs + l.hidden)),
            b: per_layer(&|l| l.rows),
            tau: per_layer(&|l| l.hidden),
            a: per_layer(&|l| l.hidden),
            x: vec![0f32; bn * r.l * r.s],
            carry,
        }
    }
}

/// Sums the per-sample accumulators over the batch into the parameter gradients.
fn finish(p: &CfcKernel, acc: Accumulators, bn: usize) -> Gradients {
    let (acc_w, acc_b, acc_tau, acc_a, carry) = (acc.w, acc.b, acc.tau, acc.a, acc.carry);
    let reduce =
        |acc: &[f32]| -> Vec<f32> { acc.chunks(bn.max(1)).map(|c| c.iter().sum()).collect() };
    let mut params: Vec<Vec<f32>> = Vec::new();
    for (li, layer) in p.layers.iter().enumerate() {
        let cols = layer.inputs + layer.hidden;
        let h = layer.hidden;
        let w = reduce(&acc_w[li]);
        let b = reduce(&acc_b[li]);
        for head in 0..layer.rows / h {
            let rows = head * h..(head + 1) * h;
            params.push(w[rows.start * cols..rows.end * cols].to_vec());
            params.push(b[rows].to_vec());
        }
        if p.mode == CfcForm::Pure {
            params.push(reduce(&acc_tau[li]));
            params.push(reduce(&acc_a[li]));
        }
    }
    let mut g_h0 = vec![0f32; bn * p.n];
    for bi in 0..bn {
        for j in 0..p.n {
            g_h0[bi * p.n + j] = carry[j * bn + bi];
        }
    }
    Gradients {
        params,
        x: acc.x,
        h0: g_h0,
    }
}
