//! CartPole-v1, Pendulum-v1 and MountainCarContinuous-v0 replay trajectories recorded from
//! Gymnasium 1.4 (scripts/dev/gym_fixtures.py) and must match them to 1e-5.

use serde::Deserialize;
use wormnet_envs::cartpole::{CartPole, CartPoleOptions};
use wormnet_envs::mountaincar::{MountainCar, MountainCarOptions};
use wormnet_envs::pendulum::{Pendulum, PendulumOptions};
use wormnet_sim::{Env, EpisodeDriver, EpisodeStats, Space};

#[derive(Deserialize)]
struct Fixture {
    trajectories: Vec<Trajectory>,
}

#[derive(Deserialize)]
struct Trajectory {
    seed: u64,
    policy: String,
    initial_state: Vec<f64>,
    initial_observation: Vec<f32>,
    steps: Vec<FixtureStep>,
}

#[derive(Deserialize)]
struct FixtureStep {
    action: Vec<f32>,
    observation: Vec<f32>,
    reward: f64,
    terminated: bool,
    truncated: bool,
}

const TOL: f32 = 1e-5;

fn load(name: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= TOL, "{what}: {a:?} vs gymnasium {b:?}");
    }
}

/// Replays `traj` through `env` (after `set_state`), checking obs, reward, flags; the time
/// limit comes from the spec through an EpisodeDriver-equivalent count.
fn replay(env: &mut dyn Env, traj: &Trajectory, initial_obs: &[f32]) {
    let tag = format!("seed {} policy {}", traj.seed, traj.policy);
    close(
        initial_obs,
        &traj.initial_observation,
        &format!("{tag} reset"),
    );
    let limit = env
        .spec()
        .max_episode_steps
        .expect("gymnasium envs have a limit");
    let mut obs = vec![0.0; env.spec().obs_dim()];
    for (t, s) in traj.steps.iter().enumerate() {
        let step = env.step(&s.action, &mut obs);
        let what = format!("{tag} step {t}");
        close(&obs, &s.observation, &what);
        assert!(
            (f64::from(step.reward) - s.reward).abs() <= f64::from(TOL),
            "{what}: reward {} vs {}",
            step.reward,
            s.reward
        );
        assert_eq!(step.terminated, s.terminated, "{what}: terminated");
        let truncated = step.truncated || (t as u32 + 1) >= limit;
        assert_eq!(truncated, s.truncated, "{what}: truncated");
    }
}

#[test]
fn cartpole_matches_gymnasium() {
    let fixture = load("cartpole.json");
    assert!(
        fixture.trajectories.iter().any(|t| t.steps.len() == 500),
        "a time-limit case"
    );
    assert!(fixture
        .trajectories
        .iter()
        .any(|t| t.steps.last().unwrap().terminated));
    for traj in &fixture.trajectories {
        let mut env = CartPole::new(CartPoleOptions::default());
        let mut obs = vec![0.0; 4];
        let s = &traj.initial_state;
        env.set_state([s[0], s[1], s[2], s[3]], &mut obs);
        replay(&mut env, traj, &obs);
    }
}

#[test]
fn pendulum_matches_gymnasium_including_its_torque_clipping() {
    let fixture = load("pendulum.json");
    assert!(
        fixture
            .trajectories
            .iter()
            .any(|t| t.steps.iter().any(|s| s.action[0].abs() > 2.0)),
        "fixtures exercise out-of-range torques"
    );
    for traj in &fixture.trajectories {
        let mut env = Pendulum::new(PendulumOptions::default());
        let mut obs = vec![0.0; 3];
        env.set_state([traj.initial_state[0], traj.initial_state[1]], &mut obs);
        replay(&mut env, traj, &obs);
    }
}

#[test]
fn no_velocity_variants_hide_exactly_the_velocities() {
    let fixture = load("cartpole.json");
    let traj = &fixture.trajectories[1];
    let mut env = CartPole::new(CartPoleOptions {
        no_velocity: true,
        ..CartPoleOptions::default()
    });
    assert_eq!(
        env.spec().observation_names,
        ["cart_position", "pole_angle"]
    );
    let mut obs = vec![0.0; 2];
    let s = &traj.initial_state;
    env.set_state([s[0], s[1], s[2], s[3]], &mut obs);
    for st in &traj.steps {
        env.step(&st.action, &mut obs);
        close(
            &obs,
            &[st.observation[0], st.observation[2]],
            "cartpole no_velocity",
        );
    }

    let fixture = load("pendulum.json");
    let traj = &fixture.trajectories[0];
    let mut env = Pendulum::new(PendulumOptions { no_velocity: true });
    assert_eq!(env.spec().observation_names, ["cos_theta", "sin_theta"]);
    let mut obs = vec![0.0; 2];
    env.set_state([traj.initial_state[0], traj.initial_state[1]], &mut obs);
    for st in &traj.steps {
        env.step(&st.action, &mut obs);
        close(&obs, &st.observation[..2], "pendulum no_velocity");
    }
}

