//! The training config file: one TOML per experiment (`configs/*.toml`), parsed strictly so a
//! typo is an error that names the field and the file, and written back resolved into every
//! run directory so a run can always be reproduced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::PolicyConfig;
use crate::ppo::config::PpoConfig;

pub mod limits;
mod overrides;
pub mod search;

pub use overrides::Override;
pub use search::SearchConfig;

/// The text of a config file, or an error naming it.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

fn default_num_envs() -> usize {
    8
}
fn default_envs_per_app() -> usize {
    1
}

/// `[env]`: which environment, how many copies, and its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// Registry name (`wormnet info` lists the registered envs).
    pub name: String,
    /// Parallel envs N.
    #[serde(default = "default_num_envs")]
    pub num_envs: usize,
    /// Worker threads stepping them; absent, `run.threads` decides (and caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Envs sharing one Bevy `App` on a worker (one world each); the episodes, and so the run,
    /// are the same bit for bit whatever it is. Envs that are not Bevy envs ignore it, and so
    /// do the evaluation envs (an `App` each).
    #[serde(default = "default_envs_per_app")]
    pub envs_per_app: usize,
    /// Passed to the env's constructor; unknown keys are an error from the env.
    #[serde(default)]
    pub options: toml::Table,
    /// Options for evaluation envs, merged over `options` (e.g. held-out track seeds).
    #[serde(default)]
    pub eval_options: toml::Table,
}

fn default_seed() -> u64 {
    1
}
fn default_total_steps() -> u64 {
    100_000
}
fn default_device() -> String {
    "cpu".into()
}
fn default_every() -> usize {
    10
}
fn default_eval_episodes() -> usize {
    10
}

/// `[run]`: how long, where, and how often to evaluate and checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Run directory name under `runs/` (default: config name, seed and start time).
    #[serde(default)]
    pub name: Option<String>,
    /// Seeds libtorch, the envs and minibatch shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Environment steps (all envs together) to train for.
    #[serde(default = "default_total_steps")]
    pub total_steps: u64,
    /// `cpu` or `cuda` (or `cuda:N`).
    #[serde(default = "default_device")]
    pub device: String,
    /// The cores the run uses: env workers and update shards together never have more busy
    /// threads than this ([`crate::threads::ThreadBudget`]). Absent: every core this process
    /// may use. More than the cores is capped at the cores. The same seed and thread count give
    /// the same bits; another thread count sums the update's gradients in another order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Replaced by `threads`; kept only to say so.
    #[serde(default, skip_serializing)]
    pub update_threads: Option<toml::Value>,
    /// Write the `latest` checkpoint every this many updates. Envs are re-seeded at these
    /// boundaries, which is what makes a resumed run continue exactly like an uninterrupted one.
    #[serde(default = "default_every")]
    pub checkpoint_every: usize,
    /// Evaluate every this many updates (0 = only at the end).
    #[serde(default = "default_every")]
    pub eval_every: usize,
    /// Episodes per evaluation.
    #[serde(default = "default_eval_episodes")]
    pub eval_episodes: usize,
    /// Evaluate with the mode of the action distribution instead of samples.
    #[serde(default)]
    pub eval_deterministic: bool,
    /// Start from the weights and observation normaliser of this run's `best` (else
    /// `latest`) checkpoint, or of a checkpoint's `.json`, instead of fresh weights: fine-tuning.
    /// The optimizer starts afresh. The policy must have the same shape.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
}

impl Default for RunSection {
    fn default() -> Self {
        toml::from_str("").expect("every run field has a default")
    }
}

