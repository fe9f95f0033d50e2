//! What one step of a Bevy + Rapier env costs with nothing in its world, beside the worm and
//! the vehicle, all stepped on this thread with the loop of `wormnet bench env --workers 0`:
//!   scripts/cargo run --release -p wormnet-envs --example bevy_step_cost -- 5
//! (seconds per env). The empty env's step is the schedule, Rapier's systems and an empty
//! physics step: the share of a real env's step that K envs side by side in one world could
//! share, so the most that layout could save per env step. (`env.envs_per_app` gives each env
//! a world of its own, which shares none of it.)

use std::time::Duration;

use wormnet_sim::bench::{bench_env, BenchConfig};
use wormnet_sim::bevy::app::App;
use wormnet_sim::bevy_env::{BevyEnv, BevyEnvPlugin};
use wormnet_sim::{Env, EnvFactory, EnvSpec, Space, VecEnvConfig};

/// An env with no bodies and no systems of its own: one observation, always 0.
struct Empty;

impl BevyEnvPlugin for Empty {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: "empty".to_string(),
            observation_space: Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            action_space: Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            // The worm's step; episodes as long as the worm's (1000 steps).
            dt: 0.04,
            max_episode_steps: Some(1000),
            observation_names: vec!["zero".to_string()],
            action_names: vec!["ignored".to_string()],
            clip_actions: false,
            survival_is_success: false,
            image: None,
        }
    }

    fn respawns_in_place(&self) -> bool {
        true
    }

    fn build(&self, _app: &mut App) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let config = BenchConfig {
        vec_env: VecEnvConfig::new(1, 0),
        duration: Duration::from_secs_f64(seconds),
        seed: 0,
    };
    let empty = EnvFactory::new("empty", toml::Table::new(), |_| {
        Ok(Box::new(BevyEnv::new(Empty)) as Box<dyn Env>)
    });
    let registry = wormnet_envs::registry();
    let mut step_us = Vec::new();
    for factory in [
        empty,
        registry.factory("worm", toml::Table::new())?,
        registry.factory("vehicle", toml::Table::new())?,
    ] {
        let report = bench_env(factory, &config)?;
        let us = 1e6 / report.steps_per_sec;
        println!(
            "{:8} {us:6.2} µs per env step ({:.0} env steps/s on one core)",
            report.env, report.steps_per_sec
        );
        step_us.push(us);
    }
    for (name, us) in [("worm", step_us[1]), ("vehicle", step_us[2])] {
        println!(
            "{name}: at most {:.0} % of a step is the empty App's ({:.2} of {us:.2} µs)",
            100.0 * step_us[0] / us,
            step_us[0]
        );
    }
    Ok(())
}
