//! Hand-written CPU kernels for the LTC cell: the same fused semi-implicit solver as
//! [`crate::ltc::LtcCell::step`], but as plain f32 loops over the wiring's synapse list (only
//! the unmasked synapses), plus a hand-written backward pass through time.
//!
//! Why: on tiny tensors libtorch spends a few µs per op dispatch, and an LTC step is ~15 ops
//! per unfold × 6 unfolds (and twice that in backward), so the tch path is dominated by
//! overhead. These loops do the arithmetic only. Gradients are handed back to libtorch by
//! [`Tape::backward`], which makes the parameters' `.grad` exactly what autograd through the
//! generic path would produce (checked in the tests), so any tch optimizer can step them.

// Numerical kernels over parallel arrays read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use crate::ltc::LtcCell;

/// `e^x` in f32 (Cephes polynomial, ~1 ulp), written so the compiler vectorises loops over it
/// (libm's `expf` is a call per element).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no libm `round`).
    let k = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((((k as i32) + 127) as u32) << 23)
}

#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-z))
}

/// torch's softplus (beta 1, threshold 20).
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Derivative of torch's softplus.
fn softplus_grad(x: f32) -> f32 {
    if x > 20.0 {
        1.0
    } else {
        sigmoid(x)
    }
}

/// A tensor's values as f32; a contiguous CPU f32 tensor is read directly (no libtorch op).
pub(crate) fn values(t: &Tensor) -> Vec<f32> {
    if t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() {
        let n = t.numel();
        if n == 0 {
            return Vec::new();
        }
        // SAFETY: a defined, contiguous CPU float tensor holds `n` f32 values at data_ptr,
        // and we only read them while `t` is borrowed.
        return unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) }.to_vec();
    }
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.copy_data(&mut v, n);
    v
}

/// Cached kernel form of an LTC cell's parameters, rebuilt when any parameter tensor changes
/// (libtorch bumps a tensor's version on every in-place update, e.g. an optimizer step).
#[derive(Default)]
pub struct KernelCache {
    slot: Mutex<Option<(ParamsKey, Arc<Params>)>>,
}

/// (version, data pointer) of every parameter tensor: changes whenever a parameter does.
type ParamsKey = Vec<(i64, usize)>;

fn param_tensors(cell: &LtcCell) -> Vec<&Tensor> {
    let mut v = vec![
        &cell.gleak,
        &cell.vleak,
        &cell.cm,
        &cell.sigma,
        &cell.mu,
        &cell.w,
        &cell.erev,
        &cell.sensory_sigma,
        &cell.sensory_mu,
        &cell.sensory_w,
        &cell.sensory_erev,
    ];
    for t in [&cell.input_w, &cell.input_b, &cell.output_w, &cell.output_b]
        .into_iter()
        .flatten()
    {
        v.push(t);
    }
    v
}

fn params(cell: &LtcCell) -> Arc<Params> {
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

pub(crate) fn to_tensor(v: &[f32], shape: &[i64]) -> Tensor {
    // SAFETY: reinterpreting initialised f32s as bytes.
    let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) };
    Tensor::from_data_size(bytes, shape, Kind::Float)
}

/// Parameters gathered per synapse, positivity applied.
struct Synapses {
    src: Vec<usize>,
    dst: Vec<usize>,
    /// Flat index into the `(rows, N)` parameter matrices (for scattering gradients).
    flat: Vec<usize>,
    raw_w: Vec<f32>,
    w: Vec<f32>,
    sigma: Vec<f32>,
    mu: Vec<f32>,
    erev: Vec<f32>,
}

impl Synapses {
    fn gather(
        edges: &[(usize, usize, i8)],
        n: usize,
        w: &[f32],
        sigma: &[f32],
        mu: &[f32],
        erev: &[f32],
        implicit: bool,
    ) -> Self {
        let flat: Vec<usize> = edges.iter().map(|&(s, d, _)| s * n + d).collect();
        let pick = |v: &[f32]| flat.iter().map(|&k| v[k]).collect::<Vec<f32>>();
        let raw_w = pick(w);
        Self {
            src: edges.iter().map(|e| e.0).collect(),
            dst: edges.iter().map(|e| e.1).collect(),
            w: raw_w
                .iter()
                .map(|&x| if implicit { softplus(x) } else { x })
                .collect(),
            raw_w,
            sigma: pick(sigma),
            mu: pick(mu),
            erev: pick(erev),
            flat,
        }
    }
}

