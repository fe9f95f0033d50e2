//! A group's line of the report — means with 95 % bootstrap intervals across seeds — as
//! Markdown for reading and CSV for further work.

use super::runs::{Group, RunRecord};
use super::stats::{bootstrap_mean, iqm, Estimate};

/// One line of the report: a group's numbers across its seeds.
#[derive(Clone, Debug)]
pub struct GroupRow {
    /// The group's label.
    pub label: String,
    /// Runs (seeds) in the group.
    pub seeds: usize,
    /// Its runs stopped short of `run.total_steps` (the label says how far): its "final"
    /// evaluation is only the last one so far.
    pub unfinished: bool,
    /// Last evaluation's mean return, across seeds.
    pub final_return: Estimate,
    /// Interquartile mean of the last evaluations.
    pub final_iqm: f64,
    /// Best evaluation's mean return, across seeds.
    pub best_return: Estimate,
    /// Last evaluation's success rate, where the env defines success.
    pub final_success: Option<Estimate>,
    /// Runs whose evaluation reached the threshold.
    pub reached: usize,
    /// Mean env steps to the threshold over the runs that reached it.
    pub steps_to_threshold: Option<f64>,
    /// Mean wall seconds to the threshold over the runs that reached it (and logged it).
    pub wall_to_threshold: Option<f64>,
    /// Mean env steps of a whole run (PPO's rollouts, search's scorings): what each method
    /// spent, to compare beside the seconds.
    pub env_steps: f64,
    /// Mean training seconds (rollouts and updates only) of a whole run.
    pub train_seconds: f64,
    /// Mean wall seconds of a whole run (evaluations and checkpoints included), where logged.
    pub wall_seconds: Option<f64>,
    /// Mean wall seconds of the cloning before PPO (part of `wall_seconds`), where runs cloned.
    pub cloning_seconds: Option<f64>,
    /// (σ, estimate across seeds) per observation-noise level.
    pub noise: Vec<(f32, Estimate)>,
}

/// The report line of a group; None when none of its runs has evaluated yet.
pub fn summarize(group: &Group, threshold: Option<f64>) -> Option<GroupRow> {
    let runs: Vec<&RunRecord> = group.runs.iter().filter(|r| !r.evals.is_empty()).collect();
    let finals: Vec<f64> = runs
        .iter()
        .map(|r| r.evals.last().expect("non-empty").1)
        .collect();
    let bests: Vec<f64> = runs
        .iter()
        .map(|r| {
            r.evals
                .iter()
                .map(|e| e.1)
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let successes: Option<Vec<f64>> = runs
        .iter()
        .map(|r| r.evals.last().expect("non-empty").2)
        .collect();
    let reached: Vec<(f64, Option<f64>)> = threshold
        .map(|t| runs.iter().filter_map(|r| r.to_threshold(t)).collect())
        .unwrap_or_default();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    // Every run was evaluated at the same σ, except one without a policy (none at all).
    let levels: Vec<f32> = runs
        .iter()
        .map(|r| r.noise.iter().map(|n| n.0).collect::<Vec<_>>())
        .max_by_key(Vec::len)
        .unwrap_or_default();
    let noise = levels
        .iter()
        .filter_map(|&sigma| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.noise.iter().find(|n| n.0 == sigma).map(|n| n.1))
                .collect();
            Some((sigma, bootstrap_mean(&values)?))
        })
        .collect();
    Some(GroupRow {
        label: group.label.clone(),
        seeds: runs.len(),
        unfinished: runs.iter().any(|r| r.unfinished().is_some()),
        final_return: bootstrap_mean(&finals)?,
        final_iqm: iqm(&finals)?,
        best_return: bootstrap_mean(&bests)?,
        final_success: successes.as_deref().and_then(bootstrap_mean),
        reached: reached.len(),
        steps_to_threshold: mean(&reached.iter().map(|r| r.0).collect::<Vec<_>>()),
        wall_to_threshold: mean(&reached.iter().filter_map(|r| r.1).collect::<Vec<_>>()),
        env_steps: mean(
            &runs
                .iter()
                .map(|r| r.times.last().map_or(0.0, |t| t.0))
                .collect::<Vec<_>>(),
        )
        .unwrap_or(0.0),
        train_seconds: mean(
            &runs
                .iter()
                .map(|r| r.times.last().map_or(0.0, |t| t.1))
                .collect::<Vec<_>>(),
        )
        .unwrap_or(0.0),
        wall_seconds: mean(
            &runs
                .iter()
                .filter_map(|r| r.times.last()?.2)
                .collect::<Vec<_>>(),
        ),
        cloning_seconds: mean(
            &runs
                .iter()
                .filter_map(|r| r.cloning_seconds)
                .collect::<Vec<_>>(),
        ),
        noise,
    })
}

/// The noise levels any group was evaluated at (all, unless a group had no policy).
fn noise_levels(rows: &[GroupRow]) -> Vec<f32> {
    rows.iter()
        .map(|r| r.noise.iter().map(|n| n.0).collect::<Vec<_>>())
        .max_by_key(Vec::len)
        .unwrap_or_default()
}

