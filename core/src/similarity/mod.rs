//! Cosine similarity over node embeddings (docs/spec.md §18): similarity seeding and the similarity
//! fallback. [`Search`] answers from the approximate-nearest-neighbour [`index`] when the engine has
//! one for the graph, and from an exact scan otherwise — the reference the index is tested against.
//! Either way the answer's similarities are computed here, exactly, from the graph's embeddings.

pub mod index;

pub use index::{AnnIndex, IndexShape};

use quanta::Instant;

use crate::error::{Error, Result};
use crate::graph::View;
use crate::telemetry::Histogram;

/// How one recall searches embeddings.
#[derive(Clone, Copy)]
pub(crate) struct Search<'a> {
    /// The index of the recall's graph lineage, when the config asks for one and it is ready.
    pub(crate) index: Option<&'a AnnIndex>,
    /// Where each search's latency goes (none while telemetry is off).
    pub(crate) seconds: Option<&'a Histogram>,
}

impl Search<'_> {
    /// The `k` nodes most similar to `query` (checked by [`query_norm`], which gave `query_norm`)
    /// with similarity ≥ `min_similarity` and > 0, best first, ties by id, into `out`;
    /// `candidates` is scratch. Falls back to the exact scan if the index fails.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn top(
        &self,
        graph: View<'_>,
        query: &[f32],
        query_norm: f32,
        k: usize,
        min_similarity: f32,
        candidates: &mut Vec<u32>,
        out: &mut Vec<(u32, f32)>,
    ) {
        let start = self.seconds.map(|_| Instant::now());
        let answered = self.index.is_some_and(|index| {
            match index.search(query, k, graph.node_count(), candidates) {
                Ok(indexed) => {
                    rescore(graph, query, query_norm, k, min_similarity, candidates, indexed, out);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "similarity index search failed; answering with the exact scan");
                    false
                }
            }
        });
        if !answered {
            top_similar(graph, query, query_norm, k, min_similarity, out);
        }
        if let (Some(histogram), Some(start)) = (self.seconds, start) {
            histogram.observe_duration(start.elapsed());
        }
    }
}

/// Cosine similarity of `v`'s embedding and `query`, as the exact scan computes it (`None`: `v`
/// has no embedding).
#[inline]
fn similarity_of(graph: View<'_>, v: usize, query: &[f32], query_norm: f32) -> Option<f32> {
    let (row, norm) = graph.embedding(v)?;
    let dot: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
    Some((dot / (norm * query_norm)).min(1.0))
}

/// The index's candidates and the nodes it does not cover yet (from `indexed` on), scored exactly,
/// filtered like the scan, best first with ties by id.
#[allow(clippy::too_many_arguments)]
fn rescore(
    graph: View<'_>,
    query: &[f32],
    query_norm: f32,
    k: usize,
    min_similarity: f32,
    candidates: &[u32],
    indexed: usize,
    out: &mut Vec<(u32, f32)>,
) {
    out.clear();
    let tail = indexed as u32..graph.node_count() as u32;
    for v in candidates.iter().copied().chain(tail) {
        let Some(similarity) = similarity_of(graph, v as usize, query, query_norm) else { continue };
        if similarity > 0.0 && similarity >= min_similarity {
            out.push((v, similarity));
        }
    }
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
}

/// Check `query` against the graph's embeddings and return its norm.
pub fn query_norm(graph: View<'_>, query: &[f32]) -> Result<f32> {
    let Some(dim) = graph.embedding_dim() else {
        return Err(Error::cue("embedding", "the graph has no embeddings"));
    };
    if query.len() != dim {
        return Err(Error::cue(
            "embedding",
            format!("dimension {} does not match the graph's {dim}", query.len()),
        ));
    }
    if let Some(i) = query.iter().position(|x| !x.is_finite()) {
        return Err(Error::cue("embedding", format!("value {} at index {i} is not finite", query[i])));
    }
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Err(Error::cue("embedding", "is the zero vector"));
    }
    Ok(norm)
}

/// The `k` nodes most similar to `query` with similarity ≥ `min_similarity` and > 0, best first (ties by
/// id), written to `out` as `(node, similarity)`. `query_norm` comes from [`query_norm`].
pub fn top_similar(
    graph: View<'_>,
    query: &[f32],
    query_norm: f32,
    k: usize,
    min_similarity: f32,
    out: &mut Vec<(u32, f32)>,
) {
    out.clear();
    if graph.embedding_dim().is_none() || k == 0 {
        return;
    }
    for v in 0..graph.node_count() {
        let Some(similarity) = similarity_of(graph, v, query, query_norm) else { continue };
        if !(similarity > 0.0 && similarity >= min_similarity) {
            continue;
        }
        // Keep `out` sorted best-first; only the last slot can be displaced.
        if out.len() == k {
            let worst = out[k - 1].1;
            if similarity <= worst {
                continue;
            }
            out.pop();
        }
        let at = out.partition_point(|&(_, s)| s >= similarity);
        out.insert(at, (v as u32, similarity));
    }
}
