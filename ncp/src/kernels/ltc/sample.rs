//! The LTC forward and backward for batches under [`LANES`](super::super::lanes::LANES)
//! samples (a minibatch of 2 envs, a single episode): one sample at a time, vectorised over
//! the synapses instead of the batch.
//! Each synapse's presynaptic value is gathered into a contiguous row, the sigmoids of all
//! synapses are one vectorised loop, and the sums into their postsynaptic neurons are added
//! in synapse order. Every sample sees the same operations in the same order as in the
//! batch-wide loops of `forward`/`backward`, so the results are bit-identical either way.
//!
//! The trace is laid out per sample: states `[b][t][u in 0..=U][n]`, sigmoids `[b][t][u][k]`.

use super::super::math::sigmoid;
use super::super::plumbing::Run;
use super::params::{Grads, LtcKernel, Synapses};
use super::trace::Trace;

/// Per-synapse scratch rows for one sample.
struct Rows {
    /// The presynaptic value of each synapse.
    pre: Vec<f32>,
    /// σ(sigma·(pre − mu)) of each synapse.
    sig: Vec<f32>,
}

impl Rows {
    fn new(q: &Synapses) -> Rows {
        let k = q.src.len();
        Rows {
            pre: vec![0f32; k],
            sig: vec![0f32; k],
        }
    }

    /// Gathers `values[src]` and computes every synapse's sigmoid, then adds each synapse's
    /// activation (× erev) into `num`/`den` of its postsynaptic neuron, in synapse order.
    #[inline(always)]
    fn sums(&mut self, q: &Synapses, values: &[f32], num: &mut [f32], den: &mut [f32]) {
        for (p, &i) in self.pre.iter_mut().zip(&q.src) {
            *p = values[i];
        }
        sigmoids(&q.sigma, &q.mu, &self.pre, &mut self.sig);
        for (k, &j) in q.dst.iter().enumerate() {
            let a = q.w[k] * self.sig[k];
            num[j] += a * q.erev[k];
            den[j] += a;
        }
    }
}

/// `out[k] = σ(sigma[k]·(x[k] − mu[k]))`; a function of its own so that `out` is known not to
/// overlap the inputs and the loop is vectorised.
#[inline(always)]
fn sigmoids(sigma: &[f32], mu: &[f32], x: &[f32], out: &mut [f32]) {
    for (((o, &sg), &m), &x) in out.iter_mut().zip(sigma).zip(mu).zip(x) {
        *o = sigmoid(sg * (x - m));
    }
}

/// One step's inputs for one sample, held over the step's unfolds: the mapped inputs, the
/// capacitances over the sub-step and the sensory synapses' sums (and their sigmoids).
struct StepInputs {
    xm: Vec<f32>,
    cm_t: Vec<f32>,
    snum: Vec<f32>,
    sden: Vec<f32>,
    sens: Rows,
}

impl StepInputs {
    fn new(p: &LtcKernel) -> StepInputs {
        StepInputs {
            xm: vec![0f32; p.s],
            cm_t: vec![0f32; p.n],
            snum: vec![0f32; p.n],
            sden: vec![0f32; p.n],
            sens: Rows::new(&p.sens),
        }
    }

    /// Computes step `t` of sample `b`; returns `unfolds / Δt`.
    #[inline(always)]
    fn compute(&mut self, p: &LtcKernel, r: &Run, b: usize, t: usize) -> f32 {
        let xo = (b * r.l + t) * p.s;
        for i in 0..p.s {
            self.xm[i] = r.x[xo + i] * p.input_w[i] + p.input_b[i];
        }
        let inv_dt = p.unfolds as f32 / r.ts[b * r.l + t];
        for j in 0..p.n {
            self.cm_t[j] = p.cm[j] * inv_dt;
        }
        self.snum.fill(0.0);
        self.sden.fill(0.0);
        self.sens
            .sums(&p.sens, &self.xm, &mut self.snum, &mut self.sden);
        inv_dt
    }
}

