//! `wormnet train`: creates a run directory from a config, or continues one with `--resume`,
//! with a progress bar and Ctrl-C saving the latest checkpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use wormnet_agent::checkpoint::{self, Sidecar};
use wormnet_agent::config::{Override, TrainConfig};
use wormnet_agent::train::{self, Outcome, Trainer};
use wormnet_sim::Registry;

/// Arguments of `wormnet train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Experiment config (e.g. configs/cartpole.toml); omit with --resume.
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// cpu, cuda or cuda:N (overrides run.device).
    #[arg(long)]
    pub device: Option<String>,
    /// Overrides run.seed (new runs only).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides run.total_steps (also extends a resumed run).
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// Cores the run uses (overrides run.threads; default: all this process may use). Env
    /// workers and update shards share them; more than the cores is capped at the cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Start from this run's best (else latest) policy instead of fresh weights (sets
    /// run.init_from): fine-tuning, e.g. PPO after `wormnet imitate`.
    #[arg(long, value_name = "RUN_DIR")]
    pub init_from: Option<PathBuf>,
    /// Run directory (default: runs/<run.name or config name-seed-time>).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Sets a config value by dotted key, checked like the file (repeatable), e.g.
    /// `--set ppo.learning_rate=1e-3 --set policy.actor.cell=cfc`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,
    /// No progress bar (logs only).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `wormnet train`.
pub fn run(args: TrainArgs, registry: &Registry) -> Result<()> {
    let mut trainer = match (&args.config, &args.resume) {
        (Some(_), Some(_)) => {
            bail!("give either a config (new run) or --resume RUN_DIR, not both")
        }
        (None, None) => bail!("give a config file, e.g. `wormnet train configs/cartpole.toml`"),
        (Some(path), None) => new_run(path, &args, registry)?,
        (None, Some(run_dir)) => resumed_run(run_dir, &args, registry)?,
    };
    install_ctrl_c(
        "training on to the next checkpoint (at most run.checkpoint_every updates), where a \
         resumed run continues exactly, and saving it; interrupt again to stop at once without \
         saving…",
    )?;
    let total = trainer.config.run.total_steps;
    eprintln!(
        "wormnet train: env {} ({} envs), {} on {}, {}; run dir {}",
        trainer.config.env.name,
        trainer.config.env.num_envs,
        total,
        trainer.config.run.device,
        trainer.threads,
        trainer.run_dir.display()
    );
    eprintln!("{}", trainer.policy.describe());
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(trainer.global_step);
    let outcome = trainer.run(None, |t, stats| {
        bar.set_position(t.global_step.min(total));
        let ret = t
            .recent_return()
            .map_or("-".to_string(), |r| format!("{r:.1}"));
        bar.set_message(format!(
            "return {ret}  kl {:.4}  update {}/{}",
            stats.approx_kl,
            t.update,
            t.num_updates()
        ));
    })?;
    bar.finish();
    report_outcome(&trainer, outcome);
    Ok(())
}

/// A new run of the config at `path`, with the command line's overrides.
fn new_run(path: &Path, args: &TrainArgs, registry: &Registry) -> Result<Trainer> {
    let mut config = TrainConfig::load_with(path, &args.overrides)?;
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(source) = &args.init_from {
        config.run.init_from = Some(source.clone());
    }
    apply_overrides(&mut config, args);
    config.validate(path)?;
    let run_dir = match &args.run_dir {
        Some(dir) => dir.clone(),
        None => default_run_dir(path, &config),
    };
    Trainer::create(config, &run_dir, registry)
        .with_context(|| format!("config {}", path.display()))
}

