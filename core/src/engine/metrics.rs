//! The engine's metric catalogue (docs/spec.md §5), registered once in the engine's telemetry
//! registry with their handles, so the hot path records through handles and never looks a name up.

use crate::error::Result;
use crate::recall::FallbackReason;
use crate::telemetry::{Counter, Exposition, Gauge, Histogram, LATENCY_BOUNDS, MetricsRegistry};

const MASS_BOUNDS: &[f64] =
    &[0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 10_000.0, 100_000.0];
const DEPTH_BOUNDS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 16.0];
const TIERS: [&str; 3] = ["hot", "warm", "cold"];
/// Buckets (seconds) for work that takes milliseconds to minutes: compactions, snapshots.
const SLOW_BOUNDS: &[f64] =
    &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Handles to every engine metric.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// Spreading runs (recalls that spread, and health-probe spreads).
    pub spreads_total: Counter,
    /// Recall calls, whatever answered them.
    pub recalls_total: Counter,
    /// Attempted recalls classified as failures (error, slow, low mass).
    pub failures_total: Counter,
    /// Recalls whose whole-call latency exceeded the latency budget.
    pub budget_violations_total: Counter,
    /// Calls in which each tier's timeout cut spreading short (hot, warm, cold).
    pub tier_timeouts_total: [Counter; 3],
    /// Recalls answered by the fallback.
    pub fallback_total: Counter,
    /// Fallback answers by reason, in [`FallbackReason::ALL`] order.
    pub fallback_by_reason: [Counter; 4],
    /// OpenCL kernel launches.
    pub gpu_launches_total: Counter,
    /// Spreads that fell back from OpenCL to the CPU.
    pub gpu_fallback_total: Counter,
    /// Spreads that used, or tried to use, the OpenCL device (the fallbacks' denominator).
    pub gpu_spreads_total: Counter,
    /// Calls refused by the breaker.
    pub breaker_open_total: Counter,
    /// Breaker state transitions.
    pub breaker_transitions_total: Counter,
    /// Configuration changes made by the auto-tuner.
    pub autotune_changes_total: Counter,
    /// Health probe runs.
    pub health_checks_total: Counter,
    /// Health probe runs that failed.
    pub health_failures_total: Counter,
    /// Edges traversed by spreading.
    pub edges_traversed_total: Counter,
    /// Time a call spent on each tier (hot, warm, cold), only for tiers that had work.
    pub tier_latency: [Histogram; 3],
    /// Whole-call recall latency.
    pub recall_latency: Histogram,
    /// Activation mass of each spread.
    pub activation_mass: Histogram,
    /// Depth reached by each spread.
    pub depth_reached: Histogram,
    /// Health probe latency.
    pub health_probe_latency: Histogram,
    /// Breaker state: 0 closed, 1 half-open, 2 open.
    pub breaker_state: Gauge,
    /// Scratch buffers lent out.
    pub pool_in_use: Gauge,
    /// Scratch buffers in existence.
    pub pool_capacity: Gauge,
    /// in_use / capacity.
    pub pool_utilization: Gauge,
    /// Overall health: 0 healthy, 1 degraded, 2 unhealthy.
    pub health_status: Gauge,
    /// Live `spreading.max_depth`.
    pub config_max_depth: Gauge,
    /// Live `spreading.batch_size`.
    pub config_batch_size: Gauge,
    /// Host transition callbacks that panicked or raised.
    pub callback_failures_total: Counter,
    /// Host transition callback calls abandoned after `callbacks.timeout_ms`.
    pub callback_timeouts_total: Counter,
    /// The living graph's version.
    pub graph_version: Gauge,
    /// Its nodes.
    pub graph_nodes: Gauge,
    /// Its edges.
    pub graph_edges: Gauge,
    /// Edge changes pending since the last compaction.
    pub graph_delta_edges: Gauge,
    /// The pending changes at which compaction runs.
    pub graph_compaction_threshold: Gauge,
    /// Batches applied.
    pub graph_batches_total: Counter,
    /// Batches rejected.
    pub graph_batches_rejected_total: Counter,
    /// Compactions run.
    pub graph_compactions_total: Counter,
    /// Time a compaction took.
    pub graph_compaction_seconds: Histogram,
    /// Time a snapshot save took.
    pub graph_snapshot_save_seconds: Histogram,
    /// Time a snapshot load took.
    pub graph_snapshot_load_seconds: Histogram,
    /// Time an embedding search (seeding or fallback) took, index or exact scan.
    pub similarity_query_seconds: Histogram,
    /// Time building (or loading from a snapshot) the embedding index took.
    pub similarity_build_seconds: Histogram,
    /// Time adding added nodes' embeddings to the index took, per catch-up.
    pub similarity_update_seconds: Histogram,
    /// Vectors in the embedding index (0: the exact scan answers).
    pub similarity_index_size: Gauge,
    /// Bytes the embedding index holds.
    pub similarity_index_bytes: Gauge,
    /// Nodes the index does not cover yet (scanned exactly until it does).
    pub similarity_index_lag: Gauge,
}

