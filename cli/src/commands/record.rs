//! `wormnet record`: renders episodes offscreen (PNG frames, GIF, MP4) with the neuron panel,
//! and writes the per-step log of every neuron, the activity plot and the wiring picture.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use wormnet_agent::checkpoint::{load_checkpoint, untrained, LoadedPolicy};
use wormnet_agent::config::TrainConfig;
use wormnet_agent::inspect::audit::Auditor;
use wormnet_agent::inspect::folder::OutFolder;
use wormnet_agent::inspect::record::{self, EpisodeFiles, RecordOptions};
use wormnet_agent::inspect::report::{write_report, ReportMeta};
use wormnet_agent::interrupt::STOP;
use wormnet_ncp::wiring::picture::{self, PictureOptions};
use wormnet_sim::Registry;

/// Arguments of `wormnet record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// A run directory (its best checkpoint, else latest), a checkpoint's .json sidecar, an
    /// experiment config (.toml: the untrained policy a run of it starts from, to look at the
    /// env before training), or a recorded rollout file (rendered as recorded).
    pub target: PathBuf,
    /// Episodes to record.
    #[arg(long, default_value_t = 1)]
    pub episodes: usize,
    /// Output directory (one episode_NNN/ folder per episode): new, empty, or a previous
    /// recording, which is replaced whole; any other folder is refused untouched.
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
    /// Send the env zero actions ("do nothing"); the policy still runs, so its neurons show.
    #[arg(long)]
    pub zero_action: bool,
    /// Env option as TOML `key=value` laid over the run's evaluation options, repeatable
    /// (e.g. `--option follow=15` for a vehicle view that follows the car).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
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

/// The rows of `ablation/ablation.jsonl` beside a checkpoint, when `wormnet ablate` ran there.
fn read_ablation(sidecar: &Path) -> Vec<serde_json::Value> {
    let path = sidecar
        .parent()
        .unwrap_or(Path::new("."))
        .join("ablation/ablation.jsonl");
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Loads a checkpoint onto the CPU, or for an experiment config (`.toml`) the untrained
/// policy its run would start from; names the target on failure.
pub(crate) fn load(target: &Path, registry: &Registry) -> Result<LoadedPolicy> {
    if target.is_file() && target.extension().is_some_and(|e| e == "toml") {
        let config = TrainConfig::load(target)?;
        let spec = registry
            .make(&config.env.name, &config.eval_env_options())
            .with_context(|| format!("config {}: its [env] section", target.display()))?
            .spec()
            .clone();
        return untrained(config, spec, target);
    }
    load_checkpoint(target, tch::Device::Cpu)
        .with_context(|| format!("cannot load a policy from {}", target.display()))
}

/// What the recording was asked for, and the folder it goes into.
struct Plan<'a> {
    args: &'a RecordArgs,
    options: RecordOptions,
    folder: OutFolder,
}

/// Runs `wormnet record`: the `--out` folder is checked first (a previous recording in it is
/// replaced whole, any other non-empty folder refused untouched), and Ctrl-C or SIGTERM stops
/// after the frame in progress, keeping the finished episodes and their report.
pub fn run(args: RecordArgs, registry: &Registry) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let folder = OutFolder::check(&args.out)?;
    if folder.holds(&args.target) {
        bail!(
            "{} lies inside --out {}, which record replaces; choose another --out",
            args.target.display(),
            args.out.display()
        );
    }
    // Before the renderer starts: Bevy's own handler would swallow the first Ctrl-C and
    // SIGTERM; this one makes every frame loop stop.
    super::train::install_ctrl_c(
        "stopping after the frame in progress; the finished episodes are kept (again to exit at once)",
    )?;
    let plan = Plan {
        options: RecordOptions {
            width: args.width,
            height: args.height,
            gif: !args.no_gif,
            mp4: !args.no_mp4,
        },
        args: &args,
        folder,
    };
    let started = Instant::now();
    let (episodes, meta) = if is_rollout_file(&args.target) {
        record_file(&plan)?
    } else {
        record_checkpoint(&plan, registry)?
    };
    finish(&plan, &episodes, &meta, started)
}

