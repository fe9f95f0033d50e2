//! Hand-written CPU kernels for the wired CfC (ncps `WiredCfCCell`): forward, streaming step and
//! backward through time as plain f32 loops, for the same reason as `ltc_cpu` — on an NCP's
//! tiny layers libtorch's per-op dispatch costs far more than the arithmetic.
//!
//! Per layer and step, with `z = [input, h]` and the fused heads `o = (W ⊙ mask)·z + b`:
//! default `h' = f1 + σ(t_a·Δt + t_b)·(f2 − f1)`, no_gate `h' = f1 + σ(…)·f2` with
//! `f1, f2 = tanh(o)`, pure `h' = A − A·exp(−Δt(|w_tau| + |o|))·o`. Everything is laid out
//! `[row][B]` so the inner loops run over the batch and vectorise. Gradients reach libtorch
//! through [`Tape::backward`] exactly as in `ltc_cpu` (checked against autograd in the tests).

// Numerical kernels over parallel arrays read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use std::sync::{Arc, Mutex};

use tch::{Kind, Tensor};

use crate::cfc::{CfcMode, WiredCfcCell};
use crate::ltc_cpu::{fast_exp, sigmoid, to_tensor, values};

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
    /// `(rows, inputs + hidden)`: 1 where the weight is used (mask for ff1/ff2, 1 elsewhere).
    mask: Vec<f32>,
    b: Vec<f32>,
    w_tau: Vec<f32>,
    a: Vec<f32>,
}

/// A wired CfC's parameters in kernel form.
pub struct Params {
    layers: Vec<Layer>,
    mode: CfcMode,
    n: usize,
    out: usize,
}

impl Params {
    fn new(cell: &WiredCfcCell) -> Self {
        let mode = cell
            .layers
            .first()
            .map(|l| l.options.mode)
            .unwrap_or_default();
        let layers = cell
            .layers
            .iter()
            .map(|l| {
                let h = l.hidden;
                let cols = values(&l.ff1.weight).len() / h;
                let inputs = cols - h;
                let mask = match &l.sparsity_mask {
                    Some(m) => values(m),
                    None => vec![1.0; h * cols],
                };
                let bias = |d: &crate::cfc::Dense| match &d.bias {
                    Some(b) => values(b),
                    None => vec![0.0; h],
                };
                let mut w = Vec::new();
                let mut full_mask = Vec::new();
                let mut b = Vec::new();
                let mut push = |d: &crate::cfc::Dense, masked: bool| {
                    let wv = values(&d.weight);
                    for (k, &x) in wv.iter().enumerate() {
                        let m = if masked { mask[k] } else { 1.0 };
                        w.push(x * m);
                        full_mask.push(m);
                    }
                    b.extend(bias(d));
                };
                push(&l.ff1, true);
                if let (Some(ff2), Some(ta), Some(tb)) = (&l.ff2, &l.time_a, &l.time_b) {
                    push(ff2, true);
                    push(ta, false);
                    push(tb, false);
                }
                let rows = b.len();
                Layer {
                    inputs,
                    hidden: h,
                    rows,
                    w,
                    mask: full_mask,
                    b,
                    w_tau: l.w_tau.as_ref().map(values).unwrap_or_default(),
                    a: l.a.as_ref().map(values).unwrap_or_default(),
                }
            })
            .collect();
        Self {
            layers,
            mode,
            n: cell.layer_sizes.iter().sum(),
            out: cell.output_dim.min(*cell.layer_sizes.last().unwrap_or(&0)),
        }
    }
}

/// Parameters cached between streaming steps, rebuilt when any parameter changes.
#[derive(Default)]
pub struct KernelCache {
    slot: Mutex<Option<(ParamsKey, Arc<Params>)>>,
}

/// (version, data pointer) of every parameter tensor: changes whenever a parameter does.
type ParamsKey = Vec<(i64, usize)>;

fn param_tensors(cell: &WiredCfcCell) -> Vec<&Tensor> {
    let mut v = Vec::new();
    for l in &cell.layers {
        for d in [
            Some(&l.ff1),
            l.ff2.as_ref(),
            l.time_a.as_ref(),
            l.time_b.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            v.push(&d.weight);
            if let Some(b) = &d.bias {
                v.push(b);
            }
        }
        v.extend(l.w_tau.iter());
        v.extend(l.a.iter());
    }
    v
}

fn params(cell: &WiredCfcCell) -> Arc<Params> {
    let key: ParamsKey = param_tensors(cell)
        .iter()
        .map(|t| (t.internal_version(), t.data_ptr() as usize))
        .collect();
    let mut slot = match cell.kernel_cache.slot.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some((k, p)) = slot.as_ref() {
        if *k == key {
            return p.clone();
        }
    }
    let p = Arc::new(Params::new(cell));
    *slot = Some((key, p.clone()));
    p
}