#[test]
fn time_limits_and_clipping_through_the_driver() {
    // Pendulum never terminates: the driver truncates at exactly 200 steps, clipping torques.
    let mut driver = EpisodeDriver::new(Box::new(Pendulum::new(PendulumOptions::default())), 0);
    let mut obs = vec![0.0; 3];
    driver.reset(Some(5), &mut obs).unwrap();
    for t in 1..=200u32 {
        let tr = driver.step(&[7.5], &mut obs).unwrap();
        assert_eq!(tr.step.truncated, t == 200);
        assert!(!tr.step.terminated);
    }
    // CartPole rejects a non-index action instead of clamping it.
    let mut driver = EpisodeDriver::new(Box::new(CartPole::new(CartPoleOptions::default())), 3);
    let mut obs = vec![0.0; 4];
    driver.reset(Some(5), &mut obs).unwrap();
    let err = driver.step(&[2.0], &mut obs).unwrap_err().to_string();
    assert!(err.contains("`cartpole` #3"), "{err}");
}

#[test]
fn resets_are_seeded_and_within_gymnasium_ranges() {
    let mut a = CartPole::new(CartPoleOptions::default());
    let mut b = CartPole::new(CartPoleOptions::default());
    let (mut oa, mut ob) = (vec![0.0; 4], vec![0.0; 4]);
    a.reset(Some(9), &mut oa);
    b.reset(Some(9), &mut ob);
    assert_eq!(oa, ob);
    assert!(a.state().iter().all(|s| s.abs() <= 0.05));
    let mut p = Pendulum::new(PendulumOptions::default());
    let mut op = vec![0.0; 3];
    for seed in 0..50 {
        p.reset(Some(seed), &mut op);
        let [th, thdot] = p.state();
        assert!(th.abs() <= std::f64::consts::PI && thdot.abs() <= 1.0);
    }
}

#[test]
fn mountaincar_matches_gymnasium_including_its_force_clipping() {
    let fixture = load("mountaincar.json");
    let trajs = &fixture.trajectories;
    assert!(
        trajs.iter().any(|t| t.steps.len() == 999),
        "a time-limit case"
    );
    assert!(
        trajs.iter().any(|t| t.steps.last().unwrap().terminated),
        "a flag reached"
    );
    assert!(
        trajs
            .iter()
            .any(|t| t.steps.iter().any(|s| s.action[0].abs() > 1.0)),
        "fixtures exercise out-of-range forces"
    );
    for traj in trajs {
        let mut env = MountainCar::new(MountainCarOptions::default());
        let mut obs = vec![0.0; 2];
        env.set_state([traj.initial_state[0], traj.initial_state[1]], &mut obs);
        replay(&mut env, traj, &obs);
    }
}

/// Runs one episode through the driver with `policy(obs)`, returning its statistics.
fn episode(env: Box<dyn Env>, seed: u64, policy: impl Fn(&[f32]) -> f32) -> EpisodeStats {
    let mut obs = vec![0.0; env.spec().obs_dim()];
    let mut driver = EpisodeDriver::new(env, 0);
    driver.reset(Some(seed), &mut obs).unwrap();
    loop {
        let tr = driver.step(&[policy(&obs)], &mut obs).unwrap();
        if let Some(stats) = tr.episode {
            return stats;
        }
    }
}

#[test]
fn goal_and_survival_tasks_judge_success_at_the_episode_end() {
    let car = || Box::new(MountainCar::new(MountainCarOptions::default()));
    let pump = episode(car(), 3, |o| if o[1] >= 0.0 { 1.0 } else { -1.0 });
    assert!(pump.terminated && pump.length < 999, "{pump:?}");
    assert_eq!(pump.success, Some(true));
    let idle = episode(car(), 3, |_| 0.0);
    assert_eq!((idle.length, idle.success), (999, Some(false)));
    // Survival tasks keep their meaning; an env without success reports none.
    let pole = || Box::new(CartPole::new(CartPoleOptions::default()));
    let fallen = episode(pole(), 1, |_| 1.0);
    assert_eq!((fallen.terminated, fallen.success), (true, Some(false)));
    let swing = episode(
        Box::new(Pendulum::new(PendulumOptions::default())),
        1,
        |_| 0.0,
    );
    assert_eq!(swing.success, None);
}

