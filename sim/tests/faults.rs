//! Faults: each is a clear error naming the env and its index, within seconds, with the other
//! envs' data intact.

mod common;

use common::{factory, within, BASE_SEED};
use wormnet_sim::{EnvFactory, FaultKind, Registry, VecEnv, VecEnvConfig, VecEnvError};

const N: usize = 4;

/// Steps a 4-env, 2-worker VecEnv for `steps` steps; returns every step's result as text plus
/// the observation rows of the final step.
fn run_to(options: &str, steps: usize) -> (Result<Vec<f32>, VecEnvError>, Vec<f32>) {
    let options = options.to_string();
    within(5, move || {
        let mut envs = VecEnv::new(factory(&options), VecEnvConfig::new(N, 2)).unwrap();
        envs.reset(Some(BASE_SEED)).unwrap();
        let actions = vec![0.25f32; N];
        let mut last = Ok(Vec::new());
        for _ in 0..steps {
            last = envs.step(&actions).map(|o| o.obs.to_vec());
            if last.is_err() {
                break;
            }
        }
        let obs = envs.observations().to_vec();
        (last, obs)
    })
}

fn faulted(err: &VecEnvError) -> &wormnet_sim::Fault {
    match err {
        VecEnvError::Faults(f) => &f[0],
        other => panic!("expected a fault, got {other}"),
    }
}

fn assert_others_intact(options: &str, obs: &[f32], bad: usize, steps: usize) {
    let (clean, _) = run_to("max_length = 1000", steps);
    let clean = clean.unwrap();
    let _ = options;
    for i in (0..N).filter(|&i| i != bad) {
        assert_eq!(
            &obs[i * 4..i * 4 + 4],
            &clean[i * 4..i * 4 + 4],
            "env {i} corrupted"
        );
    }
}

#[test]
fn panicking_env_is_named_and_others_survive() {
    let opts = "max_length = 1000\nfault_env = 2\npanic_at = 3";
    let (result, obs) = run_to(opts, 5);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`walk` #2"), "{text}");
    assert!(
        text.contains("panicked during step: walk exploded at step 3"),
        "{text}"
    );
    assert!(matches!(faulted(&err).kind, FaultKind::Panicked { .. }));
    assert_others_intact(opts, &obs, 2, 3);
}

#[test]
fn panicked_env_stays_poisoned_but_vecenv_answers() {
    within(5, || {
        let mut envs = VecEnv::new(
            factory("max_length = 1000\nfault_env = 1\npanic_at = 1"),
            VecEnvConfig::new(N, 2),
        )
        .unwrap();
        envs.reset(Some(BASE_SEED)).unwrap();
        let a = vec![0.0f32; N];
        assert!(envs.step(&a).is_err());
        let err = envs.step(&a).unwrap_err();
        assert_eq!(faulted(&err).index, 1);
        assert_eq!(faulted(&err).kind, FaultKind::Poisoned);
    });
}

#[test]
fn nan_observation_is_named() {
    let opts = "max_length = 1000\nfault_env = 3\nnan_obs_at = 2";
    let (result, obs) = run_to(opts, 4);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`walk` #3"), "{text}");
    assert!(text.contains("component 0 (`position`) = NaN"), "{text}");
    assert_others_intact(opts, &obs, 3, 2);
}

#[test]
fn infinite_reward_is_named() {
    let opts = "max_length = 1000\nfault_env = 0\nnan_reward_at = 1";
    let (result, obs) = run_to(opts, 2);
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`walk` #0"), "{text}");
    assert!(text.contains("non-finite reward inf"), "{text}");
    assert_others_intact(opts, &obs, 0, 1);
}

#[test]
fn wrong_action_buffer_length_is_an_error() {
    within(5, || {
        let mut envs = VecEnv::new(factory("max_length = 10"), VecEnvConfig::new(N, 2)).unwrap();
        envs.reset(Some(1)).unwrap();
        let err = envs.step(&[0.0; N - 1]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, VecEnvError::ActionBuffer { index: 3, .. }),
            "{text}"
        );
        assert!(
            text.contains("`walk` #3") && text.contains("expected 4"),
            "{text}"
        );
        // Still usable afterwards.
        envs.step(&[0.0; N]).unwrap();
    });
}