/// Renders a recorded rollout file as recorded; no episode when stopped.
fn record_file(plan: &Plan) -> Result<(Vec<EpisodeFiles>, ReportMeta)> {
    let meta = ReportMeta {
        title: plan.args.target.display().to_string(),
        ..ReportMeta::default()
    };
    plan.folder.clear()?;
    match record::record_rollout_file(&plan.args.target, &plan.args.out, &plan.options) {
        Ok(files) => Ok((vec![files], meta)),
        Err(_) if STOP.load(Ordering::SeqCst) => Ok((Vec::new(), meta)),
        Err(e) => Err(e),
    }
}

/// Records the episodes of a checkpoint's policy, or of the untrained policy of a config.
fn record_checkpoint(plan: &Plan, registry: &Registry) -> Result<(Vec<EpisodeFiles>, ReportMeta)> {
    let args = plan.args;
    tch::set_num_threads(1);
    let loaded = load(&args.target, registry)?;
    let config = &loaded.sidecar.config;
    let (factory, _) = crate::options::eval_envs(registry, &loaded, &args.options)?;
    let spec = loaded.sidecar.env_spec.clone();
    let mut meta = ReportMeta {
        title: args.target.display().to_string(),
        config: Some(config.to_toml()),
        ..ReportMeta::default()
    };
    if !loaded.sidecar.tensors.is_empty() {
        meta.checkpoint_step = Some(loaded.sidecar.global_step);
        meta.ablation = read_ablation(&loaded.path);
    }
    meta.evaluation = loaded.sidecar.eval.as_ref().map(|e| {
        format!(
            "evaluated {:.2} ± {:.2} over {} episodes",
            e.mean_return, e.std_return, e.episodes
        )
    });
    let max_steps = args
        .max_steps
        .or(spec.max_episode_steps.map(|m| m as usize))
        .unwrap_or(1000);
    let policy = Rc::new(loaded.policy);
    plan.folder.clear()?;
    if let Some(wiring) = policy.actor.wiring() {
        let picture = PictureOptions {
            labels: true,
            sensory_names: spec.observation_names.clone(),
            motor_names: spec.action_names.clone(),
            title: Some(format!("{} policy", spec.name)),
        };
        picture::write(wiring, &picture, &args.out.join("wiring.svg"))?;
    }
    let mut auditor = Auditor::new(policy, !args.stochastic);
    if args.zero_action {
        auditor = auditor.with_zero_actions();
    }
    let seeds: Vec<u64> = (0..args.episodes as u64)
        .map(|i| args.env_seed.wrapping_add(i))
        .collect();
    let episodes = record::record_policy(
        &mut auditor,
        &factory,
        &spec,
        &seeds,
        max_steps,
        &args.out,
        &plan.options,
    )?;
    Ok((episodes, meta))
}

/// Writes the report of the finished episodes and says what was recorded; a stopped
/// recording is an error saying what was kept (nothing: the folder is left as it was made).
fn finish(
    plan: &Plan,
    episodes: &[EpisodeFiles],
    meta: &ReportMeta,
    started: Instant,
) -> Result<()> {
    let out = &plan.args.out;
    if episodes.is_empty() {
        plan.folder.abandon()?;
        bail!(
            "interrupted before the first episode was finished; nothing was recorded into {}",
            out.display()
        );
    }
    let report = write_report(out, meta)?;
    for e in episodes {
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
    if STOP.load(Ordering::SeqCst) {
        bail!(
            "interrupted: {} of {} episode(s) recorded into {} (the one in progress was \
             discarded); open {}",
            episodes.len(),
            plan.args.episodes,
            out.display(),
            report.display()
        );
    }
    println!(
        "recorded {} episode(s) into {} in {:.1}s; open {} in a browser",
        episodes.len(),
        out.display(),
        started.elapsed().as_secs_f64(),
        report.display()
    );
    Ok(())
}
