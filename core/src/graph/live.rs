//! The living graph (docs/spec.md §16). A [`GraphVersion`] is an immutable base [`Graph`] plus the
//! pending changes of every batch applied since that base was built; a [`View`] is what spreading
//! reads. Changes are kept *absolute*: the complete current out-list of every changed source, and the
//! complete current in-lists (one per source tier, in the canonical order) of every destination a
//! change touched. So a view answers "the out-edges of u" and "the in-edges of v from tier t" either
//! from the base or from the changes, never by merging the two — and the order of contributions to a
//! node, the one thing bit-identical results depend on, is exactly that of a graph built from scratch
//! from the current edge list: tier, then source id, then the edge's place in its source's list.
//!
//! Invariant: a source without changes has its base out-list; a destination without changes has its
//! base in-lists. A batch that appends to u's list, reweights or removes u→v, or moves u to another
//! tier, re-derives the in-lists of exactly the destinations it touched.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Csr, Embeddings, Graph, Labels, Tier, builder::build_reverse};
use crate::error::{Error, Result};
use crate::memory;

/// One atomic batch of changes (docs/spec.md §16), validated whole before anything applies.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Batch {
    /// `count` new nodes, ids from the current node count on, with optional per-node tiers,
    /// labels and embeddings (`embeddings`: `count × dim` values, row-major).
    AddNodes {
        /// How many.
        count: u32,
        /// One per node, or none (all hot).
        tiers: Option<Vec<Tier>>,
        /// One per node, or none.
        labels: Option<Vec<Option<String>>>,
        /// `(dim, values)`: `count` rows of `dim` values, or none.
        embeddings: Option<(usize, Vec<f32>)>,
    },
    /// Append edges to their sources' lists, in order.
    AddEdges {
        /// Sources.
        src: Vec<u32>,
        /// Targets.
        dst: Vec<u32>,
        /// Weights in (0, 1].
        weight: Vec<f32>,
    },
    /// Give every `src → dst` edge of each pair this weight (each pair must exist).
    SetWeights {
        /// Sources.
        src: Vec<u32>,
        /// Targets.
        dst: Vec<u32>,
        /// Weights in (0, 1].
        weight: Vec<f32>,
    },
    /// Remove every `src → dst` edge of each pair (each pair must exist, and be listed once).
    RemoveEdges {
        /// Sources.
        src: Vec<u32>,
        /// Targets.
        dst: Vec<u32>,
    },
    /// Move nodes to tiers.
    SetTiers {
        /// Nodes.
        nodes: Vec<u32>,
        /// Their new tiers.
        tiers: Vec<Tier>,
    },
}

impl Batch {
    /// The name of the operation, for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Batch::AddNodes { .. } => "add_nodes",
            Batch::AddEdges { .. } => "add_edges",
            Batch::SetWeights { .. } => "set_weights",
            Batch::RemoveEdges { .. } => "remove_edges",
            Batch::SetTiers { .. } => "set_tiers",
        }
    }
}

/// An out-list or one tier's in-list: neighbour ids and weights, in the canonical order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EdgeList {
    pub(crate) nodes: Vec<u32>,
    pub(crate) weights: Vec<f32>,
}

impl EdgeList {
    fn from_slices(nodes: &[u32], weights: &[f32]) -> EdgeList {
        EdgeList { nodes: nodes.to_vec(), weights: weights.to_vec() }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// A destination's in-lists, one per source tier, each sorted by (source, place in the source's list).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InLists {
    pub(crate) tiers: [EdgeList; 3],
}

/// A sorted map from node id to shared values: lookups by binary search, and ranges of ids that a
/// chunked pass over the nodes walks in step with its own index.
#[derive(Debug)]
pub(crate) struct NodeMap<V> {
    keys: Vec<u32>,
    values: Vec<Arc<V>>,
}

impl<V> Default for NodeMap<V> {
    fn default() -> Self {
        NodeMap { keys: Vec::new(), values: Vec::new() }
    }
}

impl<V> Clone for NodeMap<V> {
    fn clone(&self) -> Self {
        NodeMap { keys: self.keys.clone(), values: self.values.clone() }
    }
}

impl<V> NodeMap<V> {
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<&V> {
        self.keys.binary_search(&key).ok().map(|i| &*self.values[i])
    }