#[test]
fn action_outside_space_is_an_error_not_a_clamp() {
    within(5, || {
        let mut envs = VecEnv::new(factory("max_length = 10"), VecEnvConfig::new(N, 2)).unwrap();
        envs.reset(Some(1)).unwrap();
        let err = envs.step(&[0.0, 0.0, 1.5, 0.0]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`walk` #2"), "{text}");
        assert!(
            text.contains("component 0 = 1.5 is outside [-1, 1]"),
            "{text}"
        );
        let err = envs.step(&[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
        assert!(err.to_string().contains("`walk` #0"), "{err}");
    });
}

#[test]
fn nan_action_is_rejected_even_when_clipping() {
    within(5, || {
        let mut envs = VecEnv::new(
            factory("max_length = 10\nclip = true"),
            VecEnvConfig::new(2, 1),
        )
        .unwrap();
        envs.reset(Some(1)).unwrap();
        let err = envs.step(&[0.0, f32::NAN]).unwrap_err();
        assert_eq!(faulted(&err).index, 1);
    });
}

#[test]
fn step_before_reset_is_an_error() {
    let mut envs = VecEnv::new(factory("max_length = 10"), VecEnvConfig::new(2, 1)).unwrap();
    let err = envs.step(&[0.0, 0.0]).unwrap_err();
    assert!(err.to_string().contains("before reset"), "{err}");
}

#[test]
fn unknown_option_fails_construction_naming_option_and_env() {
    let err = within(5, || {
        VecEnv::new(factory("max_lenght = 3"), VecEnvConfig::new(N, 2))
            .err()
            .map(|e| e.to_string())
    })
    .expect("construction must fail");
    assert!(err.contains("walk"), "{err}");
    assert!(err.contains("max_lenght"), "{err}");
}

#[test]
fn unknown_env_name_lists_the_known_ones() {
    let mut registry = Registry::new();
    registry
        .register("walk", "test walk", |o| {
            Ok(Box::new(common::Walk::new(
                wormnet_sim::parse_options("walk", o)?,
                None,
            )))
        })
        .unwrap();
    let err = registry
        .factory("wlak", toml::Table::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown env `wlak`") && err.contains("walk"),
        "{err}"
    );
    assert!(registry
        .register("walk", "again", |_| unreachable!())
        .is_err());
}

#[test]
fn panicking_constructor_is_an_error_not_a_hang() {
    let factory = EnvFactory::new("boom", toml::Table::new(), |_| panic!("no such thing"));
    let err = within(5, move || {
        VecEnv::new(factory, VecEnvConfig::new(3, 2))
            .err()
            .map(|e| e.to_string())
    })
    .expect("construction must fail");
    assert!(
        err.contains("`boom` #0") && err.contains("no such thing"),
        "{err}"
    );
}

#[test]
fn zero_envs_is_a_config_error() {
    let err = VecEnv::new(factory("max_length = 3"), VecEnvConfig::new(0, 1))
        .err()
        .unwrap();
    assert!(err.to_string().contains("at least one env"), "{err}");
}

#[test]
fn single_env_driver_rejects_wrong_action_length_and_needs_reset() {
    use wormnet_sim::EpisodeDriver;
    let env = common::Walk::new(
        common::WalkOptions {
            max_length: 3,
            ..Default::default()
        },
        None,
    );
    let mut driver = EpisodeDriver::new(Box::new(env), 7);
    let mut obs = vec![0.0; 4];
    let err = driver.step(&[0.0], &mut obs).unwrap_err();
    assert_eq!(err.kind, FaultKind::NeedsReset);
    driver.reset(Some(1), &mut obs).unwrap();
    let err = driver.step(&[0.0, 0.0], &mut obs).unwrap_err().to_string();
    assert!(
        err.contains("`walk` #7") && err.contains("has 2 components, expected 1"),
        "{err}"
    );
    // A wrong-length action is refused before the env runs, so the env stays usable.
    driver.step(&[0.0], &mut obs).unwrap();
}

#[test]
fn stuck_env_times_out_instead_of_hanging() {
    let text = within(5, || {
        let mut config = VecEnvConfig::new(N, 2);
        config.step_timeout = Some(std::time::Duration::from_millis(300));
        let mut envs = VecEnv::new(
            factory("max_length = 1000\nfault_env = 3\nhang_at = 2"),
            config,
        )
        .unwrap();
        envs.reset(Some(BASE_SEED)).unwrap();
        envs.step(&[0.0; N]).unwrap();
        let err = envs.step(&[0.0; N]).unwrap_err();
        assert!(
            matches!(err, VecEnvError::WorkerTimeout { worker: 1, .. }),
            "{err}"
        );
        // Still answers (with an error), and dropping it does not wait for the stuck thread.
        assert!(envs.step(&[0.0; N]).is_err());
        drop(envs);
        err.to_string()
    });
    assert!(
        text.contains("`walk`") && text.contains("envs #2..#3"),
        "{text}"
    );
}
