//! N envs on worker threads ([`VecEnv`]) with SAME_STEP auto-reset: what `wormnet.make_vec`
//! wraps as a `gymnasium.vector.VectorEnv`. The GIL is released while the envs step, and each
//! step's outputs are written in place into `bytearray`s allocated once, which numpy views
//! without copying (the buffer protocol is not in the stable ABI before Python 3.11, so the
//! module cannot take numpy's own arrays).

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList};
use wormnet_sim::env::one_line;
use wormnet_sim::{Fault, FaultKind, StepView, VecEnv, VecEnvConfig};

use crate::{read_f32, registry, registry_error, vec_env_error, write_f32};

/// N envs behind one `reset`/`step`.
#[pyclass(module = "wormnet._native")]
pub struct NativeVecEnv {
    envs: Option<VecEnv>,
    actions: Vec<f32>,
    /// Clipped copy of one env's action, for the spec's check before any env steps.
    row: Vec<f32>,
    /// The step's outputs, written in place every step (layout in [`Self::buffers`]).
    out: Py<PyByteArray>,
    /// The finished episodes' returns, lengths and final observations, written in place.
    finals: Py<PyByteArray>,
}

impl NativeVecEnv {
    fn envs(&mut self) -> PyResult<&mut VecEnv> {
        self.envs
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("wormnet vector env: used after close()"))
    }

    /// Fails if a caller resized the buffers of [`Self::buffers`] (possible only once no
    /// numpy view holds them), so the writes never index outside them.
    fn check_buffers(&mut self, py: Python<'_>) -> PyResult<()> {
        let envs = self.envs()?;
        let (n, od) = (envs.num_envs(), envs.obs_dim());
        if self.out.bind(py).len() != n * (8 + od * 4 + 2)
            || self.finals.bind(py).len() != n * (16 + od * 4)
        {
            return Err(PyRuntimeError::new_err(
                "wormnet vector env: its output buffers were resized",
            ));
        }
        Ok(())
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
        let (n, ad, od) = (envs.num_envs(), envs.action_dim(), envs.obs_dim());
        Ok(NativeVecEnv {
            actions: vec![0.0; n * ad],
            row: vec![0.0; ad],
            out: PyByteArray::new(py, &vec![0; n * (8 + od * 4 + 2)]).unbind(),
            finals: PyByteArray::new(py, &vec![0; n * (16 + od * 4)]).unbind(),
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

    /// The two buffers every call writes into, allocated once, for numpy to view without a
    /// copy: the step's outputs, laid out as rewards (float64 `[N]`), observations (float32
    /// `[N, obs_dim]`), terminated and truncated (one byte each per env); and the finished
    /// episodes' returns (float64 `[N]`), lengths (int64 `[N]`) and final observations (float32
    /// `[N, obs_dim]`), valid in the rows of the envs that finished in the last step, zero in
    /// the others.
    fn buffers<'py>(&self, py: Python<'py>) -> (Bound<'py, PyByteArray>, Bound<'py, PyByteArray>) {
        (self.out.bind(py).clone(), self.finals.bind(py).clone())
    }

    /// Resets every env (env `i` gets `seed + i`, as Gymnasium's vector envs do); the
    /// observations are written into the outputs' buffer.
    #[pyo3(signature = (seed=None))]
    fn reset(&mut self, py: Python<'_>, seed: Option<u64>) -> PyResult<()> {
        self.check_buffers(py)?;
        let (Some(envs), out) = (self.envs.as_mut(), &self.out) else {
            return Ok(());
        };
        py.detach(|| envs.reset(seed).map(|_| ()))
            .map_err(vec_env_error)?;
        let (obs, at) = (envs.observations(), envs.num_envs() * 8);
        // SAFETY: see `write_step`: this object owns the bytearray, nothing resizes it (numpy's
        // views hold its buffer), and the GIL is held with no Python code run during the write.
        let out = unsafe { out.bind(py).as_bytes_mut() };
        write_f32(obs, &mut out[at..at + obs.len() * 4]);
        Ok(())
    }

    /// Steps every env with the float32 bytes of `actions` (`[N, action_dim]`) and writes
    /// the outputs into the buffers of [`Self::buffers`]; returns the indices of the envs
    /// that finished an episode, or `None` when none did (the common case, with no list).
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: &[u8],
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        self.check_buffers(py)?;
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
        let view = envs.last_step();
        // SAFETY: both bytearrays are owned by this object and never resized (numpy's views
        // on them export their buffers, which bars resizing); the GIL is held and no Python
        // code runs between taking these slices and the end of the writes, so no other
        // reference to the bytes is used meanwhile.
        let (out, finals) = unsafe {
            (
                self.out.bind(py).as_bytes_mut(),
                self.finals.bind(py).as_bytes_mut(),
            )
        };
        write_step(&view, out);
        if !(0..view.rewards.len()).any(|i| view.done(i)) {
            return Ok(None);
        }
        let done = write_finals(&view, finals);
        Ok(Some(PyList::new(py, done)?))
    }

    /// Stops the workers (their envs are dropped on their own threads); later calls fail.
    fn close(&mut self, py: Python<'_>) {
        if let Some(envs) = self.envs.take() {
            py.detach(move || drop(envs));
        }
    }
}

/// Writes one step's outputs into `out`, laid out as [`NativeVecEnv::buffers`] says.
fn write_step(view: &StepView<'_>, out: &mut [u8]) {
    let n = view.rewards.len();
    // Rewards first as float64 (what Gymnasium's vector envs return, and 8-byte aligned).
    let (obs_at, flags_at) = (n * 8, n * 8 + view.obs.len() * 4);
    for (c, r) in out[..obs_at].chunks_exact_mut(8).zip(view.rewards) {
        c.copy_from_slice(&f64::from(*r).to_ne_bytes());
    }
    write_f32(view.obs, &mut out[obs_at..flags_at]);
    for i in 0..n {
        out[flags_at + i] = u8::from(view.terminated[i]);
        out[flags_at + n + i] = u8::from(view.truncated[i]);
    }
}

/// Writes each finished episode's return, length and final observation into its env's row of
/// `finals` (zero in the other rows, as Gymnasium's infos have them); the finished envs.
fn write_finals(view: &StepView<'_>, finals: &mut [u8]) -> Vec<usize> {
    let n = view.rewards.len();
    let od = view.obs.len() / n.max(1);
    finals[..n * 16].fill(0);
    for e in view.episodes {
        let (r, l) = (e.env_index * 8, (n + e.env_index) * 8);
        finals[r..r + 8].copy_from_slice(&e.episode_return.to_ne_bytes());
        finals[l..l + 8].copy_from_slice(&i64::from(e.length).to_ne_bytes());
    }
    let mut done = Vec::new();
    let at = n * 16;
    for i in 0..n {
        let row = &mut finals[at + i * od * 4..at + (i + 1) * od * 4];
        match view.final_observation(i) {
            Some(obs) => {
                write_f32(obs, row);
                done.push(i);
            }
            None => row.fill(0),
        }
    }
    done
}