    /// The entries with keys in `lo..hi`.
    #[inline]
    pub(crate) fn range(&self, lo: u32, hi: u32) -> (&[u32], &[Arc<V>]) {
        let a = self.keys.partition_point(|&k| k < lo);
        let b = a + self.keys[a..].partition_point(|&k| k < hi);
        (&self.keys[a..b], &self.values[a..b])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A copy with `changes` (sorted by key, unique) replacing or joining the entries.
    fn merged(&self, changes: Vec<(u32, V)>) -> NodeMap<V> {
        let mut keys = Vec::with_capacity(self.keys.len() + changes.len());
        let mut values = Vec::with_capacity(self.keys.len() + changes.len());
        let mut i = 0;
        for (key, value) in changes {
            while i < self.keys.len() && self.keys[i] < key {
                keys.push(self.keys[i]);
                values.push(Arc::clone(&self.values[i]));
                i += 1;
            }
            if i < self.keys.len() && self.keys[i] == key {
                i += 1;
            }
            keys.push(key);
            values.push(Arc::new(value));
        }
        keys.extend_from_slice(&self.keys[i..]);
        values.extend(self.values[i..].iter().cloned());
        NodeMap { keys, values }
    }
}

/// An added node's embedding and its norm.
pub(crate) type AddedEmbedding = (Arc<[f32]>, f32);

/// Changed lists of one batch, by node id.
type Changed<V> = Vec<(u32, V)>;

/// The changes of a version relative to its base. Cheap to share between versions: a batch copies
/// the two maps' key and pointer arrays (proportional to the changed nodes), never the lists it did
/// not touch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    /// Changed sources: their complete out-lists.
    pub(crate) out: NodeMap<EdgeList>,
    /// Touched destinations: their complete in-lists.
    pub(crate) ins: NodeMap<InLists>,
    /// Every node's tier, when a batch changed one or added nodes (else the base's).
    pub(crate) tiers: Option<Arc<Vec<Tier>>>,
    /// Labels of the nodes added since the base (index: id − base node count).
    pub(crate) added_labels: Arc<Vec<Option<Arc<str>>>>,
    /// Embeddings of the nodes added since the base, with their norms.
    pub(crate) added_embeddings: Arc<Vec<Option<AddedEmbedding>>>,
    /// Whether any tier has in-edges that only the changes hold.
    pub(crate) tier_has_ins: [bool; 3],
    /// Edge changes since the base (added, removed, reweighted, moved between tiers): the
    /// compaction trigger's measure, `spreading_graph_delta_edges`.
    pub(crate) pending_edges: u64,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.out.is_empty() && self.ins.is_empty() && self.tiers.is_none() && self.added_labels.is_empty()
    }
}

/// One version of an engine's graph: a base, the changes on top of it, and its number.
#[derive(Debug)]
pub struct GraphVersion {
    version: u64,
    base: Arc<Graph>,
    delta: Option<Delta>,
    node_count: u32,
    edge_count: u64,
    tier_counts: [u32; 3],
    embedding_dim: Option<usize>,
}

impl GraphVersion {
    /// Version `version` of `base` with no changes on top.
    pub fn fresh(base: Arc<Graph>, version: u64) -> GraphVersion {
        GraphVersion {
            version,
            node_count: base.node_count,
            edge_count: base.edge_count() as u64,
            tier_counts: base.tier_counts,
            embedding_dim: base.embedding_dim(),
            base,
            delta: None,
        }
    }

    /// The version number: each batch makes a new one; compaction keeps it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The base graph the changes apply to.
    pub fn base(&self) -> &Arc<Graph> {
        &self.base
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.node_count as usize
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.edge_count as usize
    }

    /// Nodes per tier (hot, warm, cold).
    pub fn tier_counts(&self) -> [u32; 3] {
        self.tier_counts
    }

    /// Edge changes pending since the base was built (0 right after a compaction).
    pub fn delta_edges(&self) -> u64 {
        self.delta.as_ref().map_or(0, |d| d.pending_edges)
    }

    /// Whether changes are pending on top of the base.
    pub fn has_changes(&self) -> bool {
        self.delta.is_some()
    }