/// The forward pass (see [`super::forward::forward`]), one sample at a time.
#[inline(always)]
pub(super) fn forward(
    p: &LtcKernel,
    r: &Run,
    y: &mut [f32],
    h: &mut [f32],
    mut trace: Option<&mut Trace>,
) {
    let (n, m, u_n) = (p.n, p.m, p.unfolds);
    let leak: Vec<f32> = (0..n).map(|j| p.gleak[j] * p.vleak[j]).collect();
    let (mut inputs, mut syn) = (StepInputs::new(p), Rows::new(&p.syn));
    let [mut v, mut next, mut num, mut den] = std::array::from_fn(|_| vec![0f32; n]);
    for b in 0..r.b {
        v.copy_from_slice(&r.h0[b * n..(b + 1) * n]);
        for t in 0..r.l {
            if r.starts.as_ref().is_some_and(|st| st[b * r.l + t]) {
                v.fill(0.0);
            }
            inputs.compute(p, r, b, t);
            if let Some(tr) = trace.as_deref_mut() {
                tr.states.extend_from_slice(&v);
            }
            for _ in 0..u_n {
                num.copy_from_slice(&inputs.snum);
                den.copy_from_slice(&inputs.sden);
                syn.sums(&p.syn, &v, &mut num, &mut den);
                p.gaps.sums(&v, &mut num, &mut den);
                if let Some(tr) = trace.as_deref_mut() {
                    tr.sigmoids.extend_from_slice(&syn.sig);
                }
                for j in 0..n {
                    let (c, gl) = (inputs.cm_t[j], p.gleak[j] + p.eps);
                    next[j] = (c * v[j] + leak[j] + num[j]) / (c + gl + den[j]);
                }
                std::mem::swap(&mut v, &mut next);
                if let Some(tr) = trace.as_deref_mut() {
                    tr.states.extend_from_slice(&v);
                }
            }
            let yo = (b * r.l + t) * m;
            for j in 0..m {
                y[yo + j] = v[j] * p.output_w[j] + p.output_b[j];
            }
        }
        h[b * n..(b + 1) * n].copy_from_slice(&v);
    }
}

/// One sample's gradients of a set of synapses, accumulated over its steps and unfolds.
struct SynapseGrads {
    w: Vec<f32>,
    sigma: Vec<f32>,
    mu: Vec<f32>,
    erev: Vec<f32>,
    /// Scratch: the gradients of each synapse's postsynaptic sums, gathered.
    g_num: Vec<f32>,
    g_den: Vec<f32>,
    /// Scratch: what each synapse adds to its presynaptic value's gradient.
    g_pre: Vec<f32>,
}

impl SynapseGrads {
    fn new(q: &Synapses) -> SynapseGrads {
        let z = || vec![0f32; q.src.len()];
        SynapseGrads {
            w: z(),
            sigma: z(),
            mu: z(),
            erev: z(),
            g_num: z(),
            g_den: z(),
            g_pre: z(),
        }
    }

    /// Zeroes the accumulated gradients (for the next sample).
    fn clear(&mut self) {
        for acc in [&mut self.w, &mut self.sigma, &mut self.mu, &mut self.erev] {
            acc.fill(0.0);
        }
    }

    /// Backpropagates through the synapses of `q` with sigmoids `sig` and presynaptic values
    /// `pre` (per synapse), from the gradients of the postsynaptic sums `g_num`, `g_den`:
    /// accumulates the synapses' parameter gradients and adds into `g_pre` (by presynaptic
    /// index).
    #[inline(always)]
    fn backward(
        &mut self,
        q: &Synapses,
        [sig, pre]: [&[f32]; 2],
        g_num: &[f32],
        g_den: &[f32],
        g_pre: &mut [f32],
    ) {
        for (k, &j) in q.dst.iter().enumerate() {
            self.g_num[k] = g_num[j];
            self.g_den[k] = g_den[j];
        }
        synapse_terms(
            [&q.w, &q.sigma, &q.mu, &q.erev],
            [sig, pre, &self.g_num, &self.g_den],
            &mut self.erev,
            &mut self.w,
            &mut self.sigma,
            &mut self.mu,
            &mut self.g_pre,
        );
        for (k, &i) in q.src.iter().enumerate() {
            g_pre[i] += self.g_pre[k];
        }
    }

