//! Cosine similarity over node embeddings: similarity seeding and the similarity fallback (an exact
//! scan; docs/spec.md §18 plans an index).

use crate::error::{Error, Result};
use crate::graph::View;

/// Check `query` against the graph's embeddings and return its norm.
pub(crate) fn query_norm(graph: View<'_>, query: &[f32]) -> Result<f32> {
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
pub(crate) fn top_similar(
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
        let Some((row, norm)) = graph.embedding(v) else { continue };
        let dot: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
        let similarity = (dot / (norm * query_norm)).min(1.0);
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