    /// What spreading reads.
    pub fn view(&self) -> View<'_> {
        View {
            base: &self.base,
            delta: self.delta.as_ref(),
            tiers: match self.delta.as_ref().and_then(|d| d.tiers.as_deref()) {
                Some(tiers) => tiers,
                None => &self.base.tiers,
            },
            node_count: self.node_count as usize,
            edge_count: self.edge_count as usize,
            embedding_dim: self.embedding_dim,
        }
    }

    /// Label of `node`.
    pub fn label(&self, node: u32) -> Option<&str> {
        self.view().label(node)
    }

    /// Tier of `node`.
    pub fn tier(&self, node: u32) -> Option<Tier> {
        self.view().tiers.get(node as usize).copied()
    }

    /// The node carrying exactly this label (the lowest id when several do).
    pub fn find(&self, label: &str) -> Option<u32> {
        let base = self.base.find(label);
        if base.is_some() {
            return base;
        }
        let delta = self.delta.as_ref()?;
        let first = self.base.node_count;
        delta.added_labels.iter().position(|l| l.as_deref() == Some(label)).map(|i| first + i as u32)
    }

    /// Out-edges of `node` as `(dst, weight)` in insertion order.
    pub fn out_edges(&self, node: u32) -> Vec<(u32, f32)> {
        let (nodes, weights) = self.view().out(node as usize);
        nodes.iter().copied().zip(weights.iter().copied()).collect()
    }

    /// The graph this version is, built afresh (a compaction, or a snapshot of the engine).
    pub fn materialize(&self) -> Result<Graph> {
        materialize(self)
    }

    /// Apply `batch` as version `version`: validated whole first, then applied; an error names the
    /// entry and nothing changes.
    pub fn apply(&self, batch: &Batch, version: u64) -> Result<GraphVersion> {
        apply(self, batch, version)
    }
}

/// A graph as spreading reads it: a base and, optionally, changes on top.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub(crate) base: &'a Graph,
    pub(crate) delta: Option<&'a Delta>,
    pub(crate) tiers: &'a [Tier],
    node_count: usize,
    edge_count: usize,
    embedding_dim: Option<usize>,
}

impl<'a> From<&'a Graph> for View<'a> {
    fn from(graph: &'a Graph) -> View<'a> {
        View::of(graph)
    }
}

impl<'a> From<&'a GraphVersion> for View<'a> {
    fn from(version: &'a GraphVersion) -> View<'a> {
        version.view()
    }
}

const NO_EDGES: (&[u32], &[f32]) = (&[], &[]);

impl<'a> View<'a> {
    /// A plain graph.
    pub fn of(graph: &'a Graph) -> View<'a> {
        View {
            base: graph,
            delta: None,
            tiers: &graph.tiers,
            node_count: graph.node_count(),
            edge_count: graph.edge_count(),
            embedding_dim: graph.embedding_dim(),
        }
    }

    /// Number of nodes.
    #[inline]
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// Number of edges.
    #[inline]
    pub fn edge_count(&self) -> usize {
        self.edge_count
    }

    /// Every node's tier.
    #[inline]
    pub fn tiers(&self) -> &'a [Tier] {
        self.tiers
    }

