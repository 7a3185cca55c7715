//! The exception hierarchy under `axonal.AxonalError`, and core errors mapped onto it.

use axonal_core::ErrorKind;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(axonal, AxonalError, PyException, "Base class of every Axonal error.");
create_exception!(axonal, ConfigError, AxonalError, "A configuration value or patch was rejected.");
create_exception!(axonal, GraphError, AxonalError, "Building or loading a graph failed.");
create_exception!(axonal, RecallError, AxonalError, "A cue was malformed or a recall could not run.");
create_exception!(axonal, ClosedError, AxonalError, "The engine was closed.");

/// The exception for a core error: its kind picks the class, its message names the field and value.
pub(crate) fn py_err(e: axonal_core::Error) -> PyErr {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::Recall => RecallError::new_err(message),
        ErrorKind::Graph | ErrorKind::Io => GraphError::new_err(message),
        // Config, an unavailable feature, and kinds this binding does not know yet.
        _ => ConfigError::new_err(message),
    }
}

/// Register the exception classes in the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("AxonalError", py.get_type::<AxonalError>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    module.add("GraphError", py.get_type::<GraphError>())?;
    module.add("RecallError", py.get_type::<RecallError>())?;
    module.add("ClosedError", py.get_type::<ClosedError>())?;
    Ok(())
}
