//! `wormnet imitate`: behavioural cloning of the vehicle's expert laps held-out tracks, is the
//! same run for the same seed, feeds PPO (`--init-from`, `imitation.before_ppo`), and refuses
//! what it cannot clone with a one-line error; `record` of a camera policy shows what the car
//! saw with its pixel saliency.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{json, BIN};

fn config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name)
}

fn wormnet(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(extra)
        .output()
        .expect("wormnet runs")
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Rays without the privileged lane geometry: the policy must learn to steer from the ranges.
const SMALL: [&str; 10] = [
    "--set",
    "imitation.rounds=3",
    "--set",
    "imitation.episodes=8",
    "--set",
    "imitation.epochs=20",
    "--set",
    "run.eval_episodes=10",
    "--set",
    "env.options.privileged=false",
];

fn imitate(dir: &Path) -> String {
    let mut args = vec!["imitate"];
    args.extend(SMALL);
    args.push("--run-dir");
    ok(&wormnet(&args, &[dir, &config("vehicle.toml")]))
}

/// The `imitation.csv` rows as (round, driver, loss, eval success).
fn rounds(dir: &Path) -> Vec<(usize, String, f64, f64)> {
    let text = std::fs::read_to_string(dir.join("imitation.csv")).expect("imitation.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "round,driver,failed_episodes,samples,loss,eval_return,eval_success,wall_seconds"
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].parse().unwrap(),
                c[1].to_string(),
                c[4].parse().unwrap(),
                c[6].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cloning_the_expert_laps_held_out_tracks_and_is_the_same_run_for_the_same_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let stderr = imitate(&a);
    assert!(stderr.contains("--init-from"), "{stderr}");
    let log = rounds(&a);
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].1, "expert");
    assert!(
        log[1..].iter().all(|r| r.1 == "policy"),
        "DAgger rounds: {log:?}"
    );
    assert!(log[2].2 < log[0].2, "the cloning loss falls: {log:?}");
    assert!(log[2].3 >= 0.8, "laps on held-out tracks: {log:?}");
    // An ordinary run directory: eval reads it.
    let eval = wormnet(
        &["eval", "--episodes", "4", "--deterministic", "--json"],
        &[&a],
    );
    ok(&eval);
    let eval: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(eval["success_rate"].as_f64().unwrap() >= 0.5, "{eval}");
    // Same seed, same policy, bit for bit.
    imitate(&b);
    let tensors = |dir: &Path| {
        let name = json(&dir.join("best.json"))["tensors"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::read(dir.join(name)).unwrap()
    };
    assert!(tensors(&a) == tensors(&b), "two runs of one seed differ");
    // A directory with a run in it is refused, and left alone.
    let again = failed(&wormnet(
        &["imitate", "--run-dir"],
        &[&a, &config("vehicle.toml")],
    ));
    assert!(again.contains("already holds"), "{again}");
    // It is not a PPO run to resume: the error says how to fine-tune it.
    let resume = failed(&wormnet(&["train", "--resume"], &[&a]));
    assert!(resume.contains("--init-from"), "{resume}");
}