    /// The base graph when there are no changes on top (what a device may keep resident).
    #[inline]
    pub(crate) fn plain(&self) -> Option<&'a Graph> {
        if self.delta.is_none() { Some(self.base) } else { None }
    }

    /// Out-edges of `u`: ids and weights, in insertion order.
    #[inline]
    pub(crate) fn out(&self, u: usize) -> (&'a [u32], &'a [f32]) {
        if let Some(delta) = self.delta
            && let Some(list) = delta.out.get(u as u32)
        {
            return (&list.nodes, &list.weights);
        }
        if u < self.base.node_count() {
            let range = self.base.forward.range(u);
            (&self.base.forward.neighbours[range.clone()], &self.base.forward.weights[range])
        } else {
            NO_EDGES
        }
    }

    /// Out-degree of `u` (every out-edge counts).
    #[inline]
    pub(crate) fn out_degree(&self, u: usize) -> usize {
        self.out(u).0.len()
    }

    /// Changed sources with ids in `lo..hi` and their out-lists.
    #[inline]
    pub(crate) fn changed_sources(&self, lo: usize, hi: usize) -> (&'a [u32], &'a [Arc<EdgeList>]) {
        match self.delta {
            Some(delta) => delta.out.range(lo as u32, hi as u32),
            None => (&[], &[]),
        }
    }

    /// Out-degree of `u` for a pass over nodes in order, where `changed` holds the changed sources
    /// from `u` on (the caller advances it).
    #[inline]
    pub(crate) fn base_out_degree(&self, u: usize) -> usize {
        if u < self.base.node_count() { self.base.forward.range(u).len() } else { 0 }
    }

    /// Whether any node has in-edges from sources of `tier`.
    #[inline]
    pub(crate) fn has_in_edges(&self, tier: Tier) -> bool {
        !self.base.reverse[tier.index()].neighbours.is_empty()
            || self.delta.is_some_and(|d| d.tier_has_ins[tier.index()])
    }

    /// For destinations `first..first + next.len()`: `next[v] += Σ send[u] · w` over `v`'s in-edges
    /// from `tier`, in the canonical order (source id, then place in the source's list).
    #[inline]
    pub(crate) fn gather(&self, tier: Tier, send: &[f32], first: usize, next: &mut [f32]) {
        let csr = &self.base.reverse[tier.index()];
        let base_n = self.base.node_count();
        let Some(delta) = self.delta.filter(|d| !d.ins.is_empty()) else {
            let end = (first + next.len()).min(base_n);
            if !csr.neighbours.is_empty() && first < end {
                gather_csr(csr, send, first, &mut next[..end - first]);
            }
            return;
        };
        let (keys, lists) = delta.ins.range(first as u32, (first + next.len()) as u32);
        let mut start = first;
        for (&key, lists) in keys.iter().zip(lists) {
            let v = key as usize;
            // Unchanged destinations before `v` read the base.
            let end = v.min(base_n);
            if !csr.neighbours.is_empty() && start < end {
                gather_csr(csr, send, start, &mut next[start - first..end - first]);
            }
            let list = &lists.tiers[tier.index()];
            let mut acc = next[v - first];
            for (&u, &w) in list.nodes.iter().zip(&list.weights) {
                acc += send[u as usize] * w;
            }
            next[v - first] = acc;
            start = v + 1;
        }
        let end = (first + next.len()).min(base_n);
        if !csr.neighbours.is_empty() && start < end {
            gather_csr(csr, send, start, &mut next[start - first..end - first]);
        }
    }

    /// Label of `node`.
    pub fn label(&self, node: u32) -> Option<&'a str> {
        let v = node as usize;
        if v < self.base.node_count() {
            return self.base.label(node);
        }
        self.delta?.added_labels.get(v - self.base.node_count())?.as_deref()
    }

    /// Whether any node may have a label.
    pub fn has_labels(&self) -> bool {
        self.base.has_labels() || self.delta.is_some_and(|d| d.added_labels.iter().any(Option::is_some))
    }

    /// Embedding dimension, if the graph has embeddings.
    pub fn embedding_dim(&self) -> Option<usize> {
        self.embedding_dim
    }

    /// Embedding of `v` and its norm (`None`: the node has none).
    #[inline]
    pub(crate) fn embedding(&self, v: usize) -> Option<(&'a [f32], f32)> {
        if v < self.base.node_count() {
            let e = self.base.embeddings.as_ref()?;
            let norm = e.norms[v];
            return (norm > 0.0).then(|| (e.row(v), norm));
        }
        let (row, norm) = self.delta?.added_embeddings.get(v - self.base.node_count())?.as_ref()?;
        Some((row, *norm))
    }
}

/// Gather for destinations `first..first + next.len()`: `next[v] += Σ send[u] · w` in reverse-CSR
/// order. Non-frontier sources have `send[u] = 0`, and adding +0.0 leaves a non-negative sum
/// unchanged, so this equals the push over the frontier alone, bit for bit.
#[inline]
pub(crate) fn gather_csr(csr: &Csr, send: &[f32], first: usize, next: &mut [f32]) {
    let offsets = &csr.offsets[first..first + next.len() + 1];
    for (i, slot) in next.iter_mut().enumerate() {
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut acc = *slot;
        for (&u, &w) in csr.neighbours[lo..hi].iter().zip(&csr.weights[lo..hi]) {
            acc += send[u as usize] * w;
        }
        *slot = acc;
    }
}

