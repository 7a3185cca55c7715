//! The immutable graph (docs/spec.md §2): forward CSR for push steps, per-source-tier reverse CSRs
//! for pull steps, tiers, labels and embeddings. Built once by [`GraphBuilder`] or loaded from a
//! snapshot ([`snapshot`]), then shared by `Arc`; an engine's graph changes through versions of it
//! with pending changes on top ([`live`]).

mod array;
mod builder;
mod labels;
mod live;
mod snapshot;
mod tsv;

pub(crate) use array::Array;
pub use builder::{GraphBuilder, weights_from_f64};
pub(crate) use labels::Labels;
pub use live::{Batch, GraphVersion, View};
pub(crate) use snapshot::SavedIndex;
pub use snapshot::{FORMAT_VERSION as SNAPSHOT_FORMAT_VERSION, SaveStats};

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Where the host keeps a memory; spreading processes tiers in this order at each depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Tier {
    /// Fast storage (default).
    #[default]
    Hot = 0,
    /// Medium storage.
    Warm = 1,
    /// Slow storage.
    Cold = 2,
}

impl Tier {
    /// All tiers in processing order.
    pub const ALL: [Tier; 3] = [Tier::Hot, Tier::Warm, Tier::Cold];

    /// The lowercase name used in JSON and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }

    /// The tier for a C/Python integer (0 hot, 1 warm, 2 cold).
    pub fn from_index(value: u32) -> Option<Tier> {
        match value {
            0 => Some(Tier::Hot),
            1 => Some(Tier::Warm),
            2 => Some(Tier::Cold),
            _ => None,
        }
    }

    /// The tier for a name (`hot`, `warm`, `cold`) or digit (`0`, `1`, `2`).
    pub fn parse(text: &str) -> Option<Tier> {
        match text {
            "hot" | "0" => Some(Tier::Hot),
            "warm" | "1" => Some(Tier::Warm),
            "cold" | "2" => Some(Tier::Cold),
            _ => None,
        }
    }

    /// 0, 1 or 2.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Compressed sparse rows: `neighbours[offsets[v]..offsets[v+1]]` with parallel `weights`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csr {
    pub(crate) offsets: Array<u32>,
    pub(crate) neighbours: Array<u32>,
    pub(crate) weights: Array<f32>,
}

impl Csr {
    #[inline]
    pub(crate) fn range(&self, v: usize) -> std::ops::Range<usize> {
        self.offsets[v] as usize..self.offsets[v + 1] as usize
    }

    fn bytes(&self) -> usize {
        self.offsets.bytes() + self.neighbours.bytes() + self.weights.bytes()
    }
}

/// A read-only view of one CSR: the edges of node `v` are `neighbours[offsets[v]..offsets[v + 1]]`
/// with parallel `weights`. An empty `offsets` means no edges at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CsrView<'a> {
    /// `node_count + 1` offsets (or empty).
    pub offsets: &'a [u32],
    /// Neighbour ids.
    pub neighbours: &'a [u32],
    /// Weights.
    pub weights: &'a [f32],
}

/// Node embeddings: one dimension, stored row-major with precomputed norms (0 = no embedding).
#[derive(Debug, Clone)]
pub(crate) struct Embeddings {
    pub(crate) dim: usize,
    pub(crate) values: Array<f32>,
    pub(crate) norms: Array<f32>,
}

impl Embeddings {
    #[inline]
    pub(crate) fn row(&self, v: usize) -> &[f32] {
        &self.values[v * self.dim..(v + 1) * self.dim]
    }
}

/// An immutable weighted directed graph of memories.
///
/// Thread-safe (`Send + Sync`); share it with `Arc` and swap it into a running engine with
/// [`crate::Engine::replace_graph`].
#[derive(Debug)]
pub struct Graph {
    /// Unique per built graph (device-resident copies are keyed by it).
    pub(crate) id: u64,
    pub(crate) node_count: u32,
    pub(crate) forward: Csr,
    /// `reverse[t]` holds, for every destination, the in-edges whose *source* is in tier `t`, sorted by
    /// source id then insertion order — the canonical summation order shared by push and pull steps.
    pub(crate) reverse: [Csr; 3],
    pub(crate) tiers: Vec<Tier>,
    pub(crate) tier_counts: [u32; 3],
    pub(crate) labels: Option<Labels>,
    pub(crate) embeddings: Option<Embeddings>,
    /// The graph version it was saved at (0 for a graph built from input): an engine started from
    /// a snapshot continues the numbering.
    pub(crate) origin_version: u64,
    pub(crate) label_index: OnceLock<HashMap<Box<str>, u32>>,
    /// The embedding index saved with it, when it was loaded from a snapshot that has one.
    pub(crate) index_image: Option<snapshot::IndexImage>,
    /// Nodes with an embedding, counted once when first asked.
    pub(crate) embedded: OnceLock<usize>,
}

impl Graph {
    /// A process-unique id of this graph.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of nodes; ids are `0..node_count`.
    pub fn node_count(&self) -> usize {
        self.node_count as usize
    }

    /// Number of edges, parallel edges and self-loops included.
    pub fn edge_count(&self) -> usize {
        self.forward.neighbours.len()
    }

    /// Out-degree of `node` (every out-edge counts).
    pub fn out_degree(&self, node: u32) -> usize {
        self.forward.range(node as usize).len()
    }

