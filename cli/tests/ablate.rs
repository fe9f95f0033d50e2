//! `wormnet ablate` on a real (tiny) run: every neuron and layer knocked out, JSON lines with
//! the documented keys, a chart, and a named error for a cell it cannot ablate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::BIN;

/// A tiny pendulum run (continuous actions, so any change to the actor moves them).
fn write_config(dir: &Path, cell: &str) -> PathBuf {
    let path = dir.join(format!("pendulum-{cell}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[env]
name = "pendulum"
num_envs = 2
workers = 1
[policy.actor]
cell = "{cell}"
wiring = {{ kind = "auto_ncp", units = 8, output_size = 1 }}
[ppo]
steps_per_rollout = 32
epochs = 1
minibatches = 1
[run]
seed = 2
total_steps = 128
eval_every = 0
eval_episodes = 1
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn every_neuron_and_layer_is_knocked_out_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "ltc");
    let run = tmp.path().join("run");
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--run-dir"])
        .arg(&run)
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["ablate", "--episodes", "2", "--json"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // AutoNCP(8, 1): 8 neurons, then the inter, command and motor layers.
    assert_eq!(rows.len(), 8 + 3, "{rows:?}");
    for row in &rows {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        for key in [
            "neuron",
            "layer",
            "return_mean",
            "return_drop",
            "success_rate",
            "action_change",
        ] {
            assert!(keys.iter().any(|k| *k == key), "{key} missing in {row}");
        }
    }
    let drops: Vec<f64> = rows
        .iter()
        .map(|r| r["return_drop"].as_f64().unwrap())
        .collect();
    assert!(
        drops.windows(2).all(|w| w[0] >= w[1]),
        "sorted by effect: {drops:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["action_change"].as_f64().unwrap() > 0.0),
        "no knockout moved an action"
    );
    let motor_layer = rows
        .iter()
        .find(|r| r["neuron"] == "motor" && r["layer"] == "layer")
        .expect("the motor layer");
    assert!(motor_layer["action_change"].as_f64().unwrap() > 0.0);
    assert!(run.join("ablation/ablation.jsonl").exists());
    assert!(run.join("ablation/ablation.png").exists());

    // A CfC actor: a named one-line error, no panic.
    let cfc = write_config(tmp.path(), "cfc");
    let cfc_run = tmp.path().join("cfc-run");
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--run-dir"])
        .arg(&cfc_run)
        .arg(&cfc)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .arg("ablate")
        .arg(&cfc_run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("LTC") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
