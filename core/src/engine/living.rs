//! The engine's living graph (docs/spec.md §16): batches applied as new versions by one writer at a
//! time (readers load the current version and never wait), compaction off the recall path — on the
//! `axonal-compactor` thread when the pending changes pass the threshold, or when asked — and the
//! telemetry of both.
//!
//! Compaction materializes the version it started on as a fresh base, with no lock held; writers
//! keep applying batches meanwhile. Under the writer lock it then moves the current version onto the
//! new base, keeping pending only what was written since it started: the same edge list, hence the
//! same version number and bit-identical recalls, with fewer pending changes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quanta::Instant;
use serde::Serialize;

use super::state::EngineState;
use crate::error::Result;
use crate::graph::{Batch, Graph, GraphVersion};
use crate::health::{HealthCheckResult, HealthProbe, HealthStatus};
use crate::worker::Worker;

/// The writer's state, behind the engine's writer lock.
#[derive(Debug, Default)]
pub(super) struct GraphWriter {
    /// Bumped by `replace_graph`: a compaction of an older graph is dropped.
    generation: u64,
}

/// The living graph in the snapshot's `spreading` section.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GraphSection {
    /// The current version.
    pub version: u64,
    /// Nodes.
    pub nodes: u64,
    /// Edges.
    pub edges: u64,
    /// Edge changes pending since the last compaction.
    pub delta_edges: u64,
    /// The pending changes at which compaction runs.
    pub compaction_threshold_edges: u64,
    /// Batches applied.
    pub batches_total: u64,
    /// Batches rejected (nothing applied).
    pub batches_rejected_total: u64,
    /// Compactions run.
    pub compactions_total: u64,
}

/// How long a compaction waits for in-flight recalls to let go of the base it replaced.
const RECLAIM_WAIT: Duration = Duration::from_secs(1);

/// Free a replaced base on this (background) thread: returning a graph's memory takes milliseconds
/// per hundred megabytes, which a recall that happened to hold the last reference would otherwise
/// pay. Recalls hold a version only while they run, so the wait is short; a reference kept longer
/// (a result object a host holds on to) frees it later, wherever it is dropped.
fn reclaim(old: Arc<Graph>) {
    let deadline = std::time::Instant::now() + RECLAIM_WAIT;
    while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(old);
}

/// How long the compactor sleeps when no batch wakes it.
const COMPACTOR_IDLE: Duration = Duration::from_secs(60);

/// The `graph` probe is degraded while the pending changes exceed this many thresholds.
const LAGGING_FACTOR: u64 = 4;

impl EngineState {
    /// Apply `batch` as the next version; returns its number and the node count before it (the
    /// first id of added nodes). Writers are serialised; readers keep the version they loaded.
    pub(super) fn apply_batch(&self, batch: Batch) -> Result<(u64, u32)> {
        let writer = self.writer();
        let current = self.graph.load_full();
        let version = current.version() + 1;
        let nodes_before = current.node_count() as u32;
        let next = match current.apply(&batch, version) {
            Ok(next) => next,
            Err(e) => {
                self.metrics.graph_batches_rejected_total.increment();
                tracing::debug!(operation = batch.name(), error = %e, "graph batch rejected");
                return Err(e);
            }
        };
        let pending = next.delta_edges();
        self.graph.store(Arc::new(next));
        drop(writer);
        self.metrics.graph_batches_total.increment();
        self.sample_graph_gauges();
        if pending > self.compaction_threshold() {
            self.compactor_due.store(true, Ordering::Release);
            if let Some(compactor) = self.compactor.get() {
                compactor.nudge();
            }
        }
        Ok((version, nodes_before))
    }

    /// Swap in a whole graph as the next version (pending changes and a compaction in progress are
    /// dropped).
    pub(super) fn replace_graph(&self, graph: Arc<Graph>) -> u64 {
        let mut writer = self.writer();
        let version = self.graph.load().version() + 1;
        writer.generation += 1;
        self.graph.store(Arc::new(GraphVersion::fresh(graph, version)));
        drop(writer);
        self.sample_graph_gauges();
        version
    }

