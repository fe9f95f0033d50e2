//! The swimming worm: a travelling wave swims, the reversed wave swims backwards, rest stays
//! put; determinism and the fault checks of the sim core hold.

use wormnet_sim::{Env, EpisodeDriver, VecEnv, VecEnvConfig};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

fn make(options: &str) -> Box<dyn Env> {
    wormnet_envs::registry()
        .make("worm", &table(options))
        .unwrap()
}

/// Centre of mass x of the worm, from the frame's capsules (each is a two-point polyline).
fn com_x(env: &dyn Env) -> f32 {
    let frame = env.frame();
    let overlay = frame
        .overlays
        .iter()
        .find(|o| o.label == "centre_of_mass_x")
        .expect("the worm frame reports its centre of mass");
    overlay.value
}

/// A travelling sine wave on the joints: `direction` +1 runs head → tail, −1 tail → head.
fn sine_gait(t: usize, joints: usize, dt: f32, direction: f32) -> Vec<f32> {
    let frequency = 1.0; // Hz
    let phase_step = std::f32::consts::TAU / joints as f32;
    let time = t as f32 * dt;
    (0..joints)
        .map(|j| {
            (std::f32::consts::TAU * frequency * time - direction * phase_step * j as f32).sin()
        })
        .collect()
}

/// Swims for `seconds` with `policy(t)` and returns (forward displacement of the centre of
/// mass, body length, sum of rewards).
fn swim(options: &str, seconds: f32, policy: impl Fn(usize, usize, f32) -> Vec<f32>) -> (f32, f32) {
    let mut env = make(options);
    let spec = env.spec().clone();
    let joints = spec.action_dim();
    let mut obs = vec![0.0; spec.obs_dim()];
    env.reset(Some(3), &mut obs);
    let x0 = com_x(env.as_ref());
    let steps = (seconds / spec.dt).round() as usize;
    let mut total = 0.0;
    for t in 0..steps {
        let action = policy(t, joints, spec.dt);
        let step = env.step(&action, &mut obs);
        assert!(!step.done(), "no termination without a goal");
        assert!(obs.iter().all(|v| v.is_finite()), "{obs:?}");
        total += step.reward;
    }
    let dx = com_x(env.as_ref()) - x0;
    println!("{options:?}: dx = {dx}, return = {total}, dt = {}", spec.dt);
    (dx, total)
}

const BODY_LENGTH: f32 = 6.0 * 0.2;

#[test]
fn sine_gait_swims_forward_more_than_a_body_length_in_ten_seconds() {
    for options in ["", "actuation = \"torque\""] {
        let (dx, total) = swim(options, 10.0, |t, j, dt| sine_gait(t, j, dt, 1.0));
        assert!(dx > BODY_LENGTH, "{options}: moved {dx} m");
        // The reward is forward speed: its sum times dt is the displacement (minus control cost).
        assert!((total * 0.04 - dx).abs() < 0.05 * dx, "{total} vs {dx}");
    }
}

