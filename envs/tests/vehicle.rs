//! The vehicle: a pure-pursuit driver laps unseen tracks, a car that never steers leaves the
//! road at the first bend; the frame carries what a renderer needs; determinism and the fault
//! checks of the sim core hold.

use wormnet_sim::frame::Geometry;
use wormnet_sim::{Env, EpisodeDriver, Frame, VecEnv, VecEnvConfig};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

fn make(options: &str) -> Box<dyn Env> {
    wormnet_envs::registry()
        .make("vehicle", &table(options))
        .unwrap()
}

fn overlay(frame: &Frame, label: &str) -> f32 {
    frame
        .overlays
        .iter()
        .find(|o| o.label == label)
        .map(|o| o.value)
        .unwrap_or_else(|| panic!("no overlay {label}"))
}

/// A hand-written pure-pursuit driver that sees only the frame: the centre line (polyline 0)
/// and the car's pose (the only shape). Steers towards the centre-line point `lookahead` ahead.
fn pure_pursuit(frame: &Frame, lookahead: f32, wheelbase: f32, max_steer: f32) -> f32 {
    let centre = &frame.polylines[0].points;
    let car = frame.shapes[0].pose;
    let n = centre.len();
    let dist2 = |p: [f32; 2]| (p[0] - car.x).powi(2) + (p[1] - car.y).powi(2);
    let nearest = (0..n)
        .min_by(|&a, &b| dist2(centre[a]).total_cmp(&dist2(centre[b])))
        .unwrap();
    let mut k = nearest;
    while dist2(centre[k % n]) < lookahead * lookahead {
        k += 1;
    }
    let target = centre[k % n];
    let (dx, dy) = (target[0] - car.x, target[1] - car.y);
    let (sin, cos) = car.angle.sin_cos();
    let (fx, fy) = (cos * dx + sin * dy, -sin * dx + cos * dy);
    let alpha = fy.atan2(fx);
    let steer = (2.0 * wheelbase * alpha.sin() / lookahead).atan();
    (steer / max_steer).clamp(-1.0, 1.0)
}

/// Drives one episode with `policy(frame)` and returns (steps, terminated, truncated, frame).
fn drive(env: &mut dyn Env, seed: u64, policy: impl Fn(&Frame) -> f32) -> (u32, bool, bool, Frame) {
    let spec = env.spec().clone();
    let mut obs = vec![0.0; spec.obs_dim()];
    env.reset(Some(seed), &mut obs);
    let limit = spec.max_episode_steps.unwrap();
    for t in 1..=limit {
        let action = [policy(&env.frame())];
        let step = env.step(&action, &mut obs);
        assert!(
            spec.observation_space.contains(&obs),
            "step {t}: {obs:?} not in the observation space"
        );
        if step.done() {
            return (t, step.terminated, step.truncated, env.frame());
        }
    }
    (limit, false, false, env.frame())
}

#[test]
fn pure_pursuit_laps_every_held_out_track_without_leaving_the_road() {
    // All 50 held-out tracks, each named explicitly.
    for track in 1_000_000..1_000_050u64 {
        let mut env = make(&format!("track_seed = {track}"));
        let (steps, terminated, truncated, frame) =
            drive(env.as_mut(), track, |f| pure_pursuit(f, 7.0, 2.6, 0.5));
        assert!(
            !terminated && truncated,
            "track {track} ended after {steps} steps, lap fraction {}",
            overlay(&frame, "lap_fraction")
        );
        assert_eq!(overlay(&frame, "lap_completed"), 1.0);
        assert_eq!(overlay(&frame, "off_road"), 0.0);
        let lap = overlay(&frame, "lap_fraction");
        assert!((1.0..1.01).contains(&lap), "{lap}");
        // At the cruise speed of 8 m/s, one lap of 200–350 m takes 25–44 s.
        assert!((490..=880).contains(&steps), "track {track}: {steps} steps");
    }
    // Drawing from the held-out set instead: episodes visit different tracks of that set.
    let mut env = make("tracks = \"eval\"");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let (_, terminated, _, frame) =
            drive(env.as_mut(), seed, |f| pure_pursuit(f, 7.0, 2.6, 0.5));
        assert!(!terminated);
        let track = overlay(&frame, "track_seed");
        assert!((1_000_000.0..1_000_050.0).contains(&track), "{track}");
        seen.insert(track as u64);
    }
    assert!(seen.len() >= 3, "{seen:?}");
}

