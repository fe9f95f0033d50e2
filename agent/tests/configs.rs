//! Every shipped experiment config parses, builds its env, and builds its policy for that
//! env — so a config that drifts from the code fails here, not in a user's first run.

use std::path::Path;

use tch::Device;
use wormnet_agent::config::TrainConfig;
use wormnet_agent::policy::Policy;

#[test]
fn every_shipped_config_builds_its_env_and_policy() {
    // Shipped configs name wiring files from the repository root, where they are run.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root).unwrap();
    let dir = root.join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let config = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let registry = wormnet_envs::registry();
        for options in [config.env.options.clone(), config.eval_env_options()] {
            let env = registry
                .make(&config.env.name, &options)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let policy = Policy::new(env.spec(), &config.policy, Device::Cpu)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!policy.describe().is_empty());
        }
        seen += 1;
    }
    assert!(seen >= 5, "{seen} configs in {}", dir.display());
}