impl EngineMetrics {
    /// Register every engine metric in `r`.
    pub fn register(r: &MetricsRegistry) -> Result<EngineMetrics> {
        let counter = |name: &str, help: &str| r.counter_exposed(name, help, Exposition::family(name, None));
        let labelled = |name: &str, help: &str, family: &str, label| {
            r.counter_exposed(name, help, Exposition::family(family, Some(label)))
        };
        let gauge = |name: &str, help: &str| r.gauge_exposed(name, help, Exposition::family(name, None));
        let histogram = |name: &str, help: &str, family: &str, label, bounds: &'static [f64]| {
            r.histogram_exposed(name, help, Exposition::family(family, label), bounds)
        };
        let tiers = |make: &dyn Fn(&'static str) -> Result<Counter>| -> Result<[Counter; 3]> {
            Ok([make(TIERS[0])?, make(TIERS[1])?, make(TIERS[2])?])
        };
        let tier_timeouts_total = tiers(&|tier| {
            labelled(
                &format!("spreading_tier_timeouts_{tier}_total"),
                "Calls in which a tier's timeout cut spreading short.",
                "spreading_tier_timeouts_total",
                ("tier", tier),
            )
        })?;
        let mut fallback_by_reason = Vec::with_capacity(FallbackReason::ALL.len());
        for reason in FallbackReason::ALL {
            fallback_by_reason.push(labelled(
                &format!("spreading_fallback_{}_total", reason.as_str()),
                "Recalls answered by the fallback, by reason.",
                "spreading_fallback_total",
                ("reason", reason.as_str()),
            )?);
        }
        let tier_latency = |tier: &'static str| {
            histogram(
                &format!("spreading_latency_{tier}_seconds"),
                "Time a recall spent on a tier (only tiers that had work).",
                "spreading_latency_seconds",
                Some(("tier", tier)),
                LATENCY_BOUNDS,
            )
        };
        Ok(EngineMetrics {
            spreads_total: counter(
                "spreading_spreads_total",
                "Spreading runs (recalls that spread and health-probe spreads).",
            )?,
            recalls_total: counter("spreading_recalls_total", "Recall calls, whatever answered them.")?,
            failures_total: counter(
                "spreading_failures_total",
                "Attempted recalls classified as failures (error, slow, low mass).",
            )?,
            budget_violations_total: counter(
                "spreading_latency_budget_violations_total",
                "Recalls whose whole-call latency exceeded the latency budget.",
            )?,
            tier_timeouts_total,
            // Exported through its labelled members (`spreading_fallback_total{reason=…}`).
            fallback_total: r.counter_exposed(
                "spreading_fallback_total",
                "Recalls answered by the fallback.",
                None,
            )?,
            fallback_by_reason: fallback_by_reason.try_into().map_err(|_| unreachable_count())?,
            gpu_launches_total: counter("spreading_gpu_launches_total", "OpenCL kernel launches.")?,
            gpu_fallback_total: counter(
                "spreading_gpu_fallback_total",
                "Spreads that fell back from OpenCL to the CPU.",
            )?,
            gpu_spreads_total: counter(
                "spreading_gpu_spreads_total",
                "Spreads that ran, or tried to run, a depth on the OpenCL device.",
            )?,
            breaker_open_total: counter(
                "spreading_breaker_open_total",
                "Recall calls refused by the circuit breaker.",
            )?,
            breaker_transitions_total: counter(
                "spreading_breaker_transitions_total",
                "Circuit breaker state transitions.",
            )?,
            autotune_changes_total: counter(
                "spreading_autotune_changes_total",
                "Configuration changes applied by the auto-tuner.",
            )?,
            health_checks_total: counter("spreading_health_checks_total", "Health probe runs.")?,
            health_failures_total: counter(
                "spreading_health_failures_total",
                "Health probe runs that failed.",
            )?,
            edges_traversed_total: counter(
                "spreading_edges_traversed_total",
                "Edges traversed by spreading.",
            )?,
            tier_latency: [tier_latency(TIERS[0])?, tier_latency(TIERS[1])?, tier_latency(TIERS[2])?],
            recall_latency: histogram(
                "spreading_recall_latency_seconds",
                "Whole-call recall latency.",
                "spreading_recall_latency_seconds",
                None,
                LATENCY_BOUNDS,
            )?,
            activation_mass: histogram(
                "spreading_activation_mass",
                "Activation mass of each spread.",
                "spreading_activation_mass",
                None,
                MASS_BOUNDS,
            )?,
            depth_reached: histogram(
                "spreading_depth_reached",
                "Depth reached by each spread.",
                "spreading_depth_reached",
                None,
                DEPTH_BOUNDS,
            )?,
            health_probe_latency: histogram(
                "spreading_health_probe_latency_seconds",
                "Latency of the spreading health probe.",
                "spreading_health_probe_latency_seconds",
                None,
                LATENCY_BOUNDS,
            )?,
            breaker_state: gauge(
                "spreading_breaker_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            )?,
            pool_in_use: gauge("spreading_pool_in_use", "Scratch buffers lent out.")?,
            pool_capacity: gauge("spreading_pool_capacity", "Scratch buffers in existence.")?,
            pool_utilization: gauge(
                "spreading_pool_utilization",
                "Scratch buffers lent out / in existence.",
            )?,
            health_status: gauge(
                "spreading_health_status",
                "Overall health: 0 healthy, 1 degraded, 2 unhealthy.",
            )?,
            config_max_depth: gauge("spreading_config_max_depth", "Live spreading.max_depth.")?,
            config_batch_size: gauge("spreading_config_batch_size", "Live spreading.batch_size.")?,
            callback_failures_total: r.counter(
                "spreading_callback_failures_total",
                "Host callbacks (breaker transitions) that panicked or raised.",
            )?,
            callback_timeouts_total: r.counter(
                "spreading_callback_timeouts_total",
                "Host callbacks (breaker transitions) abandoned after callbacks.timeout_ms.",
            )?,
            graph_version: gauge("spreading_graph_version", "The living graph's version.")?,
            graph_nodes: gauge("spreading_graph_nodes", "Nodes of the living graph.")?,
            graph_edges: gauge("spreading_graph_edges", "Edges of the living graph.")?,
            graph_delta_edges: gauge(
                "spreading_graph_delta_edges",
                "Edge changes pending since the last compaction.",
            )?,
            graph_compaction_threshold: gauge(
                "spreading_graph_compaction_threshold_edges",
                "Pending edge changes at which compaction runs.",
            )?,
            graph_batches_total: counter("spreading_graph_batches_total", "Graph change batches applied.")?,
            graph_batches_rejected_total: counter(
                "spreading_graph_batches_rejected_total",
                "Graph change batches rejected (nothing applied).",
            )?,
            graph_compactions_total: counter("spreading_graph_compactions_total", "Graph compactions run.")?,
            graph_compaction_seconds: histogram(
                "spreading_graph_compaction_seconds",
                "Time a graph compaction took.",
                "spreading_graph_compaction_seconds",
                None,
                SLOW_BOUNDS,
            )?,
            graph_snapshot_save_seconds: histogram(
                "spreading_graph_snapshot_save_seconds",
                "Time a graph snapshot save took.",
                "spreading_graph_snapshot_save_seconds",
                None,
                SLOW_BOUNDS,
            )?,
            graph_snapshot_load_seconds: histogram(
                "spreading_graph_snapshot_load_seconds",
                "Time a graph snapshot load took.",
                "spreading_graph_snapshot_load_seconds",
                None,
                SLOW_BOUNDS,
            )?,
            similarity_query_seconds: histogram(
                "spreading_similarity_query_seconds",
                "Time an embedding search (seeding or fallback) took.",
                "spreading_similarity_query_seconds",
                None,
                LATENCY_BOUNDS,
            )?,
            similarity_build_seconds: histogram(
                "spreading_similarity_index_build_seconds",
                "Time building or loading the embedding index took.",
                "spreading_similarity_index_build_seconds",
                None,
                SLOW_BOUNDS,
            )?,
            similarity_update_seconds: histogram(
                "spreading_similarity_index_update_seconds",
                "Time adding new nodes' embeddings to the index took.",
                "spreading_similarity_index_update_seconds",
                None,
                SLOW_BOUNDS,
            )?,
            similarity_index_size: gauge(
                "spreading_similarity_index_size",
                "Vectors in the embedding index (0: the exact scan answers).",
            )?,
            similarity_index_bytes: gauge(
                "spreading_similarity_index_bytes",
                "Bytes the embedding index holds.",
            )?,
            similarity_index_lag: gauge(
                "spreading_similarity_index_lag_nodes",
                "Nodes the embedding index does not cover yet (scanned exactly).",
            )?,
        })
    }
}

fn unreachable_count() -> crate::error::Error {
    crate::error::Error::InvalidMetric {
        name: "spreading_fallback_total".into(),
        message: "one counter per reason".into(),
    }
}
