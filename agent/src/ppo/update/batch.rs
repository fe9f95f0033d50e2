//! The rollout as the update reads it: advantages and returns by GAE, every per-step tensor
//! stacked `(N, T, …)`, and each minibatch's rows of them.

use anyhow::Result;
use tch::{Device, Tensor};

use crate::policy::{PolicyState, ReplayBatch};
use crate::ppo::config::PpoConfig;
use crate::ppo::gae::{gae, GaeInput};
use crate::ppo::host::{host_f32, host_slice, mean_and_std};
use crate::ppo::rollout::Rollout;

/// One rollout, stacked env-major on the policy's device.
pub(super) struct Batch<'a> {
    /// Number of envs N.
    pub envs: usize,
    device: Device,
    advantages: Tensor,
    returns: Tensor,
    obs: Tensor,
    actions: Tensor,
    starts: Tensor,
    actor_h: Tensor,
    old_logp: Tensor,
    old_values: Tensor,
    state0: &'a PolicyState,
}

/// One minibatch: the rows of a set of whole envs.
pub(super) struct Minibatch {
    /// Returns (the value loss's target), `(B, T)`.
    pub returns: Tensor,
    /// The rollout's values, `(B, T)`.
    pub old_values: Tensor,
    /// The rollout's log-probabilities of the taken actions, `(B, T)`.
    pub old_logp: Tensor,
    /// GAE advantages, `(B, T)`, normalised over the whole minibatch where `ppo.norm_adv` asks.
    pub advantages: Tensor,
    obs: Tensor,
    actions: Tensor,
    starts: Tensor,
    actor_h: Tensor,
    state0: PolicyState,
}

impl<'a> Batch<'a> {
    /// GAE on the rollout (with `cfg.gamma`, `cfg.gae_lambda`), then its tensors stacked.
    pub fn new(rollout: &'a Rollout, cfg: &PpoConfig, device: Device) -> Result<Self> {
        let n = rollout.last_values.len();
        let t_len = rollout.obs.len();
        let values_tn = Tensor::stack(&rollout.values, 0); // (T, N)
        let values_flat = Vec::<f32>::try_from(values_tn.to_device(Device::Cpu).reshape([-1]))?;
        let (adv, ret) = gae(&GaeInput {
            envs: n,
            rewards: &rollout.rewards,
            values: &values_flat,
            terminated: &rollout.terminated,
            truncated: &rollout.truncated,
            final_values: &rollout.final_values,
            last_values: &rollout.last_values,
            gamma: cfg.gamma,
            lambda: cfg.gae_lambda,
        });
        let env_major = |v: &[f32]| {
            Tensor::from_slice(v)
                .reshape([t_len as i64, n as i64])
                .transpose(0, 1)
                .contiguous()
                .to_device(device)
        };
        Ok(Batch {
            envs: n,
            device,
            advantages: env_major(&adv),
            returns: env_major(&ret),
            obs: Tensor::stack(&rollout.obs, 1),
            actions: Tensor::stack(&rollout.actions, 1),
            starts: Tensor::stack(&rollout.starts, 1),
            actor_h: Tensor::stack(&rollout.actor_h, 1),
            old_logp: Tensor::stack(&rollout.logp, 1),
            old_values: values_tn.transpose(0, 1).contiguous(),
            state0: &rollout.state0,
        })
    }

    /// The minibatch of the envs `envs` split into `count` shards of whole envs (sizes
    /// differing by at most one), each with its share of the samples. With `norm_adv` the
    /// advantages are normalised over the whole minibatch first (CleanRL's
    /// `(A − mean) / (std + 1e-8)`, unbiased std), so the shards' losses add up to its loss.
    pub fn shards(&self, envs: &[i64], count: usize, norm_adv: bool) -> Vec<(Minibatch, f64)> {
        let (shift, scale) = if norm_adv {
            let idx = Tensor::from_slice(envs).to_device(self.device);
            let adv = self.advantages.index_select(0, &idx);
            let (mean, std) = if host_f32(&adv, adv.numel()) {
                // SAFETY: `adv` passed host_f32 and is this function's own tensor.
                mean_and_std(unsafe { host_slice(&adv) })
            } else {
                (
                    adv.mean(tch::Kind::Float).double_value(&[]),
                    adv.std(true).double_value(&[]),
                )
            };
            (mean, std + 1e-8)
        } else {
            (0.0, 1.0)
        };
        let count = count.clamp(1, envs.len().max(1));
        let (base, extra) = (envs.len() / count, envs.len() % count);
        let mut first = 0;
        (0..count)
            .map(|k| {
                let len = base + usize::from(k < extra);
                let part = &envs[first..first + len];
                first += len;
                let weight = len as f64 / envs.len() as f64;
                (self.minibatch(part, shift, scale), weight)
            })
            .collect()
    }

    /// The rows of the envs `envs`, advantages as `(A − shift) / scale`.
    fn minibatch(&self, envs: &[i64], shift: f64, scale: f64) -> Minibatch {
        let idx = Tensor::from_slice(envs).to_device(self.device);
        let rows = |t: &Tensor| t.index_select(0, &idx);
        let advantages = rows(&self.advantages);
        Minibatch {
            returns: rows(&self.returns),
            old_values: rows(&self.old_values),
            old_logp: rows(&self.old_logp),
            advantages: if (shift, scale) == (0.0, 1.0) {
                advantages
            } else {
                (advantages - shift) / scale
            },
            obs: rows(&self.obs),
            actions: rows(&self.actions),
            starts: rows(&self.starts),
            actor_h: rows(&self.actor_h),
            state0: self.state0.select(&idx),
        }
    }

    /// 1 − Var(returns − values) / Var(returns); NaN where the returns do not vary.
    pub fn explained_variance(&self) -> f64 {
        let var_ret = self.returns.var(true).double_value(&[]);
        if var_ret == 0.0 {
            return f64::NAN;
        }
        1.0 - (&self.returns - &self.old_values)
            .var(true)
            .double_value(&[])
            / var_ret
    }
}

impl Minibatch {
    /// A second handle on the same rows (for the thread running the other half of a shard).
    pub fn shallow_clone(&self) -> Minibatch {
        Minibatch {
            returns: self.returns.shallow_clone(),
            old_values: self.old_values.shallow_clone(),
            old_logp: self.old_logp.shallow_clone(),
            advantages: self.advantages.shallow_clone(),
            obs: self.obs.shallow_clone(),
            actions: self.actions.shallow_clone(),
            starts: self.starts.shallow_clone(),
            actor_h: self.actor_h.shallow_clone(),
            state0: self.state0.shallow_clone(),
        }
    }

    /// What the policy's replay reads.
    pub fn replay(&self) -> ReplayBatch<'_> {
        ReplayBatch {
            obs: &self.obs,
            actions: &self.actions,
            starts: &self.starts,
            state0: &self.state0,
            actor_h: &self.actor_h,
        }
    }
}
