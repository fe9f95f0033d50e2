//! Adam with its state in plain tensors, so a checkpoint can save and `--resume` can restore
//! the moments exactly (libtorch's optimizer state is not reachable through tch).
//!
//! The moments of all parameters live in two flat buffers, and a step updates them with a
//! handful of operations on the whole buffer instead of a dozen per parameter tensor: on the
//! small networks of an NCP policy the per-operation dispatch, not the arithmetic, is the cost.
//! Once every parameter has a gradient, the gradients move into a flat buffer too (each `.grad`
//! becomes a view of it, and autograd keeps adding into it in place), so zeroing them is one
//! operation and a step reads them without gathering. The step lands in a flat buffer whose
//! per-parameter views are made once. Every element sees exactly the operations it would see
//! tensor by tensor, so the result is the same to the last bit.

use tch::{Kind, Tensor};

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
    /// and takes one step, to the bit as clipping each `.grad` then stepping, with the scaling
    /// done once on the flat gradient (the `.grad` tensors themselves are left unscaled);
    /// returns the norm before clipping (logged as a training diagnostic).
    pub fn clip_and_step(&mut self, params: &[Tensor], max_norm: f64) -> f64 {
        let total = grad_norm(params);
        let coef = max_norm / (total + 1e-6);
        self.step_scaled(params, (coef < 1.0).then_some(coef));
        total
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
mod tests {
    use super::*;

    use tch::nn::OptimizerConfig;

    /// Clipping as `torch.nn.utils.clip_grad_norm_` does it, each gradient scaled in place:
    /// the reference [`Adam::clip_and_step`] must match.
    fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
        let total = grad_norm(params);
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            tch::no_grad(|| {
                for g in params.iter().map(Tensor::grad).filter(Tensor::defined) {
                    let mut g = g.shallow_clone();
                    let _ = g.g_mul_scalar_(coef);
                }
            });
        }
        total
    }

    #[test]
    fn matches_libtorch_adam_step_for_step() {
        tch::manual_seed(3);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let w_ref = vs.root().randn("w", &[4, 3], 0.0, 1.0);
        let mut opt = tch::nn::Adam::default().eps(1e-5).build(&vs, 1e-2).unwrap();
        let mut w_ours = w_ref.detach().copy().set_requires_grad(true);
        let mut ours = Adam::new(&[w_ours.shallow_clone()], 1e-2, 1e-5);
        let x = Tensor::randn([5, 4], (Kind::Float, tch::Device::Cpu));
        for _ in 0..5 {
            opt.zero_grad();
            let loss = x
                .matmul(&w_ref)
                .tanh()
                .pow_tensor_scalar(2)
                .sum(Kind::Float);
            loss.backward();
            opt.step();

            w_ours.zero_grad();
            let loss = x
                .matmul(&w_ours)
                .tanh()
                .pow_tensor_scalar(2)
                .sum(Kind::Float);
            loss.backward();
            ours.step(&[w_ours.shallow_clone()]);
        }
        let diff = (&w_ref - &w_ours).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "max difference {diff}");
    }

    /// Adam one tensor at a time, as torch writes it: what the flat buffers must equal.
    fn reference_step(params: &[Tensor], moments: &mut [(Tensor, Tensor)], t: i32, lr: f64) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-5);
        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        tch::no_grad(|| {
            for (p, (m, v)) in params.iter().zip(moments.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = v.sqrt() / bc2.sqrt() + eps;
                let _ = p.shallow_clone().g_sub_(&(&*m / &denom * (lr / bc1)));
            }
        });
    }

    fn cpu(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).set_requires_grad(true)
    }

    #[test]
    fn flat_buffers_give_the_per_tensor_result_to_the_bit() {
        // Copies of one draw: libtorch's generator is process-wide, and other tests draw from it
        // in parallel, so reseeding would not promise the same values twice.
        tch::manual_seed(5);
        let init = [vec![3i64, 4], vec![7], vec![2, 2, 2]]
            .map(|s| Tensor::randn(s.as_slice(), (Kind::Float, tch::Device::Cpu)));
        let make = || init.each_ref().map(|t| t.copy().set_requires_grad(true));
        let (ours, theirs) = (make(), make());
        let mut adam = Adam::new(&ours, 3e-3, 1e-5);
        let mut moments: Vec<(Tensor, Tensor)> = theirs
            .iter()
            .map(|p| (p.zeros_like(), p.zeros_like()))
            .collect();
        for step in 1..=6 {
            // After the first step our gradients live in Adam's flat buffer.
            assert_eq!(adam.bound_grads(&ours).is_some(), step > 1, "step {step}");
            adam.zero_grad(&ours);
            for p in theirs.iter() {
                p.shallow_clone().zero_grad();
            }
            for params in [&ours, &theirs] {
                let loss = params
                    .iter()
                    .map(|p| p.sin().pow_tensor_scalar(2).sum(Kind::Float))
                    .fold(Tensor::from(0.0f32), |a, b| a + b);
                loss.backward();
            }
            adam.step(&ours);
            reference_step(&theirs, &mut moments, step, 3e-3);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(a.equal(b), "step {step}: parameters differ");
            }
        }
        for (i, (m, v)) in moments.iter().enumerate() {
            assert!(adam.exp_avg(i).equal(m) && adam.exp_avg_sq(i).equal(v));
        }
    }

    #[test]
    fn a_parameter_without_a_gradient_is_left_alone() {
        let (a, b) = (cpu(&[1.0, 2.0]), cpu(&[3.0]));
        let reference = cpu(&[1.0, 2.0]);
        let mut adam = Adam::new(&[a.shallow_clone(), b.shallow_clone()], 0.1, 1e-5);
        (&a * &a).sum(Kind::Float).backward(); // b has never had a gradient
        (&reference * &reference).sum(Kind::Float).backward();
        adam.step(&[a.shallow_clone(), b.shallow_clone()]);
        let mut moments = [(reference.zeros_like(), reference.zeros_like())];
        reference_step(&[reference.shallow_clone()], &mut moments, 1, 0.1);
        assert!(a.equal(&reference), "the per-tensor path differs");
        assert!(b.equal(&Tensor::from_slice(&[3.0f32])));
        assert!(adam
            .exp_avg_sq(1)
            .equal(&Tensor::zeros([1], (Kind::Float, tch::Device::Cpu))));
        // Restoring moments of the wrong shape is refused.
        let wrong = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu));
        assert!(!adam.set_moments(0, &wrong, &wrong));
    }

    #[test]
    fn clip_and_step_equals_clipping_then_stepping_to_the_bit() {
        for max_norm in [0.05, 1e3] {
            // Both runs start from copies of one draw (the generator is shared across tests).
            tch::manual_seed(7);
            let init = [
                Tensor::randn([3, 4], (Kind::Float, tch::Device::Cpu)),
                Tensor::randn([5], (Kind::Float, tch::Device::Cpu)),
            ];
            let run = |fused: bool| {
                let params = init.each_ref().map(|t| t.copy().set_requires_grad(true));
                let mut adam = Adam::new(&params, 3e-3, 1e-5);
                let mut norms = Vec::new();
                for _ in 0..3 {
                    for p in &params {
                        p.shallow_clone().zero_grad();
                    }
                    let loss = params[0].pow_tensor_scalar(3).sum(Kind::Float)
                        + (&params[1] * 2.5).sin().sum(Kind::Float);
                    loss.backward();
                    norms.push(if fused {
                        adam.clip_and_step(&params, max_norm)
                    } else {
                        let norm = clip_grad_norm(&params, max_norm);
                        adam.step(&params);
                        norm
                    });
                }
                (
                    params.map(|p| Vec::<f32>::try_from(p.reshape([-1])).unwrap()),
                    norms,
                )
            };
            assert_eq!(run(true), run(false), "max_norm {max_norm}");
        }
    }

    #[test]
    fn an_optimizer_without_parameters_steps_without_error() {
        let mut adam = Adam::new(&[], 0.1, 1e-5);
        adam.zero_grad(&[]);
        assert_eq!(adam.clip_and_step(&[], 0.5), 0.0);
        assert_eq!(adam.step, 1);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let a = Tensor::from_slice(&[3.0f32]).set_requires_grad(true);
        let b = Tensor::from_slice(&[4.0f32]).set_requires_grad(true);
        (&a * &a * 0.5 + &b * &b * 0.5).sum(Kind::Float).backward(); // grads 3 and 4
        let norm = clip_grad_norm(&[a.shallow_clone(), b.shallow_clone()], 0.5);
        assert!((norm - 5.0).abs() < 1e-5);
        let ga = a.grad().double_value(&[0]);
        let gb = b.grad().double_value(&[0]);
        assert!(((ga * ga + gb * gb).sqrt() - 0.5).abs() < 1e-5);
        assert!((ga / gb - 0.75).abs() < 1e-5, "direction kept");
    }
}
