//! The breaker's vocabulary, shared with the engine, the bindings and the callbacks: states,
//! overrides, transition events, admissions and outcomes, settings and status.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::BreakerConfig;
use crate::error::{Error, Result};

/// Manual breaker override (docs/spec.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerOverride {
    /// The state machine decides.
    #[default]
    Auto,
    /// Every call is refused and answered by the fallback.
    ForcedOpen,
    /// Every call is attempted and the breaker never trips.
    ForcedClosed,
}

impl BreakerOverride {
    /// `auto`, `forced_open` or `forced_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerOverride::Auto => "auto",
            BreakerOverride::ForcedOpen => "forced_open",
            BreakerOverride::ForcedClosed => "forced_closed",
        }
    }

    /// Parse `auto`, `forced_open` or `forced_closed`.
    pub fn parse(text: &str) -> Result<BreakerOverride> {
        match text {
            "auto" => Ok(BreakerOverride::Auto),
            "forced_open" => Ok(BreakerOverride::ForcedOpen),
            "forced_closed" => Ok(BreakerOverride::ForcedClosed),
            other => Err(Error::config(
                "breaker_override",
                format!("unknown mode {other:?} (expected auto|forced_open|forced_closed)"),
            )),
        }
    }

    pub(super) fn from_u8(value: u8) -> BreakerOverride {
        match value {
            1 => BreakerOverride::ForcedOpen,
            2 => BreakerOverride::ForcedClosed,
            _ => BreakerOverride::Auto,
        }
    }
}

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow; outcomes are recorded.
    Closed = 0,
    /// A few probe calls test recovery.
    HalfOpen = 1,
    /// Calls are refused until the cooldown ends.
    Open = 2,
}

impl BreakerState {
    /// `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    pub(super) fn from_u8(value: u8) -> BreakerState {
        match value {
            1 => BreakerState::HalfOpen,
            2 => BreakerState::Open,
            _ => BreakerState::Closed,
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransitionReason {
    /// Closed → open: the window's failure rate exceeded the threshold.
    FailureRate,
    /// Closed → open: the window's p95 latency exceeded the budget.
    LatencyBudget,
    /// Open → half-open: the cooldown ended.
    CooldownElapsed,
    /// Half-open → open: a probe call failed.
    ProbeFailed,
    /// Half-open → closed: every probe call succeeded.
    ProbesSucceeded,
    /// The operator changed the override.
    Override,
}

/// A state change, as delivered to callbacks (docs/spec.md §15).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionEvent {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Why.
    pub reason: TransitionReason,
    /// When, in Unix milliseconds.
    pub at_unix_ms: u64,
    /// The window's failure rate at the transition.
    pub failure_rate: f64,
    /// Outcomes in the window at the transition.
    pub window_calls: u64,
    /// The open period just started (0 unless `to` is open).
    pub cooldown_ms: u64,
}

impl TransitionEvent {
    /// The event as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The outcome of one attempted call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallOutcome {
    /// Whether the call failed (error, slow or low mass).
    pub failed: bool,
    /// The call's latency.
    pub latency: Duration,
}

/// The breaker's answer to "may this call spread?", handed back with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: record the outcome in window `epoch`.
    Closed { epoch: u64 },
    /// Half-open probe of the period whose epoch's low 32 bits are `epoch`.
    Probe { epoch: u64 },
    /// Forced closed by the operator: attempt, record nothing.
    Forced,
    /// Refused: answer with the fallback.
    Refused,
}

impl Admission {
    /// Whether the call may spread.
    pub fn allowed(self) -> bool {
        !matches!(self, Admission::Refused)
    }
}

/// The breaker's settings: its config section and the latency budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Outcomes in the window.
    pub window_size: usize,
    /// Outcomes needed before evaluating.
    pub min_calls: usize,
    /// Trip when the failure rate exceeds this.
    pub failure_rate_threshold: f64,
    /// Trip when the window's p95 latency exceeds this.
    pub latency_budget: Duration,
    /// First open period.
    pub cooldown: Duration,
    /// Cap of the doubling open period.
    pub max_cooldown: Duration,
    /// Calls admitted while half-open.
    pub half_open_max_probes: u32,
}

impl BreakerSettings {
    /// The settings of a `breaker` config section, tripping on p95 latency over `latency_budget`.
    pub fn new(b: &BreakerConfig, latency_budget: Duration) -> Self {
        BreakerSettings {
            window_size: b.window_size,
            min_calls: b.min_calls,
            failure_rate_threshold: b.failure_rate_threshold,
            latency_budget,
            cooldown: Duration::from_millis(b.cooldown_ms),
            max_cooldown: Duration::from_millis(b.max_cooldown_ms),
            half_open_max_probes: b.half_open_max_probes,
        }
    }
}

/// The breaker's state for reports (the snapshot's `spreading.breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerStatus {
    /// The state.
    pub state: BreakerState,
    /// When it entered that state, Unix milliseconds.
    pub since_unix_ms: u64,
    /// The window's failure rate.
    pub failure_rate: f64,
    /// Outcomes in the window.
    pub window_calls: u64,
    /// The manual override.
    #[serde(rename = "override")]
    pub r#override: BreakerOverride,
}
