//! `wormnet sweep` and `wormnet report` driven as a user drives them: real trainings in child
//! processes, a real Ray head on loopback, a sweep killed midway and re-run, and the report's
//! numbers checked against a hand computation.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{json, wait_until, write_config, BIN};

fn wormnet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("wormnet runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A sweep file over the small cartpole config: `seeds` × `cells`.
fn write_sweep(dir: &Path, total_steps: u64, seeds: &str, cells: &str) -> PathBuf {
    let config = write_config(dir, total_steps, 4);
    let path = dir.join("sweep.toml");
    std::fs::write(
        &path,
        format!(
            "config = {:?}\nseeds = {seeds}\n[grid]\n\"policy.actor.cell\" = {cells}\n",
            config.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    path
}

/// Each trial's status in the sweep's manifest.
fn statuses(sweep_dir: &Path) -> Vec<(String, String)> {
    let manifest = json(&sweep_dir.join("manifest.json"));
    manifest["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// metrics.csv without the columns that measure time (they differ between any two runs).
fn learning_columns(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !(header[i].starts_with("perf/") || header[i] == "charts/SPS"))
        .collect();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        })
        .collect()
}

/// A Ray head started for one test (`ray start --head --block`), stopped when dropped: on
/// loopback with token authentication, as scripts/ray_head starts one.
struct RayHead {
    child: Child,
    address: String,
    /// What a client needs in its environment: the token, and loopback kept loopback.
    env: Vec<(&'static str, String)>,
    _temp: tempfile::TempDir,
}

impl RayHead {
    fn start(cpus: usize) -> RayHead {
        // The `ray` beside the Python the executor uses (scripts/env.sh sets WORMNET_PYTHON to
        // the project venv; scripts/test installs Ray there with `scripts/setup --ray`).
        let ray = match std::env::var("WORMNET_PYTHON") {
            Ok(python) => Path::new(&python).with_file_name("ray"),
            Err(_) => PathBuf::from("ray"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Ray's socket paths must stay short: a temp dir directly under /tmp.
        let temp = tempfile::Builder::new()
            .prefix("wr")
            .tempdir_in("/tmp")
            .unwrap();
        let env = vec![
            ("RAY_AUTH_MODE", "token".to_string()),
            (
                "RAY_AUTH_TOKEN",
                format!("wormnet-test-{}-{port}", std::process::id()),
            ),
            ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0".to_string()),
        ];
        let child = Command::new(&ray)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["start", "--head", "--block", "--node-ip-address=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--num-cpus={cpus}"))
            .args(["--include-dashboard=false", "--disable-usage-stats"])
            .arg("--object-store-memory=80000000")
            .arg(format!("--temp-dir={}", temp.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): run scripts/setup --ray",
                    ray.display()
                )
            });
        let address = format!("127.0.0.1:{port}");
        let start = Instant::now();
        while TcpStream::connect(&address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the Ray head did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        RayHead {
            child,
            address,
            env,
            _temp: temp,
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        // `ray start --block` stops the head's processes when it is terminated.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[test]
fn local_and_ray_sweeps_train_identical_trials_and_report_them() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped cartpole config, on a budget of 16 updates.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cartpole.toml");
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "config = {:?}\nseeds = [1, 2, 3]\n\
             set = {{ \"run.total_steps\" = 4096, \"run.eval_every\" = 8, \"run.eval_episodes\" = 4 }}\n\
             [grid]\n\"policy.actor.cell\" = [\"ltc\", \"cfc\"]\n",
            config.canonicalize().unwrap()
        ),
    )
    .unwrap();
    let local = dir.path().join("local");
    let out = wormnet(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
        "--parallel",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trials = statuses(&local);
    assert_eq!(trials.len(), 6);
    assert!(trials.iter().all(|(_, s)| s == "finished"), "{trials:?}");
    // Two trials at a time share the cores: each takes half of them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (id, _) in &trials {
        let config = std::fs::read_to_string(local.join("trials").join(id).join("config.toml"));
        let half = format!("threads = {}\n", (cores / 2).max(1));
        assert!(config.unwrap().contains(&half), "trial {id}: {half}");
    }

    let head = RayHead::start(2);
    let ray = dir.path().join("ray");
    let out = Command::new(BIN)
        .args([
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            ray.to_str().unwrap(),
        ])
        .args(["--executor", "ray", "--ray-address", &head.address])
        .envs(head.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    drop(head);
    assert!(statuses(&ray).iter().all(|(_, s)| s == "finished"));
    for (id, _) in &trials {
        let (a, b) = (local.join("trials").join(id), ray.join("trials").join(id));
        assert_eq!(learning_columns(&a), learning_columns(&b), "trial {id}");
        assert_eq!(
            json(&a.join("best.json"))["eval"],
            json(&b.join("best.json"))["eval"],
            "trial {id}"
        );
    }

    // A re-run has nothing left to do.
    let out = wormnet(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("(6 already finished; 0 to run"),
        "{}",
        stderr(&out)
    );

    let report = dir.path().join("report");
    let out = wormnet(&[
        "report",
        local.to_str().unwrap(),
        "--noise",
        "0,0.2",
        "--episodes",
        "2",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("6 runs in 2 groups") && table.contains("| cell=ltc | 3 |"),
        "{table}"
    );
    let csv = std::fs::read_to_string(report.join("report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines().next().unwrap().contains("noise_0.2_mean"),
        "{csv}"
    );
    for png in ["curves.png", "robustness.png"] {
        let (w, h) = image::image_dimensions(report.join(png)).unwrap();
        assert!(w >= 600 && h >= 400, "{png}: {w}x{h}");
    }
}

#[test]
fn a_killed_sweep_finishes_only_the_missing_trials_on_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = write_sweep(dir.path(), 6144, "[1, 2, 3]", "[\"ltc\"]");
    let out_dir = dir.path().join("sweep");
    let child = Command::new(BIN)
        .args(["sweep", sweep.to_str().unwrap(), "--parallel", "1", "--out"])
        .arg(&out_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it while the second trial is past its first checkpoint.
    wait_until("one trial finished and the next checkpointed", || {
        out_dir.join("manifest.json").exists()
            && statuses(&out_dir).iter().any(|(_, s)| s == "finished")
            && out_dir.join("trials/cell=ltc-s2/latest.json").exists()
    });
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    let before = statuses(&out_dir);
    let finished: Vec<&String> = before
        .iter()
        .filter(|(_, s)| s == "finished")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(finished, ["cell=ltc-s1"], "{before:?}");
    // One trial at a time has the machine to itself: it uses every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = std::fs::read_to_string(out_dir.join("trials/cell=ltc-s1/config.toml"));
    assert!(config.unwrap().contains(&format!("threads = {cores}\n")));
    let s1_metrics = std::fs::read(out_dir.join("trials/cell=ltc-s1/metrics.csv")).unwrap();
    let s1_log = std::fs::read(out_dir.join("logs/cell=ltc-s1.log")).unwrap();

    let out = wormnet(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("(1 already finished; 2 to run"),
        "{}",
        stderr(&out)
    );
    assert!(statuses(&out_dir).iter().all(|(_, s)| s == "finished"));
    // The finished trial was not touched; the interrupted one resumed and ended exactly where
    // an uninterrupted run of it ends.
    assert_eq!(
        std::fs::read(out_dir.join("trials/cell=ltc-s1/metrics.csv")).unwrap(),
        s1_metrics
    );
    assert_eq!(
        std::fs::read(out_dir.join("logs/cell=ltc-s1.log")).unwrap(),
        s1_log
    );
    let reference = dir.path().join("reference");
    let config = dir.path().join("cartpole-test.toml");
    let out = wormnet(&[
        "train",
        config.to_str().unwrap(),
        "--seed",
        "2",
        "--set",
        "policy.actor.cell=ltc",
        "--quiet",
        "--run-dir",
        reference.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        learning_columns(&out_dir.join("trials/cell=ltc-s2")),
        learning_columns(&reference)
    );
}

#[test]
fn a_failed_trial_is_reported_with_its_error_and_the_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 256, 0);
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "config = {:?}\n[[variant]]\nname = \"good\"\n[[variant]]\nname = \"bad\"\nset = {{ \"env.options.no_such_option\" = 1 }}\n",
            config.to_str().unwrap()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("sweep");
    let out = wormnet(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("bad-s1")
            && err.contains("no_such_option")
            && err.contains("1 of 2 trials failed"),
        "{err}"
    );
    let manifest = json(&out_dir.join("manifest.json"));
    let trial = |id: &str| {
        manifest["trials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(trial("good-s1")["status"], "finished");
    assert_eq!(trial("bad-s1")["status"], "failed");
    assert!(trial("bad-s1")["error"]
        .as_str()
        .unwrap()
        .contains("no_such_option"));

    // A typo in a sweep's key fails the whole sweep before anything starts, naming it.
    std::fs::write(
        &sweep,
        format!(
            "config = {:?}\nset = {{ \"ppo.learnin_rate\" = 1 }}\n",
            config.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = wormnet(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        dir.path().join("typo").to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("learnin_rate"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("typo").exists());
}

/// A run directory with a config (cell, seed) and a metrics.csv of the given evaluations
/// `(step, return)`, each update taking 1 s of rollout, 2 s of update and 4 s of wall time.
fn fake_run(dir: &Path, name: &str, cell: &str, seed: u64, evals: &[(u64, f64)]) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    // A budget of 384 steps: a run evaluated at step 320 (its last row at 384) finished.
    let config = std::fs::read_to_string(write_config(dir, 384, 4)).unwrap();
    let config = config
        .replace("cell = \"ltc\"", &format!("cell = \"{cell}\""))
        .replace("seed = 3", &format!("seed = {seed}"));
    std::fs::write(run.join("config.toml"), config).unwrap();
    let mut csv = String::from("global_step,charts/episodic_return,eval/mean_return,perf/rollout_seconds,perf/update_seconds,perf/wall_seconds\n");
    let mut wall = 0.0;
    for &(step, ret) in evals {
        csv.push_str(&format!(
            "{step},1.0,,1.0,2.0,{}\n{},1.0,{ret},1.0,2.0,{}\n",
            wall + 4.0,
            step + 64,
            wall + 8.0
        ));
        wall += 8.0;
    }
    std::fs::write(run.join("metrics.csv"), csv).unwrap();
    run
}

#[test]
fn report_numbers_match_a_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs = [
        fake_run(d, "a", "ltc", 1, &[(64, 5.0), (192, 30.0), (320, 10.0)]),
        fake_run(d, "b", "ltc", 2, &[(64, 8.0), (192, 12.0), (320, 20.0)]),
        fake_run(d, "c", "cfc", 1, &[(64, 50.0), (192, 50.0), (320, 50.0)]),
    ];
    let out_dir = d.join("report");
    let mut args: Vec<&str> = vec![
        "report",
        "--threshold",
        "15",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    let out = wormnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(out_dir.join("report.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let ltc = &rows[1];
    let num = |row: &Vec<String>, name: &str| row[col(name)].parse::<f64>().unwrap();
    assert_eq!(ltc[col("group")], "\"cell=ltc\"");
    assert_eq!(num(ltc, "seeds"), 2.0);
    // Finals 10 and 20: mean 15; the bootstrap of two values spans them (see stats.rs).
    assert_eq!(
        (
            num(ltc, "final_mean"),
            num(ltc, "final_ci_lo"),
            num(ltc, "final_ci_hi")
        ),
        (15.0, 10.0, 20.0)
    );
    assert_eq!(num(ltc, "final_iqm"), 15.0);
    // Bests 30 and 20.
    assert_eq!(
        (
            num(ltc, "best_mean"),
            num(ltc, "best_ci_lo"),
            num(ltc, "best_ci_hi")
        ),
        (25.0, 20.0, 30.0)
    );
    // Threshold 15: run a at step 256 (its 4th row: 16 s of wall time), run b at 384 (6th
    // row, 24 s). Each run: 6 rows of 3 s training and 4 s wall time.
    assert_eq!(num(ltc, "reached_threshold"), 2.0);
    assert_eq!(num(ltc, "steps_to_threshold"), (256.0 + 384.0) / 2.0);
    assert_eq!(num(ltc, "wall_seconds_to_threshold"), 20.0);
    assert_eq!(
        (num(ltc, "train_seconds"), num(ltc, "wall_seconds")),
        (18.0, 24.0)
    );
    // Each run's last row is at step 384.
    assert_eq!(num(ltc, "env_steps"), 384.0);
    let cfc = &rows[2];
    assert_eq!(
        (
            num(cfc, "final_mean"),
            num(cfc, "final_ci_lo"),
            num(cfc, "final_ci_hi")
        ),
        (50.0, 50.0, 50.0)
    );
    assert_eq!(num(cfc, "steps_to_threshold"), 128.0);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| cell=ltc | 2 | 15.0 [10.0, 20.0] | 15.0 | 25.0 [20.0, 30.0] | 320 (2/2) | 20.0 | 384 | 18.0 | 24.0 |"), "{md}");
    assert!(out_dir.join("curves.png").exists());

    // Runs without a policy to evaluate still report; their noise cells are empty.
    let mut args: Vec<&str> = vec![
        "report",
        "--noise",
        "0.1",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    let out = wormnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: no noise evaluation of"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unfinished_run_is_marked_and_kept_out_of_its_groups_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs = [
        fake_run(d, "a", "ltc", 1, &[(64, 10.0), (320, 10.0)]),
        fake_run(d, "b", "ltc", 2, &[(64, 20.0), (320, 20.0)]),
        // Stopped at step 128 of its 384.
        fake_run(d, "c", "ltc", 3, &[(64, 500.0)]),
        fake_run(d, "d", "cfc", 1, &[(64, 30.0), (320, 30.0)]),
    ];
    let out_dir = d.join("report");
    let mut args: Vec<&str> = vec!["report", "--out", out_dir.to_str().unwrap()];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    let out = wormnet(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 of 4 runs are unfinished") && err.contains("c (128 of 384 steps)"),
        "{err}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for text in [table.as_ref(), md.as_str()] {
        // The finished seeds alone make the group's numbers; the unfinished run is a row of
        // its own, saying so.
        assert!(
            text.contains("| cell=ltc | 2 | 15.0 [10.0, 20.0] |"),
            "{text}"
        );
        assert!(
            text.contains("| cell=ltc (unfinished: 128 of 384 steps) | 1 | 500.0 [500.0, 500.0] |"),
            "{text}"
        );
        assert!(text.contains("Rows marked *unfinished*"), "{text}");
    }
    let csv = std::fs::read_to_string(out_dir.join("report.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("group,seeds,finished,final_mean,"),
        "{csv}"
    );
    for row in [
        "\"cell=ltc\",2,true,15,10,20,",
        "\"cell=ltc (unfinished: 128 of 384 steps)\",1,false,500,500,500,",
    ] {
        assert!(rows.iter().any(|r| r.starts_with(row)), "{row}: {csv}");
    }
}

#[test]
fn every_shipped_sweep_lists_its_trials() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sweeps");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = wormnet(&["sweep", path.to_str().unwrap(), "--dry-run"]);
        assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        // The shipped sweeps have 5 trials or more, each a `train` command line.
        assert!(listed.lines().count() >= 5, "{}: {listed}", path.display());
        assert!(listed.lines().all(|l| l.contains(" train ")), "{listed}");
    }
}
