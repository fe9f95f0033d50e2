//! `wormnet sweep SWEEP.toml`: every trial of a sweep file (seeds × grid × variants) trained
//! into one directory, on this machine or on a Ray cluster, resumable: a re-run skips the
//! finished trials and resumes the interrupted ones from their checkpoints.
//!
//! A re-run never loses or mislabels a trial. One whose checkpoint cannot be read (a newer
//! format, a corrupt file, a read error) is named with the reason and left as it is — neither
//! trained over nor deleted — while the others run, and the sweep then exits with an error;
//! only a trial directory with no checkpoint at all is started afresh. A trial trained with
//! other settings than the sweep file now gives it (its `config.toml` against the trial's
//! resolved config) stops the sweep before anything changes, naming the differing keys
//! (`ppo.learning_rate: 0.0003 -> 0.001`): new settings go into another `--out`.
//!
//! ```text
//! SWEEP_DIR/
//!   sweep.toml        the sweep file as run
//!   manifest.json     every trial: its command, run dir, status and error
//!   trials/<id>/      each trial's run directory (what `wormnet report` reads)
//!   logs/<id>.log     each trial's output
//! ```

pub mod jobs;
mod local;
pub mod plan;
mod ray;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use wormnet_agent::checkpoint::write_atomic;
use wormnet_agent::rundir::RunLock;

use jobs::{Event, Job, JobEnd};
use plan::{config_changes, existing, progress, Progress, SweepFile, Trial};
use wormnet_agent::config::TrainConfig;

/// Where the trials run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Child processes on this machine.
    Local,
    /// Ray tasks on a cluster (`--ray-address` or `RAY_ADDRESS`).
    Ray,
}

/// Arguments of `wormnet sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The sweep file (e.g. sweeps/cartpole_cells.toml).
    pub sweep: PathBuf,
    /// The sweep directory (default: sweeps/runs/<sweep file name>); re-run to resume.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// local (this machine) or ray (a Ray cluster).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: Executor,
    /// Trials at once with the local executor (default: the sweep's `parallel`, else
    /// cores ÷ threads per trial).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// The Ray cluster, e.g. 127.0.0.1:6379 (default: RAY_ADDRESS).
    #[arg(long, value_name = "HOST:PORT")]
    pub ray_address: Option<String>,
    /// Only list the trials (one per line) and what would be done with each.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only the trial at this index of the list (`$SLURM_ARRAY_TASK_ID` in
    /// scripts/slurm/sweep.sbatch); array tasks share the directory, so no manifest is kept.
    #[arg(long, value_name = "INDEX", conflicts_with_all = ["executor", "parallel", "ray_address"])]
    pub trial: Option<usize>,
}

/// Runs `wormnet sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    let sweep = SweepFile::load(&args.sweep)?;
    let (trials, threads) = resolve_trials(&sweep, args.trial)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .sweep
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("sweeps/runs").join(stem)
    });
    // Before anything in the directory changes: trials trained with other settings are an
    // error, never reused under the new ones.
    let plan = plan_trials(&dir, &args.sweep, trials)?;
    let parallel = args
        .parallel
        .or(sweep.parallel)
        .unwrap_or_else(|| (cores() / threads).max(1));
    // Trials started side by side share the cores: each gets `run.threads` = its share of
    // them (the cores ÷ trials at once), unless the sweep itself sets it; a trial alone on the
    // machine uses every core. A run's bits depend on its thread count, its statistics not.
    let alone = matches!(args.executor, Executor::Local) && parallel == 1 && args.trial.is_none();
    let share = (!alone).then(|| match args.executor {
        Executor::Local => (cores() / parallel).max(1),
        _ => 1,
    });
    if args.dry_run {
        for (t, p) in &plan {
            println!(
                "{:<40} {:?}  {} {}",
                t.id,
                p,
                binary_name(),
                trial_args(t, &dir.join("trials").join(&t.id), share).join(" ")
            );
        }
        return Ok(());
    }
    let (_lock, dir) = prepare_dir(&args, &dir)?;
    let binary = std::env::current_exe().context("cannot find the wormnet binary")?;

    let (status, jobs) = schedule(&plan, &dir, share)?;
    super::train::install_ctrl_c("stopping the trials (each saves its latest checkpoint)…")?;
    announce(&plan, &dir, args.executor, parallel, jobs.len());
    let keep_manifest = args.trial.is_none();
    if keep_manifest {
        write_manifest(&dir, &args.sweep, &status)?;
    }
    let skipped = plan
        .iter()
        .filter(|(_, p)| *p == Progress::Finished)
        .count();
    let mut tracker = Tracker {
        bar: progress_bar(plan.len(), skipped),
        status,
        jobs: &jobs,
        dir: &dir,
        sweep: &args.sweep,
        keep_manifest,
    };
    tracker.bar.set_message(counts(&tracker.status));
    let mut report = |event: Event| tracker.record(event);
    match args.executor {
        Executor::Local => local::run(&binary, &jobs, parallel, &mut report)?,
        Executor::Ray => {
            let address = args
                .ray_address
                .clone()
                .or_else(|| std::env::var("RAY_ADDRESS").ok())
                .context("the Ray executor needs --ray-address HOST:PORT or RAY_ADDRESS (scripts/ray_head start prints one)")?;
            ray::run(&binary, &jobs, threads, &address, &dir, &mut report)?
        }
    }
    tracker.bar.finish();
    summarize(&tracker.status, &dir)
}

