//! The engine's embedding index (docs/spec.md §18): which index the config asks for, and the
//! `axonal-indexer` thread that builds it, keeps it current and drops it.
//!
//! Writers never wait for the index, and recalls only for the rare moment the index grows its
//! capacity. A recall uses the installed index when it was built for the recall's graph lineage
//! and the config does not say `exact`; nodes the index does not cover yet are scanned exactly, so
//! a change is visible at once. Writers only nudge the indexer, which adds what they added. A build
//! (a new lineage, `auto` crossing `exact_below`, a connectivity change) runs on the indexer too;
//! until it is installed, recalls scan exactly — or, after a connectivity change, keep the index
//! they had.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use quanta::Instant;
use serde::Serialize;

use super::state::EngineState;
use crate::config::{IndexMode, SimilarityConfig};
use crate::graph::{GraphVersion, SavedIndex};
use crate::similarity::{AnnIndex, IndexShape, Search};
use crate::worker::{Nudge, Worker};

/// An index and the lineage it was built for.
pub(super) struct Installed {
    lineage: u64,
    index: AnnIndex,
}

/// The engine's side of the embedding index.
#[derive(Default)]
pub(super) struct Similarity {
    installed: ArcSwapOption<Installed>,
    /// Held while the index is written to (the indexer's additions, a save's serialization).
    writing: Mutex<()>,
    /// A build in progress (for the status).
    building: AtomicBool,
    /// The engine is shutting down: a build or catch-up stops at its next chunk.
    stop: AtomicBool,
    /// Wakes the indexer.
    indexer: OnceLock<Nudge>,
    /// The last build or update error, for the status (cleared by the next success).
    last_error: Mutex<Option<String>>,
    /// The lineage and shape whose build failed, and when: not retried before [`BUILD_RETRY`].
    failed_build: Mutex<Option<(u64, IndexShape, std::time::Instant)>>,
}

/// How long a failed build of one lineage and shape waits before it is tried again.
const BUILD_RETRY: Duration = Duration::from_secs(60);

/// How long the indexer waits for recalls to let go of a replaced index before it leaves the
/// freeing to the last of them.
const RETIRE_WAIT: Duration = Duration::from_secs(1);

/// Clears the `building` flag however a build ends.
struct Building<'a>(&'a AtomicBool);

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// The embedding index in the snapshot's `spreading` section and `Engine::similarity_status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilaritySection {
    /// `similarity.index`: `auto`, `exact` or `ann`.
    pub mode: IndexMode,
    /// What answers embedding queries now: `exact` (no index wanted), `building` (wanted, exact
    /// until ready) or `ann`.
    pub method: &'static str,
    /// Vectors in the index (0 without one).
    pub size: u64,
    /// Bytes it holds.
    pub bytes: u64,
    /// Nodes the index does not cover yet (scanned exactly).
    pub lag_nodes: u64,
    /// `similarity.ef_search` of the index in use.
    pub ef_search: u64,
    /// Neighbours per node of the index in use.
    pub connectivity: u64,
    /// The last build or update error, if any.
    pub last_error: Option<String>,
}

/// The shape of index `config` asks for on `graph` (none: the exact scan answers).
fn wanted(config: &SimilarityConfig, graph: &GraphVersion) -> Option<IndexShape> {
    let view = graph.view();
    let dim = view.embedding_dim()?;
    let shape = IndexShape { dim, connectivity: config.connectivity };
    match config.index {
        IndexMode::Exact => None,
        IndexMode::Ann => Some(shape),
        IndexMode::Auto => {
            let base = graph.base().embedded_count();
            let added =
                (graph.base().node_count()..view.node_count()).filter(|&v| view.embedding(v).is_some());
            (base + added.count() >= config.exact_below).then_some(shape)
        }
    }
}

/// How long the indexer sleeps when nothing wakes it.
const INDEXER_IDLE: Duration = Duration::from_secs(60);