/// A snapshot of an LTC cell's parameters in kernel form.
pub struct Params {
    n: usize,
    s: usize,
    m: usize,
    unfolds: usize,
    eps: f32,
    implicit: bool,
    syn: Synapses,
    sens: Synapses,
    raw_gleak: Vec<f32>,
    gleak: Vec<f32>,
    vleak: Vec<f32>,
    raw_cm: Vec<f32>,
    cm: Vec<f32>,
    input_w: Vec<f32>,
    input_b: Vec<f32>,
    output_w: Vec<f32>,
    output_b: Vec<f32>,
}

impl Params {
    fn new(cell: &LtcCell) -> Self {
        let wiring = cell.wiring();
        let n = wiring.units();
        let s = wiring.input_dim().unwrap_or(0);
        let m = wiring.output_dim();
        let implicit = cell.options.implicit_constraints;
        let pos = |v: Vec<f32>| -> Vec<f32> {
            if implicit {
                v.into_iter().map(softplus).collect()
            } else {
                v
            }
        };
        let syn = Synapses::gather(
            &wiring.synapses(),
            n,
            &values(&cell.w),
            &values(&cell.sigma),
            &values(&cell.mu),
            &values(&cell.erev),
            implicit,
        );
        let sens = Synapses::gather(
            &wiring.sensory_synapses(),
            n,
            &values(&cell.sensory_w),
            &values(&cell.sensory_sigma),
            &values(&cell.sensory_mu),
            &values(&cell.sensory_erev),
            implicit,
        );
        let opt = |t: &Option<Tensor>, len: usize, fill: f32| match t {
            Some(t) => values(t),
            None => vec![fill; len],
        };
        let raw_gleak = values(&cell.gleak);
        let raw_cm = values(&cell.cm);
        Self {
            n,
            s,
            m,
            unfolds: cell.options.ode_unfolds,
            eps: cell.options.epsilon as f32,
            implicit,
            syn,
            sens,
            gleak: pos(raw_gleak.clone()),
            raw_gleak,
            vleak: values(&cell.vleak),
            cm: pos(raw_cm.clone()),
            raw_cm,
            input_w: opt(&cell.input_w, s, 1.0),
            input_b: opt(&cell.input_b, s, 0.0),
            output_w: opt(&cell.output_w, m, 1.0),
            output_b: opt(&cell.output_b, m, 0.0),
        }
    }
}

/// Inputs of a kernel run, as flat vectors.
struct Run {
    b: usize,
    l: usize,
    x: Vec<f32>,
    h0: Vec<f32>,
    ts: Vec<f32>,
    /// `(B, L)` episode starts: the state is zeroed before that step.
    starts: Option<Vec<bool>>,
}

fn run_inputs(x: &Tensor, h0: &Tensor, ts: Option<&Tensor>, starts: Option<&Tensor>) -> Run {
    let size = x.size();
    let (b, l) = (size[0] as usize, size[1] as usize);
    let ts = match ts {
        Some(t) => values(t),
        None => vec![1.0; b * l],
    };
    Run {
        b,
        l,
        x: values(x),
        h0: values(h0),
        ts,
        starts: starts.map(|t| {
            let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            values(&t).into_iter().map(|v| v != 0.0).collect()
        }),
    }
}

