//! `wormnet record` on an experiment config: a look at an env before training, with the
//! untrained policy or with zero actions; its `--out` folder (a previous recording replaced
//! whole, any other folder refused untouched); the README's re-render of a recorded rollout;
//! SIGTERM stopping a recording (needs the `render` feature and a Vulkan driver, Mesa's
//! lavapipe where there is no GPU).
#![cfg(feature = "render")]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wormnet");

fn record(config: &Path, out: &Path, extra: &[&str]) -> String {
    let output = Command::new(BIN)
        .args([
            "record",
            "--episodes",
            "1",
            "--max-steps",
            "8",
            "--no-gif",
            "--no-mp4",
        ])
        .args(["--width", "320", "--height", "240", "--out"])
        .arg(out)
        .arg(config)
        .args(extra)
        .output()
        .expect("wormnet runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    std::fs::read_to_string(out.join("episode_000/steps.csv")).expect("steps.csv")
}

#[test]
fn a_config_is_recorded_with_its_untrained_policy_or_zero_actions() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pendulum.toml");
    let tmp = tempfile::tempdir().unwrap();
    let policy = record(&config, &tmp.path().join("untrained"), &[]);
    let still = record(&config, &tmp.path().join("still"), &["--zero-action"]);
    assert!(tmp
        .path()
        .join("still/episode_000/frames/frame_00000.png")
        .exists());
    let torques = |csv: &str| -> Vec<f32> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header
            .iter()
            .position(|h| *h == "action/torque")
            .expect("torque column");
        lines
            .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
            .collect()
    };
    assert!(torques(&still).iter().all(|&t| t == 0.0), "{still}");
    assert!(torques(&policy).iter().any(|&t| t != 0.0), "{policy}");
    // A config is no longer mistaken for a corrupt checkpoint; a bad one is named as a config.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[env]\nname = \"pendulum\"\n[policy.actor]\ncell = \"lstm\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["record", "--out"])
        .arg(tmp.path().join("x"))
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml") && !stderr.contains("corrupt"),
        "{stderr}"
    );
}

/// `wormnet record` of the pendulum config's untrained policy: its output, failing or not.
fn record_raw(target: &Path, out: &Path, episodes: usize, steps: usize) -> std::process::Output {
    Command::new(BIN)
        .args([
            "record", "--no-gif", "--no-mp4", "--width", "320", "--height", "240",
        ])
        .args([
            "--episodes",
            &episodes.to_string(),
            "--max-steps",
            &steps.to_string(),
        ])
        .arg("--out")
        .arg(out)
        .arg(target)
        .output()
        .expect("wormnet runs")
}

fn pendulum() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/pendulum.toml")
}

fn ok(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every entry under `dir`, relative, sorted (what a refused command must leave as it was).
fn tree(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            all.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    all.sort();
    all
}

#[test]
fn recording_again_into_a_recording_replaces_it_whole_and_refuses_any_other_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("audit");
    ok(&record_raw(&pendulum(), &out, 2, 8));
    assert!(out.join("episode_001/steps.csv").exists());
    ok(&record_raw(&pendulum(), &out, 1, 5));
    // Nothing of the first recording is left: no stale episode, no stale frame.
    assert!(!out.join("episode_001").exists(), "{:?}", tree(&out));
    let frames = std::fs::read_dir(out.join("episode_000/frames"))
        .unwrap()
        .count();
    assert_eq!(frames, 6, "the reset frame and one per step");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("episode_000") && !report.contains("episode_001"));
    // A folder that is not a recording is refused, named, and left exactly as it was.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(mine.join("episode_000")).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    std::fs::write(mine.join("episode_000/steps.csv"), "mine").unwrap();
    let before = tree(&mine);
    let refused = record_raw(&pendulum(), &mine, 1, 5);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("mine") && stderr.contains("notes.txt") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(tree(&mine), before);
    assert_eq!(
        std::fs::read_to_string(mine.join("episode_000/steps.csv")).unwrap(),
        "mine"
    );
}

#[test]
fn the_documented_re_render_command_renders_a_recorded_rollout_with_its_report() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/auditing.md"))
            .unwrap();
    assert!(
        guide.contains("record audit/episode_000/rollout.json --out again/"),
        "the guide's re-render command this test runs"
    );
    let tmp = tempfile::tempdir().unwrap();
    ok(&record_raw(&pendulum(), &tmp.path().join("audit"), 1, 8));
    let again = tmp.path().join("again");
    let rollout = tmp.path().join("audit/episode_000/rollout.json");
    let output = Command::new(BIN)
        .args([
            "record", "--no-gif", "--no-mp4", "--width", "320", "--height", "240",
        ])
        .arg(&rollout)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    let stdout = ok(&output);
    assert!(stdout.contains("report.html"), "{stdout}");
    assert!(again.join("report.html").exists() && again.join("episode_000/steps.csv").exists());
    assert_eq!(
        std::fs::read_dir(again.join("episode_000/frames"))
            .unwrap()
            .count(),
        9
    );
    // Re-rendering a recording into itself would remove the file it reads: refused.
    let into_itself = record_raw(&rollout, &tmp.path().join("audit"), 1, 8);
    assert!(!into_itself.status.success());
    assert!(rollout.exists());
}

#[test]
fn sigterm_stops_a_recording_promptly_keeping_only_finished_episodes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("audit");
    let mut child = Command::new(BIN)
        .args([
            "record", "--no-gif", "--no-mp4", "--width", "320", "--height", "240",
        ])
        .args(["--episodes", "20", "--max-steps", "200", "--out"])
        .arg(&out)
        .arg(pendulum())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // Once the second episode is being rendered, the first is finished.
    while !out.join("episode_001/frames/frame_00003.png").exists() {
        assert!(
            started.elapsed().as_secs() < 300,
            "the recording never got going"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("record ended early: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed().as_secs() >= 20 {
            child.kill().unwrap();
            panic!("record ignored SIGTERM (still running after 20 s)");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !status.success() && stderr.contains("interrupted"),
        "{status}: {stderr}"
    );
    // A consistent recording: the finished episodes, whole, and a report of exactly them.
    let episodes: Vec<String> = tree(&out)
        .into_iter()
        .filter(|p| p.starts_with("episode_") && !p.contains('/'))
        .collect();
    assert!(!episodes.is_empty() && episodes.len() < 20, "{episodes:?}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    for e in &episodes {
        let rows = std::fs::read_to_string(out.join(e).join("steps.csv")).unwrap();
        assert_eq!(rows.lines().count(), 201, "{e} is whole");
        assert!(out.join(e).join("rollout.json").exists() && report.contains(e.as_str()));
    }
    let next = format!("episode_{:03}", episodes.len());
    assert!(
        !out.join(&next).exists() && !report.contains(&next),
        "{next} was discarded"
    );
}
