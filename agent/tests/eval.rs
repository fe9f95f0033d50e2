//! Evaluation reports a success rate only where the env defines success.

use tch::Device;
use wormnet_agent::eval::{evaluate, EvalOptions};
use wormnet_agent::policy::{Policy, PolicyConfig};

fn success_rate(env: &str, outputs: usize) -> Option<f64> {
    let registry = wormnet_envs::registry();
    let factory = registry.factory(env, toml::Table::new()).expect("env");
    let spec = factory.build().expect("env").spec().clone();
    let config: PolicyConfig = toml::from_str(&format!(
        "[actor]\ncell = \"cfc\"\nwiring = {{ kind = \"auto_ncp\", units = 6, output_size = {outputs} }}\n"
    ))
    .expect("policy config");
    tch::manual_seed(1);
    let policy = Policy::new(&spec, &config, Device::Cpu).expect("policy");
    let options = EvalOptions {
        episodes: 2,
        deterministic: true,
        obs_noise: 0.0,
        seed: 1,
        num_envs: 2,
    };
    evaluate(&policy, factory, &options)
        .expect("evaluation")
        .success_rate
}

#[test]
fn success_is_reported_only_for_envs_that_define_it() {
    assert!(success_rate("cartpole", 2).is_some());
    // Pendulum never fails: a "success rate" of 100 % at any return would mean nothing.
    assert_eq!(success_rate("pendulum", 1), None);
}
