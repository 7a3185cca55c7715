//! The living graph (docs/spec.md §16). A [`GraphVersion`] is an immutable base [`Graph`] plus the
//! pending changes of every batch applied since that base was built; a [`View`] is what spreading
//! reads.
//!
//! Every changed node has an entry giving its current list in one of two forms:
//! - *appended* (what edge inserts make): the base list stays where it is and the entry holds only
//!   what was added since — a source's new edges, which follow its base list; a destination's new
//!   in-edges per source tier, sorted by source, which merge with the base in-list (base entries
//!   first among equal sources). An insert never reads the base lists, so it costs no cache misses
//!   on the graph, only its own entries.
//! - *complete* (what reweights, removals and tier moves make): the whole current list.
//!
//! Either way the order of contributions to a node — the one thing bit-identical results depend
//! on — is exactly that of a graph built from scratch from the current edge list: tier, then source
//! id, then the edge's place in its source's list. Invariant: a source without an entry has its base
//! out-list; a destination without one has its base in-lists. A batch that appends to u's list,
//! reweights or removes u→v, or moves u to another tier, rewrites the entries of exactly the
//! destinations it touched.
//!
//! Storage: each batch writes the entries it changed into one [`Arena`] of its own; the changed
//! nodes map to [`Loc`]s (arena, start, length) in two sorted arrays, which a batch merges its
//! changes into. A version shares every earlier arena with the version before it, so a batch costs
//! its own entries plus one merge of the two arrays — no per-list allocation, no reference counts
//! per node. Compaction ([`compact`]) folds the changes into a fresh base by copying runs of the
//! old arrays.

mod apply;
mod compact;
mod map;

use std::sync::Arc;

use super::{Csr, Graph, Tier};
use crate::error::Result;
use crate::prefetch::{Stage, prefetch};
use map::{Cursor, Entries, NodeMap};

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

/// The lists one batch wrote, back to back: out-lists, and in-lists (three tiers each, in a row).
#[derive(Debug, Default)]
pub(crate) struct Arena {
    nodes: Vec<u32>,
    weights: Vec<f32>,
}

impl Arena {
    fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// Where a changed source's out-list lives: an arena of the version, a start and a length.
/// `appended`: the entries follow the base list; otherwise they are the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    arena: u32,
    len: u32,
    start: u32,
    appended: bool,
}

/// Where a touched destination's in-lists live: one run in an arena, `lens[t]` entries for each
/// source tier in turn. `appended`: the entries merge with the base in-lists; otherwise they are
/// the whole lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InLoc {
    arena: u32,
    lens: [u32; 3],
    start: u32,
    appended: bool,
}

/// Ids and weights, in order.
pub(crate) type List<'a> = (&'a [u32], &'a [f32]);

const NO_EDGES: List<'static> = (&[], &[]);

/// A node's out-edges: `head` then `tail` (the base list and what was appended since, or a whole
/// list written by a batch and nothing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutEdges<'a> {
    pub(crate) head: List<'a>,
    pub(crate) tail: List<'a>,
}

impl<'a> OutEdges<'a> {
    /// The out-degree.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.head.0.len() + self.tail.0.len()
    }

    /// The two runs, in order.
    #[inline]
    pub(crate) fn parts(&self) -> [List<'a>; 2] {
        [self.head, self.tail]
    }

    /// Whether an edge to `v` is among them.
    pub(crate) fn contains(&self, v: u32) -> bool {
        self.head.0.contains(&v) || self.tail.0.contains(&v)
    }
}

/// A destination's in-edges from one source tier: `base` merged with `added` (both sorted by
/// source; `base` first among equal sources) — the base graph's list and what was added since, or
/// a whole list written by a batch and nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InEdges<'a> {
    pub(crate) base: List<'a>,
    pub(crate) added: List<'a>,
}

impl InEdges<'_> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.base.0.len() + self.added.0.len()
    }

    /// Visit every in-edge `(source, weight)` in the canonical order.
    #[inline]
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32, f32)) {
        let ((bn, bw), (an, aw)) = (self.base, self.added);
        if an.is_empty() {
            for (&u, &w) in bn.iter().zip(bw) {
                f(u, w);
            }
            return;
        }
        let mut i = 0;
        for (&source, &weight) in an.iter().zip(aw) {
            while i < bn.len() && bn[i] <= source {
                f(bn[i], bw[i]);
                i += 1;
            }
            f(source, weight);
        }
        for (&u, &w) in bn[i..].iter().zip(&bw[i..]) {
            f(u, w);
        }
    }
}

/// An added node's embedding and its norm.
pub(crate) type AddedEmbedding = (Arc<[f32]>, f32);

