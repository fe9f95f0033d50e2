//! What the tests that drive the `wormnet` binary share: a small cartpole config and ways to
//! run, wait for and read a run.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wormnet");

/// A small cartpole run: 4 envs × 32 steps per update (128 steps), `latest` every 2 updates,
/// evaluated every `eval_every` updates (0: only at the end).
pub fn write_config(dir: &Path, total_steps: u64, eval_every: u64) -> PathBuf {
    let path = dir.join("cartpole-test.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[env]
name = "cartpole"
num_envs = 4
workers = 1
[env.options]
no_velocity = true
[policy]
timespan = 1.0
[policy.actor]
cell = "ltc"
wiring = {{ kind = "auto_ncp", units = 8, output_size = 2 }}
[ppo]
steps_per_rollout = 32
epochs = 2
minibatches = 2
[run]
seed = 3
total_steps = {total_steps}
checkpoint_every = 2
eval_every = {eval_every}
eval_episodes = 2
"#
        ),
    )
    .unwrap();
    path
}

/// `wormnet train` on `config` into `run`, quietly, in the background.
pub fn spawn_train(config: &Path, run: &Path) -> Child {
    Command::new(BIN)
        .args(["train", "--quiet", "--run-dir"])
        .arg(run)
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wormnet starts")
}

/// Polls until `cond` holds (or panics after a generous bound, to never hang CI).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Data rows of a run's `metrics.csv` (0 when it does not exist yet).
pub fn csv_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// A JSON file, parsed.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The binary on `args`, with no backtrace, to completion.
pub fn wormnet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("wormnet runs")
}

/// Bytes (a command's stdout) parsed as JSON, or a panic showing them.
pub fn json_of(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// What a finished command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A user error is one line on stderr, says what is wrong, and is no panic.
/// A run trained quietly into `dir/run` from a fresh config of `total_steps` (evaluated after
/// every update): the starting point of the fault cases. Returns `(config, run)`.
pub fn trained_run(dir: &Path, total_steps: u64) -> (PathBuf, PathBuf) {
    let config = write_config(dir, total_steps, 1);
    let run = dir.join("run");
    let out = wormnet(&[
        "train",
        "--quiet",
        "--run-dir",
        run.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (config, run)
}

/// A failed command whose stderr is one line, no panic, naming each of `expect`.
pub fn one_line_error(out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for e in expect {
        assert!(err.contains(e), "`{e}` missing from: {err}");
    }
}