#[test]
fn a_linear_policy_on_the_observations_alone_laps_held_out_tracks() {
    // The observation suffices for the task: steering = -(heading error + lateral offset),
    // a one-layer policy, laps unseen tracks. (The trainer's NCP must do at least this well.)
    let mut env = make("tracks = \"eval\"");
    let spec = env.spec().clone();
    let heading = spec
        .observation_names
        .iter()
        .position(|n| n == "heading_error")
        .unwrap();
    let lateral = spec
        .observation_names
        .iter()
        .position(|n| n == "lateral_offset")
        .unwrap();
    let mut obs = vec![0.0; spec.obs_dim()];
    for seed in 0..10 {
        env.reset(Some(seed), &mut obs);
        let mut total = 0.0;
        let mut ended = None;
        for t in 1..=spec.max_episode_steps.unwrap() {
            let steer = (-(2.0 * obs[heading] + 0.8 * obs[lateral])).clamp(-1.0, 1.0);
            let step = env.step(&[steer], &mut obs);
            total += step.reward;
            if step.done() {
                ended = Some((t, step.terminated));
                break;
            }
        }
        let (steps, terminated) = ended.expect("the lap ends the episode");
        assert!(!terminated, "episode {seed} failed after {steps} steps");
        // Dense, well-scaled reward: about 1 per step when driving a lap near the centre.
        assert!(
            total > 0.8 * steps as f32 && total < 1.05 * steps as f32,
            "{total} over {steps}"
        );
    }
}

#[test]
fn without_steering_the_car_leaves_the_road_at_the_first_bend() {
    let mut env = make("tracks = \"eval\"\nstart_offset = 0.0\nstart_heading = 0.0");
    for seed in 0..5 {
        let (steps, terminated, truncated, frame) = drive(env.as_mut(), seed, |_| 0.0);
        assert!(terminated && !truncated, "episode {seed}");
        assert_eq!(overlay(&frame, "off_road"), 1.0, "episode {seed}");
        assert!(
            overlay(&frame, "lap_fraction") < 0.5,
            "episode {seed} drove {} of a lap in {steps} steps",
            overlay(&frame, "lap_fraction")
        );
    }
}

#[test]
fn frame_carries_track_car_and_rays_and_observations_make_sense() {
    let mut env = make("");
    let spec = env.spec().clone();
    assert_eq!(spec.obs_dim(), 11 + 4);
    assert_eq!(spec.observation_names[0], "range_-90deg");
    assert_eq!(spec.observation_names[5], "range_+0deg");
    assert_eq!(spec.observation_names[11], "speed");
    assert_eq!(spec.action_names, vec!["steering".to_string()]);
    let mut obs = vec![0.0; spec.obs_dim()];
    env.reset(Some(4), &mut obs);
    // On the road, the side sensors see the borders about half a road width away, already in
    // the reset observation; the speed starts at the cruise speed.
    let check = |obs: &[f32]| {
        let side = (obs[0] + obs[10]) * 40.0;
        assert!((6.0..12.0).contains(&side), "side ranges {obs:?}");
        assert!((obs[11] - 8.0 / 12.0).abs() < 0.05, "speed {obs:?}");
    };
    check(&obs);
    env.step(&[0.0], &mut obs);
    check(&obs);
    let frame = env.frame();
    assert_eq!(
        frame.polylines.len(),
        3 + 11,
        "centre, borders, one line per ray"
    );
    assert!(frame.polylines[..3]
        .iter()
        .all(|p| p.closed && p.points.len() > 100));
    assert!(matches!(frame.shapes[0].geometry, Geometry::Rect { .. }));
    assert!(frame.view.is_some());
}

