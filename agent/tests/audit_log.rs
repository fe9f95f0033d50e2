//! The audit log is the policy's own computation: the neuron columns of `steps.csv` equal the
//! states the NCP produces when the recorded episode is replayed through it as one sequence.

use std::rc::Rc;

use tch::{Device, Kind, Tensor};
use wormnet_agent::inspect::audit::{self, Auditor};
use wormnet_agent::policy::{Policy, PolicyConfig};

fn policy_for(env: &str) -> (Policy, wormnet_sim::EnvSpec) {
    let spec = wormnet_envs::registry()
        .make(env, &toml::Table::new())
        .expect("env")
        .spec()
        .clone();
    let wiring = format!(
        "{{ kind = \"auto_ncp\", units = 12, output_size = {}, seed = 5 }}",
        spec.action_dim()
    );
    policy_with(env, &wiring)
}

/// The shipped tap-withdrawal circuit (11 named neurons, 2 gap junctions): its motor neurons
/// FWD and REV are cartpole's two action logits.
fn tw_circuit() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/wirings/tw.bnn");
    format!(
        r#"{{ kind = "bnn", path = "{path}", names = ["PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA", "FWD", "REV"], sensory = ["PVD", "PLM", "AVM", "ALM"], command = ["AVA", "AVD", "PVC", "AVB"], motor = ["FWD", "REV"] }}"#
    )
}

fn policy_with(env: &str, wiring: &str) -> (Policy, wormnet_sim::EnvSpec) {
    let spec = wormnet_envs::registry()
        .make(env, &toml::Table::new())
        .expect("env")
        .spec()
        .clone();
    let config: PolicyConfig =
        toml::from_str(&format!("[actor]\ncell = \"ltc\"\nwiring = {wiring}\n"))
            .expect("policy config");
    tch::manual_seed(11);
    (
        Policy::new(&spec, &config, Device::Cpu).expect("policy"),
        spec,
    )
}

#[test]
fn csv_neuron_columns_equal_a_replay_through_the_ncp() {
    let (mut policy, spec) = policy_for("vehicle");
    // A normaliser that really changes the inputs, as a trained checkpoint's would.
    let mut norm = wormnet_agent::policy::ObsNormalizer::new(spec.obs_dim(), 5.0);
    let fake: Vec<f32> = (0..spec.obs_dim() * 4)
        .map(|i| (i % 7) as f32 * 0.3)
        .collect();
    norm.stats.update(&fake);
    policy.set_obs_normalizer(Some(norm));
    let policy = Rc::new(policy);
    let mut auditor = Auditor::new(policy.clone(), true);
    let env = wormnet_envs::registry()
        .make("vehicle", &toml::Table::new())
        .expect("vehicle");
    let rollout =
        audit::record_episode(env, toml::Table::new(), 3, 40, &mut auditor).expect("record");
    let t = rollout.steps.len();
    assert!(t >= 10, "episode too short to mean anything: {t} steps");

    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("steps.csv");
    audit::write_steps_csv(&rollout, &csv).expect("write csv");
    let (names, rows) = audit::read_neuron_columns(&csv).expect("read csv");
    assert_eq!(names, policy.neuron_labels());
    assert!(names.iter().any(|n| n == "motor_steering"), "{names:?}");
    assert_eq!(rows.len(), t);

    // Replay: the normalised observations the policy acted on, as one (1, T, O) sequence.
    let inputs: Vec<f32> = auditor.acted_inputs(&rollout).concat();
    let x = Tensor::from_slice(&inputs).reshape([1, t as i64, spec.obs_dim() as i64]);
    let ts = Tensor::full(
        [1, t as i64],
        f64::from(spec.dt),
        (Kind::Float, Device::Cpu),
    );
    let (_, states, _) = policy.actor.forward_sequence_states(&x, None, Some(&ts));
    let n = names.len();
    let replay = Vec::<f32>::try_from(states.reshape([-1])).expect("states");
    assert_eq!(replay.len(), t * n);
    let mut worst = 0.0f32;
    for (step, row) in rows.iter().enumerate() {
        for (k, &logged) in row.iter().enumerate() {
            let expected = replay[step * n + k];
            worst = worst.max((logged - expected).abs() / (1.0 + expected.abs()));
        }
    }
    assert!(
        worst < 1e-4,
        "logged neuron states differ from the replay by {worst}"
    );
    // And the states are not trivially zero: the network did something.
    assert!(rows.iter().flatten().any(|v| v.abs() > 1e-3));
}