/// Runs the forward pass for the whole batch at once: states are kept neuron-major `[n][B]`
/// so that the per-synapse work is a contiguous loop over samples (vectorised by the
/// compiler). `trace` (if given) receives every sub-step state, laid out `[t][u in 0..=U][n][B]`.
fn forward(p: &Params, r: &Run, y: &mut [f32], h: &mut [f32], mut trace: Option<&mut Vec<f32>>) {
    let (n, s, m, u_n, bn) = (p.n, p.s, p.m, p.unfolds, r.b);
    let mut xm = vec![0f32; s * bn];
    let mut snum = vec![0f32; n * bn];
    let mut sden = vec![0f32; n * bn];
    let mut cm_t = vec![0f32; n * bn];
    let mut v = vec![0f32; n * bn];
    let mut next = vec![0f32; n * bn];
    let mut num = vec![0f32; n * bn];
    let mut den = vec![0f32; n * bn];
    let mut inv_dt = vec![0f32; bn];
    for bi in 0..bn {
        for j in 0..n {
            v[j * bn + bi] = r.h0[bi * n + j];
        }
    }
    let leak: Vec<f32> = (0..n).map(|j| p.gleak[j] * p.vleak[j]).collect();
    for t in 0..r.l {
        if let Some(starts) = &r.starts {
            for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                for j in 0..n {
                    v[j * bn + bi] = 0.0;
                }
            }
        }
        for bi in 0..bn {
            let xo = (bi * r.l + t) * s;
            for i in 0..s {
                xm[i * bn + bi] = r.x[xo + i] * p.input_w[i] + p.input_b[i];
            }
            inv_dt[bi] = u_n as f32 / r.ts[bi * r.l + t];
        }
        for j in 0..n {
            for (c, &idt) in cm_t[j * bn..(j + 1) * bn].iter_mut().zip(&inv_dt) {
                *c = p.cm[j] * idt;
            }
        }
        synapse_sums(&p.sens, &xm, bn, &mut snum, &mut sden, true);
        if let Some(tr) = trace.as_deref_mut() {
            tr.extend_from_slice(&v);
        }
        for _ in 0..u_n {
            num.copy_from_slice(&snum);
            den.copy_from_slice(&sden);
            synapse_sums(&p.syn, &v, bn, &mut num, &mut den, false);
            for j in 0..n {
                let r_ = j * bn..(j + 1) * bn;
                let (gl, lk) = (p.gleak[j] + p.eps, leak[j]);
                for ((((o, &vj), &c), &nm), &dn) in next[r_.clone()]
                    .iter_mut()
                    .zip(&v[r_.clone()])
                    .zip(&cm_t[r_.clone()])
                    .zip(&num[r_.clone()])
                    .zip(&den[r_])
                {
                    *o = (c * vj + lk + nm) / (c + gl + dn);
                }
            }
            std::mem::swap(&mut v, &mut next);
            if let Some(tr) = trace.as_deref_mut() {
                tr.extend_from_slice(&v);
            }
        }
        for bi in 0..bn {
            let yo = (bi * r.l + t) * m;
            for j in 0..m {
                y[yo + j] = v[j * bn + bi] * p.output_w[j] + p.output_b[j];
            }
        }
    }
    for bi in 0..bn {
        for j in 0..n {
            h[bi * n + j] = v[j * bn + bi];
        }
    }
}

/// Adds every synapse's activation (and activation × erev) into the destination rows, for
/// all samples: `den[dst] += w·σ(sigma·(pre[src] − mu))`, `num[dst] += … · erev`.
/// `zero` clears the sums first.
fn synapse_sums(
    q: &Synapses,
    pre: &[f32],
    bn: usize,
    num: &mut [f32],
    den: &mut [f32],
    zero: bool,
) {
    if zero {
        num.fill(0.0);
        den.fill(0.0);
    }
    for k in 0..q.src.len() {
        let (i, j) = (q.src[k], q.dst[k]);
        let (w, sg, mu, e) = (q.w[k], q.sigma[k], q.mu[k], q.erev[k]);
        let pre_i = &pre[i * bn..(i + 1) * bn];
        let (num_j, den_j) = (
            &mut num[j * bn..(j + 1) * bn],
            &mut den[j * bn..(j + 1) * bn],
        );
        for ((nm, dn), &x) in num_j.iter_mut().zip(den_j.iter_mut()).zip(pre_i) {
            let a = w * sigmoid(sg * (x - mu));
            *nm += a * e;
            *dn += a;
        }
    }
}