impl EngineState {
    /// How a recall on `graph` searches embeddings: the installed index if it is of `graph`'s
    /// lineage and the config allows it (`installed`: the caller's loaded index, if its cue has an
    /// embedding).
    pub(super) fn similarity_search<'a>(
        &'a self,
        graph: &GraphVersion,
        installed: Option<&'a Installed>,
        config: &SimilarityConfig,
    ) -> Search<'a> {
        let index = installed
            .filter(|i| i.lineage == graph.lineage() && config.index != IndexMode::Exact)
            .map(|i| &i.index);
        let seconds =
            self.telemetry_enabled.load(Ordering::Relaxed).then_some(&self.metrics.similarity_query_seconds);
        Search { index, seconds }
    }

    /// The installed index, loaded for one recall (a guard: no reference count is touched).
    pub(super) fn installed_index(&self) -> arc_swap::Guard<Option<Arc<Installed>>> {
        self.similarity.installed.load()
    }

    /// Wake the indexer: the graph or the config changed.
    pub(super) fn nudge_indexer(&self) {
        if let Some(indexer) = self.similarity.indexer.get() {
            indexer.nudge();
        }
    }

    /// A new `ef_search` applies to the installed index at once.
    pub(super) fn apply_similarity_config(&self, config: &SimilarityConfig) {
        if let Some(installed) = &*self.similarity.installed.load()
            && installed.index.ef_search() != config.ef_search
        {
            installed.index.set_ef_search(config.ef_search);
        }
        self.nudge_indexer();
    }

    /// Install the index saved with the graph, if it is the one the config asks for (an engine
    /// started from a snapshot: no rebuild, and recalls use it from the first).
    pub(super) fn load_saved_index(&self) {
        let graph = self.graph.load_full();
        let config = self.live.load().config.similarity.clone();
        if let Some(shape) = wanted(&config, &graph)
            && let Some(index) = self.saved_index_of(&graph, shape, config.ef_search)
        {
            self.install(Some(Installed { lineage: graph.lineage(), index }));
        }
    }

    /// The index saved with `graph`'s base, loaded, if it has `shape`. One that does not load is
    /// logged and left for a rebuild.
    fn saved_index_of(&self, graph: &GraphVersion, shape: IndexShape, ef_search: usize) -> Option<AnnIndex> {
        let image = graph.base().index_image.as_ref().filter(|i| i.connectivity == shape.connectivity)?;
        let started = Instant::now();
        match AnnIndex::from_bytes(&image.bytes, shape, ef_search, image.vectors, image.covered) {
            Ok(index) => {
                self.metrics.similarity_build_seconds.observe_duration(started.elapsed());
                tracing::info!(vectors = image.vectors, "similarity index loaded from the snapshot");
                self.record_error(None);
                Some(index)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the snapshot's similarity index does not load; rebuilding it");
                self.record_error(Some(e.to_string()));
                None
            }
        }
    }

    /// Install `installed` (or none). The replaced index is freed here, on the indexer's thread,
    /// once the recalls that still use it are done (at most [`RETIRE_WAIT`]), so no recall pays for
    /// freeing it.
    fn install(&self, installed: Option<Installed>) {
        let replaced = self.similarity.installed.swap(installed.map(Arc::new));
        self.sample_similarity_gauges();
        if let Some(replaced) = replaced {
            let since = std::time::Instant::now();
            while Arc::strong_count(&replaced) > 1 && since.elapsed() < RETIRE_WAIT {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    fn record_error(&self, error: Option<String>) {
        *self.similarity.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// One pass of the indexer: drop an index nobody asks for, build the one the config asks for,
    /// or add what the writers added. Failures are logged and kept in the status, never returned.
    /// Returns whether to run again at once.
    fn index_step(&self) -> bool {
        let graph = self.graph.load_full();
        let config = self.live.load().config.similarity.clone();
        let want = wanted(&config, &graph);
        let installed = self.similarity.installed.load_full();
        let had_index = installed.is_some();
        let current = installed.filter(|i| i.lineage == graph.lineage() && Some(i.index.shape()) == want);
        // Below, `install` frees the index it replaces once no one else holds it: this step holds
        // only the index it keeps.
        let stop = || self.similarity.stop.load(Ordering::Relaxed);
        match (want, current) {
            (None, _) => {
                if had_index {
                    self.install(None);
                    tracing::info!("similarity index dropped; the exact scan answers");
                }
                false
            }
            (Some(_), Some(installed)) => {
                let _writing = self.similarity.writing.lock().unwrap_or_else(|p| p.into_inner());
                // An `ef_search` set while this index was being built applies now.
                if installed.index.ef_search() != config.ef_search {
                    installed.index.set_ef_search(config.ef_search);
                }
                let started = Instant::now();
                match installed.index.catch_up(graph.view(), &stop) {
                    Ok(added) if added > 0 => {
                        self.metrics.similarity_update_seconds.observe_duration(started.elapsed())
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The index stays: what it lacks is scanned exactly, and the next nudge
                        // retries (skipping what this call added).
                        tracing::warn!(error = %e, "adding to the similarity index failed; the lagging nodes are scanned exactly");
                        self.record_error(Some(e.to_string()));
                        self.sample_similarity_gauges();
                        return false;
                    }
                }
                self.sample_similarity_gauges();
                // More may have been written meanwhile.
                self.graph.load().node_count() > installed.index.indexed() && !stop()
            }
            (Some(shape), None) => {
                // A graph loaded from a snapshot (and swapped in) brings its index.
                if let Some(index) = self.saved_index_of(&graph, shape, config.ef_search) {
                    self.install(Some(Installed { lineage: graph.lineage(), index }));
                    return !stop();
                }
                let failed = *self.similarity.failed_build.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((lineage, failed_shape, at)) = failed
                    && lineage == graph.lineage()
                    && failed_shape == shape
                    && at.elapsed() < BUILD_RETRY
                {
                    return false;
                }
                self.similarity.building.store(true, Ordering::Relaxed);
                let building = Building(&self.similarity.building);
                self.sample_similarity_gauges();
                let started = Instant::now();
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                // A build outlived by a replacement or a config change stops early.
                let stale = || {
                    let now = self.live.load().config.similarity.clone();
                    stop()
                        || self.graph.load().lineage() != graph.lineage()
                        || now.index == IndexMode::Exact
                        || now.connectivity != shape.connectivity
                };
                let built =
                    AnnIndex::build(graph.view(), shape.connectivity, config.ef_search, threads, &stale);
                drop(building);
                let index = match built {
                    Ok(Some(index)) => index,
                    // Stopped: look again at once (unless shutting down).
                    Ok(None) => return !stop(),
                    Err(e) => {
                        tracing::warn!(error = %e, "building the similarity index failed; the exact scan answers");
                        self.record_error(Some(e.to_string()));
                        *self.similarity.failed_build.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((graph.lineage(), shape, std::time::Instant::now()));
                        self.sample_similarity_gauges();
                        return false;
                    }
                };
                let took = started.elapsed();
                self.metrics.similarity_build_seconds.observe_duration(took);
                tracing::info!(vectors = index.len(), seconds = took.as_secs_f64(), "similarity index built");
                self.record_error(None);
                *self.similarity.failed_build.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.install(Some(Installed { lineage: graph.lineage(), index }));
                // Catch up with what was written during the build (or find the config changed).
                !stop()
            }
        }
    }

    /// Serialize the index for a snapshot of `graph` (the current version, which the caller holds
    /// while no addition runs): caught up to cover exactly its nodes. `None` without an index, or
    /// when it cannot be caught up or serialized (logged: the snapshot is saved without it and
    /// the index rebuilt on load).
    pub(super) fn saved_index(&self, graph: &GraphVersion) -> Option<SavedIndex> {
        let installed = self.similarity.installed.load_full();
        let installed = installed.filter(|i| i.lineage == graph.lineage())?;
        let saved = installed.index.catch_up(graph.view(), &|| false).and_then(|_| {
            Ok(SavedIndex {
                connectivity: installed.index.shape().connectivity,
                vectors: installed.index.len(),
                covered: graph.node_count(),
                bytes: installed.index.to_bytes()?,
            })
        });
        match saved {
            Ok(saved) if installed.index.indexed() == graph.node_count() => Some(saved),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the snapshot is saved without its similarity index");
                None
            }
        }
    }

    /// Keep additions to the index out (a save serializing it).
    pub(super) fn hold_index(&self) -> std::sync::MutexGuard<'_, ()> {
        self.similarity.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index gauges.
    pub(super) fn sample_similarity_gauges(&self) {
        let section = self.similarity_section();
        let m = &self.metrics;
        m.similarity_index_size.set(section.size as f64);
        m.similarity_index_bytes.set(section.bytes as f64);
        m.similarity_index_lag.set(section.lag_nodes as f64);
    }

    /// The embedding index's state.
    pub(super) fn similarity_section(&self) -> SimilaritySection {
        let graph = self.graph.load();
        let config = self.live.load().config.similarity.clone();
        let installed = self.similarity.installed.load_full();
        let index =
            installed.as_ref().filter(|i| i.lineage == graph.lineage() && config.index != IndexMode::Exact);
        let method = match index {
            Some(_) => "ann",
            None if self.similarity.building.load(Ordering::Relaxed) => "building",
            // Asked for and not there yet (with `auto`, exact until `exact_below` is reached).
            None if config.index == IndexMode::Ann && graph.view().embedding_dim().is_some() => "building",
            None => "exact",
        };
        SimilaritySection {
            mode: config.index,
            method,
            size: index.map_or(0, |i| i.index.len() as u64),
            bytes: index.map_or(0, |i| i.index.bytes() as u64),
            lag_nodes: index.map_or(0, |i| graph.node_count().saturating_sub(i.index.indexed()) as u64),
            ef_search: index.map_or(config.ef_search, |i| i.index.ef_search()) as u64,
            connectivity: index.map_or(config.connectivity, |i| i.index.shape().connectivity) as u64,
            last_error: self.similarity.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Wait until embedding queries are answered as the config asks (an index ready and caught up,
    /// or none wanted), at most `timeout`; returns whether they are.
    pub(super) fn wait_for_index(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let graph = self.graph.load_full();
            let config = self.live.load().config.similarity.clone();
            let ready = match wanted(&config, &graph) {
                None => true,
                Some(shape) => self.similarity.installed.load().as_ref().is_some_and(|i| {
                    i.lineage == graph.lineage()
                        && i.index.shape() == shape
                        && i.index.indexed() >= graph.node_count()
                }),
            };
            if ready {
                return true;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            self.nudge_indexer();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stop a build or catch-up at its next chunk (the engine is shutting down).
    pub(super) fn stop_indexer(&self) {
        self.similarity.stop.store(true, Ordering::Relaxed);
    }
}

/// The `axonal-indexer` thread: woken by changes and config updates, it builds, updates or drops
/// the index. Failures are handled in the step (logged, in the status, retried later); a panic
/// drops the index (its state is unknown; recalls scan exactly) and does not end the thread.
pub(super) fn start_indexer(state: Arc<EngineState>) -> std::io::Result<Worker> {
    let body = {
        let state = Arc::clone(&state);
        move || {
            if state.similarity.stop.load(Ordering::Relaxed) {
                return INDEXER_IDLE;
            }
            match catch_unwind(AssertUnwindSafe(|| state.index_step())) {
                Ok(true) => Duration::ZERO,
                Ok(false) => INDEXER_IDLE,
                Err(_) => {
                    tracing::error!("similarity indexer panicked; the exact scan answers");
                    state.record_error(Some("the indexer panicked; the index was dropped".into()));
                    state.install(None);
                    INDEXER_IDLE
                }
            }
        }
    };
    let worker = Worker::spawn("axonal-indexer", body)?;
    let _ = state.similarity.indexer.set(worker.nudger());
    Ok(worker)
}
