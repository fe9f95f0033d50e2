//! Faults injected into real `wormnet` processes: two runs on one directory, SIGTERM, `kill -9`
//! at many points followed by resumes, corrupt files, evaluation results that cannot be
//! written, and bad input that must be a one-line named error — never a panic, never lost data.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{
    csv_rows, json, json_of, one_line_error, spawn_train, stderr, trained_run, wait_until, wormnet,
    write_config, BIN,
};

#[test]
fn two_runs_on_one_directory_the_second_fails_at_once_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 1_000_000, 1);
    let run = tmp.path().join("run");
    let mut first = spawn_train(&config, &run);
    wait_until("the first run's checkpoint", || {
        run.join("latest.json").exists()
    });
    let second = wormnet(&[
        "train",
        "--quiet",
        "--run-dir",
        run.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    first.kill().unwrap();
    first.wait().unwrap();
    one_line_error(
        &second,
        &[
            "in use by another wormnet process",
            &format!("pid {}", first.id()),
            run.to_str().unwrap(),
        ],
    );
    // Nor may a resume share it.
    let mut first = Command::new(BIN)
        .args(["train", "--quiet", "--resume"])
        .arg(&run)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rows = csv_rows(&run);
    wait_until("the resumed run's metrics", || csv_rows(&run) > rows);
    let second = wormnet(&["train", "--quiet", "--resume", run.to_str().unwrap()]);
    first.kill().unwrap();
    first.wait().unwrap();
    one_line_error(&second, &["in use by another wormnet process"]);
}

#[test]
fn sigterm_saves_like_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 1_000_000, 1);
    let run = tmp.path().join("run");
    let child = spawn_train(&config, &run);
    wait_until("three updates", || csv_rows(&run) >= 3);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let saved = json(&run.join("latest.json"));
    assert_eq!(saved["update"].as_u64().unwrap() as usize, csv_rows(&run));
}