    /// Out-edges of `node` as `(dst, weight)` in insertion order.
    pub fn out_edges(&self, node: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        let range = self.forward.range(node as usize);
        self.forward.neighbours[range.clone()]
            .iter()
            .copied()
            .zip(self.forward.weights[range].iter().copied())
    }

    /// The forward CSR (out-edges by source, insertion order).
    pub fn out_csr(&self) -> CsrView<'_> {
        view(&self.forward)
    }

    /// The reverse CSR of in-edges whose source is in `tier`, by destination, sorted by source id.
    pub fn in_csr_from(&self, tier: Tier) -> CsrView<'_> {
        view(&self.reverse[tier.index()])
    }

    /// Tier of `node`; `None` if the node does not exist.
    pub fn tier(&self, node: u32) -> Option<Tier> {
        self.tiers.get(node as usize).copied()
    }

    /// Number of nodes in each tier (hot, warm, cold).
    pub fn tier_counts(&self) -> [u32; 3] {
        self.tier_counts
    }

    /// Label of `node`, if it has one.
    pub fn label(&self, node: u32) -> Option<&str> {
        self.labels.as_ref()?.get(node as usize)
    }

    /// The graph version this graph was saved at (0 unless it was loaded from an engine's snapshot).
    pub fn origin_version(&self) -> u64 {
        self.origin_version
    }

    /// Whether any node has a label.
    pub fn has_labels(&self) -> bool {
        self.labels.is_some()
    }

    /// The node carrying exactly this label (the lowest id when several do).
    pub fn find(&self, label: &str) -> Option<u32> {
        let labels = self.labels.as_ref()?;
        let index = self.label_index.get_or_init(|| {
            let mut index = HashMap::new();
            for node in 0..self.node_count as usize {
                if let Some(label) = labels.get(node) {
                    index.entry(Box::from(label)).or_insert(node as u32);
                }
            }
            index
        });
        index.get(label).copied()
    }

    /// Embedding dimension, if the graph has embeddings.
    pub fn embedding_dim(&self) -> Option<usize> {
        self.embeddings.as_ref().map(|e| e.dim)
    }

    /// Embedding of `node`, if it has one.
    pub fn embedding(&self, node: u32) -> Option<&[f32]> {
        let embeddings = self.embeddings.as_ref()?;
        (embeddings.norms.get(node as usize)? > &0.0).then(|| embeddings.row(node as usize))
    }

    /// Bytes held by the graph's arrays (CSR, reverse CSRs, tiers, labels, embeddings), in memory
    /// or mapped from a snapshot.
    pub fn memory_bytes(&self) -> usize {
        let labels = self.labels.as_ref().map_or(0, Labels::bytes);
        let embeddings = self.embeddings.as_ref().map_or(0, |e| e.values.bytes() + e.norms.bytes());
        self.forward.bytes()
            + self.reverse.iter().map(Csr::bytes).sum::<usize>()
            + self.tiers.capacity()
            + labels
            + embeddings
    }

    /// Load a graph from a TSV edge list (`src<TAB>dst<TAB>weight`, `#` comments) and an optional node
    /// file (`id<TAB>tier<TAB>label`). Errors name the file and line.
    pub fn from_tsv(
        edges_path: impl AsRef<std::path::Path>,
        nodes_path: Option<&std::path::Path>,
    ) -> Result<Graph> {
        tsv::load(edges_path.as_ref(), nodes_path)
    }

    /// Build a graph from parallel edge arrays with `node_count` nodes, all hot.
    pub fn from_edges(node_count: u32, src: &[u32], dst: &[u32], weight: &[f32]) -> Result<Graph> {
        let mut builder = GraphBuilder::new(node_count);
        builder.add_edges(src, dst, weight)?;
        builder.build()
    }

    /// Save to `path` in the snapshot format (docs/spec.md §17): written to a temporary file beside
    /// it, synced and renamed over it, so a crash leaves the old file or the new one.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<snapshot::SaveStats> {
        snapshot::save(self, self.origin_version, None, path.as_ref())
    }

    /// Save as graph version `version` (an engine's current version of this base).
    pub(crate) fn save_as(
        &self,
        version: u64,
        index: Option<&snapshot::SavedIndex>,
        path: &std::path::Path,
    ) -> Result<snapshot::SaveStats> {
        snapshot::save(self, version, index, path)
    }

    /// Nodes with an embedding.
    pub fn embedded_count(&self) -> usize {
        *self.embedded.get_or_init(|| {
            self.embeddings.as_ref().map_or(0, |e| e.norms.iter().filter(|&&norm| norm > 0.0).count())
        })
    }

    /// Load a snapshot written by [`Graph::save`]: the file is mapped, its arrays are used in place
    /// after their checksums and structure are verified; a bad file is an error naming what is wrong.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Graph> {
        snapshot::load(path.as_ref())
    }

    /// The view spreading reads: this graph with no pending changes.
    pub fn view(&self) -> View<'_> {
        View::of(self)
    }

    /// A fresh process-unique id for a new graph.
    pub(crate) fn next_id() -> u64 {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

fn view(csr: &Csr) -> CsrView<'_> {
    CsrView { offsets: &csr.offsets, neighbours: &csr.neighbours, weights: &csr.weights }
}
