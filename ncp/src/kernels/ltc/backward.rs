//! The LTC backward pass through time and the unfolds, accumulated per sample so every inner
//! loop runs over the batch (batches under [`LANES`] samples take the per-sample path of
//! [`sample`]).

use super::super::lanes::LANES;
use super::super::plumbing::{Gradients, Run};
use super::forward::{step_inputs, synapse_sums};
use super::params::{softplus_grad, Grads, LtcKernel, Synapses};
use super::sample;
use super::trace::Trace;

/// Backpropagates the gradients of the outputs `gy [b][t][M]` and of the final state
/// `gh [b][N]` through time, exactly as autograd through the cell would.
pub(super) fn backward(p: &LtcKernel, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Gradients {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { backward_avx2(p, r, trace, gy, gh) };
    }
    backward_body::<false>(p, r, trace, gy, gh)
}

/// [`backward`] compiled for AVX2, bit-identical like [`super::forward`]'s AVX2 build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_avx2(p: &LtcKernel, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Gradients {
    backward_body::<true>(p, r, trace, gy, gh)
}

/// The backward pass; `AVX` when compiled for AVX2 on a CPU that has it.
#[inline(always)]
fn backward_body<const AVX: bool>(
    p: &LtcKernel,
    r: &Run,
    trace: &Trace,
    gy: &[f32],
    gh: &[f32],
) -> Gradients {
    if r.b < LANES {
        return finish(p, r.b, sample::backward(p, r, trace, gy, gh));
    }
    let (n, s, u_n, bn) = (p.n, p.s, p.unfolds, r.b);
    let kn = p.syn.src.len();
    // Everything below is laid out `[row][B]` like the forward pass, and gradients of
    // shared parameters are accumulated per sample (`[param][B]`) and summed at the end,
    // so every inner loop is an elementwise loop over the batch.
    let mut acc = Grads::zeros(p, bn, r.l);
    let zero = |len| vec![0f32; len];
    let mut gv = zero(n * bn);
    let mut gv_prev = zero(n * bn);
    for bi in 0..bn {
        for j in 0..n {
            gv[j * bn + bi] = gh[bi * n + j];
        }
    }
    let (mut xm, mut gxm) = (zero(s * bn), zero(s * bn));
    let (mut cm_t, mut inv_dt, mut snum) = (zero(n * bn), zero(bn), zero(n * bn));
    let mut sums = UnfoldSums::new(n * bn);
    let mut sens_sig = zero(p.sens.src.len() * bn);
    let step = n * bn;
    for t in (0..r.l).rev() {
        let base = t * (u_n + 1) * step;
        // Output mapping of the step's final state.
        let v_end = &trace.states[base + u_n * step..base + (u_n + 1) * step];
        output_backward(p, r, t, v_end, gy, &mut gv, &mut acc);
        step_inputs(p, r, t, &mut xm, &mut inv_dt, &mut cm_t);
        // The sensory sums, held over the unfolds; their sigmoids are kept for the sensory
        // synapses' backward below.
        let sens_sig_out = Some(&mut sens_sig[..]);
        synapse_sums(
            &p.sens,
            &xm,
            bn,
            &mut snum,
            &mut sums.sden,
            true,
            sens_sig_out,
        );
        sums.g_snum.fill(0.0);
        sums.g_sden.fill(0.0);
        for u in (0..u_n).rev() {
            let states = &trace.states[base + u * step..base + (u + 2) * step];
            let sig = &trace.sigmoids[(t * u_n + u) * kn * bn..(t * u_n + u + 1) * kn * bn];
            let rows = [states, sig, &cm_t, &inv_dt];
            unfold_backward::<AVX>(p, rows, &gv, &mut gv_prev, &mut sums, &mut acc);
            std::mem::swap(&mut gv, &mut gv_prev);
        }
        // Sensory synapses (held over the step's unfolds), then the input mapping.
        sensory_backward::<AVX>(p, (r, t), [&sens_sig, &xm], &sums, &mut gxm, &mut acc);
        // The state entering this step was reset: nothing flows to earlier steps.
        if let Some(starts) = &r.starts {
            for bi in (0..bn).filter(|&bi| starts[bi * r.l + t]) {
                for j in 0..n {
                    gv[j * bn + bi] = 0.0;
                }
            }
        }
    }
    acc.h0 = gv;
    finish(p, bn, acc)
}

/// An unfold's sums and their gradients, `[n][B]` each: the sensory sums' denominators (held
/// over the step), the unfold's denominators, and the gradients of both kinds of sum.
struct UnfoldSums {
    sden: Vec<f32>,
    den: Vec<f32>,
    g_num: Vec<f32>,
    g_den: Vec<f32>,
    g_snum: Vec<f32>,
    g_sden: Vec<f32>,
}