    /// Writes this sample's gradients into the batch's per-sample layout `[k][B]`, column `b`.
    fn store(&self, b: usize, bn: usize, [w, sigma, mu, erev]: [&mut Vec<f32>; 4]) {
        for (dst, src) in [
            (w, &self.w),
            (sigma, &self.sigma),
            (mu, &self.mu),
            (erev, &self.erev),
        ] {
            for (k, &g) in src.iter().enumerate() {
                dst[k * bn + b] = g;
            }
        }
    }
}

/// The per-synapse arithmetic of the backward pass, as `backward`'s batch loop does it per
/// sample; vectorised over synapses (the written rows are arguments, so they are known not
/// to overlap the read ones).
#[inline(always)]
fn synapse_terms(
    [w, sg, mu, e]: [&[f32]; 4],
    [sig, pre, g_num, g_den]: [&[f32]; 4],
    acc_erev: &mut [f32],
    acc_w: &mut [f32],
    acc_sigma: &mut [f32],
    acc_mu: &mut [f32],
    g_pre: &mut [f32],
) {
    let kn = g_pre.len();
    let (w, sg, mu, e) = (&w[..kn], &sg[..kn], &mu[..kn], &e[..kn]);
    let (sig, pre, g_num, g_den) = (&sig[..kn], &pre[..kn], &g_num[..kn], &g_den[..kn]);
    let (acc_erev, acc_w) = (&mut acc_erev[..kn], &mut acc_w[..kn]);
    let (acc_sigma, acc_mu) = (&mut acc_sigma[..kn], &mut acc_mu[..kn]);
    for k in 0..kn {
        let sgm = sig[k];
        let gn = g_num[k];
        let g_act = gn * e[k] + g_den[k];
        acc_erev[k] += gn * w[k] * sgm;
        acc_w[k] += g_act * sgm;
        let gz = g_act * w[k] * sgm * (1.0 - sgm);
        acc_sigma[k] += gz * (pre[k] - mu[k]);
        acc_mu[k] -= gz * sg[k];
        g_pre[k] = gz * sg[k];
    }
}

/// Every neuron's share of an unfold's backward for one sample, as `backward`'s batch loop
/// does it per sample: from the gradient `gv` of the new states to those of the old states
/// (`gv_prev`, before the synapses add theirs) and of the sums, and the neurons' parameter
/// gradients. The written rows are separate arguments, so the loop is vectorised.
#[inline(always)]
fn neuron_terms(
    (p, inv_dt): (&LtcKernel, f32),
    [cm, den, gv, v, v_new]: [&[f32]; 5],
    [acc_cm, acc_gleak, acc_vleak]: [&mut [f32]; 3],
    [gv_prev, g_snum, g_sden, g_num, g_den]: [&mut [f32]; 5],
) {
    let n = p.n;
    let (gleak, vleak) = (&p.gleak[..n], &p.vleak[..n]);
    let (cm, den, gv, v, v_new) = (&cm[..n], &den[..n], &gv[..n], &v[..n], &v_new[..n]);
    let (acc_cm, acc_gleak, acc_vleak) =
        (&mut acc_cm[..n], &mut acc_gleak[..n], &mut acc_vleak[..n]);
    let (gv_prev, g_snum, g_sden) = (&mut gv_prev[..n], &mut g_snum[..n], &mut g_sden[..n]);
    let (g_num, g_den) = (&mut g_num[..n], &mut g_den[..n]);
    for j in 0..n {
        let (gl, vl) = (gleak[j], vleak[j]);
        let d = cm[j] + (gl + p.eps) + den[j];
        let gn = gv[j] / d;
        let gd = -gv[j] * v_new[j] / d;
        acc_cm[j] += (gn * v[j] + gd) * inv_dt;
        gv_prev[j] = gn * cm[j];
        acc_gleak[j] += gn * vl + gd;
        acc_vleak[j] += gn * gl;
        g_snum[j] += gn;
        g_sden[j] += gd;
        g_num[j] = gn;
        g_den[j] = gd;
    }
}

