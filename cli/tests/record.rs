//! `wormnet record` on an experiment config: a look at an env before training, with the
//! untrained policy or with zero actions (needs the `render` feature and a Vulkan driver,
//! Mesa's lavapipe where there is no GPU).
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
