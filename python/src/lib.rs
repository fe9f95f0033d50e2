//! wormnet-python: wormnet's envs for Python, the native half of the `wormnet` package.
//!
//! It exists so that Python users (Gymnasium, Stable-Baselines3, CleanRL) reach the Bevy +
//! Rapier envs without libtorch: the module `wormnet._native` has one class for a single env
//! ([`NativeEnv`], rendering included) and one for a batch on worker threads ([`NativeVecEnv`]).
//! The pure-Python package around it (python/wormnet/) turns them into `gymnasium.Env` and
//! `gymnasium.vector.VectorEnv`.
//!
//! Values cross as bytes: actions come in as the bytes of a float32 array, observations go out
//! as a `bytearray` filled here that numpy views without copying. Errors are Python exceptions
//! with the CLI's one-line messages (`ValueError` for bad options and actions, `RuntimeError`
//! for a faulted or panicking env); nothing here aborts the interpreter.
//!
//! A user's own env crate builds its own module with [`init_module`] and its registry.

mod options;
mod probe;
mod single;
mod vector;

use std::sync::OnceLock;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use wormnet_sim::env::one_line;
use wormnet_sim::{FaultKind, Registry, RegistryError, VecEnvError};

pub use single::NativeEnv;
pub use vector::NativeVecEnv;

/// The envs this module builds by name, set once by [`init_module`].
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The registry the module was initialised with (wormnet's own envs if none was given).
fn registry() -> &'static Registry {
    REGISTRY.get_or_init(builtin_registry)
}

/// wormnet's envs plus the panic probe the Python tests use ([`probe`]).
pub fn builtin_registry() -> Registry {
    let mut registry = wormnet_envs::registry();
    // Only fails if the name were taken, and no wormnet env starts with `_`.
    let _ = registry.register(probe::NAME, probe::SUMMARY, |o| {
        Ok(Box::new(probe::PanicProbe::from_options(o)?))
    });
    registry
}

/// Fills `module` with the env classes over `registry`: how a user's env crate makes its own
/// extension module (`#[pymodule] fn my_envs(m) { wormnet_python::init_module(m, my_registry()) }`).
/// The first registry given in a process is the one used.
pub fn init_module(module: &Bound<'_, PyModule>, registry: Registry) -> PyResult<()> {
    let _ = REGISTRY.set(registry);
    module.add_class::<NativeEnv>()?;
    module.add_class::<NativeVecEnv>()?;
    module.add_function(wrap_pyfunction!(env_names, module)?)?;
    module.add_function(wrap_pyfunction!(env_summary, module)?)?;
    Ok(())
}

/// Names of the envs this module builds, sorted (the Python side registers them with Gymnasium).
#[pyfunction]
fn env_names() -> Vec<String> {
    registry().names()
}

/// The one-line summary an env was registered with.
#[pyfunction]
fn env_summary(name: &str) -> Option<String> {
    registry().summary(name).map(str::to_string)
}

/// The extension module of the `wormnet` package.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    init_module(module, builtin_registry())
}

/// `ValueError` for what the caller got wrong (options, names), with the CLI's message.
fn value_error(e: &(dyn std::error::Error + 'static)) -> PyErr {
    PyValueError::new_err(one_line(e))
}

/// A registry error: an unknown name or bad options are the caller's, a failed build the env's.
fn registry_error(e: RegistryError) -> PyErr {
    match e {
        RegistryError::Env(wormnet_sim::EnvError::Build { .. }) => {
            PyRuntimeError::new_err(one_line(&e))
        }
        _ => value_error(&e),
    }
}

/// A VecEnv error: bad options, a bad action buffer or invalid actions are `ValueError`, a
/// fault inside an env (a panic, a NaN observation) or a dead worker `RuntimeError`.
fn vec_env_error(e: VecEnvError) -> PyErr {
    let callers = match &e {
        VecEnvError::Config { .. } | VecEnvError::ActionBuffer { .. } => true,
        VecEnvError::Build { cause, .. } => !matches!(cause, wormnet_sim::EnvError::Build { .. }),
        VecEnvError::Faults(faults) => faults
            .iter()
            .all(|f| matches!(f.kind, FaultKind::InvalidAction(_))),
        _ => false,
    };
    if callers {
        value_error(&e)
    } else {
        PyRuntimeError::new_err(one_line(&e))
    }
}

/// The f32 values of a float32 array's bytes (native byte order, as numpy writes them).
fn read_f32(bytes: &[u8], out: &mut [f32], what: &str) -> PyResult<()> {
    if bytes.len() != out.len() * 4 || !bytes.len().is_multiple_of(4) {
        return Err(PyValueError::new_err(format!(
            "{what}: got {} bytes, expected {} float32 values ({} bytes)",
            bytes.len(),
            out.len(),
            out.len() * 4
        )));
    }
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(())
}

/// Writes `values` as native-order float32 bytes into `out` (`4 * values.len()` long).
fn write_f32(values: &[f32], out: &mut [u8]) {
    for (c, v) in out.chunks_exact_mut(4).zip(values) {
        c.copy_from_slice(&v.to_ne_bytes());
    }
}
