//! The worm's own circuits train through the ordinary config path: a wiring cut from the
//! shipped connectome table (the tap-withdrawal neurons, chemical synapses and gap junctions
//! as the table says) builds, trains with PPO on cartpole — its junctions' conductances
//! learning too — and its checkpoint loads back with the neurons' names and roles.

use std::path::Path;

use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::config::TrainConfig;
use wormnet_agent::train::{Outcome, Trainer};

fn connectome_config() -> TrainConfig {
    let table = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/wirings/c302_tw_excerpt.tsv"
    );
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
    let registry = wormnet_envs::registry();
    let mut trainer = Trainer::create(connectome_config(), dir.path(), &registry).expect("create");
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
    let loaded = load_checkpoint(&dir.path().join("latest.json"), tch::Device::Cpu)
        .expect("checkpoint loads");
    assert_eq!(loaded.policy.neuron_labels()[..2], ["AVA", "AVB"]);
    // `wormnet ablate` knocks the neurons out by name, grouped by their roles.
    let knockouts = wormnet_agent::inspect::ablation::knockouts(&loaded.policy).expect("ltc");
    let of = |name: &str| knockouts.iter().find(|k| k.name == name).expect(name);
    assert_eq!(of("AVA").layer, "motor");
    assert_eq!(of("PLM").layer, "sensory");
    assert_eq!(of("DVA").layer, "command");
    assert_eq!(of("sensory").neurons.len(), 4);
}
