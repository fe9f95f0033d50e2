//! The environment contract: what an env declares ([`EnvSpec`]) and what it does ([`Env`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::frame::Frame;
use crate::space::{Space, SpaceError};

/// Everything a trainer, a renderer or an audit log needs to know about an env before running it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvSpec {
    /// Registry name, used in every error message about this env.
    pub name: String,
    /// What `reset`/`step` write into the observation buffer.
    pub observation_space: Space,
    /// What `step` accepts.
    pub action_space: Space,
    /// Simulated seconds per `step`; also the NCP's elapsed time per step.
    pub dt: f32,
    /// Time limit: the step that reaches it reports `truncated` (Gymnasium's `TimeLimit`).
    pub max_episode_steps: Option<u32>,
    /// One name per observation component (labels the NCP's sensory neurons).
    pub observation_names: Vec<String>,
    /// One name per action component (labels the NCP's motor neurons).
    pub action_names: Vec<String>,
    /// Whether out-of-bounds Box actions are clipped into the action space instead of being an
    /// error. Set it only where the original env clips (Pendulum-v1 clips its torque).
    pub clip_actions: bool,
    /// Whether an episode that ends without `terminated` counts as a success (cartpole
    /// balanced to the time limit, the vehicle's completed lap). Envs without such a notion
    /// (pendulum, the worm) leave it false and report no success rate; a goal task leaves it
    /// false and judges its episodes itself ([`Env::success`]).
    #[serde(default)]
    pub survival_is_success: bool,
    /// Where the observation begins with an image: its shape. The first `C·H·W` components
    /// are its pixels (channel-major, rows from the top), the rest are flat features; a policy
    /// with a convolutional encoder reads them so. None for flat observations.
    #[serde(default)]
    pub image: Option<ImageShape>,
}

/// The shape of an image at the start of an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 for grey).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// Components the image takes in the observation.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the image has no pixel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The longest time limit an env may declare: an evaluation of a policy that survives must
/// end in minutes, not days.
pub const MAX_EPISODE_STEPS: u32 = 1_000_000;

/// Why an [`EnvSpec`] is unusable, caught when an env is built rather than mid-training.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A space is malformed.
    #[error("env `{env}`: {which} space: {source}")]
    Space {
        /// Env name.
        env: String,
        /// `observation` or `action`.
        which: &'static str,
        /// What is wrong.
        source: SpaceError,
    },
    /// The names do not match the space's dimension.
    #[error("env `{env}`: {which} has {names} names for {dim} components")]
    Names {
        /// Env name.
        env: String,
        /// `observation` or `action`.
        which: &'static str,
        /// Number of names.
        names: usize,
        /// Space dimension.
        dim: usize,
    },
    /// The image does not fit the observation.
    #[error("env `{env}`: an image of {pixels} components does not fit an observation of {dim}")]
    Image {
        /// Env name.
        env: String,
        /// `C·H·W`.
        pixels: usize,
        /// Observation dimension.
        dim: usize,
    },
    /// The time limit is zero or so long that an evaluation would never end.
    #[error(
        "env `{env}`: max_episode_steps must be between 1 and {MAX_EPISODE_STEPS}, got {steps}"
    )]
    TimeLimit {
        /// Env name.
        env: String,
        /// The bad value.
        steps: u32,
    },
    /// `dt` is not a positive finite number.
    #[error("env `{env}`: dt must be positive and finite, got {dt}")]
    Dt {
        /// Env name.
        env: String,
        /// The bad value.
        dt: f32,
    },
}

impl EnvSpec {
    /// Length of one observation in the flat buffer.
    pub fn obs_dim(&self) -> usize {
        self.observation_space.dim()
    }

    /// Length of one action in the flat buffer.
    pub fn action_dim(&self) -> usize {
        self.action_space.dim()
    }

    /// The observation components after the image (all of them without one): what tables
    /// and plots of an episode show by name, leaving thousands of pixels out.
    pub fn flat_observations(&self) -> std::ops::Range<usize> {
        self.image.map_or(0, |i| i.len()).min(self.obs_dim())..self.obs_dim()
    }

