//! Physical sanity of the lander: it falls at g with the engine off, climbs at full throttle,
//! ends its episode on touching the ground, and is the same episode for the same seed.

use wormnet_cli::sim::{Env, Step};
use wormnet_example_lander::{from_options, MASS};

fn env() -> Box<dyn Env> {
    Box::new(from_options(&Default::default()).expect("default options"))
}

/// Steps `n` times with `action` from seed 3; returns the observations after each step.
fn run(env: &mut dyn Env, action: [f32; 2], n: usize) -> (Vec<Vec<f32>>, Vec<Step>) {
    let mut obs = vec![0.0; 6];
    env.reset(Some(3), &mut obs);
    let mut seen = vec![obs.clone()];
    let mut steps = Vec::new();
    for _ in 0..n {
        let step = env.step(&action, &mut obs);
        seen.push(obs.clone());
        steps.push(step);
        if step.terminated || step.truncated {
            break;
        }
    }
    (seen, steps)
}

#[test]
fn engine_off_it_falls_at_g_and_crashes() {
    let mut env = env();
    let (obs, steps) = run(env.as_mut(), [-1.0, 0.0], 400);
    // After 0.5 s of free fall from rest vertically: vy ≈ −g·t.
    let vy = obs[10][3];
    assert!((vy + 9.81 * 0.5).abs() < 0.3, "vy after 0.5 s: {vy}");
    let last = steps.last().expect("steps");
    assert!(last.terminated, "it reached the ground");
    assert!(
        last.reward < -5.0,
        "a fall from 6 m is a crash: {}",
        last.reward
    );
    assert!(
        obs.last().expect("obs")[1] < 1.0,
        "it ended near the ground"
    );
}

#[test]
fn full_throttle_climbs_and_no_throttle_does_not() {
    let mut env = env();
    let (up, _) = run(env.as_mut(), [1.0, 0.0], 10);
    // Net upward acceleration ≈ 10 N / 0.5 kg − g ≈ 10.2 m/s² (less the small tilt).
    let vy = up[10][3];
    let expected = 10.0 / MASS - 9.81;
    assert!(
        vy > 0.5 * expected * 0.5,
        "vy after 0.5 s at full throttle: {vy}"
    );
    assert!(up[10][1] > up[0][1], "it rose");
}

#[test]
fn side_thrusters_turn_it_both_ways() {
    let mut env = env();
    let (left, _) = run(env.as_mut(), [0.0, 1.0], 10);
    let (right, _) = run(env.as_mut(), [0.0, -1.0], 10);
    assert!(
        left[10][5] > 0.5 && right[10][5] < -0.5,
        "{} {}",
        left[10][5],
        right[10][5]
    );
}

#[test]
fn same_seed_same_episode_and_bad_options_are_named() {
    let (mut a, mut b) = (env(), env());
    assert_eq!(
        run(a.as_mut(), [0.2, 0.1], 50).0,
        run(b.as_mut(), [0.2, 0.1], 50).0
    );
    let mut bad = wormnet_cli::sim::toml::Table::new();
    bad.insert("main_thrust".into(), (-1.0).into());
    let e = from_options(&bad)
        .err()
        .expect("negative thrust is refused");
    assert!(e.to_string().contains("main_thrust"), "{e}");
    let mut unknown = wormnet_cli::sim::toml::Table::new();
    unknown.insert("gravity".into(), 1.0.into());
    let e = from_options(&unknown)
        .err()
        .expect("unknown option is refused");
    assert!(e.to_string().contains("gravity"), "{e}");
}
