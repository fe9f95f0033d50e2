//! The sweep file and what it expands to: one trial per combination of variant, grid point
//! and seed, each a `wormnet train` command line with its own run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use wormnet_agent::checkpoint::{self, Sidecar};
use wormnet_agent::compare::runs::flatten;
use wormnet_agent::config::{Override, TrainConfig};

/// A sweep file (`sweeps/*.toml`): a base config, seeds and axes over dotted config keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The base experiment config, relative to the sweep file.
    pub config: PathBuf,
    /// One trial per seed (the seed axis); `run.seed` of each trial.
    #[serde(default = "one_seed")]
    pub seeds: Vec<u64>,
    /// Overrides for every trial, e.g. `{ "run.total_steps" = 50000 }`.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Every combination of these keys' values is a grid point (a list axis is a grid of one).
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Alternatives crossed with the grid: each names its own config and/or overrides (e.g.
    /// an LSTM baseline that needs `units` where the NCP has a `wiring`).
    #[serde(default)]
    pub variant: Vec<Variant>,
    /// Trials run at once by the local executor (default: cores ÷ threads per trial).
    #[serde(default)]
    pub parallel: Option<usize>,
}

fn one_seed() -> Vec<u64> {
    vec![1]
}

/// One `[[variant]]` of a sweep file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name in trial names and report groups.
    pub name: String,
    /// Its config instead of the base one, relative to the sweep file.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Its overrides, laid over the sweep's `set`.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Unique, file-name safe: `variant-key=value-…-s<seed>`.
    pub id: String,
    /// The config it starts from.
    pub config: PathBuf,
    /// Its overrides (sweep `set`, variant `set`, grid point), in that order.
    pub overrides: Vec<Override>,
    /// `run.seed`.
    pub seed: u64,
}

impl Trial {
    /// The `wormnet` arguments that start it fresh in `run_dir`.
    pub fn fresh_args(&self, run_dir: &Path) -> Vec<String> {
        let mut args = vec![
            "train".to_string(),
            self.config.display().to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--run-dir".into(),
            run_dir.display().to_string(),
            "--quiet".into(),
        ];
        for o in &self.overrides {
            args.push("--set".into());
            args.push(format!("{}={}", o.key.join("."), o.value_arg()));
        }
        args
    }

    /// Its resolved config (validated exactly as `wormnet train` will).
    pub fn resolved(&self) -> Result<TrainConfig> {
        let mut config = TrainConfig::load_with(&self.config, &self.overrides)
            .with_context(|| format!("trial {}", self.id))?;
        config.run.seed = self.seed;
        Ok(config)
    }
}

/// Where a trial's run directory stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// No checkpoint at all: start it (anything left in the directory predates its first
    /// checkpoint).
    New,
    /// A `latest` checkpoint short of the budget: `--resume` it.
    Partial,
    /// Trained to its budget: skip it.
    Finished,
    /// It has a checkpoint that cannot be read (why): kept as it is, neither trained over nor
    /// deleted, so a format change or a read error never costs a trial.
    Unreadable(String),
}

/// What an existing trial was trained with and how far it got.
pub struct Existing {
    /// Its resolved config: its `config.toml` (what `--resume` continues with), else the one
    /// its checkpoint recorded.
    pub config: TrainConfig,
    /// Env steps its `latest` checkpoint holds.
    pub global_step: u64,
}

impl Existing {
    /// Finished or partial, from its budget.
    pub fn progress(&self) -> Progress {
        if self.global_step >= self.config.run.total_steps {
            Progress::Finished
        } else {
            Progress::Partial
        }
    }
}

/// The trial in `run_dir`: `None` when it has no checkpoint at all (`latest.json` and
/// `best.json` both absent), an error naming the file and why when one cannot be read.
pub fn existing(run_dir: &Path) -> Result<Option<Existing>> {
    let latest = run_dir.join("latest.json");
    let mut any = false;
    for name in ["latest.json", "best.json"] {
        let path = run_dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => any = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
    }
    if !any {
        return Ok(None);
    }
    if std::fs::symlink_metadata(&latest).is_err() {
        bail!(
            "{} has a best checkpoint but no latest.json to resume from",
            run_dir.display()
        );
    }
    let sidecar: Sidecar = checkpoint::load_sidecar(&latest)?;
    let edited = run_dir.join("config.toml");
    let config = match std::fs::symlink_metadata(&edited) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => sidecar.config,
        _ => TrainConfig::load_record(&edited)?,
    };
    Ok(Some(Existing {
        config,
        global_step: sidecar.global_step,
    }))
}

/// How far the run in `run_dir` got, from its `latest` checkpoint and its config.
pub fn progress(run_dir: &Path) -> Progress {
    match existing(run_dir) {
        Ok(None) => Progress::New,
        Ok(Some(e)) => e.progress(),
        Err(e) => Progress::Unreadable(format!("{e:#}")),
    }
}

