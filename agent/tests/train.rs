//! Cross-crate behaviour of `wormnet train`: real envs through the VecEnv, real libtorch
//! autograd, real files on disk.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use tch::Tensor;
use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::config::TrainConfig;
use wormnet_agent::train::{Outcome, Trainer};
use wormnet_ncp::{Wiring, WiringConfig};
use wormnet_sim::{Env, EnvSpec, Frame, Registry, Space, Step};

/// Small and fast: 4 cartpole envs, 16-step rollouts, a 6-neuron CfC.
fn envs() -> wormnet_sim::Registry {
    wormnet_envs::registry()
}

fn small_config(cell: &str) -> TrainConfig {
    let text = format!(
        r#"
[env]
name = "cartpole"
num_envs = 4
workers = 2
[env.options]
no_velocity = true
[policy]
timespan = 1.0
[policy.actor]
cell = "{cell}"
wiring = {{ kind = "auto_ncp", units = 6, output_size = 2, sparsity_level = 0.5, seed = 7 }}
[ppo]
steps_per_rollout = 16
epochs = 2
minibatches = 2
learning_rate = 1e-3
[run]
seed = 5
total_steps = 640
threads = 1
checkpoint_every = 2
eval_every = 0
eval_episodes = 2
"#
    );
    TrainConfig::parse(&text, Path::new("test.toml")).expect("test config parses")
}

/// libtorch's random generator and thread count are process-wide: tests that train take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn params(trainer: &Trainer) -> Vec<(String, Tensor)> {
    trainer.policy.parameters()
}

fn assert_same_params(a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "parameter {na} differs");
    }
}

#[test]
fn first_minibatch_of_first_epoch_has_ratio_one() {
    let _serial = serial();
    for cell in ["cfc", "ltc"] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::create(small_config(cell), dir.path(), &envs()).unwrap();
        let mut deviations = Vec::new();
        t.run(Some(2), |_, s| deviations.push(s.first_ratio_deviation))
            .unwrap();
        for d in deviations {
            // The replay recomputes the rollout's log-probabilities from the stored start state
            // and episode-start masks; only float rounding may differ.
            assert!(d < 1e-5, "{cell}: max |ratio - 1| = {d}");
        }
    }
}

#[test]
fn resumed_run_continues_exactly_like_the_uninterrupted_one() {
    let _serial = serial();
    let full_dir = tempfile::tempdir().unwrap();
    let mut full = Trainer::create(small_config("cfc"), full_dir.path(), &envs()).unwrap();
    assert_eq!(full.run(Some(3), |_, _| {}).unwrap(), Outcome::UpdateLimit);
    let expected = params(&full);
    let expected_step = full.global_step;
    drop(full);

    // The "killed" run: 2 updates (checkpoint at update 2), then the process is gone.
    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::create(small_config("cfc"), dir.path(), &envs()).unwrap();
    first.run(Some(2), |_, _| {}).unwrap();
    drop(first);
    let mut resumed = Trainer::resume(dir.path(), None, &envs()).unwrap();
    assert_eq!(resumed.update, 2);
    resumed.run(Some(1), |_, _| {}).unwrap();
    assert_eq!(resumed.global_step, expected_step);
    assert_same_params(&params(&resumed), &expected);
}

#[test]
fn the_same_seed_and_thread_count_give_the_same_bits() {
    // With 2 threads each minibatch is split over two update shards (on a machine with two
    // cores); run twice, every parameter and every logged loss and gradient norm must agree to
    // the bit, as they must on one thread.
    let _serial = serial();
    let cores = wormnet_agent::threads::available_cores();
    for (cell, threads) in [("ltc", 1), ("ltc", 2), ("cfc", 2)] {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let mut config = small_config(cell);
            config.run.threads = Some(threads);
            let mut t = Trainer::create(config, dir.path(), &envs()).unwrap();
            assert_eq!(t.threads.threads, threads.min(cores));
            let mut logged = Vec::new();
            t.run(Some(3), |_, s| {
                assert_eq!(s.shards, t_shards(threads.min(cores)), "{cell}");
                logged.push([
                    s.policy_loss,
                    s.value_loss,
                    s.entropy,
                    s.approx_kl,
                    s.grad_norm,
                ]);
            })
            .unwrap();
            runs.push((params(&t), logged));
        }
        assert_same_params(&runs[0].0, &runs[1].0);
        assert_eq!(runs[0].1, runs[1].1, "{cell}, {threads} threads");
    }
}

/// Update shards of [`small_config`]'s minibatches at `threads` threads.
fn t_shards(threads: usize) -> usize {
    let config = small_config("ltc");
    threads.min(config.env.num_envs / config.ppo.minibatches)
}

