//! What a run directory says about how training went, and runs grouped by config minus the
//! seed, each group labelled by how it differs from the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::TrainConfig;
use crate::inspect::plot::read_metrics;
use crate::metrics::names;
use crate::search::{self, StopReason};

/// What a run directory says about how training went.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The run directory.
    pub dir: PathBuf,
    /// Its resolved config.
    pub config: TrainConfig,
    /// Every evaluation: (env step, mean return, success rate if the env defines success).
    pub evals: Vec<(f64, f64, Option<f64>)>,
    /// Per logged step: (step, training seconds so far — rollouts and updates only —, wall
    /// seconds so far where the run logged them).
    pub times: Vec<(f64, f64, Option<f64>)>,
    /// Robustness: (σ, success rate or mean return) per observation-noise level evaluated.
    pub noise: Vec<(f32, f64)>,
    /// Wall seconds of the cloning before PPO (`imitation.before_ppo`), from
    /// `RUN/imitation/imitation.csv`; already inside the run's wall seconds.
    pub cloning_seconds: Option<f64>,
    /// How it was trained: PPO, or `wormnet search` (a `search.csv` beside the metrics).
    pub method: Method,
}

/// How a run was trained: part of its group, so PPO and search runs of one config compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `wormnet train`.
    Ppo,
    /// `wormnet search`, and how it ended (`None`: still running, or killed).
    Search(Option<StopReason>),
}

impl Method {
    /// Of the run in `dir`: search where it holds a search log.
    fn of(dir: &Path) -> Method {
        if dir.join(search::LOG).is_file() {
            Method::Search(search::stop_reason(dir))
        } else {
            Method::Ppo
        }
    }

    /// `ppo` or `search`, as group labels say it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ppo => "ppo",
            Method::Search(_) => "search",
        }
    }
}

impl RunRecord {
    /// Reads `config.toml` and `metrics.csv` of a run directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut config = TrainConfig::load_record(&dir.join("config.toml"))?;
        let method = Method::of(dir);
        if matches!(method, Method::Search(_)) && !records(dir, "search", "confirm_episodes") {
            // A search from before confirmations: its evaluations decided alone.
            config.search.confirm_episodes = 0;
        }
        let (header, rows) = read_metrics(&dir.join("metrics.csv"))?;
        let col = |name: &str| header.iter().position(|h| h == name);
        let step = col("global_step")
            .with_context(|| format!("{}: metrics.csv has no global_step", dir.display()))?;
        let cell =
            |row: &[Option<f64>], c: Option<usize>| c.and_then(|c| row.get(c).copied().flatten());
        let (ret, success) = (col(names::EVAL_MEAN_RETURN), col(names::EVAL_SUCCESS_RATE));
        let (rollout, update) = (col(names::ROLLOUT_SECONDS), col(names::UPDATE_SECONDS));
        let wall = col(names::WALL_SECONDS);
        let mut evals = Vec::new();
        let mut times = Vec::new();
        let mut total = 0.0;
        for row in &rows {
            let Some(s) = cell(row, Some(step)) else {
                continue;
            };
            total += cell(row, rollout).unwrap_or(0.0) + cell(row, update).unwrap_or(0.0);
            times.push((s, total, cell(row, wall)));
            if let Some(r) = cell(row, ret) {
                evals.push((s, r, cell(row, success)));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            evals,
            times,
            noise: Vec::new(),
            cloning_seconds: cloning_seconds(dir),
            method,
        })
    }

    /// The method and the config with the seed and run name taken out: runs with equal keys
    /// form a group. Unfinished runs form groups of their own: a run stopped short of its
    /// budget must not pass for a final result in a finished group's statistics.
    fn group_key(&self) -> String {
        let mut c = self.config.clone();
        c.run.seed = 0;
        c.run.name = None;
        // First, before any table, so that `flatten` reads it as a top-level key.
        let mut key = format!("method = \"{}\"\n{}", self.method.name(), c.to_toml());
        if self.unfinished().is_some() {
            key.push_str("\n# unfinished\n");
        }
        key
    }

    /// Env steps done and `run.total_steps`, for a run whose `metrics.csv` ends short of its
    /// budget (stopped or still training); `None` for a finished run. A search run has no step
    /// budget (total 0): it is unfinished unless its log says it spent its budget or solved.
    pub fn unfinished(&self) -> Option<(u64, u64)> {
        let done = self.times.last().map_or(0.0, |t| t.0);
        if let Method::Search(stop) = self.method {
            return (!stop.is_some_and(StopReason::finished)).then_some((done as u64, 0));
        }
        let total = self.config.run.total_steps;
        (done < total as f64).then_some((done as u64, total))
    }

    /// Steps and wall seconds (where logged) at the first evaluation reaching `threshold`.
    pub(crate) fn to_threshold(&self, threshold: f64) -> Option<(f64, Option<f64>)> {
        let &(step, _, _) = self.evals.iter().find(|(_, r, _)| *r >= threshold)?;
        let wall = self.times.iter().find(|t| t.0 >= step).and_then(|t| t.2);
        Some((step, wall))
    }
}

/// Whether the run in `dir` recorded `table.key` in its `config.toml`: a setting added since is
/// absent from older runs' records, which ran without it.
fn records(dir: &Path, table: &str, key: &str) -> bool {
    std::fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get(table).and_then(|t| t.get(key)).is_some())
}

