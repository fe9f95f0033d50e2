//! The registry: names, options, and the classic-control envs through a VecEnv.

use wormnet_sim::{VecEnv, VecEnvConfig};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

#[test]
fn registry_lists_the_shipped_envs() {
    let names = wormnet_envs::registry().names();
    for n in ["ball_slope", "cartpole", "pendulum"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
}

#[test]
fn unknown_env_is_an_error_listing_known_envs() {
    let err = wormnet_envs::registry()
        .make("cartpol", &toml::Table::new())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown env `cartpol`") && err.contains("cartpole"),
        "{err}"
    );
}

#[test]
fn unknown_option_names_option_and_env() {
    for env in ["cartpole", "pendulum", "ball_slope"] {
        let err = wormnet_envs::registry()
            .make(env, &table("no_velocityy = true"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&format!("`{env}`")) && err.contains("no_velocityy"),
            "{err}"
        );
    }
    let err = wormnet_envs::registry()
        .make("cartpole", &table("no_velocity = \"yes\""))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cartpole"), "{err}");
}

#[test]
fn options_reach_the_env() {
    let env = wormnet_envs::registry()
        .make("pendulum", &table("no_velocity = true"))
        .unwrap();
    assert_eq!(env.spec().obs_dim(), 2);
    assert!(env.spec().clip_actions);
}

#[test]
fn cartpole_vec_env_runs_episodes_with_statistics() {
    let factory = wormnet_envs::registry()
        .factory("cartpole", toml::Table::new())
        .unwrap();
    let mut envs = VecEnv::new(factory, VecEnvConfig::new(8, 2)).unwrap();
    envs.reset(Some(0)).unwrap();
    let mut episodes = Vec::new();
    for t in 0..300 {
        let actions: Vec<f32> = (0..8).map(|i| ((t + i) % 2) as f32).collect();
        let out = envs.step(&actions).unwrap();
        for e in out.episodes {
            // CartPole pays 1 per step: return equals length.
            assert_eq!(e.episode_return, f64::from(e.length));
            let fin = out.final_observation(e.env_index).unwrap();
            assert!(
                fin[0].abs() > 2.4 || fin[2].abs() > 0.2094,
                "final obs is terminal: {fin:?}"
            );
            assert!(out.obs[e.env_index * 4..][..4]
                .iter()
                .all(|v| v.abs() <= 0.05));
        }
        episodes.extend_from_slice(out.episodes);
    }
    assert!(
        episodes.len() > 8,
        "alternating pushes end episodes quickly"
    );
}

#[test]
fn frames_describe_the_scene_as_plain_data() {
    let registry = wormnet_envs::registry();
    for (name, shapes) in [("cartpole", 2), ("pendulum", 2), ("ball_slope", 2)] {
        let mut env = registry.make(name, &toml::Table::new()).unwrap();
        let mut obs = vec![0.0; env.spec().obs_dim()];
        env.reset(Some(3), &mut obs);
        let action = vec![0.0; env.spec().action_dim()];
        env.step(&action, &mut obs);
        let frame = env.frame();
        assert_eq!(frame.shapes.len(), shapes, "{name}");
        assert!(frame.time > 0.0, "{name}");
        let text = serde_json::to_string(&frame).unwrap();
        let back: wormnet_sim::Frame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, frame, "{name}");
    }
}