impl UnfoldSums {
    fn new(len: usize) -> UnfoldSums {
        let zero = || vec![0f32; len];
        UnfoldSums {
            sden: zero(),
            den: zero(),
            g_num: zero(),
            g_den: zero(),
            g_snum: zero(),
            g_sden: zero(),
        }
    }
}

/// The output mapping's backward at step `t`, from the outputs' gradients `gy` and the step's
/// final state `v_end`: adds into the state's gradient `gv` and the mapping's sums.
#[inline(always)]
fn output_backward(
    p: &LtcKernel,
    r: &Run,
    t: usize,
    v_end: &[f32],
    gy: &[f32],
    gv: &mut [f32],
    acc: &mut Grads,
) {
    let (m, bn) = (p.m, r.b);
    for bi in 0..bn {
        let yo = (bi * r.l + t) * m;
        for j in 0..m {
            let gyj = gy[yo + j];
            gv[j * bn + bi] += gyj * p.output_w[j];
            acc.output_w[j * bn + bi] += gyj * v_end[j * bn + bi];
            acc.output_b[j * bn + bi] += gyj;
        }
    }
}

/// One unfold's backward for every sample, from the states before and after it (`states`,
/// two rows of `[n][B]`), the sigmoids the forward pass kept (`sig`), the capacitances over
/// the sub-step and the sub-step rates: from the new states' gradient `gv` to the old
/// states' (`gv_prev`), adding into the neurons' and synapses' sums and the sensory sums'
/// gradients.
#[inline(always)]
fn unfold_backward<const AVX: bool>(
    p: &LtcKernel,
    [states, sig, cm_t, inv_dt]: [&[f32]; 4],
    gv: &[f32],
    gv_prev: &mut [f32],
    sums: &mut UnfoldSums,
    acc: &mut Grads,
) {
    let (n, bn) = (p.n, inv_dt.len());
    let (v, v_new) = states.split_at(n * bn);
    // The unfold's denominators again, from the sigmoids the forward pass kept.
    sums.den.copy_from_slice(&sums.sden);
    let q = &p.syn;
    for k in 0..q.src.len() {
        let (j, w) = (q.dst[k], q.w[k]);
        let den_j = &mut sums.den[j * bn..(j + 1) * bn];
        for (dn, &sgm) in den_j.iter_mut().zip(&sig[k * bn..(k + 1) * bn]) {
            *dn += w * sgm;
        }
    }
    super::gaps::batch_dens(&p.gaps, bn, &mut sums.den);
    for j in 0..n {
        let row = j * bn..(j + 1) * bn;
        let (gl, vl) = (p.gleak[j], p.vleak[j]);
        neuron_backward::<AVX>(
            (gl, vl, gl + p.eps),
            [&cm_t[row.clone()], &sums.den[row.clone()], &gv[row.clone()]],
            [&v[row.clone()], &v_new[row.clone()], &inv_dt[..bn]],
            &mut acc.cm[row.clone()],
            &mut gv_prev[row.clone()],
            &mut acc.gleak[row.clone()],
            &mut acc.vleak[row.clone()],
            &mut sums.g_snum[row.clone()],
            &mut sums.g_sden[row.clone()],
            &mut sums.g_num[row.clone()],
            &mut sums.g_den[row],
        );
    }
    synapses_backward::<AVX>(
        q,
        bn,
        [sig, v, &sums.g_num, &sums.g_den],
        [&mut acc.erev, &mut acc.w, &mut acc.sigma, &mut acc.mu],
        gv_prev,
    );
    super::gaps::batch_backward(
        &p.gaps,
        bn,
        [v, &sums.g_num, &sums.g_den],
        &mut acc.gap_w,
        gv_prev,
    );
}

/// The sensory synapses' backward at step `t` (held over its unfolds: their sigmoids and
/// mapped inputs `[sig, xm]`, the gradients of the sensory sums in `sums`), then the input
/// mapping's: `gxm` is scratch for the mapped inputs' gradients.
#[inline(always)]
fn sensory_backward<const AVX: bool>(
    p: &LtcKernel,
    (r, t): (&Run, usize),
    [sig, xm]: [&[f32]; 2],
    sums: &UnfoldSums,
    gxm: &mut [f32],
    acc: &mut Grads,
) {
    gxm.fill(0.0);
    synapses_backward::<AVX>(
        &p.sens,
        r.b,
        [sig, xm, &sums.g_snum, &sums.g_sden],
        [
            &mut acc.s_erev,
            &mut acc.s_w,
            &mut acc.s_sigma,
            &mut acc.s_mu,
        ],
        gxm,
    );
    input_backward(p, r, t, gxm, acc);
}

