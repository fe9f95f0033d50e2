//! The worm's own circuits train through the ordinary config path: a wiring cut from the
//! shipped connectome table (the tap-withdrawal neurons, chemical synapses and gap junctions
//! as the table says) builds, trains with PPO on cartpole — its junctions' conductances
//! learning too — and its checkpoint loads back with the neurons' names and roles, the table
//! gone (the run keeps the circuit in its config); the shipped
//! TW cartpole config (sensor and motor pairs, a continuous force) trains and evaluates.

use std::path::Path;

use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::config::TrainConfig;
use wormnet_agent::train::{Outcome, Trainer};

/// The connectome-cut config reading the table at `table`.
fn connectome_config(table: &Path) -> TrainConfig {
    let table = table.display();
    let text = format!(
        r#"
[env]
name = "cartpole"
num_envs = 4
workers = 1
[policy]
timespan = 1.0
[policy.actor]
cell = "ltc"
wiring = {{ kind = "connectome", path = "{table}", keep = ["PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA"], sensory = ["PLM", "AVM", "ALM", "PVD"], command = ["AVD", "PVC", "DVA"], motor = ["AVA", "AVB"] }}
[ppo]
steps_per_rollout = 16
epochs = 2
minibatches = 2
learning_rate = 1e-2
[run]
seed = 3
total_steps = 640
threads = 1
checkpoint_every = 2
eval_every = 0
eval_episodes = 2
"#
    );
    TrainConfig::parse(&text, Path::new("connectome.toml")).expect("config parses")
}

#[test]
fn a_connectome_cut_trains_through_the_config_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A copy of the shipped table, removed once training began: the run keeps its circuit.
    let data = tempfile::tempdir().expect("tempdir");
    let table = data.path().join("c302_tw_excerpt.tsv");
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/wirings/c302_tw_excerpt.tsv"
    );
    std::fs::copy(shipped, &table).expect("copy the table");
    let registry = wormnet_envs::registry();
    let mut trainer =
        Trainer::create(connectome_config(&table), dir.path(), &registry).expect("create");
    std::fs::remove_file(&table).expect("remove the table");
    let gap_w = |t: &Trainer| {
        t.policy
            .parameters()
            .into_iter()
            .find(|(name, _)| name.ends_with("gap_w"))
            .map(|(_, t)| t.copy())
            .expect("the actor has gap-junction conductances")
    };
    let before = gap_w(&trainer);
    assert_eq!(before.size(), [6], "six junctions among the kept neurons");
    assert_eq!(
        trainer.policy.neuron_labels()[..3],
        ["AVA", "AVB", "PVD"],
        "named neurons, motor first"
    );
    assert_eq!(
        trainer.run(Some(2), |_, _| {}).expect("train"),
        Outcome::UpdateLimit
    );
    let after = gap_w(&trainer);
    assert!(
        after.isfinite().all().int64_value(&[]) == 1,
        "conductances went non-finite: {after:?}"
    );
    assert!(!after.equal(&before), "the junctions did not learn");
    drop(trainer);
    let saved = std::fs::read_to_string(dir.path().join("config.toml")).expect("config.toml");
    assert!(
        saved.contains("kind = \"circuit\"") && saved.contains("c302_tw_excerpt.tsv, as read"),
        "the run's config holds the circuit itself:\n{saved}"
    );
    let loaded = load_checkpoint(&dir.path().join("latest.json"), tch::Device::Cpu)
        .expect("checkpoint loads without the table");
    assert_eq!(loaded.policy.neuron_labels()[..2], ["AVA", "AVB"]);
    // `wormnet ablate` knocks the neurons out by name, grouped by their roles.
    let knockouts = wormnet_agent::inspect::ablation::knockouts(&loaded.policy).expect("ltc");
    let of = |name: &str| knockouts.iter().find(|k| k.name == name).expect(name);
    assert_eq!(of("AVA").layer, "motor");
    assert_eq!(of("PLM").layer, "sensory");
    assert_eq!(of("DVA").layer, "command");
    assert_eq!(of("sensory").neurons.len(), 4);
}