/// Validate and apply one batch.
fn apply(current: &GraphVersion, batch: &Batch, version: u64) -> Result<GraphVersion> {
    validate(current, batch)?;
    let view = current.view();
    let mut work = Working::new(view);
    let mut next = GraphVersion {
        version,
        base: Arc::clone(&current.base),
        delta: None,
        node_count: current.node_count,
        edge_count: current.edge_count,
        tier_counts: current.tier_counts,
        embedding_dim: current.embedding_dim,
    };
    let mut delta = current.delta.clone().unwrap_or_default();
    match batch {
        Batch::AddNodes { count, tiers, labels, embeddings } => {
            let n = current.node_count as usize;
            let total = n + *count as usize;
            let mut all = Vec::new();
            memory::reserve(&mut all, total, || format!("the tiers of {total} nodes"))?;
            all.extend_from_slice(view.tiers);
            for i in 0..*count as usize {
                let tier = tiers.as_ref().map_or(Tier::Hot, |t| t[i]);
                next.tier_counts[tier.index()] += 1;
                all.push(tier);
            }
            delta.tiers = Some(Arc::new(all));
            let mut added_labels = (*delta.added_labels).clone();
            let mut added_embeddings = (*delta.added_embeddings).clone();
            for i in 0..*count as usize {
                added_labels.push(labels.as_ref().and_then(|l| l[i].as_deref()).map(Arc::from));
                added_embeddings.push(embeddings.as_ref().and_then(|(dim, values)| {
                    let row = &values[i * dim..(i + 1) * dim];
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                    (norm > 0.0).then(|| (Arc::from(row), norm))
                }));
            }
            if let Some((dim, _)) = embeddings {
                next.embedding_dim = Some(*dim);
            }
            delta.added_labels = Arc::new(added_labels);
            delta.added_embeddings = Arc::new(added_embeddings);
            next.node_count += count;
        }
        Batch::AddEdges { src, dst, weight } => {
            // Out-lists: append in batch order. In-lists: one merge per destination.
            let mut entries: Vec<(u32, u32, u32, f32)> = Vec::with_capacity(src.len());
            for (i, ((&u, &v), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
                let list = work.out_mut(u);
                list.nodes.push(v);
                list.weights.push(w);
                entries.push((v, u, i as u32, w));
            }
            entries.sort_unstable_by_key(|&(v, u, i, _)| (v, u, i));
            let mut i = 0;
            while i < entries.len() {
                let v = entries[i].0;
                let end = i + entries[i..].partition_point(|e| e.0 == v);
                let tiers = work.view.tiers;
                let lists = work.ins_mut(v);
                for tier in Tier::ALL {
                    let new: Vec<(u32, f32)> = entries[i..end]
                        .iter()
                        .filter(|e| tiers[e.1 as usize] == tier)
                        .map(|e| (e.1, e.3))
                        .collect();
                    if !new.is_empty() {
                        merge_after_equal_sources(&mut lists.tiers[tier.index()], &new);
                    }
                }
                i = end;
            }
            next.edge_count += src.len() as u64;
            delta.pending_edges += src.len() as u64;
        }
        Batch::SetWeights { src, dst, weight } => {
            let mut changed = 0u64;
            for ((&u, &v), &w) in src.iter().zip(dst).zip(weight) {
                let list = work.out_mut(u);
                for (node, slot) in list.nodes.iter().zip(list.weights.iter_mut()) {
                    if *node == v {
                        *slot = w;
                        changed += 1;
                    }
                }
                let tier = work.view.tiers[u as usize];
                let lists = work.ins_mut(v);
                let list = &mut lists.tiers[tier.index()];
                for (node, slot) in list.nodes.iter().zip(list.weights.iter_mut()) {
                    if *node == u {
                        *slot = w;
                    }
                }
            }
            delta.pending_edges += changed;
        }
        Batch::RemoveEdges { src, dst } => {
            let mut removed = 0u64;
            for (&u, &v) in src.iter().zip(dst) {
                let list = work.out_mut(u);
                let before = list.len();
                retain_pairs(list, |node| node != v);
                removed += (before - list.len()) as u64;
                let tier = work.view.tiers[u as usize];
                let lists = work.ins_mut(v);
                retain_pairs(&mut lists.tiers[tier.index()], |node| node != u);
            }
            next.edge_count -= removed;
            delta.pending_edges += removed;
        }
        Batch::SetTiers { nodes, tiers } => {
            let mut all = view.tiers.to_vec();
            let mut moved = 0u64;
            for (&u, &tier) in nodes.iter().zip(tiers) {
                let old = all[u as usize];
                if old == tier {
                    continue;
                }
                all[u as usize] = tier;
                next.tier_counts[old.index()] -= 1;
                next.tier_counts[tier.index()] += 1;
                // u's entries move from the old tier's in-lists to the new one's, everywhere.
                let (targets, _) = work.out_snapshot(u);
                let mut targets = targets;
                targets.sort_unstable();
                targets.dedup();
                for v in targets {
                    let lists = work.ins_mut(v);
                    let from = &mut lists.tiers[old.index()];
                    let mut taken = Vec::new();
                    let mut kept = EdgeList::default();
                    for (&s, &w) in from.nodes.iter().zip(&from.weights) {
                        if s == u {
                            taken.push((s, w));
                        } else {
                            kept.nodes.push(s);
                            kept.weights.push(w);
                        }
                    }
                    moved += taken.len() as u64;
                    *from = kept;
                    merge_after_equal_sources(&mut lists.tiers[tier.index()], &taken);
                }
                work.tiers_changed = true;
            }
            // Later batches (and this one's in-list moves, done above) read the new tiers.
            delta.tiers = Some(Arc::new(all));
            delta.pending_edges += moved;
        }
    }
    let (out, ins) = work.finish();
    delta.out = delta.out.merged(out);
    delta.ins = delta.ins.merged(ins);
    for (tier, has) in delta.tier_has_ins.iter_mut().enumerate() {
        *has = *has || delta.ins.values.iter().any(|l| !l.tiers[tier].nodes.is_empty());
    }
    next.delta = if delta.is_empty() && delta.pending_edges == 0 { None } else { Some(delta) };
    Ok(next)
}

/// Copies of the lists a batch changes, taken from the current view on first touch.
struct Working<'a> {
    view: View<'a>,
    out: HashMap<u32, EdgeList>,
    ins: HashMap<u32, InLists>,
    tiers_changed: bool,
}

