//! Steps one env directly (no VecEnv, no threads) with fixed pseudo-random actions, for
//! load-independent cost measurements such as `perf stat -e instructions`:
//!   scripts/cargo run --release -p wormnet-envs --example step_loop -- worm 20000 [key=value ...]

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("worm");
    let steps: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let options: toml::Table = toml::from_str(&args.get(2..).unwrap_or_default().join("\n"))?;
    let mut env = wormnet_envs::registry().make(name, &options)?;
    let spec = env.spec().clone();
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.action_dim()];
    let mut state = 0x2545_f491_u32;
    let limit = spec.max_episode_steps.unwrap_or(u32::MAX);
    let (mut t, mut episodes) = (0u32, 0u32);
    env.reset(Some(0), &mut obs);
    let start = Instant::now();
    for _ in 0..steps {
        for a in action.iter_mut() {
            // xorshift: cheap, deterministic actions in [-1, 1].
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *a = (state as f32 / u32::MAX as f32) * 2.0 - 1.0;
        }
        t += 1;
        if env.step(&action, &mut obs).done() || t >= limit {
            env.reset(None, &mut obs);
            t = 0;
            episodes += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name}: {:.1} us/step, {:.0} steps/s ({steps} steps, {episodes} resets, dt = {} s)",
        1e6 * seconds / steps as f64,
        steps as f64 / seconds,
        spec.dt
    );
    Ok(())
}