/// The input mapping's backward at step `t`, from the mapped inputs' gradients `gxm`: adds
/// into the mapping's sums and writes the inputs' gradients.
#[inline(always)]
fn input_backward(p: &LtcKernel, r: &Run, t: usize, gxm: &[f32], acc: &mut Grads) {
    let (s, bn) = (p.s, r.b);
    for bi in 0..bn {
        let xo = (bi * r.l + t) * s;
        for i in 0..s {
            let g = gxm[i * bn + bi];
            acc.input_w[i * bn + bi] += g * r.x[xo + i];
            acc.input_b[i * bn + bi] += g;
            acc.x[xo + i] = g * p.input_w[i];
        }
    }
}

/// Sums the per-sample gradients `acc` over the batch (in sample order), scatters the
/// synapses' into the dense parameter shapes, chains through the positivity mapping and
/// lays the initial state's gradient out `[b][N]`.
pub(super) fn finish(p: &LtcKernel, bn: usize, acc: Grads) -> Gradients {
    let (n, s) = (p.n, p.s);
    let (ks, kn) = (p.sens.src.len(), p.syn.src.len());
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
    let mut g_h0 = vec![0f32; bn * n];
    for bi in 0..bn {
        for j in 0..n {
            g_h0[bi * n + j] = acc.h0[j * bn + bi];
        }
    }
    let mut g = Grads {
        gleak: reduce(&acc.gleak),
        vleak: reduce(&acc.vleak),
        cm: reduce(&acc.cm),
        sigma: scatter(&acc.sigma, &p.syn, n),
        mu: scatter(&acc.mu, &p.syn, n),
        w: scatter(&acc.w, &p.syn, n),
        erev: scatter(&acc.erev, &p.syn, n),
        s_sigma: scatter(&acc.s_sigma, &p.sens, s),
        s_mu: scatter(&acc.s_mu, &p.sens, s),
        s_w: scatter(&acc.s_w, &p.sens, s),
        s_erev: scatter(&acc.s_erev, &p.sens, s),
        input_w: reduce(&acc.input_w),
        input_b: reduce(&acc.input_b),
        output_w: reduce(&acc.output_w),
        output_b: reduce(&acc.output_b),
        gap_w: reduce(&acc.gap_w),
        x: acc.x,
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
    for (gw, &raw) in g.gap_w.iter_mut().zip(&p.gaps.raw_w) {
        *gw = chain(raw, *gw);
    }
    Gradients {
        params: vec![
            g.gleak, g.vleak, g.cm, g.sigma, g.mu, g.w, g.erev, g.s_sigma, g.s_mu, g.s_w, g.s_erev,
            g.input_w, g.input_b, g.output_w, g.output_b, g.gap_w,
        ],
        x: g.x,
        h0: g.h0,
    }
}

/// Runs `$body` over `0..$bn` in chunks of [`LANES`] samples, then one at a time, with `$o`
/// the chunk's first sample and `$n` its length as a constant.
macro_rules! in_chunks {
    ($bn:expr, |$o:ident, $n:ident| $body:expr) => {{
        let bn = $bn;
        let mut $o = 0;
        while $o + LANES <= bn {
            const $n: usize = LANES;
            $body;
            $o += LANES;
        }
        while $o < bn {
            const $n: usize = 1;
            $body;
            $o += 1;
        }
    }};
}

/// One neuron's share of an unfold's backward, for every sample: from the gradient `gv` of its
/// new state to those of its old state (`gv_prev`, before the synapses add theirs), of the
/// numerator and denominator sums (`g_num`, `g_den`, also accumulated over the step's unfolds
/// into `g_snum`, `g_sden` for the sensory synapses) and of its own parameters.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn neuron_backward<const AVX: bool>(
    c: (f32, f32, f32),
    [cm, den, gv]: [&[f32]; 3],
    [v, v_new, inv_dt]: [&[f32]; 3],
    acc_cm: &mut [f32],
    gv_prev: &mut [f32],
    acc_gleak: &mut [f32],
    acc_vleak: &mut [f32],
    g_snum: &mut [f32],
    g_sden: &mut [f32],
    g_num: &mut [f32],
    g_den: &mut [f32],
) {
    in_chunks!(gv_prev.len(), |o, N| {
        neuron_chunk::<N, AVX>(
            c,
            [&cm[o..], &den[o..], &gv[o..]],
            [&v[o..], &v_new[o..], &inv_dt[o..]],
            &mut acc_cm[o..],
            &mut gv_prev[o..],
            &mut acc_gleak[o..],
            &mut acc_vleak[o..],
            &mut g_snum[o..],
            &mut g_sden[o..],
            &mut g_num[o..],
            &mut g_den[o..],
        )
    });
}