/// No-grad forward over `(B, L, S)` from `h0 (B, N)` with timespans `(B, L)` (1.0 if None):
/// `(outputs (B, L, M), final state (B, N))` on the CPU.
pub fn forward_sequence(
    cell: &LtcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let p = params(cell);
    let r = run_inputs(x, h0, ts, None);
    let mut y = vec![0f32; r.b * r.l * p.m];
    let mut h = vec![0f32; r.b * p.n];
    forward(&p, &r, &mut y, &mut h, None);
    (
        to_tensor(&y, &[r.b as i64, r.l as i64, p.m as i64]),
        to_tensor(&h, &[r.b as i64, p.n as i64]),
    )
}

/// One streaming step: `x (B, S)`, `h (B, N)`, `dt` a scalar tensor or `(B, 1)` →
/// `(outputs (B, M), new state (B, N))`, with as few libtorch calls as possible.
pub fn step(cell: &LtcCell, x: &Tensor, h: &Tensor, dt: &Tensor) -> (Tensor, Tensor) {
    let p = params(cell);
    let b = h.size()[0] as usize;
    let dt = values(dt);
    let ts = if dt.len() == b {
        dt
    } else {
        vec![dt.first().copied().unwrap_or(1.0); b]
    };
    let r = Run {
        b,
        l: 1,
        x: values(x),
        h0: values(h),
        ts,
        starts: None,
    };
    let mut y = vec![0f32; b * p.m];
    let mut hn = vec![0f32; b * p.n];
    forward(&p, &r, &mut y, &mut hn, None);
    (
        to_tensor(&y, &[b as i64, p.m as i64]),
        to_tensor(&hn, &[b as i64, p.n as i64]),
    )
}

/// What [`forward_sequence_train`] keeps for the backward pass.
pub struct Tape {
    params: Arc<Params>,
    run: Run,
    trace: Vec<f32>,
    y: Tensor,
    h: Tensor,
    x: Tensor,
    h0: Tensor,
    targets: Vec<(Tensor, usize)>,
}