/// A group's estimate at noise `sigma`, if it has one.
fn noise_at(row: &GroupRow, sigma: f32) -> Option<&Estimate> {
    row.noise.iter().find(|n| n.0 == sigma).map(|n| &n.1)
}

fn ci(e: &Estimate, digits: usize) -> String {
    format!("{:.d$} [{:.d$}, {:.d$}]", e.mean, e.lo, e.hi, d = digits)
}

/// The report as a Markdown table. `noise_metric` names what the noise columns hold.
pub fn markdown(rows: &[GroupRow], threshold: Option<f64>, noise_metric: &str) -> String {
    let mut head = vec![
        "group".to_string(),
        "seeds".into(),
        "final eval (95% CI)".into(),
        "final IQM".into(),
        "best eval (95% CI)".into(),
    ];
    let any_success = rows.iter().any(|r| r.final_success.is_some());
    if any_success {
        head.push("final success (95% CI)".into());
    }
    if let Some(t) = threshold {
        head.push(format!("steps to {t}"));
        head.push(format!("wall s to {t}"));
    }
    let any_cloning = rows.iter().any(|r| r.cloning_seconds.is_some());
    if any_cloning {
        head.push("cloning s".into());
    }
    head.push("env steps".into());
    head.push("train s".into());
    head.push("wall s".into());
    let levels = noise_levels(rows);
    for sigma in &levels {
        head.push(format!("{noise_metric} σ={sigma}"));
    }
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let mut cells = vec![
            r.label.clone(),
            r.seeds.to_string(),
            ci(&r.final_return, 1),
            format!("{:.1}", r.final_iqm),
            ci(&r.best_return, 1),
        ];
        if any_success {
            cells.push(r.final_success.as_ref().map_or("–".into(), |e| ci(e, 2)));
        }
        if threshold.is_some() {
            let reached = format!(" ({}/{})", r.reached, r.seeds);
            cells.push(
                r.steps_to_threshold
                    .map_or(format!("–{reached}"), |s| format!("{s:.0}{reached}")),
            );
            cells.push(
                r.wall_to_threshold
                    .map_or("–".into(), |s| format!("{s:.1}")),
            );
        }
        if any_cloning {
            cells.push(r.cloning_seconds.map_or("–".into(), |s| format!("{s:.1}")));
        }
        cells.push(format!("{:.0}", r.env_steps));
        cells.push(format!("{:.1}", r.train_seconds));
        cells.push(r.wall_seconds.map_or("–".into(), |s| format!("{s:.1}")));
        for sigma in &levels {
            cells.push(noise_at(r, *sigma).map_or("–".into(), |e| ci(e, 2)));
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if rows.iter().any(|r| r.unfinished) {
        out.push_str(UNFINISHED_NOTE);
    }
    out
}

/// Under a table with unfinished groups: what their numbers are.
const UNFINISHED_NOTE: &str = "\nRows marked *unfinished* hold runs stopped short of their \
     run.total_steps: their final eval is only their last one so far, and they are in no \
     finished group's statistics.\n";

/// The report as CSV, one row per group, every number in full precision.
pub fn csv(rows: &[GroupRow]) -> String {
    let levels = noise_levels(rows);
    let mut head: Vec<String> = [
        "group",
        "seeds",
        "finished",
        "final_mean",
        "final_ci_lo",
        "final_ci_hi",
        "final_iqm",
        "best_mean",
        "best_ci_lo",
        "best_ci_hi",
        "final_success_mean",
        "final_success_ci_lo",
        "final_success_ci_hi",
        "reached_threshold",
        "steps_to_threshold",
        "wall_seconds_to_threshold",
        "env_steps",
        "train_seconds",
        "wall_seconds",
        "cloning_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in &levels {
        head.extend([
            format!("noise_{s}_mean"),
            format!("noise_{s}_ci_lo"),
            format!("noise_{s}_ci_hi"),
        ]);
    }
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut out = head.join(",") + "\n";
    for r in rows {
        let mut cells = vec![
            format!("\"{}\"", r.label.replace('"', "'")),
            r.seeds.to_string(),
            (!r.unfinished).to_string(),
            r.final_return.mean.to_string(),
            r.final_return.lo.to_string(),
            r.final_return.hi.to_string(),
            r.final_iqm.to_string(),
            r.best_return.mean.to_string(),
            r.best_return.lo.to_string(),
            r.best_return.hi.to_string(),
            opt(r.final_success.map(|e| e.mean)),
            opt(r.final_success.map(|e| e.lo)),
            opt(r.final_success.map(|e| e.hi)),
            r.reached.to_string(),
            opt(r.steps_to_threshold),
            opt(r.wall_to_threshold),
            r.env_steps.to_string(),
            r.train_seconds.to_string(),
            opt(r.wall_seconds),
            opt(r.cloning_seconds),
        ];
        for sigma in &levels {
            let e = noise_at(r, *sigma);
            cells.extend([e.map(|e| e.mean), e.map(|e| e.lo), e.map(|e| e.hi)].map(opt));
        }
        out.push_str(&(cells.join(",") + "\n"));
    }
    out
}
