//! A cue's seeds: the explicit ones validated and merged, plus the nodes most similar to its query
//! embedding — and the per-call buffers a recall borrows from the engine's pool.

use super::Cue;
use crate::error::Result;
use crate::graph::View;
use crate::pool::Reusable;
use crate::similarity::{self, Search};
use crate::spread::{self, Scratch};

/// Everything one recall writes to, lent by the engine's pool and returned clean.
#[derive(Debug, Default)]
pub struct Buffers {
    /// The spread's dense per-node state.
    pub(crate) spread: Scratch,
    /// The call's resolved seeds (unique, sorted by id), unless `seeds_in_cue`.
    pub(crate) seeds: Vec<(u32, f32)>,
    /// The cue's own seeds are already resolved (ascending ids, no embedding): use them in place
    /// (a million seeds are not copied).
    pub(crate) seeds_in_cue: bool,
    /// Similarity search results (seeding and fallback).
    pub(crate) similar: Vec<(u32, f32)>,
    /// The similarity index's candidates.
    pub(crate) candidates: Vec<u32>,
}

impl Reusable for Buffers {
    fn prepare(&mut self, nodes: usize) -> Result<()> {
        if self.spread.current.len() != nodes {
            self.spread.try_resize(nodes)?;
        }
        Ok(())
    }

    fn recycle(&mut self) {
        self.seeds.clear();
        self.seeds_in_cue = false;
        self.similar.clear();
        self.candidates.clear();
    }

    fn bytes(&self) -> usize {
        self.spread.bytes()
            + (self.seeds.capacity() + self.similar.capacity()) * 8
            + self.candidates.capacity() * 4
    }
}

/// Validate the cue — every error a recall can return happens here, before the breaker is asked —
/// and put its explicit seeds, merged and sorted, in `buffers.seeds`. Returns the query embedding's
/// norm when the cue has one.
pub(crate) fn validate(graph: View<'_>, cue: &Cue, buffers: &mut Buffers) -> Result<Option<f32>> {
    require_seeds_or_embedding(cue)?;
    buffers.seeds.clear();
    let ascending = spread::check_seeds(graph, &cue.seeds)?;
    buffers.seeds_in_cue = ascending && cue.embedding.is_none();
    if !buffers.seeds_in_cue {
        // Checked above; only the merge is left.
        buffers.seeds.extend_from_slice(&cue.seeds);
        spread::merge_duplicate_seeds(&mut buffers.seeds);
    }
    cue.embedding.as_deref().map(|query| similarity::query_norm(graph, query)).transpose()
}

/// The call's resolved seeds: `cue`'s own when they needed no merging, else `seeds` (the buffer's).
pub(crate) fn resolved<'a>(cue: &'a Cue, seeds: &'a [(u32, f32)], seeds_in_cue: bool) -> &'a [(u32, f32)] {
    if seeds_in_cue { &cue.seeds } else { seeds }
}

/// Every check [`validate`] makes, without a buffer: a batch checks all its cues this way before
/// any of them runs.
pub(crate) fn check(graph: View<'_>, cue: &Cue) -> Result<()> {
    require_seeds_or_embedding(cue)?;
    spread::check_seeds(graph, &cue.seeds)?;
    if let Some(query) = cue.embedding.as_deref() {
        similarity::query_norm(graph, query)?;
    }
    Ok(())
}

fn require_seeds_or_embedding(cue: &Cue) -> Result<()> {
    if cue.seeds.is_empty() && cue.embedding.is_none() {
        return Err(crate::error::Error::cue("seeds", "a cue needs seeds or an embedding"));
    }
    Ok(())
}

/// Add the top `seed_k` nodes similar to the cue's embedding (validated, with norm `norm`), each
/// with its similarity as activation, merged with the explicit seeds.
pub(crate) fn add_similar(
    graph: View<'_>,
    search: Search<'_>,
    cue: &Cue,
    norm: f32,
    seed_k: usize,
    min_similarity: f32,
    buffers: &mut Buffers,
) {
    let Some(query) = &cue.embedding else { return };
    let Buffers { similar, candidates, .. } = buffers;
    search.top(graph, query, norm, seed_k, min_similarity, candidates, similar);
    buffers.seeds.extend_from_slice(&buffers.similar);
    spread::merge_duplicate_seeds(&mut buffers.seeds);
}