    /// Checks spaces, names and `dt`, so that a bad env definition fails at construction.
    pub fn validate(&self) -> Result<(), SpecError> {
        for (which, space, names) in [
            (
                "observation",
                &self.observation_space,
                &self.observation_names,
            ),
            ("action", &self.action_space, &self.action_names),
        ] {
            space.validate().map_err(|source| SpecError::Space {
                env: self.name.clone(),
                which,
                source,
            })?;
            if names.len() != space.dim() {
                return Err(SpecError::Names {
                    env: self.name.clone(),
                    which,
                    names: names.len(),
                    dim: space.dim(),
                });
            }
        }
        if let Some(image) = self
            .image
            .filter(|i| i.is_empty() || i.len() > self.obs_dim())
        {
            return Err(SpecError::Image {
                env: self.name.clone(),
                pixels: image.len(),
                dim: self.obs_dim(),
            });
        }
        if !(self.dt > 0.0 && self.dt.is_finite()) {
            return Err(SpecError::Dt {
                env: self.name.clone(),
                dt: self.dt,
            });
        }
        if let Some(steps) = self
            .max_episode_steps
            .filter(|&s| s == 0 || s > MAX_EPISODE_STEPS)
        {
            return Err(SpecError::TimeLimit {
                env: self.name.clone(),
                steps,
            });
        }
        Ok(())
    }
}

/// What one `step` reports besides the observation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Reward for this transition.
    pub reward: f32,
    /// The task ended (MDP terminal state: do not bootstrap).
    pub terminated: bool,
    /// The episode was cut short from outside the MDP, e.g. a time limit (bootstrap).
    pub truncated: bool,
}

impl Step {
    /// Whether the episode is over for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// One environment instance. Plain Rust envs and Bevy apps both implement it.
///
/// Not `Send`: a Bevy `App` cannot move between threads, so vectorised envs are *built* on
/// their worker thread from a `Send` [`EnvFactory`](crate::registry::EnvFactory).
/// Envs need not check their inputs: the [`EpisodeDriver`](crate::episode::EpisodeDriver)
/// validates actions against the spec, enforces the time limit and checks outputs for NaN.
pub trait Env {
    /// The env's static description.
    fn spec(&self) -> &EnvSpec;

    /// Starts a new episode and writes its first observation into `obs` (`spec().obs_dim()`
    /// long). `Some(seed)` reseeds the env's RNG; `None` continues it (Gymnasium semantics).
    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]);

    /// Advances one `dt` with `action` (`spec().action_dim()` long, already inside the action
    /// space) and writes the next observation into `obs`.
    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step;

    /// The current scene as plain data, for renderers and episode recordings.
    fn frame(&self) -> Frame;

    /// What a hand-written controller with full knowledge of the scene would do now, written
    /// into `action` (`spec().action_dim()` long): the labels of imitation learning. False,
    /// and `action` untouched, for envs without such an expert.
    fn expert_action(&self, action: &mut [f32]) -> bool {
        let _ = action;
        false
    }

    /// Whether the episode that has just ended reached its goal — a goal task's success (the
    /// mountain car at its flag), asked once at the episode's end. None: the env does not
    /// judge; then [`EnvSpec::survival_is_success`] decides, or there is no success.
    fn success(&self) -> Option<bool> {
        None
    }
}

/// Env-side errors: bad options or a bad spec, reported when an env is constructed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// The options table has an unknown key or a value of the wrong type.
    #[error("env `{env}`: bad options: {message}")]
    Options {
        /// Env name.
        env: String,
        /// What serde reported, naming the option.
        message: String,
    },
    /// The env's spec is inconsistent.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Anything else that makes the env impossible to build.
    #[error("env `{env}`: {message}")]
    Build {
        /// Env name.
        env: String,
        /// What went wrong.
        message: String,
    },
}

