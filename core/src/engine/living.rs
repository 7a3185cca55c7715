//! The engine's living graph (docs/spec.md §16): batches applied as new versions by one writer at a
//! time (readers load the current version and never wait), compaction off the recall path — on the
//! `axonal-compactor` thread when the pending changes pass the threshold, or when asked — and the
//! telemetry of both.
//!
//! Compaction materializes the version it started on as a fresh base, with no lock held; writers
//! keep applying batches meanwhile. Under the writer lock it then moves the current version onto the
//! new base, keeping pending only what was written since it started: the same edge list, hence the
//! same version number and bit-identical recalls, with fewer pending changes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use quanta::Instant;
use serde::Serialize;

use super::state::EngineState;
use crate::error::Result;
use crate::graph::{Batch, Graph, GraphVersion};
use crate::health::{HealthCheckResult, HealthProbe, HealthStatus};
use crate::worker::{Nudge, Worker};

/// The writers' side of the living graph.
#[derive(Default)]
pub(super) struct Living {
    /// Serialises graph writers (batches, replacement, a compaction's swap).
    writer: Mutex<()>,
    /// Bumped by `replace_graph` (under the writer lock): a compaction that started on an older
    /// graph is dropped. Read without the lock too, before a compaction touches a newer version.
    generation: AtomicU64,
    /// One compaction at a time.
    compaction: Mutex<()>,
    /// A batch left more pending changes than the threshold: the compactor's cue.
    due: AtomicBool,
    /// Wakes the compactor (set once it runs).
    compactor: OnceLock<Nudge>,
    /// Bases replaced by compactions, freed on the compactor's thread once recalls let go of them.
    retired: Mutex<Vec<Retired>>,
}

/// A replaced base waiting for the recalls that still read it.
struct Retired {
    graph: Arc<Graph>,
    since: std::time::Instant,
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

/// How long the compactor keeps a replaced base for the recalls that still read it. Recalls hold a
/// version only while they run; a reference kept longer (a host's graph handle, a result object)
/// frees the base later, wherever it is dropped.
const RECLAIM_WAIT: Duration = Duration::from_secs(1);

/// How often the compactor looks at retired bases while any wait.
const RECLAIM_POLL: Duration = Duration::from_millis(2);

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
        let pending = next.pending_changes();
        let added_nodes = next.node_count() > nodes_before as usize;
        self.graph.store(Arc::new(next));
        drop(writer);
        if added_nodes {
            self.nudge_indexer();
        }
        self.metrics.graph_batches_total.increment();
        self.sample_graph_gauges();
        if pending > self.compaction_threshold() {
            self.living.due.store(true, Ordering::Release);
            if let Some(compactor) = self.living.compactor.get() {
                compactor.nudge();
            }
        }
        Ok((version, nodes_before))
    }

    /// Swap in a whole graph as the next version (pending changes and a compaction in progress are
    /// dropped).
    pub(super) fn replace_graph(&self, graph: Arc<Graph>) -> u64 {
        let writer = self.writer();
        let version = self.graph.load().version() + 1;
        // Bumped before the store: whoever sees the new graph sees the new generation.
        self.living.generation.fetch_add(1, Ordering::SeqCst);
        self.graph.store(Arc::new(GraphVersion::fresh(graph, version)));
        drop(writer);
        self.nudge_indexer();
        self.sample_graph_gauges();
        version
    }

    /// Fold the pending changes into a fresh base now; returns the version (unchanged). One
    /// compaction runs at a time; recalls never wait for it.
    pub(super) fn compact(&self) -> Result<u64> {
        let one = self.living.compaction.lock().unwrap_or_else(|p| p.into_inner());
        let (start, generation) = {
            let _writer = self.writer();
            let current = self.graph.load_full();
            if !current.has_changes() {
                return Ok(current.version());
            }
            (current, self.living.generation.load(Ordering::SeqCst))
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
        let replaced = || self.living.generation.load(Ordering::SeqCst) != generation;
        if replaced() {
            // The graph was replaced meanwhile: this base is of a graph no longer served (and
            // `earlier` may not descend from `start`).
            return Ok(earlier.version());
        }
        let ahead = earlier.rebase(&start, Arc::clone(&base));
        let writer = self.writer();
        if replaced() {
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
        drop(one);
        self.retire(Arc::clone(start.base()));
        Ok(number)
    }

    /// Hand a replaced base to the compactor, which frees it once no recall reads it: returning a
    /// graph's memory takes milliseconds per hundred megabytes, which a recall that happened to
    /// hold the last reference would otherwise pay.
    fn retire(&self, graph: Arc<Graph>) {
        let Some(compactor) = self.living.compactor.get() else { return };
        let retired = Retired { graph, since: std::time::Instant::now() };
        self.living.retired.lock().unwrap_or_else(|p| p.into_inner()).push(retired);
        compactor.nudge();
    }

    /// Free the retired bases no recall reads any more, and let go of those held past
    /// [`RECLAIM_WAIT`] (their last holder frees them). Returns whether any still wait.
    fn reclaim(&self) -> bool {
        let (free, waiting) = {
            let mut retired = self.living.retired.lock().unwrap_or_else(|p| p.into_inner());
            let free: Vec<Retired> = retired
                .extract_if(.., |r| Arc::strong_count(&r.graph) == 1 || r.since.elapsed() >= RECLAIM_WAIT)
                .collect();
            (free, !retired.is_empty())
        };
        drop(free); // outside the lock
        waiting
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

    fn writer(&self) -> MutexGuard<'_, ()> {
        self.living.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `axonal-compactor` thread: woken by a batch that left more pending changes than the
/// threshold, it compacts, and again at once while what was written during a compaction still
/// passes it (a smaller delta keeps both batches and recalls cheaper: measured, resting between
/// compactions lost the writers more than it gave them). A failed compaction is not retried until
/// the next batch asks. It also frees the bases compactions replaced, polling briefly while
/// recalls still read one. Idle, it sleeps.
pub(super) fn start_compactor(state: Arc<EngineState>) -> std::io::Result<Worker> {
    let body = {
        let state = Arc::clone(&state);
        move || {
            let next = match state.living.due.swap(false, Ordering::AcqRel) {
                false => COMPACTOR_IDLE,
                // A panic must not end the thread (compaction would never run again).
                true => match catch_unwind(AssertUnwindSafe(|| state.compact())) {
                    Ok(Ok(_)) if state.graph.load().pending_changes() > state.compaction_threshold() => {
                        state.living.due.store(true, Ordering::Release);
                        Duration::ZERO
                    }
                    Ok(Ok(_)) => COMPACTOR_IDLE,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "background compaction failed");
                        COMPACTOR_IDLE
                    }
                    Err(_) => {
                        tracing::error!("background compaction panicked; the pending changes stay");
                        COMPACTOR_IDLE
                    }
                },
            };
            if state.reclaim() { next.min(RECLAIM_POLL) } else { next }
        }
    };
    let worker = Worker::spawn("axonal-compactor", body)?;
    // Batches before this point set `due`; the nudge makes the worker look at it now.
    let _ = state.living.compactor.set(worker.nudger());
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