/// Fields a trial may differ in from its sweep's resolved config without changing what it
/// learns: its threads and env workers (the sweep picks them by how many trials share the
/// machine; another thread count sums gradients in another order, which moves the last
/// bits, not the statistics).
const SAME_RESULTS: &[&str] = &["run.threads", "env.workers"];

/// The dotted keys where `trained` (an existing trial's config) differs from `wanted` (the
/// sweep file's resolved config for it), each as `key: old -> new`.
pub fn config_changes(trained: &TrainConfig, wanted: &TrainConfig) -> Vec<String> {
    // A run keeps the circuit its wiring file held (`PolicyConfig::embed_circuits`): the file
    // is compared as it reads now, so an edited circuit counts as a change. A file that cannot
    // be read stays a path, which differs too; training it names the error.
    let mut wanted = wanted.clone();
    wanted.policy.embed_circuits().ok();
    let (old, new) = (flatten(&trained.to_toml()), flatten(&wanted.to_toml()));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| !SAME_RESULTS.contains(&k.as_str()))
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.map_or("(unset)".to_string(), Clone::clone);
            format!("{k}: {} -> {}", show(old.get(k)), show(new.get(k)))
        })
        .collect()
}

impl SweepFile {
    /// Reads a sweep file; configs in it become paths relative to the current directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        let mut sweep: SweepFile = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "sweep file {}: {}",
                path.display(),
                wormnet_agent::config::toml_error(&e, Some(&text))
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        // Absolute paths: trials may run in another directory (a Ray worker, a Slurm node).
        let locate = |config: &Path, field: &str| {
            base.join(config).canonicalize().with_context(|| {
                format!(
                    "sweep file {}: {field}: cannot find {}",
                    path.display(),
                    config.display()
                )
            })
        };
        sweep.config = locate(&sweep.config, "config")?;
        for v in &mut sweep.variant {
            if let Some(c) = &v.config {
                v.config = Some(locate(c, &format!("variant {}: config", v.name))?);
            }
        }
        if sweep.seeds.is_empty() {
            bail!(
                "sweep file {}: seeds: give at least one seed",
                path.display()
            );
        }
        if let Some((key, _)) = sweep.grid.iter().find(|(_, values)| values.is_empty()) {
            bail!(
                "sweep file {}: grid.{key}: give at least one value",
                path.display()
            );
        }
        if sweep.parallel == Some(0) {
            bail!(
                "sweep file {}: parallel: must be at least 1",
                path.display()
            );
        }
        Ok(sweep)
    }

    /// Every trial, in a stable order: seed, then variant, then grid point.
    pub fn trials(&self) -> Result<Vec<Trial>> {
        let parse = |key: &str, value: &toml::Value| -> Result<Override> {
            Override::new(key, value.clone()).map_err(|e| anyhow::anyhow!("sweep key `{key}`: {e}"))
        };
        let common: Vec<Override> = self
            .set
            .iter()
            .map(|(k, v)| parse(k, v))
            .collect::<Result<_>>()?;
        // Grid points: the cartesian product of the axes, in key order.
        let mut points: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
        for (key, values) in &self.grid {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push((key.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        let variants: Vec<Option<&Variant>> = if self.variant.is_empty() {
            vec![None]
        } else {
            self.variant.iter().map(Some).collect()
        };
        // Seed outermost: the first trials already cover every variant and grid point, so a
        // sweep cut short still compares them all.
        let mut trials = Vec::new();
        for &seed in &self.seeds {
            for variant in &variants {
                for point in &points {
                    let mut overrides = common.clone();
                    let mut name = Vec::new();
                    if let Some(v) = variant {
                        for (k, value) in &v.set {
                            overrides.push(parse(k, value)?);
                        }
                        name.push(v.name.clone());
                    }
                    for (k, value) in point {
                        overrides.push(parse(k, value)?);
                        let short = k.rsplit('.').next().unwrap_or(k);
                        let value = match value {
                            toml::Value::String(s) => s.clone(),
                            v => v.to_string(),
                        };
                        name.push(format!("{short}={value}"));
                    }
                    name.push(format!("s{seed}"));
                    trials.push(Trial {
                        id: file_safe(&name.join("-")),
                        config: variant
                            .and_then(|v| v.config.clone())
                            .unwrap_or_else(|| self.config.clone()),
                        overrides,
                        seed,
                    });
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(t) = trials.iter().find(|t| !seen.insert(&t.id)) {
            bail!(
                "two trials are both named {}: give the variants distinct names",
                t.id
            );
        }
        Ok(trials)
    }
}

/// Keeps letters, digits and `=._-`; anything else becomes `_`.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "=._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(text: &str) -> SweepFile {
        let dir = tempfile::tempdir().unwrap();
        for config in ["base.toml", "other.toml", "c.toml"] {
            std::fs::write(dir.path().join(config), "").unwrap();
        }
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        SweepFile::load(&path).unwrap()
    }

    #[test]
    fn grid_variants_and_seeds_multiply_in_a_stable_order() {
        let s = sweep(
            r#"
config = "base.toml"
seeds = [1, 2]
set = { "run.total_steps" = 100 }
[grid]
"policy.actor.cell" = ["ltc", "cfc"]
"ppo.learning_rate" = [0.001]
[[variant]]
name = "a"
[[variant]]
name = "b"
config = "other.toml"
set = { "ppo.epochs" = 2 }
"#,
        );
        let trials = s.trials().unwrap();
        let ids: Vec<&str> = trials.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "a-cell=ltc-learning_rate=0.001-s1",
                "a-cell=cfc-learning_rate=0.001-s1",
                "b-cell=ltc-learning_rate=0.001-s1",
                "b-cell=cfc-learning_rate=0.001-s1",
                "a-cell=ltc-learning_rate=0.001-s2",
                "a-cell=cfc-learning_rate=0.001-s2",
                "b-cell=ltc-learning_rate=0.001-s2",
                "b-cell=cfc-learning_rate=0.001-s2",
            ]
        );
        let b = &trials[2];
        assert!(b.config.ends_with("other.toml"));
        let args = b.fresh_args(Path::new("D"));
        let sets: Vec<&String> = args.iter().skip_while(|a| *a != "--set").collect();
        assert_eq!(
            sets.iter()
                .filter(|a| *a != &"--set")
                .map(|a| a.as_str())
                .collect::<Vec<_>>(),
            [
                "run.total_steps=100",
                "ppo.epochs=2",
                "policy.actor.cell=ltc",
                "ppo.learning_rate=0.001"
            ]
        );
    }

    const CONFIG: &str = "[env]\nname = \"cartpole\"\n[policy.actor]\ncell = \"ltc\"\n\
        wiring = { kind = \"auto_ncp\", units = 8, output_size = 2 }\n";

    #[test]
    fn changed_settings_are_named_key_by_key_but_threads_are_not() {
        let config = |extra: &str| {
            TrainConfig::parse(&format!("{CONFIG}{extra}"), Path::new("c.toml")).unwrap()
        };
        let old = config("[ppo]\nlearning_rate = 0.0003\n[run]\nthreads = 1\n");
        let new = config("[ppo]\nlearning_rate = 0.001\n[run]\nthreads = 2\n");
        assert_eq!(
            config_changes(&old, &new),
            ["ppo.learning_rate: 0.0003 -> 0.001"]
        );
        assert!(config_changes(&old, &old).is_empty());
        let named = config("[run]\nname = \"x\"\n");
        assert_eq!(
            config_changes(&config(""), &named),
            ["run.name: (unset) -> \"x\""]
        );
    }

    #[test]
    fn only_a_directory_without_any_checkpoint_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("t");
        assert_eq!(progress(&run), Progress::New);
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("metrics.csv"), "global_step\n").unwrap();
        assert_eq!(progress(&run), Progress::New);
        // A checkpoint that cannot be read is reported, with the file and the reason.
        std::fs::write(run.join("latest.json"), "{\"format\": 2, \"tens").unwrap();
        let Progress::Unreadable(why) = progress(&run) else {
            panic!("a corrupt latest.json is not new");
        };
        assert!(
            why.contains("latest.json") && why.contains("corrupt"),
            "{why}"
        );
        std::fs::remove_file(run.join("latest.json")).unwrap();
        std::fs::create_dir(run.join("latest.json")).unwrap();
        assert!(matches!(progress(&run), Progress::Unreadable(_)));
        std::fs::remove_dir(run.join("latest.json")).unwrap();
        std::fs::write(run.join("best.json"), "{}").unwrap();
        let Progress::Unreadable(why) = progress(&run) else {
            panic!("a best checkpoint without latest is not new");
        };
        assert!(why.contains("no latest.json"), "{why}");
    }

    #[test]
    fn duplicate_names_and_empty_axes_are_errors() {
        let s =
            sweep("config = \"c.toml\"\n[[variant]]\nname = \"x\"\n[[variant]]\nname = \"x\"\n");
        assert!(s.trials().unwrap_err().to_string().contains("x-s1"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.toml"), "").unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "config = \"c.toml\"\n[grid]\n\"ppo.epochs\" = []\n").unwrap();
        let e = SweepFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("grid.ppo.epochs"), "{e}");
        std::fs::write(&path, "config = \"c.toml\"\nseed = [1]\n").unwrap();
        let e = SweepFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("seed") && e.contains("s.toml"), "{e}");
        std::fs::write(&path, "config = \"missing.toml\"\n").unwrap();
        let e = SweepFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("config: cannot find missing.toml"), "{e}");
    }
}
