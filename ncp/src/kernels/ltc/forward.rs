//! The LTC forward pass: the fused semi-implicit solver, all samples at once.

use super::super::lanes::LANES;
use super::super::math::sigmoid;
use super::super::plumbing::Run;
use super::params::{LtcKernel, Synapses};
use super::sample;
use super::trace::Trace;

/// Runs the forward pass for the whole batch at once: states are kept neuron-major `[n][B]`
/// so that the per-synapse work is a contiguous loop over samples (vectorised by the
/// compiler). `trace` (if given) receives every sub-step state and synapse sigmoid.
/// Batches under [`LANES`] samples take the per-sample path of [`sample`] instead.
pub(super) fn forward(
    p: &LtcKernel,
    r: &Run,
    y: &mut [f32],
    h: &mut [f32],
    trace: Option<&mut Trace>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { forward_avx2(p, r, y, h, trace) };
    }
    forward_body(p, r, y, h, trace)
}

/// [`forward`] compiled for AVX2: the batch loops take 8 samples per instruction instead of 4,
/// with the same operations per sample (no FMA), so results are bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_avx2(p: &LtcKernel, r: &Run, y: &mut [f32], h: &mut [f32], trace: Option<&mut Trace>) {
    forward_body(p, r, y, h, trace)
}

#[inline(always)]
fn forward_body(
    p: &LtcKernel,
    r: &Run,
    y: &mut [f32],
    h: &mut [f32],
    mut trace: Option<&mut Trace>,
) {
    if r.b < LANES {
        return sample::forward(p, r, y, h, trace);
    }
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
        step_inputs(p, r, t, &mut xm, &mut inv_dt, &mut cm_t);
        synapse_sums(&p.sens, &xm, bn, &mut snum, &mut sden, true, None);
        if let Some(tr) = trace.as_deref_mut() {
            tr.states.extend_from_slice(&v);
        }
        for _ in 0..u_n {
            num.copy_from_slice(&snum);
            den.copy_from_slice(&sden);
            let sigmoids = trace.as_deref_mut().map(|tr| {
                let start = tr.sigmoids.len();
                tr.sigmoids.resize(start + p.syn.src.len() * bn, 0.0);
                &mut tr.sigmoids[start..]
            });
            synapse_sums(&p.syn, &v, bn, &mut num, &mut den, false, sigmoids);
            super::gaps::batch_sums(&p.gaps, &v, bn, &mut num, &mut den);
            solver_step(p, &leak, bn, [&v, &cm_t, &num, &den], &mut next);
            std::mem::swap(&mut v, &mut next);
            if let Some(tr) = trace.as_deref_mut() {
                tr.states.extend_from_slice(&v);
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

/// Step `t`'s inputs for every sample: the mapped inputs `xm` (`[s][B]`), the sub-step rates
/// `inv_dt` (unfolds per timespan) and the capacitances over the sub-step `cm_t` (`[n][B]`).
#[inline(always)]
pub(super) fn step_inputs(
    p: &LtcKernel,
    r: &Run,
    t: usize,
    xm: &mut [f32],
    inv_dt: &mut [f32],
    cm_t: &mut [f32],
) {
    let (n, s, bn) = (p.n, p.s, r.b);
    for bi in 0..bn {
        let xo = (bi * r.l + t) * s;
        for i in 0..s {
            xm[i * bn + bi] = r.x[xo + i] * p.input_w[i] + p.input_b[i];
        }
        inv_dt[bi] = p.unfolds as f32 / r.ts[bi * r.l + t];
    }
    for j in 0..n {
        for (c, &idt) in cm_t[j * bn..(j + 1) * bn].iter_mut().zip(&*inv_dt) {
            *c = p.cm[j] * idt;
        }
    }
}

/// One semi-implicit sub-step for every neuron and sample (`[n][B]`), from the state `v`, the
/// capacitances over the sub-step `cm_t` and the synapses' sums `num`, `den`:
/// `next = (cm_t·v + gleak·vleak + num) / (cm_t + gleak + eps + den)`.
#[inline(always)]
fn solver_step(
    p: &LtcKernel,
    leak: &[f32],
    bn: usize,
    [v, cm_t, num, den]: [&[f32]; 4],
    next: &mut [f32],
) {
    for j in 0..p.n {
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
}

/// Adds every synapse's activation (and activation × erev) into the destination rows, for
/// all samples: `den[dst] += w·σ(sigma·(pre[src] − mu))`, `num[dst] += … · erev`.
/// `zero` clears the sums first; `sigmoids` (if given, `kn·B` long) receives every σ, `[k][B]`.
#[inline(always)]
pub(super) fn synapse_sums(
    q: &Synapses,
    pre: &[f32],
    bn: usize,
    num: &mut [f32],
    den: &mut [f32],
    zero: bool,
    mut sigmoids: Option<&mut [f32]>,
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
        match sigmoids.as_deref_mut() {
            Some(out) => {
                for (((nm, dn), &x), o) in num_j
                    .iter_mut()
                    .zip(den_j.iter_mut())
                    .zip(pre_i)
                    .zip(&mut out[k * bn..(k + 1) * bn])
                {
                    let sgm = sigmoid(sg * (x - mu));
                    *o = sgm;
                    let a = w * sgm;
                    *nm += a * e;
                    *dn += a;
                }
            }
            None => {
                for ((nm, dn), &x) in num_j.iter_mut().zip(den_j.iter_mut()).zip(pre_i) {
                    let a = w * sigmoid(sg * (x - mu));
                    *nm += a * e;
                    *dn += a;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::params::{bits, test_kernel_and_run, traced_forward};
    use super::forward_body;

    /// The AVX2 build gives the portable build's outputs, states and trace to the bit.
    #[test]
    fn avx2_build_equals_the_portable_build_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for b in [11, 3] {
                let (p, r) = test_kernel_and_run(b);
                let run = |avx2: bool| {
                    let (y, h, trace) = if avx2 {
                        traced_forward(&p, &r, |p, r, y, h, t| {
                            // SAFETY: the CPU has AVX2 (checked above).
                            unsafe { super::forward_avx2(p, r, y, h, t) }
                        })
                    } else {
                        traced_forward(&p, &r, forward_body)
                    };
                    [
                        bits(&y),
                        bits(&h),
                        bits(&trace.states),
                        bits(&trace.sigmoids),
                    ]
                };
                assert_eq!(run(false), run(true), "batch {b}");
            }
        }
    }
}
