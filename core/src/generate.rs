//! Synthetic graph generators for benchmarks, demos and tests: uniform random, Barabási–Albert
//! (power-law) and R-MAT. Deterministic for a given seed.

use crate::error::Result;
use crate::graph::{Graph, GraphBuilder};

/// Edges as parallel arrays, ready for [`GraphBuilder::add_edges`].
#[derive(Debug, Clone, Default)]
pub struct EdgeList {
    /// Number of nodes.
    pub node_count: u32,
    /// Sources.
    pub src: Vec<u32>,
    /// Targets.
    pub dst: Vec<u32>,
    /// Weights in (0, 1].
    pub weight: Vec<f32>,
}

impl EdgeList {
    /// Build an all-hot graph.
    pub fn build(&self) -> Result<Graph> {
        self.builder()?.build()
    }

    /// A builder holding these edges (set tiers, labels or embeddings before building).
    pub fn builder(&self) -> Result<GraphBuilder> {
        let mut builder = GraphBuilder::new(self.node_count);
        builder.add_edges(&self.src, &self.dst, &self.weight)?;
        Ok(builder)
    }

    /// The node with the most out-edges (lowest id on ties).
    pub fn hub(&self) -> u32 {
        let mut degree = vec![0u32; self.node_count as usize];
        for &s in &self.src {
            degree[s as usize] += 1;
        }
        (0..self.node_count).max_by_key(|&v| (degree[v as usize], std::cmp::Reverse(v))).unwrap_or(0)
    }

    fn push(&mut self, src: u32, dst: u32, weight: f32) {
        self.src.push(src);
        self.dst.push(dst);
        self.weight.push(weight);
    }
}

/// `m` edges between uniformly random endpoints, weights uniform in `[min_weight, 1]`.
pub fn uniform(node_count: u32, edge_count: usize, min_weight: f32, seed: u64) -> EdgeList {
    let mut rng = SplitMix64(seed);
    let mut edges = EdgeList { node_count, ..EdgeList::default() };
    edges.src.reserve(edge_count);
    edges.dst.reserve(edge_count);
    edges.weight.reserve(edge_count);
    for _ in 0..edge_count {
        let s = rng.below(node_count as u64) as u32;
        let d = rng.below(node_count as u64) as u32;
        edges.push(s, d, min_weight + (1.0 - min_weight) * rng.unit() as f32);
    }
    edges
}

/// Barabási–Albert preferential attachment: each new node links to `m` distinct existing nodes chosen
/// with probability proportional to degree; every link is added in both directions with `weight`.
pub fn barabasi_albert(node_count: u32, m: u32, weight: f32, seed: u64) -> EdgeList {
    let mut rng = SplitMix64(seed);
    let mut edges = EdgeList { node_count, ..EdgeList::default() };
    let m = m.clamp(1, node_count.saturating_sub(1).max(1));
    // Every endpoint of every link, so a uniform pick from it is a degree-proportional pick.
    let mut endpoints: Vec<u32> = Vec::with_capacity(2 * node_count as usize * m as usize);
    let initial = (m + 1).min(node_count);
    for a in 0..initial {
        for b in a + 1..initial {
            edges.push(a, b, weight);
            edges.push(b, a, weight);
            endpoints.extend([a, b]);
        }
    }
    let mut chosen = Vec::with_capacity(m as usize);
    for v in initial..node_count {
        chosen.clear();
        while chosen.len() < m as usize {
            let target = endpoints[rng.below(endpoints.len() as u64) as usize];
            if !chosen.contains(&target) {
                chosen.push(target);
            }
        }
        for &t in &chosen {
            edges.push(v, t, weight);
            edges.push(t, v, weight);
            endpoints.extend([v, t]);
        }
    }
    edges
}

/// R-MAT (recursive matrix) graph with `2^scale` nodes and `edge_factor × 2^scale` edges, quadrant
/// probabilities (a, b, c, 1 − a − b − c); weights uniform in `[min_weight, 1]`.
pub fn rmat(
    scale: u32,
    edge_factor: usize,
    (a, b, c): (f64, f64, f64),
    min_weight: f32,
    seed: u64,
) -> EdgeList {
    let mut rng = SplitMix64(seed);
    let scale = scale.min(31);
    let node_count = 1u32 << scale;
    let edge_count = edge_factor * node_count as usize;
    let mut edges = EdgeList { node_count, ..EdgeList::default() };
    for _ in 0..edge_count {
        let (mut s, mut d) = (0u32, 0u32);
        for bit in (0..scale).rev() {
            let r = rng.unit();
            let (sb, db) = if r < a {
                (0, 0)
            } else if r < a + b {
                (0, 1)
            } else if r < a + b + c {
                (1, 0)
            } else {
                (1, 1)
            };
            s |= sb << bit;
            d |= db << bit;
        }
        edges.push(s, d, min_weight + (1.0 - min_weight) * rng.unit() as f32);
    }
    edges
}

/// SplitMix64: tiny, fast, good enough for synthetic graphs.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (bound > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl SplitMix64 {
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// Clustered embeddings: `clusters` centres drawn from N(0, 1) in `dim` dimensions, and `n`
/// vectors, each a random centre plus N(0, 0.5²) noise, scaled to unit length (row-major). The
/// data the embedding index is measured on (docs/performance.md, "Embedding index"). The same
/// `seed` gives the same centres, so [`mixture_queries`] with it draws from the same clusters.
pub fn mixture(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    mixture_from(&centres(dim, clusters, seed), n, dim, seed ^ 0x5EED)
}

/// `n` query vectors from the clusters of [`mixture`] with the same `dim`, `clusters`, `seed`
/// (fresh noise, not copies of the data).
pub fn mixture_queries(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    mixture_from(&centres(dim, clusters, seed), n, dim, seed ^ 0x9E37)
}

fn centres(dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    (0..clusters.max(1) * dim).map(|_| rng.normal()).collect()
}

fn mixture_from(centres: &[f32], n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    let clusters = centres.len() / dim;
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters as u64) as usize;
        let start = out.len();
        out.extend(centres[c * dim..(c + 1) * dim].iter().map(|&x| x + 0.5 * rng.normal()));
        let norm = out[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        out[start..].iter_mut().for_each(|x| *x /= norm);
    }
    out
}
