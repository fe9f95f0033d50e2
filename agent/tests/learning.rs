//! A learning regression fails CI: the shipped cartpole config, seed 1, on a short budget,
//! must evaluate far above a random policy (about 22).

use std::path::Path;

use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::config::TrainConfig;
use wormnet_agent::train::{Outcome, Trainer};

#[test]
fn the_cartpole_config_learns_on_a_short_budget() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cartpole.toml");
    let mut config = TrainConfig::load(&path).expect("configs/cartpole.toml");
    config.run.seed = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut trainer =
        Trainer::create(config, dir.path(), &wormnet_envs::registry()).expect("trainer");
    // The first 180 of its 586 updates (46k steps, the learning-rate schedule unchanged),
    // evaluated at updates 20, 40, …, 180; the full run evaluates 181 at update 180.
    let outcome = trainer.run(Some(180), |_, _| {}).expect("training");
    assert_eq!(outcome, Outcome::UpdateLimit);
    drop(trainer);
    let best = load_checkpoint(&dir.path().join("best.json"), tch::Device::Cpu).expect("best");
    let eval = best.sidecar.eval.expect("best has its evaluation");
    assert!(
        eval.mean_return >= 100.0,
        "cartpole no longer learns: best evaluation {:.1} after 46k steps",
        eval.mean_return
    );
}
