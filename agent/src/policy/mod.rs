//! The actor-critic a PPO run trains: an NCP actor whose motor neurons are the action means
//! (Box) or logits (Discrete), and a critic that is a small MLP or a second NCP.
//!
//! The policy owns its observation normaliser, so whoever runs it (trainer, evaluator, auditor)
//! feeds it raw observations the same way.
//!
//! The MLP critic sees the observation *and the actor's neuron state* (detached): in a
//! partially observed task (cartpole without velocities) a memoryless critic cannot tell
//! states apart, while the actor's neurons already integrate the history. No gradient flows
//! from the critic into the actor through that input.

mod action;
mod config;
mod critic;
mod encoder;
mod normalize;
mod replay;

use std::collections::BTreeMap;

use tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::{CellNet, State, Tape};
use wormnet_sim::{EnvSpec, Space};

pub use action::ActionKind;
pub use config::{CriticConfig, CriticKind, EncoderConfig, PolicyConfig, PolicyError};
use critic::Critic;
use encoder::Encoder;
pub use normalize::{ObsNormalizer, RewardScaler, RunningMeanStd};
pub use replay::{Evaluation, ReplayBatch, Replayed};

/// Recurrent state of the whole policy for a batch of envs.
pub struct PolicyState {
    /// The actor's neuron potentials (and LSTM memory with mixed memory).
    pub actor: State,
    /// The NCP critic's state, if the critic is an NCP.
    pub critic: Option<State>,
}

impl PolicyState {
    /// Zeroes the rows where `starts (B,)` is true: those envs begin a new episode.
    pub fn reset(&self, starts: &Tensor) -> PolicyState {
        PolicyState {
            actor: self.actor.reset(starts),
            critic: self.critic.as_ref().map(|c| c.reset(starts)),
        }
    }

    /// A second handle on the same tensors.
    pub fn shallow_clone(&self) -> PolicyState {
        let clone = |s: &State| State {
            h: s.h.shallow_clone(),
            c: s.c.as_ref().map(Tensor::shallow_clone),
        };
        PolicyState {
            actor: clone(&self.actor),
            critic: self.critic.as_ref().map(clone),
        }
    }

    /// A detached copy, stored at the start of each rollout for the replay.
    pub fn detach(&self) -> PolicyState {
        PolicyState {
            actor: self.actor.detach(),
            critic: self.critic.as_ref().map(State::detach),
        }
    }

    /// Rows `index` of every tensor (a minibatch of envs).
    pub fn select(&self, index: &Tensor) -> PolicyState {
        let pick = |s: &State| State {
            h: s.h.index_select(0, index),
            c: s.c.as_ref().map(|c| c.index_select(0, index)),
        };
        PolicyState {
            actor: pick(&self.actor),
            critic: self.critic.as_ref().map(pick),
        }
    }
}

/// What one acting step produced for a batch of envs.
pub struct Act {
    /// Raw actions `(B, A)` (Discrete: the index as a float).
    pub action: Tensor,
    /// Log-probability of `action`, `(B,)`.
    pub logp: Tensor,
    /// Value estimate of the observation, `(B,)`.
    pub value: Tensor,
    /// The state after consuming the observation.
    pub state: PolicyState,
}

/// The trained actor-critic with all its parameters in one `VarStore`.
pub struct Policy {
    /// Owns every parameter (actor under `actor.`, critic under `critic.`, `log_std`).
    pub vs: nn::VarStore,
    /// The NCP actor.
    pub actor: CellNet,
    critic: Critic,
    log_std: Option<Tensor>,
    /// How actions are drawn.
    pub action: ActionKind,
    obs_dim: usize,
    /// The convolutional encoder of image observations (`[policy.encoder]`).
    encoder: Option<Encoder>,
    timespan: f32,
    obs_norm: Option<ObsNormalizer>,
    /// What each motor output drives, by the env's action names.
    motor_names: Vec<String>,
}