/// [`neuron_backward`] on the first `N` samples. A function of its own so that its slices are
/// known not to overlap (noalias arguments) and, with `N` constant, the loop is vectorised.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn neuron_chunk<const N: usize, const AVX: bool>(
    (gl, vl, c_eps): (f32, f32, f32),
    [cm, den, gv]: [&[f32]; 3],
    [v, v_new, inv_dt]: [&[f32]; 3],
    acc_cm: &mut [f32],
    gv_prev: &mut [f32],
    acc_gleak: &mut [f32],
    acc_vleak: &mut [f32],
    g_snum: &mut [f32],
    g_sden: &mut [f32],
    g_num: &mut [f32],
    g_den: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if AVX && N == LANES {
        use super::super::lanes::F8;
        // SAFETY: `AVX` is true only in the build that runs after the CPU check for AVX2.
        unsafe {
            let (cm, den, gv) = (F8::load(cm), F8::load(den), F8::load(gv));
            let (v, v_new, inv_dt) = (F8::load(v), F8::load(v_new), F8::load(inv_dt));
            let d = cm + F8::splat(c_eps) + den;
            let gn = gv / d;
            let gd = -gv * v_new / d;
            (F8::load(acc_cm) + (gn * v + gd) * inv_dt).store(acc_cm);
            (gn * cm).store(gv_prev);
            (F8::load(acc_gleak) + (gn * F8::splat(vl) + gd)).store(acc_gleak);
            (F8::load(acc_vleak) + gn * F8::splat(gl)).store(acc_vleak);
            (F8::load(g_snum) + gn).store(g_snum);
            (F8::load(g_sden) + gd).store(g_sden);
            gn.store(g_num);
            gd.store(g_den);
        }
        return;
    }
    let (cm, den, gv) = (&cm[..N], &den[..N], &gv[..N]);
    let (v, v_new, inv_dt) = (&v[..N], &v_new[..N], &inv_dt[..N]);
    let (acc_cm, gv_prev, acc_gleak, acc_vleak) = (
        &mut acc_cm[..N],
        &mut gv_prev[..N],
        &mut acc_gleak[..N],
        &mut acc_vleak[..N],
    );
    let (g_snum, g_sden, g_num, g_den) = (
        &mut g_snum[..N],
        &mut g_sden[..N],
        &mut g_num[..N],
        &mut g_den[..N],
    );
    for b in 0..N {
        let d = cm[b] + c_eps + den[b];
        let gn = gv[b] / d;
        let gd = -gv[b] * v_new[b] / d;
        acc_cm[b] += (gn * v[b] + gd) * inv_dt[b];
        gv_prev[b] = gn * cm[b];
        acc_gleak[b] += gn * vl + gd;
        acc_vleak[b] += gn * gl;
        g_snum[b] += gn;
        g_sden[b] += gd;
        g_num[b] = gn;
        g_den[b] = gd;
    }
}

/// [`synapse_backward`] for every synapse of `q` in order, on `[row][B]` buffers: `sig` per
/// synapse, `pre` and `g_pre` per presynaptic neuron, `g_num`/`g_den` per postsynaptic one; the
/// accumulators (`erev`, `w`, `sigma`, `mu`) per synapse.
#[inline(always)]
fn synapses_backward<const AVX: bool>(
    q: &Synapses,
    bn: usize,
    [sig, pre, g_num, g_den]: [&[f32]; 4],
    [acc_erev, acc_w, acc_sigma, acc_mu]: [&mut [f32]; 4],
    g_pre: &mut [f32],
) {
    for k in 0..q.src.len() {
        let (ri, rj, rk) = (
            q.src[k] * bn..(q.src[k] + 1) * bn,
            q.dst[k] * bn..(q.dst[k] + 1) * bn,
            k * bn..(k + 1) * bn,
        );
        synapse_backward::<AVX>(
            [q.w[k], q.sigma[k], q.mu[k], q.erev[k]],
            [
                &sig[rk.clone()],
                &pre[ri.clone()],
                &g_num[rj.clone()],
                &g_den[rj],
            ],
            &mut acc_erev[rk.clone()],
            &mut acc_w[rk.clone()],
            &mut acc_sigma[rk.clone()],
            &mut acc_mu[rk],
            &mut g_pre[ri],
        );
    }
}

