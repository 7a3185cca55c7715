//! The engine's typed reports (docs/spec.md §5, §12): the streaming snapshot with its `spreading`
//! section, and the config view. Bindings convert them once, at their edge.

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::{EngineState, utilization};
use crate::breaker::{BreakerOverride, BreakerState, BreakerStatus};
use crate::chaos::ChaosConfig;
use crate::config::{EngineConfig, Guardrails, TunedKnob};
use crate::health::HealthReport;
use crate::recall::FallbackReason;
use crate::telemetry::{ExportStats, Summary, Totals, WINDOWS, WindowSnapshot};
use crate::tuner::{AuditEntry, AuditLog, TunerState};

/// Version tag of the streaming snapshot.
pub const SNAPSHOT_SCHEMA: &str = "axonal.snapshot.v1";
/// Version tag of the config view (`GET /api/v1/system/spreading/config`).
pub const CONFIG_VIEW_SCHEMA: &str = "axonal.config_view.v1";

/// The streaming snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// [`SNAPSHOT_SCHEMA`].
    pub schema: &'static str,
    /// When, Unix milliseconds.
    pub at_unix_ms: u64,
    /// Every metric over each rolling window.
    pub windows: BTreeMap<String, WindowSnapshot>,
    /// Every metric since start.
    pub totals: Totals,
    /// The spreading summary.
    pub spreading: SpreadingSection,
    /// The latest health report.
    pub health: HealthReport,
    /// Sampling and dropping.
    pub export: ExportStats,
}

/// The snapshot's `spreading` section (also reported on its own).
#[derive(Debug, Clone, Serialize)]
pub struct SpreadingSection {
    /// Whole-call and per-tier latency over the 60 s window, seconds.
    pub latency: LatencySection,
    /// Fallback answers.
    pub fallback: FallbackSection,
    /// The breaker.
    pub breaker: BreakerStatus,
    /// The OpenCL device.
    pub gpu: GpuSection,
    /// The scratch buffer pool.
    pub pool: PoolSection,
    /// The auto-tuner.
    pub autotune: AutotuneSection,
    /// The living graph.
    pub graph: super::living::GraphSection,
    /// The embedding index.
    pub similarity: super::similarity::SimilaritySection,
    /// Recalls over the latency budget.
    pub budget_violations_total: u64,
    /// Recall calls.
    pub recalls_total: u64,
    /// Attempted recalls that failed.
    pub failures_total: u64,
}

/// Latency percentiles of one histogram over the 60 s window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Observations.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl From<Summary> for Percentiles {
    fn from(s: Summary) -> Self {
        Percentiles { count: s.count, p50: s.p50, p90: s.p90, p95: s.p95, p99: s.p99 }
    }
}

/// Whole-call and per-tier latency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencySection {
    /// Whole calls.
    pub total: Percentiles,
    /// Time on the hot tier.
    pub hot: Percentiles,
    /// Time on the warm tier.
    pub warm: Percentiles,
    /// Time on the cold tier.
    pub cold: Percentiles,
}

/// Fallback answers, total and by reason.
#[derive(Debug, Clone, Serialize)]
pub struct FallbackSection {
    /// Every fallback answer.
    pub total: u64,
    /// By reason (`breaker_open`, `error`, `slow`, `low_mass`).
    pub by_reason: BTreeMap<&'static str, u64>,
}

/// The OpenCL device.
#[derive(Debug, Clone, Serialize)]
pub struct GpuSection {
    /// Its name, when the engine has one.
    pub device: Option<String>,
    /// Kernel launches.
    pub launches: u64,
    /// Spreads that fell back to the CPU.
    pub fallbacks: u64,
}

/// The scratch buffer pool.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PoolSection {
    /// Lent out.
    pub in_use: usize,
    /// In existence.
    pub capacity: usize,
    /// `in_use / capacity`.
    pub utilization: f64,
}

/// The auto-tuner in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct AutotuneSection {
    /// Whether it may change the config.
    pub enabled: bool,
    /// Changes applied.
    pub changes_total: u64,
    /// The last change.
    pub last: Option<AuditEntry>,
}

/// The config view: the live config, its guardrails and pinned knobs, the tuner, the breaker and
/// chaos.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    /// [`CONFIG_VIEW_SCHEMA`].
    pub schema: &'static str,
    /// The live config.
    pub config: EngineConfig,
    /// The tuner's guardrails.
    pub guardrails: Guardrails,
    /// Knobs the operator set outside their guardrails.
    pub pinned: Vec<TunedKnob>,
    /// The tuner's switch, state and audit log.
    pub autotune: AutotuneView,
    /// The breaker's state and override.
    pub breaker: BreakerView,
    /// The chaos being injected, if any.
    pub chaos: Option<ChaosConfig>,
}

/// The tuner in the config view.
#[derive(Debug, Clone, Serialize)]
pub struct AutotuneView {
    /// Whether it may change the config.
    pub enabled: bool,
    /// Its state.
    pub state: TunerState,
    /// Its audit log.
    pub audit: AuditLog,
}

/// The breaker in the config view.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BreakerView {
    /// The state.
    pub state: BreakerState,
    /// The manual override.
    #[serde(rename = "override")]
    pub r#override: BreakerOverride,
}

impl EngineState {
    /// The snapshot's `spreading` section.
    pub(super) fn spreading_section(&self) -> SpreadingSection {
        let t = &self.telemetry;
        let m = &self.metrics;
        let minute = WINDOWS.iter().position(|&w| w == 60).unwrap_or(2);
        let latency = |name: &str| Percentiles::from(t.window_summary(minute, name).unwrap_or_default());
        let (in_use, capacity) = (self.buffers.in_use(), self.buffers.capacity());
        SpreadingSection {
            latency: LatencySection {
                total: latency("spreading_recall_latency_seconds"),
                hot: latency("spreading_latency_hot_seconds"),
                warm: latency("spreading_latency_warm_seconds"),
                cold: latency("spreading_latency_cold_seconds"),
            },
            fallback: FallbackSection {
                total: m.fallback_total.total(),
                by_reason: FallbackReason::ALL
                    .iter()
                    .map(|r| (r.as_str(), m.fallback_by_reason[*r as usize].total()))
                    .collect(),
            },
            breaker: self.breaker.status(),
            gpu: GpuSection {
                device: self.device_name(),
                launches: m.gpu_launches_total.total(),
                fallbacks: m.gpu_fallback_total.total(),
            },
            pool: PoolSection { in_use, capacity, utilization: utilization(in_use, capacity) },
            autotune: AutotuneSection {
                enabled: self.autotune_enabled.load(std::sync::atomic::Ordering::Relaxed),
                changes_total: m.autotune_changes_total.total(),
                last: self.tuning().tuner.last_change(),
            },
            graph: self.graph_section(),
            similarity: self.similarity_section(),
            budget_violations_total: m.budget_violations_total.total(),
            recalls_total: m.recalls_total.total(),
            failures_total: m.failures_total.total(),
        }
    }
}