/// Every trial of the sweep with its resolved config — all checked before anything starts,
/// so that a typo fails the sweep at once — narrowed to `--trial` when given; and the most
/// threads one trial takes.
fn resolve_trials(
    sweep: &SweepFile,
    trial: Option<usize>,
) -> Result<(Vec<(Trial, TrainConfig)>, usize)> {
    let trials = sweep.trials()?;
    let mut threads = 1;
    let mut resolved = Vec::with_capacity(trials.len());
    for t in &trials {
        let config = t.resolved()?;
        threads = threads.max(config.run.threads.unwrap_or(1));
        resolved.push(config);
    }
    let count = trials.len();
    let trials: Vec<(Trial, TrainConfig)> = match trial {
        Some(i) if i >= count => bail!(
            "--trial {i}: the sweep has {count} trials (0 to {})",
            count - 1
        ),
        Some(i) => vec![(trials[i].clone(), resolved[i].clone())],
        None => trials.into_iter().zip(resolved).collect(),
    };
    Ok((trials, threads))
}

/// Creates the sweep directory's `trials/` and `logs/`, takes its lock and copies the sweep
/// file in (neither for a `--trial` array task); returns the lock and the canonical directory.
fn prepare_dir(args: &SweepArgs, dir: &Path) -> Result<(Option<RunLock>, PathBuf)> {
    for sub in ["trials", "logs"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("cannot create {}", dir.join(sub).display()))?;
    }
    // One sweep process per directory; Slurm array tasks (`--trial`) rely on the run
    // directories' own locks instead.
    let lock = match args.trial {
        Some(_) => None,
        None => Some(
            RunLock::acquire(dir).with_context(|| format!("sweep directory {}", dir.display()))?,
        ),
    };
    if args.trial.is_none() {
        std::fs::copy(&args.sweep, dir.join("sweep.toml")).with_context(|| {
            format!(
                "cannot copy {} into {}",
                args.sweep.display(),
                dir.display()
            )
        })?;
    }
    Ok((lock, dir.canonicalize()?))
}

/// The sweep's opening line: how many trials, how many already finished or kept unreadable,
/// and how many run where.
fn announce(
    plan: &[(Trial, Progress)],
    dir: &Path,
    executor: Executor,
    parallel: usize,
    to_run: usize,
) {
    let skipped = plan
        .iter()
        .filter(|(_, p)| *p == Progress::Finished)
        .count();
    let where_ = match executor {
        Executor::Local => format!("{parallel} at a time on this machine"),
        Executor::Ray => "as Ray tasks".into(),
    };
    let kept = plan
        .iter()
        .filter(|(_, p)| matches!(p, Progress::Unreadable(_)))
        .count();
    let kept = match kept {
        0 => String::new(),
        n => format!("{n} unreadable, kept; "),
    };
    eprintln!(
        "wormnet sweep: {} trials in {} ({} already finished; {kept}{} to run {where_})",
        plan.len(),
        dir.display(),
        skipped,
        to_run
    );
}

/// The bar of finished trials out of `len`, starting at the `skipped` already finished.
fn progress_bar(len: usize, skipped: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} trials  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(skipped as u64);
    bar
}

/// Prints `line` above the bar, or as a line of its own when there is no terminal for the bar
/// (a log file, a Slurm or CI job).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The running sweep's state: each trial's status, kept in the manifest and shown on the bar
/// as the executor reports starts and ends.
struct Tracker<'a> {
    bar: ProgressBar,
    status: BTreeMap<String, TrialStatus>,
    jobs: &'a [Job],
    dir: &'a Path,
    sweep: &'a Path,
    keep_manifest: bool,
}