/// The changes of a version relative to its base.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    /// The lists of every batch since the base, by batch.
    arenas: Vec<Arc<Arena>>,
    /// Changed sources: where their complete out-lists are.
    out: NodeMap<Loc>,
    /// Touched destinations: where their complete in-lists are.
    ins: NodeMap<InLoc>,
    /// Every node's tier, when a batch changed one or added nodes (else the base's).
    tiers: Option<Arc<Vec<Tier>>>,
    /// Labels of the nodes added since the base (index: id − base node count).
    added_labels: Arc<Vec<Option<Arc<str>>>>,
    /// Embeddings of the nodes added since the base, with their norms.
    added_embeddings: Arc<Vec<Option<AddedEmbedding>>>,
    /// Whether any tier may have in-edges that only the changes hold.
    tier_has_ins: [bool; 3],
    /// Edge changes since the base (added, removed, reweighted, moved between tiers): the
    /// compaction trigger's measure, `spreading_graph_delta_edges`.
    pending_edges: u64,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.out.is_empty()
            && self.ins.is_empty()
            && self.tiers.is_none()
            && self.added_labels.is_empty()
            && self.pending_edges == 0
    }

    #[inline]
    fn out_list(&self, loc: Loc) -> List<'_> {
        let arena = &self.arenas[loc.arena as usize];
        let range = loc.start as usize..loc.start as usize + loc.len as usize;
        (&arena.nodes[range.clone()], &arena.weights[range])
    }

    #[inline]
    fn in_list(&self, loc: InLoc, tier: Tier) -> List<'_> {
        let arena = &self.arenas[loc.arena as usize];
        let t = tier.index();
        let start = loc.start as usize + loc.lens[..t].iter().map(|&l| l as usize).sum::<usize>();
        let range = start..start + loc.lens[t] as usize;
        (&arena.nodes[range.clone()], &arena.weights[range])
    }
}

/// One version of an engine's graph: a base, the changes on top of it, and its number.
#[derive(Debug)]
pub struct GraphVersion {
    version: u64,
    /// Shared by every version descended by changes and compactions from one `fresh` version (what
    /// an engine's embedding index is built for).
    lineage: u64,
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
        static LINEAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        GraphVersion {
            version,
            lineage: LINEAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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

    /// The lineage this version belongs to: the same for every version reached from one graph by
    /// changes and compactions, different after a replacement.
    pub fn lineage(&self) -> u64 {
        self.lineage
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

    /// What compaction would fold: the pending edge changes plus the nodes added since the base.
    pub fn pending_changes(&self) -> u64 {
        self.delta_edges() + (self.node_count - self.base.node_count) as u64
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
        let out = self.view().out(node as usize);
        out.parts()
            .iter()
            .flat_map(|(nodes, weights)| nodes.iter().copied().zip(weights.iter().copied()))
            .collect()
    }

    /// Apply `batch` as version `version`: validated whole first, then applied; an error names the
    /// entry and nothing changes.
    pub fn apply(&self, batch: &Batch, version: u64) -> Result<GraphVersion> {
        apply::apply(self, batch, version)
    }

    /// The graph this version is, built afresh by copying the base's arrays around the changes (a
    /// compaction, or what a snapshot of an engine saves). Every array is reserved fallibly.
    pub fn materialize(&self) -> Result<Graph> {
        compact::materialize(self)
    }

    /// This version on `base`, a materialization of `start` — an earlier version of the same base:
    /// the same graph, with only the changes made since `start` still pending.
    pub fn rebase(&self, start: &GraphVersion, base: Arc<Graph>) -> GraphVersion {
        compact::rebase(self, start, base, None)
    }

    /// [`GraphVersion::rebase`] given `earlier` (between `start` and this version) already rebased
    /// as `rebased` onto the same `base`: moves only what was written since `earlier` (the node
    /// maps are walked once).
    pub fn rebase_after(
        &self,
        start: &GraphVersion,
        base: Arc<Graph>,
        earlier: &GraphVersion,
        rebased: &GraphVersion,
    ) -> GraphVersion {
        compact::rebase(self, start, base, Some((earlier, rebased)))
    }

    /// How many batch arenas the changes hold.
    fn arena_count(&self) -> u32 {
        self.delta.as_ref().map_or(0, |d| d.arenas.len() as u32)
    }
}

/// A graph as spreading reads it: a base and, optionally, changes on top.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub(crate) base: &'a Graph,
    delta: Option<&'a Delta>,
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

    /// Out-edges of `u`, in insertion order.
    #[inline(always)]
    pub(crate) fn out(&self, u: usize) -> OutEdges<'a> {
        match self.delta.and_then(|d| Some((d, d.out.get(u as u32)?))) {
            Some((delta, loc)) => self.out_at(delta, u, loc),
            None => OutEdges { head: self.base_out(u), tail: NO_EDGES },
        }
    }

