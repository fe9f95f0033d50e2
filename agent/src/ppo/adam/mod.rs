//! Adam with its state in plain tensors, so a checkpoint can save and `--resume` can restore
//! the moments exactly (libtorch's optimizer state is not reachable through tch).
//!
//! The moments of all parameters live in two flat buffers, and a step updates them with a
//! handful of operations on the whole buffer instead of a dozen per parameter tensor: on the
//! small networks of an NCP policy the per-operation dispatch, not the arithmetic, is the cost.
//! Once every parameter has a gradient, the gradients move into a flat buffer too (each `.grad`
//! becomes a view of it, and autograd keeps adding into it in place), so zeroing them is one
//! operation and a step reads them without gathering. On the CPU the step then runs as plain
//! loops over the flat buffers (libtorch's square root aside) and writes the parameters in
//! place; elsewhere it lands in a flat buffer whose per-parameter views are made once and are
//! subtracted from the parameters. Every element sees exactly the operations it would see
//! tensor by tensor, so the step is the same to the last bit. The gradients' global norm
//! (for clipping) is a host loop too, which agrees with libtorch's to float rounding
//! ([`crate::ppo::host`]); [`Adam::host_loops`] turns both loops off.

use tch::{Kind, Tensor};

use super::host::{self, host_f32, host_slice, host_slice_mut};

/// Adam as `torch.optim.Adam` computes it (bias-corrected, eps added after the square root).
pub struct Adam {
    /// Learning rate (the trainer anneals it).
    pub lr: f64,
    /// Decay rates of the first and second moments.
    pub betas: (f64, f64),
    /// Added to the second moment's square root.
    pub eps: f64,
    /// Number of steps taken; the bias corrections depend on it.
    pub step: i64,
    /// First moments of every parameter, flat, in parameter order.
    exp_avg: Tensor,
    /// Second moments, laid out like `exp_avg`.
    exp_avg_sq: Tensor,
    /// Each parameter's shape and its `(offset, length)` in the flat buffers.
    layout: Vec<(Vec<i64>, i64, i64)>,
    /// The step subtracted from the parameters, laid out like `exp_avg`.
    delta: Tensor,
    /// Parameter `i`'s slice of `delta`, shaped like the parameter.
    delta_views: Vec<Tensor>,
    /// The gradients, flat, once every parameter has one: each `.grad` is a view into it.
    grads: Option<Tensor>,
    /// Whether, on the CPU, the gradients' norm and the step may run as host loops
    /// ([`Adam::host_step`], [`crate::ppo::host`]); off (`ppo.host_loops = false`) they are
    /// libtorch's operations, the step to the same bits and the norm to float rounding.
    pub host_loops: bool,
}

