//! `wormnet eval`: judges a run's best (or latest) checkpoint over N episodes, optionally under
//! observation noise or with env options changed (one held-out track, say). The result is
//! printed, then recorded without overwriting any earlier one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use wormnet_agent::checkpoint::{append_line, load_checkpoint, save_json};
use wormnet_agent::config::limits::MAX_EVAL_EPISODES;
use wormnet_agent::eval::{evaluate, EvalOptions};
use wormnet_agent::seeds::{derive_seed, ACTION_STREAM};
use wormnet_ncp::parse_device;
use wormnet_sim::Registry;

/// Arguments of `wormnet eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run directory (its best checkpoint, else latest) or a checkpoint's .json sidecar.
    pub target: PathBuf,
    /// Episodes to run.
    #[arg(long, default_value_t = 100)]
    pub episodes: usize,
    /// Standard deviation of Gaussian noise added to every raw observation.
    #[arg(long, default_value_t = 0.0)]
    pub obs_noise: f32,
    /// Act with the distribution's mode instead of sampling.
    #[arg(long)]
    pub deterministic: bool,
    /// Seed of the evaluation envs.
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Env option as TOML `key=value` laid over the run's evaluation options, repeatable
    /// (e.g. `--option track_seed=1000003` to drive one held-out vehicle track).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the result to this new JSON file (an existing one is refused; default:
    /// append it as one line to `evals.jsonl` beside the checkpoint, when that directory is
    /// writable).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Where evaluations of a run accumulate, one JSON object per line, none ever overwritten.
pub const EVAL_LOG: &str = "evals.jsonl";

/// Runs `wormnet eval`.
pub fn run(args: EvalArgs, registry: &Registry) -> Result<()> {
    check_args(&args)?;
    let device = parse_device(&args.device)?;
    tch::set_num_threads(1);
    let loaded = load_checkpoint(&args.target, device)?;
    let config = &loaded.sidecar.config;
    let (factory, options) = crate::options::eval_envs(registry, &loaded, &args.options)?;
    // Sampled actions come from libtorch's generator: seed it, so `--seed` fixes the run.
    tch::manual_seed(derive_seed(args.seed, ACTION_STREAM) as i64);
    let summary = evaluate(
        &loaded.policy,
        factory,
        &EvalOptions {
            episodes: args.episodes,
            deterministic: args.deterministic,
            obs_noise: args.obs_noise,
            seed: args.seed,
            num_envs: config.env.num_envs,
        },
    )?;
    let record = serde_json::json!({
        "mean_return": summary.mean_return,
        "std_return": summary.std_return,
        "success_rate": summary.success_rate,
        "episodes": summary.episodes,
        "mean_length": summary.mean_length,
        "checkpoint": loaded.path.display().to_string(),
        "global_step": loaded.sidecar.global_step,
        "deterministic": args.deterministic,
        "obs_noise": args.obs_noise,
        "seed": args.seed,
        "env_options": options,
    });
    // The result is printed first: a read-only or full run directory loses nothing.
    if args.json {
        println!("{record}");
    } else {
        println!(
            "{}: {} episodes, return {:.2} ± {:.2}{}, mean length {:.1}",
            loaded.path.display(),
            summary.episodes,
            summary.mean_return,
            summary.std_return,
            summary
                .success_rate
                .map_or(String::new(), |r| format!(", success {:.1}%", 100.0 * r)),
            summary.mean_length,
        );
    }
    record_result(args.out.as_deref(), &loaded.path, &record)
}

/// Refuses bad arguments before the checkpoint is loaded: the episode count, an existing
/// `--out`, the noise.
fn check_args(args: &EvalArgs) -> Result<()> {
    if !(1..=MAX_EVAL_EPISODES).contains(&args.episodes) {
        bail!(
            "--episodes must be between 1 and {MAX_EVAL_EPISODES}, got {}",
            args.episodes
        );
    }
    if let Some(out) = args.out.as_ref().filter(|o| o.exists()) {
        bail!(
            "--out {} already exists; choose a new file (evaluations are never overwritten)",
            out.display()
        );
    }
    if !(args.obs_noise >= 0.0 && args.obs_noise.is_finite()) {
        bail!(
            "--obs-noise must be a finite value ≥ 0, got {}",
            args.obs_noise
        );
    }
    Ok(())
}

/// Writes the result to `--out`, else appends it to the run's `evals.jsonl` — only warning
/// when that fails, the result having been printed.
fn record_result(out: Option<&Path>, checkpoint: &Path, record: &serde_json::Value) -> Result<()> {
    match out {
        Some(out) => save_json(out, record)?,
        None => {
            let dir = checkpoint.parent().unwrap_or(Path::new("."));
            let log = dir.join(EVAL_LOG);
            if let Err(e) = append_line(&log, &record.to_string()) {
                eprintln!(
                    "wormnet eval: the result above was not recorded in {} ({e}); pass \
                     --out FILE to keep it elsewhere",
                    log.display()
                );
            }
        }
    }
    Ok(())
}
