//! `wormnet watch` in a real X server (Xvfb), driven as a user would: the binary trains a tiny
//! run, then opens its window and saves a screenshot.
#![cfg(feature = "render")]

use std::path::Path;

use wormnet_sim::frame::Rgba;
use wormnet_sim::render::geometry::{inset_area, Regions};
use wormnet_sim::render::Inset;

fn load(path: &Path) -> image::RgbaImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgba8()
}

fn near(p: &image::Rgba<u8>, c: Rgba) -> bool {
    (0..3).all(|k| (i32::from(p.0[k]) - i32::from(c.0[k])).abs() <= 10)
}

/// Opens `wormnet watch TARGET` in a fresh Xvfb display and returns its screenshot (640×400,
/// taken after 1.5 s).
fn watch_screenshot(target: &Path, dir: &Path) -> image::RgbaImage {
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_wormnet");
    // A display number nobody uses; the tests of this file start from different numbers, so
    // two running at once do not pick the same one.
    static FIRST: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);
    let first = FIRST.fetch_add(400, std::sync::atomic::Ordering::SeqCst);
    let display = (first..first + 400)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display");
    let mut xvfb = Command::new("Xvfb")
        .arg(format!(":{display}"))
        .args(["-screen", "0", "800x600x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb runs (scripts/setup --render installs it)");
    // Stopped with SIGTERM, so that Xvfb removes its socket and lock file (SIGKILL leaves
    // them, and the display number is lost to later runs).
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            // SAFETY: signalling our own child process by its pid.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
    let _xvfb = Kill(&mut xvfb);
    let socket = format!("/tmp/.X11-unix/X{display}");
    let start = std::time::Instant::now();
    while !Path::new(&socket).exists() {
        assert!(start.elapsed().as_secs() < 20, "Xvfb did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let shot = dir.join("watch.png");
    let watched = Command::new(bin)
        .args([
            "watch",
            "--width",
            "640",
            "--height",
            "400",
            "--screenshot-after",
            "1.5",
        ])
        .arg("--screenshot")
        .arg(&shot)
        .arg(target)
        .env("DISPLAY", format!(":{display}"))
        .output()
        .expect("wormnet watch runs");
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    load(&shot)
}

/// `wormnet watch` in a real X server (Xvfb): the window's screenshot shows the scene and the
/// neuron panel.
#[test]
fn watch_window_under_xvfb_shows_scene_and_panel() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_wormnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vehicle.toml");
    std::fs::write(
        &config,
        r#"
[env]
name = "vehicle"
num_envs = 2
workers = 1
[policy.actor]
cell = "ltc"
wiring = { kind = "auto_ncp", units = 12, output_size = 1 }
[ppo]
steps_per_rollout = 16
epochs = 1
minibatches = 1
[run]
total_steps = 32
eval_every = 0
"#,
    )
    .expect("config");
    let run = dir.path().join("run");
    let trained = Command::new(bin)
        .args(["train", "--quiet", "--run-dir"])
        .arg(&run)
        .arg(&config)
        .output()
        .expect("wormnet train runs");
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );

    let picture = watch_screenshot(&run, dir.path());
    assert_eq!(picture.dimensions(), (640, 400));
    let regions = Regions::new(640, 400, true);
    let panel = regions.panel.expect("panel");
    let count = |area: wormnet_sim::render::geometry::Area,
                 pred: &dyn Fn(&image::Rgba<u8>) -> bool| {
        picture
            .enumerate_pixels()
            .filter(|(x, y, p)| area.contains(*x as f32, *y as f32) && pred(p))
            .count()
    };
    // The scene: the light background with the dark track and the red car on it.
    let car = Rgba::rgb(200, 40, 40);
    assert!(
        count(regions.scene, &|p| near(p, car)) > 5,
        "no car in the window"
    );
    assert!(
        count(regions.scene, &|p| p.0[0] < 120 && p.0[1] < 120) > 200,
        "no track"
    );
    // The panel: the dark background with light, coloured neurons.
    assert!(
        count(panel, &|p| p.0[0] > 200 && p.0[1] > 150) > 200,
        "no neurons"
    );
}

/// A camera policy's window shows what the car sees in the scene's corner: the grey camera
/// view with its dark verge and light sky (the untrained policy of the shipped config).
#[test]
fn watch_shows_the_camera_view_of_a_camera_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/vehicle_camera.toml");
    let picture = watch_screenshot(&config, dir.path());
    let regions = Regions::new(640, 400, true);
    let view = Inset {
        width: 64,
        height: 24,
        pixels: vec![Rgba::rgb(0, 0, 0); 64 * 24],
    };
    let area = inset_area(&view, &regions).expect("an inset area");
    let inside: Vec<&image::Rgba<u8>> = picture
        .enumerate_pixels()
        .filter(|(x, y, _)| area.contains(*x as f32, *y as f32))
        .map(|(_, _, p)| p)
        .collect();
    let grey = |p: &&image::Rgba<u8>| p.0[0] == p.0[1] && p.0[1] == p.0[2];
    let dark = inside.iter().filter(|p| grey(p) && p.0[0] < 70).count();
    let light = inside.iter().filter(|p| grey(p) && p.0[0] > 180).count();
    assert!(
        dark > 50 && light > 50,
        "no camera view: {dark} dark, {light} light pixels"
    );
}
