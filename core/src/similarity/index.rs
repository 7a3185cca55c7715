//! The approximate-nearest-neighbour index over node embeddings (docs/spec.md §18; the library and
//! why are decision 0016): a usearch HNSW graph, cosine metric, `f32` vectors, keyed by node id.
//!
//! Nodes never lose or change their embedding (docs/spec.md §16), so the index only grows, in id
//! order: the engine's indexer thread adds the nodes that changes added, after the version that has
//! them is published (writers never wait for it). Two watermarks make every search exact about
//! which nodes it covers: every embedded node below `indexed` is in the index, and none at or above
//! `covered` is. A search answers nodes below `indexed` (and below its version's node count) from
//! the index; the caller scans the rest exactly, so added nodes appear in results at once. Searches
//! and additions run concurrently; only growing the capacity (amortised: it doubles) waits for the
//! searches in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock};

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::error::{Error, Result};
use crate::graph::View;

/// Candidates usearch keeps while inserting (its default; the build-time quality knob).
const EXPANSION_ADD: usize = 128;

/// Vectors a builder thread adds between two looks at its stop flag.
const BUILD_CHUNK: usize = 256;

/// The parameters an index is built with; an index answers a config only if these match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexShape {
    /// Embedding dimension.
    pub dim: usize,
    /// Neighbours per node (`similarity.connectivity`).
    pub connectivity: usize,
}

/// An index over the embeddings of one graph lineage (an engine's graph from its creation or last
/// replacement, through every change and compaction).
pub struct AnnIndex {
    /// Write-locked only to grow the capacity; searches and additions share it.
    index: RwLock<Index>,
    /// usearch serves at most `slots` concurrent calls (each needs a reserved context): the gate.
    gate: Gate,
    shape: IndexShape,
    /// No node at or above this is in the index (raised before nodes are added).
    covered: AtomicUsize,
    /// Every embedded node below this is in the index (raised after nodes are added).
    indexed: AtomicUsize,
    /// At least one vector is completely in: usearch's first insertion publishes its count before
    /// its node, so an empty index is not searched while one is added.
    populated: AtomicBool,
    /// Bytes held: usearch's own count where it is safe to take (built or loaded, no addition
    /// running; it walks every node), extrapolated per vector added since.
    bytes: AtomicUsize,
    /// Bytes per vector at the last count, for the extrapolation.
    bytes_per_vector: AtomicUsize,
}

impl std::fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnIndex").field("shape", &self.shape).field("len", &self.len()).finish()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable { feature: "similarity index", message: format!("{what}: {e}") }
}

/// Concurrent calls the index serves at once; more wait for a free context.
fn slots() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()).max(4) * 4
}

impl AnnIndex {
    /// An empty index of `shape` with room for `capacity` vectors.
    pub fn new(shape: IndexShape, ef_search: usize, capacity: usize) -> Result<AnnIndex> {
        let options = IndexOptions {
            dimensions: shape.dim,
            metric: MetricKind::Cos,
            quantization: ScalarKind::F32,
            connectivity: shape.connectivity,
            expansion_add: EXPANSION_ADD,
            expansion_search: ef_search,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| failed("creating the index", e))?;
        let slots = slots();
        index
            .reserve_capacity_and_threads(capacity.max(64), slots)
            .map_err(|e| failed(&format!("reserving room for {capacity} vectors"), e))?;
        Ok(AnnIndex {
            index: RwLock::new(index),
            gate: Gate::new(slots),
            shape,
            covered: AtomicUsize::new(0),
            indexed: AtomicUsize::new(0),
            populated: AtomicBool::new(false),
            bytes: AtomicUsize::new(0),
            // Until counted: the vector, its base-layer links (2 × connectivity ids) and a key.
            bytes_per_vector: AtomicUsize::new(shape.dim * 4 + shape.connectivity * 8 + 16),
        })
    }