#[test]
fn throttle_and_noise_options_reach_the_env() {
    let mut env = make("throttle = true\nsensor_noise = 0.05");
    assert_eq!(env.spec().action_names, vec!["steering", "throttle"]);
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset(Some(1), &mut obs);
    for _ in 0..40 {
        env.step(&[0.0, -1.0], &mut obs);
    }
    assert!(
        obs[11] < 0.2,
        "full brake for 2 s stops an 8 m/s car: {obs:?}"
    );
}

#[test]
fn without_privileged_state_the_car_sees_ranges_speed_and_steering_only() {
    let mut full = make("");
    let mut bare = make("privileged = false");
    let names = &bare.spec().observation_names;
    assert_eq!(bare.spec().obs_dim(), full.spec().obs_dim() - 2);
    assert!(!names
        .iter()
        .any(|n| n == "heading_error" || n == "lateral_offset"));
    assert_eq!(&names[11..], ["speed", "steering"]);
    let (mut a, mut b) = (vec![0.0; 15], vec![0.0; 13]);
    full.reset(Some(4), &mut a);
    bare.reset(Some(4), &mut b);
    for _ in 0..30 {
        full.step(&[0.3], &mut a);
        bare.step(&[0.3], &mut b);
    }
    // The same car on the same track: the same ranges, speed and steering.
    assert_eq!(bits(&b[..12]), bits(&a[..12]));
    assert_eq!(b[12].to_bits(), a[14].to_bits());
    assert!(
        (b[12] - 0.3).abs() < 1e-6,
        "steering held at 0.3 of full lock: {b:?}"
    );
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn trajectory(options: &str, seed: u64, steps: usize) -> Vec<f32> {
    let env = make(options);
    let spec = env.spec().clone();
    let mut driver = EpisodeDriver::new(env, 0);
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut fin = obs.clone();
    driver.reset(Some(seed), &mut obs).unwrap();
    let mut out = obs.clone();
    for t in 0..steps {
        let a = [(t as f32 * 0.05).sin() * 0.6];
        let tr = driver.step_autoreset(&a, &mut obs, &mut fin).unwrap();
        out.extend_from_slice(&obs);
        out.push(tr.step.reward);
    }
    out
}

#[test]
fn same_seed_same_actions_bit_identical_across_resets() {
    // Weaving crashes within a few hundred steps, so resets (new tracks) are included.
    let options = "sensor_noise = 0.02";
    let a = trajectory(options, 3, 600);
    assert_eq!(bits(&a), bits(&trajectory(options, 3, 600)));
    assert_ne!(bits(&a), bits(&trajectory(options, 4, 600)));
}

#[test]
fn vectorised_cars_are_deterministic_across_workers_and_report_failures() {
    let run = |workers: usize| {
        let factory = wormnet_envs::registry()
            .factory("vehicle", toml::Table::new())
            .unwrap();
        let mut envs = VecEnv::new(factory, VecEnvConfig::new(4, workers)).unwrap();
        let mut all = envs.reset(Some(21)).unwrap().to_vec();
        let mut crashes = 0;
        for _ in 0..300 {
            let out = envs.step(&[1.0, -1.0, 0.5, 0.0]).unwrap();
            for e in out.episodes {
                assert!(e.terminated, "hard steering never completes a lap");
                assert!(!wormnet_envs::vehicle::lap_completed(e));
                crashes += 1;
            }
            all.extend_from_slice(out.obs);
        }
        assert!(crashes >= 4, "{crashes}");
        all
    };
    assert_eq!(bits(&run(1)), bits(&run(2)));
}

#[test]
fn bad_options_are_errors_naming_env_and_option() {
    for (text, option) in [
        ("rays = 0", "rays"),
        ("eval_seeds = [5, 10]", "overlap"),
        ("track_width = [10.0, 8.0]", "track_width"),
        ("speed = 2.0", "max_episode_steps"),
        ("tracks = \"test\"", "tracks"),
        ("ray = 3", "ray"),
    ] {
        let err = wormnet_envs::registry()
            .make("vehicle", &table(text))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("`vehicle`") && err.contains(option),
            "{text}: {err}"
        );
    }
}

