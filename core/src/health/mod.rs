//! Health probes (docs/spec.md §6): a registry that runs each probe on its own worker thread at its
//! interval ([`runner`]), enforces its timeout (a hung probe is reported `unhealthy`/`timeout` and
//! never delays the others), applies hysteresis, and keeps a cached report ([`report`]).

mod options;
pub mod report;
mod runner;

pub use options::ProbeOptions;
pub use report::{HEALTH_SCHEMA, HealthReport, ProbeReport};
pub use runner::{HealthMetrics, HealthRegistry};

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// A probe's verdict, and the hysteresis state of a probe or of the whole registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working.
    Healthy = 0,
    /// Failing, but fewer than `failure_threshold` times in a row (or recovering from that).
    Degraded = 1,
    /// Failing.
    Unhealthy = 2,
}

impl HealthStatus {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The status for a C/Python integer (0 healthy, 1 degraded, 2 unhealthy).
    pub fn from_index(value: u32) -> Option<HealthStatus> {
        match value {
            0 => Some(HealthStatus::Healthy),
            1 => Some(HealthStatus::Degraded),
            2 => Some(HealthStatus::Unhealthy),
            _ => None,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckResult {
    /// `healthy` is a success; `degraded` and `unhealthy` are failures.
    pub status: HealthStatus,
    /// How long the check took (the registry measures it when the probe leaves it zero).
    pub latency: Duration,
    /// Why, when not healthy.
    pub reason: Option<Cow<'static, str>>,
    /// Probe-specific detail for the report.
    pub details: Value,
}

impl HealthCheckResult {
    /// A healthy result.
    pub fn healthy() -> Self {
        HealthCheckResult {
            status: HealthStatus::Healthy,
            latency: Duration::ZERO,
            reason: None,
            details: Value::Null,
        }
    }

    /// A failed result with a reason.
    pub fn failed(status: HealthStatus, reason: impl Into<Cow<'static, str>>) -> Self {
        HealthCheckResult {
            status,
            latency: Duration::ZERO,
            reason: Some(reason.into()),
            details: Value::Null,
        }
    }
}

/// A health probe. `check` runs on the probe's own worker thread; it may block (the registry's
/// timeout reports it) but should not.
pub trait HealthProbe: Send + Sync {
    /// The probe's name in reports.
    fn name(&self) -> &str;
    /// Run one check.
    fn check(&self) -> HealthCheckResult;
    /// The latency budget shown as `budget_ms` (default: the probe's timeout).
    fn budget(&self) -> Option<Duration> {
        None
    }
}

/// A probe from a closure.
pub struct FnProbe<F> {
    name: String,
    check: F,
}

impl<F: Fn() -> HealthCheckResult + Send + Sync> FnProbe<F> {
    /// A probe named `name` that runs `check`.
    pub fn new(name: impl Into<String>, check: F) -> Self {
        FnProbe { name: name.into(), check }
    }
}

impl<F: Fn() -> HealthCheckResult + Send + Sync> HealthProbe for FnProbe<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> HealthCheckResult {
        (self.check)()
    }
}
