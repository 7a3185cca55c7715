//! [`LiveSpreadingProbe`] (`spreading_live`): judges the engine's own recalls since its previous
//! run — what the synthetic `spreading` probe cannot see, such as an empty or edgeless graph swapped
//! in while cues keep coming (docs/spec.md §6).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::state::EngineState;
use crate::health::{HealthCheckResult, HealthProbe, HealthStatus};
use crate::telemetry::Summary;

/// The probe registered by default as `spreading_live` (critical, on the `health` schedule).
pub struct LiveSpreadingProbe {
    state: Arc<EngineState>,
    seen: Mutex<Seen>,
}

/// Cumulative counts at the previous run.
#[derive(Default)]
struct Seen {
    calls: u64,
    failed: u64,
    empty: u64,
    latency_buckets: Vec<u64>,
}

impl LiveSpreadingProbe {
    pub(super) fn new(state: Arc<EngineState>) -> Self {
        LiveSpreadingProbe { state, seen: Mutex::new(Seen::default()) }
    }
}

impl HealthProbe for LiveSpreadingProbe {
    fn name(&self) -> &str {
        "spreading_live"
    }

    fn check(&self) -> HealthCheckResult {
        let live = self.state.live.load();
        let health = &live.config.health;
        // Outcomes first, calls last: a recall records its latency before its outcome, so every
        // failure read here belongs to a call read here (a call whose outcome is not recorded yet
        // counts as a success now; its failure counts in the next interval).
        let failed_total = self.state.metrics.failures_total.total();
        let empty_total = self.state.live_feed.empty.total();
        let latency = self.state.tuner_feed.spread_latency.totals();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let calls = latency.count.saturating_sub(seen.calls);
        let failed = failed_total.saturating_sub(seen.failed);
        let empty = empty_total.saturating_sub(seen.empty);
        let buckets: Vec<u64> = if seen.latency_buckets.len() == latency.fine.len() {
            latency
                .fine
                .iter()
                .zip(&seen.latency_buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect()
        } else {
            latency.fine.clone()
        };
        *seen = Seen {
            calls: latency.count,
            failed: failed_total,
            empty: empty_total,
            latency_buckets: latency.fine,
        };
        drop(seen);

        let p95 = Summary::from_buckets(&buckets, buckets.iter().sum(), 0.0, None).p95;
        let details = json!({"calls": calls, "failed": failed, "no_activation": empty, "p95_ms": p95 * 1e3});
        let (status, reason) =
            judge(calls, failed, empty, p95, live.budget, health.live_min_calls, health.live_failure_share);
        HealthCheckResult { status, latency: Duration::ZERO, reason: Some(reason), details }
    }

    fn budget(&self) -> Option<Duration> {
        Some(self.state.live.load().budget)
    }
}

/// The verdict on one interval of live recalls.
fn judge(
    calls: u64,
    failed: u64,
    empty: u64,
    p95: f64,
    budget: Duration,
    min_calls: u64,
    failure_share: f64,
) -> (HealthStatus, Cow<'static, str>) {
    if calls < min_calls {
        let reason = format!("idle: {calls} live recalls since the last check ({min_calls} needed to judge)");
        return (HealthStatus::Healthy, reason.into());
    }
    let bad = failed + empty;
    if bad as f64 >= failure_share * calls as f64 {
        let mut parts = Vec::new();
        if failed > 0 {
            parts.push(format!("{failed} failed (error, slow or low mass)"));
        }
        if empty > 0 {
            parts.push(format!("{empty} delivered no activation"));
        }
        let reason =
            format!("{bad} of {calls} live recalls failed or delivered no activation: {}", parts.join(", "));
        return (HealthStatus::Unhealthy, reason.into());
    }
    if p95 > budget.as_secs_f64() {
        let reason = format!(
            "live p95 latency {:.1} ms over the {:.1} ms budget ({calls} recalls)",
            p95 * 1e3,
            budget.as_secs_f64() * 1e3
        );
        return (HealthStatus::Degraded, reason.into());
    }
    (HealthStatus::Healthy, format!("{calls} live recalls, {bad} failed or empty").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_millis(50);

    #[test]
    fn verdicts_follow_the_spec() {
        let (status, reason) = judge(19, 19, 0, 0.001, BUDGET, 20, 0.5);
        assert_eq!(status, HealthStatus::Healthy);
        assert!(reason.starts_with("idle"), "{reason}");
        let (status, reason) = judge(40, 0, 31, 0.001, BUDGET, 20, 0.5);
        assert_eq!(status, HealthStatus::Unhealthy);
        assert!(
            reason.contains("31 of 40 live recalls") && reason.contains("31 delivered no activation"),
            "{reason}"
        );
        assert_eq!(judge(40, 10, 10, 0.001, BUDGET, 20, 0.5).0, HealthStatus::Unhealthy, "at the share");
        assert_eq!(judge(40, 10, 9, 0.001, BUDGET, 20, 0.5).0, HealthStatus::Healthy, "below it");
        let (status, reason) = judge(40, 0, 0, 0.080, BUDGET, 20, 0.5);
        assert_eq!(status, HealthStatus::Degraded);
        assert!(reason.contains("80.0 ms over the 50.0 ms budget"), "{reason}");
    }
}