impl<'a> Working<'a> {
    fn new(view: View<'a>) -> Self {
        Working { view, out: HashMap::new(), ins: HashMap::new(), tiers_changed: false }
    }

    fn out_mut(&mut self, u: u32) -> &mut EdgeList {
        let view = self.view;
        self.out.entry(u).or_insert_with(|| {
            let (nodes, weights) = view.out(u as usize);
            EdgeList::from_slices(nodes, weights)
        })
    }

    /// The targets and weights of `u`'s current list (changed in this batch or not).
    fn out_snapshot(&self, u: u32) -> (Vec<u32>, Vec<f32>) {
        match self.out.get(&u) {
            Some(list) => (list.nodes.clone(), list.weights.clone()),
            None => {
                let (nodes, weights) = self.view.out(u as usize);
                (nodes.to_vec(), weights.to_vec())
            }
        }
    }

    fn ins_mut(&mut self, v: u32) -> &mut InLists {
        let view = self.view;
        self.ins.entry(v).or_insert_with(|| current_in_lists(view, v))
    }

    /// The changed lists, sorted by node id.
    fn finish(self) -> (Changed<EdgeList>, Changed<InLists>) {
        let mut out: Vec<_> = self.out.into_iter().collect();
        out.sort_unstable_by_key(|(k, _)| *k);
        let mut ins: Vec<_> = self.ins.into_iter().collect();
        ins.sort_unstable_by_key(|(k, _)| *k);
        (out, ins)
    }
}