/// Parses an env's TOML options into its options struct (which should use
/// `#[serde(deny_unknown_fields, default)]`), so unknown options fail with the env's name.
pub fn parse_options<T: DeserializeOwned>(env: &str, options: &toml::Table) -> Result<T, EnvError> {
    // One line: toml puts "in `key`" on a line of its own.
    T::deserialize(toml::Value::Table(options.clone())).map_err(|e| EnvError::Options {
        env: env.to_string(),
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// An error and its causes on one line, `outer: inner: …`, as anyhow's `{:#}` prints them, but
/// with each cause said once: a message that already ends with its cause's text (`cannot write
/// X: No space left on device`) is not followed by that text again. The CLI and the Python
/// bindings print errors through it, so both say the same words.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

/// The largest magnitude any numeric env option may have: far beyond every physical use
/// (masses in kg, lengths in m, gains), so `1e30` is an error rather than an overflow mid-run.
pub const MAX_OPTION_MAGNITUDE: f32 = 1e6;

/// Checks numeric options every physical env has: values that must be positive and finite, and
/// values that must be non-negative and finite, all at most [`MAX_OPTION_MAGNITUDE`]. The first
/// offender is an error naming it and the env, so each env does not hand-roll the same loop.
pub fn check_option_ranges(
    env: &str,
    positive: &[(&str, f32)],
    non_negative: &[(&str, f32)],
) -> Result<(), EnvError> {
    let bad = |message: String| {
        Err(EnvError::Options {
            env: env.to_string(),
            message,
        })
    };
    for &(name, value) in positive {
        if !(value > 0.0 && value.is_finite()) {
            return bad(format!("{name} must be positive and finite, got {value}"));
        }
    }
    for &(name, value) in non_negative {
        if !(value >= 0.0 && value.is_finite()) {
            return bad(format!("{name} must be >= 0 and finite, got {value}"));
        }
    }
    for &(name, value) in positive.iter().chain(non_negative) {
        if value > MAX_OPTION_MAGNITUDE {
            return bad(format!(
                "{name} must be at most {MAX_OPTION_MAGNITUDE:e}, got {value}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Opts {
        no_velocity: bool,
    }

    #[test]
    fn unknown_option_names_option_and_env() {
        let table: toml::Table = toml::from_str("no_velocty = true").unwrap();
        let err = parse_options::<Opts>("cartpole", &table).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cartpole"), "{text}");
        assert!(text.contains("no_velocty"), "{text}");
    }

    #[test]
    fn option_ranges_name_the_first_offender_and_the_env() {
        let ok = check_option_ranges("worm", &[("dt", 0.04)], &[("noise", 0.0)]);
        assert!(ok.is_ok());
        let e = check_option_ranges("worm", &[("dt", f32::NAN)], &[]).unwrap_err();
        assert!(
            e.to_string().contains("`worm`") && e.to_string().contains("dt"),
            "{e}"
        );
        let e = check_option_ranges("car", &[("mass", 1.0)], &[("noise", -0.1)]).unwrap_err();
        assert!(e.to_string().contains("noise must be >= 0"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let table: toml::Table = toml::from_str("no_velocity = 3").unwrap();
        assert!(parse_options::<Opts>("cartpole", &table).is_err());
        let table: toml::Table = toml::from_str("no_velocity = true").unwrap();
        assert!(
            parse_options::<Opts>("cartpole", &table)
                .unwrap()
                .no_velocity
        );
    }

    #[test]
    fn spec_validation_catches_name_mismatch() {
        let spec = EnvSpec {
            name: "x".into(),
            observation_space: Space::uniform(2, -1.0, 1.0).unwrap(),
            action_space: Space::discrete(2).unwrap(),
            dt: 0.1,
            max_episode_steps: None,
            observation_names: vec!["a".into()],
            action_names: vec!["push".into()],
            clip_actions: false,
            survival_is_success: false,
            image: None,
        };
        assert!(matches!(spec.validate(), Err(SpecError::Names { .. })));
        let image = |channels, height, width| ImageShape {
            channels,
            height,
            width,
        };
        let spec = EnvSpec {
            observation_names: vec!["a".into(), "b".into()],
            image: Some(image(1, 1, 2)),
            ..spec
        };
        assert!(spec.validate().is_ok());
        for bad in [image(1, 2, 2), image(0, 1, 1)] {
            let spec = EnvSpec {
                image: Some(bad),
                ..spec.clone()
            };
            assert!(matches!(spec.validate(), Err(SpecError::Image { .. })));
        }
    }
}