/// The live panel of a policy on the tap-withdrawal circuit: its neurons by name, the two gap
/// junctions drawn as edges of their own (polarity 0) whose activity is the junction's current.
#[test]
fn the_panel_draws_the_named_circuit_and_its_gap_junctions() {
    use wormnet_agent::inspect::panel::NeuronPanel;
    use wormnet_agent::policy::{Policy, PolicyConfig};
    let spec = wormnet_envs::registry()
        .make("cartpole", &toml::Table::new())
        .expect("cartpole")
        .spec()
        .clone();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/wirings/tw.toml");
    let config: PolicyConfig = toml::from_str(&format!(
        "[actor]\ncell = \"ltc\"\nwiring = {{ kind = \"file\", path = \"{path}\" }}\n"
    ))
    .expect("policy config");
    let policy = Policy::new(&spec, &config, tch::Device::Cpu).expect("policy");
    let panel = NeuronPanel::for_policy(&policy, &spec);
    let layout = panel.layout();
    let labels: Vec<&str> = layout.nodes.iter().map(|n| n.label.as_str()).collect();
    assert!(
        labels.contains(&"FWD") && labels.contains(&"PLM"),
        "{labels:?}"
    );
    let gaps: Vec<usize> = (0..layout.edges.len())
        .filter(|&k| layout.edges[k].polarity == 0)
        .collect();
    assert_eq!(gaps.len(), 2);
    let n = policy.actor.state_size();
    let s = spec.obs_dim();
    // Equal potentials: no junction current; different ones: some.
    let level = panel.state(&vec![0.0; s], &vec![0.5; n]);
    assert!(gaps.iter().all(|&k| level.edge_activity[k] == 0.0));
    let ramp: Vec<f32> = (0..n).map(|i| i as f32 * 0.2 - 1.0).collect();
    let tilted = panel.state(&vec![0.0; s], &ramp);
    assert!(gaps.iter().all(|&k| tilted.edge_activity[k] > 0.0));
}

/// The shipped `tw_cartpole.toml`, shortened: the TW circuit with its sensor pairs (pole angle →
/// PLM/AVM, cart position → ALM/PVD) and the force FWD − REV, on the continuous cartpole.
#[test]
fn the_tw_cartpole_config_trains_with_its_sensor_and_motor_pairs() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/configs/tw_cartpole.toml"))
        .expect("shipped config")
        .replace("\"configs/wirings/", &format!("\"{root}/configs/wirings/"));
    let overrides = [
        "run.total_steps=256",
        "env.num_envs=4",
        "ppo.steps_per_rollout=16",
    ]
    .map(|o| o.parse().expect("override"));
    let config = TrainConfig::parse_with(&text, Path::new("tw_cartpole.toml"), &overrides)
        .expect("config parses");
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = wormnet_envs::registry();
    let mut trainer = Trainer::create(config, dir.path(), &registry).expect("create");
    let spec = registry
        .make("cartpole", &trainer.config.env.options)
        .expect("env")
        .spec()
        .clone();
    assert_eq!(trainer.policy.action_dim(), 1, "one force");
    assert_eq!(
        trainer.policy.sensory_names(&spec),
        [
            "pole_angle+",
            "pole_angle-",
            "cart_position+",
            "cart_position-"
        ]
    );
    let fed = trainer.policy.sensory_input(&[0.5, -0.06]);
    let want = [0.0, 0.5, 0.5, 0.0];
    assert!(
        fed.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{fed:?}"
    );
    trainer.run(Some(2), |_, _| {}).expect("train");
    let summary = trainer.evaluate_now().expect("eval");
    assert!(summary.success_rate.is_some(), "survival is success");
    let knockouts = wormnet_agent::inspect::ablation::knockouts(&trainer.policy).expect("ltc");
    assert!(knockouts.iter().any(|k| k.name == "PLM"));
}