#[test]
fn reversed_wave_swims_backwards_and_rest_stays_put() {
    for options in ["", "actuation = \"torque\""] {
        let (forward, _) = swim(options, 10.0, |t, j, dt| sine_gait(t, j, dt, 1.0));
        let (backward, _) = swim(options, 10.0, |t, j, dt| sine_gait(t, j, dt, -1.0));
        assert!(
            backward < -0.5 * forward,
            "{options}: {forward} vs {backward}"
        );
        let (rest, _) = swim(options, 10.0, |_, j, _| vec![0.0; j]);
        assert!(rest.abs() < 0.1 * forward, "{options}: drifted {rest} m");
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Observations and rewards of `steps` steps with a fixed action pattern, through the episode
/// driver (auto-reset included when the limit is short).
fn trajectory(options: &str, seed: u64, steps: usize) -> Vec<f32> {
    let env = make(options);
    let spec = env.spec().clone();
    let mut driver = EpisodeDriver::new(env, 0);
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut fin = obs.clone();
    driver.reset(Some(seed), &mut obs).unwrap();
    let mut out = obs.clone();
    for t in 0..steps {
        let a: Vec<f32> = (0..spec.action_dim())
            .map(|j| ((t * (j + 1)) as f32 * 0.13).sin())
            .collect();
        let step = driver.step_autoreset(&a, &mut obs, &mut fin).unwrap();
        out.extend_from_slice(&obs);
        out.push(step.step.reward);
    }
    out
}

#[test]
fn same_seed_same_actions_bit_identical_across_resets() {
    let options = "max_episode_steps = 120";
    let a = trajectory(options, 7, 300);
    assert_eq!(bits(&a), bits(&trajectory(options, 7, 300)));
    assert_ne!(
        bits(&a),
        bits(&trajectory(options, 8, 300)),
        "the seed changes the start"
    );
}

#[test]
fn vectorised_worms_are_deterministic_across_workers_and_never_fault() {
    let run = |workers: usize| {
        let factory = wormnet_envs::registry()
            .factory("worm", table("max_episode_steps = 50"))
            .unwrap();
        let mut envs = VecEnv::new(factory, VecEnvConfig::new(4, workers)).unwrap();
        let mut all = envs.reset(Some(11)).unwrap().to_vec();
        let mut episodes = 0;
        for t in 0..120 {
            // Saturated bang-bang actions: the harshest input the action space allows.
            let a: Vec<f32> = (0..4 * 5)
                .map(|i| if (t / 3 + i) % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let out = envs.step(&a).unwrap();
            episodes += out.episodes.len();
            all.extend_from_slice(out.obs);
        }
        assert_eq!(episodes, 4 * 2, "every env truncates at 50 and 100 steps");
        all
    };
    assert_eq!(bits(&run(1)), bits(&run(2)));
}

#[test]
fn spec_names_every_component_and_goal_mode_reaches_its_goal_sooner_or_later() {
    let env = make("");
    let spec = env.spec();
    assert_eq!(spec.action_dim(), 5);
    assert_eq!(spec.obs_dim(), 5 + 5 + 3 + 2);
    assert_eq!(spec.observation_names[0], "joint0_angle");
    assert_eq!(spec.action_names[4], "joint4_target");
    assert_eq!(spec.dt, 0.04);
    // A goal straight ahead, 1.5 m away: the forward gait reaches it and the episode ends.
    let mut env = make("goal_distance = 1.5\ngoal_bearing = 0.0");
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset(Some(1), &mut obs);
    let n = obs.len();
    assert!(obs[n - 2] > 0.9, "goal ahead in the head frame: {obs:?}");
    let mut reached = false;
    for t in 0..500 {
        let step = env.step(&sine_gait(t, 5, 0.04, 1.0), &mut obs);
        if step.terminated {
            assert!(step.reward > 5.0, "goal bonus paid");
            reached = true;
            break;
        }
    }
    assert!(reached, "the gait reaches a goal 1.5 m ahead within 20 s");
}

#[test]
fn bad_options_are_errors_naming_env_and_option() {
    for (text, option) in [
        ("segments = 1", "segments"),
        ("drag_normal = -1.0", "drag_normal"),
        ("actuation = \"telepathy\"", "actuation"),
        ("segmentz = 3", "segmentz"),
    ] {
        let err = wormnet_envs::registry()
            .make("worm", &table(text))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("`worm`") && err.contains(option),
            "{text}: {err}"
        );
    }
}

/// `configs/worm.toml`'s env options build the env with the defaults, and every option line is
/// commented.
#[test]
fn shipped_config_builds_the_env_and_documents_every_option() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/worm.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let env = config["env"].as_table().unwrap();
    assert_eq!(env["name"].as_str(), Some("worm"));
    let options = env["options"].as_table().unwrap();
    let built = wormnet_envs::registry().make("worm", options).unwrap();
    assert_eq!(
        built.spec(),
        make("").spec(),
        "the config spells out the defaults"
    );
    assert_env_options_documented(&text);
}

/// Every option line of the config's `[env…]` sections carries a comment (the other sections
/// belong to the trainer).
fn assert_env_options_documented(text: &str) {
    let mut in_env = false;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('[') {
            in_env = line.starts_with("[env");
        } else if in_env && line.contains('=') && !line.starts_with('#') {
            assert!(line.contains('#'), "undocumented: {line}");
        }
    }
}

/// The worm's view follows it, so its frame draws a grid fixed in the medium: the lines stay
/// at the same world positions while the worm swims past them.
#[test]
fn the_medium_grid_is_fixed_in_the_world() {
    let mut env = make("");
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset(Some(1), &mut obs);
    let verticals = |env: &dyn Env| -> Vec<f32> {
        env.frame()
            .polylines
            .iter()
            .filter(|l| l.points.len() == 2 && l.points[0][0] == l.points[1][0])
            .map(|l| l.points[0][0])
            .collect()
    };
    let before = verticals(env.as_ref());
    assert!(before.len() >= 4, "{before:?}");
    let joints = env.spec().action_dim();
    for t in 0..100 {
        env.step(&sine_gait(t, joints, env.spec().dt, 1.0), &mut obs);
    }
    let after = verticals(env.as_ref());
    for x in before.iter().chain(&after) {
        let k = x / 0.25;
        assert!(
            (k - k.round()).abs() < 1e-3,
            "a grid line off the 0.25 m lattice: {x}"
        );
    }
    assert_ne!(before, after, "the view moved with the worm");
}
