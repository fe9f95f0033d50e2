//! `wormnet watch`: the policy acting live in a window, its neurons lighting up beside the
//! scene; `--screenshot` saves what the window shows and exits.

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use wormnet_agent::inspect::panel::NeuronPanel;
use wormnet_agent::inspect::watch::LivePolicy;
use wormnet_sim::render::{run_window, RenderConfig, WindowOptions};
use wormnet_sim::Registry;

use super::record::load;

/// Arguments of `wormnet watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// A run directory (its best checkpoint, else latest), a checkpoint's .json sidecar, or an
    /// experiment config (.toml: the untrained policy a run of it starts from).
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
    /// Send the env zero actions ("do nothing"); the policy still runs, so its neurons show.
    #[arg(long)]
    pub zero_action: bool,
    /// Env option as TOML `key=value` laid over the run's evaluation options, repeatable
    /// (e.g. `--option follow=15` for a vehicle view that follows the car).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

/// Runs `wormnet watch`.
pub fn run(args: WatchArgs, registry: &Registry) -> Result<()> {
    if !(0.0..=3600.0).contains(&args.screenshot_after) {
        bail!(
            "--screenshot-after must be between 0 and 3600 seconds, got {}",
            args.screenshot_after
        );
    }
    for (flag, v) in [("--width", args.width), ("--height", args.height)] {
        if !(16..=8192).contains(&v) {
            bail!("{flag} must be between 16 and 8192 pixels, got {v}");
        }
    }
    tch::set_num_threads(1);
    let loaded = load(&args.target, registry)?;
    let (factory, _) = crate::options::eval_envs(registry, &loaded, &args.options)?;
    let spec = &loaded.sidecar.env_spec;
    let policy = Rc::new(loaded.policy);
    let panel = Rc::new(NeuronPanel::for_policy(&policy, spec));
    let render = RenderConfig {
        width: args.width,
        height: args.height,
        panel: Some(panel.layout().clone()),
    };
    let source = LivePolicy::new(policy, !args.stochastic, factory, panel, args.env_seed);
    let options = WindowOptions {
        title: format!("wormnet watch {}", loaded.path.display()),
        screenshot: args.screenshot.clone(),
        screenshot_after: args.screenshot_after,
    };
    run_window(render, Box::new(source), options).map_err(|e| anyhow!("{e}"))
}