#[test]
fn imitation_before_ppo_starts_ppo_from_the_cloned_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut args = vec![
        "train",
        "--quiet",
        "--total-steps",
        "2048",
        "--set",
        "imitation.before_ppo=true",
        "--set",
        "run.eval_every=1",
    ];
    args.extend(SMALL);
    args.push("--run-dir");
    ok(&wormnet(&args, &[&run, &config("vehicle.toml")]));
    let cloned = rounds(&run.join("imitation"));
    assert_eq!(cloned.len(), 3);
    // PPO started from the cloned policy: its first evaluation already laps (an untrained
    // policy does not), and the run's wall time includes the cloning.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    let success: f64 = first[col("eval/success_rate")].parse().unwrap();
    assert!(success >= 0.8, "first PPO evaluation: {success}");
    let clone_seconds: f64 = std::fs::read_to_string(run.join("imitation/imitation.csv"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let wall: f64 = first[col("perf/wall_seconds")].parse().unwrap();
    assert!(wall >= clone_seconds, "{wall} < {clone_seconds}");
    // `report` shows the cloning's share beside the wall time.
    let out = tmp.path().join("report");
    let report = wormnet(&["report", "--out"], &[&out, &run]);
    ok(&report);
    assert!(String::from_utf8_lossy(&report.stdout).contains("cloning s"));
    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let (head, row) = (
        csv.lines().next().unwrap().split(',').collect::<Vec<_>>(),
        csv.lines().nth(1).unwrap().split(',').collect::<Vec<_>>(),
    );
    let cell = head.iter().position(|h| *h == "cloning_seconds").unwrap();
    assert_eq!(row[cell].parse::<f64>().unwrap(), clone_seconds);
    // Both ways of choosing the start at once is an error naming them.
    let both = failed(&wormnet(
        &[
            "train",
            "--set",
            "imitation.before_ppo=true",
            "--init-from",
            "nowhere",
            "--run-dir",
        ],
        &[&tmp.path().join("x"), &config("vehicle.toml")],
    ));
    assert!(
        both.contains("before_ppo") && both.contains("init_from"),
        "{both}"
    );
}

#[test]
fn what_cannot_be_cloned_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |cfg: &str, set: &[&str]| {
        let mut args = vec!["imitate", "--set", "imitation.rounds=1"];
        args.extend(set);
        args.push("--run-dir");
        failed(&wormnet(&args, &[&tmp.path().join(cfg), &config(cfg)]))
    };
    let discrete = run("cartpole.toml", &[]);
    assert!(discrete.contains("discrete"), "{discrete}");
    let no_expert = run("pendulum.toml", &[]);
    assert!(no_expert.contains("no expert action"), "{no_expert}");
    let burn_in = run("vehicle.toml", &["--set", "imitation.burn_in=40"]);
    assert!(burn_in.contains("imitation.burn_in"), "{burn_in}");
    // Nothing was made for a config that cannot be cloned, with or without PPO after it.
    assert!(!tmp.path().join("pendulum.toml").exists());
    let out = tmp.path().join("ppo");
    let before_ppo = failed(&wormnet(
        &["train", "--set", "imitation.before_ppo=true", "--run-dir"],
        &[&out, &config("pendulum.toml")],
    ));
    assert!(before_ppo.contains("no expert action"), "{before_ppo}");
    assert!(!out.exists(), "a run directory was left behind");
    for e in [discrete, no_expert, burn_in] {
        // The error is the last line, whole on it.
        let last = e.trim().lines().last().unwrap();
        assert!(last.starts_with("Error: config"), "{e}");
        assert_eq!(e.matches("Error").count(), 1, "{e}");
    }
}

#[cfg(feature = "render")]
#[test]
fn recording_a_camera_policy_shows_its_view_and_the_pixels_that_steered() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("camera");
    let args = [
        "imitate",
        "--set",
        "imitation.rounds=1",
        "--set",
        "imitation.episodes=2",
        "--set",
        "imitation.epochs=1",
        "--set",
        "run.eval_episodes=2",
        "--run-dir",
    ];
    ok(&wormnet(&args, &[&run, &config("vehicle_camera.toml")]));
    let out = tmp.path().join("rec");
    let record = [
        "record",
        "--max-steps",
        "12",
        "--no-gif",
        "--no-mp4",
        "--width",
        "320",
        "--height",
        "240",
        "--out",
    ];
    ok(&wormnet(&record, &[&out, &run]));
    let episode = out.join("episode_000");
    // Pixels are not columns of the step log, they are one row of the saliency log per step.
    let steps = std::fs::read_to_string(episode.join("steps.csv")).unwrap();
    let header = steps.lines().next().unwrap();
    assert!(
        header.contains("obs/speed") && !header.contains("pixel"),
        "{header}"
    );
    let saliency = std::fs::read_to_string(episode.join("saliency.csv")).unwrap();
    let pixel_rows: Vec<f64> = saliency
        .lines()
        .filter(|l| l.split(',').nth(2) == Some("pixels"))
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(pixel_rows.len(), 12);
    assert!(pixel_rows.iter().all(|&v| v > 0.0), "{pixel_rows:?}");
    // The mean saliency picture: the camera's 64x24 pixels, 8x8 each, with red where the
    // steering looked.
    let map = image::open(episode.join("saliency.png")).unwrap().to_rgb8();
    assert_eq!(map.dimensions(), (512, 192));
    assert!(map.pixels().any(|p| p[0] > p[1].saturating_add(60)));
    // The frame shows the camera view in the scene's top-left corner: its dark verge and its
    // light sky, where the scene alone is a pale background.
    let frame = image::open(episode.join("frames/frame_00005.png"))
        .unwrap()
        .to_rgb8();
    let corner: Vec<_> = (8..60)
        .flat_map(|x| (30..50).map(move |y| (x, y)))
        .map(|(x, y)| *frame.get_pixel(x, y))
        .collect();
    assert!(
        corner.iter().any(|p| p.0.iter().all(|&c| c < 70)),
        "no verge"
    );
    assert!(
        corner.iter().any(|p| p.0.iter().all(|&c| c > 150)),
        "no sky"
    );
    // The HTML report shows the saliency picture.
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("episode_000/saliency.png"));
}
