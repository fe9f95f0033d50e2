//! `wormnet plot`, `wormnet record` and `wormnet watch`: the ways a person looks at a run and
//! at the policy it trained (the last two need the `render` feature).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// Arguments of `wormnet plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A run directory (holding metrics.csv).
    pub run_dir: PathBuf,
    /// Output PNG (default: <run dir>/curves.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `wormnet plot`.
pub fn plot(args: PlotArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("curves.png"));
    wormnet_agent::plot::learning_curves(&args.run_dir, &out)?;
    println!("learning curves written to {}", out.display());
    Ok(())
}

#[cfg(feature = "render")]
pub use render::{record, watch, RecordArgs, WatchArgs};

#[cfg(feature = "render")]
mod render {
    use std::path::{Path, PathBuf};
    use std::rc::Rc;
    use std::time::Instant;

    use anyhow::{anyhow, bail, Context, Result};
    use clap::Args;
    use wormnet_agent::audit::{Auditor, NeuronPanel};
    use wormnet_agent::record::{self, RecordOptions};
    use wormnet_agent::train::{self, LoadedPolicy};
    use wormnet_agent::watch::LivePolicy;
    use wormnet_agent::wiring_picture::{self, PictureOptions};
    use wormnet_sim::render::{run_window, RenderConfig, WindowOptions};

    /// Arguments of `wormnet record`.
    #[derive(Args, Debug)]
    pub struct RecordArgs {
        /// A run directory (its best checkpoint, else latest), a checkpoint's .json sidecar, or
        /// a recorded rollout file (rendered as recorded, without re-simulating).
        pub target: PathBuf,
        /// Episodes to record.
        #[arg(long, default_value_t = 1)]
        pub episodes: usize,
        /// Output directory (one episode_NNN/ folder per episode).
        #[arg(long)]
        pub out: PathBuf,
        /// Seed of the first episode (the next ones count up).
        #[arg(long, default_value_t = 0)]
        pub env_seed: u64,
        /// Stop an episode after this many steps (default: the env's time limit, else 1000).
        #[arg(long)]
        pub max_steps: Option<usize>,
        /// Picture width in pixels.
        #[arg(long, default_value_t = 640)]
        pub width: u32,
        /// Picture height in pixels.
        #[arg(long, default_value_t = 480)]
        pub height: u32,
        /// Sample actions instead of taking the distribution's mode.
        #[arg(long)]
        pub stochastic: bool,
        /// Skip the animated GIF.
        #[arg(long)]
        pub no_gif: bool,
        /// Skip the MP4 even when ffmpeg is on the PATH.
        #[arg(long)]
        pub no_mp4: bool,
    }

    /// Arguments of `wormnet watch`.
    #[derive(Args, Debug)]
    pub struct WatchArgs {
        /// A run directory (its best checkpoint, else latest) or a checkpoint's .json sidecar.
        pub target: PathBuf,
        /// Seed of the first episode; `r` in the window moves to the next one.
        #[arg(long, default_value_t = 0)]
        pub env_seed: u64,
        /// Window width in pixels.
        #[arg(long, default_value_t = 1280)]
        pub width: u32,
        /// Window height in pixels.
        #[arg(long, default_value_t = 720)]
        pub height: u32,
        /// Sample actions instead of taking the distribution's mode.
        #[arg(long)]
        pub stochastic: bool,
        /// Save a PNG screenshot of the window after --screenshot-after seconds, then exit.
        #[arg(long, value_name = "PNG")]
        pub screenshot: Option<PathBuf>,
        /// Seconds before the screenshot.
        #[arg(long, default_value_t = 3.0)]
        pub screenshot_after: f32,
    }

    /// A rollout file is JSON with `format_version` and `steps`; a checkpoint sidecar is not.
    fn is_rollout_file(path: &Path) -> bool {
        if !path.is_file() {
            return false;
        }
        let Ok(text) = std::fs::read(path) else {
            return false;
        };
        match serde_json::from_slice::<serde_json::Value>(&text) {
            Ok(v) => v.get("steps").is_some() && v.get("format_version").is_some(),
            Err(_) => false,
        }
    }

