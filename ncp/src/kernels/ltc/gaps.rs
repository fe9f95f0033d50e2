//! Gap junctions in the LTC kernel: a junction `g` between `a` and `b` adds `g·v_b` to `a`'s
//! numerator and `g` to its denominator, and the same the other way. Each function has a
//! per-sample form (methods of [`Gaps`], for the per-sample path) and a batch-wide one over
//! `[row][B]` buffers, with the same operations per sample in the same order.

/// Gap junctions gathered: the two ends of each and its conductance, raw and with positivity
/// applied.
#[derive(Default)]
pub(super) struct Gaps {
    pub(super) a: Vec<usize>,
    pub(super) b: Vec<usize>,
    pub(super) raw_w: Vec<f32>,
    pub(super) w: Vec<f32>,
}

impl Gaps {
    /// Adds every junction's current into both ends for one sample's potentials `v`:
    /// `num[a] += g·v[b]`, `den[a] += g` and the same the other way, in junction order.
    #[inline(always)]
    pub(super) fn sums(&self, v: &[f32], num: &mut [f32], den: &mut [f32]) {
        for k in 0..self.a.len() {
            let (a, b, g) = (self.a[k], self.b[k], self.w[k]);
            num[a] += g * v[b];
            den[a] += g;
            num[b] += g * v[a];
            den[b] += g;
        }
    }

    /// Adds every junction's conductance into both ends' denominators, as [`Gaps::sums`] does.
    #[inline(always)]
    pub(super) fn dens(&self, den: &mut [f32]) {
        for k in 0..self.a.len() {
            let (a, b, g) = (self.a[k], self.b[k], self.w[k]);
            den[a] += g;
            den[b] += g;
        }
    }

    /// One sample's backward through [`Gaps::sums`] at the potentials `v`, from the gradients
    /// of the sums `g_num`, `g_den`: accumulates each conductance's gradient into `acc` and adds
    /// into the potentials' gradient `g_v`.
    #[inline(always)]
    pub(super) fn backward(
        &self,
        [v, g_num, g_den]: [&[f32]; 3],
        acc: &mut [f32],
        g_v: &mut [f32],
    ) {
        for k in 0..self.a.len() {
            let (a, b, g) = (self.a[k], self.b[k], self.w[k]);
            acc[k] += g_num[a] * v[b] + g_den[a] + g_num[b] * v[a] + g_den[b];
            g_v[b] += g * g_num[a];
            g_v[a] += g * g_num[b];
        }
    }
}

/// Adds every gap junction's current into both ends for all samples (`[n][B]`), per sample in
/// the order of [`Gaps::sums`]: `num[a] += g·v[b]`, `den[a] += g`, and back.
#[inline(always)]
pub(super) fn batch_sums(q: &Gaps, v: &[f32], bn: usize, num: &mut [f32], den: &mut [f32]) {
    for k in 0..q.a.len() {
        let (a, b, g) = (q.a[k] * bn, q.b[k] * bn, q.w[k]);
        for bi in 0..bn {
            num[a + bi] += g * v[b + bi];
            den[a + bi] += g;
            num[b + bi] += g * v[a + bi];
            den[b + bi] += g;
        }
    }
}

/// Adds every junction's conductance into both ends' denominators for all samples
/// (`[n][B]`), as [`batch_sums`] does.
#[inline(always)]
pub(super) fn batch_dens(q: &Gaps, bn: usize, den: &mut [f32]) {
    for k in 0..q.a.len() {
        let (a, b, g) = (q.a[k] * bn, q.b[k] * bn, q.w[k]);
        for bi in 0..bn {
            den[a + bi] += g;
            den[b + bi] += g;
        }
    }
}

/// The gap junctions' backward for every sample (`[row][B]`), as [`Gaps::backward`] does it
/// per sample: from the potentials before the unfold `v` and the gradients of the sums, into
/// the conductances' accumulators (`[k][B]`) and `gv_prev`.
#[inline(always)]
pub(super) fn batch_backward(
    q: &Gaps,
    bn: usize,
    [v, g_num, g_den]: [&[f32]; 3],
    acc: &mut [f32],
    gv_prev: &mut [f32],
) {
    for k in 0..q.a.len() {
        let (a, b, g) = (q.a[k] * bn, q.b[k] * bn, q.w[k]);
        for bi in 0..bn {
            let (gna, gnb) = (g_num[a + bi], g_num[b + bi]);
            acc[k * bn + bi] += gna * v[b + bi] + g_den[a + bi] + gnb * v[a + bi] + g_den[b + bi];
            gv_prev[b + bi] += g * gna;
            gv_prev[a + bi] += g * gnb;
        }
    }
}