struct Run {
    b: usize,
    l: usize,
    s: usize,
    x: Vec<f32>,
    h0: Vec<f32>,
    ts: Vec<f32>,
    starts: Option<Vec<bool>>,
}

fn run_inputs(x: &Tensor, h0: &Tensor, ts: Option<&Tensor>, starts: Option<&Tensor>) -> Run {
    let size = x.size();
    let (b, l, s) = (size[0] as usize, size[1] as usize, size[2] as usize);
    Run {
        b,
        l,
        s,
        x: values(x),
        h0: values(h0),
        ts: match ts {
            Some(t) => values(t),
            None => vec![1.0; b * l],
        },
        starts: starts.map(|t| {
            values(&t.to_kind(Kind::Float))
                .into_iter()
                .map(|v| v != 0.0)
                .collect()
        }),
    }
}

/// Per step and layer: `z` (`[in+H][B]`) and `o` (`[rows][B]`), kept for the backward pass.
struct Trace {
    z: Vec<Vec<f32>>,
    o: Vec<Vec<f32>>,
}

/// Forward over the run; state `h` is `[N][B]` in layer order. Returns outputs `[b][t][M]`
/// and the final state `[b][N]`.
fn forward(p: &Params, r: &Run, mut trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
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
            let hn = &mut h[offset * bn..(offset + nh) * bn];
            for j in 0..nh {
                for bi in 0..bn {
                    let k = j * bn + bi;
                    hn[k] = match p.mode {
                        CfcMode::Pure => {
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
                            if mode == CfcMode::NoGate {
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

/// No-grad forward over `(B, L, S)` from `h0 (B, N)`: `(outputs (B, L, M), final (B, N))`.
pub fn forward_sequence(
    cell: &WiredCfcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let p = params(cell);
    let r = run_inputs(x, h0, ts, None);
    let (y, h) = forward(&p, &r, None);
    (
        to_tensor(&y, &[r.b as i64, r.l as i64, p.out as i64]),
        to_tensor(&h, &[r.b as i64, p.n as i64]),
    )
}

/// One streaming step: `x (B, S)`, `h (B, N)`, `dt` scalar or `(B, 1)`.
pub fn step(cell: &WiredCfcCell, x: &Tensor, h: &Tensor, dt: &Tensor) -> (Tensor, Tensor) {
    let p = params(cell);
    let size = x.size();
    let (b, s) = (size[0] as usize, size[1] as usize);
    let dt = values(dt);
    let r = Run {
        b,
        l: 1,
        s,
        x: values(x),
        h0: values(h),
        ts: if dt.len() == b {
            dt
        } else {
            vec![dt.first().copied().unwrap_or(1.0); b]
        },
        starts: None,
    };
    let (y, hn) = forward(&p, &r, None);
    (
        to_tensor(&y, &[b as i64, p.out as i64]),
        to_tensor(&hn, &[b as i64, p.n as i64]),
    )
}

/// What [`forward_sequence_train`] keeps for the backward pass.
pub struct Tape {
    params: Arc<Params>,
    run: Run,
    trace: Trace,
    y: Tensor,
    h: Tensor,
    x: Tensor,
    h0: Tensor,
    /// Per layer: the parameter tensors in kernel order (ff1.w, ff1.b, ff2.w, …, w_tau, A).
    targets: Vec<Vec<Tensor>>,
}

/// Forward for training (state zeroed before steps marked in `starts`): `(y, h_final, tape)`
/// with `y`/`h_final` leaves that require grad; call [`Tape::backward`] after
/// `loss.backward()`.
pub fn forward_sequence_train(
    cell: &WiredCfcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
    starts: Option<&Tensor>,
) -> (Tensor, Tensor, Tape) {
    let p = params(cell);
    let r = run_inputs(x, h0, ts, starts);
    let mut trace = Trace {
        z: Vec::new(),
        o: Vec::new(),
    };
    let (y, h) = forward(&p, &r, Some(&mut trace));
    let y = to_tensor(&y, &[r.b as i64, r.l as i64, p.out as i64]).set_requires_grad(true);
    let h = to_tensor(&h, &[r.b as i64, p.n as i64]).set_requires_grad(true);
    let targets = cell
        .layers
        .iter()
        .map(|l| {
            let mut v = Vec::new();
            for d in [
                Some(&l.ff1),
                l.ff2.as_ref(),
                l.time_a.as_ref(),
                l.time_b.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                v.push(d.weight.shallow_clone());
                if let Some(b) = &d.bias {
                    v.push(b.shallow_clone());
                }
            }
            v.extend(l.w_tau.iter().map(Tensor::shallow_clone));
            v.extend(l.a.iter().map(Tensor::shallow_clone));
            v
        })
        .collect();
    let tape = Tape {
        params: p,
        run: r,
        trace,
        y: y.shallow_clone(),
        h: h.shallow_clone(),
        x: x.shallow_clone(),
        h0: h0.shallow_clone(),
        targets,
    };
    (y, h, tape)
}

impl Tape {
    /// Backpropagates `y.grad()`/`h_final.grad()` through time into the parameters' `.grad`
    /// (and `x`, `h0` when they require grad).
    pub fn backward(self) {
        let p = &*self.params;
        let r = &self.run;
        let bn = r.b;
        let grad_of = |t: &Tensor, len: usize| {
            let g = t.grad();
            if g.defined() {
                values(&g)
            } else {
                vec![0f32; len]
            }
        };
        let gy = grad_of(&self.y, bn * r.l * p.out);
        let gh = grad_of(&self.h, bn * p.n);
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
        let mut acc_tau: Vec<Vec<f32>> =
            p.layers.iter().map(|l| vec![0f32; l.hidden * bn]).collect();
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
                let z = &self.trace.z[t * n_layers + li];
                let o = &self.trace.o[t * n_layers + li];
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
                for j in 0..nh {
                    for bi in 0..bn {
                        let k = j * bn + bi;
                        let gh = g[k];
                        match p.mode {
                            CfcMode::Pure => {
                                let f = o[k];
                                let (wt, a) = (layer.w_tau[j], layer.a[j]);
                                let e = fast_exp(-ts[bi] * (wt.abs() + f.abs()));
                                // h' = A − A·e·f
                                acc_a[li][k] += gh * (1.0 - e * f);
                                g_o[k] = gh * -a * e * (1.0 - ts[bi] * f.abs());
                                acc_tau[li][k] += gh * a * f * e * ts[bi] * sign(wt);
                            }
                            mode => {
                                let f1 = tanh(o[k]);
                                let f2 = tanh(o[(nh + j) * bn + bi]);
                                let ta = o[(2 * nh + j) * bn + bi];
                                let tb = o[(3 * nh + j) * bn + bi];
                                let s = sigmoid(ta * ts[bi] + tb);
                                let (d1, d2, ds) = if mode == CfcMode::NoGate {
                                    (1.0, s, f2)
                                } else {
                                    (1.0 - s, s, f2 - f1)
                                };
                                g_o[k] = gh * d1 * (1.0 - f1 * f1);
                                g_o[(nh + j) * bn + bi] = gh * d2 * (1.0 - f2 * f2);
                                let gp = gh * ds * s * (1.0 - s);
                                g_o[(2 * nh + j) * bn + bi] = gp * ts[bi];
                                g_o[(3 * nh + j) * bn + bi] = gp;
                            }
                        }
                    }
                }
                // o = W z + b
                let mut g_z = vec![0f32; cols * bn];
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
        let reduce =
            |acc: &[f32]| -> Vec<f32> { acc.chunks(bn.max(1)).map(|c| c.iter().sum()).collect() };
        let mut pairs: Vec<(Tensor, Vec<f32>)> = Vec::new();
        for (li, layer) in p.layers.iter().enumerate() {
            let cols = layer.inputs + layer.hidden;
            let h = layer.hidden;
            let w = reduce(&acc_w[li]);
            let b = reduce(&acc_b[li]);
            let targets = &self.targets[li];
            let heads = layer.rows / h;
            let mut k = 0;
            for head in 0..heads {
                let rows = head * h..(head + 1) * h;
                pairs.push((
                    targets[k].shallow_clone(),
                    w[rows.start * cols..rows.end * cols].to_vec(),
                ));
                pairs.push((targets[k + 1].shallow_clone(), b[rows].to_vec()));
                k += 2;
            }
            if p.mode == CfcMode::Pure {
                pairs.push((targets[k].shallow_clone(), reduce(&acc_tau[li])));
                pairs.push((targets[k + 1].shallow_clone(), reduce(&acc_a[li])));
            }
        }
        let mut g_h0 = vec![0f32; bn * p.n];
        for bi in 0..bn {
            for j in 0..p.n {
                g_h0[bi * p.n + j] = carry[j * bn + bi];
            }
        }
        pairs.push((self.x.shallow_clone(), g_x));
        pairs.push((self.h0.shallow_clone(), g_h0));
        accumulate(&pairs);
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Puts hand-computed gradients into `.grad` with one surrogate backward.
fn accumulate(pairs: &[(Tensor, Vec<f32>)]) {
    let mut surrogate: Option<Tensor> = None;
    for (t, g) in pairs {
        if !t.requires_grad() {
            continue;
        }
        let gt = Tensor::from_slice(g)
            .view(t.size().as_slice())
            .to_device(t.device());
        let term = (t * gt).sum(Kind::Float);
        surrogate = Some(match surrogate.take() {
            Some(s) => s + term,
            None => term,
        });
    }
    if let Some(s) = surrogate {
        s.backward();
    }
}