/// `configs/vehicle.toml`'s env options build the env, every env option line is commented, and the
/// evaluation overrides select the held-out tracks.
#[test]
fn shipped_config_builds_the_env_and_documents_every_option() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/vehicle.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let env = config["env"].as_table().unwrap();
    assert_eq!(env["name"].as_str(), Some("vehicle"));
    let mut options = env["options"].as_table().unwrap().clone();
    let built = wormnet_envs::registry().make("vehicle", &options).unwrap();
    assert_eq!(built.spec().obs_dim(), 15);
    for (k, v) in env["eval_options"].as_table().unwrap() {
        options.insert(k.clone(), v.clone());
    }
    let mut eval = wormnet_envs::registry().make("vehicle", &options).unwrap();
    let mut obs = vec![0.0; 15];
    eval.reset(Some(0), &mut obs);
    let track = overlay(&eval.frame(), "track_seed");
    assert!((1_000_000.0..1_000_050.0).contains(&track), "{track}");
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

/// `follow` puts the view on the car (only what is drawn changes); 0 shows the whole track.
#[test]
fn the_view_can_follow_the_car() {
    for (options, follows) in [("", false), ("follow = 12.0", true)] {
        let mut env = make(options);
        let mut obs = vec![0.0; env.spec().obs_dim()];
        env.reset(Some(3), &mut obs);
        for _ in 0..20 {
            env.step(&[0.1], &mut obs);
        }
        let frame = env.frame();
        let car = frame
            .shapes
            .iter()
            .find(|s| matches!(s.geometry, Geometry::Rect { .. }))
            .expect("the car");
        let view = frame.view.expect("a view");
        let (cx, cy) = (0.5 * (view[0] + view[2]), 0.5 * (view[1] + view[3]));
        let centred = (cx - car.pose.x).abs() < 1e-3 && (cy - car.pose.y).abs() < 1e-3;
        assert_eq!(centred, follows, "{options:?}: view {view:?}");
        if follows {
            assert!((view[3] - view[1] - 24.0).abs() < 1e-3);
        }
    }
}

/// Drives one episode with the env's own expert action; returns (steps, terminated).
fn drive_expert(env: &mut dyn Env, seed: u64) -> (u32, bool) {
    let spec = env.spec().clone();
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.action_dim()];
    env.reset(Some(seed), &mut obs);
    for t in 1..=spec.max_episode_steps.unwrap() {
        assert!(env.expert_action(&mut action), "step {t}: no expert action");
        assert!(spec.action_space.contains(&action), "{action:?}");
        let step = env.step(&action, &mut obs);
        if step.done() {
            return (t, step.terminated);
        }
    }
    (spec.max_episode_steps.unwrap(), true)
}

#[test]
fn the_expert_action_laps_held_out_tracks_from_bad_starts_and_with_throttle() {
    for options in [
        "tracks = \"eval\"",
        "tracks = \"eval\"\nthrottle = true",
        "tracks = \"eval\"\nstart_offset = 1.5\nstart_heading = 0.4",
        "tracks = \"eval\"\nobservation = \"camera\"\nprivileged = false",
    ] {
        let mut env = make(options);
        for seed in 0..8 {
            let (steps, terminated) = drive_expert(env.as_mut(), seed);
            assert!(
                !terminated,
                "{options}: episode {seed} failed after {steps}"
            );
        }
    }
    // Envs without an expert say so and leave the buffer alone.
    let cartpole = wormnet_envs::registry()
        .make("cartpole", &toml::Table::new())
        .unwrap();
    let mut action = [7.0];
    assert!(!cartpole.expert_action(&mut action));
    assert_eq!(action, [7.0]);
}
