//! The Bevy + Rapier test env steps headless, by a fixed dt, and deterministically.

use wormnet_sim::{EpisodeDriver, VecEnv, VecEnvConfig};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

/// Observations of `steps` steps with a fixed action pattern, through the driver (auto-reset).
fn trajectory(options: &str, seed: u64, steps: usize) -> Vec<f32> {
    let env = wormnet_envs::registry()
        .make("ball_slope", &table(options))
        .unwrap();
    let mut driver = EpisodeDriver::new(env, 0);
    let mut obs = vec![0.0; 5];
    let mut fin = vec![0.0; 5];
    driver.reset(Some(seed), &mut obs).unwrap();
    let mut out = obs.clone();
    for t in 0..steps {
        let a = [((t as f32) * 0.1).sin()];
        driver.step_autoreset(&a, &mut obs, &mut fin).unwrap();
        out.extend_from_slice(&obs);
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn same_seed_same_actions_bit_identical() {
    // 400 steps crosses the 300-step limit, so an auto-reset (fresh App) is included.
    let a = trajectory("", 4, 400);
    let b = trajectory("", 4, 400);
    assert_eq!(bits(&a), bits(&b));
    let c = trajectory("", 5, 400);
    assert_ne!(bits(&a), bits(&c), "the seed changes the start");
}

#[test]
fn the_ball_rolls_downhill_under_gravity() {
    let mut env = wormnet_envs::registry()
        .make("ball_slope", &toml::Table::new())
        .unwrap();
    let mut obs = vec![0.0; 5];
    env.reset(Some(1), &mut obs);
    let (x0, y0) = (obs[0], obs[1]);
    assert_eq!(
        &obs[2..],
        &[0.0, 0.0, 0.0],
        "reset does not advance physics"
    );
    let mut total = 0.0;
    for _ in 0..60 {
        total += env.step(&[0.0], &mut obs).reward;
    }
    // One simulated second (60 × 1/60 s): the ball has rolled right and down, and spins.
    assert!(
        obs[0] > x0 + 0.1 && obs[1] < y0 - 0.03,
        "{x0},{y0} -> {obs:?}"
    );
    assert!(obs[2] > 0.0 && obs[4] < 0.0, "{obs:?}");
    assert!(
        (total - (obs[0] - x0)).abs() < 1e-4,
        "reward sums to progress"
    );
    let frame = env.frame();
    assert_eq!(frame.shapes.len(), 2, "slope and ball");
    assert!((frame.time - 1.0).abs() < 1e-5);
}

#[test]
fn one_step_is_one_fixed_dt_and_substeps_are_configurable() {
    // Free fall from rest is independent of wall-clock time: after k steps the ball moved as
    // k fixed steps of 1/60 s, whether the loop runs fast or sleeps.
    let run = |options: &str, sleep: bool| {
        let mut env = wormnet_envs::registry()
            .make("ball_slope", &table(options))
            .unwrap();
        let mut obs = vec![0.0; 5];
        env.reset(Some(2), &mut obs);
        for _ in 0..5 {
            env.step(&[0.0], &mut obs);
            if sleep {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        obs
    };
    assert_eq!(bits(&run("", false)), bits(&run("", true)));
    let four = run("substeps = 4", false);
    assert_ne!(
        bits(&run("", false)),
        bits(&four),
        "substeps change the integration"
    );
    assert_eq!(bits(&four), bits(&run("substeps = 4", true)));
}

#[test]
fn bevy_envs_vectorise_deterministically_across_workers() {
    let run = |workers: usize| {
        let factory = wormnet_envs::registry()
            .factory("ball_slope", toml::Table::new())
            .unwrap();
        let mut envs = VecEnv::new(factory, VecEnvConfig::new(4, workers)).unwrap();
        let mut all = envs.reset(Some(10)).unwrap().to_vec();
        for t in 0..50 {
            let a: Vec<f32> = (0..4)
                .map(|i| ((t * (i + 1)) as f32 * 0.05).cos())
                .collect();
            all.extend_from_slice(envs.step(&a).unwrap().obs);
        }
        all
    };
    assert_eq!(bits(&run(1)), bits(&run(2)));
}

/// Runs `steps` steps with zero push, returning each episode's reset observation and the
/// observation one step later.
fn episode_starts(options: &str, steps: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let env = wormnet_envs::registry()
        .make("ball_slope", &table(options))
        .unwrap();
    let mut driver = EpisodeDriver::new(env, 0);
    let (mut obs, mut fin) = (vec![0.0; 5], vec![0.0; 5]);
    driver.reset(Some(21), &mut obs).unwrap();
    let mut starts = Vec::new();
    let mut start = Some(obs.clone());
    for _ in 0..steps {
        let t = driver.step_autoreset(&[0.0], &mut obs, &mut fin).unwrap();
        if let Some(s) = start.take() {
            starts.push((s, obs.clone()));
        }
        if t.step.done() {
            start = Some(obs.clone());
        }
    }
    starts
}

#[test]
fn in_place_reset_restarts_like_a_fresh_app() {
    // Slope 0.6: the ball rolls off the end in well under 300 steps, so episodes are short.
    let fresh = episode_starts("slope = 0.6", 600);
    let in_place = episode_starts("slope = 0.6\nin_place_reset = true", 600);
    assert!(fresh.len() >= 3, "several episodes: {}", fresh.len());
    assert_eq!(fresh.len(), in_place.len());
    for ((f0, f1), (p0, p1)) in fresh.iter().zip(&in_place) {
        // Same episode seed ⇒ same start; zero velocity after the teleport.
        assert_eq!(bits(f0), bits(p0));
        assert_eq!(&p0[2..], &[0.0, 0.0, 0.0]);
        // Rapier took the teleport: one step later the ball is still at its new start.
        assert!(
            (p1[0] - p0[0]).abs() < 0.05 && (p1[1] - p0[1]).abs() < 0.05,
            "{p0:?} -> {p1:?}"
        );
        assert!((f1[0] - p1[0]).abs() < 1e-3, "{f1:?} vs {p1:?}");
    }
    assert_eq!(
        bits(&trajectory("in_place_reset = true", 8, 400)),
        bits(&trajectory("in_place_reset = true", 8, 400))
    );
}

#[test]
fn seeded_reset_reproduces_a_fresh_env_even_with_in_place_resets() {
    let opts = table("slope = 0.6\nin_place_reset = true");
    let registry = wormnet_envs::registry();
    let mut used = registry.make("ball_slope", &opts).unwrap();
    let mut obs = vec![0.0; 5];
    used.reset(Some(1), &mut obs);
    for _ in 0..50 {
        used.step(&[0.5], &mut obs);
    }
    used.reset(None, &mut obs);
    used.step(&[0.5], &mut obs);
    let mut fresh = registry.make("ball_slope", &opts).unwrap();
    let (mut a, mut b) = (vec![0.0; 5], vec![0.0; 5]);
    used.reset(Some(77), &mut a);
    fresh.reset(Some(77), &mut b);
    for t in 0..100 {
        assert_eq!(bits(&a), bits(&b), "step {t}");
        used.step(&[-0.3], &mut a);
        fresh.step(&[-0.3], &mut b);
    }
}

#[test]
fn bevy_episodes_record_to_rollout_files() {
    use wormnet_sim::rollout::{Decision, Rollout};
    let env = wormnet_envs::registry()
        .make("ball_slope", &toml::Table::new())
        .unwrap();
    let rollout = Rollout::record(env, toml::Table::new(), 3, 20, |obs| Decision {
        action: vec![if obs[2] > 0.0 { -0.5 } else { 0.5 }],
        internals: None,
    })
    .unwrap();
    assert_eq!(rollout.steps.len(), 20);
    let ball = |f: &wormnet_sim::Frame| f.shapes[1].pose;
    // The recorded frames follow the observations (the ball is the second collider).
    let last = rollout.steps.last().unwrap();
    assert!((ball(&last.frame).x - last.observation[0]).abs() < 1e-5);
    assert!(ball(&rollout.initial_frame).x != ball(&last.frame).x);
    let path = std::env::temp_dir().join(format!("wormnet-ball-{}.json", std::process::id()));
    rollout.save(&path).unwrap();
    assert_eq!(Rollout::load(&path).unwrap(), rollout);
    std::fs::remove_file(&path).unwrap();
}