/// One sample's gradients of the neurons' parameters and of the input and output mappings,
/// accumulated over its steps and unfolds.
struct NeuronGrads {
    gleak: Vec<f32>,
    vleak: Vec<f32>,
    cm: Vec<f32>,
    input_w: Vec<f32>,
    input_b: Vec<f32>,
    output_w: Vec<f32>,
    output_b: Vec<f32>,
    gap_w: Vec<f32>,
}

impl NeuronGrads {
    fn new(p: &LtcKernel) -> NeuronGrads {
        let (n, s, m) = (p.n, p.s, p.m);
        NeuronGrads {
            gleak: vec![0f32; n],
            vleak: vec![0f32; n],
            cm: vec![0f32; n],
            input_w: vec![0f32; s],
            input_b: vec![0f32; s],
            output_w: vec![0f32; m],
            output_b: vec![0f32; m],
            gap_w: vec![0f32; p.gaps.a.len()],
        }
    }

    /// Zeroes them (for the next sample).
    fn clear(&mut self) {
        for acc in self.rows() {
            acc.fill(0.0);
        }
    }

    /// Every buffer, in the order [`NeuronGrads::store`] writes them.
    fn rows(&mut self) -> [&mut Vec<f32>; 8] {
        [
            &mut self.gleak,
            &mut self.vleak,
            &mut self.cm,
            &mut self.input_w,
            &mut self.input_b,
            &mut self.output_w,
            &mut self.output_b,
            &mut self.gap_w,
        ]
    }

    /// The output mapping's backward at one step, from the outputs' gradients `gy` and the
    /// step's final state `v_end`: adds into the state's gradient `gv`.
    #[inline(always)]
    fn output(&mut self, p: &LtcKernel, gy: &[f32], v_end: &[f32], gv: &mut [f32]) {
        for j in 0..p.m {
            let gyj = gy[j];
            gv[j] += gyj * p.output_w[j];
            self.output_w[j] += gyj * v_end[j];
            self.output_b[j] += gyj;
        }
    }

    /// The input mapping's backward at one step, from the mapped inputs' gradients `gxm` and
    /// the raw inputs `x`: writes the inputs' gradients `g_x`.
    #[inline(always)]
    fn input(&mut self, p: &LtcKernel, gxm: &[f32], x: &[f32], g_x: &mut [f32]) {
        for i in 0..p.s {
            let g = gxm[i];
            self.input_w[i] += g * x[i];
            self.input_b[i] += g;
            g_x[i] = g * p.input_w[i];
        }
    }

    /// Writes this sample's gradients, and the initial state's `gv`, into the batch's
    /// per-sample layout `[row][B]`, column `b`.
    fn store(&mut self, out: &mut Grads, gv: &[f32], b: usize, bn: usize) {
        let dsts = [
            &mut out.gleak,
            &mut out.vleak,
            &mut out.cm,
            &mut out.input_w,
            &mut out.input_b,
            &mut out.output_w,
            &mut out.output_b,
            &mut out.gap_w,
        ];
        for (dst, src) in dsts.into_iter().zip(self.rows()) {
            for (row, &g) in src.iter().enumerate() {
                dst[row * bn + b] = g;
            }
        }
        for (row, &g) in gv.iter().enumerate() {
            out.h0[row * bn + b] = g;
        }
    }
}

/// An unfold's rows for its backward: each synapse's presynaptic value `pre` from the states
/// `v`, and the neurons' denominators `den` again, from the sensory sums `sden`, the sigmoids
/// `sig` the forward pass kept and the gap junctions.
#[inline(always)]
fn unfold_rows(p: &LtcKernel, [v, sig, sden]: [&[f32]; 3], pre: &mut [f32], den: &mut [f32]) {
    let q = &p.syn;
    for (pre, &i) in pre.iter_mut().zip(&q.src) {
        *pre = v[i];
    }
    den.copy_from_slice(sden);
    for (k, &j) in q.dst.iter().enumerate() {
        den[j] += q.w[k] * sig[k];
    }
    p.gaps.dens(den);
}