/// The in-lists of `v` in `view`: the changes' copy, or the base's reverse CSRs.
fn current_in_lists(view: View<'_>, v: u32) -> InLists {
    if let Some(delta) = view.delta
        && let Some(lists) = delta.ins.get(v)
    {
        return lists.clone();
    }
    let mut lists = InLists::default();
    if (v as usize) < view.base.node_count() {
        for tier in Tier::ALL {
            let csr = &view.base.reverse[tier.index()];
            if csr.neighbours.is_empty() {
                continue;
            }
            let range = csr.range(v as usize);
            lists.tiers[tier.index()] =
                EdgeList::from_slices(&csr.neighbours[range.clone()], &csr.weights[range]);
        }
    }
    lists
}

/// Insert `new` entries (sorted by source; within a source in list order) into `list` (sorted by
/// source, then list order), each after every existing entry of the same source: new edges come
/// last in their source's list.
fn merge_after_equal_sources(list: &mut EdgeList, new: &[(u32, f32)]) {
    let mut merged = EdgeList {
        nodes: Vec::with_capacity(list.len() + new.len()),
        weights: Vec::with_capacity(list.len() + new.len()),
    };
    let mut i = 0;
    for &(source, weight) in new {
        while i < list.len() && list.nodes[i] <= source {
            merged.nodes.push(list.nodes[i]);
            merged.weights.push(list.weights[i]);
            i += 1;
        }
        merged.nodes.push(source);
        merged.weights.push(weight);
    }
    merged.nodes.extend_from_slice(&list.nodes[i..]);
    merged.weights.extend_from_slice(&list.weights[i..]);
    *list = merged;
}

/// Keep the entries whose node passes `keep`, in order.
fn retain_pairs(list: &mut EdgeList, keep: impl Fn(u32) -> bool) {
    let mut write = 0;
    for read in 0..list.nodes.len() {
        if keep(list.nodes[read]) {
            list.nodes[write] = list.nodes[read];
            list.weights[write] = list.weights[read];
            write += 1;
        }
    }
    list.nodes.truncate(write);
    list.weights.truncate(write);
}