/// The attribution log explains the potentials exactly: for every step and neuron, the
/// recorded contributions of its synapses, sensory synapses, gap junctions and leak add up to
/// the change of its recorded potential in `steps.csv` — for a generated NCP and for the
/// tap-withdrawal circuit with its gap junctions and named neurons.
#[test]
fn ltc_contributions_add_up_to_the_recorded_change_of_potential() {
    let (policy, _) = policy_for("vehicle");
    contributions_add_up(policy, "vehicle", &["leak", "sensory", "synapse"], 10);
    let (policy, _) = policy_with("cartpole", &tw_circuit());
    assert_eq!(policy.neuron_labels()[..2], ["FWD", "REV"]);
    // An untrained policy drops the pole within about ten steps.
    contributions_add_up(
        policy,
        "cartpole",
        &["gap", "leak", "sensory", "synapse"],
        6,
    );
}

fn contributions_add_up(policy: Policy, env_name: &str, expected_kinds: &[&str], min_steps: usize) {
    let policy = Rc::new(policy);
    let mut auditor = Auditor::new(policy.clone(), true);
    let env = wormnet_envs::registry()
        .make(env_name, &toml::Table::new())
        .expect("env");
    let rollout =
        audit::record_episode(env, toml::Table::new(), 4, 40, &mut auditor).expect("record");
    let dir = tempfile::tempdir().expect("tempdir");
    let (steps_csv, attribution_csv) = (dir.path().join("steps.csv"), dir.path().join("a.csv"));
    audit::write_steps_csv(&rollout, &steps_csv).expect("steps.csv");
    audit::write_attribution_csv(
        auditor.attributions(),
        &auditor.neuron_labels(),
        &rollout.spec.observation_names,
        &attribution_csv,
    )
    .expect("attribution.csv");
    let (names, rows) = audit::read_neuron_columns(&steps_csv).expect("read steps");
    let t_len = rows.len();
    assert!(t_len >= min_steps, "{env_name}: only {t_len} steps");
    // Sum the log's contributions per (step, target).
    let text = std::fs::read_to_string(&attribution_csv).expect("read attribution");
    let mut sums = vec![vec![0f64; names.len()]; t_len];
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let t: usize = cells[0].parse().unwrap();
        let j = names
            .iter()
            .position(|n| n == cells[3])
            .expect("a neuron target");
        sums[t][j] += cells[4].parse::<f64>().unwrap();
        kinds.insert(cells[1].to_string());
    }
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected_kinds);
    let mut worst = 0.0f64;
    for t in 0..t_len {
        for j in 0..names.len() {
            let before = if t == 0 {
                0.0
            } else {
                f64::from(rows[t - 1][j])
            };
            let change = f64::from(rows[t][j]) - before;
            worst = worst.max((sums[t][j] - change).abs() / (1.0 + change.abs()));
        }
    }
    assert!(
        worst < 1e-4,
        "contributions differ from the change of potential by {worst}"
    );
    assert!(
        sums.iter().flatten().any(|s| s.abs() > 1e-3),
        "nothing moved"
    );
}

/// Saliency is the derivative it claims to be: it matches finite differences of the actor's
/// output replayed over the same observations.
#[test]
fn saliency_matches_finite_differences() {
    // A timespan of 1 (not the env's 0.05 s) so that an observation reaches the motor neuron
    // within its own step strongly enough to measure by finite differences.
    let spec = wormnet_envs::registry()
        .make("vehicle", &toml::Table::new())
        .expect("env")
        .spec()
        .clone();
    let config: PolicyConfig = toml::from_str(
        "timespan = 1.0\n[actor]\ncell = \"ltc\"\nwiring = { kind = \"auto_ncp\", units = 12, output_size = 1, seed = 5 }\n",
    )
    .expect("policy config");
    tch::manual_seed(11);
    let policy = Policy::new(&spec, &config, Device::Cpu).expect("policy");
    let policy = Rc::new(policy);
    let mut auditor = Auditor::new(policy.clone(), true);
    let env = wormnet_envs::registry()
        .make("vehicle", &toml::Table::new())
        .expect("vehicle");
    let rollout =
        audit::record_episode(env, toml::Table::new(), 5, 12, &mut auditor).expect("record");
    let inputs = auditor.acted_inputs(&rollout);
    let states = audit::recorded_states(&rollout);
    let window = 16; // longer than the episode: every step replays from the start
    let sal = wormnet_agent::inspect::saliency::saliency(&policy, &inputs, &states, window)
        .expect("saliency")
        .expect("an LTC without mixed memory");
    let t = 8;
    let o = spec.obs_dim();
    let replay = |x: &[Vec<f32>]| -> f32 {
        let flat: Vec<f32> = x[..=t].iter().flatten().copied().collect();
        let x = Tensor::from_slice(&flat).reshape([1, t as i64 + 1, o as i64]);
        let ts = Tensor::full([1, t as i64 + 1], 1.0, (Kind::Float, Device::Cpu));
        let (y, _) = tch::no_grad(|| policy.actor.forward_sequence(&x, None, Some(&ts)));
        y.double_value(&[0, t as i64, 0]) as f32
    };
    let eps = 1e-2f32;
    let mut checked = 0;
    for i in 0..o {
        let mut up = inputs.clone();
        let mut down = inputs.clone();
        up[t][i] += eps;
        down[t][i] -= eps;
        let fd = (replay(&up) - replay(&down)) / (2.0 * eps);
        let g = sal[t].now[0][i];
        assert!(
            (fd - g).abs() < 2e-3 + 2e-2 * g.abs(),
            "obs {i}: gradient {g}, finite difference {fd}"
        );
        assert!(sal[t].window[0][i] >= g.abs() - 1e-6);
        checked += usize::from(g.abs() > 1e-4);
    }
    assert!(checked > 0, "every gradient was zero");
}

