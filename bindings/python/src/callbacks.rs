//! Python callables called from engine threads: health probes and breaker transition callbacks.
//! They take the GIL; a raise goes to `sys.unraisablehook` once and counts as a failure, never into
//! the engine.

use std::time::Duration;

use axonal_core::{HealthCheckResult, HealthStatus, ProbeOptions, TransitionEvent};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{describe, to_py};
use crate::errors::ConfigError;

/// Call `f` with the GIL held, sending a raised exception to `sys.unraisablehook`.
fn call_reporting<T>(what: &str, f: impl FnOnce(Python<'_>) -> PyResult<T>) -> Option<T> {
    Python::attach(|py| match f(py) {
        Ok(value) => Some(value),
        Err(e) => {
            let context = pyo3::types::PyString::new(py, what);
            e.write_unraisable(py, Some(&context.into_any()));
            None
        }
    })
}

/// A TypeError unless `value` is callable (at registration, not at every later call).
pub(crate) fn require_callable(value: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if value.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!("{what} must be callable, got {}", describe(value))))
    }
}

/// The probe options from Python's seconds.
pub(crate) fn probe_options(interval: f64, timeout: f64, critical: bool) -> PyResult<ProbeOptions> {
    let seconds = |value: f64, field: &str| {
        Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
            ConfigError::new_err(format!("{field}: must be a positive number of seconds (got {value})"))
        })
    };
    Ok(ProbeOptions {
        interval: seconds(interval, "interval")?,
        timeout: seconds(timeout, "timeout")?,
        critical,
    })
}

/// A probe check that calls `probe` (checked callable).
pub(crate) fn probe_check(
    name: &str,
    probe: Py<PyAny>,
) -> impl Fn() -> HealthCheckResult + Send + Sync + 'static {
    let context = format!("axonal probe {name:?}");
    move || {
        call_reporting(&context, |py| probe_result(probe.bind(py).call0()?))
            .unwrap_or_else(|| HealthCheckResult::failed(HealthStatus::Unhealthy, "the probe raised"))
    }
}

/// A transition callback that calls `callback` (checked callable) with the event as a dict.
pub(crate) fn transition_callback(
    callback: Py<PyAny>,
) -> impl Fn(&TransitionEvent) -> Result<(), String> + Send + 'static {
    move |event: &TransitionEvent| {
        call_reporting("axonal breaker transition callback", |py| {
            callback.bind(py).call1((to_py(py, event)?,)).map(drop)
        })
        .ok_or_else(|| "the callback raised".to_owned())
    }
}

/// A Python probe's answer as a check result.
fn probe_result(answer: Bound<'_, PyAny>) -> PyResult<HealthCheckResult> {
    let status = |text: &str| match text {
        "healthy" => Ok(HealthStatus::Healthy),
        "degraded" => Ok(HealthStatus::Degraded),
        "unhealthy" => Ok(HealthStatus::Unhealthy),
        other => Err(PyValueError::new_err(format!(
            "probe status {other:?}: expected healthy, degraded or unhealthy"
        ))),
    };
    let (status, reason) = if let Ok(ok) = answer.extract::<bool>() {
        (if ok { HealthStatus::Healthy } else { HealthStatus::Unhealthy }, None)
    } else if let Ok(text) = answer.extract::<String>() {
        (status(&text)?, None)
    } else if let Ok((text, reason)) = answer.extract::<(String, String)>() {
        (status(&text)?, Some(reason))
    } else {
        return Err(PyTypeError::new_err("a probe returns a bool, a status string or (status, reason)"));
    };
    Ok(match (status, reason) {
        (HealthStatus::Healthy, _) => HealthCheckResult::healthy(),
        (status, Some(reason)) => HealthCheckResult::failed(status, reason),
        (status, None) => HealthCheckResult::failed(status, status.as_str()),
    })
}
