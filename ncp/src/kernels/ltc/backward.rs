//! The LTC backward pass through time and the unfolds, accumulated per sample so every inner
//! loop runs over the batch.

use super::super::math::sigmoid;
use super::super::plumbing::{Gradients, Run};
use super::forward::synapse_sums;
use super::params::{softplus_grad, LtcKernel, Synapses};

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

/// Backpropagates the gradients of the outputs `gy [b][t][M]` and of the final state
/// `gh [b][N]` through time, exactly as autograd through the cell would.
pub(super) fn backward(p: &LtcKernel, r: &Run, trace: &[f32], gy: &[f32], gh: &[f32]) -> Gradients {
    let (n, s, m, u_n, bn) = (p.n, p.s, p.m, p.unfolds, r.b);
    let (ks, kn) = (p.sens.src.len(), p.syn.src.len());
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
        let v_end = &trace[base + u_n * step..base + (u_n + 1) * step];
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
            let v = &trace[base + u * step..base + (u + 1) * step];
            let v_new = &trace[base + (u + 1) * step..base + (u + 2) * step];
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
    Gradients {
        params: vec![
            g.gleak, g.vleak, g.cm, g.sigma, g.mu, g.w, g.erev, g.s_sigma, g.s_mu, g.s_w, g.s_erev,
            g.input_w, g.input_b, g.output_w, g.output_b,
        ],
        x: g.x,
        h0: g.h0,
    }
}
