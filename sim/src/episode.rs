//! One env run safely: action checks, the time limit, NaN checks, panic isolation and episode
//! statistics. VecEnv workers and single-env tools (record, watch) share this one place.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use crate::env::{Env, EnvSpec, Step};
use crate::space::Violation;

/// Return and length of a finished episode (Gymnasium's `RecordEpisodeStatistics`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    /// Which env of the batch finished.
    pub env_index: usize,
    /// Sum of the episode's rewards.
    pub episode_return: f64,
    /// Number of steps in the episode.
    pub length: u32,
    /// Whether it ended by termination (as opposed to truncation only).
    pub terminated: bool,
    /// Whether it succeeded: the env's own judgement ([`Env::success`]), else survival to the
    /// time limit where the spec says that is success; None where the env defines no success.
    #[serde(default)]
    pub success: Option<bool>,
}

/// What went wrong inside one env; always wrapped in a [`Fault`] that names the env.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// `reset` or `step` panicked; the env is unusable afterwards.
    Panicked {
        /// `reset`, `step` or `construction`.
        during: &'static str,
        /// The panic message.
        message: String,
    },
    /// An observation component is NaN or infinite.
    NonFiniteObservation {
        /// Component index.
        component: usize,
        /// Its name from the spec.
        name: String,
        /// The value.
        value: f32,
        /// `reset` or `step`.
        during: &'static str,
    },
    /// The reward is NaN or infinite.
    NonFiniteReward {
        /// The value.
        value: f32,
    },
    /// The action is not in the action space (and the spec does not clip, or it is NaN).
    InvalidAction(Violation),
    /// `step` was called before the first `reset` or after the episode ended.
    NeedsReset,
    /// An earlier fault left the env in an unknown state.
    Poisoned,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Panicked { during, message } => write!(f, "panicked during {during}: {message}"),
            FaultKind::NonFiniteObservation {
                component,
                name,
                value,
                during,
            } => write!(
                f,
                "{during} returned a non-finite observation: component {component} (`{name}`) = {value}"
            ),
            FaultKind::NonFiniteReward { value } => write!(f, "step returned a non-finite reward {value}"),
            FaultKind::InvalidAction(v) => write!(f, "action outside the action space: {v}"),
            FaultKind::NeedsReset => write!(f, "step called before reset (or after the episode ended)"),
            FaultKind::Poisoned => write!(f, "unusable after an earlier fault"),
        }
    }
}

/// A fault in one env of a batch, naming the env and its index so the user can find it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("env `{env}` #{index}: {kind}")]
pub struct Fault {
    /// Env name.
    pub env: String,
    /// Index in the batch.
    pub index: usize,
    /// What happened.
    pub kind: FaultKind,
}

/// What one driven step produced besides the observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// Reward and flags; `truncated` includes the spec's time limit.
    pub step: Step,
    /// Set when this step ended an episode.
    pub episode: Option<EpisodeStats>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    NeedsReset,
    Running,
    Broken,
}

/// Runs one [`Env`] under the contract's rules, so no env has to re-implement them.
pub struct EpisodeDriver {
    env: Box<dyn Env>,
    spec: EnvSpec,
    index: usize,
    phase: Phase,
    elapsed: u32,
    episode_return: f64,
    clipped: Vec<f32>,
}

impl EpisodeDriver {
    /// Wraps `env`, which is env `index` of its batch (used in error messages).
    pub fn new(env: Box<dyn Env>, index: usize) -> Self {
        let spec = env.spec().clone();
        let clipped = vec![0.0; spec.action_dim()];
        EpisodeDriver {
            env,
            spec,
            index,
            phase: Phase::NeedsReset,
            elapsed: 0,
            episode_return: 0.0,
            clipped,
        }
    }

    /// The wrapped env's spec.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// The wrapped env, e.g. for `frame()`.
    pub fn env(&self) -> &dyn Env {
        self.env.as_ref()
    }

    /// Steps taken in the current episode.
    pub fn elapsed(&self) -> u32 {
        self.elapsed
    }

    fn fault(&self, kind: FaultKind) -> Fault {
        Fault {
            env: self.spec.name.clone(),
            index: self.index,
            kind,
        }
    }

