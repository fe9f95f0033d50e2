//! Offscreen recording on a machine without a GPU (Mesa's lavapipe): one short episode of each
//! Bevy environment, checked by its pixels. Needs the `render` feature (scripts/test enables it
//! and scripts/setup --render installs the software Vulkan driver).
#![cfg(feature = "render")]

use std::path::Path;
use std::rc::Rc;

use tch::Device;
use wormnet_agent::inspect::audit::Auditor;
use wormnet_agent::inspect::record::{self, RecordOptions};
use wormnet_agent::policy::{Policy, PolicyConfig};
use wormnet_sim::frame::Rgba;
use wormnet_sim::render::geometry::Regions;
use wormnet_sim::rollout::Rollout;

const W: u32 = 400;
const H: u32 = 300;

fn random_policy(env: &str) -> Policy {
    let spec = wormnet_envs::registry()
        .make(env, &toml::Table::new())
        .expect("env")
        .spec()
        .clone();
    let config: PolicyConfig = toml::from_str(&format!(
        r#"
        [actor]
        cell = "ltc"
        wiring = {{ kind = "auto_ncp", units = 12, output_size = {}, seed = 7 }}
        "#,
        spec.action_dim()
    ))
    .expect("policy config");
    tch::manual_seed(5);
    Policy::new(&spec, &config, Device::Cpu).expect("policy")
}

fn load(path: &Path) -> image::RgbaImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgba8()
}

fn near(p: &image::Rgba<u8>, c: Rgba) -> bool {
    (0..3).all(|k| (i32::from(p.0[k]) - i32::from(c.0[k])).abs() <= 10)
}

/// Pixels inside `keep` (picture coordinates) that differ between two frames.
fn changed(a: &image::RgbaImage, b: &image::RgbaImage, keep: impl Fn(f32, f32) -> bool) -> usize {
    a.enumerate_pixels()
        .filter(|(x, y, p)| keep(*x as f32, *y as f32) && **p != *b.get_pixel(*x, *y))
        .count()
}

fn check_episode(env: &str, steps: usize) {
    let policy = Rc::new(random_policy(env));
    let mut auditor = Auditor::new(policy, false);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = RecordOptions {
        width: W,
        height: H,
        gif: true,
        mp4: false,
    };
    let factory = wormnet_envs::registry()
        .factory(env, toml::Table::new())
        .expect("env");
    let spec = factory.build().expect("env").spec().clone();
    let episodes = record::record_policy(
        &mut auditor,
        &factory,
        &spec,
        &[2],
        steps,
        dir.path(),
        &options,
    )
    .expect("record");
    let e = &episodes[0];
    assert_eq!(
        e.frames.len(),
        e.steps + 1,
        "{env}: one frame per step plus the reset"
    );
    assert!(e
        .gif
        .as_ref()
        .is_some_and(|g| g.metadata().is_ok_and(|m| m.len() > 1000)));
    assert!(e.csv.exists() && e.activity.exists());
    // The GIF decodes, with one image per frame.
    let gif_file = std::fs::File::open(e.gif.as_ref().expect("gif")).expect("open gif");
    let mut decoder = gif::DecodeOptions::new()
        .read_info(std::io::BufReader::new(gif_file))
        .expect("gif header");
    let mut gif_frames = 0;
    while decoder.read_next_frame().expect("gif frame").is_some() {
        gif_frames += 1;
    }
    assert_eq!(gif_frames, e.frames.len(), "{env}: GIF frames");

    let frames: Vec<image::RgbaImage> = e.frames.iter().map(|p| load(p)).collect();
    let regions = Regions::new(W, H, true);
    let panel = regions.panel.expect("panel");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.dimensions(), (W, H));
        // Not blank: many colours, none covering almost everything.
        let mut counts = std::collections::HashMap::new();
        for p in f.pixels() {
            *counts.entry(p.0).or_insert(0usize) += 1;
        }
        let top = counts.values().max().copied().unwrap_or(0);
        assert!(
            counts.len() > 20 && top < (W * H) as usize * 9 / 10,
            "{env}: frame {i} looks blank ({} colours, top covers {top} pixels)",
            counts.len()
        );
    }

    // The bodies are drawn and move: the colours of the frame's shapes (the car) and of its
    // lines that move in the world (the worm's capsule segments; not the static track).
    let rollout = Rollout::load(&e.dir.join("rollout.json")).expect("rollout");
    let (start, end) = (
        &rollout.steps[0].frame,
        &rollout.steps[rollout.steps.len() - 1].frame,
    );
    let mut body: Vec<Rgba> = start.shapes.iter().map(|s| s.color).collect();
    body.extend(
        start
            .polylines
            .iter()
            .zip(&end.polylines)
            .filter(|(a, b)| a.points != b.points && a.color.0[3] == 255)
            .map(|(a, _)| a.color),
    );
    assert!(!body.is_empty(), "{env}: nothing in the frame moves");
    let body_pixels = |f: &image::RgbaImage| -> Vec<(u32, u32)> {
        f.enumerate_pixels()
            .filter(|(x, y, p)| {
                regions.scene.contains(*x as f32, *y as f32) && body.iter().any(|c| near(p, *c))
            })
            .map(|(x, y, _)| (x, y))
            .collect()
    };
    let (first, last) = (&frames[1], &frames[frames.len() - 1]);
    let (a, b) = (body_pixels(first), body_pixels(last));
    assert!(
        a.len() > 10,
        "{env}: only {} body pixels in the first frame",
        a.len()
    );
    let moved =
        a.iter().filter(|p| !b.contains(p)).count() + b.iter().filter(|p| !a.contains(p)).count();
    assert!(
        moved > 10,
        "{env}: body pixels did not move ({moved} changed)"
    );

    // The neuron panel's colours change over the episode.
    let panel_changes = changed(first, last, |x, y| panel.contains(x, y));
    assert!(
        panel_changes > 30,
        "{env}: neuron panel unchanged ({panel_changes} pixels)"
    );
}

#[test]
fn each_bevy_env_records_offscreen_with_moving_bodies_and_live_neurons() {
    // One test, so the two renderers never start at the same time on a 2-core machine.
    check_episode("vehicle", 30);
    check_episode("worm", 30);
}

#[test]
fn a_recorded_rollout_renders_again_without_its_env() {
    let policy = Rc::new(random_policy("vehicle"));
    let mut auditor = Auditor::new(policy, true);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = RecordOptions {
        width: 320,
        height: 240,
        gif: false,
        mp4: false,
    };
    let factory = wormnet_envs::registry()
        .factory("vehicle", toml::Table::new())
        .expect("vehicle");
    let spec = factory.build().expect("vehicle").spec().clone();
    let first = record::record_policy(
        &mut auditor,
        &factory,
        &spec,
        &[4],
        8,
        &dir.path().join("live"),
        &options,
    )
    .expect("record");
    let again = record::record_rollout_file(
        &first[0].dir.join("rollout.json"),
        &dir.path().join("again"),
        &options,
    )
    .expect("re-render");
    assert_eq!(again.frames.len(), first[0].frames.len());
    // Same scene, pixel for pixel (the panel differs: a file carries no wiring).
    let regions = Regions::new(320, 240, true);
    let (a, b) = (load(&first[0].frames[5]), load(&again.frames[5]));
    assert_eq!(changed(&a, &b, |x, y| regions.scene.contains(x, y)), 0);
    // A missing or foreign file is an error that names it.
    let missing = dir.path().join("nope.json");
    let e = record::record_rollout_file(&missing, &dir.path().join("x"), &options).unwrap_err();
    assert!(format!("{e:#}").contains("nope.json"), "{e:#}");
}