impl Tracker<'_> {
    /// Takes in a trial's start or end: its status, the bar, a line for a log, the manifest.
    fn record(&mut self, event: Event) {
        let (id, end) = match event {
            Event::Started(id) => (id, None),
            Event::Ended(id, end) => (id, Some(end)),
        };
        let end = end.map(|end| self.settle(&id, end));
        if let Some(s) = self.status.get_mut(&id) {
            s.status = match &end {
                None => "running",
                Some(JobEnd::Finished) => "finished",
                Some(JobEnd::Interrupted) => "interrupted",
                Some(JobEnd::Failed(e)) => {
                    s.error = Some(e.clone());
                    "failed"
                }
            }
            .into();
        }
        if matches!(end, Some(JobEnd::Finished | JobEnd::Failed(_))) {
            self.bar.inc(1);
        }
        match &end {
            Some(JobEnd::Failed(e)) => say(&self.bar, format!("trial {id} failed: {e}")),
            // The bar shows the rest; a log gets a line per ended trial.
            Some(_) if self.bar.is_hidden() => {
                let state = self.status.get(&id).map_or("ended", |s| s.status.as_str());
                eprintln!("trial {id} {state} ({})", counts(&self.status));
            }
            _ => {}
        }
        self.bar.set_message(counts(&self.status));
        if !self.keep_manifest {
            return;
        }
        if let Err(e) = write_manifest(self.dir, self.sweep, &self.status) {
            say(&self.bar, format!("warning: {e:#}"));
        }
    }

    /// How trial `id` really ended: a trial stopped by a signal saves and exits 0 short of its
    /// budget, and one cancelled as it ended may have finished, so its checkpoint decides.
    fn settle(&self, id: &str, end: JobEnd) -> JobEnd {
        match end {
            JobEnd::Failed(e) => JobEnd::Failed(e),
            _ => {
                let run_dir = self
                    .jobs
                    .iter()
                    .find(|j| j.id == id)
                    .map(|j| j.run_dir.as_path());
                if run_dir.is_some_and(|d| progress(d) == Progress::Finished) {
                    JobEnd::Finished
                } else {
                    JobEnd::Interrupted
                }
            }
        }
    }
}

/// Each trial's line in the manifest, and a job for each one to run now: started afresh (its
/// directory cleared when it holds no checkpoint) or resumed. Unreadable trials are named and
/// left as they are.
fn schedule(
    plan: &[(Trial, Progress)],
    dir: &Path,
    share: Option<usize>,
) -> Result<(BTreeMap<String, TrialStatus>, Vec<Job>)> {
    let mut status: BTreeMap<String, TrialStatus> = BTreeMap::new();
    let mut jobs = Vec::new();
    for (trial, progress) in plan {
        let run_dir = dir.join("trials").join(&trial.id);
        let log = dir.join("logs").join(format!("{}.log", trial.id));
        let args = match progress {
            Progress::Finished => {
                status.insert(
                    trial.id.clone(),
                    TrialStatus::new(trial, &run_dir, share, "finished"),
                );
                continue;
            }
            Progress::Unreadable(why) => {
                eprintln!("trial {}: kept as it is, not trained: {why}", trial.id);
                let mut s = TrialStatus::new(trial, &run_dir, share, UNREADABLE);
                s.error = Some(why.clone());
                status.insert(trial.id.clone(), s);
                continue;
            }
            Progress::Partial => vec![
                "train".to_string(),
                "--resume".into(),
                run_dir.display().to_string(),
                "--quiet".into(),
            ],
            Progress::New => {
                // Started before but killed before its first checkpoint: nothing to keep,
                // unless a process still trains there (another Slurm array task, say). Looked
                // at again under its lock: a directory that has a checkpoint by now is kept.
                if run_dir.exists() {
                    let _held = RunLock::acquire(&run_dir)
                        .with_context(|| format!("trial {}", trial.id))?;
                    if !matches!(existing(&run_dir), Ok(None)) {
                        bail!(
                            "trial {}: a checkpoint appeared in {} as the sweep started; \
                             nothing was deleted: run the same command again",
                            trial.id,
                            run_dir.display()
                        );
                    }
                    std::fs::remove_dir_all(&run_dir)
                        .with_context(|| format!("cannot clear {}", run_dir.display()))?;
                }
                trial_args(trial, &run_dir, share)
            }
        };
        if log.exists() {
            let _ = std::fs::rename(&log, log.with_extension("prev.log"));
        }
        status.insert(
            trial.id.clone(),
            TrialStatus::new(trial, &run_dir, share, "pending"),
        );
        jobs.push(Job {
            id: trial.id.clone(),
            args,
            log,
            run_dir,
        });
    }
    Ok((status, jobs))
}

/// Status of a trial whose checkpoint cannot be read (left as it is).
const UNREADABLE: &str = "unreadable";

