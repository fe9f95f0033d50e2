//! Hostile and absurd input through the real binary (issue 27's battery): tampered sidecars,
//! sizes that would abort the process, run names and directories that lead elsewhere, files
//! that must not be overwritten, a full disk. Each is a one-line named error that leaves
//! nothing behind, or is handled without a word lost.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{json, one_line_error, stderr, trained_run, wormnet, write_config, BIN};

fn wormnet_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("wormnet runs")
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn absurd_sizes_and_values_are_refused_before_a_directory_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 256, 0);
    let run = tmp.path().join("never");
    let train = |config: &str, set: &str| {
        wormnet(&[
            "train",
            "--quiet",
            "--run-dir",
            run.to_str().unwrap(),
            config,
            "--set",
            set,
        ])
    };
    let cartpole = config.to_str().unwrap();
    for (config, set, named) in [
        (cartpole, "env.num_envs=100000000", "env.num_envs"),
        (
            cartpole,
            "policy.critic.hidden=[100000, 100000]",
            "policy.critic.hidden",
        ),
        (
            cartpole,
            "run.eval_episodes=1000000000000",
            "run.eval_episodes",
        ),
        (cartpole, "ppo.obs_clip=-1", "ppo.obs_clip"),
        (&shipped("worm.toml"), "env.options.dt=1e30", "dt"),
        (
            &shipped("vehicle.toml"),
            "env.options.ray_spread=1e30",
            "ray_spread",
        ),
        (
            &shipped("vehicle.toml"),
            "env.options.sensor_noise=1e30",
            "sensor_noise",
        ),
        (
            &shipped("vehicle.toml"),
            "env.options.track_width=[1e-9, 1e-9]",
            "track_width",
        ),
    ] {
        one_line_error(&train(config, set), &[named]);
        assert!(!run.exists(), "{set} left {}", run.display());
    }
    // A number too big for 64 bits is called so (clap reports a bad --set as a usage error).
    let out = train(cartpole, "run.total_steps=99999999999999999999");
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("64 bits") && !err.contains("invalid type"),
        "{err}"
    );
    assert!(!run.exists());
}

#[test]
fn run_names_and_used_directories_are_refused_without_a_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 256, 0);
    let cwd = tmp.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    let absolute = tmp.path().join("escape").display().to_string();
    for name in ["../../x", absolute.as_str()] {
        let out = wormnet_in(
            &cwd,
            &[
                "train",
                "--quiet",
                config.to_str().unwrap(),
                "--set",
                &format!("run.name=\"{name}\""),
            ],
        );
        one_line_error(&out, &["run.name"]);
    }
    assert!(!tmp.path().join("x").exists() && !Path::new(&absolute).exists());
    // A directory that holds someone's files: refused, and not even a lock file is left.
    let used = tmp.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("thesis.tex"), "mine").unwrap();
    let out = wormnet(&[
        "train",
        "--quiet",
        "--run-dir",
        used.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    one_line_error(&out, &["thesis.tex", "nothing there was changed"]);
    let left: Vec<_> = std::fs::read_dir(&used)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["thesis.tex".to_string()]);
    // A start that fails after the directory was made (a missing --init-from) removes it.
    let fresh = tmp.path().join("fresh");
    let out = wormnet(&[
        "train",
        "--quiet",
        "--run-dir",
        fresh.to_str().unwrap(),
        "--init-from",
        "/nonexistent/run",
        config.to_str().unwrap(),
    ]);
    one_line_error(&out, &["/nonexistent/run"]);
    assert!(!fresh.exists(), "a failed start left {}", fresh.display());
}

/// A change made to a sidecar's JSON.
type Tamper = fn(&mut serde_json::Value);