#[test]
fn continuous_cartpole_is_gymnasiums_with_a_scaled_force() {
    let fixture = load("cartpole.json");
    let traj = &fixture.trajectories[1];
    let options = CartPoleOptions {
        no_velocity: true,
        continuous: true,
        force: 10.0,
    };
    let mut env = CartPole::new(options.clone());
    assert_eq!(
        env.spec().action_space,
        Space::Box {
            low: vec![-1.0],
            high: vec![1.0]
        }
    );
    let mut obs = vec![0.0; 2];
    let s = &traj.initial_state;
    env.set_state([s[0], s[1], s[2], s[3]], &mut obs);
    for st in &traj.steps {
        // Discrete 1 pushes right with the full force: the continuous +1.
        env.step(&[2.0 * st.action[0] - 1.0], &mut obs);
        close(&obs, &[st.observation[0], st.observation[2]], "continuous");
    }
    // Half the force for half the action: the same as a discrete cart of force 5.
    let mut half = CartPole::new(options);
    let mut weak = CartPole::new(CartPoleOptions {
        force: 5.0,
        ..CartPoleOptions::default()
    });
    let (mut a, mut b) = (vec![0.0; 2], vec![0.0; 4]);
    half.set_state([0.0, 0.0, 0.01, 0.0], &mut a);
    weak.set_state([0.0, 0.0, 0.01, 0.0], &mut b);
    for _ in 0..20 {
        half.step(&[-0.5], &mut a);
        weak.step(&[0.0], &mut b);
    }
    assert_eq!(half.state(), weak.state());
    let err = wormnet_envs::registry()
        .make("cartpole", &"force = -1.0".parse::<toml::Table>().unwrap())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("force"), "{err}");
}

/// Energy shaping is potential-based: over a whole episode it adds exactly `energy_shaping` ×
/// (final − initial energy), in units of the rise from the valley floor to the flag — about
/// the full amount for an episode that reaches the flag from rest, nothing for one that stays
/// where it started — and the flag is reached by the same steps as without it.
#[test]
fn mountaincar_energy_shaping_adds_the_change_of_energy() {
    let run = |shaping: f64, pump: bool| {
        let mut env = MountainCar::new(MountainCarOptions {
            energy_shaping: shaping,
        });
        let mut obs = vec![0.0; 2];
        env.reset(Some(3), &mut obs);
        let start = env.state();
        let (mut total, mut steps) = (0.0f64, 0);
        loop {
            let a = if !pump {
                0.0
            } else if obs[1] >= 0.0 {
                1.0
            } else {
                -1.0
            };
            let step = env.step(&[a], &mut obs);
            total += f64::from(step.reward);
            steps += 1;
            if step.terminated || steps == 999 {
                return (total, steps, start, env.state());
            }
        }
    };
    let (plain, plain_steps, ..) = run(0.0, true);
    let (shaped, shaped_steps, start, end) = run(50.0, true);
    assert_eq!(plain_steps, shaped_steps, "shaping changes no dynamics");
    assert!(plain > 80.0, "the pump reaches the flag: {plain}");
    let energy = |[x, v]: [f64; 2]| {
        let e = |x: f64, v: f64| v * v / 2.0 + 0.0025 / 3.0 * (3.0 * x).sin();
        (e(x, v) + 0.0025 / 3.0) / (e(0.45, 0.0) + 0.0025 / 3.0)
    };
    let bonus = 50.0 * (energy(end) - energy(start));
    assert!(bonus > 40.0, "from near the floor to the flag: {bonus}");
    assert!(
        (shaped - plain - bonus).abs() < 1e-3,
        "{shaped} - {plain} != {bonus}"
    );
    let (idle_plain, ..) = run(0.0, false);
    let (idle_shaped, _, start, end) = run(50.0, false);
    let drift = 50.0 * (energy(end) - energy(start));
    assert!((idle_shaped - idle_plain - drift).abs() < 1e-3);
    let bad = MountainCar::from_options(&toml::from_str("energy_shaping = -1.0").unwrap());
    let err = bad.err().expect("negative shaping refused").to_string();
    assert!(err.contains("energy_shaping"), "{err}");
}
