//! The `[policy]` section of an experiment: the actor NCP, the critic, the timespan and how
//! actions are scaled, and why a policy cannot be built for an env.

use serde::{Deserialize, Serialize};
use wormnet_ncp::{NcpConfig, NcpError};

/// Which critic to train beside the NCP actor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticKind {
    /// A tanh MLP on the observation (and, by default, the actor's detached neuron state).
    #[default]
    Mlp,
    /// A second NCP with its own state; its first motor neuron is the value.
    Ncp,
}

fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn yes() -> bool {
    true
}

/// The critic's shape; the defaults are CleanRL's 64-64 tanh value network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriticConfig {
    /// `mlp` (default) or `ncp`.
    #[serde(default)]
    pub kind: CriticKind,
    /// Hidden layer widths of the MLP critic.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Feed the actor's (detached) neuron state to the MLP critic as well as the observation.
    #[serde(default = "yes")]
    pub with_actor_state: bool,
    /// The NCP critic's network (`kind = "ncp"`); its outputs must include at least one neuron.
    #[serde(default)]
    pub ncp: Option<NcpConfig>,
}

impl Default for CriticConfig {
    fn default() -> Self {
        CriticConfig {
            kind: CriticKind::Mlp,
            hidden: default_hidden(),
            with_actor_state: true,
            ncp: None,
        }
    }
}

/// The `[policy]` section of a training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The NCP actor; its wiring's outputs must equal the env's action dimension (Box) or
    /// number of actions (Discrete).
    pub actor: NcpConfig,
    /// The critic.
    #[serde(default)]
    pub critic: CriticConfig,
    /// Elapsed time per env step given to the NCP; absent means the env's `dt`. ncps's default
    /// of 1.0 suits cells whose initial time constants are O(1).
    #[serde(default)]
    pub timespan: Option<f32>,
    /// Initial log standard deviation of Box actions (state-independent, learned).
    #[serde(default)]
    pub log_std_init: f64,
    /// Let the motor neurons act in [-1, 1] and scale that onto each bounded action component
    /// (Gymnasium's `RescaleAction`): NCP neuron states are bounded, so a torque range of ±2
    /// would otherwise be out of the policy's reach. Unbounded components are left as they are.
    #[serde(default = "yes")]
    pub rescale_actions: bool,
}

/// Why a policy could not be built for an env, naming the config field.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // Each variant's message names the field.
pub enum PolicyError {
    #[error("policy.actor: {0}")]
    Actor(NcpError),
    #[error("policy.critic: {0}")]
    Critic(String),
    #[error(
        "policy.actor: the actor has {outputs} outputs but env `{env}` needs {needed} \
         ({what}); set {field} to {needed}"
    )]
    Outputs {
        env: String,
        outputs: usize,
        needed: usize,
        what: &'static str,
        field: &'static str,
    },
    #[error("policy.timespan must be positive and finite, got {0}")]
    Timespan(f32),
}