    /// Build the index of `graph`'s embeddings (nodes without one are left out) on `threads`
    /// threads. `stop` is polled between chunks: when it returns true the build ends with `None`.
    pub fn build(
        graph: View<'_>,
        connectivity: usize,
        ef_search: usize,
        threads: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<AnnIndex>> {
        let Some(dim) = graph.embedding_dim() else {
            return Err(failed("building", "the graph has no embeddings"));
        };
        let n = graph.node_count();
        let index = AnnIndex::new(IndexShape { dim, connectivity }, ef_search, n)?;
        index.covered.store(n, Ordering::SeqCst);
        let next = AtomicUsize::new(0);
        let threads = threads.clamp(1, index.gate.slots);
        let outcome: Result<bool> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> Result<bool> {
                        let inner = index.index.read().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if stop() {
                                return Ok(false);
                            }
                            let from = next.fetch_add(BUILD_CHUNK, Ordering::Relaxed);
                            if from >= n {
                                return Ok(true);
                            }
                            for v in from..(from + BUILD_CHUNK).min(n) {
                                if let Some((row, _)) = graph.embedding(v) {
                                    let _slot = index.gate.enter();
                                    inner
                                        .add(v as u64, row)
                                        .map_err(|e| failed(&format!("adding node {v}"), e))?;
                                }
                            }
                        }
                    })
                })
                .collect();
            let mut all = Ok(true);
            for worker in workers {
                let result =
                    worker.join().unwrap_or_else(|_| Err(failed("building", "a builder thread panicked")));
                all = match (all, result) {
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                    (Ok(a), Ok(b)) => Ok(a && b),
                };
            }
            all
        });
        let built = outcome?;
        index.indexed.store(n, Ordering::SeqCst);
        index.settle();
        Ok(built.then_some(index))
    }

    /// Record what a private (or no longer growing) index holds: whether it has a vector, and its
    /// bytes. usearch walks every node to count them, so never while an addition runs.
    fn settle(&self) {
        let inner = self.index.read().unwrap_or_else(|p| p.into_inner());
        let (len, bytes) = (inner.size(), inner.memory_usage());
        self.populated.store(len > 0, Ordering::SeqCst);
        self.bytes.store(bytes, Ordering::Relaxed);
        if let Some(per_vector) = bytes.checked_div(len) {
            self.bytes_per_vector.store(per_vector, Ordering::Relaxed);
        }
    }

    /// Add the embedded nodes from `indexed` up to `graph`'s node count, in id order, raising
    /// `indexed` after each chunk (one writer at a time: the engine's indexer, or a save holding
    /// it off). `stop` is polled between chunks. Returns how many vectors it added. After an error
    /// the nodes added stay in and `indexed` stays below them; a later call skips them.
    pub fn catch_up(&self, graph: View<'_>, stop: &dyn Fn() -> bool) -> Result<usize> {
        let to = graph.node_count();
        let mut from = self.indexed.load(Ordering::SeqCst);
        let mut added = 0;
        while from < to && !stop() {
            let end = (from + BUILD_CHUNK).min(to);
            let rows: Vec<usize> = (from..end).filter(|&v| graph.embedding(v).is_some()).collect();
            self.covered.fetch_max(end, Ordering::SeqCst);
            self.reserve(self.len() + rows.len())?;
            for &v in &rows {
                let Some((row, _)) = graph.embedding(v) else { continue };
                let key = v as u64;
                if self.populated.load(Ordering::SeqCst) {
                    let inner = self.index.read().unwrap_or_else(|p| p.into_inner());
                    if inner.contains(key) {
                        continue; // added by a call that failed after it
                    }
                    let _slot = self.gate.enter();
                    inner.add(key, row).map_err(|e| failed(&format!("adding node {v}"), e))?;
                } else {
                    // The first vector: no search may run while usearch publishes it.
                    let inner = self.index.write().unwrap_or_else(|p| p.into_inner());
                    if !inner.contains(key) {
                        inner.add(key, row).map_err(|e| failed(&format!("adding node {v}"), e))?;
                    }
                    self.populated.store(true, Ordering::SeqCst);
                }
                added += 1;
            }
            self.indexed.store(end, Ordering::SeqCst);
            from = end;
        }
        let per_vector = self.bytes_per_vector.load(Ordering::Relaxed);
        self.bytes.fetch_add(added * per_vector, Ordering::Relaxed);
        Ok(added)
    }

    /// Make room for `total` vectors, doubling: the only step that waits for searches in flight.
    fn reserve(&self, total: usize) -> Result<()> {
        let capacity = self.index.read().unwrap_or_else(|p| p.into_inner()).capacity();
        if total <= capacity {
            return Ok(());
        }
        let grown = total.max(capacity.saturating_mul(2));
        let inner = self.index.write().unwrap_or_else(|p| p.into_inner());
        inner
            .reserve_capacity_and_threads(grown, self.gate.slots)
            .map_err(|e| failed(&format!("growing to {grown} vectors"), e))
    }

    /// Up to `count` candidate node ids nearest to `query` (a checked, non-zero vector of the
    /// index's dimension) among the indexed nodes below `node_count`, best first as the index ranks
    /// them. Returns where the indexed nodes end: nodes from there to `node_count` are the caller's
    /// to scan.
    pub fn search(
        &self,
        query: &[f32],
        count: usize,
        node_count: usize,
        out: &mut Vec<u32>,
    ) -> Result<usize> {
        out.clear();
        if !self.populated.load(Ordering::SeqCst) {
            return Ok(0); // nothing in it: the caller scans everything
        }
        let limit = self.indexed.load(Ordering::SeqCst).min(node_count);
        let inner = self.index.read().unwrap_or_else(|p| p.into_inner());
        // usearch sizes its answer (and grows its per-context buffers) by `count`: never more than
        // it holds, whatever `k` a cue asks for.
        let count = count.min(limit).min(inner.size());
        if count == 0 {
            return Ok(limit);
        }
        let _slot = self.gate.enter();
        let matches = if self.covered.load(Ordering::SeqCst) <= limit {
            inner.search(query, count)
        } else {
            inner.filtered_search(query, count, |key| key < limit as u64)
        }
        .map_err(|e| failed("searching", e))?;
        // Nodes past `limit` can only come from a race with an addition: the caller scans them.
        out.extend(matches.keys.iter().filter(|&&key| key < limit as u64).map(|&key| key as u32));
        Ok(limit)
    }

    /// Set the candidates a search keeps (`similarity.ef_search`); applies to the next search
    /// (waits for those in flight: usearch reads it unsynchronised).
    pub fn set_ef_search(&self, ef_search: usize) {
        self.index.write().unwrap_or_else(|p| p.into_inner()).change_expansion_search(ef_search);
    }

    /// The candidates a search keeps.
    pub fn ef_search(&self) -> usize {
        self.index.read().unwrap_or_else(|p| p.into_inner()).expansion_search()
    }

    /// The shape it was built with.
    pub fn shape(&self) -> IndexShape {
        self.shape
    }

    /// Vectors in the index.
    pub fn len(&self) -> usize {
        self.index.read().unwrap_or_else(|p| p.into_inner()).size()
    }

    /// Whether it holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every embedded node below this is in it.
    pub fn indexed(&self) -> usize {
        self.indexed.load(Ordering::SeqCst)
    }

    /// Bytes it holds in memory: counted by usearch when it was built or loaded, plus the bytes
    /// per vector then for each vector added since.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The index serialized (usearch's format). The caller keeps additions out meanwhile and
    /// knows `indexed` (what it covers).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let inner = self.index.read().unwrap_or_else(|p| p.into_inner());
        let mut bytes = Vec::new();
        let length = inner.serialized_length();
        bytes.try_reserve_exact(length).map_err(|_| Error::OutOfMemory {
            what: "the serialized similarity index".into(),
            bytes: length,
            available: None,
        })?;
        bytes.resize(length, 0);
        inner.save_to_buffer(&mut bytes).map_err(|e| failed("serializing", e))?;
        Ok(bytes)
    }

    /// Load an index serialized by [`AnnIndex::to_bytes`] (copied into memory) that holds the
    /// `vectors` embedded nodes below `covered`, checking its shape and size.
    pub fn from_bytes(
        bytes: &[u8],
        shape: IndexShape,
        ef_search: usize,
        vectors: usize,
        covered: usize,
    ) -> Result<AnnIndex> {
        let meta = Index::metadata_from_buffer(bytes).map_err(|e| failed("reading the saved index", e))?;
        if meta.dimensions != shape.dim as u64
            || meta.metric != MetricKind::Cos
            || meta.quantization != ScalarKind::F32
        {
            return Err(failed(
                "loading the saved index",
                format!(
                    "it has dimension {} ({:?}, {:?}); expected {} (Cos, F32)",
                    meta.dimensions, meta.metric, meta.quantization, shape.dim
                ),
            ));
        }
        let index = AnnIndex::new(shape, ef_search, vectors)?;
        {
            let inner = index.index.write().unwrap_or_else(|p| p.into_inner());
            inner.load_from_buffer(bytes).map_err(|e| failed("loading the saved index", e))?;
            if inner.connectivity() != shape.connectivity || inner.size() != vectors || inner.multi() {
                return Err(failed(
                    "loading the saved index",
                    format!(
                        "connectivity {} with {} vectors{}; expected {} with {vectors}, one per key",
                        inner.connectivity(),
                        inner.size(),
                        if inner.multi() { ", several per key" } else { "" },
                        shape.connectivity
                    ),
                ));
            }
            // Loading resets the search width and the reserved contexts.
            inner.change_expansion_search(ef_search);
            inner
                .reserve_capacity_and_threads(vectors.max(64), index.gate.slots)
                .map_err(|e| failed("reserving contexts", e))?;
        }
        index.covered.store(covered, Ordering::SeqCst);
        index.indexed.store(covered, Ordering::SeqCst);
        index.settle();
        Ok(index)
    }
}

/// A counting gate: at most `slots` holders at once, the rest wait.
struct Gate {
    slots: usize,
    held: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Gate);

impl Gate {
    fn new(slots: usize) -> Gate {
        Gate { slots, held: Mutex::new(0), freed: Condvar::new() }
    }

    fn enter(&self) -> Slot<'_> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut held = self.freed.wait_while(held, |h| *h >= self.slots).unwrap_or_else(|p| p.into_inner());
        *held += 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}