    /// Out-edges of `u`, whose entry is `loc`.
    #[inline]
    fn out_at(&self, delta: &'a Delta, u: usize, loc: Loc) -> OutEdges<'a> {
        let list = delta.out_list(loc);
        match loc.appended {
            true => OutEdges { head: self.base_out(u), tail: list },
            false => OutEdges { head: list, tail: NO_EDGES },
        }
    }

    /// In-edges of `v` from `tier`, whose entry is `loc`.
    #[inline]
    fn in_at(&self, delta: &'a Delta, v: usize, loc: InLoc, tier: Tier) -> InEdges<'a> {
        let list = delta.in_list(loc, tier);
        match loc.appended {
            true => InEdges { base: self.base_in(v, tier), added: list },
            false => InEdges { base: list, added: NO_EDGES },
        }
    }

    /// `u`'s out-edges in the base (none for a node added since).
    #[inline]
    fn base_out(&self, u: usize) -> List<'a> {
        if u < self.base.node_count() {
            let range = self.base.forward.range(u);
            (&self.base.forward.neighbours[range.clone()], &self.base.forward.weights[range])
        } else {
            NO_EDGES
        }
    }

    /// `v`'s in-edges from `tier` in the base (none for a node added since).
    #[inline]
    fn base_in(&self, v: usize, tier: Tier) -> List<'a> {
        let csr = &self.base.reverse[tier.index()];
        if v < self.base.node_count() && !csr.offsets.is_empty() {
            let range = csr.range(v);
            (&csr.neighbours[range.clone()], &csr.weights[range])
        } else {
            NO_EDGES
        }
    }

    /// Prefetch the part `stage` of `u`'s base out-list.
    #[inline]
    fn prefetch_base_out(&self, u: usize, stage: Stage) {
        let forward = &self.base.forward;
        match stage {
            Stage::Offsets => prefetch(&forward.offsets, u),
            Stage::Entries => {
                if let Some(&at) = forward.offsets.get(u) {
                    prefetch(&forward.neighbours, at as usize);
                    prefetch(&forward.weights, at as usize);
                }
            }
        }
    }

    /// Prefetch the part `stage` of `v`'s base in-lists (every tier that has in-edges).
    #[inline]
    fn prefetch_base_in(&self, v: usize, stage: Stage) {
        for csr in &self.base.reverse {
            if csr.neighbours.is_empty() {
                continue;
            }
            match stage {
                Stage::Offsets => prefetch(&csr.offsets, v),
                Stage::Entries => {
                    if let Some(&at) = csr.offsets.get(v) {
                        prefetch(&csr.neighbours, at as usize);
                        prefetch(&csr.weights, at as usize);
                    }
                }
            }
        }
    }

    /// Out-degree of `u` (every out-edge counts).
    #[inline]
    pub(crate) fn out_degree(&self, u: usize) -> usize {
        self.out(u).len()
    }

    /// Changed sources with ids in `lo..hi` and their entries, in id order (see
    /// [`View::changed_degree`]).
    #[inline]
    pub(crate) fn changed_sources(&self, lo: usize, hi: usize) -> Option<Entries<'a, Loc>> {
        self.delta.map(|d| d.out.range(lo as u32, hi as u32))
    }

    /// Out-degree of a changed source `u` whose entry is `loc`.
    #[inline]
    pub(crate) fn changed_degree(&self, u: usize, loc: &Loc) -> usize {
        loc.len as usize + if loc.appended { self.base_out_degree(u) } else { 0 }
    }

    /// Out-degree of `u` in the base, for a pass that walks [`View::changed_sources`] in step.
    #[inline]
    pub(crate) fn base_out_degree(&self, u: usize) -> usize {
        if u < self.base.node_count() { self.base.forward.range(u).len() } else { 0 }
    }

    /// Whether any node may have in-edges from sources of `tier`.
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
        let gather_base = |from: usize, to: usize, next: &mut [f32]| {
            let to = to.min(base_n);
            if !csr.neighbours.is_empty() && from < to {
                gather_csr(csr, send, from, &mut next[from - first..to - first]);
            }
        };
        let Some(delta) = self.delta.filter(|d| !d.ins.is_empty()) else {
            gather_base(first, first + next.len(), next);
            return;
        };
        let mut start = first;
        for (key, loc) in delta.ins.range(first as u32, (first + next.len()) as u32) {
            let v = key as usize;
            // Unchanged destinations before `v` read the base.
            gather_base(start, v, next);
            let mut acc = next[v - first];
            self.in_at(delta, v, loc, tier).for_each(|u, w| acc += send[u as usize] * w);
            next[v - first] = acc;
            start = v + 1;
        }
        gather_base(start, first + next.len(), next);
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