/// `[imitation]`: how `wormnet imitate` (and `wormnet train` with `before_ppo`) gathers
/// demonstrations from the env's expert and clones them, with DAgger-style data rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImitationConfig {
    /// `wormnet train` first clones the expert into `RUN/imitation` (a run directory of its
    /// own) and starts PPO from that policy; the run's wall time includes the cloning.
    pub before_ppo: bool,
    /// Data rounds. The expert drives the first; the policy cloned so far drives the rest
    /// (DAgger), so the data covers the states the policy itself gets into. The expert labels
    /// every step of every round.
    pub rounds: usize,
    /// Episodes per round, on the training tracks, run side by side.
    pub episodes: usize,
    /// Std of the noise added to whatever drives (expert or policy) before the env sees it, so
    /// the data shows recoveries from drifting off the line. Labels stay the expert's.
    pub action_noise: f32,
    /// Per-step correlation of that noise (an Ornstein–Uhlenbeck process: 0 is white noise;
    /// near 1 it pushes the same way for many steps, as a real drift does).
    pub noise_correlation: f32,
    /// Passes over all data gathered so far, after each round.
    pub epochs: usize,
    /// Steps per training sequence (backpropagation through time from the zero state).
    pub sequence_length: usize,
    /// First steps of a sequence that only warm the state up (not scored), except for
    /// sequences that start at an episode's start, where the zero state is the true one.
    pub burn_in: usize,
    /// Sequences per gradient step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Gradients are scaled to at most this global norm.
    pub max_grad_norm: f64,
}

impl Default for ImitationConfig {
    fn default() -> Self {
        ImitationConfig {
            before_ppo: false,
            rounds: 4,
            episodes: 16,
            action_noise: 0.3,
            noise_correlation: 0.9,
            epochs: 8,
            sequence_length: 32,
            burn_in: 8,
            batch_size: 16,
            learning_rate: 1e-3,
            max_grad_norm: 1.0,
        }
    }
}

impl ImitationConfig {
    /// The first field that cannot work, as `(field, why)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        // Upper bounds far beyond any use, so a typo is an error rather than an allocation
        // that cannot be made.
        let counts = [
            ("rounds", self.rounds, 10_000),
            ("episodes", self.episodes, 100_000),
            ("epochs", self.epochs, 100_000),
            ("sequence_length", self.sequence_length, 100_000),
            ("batch_size", self.batch_size, 100_000),
        ];
        for (field, value, most) in counts {
            if !(1..=most).contains(&value) {
                return Err((field, format!("must be between 1 and {most}, got {value}")));
            }
        }
        if self.burn_in >= self.sequence_length {
            return Err((
                "burn_in",
                format!(
                    "must be below sequence_length ({}), got {}",
                    self.sequence_length, self.burn_in
                ),
            ));
        }
        if !(self.action_noise >= 0.0 && self.action_noise.is_finite()) {
            return Err((
                "action_noise",
                format!("must be >= 0, got {}", self.action_noise),
            ));
        }
        if !(0.0..1.0).contains(&self.noise_correlation) {
            return Err((
                "noise_correlation",
                format!("must be in [0, 1), got {}", self.noise_correlation),
            ));
        }
        for (field, v) in [
            ("learning_rate", self.learning_rate),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err((field, format!("must be positive, got {v}")));
            }
        }
        Ok(())
    }
}

/// A whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Which env, how many copies, on how many threads.
    pub env: EnvSection,
    /// The actor NCP and the critic.
    pub policy: PolicyConfig,
    #[serde(default)]
    /// Every PPO knob.
    pub ppo: PpoConfig,
    #[serde(default)]
    /// Seed, budget, device, evaluation and checkpoint cadence.
    pub run: RunSection,
    #[serde(default)]
    /// Behavioural cloning of the env's expert (`wormnet imitate`).
    pub imitation: ImitationConfig,
    #[serde(default)]
    /// Adaptive random search over the circuit's parameters (`wormnet search`).
    pub search: SearchConfig,
}

