//! The LTC kernel's parameter form: built from a spec of flat values, synapses gathered into
//! lists so the loops touch only the wiring's synapses.

use super::super::math::sigmoid;
use super::gaps::Gaps;

/// torch's softplus (beta 1, threshold 20).
pub(super) fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Derivative of torch's softplus.
pub(super) fn softplus_grad(x: f32) -> f32 {
    if x > 20.0 {
        1.0
    } else {
        sigmoid(x)
    }
}

/// Parameters gathered per synapse, positivity applied.
pub(super) struct Synapses {
    pub(super) src: Vec<usize>,
    pub(super) dst: Vec<usize>,
    /// Flat index into the `(rows, N)` parameter matrices (for scattering gradients).
    pub(super) flat: Vec<usize>,
    pub(super) raw_w: Vec<f32>,
    pub(super) w: Vec<f32>,
    pub(super) sigma: Vec<f32>,
    pub(super) mu: Vec<f32>,
    pub(super) erev: Vec<f32>,
}

impl Synapses {
    pub(super) fn gather(
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

/// An LTC cell's parameters in kernel form (positivity applied, synapses gathered).
pub struct LtcKernel {
    pub(super) n: usize,
    pub(super) s: usize,
    pub(super) m: usize,
    pub(super) unfolds: usize,
    pub(super) eps: f32,
    pub(super) implicit: bool,
    pub(super) syn: Synapses,
    pub(super) sens: Synapses,
    pub(super) gaps: Gaps,
    pub(super) raw_gleak: Vec<f32>,
    pub(super) gleak: Vec<f32>,
    pub(super) vleak: Vec<f32>,
    pub(super) raw_cm: Vec<f32>,
    pub(super) cm: Vec<f32>,
    pub(super) input_w: Vec<f32>,
    pub(super) input_b: Vec<f32>,
    pub(super) output_w: Vec<f32>,
    pub(super) output_b: Vec<f32>,
}

/// What an LTC kernel is built from: the wiring's synapse lists, the solver options and the
/// cell's raw parameter values (before positivity), flat in the tensors' layouts.
pub struct LtcSpec {
    /// Neurons `N`.
    pub n: usize,
    /// Inputs `S`.
    pub s: usize,
    /// Motor neurons `M`.
    pub m: usize,
    /// Semi-implicit sub-steps per step.
    pub unfolds: usize,
    /// Added to the denominator.
    pub eps: f32,
    /// Softplus positivity on `w, sensory_w, cm, gleak`.
    pub implicit: bool,
    /// Internal synapses `(src, dst, polarity)`.
    pub synapses: Vec<(usize, usize, i8)>,
    /// Sensory synapses `(input, dst, polarity)`.
    pub sensory_synapses: Vec<(usize, usize, i8)>,
    /// Gap junctions `(a, b)`, in the order of the `GAP_W` values.
    pub gap_junctions: Vec<(usize, usize)>,
    /// The raw parameter values indexed by [`param`]; None for a mapping the cell lacks.
    /// This is also the order of [`Gradients::params`].
    pub values: [Option<Vec<f32>>; param::COUNT],
}

/// Index of each LTC parameter in [`LtcSpec::values`] and [`Gradients::params`].
pub mod param {
    /// Leak conductance (N).
    pub const GLEAK: usize = 0;
    /// Leak potential (N).
    pub const VLEAK: usize = 1;
    /// Membrane capacitance (N).
    pub const CM: usize = 2;
    /// Synapse slopes (N×N).
    pub const SIGMA: usize = 3;
    /// Synapse midpoints (N×N).
    pub const MU: usize = 4;
    /// Synapse conductances (N×N).
    pub const W: usize = 5;
    /// Synapse reversal potentials (N×N).
    pub const EREV: usize = 6;
    /// Sensory slopes (S×N).
    pub const SENSORY_SIGMA: usize = 7;
    /// Sensory midpoints (S×N).
    pub const SENSORY_MU: usize = 8;
    /// Sensory conductances (S×N).
    pub const SENSORY_W: usize = 9;
    /// Sensory reversal potentials (S×N).
    pub const SENSORY_EREV: usize = 10;
    /// Input scale (S).
    pub const INPUT_W: usize = 11;
    /// Input shift (S).
    pub const INPUT_B: usize = 12;
    /// Output scale (M).
    pub const OUTPUT_W: usize = 13;
    /// Output shift (M).
    pub const OUTPUT_B: usize = 14;
    /// Gap-junction conductances (G); None for a wiring without junctions.
    pub const GAP_W: usize = 15;
    /// Number of parameters.
    pub const COUNT: usize = 16;
}

impl LtcKernel {
    /// Gathers the spec's parameters per synapse and applies positivity.
    pub fn new(spec: LtcSpec) -> Self {
        use param::*;
        let LtcSpec {
            n,
            s,
            m,
            unfolds,
            eps,
            implicit,
            synapses,
            sensory_synapses,
            gap_junctions,
            values,
        } = spec;
        let get = |k: usize| values[k].clone().unwrap_or_default();
        let pos = |v: Vec<f32>| -> Vec<f32> {
            if implicit {
                v.into_iter().map(softplus).collect()
            } else {
                v
            }
        };
        let syn = Synapses::gather(
            &synapses,
            n,
            &get(W),
            &get(SIGMA),
            &get(MU),
            &get(EREV),
            implicit,
        );
        let sens = Synapses::gather(
            &sensory_synapses,
            n,
            &get(SENSORY_W),
            &get(SENSORY_SIGMA),
            &get(SENSORY_MU),
            &get(SENSORY_EREV),
            implicit,
        );
        let opt = |k: usize, len: usize, fill: f32| match &values[k] {
            Some(v) => v.clone(),
            None => vec![fill; len],
        };
        let raw_gleak = get(GLEAK);
        let raw_cm = get(CM);
        let raw_gap = get(GAP_W);
        let gaps = Gaps {
            a: gap_junctions.iter().map(|g| g.0).collect(),
            b: gap_junctions.iter().map(|g| g.1).collect(),
            w: pos(raw_gap.clone()),
            raw_w: raw_gap,
        };
        Self {
            n,
            s,
            m,
            unfolds,
            eps,
            implicit,
            syn,
            sens,
            gaps,
            gleak: pos(raw_gleak.clone()),
            raw_gleak,
            vleak: get(VLEAK),
            cm: pos(raw_cm.clone()),
            raw_cm,
            input_w: opt(INPUT_W, s, 1.0),
            input_b: opt(INPUT_B, s, 0.0),
            output_w: opt(OUTPUT_W, m, 1.0),
            output_b: opt(OUTPUT_B, m, 0.0),
        }
    }

    /// Each synapse's activity `w·σ(sigma·(v_pre − mu))` for one sample: internal synapses
    /// from the potentials `v (N)`, sensory ones from the raw inputs `x (S)` through the input
    /// mapping; returned as `(src, dst, activity)` lists, internal then sensory.
    pub fn synapse_activity(
        &self,
        v: &[f32],
        x: &[f32],
    ) -> (Vec<SynapseActivity>, Vec<SynapseActivity>) {
        let act = |q: &Synapses, pre: &dyn Fn(usize) -> f32| -> Vec<SynapseActivity> {
            (0..q.src.len())
                .map(|k| {
                    let a = q.w[k] * sigmoid(q.sigma[k] * (pre(q.src[k]) - q.mu[k]));
                    (q.src[k], q.dst[k], a)
                })
                .collect()
        };
        let mapped = |i: usize| x[i] * self.input_w[i] + self.input_b[i];
        (act(&self.syn, &|i| v[i]), act(&self.sens, &mapped))
    }
}

impl LtcKernel {
    /// Each synapse's current into its target for one sample, `a·(erev − v_target)` with
    /// `a = w·σ(sigma·(v_pre − mu))`: potentials `v (N)`, raw inputs `x (S)` through the input
    /// mapping; `(src, dst, current)` lists, internal then sensory. Positive pushes the target
    /// up. What the audit panel draws each synapse's width from.
    pub fn synapse_currents(
        &self,
        v: &[f32],
        x: &[f32],
    ) -> (Vec<SynapseActivity>, Vec<SynapseActivity>) {
        let (internal, sensory) = self.synapse_activity(v, x);
        let current = |q: &Synapses, list: Vec<SynapseActivity>| -> Vec<SynapseActivity> {
            list.into_iter()
                .enumerate()
                .map(|(k, (s, d, a))| (s, d, a * (q.erev[k] - v.get(d).copied().unwrap_or(0.0))))
                .collect()
        };
        (current(&self.syn, internal), current(&self.sens, sensory))
    }
}

impl LtcKernel {
    /// Each gap junction's current for one sample's potentials `v (N)`: `(a, b, g·(v_a − v_b))`,
    /// the current into `b` (and its negative into `a`), in the wiring's junction order.
    pub fn gap_currents(&self, v: &[f32]) -> Vec<SynapseActivity> {
        let q = &self.gaps;
        (0..q.a.len())
            .map(|k| {
                let (a, b) = (q.a[k], q.b[k]);
                let (va, vb) = (v.get(a).copied(), v.get(b).copied());
                (a, b, q.w[k] * (va.unwrap_or(0.0) - vb.unwrap_or(0.0)))
            })
            .collect()
    }
}

/// `(source, destination, activity)` of one synapse.
pub type SynapseActivity = (usize, usize, f32);

/// Gradient buffers, one per parameter: while accumulating, per sample (`[element][B]`, the
/// initial state's `[n][B]`, the inputs' `[b][t][S]`); after `backward::finish`, dense shapes
/// as the tch variables (the initial state's `[b][N]`).
pub(super) struct Grads {
    pub(super) gleak: Vec<f32>,
    pub(super) vleak: Vec<f32>,
    pub(super) cm: Vec<f32>,
    pub(super) sigma: Vec<f32>,
    pub(super) mu: Vec<f32>,
    pub(super) w: Vec<f32>,
    pub(super) erev: Vec<f32>,
    pub(super) s_sigma: Vec<f32>,
    pub(super) s_mu: Vec<f32>,
    pub(super) s_w: Vec<f32>,
    pub(super) s_erev: Vec<f32>,
    pub(super) input_w: Vec<f32>,
    pub(super) input_b: Vec<f32>,
    pub(super) output_w: Vec<f32>,
    pub(super) output_b: Vec<f32>,
    pub(super) gap_w: Vec<f32>,
    pub(super) x: Vec<f32>,
    pub(super) h0: Vec<f32>,
}

impl Grads {
    /// Zeroed per-sample buffers for a batch of `bn` samples of `l` steps through `p`.
    pub(super) fn zeros(p: &LtcKernel, bn: usize, l: usize) -> Grads {
        let (n, s, m) = (p.n, p.s, p.m);
        let (ks, kn) = (p.sens.src.len(), p.syn.src.len());
        let z = |len| vec![0f32; len * bn];
        Grads {
            gleak: z(n),
            vleak: z(n),
            cm: z(n),
            sigma: z(kn),
            mu: z(kn),
            w: z(kn),
            erev: z(kn),
            s_sigma: z(ks),
            s_mu: z(ks),
            s_w: z(ks),
            s_erev: z(ks),
            input_w: z(s),
            input_b: z(s),
            output_w: z(m),
            output_b: z(m),
            gap_w: z(p.gaps.a.len()),
            x: z(l * s),
            h0: z(n),
        }
    }
}

/// A small random LTC kernel and a run of `b` samples through it (with episode starts), for
/// the tests that compare the kernel's builds and paths with each other.
#[cfg(test)]
pub(super) fn test_kernel_and_run(b: usize) -> (LtcKernel, super::super::plumbing::Run) {
    // A fixed linear congruential sequence in [-1, 1): no RNG crate needed.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let (n, s, m, l) = (10, 4, 3, 6);
    let mut vec_of = |len: usize, scale: f32, shift: f32| -> Vec<f32> {
        (0..len).map(|_| next() * scale + shift).collect()
    };
    let polarity = |k: usize| if k.is_multiple_of(3) { -1 } else { 1 };
    let synapses = (0..n * n)
        .filter(|&k: &usize| k.is_multiple_of(2) || k.is_multiple_of(7))
        .map(|k| (k / n, k % n, polarity(k)))
        .collect();
    let sensory_synapses = (0..s * n)
        .filter(|k| k % 3 != 1)
        .map(|k| (k / n, k % n, polarity(k)))
        .collect();
    let values = [
        Some(vec_of(n, 0.5, 1.0)),
        Some(vec_of(n, 0.5, 0.0)),
        Some(vec_of(n, 0.5, 1.0)),
        Some(vec_of(n * n, 2.0, 5.0)),
        Some(vec_of(n * n, 0.2, 0.4)),
        Some(vec_of(n * n, 0.5, 0.5)),
        Some(vec_of(n * n, 1.0, 0.0)),
        Some(vec_of(s * n, 2.0, 5.0)),
        Some(vec_of(s * n, 0.2, 0.4)),
        Some(vec_of(s * n, 0.5, 0.5)),
        Some(vec_of(s * n, 1.0, 0.0)),
        Some(vec_of(s, 0.5, 1.0)),
        Some(vec_of(s, 0.5, 0.0)),
        Some(vec_of(m, 0.5, 1.0)),
        Some(vec_of(m, 0.5, 0.0)),
        Some(vec_of(4, 0.5, 0.0)),
    ];
    let kernel = LtcKernel::new(LtcSpec {
        n,
        s,
        m,
        unfolds: 6,
        eps: 1e-8,
        implicit: true,
        synapses,
        sensory_synapses,
        gap_junctions: vec![(0, 3), (2, 7), (3, 9), (1, 8)],
        values,
    });
    let run = super::super::plumbing::Run {
        b,
        l,
        s,
        x: vec_of(b * l * s, 2.0, 0.0),
        h0: vec_of(b * n, 0.5, 0.0),
        ts: vec_of(b * l, 0.5, 1.0),
        starts: Some((0..b * l).map(|k| k % 5 == 3).collect()),
    };
    (kernel, run)
}

/// Runs one of the forward builds on fresh buffers and returns `(y, h, trace)`, for the tests
/// that compare builds.
#[cfg(test)]
pub(super) fn traced_forward(
    p: &LtcKernel,
    r: &super::super::plumbing::Run,
    forward: impl FnOnce(
        &LtcKernel,
        &super::super::plumbing::Run,
        &mut [f32],
        &mut [f32],
        Option<&mut super::trace::Trace>,
    ),
) -> (Vec<f32>, Vec<f32>, super::trace::Trace) {
    let mut trace = super::trace::Trace::default();
    let (mut y, mut h) = (vec![0f32; r.b * r.l * p.m], vec![0f32; r.b * p.n]);
    forward(p, r, &mut y, &mut h, Some(&mut trace));
    (y, h, trace)
}

/// The bit patterns of `v`: what "bit for bit" compares.
#[cfg(test)]
pub(super) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
