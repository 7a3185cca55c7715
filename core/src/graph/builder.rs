//! [`GraphBuilder`]: validates input as it arrives, then builds the CSRs with counting sorts (O(n + m)).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{Csr, Embeddings, Graph, Tier};
use crate::error::{Error, Result};

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
            tiers: vec![Tier::Hot; node_count as usize],
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
        self.tiers[node as usize] = tier;
        Ok(())
    }

    /// Set the label of `node`.
    pub fn set_label(&mut self, node: u32, label: impl Into<String>) -> Result<()> {
        self.check_node(node, "set_label")?;
        let node_count = self.node_count as usize;
        let labels = self.labels.get_or_insert_with(|| vec![None; node_count]);
        labels[node as usize] = Some(label.into().into_boxed_str());
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

    /// Freeze into an immutable [`Graph`].
    pub fn build(self) -> Result<Graph> {
        let n = self.node_count as usize;
        let forward = build_forward(n, &self.src, &self.dst, &self.weight);
        let reverse = Tier::ALL.map(|tier| build_reverse(n, &forward, &self.tiers, tier));
        let mut tier_counts = [0u32; 3];
        for tier in &self.tiers {
            tier_counts[tier.index()] += 1;
        }
        let embeddings = self.embedding_dim.map(|dim| {
            let mut values = vec![0.0f32; n * dim];
            let mut norms = vec![0.0f32; n];
            for (node, row) in &self.embeddings {
                let v = *node as usize;
                values[v * dim..(v + 1) * dim].copy_from_slice(row);
                norms[v] = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            }
            Embeddings { dim, values, norms }
        });
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Graph {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            node_count: self.node_count,
            forward,
            reverse,
            tiers: self.tiers,
            tier_counts,
            labels: self.labels,
            embeddings,
            label_index: OnceLock::new(),
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
            return Err(Error::InvalidWeight { index, weight });
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

/// Counting sort by source; stable, so each node's out-edges keep insertion order.
fn build_forward(n: usize, src: &[u32], dst: &[u32], weight: &[f32]) -> Csr {
    let mut offsets = vec![0u32; n + 1];
    for &s in src {
        offsets[s as usize + 1] += 1;
    }
    for v in 0..n {
        offsets[v + 1] += offsets[v];
    }
    let mut cursor = offsets[..n].to_vec();
    let mut neighbours = vec![0u32; src.len()];
    let mut weights = vec![0f32; src.len()];
    for ((&s, &d), &w) in src.iter().zip(dst).zip(weight) {
        let slot = &mut cursor[s as usize];
        neighbours[*slot as usize] = d;
        weights[*slot as usize] = w;
        *slot += 1;
    }
    Csr { offsets, neighbours, weights }
}

/// In-edges from sources of `tier`, grouped by destination. Walking the forward CSR in source order
/// and placing stably keeps each destination's in-edges sorted by (source, insertion order).
fn build_reverse(n: usize, forward: &Csr, tiers: &[Tier], tier: Tier) -> Csr {
    let sources = (0..n).filter(|&u| tiers[u] == tier);
    let mut offsets = vec![0u32; n + 1];
    let mut count = 0usize;
    for u in sources.clone() {
        for &d in &forward.neighbours[forward.range(u)] {
            offsets[d as usize + 1] += 1;
            count += 1;
        }
    }
    if count == 0 {
        return Csr { offsets: Vec::new(), neighbours: Vec::new(), weights: Vec::new() };
    }
    for v in 0..n {
        offsets[v + 1] += offsets[v];
    }
    let mut cursor = offsets[..n].to_vec();
    let mut neighbours = vec![0u32; count];
    let mut weights = vec![0f32; count];
    for u in sources {
        let range = forward.range(u);
        for (&d, &w) in forward.neighbours[range.clone()].iter().zip(&forward.weights[range]) {
            let slot = &mut cursor[d as usize];
            neighbours[*slot as usize] = u as u32;
            weights[*slot as usize] = w;
            *slot += 1;
        }
    }
    Csr { offsets, neighbours, weights }
}
