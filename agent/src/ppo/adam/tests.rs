//! Adam's tests: against libtorch's Adam, the per-tensor reference, and the host loops
//! against the tensor operations (the step to the bit, the norm to float rounding).

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
fn host_loops_give_the_flat_tensor_operations() {
    // Copies of one draw; gradients of varied scale, clipped and not.
    tch::manual_seed(13);
    // Thousands of elements: libtorch's square root differs from the correctly rounded one
    // in under 1 % of them.
    let init = [vec![64i64, 40], vec![300], vec![7, 5, 3]]
        .map(|s| Tensor::randn(s.as_slice(), (Kind::Float, tch::Device::Cpu)));
    for max_norm in [0.05, 1e3] {
        let run = |host_loops: bool| {
            let params = init.each_ref().map(|t| t.copy().set_requires_grad(true));
            let mut adam = Adam::new(&params, 3e-3, 1e-5);
            adam.host_loops = host_loops;
            let mut norms = Vec::new();
            for step in 1..=5 {
                adam.zero_grad(&params);
                let loss = params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        (p * (1.5 * i as f64 + 0.1 * step as f64))
                            .sin()
                            .sum(Kind::Float)
                    })
                    .fold(Tensor::from(0.0f32), |a, b| a + b);
                loss.backward();
                // The gradients are bound from the second step on (the first step binds them
                // and then runs the step as host loops); the norm is a host loop either way.
                assert_eq!(adam.bound_grads(&params).is_some(), step > 1, "step {step}");
                let host_norm = adam.host_norm(&params).is_some();
                assert_eq!(host_norm, host_loops, "step {step}");
                norms.push(adam.clip_and_step(&params, max_norm));
            }
            let flat = |t: &Tensor| Vec::<f32>::try_from(t.reshape([-1])).unwrap();
            let moments: Vec<_> = (0..adam.len())
                .flat_map(|i| [flat(&adam.exp_avg(i)), flat(&adam.exp_avg_sq(i))])
                .collect();
            (params.map(|p| flat(&p)), moments, norms)
        };
        let (host, tensors) = (run(true), run(false));
        // The norms agree to float rounding.
        for (a, b) in host.2.iter().zip(&tensors.2) {
            assert!(
                (a - b).abs() <= 1e-5 * b,
                "max_norm {max_norm}: norm {a} vs {b}"
            );
        }
        let pairs = host
            .0
            .iter()
            .zip(&tensors.0)
            .chain(host.1.iter().zip(&tensors.1));
        if max_norm > 1e2 {
            // Unclipped, the norm does not reach the step: it is the same to the bit.
            for (i, (a, b)) in pairs.enumerate() {
                let differing = a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits());
                assert_eq!(differing.count(), 0, "tensor {i} differs");
            }
        } else {
            // Clipped by the two norms, the steps differ by their rounding.
            for (i, (a, b)) in pairs.enumerate() {
                let top = b.iter().fold(0f32, |m, x| m.max(x.abs()));
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() <= 1e-5 * top, "tensor {i}: {x} vs {y}");
                }
            }
        }
    }
}

#[test]
fn the_kernels_see_a_host_step() {
    // The host loops write the parameters through their pointers, which leaves libtorch's
    // versions as they were: the kernels' cached parameters must be rebuilt all the same.
    use wormnet_ncp::wiring::WiringConfig;
    use wormnet_ncp::{CellKind, CellNet, NcpConfig};
    for cell in [CellKind::Ltc, CellKind::Cfc] {
        let config = NcpConfig {
            cell,
            wiring: Some(WiringConfig::AutoNcp {
                units: 12,
                output_size: 2,
                sparsity_level: 0.5,
                seed: 3,
            }),
            ..NcpConfig::default()
        };
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = CellNet::new(&vs.root(), 3, &config).unwrap();
        let params = vs.trainable_variables();
        let mut adam = Adam::new(&params, 0.1, 1e-5);
        let x = Tensor::randn([2, 5, 3], (Kind::Float, tch::Device::Cpu));
        let forward = |net: &CellNet| tch::no_grad(|| net.forward_sequence(&x, None, None).0);
        let before = forward(&net);
        for _ in 0..2 {
            // Both steps run as host loops (the first binds the gradients first).
            adam.zero_grad(&params);
            let (y, _, tape) = net.forward_sequence_train(&x, None, None, None);
            tape.backward(&y.square().sum(Kind::Float));
            adam.step(&params);
        }
        let after = forward(&net);
        // A fresh net with the stepped values has nothing cached.
        let mut fresh_vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let fresh = CellNet::new(&fresh_vs.root(), 3, &config).unwrap();
        fresh_vs.copy(&vs).unwrap();
        assert!(!after.equal(&before), "{cell:?}: the step changed nothing");
        assert!(
            after.equal(&forward(&fresh)),
            "{cell:?}: stale kernel parameters"
        );
    }
}

#[test]
fn an_empty_parameter_keeps_the_tensor_operations() {
    // An empty tensor's data pointer may be null: no host loops then, and the same step.
    let run = |host_loops: bool| {
        let params = [cpu(&[0.5, -1.0, 2.0]), cpu(&[])];
        let mut adam = Adam::new(&params, 0.1, 1e-5);
        adam.host_loops = host_loops;
        for _ in 0..3 {
            adam.zero_grad(&params);
            (params[0].sin().sum(Kind::Float) + params[1].sum(Kind::Float)).backward();
            assert!(adam.host_norm(&params).is_none());
            adam.clip_and_step(&params, 0.5);
        }
        Vec::<f32>::try_from(&params[0]).unwrap()
    };
    let (host, tensors) = (run(true), run(false));
    assert_eq!(host, tensors);
    assert_ne!(host, vec![0.5, -1.0, 2.0], "the step changed nothing");
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
            // libtorch's norm, as `clip_grad_norm` takes it (the host norm differs in its
            // rounding: `host_loops_give_the_flat_tensor_operations`).
            adam.host_loops = false;
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

#[test]
fn the_host_norm_has_the_same_bits_before_and_after_the_gradients_are_bound() {
    // A run's first step (and a resumed run's) finds the gradients unbound; later steps find
    // them in the flat buffer. A loss linear in the parameters has the same gradients at every
    // step, so the norm must not change by a bit (a resumed run depends on it).
    let weights =
        [vec![0.3f32, -1.7, 2.9, 1e-3], vec![5.5, -0.25, 7.0]].map(|w| Tensor::from_slice(&w));
    let params = [cpu(&[0.0; 4]), cpu(&[0.0; 3])];
    let mut adam = Adam::new(&params, 0.1, 1e-5);
    let mut norms = Vec::new();
    for step in 0..3 {
        adam.zero_grad(&params);
        let loss = (&params[0] * &weights[0]).sum(Kind::Float)
            + (&params[1] * &weights[1]).sum(Kind::Float);
        loss.backward();
        assert_eq!(adam.bound_grads(&params).is_some(), step > 0);
        norms.push(adam.host_norm(&params).expect("host loops apply").to_bits());
        adam.clip_and_step(&params, 0.5);
    }
    assert!(norms.iter().all(|&n| n == norms[0]), "{norms:?}");
}