/// One synapse's backward for every sample, given its activations `sig` = σ(sigma·(pre − mu)),
/// its presynaptic values `pre` and the gradients of its postsynaptic sums: accumulates the
/// gradients of its `erev`, `w`, `sigma`, `mu` and adds into the presynaptic gradient `g_pre`.
#[inline(always)]
fn synapse_backward<const AVX: bool>(
    c: [f32; 4],
    [sig, pre, g_num, g_den]: [&[f32]; 4],
    acc_erev: &mut [f32],
    acc_w: &mut [f32],
    acc_sigma: &mut [f32],
    acc_mu: &mut [f32],
    g_pre: &mut [f32],
) {
    in_chunks!(g_pre.len(), |o, N| {
        synapse_chunk::<N, AVX>(
            c,
            [&sig[o..], &pre[o..], &g_num[o..], &g_den[o..]],
            &mut acc_erev[o..],
            &mut acc_w[o..],
            &mut acc_sigma[o..],
            &mut acc_mu[o..],
            &mut g_pre[o..],
        )
    });
}

/// [`synapse_backward`] on the first `N` samples (see [`neuron_chunk`]).
#[inline(always)]
fn synapse_chunk<const N: usize, const AVX: bool>(
    [w, sg, mu, e]: [f32; 4],
    [sig, pre, g_num, g_den]: [&[f32]; 4],
    acc_erev: &mut [f32],
    acc_w: &mut [f32],
    acc_sigma: &mut [f32],
    acc_mu: &mut [f32],
    g_pre: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if AVX && N == LANES {
        use super::super::lanes::F8;
        // SAFETY: `AVX` is true only in the build that runs after the CPU check for AVX2.
        unsafe {
            let (sgm, pre, gn) = (F8::load(sig), F8::load(pre), F8::load(g_num));
            let (w, sg) = (F8::splat(w), F8::splat(sg));
            let g_act = gn * F8::splat(e) + F8::load(g_den);
            (F8::load(acc_erev) + gn * w * sgm).store(acc_erev);
            (F8::load(acc_w) + g_act * sgm).store(acc_w);
            let gz = g_act * w * sgm * (F8::splat(1.0) - sgm);
            (F8::load(acc_sigma) + gz * (pre - F8::splat(mu))).store(acc_sigma);
            (F8::load(acc_mu) - gz * sg).store(acc_mu);
            (F8::load(g_pre) + gz * sg).store(g_pre);
        }
        return;
    }
    let (sig, pre, g_num, g_den) = (&sig[..N], &pre[..N], &g_num[..N], &g_den[..N]);
    let (acc_erev, acc_w, acc_sigma, acc_mu, g_pre) = (
        &mut acc_erev[..N],
        &mut acc_w[..N],
        &mut acc_sigma[..N],
        &mut acc_mu[..N],
        &mut g_pre[..N],
    );
    for b in 0..N {
        let sgm = sig[b];
        let gn = g_num[b];
        let g_act = gn * e + g_den[b];
        acc_erev[b] += gn * w * sgm;
        acc_w[b] += g_act * sgm;
        let gz = g_act * w * sgm * (1.0 - sgm);
        acc_sigma[b] += gz * (pre[b] - mu);
        acc_mu[b] -= gz * sg;
        g_pre[b] += gz * sg;
    }
}

#[cfg(test)]
mod tests {
    use super::super::forward::forward;
    use super::super::params::{bits, test_kernel_and_run, traced_forward};
    use super::backward_body;

    /// The AVX2 build (8-lane chunks) gives the portable build's gradients to the bit, for a
    /// batch with a chunk and a remainder and for one on the per-sample path.
    #[test]
    fn avx2_build_equals_the_portable_build_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for b in [11, 3] {
                let (p, r) = test_kernel_and_run(b);
                let (y, h, trace) = traced_forward(&p, &r, forward);
                let gy: Vec<f32> = y.iter().map(|v| v.sin()).collect();
                let gh: Vec<f32> = h.iter().map(|v| v.cos()).collect();
                let portable = backward_body::<false>(&p, &r, &trace, &gy, &gh);
                // SAFETY: the CPU has AVX2 (checked above).
                let avx2 = unsafe { super::backward_avx2(&p, &r, &trace, &gy, &gh) };
                for (k, (a, c)) in portable.params.iter().zip(&avx2.params).enumerate() {
                    assert_eq!(bits(a), bits(c), "batch {b}: parameter {k}");
                }
                assert_eq!(bits(&portable.x), bits(&avx2.x), "batch {b}: x");
                assert_eq!(bits(&portable.h0), bits(&avx2.h0), "batch {b}: h0");
                assert!(portable.params.iter().flatten().any(|g| *g != 0.0));
            }
        }
    }
}