/// Behind a conv encoder the saliency reaches the pixels: it matches finite differences of the
/// steering with respect to single pixels, and the per-pixel map sums its magnitudes.
#[test]
fn pixel_saliency_through_the_encoder_matches_finite_differences() {
    let options: toml::Table = toml::from_str(
        "observation = \"camera\"\nprivileged = false\ncamera_width = 16\ncamera_height = 8",
    )
    .unwrap();
    let registry = wormnet_envs::registry();
    let spec = registry.make("vehicle", &options).unwrap().spec().clone();
    let image = spec.image.expect("a camera observation has an image");
    let config: PolicyConfig = toml::from_str(
        r#"
        timespan = 1.0
        [encoder]
        kind = "conv"
        channels = [4]
        kernels = [3]
        strides = [1]
        features = 8
        [actor]
        cell = "ltc"
        wiring = { kind = "auto_ncp", units = 10, output_size = 1, seed = 5 }
        "#,
    )
    .expect("policy config");
    tch::manual_seed(13);
    let policy = Rc::new(Policy::new(&spec, &config, Device::Cpu).expect("policy"));
    let mut auditor = Auditor::new(policy.clone(), true);
    let env = registry.make("vehicle", &options).unwrap();
    let rollout = audit::record_episode(env, options.clone(), 3, 6, &mut auditor).expect("record");
    let inputs = auditor.acted_inputs(&rollout);
    let states = audit::recorded_states(&rollout);
    let sal = wormnet_agent::inspect::saliency::saliency(&policy, &inputs, &states, 16)
        .expect("saliency")
        .expect("an LTC");
    let t = 4;
    let o = spec.obs_dim();
    let replay = |x: &[Vec<f32>]| -> f64 {
        let flat: Vec<f32> = x[..=t].iter().flatten().copied().collect();
        let x = Tensor::from_slice(&flat).reshape([1, t as i64 + 1, o as i64]);
        let y = tch::no_grad(|| policy.actor_sequence(&x).0);
        y.double_value(&[0, t as i64, 0])
    };
    // The pixels with the largest gradients, where finite differences are well above noise.
    let mut order: Vec<usize> = (0..image.len()).collect();
    order.sort_by(|&a, &b| sal[t].now[0][b].abs().total_cmp(&sal[t].now[0][a].abs()));
    let eps = 2e-2f32;
    for &i in &order[..6] {
        let (mut up, mut down) = (inputs.clone(), inputs.clone());
        up[t][i] += eps;
        down[t][i] -= eps;
        let fd = (replay(&up) - replay(&down)) / (2.0 * f64::from(eps));
        let g = f64::from(sal[t].now[0][i]);
        assert!(g.abs() > 1e-5, "pixel {i}: no gradient");
        assert!(
            (fd - g).abs() < 1e-4 + 5e-2 * g.abs(),
            "pixel {i}: gradient {g}, finite difference {fd}"
        );
    }
    let maps = wormnet_agent::inspect::saliency::pixel_maps(&sal, image);
    assert_eq!(maps.len(), sal.len());
    assert_eq!(maps[t].len(), image.height * image.width);
    let k = order[0];
    assert!((maps[t][k] - sal[t].now[0][k].abs()).abs() < 1e-7);
}
