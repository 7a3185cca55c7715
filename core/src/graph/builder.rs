//! [`GraphBuilder`]: validates input as it arrives, then builds the CSRs with counting sorts (O(n + m)).
//!
//! Nothing proportional to the node count is allocated before it is needed, and every such
//! allocation is fallible: a node count the machine cannot hold is an error naming it and the bytes
//! it needs (docs/spec.md §2), never an abort.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{Csr, Embeddings, Graph, Labels, Tier};
use crate::error::{Error, Result};
use crate::memory;

/// Collects nodes and edges, validating each as it arrives; [`GraphBuilder::build`] freezes them.
///
/// Every method validates its whole input before changing anything, so a rejected call loses nothing
/// that was added before it.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    node_count: u32,
    src: Vec<u32>,
    dst: Vec<u32>,
    weight: Vec<f32>,
    /// Empty until a tier is set (then one per node): a builder costs nothing per node up front.
    tiers: Vec<Tier>,
    labels: Option<Vec<Option<Box<str>>>>,
    embedding_dim: Option<usize>,
    embeddings: HashMap<u32, Vec<f32>>,
}

impl GraphBuilder {
    /// A builder for a graph with `node_count` nodes (ids `0..node_count`), all `hot`.
    pub fn new(node_count: u32) -> Self {
        GraphBuilder {
            node_count,
            src: Vec::new(),
            dst: Vec::new(),
            weight: Vec::new(),
            tiers: Vec::new(),
            labels: None,
            embedding_dim: None,
            embeddings: HashMap::new(),
        }
    }

    /// Number of nodes the graph will have.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// Number of edges added so far.
    pub fn edge_count(&self) -> usize {
        self.src.len()
    }

    /// Reserve room for `additional` more edges.
    pub fn reserve_edges(&mut self, additional: usize) {
        self.src.reserve(additional);
        self.dst.reserve(additional);
        self.weight.reserve(additional);
    }