/// The run in `run_dir` continued from its latest checkpoint, with its config.toml as it
/// stands (a user may have edited it, e.g. a longer budget).
fn resumed_run(run_dir: &Path, args: &TrainArgs, registry: &Registry) -> Result<Trainer> {
    if args.seed.is_some() {
        bail!("--seed cannot change a resumed run (its streams derive from run.seed)");
    }
    if !args.overrides.is_empty() {
        bail!("--set cannot change a resumed run; edit its config.toml instead");
    }
    if args.init_from.is_some() {
        bail!("--init-from starts a new run; a resumed run continues from its own checkpoint");
    }
    if let Some(dir) = args.run_dir.as_ref().filter(|d| *d != run_dir) {
        bail!(
            "--resume {} continues that directory; --run-dir {} cannot move it (copy the \
             directory instead)",
            run_dir.display(),
            dir.display()
        );
    }
    let sidecar = checkpoint::load_sidecar(&run_dir.join("latest.json"))
        .with_context(|| format!("cannot resume {}", run_dir.display()))?;
    let edited = run_dir.join("config.toml");
    let mut config = if edited.exists() {
        TrainConfig::load_record(&edited)?
    } else {
        sidecar.config.clone()
    };
    apply_overrides(&mut config, args);
    config.validate(&edited)?;
    if config.run.total_steps <= sidecar.global_step {
        bail!(
            "{}: run.total_steps {} is not past the {} steps already done; give \
             --total-steps larger than {}",
            run_dir.display(),
            config.run.total_steps,
            sidecar.global_step,
            sidecar.global_step
        );
    }
    let trainer = Trainer::resume(run_dir, Some(config.clone()), registry)?;
    checkpoint::write_atomic(&edited, config.to_toml().as_bytes())?;
    Ok(trainer)
}

/// The closing line: where an interrupted run stands, or the best evaluation of a finished one.
fn report_outcome(trainer: &Trainer, outcome: Outcome) {
    let run_dir = trainer.run_dir.display();
    match outcome {
        Outcome::Interrupted => {
            eprintln!(
                "interrupted at step {}: saved {run_dir}/latest.json; continue with `wormnet \
                 train --resume {run_dir}`",
                trainer.global_step
            );
        }
        Outcome::Finished | Outcome::UpdateLimit => {
            let best: Option<Sidecar> =
                checkpoint::load_json(&trainer.run_dir.join("best.json")).ok();
            match best.and_then(|b| b.eval.map(|e| (b.global_step, e))) {
                Some((step, e)) => eprintln!(
                    "done: best eval {:.1} ± {:.1}{} at step {step}; run dir {run_dir}",
                    e.mean_return,
                    e.std_return,
                    e.success_rate
                        .map_or(String::new(), |r| format!(" (success {:.0}%)", 100.0 * r)),
                ),
                None => eprintln!("done; run dir {run_dir}"),
            }
        }
    }
}

/// Ctrl-C or SIGTERM sets [`train::STOP`] (training finishes the update and saves), printing
/// `what` happens now; a second one exits at once. Installed once per process (a library
/// caller may train several runs).
pub(crate) fn install_ctrl_c(what: &'static str) -> Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(move || {
                if train::STOP.swap(true, Ordering::SeqCst) {
                    eprintln!("\nsecond interrupt: exiting without saving");
                    std::process::exit(130);
                }
                eprintln!("\ninterrupted: {what}");
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))
}

fn apply_overrides(config: &mut TrainConfig, args: &TrainArgs) {
    if let Some(device) = &args.device {
        config.run.device = device.clone();
    }
    if let Some(total) = args.total_steps {
        config.run.total_steps = total;
    }
    if let Some(threads) = args.threads {
        config.run.threads = Some(threads);
    }
}

/// `runs/<name>` or `runs/<config stem>-s<seed>-<UTC time to the millisecond>`.
pub(crate) fn default_run_dir(config_path: &Path, config: &TrainConfig) -> PathBuf {
    let name = config.run.name.clone().unwrap_or_else(|| {
        let stem = config_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        format!("{stem}-s{}-{}", config.run.seed, utc_stamp())
    });
    PathBuf::from("runs").join(name)
}

/// `YYYYmmdd-HHMMSS.mmm` in UTC, from the civil-from-days algorithm (no time-zone crate
/// needed). Two launches in one second get different names; the run-directory lock catches
/// the rest.
fn utc_stamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}.{:03}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_has_the_expected_shape() {
        let s = super::utc_stamp();
        assert_eq!(s.len(), 19);
        assert_eq!(&s[8..9], "-");
        assert!(s.starts_with("20"));
    }
}