/// The last `wall_seconds` of `RUN/imitation/imitation.csv`, if the run cloned an expert first.
fn cloning_seconds(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("imitation").join(crate::imitation::LOG)).ok()?;
    let mut lines = text.lines();
    let column = lines.next()?.split(',').position(|h| h == "wall_seconds")?;
    lines.last()?.split(',').nth(column)?.parse().ok()
}

/// The run directories under `roots`: each root that is a run directory (`config.toml` and
/// `metrics.csv`), else those found below it (a sweep directory's `trials/`, a `runs/` folder).
pub fn find_runs(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if dir.join("config.toml").is_file() && dir.join("metrics.csv").is_file() {
            out.push(dir.to_path_buf());
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            walk(&sub, depth - 1, out);
        }
    }
    let mut runs = Vec::new();
    for root in roots {
        if !root.is_dir() {
            bail!(
                "{} is not a directory (give run or sweep directories)",
                root.display()
            );
        }
        let before = runs.len();
        walk(root, 3, &mut runs);
        if runs.len() == before {
            bail!(
                "{}: no run directory (config.toml + metrics.csv) in or below it",
                root.display()
            );
        }
    }
    Ok(runs)
}

/// Runs that differ only in their seed, under a label saying how the group differs from
/// the others.
pub struct Group {
    /// `cell=ltc`, a sweep trial's name without its seed, or the env name for a lone group.
    pub label: String,
    /// Its runs, one per seed.
    pub runs: Vec<RunRecord>,
}

/// Groups runs by config minus the seed, in the order each group first appears.
pub fn group(runs: Vec<RunRecord>) -> Vec<Group> {
    let mut keys: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    for run in runs {
        let key = run.group_key();
        if !by_key.contains_key(&key) {
            keys.push(key.clone());
        }
        by_key.entry(key).or_default().push(run);
    }
    let flat: Vec<BTreeMap<String, String>> = keys.iter().map(|k| flatten(k)).collect();
    keys.iter()
        .zip(&flat)
        .map(|(key, fields)| {
            let runs = by_key.remove(key).expect("every key has runs");
            let mut label =
                trial_name(&runs).unwrap_or_else(|| difference_label(fields, &flat, &runs[0]));
            if let Some(mark) = unfinished_mark(&runs) {
                label = format!("{label} ({mark})");
            }
            Group { label, runs }
        })
        .collect()
}

/// `unfinished: 76,800 of 100,000 steps` (one run) or `unfinished: 3 runs, 12,800–76,800 of
/// 100,000 steps`, for a group of unfinished runs; `None` for finished ones.
fn unfinished_mark(runs: &[RunRecord]) -> Option<String> {
    let steps: Vec<(u64, u64)> = runs
        .iter()
        .map(RunRecord::unfinished)
        .collect::<Option<_>>()?;
    let lo = steps.iter().map(|s| s.0).min()?;
    let hi = steps.iter().map(|s| s.0).max()?;
    let total = steps.iter().map(|s| s.1).max()?;
    if total == 0 {
        return Some(format!("unfinished: stopped after {} steps", thousands(hi)));
    }
    Some(match steps.len() {
        1 => format!(
            "unfinished: {} of {} steps",
            thousands(lo),
            thousands(total)
        ),
        n if lo == hi => format!(
            "unfinished: {n} runs, {} of {} steps",
            thousands(lo),
            thousands(total)
        ),
        n => format!(
            "unfinished: {n} runs, {}–{} of {} steps",
            thousands(lo),
            thousands(hi),
            thousands(total)
        ),
    })
}

/// `76800` → `76,800`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The sweep trial name shared by every run of a group (`trials/cell=ltc-s3` → `cell=ltc`).
fn trial_name(runs: &[RunRecord]) -> Option<String> {
    let names: Vec<String> = runs
        .iter()
        .map(|r| {
            let name = r.dir.file_name()?.to_str()?;
            let (stem, seed) = name.rsplit_once("-s")?;
            seed.parse::<u64>().ok()?;
            Some(stem.to_string())
        })
        .collect::<Option<_>>()?;
    let first = names.first()?;
    (in_sweep_trials(runs) && names.iter().all(|n| n == first)).then(|| first.clone())
}

fn in_sweep_trials(runs: &[RunRecord]) -> bool {
    runs.iter().all(|r| {
        r.dir
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "trials")
    })
}

/// The fields whose values differ between groups, as `key=value` (last key part only).
fn difference_label(
    fields: &BTreeMap<String, String>,
    all: &[BTreeMap<String, String>],
    first: &RunRecord,
) -> String {
    let differing: Vec<String> = fields
        .iter()
        .filter(|(k, v)| all.iter().any(|other| other.get(*k) != Some(v)))
        .map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            let v = v.trim_matches('"');
            let v = if v.chars().count() > 24 {
                format!("{}…", v.chars().take(24).collect::<String>())
            } else {
                v.to_string()
            };
            format!("{short}={v}")
        })
        .collect();
    if differing.is_empty() {
        let method = match first.method {
            Method::Ppo => "",
            Method::Search(_) => " search",
        };
        format!(
            "{} {:?}{method}",
            first.config.env.name, first.config.policy.actor.cell
        )
        .to_lowercase()
    } else {
        differing.join(", ")
    }
}

/// A TOML document as dotted keys → values (`ppo.learning_rate` → `0.0003`): what two
/// configs differ in, key by key.
pub fn flatten(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                v => {
                    out.insert(key, v.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        walk("", &table, &mut out);
    }
    out
}
