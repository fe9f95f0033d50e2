//! Recorded episodes: everything the watch/record/audit tools need to replay or inspect one
//! episode without re-running the simulation.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::{Env, EnvSpec};
use crate::episode::{EpisodeDriver, Fault};
use crate::frame::Frame;

/// Bumped when the file layout changes, so old files fail with a clear message.
pub const ROLLOUT_FORMAT_VERSION: u32 = 1;

/// One recorded step: the action taken and everything that followed from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutStep {
    /// The raw action the policy produced (before any clipping the spec asks for).
    pub action: Vec<f32>,
    /// Observation after the step.
    pub observation: Vec<f32>,
    /// Reward of the step.
    pub reward: f32,
    /// Task ended.
    pub terminated: bool,
    /// Time limit or other truncation.
    pub truncated: bool,
    /// The scene after the step.
    pub frame: Frame,
    /// The agent's internal state after acting (e.g. every NCP neuron), if recorded.
    pub internals: Option<Vec<f32>>,
}

/// A whole episode: spec, seed, initial state and every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// [`ROLLOUT_FORMAT_VERSION`] at write time.
    pub format_version: u32,
    /// The env's spec (names label observations and actions).
    pub spec: EnvSpec,
    /// Options the env was built with.
    pub options: toml::Table,
    /// Seed passed to `reset`.
    pub seed: u64,
    /// Names of the `internals` components (e.g. neuron names), if any.
    pub internal_names: Option<Vec<String>>,
    /// The group of each `internals` component, if known (a neuron's role: `sensory`,
    /// `inter`, `command`, `motor`): what the heatmaps group rows by, whatever the names.
    #[serde(default)]
    pub internal_roles: Option<Vec<String>>,
    /// Observation returned by `reset`.
    pub initial_observation: Vec<f32>,
    /// Scene after `reset`.
    pub initial_frame: Frame,
    /// Steps in order.
    pub steps: Vec<RolloutStep>,
}

/// Why a rollout could not be recorded, saved or loaded; names the file.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// File could not be read or written.
    #[error("rollout `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// File is not a valid rollout.
    #[error("rollout `{path}`: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Written by a different format version.
    #[error("rollout `{path}`: format version {found}, this build reads {ROLLOUT_FORMAT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The env faulted while recording.
    #[error(transparent)]
    Fault(#[from] Fault),
    /// Parses, but does not hold together (a spec that fails its checks, an observation or an
    /// action of the wrong length): an edited or truncated file.
    #[error("rollout `{path}`: {message}")]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
}

/// What a policy returns for one step while recording.
pub struct Decision {
    /// The action to take.
    pub action: Vec<f32>,
    /// Optional internals to store with the step.
    pub internals: Option<Vec<f32>>,
}

impl Rollout {
    /// Runs one episode of `env` from `seed` (at most `max_steps` steps) with `policy`, which
    /// sees each observation and returns an action plus optional internals.
    pub fn record(
        env: Box<dyn Env>,
        options: toml::Table,
        seed: u64,
        max_steps: usize,
        mut policy: impl FnMut(&[f32]) -> Decision,
    ) -> Result<Rollout, RolloutError> {
        let mut driver = EpisodeDriver::new(env, 0);
        let spec = driver.spec().clone();
        let mut obs = vec![0.0; spec.obs_dim()];
        driver.reset(Some(seed), &mut obs)?;
        let initial_observation = obs.clone();
        let initial_frame = driver.env().frame();
        let mut steps = Vec::new();
        for _ in 0..max_steps {
            let Decision { action, internals } = policy(&obs);
            let t = driver.step(&action, &mut obs)?;
            steps.push(RolloutStep {
                action,
                observation: obs.clone(),
                reward: t.step.reward,
                terminated: t.step.terminated,
                truncated: t.step.truncated,
                frame: driver.env().frame(),
                internals,
            });
            if t.step.done() {
                break;
            }
        }
        Ok(Rollout {
            format_version: ROLLOUT_FORMAT_VERSION,
            spec,
            options,
            seed,
            internal_names: None,
            internal_roles: None,
            initial_observation,
            initial_frame,
            steps,
        })
    }

    /// Sum of rewards.
    pub fn episode_return(&self) -> f64 {
        self.steps.iter().map(|s| f64::from(s.reward)).sum()
    }

    /// Writes JSON to a temporary name and renames it, so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), RolloutError> {
        let io = |source| RolloutError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut writer = BufWriter::new(file);
        serde_json::to_writer(&mut writer, self).map_err(|source| RolloutError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        writer.flush().map_err(io)?;
        drop(writer);
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a file written by [`Rollout::save`], checking the format version.
    pub fn load(path: &Path) -> Result<Rollout, RolloutError> {
        let file = std::fs::File::open(path).map_err(|source| RolloutError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_json::from_reader(BufReader::new(file)).map_err(|source| {
                RolloutError::Format {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let found = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        if found != ROLLOUT_FORMAT_VERSION {
            return Err(RolloutError::Version {
                path: path.to_path_buf(),
                found,
            });
        }
        let rollout: Rollout =
            serde_json::from_value(value).map_err(|source| RolloutError::Format {
                path: path.to_path_buf(),
                source,
            })?;
        rollout
            .check()
            .map_err(|message| RolloutError::Inconsistent {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(rollout)
    }

    /// Whether the parts agree with the spec: what readers index by without checking.
    fn check(&self) -> Result<(), String> {
        let spec = &self.spec;
        spec.validate().map_err(|e| e.to_string())?;
        let (o, a) = (spec.obs_dim(), spec.action_dim());
        if self.initial_observation.len() != o {
            return Err(format!(
                "the initial observation has {} components, the spec {o}",
                self.initial_observation.len()
            ));
        }
        for (t, step) in self.steps.iter().enumerate() {
            if step.observation.len() != o || step.action.len() != a {
                return Err(format!(
                    "step {t} has an observation of {} and an action of {} components, the \
                     spec {o} and {a}",
                    step.observation.len(),
                    step.action.len()
                ));
            }
        }
        Ok(())
    }
}