    fn load(target: &Path) -> Result<LoadedPolicy> {
        train::load_checkpoint(target, tch::Device::Cpu)
            .with_context(|| format!("cannot load a policy from {}", target.display()))
    }

    /// Runs `wormnet record`.
    pub fn record(args: RecordArgs) -> Result<()> {
        if args.episodes == 0 {
            bail!("--episodes must be at least 1");
        }
        let options = RecordOptions {
            width: args.width,
            height: args.height,
            gif: !args.no_gif,
            mp4: !args.no_mp4,
        };
        let started = Instant::now();
        let episodes = if is_rollout_file(&args.target) {
            vec![record::record_rollout_file(
                &args.target,
                &args.out,
                &options,
            )?]
        } else {
            tch::set_num_threads(1);
            let loaded = load(&args.target)?;
            let config = &loaded.sidecar.config;
            let env_options = config.eval_env_options();
            let registry = wormnet_envs::registry();
            let spec = registry
                .make(&config.env.name, &env_options)
                .with_context(|| format!("{}: its [env] section", loaded.path.display()))?
                .spec()
                .clone();
            let max_steps = args
                .max_steps
                .or(spec.max_episode_steps.map(|m| m as usize))
                .unwrap_or(1000);
            let policy = Rc::new(loaded.policy);
            if let Some(wiring) = policy.actor.wiring() {
                std::fs::create_dir_all(&args.out)
                    .with_context(|| format!("cannot create {}", args.out.display()))?;
                let picture = PictureOptions {
                    labels: true,
                    sensory_names: spec.observation_names.clone(),
                    motor_names: spec.action_names.clone(),
                    title: Some(format!("{} policy", spec.name)),
                };
                wiring_picture::write(wiring, &picture, &args.out.join("wiring.svg"))?;
            }
            let mut auditor =
                Auditor::new(policy, loaded.sidecar.obs_norm.as_ref(), !args.stochastic);
            let seeds: Vec<u64> = (0..args.episodes as u64)
                .map(|i| args.env_seed.wrapping_add(i))
                .collect();
            record::record_policy(
                &mut auditor,
                &config.env.name,
                &env_options,
                &seeds,
                max_steps,
                &args.out,
                &options,
            )?
        };
        for e in &episodes {
            println!(
                "{}: {} steps, return {:.2}, {} frames rendered in {:.1}s{}{}",
                e.dir.display(),
                e.steps,
                e.episode_return,
                e.frames.len(),
                e.render_seconds,
                if e.gif.is_some() { ", episode.gif" } else { "" },
                if e.mp4.is_some() { ", episode.mp4" } else { "" },
            );
        }
        println!(
            "recorded {} episode(s) into {} in {:.1}s",
            episodes.len(),
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Runs `wormnet watch`.
    pub fn watch(args: WatchArgs) -> Result<()> {
        tch::set_num_threads(1);
        let loaded = load(&args.target)?;
        let config = &loaded.sidecar.config;
        let registry = wormnet_envs::registry();
        let factory = registry
            .factory(&config.env.name, config.eval_env_options())
            .with_context(|| format!("{}: its [env] section", loaded.path.display()))?;
        let spec = factory
            .build()
            .with_context(|| format!("cannot build env `{}`", config.env.name))?
            .spec()
            .clone();
        let policy = Rc::new(loaded.policy);
        let panel = Rc::new(NeuronPanel::for_policy(&policy, &spec));
        let render = RenderConfig {
            width: args.width,
            height: args.height,
            panel: Some(panel.layout().clone()),
        };
        let source = LivePolicy::new(
            policy,
            loaded.sidecar.obs_norm.as_ref(),
            !args.stochastic,
            factory,
            panel,
            args.env_seed,
        );
        let options = WindowOptions {
            title: format!("wormnet watch {}", loaded.path.display()),
            screenshot: args.screenshot.clone(),
            screenshot_after: args.screenshot_after,
        };
        run_window(render, Box::new(source), options).map_err(|e| anyhow!("{e}"))
    }
}
