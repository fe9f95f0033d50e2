//! Python keyword options → the TOML table every env constructor reads, so `make("vehicle",
//! camera=True)` means what `[env.options] camera = true` means in a config.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// The options table of a `dict` of keyword options; a value TOML cannot hold is a `TypeError`
/// naming the option.
pub fn table(options: Option<&Bound<'_, PyDict>>) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    let Some(options) = options else {
        return Ok(table);
    };
    for (key, value) in options.iter() {
        let key: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err("env options: every option name must be a string"))?;
        let value = to_toml(&value, &key)?;
        table.insert(key, value);
    }
    Ok(table)
}

/// One value: bool, int, float, str, a list or tuple of values, or a dict of them.
fn to_toml(value: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    // bool first: Python's bool is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(toml::Value::Boolean(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        let i: i64 = value.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "env option `{key}`: integer out of the 64-bit range"
            ))
        })?;
        return Ok(toml::Value::Integer(i));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(value.extract()?));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_cow()?.into_owned()));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value
            .try_iter()?
            .map(|item| to_toml(&item?, key))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(toml::Value::Array(items));
    }
    if let Ok(d) = value.cast::<PyDict>() {
        return Ok(toml::Value::Table(table(Some(d))?));
    }
    // numpy scalars and other numbers: anything that says it is an int or a float.
    if let Ok(i) = value
        .call_method0("__index__")
        .and_then(|v| v.extract::<i64>())
    {
        return Ok(toml::Value::Integer(i));
    }
    if let Ok(f) = value
        .call_method0("__float__")
        .and_then(|v| v.extract::<f64>())
    {
        return Ok(toml::Value::Float(f));
    }
    let type_name = value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    Err(PyTypeError::new_err(format!(
        "env option `{key}`: a {type_name} is not an option value (bool, int, float, str, list or dict)"
    )))
}
