//! `wormnet search`: adaptive random search over the circuit's parameters (the worm-level-
//! control papers' optimiser) into a new run directory that `eval`, `record`, `ablate` and
//! `report` read like a PPO run.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use wormnet_agent::config::{Override, TrainConfig};
use wormnet_agent::eval::EvalSummary;
use wormnet_agent::search::{search, StopReason, LOG};
use wormnet_sim::Registry;

use super::train::{default_run_dir, install_ctrl_c};

/// Arguments of `wormnet search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Experiment config; its `[search]` table says how to perturb, score and stop.
    pub config: PathBuf,
    /// Overrides run.seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory (default: runs/<run.name or config name-seed-time>-search).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Sets a config value by dotted key, checked like the file (repeatable), e.g.
    /// `--set search.episodes=32`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
    /// Cores the search uses (overrides run.threads; default: all this process may use).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Wall-clock budget in minutes (overrides search.minutes).
    #[arg(long, value_name = "M")]
    pub minutes: Option<f64>,
}

/// Runs `wormnet search`.
pub fn run(args: SearchArgs, registry: &Registry) -> Result<()> {
    let mut config = TrainConfig::load_with(&args.config, &args.overrides)?;
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(threads) = args.threads {
        config.run.threads = Some(threads);
    }
    if let Some(minutes) = args.minutes {
        config.search.minutes = Some(minutes);
    }
    config.validate(&args.config)?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        let dir = default_run_dir(&args.config, &config);
        dir.with_file_name(format!(
            "{}-search",
            dir.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ))
    });
    install_ctrl_c("stopping after this try and saving the incumbent…")?;
    let cfg = &config.search;
    eprintln!(
        "wormnet search: env {}, score = mean of the worst {} of {} episodes, {} scalars per \
         try at first (step {}), widening after {} rejections; at most {} tries{}; run dir {}",
        config.env.name,
        cfg.worst,
        cfg.episodes,
        cfg.perturb,
        cfg.step,
        cfg.patience,
        cfg.iterations,
        cfg.minutes
            .map_or(String::new(), |m| format!(" or {m} minutes")),
        run_dir.display()
    );
    let stop = search(config, &run_dir, registry, |p| {
        let success = |e: &EvalSummary| {
            e.success_rate
                .map_or(String::new(), |s| format!(" (success {:.0}%)", 100.0 * s))
        };
        let confirmed = p.confirmation.as_ref().map_or(String::new(), |c| {
            format!(
                "; {} fresh episodes: {:.1}{}",
                c.episodes,
                c.mean_return,
                success(c)
            )
        });
        eprintln!(
            "try {}: score {:.1}, width {}, {} accepted, {} env steps, eval return {:.1}{}{}  \
             [{:.0} s]",
            p.iteration,
            p.score,
            p.width,
            p.accepted,
            p.env_steps,
            p.eval.mean_return,
            success(&p.eval),
            confirmed,
            p.wall_seconds
        );
    })
    .with_context(|| format!("config {}", args.config.display()))?;
    let dir = run_dir.display();
    match stop {
        StopReason::Interrupted => {
            eprintln!("interrupted: the incumbent so far is in {dir}/latest.json")
        }
        done => eprintln!(
            "done ({}): {dir} ({LOG} per try); `wormnet eval {dir}` judges its best",
            done.word()
        ),
    }
    Ok(())
}