/// The convolutional encoder `[policy.encoder]` asks for, if any: an error names the section
/// where the env observes no image.
fn build_encoder(
    root: &nn::Path,
    spec: &EnvSpec,
    config: &PolicyConfig,
) -> Result<Option<Encoder>, PolicyError> {
    match (&config.encoder, spec.image) {
        (None, _) => Ok(None),
        (Some(e), Some(shape)) => Ok(Some(Encoder::new(
            &root.sub("encoder"),
            shape,
            spec.obs_dim(),
            e,
        )?)),
        (Some(_), None) => Err(PolicyError::Encoder(format!(
            "env `{}` observes no image (a camera observation, e.g. the vehicle's \
             observation = \"camera\"); remove [policy.encoder]",
            spec.name
        ))),
    }
}

/// How the env's actions are drawn, how many outputs the actor needs for them, and what
/// those outputs are (for the error where the count differs).
fn action_kind(spec: &EnvSpec, config: &PolicyConfig) -> (ActionKind, usize, &'static str) {
    match &spec.action_space {
        Space::Box { low, high } => (
            ActionKind::Continuous {
                low: low.clone(),
                high: high.clone(),
                rescale: config.rescale_actions,
            },
            low.len(),
            "one mean per action component",
        ),
        Space::Discrete { n } => (
            ActionKind::Discrete { n: *n as usize },
            *n as usize,
            "one logit per discrete action",
        ),
    }
}

/// What each of the `needed` motor outputs drives, by the env's action names (`name=k` for
/// a discrete action's k-th logit).
fn motor_names(spec: &EnvSpec, action: &ActionKind, needed: usize) -> Vec<String> {
    let action_name = |i: usize| {
        spec.action_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("action{i}"))
    };
    match action {
        ActionKind::Continuous { .. } => (0..needed).map(action_name).collect(),
        ActionKind::Discrete { .. } => (0..needed)
            .map(|k| format!("{}={k}", action_name(0)))
            .collect(),
    }
}

