//! Adam with its state in plain tensors, so a checkpoint can save and `--resume` can restore
//! the moments exactly (libtorch's optimizer state is not reachable through tch).

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
    /// First moments, one per parameter, in parameter order.
    pub exp_avg: Vec<Tensor>,
    /// Second moments, one per parameter, in parameter order.
    pub exp_avg_sq: Vec<Tensor>,
}

impl Adam {
    /// Zeroed moments shaped like `params`.
    pub fn new(params: &[Tensor], lr: f64, eps: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps,
            step: 0,
            exp_avg: params.iter().map(Tensor::zeros_like).collect(),
            exp_avg_sq: params.iter().map(Tensor::zeros_like).collect(),
        }
    }

    /// Applies one update from the parameters' current `.grad()`; parameters without a
    /// gradient (unused this step) are left alone, as in PyTorch.
    pub fn step(&mut self, params: &[Tensor]) {
        assert_eq!(params.len(), self.exp_avg.len(), "parameter list changed");
        self.step += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        tch::no_grad(|| {
            for ((p, m), v) in params
                .iter()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = v.sqrt() / bc2.sqrt() + self.eps;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(&*m / &denom * (self.lr / bc1)));
            }
        });
    }
}

/// Scales all gradients together so their global L2 norm is at most `max_norm`; returns the
/// norm before clipping (logged as a training diagnostic).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let grads: Vec<Tensor> = params
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect();
    if grads.is_empty() {
        return 0.0;
    }
    let total = tch::no_grad(|| {
        Tensor::stack(
            &grads
                .iter()
                .map(|g| g.pow_tensor_scalar(2).sum(Kind::Float))
                .collect::<Vec<_>>(),
            0,
        )
        .sum(Kind::Float)
        .sqrt()
        .double_value(&[])
    });
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        tch::no_grad(|| {
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_scalar_(coef);
            }
        });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;

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