/// Forward for training (state zeroed before the steps marked in `starts (B, L)`, if given):
/// returns `(y, h_final, tape)`; `y`/`h_final` are leaves that require
/// grad. After `loss.backward()`, call [`Tape::backward`] to put the cell's parameter
/// gradients (and those of `x`/`h0` when they require grad) where autograd would have.
pub fn forward_sequence_train(
    cell: &LtcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
    starts: Option<&Tensor>,
) -> (Tensor, Tensor, Tape) {
    let p = params(cell);
    let r = run_inputs(x, h0, ts, starts);
    let mut y = vec![0f32; r.b * r.l * p.m];
    let mut h = vec![0f32; r.b * p.n];
    let mut trace = Vec::with_capacity(r.b * r.l * (p.unfolds + 1) * p.n);
    forward(&p, &r, &mut y, &mut h, Some(&mut trace));
    let y = to_tensor(&y, &[r.b as i64, r.l as i64, p.m as i64]).set_requires_grad(true);
    let h = to_tensor(&h, &[r.b as i64, p.n as i64]).set_requires_grad(true);
    let mut targets = vec![
        (cell.gleak.shallow_clone(), 0),
        (cell.vleak.shallow_clone(), 1),
        (cell.cm.shallow_clone(), 2),
        (cell.sigma.shallow_clone(), 3),
        (cell.mu.shallow_clone(), 4),
        (cell.w.shallow_clone(), 5),
        (cell.erev.shallow_clone(), 6),
        (cell.sensory_sigma.shallow_clone(), 7),
        (cell.sensory_mu.shallow_clone(), 8),
        (cell.sensory_w.shallow_clone(), 9),
        (cell.sensory_erev.shallow_clone(), 10),
    ];
    for (t, k) in [
        (&cell.input_w, 11),
        (&cell.input_b, 12),
        (&cell.output_w, 13),
        (&cell.output_b, 14),
    ] {
        if let Some(t) = t {
            targets.push((t.shallow_clone(), k));
        }
    }
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

/// Gradient buffers, one per parameter (dense shapes, as the tch variables).
struct Grads {
    gleak: Vec<f32>,
    vleak: Vec<f32>,
    cm: Vec<f32>,
    sigma: Vec<f32>,
    mu: Vec<f32>,
    w: Vec<f32>,
    erev: Vec<f32>,
    s_sigma: Vec<f32>,
    s_mu: Vec<f32>,
    s_w: Vec<f32>,
    s_erev: Vec<f32>,
    input_w: Vec<f32>,
    input_b: Vec<f32>,
    output_w: Vec<f32>,
    output_b: Vec<f32>,
    x: Vec<f32>,
    h0: Vec<f32>,
}

impl Tape {
    /// Backpropagates `y.grad()`/`h_final.grad()` (zero where undefined) through time and
    /// accumulates the gradients into the parameters' `.grad` (and `x`, `h0` if they require
    /// grad), exactly as autograd through the generic path would.
    pub fn backward(self) {
        let p = &self.params;
        let r = &self.run;
        let (n, s, m, u_n, bn) = (p.n, p.s, p.m, p.unfolds, r.b);
        let (ks, kn) = (p.sens.src.len(), p.syn.src.len());
        let grad_of = |t: &Tensor, len: usize| {
            let g = t.grad();
            if g.defined() {
                values(&g)
            } else {
                vec![0f32; len]
            }
        };
        let gy = grad_of(&self.y, bn * r.l * m);
        let gh = grad_of(&self.h, bn * n);
        let zero = |len| vec![0f32; len];
        // Everything below is laid out `[row][B]` like the forward pass, and gradients of
        // shared parameters are accumulated per sample (`[param][B]`) and summed at the end,
        // so every inner loop is an elementwise loop over the batch.
        let mut gv = zero(n * bn);
        let mut gv_prev = zero(n * bn);
        for bi in 0..bn {
            for j in 0..n {
                gv[j * bn + bi] = gh[bi * n + j];
            }
        }
        let mut acc_gleak = zero(n * bn);
        let mut acc_vleak = zero(n * bn);
        let mut acc_cm = zero(n * bn);
        let mut acc_w = zero(kn * bn);
        let mut acc_sigma = zero(kn * bn);
        let mut acc_mu = zero(kn * bn);
        let mut acc_erev = zero(kn * bn);
        let mut acc_sw = zero(ks * bn);
        let mut acc_ssigma = zero(ks * bn);
        let mut acc_smu = zero(ks * bn);
        let mut acc_serev = zero(ks * bn);
        let mut acc_iw = zero(s * bn);
        let mut acc_ib = zero(s * bn);
        let mut acc_ow = zero(m * bn);
        let mut acc_ob = zero(m * bn);
        let mut g_x = zero(bn * r.l * s);

        let mut xm = zero(s * bn);
        let mut gxm = zero(s * bn);
        let mut snum = zero(n * bn);
        let mut sden = zero(n * bn);
        let mut cm_t = zero(n * bn);
        let mut inv_dt = zero(bn);
        let mut num = zero(n * bn);
        let mut den = zero(n * bn);
        let mut g_num = zero(n * bn);
        let mut g_den = zero(n * bn);
        let mut g_snum = zero(n * bn);
        let mut g_sden = zero(n * bn);
        let mut sig = zero(kn * bn);
        let step = n * bn;
        for t in (0..r.l).rev() {
            let base = t * (u_n + 1) * step;
            // Output mapping of the step's final state.
            let v_end = &self.trace[base + u_n * step..base + (u_n + 1) * step];
            for bi in 0..bn {
                let yo = (bi * r.l + t) * m;
                for j in 0..m {
                    let gyj = gy[yo + j];
                    gv[j * bn + bi] += gyj * p.output_w[j];
                    acc_ow[j * bn + bi] += gyj * v_end[j * bn + bi];
                    acc_ob[j * bn + bi] += gyj;
                }
            }
            for bi in 0..bn {
                let xo = (bi * r.l + t) * s;
                for i in 0..s {
                    xm[i * bn + bi] = r.x[xo + i] * p.input_w[i] + p.input_b[i];
                }
                inv_dt[bi] = u_n as f32 / r.ts[bi * r.l + t];
            }
            for j in 0..n {
                for (c, &idt) in cm_t[j * bn..(j + 1) * bn].iter_mut().zip(&inv_dt) {
                    *c = p.cm[j] * idt;
                }
            }
            synapse_sums(&p.sens, &xm, bn, &mut snum, &mut sden, true);
            g_snum.fill(0.0);
            g_sden.fill(0.0);
            for u in (0..u_n).rev() {
                let v = &self.trace[base + u * step..base + (u + 1) * step];
                let v_new = &self.trace[base + (u + 1) * step..base + (u + 2) * step];
                num.copy_from_slice(&snum);
                den.copy_from_slice(&sden);
                let q = &p.syn;
                for k in 0..kn {
                    let (i, j) = (q.src[k], q.dst[k]);
                    let (w, sg, mu, e) = (q.w[k], q.sigma[k], q.mu[k], q.erev[k]);
                    let v_i = &v[i * bn..(i + 1) * bn];
                    let sig_k = &mut sig[k * bn..(k + 1) * bn];
                    let (num_j, den_j) = (
                        &mut num[j * bn..(j + 1) * bn],
                        &mut den[j * bn..(j + 1) * bn],
                    );
                    for b in 0..bn {
                        let sgm = sigmoid(sg * (v_i[b] - mu));
                        sig_k[b] = sgm;
                        let a = w * sgm;
                        num_j[b] += a * e;
                        den_j[b] += a;
                    }
                }
                for j in 0..n {
                    let gl = p.gleak[j];
                    let (vl, c_eps) = (p.vleak[j], gl + p.eps);
                    for b in j * bn..(j + 1) * bn {
                        let d = cm_t[b] + c_eps + den[b];
                        let gn = gv[b] / d;
                        let gd = -gv[b] * v_new[b] / d;
                        acc_cm[b] += (gn * v[b] + gd) * inv_dt[b - j * bn];
                        gv_prev[b] = gn * cm_t[b];
                        acc_gleak[b] += gn * vl + gd;
                        acc_vleak[b] += gn * gl;
                        g_snum[b] += gn;
                        g_sden[b] += gd;
                        g_num[b] = gn;
                        g_den[b] = gd;
                    }
                }
                for k in 0..kn {
                    let (i, j) = (q.src[k], q.dst[k]);
                    let (w, sg, mu, e) = (q.w[k], q.sigma[k], q.mu[k], q.erev[k]);
                    let (ri, rj, rk) = (i * bn, j * bn, k * bn);
                    for b in 0..bn {
                        let sgm = sig[rk + b];
                        let gn = g_num[rj + b];
                        let g_act = gn * e + g_den[rj + b];
                        acc_erev[rk + b] += gn * w * sgm;
                        acc_w[rk + b] += g_act * sgm;
                        let gz = g_act * w * sgm * (1.0 - sgm);
                        acc_sigma[rk + b] += gz * (v[ri + b] - mu);
                        acc_mu[rk + b] -= gz * sg;
                        gv_prev[ri + b] += gz * sg;
                    }
                }
                std::mem::swap(&mut gv, &mut gv_prev);
            }
            // Sensory synapses (held over the step's unfolds).
            gxm.fill(0.0);
            let q = &p.sens;
            for k in 0..ks {
                let (i, j) = (q.src[k], q.dst[k]);
                let (w, sg, mu, e) = (q.w[k], q.sigma[k], q.mu[k], q.erev[k]);
                let (ri, rj, rk) = (i * bn, j * bn, k * bn);
                for b in 0..bn {
                    let sgm = sigmoid(sg * (xm[ri + b] - mu));
                    let gn = g_snum[rj + b];
                    let g_act = gn * e + g_sden[rj + b];
                    acc_serev[rk + b] += gn * w * sgm;
                    acc_sw[rk + b] += g_act * sgm;
                    let gz = g_act * w * sgm * (1.0 - sgm);
                    acc_ssigma[rk + b] += gz * (xm[ri + b] - mu);
                    acc_smu[rk + b] -= gz * sg;
                    gxm[ri + b] += gz * sg;
                }
            }
            for bi in 0..bn {
                let xo = (bi * r.l + t) * s;
                for i in 0..s {
                    let g = gxm[i * bn + bi];
                    acc_iw[i * bn + bi] += g * r.x[xo + i];
                    acc_ib[i * bn + bi] += g;
                    g_x[xo + i] = g * p.input_w[i];
                }
            }
            // The state entering this step was reset: nothing flows to earlier steps.
            if let Some(starts) = &r.starts {
                for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                    for j in 0..n {
                        gv[j * bn + bi] = 0.0;
                    }
                }
            }
        }
        let reduce =
            |acc: &[f32]| -> Vec<f32> { acc.chunks(bn.max(1)).map(|c| c.iter().sum()).collect() };
        let scatter = |acc: &[f32], q: &Synapses, rows: usize| -> Vec<f32> {
            let mut out = vec![0f32; rows * n];
            for (k, v) in reduce(acc).into_iter().enumerate() {
                out[q.flat[k]] = v;
            }
            out
        };
        // Positivity: chain through softplus in implicit mode.
        let chain = |raw: f32, gpos: f32| {
            if p.implicit {
                gpos * softplus_grad(raw)
            } else {
                gpos
            }
        };
        let mut g_h0 = zero(bn * n);
        for bi in 0..bn {
            for j in 0..n {
                g_h0[bi * n + j] = gv[j * bn + bi];
            }
        }
        let mut g = Grads {
            gleak: reduce(&acc_gleak),
            vleak: reduce(&acc_vleak),
            cm: reduce(&acc_cm),
            sigma: scatter(&acc_sigma, &p.syn, n),
            mu: scatter(&acc_mu, &p.syn, n),
            w: scatter(&acc_w, &p.syn, n),
            erev: scatter(&acc_erev, &p.syn, n),
            s_sigma: scatter(&acc_ssigma, &p.sens, s),
            s_mu: scatter(&acc_smu, &p.sens, s),
            s_w: scatter(&acc_sw, &p.sens, s),
            s_erev: scatter(&acc_serev, &p.sens, s),
            input_w: reduce(&acc_iw),
            input_b: reduce(&acc_ib),
            output_w: reduce(&acc_ow),
            output_b: reduce(&acc_ob),
            x: g_x,
            h0: g_h0,
        };
        for j in 0..n {
            g.gleak[j] = chain(p.raw_gleak[j], g.gleak[j]);
            g.cm[j] = chain(p.raw_cm[j], g.cm[j]);
        }
        for k in 0..kn {
            let f = p.syn.flat[k];
            g.w[f] = chain(p.syn.raw_w[k], g.w[f]);
        }
        for k in 0..ks {
            let f = p.sens.flat[k];
            g.s_w[f] = chain(p.sens.raw_w[k], g.s_w[f]);
        }
        self.hand_to_autograd(g);
    }

    /// Accumulates the computed gradients into `.grad` through one surrogate backward:
    /// `Σ (θ · g_θ).sum()` has exactly `g_θ` as its gradient.
    fn hand_to_autograd(&self, g: Grads) {
        let grads = [
            &g.gleak,
            &g.vleak,
            &g.cm,
            &g.sigma,
            &g.mu,
            &g.w,
            &g.erev,
            &g.s_sigma,
            &g.s_mu,
            &g.s_w,
            &g.s_erev,
            &g.input_w,
            &g.input_b,
            &g.output_w,
            &g.output_b,
        ];
        let mut surrogate: Option<Tensor> = None;
        let mut add = |t: &Tensor, gv: &[f32]| {
            if !t.requires_grad() {
                return;
            }
            let gt = Tensor::from_slice(gv)
                .view(t.size().as_slice())
                .to_device(t.device());
            let term = (t * gt).sum(Kind::Float);
            surrogate = Some(match surrogate.take() {
                Some(s) => s + term,
                None => term,
            });
        };
        for (t, k) in &self.targets {
            add(t, grads[*k]);
        }
        add(&self.x, &g.x);
        add(&self.h0, &g.h0);
        if let Some(s) = surrogate {
            s.backward();
        }
    }
}
