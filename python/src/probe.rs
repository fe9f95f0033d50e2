//! `_panic_probe`: an env that panics on purpose, registered only in the Python module, so that
//! the Python tests can show a panicking env raising `RuntimeError` instead of aborting the
//! interpreter. Its name starts with `_`, so the `wormnet` package does not register it with
//! Gymnasium.

use wormnet_sim::serde::Deserialize;
use wormnet_sim::{parse_options, Env, EnvError, EnvSpec, Frame, Space, Step};

/// Registry name.
pub const NAME: &str = "_panic_probe";

/// Registry summary.
pub const SUMMARY: &str =
    "test probe: panics in step `panic_at_step` (or in reset with panic_in_reset = true)";

/// Where the probe panics.
#[derive(Debug, Default, Deserialize)]
#[serde(crate = "wormnet_sim::serde", deny_unknown_fields, default)]
struct ProbeOptions {
    /// The step (counted from 1 after each reset) that panics; 0 never panics in step.
    panic_at_step: u32,
    /// Panic in reset instead.
    panic_in_reset: bool,
}

/// One counter as the observation, two actions that do nothing.
pub struct PanicProbe {
    spec: EnvSpec,
    options: ProbeOptions,
    steps: u32,
}

impl PanicProbe {
    /// From the registry's options table.
    pub fn from_options(options: &toml::Table) -> Result<PanicProbe, EnvError> {
        let options: ProbeOptions = parse_options(NAME, options)?;
        let space = |s: Result<Space, _>| {
            s.map_err(|e| EnvError::Build {
                env: NAME.to_string(),
                message: format!("{e}"),
            })
        };
        let spec = EnvSpec {
            name: NAME.to_string(),
            observation_space: space(Space::uniform(1, 0.0, 1e6))?,
            action_space: space(Space::discrete(2))?,
            dt: 1.0,
            max_episode_steps: Some(100),
            observation_names: vec!["steps".to_string()],
            action_names: vec!["nothing".to_string()],
            clip_actions: false,
            survival_is_success: false,
            image: None,
        };
        Ok(PanicProbe {
            spec,
            options,
            steps: 0,
        })
    }
}

impl Env for PanicProbe {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, _seed: Option<u64>, obs: &mut [f32]) {
        assert!(!self.options.panic_in_reset, "the probe panics in reset");
        self.steps = 0;
        obs[0] = 0.0;
    }

    fn step(&mut self, _action: &[f32], obs: &mut [f32]) -> Step {
        self.steps += 1;
        assert!(
            self.steps != self.options.panic_at_step,
            "the probe panics at step {}",
            self.steps
        );
        obs[0] = self.steps as f32;
        Step::default()
    }

    fn frame(&self) -> Frame {
        Frame::default()
    }
}