    /// Add one edge; errors name its index among all edges added to this builder.
    pub fn add_edge(&mut self, src: u32, dst: u32, weight: f32) -> Result<()> {
        if self.src.len() >= u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "edge count",
                count: self.src.len() + 1,
                limit: u32::MAX as usize,
            });
        }
        self.check_edge(self.src.len(), src, dst, weight)?;
        self.src.push(src);
        self.dst.push(dst);
        self.weight.push(weight);
        Ok(())
    }

    /// Add edges from parallel arrays; nothing is added unless every edge is valid.
    pub fn add_edges(&mut self, src: &[u32], dst: &[u32], weight: &[f32]) -> Result<()> {
        if src.len() != dst.len() || src.len() != weight.len() {
            return Err(Error::EdgeArrayLengths { src: src.len(), dst: dst.len(), weight: weight.len() });
        }
        let base = self.src.len();
        if base + src.len() > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "edge count",
                count: base + src.len(),
                limit: u32::MAX as usize,
            });
        }
        for (i, ((&s, &d), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
            self.check_edge(base + i, s, d, w)?;
        }
        self.src.extend_from_slice(src);
        self.dst.extend_from_slice(dst);
        self.weight.extend_from_slice(weight);
        Ok(())
    }

    /// Set the tier of `node`.
    pub fn set_tier(&mut self, node: u32, tier: Tier) -> Result<()> {
        self.check_node(node, "set_tier")?;
        if self.tiers.is_empty() {
            let n = self.node_count as usize;
            self.tiers = memory::filled(n, Tier::Hot, || format!("the tiers of {n} nodes"))?;
        }
        self.tiers[node as usize] = tier;
        Ok(())
    }

    /// Set the label of `node`.
    pub fn set_label(&mut self, node: u32, label: impl Into<String>) -> Result<()> {
        self.check_node(node, "set_label")?;
        if self.labels.is_none() {
            let n = self.node_count as usize;
            self.labels = Some(memory::filled(n, None, || format!("the labels of {n} nodes"))?);
        }
        if let Some(labels) = &mut self.labels {
            labels[node as usize] = Some(label.into().into_boxed_str());
        }
        Ok(())
    }

    /// Set the embedding of `node`; every embedding of a graph must have the same dimension.
    pub fn set_embedding(&mut self, node: u32, embedding: &[f32]) -> Result<()> {
        self.check_node(node, "set_embedding")?;
        if embedding.is_empty() {
            return Err(Error::InvalidEmbedding { node, problem: "is empty".into() });
        }
        if let Some(i) = embedding.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidEmbedding {
                node,
                problem: format!("value {} at index {i} is not finite", embedding[i]),
            });
        }
        match self.embedding_dim {
            Some(expected) if expected != embedding.len() => {
                return Err(Error::EmbeddingDimension { node, expected, found: embedding.len() });
            }
            _ => self.embedding_dim = Some(embedding.len()),
        }
        self.embeddings.insert(node, embedding.to_vec());
        Ok(())
    }

    /// Bytes [`GraphBuilder::build`] allocates: forward and reverse CSRs (with their cursors),
    /// tiers and the embedding matrix.
    pub fn build_bytes(&self) -> usize {
        let (n, m) = (self.node_count as usize, self.src.len());
        let per_node = 4 * 4 + 4 + 1 + self.embedding_dim.map_or(0, |dim| 4 * (dim + 1));
        n.saturating_add(1).saturating_mul(per_node).saturating_add(m.saturating_mul(16))
    }

    /// Freeze into an immutable [`Graph`]. A graph the machine cannot hold is an error naming its
    /// node and edge counts and the bytes it needs.
    pub fn build(mut self) -> Result<Graph> {
        let n = self.node_count as usize;
        let m = self.src.len();
        memory::check_available(|| format!("a graph of {n} nodes and {m} edges"), self.build_bytes())?;
        let forward = build_forward(n, &self.src, &self.dst, &self.weight)?;
        // The edge lists are in the CSR now; free them before the reverse CSRs need room.
        (self.src, self.dst, self.weight) = (Vec::new(), Vec::new(), Vec::new());
        if self.tiers.is_empty() {
            self.tiers = memory::filled(n, Tier::Hot, || format!("the tiers of {n} nodes"))?;
        }
        let mut reverse: [Csr; 3] = Default::default();
        for tier in Tier::ALL {
            reverse[tier.index()] = build_reverse(n, &forward, &self.tiers, tier)?;
        }
        let mut tier_counts = [0u32; 3];
        for tier in &self.tiers {
            tier_counts[tier.index()] += 1;
        }
        let embeddings = match self.embedding_dim {
            None => None,
            Some(dim) => {
                let what = || format!("the embeddings of {n} nodes (dimension {dim})");
                let mut values = memory::filled(n.saturating_mul(dim), 0.0f32, what)?;
                let mut norms = memory::filled(n, 0.0f32, || format!("the embedding norms of {n} nodes"))?;
                for (node, row) in &self.embeddings {
                    let v = *node as usize;
                    values[v * dim..(v + 1) * dim].copy_from_slice(row);
                    norms[v] = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                }
                Some(Embeddings { dim, values: values.into(), norms: norms.into() })
            }
        };
        let labels = match &self.labels {
            Some(labels) => Some(Labels::pack(n, labels.iter().map(|l| l.as_deref()))?),
            None => None,
        };
        Ok(Graph {
            id: Graph::next_id(),
            node_count: self.node_count,
            forward,
            reverse,
            tiers: self.tiers,
            tier_counts,
            labels,
            embeddings,
            origin_version: 0,
            label_index: OnceLock::new(),
            index_image: None,
            embedded: OnceLock::new(),
        })
    }

    fn check_edge(&self, index: usize, src: u32, dst: u32, weight: f32) -> Result<()> {
        let node_count = self.node_count;
        if src >= node_count {
            return Err(Error::EdgeNodeOutOfRange { index, end: "source", node: src, node_count });
        }
        if dst >= node_count {
            return Err(Error::EdgeNodeOutOfRange { index, end: "target", node: dst, node_count });
        }
        if !(weight.is_finite() && weight > 0.0 && weight <= 1.0) {
            return Err(Error::InvalidWeight { index, weight: weight.to_string() });
        }
        Ok(())
    }

    fn check_node(&self, node: u32, what: &'static str) -> Result<()> {
        if node < self.node_count {
            Ok(())
        } else {
            Err(Error::NodeOutOfRange { what, node, node_count: self.node_count })
        }
    }
}