    /// Fold the pending changes into a fresh base now; returns the version (unchanged). One
    /// compaction runs at a time; recalls never wait for it.
    pub(super) fn compact(&self) -> Result<u64> {
        let _one = self.compaction.lock().unwrap_or_else(|p| p.into_inner());
        let (start, generation) = {
            let writer = self.writer();
            let current = self.graph.load_full();
            if !current.has_changes() {
                return Ok(current.version());
            }
            (current, writer.generation)
        };
        let started = Instant::now();
        let base = match start.materialize() {
            Ok(base) => Arc::new(base),
            Err(e) => {
                tracing::warn!(error = %e, "graph compaction failed; the pending changes stay");
                return Err(e);
            }
        };
        // Most of the move onto the new base happens here, with no lock held; under the lock only
        // the batches applied meanwhile are carried over.
        let earlier = self.graph.load_full();
        let ahead = earlier.rebase(&start, Arc::clone(&base));
        let writer = self.writer();
        if writer.generation != generation {
            // The graph was replaced meanwhile: this base is of a graph no longer served.
            return Ok(self.graph.load().version());
        }
        let latest = self.graph.load_full();
        let rebased = match Arc::ptr_eq(&latest, &earlier) {
            true => ahead,
            false => latest.rebase_after(&start, base, &earlier, &ahead),
        };
        let (number, pending) = (rebased.version(), rebased.delta_edges());
        self.graph.store(Arc::new(rebased));
        drop(writer);
        let took = started.elapsed();
        self.metrics.graph_compactions_total.increment();
        self.metrics.graph_compaction_seconds.observe_duration(took);
        self.sample_graph_gauges();
        tracing::info!(version = number, pending, seconds = took.as_secs_f64(), "graph compacted");
        let old_base = Arc::clone(start.base());
        drop((start, earlier, latest));
        reclaim(old_base);
        Ok(number)
    }

    /// The pending changes at which compaction runs: `compaction.max_delta_edges`, or 1 % of the
    /// edges and at least 10 000.
    pub(super) fn compaction_threshold(&self) -> u64 {
        let configured = self.live.load().config.compaction.max_delta_edges;
        configured.unwrap_or_else(|| (self.graph.load().edge_count() as u64 / 100).max(10_000))
    }

    /// The living graph's gauges.
    pub(super) fn sample_graph_gauges(&self) {
        let graph = self.graph.load();
        let m = &self.metrics;
        m.graph_version.set(graph.version() as f64);
        m.graph_nodes.set(graph.node_count() as f64);
        m.graph_edges.set(graph.edge_count() as f64);
        m.graph_delta_edges.set(graph.delta_edges() as f64);
        m.graph_compaction_threshold.set(self.compaction_threshold() as f64);
    }

    /// The snapshot's `graph` section.
    pub(super) fn graph_section(&self) -> GraphSection {
        let graph = self.graph.load();
        let m = &self.metrics;
        GraphSection {
            version: graph.version(),
            nodes: graph.node_count() as u64,
            edges: graph.edge_count() as u64,
            delta_edges: graph.delta_edges(),
            compaction_threshold_edges: self.compaction_threshold(),
            batches_total: m.graph_batches_total.total(),
            batches_rejected_total: m.graph_batches_rejected_total.total(),
            compactions_total: m.graph_compactions_total.total(),
        }
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, GraphWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `axonal-compactor` thread: woken by a batch that left more pending changes than the
/// threshold, it compacts, and again at once while what was written during a compaction still
/// passes it (a smaller delta keeps both batches and recalls cheaper: measured, resting between
/// compactions lost the writers more than it gave them). A failed compaction is not retried until
/// the next batch asks. Idle, it sleeps.
pub(super) fn start_compactor(state: Arc<EngineState>) -> std::io::Result<Worker> {
    let body = {
        let state = Arc::clone(&state);
        move || {
            if !state.compactor_due.swap(false, Ordering::AcqRel) {
                return COMPACTOR_IDLE;
            }
            match state.compact() {
                Ok(_) if state.graph.load().delta_edges() > state.compaction_threshold() => {
                    state.compactor_due.store(true, Ordering::Release);
                    Duration::ZERO
                }
                Ok(_) => COMPACTOR_IDLE,
                Err(e) => {
                    tracing::warn!(error = %e, "background compaction failed");
                    COMPACTOR_IDLE
                }
            }
        }
    };
    let worker = Worker::spawn("axonal-compactor", body)?;
    // Batches before this point set `compactor_due`; the nudge makes the worker look at it now.
    let _ = state.compactor.set(worker.nudger());
    worker.nudger().nudge();
    Ok(worker)
}

/// The built-in `graph` probe (non-critical): degraded while the pending changes exceed four times
/// the compaction threshold — compaction is falling behind the writers.
pub struct GraphProbe {
    state: Arc<EngineState>,
}

impl GraphProbe {
    pub(super) fn new(state: Arc<EngineState>) -> Self {
        GraphProbe { state }
    }
}

impl HealthProbe for GraphProbe {
    fn name(&self) -> &str {
        "graph"
    }

    fn check(&self) -> HealthCheckResult {
        let section = self.state.graph_section();
        let limit = section.compaction_threshold_edges.saturating_mul(LAGGING_FACTOR);
        let mut result = if section.delta_edges > limit {
            HealthCheckResult::failed(
                HealthStatus::Degraded,
                format!(
                    "{} pending edge changes, over {LAGGING_FACTOR}× the compaction threshold of {}: compaction is \
                     falling behind the writers",
                    section.delta_edges, section.compaction_threshold_edges
                ),
            )
        } else {
            HealthCheckResult::healthy()
        };
        result.details = serde_json::to_value(section).unwrap_or_default();
        result
    }
}
