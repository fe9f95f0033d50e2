//! `wormnet imitate`: behavioural cloning of the env's expert into a new run directory, the
//! start that `wormnet train --init-from` fine-tunes with PPO.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use wormnet_agent::config::{Override, TrainConfig};
use wormnet_agent::imitation::{imitate, Completion, LOG};
use wormnet_sim::Registry;

use super::train::{default_run_dir, install_ctrl_c};

/// Arguments of `wormnet imitate`.
#[derive(Args, Debug)]
pub struct ImitateArgs {
    /// Experiment config; its `[imitation]` table says how to gather and clone demonstrations.
    pub config: PathBuf,
    /// cpu, cuda or cuda:N (overrides run.device).
    #[arg(long)]
    pub device: Option<String>,
    /// Overrides run.seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory (default: runs/<run.name or config name-seed-time>-imitate).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Sets a config value by dotted key, checked like the file (repeatable), e.g.
    /// `--set imitation.rounds=2 --set policy.actor.cell=lstm`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
    /// Cores the run uses (overrides run.threads; default: all this process may use).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Runs `wormnet imitate`.
pub fn run(args: ImitateArgs, registry: &Registry) -> Result<()> {
    let mut config = TrainConfig::load_with(&args.config, &args.overrides)?;
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(device) = &args.device {
        config.run.device = device.clone();
    }
    if let Some(threads) = args.threads {
        config.run.threads = Some(threads);
    }
    config.validate(&args.config)?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        let dir = default_run_dir(&args.config, &config);
        dir.with_file_name(format!(
            "{}-imitate",
            dir.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ))
    });
    install_ctrl_c("stopping after this epoch and saving the policy cloned so far…")?;
    let cfg = &config.imitation;
    eprintln!(
        "wormnet imitate: env {}, {} rounds of {} episodes (the expert drives the first, the \
         policy the rest; action noise {}), run dir {}",
        config.env.name,
        cfg.rounds,
        cfg.episodes,
        cfg.action_noise,
        run_dir.display()
    );
    let outcome = imitate(config, &run_dir, registry, |r| {
        eprintln!(
            "round {}: {} samples, {} driven episodes failed, loss {:.4}, eval return {:.1}{}  \
             [{:.0} s]",
            r.round,
            r.samples,
            r.failed_episodes,
            r.loss,
            r.eval.mean_return,
            r.eval
                .success_rate
                .map_or(String::new(), |s| format!(" (success {:.0}%)", 100.0 * s)),
            r.wall_seconds
        );
    })
    .with_context(|| format!("config {}", args.config.display()))?;
    let dir = run_dir.display();
    match outcome {
        Completion::Interrupted => {
            eprintln!("interrupted: the policy so far is in {dir}/latest.json")
        }
        Completion::Finished => eprintln!(
            "done: {dir} ({LOG} per round); fine-tune with `wormnet train {} --init-from {dir}`",
            args.config.display()
        ),
    }
    Ok(())
}
