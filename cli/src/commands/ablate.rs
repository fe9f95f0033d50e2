//! `wormnet ablate`: knocks each neuron (and each layer) out of a trained LTC policy and shows
//! what it cost — return, success rate, how far the actions moved — as a table sorted by
//! effect, a bar chart and JSON lines.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::eval::EvalOptions;
use wormnet_agent::inspect::ablation::{ablate, ablation_chart, AblationRow};
use wormnet_agent::inspect::audit::{acted_observations, record_episode, Auditor};
use wormnet_sim::{EnvFactory, Registry};

/// Arguments of `wormnet ablate`.
#[derive(Args, Debug)]
pub struct AblateArgs {
    /// A run directory (its best checkpoint, else latest) or a checkpoint's .json sidecar.
    pub target: PathBuf,
    /// Evaluation episodes per knockout (and for the intact policy).
    #[arg(long, default_value_t = 20)]
    pub episodes: usize,
    /// Seed of the evaluation envs (the same for every knockout).
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// Where `ablation.jsonl` and `ablation.png` go (default: `ablation/` beside the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON lines instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wormnet ablate`.
pub fn run(args: AblateArgs, registry: &Registry) -> Result<()> {
    if args.episodes == 0 || args.episodes > 10_000 {
        bail!("--episodes must be in 1..=10000, got {}", args.episodes);
    }
    tch::set_num_threads(1);
    let loaded = load_checkpoint(&args.target, tch::Device::Cpu)?;
    let config = &loaded.sidecar.config;
    let spec = &loaded.sidecar.env_spec;
    let factory = registry
        .factory(&config.env.name, config.eval_env_options())
        .with_context(|| format!("{}: its [env] section", loaded.path.display()))?;
    // The observations the intact policy acts on, to measure how far knockouts move actions.
    let max_steps = spec.max_episode_steps.map_or(1000, |m| m as usize);
    let auditor = Auditor::new(std::rc::Rc::new(loaded.policy), true);
    let probes = probe_observations(auditor, &factory, args.seed, args.episodes, max_steps)?;
    let options = EvalOptions {
        episodes: args.episodes,
        deterministic: true,
        obs_noise: 0.0,
        seed: args.seed,
        num_envs: config.env.num_envs,
    };
    let path = loaded.path.clone();
    let load = || Ok(load_checkpoint(&path, tch::Device::Cpu)?.policy);
    let quiet = args.json;
    let rows = ablate(&load, &factory, &options, &probes, |k| {
        if !quiet {
            eprintln!("knocking out {} ({} neuron(s))", k.name, k.neurons.len());
        }
    })?;
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => path.parent().unwrap_or(Path::new(".")).join("ablation"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lines: Vec<String> = rows
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()?;
    if args.json {
        for line in &lines {
            println!("{line}");
        }
    } else {
        print_table(&rows);
    }
    let jsonl = dir.join("ablation.jsonl");
    std::fs::write(&jsonl, lines.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", jsonl.display()))?;
    ablation_chart(&rows, &spec.name, &dir.join("ablation.png"))?;
    if !args.json {
        println!("written to {} and ablation.png", jsonl.display());
    }
    Ok(())
}

/// The observations the intact policy acts on over up to 3 episodes from `seed`, to measure
/// how far knockouts move actions.
fn probe_observations(
    mut auditor: Auditor,
    factory: &EnvFactory,
    seed: u64,
    episodes: usize,
    max_steps: usize,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut probes = Vec::new();
    for seed in seed..seed + episodes.min(3) as u64 {
        let env = factory
            .build()
            .with_context(|| format!("cannot build env `{}`", factory.name()))?;
        let rollout = record_episode(
            env,
            factory.options().clone(),
            seed,
            max_steps,
            &mut auditor,
        )?;
        probes.push(
            acted_observations(&rollout)
                .into_iter()
                .map(<[f32]>::to_vec)
                .collect(),
        );
    }
    Ok(probes)
}

/// Prints the knockouts as a table: return, its drop, success rate and action change.
fn print_table(rows: &[AblationRow]) {
    println!(
        "{:<22} {:<8} {:>10} {:>10} {:>8} {:>13}",
        "knocked out", "layer", "return", "drop", "success", "action change"
    );
    for r in rows {
        println!(
            "{:<22} {:<8} {:>10.2} {:>10.2} {:>8} {:>13.4}",
            r.neuron,
            r.layer,
            r.return_mean,
            r.return_drop,
            r.success_rate
                .map_or("-".to_string(), |s| format!("{:.0}%", 100.0 * s)),
            r.action_change
        );
    }
}
