//! A run directory never loses or mixes data: one process at a time, `best` never replaced by
//! a worse policy after a crash, nothing overwritten or deleted that no sidecar accounts for,
//! no duplicate metrics rows after a resume, and checkpoints that cannot be trusted refused
//! with the tensor or file named.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use tch::Tensor;
use wormnet_agent::checkpoint::{load_checkpoint, load_json, save_json, Sidecar};
use wormnet_agent::config::TrainConfig;
use wormnet_agent::train::Trainer;

fn envs() -> wormnet_sim::Registry {
    wormnet_envs::registry()
}

/// 4 cartpole envs, 16-step rollouts, a 6-neuron CfC; evaluated every update, latest saved
/// every 2.
fn config() -> TrainConfig {
    let text = r#"
[env]
name = "cartpole"
num_envs = 4
workers = 1
[env.options]
no_velocity = true
[policy]
timespan = 1.0
[policy.actor]
cell = "cfc"
wiring = { kind = "auto_ncp", units = 6, output_size = 2, sparsity_level = 0.5, seed = 7 }
[ppo]
steps_per_rollout = 16
epochs = 2
minibatches = 2
[run]
seed = 5
total_steps = 640
threads = 1
checkpoint_every = 2
eval_every = 1
eval_episodes = 2
"#;
    TrainConfig::parse(text, Path::new("test.toml")).expect("test config parses")
}

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_second_trainer_on_a_locked_directory_fails_at_once_naming_the_holder() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let first = Trainer::create(config(), dir.path(), &envs()).unwrap();
    let err = format!(
        "{:#}",
        Trainer::resume(dir.path(), None, &envs()).err().unwrap()
    );
    assert!(err.contains("in use by another wormnet process"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(first);
}

#[test]
fn best_saved_ahead_of_latest_is_never_replaced_by_a_worse_policy() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    t.run(Some(3), |_, _| {}).unwrap();
    drop(t);
    // As if the process died after saving a great `best` at update 3, before `latest` (at 2)
    // recorded that score.
    let best_path = dir.path().join("best.json");
    let mut best: Sidecar = load_json(&best_path).unwrap();
    best.eval.as_mut().unwrap().mean_return = 1e6;
    save_json(&best_path, &best).unwrap();
    let before = std::fs::read(&best_path).unwrap();
    let mut t = Trainer::resume(dir.path(), None, &envs()).unwrap();
    t.run(Some(4), |_, _| {}).unwrap();
    drop(t);
    assert_eq!(
        std::fs::read(&best_path).unwrap(),
        before,
        "best.json was replaced"
    );
    let tensors = dir.path().join(&best.tensors);
    assert!(tensors.exists(), "the best tensors were deleted");
}

#[test]
fn a_directory_with_files_but_no_run_to_resume_is_refused_and_left_alone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    t.run(Some(1), |_, _| {}).unwrap();
    drop(t);
    // A run that died after its first best save: best and metrics, no latest.
    for name in files(dir.path()) {
        if name.starts_with("latest") {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
    }
    let before: Vec<(String, Vec<u8>)> = files(dir.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap()))
        .collect();
    assert!(before.iter().any(|(n, _)| n == "best.json"));
    let err = format!(
        "{:#}",
        Trainer::create(config(), dir.path(), &envs())
            .err()
            .unwrap()
    );
    assert!(err.contains("already holds files"), "{err}");
    assert!(err.contains("best.json"), "{err}");
    let after: Vec<(String, Vec<u8>)> = files(dir.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap()))
        .collect();
    assert_eq!(before, after, "the directory changed");
}

#[test]
fn a_corrupt_best_sidecar_keeps_its_tensors_on_resume() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    let best: Sidecar = load_json(&dir.path().join("best.json")).unwrap();
    std::fs::write(dir.path().join("best.json"), b"{ not json").unwrap();
    // No evaluation in the resumed run: nothing saves a new `best` that could supersede it.
    let mut quiet = config();
    quiet.run.eval_every = 0;
    let mut t = Trainer::resume(dir.path(), Some(quiet), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    assert!(
        dir.path().join(&best.tensors).exists(),
        "{} was deleted though no readable sidecar superseded it",
        best.tensors
    );
}

