//! The breaker hook of the recall pipeline.
//!
//! Today it honours the operator's manual override; the count-based state machine of SPEC §7 plugs in
//! behind the same two calls (`should_attempt`, `on_result`).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::error::{Error, Result};

/// Manual breaker override (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerOverride {
    /// The state machine decides.
    #[default]
    Auto,
    /// Every call is refused and answered by the fallback.
    ForcedOpen,
    /// Every call is attempted.
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

    fn from_u8(value: u8) -> BreakerOverride {
        match value {
            1 => BreakerOverride::ForcedOpen,
            2 => BreakerOverride::ForcedClosed,
            _ => BreakerOverride::Auto,
        }
    }
}

/// The outcome of one attempted call, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallOutcome {
    /// Whether the call failed (error, slow or low mass).
    pub failed: bool,
    /// The call's latency.
    pub latency: Duration,
}

/// Admission control for recalls. Lock-free: one relaxed load per call.
#[derive(Debug)]
pub struct Breaker {
    mode: AtomicU8,
    clock: SharedClock,
    since_unix_ms: AtomicU64,
}

impl Breaker {
    /// A closed breaker in `auto` mode.
    pub fn new(clock: SharedClock) -> Self {
        let since = clock.unix_ms();
        Breaker { mode: AtomicU8::new(0), clock, since_unix_ms: AtomicU64::new(since) }
    }

    /// `closed` or `open` (the pass-through opens only when forced).
    pub fn state_name(&self) -> &'static str {
        if self.should_attempt() { "closed" } else { "open" }
    }

    /// The `spreading_breaker_state` gauge value: 0 closed, 1 half-open, 2 open.
    pub fn state_gauge(&self) -> f64 {
        if self.should_attempt() { 0.0 } else { 2.0 }
    }

    /// The snapshot's `breaker` object.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": self.state_name(),
            "since_unix_ms": self.since_unix_ms.load(Ordering::Relaxed),
            "failure_rate": 0.0,
            "window_calls": 0,
            "override": self.override_mode().as_str(),
        })
    }

    /// Whether a call may spread (false → answer with the fallback, reason `breaker_open`).
    #[inline]
    pub fn should_attempt(&self) -> bool {
        self.override_mode() != BreakerOverride::ForcedOpen
    }

    /// Record an attempted call's outcome.
    #[inline]
    pub fn on_result(&self, _outcome: CallOutcome) {}

    /// Set the manual override.
    pub fn set_override(&self, mode: BreakerOverride) {
        let before = self.state_name();
        self.mode.store(mode as u8, Ordering::Relaxed);
        if self.state_name() != before {
            self.since_unix_ms.store(self.clock.unix_ms(), Ordering::Relaxed);
        }
    }

    /// The manual override.
    pub fn override_mode(&self) -> BreakerOverride {
        BreakerOverride::from_u8(self.mode.load(Ordering::Relaxed))
    }
}
