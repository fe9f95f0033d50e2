//! One env on the calling thread, under the [`EpisodeDriver`]'s rules (action checks, time
//! limit, NaN checks, panics caught), with pictures from the offscreen renderer: what
//! `wormnet.make` wraps as a `gymnasium.Env`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use wormnet_sim::env::one_line;
use wormnet_sim::render::{OffscreenRenderer, RenderConfig, View};
use wormnet_sim::{EpisodeDriver, Fault, FaultKind};

use crate::{read_f32, registry, registry_error, write_f32};

/// One env (Bevy apps cannot change threads, so the object stays on the thread that made it).
#[pyclass(unsendable, module = "wormnet._native")]
pub struct NativeEnv {
    driver: EpisodeDriver,
    obs: Vec<f32>,
    action: Vec<f32>,
    renderer: Option<(u32, u32, OffscreenRenderer)>,
}

/// A fault as a Python exception: an action outside the space is the caller's (`ValueError`),
/// anything else (a panic, a NaN, a step after the end) a `RuntimeError`.
fn fault_error(fault: Fault) -> PyErr {
    match fault.kind {
        FaultKind::InvalidAction(_) => PyValueError::new_err(one_line(&fault)),
        _ => PyRuntimeError::new_err(one_line(&fault)),
    }
}

/// The bytes of `values` as float32, in a new `bytearray` that numpy views without copying.
fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, values.len() * 4, |out| {
        write_f32(values, out);
        Ok(())
    })
}

#[pymethods]
impl NativeEnv {
    /// Builds env `name` of the module's registry with keyword `options` (a dict).
    #[new]
    #[pyo3(signature = (name, options=None))]
    fn new(name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let table = crate::options::table(options)?;
        let built = catch_unwind(AssertUnwindSafe(|| registry().make(name, &table)));
        let env = match built {
            Ok(result) => result.map_err(registry_error)?,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(PyRuntimeError::new_err(format!(
                    "env `{name}`: constructor panicked: {message}"
                )));
            }
        };
        let driver = EpisodeDriver::new(env, 0);
        let obs = vec![0.0; driver.spec().obs_dim()];
        let action = vec![0.0; driver.spec().action_dim()];
        Ok(NativeEnv {
            driver,
            obs,
            action,
            renderer: None,
        })
    }

    /// The env's spec as JSON (spaces, names, `dt`, time limit, image shape).
    fn spec_json(&self) -> PyResult<String> {
        serde_json::to_string(self.driver.spec())
            .map_err(|e| PyRuntimeError::new_err(format!("spec as JSON: {e}")))
    }

    /// Starts an episode (`seed` reseeds, `None` continues the RNG); the first observation's
    /// float32 bytes.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        self.driver
            .reset(seed, &mut self.obs)
            .map_err(fault_error)?;
        f32_bytes(py, &self.obs)
    }

    /// One step with the float32 bytes of `action`: (observation bytes, reward, terminated,
    /// truncated). The time limit is applied here, as the Rust env applies it.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: &[u8],
    ) -> PyResult<(Bound<'py, PyByteArray>, f32, bool, bool)> {
        // Any length: the driver's check names a wrong one as the CLI does.
        self.action.resize(action.len() / 4, 0.0);
        read_f32(action, &mut self.action, "action")?;
        let t = self
            .driver
            .step(&self.action, &mut self.obs)
            .map_err(fault_error)?;
        Ok((
            f32_bytes(py, &self.obs)?,
            t.step.reward,
            t.step.terminated,
            t.step.truncated,
        ))
    }

    /// The current scene drawn offscreen, `height × width × 3` RGB bytes. The renderer starts
    /// on the first call (software Vulkan where there is no GPU) and is kept for its size.
    fn render<'py>(
        &mut self,
        py: Python<'py>,
        width: u32,
        height: u32,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let fresh = !matches!(&self.renderer, Some((w, h, _)) if (*w, *h) == (width, height));
        if fresh {
            self.renderer = None;
            let config = RenderConfig {
                width,
                height,
                panel: None,
            };
            let renderer = OffscreenRenderer::new(config)
                .map_err(|e| PyRuntimeError::new_err(format!("render: {}", one_line(&e))))?;
            self.renderer = Some((width, height, renderer));
        }
        let Some((_, _, renderer)) = self.renderer.as_mut() else {
            return Err(PyRuntimeError::new_err("render: no renderer"));
        };
        let view = View {
            frame: self.driver.env().frame(),
            ..View::default()
        };
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        renderer
            .render([view], |_, picture| {
                rgb.extend(picture.pixels().flat_map(|p| [p.0[0], p.0[1], p.0[2]]));
                Ok(())
            })
            .map_err(|e| PyRuntimeError::new_err(format!("render: {}", one_line(&e))))?;
        Ok(PyByteArray::new(py, &rgb))
    }

    /// Drops the renderer (the env itself goes with the object).
    fn close(&mut self) {
        self.renderer = None;
    }
}