/// Weights given in double precision (a host language's floats) as the `f32` the graph stores,
/// each checked in the precision it was given: `1e-50` is reported as `1e-50`, not as the `0` it
/// would round to. `first_index` numbers the edges in errors.
pub fn weights_from_f64(weights: &[f64], first_index: usize) -> Result<Vec<f32>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let narrow = w as f32;
            if w.is_finite() && w > 0.0 && w <= 1.0 && narrow > 0.0 {
                Ok(narrow.min(1.0))
            } else {
                let weight =
                    if w > 0.0 && w <= 1.0 { format!("{w:e} (0 as a 32-bit float)") } else { w.to_string() };
                Err(Error::InvalidWeight { index: first_index + i, weight })
            }
        })
        .collect()
}

/// Counting sort by source; stable, so each node's out-edges keep insertion order.
fn build_forward(n: usize, src: &[u32], dst: &[u32], weight: &[f32]) -> Result<Csr> {
    let mut offsets = memory::filled(n + 1, 0u32, || format!("the out-edge offsets of {n} nodes"))?;
    for &s in src {
        offsets[s as usize + 1] += 1;
    }
    for v in 0..n {
        offsets[v + 1] += offsets[v];
    }
    let mut cursor = memory::filled(n, 0u32, || format!("the build cursor of {n} nodes"))?;
    cursor.copy_from_slice(&offsets[..n]);
    let m = src.len();
    let mut neighbours = memory::filled(m, 0u32, || format!("the out-edges of {m} edges"))?;
    let mut weights = memory::filled(m, 0f32, || format!("the out-edge weights of {m} edges"))?;
    for ((&s, &d), &w) in src.iter().zip(dst).zip(weight) {
        let slot = &mut cursor[s as usize];
        neighbours[*slot as usize] = d;
        weights[*slot as usize] = w;
        *slot += 1;
    }
    Ok(Csr { offsets: offsets.into(), neighbours: neighbours.into(), weights: weights.into() })
}

/// In-edges from sources of `tier`, grouped by destination. Walking the forward CSR in source order
/// and placing stably keeps each destination's in-edges sorted by (source, insertion order).
pub(crate) fn build_reverse(n: usize, forward: &Csr, tiers: &[Tier], tier: Tier) -> Result<Csr> {
    let sources = (0..n).filter(|&u| tiers[u] == tier);
    let count: usize = sources.clone().map(|u| forward.range(u).len()).sum();
    if count == 0 {
        return Ok(Csr::default());
    }
    let mut offsets = memory::filled(n + 1, 0u32, || format!("the in-edge offsets of {n} nodes"))?;
    for u in sources.clone() {
        for &d in &forward.neighbours[forward.range(u)] {
            offsets[d as usize + 1] += 1;
        }
    }
    for v in 0..n {
        offsets[v + 1] += offsets[v];
    }
    let mut cursor = memory::filled(n, 0u32, || format!("the build cursor of {n} nodes"))?;
    cursor.copy_from_slice(&offsets[..n]);
    let mut neighbours = memory::filled(count, 0u32, || format!("the in-edges of {count} edges"))?;
    let mut weights = memory::filled(count, 0f32, || format!("the in-edge weights of {count} edges"))?;
    for u in sources {
        let range = forward.range(u);
        for (&d, &w) in forward.neighbours[range.clone()].iter().zip(&forward.weights[range]) {
            let slot = &mut cursor[d as usize];
            neighbours[*slot as usize] = u as u32;
            weights[*slot as usize] = w;
            *slot += 1;
        }
    }
    Ok(Csr { offsets: offsets.into(), neighbours: neighbours.into(), weights: weights.into() })
}
