//! The critic beside the NCP actor: a tanh MLP (CleanRL's value network) on the observation
//! and, by default, the actor's detached neuron state — or a second NCP with its own state.

use tch::{nn, Tensor};
use wormnet_ncp::CellNet;

use super::config::{CriticConfig, CriticKind, PolicyError};

/// The value network.
pub(super) enum Critic {
    /// A tanh MLP.
    Mlp(MlpCritic),
    /// A second NCP; its first motor neuron is the value.
    Ncp(Box<CellNet>),
}

/// CleanRL's value network: a tanh MLP, here also on the actor's detached neuron state. It
/// shares no tensor with the actor, so a replay can run it on a second thread.
pub(super) struct MlpCritic {
    /// The layers, the last one the value head.
    pub(super) layers: Vec<nn::Linear>,
    /// Whether the actor's neuron state is appended to the observation.
    with_state: bool,
}

impl Critic {
    /// Builds the critic under `path` for `obs_dim` observations and an actor of
    /// `actor_state` neurons.
    pub(super) fn new(
        path: &nn::Path,
        obs_dim: usize,
        actor_state: usize,
        config: &CriticConfig,
    ) -> Result<Self, PolicyError> {
        match config.kind {
            CriticKind::Mlp => {
                if config.hidden.contains(&0) {
                    return Err(PolicyError::Critic(
                        "hidden layer widths must be at least 1".into(),
                    ));
                }
                let with_state = config.with_actor_state;
                let mut width = obs_dim + if with_state { actor_state } else { 0 };
                let mut layers = Vec::new();
                for (i, &h) in config.hidden.iter().enumerate() {
                    layers.push(orthogonal_linear(
                        &path.sub(i.to_string()),
                        width,
                        h,
                        2f64.sqrt(),
                    ));
                    width = h;
                }
                let head = config.hidden.len().to_string();
                layers.push(orthogonal_linear(&path.sub(head), width, 1, 1.0));
                Ok(Critic::Mlp(MlpCritic { layers, with_state }))
            }
            CriticKind::Ncp => {
                let ncp = config.ncp.as_ref().ok_or_else(|| {
                    PolicyError::Critic("kind = \"ncp\" needs a [policy.critic.ncp] table".into())
                })?;
                let net = CellNet::new(path, obs_dim, ncp)
                    .map_err(|e| PolicyError::Critic(e.to_string()))?;
                Ok(Critic::Ncp(Box::new(net)))
            }
        }
    }
}

impl MlpCritic {
    /// The value of observations `(…, O)` with actor neuron states `(…, S)` (detached).
    pub(super) fn value(&self, obs: &Tensor, actor_h: &Tensor) -> Tensor {
        let mut x = if self.with_state {
            Tensor::cat(&[obs.shallow_clone(), actor_h.detach()], -1)
        } else {
            obs.shallow_clone()
        };
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = x.apply(layer);
            if i < last {
                x = x.tanh();
            }
        }
        x.squeeze_dim(-1)
    }
}

/// A linear layer with orthogonal weights and zero bias (PPO detail C2).
fn orthogonal_linear(path: &nn::Path, input: usize, output: usize, gain: f64) -> nn::Linear {
    nn::linear(
        path,
        input as i64,
        output as i64,
        nn::LinearConfig {
            ws_init: nn::Init::Orthogonal { gain },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        },
    )
}
