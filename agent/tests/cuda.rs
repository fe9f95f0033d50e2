//! CPU and CUDA agree on the camera policy (conv encoder + the paper's NCP): actions, values
//! and the cloning gradient that reaches the encoder. Runs where a CUDA device is present
//! (`scripts/cuda_check.sh`); elsewhere it says so and passes.

use std::path::Path;

use tch::{Device, Kind, Tensor};
use wormnet_agent::config::TrainConfig;
use wormnet_agent::policy::Policy;

/// Largest absolute difference of two tensors (on the CPU).
fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_device(Device::Cpu) - b.to_device(Device::Cpu))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn the_camera_policy_gives_the_same_outputs_and_gradients_on_cpu_and_cuda() {
    if !wormnet_ncp::runtime::cuda_available() {
        println!("no CUDA device: nothing to compare (scripts/cuda_check.sh runs this on a GPU)");
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vehicle_camera.toml");
    let config = TrainConfig::load(&path).unwrap();
    let env = wormnet_envs::registry()
        .make(&config.env.name, &config.env.options)
        .unwrap();
    let spec = env.spec().clone();
    tch::manual_seed(7);
    let cpu = Policy::new(&spec, &config.policy, Device::Cpu).unwrap();
    let mut gpu = Policy::new(&spec, &config.policy, Device::Cuda(0)).unwrap();
    gpu.vs.copy(&cpu.vs).unwrap();
    let (b, t, o) = (16i64, 24i64, spec.obs_dim() as i64);
    let obs = Tensor::rand([b, t, o], (Kind::Float, Device::Cpu));
    // One acting step from the zero state.
    let step = obs.select(1, 0);
    let (a_cpu, a_gpu) = (
        cpu.act(&step, &cpu.initial_state(b), true),
        gpu.act(&step.to(Device::Cuda(0)), &gpu.initial_state(b), true),
    );
    let d_action = max_diff(&a_cpu.action, &a_gpu.action);
    let d_value = max_diff(&a_cpu.value, &a_gpu.value);
    // A whole sequence and the gradient of a cloning loss on it.
    let grads = |policy: &Policy| {
        let x = obs.to(policy.device());
        let (out, tape) = policy.actor_sequence(&x);
        tape.backward(&out.pow_tensor_scalar(2).mean(Kind::Float));
        let mut grads: Vec<(String, Tensor)> = policy
            .parameters()
            .into_iter()
            .filter(|(name, t)| name.starts_with("encoder") && t.grad().defined())
            .map(|(name, t)| (name, t.grad().to_device(Device::Cpu)))
            .collect();
        grads.sort_by(|a, b| a.0.cmp(&b.0));
        (out.to_device(Device::Cpu), grads)
    };
    let ((out_cpu, g_cpu), (out_gpu, g_gpu)) = (grads(&cpu), grads(&gpu));
    let d_out = max_diff(&out_cpu, &out_gpu);
    assert!(!g_cpu.is_empty(), "the encoder gets a gradient");
    let d_grad = g_cpu
        .iter()
        .zip(&g_gpu)
        .map(|((_, a), (_, b))| {
            let scale = a.abs().max().double_value(&[]).max(1e-8);
            max_diff(a, b) / scale
        })
        .fold(0.0, f64::max);
    println!(
        "cpu vs cuda: action {d_action:.2e}, value {d_value:.2e}, sequence outputs {d_out:.2e}, \
         encoder gradients (relative) {d_grad:.2e}"
    );
    assert!(
        d_action < 1e-4 && d_value < 1e-4 && d_out < 1e-4,
        "outputs differ"
    );
    assert!(d_grad < 1e-3, "encoder gradients differ by {d_grad:e}");
}