impl Adam {
    /// Zeroed moments shaped like `params`.
    pub fn new(params: &[Tensor], lr: f64, eps: f64) -> Self {
        let mut layout = Vec::with_capacity(params.len());
        let mut offset = 0;
        for p in params {
            let n = p.numel() as i64;
            layout.push((p.size(), offset, n));
            offset += n;
        }
        let options = params
            .first()
            .map_or((Kind::Float, tch::Device::Cpu), |p| (p.kind(), p.device()));
        let delta = Tensor::zeros([offset], options);
        let delta_views = layout
            .iter()
            .map(|(shape, offset, n)| delta.narrow(0, *offset, *n).view(shape.as_slice()))
            .collect();
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps,
            step: 0,
            exp_avg: Tensor::zeros([offset], options),
            exp_avg_sq: Tensor::zeros([offset], options),
            layout,
            delta,
            delta_views,
            grads: None,
            host_loops: true,
        }
    }

    /// Zeroes the parameters' gradients before a backward pass (one operation once they live
    /// in the flat buffer; parameters without a gradient keep none, as `zero_grad` does).
    pub fn zero_grad(&mut self, params: &[Tensor]) {
        match self.bound_grads(params) {
            Some(grads) => {
                let _ = grads.shallow_clone().zero_();
            }
            None => {
                for p in params {
                    p.shallow_clone().zero_grad();
                }
            }
        }
    }

    /// The flat gradient buffer, if every parameter's `.grad` is still the view into it.
    fn bound_grads(&self, params: &[Tensor]) -> Option<&Tensor> {
        let grads = self.grads.as_ref()?;
        let base = grads.data_ptr() as usize;
        let size = grads.kind().elt_size_in_bytes();
        let bound = params.iter().zip(&self.layout).all(|(p, (_, offset, _))| {
            let g = p.grad();
            g.defined() && g.data_ptr() as usize == base + *offset as usize * size
        });
        bound.then_some(grads)
    }

    /// Moves the gradients into one flat buffer and makes each `.grad` a view of its slice
    /// (values unchanged); `grads` are the parameters' current, all defined, gradients.
    fn bind_grads(&mut self, grads: &[Tensor]) -> Tensor {
        let flat = tch::no_grad(|| {
            let pieces: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
            Tensor::cat(&pieces, 0)
        });
        for (i, g) in grads.iter().enumerate() {
            g.shallow_clone().set_data(&self.view(&flat, i));
        }
        self.grads = Some(flat.shallow_clone());
        flat
    }

    /// Parameter `i`'s slice of a flat buffer, shaped like the parameter (a view: writing to
    /// it writes the buffer).
    fn view(&self, flat: &Tensor, i: usize) -> Tensor {
        let (shape, offset, n) = &self.layout[i];
        flat.narrow(0, *offset, *n).view(shape.as_slice())
    }

    /// Parameter `i`'s first moment (a view into the optimizer's state).
    pub fn exp_avg(&self, i: usize) -> Tensor {
        self.view(&self.exp_avg, i)
    }

    /// Parameter `i`'s second moment (a view into the optimizer's state).
    pub fn exp_avg_sq(&self, i: usize) -> Tensor {
        self.view(&self.exp_avg_sq, i)
    }

    /// Number of parameters the optimizer keeps moments for.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Whether it optimises nothing.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// Overwrites parameter `i`'s moments (a restored checkpoint); false when a shape differs.
    pub fn set_moments(&mut self, i: usize, exp_avg: &Tensor, exp_avg_sq: &Tensor) -> bool {
        let shape = &self.layout[i].0;
        if exp_avg.size() != *shape || exp_avg_sq.size() != *shape {
            return false;
        }
        tch::no_grad(|| {
            self.exp_avg(i).copy_(exp_avg);
            self.exp_avg_sq(i).copy_(exp_avg_sq);
        });
        true
    }

    /// Applies one update from the parameters' current `.grad()`; parameters without a
    /// gradient (unused this step) are left alone, as in PyTorch.
    pub fn step(&mut self, params: &[Tensor]) {
        self.step_scaled(params, None);
    }

    /// Clips the gradients' global L2 norm to `max_norm` (as `torch.nn.utils.clip_grad_norm_`)
    /// and takes one step, as clipping each `.grad` then stepping, with the scaling done once
    /// on the flat gradient (the `.grad` tensors themselves are left unscaled); returns the
    /// norm before clipping (logged as a training diagnostic).
    pub fn clip_and_step(&mut self, params: &[Tensor], max_norm: f64) -> f64 {
        let total = self.host_norm(params).unwrap_or_else(|| grad_norm(params));
        let coef = max_norm / (total + 1e-6);
        self.step_scaled(params, (coef < 1.0).then_some(coef));
        total
    }

    /// The gradients' global norm from a host loop ([`host::grad_norm`]: [`grad_norm`] to float
    /// rounding) over the flat buffer, or before the gradients are bound to it (a run's, or a
    /// resumed run's, first step) over each gradient in parameter order: the same elements in
    /// the same order, so the same bits either way. `None` where the loops do not apply (turned
    /// off, or a gradient that is not a non-empty contiguous f32 CPU tensor).
    fn host_norm(&self, params: &[Tensor]) -> Option<f64> {
        if !self.host_loops {
            return None;
        }
        if let Some(flat) = self.bound_grads(params) {
            // SAFETY: `on_host` checked the flat gradients (see `host_step`); this only reads.
            return self
                .on_host(flat, params)
                .then(|| host::grad_norm([unsafe { host_slice(flat) }]));
        }
        let grads: Vec<Tensor> = params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() || !grads.iter().all(|g| host_f32(g, g.numel())) {
            return None;
        }
        // SAFETY: each passed `host_f32`, and nothing writes to them while the slices live.
        Some(host::grad_norm(
            grads.iter().map(|g| unsafe { host_slice(g) }),
        ))
    }

    /// One update from the gradients, multiplied by `scale` when given.
    fn step_scaled(&mut self, params: &[Tensor], scale: Option<f64>) {
        assert_eq!(params.len(), self.layout.len(), "parameter list changed");
        self.step += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        if self.layout.is_empty() {
            return;
        }
        let bound = self.bound_grads(params).map(Tensor::shallow_clone);
        let grads: Vec<Tensor> = match bound {
            Some(_) => Vec::new(),
            None => params.iter().map(Tensor::grad).collect(),
        };
        let flat = match bound {
            Some(flat) => Some(flat),
            None if grads.iter().all(Tensor::defined) => Some(self.bind_grads(&grads)),
            None => None,
        };
        if let Some(flat) = flat.as_ref().filter(|flat| self.on_host(flat, params)) {
            self.host_step(params, flat, scale, (b1, b2, bc1, bc2));
            wormnet_ncp::kernels::parameters_written();
            return;
        }
        tch::no_grad(|| {
            if let Some(flat) = flat {
                // Every parameter has a gradient: one pass over the flat buffers.
                let g = match scale {
                    Some(scale) => &flat * scale,
                    None => flat,
                };
                Self::moments_step(
                    &mut self.exp_avg,
                    &mut self.exp_avg_sq,
                    &g,
                    (b1, b2, bc1, bc2),
                    (self.lr, self.eps),
                    &mut self.delta,
                );
                for (p, delta) in params.iter().zip(&self.delta_views) {
                    let _ = p.shallow_clone().g_sub_(delta);
                }
            } else {
                for (i, (p, g)) in params.iter().zip(&grads).enumerate() {
                    if !g.defined() {
                        continue;
                    }
                    let g = match scale {
                        Some(scale) => g * scale,
                        None => g.shallow_clone(),
                    };
                    let (mut m, mut v) = (self.exp_avg(i), self.exp_avg_sq(i));
                    let mut delta = self.delta_views[i].shallow_clone();
                    Self::moments_step(
                        &mut m,
                        &mut v,
                        &g,
                        (b1, b2, bc1, bc2),
                        (self.lr, self.eps),
                        &mut delta,
                    );
                    let _ = p.shallow_clone().g_sub_(&delta);
                }
            }
        });
    }

    /// Whether the step can run as loops over host memory: the flat gradients, the moments and
    /// the step's buffer are contiguous f32 tensors on the CPU as long as the moments, and every
    /// parameter is one as long as its slice of them (none empty: an empty tensor's data pointer
    /// may be null).
    fn on_host(&self, grads: &Tensor, params: &[Tensor]) -> bool {
        if !self.host_loops {
            return false;
        }
        let len = self.exp_avg.numel();
        [grads, &self.exp_avg, &self.exp_avg_sq, &self.delta]
            .into_iter()
            .all(|t| host_f32(t, len))
            && params
                .iter()
                .zip(&self.layout)
                .all(|(p, (_, _, n))| host_f32(p, *n as usize))
    }

    /// The step as loops over the flat buffers around one libtorch operation (the square
    /// root), each parameter written through its data pointer: on an NCP policy's few
    /// thousand parameters, the ~35 operations of the tensor step cost more than the
    /// arithmetic. Each element sees the operations of [`Adam::moments_step`] and the
    /// subtraction in their order and in f32 (every scalar rounded to f32 as libtorch rounds
    /// it), so the result is the same to the bit. The caller checked [`Adam::on_host`].
    fn host_step(
        &mut self,
        params: &[Tensor],
        grads: &Tensor,
        scale: Option<f64>,
        (b1, b2, bc1, bc2): (f64, f64, f64, f64),
    ) {
        // SAFETY (every slice below): `on_host` checked that each tensor is a non-empty,
        // contiguous f32 CPU tensor as long as the slice made of it (a libtorch allocation, so
        // aligned); the gradients, the moments, the step's buffer and the parameters are
        // separate allocations (`new` and `bind_grads` make the buffers), no two mutable slices
        // of one tensor are alive at once, and nothing else touches them during the step (the
        // critic's thread is between jobs: a replay returns only once its half is done).
        let g = unsafe { host_slice(grads) };
        let (m, v) = unsafe {
            (
                host_slice_mut(&self.exp_avg),
                host_slice_mut(&self.exp_avg_sq),
            )
        };
        let scale = scale.map(|s| s as f32);
        let (b1, new1) = (b1 as f32, (1.0 - b1) as f32);
        let (b2, new2) = (b2 as f32, (1.0 - b2) as f32);
        for ((&g, m), v) in g.iter().zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = scale.map_or(g, |s| g * s);
            *m = *m * b1 + g * new1;
            *v = *v * b2 + g * g * new2;
        }
        // libtorch's square root (MKL's) is not always the correctly rounded one that Rust's
        // is (0.7 % of random floats differ in the last bit): one operation keeps its bits.
        let _ = self.exp_avg_sq.sqrt_out(&self.delta);
        let (sqrt_v, m) = unsafe { (host_slice(&self.delta), host_slice(&self.exp_avg)) };
        let (sqrt_bc2, eps, step) = (bc2.sqrt() as f32, self.eps as f32, (self.lr / bc1) as f32);
        for (p, (_, offset, n)) in params.iter().zip(&self.layout) {
            let range = *offset as usize..(*offset + *n) as usize;
            let p = unsafe { host_slice_mut(p) };
            for ((p, m), sqrt_v) in p.iter_mut().zip(&m[range.clone()]).zip(&sqrt_v[range]) {
                let denom = sqrt_v / sqrt_bc2 + eps;
                *p -= m / denom * step;
            }
        }
    }

    /// Updates the moments `m`, `v` in place from the gradient `g` and writes the step to
    /// subtract from the parameters into `delta`: `lr / bc1 · m / (√v / √bc2 + eps)`.
    fn moments_step(
        m: &mut Tensor,
        v: &mut Tensor,
        g: &Tensor,
        (b1, b2, bc1, bc2): (f64, f64, f64, f64),
        (lr, eps): (f64, f64),
        delta: &mut Tensor,
    ) {
        let _ = m.g_mul_scalar_(b1).g_add_(&(g * (1.0 - b1)));
        let _ = v.g_mul_scalar_(b2).g_add_(&(g * g * (1.0 - b2)));
        let denom = v.sqrt() / bc2.sqrt() + eps;
        let _ = m.div_out(delta, &denom);
        let _ = delta.g_mul_scalar_(lr / bc1);
    }
}

/// The global L2 norm of all gradients (each tensor's sum of squares, then their sum), as
/// `torch.nn.utils.clip_grad_norm_` computes it; 0 without gradients.
fn grad_norm(params: &[Tensor]) -> f64 {
    tch::no_grad(|| {
        let squares: Vec<Tensor> = params
            .iter()
            .map(Tensor::grad)
            .filter(Tensor::defined)
            .map(|g| g.pow_tensor_scalar(2).sum(Kind::Float))
            .collect();
        if squares.is_empty() {
            return 0.0;
        }
        Tensor::stack(&squares, 0)
            .sum(Kind::Float)
            .sqrt()
            .double_value(&[])
    })
}

#[cfg(test)]
mod tests;
