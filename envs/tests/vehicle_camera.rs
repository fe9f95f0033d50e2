//! The vehicle's camera: a forward view of the road rendered from the track geometry — sky
//! above, road below, edge lines either side; informative enough that a driver reading only
//! the pixels laps held-out tracks; deterministic, with its augmentations drawn from the seed.

use wormnet_envs::vehicle::camera::shade;
use wormnet_sim::Env;

const CAMERA: &str = "observation = \"camera\"\nprivileged = false\n";

fn make(options: &str) -> Box<dyn Env> {
    let table: toml::Table = toml::from_str(&format!("{CAMERA}{options}")).unwrap();
    wormnet_envs::registry().make("vehicle", &table).unwrap()
}

/// Road and markings per column of `row` (1 = the road is there).
fn road_in_row(obs: &[f32], width: usize, row: usize) -> Vec<f32> {
    obs[row * width..(row + 1) * width]
        .iter()
        .map(|&p| f32::from(p > shade::VERGE + 0.1 && p < shade::SKY - 0.1 || p > shade::SKY + 0.1))
        .collect()
}

/// Steers towards the middle of the road seen a few rows above the bottom of the image.
fn pixel_driver(obs: &[f32], width: usize, height: usize) -> f32 {
    let mut sum = 0.0;
    let mut count = 0.0;
    for row in height - 8..height - 3 {
        for (col, on) in road_in_row(obs, width, row).into_iter().enumerate() {
            sum += on * col as f32;
            count += on;
        }
    }
    if count == 0.0 {
        return 0.0;
    }
    let centre = sum / count;
    let offset = (0.5 * (width as f32 - 1.0) - centre) / (0.5 * width as f32);
    (3.0 * offset).clamp(-1.0, 1.0)
}

#[test]
fn the_spec_describes_the_image_and_the_flat_rest() {
    let env = make("camera_width = 32\ncamera_height = 12");
    let spec = env.spec();
    let image = spec.image.expect("a camera observation has an image shape");
    assert_eq!((image.channels, image.height, image.width), (1, 12, 32));
    assert_eq!(spec.obs_dim(), 32 * 12 + 2);
    assert_eq!(spec.observation_names[0], "pixel_r0_c0");
    assert_eq!(&spec.observation_names[384..], ["speed", "steering"]);
    let rays = wormnet_envs::registry()
        .make("vehicle", &toml::Table::new())
        .unwrap();
    assert_eq!(rays.spec().image, None);
}

#[test]
fn the_view_has_sky_above_road_below_and_lines_either_side() {
    let mut env = make("track_seed = 1000001\nstart_offset = 0.0\nstart_heading = 0.0");
    let spec = env.spec().clone();
    let image = spec.image.unwrap();
    let (w, h) = (image.width, image.height);
    let mut obs = vec![0.0; spec.obs_dim()];
    env.reset(Some(0), &mut obs);
    // The picture, for failure messages: ' ' sky, '.' verge, '=' road, '#' markings.
    let picture: String = obs[..w * h]
        .chunks(w)
        .map(|row| {
            let line: String = row
                .iter()
                .map(|&p| match p {
                    p if p == shade::SKY => ' ',
                    p if p == shade::VERGE => '.',
                    p if p == shade::ROAD => '=',
                    _ => '#',
                })
                .collect();
            line + "\n"
        })
        .collect();
    assert!(
        obs[..w].iter().all(|&p| p == shade::SKY),
        "top row:\n{picture}"
    );
    // Centred on the road: the bottom row's middle is asphalt or the dashed centre line, and
    // some row of the lower half shows the painted edge line on both sides.
    let bottom = &obs[(h - 1) * w..h * w];
    assert!(
        [shade::ROAD, shade::MARKING].contains(&bottom[w / 2]),
        "\n{picture}"
    );
    let lined = |row: &[f32]| {
        row[..w / 2].contains(&shade::MARKING) && row[w / 2..].contains(&shade::MARKING)
    };
    assert!(
        obs[h / 2 * w..h * w].chunks(w).any(lined),
        "no edge lines:\n{picture}"
    );
    let shades = [shade::SKY, shade::VERGE, shade::ROAD, shade::MARKING];
    assert!(
        obs[..w * h].iter().all(|p| shades.contains(p)),
        "\n{picture}"
    );
}

#[test]
fn a_driver_reading_only_pixels_laps_held_out_tracks() {
    let mut env = make("tracks = \"eval\"");
    let spec = env.spec().clone();
    let image = spec.image.unwrap();
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut laps = 0;
    for seed in 0..10 {
        env.reset(Some(seed), &mut obs);
        for _ in 0..spec.max_episode_steps.unwrap() {
            let steer = pixel_driver(&obs, image.width, image.height);
            let step = env.step(&[steer], &mut obs);
            if step.done() {
                laps += usize::from(step.truncated && !step.terminated);
                break;
            }
        }
    }
    assert!(laps >= 9, "{laps}/10 laps");
}

#[test]
fn same_seed_same_pixels_and_augmentations_come_from_the_seed() {
    let run = |options: &str, seed: u64| {
        let mut env = make(options);
        let mut obs = vec![0.0; env.spec().obs_dim()];
        env.reset(Some(seed), &mut obs);
        let mut all = obs.clone();
        for t in 0..50 {
            env.step(&[(t as f32 * 0.1).sin() * 0.3], &mut obs);
            all.extend_from_slice(&obs);
        }
        all.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    let plain = run("", 3);
    assert_eq!(plain, run("", 3));
    let noisy = "camera_noise = 0.05\ncamera_brightness = 0.2";
    assert_eq!(run(noisy, 3), run(noisy, 3));
    assert_ne!(run(noisy, 3), run(noisy, 4));
    assert_ne!(run(noisy, 3), plain);
}

#[test]
fn bad_camera_options_are_named() {
    for (options, named) in [
        ("camera_width = 1", "camera_width"),
        ("camera_fov = 3.5", "camera_fov"),
        ("camera_noise = -1.0", "camera_noise"),
        ("observation = \"lidar\"", "lidar"),
    ] {
        let table: toml::Table = toml::from_str(options).unwrap();
        let err = wormnet_envs::registry()
            .make("vehicle", &table)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(named), "{options}: {err}");
    }
}
