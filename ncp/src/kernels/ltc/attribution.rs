//! Why an LTC's potentials moved in one step: the semi-implicit update split exactly into the
//! part each synapse, each sensory synapse and each neuron's leak contributed.
//!
//! Each unfold solves `(cm_t + gleak + ε + Σ a)·v' = cm_t·v + gleak·vleak + Σ a·erev`, which is
//! `cm_t·(v' − v) = gleak·(vleak − v') − ε·v' + Σ a·(erev − v')`: the potential change of a
//! neuron is the sum of its synaptic currents `a·(erev − v')` and its leak current, over its
//! capacitance `cm_t`. A gap junction `g` between `a` and `b` adds `g·(v_b − v_a')` to `a`
//! (and the same the other way), its `g·v_b` in the numerator, its `g` in the denominator.
//! Summed over the step's unfolds, the contributions add up to the step's change of potential
//! exactly (to float rounding).

use super::super::math::sigmoid;
use super::params::LtcKernel;

/// One step of one sample, explained.
#[derive(Clone, Debug, PartialEq)]
pub struct StepAttribution {
    /// Potentials before the step `(N)`.
    pub start: Vec<f32>,
    /// Potentials after the step `(N)`.
    pub end: Vec<f32>,
    /// Potential change each internal synapse caused in its target, `(source neuron, target
    /// neuron, Δv)`, in the wiring's synapse order.
    pub synapses: Vec<(usize, usize, f32)>,
    /// Potential change each sensory synapse caused, `(input, target neuron, Δv)`.
    pub sensory: Vec<(usize, usize, f32)>,
    /// Potential change of each neuron's leak (toward `vleak`) `(N)`.
    pub leak: Vec<f32>,
    /// Potential change each gap junction caused, `(other end, neuron, Δv)`: two entries per
    /// junction `(a, b)` of the wiring, in its order, first into `b`, then into `a`.
    pub gaps: Vec<(usize, usize, f32)>,
}

impl LtcKernel {
    /// Runs one step of one sample — inputs `x (S)` as the network sees them, potentials
    /// `v0 (N)`, elapsed time `dt` — and returns where every neuron's change of potential came
    /// from. `end` equals the kernel's own step.
    pub fn attribute_step(&self, x: &[f32], v0: &[f32], dt: f32) -> StepAttribution {
        let (n, u_n) = (self.n, self.unfolds);
        let xm: Vec<f32> = (0..self.s)
            .map(|i| x[i] * self.input_w[i] + self.input_b[i])
            .collect();
        let q = &self.sens;
        let sens_a: Vec<f32> = (0..q.src.len())
            .map(|k| q.w[k] * sigmoid(q.sigma[k] * (xm[q.src[k]] - q.mu[k])))
            .collect();
        let cm_t: Vec<f32> = (0..n).map(|j| self.cm[j] * u_n as f32 / dt).collect();
        let mut v = v0.to_vec();
        let mut syn_dv = vec![0f32; self.syn.src.len()];
        let mut sens_dv = vec![0f32; q.src.len()];
        let mut leak_dv = vec![0f32; n];
        let mut gap_dv = vec![0f32; 2 * self.gaps.a.len()];
        let p = &self.syn;
        for _ in 0..u_n {
            let a: Vec<f32> = (0..p.src.len())
                .map(|k| p.w[k] * sigmoid(p.sigma[k] * (v[p.src[k]] - p.mu[k])))
                .collect();
            let mut num: Vec<f32> = (0..n).map(|j| self.gleak[j] * self.vleak[j]).collect();
            let mut den: Vec<f32> = (0..n).map(|j| self.gleak[j] + self.eps).collect();
            for k in 0..q.src.len() {
                num[q.dst[k]] += sens_a[k] * q.erev[k];
                den[q.dst[k]] += sens_a[k];
            }
            for k in 0..p.src.len() {
                num[p.dst[k]] += a[k] * p.erev[k];
                den[p.dst[k]] += a[k];
            }
            self.gaps.sums(&v, &mut num, &mut den);
            let next: Vec<f32> = (0..n)
                .map(|j| (cm_t[j] * v[j] + num[j]) / (cm_t[j] + den[j]))
                .collect();
            for k in 0..p.src.len() {
                let j = p.dst[k];
                syn_dv[k] += a[k] * (p.erev[k] - next[j]) / cm_t[j];
            }
            for k in 0..q.src.len() {
                let j = q.dst[k];
                sens_dv[k] += sens_a[k] * (q.erev[k] - next[j]) / cm_t[j];
            }
            let g = &self.gaps;
            for k in 0..g.a.len() {
                let (ja, jb, w) = (g.a[k], g.b[k], g.w[k]);
                gap_dv[2 * k] += w * (v[ja] - next[jb]) / cm_t[jb];
                gap_dv[2 * k + 1] += w * (v[jb] - next[ja]) / cm_t[ja];
            }
            for j in 0..n {
                leak_dv[j] +=
                    (self.gleak[j] * (self.vleak[j] - next[j]) - self.eps * next[j]) / cm_t[j];
            }
            v = next;
        }
        StepAttribution {
            start: v0.to_vec(),
            end: v,
            synapses: (0..p.src.len())
                .map(|k| (p.src[k], p.dst[k], syn_dv[k]))
                .collect(),
            sensory: (0..q.src.len())
                .map(|k| (q.src[k], q.dst[k], sens_dv[k]))
                .collect(),
            leak: leak_dv,
            gaps: (0..self.gaps.a.len())
                .flat_map(|k| {
                    let (a, b) = (self.gaps.a[k], self.gaps.b[k]);
                    [(a, b, gap_dv[2 * k]), (b, a, gap_dv[2 * k + 1])]
                })
                .collect(),
        }
    }
}
