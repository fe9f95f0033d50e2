//! Collecting one rollout: the policy acts in the vectorised envs for `steps_per_rollout` steps
//! (sampling, no gradient), and everything PPO needs later is kept — observations as the policy
//! saw them, episode starts, actions, log-probabilities, values, the actor's neuron states,
//! rewards (scaled), how each step ended and the bootstrap values of truncated episodes.

use anyhow::Result;
use tch::{Device, Tensor};
use wormnet_sim::VecEnv;

use crate::policy::{Policy, PolicyState, RewardScaler};

/// What carries over from one rollout to the next inside a checkpoint segment.
pub struct Carry {
    /// The envs' current raw observations `[env][obs]`.
    pub obs: Vec<f32>,
    /// The policy's recurrent state.
    pub state: PolicyState,
    /// Whether each env starts a new episode at the next step.
    pub starts: Vec<bool>,
}

/// One rollout's data; per-step tensors are stacked `(N, T, …)` by [`Rollout::stacked`].
pub struct Rollout {
    /// The recurrent state the rollout started from (the replay's initial state).
    pub state0: PolicyState,
    /// Normalised observations `(N, O)` per step.
    pub obs: Vec<Tensor>,
    /// Episode starts `(N,)` per step.
    pub starts: Vec<Tensor>,
    /// Raw actions `(N, A)` per step.
    pub actions: Vec<Tensor>,
    /// The actor's neuron states after each step: the MLP critic's second input.
    pub actor_h: Vec<Tensor>,
    /// Log-probabilities `(N,)` per step.
    pub logp: Vec<Tensor>,
    /// Values `(N,)` per step.
    pub values: Vec<Tensor>,
    /// Rewards `[step][env]`, scaled when reward scaling is on.
    pub rewards: Vec<f32>,
    /// Terminated flags `[step][env]` (a time limit counts when truncations are not bootstrapped).
    pub terminated: Vec<bool>,
    /// Truncated flags `[step][env]`.
    pub truncated: Vec<bool>,
    /// V(final observation) of truncated episodes `[step][env]`.
    pub final_values: Vec<f32>,
    /// V(observation after the last step), per env.
    pub last_values: Vec<f32>,
    /// Episodes that ended during the rollout: (raw return, length).
    pub episodes: Vec<(f64, u32)>,
}

/// Steps every env `steps` times with the policy sampling actions, from `carry` (which is
/// advanced). With `bootstrap_truncated`, a truncated episode's final observation is valued
/// with the pre-reset state; otherwise a time limit counts as termination (CleanRL).
pub fn collect(
    policy: &mut Policy,
    venv: &mut VecEnv,
    carry: &mut Carry,
    mut reward_scaler: Option<&mut RewardScaler>,
    steps: usize,
    bootstrap_truncated: bool,
) -> Result<Rollout> {
    let n = carry.starts.len();
    let obs_dim = policy.obs_dim();
    let device = policy.device();
    let to_tensor = |v: &[f32]| {
        Tensor::from_slice(v)
            .reshape([n as i64, obs_dim as i64])
            .to_device(device)
    };
    let mut buf = Rollout::with_capacity(carry.state.detach(), steps, n);
    let mut actions = vec![0.0f32; n * policy.action_dim()];
    // Reused every step: the normalised copy of the observations the policy sees.
    let mut input = carry.obs.clone();
    for _ in 0..steps {
        input.copy_from_slice(&carry.obs);
        policy.observe(&mut input);
        let x = to_tensor(&input);
        let starts = Tensor::from_slice(&carry.starts).to_device(device);
        let act = policy.act(&x, &carry.state, false);
        policy.env_actions(&act.action, &mut actions);
        let view = venv.step(&actions)?;
        let mut rewards = view.rewards.to_vec();
        let done: Vec<bool> = (0..n).map(|i| view.done(i)).collect();
        // V(final observation) for truncated episodes, with the pre-reset state.
        let mut final_values = vec![0.0f32; n];
        if bootstrap_truncated && view.truncated.iter().any(|&t| t) {
            let mut fin = view.final_obs.to_vec();
            policy.normalize(&mut fin);
            let v = policy.value(&to_tensor(&fin), &act.state);
            let v = Vec::<f32>::try_from(v.to_device(Device::Cpu))?;
            for (i, value) in final_values.iter_mut().enumerate() {
                if view.truncated[i] && !view.terminated[i] {
                    *value = v[i];
                }
            }
        }
        if let Some(scaler) = reward_scaler.as_deref_mut() {
            scaler.scale(&mut rewards, &done);
        }
        buf.episodes.extend(
            view.episodes
                .iter()
                .map(|ep| (ep.episode_return, ep.length)),
        );
        buf.obs.push(x);
        buf.starts.push(starts);
        buf.actions.push(act.action.reshape([n as i64, -1]));
        buf.actor_h.push(act.state.actor.h.detach());
        buf.logp.push(act.logp);
        buf.values.push(act.value);
        buf.rewards.extend_from_slice(&rewards);
        buf.push_ends(view.terminated, view.truncated, bootstrap_truncated);
        buf.final_values.extend_from_slice(&final_values);
        carry.obs.copy_from_slice(view.obs);
        // Zeroing no row multiplies every state by 1, which changes nothing: skip those ops.
        carry.state = if done.iter().any(|&d| d) {
            act.state
                .reset(&Tensor::from_slice(&done).to_device(device))
        } else {
            act.state
        };
        carry.starts = done;
    }
    // Values of the observations after the rollout, to bootstrap its last step.
    input.copy_from_slice(&carry.obs);
    policy.normalize(&mut input);
    let last_values = policy.value(&to_tensor(&input), &carry.state);
    buf.last_values = Vec::<f32>::try_from(last_values.to_device(Device::Cpu))?;
    Ok(buf)
}

impl Rollout {
    /// An empty rollout of `steps` steps of `n` envs from `state0`.
    fn with_capacity(state0: PolicyState, steps: usize, n: usize) -> Self {
        Rollout {
            state0,
            obs: Vec::with_capacity(steps),
            starts: Vec::with_capacity(steps),
            actions: Vec::with_capacity(steps),
            actor_h: Vec::with_capacity(steps),
            logp: Vec::with_capacity(steps),
            values: Vec::with_capacity(steps),
            rewards: Vec::with_capacity(steps * n),
            terminated: Vec::with_capacity(steps * n),
            truncated: Vec::with_capacity(steps * n),
            final_values: Vec::with_capacity(steps * n),
            last_values: Vec::new(),
            episodes: Vec::new(),
        }
    }

    /// Records how one step ended for each env; without `bootstrap_truncated` a time limit
    /// counts as termination (CleanRL's convention: it ends the episode like a failure).
    fn push_ends(&mut self, terminated: &[bool], truncated: &[bool], bootstrap_truncated: bool) {
        self.terminated.extend_from_slice(terminated);
        if bootstrap_truncated {
            self.truncated.extend_from_slice(truncated);
        } else {
            let at = self.terminated.len() - truncated.len();
            for (t, &u) in self.terminated[at..].iter_mut().zip(truncated) {
                *t |= u;
            }
            self.truncated
                .extend(std::iter::repeat_n(false, truncated.len()));
        }
    }
}
