//! Env throughput with random actions, the same loop as `wormnet bench env`, without building
//! the libtorch-linked CLI:
//!   scripts/cargo run --release -p wormnet-envs --example bench_envs -- worm 1 0 5
//! (env name, envs, workers — 0 steps them on this thread —, seconds; options as `key=value`
//! TOML after them).

use std::time::Duration;

use wormnet_sim::bench::{bench_env, BenchConfig};
use wormnet_sim::VecEnvConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("worm");
    let envs: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let workers: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let seconds: f64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let options: toml::Table = toml::from_str(&args.get(4..).unwrap_or_default().join("\n"))?;
    let factory = wormnet_envs::registry().factory(name, options)?;
    let report = bench_env(
        factory,
        &BenchConfig {
            vec_env: VecEnvConfig::new(envs, workers),
            duration: Duration::from_secs_f64(seconds),
            seed: 0,
        },
    )?;
    println!(
        "{name}: {:.0} env steps/s ({} envs, {} workers, dt = {} s, {} episodes in {:.1} s)",
        report.steps_per_sec,
        report.envs,
        report.workers,
        report.dt,
        report.episodes,
        report.seconds
    );
    Ok(())
}
