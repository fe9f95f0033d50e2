//! `wormnet report DIR…`: compares runs across seeds — one row per config (the seed taken
//! out) with 95 % bootstrap confidence intervals, as Markdown and CSV, learning curves with
//! confidence bands, and with `--noise` the success-versus-σ robustness figure. Runs stopped
//! short of their `run.total_steps` are rows of their own, marked `unfinished: N of M steps`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use wormnet_agent::checkpoint::write_atomic;
use wormnet_agent::compare::plot::{draw_bands, learning_bands, Band};
use wormnet_agent::compare::robustness::noise_sweep;
use wormnet_agent::compare::{csv, find_runs, group, markdown, summarize, GroupRow, RunRecord};
use wormnet_sim::Registry;

/// Arguments of `wormnet report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run directories, sweep directories, or folders holding runs.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where report.md, report.csv, curves.png (and robustness.png) go (default: the first
    /// DIR's report/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also report env steps and training time until the evaluation first reaches this return.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Evaluate every run's best policy under these observation-noise σ (comma-separated,
    /// e.g. 0,0.05,0.1,0.2) and draw success versus σ per group.
    #[arg(long, value_delimiter = ',', value_name = "SIGMAS")]
    pub noise: Vec<f32>,
    /// Episodes per noise level (default: each run's eval_episodes).
    #[arg(long)]
    pub episodes: Option<usize>,
}

/// Runs `wormnet report`.
pub fn run(args: ReportArgs, registry: &Registry) -> Result<()> {
    if let Some(s) = args.noise.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
        bail!("--noise: every σ must be finite and ≥ 0, got {s}");
    }
    if args.episodes == Some(0) {
        bail!("--episodes must be at least 1");
    }
    let dirs = find_runs(&args.dirs)?;
    tch::set_num_threads(1);
    let (runs, success) = load_runs(&args, &dirs, registry)?;
    warn_unfinished(&runs);
    let groups = group(runs);
    let rows: Vec<_> = groups
        .iter()
        .filter_map(|g| summarize(g, args.threshold))
        .collect();
    if rows.is_empty() {
        bail!(
            "none of the {} runs has an evaluation yet (metrics.csv has no eval/mean_return)",
            dirs.len()
        );
    }
    let metric = if success { "success" } else { "return" };
    let table = markdown(&rows, args.threshold, metric);
    println!("{} runs in {} groups\n\n{table}", dirs.len(), rows.len());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("report"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join("report.md"), table.as_bytes())?;
    write_atomic(&out.join("report.csv"), csv(&rows).as_bytes())?;
    draw_bands(
        &learning_bands(&groups),
        "evaluation return (mean, 95% bootstrap CI across seeds)",
        "env steps",
        "mean return",
        &out.join("curves.png"),
    )?;
    let mut written = vec!["report.md", "report.csv", "curves.png"];
    let evaluated = rows.iter().any(|r| !r.noise.is_empty());
    if !args.noise.is_empty() && !evaluated {
        eprintln!("warning: no run could be evaluated under noise; robustness.png not written");
    }
    if evaluated {
        draw_robustness(&rows, success, &out.join("robustness.png"))?;
        written.push("robustness.png");
    }
    eprintln!("wrote {} in {}", written.join(", "), out.display());
    Ok(())
}

/// Every run's record, with its noise evaluation under `--noise`; and whether every evaluated
/// env reports success (so success rates, not returns, are compared).
fn load_runs(
    args: &ReportArgs,
    dirs: &[PathBuf],
    registry: &Registry,
) -> Result<(Vec<RunRecord>, bool)> {
    let mut runs = Vec::with_capacity(dirs.len());
    let mut success = true;
    for (i, dir) in dirs.iter().enumerate() {
        let mut run = RunRecord::load(dir)?;
        if !args.noise.is_empty() {
            eprintln!(
                "[{}/{}] noise evaluation of {}",
                i + 1,
                dirs.len(),
                dir.display()
            );
            // A run without a loadable policy (a trial that failed before its first
            // checkpoint) still reports its learning curve; its noise columns stay empty.
            match noise_sweep(dir, &args.noise, args.episodes, registry) {
                Ok((is_success, points)) => {
                    success &= is_success;
                    run.noise = points;
                }
                Err(e) => eprintln!("warning: no noise evaluation of {}: {e:#}", dir.display()),
            }
        }
        runs.push(run);
    }
    Ok((runs, success))
}

/// Names the runs stopped short of their budget: no final result, each gets a row of its own,
/// marked.
fn warn_unfinished(runs: &[RunRecord]) {
    let unfinished: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let (done, total) = r.unfinished()?;
            let of = if total == 0 {
                String::new()
            } else {
                format!(" of {total}")
            };
            Some(format!("{} ({done}{of} steps)", r.dir.display()))
        })
        .collect();
    if !unfinished.is_empty() {
        eprintln!(
            "warning: {} of {} runs are unfinished, reported in rows of their own marked \
             unfinished and kept out of the finished groups: {}",
            unfinished.len(),
            runs.len(),
            unfinished.join(", ")
        );
    }
}

/// Draws each group's success rate (or mean return) against the observation-noise σ.
fn draw_robustness(rows: &[GroupRow], success: bool, path: &Path) -> Result<()> {
    let bands: Vec<Band> = rows
        .iter()
        .map(|r| {
            (
                r.label.clone(),
                r.noise
                    .iter()
                    .map(|(s, e)| (f64::from(*s), e.mean, e.lo, e.hi))
                    .collect(),
            )
        })
        .collect();
    let y = if success {
        "success rate"
    } else {
        "mean return"
    };
    draw_bands(
        &bands,
        &format!("robustness: {y} under observation noise (95% CI)"),
        "observation noise σ",
        y,
        path,
    )
}
