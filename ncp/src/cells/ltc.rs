//! The liquid time-constant (LTC) cell: each neuron a leaky capacitor, each synapse a sigmoid
//! conductance pulling toward its reversal potential, solved by ncps's fused semi-implicit
//! Euler step (`ode_unfolds` sub-steps per call). This is the autograd version (any device);
//! the crate's `kernels` compute the same on the CPU without libtorch's per-op cost.
//!
//! Per call, with `f` = softplus (implicit constraints) or identity (explicit):
//! `v ← (cm_t·v + f(gleak)·vleak + Σ a·erev + Σ sa·serev) / (cm_t + f(gleak) + Σ a + Σ sa + ε)`,
//! `cm_t = f(cm)·unfolds/Δt`, `a = f(w)·σ(sigma·(v_src − mu))·mask` recomputed per unfold,
//! sensory terms once per call. A gap junction `g` between `a` and `b` adds `g·v_b` to `a`'s
//! numerator and `g` to its denominator (and the same the other way): the current
//! `g·(v_b − v_a)`, its `−g·v_a` part implicit like the synapses' `−a·v`. `Δt` is a scalar or
//! one value per sample `(B, 1)`.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::interchange::{uniform, NamedTensors};
use crate::wiring::Wiring;

/// How inputs or outputs are mapped: elementwise `x·w + b`, `x·w`, or not at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// `x ⊙ w + b` (ncps default).
    #[default]
    Affine,
    /// `x ⊙ w`.
    Linear,
    /// Identity, no parameters.
    None,
}

/// LTC solver and parameterisation options (the ncps `LTCCell` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LtcOptions {
    /// Input mapping.
    pub input_mapping: Mapping,
    /// Output mapping.
    pub output_mapping: Mapping,
    /// Semi-implicit sub-steps per call.
    pub ode_unfolds: usize,
    /// Added to the denominator.
    pub epsilon: f64,
    /// Softplus on `w, sensory_w, cm, gleak, gap_w` at every use (true), or clamp after each
    /// optimizer step via [`LtcCell::apply_weight_constraints`] (false).
    pub implicit_constraints: bool,
}

impl Default for LtcOptions {
    fn default() -> Self {
        Self {
            input_mapping: Mapping::Affine,
            output_mapping: Mapping::Affine,
            ode_unfolds: 6,
            epsilon: 1e-8,
            implicit_constraints: true,
        }
    }
}

/// An LTC cell over a built wiring; tensors named as ncps's `LTCCell` parameters.
pub struct LtcCell {
    /// Leak conductance (N).
    pub gleak: Tensor,
    /// Leak reversal potential (N).
    pub vleak: Tensor,
    /// Membrane capacitance (N).
    pub cm: Tensor,
    /// Synapse sigmoid slopes (N, N).
    pub sigma: Tensor,
    /// Synapse sigmoid midpoints (N, N).
    pub mu: Tensor,
    /// Synapse max conductances (N, N).
    pub w: Tensor,
    /// Synapse reversal potentials (N, N), initialised to the polarities.
    pub erev: Tensor,
    /// Sensory sigmoid slopes (S, N).
    pub sensory_sigma: Tensor,
    /// Sensory sigmoid midpoints (S, N).
    pub sensory_mu: Tensor,
    /// Sensory max conductances (S, N).
    pub sensory_w: Tensor,
    /// Sensory reversal potentials (S, N).
    pub sensory_erev: Tensor,
    /// Constant 0/1 mask of internal synapses (N, N).
    pub sparsity_mask: Tensor,
    /// Constant 0/1 mask of sensory synapses (S, N).
    pub sensory_sparsity_mask: Tensor,
    /// Input scale (S), affine/linear mappings only.
    pub input_w: Option<Tensor>,
    /// Input shift (S), affine only.
    pub input_b: Option<Tensor>,
    /// Output scale (M), affine/linear only.
    pub output_w: Option<Tensor>,
    /// Output shift (M), affine only.
    pub output_b: Option<Tensor>,
    /// Gap-junction conductances (G), one per junction of the wiring (in its order); None
    /// for a wiring without junctions, which then has exactly ncps's parameters.
    pub gap_w: Option<Tensor>,
    /// Flat indices `a·N + b` and `b·N + a` of each junction in the `(N, N)` conductance matrix.
    gap_index: Option<(Tensor, Tensor)>,
    /// Solver options.
    pub options: LtcOptions,
    wiring: Wiring,
}

