//! The sweep file and what it expands to: one trial per combination of variant, grid point
//! and seed, each a `wormnet train` command line with its own run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use wormnet_agent::checkpoint::{self, Sidecar};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// No checkpoint: start it (anything left in the directory predates its first checkpoint).
    New,
    /// A `latest` checkpoint short of the budget: `--resume` it.
    Partial,
    /// Trained to its budget: skip it.
    Finished,
}

/// How far the run in `run_dir` got, from its `latest` checkpoint and its config.
pub fn progress(run_dir: &Path) -> Progress {
    let Ok(sidecar) = checkpoint::load_sidecar(&run_dir.join("latest.json")) else {
        return Progress::New;
    };
    let sidecar: Sidecar = sidecar;
    let total = TrainConfig::load(&run_dir.join("config.toml"))
        .map(|c| c.run.total_steps)
        .unwrap_or(sidecar.config.run.total_steps);
    if sidecar.global_step >= total {
        Progress::Finished
    } else {
        Progress::Partial
    }
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
