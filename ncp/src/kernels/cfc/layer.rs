//! One layer of the wired CfC kernel: its fused heads `o = (W ⊙ mask)·z + b`, the state
//! update of each solution form, and their backward passes, all laid out `[row][B]`.

// Numerical kernels over parallel arrays read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::super::math::{fast_exp, sigmoid};

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // 1 − 2/(e^{2x} + 1), vectorisable; absolute error ~1e-7.
    1.0 - 2.0 / (fast_exp(2.0 * x) + 1.0)
}

/// One layer in kernel form.
pub(super) struct Layer {
    pub(super) inputs: usize,
    pub(super) hidden: usize,
    /// Rows of the fused heads: 4H (default/no_gate) or H (pure).
    pub(super) rows: usize,
    /// `(rows, inputs + hidden)`, masked.
    pub(super) w: Vec<f32>,
    /// `w` transposed, `(inputs + hidden, rows)`: one sample's forward runs down its columns.
    pub(super) wt: Vec<f32>,
    /// `(rows, inputs + hidden)`: 1 where the weight is used (mask for ff1/ff2, 1 elsewhere).
    pub(super) mask: Vec<f32>,
    pub(super) b: Vec<f32>,
    pub(super) w_tau: Vec<f32>,
    pub(super) a: Vec<f32>,
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

impl Layer {
    /// `o = W z + b` for every sample (`z` is `[cols][B]`, `o` `[rows][B]`), skipping zero weights.
    #[inline(always)]
    pub(super) fn affine(&self, z: &[f32], bn: usize) -> Vec<f32> {
        let (rows, cols) = (self.rows, self.inputs + self.hidden);
        let mut o = vec![0f32; rows * bn];
        if bn == 1 {
            // Per row the same additions in the same order as below, down the columns.
            o.copy_from_slice(&self.b);
            for (&zc, wc) in z.iter().zip(self.wt.chunks_exact(rows.max(1))) {
                for (ov, &w) in o.iter_mut().zip(wc) {
                    *ov = if w != 0.0 { *ov + w * zc } else { *ov };
                }
            }
        } else {
            for rr in 0..rows {
                let orow = &mut o[rr * bn..(rr + 1) * bn];
                orow.fill(self.b[rr]);
                for c in 0..cols {
                    let w = self.w[rr * cols + c];
                    if w != 0.0 {
                        for (ov, &zv) in orow.iter_mut().zip(&z[c * bn..(c + 1) * bn]) {
                            *ov += w * zv;
                        }
                    }
                }
            }
        }
        o
    }

    /// The layer's new state `hn` (`[hidden][B]`) from its pre-activations `o` and the timespans.
    #[inline(always)]
    pub(super) fn cell_update(&self, mode: CfcForm, o: &[f32], ts: &[f32], hn: &mut [f32]) {
        let (nh, bn) = (self.hidden, ts.len());
        for j in 0..nh {
            for bi in 0..bn {
                let k = j * bn + bi;
                hn[k] = match mode {
                    CfcForm::Pure => {
                        let f = o[k];
                        let e = fast_exp(-ts[bi] * (self.w_tau[j].abs() + f.abs()));
                        self.a[j] - self.a[j] * e * f
                    }
                    mode => {
                        let f1 = tanh(o[k]);
                        let f2 = tanh(o[(nh + j) * bn + bi]);
                        let g =
                            sigmoid(o[(2 * nh + j) * bn + bi] * ts[bi] + o[(3 * nh + j) * bn + bi]);
                        if mode == CfcForm::NoGate {
                            f1 + g * f2
                        } else {
                            f1 + g * (f2 - f1)
                        }
                    }
                };
            }
        }
    }

    /// Pure mode's backward through `h' = A − A·e·f`: the gradient of the pre-activations `o`
    /// from that of the new state `g`, adding into the sums of `A` and `w_tau`.
    #[inline(always)]
    pub(super) fn pure_backward(
        &self,
        g: &[f32],
        o: &[f32],
        ts: &[f32],
        acc_a: &mut [f32],
        acc_tau: &mut [f32],
    ) -> Vec<f32> {
        let bn = ts.len();
        let mut g_o = vec![0f32; self.rows * bn];
        for j in 0..self.hidden {
            let (wt, a) = (self.w_tau[j], self.a[j]);
            let span = j * bn..(j + 1) * bn;
            let (gj, oj) = (&g[span.clone()], &o[span.clone()]);
            let (aa, at) = (&mut acc_a[span.clone()], &mut acc_tau[span.clone()]);
            let go = &mut g_o[span];
            for bi in 0..bn {
                let (gh, f) = (gj[bi], oj[bi]);
                let e = fast_exp(-ts[bi] * (wt.abs() + f.abs()));
                aa[bi] += gh * (1.0 - e * f);
                go[bi] = gh * -a * e * (1.0 - ts[bi] * f.abs());
                at[bi] += gh * a * f * e * ts[bi] * sign(wt);
            }
        }
        g_o
    }

    /// The gated (and no-gate) modes' backward through `h' = f1 + σ·(f2 − f1)` (no gate:
    /// `f1 + σ·f2`), `σ = sigmoid(ta·t + tb)`: the gradient of the pre-activations `o`
    /// (`[f1 | f2 | ta | tb][B]`) from that of the new state `g`.
    #[inline(always)]
    pub(super) fn gated_backward(
        &self,
        mode: CfcForm,
        g: &[f32],
        o: &[f32],
        ts: &[f32],
    ) -> Vec<f32> {
        let (nh, bn) = (self.hidden, ts.len());
        let mut g_o = vec![0f32; self.rows * bn];
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
        g_o
    }

    /// The backward of `o = W z + b`: the gradient of `z` (`[cols][B]`) from that of `o`, adding
    /// into the sums of the used weights and of the biases.
    #[inline(always)]
    pub(super) fn affine_backward(
        &self,
        g_o: &[f32],
        z: &[f32],
        bn: usize,
        acc_w: &mut [f32],
        acc_b: &mut [f32],
    ) -> Vec<f32> {
        let (rows, cols) = (self.rows, self.inputs + self.hidden);
        let mut g_z = vec![0f32; cols * bn];
        if bn == 1 {
            // Per element the same additions in the same order as below, along the rows.
            for rr in 0..rows {
                let gv = g_o[rr];
                acc_b[rr] += gv;
                let span = rr * cols..(rr + 1) * cols;
                let (wr, mr) = (&self.w[span.clone()], &self.mask[span.clone()]);
                let aw = &mut acc_w[span];
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
            return g_z;
        }
        for rr in 0..rows {
            let go = &g_o[rr * bn..(rr + 1) * bn];
            for (ab, &gv) in acc_b[rr * bn..(rr + 1) * bn].iter_mut().zip(go) {
                *ab += gv;
            }
            for c in 0..cols {
                if self.mask[rr * cols + c] == 0.0 {
                    continue;
                }
                let w = self.w[rr * cols + c];
                let zc = &z[c * bn..(c + 1) * bn];
                let aw = &mut acc_w[(rr * cols + c) * bn..(rr * cols + c + 1) * bn];
                for bi in 0..bn {
                    aw[bi] += go[bi] * zc[bi];
                }
                for (gz, &gv) in g_z[c * bn..(c + 1) * bn].iter_mut().zip(go) {
                    *gz += w * gv;
                }
            }
        }
        g_z
    }
}

/// `±1` by the sign of `x`, as autograd's derivative of `|x|` (0 at 0).
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
