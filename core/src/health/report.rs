//! The health report (docs/spec.md §6): every probe's latest state and the overall status, typed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::HealthStatus;
use super::runner::{Entry, ProbeState};

/// Version tag of the health report JSON.
pub const HEALTH_SCHEMA: &str = "axonal.health.v1";

/// The registry's cached report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// [`HEALTH_SCHEMA`].
    pub schema: &'static str,
    /// The worst status of the critical probes.
    pub status: HealthStatus,
    /// When a probe last finished a check, Unix milliseconds (`None`: none has yet).
    pub checked_at: Option<u64>,
    /// Each probe's entry, by name.
    pub probes: BTreeMap<String, ProbeReport>,
}

/// One probe's entry in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// Its hysteresis state.
    pub status: HealthStatus,
    /// Whether it counts toward the overall status.
    pub critical: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// Last success, Unix milliseconds.
    pub last_success: Option<u64>,
    /// Last failure, Unix milliseconds.
    pub last_failure: Option<u64>,
    /// The last check's latency.
    pub latency_ms: f64,
    /// The latency it is judged against (the probe's budget, else its timeout).
    pub budget_ms: f64,
    /// Why the last check came out as it did, when it said.
    pub reason: Option<String>,
    /// Checks run.
    pub checks_total: u64,
    /// Time between checks.
    pub interval_ms: u64,
    /// Longest a check may run.
    pub timeout_ms: u64,
    /// Probe-specific detail of the last check.
    pub details: Value,
}

impl ProbeReport {
    pub(super) fn of(entry: &Entry, state: &ProbeState) -> ProbeReport {
        let budget = entry.probe.budget().unwrap_or(state.options.timeout);
        ProbeReport {
            status: state.status,
            critical: state.options.critical,
            consecutive_failures: state.consecutive_failures,
            consecutive_successes: state.consecutive_successes,
            last_success: state.last_success,
            last_failure: state.last_failure,
            latency_ms: state.latency.as_secs_f64() * 1e3,
            budget_ms: budget.as_secs_f64() * 1e3,
            reason: state.reason.as_deref().map(str::to_owned),
            checks_total: state.checks_total,
            interval_ms: state.options.interval.as_millis() as u64,
            timeout_ms: state.options.timeout.as_millis() as u64,
            details: state.details.clone(),
        }
    }
}