/// Check a whole batch against `current`; the error names the entry (index, ids, value).
fn validate(current: &GraphVersion, batch: &Batch) -> Result<()> {
    let n = current.node_count;
    let view = current.view();
    let op = batch.name();
    let node_in_range = |index: usize, end: &'static str, node: u32| -> Result<()> {
        if node < n { Ok(()) } else { Err(Error::EdgeNodeOutOfRange { index, end, node, node_count: n }) }
    };
    let weight_ok = |index: usize, w: f32| -> Result<()> {
        if w.is_finite() && w > 0.0 && w <= 1.0 {
            Ok(())
        } else {
            Err(Error::InvalidWeight { index, weight: w.to_string() })
        }
    };
    let same_len = |a: usize, b: usize, c: usize| -> Result<()> {
        if a == b && b == c { Ok(()) } else { Err(Error::EdgeArrayLengths { src: a, dst: b, weight: c }) }
    };
    let pair_exists = |index: usize, u: u32, v: u32| -> Result<()> {
        if view.out(u as usize).0.contains(&v) {
            Ok(())
        } else {
            Err(Error::MissingEdge { operation: op, index, src: u, dst: v })
        }
    };
    match batch {
        Batch::AddNodes { count, tiers, labels, embeddings } => {
            let count = *count as usize;
            if count == 0 {
                return Err(Error::batch(op, "count must be at least 1"));
            }
            let total = n as u64 + count as u64;
            if total >= u32::MAX as u64 {
                return Err(Error::TooLarge {
                    what: "node count",
                    count: total as usize,
                    limit: u32::MAX as usize - 1,
                });
            }
            for (what, len) in
                [("tiers", tiers.as_ref().map(Vec::len)), ("labels", labels.as_ref().map(Vec::len))]
            {
                if let Some(len) = len
                    && len != count
                {
                    return Err(Error::batch(op, format!("{what}: {len} entries for {count} new nodes")));
                }
            }
            if let Some((dim, values)) = embeddings {
                if *dim == 0 || values.len() != count * dim {
                    return Err(Error::batch(
                        op,
                        format!("embeddings: {} values for {count} nodes of dimension {dim}", values.len()),
                    ));
                }
                if let Some(expected) = current.embedding_dim
                    && expected != *dim
                {
                    return Err(Error::EmbeddingDimension { node: n, expected, found: *dim });
                }
                if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                    return Err(Error::InvalidEmbedding {
                        node: n + (i / dim) as u32,
                        problem: format!("value {} at index {} is not finite", values[i], i % dim),
                    });
                }
            }
        }
        Batch::AddEdges { src, dst, weight } => {
            same_len(src.len(), dst.len(), weight.len())?;
            let total = current.edge_count + src.len() as u64;
            if total > u32::MAX as u64 {
                return Err(Error::TooLarge {
                    what: "edge count",
                    count: total as usize,
                    limit: u32::MAX as usize,
                });
            }
            for (i, ((&u, &v), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                weight_ok(i, w)?;
            }
        }
        Batch::SetWeights { src, dst, weight } => {
            same_len(src.len(), dst.len(), weight.len())?;
            for (i, ((&u, &v), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                weight_ok(i, w)?;
                pair_exists(i, u, v)?;
            }
        }
        Batch::RemoveEdges { src, dst } => {
            if src.len() != dst.len() {
                return Err(Error::EdgeArrayLengths { src: src.len(), dst: dst.len(), weight: src.len() });
            }
            let mut seen = HashMap::new();
            for (i, (&u, &v)) in src.iter().zip(dst).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                pair_exists(i, u, v)?;
                if let Some(first) = seen.insert((u, v), i) {
                    return Err(Error::batch(
                        op,
                        format!("entry {i}: pair ({u}, {v}) is already listed at entry {first}"),
                    ));
                }
            }
        }
        Batch::SetTiers { nodes, tiers } => {
            if nodes.len() != tiers.len() {
                return Err(Error::batch(op, format!("{} nodes but {} tiers", nodes.len(), tiers.len())));
            }
            for (i, &u) in nodes.iter().enumerate() {
                if u >= n {
                    return Err(Error::batch(
                        op,
                        format!("entry {i}: node {u} out of range (graph has {n} nodes)"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Build the graph `current` is, afresh: forward CSR from the current out-lists, reverse CSRs,
/// tiers, labels and embeddings. Every array is reserved fallibly.
fn materialize(current: &GraphVersion) -> Result<Graph> {
    let view = current.view();
    let n = view.node_count();
    let m = view.edge_count();
    memory::check_available(|| format!("a graph of {n} nodes and {m} edges"), (n + 1) * 21 + m * 16)?;
    let mut offsets = memory::filled(n + 1, 0u32, || format!("the out-edge offsets of {n} nodes"))?;
    let mut neighbours = Vec::new();
    let mut weights = Vec::new();
    memory::reserve(&mut neighbours, m, || format!("the out-edges of {m} edges"))?;
    memory::reserve(&mut weights, m, || format!("the out-edge weights of {m} edges"))?;
    for u in 0..n {
        let (nodes, ws) = view.out(u);
        neighbours.extend_from_slice(nodes);
        weights.extend_from_slice(ws);
        offsets[u + 1] = neighbours.len() as u32;
    }
    let forward = Csr { offsets: offsets.into(), neighbours: neighbours.into(), weights: weights.into() };
    let tiers = view.tiers.to_vec();
    let mut reverse: [Csr; 3] = Default::default();
    for tier in Tier::ALL {
        reverse[tier.index()] = build_reverse(n, &forward, &tiers, tier)?;
    }
    let labels =
        if view.has_labels() { Some(Labels::pack(n, (0..n).map(|v| view.label(v as u32)))?) } else { None };
    let embeddings = match view.embedding_dim() {
        None => None,
        Some(dim) => {
            let mut values =
                memory::filled(n.saturating_mul(dim), 0.0f32, || format!("the embeddings of {n} nodes"))?;
            let mut norms = memory::filled(n, 0.0f32, || format!("the embedding norms of {n} nodes"))?;
            for v in 0..n {
                if let Some((row, norm)) = view.embedding(v) {
                    values[v * dim..(v + 1) * dim].copy_from_slice(row);
                    norms[v] = norm;
                }
            }
            Some(Embeddings { dim, values: values.into(), norms: norms.into() })
        }
    };
    Ok(Graph {
        id: Graph::next_id(),
        node_count: n as u32,
        forward,
        reverse,
        tier_counts: current.tier_counts,
        tiers,
        labels,
        embeddings,
        origin_version: current.version,
        label_index: Default::default(),
    })
}