/// Each trial with what to do with it, from its run directory under `dir`. A trial trained
/// with other settings than the sweep file now gives it is an error naming the changed keys:
/// its results must not be reported under the new settings.
fn plan_trials(
    dir: &Path,
    sweep: &Path,
    trials: Vec<(Trial, TrainConfig)>,
) -> Result<Vec<(Trial, Progress)>> {
    let mut changed: Vec<String> = Vec::new();
    let mut first = None;
    let mut n_changed = 0;
    let mut plan = Vec::with_capacity(trials.len());
    for (trial, wanted) in trials {
        let progress = match existing(&dir.join("trials").join(&trial.id)) {
            Ok(None) => Progress::New,
            Err(e) => Progress::Unreadable(format!("{e:#}")),
            Ok(Some(trained)) => {
                let changes = config_changes(&trained.config, &wanted);
                if !changes.is_empty() {
                    n_changed += 1;
                    first.get_or_insert_with(|| trial.id.clone());
                    for c in changes {
                        if !changed.contains(&c) {
                            changed.push(c);
                        }
                    }
                }
                trained.progress()
            }
        };
        plan.push((trial, progress));
    }
    if let Some(first) = first {
        let shown = changed.len().min(8);
        let more = match changed.len() - shown {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        bail!(
            "{}: {n_changed} trials (the first {first}) were trained with other settings than \
             {} gives them: {}{more}; nothing was changed. Give the new settings another \
             --out, or restore the old ones to resume this sweep",
            dir.display(),
            sweep.display(),
            changed[..shown].join(", "),
        );
    }
    Ok(plan)
}

/// The end of a sweep: what is left to do, and an error if any trial failed or was unreadable.
fn summarize(status: &BTreeMap<String, TrialStatus>, dir: &Path) -> Result<()> {
    let with = |what: &str| -> Vec<&TrialStatus> {
        status.values().filter(|s| s.status == what).collect()
    };
    let (failed, unreadable) = (with("failed"), with(UNREADABLE));
    let interrupted = status.len() - with("finished").len() - failed.len() - unreadable.len();
    if interrupted > 0 {
        eprintln!(
            "interrupted: {interrupted} trials not finished; run the same command again to resume them"
        );
    }
    for s in failed.iter().chain(&unreadable) {
        eprintln!("  {}: {}", s.id, s.error.as_deref().unwrap_or(&s.status));
    }
    if !unreadable.is_empty() {
        bail!(
            "{} of {} trials have a checkpoint that cannot be read and were left as they are \
             (neither trained nor deleted){}: repair them, or move them out of {} to train them \
             afresh, then run the same command again",
            unreadable.len(),
            status.len(),
            match failed.len() {
                0 => String::new(),
                n => format!("; {n} failed (logs in {})", dir.join("logs").display()),
            },
            dir.join("trials").display()
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} trials failed (logs in {}); fix the cause and run the same command again to retry them",
            failed.len(),
            status.len(),
            dir.join("logs").display()
        );
    }
    if interrupted == 0 {
        eprintln!(
            "done: {} trials finished; compare them with `{} report {}`",
            status.len(),
            binary_name(),
            dir.display()
        );
    }
    Ok(())
}

/// Trials done / running / failed, for the progress line.
fn counts(status: &BTreeMap<String, TrialStatus>) -> String {
    let n = |what: &str| status.values().filter(|s| s.status == what).count();
    format!(
        "done {}  running {}  failed {}",
        n("finished"),
        n("running"),
        n("failed")
    )
}

/// The `wormnet` arguments that start `trial` fresh in `run_dir`: its own, plus
/// `run.threads` = `share` (its share of the cores; None: alone on the machine, all of them)
/// unless the sweep sets that field.
fn trial_args(trial: &Trial, run_dir: &Path, share: Option<usize>) -> Vec<String> {
    let mut args = trial.fresh_args(run_dir);
    let threads_key = ["run", "threads"];
    if let Some(share) = share.filter(|_| !trial.overrides.iter().any(|o| o.key == threads_key)) {
        args.extend(["--set".into(), format!("run.threads={share}")]);
    }
    args
}

/// A trial's line in `manifest.json`.
struct TrialStatus {
    id: String,
    command: Vec<String>,
    run_dir: PathBuf,
    status: String,
    error: Option<String>,
}

impl TrialStatus {
    fn new(trial: &Trial, run_dir: &Path, share: Option<usize>, status: &str) -> Self {
        Self {
            id: trial.id.clone(),
            command: trial_args(trial, run_dir, share),
            run_dir: run_dir.to_path_buf(),
            status: status.into(),
            error: None,
        }
    }
}

fn write_manifest(dir: &Path, sweep: &Path, status: &BTreeMap<String, TrialStatus>) -> Result<()> {
    let trials: Vec<serde_json::Value> = status
        .values()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "status": s.status, "error": s.error,
                "run_dir": s.run_dir, "command": s.command,
            })
        })
        .collect();
    let manifest = serde_json::json!({ "sweep": sweep, "trials": trials });
    write_atomic(
        &dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    Ok(())
}

/// Logical cores available to this process.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The name of the running binary (`wormnet`, or a user's own crate's), for the commands the
/// sweep prints: they must run as printed.
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "wormnet".into())
}