    fn broken(&mut self, kind: FaultKind) -> Fault {
        self.phase = Phase::Broken;
        self.fault(kind)
    }

    fn check_obs(&mut self, obs: &[f32], during: &'static str) -> Result<(), Fault> {
        if let Some(component) = obs.iter().position(|v| !v.is_finite()) {
            let name = self.spec.observation_names[component].clone();
            let value = obs[component];
            return Err(self.broken(FaultKind::NonFiniteObservation {
                component,
                name,
                value,
                during,
            }));
        }
        Ok(())
    }

    /// Starts an episode: `Some(seed)` reseeds the env, `None` continues its RNG.
    pub fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), Fault> {
        if self.phase == Phase::Broken {
            return Err(self.fault(FaultKind::Poisoned));
        }
        debug_assert_eq!(obs.len(), self.spec.obs_dim());
        let env = &mut self.env;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| env.reset(seed, obs))) {
            return Err(self.broken(FaultKind::Panicked {
                during: "reset",
                message: panic_message(payload.as_ref()),
            }));
        }
        self.check_obs(obs, "reset")?;
        self.phase = Phase::Running;
        self.elapsed = 0;
        self.episode_return = 0.0;
        Ok(())
    }

    /// Validates `action` (clipping it into a copy only if the spec says so; the caller's
    /// buffer is untouched), steps the env, applies the time limit and checks the outputs.
    pub fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Result<Transition, Fault> {
        match self.phase {
            Phase::Broken => return Err(self.fault(FaultKind::Poisoned)),
            Phase::NeedsReset => return Err(self.fault(FaultKind::NeedsReset)),
            Phase::Running => {}
        }
        if action.len() != self.spec.action_dim() {
            return Err(self.fault(FaultKind::InvalidAction(Violation::Length {
                expected: self.spec.action_dim(),
                got: action.len(),
            })));
        }
        let action = if self.spec.clip_actions {
            self.clipped.copy_from_slice(action);
            self.spec.action_space.clip(&mut self.clipped);
            &self.clipped[..]
        } else {
            action
        };
        if let Err(v) = self.spec.action_space.check(action) {
            return Err(self.fault(FaultKind::InvalidAction(v)));
        }
        let env = &mut self.env;
        let mut step = match catch_unwind(AssertUnwindSafe(|| env.step(action, obs))) {
            Ok(step) => step,
            Err(payload) => {
                return Err(self.broken(FaultKind::Panicked {
                    during: "step",
                    message: panic_message(payload.as_ref()),
                }))
            }
        };
        self.check_obs(obs, "step")?;
        if !step.reward.is_finite() {
            return Err(self.broken(FaultKind::NonFiniteReward { value: step.reward }));
        }
        self.elapsed += 1;
        self.episode_return += f64::from(step.reward);
        if let Some(limit) = self.spec.max_episode_steps {
            // Gymnasium's TimeLimit: truncated at the limit even if also terminated.
            if self.elapsed >= limit {
                step.truncated = true;
            }
        }
        let episode = if step.done() {
            self.phase = Phase::NeedsReset;
            Some(EpisodeStats {
                env_index: self.index,
                episode_return: self.episode_return,
                length: self.elapsed,
                terminated: step.terminated,
                success: self
                    .env
                    .success()
                    .or(self.spec.survival_is_success.then_some(!step.terminated)),
            })
        } else {
            None
        };
        Ok(Transition { step, episode })
    }

    /// [`EpisodeDriver::step`] with Gymnasium's SAME_STEP auto-reset: when the episode ends,
    /// its last observation goes to `final_obs` and `obs` holds the next episode's first one.
    pub fn step_autoreset(
        &mut self,
        action: &[f32],
        obs: &mut [f32],
        final_obs: &mut [f32],
    ) -> Result<Transition, Fault> {
        let transition = self.step(action, obs)?;
        if transition.step.done() {
            final_obs.copy_from_slice(obs);
            self.reset(None, obs)?;
        }
        Ok(transition)
    }
}

/// Text of a panic payload (`&str` or `String`), for fault messages.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}
