//! Hand-written CPU kernels for the LTC cell: the same fused semi-implicit solver as
//! [`crate::ltc::LtcCell::step`], but as plain f32 loops over the wiring's synapse list (only
//! the unmasked synapses), plus a hand-written backward pass through time.
//!
//! Why: on tiny tensors libtorch spends a few µs per op dispatch, and an LTC step is ~15 ops
//! per unfold × 6 unfolds (and twice that in backward), so the tch path is dominated by
//! overhead. These loops do the arithmetic only. Gradients are handed back to libtorch by
//! [`Tape::backward`], which makes the parameters' `.grad` exactly what autograd through the
//! generic path would produce (checked in the tests), so any tch optimizer can step them.

use tch::{Device, Kind, Tensor};

use crate::ltc::LtcCell;

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
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

fn values(t: &Tensor) -> Vec<f32> {
    let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.copy_data(&mut v, n);
    v
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
struct Params {
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

    /// Sensory numerator/denominator for one mapped input.
    fn sensory(&self, x: &[f32], snum: &mut [f32], sden: &mut [f32]) {
        snum.fill(0.0);
        sden.fill(0.0);
        let p = &self.sens;
        for k in 0..p.src.len() {
            let a = p.w[k] * sigmoid(p.sigma[k] * (x[p.src[k]] - p.mu[k]));
            snum[p.dst[k]] += a * p.erev[k];
            sden[p.dst[k]] += a;
        }
    }

    /// One unfold: `v → out`.
    fn unfold(&self, v: &[f32], cm_t: &[f32], snum: &[f32], sden: &[f32], out: &mut [f32]) {
        let n = self.n;
        let mut num = [0f32; 64];
        let mut den = [0f32; 64];
        let (num, den): (&mut [f32], &mut [f32]) = if n <= 64 {
            (&mut num[..n], &mut den[..n])
        } else {
            // Large wirings: heap buffers (rare; policy wirings are small).
            return self.unfold_large(v, cm_t, snum, sden, out);
        };
        num.copy_from_slice(snum);
        den.copy_from_slice(sden);
        let p = &self.syn;
        for k in 0..p.src.len() {
            let a = p.w[k] * sigmoid(p.sigma[k] * (v[p.src[k]] - p.mu[k]));
            num[p.dst[k]] += a * p.erev[k];
            den[p.dst[k]] += a;
        }
        for j in 0..n {
            out[j] = (cm_t[j] * v[j] + self.gleak[j] * self.vleak[j] + num[j])
                / (cm_t[j] + self.gleak[j] + den[j] + self.eps);
        }
    }

    fn unfold_large(&self, v: &[f32], cm_t: &[f32], snum: &[f32], sden: &[f32], out: &mut [f32]) {
        let mut num = snum.to_vec();
        let mut den = sden.to_vec();
        let p = &self.syn;
        for k in 0..p.src.len() {
            let a = p.w[k] * sigmoid(p.sigma[k] * (v[p.src[k]] - p.mu[k]));
            num[p.dst[k]] += a * p.erev[k];
            den[p.dst[k]] += a;
        }
        for j in 0..self.n {
            out[j] = (cm_t[j] * v[j] + self.gleak[j] * self.vleak[j] + num[j])
                / (cm_t[j] + self.gleak[j] + den[j] + self.eps);
        }
    }

    fn map_input(&self, x: &[f32], out: &mut [f32]) {
        for i in 0..self.s {
            out[i] = x[i] * self.input_w[i] + self.input_b[i];
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
}

fn run_inputs(x: &Tensor, h0: &Tensor, ts: Option<&Tensor>) -> Run {
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
    }
}

/// Runs the forward pass; `trace` (if given) receives every sub-step state, laid out
/// `[b][t][u in 0..=U][n]`.
fn forward(p: &Params, r: &Run, y: &mut [f32], h: &mut [f32], mut trace: Option<&mut Vec<f32>>) {
    let (n, s, m, u_n) = (p.n, p.s, p.m, p.unfolds);
    let mut xm = vec![0f32; s];
    let mut snum = vec![0f32; n];
    let mut sden = vec![0f32; n];
    let mut cm_t = vec![0f32; n];
    let mut v = vec![0f32; n];
    let mut next = vec![0f32; n];
    for bi in 0..r.b {
        v.copy_from_slice(&r.h0[bi * n..(bi + 1) * n]);
        for t in 0..r.l {
            let xo = (bi * r.l + t) * s;
            p.map_input(&r.x[xo..xo + s], &mut xm);
            p.sensory(&xm, &mut snum, &mut sden);
            let dt = r.ts[bi * r.l + t];
            for j in 0..n {
                cm_t[j] = p.cm[j] / (dt / u_n as f32);
            }
            if let Some(tr) = trace.as_deref_mut() {
                tr.extend_from_slice(&v);
            }
            for _ in 0..u_n {
                p.unfold(&v, &cm_t, &snum, &sden, &mut next);
                std::mem::swap(&mut v, &mut next);
                if let Some(tr) = trace.as_deref_mut() {
                    tr.extend_from_slice(&v);
                }
            }
            let yo = (bi * r.l + t) * m;
            for j in 0..m {
                y[yo + j] = v[j] * p.output_w[j] + p.output_b[j];
            }
        }
        h[bi * n..(bi + 1) * n].copy_from_slice(&v);
    }
}

fn to_tensor(v: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).view(shape)
}

/// No-grad forward over `(B, L, S)` from `h0 (B, N)` with timespans `(B, L)` (1.0 if None):
/// `(outputs (B, L, M), final state (B, N))` on the CPU.
pub fn forward_sequence(
    cell: &LtcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let p = Params::new(cell);
    let r = run_inputs(x, h0, ts);
    let mut y = vec![0f32; r.b * r.l * p.m];
    let mut h = vec![0f32; r.b * p.n];
    forward(&p, &r, &mut y, &mut h, None);
    (
        to_tensor(&y, &[r.b as i64, r.l as i64, p.m as i64]),
        to_tensor(&h, &[r.b as i64, p.n as i64]),
    )
}

/// What [`forward_sequence_train`] keeps for the backward pass.
pub struct Tape {
    params: Params,
    run: Run,
    trace: Vec<f32>,
    y: Tensor,
    h: Tensor,
    x: Tensor,
    h0: Tensor,
    targets: Vec<(Tensor, usize)>,
}

/// Forward for training: returns `(y, h_final, tape)`; `y`/`h_final` are leaves that require
/// grad. After `loss.backward()`, call [`Tape::backward`] to put the cell's parameter
/// gradients (and those of `x`/`h0` when they require grad) where autograd would have.
pub fn forward_sequence_train(
    cell: &LtcCell,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
) -> (Tensor, Tensor, Tape) {
    let p = Params::new(cell);
    let r = run_inputs(x, h0, ts);
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
        let (n, s, m, u_n) = (p.n, p.s, p.m, p.unfolds);
        let grad_of = |t: &Tensor, len: usize| {
            let g = t.grad();
            if g.defined() {
                values(&g)
            } else {
                vec![0f32; len]
            }
        };
        let gy = grad_of(&self.y, r.b * r.l * m);
        let gh = grad_of(&self.h, r.b * n);
        let zero = |len| vec![0f32; len];
        let mut g = Grads {
            gleak: zero(n),
            vleak: zero(n),
            cm: zero(n),
            sigma: zero(n * n),
            mu: zero(n * n),
            w: zero(n * n),
            erev: zero(n * n),
            s_sigma: zero(s * n),
            s_mu: zero(s * n),
            s_w: zero(s * n),
            s_erev: zero(s * n),
            input_w: zero(s),
            input_b: zero(s),
            output_w: zero(m),
            output_b: zero(m),
            x: zero(r.b * r.l * s),
            h0: zero(r.b * n),
        };
        // Gradients w.r.t. the positive (post-softplus) w, sensory_w, gleak, cm, per synapse.
        let mut g_wpos = vec![0f32; p.syn.src.len()];
        let mut g_swpos = vec![0f32; p.sens.src.len()];
        let mut g_gleak_pos = vec![0f32; n];
        let mut g_cm_pos = vec![0f32; n];

        let mut xm = vec![0f32; s];
        let mut snum = vec![0f32; n];
        let mut sden = vec![0f32; n];
        let mut cm_t = vec![0f32; n];
        let mut gv = vec![0f32; n];
        let mut gv_prev = vec![0f32; n];
        let mut g_snum = vec![0f32; n];
        let mut g_sden = vec![0f32; n];
        let mut num = vec![0f32; n];
        let mut den = vec![0f32; n];
        let mut act = vec![0f32; p.syn.src.len()];
        let mut sig = vec![0f32; p.syn.src.len()];
        let stride_t = (u_n + 1) * n;
        for bi in 0..r.b {
            gv.copy_from_slice(&gh[bi * n..(bi + 1) * n]);
            for t in (0..r.l).rev() {
                let base = (bi * r.l + t) * stride_t;
                let states = &self.trace[base..base + stride_t];
                // Output mapping of the step's final state.
                let yo = (bi * r.l + t) * m;
                let v_end = &states[u_n * n..(u_n + 1) * n];
                for j in 0..m {
                    let gyj = gy[yo + j];
                    gv[j] += gyj * p.output_w[j];
                    g.output_w[j] += gyj * v_end[j];
                    g.output_b[j] += gyj;
                }
                let xo = (bi * r.l + t) * s;
                p.map_input(&r.x[xo..xo + s], &mut xm);
                p.sensory(&xm, &mut snum, &mut sden);
                let dt = r.ts[bi * r.l + t];
                let scale = u_n as f32 / dt;
                for j in 0..n {
                    cm_t[j] = p.cm[j] / (dt / u_n as f32);
                }
                g_snum.fill(0.0);
                g_sden.fill(0.0);
                for u in (0..u_n).rev() {
                    let v = &states[u * n..(u + 1) * n];
                    let v_new = &states[(u + 1) * n..(u + 2) * n];
                    num.copy_from_slice(&snum);
                    den.copy_from_slice(&sden);
                    let q = &p.syn;
                    for k in 0..q.src.len() {
                        sig[k] = sigmoid(q.sigma[k] * (v[q.src[k]] - q.mu[k]));
                        act[k] = q.w[k] * sig[k];
                        num[q.dst[k]] += act[k] * q.erev[k];
                        den[q.dst[k]] += act[k];
                    }
                    gv_prev.fill(0.0);
                    for j in 0..n {
                        let d = cm_t[j] + p.gleak[j] + den[j] + p.eps;
                        let g_num = gv[j] / d;
                        let g_den = -gv[j] * v_new[j] / d;
                        // numerator = cm_t v + gleak vleak + num; denominator = cm_t + gleak + den
                        g_cm_pos[j] += (g_num * v[j] + g_den) * scale;
                        gv_prev[j] += g_num * cm_t[j];
                        g_gleak_pos[j] += g_num * p.vleak[j] + g_den;
                        g.vleak[j] += g_num * p.gleak[j];
                        g_snum[j] += g_num;
                        g_sden[j] += g_den;
                        num[j] = g_num; // reuse as per-destination g_num
                        den[j] = g_den; // and g_den
                    }
                    for k in 0..q.src.len() {
                        let j = q.dst[k];
                        let g_act = num[j] * q.erev[k] + den[j];
                        g.erev[q.flat[k]] += num[j] * act[k];
                        g_wpos[k] += g_act * sig[k];
                        let gz = g_act * q.w[k] * sig[k] * (1.0 - sig[k]);
                        let i = q.src[k];
                        g.sigma[q.flat[k]] += gz * (v[i] - q.mu[k]);
                        g.mu[q.flat[k]] -= gz * q.sigma[k];
                        gv_prev[i] += gz * q.sigma[k];
                    }
                    std::mem::swap(&mut gv, &mut gv_prev);
                }
                // Sensory synapses (held over the step's unfolds).
                let q = &p.sens;
                let gx = &mut g.x[xo..xo + s];
                for k in 0..q.src.len() {
                    let i = q.src[k];
                    let j = q.dst[k];
                    let sg = sigmoid(q.sigma[k] * (xm[i] - q.mu[k]));
                    let a = q.w[k] * sg;
                    let g_act = g_snum[j] * q.erev[k] + g_sden[j];
                    g.s_erev[q.flat[k]] += g_snum[j] * a;
                    g_swpos[k] += g_act * sg;
                    let gz = g_act * q.w[k] * sg * (1.0 - sg);
                    g.s_sigma[q.flat[k]] += gz * (xm[i] - q.mu[k]);
                    g.s_mu[q.flat[k]] -= gz * q.sigma[k];
                    gx[i] += gz * q.sigma[k];
                }
                let x_raw = &r.x[xo..xo + s];
                for i in 0..s {
                    let gxi = gx[i];
                    g.input_w[i] += gxi * x_raw[i];
                    g.input_b[i] += gxi;
                    gx[i] = gxi * p.input_w[i];
                }
            }
            g.h0[bi * n..(bi + 1) * n].copy_from_slice(&gv);
        }
        // Positivity: chain through softplus in implicit mode.
        let chain = |raw: f32, gpos: f32| {
            if p.implicit {
                gpos * softplus_grad(raw)
            } else {
                gpos
            }
        };
        for j in 0..n {
            g.gleak[j] = chain(p.raw_gleak[j], g_gleak_pos[j]);
            g.cm[j] = chain(p.raw_cm[j], g_cm_pos[j]);
        }
        for k in 0..p.syn.src.len() {
            g.w[p.syn.flat[k]] = chain(p.syn.raw_w[k], g_wpos[k]);
        }
        for k in 0..p.sens.src.len() {
            g.s_w[p.sens.flat[k]] = chain(p.sens.raw_w[k], g_swpos[k]);
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