impl Policy {
    /// Builds the policy for `spec` on `device`, with weights from libtorch's current seed.
    pub fn new(spec: &EnvSpec, config: &PolicyConfig, device: Device) -> Result<Self, PolicyError> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let obs_dim = spec.obs_dim();
        let encoder = build_encoder(&root, spec, config)?;
        let inputs = encoder.as_ref().map_or(obs_dim, Encoder::output_size);
        let actor =
            CellNet::new(&root.sub("actor"), inputs, &config.actor).map_err(PolicyError::Actor)?;
        let (action, needed, what) = action_kind(spec, config);
        if actor.output_size() != needed {
            return Err(PolicyError::Outputs {
                env: spec.name.clone(),
                outputs: actor.output_size(),
                needed,
                what,
                field: if config.actor.cell.is_baseline() {
                    "proj_size"
                } else {
                    "the wiring's output size"
                },
            });
        }
        let motor_names = motor_names(spec, &action, needed);
        let timespan = config.timespan.unwrap_or(spec.dt);
        if !(timespan > 0.0 && timespan.is_finite()) {
            return Err(PolicyError::Timespan(timespan));
        }
        let critic = Critic::new(
            &root.sub("critic"),
            inputs,
            actor.state_size(),
            &config.critic,
        )?;
        let log_std = match action {
            ActionKind::Continuous { .. } => Some(root.var(
                "log_std",
                &[1, needed as i64],
                nn::Init::Const(config.log_std_init),
            )),
            ActionKind::Discrete { .. } => None,
        };
        Ok(Policy {
            vs,
            actor,
            critic,
            log_std,
            action,
            obs_dim,
            encoder,
            timespan,
            obs_norm: None,
            motor_names,
        })
    }

    /// Sets (or removes) the running observation normaliser the policy reads inputs through.
    pub fn set_obs_normalizer(&mut self, norm: Option<ObsNormalizer>) {
        self.obs_norm = norm;
    }

    /// The observation normaliser, if the policy normalises.
    pub fn obs_normalizer(&self) -> Option<&ObsNormalizer> {
        self.obs_norm.as_ref()
    }

    /// Training: merges a batch of raw observation rows into the normaliser's statistics, then
    /// normalises them in place.
    pub fn observe(&mut self, obs: &mut [f32]) {
        if let Some(norm) = &mut self.obs_norm {
            norm.normalize(obs);
        }
    }

    /// Normalises raw observation rows in place with the current statistics (never moving
    /// them): evaluation, auditing, bootstrap values.
    pub fn normalize(&self, obs: &mut [f32]) {
        if let Some(norm) = &self.obs_norm {
            norm.apply(obs);
        }
    }

    /// A label per actor state column: the wiring's neuron names (`command_3`, …), each motor
    /// neuron named by what it drives (`motor_steering`; `motor_push_right=1` for the logit of
    /// a discrete action's value).
    pub fn neuron_labels(&self) -> Vec<String> {
        self.actor
            .state_labels()
            .into_iter()
            .map(|label| {
                let motor = label
                    .strip_prefix("motor_")
                    .and_then(|k| k.parse::<usize>().ok())
                    .and_then(|k| self.motor_names.get(k));
                match motor {
                    Some(name) => format!("motor_{name}"),
                    None => label,
                }
            })
            .collect()
    }

    /// Names of what the actor's sensory neurons read: the observation's components (with
    /// sensor pairs their parts, `theta+`, `theta-`), or the encoder's features (`feature_0`, …)
    /// when a conv encoder reads an image.
    pub fn sensory_names(&self, spec: &EnvSpec) -> Vec<String> {
        let names = match &self.encoder {
            Some(e) => (0..e.output_size())
                .map(|k| format!("feature_{k}"))
                .collect(),
            None => spec.observation_names.clone(),
        };
        self.actor.sensory_names(&names)
    }

    /// What the actor's sensory neurons read for one normalised observation: the observation
    /// itself, or the encoder's features of it.
    pub fn sensory_input(&self, input: &[f32]) -> Vec<f32> {
        let x = Tensor::from_slice(input)
            .reshape([1, input.len() as i64])
            .to_device(self.device());
        let features = match &self.encoder {
            Some(encoder) => tch::no_grad(|| encoder.forward(&x)),
            None => x,
        };
        let features = self.actor.sense(&features);
        Vec::<f32>::try_from(features.to_device(Device::Cpu).reshape([-1]))
            .expect("encoder features are a float tensor")
    }

    /// The device every tensor of this policy lives on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Width of one action row.
    pub fn action_dim(&self) -> usize {
        match &self.action {
            ActionKind::Continuous { low, .. } => low.len(),
            ActionKind::Discrete { .. } => 1,
        }
    }

    /// Trainable parameters in a stable (name) order, so optimizer state lines up on resume.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let vars: BTreeMap<String, Tensor> = self.vs.variables().into_iter().collect();
        vars.into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect()
    }

    /// Zero state for `batch` envs.
    pub fn initial_state(&self, batch: i64) -> PolicyState {
        let device = self.device();
        PolicyState {
            actor: self.actor.initial_state(batch, device),
            critic: match &self.critic {
                Critic::Ncp(net) => Some(net.initial_state(batch, device)),
                Critic::Mlp(_) => None,
            },
        }
    }

    /// Elapsed time per step as a tensor of `shape`: `(B, 1)` for one step, `(B, T)` for
    /// sequences.
    fn timespans(&self, shape: &[i64]) -> Tensor {
        Tensor::full(
            shape,
            f64::from(self.timespan),
            (Kind::Float, self.device()),
        )
    }

    /// With an encoder, its features of `obs` twice: a detached leaf for the networks to read,
    /// and the features themselves; the [`Tape`] carries the gradient the networks leave on the
    /// leaf back into the encoder once (`Tape::with_upstream`), after every network's backward.
    fn encode_detached(&self, obs: &Tensor) -> Option<(Tensor, Tensor)> {
        self.encoder.as_ref().map(|e| {
            let features = e.forward(obs);
            (features.detach().set_requires_grad(true), features)
        })
    }

    /// One step of actor and critic for the observations `(B, O)`; the caller has already
    /// reset the rows of envs that start a new episode.
    fn forward_step(&self, obs: &Tensor, state: &PolicyState) -> (Tensor, Tensor, PolicyState) {
        let features = self.encoder.as_ref().map(|e| e.forward(obs));
        let obs = features.as_ref().unwrap_or(obs);
        let dt = self.timespans(&[obs.size()[0], 1]);
        let (out, actor_state) = self.actor.step(obs, &state.actor, &dt);
        let (value, critic_state) = match &self.critic {
            Critic::Mlp(mlp) => (mlp.value(obs, &actor_state.h), None),
            Critic::Ncp(net) => {
                let cs = state
                    .critic
                    .as_ref()
                    .expect("NCP critic without critic state");
                let (v, s) = net.step(obs, cs, &dt);
                (v.select(-1, 0), Some(s))
            }
        };
        (
            out,
            value,
            PolicyState {
                actor: actor_state,
                critic: critic_state,
            },
        )
    }

    /// Acts for a batch of envs (no gradient): samples an action (or takes the mode when
    /// `deterministic`), with its log-probability and the value estimate.
    pub fn act(&self, obs: &Tensor, state: &PolicyState, deterministic: bool) -> Act {
        tch::no_grad(|| {
            let (out, value, state) = self.forward_step(obs, state);
            let (action, logp) = match &self.action {
                ActionKind::Continuous { .. } => {
                    let std = self.log_std().exp();
                    let action = if deterministic {
                        out.shallow_clone()
                    } else {
                        &out + out.randn_like() * &std
                    };
                    let logp = self.gaussian_logp(&out, &action);
                    (action, logp)
                }
                ActionKind::Discrete { .. } => {
                    let logits = out.log_softmax(-1, Kind::Float);
                    let index = if deterministic {
                        logits.argmax(-1, true)
                    } else {
                        logits.exp().multinomial(1, true)
                    };
                    let logp = logits.gather(1, &index, false).squeeze_dim(1);
                    (index.to_kind(Kind::Float), logp)
                }
            };
            Act {
                action,
                logp,
                value,
                state,
            }
        })
    }

    /// The actor alone acting with its distribution's mode (no critic, no gradient), from the
    /// actor's state: what `wormnet search` scores a circuit by, at half the cost of [`Self::act`].
    pub fn act_mode(&self, obs: &Tensor, state: &State) -> (Tensor, State) {
        tch::no_grad(|| {
            let features = self.encoder.as_ref().map(|e| e.forward(obs));
            let obs = features.as_ref().unwrap_or(obs);
            let dt = self.timespans(&[obs.size()[0], 1]);
            let (out, state) = self.actor.step(obs, state, &dt);
            let action = match self.action {
                ActionKind::Continuous { .. } => out,
                ActionKind::Discrete { .. } => out.argmax(-1, true).to_kind(Kind::Float),
            };
            (action, state)
        })
    }

    /// V(obs) after consuming `obs` from `state`: the bootstrap value of a truncated episode's
    /// final observation, with the pre-reset state.
    pub fn value(&self, obs: &Tensor, state: &PolicyState) -> Tensor {
        tch::no_grad(|| self.forward_step(obs, state).1)
    }

    fn log_std(&self) -> Tensor {
        match &self.log_std {
            Some(t) => t.shallow_clone(),
            None => Tensor::zeros([1, 1], (Kind::Float, self.device())),
        }
    }

    /// Sum over action components of the diagonal Gaussian log-density.
    fn gaussian_logp(&self, mean: &Tensor, action: &Tensor) -> Tensor {
        let log_std = self.log_std();
        let z = (action - mean) / log_std.exp();
        let log_norm = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let per_dim: Tensor = z.pow_tensor_scalar(2) * -0.5 - &log_std - log_norm;
        per_dim.sum_dim_intlist(-1, false, per_dim.kind())
    }

    /// Writes actions into `out` as the env expects them (see [`ActionKind::env_actions`]).
    pub fn env_actions(&self, action: &Tensor, out: &mut [f32]) {
        let flat = Vec::<f32>::try_from(action.to_device(Device::Cpu).reshape([-1]))
            .expect("policy actions are a float tensor");
        out.copy_from_slice(&flat);
        self.action.env_actions(out);
    }

    /// Overwrites env actions with "do nothing" (see [`ActionKind::zero_actions`]).
    pub fn zero_actions(&self, out: &mut [f32]) {
        self.action.zero_actions(out);
    }

    /// The actor's raw outputs `(B, T, outputs)` (Box: the action means before rescaling;
    /// Discrete: the logits) for normalised observation sequences `obs (B, T, O)` from the zero
    /// state: behavioural cloning. Backpropagate a loss on them with the returned [`Tape`]'s
    /// `backward(loss)`: it runs the kernels' backward passes and reaches the encoder.
    pub fn actor_sequence(&self, obs: &Tensor) -> (Tensor, Tape) {
        self.actor_sequence_from(obs, None)
    }

    /// [`Self::actor_sequence`] from a given actor state (`None`: the zero state) — a
    /// recorded neuron state, for the saliency of a window of an episode.
    pub fn actor_sequence_from(&self, obs: &Tensor, state0: Option<&State>) -> (Tensor, Tape) {
        let ts = self.timespans(&obs.size()[..2]);
        let encoded = self.encode_detached(obs);
        let input = encoded.as_ref().map_or(obs, |(leaf, _)| leaf);
        let (out, _, tape) = self
            .actor
            .forward_sequence_train(input, state0, Some(&ts), None);
        match &encoded {
            Some((leaf, features)) => (out, tape.with_upstream(leaf, features)),
            None => (out, tape),
        }
    }

    /// What each actor output drives, by the env's action names (`push_right=1` for a
    /// discrete action's logit).
    pub fn output_names(&self) -> &[String] {
        &self.motor_names
    }

    /// Elapsed time the actor is given per env step.
    pub fn timespan(&self) -> f32 {
        self.timespan
    }

    /// Observation width this policy was built for.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// One line for the start of a run: each network's kind, size and trainable parameter
    /// count (an NCP's also its neurons and synapses), so runs of different cells compare.
    pub fn describe(&self) -> String {
        let count = |prefix: &str| -> i64 {
            self.parameters()
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, t)| t.numel() as i64)
                .sum()
        };
        let net = |net: &CellNet| {
            let kind = format!("{:?}", net.config().cell).to_lowercase();
            match net.wiring() {
                Some(w) => format!(
                    "{kind} NCP, {} neurons, {} synapses{}",
                    w.units(),
                    w.synapse_count() + w.sensory_synapse_count(),
                    match w.gap_junction_count() {
                        0 => String::new(),
                        g => format!(", {g} gap junctions"),
                    }
                ),
                None => format!("{kind} of {} units", net.state_size()),
            }
        };
        let critic = match &self.critic {
            Critic::Mlp(mlp) => format!("MLP of {} layers", mlp.layers.len()),
            Critic::Ncp(n) => net(n),
        };
        let encoder = match &self.encoder {
            Some(e) => format!(
                "encoder: conv to {} features, {} parameters; ",
                e.output_size(),
                count("encoder.")
            ),
            None => String::new(),
        };
        format!(
            "{encoder}actor: {}, {} parameters; critic: {critic}, {} parameters",
            net(&self.actor),
            count("actor.") + count("log_std"),
            count("critic.")
        )
    }

    /// Clamps explicit-constraint LTC weights after an optimizer step.
    pub fn apply_weight_constraints(&self) {
        self.actor.apply_weight_constraints();
        if let Critic::Ncp(net) = &self.critic {
            net.apply_weight_constraints();
        }
    }
}

#[cfg(test)]
mod tests;
