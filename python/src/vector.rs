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

/// One finished episode: (env index, return, length, terminated).
type Episode = (usize, f64, u32, bool);

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
    /// `bytearray` laid out as observations (float32 `[N, obs_dim]`), rewards (float32 `[N]`),
    /// terminated and truncated (one byte each per env); the final observations (float32
    /// `[N, obs_dim]`, rows of finished envs valid) when an env finished, else `None`; and
    /// the episodes that ended.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &[u8],
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Option<Bound<'py, PyByteArray>>,
        Vec<Episode>,
    )> {
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
        let (obs_end, rew_end) = (n * od * 4, n * od * 4 + n * 4);
        let buffer = PyByteArray::new_with(py, rew_end + 2 * n, |b| {
            write_f32(out.obs, &mut b[..obs_end]);
            write_f32(out.rewards, &mut b[obs_end..rew_end]);
            for i in 0..n {
                b[rew_end + i] = u8::from(out.terminated[i]);
                b[rew_end + n + i] = u8::from(out.truncated[i]);
            }
            Ok(())
        })?;
        let final_obs = if (0..n).any(|i| out.done(i)) {
            Some(PyByteArray::new_with(py, n * od * 4, |b| {
                write_f32(out.final_obs, b);
                Ok(())
            })?)
        } else {
            None
        };
        let episodes = out
            .episodes
            .iter()
            .map(|e| (e.env_index, e.episode_return, e.length, e.terminated))
            .collect();
        Ok((buffer, final_obs, episodes))
    }

    /// Stops the workers (their envs are dropped on their own threads); later calls fail.
    fn close(&mut self, py: Python<'_>) {
        if let Some(envs) = self.envs.take() {
            py.detach(move || drop(envs));
        }
    }
}
