//! The `wormnet` binary as a user runs it: real processes, real signals, real run directories.

use std::path::Path;
use std::process::Command;

mod common;

use common::{csv_rows, spawn_train, wait_until, write_config, BIN};

fn sidecar(dir: &Path, tag: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{tag}.json"))).unwrap()).unwrap()
}

#[test]
fn ctrl_c_saves_and_resume_finishes_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 200_000, 0);
    let run = tmp.path().join("run");
    let child = spawn_train(&config, &run);
    wait_until("a few updates", || csv_rows(&run) >= 3);
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("--resume"), "{stderr}");
    let saved = sidecar(&run, "latest");
    let update = saved["update"].as_u64().unwrap();
    assert!(update >= 3, "saved at update {update}");
    assert_eq!(
        csv_rows(&run) as u64,
        update,
        "one metrics row per completed update"
    );

    // Resume with a shorter total: it finishes right after the saved point.
    let total = (update + 2) * 4 * 32;
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--resume"])
        .arg(&run)
        .args(["--total-steps", &total.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = sidecar(&run, "latest");
    assert_eq!(done["update"].as_u64().unwrap(), update + 2);
    assert_eq!(done["global_step"].as_u64().unwrap(), total);
}

#[test]
fn kill_9_loses_at_most_the_updates_since_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 200_000, 0);
    let run = tmp.path().join("run");
    let mut child = spawn_train(&config, &run);
    wait_until("a checkpoint", || run.join("latest.json").exists());
    wait_until("more updates", || csv_rows(&run) >= 5);
    child.kill().unwrap(); // SIGKILL: no chance to save anything
    child.wait().unwrap();
    let saved = sidecar(&run, "latest");
    let update = saved["update"].as_u64().unwrap();
    assert_eq!(update % 2, 0, "periodic checkpoints land every 2 updates");
    // The checkpoint it names is complete and loads.
    let out = Command::new(BIN)
        .args(["eval", "--episodes", "2", "--json"])
        .arg(run.join("latest.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["episodes"], 2);
    assert!(eval["mean_return"].as_f64().unwrap() > 0.0);

    let total = (update + 1) * 4 * 32;
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--resume"])
        .arg(&run)
        .args(["--total-steps", &total.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sidecar(&run, "latest")["update"].as_u64().unwrap(),
        update + 1
    );
}

/// Runs `wormnet train` on a config file holding `text`; it must fail, leaving no run
/// directory behind. Returns what it printed on stderr.
fn train_fails_on(file: &str, text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join(file);
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out = Command::new(BIN)
        .arg("train")
        .arg(&config)
        .arg("--run-dir")
        .arg(&run)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!run.exists(), "no run directory for a bad config");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_config_is_reported_with_file_and_field() {
    let stderr = train_fails_on(
        "typo.toml",
        "[env]\nname = \"cartpole\"\n[policy.actor]\ncell = \"ltc\"\nunits = 4\n[ppo]\nepochs = \"ten\"\n",
    );
    assert!(
        stderr.contains("typo.toml") && stderr.contains("epochs"),
        "{stderr}"
    );
}

#[test]
fn unknown_env_option_is_named() {
    let stderr = train_fails_on(
        "opt.toml",
        "[env]\nname = \"cartpole\"\n[env.options]\nno_velocty = true\n[policy.actor]\ncell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 6, output_size = 2 }\n",
    );
    assert!(
        stderr.contains("no_velocty") && stderr.contains("cartpole"),
        "{stderr}"
    );
}

#[test]
fn cuda_request_on_a_cpu_machine_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 256, 0);
    let out = Command::new(BIN)
        .args(["train", "--quiet", "--device", "cuda", "--run-dir"])
        .arg(tmp.path().join("run"))
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let has_cuda = Command::new(BIN)
        .args(["info", "--json"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("\"cuda_available\":true"))
        .unwrap_or(false);
    if has_cuda {
        assert!(out.status.success(), "{stderr}");
    } else {
        assert!(!out.status.success());
        assert!(stderr.contains("no CUDA device"), "{stderr}");
    }
}

/// `wormnet bench env NAME ARGS --seconds 0.2 --json`: its report, and the text to show on a
/// failed assertion.
fn bench_env_json(name: &str, args: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["bench", "env", name])
        .args(args)
        .args(["--seconds", "0.2", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_str(text.trim()).expect(&text);
    (report, text)
}

#[test]
fn bench_env_with_no_workers_steps_the_envs_on_its_own_thread() {
    // `--workers 0` is the per-core figure: no VecEnv, no worker thread.
    let (report, text) = bench_env_json("cartpole", &["--envs", "3", "--workers", "0"]);
    assert_eq!(report["workers"], 0, "{text}");
    assert_eq!(report["envs"], 3, "{text}");
    let steps = report["steps"].as_u64().unwrap();
    assert!(steps > 0 && steps.is_multiple_of(3), "{text}");
    // Random actions end cartpole episodes within a few dozen steps.
    assert!(report["episodes"].as_u64().unwrap() > 0, "{text}");
    // Cartpole is no Bevy env: it has no App to share.
    assert_eq!(report["envs_per_app"], 1, "{text}");
}

#[test]
fn bench_env_puts_bevy_envs_k_to_an_app() {
    let args = ["--envs", "5", "--workers", "1", "--envs-per-app", "2"];
    let (report, text) = bench_env_json("worm", &args);
    assert_eq!(report["envs_per_app"], 2, "{text}");
    assert!(report["steps"].as_u64().unwrap() > 0, "{text}");
    // A group is at most a worker's share: 5 envs on 2 workers are shares of 2 and 3.
    let args = ["--envs", "5", "--workers", "2", "--envs-per-app", "8"];
    let (report, text) = bench_env_json("worm", &args);
    assert_eq!(report["envs_per_app"], 3, "{text}");
}

#[test]
fn bench_train_breaks_the_update_into_its_parts_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 4096, 0);
    let child = Command::new(BIN)
        .args(["bench", "train", "--updates", "3", "--set", "ppo.epochs=3"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = std::env::temp_dir().join(format!("wormnet-bench-train-{}", child.id()));
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3 updates of 128 steps (4 envs × 32), 3 epochs"),
        "{text}"
    );
    // The update's parts are measured inside it: they add up to no more than the whole, up to
    // the rounding of eight figures to 0.1 ms each.
    let line = text
        .lines()
        .find(|l| l.starts_with("per update:"))
        .expect(&text);
    let ms = |name: &str| -> f64 {
        let after = line
            .split(&format!("{name} "))
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: {line}"));
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    let parts: f64 = [
        "batching",
        "actor",
        "critic",
        "loss",
        "backward",
        "wait",
        "optimizer",
    ]
    .iter()
    .map(|p| ms(p))
    .sum();
    assert!(parts > 0.0 && parts <= ms("; update") + 0.4, "{line}");
    // With what no part measures, they make up the whole (each figure rounded to 0.1 ms).
    assert!(
        (parts + ms("other") - ms("; update")).abs() <= 0.5,
        "{line}"
    );
    // The run's threads and how they were split come first.
    assert!(
        text.contains("env worker") && text.contains("update shard"),
        "{text}"
    );
    assert!(
        !scratch.exists(),
        "bench train left {} behind",
        scratch.display()
    );
}

#[test]
fn init_from_starts_a_run_from_another_runs_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 512, 2);
    let source = dir.path().join("source");
    let train = |extra: &[&str], run: &Path| {
        Command::new(BIN)
            .args(["train", "--quiet", "--run-dir"])
            .arg(run)
            .arg(&config)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(train(&[], &source).status.success());
    // With a vanishing learning rate the fine-tuned run's weights stay the source's best.
    let tuned = dir.path().join("tuned");
    let out = train(
        &[
            "--init-from",
            source.to_str().unwrap(),
            "--set",
            "ppo.learning_rate=1e-12",
            "--total-steps",
            "256",
        ],
        &tuned,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy_tensors = |run: &Path, tag: &str| {
        let sidecar = sidecar(run, tag);
        let file = run.join(sidecar["tensors"].as_str().unwrap());
        let mut named: Vec<(String, Vec<f32>)> = tch::Tensor::read_safetensors(&file)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| k.starts_with("policy/"))
            .map(|(k, t)| (k, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    };
    assert_eq!(
        policy_tensors(&tuned, "latest"),
        policy_tensors(&source, "best")
    );
    assert_eq!(
        sidecar(&tuned, "latest")["config"]["run"]["init_from"],
        source.to_str().unwrap()
    );
    // Another shape is a named error, and nothing is trained.
    let other = dir.path().join("other");
    let out = train(
        &[
            "--init-from",
            source.to_str().unwrap(),
            "--set",
            "policy.actor.wiring.units=9",
        ],
        &other,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("run.init_from") && err.contains("another wiring"),
        "{err}"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_without_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wormnet starts");
    // Close the reading end before `info` writes (it loads libtorch first), like `| head -0`.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wormnet ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