#[test]
fn a_resume_after_a_crash_logs_every_step_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    // Three updates logged, the latest checkpoint at 2: the process "dies" here.
    t.run(Some(3), |_, _| {}).unwrap();
    drop(t);
    let mut t = Trainer::resume(dir.path(), None, &envs()).unwrap();
    t.run(None, |_, _| {}).unwrap();
    drop(t);
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let steps: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let mut unique = steps.clone();
    unique.dedup();
    assert_eq!(steps, unique, "duplicate rows:\n{csv}");
    assert_eq!(steps.len(), 10, "one row per update of 64 steps up to 640");
}

#[test]
fn a_checkpoint_with_nan_weights_is_refused_naming_the_tensor() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    let path = dir.path().join("latest.json");
    let mut sidecar: Sidecar = load_json(&path).unwrap();
    let tensors_path = dir.path().join(&sidecar.tensors);
    let mut tensors = Tensor::read_safetensors(&tensors_path).unwrap();
    let (name, t) = tensors
        .iter_mut()
        .find(|(n, _)| n.starts_with("policy/") && n.ends_with("ff1.weight"))
        .expect("a policy weight");
    let _ = t.fill_(f64::NAN);
    let name = name.trim_start_matches("policy/").to_string();
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&named, &tensors_path).unwrap();
    // A consistent checkpoint, only with NaN weights: the checksum matches.
    sidecar.tensors_crc32c = Some(crc32c::crc32c(&std::fs::read(&tensors_path).unwrap()));
    save_json(&path, &sidecar).unwrap();
    let err = format!(
        "{:#}",
        load_checkpoint(&path, tch::Device::Cpu).err().unwrap()
    );
    assert!(err.contains(&name) && err.contains("NaN"), "{err}");
    let err = format!(
        "{:#}",
        Trainer::resume(dir.path(), None, &envs()).err().unwrap()
    );
    assert!(err.contains(&name) && err.contains("NaN"), "{err}");
}

#[test]
fn a_policy_that_cannot_be_built_creates_no_directory() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, field) in [
        ("hidden = [64, 64]", "hidden = [0]", "policy.critic"),
        (
            "sparsity_level = 0.5",
            "sparsity_level = 1.5",
            "policy.actor",
        ),
        ("timespan = 1.0", "timespan = -1.0", "policy.timespan"),
        ("output_size = 2", "output_size = 3", "policy.actor"),
    ] {
        let text = toml::to_string(&config()).unwrap();
        assert!(text.contains(from), "precondition: {from} in\n{text}");
        let text = text.replace(from, to);
        let edit = to;
        assert!(text.contains(edit), "the edit applies: {edit}\n{text}");
        let run = tmp.path().join("run");
        // Refused with the config (a width past its bound) or when the policy is built.
        let err = match TrainConfig::parse(&text, Path::new("edited.toml")) {
            Err(e) => e.to_string(),
            Ok(config) => format!(
                "{:#}",
                Trainer::create(config, &run, &envs()).err().unwrap()
            ),
        };
        assert!(err.contains(field), "{edit}: {err}");
        assert!(!run.exists(), "{edit}: a run directory was created");
    }
}

/// Every run made before `run.threads` recorded `run.update_threads` and `ppo.log_std_init`,
/// settings since retired: such a run still evaluates, reports and resumes (a config a person
/// writes with them is refused, naming them; see the config tests).
#[test]
fn a_run_recorded_with_since_retired_settings_still_loads_reports_and_resumes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config(), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    for name in ["best.json", "latest.json"] {
        let path = dir.path().join(name);
        let mut sidecar: serde_json::Value = load_json(&path).unwrap();
        sidecar["config"]["run"]["update_threads"] = 2.into();
        sidecar["config"]["ppo"]["log_std_init"] = 0.0.into();
        save_json(&path, &sidecar).unwrap();
    }
    let record = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("[run]\n") && text.contains("[ppo]\n"),
        "{text}"
    );
    let old = text
        .replace("[run]\n", "[run]\nupdate_threads = 2\n")
        .replace("[ppo]\n", "[ppo]\nlog_std_init = 0.0\n");
    std::fs::write(&record, old).unwrap();
    assert!(
        TrainConfig::load(&record).is_err(),
        "as a config it is refused"
    );
    load_checkpoint(&dir.path().join("best.json"), tch::Device::Cpu).unwrap();
    let run = wormnet_agent::compare::RunRecord::load(dir.path()).unwrap();
    assert_eq!(run.config, TrainConfig::parse(&text, &record).unwrap());
    let mut t = Trainer::resume(dir.path(), None, &envs()).unwrap();
    t.run(Some(3), |_, _| {}).unwrap();
}
