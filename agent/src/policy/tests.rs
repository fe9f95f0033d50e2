//! Unit tests of the policy: action rescaling and named build errors.

use super::*;

fn spec(low: f32, high: f32) -> EnvSpec {
    EnvSpec {
        name: "box".into(),
        observation_space: Space::uniform(2, -1.0, 1.0).unwrap(),
        action_space: Space::bounded(vec![low, f32::NEG_INFINITY], vec![high, f32::INFINITY])
            .unwrap(),
        dt: 0.05,
        max_episode_steps: None,
        observation_names: vec!["a".into(), "b".into()],
        action_names: vec!["torque".into(), "free".into()],
        clip_actions: false,
        survival_is_success: false,
        image: None,
    }
}

fn policy(rescale: bool, low: f32, high: f32) -> Policy {
    let config: PolicyConfig = toml::from_str(&format!(
        "rescale_actions = {rescale}\n[actor]\ncell = \"ltc\"\n\
         wiring = {{ kind = \"auto_ncp\", units = 6, output_size = 2 }}\n"
    ))
    .unwrap();
    Policy::new(&spec(low, high), &config, Device::Cpu).unwrap()
}

#[test]
fn bounded_actions_are_rescaled_from_unit_range_and_clipped() {
    let p = policy(true, -2.0, 4.0);
    let raw = Tensor::from_slice(&[-1.0f32, 7.0, 0.0, -7.0, 3.0, 0.5]).reshape([3, 2]);
    let mut out = vec![0.0; 6];
    p.env_actions(&raw, &mut out);
    // Bounded component: [-1, 1] -> [-2, 4], clipped first; unbounded: unchanged.
    assert_eq!(out, vec![-2.0, 7.0, 1.0, -7.0, 4.0, 0.5]);
    let p = policy(false, -2.0, 4.0);
    p.env_actions(&raw, &mut out);
    assert_eq!(out, vec![-1.0, 7.0, 0.0, -7.0, 3.0, 0.5]);
}

#[test]
fn wrong_motor_count_names_the_field() {
    let config: PolicyConfig = toml::from_str(
        "[actor]\ncell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 6, output_size = 3 }\n",
    )
    .unwrap();
    let err = Policy::new(&spec(-1.0, 1.0), &config, Device::Cpu)
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        text.contains("policy.actor")
            && text.contains("3 outputs")
            && text.contains("set the wiring's output size to 2"),
        "{text}"
    );
    // A baseline's outputs are its projection.
    let config: PolicyConfig =
        toml::from_str("[actor]\ncell = \"lstm\"\nunits = 8\nproj_size = 3\n").unwrap();
    let err = Policy::new(&spec(-1.0, 1.0), &config, Device::Cpu)
        .err()
        .unwrap();
    assert!(err.to_string().contains("set proj_size to 2"), "{err}");
}
