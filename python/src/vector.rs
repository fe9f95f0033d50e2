//! N envs on worker threads ([`VecEnv`]) with SAME_STEP auto-reset: what `wormnet.make_vec`
//! wraps as a `gymnasium.vector.VectorEnv`. The GIL is released while the envs step, and each
//! step's outputs are written straight into one `bytearray` that numpy views without copying.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use wormnet_sim::env::one_line;
use wormnet_sim::{Fault, FaultKind, VecEnv, VecEnvConfig};

use crate::{read_f32, registry, registry_error, vec_env_error, write_f32};

/// N envs behind one `reset`/`step`.
#[pyclass(module = "wormnet._native")]
pub struct NativeVecEnv {
    envs: Option<VecEnv>,
    actions: Vec<f32>,
    /// Clipped copy of one env's action, for the spec's check before any env steps.
    row: Vec<f32>,
}

impl NativeVecEnv {
    fn envs(&mut self) -> PyResult<&mut VecEnv> {
        self.envs
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("wormnet vector env: used after close()"))
    }

    /// Every row checked against the action space before any env steps, so a bad action
    /// leaves the batch where it was; the message is the one the env's own check gives.
    fn check_actions(&mut self) -> PyResult<()> {
        let Some(envs) = self.envs.as_ref() else {
            return Ok(());
        };
        let spec = envs.spec();
        let ad = spec.action_dim();
        for (index, action) in self.actions.chunks_exact(ad.max(1)).enumerate() {
            self.row.copy_from_slice(action);
            if spec.clip_actions {
                spec.action_space.clip(&mut self.row);
            }
            if let Err(v) = spec.action_space.check(&self.row) {
                let fault = Fault {
                    env: spec.name.clone(),
                    index,
                    kind: FaultKind::InvalidAction(v),
                };
                return Err(PyValueError::new_err(one_line(&fault)));
            }
        }
        Ok(())
    }
}

#[pymethods]
impl NativeVecEnv {
    /// `num_envs` envs `name` with keyword `options` on `workers` threads, `envs_per_app`
    /// Bevy envs to an `App`; each worker builds its envs on its own thread.
    #[new]
    #[pyo3(signature = (name, options, num_envs, workers, envs_per_app=1))]
    fn new(
        py: Python<'_>,
        name: &str,
        options: Option<&Bound<'_, PyDict>>,
        num_envs: usize,
        workers: usize,
        envs_per_app: usize,
    ) -> PyResult<Self> {
        let table = crate::options::table(options)?;
        let factory = registry().factory(name, table).map_err(registry_error)?;
        let mut config = VecEnvConfig::new(num_envs, workers);
        config.envs_per_app = envs_per_app;
        let envs = py
            .detach(|| VecEnv::new(factory, config))
            .map_err(vec_env_error)?;
        let ad = envs.action_dim();
        Ok(NativeVecEnv {
            actions: vec![0.0; envs.num_envs() * ad],
            row: vec![0.0; ad],
            envs: Some(envs),
        })
    }

    /// The envs' shared spec as JSON.
    fn spec_json(&mut self) -> PyResult<String> {
        serde_json::to_string(self.envs()?.spec())
            .map_err(|e| PyRuntimeError::new_err(format!("spec as JSON: {e}")))
    }

    /// Number of worker threads started.
    fn num_workers(&mut self) -> PyResult<usize> {
        Ok(self.envs()?.num_workers())
    }

    /// Resets every env (env `i` gets `seed + i`, as Gymnasium's vector envs do); the
    /// observations' float32 bytes, `[N, obs_dim]`.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let envs = self.envs()?;
        py.detach(|| envs.reset(seed).map(|_| ()))
            .map_err(vec_env_error)?;
        let obs = envs.observations();
        PyByteArray::new_with(py, obs.len() * 4, |out| {
            write_f32(obs, out);
            Ok(())
        })
    }

    /// Steps every env with the float32 bytes of `actions` (`[N, action_dim]`). Returns one
    /// `bytearray` laid out as rewards (float64 `[N]`), observations (float32 `[N, obs_dim]`),
    /// terminated and truncated (one byte each per env); and when an env finished, another
    /// laid out as the episodes' returns (float64 `[N]`) and lengths (int64 `[N]`), valid in
    /// the rows of finished envs, then the final observations (float32 `[N, obs_dim]`); else
    /// `None`.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &[u8],
    ) -> PyResult<(Bound<'py, PyByteArray>, Option<Bound<'py, PyByteArray>>)> {
        let expected = self.envs()?.num_envs() * self.row.len();
        // Any length: VecEnv::step names a wrong one as the CLI does, before any env steps.
        self.actions.resize(actions.len() / 4, 0.0);
        read_f32(actions, &mut self.actions, "actions")?;
        if self.actions.len() == expected {
            self.check_actions()?;
        }
        let (Some(envs), actions) = (self.envs.as_mut(), &self.actions) else {
            return Err(PyRuntimeError::new_err(
                "wormnet vector env: used after close()",
            ));
        };
        py.detach(|| envs.step(actions).map(|_| ()))
            .map_err(vec_env_error)?;
        let out = envs.last_step();
        let (n, od) = (out.rewards.len(), out.obs.len() / out.rewards.len().max(1));
        // Rewards first as float64 (what Gymnasium's vector envs return, and 8-byte aligned).
        let (obs_at, flags_at) = (n * 8, n * 8 + n * od * 4);
        let buffer = PyByteArray::new_with(py, flags_at + 2 * n, |b| {
            for (c, r) in b[..obs_at].chunks_exact_mut(8).zip(out.rewards) {
                c.copy_from_slice(&f64::from(*r).to_ne_bytes());
            }
            write_f32(out.obs, &mut b[obs_at..flags_at]);
            for i in 0..n {
                b[flags_at + i] = u8::from(out.terminated[i]);
                b[flags_at + n + i] = u8::from(out.truncated[i]);
            }
            Ok(())
        })?;
        let finals = if (0..n).any(|i| out.done(i)) {
            // Each finished episode's return (f64) and length (i64) in its env's row, then the
            // final observations: the infos' arrays, with no Python loop over episodes.
            let (lengths_at, obs_at) = (n * 8, n * 16);
            Some(PyByteArray::new_with(py, obs_at + n * od * 4, |b| {
                write_f32(out.final_obs, &mut b[obs_at..]);
                for e in out.episodes {
                    let (r, l) = (e.env_index * 8, lengths_at + e.env_index * 8);
                    b[r..r + 8].copy_from_slice(&e.episode_return.to_ne_bytes());
                    b[l..l + 8].copy_from_slice(&i64::from(e.length).to_ne_bytes());
                }
                Ok(())
            })?)
        } else {
            None
        };
        Ok((buffer, finals))
    }

    /// Stops the workers (their envs are dropped on their own threads); later calls fail.
    fn close(&mut self, py: Python<'_>) {
        if let Some(envs) = self.envs.take() {
            py.detach(move || drop(envs));
        }
    }
}