/// Kills a run with SIGKILL at ten points spread over its life, resuming after each; `best`
/// never gets worse across a kill, and the final checkpoint is the uninterrupted run's, bit for
/// bit.
#[test]
fn ten_kill_9s_and_resumes_end_where_the_uninterrupted_run_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let total = 30 * 128;
    let config = write_config(tmp.path(), total, 1);
    let reference = tmp.path().join("reference");
    let out = wormnet(&[
        "train",
        "--quiet",
        "--run-dir",
        reference.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let run = tmp.path().join("killed");
    let mut best = f64::NEG_INFINITY;
    let mut kills = 0;
    // Deterministic "random" points: how many metrics rows to wait for before each kill.
    let mut rows_at_kill = 1usize;
    let mut child = spawn_train(&config, &run);
    let done = |run: &Path| {
        std::fs::read(run.join("latest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["global_step"].as_u64() == Some(total))
    };
    loop {
        wait_until("progress or the end", || {
            csv_rows(&run) >= rows_at_kill || child.try_wait().unwrap().is_some()
        });
        if kills >= 12 || child.try_wait().unwrap().is_some() {
            break;
        }
        // A few milliseconds later, anywhere in an update, a save or an evaluation.
        std::thread::sleep(Duration::from_millis(3 * (kills as u64 % 5)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if let Ok(text) = std::fs::read(run.join("best.json")) {
            let now: serde_json::Value = serde_json::from_slice(&text).unwrap();
            let score = now["eval"]["mean_return"].as_f64().unwrap();
            assert!(
                score >= best,
                "best fell from {best} to {score} across kill {kills}"
            );
            best = score;
        }
        rows_at_kill = csv_rows(&run) + 1 + kills % 2;
        if done(&run) {
            break;
        }
        child = if run.join("latest.json").exists() {
            Command::new(BIN)
                .args(["train", "--quiet", "--resume"])
                .arg(&run)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        } else {
            // Killed before its first checkpoint: start over in a fresh directory.
            std::fs::remove_dir_all(&run).unwrap();
            spawn_train(&config, &run)
        };
    }
    if !done(&run) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(kills >= 10, "only {kills} kills before the run ended");
    let (a, b) = (
        json(&reference.join("latest.json")),
        json(&run.join("latest.json")),
    );
    assert_eq!(a["global_step"], b["global_step"]);
    let tensors = |dir: &Path, v: &serde_json::Value| {
        let mut t =
            tch::Tensor::read_safetensors(dir.join(v["tensors"].as_str().unwrap())).unwrap();
        t.sort_by(|x, y| x.0.cmp(&y.0));
        t
    };
    let (ta, tb) = (tensors(&reference, &a), tensors(&run, &b));
    assert_eq!(ta.len(), tb.len());
    for ((na, xa), (nb, xb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(xa.equal(xb), "{na} differs from the uninterrupted run's");
    }
    let steps: Vec<String> = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 30, "one metrics row per update: {steps:?}");
}

#[test]
fn corrupt_sidecars_and_tensors_are_named_errors_and_best_stays_loadable() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained_run(tmp.path(), 4 * 128);
    let latest = run.join("latest.json");
    let tensors = run.join(json(&latest)["tensors"].as_str().unwrap());
    let (sidecar_bytes, tensor_bytes) = (
        std::fs::read(&latest).unwrap(),
        std::fs::read(&tensors).unwrap(),
    );
    let eval = |target: &Path| wormnet(&["eval", "--episodes", "1", target.to_str().unwrap()]);
    for (file, original) in [(&latest, &sidecar_bytes), (&tensors, &tensor_bytes)] {
        let name = file.file_name().unwrap().to_str().unwrap();
        for at in [
            0,
            1,
            original.len() / 3,
            original.len() / 2,
            original.len() - 9,
        ] {
            // Overwritten bytes, then a truncation at the same place.
            let mut bytes = original.clone();
            for b in &mut bytes[at..(at + 8).min(original.len())] {
                *b = !*b;
            }
            for broken in [bytes, original[..at].to_vec()] {
                std::fs::write(file, &broken).unwrap();
                let out = eval(&latest);
                one_line_error(&out, &[name]);
            }
        }
        std::fs::write(file, original).unwrap();
    }
    let out = eval(&run.join("best.json"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn evaluation_prints_before_writing_and_never_overwrites_an_earlier_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained_run(tmp.path(), 128);
    let run_s = run.to_str().unwrap();
    // Two evaluations: both recorded.
    for _ in 0..2 {
        let out = wormnet(&["eval", run_s, "--episodes", "1", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let log = std::fs::read_to_string(run.join("evals.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    // The record cannot be written (here: a directory in its place, which even root cannot
    // append to): the result is still printed, and the command succeeds with a warning.
    std::fs::remove_file(run.join("evals.jsonl")).unwrap();
    std::fs::create_dir(run.join("evals.jsonl")).unwrap();
    let out = wormnet(&["eval", run_s, "--episodes", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["episodes"], 1);
    assert!(stderr(&out).contains("evals.jsonl"), "{}", stderr(&out));
    std::fs::remove_dir(run.join("evals.jsonl")).unwrap();
    // A read-only run directory (only where permissions bind: root writes anywhere).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = wormnet(&["eval", run_s, "--episodes", "1", "--json"]);
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(json_of(&out.stdout)["episodes"], 1);
        assert!(stderr(&out).contains("evals.jsonl"), "{}", stderr(&out));
    }
    // A full disk (a file-size limit of 0 makes every write fail, as ENOSPC would): same.
    let mut full = Command::new(BIN);
    full.args(["eval", run_s, "--episodes", "1", "--json"]);
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        full.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = full.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_of(&out.stdout)["episodes"], 1);
    assert!(stderr(&out).contains("evals.jsonl"), "{}", stderr(&out));
    // A read-only place asked for explicitly (`/proc` refuses new files even to root): the
    // result is printed, then the error names the file.
    let out = wormnet(&[
        "eval",
        run_s,
        "--episodes",
        "1",
        "--json",
        "--out",
        "/proc/wormnet-eval.json",
    ]);
    assert!(!out.status.success());
    assert_eq!(json_of(&out.stdout)["episodes"], 1);
    one_line_error(&out, &["/proc/wormnet-eval.json"]);
    // `--out FILE` writes exactly there.
    let out_file = tmp.path().join("result.json");
    let out = wormnet(&[
        "eval",
        run_s,
        "--episodes",
        "1",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out_file)["episodes"], 1);
}

#[test]
fn sampled_evaluation_is_reproducible_from_its_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained_run(tmp.path(), 128);
    let run_s = run.to_str().unwrap();
    let eval = |seed: &str| {
        let out = wormnet(&["eval", run_s, "--episodes", "6", "--seed", seed, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["mean_return"].as_f64().unwrap(),
            v["std_return"].as_f64().unwrap(),
        )
    };
    assert_eq!(eval("9"), eval("9"));
}

#[test]
fn bad_input_is_a_one_line_named_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, run) = trained_run(tmp.path(), 256);
    let run_s = run.to_str().unwrap();

    // An option that changes the observation size.
    let out = wormnet(&["eval", run_s, "--option", "no_velocity=false"]);
    one_line_error(&out, &["no_velocity=false", "observation space", "4", "2"]);
    // Absurd benchmark sizes.
    one_line_error(
        &wormnet(&["bench", "ncp", "--batches", "100000000"]),
        &["--batches"],
    );
    one_line_error(
        &wormnet(&["bench", "env", "cartpole", "--envs", "100000000"]),
        &["--envs"],
    );
    one_line_error(
        &wormnet(&["bench", "env", "cartpole", "--envs", "0", "--workers", "0"]),
        &["--envs"],
    );
    one_line_error(
        &wormnet(&["bench", "env", "worm", "--envs-per-app", "0"]),
        &["--envs-per-app"],
    );
    // Resuming: a budget already spent, and a second directory.
    one_line_error(
        &wormnet(&["train", "--resume", run_s, "--total-steps", "128"]),
        &["total_steps", "256"],
    );
    one_line_error(
        &wormnet(&["train", "--resume", run_s, "--run-dir", "/tmp/elsewhere"]),
        &["--run-dir"],
    );
    // A config whose policy cannot be built: file and field named, nothing created.
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("units = 8", "units = 8, sparsity_level = 1.5");
    std::fs::write(&bad, text).unwrap();
    let fresh = tmp.path().join("fresh");
    let out = wormnet(&[
        "train",
        "--run-dir",
        fresh.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    one_line_error(&out, &["bad.toml", "policy.actor", "sparsity_level"]);
    assert!(!fresh.exists());
    let zero = tmp.path().join("zero.toml");
    std::fs::write(
        &zero,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("total_steps = 256", "total_steps = 0"),
    )
    .unwrap();
    let out = wormnet(&[
        "train",
        "--run-dir",
        fresh.to_str().unwrap(),
        zero.to_str().unwrap(),
    ]);
    one_line_error(&out, &["zero.toml", "run.total_steps"]);
    assert!(!fresh.exists());
    // With RUST_BACKTRACE set, a user error is still the message alone.
    let out = Command::new(BIN)
        .args(["eval", "/nonexistent/run"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    one_line_error(&out, &["/nonexistent/run"]);
}