/// A config that could not be read or does not make sense, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error (in the message, not a separate cause, so it is printed once).
        error: std::io::Error,
    },
    /// Not TOML, or a field of the wrong type or name (serde names it).
    #[error("config {path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What serde reported, naming the field.
        message: String,
    },
    /// A value out of range or inconsistent with another.
    #[error("config {path}: {field}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The dotted field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl TrainConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, path, &[])
    }

    /// Reads a config file with `--set` overrides laid over it (see [`Override`]), then
    /// validates the result exactly as a file: an unknown key is an error naming it.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        Self::parse_with(&text, path, overrides)
    }

    /// [`Self::parse`] with overrides applied to the TOML before it is read.
    pub fn parse_with(
        text: &str,
        path: &Path,
        overrides: &[Override],
    ) -> Result<Self, ConfigError> {
        let config = Self::read(text, path, overrides)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads a run directory's `config.toml`. wormnet wrote it, perhaps an older wormnet, so a
    /// setting retired since (what it did is in the run's checkpoints) is dropped rather than
    /// refused as in a config a person writes: old runs stay readable.
    pub fn load_record(path: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::read(&read_text(path)?, path, &[])?;
        config.forget_retired();
        config.validate(path)?;
        Ok(config)
    }

    /// Config text with `overrides` laid over it, deserialised but not yet validated; errors
    /// name the file and, where one brought the bad key or value, the override.
    fn read(text: &str, path: &Path, overrides: &[Override]) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(toml_error(&e, Some(text))))?;
        for o in overrides {
            o.apply(&mut table).map_err(&parse_error)?;
        }
        table.try_into().map_err(|e: toml::de::Error| {
            let message = toml_error(&e, None);
            match overrides.iter().find(|o| o.is_named_in(&message)) {
                Some(o) => parse_error(format!("--set {o}: {message}")),
                None => parse_error(message),
            }
        })
    }

    /// Drops the settings retired since a run recorded them: each is kept in the config only to
    /// refuse it in a config a person writes ([`Self::validate`]). A run's record is read
    /// through it ([`Self::load_record`], a checkpoint's sidecar).
    pub fn forget_retired(&mut self) {
        self.run.update_threads = None;
        self.ppo.log_std_init = None;
    }

    /// Checks values that serde cannot (ranges, divisibility).
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        if self.env.num_envs == 0 {
            return Err(invalid("env.num_envs", "must be at least 1".into()));
        }
        if self.env.workers == Some(0) {
            return Err(invalid("env.workers", "must be at least 1".into()));
        }
        if self.env.envs_per_app == 0 {
            return Err(invalid("env.envs_per_app", "must be at least 1".into()));
        }
        if self.run.total_steps == 0 {
            return Err(invalid("run.total_steps", "must be at least 1".into()));
        }
        if self.run.threads == Some(0) {
            return Err(invalid("run.threads", "must be at least 1".into()));
        }
        if self.run.update_threads.is_some() {
            return Err(invalid(
                "run.update_threads",
                "was replaced by run.threads (the cores the whole run uses; absent: all of \
                 them): remove it"
                    .into(),
            ));
        }
        if self.run.checkpoint_every == 0 {
            return Err(invalid("run.checkpoint_every", "must be at least 1".into()));
        }
        if self.run.eval_episodes == 0 {
            return Err(invalid("run.eval_episodes", "must be at least 1".into()));
        }
        self.ppo
            .validate(self.env.num_envs)
            .map_err(|e| invalid(&format!("ppo.{}", e.field), e.message))?;
        self.check_limits()
            .map_err(|(field, message)| invalid(&field, message))?;
        self.imitation
            .check()
            .map_err(|(field, message)| invalid(&format!("imitation.{field}"), message))?;
        self.search
            .check()
            .map_err(|(field, message)| invalid(&format!("search.{field}"), message))?;
        Ok(())
    }

    /// The first value past its bound ([`limits`]), as `(dotted field, why)`.
    fn check_limits(&self) -> Result<(), (String, String)> {
        let config = self;
        let env = &config.env;
        let run = &config.run;
        let every = limits::MAX_TOTAL_STEPS as usize;
        limits::counts(&[
            ("env.num_envs", env.num_envs, limits::MAX_ENVS),
            ("env.workers", env.workers.unwrap_or(1), limits::MAX_THREADS),
            ("env.envs_per_app", env.envs_per_app, limits::MAX_ENVS),
            ("run.threads", run.threads.unwrap_or(1), limits::MAX_THREADS),
            // Updates between checkpoints or evaluations: never more than the steps.
            ("run.checkpoint_every", run.checkpoint_every, every),
            ("run.eval_every", run.eval_every, every),
            (
                "run.eval_episodes",
                run.eval_episodes,
                limits::MAX_EVAL_EPISODES,
            ),
            ("ppo.epochs", config.ppo.epochs, 10_000),
            (
                "ppo.steps_per_rollout",
                config.ppo.steps_per_rollout,
                1 << 20,
            ),
        ])?;
        if run.total_steps > limits::MAX_TOTAL_STEPS {
            return Err(limits::at_most(
                "run.total_steps",
                limits::MAX_TOTAL_STEPS,
                run.total_steps,
            ));
        }
        let rollout = env.num_envs.saturating_mul(config.ppo.steps_per_rollout);
        if rollout > limits::MAX_ROLLOUT {
            return Err((
                "ppo.steps_per_rollout".into(),
                format!(
                    "env.num_envs × steps_per_rollout = {rollout} transitions per rollout; at most \
                     {}",
                    limits::MAX_ROLLOUT
                ),
            ));
        }
        if let Some(name) = &run.name {
            limits::check_run_name(name).map_err(|m| ("run.name".to_string(), m))?;
        }
        let log_std = config.policy.log_std_init;
        if log_std.is_nan() || log_std.abs() > 20.0 {
            return Err((
                "policy.log_std_init".into(),
                format!("must lie in [-20, 20], got {log_std}"),
            ));
        }
        // The config must be writable as TOML (into the run directory): a seed past 2^63 read
        // from a JSON sidecar is not.
        let value = toml::Value::try_from(config).map_err(|e| {
            (
                "config".to_string(),
                format!("cannot be written as TOML ({e}); is a number past 2^63?"),
            )
        })?;
        for section in ["policy", "ppo", "imitation", "search"] {
            if let Some(v) = value.get(section) {
                limits::check_floats(v, section)?;
            }
        }
        limits::check_ncp("policy.actor", &config.policy.actor)?;
        let critic = &config.policy.critic;
        limits::check_stack("policy.critic.hidden", &critic.hidden)?;
        if let Some(ncp) = &critic.ncp {
            limits::check_ncp("policy.critic.ncp", ncp)?;
        }
        if let Some(encoder) = &config.policy.encoder {
            limits::check_encoder(encoder)?;
        }
        Ok(())
    }

    /// The options for evaluation envs: `options` with `eval_options` laid over it.
    pub fn eval_env_options(&self) -> toml::Table {
        let mut options = self.env.options.clone();
        for (k, v) in &self.env.eval_options {
            options.insert(k.clone(), v.clone());
        }
        options
    }

    /// The config as TOML, as written into a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a parsed config serialises back to TOML")
    }
}

/// A TOML error on one line: with the text, `line L, column C (`the line`): message`; without
/// (a value deserialised after parsing), toml's own message and key path joined onto one line.
pub fn toml_error(e: &toml::de::Error, text: Option<&str>) -> String {
    let one_line = |m: &str| m.split_whitespace().collect::<Vec<_>>().join(" ");
    match (e.span(), text) {
        (Some(span), Some(text)) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[start..].chars().count() + 1;
            let source = text[start..].lines().next().unwrap_or("").trim();
            format!(
                "line {line}, column {column} (`{source}`): {}",
                one_line(e.message())
            )
        }
        _ => one_line(&e.to_string()),
    }
}

#[cfg(test)]
mod tests;