/// The wiring's adjacency as float tensors: `(mask, polarity)` for internal and sensory synapses.
pub fn wiring_tensors(wiring: &Wiring) -> (Tensor, Tensor, Tensor, Tensor) {
    let n = wiring.units() as i64;
    let s = wiring.input_dim().unwrap_or(0) as i64;
    let adj: Vec<f32> = wiring.adjacency().iter().map(|&v| v as f32).collect();
    let sadj: Vec<f32> = wiring
        .sensory_adjacency()
        .iter()
        .map(|&v| v as f32)
        .collect();
    let adj = Tensor::from_slice(&adj).view([n, n]);
    let sadj = Tensor::from_slice(&sadj).view([s, n]);
    (adj.abs(), adj, sadj.abs(), sadj)
}

impl LtcCell {
    /// Creates the cell's variables under `path` (ncps keys `prefix` + name) with ncps's init.
    /// The wiring must be built.
    pub fn new(
        path: &nn::Path,
        prefix: &str,
        wiring: &Wiring,
        options: LtcOptions,
        named: &mut NamedTensors,
    ) -> Self {
        let n = wiring.units() as i64;
        let s = wiring.input_dim().unwrap_or(0) as i64;
        let m = wiring.output_dim() as i64;
        let (mask, erev, smask, serev) = wiring_tensors(wiring);
        let mut v = |name: &str, t: Tensor| named.var(path, prefix, name, t);
        let gleak = v("gleak", uniform(&[n], 0.001, 1.0));
        let vleak = v("vleak", uniform(&[n], -0.2, 0.2));
        let cm = v("cm", uniform(&[n], 0.4, 0.6));
        let sigma = v("sigma", uniform(&[n, n], 3.0, 8.0));
        let mu = v("mu", uniform(&[n, n], 0.3, 0.8));
        let w = v("w", uniform(&[n, n], 0.001, 1.0));
        let erev = v("erev", erev);
        let sensory_sigma = v("sensory_sigma", uniform(&[s, n], 3.0, 8.0));
        let sensory_mu = v("sensory_mu", uniform(&[s, n], 0.3, 0.8));
        let sensory_w = v("sensory_w", uniform(&[s, n], 0.001, 1.0));
        let sensory_erev = v("sensory_erev", serev);
        let sparsity_mask = named.constant(path, prefix, "sparsity_mask", mask);
        let sensory_sparsity_mask = named.constant(path, prefix, "sensory_sparsity_mask", smask);
        let mut v = |name: &str, t: Tensor| named.var(path, prefix, name, t);
        let scale = |map: Mapping| map != Mapping::None;
        let input_w = scale(options.input_mapping).then(|| v("input_w", Tensor::ones([s], FLOAT)));
        let input_b = (options.input_mapping == Mapping::Affine)
            .then(|| v("input_b", Tensor::zeros([s], FLOAT)));
        let output_w =
            scale(options.output_mapping).then(|| v("output_w", Tensor::ones([m], FLOAT)));
        let output_b = (options.output_mapping == Mapping::Affine)
            .then(|| v("output_b", Tensor::zeros([m], FLOAT)));
        // Created last, so that the other parameters draw the same initial values as ncps.
        let gaps = wiring.gap_junctions();
        let gap_w =
            (!gaps.is_empty()).then(|| v("gap_w", uniform(&[gaps.len() as i64], 0.001, 1.0)));
        let gap_index = (!gaps.is_empty()).then(|| {
            let flat = |f: &dyn Fn(&(usize, usize)) -> i64| {
                let idx: Vec<i64> = gaps.iter().map(f).collect();
                Tensor::from_slice(&idx).to_device(path.device())
            };
            (
                flat(&|&(a, b)| (a as i64) * n + b as i64),
                flat(&|&(a, b)| (b as i64) * n + a as i64),
            )
        });
        Self {
            gleak,
            vleak,
            cm,
            sigma,
            mu,
            w,
            erev,
            sensory_sigma,
            sensory_mu,
            sensory_w,
            sensory_erev,
            sparsity_mask,
            sensory_sparsity_mask,
            input_w,
            input_b,
            output_w,
            output_b,
            gap_w,
            gap_index,
            options,
            wiring: wiring.clone(),
        }
    }

    /// The (built) wiring this cell follows.
    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    fn positive(&self, t: &Tensor) -> Tensor {
        if self.options.implicit_constraints {
            t.softplus()
        } else {
            t.shallow_clone()
        }
    }

