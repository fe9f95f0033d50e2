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

fn default_channels() -> Vec<usize> {
    vec![16, 32, 32]
}
fn default_kernels() -> Vec<usize> {
    vec![5, 3, 3]
}
fn default_strides() -> Vec<usize> {
    vec![2, 2, 2]
}
fn default_features() -> usize {
    32
}

/// `[policy.encoder]`: how observations with an image become the cell's inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EncoderConfig {
    /// ReLU convolutions, then a tanh linear layer over their flattened output and the
    /// observation's flat features.
    Conv {
        /// Output channels of each convolution.
        #[serde(default = "default_channels")]
        channels: Vec<usize>,
        /// Square kernel size of each convolution.
        #[serde(default = "default_kernels")]
        kernels: Vec<usize>,
        /// Stride of each convolution.
        #[serde(default = "default_strides")]
        strides: Vec<usize>,
        /// Features out (the cell's sensory inputs); the NCP paper uses 32.
        #[serde(default = "default_features")]
        features: usize,
    },
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
    /// A convolutional encoder in front of the actor and critic, for envs that observe an
    /// image (e.g. the vehicle's camera); absent: they read the observation directly.
    #[serde(default)]
    pub encoder: Option<EncoderConfig>,
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
    #[error("policy.encoder: {0}")]
    Encoder(String),
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

impl PolicyConfig {
    /// Writes the circuits that the actor's and critic's wirings read from files into this
    /// config ([`WiringConfig::embedded`]): a run keeps them in its `config.toml` and
    /// checkpoints, so its directory alone rebuilds the policy, from any directory and after
    /// the file changes.
    ///
    /// [`WiringConfig::embedded`]: wormnet_ncp::wiring::WiringConfig::embedded
    pub fn embed_circuits(&mut self) -> anyhow::Result<()> {
        let nets = [
            ("policy.actor.wiring", Some(&mut self.actor)),
            ("policy.critic.ncp.wiring", self.critic.ncp.as_mut()),
        ];
        for (field, net) in nets {
            let Some(net) = net else { continue };
            let Some(wiring) = &net.wiring else { continue };
            let embedded = wiring
                .embedded()
                .map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            if let Some(embedded) = embedded {
                net.wiring = Some(embedded);
            }
        }
        Ok(())
    }
}