/// The backward pass (see [`super::backward::backward`]) one sample at a time, returning the
/// per-sample gradients in the batch loops' layout.
#[inline(always)]
pub(super) fn backward(p: &LtcKernel, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Grads {
    let (n, s, m, u_n, bn) = (p.n, p.s, p.m, p.unfolds, r.b);
    let kn = p.syn.src.len();
    let z = |len| vec![0f32; len];
    let mut out = Grads::zeros(p, bn, r.l);
    let (mut inputs, mut syn) = (StepInputs::new(p), Rows::new(&p.syn));
    let mut gxm = z(s);
    let [mut gv, mut gv_prev, mut den] = std::array::from_fn(|_| z(n));
    let [mut g_num, mut g_den, mut g_snum, mut g_sden] = std::array::from_fn(|_| z(n));
    let mut acc = NeuronGrads::new(p);
    let per_sample = r.l * (u_n + 1) * n;
    let sigmoids_per_step = u_n * kn;
    let (mut g_syn, mut g_sens) = (SynapseGrads::new(&p.syn), SynapseGrads::new(&p.sens));
    for b in 0..bn {
        g_syn.clear();
        g_sens.clear();
        acc.clear();
        gv.copy_from_slice(&gh[b * n..(b + 1) * n]);
        let tr = &trace.states[b * per_sample..(b + 1) * per_sample];
        let sample_sigmoids = &trace.sigmoids[b * r.l * sigmoids_per_step..];
        for t in (0..r.l).rev() {
            let base = t * (u_n + 1) * n;
            // Output mapping of the step's final state.
            let v_end = &tr[base + u_n * n..base + (u_n + 1) * n];
            let yo = (b * r.l + t) * m;
            acc.output(p, &gy[yo..yo + m], v_end, &mut gv);
            let inv_dt = inputs.compute(p, r, b, t);
            let xo = (b * r.l + t) * s;
            g_snum.fill(0.0);
            g_sden.fill(0.0);
            for u in (0..u_n).rev() {
                let v = &tr[base + u * n..base + (u + 1) * n];
                let v_new = &tr[base + (u + 1) * n..base + (u + 2) * n];
                let sig = &sample_sigmoids[(t * u_n + u) * kn..(t * u_n + u + 1) * kn];
                unfold_rows(p, [v, sig, &inputs.sden], &mut syn.pre, &mut den);
                neuron_terms(
                    (p, inv_dt),
                    [&inputs.cm_t, &den, &gv, v, v_new],
                    [&mut acc.cm, &mut acc.gleak, &mut acc.vleak],
                    [
                        &mut gv_prev,
                        &mut g_snum,
                        &mut g_sden,
                        &mut g_num,
                        &mut g_den,
                    ],
                );
                g_syn.backward(&p.syn, [sig, &syn.pre], &g_num, &g_den, &mut gv_prev);
                p.gaps
                    .backward([v, &g_num, &g_den], &mut acc.gap_w, &mut gv_prev);
                std::mem::swap(&mut gv, &mut gv_prev);
            }
            // Sensory synapses (held over the step's unfolds), from this step's sigmoids.
            gxm.fill(0.0);
            let sens = &inputs.sens;
            g_sens.backward(&p.sens, [&sens.sig, &sens.pre], &g_snum, &g_sden, &mut gxm);
            acc.input(p, &gxm, &r.x[xo..xo + s], &mut out.x[xo..xo + s]);
            // The state entering this step was reset: nothing flows to earlier steps.
            if r.starts.as_ref().is_some_and(|st| st[b * r.l + t]) {
                gv.fill(0.0);
            }
        }
        acc.store(&mut out, &gv, b, bn);
        let syn_rows = [&mut out.w, &mut out.sigma, &mut out.mu, &mut out.erev];
        g_syn.store(b, bn, syn_rows);
        let sens_rows = [
            &mut out.s_w,
            &mut out.s_sigma,
            &mut out.s_mu,
            &mut out.s_erev,
        ];
        g_sens.store(b, bn, sens_rows);
    }
    out
}