    /// Applies the input mapping to `(B, S)` inputs.
    pub fn map_inputs(&self, x: &Tensor) -> Tensor {
        affine(x, self.input_w.as_ref(), self.input_b.as_ref())
    }

    /// Motor neurons of the state `(B, N)` through the output mapping → `(B, M)`.
    pub fn map_outputs(&self, v: &Tensor) -> Tensor {
        let m = self.wiring.output_dim() as i64;
        let out = if m < self.wiring.units() as i64 {
            v.narrow(1, 0, m)
        } else {
            v.shallow_clone()
        };
        affine(&out, self.output_w.as_ref(), self.output_b.as_ref())
    }

    /// One step: inputs `(B, S)`, state `(B, N)`, elapsed time (scalar tensor or `(B, 1)`)
    /// → `(outputs (B, M), new state (B, N))`.
    pub fn step(&self, inputs: &Tensor, state: &Tensor, elapsed: &Tensor) -> (Tensor, Tensor) {
        let x = self.map_inputs(inputs);
        let sw = self.positive(&self.sensory_w);
        let sact = sw
            * (&self.sensory_sigma * (x.unsqueeze(-1) - &self.sensory_mu)).sigmoid()
            * &self.sensory_sparsity_mask;
        // Sums keep the parameters' kind: f32 as trained, f64 for gradient checks.
        let snum = (&sact * &self.sensory_erev).sum_dim_intlist(1, false, sact.kind());
        let sden = sact.sum_dim_intlist(1, false, sact.kind());
        let unfolds = self.options.ode_unfolds as f64;
        let cm_t = self.positive(&self.cm) / (elapsed / unfolds);
        let w = self.positive(&self.w);
        let gleak = self.positive(&self.gleak);
        let leak = &gleak * &self.vleak;
        let gaps = self.gap_matrix();
        let mut v = state.shallow_clone();
        for _ in 0..self.options.ode_unfolds {
            let act =
                &w * (&self.sigma * (v.unsqueeze(-1) - &self.mu)).sigmoid() * &self.sparsity_mask;
            let num = (&act * &self.erev).sum_dim_intlist(1, false, act.kind()) + &snum;
            let den = act.sum_dim_intlist(1, false, act.kind()) + &sden;
            // Gap junctions: `g·(v_other − v)` into both ends, the `−g·v` part implicit.
            let (num, den) = match &gaps {
                Some((g, g_den)) => (num + v.matmul(g), den + g_den),
                None => (num, den),
            };
            let numerator = &cm_t * &v + &leak + num;
            let denominator = &cm_t + &gleak + den;
            v = numerator / (denominator + self.options.epsilon);
        }
        (self.map_outputs(&v), v)
    }

    /// The gap junctions' symmetric `(N, N)` conductance matrix (positivity applied) and its
    /// column sums `(N)`, each neuron's total junction conductance; None without junctions.
    fn gap_matrix(&self) -> Option<(Tensor, Tensor)> {
        let (gap_w, (ab, ba)) = (self.gap_w.as_ref()?, self.gap_index.as_ref()?);
        let n = self.wiring.units() as i64;
        let g = self.positive(gap_w);
        let flat = Tensor::zeros([n * n], (g.kind(), g.device()))
            .index_add(0, ab, &g)
            .index_add(0, ba, &g);
        let matrix = flat.view([n, n]);
        let total = matrix.sum_dim_intlist(0, false, g.kind());
        Some((matrix, total))
    }

    /// Explicit-constraint mode: clamps `w, sensory_w, cm, gleak, gap_w` at 0 (call after each
    /// optimizer step). A no-op with implicit (softplus) constraints, as in ncps.
    pub fn apply_weight_constraints(&self) {
        if self.options.implicit_constraints {
            return;
        }
        tch::no_grad(|| {
            let gap = self.gap_w.iter();
            for t in [&self.w, &self.sensory_w, &self.cm, &self.gleak]
                .into_iter()
                .chain(gap)
            {
                let mut t = t.shallow_clone();
                let _ = t.clamp_min_(0.0);
            }
        });
    }
}

/// `x ⊙ w + b` with either part optional (never in place: `x` may be the caller's tensor).
fn affine(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>) -> Tensor {
    let scaled = match w {
        Some(w) => x * w,
        None => x.shallow_clone(),
    };
    match b {
        Some(b) => scaled + b,
        None => scaled,
    }
}

const FLOAT: (Kind, tch::Device) = (Kind::Float, tch::Device::Cpu);
