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

use super::math::{fast_exp, sigmoid};
use super::plumbing::{Gradients, Kernel, Run};

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // 1 − 2/(e^{2x} + 1), vectorisable; absolute error ~1e-7.
    1.0 - 2.0 / (fast_exp(2.0 * x) + 1.0)
}

/// One layer in kernel form.
struct Layer {
    inputs: usize,
    hidden: usize,
    /// Rows of the fused heads: 4H (default/no_gate) or H (pure).
    rows: usize,
    /// `(rows, inputs + hidden)`, masked.
    w: Vec<f32>,
    /// `w` transposed, `(inputs + hidden, rows)`: one sample's forward runs down its columns.
    wt: Vec<f32>,
    /// `(rows, inputs + hidden)`: 1 where the weight is used (mask for ff1/ff2, 1 elsewhere).
    mask: Vec<f32>,
    b: Vec<f32>,
    w_tau: Vec<f32>,
    a: Vec<f32>,
}

/// A wired CfC's parameters in kernel form: each layer's heads fused into one matrix.
pub struct CfcKernel {
    layers: Vec<Layer>,
    mode: CfcForm,
    n: usize,
    out: usize,
}

/// The solution form of a CfC layer, as the kernel computes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CfcForm {
    /// `h' = f1 + σ(t_a·Δt + t_b)·(f2 − f1)`.
    #[default]
    Default,
    /// `h' = f1 + σ(t_a·Δt + t_b)·f2`.
    NoGate,
    /// `h' = A − A·exp(−Δt(|w_tau| + |f1|))·f1`.
    Pure,
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
            let (ni, nh, rows) = (layer.inputs, layer.hidden, layer.rows);
            let cols = ni + nh;
            let mut z = vec![0f32; cols * bn];
            z[..ni * bn].copy_from_slice(&inp[..ni * bn]);
            z[ni * bn..].copy_from_slice(&h[offset * bn..(offset + nh) * bn]);
            let mut o = vec![0f32; rows * bn];
            if bn == 1 {
                // Per row the same additions in the same order as below, down the columns.
                o.copy_from_slice(&layer.b);
                for (&zc, wc) in z.iter().zip(layer.wt.chunks_exact(rows.max(1))) {
                    for (ov, &w) in o.iter_mut().zip(wc) {
                        *ov = if w != 0.0 { *ov + w * zc } else { *ov };
                    }
                }
            } else {
                for rr in 0..rows {
                    let orow = &mut o[rr * bn..(rr + 1) * bn];
                    orow.fill(layer.b[rr]);
                    for c in 0..cols {
                        let w = layer.w[rr * cols + c];
                        if w != 0.0 {
                            for (ov, &zv) in orow.iter_mut().zip(&z[c * bn..(c + 1) * bn]) {
                                *ov += w * zv;
                            }
                        }
                    }
                }
            }
            let hn = &mut h[offset * bn..(offset + nh) * bn];
            for j in 0..nh {
                for bi in 0..bn {
                    let k = j * bn + bi;
                    hn[k] = match p.mode {
                        CfcForm::Pure => {
                            let f = o[k];
                            let e = fast_exp(-ts[bi] * (layer.w_tau[j].abs() + f.abs()));
                            layer.a[j] - layer.a[j] * e * f
                        }
                        mode => {
                            let f1 = tanh(o[k]);
                            let f2 = tanh(o[(nh + j) * bn + bi]);
                            let g = sigmoid(
                                o[(2 * nh + j) * bn + bi] * ts[bi] + o[(3 * nh + j) * bn + bi],
                            );
                            if mode == CfcForm::NoGate {
                                f1 + g * f2
                            } else {
                                f1 + g * (f2 - f1)
                            }
                        }
                    };
                }
            }
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
    let mut carry = vec![0f32; p.n * bn];
    for bi in 0..bn {
        for j in 0..p.n {
            carry[j * bn + bi] = gh[bi * p.n + j];
        }
    }
    // Per layer accumulators `[param][B]`, reduced at the end.
    let mut acc_w: Vec<Vec<f32>> = p
        .layers
        .iter()
        .map(|l| vec![0f32; l.rows * (l.inputs + l.hidden) * bn])
        .collect();
    let mut acc_b: Vec<Vec<f32>> = p.layers.iter().map(|l| vec![0f32; l.rows * bn]).collect();
    let mut acc_tau: Vec<Vec<f32>> = p.layers.iter().map(|l| vec![0f32; l.hidden * bn]).collect();
    let mut acc_a: Vec<Vec<f32>> = p.layers.iter().map(|l| vec![0f32; l.hidden * bn]).collect();
    let mut g_x = vec![0f32; bn * r.l * r.s];
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
            let (ni, nh, rows) = (layer.inputs, layer.hidden, layer.rows);
            let cols = ni + nh;
            let off = offsets[li];
            let z = &trace.z[t * n_layers + li];
            let o = &trace.o[t * n_layers + li];
            // dL/dh' for this layer.
            let mut g = carry[off * bn..(off + nh) * bn].to_vec();
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
            let mut g_o = vec![0f32; rows * bn];
            match p.mode {
                CfcForm::Pure => {
                    let (acc_a, acc_tau) = (&mut acc_a[li], &mut acc_tau[li]);
                    for j in 0..nh {
                        let (wt, a) = (layer.w_tau[j], layer.a[j]);
                        let span = j * bn..(j + 1) * bn;
                        let (gj, oj) = (&g[span.clone()], &o[span.clone()]);
                        let (aa, at) = (&mut acc_a[span.clone()], &mut acc_tau[span.clone()]);
                        let go = &mut g_o[span];
                        for bi in 0..bn {
                            let (gh, f) = (gj[bi], oj[bi]);
                            let e = fast_exp(-ts[bi] * (wt.abs() + f.abs()));
                            // h' = A − A·e·f
                            aa[bi] += gh * (1.0 - e * f);
                            go[bi] = gh * -a * e * (1.0 - ts[bi] * f.abs());
                            at[bi] += gh * a * f * e * ts[bi] * sign(wt);
                        }
                    }
                }
                mode => {
                    let gated = mode != CfcForm::NoGate;
                    let (g_o1, rest) = g_o.split_at_mut(nh * bn);
                    let (g_o2, rest) = rest.split_at_mut(nh * bn);
                    let (g_ta, g_tb) = rest.split_at_mut(nh * bn);
                    for j in 0..nh {
                        let span = j * bn..(j + 1) * bn;
                        let gj = &g[span.clone()];
                        let o1 = &o[span.clone()];
                        let o2 = &o[(nh + j) * bn..(nh + j + 1) * bn];
                        let ota = &o[(2 * nh + j) * bn..(2 * nh + j + 1) * bn];
                        let otb = &o[(3 * nh + j) * bn..(3 * nh + j + 1) * bn];
                        let (go1, go2) = (&mut g_o1[span.clone()], &mut g_o2[span.clone()]);
                        let (gta, gtb) = (&mut g_ta[span.clone()], &mut g_tb[span]);
                        // `gated` is the same for every sample: the compiler unswitches it.
                        for bi in 0..bn {
                            let gh = gj[bi];
                            let (f1, f2) = (tanh(o1[bi]), tanh(o2[bi]));
                            let s = sigmoid(ota[bi] * ts[bi] + otb[bi]);
                            let (d1, d2, ds) = if gated {
                                (1.0 - s, s, f2 - f1)
                            } else {
                                (1.0, s, f2)
                            };
                            go1[bi] = gh * d1 * (1.0 - f1 * f1);
                            go2[bi] = gh * d2 * (1.0 - f2 * f2);
                            let gp = gh * ds * s * (1.0 - s);
                            gta[bi] = gp * ts[bi];
                            gtb[bi] = gp;
                        }
                    }
                }
            }
            // o = W z + b
            let mut g_z = vec![0f32; cols * bn];
            if bn == 1 {
                // Per element the same additions in the same order as below, along the rows.
                for rr in 0..rows {
                    let gv = g_o[rr];
                    acc_b[li][rr] += gv;
                    let span = rr * cols..(rr + 1) * cols;
                    let (wr, mr) = (&layer.w[span.clone()], &layer.mask[span.clone()]);
                    let aw = &mut acc_w[li][span];
                    for (((a, gz), (&w, &m)), &zc) in aw
                        .iter_mut()
                        .zip(g_z.iter_mut())
                        .zip(wr.iter().zip(mr))
                        .zip(z.iter())
                    {
                        let used = m != 0.0;
                        *a = if used { *a + gv * zc } else { *a };
                        *gz = if used { *gz + w * gv } else { *gz };
                    }
                }
            } else {
                for rr in 0..rows {
                    let go = &g_o[rr * bn..(rr + 1) * bn];
                    for (ab, &gv) in acc_b[li][rr * bn..(rr + 1) * bn].iter_mut().zip(go) {
                        *ab += gv;
                    }
                    for c in 0..cols {
                        if layer.mask[rr * cols + c] == 0.0 {
                            continue;
                        }
                        let w = layer.w[rr * cols + c];
                        let zc = &z[c * bn..(c + 1) * bn];
                        let aw = &mut acc_w[li][(rr * cols + c) * bn..(rr * cols + c + 1) * bn];
                        for bi in 0..bn {
                            aw[bi] += go[bi] * zc[bi];
                        }
                        for (gz, &gv) in g_z[c * bn..(c + 1) * bn].iter_mut().zip(go) {
                            *gz += w * gv;
                        }
                    }
                }
            }
            new_carry[off * bn..(off + nh) * bn].copy_from_slice(&g_z[ni * bn..]);
            if li == 0 {
                for bi in 0..bn {
                    for i in 0..ni {
                        g_x[(bi * r.l + t) * r.s + i] = g_z[i * bn + bi];
                    }
                }
            } else {
                g_in_from_above = g_z[..ni * bn].to_vec();
            }
        }
        carry = new_carry;
        if let Some(starts) = &r.starts {
            for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                for j in 0..p.n {
                    carry[j * bn + bi] = 0.0;
                }
            }
        }
    }
    Accumulators {
        w: acc_w,
        b: acc_b,
        tau: acc_tau,
        a: acc_a,
        x: g_x,
        carry,
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

#[inline(always)]
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}