#[test]
fn tampered_sidecars_are_named_on_eval_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained_run(tmp.path(), 256);
    let latest = run.join("latest.json");
    let original = json(&latest);
    let cases: [(&str, Tamper); 6] = [
        ("obs_norm: clip", |s| s["obs_norm"]["clip"] = (-1.0).into()),
        ("variance", |s| {
            s["obs_norm"]["stats"]["var"][0] = (-0.5).into()
        }),
        ("obs_norm: mean and var", |s| {
            s["obs_norm"]["stats"]["mean"] = serde_json::json!([0.0]);
            s["obs_norm"]["stats"]["var"] = serde_json::json!([1.0]);
        }),
        ("policy.critic.hidden", |s| {
            s["config"]["policy"]["critic"]["hidden"] = serde_json::json!([100000, 100000])
        }),
        ("tensors", |s| {
            s["tensors"] = "../../elsewhere.safetensors".into()
        }),
        ("reward_scaler", |s| {
            s["reward_scaler"]["returns"] = serde_json::json!([0.0])
        }),
    ];
    for (named, tamper) in cases {
        let mut sidecar = original.clone();
        tamper(&mut sidecar);
        std::fs::write(&latest, sidecar.to_string()).unwrap();
        let eval = wormnet(&["eval", "--episodes", "1", latest.to_str().unwrap()]);
        one_line_error(&eval, &[named, "latest.json"]);
        let resume = wormnet(&[
            "train",
            "--quiet",
            "--resume",
            run.to_str().unwrap(),
            "--total-steps",
            "512",
        ]);
        one_line_error(&resume, &[named]);
    }
    // A changed tensor dtype is refused too, not converted without a word.
    std::fs::write(&latest, original.to_string()).unwrap();
    let tensors = run.join(original["tensors"].as_str().unwrap());
    let bytes = std::fs::read(&tensors).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let changed = header.replace("\"F32\"", "\"I32\"");
    assert_ne!(header, changed);
    let mut tampered = bytes[..8].to_vec();
    tampered.extend_from_slice(changed.as_bytes());
    tampered.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(&tensors, &tampered).unwrap();
    let mut sidecar = original.clone();
    sidecar["tensors_crc32c"] = crc32c::crc32c(&tampered).into();
    std::fs::write(&latest, sidecar.to_string()).unwrap();
    let eval = wormnet(&["eval", "--episodes", "1", latest.to_str().unwrap()]);
    one_line_error(&eval, &["stored as"]);
}

#[test]
fn files_are_never_overwritten_and_kill_debris_is_cleared_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, run) = trained_run(tmp.path(), 256);
    let out_file = tmp.path().join("result.json");
    std::fs::write(&out_file, "earlier result").unwrap();
    let out = wormnet(&[
        "eval",
        "--episodes",
        "1",
        "--out",
        out_file.to_str().unwrap(),
        run.to_str().unwrap(),
    ]);
    one_line_error(&out, &["--out", "already exists"]);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "earlier result"
    );
    // What a kill -9 mid-write leaves: a temporary beside the sidecar.
    let debris = run.join("latest.json.tmp-4194303");
    std::fs::write(&debris, "half a sidecar").unwrap();
    let out = wormnet(&[
        "train",
        "--quiet",
        "--resume",
        run.to_str().unwrap(),
        "--total-steps",
        "384",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!debris.exists(), "the temporary outlived the resume");
}

#[test]
fn a_full_disk_is_reported_once_and_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 256, 0);
    let run = tmp.path().join("run");
    // 16 KiB per file: the config and metrics fit, the first checkpoint's tensors do not.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 16; exec {BIN} train --quiet --run-dir {} {}",
            run.display(),
            config.display()
        ))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.matches("File too large").count(), 1, "{err}");
}

#[cfg(feature = "render")]
#[test]
fn watch_refuses_a_screenshot_time_that_never_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), 256, 0);
    for t in ["nan", "1e30", "-1"] {
        let out = wormnet(&[
            "watch",
            config.to_str().unwrap(),
            "--screenshot",
            tmp.path().join("s.png").to_str().unwrap(),
            &format!("--screenshot-after={t}"),
        ]);
        one_line_error(&out, &["--screenshot-after"]);
    }
}