#[test]
fn bevy_envs_sharing_apps_leave_the_run_unchanged_to_the_bit() {
    // `env.envs_per_app = 3` puts 3 of the 4 worms in one Bevy `App` (one world each) and the
    // fourth in an `App` of its own: every parameter and logged loss must be those of an `App`
    // per env, episode ends (at 20 steps) and respawns included.
    let _serial = serial();
    let mut runs = Vec::new();
    for k in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = small_config("ltc");
        config.env.name = "worm".into();
        config.env.workers = Some(1);
        config.env.envs_per_app = k;
        config.env.options = toml::from_str("max_episode_steps = 20").unwrap();
        config.policy.actor.wiring = Some(WiringConfig::AutoNcp {
            units: 8,
            output_size: 5,
            sparsity_level: 0.5,
            seed: 7,
        });
        let mut t = Trainer::create(config, dir.path(), &envs()).unwrap();
        let mut logged = Vec::new();
        t.run(Some(3), |_, s| {
            logged.push([s.policy_loss, s.value_loss, s.entropy, s.grad_norm]);
        })
        .unwrap();
        runs.push((params(&t), logged));
    }
    assert_same_params(&runs[0].0, &runs[1].0);
    assert_eq!(runs[0].1, runs[1].1, "the logged losses differ");
}

#[test]
fn corrupt_checkpoint_is_named_and_the_other_is_kept() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(small_config("cfc"), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    t.save("best", None).unwrap();
    drop(t);
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("latest.json")).unwrap()).unwrap();
    let tensors = dir.path().join(latest["tensors"].as_str().unwrap());
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();

    let err = format!(
        "{:#}",
        Trainer::resume(dir.path(), None, &envs()).err().unwrap()
    );
    assert!(err.contains(&tensors.display().to_string()), "{err}");
    assert!(err.contains("corrupt or truncated"), "{err}");
    // The best checkpoint is untouched and still loads.
    assert!(load_checkpoint(&dir.path().join("best.json"), tch::Device::Cpu).is_ok());
}

#[test]
fn checkpoint_from_another_wiring_is_rejected() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(small_config("ltc"), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    // Same shapes, another random wiring: only the fixed masks tell them apart.
    let path = dir.path().join("latest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut sidecar: serde_json::Value = serde_json::from_str(&text).unwrap();
    let wiring = &mut sidecar["config"]["policy"]["actor"]["wiring"];
    let before: WiringConfig = serde_json::from_value(wiring.clone()).unwrap();
    wiring["seed"] = 12.into();
    let after: WiringConfig = serde_json::from_value(wiring.clone()).unwrap();
    let adjacency = |c: &WiringConfig| {
        Wiring::from_config(c)
            .unwrap()
            .built(2)
            .unwrap()
            .adjacency()
            .to_vec()
    };
    assert_ne!(
        adjacency(&before),
        adjacency(&after),
        "precondition: the seeds give different wirings"
    );
    std::fs::write(&path, serde_json::to_string(&sidecar).unwrap()).unwrap();
    let err = format!(
        "{:#}",
        load_checkpoint(&path, tch::Device::Cpu).err().unwrap()
    );
    assert!(err.contains("another wiring"), "{err}");
    assert!(err.contains("latest-000002.safetensors"), "{err}");
}

#[test]
fn a_new_run_refuses_to_overwrite_an_existing_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(small_config("cfc"), dir.path(), &envs()).unwrap();
    t.run(Some(2), |_, _| {}).unwrap();
    drop(t);
    let err = Trainer::create(small_config("cfc"), dir.path(), &envs())
        .err()
        .unwrap();
    assert!(err.to_string().contains("already holds a run"), "{err}");
}

/// An env whose reward turns NaN after a few steps, to check the trainer's error path.
struct NanEnv {
    spec: EnvSpec,
    t: u32,
}

impl Env for NanEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
        self.t = 0;
        obs.fill(0.0);
    }
    fn step(&mut self, _action: &[f32], obs: &mut [f32]) -> Step {
        self.t += 1;
        obs.fill(self.t as f32);
        Step {
            reward: if self.t > 5 { f32::NAN } else { 1.0 },
            terminated: false,
            truncated: false,
        }
    }
    fn frame(&self) -> Frame {
        Frame::default()
    }
}

#[test]
fn env_emitting_nan_stops_training_with_its_name_and_keeps_checkpoints() {
    let _serial = serial();
    let mut registry = Registry::new();
    registry
        .register("nan_env", "reward turns NaN after 5 steps", |_options| {
            Ok(Box::new(NanEnv {
                spec: EnvSpec {
                    name: "nan_env".into(),
                    observation_space: Space::uniform(2, -100.0, 100.0).unwrap(),
                    action_space: Space::discrete(2).unwrap(),
                    dt: 0.1,
                    max_episode_steps: Some(50),
                    observation_names: vec!["a".into(), "b".into()],
                    action_names: vec!["push".into()],
                    clip_actions: false,
                    survival_is_success: false,
                    image: None,
                },
                t: 0,
            }) as Box<dyn Env>)
        })
        .unwrap();
    let mut config = small_config("cfc");
    config.env.name = "nan_env".into();
    config.env.options = toml::Table::new();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::create(config, dir.path(), &registry).unwrap();
    let err = format!("{:#}", t.run(None, |_, _| {}).err().unwrap());
    assert!(err.contains("nan_env"), "{err}");
    assert!(err.to_lowercase().contains("nan"), "{err}");
    // It failed in the first update: there is no checkpoint to call intact.
    assert!(err.contains("no checkpoint had been written yet"), "{err}");
}
